//! Parse tree to AST: one function per grammar rule.
//!
//! The grammar guarantees the shape of every pair, so a mismatch here is a bug in integ,
//! reported as an internal-error diagnostic rather than a panic.

use super::grammar::Rule;
use super::text;
use crate::ast::Rule as ResponseRule;
use crate::ast::*;
use crate::diagnostic::{Diagnostic, DiagnosticKind};
use crate::span::{Span, Spanned};
use pest::iterators::{Pair, Pairs};
use pest::pratt_parser::{Assoc, Op, PrattParser};
use std::sync::LazyLock;
use std::time::Duration;

/// The grammar and the builder disagree: a bug, not a user error.
struct Bug {
    span: Span,
    what: String,
}

type Built<T> = Result<T, Bug>;

fn bug<T>(pair: &Pair<'_, Rule>, what: &str) -> Built<T> {
    Err(Bug {
        span: pair.as_span().into(),
        what: format!("{what} (at {:?})", pair.as_rule()),
    })
}

pub fn build(pairs: Pairs<'_, Rule>) -> (Option<Spec>, Vec<Diagnostic>) {
    let mut builder = Builder {
        diagnostics: Vec::new(),
        depth: 0,
    };
    let comments = pairs
        .clone()
        .flatten()
        .filter(|p| p.as_rule() == Rule::COMMENT)
        .map(|p| Spanned::new(p.as_str().to_string(), p.as_span().into()))
        .collect();
    let integration = pairs
        .into_iter()
        .next()
        .ok_or_else(|| Bug {
            span: Span::default(),
            what: "empty parse".into(),
        })
        .and_then(|file| builder.file(file));
    match integration {
        Ok(integration) => (
            Some(Spec {
                integration,
                comments,
            }),
            builder.diagnostics,
        ),
        Err(bug) => {
            let mut diagnostics = builder.diagnostics;
            diagnostics.push(Diagnostic::new(
                DiagnosticKind::InternalError(bug.what),
                bug.span,
            ));
            (None, diagnostics)
        }
    }
}

/// The children of a pair, comments left out, read in order.
struct Children<'i> {
    pairs: std::iter::Peekable<Pairs<'i, Rule>>,
    parent: Span,
}

impl<'i> Children<'i> {
    fn of(pair: Pair<'i, Rule>) -> Self {
        let parent = pair.as_span().into();
        Self {
            pairs: pair.into_inner().peekable(),
            parent,
        }
    }

    fn skip_comments(&mut self) {
        while self.pairs.next_if(|p| is_trivia(p.as_rule())).is_some() {}
    }

    fn next(&mut self) -> Built<Pair<'i, Rule>> {
        self.skip_comments();
        self.pairs.next().ok_or_else(|| Bug {
            span: self.parent,
            what: "missing child".into(),
        })
    }

    fn expect(&mut self, rule: Rule) -> Built<Pair<'i, Rule>> {
        let pair = self.next()?;
        if pair.as_rule() == rule {
            Ok(pair)
        } else {
            bug(&pair, &format!("expected {rule:?}"))
        }
    }

    fn optional(&mut self, rule: Rule) -> Option<Pair<'i, Rule>> {
        self.skip_comments();
        self.pairs.next_if(|p| p.as_rule() == rule)
    }

    fn rest(mut self) -> impl Iterator<Item = Pair<'i, Rule>> {
        self.skip_comments();
        self.pairs.filter(|p| !is_trivia(p.as_rule()))
    }
}

/// Pairs the builder never reads: comments (kept in a side table) and keywords (whose
/// meaning is the rule they start).
fn is_trivia(rule: Rule) -> bool {
    static TRIVIA: LazyLock<Vec<bool>> = LazyLock::new(|| {
        // Sized by the largest discriminant: `all_rules` leaves `EOI` out.
        let size = Rule::all_rules()
            .iter()
            .map(|r| *r as usize + 1)
            .max()
            .unwrap_or(0);
        let mut table = vec![false; size.max(Rule::EOI as usize + 1)];
        for rule in Rule::all_rules() {
            let name = format!("{rule:?}");
            if let Some(slot) = table.get_mut(*rule as usize) {
                *slot = name == "COMMENT" || name.starts_with("kw_");
            }
        }
        table
    });
    TRIVIA.get(rule as usize).copied().unwrap_or(false)
}

fn span(pair: &Pair<'_, Rule>) -> Span {
    pair.as_span().into()
}

fn spanned<T>(node: T, pair: &Pair<'_, Rule>) -> Spanned<T> {
    Spanned::new(node, span(pair))
}

fn name(pair: Pair<'_, Rule>) -> Name {
    spanned(pair.as_str().to_string(), &pair)
}

static PRATT: LazyLock<PrattParser<Rule>> = LazyLock::new(|| {
    PrattParser::new()
        .op(Op::infix(Rule::op_or, Assoc::Left))
        .op(Op::infix(Rule::op_and, Assoc::Left))
        .op(Op::prefix(Rule::op_not))
        .op(Op::infix(Rule::compare_op, Assoc::Left))
        .op(Op::infix(Rule::op_fallback, Assoc::Left))
});

/// How deeply values may nest, counting brackets and operators. Deeper input would make the
/// recursive stages (this builder, the checker, dropping the tree) exhaust the stack of a
/// 2 MiB thread in a debug build; no real spec comes near.
const MAX_DEPTH: usize = 64;

struct Builder {
    diagnostics: Vec<Diagnostic>,
    /// Nesting of the expression being built.
    depth: usize,
}

impl Builder {
    fn file(&mut self, file: Pair<'_, Rule>) -> Built<Integration> {
        let mut children = Children::of(file);
        self.integration(children.expect(Rule::integration)?)
    }

