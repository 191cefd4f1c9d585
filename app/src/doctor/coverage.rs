//! `client-coverage`: each client family of `[fleet] clients` is activated by at least one
//! present, licensed KMS host key, on a host whose Windows that key installs on (Microsoft's
//! tables in `model/data/coverage.toml`). A pure function of the config and the discovered
//! states; the updates a host needs are named, since kmsconf cannot see which it has.

use kmsconf_model::config::{FleetConfig, ProductId};
use kmsconf_model::coverage::{coverage, HostKeyGroup, HostOs};
use kmsconf_model::state::{Channel, HostState, LicenseStatus};

use super::{Check, Verdict, CLIENT_COVERAGE};

/// The fleet's checks are not one host's: they are shown under this name.
pub const FLEET: &str = "fleet";

/// One KMS host key that activates the family, wherever it stands.
struct Candidate<'a> {
    host: &'a str,
    group: &'static HostKeyGroup,
    os: Option<&'static HostOs>,
    licensed: bool,
}

impl Candidate<'_> {
    fn installs(&self) -> bool {
        self.os.is_some_and(|o| self.group.installs_on(&o.id))
    }
    fn os_name(&self) -> &str {
        self.os.map_or("an unknown Windows", |o| o.caption.as_str())
    }
    /// Why this key does not cover its clients.
    fn why_not(&self) -> String {
        if self.licensed {
            format!(
                "host `{}`'s key of group `{}` is on {}, which it does not install on",
                self.host,
                self.group.name,
                self.os_name()
            )
        } else {
            format!(
                "host `{}`'s key of group `{}` is not licensed",
                self.host, self.group.name
            )
        }
    }
}

/// One check per declared client family, over the hosts that could be read.
pub fn check_coverage(fleet: &FleetConfig, hosts: &[(&str, &HostState)]) -> Vec<Check> {
    fleet
        .clients
        .iter()
        .map(|client| check_client(client, hosts))
        .collect()
}

fn check_client(client: &str, hosts_in: &[(&str, &HostState)]) -> Check {
    let table = coverage();
    let name = table.client(client).map_or(client, |c| c.name.as_str());
    let mut candidates = Vec::new();
    let mut unknown = Vec::new();
    for (host, state) in hosts_in {
        let os = table.os_of_caption(&state.os);
        for (id, p) in &state.products {
            if p.channel != Channel::KmsHost {
                continue;
            }
            match table.group_of(id.id(), p.description.as_deref()) {
                Some(group) if group.activates.iter().any(|c| c == client) => {
                    candidates.push(Candidate {
                        host,
                        group,
                        os,
                        licensed: p.license_status == LicenseStatus::Licensed,
                    });
                }
                Some(_) => {}
                None if *id == ProductId::Windows => unknown.push(*host),
                None => {}
            }
        }
    }
    let check =
        |status, detail: String| Check::new(FLEET, CLIENT_COVERAGE, status, detail).about(client);
    if let Some(c) = candidates.iter().find(|c| c.licensed && c.installs()) {
        return check(Verdict::Ok, covered(name, client, c));
    }
    if candidates.is_empty() && !unknown.is_empty() {
        let hosts: Vec<String> = unknown.iter().map(|h| format!("`{h}`")).collect();
        return check(
            Verdict::Warning,
            format!(
                "{name}: no KMS host key kmsconf can place activates it; the Windows key of host {} names no group kmsconf knows (its Description)",
                hosts.join(", ")
            ),
        )
        .fix(needed(client, hosts_in))
        .code(0xC004F042);
    }
    let why: Vec<String> = candidates.iter().map(Candidate::why_not).collect();
    let detail = if why.is_empty() {
        format!("{name}: no present, licensed KMS host key activates it")
    } else {
        format!(
            "{name}: no present, licensed KMS host key activates it ({})",
            why.join("; ")
        )
    };
    check(Verdict::Failed, detail)
        .fix(needed(client, hosts_in))
        .code(0xC004F042)
}

/// The ok detail: which host's key covers the family, and the update that host needs.
fn covered(name: &str, client: &str, c: &Candidate) -> String {
    let mut detail = format!(
        "{name}: activated by host `{}`'s KMS host key of group `{}` (on {})",
        c.host,
        c.group.name,
        c.os_name()
    );
    let updates = c.os.map(|os| updates(&os.id, client)).unwrap_or_default();
    if !updates.is_empty() {
        detail.push_str(&format!(
            "; that host needs {updates} (kmsconf cannot see installed updates)"
        ));
    }
    detail
}

/// The updates a host running `os` needs to activate `client`, in words (empty: none).
fn updates(os: &str, client: &str) -> String {
    let updates: Vec<&str> = coverage()
        .updates_for(os, client)
        .iter()
        .map(|u| u.update.as_str())
        .collect();
    updates.join(", or ")
}

/// The key the family needs and where it can go: a group that installs on a host the config
/// has (with the update that host needs), else the newest group and the hosts it installs on.
fn needed(client: &str, hosts: &[(&str, &HostState)]) -> String {
    let table = coverage();
    let groups = table.groups_for(client);
    for group in &groups {
        for (host, state) in hosts {
            let Some(os) = table.os_of_caption(&state.os) else {
                continue;
            };
            if !group.installs_on(&os.id) {
                continue;
            }
            let updates = updates(&os.id, client);
            let update = if updates.is_empty() {
                String::new()
            } else {
                format!(", with {updates}")
            };
            return format!(
                "install and activate a KMS host key of group `{}` on host `{host}` ({}{update})",
                group.name, os.caption
            );
        }
    }
    match groups.first() {
        Some(group) => format!(
            "install and activate a KMS host key of group `{}` on a host running {}",
            group.name,
            group.hosts_in_words()
        ),
        None => format!("no KMS host key group activates `{client}`"),
    }
}

#[cfg(test)]
mod tests;
