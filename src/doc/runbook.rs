//! §9: one entry per failure the spec makes possible, written for the person paged at 3
//! a.m.: Symptom → Meaning → Impact → Diagnose (exact `integ` commands and PromQL) →
//! Mitigate → Verify, then a hand-written escalation block that regeneration keeps.

use super::handwritten::Kept;
use super::markdown::heading;
use super::monitoring::{
    connections_matcher, matcher_of, schedule_promql, slowest_poll, stalled_poll_promql,
};
use crate::model::format_duration;
use crate::model::{AlertMetric, Auth, Integration, OnError, Trigger};
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

/// What the entries need to know of a spec, worked out once.
struct Facts<'a> {
    model: &'a Integration,
    name: &'a str,
    connections: String,
    dead_letter_steps: Vec<&'a str>,
    failing_steps: Vec<&'a str>,
    webhooks: Vec<(usize, &'a crate::model::Webhook)>,
    alerts: Vec<&'a crate::model::Alert>,
}

impl Facts<'_> {
    fn alert_on(&self, metric: AlertMetric) -> Option<String> {
        self.alerts.iter().find(|a| a.metric == metric).map(|a| {
            format!(
                "the alert `{} {} {} in {}`",
                super::monitoring::metric_name(a.metric),
                a.op.as_str(),
                a.threshold,
                format_duration(a.window)
            )
        })
    }
}

pub fn build(model: &Integration) -> Vec<Entry> {
    let steps = || model.steps.iter().chain(&model.fallbacks);
    let facts = Facts {
        model,
        name: &model.name,
        connections: connections_matcher(model),
        dead_letter_steps: steps()
            .filter(|s| s.on_error == OnError::DeadLetter)
            .map(|s| s.name.as_str())
            .collect(),
        failing_steps: steps()
            .filter(|s| s.on_error == OnError::Fail)
            .map(|s| s.name.as_str())
            .collect(),
        webhooks: model
            .triggers
            .iter()
            .enumerate()
            .filter_map(|(i, t)| match t {
                Trigger::Webhook(hook) => Some((i + 1, hook.as_ref())),
                _ => None,
            })
            .collect(),
        alerts: model.alerts.iter().collect(),
    };
    let mut entries = Vec::new();
    let has = |metric| model.alerts.iter().any(|a| a.metric == metric);
    if !facts.dead_letter_steps.is_empty() || has(AlertMetric::DeadLetters) {
        entries.push(dead_letters(&facts));
    }
    if !facts.failing_steps.is_empty() || has(AlertMetric::FailedRuns) {
        entries.push(failed_runs(&facts));
    }
    if model
        .connections
        .iter()
        .any(|c| !matches!(c.auth, Auth::None))
    {
        entries.push(auth(&facts));
    }
    entries.push(rate_limited(&facts));
    entries.push(retries(&facts));
    entries.push(upstream_down(&facts));
    if facts.webhooks.iter().any(|(_, h)| h.signature.is_some()) {
        entries.push(signature(&facts));
    }
    if !facts.webhooks.is_empty() {
        entries.push(webhook_rejects(&facts));
    }
    if let Some(every) = slowest_poll(model) {
        entries.push(poll_stalled(&facts, every));
    }
    if model
        .triggers
        .iter()
        .any(|t| matches!(t, Trigger::Schedule(_)))
    {
        entries.push(schedule_missed(&facts));
    }
    entries.push(backlog(&facts));
    if !model.alerts.is_empty() {
        entries.push(alert_channel(&facts));
    }
    entries
}

fn list(names: &[&str]) -> String {
    let ticked: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
    ticked.join(", ")
}

