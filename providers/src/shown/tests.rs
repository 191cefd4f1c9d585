use super::*;
use kmsconf_engine::target::Discovery;
use kmsconf_model::config::Config;
use kmsconf_model::state::ProductState;

/// A KMS host with a Windows host key and kmsconf's port rule, planned for retirement: the
/// client key replacing the host key, firewall rules, port rule removal and restart.
fn retired_plan() -> KmsHostPlan {
    let text = "[hosts.kms01]\ntarget = \"lab:kms01.json\"\nstate = \"retired\"\n";
    let config = Config::parse(std::path::Path::new("kmsconf.toml"), text).expect("config");
    let mut state = HostState::fresh_windows_server("KMS01");
    state.products.insert(
        ProductId::Windows,
        ProductState {
            activation_id: Some("11111111-2222-4333-8444-555555555555".into()),
            partial_key: Some("6789B".into()),
            channel: Channel::KmsHost,
            license_status: LicenseStatus::Licensed,
            ..ProductState::empty()
        },
    );
    for rule in state
        .firewall
        .groups
        .values_mut()
        .flat_map(|g| g.rules.values_mut())
    {
        rule.enabled = true;
    }
    state.firewall.port_rule = Some(PortRule {
        port: 1689,
        remote_addresses: vec![],
        profiles: Profile::ALL.to_vec(),
    });
    let port = kmsconf_model::settings::find("port").expect("row");
    state
        .service
        .store(port, kmsconf_model::settings::SettingValue::U16(1689));
    let discovery = Discovery {
        state,
        created: false,
    };
    crate::registry::plan_host(&config.hosts["kms01"], discovery).expect("plan")
}

#[test]
fn a_planned_host_shows_what_its_operations_do() {
    let host = retired_plan();
    assert!(host.changes.len() >= 6, "{:?}", host.changes);
    check(&host).expect("a plan kmsconf makes passes");
}

/// Each field a reviewer reads, edited alone, and an operation edited under its display.
#[test]
fn an_edited_display_or_operation_is_refused_naming_the_change() {
    const PORT_RULE: &str = "firewall.kms-port-rule";
    const KEY: &str = crate::contract::CLIENT_KEY;
    type Edit = fn(&mut KmsChange);
    let edits: [(&str, &str, Edit); 5] = [
        (PORT_RULE, "after", |c| c.after = json!("anything")),
        (PORT_RULE, "equivalent", |c| c.equivalent = None),
        (PORT_RULE, "before", |c| c.before = json!(1688)),
        (PORT_RULE, "action", |c| c.action = Action::Create),
        (KEY, "after", |c| {
            if let PlanOp::InstallClientKey { edition, .. } = &mut c.operation {
                *edition = "windows-server-2019-datacenter".into();
            }
        }),
    ];
    for (address, field, edit) in edits {
        let mut host = retired_plan();
        let change = host.changes.iter_mut().find(|c| c.address == address);
        edit(change.expect("planned"));
        let e = check(&host).expect_err(field).to_string();
        assert!(
            e.starts_with(&format!(
                "host `kms01`, change `{address}`: its `{field}` is `"
            )),
            "{field}: {e}"
        );
    }
}

#[test]
fn a_host_operation_in_the_dns_entry_is_refused() {
    let mut host = retired_plan();
    host.observed = EntryState::DnsServer(Default::default());
    let e = check(&host).expect_err("wrong entry").to_string();
    assert!(
        e.ends_with("its operation is not one for this kind of entry"),
        "{e}"
    );
}

#[test]
fn the_equivalent_of_a_record_change_is_nsupdate_input() {
    let srv = |port| SrvRecord {
        priority: 0,
        weight: 100,
        port,
        target: "kms01.z".into(),
        ttl: 3600,
    };
    let shown = srv_record("corp.example", Some(&srv(1688)), Some(&srv(1689)));
    assert_eq!(shown.action, Action::Update);
    assert_eq!(shown.equivalent, "nsupdate: update delete _vlmcs._tcp.corp.example. SRV 0 100 1688 kms01.z.; update add _vlmcs._tcp.corp.example. 3600 SRV 0 100 1689 kms01.z.");
}
