//! `integ run`: one event through the engine, and a summary of what each step did.

use super::progress::Progress;
use super::{Color, EXIT_FAILURE, EXIT_USAGE, Format, lint::style, load, use_color, write_failed};
use crate::engine::{Engine, Invented, Options, RefreshTokens, RunOutcome, RunReport, StepReport};
use crate::model::Outcome;
use crate::plan::Parts;
use crate::secrets::Secrets;
use crate::store::{self, DeadLetter, Location, RunRecord, Store, StoreError};
use std::ffi::OsString;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The spec to run.
    spec: PathBuf,
    /// The event, a JSON file (`-` reads standard input). Without it the event is `{}`.
    #[arg(long, short)]
    input: Option<PathBuf>,
    /// Apply this environment's overrides.
    #[arg(long = "env")]
    environment: Option<String>,
    /// Print every request it would send, and send nothing.
    #[arg(long)]
    dry_run: bool,
    /// A secrets file (`NAME=value` lines); the environment is read for the rest.
    #[arg(long)]
    secrets: Option<PathBuf>,
    /// The state store where the run is recorded and a dead-lettered event kept: a file
    /// path (SQLite), `sqlite:PATH` or `sqlite://PATH`.
    #[arg(long, default_value = ".integ/state.db")]
    state: OsString,
    /// `human` for people, `json` for the run report as one JSON object.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    format: Format,
    /// Colours: `auto` uses them on a terminal unless NO_COLOR is set.
    #[arg(long, value_enum, default_value_t = Color::Auto)]
    color: Color,
}

pub fn run(args: &RunArgs) -> ExitCode {
    let location = match Location::parse(&args.state) {
        Ok(location) => location,
        Err(error) => return usage(&error),
    };
    // A real run never reads the test blocks; a dry run borrows their mocks if it can.
    let parts = if args.dry_run {
        Parts::All
    } else {
        Parts::WithoutTests
    };
    let environment = args.environment.as_deref();
    let Ok(plan) = load::plan(&args.spec, environment, style(args.color), parts) else {
        return ExitCode::from(EXIT_USAGE);
    };
    // The secrets a run reads must be given (but for a dry run). The others (a trigger's,
    // a poll-only connection's, a test mock's) get placeholders: their connections are set
    // up but a run never calls them, and a dry run's borrowed mocks can be evaluated.
    let file = args.secrets.as_deref();
    let loaded = Secrets::load(plan.secrets.for_run(), file, args.dry_run)
        .and_then(|_| Secrets::load(plan.secrets.all(), file, true));
    let secrets = match loaded {
        Ok(secrets) => secrets,
        Err(error) => return usage(&error),
    };
    let events = match read_events(args.input.as_deref()) {
        Ok(events) => events,
        Err(message) => return usage(&message),
    };
    // A dry run sends nothing and keeps nothing. A store that cannot be opened is said
    // after the run, as before; the run goes on without it.
    let store = (!args.dry_run).then(|| store::open(&location));
    let options = Options {
        dry_run: args.dry_run,
        refresh_tokens: match &store {
            Some(Ok(store)) => Some(store.clone() as Arc<dyn RefreshTokens>),
            _ => None,
        },
        ..Options::default()
    };
    let engine = match Engine::new(Arc::new(plan), secrets, options) {
        Ok(engine) => engine,
        Err(error) => return usage(&error),
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => return usage(&error),
    };
    // A store that cannot be opened is said once; the runs go on without it.
    let store = match store {
        Some(Err(error)) => {
            eprintln!("error: the state store {location}: {error}");
            None
        }
        Some(Ok(store)) => Some(store),
        None => None,
    };
    let kept = |report: &RunReport, event: &serde_json::Value| {
        let store = store.as_deref()?;
        match keep(store, report, event, engine.secrets()) {
            Ok(Some(id)) => Some(id),
            Ok(None) => None,
            Err(error) => {
                eprintln!("error: the state store {location}: {error}");
                None
            }
        }
    };
    let events = match events {
        Events::Many(events) => events,
        Events::One(event) => {
            let report = runtime.block_on(engine.run(event.clone()));
            if let Some(id) = kept(&report, &event) {
                eprintln!("dead letter #{id} kept in {location}");
            }
            let written = match args.format {
                Format::Human => print_human(&report, args.dry_run, use_color(args.color)),
                Format::Json => json_line(&report),
            };
            if let Err(error) = written {
                return write_failed(&error);
            }
            return exit_code(report.outcome == RunOutcome::Succeeded);
        }
    };
    // Many events: one after the other, each recorded as a run of its own; a line (or a
    // JSON report) for each, a bar or progress lines on standard error.
    let total = u64::try_from(events.len()).unwrap_or(u64::MAX);
    let mut progress = Progress::new("events", Some(total));
    let mut tally = Tally::default();
    for (n, event) in events.into_iter().enumerate() {
        let report = runtime.block_on(engine.run(event.clone()));
        let letter = kept(&report, &event);
        tally.add(report.outcome);
        let written = progress.print(|| match args.format {
            Format::Human => {
                writeln!(
                    std::io::stdout().lock(),
                    "{}",
                    batch_line(n + 1, &report, letter)
                )
            }
            Format::Json => json_line(&report),
        });
        if let Err(error) = written {
            progress.finish(&tally.to_string());
            return write_failed(&error);
        }
        progress.advance(1, &tally.to_string());
    }
    progress.finish(&tally.to_string());
    exit_code(tally.all_succeeded())
}

