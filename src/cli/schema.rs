//! `kitt schema NAME`: print one of kitt's JSON Schemas.

use crate::exit;
use crate::suite::schema;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Which {
    /// Suite files (`kind: Suite`).
    Suite,
    /// Node-template files (`kind: NodeTemplates`) for `include:`.
    Templates,
    /// Plugin manifests (`plugin.toml`).
    Plugin,
    /// The results document (`kitt report --reporter json`, the report templates' context).
    Results,
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Which schema.
    #[arg(value_enum)]
    which: Which,
}

pub fn run(args: Args) -> anyhow::Result<u8> {
    let text = match args.which {
        Which::Suite => schema::SUITE_SCHEMA,
        Which::Templates => schema::TEMPLATES_SCHEMA,
        Which::Plugin => crate::plugin::PLUGIN_SCHEMA,
        Which::Results => crate::report::context::RESULTS_SCHEMA,
    };
    crate::output::emit(crate::output::Stream::Stdout, text.as_bytes());
    Ok(exit::OK)
}
