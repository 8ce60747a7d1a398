//! Triggers: webhook paths and signatures, poll settings, cron and time zones.

use super::expressions::{Request, Scope};
use super::{Checker, suggest};
use crate::ast::{
    Body, Cursor, Expr, ExprKind, Missed, NextLink, Poll, PollSetting, Schedule, ScheduleSetting,
    Signature, SignatureOption, Trigger, TriggerKind, Webhook, WebhookSetting,
};
use crate::diagnostic::{DiagnosticKind, MISSED_POLICIES, OVERLAP_POLICIES, SIGNATURE_PRESETS};
use crate::model::Overlap;
use std::str::FromStr;
use std::time::Duration;

const SIGNATURE_ENCODINGS: &[&str] = &["hex", "base64"];

/// What trigger expressions read: `$` is the payload (webhooks) or the response (polls);
/// templates read `event`.
pub(super) const TRIGGER_SCOPE: Scope<'static> = Scope {
    steps: None,
    ran: 0,
    current: None,
    item: false,
    event: true,
    answer: false,
    since: false,
    request: None,
};

impl Checker<'_> {
    pub(super) fn trigger(&mut self, trigger: &Trigger) {
        match &trigger.kind {
            TriggerKind::Webhook(webhook) => self.webhook(webhook, trigger.span),
            TriggerKind::Poll(poll) => self.poll(poll, trigger.span),
            TriggerKind::Schedule(schedule) => self.schedule(schedule),
            TriggerKind::Manual => {}
        }
    }

    fn webhook(&mut self, webhook: &Webhook, span: crate::span::Span) {
        self.webhook_path(&webhook.path);
        self.once_each(&webhook.settings);
        // `when` and `dedupe` read the request: its body as `$`, its headers with `header()`.
        let signature_header = webhook.settings.iter().find_map(|s| match &s.node {
            WebhookSetting::Signature(signature) => {
                signature.options.iter().find_map(|o| match &o.node {
                    SignatureOption::Header(name) => Some(name.value.as_str()),
                    _ => None,
                })
            }
            _ => None,
        });
        let request = Scope {
            request: Some(Request { signature_header }),
            ..TRIGGER_SCOPE
        };
        for setting in &webhook.settings {
            match &setting.node {
                WebhookSetting::Signature(signature) => self.signature(signature),
                WebhookSetting::Each(path) => self.path_only(path, "`each`", &TRIGGER_SCOPE),
                WebhookSetting::When(expr) => self.expr(expr, &request),
                WebhookSetting::Dedupe(dedupe) => self.dedupe(dedupe, None, &request),
                WebhookSetting::Tolerance(tolerance) => {
                    let positive = u32::from(!tolerance.is_zero());
                    self.at_least_one("the tolerance", positive, setting.span);
                }
                WebhookSetting::Method(_) | WebhookSetting::Unsigned => {}
            }
        }
        let says_signature = webhook.settings.iter().any(|s| {
            matches!(
                s.node,
                WebhookSetting::Signature(_) | WebhookSetting::Unsigned
            )
        });
        if !says_signature {
            // The header line, `trigger webhook "PATH"`, not the whole block.
            let span = crate::span::Span::new(span.start, webhook.path.span.end);
            self.report(DiagnosticKind::WebhookWithoutSignature, span);
        }
    }

    /// A dedupe key; one that reads the clock differs on every delivery, so it never
    /// catches a duplicate (W018).
    fn signature(&mut self, signature: &Signature) {
        let preset = signature.preset.node.as_str();
        self.credential(&signature.secret, "the signing secret");
        self.expr(&signature.secret, &Scope::default());
        self.once_each(&signature.options);
        if !SIGNATURE_PRESETS.contains(&preset) {
            let suggestion = suggest::closest(preset, SIGNATURE_PRESETS.iter().copied());
            let kind = DiagnosticKind::UnknownSignaturePreset {
                name: preset.to_string(),
                suggestion,
            };
            self.report(kind, signature.preset.span);
            return;
        }
        let generic = preset == "hmac_sha256";
        for option in &signature.options {
            if !generic {
                let kind = DiagnosticKind::SignatureOptionUnused {
                    option: crate::ast::Setting::keyword(&option.node),
                    preset: preset.to_string(),
                };
                self.report(kind, option.span);
            } else if let SignatureOption::Header(name) = &option.node {
                self.header_name(&name.value, name.span);
            } else if let SignatureOption::Encoding(name) = &option.node
                && !SIGNATURE_ENCODINGS.contains(&name.node.as_str())
            {
                let kind = DiagnosticKind::UnknownSignatureEncoding {
                    name: name.node.clone(),
                };
                self.report(kind, name.span);
            }
        }
        let has_header = signature
            .options
            .iter()
            .any(|o| matches!(o.node, SignatureOption::Header(_)));
        if generic && !has_header {
            self.report(
                DiagnosticKind::SignatureWithoutHeader,
                signature.preset.span,
            );
        }
    }

    fn poll(&mut self, poll: &Poll, span: crate::span::Span) {
        self.use_connection(&poll.connection);
        self.once_each(&poll.settings);
        let since = poll.settings.iter().find_map(|s| match &s.node {
            PollSetting::Since(since) => Some(since),
            _ => None,
        });
        // The request reads `since` in an incremental poll; the answer and items never do.
        let request = Scope {
            since: since.is_some(),
            ..TRIGGER_SCOPE
        };
        self.request_path(&poll.path, &request);
        let has = |pick: fn(&PollSetting) -> bool| poll.settings.iter().any(|s| pick(&s.node));
        // The header line, `trigger poll CONNECTION METHOD "path"`, not the whole block.
        let span = crate::span::Span::new(span.start, poll.path.span.end);
        if !has(|s| matches!(s, PollSetting::Every(_))) {
            self.report(DiagnosticKind::PollWithoutInterval, span);
        }
        if !has(|s| matches!(s, PollSetting::Dedupe(_))) {
            match since {
                Some(since) => self.incremental_without_dedupe(since, span),
                None => self.report(DiagnosticKind::PollWithoutDedupe, span),
            }
        }
        let method = poll
            .method
            .as_ref()
            .map_or(crate::ast::Method::Get, |m| m.node);
        for setting in &poll.settings {
            match &setting.node {
                PollSetting::Items(path) => self.path_only(path, "`items`", &TRIGGER_SCOPE),
                PollSetting::Cursor(Cursor::Param(param)) => self.expr(&param.path, &TRIGGER_SCOPE),
                PollSetting::Cursor(Cursor::Body(param)) => {
                    self.expr(&param.path, &TRIGGER_SCOPE);
                    self.sends_body(method, "the cursor", setting.span);
                }
                PollSetting::Cursor(Cursor::NextLink(NextLink::Body(path))) => {
                    self.expr(path, &TRIGGER_SCOPE);
                }
                PollSetting::When(expr) => self.expr(expr, &TRIGGER_SCOPE),
                PollSetting::Dedupe(dedupe) => {
                    self.dedupe(dedupe, Some((poll, since)), &TRIGGER_SCOPE);
                }
                PollSetting::Query(entries) => self.entries(entries, "query parameter", &request),
                PollSetting::Headers(entries) => self.headers(entries, &request),
                PollSetting::Body(body) => {
                    match body {
                        Body::Mapping(assignments) => self.mapping(assignments, &request),
                        Body::Raw(expr) => self.expr(expr, &request),
                    }
                    self.sends_body(method, "the body", setting.span);
                }
                PollSetting::Since(since) => self.since(since, poll),
                PollSetting::Every(every) => {
                    let positive = u32::from(!every.is_zero());
                    self.at_least_one("the poll interval", positive, setting.span);
                }
                // A poll's rules read the answer alone, as its connection's do.
                PollSetting::Rules(rules) => self.rules(rules, &Scope::default(), None),
                PollSetting::Cursor(Cursor::NextLink(NextLink::Header)) => {}
            }
        }
    }

    fn schedule(&mut self, schedule: &Schedule) {
        let parser = croner::parser::CronParser::builder()
            .seconds(croner::parser::Seconds::Optional)
            .build();
        // Parsed as the plan parses it; one that never fires (`0 0 30 2 *`) stops its
        // schedule at start.
        let parsed = parser.parse(&schedule.cron.value);
        let reason = match &parsed {
            Err(error) => Some(error.to_string()),
            Ok(cron) => cron
                .find_next_occurrence(&chrono::Utc::now(), false)
                .err()
                .map(|_| "it never fires".to_string()),
        };
        if let Some(reason) = reason {
            let kind = DiagnosticKind::InvalidCron { reason };
            self.report(kind, schedule.cron.span);
        }
        self.once_each(&schedule.settings);
        for setting in &schedule.settings {
            match &setting.node {
                ScheduleSetting::Timezone(zone) => {
                    if chrono_tz::Tz::from_str(&zone.value).is_err() {
                        let names = chrono_tz::TZ_VARIANTS.iter().map(|tz| tz.name());
                        let suggestion = suggest::closest(&zone.value, names);
                        let kind = DiagnosticKind::UnknownTimezone {
                            name: zone.value.clone(),
                            suggestion,
                        };
                        self.report(kind, zone.span);
                    }
                }
                ScheduleSetting::Event(event) => self.expr(event, &Scope::default()),
                ScheduleSetting::Overlap(name) => {
                    if Overlap::named(&name.node).is_none() {
                        let kind = DiagnosticKind::UnknownOverlapPolicy {
                            name: name.node.clone(),
                            suggestion: suggest::closest(
                                &name.node,
                                OVERLAP_POLICIES.iter().copied(),
                            ),
                        };
                        self.report(kind, name.span);
                    }
                }
                ScheduleSetting::Missed(missed) => {
                    let cron = parsed.as_ref().ok();
                    self.missed(missed, setting.span, cron);
                }
            }
        }
        if let Ok(cron) = &parsed {
            self.daylight_saving(schedule, cron);
        }
    }

    /// W017: a schedule that fires about once a day at a local time its zone skips or
    /// repeats once a year.
    fn daylight_saving(&mut self, schedule: &Schedule, cron: &croner::Cron) {
        let zone = schedule.settings.iter().find_map(|s| match &s.node {
            ScheduleSetting::Timezone(zone) => chrono_tz::Tz::from_str(&zone.value).ok(),
            _ => None,
        });
        let Some(zone) = zone else { return };
        let Some(interval) = shortest_interval(cron) else {
            return;
        };
        if let Some(time) = super::daylight_saving::clash(cron, zone, interval) {
            let kind = DiagnosticKind::ScheduleInDaylightSavingChange {
                cron: schedule.cron.value.clone(),
                zone: zone.name().to_string(),
                time,
            };
            self.report(kind, schedule.cron.span);
        }
    }

    /// `missed POLICY [within D] [max N]`: a known policy, and `all` bounded by a window
    /// and a cap, so that a schedule down for a month does not start thousands of runs.
    fn missed(&mut self, missed: &Missed, span: crate::span::Span, cron: Option<&croner::Cron>) {
        let policy = &missed.policy;
        if !MISSED_POLICIES.contains(&policy.node.as_str()) {
            let kind = DiagnosticKind::UnknownMissedPolicy {
                name: policy.node.clone(),
                suggestion: suggest::closest(&policy.node, MISSED_POLICIES.iter().copied()),
            };
            self.report(kind, policy.span);
            return;
        }
        if policy.node != "all" {
            let options = [
                missed.within.as_ref().map(|w| ("within", w.span)),
                missed.max.as_ref().map(|m| ("max", m.span)),
            ];
            for (option, at) in options.into_iter().flatten() {
                let policy = policy.node.clone();
                self.report(DiagnosticKind::MissedOptionUnused { option, policy }, at);
            }
            return;
        }
        if let Some(max) = &missed.max
            && !(1..=crate::model::Missed::MOST).contains(&max.node)
        {
            let most = crate::model::Missed::MOST;
            let kind = DiagnosticKind::MadeUpOutOfRange {
                max: max.node,
                most,
            };
            self.report(kind, max.span);
        }
        let Some(within) = &missed.within else {
            self.report(DiagnosticKind::MissedAllWithoutWindow, span);
            return;
        };
        self.at_least_one("the window", u32::from(!within.node.is_zero()), within.span);
        if let Some(interval) = cron.and_then(shortest_interval)
            && !within.node.is_zero()
            && within.node < interval
        {
            let kind = DiagnosticKind::WindowShorterThanInterval {
                window: super::policy::format_duration(within.node),
                interval: super::policy::format_duration(interval),
            };
            self.report(kind, within.span);
        }
    }
}

/// The shortest time between two of the next occurrences of `cron` (UTC), if it fires
/// twice: the widest window that can still hold only one.
pub(super) fn shortest_interval(cron: &croner::Cron) -> Option<Duration> {
    let start = chrono::Utc::now();
    let times: Vec<_> = cron.clone().iter_after(start).take(64).collect();
    times
        .windows(2)
        .filter_map(|pair| (pair[1] - pair[0]).to_std().ok())
        .min()
}

/// The span of a template inside `expr` that calls `now()`.
pub(super) fn reads_clock(expr: &Expr) -> Option<crate::span::Span> {
    match &expr.kind {
        ExprKind::Template(text) => {
            let at = text.value.find("now(")?;
            Some(text.span_of(at..at + 5))
        }
        ExprKind::Array(items) => items.iter().find_map(reads_clock),
        ExprKind::Object(fields) => fields.iter().find_map(|(_, value)| reads_clock(value)),
        ExprKind::Not(inner) => reads_clock(inner),
        ExprKind::Binary { lhs, rhs, .. } => reads_clock(lhs).or_else(|| reads_clock(rhs)),
        ExprKind::Call { args, .. } => args.iter().find_map(reads_clock),
        _ => None,
    }
}
