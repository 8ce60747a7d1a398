//! `integ doc`: write, print or check the generated documentation of specs.

use super::lint::{render, style};
use super::{Color, EXIT_FAILURE, EXIT_USAGE, write_failed};
use crate::doc::{self, Doc, Options};
use crate::lint::{self, LintedFile};
use crate::serve::PublicUrl;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct DocArgs {
    /// Spec files, or folders searched recursively for `*.integ` files.
    #[arg(default_value = ".")]
    paths: Vec<PathBuf>,
    /// Write `NAME.md` (or `NAME.json`) per integration, and `integrations-index.md`, into this folder;
    /// without it the documents are printed.
    #[arg(long)]
    out: Option<PathBuf>,
    /// `md` for GitHub-flavoured Markdown, `json` for the same content for programs.
    #[arg(long, value_enum, default_value_t = DocFormat::Md)]
    format: DocFormat,
    /// Write nothing: print how each stale file differs and exit 1 if one does (for CI).
    #[arg(long, requires = "out")]
    check: bool,
    /// The base URL senders reach `integ serve` at (as `integ serve --public-url`), to show
    /// each webhook's full URL.
    #[arg(long, value_parser = PublicUrl::fixed)]
    public_url: Option<PublicUrl>,
    /// Colours of the diagnostics of a spec with errors.
    #[arg(long, value_enum, default_value_t = Color::Auto)]
    color: Color,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum DocFormat {
    Md,
    Json,
}

/// A file the command would write, with what it holds.
struct Output {
    path: PathBuf,
    text: String,
}

pub fn run(args: &DocArgs) -> ExitCode {
    let files = match lint::lint_paths(&args.paths) {
        Ok(files) => files,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let with_errors: Vec<&LintedFile> = files.iter().filter(|f| f.model.is_none()).collect();
    if !with_errors.is_empty() {
        let _ = render(
            with_errors.iter().copied(),
            style(args.color),
            &mut std::io::stderr().lock(),
        );
        eprintln!("error: specs with errors have no documentation; `integ lint` explains them");
        return ExitCode::from(EXIT_USAGE);
    }
    let options = Options {
        public_url: match &args.public_url {
            Some(PublicUrl::Fixed(base)) => Some(base.clone()),
            _ => None,
        },
    };
    let cwd = std::env::current_dir().ok();
    let docs: Vec<Doc> = files
        .iter()
        .filter_map(|file| {
            let model = file.model.as_ref()?;
            let spec = doc::spec_path(&file.path, cwd.as_deref());
            Some(doc::document(
                model,
                &file.text,
                &file.comments,
                &spec,
                &options,
            ))
        })
        .collect();
    let Some(out) = &args.out else {
        return print(&docs, args.format);
    };
    let outputs = match outputs(&docs, out, args.format) {
        Ok(outputs) => outputs,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let leftovers = match leftovers(out, &outputs, args.format) {
        Ok(leftovers) => leftovers,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    if args.check {
        check(&outputs, &leftovers)
    } else {
        let code = write(&outputs, out);
        for leftover in &leftovers {
            eprintln!("warning: {}", leftover_note(leftover));
        }
        code
    }
}

/// The files `integ doc` wrote in `out` (they carry its marker) for integrations the specs
/// no longer have: what a renamed or deleted integration leaves behind. Files of this
/// format only (`NAME.json` is not stale for a Markdown run), never a file people wrote.
fn leftovers(out: &Path, outputs: &[Output], format: DocFormat) -> Result<Vec<PathBuf>, String> {
    let extension = match format {
        DocFormat::Md => "md",
        DocFormat::Json => "json",
    };
    let entries = match std::fs::read_dir(out) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(format!("cannot read `{}`: {e}", out.display())),
    };
    let mut leftovers = Vec::new();
    for entry in entries {
        let path = entry
            .map_err(|e| format!("cannot read `{}`: {e}", out.display()))?
            .path();
        let ours = path.is_file()
            && path.extension().is_some_and(|e| e == extension)
            && !outputs.iter().any(|output| output.path == path);
        if ours && read(&path)?.is_some_and(|text| doc::is_generated(&text)) {
            leftovers.push(path);
        }
    }
    leftovers.sort();
    Ok(leftovers)
}

fn leftover_note(path: &Path) -> String {
    let name = path.file_stem().unwrap_or_default().to_string_lossy();
    if path.file_name().is_some_and(|n| n == "index.md") {
        return format!(
            "`{path}` is the index an earlier `integ doc` wrote (it is `{}` now): delete it \
            (`git rm '{path}'`)",
            doc::INDEX_FILE,
            path = path.display()
        );
    }
    format!(
        "`{path}` documents `{name}`, an integration none of the specs has (renamed or \
        removed): delete it (`git rm '{path}'`), after moving any hand-written text it holds",
        path = path.display()
    )
}

fn print(docs: &[Doc], format: DocFormat) -> ExitCode {
    let mut stdout = std::io::stdout().lock();
    for doc in docs {
        let text = match format {
            DocFormat::Md => doc::markdown(doc, None).map(|md| md + "\n"),
            DocFormat::Json => Ok(doc::json_line(doc)),
        };
        let text = match text {
            Ok(text) => text,
            Err(error) => {
                eprintln!("error: {error}");
                return ExitCode::from(EXIT_USAGE);
            }
        };
        if let Err(error) = stdout.write_all(text.as_bytes()) {
            return write_failed(&error);
        }
    }
    ExitCode::SUCCESS
}

/// Every file of `--out`, hand-written blocks of the files there kept.
fn outputs(docs: &[Doc], out: &Path, format: DocFormat) -> Result<Vec<Output>, String> {
    let mut outputs = Vec::new();
    for doc in docs {
        let name = &doc.overview.integration;
        let output = match format {
            DocFormat::Md => {
                let path = out.join(format!("{name}.md"));
                let previous = read(&path)?;
                let text = doc::markdown(doc, previous.as_deref())
                    .map_err(|e| format!("`{}`: {e}; fix the markers first", path.display()))?;
                Output {
                    path,
                    text: text + "\n",
                }
            }
            DocFormat::Json => Output {
                path: out.join(format!("{name}.json")),
                text: doc::json(doc),
            },
        };
        outputs.push(output);
    }
    if format == DocFormat::Md {
        outputs.push(Output {
            path: out.join(doc::INDEX_FILE),
            text: doc::index(docs) + "\n",
        });
    }
    Ok(outputs)
}

/// The file as it is, or `None` when there is none yet.
fn read(path: &Path) -> Result<Option<String>, String> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("cannot read `{}`: {e}", path.display())),
    }
}

