//! §8: the spec's alerts (each with the PromQL that watches the same), the metrics and
//! health endpoints that matter for this integration with ready-made PromQL, and the
//! commands that show its state. Metric names are those `integ serve` exports on its admin
//! listener (`/metrics`).

use super::markdown::{code, heading, table};
use super::value::{Source, Value};
use crate::model::format_duration;
use crate::model::{AlertChannel, AlertMetric, Auth, Integration, Trigger};
use serde::Serialize;

#[derive(Debug, Serialize)]
pub struct AlertDoc {
    /// As the spec writes it: `dead_letters > 10 in 1h`.
    pub condition: String,
    pub channel: &'static str,
    /// A Slack or webhook URL by name only; an e-mail address as written.
    pub target: Value,
    /// The same condition over the exported metrics.
    pub promql: String,
    /// The runbook entry's anchor.
    pub runbook: String,
}

/// A query worth keeping on a dashboard, and what it shows.
#[derive(Debug, Serialize)]
pub struct Query {
    pub what: String,
    pub promql: String,
}

#[derive(Debug, Serialize)]
pub struct Monitoring {
    pub alerts: Vec<AlertDoc>,
    pub queries: Vec<Query>,
    pub commands: Vec<String>,
}

/// The label matchers of this integration's connections:
/// `integration="x",connection=~"a|b"`. Connection names repeat across integrations (two
/// specs may each have a `slack`), so the integration is always part of it.
pub fn connections_matcher(model: &Integration) -> String {
    let names: Vec<&str> = model.connections.iter().map(|c| c.name.as_str()).collect();
    matcher_of(model, &names)
}

/// The label matchers of some of this integration's connections (see `connections_matcher`).
pub fn matcher_of(model: &Integration, names: &[&str]) -> String {
    let integration = format!("integration=\"{}\"", model.name);
    match names {
        [] => integration,
        [one] => format!("{integration},connection=\"{one}\""),
        _ => format!("{integration},connection=~\"{}\"", names.join("|")),
    }
}

/// The PromQL that is true when `alert` would fire.
pub fn alert_promql(model: &Integration, metric: AlertMetric, window: &str) -> String {
    let integration = &model.name;
    let connections = connections_matcher(model);
    match metric {
        AlertMetric::DeadLetters => {
            format!(
                "sum(increase(integ_dead_letters_total{{integration=\"{integration}\"}}[{window}]))"
            )
        }
        AlertMetric::FailedRuns => format!(
            "sum(increase(integ_runs_total{{integration=\"{integration}\",outcome=~\"failed|dead_lettered\"}}[{window}]))"
        ),
        AlertMetric::Retries => {
            format!("sum(increase(integ_http_client_retries_total{{{connections}}}[{window}]))")
        }
        AlertMetric::RateLimited => {
            format!("sum(increase(integ_rate_limit_throttled_total{{{connections}}}[{window}]))")
        }
    }
}

pub fn metric_name(metric: AlertMetric) -> &'static str {
    match metric {
        AlertMetric::DeadLetters => "dead_letters",
        AlertMetric::FailedRuns => "failed_runs",
        AlertMetric::Retries => "retries",
        AlertMetric::RateLimited => "rate_limited",
    }
}

pub fn build(model: &Integration, source: Source<'_>) -> Monitoring {
    let alerts = model
        .alerts
        .iter()
        .map(|alert| {
            let window = format_duration(alert.window);
            let limit = format!("{} {}", alert.op.as_str(), alert.threshold);
            let target = source.value(&alert.target);
            AlertDoc {
                condition: format!("{} {limit} in {window}", metric_name(alert.metric)),
                channel: match alert.channel {
                    AlertChannel::Slack => "slack",
                    AlertChannel::Webhook => "webhook",
                    AlertChannel::Email => "email",
                },
                target: match alert.channel {
                    AlertChannel::Email => target,
                    AlertChannel::Slack | AlertChannel::Webhook => target.credential(),
                },
                promql: format!("{} {limit}", alert_promql(model, alert.metric, &window)),
                runbook: alert.metric.runbook_anchor(),
            }
        })
        .collect();
    Monitoring {
        alerts,
        queries: queries(model),
        commands: commands(&model.name),
    }
}

