//! Golden tests: each case in `tests/lint/` is a broken spec (or a folder of specs linted
//! together) beside the plain-text rendering of its diagnostics (`.out`).
//!
//! A case's first line names the codes it must produce (`# expect: E102 W003`), so a careless
//! regeneration cannot turn a test green by dropping a diagnostic. Regenerate the `.out`
//! files with `INTEG_BLESS=1 cargo test --test lint_golden`, then review the diff like code.

use integ::diagnostic::{Report, Style};
use integ::lint::{LintedFile, lint_paths};
use std::path::{Path, PathBuf};

#[test]
fn every_case_renders_as_its_golden_file() {
    // Relative (tests run in the package folder), so that a message naming another case
    // file (a webhook clash) reads the same, and wraps the same, in every checkout.
    let root = Path::new("tests/lint");
    let bless = std::env::var_os("INTEG_BLESS").is_some();
    let mut failures = Vec::new();
    let cases = cases(root);
    for case in &cases {
        let rendered = render(root, &lint(case));
        let golden = case.with_extension("out");
        let name = case
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        for code in expected_codes(case) {
            if !rendered.contains(&format!("\n{code}\n"))
                && !rendered.starts_with(&format!("{code}\n"))
            {
                failures.push(format!("{name}: expected a {code} diagnostic"));
            }
        }
        if bless {
            std::fs::write(&golden, &rendered).unwrap_or_else(|e| panic!("{golden:?}: {e}"));
            continue;
        }
        match std::fs::read_to_string(&golden) {
            Ok(expected) if expected == rendered => {}
            Ok(expected) => failures.push(format!(
                "{name}: rendering differs from {}\n{}",
                golden.display(),
                line_diff(&expected, &rendered)
            )),
            Err(_) => failures.push(format!("{name}: no golden file {}", golden.display())),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    assert!(cases.len() >= 40, "only {} lint cases", cases.len());
}

/// Every `.integ` file and every folder directly under `root`, sorted.
fn cases(root: &Path) -> Vec<PathBuf> {
    let entries = std::fs::read_dir(root).unwrap_or_else(|e| panic!("{root:?}: {e}"));
    let mut cases: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.is_dir() || path.extension().is_some_and(|e| e == "integ"))
        .collect();
    cases.sort();
    cases
}

fn lint(case: &Path) -> Vec<LintedFile> {
    lint_paths(&[case.to_path_buf()]).unwrap_or_else(|e| panic!("{e}"))
}

/// The codes named by `# expect:` in the case's first file.
fn expected_codes(case: &Path) -> Vec<String> {
    let first = if case.is_dir() {
        cases(case).into_iter().next()
    } else {
        Some(case.to_path_buf())
    };
    // Lossy: the case for invalid UTF-8 still has a readable first line.
    let bytes = first
        .and_then(|f| std::fs::read(f).ok())
        .unwrap_or_default();
    let text = String::from_utf8_lossy(&bytes);
    let line = text.lines().next().unwrap_or_default();
    let codes = line
        .strip_prefix("# expect:")
        .unwrap_or_else(|| panic!("{case:?}: no `# expect:` line"));
    codes.split_whitespace().map(String::from).collect()
}

fn render(root: &Path, files: &[LintedFile]) -> String {
    let mut out = String::new();
    for file in files {
        let name = file
            .path
            .strip_prefix(root)
            .unwrap_or(&file.path)
            .display()
            .to_string();
        for diagnostic in &file.diagnostics {
            out.push_str(&Report::new(diagnostic, &name, &file.text).render(Style::Plain));
            out.push('\n');
        }
    }
    if out.is_empty() {
        "no diagnostics\n".into()
    } else {
        out
    }
}

fn line_diff(expected: &str, actual: &str) -> String {
    let diff = pretty_assertions::StrComparison::new(expected, actual);
    format!("{diff}")
}
