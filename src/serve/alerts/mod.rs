//! Alerts: every declared `alert` is evaluated over its sliding window of the run history
//! every `--alert-every`, and notified once when its condition starts to hold (firing) and
//! once when it stops (resolved). Each alert's state and the last state notified live in
//! the store, so a restart neither loses a firing alert nor sends it again; a notification
//! owed is sent through a bounded queue, off the path of every event, with bounded retries.

mod deliver;
mod email;
mod message;

pub use email::{SMTP_URL, Smtp};
pub use message::Notification;

use super::Service;
use crate::engine::Engine;
use crate::model::{AlertChannel, AlertStatus};
use crate::plan::{AlertPlan, Scope};
use crate::store::{AlertChange, AlertKey, AlertState, Store, now};
use crate::telemetry;
use deliver::Target;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;

/// Notifications waiting for a sender. Each alert has at most one queued or in flight, so
/// the queue fills only with more alerts than this; one left out waits for the next
/// evaluation, as it is still owed.
const QUEUE: usize = 64;

/// How many times recording a delivery is tried before it is left to the next start
/// (which then sends it once more).
const RECORD_ATTEMPTS: u32 = 5;

/// What `integ serve` was told about alerts.
#[derive(Debug, Default)]
pub struct AlertOptions {
    /// How often every alert is evaluated.
    pub every: Duration,
    /// The admin listener's URL, for the run-history link.
    pub admin_url: Option<String>,
    /// The server e-mail alerts go through.
    pub smtp: Option<Smtp>,
}

/// One alert and where it goes.
#[derive(Debug)]
struct Watched {
    engine: Arc<Engine>,
    plan: AlertPlan,
    target: Target,
}

/// The alerts of every integration served, ready to evaluate.
#[derive(Debug)]
pub struct Alerts {
    watched: Vec<Watched>,
    options: AlertOptions,
    client: reqwest::Client,
}

impl Alerts {
    /// Reads every alert's target; `None` when no integration declares one. A target that
    /// cannot be read stops `integ serve` from starting: an alert that would never be sent
    /// must not look set up.
    pub fn new(engines: &[Arc<Engine>], options: AlertOptions) -> Result<Option<Self>, String> {
        let mut watched = Vec::new();
        for engine in engines {
            for plan in &engine.plan().alerts {
                let target = target(engine, plan)?;
                telemetry::alert_series(&engine.plan().name, &plan.key);
                watched.push(Watched {
                    engine: engine.clone(),
                    plan: plan.clone(),
                    target,
                });
            }
        }
        if watched.is_empty() {
            return Ok(None);
        }
        Ok(Some(Self {
            watched,
            options,
            client: deliver::client()?,
        }))
    }

    /// The longest window of any alert.
    pub fn longest_window(&self) -> Duration {
        self.watched
            .iter()
            .map(|w| w.plan.alert.window)
            .max()
            .unwrap_or_default()
    }
}

/// Where `plan` sends, read from its secret or variable. The URL joins the redaction set:
/// whoever has it can post to the channel.
fn target(engine: &Engine, plan: &AlertPlan) -> Result<Target, String> {
    let secrets = engine.secrets();
    let what = format!(
        "alert `{}` of `{}`",
        plan.alert.condition(),
        engine.plan().name
    );
    let value = plan
        .target
        .eval(&engine.plan().templates, &Scope::fixed(secrets))
        .map_err(|e| format!("{what}: {}", secrets.redact(&e.to_string())))?;
    let Some(serde_json::Value::String(text)) = value else {
        return Err(format!("{what}: the target is not text"));
    };
    let url = || {
        secrets.also_redact(&text);
        reqwest::Url::parse(&text)
            .ok()
            .filter(|url| matches!(url.scheme(), "http" | "https"))
            .ok_or_else(|| format!("{what}: the target is not an http(s) URL"))
    };
    Ok(match plan.alert.channel {
        AlertChannel::Slack => Target::Slack(url()?),
        AlertChannel::Webhook => Target::Webhook(url()?),
        AlertChannel::Email => Target::Email(
            text.parse()
                .map_err(|_| format!("{what}: the target is not an e-mail address"))?,
        ),
    })
}

/// A notification owed: alert `index` moved to `status` at count `value`, at `since`.
#[derive(Debug, Clone, Copy)]
struct Job {
    index: usize,
    status: AlertStatus,
    value: u64,
    since: i64,
}

/// Evaluates every alert each `--alert-every` and sends what is owed, until shutdown.
pub async fn alert(service: Arc<Service>, alerts: Arc<Alerts>) {
    let (queue, mut jobs) = mpsc::channel::<Job>(QUEUE);
    let in_flight: Arc<Mutex<HashSet<usize>>> = Arc::default();
    let sender = {
        let (alerts, store, in_flight) = (alerts.clone(), service.store.clone(), in_flight.clone());
        tokio::spawn(async move {
            while let Some(job) = jobs.recv().await {
                let sent = send(alerts.clone(), store.clone(), job);
                let in_flight = in_flight.clone();
                tokio::spawn(async move {
                    sent.await;
                    if let Ok(mut in_flight) = in_flight.lock() {
                        in_flight.remove(&job.index);
                    }
                });
            }
        })
    };
    while !service.stopping() {
        let (watched, store) = (alerts.clone(), service.store.clone());
        let due = tokio::task::spawn_blocking(move || evaluate(&watched, store.as_ref()))
            .await
            .unwrap_or_default();
        for job in due {
            let Ok(mut in_flight) = in_flight.lock() else {
                break;
            };
            if in_flight.insert(job.index) && queue.try_send(job).is_err() {
                in_flight.remove(&job.index);
                tracing::warn!(
                    "the alerts' queue is full; the notification is sent after the next evaluation"
                );
            }
        }
        tokio::time::sleep(alerts.options.every).await;
    }
    sender.abort();
}

