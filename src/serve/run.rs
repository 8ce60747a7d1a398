//! One inbox event's run: checkpoints as it goes, then its end and its history record.

use super::Service;
use crate::engine::{Engine, RunOutcome, RunReport};
use crate::store::{DeadLetter, Ending, Finished, RunRecord};
use crate::telemetry::labels::{DeadLetterType, RunOutcome as Ended, StepOutcome, StoreOp};
use serde_json::Value as Json;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// Numbers the runs of this process, for the logs.
static RUNS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// How many runs of one event the process may stop during (a crash, a kill, a power cut)
/// before the event is dead-lettered instead of run again: an event whose run kills the
/// process would otherwise kill it at every start, forever.
const MAX_INTERRUPTED_RUNS: u32 = 5;

/// How long after it came an event may still be put back to wait for the time an API asks
/// for: an API that keeps asking past it is not going to answer, and an event deferred
/// forever would come back every hour, never to end.
const MAX_DEFERRAL: Duration = Duration::from_secs(24 * 3600);

/// Runs an inbox event and ends it in the store; answers whether it left the backlog (see
/// `end`).
pub(super) async fn run_item(
    service: &Service,
    engine: &Engine,
    item: crate::store::InboxItem,
) -> bool {
    let (store, calls) = (service.store.clone(), service.store_calls.clone());
    let id = item.id;
    let span = tracing::info_span!("run", integration = %item.integration, event = id, run = RUNS.fetch_add(1, Ordering::Relaxed));
    let _entered = span.clone().entered();
    // Every claim but this one ended without the event finishing.
    let interrupted = item.attempts.saturating_sub(1);
    if interrupted >= MAX_INTERRUPTED_RUNS {
        tracing::error!(
            interrupted_runs = interrupted,
            "the process stopped during every earlier run of this event; dead-lettered, not run"
        );
        drop(_entered);
        let tally = Tally {
            ended: Ended::DeadLettered,
            letter: Letter::Interrupted,
            took: None,
            came: (item.committed, item.created_at),
        };
        let letter = DeadLetter::interrupted(
            &item.integration,
            &item.event,
            interrupted,
            engine.secrets(),
        );
        let run = RunRecord::interrupted(&item.integration, id, interrupted);
        let ending = Ending::new(Finished::DeadLettered(Box::new(letter)), Some(run));
        return end_counted(service, engine, id, ending, tally).await;
    }
    let resumed = item.done.len();
    let came = (item.committed, item.created_at);
    tracing::debug!(resumed_steps = resumed, "run started");
    drop(_entered);
    let report = tracing::Instrument::instrument(
        engine.resume(&item.event, item.done, |step, result| {
            // Kept on disk until the event ends, longer if it is deferred: redacted, as all
            // that is kept. (A later step that reads a credential an API echoed back reads
            // it redacted after a resume; the state file never holds it.)
            let result = result.map(|r| engine.secrets().redact_json(r));
            let written = store.checkpoint(id, step, result.as_ref());
            let step = step.to_string();
            let calls = calls.clone();
            async move {
                if let Err(error) = calls.call(StoreOp::Checkpoint, written).await {
                    // The step is not lost: a resumed run does it again.
                    tracing::error!(event = id, step, %error, "cannot checkpoint a step; a resumed run repeats it");
                }
            }
        }),
        span.clone(),
    )
    .await;
    let _entered = span.entered();
    log_run(&report, resumed);
    let finished = ending(&report, &item.event, engine.secrets());
    let mut run = RunRecord::from_run(&report, engine.secrets(), Some(id));
    let mut too_long = false;
    let finished = match finished {
        Finished::Deferred { not_before }
            if not_before.saturating_sub(item.created_at) > MAX_DEFERRAL.as_secs() as i64 =>
        {
            tracing::error!("deferred past 24 h since the event came; dead-lettered");
            run.outcome = "dead_lettered".into();
            too_long = true;
            deferred_too_long(&report, &item.event, engine.secrets())
        }
        other => other,
    };
    for step in &report.steps {
        engine
            .metrics()
            .stepped(&step.name, step_outcome(step.outcome));
    }
    let tally = Tally::of(&finished, too_long, report.duration, came);
    drop(_entered);
    // Encoded here, on this worker, not on the store's one writer.
    let ending = Ending::new(finished, Some(run));
    end_counted(service, engine, id, ending, tally).await
}

/// Ends the event (see `end`) and counts its run once the end is kept: a run whose end
/// the store refused is counted by the store's errors (and logged), then again when its
/// event runs again; never as a dead letter that is not there.
async fn end_counted(
    service: &Service,
    engine: &Engine,
    id: i64,
    ending: Ending,
    tally: Tally,
) -> bool {
    let ended = end(service, id, ending).await;
    if ended {
        tally.count(engine);
    }
    ended
}

/// How long ago an event came in: to the millisecond when this process committed it,
/// else from the second the store kept.
fn since((committed, created_at): (Option<Instant>, i64)) -> Duration {
    committed.map_or_else(
        || {
            Duration::from_secs(
                u64::try_from(crate::store::now().saturating_sub(created_at)).unwrap_or(0),
            )
        },
        |at| at.elapsed(),
    )
}

/// What a run's end counts, once it is kept: the run by outcome, its dead letter, and
/// the time from its event's commit (see `since`) to then.
struct Tally {
    ended: Ended,
    letter: Letter,
    took: Option<Duration>,
    came: (Option<Instant>, i64),
}

/// The dead letter a run's end counts.
enum Letter {
    None,
    /// Left at this step, for this reason.
    At(String, DeadLetterType),
    /// The process stopped during every run of the event.
    Interrupted,
}

