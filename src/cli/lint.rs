//! `integ lint`.

use super::{Color, EXIT_FAILURE, EXIT_USAGE, Format, use_color, write_failed};
use crate::diagnostic::{Report, Style, json_record};
use crate::lint::{self, LintedFile};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct LintArgs {
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

pub fn run(args: &LintArgs) -> ExitCode {
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
        return write_failed(&error);
    }
    let (errors, warnings) = lint::count(&files);
    if errors > 0 || (args.deny_warnings && warnings > 0) {
        ExitCode::from(EXIT_FAILURE)
    } else {
        ExitCode::SUCCESS
    }
}

pub(super) fn style(color: Color) -> Style {
    if use_color(color) {
        Style::Color
    } else {
        Style::Plain
    }
}

/// Every diagnostic of `files`, rendered for people, to `out`.
pub(super) fn render<'a>(
    files: impl IntoIterator<Item = &'a LintedFile>,
    style: Style,
    out: &mut dyn Write,
) -> std::io::Result<()> {
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
    Ok(())
}

fn print_human(files: &[LintedFile], style: Style) -> std::io::Result<()> {
    render(files, style, &mut std::io::stdout().lock())?;
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
