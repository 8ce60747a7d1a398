//! Polls: pages of an API's answers into the inbox, each with the position after it.

use super::Service;
use crate::engine::Engine;
use std::sync::Arc;
use std::time::Duration;

/// Pages a poll may fetch in one round, a safety net against an API whose next page never
/// ends.
const POLL_PAGES_PER_ROUND: usize = 100;

/// Runs every poll trigger of every integration until the service shuts down. Each round
/// starts at the stored position; each page's events are committed together with the
/// position after that page, so the position never moves past an event not in the inbox,
/// and a restarted process resumes where the last committed page left off.
pub async fn poll(service: Arc<Service>) {
    let mut tasks = Vec::new();
    for engine in &service.engines {
        for index in 0..engine.plan().polls.len() {
            tasks.push(tokio::spawn(poll_loop(
                service.clone(),
                engine.clone(),
                index,
            )));
        }
    }
    for task in tasks {
        let _ = task.await;
    }
}

async fn poll_loop(service: Arc<Service>, engine: Arc<Engine>, index: usize) {
    let Some(every) = engine.plan().polls.get(index).map(|p| p.every) else {
        return;
    };
    let trigger = format!("poll {index}");
    let integration = engine.plan().name.clone();
    while !service.stopping() {
        let store = service.store.clone();
        let (name, key) = (integration.clone(), trigger.clone());
        let mut position = tokio::task::spawn_blocking(move || store.position(&name, &key))
            .await
            .ok()
            .and_then(Result::ok)
            .flatten();
        for _ in 0..POLL_PAGES_PER_ROUND {
            // A failed poll is tried again next round, from the same position.
            let Ok(polled) = engine.poll(index, position.as_deref()).await else {
                break;
            };
            let Some(poll) = engine.plan().polls.get(index) else {
                return;
            };
            let events = crate::plan::keyed_events(
                &engine.plan().templates,
                polled.items,
                poll.when.as_ref(),
                poll.dedupe.as_ref(),
                engine.secrets(),
            );
            let next = polled.next.clone().or(position.clone());
            let (store, name, key) = (service.store.clone(), integration.clone(), trigger.clone());
            let stored = next.clone();
            let committed = tokio::task::spawn_blocking(move || {
                store.enqueue_page(&name, stored.as_deref().map(|p| (key.as_str(), p)), &events)
            })
            .await;
            if !matches!(committed, Ok(Ok(_))) {
                break;
            }
            service.wake();
            if polled.next.is_none() || polled.next == position {
                break;
            }
            position = next;
        }
        let until = tokio::time::Instant::now() + every;
        while !service.stopping() && tokio::time::Instant::now() < until {
            tokio::time::sleep((until - tokio::time::Instant::now()).min(Duration::from_secs(1)))
                .await;
        }
    }
}