/// Exit 1 and a unified diff for each file that is missing or differs, and a note for each
/// file left by an integration that is gone.
fn check(outputs: &[Output], leftovers: &[PathBuf]) -> ExitCode {
    for leftover in leftovers {
        eprintln!("error: {}", leftover_note(leftover));
    }
    let mut stale = 0;
    let mut stdout = std::io::stdout().lock();
    for output in outputs {
        let current = match read(&output.path) {
            Ok(current) => current,
            Err(error) => {
                eprintln!("error: {error}");
                return ExitCode::from(EXIT_USAGE);
            }
        };
        if current.as_deref() == Some(output.text.as_str()) {
            continue;
        }
        stale += 1;
        let name = output.path.display().to_string();
        let diff = similar::TextDiff::from_lines(current.as_deref().unwrap_or(""), &output.text)
            .unified_diff()
            .header(&name, &format!("{name} (generated)"))
            .to_string();
        if let Err(error) = stdout.write_all(diff.as_bytes()) {
            return write_failed(&error);
        }
    }
    if stale == 0 && leftovers.is_empty() {
        eprintln!("{} files up to date", outputs.len());
        return ExitCode::SUCCESS;
    }
    if stale == 0 {
        return ExitCode::from(EXIT_FAILURE);
    }
    eprintln!(
        "error: {stale} of {} files are out of date: run `integ doc` with the same paths and \
        --out to update them",
        outputs.len()
    );
    ExitCode::from(EXIT_FAILURE)
}

/// Writes the files that changed (an unchanged file is not touched).
fn write(outputs: &[Output], out: &Path) -> ExitCode {
    if let Err(error) = std::fs::create_dir_all(out) {
        eprintln!("error: cannot create `{}`: {error}", out.display());
        return ExitCode::from(EXIT_USAGE);
    }
    let mut written = 0;
    for output in outputs {
        if matches!(read(&output.path), Ok(Some(current)) if current == output.text) {
            continue;
        }
        if let Err(error) = std::fs::write(&output.path, &output.text) {
            eprintln!("error: cannot write `{}`: {error}", output.path.display());
            return ExitCode::from(EXIT_USAGE);
        }
        written += 1;
    }
    eprintln!(
        "{written} of {} files written in `{}`",
        outputs.len(),
        out.display()
    );
    ExitCode::SUCCESS
}
