//! `kitt results list | show RUN | compare RUN_A RUN_B | export RUN`: reading the store.

use std::io::Write;
use std::path::PathBuf;

use crate::compare::{Verdict, compare};
use crate::exit;
use crate::store::read::{NodeResults, RunResults};
use crate::store::time::format_utc;
use crate::store::{MetricRecord, Store};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Sub,
    /// The results store (default: $KITT_STORE, else kitt.db in the data directory).
    #[arg(long, global = true)]
    store: Option<PathBuf>,
}

#[derive(Debug, clap::Subcommand)]
enum Sub {
    /// The newest runs: id, suite, status, when, nodes, fingerprint.
    List {
        /// Only runs of this suite.
        #[arg(long)]
        suite: Option<String>,
        /// How many.
        #[arg(long, default_value_t = 20)]
        limit: usize,
        #[arg(long)]
        json: bool,
    },
    /// One run: where it came from, each node's status, metrics and asserts.
    Show {
        /// Run id, a unique prefix of one, or `last`.
        run: String,
        #[arg(long)]
        json: bool,
    },
    /// Metric by metric, B against A, with a noise-aware verdict.
    Compare {
        run_a: String,
        run_b: String,
        /// Every metric (by default the latency family shows mean, p50 and p99 only).
        #[arg(long)]
        all: bool,
        #[arg(long)]
        json: bool,
    },
    /// Copies into this store every run of other kitt stores it lacks (the files Slurm jobs
    /// leave in their results directory, a colleague's store), or reads other tools' result
    /// files as runs (`--from vllm`, `--from guidellm`; docs/open-data.md has the mapping).
    Import {
        /// Files to read: kitt stores, or result files of the tool `--from` names.
        #[arg(required = true)]
        files: Vec<std::path::PathBuf>,
        /// Which tool wrote the files.
        #[arg(long, value_enum, default_value_t = ImportFrom::Kitt)]
        from: ImportFrom,
        /// The suite name imported runs get (default: vllm-bench-serve or guidellm), so
        /// `results trend` and `results list --suite` find them.
        #[arg(long, value_name = "NAME")]
        suite: Option<String>,
        /// The leg name a one-benchmark file's run gets (default from its rate), e.g. the
        /// id of the kitt node to compare it with.
        #[arg(long, value_name = "NAME")]
        leg: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// A suite's key metrics over its runs, with noise bands and regressions flagged (the
    /// terminal form of `kitt report --history`).
    Trend {
        /// The suite's name (as `kitt results list` shows it).
        suite: String,
        #[command(flatten)]
        window: HistoryWindow,
        #[arg(long)]
        json: bool,
        /// Exit 1 when the newest run regressed beyond the noise on any series (a CI gate).
        #[arg(long)]
        fail_on_regression: bool,
    },
    /// A run as JSON (the report document, `kitt schema results`), JSON Lines or CSV (one
    /// row per metric), or with --samples its per-request samples (JSON Lines or CSV).
    Export {
        run: String,
        #[arg(long, value_enum, default_value_t = ExportFormat::Json)]
        format: ExportFormat,
        /// One row per kept request of every leg (scheduled offset, TTFT, TPOT, e2e in ms,
        /// tokens, ok) instead of the metrics; --format jsonl or csv.
        #[arg(long)]
        samples: bool,
    },
}

/// Which runs, legs and metrics a history covers.
#[derive(Debug, Clone, clap::Args)]
pub(super) struct HistoryWindow {
    /// The newest N runs (default 30, or every run since --since).
    #[arg(long, value_name = "N", conflicts_with = "since")]
    last: Option<usize>,
    /// Runs started on or after this UTC date or time (`2026-11-01`, `2026-11-01 08:00`).
    #[arg(long, value_name = "DATE")]
    since: Option<String>,
    /// Only this node or leg (repeatable).
    #[arg(long = "node", value_name = "ID")]
    nodes: Vec<String>,
    /// Only this metric (repeatable; default: the key metrics each leg has).
    #[arg(long = "metric", value_name = "NAME")]
    metrics: Vec<String>,
}

impl HistoryWindow {
    /// The store query for `suite`.
    pub(super) fn query(self, suite: String) -> anyhow::Result<crate::compare::history::Query> {
        let since = match &self.since {
            Some(text) => Some(crate::store::time::parse_utc(text).ok_or_else(|| {
                exit::usage(format!(
                    "--since `{text}` is not a UTC date or time; write e.g. 2026-11-01 or \"2026-11-01 08:00\""
                ))
            })?),
            None => None,
        };
        if self.last == Some(0) {
            return Err(exit::usage("--last must be at least 1"));
        }
        Ok(crate::compare::history::Query {
            suite,
            last: self.last,
            since,
            nodes: self.nodes,
            metrics: self.metrics,
        })
    }
}

/// Who wrote the files `results import` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum ImportFrom {
    /// kitt stores.
    Kitt,
    /// `vllm bench serve --save-result` JSON.
    Vllm,
    /// GuideLLM's JSON report.
    Guidellm,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum ExportFormat {
    Json,
    Jsonl,
    Csv,
}

pub fn run(args: Args) -> anyhow::Result<u8> {
    if let Sub::Import {
        files,
        from,
        suite,
        leg,
        json,
    } = &args.command
    {
        let tool = match from {
            ImportFrom::Kitt => None,
            ImportFrom::Vllm => Some(crate::foreign::Tool::Vllm),
            ImportFrom::Guidellm => Some(crate::foreign::Tool::Guidellm),
        };
        if tool.is_none() && (suite.is_some() || leg.is_some()) {
            return Err(exit::usage(
                "--suite and --leg name the runs of other tools' files (with --from vllm or guidellm); kitt stores keep their own names",
            ));
        }
        let naming = crate::foreign::Naming {
            suite: suite.as_deref(),
            leg: leg.as_deref(),
        };
        return import(&args.store, files, tool, naming, *json);
    }
    let store = Store::open_existing(&crate::store::default_path(args.store.as_deref()))?;
    let mut out = crate::output::stdout();
    match args.command {
        Sub::List { suite, limit, json } => {
            let runs = store.runs(suite.as_deref(), limit)?;
            if json {
                serde_json::to_writer_pretty(&mut out, &runs)?;
                writeln!(out)?;
                return Ok(exit::OK);
            }
            writeln!(
                out,
                "{:<26} {:<16} {:<8} {:<11} {:<19} {:>5}  FINGERPRINT",
                "RUN", "SUITE", "VERSION", "STATUS", "STARTED (UTC)", "NODES"
            )?;
            for r in runs {
                let nodes = store.nodes(&r.id)?;
                let ok = nodes.iter().filter(|n| n.status.ok()).count();
                writeln!(
                    out,
                    "{:<26} {:<16} {:<8} {:<11} {:<19} {:>5}  {}",
                    r.id,
                    r.suite,
                    r.suite_version,
                    r.status,
                    format_utc(r.started_at),
                    format!("{ok}/{}", nodes.len()),
                    r.fingerprint
                )?;
            }
        }
        Sub::Show { run, json } => {
            let results = store.run_results(&run)?;
            if json {
                serde_json::to_writer_pretty(&mut out, &results)?;
                writeln!(out)?;
            } else {
                out.write_all(render_show(&results).as_bytes())?;
            }
        }
        Sub::Compare {
            run_a,
            run_b,
            all,
            json,
        } => {
            let rows = compare(&store, &run_a, &run_b)?;
            if json {
                serde_json::to_writer_pretty(&mut out, &rows)?;
                writeln!(out)?;
                return Ok(exit::OK);
            }
            let a = store.find_run(&run_a)?.id;
            let b = store.find_run(&run_b)?.id;
            writeln!(out, "A = {a}\nB = {b}\n")?;
            writeln!(
                out,
                "{:<24} {:<34} {:>12} {:>12} {:>8}  VERDICT",
                "NODE", "METRIC", "A", "B", "DELTA"
            )?;
            let mut worse = 0;
            for r in rows.iter().filter(|r| all || shown_by_default(&r.metric)) {
                if r.verdict == Verdict::Worse {
                    worse += 1;
                }
                writeln!(
                    out,
                    "{:<24} {:<34} {:>12} {:>12} {:>8}  {}",
                    r.leg,
                    r.metric,
                    number(r.a),
                    number(r.b),
                    r.delta
                        .map_or("-".into(), |d| format!("{:+.1}%", d * 100.0)),
                    r.verdict.mark()
                )?;
            }
            writeln!(
                out,
                "\n{worse} metric{} significantly worse in B. Verdicts: bootstrap intervals from per-request samples (latency), standard errors (accuracy); \"noise unknown\" where neither exists.",
                if worse == 1 { "" } else { "s" }
            )?;
        }
        // Handled before the store is opened read-only.
        Sub::Import { .. } => {}
        Sub::Trend {
            suite,
            window,
            json,
            fail_on_regression,
        } => {
            let history = crate::compare::history::build(&store, &window.query(suite)?)?;
            if json {
                serde_json::to_writer_pretty(&mut out, &history)?;
                writeln!(out)?;
            } else {
                out.write_all(render_trend(&history).as_bytes())?;
            }
            if fail_on_regression && history.latest_regressions > 0 {
                return Ok(exit::FAILED);
            }
        }
        Sub::Export {
            run,
            format,
            samples,
        } => {
            let results = store.run_results(&run)?;
            if samples {
                export_samples(&store, &results, format, &mut out)?;
            } else if format == ExportFormat::Json {
                // The report context: the document `kitt report --reporter json` writes.
                let report = crate::report::context::Report::from_results(&results);
                serde_json::to_writer_pretty(&mut out, &report)?;
                writeln!(out)?;
            } else {
                export_metrics(&results, format, &mut out)?;
            }
        }
    }
    Ok(exit::OK)
}

/// One row per metric of every leg, as CSV or JSON Lines.
fn export_metrics(
    results: &RunResults,
    format: ExportFormat,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let mut rows = Vec::new();
    for n in &results.nodes {
        for m in &n.metrics {
            rows.push(serde_json::json!({
                "run": results.run.id, "suite": results.run.suite, "leg": n.node.leg,
                "node": n.node.node, "benchmark": n.node.benchmark, "engine": n.node.engine,
                "status": n.node.status.as_str(), "metric": m.name, "value": m.value,
                "unit": m.unit, "direction": direction_word(m.direction),
            }));
        }
    }
    write_rows(&rows, format, out)
}

/// One row per kept request of every leg (the store's samples), as CSV or JSON Lines.
fn export_samples(
    store: &Store,
    results: &RunResults,
    format: ExportFormat,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    if format == ExportFormat::Json {
        return Err(exit::usage(
            "samples export as --format jsonl or csv (a row per request)",
        ));
    }
    let mut rows = Vec::new();
    for n in &results.nodes {
        let Some((_, _, data)) = store.samples(&results.run.id, &n.node.leg)? else {
            continue;
        };
        for s in crate::bench::samples::decode(&data) {
            // Stored as f32: written by its shortest decimal (41.43, not 41.430145263671875).
            let ms = |v: f32| {
                v.is_finite()
                    .then(|| v.to_string().parse::<f64>().unwrap_or(f64::from(v)))
            };
            rows.push(serde_json::json!({
                "run": results.run.id, "leg": n.node.leg, "at_ms": ms(s.at_ms),
                "ttft_ms": ms(s.ttft_ms), "tpot_ms": ms(s.tpot_ms), "e2e_ms": ms(s.e2e_ms),
                "tokens": s.tokens, "ok": s.ok,
            }));
        }
    }
    write_rows(&rows, format, out)
}

/// Rows of one shape as JSON Lines, or CSV with their keys as the header (absent as empty).
fn write_rows(
    rows: &[serde_json::Value],
    format: ExportFormat,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    match format {
        ExportFormat::Jsonl => {
            for row in rows {
                serde_json::to_writer(&mut *out, row)?;
                writeln!(out)?;
            }
        }
        _ => {
            let mut w = csv::Writer::from_writer(&mut *out);
            if let Some(first) = rows.first().and_then(|r| r.as_object()) {
                w.write_record(first.keys())?;
            }
            for row in rows.iter().filter_map(|r| r.as_object()) {
                w.write_record(row.values().map(|v| match v {
                    serde_json::Value::Null => String::new(),
                    serde_json::Value::String(s) => s.clone(),
                    // As Rust writes numbers (20, not 20.0), as the CSV export always has.
                    serde_json::Value::Number(n) => {
                        n.as_f64().map_or(n.to_string(), |f| f.to_string())
                    }
                    other => other.to_string(),
                }))?;
            }
            w.flush()?;
        }
    }
    Ok(())
}

/// Latency statistics beyond mean, p50 and p99 are left to `--all`.
fn shown_by_default(metric: &str) -> bool {
    !crate::bench::performance::is_latency_metric(metric)
        || ["_mean_ms", "_p50_ms", "_p99_ms"]
            .iter()
            .any(|s| metric.ends_with(s))
}

fn number(v: f64) -> String {
    if v.abs() >= 1000.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.3}")
    }
}

