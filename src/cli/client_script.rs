//! `kmsconf client-script`: the one-time client activation script the guide hands out as a batch
//! file, generated from the config (the host's address and port, the public KMS client setup key
//! of each chosen edition from Microsoft's table), so it never drifts from the host's settings.

use std::fmt::Write as _;
use std::net::Ipv6Addr;
use std::process::ExitCode;

use kmsconf_model::catalog::{self, Edition};
use kmsconf_model::config::{Config, HostConfig, ProductId, DEFAULT_PORT};

use super::{output, session, CliError, ConfigArg};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// A batch file for `cmd.exe`.
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
    /// Script language.
    #[arg(long, value_enum, default_value_t = Format::Cmd)]
    format: Format,
    /// Print the editions with a published KMS client setup key, and exit.
    #[arg(long, conflicts_with_all = ["host", "editions", "format"])]
    list_editions: bool,
}

/// What the script needs, checked against the config.
struct Script<'a> {
    host: &'a HostConfig,
    endpoint: String,
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
        Format::Cmd => cmd(&script),
        Format::Ps1 => ps1(&script),
    })?;
    Ok(ExitCode::SUCCESS)
}

fn prepare<'a>(config: &'a Config, args: &ClientScriptArgs) -> Result<Script<'a>, CliError> {
    let err = |m: String| CliError::Message(m);
    let name = args.host.as_deref().unwrap_or_default();
    let host = config.hosts.get(name).ok_or_else(|| {
        let known: Vec<&str> = config.hosts.keys().map(String::as_str).collect();
        err(format!(
            "`--host {name}`: no such host (hosts: {})",
            known.join(", ")
        ))
    })?;
    // the host's name, as `doctor` connects to it, when the config gives no `address`
    let address = host.address.as_deref().unwrap_or_else(|| {
        note!("note: `[hosts.{0}] address` is not set; the script points clients at the host's name `{0}` (set `address` to the name clients reach it by)", host.name);
        &host.name
    });
    let port = host.service.port().unwrap_or_else(|| {
        note!("note: `[hosts.{}.service] port` is not set; the script uses Windows' default {DEFAULT_PORT}", host.name);
        DEFAULT_PORT
    });
    let endpoint = match address.parse::<Ipv6Addr>() {
        Ok(_) => format!("[{address}]:{port}"),
        Err(_) => format!("{address}:{port}"),
    };
    let mut windows = None;
    let mut office: Vec<&'static Edition> = Vec::new();
    for id in &args.editions {
        let e = catalog::edition(id).ok_or_else(|| {
            err(format!("unknown edition `{id}`: `kmsconf client-script --list-editions` shows the editions with a published KMS client setup key"))
        })?;
        if !host.products.contains_key(&e.product) {
            return Err(err(format!("host `{}` does not declare the `{}` product, so it cannot activate {} (clients would get 0xC004F042); declare `[hosts.{}.products.{}]` or choose another host", host.name, e.product, e.name, host.name, e.product)));
        }
        if e.product == ProductId::Windows {
            if let Some(first) = windows.replace(e) {
                return Err(err(format!("editions `{}` and `{id}` are both Windows: a client runs one edition, so make one script per Windows edition", first.id)));
            }
        } else if office.iter().any(|o| o.product != e.product) {
            return Err(err(format!("`{id}` is {} but the other Office editions are not: one script covers one Office version", catalog::product_name(e.product))));
        } else if !office.iter().any(|o| o.id == e.id) {
            office.push(e);
        }
    }
    Ok(Script {
        host,
        endpoint,
        config_name: config.path.display().to_string(),
        windows,
        office,
    })
}

/// The folder of `ospp.vbs` under `Microsoft Office` for an Office version.
fn office_folder(product: ProductId) -> &'static str {
    match product {
        ProductId::Office2010 => "Office14",
        ProductId::Office2013 => "Office15",
        _ => "Office16",
    }
}

fn header(s: &Script, comment: &str) -> String {
    let mut out = String::new();
    let lines = [
        format!(
            "kmsconf client activation script for KMS host `{}` ({})",
            s.host.name, s.endpoint
        ),
        format!(
            "Generated from {} by kmsconf {}; regenerate it rather than edit it.",
            s.config_name,
            env!("CARGO_PKG_VERSION")
        ),
        "Run it once on each volume-licensed client, as an administrator.".to_string(),
        "The keys below are Microsoft's public KMS client setup keys (GVLKs), not secrets."
            .to_string(),
    ];
    for l in lines {
        let _ = writeln!(out, "{comment} {l}");
    }
    out
}

