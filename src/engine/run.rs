//! Running one event: the steps in order, each result readable by later steps; `when`,
//! `for_each`, pagination, GraphQL, and the error policy after the last attempt.

use super::http::{Exchange, HttpError, Request, Response};
use super::report::{Invented, RequestReport, RunOutcome, RunReport, StepReport};
use super::{Engine, url};
use crate::ast::{Method, TargetSegment};
use crate::model::{OnError, Outcome};
use crate::plan::{
    BodyPlan, CallPlan, Clock, EvalError, PageStyle, Scope, StepPlan, Value, as_text,
};
use crate::telemetry::labels::CacheResult;
use futures_util::StreamExt;
use serde_json::{Map, Value as Json};
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Without `max_pages`, a paginated step stops after this many pages: a safety net against
/// an API that always answers with a next page.
pub const PAGE_LIMIT: u32 = 1000;

/// The most a paginated step collects unless the engine is told otherwise, in bytes of its
/// items as JSON: they are kept in memory and checkpointed as one row.
pub const DEFAULT_MAX_COLLECTED_BYTES: usize = 64 * 1024 * 1024;

/// Why a step failed.
#[derive(Debug, Clone, thiserror::Error)]
pub(super) enum StepError {
    #[error("{0}")]
    Eval(#[from] EvalError),
    #[error("{0}")]
    Http(#[from] HttpError),
    #[error("{0}")]
    Url(#[from] url::UrlError),
    #[error("GraphQL errors: {0}")]
    GraphQl(String),
    #[error("`for_each` needs a list, got {0}")]
    NotAList(&'static str),
    #[error("list index {0} in a body target is above {max}", max = TargetSegment::MAX_INDEX)]
    ListIndex(usize),
    #[error(
        "pagination loops: page {page} would ask for the same page as page {earlier} ({url}); stopped"
    )]
    PageLoop {
        page: u32,
        earlier: u32,
        url: String,
    },
    #[error(
        "pagination collected more than {limit} bytes of items by page {page}; stopped (narrow the query, or lower `max_pages`)"
    )]
    TooMuch { page: u32, limit: usize },
}

/// How a step ended: with its report, or deferred (the API asked for a longer wait than the
/// step may hold a worker) with the report of its attempt and the wait.
pub(super) enum StepEnd {
    Ran(StepReport),
    Deferred(StepReport, Duration),
}

/// How many attempts of one request a report keeps: the first and the last half of them
/// (`attempts` counts them all).
const KEPT_TRIES: usize = 20;

/// A step's work: its result and the requests it made.
struct Done {
    result: Result<Option<Json>, StepError>,
    requests: Vec<RequestReport>,
    /// What the step's report should say although it did not fail.
    warnings: Vec<String>,
}

impl Engine {
    /// Runs every step for one event and reports what happened.
    pub async fn run(&self, event: Json) -> RunReport {
        self.resume(&event, Map::new(), |_, _| std::future::ready(()))
            .await
    }

    /// Runs the steps not in `done` (the results of steps an earlier attempt completed),
    /// calling `checkpoint` with each step that completes and its result, so that a resumed
    /// event starts at its first unfinished step (awaited before the next step starts).
    pub async fn resume<Checkpointed: Future<Output = ()>>(
        &self,
        event: &Json,
        done: Map<String, Json>,
        mut checkpoint: impl FnMut(&str, Option<&Json>) -> Checkpointed,
    ) -> RunReport {
        let started = Instant::now();
        // `now()` is one instant for the whole run (a resumed run reads the clock again).
        let clock = Clock::now();
        let mut results = Map::new();
        let mut reports = Vec::new();
        let mut outcome = RunOutcome::Succeeded;
        let mut real_run_stops_at = None;
        let steps = &self.plan().steps;
        // The steps before this one ran with the paged step before them (`per_page`).
        let mut ran_per_page = 0;
        for (index, step) in steps.iter().enumerate() {
            if index < ran_per_page {
                continue;
            }
            if let Some(result) = done.get(&step.name) {
                if !result.is_null() {
                    results.insert(step.name.clone(), result.clone());
                }
                continue;
            }
            let guessed = guessed_responses(&reports);
            let members = per_page_steps(steps, index);
            if !members.is_empty() {
                ran_per_page = members.end;
                let (ran, stop) = self
                    .per_page(
                        index,
                        event,
                        &mut results,
                        &done,
                        &guessed,
                        &mut checkpoint,
                        clock,
                    )
                    .await;
                if stop.is_none() && members.end < steps.len() {
                    for report in &ran {
                        checkpoint(&report.name, None).await;
                    }
                }
                reports.extend(ran);
                if let Some(stop) = stop {
                    if !self.options.dry_run || matches!(stop, RunOutcome::Deferred { .. }) {
                        outcome = stop;
                        break;
                    }
                    if outcome == RunOutcome::Succeeded {
                        outcome = stop;
                        real_run_stops_at = Some(step.name.clone());
                    }
                }
                continue;
            }
            let ended = self
                .run_step(step, event, &mut results, &guessed, true, clock)
                .await;
            let (report, stop) = match ended {
                StepEnd::Deferred(report, wait) => (report, Some(RunOutcome::Deferred { wait })),
                StepEnd::Ran(report) => {
                    let stop = match report.outcome {
                        Outcome::Failed => Some(RunOutcome::Failed),
                        Outcome::DeadLettered => Some(RunOutcome::DeadLettered),
                        Outcome::Succeeded | Outcome::Skipped | Outcome::FellBack => {
                            // After the last step the run's end is recorded instead.
                            if index + 1 < steps.len() {
                                checkpoint(&step.name, results.get(&step.name)).await;
                            }
                            None
                        }
                    };
                    (report, stop)
                }
            };
            reports.push(report);
            if let Some(stop) = stop {
                if !self.options.dry_run {
                    outcome = stop;
                    break;
                }
                // A dry run goes on past a failure, to show every step's problem at once,
                // and says where a real run would have stopped.
                if outcome == RunOutcome::Succeeded {
                    outcome = stop;
                    real_run_stops_at = Some(step.name.clone());
                }
            }
        }
        RunReport {
            integration: self.plan().name.clone(),
            outcome,
            steps: reports,
            duration: started.elapsed(),
            real_run_stops_at,
            began: started,
        }
    }

