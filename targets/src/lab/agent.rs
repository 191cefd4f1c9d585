//! `kmsconf lab agent PATH`: the Windows agent's protocol on standard input and output, for a
//! host whose state is the lab file PATH. It reads the agent script a real host would run and,
//! as the bootstrap does there, checks that it is the agent this kmsconf embeds (answering one
//! `damaged` line and nothing else when it is not, one `ready` line when it is), then answers each request line as the agent does: `begin`, then one answer with
//! the CIM-shaped read-back of [`super::cim`], the effects coming from the lab simulation
//! ([`super::operations`]). Behind `ssh` it tests the whole Windows path (transport, session,
//! protocol, CIM parsing, read-back verification) against a host whose state changes.

use std::io::{BufRead, Write};
use std::path::Path;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use kmsconf_engine::lock::{LockGuard, LockHolder};
use kmsconf_engine::secret::Secret;
use kmsconf_engine::target::{ChangeStatus, Target};
use kmsconf_model::catalog;
use kmsconf_model::config::{ProductId, Profile, RuleGroup};
use kmsconf_model::events::EventQuery;
use kmsconf_model::keys::{ConfirmationId, ProductKey};
use kmsconf_model::ops::{OpKind, ServiceSetting, TargetOp};
use kmsconf_model::settings;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::{cim, clients, operations, LabFile, LabTarget};
use crate::powershell::{self, Damage, DAMAGED};
use crate::Error;

/// One request line, as the agent reads it.
#[derive(Deserialize)]
struct Incoming {
    id: u64,
    op: String,
    #[serde(flatten)]
    args: Map<String, Value>,
}