    fn integration(&mut self, pair: Pair<'_, Rule>) -> Built<Integration> {
        let whole = span(&pair);
        let mut children = Children::of(pair);
        let mut integration = Integration {
            name: name(children.expect(Rule::name)?),
            description: Vec::new(),
            owner: Vec::new(),
            tags: Vec::new(),
            concurrency: Vec::new(),
            defaults: Vec::new(),
            connections: Vec::new(),
            triggers: Vec::new(),
            steps: Vec::new(),
            fallbacks: Vec::new(),
            alerts: Vec::new(),
            environments: Vec::new(),
            tests: Vec::new(),
            span: whole,
        };
        for item in children.rest() {
            match item.as_rule() {
                Rule::description => integration.description.push(self.first_text(item)?),
                Rule::owner => integration.owner.push(self.first_text(item)?),
                Rule::tags => {
                    let at = span(&item);
                    let tags = item.into_inner().filter(|p| p.as_rule() == Rule::string);
                    let tags = tags.map(|t| self.text(t)).collect::<Built<_>>()?;
                    integration.tags.push(Spanned::new(tags, at));
                }
                Rule::concurrency => {
                    let limit = Children::of(item).expect(Rule::integer)?;
                    integration.concurrency.push(self.spanned_u32(limit));
                }
                Rule::defaults => {
                    for setting in Children::of(item).rest() {
                        integration.defaults.push(self.policy_setting(setting)?);
                    }
                }
                Rule::connection => integration.connections.push(self.connection(item)?),
                Rule::trigger => integration.triggers.push(self.trigger(item)?),
                Rule::step => integration.steps.push(self.step(item)?),
                Rule::fallback => integration.fallbacks.push(self.step(item)?),
                Rule::alert => integration.alerts.push(self.alert(item)?),
                Rule::environment => integration.environments.push(self.environment(item)?),
                Rule::test => integration.tests.push(self.test(item)?),
                Rule::EOI => {}
                _ => return bug(&item, "unknown integration item"),
            }
        }
        Ok(integration)
    }

    // ------------------------------------------------------------ connections

    fn connection(&mut self, pair: Pair<'_, Rule>) -> Built<Connection> {
        let whole = span(&pair);
        let mut children = Children::of(pair);
        let name = name(children.expect(Rule::name)?);
        let settings = children
            .rest()
            .map(|s| self.connection_setting(s))
            .collect::<Built<_>>()?;
        Ok(Connection {
            name,
            settings,
            span: whole,
        })
    }

    fn connection_setting(&mut self, pair: Pair<'_, Rule>) -> Built<Spanned<ConnectionSetting>> {
        let at = span(&pair);
        let rule = pair.as_rule();
        let mut children = Children::of(pair);
        let setting = match rule {
            Rule::base_url => ConnectionSetting::BaseUrl(self.expr(children.next()?)?),
            Rule::auth => ConnectionSetting::Auth(self.auth(children.next()?)?),
            Rule::headers => ConnectionSetting::Headers(self.entries(children)?),
            Rule::connect_timeout => {
                ConnectionSetting::ConnectTimeout(self.duration(children.next()?))
            }
            Rule::timeout => ConnectionSetting::Timeout(self.duration(children.next()?)),
            Rule::rate_limit => ConnectionSetting::RateLimit(RateLimit {
                count: self.spanned_u32(children.expect(Rule::integer)?),
                per: self.spanned_duration(children.expect(Rule::duration)?),
                burst: children
                    .optional(Rule::integer)
                    .map(|p| self.spanned_u32(p)),
            }),
            Rule::encoding => ConnectionSetting::Encoding(name(children.next()?)),
            Rule::max_concurrency => ConnectionSetting::MaxConcurrency(self.u32(children.next()?)),
            Rule::circuit_breaker => ConnectionSetting::CircuitBreaker(
                children
                    .rest()
                    .map(|p| self.breaker_setting(p))
                    .collect::<Built<_>>()?,
            ),
            Rule::rules => ConnectionSetting::Rules(self.rules(children)?),
            _ => return bug(&children.next()?, "unknown connection setting"),
        };
        Ok(Spanned::new(setting, at))
    }

    fn auth(&mut self, pair: Pair<'_, Rule>) -> Built<Auth> {
        let rule = pair.as_rule();
        let mut children = Children::of(pair);
        Ok(match rule {
            Rule::auth_none => Auth::None,
            Rule::auth_bearer => Auth::Bearer(self.expr(children.next()?)?),
            Rule::auth_basic => Auth::Basic {
                username: self.expr(children.next()?)?,
                password: self.expr(children.next()?)?,
            },
            Rule::auth_api_key => Auth::ApiKey {
                in_query: children.expect(Rule::api_key_place)?.as_str() == "query",
                name: self.text(children.expect(Rule::string)?)?,
                value: self.expr(children.next()?)?,
            },
            Rule::auth_oauth2 => Auth::OAuth2(self.fields(children)?),
            _ => return bug(&children.next()?, "unknown auth"),
        })
    }

    fn fields(&mut self, children: Children<'_>) -> Built<Vec<Field>> {
        children
            .rest()
            .map(|field| {
                let mut parts = Children::of(field);
                Ok(Field {
                    name: name(parts.expect(Rule::name)?),
                    value: self.expr(parts.next()?)?,
                })
            })
            .collect()
    }

    fn entries(&mut self, children: Children<'_>) -> Built<Vec<Entry>> {
        children.rest().map(|entry| self.entry(entry)).collect()
    }

    fn entry(&mut self, pair: Pair<'_, Rule>) -> Built<Entry> {
        let mut children = Children::of(pair);
        let key = self.key(children.expect(Rule::key)?)?;
        Ok(Entry {
            key,
            value: self.expr(children.next()?)?,
        })
    }

    /// A `key` or `target_key`: a bare name or a quoted string.
    fn key(&mut self, pair: Pair<'_, Rule>) -> Built<Spanned<String>> {
        let inner = Children::of(pair).next()?;
        match inner.as_rule() {
            Rule::ident => Ok(name(inner)),
            Rule::string => {
                let text = self.text(inner)?;
                Ok(Spanned::new(text.value, text.span))
            }
            _ => bug(&inner, "unknown key"),
        }
    }

