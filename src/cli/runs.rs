//! `integ runs`: the run history of a state store.

use super::{EXIT_USAGE, Format, existing_store, one_line, time, with_id, write_failed};
use crate::store::{RunQuery, RunRecord};
use std::ffi::OsString;
use std::io::Write;
use std::num::NonZeroUsize;
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct RunsArgs {
    /// Only the runs of this integration.
    #[arg(long)]
    integration: Option<String>,
    /// Only the runs that failed or dead-lettered.
    #[arg(long)]
    failed: bool,
    /// Only the runs started since then: a time ago (`2h`, `7d`) or an RFC 3339 time
    /// (`2026-12-01T09:00:00Z`).
    #[arg(long, value_parser = since)]
    since: Option<i64>,
    /// At most this many runs, the newest.
    #[arg(long, default_value = "50")]
    limit: NonZeroUsize,
    /// The state store: a file path (SQLite), `sqlite:PATH` or `sqlite://PATH`.
    #[arg(long, default_value = ".integ/state.db")]
    state: OsString,
    /// `human` for people, `json` for one JSON object per run per line.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    format: Format,
}

/// `--since` as seconds since the Unix epoch: a time ago, an RFC 3339 time, or a date or a
/// time without a zone, taken as UTC.
fn since(text: &str) -> Result<i64, String> {
    if let Ok(at) = chrono::DateTime::parse_from_rfc3339(text) {
        return Ok(at.timestamp());
    }
    let naive = chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S").or_else(|_| {
        chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").map(|d| d.and_time(Default::default()))
    });
    if let Ok(at) = naive {
        return Ok(at.and_utc().timestamp());
    }
    let ago = crate::syntax::parse_duration(text)
        .filter(|ago| !ago.is_zero())
        .ok_or_else(|| {
            format!(
                "`{text}` is neither a time ago such as `2h` nor a time such as `2026-12-01` \
                 or `2026-12-01T09:00:00Z`"
            )
        })?;
    let now = chrono::Utc::now().timestamp();
    let ago = i64::try_from(ago.as_secs()).unwrap_or(i64::MAX);
    Ok(now.saturating_sub(ago))
}

pub fn run(args: &RunsArgs) -> ExitCode {
    let query = RunQuery {
        integration: args.integration.clone(),
        failed_only: args.failed,
        since: args.since,
        // One more than shown tells whether there are others.
        limit: args.limit.checked_add(1),
    };
    let mut runs = match existing_store(&args.state).and_then(|store| store.runs(&query)) {
        Ok(runs) => runs,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let more = runs.len() > args.limit.get();
    runs.truncate(args.limit.get());
    let mut out = std::io::stdout().lock();
    for (id, run) in &runs {
        let written = match args.format {
            Format::Json => writeln!(out, "{}", with_id(*id, run)),
            Format::Human => writeln!(out, "{}", line(*id, run)),
        };
        if let Err(error) = written {
            return write_failed(&error);
        }
    }
    if matches!(args.format, Format::Human) && more {
        eprintln!(
            "the newest {} runs; --limit or --since for others",
            args.limit
        );
    }
    ExitCode::SUCCESS
}

/// A run for people, on one line: which, when, what came of it, and of which event.
fn line(id: i64, run: &RunRecord) -> String {
    let event = run
        .event
        .map(|e| format!("  inbox event {e}"))
        .unwrap_or_default();
    // A failed run says why it failed, a skipped one why it did not run.
    let error = run
        .error
        .as_deref()
        .or(run.reason.as_deref())
        .map(|e| format!("  {}", one_line(e, 100)))
        .unwrap_or_default();
    format!(
        "#{id}  {}  {}  {:<14} {:>6} ms  {} request(s){event}{error}",
        time(run.started_at),
        run.integration,
        run.outcome,
        run.duration_ms,
        run.attempts,
    )
}
