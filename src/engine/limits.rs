//! What keeps a connection within its API's limits, shared by every step that uses it:
//! the declared rate (GCRA, governor), the maximum concurrency, a pause learned from the
//! API (a 429, or `X-RateLimit-Remaining: 0`) that holds every caller until the reset, and
//! the circuit breaker.

use crate::model::{CircuitBreaker, RateLimit};
use crate::telemetry::{ConnectionMetrics, labels::BreakerState as Circuit};
use governor::{DefaultDirectRateLimiter, Quota};
use reqwest::header::HeaderMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// When a 429 names no wait, the connection pauses this long.
const DEFAULT_PAUSE: Duration = Duration::from_secs(1);
/// The longest an API may pause a connection. A longer wait (a daily quota's reset, or a
/// nonsense `Retry-After: 18446744073709551615`) is cut to this: the call after it asks
/// the API again, and learns the rest of the wait then.
pub const MAX_PAUSE: Duration = Duration::from_secs(60 * 60);

#[derive(Debug)]
pub struct Limits {
    /// The rate in force: the declared one, or a tighter one the API announced.
    rate: Mutex<Option<Rate>>,
    concurrency: Option<Arc<Semaphore>>,
    /// Until when every caller waits: set from 429s and exhausted rate-limit headers.
    paused_until: Mutex<Option<Instant>>,
    breaker: Option<Breaker>,
    metrics: Arc<ConnectionMetrics>,
}

#[derive(Debug, Clone)]
struct Rate {
    declared: RateLimit,
    /// The count in force: the declared count, or less once the API said so.
    count: u32,
    limiter: Arc<DefaultDirectRateLimiter>,
}

/// Requests are spaced this much (0.5 %) more than `per / count` apart, so that network jitter
/// cannot put `count + 1` arrivals in one window at the API.
const SPACING_MARGIN: f64 = 1.005;

impl Rate {
    fn new(declared: RateLimit, count: NonZeroU32) -> Option<Self> {
        // Spaced `per / count` apart, no window of `per` holds more than `count`, whether the
        // API counts in fixed or sliding windows. A declared burst lets that many go at once
        // after a quiet spell, which the API must then allow.
        let period = declared
            .per
            .div_f64(f64::from(count.get()) / SPACING_MARGIN);
        let burst = declared
            .burst
            .map_or(NonZeroU32::MIN, |burst| burst.min(count));
        let quota = Quota::with_period(period)?.allow_burst(burst);
        Some(Self {
            declared,
            count: count.get(),
            limiter: Arc::new(DefaultDirectRateLimiter::direct(quota)),
        })
    }
}

/// Takes a rate token, waiting for it only until `deadline`: `Err` names the wait left,
/// `Ok` whether it waited.
async fn take_within(
    limiter: &DefaultDirectRateLimiter,
    deadline: Option<Instant>,
) -> Result<bool, Duration> {
    use governor::clock::Clock;
    let mut waited = false;
    loop {
        let Err(not_until) = limiter.check() else {
            return Ok(waited);
        };
        let wait = not_until.wait_time_from(limiter.clock().now());
        let ready = Instant::now().checked_add(wait);
        if ready.is_none() || deadline.is_some_and(|deadline| ready > Some(deadline)) {
            return Err(wait);
        }
        waited = true;
        tokio::time::sleep(wait).await;
    }
}

/// Held for the duration of one request.
#[derive(Debug)]
pub struct Slot {
    _permit: Option<OwnedSemaphorePermit>,
    /// Whether the request waited for the rate or a pause (the `rate_limited` alerts
    /// count), not only for a free slot.
    pub rate_limited: bool,
}

impl Limits {
    pub fn new(
        rate: Option<RateLimit>,
        concurrency: Option<u32>,
        breaker: Option<&CircuitBreaker>,
        metrics: Arc<ConnectionMetrics>,
    ) -> Self {
        Self {
            rate: Mutex::new(rate.and_then(|limit| Rate::new(limit, limit.count))),
            concurrency: concurrency.map(|n| Arc::new(Semaphore::new(n as usize))),
            paused_until: Mutex::new(None),
            breaker: breaker.map(Breaker::new),
            metrics,
        }
    }

