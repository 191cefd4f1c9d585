//! Which KMS host key group a lab key belongs to, and so the `Description` its product shows:
//! a Windows key listed in the lab file's `host_key_groups` (by its last five characters) is of
//! that group, any other of the group of the host's own Windows (`host.os`, as Microsoft's
//! table hosts a Windows Server 2022 key on Windows Server 2022). An Office key's group is its
//! product's; its Description is the same for every Office version.

use kmsconf_model::config::ProductId;
use kmsconf_model::coverage::{coverage, HostKeyGroup};

use super::LabFile;
use crate::LabStateError;

/// The group of the KMS host key ending in `partial` installed for `product`.
pub(super) fn group(
    file: &LabFile,
    product: ProductId,
    partial: &str,
) -> Option<&'static HostKeyGroup> {
    let table = coverage();
    if product.is_office() {
        return table.group_of(product.id(), None);
    }
    if let Some(id) = file.host_key_groups.get(partial) {
        return table
            .host_key
            .iter()
            .find(|g| g.id == *id && g.product == product.id());
    }
    let os = table.os_of_caption(&file.host.os)?;
    let windows = || table.host_key.iter().filter(|g| g.product == product.id());
    windows()
        .find(|g| g.id == os.id)
        .or_else(|| windows().find(|g| g.installs_on(&os.id)))
}

/// The `Description` of a KMS host key's product, as Windows words it.
pub(super) fn description(product: ProductId, group: Option<&HostKeyGroup>) -> String {
    match (product, group.and_then(|g| g.channel.as_deref())) {
        (ProductId::Windows, Some(channel)) => {
            format!("Windows(R) Operating System, {channel} channel")
        }
        (ProductId::Windows, None) => "Windows(R) Operating System, VOLUME_KMS channel".into(),
        (ProductId::Office2010, _) => "Office 14, VOLUME_KMS channel".into(),
        (ProductId::Office2013, _) => "Office 15, VOLUME_KMS channel".into(),
        _ => "Office 16, VOLUME_KMS channel".into(),
    }
}

/// Checks the lab file's `host_key_groups` name Windows groups of the table.
pub(super) fn check(file: &LabFile) -> Result<(), LabStateError> {
    let table = coverage();
    for (partial, id) in &file.host_key_groups {
        if !table
            .host_key
            .iter()
            .any(|g| g.id == *id && g.product == ProductId::Windows.id())
        {
            let known: Vec<&str> = table
                .host_key
                .iter()
                .filter(|g| g.product == ProductId::Windows.id())
                .map(|g| g.id.as_str())
                .collect();
            return Err(LabStateError::HostKeyGroup {
                partial: partial.clone(),
                group: id.clone(),
                known: known.join(", "),
            });
        }
    }
    Ok(())
}
