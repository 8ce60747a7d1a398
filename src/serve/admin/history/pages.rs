//! The pages (GET): what they read from the store and hand to their templates, or answer
//! as JSON.

use super::filters::{self, Fields, LETTER_FILTERS, MOST_PER_PAGE, RUN_FILTERS};
use super::view::{self, Spark};
use super::{Admin, bad_request, on_store};
use crate::model::AlertStatus;
use crate::store::{
    DeadLetter, LetterQuery, LetterState, LetterStates, RunLinks, RunQuery, RunRecord, RunStatus,
    TriggerHealth, letters_lines, now, run_json, runs_lines, with_id,
};
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use minijinja::context;
use serde::Serialize;
use std::num::{NonZeroU32, NonZeroUsize};

/// The overview's picture: the last 24 hours in half-hour bars.
const DAY: i64 = 24 * 3600;
const HALF_HOUR: NonZeroU32 = NonZeroU32::new(1800).expect("not zero");
const MINUTE: NonZeroU32 = NonZeroU32::new(60).expect("not zero");

/// A value for a template.
fn v(value: &impl Serialize) -> minijinja::Value {
    minijinja::Value::from(minijinja::value::Serde(value))
}

fn fields(request: &Request) -> Fields {
    Fields::parse(request.uri().query().unwrap_or("").as_bytes())
}

/// One integration on the overview.
#[derive(Debug, Serialize)]
struct Summary {
    name: String,
    runs_hour: u64,
    /// Runs per minute over the last hour, one decimal.
    per_minute: String,
    failures_hour: u64,
    runs_day: u64,
    failures_day: u64,
    /// Inbox events waiting and running.
    pending: usize,
    running: usize,
    /// When the oldest unfinished event came.
    oldest: Option<i64>,
    dead_letters: usize,
    last_success: Option<i64>,
    triggers: Vec<TriggerHealth>,
    /// The conditions of the integration's alerts firing now; `None` when it declares none.
    alerts: Option<Vec<String>>,
    spark: Spark,
}

/// Each integration's alerts, by integration, as (key, condition and channel); one
/// declaring none is absent.
fn declared_alerts(admin: &Admin) -> std::collections::HashMap<String, Vec<(String, String)>> {
    admin
        .service
        .engines
        .iter()
        .map(|engine| engine.plan())
        .filter(|plan| !plan.alerts.is_empty())
        .map(|plan| {
            let alerts = plan
                .alerts
                .iter()
                .map(|a| (a.key.clone(), a.alert.describe()))
                .collect();
            (plan.name.clone(), alerts)
        })
        .collect()
}

fn failed(outcome: &str) -> bool {
    outcome == RunStatus::Failed.as_str() || outcome == RunStatus::DeadLettered.as_str()
}

