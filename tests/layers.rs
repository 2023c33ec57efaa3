//! The layering of `src/`: each top-level module imports only the layers below it (the table
//! here, which `docs/architecture.md` shows), and no file imports another that imports it back
//! through any chain. Read from the `use crate::…`, `use super::…` and inline `crate::…` paths
//! of every file, test modules left out.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The layers, lowest first. A module may import modules of lower layers only.
const LAYERS: &[&[&str]] = &[
    &["exit", "fingerprint", "fsio", "paths", "redact", "seed"],
    &["output"],
    &["process"],
    &["registry"],
    &["suite"],
    &["store"],
    &["plugin"],
    &["engine"],
    &["telemetry"],
    &["bench"],
    &["compare", "foreign"],
    &["report"],
    &["assemble"],
    &["runner"],
    &["cli"],
];

/// Macros exported at the crate root, by the module that defines them.
const MACROS: &[(&str, &str)] = &[
    ("errln", "output"),
    ("outln", "output"),
    ("noteln", "output"),
];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|l| l.contains(&module))
}

/// A module path (`["bench", "contract"]`) and the file that holds it.
struct Module {
    path: Vec<String>,
    file: PathBuf,
    /// Whether it is a directory module (`mod.rs` or `lib.rs`), whose `pub use` lines
    /// re-export its children's items.
    is_dir: bool,
}

fn modules(src: &Path) -> Vec<Module> {
    fn walk(dir: &Path, prefix: &[String], out: &mut Vec<Module>) {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        entries.sort();
        for p in entries {
            let name = p.file_stem().unwrap().to_string_lossy().to_string();
            if p.is_dir() {
                let mut path = prefix.to_vec();
                path.push(name);
                out.push(Module {
                    path: path.clone(),
                    file: p.join("mod.rs"),
                    is_dir: true,
                });
                walk(&p, &path, out);
            } else if p.extension().is_some_and(|e| e == "rs") && name != "mod" {
                let root = prefix.is_empty() && (name == "lib" || name == "main");
                let is_lib = prefix.is_empty() && name == "lib";
                let mut path = prefix.to_vec();
                if !root {
                    path.push(name);
                }
                out.push(Module {
                    path,
                    file: p.clone(),
                    is_dir: is_lib,
                });
            }
        }
    }
    let mut out = Vec::new();
    walk(src, &[], &mut out);
    out.retain(|m| m.file.exists() && !m.file.ends_with("main.rs"));
    out
}

/// The text of a file without its test module(s) and comments.
fn code_of(file: &Path) -> String {
    let text = std::fs::read_to_string(file).unwrap();
    let text = match text.find("#[cfg(test)]") {
        Some(i) => &text[..i],
        None => &text[..],
    };
    text.lines()
        .map(|l| match l.find("//") {
            Some(i) if !l[..i].contains('"') => &l[..i],
            _ => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Expands a use tree (`a::{b, c::{d, e}}`) into full paths.
fn expand(tree: &str) -> Vec<String> {
    let tree = tree.trim();
    let Some(open) = tree.find('{') else {
        let t = tree.split(" as ").next().unwrap().trim();
        return if t.is_empty() {
            vec![]
        } else {
            vec![t.to_string()]
        };
    };
    let prefix = &tree[..open];
    let inner = &tree[open + 1..tree.rfind('}').unwrap()];
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0, 0);
    for (i, c) in inner.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&inner[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&inner[start..]);
    parts
        .into_iter()
        .flat_map(expand)
        .map(|p| {
            if p == "self" {
                prefix.trim_end_matches("::").to_string()
            } else {
                format!("{prefix}{p}")
            }
        })
        .collect()
}

/// Every `use` statement's paths, split into re-exports (`pub use`) and imports.
fn uses(code: &str) -> (Vec<String>, Vec<String>) {
    let (mut reexports, mut imports) = (Vec::new(), Vec::new());
    let lines: Vec<&str> = code.lines().collect();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i].trim_start();
        let public = line.starts_with("pub ") || line.starts_with("pub(");
        let body = line
            .strip_prefix("use ")
            .or_else(|| {
                public
                    .then(|| line.split_once(") use ").map(|x| x.1))
                    .flatten()
            })
            .or_else(|| line.strip_prefix("pub use "));
        let Some(first) = body else {
            i += 1;
            continue;
        };
        let mut statement = first.to_string();
        while !statement.contains(';') && i + 1 < lines.len() {
            i += 1;
            statement.push_str(lines[i].trim());
        }
        let statement = statement.split(';').next().unwrap_or("");
        let paths = expand(statement);
        if public {
            reexports.extend(paths);
        } else {
            imports.extend(paths);
        }
        i += 1;
    }
    (reexports, imports)
}

