//! `integ lint --format sarif`: one SARIF 2.1.0 log, for the CI systems that show
//! diagnostics inline on a change (GitHub code scanning, and others). A rule is one of our
//! codes, titled and explained by its `### CODE title` section of `docs/language.md`, the one
//! place codes are documented (`tests/docs_sync.rs` keeps a section for every code).

use super::{Code, Diagnostic, Severity, line_col_utf16};
use crate::span::Span;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_encode};
use serde_sarif::sarif::{
    ArtifactLocation, Location, Message, MultiformatMessageString, PhysicalLocation, Region,
    ReportingConfiguration, ReportingDescriptor, Result as SarifResult, ResultLevel, Run, Sarif,
    Tool, ToolComponent,
};
use std::collections::BTreeMap;
use std::path::Path;

/// The schema's address where editors and validators look it up.
const SCHEMA: &str = "https://json.schemastore.org/sarif-2.1.0.json";

const LANGUAGE_DOC: &str = include_str!("../../docs/language.md");

/// The base that relative artifact URIs resolve against: the folder lint ran in. The name is
/// the one GitHub's upload action and SARIF viewers expect for a checkout's root.
const ROOT: &str = "%SRCROOT%";

/// What stays as it is in a URI path: unreserved characters and the separator.
const PATH: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'/');

/// One linted file: its path (relative to the working directory, or absolute when outside
/// it), its text (for lines and columns) and its diagnostics.
#[derive(Debug)]
pub struct SarifFile<'a> {
    pub path: &'a Path,
    pub text: &'a str,
    pub diagnostics: &'a [Diagnostic],
}

/// Where the log's paths and rules point.
#[derive(Debug, Default)]
pub struct SarifLinks<'a> {
    /// The working directory, absolute: what relative paths are relative to.
    pub root: Option<&'a Path>,
    /// Where `docs/language.md` is published; each rule's `helpUri` is its section there.
    pub docs_url: Option<&'a str>,
}

/// The SARIF log of one lint run: one run of the tool `integ`, a rule per code reported.
pub fn sarif_log(files: &[SarifFile<'_>], links: &SarifLinks<'_>) -> Sarif {
    let mut codes: Vec<Code> = files
        .iter()
        .flat_map(|file| file.diagnostics.iter().map(Diagnostic::code))
        .collect();
    codes.sort();
    codes.dedup();
    let results: Vec<SarifResult> = files
        .iter()
        .flat_map(|file| file.diagnostics.iter().map(|d| result(d, file, &codes)))
        .collect();
    let mut driver = ToolComponent::builder()
        .name("integ")
        .version(env!("CARGO_PKG_VERSION"))
        .rules(
            codes
                .iter()
                .map(|&code| rule(code, links.docs_url))
                .collect::<Vec<_>>(),
        )
        .build();
    driver.information_uri = links.docs_url.map(str::to_string);
    let mut run = Run::builder()
        .tool(Tool::builder().driver(driver).build())
        .column_kind(serde_json::json!("utf16CodeUnits"))
        .results(results)
        .build();
    run.original_uri_base_ids = links.root.map(|root| {
        let mut uri = uri_reference(root);
        if !uri.ends_with('/') {
            uri.push('/');
        }
        BTreeMap::from([(
            ROOT.to_string(),
            ArtifactLocation::builder().uri(uri).build(),
        )])
    });
    Sarif::builder()
        .schema(SCHEMA)
        .version(serde_json::json!("2.1.0"))
        .runs(vec![run])
        .build()
}

fn rule(code: Code, docs_url: Option<&str>) -> ReportingDescriptor {
    let (title, explanation) = documentation(code);
    let mut rule = ReportingDescriptor::builder()
        .id(code.as_str())
        .short_description(MultiformatMessageString::builder().text(title).build())
        .help(
            MultiformatMessageString::builder()
                .text(explanation)
                .markdown(explanation)
                .build(),
        )
        .default_configuration(
            ReportingConfiguration::builder()
                .level(serde_json::json!(level_name(code.severity())))
                .build(),
        )
        .build();
    rule.help_uri = docs_url.map(|url| format!("{url}#{}", anchor(code.as_str(), title)));
    rule
}

fn result(diagnostic: &Diagnostic, file: &SarifFile<'_>, codes: &[Code]) -> SarifResult {
    let code = diagnostic.code();
    let mut text = diagnostic.kind.to_string();
    if let Some(help) = diagnostic.kind.help() {
        text.push_str("\nhelp: ");
        text.push_str(&help);
    }
    let related: Vec<Location> = diagnostic
        .secondary
        .iter()
        .zip(1..)
        .map(|((span, label), id)| {
            let mut place = location(file, *span, label.clone());
            place.id = Some(id);
            place
        })
        .collect();
    let mut result = SarifResult::builder()
        .rule_id(code.as_str())
        .level(level(diagnostic.severity()))
        .message(Message::builder().text(text).build())
        .locations(vec![location(
            file,
            diagnostic.span,
            diagnostic.kind.label(),
        )])
        .build();
    result.rule_index = codes
        .iter()
        .position(|&c| c == code)
        .and_then(|index| i64::try_from(index).ok());
    if !related.is_empty() {
        result.related_locations = Some(related);
    }
    result
}

/// A span of a file: 1-based lines and columns in UTF-16 code units, the end column the one
/// just past the span (SARIF's convention).
fn location(file: &SarifFile<'_>, span: Span, label: String) -> Location {
    let (start_line, start_column) = line_col_utf16(file.text, span.start);
    let (end_line, end_column) = line_col_utf16(file.text, span.end.max(span.start));
    let number = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
    let region = Region::builder()
        .start_line(number(start_line))
        .start_column(number(start_column))
        .end_line(number(end_line))
        .end_column(number(end_column))
        .build();
    let mut artifact = ArtifactLocation::builder()
        .uri(uri_reference(file.path))
        .build();
    if file.path.is_relative() {
        artifact.uri_base_id = Some(ROOT.to_string());
    }
    Location::builder()
        .physical_location(
            PhysicalLocation::builder()
                .artifact_location(artifact)
                .region(region)
                .build(),
        )
        .message(Message::builder().text(label).build())
        .build()
}

/// A path as a URI reference: a relative path stays relative, an absolute one is a `file:`
/// URI; every byte but unreserved characters and `/` percent-encoded (spaces, `#`, `%`,
/// non-ASCII, even bytes that are not UTF-8).
pub fn uri_reference(path: &Path) -> String {
    let separated;
    let mut bytes = path.as_os_str().as_encoded_bytes();
    if std::path::MAIN_SEPARATOR != '/' {
        separated = path
            .to_string_lossy()
            .replace(std::path::MAIN_SEPARATOR, "/");
        bytes = separated.as_bytes();
    }
    let encoded = percent_encode(bytes, PATH).to_string();
    if !path.is_absolute() {
        encoded
    } else if encoded.starts_with('/') {
        format!("file://{encoded}")
    } else {
        format!("file:///{encoded}")
    }
}

fn level(severity: Severity) -> ResultLevel {
    match severity {
        Severity::Error => ResultLevel::Error,
        Severity::Warning => ResultLevel::Warning,
    }
}

fn level_name(severity: Severity) -> &'static str {
    match severity {
        Severity::Error => "error",
        Severity::Warning => "warning",
    }
}

