//! `integ fmt` as a library: the example specs are formatted, every valid spec of the tests
//! formats to itself or to its reviewed golden (`tests/fmt/`, `INTEG_BLESS=1` regenerates),
//! and for any layout of a spec the formatted text has the same AST and is formatted again
//! to itself; so has any layout of specs generated from the grammar's pieces.

use integ::{fmt, syntax};
use proptest::prelude::*;
use regex::Regex;
use std::path::{Path, PathBuf};
use std::sync::LazyLock;

/// The AST of a spec as text, with what depends on the layout left out: spans, source
/// offsets, and the blanks after a comment (which the formatter drops).
fn ast(text: &str) -> String {
    static OFFSETS: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"Span \{ start: \d+, end: \d+ \}|runs: \[[^\]]*\]|query_start: \d+")
            .unwrap_or_else(|e| panic!("{e}"))
    });
    let (spec, diagnostics) = syntax::parse(text);
    let Some(spec) = spec else {
        panic!("does not parse: {diagnostics:?}\n{text}");
    };
    let comments: Vec<&str> = spec.comments.iter().map(|c| c.node.trim_end()).collect();
    let tree = format!("{:?}", spec.integration);
    format!(
        "{}\n{comments:?}",
        OFFSETS.replace_all(&tree, "").replace("), ", "),\n")
    )
}

/// Formats `text`, checking that the AST stays and that formatting again changes nothing.
fn formatted(name: &str, text: &str) -> String {
    let once = fmt::format(text).unwrap_or_else(|d| panic!("{name}: refused: {d:?}"));
    assert_eq!(ast(text), ast(&once), "{name}: the AST changed\n{once}");
    let twice = fmt::format(&once).unwrap_or_else(|d| panic!("{name}: refused: {d:?}"));
    assert_eq!(once, twice, "{name}: formatting is not idempotent");
    once
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path:?}: {e}"))
}

/// Every `.integ` file under `root`, sorted.
fn specs(root: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let entries = std::fs::read_dir(root).unwrap_or_else(|e| panic!("{root:?}: {e}"));
    for entry in entries.filter_map(Result::ok) {
        let path = entry.path();
        if path.is_dir() {
            found.extend(specs(&path));
        } else if path.extension().is_some_and(|e| e == "integ") {
            found.push(path);
        }
    }
    found.sort();
    found
}

#[test]
fn the_example_specs_are_formatted() {
    let examples = specs(Path::new("specs"));
    assert!(examples.len() >= 5, "only {} example specs", examples.len());
    for path in examples {
        let text = read(&path);
        let name = path.display().to_string();
        assert!(
            formatted(&name, &text) == text,
            "{name} is not formatted: run `integ fmt specs/`"
        );
    }
}

/// The lint cases that parse (those with only semantic problems) are valid input for
/// `fmt`: each formats to itself or to its golden in `tests/fmt/`.
#[test]
fn every_lint_case_that_parses_formats_to_itself_or_its_golden() {
    let bless = std::env::var_os("INTEG_BLESS").is_some();
    let mut checked = 0;
    let mut failures = Vec::new();
    for path in specs(Path::new("tests/lint")) {
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue; // the case of a file that is not UTF-8
        };
        if fmt::format(&text).is_err() {
            continue;
        }
        checked += 1;
        let name = path.display().to_string();
        let result = formatted(&name, &text);
        let relative = path.strip_prefix("tests/lint").unwrap_or(&path);
        let golden = Path::new("tests/fmt").join(relative);
        if result == text {
            if golden.exists() && !bless {
                failures.push(format!("{name} is formatted: remove {golden:?}"));
            } else if bless {
                let _ = std::fs::remove_file(&golden);
            }
            continue;
        }
        compare_golden(&name, &result, &golden, bless, &mut failures);
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    assert!(checked >= 100, "only {checked} lint cases parse");
}