    /// Waits until a request may go: the pause over, a concurrency slot free, a rate token
    /// taken (in that order, so a paused connection does not burn its tokens). A pause the
    /// API set is waited for at most `patience` in all: `Err` names the rest of it, and the
    /// caller does not hold its worker that long.
    pub async fn acquire(&self, patience: Duration) -> Result<Slot, Duration> {
        let started = Instant::now();
        let (slot, crowded) = self.acquire_slot(patience).await?;
        self.metrics
            .waited(started.elapsed(), slot.rate_limited || crowded);
        Ok(slot)
    }

    /// `acquire`, and whether a full concurrency held the call back (the slot itself says
    /// whether a pause or the rate did).
    async fn acquire_slot(&self, patience: Duration) -> Result<(Slot, bool), Duration> {
        let deadline = Instant::now().checked_add(patience);
        let mut paced = false;
        loop {
            let pause = self.paused_until.lock().ok().and_then(|until| *until);
            let Some(until) = pause.filter(|until| *until > Instant::now()) else {
                break;
            };
            if deadline.is_some_and(|deadline| until > deadline) {
                return Err(until.saturating_duration_since(Instant::now()));
            }
            paced = true;
            tokio::time::sleep_until(until.into()).await;
        }
        let mut crowded = false;
        let permit = match &self.concurrency {
            Some(semaphore) => match semaphore.clone().try_acquire_owned() {
                Ok(permit) => Some(permit),
                Err(_) => {
                    crowded = true;
                    semaphore.clone().acquire_owned().await.ok()
                }
            },
            None => None,
        };
        let rate = self.rate.lock().ok().and_then(|rate| {
            let rate = rate.as_ref()?;
            Some((rate.limiter.clone(), rate.count < rate.declared.count.get()))
        });
        match rate {
            // A rate the API tightened is a wait the API asks for: bounded like a pause.
            Some((limiter, true)) => paced |= take_within(&limiter, deadline).await?,
            Some((limiter, false)) if limiter.check().is_err() => {
                paced = true;
                limiter.until_ready().await;
            }
            Some(_) | None => {}
        }
        let slot = Slot {
            _permit: permit,
            rate_limited: paced,
        };
        Ok((slot, crowded))
    }

    /// Learns from a response: a 429, or no requests left in the API's window, pauses the
    /// whole connection until the reset the response names; a limit the API announces
    /// (`X-RateLimit-Limit`, `RateLimit-Limit`) below the declared count tightens the rate
    /// for the declared window. The pause lasts at most `MAX_PAUSE`.
    pub fn observe(&self, status: u16, headers: &HeaderMap, reset: Option<Duration>) {
        let number = |names: [&str; 2]| {
            names
                .iter()
                .find_map(|name| headers.get(*name))
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.split([',', ';']).next()?.trim().parse::<u64>().ok())
        };
        if let Some(announced) = number(["x-ratelimit-limit", "ratelimit-limit"]) {
            self.tighten(announced);
        }
        let remaining = number(["x-ratelimit-remaining", "ratelimit-remaining"]);
        let exhausted = status == 429 || remaining == Some(0);
        if !exhausted {
            return;
        }
        self.pause(reset.unwrap_or(DEFAULT_PAUSE));
    }

    /// Holds every call on the connection for `wait` (at most `MAX_PAUSE`), or longer when
    /// it is already paused longer.
    pub fn pause(&self, wait: Duration) {
        let Some(until) = Instant::now().checked_add(wait.min(MAX_PAUSE)) else {
            return;
        };
        if let Ok(mut paused) = self.paused_until.lock() {
            let until = paused.map_or(until, |current| current.max(until));
            *paused = Some(until);
            self.metrics
                .paused_for(until.saturating_duration_since(Instant::now()));
        }
    }

    fn tighten(&self, announced: u64) {
        let Ok(mut rate) = self.rate.lock() else {
            return;
        };
        let Some(current) = rate.as_ref() else { return };
        let Some(count) = u32::try_from(announced).ok().and_then(NonZeroU32::new) else {
            return;
        };
        if count.get() < current.count
            && let Some(tighter) = Rate::new(current.declared, count)
        {
            *rate = Some(tighter);
        }
    }

    pub fn breaker(&self) -> Option<&Breaker> {
        self.breaker.as_ref()
    }

    /// Exports the breaker's state, after a call it admitted or refused, or whose outcome
    /// it recorded.
    pub fn show_breaker(&self) {
        if let Some(breaker) = &self.breaker {
            self.metrics.breaker(breaker.state());
        }
    }

    /// How much longer the pause an API asked for holds every call, if one does.
    pub fn paused_for(&self) -> Option<Duration> {
        let until = self.paused_until.lock().ok().and_then(|until| *until)?;
        Some(until.saturating_duration_since(Instant::now())).filter(|left| !left.is_zero())
    }
}

