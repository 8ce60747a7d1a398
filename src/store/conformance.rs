//! The contract every backend keeps, as tests every backend runs unchanged. A case is a
//! function of the backend's `fresh` (an empty store, and what to drop to remove it); the
//! `conformance!` macro makes each case a test of one backend, at the bottom of this file.
//! A case that is not listed in the macro is dead code, which the lints refuse.
//!
//! The cases hold for a store shared by a fleet as for one file served by one process: an
//! owner's claims are taken back only once its lease has lapsed (a backend may take them
//! back sooner, as SQLite does, whose serving process holds the file alone).

use super::{
    AlertChange, AlertCounts, AlertKey, DeadLetter, Ending, Finished, InboxItem, LetterQuery,
    LetterState, LetterStates, NewEvents, Owner, Position, RunLinks, RunQuery, RunRecord,
    RunStatus, ScheduleMark, ScheduleState, Store, TriggerHealth, now,
};
use crate::model::AlertStatus;
use serde_json::{Value as Json, json};
use std::sync::Arc;
use std::time::Duration;
use tempfile::TempDir;

/// An empty store of one backend, and the folder that holds it (if it has one) for as long
/// as the test runs.
type Fresh = fn() -> (TempDir, Arc<dyn Store>);

/// Every case, as one test each for the backend `$fresh` opens.
macro_rules! conformance {
    ($fresh:path) => {
        conformance!(@cases $fresh;
            // The hot path.
            an_event_whose_dedupe_key_was_seen_is_dropped,
            events_enqueued_for_an_owner_are_its_running_work,
            claims_take_the_oldest_of_the_named_integrations_and_count_attempts,
            an_unstarted_claim_given_back_is_not_counted,
            checkpoints_come_back_with_a_claim_until_the_event_finishes,
            a_deferred_event_keeps_its_checkpoints_and_waits_for_its_time,
            a_finished_event_is_not_claimed_again_and_keeps_its_records,
            recovery_takes_back_a_lapsed_owners_work_never_the_callers,
            a_heartbeat_renews_the_owners_running_events,
            // The records.
            a_dead_letter_comes_back_with_its_id,
            replay_moves_the_chosen_dead_letters_back_to_the_inbox,
            purge_deletes_every_dead_letter,
            a_replay_is_a_new_run_linked_both_ways_to_the_original,
            a_discarded_dead_letter_is_kept_with_its_reason,
            a_letter_replayed_by_many_at_once_is_replayed_once,
            runs_are_filtered_by_outcome_trigger_and_time_and_paged,
            the_backlog_counts_unfinished_events_and_dead_letters_by_integration,
            prune_forgets_old_records_but_never_pending_running_or_dead_letters,
            prune_forgets_settled_dead_letters_never_open_ones,
            runs_are_read_newest_first_by_integration_outcome_time_and_number,
            saved_trigger_health_replaces_each_trigger_kept,
            a_poll_position_is_kept_per_integration_and_trigger,
            a_schedule_mark_commits_with_its_runs_and_skips,
            another_integrations_event_is_never_a_schedules_run,
            a_triggers_own_retention_keeps_its_keys_for_that_long,
            refresh_tokens_are_kept_per_integration_and_connection,
            alert_counts_read_a_window_of_an_integrations_runs,
            an_alerts_status_and_the_status_notified_are_kept_apart,
        );
    };
    (@cases $fresh:path; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $case() {
                super::$case($fresh).await;
            }
        )*
    };
}

/// An owner whose claims hold for the whole test.
fn alive() -> Owner {
    Owner::new(Duration::from_secs(3600))
}

/// An owner whose claims lapse within a second: a process that stopped.
fn stopped() -> Owner {
    Owner::new(Duration::ZERO)
}

/// Long enough for a lease of zero, or a time in whole seconds, to be past.
async fn a_second_passes() {
    tokio::time::sleep(Duration::from_millis(1_100)).await;
}

/// Integration names as a claim or a count takes them.
fn names(names: &[&str]) -> Vec<String> {
    names.iter().map(|n| n.to_string()).collect()
}

/// Events `{"n": N}` without dedupe keys.
fn numbered(numbers: impl IntoIterator<Item = i64>) -> Vec<(Json, Option<String>)> {
    numbers
        .into_iter()
        .map(|n| (json!({ "n": n }), None))
        .collect()
}

fn numbers(items: &[InboxItem]) -> Vec<i64> {
    items
        .iter()
        .map(|item| item.event["n"].as_i64().unwrap_or(-1))
        .collect()
}

fn attempts(items: &[InboxItem]) -> Vec<u32> {
    items.iter().map(|item| item.attempts).collect()
}

fn from(names: &[&str]) -> Vec<String> {
    names.iter().map(|name| name.to_string()).collect()
}

/// Enqueues `events` of `integration`; returns their ids.
async fn enqueue(
    store: &dyn Store,
    integration: &str,
    events: &[(Json, Option<String>)],
) -> Vec<i64> {
    let enqueued = store
        .enqueue(NewEvents::of(integration, events))
        .await
        .unwrap();
    enqueued.ids.into_iter().flatten().collect()
}

async fn claim(store: &dyn Store, owner: &Owner, limit: usize, names: &[&str]) -> Vec<InboxItem> {
    store.claim(owner, limit, &from(names)).await.unwrap()
}

fn letter(integration: &str, n: i64) -> DeadLetter {
    DeadLetter {
        integration: integration.into(),
        step: "post".into(),
        event: json!({ "n": n }),
        requests: vec![format!("POST http://127.0.0.1/items/{n}")],
        status: Some(422),
        error: format!("status 422: item {n} refused"),
        attempts: 2,
        failed_at: 1_700_000_000 + n,
        ..DeadLetter::default()
    }
}

