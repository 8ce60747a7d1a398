//! The handles of one integration's metrics: its runs and steps, its dead letters, its
//! triggers, and its part of the inbox.

use super::catalog::{
    DEAD_LETTER_REPLAYS, DEAD_LETTERS, DEAD_LETTERS_ADDED, EVENT_LATENCY, EVENTS_DISCARDED,
    EVENTS_RECEIVED, INBOX_EVENTS, INBOX_OLDEST, RUN_DURATION, RUN_LAST_SUCCESS, RUNS, STEP_RUNS,
    TRIGGER_FAILURES, TRIGGER_LAST_SUCCESS, WEBHOOK_REQUEST_DURATION, WEBHOOK_REQUESTS,
    WEBHOOK_SIGNATURE_FAILURES,
};
use super::connection::family;
use super::labels::{
    DeadLetterType, Discard, InboxState, RunOutcome, SignatureReason, StepOutcome, WebhookCode,
};
use metrics::{Counter, Gauge, Histogram, Label};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// What names an integration's series: its name, its steps' and its triggers'.
#[derive(Debug)]
pub struct PlanNames<'a> {
    pub integration: &'a str,
    pub steps: Vec<&'a str>,
    pub webhooks: Vec<String>,
    pub polls: Vec<String>,
    pub schedules: Vec<String>,
}

/// One integration's handles, resolved when its engine is built.
#[derive(Debug)]
pub struct IntegrationMetrics {
    runs: Box<[Counter]>,
    duration: Histogram,
    latency: Histogram,
    last_success: Gauge,
    /// By step, in plan order.
    steps: Vec<(String, StepMetrics)>,
    /// Events dead-lettered at no step: the process stopped during every run of them.
    interrupted: Counter,
    pub webhooks: Vec<WebhookMetrics>,
    pub polls: Vec<TriggerMetrics>,
    pub schedules: Vec<TriggerMetrics>,
    inbox: Box<[Gauge]>,
    oldest: Gauge,
    dead_letters: Gauge,
}

#[derive(Debug)]
struct StepMetrics {
    outcomes: Box<[Counter]>,
    dead_letters: Box<[Counter]>,
}

/// The label value of what no spec name names: dead letters of no step (an event the
/// process kept stopping during), requests no webhook took.
pub(super) const NONE: &str = "_none";

fn integration_label(integration: &str) -> Vec<Label> {
    vec![Label::new("integration", integration.to_string())]
}

fn with(labels: &[Label], name: &'static str, value: &str) -> Vec<Label> {
    let mut labels = labels.to_vec();
    labels.push(Label::new(name, value.to_string()));
    labels
}

impl IntegrationMetrics {
    /// Every series of the integration `names` name, at 0.
    pub fn new(names: &PlanNames<'_>) -> Self {
        let labels = integration_label(names.integration);
        let step = |name: &str| {
            let labels = with(&labels, "step", name);
            StepMetrics {
                outcomes: family(
                    StepOutcome::ALL,
                    &labels,
                    "outcome",
                    StepOutcome::as_str,
                    |l| metrics::counter!(STEP_RUNS.name, l),
                ),
                dead_letters: family(
                    DeadLetterType::ALL,
                    &labels,
                    "error_type",
                    DeadLetterType::as_str,
                    |l| metrics::counter!(DEAD_LETTERS_ADDED.name, l),
                ),
            }
        };
        let steps = names
            .steps
            .iter()
            .map(|name| (name.to_string(), step(name)))
            .collect();
        let mut interrupted = with(&labels, "step", NONE);
        interrupted.push(Label::new("error_type", "interrupted"));
        let trigger = |name: &String| TriggerMetrics::new(&labels, name);
        // Counted by `dead_letters_replayed` (the admin pages), at 0 from here.
        metrics::counter!(DEAD_LETTER_REPLAYS.name, labels.clone()).increment(0);
        let oldest = metrics::gauge!(INBOX_OLDEST.name, labels.clone());
        oldest.set(unix_now());
        Self {
            runs: family(
                RunOutcome::ALL,
                &labels,
                "outcome",
                RunOutcome::as_str,
                |l| metrics::counter!(RUNS.name, l),
            ),
            duration: metrics::histogram!(RUN_DURATION.name, labels.clone()),
            latency: metrics::histogram!(EVENT_LATENCY.name, labels.clone()),
            last_success: metrics::gauge!(RUN_LAST_SUCCESS.name, labels.clone()),
            steps,
            interrupted: metrics::counter!(DEAD_LETTERS_ADDED.name, interrupted),
            webhooks: names
                .webhooks
                .iter()
                .map(|name| WebhookMetrics::new(&labels, name))
                .collect(),
            polls: names.polls.iter().map(trigger).collect(),
            schedules: names.schedules.iter().map(trigger).collect(),
            inbox: family(InboxState::ALL, &labels, "state", InboxState::as_str, |l| {
                metrics::gauge!(INBOX_EVENTS.name, l)
            }),
            oldest,
            dead_letters: metrics::gauge!(DEAD_LETTERS.name, labels),
        }
    }