    fn breaker_setting(&mut self, pair: Pair<'_, Rule>) -> Built<Spanned<BreakerSetting>> {
        let at = span(&pair);
        let rule = pair.as_rule();
        let mut children = Children::of(pair);
        let setting = match rule {
            Rule::breaker_failures => BreakerSetting::Failures(self.u32(children.next()?)),
            Rule::breaker_cooldown => BreakerSetting::Cooldown(self.duration(children.next()?)),
            Rule::breaker_ratio => {
                let percent = children.expect(Rule::percent)?;
                let value = percent
                    .as_str()
                    .trim_end_matches('%')
                    .parse()
                    .unwrap_or(f64::NAN);
                BreakerSetting::Ratio {
                    percent: spanned(value, &percent),
                    window: self.spanned_duration(children.expect(Rule::duration)?),
                    min_calls: children
                        .optional(Rule::integer)
                        .map(|p| self.spanned_u32(p)),
                }
            }
            _ => return bug(&children.next()?, "unknown breaker setting"),
        };
        Ok(Spanned::new(setting, at))
    }

    // ------------------------------------------------------------ triggers

    fn trigger(&mut self, pair: Pair<'_, Rule>) -> Built<Trigger> {
        let at = span(&pair);
        let inner = Children::of(pair).next()?;
        let rule = inner.as_rule();
        let mut children = Children::of(inner);
        let kind = match rule {
            Rule::webhook => {
                let path = self.text(children.expect(Rule::string)?)?;
                let settings = children
                    .rest()
                    .map(|p| self.webhook_setting(p))
                    .collect::<Built<_>>()?;
                TriggerKind::Webhook(Webhook { path, settings })
            }
            Rule::poll => {
                let connection = name(children.expect(Rule::name)?);
                let method = children
                    .optional(Rule::method)
                    .map(|m| self.method(m))
                    .transpose()?;
                let path = self.text(children.expect(Rule::string)?)?;
                let settings = children
                    .rest()
                    .map(|p| self.poll_setting(p))
                    .collect::<Built<_>>()?;
                TriggerKind::Poll(Poll {
                    connection,
                    method,
                    path,
                    settings,
                })
            }
            Rule::schedule => {
                let cron = self.text(children.expect(Rule::string)?)?;
                let settings = children
                    .rest()
                    .map(|p| {
                        let at = span(&p);
                        let setting = match p.as_rule() {
                            Rule::timezone => ScheduleSetting::Timezone(self.first_text(p)?),
                            Rule::schedule_event => ScheduleSetting::Event(self.first_expr(p)?),
                            Rule::overlap => {
                                ScheduleSetting::Overlap(name(Children::of(p).expect(Rule::name)?))
                            }
                            Rule::missed => ScheduleSetting::Missed(self.missed(p)?),
                            _ => return bug(&p, "unknown schedule setting"),
                        };
                        Ok(Spanned::new(setting, at))
                    })
                    .collect::<Built<_>>()?;
                TriggerKind::Schedule(Schedule { cron, settings })
            }
            Rule::manual => TriggerKind::Manual,
            _ => return bug(&children.next()?, "unknown trigger"),
        };
        Ok(Trigger { kind, span: at })
    }

    /// `missed all within 7d max 10`.
    fn missed(&mut self, pair: Pair<'_, Rule>) -> Built<Missed> {
        let mut children = Children::of(pair);
        Ok(Missed {
            policy: name(children.expect(Rule::name)?),
            within: children
                .optional(Rule::duration)
                .map(|p| self.spanned_duration(p)),
            max: children
                .optional(Rule::integer)
                .map(|p| self.spanned_u32(p)),
        })
    }

    fn webhook_setting(&mut self, pair: Pair<'_, Rule>) -> Built<Spanned<WebhookSetting>> {
        let at = span(&pair);
        let rule = pair.as_rule();
        let mut children = Children::of(pair);
        let setting = match rule {
            Rule::method_stmt => WebhookSetting::Method(self.method(children.next()?)?.node),
            Rule::signature => {
                let preset = name(children.expect(Rule::name)?);
                let secret = self.expr(children.next()?)?;
                let options = children
                    .rest()
                    .map(|p| {
                        let at = span(&p);
                        let option = match p.as_rule() {
                            Rule::sig_header => SignatureOption::Header(self.first_text(p)?),
                            Rule::sig_prefix => SignatureOption::Prefix(self.first_text(p)?),
                            Rule::sig_encoding => {
                                SignatureOption::Encoding(name(Children::of(p).next()?))
                            }
                            _ => return bug(&p, "unknown signature option"),
                        };
                        Ok(Spanned::new(option, at))
                    })
                    .collect::<Built<_>>()?;
                WebhookSetting::Signature(Signature {
                    preset,
                    secret,
                    options,
                })
            }
            Rule::unsigned => WebhookSetting::Unsigned,
            Rule::tolerance => WebhookSetting::Tolerance(self.duration(children.next()?)),
            Rule::each => WebhookSetting::Each(self.expr(children.next()?)?),
            Rule::when => WebhookSetting::When(self.expr(children.next()?)?),
            Rule::dedupe => WebhookSetting::Dedupe(self.dedupe(children)?),
            _ => return bug(&children.next()?, "unknown webhook setting"),
        };
        Ok(Spanned::new(setting, at))
    }

