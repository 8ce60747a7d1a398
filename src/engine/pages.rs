//! `per_page`: a paged step's pages handed, as each arrives, to the steps right after it
//! that declare `per_page STEP`, instead of collected first. Memory holds one page (and what
//! its steps return for it) at a time, and the first record is delivered after the first
//! page, not after the last.
//!
//! After each `per_page` step on a page, the run is checkpointed within the page (its items,
//! what its steps returned, where the next page starts); once the page is done, at the
//! position of the next page. A run resumed under `integ serve` (after a crash or a
//! deferral) goes on after the last step that ran: it neither delivers the pages before
//! again nor sends a page's earlier steps again (a `POST` without a key would create its
//! records twice). Only the step in flight runs again.

use super::Engine;
use super::http::{HttpError, Request, Response};
use super::report::{RequestReport, RunOutcome, StepReport};
use super::run::{
    PAGE_LIMIT, Page, StepEnd, StepError, empty_note, per_page_steps, position, shown_url,
    start_page,
};
use super::url;
use crate::model::Outcome;
use crate::plan::{Clock, Scope, StepPlan};
use serde_json::{Map, Value as Json, json};
use std::collections::HashMap;
use std::ops::Range;

/// The most requests one step's report lists when it runs per page; the rest are counted,
/// so that a report stays small however many pages there are.
const LISTED_REQUESTS: usize = 100;

/// The most pages `step` reads: its `max_pages`, else the engine's limit.
fn page_limit(step: &StepPlan) -> u32 {
    step.pagination
        .as_ref()
        .and_then(|p| p.max_pages)
        .map_or(PAGE_LIMIT, |n| n.get())
}

/// The checkpoint that holds where a paged step's next page starts: `NAME#page`, which no
/// step name can be.
pub(super) fn page_key(step: &str) -> String {
    format!("{step}#page")
}

