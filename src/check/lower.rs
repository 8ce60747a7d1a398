//! AST to checked model, for a spec the checks passed: settings resolved with their
//! defaults, closed sets turned into enums.
//!
//! Every conversion here was validated by a check, so a failure is a bug in integ; it is
//! reported as an internal error at the offending span, never a panic.

use crate::ast::{self, ConnectionSetting, PollSetting, Setting, StepSetting, WebhookSetting};
use crate::diagnostic::{Diagnostic, DiagnosticKind};
use crate::model::{self, Defaults, Encoding, RetryPolicy};
use crate::span::{Span, Spanned};
use std::num::NonZeroU32;
use std::str::FromStr;

/// A check let through what lowering cannot represent.
#[derive(Debug)]
pub struct Unchecked {
    span: Span,
    what: &'static str,
}

impl From<Unchecked> for Diagnostic {
    fn from(bug: Unchecked) -> Self {
        let what = format!("the checker let through {}", bug.what);
        Diagnostic::new(DiagnosticKind::InternalError(what), bug.span)
    }
}

type Lowered<T> = Result<T, Unchecked>;

fn unchecked<T>(span: Span, what: &'static str) -> Lowered<T> {
    Err(Unchecked { span, what })
}

fn non_zero(value: u32, span: Span) -> Lowered<NonZeroU32> {
    NonZeroU32::new(value).map_or_else(|| unchecked(span, "a zero limit"), Ok)
}

/// The first setting `pick` accepts; the checker made sure there is at most one.
fn find<'a, S: Setting, T>(
    settings: &'a [Spanned<S>],
    pick: impl Fn(&'a S) -> Option<T>,
) -> Option<T> {
    settings.iter().find_map(|s| pick(&s.node))
}

pub fn integration(spec: &ast::Integration) -> Lowered<model::Integration> {
    let defaults = defaults(spec)?;
    let steps = |steps: &[ast::Step]| {
        steps
            .iter()
            .map(|s| step(s, &defaults))
            .collect::<Lowered<Vec<_>>>()
    };
    let connections = spec
        .connections
        .iter()
        .map(connection)
        .collect::<Lowered<Vec<_>>>()?;
    Ok(model::Integration {
        name: spec.name.node.clone(),
        description: spec.description.first().map(|t| t.value.clone()),
        owner: spec.owner.first().map(|t| t.value.clone()),
        tags: spec
            .tags
            .iter()
            .flat_map(|t| &t.node)
            .map(|t| t.value.clone())
            .collect(),
        concurrency: spec
            .concurrency
            .first()
            .map(|c| non_zero(c.node, c.span))
            .transpose()?,
        triggers: spec.triggers.iter().map(trigger).collect::<Lowered<_>>()?,
        steps: steps(&spec.steps)?,
        fallbacks: steps(&spec.fallbacks)?,
        alerts: spec.alerts.iter().map(alert).collect::<Lowered<_>>()?,
        environments: spec
            .environments
            .iter()
            .map(|e| environment(e, &connections))
            .collect::<Lowered<_>>()?,
        tests: spec.tests.iter().map(test).collect::<Lowered<_>>()?,
        connections,
        defaults,
    })
}

/// The integration's `defaults { }`, resolved.
fn defaults(spec: &ast::Integration) -> Lowered<Defaults> {
    let settings = &spec.defaults;
    let retry = find(settings, |s| match s {
        ast::PolicySetting::Retry(retry) => Some(retry),
        _ => None,
    });
    let on_error = find(settings, |s| match s {
        ast::PolicySetting::OnError(on_error) => Some(on_error),
        _ => None,
    });
    Ok(Defaults {
        retry: retry.map(retry_policy).transpose()?,
        on_error: on_error.map(on_error_action).transpose()?,
        timeout: find(settings, |s| match s {
            ast::PolicySetting::Timeout(timeout) => Some(*timeout),
            _ => None,
        }),
    })
}