fn queries(model: &Integration) -> Vec<Query> {
    let x = &model.name;
    let c = connections_matcher(model);
    let mut queries = vec![
        Query {
            what: "runs by outcome, last hour".into(),
            promql: format!(
                "sum by (outcome) (increase(integ_runs_total{{integration=\"{x}\"}}[1h]))"
            ),
        },
        Query {
            what: "share of runs that fail or dead-letter".into(),
            promql: format!(
                "sum(rate(integ_runs_total{{integration=\"{x}\",outcome=~\"failed|dead_lettered\"}}[5m])) / sum(rate(integ_runs_total{{integration=\"{x}\"}}[5m]))"
            ),
        },
        Query {
            what: "p99 time from inbox to done".into(),
            promql: format!(
                "histogram_quantile(0.99, sum by (le) (rate(integ_event_latency_seconds_bucket{{integration=\"{x}\"}}[5m])))"
            ),
        },
        Query {
            what: "age of the oldest waiting event, seconds (alert above 300)".into(),
            promql: format!(
                "time() - integ_inbox_oldest_event_timestamp_seconds{{integration=\"{x}\"}}"
            ),
        },
        Query {
            what: "events waiting, by state".into(),
            promql: format!("sum by (state) (integ_inbox_events{{integration=\"{x}\"}})"),
        },
        Query {
            what: "dead letters waiting for a replay".into(),
            promql: format!("integ_dead_letters{{integration=\"{x}\"}}"),
        },
        Query {
            what: "dead letters added, by step and error, last hour".into(),
            promql: format!(
                "sum by (step, error_type) (increase(integ_dead_letters_total{{integration=\"{x}\"}}[1h]))"
            ),
        },
    ];
    // A spec without connections calls no API: none of these can move.
    if model.connections.is_empty() {
        return queries;
    }
    queries.extend([
        Query {
            what: "API answers per connection, by class".into(),
            promql: format!(
                "sum by (connection, code_class) (rate(integ_http_client_requests_total{{{c}}}[5m]))"
            ),
        },
        Query {
            what: "retries per connection, by reason".into(),
            promql: format!(
                "sum by (connection, reason) (rate(integ_http_client_retries_total{{{c}}}[5m]))"
            ),
        },
        Query {
            what: "`429`s from the APIs (the declared limit is too high)".into(),
            promql: format!(
                "sum by (connection) (rate(integ_rate_limit_throttled_total{{{c},source=\"remote\"}}[5m])) > 0"
            ),
        },
    ]);
    let webhooks = model.triggers.iter().filter_map(|t| match t {
        Trigger::Webhook(hook) => Some(hook),
        _ => None,
    });
    let (mut any_webhook, mut any_signature) = (false, false);
    for hook in webhooks {
        any_webhook = true;
        any_signature |= hook.signature.is_some();
    }
    if any_webhook {
        queries.push(Query {
            what: "webhook answers by code".into(),
            promql: format!(
                "sum by (code) (rate(integ_webhook_requests_total{{integration=\"{x}\"}}[5m]))"
            ),
        });
    }
    if any_signature {
        queries.push(Query {
            what: "webhook signature failures, by reason".into(),
            promql: format!(
                "sum by (reason) (increase(integ_webhook_signature_failures_total{{integration=\"{x}\"}}[1h]))"
            ),
        });
    }
    if let Some(every) = slowest_poll(model) {
        queries.push(Query {
            what: format!(
                "a poll that has not succeeded for two intervals ({})",
                format_duration(every * 2)
            ),
            promql: stalled_poll_promql(x, every),
        });
    }
    if model
        .triggers
        .iter()
        .any(|t| matches!(t, Trigger::Schedule(_)))
    {
        let window = schedule_lookback(model).unwrap_or(std::time::Duration::from_secs(86_400));
        let [ran, failed] = schedule_promql(x, window);
        let over = format_duration(window);
        queries.push(Query {
            what: format!("schedule occurrences that ran, last {over}"),
            promql: ran,
        });
        queries.push(Query {
            what: format!("schedule occurrences that did not run, last {over}"),
            promql: failed,
        });
    }
    let breakers: Vec<&str> = model
        .connections
        .iter()
        .filter(|c| c.circuit_breaker.is_some())
        .map(|c| c.name.as_str())
        .collect();
    if !breakers.is_empty() {
        queries.push(Query {
            what: "circuit breakers open".into(),
            promql: format!(
                "integ_circuit_breaker_state{{{},state=\"open\"}} == 1",
                matcher_of(model, &breakers)
            ),
        });
    }
    let oauth: Vec<&str> = model
        .connections
        .iter()
        .filter(|c| matches!(c.auth, Auth::OAuth2(_)))
        .map(|c| c.name.as_str())
        .collect();
    if !oauth.is_empty() {
        queries.push(Query {
            what: "OAuth2 token fetches, by result".into(),
            promql: format!(
                "sum by (connection, result) (increase(integ_oauth_token_refreshes_total{{{}}}[1h]))",
                matcher_of(model, &oauth)
            ),
        });
    }
    queries
}

