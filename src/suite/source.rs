//! Source files and positions: what was read from disk, and where a value sits in it.

use std::path::{Path, PathBuf};

/// A position range inside one source file (1-based line and column, columns in characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Span {
    pub line: usize,
    pub col: usize,
    pub end_line: usize,
    pub end_col: usize,
    /// Character offsets of the range, used to draw carets.
    pub start_char: usize,
    pub end_char: usize,
}

impl Span {
    /// An empty span at one place.
    pub fn point(line: usize, col: usize, char_index: usize) -> Span {
        Span {
            line,
            col,
            end_line: line,
            end_col: col,
            start_char: char_index,
            end_char: char_index,
        }
    }
}

/// Index of a file inside a [`Sources`] set.
pub type FileId = usize;

/// One file read for a suite: its path as the user named it and its text.
#[derive(Debug, Clone)]
pub struct SourceFile {
    pub path: PathBuf,
    pub text: String,
}

impl SourceFile {
    /// The text of the 1-based line `line`, without its line break.
    pub fn line_text(&self, line: usize) -> &str {
        self.text
            .split('\n')
            .nth(line.saturating_sub(1))
            .map(|l| l.strip_suffix('\r').unwrap_or(l))
            .unwrap_or("")
    }
}

/// Every file read while validating one suite, so diagnostics can quote any of them.
#[derive(Debug, Default, Clone)]
pub struct Sources {
    files: Vec<SourceFile>,
}

impl Sources {
    /// Adds a file and returns its id.
    pub fn add(&mut self, path: impl Into<PathBuf>, text: String) -> FileId {
        self.files.push(SourceFile {
            path: path.into(),
            text,
        });
        self.files.len() - 1
    }

    /// The file with this id.
    pub fn get(&self, id: FileId) -> &SourceFile {
        &self.files[id]
    }

    /// Bytes of text held, over every file.
    pub fn total_bytes(&self) -> usize {
        self.files.iter().map(|f| f.text.len()).sum()
    }

    /// The file with this id, if there is one.
    pub fn try_get(&self, id: FileId) -> Option<&SourceFile> {
        self.files.get(id)
    }

    /// Finds a file already read, by path.
    pub fn find(&self, path: &Path) -> Option<FileId> {
        self.files.iter().position(|f| f.path == path)
    }
}