/// What the agent answers a request: its kind, and `Ok(answer)` or the HRESULT and message of
/// a failure.
type Reply = (&'static str, Result<Value, (Option<u32>, String)>);

/// Why the agent refuses a request, in the words its answer carries.
#[derive(Debug, thiserror::Error)]
enum RequestError {
    #[error("argument `{name}`: {source}")]
    Argument {
        name: String,
        source: serde_json::Error,
    },
    #[error("argument `profiles`: `{}` is not a list of profiles", names.join(", "))]
    Profiles { names: Vec<String> },
    /// An argument the model refuses (a product key, a confirmation ID, a setting's value), in
    /// the model's words.
    #[error("{message}")]
    Invalid {
        argument: &'static str,
        message: String,
    },
    #[error("no setting `{key}`")]
    UnknownSetting { key: String },
    #[error("argument `value`: {0}")]
    Value(#[source] serde_json::Error),
    #[error("unknown operation {0}")]
    UnknownOperation(String),
    #[error("the lock record: {0}")]
    LockRecord(#[source] serde_json::Error),
    #[error(transparent)]
    Lab(#[from] Error),
}

impl RequestError {
    fn invalid<E: std::fmt::Display>(argument: &'static str) -> impl FnOnce(E) -> Self {
        move |e| Self::Invalid {
            argument,
            message: e.to_string(),
        }
    }
}

/// The agent's session: the host, and the apply lock this session holds.
struct Agent {
    target: LabTarget,
    lock: Option<(String, LockGuard)>,
}

/// How a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Served {
    /// The input ended after the requests it held.
    Ended,
    /// The agent that arrived is not the one this kmsconf embeds: no request was read.
    Damaged,
}

/// Serves requests from `input` until it ends, answering on `output`. `Err` when the lab file
/// cannot be used, or the host is set unreachable (the session then ends, as a lost connection).
pub fn serve(path: &Path, input: impl BufRead, mut output: impl Write) -> Result<Served, Error> {
    let io = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut agent = Agent {
        // the client's own timeout bounds each request; the agent waits out any latency set
        target: LabTarget::new(
            "agent",
            path.to_path_buf(),
            Duration::from_millis(super::MAX_LATENCY_MS),
        ),
        lock: None,
    };
    let mut lines = input.lines();
    // the agent script: a real host runs it once its SHA-256 is the one the bootstrap carries;
    // the lab is that agent already, so it checks against the one this kmsconf embeds
    let script = lines.next().transpose().map_err(io)?;
    if let Some(damage) = damage(script.as_deref()) {
        let body = serde_json::to_string(&damage).unwrap_or_default();
        writeln!(output, "KMSCONF:{DAMAGED}:{}", BASE64.encode(body)).map_err(io)?;
        output.flush().map_err(io)?;
        return Ok(Served::Damaged);
    }
    // as the bootstrap does: the agent is intact, and runs
    writeln!(output, "{}", powershell::READY_LINE).map_err(io)?;
    output.flush().map_err(io)?;
    while let Some(line) = lines.next().transpose().map_err(io)? {
        if line.trim().is_empty() {
            continue;
        }
        let incoming: Incoming = match serde_json::from_str(&line) {
            Ok(i) => i,
            Err(e) => {
                let message = format!("unreadable request: {e}");
                send(&mut output, "error", None, Err((None, message))).map_err(io)?;
                continue;
            }
        };
        send(&mut output, "begin", Some(incoming.id), Ok(Value::Null)).map_err(io)?;
        let (kind, reply) = agent.handle(&incoming)?;
        send(&mut output, kind, Some(incoming.id), reply).map_err(io)?;
    }
    Ok(Served::Ended)
}

/// What the bootstrap would report of the agent line `line`, as it checks it: `None` when it
/// decodes to the agent this kmsconf embeds.
fn damage(line: Option<&str>) -> Option<Damage> {
    let expected = powershell::agent_sha256();
    let bytes = line.and_then(|l| BASE64.decode(l.trim()).ok());
    let received = bytes.as_deref().map(powershell::sha256).unwrap_or_default();
    (received != expected).then(|| Damage {
        expected: expected.to_string(),
        received,
        bytes: bytes.map(|b| b.len() as u64),
    })
}

/// Writes one `KMSCONF:` line: `begin` with the ID alone, any other kind with the envelope.
fn send(
    out: &mut impl Write,
    kind: &str,
    id: Option<u64>,
    reply: Result<Value, (Option<u32>, String)>,
) -> std::io::Result<()> {
    let body = match (kind, reply) {
        ("begin", _) => json!({ "Id": id }),
        (_, Ok(answer)) => {
            json!({ "Id": id, "Ok": true, "HResult": null, "Message": null, "Answer": answer })
        }
        (_, Err((code, message))) => json!({
            "Id": id, "Ok": false,
            "HResult": code.map(catalog::format_code), "Message": message,
        }),
    };
    writeln!(out, "KMSCONF:{kind}:{}", BASE64.encode(body.to_string()))?;
    out.flush()
}

/// A request's argument `name`.
/// The bounds of a `read_kms_events` request: the window in seconds and the two caps.
fn event_query(a: &Map<String, Value>) -> Result<EventQuery, RequestError> {
    Ok(EventQuery {
        window_seconds: arg(a, "window_seconds")?,
        max_events: arg(a, "max_events")?,
        max_bytes: arg(a, "max_bytes")?,
    })
}

fn arg<T: DeserializeOwned>(args: &Map<String, Value>, name: &str) -> Result<T, RequestError> {
    let value = args.get(name).cloned().unwrap_or(Value::Null);
    serde_json::from_value(value).map_err(|source| RequestError::Argument {
        name: name.to_string(),
        source,
    })
}

impl Agent {
    fn handle(&mut self, request: &Incoming) -> Result<Reply, Error> {
        let a = &request.args;
        let failed = |e: RequestError| Err((None, e.to_string()));
        Ok(match request.op.as_str() {
            "discover" => ("discovery", self.discover()?),
            "lock" => ("lock", self.take_lock(a).or_else(failed)),
            "unlock" => ("unlock", self.release(a).or_else(failed)),
            "read_kms_events" => match event_query(a) {
                Ok(query) => ("result", Ok(self.read_events(&query)?)),
                Err(e) => ("result", failed(e)),
            },
            "read_winrm_service" => ("result", Ok(self.read_winrm_service()?)),
            _ => match operation(&request.op, a) {
                Ok(op) => ("result", self.run(&op)?),
                Err(e) => ("result", failed(e)),
            },
        })
    }

    fn discover(&self) -> Result<Result<Value, (Option<u32>, String)>, Error> {
        let (answer, _) =
            self.target
                .round_trip(|file| match file.take_fault(OpKind::Discover) {
                    Some(code) => Err((Some(code), "injected lab fault".to_string())),
                    None => {
                        let state = clients::observe(file, kmsconf_model::clock::now());
                        Ok(cim::discovery(&state, file.running_service.as_ref()))
                    }
                })?;
        Ok(answer)
    }

    /// The lab host's event log as the agent's `read_kms_events` answers it.
    fn read_events(&self, query: &EventQuery) -> Result<Value, Error> {
        let (wire, _) = self
            .target
            .round_trip(|file| clients::event_log(file, kmsconf_model::clock::now(), query))?;
        Ok(serde_json::to_value(wire).unwrap_or(Value::Null))
    }

    /// The lab host's WinRM service settings as the agent's `read_winrm_service` answers them.
    fn read_winrm_service(&self) -> Result<Value, Error> {
        let (wire, _) = self.target.round_trip(|file| file.winrm_service())?;
        Ok(serde_json::to_value(wire).unwrap_or(Value::Null))
    }

    /// Runs one operation in the lab simulation and reads back what the agent would.
    fn run(&self, op: &TargetOp) -> Result<Result<Value, (Option<u32>, String)>, Error> {
        let ((status, read_back), _) = self.target.round_trip(|file: &mut LabFile| {
            let status = operations::run(file, op);
            let state = clients::observe(file, kmsconf_model::clock::now());
            let read_back = match (op, op.kind()) {
                // the agent answers the generated installation ID, as the method's out parameter
                (TargetOp::ShowActivationObjectInstallationId { key, .. }, _) => {
                    json!({ "InstallationId": operations::forest_installation_id(file, key) })
                }
                (_, OpKind::SetService | OpKind::Restart) => {
                    cim::read_service(&state, file.running_service.as_ref())
                }
                (_, OpKind::Firewall) => cim::read_firewall(&state),
                _ => cim::read_products(&state),
            };
            (status, read_back)
        })?;
        Ok(match status {
            ChangeStatus::Failed {
                code: Some(code),
                message,
            } => Err((Some(code), unexplained(code, &message))),
            ChangeStatus::Failed {
                code: None,
                message,
            } => Err((None, message)),
            _ => Ok(read_back),
        })
    }

    fn take_lock(&mut self, args: &Map<String, Value>) -> Result<Value, RequestError> {
        let record: String = arg(args, "holder")?;
        let holder: LockHolder = serde_json::from_str(&record).map_err(RequestError::LockRecord)?;
        match self.target.lock(&holder) {
            Ok(guard) => {
                self.lock = Some((holder.id, guard));
                Ok(json!({ "Acquired": true, "Holder": null }))
            }
            Err(Error::Locked { holder, .. }) => Ok(json!({
                "Acquired": false,
                "Holder": serde_json::to_string(&holder).unwrap_or_default(),
            })),
            Err(e) => Err(e.into()),
        }
    }

    /// Releases this session's lock, or (as a Windows host removes the lock file of a run that
    /// died) the record another run left behind, when it carries the lock ID.
    fn release(&mut self, args: &Map<String, Value>) -> Result<Value, RequestError> {
        let lock_id: String = arg(args, "lock_id")?;
        if self.lock.as_ref().is_some_and(|(id, _)| *id == lock_id) {
            let record = self.target.current_holder();
            self.lock = None;
            return Ok(json!({ "Released": true, "Holder": record_json(record) }));
        }
        match self.target.current_holder() {
            Some(h) if h.id == lock_id => {
                let removed = self.target.force_unlock(&lock_id)?;
                Ok(json!({ "Released": true, "Holder": record_json(Some(removed)) }))
            }
            record => Ok(json!({ "Released": false, "Holder": record_json(record) })),
        }
    }
}

fn record_json(holder: Option<LockHolder>) -> Option<String> {
    holder.map(|h| serde_json::to_string(&h).unwrap_or_default())
}

/// The lab's message without the explanation it added (the Windows target adds its own).
fn unexplained(code: u32, message: &str) -> String {
    let prefix = format!("{} ", catalog::format_code(code));
    let explained = catalog::explain_failure(code, "");
    let suffix = explained.strip_prefix(&prefix).unwrap_or("");
    let rest = message.strip_prefix(&prefix).unwrap_or(message);
    rest.strip_suffix(suffix).unwrap_or(rest).to_string()
}

/// The `profiles` argument by Windows names (`Domain`), as the NetSecurity cmdlets take it: the
/// cmdlets refuse an empty or unknown one.
fn profiles(a: &Map<String, Value>) -> Result<Vec<Profile>, RequestError> {
    let names: Vec<String> = arg(a, "profiles")?;
    match Profile::parse_windows(&names.join(",")).filter(|p| !p.is_empty()) {
        Some(profiles) => Ok(profiles),
        None => Err(RequestError::Profiles { names }),
    }
}

/// The operation a request stands for, from its arguments as data.
fn operation(op: &str, a: &Map<String, Value>) -> Result<TargetOp, RequestError> {
    let product = || arg::<ProductId>(a, "product");
    Ok(match op {
        "install_license_pack" => TargetOp::InstallLicensePack {
            product: product()?,
            path: arg::<String>(a, "path")?.into(),
        },
        "install_product_key" => TargetOp::InstallProductKey {
            product: product()?,
            key: ProductKey::parse(&Secret::new(arg::<String>(a, "key")?))
                .map_err(RequestError::invalid("key"))?,
        },
        "uninstall_product_key" => TargetOp::UninstallProductKey {
            product: product()?,
            activation_id: arg(a, "activation_id")?,
        },
        "activate_online" => TargetOp::ActivateOnline {
            product: product()?,
        },
        "show_installation_id" => TargetOp::ShowInstallationId {
            product: product()?,
        },
        "deposit_confirmation_id" => TargetOp::ActivateByPhone {
            product: product()?,
            confirmation_id: ConfirmationId::parse(&Secret::new(arg::<String>(
                a,
                "confirmation_id",
            )?))
            .map_err(RequestError::invalid("confirmation_id"))?,
        },
        "ad_activation_online" => TargetOp::CreateActivationObject {
            name: arg(a, "object_name")?,
            key: ProductKey::parse(&Secret::new(arg::<String>(a, "key")?))
                .map_err(RequestError::invalid("key"))?,
        },
        "ad_activation_get_iid" => TargetOp::ShowActivationObjectInstallationId {
            name: arg(a, "object_name")?,
            key: ProductKey::parse(&Secret::new(arg::<String>(a, "key")?))
                .map_err(RequestError::invalid("key"))?,
        },
        "ad_activation_apply_cid" => TargetOp::CreateActivationObjectByPhone {
            name: arg(a, "object_name")?,
            key: ProductKey::parse(&Secret::new(arg::<String>(a, "key")?))
                .map_err(RequestError::invalid("key"))?,
            confirmation_id: ConfirmationId::parse(&Secret::new(arg::<String>(
                a,
                "confirmation_id",
            )?))
            .map_err(RequestError::invalid("confirmation_id"))?,
        },
        "set_service" => {
            let key: String = arg(a, "setting")?;
            let Some(row) = settings::find(&key) else {
                return Err(RequestError::UnknownSetting { key });
            };
            let value = row
                .kind
                .from_json(a.get("value").cloned().unwrap_or(Value::Null))
                .map_err(RequestError::Value)?;
            TargetOp::SetService(
                ServiceSetting::new(row, value).map_err(RequestError::invalid("value"))?,
            )
        }
        "clear_listening_port" => TargetOp::ClearListeningPort,
        "restart_service" => TargetOp::RestartService { expect: Vec::new() },
        "set_rule_group" => TargetOp::SetRuleGroup {
            group: arg::<RuleGroup>(a, "group")?,
            enabled: arg(a, "enabled")?,
            remote_addresses: arg(a, "remote_addresses")?,
        },
        "set_firewall_rule" => TargetOp::SetFirewallRule {
            group: arg::<RuleGroup>(a, "group")?,
            rule: arg(a, "rule")?,
            enabled: arg(a, "enabled")?,
            profiles: profiles(a)?,
            remote_addresses: arg(a, "remote_addresses")?,
        },
        "set_port_rule" => TargetOp::SetPortRule {
            port: arg(a, "port")?,
            remote_addresses: arg(a, "remote_addresses")?,
            profiles: profiles(a)?,
        },
        "remove_port_rule" => TargetOp::RemovePortRule,
        other => return Err(RequestError::UnknownOperation(other.to_string())),
    })
}
