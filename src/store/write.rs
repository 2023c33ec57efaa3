//! Writing a run as it goes: each statement commits on its own, so a crash loses at most the
//! node in flight.

use anyhow::Context;
use rusqlite::params;

use super::Store;
use super::records::{AssertRecord, MetricRecord, NodeRecord, RunRecord, RunStatus};
use crate::process::owner::Owner;
use crate::registry::Direction;

/// A value as the JSON text of a column, secrets masked.
fn json(v: &impl serde::Serialize) -> String {
    let text = serde_json::to_string(v).unwrap_or_else(|_| "null".into());
    crate::redact::text(&text).into_owned()
}

/// A text column, secrets masked.
fn text(v: &str) -> String {
    crate::redact::text(v).into_owned()
}

/// An optional text column, secrets masked.
fn opt(v: &Option<String>) -> Option<String> {
    v.as_deref().map(text)
}

impl Store {
    /// Records the start of a run, owned by this process.
    pub fn insert_run(&self, r: &RunRecord) -> anyhow::Result<()> {
        let me = Owner::me();
        self.conn
            .execute(
                "INSERT INTO runs (id, suite, suite_version, suite_path, digest, git_commit,
                 git_dirty, started_at, ended_at, status, kitt_version, fingerprint,
                 fingerprint_summary, params, owner_host, owner_pid, owner_start, heartbeat_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16,
                         ?17, ?18)",
                params![
                    r.id,
                    r.suite,
                    r.suite_version,
                    text(&r.suite_path),
                    r.digest,
                    r.git_commit,
                    r.git_dirty,
                    r.started_at,
                    r.ended_at,
                    r.status.as_str(),
                    r.kitt_version,
                    r.fingerprint,
                    r.fingerprint_summary,
                    json(&r.params),
                    me.host,
                    me.pid,
                    me.start as i64,
                    super::time::now()
                ],
            )
            .context("cannot record the run")?;
        Ok(())
    }

    /// Sets a run's status (and end time when it ended).
    pub fn set_run_status(
        &self,
        id: &str,
        status: RunStatus,
        ended_at: Option<f64>,
    ) -> anyhow::Result<()> {
        self.conn
            .execute(
                "UPDATE runs SET status = ?2, ended_at = ?3 WHERE id = ?1",
                params![id, status.as_str(), ended_at],
            )
            .context("cannot update the run")?;
        Ok(())
    }

    /// Says the run's owner is alive.
    pub fn heartbeat(&self, id: &str) -> anyhow::Result<()> {
        self.conn
            .execute(
                "UPDATE runs SET heartbeat_at = ?2 WHERE id = ?1",
                params![id, super::time::now()],
            )
            .context("cannot update the run's heartbeat")?;
        Ok(())
    }

    /// Makes this process the owner of run `id` for `--resume`: refused while its owner is
    /// alive; taken in one write transaction, so two kitts cannot both take it.
    pub fn take_over(&mut self, id: &str) -> anyhow::Result<()> {
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let run = {
            let mut stmt = tx.prepare("SELECT * FROM runs WHERE id = ?1")?;
            stmt.query_row(params![id], super::read::run_row)
                .with_context(|| format!("no run `{id}`"))?
        };
        if run.status == RunStatus::Running {
            let owner = run
                .owner
                .map_or_else(|| "another kitt".to_string(), |o| o.to_string());
            return Err(crate::exit::usage(format!(
                "run {id} is still running ({owner}); wait for it to end, or stop it, before resuming it"
            )));
        }
        let me = Owner::me();
        tx.execute(
            "UPDATE runs SET status = 'running', ended_at = NULL, owner_host = ?2,
             owner_pid = ?3, owner_start = ?4, heartbeat_at = ?5 WHERE id = ?1",
            params![id, me.host, me.pid, me.start as i64, super::time::now()],
        )?;
        tx.commit().context("cannot take over the run")?;
        Ok(())
    }

    /// Sets `key` in a stored node's details (provenance added after the fact, such as the
    /// Slurm job a leg ran in).
    pub fn add_node_detail(
        &self,
        run_id: &str,
        leg: &str,
        key: &str,
        value: &serde_json::Value,
    ) -> anyhow::Result<()> {
        let details: String = self.conn.query_row(
            "SELECT details FROM nodes WHERE run_id = ?1 AND leg = ?2",
            params![run_id, leg],
            |r| r.get(0),
        )?;
        let mut details: serde_json::Value =
            serde_json::from_str(&details).unwrap_or_else(|_| serde_json::json!({}));
        if !details.is_object() {
            details = serde_json::json!({});
        }
        if let Some(map) = details.as_object_mut() {
            map.insert(key.to_string(), value.clone());
        }
        self.conn.execute(
            "UPDATE nodes SET details = ?3 WHERE run_id = ?1 AND leg = ?2",
            params![run_id, leg, json(&details)],
        )?;
        Ok(())
    }

    /// Writes a node row (replacing an earlier one of the same leg), with its metrics,
    /// asserts and samples, in one transaction.
    pub fn put_node(
        &mut self,
        n: &NodeRecord,
        metrics: &[MetricRecord],
        asserts: &[AssertRecord],
        samples: Option<(u32, u64, &[u8])>,
    ) -> anyhow::Result<()> {
        let tx = self.conn.transaction()?;
        tx.execute(
            "DELETE FROM nodes WHERE run_id = ?1 AND leg = ?2",
            params![n.run_id, n.leg],
        )?;
        tx.execute(
            "INSERT INTO nodes (run_id, leg, node, benchmark, benchmark_version, engine,
             engine_uses, image, image_digest, model, params, spec_hash, status, attempts,
             errors, outputs, details, started_at, ended_at, seconds)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16,
                     ?17, ?18, ?19, ?20)",
            params![
                n.run_id,
                n.leg,
                n.node,
                n.benchmark,
                n.benchmark_version,
                n.engine,
                n.engine_uses,
                opt(&n.image),
                n.image_digest,
                opt(&n.model),
                json(&n.params),
                n.spec_hash,
                n.status.as_str(),
                n.attempts,
                json(&n.errors),
                json(&n.outputs),
                json(&n.details),
                n.started_at,
                n.ended_at,
                n.seconds
            ],
        )?;
        for m in metrics {
            tx.execute(
                "INSERT OR REPLACE INTO metrics (run_id, leg, name, value, unit, direction)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    n.run_id,
                    n.leg,
                    m.name,
                    m.value,
                    m.unit,
                    direction_text(m.direction)
                ],
            )?;
        }
        for a in asserts {
            tx.execute(
                "INSERT INTO asserts (run_id, leg, metric, bound, measured, baseline, passed, message)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    n.run_id,
                    n.leg,
                    a.metric,
                    json(&a.bound),
                    a.measured,
                    a.baseline,
                    a.passed,
                    text(&a.message)
                ],
            )?;
        }
        if let Some((format, count, data)) = samples {
            tx.execute(
                "INSERT INTO samples (run_id, leg, format, count, data) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![n.run_id, n.leg, format, count as i64, data],
            )?;
        }
        tx.commit()
            .with_context(|| format!("cannot record node `{}`", n.leg))?;
        Ok(())
    }
}