fn dead_letters(f: &Facts<'_>) -> Entry {
    let x = f.name;
    Entry {
        id: "rb-dead-letters",
        title: "Dead letters accumulating",
        symptom: f.alert_on(AlertMetric::DeadLetters).map_or_else(
            || format!("`integ_dead_letters{{integration=\"{x}\"}}` above 0; `integ dlq list --integration {x}` shows entries."),
            |alert| format!("{alert} fires; `integ dlq list --integration {x}` shows entries."),
        ),
        meaning: format!(
            "Events used up the attempts of a step whose `on_error` is a dead letter ({}), or \
            failed with an answer that is not retried (see [5. Error handling](#errors)). Each \
            was moved to the dead letters with its input, the step, the last request and answer \
            and the error.",
            list(&f.dead_letter_steps)
        ),
        impact: "What those events should have done in the target API is not done yet. Nothing \
            is lost: each event waits in the dead letters until it is replayed."
            .into(),
        commands: vec![
            format!("integ dlq list --integration {x}"),
            "integ dlq show ID        # the step, status, answer excerpt, attempts".into(),
            format!("integ runs --integration {x} --failed --since 1h"),
        ],
        promql: vec![format!(
            "sum by (step, error_type) (increase(integ_dead_letters_total{{integration=\"{x}\"}}[1h]))"
        )],
        mitigate: format!("By the error: `401`/`403` → [rb-auth](#rb-auth); `429` → \
            [rb-rate-limited](#rb-rate-limited); `5xx` or timeouts → \
            [rb-upstream-down](#rb-upstream-down), wait for the API to recover; `400`/`422` \
            or a missing field → the mapping ([4. Data mapping](#mapping)): fix the spec, \
            `integ lint`, `integ test`, deploy. Then `integ dlq replay ID` (or `integ dlq replay \
            --all --integration {x}`); steps with an idempotency key are not done twice."
        ),
        verify: format!(
            "`integ dlq list --integration {x}` no longer shows them; `integ_dead_letters{{integration=\"{x}\"}}` \
            is back to 0 and `integ runs --integration {x}` shows the replays succeeded."
        ),
    }
}

fn failed_runs(f: &Facts<'_>) -> Entry {
    let x = f.name;
    let steps = if f.failing_steps.is_empty() {
        "a step".to_string()
    } else {
        format!(
            "a step whose `on_error` is `fail` ({})",
            list(&f.failing_steps)
        )
    };
    Entry {
        id: "rb-failed-runs",
        title: "Runs failing",
        symptom: f.alert_on(AlertMetric::FailedRuns).map_or_else(
            || format!("`integ runs --integration {x} --failed` lists new runs."),
            |alert| format!("{alert} fires."),
        ),
        meaning: format!(
            "{steps} failed after its last attempt and stopped the run. A failed run is recorded \
            in the run history; its event is not kept for replay."
        ),
        impact: "The rest of those runs' steps did not happen. The events are not in the dead \
            letters: to do them again, send them again (or run them with `integ run`)."
            .into(),
        commands: vec![
            format!("integ runs --integration {x} --failed --since 1h"),
            format!("integ runs --integration {x} --failed --format json --limit 5"),
        ],
        promql: vec![format!(
            "sum(increase(integ_runs_total{{integration=\"{x}\",outcome=\"failed\"}}[1h]))"
        )],
        mitigate: "Read the error of the failed runs, then follow the entry for its cause \
            ([rb-auth](#rb-auth), [rb-rate-limited](#rb-rate-limited), \
            [rb-upstream-down](#rb-upstream-down)); a mapping error is fixed in the spec."
            .into(),
        verify: format!(
            "New runs of `{x}` succeed: `sum(increase(integ_runs_total{{integration=\"{x}\",outcome=\"succeeded\"}}[15m]))` rises and the failed count stays flat."
        ),
    }
}

fn auth(f: &Facts<'_>) -> Entry {
    let x = f.name;
    let oauth: Vec<&str> = f
        .model
        .connections
        .iter()
        .filter(|c| matches!(c.auth, Auth::OAuth2(_)))
        .map(|c| c.name.as_str())
        .collect();
    let mut meaning = "An API refused the credentials: a token was revoked or rotated, a \
        secret is wrong or expired, or the account lost a scope. The secrets each connection \
        reads are listed in [2. Connections and credentials](#secrets)."
        .to_string();
    let mut mitigate = format!(
        "Put the right value in the secrets file (or the environment) under the secret's \
        name, then restart `integ serve` (secrets are read at start). Replay what was \
        dead-lettered meanwhile: `integ dlq replay --all --integration {x}`."
    );
    if !oauth.is_empty() {
        meaning.push_str(&format!(
            " For the OAuth2 connections ({}), the token endpoint may refuse the refresh token \
            (`invalid_grant`): it was revoked, or the app's authorisation was withdrawn.",
            list(&oauth)
        ));
        mitigate.push_str(
            " OAuth2: authorise the app again, put the new refresh token in the secrets; it \
            takes over from the rotated one saved in the state file.",
        );
    }
    Entry {
        id: "rb-auth",
        title: "Authentication failing (401, 403, token refresh)",
        symptom: "Runs fail or dead-letter with `401` or `403`; for OAuth2, token fetches fail."
            .into(),
        meaning,
        impact: "Every step on the connection fails until the credentials are fixed. Events \
            wait in the dead letters (or fail, per the step's `on_error`)."
            .into(),
        commands: vec![
            format!("integ runs --integration {x} --failed --since 1h"),
            format!("integ dlq list --integration {x}"),
        ],
        promql: {
            let mut queries = vec![format!(
                "sum by (connection) (rate(integ_http_client_requests_total{{{},code_class=\"4xx\"}}[5m]))",
                f.connections
            )];
            if !oauth.is_empty() {
                queries.push(format!(
                    "sum by (connection) (increase(integ_oauth_token_refreshes_total{{{},result=\"error\"}}[1h]))",
                    matcher_of(f.model, &oauth)
                ));
            }
            queries
        },
        mitigate,
        verify: "New runs succeed; `4xx` answers on the connection fall back to their usual \
            level."
            .into(),
    }
}

