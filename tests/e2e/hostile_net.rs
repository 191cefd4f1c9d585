//! Issue 22, transport side: a WinRM endpoint and a DNS server that lie, drip or flood, each a
//! thread of the test on 127.0.0.1. The real binary must end with exit 1 and a message that says
//! what was wrong, within its deadline and a few seconds, in bounded memory, and print no secret.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::time::Duration;

use crate::common::*;
use crate::hostile_session::{measured, Measured};

const PASSWORD: &str = "hostile-endpoint-password";

/// A WinRM endpoint that reads each request and answers it with `answer`, on every connection.
fn endpoint(answer: fn(&mut TcpStream)) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            std::thread::spawn(move || {
                while read_request(&stream) {
                    answer(&mut stream);
                }
            });
        }
    });
    port
}

/// Reads one request (head and `Content-Length` body); `false` once the client is gone.
fn read_request(stream: &TcpStream) -> bool {
    let Ok(clone) = stream.try_clone() else {
        return false;
    };
    let mut reader = BufReader::new(clone);
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return false;
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            length = v.trim().parse().unwrap_or(0);
        }
        if line == "\r\n" {
            break;
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).is_ok()
}

/// Writes `bytes` one at a time, `every` apart, until the client goes.
fn drip(stream: &mut TcpStream, bytes: &[u8], every: Duration) {
    for byte in bytes.iter().cycle() {
        std::thread::sleep(every);
        if stream.write_all(&[*byte]).is_err() {
            return;
        }
    }
}

fn winrm_project(port: u16, timeout: u64) -> Project {
    let mut p = Project::new();
    p.write(
        "kmsconf.toml",
        &format!(
            "[hosts.kms01]\ntarget = \"winrm://alice@127.0.0.1:{port}\"\n\n\
             [hosts.kms01.winrm]\npassword = {{ env = \"WINRM_PASSWORD\" }}\n\n\
             [hosts.kms01.products.windows]\nhost_key = {{ env = \"KMS_HOST_KEY\" }}\n"
        ),
    );
    p.env("WINRM_PASSWORD", PASSWORD);
    p.env("KMSCONF_TIMEOUT", &timeout.to_string());
    p
}

fn assert_plain_failure(m: &Measured, expected: &str, seconds: u64) {
    m.failed_within(expected, seconds, 150);
    assert!(!m.run.all().contains(PASSWORD), "{:?}", m.run);
}

/// Item 2: a chunk size of `ffffffffffffffff` wrapped `body.len() + size` and a slice index
/// panicked (exit 101); it is a body over the cap.
#[test]
fn a_chunk_size_that_would_wrap_is_refused_by_the_body_cap() {
    let port = endpoint(|s| {
        let _ = s.write_all(b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Negotiate\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\nffffffffffffffff\r\n");
    });
    let p = winrm_project(port, 10);
    let m = measured(&p, &["plan"]);
    assert_plain_failure(&m, "a body over 16777216 bytes (the limit)", 15);
}

/// Item 5: repeated `100 Continue` heads dripped a byte every 500 ms held kmsconf past
/// `KMSCONF_TIMEOUT` (each read was in time): the whole exchange has one deadline.
#[test]
fn a_dripping_endpoint_is_cut_at_the_timeout_of_the_exchange() {
    let port = endpoint(|s| {
        drip(
            s,
            b"HTTP/1.1 100 Continue\r\n\r\n",
            Duration::from_millis(500),
        )
    });
    let p = winrm_project(port, 3);
    let m = measured(&p, &["plan"]);
    assert_plain_failure(&m, "no answer within 3 s", 3 + 5);
}

/// Item 5: chunk trailers without end, sent fast, stop at the head's cap.
#[test]
fn endless_chunk_trailers_stop_at_their_cap() {
    let port = endpoint(|s| {
        let _ = s.write_all(b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Negotiate\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n");
        while s.write_all(&b"X-Trailer: y\r\n".repeat(1000)).is_ok() {}
    });
    let p = winrm_project(port, 10);
    let m = measured(&p, &["plan"]);
    assert_plain_failure(&m, "chunk trailers over 64 KiB", 15);
}

/// Item 17: a `200` to the first authentication POST said "OutOfSequence: Complete authenticate
/// was fired"; it says what happened.
#[test]
fn a_200_to_an_unfinished_authentication_says_so() {
    let port = endpoint(|s| {
        let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
    });
    let p = winrm_project(port, 10);
    let m = measured(&p, &["plan"]);
    assert_plain_failure(
        &m,
        "answered HTTP 200 to authentication round 1 before the authentication was complete",
        15,
    );
    assert!(!m.run.all().contains("OutOfSequence"), "{:?}", m.run);
}

/// A DNS server on 127.0.0.1 (UDP and TCP on one port) whose UDP answers are `reply(query)`,
/// and whose TCP connections are handed to `tcp`.
fn dns_server(reply: fn(&[u8]) -> Vec<u8>, tcp: fn(TcpStream)) -> u16 {
    let (udp, listener) = loop {
        let udp = UdpSocket::bind("127.0.0.1:0").expect("bind udp");
        let port = udp.local_addr().expect("addr").port();
        if let Ok(listener) = TcpListener::bind(("127.0.0.1", port)) {
            break (udp, listener);
        }
    };
    let port = udp.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        let mut buffer = [0u8; 4096];
        while let Ok((n, from)) = udp.recv_from(&mut buffer) {
            let _ = udp.send_to(&reply(&buffer[..n]), from);
        }
    });
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || tcp(stream));
        }
    });
    port
}