/// The specs written inline in the test files (raw strings that parse) keep their AST, are
/// stable, and format to a reviewed golden: one per test file, `tests/fmt/inline/FILE.integ`,
/// holding its specs formatted, in order (`INTEG_BLESS=1` regenerates).
#[test]
fn every_spec_written_in_a_test_formats_to_its_golden() {
    let bless = std::env::var_os("INTEG_BLESS").is_some();
    let raw = Regex::new(r##"(?s)r#"(\s*integration .*?)"#"##).unwrap_or_else(|e| panic!("{e}"));
    let inline = Path::new("tests/fmt/inline");
    let mut checked = 0;
    let mut failures = Vec::new();
    let mut goldens = Vec::new();
    let mut sources: Vec<PathBuf> = std::fs::read_dir("tests")
        .unwrap_or_else(|e| panic!("tests: {e}"))
        .map(|entry| entry.unwrap_or_else(|e| panic!("{e}")).path())
        .filter(|path| path.extension().is_some_and(|e| e == "rs"))
        .collect();
    sources.sort();
    for path in sources {
        let source = read(&path);
        let name = path.display().to_string();
        let mut result = String::new();
        for found in raw.captures_iter(&source) {
            let text = &found[1];
            if syntax::parse(text).1.is_empty() && syntax::parse(text).0.is_some() {
                result.push_str("# ----\n");
                result.push_str(&formatted(&name, text));
                checked += 1;
            }
        }
        if result.is_empty() {
            continue;
        }
        let stem = path.file_stem().unwrap_or_default().to_string_lossy();
        let golden = inline.join(format!("{stem}.integ"));
        goldens.push(golden.clone());
        compare_golden(&name, &result, &golden, bless, &mut failures);
    }
    for stale in specs(inline).into_iter().filter(|g| !goldens.contains(g)) {
        failures.push(format!(
            "{stale:?} is the golden of no test file: remove it"
        ));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    assert!(checked >= 50, "only {checked} specs found in the tests");
}

/// Compares `result` with the golden file (or, blessing, writes it).
fn compare_golden(
    name: &str,
    result: &str,
    golden: &Path,
    bless: bool,
    failures: &mut Vec<String>,
) {
    if bless {
        if let Some(parent) = golden.parent() {
            std::fs::create_dir_all(parent).unwrap_or_else(|e| panic!("{parent:?}: {e}"));
        }
        std::fs::write(golden, result).unwrap_or_else(|e| panic!("{golden:?}: {e}"));
        return;
    }
    match std::fs::read_to_string(golden) {
        Ok(expected) if expected == result => {}
        Ok(expected) => failures.push(format!(
            "{name}: differs from {golden:?}\n{}",
            pretty_assertions::StrComparison::new(&expected, result)
        )),
        Err(_) => failures.push(format!("{name}: changes, and has no golden {golden:?}")),
    }
}

const MESSY: &str = r#"

# A file comment, with blanks after it.   
integration   messy{
description "x"     # trailing
        tags [ "a" ,"b",]
connection api { base_url env ( "API_URL" ,"https://x.example" ) auth none
   headers {A="1" , "B-C"   = "2"}
   rate_limit 10 per 1s }
  trigger webhook "/h"
  {
    when $.a==1
    and $.b   !=   null    # a comment inside a condition



    dedupe $.id
    # the last line of the webhook's block
  }
step one=api POST "/x/{{ event.id }}" { body { a.b = [1,2 ,3]  longer_name = {k:1,kk : null } }
  retry 3 exponential 1s..10s jitter on 429,5xx
     query {q = """
          SELECT 1
            FROM x
       """
       limit=10
     }
  }
  environment staging { api.base_url "https://staging.example" # ours
  }
  test "t" { event {} mock api POST "/x/1" 200 {}
  expect step one succeeded }
}
"#;

const TIDY: &str = r#"# A file comment, with blanks after it.
integration messy {
  description "x"      # trailing
  tags ["a", "b",]
  connection api {
    base_url env("API_URL", "https://x.example")
    auth none
    headers { A = "1", "B-C" = "2" }
    rate_limit 10 per 1s
  }
  trigger webhook "/h" {
    when $.a == 1
      and $.b != null  # a comment inside a condition

    dedupe $.id
    # the last line of the webhook's block
  }
  step one = api POST "/x/{{ event.id }}" {
    body { a.b = [1, 2, 3] longer_name = { k: 1, kk: null } }
    retry 3 exponential 1s..10s jitter on 429, 5xx
    query {
      q     = """
        SELECT 1
          FROM x
      """
      limit = 10
    }
  }
  environment staging {
    api.base_url "https://staging.example"  # ours
  }
  test "t" {
    event {}
    mock api POST "/x/1" 200 {}
    expect step one succeeded
  }
}
"#;

#[test]
fn a_messy_spec_is_laid_out_canonically_with_its_comments_where_they_were() {
    pretty_assertions::assert_str_eq!(formatted("messy", MESSY), TIDY);
}

#[test]
fn a_spec_with_a_syntax_error_is_refused_with_its_diagnostic() {
    let broken = "integration x {\n  step = api GET \"/\"\n}\n";
    let diagnostics = fmt::format(broken).err().unwrap_or_default();
    let codes: Vec<&str> = diagnostics.iter().map(|d| d.code().as_str()).collect();
    assert_eq!(codes, ["E001"]);
}

/// The pieces of a spec that blanks may separate: strings, JSONPaths, comments, words and
/// numbers are kept whole.
fn pieces(text: &str) -> Vec<(String, bool)> {
    static PIECE: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(concat!(
            r#"(?s)"""(?:[^"]|"[^"]|""[^"])*""""#,
            r#"|"(?:[^"\\\n]|\\.)*""#,
            r"|#[^\n]*",
            r#"|\$[A-Za-z0-9_]*(?:\.\.?[A-Za-z0-9_*]+|\[(?:[^\[\]"]|"[^"]*"|\[[^\]]*\])*\])*"#,
            r"|-?[A-Za-z0-9_.%]+|\?\?|[=!<>]=|\S",
        ))
        .unwrap_or_else(|e| panic!("{e}"))
    });
    PIECE
        .find_iter(text)
        .map(|m| (m.as_str().to_string(), m.as_str().starts_with('#')))
        .collect()
}