impl Tally {
    fn of(
        finished: &Finished,
        too_long: bool,
        took: Duration,
        came: (Option<Instant>, i64),
    ) -> Self {
        let (ended, letter) = match finished {
            Finished::Done => (Ended::Succeeded, Letter::None),
            Finished::Failed => (Ended::Failed, Letter::None),
            Finished::DeadLettered(letter) => {
                let kind = if too_long {
                    DeadLetterType::DeferredTooLong
                } else {
                    DeadLetterType::of(letter.status)
                };
                (Ended::DeadLettered, Letter::At(letter.step.clone(), kind))
            }
            Finished::Deferred { .. } => (Ended::Deferred, Letter::None),
        };
        Self {
            ended,
            letter,
            took: Some(took),
            came,
        }
    }

    fn count(self, engine: &Engine) {
        let metrics = engine.metrics();
        match &self.letter {
            Letter::None => {}
            Letter::At(step, kind) => metrics.dead_lettered(step, *kind),
            Letter::Interrupted => metrics.interrupted(),
        }
        metrics.ran(self.ended, self.took, Some(since(self.came)));
    }
}

fn step_outcome(outcome: crate::model::Outcome) -> StepOutcome {
    use crate::model::Outcome;
    match outcome {
        Outcome::Succeeded => StepOutcome::Succeeded,
        Outcome::Skipped => StepOutcome::Skipped,
        Outcome::Failed => StepOutcome::Failed,
        Outcome::DeadLettered => StepOutcome::DeadLettered,
        Outcome::FellBack => StepOutcome::FellBack,
    }
}

/// The dead letter of an event an API kept asking to wait for past `MAX_DEFERRAL`.
fn deferred_too_long(
    report: &RunReport,
    event: &Json,
    secrets: &crate::secrets::Secrets,
) -> Finished {
    let Some(step) = report.steps.last() else {
        return Finished::Failed;
    };
    let mut letter = DeadLetter::from_run(report, step, event, secrets);
    letter.error = format!(
        "{}; the API asked to wait past 24 h since the event came, so it is not put back again",
        letter.error
    );
    Finished::DeadLettered(Box::new(letter))
}

/// How long the end of a run is tried again while the store refuses it (a disk full or
/// busy for a while) before its event is put back to run again.
const END_PATIENCE: Duration = Duration::from_secs(60);

/// Ends inbox event `id` as `ending` says, with its history record: run with its results,
/// the run of a deferred event included, it leaves the backlog of events due. Answers
/// whether it did.
/// An end the store refuses is tried again for `END_PATIENCE`, then the event is put back
/// to run again (its request may go twice; its end is never lost), for else it would stay
/// running under this process, which never runs it again before a restart.
pub(super) async fn end(service: &Service, id: i64, ending: Ending) -> bool {
    let started = Instant::now();
    let mut delay = Duration::from_millis(100);
    loop {
        let finish = service.store.finish(id, ending.clone());
        let Err(error) = service.store_calls.call(StoreOp::Finish, finish).await else {
            return true;
        };
        if started.elapsed() >= END_PATIENCE {
            tracing::error!(event = id, %error, "cannot record the end of the run; the event is put back to run again");
            break;
        }
        tracing::warn!(event = id, %error, "cannot record the end of the run; trying again in {delay:?}");
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(5));
    }
    let unclaim = service.store.unclaim(&service.owner, &[id]);
    if let Err(error) = service.store_calls.call(StoreOp::Unclaim, unclaim).await {
        tracing::error!(event = id, %error, "cannot put the event back either; it runs again at the next start");
    }
    false
}

/// One line for the run at `info` (with the failing step's error), one per step at
/// `debug`, a warning for each step warning; inside the run's span.
fn log_run(report: &RunReport, resumed: usize) {
    for step in &report.steps {
        let error = step.error.as_deref().unwrap_or("");
        tracing::debug!(step = %step.name, outcome = step.outcome.as_str(), requests = step.requests.len(), error, "step");
        for warning in &step.warnings {
            tracing::warn!(step = %step.name, warning, "step warning");
        }
    }
    let outcome = serde_json::to_value(report.outcome)
        .ok()
        .and_then(|v| v.as_str().map(String::from));
    let (outcome, duration_ms) = (
        outcome.unwrap_or_default(),
        report.duration.as_millis() as u64,
    );
    let steps = report.steps.len();
    match report.steps.iter().find(|s| s.error.is_some()) {
        None => tracing::info!(
            outcome,
            duration_ms,
            steps,
            resumed_steps = resumed,
            "run finished"
        ),
        Some(failed) => tracing::info!(
            outcome,
            duration_ms,
            steps,
            resumed_steps = resumed,
            failed_step = %failed.name,
            error = failed.error.as_deref().unwrap_or(""),
            "run finished"
        ),
    }
}

/// How the inbox event of a run ends; a dead-lettered one carries its dead letter.
fn ending(report: &RunReport, event: &Json, secrets: &crate::secrets::Secrets) -> Finished {
    match report.outcome {
        RunOutcome::Succeeded => Finished::Done,
        RunOutcome::Deferred { wait } => Finished::deferred(wait),
        RunOutcome::Failed => Finished::Failed,
        RunOutcome::DeadLettered => report
            .steps
            .iter()
            .find(|s| s.outcome == crate::model::Outcome::DeadLettered)
            .map_or(Finished::Failed, |step| {
                let letter = DeadLetter::from_run(report, step, event, secrets);
                Finished::DeadLettered(Box::new(letter))
            }),
    }
}
