//! The results store: one SQLite file (WAL, so readers work while a run writes) holding
//! runs, their nodes, metrics, asserts and per-request samples, written as a run goes.

mod migrations;
pub mod read;
pub mod records;
pub mod time;
pub mod write;

use std::path::{Path, PathBuf};

use anyhow::Context;
use rusqlite::Connection;

pub use records::{AssertRecord, MetricRecord, NodeRecord, RunRecord};

/// An open store.
pub struct Store {
    conn: Connection,
    path: PathBuf,
}

/// The store's path: `--store`, else `KITT_STORE`, else `<data dir>/kitt.db`.
pub fn default_path(flag: Option<&Path>) -> PathBuf {
    if let Some(p) = flag {
        return p.to_path_buf();
    }
    if let Some(p) = std::env::var_os("KITT_STORE") {
        return PathBuf::from(p);
    }
    crate::paths::data_dir().join("kitt.db")
}

impl Store {
    /// Opens (creating when missing) the store at `path` and brings its schema up to date.
    pub fn open(path: &Path) -> anyhow::Result<Store> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        let conn = Connection::open(path)
            .with_context(|| format!("cannot open the results store {}", path.display()))?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .context("cannot switch the store to WAL mode")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        migrations::migrate(&conn)
            .with_context(|| format!("cannot migrate the results store {}", path.display()))?;
        Ok(Store {
            conn,
            path: path.to_path_buf(),
        })
    }

    /// Opens an existing store for reading; a missing file is an error that says so.
    pub fn open_existing(path: &Path) -> anyhow::Result<Store> {
        if !path.exists() {
            anyhow::bail!(
                "no results store at {} (run `kitt apply` first, or pass --store)",
                path.display()
            );
        }
        Store::open(path)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}