fn rate_limited(f: &Facts<'_>) -> Entry {
    Entry {
        id: "rb-rate-limited",
        title: "Rate limited",
        symptom: f.alert_on(AlertMetric::RateLimited).map_or_else(
            || "APIs answer `429`; runs slow down; the backlog grows.".to_string(),
            |alert| format!("{alert} fires; runs slow down; the backlog grows."),
        ),
        meaning: "Calls waited for the connection's declared limit, or an API answered `429` \
            and integ paused the whole connection for the wait it named (at most 1h). A `429` \
            means the declared limit is higher than what the API grants (other clients may \
            share the quota)."
            .into(),
        impact: "Events take longer; none is lost. See the ceilings in \
            [6. Rate limits and capacity](#capacity)."
            .into(),
        commands: vec![format!("integ runs --integration {} --since 1h", f.name)],
        promql: vec![
            format!(
                "sum by (connection, source) (rate(integ_rate_limit_throttled_total{{{}}}[5m]))",
                f.connections
            ),
            format!(
                "integ_rate_limit_paused_until_timestamp_seconds{{{}}} > time()",
                f.connections
            ),
        ],
        mitigate: "`source=\"remote\"` (429s): lower the connection's `rate_limit` to what the \
            API grants, or ask the vendor for more. `source=\"local\"` only: the declared limit \
            is what holds events back; raise it if the API allows. Then deploy the spec."
            .into(),
        verify: "Throttling falls to 0 and the oldest waiting event gets younger.".into(),
    }
}

fn retries(f: &Facts<'_>) -> Entry {
    Entry {
        id: "rb-retries",
        title: "Retries rising",
        symptom: f.alert_on(AlertMetric::Retries).map_or_else(
            || "Retried calls rise on a connection.".to_string(),
            |alert| format!("{alert} fires."),
        ),
        meaning: "Calls fail with answers the steps retry (`429`, `5xx`, timeouts, connection \
            errors, per [5. Error handling](#errors)) and succeed on a later attempt, or not."
            .into(),
        impact: "Runs take longer and use more of the rate limits. Past the last attempt, \
            events dead-letter or fail."
            .into(),
        commands: vec![format!("integ runs --integration {} --since 1h", f.name)],
        promql: vec![format!(
            "sum by (connection, reason) (rate(integ_http_client_retries_total{{{}}}[5m]))",
            f.connections
        )],
        mitigate: "By the reason: `429` → [rb-rate-limited](#rb-rate-limited); `5xx`, \
            `timeout`, `network` → [rb-upstream-down](#rb-upstream-down)."
            .into(),
        verify: "Retries per connection fall back to their usual level.".into(),
    }
}

