use super::script::ps_quote;
use super::*;

#[test]
fn unknown_editions_get_the_nearest_ids() {
    assert_eq!(
        nearest_editions("windows-11-enterprise"),
        [
            "windows-enterprise",
            "windows-enterprise-n",
            "windows-enterprise-g"
        ]
    );
    assert_eq!(
        nearest_editions("Windows-Pro"),
        ["windows-pro", "windows-pro-n", "windows-pro-education"]
    );
    // a typo: the ids a few edits away, the nearest first
    assert_eq!(
        nearest_editions("office-2019-profesional-plus").first(),
        Some(&"office-2019-professional-plus")
    );
    assert!(nearest_editions("windows-98").len() <= 3);
    assert!(nearest_editions("zzzzzzzzzzzzzzzzzzzzzzzz").is_empty());
}

#[test]
fn values_are_quoted_for_powershell() {
    assert_eq!(ps_quote("kms01"), "'kms01'");
    assert_eq!(ps_quote("a'b"), "'a''b'");
    assert_eq!(ps_quote("a\u{2019}b"), "'a\u{2019}\u{2019}b'");
    assert_eq!(ps_quote("$(evil)"), "'$(evil)'");
}
