//! `[fleet]`: the client families the hosts must activate, each an id of the coverage table.

use super::Ctx;
use crate::config::wire::FleetWire;
use crate::config::FleetConfig;
use crate::coverage::coverage;

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
    FleetConfig { clients }
}
