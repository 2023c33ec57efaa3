//! The results store: one SQLite file (WAL, so readers work while a run writes) holding
//! runs, their nodes, metrics, asserts and per-request samples, written as a run goes.

pub mod import;
mod migrations;
pub mod read;
pub mod records;
pub mod time;
pub mod write;

use std::path::{Path, PathBuf};

/// The schema version this kitt writes (`PRAGMA user_version`; docs/open-data.md).
pub const SCHEMA_VERSION: i64 = migrations::VERSION;

use anyhow::Context;
use rusqlite::{Connection, OpenFlags};

pub use records::{
    AssertRecord, MetricRecord, NodeRecord, NodeStatus, RunRecord, RunStatus, SeriesRecord,
};

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

/// A path as the file part of an SQLite URI (`%`, `?` and `#` escaped).
fn uri_path(path: &Path) -> String {
    path.display()
        .to_string()
        .replace('%', "%25")
        .replace('?', "%3f")
        .replace('#', "%23")
}

/// Switches to WAL mode. SQLite answers a mode change that meets another connection's lock
/// with "locked" at once, without its busy handler, so kitts opening one new store together
/// retry here for up to 10 s.
fn wal_mode(conn: &Connection) -> rusqlite::Result<()> {
    let until = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        match conn.pragma_update(None, "journal_mode", "WAL") {
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::DatabaseBusy
                    && std::time::Instant::now() < until =>
            {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            other => return other,
        }
    }
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
        // Fails fast, with the path, on a file that is not a store.
        migrations::version(&conn)
            .with_context(|| format!("cannot read the results store {}", path.display()))?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        wal_mode(&conn).context("cannot switch the store to WAL mode")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        migrations::migrate(&conn)
            .with_context(|| format!("cannot migrate the results store {}", path.display()))?;
        Ok(Store {
            conn,
            path: path.to_path_buf(),
        })
    }

    /// A store in memory, gone when dropped (`kitt test run` runs through the same runner
    /// without keeping anything).
    pub fn in_memory() -> anyhow::Result<Store> {
        let conn = Connection::open_in_memory().context("cannot open a store in memory")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        migrations::migrate(&conn).context("cannot set up a store in memory")?;
        Ok(Store {
            conn,
            path: PathBuf::from(":memory:"),
        })
    }

    /// Opens an existing store for reading only: it works on a read-only file or mount, and
    /// a missing file is an error that says so.
    pub fn open_existing(path: &Path) -> anyhow::Result<Store> {
        if !path.exists() {
            anyhow::bail!(
                "no results store at {} (run `kitt apply` first, or pass --store)",
                path.display()
            );
        }
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags)
            .and_then(|c| {
                // A WAL store on a read-only mount cannot create its shared-memory file; it is
                // then read as immutable (nothing else can be writing it there).
                c.pragma_query_value(None, "user_version", |r| r.get::<_, i64>(0))
                    .map(|_| c)
            })
            .or_else(|_| {
                let uri = format!("file:{}?immutable=1", uri_path(path));
                Connection::open_with_flags(uri, flags | OpenFlags::SQLITE_OPEN_URI)
            })
            .with_context(|| format!("cannot open the results store {}", path.display()))?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        let version = migrations::version(&conn)
            .with_context(|| format!("cannot read the results store {}", path.display()))?;
        migrations::check_not_newer(version)?;
        if version < migrations::VERSION {
            // An older store: bring it up to date when it can be written, else read it as is.
            drop(conn);
            if let Ok(store) = Store::open(path) {
                return Ok(store);
            }
            anyhow::bail!(
                "the results store {} has schema version {version} and cannot be upgraded here (read-only); open it once with write access",
                path.display()
            );
        }
        Ok(Store {
            conn,
            path: path.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}
