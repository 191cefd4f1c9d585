//! The lab host's unit tests: shared helpers and the facts every answer keeps to; each topic's
//! tests are in a module of their own.

use super::operations::{
    SL_E_CIDIID_INVALID_CHECK_DIGITS, SL_E_CIDIID_MISMATCHED, SL_E_INVALID_PRODUCT_KEY,
    SL_E_NETWORK,
};
use super::*;
use kmsconf_engine::secret::Secret;
use kmsconf_model::config::ProductId;
use kmsconf_model::keys::{ConfirmationId, ProductKey};
use kmsconf_model::ops::ServiceSetting;
use kmsconf_model::state::Channel;

mod event_log;
mod licensing;
mod state_file;

const KEY: &str = "BCDFG-HJKMP-QRTVW-XY234-6789B";

fn lab() -> (tempfile::TempDir, LabTarget) {
    let dir = tempfile::tempdir().expect("tmp");
    let t = LabTarget::new(
        "kms01",
        dir.path().join("kms01.json"),
        Duration::from_secs(600),
    );
    (dir, t)
}

fn key() -> ProductKey {
    ProductKey::parse(&Secret::new(KEY)).expect("key")
}

/// Every HRESULT the lab answers is a row of the facts table marked `lab = true`, and so
/// in the error catalogue.
#[test]
fn every_code_the_lab_returns_is_in_the_facts_table() {
    use super::operations::{
        E_FILE_NOT_FOUND, E_INVALIDARG, SL_E_NO_KMS_CONTACTED, SL_E_PKEY_NOT_INSTALLED,
    };
    for code in [
        E_FILE_NOT_FOUND,
        E_INVALIDARG,
        SL_E_PKEY_NOT_INSTALLED,
        SL_E_INVALID_PRODUCT_KEY,
        SL_E_CIDIID_MISMATCHED,
        SL_E_CIDIID_INVALID_CHECK_DIGITS,
        SL_E_NO_KMS_CONTACTED,
        SL_E_NETWORK,
    ] {
        let row = kmsconf_model::facts::facts().hresult(code);
        assert!(
            row.is_some_and(|h| h.lab),
            "{} is not a lab row of the facts table",
            catalog::format_code(code)
        );
        assert!(catalog::code(code).is_some());
    }
    // the retirement's: a key uninstall on a SKU that holds none
    let (_d, t) = lab();
    let gone = t
        .execute(&[TargetOp::UninstallProductKey {
            product: ProductId::Office2019,
            activation_id: "70512334-47b4-44db-a233-be5ea33b914c".into(),
        }])
        .expect("run");
    let ChangeStatus::Failed {
        code: Some(code), ..
    } = gone[0]
    else {
        panic!("{gone:?}");
    };
    assert_eq!(code, SL_E_PKEY_NOT_INSTALLED);
    let row = kmsconf_model::facts::facts().hresult(code).expect("row");
    assert!(row.lab && row.ops.iter().any(|o| o == OpKind::UninstallKey.id()));
}

#[test]
fn a_missing_host_is_created_fresh_and_reported_once() {
    let (_d, t) = lab();
    let first = t.discover().expect("discover");
    assert!(first.created);
    assert_eq!(
        first.state.products[&ProductId::Windows].channel,
        Channel::KmsClient
    );
    assert!(!t.discover().expect("again").created);
}
