//! `kmsconf client-script`: the one-time client activation script the guide hands out as a batch
//! file, generated from the config (the host's address and port, or a domain it publishes in,
//! and the public KMS client setup key of each chosen edition from Microsoft's table), so it
//! never drifts from the host's settings. The script calls the Software Licensing service over
//! CIM, not slmgr.vbs or ospp.vbs: VBScript is being removed from Windows.

mod script;

use std::net::Ipv6Addr;
use std::process::ExitCode;

use kmsconf_model::catalog::{self, Edition};
use kmsconf_model::config::{Config, HostConfig, ProductId, DEFAULT_PORT};
use kmsconf_model::settings::SettingValue;

use super::{output, session, CliError, ConfigArg};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// A batch file for `cmd.exe` that runs the PowerShell script it carries.
    Cmd,
    /// A PowerShell script.
    Ps1,
}

#[derive(Debug, clap::Args)]
pub struct ClientScriptArgs {
    #[command(flatten)]
    config: ConfigArg,
    /// The KMS host the clients activate against.
    #[arg(long, value_name = "NAME", required_unless_present = "list_editions")]
    host: Option<String>,
    /// An edition whose KMS client setup key (GVLK) the script installs (repeatable: at most one
    /// Windows edition, plus Office, Project and Visio editions of one Office version).
    /// `kmsconf client-script --list-editions` shows them.
    #[arg(long = "edition", value_name = "EDITION")]
    editions: Vec<String>,
    /// Point clients at a DNS domain (its `_vlmcs._tcp` records, `slmgr.vbs /skms-domain`) instead
    /// of the one host: one of the host's `publish_domains` (without a value: its only one).
    #[arg(long, value_name = "DOMAIN", num_args = 0..=1, default_missing_value = "")]
    domain: Option<String>,
    /// Script language.
    #[arg(long, value_enum, default_value_t = Format::Cmd)]
    format: Format,
    /// Print the editions with a published KMS client setup key, and exit.
    #[arg(long, conflicts_with_all = ["host", "editions", "format", "domain"])]
    list_editions: bool,
}

/// Where the script points clients.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    /// One KMS host: the name or address clients reach it by, and its port.
    Machine { name: String, port: u16 },
    /// A DNS domain whose `_vlmcs._tcp` SRV records name the KMS hosts.
    Domain(String),
}

/// What the script needs, checked against the config.
struct Script {
    host_name: String,
    target: Target,
    config_name: String,
    windows: Option<&'static Edition>,
    office: Vec<&'static Edition>,
}

pub fn run(args: ClientScriptArgs) -> Result<ExitCode, CliError> {
    if args.list_editions {
        for e in catalog::all_editions() {
            say!("{:<38} {:<12} {}", e.id, e.product.id(), e.name);
        }
        return Ok(ExitCode::SUCCESS);
    }
    let config = session::load_config(&args.config.file)?;
    let script = prepare(&config, &args)?;
    output::emit(&match args.format {
        Format::Cmd => script::cmd(&script),
        Format::Ps1 => script::ps1(&script),
    })?;
    Ok(ExitCode::SUCCESS)
}

fn message(m: String) -> CliError {
    CliError::Message(m)
}

fn prepare(config: &Config, args: &ClientScriptArgs) -> Result<Script, CliError> {
    let name = args.host.as_deref().unwrap_or_default();
    let host = config.hosts.get(name).ok_or_else(|| {
        let known: Vec<&str> = config.hosts.keys().map(String::as_str).collect();
        message(format!(
            "`--host {name}`: no such host (hosts: {})",
            known.join(", ")
        ))
    })?;
    let (windows, office) = editions(host, &args.editions)?;
    let target = match &args.domain {
        Some(domain) => Target::Domain(publish_domain(host, domain)?),
        None => machine(host),
    };
    let script = Script {
        host_name: host.name.clone(),
        target,
        config_name: config.path.display().to_string(),
        windows,
        office,
    };
    script::check_values(&script)?;
    Ok(script)
}

