//! `kmsconf lab listen`: holds lab hosts' KMS ports open on 127.0.0.1 until Ctrl-C or SIGTERM,
//! so the port check of `doctor` succeeds through a real TCP connect. The sockets live in
//! the lab target, reached through `kmsconf_app::lab`; this file waits for the signal and says
//! what it holds.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::mpsc;

use kmsconf_app::lab::{self, Opened};

use super::CliError;

pub fn run(paths: &[PathBuf]) -> Result<ExitCode, CliError> {
    let (stop, stopped) = mpsc::channel();
    ctrlc::set_handler(move || {
        let _ = stop.send(());
    })
    .map_err(|e| CliError::Message(format!("cannot wait for Ctrl-C or SIGTERM: {e}")))?;
    let mut listening = 0;
    for opened in lab::listen(paths)? {
        match opened {
            Opened::Listening(l) => {
                say!(
                    "{}: {} listens on 127.0.0.1:{}",
                    l.path.display(),
                    l.computer_name,
                    l.port
                );
                listening += 1;
                l.serve();
            }
            Opened::Skipped { path, reason } => {
                say!("{}: not listening: {reason}", path.display());
            }
        }
    }
    if listening == 0 {
        return Err(CliError::Message(
            "no lab host to listen for: every one given is set unreachable or offline".into(),
        ));
    }
    say!(
        "listening for {listening} lab host{}; Ctrl-C or SIGTERM stops",
        if listening == 1 { "" } else { "s" }
    );
    // a closed channel (the handler gone) ends the wait as a signal would
    let _ = stopped.recv();
    note!("stopped: the ports are closed");
    Ok(ExitCode::SUCCESS)
}
