//! One test per construct: the text parses into the AST node it means, with its span.

use integ::ast::*;
use integ::span::Span;
use pretty_assertions::assert_eq;
use std::time::Duration;

/// Parses a spec whose body is `body`, asserting the parse is clean.
fn parse(body: &str) -> (Integration, String) {
    let text = format!("integration demo {{\n{body}\n}}\n");
    let (spec, diagnostics) = integ::syntax::parse(&text);
    assert_eq!(diagnostics, vec![], "diagnostics for:\n{text}");
    let spec = spec.unwrap_or_else(|| panic!("no AST for:\n{text}"));
    (spec.integration, text)
}

fn only_step(body: &str) -> Step {
    let (integration, _) = parse(body);
    integration
        .steps
        .into_iter()
        .next()
        .unwrap_or_else(|| panic!("no step"))
}

fn settings_of(step: &Step) -> Vec<&StepSetting> {
    step.settings.iter().map(|s| &s.node).collect()
}

fn string(expr: &Expr) -> &str {
    match &expr.kind {
        ExprKind::String(text) | ExprKind::Template(text) => &text.value,
        other => panic!("not a string: {other:?}"),
    }
}

fn call_name(expr: &Expr) -> (&str, Vec<&str>) {
    match &expr.kind {
        ExprKind::Call { function, args } => (&function.node, args.iter().map(string).collect()),
        other => panic!("not a call: {other:?}"),
    }
}

#[test]
fn header_description_owner_tags_and_comments() {
    let (i, text) = parse(
        "  # the owner is the team on call\n  description \"Syncs\\ncontacts\"\n  owner \"revops\"\n  tags [\"crm\", \"sales\"]\n  concurrency 3",
    );
    assert_eq!(i.name.node, "demo");
    assert_eq!(i.description[0].value, "Syncs\ncontacts");
    assert_eq!(i.owner[0].value, "revops");
    let tags: Vec<&str> = i.tags[0].node.iter().map(|t| t.value.as_str()).collect();
    assert_eq!(tags, ["crm", "sales"]);
    let concurrency = &i.concurrency[0];
    assert_eq!(concurrency.node, 3);
    assert_eq!(&text[concurrency.span.start..concurrency.span.end], "3");
    let (spec, _) = integ::syntax::parse(&text);
    let comments = spec.map(|s| s.comments).unwrap_or_default();
    assert_eq!(comments.len(), 1);
    assert_eq!(comments[0].node, "# the owner is the team on call");
    assert_eq!(
        &text[comments[0].span.start..comments[0].span.end],
        comments[0].node
    );
}

#[test]
fn connection_settings() {
    let (i, text) = parse(
        r#"  connection api {
    base_url env("API_URL", "https://api.example.com")
    headers { "X-Team" = "ops", accept = "application/json" }
    connect_timeout 2s
    timeout 30s
    rate_limit 100 per 10s burst 20
    encoding form
    max_concurrency 4
    circuit_breaker { failures 5 ratio 50% over 1m min_calls 20 cooldown 30s }
  }"#,
    );
    let c = &i.connections[0];
    assert_eq!(c.name.node, "api");
    assert_eq!(&text[c.name.span.start..c.name.span.end], "api");
    let keywords: Vec<&str> = c.settings.iter().map(|s| s.node.keyword()).collect();
    assert_eq!(
        keywords,
        [
            "base_url",
            "headers",
            "connect_timeout",
            "timeout",
            "rate_limit",
            "encoding",
            "max_concurrency",
            "circuit_breaker"
        ]
    );
    let ConnectionSetting::BaseUrl(url) = &c.settings[0].node else {
        panic!()
    };
    assert_eq!(
        call_name(url),
        ("env", vec!["API_URL", "https://api.example.com"])
    );
    let ConnectionSetting::Headers(headers) = &c.settings[1].node else {
        panic!()
    };
    assert_eq!(headers[0].key.node, "X-Team");
    assert_eq!(headers[1].key.node, "accept");
    let ConnectionSetting::ConnectTimeout(d) = c.settings[2].node else {
        panic!()
    };
    assert_eq!(d, Duration::from_secs(2));
    let ConnectionSetting::RateLimit(limit) = &c.settings[4].node else {
        panic!()
    };
    assert_eq!(limit.count.node, 100);
    assert_eq!(limit.per.node, Duration::from_secs(10));
    assert_eq!(limit.burst.as_ref().map(|b| b.node), Some(20));
    let ConnectionSetting::Encoding(encoding) = &c.settings[5].node else {
        panic!()
    };
    assert_eq!(encoding.node, "form");
    assert_eq!(c.settings[6].node, ConnectionSetting::MaxConcurrency(4));
    let ConnectionSetting::CircuitBreaker(breaker) = &c.settings[7].node else {
        panic!()
    };
    assert_eq!(breaker[0].node, BreakerSetting::Failures(5));
    let BreakerSetting::Ratio {
        percent,
        window,
        min_calls,
    } = &breaker[1].node
    else {
        panic!()
    };
    assert_eq!((percent.node, window.node), (50.0, Duration::from_secs(60)));
    assert_eq!(min_calls.as_ref().map(|m| m.node), Some(20));
    assert_eq!(
        breaker[2].node,
        BreakerSetting::Cooldown(Duration::from_secs(30))
    );
}

