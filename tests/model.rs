//! The checked model: settings resolved with their defaults, closed sets as enums.

use integ::lint::lint_sources;
use integ::model::*;
use std::path::PathBuf;
use std::time::Duration;

fn model(text: &str) -> Integration {
    let mut files = lint_sources(vec![(PathBuf::from("spec.integ"), text.to_string())]);
    let file = files.pop().unwrap_or_else(|| panic!("no file"));
    let errors: Vec<_> = file
        .diagnostics
        .iter()
        .map(|d| d.kind.to_string())
        .collect();
    file.model
        .unwrap_or_else(|| panic!("no model; diagnostics: {errors:?}"))
}

fn step<'a>(integration: &'a Integration, name: &str) -> &'a Step {
    integration
        .steps
        .iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no step {name}"))
}

#[test]
fn the_example_specs_all_lower() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("specs");
    let files = integ::lint::lint_paths(&[dir]).unwrap_or_else(|e| panic!("{e}"));
    assert!(files.len() >= 5);
    for file in files {
        assert!(
            file.model.is_some(),
            "{} did not lower: {:?}",
            file.path.display(),
            file.diagnostics
        );
    }
}

#[test]
fn declared_retry_rules_resolve_and_the_rest_take_defaults() {
    let spec = include_str!("../specs/hubspot_to_outreach.integ");
    let integration = model(spec);
    let prospect = step(&integration, "prospect");
    assert_eq!(prospect.retry.attempts.get(), 5);
    assert_eq!(prospect.retry.backoff, Backoff::Exponential);
    assert_eq!(
        (prospect.retry.initial_delay, prospect.retry.max_delay),
        (Duration::from_secs(1), Duration::from_secs(120))
    );
    assert!(prospect.retry.jitter);
    assert_eq!(
        prospect.retry.on,
        [
            RetryCondition::Status(429),
            RetryCondition::Class(5),
            RetryCondition::Timeout
        ]
    );
    assert!(prospect.retry.honor_retry_after);
    assert_eq!(prospect.on_error, OnError::DeadLetter);
    // `enroll` declares no retry and the spec no defaults: the documented default applies.
    assert_eq!(step(&integration, "enroll").retry, RetryPolicy::default());
    let hubspot = integration
        .connection("hubspot")
        .unwrap_or_else(|| panic!("no hubspot"));
    let limit = hubspot.rate_limit.unwrap_or_else(|| panic!("no limit"));
    assert_eq!(
        (limit.count.get(), limit.per, limit.burst),
        (100, Duration::from_secs(10), None)
    );
    assert_eq!(hubspot.encoding, Encoding::Json);
    let outreach = integration
        .connection("outreach")
        .unwrap_or_else(|| panic!("no outreach"));
    assert!(matches!(&outreach.auth, Auth::OAuth2(o) if o.refresh_token.is_some()));
}

#[test]
fn integration_defaults_apply_where_a_step_is_silent() {
    let integration = model(
        r#"integration d {
  defaults { retry 2 constant 3s on 503 timeout 10s on_error skip }
  connection api { base_url "https://api.example.com" encoding form }
  trigger manual
  step quiet = api GET "/a"
  step own = api GET "/b" { retry 4 on_error fallback backup timeout 1s }
  fallback backup = api GET "/c"
}"#,
    );
    let quiet = step(&integration, "quiet");
    assert_eq!(quiet.retry.attempts.get(), 2);
    assert_eq!(quiet.retry.backoff, Backoff::Constant);
    // A single delay is both the first and the longest.
    assert_eq!(
        (quiet.retry.initial_delay, quiet.retry.max_delay),
        (Duration::from_secs(3), Duration::from_secs(3))
    );
    assert_eq!(quiet.retry.on, [RetryCondition::Status(503)]);
    assert_eq!(quiet.on_error, OnError::Skip);
    assert_eq!(quiet.timeout, Some(Duration::from_secs(10)));
    let own = step(&integration, "own");
    assert_eq!(own.retry.attempts.get(), 4);
    assert_eq!(own.retry.on, RetryCondition::DEFAULTS);
    assert_eq!(own.on_error, OnError::Fallback("backup".into()));
    assert_eq!(own.timeout, Some(Duration::from_secs(1)));
    assert_eq!(integration.fallbacks[0].name, "backup");
    assert_eq!(integration.connections[0].encoding, Encoding::Form);
    assert_eq!(integration.concurrency, None, "unbounded unless declared");
    let bounded = model("integration b {\n  concurrency 1\n  trigger manual\n}");
    assert_eq!(bounded.concurrency.map(|c| c.get()), Some(1));
}