/// One evaluation of every alert: moves each whose condition changed, and answers the
/// notifications owed. Blocking (the store's records).
fn evaluate(alerts: &Alerts, store: &dyn Store) -> Vec<Job> {
    let kept = match store.alerts() {
        Ok(kept) => kept,
        Err(error) => {
            tracing::error!(%error, "cannot read the alerts' state; alerts are evaluated again shortly");
            return Vec::new();
        }
    };
    let now = now();
    let mut due = Vec::new();
    for (index, watched) in alerts.watched.iter().enumerate() {
        let integration = watched.engine.plan().name.as_str();
        let (alert, key) = (&watched.plan.alert, watched.plan.key.as_str());
        let window = i64::try_from(alert.window.as_secs()).unwrap_or(i64::MAX);
        let value = match store.alert_counts(integration, now.saturating_sub(window)) {
            Ok(counts) => counts.of(alert.metric),
            Err(error) => {
                tracing::error!(integration, alert = key, %error, "cannot count the alert's metric");
                continue;
            }
        };
        let status = if alert.holds(value) {
            AlertStatus::Firing
        } else {
            AlertStatus::Ok
        };
        let kept = kept
            .iter()
            .find(|s| s.integration == integration && s.alert == key);
        let mut state = kept.cloned().unwrap_or_else(|| AlertState {
            integration: integration.to_string(),
            alert: key.to_string(),
            status: AlertStatus::Ok,
            value: 0,
            changed_at: now,
            notified: AlertStatus::Ok,
            notified_at: None,
            error: None,
        });
        if status != state.status {
            let (alert, change) = (
                AlertKey {
                    integration,
                    alert: key,
                },
                AlertChange::Status { status, value },
            );
            if let Err(error) = store.save_alert(alert, change) {
                tracing::error!(integration, alert = key, %error, "cannot record the alert's state; evaluated again shortly");
                continue;
            }
            match status {
                AlertStatus::Firing => {
                    tracing::warn!(integration, alert = key, value, "alert firing")
                }
                AlertStatus::Ok => {
                    tracing::info!(integration, alert = key, value, "alert resolved")
                }
            }
            (state.status, state.value, state.changed_at) = (status, value, now);
        }
        telemetry::alert_firing(integration, key, status == AlertStatus::Firing);
        if let Some(status) = state.owed() {
            due.push(Job {
                index,
                status,
                value: state.value,
                since: state.changed_at,
            });
        }
    }
    due
}

/// Sends one notification and records it as notified, sent or given up on, so that
/// neither the next evaluation nor a restart sends it again.
async fn send(alerts: Arc<Alerts>, store: Arc<dyn Store>, job: Job) {
    let Some(watched) = alerts.watched.get(job.index) else {
        return;
    };
    let integration = watched.engine.plan().name.clone();
    let key = watched.plan.key.clone();
    let notification = Notification::new(
        &integration,
        &key,
        &watched.plan.alert,
        job.status,
        job.value,
        job.since,
        alerts.options.admin_url.as_deref(),
    );
    let sent = deliver::deliver(
        &alerts.client,
        &watched.target,
        &notification,
        watched.engine.secrets(),
        alerts.options.smtp.as_ref(),
    )
    .await;
    let error = match sent {
        Ok(()) => {
            tracing::info!(
                integration,
                alert = key,
                state = notification.state,
                "alert sent"
            );
            None
        }
        Err(error) => {
            tracing::error!(
                integration,
                alert = key,
                state = notification.state,
                error,
                "cannot send the alert; given up until its state changes"
            );
            Some(error)
        }
    };
    for attempt in 1..=RECORD_ATTEMPTS {
        let (store, integration, key, error) = (
            store.clone(),
            integration.clone(),
            key.clone(),
            error.clone(),
        );
        let recorded = tokio::task::spawn_blocking(move || {
            let alert = AlertKey {
                integration: &integration,
                alert: &key,
            };
            let change = AlertChange::Notified {
                status: job.status,
                error: error.as_deref(),
            };
            store.save_alert(alert, change)
        })
        .await;
        match recorded {
            Ok(Ok(())) => return,
            Ok(Err(error)) if attempt < RECORD_ATTEMPTS => {
                tracing::warn!(%error, "cannot record the alert as sent; trying again");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            _ => break,
        }
    }
    tracing::error!(
        integration,
        alert = key,
        "cannot record the alert as sent; it is sent again after a restart"
    );
}