fn auth_of(setting: &str) -> Auth {
    let (i, _) = parse(&format!("  connection api {{ {setting} }}"));
    match &i.connections[0].settings[0].node {
        ConnectionSetting::Auth(auth) => auth.clone(),
        other => panic!("not auth: {other:?}"),
    }
}

#[test]
fn every_auth_kind() {
    assert_eq!(auth_of("auth none"), Auth::None);
    let Auth::Bearer(token) = auth_of(r#"auth bearer secret("TOKEN")"#) else {
        panic!()
    };
    assert_eq!(call_name(&token), ("secret", vec!["TOKEN"]));
    let Auth::Basic { username, password } = auth_of(r#"auth basic "ops" secret("PASSWORD")"#)
    else {
        panic!()
    };
    assert_eq!(string(&username), "ops");
    assert_eq!(call_name(&password), ("secret", vec!["PASSWORD"]));
    let Auth::ApiKey { in_query, name, .. } =
        auth_of(r#"auth api_key header "X-Api-Key" secret("K")"#)
    else {
        panic!()
    };
    assert_eq!((in_query, name.value.as_str()), (false, "X-Api-Key"));
    let Auth::ApiKey { in_query, name, .. } =
        auth_of(r#"auth api_key query "hapikey" secret("K")"#)
    else {
        panic!()
    };
    assert_eq!((in_query, name.value.as_str()), (true, "hapikey"));
    let Auth::OAuth2(fields) = auth_of(
        r#"auth oauth2 { token_url "https://x/token" client_id secret("ID") client_secret secret("S") refresh_token secret("R") }"#,
    ) else {
        panic!()
    };
    let names: Vec<&str> = fields.iter().map(|f| f.name.node.as_str()).collect();
    assert_eq!(
        names,
        ["token_url", "client_id", "client_secret", "refresh_token"]
    );
}

#[test]
fn webhook_trigger_with_every_setting() {
    let (i, text) = parse(
        r#"  trigger webhook "/hooks/in" {
    method PUT
    signature hmac_sha256 secret("S") { header "X-Sig" encoding base64 prefix "sha256=" }
    tolerance 5m
    each $.events[*]
    when $.type == "created"
    dedupe $.id
  }"#,
    );
    let TriggerKind::Webhook(webhook) = &i.triggers[0].kind else {
        panic!()
    };
    assert_eq!(webhook.path.value, "/hooks/in");
    assert_eq!(
        &text[webhook.path.span.start..webhook.path.span.end],
        "\"/hooks/in\""
    );
    let s: Vec<&WebhookSetting> = webhook.settings.iter().map(|s| &s.node).collect();
    assert_eq!(*s[0], WebhookSetting::Method(Method::Put));
    let WebhookSetting::Signature(signature) = s[1] else {
        panic!()
    };
    assert_eq!(signature.preset.node, "hmac_sha256");
    let options: Vec<&str> = signature.options.iter().map(|o| o.node.keyword()).collect();
    assert_eq!(options, ["header", "encoding", "prefix"]);
    assert_eq!(*s[2], WebhookSetting::Tolerance(Duration::from_secs(300)));
    let WebhookSetting::Each(Expr {
        kind: ExprKind::Path(each),
        ..
    }) = s[3]
    else {
        panic!()
    };
    assert_eq!(
        (each.root.as_ref(), each.query.as_str()),
        (None, "$.events[*]")
    );
    let WebhookSetting::When(Expr {
        kind: ExprKind::Binary { op, .. },
        ..
    }) = s[4]
    else {
        panic!()
    };
    assert_eq!(op.node, BinaryOp::Eq);
    assert!(matches!(s[5], WebhookSetting::Dedupe(_)));
}

#[test]
fn poll_trigger_with_cursor_styles() {
    let (i, _) = parse(
        r#"  trigger poll crm GET "/contacts" {
    every 5m
    query { limit = 100 }
    headers { accept = "application/json" }
    items $.results[*]
    cursor $.paging.next.after into "after"
    dedupe $.id
    when $.archived == false
  }
  trigger poll crm "/deals" { every 1h cursor next_link header }
  trigger poll crm "/notes" { every 1h cursor next_link $.links.next }"#,
    );
    let polls: Vec<&Poll> = i
        .triggers
        .iter()
        .map(|t| match &t.kind {
            TriggerKind::Poll(poll) => poll,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(polls[0].connection.node, "crm");
    assert_eq!(polls[0].method.as_ref().map(|m| m.node), Some(Method::Get));
    assert_eq!(polls[1].method, None);
    let keywords: Vec<&str> = polls[0].settings.iter().map(|s| s.node.keyword()).collect();
    assert_eq!(
        keywords,
        [
            "every", "query", "headers", "items", "cursor", "dedupe", "when"
        ]
    );
    let PollSetting::Cursor(Cursor::Param(param)) = &polls[0].settings[4].node else {
        panic!()
    };
    assert_eq!(param.param.value, "after");
    assert!(matches!(
        polls[1].settings[1].node,
        PollSetting::Cursor(Cursor::NextLink(NextLink::Header))
    ));
    assert!(matches!(
        polls[2].settings[1].node,
        PollSetting::Cursor(Cursor::NextLink(NextLink::Body(_)))
    ));
}

#[test]
fn incremental_poll_with_body_cursor_and_dedupe_retention() {
    let (i, text) = parse(
        r#"  trigger poll crm POST "/search" {
    every 5m
    since $.properties.updated rfc3339 { start env("SINCE", "2026-12-01T00:00:00Z") lookback 10m }
    body { filter.gte = "{{ since }}" }
    cursor $.paging.next.after into body "after"
    dedupe "{{ event.id }}@{{ event.properties.updated }}" for 7d
  }
  trigger poll crm GET "/orders" { every 1m since $.id integer { lookback 100 } }"#,
    );
    let polls: Vec<&Poll> = i
        .triggers
        .iter()
        .filter_map(|t| match &t.kind {
            TriggerKind::Poll(poll) => Some(poll),
            _ => None,
        })
        .collect();
    let keywords: Vec<&str> = polls[0].settings.iter().map(|s| s.node.keyword()).collect();
    assert_eq!(keywords, ["every", "since", "body", "cursor", "dedupe"]);
    let PollSetting::Since(since) = &polls[0].settings[1].node else {
        panic!()
    };
    assert_eq!(since.kind.node, "rfc3339");
    assert_eq!(&text[since.kind.span.start..since.kind.span.end], "rfc3339");
    let settings: Vec<&SinceSetting> = since.settings.iter().map(|s| &s.node).collect();
    assert!(matches!(settings[0], SinceSetting::Start(_)));
    assert_eq!(
        settings[1],
        &SinceSetting::Lookback(Lookback::Duration(Duration::from_secs(600)))
    );
    assert!(matches!(
        polls[0].settings[2].node,
        PollSetting::Body(Body::Mapping(_))
    ));
    let PollSetting::Cursor(Cursor::Body(param)) = &polls[0].settings[3].node else {
        panic!()
    };
    assert_eq!(param.param.value, "after");
    let PollSetting::Dedupe(dedupe) = &polls[0].settings[4].node else {
        panic!()
    };
    let retention = dedupe.retention.as_ref().unwrap();
    assert_eq!(retention.node, Duration::from_secs(7 * 24 * 3600));
    assert_eq!(&text[retention.span.start..retention.span.end], "7d");
    let PollSetting::Since(ids) = &polls[1].settings[1].node else {
        panic!()
    };
    assert_eq!(
        ids.settings[0].node,
        SinceSetting::Lookback(Lookback::Count(100))
    );
}

#[test]
fn schedule_and_manual_triggers() {
    let (i, _) = parse(
        r#"  trigger schedule "0 9 * * MON-FRI" { timezone "Europe/Paris" event { kind: "weekly" } }
  trigger manual"#,
    );
    let TriggerKind::Schedule(schedule) = &i.triggers[0].kind else {
        panic!()
    };
    assert_eq!(schedule.cron.value, "0 9 * * MON-FRI");
    let ScheduleSetting::Timezone(zone) = &schedule.settings[0].node else {
        panic!()
    };
    assert_eq!(zone.value, "Europe/Paris");
    assert!(matches!(
        schedule.settings[1].node,
        ScheduleSetting::Event(_)
    ));
    assert_eq!(i.triggers[1].kind, TriggerKind::Manual);
}

#[test]
fn schedule_policies_parse_as_names_with_their_bounds() {
    let (i, _) = parse(
        r#"  trigger schedule "0 9 * * MON" { overlap queue missed all within 7d max 3 }
  trigger schedule "0 9 * * *" { missed latest }"#,
    );
    let TriggerKind::Schedule(weekly) = &i.triggers[0].kind else {
        panic!()
    };
    let ScheduleSetting::Overlap(overlap) = &weekly.settings[0].node else {
        panic!()
    };
    assert_eq!(overlap.node, "queue");
    let ScheduleSetting::Missed(missed) = &weekly.settings[1].node else {
        panic!()
    };
    assert_eq!(missed.policy.node, "all");
    assert_eq!(
        missed.within.as_ref().map(|w| w.node),
        Some(Duration::from_secs(7 * 86_400))
    );
    assert_eq!(missed.max.as_ref().map(|m| m.node), Some(3));
    let TriggerKind::Schedule(daily) = &i.triggers[1].kind else {
        panic!()
    };
    let ScheduleSetting::Missed(latest) = &daily.settings[0].node else {
        panic!()
    };
    assert_eq!(
        (latest.policy.node.as_str(), &latest.within, &latest.max),
        ("latest", &None, &None)
    );
}

#[test]
fn step_call_line_and_request_settings() {
    let step = only_step(
        r#"  step contact = crm GET "/contacts/{{ event.id }}" {
    query { properties = "email" }
    headers { "X-Trace" = "{{ event.trace }}" }
    cache 10m
    timeout 5s
    encoding json
  }"#,
    );
    assert_eq!(step.name.node, "contact");
    assert_eq!(step.call.connection.node, "crm");
    assert_eq!(step.call.kind.node, CallKind::Http(Method::Get));
    assert_eq!(step.call.path.value, "/contacts/{{ event.id }}");
    assert!(step.call.path.is_template());
    let s = settings_of(&step);
    let StepSetting::Query(query) = s[0] else {
        panic!()
    };
    assert_eq!(
        (query[0].key.node.as_str(), string(&query[0].value)),
        ("properties", "email")
    );
    let StepSetting::Headers(headers) = s[1] else {
        panic!()
    };
    assert!(matches!(headers[0].value.kind, ExprKind::Template(_)));
    assert_eq!(*s[2], StepSetting::Cache(Duration::from_secs(600)));
    assert_eq!(*s[3], StepSetting::Timeout(Duration::from_secs(5)));
}

#[test]
fn body_mapping_targets_and_raw_bodies() {
    let step = only_step(
        r#"  step p = out POST "/prospects" {
    body {
      data.type = "prospect"
      data.emails[0] = $contact.email
      data."x-custom" = 1.5
    }
  }
  step raw = out POST "/raw" { body $.payload }
  step literal = out POST "/lit" { body { type: "prospect", n: -2 } }"#,
    );
    let StepSetting::Body(Body::Mapping(assignments)) = settings_of(&step)[0] else {
        panic!()
    };
    let key = |k: &str| TargetSegment::Key(k.to_string());
    assert_eq!(assignments[0].target.node, [key("data"), key("type")]);
    assert_eq!(
        assignments[1].target.node,
        [key("data"), key("emails"), TargetSegment::Index(0)]
    );
    assert_eq!(assignments[2].target.node, [key("data"), key("x-custom")]);
    let ExprKind::Path(path) = &assignments[1].value.kind else {
        panic!()
    };
    assert_eq!(path.root.as_ref().map(|r| r.node.as_str()), Some("contact"));
    assert_eq!(path.query, "$.email");
    let ExprKind::Number(n) = &assignments[2].value.kind else {
        panic!()
    };
    assert_eq!(n.as_f64(), Some(1.5));
    let (i, _) = parse(
        r#"  step raw = out POST "/raw" { body $.payload }
  step literal = out POST "/lit" { body { type: "prospect", n: -2 } }"#,
    );
    assert!(matches!(
        i.steps[0].settings[0].node,
        StepSetting::Body(Body::Raw(_))
    ));
    let StepSetting::Body(Body::Raw(Expr {
        kind: ExprKind::Object(props),
        ..
    })) = &i.steps[1].settings[0].node
    else {
        panic!()
    };
    assert_eq!(props[0].0.node, "type");
}