fn run(integration: &str, outcome: &str, started_at: i64) -> RunRecord {
    RunRecord {
        integration: integration.into(),
        outcome: outcome.into(),
        started_at,
        duration_ms: 7,
        attempts: 1,
        retries: 0,
        rate_limited: 0,
        error: (outcome != "succeeded").then(|| format!("post: {outcome}")),
        event: None,
        reason: None,
        ..RunRecord::default()
    }
}

/// The inbox's events by status.
fn counts(store: &dyn Store) -> Vec<(String, usize)> {
    store.inbox_counts().unwrap()
}

fn pending(n: usize) -> Vec<(String, usize)> {
    vec![("pending".to_string(), n)]
}

// The hot path.

async fn an_event_whose_dedupe_key_was_seen_is_dropped(fresh: Fresh) {
    let (_dir, store) = fresh();
    let keyed = |n: i64, key: &str| (json!({ "n": n }), Some(key.to_string()));
    let first = [keyed(1, "a"), keyed(2, "a"), (json!({ "n": 3 }), None)];
    let enqueued = store.enqueue(NewEvents::of("x", &first)).await.unwrap();
    let kept: Vec<bool> = enqueued.ids.iter().map(Option::is_some).collect();
    assert_eq!(kept, [true, false, true], "within one write");
    assert_eq!((enqueued.accepted(), enqueued.duplicates()), (2, 1));
    let again = store
        .enqueue(NewEvents::of("x", &[keyed(4, "a")]))
        .await
        .unwrap();
    assert_eq!(again.ids, [None], "and across writes");
    let other = store
        .enqueue(NewEvents::of("y", &[keyed(5, "a")]))
        .await
        .unwrap();
    assert_eq!(other.accepted(), 1, "a key is its integration's own");
    assert_eq!(store.due(&names(&["x", "y"])).await.unwrap(), 3);
    assert_eq!(
        store.due(&names(&["y", "z"])).await.unwrap(),
        1,
        "only those named"
    );
    let claimed = claim(store.as_ref(), &alive(), 10, &["x", "y"]).await;
    assert_eq!(numbers(&claimed), [1, 3, 5]);
}

async fn events_enqueued_for_an_owner_are_its_running_work(fresh: Fresh) {
    let (_dir, store) = fresh();
    let owner = alive();
    let events = numbered([1, 2]);
    let enqueued = store
        .enqueue(NewEvents::of("x", &events).claimed_by(&owner))
        .await
        .unwrap();
    assert_eq!(enqueued.accepted(), 2);
    assert!(enqueued.at > 0);
    assert_eq!(counts(store.as_ref()), [("running".to_string(), 2)]);
    assert!(
        claim(store.as_ref(), &alive(), 10, &["x"]).await.is_empty(),
        "no one claims them again"
    );
    assert_eq!(
        store
            .due(&names(&["a", "x", "y", "busy", "free"]))
            .await
            .unwrap(),
        2
    );
    // Given back unstarted, they are pending, their first claim not counted.
    let ids: Vec<i64> = enqueued.ids.iter().flatten().copied().collect();
    store.unclaim(&owner, &ids).await.unwrap();
    let claimed = claim(store.as_ref(), &owner, 10, &["x"]).await;
    assert_eq!(numbers(&claimed), [1, 2]);
    assert_eq!(attempts(&claimed), [1, 1]);
}

async fn claims_take_the_oldest_of_the_named_integrations_and_count_attempts(fresh: Fresh) {
    let (_dir, store) = fresh();
    for (integration, n) in [("busy", 1), ("free", 2), ("busy", 3), ("free", 4)] {
        enqueue(store.as_ref(), integration, &numbered([n])).await;
    }
    let owner = alive();
    let free = claim(store.as_ref(), &owner, 10, &["free"]).await;
    assert_eq!(
        numbers(&free),
        [2, 4],
        "only the integrations named, oldest first"
    );
    assert_eq!(attempts(&free), [1, 1]);
    assert_eq!(free[0].integration, "free");
    assert_eq!(free[0].event, json!({ "n": 2 }));
    assert!(free[0].done.is_empty());
    assert!(free[0].created_at > 0);
    assert!(claim(store.as_ref(), &owner, 10, &[]).await.is_empty());
    enqueue(store.as_ref(), "free", &numbered([5])).await;
    let both = claim(store.as_ref(), &owner, 2, &["busy", "free"]).await;
    assert_eq!(
        numbers(&both),
        [1, 3],
        "the oldest of both, up to the limit"
    );
    assert_eq!(
        store
            .due(&names(&["a", "x", "y", "busy", "free"]))
            .await
            .unwrap(),
        5
    );
}

async fn an_unstarted_claim_given_back_is_not_counted(fresh: Fresh) {
    let (_dir, store) = fresh();
    enqueue(store.as_ref(), "x", &numbered([1, 2])).await;
    let owner = alive();
    let claimed = claim(store.as_ref(), &owner, 2, &["x"]).await;
    store.unclaim(&alive(), &[claimed[0].id]).await.unwrap();
    assert!(
        claim(store.as_ref(), &owner, 2, &["x"]).await.is_empty(),
        "another owner cannot give them back"
    );
    store.unclaim(&owner, &[claimed[1].id]).await.unwrap();
    let again = claim(store.as_ref(), &owner, 2, &["x"]).await;
    assert_eq!((numbers(&again), attempts(&again)), (vec![2], vec![1]));
}