fn connection(connection: &ast::Connection) -> Lowered<model::Connection> {
    let settings = &connection.settings;
    let Some(base_url) = find(settings, |s| match s {
        ConnectionSetting::BaseUrl(url) => Some(url.clone()),
        _ => None,
    }) else {
        return unchecked(connection.name.span, "a connection without base_url");
    };
    let mut lowered = model::Connection {
        name: connection.name.node.clone(),
        base_url,
        auth: model::Auth::None,
        headers: Vec::new(),
        connect_timeout: None,
        timeout: None,
        rate_limit: None,
        encoding: Encoding::Json,
        max_concurrency: None,
        circuit_breaker: None,
        rules: Vec::new(),
    };
    for setting in settings {
        apply(&mut lowered, &setting.node, setting.span)?;
    }
    Ok(lowered)
}

/// Sets one connection setting; environments apply their overrides the same way.
pub fn apply(
    connection: &mut model::Connection,
    setting: &ConnectionSetting,
    span: Span,
) -> Lowered<()> {
    match setting {
        ConnectionSetting::BaseUrl(url) => connection.base_url = url.clone(),
        ConnectionSetting::Auth(auth) => connection.auth = lower_auth(auth, span)?,
        ConnectionSetting::Headers(entries) => connection.headers = entries.clone(),
        ConnectionSetting::ConnectTimeout(timeout) => connection.connect_timeout = Some(*timeout),
        ConnectionSetting::Timeout(timeout) => connection.timeout = Some(*timeout),
        ConnectionSetting::RateLimit(limit) => {
            connection.rate_limit = Some(model::RateLimit {
                count: non_zero(limit.count.node, limit.count.span)?,
                per: limit.per.node,
                burst: limit
                    .burst
                    .as_ref()
                    .map(|b| non_zero(b.node, b.span))
                    .transpose()?,
            });
        }
        ConnectionSetting::Encoding(name) => connection.encoding = encoding(name)?,
        ConnectionSetting::MaxConcurrency(n) => {
            connection.max_concurrency = Some(non_zero(*n, span)?)
        }
        ConnectionSetting::CircuitBreaker(settings) => {
            connection.circuit_breaker = Some(circuit_breaker(settings)?);
        }
        ConnectionSetting::Rules(rules) => connection.rules = lower_rules(rules)?,
    }
    Ok(())
}

fn encoding(name: &ast::Name) -> Lowered<Encoding> {
    Encoding::parse(&name.node).map_or_else(|| unchecked(name.span, "an unknown encoding"), Ok)
}

fn lower_auth(auth: &ast::Auth, span: Span) -> Lowered<model::Auth> {
    Ok(match auth {
        ast::Auth::None => model::Auth::None,
        ast::Auth::Bearer(token) => model::Auth::Bearer(token.clone()),
        ast::Auth::Basic { username, password } => model::Auth::Basic {
            username: username.clone(),
            password: password.clone(),
        },
        ast::Auth::ApiKey {
            in_query,
            name,
            value,
        } => model::Auth::ApiKey {
            in_query: *in_query,
            name: name.value.clone(),
            value: value.clone(),
        },
        ast::Auth::OAuth2(fields) => {
            let field = |name: &str| {
                fields
                    .iter()
                    .find(|f| f.name.node == name)
                    .map(|f| f.value.clone())
            };
            let required = |name: &str| {
                field(name).map_or_else(|| unchecked(span, "oauth2 without a required field"), Ok)
            };
            model::Auth::OAuth2(Box::new(model::OAuth2 {
                token_url: required("token_url")?,
                client_id: required("client_id")?,
                client_secret: required("client_secret")?,
                refresh_token: field("refresh_token"),
                scopes: field("scopes"),
                audience: field("audience"),
            }))
        }
    })
}

fn circuit_breaker(settings: &[Spanned<ast::BreakerSetting>]) -> Lowered<model::CircuitBreaker> {
    let mut breaker = model::CircuitBreaker {
        failures: None,
        ratio: None,
        cooldown: None,
    };
    for setting in settings {
        match &setting.node {
            ast::BreakerSetting::Failures(n) => {
                breaker.failures = Some(non_zero(*n, setting.span)?)
            }
            ast::BreakerSetting::Ratio {
                percent,
                window,
                min_calls,
            } => {
                breaker.ratio = Some(model::FailureRatio {
                    percent: percent.node,
                    window: window.node,
                    min_calls: min_calls.as_ref().map(|m| m.node),
                });
            }
            ast::BreakerSetting::Cooldown(cooldown) => breaker.cooldown = Some(*cooldown),
        }
    }
    Ok(breaker)
}

