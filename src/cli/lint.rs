//! `integ lint`.

use super::{Color, EXIT_FAILURE, EXIT_USAGE, use_color, write_failed};
use crate::diagnostic::{Report, SarifFile, SarifLinks, Style, json_record, sarif_log};
use crate::lint::{self, LintedFile};
use std::io::Write;
use std::path::{Component, Path, PathBuf};
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct LintArgs {
    /// Spec files, or folders searched recursively for `*.integ` files.
    #[arg(default_value = ".")]
    paths: Vec<PathBuf>,
    /// `human` for people, `json` for one JSON object per diagnostic per line, `sarif` for
    /// one SARIF 2.1.0 log (CI systems that show diagnostics inline, e.g. GitHub code
    /// scanning).
    #[arg(long, value_enum, default_value_t = LintFormat::Human)]
    format: LintFormat,
    /// With `--format sarif`: where integ's `docs/language.md` is published (an absolute
    /// URL); each rule then links to its code's section there (`helpUri`).
    #[arg(long, value_name = "URL", value_parser = docs_url)]
    docs_url: Option<String>,
    /// Fail (exit 1) on warnings too.
    #[arg(long)]
    deny_warnings: bool,
    /// Colours: `auto` uses them on a terminal unless NO_COLOR is set.
    #[arg(long, value_enum, default_value_t = Color::Auto)]
    color: Color,
}

/// Output for people or for programs.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum LintFormat {
    Human,
    Json,
    Sarif,
}

/// An absolute URL without a fragment: the rules' links add theirs.
fn docs_url(text: &str) -> Result<String, String> {
    let url = reqwest::Url::parse(text).map_err(|error| format!("not an absolute URL: {error}"))?;
    if url.fragment().is_some() {
        return Err("the URL must not have a fragment (`#...`): each rule adds its own".into());
    }
    Ok(url.to_string())
}

pub fn run(args: &LintArgs) -> ExitCode {
    if args.docs_url.is_some() && !matches!(args.format, LintFormat::Sarif) {
        eprintln!("error: --docs-url is for --format sarif, whose rules it links");
        return ExitCode::from(EXIT_USAGE);
    }
    let files = match lint::lint_paths(&args.paths) {
        Ok(files) => files,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let written = match args.format {
        LintFormat::Human => print_human(&files, style(args.color)),
        LintFormat::Json => print_json(&files),
        LintFormat::Sarif => print_sarif(&files, args.docs_url.as_deref()),
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

fn print_sarif(files: &[LintedFile], docs_url: Option<&str>) -> std::io::Result<()> {
    let root = std::env::current_dir().ok();
    let paths: Vec<PathBuf> = files
        .iter()
        .map(|file| match &root {
            Some(root) => relative_to(&file.path, root),
            None => file.path.clone(),
        })
        .collect();
    let files: Vec<SarifFile<'_>> = files
        .iter()
        .zip(&paths)
        .map(|(file, path)| SarifFile {
            path,
            text: &file.text,
            diagnostics: &file.diagnostics,
        })
        .collect();
    let links = SarifLinks {
        root: root.as_deref(),
        docs_url,
    };
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, &sarif_log(&files, &links))?;
    writeln!(out)
}

/// `path` relative to `root` when it lies under it, else absolute; `.` and `..` resolved
/// by name, not through symbolic links, so a link in the checkout keeps its own path.
fn relative_to(path: &Path, root: &Path) -> PathBuf {
    let mut absolute = PathBuf::new();
    for component in root.join(path).components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                absolute.pop();
            }
            other => absolute.push(other),
        }
    }
    match absolute.strip_prefix(root) {
        Ok(relative) => relative.to_path_buf(),
        Err(_) => absolute,
    }
}