    /// A run ended with `outcome` after `took` (`None`: it did not start), `latency`
    /// after its event came in.
    pub fn ran(&self, outcome: RunOutcome, took: Option<Duration>, latency: Option<Duration>) {
        self.runs[outcome as usize].increment(1);
        if let Some(took) = took {
            self.duration.record(took.as_secs_f64());
        }
        if outcome == RunOutcome::Deferred {
            return;
        }
        if let Some(latency) = latency {
            self.latency.record(latency.as_secs_f64());
        }
        if outcome == RunOutcome::Succeeded {
            self.last_success.set(unix_now());
        }
    }

    fn step(&self, name: &str) -> Option<&StepMetrics> {
        self.steps.iter().find(|(n, _)| n == name).map(|(_, s)| s)
    }

    /// Step `name` ended with `outcome` (a step the plan does not have is not counted).
    pub fn stepped(&self, name: &str, outcome: StepOutcome) {
        if let Some(step) = self.step(name) {
            step.outcomes[outcome as usize].increment(1);
        }
    }

    /// An event was dead-lettered at step `name`.
    pub fn dead_lettered(&self, name: &str, kind: DeadLetterType) {
        if let Some(step) = self.step(name) {
            step.dead_letters[kind as usize].increment(1);
        }
    }

    /// An event was dead-lettered without running: the process stopped during every run.
    pub fn interrupted(&self) {
        self.interrupted.increment(1);
    }

    /// The inbox's unfinished events of this integration, the oldest one's arrival (Unix
    /// seconds; now when there is none, so that its age is 0) and its dead letters.
    pub fn inbox(&self, pending: usize, running: usize, oldest: Option<i64>, dead: usize) {
        self.inbox[InboxState::Pending as usize].set(pending as f64);
        self.inbox[InboxState::Running as usize].set(running as f64);
        self.oldest
            .set(oldest.map_or_else(unix_now, |at| at as f64));
        self.dead_letters.set(dead as f64);
    }

    /// The metrics of the trigger named `name`, if the integration has it.
    pub fn trigger(&self, name: &str) -> Option<&TriggerMetrics> {
        self.webhooks
            .iter()
            .map(|w| &w.trigger)
            .chain(&self.polls)
            .chain(&self.schedules)
            .find(|t| t.name == name)
    }
}

/// `count` dead letters of `integration` were put back in the inbox (a replay from the
/// admin pages: rare, so the handle is looked up here, not kept).
pub fn dead_letters_replayed(integration: &str, count: usize) {
    metrics::counter!(
        DEAD_LETTER_REPLAYS.name,
        "integration" => integration.to_string(),
    )
    .increment(count as u64);
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |t| t.as_secs_f64())
}

/// One trigger's handles: what it took in, and how it is doing.
#[derive(Debug)]
pub struct TriggerMetrics {
    name: String,
    received: Counter,
    discarded: Box<[Counter]>,
    last_success: Gauge,
    failures: Counter,
}

