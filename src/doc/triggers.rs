//! §3: what starts a run. Webhooks with the URL to give the sender, the signature scheme
//! and its window, the filters and dedupe with its retention, the answers a sender gets;
//! polls with their interval, cursor and mark; schedules in words with their policies.

use super::markdown::{code, effective, heading, table, value};
use super::value::{Source, Value};
use super::{Effective, Options};
use crate::model::format_duration;
use crate::model::{
    Cursor, Dedupe, Integration, Missed, Overlap, Poll, Schedule, SignatureEncoding,
    SignaturePreset, Trigger, Webhook,
};
use serde::Serialize;

#[derive(Debug, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TriggerDoc {
    Webhook {
        id: String,
        method: &'static str,
        path: String,
        /// The URL to give the sender: `--public-url` and the path, else a placeholder.
        url: String,
        signature: Option<SignatureDoc>,
        each: Option<String>,
        when: Option<String>,
        dedupe: Option<DedupeDoc>,
    },
    Poll {
        id: String,
        connection: String,
        method: &'static str,
        path: String,
        every: String,
        items: Option<String>,
        cursor: Option<String>,
        since: Option<String>,
        when: Option<String>,
        dedupe: Option<DedupeDoc>,
    },
    Schedule {
        id: String,
        cron: String,
        in_words: String,
        timezone: Effective<String>,
        overlap: Effective<String>,
        missed: Effective<String>,
        event: Option<String>,
    },
    Manual {
        id: String,
    },
}

#[derive(Debug, Serialize)]
pub struct SignatureDoc {
    pub scheme: &'static str,
    pub verifies: String,
    pub secret: Value,
    /// For the schemes that sign a timestamp.
    pub tolerance: Option<Effective<String>>,
}

#[derive(Debug, Serialize)]
pub struct DedupeDoc {
    pub key: String,
    pub retention: Effective<String>,
}

pub fn build(model: &Integration, source: Source<'_>, options: &Options) -> Vec<TriggerDoc> {
    let id = |index: usize| format!("trigger-{}", index + 1);
    let written = |expr: &crate::ast::Expr| source.written(expr.span);
    model
        .triggers
        .iter()
        .enumerate()
        .map(|(index, trigger)| match trigger {
            Trigger::Webhook(hook) => webhook(id(index), hook, source, options),
            Trigger::Poll(poll) => self::poll(id(index), poll, source),
            Trigger::Schedule(schedule) => self::schedule(id(index), schedule, &written),
            Trigger::Manual => TriggerDoc::Manual { id: id(index) },
        })
        .collect()
}

fn webhook(id: String, hook: &Webhook, source: Source<'_>, options: &Options) -> TriggerDoc {
    let base = options.public_url.as_deref().unwrap_or("<public URL>");
    TriggerDoc::Webhook {
        id,
        method: hook.method.as_str(),
        path: hook.path.clone(),
        url: format!("{base}{}", hook.path),
        signature: hook.signature.as_ref().map(|signature| SignatureDoc {
            scheme: preset_name(&signature.preset),
            verifies: verifies(&signature.preset),
            secret: source.value(&signature.secret).credential(),
            tolerance: signs_time(&signature.preset).then(|| match hook.tolerance {
                Some(tolerance) => Effective::set(format_duration(tolerance)),
                None => Effective::default_of(format_duration(
                    crate::webhook::signature::DEFAULT_TOLERANCE,
                )),
            }),
        }),
        each: hook.each.as_ref().map(|e| source.written(e.span)),
        when: hook.when.as_ref().map(|e| source.written(e.span)),
        dedupe: hook.dedupe.as_ref().map(|d| dedupe(d, source)),
    }
}

fn poll(id: String, poll: &Poll, source: Source<'_>) -> TriggerDoc {
    let written = |expr: &crate::ast::Expr| source.written(expr.span);
    TriggerDoc::Poll {
        id,
        connection: poll.connection.clone(),
        method: poll.method.as_str(),
        path: poll.path.value.clone(),
        every: format_duration(poll.every),
        items: poll.items.as_ref().map(written),
        cursor: poll.cursor.as_ref().map(|c| cursor(c, source)),
        since: poll.since.as_ref().map(|since| {
            let mut words = format!(
                "asks for what changed since the largest {} seen ({})",
                code(&written(&since.path)),
                since.kind.name()
            );
            if since.send != since.kind {
                words.push_str(&format!(", sent as {}", since.send.name()));
            }
            if let Some(start) = &since.start {
                words.push_str(&format!(
                    "; first round from {}",
                    value(&source.value(start))
                ));
            }
            if let Some(lookback) = &since.lookback {
                let back = match lookback {
                    crate::ast::Lookback::Duration(d) => format_duration(*d),
                    crate::ast::Lookback::Count(n) => n.to_string(),
                };
                words.push_str(&format!("; each round looks back {back}"));
            }
            words
        }),
        when: poll.when.as_ref().map(written),
        dedupe: poll.dedupe.as_ref().map(|d| dedupe(d, source)),
    }
}