fn trigger(trigger: &ast::Trigger) -> Lowered<model::Trigger> {
    Ok(match &trigger.kind {
        ast::TriggerKind::Webhook(webhook) => {
            model::Trigger::Webhook(Box::new(lower_webhook(webhook)?))
        }
        ast::TriggerKind::Poll(poll) => {
            model::Trigger::Poll(Box::new(lower_poll(poll, trigger.span)?))
        }
        ast::TriggerKind::Schedule(schedule) => model::Trigger::Schedule(lower_schedule(schedule)?),
        ast::TriggerKind::Manual => model::Trigger::Manual,
    })
}

fn lower_webhook(webhook: &ast::Webhook) -> Lowered<model::Webhook> {
    let settings = &webhook.settings;
    let signature = find(settings, |s| match s {
        WebhookSetting::Signature(signature) => Some(signature),
        _ => None,
    });
    Ok(model::Webhook {
        path: webhook.path.value.clone(),
        method: find(settings, |s| match s {
            WebhookSetting::Method(method) => Some(*method),
            _ => None,
        })
        .unwrap_or(ast::Method::Post),
        signature: signature.map(lower_signature).transpose()?,
        tolerance: find(settings, |s| match s {
            WebhookSetting::Tolerance(tolerance) => Some(*tolerance),
            _ => None,
        }),
        each: find(settings, |s| match s {
            WebhookSetting::Each(each) => Some(each.clone()),
            _ => None,
        }),
        when: find(settings, |s| match s {
            WebhookSetting::When(when) => Some(when.clone()),
            _ => None,
        }),
        dedupe: find(settings, |s| match s {
            WebhookSetting::Dedupe(dedupe) => Some(lower_dedupe(dedupe)),
            _ => None,
        }),
    })
}

fn lower_dedupe(dedupe: &ast::Dedupe) -> model::Dedupe {
    model::Dedupe {
        key: dedupe.key.clone(),
        retention: dedupe.retention.as_ref().map(|r| r.node),
    }
}

fn lower_body(body: &ast::Body) -> model::Body {
    match body {
        ast::Body::Mapping(mapping) => model::Body::Mapping(mapping.clone()),
        ast::Body::Raw(raw) => model::Body::Raw(raw.clone()),
    }
}

fn lower_since(since: &ast::Since) -> Lowered<model::Since> {
    let kind = model::MarkType::from_name(&since.kind.node)
        .map_or_else(|| unchecked(since.kind.span, "an unknown mark type"), Ok)?;
    let lookback = find(&since.settings, |s| match s {
        ast::SinceSetting::Lookback(lookback) => Some(*lookback),
        _ => None,
    });
    if lookback.is_some_and(|l| !kind.takes(&l)) {
        return unchecked(since.kind.span, "a look-back of another kind than its mark");
    }
    let send = match find(&since.settings, |s| match s {
        ast::SinceSetting::Send(name) => Some(name),
        _ => None,
    }) {
        Some(name) => model::MarkType::from_name(&name.node)
            .filter(|send| kind.sends_as(*send))
            .map_or_else(
                || unchecked(name.span, "a mark sent in a type it cannot be"),
                Ok,
            )?,
        None => kind,
    };
    Ok(model::Since {
        path: since.path.clone(),
        kind,
        send,
        start: find(&since.settings, |s| match s {
            ast::SinceSetting::Start(start) => Some(start.clone()),
            _ => None,
        }),
        lookback,
    })
}

