//! `integ test`: the `test` blocks of a spec, run through the real engine against real
//! HTTP servers on 127.0.0.1, one per connection, then the expectations checked.
//!
//! Every connection gets a server, mocked or not, so a test never reaches a real API; a
//! request no mock answers gets a 404 that names it and the closest mock, and fails the
//! test whatever the steps' outcomes. Secrets are placeholders and OAuth2
//! connections send a fixed test token: tests need no credentials.

use crate::engine::{Engine, EngineError, Options, RunReport};
use crate::mock::{BodyCondition, MockResponse, MockServer, Recorded, Route, Stub};
use crate::plan::{ExpectationPlan, Plan, Scope, TestPlan, Value};
use crate::secrets::Secrets;
use serde::Serialize;
use serde_json::Value as Json;
use std::sync::Arc;

/// What one test found.
#[derive(Debug, Clone, Serialize)]
pub struct TestResult {
    pub name: String,
    pub passed: bool,
    /// Each unmet expectation, in words, with what was received instead.
    pub failures: Vec<String>,
    /// The run of each event of the test.
    pub runs: Vec<RunReport>,
}

#[derive(Debug, thiserror::Error)]
pub enum TestError {
    #[error("cannot start a mock server: {0}")]
    Server(#[from] std::io::Error),
    #[error("{0}")]
    Engine(#[from] EngineError),
    #[error("the test event: {0}")]
    Event(String),
}

/// Runs every test of `plan`.
pub async fn run_tests(plan: Arc<Plan>) -> Vec<Result<TestResult, TestError>> {
    let mut results = Vec::new();
    for test in &plan.tests {
        results.push(run_test(plan.clone(), test).await);
    }
    results
}

/// A server on 127.0.0.1 for every connection of a plan, answering one test's mocks.
#[derive(Debug)]
pub struct StandIns {
    /// By connection index.
    pub servers: Vec<MockServer>,
    /// Each connection's base path, kept on its server (see `base_paths`).
    pub base_paths: Vec<String>,
}

impl StandIns {
    /// Starts the stand-ins of `test`: every connection gets one, mocked or not, so that
    /// nothing reaches a real API.
    pub async fn start(
        plan: &Arc<Plan>,
        test: &TestPlan,
        secrets: &Secrets,
    ) -> std::io::Result<Self> {
        let base_paths = base_paths(plan, secrets);
        let mut servers = Vec::new();
        for (index, base_path) in base_paths.iter().enumerate() {
            let stubs = routes(plan, test, index, base_path, secrets);
            servers.push(MockServer::with_stubs(stubs).await?);
        }
        Ok(Self {
            servers,
            base_paths,
        })
    }

    /// Each request a stand-in could not answer as the test declares, in words: every one
    /// fails the test, whatever the steps' outcomes.
    pub fn problems(&self) -> Vec<String> {
        let mut problems: Vec<String> = Vec::new();
        for problem in self.servers.iter().flat_map(MockServer::problems) {
            if !problems.contains(&problem) {
                problems.push(problem);
            }
        }
        problems
    }

    /// Engine options that point every connection at its stand-in, with a fixed OAuth2
    /// token (a token endpoint is another host).
    pub fn options(&self) -> Options {
        Options {
            base_urls: self
                .servers
                .iter()
                .zip(&self.base_paths)
                .map(|(s, path)| Some(format!("{}{path}", s.url())))
                .collect(),
            oauth2_token: Some("integ-test-token".into()),
            ..Options::default()
        }
    }
}

async fn run_test(plan: Arc<Plan>, test: &TestPlan) -> Result<TestResult, TestError> {
    let secrets = Secrets::placeholders(plan.secrets.all());
    let stand_ins = StandIns::start(&plan, test, &secrets).await?;
    let options = stand_ins.options();
    let engine = Engine::new(plan.clone(), secrets.clone(), options)?;
    let mut runs = Vec::new();
    for event in events(&plan, test, &secrets)? {
        runs.push(engine.run(event).await);
    }
    let failures = test
        .expectations
        .iter()
        .filter_map(|expectation| check(&plan, expectation, &stand_ins, &runs, &secrets))
        .chain(stand_ins.problems())
        .chain(undeclared_failures(test, &runs))
        .map(|failure| engine.secrets().redact(&failure))
        .collect::<Vec<_>>();
    Ok(TestResult {
        name: test.name.clone(),
        passed: failures.is_empty(),
        failures,
        runs,
    })
}

/// Each connection's base path (`/api/v2` of `https://api.outreach.io/api/v2`), kept on the
/// mock server so that requests have the paths they would have in production.
fn base_paths(plan: &Plan, secrets: &Secrets) -> Vec<String> {
    plan.connections
        .iter()
        .map(|connection| {
            let base = eval(plan, &connection.base_url, &Json::Null, secrets).unwrap_or_default();
            let text = crate::engine::url::base(base.as_str().unwrap_or_default());
            text.map(|url| url.path().trim_end_matches('/').to_string())
                .unwrap_or_default()
        })
        .collect()
}

fn eval(plan: &Plan, value: &Value, document: &Json, secrets: &Secrets) -> Option<Json> {
    let scope = Scope::of(document, secrets);
    value.eval(&plan.templates, &scope).ok().flatten()
}

/// The stubs of connection `index`: its mocks, each with what it matches and its answers.
fn routes(
    plan: &Arc<Plan>,
    test: &TestPlan,
    index: usize,
    base_path: &str,
    secrets: &Secrets,
) -> Vec<Stub> {
    let connection = plan.connections.get(index).map_or("", |c| c.name.as_str());
    test.mocks
        .iter()
        .filter(|m| m.connection == index)
        .map(|mock| {
            let responses = mock
                .answers
                .iter()
                .map(|answer| MockResponse {
                    delay: std::time::Duration::ZERO,
                    status: answer.status,
                    body: answer
                        .body
                        .as_ref()
                        .and_then(|b| eval(plan, b, &Json::Null, secrets))
                        .unwrap_or_default(),
                    headers: answer
                        .headers
                        .iter()
                        .map(|(k, v)| {
                            let value = eval(plan, v, &Json::Null, secrets);
                            (k.clone(), crate::plan::as_text(value.as_ref()))
                        })
                        .collect(),
                })
                .collect();
            let body = mock.predicate.clone().map(|predicate| {
                let (plan, secrets) = (plan.clone(), secrets.clone());
                BodyCondition(Arc::new(move |body: &Json| {
                    crate::plan::truthy(eval(&plan, &predicate, body, &secrets).as_ref())
                }))
            });
            Stub {
                route: Route {
                    method: mock.method.as_str().to_string(),
                    path: format!("{base_path}{}", mock.path),
                    responses,
                },
                query: mock.query.clone(),
                body,
                repeats: mock.repeats,
                label: mock.label(connection),
            }
        })
        .collect()
}

/// The test's event as the first webhook would take it: split by `each`, filtered by
/// `when`.
fn events(plan: &Plan, test: &TestPlan, secrets: &Secrets) -> Result<Vec<Json>, TestError> {
    let body = eval(plan, &test.event, &Json::Null, secrets)
        .ok_or_else(|| TestError::Event("it has no value".into()))?;
    Ok(match plan.webhooks.first() {
        Some(webhook) => webhook
            .events(
                &plan.templates,
                body,
                &request_headers(plan, test, webhook, secrets)?,
                secrets,
            )
            .map_err(|e| TestError::Event(e.to_string()))?
            .events
            .into_iter()
            .map(|(event, _)| event)
            .collect(),
        None => vec![body],
    })
}

/// The headers the test's `event ... headers { }` gives the webhook request.
fn request_headers(
    plan: &Plan,
    test: &TestPlan,
    webhook: &crate::plan::WebhookPlan,
    secrets: &Secrets,
) -> Result<crate::plan::RequestHeaders, TestError> {
    let values = test
        .headers
        .iter()
        .map(|(name, value)| {
            let value = eval(plan, value, &Json::Null, secrets)
                .ok_or_else(|| TestError::Event(format!("header `{name}` has no value")))?;
            Ok((name.as_str(), crate::plan::as_text(Some(&value))))
        })
        .collect::<Result<Vec<_>, TestError>>()?;
    Ok(webhook.readable_headers(values.iter().map(|(name, value)| (*name, value.as_bytes()))))
}

/// Every step that failed although the test does not declare that outcome with
/// `expect step NAME OUTCOME`: a test whose run failed (a missing mock answered 404, a
/// template missed a value) must not pass because its expectations happen to hold.
fn undeclared_failures<'a>(
    test: &'a TestPlan,
    runs: &'a [RunReport],
) -> impl Iterator<Item = String> + 'a {
    let declared = |name: &str, outcome| {
        test.expectations.iter().any(|e| {
            matches!(e, ExpectationPlan::StepOutcome { step, outcome: o } if step == name && *o == outcome)
        })
    };
    runs.iter()
        .flat_map(|run| &run.steps)
        .filter(move |step| step.failed() && !declared(&step.name, step.outcome))
        .map(|step| {
            format!(
                "step `{name}` {outcome}: {error}; mock what it calls, or, if this outcome is \
                 what the test is about, declare `expect step {name} {outcome}`",
                name = step.name,
                outcome = step.outcome.as_str(),
                error = step.error.as_deref().unwrap_or("no detail"),
            )
        })
}

