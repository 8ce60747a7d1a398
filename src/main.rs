//! The `integ` command line.

use clap::{Parser, Subcommand, ValueEnum};
use integ::diagnostic::{Report, Style, json_record};
use integ::lint::{self, LintedFile};
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

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
    Lint(LintArgs),
}

#[derive(Debug, clap::Args)]
struct LintArgs {
    /// Spec files, or folders searched recursively for `*.integ` files.
    #[arg(default_value = ".")]
    paths: Vec<PathBuf>,
    /// `human` for people, `json` for one JSON object per diagnostic per line.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    format: Format,
    /// Fail (exit 1) on warnings too.
    #[arg(long)]
    deny_warnings: bool,
    /// Colours: `auto` uses them on a terminal unless NO_COLOR is set.
    #[arg(long, value_enum, default_value_t = Color::Auto)]
    color: Color,
}

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

/// Exit codes: 0 clean, 1 problems found, 2 usage error or unreadable input.
const EXIT_PROBLEMS: u8 = 1;
const EXIT_USAGE: u8 = 2;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Lint(args) => run_lint(&args),
    }
}

fn run_lint(args: &LintArgs) -> ExitCode {
    let files = match lint::lint_paths(&args.paths) {
        Ok(files) => files,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let written = match args.format {
        Format::Human => print_human(&files, style(args.color)),
        Format::Json => print_json(&files),
    };
    if let Err(error) = written {
        // A closed pipe (`integ lint | head`) is not worth a message.
        if error.kind() != std::io::ErrorKind::BrokenPipe {
            eprintln!("error: cannot write the report: {error}");
        }
        return ExitCode::from(EXIT_USAGE);
    }
    let (errors, warnings) = lint::count(&files);
    if errors > 0 || (args.deny_warnings && warnings > 0) {
        ExitCode::from(EXIT_PROBLEMS)
    } else {
        ExitCode::SUCCESS
    }
}

fn style(color: Color) -> Style {
    let wanted = match color {
        Color::Always => true,
        Color::Never => false,
        Color::Auto => {
            std::io::stdout().is_terminal()
                && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
        }
    };
    if wanted { Style::Color } else { Style::Plain }
}

fn print_human(files: &[LintedFile], style: Style) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    for file in files {
        let name = file.path.display().to_string();
        for diagnostic in &file.diagnostics {
            write!(
                out,
                "{}",
                Report::new(diagnostic, &name, &file.text).render(style)
            )?;
            writeln!(out)?;
        }
    }
    let (errors, warnings) = lint::count(files);
    eprintln!(
        "{} in {} {}",
        summary(errors, warnings),
        files.len(),
        if files.len() == 1 { "file" } else { "files" }
    );
    Ok(())
}

fn summary(errors: usize, warnings: usize) -> String {
    let plural = |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
    match (errors, warnings) {
        (0, 0) => "no problems".into(),
        (e, 0) => plural(e, "error"),
        (0, w) => plural(w, "warning"),
        (e, w) => format!("{}, {}", plural(e, "error"), plural(w, "warning")),
    }
}

fn print_json(files: &[LintedFile]) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    for file in files {
        let name = file.path.display().to_string();
        for diagnostic in &file.diagnostics {
            writeln!(out, "{}", json_record(diagnostic, &name, &file.text))?;
        }
    }
    Ok(())
}