/// Blanks a spec's pieces may be separated by, comments included.
fn blank() -> impl Strategy<Value = &'static str> {
    prop_oneof![
        Just(" "),
        Just("   "),
        Just("\n"),
        Just("\n\n\n"),
        Just("\t\n      "),
        Just("  # a comment\n"),
        Just("\n# a comment line\n  "),
    ]
}

fn join(pieces: &[(String, bool)], blanks: &[&str]) -> String {
    let mut out = String::new();
    for ((piece, is_comment), blank) in pieces.iter().zip(blanks) {
        out.push_str(piece);
        // A comment runs to the end of its line.
        out.push_str(if *is_comment && !blank.contains('\n') {
            "\n"
        } else {
            blank
        });
    }
    out
}

static EXAMPLES: LazyLock<Vec<&'static str>> = LazyLock::new(|| {
    let mut texts: Vec<&'static str> = specs(Path::new("specs"))
        .iter()
        .map(|path| &*read(path).leak())
        .collect();
    texts.push(MESSY);
    texts
});

/// The generator below is sound: the examples still parse with a comment line between
/// every two pieces, so no generated layout is thrown away.
#[test]
fn every_piece_of_the_examples_may_be_separated_by_comments() {
    for base in EXAMPLES.iter() {
        let pieces = pieces(base);
        let text = join(&pieces, &vec!["\n# between\n"; pieces.len()]);
        formatted("commented", &text);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Any layout of a spec (blanks, line breaks, comments between any two pieces) formats
    /// to a text with the same AST, which formats to itself (`formatted` checks both).
    #[test]
    fn any_layout_of_a_spec_formats_to_a_stable_text_with_the_same_ast(
        text in (0..EXAMPLES.len()).prop_flat_map(|index| {
            let pieces = pieces(EXAMPLES[index]);
            proptest::collection::vec(blank(), pieces.len())
                .prop_map(move |blanks| join(&pieces, &blanks))
        })
    ) {
        formatted("relaid", &text);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    /// A spec with a few characters changed (a `#` that turns the rest of a line into a
    /// comment, a bracket, a quote): whenever it still parses, formatting it keeps its AST
    /// and is stable; whenever it does not, it is refused, never a panic.
    #[test]
    fn mutated_specs_are_formatted_faithfully_or_refused(
        index in 0..6usize,
        edits in proptest::collection::vec(
            (any::<prop::sample::Index>(), 0..3u8, prop::sample::select(b"{}[]()\"$.,=:?#\n abc019_-\\".to_vec())),
            1..4,
        )
    ) {
        let mut bytes = EXAMPLES[index % EXAMPLES.len()].as_bytes().to_vec();
        for (at, op, byte) in edits {
            let at = at.index(bytes.len());
            match op {
                0 => { bytes.remove(at); }
                1 => bytes.insert(at, byte),
                _ => bytes[at] = byte,
            }
        }
        let Ok(text) = String::from_utf8(bytes) else { return Ok(()) };
        if fmt::format(&text).is_ok() {
            formatted("mutated", &text);
        }
    }
}

/// A name no keyword can be.
fn name() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9_]{0,6}".prop_map(|s| format!("n_{s}"))
}

/// An expression: JSONPaths, strings with templates, numbers, booleans, null, calls,
/// operators, lists and objects, nested.
fn expression() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        "[a-z]{1,6}".prop_map(|k| format!("$.{k}")),
        "[a-z]{1,6}".prop_map(|k| format!("$.items[*].{k}")),
        "[a-z]{1,6}".prop_map(|k| format!("$n_step.{k}")),
        "[a-z #]{0,8}".prop_map(|t| format!("\"{t}\"")),
        "[a-z]{1,6}".prop_map(|k| format!("\"id-{{{{ event.{k} | upper }}}}\"")),
        (-50i64..1000).prop_map(|n| n.to_string()),
        Just("2.5".to_string()),
        Just("30s".to_string()),
        Just("true".to_string()),
        Just("null".to_string()),
    ];
    leaf.prop_recursive(3, 12, 3, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..3)
                .prop_map(|v| format!("[{}]", v.join(", "))),
            proptest::collection::vec(("[a-z]{1,5}", inner.clone()), 0..3).prop_map(|kv| {
                let fields: Vec<String> = kv.iter().map(|(k, v)| format!("{k}: {v}")).collect();
                format!("{{ {} }}", fields.join(", "))
            }),
            (
                inner.clone(),
                prop::sample::select(vec!["==", "!=", "<", ">=", "and", "or", "??"]),
                inner.clone()
            )
                .prop_map(|(a, op, b)| format!("{a} {op} {b}")),
            inner.clone().prop_map(|e| format!("not ({e})")),
            (
                prop::sample::select(vec!["lower", "coalesce", "now"]),
                proptest::collection::vec(inner, 0..3)
            )
                .prop_map(|(f, args)| format!("{f}({})", args.join(", "))),
        ]
    })
}