/// Inline paths such as `crate::engine::launch::Driver::of(...)`.
fn inline_paths(code: &str) -> Vec<String> {
    let re = regex::Regex::new(r"(?:\bcrate|\bsuper)(?:::[A-Za-z_][A-Za-z0-9_]*)+!?").unwrap();
    re.find_iter(code).map(|m| m.as_str().to_string()).collect()
}

struct Tree {
    modules: Vec<Module>,
    by_path: BTreeMap<Vec<String>, usize>,
    /// For each directory module: item name → the full path it re-exports.
    reexports: BTreeMap<usize, BTreeMap<String, Vec<String>>>,
}

impl Tree {
    fn new(src: &Path) -> Tree {
        let modules = modules(src);
        let by_path = modules
            .iter()
            .enumerate()
            .map(|(i, m)| (m.path.clone(), i))
            .collect();
        let mut tree = Tree {
            modules,
            by_path,
            reexports: BTreeMap::new(),
        };
        for i in 0..tree.modules.len() {
            if !tree.modules[i].is_dir {
                continue;
            }
            let (reexports, _) = uses(&code_of(&tree.modules[i].file));
            let mut map = BTreeMap::new();
            for r in reexports {
                if let Some(full) = tree.absolute(i, &r) {
                    map.insert(full.last().unwrap().clone(), full);
                }
            }
            tree.reexports.insert(i, map);
        }
        tree
    }

    /// A path as seen from module `from`, made absolute (without `crate`); `None` for paths
    /// into other crates.
    fn absolute(&self, from: usize, path: &str) -> Option<Vec<String>> {
        let segs: Vec<String> = path
            .trim_end_matches('!')
            .split("::")
            .map(str::to_string)
            .collect();
        let mut base: Vec<String> = match segs[0].as_str() {
            "crate" => vec![],
            "super" | "self" => {
                let mut full = self.modules[from].path.clone();
                let mut k = 0;
                while k < segs.len() && (segs[k] == "super" || segs[k] == "self") {
                    if segs[k] == "super" {
                        full.pop();
                    }
                    k += 1;
                }
                full.extend(segs[k..].iter().cloned());
                return Some(full);
            }
            first => {
                // A child module named relative to a directory module (`use contract::X`).
                if self.modules[from].is_dir {
                    let mut p = self.modules[from].path.clone();
                    p.push(first.to_string());
                    if self.by_path.contains_key(&p) {
                        let mut full = self.modules[from].path.clone();
                        full.extend(segs.iter().cloned());
                        return Some(full);
                    }
                }
                return None;
            }
        };
        base.extend(segs[1..].iter().cloned());
        Some(base)
    }

    /// The module a full path lands in, following re-exports.
    fn target(&self, full: &[String], depth: u32) -> Option<usize> {
        let mut module = vec![];
        let mut at = *self.by_path.get(&module)?;
        let mut rest = full;
        while let Some((seg, tail)) = rest.split_first() {
            module.push(seg.clone());
            match self.by_path.get(&module) {
                Some(&i) => {
                    at = i;
                    rest = tail;
                }
                None => {
                    if let Some(full) = self.reexports.get(&at).and_then(|m| m.get(seg))
                        && depth < 8
                        && full.as_slice() != full_slice(&self.modules[at].path, seg).as_slice()
                    {
                        return self.target(full, depth + 1);
                    }
                    if let Some(&(_, owner)) = MACROS.iter().find(|(m, _)| m == seg)
                        && module.len() == 1
                    {
                        return self.by_path.get(&vec![owner.to_string()]).copied();
                    }
                    break;
                }
            }
        }
        Some(at)
    }

    /// Files each file imports.
    fn edges(&self) -> BTreeMap<usize, BTreeSet<usize>> {
        let mut edges: BTreeMap<usize, BTreeSet<usize>> = BTreeMap::new();
        for (i, m) in self.modules.iter().enumerate() {
            let code = code_of(&m.file);
            let (_, imports) = uses(&code);
            let targets = edges.entry(i).or_default();
            for path in imports.iter().chain(inline_paths(&code).iter()) {
                let Some(full) = self.absolute(i, path) else {
                    continue;
                };
                if let Some(t) = self.target(&full, 0)
                    && t != i
                {
                    targets.insert(t);
                }
            }
        }
        edges
    }
}

fn full_slice(module: &[String], seg: &str) -> Vec<String> {
    let mut v = module.to_vec();
    v.push(seg.to_string());
    v
}