impl Engine {
    /// Runs the paged step `at` and its `per_page` steps (`members`): each page's items are
    /// `$STEP` for the members while they run on that page, then dropped. Returns a report
    /// per step (merged over the pages) and, when the run must stop, how it ends.
    // The run's state, its checkpoints and its clock, as `resume` holds them.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn per_page<Checkpointed: Future<Output = ()>>(
        &self,
        at: usize,
        event: &Json,
        results: &mut Map<String, Json>,
        done: &Map<String, Json>,
        guessed: &[&str],
        checkpoint: &mut impl FnMut(&str, Option<&Json>) -> Checkpointed,
        clock: Clock,
    ) -> (Vec<StepReport>, Option<RunOutcome>) {
        let steps = &self.plan().steps;
        let source = &steps[at];
        let members = per_page_steps(steps, at);
        let mut merged = Merged::new(source, &steps[members.clone()]);
        let first = {
            let scope = Scope::of_step(event, results, self.secrets(), clock);
            let when = source
                .when
                .as_ref()
                .map(|when| when.test(&self.plan().templates, &scope));
            match when {
                Some(Ok(false)) => return (merged.not_run("`when` was false"), None),
                Some(Err(error)) => Err(StepError::from(error)),
                _ => self.request(source, &scope),
            }
        };
        let mut request = match first {
            Ok(request) => request,
            Err(error) => {
                return self
                    .source_failed(at, merged, event, results, error, clock)
                    .await;
            }
        };
        let Some(pagination) = &source.pagination else {
            let error = StepError::NotAList("nothing");
            return self
                .source_failed(at, merged, event, results, error, clock)
                .await;
        };
        start_page(&pagination.style, &mut request);
        let key = page_key(&source.name);
        let mut page = 1;
        // A page partly handled when the run stopped: handled on from its checkpoint.
        let mut within = None;
        match done
            .get(&key)
            .and_then(|saved| self.resumed(source, &request, saved))
        {
            Some(Resumed::Page(resumed, from)) => {
                request = resumed;
                page = from;
                merged.resumed_at(page);
            }
            Some(Resumed::Within(from, partly)) => {
                page = from;
                merged.resumed_at(page);
                within = Some(partly);
            }
            None => {}
        }
        let mut asked = HashMap::new();
        if within.is_none() {
            asked.insert(position(&request), page);
        }
        let mut stop = None;
        loop {
            let (next, from) = if let Some(partly) = within.take() {
                partly.restore(&source.name, &steps[members.clone()], results)
            } else {
                let scope = Scope::of_step(event, results, self.secrets(), clock);
                let (result, report) = self.exchange(source, &request, &scope).await;
                merged.request(0, report);
                let read = result.and_then(|response| {
                    self.page_items(
                        source,
                        &request,
                        response,
                        page,
                        Scope::of_step(event, results, self.secrets(), clock),
                    )
                });
                match read {
                    Ok(PageRead {
                        items,
                        next,
                        warnings,
                    }) => {
                        for warning in warnings {
                            merged.warn(0, Some(warning));
                        }
                        results.insert(source.name.clone(), Json::Array(items));
                        (next, 0)
                    }
                    Err(StepError::Http(error @ HttpError::WaitTooLong { asked, .. }))
                        if self.options.defer_long_waits =>
                    {
                        // Nothing of this page was handed on: the event comes back to it.
                        let wait = asked.min(super::limits::MAX_PAUSE);
                        merged.deferred(0, &error);
                        return (merged.finish(), Some(RunOutcome::Deferred { wait }));
                    }
                    Err(error) => {
                        return self
                            .source_failed(at, merged, event, results, error, clock)
                            .await;
                    }
                }
            };
            // A page without items is not handed on: its steps would send an empty batch.
            let empty = results
                .get(&source.name)
                .and_then(Json::as_array)
                .is_none_or(Vec::is_empty);
            let ended = if empty {
                None
            } else {
                merged.page();
                let run = PageRun {
                    source: &source.name,
                    members: members.clone(),
                    from,
                    key: &key,
                    page,
                    // Where the next page starts, as a checkpoint within this one says it;
                    // `None` when it cannot be kept (it holds a secret).
                    next: match &next {
                        Some(next) => page
                            .checked_add(1)
                            .and_then(|after| self.saved(next, after)),
                        None => Some(Json::Null),
                    },
                };
                self.page_steps(
                    &run,
                    event,
                    results,
                    guessed,
                    &mut merged,
                    checkpoint,
                    clock,
                )
                .await
            };
            results.remove(&source.name);
            for member in &steps[members.clone()] {
                results.remove(&member.name);
            }
            if let Some(ended) = ended {
                stop = Some(ended);
                if !self.options.dry_run {
                    break;
                }
            }
            let Some(next) = next else { break };
            // No overflow: a next page exists only below the page limit.
            page = page.saturating_add(1);
            if let Some(earlier) = asked.insert(position(&next), page) {
                let error = StepError::PageLoop {
                    page,
                    earlier,
                    url: shown_url(&next.url),
                };
                return self
                    .source_failed(at, merged, event, results, error, clock)
                    .await;
            }
            if let Some(saved) = self.saved(&next, page) {
                checkpoint(&key, Some(&saved)).await;
            }
            request = next;
        }
        (merged.finish(), stop)
    }

    /// Runs the `per_page` steps on the page in `results` from `run.from` on, each
    /// checkpointed within the page; how the run ends if one of them stops it.
    #[allow(clippy::too_many_arguments)]
    async fn page_steps<Checkpointed: Future<Output = ()>>(
        &self,
        run: &PageRun<'_>,
        event: &Json,
        results: &mut Map<String, Json>,
        guessed: &[&str],
        merged: &mut Merged,
        checkpoint: &mut impl FnMut(&str, Option<&Json>) -> Checkpointed,
        clock: Clock,
    ) -> Option<RunOutcome> {
        let mut stop = None;
        // Whether the steps before this one on the page are checkpointed.
        let mut kept = false;
        for (slot, index) in run.members.clone().enumerate().skip(run.from) {
            let member = &self.plan().steps[index];
            // Deferred, the page runs again from its first step not checkpointed: a step
            // may defer only if it is that step, so that none is sent again.
            let may_defer = slot == run.from || kept;
            let ended = match self
                .run_step(member, event, results, guessed, may_defer, clock)
                .await
            {
                StepEnd::Ran(report) => {
                    let ended = match report.outcome {
                        Outcome::Failed => Some(RunOutcome::Failed),
                        Outcome::DeadLettered => Some(RunOutcome::DeadLettered),
                        Outcome::Succeeded | Outcome::Skipped | Outcome::FellBack => None,
                    };
                    merged.add(slot + 1, report);
                    ended
                }
                StepEnd::Deferred(report, wait) => {
                    merged.add(slot + 1, report);
                    Some(RunOutcome::Deferred { wait })
                }
            };
            if let Some(ended) = ended {
                stop.get_or_insert(ended);
                if !self.options.dry_run {
                    break;
                }
            } else if index + 1 < run.members.end && !self.options.dry_run {
                kept = self.checkpoint_within(run, slot, results, checkpoint).await;
            }
        }
        stop
    }

    /// Checkpoints the page within, after the step at `slot` ran: the page's items, what
    /// its steps up to that one returned, and where the next page starts. Whether it was
    /// kept: not when it would hold a secret (the state file never holds one; a resumed run
    /// then goes back to the last checkpoint kept).
    async fn checkpoint_within<Checkpointed: Future<Output = ()>>(
        &self,
        run: &PageRun<'_>,
        slot: usize,
        results: &Map<String, Json>,
        checkpoint: &mut impl FnMut(&str, Option<&Json>) -> Checkpointed,
    ) -> bool {
        let steps = &self.plan().steps;
        let Some(next) = &run.next else {
            return false;
        };
        let source = run.source;
        let ran: Map<String, Json> = run
            .members
            .clone()
            .take(slot + 1)
            .map(|index| {
                let name = &steps[index].name;
                (
                    name.clone(),
                    results.get(name).cloned().unwrap_or(Json::Null),
                )
            })
            .collect();
        let saved = json!({
            "page": run.page,
            "items": results.get(source).cloned().unwrap_or(Json::Null),
            "ran": ran,
            "next": next,
        });
        if self.secrets().redact_json(&saved) != saved {
            tracing::info!(step = %source, "a page, or what its steps returned, holds a secret; not checkpointed within the page");
            return false;
        }
        checkpoint(run.key, Some(&saved)).await;
        true
    }

    /// The items of one page and the request of the next (none after the last page), with
    /// a warning when the page limit cut an API that had more.
    fn page_items(
        &self,
        step: &StepPlan,
        request: &Request,
        response: Response,
        page: u32,
        scope: Scope<'_>,
    ) -> Result<PageRead, StepError> {
        let Some(pagination) = &step.pagination else {
            return Err(StepError::NotAList("nothing"));
        };
        let limit = page_limit(step);
        let env = &self.plan().templates;
        if response.empty {
            // "Nothing here": no items, and no next page.
            return Ok(PageRead {
                items: Vec::new(),
                next: None,
                warnings: vec![empty_note(response.status)],
            });
        }
        let mut warnings = Vec::new();
        let body = self.body_of(step, response.body.clone(), &mut warnings)?;
        let page_scope = Scope {
            document: &body,
            ..scope
        };
        let items = match pagination.items.eval(env, &page_scope)? {
            Some(Json::Array(items)) => items,
            Some(Json::Null) | None => Vec::new(),
            Some(one) => vec![one],
        };
        let more = match &pagination.has_more {
            Some(more) => more.test(env, &page_scope)?,
            None => true,
        };
        if self.options.dry_run || !more {
            return Ok(PageRead {
                items,
                next: None,
                warnings,
            });
        }
        let seen = Page {
            response: &response,
            scope: &page_scope,
            number: page,
            items: items.len() as u64,
            has_more: pagination.has_more.is_some(),
        };
        let mut next = request.clone();
        let beyond = self.advance(step, &pagination.style, &mut next, &seen)?;
        if page >= limit {
            let cut = (pagination.max_pages.is_none() && beyond).then(|| {
                format!(
                    "stopped after {PAGE_LIMIT} pages, the limit without `max_pages`, \
                     although the API had more"
                )
            });
            return Ok(PageRead {
                items,
                next: None,
                warnings: warnings.into_iter().chain(cut).collect(),
            });
        }
        Ok(PageRead {
            items,
            next: beyond.then_some(next),
            warnings,
        })
    }

    /// The paged step failed: its `on_error` decides, and the `per_page` steps that no page
    /// reached say so.
    async fn source_failed(
        &self,
        at: usize,
        mut merged: Merged,
        event: &Json,
        results: &mut Map<String, Json>,
        error: StepError,
        clock: Clock,
    ) -> (Vec<StepReport>, Option<RunOutcome>) {
        let source = &self.plan().steps[at];
        let report = self
            .after_failure(source, event, results, Vec::new(), error, clock)
            .await;
        // A fallback's result is not a page: nothing after reads it.
        results.remove(&source.name);
        let stop = match report.outcome {
            Outcome::Failed => Some(RunOutcome::Failed),
            Outcome::DeadLettered => Some(RunOutcome::DeadLettered),
            Outcome::Succeeded | Outcome::Skipped | Outcome::FellBack => None,
        };
        merged.add(0, report);
        (merged.finish(), stop)
    }

    /// Where the next page starts, to checkpoint: its number, URL and GraphQL variables.
    /// `None` when they hold a secret (a key in the query): the state file never holds one,
    /// and a resumed run then starts again from the first page.
    fn saved(&self, next: &Request, page: u32) -> Option<Json> {
        let variables = next
            .body
            .as_ref()
            .filter(|_| next.graphql)
            .and_then(|b| b.get("variables"))
            .cloned()
            .unwrap_or_default();
        let saved = json!({ "page": page, "url": next.url.as_str(), "variables": variables });
        if self.secrets().redact_json(&saved) != saved {
            tracing::info!("the next page's position holds a secret; not checkpointed");
            return None;
        }
        Some(saved)
    }

    /// Where a resumed run goes on, from the page checkpoint `saved`: a page to fetch, or
    /// a page partly handled. `None` (with a warning) for one that does not read.
    fn resumed(&self, step: &StepPlan, first: &Request, saved: &Json) -> Option<Resumed> {
        let Some(items) = saved.get("items") else {
            return self
                .page_at(step, first, saved)
                .map(|(request, page)| Resumed::Page(request, page));
        };
        let page = saved
            .get("page")
            .and_then(Json::as_u64)
            .and_then(|p| u32::try_from(p).ok())
            .filter(|p| *p >= 1 && *p <= page_limit(step));
        let ran = saved.get("ran").and_then(Json::as_object);
        let next = match saved.get("next") {
            Some(Json::Null) => Some(None),
            Some(next) => self
                .page_at(step, first, next)
                .map(|(request, _)| Some(request)),
            None => None,
        };
        let (Some(page), Some(ran), Some(next)) = (page, ran, next) else {
            tracing::warn!(step = %step.name, "a checkpoint within a page that does not read; starting from the first page");
            return None;
        };
        let within = Within {
            items: items.clone(),
            ran: ran.clone(),
            next,
        };
        Some(Resumed::Within(page, within))
    }

    /// The request of the page `saved` names, and its number; held to the connection's
    /// base URL like a next link.
    fn page_at(&self, step: &StepPlan, first: &Request, saved: &Json) -> Option<(Request, u32)> {
        let page = saved
            .get("page")
            .and_then(Json::as_u64)
            .and_then(|p| u32::try_from(p).ok())
            // A page the step could reach: from the state file, it is held to the limit.
            .filter(|p| *p >= 2 && *p <= page_limit(step));
        let link = saved.get("url").and_then(Json::as_str);
        let (Some(page), Some(link)) = (page, link) else {
            tracing::warn!(step = %step.name, "a page checkpoint that does not read; starting from the first page");
            return None;
        };
        let base = &self.connections[step.connection].base;
        let mut request = first.clone();
        match url::next_link(base, &first.url, link) {
            Ok(at) => request.url = at,
            Err(error) => {
                tracing::warn!(step = %step.name, %error, "a page checkpoint off the connection; starting from the first page");
                return None;
            }
        }
        if let (Some(variables), Some(body)) = (
            saved.get("variables").filter(|v| v.is_object()),
            request.body.as_mut().filter(|_| first.graphql),
        ) && let Json::Object(fields) = body
        {
            fields.insert("variables".into(), variables.clone());
        }
        Some((request, page))
    }
}

