//! Composition: reading `include:`d template files, applying `extends:` and `defaults:` to
//! each node (one level deep, the node's own values winning, lists replaced), and recording
//! where every composed value came from.

use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use serde_json::{Map, Value};

use super::diagnostics::{Diagnostic, Location};
use super::load::{Limits, load_yaml};
use super::pointer;
use super::source::FileId;
use super::workspace::{Origins, Workspace};
use super::{schema, schema_check};

/// A node template found in an included file.
struct FoundTemplate {
    file: FileId,
    value: Value,
}

/// Reads a suite or included file into the workspace: a regular file, within the per-file
/// limit and what is left of the suite's budget, valid UTF-8 (else an error at the line and
/// column of the first bad byte). Failures to read are reported at `included_from`.
pub fn read_source(
    workspace: &mut Workspace,
    path: &Path,
    limits: &Limits,
    included_from: Option<Location>,
) -> Result<String, Vec<Diagnostic>> {
    let left = limits
        .max_suite_bytes
        .saturating_sub(workspace.sources.total_bytes());
    let limit = limits.max_bytes.min(left) as u64;
    match crate::fsio::read_bytes(path, limit) {
        Ok(bytes) => match crate::fsio::utf8(bytes) {
            Ok(text) => match text.find('\0') {
                None => Ok(text),
                Some(at) => {
                    // The YAML parser would call a NUL inside quotes "the end of the stream".
                    let line = text[..at].matches('\n').count() + 1;
                    let line_start = text[..at].rfind('\n').map_or(0, |i| i + 1);
                    let col = text[line_start..at].chars().count() + 1;
                    let chars = text[..at].chars().count();
                    let file = workspace.add_file(path, text.replace('\0', "\u{2400}"));
                    Err(vec![
                        Diagnostic::error(
                            "encoding",
                            format!("`{}` holds a NUL character (U+0000)", path.display()),
                        )
                        .at(Location {
                            file,
                            span: crate::suite::source::Span::point(line, col, chars),
                        })
                        .hint("suites are text; remove the NUL byte"),
                    ])
                }
            },
            Err(e) => {
                let (line, col, offset) = e.position().unwrap_or((1, 1, 0));
                // The file is shown with its bad bytes replaced, so the place can be quoted.
                let lossy = crate::fsio::read_bytes(path, limit)
                    .map(|b| String::from_utf8_lossy(&b).into_owned())
                    .unwrap_or_default();
                let file = workspace.add_file(path, lossy);
                let chars = workspace.sources.get(file).text
                    [..offset.min(workspace.sources.get(file).text.len())]
                    .chars()
                    .count();
                Err(vec![
                    Diagnostic::error("encoding", format!("cannot read `{}`: {e}", path.display()))
                        .at(Location {
                            file,
                            span: crate::suite::source::Span::point(line, col, chars),
                        })
                        .hint("suites are UTF-8 text; save the file as UTF-8"),
                ])
            }
        },
        Err(e) => {
            let too_large = matches!(e, crate::fsio::ReadError::TooLarge { .. });
            let mut d = Diagnostic::error("io", format!("cannot read `{}`: {e}", path.display()));
            d = match (&included_from, too_large) {
                (Some(at), _) => d.at(*at).hint(if too_large {
                    format!(
                        "a suite and its includes may hold {} MiB together, {} MiB in one file",
                        limits.max_suite_bytes >> 20,
                        limits.max_bytes >> 20
                    )
                } else {
                    "include paths are relative to the file that includes them".into()
                }),
                (None, true) => d.hint(format!(
                    "a suite file may hold {} MiB; keep large data in dataset files",
                    limits.max_bytes >> 20
                )),
                (None, false) => {
                    d.hint("check the path; suites are YAML files such as suites/demo.yaml")
                }
            };
            Err(vec![d])
        }
    }
}

/// Reads a file into the workspace and parses it, reporting failures at `included_from`.
pub fn read_and_load(
    workspace: &mut Workspace,
    path: &Path,
    limits: &Limits,
    included_from: Option<Location>,
) -> Result<(FileId, Value), Vec<Diagnostic>> {
    let text = read_source(workspace, path, limits, included_from)?;
    load_text(workspace, path, text, limits)
}

