//! The pipeline templates in `examples/pipelines/`: each is valid YAML, covers the whole flow
//! (validate, plan --out, the markdown summary, apply PLANFILE), and every kmsconf command line
//! in it runs with the real binary, in file order, against a copy of an example with lab hosts.

use std::path::{Path, PathBuf};

use yaml_rust2::{Yaml, YamlLoader};

use crate::common::*;

fn pipeline_files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/pipelines");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("examples/pipelines")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yml" || e == "yaml"))
        .collect();
    files.sort();
    files
}

/// The shell scripts of a pipeline: every string under a `run` (GitHub), `script` (GitLab,
/// Azure), `before_script` or `after_script` key, in document order.
fn scripts(yaml: &Yaml, in_script: bool, out: &mut Vec<String>) {
    match yaml {
        Yaml::String(s) if in_script => out.push(s.clone()),
        Yaml::Array(items) => items.iter().for_each(|i| scripts(i, in_script, out)),
        Yaml::Hash(map) => map.iter().for_each(|(k, v)| {
            let key = k.as_str().unwrap_or_default();
            let is_script = matches!(key, "run" | "script" | "before_script" | "after_script");
            scripts(v, in_script || is_script, out);
        }),
        _ => {}
    }
}

#[derive(Debug, PartialEq)]
enum Token {
    Word(String),
    /// `|`, `||`, `&&`, `;`, `&`, `(`, `)`, `$(`, `{`, `}`: a new command starts after it.
    Separator,
}

/// Splits one shell line into words and separators: quotes are removed, `#` starts a comment.
/// A `$` outside single quotes is kept, so an unexpanded variable can be told apart.
fn shell_tokens(line: &str) -> Vec<Token> {
    let mut tokens = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = line.chars().peekable();
    let flush = |word: &mut String, in_word: &mut bool, tokens: &mut Vec<Token>| {
        if *in_word {
            let w = std::mem::take(word);
            tokens.push(if w == "{" || w == "}" {
                Token::Separator
            } else {
                Token::Word(w)
            });
            *in_word = false;
        }
    };
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' => flush(&mut word, &mut in_word, &mut tokens),
            '#' if !in_word => break,
            '\'' => {
                in_word = true;
                for q in chars.by_ref() {
                    if q == '\'' {
                        break;
                    }
                    word.push(q);
                }
            }
            '"' => {
                in_word = true;
                while let Some(q) = chars.next() {
                    match q {
                        '"' => break,
                        '\\' => word.extend(chars.next()),
                        _ => word.push(q),
                    }
                }
            }
            '\\' => {
                in_word = true;
                word.extend(chars.next());
            }
            '$' if chars.peek() == Some(&'(') => {
                flush(&mut word, &mut in_word, &mut tokens);
                chars.next();
                tokens.push(Token::Separator);
            }
            '|' | '&' | ';' | '(' | ')' => {
                // `2>&1` and `>&2` are redirections, not separators
                if c == '&' && word.ends_with('>') {
                    word.push(c);
                    continue;
                }
                flush(&mut word, &mut in_word, &mut tokens);
                if (c == '|' || c == '&') && chars.peek() == Some(&c) {
                    chars.next();
                }
                tokens.push(Token::Separator);
            }
            _ => {
                in_word = true;
                word.push(c);
            }
        }
    }
    flush(&mut word, &mut in_word, &mut tokens);
    tokens
}

/// Removes redirections (`> file`, `>>file`, `2>&1`, `< in`) from a command's words.
fn without_redirections(words: Vec<String>) -> Vec<String> {
    let mut out = Vec::new();
    let mut skip_next = false;
    for w in words {
        if skip_next {
            skip_next = false;
            continue;
        }
        let bare = w.trim_start_matches(|c: char| c.is_ascii_digit());
        if bare.starts_with('>') || bare.starts_with('<') {
            let op_only = bare.trim_start_matches(['>', '<', '&']).is_empty();
            skip_next = op_only && !bare.contains('&');
            continue;
        }
        out.push(w);
    }
    out
}

/// The kmsconf command lines of a script (arguments after `kmsconf`), in order.
fn kmsconf_commands(script: &str) -> Result<Vec<Vec<String>>, String> {
    let joined = script.replace("\\\n", " ");
    let mut commands = Vec::new();
    for line in joined.lines() {
        let mut command: Vec<String> = Vec::new();
        let mut tokens = shell_tokens(line);
        tokens.push(Token::Separator);
        for token in tokens {
            match token {
                Token::Word(w) => command.push(w),
                Token::Separator => {
                    let words = without_redirections(std::mem::take(&mut command));
                    let mut words = words.into_iter().skip_while(|w| {
                        w.contains('=') && !w.starts_with('-') && !w.starts_with('=')
                    });
                    if words.next().as_deref() == Some("kmsconf") {
                        let args: Vec<String> = words.collect();
                        if let Some(a) = args.iter().find(|a| a.contains('$')) {
                            return Err(format!(
                                "`{}`: `{a}` is a variable; write kmsconf lines with literal arguments so they can be checked",
                                line.trim()
                            ));
                        }
                        commands.push(args);
                    }
                }
            }
        }
    }
    Ok(commands)
}