fn upstream_down(f: &Facts<'_>) -> Entry {
    let breakers: Vec<&str> = f
        .model
        .connections
        .iter()
        .filter(|c| c.circuit_breaker.is_some())
        .map(|c| c.name.as_str())
        .collect();
    let mut meaning = "An API answers `5xx` or does not answer in time. Each step retries as \
        its policy says, then dead-letters, skips or fails."
        .to_string();
    let mut promql = vec![format!(
        "sum by (connection, code_class) (rate(integ_http_client_requests_total{{{},code_class=~\"5xx|none\"}}[5m]))",
        f.connections
    )];
    if !breakers.is_empty() {
        meaning.push_str(&format!(
            " The circuit breaker of {} opens after repeated failures: its calls then fail at \
            once, without reaching the API, until a probe succeeds.",
            list(&breakers)
        ));
        promql.push(format!(
            "integ_circuit_breaker_state{{{},state=\"open\"}} == 1",
            matcher_of(f.model, &breakers)
        ));
    }
    Entry {
        id: "rb-upstream-down",
        title: "An API is down or slow",
        symptom: "`5xx` answers and timeouts rise on a connection; runs dead-letter or fail."
            .into(),
        meaning,
        impact: "The steps on that API are not done; events dead-letter (kept for replay) or \
            fail, per each step's `on_error`."
            .into(),
        commands: vec![
            format!("integ runs --integration {} --failed --since 1h", f.name),
            format!("integ dlq list --integration {}", f.name),
        ],
        promql,
        mitigate: format!(
            "Check the vendor's status page. Nothing to change in integ while the API is \
            down; once it is back, `integ dlq replay --all --integration {}`.",
            f.name
        ),
        verify: "`5xx`/`none` answers fall to their usual level; the replays succeed.".into(),
    }
}

fn signature(f: &Facts<'_>) -> Entry {
    let x = f.name;
    let secrets: Vec<String> = f
        .webhooks
        .iter()
        .filter_map(|(n, h)| {
            let secret = &h.signature.as_ref()?.secret;
            let mut names = Vec::new();
            super::value::names(secret, &mut names);
            let name = names.first().map(|(_, n)| n.clone())?;
            Some(format!("[trigger {n}](#trigger-{n}): `{name}`"))
        })
        .collect();
    let hubspot = f.webhooks.iter().any(|(_, h)| {
        h.signature
            .as_ref()
            .is_some_and(|s| s.preset == crate::model::SignaturePreset::HubspotV3)
    });
    let mut mitigate = format!(
        "A rotated signing secret: put the new value under its name ({}) and restart `integ \
        serve`. A sender's clock more than the tolerance off: `stale` failures; nothing to do \
        on our side but report it.",
        secrets.join(", ")
    );
    if hubspot {
        mitigate.push_str(
            " HubSpot v3 signs the full URL: after a proxy or host change, give `integ serve` \
            the URL HubSpot calls with `--public-url`.",
        );
    }
    Entry {
        id: "rb-webhook-signature",
        title: "Webhook signatures failing (401)",
        symptom: "Webhook requests are answered `401`; the sender reports failed deliveries."
            .into(),
        meaning: "The signature of the requests does not verify: the signing secret changed \
            on one side, the request was changed on its way (a proxy, another URL), or its \
            timestamp is older than the tolerance. Forged requests look the same."
            .into(),
        impact: "Those events are not accepted; nothing of them is enqueued. Most senders \
            retry for a while (Stripe, Shopify, GitHub: hours to days), then drop them."
            .into(),
        commands: vec![format!("integ triggers --integration {x}")],
        promql: vec![format!(
            "sum by (reason) (increase(integ_webhook_signature_failures_total{{integration=\"{x}\"}}[1h]))"
        )],
        mitigate,
        verify: format!(
            "`integ_webhook_requests_total{{integration=\"{x}\",code=\"202\"}}` rises again; \
            ask the sender to redeliver what failed."
        ),
    }
}

fn webhook_rejects(f: &Facts<'_>) -> Entry {
    let x = f.name;
    Entry {
        id: "rb-webhook-rejects",
        title: "Webhooks refused (400, 413, 500, 503)",
        symptom: "Webhook answers other than `202` and `401` rise.".into(),
        meaning: "`400`: the body is not JSON; `413`: over 1 MiB; `500`: `each` or `when` \
            failed on the body (a field it reads is missing: the payload changed upstream); \
            `503`: the backlog is past `--max-pending`, or the process is shutting down."
            .into(),
        impact: "Nothing of a refused request is enqueued; the sender retries by its own \
            rules."
            .into(),
        commands: vec![format!("integ triggers --integration {x}")],
        promql: vec![format!(
            "sum by (code) (rate(integ_webhook_requests_total{{integration=\"{x}\",code!=\"202\"}}[5m]))"
        )],
        mitigate: "`500` → compare a recent payload with the trigger's `each` and `when` \
            ([3. Triggers](#triggers)), fix the spec, `integ test`, deploy. `503` → \
            [rb-backlog](#rb-backlog). `413` → ask the sender for smaller batches."
            .into(),
        verify: "Answers are `202` again.".into(),
    }
}

