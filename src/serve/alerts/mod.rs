//! Alerts: every declared `alert` is evaluated over its sliding window of the run history
//! every `--alert-every`, and notified once when its condition starts to hold (firing) and
//! once when it stops (resolved). Each alert's state and the last state notified live in
//! the store, so a restart neither loses a firing alert nor sends it again; a notification
//! owed is sent through a bounded queue, off the path of every event, with bounded retries.

mod deliver;
mod email;
mod message;
mod undeclared;

pub use email::{SMTP_URL, Smtp};
pub use message::Notification;
pub use undeclared::forget_undeclared;

use super::Service;
use crate::engine::Engine;
use crate::model::{AlertChannel, AlertStatus};
use crate::plan::{AlertPlan, Scope};
use crate::store::{AlertChange, AlertKey, AlertState, Store, now};
use crate::telemetry;
use deliver::Target;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinSet;

/// How many times recording a delivery is tried before it is left to the next start
/// (which then sends it once more).
const RECORD_ATTEMPTS: u32 = 5;

/// How long the messages being sent at shutdown may go on: one answer's wait, or most of it.
const GRACE: Duration = Duration::from_secs(5);
/// How long a message the channel took may then take to be recorded: every attempt.
const RECORDING: Duration = Duration::from_secs(RECORD_ATTEMPTS as u64 + 1);

/// What `integ serve` was told about alerts.
#[derive(Debug, Default)]
pub struct AlertOptions {
    /// How often every alert is evaluated.
    pub every: Duration,
    /// The admin listener's URL, for the run-history link.
    pub admin_url: Option<String>,
    /// Where the pages `integ doc` writes are published, for the runbook link; without
    /// it the link is the path in the repository (`docs/integrations/NAME.md#rb-...`).
    pub docs_url: Option<String>,
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
        telemetry::alert_evaluated(0);
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
    // A target is redacted wherever it could show (a URL holds its token; an SMTP server's
    // refusal quotes the address), whether written in the spec or a secret.
    secrets.also_redact(&text);
    let url = || {
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

/// Evaluates every alert each `--alert-every` and sends what is owed, until shutdown; then
/// gives the messages under way `GRACE` to end and be recorded.
pub async fn alert(service: Arc<Service>, alerts: Arc<Alerts>) {
    let (cut, cut_heard) = watch::channel(false);
    let mut deliveries = Deliveries::default();
    loop {
        // Enabled before the flag is read: a shutdown between the two still wakes the wait.
        let stop = service.work.notified();
        tokio::pin!(stop);
        stop.as_mut().enable();
        if service.stopping() {
            break;
        }
        deliveries.reap();
        let (watched, store) = (alerts.clone(), service.store.clone());
        let due = tokio::task::spawn_blocking(move || evaluate(&watched, store.as_ref()))
            .await
            .unwrap_or_default();
        for job in due {
            let sent = send(
                alerts.clone(),
                service.store.clone(),
                job,
                cut_heard.clone(),
            );
            deliveries.start(job.index, sent);
        }
        tokio::select! {
            () = tokio::time::sleep(alerts.options.every) => {}
            () = &mut stop => {}
        }
    }
    deliveries.end(&cut).await;
}

/// The messages being sent: at most one per alert, so as many as the alerts declared.
#[derive(Default)]
struct Deliveries {
    tasks: JoinSet<()>,
    /// The alert each task sends, by task.
    alerts: HashMap<tokio::task::Id, usize>,
}

impl Deliveries {
    /// Sends alert `index`'s message, unless one of its messages is still being sent (the
    /// next evaluation owes the newer state once that one is recorded).
    fn start(&mut self, index: usize, sent: impl Future<Output = ()> + Send + 'static) {
        if !self.alerts.values().any(|i| *i == index) {
            let task = self.tasks.spawn(sent);
            self.alerts.insert(task.id(), index);
        }
    }

    /// Forgets the deliveries that ended.
    fn reap(&mut self) {
        while let Some(ended) = self.tasks.try_join_next_with_id() {
            self.ended(ended);
        }
    }

    fn ended(&mut self, ended: Result<(tokio::task::Id, ()), tokio::task::JoinError>) {
        let id = match ended {
            Ok((id, ())) => id,
            Err(error) => {
                tracing::error!(%error, "an alert's delivery stopped; its message is owed still");
                error.id()
            }
        };
        self.alerts.remove(&id);
    }

    async fn all_ended(&mut self) {
        while let Some(ended) = self.tasks.join_next_with_id().await {
            self.ended(ended);
        }
    }

    /// At shutdown: deliveries under way get `GRACE` to end; then those still waiting for
    /// an answer are cut (they record nothing, so the next start sends them again), and
    /// those recording an answer get `RECORDING` to finish: a message a channel took is
    /// never sent again.
    async fn end(mut self, cut: &watch::Sender<bool>) {
        if tokio::time::timeout(GRACE, self.all_ended()).await.is_ok() {
            return;
        }
        let _ = cut.send(true);
        if tokio::time::timeout(RECORDING, self.all_ended())
            .await
            .is_err()
        {
            tracing::error!(
                left = self.tasks.len(),
                "alert messages were still being recorded at shutdown; they may be sent again at the next start"
            );
        }
    }
}

/// Ends when the shutdown cuts the messages still waiting for an answer.
async fn cut_at_shutdown(cut: &mut watch::Receiver<bool>) {
    if cut.wait_for(|cut| *cut).await.is_err() {
        // The sender is gone only with the deliveries themselves: nothing to cut.
        std::future::pending::<()>().await;
    }
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
    telemetry::alert_evaluated(1);
    due
}

/// Sends one notification and records it as notified, sent or given up on, so that
/// neither the next evaluation nor a restart sends it again.
async fn send(
    alerts: Arc<Alerts>,
    store: Arc<dyn Store>,
    job: Job,
    mut cut: watch::Receiver<bool>,
) {
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
        &alerts.options,
    );
    let delivered = deliver::deliver(
        &alerts.client,
        &watched.target,
        &notification,
        watched.engine.secrets(),
        alerts.options.smtp.as_ref(),
    );
    // Only the wait for an answer may be cut: once one came, it is recorded.
    let sent = tokio::select! {
        sent = delivered => sent,
        () = cut_at_shutdown(&mut cut) => {
            tracing::warn!(
                integration,
                alert = key,
                state = notification.state,
                "the alert's message was cut by the shutdown before an answer; it is sent again at the next start"
            );
            return;
        }
    };
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