    /// Runs one step. `guessed` names the earlier steps whose responses a dry run made up
    /// empty: a value missing because it would come from them is not the spec's fault.
    pub(super) async fn run_step(
        &self,
        step: &StepPlan,
        event: &Json,
        results: &mut Map<String, Json>,
        guessed: &[&str],
        may_defer: bool,
        clock: Clock,
    ) -> StepEnd {
        let report = |outcome, requests, error: Option<String>, fallback| StepReport {
            name: step.name.clone(),
            outcome,
            requests,
            error: error.map(|e| self.secrets().redact_cut(&e)),
            note: None,
            fallback,
            warnings: Vec::new(),
        };
        let needs_answers = |requests, error: &StepError| StepReport {
            note: Some(self.secrets().redact(&format!(
                "a real response of {} would be needed (no test mocks it): {error}",
                guessed.iter().map(|s| format!("`{s}`")).collect::<Vec<_>>().join(", ")
            ))),
            ..report(Outcome::Skipped, requests, None, None)
        };
        let guessing = |error: &StepError| match error {
            StepError::Eval(
                EvalError::MissingInTemplate { template, .. }
                | EvalError::Template { template, .. },
            ) => reads_any(template, guessed),
            StepError::NotAList(_) => !guessed.is_empty(),
            _ => false,
        };
        let scope = Scope::of_step(event, results, self.secrets(), clock);
        // In a `for_each` step, `when` is read per element (it may read `$item`).
        let step_when = step.when.as_ref().filter(|_| step.for_each.is_none());
        match step_when.map(|when| when.test(&self.plan().templates, &scope)) {
            Some(Ok(false)) => {
                return StepEnd::Ran(StepReport {
                    note: Some("`when` was false".into()),
                    ..report(Outcome::Skipped, Vec::new(), None, None)
                });
            }
            Some(Err(error)) => {
                let error = StepError::from(error);
                if self.options.dry_run && guessing(&error) {
                    return StepEnd::Ran(needs_answers(Vec::new(), &error));
                }
                return StepEnd::Ran(
                    self.after_failure(step, event, results, Vec::new(), error, clock)
                        .await,
                );
            }
            _ => {}
        }
        let done = self.perform(step, &scope).await;
        // Deferred, the step runs again whole: only when none of its requests got through
        // (a `for_each` whose first elements were sent would send them twice). A lone
        // request was the one told to wait, even with a `2xx` a rule read as a refusal.
        let nothing_sent = done.requests.len() <= 1
            || done
                .requests
                .iter()
                .all(|r| r.status.is_none_or(|s| !(200..300).contains(&s)));
        if let Err(StepError::Http(HttpError::WaitTooLong { asked, .. })) = &done.result
            && self.options.defer_long_waits
            && may_defer
            && nothing_sent
        {
            let wait = (*asked).min(super::limits::MAX_PAUSE);
            let error = done.result.as_ref().err().map(|e| format!("deferred: {e}"));
            return StepEnd::Deferred(report(Outcome::Failed, done.requests, error, None), wait);
        }
        StepEnd::Ran(match done.result {
            Ok(result) => {
                if let Some(result) = result {
                    results.insert(step.name.clone(), result);
                }
                StepReport {
                    warnings: done
                        .warnings
                        .iter()
                        .map(|w| self.secrets().redact(w))
                        .collect(),
                    ..report(Outcome::Succeeded, done.requests, None, None)
                }
            }
            Err(error) if self.options.dry_run && guessing(&error) => {
                needs_answers(done.requests, &error)
            }
            Err(error) => {
                self.after_failure(step, event, results, done.requests, error, clock)
                    .await
            }
        })
    }