#[test]
fn graphql_steps() {
    let step = only_step(
        r#"  step orders = shop graphql "/admin/api/2024-10/graphql.json" {
    document """
      query Orders($first: Int!) {
        orders(first: $first) { edges { node { id } } }
      }
    """
    variables { first = 50 }
  }"#,
    );
    assert_eq!(step.call.kind.node, CallKind::GraphQl);
    let StepSetting::Document(document) = settings_of(&step)[0] else {
        panic!()
    };
    assert!(
        document
            .value
            .starts_with("query Orders($first: Int!) {\n  orders")
    );
    let StepSetting::Variables(variables) = settings_of(&step)[1] else {
        panic!()
    };
    assert_eq!(
        variables[0].target.node,
        [TargetSegment::Key("first".into())]
    );
}

#[test]
fn flow_settings_when_for_each_and_idempotency() {
    let step = only_step(
        r#"  step each = out POST "/items" {
    when $order.total > 100 and not ($order.test == true) or $order.vip != null
    for_each $order.lines[*] concurrency 4
    idempotency_key "line-{{ item.id }}"
  }"#,
    );
    let s = settings_of(&step);
    let StepSetting::When(Expr {
        kind: ExprKind::Binary { op, lhs, .. },
        ..
    }) = s[0]
    else {
        panic!()
    };
    // `or` binds loosest, then `and`, then `not`, then comparisons.
    assert_eq!(op.node, BinaryOp::Or);
    let ExprKind::Binary {
        op: and, rhs: not, ..
    } = &lhs.kind
    else {
        panic!()
    };
    assert_eq!(and.node, BinaryOp::And);
    assert!(matches!(not.kind, ExprKind::Not(_)));
    let StepSetting::ForEach { concurrency, .. } = s[1] else {
        panic!()
    };
    assert_eq!(concurrency.as_ref().map(|c| c.node), Some(4));
    assert!(matches!(s[2], StepSetting::IdempotencyKey(_)));
}

