//! Every metric integ exports: the one list that names them, describes them (`# HELP`)
//! and that `docs/operations.md` is checked against (`tests/docs_sync.rs`).

/// A metric's Prometheus type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

/// One metric: its name, type, label names and help text.
#[derive(Debug, Clone, Copy)]
pub struct Metric {
    pub name: &'static str,
    pub kind: Kind,
    pub labels: &'static [&'static str],
    pub help: &'static str,
}

macro_rules! metric {
    ($const:ident, $name:literal, $kind:ident, [$($label:literal),*], $help:literal) => {
        pub(super) const $const: Metric = Metric {
            name: $name,
            kind: Kind::$kind,
            labels: &[$($label),*],
            help: $help,
        };
    };
}

// Intake.
metric!(
    WEBHOOK_REQUESTS,
    "integ_webhook_requests_total",
    Counter,
    ["integration", "trigger", "code"],
    "Webhook requests answered, by status; integration and trigger are _none when no webhook took it."
);
metric!(
    WEBHOOK_REQUEST_DURATION,
    "integ_webhook_request_duration_seconds",
    Histogram,
    ["integration", "trigger"],
    "Time from a webhook request's arrival to its answer, the inbox commit included."
);
metric!(
    WEBHOOK_SIGNATURE_FAILURES,
    "integ_webhook_signature_failures_total",
    Counter,
    ["integration", "trigger", "reason"],
    "Webhook requests refused 401 for their signature."
);
metric!(
    EVENTS_RECEIVED,
    "integ_events_received_total",
    Counter,
    ["integration", "trigger"],
    "Events a trigger committed to the inbox."
);
metric!(
    EVENTS_DISCARDED,
    "integ_events_discarded_total",
    Counter,
    ["integration", "trigger", "reason"],
    "Events a trigger dropped on purpose: its when was false (filtered) or its dedupe key was seen (duplicate)."
);
metric!(
    TRIGGER_LAST_SUCCESS,
    "integ_trigger_last_success_timestamp_seconds",
    Gauge,
    ["integration", "trigger"],
    "When a trigger last did its work (Unix seconds): a webhook committed, a poll round, a schedule's tick; 0 before the first."
);
metric!(
    TRIGGER_FAILURES,
    "integ_trigger_failures_total",
    Counter,
    ["integration", "trigger"],
    "Times a trigger failed: a when, each or dedupe that failed, a poll round, an occurrence that did not run, a commit refused."
);

// Inbox.
metric!(
    INBOX_EVENTS,
    "integ_inbox_events",
    Gauge,
    ["integration", "state"],
    "Unfinished inbox events, read from the store every 10 s."
);
metric!(
    INBOX_OLDEST,
    "integ_inbox_oldest_event_timestamp_seconds",
    Gauge,
    ["integration"],
    "When the oldest unfinished inbox event came in (Unix seconds); now when there is none."
);

// Workers.
metric!(
    WORKERS,
    "integ_workers",
    Gauge,
    ["state"],
    "integ serve's workers (--workers), busy running an event or idle; their sum is the number configured."
);

// Runs.
metric!(
    RUNS,
    "integ_runs_total",
    Counter,
    ["integration", "outcome"],
    "Runs of inbox events, counted when they end."
);
metric!(
    RUN_DURATION,
    "integ_run_duration_seconds",
    Histogram,
    ["integration"],
    "Time a run took, from its start to its end."
);
metric!(
    EVENT_LATENCY,
    "integ_event_latency_seconds",
    Histogram,
    ["integration"],
    "Time from an event's commit to the inbox to the end of its run (deferred runs are not ended)."
);
metric!(
    RUN_LAST_SUCCESS,
    "integ_run_last_success_timestamp_seconds",
    Gauge,
    ["integration"],
    "When a run last succeeded (Unix seconds); 0 before the first."
);
metric!(
    STEP_RUNS,
    "integ_step_runs_total",
    Counter,
    ["integration", "step", "outcome"],
    "Steps run, by how they ended."
);

// Dead letters.
metric!(
    DEAD_LETTERS_ADDED,
    "integ_dead_letters_total",
    Counter,
    ["integration", "step", "error_type"],
    "Events dead-lettered, by the step that failed (_none: the process stopped during every run) and the last answer."
);
metric!(
    DEAD_LETTER_REPLAYS,
    "integ_dead_letter_replays_total",
    Counter,
    ["integration"],
    "Dead letters put back in the inbox from this process's admin pages; the replay's run counts in integ_runs_total."
);
metric!(
    DEAD_LETTERS,
    "integ_dead_letters",
    Gauge,
    ["integration"],
    "Open dead letters (neither replayed nor discarded), read from the store every 10 s."
);