/// Where a resumed run goes on.
enum Resumed {
    /// Fetch this page, numbered so.
    Page(Request, u32),
    /// Handle on this page, numbered so, from its checkpoint.
    Within(u32, Within),
}

/// A page partly handled when the run stopped, as its checkpoint holds it.
struct Within {
    items: Json,
    /// What the page's first `per_page` steps returned (null: nothing).
    ran: Map<String, Json>,
    /// The request of the page after it, if any.
    next: Option<Request>,
}

impl Within {
    /// Puts the page and what its steps returned back in `results`; the request of the
    /// next page, and the slot of the first step still to run.
    fn restore(
        self,
        source: &str,
        members: &[StepPlan],
        results: &mut Map<String, Json>,
    ) -> (Option<Request>, usize) {
        let from = members
            .iter()
            .take_while(|m| self.ran.contains_key(&m.name))
            .count();
        results.insert(source.to_string(), self.items);
        for member in &members[..from] {
            if let Some(result) = self.ran.get(&member.name).filter(|r| !r.is_null()) {
                results.insert(member.name.clone(), result.clone());
            }
        }
        (self.next, from)
    }
}

/// One page's `per_page` steps: the paged step, its `per_page` steps and the first still
/// to run on the page, and what a checkpoint within it says.
struct PageRun<'a> {
    /// The paged step.
    source: &'a str,
    members: Range<usize>,
    from: usize,
    key: &'a str,
    page: u32,
    /// Where the next page starts (null after the last); `None` when it cannot be kept.
    next: Option<Json>,
}

