//! Phone activation of an activation object, while planning: a missing object declared with
//! `activation = "phone"` and no confirmation ID yet asks its `via` host for the forest's
//! installation ID (`GenerateActiveDirectoryOfflineActivationId`, which changes nothing), so
//! the plan can show it for the activation line. The key travels only to that host.

use kmsconf_engine::target::ChangeStatus;
use kmsconf_model::config::Config;
use kmsconf_model::ops::EntryOp;
use kmsconf_model::{KmsPlan, PlanOp};
use kmsconf_providers::adba;
use kmsconf_targets::DynTarget;

/// Fills in the note of each pending phone object with the installation ID its `via` host
/// generated, or why it could not; `target` finds a planned entry's opened target.
pub fn show<'t>(
    plan: &mut KmsPlan,
    config: &Config,
    target: impl Fn(&str) -> Option<&'t DynTarget>,
) {
    let Some(cfg) = config.active_directory.as_ref() else {
        return;
    };
    for host in &mut plan.hosts {
        let Some(via) = target(&host.name) else {
            continue;
        };
        for change in &mut host.changes {
            let PlanOp::ShowActivationObjectInstallationId { name, .. } = &change.operation else {
                continue;
            };
            let Some(object) = cfg.objects.iter().find(|o| &o.name == name) else {
                continue;
            };
            let answer = generate(via, &host.name, &change.operation);
            change.note = Some(adba::pending_note(object, Some(answer)));
        }
    }
}

/// The installation ID `via` generates for the operation's key, or why it could not.
fn generate(via: &DynTarget, host: &str, op: &PlanOp) -> Result<String, adba::InstallationIdError> {
    use adba::InstallationIdError as E;
    let op = crate::execute::resolve(host, op).map_err(|e| E::Unsent(Box::new(e)))?;
    let mut answers = via
        .execute(&[EntryOp::Host(op)])
        .map_err(|e| E::Unsent(Box::new(e)))?
        .into_iter();
    match answers.next() {
        Some(ChangeStatus::Pending { message }) => {
            adba::installation_id_in(&message).ok_or(E::NoId(message))
        }
        Some(ChangeStatus::Failed { message, .. }) => Err(E::Refused(message)),
        Some(other) => Err(E::Unexpected(format!("{other:?}"))),
        None => Err(E::NoAnswer),
    }
}
