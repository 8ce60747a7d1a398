//! A poll's backfill: its first round, from no stored position, may read everything the
//! API holds, page after page. It reports how far it got as it goes: by default as log
//! lines (at most one a second for each poll, and one at the end); `integ serve` on a
//! terminal draws a spinner for each instead (`Service::report_backfill`).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Hears how backfills go.
pub trait Backfill: Send + Sync + std::fmt::Debug {
    /// Poll `trigger` of `integration` committed a page of its backfill: `pages` and
    /// `events` so far.
    fn page(&self, integration: &str, trigger: &str, pages: u64, events: u64);
    /// A round of poll `trigger` ended (a backfill's, or any other, which is ignored).
    fn ended(&self, integration: &str, trigger: &str);
}

/// Backfills as log lines.
#[derive(Debug, Default)]
pub struct Logged {
    going: Mutex<HashMap<(String, String), Going>>,
}

/// A poll backfilling: when it last logged, its pages and events so far.
#[derive(Debug, Clone, Copy, Default)]
struct Going {
    logged: Option<Instant>,
    pages: u64,
    events: u64,
}

/// How often a backfill logs how far it got.
const EVERY: Duration = Duration::from_secs(1);

impl Backfill for Logged {
    fn page(&self, integration: &str, trigger: &str, pages: u64, events: u64) {
        let Ok(mut going) = self.going.lock() else {
            return;
        };
        let key = (integration.to_string(), trigger.to_string());
        let now = going.entry(key).or_default();
        let due = now.logged.is_none_or(|at| at.elapsed() >= EVERY);
        *now = Going {
            logged: if due {
                Some(Instant::now())
            } else {
                now.logged
            },
            pages,
            events,
        };
        if due {
            tracing::info!(
                integration,
                trigger,
                pages,
                events,
                "backfill: the poll's first round goes on"
            );
        }
    }

    fn ended(&self, integration: &str, trigger: &str) {
        let ended =
            self.going.lock().ok().and_then(|mut going| {
                going.remove(&(integration.to_string(), trigger.to_string()))
            });
        if let Some(Going { pages, events, .. }) = ended {
            tracing::info!(
                integration,
                trigger,
                pages,
                events,
                "backfill: the poll's first round ended"
            );
        }
    }
}
