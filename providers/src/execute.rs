//! Runs a planned host through its target: resolves each operation's secrets at the last moment,
//! sends one batch per dependency level, and checks a saved plan is not stale. The DNS server
//! entry of a plan runs the same way, with one UPDATE per zone.

use kmsconf_engine::apply::{run_host, HostRun};
use kmsconf_engine::config::TargetSpec;
use kmsconf_engine::secret::{ConfirmationId, ProductKey, TsigSecret};
use kmsconf_engine::target::Outcome;
use serde_json::Value;

use crate::dns::{self, DnsState, TsigCredentials};
use crate::ops::{PlanOp, TargetOp};
use crate::state::Observed;
use crate::targets::dns::DnsServer;
use crate::targets::DynTarget;
use crate::{Error, KmsHostPlan};

/// Rediscovers the DNS server of a saved plan's entry `dns` and lists what changed since the
/// plan was made.
pub fn dns_drift(plan: &KmsHostPlan) -> Result<Vec<String>, Error> {
    let state = dns_state(plan)?;
    let zones = state.zones.keys().cloned().collect();
    let names = state.targets.keys().cloned().collect();
    let server = DnsServer::new(dns_server(plan)?, zones, names);
    let now = Observed::DnsServer(server.discover()?);
    Ok(staleness(&plan.observed, &now))
}

fn dns_state(plan: &KmsHostPlan) -> Result<&DnsState, Error> {
    match &plan.observed {
        Observed::DnsServer(state) => Ok(state),
        Observed::KmsHost(_) => Err(Error::Plan {
            host: plan.name.clone(),
            message: "a KMS host is not a DNS server".into(),
        }),
    }
}

fn dns_server(plan: &KmsHostPlan) -> Result<&str, Error> {
    match &plan.target {
        TargetSpec::Dns { server } => Ok(server),
        other => Err(Error::Plan {
            host: plan.name.clone(),
            message: format!("DNS records planned for `{other}`, which is not a DNS server"),
        }),
    }
}

/// Applies the plan's entry `dns`: every zone's record changes in one atomic UPDATE.
pub fn apply_dns(plan: &KmsHostPlan) -> Result<HostRun, Error> {
    let observed = dns_state(plan)?;
    let server = DnsServer::new(dns_server(plan)?, Vec::new(), Vec::new());
    let run = run_host(&plan.changes, |batch| {
        let ops: Vec<&PlanOp> = batch.iter().map(|c| &c.operation).collect();
        let tsig = match resolve_tsig(&ops) {
            Ok(tsig) => tsig,
            Err(message) => {
                let failed = Outcome::Failed {
                    code: None,
                    message,
                };
                return Ok(vec![failed; batch.len()]);
            }
        };
        let updates = dns::zone_updates(observed, &ops, tsig);
        let sent: Vec<_> = updates.iter().map(|(u, _)| u.clone()).collect();
        let answers = server.execute(&sent).map_err(|e| e.to_string())?;
        let mut outcomes: Vec<Option<Outcome>> = vec![None; batch.len()];
        for ((_, positions), outcome) in updates.iter().zip(answers) {
            for i in positions {
                outcomes[*i] = Some(outcome.clone());
            }
        }
        Ok(outcomes
            .into_iter()
            .map(|o| {
                o.unwrap_or(Outcome::Failed {
                    code: None,
                    message: "not a DNS record change".into(),
                })
            })
            .collect())
    })?;
    Ok(run)
}

/// Reads the TSIG secret the record changes name (they all name the same key).
fn resolve_tsig(ops: &[&PlanOp]) -> Result<Option<TsigCredentials>, String> {
    let key = ops.iter().find_map(|op| match op {
        PlanOp::UpdateSrvRecord { tsig, .. } => tsig.as_ref(),
        _ => None,
    });
    let Some(key) = key else {
        return Ok(None);
    };
    let secret = key
        .secret
        .resolve("dns.tsig.secret")
        .map_err(|e| e.to_string())?;
    let secret = TsigSecret::parse(&secret)
        .map_err(|m| format!("the secret of TSIG key `{}` is malformed: {m}", key.name))?;
    Ok(Some(TsigCredentials {
        name: key.name.clone(),
        algorithm: key.algorithm,
        secret,
    }))
}

