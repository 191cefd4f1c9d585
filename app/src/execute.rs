//! Runs a planned entry (a KMS host or the DNS server) through its target: resolves each
//! operation's secrets at the last moment, sends one batch per dependency level, and says how a
//! saved plan's entry changed since it was made.

use std::path::PathBuf;

use kmsconf_engine::apply::{run_host, BatchError};
use kmsconf_engine::secret::{DeclaredSecret, SecretSource};
use kmsconf_engine::target::ChangeStatus;
use kmsconf_model::config::{ProductId, Profile, RuleGroup};
use kmsconf_model::dns::{GssTsigCredentials, TsigCredentials};
use kmsconf_model::keys::{ConfirmationId, ProductKey, TsigSecret};
use kmsconf_model::ops::{EntryOp, PlanOp, SrvRecordChange, TargetOp};
use kmsconf_model::{EntryState, KmsHostPlan};
use kmsconf_providers::dns;
use kmsconf_targets::DynTarget;
use serde_json::Value;

use crate::failure::{self, FailureKind, HostFailure};
use crate::Error;

/// Why a planned operation cannot be sent: a secret that cannot be read or no longer fits, or
/// an operation planned for the wrong kind of entry. It fails that change only.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error("a DNS record change was planned for host `{host}`, which is not a DNS server")]
    NotADnsServer { host: String },
    #[error(
        "an activation object's deletion was planned for `{host}`, which is not the directory"
    )]
    NotADirectory { host: String },
    #[error("the GSS-TSIG keytab `{}` cannot be read: {source}", path.display())]
    Keytab {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the GSS-TSIG keytab must be a file, not {given}")]
    KeytabNotAFile { given: String },
    #[error(transparent)]
    Secret(#[from] kmsconf_engine::Error),
    #[error("the secret of TSIG key `{key}` is malformed: {reason}")]
    TsigSecret { key: String, reason: String },
    #[error("the confirmation ID of `{product}` is malformed: {reason}")]
    ConfirmationId { product: ProductId, reason: String },
    #[error("the host key of `{product}` is malformed: {reason}")]
    HostKey { product: ProductId, reason: String },
    #[error("the host key of `{product}` from {from} now ends in {now}, but the plan was made with a key ending in {planned}")]
    HostKeyChanged {
        product: ProductId,
        from: String,
        now: String,
        planned: String,
    },
    #[error("the host key of activation object `{name}` is malformed: {reason}")]
    ActivationObjectKey { name: String, reason: String },
    #[error("the host key of activation object `{name}` now ends in {now}, but the plan was made with a key ending in {planned}")]
    ActivationObjectKeyChanged {
        name: String,
        now: String,
        planned: String,
    },
    #[error(
        "the confirmation ID of activation object `{name}` from {from} is malformed: {reason}"
    )]
    ActivationObjectConfirmationId {
        name: String,
        from: String,
        reason: String,
    },
    #[error("edition `{edition}` has no KMS client setup key in this kmsconf's table")]
    NoClientKey { edition: String },
    #[error("the KMS client setup key of `{edition}` is malformed: {reason}")]
    ClientKey { edition: String, reason: String },
}

/// Applies one entry's planned changes through its target. The target's error that stopped
/// the entry part-way comes back as the run's [`stopped`](kmsconf_engine::apply::HostRun)
/// failure, with its kind and code.
pub fn apply_entry(target: &DynTarget, plan: &KmsHostPlan) -> Result<crate::KmsHostRun, Error> {
    let run = run_host(&plan.changes, |batch| {
        let mut outcomes: Vec<Option<ChangeStatus>> = Vec::with_capacity(batch.len());
        let mut ops = Vec::new();
        for change in batch {
            match resolve_entry(plan, &change.operation) {
                Ok(op) => {
                    ops.push(op);
                    outcomes.push(None);
                }
                Err(e) => outcomes.push(Some(ChangeStatus::Failed {
                    code: None,
                    message: e.to_string(),
                })),
            }
        }
        let mut answers = if ops.is_empty() {
            Vec::new().into_iter()
        } else {
            // keys and confirmation IDs show masked or redacted: their Debug never exposes them
            tracing::trace!(host = %plan.name, ?ops, "sending a batch");
            let answers = target.execute(&ops)?;
            tracing::trace!(host = %plan.name, ?answers, "batch answered");
            answers.into_iter()
        };
        Ok(outcomes
            .into_iter()
            .map(|o| {
                o.or_else(|| answers.next())
                    .unwrap_or(ChangeStatus::Failed {
                        code: None,
                        message: "the host gave no result for this operation".into(),
                    })
            })
            .collect())
    })?;
    Ok(run.map_stopped(|e| match e {
        BatchError::Target(e) => failure::of_target(e),
        e @ BatchError::Answers { .. } => HostFailure::new(FailureKind::Remote, e.to_string()),
    }))
}

