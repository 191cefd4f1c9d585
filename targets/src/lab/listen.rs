//! A lab host's KMS port held open on 127.0.0.1, as the Software Protection service of a running
//! KMS host holds it, so that a real TCP connect (`kmsconf doctor`'s port check, `telnet host
//! 1688`) reaches lab hosts. It accepts connections and closes them at once: it speaks no KMS.
//!
//! Not for: simulating activation over the network; clients are simulated in the state file
//! (`super::clients`).

use std::io::ErrorKind;
use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::{Error, ListenError};

/// One lab host whose KMS port is open.
#[derive(Debug)]
pub struct Listener {
    pub path: PathBuf,
    pub port: u16,
    pub computer_name: String,
    socket: TcpListener,
}

/// What `listen` did with one lab state file.
#[derive(Debug)]
pub enum Opened {
    Listening(Listener),
    /// The host stands for a machine nobody can reach, so its port stays closed.
    Skipped {
        path: PathBuf,
        reason: String,
    },
}

/// Opens the KMS port in effect of each lab host on 127.0.0.1, or says why not. A port that is
/// taken (by another program or another of `paths`) is an error naming the port and the host.
pub fn open(paths: &[PathBuf]) -> Result<Vec<Opened>, Error> {
    let mut opened = Vec::new();
    for path in paths {
        let file = super::load(path)?;
        let undo = |control: &str| {
            format!(
                "it is set {control} (`kmsconf lab {control} {} off` undoes it)",
                path.display()
            )
        };
        if file.unreachable || file.offline {
            let control = if file.unreachable {
                "unreachable"
            } else {
                "offline"
            };
            opened.push(Opened::Skipped {
                path: path.clone(),
                reason: undo(control),
            });
            continue;
        }
        let port = file.host.service.effective_port();
        let refuse = |source: ListenError| Error::Listen {
            path: path.clone(),
            port,
            source,
        };
        if let Some(other) = listening_on(&opened, port) {
            return Err(refuse(ListenError::SamePort {
                other: other.to_path_buf(),
            }));
        }
        let socket = TcpListener::bind((Ipv4Addr::LOCALHOST, port)).map_err(|e| {
            refuse(match e.kind() {
                ErrorKind::AddrInUse => ListenError::InUse,
                _ => ListenError::Bind(e),
            })
        })?;
        opened.push(Opened::Listening(Listener {
            path: path.clone(),
            port,
            computer_name: file.host.computer_name.clone(),
            socket,
        }));
    }
    Ok(opened)
}

fn listening_on(opened: &[Opened], port: u16) -> Option<&Path> {
    opened.iter().find_map(|o| match o {
        Opened::Listening(l) if l.port == port => Some(l.path.as_path()),
        _ => None,
    })
}

impl Listener {
    /// Accepts and closes connections on a thread of its own, for as long as the process runs.
    pub fn serve(self) -> std::thread::JoinHandle<()> {
        std::thread::spawn(move || {
            for stream in self.socket.incoming() {
                if stream.is_err() {
                    // out of file descriptors or a connection reset before accept: try again
                    // without spinning
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lab_file(
        dir: &Path,
        name: &str,
        port: u16,
        edit: impl FnOnce(&mut super::super::LabFile),
    ) -> PathBuf {
        let path = dir.join(name);
        super::super::with_lab_file(&path, true, |f| {
            let row = kmsconf_model::settings::find("port").expect("row");
            f.host
                .service
                .store(row, kmsconf_model::settings::SettingValue::U16(port));
            edit(f);
            Ok(())
        })
        .expect("lab file");
        path
    }

    fn free_port() -> u16 {
        let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind");
        l.local_addr().expect("addr").port()
    }

    #[test]
    fn the_port_in_effect_accepts_connections() {
        let dir = tempfile::tempdir().expect("dir");
        let port = free_port();
        let path = lab_file(dir.path(), "kms01.json", port, |_| {});
        let mut opened = open(&[path]).expect("open");
        let Some(Opened::Listening(l)) = opened.pop() else {
            panic!("not listening")
        };
        assert_eq!(l.port, port);
        l.serve();
        std::net::TcpStream::connect((Ipv4Addr::LOCALHOST, port)).expect("connect");
    }

    #[test]
    fn a_taken_port_is_an_error_naming_port_and_host() {
        let dir = tempfile::tempdir().expect("dir");
        let taken = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind");
        let port = taken.local_addr().expect("addr").port();
        let path = lab_file(dir.path(), "kms01.json", port, |_| {});
        let e = open(std::slice::from_ref(&path))
            .expect_err("in use")
            .to_string();
        assert_eq!(
            e,
            format!(
                "lab host `{}`: cannot listen on 127.0.0.1:{port}: the port is in use by another program",
                path.display()
            )
        );
        let shared = free_port();
        let other = lab_file(dir.path(), "kms02.json", shared, |_| {});
        let twin = lab_file(dir.path(), "kms03.json", shared, |_| {});
        let e = open(&[other.clone(), twin]).expect_err("twice").to_string();
        assert!(
            e.ends_with(&format!(
                "lab host `{}` listens on the same port",
                other.display()
            )),
            "{e}"
        );
    }

    #[test]
    fn unreachable_and_offline_hosts_do_not_listen() {
        let dir = tempfile::tempdir().expect("dir");
        let gone = lab_file(dir.path(), "gone.json", free_port(), |f| {
            f.unreachable = true
        });
        let cut = lab_file(dir.path(), "cut.json", free_port(), |f| f.offline = true);
        let opened = open(&[gone, cut]).expect("open");
        let reasons: Vec<&str> = opened
            .iter()
            .filter_map(|o| match o {
                Opened::Skipped { reason, .. } => Some(reason.as_str()),
                Opened::Listening(_) => None,
            })
            .collect();
        assert_eq!(reasons.len(), 2);
        assert!(
            reasons[0].starts_with("it is set unreachable"),
            "{reasons:?}"
        );
        assert!(reasons[1].starts_with("it is set offline"), "{reasons:?}");
    }
}
