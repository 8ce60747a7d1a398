//! §6: what keeps each connection within its API's limits, and the ceiling in events per
//! minute that those limits put on each trigger.

use super::markdown::{code, heading, slug, table};
use crate::model::format_duration;
use crate::model::{CircuitBreaker, Connection, Integration, Step, Trigger};
use serde::Serialize;

/// A circuit breaker in words, with the values the engine applies (`model::defaults`).
pub fn breaker(breaker: &CircuitBreaker) -> String {
    let marked = |text: String, default: bool| super::markdown::effective(text, default);
    let mut opens = Vec::new();
    if let Some(n) = breaker.failures_in_force() {
        opens.push(marked(
            format!("after {} failed calls in a row", n.value),
            n.default,
        ));
    }
    if let Some(ratio) = &breaker.ratio {
        let min_calls = ratio.min_calls_in_force();
        opens.push(format!(
            "when {}% of the calls within {} fail, once {} calls were made",
            ratio.percent,
            format_duration(ratio.window),
            marked(min_calls.value.to_string(), min_calls.default)
        ));
    }
    let cooldown = breaker.cooldown_in_force();
    format!(
        "opens {}; stays open {} (calls fail at once, without reaching the API), then lets \
        one call through to probe",
        opens.join(" or "),
        marked(format_duration(cooldown.value), cooldown.default)
    )
}

