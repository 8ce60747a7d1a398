//! §9: one entry per failure the spec makes possible, written for the person paged at 3
//! a.m.: Symptom → Meaning → Impact → Diagnose (exact `integ` commands and PromQL) →
//! Mitigate → Verify, then a hand-written escalation block that regeneration keeps.

use super::handwritten::Kept;
use super::markdown::heading;
use super::monitoring::{
    connections_matcher, matcher_of, schedule_lookback, schedule_promql, slowest_poll,
    stalled_poll_promql,
};
use super::triggers::signs_time;
use super::value::{Source, Value};
use crate::model::format_duration;
use crate::model::{
    AlertChannel, AlertMetric, Auth, Integration, OnError, SignaturePreset, Trigger,
};
use serde::Serialize;

#[derive(Debug, Serialize)]
pub struct Entry {
    /// The anchor: `rb-dead-letters`.
    pub id: &'static str,
    pub title: &'static str,
    pub symptom: String,
    pub meaning: String,
    pub impact: String,
    /// Shell commands, one a line.
    pub commands: Vec<String>,
    pub promql: Vec<String>,
    pub mitigate: String,
    pub verify: String,
}

/// A runbook entry as data: its words, with `{name}`s the spec fills in (`Facts::vars`),
/// the spec features it applies to, and the sentences some specs add.
struct Template {
    id: &'static str,
    title: &'static str,
    applies: fn(&Facts) -> bool,
    /// The alert whose firing is the symptom, when the spec declares one.
    alert: Option<AlertMetric>,
    symptom: &'static str,
    meaning: &'static str,
    impact: &'static str,
    commands: &'static [&'static str],
    promql: &'static [&'static str],
    mitigate: &'static str,
    verify: &'static str,
    extras: &'static [Extra],
}

/// Words added to one part of an entry for the specs that have something.
struct Extra {
    when: fn(&Facts) -> bool,
    part: Part,
    text: &'static str,
}

#[derive(Clone, Copy)]
enum Part {
    Meaning,
    Promql,
    Mitigate,
}

/// What the entries need to know of a spec, worked out once.
struct Facts<'a> {
    model: &'a Integration,
    connections: bool,
    dead_letter_steps: bool,
    failing_steps: bool,
    oauth: bool,
    breakers: bool,
    signatures: bool,
    timestamped: bool,
    hubspot: bool,
    webhooks: bool,
    polls: bool,
    schedules: bool,
    /// The `{name}`s of the templates and what each stands for in this spec.
    vars: Vec<(&'static str, String)>,
}