    fn poll_setting(&mut self, pair: Pair<'_, Rule>) -> Built<Spanned<PollSetting>> {
        let at = span(&pair);
        let rule = pair.as_rule();
        let mut children = Children::of(pair);
        let setting = match rule {
            Rule::every => PollSetting::Every(self.duration(children.next()?)),
            Rule::items => PollSetting::Items(self.expr(children.next()?)?),
            Rule::poll_cursor => {
                let inner = children.next()?;
                PollSetting::Cursor(match inner.as_rule() {
                    Rule::next_link => Cursor::NextLink(self.next_link(inner)?),
                    Rule::cursor_body => Cursor::Body(self.cursor_param(inner)?),
                    _ => Cursor::Param(self.cursor_param(inner)?),
                })
            }
            Rule::dedupe => PollSetting::Dedupe(self.dedupe(children)?),
            Rule::since => PollSetting::Since(self.since(children)?),
            Rule::body => PollSetting::Body(self.body(children.next()?)?),
            Rule::query => PollSetting::Query(self.entries(children)?),
            Rule::headers => PollSetting::Headers(self.entries(children)?),
            Rule::when => PollSetting::When(self.expr(children.next()?)?),
            Rule::rules => PollSetting::Rules(self.rules(children)?),
            _ => return bug(&children.next()?, "unknown poll setting"),
        };
        Ok(Spanned::new(setting, at))
    }

    fn dedupe(&mut self, mut children: Children<'_>) -> Built<Dedupe> {
        Ok(Dedupe {
            key: self.expr(children.next()?)?,
            retention: children
                .optional(Rule::duration)
                .map(|p| self.spanned_duration(p)),
        })
    }

    fn since(&mut self, mut children: Children<'_>) -> Built<Since> {
        let path = self.expr(children.expect(Rule::jsonpath)?)?;
        let kind = name(children.expect(Rule::name)?);
        let settings = children
            .rest()
            .map(|p| {
                let at = span(&p);
                let rule = p.as_rule();
                let value = Children::of(p).next()?;
                let setting =
                    match rule {
                        Rule::since_start => SinceSetting::Start(self.expr(value)?),
                        Rule::since_send => SinceSetting::Send(name(value)),
                        Rule::since_lookback if value.as_rule() == Rule::duration => {
                            SinceSetting::Lookback(Lookback::Duration(self.duration(value)))
                        }
                        Rule::since_lookback => SinceSetting::Lookback(Lookback::Count(
                            self.bounded(&value, i64::MAX as u64, "0 to 9223372036854775807"),
                        )),
                        _ => return bug(&value, "unknown since setting"),
                    };
                Ok(Spanned::new(setting, at))
            })
            .collect::<Built<_>>()?;
        Ok(Since {
            path,
            kind,
            settings,
        })
    }

    fn cursor_param(&mut self, pair: Pair<'_, Rule>) -> Built<CursorParam> {
        let mut children = Children::of(pair);
        Ok(CursorParam {
            path: self.expr(children.expect(Rule::jsonpath)?)?,
            param: self.text(children.expect(Rule::string)?)?,
        })
    }

    fn next_link(&mut self, pair: Pair<'_, Rule>) -> Built<NextLink> {
        let inner = Children::of(pair).next()?;
        Ok(match inner.as_rule() {
            Rule::word_header => NextLink::Header,
            _ => NextLink::Body(self.expr(inner)?),
        })
    }

    // ------------------------------------------------------------ steps

    /// `body { ... }` or `body VALUE`: of a step or of a poll's request.
    fn body(&mut self, inner: Pair<'_, Rule>) -> Built<Body> {
        Ok(match inner.as_rule() {
            Rule::mapping => Body::Mapping(self.mapping(inner)?),
            _ => Body::Raw(self.expr(inner)?),
        })
    }

    fn step(&mut self, pair: Pair<'_, Rule>) -> Built<Step> {
        let at = span(&pair);
        let mut children = Children::of(pair);
        let name = name(children.expect(Rule::name)?);
        let call = self.call(children.expect(Rule::call)?)?;
        let settings = children
            .rest()
            .map(|p| self.step_setting(p))
            .collect::<Built<_>>()?;
        Ok(Step {
            name,
            call,
            settings,
            span: at,
        })
    }

    fn call(&mut self, pair: Pair<'_, Rule>) -> Built<Call> {
        let mut children = Children::of(pair);
        let connection = name(children.expect(Rule::name)?);
        let kind = children.next()?;
        let kind = match kind.as_rule() {
            Rule::graphql => spanned(CallKind::GraphQl, &kind),
            _ => {
                let method = self.method(kind)?;
                Spanned::new(CallKind::Http(method.node), method.span)
            }
        };
        let path = self.text(children.expect(Rule::string)?)?;
        Ok(Call {
            connection,
            kind,
            path,
        })
    }

    fn step_setting(&mut self, pair: Pair<'_, Rule>) -> Built<Spanned<StepSetting>> {
        let at = span(&pair);
        let rule = pair.as_rule();
        let mut children = Children::of(pair);
        let setting = match rule {
            Rule::query => StepSetting::Query(self.entries(children)?),
            Rule::headers => StepSetting::Headers(self.entries(children)?),
            Rule::body => StepSetting::Body(self.body(children.next()?)?),
            Rule::document => StepSetting::Document(self.text(children.next()?)?),
            Rule::variables => StepSetting::Variables(self.mapping(children.next()?)?),
            Rule::when => StepSetting::When(self.expr(children.next()?)?),
            Rule::for_each => StepSetting::ForEach {
                items: self.expr(children.next()?)?,
                concurrency: children
                    .optional(Rule::integer)
                    .map(|p| self.spanned_u32(p)),
            },
            Rule::paginate => StepSetting::Paginate(self.pagination(children.next()?)?),
            Rule::items => StepSetting::Items(self.expr(children.next()?)?),
            Rule::max_pages => StepSetting::MaxPages(self.u32(children.next()?)),
            Rule::has_more => StepSetting::HasMore(self.expr(children.next()?)?),
            Rule::cache => StepSetting::Cache(self.duration(children.next()?)),
            Rule::per_page => StepSetting::PerPage(name(children.expect(Rule::name)?)),
            Rule::idempotency_key => StepSetting::IdempotencyKey(self.expr(children.next()?)?),
            Rule::timeout => StepSetting::Timeout(self.duration(children.next()?)),
            Rule::retry => StepSetting::Retry(self.retry(children)?),
            Rule::on_error => StepSetting::OnError(self.on_error(children.next()?)?),
            Rule::encoding => StepSetting::Encoding(name(children.next()?)),
            Rule::rules => StepSetting::Rules(self.rules(children)?),
            Rule::partial_data => StepSetting::PartialData(name(children.next()?)),
            _ => return bug(&children.next()?, "unknown step setting"),
        };
        Ok(Spanned::new(setting, at))
    }