pub(super) async fn overview(State(admin): State<Admin>, request: Request) -> Response {
    let names: Vec<String> = admin
        .service
        .engines
        .iter()
        .map(|e| e.plan().name.clone())
        .collect();
    let declared = declared_alerts(&admin);
    let triggers = admin.service.health.snapshot();
    let now = now();
    let read = on_store(&admin, move |store| {
        let backlog = store.backlog()?;
        let firing: Vec<(String, String)> = store
            .alerts()?
            .into_iter()
            .filter(|a| a.status == AlertStatus::Firing)
            .map(|a| (a.integration, a.alert))
            .collect();
        let mut summaries = Vec::new();
        for name in names {
            let day = store.run_counts(&name, now - DAY, HALF_HOUR)?;
            let hour = store.run_counts(&name, now - 3600, MINUTE)?;
            let last_success = store.last_success(&name)?;
            summaries.push((name, day, hour, last_success));
        }
        Ok((backlog, firing, summaries))
    })
    .await;
    let (backlog, firing, counted) = match read {
        Ok(read) => read,
        Err(response) => return response,
    };
    let summaries: Vec<Summary> = counted
        .into_iter()
        .map(|(name, day, hour, last_success)| {
            let sum = |counts: &[crate::store::RunCount], failures: bool| -> u64 {
                counts
                    .iter()
                    .filter(|c| !failures || failed(&c.outcome))
                    .map(|c| c.runs)
                    .sum()
            };
            let runs_hour = sum(&hour, false);
            let part = backlog.iter().find(|b| b.integration == name);
            Summary {
                runs_hour,
                per_minute: format!("{:.1}", runs_hour as f64 / 60.0),
                failures_hour: sum(&hour, true),
                runs_day: sum(&day, false),
                failures_day: sum(&day, true),
                pending: part.map_or(0, |b| b.pending),
                running: part.map_or(0, |b| b.running),
                oldest: part.and_then(|b| b.oldest),
                dead_letters: part.map_or(0, |b| b.dead_letters),
                last_success,
                triggers: triggers
                    .iter()
                    .filter(|t| t.integration == name)
                    .cloned()
                    .collect(),
                alerts: declared.get(&name).map(|alerts| {
                    alerts
                        .iter()
                        .filter(|(key, _)| firing.contains(&(name.clone(), key.clone())))
                        .map(|(_, shown)| shown.clone())
                        .collect()
                }),
                spark: Spark::of(&buckets(&day, now)),
                name,
            }
        })
        .collect();
    if view::wants_json(&request) {
        return axum::Json(serde_json::json!({ "integrations": summaries })).into_response();
    }
    view::page(
        &admin.templates,
        "overview.html",
        "Overview",
        context! { integrations => v(&summaries), now => now },
    )
}

/// The last day's half-hour buckets, each with its runs and failures, none left out.
fn buckets(counts: &[crate::store::RunCount], now: i64) -> Vec<(i64, u64, u64)> {
    let width = i64::from(HALF_HOUR.get());
    let last = now / width * width;
    let first = last - DAY + width;
    (0..DAY / width)
        .map(|i| {
            let start = first + i * width;
            let here = counts.iter().filter(|c| c.bucket == start);
            let (runs, failures) = here.fold((0, 0), |(r, f), c| {
                (r + c.runs, f + if failed(&c.outcome) { c.runs } else { 0 })
            });
            (start, runs, failures)
        })
        .collect()
}

pub(super) async fn runs(State(admin): State<Admin>, request: Request) -> Response {
    let json = view::wants_json(&request);
    let fields = fields(&request);
    let query = match filters::runs(&fields) {
        Ok(query) => query,
        Err(problem) => return bad_request(&admin, json, &problem),
    };
    let limit = query.limit.map_or(MOST_PER_PAGE, NonZeroUsize::get);
    // One more than shown tells whether there is a next page, as `integ runs` does.
    let asked = RunQuery {
        limit: NonZeroUsize::new(limit.saturating_add(1)),
        ..query
    };
    let mut runs = match on_store(&admin, move |store| store.runs(&asked)).await {
        Ok(runs) => runs,
        Err(response) => return response,
    };
    let more = runs.len() > limit;
    runs.truncate(limit);
    if json {
        return view::json_lines(runs_lines(&runs));
    }
    let kept = fields.filters(&RUN_FILTERS);
    let next = runs
        .last()
        .filter(|_| more)
        .map(|(id, _)| Fields::link(&kept, &[("before", id.to_string())]));
    let rows: Vec<_> = runs.iter().map(|(id, run)| row(*id, run)).collect();
    view::page(
        &admin.templates,
        "runs.html",
        "Runs",
        context! {
            runs => v(&rows),
            next => next,
            json_link => Fields::link(&kept, &[("format", "json".to_string())]),
            filters => v(&filter_values(&fields, &RUN_FILTERS)),
            integrations => integration_names(&admin),
            outcomes => RunStatus::ALL.map(RunStatus::as_str),
            triggers => trigger_names(&admin),
        },
    )
}