/// PromQL: a poll of integration `x` without a successful round for two intervals. Triggers
/// are labelled as `plan::poll_name` names them, `poll N`.
pub fn stalled_poll_promql(x: &str, every: std::time::Duration) -> String {
    format!(
        "time() - integ_trigger_last_success_timestamp_seconds{{integration=\"{x}\",trigger=~\"poll .*\"}} > {}",
        (every * 2).as_secs()
    )
}

/// PromQL: each schedule's occurrences that ran (their event committed), and those that did
/// not (`plan::schedule_name` labels them `schedule N`), over `window`.
pub fn schedule_promql(x: &str, window: std::time::Duration) -> [String; 2] {
    let window = format_duration(window);
    [
        "integ_events_received_total",
        "integ_trigger_failures_total",
    ]
    .map(|metric| {
        format!(
            "sum by (trigger) (increase({metric}{{integration=\"{x}\",trigger=~\"schedule .*\"}}[{window}]))"
        )
    })
}

/// How far back to look for a schedule's runs: two of its longest periods (a missed run
/// shows only against the ones around it), rounded up to a whole unit, for the slowest
/// schedule. The periods are read from a fixed date, so that the page is the same whenever
/// it is generated.
pub fn schedule_lookback(model: &Integration) -> Option<std::time::Duration> {
    let start = chrono::DateTime::from_timestamp(946_857_600, 0)?; // 2000-01-03, a Monday
    let period = |cron: &str| {
        let times: Vec<_> = crate::plan::cron(cron)
            .ok()?
            .iter_after(start)
            .take(400)
            .collect();
        times
            .windows(2)
            .filter_map(|pair| (pair[1] - pair[0]).to_std().ok())
            .max()
    };
    let longest = model
        .triggers
        .iter()
        .filter_map(|t| match t {
            Trigger::Schedule(schedule) => period(&schedule.cron),
            _ => None,
        })
        .max()?;
    let twice = longest.saturating_mul(2).as_secs();
    let unit = match twice {
        86_400.. => 86_400,
        3_600.. => 3_600,
        _ => 60,
    };
    Some(std::time::Duration::from_secs(
        twice.div_ceil(unit).saturating_mul(unit),
    ))
}

/// The longest poll interval, so that a "stalled" query fires for none on time.
pub fn slowest_poll(model: &Integration) -> Option<std::time::Duration> {
    model
        .triggers
        .iter()
        .filter_map(|t| match t {
            Trigger::Poll(poll) => Some(poll.every),
            _ => None,
        })
        .max()
}

fn commands(integration: &str) -> Vec<String> {
    vec![
        format!("integ runs --integration {integration} --failed --since 1h"),
        format!("integ triggers --integration {integration}"),
        format!("integ dlq list --integration {integration}"),
    ]
}

pub fn markdown(monitoring: &Monitoring, integration: &str) -> String {
    let mut out = heading(2, "monitoring", "8. Monitoring and alerting");
    out.push_str(&heading(3, "alerts", "Alerts"));
    if monitoring.alerts.is_empty() {
        out.push_str("The spec declares none. The queries below are the ones to alert on.\n\n");
    } else {
        let rows: Vec<Vec<String>> = monitoring
            .alerts
            .iter()
            .map(|a| {
                vec![
                    code(&a.condition),
                    format!("{} {}", a.channel, super::markdown::value(&a.target)),
                    code(&a.promql),
                    format!("[{}](#{})", a.runbook, a.runbook),
                ]
            })
            .collect();
        out.push_str(&table(
            &["Alert", "Notifies", "The same in PromQL", "Runbook"],
            &rows,
        ));
    }
    out.push_str(&heading(3, "metrics", "Metrics"));
    out.push_str(
        "`integ serve` exports its metrics at `/metrics` on the admin listener \
        (`--admin-listen`, `127.0.0.1:9464` by default; never the webhook port). The \
        connection label is the connection's name in the spec.\n\n",
    );
    let rows: Vec<Vec<String>> = monitoring
        .queries
        .iter()
        .map(|q| vec![q.what.clone(), code(&q.promql)])
        .collect();
    out.push_str(&table(&["What", "PromQL"], &rows));
    out.push_str(&heading(3, "health", "Health and state"));
    out.push_str(
        "`/livez` (alias `/healthz`) answers while the process works; `/readyz` while it can \
        take events durably (its store writable, not draining). Both are on the webhook \
        listener (`--listen`, `127.0.0.1:8080` by default). An API that is down does not fail \
        them: events wait in the inbox. Logs (`--log-format json`) carry `integration`, \
        `run_id` and `event_id` on every line of a run: filter on \
        ",
    );
    out.push_str(&format!("`integration={integration}`.\n\n```sh\n"));
    for command in &monitoring.commands {
        out.push_str(command);
        out.push('\n');
    }
    out.push_str("```\n\n");
    out
}