/// Turns a planned operation of `plan` into what its target receives, reading secrets now.
fn resolve_entry(plan: &KmsHostPlan, op: &PlanOp) -> Result<EntryOp, ResolveError> {
    if let PlanOp::DeleteActivationObject { dn, .. } = op {
        let EntryState::ActiveDirectory(_) = &plan.observed else {
            return Err(ResolveError::NotADirectory {
                host: plan.name.clone(),
            });
        };
        return Ok(EntryOp::DeleteActivationObject { dn: dn.clone() });
    }
    let PlanOp::UpdateSrvRecord {
        zone,
        remove,
        add,
        tsig,
        gss_tsig,
    } = op
    else {
        let resolved = match op {
            PlanOp::RestartService => TargetOp::RestartService {
                expect: restart_brings(plan),
            },
            _ => resolve(&plan.name, op)?,
        };
        return Ok(EntryOp::Host(resolved));
    };
    let EntryState::DnsServer(observed) = &plan.observed else {
        return Err(not_a_dns_server(&plan.name));
    };
    Ok(EntryOp::Srv(SrvRecordChange {
        zone: zone.clone(),
        expected: observed.zones.get(zone).cloned().unwrap_or_default(),
        remove: remove.clone(),
        add: add.clone(),
        tsig: tsig.as_ref().map(resolve_tsig).transpose()?,
        gss_tsig: gss_tsig
            .as_deref()
            .map(resolve_gss_tsig)
            .transpose()?
            .map(Box::new),
    }))
}

/// The settings a plan's service restart brings into effect: those it writes that Windows takes
/// only after the restart. Apply checks the running service shows each once it restarted.
fn restart_brings(plan: &KmsHostPlan) -> Vec<kmsconf_model::ops::ServiceSetting> {
    plan.changes
        .iter()
        .filter_map(|c| match &c.operation {
            PlanOp::SetService(s) if s.needs_restart() => Some(s.clone()),
            _ => None,
        })
        .collect()
}

/// Checks that the GSS-TSIG keytab, if any, can be opened; GSS-API reads it, kmsconf does not.
fn resolve_gss_tsig(
    gss: &kmsconf_model::config::GssTsig,
) -> Result<GssTsigCredentials, ResolveError> {
    let keytab = match gss.keytab.as_ref().map(|k| &k.source) {
        Some(SecretSource::File(path)) => {
            std::fs::File::open(path).map_err(|source| ResolveError::Keytab {
                path: path.clone(),
                source,
            })?;
            Some(path.clone())
        }
        Some(other) => {
            return Err(ResolveError::KeytabNotAFile {
                given: other.describe(),
            })
        }
        None => None,
    };
    Ok(GssTsigCredentials {
        server_principal: gss.server_principal.clone(),
        principal: gss.principal.clone(),
        keytab,
    })
}

/// Reads the secret of the TSIG key a record change names.
fn resolve_tsig(key: &kmsconf_model::config::TsigKey) -> Result<TsigCredentials, ResolveError> {
    let secret = key.secret.resolve("dns.tsig.secret")?;
    let secret = TsigSecret::parse(&secret).map_err(|m| ResolveError::TsigSecret {
        key: key.name.clone(),
        reason: m.to_string(),
    })?;
    Ok(TsigCredentials {
        name: key.name.clone(),
        algorithm: key.algorithm,
        secret,
    })
}