    fn mapping(&mut self, pair: Pair<'_, Rule>) -> Built<Vec<Assignment>> {
        Children::of(pair)
            .rest()
            .map(|assignment| {
                let mut children = Children::of(assignment);
                let target = children.expect(Rule::target)?;
                let target_span = span(&target);
                let segments = Children::of(target)
                    .rest()
                    .map(|segment| match segment.as_rule() {
                        Rule::target_index => {
                            let index = Children::of(segment).next()?;
                            Ok(TargetSegment::Index(self.u32(index) as usize))
                        }
                        _ => Ok(TargetSegment::Key(self.key(segment)?.node)),
                    })
                    .collect::<Built<_>>()?;
                Ok(Assignment {
                    target: Spanned::new(segments, target_span),
                    value: self.expr(children.next()?)?,
                })
            })
            .collect()
    }

    fn pagination(&mut self, pair: Pair<'_, Rule>) -> Built<Pagination> {
        let rule = pair.as_rule();
        if rule == Rule::next_link {
            return Ok(Pagination::NextLink(self.next_link(pair)?));
        }
        let mut children = Children::of(pair);
        Ok(match rule {
            Rule::page_cursor => Pagination::Cursor(self.cursor_param(children.next()?)?),
            Rule::page_offset => Pagination::Offset {
                offset_param: self.text(children.expect(Rule::string)?)?,
                limit_param: self.text(children.expect(Rule::string)?)?,
                limit: self.spanned_u32(children.expect(Rule::integer)?),
            },
            Rule::page_number => {
                let param = self.text(children.expect(Rule::string)?)?;
                let from = children
                    .optional(Rule::integer)
                    .map(|p| self.spanned_u32(p));
                let size = match children.optional(Rule::string) {
                    Some(size_param) => {
                        let size_param = self.text(size_param)?;
                        Some((
                            size_param,
                            self.spanned_u32(children.expect(Rule::integer)?),
                        ))
                    }
                    None => None,
                };
                Pagination::Page { param, from, size }
            }
            _ => return bug(&children.next()?, "unknown pagination"),
        })
    }

    fn policy_setting(&mut self, pair: Pair<'_, Rule>) -> Built<Spanned<PolicySetting>> {
        let at = span(&pair);
        let rule = pair.as_rule();
        let mut children = Children::of(pair);
        let setting = match rule {
            Rule::retry => PolicySetting::Retry(self.retry(children)?),
            Rule::on_error => PolicySetting::OnError(self.on_error(children.next()?)?),
            Rule::timeout => PolicySetting::Timeout(self.duration(children.next()?)),
            _ => return bug(&children.next()?, "unknown default"),
        };
        Ok(Spanned::new(setting, at))
    }

    fn retry(&mut self, mut children: Children<'_>) -> Built<Retry> {
        let attempts = self.spanned_u32(children.expect(Rule::integer)?);
        let clauses = children
            .rest()
            .map(|clause| {
                let at = span(&clause);
                let rule = clause.as_rule();
                let text = clause.as_str();
                let clause = match rule {
                    Rule::backoff => RetryClause::Backoff(match text {
                        "constant" => Backoff::Constant,
                        "linear" => Backoff::Linear,
                        _ => Backoff::Exponential,
                    }),
                    Rule::delay => {
                        let mut parts = Children::of(clause);
                        RetryClause::Delay {
                            initial: self.spanned_duration(parts.expect(Rule::duration)?),
                            max: parts
                                .optional(Rule::duration)
                                .map(|p| self.spanned_duration(p)),
                        }
                    }
                    Rule::word_jitter => RetryClause::Jitter,
                    Rule::retry_on => RetryClause::On(
                        Children::of(clause)
                            .rest()
                            .filter(|p| p.as_rule() == Rule::retry_condition)
                            .map(|p| spanned(retry_condition(p.as_str()), &p))
                            .collect(),
                    ),
                    Rule::max_elapsed => {
                        RetryClause::MaxElapsed(self.duration(Children::of(clause).next()?))
                    }
                    Rule::retry_after => {
                        RetryClause::RetryAfter(name(Children::of(clause).next()?))
                    }
                    _ => return bug(&clause, "unknown retry clause"),
                };
                Ok(Spanned::new(clause, at))
            })
            .collect::<Built<_>>()?;
        Ok(Retry { attempts, clauses })
    }

    fn rules(&mut self, children: Children<'_>) -> Built<Rules> {
        let mut rules = Rules {
            preset: None,
            list: Vec::new(),
        };
        for pair in children.rest() {
            match pair.as_rule() {
                Rule::name => rules.preset = Some(name(pair)),
                _ => rules.list.push(self.rule(pair)?),
            }
        }
        Ok(rules)
    }

    /// `STATUSES? (when EXPR)? ACTION (after DELAY)? MESSAGE?`
    fn rule(&mut self, pair: Pair<'_, Rule>) -> Built<ResponseRule> {
        // The pair runs on over the blank and comments after its last clause.
        let last = pair
            .clone()
            .into_inner()
            .filter(|p| !is_trivia(p.as_rule()))
            .last();
        let whole = span(&pair);
        let at = Span::new(whole.start, last.map_or(whole.end, |p| span(&p).end));
        let mut children = Children::of(pair);
        let statuses = match children.optional(Rule::rule_statuses) {
            Some(list) => Children::of(list)
                .rest()
                .map(|status| spanned(status_match(status.as_str()), &status))
                .collect(),
            None => Vec::new(),
        };
        // Before the action, an expression can only be the condition (`when` is a keyword).
        let next = children.next()?;
        let (when, action) = match next.as_rule() {
            Rule::name => (None, next),
            _ => (Some(self.expr(next)?), children.expect(Rule::name)?),
        };
        let mut after = None;
        let mut message = None;
        for clause in children.rest() {
            let clause_span = span(&clause);
            match clause.as_rule() {
                Rule::string => message = Some(self.text(clause)?),
                Rule::rule_header => {
                    let header = self.first_text(clause)?;
                    after = Some(Spanned::new(Delay::Header(header), clause_span));
                }
                _ => {
                    let value = self.expr(clause)?;
                    after = Some(Spanned::new(Delay::Value(value), clause_span));
                }
            }
        }
        Ok(ResponseRule {
            statuses,
            when,
            action: name(action),
            after,
            message,
            span: at,
        })
    }

