//! `integ triggers`: each trigger's health, from a state store.

use super::{EXIT_USAGE, Format, existing_store, write_failed};
use crate::store::TriggerHealth;
use std::ffi::OsString;
use std::io::Write;
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct TriggersArgs {
    /// Only the triggers of this integration.
    #[arg(long)]
    integration: Option<String>,
    /// The state store: a file path (SQLite), `sqlite:PATH` or `sqlite://PATH`.
    #[arg(long, default_value = ".integ/state.db")]
    state: OsString,
    /// `human` for people, `json` for one JSON object per trigger per line.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    format: Format,
}

pub fn run(args: &TriggersArgs) -> ExitCode {
    let triggers = match existing_store(&args.state).and_then(|store| store.triggers()) {
        Ok(triggers) => triggers,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let chosen = triggers.iter().filter(|t| {
        args.integration
            .as_ref()
            .is_none_or(|i| *i == t.integration)
    });
    let mut out = std::io::stdout().lock();
    for trigger in chosen {
        let written = match args.format {
            Format::Json => writeln!(out, "{}", serde_json::to_value(trigger).unwrap_or_default()),
            Format::Human => writeln!(out, "{}", human(trigger)),
        };
        if let Err(error) = written {
            return write_failed(&error);
        }
    }
    ExitCode::SUCCESS
}

/// One line: where it stands, then the counts, then the last error if it is the news.
fn human(t: &TriggerHealth) -> String {
    let state = match (t.consecutive_failures, t.last_success_at) {
        (0, Some(_)) => "ok".to_string(),
        (0, None) => "not fired yet".to_string(),
        (n, _) => format!("FAILING ({n} in a row)"),
    };
    let mut line = format!(
        "{}  {:<28} {:<22} {} ok, {} failed  last success: {}",
        t.integration,
        t.trigger,
        state,
        t.successes,
        t.failures,
        at(t.last_success_at)
    );
    if let Some(error) = &t.last_error {
        line.push_str(&format!("  last error ({}): {error}", at(t.last_error_at)));
    }
    line
}

fn at(seconds: Option<i64>) -> String {
    seconds
        .and_then(|s| chrono::DateTime::from_timestamp(s, 0))
        .map_or_else(
            || "never".into(),
            |t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
        )
}
