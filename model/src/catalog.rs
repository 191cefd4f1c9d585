//! Knowledge tables: the KMS host products, the activation error codes and the public KMS client
//! setup keys (GVLKs), loaded once from the data files under `model/data/` (sources named
//! there); the firewall rule groups come from the Windows facts table ([`crate::facts`]).

use std::collections::BTreeMap;

use crate::config::ProductId;
use crate::tables::{Table, TableError};
use serde::{Deserialize, Deserializer};

/// The name of the rule kmsconf adds when the KMS host listens on a custom port.
pub const PORT_RULE_NAME: &str = "kmsconf-KMS-Port-In-TCP";

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
    /// As the table writes it (`0xC004F074`); a row whose code [`parse_code`] does not read is an
    /// error at the row, not a row left out.
    #[serde(deserialize_with = "hresult_text")]
    pub code: String,
    pub meaning: String,
    /// Why it usually happens.
    #[serde(default)]
    pub cause: Option<String>,
    pub fix: String,
    /// Which side meets it: KMS host, KMS client, MAK.
    #[serde(default)]
    pub applies_to: Option<String>,
    /// `None` = Microsoft's "Resolving common activation error codes"; otherwise where it is from.
    #[serde(default)]
    pub source: Option<String>,
}

#[derive(Deserialize)]
struct CodesFile {
    code: Vec<CodeInfo>,
}

/// A public KMS client setup key (GVLK) of one edition.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Edition {
    /// What `kmsconf client-script --edition` takes: `windows-server-2022-datacenter`.
    pub id: String,
    pub name: String,
    /// The KMS host product that activates it.
    pub product: ProductId,
    /// The public key; not a secret.
    pub key: String,
}

#[derive(Deserialize)]
struct EditionsFile {
    edition: Vec<Edition>,
}

/// Where the error catalogue comes from, as `kmsconf explain` names it.
pub const CODES_SOURCE: &str = "Microsoft, \"Resolving common activation error codes\" (learn.microsoft.com, windows-server/get-started/activation-error-codes)";

pub use crate::facts::{parse_code, rule_group, RuleGroupInfo};

static PRODUCTS: Table<BTreeMap<ProductId, ProductInfo>> = Table::new(
    "model/data/products.toml",
    include_str!("../data/products.toml"),
    toml::from_str,
);

static CODES: Table<BTreeMap<u32, CodeInfo>> = Table::new(
    "model/data/hresults.toml",
    include_str!("../data/hresults.toml"),
    |text| {
        let file: CodesFile = toml::from_str(text)?;
        Ok(file
            .code
            .into_iter()
            .filter_map(|c| parse_code(&c.code).map(|n| (n, c)))
            .collect())
    },
);

static EDITIONS: Table<Vec<Edition>> = Table::new(
    "model/data/gvlks.toml",
    include_str!("../data/gvlks.toml"),
    |text| toml::from_str::<EditionsFile>(text).map(|f| f.edition),
);

/// Reads a code's text, refusing one [`parse_code`] does not read (toml puts the error at it).
fn hresult_text<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    let text = String::deserialize(deserializer)?;
    match parse_code(&text) {
        Some(_) => Ok(text),
        None => Err(serde::de::Error::custom(format!(
            "`{}` is not an HRESULT (`0xC004F074`, `C004F074` or a decimal)",
            text.escape_debug()
        ))),
    }
}

/// The products, codes and GVLK tables, each parsed once; or the first that does not read (a
/// defect of the build: the tests below parse them). [`crate::load_tables`] calls this before
/// anything else runs.
pub fn load() -> Result<(), TableError> {
    PRODUCTS.load()?;
    CODES.load()?;
    EDITIONS.load()?;
    Ok(())
}

fn products() -> &'static BTreeMap<ProductId, ProductInfo> {
    PRODUCTS.get()
}

fn codes() -> &'static BTreeMap<u32, CodeInfo> {
    CODES.get()
}

fn editions() -> &'static [Edition] {
    EDITIONS.get()
}

/// The GVLK table entry of an edition id.
pub fn edition(id: &str) -> Option<&'static Edition> {
    editions().iter().find(|e| e.id == id)
}

/// The Windows edition a host runs, by the locale-independent numbers Windows reports:
/// `Win32_OperatingSystem.OperatingSystemSKU` and `BuildNumber` (the `[[sku]]` rows of
/// `data/windows.toml`). Never by the caption, which is localized and names no LTSC year.
pub fn windows_edition(sku: u32, build: u32) -> Option<&'static Edition> {
    let id = crate::facts::facts().sku(sku)?.edition_on(build)?;
    edition(id).filter(|e| e.product == ProductId::Windows)
}

/// The winnt.h name of an `OperatingSystemSKU` value the table holds (`PRODUCT_PROFESSIONAL`).
pub fn sku_name(sku: u32) -> Option<&'static str> {
    crate::facts::facts().sku(sku).map(|s| s.name.as_str())
}

