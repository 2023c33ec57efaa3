//! Reading runs back: lists, one run whole, baselines and the last successful spec hashes.

use rusqlite::{OptionalExtension, Row, params};
use serde_json::Value;

use super::Store;
use super::records::{AssertRecord, MetricRecord, NodeRecord, NodeStatus, RunRecord, RunStatus};
use crate::process::owner::Owner;
use crate::registry::Direction;

fn parse_json(text: String) -> Value {
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

pub(super) fn run_row(r: &Row) -> rusqlite::Result<RunRecord> {
    let owner = match (
        r.get::<_, Option<String>>("owner_host")?,
        r.get::<_, Option<i32>>("owner_pid")?,
        r.get::<_, Option<i64>>("owner_start")?,
    ) {
        (Some(host), Some(pid), Some(start)) => Some(Owner {
            host,
            pid,
            start: start as u64,
        }),
        _ => None,
    };
    let heartbeat_at: Option<f64> = r.get("heartbeat_at")?;
    let mut status = RunStatus::parse(&r.get::<_, String>("status")?);
    if status == RunStatus::Running
        && !owner
            .as_ref()
            .is_some_and(|o| o.alive(heartbeat_at, super::time::now()))
    {
        status = RunStatus::Abandoned;
    }
    Ok(RunRecord {
        id: r.get("id")?,
        suite: r.get("suite")?,
        suite_version: r.get("suite_version")?,
        suite_path: r.get("suite_path")?,
        digest: r.get("digest")?,
        git_commit: r.get("git_commit")?,
        git_dirty: r.get("git_dirty")?,
        started_at: r.get("started_at")?,
        ended_at: r.get("ended_at")?,
        status,
        kitt_version: r.get("kitt_version")?,
        fingerprint: r.get("fingerprint")?,
        fingerprint_summary: r.get("fingerprint_summary")?,
        params: parse_json(r.get("params")?),
        owner,
        heartbeat_at,
    })
}

fn node_row(r: &Row) -> rusqlite::Result<NodeRecord> {
    Ok(NodeRecord {
        run_id: r.get("run_id")?,
        leg: r.get("leg")?,
        node: r.get("node")?,
        benchmark: r.get("benchmark")?,
        benchmark_version: r.get("benchmark_version")?,
        engine: r.get("engine")?,
        engine_uses: r.get("engine_uses")?,
        image: r.get("image")?,
        image_digest: r.get("image_digest")?,
        model: r.get("model")?,
        params: parse_json(r.get("params")?),
        spec_hash: r.get("spec_hash")?,
        status: NodeStatus::parse(&r.get::<_, String>("status")?),
        attempts: r.get("attempts")?,
        errors: serde_json::from_str(&r.get::<_, String>("errors")?).unwrap_or_default(),
        outputs: parse_json(r.get("outputs")?),
        details: parse_json(r.get("details")?),
        started_at: r.get("started_at")?,
        ended_at: r.get("ended_at")?,
        seconds: r.get("seconds")?,
    })
}

/// A node with everything measured for it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct NodeResults {
    #[serde(flatten)]
    pub node: NodeRecord,
    pub metrics: Vec<MetricRecord>,
    pub asserts: Vec<AssertRecord>,
    /// Telemetry time series; left out of `results show --json` (reports carry them).
    #[serde(skip)]
    pub series: Vec<super::SeriesRecord>,
}

/// A run with its nodes.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RunResults {
    #[serde(flatten)]
    pub run: RunRecord,
    pub nodes: Vec<NodeResults>,
}

impl Store {
    /// The newest runs first, at most `limit`, optionally of one suite.
    pub fn runs(&self, suite: Option<&str>, limit: usize) -> anyhow::Result<Vec<RunRecord>> {
        let mut stmt = self.conn.prepare(
            "SELECT * FROM runs WHERE (?1 IS NULL OR suite = ?1)
             ORDER BY started_at DESC, rowid DESC LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![suite, limit as i64], run_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Each table of the store and its columns, in the order SQLite keeps them.
    pub fn schema_columns(&self) -> anyhow::Result<Vec<(String, Vec<String>)>> {
        let mut stmt = self.conn.prepare(
            "SELECT m.name, p.name FROM sqlite_master m, pragma_table_info(m.name) p
             WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' ORDER BY m.name, p.cid",
        )?;
        let mut out: Vec<(String, Vec<String>)> = Vec::new();
        for row in stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))? {
            let (table, column) = row?;
            match out.last_mut() {
                Some((t, cols)) if *t == table => cols.push(column),
                _ => out.push((table, vec![column])),
            }
        }
        Ok(out)
    }

    /// A run by id, or by a unique prefix of it; `last` is the newest run.
    pub fn find_run(&self, id: &str) -> anyhow::Result<RunRecord> {
        if id == "last" {
            return self
                .runs(None, 1)?
                .into_iter()
                .next()
                .ok_or_else(|| crate::exit::usage("the store holds no run yet"));
        }
        let mut stmt = self
            .conn
            .prepare("SELECT * FROM runs WHERE substr(id, 1, length(?1)) = ?1 LIMIT 2")?;
        let found: Vec<RunRecord> = stmt
            .query_map(params![id], run_row)?
            .collect::<Result<_, _>>()?;
        match found.len() {
            0 => Err(crate::exit::usage(format!(
                "no run `{id}` in {} (see `kitt results list`)",
                self.path.display()
            ))),
            1 => Ok(found.into_iter().next().expect("one")),
            _ => found.into_iter().find(|r| r.id == id).ok_or_else(|| {
                crate::exit::usage(format!("`{id}` matches several runs; give more of the id"))
            }),
        }
    }

