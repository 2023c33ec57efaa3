//! The README and `docs/` say only true things where a program can check them: every whole
//! suite they show validates, every `kitt ...` command they quote exists with the flags they
//! give it, every suite key in the reference exists in the suite schema, and every metric name
//! in the benchmark reference is one a benchmark declares.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use clap::CommandFactory;
use serde_json::Value;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// README.md, docs/*.md and tests/README.md, with their text.
fn documents() -> Vec<(PathBuf, String)> {
    let mut paths = vec![root().join("README.md"), root().join("tests/README.md")];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root().join("docs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "md"))
        .collect();
    docs.sort();
    paths.extend(docs);
    paths
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            (p, text)
        })
        .collect()
}

/// The text of each ```yaml block.
fn yaml_blocks(text: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        match (&mut current, line.trim_start()) {
            (None, l) if l.starts_with("```yaml") => current = Some(String::new()),
            (Some(_), l) if l.starts_with("```") => blocks.extend(current.take()),
            (Some(block), _) => {
                block.push_str(line);
                block.push('\n');
            }
            _ => {}
        }
    }
    blocks
}

/// The text between backticks on each line (inline code spans).
fn code_spans(text: &str) -> Vec<String> {
    let mut spans = Vec::new();
    let mut in_block = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            in_block = !in_block;
            continue;
        }
        if in_block {
            continue;
        }
        let parts: Vec<&str> = line.split('`').collect();
        spans.extend(parts.iter().skip(1).step_by(2).map(|s| s.to_string()));
    }
    spans
}

#[test]
fn every_whole_suite_shown_validates() {
    let registry = kitt::assemble::builtins();
    let mut checked = 0;
    for (path, text) in documents() {
        for block in yaml_blocks(&text) {
            if !block.contains("apiVersion: kitt/v1") || !block.contains("kind: Suite") {
                continue;
            }
            // Validated as if it were in suites/, where `$schema=../schemas/...` points.
            let at = root().join("suites/from-the-docs.yaml");
            let v = kitt::suite::validate::validate_source(
                &at,
                block.clone(),
                &registry,
                &[],
                kitt::suite::validate::Unset::Error,
            );
            let errors: Vec<String> = v
                .diagnostics
                .iter()
                .filter(|d| d.is_error())
                .map(|d| d.message.clone())
                .collect();
            assert!(
                errors.is_empty(),
                "a suite in {} does not validate: {errors:?}\n{block}",
                path.display()
            );
            checked += 1;
        }
    }
    assert!(checked >= 2, "the README and docs/suites.md show suites");
}

/// The subcommand path and flags of a quoted `kitt ...` command; alternatives (`a\|b`) each.
fn quoted_commands(span: &str) -> Option<(Vec<Vec<String>>, Vec<String>)> {
    let rest = span.strip_prefix("kitt ")?;
    let mut path: Vec<Vec<String>> = Vec::new();
    let mut flags = Vec::new();
    let mut in_path = true;
    for word in rest.split_whitespace() {
        let alternatives: Vec<String> = word.split("\\|").map(str::to_string).collect();
        let is_word = alternatives
            .iter()
            .all(|a| !a.is_empty() && a.chars().all(|c| c.is_ascii_lowercase() || c == '-'));
        if in_path && is_word && !word.starts_with('-') {
            path.push(alternatives);
            continue;
        }
        in_path = false;
        let word = word.trim_start_matches(['[', '(']);
        if word.starts_with('-') {
            let flag = word
                .split(['=', ']', ')'])
                .next()
                .unwrap_or(word)
                .trim_end_matches("...");
            flags.push(flag.to_string());
        }
    }
    Some((path, flags))
}

fn has_flag(cmd: &clap::Command, flag: &str) -> bool {
    if flag == "--help" || flag == "-h" {
        return true;
    }
    cmd.get_arguments().any(|a| match flag.strip_prefix("--") {
        Some(long) => a.get_long() == Some(long),
        None => flag
            .strip_prefix('-')
            .and_then(|s| s.chars().next())
            .is_some_and(|c| a.get_short() == Some(c)),
    })
}