/// The query echoed back as a reply (QR set), with `flags` added to its third byte.
fn echoed(query: &[u8], flags: u8) -> Vec<u8> {
    let mut reply = query.to_vec();
    if reply.len() > 2 {
        reply[2] |= 0x80 | flags;
    }
    reply
}

fn dns_project(port: u16) -> Project {
    let p = Project::new();
    p.write(
        "kmsconf.toml",
        &format!(
            "[dns]\nserver = \"127.0.0.1:{port}\"\nzones = [\"corp.example\"]\ninsecure_updates = true\n\n\
             [hosts.kms01]\ntarget = \"lab:lab/kms01.json\"\naddress = \"kms01.corp.example\"\n\n\
             [hosts.kms01.products.windows]\nhost_key = {{ env = \"KMS_HOST_KEY\" }}\n"
        ),
    );
    p
}

/// Item 17: a reply with another ID was reported as "no answer within N s"; it is named.
#[test]
fn a_dns_reply_with_the_wrong_id_is_named() {
    let port = dns_server(
        |q| {
            let mut r = echoed(q, 0);
            if r.len() > 2 {
                r[0] ^= 0xff;
            }
            r
        },
        drop,
    );
    let p = dns_project(port);
    let m = measured(&p, &["plan"]);
    assert_plain_failure(&m, "what came back answered no query: a reply with ID", 15);
    assert!(m.run.all().contains("which no query had"), "{:?}", m.run);
}

/// Item 17: a reply from another port than the server's was dropped unseen (the socket was
/// connected) and reported as "no answer within N s"; it is counted and named.
#[test]
fn a_dns_reply_from_another_port_is_named() {
    let server = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let elsewhere = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let port = server.local_addr().expect("addr").port();
    let other = elsewhere.local_addr().expect("addr");
    std::thread::spawn(move || {
        let mut buffer = [0u8; 4096];
        while let Ok((n, from)) = server.recv_from(&mut buffer) {
            let _ = elsewhere.send_to(&echoed(&buffer[..n], 0), from);
        }
    });
    let p = dns_project(port);
    let m = measured(&p, &["plan"]);
    let expected = format!(
        "replies came from {other}, not the server; no answer from 127.0.0.1:{port} within 5 seconds (3 tries over UDP)"
    );
    assert_plain_failure(&m, &expected, 15);
}

/// Item 6: the answer over TCP after a truncated one, dripped a byte a second, had 5 s per
/// read; the exchange has 5 s in all.
#[test]
fn a_dns_server_dripping_over_tcp_is_cut_at_the_deadline_of_the_exchange() {
    let port = dns_server(
        |q| echoed(q, 0x02),
        |mut s| {
            let mut prefix = [0u8; 2];
            if s.read_exact(&mut prefix).is_ok() {
                let mut query = vec![0u8; usize::from(u16::from_be_bytes(prefix))];
                let _ = s.read_exact(&mut query);
                drip(&mut s, &[0xff], Duration::from_secs(1));
            }
        },
    );
    let p = dns_project(port);
    let m = measured(&p, &["plan"]);
    assert_plain_failure(&m, "did not answer within 5 seconds", 5 + 6);
}