async fn checkpoints_come_back_with_a_claim_until_the_event_finishes(fresh: Fresh) {
    let (_dir, store) = fresh();
    enqueue(store.as_ref(), "x", &numbered([1])).await;
    let first = stopped();
    let item = claim(store.as_ref(), &first, 1, &["x"]).await.remove(0);
    store
        .checkpoint(item.id, "lookup", Some(&json!({ "id": 7 })))
        .await
        .unwrap();
    store.checkpoint(item.id, "skipped", None).await.unwrap();
    // Its owner stopped here: the next takes the event back and resumes it.
    a_second_passes().await;
    let next = alive();
    assert_eq!(store.recover(&next).await.unwrap(), 1);
    let resumed = claim(store.as_ref(), &next, 1, &["x"]).await.remove(0);
    assert_eq!(resumed.id, item.id);
    assert_eq!(
        resumed.attempts, 2,
        "a claim during which its owner stopped counts"
    );
    assert_eq!(
        Json::Object(resumed.done.clone()),
        json!({ "lookup": { "id": 7 }, "skipped": null })
    );
    store
        .finish(resumed.id, Finished::Done.into())
        .await
        .unwrap();
    assert_eq!(
        store
            .due(&names(&["a", "x", "y", "busy", "free"]))
            .await
            .unwrap(),
        0
    );
}

async fn a_deferred_event_keeps_its_checkpoints_and_waits_for_its_time(fresh: Fresh) {
    let (_dir, store) = fresh();
    enqueue(store.as_ref(), "x", &numbered([1, 2])).await;
    let owner = alive();
    let first = claim(store.as_ref(), &owner, 1, &["x"]).await.remove(0);
    store
        .checkpoint(first.id, "lookup", Some(&json!({ "x": 1 })))
        .await
        .unwrap();
    let later = Finished::Deferred {
        not_before: now().saturating_add(1),
    };
    store.finish(first.id, later.into()).await.unwrap();
    assert_eq!(
        store.due(&names(&["x"])).await.unwrap(),
        1,
        "the deferred event is not due yet"
    );
    let now_due = claim(store.as_ref(), &owner, 10, &["x"]).await;
    assert_eq!(numbers(&now_due), [2], "the deferred event waits");
    a_second_passes().await;
    a_second_passes().await;
    let again = claim(store.as_ref(), &owner, 10, &["x"]).await.remove(0);
    assert_eq!(again.id, first.id, "its time came");
    assert_eq!(again.attempts, 1, "a deferral is no stop: not counted");
    assert_eq!(Json::Object(again.done), json!({ "lookup": { "x": 1 } }));
}

async fn a_finished_event_is_not_claimed_again_and_keeps_its_records(fresh: Fresh) {
    let (_dir, store) = fresh();
    let ids = enqueue(store.as_ref(), "x", &numbered([1, 2])).await;
    let owner = alive();
    claim(store.as_ref(), &owner, 2, &["x"]).await;
    let mut succeeded = run("x", "succeeded", now());
    succeeded.event = Some(ids[0]);
    store
        .finish(ids[0], Ending::new(Finished::Done, Some(succeeded.clone())))
        .await
        .unwrap();
    let ending = Finished::DeadLettered(Box::new(letter("x", 2)));
    store.finish(ids[1], ending.into()).await.unwrap();
    assert_eq!(
        store
            .due(&names(&["a", "x", "y", "busy", "free"]))
            .await
            .unwrap(),
        0
    );
    a_second_passes().await;
    assert_eq!(
        store.recover(&alive()).await.unwrap(),
        0,
        "nothing to take back"
    );
    assert!(claim(store.as_ref(), &owner, 10, &["x"]).await.is_empty());
    let runs = store.runs(&RunQuery::default()).unwrap();
    assert_eq!(
        runs.into_iter().map(|(_, r)| r).collect::<Vec<_>>(),
        [succeeded],
        "the run, written with its end"
    );
    let letters = store.dead_letters().unwrap();
    assert_eq!(
        letters.into_iter().map(|(_, l)| l).collect::<Vec<_>>(),
        [letter("x", 2)],
        "the dead letter, written with its end"
    );
}

async fn recovery_takes_back_a_lapsed_owners_work_never_the_callers(fresh: Fresh) {
    let (_dir, store) = fresh();
    enqueue(store.as_ref(), "x", &numbered([1, 2, 3])).await;
    let gone = stopped();
    claim(store.as_ref(), &gone, 2, &["x"]).await;
    let me = alive();
    let mine = claim(store.as_ref(), &me, 1, &["x"]).await;
    assert_eq!(numbers(&mine), [3]);
    a_second_passes().await;
    assert_eq!(
        store.recover(&me).await.unwrap(),
        2,
        "the lapsed owner's two"
    );
    assert_eq!(store.recover(&me).await.unwrap(), 0, "once");
    let back = claim(store.as_ref(), &me, 10, &["x"]).await;
    assert_eq!((numbers(&back), attempts(&back)), (vec![1, 2], vec![2, 2]));
    assert_eq!(counts(store.as_ref()), [("running".to_string(), 3)]);
}

async fn a_heartbeat_renews_the_owners_running_events(fresh: Fresh) {
    let (_dir, store) = fresh();
    enqueue(store.as_ref(), "x", &numbered([1, 2, 3])).await;
    let owner = alive();
    claim(store.as_ref(), &owner, 2, &["x"]).await;
    assert_eq!(store.heartbeat(&owner).await.unwrap(), 2);
    assert_eq!(
        store.heartbeat(&alive()).await.unwrap(),
        0,
        "another's: none"
    );
}

// The records.

async fn a_dead_letter_comes_back_with_its_id(fresh: Fresh) {
    let (_dir, store) = fresh();
    assert!(store.dead_letters().unwrap().is_empty());
    let first = store.dead_letter(&letter("a", 1)).unwrap();
    let second = store.dead_letter(&letter("b", 2)).unwrap();
    assert_ne!(first, second);
    assert_eq!(
        store.dead_letters().unwrap(),
        [(first, letter("a", 1)), (second, letter("b", 2))],
        "whole, with its id, oldest first"
    );
}