/// The host's address (else its name, as `doctor` connects to it) and port.
fn machine(host: &HostConfig) -> Target {
    let address = host.address.as_deref().unwrap_or_else(|| {
        note!("note: `[hosts.{0}] address` is not set; the script points clients at the host's name `{0}` (set `address` to the name clients reach it by)", host.name);
        &host.name
    });
    let port = host.service.port().unwrap_or_else(|| {
        note!("note: `[hosts.{}.service] port` is not set; the script uses Windows' default {DEFAULT_PORT}", host.name);
        DEFAULT_PORT
    });
    // slmgr.vbs takes an IPv6 address in brackets and passes the brackets on as the machine name
    let name = match address.parse::<Ipv6Addr>() {
        Ok(_) => format!("[{address}]"),
        Err(_) => address.to_string(),
    };
    Target::Machine { name, port }
}

/// `--domain`: one of the domains the host publishes itself in.
fn publish_domain(host: &HostConfig, asked: &str) -> Result<String, CliError> {
    let row = kmsconf_model::settings::find("publish_domains");
    let domains: Vec<String> = match row.and_then(|r| host.service.desired(r)) {
        Some(SettingValue::List(list)) => list.iter().map(|d| d.domain.clone()).collect(),
        _ => Vec::new(),
    };
    let here = format!("`[hosts.{}.service] publish_domains`", host.name);
    if domains.is_empty() {
        return Err(message(format!("`--domain`: {here} is not set, so the host publishes itself in no domain kmsconf knows; set it, or leave out `--domain` to point clients at the host")));
    }
    let wanted = asked.trim_end_matches('.');
    if wanted.is_empty() {
        return match domains.as_slice() {
            [only] => Ok(only.clone()),
            _ => Err(message(format!(
                "`--domain`: {here} lists {}: name one (`--domain {}`)",
                domains.join(", "),
                domains[0]
            ))),
        };
    }
    domains
        .iter()
        .find(|d| d.trim_end_matches('.').eq_ignore_ascii_case(wanted))
        .cloned()
        .ok_or_else(|| {
            message(format!(
                "`--domain {asked}`: not one of {here} ({})",
                domains.join(", ")
            ))
        })
}

type Editions = (Option<&'static Edition>, Vec<&'static Edition>);

fn editions(host: &HostConfig, ids: &[String]) -> Result<Editions, CliError> {
    let mut windows = None;
    let mut office: Vec<&'static Edition> = Vec::new();
    for id in ids {
        let e = catalog::edition(id).ok_or_else(|| unknown_edition(id))?;
        if !host.products.contains_key(&e.product) {
            return Err(message(format!("host `{}` does not declare the `{}` product, so it cannot activate {} (clients would get 0xC004F042); declare `[hosts.{}.products.{}]` or choose another host", host.name, e.product, e.name, host.name, e.product)));
        }
        if e.product == ProductId::Windows {
            if let Some(first) = windows.replace(e) {
                return Err(message(format!("editions `{}` and `{id}` are both Windows: a client runs one edition, so make one script per Windows edition", first.id)));
            }
        } else if office.iter().any(|o| o.product != e.product) {
            return Err(message(format!(
                "`{id}` is {} but the other Office editions are not: one script covers one Office version",
                catalog::product_name(e.product)
            )));
        } else if !office.iter().any(|o| o.id == e.id) {
            office.push(e);
        }
    }
    Ok((windows, office))
}

/// An unknown `--edition`, with the nearest ids.
fn unknown_edition(id: &str) -> CliError {
    let near = nearest_editions(id);
    let hint = if near.is_empty() {
        String::new()
    } else {
        let quoted: Vec<String> = near.iter().map(|n| format!("`{n}`")).collect();
        format!("; did you mean {}?", quoted.join(" or "))
    };
    message(format!("unknown edition `{}`{hint} (`kmsconf client-script --list-editions` shows the editions with a published KMS client setup key)", super::terminal::inline(id)))
}

/// Up to three edition ids near `id`, nearest first.
fn nearest_editions(id: &str) -> Vec<&'static str> {
    let known: Vec<&'static str> = catalog::all_editions()
        .iter()
        .map(|e| e.id.as_str())
        .collect();
    catalog::nearest(id, &known)
}

#[cfg(test)]
mod tests;