#[test]
fn triggers_resolve_their_presets_and_defaults() {
    let integration = model(
        r#"integration d {
  connection api { base_url "https://api.example.com" }
  trigger webhook "/in" { signature hmac_sha256 secret("S") { header "X-Sig" encoding base64 } dedupe $.id }
  trigger webhook "/stripe" { method PUT signature stripe secret("W") }
  trigger poll api "/items" { every 5m dedupe $.id cursor next_link header }
  trigger schedule "0 9 * * MON" { timezone "Europe/Paris" }
  trigger schedule "*/5 * * * *"
  step get = api GET "/x"
}"#,
    );
    let [
        Trigger::Webhook(generic),
        Trigger::Webhook(stripe),
        Trigger::Poll(poll),
        Trigger::Schedule(paris),
        Trigger::Schedule(utc),
    ] = integration.triggers.as_slice()
    else {
        panic!("{:?}", integration.triggers)
    };
    assert_eq!(generic.method, integ::ast::Method::Post);
    let expected = SignaturePreset::HmacSha256 {
        header: "X-Sig".into(),
        encoding: SignatureEncoding::Base64,
        prefix: None,
    };
    assert_eq!(
        generic.signature.as_ref().map(|s| &s.preset),
        Some(&expected)
    );
    assert_eq!(stripe.method, integ::ast::Method::Put);
    assert_eq!(
        stripe.signature.as_ref().map(|s| &s.preset),
        Some(&SignaturePreset::Stripe)
    );
    assert_eq!(
        (poll.method, poll.every),
        (integ::ast::Method::Get, Duration::from_secs(300))
    );
    assert!(matches!(poll.cursor, Some(Cursor::LinkHeader)));
    assert_eq!(paris.timezone, chrono_tz::Europe::Paris);
    assert_eq!(
        (paris.overlap, paris.missed),
        (Overlap::Skip, Missed::Skip),
        "no overlap and nothing made up unless declared"
    );
    let policies = model(
        r#"integration p {
  connection api { base_url "https://api.example.com" }
  trigger schedule "0 9 * * MON" { overlap allow missed all within 14d }
  step get = api GET "/x"
}"#,
    );
    let [Trigger::Schedule(weekly)] = policies.triggers.as_slice() else {
        panic!("{:?}", policies.triggers)
    };
    let expected = Missed::All {
        within: Duration::from_secs(14 * 86_400),
        max: std::num::NonZeroU32::new(Missed::DEFAULT_MAX).unwrap(),
    };
    assert_eq!((weekly.overlap, weekly.missed), (Overlap::Allow, expected));
    assert_eq!(utc.timezone, chrono_tz::UTC);
}

#[test]
fn pagination_carries_its_items_and_page_defaults() {
    let integration = model(
        r#"integration d {
  connection api { base_url "https://api.example.com" }
  trigger manual
  step pages = api GET "/p" { paginate page "page" items $.rows[*] max_pages 3 }
  step plain = api GET "/q" { items $.rows[*] }
}"#,
    );
    let pages = step(&integration, "pages");
    let pagination = pages
        .pagination
        .as_ref()
        .unwrap_or_else(|| panic!("no pagination"));
    assert!(matches!(
        &pagination.style,
        PaginationStyle::Page {
            from: 1,
            size: None,
            ..
        }
    ));
    assert_eq!(pagination.max_pages.map(|n| n.get()), Some(3));
    assert!(pages.items.is_none(), "items belong to the pagination");
    assert!(step(&integration, "plain").items.is_some());
}

