//! Where a poll stands between two pages: the page to ask for next and, for an incremental
//! poll, the mark of the pass being read (one result set, page after page) and the largest
//! mark seen in it so far.
//!
//! The mark moves only when a pass ends, to the largest value its items held that was
//! there when the pass began: never to a clock reading (a long round would skip what
//! changed while it ran), never in the middle of a pass (its later pages may hold smaller
//! values), never backwards, and never past the clock at the start of the round (an item
//! stamped in the future would hide everything until then). Each page's `Pass` is stored
//! in the write of that page's events, so a crash resumes at the last committed page, with
//! the mark the pass started from.
//!
//! Why "there when the pass began": a row committed late during a pass, stamped up to the
//! look-back before the newest row then, may fall behind the cursor. The next pass asks
//! from the new mark less the look-back, which reaches it only if the new mark is no later
//! than the newest row when the pass began. A pass that lasts (chasing new rows, failing
//! and retried, spread over rounds or processes) sees rows far newer than that; its
//! largest value would skip the late row for good.

use crate::model::{Mark, MarkType};
use crate::store::Position;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Pass {
    /// The next page of the pass; `None`: its first.
    pub page: Option<String>,
    /// What the pass asks from (less the look-back); `None` before any mark is known.
    pub mark: Option<Mark>,
    /// The largest mark seen in the pass so far.
    pub high: Option<Mark>,
    /// The largest mark known to be there when the pass began: what the passes before it
    /// saw, and the items of its first page. The mark moves no further when it ends.
    pub known: Option<Mark>,
}

impl Pass {
    /// The stored position of a poll whose marks are of type `kind` (`None`: a plain poll).
    pub fn read(position: Option<Position>, kind: Option<MarkType>) -> Result<Self, String> {
        let position = position.unwrap_or_default();
        let mark = |text: Option<String>| match (kind, text) {
            (Some(kind), Some(text)) => kind.from_stored(&text).map(Some).map_err(|e| {
                format!(
                    "the stored mark `{text}` cannot be read: {e} (was the mark's type changed?)"
                )
            }),
            _ => Ok(None),
        };
        Ok(Self {
            page: position.page,
            mark: mark(position.mark)?,
            high: mark(position.high)?,
            known: mark(position.known)?,
        })
    }

    pub fn stored(&self) -> Position {
        Position {
            page: self.page.clone(),
            mark: self.mark.map(Mark::stored),
            high: self.high.map(Mark::stored),
            known: self.known.map(Mark::stored),
        }
    }

    /// Whether the poll has neither a mark nor a pass under way: its first round, which
    /// starts from `start`. A stored mark always wins over `start`, so that a `start` that
    /// reads the clock is read once, not at every pass (after an outage longer than its
    /// reach, the rows in between would be skipped).
    pub fn awaits_start(&self) -> bool {
        self.mark.is_none() && self.page.is_none()
    }