    /// The step's `on_error` policy, after its last attempt failed.
    pub(super) async fn after_failure(
        &self,
        step: &StepPlan,
        event: &Json,
        results: &mut Map<String, Json>,
        requests: Vec<RequestReport>,
        error: StepError,
        clock: Clock,
    ) -> StepReport {
        let redact = |e: &dyn std::fmt::Display| Some(self.secrets().redact(&e.to_string()));
        let mut report = StepReport {
            name: step.name.clone(),
            outcome: Outcome::Failed,
            requests,
            error: redact(&error),
            note: None,
            fallback: None,
            warnings: Vec::new(),
        };
        match &step.on_error {
            OnError::Fail => {}
            OnError::Skip => report.outcome = Outcome::Skipped,
            OnError::DeadLetter => report.outcome = Outcome::DeadLettered,
            OnError::Fallback(name) => {
                let Some(fallback) = self.plan().fallbacks.iter().find(|f| &f.name == name) else {
                    report.outcome = Outcome::DeadLettered;
                    return report;
                };
                let scope = Scope::of_step(event, results, self.secrets(), clock);
                let done = self.perform(fallback, &scope).await;
                report.requests.extend(done.requests);
                report.fallback = Some(name.clone());
                match done.result {
                    Ok(result) => {
                        if let Some(result) = result {
                            results.insert(step.name.clone(), result);
                        }
                        report.outcome = Outcome::FellBack;
                    }
                    Err(fallback_error) => {
                        // The fallback's own policy decides; a fallback of a fallback is
                        // not followed, and dead-letters.
                        report.outcome = match fallback.on_error {
                            OnError::Skip => Outcome::Skipped,
                            OnError::Fail => Outcome::Failed,
                            OnError::DeadLetter | OnError::Fallback(_) => Outcome::DeadLettered,
                        };
                        report.error = redact(&format!(
                            "{error}; fallback `{name}` failed too: {fallback_error}"
                        ));
                    }
                }
            }
        }
        report
    }

    /// A step's requests: one, one per `for_each` element, or one per page.
    async fn perform(&self, step: &StepPlan, scope: &Scope<'_>) -> Done {
        let Some(for_each) = &step.for_each else {
            return self.call(step, scope).await;
        };
        let items = match for_each.items.eval(&self.plan().templates, scope) {
            Ok(Some(Json::Array(items))) => items,
            Ok(None | Some(Json::Null)) => Vec::new(),
            Ok(Some(other)) => return failed(StepError::NotAList(json_kind(&other))),
            Err(error) => return failed(error.into()),
        };
        // Each element is moved into its call: a stream of borrowed elements would make
        // this future not `Send` for every lifetime, which a spawned worker needs.
        let calls = futures_util::stream::iter(items)
            .map(|item| async move {
                let scope = Scope {
                    item: Some(&item),
                    ..*scope
                };
                match step
                    .when
                    .as_ref()
                    .map(|when| when.test(&self.plan().templates, &scope))
                {
                    // An element `when` turns down gets null in the results.
                    Some(Ok(false)) => Done {
                        result: Ok(None),
                        requests: Vec::new(),
                        warnings: Vec::new(),
                    },
                    Some(Err(error)) => failed(error.into()),
                    _ => self.call(step, &scope).await,
                }
            })
            .buffered(for_each.concurrency);
        let done: Vec<Done> = calls.collect().await;
        let mut requests = Vec::new();
        let mut warnings = Vec::new();
        let mut results = Vec::new();
        let mut first_error = None;
        for one in done {
            requests.extend(one.requests);
            warnings.extend(one.warnings);
            match one.result {
                Ok(result) => results.push(result.unwrap_or_default()),
                Err(error) => {
                    first_error.get_or_insert(error);
                }
            }
        }
        let result = match first_error {
            Some(error) => Err(error),
            None => Ok(Some(Json::Array(results))),
        };
        Done {
            result,
            requests,
            warnings,
        }
    }

    /// One request (or one per page) for the scope.
    async fn call(&self, step: &StepPlan, scope: &Scope<'_>) -> Done {
        let request = match self.request(step, scope) {
            Ok(request) => request,
            Err(error) => return failed(error),
        };
        match &step.pagination {
            None => {
                let (result, report) = self.exchange(step, &request, scope).await;
                let mut warnings = Vec::new();
                let result =
                    result.and_then(|response| self.result(step, response, scope, &mut warnings));
                Done {
                    result,
                    requests: vec![report],
                    warnings,
                }
            }
            Some(_) => self.paginate(step, request, scope).await,
        }
    }

    /// The request of a step for the scope.
    pub(super) fn request(&self, step: &StepPlan, scope: &Scope<'_>) -> Result<Request, StepError> {
        let env = &self.plan().templates;
        let connection = &self.connections[step.connection];
        let path = as_text(step.path.eval(env, scope)?.as_ref());
        let mut url = url::join(&connection.base, &path)?;
        for (name, value) in &step.query {
            if let Some(value) = value.eval(env, scope)? {
                url.query_pairs_mut()
                    .append_pair(name, &as_text(Some(&value)));
            }
        }
        let mut headers = Vec::new();
        for (name, value) in &step.headers {
            if let Some(value) = value.eval(env, scope)? {
                headers.push((name.clone(), as_text(Some(&value))));
            }
        }
        if let Some(key) = &step.idempotency_key
            && let Some(key) = key.eval(env, scope)?
        {
            headers.push(("Idempotency-Key".to_string(), as_text(Some(&key))));
        }
        let body = match &step.call {
            CallPlan::Http(_) => self.body(step, scope)?,
            CallPlan::GraphQl {
                document,
                variables,
                ..
            } => {
                let variables = mapping(variables, env, scope)?;
                Some(serde_json::json!({ "query": document, "variables": variables }))
            }
        };
        let method = step.method();
        Ok(Request {
            graphql: matches!(step.call, CallPlan::GraphQl { .. }),
            method,
            url,
            headers,
            body,
            // GraphQL is JSON whatever the connection's encoding.
            encoding: match &step.call {
                CallPlan::GraphQl { .. } => crate::model::Encoding::Json,
                CallPlan::Http(_) => step.encoding.unwrap_or(connection.encoding),
            },
            timeout: step.timeout,
        })
    }