/// A run as a row of the list: the record, its id and its failed step's error on one line.
fn row(id: i64, run: &RunRecord) -> serde_json::Value {
    let mut value = with_id(id, run);
    let said = run.error.as_deref().or(run.reason.as_deref()).unwrap_or("");
    if let Some(fields) = value.as_object_mut() {
        fields.insert("summary".into(), one_line(said, 120).into());
    }
    value
}

fn one_line(text: &str, max: usize) -> String {
    let joined = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match joined.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &joined[..cut]),
        None => joined,
    }
}

fn filter_values(fields: &Fields, names: &[&str]) -> serde_json::Value {
    let pairs = names
        .iter()
        .map(|n| (n.to_string(), fields.get(n).unwrap_or("").into()));
    serde_json::Value::Object(pairs.collect())
}

fn integration_names(admin: &Admin) -> Vec<String> {
    admin
        .service
        .engines
        .iter()
        .map(|e| e.plan().name.clone())
        .collect()
}

fn trigger_names(admin: &Admin) -> Vec<String> {
    let mut names: Vec<String> = admin
        .service
        .health
        .snapshot()
        .into_iter()
        .map(|t| t.trigger)
        .collect();
    names.sort();
    names.dedup();
    names
}

/// A step on the run's timeline: where its requests start and how long they took, as
/// shares of the whole run. Records from before requests kept their start are laid end to
/// end.
#[derive(Debug, Serialize)]
struct Lane {
    step: crate::store::StepRecord,
    offset: f64,
    width: f64,
    duration_ms: u64,
}

fn lanes(run: &RunRecord) -> Vec<Lane> {
    let mut next = 0u64;
    let spans: Vec<(u64, u64)> = run
        .steps
        .iter()
        .map(|step| {
            let start = step.requests.iter().filter_map(|r| r.at_ms).min();
            let start = start.unwrap_or(next);
            let end = step
                .requests
                .iter()
                .map(|r| r.at_ms.unwrap_or(start).saturating_add(r.duration_ms))
                .fold(start, u64::max);
            next = end;
            (start, end)
        })
        .collect();
    let run_ms = u64::try_from(run.duration_ms).unwrap_or(0);
    let total = spans.iter().map(|s| s.1).fold(run_ms, u64::max).max(1) as f64;
    run.steps
        .iter()
        .zip(spans)
        .map(|(step, (start, end))| Lane {
            offset: (start as f64 / total * 100.0).min(100.0),
            width: ((end - start) as f64 / total * 100.0).max(0.5),
            duration_ms: end - start,
            step: step.clone(),
        })
        .collect()
}

pub(super) async fn run(
    State(admin): State<Admin>,
    Path(id): Path<i64>,
    request: Request,
) -> Response {
    let json = view::wants_json(&request);
    let query = RunQuery {
        id: Some(id),
        ..RunQuery::default()
    };
    let found = on_store(&admin, move |store| {
        Ok((store.runs(&query)?, store.run_links(id)?))
    })
    .await;
    let (runs, links): (Vec<(i64, RunRecord)>, RunLinks) = match found {
        Ok(found) => found,
        Err(response) => return response,
    };
    let Some((_, record)) = runs.first() else {
        return not_found(&admin, json, &format!("no run #{id}"));
    };
    if json {
        return view::json_object(&run_json(id, record, &links));
    }
    view::page(
        &admin.templates,
        "run.html",
        &format!("Run #{id}"),
        context! {
            id => id,
            run => v(record),
            links => v(&links),
            lanes => v(&lanes(record)),
        },
    )
}

fn not_found(admin: &Admin, json: bool, problem: &str) -> Response {
    let mut response = bad_request(admin, json, problem);
    *response.status_mut() = StatusCode::NOT_FOUND;
    response
}