fn render_show(r: &RunResults) -> String {
    let run = &r.run;
    let mut s = format!(
        "run {}  suite {} {}  {}\n",
        run.id, run.suite, run.suite_version, run.status
    );
    s.push_str(&format!(
        "started {} UTC{}\n",
        format_utc(run.started_at),
        run.ended_at.map_or(String::new(), |e| format!(
            ", ended {} ({:.1} s)",
            format_utc(e),
            e - run.started_at
        ))
    ));
    s.push_str(&format!(
        "suite file {} (sha256 {}){}\n",
        run.suite_path,
        run.digest,
        match (&run.git_commit, run.git_dirty) {
            (Some(c), Some(true)) =>
                format!(", git {} with uncommitted changes", &c[..c.len().min(12)]),
            (Some(c), _) => format!(", git {}", &c[..c.len().min(12)]),
            _ => ", not in a git repository".into(),
        }
    ));
    s.push_str(&format!(
        "kitt {}; machine {} ({})\n",
        run.kitt_version, run.fingerprint, run.fingerprint_summary
    ));
    for n in &r.nodes {
        s.push_str(&render_node(n));
    }
    s
}

fn render_node(n: &NodeResults) -> String {
    let node = &n.node;
    let mut s = format!(
        "\n{}  {} on {} ({}{})  {}{}\n",
        node.leg,
        node.benchmark,
        node.engine,
        node.engine_uses,
        node.model
            .as_deref()
            .map_or(String::new(), |m| format!(", model {m}")),
        node.status,
        node.seconds
            .map_or(String::new(), |x| format!(" in {x:.1} s")),
    );
    if let Some(img) = &node.image {
        s.push_str(&format!(
            "  image {img}{}\n",
            node.image_digest
                .as_deref()
                .map_or(String::new(), |d| format!(" ({d})"))
        ));
    }
    // The latency family as a table, the rest as lines.
    let family = crate::bench::performance::LATENCIES;
    let stats = crate::bench::performance::STATISTICS;
    let get = |name: &str| n.metrics.iter().find(|m| m.name == name).map(|m| m.value);
    let has_family = family.iter().any(|q| get(&format!("{q}_p50_ms")).is_some());
    if has_family {
        s.push_str(&format!("  {:<6}", "ms"));
        for st in stats {
            s.push_str(&format!(" {st:>10}"));
        }
        s.push('\n');
        for q in family {
            if get(&format!("{q}_p50_ms")).is_none() {
                continue;
            }
            s.push_str(&format!("  {q:<6}"));
            for st in stats {
                let v = get(&format!("{q}_{st}_ms"));
                s.push_str(&format!(
                    " {:>10}",
                    v.map_or("-".into(), |v| format!("{v:.2}"))
                ));
            }
            s.push('\n');
        }
    }
    let in_family = |m: &MetricRecord| crate::bench::performance::is_latency_metric(&m.name);
    for m in n.metrics.iter().filter(|m| !in_family(m)) {
        s.push_str(&format!(
            "  {:<34} {:>14} {}\n",
            m.name,
            number(m.value),
            m.unit
        ));
    }
    for a in &n.asserts {
        s.push_str(&format!(
            "  assert {}: {}\n",
            if a.passed { "held" } else { "BREACHED" },
            a.message
        ));
    }
    for e in &node.errors {
        s.push_str(&format!("  note: {e}\n"));
    }
    s
}

