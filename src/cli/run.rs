//! `integ run`: one event through the engine, and a summary of what each step did.

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
    let event = match read_event(args.input.as_deref()) {
        Ok(event) => event,
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
    let report = runtime.block_on(engine.run(event.clone()));
    if let Some(store) = store {
        match store.and_then(|store| keep(store.as_ref(), &report, &event, engine.secrets())) {
            Ok(Some(id)) => eprintln!("dead letter #{id} kept in {location}"),
            Ok(None) => {}
            Err(error) => eprintln!("error: the state store {location}: {error}"),
        }
    }
    let written = match args.format {
        Format::Human => print_human(&report, args.dry_run, use_color(args.color)),
        Format::Json => serde_json::to_writer(std::io::stdout().lock(), &report)
            .map_err(std::io::Error::from)
            .and_then(|()| writeln!(std::io::stdout())),
    };
    if let Err(error) = written {
        return write_failed(&error);
    }
    match report.outcome {
        RunOutcome::Succeeded => ExitCode::SUCCESS,
        RunOutcome::Failed | RunOutcome::DeadLettered | RunOutcome::Deferred { .. } => {
            ExitCode::from(EXIT_FAILURE)
        }
    }
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

fn read_event(input: Option<&std::path::Path>) -> Result<serde_json::Value, String> {
    let text = match input {
        None => return Ok(serde_json::json!({})),
        Some(path) if path.as_os_str() == "-" => std::io::read_to_string(std::io::stdin())
            .map_err(|e| format!("cannot read the event from standard input: {e}"))?,
        Some(path) => std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read `{}`: {e}", path.display()))?,
    };
    serde_json::from_str(&text).map_err(|e| format!("the event is not valid JSON: {e}"))
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
