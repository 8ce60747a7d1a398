//! `integ fmt`: specs rewritten in the canonical layout, or with `--check` the diff of
//! each one that is not.

use super::{EXIT_FAILURE, EXIT_USAGE, write_failed};
use crate::diagnostic::{Diagnostic, DiagnosticKind, Report, Style};
use crate::fmt;
use crate::lint;
use crate::span::Span;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct FmtArgs {
    /// Spec files, or folders searched recursively for `*.integ` files; `-` formats standard
    /// input to standard output.
    #[arg(default_value = ".")]
    paths: Vec<PathBuf>,
    /// Change nothing: print the diff of each spec that is not formatted, and exit 1 if any.
    #[arg(long)]
    check: bool,
}

/// One spec read and formatted in memory.
struct Formatted {
    path: PathBuf,
    text: String,
    result: Result<String, Vec<Diagnostic>>,
}

pub fn run(args: &FmtArgs) -> ExitCode {
    if args.paths.iter().any(|p| p.as_os_str() == "-") {
        return run_stdin(args);
    }
    let files = match lint::spec_files(&args.paths) {
        Ok(files) => files,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let mut formatted = Vec::with_capacity(files.len());
    for path in files {
        match std::fs::read(&path) {
            Ok(bytes) => formatted.push(format_bytes(path, bytes)),
            Err(error) => {
                eprintln!("error: cannot read `{}`: {error}", path.display());
                return ExitCode::from(EXIT_USAGE);
            }
        }
    }
    // A spec that does not parse stops the whole run before anything is written.
    if report_errors(&formatted) {
        return ExitCode::from(EXIT_FAILURE);
    }
    let changed: Vec<(&Formatted, &str)> = formatted
        .iter()
        .filter_map(|f| match &f.result {
            Ok(new) if *new != f.text => Some((f, new.as_str())),
            _ => None,
        })
        .collect();
    if args.check {
        let mut out = std::io::stdout().lock();
        for (file, new) in &changed {
            if let Err(error) = write!(out, "{}", diff(&file.path, &file.text, new)) {
                return write_failed(&error);
            }
        }
        eprintln!(
            "{} of {} specs not formatted",
            changed.len(),
            formatted.len()
        );
        return if changed.is_empty() {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(EXIT_FAILURE)
        };
    }
    for (file, new) in &changed {
        if let Err(error) = replace(&file.path, new) {
            eprintln!("error: cannot write `{}`: {error}", file.path.display());
            return ExitCode::from(EXIT_USAGE);
        }
        eprintln!("formatted {}", file.path.display());
    }
    ExitCode::SUCCESS
}

/// `integ fmt -`: an editor's buffer in, the formatted text out.
fn run_stdin(args: &FmtArgs) -> ExitCode {
    if args.paths.len() > 1 {
        eprintln!("error: `-` (standard input) cannot be given with other paths");
        return ExitCode::from(EXIT_USAGE);
    }
    let mut bytes = Vec::new();
    if let Err(error) = std::io::stdin().lock().read_to_end(&mut bytes) {
        eprintln!("error: cannot read standard input: {error}");
        return ExitCode::from(EXIT_USAGE);
    }
    let file = format_bytes(PathBuf::from("<stdin>"), bytes);
    if report_errors(std::slice::from_ref(&file)) {
        return ExitCode::from(EXIT_FAILURE);
    }
    let new = file.result.as_deref().unwrap_or_default();
    let written = if args.check {
        write!(
            std::io::stdout().lock(),
            "{}",
            diff(&file.path, &file.text, new)
        )
    } else {
        write!(std::io::stdout().lock(), "{new}")
    };
    if let Err(error) = written {
        return write_failed(&error);
    }
    if args.check && new != file.text {
        ExitCode::from(EXIT_FAILURE)
    } else {
        ExitCode::SUCCESS
    }
}

/// A spec that begins with a byte-order mark is formatted without it (the canonical text
/// has none), so it counts as changed; its diagnostics are placed in the text after it.
fn format_bytes(path: PathBuf, bytes: Vec<u8>) -> Formatted {
    match String::from_utf8(bytes) {
        Ok(text) => {
            let body = text.strip_prefix('\u{feff}').unwrap_or(&text);
            match fmt::format(body) {
                Ok(formatted) => Formatted {
                    path,
                    text,
                    result: Ok(formatted),
                },
                Err(diagnostics) => Formatted {
                    path,
                    text: body.to_string(),
                    result: Err(diagnostics),
                },
            }
        }
        Err(error) => {
            let at = error.utf8_error().valid_up_to();
            let text = String::from_utf8_lossy(error.as_bytes()).into_owned();
            let not_utf8 = Diagnostic::new(DiagnosticKind::NotUtf8, Span::new(at, at + 1));
            Formatted {
                path,
                text,
                result: Err(vec![not_utf8]),
            }
        }
    }
}

/// Prints the diagnostics of the specs that could not be formatted; whether there were any.
fn report_errors(files: &[Formatted]) -> bool {
    let mut any = false;
    for file in files {
        if let Err(diagnostics) = &file.result {
            any = true;
            let name = file.path.display().to_string();
            for diagnostic in diagnostics {
                eprintln!(
                    "{}",
                    Report::new(diagnostic, &name, &file.text).render(Style::Plain)
                );
            }
            eprintln!("error: `{name}` has syntax errors and was not formatted");
        }
    }
    any
}

/// A unified diff from the file as it is to the file formatted.
fn diff(path: &Path, old: &str, new: &str) -> String {
    let name = path.display().to_string();
    similar::TextDiff::from_lines(old, new)
        .unified_diff()
        .context_radius(3)
        .header(&name, &format!("{name} (formatted)"))
        .to_string()
}

/// Replaces a file's text through a file beside it renamed over it, so that a failed write
/// never leaves half a spec; the file keeps its permissions.
fn replace(path: &Path, text: &str) -> std::io::Result<()> {
    let permissions = std::fs::metadata(path)?.permissions();
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".fmt-tmp");
    let temporary = PathBuf::from(temporary);
    let written = std::fs::write(&temporary, text)
        .and_then(|()| std::fs::set_permissions(&temporary, permissions))
        .and_then(|()| std::fs::rename(&temporary, path));
    if written.is_err() {
        let _ = std::fs::remove_file(&temporary);
    }
    written
}