fn lower_signature(signature: &ast::Signature) -> Lowered<model::Signature> {
    use model::SignaturePreset as Preset;
    let option = |pick: fn(&ast::SignatureOption) -> Option<String>| find(&signature.options, pick);
    let preset = match signature.preset.node.as_str() {
        "stripe" => Preset::Stripe,
        "github" => Preset::Github,
        "hubspot_v3" => Preset::HubspotV3,
        "shopify" => Preset::Shopify,
        "hmac_sha256" => Preset::HmacSha256 {
            header: option(|o| match o {
                ast::SignatureOption::Header(header) => Some(header.value.clone()),
                _ => None,
            })
            .map_or_else(
                || unchecked(signature.preset.span, "hmac_sha256 without a header"),
                Ok,
            )?,
            encoding: match option(|o| match o {
                ast::SignatureOption::Encoding(name) => Some(name.node.clone()),
                _ => None,
            })
            .as_deref()
            {
                None | Some("hex") => model::SignatureEncoding::Hex,
                Some("base64") => model::SignatureEncoding::Base64,
                Some(_) => {
                    return unchecked(signature.preset.span, "an unknown signature encoding");
                }
            },
            prefix: option(|o| match o {
                ast::SignatureOption::Prefix(prefix) => Some(prefix.value.clone()),
                _ => None,
            }),
        },
        _ => return unchecked(signature.preset.span, "an unknown signature preset"),
    };
    Ok(model::Signature {
        preset,
        secret: signature.secret.clone(),
    })
}

fn lower_cursor(cursor: &ast::Cursor) -> model::Cursor {
    match cursor {
        ast::Cursor::Param(param) => model::Cursor::Param {
            path: param.path.clone(),
            param: param.param.value.clone(),
        },
        ast::Cursor::NextLink(ast::NextLink::Header) => model::Cursor::LinkHeader,
        ast::Cursor::NextLink(ast::NextLink::Body(path)) => model::Cursor::NextLink(path.clone()),
        ast::Cursor::Body(param) => model::Cursor::Body {
            path: param.path.clone(),
            field: param.param.value.clone(),
        },
    }
}

fn lower_poll(poll: &ast::Poll, span: Span) -> Lowered<model::Poll> {
    let settings = &poll.settings;
    let entries = |pick: fn(&PollSetting) -> Option<&Vec<ast::Entry>>| {
        find(settings, pick).cloned().unwrap_or_default()
    };
    Ok(model::Poll {
        connection: poll.connection.node.clone(),
        method: poll.method.as_ref().map_or(ast::Method::Get, |m| m.node),
        path: poll.path.clone(),
        every: find(settings, |s| match s {
            PollSetting::Every(every) => Some(*every),
            _ => None,
        })
        .map_or_else(|| unchecked(span, "a poll without an interval"), Ok)?,
        items: find(settings, |s| match s {
            PollSetting::Items(items) => Some(items.clone()),
            _ => None,
        }),
        cursor: find(settings, |s| match s {
            PollSetting::Cursor(cursor) => Some(lower_cursor(cursor)),
            _ => None,
        }),
        dedupe: find(settings, |s| match s {
            PollSetting::Dedupe(dedupe) => Some(lower_dedupe(dedupe)),
            _ => None,
        }),
        body: find(settings, |s| match s {
            PollSetting::Body(body) => Some(lower_body(body)),
            _ => None,
        }),
        since: find(settings, |s| match s {
            PollSetting::Since(since) => Some(since),
            _ => None,
        })
        .map(lower_since)
        .transpose()?
        .map(Box::new),
        query: entries(|s| match s {
            PollSetting::Query(entries) => Some(entries),
            _ => None,
        }),
        headers: entries(|s| match s {
            PollSetting::Headers(entries) => Some(entries),
            _ => None,
        }),
        when: find(settings, |s| match s {
            PollSetting::When(when) => Some(when.clone()),
            _ => None,
        }),
        rules: find(settings, |s| match s {
            PollSetting::Rules(rules) => Some(rules),
            _ => None,
        })
        .map(lower_rules)
        .transpose()?
        .unwrap_or_default(),
    })
}