    fn body(&self, step: &StepPlan, scope: &Scope<'_>) -> Result<Option<Json>, StepError> {
        let env = &self.plan().templates;
        Ok(match &step.body {
            None => None,
            Some(BodyPlan::Raw(value)) => value.eval(env, scope)?,
            Some(BodyPlan::Mapping(targets)) => Some(mapping(targets, env, scope)?),
        })
    }

    /// Sends (or, in a dry run, only records) one request.
    pub(super) async fn exchange(
        &self,
        step: &StepPlan,
        request: &Request,
        scope: &Scope<'_>,
    ) -> (Result<Response, StepError>, RequestReport) {
        let connection = &self.connections[step.connection];
        let redact = |text: &str| self.secrets().redact(text);
        let redact_cut = |text: &str| self.secrets().redact_cut(text);
        let mut report = RequestReport {
            method: request.method.as_str().to_string(),
            url: redact(&shown_url(&request.url)),
            status: None,
            duration: Duration::ZERO,
            attempts: 0,
            tries: Vec::new(),
            began: None,
            rate_limited: 0,
            cache_hit: None,
            headers: None,
            body: None,
            invented: None,
        };
        if self.options.dry_run {
            let mut shown: Vec<(String, String)> = connection
                .wire_headers(request)
                .into_iter()
                .map(|(k, v)| {
                    let value = redact_header(&k, &redact(&v));
                    (k, value)
                })
                .collect();
            if let Some(name) = connection.auth.header() {
                shown.insert(0, (name.to_string(), crate::secrets::REDACTED.to_string()));
            }
            report.headers = Some(shown);
            report.body = request.body.as_ref().map(|body| {
                super::http::encode_body(request.encoding, &self.secrets().redact_json(body))
            });
            let (response, invented) = self.dry_response(step, request);
            report.invented = Some(invented);
            return (Ok(response), report);
        }
        let env = &self.plan().templates;
        let judge = |response: &Response| super::rules::judge(&step.rules, env, scope, response);
        // A step without rules is judged by its statuses alone, at no cost.
        let judge = (!step.rules.is_empty()).then_some(&judge as &super::http::Judge<'_>);
        let cache_key = step
            .cache
            .filter(|_| request.method == Method::Get)
            .map(|ttl| (cache_key(request), ttl));
        // The cache is the connection's and holds answers as they came: each step that
        // reads one judges it by its own rules.
        if let Some((key, _)) = &cache_key
            && let Some(response) = connection.cache.get(key)
            && let Some(response) = super::http::accepted(response, judge)
        {
            connection.metrics.cache(CacheResult::Hit);
            report.cache_hit = Some(true);
            report.status = Some(response.status);
            return (Ok(response), report);
        }
        if cache_key.is_some() {
            connection.metrics.cache(CacheResult::Miss);
        }
        let idempotent = is_idempotent(step, request);
        report.began = Some(Instant::now());
        let Exchange {
            result,
            tries,
            rate_limited,
            duration,
        } = connection
            .send(request, &step.retry, idempotent, judge)
            .await;
        report.attempts = u32::try_from(tries.len()).unwrap_or(u32::MAX);
        // A spec may allow many attempts: the history keeps the first and the last ones.
        let left_out = tries.len().saturating_sub(KEPT_TRIES);
        report.tries = tries
            .into_iter()
            .enumerate()
            .filter(|(at, _)| *at < KEPT_TRIES / 2 || *at >= KEPT_TRIES / 2 + left_out)
            .map(|(_, attempt)| attempt.redacted(redact_cut))
            .collect();
        report.rate_limited = rate_limited;
        report.duration = duration;
        // An answer a rule made empty has lost its body: another step could not judge it.
        if let (Some((key, ttl)), Ok(response)) = (cache_key, &result)
            && !response.empty
        {
            connection.cache.put(key, response, ttl);
            report.cache_hit = Some(false);
        }
        report.status = match &result {
            Ok(response) => Some(response.status),
            Err(error) => error.status(),
        };
        (result.map_err(StepError::from), report)
    }

    /// In a dry run, a step's response comes from the spec's mocks when one matches, so
    /// that later steps see realistic data; else it is null. Either way it is labelled.
    fn dry_response(&self, step: &StepPlan, request: &Request) -> (Response, Invented) {
        let connection = &self.connections[step.connection];
        let path = request
            .url
            .path()
            .strip_prefix(connection.base.path().trim_end_matches('/'))
            .unwrap_or("");
        let mock = self
            .plan()
            .tests
            .iter()
            .flat_map(|t| t.mocks.iter().map(move |m| (t, m)))
            .filter(|(_, m)| {
                m.connection == step.connection
                    && m.method == request.method
                    && url::same_path(&m.path, path)
                    && m.query.iter().all(|(name, value)| {
                        request
                            .url
                            .query_pairs()
                            .any(|(k, v)| k == *name && v == *value)
                    })
            })
            .filter_map(|(t, m)| Some((t, m.working_answer()?)))
            // A test may mock a failure; a dry run shows the way things go when they work.
            .min_by_key(|(_, a)| !(200..300).contains(&a.status));
        let invented = Invented {
            status: mock.map_or(200, |(_, a)| a.status),
            mock_of_test: mock.map(|(t, _)| t.name.clone()),
        };
        let answer = mock.map(|(_, a)| a);
        let scope = Scope::fixed(self.secrets());
        let body = answer
            .and_then(|a| a.body.as_ref())
            .and_then(|b| b.eval(&self.plan().templates, &scope).ok().flatten())
            .unwrap_or_default();
        let response = Response {
            status: invented.status,
            headers: Default::default(),
            body,
            empty: false,
        };
        (response, invented)
    }

    /// A response as the step's result: GraphQL `data` (its `errors` fail the step unless
    /// it accepts partial data), or the step's `items`, or the body. An answer a rule made
    /// empty is no items (`[]`) for a step with `items`, else no result.
    fn result(
        &self,
        step: &StepPlan,
        response: Response,
        scope: &Scope<'_>,
        warnings: &mut Vec<String>,
    ) -> Result<Option<Json>, StepError> {
        if response.empty {
            warnings.push(empty_note(response.status));
            return Ok(step.items.as_ref().map(|_| Json::Array(Vec::new())));
        }
        let body = self.body_of(step, response.body, warnings)?;
        match &step.items {
            Some(items) => Ok(items.eval(
                &self.plan().templates,
                &Scope {
                    document: &body,
                    ..*scope
                },
            )?),
            None => Ok(Some(body)),
        }
    }

    /// Follows pages until the style says there is no next one, collecting the items.
    async fn paginate(&self, step: &StepPlan, first: Request, scope: &Scope<'_>) -> Done {
        let mut requests = Vec::new();
        let mut warnings = Vec::new();
        let result = self
            .pages(step, first, scope, &mut requests, &mut warnings)
            .await;
        Done {
            result: result.map(Some),
            requests,
            warnings,
        }
    }

    /// The pages of `paginate`, each request reported in `requests`: their items, or why the
    /// pagination stopped short (an error, a next position asked for before, or more items
    /// than the engine's `max_collected_bytes`).
    async fn pages(
        &self,
        step: &StepPlan,
        first: Request,
        scope: &Scope<'_>,
        requests: &mut Vec<RequestReport>,
        warnings: &mut Vec<String>,
    ) -> Result<Json, StepError> {
        let Some(pagination) = &step.pagination else {
            return Err(StepError::NotAList("nothing"));
        };
        let env = &self.plan().templates;
        let limit = pagination.max_pages.map_or(PAGE_LIMIT, |n| n.get());
        let mut request = first;
        start_page(&pagination.style, &mut request);
        let mut items = Vec::new();
        let mut collected = 0usize;
        let most = (self.options.max_collected_bytes).unwrap_or(DEFAULT_MAX_COLLECTED_BYTES);
        // Every position asked for, with its page: one handed out again means a loop.
        let mut asked = HashMap::from([(position(&request), 1)]);
        for page in 1..=limit {
            let (result, report) = self.exchange(step, &request, scope).await;
            requests.push(report);
            let response = result?;
            if response.empty {
                // "Nothing here": this page has no items and there is no next one.
                let note = empty_note(response.status);
                if !warnings.contains(&note) {
                    warnings.push(note);
                }
                break;
            }
            let body = self.body_of(step, response.body.clone(), warnings)?;
            let page_scope = Scope {
                document: &body,
                ..*scope
            };
            let found = match pagination.items.eval(env, &page_scope)? {
                Some(Json::Array(found)) => found,
                Some(Json::Null) | None => Vec::new(),
                Some(one) => vec![one],
            };
            collected = collected.saturating_add(json_size(&found));
            if collected > most {
                return Err(StepError::TooMuch { page, limit: most });
            }
            let count = found.len() as u64;
            items.extend(found);
            let more = match &pagination.has_more {
                Some(more) => more.test(env, &page_scope)?,
                None => true,
            };
            if self.options.dry_run || !more {
                break;
            }
            let seen = Page {
                response: &response,
                scope: &page_scope,
                number: page,
                items: count,
                has_more: pagination.has_more.is_some(),
            };
            if page == limit {
                let mut next = request.clone();
                let beyond = self.advance(step, &pagination.style, &mut next, &seen);
                if pagination.max_pages.is_none() && matches!(beyond, Ok(true)) {
                    warnings.push(format!(
                        "stopped after {PAGE_LIMIT} pages, the limit without `max_pages`, \
                         although the API had more"
                    ));
                }
                break;
            }
            if !self.advance(step, &pagination.style, &mut request, &seen)? {
                break;
            }
            if let Some(earlier) = asked.insert(position(&request), page + 1) {
                return Err(StepError::PageLoop {
                    page: page + 1,
                    earlier,
                    url: shown_url(&request.url),
                });
            }
        }
        Ok(Json::Array(items))
    }
}

impl Engine {
    /// Points `request` at the page after `seen`; `false` when the style says there is none.
    pub(super) fn advance(
        &self,
        step: &StepPlan,
        style: &PageStyle,
        request: &mut Request,
        seen: &Page<'_>,
    ) -> Result<bool, StepError> {
        let (response, page_scope, page, count) =
            (seen.response, seen.scope, seen.number, seen.items);
        let env = &self.plan().templates;
        let base = &self.connections[step.connection].base;
        Ok(match style {
            PageStyle::Cursor { path, param } => match path.eval(env, page_scope)? {
                Some(cursor) if crate::plan::truthy(Some(&cursor)) => {
                    set_position(request, param, cursor);
                    true
                }
                _ => false,
            },
            PageStyle::BodyCursor { path, field } => match path.eval(env, page_scope)? {
                Some(cursor) if crate::plan::truthy(Some(&cursor)) => {
                    set_body_field(&mut request.body, field, cursor);
                    true
                }
                _ => false,
            },
            PageStyle::LinkHeader => match link_next(response) {
                Some(link) => {
                    request.url = url::next_link(base, &request.url, &link)?;
                    true
                }
                None => false,
            },
            PageStyle::NextLink(path) => match path.eval(env, page_scope)? {
                Some(Json::String(link)) if !link.is_empty() => {
                    request.url = url::next_link(base, &request.url, &link)?;
                    true
                }
                _ => false,
            },
            // With `has_more`, the API says when to stop; else a short page is the last.
            PageStyle::Offset {
                offset_param,
                limit,
                ..
            } => {
                let offset = u64::from(page) * u64::from(*limit);
                set_position(request, offset_param, offset.into());
                seen.has_more || count >= u64::from(*limit)
            }
            PageStyle::Page { param, from, size } => {
                let full = size
                    .as_ref()
                    .is_none_or(|(_, size)| count >= u64::from(*size));
                set_position(request, param, (u64::from(*from) + u64::from(page)).into());
                seen.has_more || (count > 0 && full)
            }
        })
    }
}

/// A page just received: its response, the scope that reads it, its number from 1 and how
/// many items it held.
pub(super) struct Page<'a> {
    pub(super) response: &'a Response,
    pub(super) scope: &'a Scope<'a>,
    pub(super) number: u32,
    pub(super) items: u64,
    /// The step declares `has_more` (which said yes): page sizes do not end the loop.
    pub(super) has_more: bool,
}