#[test]
fn a_spec_with_errors_has_no_model() {
    let mut files = lint_sources(vec![(
        PathBuf::from("bad.integ"),
        "integration d { trigger manual step s = nowhere GET \"/\" }".into(),
    )]);
    assert!(files.pop().is_some_and(|f| f.model.is_none()));
}

/// Every base URL and token URL of the example specs, in their connections and in their
/// environments, can be pointed at a user's staging or a local stand-in with an environment
/// variable, without editing the spec.
#[test]
fn every_url_of_the_example_specs_can_be_pointed_elsewhere_with_env() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("specs");
    let files = integ::lint::lint_paths(&[dir]).unwrap_or_else(|e| panic!("{e}"));
    let from_env = |url: &integ::ast::Expr| matches!(&url.kind, integ::ast::ExprKind::Call { function, .. } if function.node == "env");
    let mut literal = Vec::new();
    for file in files {
        let Some(integration) = file.model else {
            panic!("{} did not lower", file.path.display());
        };
        let environments = integration.environments.iter().flat_map(|environment| {
            let name = format!("environment {}: ", environment.name);
            environment
                .connections
                .iter()
                .map(move |c| (name.clone(), c))
        });
        let connections = integration.connections.iter().map(|c| (String::new(), c));
        for (place, connection) in connections.chain(environments) {
            let mut urls = vec![("base_url", &connection.base_url)];
            if let Auth::OAuth2(oauth2) = &connection.auth {
                urls.push(("token_url", &oauth2.token_url));
            }
            for (setting, url) in urls.into_iter().filter(|(_, url)| !from_env(url)) {
                literal.push(format!(
                    "{}: {place}{}.{setting} = {:?}",
                    file.path.display(),
                    connection.name,
                    url.kind
                ));
            }
        }
    }
    assert!(literal.is_empty(), "written as literals: {literal:#?}");
}

/// The HubSpot example's webhook keys a contact by its id (a contact is created once); its
/// incremental poll by the id and the modification time, so that a contact changed again
/// runs again (the steps' idempotency keys keep Outreach from a second prospect). The poll
/// keeps only contacts created since the integration went live, and reads its mark from
/// each contact as HubSpot writes it.
#[test]
fn a_hubspot_contact_is_keyed_by_id_from_the_webhook_and_by_change_from_the_poll() {
    let specs = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("specs");
    let files = integ::lint::lint_paths(&[specs.join("hubspot_to_outreach.integ")])
        .unwrap_or_else(|e| panic!("{e}"));
    let model = files
        .into_iter()
        .next()
        .and_then(|f| f.model)
        .expect("a model");
    let plan = integ::plan::compile(&model, None, &specs).unwrap_or_else(|e| panic!("{e}"));
    let secrets = integ::secrets::Secrets::from_pairs([]);
    let read = |name: &str| -> serde_json::Value {
        let text = std::fs::read_to_string(specs.join("fixtures").join(name));
        serde_json::from_str(&text.unwrap_or_else(|e| panic!("{name}: {e}")))
            .unwrap_or_else(|e| panic!("{name}: {e}"))
    };
    let keys = |keyed: Result<integ::plan::Keyed, integ::plan::TriggerError>| {
        let keyed = keyed.unwrap_or_else(|e| panic!("{e:?}"));
        assert!(keyed.unkeyed.is_none(), "{:?}", keyed.unkeyed);
        keyed
            .events
            .into_iter()
            .map(|(_, key)| key)
            .collect::<Vec<Option<String>>>()
    };
    // HubSpot's batch: a property change (dropped) and the creation of contact 1246978.
    let hooked = keys(plan.webhooks[0].events(
        &plan.templates,
        read("hubspot-webhook-batch.json"),
        &integ::plan::RequestHeaders::default(),
        &secrets,
    ));
    assert_eq!(hooked, [Some("1246978".to_string())]);
    // A page of the search: HubSpot's example contact, created in 2019, before the
    // integration went live (the poll's `when` drops it), and the same contact as the
    // webhook's, changed since.
    let mut page = read("hubspot-contacts-page.json");
    let mut same = page["results"][0].clone();
    same["id"] = "1246978".into();
    same["createdAt"] = "2026-12-01T09:30:00.000Z".into();
    same["properties"]["hs_lastmodifieddate"] = "2026-12-01T09:45:00.000Z".into();
    page["results"]
        .as_array_mut()
        .expect("results")
        .push(same.clone());
    let poll = &plan.polls[0];
    let scope = integ::plan::Scope::of(&page, &secrets);
    let items = poll
        .items
        .as_ref()
        .map(|items| items.eval(&plan.templates, &scope));
    let Some(Ok(Some(serde_json::Value::Array(items)))) = items else {
        panic!("the poll's items are not a list: {items:?}");
    };
    let polled = keys(integ::plan::keyed_events(
        &plan.templates,
        items,
        poll.when.as_ref(),
        poll.dedupe.as_ref(),
        None,
        &secrets,
    ));
    assert_eq!(
        polled,
        [Some("1246978@2026-12-01T09:45:00.000Z".to_string())]
    );
    let since = poll.since.as_ref().expect("an incremental poll");
    let mark = since
        .path
        .eval(&plan.templates, &integ::plan::Scope::of(&same, &secrets))
        .unwrap()
        .unwrap();
    let mark = since.kind.read(&mark).unwrap();
    assert_eq!(since.send.render(mark), serde_json::json!(1796118300000i64));
}