async fn replay_moves_the_chosen_dead_letters_back_to_the_inbox(fresh: Fresh) {
    let (_dir, store) = fresh();
    let ids: Vec<i64> = (1..=3)
        .map(|n| store.dead_letter(&letter("a", n)).unwrap())
        .collect();
    let unknown = ids.iter().max().unwrap() + 100;
    assert_eq!(
        store.replay(Some(&[ids[1], unknown])).unwrap(),
        [ids[1]],
        "only the ones there are"
    );
    assert_eq!(
        store.dead_letters().unwrap(),
        [(ids[0], letter("a", 1)), (ids[2], letter("a", 3))]
    );
    assert_eq!(counts(store.as_ref()), pending(1));
    assert_eq!(store.replay(None).unwrap(), [ids[0], ids[2]], "then all");
    assert!(store.dead_letters().unwrap().is_empty());
    assert!(store.replay(None).unwrap().is_empty());
    let replayed = claim(store.as_ref(), &alive(), 10, &["a"]).await;
    assert_eq!(numbers(&replayed), [2, 1, 3], "each event, to run again");
}

async fn the_backlog_counts_unfinished_events_and_dead_letters_by_integration(fresh: Fresh) {
    let (_dir, store) = fresh();
    assert_eq!(store.backlog().unwrap(), Vec::new());
    enqueue(store.as_ref(), "a", &numbered(1..=3)).await;
    claim(store.as_ref(), &alive(), 1, &["a"]).await;
    store.dead_letter(&letter("b", 1)).unwrap();
    let backlog = store.backlog().unwrap();
    assert_eq!(backlog.len(), 2, "{backlog:?}");
    let (a, b) = (&backlog[0], &backlog[1]);
    assert_eq!(
        (a.integration.as_str(), a.pending, a.running, a.dead_letters),
        ("a", 2, 1, 0)
    );
    assert!(a.oldest.is_some_and(|at| at > 0 && at <= now()), "{a:?}");
    assert_eq!(
        (
            b.integration.as_str(),
            b.pending,
            b.running,
            b.oldest,
            b.dead_letters
        ),
        ("b", 0, 0, None, 1)
    );
    // A dead letter replayed or discarded is kept, as a record, but waits no more.
    let discard = LetterQuery {
        integration: Some("b".into()),
        ..LetterQuery::default()
    };
    store.discard(&discard, "handled by hand").unwrap();
    let backlog = store.backlog().unwrap();
    assert_eq!(backlog.len(), 1, "only a waits: {backlog:?}");
}

async fn purge_deletes_every_dead_letter(fresh: Fresh) {
    let (_dir, store) = fresh();
    for n in 1..=3 {
        store.dead_letter(&letter("a", n)).unwrap();
    }
    assert_eq!(store.purge().unwrap(), 3);
    assert!(store.dead_letters().unwrap().is_empty());
    assert_eq!(store.purge().unwrap(), 0);
    assert!(
        counts(store.as_ref()).is_empty(),
        "nothing went to the inbox"
    );
}

async fn a_replay_is_a_new_run_linked_both_ways_to_the_original(fresh: Fresh) {
    let (_dir, store) = fresh();
    let hook = "webhook POST /hooks/a";
    let events = numbered([1]);
    let new = NewEvents::of("a", &events).from_webhook(hook);
    let first = store.enqueue(new).await.unwrap().ids[0].unwrap();
    let owner = alive();
    claim(store.as_ref(), &owner, 1, &["a"]).await;
    let failed = RunRecord {
        event: Some(first),
        ..run("a", "dead_lettered", now())
    };
    let ending = Finished::DeadLettered(Box::new(letter("a", 1)));
    store
        .finish(first, Ending::new(ending, Some(failed)))
        .await
        .unwrap();
    let (original, kept) = store.runs(&RunQuery::default()).unwrap().remove(0);
    assert_eq!(kept.trigger.as_deref(), Some(hook), "from its inbox event");
    let (letter_id, letter) = store.dead_letters().unwrap().remove(0);
    assert_eq!(letter.run, Some(original), "the letter names its run");

    let query = LetterQuery {
        ids: Some(vec![letter_id]),
        ..LetterQuery::default()
    };
    let replayed = store
        .replay_matching(&query, Some("API-395: blip"))
        .unwrap();
    assert_eq!(replayed, [letter_id]);
    assert!(store.dead_letters().unwrap().is_empty(), "no longer open");
    let settled = LetterQuery {
        states: LetterStates::Replayed,
        ..LetterQuery::default()
    };
    let (_, kept) = store.letters(&settled).unwrap().remove(0);
    let LetterState::Replayed {
        replay_event,
        reason,
        ..
    } = kept.state
    else {
        panic!("{kept:?} is not marked replayed");
    };
    assert_eq!(reason.as_deref(), Some("API-395: blip"));
    let again = claim(store.as_ref(), &owner, 1, &["a"]).await.remove(0);
    assert_eq!((again.id, again.event), (replay_event, json!({ "n": 1 })));
    let succeeded = RunRecord {
        event: Some(replay_event),
        ..run("a", "succeeded", now())
    };
    store
        .finish(replay_event, Ending::new(Finished::Done, Some(succeeded)))
        .await
        .unwrap();
    let (replay, record) = store.runs(&RunQuery::default()).unwrap().remove(0);
    assert_eq!(
        record.replay_of,
        Some(letter_id),
        "the replay names the letter"
    );
    assert_eq!(
        record.trigger.as_deref(),
        Some(hook),
        "and the original's trigger"
    );
    assert_eq!(
        store.run_links(original).unwrap(),
        RunLinks {
            dead_letter: Some(letter_id),
            replay_of_run: None,
            replayed_by: vec![replay],
        }
    );
    assert_eq!(
        store.run_links(replay).unwrap(),
        RunLinks {
            replay_of_run: Some(original),
            ..RunLinks::default()
        }
    );
    assert!(
        store.replay_matching(&query, None).unwrap().is_empty(),
        "a letter is replayed once"
    );
}