fn failed(error: StepError) -> Done {
    Done {
        result: Err(error),
        requests: Vec::new(),
        warnings: Vec::new(),
    }
}

/// What identifies the page a request asks for: its URL, and for GraphQL its variables.
pub(super) fn position(request: &Request) -> String {
    let variables = request.body.as_ref().and_then(|b| b.get("variables"));
    match variables.filter(|_| request.graphql) {
        Some(variables) => format!("{} {variables}", request.url),
        None => request.url.to_string(),
    }
}

/// The size of `items` as JSON text, without writing it anywhere.
fn json_size(items: &[Json]) -> usize {
    #[derive(Default)]
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0 = self.0.saturating_add(bytes.len());
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count::default();
    // Serializing JSON values to a writer that cannot fail cannot fail.
    let _ = serde_json::to_writer(&mut count, items);
    count.0
}

/// The first request of offset and page styles carries the starting position.
pub(super) fn start_page(style: &PageStyle, request: &mut Request) {
    match style {
        PageStyle::Offset {
            offset_param,
            limit_param,
            limit,
        } => {
            set_position(request, offset_param, 0.into());
            set_position(request, limit_param, (*limit).into());
        }
        PageStyle::Page { param, from, size } => {
            set_position(request, param, (*from).into());
            if let Some((name, size)) = size {
                set_position(request, name, (*size).into());
            }
        }
        PageStyle::Cursor { .. }
        | PageStyle::BodyCursor { .. }
        | PageStyle::LinkHeader
        | PageStyle::NextLink(_) => {}
    }
}

