//! The boundaries ARCHITECTURE.md promises, checked on the source: data flows one way
//! through the pipeline, and only the command line prints.

use std::path::{Path, PathBuf};

/// The top-level modules in pipeline order: each may use only those before it.
const PIPELINE: &[&str] = &[
    "span",
    "telemetry",
    "diagnostic",
    "secrets",
    "ast",
    "syntax",
    "fmt",
    "model",
    "check",
    "plan",
    "engine",
    "webhook",
    "store",
    "mock",
    "testing",
    "serve",
    "doc",
    "lint",
    "cli",
];

/// Modules compiled for unit tests only, outside the pipeline: any stage's tests may use
/// them, and they use nothing of the crate.
const TEST_ONLY: &[&str] = &["scratch"];

/// Every `.rs` file under `path` (or `path` itself), with its text.
fn sources(path: &Path) -> Vec<(PathBuf, String)> {
    if path.is_file() {
        let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
        return vec![(path.to_path_buf(), text)];
    }
    let mut files = Vec::new();
    let entries = std::fs::read_dir(path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    for entry in entries {
        let entry = entry.unwrap_or_else(|e| panic!("{path:?}: {e}"));
        let child = entry.path();
        if child.is_dir() || child.extension().is_some_and(|e| e == "rs") {
            files.extend(sources(&child));
        }
    }
    files
}

/// The files of top-level module `name`: `src/name.rs` or the folder `src/name/`.
fn module(name: &str) -> Vec<(PathBuf, String)> {
    let file = PathBuf::from(format!("src/{name}.rs"));
    if file.exists() {
        sources(&file)
    } else {
        sources(&PathBuf::from(format!("src/{name}")))
    }
}

/// The top-level modules named in `crate::NAME` and `crate::{NAME, ...}` paths of `text`.
fn uses(text: &str) -> Vec<&str> {
    let name = |rest: &str| -> usize {
        rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(rest.len())
    };
    let mut used = Vec::new();
    for (at, prefix) in text.match_indices("crate::") {
        let rest = &text[at + prefix.len()..];
        match rest.strip_prefix('{') {
            // Only the names at the top of the braces are modules.
            Some(list) => {
                let mut depth = 0;
                let mut start = 0;
                for (i, c) in list.char_indices() {
                    match c {
                        '{' => depth += 1,
                        '}' if depth == 0 => break,
                        '}' => depth -= 1,
                        ',' if depth == 0 => start = i + 1,
                        _ => {}
                    }
                    if i == start && depth == 0 {
                        let item = list[i..].trim_start();
                        used.push(&item[..name(item)]);
                    }
                }
            }
            None => used.push(&rest[..name(rest)]),
        }
    }
    used.retain(|m| !m.is_empty());
    used
}

#[test]
fn uses_reads_paths_and_brace_lists() {
    assert_eq!(uses("use crate::plan::Plan;"), ["plan"]);
    assert_eq!(
        uses("use crate::{engine::Engine, plan::{self, Plan}, store};"),
        ["engine", "plan", "store"]
    );
}

#[test]
fn no_stage_reaches_back_into_a_later_one() {
    let mut wrong = Vec::new();
    for (index, name) in PIPELINE.iter().enumerate() {
        let files = module(name);
        assert!(!files.is_empty(), "module {name} has no files");
        for (path, text) in files {
            for used in uses(&text).into_iter().filter(|u| !TEST_ONLY.contains(u)) {
                let position = PIPELINE.iter().position(|m| *m == used);
                if position.is_none_or(|p| p >= index) && used != *name {
                    wrong.push(format!("{} uses crate::{used}", path.display()));
                }
            }
        }
    }
    for name in TEST_ONLY {
        for (path, text) in module(name) {
            let used = uses(&text);
            assert!(used.is_empty(), "{} uses {used:?}", path.display());
        }
    }
    assert!(
        wrong.is_empty(),
        "against the pipeline's direction: {wrong:#?}"
    );
}

#[test]
fn every_module_has_its_place_in_the_pipeline() {
    let lib = std::fs::read_to_string("src/lib.rs").unwrap();
    let declared: Vec<&str> = lib
        .lines()
        .filter_map(|line| line.strip_prefix("pub mod "))
        .map(|rest| rest.trim_end_matches(';'))
        .collect();
    let mut sorted: Vec<&str> = PIPELINE.to_vec();
    sorted.sort_unstable();
    assert_eq!(declared, sorted, "src/lib.rs and PIPELINE disagree");
}

#[test]
fn only_the_command_line_prints() {
    let printing: Vec<String> = sources(Path::new("src"))
        .into_iter()
        .filter(|(path, _)| !path.starts_with("src/cli"))
        .filter(|(_, text)| {
            ["println!", "eprintln!", "print!(", "eprint!(", "dbg!("]
                .iter()
                .any(|m| text.contains(m))
        })
        .map(|(path, _)| path.display().to_string())
        .collect();
    assert!(
        printing.is_empty(),
        "only src/cli prints; these print too: {printing:?}"
    );
}

/// The files of the SQLite backend (`src/store/sqlite*.rs`, `src/store/sqlite/`, and its
/// migrations): the only ones that may name SQLite's crate.
fn sqlite_backend(path: &Path) -> bool {
    let in_store = path.parent() == Some(Path::new("src/store"));
    let named = path
        .file_name()
        .and_then(|name| name.to_str())
        .is_some_and(|name| name.starts_with("sqlite"));
    (in_store && named)
        || path.starts_with("src/store/sqlite")
        || path == Path::new("src/store/schema.rs")
}

#[test]
fn only_the_sqlite_backend_knows_sqlite() {
    // The store's contracts and errors are backend-neutral, so that another backend (Redis)
    // serves every command unchanged.
    let leaking: Vec<String> = sources(Path::new("src"))
        .into_iter()
        .filter(|(path, _)| !sqlite_backend(path))
        .filter(|(_, text)| text.contains("rusqlite"))
        .map(|(path, _)| path.display().to_string())
        .collect();
    assert!(
        leaking.is_empty(),
        "only the SQLite backend may name rusqlite: {leaking:?}"
    );
}

#[test]
fn every_command_opens_the_state_through_store_open() {
    // One way to open the state, whichever backend `--state` names.
    let naming: Vec<String> = sources(Path::new("src"))
        .into_iter()
        .filter(|(path, _)| !path.starts_with("src/store"))
        // A unit test may set up the backend it needs; what ships may not.
        .filter(|(_, text)| {
            let shipped = text.split("#[cfg(test)]").next().unwrap_or_default();
            shipped.contains("SqliteStore")
        })
        .map(|(path, _)| path.display().to_string())
        .collect();
    assert!(
        naming.is_empty(),
        "outside src/store, open the state with store::open: {naming:?}"
    );
}
