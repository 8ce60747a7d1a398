//! The load driver: a fixed number of loops, each doing one job after another until the
//! window closes or the run's cap on jobs is reached; and the knobs that shape the load,
//! read from the environment.

use std::collections::BTreeMap;
use std::future::Future;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Jobs one `drive` starts at most, whatever the window.
const MAX_JOBS: u64 = 2_000_000;
/// How long the jobs in flight when the window closes may take to end (each job bounds
/// its own wait well below this).
const GRACE: Duration = Duration::from_secs(60);

/// Ids for the jobs of every drive of the run: each event is a different contact.
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// What a drive did: how long it took until the last job ended, and how many jobs ended
/// which way.
#[derive(Debug)]
pub struct Tally<K> {
    pub elapsed: Duration,
    pub ends: BTreeMap<K, u64>,
}

impl<K: Ord> Tally<K> {
    /// Jobs that ended as `end`.
    pub fn count(&self, end: &K) -> u64 {
        self.ends.get(end).copied().unwrap_or(0)
    }

    /// Jobs per second that ended as `end`.
    pub fn rate(&self, end: &K) -> f64 {
        self.count(end) as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// Runs `loops` loops of `job(id)` for `window`, and tallies how the jobs ended.
pub async fn drive<K, F, Fut>(loops: usize, window: Duration, job: F) -> Tally<K>
where
    K: Ord + Send + 'static,
    F: Fn(u64) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = K> + Send,
{
    let started = Instant::now();
    let deadline = started + window;
    let begun = Arc::new(AtomicU64::new(0));
    let tasks: Vec<_> = (0..loops)
        .map(|_| {
            let (job, begun) = (job.clone(), begun.clone());
            tokio::spawn(async move {
                let mut ends = BTreeMap::new();
                while Instant::now() < deadline && begun.fetch_add(1, Ordering::Relaxed) < MAX_JOBS
                {
                    let end = job(NEXT_ID.fetch_add(1, Ordering::Relaxed)).await;
                    *ends.entry(end).or_insert(0) += 1;
                }
                ends
            })
        })
        .collect();
    let aborts: Vec<_> = tasks
        .iter()
        .map(tokio::task::JoinHandle::abort_handle)
        .collect();
    let joined = tokio::time::timeout(window + GRACE, futures_util::future::join_all(tasks)).await;
    let Ok(joined) = joined else {
        aborts.iter().for_each(tokio::task::AbortHandle::abort);
        panic!("the load's jobs did not end within {GRACE:?} of the window's end");
    };
    let mut ends = BTreeMap::new();
    for loop_ends in joined {
        for (end, n) in loop_ends.expect("a load loop panicked") {
            *ends.entry(end).or_insert(0) += n;
        }
    }
    Tally {
        elapsed: started.elapsed(),
        ends,
    }
}

/// The knob `INTEG_BENCH_<name>` from the environment, or `default`.
pub fn knob<T: FromStr>(name: &str, default: T) -> T {
    let var = format!("INTEG_BENCH_{name}");
    match std::env::var(&var) {
        Ok(text) => text
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{var}={text:?} does not parse")),
        Err(_) => default,
    }
}

/// The knob `INTEG_BENCH_<name>`, in seconds (fractions allowed), or `default`.
pub fn seconds(name: &str, default: f64) -> Duration {
    let secs: f64 = knob(name, default);
    Duration::try_from_secs_f64(secs)
        .unwrap_or_else(|_| panic!("INTEG_BENCH_{name}={secs} is not a duration in seconds"))
}

/// The concurrency levels to measure (`INTEG_BENCH_CONC`, default "1 32").
pub fn levels() -> Vec<usize> {
    let text: String = knob("CONC", "1 32".to_string());
    let levels: Vec<usize> = text
        .split_whitespace()
        .map(|c| {
            c.parse()
                .ok()
                .filter(|c| *c > 0)
                .unwrap_or_else(|| panic!("INTEG_BENCH_CONC: {c:?} is not a positive count"))
        })
        .collect();
    assert!(!levels.is_empty(), "INTEG_BENCH_CONC names no level");
    levels
}
