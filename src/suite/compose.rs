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

/// Reads a file into the workspace and parses it, reporting failures at `included_from`.
pub fn read_and_load(
    workspace: &mut Workspace,
    path: &Path,
    limits: &Limits,
    included_from: Option<Location>,
) -> Result<(FileId, Value), Vec<Diagnostic>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            let mut d = Diagnostic::error("io", format!("cannot read `{}`: {e}", path.display()));
            if let Some(at) = included_from {
                d = d
                    .at(at)
                    .hint("include paths are relative to the file that includes them");
            }
            return Err(vec![d]);
        }
    };
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
    let mut chain = vec![canonical(&main_path)];
    collect_includes(
        workspace,
        main,
        value,
        limits,
        &mut chain,
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
    path.canonicalize().unwrap_or_else(|_| path.to_path_buf())
}

/// Loads the files `value` includes (recursively), collecting their templates.
fn collect_includes(
    workspace: &mut Workspace,
    file: FileId,
    value: &Value,
    limits: &Limits,
    chain: &mut Vec<PathBuf>,
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
        if let Some(start) = chain.iter().position(|p| *p == key) {
            let cycle: Vec<String> = chain[start..]
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
        if workspace.sources.find(&path).is_some() {
            continue; // already read through another include
        }
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
        chain.push(key);
        collect_includes(
            workspace,
            child,
            &child_value,
            limits,
            chain,
            templates,
            diagnostics,
        );
        chain.pop();
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
