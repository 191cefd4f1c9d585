//! A throw-away OpenSSH server for tests: Debian's `sshd` on 127.0.0.1 on a free port, with its
//! own host key, user keys, known_hosts and client config in a temp dir, stopped by PID when
//! dropped. Its PATH starts with a fake `powershell.exe` that records its arguments and standard
//! input and answers as the test says (files `mode`, `answer`, `answer-batch` in the dir).
//! Shared by the providers' transport tests and the end-to-end tests (`#[path]`).
//!
//! Needs `/usr/sbin/sshd` (`apt-get install openssh-server`; `scripts/test.sh` installs it): without it
//! the tests fail, they never skip.
#![allow(dead_code)]

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const SSHD: &str = "/usr/sbin/sshd";

pub const FAKE_POWERSHELL: &str = r#"#!/bin/sh
# A stand-in for powershell.exe: records argv and stdin, then does what the file `mode` says.
dir="$(dirname "$0")/.."
input="$(cat)"
# kmsconf's apply lock and its release always succeed, and are recorded apart from the
# discovery or batch the test looks at
case "$(printf '%s' "$input" | base64 -d 2>/dev/null)" in
  *'$LockId = '*)
    printf '%s\n' "$input" > "$dir/stdin-unlock"
    printf 'KMSCONF:unlock:%s\n' "$(printf '{"Released":true,"Holder":null}' | base64 -w0)"
    exit 0 ;;
  *'$Holder = '*)
    printf '%s\n' "$input" > "$dir/stdin-lock"
    printf 'KMSCONF:lock:%s\n' "$(printf '{"Acquired":true,"Holder":null}' | base64 -w0)"
    exit 0 ;;
esac
printf '%s\n' "$@" > "$dir/argv"
printf '%s\n' "$input" > "$dir/stdin"
mode="$(cat "$dir/mode" 2>/dev/null)"
case "$mode" in
  answer)
    # a batch (its script calls Invoke-KmsconfOp) gets `answer-batch`, discovery `answer`
    if base64 -d "$dir/stdin" | grep -q 'Invoke-KmsconfOp [0-9]'; then cat "$dir/answer-batch"; else cat "$dir/answer"; fi
    exit 0 ;;
  fail) cat "$dir/answer" 2>/dev/null; echo "Get-CimInstance : Access denied" >&2; exit 3 ;;
  hang) sleep 8 ;;
  drop)
    cat "$dir/answer"
    # let sshd pass the answer on before its session dies
    sleep 1
    p=$PPID
    while [ "$(cat /proc/$p/comm)" != "sshd" ]; do p=$(awk '{print $4}' /proc/$p/stat); done
    kill -9 "$p" ;;
esac
"#;

/// A running sshd and everything it and the client need, in one temp dir.
pub struct Server {
    pub dir: tempfile::TempDir,
    pub port: u16,
    child: Child,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

fn keygen(path: &Path) {
    let ok = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(path)
        .status()
        .expect("ssh-keygen runs (package openssh-client)");
    assert!(ok.success());
}

pub fn user() -> String {
    let out = Command::new("id").arg("-un").output().expect("id");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

impl Server {
    pub fn start() -> Self {
        assert!(
            Path::new(SSHD).exists(),
            "{SSHD} is missing: install Debian's openssh-server (`apt-get install -y openssh-server`, as scripts/test.sh does)"
        );
        let dir = tempfile::tempdir().expect("tmp");
        let d = dir.path();
        for k in ["host_key", "user_key", "other_key", "other_host_key"] {
            keygen(&d.join(k));
        }
        std::fs::copy(d.join("user_key.pub"), d.join("authorized_keys")).expect("authorized_keys");
        std::fs::create_dir(d.join("bin")).expect("bin");
        let fake = d.join("bin/powershell.exe");
        std::fs::write(&fake, FAKE_POWERSHELL).expect("fake");
        let mut perms = std::fs::metadata(&fake).expect("meta").permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
        std::fs::set_permissions(&fake, perms).expect("chmod");
        // sshd refuses to start without its privilege separation directory
        if !Path::new("/run/sshd").exists() {
            std::fs::create_dir_all("/run/sshd")
                .expect("create /run/sshd (run the tests as root, as CI does)");
        }
        let port = free_port();
        let config = format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {d}/host_key\nPidFile {d}/sshd.pid\n\
             AuthorizedKeysFile {d}/authorized_keys\nStrictModes no\nUsePAM no\n\
             PasswordAuthentication no\nKbdInteractiveAuthentication no\n\
             PermitRootLogin prohibit-password\nAllowUsers {user}\nSetEnv PATH={d}/bin:/usr/bin:/bin\n",
            d = d.display(),
            user = user()
        );
        std::fs::write(d.join("sshd_config"), config).expect("config");
        let log = std::fs::File::create(d.join("sshd.log")).expect("log");
        let child = Command::new(SSHD)
            .args(["-D", "-e", "-f"])
            .arg(d.join("sshd_config"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("start sshd");
        let server = Server { dir, port, child };
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "sshd did not listen: {}",
                server.read("sshd.log")
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let host_key = server.read("host_key.pub");
        server.write("known_hosts", &format!("[127.0.0.1]:{port} {host_key}"));
        server.client("user_key");
        server
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.path(name)).unwrap_or_default()
    }

    pub fn write(&self, name: &str, text: &str) {
        std::fs::write(self.path(name), text).expect("write");
    }

    /// The client's ssh config: which key it offers and which known_hosts it trusts.
    pub fn client(&self, key: &str) {
        let d = self.dir.path().display();
        self.write(
            "ssh_config",
            &format!("Host *\n  IdentityFile {d}/{key}\n  IdentitiesOnly yes\n  UserKnownHostsFile {d}/known_hosts\n  GlobalKnownHostsFile /dev/null\n"),
        );
    }

    /// What the fake does next, and its answer (to discovery and batches alike; write
    /// `answer-batch` afterwards to answer batches differently).
    pub fn mode(&self, mode: &str, answer: &str) {
        self.write("mode", mode);
        self.write("answer", answer);
        self.write("answer-batch", answer);
    }
}