/// Turns a planned operation into what the target receives, reading secrets now.
pub(crate) fn resolve(host: &str, op: &PlanOp) -> Result<TargetOp, ResolveError> {
    Ok(match op {
        PlanOp::InstallLicensePack { product, path, .. } => TargetOp::InstallLicensePack {
            product: *product,
            path: path.clone(),
        },
        PlanOp::InstallProductKey {
            product,
            key,
            partial,
        } => install_host_key(host, *product, key, partial)?,
        PlanOp::ActivateOnline { product } => TargetOp::ActivateOnline { product: *product },
        PlanOp::ShowInstallationId { product } => {
            TargetOp::ShowInstallationId { product: *product }
        }
        PlanOp::ActivateByPhone {
            product,
            confirmation_id,
        } => activate_by_phone(host, *product, confirmation_id)?,
        PlanOp::UninstallProductKey {
            product,
            activation_id,
            ..
        } => TargetOp::UninstallProductKey {
            product: *product,
            activation_id: activation_id.clone(),
        },
        PlanOp::InstallClientKey { product, edition } => install_client_key(*product, edition)?,
        PlanOp::SetService(s) => TargetOp::SetService(s.clone()),
        PlanOp::ClearListeningPort => TargetOp::ClearListeningPort,
        // the settings it brings into effect: `resolve_entry` fills them in from the plan
        PlanOp::RestartService => TargetOp::RestartService { expect: Vec::new() },
        PlanOp::SetRuleGroup {
            group,
            enabled,
            remote_addresses,
        } => TargetOp::SetRuleGroup {
            group: *group,
            enabled: *enabled,
            remote_addresses: remote_addresses.clone(),
        },
        PlanOp::SetFirewallRule {
            group,
            rule,
            enabled,
            profiles,
            remote_addresses,
        } => set_firewall_rule(*group, rule, *enabled, profiles, remote_addresses),
        PlanOp::SetPortRule {
            port,
            remote_addresses,
            profiles,
        } => TargetOp::SetPortRule {
            port: *port,
            remote_addresses: remote_addresses.clone(),
            profiles: profiles.clone(),
        },
        PlanOp::RemovePortRule => TargetOp::RemovePortRule,
        PlanOp::UpdateSrvRecord { .. } => return Err(not_a_dns_server(host)),
        PlanOp::DeleteActivationObject { .. } => {
            return Err(ResolveError::NotADirectory {
                host: host.to_string(),
            })
        }
        PlanOp::CreateActivationObject { name, key, partial } => TargetOp::CreateActivationObject {
            name: name.clone(),
            key: activation_object_key(name, key, partial)?,
        },
        PlanOp::ShowActivationObjectInstallationId { name, key, partial } => {
            TargetOp::ShowActivationObjectInstallationId {
                name: name.clone(),
                key: activation_object_key(name, key, partial)?,
            }
        }
        PlanOp::CreateActivationObjectByPhone {
            name,
            key,
            partial,
            confirmation_id,
        } => TargetOp::CreateActivationObjectByPhone {
            name: name.clone(),
            key: activation_object_key(name, key, partial)?,
            confirmation_id: activation_object_confirmation_id(name, confirmation_id)?,
        },
    })
}

/// Reads the confirmation ID of the activation object `name` now.
fn activation_object_confirmation_id(
    name: &str,
    confirmation_id: &DeclaredSecret,
) -> Result<ConfirmationId, ResolveError> {
    let what = format!("the confirmation ID of activation object `{name}`");
    let secret = confirmation_id.resolve(&what)?;
    ConfirmationId::parse(&secret).map_err(|m| ResolveError::ActivationObjectConfirmationId {
        name: name.to_string(),
        from: confirmation_id.source.describe(),
        reason: m.to_string(),
    })
}

/// The host key of the activation object `name`, read now: apply refuses a key that no longer
/// ends as the plan's did.
fn activation_object_key(
    name: &str,
    key: &DeclaredSecret,
    partial: &str,
) -> Result<ProductKey, ResolveError> {
    let what = format!("the host key of activation object `{name}`");
    let secret = key.resolve(&what)?;
    let parsed = ProductKey::parse(&secret).map_err(|e| ResolveError::ActivationObjectKey {
        name: name.to_string(),
        reason: e.to_string(),
    })?;
    if !parsed.partial().eq_ignore_ascii_case(partial) {
        return Err(ResolveError::ActivationObjectKeyChanged {
            name: name.to_string(),
            now: parsed.partial(),
            planned: partial.to_string(),
        });
    }
    Ok(parsed)
}

