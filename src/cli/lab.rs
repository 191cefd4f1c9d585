//! `kmsconf lab`: the controls of simulated lab hosts, and the activation phone line.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use kmsconf_app::lab::{self, Fault, LabFile, NewRequests};
use kmsconf_model::catalog;
use kmsconf_model::clock;
use kmsconf_model::config::ProductId;
use kmsconf_model::ops::OpKind;

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
        /// The lab host's state file (a path from the current directory, not from the config).
        #[arg(value_parser = super::native_path)]
        path: PathBuf,
        /// install-license, install-key, uninstall-key, activate, set-service, firewall, restart
        /// or discover.
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
    ClearFaults {
        /// The lab host's state file (a path from the current directory, not from the config).
        #[arg(value_parser = super::native_path)]
        path: PathBuf,
    },
    /// Make every round trip to the host take this long.
    Latency {
        /// The lab host's state file (a path from the current directory, not from the config).
        #[arg(value_parser = super::native_path)]
        path: PathBuf,
        /// Milliseconds per round trip, up to 600000 (ten minutes); `0` removes the delay.
        #[arg(value_parser = clap::value_parser!(u64).range(0..=lab::MAX_LATENCY_MS))]
        milliseconds: u64,
    },
    /// Cut the host off the internet (online activation fails with 0xC004FC03), or restore it.
    Offline {
        /// The lab host's state file (a path from the current directory, not from the config).
        #[arg(value_parser = super::native_path)]
        path: PathBuf,
        /// `on` cuts it off, `off` restores it.
        #[arg(value_parser = ["on", "off"])]
        state: String,
    },
    /// Make the host unreachable for kmsconf, or reachable again.
    Unreachable {
        /// The lab host's state file (a path from the current directory, not from the config).
        #[arg(value_parser = super::native_path)]
        path: PathBuf,
        /// `on` makes it unreachable, `off` reachable again.
        #[arg(value_parser = ["on", "off"])]
        state: String,
    },
    /// Print the lab host's state file.
    Show {
        /// The lab host's state file (a path from the current directory, not from the config).
        #[arg(value_parser = super::native_path)]
        path: PathBuf,
    },
    /// Set the Software Protection service (sppsvc) running, stopped, or stopped and disabled,
    /// as `kmsconf clients` and `doctor` read it.
    Sppsvc {
        /// The lab host's state file (a path from the current directory, not from the config).
        #[arg(value_parser = super::native_path)]
        path: PathBuf,
        /// `running`, `stopped`, or `disabled` (stopped, and set not to start).
        #[arg(value_parser = ["running", "stopped", "disabled"])]
        state: String,
    },
    /// Log a failure to publish the host's SRV record in DNS (event 12293); `clear` forgets them.
    DnsFailure {
        /// The lab host's state file (a path from the current directory, not from the config).
        #[arg(value_parser = super::native_path)]
        path: PathBuf,
        /// The DNS domain it failed to publish in.
        #[arg(long, default_value = "lab.test")]
        domain: String,
        /// The HRESULT it logs.
        #[arg(long, default_value = "0x80072338", value_parser = parse_hresult)]
        code: u32,
        /// It was logged this long ago, by the host's clock.
        #[arg(long, default_value = "0", value_parser = clock::parse_duration)]
        ago: i64,
        /// Forget every logged failure instead.
        #[arg(long)]
        clear: bool,
    },
    /// Simulated KMS clients: send activation requests, list what the host counts, clear them.
    #[command(subcommand)]
    Clients(ClientsCommand),
    /// Set the host's clock ahead of (`+2h`) or behind (`-10m`) the real one; `0` resets it.
    Clock {
        /// The lab host's state file (a path from the current directory, not from the config).
        #[arg(value_parser = super::native_path)]
        path: PathBuf,
        /// `[+|-]N[s|m|h|d]`.
        #[arg(allow_hyphen_values = true, value_parser = clock::parse_duration)]
        offset: i64,
    },
    /// Hold each lab host's KMS port in effect open on 127.0.0.1, as its running Software
    /// Protection service would, until Ctrl-C or SIGTERM, so that `doctor`'s port check reaches
    /// it. A host set unreachable or offline is not listened for: it stands for a machine its
    /// clients cannot reach.
    Listen {
        /// The lab hosts' state files (paths from the current directory, not from the config).
        #[arg(required = true, value_parser = super::native_path)]
        paths: Vec<PathBuf>,
    },
    /// Speak the Windows agent's protocol on stdin and stdout for a host whose state is the lab
    /// file (created fresh if missing): what `powershell.exe` runs on a real host, for testing
    /// the `ssh://` path against a host whose state changes.
    Agent {
        /// The lab host's state file (a path from the current directory, not from the config).
        #[arg(value_parser = super::native_path)]
        path: PathBuf,
    },
}

