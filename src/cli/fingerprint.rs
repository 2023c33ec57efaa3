//! `kitt fingerprint`: this machine's hardware fingerprint, as stored with every run.

use std::io::Write;

use crate::exit;
use crate::fingerprint::Fingerprint;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print JSON (the fields and the hash).
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> anyhow::Result<u8> {
    let f = Fingerprint::detect();
    let mut out = crate::output::stdout();
    if args.json {
        let mut v = serde_json::to_value(&f)?;
        v["hash"] = serde_json::json!(f.hash());
        v["summary"] = serde_json::json!(f.summary());
        serde_json::to_writer_pretty(&mut out, &v)?;
        writeln!(out)?;
    } else {
        writeln!(out, "{}  {}", f.hash(), f.summary())?;
    }
    Ok(exit::OK)
}