    fn on_error(&mut self, pair: Pair<'_, Rule>) -> Built<OnError> {
        Ok(match pair.as_rule() {
            Rule::fallback_action => {
                let mut children = Children::of(pair);
                children.expect(Rule::word_fallback)?;
                OnError::Fallback(name(children.expect(Rule::name)?))
            }
            _ => OnError::Action(name(pair)),
        })
    }

    // ------------------------------------------------------------ alerts, environments, tests

    fn alert(&mut self, pair: Pair<'_, Rule>) -> Built<Alert> {
        let at = span(&pair);
        let mut children = Children::of(pair);
        let metric = name(children.expect(Rule::name)?);
        let op = children.expect(Rule::compare_op)?;
        let op = spanned(compare_op(op.as_str()), &op);
        let threshold = children.expect(Rule::number)?;
        let threshold = spanned(threshold.as_str().parse().unwrap_or(f64::NAN), &threshold);
        Ok(Alert {
            metric,
            op,
            threshold,
            window: self.spanned_duration(children.expect(Rule::duration)?),
            channel: name(children.expect(Rule::name)?),
            target: self.expr(children.next()?)?,
            span: at,
        })
    }

    fn environment(&mut self, pair: Pair<'_, Rule>) -> Built<Environment> {
        let at = span(&pair);
        let mut children = Children::of(pair);
        let env_name = name(children.expect(Rule::name)?);
        let overrides = children
            .rest()
            .map(|item| {
                let mut parts = Children::of(item);
                let connection = name(parts.expect(Rule::name)?);
                let setting = parts.next()?;
                let setting = match setting.as_rule() {
                    Rule::unknown_field => {
                        let at = span(&setting);
                        let mut field = Children::of(setting);
                        let unknown = OverrideSetting::Unknown {
                            field: name(field.expect(Rule::name)?),
                            value: self.expr(field.next()?)?,
                        };
                        Spanned::new(unknown, at)
                    }
                    _ => {
                        let known = self.connection_setting(setting)?;
                        Spanned::new(OverrideSetting::Known(known.node), known.span)
                    }
                };
                Ok(Override {
                    connection,
                    setting,
                })
            })
            .collect::<Built<_>>()?;
        Ok(Environment {
            name: env_name,
            overrides,
            span: at,
        })
    }

    fn test(&mut self, pair: Pair<'_, Rule>) -> Built<Test> {
        let at = span(&pair);
        let mut children = Children::of(pair);
        let test_name = self.text(children.expect(Rule::string)?)?;
        let items = children
            .rest()
            .map(|item| self.test_item(item))
            .collect::<Built<_>>()?;
        Ok(Test {
            name: test_name,
            items,
            span: at,
        })
    }

    fn test_item(&mut self, pair: Pair<'_, Rule>) -> Built<Spanned<TestItem>> {
        let at = span(&pair);
        let rule = pair.as_rule();
        let mut children = Children::of(pair);
        let item = match rule {
            Rule::test_event => {
                let value = self.expr(children.expect(Rule::expr)?)?;
                let headers = match children.optional(Rule::headers) {
                    Some(headers) => self.entries(Children::of(headers))?,
                    None => Vec::new(),
                };
                TestItem::Event(TestEvent { value, headers })
            }
            Rule::mock => {
                let connection = name(children.expect(Rule::name)?);
                let method = self.method(children.expect(Rule::method)?)?;
                let path = self.text(children.expect(Rule::string)?)?;
                let predicate = match children.optional(Rule::mock_where) {
                    Some(clause) => Some(self.first_expr(clause)?),
                    None => None,
                };
                let answers = match children.optional(Rule::answers) {
                    Some(block) => {
                        let at = span(&block);
                        let answers = Children::of(block)
                            .rest()
                            .map(|answer| {
                                let line = Children::of(answer).expect(Rule::answer_line)?;
                                self.answer(line)
                            })
                            .collect::<Built<_>>()?;
                        Spanned::new(answers, at)
                    }
                    None => {
                        let line = children.expect(Rule::answer_line)?;
                        let at = span(&line);
                        Spanned::new(vec![self.answer(line)?], at)
                    }
                };
                TestItem::Mock(Mock {
                    connection,
                    method,
                    path,
                    predicate,
                    answers,
                })
            }
            Rule::expect => {
                let inner = children.next()?;
                let rule = inner.as_rule();
                let mut parts = Children::of(inner);
                match rule {
                    Rule::expect_step => {
                        parts.expect(Rule::word_step)?;
                        TestItem::ExpectStep {
                            step: name(parts.expect(Rule::name)?),
                            outcome: name(parts.expect(Rule::name)?),
                        }
                    }
                    _ => TestItem::ExpectRequest(ExpectRequest {
                        connection: name(parts.expect(Rule::name)?),
                        method: self.method(parts.expect(Rule::method)?)?,
                        path: self.text(parts.expect(Rule::string)?)?,
                        predicate: parts
                            .optional(Rule::expr)
                            .map(|e| self.expr(e))
                            .transpose()?,
                        times: parts.optional(Rule::integer).map(|p| self.spanned_u32(p)),
                    }),
                }
            }
            _ => return bug(&children.next()?, "unknown test item"),
        };
        Ok(Spanned::new(item, at))
    }