    /// The newest run of `suite` that succeeded, other than `except`.
    pub fn last_success(
        &self,
        suite: &str,
        except: Option<&str>,
    ) -> anyhow::Result<Option<RunRecord>> {
        let mut stmt = self.conn.prepare(
            "SELECT * FROM runs WHERE suite = ?1 AND status = 'succeeded' AND id != ?2
             ORDER BY started_at DESC, rowid DESC LIMIT 1",
        )?;
        Ok(stmt
            .query_row(params![suite, except.unwrap_or("")], run_row)
            .optional()?)
    }

    /// The nodes of a run, in the order they were written.
    pub fn nodes(&self, run_id: &str) -> anyhow::Result<Vec<NodeRecord>> {
        let mut stmt = self.conn.prepare(
            "SELECT * FROM nodes WHERE run_id = ?1 ORDER BY COALESCE(started_at, 0), rowid",
        )?;
        let rows = stmt.query_map(params![run_id], node_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The metrics of one leg.
    pub fn metrics(&self, run_id: &str, leg: &str) -> anyhow::Result<Vec<MetricRecord>> {
        let mut stmt = self.conn.prepare(
            "SELECT name, value, unit, direction FROM metrics WHERE run_id = ?1 AND leg = ?2
             ORDER BY rowid",
        )?;
        let rows = stmt.query_map(params![run_id, leg], |r| {
            Ok(MetricRecord {
                name: r.get(0)?,
                value: r.get(1)?,
                unit: r.get(2)?,
                direction: if r.get::<_, String>(3)? == "higher" {
                    Direction::Higher
                } else {
                    Direction::Lower
                },
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The assert verdicts of one leg.
    pub fn asserts(&self, run_id: &str, leg: &str) -> anyhow::Result<Vec<AssertRecord>> {
        let mut stmt = self.conn.prepare(
            "SELECT metric, bound, measured, baseline, passed, message FROM asserts
             WHERE run_id = ?1 AND leg = ?2 ORDER BY rowid",
        )?;
        let rows = stmt.query_map(params![run_id, leg], |r| {
            Ok(AssertRecord {
                metric: r.get(0)?,
                bound: parse_json(r.get(1)?),
                measured: r.get(2)?,
                baseline: r.get(3)?,
                passed: r.get(4)?,
                message: r.get(5)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The per-request samples of one leg: (format, count, bytes).
    pub fn samples(&self, run_id: &str, leg: &str) -> anyhow::Result<Option<(u32, u64, Vec<u8>)>> {
        Ok(self
            .conn
            .query_row(
                "SELECT format, count, data FROM samples WHERE run_id = ?1 AND leg = ?2",
                params![run_id, leg],
                |r| Ok((r.get(0)?, r.get::<_, i64>(1)? as u64, r.get(2)?)),
            )
            .optional()?)
    }

    /// A leg's telemetry series, points in time order.
    pub fn series(&self, run_id: &str, leg: &str) -> anyhow::Result<Vec<super::SeriesRecord>> {
        let mut stmt = self.conn.prepare(
            "SELECT id, name, unit FROM telemetry_series WHERE run_id = ?1 AND leg = ?2 ORDER BY id",
        )?;
        let heads: Vec<(i64, String, String)> = stmt
            .query_map(params![run_id, leg], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })?
            .collect::<Result<_, _>>()?;
        let mut points = self
            .conn
            .prepare("SELECT t, value FROM telemetry_points WHERE series = ?1 ORDER BY t")?;
        let mut out = Vec::new();
        for (id, name, unit) in heads {
            let p: Vec<(f64, f64)> = points
                .query_map(params![id], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<_, _>>()?;
            out.push(super::SeriesRecord {
                name,
                unit,
                points: p,
            });
        }
        Ok(out)
    }

    /// A run with all its nodes, metrics and asserts. In an abandoned run, a leg stored as
    /// running reads as abandoned.
    pub fn run_results(&self, id: &str) -> anyhow::Result<RunResults> {
        let run = self.find_run(id)?;
        let mut nodes = Vec::new();
        for mut node in self.nodes(&run.id)? {
            if run.status == RunStatus::Abandoned && node.status == NodeStatus::Running {
                node.status = NodeStatus::Abandoned;
            }
            let metrics = self.metrics(&run.id, &node.leg)?;
            let asserts = self.asserts(&run.id, &node.leg)?;
            let series = self.series(&run.id, &node.leg)?;
            nodes.push(NodeResults {
                node,
                metrics,
                asserts,
                series,
            });
        }
        Ok(RunResults { run, nodes })
    }
}

impl Store {
    /// The content digest kitt recorded when it last wrote the file at `path` (absolute).
    pub fn written(&self, path: &str) -> anyhow::Result<Option<String>> {
        Ok(self
            .conn
            .query_row(
                "SELECT sha256 FROM written_files WHERE path = ?1",
                params![path],
                |r| r.get(0),
            )
            .optional()?)
    }
}
