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
];

/// The schema version this kitt writes.
pub const VERSION: i64 = STEPS.len() as i64;

/// Applies the missing steps, each in its own transaction.
pub fn migrate(conn: &Connection) -> anyhow::Result<()> {
    let current: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if current > VERSION {
        anyhow::bail!(
            "the store has schema version {current}, newer than this kitt's {VERSION}; use a newer kitt"
        );
    }
    for (i, step) in STEPS.iter().enumerate().skip(current as usize) {
        conn.execute_batch(&format!(
            "BEGIN; {step} PRAGMA user_version = {}; COMMIT;",
            i + 1
        ))?;
    }
    Ok(())
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
