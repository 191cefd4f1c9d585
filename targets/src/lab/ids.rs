//! The IDs a lab host makes up, deterministically from its `host_id` so they are the same on
//! every run: activation IDs of Windows SKUs, installation IDs, and the confirmation ID the
//! phone line would give for one.

use kmsconf_model::catalog;
use kmsconf_model::config::ProductId;
use kmsconf_model::keys::check_digit;
use kmsconf_model::state::Channel;

/// FNV-1a: deterministic on purpose, so the installation, confirmation and client machine IDs a
/// lab host shows are the same on every run.
pub(super) fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// `groups` groups of `width` digits drawn from a splitmix64 stream seeded by `seed`.
pub(super) fn digit_groups(seed: u64, groups: usize, width: u32) -> String {
    let mut state = seed;
    let modulus = 10u64.pow(width);
    (0..groups)
        .map(|_| {
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            format!("{:0w$}", z % modulus, w = width as usize)
        })
        .collect::<Vec<_>>()
        .join("-")
}

pub(super) fn digits(s: &str) -> String {
    s.chars().filter(char::is_ascii_digit).collect()
}

/// The activation ID (`SoftwareLicensingProduct.ID`) of the SKU a lab host's product key sits
/// on: an Office KMS host SKU's from the catalogue; for Windows one made up per host and channel
/// (a KMS host key and a KMS client key sit on different SKUs), in the form Windows shows.
pub(super) fn activation_id(host_id: &str, product: ProductId, channel: Channel) -> String {
    if let Some(id) = catalog::product(product).and_then(|p| p.activation_id.clone()) {
        return id;
    }
    let a = fnv1a(format!("{host_id}/{product}/{channel}").as_bytes());
    let b = fnv1a(format!("sku/{a}").as_bytes());
    format!(
        "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xfff,
        b >> 52,
        b & 0xffff_ffff_ffff
    )
}

/// The installation ID the lab host shows for a key: nine groups of seven digits, as `/dti`.
pub(super) fn installation_id(host_id: &str, product: ProductId, key: &str) -> String {
    digit_groups(fnv1a(format!("{host_id}/{product}/{key}").as_bytes()), 9, 7)
}

/// The confirmation ID the phone line gives for an installation ID: eight groups of six digits,
/// each five digits and their check digit ([`check_digit`]). `None` when the text is not an
/// installation ID (63 digits).
pub fn confirmation_id_for(installation_id: &str) -> Option<String> {
    let d = digits(installation_id);
    (d.len() == 63).then(|| {
        digit_groups(fnv1a(format!("cid/{d}").as_bytes()), 8, 5)
            .split('-')
            .map(|five| {
                let values: Vec<u32> = five.chars().filter_map(|c| c.to_digit(10)).collect();
                format!("{five}{}", check_digit(&values))
            })
            .collect::<Vec<_>>()
            .join("-")
    })
}
