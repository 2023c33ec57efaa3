//! Copying the runs of another kitt store into this one (the results a Slurm job left in its
//! shared results directory, a colleague's store): every run this store lacks, with its
//! nodes, metrics, asserts, samples and telemetry series, in one transaction.

use std::path::Path;

use anyhow::Context;

use super::{Store, migrations};

/// What an import did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Imported {
    /// Runs copied in, by id.
    pub runs: Vec<String>,
    /// Runs the store already held, left as they were.
    pub already_present: Vec<String>,
}

impl Store {
    /// Copies every run of the store at `file` that this store lacks. `file` must be a kitt
    /// store of this kitt's schema version (an older one is upgraded first when it can be
    /// written); it is read, never changed otherwise.
    pub fn import_runs(&mut self, file: &Path) -> anyhow::Result<Imported> {
        let source = Store::open_existing(file)?;
        let version = migrations::version(&source.conn)?;
        if version != migrations::VERSION {
            anyhow::bail!(
                "{} has store schema version {version}, this kitt writes {}: import it with the kitt that wrote it",
                file.display(),
                migrations::VERSION
            );
        }
        let ids: Vec<String> = {
            let mut q = source
                .conn
                .prepare("SELECT id FROM runs ORDER BY started_at")?;
            q.query_map([], |r| r.get(0))?.collect::<Result<_, _>>()?
        };
        drop(source);
        let mut imported = Imported::default();
        let present = |id: &str| -> anyhow::Result<bool> {
            Ok(self
                .conn
                .query_row("SELECT count(*) FROM runs WHERE id = ?1", [id], |r| {
                    r.get::<_, i64>(0)
                })?
                > 0)
        };
        for id in ids {
            if present(&id)? {
                imported.already_present.push(id);
            } else {
                imported.runs.push(id);
            }
        }
        if imported.runs.is_empty() {
            return Ok(imported);
        }
        let uri = format!("file:{}?mode=ro", super::uri_path(file));
        self.conn
            .execute("ATTACH DATABASE ?1 AS src", [&uri])
            .with_context(|| format!("cannot read {}", file.display()))?;
        let copied = copy(&mut self.conn, &imported.runs);
        let detached = self.conn.execute("DETACH DATABASE src", []);
        copied.with_context(|| format!("cannot import the runs of {}", file.display()))?;
        detached?;
        Ok(imported)
    }
}

/// Copies the runs `ids` of the attached `src` into `main`, all or nothing.
fn copy(conn: &mut rusqlite::Connection, ids: &[String]) -> rusqlite::Result<()> {
    let tx = conn.transaction()?;
    tx.execute("CREATE TEMP TABLE import_ids (id TEXT PRIMARY KEY)", [])?;
    for id in ids {
        tx.execute("INSERT INTO import_ids (id) VALUES (?1)", [id])?;
    }
    // The same schema version: the same columns in the same order; rows keep their order.
    tx.execute_batch(
        "INSERT INTO main.runs SELECT * FROM src.runs WHERE id IN (SELECT id FROM import_ids);
         INSERT INTO main.nodes SELECT * FROM src.nodes WHERE run_id IN (SELECT id FROM import_ids)
           ORDER BY rowid;
         INSERT INTO main.metrics SELECT * FROM src.metrics WHERE run_id IN (SELECT id FROM import_ids)
           ORDER BY rowid;
         INSERT INTO main.asserts SELECT * FROM src.asserts WHERE run_id IN (SELECT id FROM import_ids)
           ORDER BY rowid;
         INSERT INTO main.samples SELECT * FROM src.samples WHERE run_id IN (SELECT id FROM import_ids)
           ORDER BY rowid;
         INSERT INTO main.telemetry_series (run_id, leg, name, unit)
           SELECT run_id, leg, name, unit FROM src.telemetry_series
           WHERE run_id IN (SELECT id FROM import_ids) ORDER BY id;
         INSERT INTO main.telemetry_points (series, t, value)
           SELECT m.id, p.t, p.value FROM src.telemetry_points p
           JOIN src.telemetry_series s ON p.series = s.id
           JOIN main.telemetry_series m ON m.run_id = s.run_id AND m.leg = s.leg AND m.name = s.name
           WHERE s.run_id IN (SELECT id FROM import_ids);
         UPDATE main.runs SET owner_host = NULL, owner_pid = NULL, owner_start = NULL
           WHERE id IN (SELECT id FROM import_ids) AND status != 'running';
         DROP TABLE temp.import_ids;",
    )?;
    tx.commit()
}