/// Applies one host's planned changes.
pub fn apply_host(target: &DynTarget, plan: &KmsHostPlan) -> Result<HostRun, Error> {
    let run = run_host(&plan.changes, |batch| {
        let mut outcomes: Vec<Option<Outcome>> = Vec::with_capacity(batch.len());
        let mut ops = Vec::new();
        for change in batch {
            match resolve(&plan.name, &change.operation) {
                Ok(op) => {
                    ops.push(op);
                    outcomes.push(None);
                }
                Err(message) => outcomes.push(Some(Outcome::Failed {
                    code: None,
                    message,
                })),
            }
        }
        let mut answers = if ops.is_empty() {
            Vec::new().into_iter()
        } else {
            // keys and confirmation IDs show masked or redacted: their Debug never exposes them
            tracing::trace!(host = %plan.name, ?ops, "sending a batch");
            let answers = target.execute(&ops).map_err(|e| e.to_string())?;
            tracing::trace!(host = %plan.name, ?answers, "batch answered");
            answers.into_iter()
        };
        Ok(outcomes
            .into_iter()
            .map(|o| {
                o.or_else(|| answers.next()).unwrap_or(Outcome::Failed {
                    code: None,
                    message: "the host gave no result for this operation".into(),
                })
            })
            .collect())
    })?;
    Ok(run)
}

/// Turns a planned operation into what the target receives, reading secrets now.
fn resolve(host: &str, op: &PlanOp) -> Result<TargetOp, String> {
    Ok(match op {
        PlanOp::InstallLicensePack { product, path, .. } => TargetOp::InstallLicensePack {
            product: *product,
            path: path.clone(),
        },
        PlanOp::InstallProductKey {
            product,
            key,
            partial,
        } => {
            let what = format!("hosts.{host}.products.{product}.host_key");
            let secret = key.resolve(&what).map_err(|e| e.to_string())?;
            let parsed = ProductKey::parse(&secret)
                .map_err(|m| format!("the host key of `{product}` is malformed: {m}"))?;
            if parsed.partial() != *partial {
                return Err(format!(
                    "stale plan: the host key of `{product}` from {} now ends in {}, but the plan was made with a key ending in {partial}",
                    key.source.describe(),
                    parsed.partial()
                ));
            }
            TargetOp::InstallProductKey {
                product: *product,
                key: parsed,
            }
        }
        PlanOp::ActivateOnline { product } => TargetOp::ActivateOnline { product: *product },
        PlanOp::ShowInstallationId { product } => {
            TargetOp::ShowInstallationId { product: *product }
        }
        PlanOp::ActivateByPhone {
            product,
            confirmation_id,
        } => {
            let what = format!("hosts.{host}.products.{product}.confirmation_id");
            let secret = confirmation_id.resolve(&what).map_err(|e| e.to_string())?;
            let cid = ConfirmationId::parse(&secret)
                .map_err(|m| format!("the confirmation ID of `{product}` is malformed: {m}"))?;
            TargetOp::ActivateByPhone {
                product: *product,
                confirmation_id: cid,
            }
        }
        PlanOp::SetService(s) => TargetOp::SetService(s.clone()),
        PlanOp::RestartService => TargetOp::RestartService,
        PlanOp::SetRuleGroup {
            group,
            enabled,
            remote_addresses,
        } => TargetOp::SetRuleGroup {
            group: *group,
            enabled: *enabled,
            remote_addresses: remote_addresses.clone(),
        },
        PlanOp::SetPortRule {
            port,
            remote_addresses,
        } => TargetOp::SetPortRule {
            port: *port,
            remote_addresses: remote_addresses.clone(),
        },
        PlanOp::RemovePortRule => TargetOp::RemovePortRule,
        PlanOp::UpdateSrvRecord { .. } => {
            return Err(format!(
                "a DNS record change was planned for host `{host}`, which is not a DNS server"
            ))
        }
    })
}

/// The places where the host's state differs from the state a saved plan was made from
/// (`service.port: 1688 -> 1689`), empty when the plan is still current. What changes by itself
/// (clock, counts, request counters, grace minutes) is not compared.
pub fn staleness(planned: &Observed, now: &Observed) -> Vec<String> {
    use serde_json::to_value;
    let (a, b) = match (planned.stable(), now.stable()) {
        (Observed::KmsHost(a), Observed::KmsHost(b)) => (to_value(a), to_value(b)),
        (Observed::DnsServer(a), Observed::DnsServer(b)) => return dns::drift(&a, &b),
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
    use crate::state::HostState;
    use kmsconf_engine::config::ProductId;

    #[test]
    fn what_changes_by_itself_does_not_make_a_plan_stale() {
        let planned = HostState::fresh_windows_server("KMS01");
        let mut now = planned.clone();
        now.clock = Some(1_795_000_000);
        let w = now.products.get_mut(&ProductId::Windows).expect("windows");
        w.grace_minutes -= 90;
        w.current_count = Some(7);
        w.requests.total = 12;
        let host = |s: &HostState| Observed::KmsHost(s.clone());
        assert!(staleness(&host(&planned), &host(&now)).is_empty());
        now.service.port = 1689;
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
}