async fn a_letter_replayed_by_many_at_once_is_replayed_once(fresh: Fresh) {
    // A form sent twice (a double click), or two people replaying at once, must not run
    // the event twice (mattermost-plugin-playbooks#1773, digdag#1819).
    let (_dir, store) = fresh();
    let id = store.dead_letter(&letter("a", 1)).unwrap();
    let other = store.dead_letter(&letter("a", 2)).unwrap();
    let start = Arc::new(std::sync::Barrier::new(8));
    let replays: Vec<_> = (0..8)
        .map(|n| {
            let (store, start) = (store.clone(), start.clone());
            std::thread::spawn(move || {
                start.wait();
                if n % 2 == 0 {
                    store.replay(Some(&[id])).unwrap()
                } else {
                    store.discard(&LetterQuery::default(), "at once").unwrap()
                }
            })
        })
        .collect();
    let done: Vec<i64> = replays
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    let mut settled = done.clone();
    settled.sort_unstable();
    assert_eq!(settled, [id, other], "each letter settled once: {done:?}");
    let replayed = counts(store.as_ref());
    assert!(
        replayed.is_empty() || replayed == pending(1),
        "at most one event back in the inbox: {replayed:?}"
    );
}

async fn a_discarded_dead_letter_is_kept_with_its_reason(fresh: Fresh) {
    let (_dir, store) = fresh();
    let ids: Vec<i64> = [("a", 1), ("b", 2), ("a", 3)]
        .into_iter()
        .map(|(integration, n)| store.dead_letter(&letter(integration, n)).unwrap())
        .collect();
    let of_a = LetterQuery {
        integration: Some("a".into()),
        until: Some(1_700_000_003),
        ..LetterQuery::default()
    };
    assert_eq!(store.discard(&of_a, "known bad data").unwrap(), [ids[0]]);
    assert_eq!(
        store
            .dead_letters()
            .unwrap()
            .iter()
            .map(|(id, _)| *id)
            .collect::<Vec<_>>(),
        [ids[1], ids[2]]
    );
    let discarded = LetterQuery {
        states: LetterStates::Discarded,
        ..LetterQuery::default()
    };
    let (id, kept) = store.letters(&discarded).unwrap().remove(0);
    assert_eq!(id, ids[0]);
    assert!(matches!(
        kept.state,
        LetterState::Discarded { ref reason, .. } if reason == "known bad data"
    ));
    assert!(store.replay(Some(&[ids[0]])).unwrap().is_empty(), "settled");
    assert!(
        counts(store.as_ref()).is_empty(),
        "nothing went to the inbox"
    );
    let all = LetterQuery {
        states: LetterStates::All,
        ..LetterQuery::default()
    };
    assert_eq!(store.letters(&all).unwrap().len(), 3);
}

async fn runs_are_filtered_by_outcome_trigger_and_time_and_paged(fresh: Fresh) {
    let (_dir, store) = fresh();
    let triggered = |outcome: &str, at: i64, trigger: &str| RunRecord {
        trigger: Some(trigger.to_string()),
        ..run("a", outcome, at)
    };
    let ids: Vec<i64> = [
        triggered("succeeded", 100, "poll 0"),
        triggered("failed", 200, "schedule 0"),
        triggered("failed", 300, "poll 0"),
        triggered("succeeded", 400, "poll 0"),
    ]
    .iter()
    .map(|r| store.record_run(r).unwrap())
    .collect();
    let found = |query: RunQuery| -> Vec<i64> {
        store
            .runs(&query)
            .unwrap()
            .into_iter()
            .map(|(id, _)| id)
            .collect()
    };
    let failed = Some(RunStatus::Failed);
    let poll = Some("poll 0".to_string());
    assert_eq!(
        found(RunQuery {
            outcome: failed,
            ..RunQuery::default()
        }),
        [ids[2], ids[1]]
    );
    assert_eq!(
        found(RunQuery {
            trigger: poll.clone(),
            outcome: failed,
            ..RunQuery::default()
        }),
        [ids[2]]
    );
    assert_eq!(
        found(RunQuery {
            since: Some(200),
            until: Some(400),
            ..RunQuery::default()
        }),
        [ids[2], ids[1]],
        "until is exclusive"
    );
    let page = |before| RunQuery {
        before,
        limit: std::num::NonZeroUsize::new(2),
        ..RunQuery::default()
    };
    assert_eq!(found(page(None)), [ids[3], ids[2]]);
    assert_eq!(found(page(Some(ids[2]))), [ids[1], ids[0]], "the next page");
    assert_eq!(
        found(RunQuery {
            id: Some(ids[1]),
            ..RunQuery::default()
        }),
        [ids[1]]
    );
    let counts = store
        .run_counts("a", 150, std::num::NonZeroU32::new(100).unwrap())
        .unwrap();
    let counted: Vec<(i64, &str, u64)> = counts
        .iter()
        .map(|c| (c.bucket, c.outcome.as_str(), c.runs))
        .collect();
    assert_eq!(
        counted,
        [
            (200, "failed", 1),
            (300, "failed", 1),
            (400, "succeeded", 1)
        ]
    );
    assert_eq!(store.last_success("a").unwrap(), Some(400));
    assert_eq!(store.last_success("b").unwrap(), None);
}