fn lower_schedule(schedule: &ast::Schedule) -> Lowered<model::Schedule> {
    let timezone = find(&schedule.settings, |s| match s {
        ast::ScheduleSetting::Timezone(zone) => Some(zone),
        _ => None,
    });
    let timezone = match timezone {
        Some(zone) => chrono_tz::Tz::from_str(&zone.value)
            .map_or_else(|_| unchecked(zone.span, "an unknown time zone"), Ok)?,
        None => chrono_tz::Tz::UTC,
    };
    let overlap = find(&schedule.settings, |s| match s {
        ast::ScheduleSetting::Overlap(name) => Some(name),
        _ => None,
    });
    let overlap = match overlap {
        Some(name) => model::Overlap::named(&name.node)
            .map_or_else(|| unchecked(name.span, "an unknown overlap policy"), Ok)?,
        None => model::Overlap::default(),
    };
    let missed = find(&schedule.settings, |s| match s {
        ast::ScheduleSetting::Missed(missed) => Some(missed),
        _ => None,
    });
    Ok(model::Schedule {
        cron: schedule.cron.value.clone(),
        timezone,
        overlap,
        missed: missed.map_or(Ok(model::Missed::default()), lower_missed)?,
        event: find(&schedule.settings, |s| match s {
            ast::ScheduleSetting::Event(event) => Some(event.clone()),
            _ => None,
        }),
    })
}

fn lower_missed(missed: &ast::Missed) -> Lowered<model::Missed> {
    let policy = &missed.policy;
    Ok(match policy.node.as_str() {
        "skip" => model::Missed::Skip,
        "latest" => model::Missed::Latest,
        "all" => {
            let Some(within) = missed.within.as_ref().filter(|w| !w.node.is_zero()) else {
                return unchecked(policy.span, "`missed all` without a window");
            };
            let max = missed
                .max
                .as_ref()
                .map_or(model::Missed::DEFAULT_MAX, |m| m.node);
            let Some(max) = NonZeroU32::new(max).filter(|m| m.get() <= model::Missed::MOST) else {
                return unchecked(policy.span, "a cap out of range");
            };
            model::Missed::All {
                within: within.node,
                max,
            }
        }
        _ => return unchecked(policy.span, "an unknown missed-run policy"),
    })
}