fn tree() -> Tree {
    Tree::new(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"))
}

fn name(m: &Module) -> String {
    m.file
        .strip_prefix(env!("CARGO_MANIFEST_DIR"))
        .unwrap_or(&m.file)
        .display()
        .to_string()
}

#[test]
fn every_top_level_module_has_a_layer() {
    let tree = tree();
    let missing: BTreeSet<&str> = tree
        .modules
        .iter()
        .filter_map(|m| m.path.first())
        .map(String::as_str)
        .filter(|top| layer_of(top).is_none())
        .collect();
    assert!(
        missing.is_empty(),
        "modules without a layer in tests/layers.rs and docs/architecture.md: {missing:?}"
    );
}

#[test]
fn no_module_imports_a_layer_above_its_own() {
    let tree = tree();
    let mut upward = Vec::new();
    for (from, targets) in tree.edges() {
        let Some(top) = tree.modules[from].path.first() else {
            continue;
        };
        let own = layer_of(top).unwrap_or(usize::MAX);
        for t in targets {
            let Some(other) = tree.modules[t].path.first() else {
                continue;
            };
            if other != top && layer_of(other).unwrap_or(0) >= own {
                upward.push(format!(
                    "{} imports {} ({other} is not below {top})",
                    name(&tree.modules[from]),
                    name(&tree.modules[t])
                ));
            }
        }
    }
    assert!(
        upward.is_empty(),
        "imports that go up:\n{}",
        upward.join("\n")
    );
}

#[test]
fn no_files_import_each_other_through_any_chain() {
    let tree = tree();
    let edges = tree.edges();
    // Depth-first search for a back edge; report the cycle it closes.
    let mut state = vec![0u8; tree.modules.len()];
    let mut stack: Vec<usize> = Vec::new();
    let mut cycles = Vec::new();
    fn visit(
        n: usize,
        edges: &BTreeMap<usize, BTreeSet<usize>>,
        state: &mut [u8],
        stack: &mut Vec<usize>,
        cycles: &mut Vec<Vec<usize>>,
    ) {
        state[n] = 1;
        stack.push(n);
        for &t in edges.get(&n).into_iter().flatten() {
            if state[t] == 1 {
                let at = stack.iter().position(|&s| s == t).unwrap();
                let mut cycle = stack[at..].to_vec();
                cycle.push(t);
                cycles.push(cycle);
            } else if state[t] == 0 {
                visit(t, edges, state, stack, cycles);
            }
        }
        stack.pop();
        state[n] = 2;
    }
    for n in 0..tree.modules.len() {
        if state[n] == 0 {
            visit(n, &edges, &mut state, &mut stack, &mut cycles);
        }
    }
    let shown: Vec<String> = cycles
        .iter()
        .map(|c| {
            c.iter()
                .map(|&i| name(&tree.modules[i]))
                .collect::<Vec<_>>()
                .join(" → ")
        })
        .collect();
    assert!(shown.is_empty(), "import cycles:\n{}", shown.join("\n"));
}

#[test]
fn the_reader_sees_imports_of_every_form() {
    // The test itself must be able to fail: each form of import is seen.
    assert_eq!(
        expand("crate::engine::{client::ClientError, generation::{self, Endpoint}}"),
        [
            "crate::engine::client::ClientError",
            "crate::engine::generation",
            "crate::engine::generation::Endpoint"
        ]
    );
    let (re, im) = uses("pub use contract::{A, B};\nuse super::x::Y;\n    use crate::z as w;");
    assert_eq!(re, ["contract::A", "contract::B"]);
    assert_eq!(im, ["super::x::Y", "crate::z"]);
    assert_eq!(
        inline_paths("let d = crate::engine::launch::Driver::of(i); crate::errln!(\"x\");"),
        ["crate::engine::launch::Driver::of", "crate::errln!"]
    );
    let tree = tree();
    let edges = tree.edges();
    let find = |p: &str| {
        tree.modules
            .iter()
            .position(|m| m.file.ends_with(p))
            .unwrap_or_else(|| panic!("{p}"))
    };
    let contract = find("src/bench/contract.rs");
    let plugin = find("src/bench/plugin.rs");
    // bench/plugin.rs reads `super::contract::…`; the runner reaches bench's items through
    // the re-exports of bench/mod.rs, which resolve to contract.rs.
    assert!(edges[&plugin].contains(&contract));
    let dispatch = find("src/runner/dispatch.rs");
    let cli = find("src/cli/mod.rs");
    assert!(
        edges[&dispatch].contains(&contract),
        "re-exports are followed"
    );
    assert!(edges[&cli].contains(&find("src/output.rs")), "macros count");
}