async fn prune_forgets_settled_dead_letters_never_open_ones(fresh: Fresh) {
    // Replayed and discarded letters are kept as records, each with its whole event: kept
    // forever, they would grow the store without end.
    let (_dir, store) = fresh();
    let ids: Vec<i64> = (1..=3)
        .map(|n| store.dead_letter(&letter("a", n)).unwrap())
        .collect();
    let one = |id: i64| LetterQuery {
        ids: Some(vec![id]),
        ..LetterQuery::default()
    };
    assert_eq!(store.replay_matching(&one(ids[0]), None).unwrap(), [ids[0]]);
    assert_eq!(store.discard(&one(ids[1]), "a test").unwrap(), [ids[1]]);
    let pruned = store.prune(Duration::from_secs(3600)).unwrap();
    assert_eq!(pruned.dead_letters, 0, "settled within the retention");
    a_second_passes().await;
    let pruned = store.prune(Duration::ZERO).unwrap();
    assert_eq!(pruned.dead_letters, 2, "the replayed and the discarded one");
    let all = LetterQuery {
        states: LetterStates::All,
        ..LetterQuery::default()
    };
    let kept: Vec<i64> = store
        .letters(&all)
        .unwrap()
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    assert_eq!(kept, [ids[2]], "the open one stays, however old");
}

async fn prune_forgets_old_records_but_never_pending_running_or_dead_letters(fresh: Fresh) {
    let (_dir, store) = fresh();
    let keyed: Vec<_> = (1..=4)
        .map(|n| (json!({ "n": n }), Some(format!("key-{n}"))))
        .collect();
    let ids = enqueue(store.as_ref(), "a", &keyed).await;
    let owner = alive();
    claim(store.as_ref(), &owner, 3, &["a"]).await;
    let recent = run("a", "succeeded", now());
    store
        .finish(ids[0], Ending::new(Finished::Done, Some(recent)))
        .await
        .unwrap();
    let ending = Finished::DeadLettered(Box::new(letter("a", 2)));
    store.finish(ids[1], ending.into()).await.unwrap();
    store.dead_letter(&letter("a", 9)).unwrap();
    store.record_run(&run("a", "failed", 0)).unwrap();
    let hour = Duration::from_secs(3600);
    let pruned = store.prune(hour).unwrap();
    assert_eq!(
        (pruned.dedupe_keys, pruned.events, pruned.runs),
        (0, 0, 1),
        "only the run of long ago"
    );
    // Everything is older than a zero retention once its second has passed.
    a_second_passes().await;
    let pruned = store.prune(Duration::ZERO).unwrap();
    assert_eq!(
        (pruned.dedupe_keys, pruned.events, pruned.runs),
        (4, 2, 1),
        "every key, the done and dead-lettered events, the recent run"
    );
    assert_eq!(
        counts(store.as_ref()),
        [("pending".to_string(), 1), ("running".to_string(), 1)],
        "pending and running events stay, however old"
    );
    assert_eq!(store.dead_letters().unwrap().len(), 2, "so do dead letters");
    assert!(store.runs(&RunQuery::default()).unwrap().is_empty());
    assert_eq!(
        enqueue(store.as_ref(), "a", &keyed[..1]).await.len(),
        1,
        "a forgotten key may come again"
    );
}

async fn runs_are_read_newest_first_by_integration_outcome_time_and_number(fresh: Fresh) {
    let (_dir, store) = fresh();
    let kept = [
        run("a", "succeeded", 100),
        run("b", "failed", 200),
        run("a", "dead_lettered", 300),
        run("a", "deferred", 400),
        run("b", "succeeded", 500),
    ];
    for record in &kept {
        store.record_run(record).unwrap();
    }
    let started = |query: RunQuery| -> Vec<i64> {
        let runs = store.runs(&query).unwrap();
        for (_, record) in &runs {
            assert!(kept.contains(record), "{record:?} comes back whole");
        }
        runs.into_iter().map(|(_, r)| r.started_at).collect()
    };
    let all = store.runs(&RunQuery::default()).unwrap();
    let ids: Vec<i64> = all.iter().map(|(id, _)| *id).collect();
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "ids, newest first");
    assert_eq!(started(RunQuery::default()), [500, 400, 300, 200, 100]);
    let only = |integration: &str| Some(integration.to_string());
    assert_eq!(
        started(RunQuery {
            integration: only("a"),
            ..RunQuery::default()
        }),
        [400, 300, 100]
    );
    assert_eq!(
        started(RunQuery {
            failed_only: true,
            ..RunQuery::default()
        }),
        [300, 200],
        "failed or dead-lettered, not deferred"
    );
    assert_eq!(
        started(RunQuery {
            since: Some(300),
            ..RunQuery::default()
        }),
        [500, 400, 300],
        "since is inclusive"
    );
    assert_eq!(
        started(RunQuery {
            limit: std::num::NonZeroUsize::new(2),
            ..RunQuery::default()
        }),
        [500, 400],
        "the newest"
    );
    assert_eq!(
        started(RunQuery {
            integration: only("a"),
            failed_only: true,
            since: Some(200),
            limit: std::num::NonZeroUsize::new(5),
            ..RunQuery::default()
        }),
        [300],
        "all together"
    );
}

async fn saved_trigger_health_replaces_each_trigger_kept(fresh: Fresh) {
    let (_dir, store) = fresh();
    assert!(store.triggers().unwrap().is_empty());
    let health = |integration: &str, trigger: &str, failures: u64| TriggerHealth {
        integration: integration.into(),
        trigger: trigger.into(),
        last_success_at: Some(1_700_000_000),
        last_error_at: (failures > 0).then_some(1_700_000_100),
        last_error: (failures > 0).then(|| "status 500".to_string()),
        consecutive_failures: failures,
        successes: 12,
        failures,
    };
    let webhook = health("b", "webhook POST /hooks/b", 0);
    store
        .save_triggers(&[webhook.clone(), health("a", "poll 0", 1)])
        .unwrap();
    store.save_triggers(&[health("a", "poll 0", 3)]).unwrap();
    assert_eq!(
        store.triggers().unwrap(),
        [health("a", "poll 0", 3), webhook],
        "by integration and trigger, the last saved of each"
    );
}

