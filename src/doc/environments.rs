//! §7: what each environment changes, and the spec's tests with what each checks.

use super::connections::{ConnectionDoc, connection, rows as rows_of};
use super::markdown::{code, heading, long_code, table};
use super::value::Source;
use crate::model::{Expectation, Integration};
use serde::Serialize;

/// An environment: every connection with its overrides applied.
#[derive(Debug, Serialize)]
pub struct EnvironmentDoc {
    pub name: String,
    pub connections: Vec<ConnectionDoc>,
}

pub fn build(model: &Integration, source: Source<'_>) -> Vec<EnvironmentDoc> {
    model
        .environments
        .iter()
        .map(|environment| EnvironmentDoc {
            name: environment.name.clone(),
            connections: environment
                .connections
                .iter()
                .map(|c| connection(c, source))
                .collect(),
        })
        .collect()
}

/// A test block: its event, what it mocks, what it checks.
#[derive(Debug, Serialize)]
pub struct TestDoc {
    pub name: String,
    pub event: String,
    pub mocks: Vec<String>,
    pub checks: Vec<String>,
}

pub fn tests(model: &Integration, source: Source<'_>) -> Vec<TestDoc> {
    model
        .tests
        .iter()
        .map(|test| TestDoc {
            name: test.name.clone(),
            event: source.written(test.event.span),
            mocks: test
                .mocks
                .iter()
                .map(|mock| {
                    let statuses: Vec<String> = mock
                        .answers
                        .all()
                        .iter()
                        .map(|a| a.status.to_string())
                        .collect();
                    format!(
                        "{} {} {} → {}",
                        mock.connection,
                        mock.method.as_str(),
                        mock.path,
                        statuses.join(", then ")
                    )
                })
                .collect(),
            checks: test
                .expectations
                .iter()
                .map(|expectation| match expectation {
                    Expectation::Request {
                        connection,
                        method,
                        path,
                        predicate,
                        times,
                        ..
                    } => {
                        let mut words = format!("{connection} {} {path}", method.as_str());
                        if let Some(predicate) = predicate {
                            words.push_str(&format!(" where {}", source.written(predicate.span)));
                        }
                        match times {
                            Some(0) => words.push_str(", never"),
                            Some(1) => words.push_str(", once"),
                            Some(n) => words.push_str(&format!(", {n} times")),
                            None => words.push_str(", at least once"),
                        }
                        words
                    }
                    Expectation::StepOutcome { step, outcome } => {
                        format!("step {step} {}", outcome.as_str())
                    }
                })
                .collect(),
        })
        .collect()
}

pub fn markdown(
    model_environments: &[EnvironmentDoc],
    connections: &[ConnectionDoc],
    tests: &[TestDoc],
    spec: &str,
) -> String {
    let mut out = heading(2, "environments", "7. Environments and tests");
    if model_environments.is_empty() {
        out.push_str("The spec declares no environment: every run uses the settings of §2.\n\n");
    } else {
        let mut header = vec!["Setting", "Spec"];
        header.extend(model_environments.iter().map(|e| e.name.as_str()));
        let mut rows = Vec::new();
        for c in connections {
            let theirs: Vec<Vec<(&str, String)>> = model_environments
                .iter()
                .map(|e| {
                    e.connections
                        .iter()
                        .find(|o| o.name == c.name)
                        .map(rows_of)
                        .unwrap_or_default()
                })
                .collect();
            for (setting, ours) in rows_of(c) {
                let cells: Vec<String> = theirs
                    .iter()
                    .map(|rows| {
                        rows.iter()
                            .find(|(s, _)| *s == setting)
                            .map(|(_, t)| {
                                if *t == ours {
                                    "same".to_string()
                                } else {
                                    t.clone()
                                }
                            })
                            .unwrap_or_else(|| "same".into())
                    })
                    .collect();
                if cells.iter().all(|c| c == "same") {
                    continue;
                }
                let mut row = vec![format!("`{}` {}", c.name, setting.to_lowercase()), ours];
                row.extend(cells);
                rows.push(row);
            }
        }
        out.push_str("Only the settings an environment changes:\n\n");
        out.push_str(&table(&header, &rows));
        let names: Vec<String> = model_environments.iter().map(|e| e.name.clone()).collect();
        out.push_str(&format!(
            "Run in an environment with `integ serve --env NAME` or `integ run {spec} --env \
            NAME` (NAME: {}).\n\n",
            names.join(", ")
        ));
    }
    out.push_str(&heading(3, "tests", "Tests"));
    if tests.is_empty() {
        out.push_str("The spec has no test block.\n\n");
        return out;
    }
    out.push_str(&format!(
        "`integ test {spec}` runs each against stand-in APIs on 127.0.0.1 (the mocks) through \
        the real engine, then checks what arrived.\n\n"
    ));
    let rows: Vec<Vec<String>> = tests
        .iter()
        .map(|t| {
            let mocks: Vec<String> = t.mocks.iter().map(|m| code(m)).collect();
            let checks: Vec<String> = t.checks.iter().map(|c| long_code(c, 160)).collect();
            vec![
                super::markdown::cell(&t.name),
                long_code(&t.event, 80),
                mocks.join("<br/>"),
                checks.join("<br/>"),
            ]
        })
        .collect();
    out.push_str(&table(
        &["Test", "Event", "Mocked answers", "Checks"],
        &rows,
    ));
    out
}