fn step(step: &ast::Step, defaults: &Defaults) -> Lowered<model::Step> {
    let settings = &step.settings;
    let expr = |pick: fn(&StepSetting) -> Option<&ast::Expr>| find(settings, pick).cloned();
    let entries = |pick: fn(&StepSetting) -> Option<&Vec<ast::Entry>>| {
        find(settings, pick).cloned().unwrap_or_default()
    };
    let call = match step.call.kind.node {
        ast::CallKind::Http(method) => model::Call::Http(method),
        ast::CallKind::GraphQl => model::Call::GraphQl {
            document: find(settings, |s| match s {
                StepSetting::Document(document) => Some(document.value.clone()),
                _ => None,
            })
            .map_or_else(
                || unchecked(step.call.kind.span, "a GraphQL step without a document"),
                Ok,
            )?,
            variables: find(settings, |s| match s {
                StepSetting::Variables(variables) => Some(variables.clone()),
                _ => None,
            })
            .unwrap_or_default(),
        },
    };
    let items = expr(|s| match s {
        StepSetting::Items(items) => Some(items),
        _ => None,
    });
    let paginate = find(settings, |s| match s {
        StepSetting::Paginate(pagination) => Some(pagination),
        _ => None,
    });
    let max_pages = find(settings, |s| match s {
        StepSetting::MaxPages(n) => Some(*n),
        _ => None,
    });
    let pagination = match (paginate, &items) {
        (Some(style), Some(items)) => Some(model::Pagination {
            style: pagination_style(style, step.span)?,
            items: items.clone(),
            max_pages: max_pages.map(|n| non_zero(n, step.span)).transpose()?,
            has_more: find(settings, |s| match s {
                StepSetting::HasMore(more) => Some(more.clone()),
                _ => None,
            }),
        }),
        (Some(_), None) => return unchecked(step.span, "pagination without items"),
        (None, _) => None,
    };
    let retry = find(settings, |s| match s {
        StepSetting::Retry(retry) => Some(retry),
        _ => None,
    });
    let on_error = find(settings, |s| match s {
        StepSetting::OnError(on_error) => Some(on_error),
        _ => None,
    });
    Ok(model::Step {
        name: step.name.node.clone(),
        connection: step.call.connection.node.clone(),
        call,
        path: step.call.path.clone(),
        query: entries(|s| match s {
            StepSetting::Query(entries) => Some(entries),
            _ => None,
        }),
        headers: entries(|s| match s {
            StepSetting::Headers(entries) => Some(entries),
            _ => None,
        }),
        body: find(settings, |s| match s {
            StepSetting::Body(body) => Some(lower_body(body)),
            _ => None,
        }),
        when: expr(|s| match s {
            StepSetting::When(when) => Some(when),
            _ => None,
        }),
        for_each: find(settings, |s| match s {
            StepSetting::ForEach { items, concurrency } => Some((items, concurrency)),
            _ => None,
        })
        .map(|(items, concurrency)| {
            let concurrency = concurrency
                .as_ref()
                .map(|c| non_zero(c.node, c.span))
                .transpose()?;
            Ok(model::ForEach {
                items: items.clone(),
                concurrency,
            })
        })
        .transpose()?,
        items: if pagination.is_some() { None } else { items },
        pagination,
        cache: find(settings, |s| match s {
            StepSetting::Cache(ttl) => Some(*ttl),
            _ => None,
        }),
        idempotency_key: expr(|s| match s {
            StepSetting::IdempotencyKey(key) => Some(key),
            _ => None,
        }),
        timeout: find(settings, |s| match s {
            StepSetting::Timeout(timeout) => Some(*timeout),
            _ => None,
        })
        .or(defaults.timeout),
        retry: match retry {
            Some(retry) => retry_policy(retry)?,
            None => defaults.retry.clone().unwrap_or_default(),
        },
        on_error: match on_error {
            Some(on_error) => on_error_action(on_error)?,
            None => defaults.on_error.clone().unwrap_or_default(),
        },
        encoding: find(settings, |s| match s {
            StepSetting::Encoding(name) => Some(name),
            _ => None,
        })
        .map(encoding)
        .transpose()?,
        rules: find(settings, |s| match s {
            StepSetting::Rules(rules) => Some(rules),
            _ => None,
        })
        .map(lower_rules)
        .transpose()?
        .unwrap_or_default(),
        partial_data: find(settings, |s| match s {
            StepSetting::PartialData(name) => Some(name),
            _ => None,
        })
        .map(|name| {
            model::PartialData::parse(&name.node).map_or_else(
                || unchecked(name.span, "an unknown partial_data policy"),
                Ok,
            )
        })
        .transpose()?
        .unwrap_or_default(),
        per_page: find(settings, |s| match s {
            StepSetting::PerPage(name) => Some(name.node.clone()),
            _ => None,
        }),
    })
}

/// The rules written out, then the preset's: a written rule can take an answer from it.
fn lower_rules(rules: &ast::Rules) -> Lowered<Vec<model::Rule>> {
    let written = rules
        .list
        .iter()
        .map(|r| lower_rule(r, model::RuleOrigin::Written));
    let Some(name) = &rules.preset else {
        return written.collect();
    };
    let (preset, text) = super::rule_presets::preset(&name.node)
        .map_or_else(|| unchecked(name.span, "an unknown rules preset"), Ok)?;
    let origin = model::RuleOrigin::Preset {
        name: name.node.clone(),
        text,
    };
    written
        .chain(preset.iter().map(|r| lower_rule(r, origin.clone())))
        .collect()
}

/// A rule without statuses looks at every `2xx`: a condition on the body then never
/// shadows the retry policy's `429` and `5xx`.
fn lower_rule(rule: &ast::Rule, origin: model::RuleOrigin) -> Lowered<model::Rule> {
    let statuses = match rule.statuses.as_slice() {
        [] => vec![model::StatusMatch::Class(2)],
        written => written.iter().map(|s| s.node).collect(),
    };
    let message = rule.message.clone();
    let action = match rule.action.node.as_str() {
        "succeed" => model::RuleAction::Succeed,
        "empty" => model::RuleAction::Empty,
        "fail" => model::RuleAction::Fail { message },
        "retry" => model::RuleAction::Retry {
            after: rule.after.as_ref().map(|after| match &after.node {
                ast::Delay::Header(name) => model::Delay::Header(name.value.clone()),
                ast::Delay::Value(value) => model::Delay::Value(value.clone()),
            }),
            message,
        },
        _ => return unchecked(rule.action.span, "an unknown rule action"),
    };
    Ok(model::Rule {
        statuses,
        when: rule.when.clone(),
        action,
        origin,
    })
}

