//! `integ dlq`: the dead letters of a state store: list, show, replay, purge.

use super::{EXIT_FAILURE, EXIT_USAGE, Format, existing_store, with_id, write_failed};
use crate::store::DeadLetter;
use std::ffi::OsString;
use std::io::Write;
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct DlqArgs {
    #[command(subcommand)]
    action: Action,
    /// The state store: a file path (SQLite), `sqlite:PATH` or `sqlite://PATH`.
    #[arg(long, global = true, default_value = ".integ/state.db")]
    state: OsString,
    /// `human` for people, `json` for one JSON object per line.
    #[arg(long, global = true, value_enum, default_value_t = Format::Human)]
    format: Format,
}

#[derive(Debug, clap::Subcommand)]
enum Action {
    /// One line per dead letter (`show` has the whole of one).
    List,
    /// One dead letter, whole.
    Show { id: i64 },
    /// Put dead letters back in the inbox, for `integ serve` to run again.
    Replay {
        /// The dead letters to replay.
        ids: Vec<i64>,
        /// Replay every dead letter.
        #[arg(long, conflicts_with = "ids")]
        all: bool,
    },
    /// Delete every dead letter.
    Purge,
}

pub fn run(args: &DlqArgs) -> ExitCode {
    let store = match existing_store(&args.state) {
        Ok(store) => store,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let result = match &args.action {
        Action::List => store
            .dead_letters()
            .map(|letters| list(&letters, args.format)),
        Action::Show { id } => store
            .dead_letters()
            .map(|letters| show(&letters, *id, args.format)),
        Action::Replay { ids, all } => {
            if ids.is_empty() && !all {
                eprintln!("error: name the dead letters to replay, or give --all");
                return ExitCode::from(EXIT_USAGE);
            }
            let chosen = if *all { None } else { Some(ids.as_slice()) };
            store
                .replay(chosen)
                .map(|replayed| done("replayed", &replayed, ids, args.format))
        }
        Action::Purge => store.purge().map(|n| {
            let mut out = std::io::stdout().lock();
            match args.format {
                Format::Human => writeln!(out, "{n} dead letter(s) purged"),
                Format::Json => writeln!(out, "{}", serde_json::json!({ "purged": n })),
            }
            .map(|()| ExitCode::SUCCESS)
        }),
    };
    match result {
        Ok(Ok(code)) => code,
        Ok(Err(error)) => write_failed(&error),
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::from(EXIT_USAGE)
        }
    }
}

fn list(letters: &[(i64, DeadLetter)], format: Format) -> std::io::Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    for (id, letter) in letters {
        match format {
            Format::Json => writeln!(out, "{}", with_id(*id, letter))?,
            Format::Human => {
                let status = letter
                    .status
                    .map_or_else(|| "---".to_string(), |s| s.to_string());
                writeln!(
                    out,
                    "#{id}  {}  {}  step {}  status {status}  {}",
                    super::time(letter.failed_at),
                    letter.integration,
                    letter.step,
                    super::one_line(&letter.error, 100)
                )?;
            }
        }
    }
    if let Format::Human = format {
        eprintln!("{} dead letter(s)", letters.len());
    }
    Ok(ExitCode::SUCCESS)
}

fn show(letters: &[(i64, DeadLetter)], id: i64, format: Format) -> std::io::Result<ExitCode> {
    let Some((_, letter)) = letters.iter().find(|(i, _)| *i == id) else {
        eprintln!("error: no dead letter #{id}");
        return Ok(ExitCode::from(EXIT_FAILURE));
    };
    let mut out = std::io::stdout().lock();
    match format {
        Format::Json => writeln!(out, "{}", with_id(id, letter))?,
        Format::Human => {
            let pretty = serde_json::to_string_pretty(&with_id(id, letter)).unwrap_or_default();
            writeln!(out, "{pretty}")?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn done(verb: &str, done: &[i64], asked: &[i64], format: Format) -> std::io::Result<ExitCode> {
    let missing: Vec<&i64> = asked.iter().filter(|id| !done.contains(id)).collect();
    let mut out = std::io::stdout().lock();
    match format {
        Format::Json => writeln!(
            out,
            "{}",
            serde_json::json!({ verb: done, "missing": missing })
        )?,
        Format::Human => writeln!(out, "{} dead letter(s) {verb}", done.len())?,
    }
    for id in &missing {
        eprintln!("error: no dead letter #{id}");
    }
    Ok(if missing.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_FAILURE)
    })
}