/// The tables whose rows belong to a leg, copied by [`Store::merge_legs`].
const LEG_TABLES: [&str; 4] = ["nodes", "metrics", "asserts", "samples"];

impl Store {
    /// Copies the legs `legs` of run `from_run` (by default the newest) of the store at
    /// `file` into this store's run `into_run` (rows, metrics, asserts, samples, telemetry
    /// series), replacing rows of the same legs; the legs copied. Legs the file holds only as
    /// reused from another run are not copied.
    pub fn merge_legs(
        &mut self,
        file: &Path,
        from_run: Option<&str>,
        into_run: &str,
        legs: &[String],
    ) -> anyhow::Result<Vec<String>> {
        let source = Store::open_existing(file)?;
        if migrations::version(&source.conn)? != migrations::VERSION {
            anyhow::bail!(
                "{} is a store of another schema version: merge it with the kitt that wrote it",
                file.display()
            );
        }
        let newest = || {
            source
                .conn
                .query_row(
                    "SELECT id FROM runs ORDER BY started_at DESC LIMIT 1",
                    [],
                    |r| r.get::<_, String>(0),
                )
                .ok()
        };
        let Some(from_run) = from_run.map(str::to_string).or_else(newest) else {
            return Ok(Vec::new());
        };
        let mut present = Vec::new();
        for leg in legs {
            let status: Option<String> = source
                .conn
                .query_row(
                    "SELECT status FROM nodes WHERE run_id = ?1 AND leg = ?2",
                    [&from_run, leg],
                    |r| r.get(0),
                )
                .ok();
            if status.is_some_and(|s| s != "reused") {
                present.push(leg.clone());
            }
        }
        drop(source);
        if present.is_empty() {
            return Ok(present);
        }
        let uri = format!("file:{}?mode=ro", super::uri_path(file));
        self.conn
            .execute("ATTACH DATABASE ?1 AS src", [&uri])
            .with_context(|| format!("cannot read {}", file.display()))?;
        let merged = merge(&mut self.conn, &from_run, into_run, &present);
        let detached = self.conn.execute("DETACH DATABASE src", []);
        merged.with_context(|| format!("cannot merge the legs of {}", file.display()))?;
        detached?;
        Ok(present)
    }
}

/// The columns of `table` in order.
fn columns(conn: &rusqlite::Connection, table: &str) -> rusqlite::Result<Vec<String>> {
    let mut q = conn.prepare(&format!("PRAGMA main.table_info({table})"))?;
    q.query_map([], |r| r.get::<_, String>(1))?.collect()
}

/// Copies `legs` of `src`'s run `from` into `main`'s run `into`, all or nothing.
fn merge(
    conn: &mut rusqlite::Connection,
    from: &str,
    into: &str,
    legs: &[String],
) -> rusqlite::Result<()> {
    let tx = conn.transaction()?;
    for leg in legs {
        // Children go with their node row (ON DELETE CASCADE).
        tx.execute(
            "DELETE FROM main.nodes WHERE run_id = ?1 AND leg = ?2",
            [into, leg],
        )?;
        for table in LEG_TABLES {
            let cols = columns(&tx, table)?;
            let select: Vec<String> = cols
                .iter()
                .map(|c| {
                    if c == "run_id" {
                        "?1".into()
                    } else {
                        c.clone()
                    }
                })
                .collect();
            tx.execute(
                &format!(
                    "INSERT INTO main.{table} ({}) SELECT {} FROM src.{table}
                     WHERE run_id = ?2 AND leg = ?3 ORDER BY rowid",
                    cols.join(", "),
                    select.join(", ")
                ),
                [into, from, leg],
            )?;
        }
        tx.execute(
            "INSERT INTO main.telemetry_series (run_id, leg, name, unit)
             SELECT ?1, leg, name, unit FROM src.telemetry_series
             WHERE run_id = ?2 AND leg = ?3 ORDER BY id",
            [into, from, leg],
        )?;
        tx.execute(
            "INSERT INTO main.telemetry_points (series, t, value)
             SELECT m.id, p.t, p.value FROM src.telemetry_points p
             JOIN src.telemetry_series s ON p.series = s.id
             JOIN main.telemetry_series m ON m.run_id = ?1 AND m.leg = s.leg AND m.name = s.name
             WHERE s.run_id = ?2 AND s.leg = ?3",
            [into, from, leg],
        )?;
    }
    tx.commit()
}