/// Sets a top-level field of a JSON body (making the body an object if it is none).
pub(super) fn set_body_field(body: &mut Option<Json>, field: &str, value: Json) {
    match body {
        Some(Json::Object(fields)) => {
            fields.insert(field.to_string(), value);
        }
        _ => *body = Some(serde_json::json!({ field: value })),
    }
}

/// Sets a page position: a GraphQL variable for a GraphQL step (its body is what
/// changes from page to page), else a query parameter.
fn set_position(request: &mut Request, name: &str, value: Json) {
    if let Some(variables) = request
        .body
        .as_mut()
        .filter(|_| request.graphql)
        .and_then(|b| b.get_mut("variables"))
        && let Json::Object(variables) = variables
    {
        variables.insert(name.to_string(), value);
        return;
    }
    set_param(&mut request.url, name, &as_text(Some(&value)));
}

/// Sets query parameter `name` to `value`, replacing any earlier value.
pub(super) fn set_param(url: &mut reqwest::Url, name: &str, value: &str) {
    let others: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(k, _)| k != name)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let mut pairs = url.query_pairs_mut();
    pairs.clear();
    pairs.extend_pairs(others);
    pairs.append_pair(name, value);
}

/// The `rel="next"` target of the response's `Link` header fields (RFC 8288).
pub(super) fn link_next(response: &Response) -> Option<String> {
    let fields = response.headers.get_all(reqwest::header::LINK);
    super::link::find(fields.iter().filter_map(|v| v.to_str().ok()), "next")
}

