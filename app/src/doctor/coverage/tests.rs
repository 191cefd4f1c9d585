use kmsconf_model::state::ProductState;

use super::*;

fn host(os: &str, keys: &[(ProductId, Option<&str>, LicenseStatus)]) -> HostState {
    let mut state = HostState::fresh_windows_server("KMS01");
    state.os = os.to_string();
    for (id, description, status) in keys {
        state.products.insert(
            *id,
            ProductState {
                partial_key: Some("6789B".into()),
                channel: Channel::KmsHost,
                license_status: *status,
                description: description.map(str::to_string),
                ..ProductState::empty()
            },
        );
    }
    state
}

fn fleet(clients: &[&str]) -> FleetConfig {
    FleetConfig {
        clients: clients.iter().map(|c| c.to_string()).collect(),
        activation_ids: Default::default(),
    }
}

const WS22: &str = "Windows(R) Operating System, VOLUME_KMS_WS22 channel";
const WS25: &str = "Windows(R) Operating System, VOLUME_KMS_WS25 channel";

#[test]
fn a_licensed_key_on_a_host_it_installs_on_covers_its_clients() {
    let kms01 = host(
        "Microsoft Windows Server 2022 Datacenter",
        &[
            (ProductId::Windows, Some(WS22), LicenseStatus::Licensed),
            (
                ProductId::Office2024,
                Some("Office 16, VOLUME_KMS channel"),
                LicenseStatus::Licensed,
            ),
        ],
    );
    let checks = check_coverage(
        &fleet(&[
            "windows-11",
            "office-ltsc-2024",
            "windows-server-2025",
            "office-2019",
        ]),
        &[("kms01", &kms01)],
    );
    let verdicts: Vec<(Option<&str>, Verdict)> = checks
        .iter()
        .map(|c| (c.subject.as_deref(), c.status))
        .collect();
    assert_eq!(
        verdicts,
        [
            (Some("windows-11"), Verdict::Ok),
            (Some("office-ltsc-2024"), Verdict::Ok),
            (Some("windows-server-2025"), Verdict::Failed),
            (Some("office-2019"), Verdict::Failed),
        ]
    );
    assert!(checks
        .iter()
        .all(|c| c.host == FLEET && c.check == CLIENT_COVERAGE));
    assert!(checks[0]
        .detail
        .contains("host `kms01`'s KMS host key of group `Volume License for Windows Server 2022`"));
    // the key needed, on the host the config has, with the update that host needs
    assert_eq!(
        checks[2].fix.as_deref(),
        Some("install and activate a KMS host key of group `Volume License for Windows Server 2025` on host `kms01` (Windows Server 2022, with KB5034765 (February 13, 2024) or a later cumulative update)")
    );
    assert_eq!(checks[2].code.as_deref(), Some("0xC004F042"));
    assert!(checks[3]
        .fix
        .as_deref()
        .is_some_and(|f| f.contains("group `Office 2019` on host `kms01`")));
}

#[test]
fn a_2025_key_on_2019_names_its_update_and_on_2016_fails() {
    let on_2019 = host(
        "Microsoft Windows Server 2019 Standard",
        &[(ProductId::Windows, Some(WS25), LicenseStatus::Licensed)],
    );
    let ok = check_coverage(&fleet(&["windows-server-2025"]), &[("kms01", &on_2019)]);
    assert_eq!(ok[0].status, Verdict::Ok);
    assert!(ok[0].detail.contains("needs KB5034768"), "{}", ok[0].detail);

    let on_2016 = host(
        "Microsoft Windows Server 2016 Standard",
        &[(ProductId::Windows, Some(WS25), LicenseStatus::Licensed)],
    );
    let failed = check_coverage(&fleet(&["windows-server-2025"]), &[("kms01", &on_2016)]);
    assert_eq!(failed[0].status, Verdict::Failed);
    assert!(
        failed[0]
            .detail
            .contains("key of group `Volume License for Windows Server 2025` is on Windows Server 2016, which it does not install on"),
        "{}",
        failed[0].detail
    );
    assert_eq!(
        failed[0].fix.as_deref(),
        Some("install and activate a KMS host key of group `Volume License for Windows Server 2025` on a host running Windows Server 2025, Windows Server 2022 or Windows Server 2019")
    );
}

#[test]
fn an_unlicensed_or_unknown_key_does_not_cover() {
    let unlicensed = host(
        "Windows Server 2022 Datacenter",
        &[(ProductId::Windows, Some(WS22), LicenseStatus::InitialGrace)],
    );
    let c = check_coverage(&fleet(&["windows-10"]), &[("kms01", &unlicensed)]);
    assert_eq!(c[0].status, Verdict::Failed);
    assert!(c[0].detail.contains("is not licensed"), "{}", c[0].detail);

    let unknown = host(
        "Windows Server 2022 Datacenter",
        &[(
            ProductId::Windows,
            Some("Windows(R), VOLUME_KMS channel"),
            LicenseStatus::Licensed,
        )],
    );
    let c = check_coverage(&fleet(&["windows-10"]), &[("kms01", &unknown)]);
    assert_eq!(c[0].status, Verdict::Warning);
    assert!(c[0].detail.contains("names no group"), "{}", c[0].detail);

    let none = check_coverage(&fleet(&["windows-7"]), &[]);
    assert_eq!(none[0].status, Verdict::Failed);
}
