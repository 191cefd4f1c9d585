//! Service provider: the KMS settings of the Software Licensing Service (port, DNS publishing and
//! publish list, priority, intervals, host caching) and the one service restart they need.

use kmsconf_model::config::{PublishDomain, ServiceConfig};
use kmsconf_model::Action;
use serde_json::{json, Value};

use crate::planner::ChangeSpec;
use kmsconf_model::ops::{PlanOp, ServiceSetting};
use kmsconf_model::state::ServiceState;
use kmsconf_model::KmsChange;

pub const PORT: &str = "service.port";
pub const RESTART: &str = "service.restart";

/// Plans every managed setting that differs; `ready` are the changes that make the host an
/// activated KMS host, which every setting waits for.
pub(crate) fn plan_service(
    cfg: &ServiceConfig,
    state: &ServiceState,
    ready: &[String],
) -> Vec<KmsChange> {
    let desired = [
        cfg.port.map(ServiceSetting::Port),
        cfg.dns_publishing.map(ServiceSetting::DnsPublishing),
        cfg.publish_domains
            .clone()
            .map(ServiceSetting::PublishDomains),
        cfg.low_priority.map(ServiceSetting::LowPriority),
        cfg.activation_interval
            .map(ServiceSetting::ActivationInterval),
        cfg.renewal_interval.map(ServiceSetting::RenewalInterval),
        cfg.host_caching.map(ServiceSetting::HostCaching),
    ];
    let wanted: Vec<(ServiceSetting, Value)> = desired
        .into_iter()
        .flatten()
        .filter_map(|d| {
            let now = d.current(state);
            (d != now).then(|| (d, setting_value(&now)))
        })
        .collect();

    let mut changes: Vec<KmsChange> = wanted
        .into_iter()
        .map(|(setting, before)| {
            ChangeSpec::new(
                format!("service.{}", name(&setting)),
                Action::Update,
                before,
                setting_value(&setting),
            )
            .equivalent(setting.equivalent())
            .after_all(ready)
            .op(PlanOp::SetService(setting))
        })
        .collect();
    let needing: Vec<String> = changes
        .iter()
        .filter(|c| matches!(&c.operation, PlanOp::SetService(s) if s.needs_restart()))
        .map(|c| c.address.clone())
        .collect();
    if !needing.is_empty() || state.restart_pending {
        let why = if needing.is_empty() {
            "settings written earlier are waiting for this restart".to_string()
        } else {
            format!("applies {}", needing.join(", "))
        };
        let all: Vec<String> = changes.iter().map(|c| c.address.clone()).collect();
        let restart = ChangeSpec::new(
            RESTART,
            Action::Restart,
            json!("running"),
            json!("restarted"),
        )
        .equivalent("net stop sppsvc && net start sppsvc")
        .after_all(&all)
        .after_all(ready)
        .note(why)
        .op(PlanOp::RestartService);
        changes.push(restart);
    }
    changes
}

fn name(setting: &ServiceSetting) -> &'static str {
    match setting {
        ServiceSetting::Port(_) => "port",
        ServiceSetting::DnsPublishing(_) => "dns_publishing",
        ServiceSetting::PublishDomains(_) => "publish_domains",
        ServiceSetting::LowPriority(_) => "low_priority",
        ServiceSetting::ActivationInterval(_) => "activation_interval",
        ServiceSetting::RenewalInterval(_) => "renewal_interval",
        ServiceSetting::HostCaching(_) => "host_caching",
    }
}

fn setting_value(setting: &ServiceSetting) -> Value {
    match setting {
        ServiceSetting::Port(v) => json!(v),
        ServiceSetting::DnsPublishing(v)
        | ServiceSetting::LowPriority(v)
        | ServiceSetting::HostCaching(v) => json!(v),
        ServiceSetting::PublishDomains(list) => json!(list
            .iter()
            .map(PublishDomain::to_string)
            .collect::<Vec<_>>()),
        ServiceSetting::ActivationInterval(v) | ServiceSetting::RenewalInterval(v) => json!(v),
    }
}