#[test]
fn fallback_operator_binds_tighter_than_comparison() {
    let step = only_step(r#"  step s = out GET "/" { when $.a ?? "x" == "y" }"#);
    let StepSetting::When(Expr {
        kind: ExprKind::Binary { op, lhs, .. },
        ..
    }) = settings_of(&step)[0]
    else {
        panic!()
    };
    assert_eq!(op.node, BinaryOp::Eq);
    assert!(matches!(&lhs.kind, ExprKind::Binary { op, .. } if op.node == BinaryOp::Fallback));
}

#[test]
fn every_pagination_style() {
    let (i, _) = parse(
        r#"  step a = crm GET "/a" { paginate cursor $.next into "after" items $.results[*] max_pages 10 }
  step b = crm GET "/b" { paginate next_link $.links.next items $.data[*] }
  step c = crm GET "/c" { paginate next_link header items $[*] }
  step d = crm GET "/d" { paginate offset "offset" limit "limit" 100 items $.rows[*] }
  step e = crm GET "/e" { paginate page "page" from 1 size "per_page" 50 items $.rows[*] }"#,
    );
    let pagination: Vec<&Pagination> = i
        .steps
        .iter()
        .map(|s| match &s.settings[0].node {
            StepSetting::Paginate(p) => p,
            other => panic!("{other:?}"),
        })
        .collect();
    assert!(matches!(pagination[0], Pagination::Cursor(c) if c.param.value == "after"));
    assert!(matches!(
        pagination[1],
        Pagination::NextLink(NextLink::Body(_))
    ));
    assert!(matches!(
        pagination[2],
        Pagination::NextLink(NextLink::Header)
    ));
    let Pagination::Offset {
        offset_param,
        limit_param,
        limit,
    } = pagination[3]
    else {
        panic!()
    };
    assert_eq!(
        (
            offset_param.value.as_str(),
            limit_param.value.as_str(),
            limit.node
        ),
        ("offset", "limit", 100)
    );
    let Pagination::Page { param, from, size } = pagination[4] else {
        panic!()
    };
    assert_eq!(param.value, "page");
    assert_eq!(from.as_ref().map(|f| f.node), Some(1));
    assert_eq!(
        size.as_ref().map(|(p, n)| (p.value.as_str(), n.node)),
        Some(("per_page", 50))
    );
    assert_eq!(i.steps[0].settings[2].node, StepSetting::MaxPages(10));
}

#[test]
fn per_page_names_the_paged_step() {
    let step =
        only_step(r#"  step s = out PUT "/batch" { per_page contacts body { rows = $contacts } }"#);
    let StepSetting::PerPage(name) = &step.settings[0].node else {
        panic!("{:?}", step.settings[0].node)
    };
    assert_eq!(name.node, "contacts");
    // `per_page` is one word: `per` alone is `rate_limit`'s.
    assert!(matches!(step.settings[1].node, StepSetting::Body(_)));
}

#[test]
fn retry_rules_and_error_policies() {
    let (i, text) = parse(
        r#"  defaults { retry 3 timeout 30s on_error dead_letter }
  step s = out POST "/p" {
    retry 5 exponential 1s..2m jitter on 429, 5xx, timeout max_elapsed 10m retry_after ignore
    on_error fallback backup
  }
  fallback backup = out POST "/backup" { on_error skip }"#,
    );
    let keywords: Vec<&str> = i.defaults.iter().map(|d| d.node.keyword()).collect();
    assert_eq!(keywords, ["retry", "timeout", "on_error"]);
    let StepSetting::Retry(retry) = &i.steps[0].settings[0].node else {
        panic!()
    };
    assert_eq!(retry.attempts.node, 5);
    let clauses: Vec<&RetryClause> = retry.clauses.iter().map(|c| &c.node).collect();
    assert_eq!(*clauses[0], RetryClause::Backoff(Backoff::Exponential));
    let RetryClause::Delay { initial, max } = clauses[1] else {
        panic!()
    };
    assert_eq!(initial.node, Duration::from_secs(1));
    assert_eq!(max.as_ref().map(|m| m.node), Some(Duration::from_secs(120)));
    assert_eq!(&text[initial.span.start..initial.span.end], "1s");
    assert_eq!(*clauses[2], RetryClause::Jitter);
    let RetryClause::On(conditions) = clauses[3] else {
        panic!()
    };
    let conditions: Vec<&RetryCondition> = conditions.iter().map(|c| &c.node).collect();
    assert_eq!(
        conditions,
        [
            &RetryCondition::Status(429),
            &RetryCondition::Class(5),
            &RetryCondition::Kind("timeout".into())
        ]
    );
    assert_eq!(
        *clauses[4],
        RetryClause::MaxElapsed(Duration::from_secs(600))
    );
    assert!(matches!(clauses[5], RetryClause::RetryAfter(mode) if mode.node == "ignore"));
    let StepSetting::OnError(OnError::Fallback(name)) = &i.steps[0].settings[1].node else {
        panic!()
    };
    assert_eq!(name.node, "backup");
    assert_eq!(i.fallbacks[0].name.node, "backup");
}

#[test]
fn alerts_and_environments() {
    let (i, _) = parse(
        r#"  alert when dead_letters > 10 in 1h notify slack secret("SLACK_URL")
  environment staging {
    crm.base_url "http://localhost:4010"
    crm.rate_limit 5 per 1s
    crm.colour "blue"
  }"#,
    );
    let alert = &i.alerts[0];
    assert_eq!(
        (
            alert.metric.node.as_str(),
            alert.op.node,
            alert.threshold.node
        ),
        ("dead_letters", BinaryOp::Gt, 10.0)
    );
    assert_eq!(alert.window.node, Duration::from_secs(3600));
    assert_eq!(alert.channel.node, "slack");
    let env = &i.environments[0];
    assert_eq!(env.name.node, "staging");
    assert_eq!(env.overrides[0].connection.node, "crm");
    assert!(matches!(
        &env.overrides[0].setting.node,
        OverrideSetting::Known(ConnectionSetting::BaseUrl(_))
    ));
    assert!(matches!(
        &env.overrides[1].setting.node,
        OverrideSetting::Known(ConnectionSetting::RateLimit(_))
    ));
    assert!(
        matches!(&env.overrides[2].setting.node, OverrideSetting::Unknown { field, .. } if field.node == "colour")
    );
}

#[test]
fn test_blocks() {
    let (i, _) = parse(
        r#"  test "a lead is enrolled" {
    event file("fixtures/event.json") headers { "X-GitHub-Event" = "release" }
    mock crm GET "/contacts/1" 200 { id: 1 } headers { "Retry-After" = "1" }
    mock crm POST "/x" 503
    expect out POST "/prospects" where $.data.id == 7 times 1
    expect out DELETE "/prospects/1" times 0
    expect step enroll skipped
  }"#,
    );
    let test = &i.tests[0];
    assert_eq!(test.name.value, "a lead is enrolled");
    let items: Vec<&TestItem> = test.items.iter().map(|t| &t.node).collect();
    let TestItem::Event(event) = items[0] else {
        panic!()
    };
    assert_eq!(
        call_name(&event.value),
        ("file", vec!["fixtures/event.json"])
    );
    assert_eq!(event.headers[0].key.node, "X-GitHub-Event");
    let TestItem::Mock(mock) = items[1] else {
        panic!()
    };
    let answer = &mock.answers.node[0];
    assert_eq!((mock.method.node, answer.status.node), (Method::Get, 200));
    assert!(answer.body.is_some() && mock.predicate.is_none());
    assert_eq!(answer.headers[0].key.node, "Retry-After");
    let TestItem::Mock(bare) = items[2] else {
        panic!()
    };
    let answer = &bare.answers.node[0];
    assert_eq!((answer.status.node, answer.body.is_none()), (503, true));
    let TestItem::ExpectRequest(expect) = items[3] else {
        panic!()
    };
    assert!(expect.predicate.is_some());
    assert_eq!(expect.times.as_ref().map(|t| t.node), Some(1));
    let TestItem::ExpectRequest(none) = items[4] else {
        panic!()
    };
    assert_eq!(
        (
            none.predicate.is_none(),
            none.times.as_ref().map(|t| t.node)
        ),
        (true, Some(0))
    );
    let TestItem::ExpectStep { step, outcome } = items[5] else {
        panic!()
    };
    assert_eq!(
        (step.node.as_str(), outcome.node.as_str()),
        ("enroll", "skipped")
    );
}

#[test]
fn mocks_with_a_query_a_condition_and_answers_in_turn() {
    let (i, _) = parse(
        r#"  test "paged" {
    event {}
    mock crm POST "/search?page=2" where $.after == "c2" {
      answer 429 headers { "Retry-After" = "1" }
      # a comment between answers
      answer 200 { results: [] }
    }
    mock crm GET "/contacts" where $.x == 1 200 []
    mock crm GET "/empty" { }
  }"#,
    );
    let items: Vec<&TestItem> = i.tests[0].items.iter().map(|t| &t.node).collect();
    let TestItem::Mock(paged) = items[1] else {
        panic!()
    };
    assert_eq!(paged.path.value, "/search?page=2");
    assert!(paged.predicate.is_some());
    let statuses: Vec<u16> = paged.answers.node.iter().map(|a| a.status.node).collect();
    assert_eq!(statuses, [429, 200]);
    assert_eq!(paged.answers.node[0].headers[0].key.node, "Retry-After");
    assert!(paged.answers.node[1].body.is_some());
    let TestItem::Mock(inline) = items[2] else {
        panic!()
    };
    assert!(inline.predicate.is_some());
    assert_eq!(inline.answers.node[0].status.node, 200);
    let TestItem::Mock(empty) = items[3] else {
        panic!()
    };
    assert!(empty.answers.node.is_empty());
}

