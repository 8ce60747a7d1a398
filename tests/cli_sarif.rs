//! `integ lint --format sarif` through the built binary: a SARIF 2.1.0 log that the
//! standard's JSON schema accepts (`tests/sarif/`, formats such as `uri` checked too), with
//! our codes as rules, exact regions in UTF-16 columns, levels, and paths as URIs that
//! resolve back to the files.

use serde_json::Value;
mod common;

use common::{workdir, write};
use std::path::Path;

/// An error (E103, after a 4-byte and a 2-byte character on its line) and a warning (W003).
const BROKEN: &str = r#"integration broken {
  connection api { base_url "https://api.example.com" auth none }
  connection idle { base_url "https://idle.example.com" auth none }
  trigger manual
  step get = api GET "/😀é/{{ steps.nope.id }}"
}
"#;

const CLEAN: &str = r#"integration clean {
  connection api { base_url "https://api.example.com" auth none }
  trigger manual
  step get = api GET "/things"
}
"#;

const WARNS: &str = r#"integration warns {
  connection api { base_url "https://api.example.com" auth none }
  connection idle { base_url "https://idle.example.com" auth none }
  trigger manual
  step get = api GET "/things"
}
"#;

/// `integ lint --format sarif ARGS` in `dir`: its exit code and its log, checked against
/// the schema.
fn lint_sarif(dir: &Path, args: &[&str]) -> (Option<i32>, Value) {
    let output = common::integ(&[&["lint", "--format", "sarif"], args].concat(), dir, &[]);
    let log = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON: {e}\n{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    });
    assert_valid_sarif(&log);
    (output.status.code(), log)
}

/// Panics with every schema violation of `log`.
fn assert_valid_sarif(log: &Value) {
    let schema: Value = serde_json::from_str(include_str!("sarif/sarif-schema-2.1.0.json"))
        .unwrap_or_else(|e| panic!("schema: {e}"));
    let validator = jsonschema::draft7::options()
        .should_validate_formats(true)
        .build(&schema)
        .unwrap_or_else(|e| panic!("schema: {e}"));
    let errors: Vec<String> = validator
        .iter_errors(log)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "invalid SARIF:\n{}\n{log:#}",
        errors.join("\n")
    );
}

fn results(log: &Value) -> Vec<Value> {
    log["runs"][0]["results"]
        .as_array()
        .cloned()
        .unwrap_or_else(|| panic!("no results array: {log:#}"))
}

fn result<'a>(results: &'a [Value], code: &str) -> &'a Value {
    results
        .iter()
        .find(|r| r["ruleId"] == code)
        .unwrap_or_else(|| panic!("no {code} in {results:#?}"))
}

/// (startLine, startColumn, endLine, endColumn) of a result's first location.
fn region(result: &Value) -> [i64; 4] {
    let region = &result["locations"][0]["physicalLocation"]["region"];
    ["startLine", "startColumn", "endLine", "endColumn"]
        .map(|key| region[key].as_i64().unwrap_or_else(|| panic!("{region}")))
}