#[test]
fn rules_lower_with_2xx_for_no_status_and_environments_replace_a_connections_rules() {
    let integration = model(
        r#"integration rules {
  connection api {
    base_url "https://api.example.com"
    auth none
    rules { when $.ok == false fail }
  }
  trigger manual
  step a = api GET "/a" { rules { 404 when $.code == "none" empty } }
  environment staging { api.rules { 5xx when $.busy retry after header "Retry-After" } }
}"#,
    );
    let rules = &integration.connection("api").unwrap().rules;
    assert_eq!(rules[0].statuses, [StatusMatch::Class(2)]);
    assert!(matches!(
        rules[0].action,
        RuleAction::Fail { message: None }
    ));
    let own = &step(&integration, "a").rules;
    assert_eq!(own[0].statuses, [StatusMatch::Code(404)]);
    assert!(matches!(own[0].action, RuleAction::Empty));
    assert_eq!(step(&integration, "a").partial_data, PartialData::Fail);
    let staging = &integration.environments[0].connections[0].rules;
    assert!(matches!(
        &staging[0].action,
        RuleAction::Retry { after: Some(Delay::Header(name)), .. } if name == "Retry-After"
    ));
}

/// `secret("X")` in a template is refused (E413), but `secret` is also a fine step name:
/// reading the step's result is no secret.
#[test]
fn a_step_named_secret_is_read_in_templates_as_the_step() {
    let integration = model(
        r#"integration vault {
  connection api { base_url "https://api.example.com" auth bearer secret("TOKEN") }
  trigger manual
  step secret = api GET "/secrets/latest"
  step audit = api POST "/audit" {
    idempotency_key "audit-{{ secret.id }}"
    body { id = "{{ secret.id }}" }
  }
}"#,
    );
    assert_eq!(integration.steps.len(), 2);
}

/// Intake copies a request's headers only for a trigger whose `when` or `dedupe` reads one:
/// the copy is per request, on the serve hot path.
#[test]
fn only_a_webhook_that_reads_a_header_is_given_the_headers() {
    let spec = r#"
integration hooks {
  connection sink {
    base_url "http://127.0.0.1:9"
    auth none
  }
  trigger webhook "/github" {
    when header("X-GitHub-Event") == "release"
  }
  trigger webhook "/plain" {
    when $.action == "published"
  }
  step post = sink POST "/x" {
    body { a = $.action }
  }
}
"#;
    let model = model(spec);
    let plan = integ::plan::compile(&model, None, std::path::Path::new("."))
        .unwrap_or_else(|e| panic!("{e}"));
    let pairs = [("X-GitHub-Event", b"release".as_slice())];
    let read = |path: &str| {
        let hook = plan.webhooks.iter().find(|w| w.path == path).expect(path);
        hook.readable_headers(pairs)
            .get("x-github-event")
            .map(str::to_string)
    };
    assert_eq!(read("/github").as_deref(), Some("release"));
    assert_eq!(read("/plain"), None);
}