/// A connection named `name`.
fn connection(name: String) -> impl Strategy<Value = String> {
    let auth = prop_oneof![
        Just("auth none".to_string()),
        Just(r#"auth bearer secret("TOKEN")"#.to_string()),
        Just(r#"auth basic secret("USER") secret("PASSWORD")"#.to_string()),
        Just(r#"auth api_key header "X-Api-Key" secret("KEY")"#.to_string()),
    ];
    let extra = prop::sample::subsequence(
        vec![
            "rate_limit 10 per 1s burst 5",
            "timeout 10s",
            "max_concurrency 4",
            r#"headers { Accept = "application/json", "X-Two" = "2" }"#,
        ],
        0..3,
    );
    (auth, extra).prop_map(move |(auth, extra)| {
        format!(
            "connection {name} {{\n base_url \"https://{name}.example.com/v1\"\n {auth}\n {}\n}}\n",
            extra.join("\n ")
        )
    })
}

/// A trigger.
fn trigger() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("trigger manual\n".to_string()),
        (expression(), any::<bool>()).prop_map(|(when, dedupe)| format!(
            "trigger webhook \"/hooks/x\" {{ signature none when {when} {} }}\n",
            if dedupe { "dedupe $.id for 7d" } else { "" }
        )),
        Just("trigger schedule \"0 9 * * 1-5\" { timezone \"Europe/Paris\" }\n".to_string()),
    ]
}

/// A step calling connection `on`.
fn step(name: String, on: String) -> impl Strategy<Value = String> {
    let method = prop::sample::select(vec!["GET", "POST", "PUT", "PATCH", "DELETE"]);
    let body = proptest::collection::vec(("[a-z]{1,5}(\\.[a-z]{1,5})?", expression()), 0..4);
    let policy = prop::sample::subsequence(
        vec![
            "retry 3 exponential 1s..10s jitter on 429, 5xx, timeout",
            "on_error dead_letter",
            "timeout 5s",
            r#"idempotency_key "k-{{ event.id }}""#,
        ],
        0..3,
    );
    (method, body, policy, proptest::option::of(expression())).prop_map(
        move |(method, body, policy, when)| {
            let mut block = Vec::new();
            if let Some(when) = when {
                block.push(format!("when {when}"));
            }
            if !body.is_empty() {
                let fields: Vec<String> = body.iter().map(|(k, v)| format!("{k} = {v}")).collect();
                block.push(format!("body {{ {} }}", fields.join(" ")));
            }
            block.extend(policy.iter().map(|p| p.to_string()));
            format!(
                "step {name} = {on} {method} \"/things/{{{{ event.id }}}}\" {{\n{}\n}}\n",
                block.join("\n")
            )
        },
    )
}

/// A whole spec: one to three connections, a trigger, one to four steps.
fn generated_spec() -> impl Strategy<Value = String> {
    (
        name(),
        proptest::collection::vec(name(), 1..4),
        proptest::collection::vec(name(), 1..5),
    )
        .prop_flat_map(|(integration, names, steps)| {
            let connections: Vec<_> = names.iter().cloned().map(connection).collect();
            let steps: Vec<_> = steps
                .into_iter()
                .enumerate()
                .map(|(i, s)| step(s, names[i % names.len()].clone()))
                .collect();
            (Just(integration), connections, trigger(), steps)
        })
        .prop_map(|(integration, connections, trigger, steps)| {
            format!(
                "integration {integration} {{\n{}{trigger}{}}}\n",
                connections.concat(),
                steps.concat()
            )
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Specs built from the grammar's pieces (not only the examples), laid out any way with
    /// comments between any two pieces: each formats to a text with the same AST, comments
    /// in the same order, which formats to itself.
    #[test]
    fn generated_specs_laid_out_any_way_format_to_a_stable_text_with_the_same_ast(
        text in generated_spec().prop_flat_map(|spec| {
            let pieces = pieces(&spec);
            proptest::collection::vec(blank(), pieces.len())
                .prop_map(move |blanks| join(&pieces, &blanks))
        })
    ) {
        formatted("generated", &text);
    }
}