/// A circuit breaker: after enough consecutive failures (or too high a failure ratio over
/// a window) it opens and calls fail fast; after the cool-down one probe goes through, and
/// its outcome closes or reopens the circuit.
#[derive(Debug)]
pub struct Breaker {
    failures: u32,
    ratio: Option<(f64, Duration, u32)>,
    cooldown: Duration,
    state: Mutex<BreakerState>,
}

#[derive(Debug, Default)]
struct BreakerState {
    consecutive: u32,
    /// Outcomes within the ratio window: (when, failed).
    recent: Vec<(Instant, bool)>,
    open_until: Option<Instant>,
    probing: bool,
}

impl Breaker {
    fn new(config: &CircuitBreaker) -> Self {
        let ratio = config
            .ratio
            .as_ref()
            .map(|r| (r.percent / 100.0, r.window, r.min_calls_in_force().value));
        Self {
            failures: config.failures_in_force().map_or(u32::MAX, |n| n.value),
            ratio,
            cooldown: config.cooldown_in_force().value,
            state: Mutex::default(),
        }
    }

    /// Whether calls fail fast now (open, or half-open with its probe out).
    pub fn is_open(&self) -> bool {
        self.state
            .lock()
            .is_ok_and(|state| state.open_until.is_some())
    }

    /// Closed, open (failing fast), or half-open (its probe out, or due).
    fn state(&self) -> Circuit {
        let Ok(state) = self.state.lock() else {
            return Circuit::Closed;
        };
        match state.open_until {
            None => Circuit::Closed,
            Some(_) if state.probing => Circuit::HalfOpen,
            Some(until) if Instant::now() >= until => Circuit::HalfOpen,
            Some(_) => Circuit::Open,
        }
    }

    /// `Err(wait)` while the circuit is open: the call fails fast, to be retried after `wait`.
    pub fn admit(&self) -> Result<(), Duration> {
        let Ok(mut state) = self.state.lock() else {
            return Ok(());
        };
        let Some(until) = state.open_until else {
            return Ok(());
        };
        let now = Instant::now();
        if now < until {
            return Err(until - now);
        }
        if state.probing {
            return Err(self.cooldown.min(Duration::from_secs(1)));
        }
        state.probing = true;
        Ok(())
    }