/// A history as a terminal table: a sparkline per series, the newest value against its band.
fn render_trend(h: &crate::compare::history::History) -> String {
    use crate::compare::history::Flag;
    let first = &h.runs[0];
    let newest = &h.runs[h.runs.len() - 1];
    let mut s = format!(
        "suite {}: {} runs, {} to {} UTC\n\n",
        h.suite,
        h.runs.len(),
        first.started,
        newest.started
    );
    s.push_str(&format!(
        "{:<24} {:<22} {:<30} {:>12} {:>23}  NEWEST IS\n",
        "NODE", "METRIC", "TREND (OLDEST → NEWEST)", "NEWEST", "BAND"
    ));
    for series in &h.series {
        let Some(p) = series.points.last() else {
            continue;
        };
        let trend: String = {
            let chars: Vec<char> = series.sparkline.chars().collect();
            chars[chars.len().saturating_sub(30)..].iter().collect()
        };
        let band = p.band.map_or("-".to_string(), |b| {
            format!("{} – {}", number(b.low), number(b.high))
        });
        let stale = if p.run + 1 < h.runs.len() {
            " (not in the newest run)"
        } else {
            ""
        };
        s.push_str(&format!(
            "{:<24} {:<22} {:<30} {:>12} {:>23}  {}{stale}\n",
            series.leg,
            series.metric,
            trend,
            number(p.value),
            band,
            p.flag.word()
        ));
    }
    let flagged: Vec<String> = h
        .series
        .iter()
        .flat_map(|series| {
            series
                .points
                .iter()
                .filter(|p| matches!(p.flag, Flag::Regression | Flag::Improvement))
                .map(move |p| {
                    let changed: Vec<&str> = p.changes.iter().map(|c| c.what.word()).collect();
                    format!(
                        "  {} {}  {} {}: {} {} ({}){}",
                        h.runs[p.run].started,
                        p.run_id,
                        series.leg,
                        series.metric,
                        number(p.value),
                        series.unit,
                        p.flag.word(),
                        if changed.is_empty() {
                            String::new()
                        } else {
                            format!(", changed: {}", changed.join(", "))
                        }
                    )
                })
        })
        .collect();
    if !flagged.is_empty() {
        s.push_str("\nbeyond the noise:\n");
        for line in flagged {
            s.push_str(&line);
            s.push('\n');
        }
    }
    let changes: Vec<String> = h
        .runs
        .iter()
        .filter(|r| !r.changes.is_empty())
        .map(|r| {
            let what: Vec<String> = r
                .changes
                .iter()
                .map(|c| format!("{} {} → {}", c.what.word(), c.from, c.to))
                .collect();
            format!("  {} {}  {}", r.started, r.id, what.join("; "))
        })
        .collect();
    if !changes.is_empty() {
        s.push_str("\nchanged under the suite:\n");
        for line in changes {
            s.push_str(&line);
            s.push('\n');
        }
    }
    s.push_str(&format!(
        "\n{} series regressed in the newest run. {}\n",
        h.latest_regressions, h.method
    ));
    s
}