fn exit_code(succeeded: bool) -> ExitCode {
    if succeeded {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_FAILURE)
    }
}

/// A run report for programs, on one line.
fn json_line(report: &RunReport) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer(&mut out, report).map_err(std::io::Error::from)?;
    writeln!(out)
}

/// How the runs of many events went so far.
#[derive(Debug, Default)]
struct Tally {
    succeeded: usize,
    failed: usize,
    dead_lettered: usize,
    deferred: usize,
}

impl Tally {
    fn add(&mut self, outcome: RunOutcome) {
        let count = match outcome {
            RunOutcome::Succeeded => &mut self.succeeded,
            RunOutcome::Failed => &mut self.failed,
            RunOutcome::DeadLettered => &mut self.dead_lettered,
            RunOutcome::Deferred { .. } => &mut self.deferred,
        };
        *count += 1;
    }

    fn all_succeeded(&self) -> bool {
        self.failed + self.dead_lettered + self.deferred == 0
    }
}

impl std::fmt::Display for Tally {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} succeeded", self.succeeded)?;
        for (n, what) in [
            (self.failed, "failed"),
            (self.dead_lettered, "dead-lettered"),
            (self.deferred, "deferred"),
        ] {
            if n > 0 {
                write!(f, ", {n} {what}")?;
            }
        }
        Ok(())
    }
}

/// One event's run among many, on one line: its number, how it ended, and why it failed.
fn batch_line(n: usize, report: &RunReport, letter: Option<i64>) -> String {
    let failed = report
        .steps
        .iter()
        .find(|s| s.failed())
        .map(|s| {
            let error = s.error.as_deref().unwrap_or("");
            format!("  {}: {}", s.name, super::one_line(error, 100))
        })
        .unwrap_or_default();
    let letter = letter
        .map(|id| format!("  dead letter #{id}"))
        .unwrap_or_default();
    format!(
        "event {n}  {}  {} ms{failed}{letter}",
        report.outcome.as_str(),
        report.duration.as_millis()
    )
}

/// Records the run in the history and, when it dead-lettered, keeps the event.
fn keep(
    store: &dyn Store,
    report: &RunReport,
    event: &serde_json::Value,
    secrets: &Secrets,
) -> Result<Option<i64>, StoreError> {
    let run = store.record_run(&RunRecord::from_run(report, secrets, None))?;
    let step = report
        .steps
        .iter()
        .find(|s| s.outcome == Outcome::DeadLettered);
    match step.filter(|_| report.outcome == RunOutcome::DeadLettered) {
        Some(step) => store
            .dead_letter(&DeadLetter {
                run: Some(run),
                ..DeadLetter::from_run(report, step, event, secrets)
            })
            .map(Some),
        None => Ok(None),
    }
}

fn usage(error: &dyn std::fmt::Display) -> ExitCode {
    eprintln!("error: {error}");
    ExitCode::from(EXIT_USAGE)
}

/// What `--input` holds: one event, or many.
#[derive(Debug)]
enum Events {
    One(serde_json::Value),
    Many(Vec<serde_json::Value>),
}

