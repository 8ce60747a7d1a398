//! Keeps `docs/language.md` in sync with the language and the registry of diagnostic codes.
//!
//! - Every code of the registry has a `### CODE title` subsection under `## Diagnostics`, and
//!   no heading names a code the registry does not have.
//! - The ```` ```integ ```` example of each code's subsection produces that code.
//! - Every ```` ```integ ```` example outside the Diagnostics section lints without errors
//!   (```` ```integ-fragment ```` blocks are parts of specs and are not linted).
//! - The registry itself is sound: codes are unique and well-formed.
//!
//! Failures name the code, or the line of the block in the document.

use integ::diagnostic::{Code, Diagnostic, Severity};
use integ::lint::{lint_bytes, lint_sources};
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

const DOC: &str = "docs/language.md";
const DIAGNOSTICS: &str = "Diagnostics";

/// Codes that the language cannot produce in this version, each with the reason, such as
/// `("E205", "the grammar only accepts a JSONPath there")`. Their subsection still shows what
/// a user would write (and says why it gives another code); the test checks that the example
/// is still wrong but does *not* produce the code yet, so that the document is revisited the
/// day it does. Empty while every code can be shown.
const UNREACHABLE: &[(&str, &str)] = &[];

/// A bug report, never the result of a spec: its subsection has no example.
const INTERNAL_ERROR: &str = "E000";

/// Not UTF-8, so not text: its example is a ```text block in which `\xHH` stands for a byte.
const NOT_UTF8: &str = "E005";

#[derive(Debug)]
struct Block {
    lang: String,
    /// 1-based line of the opening fence.
    line: usize,
    text: String,
    /// The `## ` section the block is in.
    section: String,
    /// The code of the `### CODE title` subsection the block is in, if any.
    code: Option<String>,
}

#[derive(Debug)]
struct Heading {
    line: usize,
    section: String,
    /// The text after `### `.
    text: String,
}

#[derive(Debug)]
struct Doc {
    blocks: Vec<Block>,
    headings: Vec<Heading>,
}

fn doc() -> Doc {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(DOC);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    parse(&text)
}

/// Splits the document into fenced blocks and `###` headings, each with where it stands.
fn parse(text: &str) -> Doc {
    let mut doc = Doc {
        blocks: Vec::new(),
        headings: Vec::new(),
    };
    let mut section = String::new();
    let mut code: Option<String> = None;
    let mut open: Option<Block> = None;
    for (index, line) in text.lines().enumerate() {
        let number = index + 1;
        if let Some(block) = open.as_mut() {
            if line.trim_end() == "```" {
                doc.blocks.extend(open.take());
            } else {
                block.text.push_str(line);
                block.text.push('\n');
            }
            continue;
        }
        if let Some(lang) = line.strip_prefix("```") {
            open = Some(Block {
                lang: lang.trim().to_string(),
                line: number,
                text: String::new(),
                section: section.clone(),
                code: code.clone(),
            });
        } else if let Some(title) = line.strip_prefix("## ") {
            section = title.trim().to_string();
            code = None;
        } else if let Some(title) = line.strip_prefix("### ") {
            code = title
                .split_whitespace()
                .next()
                .filter(|word| is_well_formed(word))
                .map(String::from);
            doc.headings.push(Heading {
                line: number,
                section: section.clone(),
                text: title.trim().to_string(),
            });
        }
    }
    if let Some(block) = open {
        panic!(
            "{DOC}:{}: the ```{} block is never closed",
            block.line, block.lang
        );
    }
    doc
}

/// `E` or `W` followed by three digits.
fn is_well_formed(code: &str) -> bool {
    let bytes = code.as_bytes();
    bytes.len() == 4 && matches!(bytes[0], b'E' | b'W') && bytes[1..].iter().all(u8::is_ascii_digit)
}

const FILE_MARK: &str = "# file ";

fn registry() -> Vec<&'static str> {
    Code::ALL.iter().map(|code| code.as_str()).collect()
}