async fn a_schedule_mark_commits_with_its_runs_and_skips(fresh: Fresh) {
    let (_dir, store) = fresh();
    assert_eq!(store.schedule_state("a", "schedule 0").unwrap(), None);
    let mark = |occurrence: i64, waiting: Vec<i64>, skipped: Vec<RunRecord>| ScheduleMark {
        trigger: "schedule 0".into(),
        schedule: "0 9 * * MON Europe/Paris".into(),
        occurrence,
        waiting,
        skipped,
    };
    let events = numbered([1]);
    let skip = RunRecord::skipped("a", "the occurrence at 09:00 did not run".into());
    let first = mark(100, vec![90], vec![skip.clone()]);
    let enqueued = store
        .enqueue(NewEvents::of("a", &events).marking(&first))
        .await
        .unwrap();
    let run = enqueued.ids[0].unwrap();
    let state = store.schedule_state("a", "schedule 0").unwrap().unwrap();
    assert_eq!(
        state,
        ScheduleState {
            schedule: "0 9 * * MON Europe/Paris".into(),
            occurrence: 100,
            waiting: vec![90],
            busy: Some(run),
        },
        "the mark, and the run it enqueued as the one in progress, in one write"
    );
    let runs = store.runs(&RunQuery::default()).unwrap();
    assert_eq!(runs.len(), 1);
    let named = RunRecord {
        trigger: Some("schedule 0".into()),
        ..skip
    };
    assert_eq!(
        runs[0].1, named,
        "a skip is a run of the history, with its reason and its schedule"
    );
    // A tick that enqueues nothing leaves the run in progress as it was.
    let second = mark(200, Vec::new(), Vec::new());
    store
        .enqueue(NewEvents::of("a", &[]).marking(&second))
        .await
        .unwrap();
    let state = store.schedule_state("a", "schedule 0").unwrap().unwrap();
    assert_eq!(
        (state.occurrence, state.waiting, state.busy),
        (200, Vec::new(), Some(run))
    );
    // Once the run ends, the schedule is free.
    let owner = alive();
    let claimed = store.claim(&owner, 1, &names(&["a"])).await.unwrap();
    assert_eq!(claimed[0].id, run);
    store.finish(run, Finished::Done.into()).await.unwrap();
    let state = store.schedule_state("a", "schedule 0").unwrap().unwrap();
    assert_eq!(state.busy, None);
    assert_eq!(store.schedule_state("a", "schedule 1").unwrap(), None);
    assert_eq!(store.schedule_state("b", "schedule 0").unwrap(), None);
}

async fn another_integrations_event_is_never_a_schedules_run(fresh: Fresh) {
    // The run's event is pruned once done; an event id may then be given again (SQLite
    // reuses the largest), to another integration's event, which must not hold the schedule.
    let (_dir, store) = fresh();
    let mark = ScheduleMark {
        trigger: "schedule 0".into(),
        schedule: "0 9 * * MON Europe/Paris".into(),
        occurrence: 100,
        waiting: Vec::new(),
        skipped: Vec::new(),
    };
    let events = numbered([1]);
    let enqueued = store
        .enqueue(NewEvents::of("a", &events).marking(&mark))
        .await
        .unwrap();
    let run = enqueued.ids[0].unwrap();
    let owner = alive();
    store.claim(&owner, 1, &names(&["a"])).await.unwrap();
    store.finish(run, Finished::Done.into()).await.unwrap();
    a_second_passes().await;
    store.prune(Duration::ZERO).unwrap();
    for n in 0..3 {
        let other = enqueue(store.as_ref(), "b", &numbered([n])).await;
        let state = store.schedule_state("a", "schedule 0").unwrap().unwrap();
        assert_eq!(
            state.busy, None,
            "event {other:?} of `b` is not the run of `a`'s schedule"
        );
    }
}

async fn a_poll_position_is_kept_per_integration_and_trigger(fresh: Fresh) {
    let (_dir, store) = fresh();
    assert_eq!(store.position("a", "poll 0").unwrap(), None);
    let (page_2, since_9) = (Position::page("page-2"), Position::page("since-9"));
    for (trigger, position) in [("poll 0", &page_2), ("poll 1", &since_9)] {
        let page = NewEvents::of("a", &[]).at(trigger, Some(position));
        store.enqueue(page).await.unwrap();
    }
    let events = numbered([1]);
    let marked = Position {
        page: Some("page-3".into()),
        mark: Some("2026-12-01T00:00:00Z".into()),
        high: Some("2026-12-01T09:30:00.5Z".into()),
        known: Some("2026-12-01T00:10:00Z".into()),
    };
    store
        .enqueue(NewEvents::of("a", &events).at("poll 0", Some(&marked)))
        .await
        .unwrap();
    store
        .enqueue(NewEvents::of("a", &[]).at("poll 1", None))
        .await
        .unwrap();
    assert_eq!(
        store.position("a", "poll 0").unwrap(),
        Some(marked),
        "moved with its page's events, in one write: page, mark, high and known together"
    );
    assert_eq!(
        store.position("a", "poll 1").unwrap(),
        Some(since_9),
        "a page without a position leaves it"
    );
    let ended = Position {
        mark: Some("7".into()),
        ..Position::default()
    };
    let page = NewEvents::of("a", &[]).at("poll 1", Some(&ended));
    store.enqueue(page).await.unwrap();
    assert_eq!(
        store.position("a", "poll 1").unwrap(),
        Some(ended),
        "a pass that ended has no page"
    );
    assert_eq!(store.position("b", "poll 0").unwrap(), None);
    assert_eq!(counts(store.as_ref()), pending(1));
}