#[derive(Debug, clap::Subcommand)]
pub enum ClientsCommand {
    /// Record activation requests from clients, as the KMS host receives them.
    Add {
        /// The lab host's state file (a path from the current directory, not from the config).
        #[arg(value_parser = super::native_path)]
        path: PathBuf,
        /// The product the clients activate: windows, office-2010, ..., office-2024; default the
        /// product of `--edition`, else windows.
        #[arg(long, value_parser = parse_product)]
        product: Option<ProductId>,
        /// The edition the clients ask for, an id from `kmsconf client-script --list-editions`
        /// (its activation ID is in their requests).
        #[arg(long, value_parser = parse_edition)]
        edition: Option<String>,
        /// The activation ID the requests carry, as a real client's would (its `slmgr /dlv`
        /// shows it), instead of the lab's own ID of the edition or product; `kmsconf clients`
        /// names it only through `[fleet.activation_ids]`.
        #[arg(long, value_name = "GUID")]
        activation_id: Option<String>,
        /// Every request comes from this DNS name; default: a name of its own per request
        /// (clones made with `--cmid` are distinct machines).
        #[arg(long, value_name = "NAME")]
        fqdn: Option<String>,
        /// How many requests.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=10000))]
        count: u32,
        /// Every request comes from this client machine ID (cloned machines); default: a new
        /// CMID per request.
        #[arg(long, value_name = "GUID")]
        cmid: Option<String>,
        /// The requests were received this long ago, by the host's clock (e.g. `31d`).
        #[arg(long, default_value = "0", value_parser = clock::parse_duration)]
        ago: i64,
    },
    /// List the clients the host counts now, per product (the 30-day, 50/10 most recent cache).
    List {
        /// The lab host's state file (a path from the current directory, not from the config).
        #[arg(value_parser = super::native_path)]
        path: PathBuf,
    },
    /// Forget every simulated request.
    Clear {
        /// The lab host's state file (a path from the current directory, not from the config).
        #[arg(value_parser = super::native_path)]
        path: PathBuf,
    },
}

fn parse_product(text: &str) -> Result<ProductId, String> {
    ProductId::ALL
        .into_iter()
        .find(|p| p.id() == text)
        .ok_or_else(|| {
            let all: Vec<&str> = ProductId::ALL.iter().map(|p| p.id()).collect();
            format!(
                "unknown product `{text}`; expected one of {}",
                all.join(", ")
            )
        })
}