fn poll_stalled(f: &Facts<'_>, every: std::time::Duration) -> Entry {
    let x = f.name;
    Entry {
        id: "rb-poll-stalled",
        title: "A poll stalled",
        symptom: format!(
            "No successful poll round for more than two intervals ({}); `integ triggers` \
            shows failures in a row.",
            format_duration(every * 2)
        ),
        meaning: "Each round fails (an error answer, a `when` that fails on an item) and \
            commits nothing, so the next round starts from the same position."
            .into(),
        impact: "New items are not picked up; none is lost while the API keeps them: the next \
            good round starts where the last committed page ended."
            .into(),
        commands: vec![format!("integ triggers --integration {x}")],
        promql: vec![stalled_poll_promql(x, every)],
        mitigate: "Read the trigger's last error: `401`/`403` → [rb-auth](#rb-auth); `429` → \
            [rb-rate-limited](#rb-rate-limited); `5xx` → [rb-upstream-down](#rb-upstream-down); \
            an item the trigger's `when` cannot read → fix the spec."
            .into(),
        verify: "`integ triggers` shows a recent success and no failures in a row.".into(),
    }
}

fn schedule_missed(f: &Facts<'_>) -> Entry {
    let x = f.name;
    Entry {
        id: "rb-schedule-missed",
        title: "A scheduled run did not happen",
        symptom: "An expected run is not in `integ runs`, or is recorded as skipped.".into(),
        meaning: "No process served the schedule at its time (down, deploying), or the \
            previous run was still going and the overlap policy skipped it. What is made up \
            afterwards is the schedule's missed-run policy ([3. Triggers](#triggers))."
            .into(),
        impact: "That run's work is not done until the next occurrence, unless the policy \
            makes it up."
            .into(),
        commands: vec![
            format!("integ runs --integration {x} --since 1d"),
            format!("integ triggers --integration {x}"),
        ],
        promql: schedule_promql(x).into(),
        mitigate: format!(
            "Run it by hand if it must not wait: `integ run SPEC` (the spec of `{x}`, with the \
            schedule's event as `--input`)."
        ),
        verify: "The next occurrence appears in `integ runs`.".into(),
    }
}

fn backlog(f: &Facts<'_>) -> Entry {
    let x = f.name;
    Entry {
        id: "rb-backlog",
        title: "Backlog growing",
        symptom: "The oldest waiting event keeps getting older; webhooks may get `503`; \
            `/readyz` fails past `--max-pending`."
            .into(),
        meaning: "Events arrive faster than they run: a rate limit holds them back, an API is \
            slow, the workers are too few, or the process is not running."
            .into(),
        impact: "Everything is late; nothing is lost (the inbox is durable). Past \
            `--max-pending`, webhooks are refused with `503` and senders retry."
            .into(),
        commands: vec![
            "curl -si http://127.0.0.1:8080/readyz".into(),
            format!("integ runs --integration {x} --since 15m"),
        ],
        promql: vec![
            format!("time() - integ_inbox_oldest_event_timestamp_seconds{{integration=\"{x}\"}}"),
            format!("sum by (state) (integ_inbox_events{{integration=\"{x}\"}})"),
        ],
        mitigate: "Throttled → [rb-rate-limited](#rb-rate-limited); `5xx`/timeouts → \
            [rb-upstream-down](#rb-upstream-down); all workers busy → raise `integ serve \
            --workers` (and the spec's `concurrency`) if the APIs allow; process down → start \
            it: it recovers what was running."
            .into(),
        verify: "The oldest event's age falls back under a few minutes.".into(),
    }
}

fn alert_channel(f: &Facts<'_>) -> Entry {
    let x = f.name;
    Entry {
        id: "rb-alert-channel",
        title: "Alert notifications failing",
        symptom: "Alerts fire but nobody is notified.".into(),
        meaning: "The alert's channel refuses the notification: a Slack or webhook URL was \
            revoked or rotated, or the endpoint is down."
            .into(),
        impact: "Failures go unnoticed; check the other entries' symptoms by hand meanwhile."
            .into(),
        commands: vec![format!("integ runs --integration {x} --failed --since 1d")],
        promql: vec![format!(
            "sum by (alert, result) (increase(integ_alert_notifications_total{{integration=\"{x}\"}}[1d]))"
        )],
        mitigate: "Put a working URL under the channel's secret name ([the index](#secrets)) \
            and restart `integ serve`."
            .into(),
        verify: "`integ_alert_notifications_total{result=\"ok\"}` rises on the next alert.".into(),
    }
}

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
