//! Progress through many items (`integ run` over many events, a poll's first backfill under
//! `integ serve`): a bar on a terminal (indicatif), on standard error; plain lines, at most
//! one a second and a last one, when standard error is a pipe or a file.

use crate::serve::Backfill;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How often a pipe gets a line.
const LINE_EVERY: Duration = Duration::from_secs(1);

/// Progress through `total` items (`None`: not known ahead, as a backfill's pages).
#[derive(Debug)]
pub(super) struct Progress {
    what: String,
    total: Option<u64>,
    done: u64,
    shown: Shown,
}

#[derive(Debug)]
enum Shown {
    Bar(ProgressBar),
    Lines { last: Option<Instant> },
}

impl Progress {
    /// A bar when standard error is a terminal, lines otherwise.
    pub(super) fn new(what: &str, total: Option<u64>) -> Self {
        Self::to(what, total, std::io::stderr().is_terminal())
    }

    fn to(what: &str, total: Option<u64>, terminal: bool) -> Self {
        let shown = if terminal {
            let bar = match total {
                Some(total) => {
                    ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr())
                        .with_style(
                            ProgressStyle::with_template(
                                "{bar:30} {pos}/{len} {prefix} {msg} ({eta} left)",
                            )
                            .unwrap_or_else(|_| ProgressStyle::default_bar()),
                        )
                }
                None => ProgressBar::new_spinner().with_style(
                    ProgressStyle::with_template("{spinner} {pos} {prefix} {msg}")
                        .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                ),
            };
            bar.set_prefix(what.to_string());
            Shown::Bar(bar)
        } else {
            Shown::Lines { last: None }
        };
        Self {
            what: what.to_string(),
            total,
            done: 0,
            shown,
        }
    }

    /// `n` more items done; `note` says how they went so far.
    pub(super) fn advance(&mut self, n: u64, note: &str) {
        self.done = self.done.saturating_add(n);
        match &mut self.shown {
            Shown::Bar(bar) => {
                bar.set_position(self.done);
                bar.set_message(note.to_string());
            }
            Shown::Lines { last } => {
                if last.is_none_or(|at| at.elapsed() >= LINE_EVERY) {
                    *last = Some(Instant::now());
                    line(&self.what, self.done, self.total, note);
                }
            }
        }
    }

    /// Writes `text` to standard output without tearing the bar.
    pub(super) fn print(&self, write: impl FnOnce() -> std::io::Result<()>) -> std::io::Result<()> {
        match &self.shown {
            Shown::Bar(bar) => bar.suspend(write),
            Shown::Lines { .. } => write(),
        }
    }

    /// The end: the bar goes, a pipe gets the last line.
    pub(super) fn finish(self, note: &str) {
        match self.shown {
            Shown::Bar(bar) => bar.finish_and_clear(),
            Shown::Lines { .. } => line(&self.what, self.done, self.total, note),
        }
    }
}

fn line(what: &str, done: u64, total: Option<u64>, note: &str) {
    let of = total.map(|t| format!("/{t}")).unwrap_or_default();
    let _ = writeln!(std::io::stderr().lock(), "{done}{of} {what} {note}");
}

/// Polls' backfills under `integ serve` on a terminal: a spinner for each, with its pages
/// and events, above the log lines; the end is logged as without a terminal.
#[derive(Debug, Default)]
pub(super) struct Spinners {
    multi: MultiProgress,
    /// Each poll backfilling: its spinner and its events so far.
    bars: Mutex<HashMap<(String, String), (ProgressBar, u64)>>,
}

impl Spinners {
    /// The log's writer: standard error, with the spinners put aside while a line is
    /// written, so that neither tears the other.
    pub(super) fn writer(&self) -> impl Fn() -> Paused + Send + Sync + 'static {
        let multi = self.multi.clone();
        move || Paused(multi.clone())
    }
}

impl Backfill for Spinners {
    fn page(&self, integration: &str, trigger: &str, pages: u64, events: u64) {
        let Ok(mut bars) = self.bars.lock() else {
            return;
        };
        let (bar, seen) = bars
            .entry((integration.to_string(), trigger.to_string()))
            .or_insert_with(|| {
                let style = ProgressStyle::with_template(
                    "{spinner} backfill {prefix}: {pos} page(s), {msg}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_spinner());
                let bar = self.multi.add(ProgressBar::new_spinner().with_style(style));
                bar.set_prefix(format!("{integration} {trigger}"));
                bar.enable_steady_tick(Duration::from_millis(120));
                (bar, 0)
            });
        *seen = events;
        bar.set_position(pages);
        bar.set_message(format!("{events} event(s)"));
    }

    fn ended(&self, integration: &str, trigger: &str) {
        let bar = self
            .bars
            .lock()
            .ok()
            .and_then(|mut bars| bars.remove(&(integration.to_string(), trigger.to_string())));
        if let Some((bar, events)) = bar {
            bar.finish_and_clear();
            self.multi.remove(&bar);
            let pages = bar.position();
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

/// Standard error for the log, the spinners paused around each write.
#[derive(Debug)]
pub(super) struct Paused(MultiProgress);

impl Write for Paused {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.suspend(|| std::io::stderr().write(buf))
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}
