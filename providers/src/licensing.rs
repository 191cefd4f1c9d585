//! Licensing provider: per product, the KMS host license pack, the KMS host key and its
//! activation (online, or by phone with the installation ID out and the confirmation ID in).

use kmsconf_model::config::{Activation, ProductConfig, ProductId};
use kmsconf_model::keys::{ConfirmationId, ProductKey};
use serde_json::{json, Value};

use crate::contract::{ChangeSpec, Planned, Provider};
use crate::error::PlanError;
use crate::export::{commented, env_placeholder, key_variable, ExportDoc};
use crate::status::{product_status, HostStatus};
use crate::Error;
use kmsconf_engine::secret::DeclaredSecret;
use kmsconf_model::catalog;
use kmsconf_model::config::HostConfig;
use kmsconf_model::ops::PlanOp;
use kmsconf_model::state::{Channel, HostState, LicenseStatus};
use kmsconf_model::KmsChange;
use toml_edit::Table;

/// The licensing provider: every product the config declares.
pub struct Licensing;

impl Provider for Licensing {
    fn plan(
        &self,
        cfg: &HostConfig,
        state: &HostState,
        _earlier: &[KmsChange],
    ) -> Result<Planned, Error> {
        let mut planned = Planned::default();
        for (id, product) in &cfg.products {
            let p = plan_product(&cfg.name, *id, product, state)?;
            planned.changes.extend(p.changes);
            planned.notices.extend(p.notices);
        }
        Ok(planned)
    }

    fn export(&self, state: &HostState, doc: &mut ExportDoc) {
        for (id, p) in &state.products {
            let product = catalog::product_name(*id);
            let table_name = id.to_string();
            match (&p.partial_key, p.channel) {
                (Some(partial), Channel::KmsHost) => {
                    let variable = key_variable(doc.host(), *id);
                    let (activation, why) = if p.license_status == LicenseStatus::Licensed {
                        ("online", "licensed".to_string())
                    } else {
                        let status = p.license_status;
                        (
                            "none",
                            format!("{status}: set \"online\" or \"phone\" to activate it"),
                        )
                    };
                    let mut table = Table::new();
                    let ends = format!("the installed key ends in {partial}");
                    table.insert("host_key", env_placeholder(&variable, &ends));
                    table.insert("activation", commented(activation, &why));
                    doc.insert_table(&["products", &table_name], table);
                    doc.variable(variable, partial.clone());
                }
                (Some(partial), channel) => {
                    let name = doc.name().to_string();
                    doc.comment_block(&format!(
                        "{product}: a {channel} ending in {partial} is installed, not a KMS host key;\ndeclare [hosts.{name}.products.{id}] with the KMS host key to make this a KMS host."
                    ));
                }
                (None, _) => doc.comment_block(&format!(
                    "{product}: the KMS host license pack is installed, but no key."
                )),
            }
        }
    }

    /// The declared products and those holding a KMS host key; on a retired host also Windows,
    /// whose KMS client key shows what the host has become.
    fn status(&self, cfg: &HostConfig, state: &HostState, status: &mut HostStatus) {
        for id in ProductId::ALL {
            let declared = cfg.products.contains_key(&id);
            let observed = state.products.get(&id);
            let is_host = observed.is_some_and(|p| p.channel == Channel::KmsHost);
            let client = cfg.is_retired() && id == ProductId::Windows;
            if declared || is_host || client {
                status.products.push(product_status(id, declared, observed));
            }
        }
    }
}

struct ProductPlan {
    changes: Vec<KmsChange>,
    notices: Vec<String>,
}

fn address(id: ProductId, part: &str) -> String {
    format!("products.{id}.{part}")
}

fn plan_product(
    host: &str,
    id: ProductId,
    cfg: &ProductConfig,
    state: &HostState,
) -> Result<ProductPlan, Error> {
    let err = |e: PlanError| e.on(host);
    let key = host_key(host, id, cfg).map_err(err)?;
    let observed = state.products.get(&id);
    let mut changes = Vec::new();
    let mut notices = Vec::new();

    let pack = license_pack_change(id, cfg, state).map_err(err)?;
    let key_deps: Vec<String> = pack.iter().map(|c| c.address.clone()).collect();
    changes.extend(pack);

    let installed = observed.and_then(|p| p.partial_key.clone());
    let channel = observed.map_or(Channel::None, |p| p.channel);
    let key_matches =
        installed.as_deref() == Some(key.partial().as_str()) && channel == Channel::KmsHost;
    if !key_matches {
        let installed = installed.as_deref().map(|p| (p, channel));
        changes.push(host_key_change(id, cfg, &key, installed, &key_deps));
    }

    let status = observed.map_or(LicenseStatus::Unlicensed, |p| p.license_status);
    let needs_activation = !key_matches || status != LicenseStatus::Licensed;
    if cfg.activation != Activation::None && needs_activation {
        let before = json!(if key_matches {
            status.word()
        } else {
            LicenseStatus::Unlicensed.word()
        });
        let key_dep: Vec<String> = changes
            .iter()
            .filter(|c| c.address.ends_with("host_key"))
            .map(|c| c.address.clone())
            .collect();
        let activation = plan_activation(host, id, cfg, state, key_matches)?;
        let mut spec = ChangeSpec::new(address(id, "activation"), before).depends_on_all(&key_dep);
        if let Some(note) = activation.note {
            notices.push(format!("{id}: {note}"));
            spec = spec.note(note);
        }
        changes.push(spec.into_change(activation.op));
    }
    Ok(ProductPlan { changes, notices })
}

