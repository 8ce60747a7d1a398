//! `integ dlq`: the dead letters of a state store: list, show, replay, discard, purge.

use super::{EXIT_FAILURE, EXIT_USAGE, Format, existing_store, write_failed};
use crate::store::{
    DeadLetter, LETTERS_PER_PAGE, LetterQuery, LetterStates, letters_lines, parse_time, with_id,
};
use std::ffi::OsString;
use std::io::Write;
use std::num::NonZeroUsize;
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
    List {
        #[command(flatten)]
        filter: Filter,
        /// Which to show: `open` (neither replayed nor discarded), `replayed`,
        /// `discarded` or `all`.
        #[arg(long, default_value = "open")]
        show: LetterStates,
        /// At most this many, the oldest; a note on stderr names the next page.
        #[arg(long, default_value_t = NonZeroUsize::new(LETTERS_PER_PAGE).expect("not zero"))]
        limit: NonZeroUsize,
        /// Only those after dead letter ID: the next page of a list.
        #[arg(long, value_name = "ID")]
        after: Option<i64>,
    },
    /// One dead letter, whole.
    Show { id: i64 },
    /// Put open dead letters back in the inbox, for `integ serve` to run again; each
    /// letter is kept, marked replayed, and the new run names it.
    Replay {
        #[command(flatten)]
        chosen: Chosen,
        /// A name for the replay, kept with each letter.
        #[arg(long, value_parser = reason)]
        reason: Option<String>,
    },
    /// Mark open dead letters discarded, with why; they are kept as the record of it.
    Discard {
        #[command(flatten)]
        chosen: Chosen,
        /// Why they are dropped.
        #[arg(long, value_parser = reason)]
        reason: String,
    },
    /// Delete every dead letter, and the record of those replayed or discarded.
    Purge,
}

/// The open dead letters a replay or discard acts on: those named, or `--all` the filters
/// match.
#[derive(Debug, Clone, clap::Args)]
struct Chosen {
    /// The dead letters, by id.
    #[arg(required_unless_present = "all")]
    ids: Vec<i64>,
    /// Every open dead letter the filters match.
    #[arg(long, conflicts_with = "ids")]
    all: bool,
    #[command(flatten)]
    filter: Filter,
}

impl Chosen {
    fn query(&self) -> LetterQuery {
        self.filter.query(&self.ids, LetterStates::Open)
    }
}

/// A reason as given, trimmed; one with nothing to read is refused (exit 2): it would be
/// the record of why.
fn reason(text: &str) -> Result<String, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("say why: the reason is kept as the record of it".into());
    }
    Ok(text.to_string())
}

/// Which dead letters, as the run-history page filters them.
#[derive(Debug, Clone, clap::Args)]
struct Filter {
    /// Only those of this integration.
    #[arg(long)]
    integration: Option<String>,
    /// Only those that failed at this step.
    #[arg(long)]
    step: Option<String>,
    /// Only those that failed since then: a time ago (`2h`) or a time (`2026-12-01`).
    #[arg(long, value_parser = parse_time)]
    since: Option<i64>,
    /// Only those that failed before then, written as for `--since`.
    #[arg(long, value_parser = parse_time)]
    until: Option<i64>,
}

impl Filter {
    fn query(&self, ids: &[i64], states: LetterStates) -> LetterQuery {
        LetterQuery {
            ids: (!ids.is_empty()).then(|| ids.to_vec()),
            integration: self.integration.clone(),
            step: self.step.clone(),
            since: self.since,
            until: self.until,
            states,
            after: None,
            limit: None,
        }
    }
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
        Action::List {
            filter,
            show,
            limit,
            after,
        } => {
            // One more than shown tells whether there is a next page.
            let query = LetterQuery {
                limit: limit.checked_add(1),
                after: *after,
                ..filter.query(&[], *show)
            };
            store
                .letters(&query)
                .map(|letters| list(letters, *limit, args.format))
        }
        Action::Show { id } => {
            let query = LetterQuery {
                ids: Some(vec![*id]),
                states: LetterStates::All,
                ..LetterQuery::default()
            };
            store
                .letters(&query)
                .map(|letters| show(&letters, *id, args.format))
        }
        Action::Replay { chosen, reason } => store
            .replay_matching(&chosen.query(), reason.as_deref())
            .map(|replayed| done("replayed", &replayed, &chosen.ids, args.format)),
        Action::Discard { chosen, reason } => store
            .discard(&chosen.query(), reason)
            .map(|discarded| done("discarded", &discarded, &chosen.ids, args.format)),
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

fn list(
    mut letters: Vec<(i64, DeadLetter)>,
    limit: NonZeroUsize,
    format: Format,
) -> std::io::Result<ExitCode> {
    let more = letters.len() > limit.get();
    letters.truncate(limit.get());
    let mut out = std::io::stdout().lock();
    match format {
        Format::Json => out.write_all(letters_lines(&letters).as_bytes())?,
        Format::Human => {
            for (id, letter) in &letters {
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
            eprintln!("{} dead letter(s)", letters.len());
        }
    }
    if let Some((last, _)) = letters.last().filter(|_| more) {
        eprintln!("more dead letters match: --after {last} lists the next page");
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
        eprintln!("error: no open dead letter #{id}");
    }
    Ok(if missing.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_FAILURE)
    })
}
