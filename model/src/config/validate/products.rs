//! The `[hosts.NAME.products.ID]` tables: a host key, an Office license pack and a phone
//! activation's confirmation ID, each checked for form wherever it can be read now.

use std::path::PathBuf;

use super::secrets::{check_value, convert_secret};
use super::Ctx;
use crate::config::wire::{self, ProductWire};
use crate::config::ProductConfig;
use crate::keys::{ConfirmationId, ProductKey};

pub(super) fn convert_product(
    ctx: &mut Ctx,
    host: &str,
    id: wire::ProductId,
    p: ProductWire,
) -> ProductConfig {
    let key_what = format!("the host key of `{id}`");
    let host_key = convert_secret(ctx, &key_what, &p.host_key);
    // Check the key's form now wherever it can be read without contacting a host; a source
    // that cannot be read yet (an unset variable in a review job) is checked at plan time.
    check_value(ctx, p.host_key.start(), &host_key, &key_what, |secret| {
        ProductKey::parse(secret).err().map(|m| m.to_string())
    });
    if let (Some(pack), false) = (&p.license_pack, id.is_office()) {
        ctx.error(
            pack.start(),
            format!("`{id}` has no license pack: only Office KMS host products need one"),
        );
    }
    if let Some(pack) = p
        .license_pack
        .as_ref()
        .filter(|p| p.get().trim().is_empty())
    {
        ctx.error(pack.start(), "`license_pack` is empty");
    }
    let confirmation_id = p.confirmation_id.as_ref().map(|cid| {
        let what = format!("the confirmation ID of `{id}`");
        let declared = convert_secret(ctx, &what, cid);
        if p.activation != wire::Activation::Phone {
            ctx.error(cid.start(), format!("`confirmation_id` is only used with `activation = \"phone\"` (host `{host}`, product `{id}`)"));
        }
        check_value(ctx, cid.start(), &declared, &what, |secret| {
            ConfirmationId::parse(secret).err().map(|m| m.to_string())
        });
        // only a warning: the check-digit model is unverified on Windows 8 and later, so the
        // host has the last word
        if let Ok(secret) = declared.source.value(&what) {
            if let Some(group) = ConfirmationId::parse(&secret)
                .ok()
                .and_then(|parsed| parsed.failed_check_group())
            {
                ctx.warn(cid.start(), format!("{what} ({}) looks mistyped: group {group} of its eight fails its check digit (its sixth digit should be (d1 + 2*d2 + d3 + 2*d4 + d5) mod 7, a public source's model, unverified on Windows 8 and later), so Windows may refuse it with 0xC004F04D; compare it digit by digit with what the line read out", declared.source.describe()));
            }
        }
        declared
    });
    let license_pack = p.license_pack.map(|l| l.get().trim().to_string());
    ProductConfig {
        host_key,
        license_pack_path: license_pack.as_ref().map(PathBuf::from),
        license_pack,
        activation: p.activation,
        confirmation_id,
    }
}