#[test]
fn values_of_every_kind() {
    let step = only_step(
        r#"  step s = out POST "/" { body {
    a = null
    b = true
    c = -1.5e3
    d = 1h30m
    e = "tab\there \u{1F600}"
    f = """
        raw \n text
        """
    g = [1, "two", $.three]
    h = { nested: { deep: [] } }
    i = $steps.list[?@.price > 10].name
    j = secret("S")
  } }"#,
    );
    let StepSetting::Body(Body::Mapping(a)) = settings_of(&step)[0] else {
        panic!()
    };
    let kinds: Vec<&ExprKind> = a.iter().map(|x| &x.value.kind).collect();
    assert_eq!(*kinds[0], ExprKind::Null);
    assert_eq!(*kinds[1], ExprKind::Bool(true));
    assert!(matches!(kinds[2], ExprKind::Number(n) if n.as_f64() == Some(-1500.0)));
    assert_eq!(*kinds[3], ExprKind::Duration(Duration::from_secs(5400)));
    assert_eq!(string(&a[4].value), "tab\there 😀");
    assert_eq!(string(&a[5].value), "raw \\n text\n");
    assert!(matches!(kinds[6], ExprKind::Array(items) if items.len() == 3));
    assert!(matches!(kinds[7], ExprKind::Object(props) if props[0].0.node == "nested"));
    let ExprKind::Path(path) = kinds[8] else {
        panic!()
    };
    assert_eq!(path.query, "$.list[?@.price > 10].name");
    assert!(matches!(kinds[9], ExprKind::Call { .. }));
}

