//! Writing a run as it goes: each statement commits on its own, so a crash loses at most the
//! node in flight.

use anyhow::Context;
use rusqlite::params;

use super::Store;
use super::records::{AssertRecord, MetricRecord, NodeRecord, RunRecord};

fn json(v: &impl serde::Serialize) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "null".into())
}

impl Store {
    /// Records the start of a run.
    pub fn insert_run(&self, r: &RunRecord) -> anyhow::Result<()> {
        self.conn
            .execute(
                "INSERT INTO runs (id, suite, suite_version, suite_path, digest, git_commit,
                 git_dirty, started_at, ended_at, status, kitt_version, fingerprint,
                 fingerprint_summary, params)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
                params![
                    r.id,
                    r.suite,
                    r.suite_version,
                    r.suite_path,
                    r.digest,
                    r.git_commit,
                    r.git_dirty,
                    r.started_at,
                    r.ended_at,
                    r.status,
                    r.kitt_version,
                    r.fingerprint,
                    r.fingerprint_summary,
                    json(&r.params)
                ],
            )
            .context("cannot record the run")?;
        Ok(())
    }

    /// Sets a run's status (and end time when it ended).
    pub fn set_run_status(
        &self,
        id: &str,
        status: &str,
        ended_at: Option<f64>,
    ) -> anyhow::Result<()> {
        self.conn
            .execute(
                "UPDATE runs SET status = ?2, ended_at = ?3 WHERE id = ?1",
                params![id, status, ended_at],
            )
            .context("cannot update the run")?;
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
                n.image,
                n.image_digest,
                n.model,
                json(&n.params),
                n.spec_hash,
                n.status,
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
                params![n.run_id, n.leg, m.name, m.value, m.unit, m.direction],
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
                    a.message
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