/// One connection's share of the load: its limit, and what each event asks of it.
#[derive(Debug, Serialize)]
pub struct ConnectionLoad {
    pub connection: String,
    /// `count per duration [burst n]`.
    pub limit: Option<String>,
    /// Requests per minute the limit allows.
    pub per_minute: Option<f64>,
    /// Requests an event makes on it at least, and at most (`None`: one per item, unbounded).
    pub calls_min: u32,
    pub calls_max: Option<u32>,
    /// The steps that call it, in words (`contact`, `upsert` per item).
    pub calls: Vec<String>,
    /// Events per minute this limit allows: at least, and at most.
    pub events_min: Option<f64>,
    pub events_max: Option<f64>,
    /// Requests at once on it (`max_concurrency`), when declared.
    pub max_concurrency: Option<u32>,
    /// Its circuit breaker in words, when declared.
    pub circuit_breaker: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct Capacity {
    pub connections: Vec<ConnectionLoad>,
    /// The connection whose limit caps events first.
    pub bottleneck: Option<String>,
    /// Per trigger, the ceiling in words.
    pub triggers: Vec<String>,
    /// What the declared concurrency allows, in words: a bound that depends on how long
    /// answers and runs take, which a spec does not declare.
    pub concurrency: Option<String>,
}

pub fn build(model: &Integration) -> Capacity {
    let connections: Vec<ConnectionLoad> = model
        .connections
        .iter()
        .map(|c| load(c, &model.steps))
        .collect();
    let ceiling = Ceiling::of(&connections);
    let bottleneck = ceiling.as_ref().map(|c| c.by.clone());
    let triggers = model
        .triggers
        .iter()
        .enumerate()
        .map(|(i, t)| trigger_ceiling(i + 1, t, ceiling.as_ref()))
        .collect();
    Capacity {
        concurrency: concurrency(model, &connections),
        connections,
        bottleneck,
        triggers,
    }
}

/// The bound concurrency puts beside the rate limits: `n` at once make at most `n` ÷ the
/// time each takes per second. The spec declares no answer time, so it is said as a rule
/// with an example rather than a number.
fn concurrency(model: &Integration, connections: &[ConnectionLoad]) -> Option<String> {
    let mut bounds: Vec<String> = connections
        .iter()
        .filter_map(|c| {
            let n = c.max_concurrency?;
            Some(format!(
                "`{}` takes {n} requests at once, so at most {n} ÷ its answer time in seconds \
                requests/s ({} requests/min at 1 s per answer)",
                c.connection,
                u64::from(n) * 60
            ))
        })
        .collect();
    if let Some(n) = model.concurrency {
        bounds.push(format!(
            "the integration runs {n} events at once, so at most {n} ÷ a run's time in \
            seconds events/s ({} events/min at 1 s per run)",
            u64::from(n.get()) * 60
        ));
    }
    if bounds.is_empty() {
        return None;
    }
    Some(format!(
        "Concurrency bounds the ceiling too, by how long answers take (the spec declares no \
        latency): {}. The lower of this and the rate-limit ceiling holds.",
        bounds.join("; ")
    ))
}

fn load(connection: &Connection, steps: &[Step]) -> ConnectionLoad {
    let per_minute = connection
        .rate_limit
        .map(|limit| f64::from(limit.count.get()) * 60.0 / limit.per.as_secs_f64().max(0.001));
    let (mut calls_min, mut calls_max) = (0u32, Some(0u32));
    let mut calls = Vec::new();
    for step in steps.iter().filter(|s| s.connection == connection.name) {
        let pages = |s: &Step| {
            s.pagination.as_ref().map_or(1, |p| {
                p.max_pages.map_or(crate::engine::PAGE_LIMIT, |n| n.get())
            })
        };
        let per_page_of = step
            .per_page
            .as_ref()
            .and_then(|name| steps.iter().find(|s| &s.name == name));
        let (low, high, words) = if step.for_each.is_some() {
            (0, None, format!("`{}` once per item", step.name))
        } else if let Some(paged) = per_page_of {
            let n = pages(paged);
            (
                1,
                Some(n),
                format!(
                    "`{}` once per page of `{}` (up to {n})",
                    step.name, paged.name
                ),
            )
        } else if step.pagination.is_some() {
            let n = pages(step);
            (1, Some(n), format!("`{}` 1 to {n} pages", step.name))
        } else {
            (1, Some(1), format!("`{}`", step.name))
        };
        let low = if step.when.is_some() { 0 } else { low };
        let mut words = words;
        if step.when.is_some() {
            words.push_str(" when its condition holds");
        }
        if let Some(ttl) = step.cache {
            words.push_str(&format!(
                ", cached {} (a repeat within it makes no request)",
                format_duration(ttl)
            ));
        }
        calls_min = calls_min.saturating_add(low);
        calls_max = calls_max.zip(high).map(|(a, b)| a.saturating_add(b));
        calls.push(words);
    }
    let events = |calls: u32| per_minute.map(|rate| rate / f64::from(calls.max(1)));
    ConnectionLoad {
        connection: connection.name.clone(),
        limit: connection.rate_limit.map(|limit| {
            let burst = limit
                .burst
                .map(|b| format!(" burst {b}"))
                .unwrap_or_default();
            format!("{} per {}{burst}", limit.count, format_duration(limit.per))
        }),
        per_minute,
        calls_min,
        calls_max,
        calls,
        events_min: calls_max.and_then(events),
        events_max: if calls_min == 0 {
            None
        } else {
            events(calls_min)
        },
        max_concurrency: connection.max_concurrency.map(|n| n.get()),
        circuit_breaker: connection.circuit_breaker.as_ref().map(breaker),
    }
}

/// What the connections' limits allow together: an event needs every connection it calls,
/// so the range runs from the lowest of their lows to the lowest of their highs.
struct Ceiling {
    events_min: Option<f64>,
    events_max: Option<f64>,
    /// The connection with the lowest high (else the lowest low): the bottleneck.
    by: String,
    /// The connection with the lowest low, when another one.
    floor_by: Option<String>,
}

impl Ceiling {
    fn of(connections: &[ConnectionLoad]) -> Option<Ceiling> {
        let limited: Vec<&ConnectionLoad> = connections
            .iter()
            .filter(|c| c.per_minute.is_some())
            .collect();
        let lowest = |value: fn(&ConnectionLoad) -> Option<f64>| {
            limited
                .iter()
                .filter_map(|c| Some((*c, value(c)?)))
                .min_by(|a, b| a.1.total_cmp(&b.1))
        };
        let high = lowest(|c| c.events_max);
        let low = lowest(|c| c.events_min);
        let by = high.or(low)?.0.connection.clone();
        let floor_by = low
            .map(|l| l.0.connection.clone())
            .filter(|name| *name != by);
        // One connection without a floor (one call per item, unbounded) leaves none.
        let floorless = limited.iter().any(|c| c.events_min.is_none());
        Some(Ceiling {
            events_min: if floorless { None } else { low.map(|l| l.1) },
            events_max: high.map(|h| h.1),
            by,
            floor_by,
        })
    }
}

fn trigger_ceiling(number: usize, trigger: &Trigger, ceiling: Option<&Ceiling>) -> String {
    let at = format!("[Trigger {number}](#trigger-{number})");
    let Some(load) = ceiling else {
        return format!(
            "{at}: no declared rate limit caps it; `integ serve --workers`, concurrency \
            and the APIs' own answers do"
        );
    };
    let range = events_range(load.events_min, load.events_max);
    let set_by = match &load.floor_by {
        Some(floor) => format!("the limits of `{floor}` and `{}`", load.by),
        None => format!("`{}`'s limit", load.by),
    };
    match trigger {
        Trigger::Webhook(_) => format!(
            "{at}: {range} sustained, set by {set_by}; above it events wait in the inbox \
            (none is lost) and the backlog grows"
        ),
        Trigger::Poll(poll) => format!(
            "{at}: {range} sustained, set by {set_by}; each round (every {}) also makes \
            one request per page on `{}`",
            format_duration(poll.every),
            poll.connection
        ),
        Trigger::Schedule(_) => format!(
            "{at}: one event per occurrence; a run's requests are paced by {set_by} ({range})"
        ),
        Trigger::Manual => {
            format!("{at}: one event per `integ run`; its requests are paced by {set_by} ({range})")
        }
    }
}

/// `at most 10 events/min`, `2.78 to 5.56 events/min`.
fn events_range(events_min: Option<f64>, events_max: Option<f64>) -> String {
    match (events_min, events_max) {
        (Some(low), Some(high)) if (high - low).abs() < 0.005 => {
            format!("**{} events/min**", number(low))
        }
        (Some(low), Some(high)) => format!("**{} to {} events/min**", number(low), number(high)),
        (None, Some(high)) => format!("**at most {} events/min**", number(high)),
        (Some(low), None) => format!("**at least {} events/min**", number(low)),
        (None, None) => "**fewer events/min the more items each has**".into(),
    }
}

/// A rate with at most two decimals, without trailing zeros.
fn number(value: f64) -> String {
    let text = format!("{value:.2}");
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

pub fn markdown(capacity: &Capacity, model_concurrency: &str) -> String {
    let mut out = heading(2, "capacity", "6. Rate limits and capacity");
    out.push_str(
        "A connection's limits are shared by every step and trigger that uses it and are taken \
        before each attempt, retries included. A `429` pauses the whole connection for the wait \
        the API names (at most 1h); the limit the API announces in its headers tightens the \
        declared one.\n\n",
    );
    let rows: Vec<Vec<String>> = capacity
        .connections
        .iter()
        .map(|c| {
            let calls = match (c.calls_min, c.calls_max) {
                (low, Some(high)) if low == high => low.to_string(),
                (low, Some(high)) => format!("{low} to {high}"),
                (low, None) => format!("{low} or more"),
            };
            let mut events = events_range(c.events_min, c.events_max);
            if capacity.bottleneck.as_deref() == Some(c.connection.as_str()) {
                events.push_str(", the bottleneck");
            }
            vec![
                format!("[{}](#conn-{})", c.connection, slug(&c.connection)),
                c.limit.clone().map_or("none declared".into(), |l| code(&l)),
                c.per_minute.map_or("—".into(), number),
                format!(
                    "{calls}: {}",
                    if c.calls.is_empty() {
                        "none".into()
                    } else {
                        c.calls.join(", ")
                    }
                ),
                if c.per_minute.is_some() {
                    events
                } else {
                    "—".into()
                },
                c.max_concurrency
                    .map_or("unbounded *(default)*".into(), |n| n.to_string()),
                c.circuit_breaker.clone().unwrap_or_else(|| "none".into()),
            ]
        })
        .collect();
    out.push_str(&table(
        &[
            "Connection",
            "Limit",
            "Requests/min",
            "Calls per event",
            "Events/min it allows",
            "Requests at once",
            "Circuit breaker",
        ],
        &rows,
    ));
    out.push_str(&format!(
        "Events of this integration run at once: {model_concurrency}.\n\n"
    ));
    out.push_str("**Ceiling per trigger:**\n\n");
    for line in &capacity.triggers {
        out.push_str(&format!("- {line}\n"));
    }
    out.push('\n');
    if let Some(concurrency) = &capacity.concurrency {
        out.push_str(&format!("{concurrency}\n\n"));
    }
    out
}