/// One page read: its items, the request of the next page (none after the last), and a
/// warnings (partial GraphQL data accepted, the page limit cut an API that had more).
struct PageRead {
    items: Vec<Json>,
    next: Option<Request>,
    warnings: Vec<String>,
}

/// The reports of a paged step and its `per_page` steps, each merged over the pages: the
/// gravest outcome, the first `LISTED_REQUESTS` requests and a count of the others.
struct Merged {
    reports: Vec<StepReport>,
    /// Whether each step ran on some page (the paged step always has).
    ran: Vec<bool>,
    unlisted: Vec<usize>,
    pages: u32,
    resumed_at: Option<u32>,
}

impl Merged {
    fn new(source: &StepPlan, members: &[StepPlan]) -> Self {
        let report = |step: &StepPlan, outcome| StepReport {
            name: step.name.clone(),
            outcome,
            requests: Vec::new(),
            error: None,
            note: None,
            fallback: None,
            warnings: Vec::new(),
        };
        let reports: Vec<StepReport> = std::iter::once(report(source, Outcome::Succeeded))
            .chain(members.iter().map(|m| report(m, Outcome::Skipped)))
            .collect();
        let mut ran = vec![false; reports.len()];
        ran[0] = true;
        Self {
            unlisted: vec![0; reports.len()],
            reports,
            ran,
            pages: 0,
            resumed_at: None,
        }
    }