/// Lints an example; one that shows several files linted together starts each with a line
/// `# file NAME.integ`.
fn lint_text(text: &str) -> Vec<Diagnostic> {
    let sources = if text.starts_with(FILE_MARK) {
        text.split(FILE_MARK)
            .skip(1)
            .map(|file| {
                let (name, spec) = file.split_once('\n').unwrap_or((file, ""));
                (PathBuf::from(name.trim()), spec.to_string())
            })
            .collect()
    } else {
        vec![(PathBuf::from("doc.integ"), text.to_string())]
    };
    let files = lint_sources(sources);
    files
        .into_iter()
        .flat_map(|file| file.diagnostics)
        .collect()
}

fn lint_raw(bytes: Vec<u8>) -> Vec<Diagnostic> {
    let files = lint_bytes(vec![(PathBuf::from("doc.integ"), bytes)]);
    files
        .into_iter()
        .flat_map(|file| file.diagnostics)
        .collect()
}

fn describe(diagnostics: &[Diagnostic]) -> String {
    if diagnostics.is_empty() {
        return "no diagnostics".into();
    }
    let all: Vec<String> = diagnostics
        .iter()
        .map(|d| format!("{} ({})", d.code().as_str(), d.kind))
        .collect();
    all.join(", ")
}

fn produces(diagnostics: &[Diagnostic], code: &str) -> bool {
    diagnostics.iter().any(|d| d.code().as_str() == code)
}

/// `\xHH` in the text stands for the byte `0xHH`; everything else is copied as UTF-8.
fn with_raw_bytes(text: &str) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(text.len());
    let mut rest = text.as_bytes();
    while let Some((&first, tail)) = rest.split_first() {
        let hex = tail
            .strip_prefix(b"x")
            .and_then(|t| t.get(..2))
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match hex {
            Some(byte) if first == b'\\' => {
                bytes.push(byte);
                rest = &tail[3..];
            }
            _ => {
                bytes.push(first);
                rest = tail;
            }
        }
    }
    bytes
}

