//! `docs/src/reference/settings.md` from the settings rows (`kmsconf_model::settings::SETTINGS`):
//! each `[service]` key with its values, `slmgr.vbs` equivalent, how Windows sets it and where it
//! keeps it. Only this file reads the rows' fields, so a change of their shape is one edit here.

use kmsconf_model::readings::registry_key_path;
use kmsconf_model::settings::REGISTRY_KEY;
use kmsconf_model::settings::{Setting, Slmgr, Write, SETTINGS};

pub fn render() -> String {
    let mut page = format!(
        "# Service settings\n\n\
         <!-- Generated from kmsconf's settings rows by tests/e2e/docs/settings.rs: do not edit. \
         Run `KMSCONF_UPDATE_DOCS=1 cargo test --test e2e docs::` after changing a row. -->\n\n\
         The keys of [`[hosts.NAME.service]`](config.md#hostsnameservice), from the one table of \
         settings that planning, the lab, the Windows agent, `export` and `status` all read. A \
         plan shows each change of a setting with the `slmgr.vbs` command an administrator would \
         type for it. Registry values are under `{REGISTRY_KEY}` unless a row names another key.\n\n\
         | key | value | `slmgr.vbs` equivalent | how kmsconf sets it on Windows | what the running \
         service reports | restarts the service | needs a KMS host key |\n\
         |---|---|---|---|---|---|---|\n"
    );
    for setting in SETTINGS {
        page.push_str(&row(setting));
    }
    page.push_str(
        "\n*Restarts the service*: Windows applies the value only after the Software Protection \
         service restarts; a plan ends with one restart for all of them. *Needs a KMS host key*: \
         Windows takes the value only once a KMS host key is installed, so the plan orders it \
         after the key (see [What is ordered before what](../config.md#what-is-ordered-before-what)).\n",
    );
    page
}

fn row(s: &Setting) -> String {
    let value = match &s.range {
        Some(r) => format!(
            "{}, {} to {}{}{}",
            s.meaning,
            r.min,
            r.max,
            r.unit,
            if r.refused_by_windows {
                " (Windows refuses others)"
            } else {
                ""
            }
        ),
        None => s.meaning.to_string(),
    };
    let (slmgr, how) = match &s.write {
        Write::Method {
            method,
            slmgr,
            registry,
        } => {
            let slmgr = match slmgr {
                Slmgr::Value(switch) => format!("`slmgr.vbs {switch} VALUE`"),
                Slmgr::Switch { on, off } => {
                    format!("`slmgr.vbs {on}` (true), `slmgr.vbs {off}` (false)")
                }
            };
            let mut how = format!(
                "`SoftwareLicensingService.{}({})`{}",
                method.name,
                method.argument,
                if method.inverted {
                    " with the opposite value"
                } else {
                    ""
                }
            );
            if let Some(r) = registry {
                let key = if r.key == "spp" {
                    String::new()
                } else {
                    format!(" under `{}`", registry_key_path(r.key))
                };
                how.push_str(&format!(
                    ", which keeps it (unverified, see [Surprises](../windows.md#surprises-what-a-host-shows-against-kmsconfs-facts)) in `{}` ({}){key}",
                    r.name,
                    r.kind.reg_type()
                ));
            }
            (slmgr, how)
        }
        Write::Registry(r) => (
            "none: `reg add` of the registry value".to_string(),
            format!(
                "the registry value `{}` ({}), written directly{}",
                r.name,
                r.kind.reg_type(),
                if r.inverted {
                    " with the opposite value"
                } else {
                    ""
                }
            ),
        ),
    };
    let reported = s
        .property
        .map(|p| format!("`{p}`"))
        .unwrap_or_else(|| "the registry value".into());
    let yes_no = |b: bool| if b { "yes" } else { "no" };
    format!(
        "| `{}` | {} | {} | {} | {} | {} | {} |\n",
        s.key,
        value.replace('|', "\\|"),
        slmgr,
        how,
        reported,
        yes_no(s.needs_restart),
        yes_no(s.needs_kms_host_key)
    )
}
