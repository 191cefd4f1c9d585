//! Relative links in markdown: each names a file or directory that exists, a book page links only
//! inside the book (mdBook renders `docs/src` alone), and an `#anchor` is a heading of the page it
//! points into. Links with a scheme (`https:`) are not followed.

use std::collections::HashSet;
use std::path::{Component, Path, PathBuf};

/// Each broken link of `file`, as `FILE:LINE: (TARGET): why`.
pub fn broken(file: &Path) -> Vec<String> {
    let text = read(file);
    let in_book = file.starts_with(super::root().join("docs/src"));
    let mut found = Vec::new();
    for (number, line) in prose_lines(&text) {
        for target in link_targets(&line) {
            if let Err(why) = check(file, in_book, &target) {
                let rel = file.strip_prefix(super::root()).unwrap_or(file);
                found.push(format!("{}:{number}: ({target}): {why}", rel.display()));
            }
        }
    }
    found
}

fn read(file: &Path) -> String {
    std::fs::read_to_string(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()))
}

fn check(file: &Path, in_book: bool, target: &str) -> Result<(), String> {
    if target.contains("://") || target.starts_with("mailto:") {
        return Ok(());
    }
    let (path, fragment) = match target.split_once('#') {
        Some((path, fragment)) => (path, Some(fragment)),
        None => (target, None),
    };
    let dir = file.parent().expect("a file's directory");
    let resolved = if path.is_empty() {
        file.to_path_buf()
    } else {
        normalize(&dir.join(path))
    };
    if !resolved.exists() {
        return Err(format!("`{}` does not exist", resolved.display()));
    }
    if in_book && !resolved.starts_with(super::root().join("docs/src")) {
        return Err("leaves docs/src, which is all the rendered book holds".into());
    }
    match fragment {
        Some(fragment) if resolved.extension().is_some_and(|e| e == "md") => {
            if anchors(&read(&resolved)).contains(fragment) {
                Ok(())
            } else {
                Err(format!("no heading with the id `{fragment}`"))
            }
        }
        Some(_) => Err("an anchor into a file that is not markdown".into()),
        None => Ok(()),
    }
}

/// `a/b/../c` as `a/c`, without touching the file system.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// The lines outside fenced code blocks, numbered from 1, with inline code spans removed.
fn prose_lines(text: &str) -> Vec<(usize, String)> {
    let mut fenced = false;
    let mut lines = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("```") || trimmed.starts_with("~~~") {
            fenced = !fenced;
            continue;
        }
        if !fenced {
            let prose: String = line.split('`').step_by(2).collect::<Vec<_>>().join(" ");
            lines.push((i + 1, prose));
        }
    }
    lines
}

/// The targets of the inline links `[text](target "title")` in a line.
fn link_targets(line: &str) -> Vec<String> {
    let mut targets = Vec::new();
    let mut rest = line;
    while let Some(start) = rest.find("](") {
        let after = &rest[start + 2..];
        let mut depth = 1;
        let end = after
            .char_indices()
            .find(|&(_, c)| {
                match c {
                    '(' => depth += 1,
                    ')' => depth -= 1,
                    _ => {}
                }
                depth == 0
            })
            .map_or(after.len(), |(i, _)| i);
        let target = after[..end].split_whitespace().next().unwrap_or("");
        targets.push(target.trim_matches(['<', '>']).to_string());
        rest = &after[end..];
    }
    targets
}

/// The ids of a page's headings, numbered as mdBook numbers a repeated one (`id`, `id-1`, ...).
pub fn anchors(text: &str) -> HashSet<String> {
    let mut used = HashSet::new();
    let mut fenced = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        let hashes = line.chars().take_while(|&c| c == '#').count();
        if fenced || !(1..=6).contains(&hashes) || !line[hashes..].starts_with(' ') {
            continue;
        }
        let id = super::anchor(&heading_text(&line[hashes..]));
        let mut candidate = id.clone();
        let mut counter = 1;
        while !used.insert(candidate.clone()) {
            candidate = format!("{id}-{counter}");
            counter += 1;
        }
    }
    used
}

/// A heading's text as rendered: code spans and emphasis lose their marks, a link keeps its text.
fn heading_text(markdown: &str) -> String {
    let mut text = String::new();
    let mut rest = markdown;
    while let Some(open) = rest.find('[') {
        let Some(close) = rest[open..].find("](") else {
            break;
        };
        let Some(end) = rest[open + close..].find(')') else {
            break;
        };
        text.push_str(&rest[..open]);
        text.push_str(&rest[open + 1..open + close]);
        rest = &rest[open + close + end + 1..];
    }
    text.push_str(rest);
    text.replace(['`', '*'], "")
}

#[test]
fn the_checker_finds_what_is_broken() {
    let dir = tempfile::tempdir().expect("temp dir");
    let page = dir.path().join("page.md");
    std::fs::write(
        &page,
        "# A `code` title\n\n## Twice\n\n## Twice\n\n[ok](#a-code-title) [ok](#twice-1) \
         [ok](page.md#twice) [bad](#nowhere) [bad](missing.md) `[not a link](nowhere.md)`\n\n\
         ```\n[in a fence](nowhere.md)\n```\n[web](https://example.org/x#y)\n",
    )
    .expect("write");
    let found = broken(&page);
    assert_eq!(found.len(), 2, "{found:#?}");
    assert!(found[0].contains("(#nowhere): no heading with the id `nowhere`"));
    assert!(found[1].contains("(missing.md):"), "{found:#?}");
}