/// Checks one pipeline definition; returns how many kmsconf command lines ran.
fn check_pipeline(text: &str) -> Result<usize, String> {
    let docs = YamlLoader::load_from_str(text).map_err(|e| format!("invalid YAML: {e}"))?;
    if docs.is_empty() {
        return Err("no YAML document".into());
    }
    let mut texts = Vec::new();
    docs.iter().for_each(|d| scripts(d, false, &mut texts));
    let mut commands = Vec::new();
    for s in &texts {
        commands.extend(kmsconf_commands(s)?);
    }
    let has = |sub: &str, flag: &str| {
        commands
            .iter()
            .any(|c| c.first().is_some_and(|s| s == sub) && c.iter().any(|a| a == flag))
    };
    let plan_file = commands
        .iter()
        .filter(|c| c.first().is_some_and(|s| s == "plan"))
        .find_map(|c| c.iter().skip_while(|a| *a != "--out").nth(1))
        .ok_or("no `kmsconf plan --out PLANFILE`")?
        .clone();
    let required = [
        ("validate", "validate"),
        ("show", "markdown"),
        ("show", &plan_file),
        ("apply", &plan_file),
    ];
    for (sub, arg) in required {
        if !has(sub, arg) {
            return Err(format!("no `kmsconf {sub} ... {arg}`"));
        }
    }

    let mut p = Project::example("os-and-office-phone");
    p.env("OFFICE_2019_KEY", OFFICE_KEY);
    for args in &commands {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let r = p.run(&args);
        if r.code != 0 {
            return Err(format!("`kmsconf {}` failed:\n{r:?}", args.join(" ")));
        }
        let summary = args.first() == Some(&"show") && args.contains(&"markdown");
        if summary && !r.stdout.starts_with("### kmsconf plan") {
            return Err(format!("`kmsconf {}` printed no summary", args.join(" ")));
        }
    }
    Ok(commands.len())
}

#[test]
fn every_pipeline_is_valid_yaml_and_its_kmsconf_lines_run() {
    let files = pipeline_files();
    let names: Vec<String> = files
        .iter()
        .filter_map(|f| f.file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        ["azure-pipelines.yml", "github-actions.yml", "gitlab-ci.yml"]
    );
    for file in files {
        let text = std::fs::read_to_string(&file).expect("read");
        match check_pipeline(&text) {
            Ok(n) => assert!(n >= 4, "{}: only {n} kmsconf lines", file.display()),
            Err(e) => panic!("{}: {e}", file.display()),
        }
    }
}

#[test]
fn the_pipeline_check_fails_on_what_it_must_catch() {
    let flow = "validate:\n  script:\n    - kmsconf validate\n    - kmsconf plan --out p.plan\n    - kmsconf show p.plan --format markdown > plan.md\n    - kmsconf apply p.plan\n";
    assert_eq!(check_pipeline(flow), Ok(4));

    let bad_yaml = format!("{flow}  broken: [\n");
    assert!(check_pipeline(&bad_yaml).is_err_and(|e| e.contains("invalid YAML")));

    let bad_flag = flow.replace("--format markdown", "--fromat markdown");
    let e = check_pipeline(&bad_flag).expect_err("a wrong flag must fail");
    assert!(e.contains("kmsconf show p.plan --fromat markdown"), "{e}");

    let bad_value = flow.replace(
        "- kmsconf validate",
        "- kmsconf validate\n    - kmsconf plan --format markdwon",
    );
    assert!(check_pipeline(&bad_value).is_err_and(|e| e.contains("markdwon")));

    let unknown = flow.replace("kmsconf validate", "kmsconf validate --strict");
    assert!(check_pipeline(&unknown).is_err_and(|e| e.contains("--strict")));

    let variable = flow.replace("apply p.plan", "apply \"$PLAN\"");
    assert!(check_pipeline(&variable).is_err_and(|e| e.contains("is a variable")));

    let no_apply = flow.replace("    - kmsconf apply p.plan\n", "");
    assert!(check_pipeline(&no_apply).is_err_and(|e| e.contains("kmsconf apply")));
}

#[test]
fn shell_lines_are_split_like_a_shell_would() {
    let c = kmsconf_commands(
        "set -e && kmsconf plan --out 'a b.plan' 2>&1 | tee log\nNO_COLOR=1 kmsconf show a.plan >plan.md # comment\necho \"kmsconf: not a command\" >&2\nx=$(kmsconf show p --json)",
    )
    .expect("commands");
    assert_eq!(
        c,
        [
            vec!["plan", "--out", "a b.plan"],
            vec!["show", "a.plan"],
            vec!["show", "p", "--json"],
        ]
    );
}

#[test]
fn the_github_pipeline_turns_validate_errors_into_annotations() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/pipelines/github-actions.yml");
    let text = std::fs::read_to_string(path).expect("read");
    let docs = YamlLoader::load_from_str(&text).expect("YAML");
    let mut texts = Vec::new();
    docs.iter().for_each(|d| scripts(d, false, &mut texts));
    let commands: Vec<Vec<String>> = texts
        .iter()
        .flat_map(|t| kmsconf_commands(t).expect("commands"))
        .collect();
    assert!(
        commands
            .iter()
            .any(|c| c == &["validate", "--format", "github"]),
        "{commands:?}"
    );
}