impl Engine {
    /// What a step reads of an answer's body: a GraphQL answer's `data`, else the body.
    pub(super) fn body_of(
        &self,
        step: &StepPlan,
        body: Json,
        warnings: &mut Vec<String>,
    ) -> Result<Json, StepError> {
        match &step.call {
            CallPlan::GraphQl { .. } => {
                let (data, accepted) = graphql_data(body, step.partial_data)?;
                if let Some(errors) = accepted {
                    let errors = self.secrets().redact(&errors);
                    tracing::warn!(step = %step.name, %errors, "GraphQL errors accepted with partial data");
                    warnings.push(format!(
                        "GraphQL errors accepted with partial data: {errors}"
                    ));
                }
                Ok(data)
            }
            CallPlan::Http(_) => Ok(body),
        }
    }
}

/// What a step's report says of an answer a rule made empty: a `404` taken for "nothing
/// here" must stay visible, or a wrong URL would pass unseen.
pub(super) fn empty_note(status: u16) -> String {
    format!("a response rule took the answer (status {status}) as empty")
}

/// A GraphQL response's `data`. An `errors` list fails the step with the messages, unless
/// the step accepts partial data and there is data: then the messages come along.
fn graphql_data(
    body: Json,
    partial: crate::model::PartialData,
) -> Result<(Json, Option<String>), StepError> {
    let data = body.get("data").cloned().unwrap_or_default();
    let Some(errors) = body
        .get("errors")
        .and_then(Json::as_array)
        .filter(|e| !e.is_empty())
    else {
        return Ok((data, None));
    };
    let messages: Vec<String> = errors
        .iter()
        .map(|e| {
            e.get("message")
                .and_then(Json::as_str)
                .map_or_else(|| e.to_string(), String::from)
        })
        .collect();
    let messages = messages.join("; ");
    match partial {
        crate::model::PartialData::Accept if !data.is_null() => Ok((data, Some(messages))),
        _ => Err(StepError::GraphQl(messages)),
    }
}

/// Builds a body from `target = value` lines: keys make objects, `[n]` makes list slots
/// (filled with null up to n); a missing value leaves its target out.
pub(super) fn mapping(
    targets: &[(Vec<TargetSegment>, Value)],
    env: &std::sync::Arc<minijinja::Environment<'static>>,
    scope: &Scope<'_>,
) -> Result<Json, StepError> {
    let mut body = Json::Object(Map::new());
    for (target, value) in targets {
        if let Some(value) = value.eval(env, scope)? {
            place(&mut body, target, value)?;
        }
    }
    Ok(body)
}

/// Lint refuses a large index (E208); refusing it here again keeps a spec that skipped
/// lint from asking for gigabytes.
fn place(into: &mut Json, target: &[TargetSegment], value: Json) -> Result<(), StepError> {
    let Some((first, rest)) = target.split_first() else {
        *into = value;
        return Ok(());
    };
    let slot = match first {
        TargetSegment::Key(key) => {
            if !into.is_object() {
                *into = Json::Object(Map::new());
            }
            let Json::Object(fields) = into else {
                return Ok(());
            };
            fields.entry(key.clone()).or_insert(Json::Null)
        }
        TargetSegment::Index(index) => {
            if *index > TargetSegment::MAX_INDEX {
                return Err(StepError::ListIndex(*index));
            }
            if !into.is_array() {
                *into = Json::Array(Vec::new());
            }
            let Json::Array(items) = into else {
                return Ok(());
            };
            if items.len() <= *index {
                items.resize(index + 1, Json::Null);
            }
            &mut items[*index]
        }
    };
    place(slot, rest, value)
}

/// The steps after `at` that run per page of it: those right after it with `per_page`
/// naming it (lint keeps them together).
pub(super) fn per_page_steps(steps: &[StepPlan], at: usize) -> std::ops::Range<usize> {
    let count = steps
        .get(at + 1..)
        .unwrap_or_default()
        .iter()
        .take_while(|s| s.per_page == Some(at))
        .count();
    at + 1..at + 1 + count
}

/// The steps whose responses a dry run made up empty, as no test mocked them.
fn guessed_responses(reports: &[StepReport]) -> Vec<&str> {
    reports
        .iter()
        .filter(|step| {
            step.requests.iter().any(|r| {
                r.invented
                    .as_ref()
                    .is_some_and(|i| i.mock_of_test.is_none())
            })
        })
        .map(|step| step.name.as_str())
        .collect()
}

/// Whether a template's source reads any of `names` as a root (`contact.id`, not
/// `event.contact`).
fn reads_any(template: &str, names: &[&str]) -> bool {
    let is_ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut rest = template;
    while let Some(start) = rest.find(is_ident) {
        let after_dot = rest[..start].trim_end().ends_with('.');
        let tail = &rest[start..];
        let end = tail.find(|c: char| !is_ident(c)).unwrap_or(tail.len());
        if !after_dot && names.contains(&&tail[..end]) {
            return true;
        }
        rest = &tail[end..];
    }
    false
}