    /// The pass after a page whose items' largest mark was `seen`, and whose answer named
    /// `next` (`None`: the pass ended). `ceiling` is the clock at the start of the round,
    /// for time marks. `incremental`: a plain poll keeps its last page when the answer
    /// names none (its list grows at the end); an incremental one starts a new pass.
    pub fn after(
        &self,
        next: Option<String>,
        seen: Option<Mark>,
        ceiling: Option<Mark>,
        incremental: bool,
    ) -> Self {
        let high = self.high.max(seen);
        // The first page's items were there when the pass began.
        let known = match self.page {
            None => self.known.max(seen),
            Some(_) => self.known,
        };
        match next {
            Some(page) => Self {
                page: Some(page),
                mark: self.mark,
                high,
                known,
            },
            None if incremental => {
                // `None` (nothing seen, or nothing known) leaves the mark where it is.
                let reach = high.min(known);
                let reach = match ceiling {
                    Some(ceiling) => reach.map(|reach| reach.min(ceiling)),
                    None => reach,
                };
                Self {
                    page: None,
                    mark: self.mark.max(reach),
                    high: None,
                    // All this pass saw is there before the next one begins.
                    known: known.max(high),
                }
            }
            None => self.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(n: i64) -> Option<Mark> {
        Some(Mark::Integer(n))
    }

    fn pass(page: Option<&str>, mark: Option<Mark>, high: Option<Mark>) -> Pass {
        Pass {
            page: page.map(String::from),
            mark,
            high,
            known: None,
        }
    }

    /// A pass between two others, its first page read: `known` is what was there.
    fn known(pass: Pass, known: Option<Mark>) -> Pass {
        Pass { known, ..pass }
    }

    #[test]
    fn the_mark_moves_only_when_the_pass_ends_to_the_largest_seen_in_any_page() {
        let start = pass(None, at(10), None);
        // Out of order: page 1 holds 30, page 2 holds 20.
        let one = start.after(Some("p2".into()), at(30), None, true);
        assert_eq!(
            one,
            known(pass(Some("p2"), at(10), at(30)), at(30)),
            "mid-pass: the mark stays"
        );
        let two = one.after(None, at(20), None, true);
        assert_eq!(two, known(pass(None, at(30), None), at(30)));
    }

    #[test]
    fn a_pass_ends_at_most_at_what_was_there_when_it_began() {
        // Its first page holds 12; later pages 40 and 50, come while it ran.
        let start = pass(None, at(10), None);
        let one = start.after(Some("p2".into()), at(12), None, true);
        let two = one.after(Some("p3".into()), at(40), None, true);
        let ended = two.after(None, at(50), None, true);
        assert_eq!(
            ended,
            known(pass(None, at(12), None), at(50)),
            "a row committed late behind the cursor, stamped after 12 less the \
             look-back, is asked for by the next pass"
        );
        // The next pass: all the last one saw was there when it began.
        let next = ended.after(Some("p2".into()), at(13), None, true);
        assert_eq!(next.after(None, at(51), None, true).mark, at(50));
    }

    #[test]
    fn a_pass_that_saw_no_mark_or_smaller_ones_keeps_its_mark() {
        let start = pass(None, at(10), None);
        assert_eq!(start.after(None, None, None, true), start);
        assert_eq!(
            start.after(None, at(3), None, true).mark,
            at(10),
            "never backwards"
        );
    }

    #[test]
    fn a_time_mark_never_passes_the_clock_at_the_start_of_the_round() {
        let time = |s: &str| Some(MarkType::Rfc3339.read(&s.into()).unwrap());
        let start = pass(None, time("2026-12-01T00:00:00Z"), None);
        let now = time("2026-12-01T10:00:00Z");
        // Klaviyo's scheduled events: stamped hours ahead.
        let ended = start.after(None, time("2026-12-02T00:00:00Z"), now, true);
        assert_eq!(ended.mark, now);
    }

    #[test]
    fn a_plain_poll_keeps_its_last_page() {
        let start = pass(Some("p7"), None, None);
        assert_eq!(start.after(None, None, None, false), start);
    }

    #[test]
    fn only_a_poll_without_a_mark_or_a_pass_under_way_reads_its_start() {
        assert!(pass(None, None, None).awaits_start());
        assert!(!pass(None, at(5), None).awaits_start());
        assert!(!pass(Some("p2"), None, at(7)).awaits_start());
    }

    #[test]
    fn a_position_round_trips_and_an_unreadable_mark_says_so() {
        let kept = known(pass(Some("p2"), at(0), at(-4)), at(-6));
        let read = Pass::read(Some(kept.stored()), Some(MarkType::Integer)).unwrap();
        assert_eq!(read, kept);
        let stored = Position {
            mark: Some("2026-12-01T00:00:00Z".into()),
            ..Position::default()
        };
        let error = Pass::read(Some(stored), Some(MarkType::Integer)).unwrap_err();
        assert!(error.contains("2026-12-01T00:00:00Z"), "{error}");
    }
}
