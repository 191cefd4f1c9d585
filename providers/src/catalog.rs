//! Knowledge tables: the KMS host products, the activation error codes and the firewall rule
//! groups, loaded once from the data files under `providers/data/` (sources named there).

use std::collections::BTreeMap;
use std::sync::OnceLock;

use kmsconf_engine::config::{ProductId, RuleGroup};
use serde::Deserialize;

/// What kmsconf knows about one KMS host product.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProductInfo {
    pub name: String,
    pub application_id: String,
    /// The Office KMS host SKU's activation ID; `None` for Windows (slmgr's default product).
    pub activation_id: Option<String>,
    pub license_pack: bool,
    pub required_count: u32,
    pub required_count_server: Option<u32>,
    pub min_host_os: Option<String>,
}

/// The meaning of an activation error code, and what to do about it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CodeInfo {
    pub code: String,
    pub meaning: String,
    pub fix: String,
}

#[derive(Deserialize)]
struct CodesFile {
    code: Vec<CodeInfo>,
}

/// How a built-in firewall rule group is recognised on a host, whatever its display language.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleGroupInfo {
    /// Rules matched by their `Name`.
    #[serde(default)]
    pub rule_names: Vec<String>,
    /// Inbound rules matched by their `Group` resource string.
    pub group: Option<String>,
    /// Whether kmsconf manages the rules' remote address scope.
    pub scoped: bool,
}

/// The firewall rule groups kmsconf manages (`data/firewall.toml`).
pub fn rule_group(group: RuleGroup) -> Option<&'static RuleGroupInfo> {
    static TABLE: OnceLock<BTreeMap<RuleGroup, RuleGroupInfo>> = OnceLock::new();
    TABLE
        .get_or_init(|| toml::from_str(include_str!("../data/firewall.toml")).unwrap_or_default())
        .get(&group)
}

fn products() -> &'static BTreeMap<ProductId, ProductInfo> {
    static TABLE: OnceLock<BTreeMap<ProductId, ProductInfo>> = OnceLock::new();
    TABLE.get_or_init(|| {
        // The table is compiled in and checked by a unit test, so a parse failure here is a
        // build defect, not user input; an empty table makes every lookup fall back safely.
        toml::from_str(include_str!("../data/products.toml")).unwrap_or_default()
    })
}

fn codes() -> &'static BTreeMap<u32, CodeInfo> {
    static TABLE: OnceLock<BTreeMap<u32, CodeInfo>> = OnceLock::new();
    TABLE.get_or_init(|| {
        let file: CodesFile = toml::from_str(include_str!("../data/hresults.toml"))
            .unwrap_or(CodesFile { code: Vec::new() });
        file.code
            .into_iter()
            .filter_map(|c| parse_code(&c.code).map(|n| (n, c)))
            .collect()
    })
}

/// The catalogue entry of a product.
pub fn product(id: ProductId) -> Option<&'static ProductInfo> {
    products().get(&id)
}

/// The human name of a product (`Office 2019`), or its id when the table lacks it.
pub fn product_name(id: ProductId) -> String {
    product(id).map_or_else(|| id.to_string(), |p| p.name.clone())
}

/// The activation ID slmgr needs after its switch for this product (empty for Windows).
pub fn slmgr_product_arg(id: ProductId) -> String {
    product(id)
        .and_then(|p| p.activation_id.clone())
        .map(|a| format!(" {a}"))
        .unwrap_or_default()
}

/// Looks up an HRESULT.
pub fn code(code: u32) -> Option<&'static CodeInfo> {
    codes().get(&code)
}

/// Every known code, in numeric order.
pub fn all_codes() -> impl Iterator<Item = &'static CodeInfo> {
    codes().values()
}

/// Reads `0xC004F074`, `C004F074` or a decimal (also negative, as a signed HRESULT).
pub fn parse_code(text: &str) -> Option<u32> {
    let t = text.trim();
    if let Some(hex) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        return u32::from_str_radix(hex, 16).ok();
    }
    if let Ok(n) = t.parse::<i64>() {
        return u32::try_from(n)
            .ok()
            .or_else(|| i32::try_from(n).ok().map(|n| n as u32));
    }
    u32::from_str_radix(t, 16).ok()
}

/// `0xC004F074`.
pub fn format_code(code: u32) -> String {
    format!("0x{code:08X}")
}

/// A message for a failure with an HRESULT: the host's words, then the catalogue's meaning and fix.
pub fn explain_failure(code: u32, message: &str) -> String {
    match self::code(code) {
        Some(info) => format!(
            "{} {message}: {}; fix: {}",
            format_code(code),
            info.meaning,
            info.fix
        ),
        None => format!("{} {message}", format_code(code)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_product_has_a_catalogue_entry() {
        for id in ProductId::ALL {
            let p = product(id).unwrap_or_else(|| panic!("{id} missing"));
            assert_eq!(p.license_pack, id.is_office(), "{id}");
            assert_eq!(p.activation_id.is_some(), id.is_office(), "{id}");
        }
        assert_eq!(
            slmgr_product_arg(ProductId::Office2019),
            " 70512334-47b4-44db-a233-be5ea33b914c"
        );
    }

    #[test]
    fn every_rule_group_is_identified_without_its_display_name() {
        for group in RuleGroup::ALL {
            let info = rule_group(group).unwrap_or_else(|| panic!("{group} missing"));
            assert!(
                !info.rule_names.is_empty() || info.group.is_some(),
                "{group}"
            );
            for name in &info.rule_names {
                assert!(name.is_ascii() && !name.contains(' '), "{name}");
            }
            assert!(info.group.as_deref().is_none_or(|g| g.starts_with('@')));
        }
        assert!(rule_group(RuleGroup::KeyManagementService).is_some_and(|g| g.scoped));
    }

    #[test]
    fn every_code_in_the_table_parses_and_is_unique() {
        let text = include_str!("../data/hresults.toml");
        let file: CodesFile = toml::from_str(text).expect("table parses");
        assert_eq!(codes().len(), file.code.len());
        assert!(code(0xC004F074).is_some());
    }

    #[test]
    fn codes_parse_in_every_usual_spelling() {
        for t in [
            "0xC004F074",
            "0xc004f074",
            "C004F074",
            "3221549172",
            "-1073418124",
        ] {
            assert_eq!(parse_code(t), Some(0xC004F074), "{t}");
        }
        assert_eq!(parse_code("zz"), None);
        assert_eq!(format_code(0xC004F074), "0xC004F074");
    }
}
