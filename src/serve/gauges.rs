//! The inbox's and the dead letters' gauges, read from the store every few seconds, off
//! the hot path: each integration's pending and running events, the oldest one's arrival,
//! its dead letters.

use super::Service;
use std::sync::Arc;
use std::time::Duration;

/// How often the gauges are read from the store.
const EVERY: Duration = Duration::from_secs(10);

/// Reads the gauges now, then every `EVERY`, until the task is dropped.
pub async fn keep_gauges(service: Arc<Service>) {
    let mut every = tokio::time::interval(EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        read_gauges(&service).await;
    }
}

async fn read_gauges(service: &Service) {
    let store = service.store.clone();
    let backlog = match tokio::task::spawn_blocking(move || store.backlog()).await {
        Ok(Ok(backlog)) => backlog,
        Ok(Err(error)) => {
            tracing::warn!(%error, "cannot read the inbox's backlog for the metrics");
            return;
        }
        Err(error) => {
            tracing::warn!(%error, "cannot read the inbox's backlog for the metrics");
            return;
        }
    };
    for engine in &service.engines {
        let name = &engine.plan().name;
        let part = backlog.iter().find(|b| &b.integration == name);
        let metrics = engine.metrics();
        match part {
            Some(b) => metrics.inbox(b.pending, b.running, b.oldest, b.dead_letters),
            None => metrics.inbox(0, 0, None, 0),
        }
    }
}