/// Installs the host key of `product`, read now (see [`resolve_host_key`]).
fn install_host_key(
    host: &str,
    product: ProductId,
    key: &DeclaredSecret,
    partial: &str,
) -> Result<TargetOp, ResolveError> {
    Ok(TargetOp::InstallProductKey {
        product,
        key: resolve_host_key(host, product, key, partial)?,
    })
}

/// Deposits the confirmation ID of `product`, read now.
fn activate_by_phone(
    host: &str,
    product: ProductId,
    confirmation_id: &DeclaredSecret,
) -> Result<TargetOp, ResolveError> {
    let what = format!("hosts.{host}.products.{product}.confirmation_id");
    let secret = confirmation_id.resolve(&what)?;
    let cid = ConfirmationId::parse(&secret).map_err(|m| ResolveError::ConfirmationId {
        product,
        reason: m.to_string(),
    })?;
    Ok(TargetOp::ActivateByPhone {
        product,
        confirmation_id: cid,
    })
}

/// Installs the public KMS client setup key (GVLK) of `edition` on `product`.
fn install_client_key(product: ProductId, edition: &str) -> Result<TargetOp, ResolveError> {
    Ok(TargetOp::InstallProductKey {
        product,
        key: client_key(edition)?,
    })
}

/// Why a host refuses a DNS record change.
fn not_a_dns_server(host: &str) -> ResolveError {
    ResolveError::NotADnsServer {
        host: host.to_string(),
    }
}

fn set_firewall_rule(
    group: RuleGroup,
    rule: &str,
    enabled: bool,
    profiles: &[Profile],
    remote_addresses: &Option<Vec<String>>,
) -> TargetOp {
    TargetOp::SetFirewallRule {
        group,
        rule: rule.to_string(),
        enabled,
        profiles: profiles.to_vec(),
        remote_addresses: remote_addresses.clone(),
    }
}

/// The public KMS client setup key (GVLK) of an edition of kmsconf's table.
fn client_key(edition: &str) -> Result<ProductKey, ResolveError> {
    let e = kmsconf_model::catalog::edition(edition).ok_or_else(|| ResolveError::NoClientKey {
        edition: edition.to_string(),
    })?;
    ProductKey::parse(&kmsconf_engine::secret::Secret::new(e.key.clone())).map_err(|m| {
        ResolveError::ClientKey {
            edition: edition.to_string(),
            reason: m.to_string(),
        }
    })
}

/// Reads the host key of `product` now, and checks it is still the key the plan was made with
/// (the one ending in `partial`).
fn resolve_host_key(
    host: &str,
    product: ProductId,
    key: &DeclaredSecret,
    partial: &str,
) -> Result<ProductKey, ResolveError> {
    let what = format!("hosts.{host}.products.{product}.host_key");
    let secret = key.resolve(&what)?;
    let parsed = ProductKey::parse(&secret).map_err(|m| ResolveError::HostKey {
        product,
        reason: m.to_string(),
    })?;
    if parsed.partial() != partial {
        return Err(ResolveError::HostKeyChanged {
            product,
            from: key.source.describe(),
            now: parsed.partial().to_string(),
            planned: partial.to_string(),
        });
    }
    Ok(parsed)
}

/// What of a saved plan's secrets no longer fits it: a host key that now ends in other
/// characters than the plan recorded, or a secret that cannot be read or is malformed. Checked
/// for every entry before the first change on any, so a stale plan changes nothing.
pub fn secret_staleness(plan: &KmsHostPlan) -> Vec<ResolveError> {
    plan.changes
        .iter()
        .filter_map(|change| match &change.operation {
            op @ (PlanOp::InstallProductKey { .. }
            | PlanOp::ActivateByPhone { .. }
            | PlanOp::CreateActivationObjectByPhone { .. }) => resolve(&plan.name, op).err(),
            PlanOp::UpdateSrvRecord {
                tsig: Some(key), ..
            } => resolve_tsig(key).err(),
            _ => None,
        })
        .collect()
}