impl TriggerMetrics {
    fn new(integration: &[Label], name: &str) -> Self {
        let labels = with(integration, "trigger", name);
        Self {
            name: name.to_string(),
            received: metrics::counter!(EVENTS_RECEIVED.name, labels.clone()),
            discarded: family(Discard::ALL, &labels, "reason", Discard::as_str, |l| {
                metrics::counter!(EVENTS_DISCARDED.name, l)
            }),
            last_success: metrics::gauge!(TRIGGER_LAST_SUCCESS.name, labels.clone()),
            failures: metrics::counter!(TRIGGER_FAILURES.name, labels),
        }
    }

    /// Events committed to the inbox, and those intentionally dropped.
    pub fn took(&self, received: usize, filtered: usize, duplicates: usize) {
        self.received.increment(received as u64);
        self.discarded[Discard::Filtered as usize].increment(filtered as u64);
        self.discarded[Discard::Duplicate as usize].increment(duplicates as u64);
    }

    /// The trigger did its work (a webhook committed, a poll round, a schedule's tick).
    pub fn succeeded(&self) {
        self.last_success.set(unix_now());
    }

    pub fn failed(&self) {
        self.failures.increment(1);
    }
}

/// One webhook's handles: its trigger's, and its requests'.
#[derive(Debug)]
pub struct WebhookMetrics {
    pub trigger: TriggerMetrics,
    requests: Codes,
    duration: Histogram,
    signatures: Box<[Counter]>,
}

impl WebhookMetrics {
    fn new(integration: &[Label], name: &str) -> Self {
        let labels = with(integration, "trigger", name);
        Self {
            trigger: TriggerMetrics::new(integration, name),
            requests: Codes::new(WebhookCode::ROUTED, &labels),
            duration: metrics::histogram!(WEBHOOK_REQUEST_DURATION.name, labels.clone()),
            signatures: family(
                SignatureReason::ALL,
                &labels,
                "reason",
                SignatureReason::as_str,
                |l| metrics::counter!(WEBHOOK_SIGNATURE_FAILURES.name, l),
            ),
        }
    }

    /// A request was answered `status` after `took` (its body read, checked, committed).
    pub fn answered(&self, status: u16, took: Duration) {
        self.requests.count(status);
        self.duration.record(took.as_secs_f64());
    }

    pub fn signature_refused(&self, reason: SignatureReason) {
        self.signatures[reason as usize].increment(1);
    }
}

/// Webhook requests by answer, among the answers they can get (others count as `other`).
#[derive(Debug)]
struct Codes {
    counters: Box<[(WebhookCode, Counter)]>,
}

impl Codes {
    fn new(codes: &[WebhookCode], labels: &[Label]) -> Self {
        let counters = codes.iter().map(|code| {
            let labels = with(labels, "code", code.as_str());
            (*code, metrics::counter!(WEBHOOK_REQUESTS.name, labels))
        });
        Self {
            counters: counters.collect(),
        }
    }

    fn count(&self, status: u16) {
        let code = WebhookCode::of(status);
        let found = self.counters.iter().find(|(c, _)| *c == code);
        let other = || self.counters.iter().find(|(c, _)| *c == WebhookCode::Other);
        if let Some((_, counter)) = found.or_else(other) {
            counter.increment(1);
        }
    }
}

/// Requests no webhook took (no route, or not its method): `integration` and `trigger`
/// are `_none`.
#[derive(Debug)]
pub struct UnroutedMetrics {
    requests: Codes,
}

impl UnroutedMetrics {
    pub fn new() -> Self {
        let labels = with(&integration_label(NONE), "trigger", NONE);
        Self {
            requests: Codes::new(WebhookCode::UNROUTED, &labels),
        }
    }

    pub fn answered(&self, status: u16) {
        self.requests.count(status);
    }
}

impl Default for UnroutedMetrics {
    fn default() -> Self {
        Self::new()
    }
}