fn pagination_style(pagination: &ast::Pagination, span: Span) -> Lowered<model::PaginationStyle> {
    Ok(match pagination {
        ast::Pagination::Cursor(param) => model::PaginationStyle::Cursor(model::Cursor::Param {
            path: param.path.clone(),
            param: param.param.value.clone(),
        }),
        ast::Pagination::NextLink(ast::NextLink::Header) => {
            model::PaginationStyle::Cursor(model::Cursor::LinkHeader)
        }
        ast::Pagination::NextLink(ast::NextLink::Body(path)) => {
            model::PaginationStyle::Cursor(model::Cursor::NextLink(path.clone()))
        }
        ast::Pagination::Offset {
            offset_param,
            limit_param,
            limit,
        } => model::PaginationStyle::Offset {
            offset_param: offset_param.value.clone(),
            limit_param: limit_param.value.clone(),
            limit: non_zero(limit.node, limit.span)?,
        },
        ast::Pagination::Page { param, from, size } => model::PaginationStyle::Page {
            param: param.value.clone(),
            from: from.as_ref().map_or(1, |f| f.node),
            size: size
                .as_ref()
                .map(|(name, n)| Ok((name.value.clone(), non_zero(n.node, span)?)))
                .transpose()?,
        },
    })
}

/// A declared retry, with the defaults of `RetryPolicy::default` for what it leaves out.
/// A single delay (`retry 3 constant 2s`) is both the initial and the maximum delay.
fn retry_policy(retry: &ast::Retry) -> Lowered<RetryPolicy> {
    // Jitter is on only when written: a declared retry says what it wants.
    let mut policy = RetryPolicy {
        attempts: non_zero(retry.attempts.node, retry.attempts.span)?,
        jitter: false,
        ..RetryPolicy::default()
    };
    for clause in &retry.clauses {
        match &clause.node {
            ast::RetryClause::Backoff(backoff) => {
                policy.backoff = match backoff {
                    ast::Backoff::Constant => model::Backoff::Constant,
                    ast::Backoff::Linear => model::Backoff::Linear,
                    ast::Backoff::Exponential => model::Backoff::Exponential,
                };
            }
            ast::RetryClause::Delay { initial, max } => {
                policy.initial_delay = initial.node;
                policy.max_delay = max.as_ref().map_or(initial.node, |m| m.node);
                if policy.max_delay < policy.initial_delay {
                    return unchecked(clause.span, "an inverted delay range");
                }
            }
            ast::RetryClause::Jitter => policy.jitter = true,
            ast::RetryClause::On(conditions) => {
                policy.on = conditions
                    .iter()
                    .map(|c| match &c.node {
                        ast::RetryCondition::Status(status) => {
                            Ok(model::RetryCondition::Status(*status))
                        }
                        ast::RetryCondition::Class(class) => {
                            Ok(model::RetryCondition::Class(*class))
                        }
                        ast::RetryCondition::Kind(kind) if kind == "timeout" => {
                            Ok(model::RetryCondition::Timeout)
                        }
                        ast::RetryCondition::Kind(kind) if kind == "network" => {
                            Ok(model::RetryCondition::Network)
                        }
                        ast::RetryCondition::Kind(_) => {
                            unchecked(c.span, "an unknown retry condition")
                        }
                    })
                    .collect::<Lowered<_>>()?;
            }
            ast::RetryClause::MaxElapsed(elapsed) => policy.max_elapsed = Some(*elapsed),
            ast::RetryClause::RetryAfter(mode) => policy.honor_retry_after = mode.node != "ignore",
        }
    }
    Ok(policy)
}

