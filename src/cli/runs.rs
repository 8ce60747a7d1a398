//! `integ runs`: the run history of a state store.

use super::{EXIT_USAGE, Format, write_failed};
use crate::store::{SqliteStore, Store};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct RunsArgs {
    /// Only the runs of this integration.
    #[arg(long)]
    integration: Option<String>,
    /// Only the runs that failed or dead-lettered.
    #[arg(long)]
    failed: bool,
    /// The state store (SQLite).
    #[arg(long, default_value = ".integ/state.db")]
    state: PathBuf,
    /// `human` for people, `json` for one JSON object per run per line.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    format: Format,
}

pub fn run(args: &RunsArgs) -> ExitCode {
    if !args.state.exists() {
        eprintln!("error: no state store at `{}`", args.state.display());
        return ExitCode::from(EXIT_USAGE);
    }
    let runs = SqliteStore::open(&args.state)
        .and_then(|store| store.runs(args.integration.as_deref(), args.failed));
    let runs = match runs {
        Ok(runs) => runs,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let mut out = std::io::stdout().lock();
    for run in &runs {
        let written = match args.format {
            Format::Json => writeln!(out, "{}", serde_json::to_value(run).unwrap_or_default()),
            Format::Human => writeln!(
                out,
                "{}  {:<14} {:>6} ms  {} request(s){}",
                run.integration,
                run.outcome,
                run.duration_ms,
                run.attempts,
                run.error
                    .as_deref()
                    .map(|e| format!("  {e}"))
                    .unwrap_or_default()
            ),
        };
        if let Err(error) = written {
            return write_failed(&error);
        }
    }
    ExitCode::SUCCESS
}
