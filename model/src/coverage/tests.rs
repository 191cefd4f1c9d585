use super::*;
use crate::config::ProductId;

#[test]
fn the_table_parses_and_every_row_names_known_ids_and_sources() {
    let c = load().unwrap_or_else(|e| panic!("{e}"));
    let sources = c
        .client
        .iter()
        .map(|f| &f.source)
        .chain(c.host_key.iter().map(|g| &g.source))
        .chain(c.update.iter().map(|u| &u.source))
        .chain([&c.office_licensing.source]);
    for s in sources {
        assert!(
            c.sources.contains_key(s),
            "source `{s}` is not in [sources]"
        );
    }
    for g in &c.host_key {
        for os in &g.hosted_on {
            assert!(c.os(os).is_some(), "{}: host os {os}", g.id);
        }
        for client in &g.activates {
            assert!(c.client(client).is_some(), "{}: client {client}", g.id);
        }
        let product = ProductId::ALL
            .into_iter()
            .find(|p| p.id() == g.product)
            .unwrap_or_else(|| panic!("{}: product {}", g.id, g.product));
        assert_eq!(g.channel.is_some(), !product.is_office(), "{}", g.id);
    }
    for u in &c.update {
        assert!(c.os(&u.host_os).is_some(), "{}", u.update);
        for client in &u.clients {
            assert!(c.client(client).is_some(), "{}: {client}", u.update);
        }
    }
    for f in &c.client {
        assert!(
            !c.groups_for(&f.id).is_empty(),
            "{} is activated by no group",
            f.id
        );
    }
}

/// Microsoft's table: a Windows Server 2025 key installs on 2025, 2022 and 2019, and a 2019
/// host needs KB5034768 to activate Windows Server 2025.
#[test]
fn a_windows_server_2025_key_on_2019_needs_its_update() {
    let c = coverage();
    let ws25 = c.groups_for("windows-server-2025");
    assert_eq!(ws25.len(), 1);
    assert!(ws25[0].installs_on("windows-server-2019"));
    assert!(!ws25[0].installs_on("windows-server-2016"));
    let updates = c.updates_for("windows-server-2019", "windows-server-2025");
    assert_eq!(updates.len(), 1);
    assert!(updates[0].update.starts_with("KB5034768"));
    assert_eq!(
        ws25[0].hosts_in_words(),
        "Windows Server 2025, Windows Server 2022 or Windows Server 2019"
    );
    // Windows 11 needs a 2022 or 2025 key; Office LTSC 2024 only its own
    let w11: Vec<&str> = c
        .groups_for("windows-11")
        .iter()
        .map(|g| g.id.as_str())
        .collect();
    assert_eq!(w11, ["windows-server-2025", "windows-server-2022"]);
    let o24: Vec<&str> = c
        .groups_for("office-ltsc-2024")
        .iter()
        .map(|g| g.id.as_str())
        .collect();
    assert_eq!(o24, ["office-ltsc-2024"]);
}

#[test]
fn captions_and_descriptions_name_their_rows() {
    let c = coverage();
    let os = |caption: &str| c.os_of_caption(caption).map(|o| o.id.as_str());
    assert_eq!(
        os("Microsoft Windows Server 2012 R2 Standard"),
        Some("windows-server-2012-r2")
    );
    assert_eq!(
        os("Microsoft Windows Server 2012 Standard"),
        Some("windows-server-2012")
    );
    assert_eq!(
        os("Windows Server 2022 Datacenter"),
        Some("windows-server-2022")
    );
    assert_eq!(os("Microsoft Windows 11 Enterprise"), Some("windows-11"));
    assert_eq!(os("Microsoft Windows 10 Pro"), Some("windows-10"));
    assert_eq!(os("Microsoft Windows Server 20225"), None);
    assert_eq!(os("Linux"), None);
    let group = |p: ProductId, d| c.group_of(p.id(), d).map(|g| g.id.as_str());
    assert_eq!(
        group(
            ProductId::Windows,
            Some("Windows(R) Operating System, VOLUME_KMS_WS22 channel")
        ),
        Some("windows-server-2022")
    );
    assert_eq!(
        group(
            ProductId::Windows,
            Some("Windows(R) Operating System, VOLUME_KMS_2012-R2_WIN10 channel")
        ),
        Some("windows-10")
    );
    assert_eq!(
        group(ProductId::Windows, Some("Windows(R), VOLUME_KMS channel")),
        None
    );
    assert_eq!(group(ProductId::Windows, None), None);
    assert_eq!(
        group(ProductId::Office2024, Some("Office 16, VOLUME_KMS channel")),
        Some("office-ltsc-2024")
    );
}

/// Every id a row is known by is unique: a lookup finds the first, so a second would be dead.
#[test]
fn ids_are_unique() {
    let c = load().unwrap_or_else(|e| panic!("{e}"));
    let lists: [(&str, Vec<&str>); 3] = [
        ("os", c.os.iter().map(|o| o.id.as_str()).collect()),
        ("client", c.client.iter().map(|f| f.id.as_str()).collect()),
        (
            "host_key",
            c.host_key.iter().map(|g| g.id.as_str()).collect(),
        ),
    ];
    for (what, ids) in lists {
        let mut seen = std::collections::BTreeSet::new();
        for id in ids {
            assert!(seen.insert(id), "{what} `{id}` is listed twice");
        }
    }
    let mut captions = std::collections::BTreeSet::new();
    for o in &c.os {
        assert!(
            captions.insert(o.caption.as_str()),
            "caption `{}`",
            o.caption
        );
    }
}