    fn request(&mut self, slot: usize, request: RequestReport) {
        if self.reports[slot].requests.len() < LISTED_REQUESTS {
            self.reports[slot].requests.push(request);
        } else {
            self.unlisted[slot] = self.unlisted[slot].saturating_add(1);
        }
    }

    fn warn(&mut self, slot: usize, warning: Option<String>) {
        if let Some(warning) = warning
            && !self.reports[slot].warnings.contains(&warning)
        {
            self.reports[slot].warnings.push(warning);
        }
    }

    fn page(&mut self) {
        self.pages = self.pages.saturating_add(1);
    }

    fn resumed_at(&mut self, page: u32) {
        self.resumed_at = Some(page);
    }

    fn deferred(&mut self, slot: usize, error: &dyn std::fmt::Display) {
        let report = &mut self.reports[slot];
        report.outcome = Outcome::Failed;
        report.error = Some(format!("deferred: {error}"));
    }

    /// Merges one page's report of step `slot`.
    fn add(&mut self, slot: usize, report: StepReport) {
        let StepReport {
            outcome,
            requests,
            error,
            note,
            fallback,
            warnings,
            ..
        } = report;
        let graver = gravity(outcome, error.is_some());
        let merged = &mut self.reports[slot];
        if !self.ran[slot] || graver > gravity(merged.outcome, merged.error.is_some()) {
            merged.outcome = outcome;
            merged.error = error;
            merged.note = note;
            merged.fallback = fallback;
        }
        self.ran[slot] = true;
        for request in requests {
            self.request(slot, request);
        }
        for warning in warnings {
            self.warn(slot, Some(warning));
        }
    }