/// The events of `--input`: a JSON array, or JSON values one after another (JSON lines),
/// is one event each; any other single JSON value is one event. Without `--input`, `{}`.
fn read_events(input: Option<&std::path::Path>) -> Result<Events, String> {
    let text = match input {
        None => return Ok(Events::One(serde_json::json!({}))),
        Some(path) if path.as_os_str() == "-" => std::io::read_to_string(std::io::stdin())
            .map_err(|e| format!("cannot read the events from standard input: {e}"))?,
        Some(path) => std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read `{}`: {e}", path.display()))?,
    };
    let mut values = Vec::new();
    for (n, value) in serde_json::Deserializer::from_str(&text)
        .into_iter::<serde_json::Value>()
        .enumerate()
    {
        values.push(value.map_err(|e| format!("event {} is not valid JSON: {e}", n + 1))?);
    }
    match values.len() {
        0 => Err("the input holds no event (an empty file)".into()),
        1 => match values.pop() {
            Some(serde_json::Value::Array(events)) if events.is_empty() => {
                Err("the input is an empty array: no event to run".into())
            }
            Some(serde_json::Value::Array(events)) => Ok(Events::Many(events)),
            Some(event) => Ok(Events::One(event)),
            None => Err("the input holds no event".into()),
        },
        _ => Ok(Events::Many(values)),
    }
}

fn print_human(report: &RunReport, dry_run: bool, color: bool) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    let paint = |code: &str, text: &str| {
        if color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    };
    let width = report.steps.iter().map(|s| s.name.len()).max().unwrap_or(0);
    for step in &report.steps {
        let (mark, code) = mark(step);
        let mut requests = step.requests.iter();
        let first = requests
            .next()
            .map(|r| request_line(r, dry_run))
            .unwrap_or_default();
        writeln!(out, "{} {:width$}  {first}", paint(code, mark), step.name)?;
        for request in requests {
            writeln!(out, "  {:width$}  {}", "", request_line(request, dry_run))?;
        }
        if dry_run {
            for request in &step.requests {
                for (name, value) in request.headers.iter().flatten() {
                    writeln!(out, "  {:width$}    {name}: {value}", "")?;
                }
                if let Some(body) = &request.body {
                    writeln!(out, "  {:width$}    {body}", "")?;
                }
                if let Some(invented) = &request.invented {
                    writeln!(
                        out,
                        "  {:width$}    {}",
                        "",
                        paint("2", &invented_line(invented))
                    )?;
                }
            }
        }
        if let Some(fallback) = &step.fallback {
            writeln!(out, "  {:width$}  fell back to `{fallback}`", "")?;
        }
        for warning in &step.warnings {
            let warning = format!("warning: {warning}");
            writeln!(out, "  {:width$}  {}", "", paint("33", &warning))?;
        }
        for text in step.error.iter().chain(&step.note) {
            writeln!(out, "  {:width$}  {}", "", paint("2", text))?;
        }
        if report.real_run_stops_at.as_ref() == Some(&step.name) {
            let stop = "a real run stops here; the dry run goes on to show the rest";
            writeln!(out, "  {:width$}  {}", "", paint("33", stop))?;
        }
    }
    let outcome = match report.outcome {
        RunOutcome::Succeeded => paint("32", "succeeded"),
        RunOutcome::Failed => paint("31", "failed"),
        RunOutcome::DeadLettered => paint("33", "dead-lettered"),
        RunOutcome::Deferred { .. } => paint("33", "deferred"),
    };
    let what = if dry_run { "dry run of" } else { "run of" };
    writeln!(
        out,
        "{what} {} {outcome} in {} ms",
        report.integration,
        report.duration.as_millis()
    )
}

/// Where a dry run's made-up response came from, so that nobody takes it for an answer.
fn invented_line(invented: &Invented) -> String {
    match &invented.mock_of_test {
        Some(test) => format!(
            "← invented: {} from the mock in test \"{test}\"",
            invented.status
        ),
        None => format!(
            "← invented: {} with an empty body (no test mocks this request)",
            invented.status
        ),
    }
}

fn mark(step: &StepReport) -> (&'static str, &'static str) {
    match step.outcome {
        Outcome::Succeeded => ("✓", "32"),
        Outcome::Skipped => ("-", "2"),
        Outcome::FellBack => ("↪", "33"),
        Outcome::Failed => ("✗", "31"),
        Outcome::DeadLettered => ("✗", "33"),
    }
}

fn request_line(request: &crate::engine::RequestReport, dry_run: bool) -> String {
    if dry_run {
        return format!("{} {}", request.method, request.url);
    }
    let status = request
        .status
        .map_or_else(|| "---".to_string(), |s| s.to_string());
    let attempts = match (request.cache_hit, request.attempts) {
        (Some(true), _) => "  from the cache".to_string(),
        (_, 1) => String::new(),
        (_, n) => format!("  {n} attempts"),
    };
    format!(
        "{} {}  {status}  {} ms{attempts}",
        request.method,
        request.url,
        request.duration.as_millis()
    )
}
