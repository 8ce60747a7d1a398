//! Polls: pages of an API's answers into the inbox, each with the position after it.

use super::Service;
use super::health::poll_name;
use super::pass::Pass;
use crate::engine::Engine;
use crate::model::{Mark, MarkType};
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
    let trigger = poll_name(index);
    while !service.stopping() {
        if service.intake.overloaded(0) {
            // The API keeps what is not fetched: the round waits rather than add to a
            // backlog that refuses webhooks.
            tracing::info!(integration = %engine.plan().name, %trigger, backlog = service.intake.backlog(), "the inbox is at --max-pending; this round is skipped");
        } else {
            // A failed round is tried again next round, from the position it left.
            let done = round(&service, &engine, index, &trigger).await;
            service.backfill().ended(&engine.plan().name, &trigger);
            match done {
                Ok(None) => service.trigger_succeeded(&engine, &trigger),
                Ok(Some(error)) | Err(error) => service.trigger_failed(&engine, &trigger, &error),
            }
        }
        let until = tokio::time::Instant::now() + every;
        while !service.stopping() && tokio::time::Instant::now() < until {
            tokio::time::sleep((until - tokio::time::Instant::now()).min(Duration::from_secs(1)))
                .await;
        }
    }
}

/// One round of a poll: pages from the stored position until the last, each committed with
/// the position after it (see `Pass` for how an incremental poll's mark moves).
/// `Ok(Some(error))` when every page was committed but some events without their dedupe
/// key, or some items without a readable mark.
async fn round(
    service: &Service,
    engine: &Engine,
    index: usize,
    trigger: &str,
) -> Result<Option<String>, String> {
    let integration = engine.plan().name.clone();
    let poll = engine
        .plan()
        .polls
        .get(index)
        .ok_or("no such poll trigger")?;
    let kind = poll.since.as_ref().map(|since| since.kind);
    // Taken before the first request: no item of this round can be stamped later and be
    // missed by the next one.
    let ceiling = kind
        .filter(|k| *k != MarkType::Integer)
        .map(|_| Mark::Time(chrono::Utc::now()));
    let store = service.store.clone();
    let (name, key) = (integration.clone(), trigger.to_string());
    let stored = tokio::task::spawn_blocking(move || store.position(&name, &key))
        .await
        .map_err(|e| format!("cannot read the poll's position: {e}"))?
        .map_err(|e| format!("cannot read the poll's position: {e}"))?;
    // With no position stored, this round reads all the API holds: a backfill, whose
    // progress is reported page by page.
    let backfilling = stored.is_none();
    let (mut pages, mut events) = (0u64, 0u64);
    let mut pass = Pass::read(stored, kind)?;
    if pass.awaits_start()
        && let Some(start) = engine.start_mark(index)?
    {
        // Stored before the first request: a `start` that reads the clock is read once,
        // and a first round that keeps failing asks from the same mark each time.
        pass.mark = Some(start);
        service
            .accept(
                &integration,
                Vec::new(),
                poll.retention,
                Some((trigger, &pass.stored())),
            )
            .await
            .map_err(|e| format!("cannot store the poll's start: {e}"))?;
    }
    let mut unkeyed = None;
    let mut unread = None;
    // The positions this round asked for: one handed out again is a loop.
    let mut asked: std::collections::HashSet<String> = pass.page.iter().cloned().collect();
    for page in 1..=POLL_PAGES_PER_ROUND {
        let polled = engine.poll(index, pass.page.as_deref(), pass.mark).await?;
        let keyed = crate::plan::keyed_events(
            &engine.plan().templates,
            polled.items,
            poll.when.as_ref(),
            poll.dedupe.as_ref(),
            None,
            engine.secrets(),
        )
        .map_err(|e| e.to_string())?;
        unkeyed = unkeyed.or(keyed.unkeyed);
        unread = add(unread, polled.marks.unread);
        // An answer naming the page it answers has no next page.
        let next = polled.next.filter(|next| Some(next) != pass.page.as_ref());
        let after = pass.after(next.clone(), polled.marks.high, ceiling, kind.is_some());
        if let (Some(seen), Some(ceiling)) = (polled.marks.high, ceiling)
            && seen > ceiling
        {
            tracing::warn!(%integration, %trigger, mark = %seen.stored(), "an item's mark is later than the clock: the mark stops at the clock, so that later items are not skipped");
        }
        let position = after.stored();
        let filtered = keyed.filtered;
        let enqueued = service
            .accept(
                &integration,
                keyed.events,
                poll.retention,
                Some((trigger, &position)),
            )
            .await
            .map_err(|e| format!("cannot commit the page: {e}"))?;
        if let Some(metrics) = engine.metrics().polls.get(index) {
            metrics.took(enqueued.accepted(), filtered, enqueued.duplicates());
        }
        pass = after;
        if backfilling {
            pages = pages.saturating_add(1);
            events = events.saturating_add(enqueued.accepted() as u64);
            service
                .backfill()
                .page(&integration, trigger, pages, events);
        }
        // A full backlog ends the round at a committed page: what is not fetched stays
        // with the API until the next round.
        if service.intake.overloaded(0) {
            tracing::info!(%integration, %trigger, "the inbox is at --max-pending; the round stops after this page");
            break;
        }
        let Some(next) = next else {
            break;
        };
        if !asked.insert(next) {
            tracing::warn!(%integration, %trigger, "the API handed out a next position it gave before in this round: the round stops");
            break;
        }
        if page == POLL_PAGES_PER_ROUND {
            tracing::info!(%integration, %trigger, "{POLL_PAGES_PER_ROUND} pages this round; the next round goes on from there");
        }
    }
    let unkeyed = unkeyed.map(super::webhook::unkeyed_error);
    let unread = unread.map(|(count, reason)| {
        format!("{count} item(s) without a readable mark were delivered but did not move it (the first: {reason})")
    });
    Ok(match (unkeyed, unread) {
        (Some(a), Some(b)) => Some(format!("{a}; {b}")),
        (a, b) => a.or(b),
    })
}

/// Two counts of items and the first reason.
fn add(total: Option<(usize, String)>, more: Option<(usize, String)>) -> Option<(usize, String)> {
    match (total, more) {
        (Some((a, reason)), Some((b, _))) => Some((a.saturating_add(b), reason)),
        (total, more) => total.or(more),
    }
}