/// A cached response answers the same method, URL and request headers.
fn cache_key(request: &Request) -> String {
    let mut headers = request.headers.clone();
    headers.sort();
    format!("{} {} {headers:?}", request.method.as_str(), request.url)
}

/// A POST or PATCH is retried freely only with an idempotency key; a GraphQL mutation
/// likewise.
fn is_idempotent(step: &StepPlan, request: &Request) -> bool {
    let has_key = request.headers.iter().any(|(k, _)| k == "Idempotency-Key");
    let safe_method = match &step.call {
        CallPlan::Http(method) => method.is_idempotent(),
        CallPlan::GraphQl { mutation, .. } => !mutation,
    };
    safe_method || has_key
}

/// A URL as reports show it: query parameters named like credentials are redacted by name,
/// whatever their value.
pub(super) fn shown_url(url: &reqwest::Url) -> String {
    if !url
        .query_pairs()
        .any(|(k, _)| crate::secrets::is_credential_name(&k))
    {
        return url.to_string();
    }
    let mut shown = url.clone();
    let pairs: Vec<(String, String)> = url
        .query_pairs()
        .map(|(k, v)| {
            let v = if crate::secrets::is_credential_name(&k) {
                crate::secrets::REDACTED.into()
            } else {
                v.into_owned()
            };
            (k.into_owned(), v)
        })
        .collect();
    shown.query_pairs_mut().clear().extend_pairs(pairs);
    shown.to_string()
}

/// Headers that carry credentials are never shown, whatever their value.
fn redact_header(name: &str, value: &str) -> String {
    if crate::secrets::is_credential_name(name) {
        crate::secrets::REDACTED.to_string()
    } else {
        value.to_string()
    }
}

fn json_kind(value: &Json) -> &'static str {
    match value {
        Json::Null => "null",
        Json::Bool(_) => "a boolean",
        Json::Number(_) => "a number",
        Json::String(_) => "a string",
        Json::Array(_) => "a list",
        Json::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_template_reads_a_step_only_as_a_root() {
        assert!(reads_any("/notes/{{ contact.id }}", &["contact"]));
        assert!(!reads_any("/notes/{{ event.contact }}", &["contact"]));
        assert!(!reads_any("/notes/{{ contacts.id }}", &["contact"]));
        assert!(reads_any("{{ a | default(contact . id) }}", &["contact"]));
    }
    use serde_json::json;

    #[test]
    fn targets_build_nested_objects_and_lists() {
        let mut body = Json::Object(Map::new());
        let key = |k: &str| TargetSegment::Key(k.into());
        place(&mut body, &[key("data"), key("type")], json!("prospect")).unwrap();
        place(
            &mut body,
            &[key("data"), key("emails"), TargetSegment::Index(1)],
            json!("b@x"),
        )
        .unwrap();
        place(&mut body, &[key("data"), key("count")], json!(3)).unwrap();
        assert_eq!(
            body,
            json!({"data": {"type": "prospect", "emails": [null, "b@x"], "count": 3}})
        );
    }

    #[test]
    fn a_target_index_past_the_bound_is_refused_not_allocated() {
        let mut body = Json::Object(Map::new());
        let target = [
            TargetSegment::Key("a".into()),
            TargetSegment::Index(4_000_000_000),
        ];
        let refused = place(&mut body, &target, json!(1));
        assert!(matches!(refused, Err(StepError::ListIndex(4_000_000_000))));
        assert_eq!(body, json!({"a": null}));
    }

    #[test]
    fn link_headers_give_the_next_page() {
        let mut headers = reqwest::header::HeaderMap::new();
        let link = r#"<https://api.github.com/x?page=2>; rel="next", <https://api.github.com/x?page=9>; rel="last""#;
        headers.insert(reqwest::header::LINK, link.parse().unwrap());
        let response = Response {
            status: 200,
            headers,
            body: Json::Null,
            empty: false,
        };
        assert_eq!(
            link_next(&response).as_deref(),
            Some("https://api.github.com/x?page=2")
        );
    }

    #[test]
    fn graphql_errors_fail_with_their_messages() {
        use crate::model::PartialData::{Accept, Fail};
        let error = graphql_data(
            json!({"data": null, "errors": [{"message": "Throttled"}, {"message": "No"}]}),
            Fail,
        );
        assert_eq!(
            error.unwrap_err().to_string(),
            "GraphQL errors: Throttled; No"
        );
        assert_eq!(
            graphql_data(json!({"data": {"shop": 1}}), Fail).unwrap(),
            (json!({"shop": 1}), None)
        );
        let partial = json!({"data": {"shop": 1}, "errors": [{"message": "field x denied"}]});
        assert!(graphql_data(partial.clone(), Fail).is_err());
        assert_eq!(
            graphql_data(partial, Accept).unwrap(),
            (json!({"shop": 1}), Some("field x denied".to_string()))
        );
        let no_data = json!({"data": null, "errors": [{"message": "denied"}]});
        assert!(
            graphql_data(no_data, Accept).is_err(),
            "errors without data fail even when partial data is accepted"
        );
    }
}