impl<'a> Facts<'a> {
    fn new(model: &'a Integration, spec: &str) -> Self {
        let steps = || model.steps.iter().chain(&model.fallbacks);
        let named = |on: fn(&OnError) -> bool| -> Vec<&str> {
            steps()
                .filter(|s| on(&s.on_error))
                .map(|s| s.name.as_str())
                .collect()
        };
        let dead_letter_steps = named(|e| *e == OnError::DeadLetter);
        let failing_steps = named(|e| *e == OnError::Fail);
        let connections = |keep: fn(&crate::model::Connection) -> bool| -> Vec<&str> {
            model
                .connections
                .iter()
                .filter(|c| keep(c))
                .map(|c| c.name.as_str())
                .collect()
        };
        let oauth = connections(|c| matches!(c.auth, Auth::OAuth2(_)));
        let breakers = connections(|c| c.circuit_breaker.is_some());
        let webhooks: Vec<(usize, &crate::model::Webhook)> = model
            .triggers
            .iter()
            .enumerate()
            .filter_map(|(i, t)| match t {
                Trigger::Webhook(hook) => Some((i + 1, hook.as_ref())),
                _ => None,
            })
            .collect();
        let presets: Vec<&SignaturePreset> = webhooks
            .iter()
            .filter_map(|(_, h)| Some(&h.signature.as_ref()?.preset))
            .collect();
        let x = model.name.clone();
        let poll = slowest_poll(model);
        let lookback = schedule_lookback(model).unwrap_or(std::time::Duration::from_secs(86_400));
        let [ran, missed] = schedule_promql(&x, lookback);
        let vars = vec![
            ("{x}", x.clone()),
            ("{c}", connections_matcher(model)),
            ("{spec}", spec.to_string()),
            ("{dead_letter_steps}", list(&dead_letter_steps)),
            (
                "{failing}",
                if failing_steps.is_empty() {
                    "a step".to_string()
                } else {
                    format!(
                        "a step whose `on_error` is `fail` ({})",
                        list(&failing_steps)
                    )
                },
            ),
            ("{oauth}", list(&oauth)),
            ("{oauth_matcher}", matcher_of(model, &oauth)),
            ("{breakers}", list(&breakers)),
            ("{breaker_matcher}", matcher_of(model, &breakers)),
            ("{signing_secrets}", signing_secrets(&webhooks)),
            (
                "{poll_window}",
                poll.map(|every| format_duration(every * 2))
                    .unwrap_or_default(),
            ),
            (
                "{poll_promql}",
                poll.map(|every| stalled_poll_promql(&x, every))
                    .unwrap_or_default(),
            ),
            ("{lookback}", format_duration(lookback)),
            ("{schedule_ran}", ran),
            ("{schedule_missed}", missed),
            ("{channel_fix}", channel_fix(model)),
        ];
        Facts {
            model,
            connections: !model.connections.is_empty(),
            dead_letter_steps: !dead_letter_steps.is_empty(),
            failing_steps: !failing_steps.is_empty(),
            oauth: !oauth.is_empty(),
            breakers: !breakers.is_empty(),
            signatures: !presets.is_empty(),
            timestamped: presets.iter().any(|p| signs_time(p)),
            hubspot: presets.contains(&&SignaturePreset::HubspotV3),
            webhooks: !webhooks.is_empty(),
            polls: poll.is_some(),
            schedules: model
                .triggers
                .iter()
                .any(|t| matches!(t, Trigger::Schedule(_))),
            vars,
        }
    }

    fn alerted(&self, metric: AlertMetric) -> bool {
        self.model.alerts.iter().any(|a| a.metric == metric)
    }

    fn alert_on(&self, metric: AlertMetric) -> Option<String> {
        let alert = self.model.alerts.iter().find(|a| a.metric == metric)?;
        Some(format!("The alert `{}` fires. ", alert.condition()))
    }

    /// `template` with this spec's words in place of its `{name}`s.
    fn fill(&self, template: &str) -> String {
        let mut text = template.to_string();
        for (name, value) in &self.vars {
            text = text.replace(name, value);
        }
        text
    }
}

fn list(names: &[&str]) -> String {
    let ticked: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
    ticked.join(", ")
}

/// Each signed webhook's secret, by name, with a link to its trigger.
fn signing_secrets(webhooks: &[(usize, &crate::model::Webhook)]) -> String {
    let secrets: Vec<String> = webhooks
        .iter()
        .filter_map(|(n, h)| {
            let mut names = Vec::new();
            super::value::names(&h.signature.as_ref()?.secret, &mut names);
            let name = names.first().map(|(_, n)| n.clone())?;
            Some(format!("[trigger {n}](#trigger-{n}): `{name}`"))
        })
        .collect();
    secrets.join(", ")
}

/// What to fix for each alert's channel, by where its target comes from: a secret, an
/// environment variable, or the spec itself; e-mail also goes through the SMTP relay.
fn channel_fix(model: &Integration) -> String {
    let mut fixes: Vec<String> = Vec::new();
    for alert in &model.alerts {
        let what = match alert.channel {
            AlertChannel::Email => "address",
            AlertChannel::Slack | AlertChannel::Webhook => "URL",
        };
        let source = Source::new("", &[]);
        let fix = match source.value(&alert.target) {
            Value::Secret { name } => format!(
                "`{}` ({}): put a working {what} under the secret `{name}` (secrets file or \
                environment) and restart `integ serve`",
                alert.condition(),
                alert.channel.as_str()
            ),
            Value::Env { name, .. } => format!(
                "`{}` ({}): set the environment variable `{name}` to a working {what} and \
                restart `integ serve`",
                alert.condition(),
                alert.channel.as_str()
            ),
            _ => format!(
                "`{}` ({}): correct the {what} written in the spec and deploy it",
                alert.condition(),
                alert.channel.as_str()
            ),
        };
        let fix = if alert.channel == AlertChannel::Email {
            format!(
                "{fix}; check the relay in the secret `{}` and the sender `integ serve \
                --alert-from` (most relays refuse a sender outside their domain)",
                crate::serve::SMTP_URL
            )
        } else {
            fix
        };
        if !fixes.contains(&fix) {
            fixes.push(fix);
        }
    }
    fixes.join("; ")
}