#[test]
fn spans_are_byte_offsets_into_the_text() {
    let (i, text) = parse(r#"  step contact = crm GET "/é/{{ event.id }}""#);
    let step = &i.steps[0];
    assert_eq!(&text[step.name.span.start..step.name.span.end], "contact");
    let path = &step.call.path;
    // `event` inside the template maps back to its place in the source.
    let at = path.value.find("event").unwrap_or_default();
    let span = path.span_of(at..at + 5);
    assert_eq!(&text[span.start..span.end], "event");
    assert_eq!(span, Span::new(span.start, span.start + 5));
}

#[test]
fn a_rules_preset_alone_or_before_rules_of_its_own() {
    let (i, _) = parse(
        r#"  connection slack {
    base_url "https://slack.com/api"
    rules slack
    timeout 10s
  }
  step s = slack GET "/x" {
    rules slack { 404 empty }
  }"#,
    );
    let ConnectionSetting::Rules(rules) = &i.connections[0].settings[1].node else {
        panic!()
    };
    assert_eq!(
        rules.preset.as_ref().map(|p| p.node.as_str()),
        Some("slack")
    );
    assert!(rules.list.is_empty());
    let settings = settings_of(&i.steps[0]);
    let StepSetting::Rules(rules) = settings[0] else {
        panic!()
    };
    assert_eq!(
        rules.preset.as_ref().map(|p| p.node.as_str()),
        Some("slack")
    );
    assert_eq!(rules.list.len(), 1);
}

