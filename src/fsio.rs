//! Reading files kitt does not control (suites, includes, manifests, schemas, templates,
//! datasets): regular files only, opened without blocking (a FIFO cannot hang kitt), the
//! size checked before reading and enforced while reading, text checked as UTF-8 with the
//! line and column of the first bad byte.

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

/// Why an untrusted file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("it is {0}, not a regular file")]
    NotRegular(&'static str),
    #[error("it is {size} bytes, more than the limit of {limit} bytes")]
    TooLarge { size: u64, limit: u64 },
    #[error("it is not valid UTF-8 at line {line}, column {col} (byte {offset})")]
    InvalidUtf8 {
        line: usize,
        col: usize,
        offset: usize,
    },
}

impl ReadError {
    /// Where in the file the error is, for errors that have a position: (line, column, byte).
    pub fn position(&self) -> Option<(usize, usize, usize)> {
        match self {
            ReadError::InvalidUtf8 { line, col, offset } => Some((*line, *col, *offset)),
            _ => None,
        }
    }
}

fn kind_name(file_type: std::fs::FileType) -> &'static str {
    if file_type.is_dir() {
        "a directory"
    } else if file_type.is_fifo() {
        "a FIFO (named pipe)"
    } else if file_type.is_char_device() {
        "a character device"
    } else if file_type.is_block_device() {
        "a block device"
    } else if file_type.is_socket() {
        "a socket"
    } else {
        "not a regular file"
    }
}

/// The bytes of the regular file at `path`, at most `limit` of them.
pub fn read_bytes(path: &Path, limit: u64) -> Result<Vec<u8>, ReadError> {
    // O_NONBLOCK: opening a FIFO with no writer returns at once instead of waiting forever.
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::fcntl::OFlag::O_NONBLOCK.bits())
        .open(path)?;
    let meta = file.metadata()?;
    if !meta.file_type().is_file() {
        return Err(ReadError::NotRegular(kind_name(meta.file_type())));
    }
    if meta.len() > limit {
        return Err(ReadError::TooLarge {
            size: meta.len(),
            limit,
        });
    }
    read_limited(file, limit)
}

/// Reads an open file, failing when it holds more than `limit` bytes (it may grow).
fn read_limited(file: File, limit: u64) -> Result<Vec<u8>, ReadError> {
    let mut bytes = Vec::new();
    file.take(limit + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(ReadError::TooLarge {
            size: bytes.len() as u64,
            limit,
        });
    }
    Ok(bytes)
}

/// The text of the regular file at `path`, at most `limit` bytes, valid UTF-8.
pub fn read_text(path: &Path, limit: u64) -> Result<String, ReadError> {
    utf8(read_bytes(path, limit)?)
}

/// Bytes as text, or the line and column of the first invalid byte.
pub fn utf8(bytes: Vec<u8>) -> Result<String, ReadError> {
    String::from_utf8(bytes).map_err(|e| {
        let offset = e.utf8_error().valid_up_to();
        let valid = &e.as_bytes()[..offset];
        let line = valid.iter().filter(|&&b| b == b'\n').count() + 1;
        let line_start = valid.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        // Columns count characters, as the YAML positions do.
        let col = std::str::from_utf8(&valid[line_start..]).map_or(0, |s| s.chars().count()) + 1;
        ReadError::InvalidUtf8 { line, col, offset }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_regular_files_within_the_limit_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a.yaml");
        std::fs::write(&file, "é\nab\u{7f}").unwrap();
        assert_eq!(read_text(&file, 100).unwrap(), "é\nab\u{7f}");
        assert!(matches!(
            read_text(&file, 3),
            Err(ReadError::TooLarge { size: 6, limit: 3 })
        ));
        assert!(matches!(
            read_text(dir.path(), 100),
            Err(ReadError::NotRegular("a directory"))
        ));
        assert!(matches!(
            read_text(Path::new("/dev/zero"), 100),
            Err(ReadError::NotRegular("a character device"))
        ));
        let fifo = dir.path().join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
        assert!(matches!(
            read_text(&fifo, 100),
            Err(ReadError::NotRegular("a FIFO (named pipe)"))
        ));
    }

    #[test]
    fn invalid_utf8_is_placed() {
        let err = utf8(b"ok: 1\nname: \xc3\xa9x\xff".to_vec()).unwrap_err();
        assert_eq!(err.position(), Some((2, 9, 15)));
    }
}