fn schedule(
    id: String,
    schedule: &Schedule,
    written: &dyn Fn(&crate::ast::Expr) -> String,
) -> TriggerDoc {
    let in_words = crate::plan::cron(&schedule.cron)
        .map_or_else(|_| schedule.cron.clone(), |cron| cron.pattern.describe());
    let timezone = schedule.timezone.name().to_string();
    TriggerDoc::Schedule {
        id,
        cron: schedule.cron.clone(),
        in_words,
        timezone: Effective::new(timezone, schedule.timezone == chrono_tz::UTC),
        overlap: Effective::new(
            overlap(schedule.overlap).into(),
            schedule.overlap == Overlap::default(),
        ),
        missed: Effective::new(
            missed(schedule.missed),
            schedule.missed == Missed::default(),
        ),
        event: schedule.event.as_ref().map(written),
    }
}

fn dedupe(dedupe: &Dedupe, source: Source<'_>) -> DedupeDoc {
    DedupeDoc {
        key: source.written(dedupe.key.span),
        retention: match dedupe.retention {
            Some(retention) => Effective::set(format_duration(retention)),
            None => Effective::default_of(format!(
                "{}, `integ serve --retention`",
                format_duration(crate::serve::RETENTION)
            )),
        },
    }
}

fn cursor(cursor: &Cursor, source: Source<'_>) -> String {
    match cursor {
        Cursor::Param { path, param } => format!(
            "{} sent as query parameter {}",
            code(&source.written(path.span)),
            code(param)
        ),
        Cursor::LinkHeader => "the `next` link of the `Link` header".into(),
        Cursor::NextLink(path) => format!(
            "the next page's URL at {}",
            code(&source.written(path.span))
        ),
        Cursor::Body { path, field } => format!(
            "{} sent as body field {}",
            code(&source.written(path.span)),
            code(field)
        ),
    }
}

pub fn preset_name(preset: &SignaturePreset) -> &'static str {
    match preset {
        SignaturePreset::HmacSha256 { .. } => "hmac_sha256",
        SignaturePreset::Stripe => "stripe",
        SignaturePreset::Github => "github",
        SignaturePreset::HubspotV3 => "hubspot_v3",
        SignaturePreset::Shopify => "shopify",
    }
}

/// What the scheme checks, as `webhook::signature` does it.
fn verifies(preset: &SignaturePreset) -> String {
    match preset {
        SignaturePreset::HmacSha256 {
            header,
            encoding,
            prefix,
        } => {
            let encoding = match encoding {
                SignatureEncoding::Hex => "hex",
                SignatureEncoding::Base64 => "base64",
            };
            let prefix = prefix
                .as_ref()
                .map(|p| format!(" after the prefix {}", code(p)))
                .unwrap_or_default();
            format!(
                "HMAC-SHA256 of the raw body, {encoding}, in header {}{prefix}",
                code(header)
            )
        }
        SignaturePreset::Stripe => {
            "Stripe: `Stripe-Signature`, HMAC-SHA256 of the signed timestamp and the body".into()
        }
        SignaturePreset::Github => {
            "GitHub: `X-Hub-Signature-256`, HMAC-SHA256 of the body (`sha256=` hex)".into()
        }
        SignaturePreset::HubspotV3 => "HubSpot v3: `X-HubSpot-Signature-v3`, HMAC-SHA256 of the \
            method, the full URL HubSpot called, the body and `X-HubSpot-Request-Timestamp`. \
            The URL is signed: a proxy must keep its scheme, host and path, and `integ serve` \
            must be told it with `--public-url`"
            .into(),
        SignaturePreset::Shopify => {
            "Shopify: `X-Shopify-Hmac-Sha256`, HMAC-SHA256 of the body (base64)".into()
        }
    }
}

/// Whether the scheme signs a timestamp, so that a tolerance applies.
pub fn signs_time(preset: &SignaturePreset) -> bool {
    matches!(preset, SignaturePreset::Stripe | SignaturePreset::HubspotV3)
}

fn overlap(overlap: Overlap) -> &'static str {
    match overlap {
        Overlap::Skip => {
            "skip: an occurrence while the previous run is pending or running is \
            skipped and recorded in the run history"
        }
        Overlap::Queue => {
            "queue: an occurrence waits for the previous run to end (one waits \
            at most; another is skipped)"
        }
        Overlap::Allow => "allow: an occurrence starts its run beside the one in progress",
    }
}

fn missed(missed: Missed) -> String {
    match missed {
        Missed::Skip => "skip: occurrences missed while no process served the schedule are \
            not made up"
            .into(),
        Missed::Latest => "latest: the latest missed occurrence runs once".into(),
        Missed::All { within, max } => format!(
            "all: each missed occurrence within {} of now runs, the newest {max} at most",
            format_duration(within)
        ),
    }
}