pub fn build(model: &Integration, spec: &str) -> Vec<Entry> {
    let facts = Facts::new(model, spec);
    let mut entries: Vec<Entry> = ENTRIES
        .iter()
        .filter(|t| (t.applies)(&facts) || t.alert.is_some_and(|a| facts.alerted(a)))
        .map(|t| entry(t, &facts))
        .collect();
    // A link to an entry this spec does not have would lead nowhere: keep its words.
    let ids: Vec<&str> = entries.iter().map(|e| e.id).collect();
    let links: Vec<String> = ENTRIES
        .iter()
        .filter(|t| !ids.contains(&t.id))
        .map(|t| t.id.to_string())
        .collect();
    for entry in &mut entries {
        for text in [&mut entry.meaning, &mut entry.mitigate, &mut entry.impact] {
            for id in &links {
                *text = text.replace(&format!("[{id}](#{id})"), &format!("`{id}`"));
            }
        }
    }
    entries
}

fn entry(template: &Template, facts: &Facts<'_>) -> Entry {
    let fill = |texts: &[&str]| -> Vec<String> { texts.iter().map(|t| facts.fill(t)).collect() };
    let mut entry = Entry {
        id: template.id,
        title: template.title,
        symptom: template
            .alert
            .and_then(|metric| facts.alert_on(metric))
            .unwrap_or_default()
            + &facts.fill(template.symptom),
        meaning: facts.fill(template.meaning),
        impact: facts.fill(template.impact),
        commands: fill(template.commands),
        promql: fill(template.promql),
        mitigate: facts.fill(template.mitigate),
        verify: facts.fill(template.verify),
    };
    for extra in template.extras.iter().filter(|e| (e.when)(facts)) {
        let text = facts.fill(extra.text);
        match extra.part {
            Part::Meaning => entry.meaning.push_str(&format!(" {text}")),
            Part::Mitigate => entry.mitigate.push_str(&format!(" {text}")),
            Part::Promql => entry.promql.push(text),
        }
    }
    entry
}

