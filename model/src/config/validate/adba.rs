//! `[active_directory]` and its `[[active_directory.activation_objects]]`: the server URL, the
//! bind credentials, each object's name, key and activation, and (once the hosts are read) that
//! each `via` names a declared host.

use std::collections::BTreeMap;

use super::dns::convert_client;
use super::secrets::{check_value, convert_secret, malformed};
use super::{is_host_name, Ctx};
use crate::config::wire::{self, ActiveDirectoryWire, AdActivation, At};
use crate::config::{AdConfig, AdObjectConfig, HostConfig, LdapServer, AD_PLAN_HOST, LDAP_PORT};
use crate::keys::{ConfirmationId, ProductKey};

/// The `via` of each object, with where it is written, for [`check_via`].
pub(super) type Vias = Vec<(String, usize)>;

pub(super) fn convert(ctx: &mut Ctx, wire: ActiveDirectoryWire) -> (AdConfig, Vias) {
    let server = wire.server.as_ref().and_then(|s| convert_server(ctx, s));
    let (principal, keytab) = match &wire.gss {
        Some(g) => convert_gss(ctx, g),
        None => (None, None),
    };
    let mut objects: Vec<AdObjectConfig> = Vec::new();
    let mut vias = Vec::new();
    let mut names: BTreeMap<String, String> = BTreeMap::new();
    let mut partials: BTreeMap<String, String> = BTreeMap::new();
    for object in &wire.activation_objects {
        let o = object.get();
        let name = o.name.get().trim().to_string();
        if name.is_empty() || name.chars().any(char::is_control) {
            ctx.error(
                o.name.start(),
                "activation object `name` must be a non-empty line of text (it is the object's display name)",
            );
        } else if let Some(first) = names.insert(name.to_lowercase(), name.clone()) {
            ctx.error(
                o.name.start(),
                format!("activation object `{name}` is declared twice (first as `{first}`): names are compared without case"),
            );
        }
        let what = format!("the host key of activation object `{name}`");
        let host_key = convert_secret(ctx, &what, &o.host_key);
        if let Ok(secret) = host_key.source.resolve(&what) {
            match ProductKey::parse(&secret) {
                Err(m) => {
                    let message =
                        format!("{what} ({}) is malformed: {m}", host_key.source.describe());
                    malformed(ctx, o.host_key.start(), &host_key, message);
                }
                Ok(key) => {
                    if let Some(first) = partials.insert(key.partial(), name.clone()) {
                        ctx.error(o.host_key.start(), format!("activation objects `{first}` and `{name}` declare the same host key (ending `{}`): a key has one activation object", key.partial()));
                    }
                }
            }
        }
        let confirmation_id = convert_confirmation(ctx, &name, object);
        vias.push((o.via.get().clone(), ctx.absolute(o.via.start())));
        objects.push(AdObjectConfig {
            name,
            host_key,
            via: o.via.get().clone(),
            activation: o.activation,
            confirmation_id,
            declared_at: ctx.at(object.start()),
        });
    }
    let config = AdConfig {
        server,
        principal,
        keytab,
        exclusive: wire.exclusive,
        objects,
    };
    (config, vias)
}

/// `confirmation_id` goes with `activation = "phone"`, and phone activation needs one.
fn convert_confirmation(
    ctx: &mut Ctx,
    name: &str,
    object: &At<wire::ActivationObjectWire>,
) -> Option<kmsconf_engine::secret::DeclaredSecret> {
    let o = object.get();
    let Some(cid) = &o.confirmation_id else {
        if o.activation == AdActivation::Phone {
            ctx.error(object.start(), format!("activation object `{name}` is activated by phone but has no `confirmation_id`: add `confirmation_id = {{ env = \"VAR\" }}` with the ID the activation line gives for its installation ID"));
        }
        return None;
    };
    let what = format!("the confirmation ID of activation object `{name}`");
    let declared = convert_secret(ctx, &what, cid);
    if o.activation != AdActivation::Phone {
        ctx.error(
            cid.start(),
            format!("`confirmation_id` is only used with `activation = \"phone\"` (activation object `{name}`)"),
        );
    }
    check_value(ctx, cid.start(), &declared, &what, |secret| {
        ConfirmationId::parse(secret).err().map(|m| m.to_string())
    });
    // only a warning, as for a product's: the check-digit model is unverified on Windows 8 and
    // later, so the host has the last word
    let mistyped = declared.source.value(&what).ok().and_then(|secret| {
        ConfirmationId::parse(&secret)
            .ok()
            .and_then(|parsed| parsed.failed_check_group())
    });
    if let Some(group) = mistyped {
        ctx.warn(cid.start(), format!("{what} ({}) looks mistyped: group {group} of its eight fails its check digit (a public source's model, unverified on Windows 8 and later), so Windows may refuse it with 0xC004F04D; compare it digit by digit with what the line read out", declared.source.describe()));
    }
    Some(declared)
}