    /// Every step's report when the paged step did not run: each skipped, saying why.
    fn not_run(mut self, why: &str) -> Vec<StepReport> {
        let source = self.reports[0].name.clone();
        for (slot, report) in self.reports.iter_mut().enumerate() {
            report.outcome = Outcome::Skipped;
            report.note = Some(if slot == 0 {
                why.to_string()
            } else {
                format!("runs per page of `{source}`, which was skipped")
            });
        }
        self.reports
    }

    fn finish(mut self) -> Vec<StepReport> {
        let source = self.reports[0].name.clone();
        let members: Vec<String> = self.reports[1..]
            .iter()
            .map(|r| format!("`{}`", r.name))
            .collect();
        let resumed = self
            .resumed_at
            .map(|page| format!(", resumed at page {page}"))
            .unwrap_or_default();
        if self.reports[0].note.is_none() {
            self.reports[0].note = Some(format!(
                "{} page(s){resumed}, each handed to {} as it arrived",
                self.pages,
                members.join(", ")
            ));
        }
        for (slot, report) in self.reports.iter_mut().enumerate() {
            if !self.ran[slot] {
                report.note = Some(format!("no page of `{source}` reached it"));
            }
            if self.unlisted[slot] > 0 {
                report.warnings.push(format!(
                    "{} more requests, not listed: a step run per page lists its first {LISTED_REQUESTS}",
                    self.unlisted[slot]
                ));
            }
        }
        self.reports
    }
}

/// How grave an outcome is, to merge the pages' outcomes of a step: a step skipped by its
/// `when` on every page was skipped; one that failed on any page failed.
fn gravity(outcome: Outcome, with_error: bool) -> u8 {
    match outcome {
        Outcome::Skipped if !with_error => 0,
        Outcome::Succeeded => 1,
        Outcome::FellBack => 2,
        Outcome::Skipped => 3,
        Outcome::Failed => 4,
        Outcome::DeadLettered => 5,
    }
}
