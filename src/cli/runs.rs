//! `integ runs`: the run history of a state store.

use super::{EXIT_FAILURE, EXIT_USAGE, Format, existing_store, one_line, time, write_failed};
use crate::store::{RunQuery, RunRecord, RunStatus, Store, parse_time, run_json, runs_lines};
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
    /// Only the runs with this outcome: succeeded, failed, dead_lettered, skipped, deferred.
    #[arg(long)]
    outcome: Option<RunStatus>,
    /// Only the runs of events from this trigger, as `integ triggers` names it
    /// (`webhook POST /hooks/github`, `poll 0`, `schedule 0`).
    #[arg(long)]
    trigger: Option<String>,
    /// Only the runs started since then: a time ago (`2h`, `7d`) or an RFC 3339 time
    /// (`2026-12-01T09:00:00Z`).
    #[arg(long, value_parser = parse_time)]
    since: Option<i64>,
    /// Only the runs started before then, written as for `--since`.
    #[arg(long, value_parser = parse_time)]
    until: Option<i64>,
    /// Only the runs older than this run id (the next page).
    #[arg(long)]
    before: Option<i64>,
    /// One run, whole: its steps and what links it to other runs.
    #[arg(long, conflicts_with_all = ["integration", "failed", "outcome", "trigger", "since", "until", "before"])]
    id: Option<i64>,
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

pub fn run(args: &RunsArgs) -> ExitCode {
    let store = match existing_store(&args.state) {
        Ok(store) => store,
        Err(error) => return usage(&error),
    };
    if let Some(id) = args.id {
        return one(store.as_ref(), id, args.format);
    }
    let query = RunQuery {
        integration: args.integration.clone(),
        failed_only: args.failed,
        outcome: args.outcome,
        trigger: args.trigger.clone(),
        since: args.since,
        until: args.until,
        before: args.before,
        id: None,
        // One more than shown tells whether there are others.
        limit: args.limit.checked_add(1),
    };
    let mut runs = match store.runs(&query) {
        Ok(runs) => runs,
        Err(error) => return usage(&error),
    };
    let more = runs.len() > args.limit.get();
    runs.truncate(args.limit.get());
    let mut out = std::io::stdout().lock();
    let written = match args.format {
        Format::Json => out.write_all(runs_lines(&runs).as_bytes()),
        Format::Human => runs
            .iter()
            .try_for_each(|(id, run)| writeln!(out, "{}", line(*id, run))),
    };
    if let Err(error) = written {
        return write_failed(&error);
    }
    if matches!(args.format, Format::Human) && more {
        eprintln!(
            "the newest {} runs; --limit, --since or --before for others",
            args.limit
        );
    }
    ExitCode::SUCCESS
}

/// Run `id`, whole, with what links it to other runs.
fn one(store: &dyn Store, id: i64, format: Format) -> ExitCode {
    let query = RunQuery {
        id: Some(id),
        ..RunQuery::default()
    };
    let found = store
        .runs(&query)
        .and_then(|runs| Ok((runs, store.run_links(id)?)));
    let (runs, links) = match found {
        Ok(found) => found,
        Err(error) => return usage(&error),
    };
    let Some((_, record)) = runs.first() else {
        eprintln!("error: no run #{id}");
        return ExitCode::from(EXIT_FAILURE);
    };
    let json = run_json(id, record, &links);
    let text = match format {
        Format::Json => json.to_string(),
        Format::Human => serde_json::to_string_pretty(&json).unwrap_or_default(),
    };
    match writeln!(std::io::stdout().lock(), "{text}") {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => write_failed(&error),
    }
}

fn usage(error: &dyn std::fmt::Display) -> ExitCode {
    eprintln!("error: {error}");
    ExitCode::from(EXIT_USAGE)
}

/// A run for people, on one line: which, when, what came of it, and of which event.
fn line(id: i64, run: &RunRecord) -> String {
    let event = run
        .event
        .map(|e| format!("  inbox event {e}"))
        .unwrap_or_default();
    let replay = run
        .replay_of
        .map(|d| format!("  replay of dead letter #{d}"))
        .unwrap_or_default();
    // A failed run says why it failed, a skipped one why it did not run.
    let error = run
        .error
        .as_deref()
        .or(run.reason.as_deref())
        .map(|e| format!("  {}", one_line(e, 100)))
        .unwrap_or_default();
    format!(
        "#{id}  {}  {}  {:<14} {:>6} ms  {} request(s){event}{replay}{error}",
        time(run.started_at),
        run.integration,
        run.outcome,
        run.duration_ms,
        run.attempts,
    )
}