#[test]
fn every_quoted_command_and_flag_exists() {
    let mut cli = kitt::cli::Cli::command();
    cli.build();
    let mut seen = 0;
    let mut wrong = Vec::new();
    for (path, text) in documents() {
        for span in code_spans(&text) {
            let Some((words, flags)) = quoted_commands(&span) else {
                continue;
            };
            if words.is_empty() || span.contains("__") {
                continue;
            }
            // Every alternative at each level must exist; the flags belong to the last one.
            let mut at = vec![&cli];
            for level in &words {
                let mut next = Vec::new();
                for cmd in &at {
                    for name in level {
                        match cmd.find_subcommand(name) {
                            Some(sub) => next.push(sub),
                            None if cmd.has_subcommands() => wrong
                                .push(format!("{}: `{span}`: no command `{name}`", path.display())),
                            None => {}
                        }
                    }
                }
                if next.is_empty() {
                    break;
                }
                at = next;
            }
            for flag in &flags {
                if !at.iter().any(|cmd| has_flag(cmd, flag)) {
                    wrong.push(format!("{}: `{span}`: no flag `{flag}`", path.display()));
                }
            }
            seen += 1;
        }
    }
    assert!(seen > 40, "the docs quote commands ({seen} seen)");
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// Every property name anywhere in a JSON Schema.
fn property_names(schema: &Value, out: &mut BTreeSet<String>) {
    match schema {
        Value::Object(map) => {
            if let Some(Value::Object(props)) = map.get("properties") {
                out.extend(props.keys().cloned());
            }
            for v in map.values() {
                property_names(v, out);
            }
        }
        Value::Array(items) => items.iter().for_each(|v| property_names(v, out)),
        _ => {}
    }
}

#[test]
fn every_suite_key_in_the_reference_is_in_the_schema() {
    let schema: Value = serde_json::from_str(kitt::suite::schema::SUITE_SCHEMA).unwrap();
    let mut names = BTreeSet::new();
    property_names(&schema, &mut names);
    let suites = std::fs::read_to_string(root().join("docs/suites.md")).unwrap();
    let keys = suites
        .split("- **Keys**:")
        .nth(1)
        .and_then(|rest| rest.split("\n- ").next())
        .expect("docs/suites.md has a **Keys** paragraph");
    let quoted: Vec<String> = code_spans(keys)
        .into_iter()
        .filter(|k| k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
        .collect();
    assert!(quoted.len() >= 10, "{quoted:?}");
    let missing: Vec<&String> = quoted.iter().filter(|k| !names.contains(*k)).collect();
    assert!(
        missing.is_empty(),
        "keys not in the suite schema: {missing:?}"
    );
    // The items in parentheses after a key name its sub-keys: each holds one.
    let sub = regex::Regex::new(r"`(\w+)` \(([^)]*)\)").unwrap();
    let mut items = 0;
    for caps in sub.captures_iter(keys) {
        for item in caps[2].split(',') {
            items += 1;
            let named = item
                .split(|c: char| c.is_whitespace() || c == '/' || c == '|')
                .any(|w| names.contains(w.trim()));
            assert!(named, "`{}` ({item}): no key of the schema", &caps[1]);
        }
    }
    assert!(items >= 20, "{items} sub-keys seen");
}

#[test]
fn every_metric_the_benchmark_reference_names_is_declared() {
    let registry = kitt::assemble::builtins();
    // Metrics and outputs, and the params' own names (an SLO's `ttft_ms`).
    let mut declared = BTreeSet::new();
    for b in registry.benchmarks.iter() {
        declared.extend(b.info.metrics.iter().map(|m| m.name.clone()));
        declared.extend(b.info.outputs.iter().cloned());
        property_names(&b.info.params_schema, &mut declared);
    }
    let text = std::fs::read_to_string(root().join("docs/benchmarks.md")).unwrap();
    let metric_like = |s: &str| {
        s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            && ["_ms", "_per_s", "_rate", "_ratio", "_per_request"]
                .iter()
                .any(|end| s.ends_with(end))
    };
    let named: BTreeSet<String> = code_spans(&text)
        .into_iter()
        .filter(|s| metric_like(s))
        .collect();
    assert!(named.len() >= 5, "{named:?}");
    let unknown: Vec<&String> = named.iter().filter(|n| !declared.contains(*n)).collect();
    assert!(
        unknown.is_empty(),
        "docs/benchmarks.md names metrics no benchmark declares: {unknown:?}"
    );
}

#[test]
fn the_readers_see_what_they_check() {
    assert_eq!(
        quoted_commands("kitt results list\\|show [--suite S] [--json]"),
        Some((
            vec![
                vec!["results".to_string()],
                vec!["list".into(), "show".into()]
            ],
            vec!["--suite".to_string(), "--json".into()]
        ))
    );
    let mut cli = kitt::cli::Cli::command();
    cli.build();
    let apply = cli.find_subcommand("apply").unwrap();
    assert!(has_flag(apply, "--only-changed") && has_flag(apply, "-p"));
    assert!(!has_flag(apply, "--no-such-flag"));
    assert_eq!(
        yaml_blocks("a\n```yaml\nx: 1\n```\n"),
        vec!["x: 1\n".to_string()]
    );
}
