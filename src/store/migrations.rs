//! Versioned schema migrations, applied in order; `PRAGMA user_version` records the version.

use rusqlite::Connection;

/// Each step brings the schema from version `i` to `i + 1`.
const STEPS: &[&str] = &[
    // 1: runs, nodes, metrics, asserts, samples.
    "
    CREATE TABLE runs (
        id TEXT PRIMARY KEY,
        suite TEXT NOT NULL,
        suite_version TEXT NOT NULL,
        suite_path TEXT NOT NULL,
        digest TEXT NOT NULL,
        git_commit TEXT,
        git_dirty INTEGER,
        started_at REAL NOT NULL,
        ended_at REAL,
        status TEXT NOT NULL,
        kitt_version TEXT NOT NULL,
        fingerprint TEXT NOT NULL,
        fingerprint_summary TEXT NOT NULL,
        params TEXT NOT NULL
    );
    CREATE INDEX runs_by_suite ON runs (suite, started_at);
    CREATE TABLE nodes (
        run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
        leg TEXT NOT NULL,
        node TEXT NOT NULL,
        benchmark TEXT NOT NULL,
        benchmark_version TEXT NOT NULL,
        engine TEXT NOT NULL,
        engine_uses TEXT NOT NULL,
        image TEXT,
        image_digest TEXT,
        model TEXT,
        params TEXT NOT NULL,
        spec_hash TEXT NOT NULL,
        status TEXT NOT NULL,
        attempts INTEGER NOT NULL,
        errors TEXT NOT NULL,
        outputs TEXT NOT NULL,
        details TEXT NOT NULL,
        started_at REAL,
        ended_at REAL,
        seconds REAL,
        PRIMARY KEY (run_id, leg)
    );
    CREATE TABLE metrics (
        run_id TEXT NOT NULL,
        leg TEXT NOT NULL,
        name TEXT NOT NULL,
        value REAL NOT NULL,
        unit TEXT NOT NULL,
        direction TEXT NOT NULL,
        PRIMARY KEY (run_id, leg, name),
        FOREIGN KEY (run_id, leg) REFERENCES nodes (run_id, leg) ON DELETE CASCADE
    );
    CREATE TABLE asserts (
        run_id TEXT NOT NULL,
        leg TEXT NOT NULL,
        metric TEXT NOT NULL,
        bound TEXT NOT NULL,
        measured REAL,
        baseline REAL,
        passed INTEGER NOT NULL,
        message TEXT NOT NULL,
        FOREIGN KEY (run_id, leg) REFERENCES nodes (run_id, leg) ON DELETE CASCADE
    );
    CREATE TABLE samples (
        run_id TEXT NOT NULL,
        leg TEXT NOT NULL,
        format INTEGER NOT NULL,
        count INTEGER NOT NULL,
        data BLOB NOT NULL,
        PRIMARY KEY (run_id, leg),
        FOREIGN KEY (run_id, leg) REFERENCES nodes (run_id, leg) ON DELETE CASCADE
    );
    ",
    // 2: who runs a run (host, pid and its start time, a heartbeat), so a run whose
    // process died reads as abandoned and a live one cannot be resumed twice; the report
    // files kitt wrote, so it never overwrites a file it did not write.
    "
    ALTER TABLE runs ADD COLUMN owner_host TEXT;
    ALTER TABLE runs ADD COLUMN owner_pid INTEGER;
    ALTER TABLE runs ADD COLUMN owner_start INTEGER;
    ALTER TABLE runs ADD COLUMN heartbeat_at REAL;
    CREATE TABLE written_files (
        path TEXT PRIMARY KEY,
        sha256 TEXT NOT NULL,
        written_at REAL NOT NULL
    );
    ",
    // 3: telemetry time series of a leg (server gauges, the client's in-flight count), one
    // row per point, keyed by a small series id so a long run's points stay compact.
    "
    CREATE TABLE telemetry_series (
        id INTEGER PRIMARY KEY,
        run_id TEXT NOT NULL,
        leg TEXT NOT NULL,
        name TEXT NOT NULL,
        unit TEXT NOT NULL,
        UNIQUE (run_id, leg, name),
        FOREIGN KEY (run_id, leg) REFERENCES nodes (run_id, leg) ON DELETE CASCADE
    );
    CREATE TABLE telemetry_points (
        series INTEGER NOT NULL REFERENCES telemetry_series (id) ON DELETE CASCADE,
        t REAL NOT NULL,
        value REAL NOT NULL,
        PRIMARY KEY (series, t)
    ) WITHOUT ROWID;
    ",
];

/// The schema version this kitt writes.
pub const VERSION: i64 = STEPS.len() as i64;

/// The schema version of an open store.
pub fn version(conn: &Connection) -> anyhow::Result<i64> {
    Ok(conn.pragma_query_value(None, "user_version", |r| r.get(0))?)
}

/// Refuses a store written by a newer kitt.
pub fn check_not_newer(current: i64) -> anyhow::Result<()> {
    if current > VERSION {
        anyhow::bail!(
            "the store has schema version {current}, newer than this kitt's {VERSION}; use a newer kitt"
        );
    }
    Ok(())
}

/// Applies the missing steps. Each runs in an immediate transaction that reads the version
/// again once it holds the write lock, so kitts opening a new store at once never apply a
/// step twice.
pub fn migrate(conn: &Connection) -> anyhow::Result<()> {
    check_not_newer(version(conn)?)?;
    if version(conn)? == VERSION {
        return Ok(());
    }
    loop {
        conn.execute_batch("BEGIN IMMEDIATE")?;
        let step = (|| {
            let current = version(conn)?;
            check_not_newer(current)?;
            let Some(step) = STEPS.get(current as usize) else {
                return Ok(false);
            };
            conn.execute_batch(&format!("{step} PRAGMA user_version = {};", current + 1))?;
            Ok::<bool, anyhow::Error>(true)
        })();
        match step {
            Ok(more) => {
                conn.execute_batch("COMMIT")?;
                if !more {
                    return Ok(());
                }
            }
            Err(e) => {
                let _ = conn.execute_batch("ROLLBACK");
                return Err(e);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrating_twice_is_a_no_op_and_newer_stores_are_refused() {
        let conn = Connection::open_in_memory().unwrap();
        migrate(&conn).unwrap();
        migrate(&conn).unwrap();
        let v: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(v, VERSION);
        conn.pragma_update(None, "user_version", VERSION + 1)
            .unwrap();
        assert!(migrate(&conn).unwrap_err().to_string().contains("newer"));
    }
}
