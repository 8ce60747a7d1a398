//! Schedules: one inbox event per cron occurrence, by the schedule's overlap and missed-run
//! policies (`occurrences`), each tick committed with the occurrence it handled.

use super::Service;
use super::health::schedule_name;
use super::occurrences::{self, Held, Tick};
use crate::engine::Engine;
use crate::plan::SchedulePlan;
use crate::store::{RunRecord, ScheduleMark, ScheduleState, StoreError};
use serde_json::Value as Json;
use std::sync::Arc;
use std::time::Duration;

/// How often a schedule with occurrences waiting looks whether its run in progress ended.
const WAITING_POLL: Duration = Duration::from_secs(1);

/// Fires every schedule of every integration until the service shuts down: each
/// occurrence enqueues one event, `{"scheduled_at": "..."}` merged into the declared
/// `event`. The last occurrence handled is kept in the store, in the write that enqueues
/// its run or records its skip, so a restart makes up what its `missed` policy asks, and a
/// crash neither loses nor doubles an occurrence. An occurrence enqueues under a dedupe key
/// of its time too, so that two processes on one store fire it once.
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
    let schedule = Schedule {
        plan,
        trigger: &trigger,
        name: format!("{} {}", plan.text, plan.timezone.name()),
        started: crate::store::now(),
    };
    while !service.stopping() {
        let wake = match schedule.pass(&service, &engine).await {
            Ok(Some(wake)) => wake,
            Ok(None) => {
                let error = format!("no next occurrence of `{}`", plan.text);
                service.trigger_failed(&engine, &trigger, &error);
                return;
            }
            Err(error) => {
                // Tried again shortly: the occurrence stays unhandled until it commits.
                service.trigger_failed(&engine, &trigger, &error);
                tokio::time::Instant::now() + WAITING_POLL
            }
        };
        // Sleep in short stretches, so that a shutdown is noticed.
        while !service.stopping() && tokio::time::Instant::now() < wake {
            let left = wake - tokio::time::Instant::now();
            tokio::time::sleep(left.min(Duration::from_secs(1))).await;
        }
    }
}

/// One schedule trigger of an integration, served by this process since `started`.
struct Schedule<'a> {
    plan: &'a SchedulePlan,
    trigger: &'a str,
    /// The schedule as declared, kept with its mark.
    name: String,
    started: i64,
}

impl Schedule<'_> {
    /// Reads what the store holds, commits what the tick at now does, and answers when to
    /// look again (`None`: the cron never fires again).
    async fn pass(
        &self,
        service: &Service,
        engine: &Engine,
    ) -> Result<Option<tokio::time::Instant>, String> {
        let held = self.held(service, engine).await?;
        let now = crate::store::now();
        let (last, waiting) = match occurrences::tick(self.plan, &held, self.started, now) {
            Some(tick) => {
                let left = (tick.last, !tick.waiting.is_empty());
                self.commit(service, engine, tick).await?;
                left
            }
            None => (held.last, !held.waiting.is_empty()),
        };
        let poll = tokio::time::Instant::now() + WAITING_POLL;
        if waiting {
            return Ok(Some(poll));
        }
        let Some(next) = occurrences::next_after(self.plan, last.max(now)) else {
            return Ok(None);
        };
        let until = chrono::DateTime::from_timestamp(next, 0).unwrap_or_default();
        let left = (until - chrono::Utc::now()).to_std().unwrap_or_default();
        Ok(Some(tokio::time::Instant::now() + left))
    }

    /// What the store holds of this schedule. A mark another schedule left at this place
    /// (the spec changed) is not this one's: nothing before this start was missed then.
    async fn held(&self, service: &Service, engine: &Engine) -> Result<Held, String> {
        let store = service.store.clone();
        let (integration, trigger) = (engine.plan().name.clone(), self.trigger.to_string());
        let state =
            tokio::task::spawn_blocking(move || store.schedule_state(&integration, &trigger))
                .await
                .map_err(|e| format!("cannot read the schedule's state: {e}"))?
                .map_err(|e| format!("cannot read the schedule's state: {e}"))?;
        Ok(match state {
            Some(ScheduleState {
                schedule,
                occurrence,
                waiting,
                busy,
            }) if schedule == self.name => Held {
                last: occurrence,
                waiting,
                busy,
            },
            other => Held {
                last: self.started,
                waiting: Vec::new(),
                busy: other.and_then(|state| state.busy),
            },
        })
    }

    /// Enqueues the runs of `tick` and records its skips, with the occurrence handled, in
    /// one write.
    async fn commit(&self, service: &Service, engine: &Engine, tick: Tick) -> Result<(), String> {
        let integration = &engine.plan().name;
        let mut skipped: Vec<RunRecord> = tick
            .skipped
            .iter()
            .map(|reason| self.skip(integration, reason))
            .collect();
        let mut events = Vec::new();
        let mut unrun = None;
        for at in &tick.fire {
            match self.event(engine, *at) {
                Ok(event) => events.push(event),
                Err(error) => {
                    let reason = format!(
                        "the occurrence at {} did not run: {error}",
                        occurrences::show(self.plan, *at)
                    );
                    skipped.push(self.skip(integration, &engine.secrets().redact(&reason)));
                    unrun = Some(error);
                }
            }
        }
        for record in &skipped {
            tracing::info!(%integration, trigger = self.trigger, reason = record.reason.as_deref().unwrap_or(""), "schedule occurrence skipped");
        }
        let mark = ScheduleMark {
            trigger: self.trigger.to_string(),
            schedule: self.name.clone(),
            occurrence: tick.last,
            waiting: tick.waiting,
            skipped,
        };
        let enqueued = service
            .accept_tick(integration, events, mark)
            .await
            .map_err(|e: StoreError| format!("cannot enqueue the occurrence: {e}"))?;
        if let Some(metrics) = engine.metrics().trigger(self.trigger) {
            metrics.took(enqueued.accepted(), 0, enqueued.duplicates());
        }
        match unrun {
            Some(error) => service.trigger_failed(engine, self.trigger, &error),
            None => service.trigger_succeeded(engine, self.trigger),
        }
        Ok(())
    }

    /// The record of an occurrence that did not run.
    fn skip(&self, integration: &str, reason: &str) -> RunRecord {
        let reason = format!("schedule `{}`: {reason}", self.name);
        RunRecord::skipped(integration, reason)
    }

    /// The event of the occurrence at `at`, with its dedupe key. An `event` that cannot be
    /// computed (a secret or environment variable not set) is an error: an event without
    /// its declared fields would run steps on data the spec did not mean.
    fn event(&self, engine: &Engine, at: i64) -> Result<(Json, Option<String>), String> {
        let scope = crate::plan::Scope::fixed(engine.secrets());
        let declared = match &self.plan.event {
            Some(event) => event
                .eval(&engine.plan().templates, &scope)
                .map_err(|e| format!("the occurrence's `event` failed: {e}"))?,
            None => None,
        };
        let mut event = match declared {
            Some(Json::Object(fields)) => fields,
            _ => serde_json::Map::new(),
        };
        let scheduled_at = occurrences::show(self.plan, at);
        event.insert("scheduled_at".into(), Json::String(scheduled_at));
        let key = format!("schedule {} {at}", self.plan.text);
        Ok((Json::Object(event), Some(key)))
    }
}