async fn a_triggers_own_retention_keeps_its_keys_for_that_long(fresh: Fresh) {
    let (_dir, store) = fresh();
    let keyed = |n: i64| vec![(json!({ "n": n }), Some(format!("key-{n}")))];
    let (short, long, default) = (keyed(1), keyed(2), keyed(3));
    let second = Duration::from_secs(1);
    let year = Duration::from_secs(366 * 24 * 3600);
    for (events, retention) in [
        (&short, Some(second)),
        (&long, Some(year)),
        (&default, None),
    ] {
        let new = NewEvents::of("a", events).kept_for(retention);
        store.enqueue(new).await.unwrap();
    }
    // A second and a bit: the one-second key has ended; the serve retention of an hour
    // keeps the key without one of its own.
    a_second_passes().await;
    a_second_passes().await;
    let pruned = store.prune(Duration::from_secs(3600)).unwrap();
    assert_eq!(pruned.dedupe_keys, 1, "the key kept for a second");
    // A zero serve retention forgets the key without one; the year's key stays.
    let pruned = store.prune(Duration::ZERO).unwrap();
    assert_eq!(pruned.dedupe_keys, 1, "the key of the serve retention");
    let again = [short[0].clone(), long[0].clone(), default[0].clone()];
    let ids = enqueue(store.as_ref(), "a", &again).await;
    assert_eq!(
        ids.len(),
        2,
        "the forgotten keys come again, the year's does not"
    );
}

async fn refresh_tokens_are_kept_per_integration_and_connection(fresh: Fresh) {
    let (_dir, store) = fresh();
    assert_eq!(store.load("a", "crm").unwrap(), None);
    // Sealed tokens are bytes, any bytes.
    let sealed: Vec<u8> = (0..=255).collect();
    store.save("a", "crm", &sealed).unwrap();
    store.save("a", "crm", &sealed[1..]).unwrap();
    store.save("b", "crm", b"other").unwrap();
    assert_eq!(
        store.load("a", "crm").unwrap().as_deref(),
        Some(&sealed[1..])
    );
    assert_eq!(
        store.load("b", "crm").unwrap().as_deref(),
        Some(&b"other"[..])
    );
    assert_eq!(store.load("a", "mail").unwrap(), None);
}

async fn alert_counts_read_a_window_of_an_integrations_runs(fresh: Fresh) {
    let (_dir, store) = fresh();
    let now = now();
    let mut retried = run("a", "succeeded", now - 10);
    (retried.retries, retried.rate_limited) = (3, 2);
    for record in [
        retried,
        run("a", "failed", now - 5),
        run("a", "dead_lettered", now),
        run("a", "dead_lettered", now - 3600),
        run("b", "dead_lettered", now),
    ] {
        store.record_run(&record).unwrap();
    }
    let counts = store.alert_counts("a", now - 60).unwrap();
    let expected = AlertCounts {
        dead_letters: 1,
        failed_runs: 2,
        retries: 3,
        rate_limited: 2,
    };
    assert_eq!(counts, expected);
    assert_eq!(store.alert_counts("c", 0).unwrap(), AlertCounts::default());
}

async fn an_alerts_status_and_the_status_notified_are_kept_apart(fresh: Fresh) {
    let (_dir, store) = fresh();
    let alert = AlertKey {
        integration: "a",
        alert: "x > 0",
    };
    let status = |status, value| AlertChange::Status { status, value };
    let notified = |status, error| AlertChange::Notified { status, error };
    assert_eq!(store.alerts().unwrap(), Vec::new());
    store
        .save_alert(alert, status(AlertStatus::Firing, 3))
        .unwrap();
    let kept = store.alerts().unwrap();
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0].owed(), Some(AlertStatus::Firing));
    assert_eq!(kept[0].value, 3);
    store
        .save_alert(alert, notified(AlertStatus::Firing, None))
        .unwrap();
    assert_eq!(store.alerts().unwrap()[0].owed(), None);
    // A status change leaves what was notified as it was: the resolved message is owed.
    store.save_alert(alert, status(AlertStatus::Ok, 0)).unwrap();
    let kept = &store.alerts().unwrap()[0];
    assert_eq!(
        (kept.status, kept.notified),
        (AlertStatus::Ok, AlertStatus::Firing)
    );
    store
        .save_alert(alert, notified(AlertStatus::Ok, Some("status 500")))
        .unwrap();
    let kept = &store.alerts().unwrap()[0];
    assert_eq!(kept.owed(), None);
    assert_eq!(kept.error.as_deref(), Some("status 500"));
    let other = AlertKey {
        integration: "a",
        alert: "y > 0",
    };
    store
        .save_alert(other, status(AlertStatus::Firing, 1))
        .unwrap();
    store.forget_alert(alert).unwrap();
    let kept = store.alerts().unwrap();
    assert_eq!(kept.len(), 1, "only the alert forgotten goes");
    assert_eq!(kept[0].alert, "y > 0");
    store.rename_alert(other, "y/slack").unwrap();
    let kept = store.alerts().unwrap();
    assert_eq!(kept.len(), 1);
    assert_eq!(
        (kept[0].alert.as_str(), kept[0].status),
        ("y/slack", AlertStatus::Firing),
        "the state goes with the key"
    );
}

/// The SQLite store, in a folder of its own.
mod sqlite {
    use super::super::{Location, Store, open};
    use std::sync::Arc;
    use tempfile::TempDir;

    fn fresh() -> (TempDir, Arc<dyn Store>) {
        let dir = tempfile::tempdir().unwrap();
        let store = open(&Location::Sqlite(dir.path().join("state.db"))).unwrap();
        (dir, store)
    }

    conformance!(fresh);
}