fn on_error_action(on_error: &ast::OnError) -> Lowered<model::OnError> {
    Ok(match on_error {
        ast::OnError::Fallback(name) => model::OnError::Fallback(name.node.clone()),
        ast::OnError::Action(name) => match name.node.as_str() {
            "dead_letter" => model::OnError::DeadLetter,
            "skip" => model::OnError::Skip,
            "fail" => model::OnError::Fail,
            _ => return unchecked(name.span, "an unknown on_error action"),
        },
    })
}

fn alert(alert: &ast::Alert) -> Lowered<model::Alert> {
    let Some(metric) = model::AlertMetric::parse(&alert.metric.node) else {
        return unchecked(alert.metric.span, "an unknown alert metric");
    };
    let Some(channel) = model::AlertChannel::parse(&alert.channel.node) else {
        return unchecked(alert.channel.span, "an unknown alert channel");
    };
    Ok(model::Alert {
        metric,
        op: alert.op.node,
        threshold: alert.threshold.node,
        window: alert.window.node,
        channel,
        target: alert.target.clone(),
    })
}

fn environment(
    environment: &ast::Environment,
    base: &[model::Connection],
) -> Lowered<model::Environment> {
    let mut connections = base.to_vec();
    for item in &environment.overrides {
        let Some(connection) = connections
            .iter_mut()
            .find(|c| c.name == item.connection.node)
        else {
            return unchecked(item.connection.span, "an override of an unknown connection");
        };
        match &item.setting.node {
            ast::OverrideSetting::Known(setting) => apply(connection, setting, item.setting.span)?,
            ast::OverrideSetting::Unknown { field, .. } => {
                return unchecked(field.span, "an unknown override field");
            }
        }
    }
    Ok(model::Environment {
        name: environment.name.node.clone(),
        connections,
    })
}

fn test(test: &ast::Test) -> Lowered<model::Test> {
    let mut event = None;
    let mut headers = Vec::new();
    let mut mocks = Vec::new();
    let mut expectations = Vec::new();
    for item in &test.items {
        match &item.node {
            ast::TestItem::Event(given) => {
                event = Some(given.value.clone());
                headers.clone_from(&given.headers);
            }
            ast::TestItem::Mock(mock) => mocks.push(self::mock(mock)?),
            ast::TestItem::ExpectRequest(expect) => {
                let (path, query) = model::split_query(&expect.path.value);
                expectations.push(model::Expectation::Request {
                    connection: expect.connection.node.clone(),
                    method: expect.method.node,
                    path: path.to_string(),
                    query,
                    predicate: expect.predicate.clone(),
                    times: expect.times.as_ref().map(|t| t.node),
                })
            }
            ast::TestItem::ExpectStep { step, outcome } => {
                let outcome = model::Outcome::parse(&outcome.node)
                    .map_or_else(|| unchecked(outcome.span, "an unknown step outcome"), Ok)?;
                expectations.push(model::Expectation::StepOutcome {
                    step: step.node.clone(),
                    outcome,
                });
            }
        }
    }
    let event = event.map_or_else(|| unchecked(test.span, "a test without an event"), Ok)?;
    Ok(model::Test {
        name: test.name.value.clone(),
        event,
        headers,
        mocks,
        expectations,
    })
}

fn mock(mock: &ast::Mock) -> Lowered<model::Mock> {
    let answer = |answer: &ast::Answer| model::Answer {
        status: answer.status.node,
        body: answer.body.clone(),
        headers: answer.headers.clone(),
    };
    let answers = match mock.answers.node.as_slice() {
        [] => return unchecked(mock.answers.span, "a mock without answers"),
        [one] => model::Answers::Always(answer(one)),
        several => model::Answers::InTurn(several.iter().map(answer).collect()),
    };
    let (path, query) = model::split_query(&mock.path.value);
    Ok(model::Mock {
        connection: mock.connection.node.clone(),
        method: mock.method.node,
        path: path.to_string(),
        query,
        predicate: mock.predicate.clone(),
        answers,
    })
}
