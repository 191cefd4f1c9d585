//! A throw-away OpenSSH server for tests: Debian's `sshd` on 127.0.0.1 to 127.0.0.4 (one address
//! per simulated host) on a free port, with its own host key, user keys, known_hosts and client
//! config in a temp dir, stopped by PID when dropped. Its PATH starts with a stand-in
//! `powershell.exe`: by default [`FAKE_POWERSHELL`], which speaks the agent protocol with canned
//! answers (files `mode` and `answer-OP` in the dir); [`Server::powershell`] replaces it (the
//! end-to-end tests put `kmsconf lab agent` there). Every stand-in records each session it
//! serves in the file `sessions`: one line per connection, naming the address it came to.
//! Shared by the targets' transport tests and the end-to-end tests (`#[path]`).
//!
//! Needs `/usr/sbin/sshd` (`apt-get install openssh-server`; `scripts/test.sh` installs it): without it
//! the tests fail, they never skip.
#![allow(dead_code)]

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const SSHD: &str = "/usr/sbin/sshd";

/// The addresses sshd listens on: one per simulated host.
pub const ADDRESSES: [&str; 4] = ["127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4"];

pub const FAKE_POWERSHELL: &str = r#"#!/bin/sh
# A stand-in for powershell.exe speaking kmsconf's agent protocol with canned answers. It records
# its session, argv, the agent it is sent and each request, then does what the file `mode` says:
# `fail` writes an error and exits 3, `hang` sleeps; otherwise it answers each request with the
# lines of the file `answer-OP` (`KIND JSON`, `@ID@` standing for the request's ID; a line `drop`
# kills its sshd session there). Lock and unlock always succeed.
dir="$(dirname "$0")/.."
echo "$SSH_CONNECTION" | cut -d' ' -f3 >> "$dir/sessions"
printf '%s\n' "$@" > "$dir/argv"
IFS= read -r agent
printf '%s\n' "$agent" > "$dir/agent"
case "$(cat "$dir/mode" 2>/dev/null)" in
  fail) echo "Get-CimInstance : Access denied" >&2; exit 3 ;;
  hang) sleep 8; exit 0 ;;
esac
# the bootstrap's line: the agent arrived intact and runs
printf 'KMSCONF:ready:e30=\n'
send() { printf 'KMSCONF:%s:%s\n' "$1" "$(printf '%s' "$2" | sed "s/@ID@/$id/g" | base64 -w0)"; }
while IFS= read -r line; do
  printf '%s\n' "$line" >> "$dir/requests"
  id=$(printf '%s' "$line" | sed 's/^{"id":\([0-9]*\),.*/\1/')
  op=$(printf '%s' "$line" | sed 's/^{"id":[0-9]*,"op":"\([a-z_]*\)".*/\1/')
  case "$op" in
    lock) send begin '{"Id":@ID@}'; send lock '{"Id":@ID@,"Ok":true,"Answer":{"Acquired":true,"Holder":null}}'; continue ;;
    unlock) echo "$id" >> "$dir/unlocked"; send begin '{"Id":@ID@}'; send unlock '{"Id":@ID@,"Ok":true,"Answer":{"Released":true,"Holder":null}}'; continue ;;
  esac
  while IFS=' ' read -r kind json; do
    if [ "$kind" = drop ]; then
      # let sshd pass the answers on before its session dies
      sleep 1
      p=$PPID
      while [ "$(cat /proc/$p/comm)" != "sshd" ]; do p=$(awk '{print $4}' /proc/$p/stat); done
      kill -9 "$p"
      exit 0
    fi
    send "$kind" "$json"
  done < "$dir/answer-$op"
done
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
        Self::start_with_env(&[])
    }

    /// Starts the server with `env` set for the sessions it runs (the stand-ins read it).
    pub fn start_with_env(env: &[(&str, &str)]) -> Self {
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
        // sshd refuses to start without its privilege separation directory
        if !Path::new("/run/sshd").exists() {
            std::fs::create_dir_all("/run/sshd")
                .expect("create /run/sshd (run the tests as root, as CI does)");
        }
        let port = free_port();
        let listen: String = ADDRESSES
            .iter()
            .map(|a| format!("ListenAddress {a}\n"))
            .collect();
        let extra: String = env.iter().map(|(k, v)| format!(" {k}={v}")).collect();
        let config = format!(
            "Port {port}\n{listen}HostKey {d}/host_key\nPidFile {d}/sshd.pid\n\
             AuthorizedKeysFile {d}/authorized_keys\nStrictModes no\nUsePAM no\n\
             PasswordAuthentication no\nKbdInteractiveAuthentication no\n\
             PermitRootLogin prohibit-password\nAllowUsers {user}\nSetEnv PATH={d}/bin:/usr/bin:/bin{extra}\n",
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
        server.powershell(FAKE_POWERSHELL);
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
        let known: String = ADDRESSES
            .iter()
            .map(|a| format!("[{a}]:{port} {host_key}"))
            .collect();
        server.write("known_hosts", &known);
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

    /// What the fake does next: `answer` (the default), `fail` or `hang`.
    pub fn mode(&self, mode: &str) {
        self.write("mode", mode);
    }

    /// The fake's answer to each request `op`: lines of a kind and its JSON, where the JSON
    /// string `"@ID@"` stands for the request's ID; the kind `drop` kills the session there.
    pub fn answer(&self, op: &str, lines: &[(&str, serde_json::Value)]) {
        let text: String = lines
            .iter()
            .map(|(kind, json)| {
                format!("{kind} {}\n", json.to_string().replace("\"@ID@\"", "@ID@"))
            })
            .collect();
        self.write(&format!("answer-{op}"), &text);
    }

    /// Replaces the stand-in `powershell.exe` with `script`.
    pub fn powershell(&self, script: &str) {
        let fake = self.path("bin/powershell.exe");
        std::fs::write(&fake, script).expect("stand-in");
        let mut perms = std::fs::metadata(&fake).expect("meta").permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
        std::fs::set_permissions(&fake, perms).expect("chmod");
    }

    /// The sessions the stand-in served, as the addresses they came to, in order.
    pub fn sessions(&self) -> Vec<String> {
        self.read("sessions").lines().map(String::from).collect()
    }
}