static ENTRIES: &[Template] = &[
    Template {
        id: "rb-dead-letters",
        title: "Dead letters accumulating",
        applies: |f| f.dead_letter_steps,
        alert: Some(AlertMetric::DeadLetters),
        symptom: "`integ_dead_letters{integration=\"{x}\"}` above 0; `integ dlq list \
            --integration {x}` shows entries.",
        meaning: "Events used up the attempts of a step whose `on_error` is a dead letter \
            ({dead_letter_steps}), or failed with an answer that is not retried (see [5. Error \
            handling](#errors)). Each was moved to the dead letters with its input, the step, \
            the last request and answer and the error.",
        impact: "What those events should have done in the target API is not done yet. \
            Nothing is lost: each event waits in the dead letters until it is replayed.",
        commands: &[
            "integ dlq list --integration {x}",
            "integ dlq show ID        # the step, status, answer excerpt, attempts",
            "integ runs --integration {x} --failed --since 1h",
        ],
        promql: &[
            "sum by (step, error_type) (increase(integ_dead_letters_total{integration=\"{x}\"}[1h]))",
        ],
        mitigate: "By the error: `401`/`403` → [rb-auth](#rb-auth); `429` → \
            [rb-rate-limited](#rb-rate-limited); `5xx` or timeouts → \
            [rb-upstream-down](#rb-upstream-down), wait for the API to recover; `400`/`422` \
            or a missing field → the mapping ([4. Data mapping](#mapping)): fix the spec, \
            `integ lint`, `integ test`, deploy. Then `integ dlq replay ID` (or `integ dlq \
            replay --all --integration {x}`); steps with an idempotency key are not done twice.",
        verify: "`integ dlq list --integration {x}` no longer shows them; \
            `integ_dead_letters{integration=\"{x}\"}` is back to 0 and `integ runs \
            --integration {x}` shows the replays succeeded.",
        extras: &[],
    },
    Template {
        id: "rb-failed-runs",
        title: "Runs failing",
        applies: |f| f.failing_steps,
        alert: Some(AlertMetric::FailedRuns),
        symptom: "`integ runs --integration {x} --failed` lists new runs.",
        meaning: "{failing} failed after its last attempt and stopped the run. A failed run is \
            recorded in the run history; its event is not kept for replay.",
        impact: "The rest of those runs' steps did not happen. The events are not in the dead \
            letters: to do them again, send them again (or run them with `integ run {spec}`).",
        commands: &[
            "integ runs --integration {x} --failed --since 1h",
            "integ runs --integration {x} --failed --format json --limit 5",
        ],
        promql: &["sum(increase(integ_runs_total{integration=\"{x}\",outcome=\"failed\"}[1h]))"],
        mitigate: "Read the error of the failed runs, then follow the entry for its cause \
            ([rb-auth](#rb-auth), [rb-rate-limited](#rb-rate-limited), \
            [rb-upstream-down](#rb-upstream-down)); a mapping error is fixed in the spec.",
        verify: "New runs of `{x}` succeed: \
            `sum(increase(integ_runs_total{integration=\"{x}\",outcome=\"succeeded\"}[15m]))` \
            rises and the failed count stays flat.",
        extras: &[],
    },
    Template {
        id: "rb-auth",
        title: "Authentication failing (401, 403, token refresh)",
        applies: |f| {
            f.model
                .connections
                .iter()
                .any(|c| !matches!(c.auth, Auth::None))
        },
        alert: None,
        symptom: "Runs fail or dead-letter with `401` or `403`; for OAuth2, token fetches fail.",
        meaning: "An API refused the credentials: a token was revoked or rotated, a secret is \
            wrong or expired, or the account lost a scope. The secrets each connection reads \
            are listed in [2. Connections and credentials](#secrets).",
        impact: "Every step on the connection fails until the credentials are fixed. Events \
            wait in the dead letters (or fail, per the step's `on_error`).",
        commands: &[
            "integ runs --integration {x} --failed --since 1h",
            "integ dlq list --integration {x}",
        ],
        promql: &[
            "sum by (connection) (rate(integ_http_client_requests_total{{c},code_class=\"4xx\"}[5m]))",
        ],
        mitigate: "Put the right value in the secrets file (or the environment) under the \
            secret's name, then restart `integ serve` (secrets are read at start). Replay what \
            was dead-lettered meanwhile: `integ dlq replay --all --integration {x}`.",
        verify: "New runs succeed; `4xx` answers on the connection fall back to their usual \
            level.",
        extras: &[
            Extra {
                when: |f| f.oauth,
                part: Part::Meaning,
                text: "For the OAuth2 connections ({oauth}), the token endpoint may refuse the \
                    refresh token (`invalid_grant`): it was revoked, or the app's authorisation \
                    was withdrawn.",
            },
            Extra {
                when: |f| f.oauth,
                part: Part::Promql,
                text: "sum by (connection) (increase(integ_oauth_token_refreshes_total{{oauth_matcher},result=\"error\"}[1h]))",
            },
            Extra {
                when: |f| f.oauth,
                part: Part::Mitigate,
                text: "OAuth2: authorise the app again, put the new refresh token in the \
                    secrets; it takes over from the rotated one saved in the state file.",
            },
        ],
    },
    Template {
        id: "rb-rate-limited",
        title: "Rate limited",
        applies: |f| f.connections,
        alert: Some(AlertMetric::RateLimited),
        symptom: "APIs answer `429`; runs slow down; the backlog grows.",
        meaning: "Calls waited for the connection's declared limit, or an API answered `429` \
            and integ paused the whole connection for the wait it named (at most 1h). A `429` \
            means the declared limit is higher than what the API grants (other clients may \
            share the quota).",
        impact: "Events take longer; none is lost. See the ceilings in \
            [6. Rate limits and capacity](#capacity).",
        commands: &["integ runs --integration {x} --since 1h"],
        promql: &[
            "sum by (connection, source) (rate(integ_rate_limit_throttled_total{{c}}[5m]))",
            "integ_rate_limit_paused_until_timestamp_seconds{{c}} > time()",
        ],
        mitigate: "`source=\"remote\"` (429s): lower the connection's `rate_limit` to what the \
            API grants, or ask the vendor for more. `source=\"local\"` only: the declared limit \
            is what holds events back; raise it if the API allows. Then deploy the spec.",
        verify: "Throttling falls to 0 and the oldest waiting event gets younger.",
        extras: &[],
    },
    Template {
        id: "rb-retries",
        title: "Retries rising",
        applies: |f| f.connections,
        alert: Some(AlertMetric::Retries),
        symptom: "Retried calls rise on a connection.",
        meaning: "Calls fail with answers the steps retry (`429`, `5xx`, timeouts, connection \
            errors, per [5. Error handling](#errors)) and succeed on a later attempt, or not.",
        impact: "Runs take longer and use more of the rate limits. Past the last attempt, \
            events dead-letter or fail.",
        commands: &["integ runs --integration {x} --since 1h"],
        promql: &["sum by (connection, reason) (rate(integ_http_client_retries_total{{c}}[5m]))"],
        mitigate: "By the reason: `429` → [rb-rate-limited](#rb-rate-limited); `5xx`, \
            `timeout`, `network` → [rb-upstream-down](#rb-upstream-down).",
        verify: "Retries per connection fall back to their usual level.",
        extras: &[],
    },
    Template {
        id: "rb-upstream-down",
        title: "An API is down or slow",
        applies: |f| f.connections,
        alert: None,
        symptom: "`5xx` answers and timeouts rise on a connection; runs dead-letter or fail.",
        meaning: "An API answers `5xx` or does not answer in time. Each step retries as its \
            policy says, then dead-letters, skips or fails.",
        impact: "The steps on that API are not done; events dead-letter (kept for replay) or \
            fail, per each step's `on_error`.",
        commands: &[
            "integ runs --integration {x} --failed --since 1h",
            "integ dlq list --integration {x}",
        ],
        promql: &[
            "sum by (connection, code_class) (rate(integ_http_client_requests_total{{c},code_class=~\"5xx|none\"}[5m]))",
        ],
        mitigate: "Check the vendor's status page. Nothing to change in integ while the API is \
            down; once it is back, `integ dlq replay --all --integration {x}`.",
        verify: "`5xx`/`none` answers fall to their usual level; the replays succeed.",
        extras: &[Extra {
            when: |f| f.breakers,
            part: Part::Meaning,
            text: "The circuit breaker of {breakers} opens after repeated failures: see \
                [rb-breaker-open](#rb-breaker-open).",
        }],
    },
    Template {
        id: "rb-breaker-open",
        title: "A circuit breaker is open",
        applies: |f| f.breakers,
        alert: None,
        symptom: "Calls on {breakers} fail at once, without reaching the API \
            (`error_type=\"circuit_open\"`); runs dead-letter or fail.",
        meaning: "The connection's breaker saw the failures it opens on (its settings are in \
            [2. Connections and credentials](#connections)) and now fails every call at once \
            for its cooldown, sparing an API that is struggling; then it lets one call through \
            to probe, and closes when that call succeeds.",
        impact: "While it is open, every step on that connection fails without trying; events \
            dead-letter (kept for replay) or fail, per each step's `on_error`.",
        commands: &[
            "integ runs --integration {x} --failed --since 1h",
            "integ dlq list --integration {x}",
        ],
        promql: &[
            "integ_circuit_breaker_state{{breaker_matcher},state=\"open\"} == 1",
            "sum by (connection) (rate(integ_http_client_errors_total{{breaker_matcher},error_type=\"circuit_open\"}[5m]))",
        ],
        mitigate: "Find why the API failed: [rb-upstream-down](#rb-upstream-down) (or \
            [rb-auth](#rb-auth) for `401`s). There is nothing to reset: the breaker probes by \
            itself after its cooldown. Once it is closed, `integ dlq replay --all --integration \
            {x}`.",
        verify: "`integ_circuit_breaker_state{{breaker_matcher},state=\"closed\"}` is 1 again \
            and the replays succeed.",
        extras: &[],
    },
    Template {
        id: "rb-webhook-signature",
        title: "Webhook signatures failing (401)",
        applies: |f| f.signatures,
        alert: None,
        symptom: "Webhook requests are answered `401`; the sender reports failed deliveries.",
        meaning: "The signature of the requests does not verify: the signing secret changed on \
            one side, or the request was changed on its way (a proxy, another URL). Forged \
            requests look the same.",
        impact: "Those events are not accepted; nothing of them is enqueued. Most senders \
            retry for a while (Stripe, Shopify, GitHub: hours to days), then drop them.",
        commands: &["integ triggers --integration {x}"],
        promql: &[
            "sum by (reason) (increase(integ_webhook_signature_failures_total{integration=\"{x}\"}[1h]))",
        ],
        mitigate: "A rotated signing secret: put the new value under its name \
            ({signing_secrets}) and restart `integ serve`.",
        verify: "`integ_webhook_requests_total{integration=\"{x}\",code=\"202\"}` rises again; \
            ask the sender to redeliver what failed.",
        extras: &[
            Extra {
                when: |f| f.timestamped,
                part: Part::Meaning,
                text: "For a scheme that signs a timestamp, a request older than the \
                    tolerance fails too (`stale`).",
            },
            Extra {
                when: |f| f.timestamped,
                part: Part::Mitigate,
                text: "`stale` failures: the sender's clock is more than the tolerance off, \
                    or its requests wait in a queue on the way; nothing to do on our side but \
                    report it.",
            },
            Extra {
                when: |f| f.hubspot,
                part: Part::Mitigate,
                text: "HubSpot v3 signs the full URL: after a proxy or host change, give \
                    `integ serve` the URL HubSpot calls with `--public-url`.",
            },
        ],
    },
    Template {
        id: "rb-webhook-rejects",
        title: "Webhooks refused (400, 413, 500, 503)",
        applies: |f| f.webhooks,
        alert: None,
        symptom: "Webhook answers other than `202` and `401` rise.",
        meaning: "`400`: the body is not JSON; `413`: over 1 MiB; `500`: `each` or `when` \
            failed on the body (a field it reads is missing: the payload changed upstream); \
            `503`: the backlog is past `--max-pending`, or the process is shutting down.",
        impact: "Nothing of a refused request is enqueued; the sender retries by its own rules.",
        commands: &["integ triggers --integration {x}"],
        promql: &[
            "sum by (code) (rate(integ_webhook_requests_total{integration=\"{x}\",code!=\"202\"}[5m]))",
        ],
        mitigate: "`500` → compare a recent payload with the trigger's `each` and `when` \
            ([3. Triggers](#triggers)), fix the spec, `integ test {spec}`, deploy. `503` → \
            [rb-backlog](#rb-backlog). `413` → ask the sender for smaller batches.",
        verify: "Answers are `202` again.",
        extras: &[],
    },
    Template {
        id: "rb-poll-stalled",
        title: "A poll stalled",
        applies: |f| f.polls,
        alert: None,
        symptom: "No successful poll round for more than two intervals ({poll_window}); \
            `integ triggers` shows failures in a row.",
        meaning: "Each round fails (an error answer, a `when` that fails on an item) and \
            commits nothing, so the next round starts from the same position.",
        impact: "New items are not picked up; none is lost while the API keeps them: the next \
            good round starts where the last committed page ended.",
        commands: &["integ triggers --integration {x}"],
        promql: &["{poll_promql}"],
        mitigate: "Read the trigger's last error: `401`/`403` → [rb-auth](#rb-auth); `429` → \
            [rb-rate-limited](#rb-rate-limited); `5xx` → [rb-upstream-down](#rb-upstream-down); \
            an item the trigger's `when` cannot read → fix the spec.",
        verify: "`integ triggers` shows a recent success and no failures in a row.",
        extras: &[],
    },
    Template {
        id: "rb-schedule-missed",
        title: "A scheduled run did not happen",
        applies: |f| f.schedules,
        alert: None,
        symptom: "An expected run is not in `integ runs`, or is recorded as skipped.",
        meaning: "No process served the schedule at its time (down, deploying), or the \
            previous run was still going and the overlap policy skipped it. What is made up \
            afterwards is the schedule's missed-run policy ([3. Triggers](#triggers)).",
        impact: "That run's work is not done until the next occurrence, unless the policy \
            makes it up.",
        commands: &[
            "integ runs --integration {x} --since {lookback}",
            "integ triggers --integration {x}",
        ],
        promql: &["{schedule_ran}", "{schedule_missed}"],
        mitigate: "Run it by hand if it must not wait: `integ run {spec}` (with the \
            schedule's event as `--input`, see [3. Triggers](#triggers)).",
        verify: "The next occurrence appears in `integ runs`.",
        extras: &[],
    },
    Template {
        id: "rb-backlog",
        title: "Backlog growing",
        applies: |_| true,
        alert: None,
        symptom: "The oldest waiting event keeps getting older; webhooks may get `503`; \
            `/readyz` fails past `--max-pending`.",
        meaning: "Events arrive faster than they run: a rate limit holds them back, an API is \
            slow, the workers are too few, or the process is not running.",
        impact: "Everything is late; nothing is lost (the inbox is durable). Past \
            `--max-pending`, webhooks are refused with `503` and senders retry.",
        commands: &[
            "curl -si http://127.0.0.1:8080/readyz",
            "integ runs --integration {x} --since 15m",
        ],
        promql: &[
            "time() - integ_inbox_oldest_event_timestamp_seconds{integration=\"{x}\"}",
            "sum by (state) (integ_inbox_events{integration=\"{x}\"})",
        ],
        mitigate: "Throttled → [rb-rate-limited](#rb-rate-limited); `5xx`/timeouts → \
            [rb-upstream-down](#rb-upstream-down); all workers busy → raise `integ serve \
            --workers` (and the spec's `concurrency`) if the APIs allow; process down → start \
            it: it recovers what was running.",
        verify: "The oldest event's age falls back under a few minutes.",
        extras: &[],
    },
    Template {
        id: "rb-alert-channel",
        title: "Alert notifications failing",
        applies: |f| !f.model.alerts.is_empty(),
        alert: None,
        symptom: "Alerts fire but nobody is notified.",
        meaning: "The alert's channel refuses the notification: a Slack or webhook URL was \
            revoked or rotated, an e-mail relay refuses the message, or the endpoint is down.",
        impact: "Failures go unnoticed; check the other entries' symptoms by hand meanwhile.",
        commands: &["integ runs --integration {x} --failed --since 1d"],
        promql: &[
            "sum by (alert, result) (increase(integ_alert_notifications_total{integration=\"{x}\"}[1d]))",
        ],
        mitigate: "Per alert: {channel_fix}.",
        verify: "`integ_alert_notifications_total{result=\"ok\"}` rises on the next alert.",
        extras: &[],
    },
];