#[test]
fn response_rules_of_steps_and_connections_and_partial_data() {
    let (i, text) = parse(
        r#"  connection slack {
    base_url "https://slack.com/api"
    rules { when $.ok == false fail "Slack: {{ body.error }}" }
  }
  step s = slack graphql "/graphql" {
    document "query { a }"
    rules {
      404, 4xx when $.code == "gone" empty   # a comment after a rule
      retry after header "Retry-After"
      2xx when $.throttled retry after $.wait "slow down"
    }
    partial_data accept
  }"#,
    );
    let ConnectionSetting::Rules(connection_rules) = &i.connections[0].settings[1].node else {
        panic!()
    };
    assert_eq!(connection_rules.preset, None);
    let connection_rules = &connection_rules.list;
    assert_eq!(connection_rules[0].action.node, "fail");
    assert!(connection_rules[0].statuses.is_empty());
    assert_eq!(
        connection_rules[0]
            .message
            .as_ref()
            .map(|m| m.value.as_str()),
        Some("Slack: {{ body.error }}")
    );
    let settings = settings_of(&i.steps[0]);
    let StepSetting::Rules(rules) = settings[1] else {
        panic!()
    };
    let rules = &rules.list;
    let statuses: Vec<StatusMatch> = rules[0].statuses.iter().map(|s| s.node).collect();
    assert_eq!(statuses, [StatusMatch::Code(404), StatusMatch::Class(4)]);
    assert!(rules[0].when.is_some());
    assert_eq!(rules[0].action.node, "empty");
    assert_eq!(
        &text[rules[0].span.start..rules[0].span.end],
        r#"404, 4xx when $.code == "gone" empty"#,
        "a rule's span ends at its last clause, not at the comment after it"
    );
    assert_eq!(rules[1].action.node, "retry");
    let Some(Delay::Header(header)) = rules[1].after.as_ref().map(|a| &a.node) else {
        panic!("{:?}", rules[1].after)
    };
    assert_eq!(header.value, "Retry-After");
    let Some(Delay::Value(wait)) = rules[2].after.as_ref().map(|a| &a.node) else {
        panic!("{:?}", rules[2].after)
    };
    assert!(matches!(wait.kind, ExprKind::Path(_)));
    assert_eq!(
        rules[2].message.as_ref().map(|m| m.value.as_str()),
        Some("slow down")
    );
    let StepSetting::PartialData(policy) = settings[2] else {
        panic!()
    };
    assert_eq!(policy.node, "accept");
}