/// `None` when the expectation holds; else what was expected and what happened.
fn check(
    plan: &Plan,
    expectation: &ExpectationPlan,
    stand_ins: &StandIns,
    runs: &[RunReport],
    secrets: &Secrets,
) -> Option<String> {
    match expectation {
        ExpectationPlan::Request {
            connection,
            method,
            path,
            query,
            predicate,
            times,
        } => {
            let server = stand_ins.servers.get(*connection)?;
            let full_path = format!(
                "{}{path}",
                stand_ins
                    .base_paths
                    .get(*connection)
                    .map_or("", String::as_str)
            );
            let requests = server.requests();
            let same_route: Vec<&Recorded> = requests
                .iter()
                .filter(|r| {
                    r.method == method.as_str()
                        && crate::engine::url::same_path(&full_path, &r.path)
                        && query.iter().all(|pair| r.query.contains(pair))
                })
                .collect();
            let matching = same_route
                .iter()
                .filter(|r| {
                    predicate.as_ref().is_none_or(|p| {
                        crate::plan::truthy(eval(plan, p, &r.body, secrets).as_ref())
                    })
                })
                .count();
            let name = &plan.connections.get(*connection)?.name;
            let wanted = match times {
                Some(times) => *times as usize == matching,
                None => matching > 0,
            };
            if wanted {
                return None;
            }
            let condition = if predicate.is_some() {
                " matching its `where`"
            } else {
                ""
            };
            let expected = match times {
                Some(times) => format!("{times} time(s)"),
                None => "at least once".into(),
            };
            let written = match query.is_empty() {
                true => path.clone(),
                false => format!(
                    "{path}?{}",
                    form_urlencoded::Serializer::new(String::new())
                        .extend_pairs(query)
                        .finish()
                ),
            };
            let mut message = format!(
                "expected {name} {method} {written}{condition} {expected}; it was {matching} time(s)",
                method = method.as_str()
            );
            message.push_str(&received(&requests));
            Some(message)
        }
        ExpectationPlan::StepOutcome { step, outcome } => {
            let actual: Vec<&str> = runs
                .iter()
                .flat_map(|run| &run.steps)
                .filter(|s| &s.name == step)
                .map(|s| s.outcome.as_str())
                .collect();
            if actual.contains(&outcome.as_str()) {
                return None;
            }
            let actual = if actual.is_empty() {
                "did not run".to_string()
            } else {
                actual.join(", ")
            };
            Some(format!(
                "expected step `{step}` {}; it {actual}",
                outcome.as_str()
            ))
        }
    }
}

fn received(requests: &[Recorded]) -> String {
    if requests.is_empty() {
        return "\n    the connection received no request".into();
    }
    let lines: Vec<String> = requests
        .iter()
        .map(|r| {
            let body = if r.body.is_null() {
                String::new()
            } else {
                format!(" {}", r.body)
            };
            let query = match r.query.is_empty() {
                true => String::new(),
                false => format!(
                    "?{}",
                    form_urlencoded::Serializer::new(String::new())
                        .extend_pairs(&r.query)
                        .finish()
                ),
            };
            format!("\n    received {} {}{query}{body}", r.method, r.path)
        })
        .collect();
    lines.concat()
}