/// The title and the text of a code's `### CODE title` section of `docs/language.md`.
fn documentation(code: Code) -> (&'static str, &'static str) {
    let heading = format!("\n### {} ", code.as_str());
    let Some(start) = LANGUAGE_DOC.find(&heading) else {
        return (code.as_str(), "");
    };
    let section = &LANGUAGE_DOC[start + heading.len()..];
    let (title, body) = section.split_once('\n').unwrap_or((section, ""));
    let end = ["\n### ", "\n## "]
        .iter()
        .filter_map(|next| body.find(next))
        .min()
        .unwrap_or(body.len());
    (title.trim(), body[..end].trim())
}

/// The anchor GitHub gives the heading `### CODE title`: lower case, spaces as `-`,
/// punctuation other than `-` and `_` dropped.
fn anchor(code: &str, title: &str) -> String {
    format!("{code} {title}")
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            '-' | '_' => Some(c),
            c if c.is_alphanumeric() => Some(c),
            _ => None,
        })
        .flat_map(char::to_lowercase)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_has_a_title_and_an_explanation() {
        for &code in Code::ALL {
            let (title, explanation) = documentation(code);
            assert_ne!(title, code.as_str(), "{code:?} has no section");
            assert!(!explanation.is_empty(), "{code:?} is not explained");
            assert!(!explanation.contains("\n### "), "{code:?} runs on");
        }
    }

    #[test]
    fn anchors_are_the_ones_github_makes() {
        assert_eq!(
            anchor("E102", "Unknown connection"),
            "e102-unknown-connection"
        );
        assert_eq!(
            anchor("E311", "Start not of the mark's type"),
            "e311-start-not-of-the-marks-type"
        );
        assert_eq!(
            anchor("E309", "hmac_sha256 without a header"),
            "e309-hmac_sha256-without-a-header"
        );
    }

    #[test]
    fn paths_become_uri_references() {
        assert_eq!(
            uri_reference(Path::new("specs/a b#1%.integ")),
            "specs/a%20b%231%25.integ"
        );
        assert_eq!(uri_reference(Path::new("été.integ")), "%C3%A9t%C3%A9.integ");
        // A colon in the first segment would read as a scheme (code scanning refuses it).
        assert_eq!(uri_reference(Path::new("a:b.integ")), "a%3Ab.integ");
        assert_eq!(
            uri_reference(Path::new("/srv/x.integ")),
            "file:///srv/x.integ"
        );
    }
}