/// Adds `text` (read from `path`) to the workspace and parses it.
pub fn load_text(
    workspace: &mut Workspace,
    path: &Path,
    text: String,
    limits: &Limits,
) -> Result<(FileId, Value), Vec<Diagnostic>> {
    let file = workspace.add_file(path, text);
    let loaded = load_yaml(&workspace.sources.get(file).text, limits).map_err(|e| {
        vec![
            Diagnostic::error("yaml", e.message)
                .at(Location { file, span: e.span })
                .maybe_hint(e.hint),
        ]
    })?;
    workspace.set_spans(file, loaded.spans);
    Ok((file, loaded.value))
}

/// Composes the suite in `value` (from `main`): includes, `extends:` and `defaults:`.
pub fn compose(
    workspace: &mut Workspace,
    main: FileId,
    value: &mut Value,
    limits: &Limits,
) -> Result<Origins, Vec<Diagnostic>> {
    let mut diagnostics = Vec::new();
    let mut origins = Origins::new(main);
    let mut templates = IndexMap::new();
    let main_path = workspace.sources.get(main).path.clone();
    let mut reading = Reading {
        root: crate::paths::suite_root(&main_path),
        chain: vec![canonical(&main_path)],
        read: vec![canonical(&main_path)],
    };
    collect_includes(
        workspace,
        main,
        value,
        limits,
        &mut reading,
        &mut templates,
        &mut diagnostics,
    );
    if !diagnostics.is_empty() {
        return Err(diagnostics);
    }
    let defaults = value.get("defaults").cloned().unwrap_or(Value::Null);
    if let Some(nodes) = value.get_mut("nodes").and_then(Value::as_array_mut) {
        for (i, node) in nodes.iter_mut().enumerate() {
            let node_pointer = format!("/nodes/{i}");
            let Some(node) = node.as_object_mut() else {
                continue;
            };
            if let Some(name) = node
                .get("extends")
                .and_then(Value::as_str)
                .map(str::to_string)
            {
                match templates.get(&name) {
                    Some(found) => {
                        let found: &FoundTemplate = found;
                        let source = pointer::push("/templates", &name);
                        merge_under(
                            node,
                            &found.value,
                            &node_pointer,
                            found.file,
                            &source,
                            &mut origins,
                        );
                    }
                    None => {
                        let names: Vec<&str> = templates.keys().map(String::as_str).collect();
                        let hint = match crate::registry::suggest(&name, names.iter().copied()) {
                            Some(s) => format!("did you mean `{s}`?"),
                            None if names.is_empty() => {
                                "no template file is included; add it under `include:`".into()
                            }
                            None => {
                                format!("templates from the included files: {}", names.join(", "))
                            }
                        };
                        diagnostics.push(
                            Diagnostic::error(
                                "unknown-template",
                                format!("no node template named `{name}`"),
                            )
                            .at(origins.locate(
                                workspace,
                                &format!("{node_pointer}/extends"),
                                false,
                            ))
                            .hint(hint),
                        );
                    }
                }
            }
            merge_under(
                node,
                &defaults,
                &node_pointer,
                main,
                "/defaults",
                &mut origins,
            );
        }
    }
    if diagnostics.is_empty() {
        Ok(origins)
    } else {
        Err(diagnostics)
    }
}

/// Fills `node` from `base`: missing keys are copied, mappings merged one level deep.
fn merge_under(
    node: &mut Map<String, Value>,
    base: &Value,
    node_pointer: &str,
    base_file: FileId,
    base_pointer: &str,
    origins: &mut Origins,
) {
    let Some(base) = base.as_object() else { return };
    for (key, base_value) in base {
        let composed = pointer::push(node_pointer, key);
        let source = pointer::push(base_pointer, key);
        match node.get_mut(key) {
            None => {
                node.insert(key.clone(), base_value.clone());
                origins.record(composed, base_file, source);
            }
            Some(Value::Object(own)) => {
                if let Some(inherited) = base_value.as_object() {
                    for (inner, v) in inherited {
                        if !own.contains_key(inner) {
                            own.insert(inner.clone(), v.clone());
                            origins.record(
                                pointer::push(&composed, inner),
                                base_file,
                                pointer::push(&source, inner),
                            );
                        }
                    }
                }
            }
            Some(_) => {}
        }
    }
}