pub fn markdown(entries: &[Entry], kept: &mut Kept) -> String {
    let mut out = heading(2, "runbook", "9. Runbook");
    out.push_str(
        "One entry per failure this spec makes possible. Commands read the state file of \
        `integ serve`: add `--state PATH` when it is not `.integ/state.db`. The escalation \
        blocks are written by the team and kept when this file is generated again.\n\n",
    );
    let contents: Vec<String> = entries
        .iter()
        .map(|e| format!("[{}](#{})", e.title, e.id))
        .collect();
    out.push_str(&format!("{}\n\n", contents.join(" · ")));
    for entry in entries {
        out.push_str(&heading(3, entry.id, entry.title));
        out.push_str(&format!("**Symptom:** {}\n\n", entry.symptom));
        out.push_str(&format!("**Meaning:** {}\n\n", entry.meaning));
        out.push_str(&format!("**Impact:** {}\n\n", entry.impact));
        out.push_str("**Diagnose:**\n\n```sh\n");
        for command in &entry.commands {
            out.push_str(&format!("{command}\n"));
        }
        out.push_str("```\n\n```promql\n");
        for query in &entry.promql {
            out.push_str(&format!("{query}\n"));
        }
        out.push_str("```\n\n");
        out.push_str(&format!("**Mitigate:** {}\n\n", entry.mitigate));
        out.push_str(&format!("**Verify:** {}\n\n", entry.verify));
        out.push_str("**Escalate:**\n\n");
        out.push_str(&kept.block(
            entry.id,
            "_Not written yet: who to call and when, the vendor's support and status page._",
        ));
        out.push('\n');
    }
    out
}