// Outbound HTTP.
metric!(
    HTTP_CLIENT_REQUESTS,
    "integ_http_client_requests_total",
    Counter,
    ["integration", "connection", "code_class"],
    "Attempts sent to an API, retries included, by the class of the answer (none: no answer)."
);
metric!(
    HTTP_CLIENT_REQUEST_DURATION,
    "integ_http_client_request_duration_seconds",
    Histogram,
    ["integration", "connection", "method"],
    "Time an attempt took, from sending to the whole answer read."
);
metric!(
    HTTP_CLIENT_IN_FLIGHT,
    "integ_http_client_in_flight_requests",
    Gauge,
    ["integration", "connection"],
    "Attempts sent to an API and not answered yet."
);
metric!(
    HTTP_CLIENT_RESPONSE_BODY_BYTES,
    "integ_http_client_response_body_bytes",
    Histogram,
    ["integration", "connection"],
    "Size of the answers' bodies as read (decompressed), in bytes; an answer over the cap is not read and not counted here."
);
metric!(
    HTTP_CLIENT_ERRORS,
    "integ_http_client_errors_total",
    Counter,
    ["integration", "connection", "error_type"],
    "Calls that got no answer, or were failed fast by the circuit breaker."
);
metric!(
    HTTP_CLIENT_RETRIES,
    "integ_http_client_retries_total",
    Counter,
    ["integration", "connection", "reason"],
    "Calls sent again under a retry policy, by what the failed attempt got."
);
metric!(
    RATE_LIMIT_WAIT,
    "integ_rate_limit_wait_seconds",
    Histogram,
    ["integration", "connection"],
    "Time an attempt waited for its connection's limits (rate, concurrency, a pause the API asked for)."
);
metric!(
    RATE_LIMIT_THROTTLED,
    "integ_rate_limit_throttled_total",
    Counter,
    ["integration", "connection", "source"],
    "Attempts held back: by integ's limits (local), or answered 429 by the API (remote)."
);
metric!(
    RATE_LIMIT_PAUSED_UNTIL,
    "integ_rate_limit_paused_until_timestamp_seconds",
    Gauge,
    ["integration", "connection"],
    "Until when the API asked the connection to pause (Unix seconds); 0 before any pause."
);
metric!(
    CIRCUIT_BREAKER_STATE,
    "integ_circuit_breaker_state",
    Gauge,
    ["integration", "connection", "state"],
    "1 for the state a connection's circuit breaker is in, 0 for the others; only connections with a breaker."
);
metric!(
    CACHE_REQUESTS,
    "integ_cache_requests_total",
    Counter,
    ["integration", "connection", "result"],
    "Lookups in a connection's response cache by cached steps."
);
metric!(
    OAUTH_TOKEN_REFRESHES,
    "integ_oauth_token_refreshes_total",
    Counter,
    ["integration", "connection", "result"],
    "OAuth2 access tokens fetched, by the connection that set the client up."
);

// Engine and store.
metric!(
    BUILD_INFO,
    "integ_build_info",
    Gauge,
    ["version", "store"],
    "Always 1: the integ version running and the state store it serves."
);
metric!(
    INTEGRATION_INFO,
    "integ_integration_info",
    Gauge,
    ["integration", "spec_sha256", "environment"],
    "Always 1: each integration served, the SHA-256 of its spec's text (as integ doc shows it) and the environment applied (_none: none)."
);
metric!(
    STORE_OPERATION_DURATION,
    "integ_store_operation_duration_seconds",
    Histogram,
    ["op"],
    "Time the state store took to answer a call of integ serve's hot path."
);
metric!(
    STORE_ERRORS,
    "integ_store_errors_total",
    Counter,
    ["op"],
    "Calls of integ serve's hot path the state store refused."
);

// Alerts.
metric!(
    ALERTS_FIRING,
    "integ_alerts_firing",
    Gauge,
    ["integration", "alert"],
    "1 while an alert's condition holds, else 0."
);
metric!(
    ALERT_NOTIFICATIONS,
    "integ_alert_notifications_total",
    Counter,
    ["integration", "alert", "result"],
    "Attempts to send an alert's message, by whether the channel took it."
);
metric!(
    ALERT_EVALUATIONS,
    "integ_alert_evaluations_total",
    Counter,
    [],
    "Evaluations of every declared alert over its window, one each --alert-every."
);

/// Every metric, in the order `docs/operations.md` lists them.
pub const METRICS: &[Metric] = &[
    WEBHOOK_REQUESTS,
    WEBHOOK_REQUEST_DURATION,
    WEBHOOK_SIGNATURE_FAILURES,
    EVENTS_RECEIVED,
    EVENTS_DISCARDED,
    TRIGGER_LAST_SUCCESS,
    TRIGGER_FAILURES,
    INBOX_EVENTS,
    INBOX_OLDEST,
    WORKERS,
    RUNS,
    RUN_DURATION,
    EVENT_LATENCY,
    RUN_LAST_SUCCESS,
    STEP_RUNS,
    DEAD_LETTERS_ADDED,
    DEAD_LETTER_REPLAYS,
    DEAD_LETTERS,
    HTTP_CLIENT_REQUESTS,
    HTTP_CLIENT_REQUEST_DURATION,
    HTTP_CLIENT_IN_FLIGHT,
    HTTP_CLIENT_RESPONSE_BODY_BYTES,
    HTTP_CLIENT_ERRORS,
    HTTP_CLIENT_RETRIES,
    RATE_LIMIT_WAIT,
    RATE_LIMIT_THROTTLED,
    RATE_LIMIT_PAUSED_UNTIL,
    CIRCUIT_BREAKER_STATE,
    CACHE_REQUESTS,
    OAUTH_TOKEN_REFRESHES,
    BUILD_INFO,
    INTEGRATION_INFO,
    STORE_OPERATION_DURATION,
    STORE_ERRORS,
    ALERTS_FIRING,
    ALERT_NOTIFICATIONS,
    ALERT_EVALUATIONS,
];

/// Gives every metric its `# HELP` line.
pub(super) fn describe() {
    for metric in METRICS {
        match metric.kind {
            Kind::Counter => metrics::describe_counter!(metric.name, metric.help),
            Kind::Gauge => metrics::describe_gauge!(metric.name, metric.help),
            Kind::Histogram => metrics::describe_histogram!(metric.name, metric.help),
        }
    }
}