/// A metric direction as the CSV export writes it.
fn direction_word(d: crate::registry::Direction) -> &'static str {
    match d {
        crate::registry::Direction::Higher => "higher",
        crate::registry::Direction::Lower => "lower",
    }
}

/// `kitt results import FILE...`: each file's runs this store lacks, copied in.
fn import(
    store: &Option<std::path::PathBuf>,
    files: &[std::path::PathBuf],
    tool: Option<crate::foreign::Tool>,
    naming: crate::foreign::Naming<'_>,
    json: bool,
) -> anyhow::Result<u8> {
    let path = crate::store::default_path(store.as_deref());
    let mut store = Store::open(&path)?;
    let mut out = crate::output::stdout();
    let mut all = Vec::new();
    if let Some(tool) = tool {
        for file in files {
            let imported = crate::foreign::import(&mut store, tool, file, naming)?;
            if !json {
                for id in &imported.runs {
                    writeln!(out, "imported run {id} from {}", file.display())?;
                }
                for id in &imported.already_present {
                    writeln!(
                        out,
                        "{} is already in the store as run {id}",
                        file.display()
                    )?;
                }
                for line in &imported.unmapped {
                    writeln!(out, "  kept in details, no kitt name: {line}")?;
                }
            }
            all.push(serde_json::json!({"file": file, "runs": imported.runs,
                                        "already_present": imported.already_present,
                                        "unmapped": imported.unmapped}));
        }
        if json {
            serde_json::to_writer_pretty(&mut out, &all)?;
            writeln!(out)?;
        }
        return Ok(exit::OK);
    }
    for file in files {
        let imported = store.import_runs(file)?;
        if !json {
            for id in &imported.runs {
                writeln!(out, "imported run {id} from {}", file.display())?;
            }
            for id in &imported.already_present {
                writeln!(
                    out,
                    "run {id} of {} is already in {}",
                    file.display(),
                    path.display()
                )?;
            }
        }
        all.push(serde_json::json!({"file": file, "runs": imported.runs,
                                    "already_present": imported.already_present}));
    }
    if json {
        serde_json::to_writer_pretty(&mut out, &all)?;
        writeln!(out)?;
    }
    Ok(exit::OK)
}