impl Store {
    /// Writes a leg's telemetry series (replacing earlier ones of the same leg) in one
    /// transaction; the leg's row must exist.
    pub fn put_series(
        &mut self,
        run_id: &str,
        leg: &str,
        series: &[super::SeriesRecord],
    ) -> anyhow::Result<()> {
        let tx = self.conn.transaction()?;
        tx.execute(
            "DELETE FROM telemetry_series WHERE run_id = ?1 AND leg = ?2",
            params![run_id, leg],
        )?;
        for s in series {
            tx.execute(
                "INSERT INTO telemetry_series (run_id, leg, name, unit) VALUES (?1, ?2, ?3, ?4)",
                params![run_id, leg, s.name, s.unit],
            )?;
            let id = tx.last_insert_rowid();
            let mut insert = tx.prepare_cached(
                "INSERT OR REPLACE INTO telemetry_points (series, t, value) VALUES (?1, ?2, ?3)",
            )?;
            for (t, v) in &s.points {
                insert.execute(params![id, t, v])?;
            }
        }
        tx.commit()
            .with_context(|| format!("cannot record the telemetry of `{leg}`"))?;
        Ok(())
    }

    /// Records that kitt wrote the file at `path` (absolute) with this content digest.
    pub fn record_written(&self, path: &str, sha256: &str) -> anyhow::Result<()> {
        self.conn
            .execute(
                "INSERT OR REPLACE INTO written_files (path, sha256, written_at) VALUES (?1, ?2, ?3)",
                params![path, sha256, super::time::now()],
            )
            .context("cannot record the file written")?;
        Ok(())
    }
}

/// A metric direction as the store keeps it.
fn direction_text(d: Direction) -> &'static str {
    match d {
        Direction::Higher => "higher",
        Direction::Lower => "lower",
    }
}