fn cmd(s: &Script) -> String {
    let mut out = String::from("@echo off\r\n");
    out.push_str(&header(s, "rem").replace('\n', "\r\n"));
    let slmgr = "cscript //nologo \"%windir%\\System32\\slmgr.vbs\"";
    let mut lines: Vec<String> = vec![
        "setlocal".into(),
        format!("set \"KMS={}\"", s.endpoint),
        String::new(),
    ];
    if let Some(e) = s.windows {
        lines.push(format!("rem {}", e.name));
        lines.push(format!("{slmgr} /ipk {} || goto :failed", e.key));
    }
    lines.push("rem Windows: use this KMS host, then activate".into());
    lines.push(format!("{slmgr} /skms %KMS% || goto :failed"));
    lines.push(format!("{slmgr} /ato || goto :failed"));
    if let Some(first) = s.office.first() {
        let folder = office_folder(first.product);
        let (address, port) = split_endpoint(&s.endpoint);
        lines.push(String::new());
        lines.push(format!(
            "rem {}: ospp.vbs, the Office equivalent of slmgr.vbs",
            catalog::product_name(first.product)
        ));
        lines.push("set \"OSPP=\"".into());
        for base in ["%ProgramFiles%", "%ProgramFiles(x86)%"] {
            lines.push(format!("if exist \"{base}\\Microsoft Office\\{folder}\\ospp.vbs\" set \"OSPP={base}\\Microsoft Office\\{folder}\\ospp.vbs\""));
        }
        lines.push(format!("if not defined OSPP (echo ospp.vbs was not found under Microsoft Office\\{folder} & goto :failed)"));
        for e in &s.office {
            lines.push(format!("rem {}", e.name));
            lines.push(format!(
                "cscript //nologo \"%OSPP%\" /inpkey:{} || goto :failed",
                e.key
            ));
        }
        lines.push(format!(
            "cscript //nologo \"%OSPP%\" /sethst:{address} || goto :failed"
        ));
        lines.push(format!(
            "cscript //nologo \"%OSPP%\" /setprt:{port} || goto :failed"
        ));
        lines.push("cscript //nologo \"%OSPP%\" /act || goto :failed".into());
    }
    lines.extend([
        String::new(),
        "echo Activation requested from %KMS%.".into(),
        "exit /b 0".into(),
        ":failed".into(),
        "echo Activation failed: run `kmsconf explain CODE` with the error code shown above. 1>&2"
            .into(),
        "exit /b 1".into(),
    ]);
    for l in lines {
        out.push_str(&l);
        out.push_str("\r\n");
    }
    out
}

fn ps1(s: &Script) -> String {
    let mut out = header(s, "#");
    let (address, port) = split_endpoint(&s.endpoint);
    let _ = writeln!(out, "#Requires -RunAsAdministrator");
    let _ = writeln!(out, "$Kms = '{}'", s.endpoint);
    let _ = writeln!(out, "$ErrorActionPreference = 'Stop'");
    let _ = writeln!(
        out,
        "function Invoke-Vbs([string]$Script, [string[]]$Arguments) {{"
    );
    let _ = writeln!(out, "    & cscript.exe //nologo $Script @Arguments");
    let _ = writeln!(out, "    if ($LASTEXITCODE -ne 0) {{ throw \"$Script $Arguments failed ($LASTEXITCODE): run 'kmsconf explain CODE' with the code shown\" }}");
    let _ = writeln!(out, "}}");
    let _ = writeln!(out, "$slmgr = Join-Path $env:windir 'System32\\slmgr.vbs'");
    if let Some(e) = s.windows {
        let _ = writeln!(out, "# {}", e.name);
        let _ = writeln!(out, "Invoke-Vbs $slmgr '/ipk', '{}'", e.key);
    }
    let _ = writeln!(out, "# Windows: use this KMS host, then activate");
    let _ = writeln!(out, "Invoke-Vbs $slmgr '/skms', $Kms");
    let _ = writeln!(out, "Invoke-Vbs $slmgr '/ato'");
    if let Some(first) = s.office.first() {
        let folder = office_folder(first.product);
        let _ = writeln!(
            out,
            "# {}: ospp.vbs, the Office equivalent of slmgr.vbs",
            catalog::product_name(first.product)
        );
        let _ = writeln!(out, "$ospp = @(\"$env:ProgramFiles\\Microsoft Office\\{folder}\\ospp.vbs\", \"${{env:ProgramFiles(x86)}}\\Microsoft Office\\{folder}\\ospp.vbs\") | Where-Object {{ Test-Path $_ }} | Select-Object -First 1");
        let _ = writeln!(
            out,
            "if (-not $ospp) {{ throw 'ospp.vbs was not found under Microsoft Office\\{folder}' }}"
        );
        for e in &s.office {
            let _ = writeln!(out, "# {}", e.name);
            let _ = writeln!(out, "Invoke-Vbs $ospp '/inpkey:{}'", e.key);
        }
        let _ = writeln!(out, "Invoke-Vbs $ospp '/sethst:{address}'");
        let _ = writeln!(out, "Invoke-Vbs $ospp '/setprt:{port}'");
        let _ = writeln!(out, "Invoke-Vbs $ospp '/act'");
    }
    let _ = writeln!(out, "Write-Output \"Activation requested from $Kms.\"");
    out
}

/// `host:port` (or `[v6]:port`) into the host and the port, for ospp's separate switches.
fn split_endpoint(endpoint: &str) -> (&str, &str) {
    let (host, port) = endpoint.rsplit_once(':').unwrap_or((endpoint, ""));
    (host.trim_start_matches('[').trim_end_matches(']'), port)
}
