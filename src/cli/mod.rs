//! The `integ` command line: argument parsing and output. Only this module prints.

mod dlq;
mod doc;
mod fmt;
mod lint;
mod load;
mod progress;
mod run;
mod runs;
mod serve;
mod test;
mod triggers;

use crate::store::{self, Location, Store, StoreError};
use clap::{Parser, Subcommand, ValueEnum};
use std::ffi::OsStr;
use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::Arc;

/// integ: SaaS integrations as reviewed text files.
#[derive(Debug, Parser)]
#[command(name = "integ", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check specs and report every problem, without touching the network.
    Lint(lint::LintArgs),
    /// Rewrite specs in the canonical layout (`--check`: print the diff, change nothing).
    Fmt(fmt::FmtArgs),
    /// Run a spec once for one event (the manual trigger) and print what each step did.
    Run(run::RunArgs),
    /// Run the specs' `test` blocks against local mock servers.
    Test(test::TestArgs),
    /// Generate the documentation of specs (Markdown or JSON), or check it is current.
    Doc(doc::DocArgs),
    /// Serve the specs' webhooks into a durable inbox and run the events.
    Serve(serve::ServeArgs),
    /// Inspect, replay or purge the dead letters of a state store.
    Dlq(dlq::DlqArgs),
    /// The run history of a state store.
    Runs(runs::RunsArgs),
    /// Each trigger's health: last success, last error, failures in a row, counts.
    Triggers(triggers::TriggersArgs),
}

/// Output for people or for programs.
#[derive(Clone, Copy, Debug, ValueEnum)]
enum Format {
    Human,
    Json,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Color {
    Auto,
    Always,
    Never,
}

/// Exit codes: 0 ok, 1 the work failed (problems found, a run failed), 2 usage error or
/// unusable input (a bad flag, an unreadable file, a spec with errors for `run`).
const EXIT_FAILURE: u8 = 1;
const EXIT_USAGE: u8 = 2;

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Lint(args) => lint::run(&args),
        Command::Fmt(args) => fmt::run(&args),
        Command::Run(args) => run::run(&args),
        Command::Test(args) => test::run(&args),
        Command::Serve(args) => serve::run(&args),
        Command::Doc(args) => doc::run(&args),
        Command::Dlq(args) => dlq::run(&args),
        Command::Runs(args) => runs::run(&args),
        Command::Triggers(args) => triggers::run(&args),
    }
}

/// Colour when asked, or on a terminal without `NO_COLOR`.
fn use_color(color: Color) -> bool {
    match color {
        Color::Always => true,
        Color::Never => false,
        Color::Auto => {
            std::io::stdout().is_terminal()
                && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
        }
    }
}

/// The state store `--state` names, for the commands that read or mend it: one that does
/// not exist is not created.
fn existing_store(state: &OsStr) -> Result<Arc<dyn Store>, StoreError> {
    store::open_existing(&Location::parse(state)?)
}

/// A closed pipe (`integ ... | head`) is not worth a message.
fn write_failed(error: &std::io::Error) -> ExitCode {
    if error.kind() != std::io::ErrorKind::BrokenPipe {
        eprintln!("error: cannot write the output: {error}");
    }
    ExitCode::from(EXIT_USAGE)
}

/// A time of the state store (seconds since the Unix epoch) as people read it, in UTC.
fn time(seconds: i64) -> String {
    chrono::DateTime::from_timestamp(seconds, 0).map_or_else(
        || seconds.to_string(),
        |t| t.format("%Y-%m-%d %H:%M:%SZ").to_string(),
    )
}

/// `text` on one line of at most `max` characters: its lines joined, runs of spaces made
/// one, cut with `…` (a command that shows one record has the whole of it).
fn one_line(text: &str, max: usize) -> String {
    let joined = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match joined.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &joined[..cut]),
        None => joined,
    }
}

#[cfg(test)]
mod tests {
    use super::one_line;

    #[test]
    fn one_line_keeps_the_first_line_and_cuts_long_ones() {
        assert_eq!(one_line("short", 10), "short");
        assert_eq!(
            one_line("first\n  {% if x %}\nmore", 30),
            "first {% if x %} more"
        );
        assert_eq!(one_line("first\n  {% if x %}\nmore", 10), "first {% i…");
        assert_eq!(
            one_line("é".repeat(12).as_str(), 10),
            format!("{}…", "é".repeat(10))
        );
    }
}
