//! `[fleet]`: the client families the hosts must activate, each an id of the coverage table, and
//! `[fleet.activation_ids]`, the activation IDs the clients ask with, each named by an edition or
//! product id.

use std::collections::BTreeMap;

use super::Ctx;
use crate::catalog;
use crate::config::wire::{At, FleetWire};
use crate::config::{ActivationNames, FleetConfig};
use crate::coverage::coverage;
use crate::ids;

pub(super) fn convert(ctx: &mut Ctx, wire: FleetWire) -> FleetConfig {
    let table = coverage();
    let mut clients: Vec<String> = Vec::new();
    for id in wire.clients {
        let at = id.start();
        let id = id.get();
        if table.client(id).is_none() {
            let known: Vec<&str> = table.client.iter().map(|c| c.id.as_str()).collect();
            ctx.error(
                at,
                format!(
                    "`[fleet] clients`: unknown client family `{id}` (known: {})",
                    known.join(", ")
                ),
            );
        } else if clients.contains(id) {
            ctx.warn(at, format!("`[fleet] clients` lists `{id}` twice"));
        } else {
            clients.push(id.clone());
        }
    }
    FleetConfig {
        clients,
        activation_ids: activation_ids(ctx, wire.activation_ids),
    }
}

/// Each key a GUID named once (in any case), each name an edition or product id.
fn activation_ids(ctx: &mut Ctx, table: BTreeMap<At<String>, At<String>>) -> ActivationNames {
    let mut entries: Vec<(At<String>, At<String>)> = table.into_iter().collect();
    entries.sort_by_key(|(key, _)| key.start());
    let mut seen: BTreeMap<String, String> = BTreeMap::new();
    let mut names = ActivationNames::default();
    for (key, name) in entries {
        let written = key.get();
        let Some(id) = ids::guid(written) else {
            ctx.error(
                key.start(),
                format!(
                    "`[fleet.activation_ids]`: `{}` is not an activation ID: a GUID as a client's `slmgr /dlv` shows it, e.g. `3f2504e0-4f89-41d3-9a0c-0305e82c3301`",
                    written.escape_debug()
                ),
            );
            continue;
        };
        if let Some(first) = seen.get(&id) {
            ctx.error(
                key.start(),
                format!("`[fleet.activation_ids]` names activation ID `{id}` twice (also as `{first}`): IDs are the same in any case, so keep one"),
            );
            continue;
        }
        seen.insert(id, written.clone());
        if !names.insert(written, name.get()) {
            ctx.error(name.start(), unknown_name(name.get()));
        }
    }
    names
}

fn unknown_name(name: &str) -> String {
    let near = catalog::nearest(name, &ActivationNames::known_names());
    let hint = if near.is_empty() {
        String::new()
    } else {
        let quoted: Vec<String> = near.iter().map(|n| format!("`{n}`")).collect();
        format!("; did you mean {}?", quoted.join(" or "))
    };
    format!(
        "`[fleet.activation_ids]`: unknown edition or product `{}`{hint} (`kmsconf client-script --list-editions` lists the editions; a product id such as `windows` or `office-2024` names a client of no listed edition)",
        name.escape_debug()
    )
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::config::{Config, ProductId};
    use crate::Error;

    const HOST: &str = "[hosts.kms01]\ntarget = \"lab:kms01.json\"\n";

    fn errors(table: &str) -> Vec<String> {
        let text = format!("{HOST}[fleet.activation_ids]\n{table}");
        match Config::parse(Path::new("kmsconf.toml"), &text) {
            Err(Error::Invalid(list)) => list.iter().map(ToString::to_string).collect(),
            other => panic!("{table}: {other:?}"),
        }
    }

    #[test]
    fn named_ids_load_in_lower_case_and_an_absent_table_is_empty() {
        let text = format!("{HOST}[fleet]\nclients = [\"windows-11\"]\n[fleet.activation_ids]\n\"00000000-0000-4000-8000-0000000000AB\" = \"windows-enterprise\"\n\"{{00000000-0000-4000-8000-0000000000cd}}\" = \"office-2024\"\n");
        let config = Config::parse(Path::new("kmsconf.toml"), &text).expect("valid");
        let names = config.activation_names();
        assert_eq!(names.len(), 2);
        let asked = names.asked_for("00000000-0000-4000-8000-0000000000ab");
        assert_eq!(
            asked.map(|(p, e)| (p, e.map(|e| e.id.as_str()))),
            Some((ProductId::Windows, Some("windows-enterprise")))
        );
        assert_eq!(
            names.name("00000000-0000-4000-8000-0000000000CD"),
            Some("office-2024")
        );
        let bare = Config::parse(Path::new("kmsconf.toml"), HOST).expect("valid");
        assert!(bare.activation_names().is_empty());
    }

    #[test]
    fn a_bad_id_a_repeat_in_another_case_and_an_unknown_name_are_errors_where_written() {
        let list = errors("\"1234567890\" = \"windows-enterprise\"\n");
        assert_eq!(list.len(), 1, "{list:?}");
        assert!(list[0].starts_with("kmsconf.toml:4:1: "), "{list:?}");
        assert!(
            list[0].contains("`1234567890` is not an activation ID"),
            "{list:?}"
        );
        let list = errors("\"00000000-0000-4000-8000-0000000000ab\" = \"windows-pro\"\n\"00000000-0000-4000-8000-0000000000AB\" = \"windows-pro\"\n");
        assert_eq!(list.len(), 1, "{list:?}");
        assert!(list[0].starts_with("kmsconf.toml:5:1: "), "{list:?}");
        assert!(
            list[0].contains("twice (also as `00000000-0000-4000-8000-0000000000ab`)"),
            "{list:?}"
        );
        let list = errors("\"00000000-0000-4000-8000-0000000000ab\" = \"windows-11-enterprise\"\n");
        assert_eq!(list.len(), 1, "{list:?}");
        assert!(list[0].starts_with("kmsconf.toml:4:42: "), "{list:?}");
        assert!(
            list[0].contains("did you mean `windows-enterprise`"),
            "{list:?}"
        );
    }
}