    /// `STATUS [BODY] [headers { ... }]` of a mock's answer.
    fn answer(&mut self, pair: Pair<'_, Rule>) -> Built<Answer> {
        let mut children = Children::of(pair);
        let status = children.expect(Rule::integer)?;
        let status = spanned(self.bounded(&status, 599, "100 to 599") as u16, &status);
        let body = children
            .optional(Rule::expr)
            .map(|e| self.expr(e))
            .transpose()?;
        let headers = match children.optional(Rule::headers) {
            Some(headers) => self.entries(Children::of(headers))?,
            None => Vec::new(),
        };
        Ok(Answer {
            status,
            body,
            headers,
        })
    }

    // ------------------------------------------------------------ expressions

    fn first_expr(&mut self, pair: Pair<'_, Rule>) -> Built<Expr> {
        self.expr(Children::of(pair).next()?)
    }

    fn expr(&mut self, pair: Pair<'_, Rule>) -> Built<Expr> {
        // Each operator deepens the tree by one level, like each bracket does.
        let operators = match pair.as_rule() {
            Rule::expr => pair
                .clone()
                .into_inner()
                .filter(|p| is_operator(p.as_rule()))
                .count(),
            _ => 0,
        };
        let cost = 1 + operators;
        if self.depth + cost > MAX_DEPTH {
            let at = span(&pair);
            if !self
                .diagnostics
                .iter()
                .any(|d| matches!(d.kind, DiagnosticKind::TooDeep { .. }))
            {
                self.report(DiagnosticKind::TooDeep { max: MAX_DEPTH }, at);
            }
            return Ok(Expr {
                kind: ExprKind::Null,
                span: at,
            });
        }
        self.depth += cost;
        let built = self.nested_expr(pair);
        self.depth -= cost;
        built
    }

    fn nested_expr(&mut self, pair: Pair<'_, Rule>) -> Built<Expr> {
        if pair.as_rule() != Rule::expr {
            return self.operand(pair);
        }
        let pairs = pair.into_inner().filter(|p| !is_trivia(p.as_rule()));
        // The pratt parser's closures cannot share `&mut self`; collect errors instead.
        let mut failure = None;
        let builder = std::cell::RefCell::new(self);
        let result = PRATT
            .map_primary(|operand| {
                builder.borrow_mut().operand(operand).unwrap_or_else(|bug| {
                    let placeholder = Expr {
                        kind: ExprKind::Null,
                        span: bug.span,
                    };
                    failure.get_or_insert(bug);
                    placeholder
                })
            })
            .map_prefix(|op, operand| Expr {
                span: Span::new(span(&op).start, operand.span.end),
                kind: ExprKind::Not(Box::new(operand)),
            })
            .map_infix(|lhs, op, rhs| {
                let operator = match op.as_rule() {
                    Rule::op_or => BinaryOp::Or,
                    Rule::op_and => BinaryOp::And,
                    Rule::op_fallback => BinaryOp::Fallback,
                    _ => compare_op(op.as_str()),
                };
                Expr {
                    span: Span::new(lhs.span.start, rhs.span.end),
                    kind: ExprKind::Binary {
                        op: spanned(operator, &op),
                        lhs: Box::new(lhs),
                        rhs: Box::new(rhs),
                    },
                }
            })
            .parse(pairs);
        match failure {
            Some(bug) => Err(bug),
            None => Ok(result),
        }
    }

    fn operand(&mut self, pair: Pair<'_, Rule>) -> Built<Expr> {
        let at = span(&pair);
        let kind = match pair.as_rule() {
            Rule::expr => return self.expr(pair),
            Rule::null => ExprKind::Null,
            Rule::boolean => ExprKind::Bool(pair.as_str() == "true"),
            Rule::number => match number(pair.as_str()) {
                Some(number) => ExprKind::Number(number),
                None => {
                    let text = pair.as_str().to_string();
                    let range = "about ±1.8e308";
                    self.report(DiagnosticKind::NumberOutOfRange { text, range }, at);
                    ExprKind::Null
                }
            },
            Rule::duration => ExprKind::Duration(self.duration(pair)),
            Rule::string => {
                let text = self.text(pair)?;
                if text.is_template() {
                    ExprKind::Template(text)
                } else {
                    ExprKind::String(text)
                }
            }
            Rule::jsonpath => ExprKind::Path(path_expr(pair.as_str(), at.start)),
            Rule::function => {
                let mut children = Children::of(pair);
                let function = name(children.expect(Rule::ident)?);
                let args = children
                    .rest()
                    .map(|arg| self.expr(arg))
                    .collect::<Built<_>>()?;
                ExprKind::Call { function, args }
            }
            Rule::array => ExprKind::Array(
                Children::of(pair)
                    .rest()
                    .map(|item| self.expr(item))
                    .collect::<Built<_>>()?,
            ),
            Rule::object => ExprKind::Object(
                Children::of(pair)
                    .rest()
                    .map(|property| {
                        let mut parts = Children::of(property);
                        let key = self.key(parts.expect(Rule::key)?)?;
                        Ok((key, self.expr(parts.next()?)?))
                    })
                    .collect::<Built<_>>()?,
            ),
            _ => return bug(&pair, "unknown operand"),
        };
        Ok(Expr { kind, span: at })
    }

    // ------------------------------------------------------------ tokens

    fn first_text(&mut self, pair: Pair<'_, Rule>) -> Built<Text> {
        let inner = Children::of(pair).expect(Rule::string)?;
        self.text(inner)
    }

    fn text(&mut self, pair: Pair<'_, Rule>) -> Built<Text> {
        let start = pair.as_span().start();
        Ok(text::decode(pair.as_str(), start, &mut self.diagnostics))
    }

    fn method(&mut self, pair: Pair<'_, Rule>) -> Built<Spanned<Method>> {
        match Method::parse(pair.as_str()) {
            Some(method) => Ok(spanned(method, &pair)),
            None => bug(&pair, "unknown method"),
        }
    }

    fn duration(&mut self, pair: Pair<'_, Rule>) -> Duration {
        self.spanned_duration(pair).node
    }

