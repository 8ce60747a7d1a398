//! Linting: read spec files, parse and check each, then the checks across files.

use crate::check;
use crate::diagnostic::{Diagnostic, DiagnosticKind, Severity};
use crate::model::Integration;
use crate::span::Span;
use crate::syntax;
use std::path::{Path, PathBuf};

/// One spec file with what lint found in it.
#[derive(Debug)]
pub struct LintedFile {
    /// The path as the user wrote it or as found under a folder they named.
    pub path: PathBuf,
    pub text: String,
    pub diagnostics: Vec<Diagnostic>,
    /// The checked model, when the spec has no errors.
    pub model: Option<Integration>,
    /// Where the spec's `# comments` are, so that text shown as written can leave them out
    /// (`integ doc`).
    pub comments: Vec<Span>,
}

/// Paths that give no specs to lint: a usage problem, not a spec problem.
#[derive(Debug, thiserror::Error)]
pub enum PathsError {
    #[error("cannot read `{}`: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Folders without a single spec: most likely a mistyped path, which must not pass
    /// as "no problems".
    #[error("no .integ files found in {}", list(.0))]
    NoSpecs(Vec<PathBuf>),
}

fn list(paths: &[PathBuf]) -> String {
    let names: Vec<String> = paths.iter().map(|p| format!("`{}`", p.display())).collect();
    names.join(", ")
}

/// Lints every `.integ` file named or found (recursively) under the folders named.
pub fn lint_paths(paths: &[PathBuf]) -> Result<Vec<LintedFile>, PathsError> {
    let sources = spec_files(paths)?
        .into_iter()
        .map(|path| match std::fs::read(&path) {
            Ok(bytes) => Ok((path, bytes)),
            Err(source) => Err(PathsError::Read { path, source }),
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(lint_bytes(sources))
}

/// Lints specs given as bytes, a leading byte-order mark left out; text that is not UTF-8
/// gets a diagnostic at the first bad byte, with the rest shown lossily.
pub fn lint_bytes(sources: Vec<(PathBuf, Vec<u8>)>) -> Vec<LintedFile> {
    let mut invalid = Vec::new();
    let texts = sources
        .into_iter()
        .map(|(path, mut bytes)| {
            if bytes.starts_with(syntax::BOM) {
                bytes.drain(..syntax::BOM.len());
            }
            (path, bytes)
        })
        .enumerate()
        .map(|(index, (path, bytes))| match String::from_utf8(bytes) {
            Ok(text) => (path, text),
            Err(error) => {
                let at = error.utf8_error().valid_up_to();
                invalid.push((
                    index,
                    Diagnostic::new(DiagnosticKind::NotUtf8, Span::new(at, at + 1)),
                ));
                (path, String::from_utf8_lossy(error.as_bytes()).into_owned())
            }
        })
        .collect();
    let mut linted = lint_sources(texts);
    for (index, diagnostic) in invalid {
        if let Some(file) = linted.get_mut(index) {
            file.diagnostics.insert(0, diagnostic);
        }
    }
    linted
}

/// Lints specs given as text, each with the path it is reported under.
pub fn lint_sources(sources: Vec<(PathBuf, String)>) -> Vec<LintedFile> {
    let mut across = check::AcrossSpecs::default();
    let mut linted: Vec<LintedFile> = sources
        .into_iter()
        .enumerate()
        .map(|(file_index, (path, text))| {
            let (spec, mut diagnostics) = syntax::parse(&text);
            let mut model = None;
            if let Some(spec) = &spec {
                diagnostics.extend(check::check(spec));
                if !diagnostics.iter().any(|d| d.severity() == Severity::Error) {
                    match check::lower(spec) {
                        Ok(lowered) => model = Some(lowered),
                        Err(bug) => diagnostics.push(*bug),
                    }
                }
            }
            if let Some(spec) = &spec {
                across.add(file_index, &path.display().to_string(), &text, spec);
            }
            let comments = spec
                .iter()
                .flat_map(|spec| spec.comments.iter().map(|c| c.span))
                .collect();
            LintedFile {
                path,
                text,
                diagnostics,
                model,
                comments,
            }
        })
        .collect();
    for (file, diagnostic) in across.clashes() {
        if let Some(linted) = linted.get_mut(file) {
            linted.diagnostics.push(diagnostic);
            linted.model = None;
        }
    }
    for file in &mut linted {
        // Advice waits until the errors, which come first, are fixed.
        if file
            .diagnostics
            .iter()
            .any(|d| d.severity() == Severity::Error)
        {
            file.diagnostics.retain(|d| !d.kind.is_advice());
        }
        file.diagnostics.sort_by_key(|d| (d.span.start, d.code()));
    }
    linted
}

/// Every `.integ` file named, or found (recursively, in name order) under the folders named.
pub fn spec_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, PathsError> {
    let mut files = Vec::new();
    for path in paths {
        collect(path, &mut files)?;
    }
    if files.is_empty() {
        return Err(PathsError::NoSpecs(paths.to_vec()));
    }
    Ok(files)
}

fn collect(path: &Path, files: &mut Vec<PathBuf>) -> Result<(), PathsError> {
    let error = |source| PathsError::Read {
        path: path.to_path_buf(),
        source,
    };
    let metadata = std::fs::metadata(path).map_err(error)?;
    if !metadata.is_dir() {
        files.push(path.to_path_buf());
        return Ok(());
    }
    let mut entries = std::fs::read_dir(path)
        .map_err(error)?
        .map(|entry| entry.map(|e| e.path()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(error)?;
    entries.sort();
    for entry in entries {
        if entry.is_dir() || entry.extension().is_some_and(|ext| ext == "integ") {
            collect(&entry, files)?;
        }
    }
    Ok(())
}

/// Counts of errors and warnings over many files.
pub fn count(files: &[LintedFile]) -> (usize, usize) {
    let all = files.iter().flat_map(|f| &f.diagnostics);
    all.fold((0, 0), |(errors, warnings), d| match d.severity() {
        Severity::Error => (errors + 1, warnings),
        Severity::Warning => (errors, warnings + 1),
    })
}