    /// Records a call's outcome; failures are server errors, 429s, timeouts and connection
    /// failures, not the client's own 4xx mistakes.
    pub fn record(&self, failed: bool) {
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        let now = Instant::now();
        if state.probing {
            state.probing = false;
            state.consecutive = u32::from(failed);
            state.recent.clear();
            state.open_until = failed.then(|| now + self.cooldown);
            return;
        }
        state.consecutive = if failed {
            state.consecutive.saturating_add(1)
        } else {
            0
        };
        let mut trip = state.consecutive >= self.failures;
        if let Some((ratio, window, min_calls)) = self.ratio {
            state
                .recent
                .retain(|(at, _)| now.duration_since(*at) <= window);
            state.recent.push((now, failed));
            let failures = state.recent.iter().filter(|(_, failed)| *failed).count();
            let calls = state.recent.len();
            trip |= calls >= min_calls as usize && failures as f64 / calls as f64 >= ratio;
        }
        if trip {
            state.open_until = Some(now + self.cooldown);
            state.recent.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::num::NonZeroU32;

    #[tokio::test]
    async fn a_rate_the_api_tightened_is_waited_for_no_longer_than_a_pause() {
        let declared = RateLimit {
            count: NonZeroU32::new(10).unwrap(),
            per: Duration::from_secs(60),
            burst: None,
        };
        let limits = Limits::new(Some(declared), None, None, unwatched());
        let mut headers = HeaderMap::new();
        headers.insert("x-ratelimit-limit", "1".parse().unwrap());
        limits.observe(200, &headers, None);
        let patience = Duration::from_millis(100);
        assert!(
            limits.acquire(patience).await.is_ok(),
            "the first token is there"
        );
        // The next comes a minute later, by the API's limit: not waited for.
        let second = tokio::time::timeout(Duration::from_secs(5), limits.acquire(patience))
            .await
            .expect("waited for the API's whole window");
        let wait = second.expect_err("a wait longer than the patience is refused");
        assert!(wait > Duration::from_secs(30), "{wait:?}");
    }

    fn unwatched() -> Arc<ConnectionMetrics> {
        Arc::new(ConnectionMetrics::new("test", "test", false, &[]))
    }

    fn breaker(failures: u32, cooldown: Duration) -> Breaker {
        Breaker::new(&CircuitBreaker {
            failures: NonZeroU32::new(failures),
            ratio: None,
            cooldown: Some(cooldown),
        })
    }

    #[test]
    fn the_breaker_opens_after_consecutive_failures_and_probes_after_the_cooldown() {
        let breaker = breaker(3, Duration::from_millis(50));
        for _ in 0..2 {
            breaker.record(true);
        }
        assert!(breaker.admit().is_ok(), "two failures do not open it");
        breaker.record(true);
        assert!(breaker.admit().is_err(), "the third does");
        std::thread::sleep(Duration::from_millis(60));
        assert!(breaker.admit().is_ok(), "one probe after the cool-down");
        assert!(breaker.admit().is_err(), "and only one");
        breaker.record(false);
        assert!(breaker.admit().is_ok(), "a good probe closes it");
    }

    #[test]
    fn a_failed_probe_reopens_the_circuit() {
        let breaker = breaker(1, Duration::from_millis(30));
        breaker.record(true);
        std::thread::sleep(Duration::from_millis(40));
        assert!(breaker.admit().is_ok());
        breaker.record(true);
        assert!(breaker.admit().is_err());
    }

    #[test]
    fn an_announced_limit_tightens_the_declared_one_but_never_loosens_it() {
        let declared = RateLimit {
            count: NonZeroU32::new(100).unwrap(),
            per: Duration::from_secs(1),
            burst: None,
        };
        let limits = Limits::new(Some(declared), None, None, unwatched());
        let count = || limits.rate.lock().unwrap().as_ref().map(|r| r.count);
        let mut headers = HeaderMap::new();
        headers.insert("x-ratelimit-limit", "50".parse().unwrap());
        limits.observe(200, &headers, None);
        assert_eq!(count(), Some(50));
        headers.insert("x-ratelimit-limit", "500".parse().unwrap());
        limits.observe(200, &headers, None);
        assert_eq!(count(), Some(50));
    }

    #[tokio::test]
    async fn a_pause_the_api_asks_for_is_capped_and_waited_for_only_as_long_as_the_caller_may() {
        let limits = Limits::new(None, None, None, unwatched());
        // The largest `Retry-After` there is: no overflow, and the pause is cut to the cap.
        limits.observe(429, &HeaderMap::new(), Some(Duration::from_secs(u64::MAX)));
        let started = Instant::now();
        let refused = limits.acquire(Duration::from_secs(1)).await;
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "it did not wait"
        );
        let rest = refused.err().unwrap();
        assert!(
            rest > MAX_PAUSE - Duration::from_secs(5) && rest <= MAX_PAUSE,
            "{rest:?}"
        );
    }

    #[tokio::test]
    async fn a_short_pause_is_waited_for() {
        let limits = Limits::new(None, None, None, unwatched());
        limits.observe(429, &HeaderMap::new(), Some(Duration::from_millis(200)));
        let started = Instant::now();
        assert!(limits.acquire(Duration::from_secs(1)).await.is_ok());
        assert!(started.elapsed() >= Duration::from_millis(190));
    }

    #[test]
    fn a_success_resets_the_count() {
        let breaker = breaker(2, Duration::from_secs(10));
        breaker.record(true);
        breaker.record(false);
        breaker.record(true);
        assert!(breaker.admit().is_ok());
    }
}
