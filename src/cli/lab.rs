//! `kmsconf lab`: the controls of simulated lab hosts, and the activation phone line.

use std::path::PathBuf;
use std::process::ExitCode;

use kmsconf_providers::catalog;
use kmsconf_providers::ops::OpKind;
use kmsconf_providers::targets::lab::{self, Fault, LabFile};

use super::CliError;

#[derive(Debug, clap::Subcommand)]
pub enum LabCommand {
    /// Print the confirmation ID the activation phone line gives for an installation ID.
    ConfirmationId {
        /// The installation ID, as `kmsconf apply` (or `slmgr.vbs /dti`) showed it.
        installation_id: String,
    },
    /// Make the host refuse an operation with an HRESULT (once, N times, or always).
    Fault {
        path: PathBuf,
        /// install-license, install-key, activate, set-service, firewall, restart or discover.
        #[arg(long, value_parser = parse_op)]
        op: OpKind,
        /// The HRESULT to answer, e.g. 0xC004F074.
        #[arg(long, value_parser = parse_hresult)]
        hresult: u32,
        /// How many times; default every time.
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
        times: Option<u32>,
    },
    /// Remove every injected fault.
    ClearFaults { path: PathBuf },
    /// Make every round trip to the host take this long.
    Latency { path: PathBuf, milliseconds: u64 },
    /// Cut the host off the internet (online activation fails with 0xC004FC03), or restore it.
    Offline {
        path: PathBuf,
        #[arg(value_parser = ["on", "off"])]
        state: String,
    },
    /// Make the host unreachable for kmsconf, or reachable again.
    Unreachable {
        path: PathBuf,
        #[arg(value_parser = ["on", "off"])]
        state: String,
    },
    /// Print the lab host's state file.
    Show { path: PathBuf },
}

fn parse_op(text: &str) -> Result<OpKind, String> {
    OpKind::parse(text).ok_or_else(|| {
        let all: Vec<&str> = OpKind::ALL.iter().map(|k| k.id()).collect();
        format!(
            "unknown operation `{text}`; expected one of {}",
            all.join(", ")
        )
    })
}

fn parse_hresult(text: &str) -> Result<u32, String> {
    catalog::parse_code(text)
        .ok_or_else(|| format!("`{text}` is not an HRESULT such as 0xC004F074"))
}

pub fn run(command: LabCommand) -> Result<ExitCode, CliError> {
    match command {
        LabCommand::ConfirmationId { installation_id } => {
            let cid = lab::confirmation_id_for(&installation_id).ok_or_else(|| {
                CliError::Message("an installation ID is 63 digits (nine groups of seven)".into())
            })?;
            println!("{cid}");
        }
        LabCommand::Fault {
            path,
            op,
            hresult,
            times,
        } => {
            control(&path, |f| {
                f.faults.push(Fault {
                    op,
                    hresult,
                    remaining: times,
                })
            })?;
            let when = times.map_or("every time".to_string(), |n| {
                format!("the next {n} time{}", if n == 1 { "" } else { "s" })
            });
            println!(
                "{}: `{}` will fail with {} {when}",
                path.display(),
                op.id(),
                catalog::format_code(hresult)
            );
        }
        LabCommand::ClearFaults { path } => {
            control(&path, |f| f.faults.clear())?;
            println!("{}: no faults", path.display());
        }
        LabCommand::Latency { path, milliseconds } => {
            control(&path, |f| f.latency_ms = milliseconds)?;
            println!(
                "{}: every round trip takes {milliseconds} ms",
                path.display()
            );
        }
        LabCommand::Offline { path, state } => {
            control(&path, |f| f.offline = state == "on")?;
            println!(
                "{}: internet access {}",
                path.display(),
                if state == "on" { "cut" } else { "restored" }
            );
        }
        LabCommand::Unreachable { path, state } => {
            control(&path, |f| f.unreachable = state == "on")?;
            println!(
                "{}: {}",
                path.display(),
                if state == "on" {
                    "unreachable"
                } else {
                    "reachable"
                }
            );
        }
        LabCommand::Show { path } => {
            let file = lab::load(&path)?;
            println!(
                "{}",
                serde_json::to_string_pretty(&file).unwrap_or_default()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Changes a lab file (creating a fresh host if there is none), under its lock.
fn control(path: &std::path::Path, f: impl FnOnce(&mut LabFile)) -> Result<(), CliError> {
    let ((), created) = lab::with_lab_file(path, true, |file| {
        f(file);
        Ok(())
    })?;
    if created {
        eprintln!(
            "{}: lab host created as a fresh, unconfigured Windows Server",
            path.display()
        );
    }
    Ok(())
}