pub(super) async fn letters(State(admin): State<Admin>, request: Request) -> Response {
    let json = view::wants_json(&request);
    let fields = fields(&request);
    let mut query = match filters::letters(&fields) {
        Ok(query) => query,
        Err(problem) => return bad_request(&admin, json, &problem),
    };
    // A page, JSON included, lists `limit` at most, as `integ dlq list` does; one more
    // than shown tells whether there is a next page.
    let shown = query.limit.map_or(MOST_PER_PAGE, NonZeroUsize::get);
    query.limit = NonZeroUsize::new(shown.saturating_add(1));
    let states = query.states;
    let mut letters = match on_store(&admin, move |store| store.letters(&query)).await {
        Ok(letters) => letters,
        Err(response) => return response,
    };
    let more = letters.len() > shown;
    letters.truncate(shown);
    let kept = fields.filters(&LETTER_FILTERS);
    let next = letters
        .last()
        .filter(|_| more)
        .map(|(id, _)| Fields::link(&kept, &[("after", id.to_string())]));
    if json {
        return view::json_lines_paged(
            letters_lines(&letters),
            next.map(|next| format!("/dead-letters?{next}&format=json")),
        );
    }
    let rows: Vec<_> = letters
        .iter()
        .map(|(id, letter)| letter_row(*id, letter))
        .collect();
    view::page(
        &admin.templates,
        "letters.html",
        "Dead letters",
        context! {
            letters => v(&rows),
            next => next,
            open => states == LetterStates::Open,
            hidden => v(&kept),
            json_link => Fields::link(&fields.filters(&LETTER_FILTERS), &[("format", "json".to_string())]),
            filters => v(&filter_values(&fields, &LETTER_FILTERS)),
            integrations => integration_names(&admin),
            states => ["open", "replayed", "discarded", "all"],
            form_token => admin.guard.form_token(),
            done => fields.get("done"),
        },
    )
}

fn letter_row(id: i64, letter: &DeadLetter) -> serde_json::Value {
    let mut value = with_id(id, letter);
    if let Some(fields) = value.as_object_mut() {
        fields.insert("summary".into(), one_line(&letter.error, 120).into());
        fields.insert("age".into(), (now() - letter.failed_at).max(0).into());
    }
    value
}

pub(super) async fn letter(
    State(admin): State<Admin>,
    Path(id): Path<i64>,
    request: Request,
) -> Response {
    let json = view::wants_json(&request);
    let query = LetterQuery {
        ids: Some(vec![id]),
        states: LetterStates::All,
        ..LetterQuery::default()
    };
    let found = on_store(&admin, move |store| {
        let letter = store.letters(&query)?.into_iter().next();
        let links = match letter.as_ref().and_then(|(_, l)| l.run) {
            Some(run) => store.run_links(run)?,
            None => RunLinks::default(),
        };
        Ok((letter, links))
    })
    .await;
    let (letter, links) = match found {
        Ok(found) => found,
        Err(response) => return response,
    };
    let Some((_, letter)) = letter else {
        return not_found(&admin, json, &format!("no dead letter #{id}"));
    };
    if json {
        return view::json_object(&with_id(id, &letter));
    }
    let replay_event = match &letter.state {
        LetterState::Replayed { replay_event, .. } => Some(*replay_event),
        _ => None,
    };
    view::page(
        &admin.templates,
        "letter.html",
        &format!("Dead letter #{id}"),
        context! {
            id => id,
            letter => v(&with_id(id, &letter)),
            open => letter.state == LetterState::Open,
            replay_event => replay_event,
            replayed_by => v(&links.replayed_by),
            form_token => admin.guard.form_token(),
            done => fields(&request).get("done"),
        },
    )
}

pub(super) async fn login(State(admin): State<Admin>, request: Request) -> Response {
    view::page(
        &admin.templates,
        "login.html",
        "Sign in",
        context! {
            form_token => admin.guard.form_token(),
            wrong => fields(&request).get("wrong").is_some(),
        },
    )
}
