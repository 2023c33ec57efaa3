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