/// `ldap://host[:port]`; a signed SASL bind is kmsconf's protection, so not `ldaps://`.
fn convert_server(ctx: &mut Ctx, at: &At<String>) -> Option<LdapServer> {
    let text = at.get().trim();
    let parsed = text
        .strip_prefix("ldap://")
        .map(|rest| rest.trim_end_matches('/'))
        .and_then(parse_authority);
    if parsed.is_none() {
        let hint = if text.starts_with("ldaps://") {
            "kmsconf binds over `ldap://` with SASL GSSAPI signing (`ldaps://` is not supported)"
        } else {
            "write it as `ldap://dc01.corp.example` or `ldap://dc01.corp.example:389`"
        };
        ctx.error(
            at.start(),
            format!("`server` `{}` is not an LDAP URL: {hint}", at.get()),
        );
    }
    parsed
}

fn parse_authority(text: &str) -> Option<LdapServer> {
    if let Ok(ip) = text.parse::<std::net::IpAddr>() {
        return Some(LdapServer {
            host: ip.to_string(),
            port: LDAP_PORT,
        });
    }
    if let Ok(addr) = text.parse::<std::net::SocketAddr>() {
        return (addr.port() > 0).then(|| LdapServer {
            host: addr.ip().to_string(),
            port: addr.port(),
        });
    }
    let (host, port) = match text.rsplit_once(':') {
        Some((h, p)) => (h, p.parse::<u16>().ok().filter(|p| *p > 0)?),
        None => (text, LDAP_PORT),
    };
    is_host_name(host).then(|| LdapServer {
        host: host.trim_end_matches('.').to_ascii_lowercase(),
        port,
    })
}

fn convert_gss(
    ctx: &mut Ctx,
    wire: &At<wire::AdGssWire>,
) -> (
    Option<String>,
    Option<kmsconf_engine::secret::DeclaredSecret>,
) {
    if cfg!(windows) {
        ctx.error(
            wire.start(),
            "`gss` is not supported on Windows: kmsconf binds to LDAP through MIT Kerberos (Linux), not SSPI",
        );
        return (None, None);
    }
    if super::kerberos::STATIC_BUILD {
        ctx.error(
            wire.start(),
            super::kerberos::static_build_error("`gss` (the LDAP bind)", None),
        );
        return (None, None);
    }
    let g = wire.get();
    convert_client(ctx, g.principal.as_ref(), g.keytab.as_ref())
}

/// Each object's `via` is a declared host that is not retired, and no host takes the directory's
/// entry name.
pub(super) fn check_via(
    ctx: &mut Ctx,
    declared: bool,
    vias: &Vias,
    hosts: &BTreeMap<String, HostConfig>,
) {
    if let (true, Some(host)) = (declared, hosts.get(AD_PLAN_HOST)) {
        ctx.diagnostics.push(kmsconf_engine::diagnostic::Diagnostic::error(
            host.declared_at.clone(),
            format!("host name `{AD_PLAN_HOST}` is reserved for the directory while `[active_directory]` is declared; rename the host"),
        ));
    }
    for (via, at) in vias {
        match hosts.get(via) {
            Some(h) if h.is_retired() => ctx.error(*at, format!("`via` host `{via}` is retired: an activation object is created by a present host's licensing service")),
            Some(_) => {}
            None => {
                let known: Vec<&str> = hosts.keys().map(String::as_str).collect();
                let known = if known.is_empty() { "none".to_string() } else { known.iter().map(|h| format!("`{h}`")).collect::<Vec<_>>().join(", ") };
                ctx.error(*at, format!("`via` names host `{via}`, which the config does not declare (hosts: {known})"));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn servers_are_ldap_urls_with_389_by_default() {
        let cases = [
            ("DC01.Corp.Example", Some("dc01.corp.example:389")),
            ("dc01.corp.example:3389", Some("dc01.corp.example:3389")),
            ("127.0.0.2", Some("127.0.0.2:389")),
            ("[::1]:389", Some("[::1]:389")),
            ("dc01.corp.example:0", None),
            ("bad name", None),
        ];
        for (text, want) in cases {
            let got = parse_authority(text).map(|s| s.to_string());
            assert_eq!(got.as_deref(), want, "{text}");
        }
    }

    /// A confirmation ID one of whose groups fails its check digit is only a warning, at its
    /// place in the file, without the ID; a malformed one is an error.
    #[test]
    fn a_mistyped_confirmation_id_is_a_warning_and_a_malformed_one_an_error() {
        let config = |cid: &str| {
            format!("[active_directory]\nserver = \"ldap://dc1\"\n\n[[active_directory.activation_objects]]\nname = \"WS\"\nhost_key = \"BCDFG-HJKMP-QRTVW-XY234-6789B\"\nvia = \"kms01\"\nactivation = \"phone\"\nconfirmation_id = \"{cid}\"\n\n[hosts.kms01]\ntarget = \"lab:kms01.json\"\n")
        };
        let path = std::path::Path::new("kmsconf.toml");
        let typo = "123451-".repeat(7) + "123450";
        let parsed = crate::config::Config::parse(path, &config(&typo)).expect("only a warning");
        let warned: Vec<String> = parsed.warnings.iter().map(|d| d.to_string()).collect();
        let warned = warned.join("\n");
        assert!(
            warned.contains("looks mistyped")
                && warned.contains("group 1")
                && !warned.contains("123451"),
            "{warned}"
        );
        assert!(crate::config::Config::parse(path, &config("12345")).is_err());
    }
}
