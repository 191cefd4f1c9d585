//! The book in `docs/`: its generated reference pages are what the schema and the settings rows
//! say (`KMSCONF_UPDATE_DOCS=1` writes them again, as uv regenerates its `docs/reference`), and
//! every relative link and `#anchor` in README.md, CONTRIBUTING.md and the book resolves.

mod links;
mod reference;
mod settings;

use std::path::{Path, PathBuf};

/// The repository root.
pub fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The book's pages (`docs/src/**/*.md`), sorted.
pub fn book_pages() -> Vec<PathBuf> {
    let mut pages = Vec::new();
    let mut dirs = vec![root().join("docs/src")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("read docs/src") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "md") {
                pages.push(path);
            }
        }
    }
    pages.sort();
    pages
}

/// README.md, then every book page, as (path relative to the root, text).
pub fn pages() -> Vec<(String, String)> {
    std::iter::once(root().join("README.md"))
        .chain(book_pages())
        .map(|path| {
            let text = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let rel = path.strip_prefix(root()).expect("under the root");
            (slashed(rel), text)
        })
        .collect()
}

/// A relative path with `/` between its parts on every platform, as Markdown links and
/// SUMMARY.md write it (`reference/config.md`, never `reference\config.md`).
pub fn slashed(rel: &Path) -> String {
    let parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    parts.join("/")
}

/// The HTML id mdBook (and, for these headings, GitHub) gives a heading: its text lowercased,
/// whitespace as `-`, everything but letters, digits, `-` and `_` dropped.
pub fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            c if c.is_alphanumeric() || c == '_' || c == '-' => Some(c),
            c if c.is_whitespace() => Some('-'),
            _ => None,
        })
        .collect()
}

/// Compares a generated page with the committed one, or writes it with `KMSCONF_UPDATE_DOCS=1`.
fn fresh(rel: &str, generated: &str) {
    let path = root().join(rel);
    if std::env::var_os("KMSCONF_UPDATE_DOCS").is_some_and(|v| v == "1") {
        std::fs::write(&path, generated).unwrap_or_else(|e| panic!("{rel}: {e}"));
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "{rel} is stale: run `KMSCONF_UPDATE_DOCS=1 cargo test --test e2e docs::` and commit it"
    );
}

#[test]
fn the_config_reference_is_generated_from_the_schema() {
    let out = crate::common::output(
        std::process::Command::new(env!("CARGO_BIN_EXE_kmsconf")).arg("schema"),
    )
    .expect("run kmsconf schema");
    assert!(out.status.success(), "kmsconf schema: {out:?}");
    let schema: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("`kmsconf schema` prints JSON");
    fresh("docs/src/reference/config.md", &reference::render(&schema));
}

#[test]
fn the_settings_table_is_generated_from_the_rows() {
    fresh("docs/src/reference/settings.md", &settings::render());
}

#[test]
fn every_internal_link_resolves() {
    let mut files: Vec<PathBuf> = ["README.md", "CONTRIBUTING.md"]
        .iter()
        .map(|f| root().join(f))
        .filter(|p| p.exists())
        .collect();
    files.extend(book_pages());
    let broken: Vec<String> = files.iter().flat_map(|f| links::broken(f)).collect();
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

#[test]
fn every_book_page_is_in_the_summary() {
    let summary = std::fs::read_to_string(root().join("docs/src/SUMMARY.md")).expect("SUMMARY.md");
    for page in book_pages() {
        let rel = slashed(
            page.strip_prefix(root().join("docs/src"))
                .expect("in docs/src"),
        );
        assert!(
            rel == "SUMMARY.md" || summary.contains(&format!("]({rel})")),
            "docs/src/{rel} is not in SUMMARY.md, so the book does not show it"
        );
    }
}