    fn spanned_duration(&mut self, pair: Pair<'_, Rule>) -> Spanned<Duration> {
        let duration = parse_duration(pair.as_str()).unwrap_or_else(|| {
            let text = pair.as_str().to_string();
            self.report(DiagnosticKind::DurationOverflow { text }, span(&pair));
            MAX_DURATION
        });
        spanned(duration, &pair)
    }

    fn u32(&mut self, pair: Pair<'_, Rule>) -> u32 {
        self.spanned_u32(pair).node
    }

    fn spanned_u32(&mut self, pair: Pair<'_, Rule>) -> Spanned<u32> {
        let value = self.bounded(&pair, u64::from(u32::MAX), "0 to 4294967295") as u32;
        spanned(value, &pair)
    }

    /// An integer token, at most `max`; a larger one is reported and read as `max`.
    fn bounded(&mut self, pair: &Pair<'_, Rule>, max: u64, range: &'static str) -> u64 {
        match pair.as_str().parse::<u64>() {
            Ok(value) if value <= max => value,
            _ => {
                let text = pair.as_str().to_string();
                self.report(DiagnosticKind::NumberOutOfRange { text, range }, span(pair));
                // The largest value stands in, so that no later check reports a zero.
                max
            }
        }
    }

    fn report(&mut self, kind: DiagnosticKind, at: Span) {
        self.diagnostics.push(Diagnostic::new(kind, at));
    }
}

fn is_operator(rule: Rule) -> bool {
    matches!(
        rule,
        Rule::op_not | Rule::op_or | Rule::op_and | Rule::op_fallback | Rule::compare_op
    )
}

/// The longest duration a spec may write; an overflowing one is reported and read as this,
/// so that no later check reports a zero.
const MAX_DURATION: Duration = Duration::from_secs(u32::MAX as u64);

/// `1h30m`, `500ms`: the sum of each number with its unit; `None` on overflow. The
/// command line reads its durations (`--retention 7d`) with it too, as specs write them.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let mut total = Duration::ZERO;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let value: u64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = if rest.starts_with("ms") { 2 } else { 1 };
        let millis_per_unit: u64 = match rest.get(..unit_len)? {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            _ => return None,
        };
        rest = &rest[unit_len..];
        let millis = value.checked_mul(millis_per_unit)?;
        total = total.checked_add(Duration::from_millis(millis))?;
    }
    // A duration must fit a u32 of seconds: enough for any schedule or retry window.
    (total <= MAX_DURATION).then_some(total)
}

/// A number literal as JSON keeps it: an integer when it is one (`007` is 7), else a float;
/// `None` when it overflows a float.
fn number(text: &str) -> Option<serde_json::Number> {
    if let Ok(int) = text.parse::<i64>() {
        return Some(int.into());
    }
    if let Ok(int) = text.parse::<u64>() {
        return Some(int.into());
    }
    text.parse::<f64>()
        .ok()
        .and_then(serde_json::Number::from_f64)
}

fn retry_condition(text: &str) -> RetryCondition {
    let bytes = text.as_bytes();
    match (text.parse::<u16>(), bytes) {
        (Ok(status), _) => RetryCondition::Status(status),
        (_, [digit @ b'0'..=b'9', b'x', b'x']) => RetryCondition::Class(digit - b'0'),
        _ => RetryCondition::Kind(text.to_string()),
    }
}

/// `404` or `4xx`; the grammar allows nothing else.
fn status_match(text: &str) -> StatusMatch {
    match (text.parse::<u16>(), text.as_bytes()) {
        (Ok(code), _) => StatusMatch::Code(code),
        (_, [digit, ..]) => StatusMatch::Class(digit.saturating_sub(b'0')),
        _ => StatusMatch::Class(0),
    }
}

fn compare_op(text: &str) -> BinaryOp {
    match text {
        "==" => BinaryOp::Eq,
        "!=" => BinaryOp::Ne,
        "<" => BinaryOp::Lt,
        "<=" => BinaryOp::Le,
        ">" => BinaryOp::Gt,
        _ => BinaryOp::Ge,
    }
}

/// Splits `$contact.properties.email` into the root `contact` and the query
/// `$.properties.email`.
fn path_expr(text: &str, start: usize) -> PathExpr {
    let after_dollar = &text[1..];
    let root_len = after_dollar
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(after_dollar.len());
    if root_len == 0 {
        return PathExpr {
            root: None,
            query: text.to_string(),
            query_start: start,
        };
    }
    let root = Spanned::new(
        after_dollar[..root_len].to_string(),
        Span::new(start + 1, start + 1 + root_len),
    );
    let query = format!("${}", &after_dollar[root_len..]);
    PathExpr {
        root: Some(root),
        query,
        query_start: start,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_add_up_their_units() {
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("1h30m"), Some(Duration::from_secs(5400)));
        assert_eq!(parse_duration("2d"), Some(Duration::from_secs(172_800)));
        assert_eq!(parse_duration("99999999999999999999s"), None);
        assert_eq!(parse_duration("50000d"), None);
    }

    #[test]
    fn retry_conditions_are_statuses_classes_or_kinds() {
        assert_eq!(retry_condition("429"), RetryCondition::Status(429));
        assert_eq!(retry_condition("5xx"), RetryCondition::Class(5));
        assert_eq!(
            retry_condition("timeout"),
            RetryCondition::Kind("timeout".into())
        );
    }

    #[test]
    fn a_named_root_is_split_from_its_query_and_spans_map_back() {
        let path = path_expr("$contact.a[0]", 100);
        assert_eq!(path.query, "$.a[0]");
        assert_eq!(
            path.root.as_ref().map(|r| r.span),
            Some(Span::new(101, 108))
        );
        // `a` is query offset 2 and source offset 109.
        assert_eq!(path.span_of(2..3), Span::new(109, 110));
        let event = path_expr("$.a", 5);
        assert_eq!(event.root, None);
        assert_eq!(event.span_of(2..3), Span::new(7, 8));
    }
}