/// Whether `key` is a published KMS client setup key (GVLK), which installs as a KMS client key.
pub fn is_client_key(key: &str) -> bool {
    editions().iter().any(|e| e.key.eq_ignore_ascii_case(key))
}

/// Every edition with a published GVLK, in the table's order.
pub fn all_editions() -> &'static [Edition] {
    editions()
}

/// The activation ID a lab host's clients of `name` (an edition id, or a product id for a
/// client of no listed edition) ask with. The table holds no sourced activation IDs of client
/// editions, so the lab makes its own, a GUID from the name, and [`asked_for`] knows them; a
/// real host's activation IDs are shown as they are.
pub fn lab_activation_id(name: &str) -> String {
    let hash = |text: &str| {
        text.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        })
    };
    let a = hash(&format!("kmsconf-lab/edition/{name}"));
    let b = hash(&format!("kmsconf-lab/edition/{a}"));
    format!(
        "{:08x}-{:04x}-4{:03x}-a{:03x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xfff,
        b >> 52,
        b & 0xffff_ffff_ffff
    )
}

/// What a client asked for, by the activation ID of its request: the edition (when it is one
/// the table lists) and the KMS host product that activates it.
pub fn asked_for(activation_id: &str) -> Option<(ProductId, Option<&'static Edition>)> {
    let id = activation_id.to_ascii_lowercase();
    if let Some(e) = editions().iter().find(|e| lab_activation_id(&e.id) == id) {
        return Some((e.product, Some(e)));
    }
    ProductId::ALL
        .into_iter()
        .find(|p| lab_activation_id(p.id()) == id)
        .map(|p| (p, None))
}