#[test]
fn an_error_and_a_warning_are_a_valid_log_with_rules_levels_and_messages() {
    let dir = workdir("sarif_broken");
    write(&dir, "broken.integ", BROKEN);
    let (code, log) = lint_sarif(
        &dir,
        &[
            "broken.integ",
            "--docs-url",
            "https://example.org/integ/docs/language.md",
        ],
    );
    assert_eq!(code, Some(1), "an error fails, as with --format json");
    assert_eq!(log["version"], "2.1.0");
    let run = &log["runs"][0];
    assert_eq!(run["tool"]["driver"]["name"], "integ");

    let rules = run["tool"]["driver"]["rules"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let ids: Vec<&str> = rules.iter().filter_map(|r| r["id"].as_str()).collect();
    assert_eq!(ids, ["E103", "W003"], "{rules:#?}");
    assert_eq!(rules[1]["shortDescription"]["text"], "Unused connection");
    assert_eq!(
        rules[1]["helpUri"],
        "https://example.org/integ/docs/language.md#w003-unused-connection"
    );
    assert_eq!(rules[0]["defaultConfiguration"]["level"], "error");
    assert_eq!(rules[1]["defaultConfiguration"]["level"], "warning");
    let help = rules[1]["help"]["markdown"].as_str().unwrap_or_default();
    assert!(
        help.starts_with("No step, fallback or poll trigger"),
        "{help}"
    );

    let results = results(&log);
    assert_eq!(results.len(), 2, "{results:#?}");
    let error = result(&results, "E103");
    assert_eq!(error["level"], "error");
    assert_eq!(error["ruleIndex"], 0);
    let message = error["message"]["text"].as_str().unwrap_or_default();
    assert!(
        message.starts_with("`steps` is not known here\nhelp: templates read `event`"),
        "the hint follows the message: {message}"
    );
    let warning = result(&results, "W003");
    assert_eq!(warning["level"], "warning");
    assert_eq!(warning["ruleIndex"], 1);
    assert_eq!(
        warning["message"]["text"],
        "connection `idle` is never used\nhelp: remove it, or use it in a step or trigger"
    );
    // `idle` on line 3, columns 14 to 17; the end column is the one just past it.
    assert_eq!(region(warning), [3, 14, 3, 18]);
}

#[test]
fn columns_count_utf16_code_units_after_multi_byte_characters() {
    let dir = workdir("sarif_columns");
    write(&dir, "broken.integ", BROKEN);
    let (_, log) = lint_sarif(&dir, &["broken.integ"]);
    assert_eq!(log["runs"][0]["columnKind"], "utf16CodeUnits");
    // `steps` on line 5 follows 😀 (4 bytes, 1 character, 2 UTF-16 units) and é (2 bytes,
    // 1 character, 1 unit): a byte count would say 34, a character count 30.
    let line = BROKEN.lines().nth(4).unwrap_or_default();
    let before = &line[..line.find("steps").unwrap_or_default()];
    let column = i64::try_from(before.encode_utf16().count() + 1).unwrap_or_default();
    assert_eq!(column, 31);
    assert_eq!(
        region(result(&results(&log), "E103")),
        [5, column, 5, column + 5]
    );
}

#[test]
fn a_spec_without_problems_is_a_log_with_no_results() {
    let dir = workdir("sarif_clean");
    write(&dir, "clean.integ", CLEAN);
    let (code, log) = lint_sarif(&dir, &["clean.integ"]);
    assert_eq!(code, Some(0));
    assert_eq!(log["runs"][0]["results"], serde_json::json!([]));
    assert_eq!(
        log["runs"][0]["tool"]["driver"]["rules"],
        serde_json::json!([])
    );
}

#[test]
fn exit_codes_are_those_of_the_other_formats() {
    let dir = workdir("sarif_exit");
    write(&dir, "warns.integ", WARNS);
    assert_eq!(lint_sarif(&dir, &["warns.integ"]).0, Some(0));
    assert_eq!(
        lint_sarif(&dir, &["warns.integ", "--deny-warnings"]).0,
        Some(1)
    );
    let nothing = common::integ(&["lint", "--format", "sarif", "missing.integ"], &dir, &[]);
    assert_eq!(nothing.status.code(), Some(2));
    assert!(nothing.stdout.is_empty(), "no log on a usage error");
    let relative = common::integ(
        &[
            "lint",
            "--format",
            "sarif",
            "--docs-url",
            "docs/language.md",
        ],
        &dir,
        &[],
    );
    assert_eq!(
        relative.status.code(),
        Some(2),
        "a rule's link must be absolute"
    );
    let human = common::integ(
        &[
            "lint",
            "--docs-url",
            "https://example.org/l.md",
            "warns.integ",
        ],
        &dir,
        &[],
    );
    assert_eq!(
        human.status.code(),
        Some(2),
        "--docs-url means nothing there"
    );
}

#[test]
fn paths_with_spaces_and_non_ascii_are_uris_that_resolve_to_the_files() {
    let dir = workdir("sarif_paths");
    let file = write(&dir, "my spécs/#1 100%.integ", WARNS);
    let outside = write(&workdir("sarif_paths_outside"), "other.integ", WARNS);
    let outside_arg = outside.to_string_lossy().into_owned();
    let absolute_arg = file.to_string_lossy().into_owned();
    for (arg, expected) in [
        ("my spécs", &file),
        ("./my spécs/../my spécs/#1 100%.integ", &file),
        (absolute_arg.as_str(), &file),
        (outside_arg.as_str(), &outside),
    ] {
        let (_, log) = lint_sarif(&dir, &[arg]);
        let run = &log["runs"][0];
        let artifact = &results(&log)[0]["locations"][0]["physicalLocation"]["artifactLocation"];
        let uri = artifact["uri"].as_str().unwrap_or_default();
        assert!(uri.is_ascii() && !uri.contains(' '), "{uri}");
        let resolved = match artifact["uriBaseId"].as_str() {
            Some(base) => {
                let root = run["originalUriBaseIds"][base]["uri"]
                    .as_str()
                    .unwrap_or_default();
                reqwest::Url::parse(root).and_then(|root| root.join(uri))
            }
            None => reqwest::Url::parse(uri),
        }
        .unwrap_or_else(|e| panic!("{uri}: {e}"));
        let path = resolved
            .to_file_path()
            .unwrap_or_else(|()| panic!("{resolved}"));
        let canonical = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(canonical(&path), canonical(expected), "{arg} as {uri}");
        if arg != outside_arg {
            assert_eq!(
                uri, "my%20sp%C3%A9cs/%231%20100%25.integ",
                "relative to the working directory"
            );
        }
    }
}

#[test]
fn every_lint_case_is_a_valid_log() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/lint");
    let (code, log) = lint_sarif(&root, &[".", "--docs-url", "https://example.org/l.md"]);
    assert_eq!(code, Some(1));
    let results = results(&log);
    assert!(results.len() >= 150, "only {} results", results.len());
    assert!(
        results.iter().any(|r| r["relatedLocations"].is_array()),
        "secondary places become related locations"
    );
}