fn canonical(path: &Path) -> PathBuf {
    path.canonicalize()
        .unwrap_or_else(|_| crate::paths::resolve(path))
}

/// Where includes may come from, and which files are being or have been read.
struct Reading {
    /// The suite's repository (or its directory): includes must resolve inside it.
    root: PathBuf,
    /// The files being included, outermost first (for cycles).
    chain: Vec<PathBuf>,
    /// Every file read, by canonical path (one file under two spellings is read once).
    read: Vec<PathBuf>,
}

/// Loads the files `value` includes (recursively), collecting their templates.
fn collect_includes(
    workspace: &mut Workspace,
    file: FileId,
    value: &Value,
    limits: &Limits,
    reading: &mut Reading,
    templates: &mut IndexMap<String, FoundTemplate>,
    diagnostics: &mut Vec<Diagnostic>,
) {
    let Some(includes) = value.get("include").and_then(Value::as_array) else {
        return;
    };
    let base = workspace
        .sources
        .get(file)
        .path
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    for (i, include) in includes.iter().enumerate() {
        let Some(relative) = include.as_str() else {
            continue;
        };
        let at = workspace.locate(file, &format!("/include/{i}"), false);
        let path = base.join(relative);
        let key = canonical(&path);
        if !key.starts_with(&reading.root) {
            // Refused before reading, so no diagnostic can quote a file outside the suite.
            diagnostics.push(
                Diagnostic::error(
                    "include-outside",
                    format!("`{relative}` is outside the suite's repository"),
                )
                .at(at)
                .hint(format!(
                    "includes must be files inside {}, the repository (or, outside git, the directory) that holds the suite",
                    reading.root.display()
                )),
            );
            continue;
        }
        if let Some(start) = reading.chain.iter().position(|p| *p == key) {
            let cycle: Vec<String> = reading.chain[start..]
                .iter()
                .chain(std::iter::once(&key))
                .map(|p| {
                    p.file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default()
                })
                .collect();
            diagnostics.push(
                Diagnostic::error(
                    "include-cycle",
                    format!("include cycle: {}", cycle.join(" → ")),
                )
                .at(at)
                .hint("remove one of these includes"),
            );
            continue;
        }
        if reading.read.contains(&key) {
            continue; // already read, perhaps under another spelling or through a link
        }
        reading.read.push(key.clone());
        let (child, child_value) = match read_and_load(workspace, &path, limits, Some(at)) {
            Ok(loaded) => loaded,
            Err(mut ds) => {
                diagnostics.append(&mut ds);
                continue;
            }
        };
        let schema_errors = schema_check::check(schema::templates(), &child_value, &|p, k| {
            workspace.locate(child, p, k)
        });
        if !schema_errors.is_empty() {
            diagnostics.extend(schema_errors);
            continue;
        }
        reading.chain.push(key);
        collect_includes(
            workspace,
            child,
            &child_value,
            limits,
            reading,
            templates,
            diagnostics,
        );
        reading.chain.pop();
        if let Some(found) = child_value.get("templates").and_then(Value::as_object) {
            for (name, template) in found {
                let here = workspace.locate(child, &pointer::push("/templates", name), true);
                if let Some(first) = templates.get(name) {
                    let there =
                        workspace.locate(first.file, &pointer::push("/templates", name), true);
                    diagnostics.push(
                        Diagnostic::error(
                            "duplicate-template",
                            format!("node template `{name}` is defined twice"),
                        )
                        .at(here)
                        .related("first defined here", there)
                        .hint("rename one of them"),
                    );
                    continue;
                }
                templates.insert(
                    name.clone(),
                    FoundTemplate {
                        file: child,
                        value: template.clone(),
                    },
                );
            }
        }
    }
}