pub fn markdown(triggers: &[TriggerDoc]) -> String {
    let mut out = heading(2, "triggers", "3. Triggers and endpoints");
    if triggers.is_empty() {
        out.push_str("No trigger: the spec runs only with `integ run`.\n\n");
    }
    for (index, trigger) in triggers.iter().enumerate() {
        out.push_str(&trigger_markdown(index + 1, trigger));
    }
    out
}

fn trigger_markdown(number: usize, trigger: &TriggerDoc) -> String {
    match trigger {
        TriggerDoc::Webhook {
            id,
            method,
            path,
            url,
            signature,
            each,
            when,
            dedupe,
        } => {
            let mut out = heading(
                3,
                id,
                &format!("3.{number} Webhook {method} {}", code(path)),
            );
            let mut rows = vec![row(
                "URL to give the sender",
                format!("{method} {}", code(url)),
            )];
            match signature {
                Some(signature) => {
                    rows.push(row(
                        "Signature",
                        format!("{}: {}", code(signature.scheme), signature.verifies),
                    ));
                    rows.push(row("Signing secret", value(&signature.secret)));
                    if let Some(tolerance) = &signature.tolerance {
                        rows.push(row(
                            "Timestamp tolerance",
                            effective(tolerance.value.clone(), tolerance.default),
                        ));
                    }
                }
                None => rows.push(row("Signature", "none: any caller can post events".into())),
            }
            if let Some(each) = each {
                rows.push(row(
                    "Events per request",
                    format!("one per element of {}", code(each)),
                ));
            }
            filters(&mut rows, when.as_deref(), dedupe.as_ref());
            out.push_str(&table(&["Setting", "Value"], &rows));
            out.push_str(ANSWERS);
            out
        }
        TriggerDoc::Poll {
            id,
            connection,
            method,
            path,
            every,
            items,
            cursor,
            since,
            when,
            dedupe,
        } => {
            let title = format!("3.{number} Poll {connection} {method} {}", code(path));
            let mut out = heading(3, id, &title);
            let mut rows = vec![
                row(
                    "Request",
                    format!(
                        "{method} {} on connection [{connection}](#conn-{connection})",
                        code(path)
                    ),
                ),
                row("Interval", format!("every {every}")),
                row(
                    "Events",
                    items
                        .as_ref()
                        .map_or("the whole answer, one event".into(), |i| {
                            format!("one per element of {}", code(i))
                        }),
                ),
            ];
            if let Some(cursor) = cursor {
                rows.push(row("Cursor", cursor.clone()));
            }
            if let Some(since) = since {
                rows.push(row("Incremental", since.clone()));
            }
            filters(&mut rows, when.as_deref(), dedupe.as_ref());
            out.push_str(&table(&["Setting", "Value"], &rows));
            out.push_str(
                "Each round's pages and position are committed with their events, so a \
                restarted process resumes where the last committed page ended; a failed round \
                commits nothing and is tried again next round (`integ triggers` shows it).\n\n",
            );
            out
        }
        TriggerDoc::Schedule {
            id,
            cron,
            in_words,
            timezone,
            overlap,
            missed,
            event,
        } => {
            let mut out = heading(3, id, &format!("3.{number} Schedule {}", code(cron)));
            let mut rows = vec![
                row("When", format!("{} ({})", in_words, code(cron))),
                row(
                    "Time zone",
                    effective(code(&timezone.value), timezone.default),
                ),
                row(
                    "While the previous run is going",
                    effective(overlap.value.clone(), overlap.default),
                ),
                row(
                    "Missed runs",
                    effective(missed.value.clone(), missed.default),
                ),
            ];
            if let Some(event) = event {
                rows.push(row("Event", code(event)));
            }
            out.push_str(&table(&["Setting", "Value"], &rows));
            out
        }
        TriggerDoc::Manual { id } => {
            let mut out = heading(3, id, &format!("3.{number} Manual"));
            out.push_str(
                "Run once by hand: `integ run SPEC --input EVENT.json` (add `--dry-run` to \
                see the requests without sending them).\n\n",
            );
            out
        }
    }
}

fn filters(rows: &mut Vec<Vec<String>>, when: Option<&str>, dedupe: Option<&DedupeDoc>) {
    if let Some(when) = when {
        rows.push(row("Only events where", code(when)));
    }
    match dedupe {
        Some(dedupe) => {
            rows.push(row("Dedupe key", code(&dedupe.key)));
            rows.push(row(
                "Keys kept for",
                effective(dedupe.retention.value.clone(), dedupe.retention.default),
            ));
        }
        None => rows.push(row("Dedupe", "none: a redelivered event runs again".into())),
    }
}

fn row(setting: &str, value: String) -> Vec<String> {
    vec![setting.to_string(), value]
}

const ANSWERS: &str = "Answers: `202` once the events are committed to the inbox (never \
before); `400` a body that is not JSON; `401` a missing, wrong or stale signature; `405` \
another method; `413` a body over 1 MiB; `500` when `each` or `when` fails on the body \
(nothing is enqueued, so the sender retries); `503` while the backlog is past \
`--max-pending` (with `Retry-After`) or during shutdown. No `4xx` answer enqueues anything.\n\n";
