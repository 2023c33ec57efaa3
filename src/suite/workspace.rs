//! The files read for one suite with their span tables, and the origin map that says which
//! file and pointer each part of the composed suite came from.

use std::collections::HashMap;

use super::diagnostics::Location;
use super::load::SpanTable;
use super::source::{FileId, Sources};

/// Every file read for one suite, with where each value sits in it.
#[derive(Debug, Default)]
pub struct Workspace {
    pub sources: Sources,
    tables: HashMap<FileId, SpanTable>,
}

impl Workspace {
    /// Adds a file's text; its span table follows once it has been parsed.
    pub fn add_file(&mut self, path: impl Into<std::path::PathBuf>, text: String) -> FileId {
        self.sources.add(path, text)
    }

    /// Records the span table of a parsed file.
    pub fn set_spans(&mut self, file: FileId, spans: SpanTable) {
        self.tables.insert(file, spans);
    }

    /// The location of `pointer` in `file` (its key when `prefer_key`).
    pub fn locate(&self, file: FileId, pointer: &str, prefer_key: bool) -> Location {
        let span = self
            .tables
            .get(&file)
            .map(|t| t.locate(pointer, prefer_key))
            .unwrap_or_default();
        Location { file, span }
    }
}

/// Maps pointers of the composed suite back to the file and pointer they came from.
#[derive(Debug, Default, Clone)]
pub struct Origins {
    main: FileId,
    moved: HashMap<String, (FileId, String)>,
}

impl Origins {
    /// Origins of a suite whose values all come from `main` so far.
    pub fn new(main: FileId) -> Self {
        Origins {
            main,
            moved: HashMap::new(),
        }
    }

    /// Records that the composed value at `composed` came from `source` in `file`.
    pub fn record(&mut self, composed: String, file: FileId, source: String) {
        self.moved.insert(composed, (file, source));
    }

    /// The file and source pointer of a composed pointer.
    pub fn resolve(&self, pointer: &str) -> (FileId, String) {
        let mut prefix = pointer;
        loop {
            if let Some((file, source)) = self.moved.get(prefix) {
                return (*file, format!("{source}{}", &pointer[prefix.len()..]));
            }
            match prefix.rfind('/') {
                Some(cut) => prefix = &prefix[..cut],
                None => return (self.main, pointer.to_string()),
            }
        }
    }

    /// The location of a composed pointer.
    pub fn locate(&self, workspace: &Workspace, pointer: &str, prefer_key: bool) -> Location {
        let (file, source) = self.resolve(pointer);
        workspace.locate(file, &source, prefer_key)
    }
}