/// The places where the host's state differs from the state a saved plan was made from
/// (`service.port: 1688 -> 1689`), empty when the plan is still current. What changes by itself
/// (clock, counts, request counters, grace minutes) is not compared.
pub fn staleness(planned: &EntryState, now: &EntryState) -> Vec<String> {
    use serde_json::to_value;
    let (a, b) = match (planned.stable(), now.stable()) {
        (EntryState::KmsHost(a), EntryState::KmsHost(b)) => (to_value(a), to_value(b)),
        (EntryState::DnsServer(a), EntryState::DnsServer(b)) => return dns::drift(&a, &b),
        (EntryState::ActiveDirectory(a), EntryState::ActiveDirectory(b)) => {
            return kmsconf_providers::adba::drift(&a, &b)
        }
        _ => return vec!["it is no longer the same kind of entry (KMS host or DNS server)".into()],
    };
    let (Ok(a), Ok(b)) = (a, b) else {
        return vec!["the state could not be compared".into()];
    };
    let mut out = Vec::new();
    diff_values("", &a, &b, &mut out);
    out
}

fn diff_values(path: &str, a: &Value, b: &Value, out: &mut Vec<String>) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            for k in keys {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                diff_values(
                    &p,
                    x.get(k).unwrap_or(&Value::Null),
                    y.get(k).unwrap_or(&Value::Null),
                    out,
                );
            }
        }
        _ if a != b => out.push(format!("{path}: {a} -> {b}")),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kmsconf_model::config::ProductId;
    use kmsconf_model::state::HostState;

    #[test]
    fn what_changes_by_itself_does_not_make_a_plan_stale() {
        let planned = HostState::fresh_windows_server("KMS01");
        let mut now = planned.clone();
        now.clock = Some(1_795_000_000);
        let w = now.products.get_mut(&ProductId::Windows).expect("windows");
        w.grace_minutes -= 90;
        w.current_count = Some(7);
        w.requests.total = 12;
        let host = |s: &HostState| EntryState::KmsHost(s.clone());
        assert!(staleness(&host(&planned), &host(&now)).is_empty());
        let port = kmsconf_model::settings::find("port").expect("row");
        now.service
            .store(port, kmsconf_model::settings::SettingValue::U16(1689));
        assert_eq!(
            staleness(&host(&planned), &host(&now)),
            ["service.port: 0 -> 1689"]
        );
    }

    #[test]
    fn a_state_saved_before_the_day_2_fields_still_loads() {
        let mut value =
            serde_json::to_value(HostState::fresh_windows_server("KMS01")).expect("to json");
        let host = value.as_object_mut().expect("object");
        for key in ["clock", "client_machine_id", "remaining_rearm_count"] {
            host.remove(key);
        }
        let products = host["products"]["windows"]
            .as_object_mut()
            .expect("windows");
        for key in ["current_count", "required_count", "requests"] {
            products.remove(key);
        }
        let old: HostState = serde_json::from_value(value).expect("old state loads");
        assert_eq!(old.remaining_rearm_count, None);
    }

    /// A host lost before its first batch: the change fails with the target's message, and the
    /// target's typed error reaches the app as the run's failure, with its kind.
    #[test]
    fn the_target_error_that_stops_a_host_comes_back_typed() {
        use kmsconf_model::config::TargetSpec;
        use kmsconf_model::{Action, KmsChange};

        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("kms01.json");
        kmsconf_targets::lab::with_lab_file(&path, true, |f| {
            f.unreachable = true;
            Ok(())
        })
        .expect("lab host");
        let spec = TargetSpec::Lab { path };
        let target = kmsconf_targets::open("kms01", &spec, &Default::default()).expect("open");
        let plan = KmsHostPlan {
            name: "kms01".into(),
            target: spec,
            depends_on: vec![],
            created: false,
            observed: EntryState::KmsHost(HostState::fresh_windows_server("KMS01")),
            changes: vec![KmsChange {
                address: "service.restart".into(),
                action: Action::Restart,
                before: Value::Null,
                after: Value::Null,
                equivalent: None,
                depends_on: vec![],
                note: None,
                operation: PlanOp::RestartService,
            }],
            notices: vec![],
        };
        let run = apply_entry(target.as_ref(), &plan).expect("acyclic");
        assert_eq!(run.failed(), 1);
        let stopped = run.stopped.expect("the run says why the host stopped");
        assert_eq!(stopped.kind, FailureKind::Unreachable);
        assert!(
            stopped.message.contains("is set unreachable"),
            "{stopped:?}"
        );
    }
}