/// The activation count a client of `edition` needs (its N-policy): the server count for a
/// Windows Server edition, else its product's.
pub fn required_count_of(product: ProductId, edition: Option<&Edition>) -> u32 {
    let info = self::product(product);
    let server = edition.is_some_and(|e| e.id.starts_with("windows-server"));
    match info {
        Some(p) if server => p.required_count_server.unwrap_or(p.required_count),
        Some(p) => p.required_count,
        None => 5,
    }
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

/// Up to three of `known` near `id`: those holding every word of `id` that is not a number
/// (`windows-11-enterprise` -> `windows-enterprise`), else those a few edits away; nearest first.
/// What `client-script --edition` and `[fleet.activation_ids]` suggest for an unknown id.
pub fn nearest<'a>(id: &str, known: &[&'a str]) -> Vec<&'a str> {
    let id = id.to_ascii_lowercase();
    let words: Vec<&str> = id
        .split('-')
        .filter(|w| !w.is_empty() && !w.bytes().all(|b| b.is_ascii_digit()))
        .collect();
    let holds_words =
        |k: &&&str| !words.is_empty() && words.iter().all(|w| k.split('-').any(|p| p == *w));
    let close = |k: &&&str| strsim::levenshtein(&id, k) <= (id.len() / 4).max(2);
    let mut near: Vec<&str> = known.iter().filter(holds_words).copied().collect();
    if near.is_empty() {
        near = known.iter().filter(close).copied().collect();
    }
    near.sort_by_key(|k| (strsim::levenshtein(&id, k), k.len()));
    near.truncate(3);
    near
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
    fn lab_activation_ids_name_their_edition_and_product() {
        let e = edition("windows-server-2022-datacenter").expect("edition");
        let (product, found) = asked_for(&lab_activation_id(&e.id)).expect("known");
        assert_eq!(
            (product, found.map(|f| f.id.as_str())),
            (ProductId::Windows, Some(e.id.as_str()))
        );
        assert_eq!(required_count_of(product, found), 5);
        assert_eq!(
            required_count_of(ProductId::Windows, edition("windows-enterprise")),
            25
        );
        let office = asked_for(&lab_activation_id("office-2024")).expect("product");
        assert!(office.0 == ProductId::Office2024 && office.1.is_none());
        assert!(asked_for("cf67834d-db4a-402c-ab1f-2c134f02b700").is_none());
        assert!(crate::events::guid(&lab_activation_id("windows")).is_some());
    }

    #[test]
    fn every_code_in_the_table_parses_and_is_unique() {
        let text = include_str!("../data/hresults.toml");
        let file: CodesFile = toml::from_str(text).expect("table parses");
        assert_eq!(codes().len(), file.code.len());
        assert!(code(0xC004F074).is_some());
        for info in all_codes() {
            let named = info.source.as_deref().map(str::trim);
            assert!(named != Some(""), "{}: an empty source", info.code);
        }
    }

    /// Each table loads as the binary loads it (a bad row is an error with its place, which
    /// `tables` tests), and a row whose code is no HRESULT is such an error, not a row left out.
    #[test]
    fn the_tables_load_and_a_code_that_is_no_hresult_is_an_error_at_it() {
        load().unwrap_or_else(|e| panic!("{e}"));
        static BAD: Table<Vec<CodeInfo>> = Table::new(
            "model/data/hresults.toml",
            "[[code]]\ncode = \"0xC004G074\"\nmeaning = \"m\"\nfix = \"f\"\n",
            |text| toml::from_str::<CodesFile>(text).map(|f| f.code),
        );
        let e = BAD.load().expect_err("no HRESULT");
        assert_eq!((e.location.line, e.location.column), (2, 8), "{e}");
        assert!(e.message.contains("`0xC004G074` is not an HRESULT"), "{e}");
    }

    #[test]
    fn product_ids_are_guids() {
        for id in ProductId::ALL {
            let p = product(id).unwrap_or_else(|| panic!("{id} missing"));
            let guids = std::iter::once(&p.application_id).chain(p.activation_id.as_ref());
            for g in guids {
                assert_eq!(
                    crate::events::guid(g).as_deref(),
                    Some(g.as_str()),
                    "{id}: `{g}` is no lower-case GUID"
                );
            }
        }
        assert_eq!(products().len(), ProductId::ALL.len());
    }

    /// Every code of the summary table of Microsoft's "Resolving common activation error codes".
    #[test]
    fn the_catalogue_holds_microsofts_whole_list() {
        let listed = [
            0xC004C001, 0xC004C003, 0xC004C008, 0xC004B100, 0xC004C020, 0xC004C021, 0xC004F009,
            0xC004F00F, 0xC004F014, 0xC004F02C, 0xC004F035, 0xC004F038, 0xC004F039, 0xC004F041,
            0xC004F042, 0xC004F050, 0xC004F051, 0xC004F064, 0xC004F065, 0xC004F06C, 0x80070005,
            0x8007232A, 0x8007232B, 0x800706BA, 0x8007251D, 0xC004F074, 0x8004FE21, 0x80092328,
            0x8007007B, 0x80070490,
        ];
        for c in listed {
            let info = code(c).unwrap_or_else(|| panic!("{} missing", format_code(c)));
            assert!(
                info.source.is_none(),
                "{} is on Microsoft's page",
                info.code
            );
            assert!(info.cause.is_some(), "{} has no cause", info.code);
        }
        assert!(code(0xC004F999).is_none());
    }

    #[test]
    fn every_gvlk_is_a_well_formed_key_for_a_known_product() {
        let text = include_str!("../data/gvlks.toml");
        let file: EditionsFile = toml::from_str(text).expect("table parses");
        assert_eq!(all_editions().len(), file.edition.len());
        assert!(all_editions().len() >= 40);
        let mut ids = std::collections::BTreeSet::new();
        for e in all_editions() {
            assert!(ids.insert(e.id.as_str()), "{} listed twice", e.id);
            let secret = kmsconf_engine::secret::Secret::new(e.key.clone());
            assert!(
                crate::keys::ProductKey::parse(&secret).is_ok(),
                "{}: {}",
                e.id,
                e.key
            );
        }
        let dc = edition("windows-server-2022-datacenter").expect("2022 DC");
        assert!(dc.key.ends_with("6VM33"));
        assert_eq!(
            edition("office-2019-professional-plus").map(|e| e.product),
            Some(ProductId::Office2019)
        );
    }

    #[test]
    fn editions_are_found_by_sku_and_build_never_by_caption() {
        let id = |sku, build| windows_edition(sku, build).map(|e| e.id.as_str());
        let dc = windows_edition(8, 20348).expect("2022 DC");
        assert_eq!(dc.id, "windows-server-2022-datacenter");
        assert_eq!(id(7, 17763), Some("windows-server-2019-standard"));
        assert_eq!(id(407, 26100), Some("windows-server-2025-datacenter-azure"));
        // Windows 10 and 11 share their keys; 125 is every LTSC, its year the build's
        assert_eq!(id(48, 19045), Some("windows-pro"));
        assert_eq!(id(48, 26100), Some("windows-pro"));
        assert_eq!(id(125, 19044), Some("windows-enterprise-ltsc"));
        assert_eq!(id(126, 17763), Some("windows-enterprise-n-ltsc"));
        // LTSB 2016 and Windows 8.1 Pro have keys the table does not hold; evaluation none
        assert_eq!(id(125, 14393), None);
        assert_eq!(id(48, 9600), None);
        assert_eq!(id(80, 20348), None);
        assert_eq!(id(8, 20349), None);
        assert_eq!(sku_name(48), Some("PRODUCT_PROFESSIONAL"));
        assert!(is_client_key(&dc.key));
        assert!(!is_client_key("BCDFG-HJKMP-QRTVW-XY234-6789B"));
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
        // eight digits without 0x are hex, as Windows shows codes; decimal codes have ten
        assert_eq!(parse_code("80070005"), Some(0x8007_0005));
        assert_eq!(parse_code("2147942405"), Some(0x8007_0005));
        assert_eq!(format_code(0xC004F074), "0xC004F074");
    }
}
