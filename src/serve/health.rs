//! Each trigger's health (last success, last error, failures in a row, counts): logged and
//! counted in memory as triggers fire, written to the store about once a second by a task
//! of its own, so that no webhook waits for it. `integ triggers` reads it.

use super::Service;
use crate::engine::Engine;
use crate::plan::Plan;
use crate::store::{Store, TriggerHealth, now};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The health of every trigger served, and which changed since the last write.
#[derive(Debug, Default)]
pub(super) struct Health {
    triggers: Mutex<BTreeMap<(String, String), (TriggerHealth, bool)>>,
}

pub(super) use crate::plan::{poll_name, schedule_name, webhook_name};

fn trigger_names(plan: &Plan) -> impl Iterator<Item = String> + '_ {
    let webhooks = plan
        .webhooks
        .iter()
        .map(|w| webhook_name(w.method, &w.path));
    let polls = (0..plan.polls.len()).map(poll_name);
    let schedules = (0..plan.schedules.len()).map(schedule_name);
    webhooks.chain(polls).chain(schedules)
}

impl Health {
    /// What the store kept, and every trigger served, so that one that never fired is
    /// listed too. A store that cannot be read starts the counts afresh, and says so.
    pub(super) fn load(engines: &[Arc<Engine>], store: &dyn Store) -> Self {
        let kept = store.triggers().unwrap_or_else(|error| {
            tracing::warn!(%error, "cannot read the triggers' health; counting afresh");
            Vec::new()
        });
        let mut triggers: BTreeMap<_, _> = kept
            .into_iter()
            .map(|t| ((t.integration.clone(), t.trigger.clone()), (t, false)))
            .collect();
        for engine in engines {
            let integration = &engine.plan().name;
            for trigger in trigger_names(engine.plan()) {
                triggers
                    .entry((integration.clone(), trigger.clone()))
                    .or_insert_with(|| {
                        let fresh = TriggerHealth {
                            integration: integration.clone(),
                            trigger,
                            ..TriggerHealth::default()
                        };
                        (fresh, true)
                    });
            }
        }
        Self {
            triggers: Mutex::new(triggers),
        }
    }

    fn update(&self, integration: &str, trigger: &str, change: impl FnOnce(&mut TriggerHealth)) {
        let Ok(mut triggers) = self.triggers.lock() else {
            return;
        };
        let (health, dirty) = triggers
            .entry((integration.to_string(), trigger.to_string()))
            .or_insert_with(|| {
                let fresh = TriggerHealth {
                    integration: integration.to_string(),
                    trigger: trigger.to_string(),
                    ..TriggerHealth::default()
                };
                (fresh, true)
            });
        change(health);
        *dirty = true;
    }

    /// Every trigger's health as counted now, by integration and trigger.
    pub(super) fn snapshot(&self) -> Vec<TriggerHealth> {
        let Ok(triggers) = self.triggers.lock() else {
            return Vec::new();
        };
        triggers
            .values()
            .map(|(health, _)| health.clone())
            .collect()
    }

    /// The triggers that changed since the last call, marked clean.
    fn changed(&self) -> Vec<TriggerHealth> {
        let Ok(mut triggers) = self.triggers.lock() else {
            return Vec::new();
        };
        triggers
            .values_mut()
            .filter(|(_, dirty)| *dirty)
            .map(|(health, dirty)| {
                *dirty = false;
                health.clone()
            })
            .collect()
    }

    /// Marks these triggers changed again, after a write that failed.
    fn unsaved(&self, lost: Vec<TriggerHealth>) {
        let Ok(mut triggers) = self.triggers.lock() else {
            return;
        };
        for health in lost {
            let key = (health.integration.clone(), health.trigger.clone());
            if let Some((_, dirty)) = triggers.get_mut(&key) {
                *dirty = true;
            }
        }
    }
}

impl Service {
    /// A trigger did its work: events committed, a poll round done, an occurrence enqueued.
    pub(super) fn trigger_succeeded(&self, engine: &Engine, trigger: &str) {
        if let Some(metrics) = engine.metrics().trigger(trigger) {
            metrics.succeeded();
        }
        self.health.update(&engine.plan().name, trigger, |health| {
            health.last_success_at = Some(now());
            health.consecutive_failures = 0;
            health.successes = health.successes.saturating_add(1);
        });
    }

    /// A trigger failed (or did its work only in part): logged with its integration and
    /// trigger, and counted. The error is redacted here, whatever it holds.
    pub(super) fn trigger_failed(&self, engine: &Engine, trigger: &str, error: &str) {
        let error = engine.secrets().redact(error);
        let integration = &engine.plan().name;
        if let Some(metrics) = engine.metrics().trigger(trigger) {
            metrics.failed();
        }
        tracing::warn!(integration = %integration, trigger, error = %error, "trigger failed");
        self.health.update(integration, trigger, |health| {
            health.last_error_at = Some(now());
            health.last_error = Some(error);
            health.consecutive_failures = health.consecutive_failures.saturating_add(1);
            health.failures = health.failures.saturating_add(1);
        });
    }

    /// Writes the triggers that changed since the last write.
    pub(super) async fn save_health(&self) {
        let changed = self.health.changed();
        if changed.is_empty() {
            return;
        }
        let store = self.store.clone();
        let saved = tokio::task::spawn_blocking(move || {
            let result = store.save_triggers(&changed);
            (result, changed)
        })
        .await;
        match saved {
            Ok((Ok(()), _)) => {}
            Ok((Err(error), changed)) => {
                tracing::warn!(%error, "cannot save the triggers' health; trying again");
                self.health.unsaved(changed);
            }
            Err(error) => tracing::warn!(%error, "cannot save the triggers' health"),
        }
    }
}

/// How often the triggers' health is written.
const SAVE_EVERY: Duration = Duration::from_secs(1);

/// Writes the triggers' health as it changes, until the service shuts down, then once more.
pub async fn keep_health(service: Arc<Service>) {
    while !service.stopping() {
        service.save_health().await;
        tokio::time::sleep(SAVE_EVERY).await;
    }
    service.save_health().await;
}