fn parse_edition(text: &str) -> Result<String, String> {
    catalog::edition(text).map(|e| e.id.clone()).ok_or_else(|| {
        format!("unknown edition `{text}`; `kmsconf client-script --list-editions` lists them")
    })
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

/// A failure HRESULT: one with the severity bit set (`0` is S_OK, which no fault answers).
fn parse_hresult(text: &str) -> Result<u32, String> {
    let code = catalog::parse_code(text)
        .ok_or_else(|| format!("`{text}` is not an HRESULT such as `0xC004F074`"))?;
    if code & 0x8000_0000 == 0 {
        return Err(format!(
            "`{text}` is not a failure: a fault answers an HRESULT from 0x80000000 to 0xFFFFFFFF, such as `0xC004F074`"
        ));
    }
    Ok(code)
}

pub fn run(command: LabCommand) -> Result<ExitCode, CliError> {
    match command {
        LabCommand::ConfirmationId { installation_id } => {
            let cid = lab::confirmation_id(&installation_id).ok_or_else(|| {
                CliError::Message("an installation ID is 63 digits (nine groups of seven)".into())
            })?;
            say!("{cid}");
        }
        LabCommand::Fault {
            path,
            op,
            hresult,
            times,
        } => inject_fault(&path, op, hresult, times)?,
        LabCommand::ClearFaults { path } => {
            control(&path, |f| f.faults.clear())?;
            say!("{}: no faults", path.display());
        }
        LabCommand::Latency { path, milliseconds } => {
            control(&path, |f| f.latency_ms = milliseconds)?;
            say!(
                "{}: every round trip takes {milliseconds} ms",
                path.display()
            );
        }
        LabCommand::Offline { path, state } => set_offline(&path, &state)?,
        LabCommand::Unreachable { path, state } => set_unreachable(&path, &state)?,
        LabCommand::Clients(c) => run_clients(c)?,
        LabCommand::Sppsvc { path, state } => set_sppsvc(&path, &state)?,
        LabCommand::DnsFailure {
            path,
            domain,
            code,
            ago,
            clear,
        } => dns_failure(&path, &domain, code, ago, clear)?,
        LabCommand::Clock { path, offset } => set_clock(&path, offset)?,
        LabCommand::Listen { paths } => return super::listen::run(&paths),
        LabCommand::Agent { path } => {
            let stdin = std::io::stdin().lock();
            // a damaged agent ends the session as the bootstrap ends PowerShell: exit code 1
            if lab::serve_agent(&path, stdin, std::io::stdout().lock())? == lab::Served::Damaged {
                return Ok(ExitCode::FAILURE);
            }
        }
        LabCommand::Show { path } => {
            let file = lab::show(&path)?;
            say!(
                "{}",
                serde_json::to_string_pretty(&file).unwrap_or_default()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Cuts the lab host's internet access (`on`) or restores it (`off`).
fn set_offline(path: &Path, state: &str) -> Result<(), CliError> {
    control(path, |f| f.offline = state == "on")?;
    say!(
        "{}: internet access {}",
        path.display(),
        if state == "on" { "cut" } else { "restored" }
    );
    Ok(())
}

/// Makes the lab host unreachable (`on`) or reachable again (`off`).
fn set_unreachable(path: &Path, state: &str) -> Result<(), CliError> {
    control(path, |f| f.unreachable = state == "on")?;
    say!(
        "{}: {}",
        path.display(),
        if state == "on" {
            "unreachable"
        } else {
            "reachable"
        }
    );
    Ok(())
}

/// Sets the lab host's Software Protection service running, stopped, or stopped and disabled.
fn set_sppsvc(path: &Path, state: &str) -> Result<(), CliError> {
    control(path, |f| {
        f.sppsvc.stopped = state != "running";
        f.sppsvc.start_mode = if state == "disabled" {
            "Disabled"
        } else {
            "Auto"
        }
        .into();
    })?;
    say!("{}: sppsvc {state}", path.display());
    Ok(())
}

/// Logs (or forgets) event 12293s on the lab host.
fn dns_failure(
    path: &Path,
    domain: &str,
    code: u32,
    ago: i64,
    clear: bool,
) -> Result<(), CliError> {
    if clear {
        control(path, |f| f.dns_failures.clear())?;
        say!("{}: no DNS publishing failures", path.display());
        return Ok(());
    }
    let domain = kmsconf_model::events::fqdn(domain).ok_or_else(|| {
        CliError::Message(format!("`{}` is not a DNS domain", domain.escape_debug()))
    })?;
    control(path, |f| {
        let at = lab::host_now(f).saturating_sub(ago);
        f.dns_failures.push(lab::DnsFailure {
            at,
            code,
            domain: domain.clone(),
        });
        f.dns_failures.sort_by_key(|d| d.at);
    })?;
    say!(
        "{}: event 12293 logged: publishing to DNS in `{domain}` failed with {}",
        path.display(),
        catalog::format_code(code)
    );
    Ok(())
}

fn inject_fault(path: &Path, op: OpKind, hresult: u32, times: Option<u32>) -> Result<(), CliError> {
    control(path, |f| {
        f.faults.push(Fault {
            op,
            hresult,
            remaining: times,
        })
    })?;
    let when = times.map_or("every time".to_string(), |n| {
        format!("the next {n} time{}", if n == 1 { "" } else { "s" })
    });
    say!(
        "{}: `{}` will fail with {} {when}",
        path.display(),
        op.id(),
        catalog::format_code(hresult)
    );
    Ok(())
}

fn set_clock(path: &Path, offset: i64) -> Result<(), CliError> {
    control(path, |f| f.clock_offset_seconds = offset)?;
    let shown = match offset {
        0 => "runs on the real time".to_string(),
        o if o > 0 => format!("runs {} ahead", clock::human(o)),
        o => format!("runs {} behind", clock::human(o)),
    };
    say!("{}: the host's clock {shown}", path.display());
    Ok(())
}

fn run_clients(command: ClientsCommand) -> Result<(), CliError> {
    match command {
        ClientsCommand::Add {
            path,
            product,
            edition,
            activation_id,
            fqdn,
            count,
            cmid,
            ago,
        } => add_clients(
            &path,
            NewRequests {
                product: requested_product(product, edition.as_deref())?,
                count,
                cmid,
                ago_seconds: ago,
                fqdn,
                edition,
                activation_id,
            },
        )?,
        ClientsCommand::List { path } => list_clients(&path)?,
        ClientsCommand::Clear { path } => {
            control(&path, |f| f.clients.clear())?;
            say!("{}: no client requests", path.display());
        }
    }
    Ok(())
}

/// The product of `--product` and `--edition`, which must agree.
fn requested_product(
    given: Option<ProductId>,
    edition: Option<&str>,
) -> Result<ProductId, CliError> {
    let of_edition = edition.and_then(catalog::edition).map(|e| e.product);
    match (given, of_edition) {
        (Some(p), Some(e)) if p != e => Err(CliError::Message(format!(
            "edition `{}` is activated by `{e}`, not `{p}`: leave out `--product`",
            edition.unwrap_or_default()
        ))),
        (Some(p), _) | (None, Some(p)) => Ok(p),
        (None, None) => Ok(ProductId::Windows),
    }
}

/// Records simulated activation requests and says what the host made of them.
fn add_clients(path: &Path, new: NewRequests) -> Result<(), CliError> {
    let product = new.product;
    // the closure's error becomes the binary's, whose large part is boxed
    let added = control(path, |f| lab::add_clients(f, &new).map_err(CliError::from))??;
    let name = catalog::product_name(product);
    if added.refused > 0 {
        say!(
                    "{}: refused {} {name} request{}: the host is not an activated KMS host for {product} (clients get {})",
                    path.display(),
                    added.refused,
                    if added.refused == 1 { "" } else { "s" },
                    catalog::format_code(0xC004_F042)
                );
    } else {
        say!(
            "{}: {} {name} request{} received; the {product} count is now {}",
            path.display(),
            added.accepted,
            if added.accepted == 1 { "" } else { "s" },
            added.count
        );
    }
    Ok(())
}

/// The clients the host counts now, per product.
fn list_clients(path: &Path) -> Result<(), CliError> {
    for (product, counted) in lab::counted_clients(path)? {
        say!("{product}: count {}", counted.len());
        for client in counted {
            say!(
                "  {}  {} ago",
                client.cmid,
                clock::human(client.ago_seconds)
            );
        }
    }
    Ok(())
}

/// Changes a lab file (creating a fresh host if there is none, which it says), under its lock.
fn control<R>(path: &Path, f: impl FnOnce(&mut LabFile) -> R) -> Result<R, CliError> {
    let (r, created) = lab::control(path, f)?;
    if created {
        note!(
            "{}: lab host created as a fresh, unconfigured Windows Server",
            path.display()
        );
    }
    Ok(r)
}