#[test]
fn registry_codes_are_unique_and_well_formed() {
    let mut seen = HashSet::new();
    let mut failures = Vec::new();
    for code in registry() {
        if !is_well_formed(code) {
            failures.push(format!("{code}: not `E` or `W` followed by three digits"));
        }
        if !seen.insert(code) {
            failures.push(format!("{code}: in the registry twice"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_code_has_a_subsection_and_every_subsection_a_code() {
    let doc = doc();
    let registry = registry();
    let mut failures = Vec::new();
    let mut found: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for heading in &doc.headings {
        let mut words = heading.text.splitn(2, ' ');
        let first = words.next().unwrap_or_default();
        let title = words.next().unwrap_or_default().trim();
        let names_a_code = is_well_formed(first);
        if names_a_code && !registry.contains(&first) {
            failures.push(format!(
                "{DOC}:{}: `### {}` names {first}, which is not in the registry",
                heading.line, heading.text
            ));
        }
        if heading.section != DIAGNOSTICS {
            if names_a_code {
                failures.push(format!(
                    "{DOC}:{}: `### {}` is outside `## {DIAGNOSTICS}`",
                    heading.line, heading.text
                ));
            }
            continue;
        }
        if !names_a_code {
            failures.push(format!(
                "{DOC}:{}: `### {}` in `## {DIAGNOSTICS}` is not headed `### CODE short title`",
                heading.line, heading.text
            ));
            continue;
        }
        if title.is_empty() {
            failures.push(format!(
                "{DOC}:{}: {first} has no title after its code",
                heading.line
            ));
        }
        found
            .entry(first.to_string())
            .or_default()
            .push(heading.line);
    }
    for code in &registry {
        match found.get(*code).map(Vec::as_slice) {
            None | Some([]) => {
                failures.push(format!("{code}: no `### {code} ...` subsection in {DOC}"))
            }
            Some([_]) => {}
            Some(lines) => failures.push(format!(
                "{code}: several subsections in {DOC}, at lines {lines:?}"
            )),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn each_code_example_produces_its_code() {
    let doc = doc();
    let mut failures = Vec::new();
    for code in registry() {
        let blocks: Vec<&Block> = doc
            .blocks
            .iter()
            .filter(|b| b.section == DIAGNOSTICS && b.code.as_deref() == Some(code))
            .collect();
        let examples: Vec<&&Block> = blocks.iter().filter(|b| b.lang == "integ").collect();
        if code == INTERNAL_ERROR {
            if let Some(block) = examples.first() {
                failures.push(format!(
                    "{DOC}:{}: {code} is a bug report and has no example",
                    block.line
                ));
            }
            continue;
        }
        if code == NOT_UTF8 {
            failures.extend(not_utf8_example(&blocks));
            continue;
        }
        let block = match examples.as_slice() {
            [block] => block,
            [] => {
                failures.push(format!("{code}: its subsection has no ```integ example"));
                continue;
            }
            [_, second, ..] => {
                failures.push(format!(
                    "{DOC}:{}: {code} has more than one ```integ example",
                    second.line
                ));
                continue;
            }
        };
        let diagnostics = lint_text(&block.text);
        let unreachable = UNREACHABLE.iter().find(|(c, _)| *c == code);
        let has_errors = diagnostics.iter().any(|d| d.severity() == Severity::Error);
        match (unreachable, produces(&diagnostics, code)) {
            (None, true) => {}
            (Some(_), false) if has_errors => {}
            (Some((_, reason)), false) => failures.push(format!(
                "{DOC}:{}: the {code} example should still show the mistake ({reason}), \
                 but it lints without errors",
                block.line
            )),
            (None, false) => failures.push(format!(
                "{DOC}:{}: the {code} example does not produce {code}; it gives {}",
                block.line,
                describe(&diagnostics)
            )),
            (Some((_, reason)), true) => failures.push(format!(
                "{DOC}:{}: the {code} example now produces {code}, listed as unreachable \
                 ({reason}): remove it from UNREACHABLE and the known issue from the document",
                block.line
            )),
        }
        if produces(&diagnostics, INTERNAL_ERROR) {
            failures.push(format!(
                "{DOC}:{}: the {code} example makes integ fail with {INTERNAL_ERROR}: {}",
                block.line,
                describe(&diagnostics)
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// E005's example is a ```text block with `\xHH` bytes that are not UTF-8.
fn not_utf8_example(blocks: &[&Block]) -> Vec<String> {
    let Some(block) = blocks.iter().find(|b| b.lang == "text") else {
        return vec![format!(
            "{NOT_UTF8}: its subsection has no ```text example with `\\xHH` bytes"
        )];
    };
    if !block.text.contains("\\x") {
        return vec![format!(
            "{DOC}:{}: the {NOT_UTF8} example has no `\\xHH` byte",
            block.line
        )];
    }
    let diagnostics = lint_raw(with_raw_bytes(&block.text));
    if produces(&diagnostics, NOT_UTF8) {
        Vec::new()
    } else {
        vec![format!(
            "{DOC}:{}: the {NOT_UTF8} example does not produce {NOT_UTF8}; it gives {}",
            block.line,
            describe(&diagnostics)
        )]
    }
}

#[test]
fn every_example_outside_diagnostics_lints_without_errors() {
    let doc = doc();
    let examples: Vec<&Block> = doc
        .blocks
        .iter()
        .filter(|b| b.lang == "integ" && b.section != DIAGNOSTICS)
        .collect();
    assert!(
        examples.len() >= 10,
        "only {} ```integ examples outside `## {DIAGNOSTICS}` in {DOC}",
        examples.len()
    );
    let mut failures = Vec::new();
    for block in examples {
        let errors: Vec<Diagnostic> = lint_text(&block.text)
            .into_iter()
            .filter(|d| d.severity() == Severity::Error)
            .collect();
        if !errors.is_empty() {
            failures.push(format!(
                "{DOC}:{}: the example in `## {}` has errors: {}",
                block.line,
                block.section,
                describe(&errors)
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn raw_bytes_stand_for_themselves() {
    assert_eq!(with_raw_bytes(r"a\xE9b"), b"a\xE9b");
    assert_eq!(with_raw_bytes(r"\n\x"), br"\n\x");
    assert_eq!(with_raw_bytes("é"), "é".as_bytes());
}

/// The released codes, `CODE Variant` a line, beside this file.
const RELEASED: &str = "tests/codes.released";

#[test]
fn a_released_code_is_never_renumbered_or_reused() {
    let released = std::fs::read_to_string(RELEASED).unwrap_or_else(|e| panic!("{RELEASED}: {e}"));
    let registry: Vec<String> = Code::ALL
        .iter()
        .map(|code| format!("{} {code:?}", code.as_str()))
        .collect();
    let snapshot: Vec<&str> = released
        .lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .collect();
    for line in &snapshot {
        assert!(
            registry.iter().any(|pair| pair == line),
            "{RELEASED} has `{line}`, the registry no longer does: a released code was renumbered, \
             renamed or removed (retire a code by leaving it in place)"
        );
    }
    let new: Vec<&String> = registry
        .iter()
        .filter(|pair| !snapshot.contains(&pair.as_str()))
        .collect();
    assert!(
        new.is_empty(),
        "codes not in {RELEASED} yet: {new:?}; append them to it, at its end"
    );
}

/// Every metric integ exports has its row in `docs/operations.md`, with its type and
/// labels, and the document names no `integ_` metric integ does not export.
#[test]
fn operations_md_lists_every_metric() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/operations.md");
    let doc = std::fs::read_to_string(path).unwrap();
    let mut missing = Vec::new();
    for metric in integ::telemetry::METRICS {
        let kind = format!("{:?}", metric.kind).to_lowercase();
        let row = doc
            .lines()
            .find(|line| line.starts_with(&format!("| `{}` |", metric.name)));
        let described = row.is_some_and(|row| {
            row.contains(&format!("| {kind} |"))
                && metric
                    .labels
                    .iter()
                    .all(|l| row.contains(&format!("`{l}`")))
        });
        if !described {
            missing.push(metric.name);
        }
    }
    assert!(
        missing.is_empty(),
        "no row (or a wrong one) in docs/operations.md: {missing:?}"
    );
    let known: HashSet<&str> = integ::telemetry::METRICS.iter().map(|m| m.name).collect();
    let unknown: Vec<&str> = doc
        .lines()
        .filter_map(|line| line.strip_prefix("| `integ_"))
        .filter_map(|rest| rest.split('`').next())
        .filter(|name| !known.contains(format!("integ_{name}").as_str()))
        .collect();
    assert!(
        unknown.is_empty(),
        "documented but not exported: {unknown:?}"
    );
}

/// The alert rules in `docs/operations.md` read only metrics integ exports.
#[test]
fn operations_md_alert_rules_read_exported_metrics() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/operations.md");
    let doc = std::fs::read_to_string(path).unwrap();
    let rules = doc
        .split("```yaml\n")
        .filter_map(|rest| rest.split("```").next())
        .find(|block| block.starts_with("groups:"))
        .expect("a yaml block of alert rules");
    let known: HashSet<&str> = integ::telemetry::METRICS.iter().map(|m| m.name).collect();
    let mut read = Vec::new();
    for (at, _) in rules.match_indices("integ_") {
        let name: String = rules[at..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        let base = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|suffix| name.strip_suffix(suffix))
            .unwrap_or(&name)
            .to_string();
        read.push(base);
    }
    assert!(read.len() > 10, "{read:?}");
    let unknown: Vec<&String> = read
        .iter()
        .filter(|n| !known.contains(n.as_str()))
        .collect();
    assert!(
        unknown.is_empty(),
        "the rules read metrics integ does not export: {unknown:?}"
    );
}

/// Each ready-made alert rule about an integration links a runbook entry that `integ doc`
/// writes (the examples' generated docs hold every kind of entry between them).
#[test]
fn operations_md_alert_rules_link_runbook_entries_that_exist() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let doc = std::fs::read_to_string(root.join("docs/operations.md")).unwrap();
    let mut anchors = HashSet::new();
    for entry in std::fs::read_dir(root.join("docs/integrations")).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        for (at, _) in text.match_indices("<a id=\"rb-") {
            let id: String = text[at + 7..].chars().take_while(|c| *c != '"').collect();
            anchors.insert(id);
        }
    }
    let mut linked = 0;
    let mut rule = "";
    for line in doc.lines() {
        if let Some(name) = line.trim().strip_prefix("- alert: ") {
            rule = name;
        }
        if let Some(url) = line.trim().strip_prefix("runbook_url: ") {
            let anchor = url.trim_matches('"').rsplit('#').next().unwrap();
            assert!(
                anchors.contains(anchor),
                "{rule} links #{anchor}, which no runbook has"
            );
            linked += 1;
        }
    }
    assert!(linked >= 14, "only {linked} rules link a runbook entry");
}
