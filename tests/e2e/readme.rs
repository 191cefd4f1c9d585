//! README.md and the book (`docs/src/`) against the real binary: every command and flag their
//! command tables name exists (and every command the binary has is in the book's tables and in
//! README's), their config snippets validate, README's plan and the GitOps chapter's markdown
//! sample are the real output, and the figures they give about the repository are true.

use std::path::Path;

use crate::common::Project;
use crate::docs::pages;

fn readme() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
        .expect("README.md")
}

/// The book's pages (everything but README.md), as one text.
fn book() -> String {
    pages()
        .into_iter()
        .filter(|(path, _)| path != "README.md")
        .map(|(_, text)| text)
        .collect::<Vec<_>>()
        .join("\n")
}

/// One page of the book, by its path under `docs/src`.
fn page(name: &str) -> String {
    let path = format!("docs/src/{name}");
    pages()
        .into_iter()
        .find(|(p, _)| *p == path)
        .map(|(_, text)| text)
        .unwrap_or_else(|| panic!("{path} is missing"))
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

/// Asserts that every flag `row` names is one `kmsconf PATH --help` lists, and returns that help.
fn flags_exist(p: &Project, row: &str, page: &str) -> (Vec<String>, String) {
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
            "{page} documents `kmsconf {row}` but `kmsconf {}` has no `{flag}`:\n{help}",
            args.join(" ")
        );
    }
    (path, help)
}

#[test]
fn every_flag_in_the_command_tables_exists_and_every_command_is_documented() {
    let p = Project::new();
    let rows = table_commands(&book());
    assert!(
        rows.len() > 20,
        "the book's command tables were not found: {rows:?}"
    );
    for (row, line) in &rows {
        let (path, help) = flags_exist(&p, row, "the book");
        for flag in help_flags(&help) {
            assert!(
                line.contains(&format!("`{flag}"))
                    || line.contains(&format!(" {flag}"))
                    || line.contains(&format!("[{flag}")),
                "`kmsconf {}` has `{flag}` but the book's row does not mention it: {line}",
                path.join(" ")
            );
        }
    }
    let documented: Vec<Vec<String>> = rows.iter().map(|(r, _)| subcommand(r)).collect();
    let has = |path: &[&str]| {
        documented
            .iter()
            .any(|d| d.iter().map(String::as_str).eq(path.iter().copied()))
    };
    // README's short table: real commands and flags, and every command is there
    let short: Vec<Vec<String>> = table_commands(&readme())
        .iter()
        .map(|(row, _)| flags_exist(&p, row, "README").0)
        .collect();
    for top in listed_subcommands(&p, &[]) {
        assert!(
            has(&[&top]),
            "`kmsconf {top}` is not in the book's command table"
        );
        assert!(
            short.iter().any(|s| *s == [top.clone()]),
            "`kmsconf {top}` is not in README's command table"
        );
    }
    for lab in listed_subcommands(&p, &["lab"]) {
        if lab == "clients" {
            for c in listed_subcommands(&p, &["lab", "clients"]) {
                assert!(
                    has(&["lab", "clients", &c]),
                    "`kmsconf lab clients {c}` is not in the book's lab table"
                );
            }
        } else {
            assert!(
                has(&["lab", &lab]),
                "`kmsconf lab {lab}` is not in the book's lab table"
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
    let p = Project::new();
    // the config chapter's reference names a dependency `kms00` that it does not show, and says so
    let config = page("config.md");
    let marker = "**A reference, not a config to copy**";
    let reference = config
        .split(marker)
        .nth(1)
        .map(toml_blocks)
        .and_then(|blocks| blocks.into_iter().next())
        .expect("the config chapter labels its reference config");
    let mut checked = 0;
    for (path, text) in pages() {
        for (i, block) in toml_blocks(&text).into_iter().enumerate() {
            let config = if block == reference {
                format!("[hosts.kms00]\ntarget = \"lab:lab/kms00.json\"\n\n{block}")
            } else {
                block
            };
            let name = format!("snippet{checked}.toml");
            p.write(&name, &config);
            let run = p.run(&["validate", "-c", &name]);
            // GSS-TSIG, LDAP binds and WinRM tickets go through MIT Kerberos, which kmsconf has
            // on Linux only: on Windows such a snippet is refused for that, and for nothing else
            let linux_only = [
                "`gss_tsig` is not supported on Windows",
                "`gss` is not supported on Windows",
                "through MIT Kerberos, which it does not use on Windows",
            ];
            let refused_here = |line: &str| linux_only.iter().any(|m| line.contains(m));
            if cfg!(windows) && run.code == 1 && run.stderr.lines().any(refused_here) {
                let errors: Vec<&str> = run
                    .stderr
                    .lines()
                    .filter(|l| l.starts_with(&name))
                    .collect();
                assert!(
                    errors.iter().all(|l| refused_here(l)),
                    "{path}, TOML block {}:\n{run:?}",
                    i + 1
                );
            } else {
                assert_eq!(
                    run.code,
                    0,
                    "{path}, TOML block {}:\n{config}\n{run:?}",
                    i + 1
                );
            }
            checked += 1;
        }
    }
    assert!(checked >= 7, "only {checked} TOML snippets were found");
}

/// README's first config and the plan it shows for it: the block after it that starts with
/// `$ VAR=VALUE kmsconf plan`.
#[test]
fn the_readme_plan_is_the_real_output() {
    let readme = readme();
    let config = toml_blocks(&readme)
        .into_iter()
        .next()
        .expect("README's config");
    let sample = readme
        .split("```text\n$ ")
        .nth(1)
        .and_then(|b| b.split("\n```").next())
        .expect("README's plan");
    let (command, shown) = sample
        .split_once('\n')
        .expect("a command line, then output");
    let mut p = Project::new();
    let mut words = command.split_whitespace();
    for word in words.by_ref() {
        match word.split_once('=') {
            Some((var, value)) => {
                p.env(var, value);
            }
            None => {
                assert_eq!(word, "kmsconf", "README's plan command: {command}");
                break;
            }
        }
    }
    let args: Vec<&str> = words.collect();
    assert_eq!(args, ["plan"], "README's plan command: {command}");
    p.write("kmsconf.toml", &config);
    let plan = p.ok(&args, 0).stdout;
    assert_eq!(plan.trim_end(), shown, "README's plan is stale");
}

#[test]
fn the_markdown_sample_is_the_real_output() {
    let gitops = page("gitops.md");
    let sample = gitops
        .split("```markdown\n")
        .nth(1)
        .and_then(|b| b.split("\n```").next())
        .expect("the GitOps chapter's markdown sample");
    let p = Project::example("single-os-host");
    let md = crate::integrity::mask_digests(&p.ok(&["plan", "--format", "markdown"], 0).stdout);
    assert_eq!(
        md.trim_end(),
        sample,
        "the GitOps chapter's markdown sample is stale"
    );
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
        page("reliability.md").contains(&claim),
        "docs/src/reliability.md should say: {claim} (the corpus has {inputs} inputs)"
    );
}
