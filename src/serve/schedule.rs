//! Schedules: one inbox event per cron occurrence.

use super::Service;
use super::health::schedule_name;
use crate::engine::Engine;
use crate::plan::SchedulePlan;
use serde_json::Value as Json;
use std::sync::Arc;
use std::time::Duration;

/// Fires every schedule of every integration until the service shuts down: each
/// occurrence enqueues one event, `{"scheduled_at": "..."}` merged into the declared
/// `event`. Occurrences missed while no process ran are not made up: after a start, the
/// next one fires. An occurrence enqueues under a dedupe key of its time, so two processes
/// (or a restart within the same second) fire it once.
pub async fn schedule(service: Arc<Service>) {
    let mut tasks = Vec::new();
    for engine in &service.engines {
        for index in 0..engine.plan().schedules.len() {
            tasks.push(tokio::spawn(fire(service.clone(), engine.clone(), index)));
        }
    }
    for task in tasks {
        let _ = task.await;
    }
}

async fn fire(service: Arc<Service>, engine: Arc<Engine>, index: usize) {
    let Some(plan) = engine.plan().schedules.get(index) else {
        return;
    };
    let trigger = schedule_name(index);
    while !service.stopping() {
        let now = chrono::Utc::now().with_timezone(&plan.timezone);
        let next = match plan.cron.find_next_occurrence(&now, false) {
            Ok(next) => next,
            Err(error) => {
                let error = format!("no next occurrence of `{}`: {error}", plan.text);
                service.trigger_failed(&engine, &trigger, &error);
                return;
            }
        };
        // Sleep in short stretches, so that a shutdown is noticed.
        loop {
            let left = (next - chrono::Utc::now().with_timezone(&plan.timezone))
                .to_std()
                .unwrap_or_default();
            if left.is_zero() || service.stopping() {
                break;
            }
            tokio::time::sleep(left.min(Duration::from_secs(1))).await;
        }
        if service.stopping() {
            return;
        }
        match occurrence(&service, &engine, plan, next).await {
            Ok(()) => service.trigger_succeeded(&engine, &trigger),
            Err(error) => service.trigger_failed(&engine, &trigger, &error),
        }
    }
}

/// Enqueues the event of the occurrence at `at`. An `event` that cannot be computed (a
/// secret or environment variable not set) enqueues nothing: an event without its declared
/// fields would run steps on data the spec did not mean.
async fn occurrence(
    service: &Service,
    engine: &Engine,
    plan: &SchedulePlan,
    at: chrono::DateTime<chrono_tz::Tz>,
) -> Result<(), String> {
    let scope = crate::plan::Scope::fixed(engine.secrets());
    let declared = match &plan.event {
        Some(event) => event
            .eval(&engine.plan().templates, &scope)
            .map_err(|e| format!("the occurrence's `event` failed: {e}"))?,
        None => None,
    };
    let mut event = match declared {
        Some(Json::Object(fields)) => fields,
        _ => serde_json::Map::new(),
    };
    event.insert("scheduled_at".into(), Json::String(at.to_rfc3339()));
    let key = format!("schedule {} {}", plan.text, at.timestamp());
    let events = vec![(Json::Object(event), Some(key))];
    service
        .accept(&engine.plan().name, events, None)
        .await
        .map_err(|e| format!("cannot enqueue the occurrence: {e}"))?;
    Ok(())
}