/// The declared KMS host key, read and checked now so a typo is found at plan time.
fn host_key(host: &str, id: ProductId, cfg: &ProductConfig) -> Result<ProductKey, PlanError> {
    let what = format!("hosts.{host}.products.{id}.host_key");
    let secret = cfg.host_key.resolve(&what).map_err(PlanError::Secret)?;
    ProductKey::parse(&secret).map_err(|error| PlanError::HostKey {
        product: id,
        from: cfg.host_key.source.describe(),
        error,
    })
}

/// Installing the product's KMS host license pack, when it needs one the host lacks; `Err` when
/// the config does not say where the pack is.
fn license_pack_change(
    id: ProductId,
    cfg: &ProductConfig,
    state: &HostState,
) -> Result<Option<KmsChange>, PlanError> {
    let needs_pack = catalog::product(id).is_some_and(|p| p.license_pack);
    if !needs_pack || state.license_packs.contains(&id) {
        return Ok(None);
    }
    let Some(source) = &cfg.license_pack else {
        return Err(PlanError::LicensePack {
            product: id,
            name: catalog::product_name(id),
        });
    };
    let path = cfg
        .license_pack_path
        .clone()
        .unwrap_or_else(|| std::path::PathBuf::from(source));
    let c = ChangeSpec::new(address(id, "license_pack"), Value::Null).into_change(
        PlanOp::InstallLicensePack {
            product: id,
            source: source.clone(),
            path,
        },
    );
    Ok(Some(c))
}

/// Installing the KMS host key over `installed` (its last five characters and channel), if any,
/// after `deps`.
fn host_key_change(
    id: ProductId,
    cfg: &ProductConfig,
    key: &ProductKey,
    installed: Option<(&str, Channel)>,
    deps: &[String],
) -> KmsChange {
    let before = installed.map_or(Value::Null, |(partial, channel)| {
        crate::shown::key_value(partial, channel)
    });
    ChangeSpec::new(address(id, "host_key"), before)
        .depends_on_all(deps)
        .into_change(PlanOp::InstallProductKey {
            product: id,
            key: cfg.host_key.clone(),
            partial: key.partial(),
        })
}

/// Checks the confirmation ID's form now, so a typo is found at plan time, not halfway through
/// apply.
fn check_confirmation_id(host: &str, id: ProductId, cid: &DeclaredSecret) -> Result<(), Error> {
    let what = format!("hosts.{host}.products.{id}.confirmation_id");
    let secret = cid
        .resolve(&what)
        .map_err(|e| PlanError::Secret(e).on(host))?;
    ConfirmationId::parse(&secret).map_err(|error| {
        PlanError::ConfirmationId {
            product: id,
            from: cid.source.describe(),
            error,
        }
        .on(host)
    })?;
    Ok(())
}

struct PlannedActivation {
    op: PlanOp,
    note: Option<String>,
}

fn plan_activation(
    host: &str,
    id: ProductId,
    cfg: &ProductConfig,
    state: &HostState,
    key_installed: bool,
) -> Result<PlannedActivation, Error> {
    // A confirmation ID whose variable or file is not there yet means "not phoned yet": the
    // activation stays pending, and the plan says where it will be read from.
    let cid = cfg
        .confirmation_id
        .as_ref()
        .filter(|c| c.source.is_available());
    let awaited = cfg
        .confirmation_id
        .as_ref()
        .filter(|c| !c.source.is_available());
    match (cfg.activation, cid) {
        (Activation::Phone, Some(cid)) => {
            check_confirmation_id(host, id, cid)?;
            Ok(PlannedActivation {
                op: PlanOp::ActivateByPhone {
                    product: id,
                    confirmation_id: cid.clone(),
                },
                note: None,
            })
        }
        (Activation::Phone, None) => {
            let iid = state
                .products
                .get(&id)
                .filter(|_| key_installed)
                .and_then(|p| p.installation_id.clone());
            let supply = match awaited {
                Some(c) => format!("put the confirmation ID in {}", c.source.describe()),
                None => "set `confirmation_id`".to_string(),
            };
            let note = match iid {
                Some(iid) => format!("phone activation pending: call the activation line with installation ID {iid}, then {supply}"),
                None => format!("phone activation pending: apply installs the key and shows the installation ID to give the activation line; then {supply}"),
            };
            Ok(PlannedActivation {
                op: PlanOp::ShowInstallationId { product: id },
                note: Some(note),
            })
        }
        _ => Ok(PlannedActivation {
            op: PlanOp::ActivateOnline { product: id },
            note: None,
        }),
    }
}
