//! README.md against the real binary: every command and flag its command tables name exists
//! (and every command the binary has is in a table), its config snippets validate, its markdown
//! sample is the real output, and the figures it gives about the repository are true.

use std::path::Path;

use crate::common::Project;

fn readme() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
        .expect("README.md")
}

/// Each row of the README's command tables: its first cell (`kmsconf ...` in backticks, without
/// `kmsconf `) and the whole row.
fn table_commands(readme: &str) -> Vec<(String, String)> {
    readme
        .lines()
        .filter_map(|l| {
            let rest = l.strip_prefix("| `kmsconf ")?;
            let cell = rest.split('`').next()?;
            Some((cell.replace("\\|", "|"), l.to_string()))
        })
        .collect()
}

/// The flags a `--help` text lists (the short form when there is one), without `-h, --help` and
/// `-V, --version`.
fn help_flags(help: &str) -> Vec<String> {
    help.lines()
        .map(str::trim_start)
        .filter(|l| l.starts_with('-'))
        .filter_map(|l| {
            // the short form when there is one (`-c, --config`): README writes that
            l.split(|c: char| c.is_whitespace() || c == ',').next()
        })
        .filter(|f| !["-h", "--help", "-V", "--version"].contains(f))
        .map(str::to_string)
        .collect()
}

/// The subcommand path of a table row (`lab clients add`, `plan`), without its arguments.
fn subcommand(row: &str) -> Vec<String> {
    let words: Vec<&str> = row.split_whitespace().collect();
    let mut path = vec![words[0].to_string()];
    if words[0] == "lab" && words.len() > 1 && words[1] != "..." {
        path.push(words[1].to_string());
        if words[1] == "clients" {
            path.push(words[2].to_string());
        }
    }
    path
}

/// The subcommands `kmsconf [PATH] --help` lists.
fn listed_subcommands(p: &Project, path: &[&str]) -> Vec<String> {
    let mut args = path.to_vec();
    args.push("--help");
    let help = p.ok(&args, 0).stdout;
    help.split("Commands:\n")
        .nth(1)
        .map(|rest| {
            rest.lines()
                .take_while(|l| l.starts_with("  "))
                .filter_map(|l| l.split_whitespace().next())
                .filter(|c| *c != "help")
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn every_flag_in_the_command_tables_exists_and_every_command_is_documented() {
    let p = Project::new();
    let rows = table_commands(&readme());
    assert!(
        rows.len() > 20,
        "the command tables were not found: {rows:?}"
    );
    for (row, line) in &rows {
        let path = subcommand(row);
        let mut args: Vec<&str> = path.iter().map(String::as_str).collect();
        args.push("--help");
        let help = p.ok(&args, 0).stdout;
        for flag in row
            .split(|c: char| c.is_whitespace() || "[]|".contains(c))
            .filter(|w| w.starts_with('-'))
        {
            assert!(
                [" ", ",", "\n"]
                    .iter()
                    .any(|end| help.contains(&format!("{flag}{end}"))),
                "README documents `kmsconf {row}` but `kmsconf {}` has no `{flag}`:\n{help}",
                args.join(" ")
            );
        }
        for flag in help_flags(&help) {
            assert!(
                line.contains(&format!("`{flag}"))
                    || line.contains(&format!(" {flag}"))
                    || line.contains(&format!("[{flag}")),
                "`kmsconf {}` has `{flag}` but README's row does not mention it: {line}",
                args.join(" ")
            );
        }
    }
    let documented: Vec<Vec<String>> = rows.iter().map(|(r, _)| subcommand(r)).collect();
    let has = |path: &[&str]| {
        documented
            .iter()
            .any(|d| d.iter().map(String::as_str).eq(path.iter().copied()))
    };
    for top in listed_subcommands(&p, &[]) {
        assert!(
            has(&[&top]),
            "`kmsconf {top}` is not in README's command table"
        );
    }
    for lab in listed_subcommands(&p, &["lab"]) {
        if lab == "clients" {
            for c in listed_subcommands(&p, &["lab", "clients"]) {
                assert!(
                    has(&["lab", "clients", &c]),
                    "`kmsconf lab clients {c}` is not in README's lab table"
                );
            }
        } else {
            assert!(
                has(&["lab", &lab]),
                "`kmsconf lab {lab}` is not in README's lab table"
            );
        }
    }
}

/// The ```toml blocks of README.md, in order; a block indented in a list item loses its
/// indentation.
fn toml_blocks(readme: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut open: Option<(usize, String)> = None;
    for line in readme.lines() {
        let indent = line.len() - line.trim_start().len();
        match open.as_mut() {
            None if line.trim() == "```toml" => open = Some((indent, String::new())),
            None => {}
            Some(_) if line.trim() == "```" => {
                blocks.extend(open.take().map(|(_, block)| block));
            }
            Some((indent, block)) => {
                block.push_str(line.get(*indent..).unwrap_or(line.trim_start()));
                block.push('\n');
            }
        }
    }
    blocks
}

#[test]
fn the_config_snippets_validate() {
    let blocks = toml_blocks(&readme());
    assert!(blocks.len() >= 2, "README's config snippets were not found");
    let p = Project::new();
    // the reference snippet names a dependency `kms00` that it does not show, and says so
    assert!(
        readme().contains("**A reference, not a config to copy**"),
        "README labels its reference config"
    );
    let reference = format!(
        "[hosts.kms00]\ntarget = \"lab:lab/kms00.json\"\n\n{}",
        blocks[0]
    );
    p.write("reference.toml", &reference);
    p.ok(&["validate", "-c", "reference.toml"], 0);
    assert!(
        blocks[1].contains("[dns]"),
        "the second snippet is the DNS one"
    );
    p.write("dns.toml", &blocks[1]);
    p.ok(&["validate", "-c", "dns.toml"], 0);
    // the later snippets are whole configs
    for (i, block) in blocks.iter().enumerate().skip(2) {
        let name = format!("snippet{i}.toml");
        p.write(&name, block);
        if cfg!(windows) && block.contains("gss_tsig") {
            // GSS-TSIG goes through MIT Kerberos, which kmsconf has on Linux only
            let r = p.ok(&["validate", "-c", &name], 1);
            assert!(
                r.stderr.contains("`gss_tsig` is not supported on Windows"),
                "{r:?}"
            );
        } else {
            p.ok(&["validate", "-c", &name], 0);
        }
    }
}

#[test]
fn the_markdown_sample_is_the_real_output() {
    let readme = readme();
    let sample = readme
        .split("```markdown\n")
        .nth(1)
        .and_then(|b| b.split("\n```").next())
        .expect("README's markdown sample");
    let p = Project::example("single-os-host");
    let md = crate::integrity::mask_digests(&p.ok(&["plan", "--format", "markdown"], 0).stdout);
    assert_eq!(md.trim_end(), sample, "README's markdown sample is stale");
}

#[test]
fn the_corpus_count_is_true() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus");
    let mut inputs = 0;
    for kind in ["config", "plan", "lab"] {
        for entry in std::fs::read_dir(root.join(kind)).expect("corpus dir") {
            let path = entry.expect("entry").path();
            // inputs, not the `.snap` snapshot beside each
            if path.extension().is_some_and(|e| e == "toml" || e == "json") {
                inputs += 1;
            }
        }
    }
    let claim = format!("`tests/corpus/` holds {inputs} malformed");
    assert!(
        readme().contains(&claim),
        "README should say: {claim} (the corpus has {inputs} inputs)"
    );
}
