//! `integ test`: the test blocks of specs, each against local mock servers.

use super::{
    Color, EXIT_FAILURE, EXIT_USAGE, Format, lint::render, lint::style, use_color, write_failed,
};
use crate::lint::lint_paths;
use crate::plan;
use crate::testing::{TestResult, run_tests};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

#[derive(Debug, clap::Args)]
pub struct TestArgs {
    /// Spec files, or folders searched recursively for `*.integ` files.
    #[arg(default_value = ".")]
    paths: Vec<PathBuf>,
    /// `human` for people, `json` for one JSON object per test per line.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    format: Format,
    /// Colours: `auto` uses them on a terminal unless NO_COLOR is set.
    #[arg(long, value_enum, default_value_t = Color::Auto)]
    color: Color,
}

pub fn run(args: &TestArgs) -> ExitCode {
    let files = match lint_paths(&args.paths) {
        Ok(files) => files,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    if files.iter().any(|f| f.model.is_none()) {
        let broken = files.iter().filter(|f| f.model.is_none());
        let _ = render(broken, style(args.color), &mut std::io::stderr().lock());
        eprintln!("error: specs with errors cannot be tested; `integ lint` explains them");
        return ExitCode::from(EXIT_USAGE);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let color = use_color(args.color);
    let (mut passed, mut failed) = (0, 0);
    let mut out = std::io::stdout().lock();
    for file in &files {
        let Some(model) = &file.model else { continue };
        let base_dir = file.path.parent().unwrap_or(Path::new("."));
        let plan = match plan::compile(model, None, base_dir) {
            Ok(plan) => Arc::new(plan),
            Err(error) => {
                eprintln!("error: {}: {error}", file.path.display());
                return ExitCode::from(EXIT_USAGE);
            }
        };
        for result in runtime.block_on(run_tests(plan)) {
            let written = match result {
                Ok(result) => {
                    if result.passed {
                        passed += 1
                    } else {
                        failed += 1
                    }
                    print(&mut out, &file.path, &result, args.format, color)
                }
                Err(error) => {
                    failed += 1;
                    writeln!(out, "error: {}: {error}", file.path.display())
                }
            };
            if let Err(error) = written {
                return write_failed(&error);
            }
        }
    }
    if matches!(args.format, Format::Human) {
        eprintln!("{passed} passed, {failed} failed");
    }
    if failed > 0 {
        ExitCode::from(EXIT_FAILURE)
    } else {
        ExitCode::SUCCESS
    }
}

fn print(
    out: &mut dyn Write,
    path: &Path,
    result: &TestResult,
    format: Format,
    color: bool,
) -> std::io::Result<()> {
    if let Format::Json = format {
        let record = serde_json::json!({
            "file": path.display().to_string(),
            "test": result.name,
            "passed": result.passed,
            "failures": result.failures,
            "runs": result.runs,
        });
        return writeln!(out, "{record}");
    }
    let paint = |code: &str, text: &str| {
        if color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    };
    let mark = if result.passed {
        paint("32", "✓")
    } else {
        paint("31", "✗")
    };
    writeln!(out, "{mark} {} › {}", path.display(), result.name)?;
    for failure in &result.failures {
        writeln!(out, "    {}", paint("31", failure))?;
    }
    if !result.passed {
        for run in &result.runs {
            for step in &run.steps {
                let error = step
                    .error
                    .as_deref()
                    .map(|e| format!(": {e}"))
                    .unwrap_or_default();
                writeln!(
                    out,
                    "    step {} {}{error}",
                    step.name,
                    step.outcome.as_str()
                )?;
            }
        }
    }
    Ok(())
}
