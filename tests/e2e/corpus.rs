//! Regression corpus of malformed inputs: configs (`tests/corpus/config/*.toml`, the expected
//! error in the last line's `# expect:` comment), plan files and lab state files (`*.json` with the
//! expected error in `*.expect`). Each must be rejected with its error, never a panic.

use std::path::{Path, PathBuf};

use kmsconf_model::config::Config;
use kmsconf_model::KmsPlan;

fn corpus(kind: &str, ext: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/corpus")
        .join(kind);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("corpus dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .collect();
    files.sort();
    files
}

fn expectation(path: &Path, text: &str) -> String {
    let sidecar = path.with_extension("expect");
    match std::fs::read_to_string(&sidecar) {
        Ok(e) => e.trim().to_string(),
        Err(_) => text
            .lines()
            .last()
            .and_then(|l| l.strip_prefix("# expect: "))
            .unwrap_or_else(|| panic!("{} has no expectation", path.display()))
            .to_string(),
    }
}

#[test]
fn malformed_configs_are_rejected_with_their_error() {
    let files = corpus("config", "toml");
    assert!(files.len() >= 40, "the corpus keeps at least 40 configs");
    let mut failures = Vec::new();
    for path in &files {
        let text = std::fs::read_to_string(path).expect("read");
        let expected = expectation(path, &text);
        // `K` and `C` name variables that are not set, so only literal secrets are checked here
        match Config::parse(Path::new("kmsconf.toml"), &text) {
            Ok(_) => failures.push(format!("{}: accepted", path.display())),
            Err(e) if e.to_string().contains(&expected) => {}
            Err(e) => failures.push(format!(
                "{}:\n  expected: {expected}\n  got: {e}",
                path.display()
            )),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Every `*.json` of `tests/corpus/KIND` must be refused by `load` with its expected error,
/// giving its position once.
fn check_json_corpus<T, E: std::fmt::Display>(kind: &str, load: impl Fn(&Path) -> Result<T, E>) {
    let files = corpus(kind, "json");
    assert!(!files.is_empty());
    for path in &files {
        let text = std::fs::read_to_string(path).expect("read");
        let expected = expectation(path, &text);
        match load(path) {
            Ok(_) => panic!("{}: accepted", path.display()),
            Err(e) => {
                assert!(
                    e.to_string().contains(&expected),
                    "{}: expected {expected}, got {e}",
                    path.display()
                );
                assert!(
                    e.to_string().matches("line ").count() <= 1,
                    "{}: the position is given once: {e}",
                    path.display()
                );
            }
        }
    }
}

#[test]
fn malformed_plan_files_are_rejected_with_their_error() {
    check_json_corpus("plan", |p| KmsPlan::load(p, None));
}

#[test]
fn malformed_lab_files_are_rejected_with_their_error() {
    check_json_corpus("lab", kmsconf_targets::lab::load);
}
