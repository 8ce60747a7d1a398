//! How a trigger's documents become inbox events: split by `each`, filtered by `when`,
//! each with its `dedupe` key. Nothing here drops an event without saying so.

use super::{Scope, Value, WebhookPlan};
use crate::plan::EvalError;
use minijinja::Environment;
use serde_json::Value as Json;
use std::sync::Arc;

/// A webhook request's headers as `header()` reads them: by lowercase name (HTTP names
/// have no case; StackStorm and Probot users matched `X-GitHub-Event` against
/// `X-Github-Event` and lost events), repeated ones joined with `, ` (RFC 9110), a value
/// that is not UTF-8 read lossily. Credentials and signatures are left out, whatever lint
/// let through: `Authorization`, cookies, tokens, keys, every `*signature*` and `*hmac*`
/// header, and the trigger's own signature header. `Debug` shows the names only.
#[derive(Clone, Default)]
pub struct RequestHeaders(Vec<(String, String)>);

impl RequestHeaders {
    /// The readable headers among `pairs`; `signature` is the trigger's signature header.
    pub fn new<'a>(
        pairs: impl IntoIterator<Item = (&'a str, &'a [u8])>,
        signature: Option<&str>,
    ) -> Self {
        let mut headers: Vec<(String, String)> = Vec::new();
        for (name, value) in pairs {
            let name = name.to_ascii_lowercase();
            let hidden = crate::secrets::is_secret_header(&name)
                || signature.is_some_and(|s| s.eq_ignore_ascii_case(&name));
            if hidden {
                continue;
            }
            let value = String::from_utf8_lossy(value);
            match headers.iter_mut().find(|(known, _)| *known == name) {
                Some((_, joined)) => {
                    joined.push_str(", ");
                    joined.push_str(&value);
                }
                None => headers.push((name, value.into_owned())),
            }
        }
        Self(headers)
    }

    /// The value of header `name` (lowercase).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(known, _)| known == name)
            .map(|(_, value)| value.as_str())
    }
}

impl std::fmt::Debug for RequestHeaders {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set()
            .entries(self.0.iter().map(|(name, _)| name))
            .finish()
    }
}

/// The events to enqueue, and what went wrong with their dedupe keys.
#[derive(Debug, Clone, PartialEq)]
pub struct Keyed {
    /// Each event with its dedupe key.
    pub events: Vec<(Json, Option<String>)>,
    /// Events that have a `dedupe` setting but got no key (it found nothing, or failed),
    /// and the first reason. They are enqueued without a key: a duplicate may then run
    /// twice, which is better than an event never running; the trigger reports it.
    pub unkeyed: Option<(usize, String)>,
    /// Events whose `when` was false, dropped.
    pub filtered: usize,
}

/// Why a trigger could not tell which events to enqueue. Nothing is enqueued then: a
/// webhook is answered `500`, so its sender delivers it again, and a poll keeps its
/// position and asks again next round. Enqueueing an event whose `when` failed would run
/// steps for an event the spec may have meant to skip; dropping it would lose it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TriggerError {
    #[error("`each` failed: {0}")]
    Each(EvalError),
    #[error("`when` failed: {0}")]
    When(EvalError),
}

impl WebhookPlan {
    /// The request headers `header()` may read: all but credentials and signatures (see
    /// `RequestHeaders`), this trigger's own signature header included. None when the
    /// trigger reads no header: intake then copies nothing per request.
    pub fn readable_headers<'a>(
        &self,
        pairs: impl IntoIterator<Item = (&'a str, &'a [u8])>,
    ) -> RequestHeaders {
        if !self.reads_headers {
            return RequestHeaders::default();
        }
        let signature = match &self.signature {
            Some((crate::model::SignaturePreset::HmacSha256 { header, .. }, _)) => {
                Some(header.as_str())
            }
            _ => None,
        };
        RequestHeaders::new(pairs, signature)
    }

    /// The events of a request body: split by `each`, filtered by `when`, each with its
    /// dedupe key; `when` and `dedupe` may read the request's `headers`.
    pub fn events(
        &self,
        env: &Arc<Environment<'static>>,
        body: Json,
        headers: &RequestHeaders,
        secrets: &crate::secrets::Secrets,
    ) -> Result<Keyed, TriggerError> {
        let split = match &self.each {
            Some(each) => match each.eval(env, &Scope::of(&body, secrets)) {
                Ok(Some(Json::Array(events))) => events,
                Ok(Some(Json::Null) | None) => Vec::new(),
                Ok(Some(one)) => vec![one],
                Err(error) => return Err(TriggerError::Each(error)),
            },
            None => vec![body],
        };
        keyed_events(
            env,
            split,
            self.when.as_ref(),
            self.dedupe.as_ref(),
            Some(headers),
            secrets,
        )
    }
}

/// Events that pass `when`, each with its `dedupe` key: what webhooks and polls enqueue.
/// A webhook's `headers` are readable with `header()`; a poll has none.
pub fn keyed_events(
    env: &Arc<Environment<'static>>,
    events: Vec<Json>,
    when: Option<&Value>,
    dedupe: Option<&Value>,
    headers: Option<&RequestHeaders>,
    secrets: &crate::secrets::Secrets,
) -> Result<Keyed, TriggerError> {
    let mut keyed = Keyed {
        events: Vec::with_capacity(events.len()),
        unkeyed: None,
        filtered: 0,
    };
    for event in events {
        let scope = Scope {
            headers,
            ..Scope::of(&event, secrets)
        };
        if let Some(when) = when {
            let passes = when.test(env, &scope).map_err(TriggerError::When)?;
            if !passes {
                keyed.filtered += 1;
                continue;
            }
        }
        let key = match dedupe.map(|dedupe| dedupe.eval(env, &scope)) {
            None => None,
            Some(Ok(Some(key))) if !key.is_null() => Some(super::as_text(Some(&key))),
            Some(Ok(_)) => {
                keyed.unkeyed_one("`dedupe` found no key in the event".into());
                None
            }
            Some(Err(error)) => {
                keyed.unkeyed_one(format!("`dedupe` failed: {error}"));
                None
            }
        };
        keyed.events.push((event, key));
    }
    Ok(keyed)
}

impl Keyed {
    fn unkeyed_one(&mut self, reason: String) {
        match &mut self.unkeyed {
            Some((count, _)) => *count += 1,
            None => self.unkeyed = Some((1, reason)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ast::{BinaryOp, Method};
    use crate::secrets::Secrets;
    use serde_json::json;

    fn path(query: &str) -> Value {
        let query = jsonpath_rust::parser::parse_json_path(query).unwrap();
        Value::Path(super::super::Path {
            root: super::super::Root::Document,
            singular: super::super::is_singular(&query),
            query,
        })
    }

    fn hook(when: Option<Value>, dedupe: Option<Value>) -> WebhookPlan {
        WebhookPlan {
            path: "/hooks".into(),
            method: Method::Post,
            signature: None,
            tolerance: None,
            each: None,
            when,
            dedupe,
            retention: None,
            reads_headers: true,
        }
    }

    #[test]
    fn a_dedupe_that_finds_nothing_keeps_the_event_and_says_so() {
        let env = Arc::new(Environment::new());
        let secrets = Secrets::default();
        // The typo of the issue: `$.isue.id` for `$.issue.id`.
        let keyed = hook(None, Some(path("$.isue.id")))
            .events(
                &env,
                json!({"issue": {"id": 7}}),
                &RequestHeaders::default(),
                &secrets,
            )
            .unwrap();
        assert_eq!(keyed.events, vec![(json!({"issue": {"id": 7}}), None)]);
        let (count, reason) = keyed.unkeyed.unwrap();
        assert_eq!(count, 1);
        assert!(reason.contains("`dedupe` found no key"), "{reason}");
    }

    #[test]
    fn headers_are_read_without_case_and_credentials_never() {
        let env = Arc::new(Environment::new());
        let secrets = Secrets::default();
        let pairs: [(&str, &[u8]); 8] = [
            ("x-github-event", b"release"),
            ("X-GitHub-Delivery", b"72d3162e"),
            ("Accept", b"*/*"),
            ("accept", b"text/plain"),
            ("Authorization", b"Bearer canary"),
            ("X-Hub-Signature-256", b"sha256=canary"),
            ("X-Shopify-Hmac-Sha256", b"canary"),
            ("X-Acme-Sig", b"canary"),
        ];
        let mut plan = hook(
            Some(Value::Binary(
                BinaryOp::Eq,
                Box::new(Value::Header("x-github-event".into())),
                Box::new(Value::Literal(json!("release"))),
            )),
            Some(Value::Header("x-github-delivery".into())),
        );
        plan.signature = Some((
            crate::model::SignaturePreset::HmacSha256 {
                header: "X-ACME-SIG".into(),
                encoding: crate::model::SignatureEncoding::Hex,
                prefix: None,
            },
            Value::Literal(json!("s")),
        ));
        let headers = plan.readable_headers(pairs);
        assert_eq!(headers.get("accept"), Some("*/*, text/plain"));
        for hidden in [
            "authorization",
            "x-hub-signature-256",
            "x-shopify-hmac-sha256",
            "x-acme-sig",
        ] {
            assert_eq!(headers.get(hidden), None, "{hidden}");
        }
        assert!(!format!("{headers:?}").contains("canary"));
        let keyed = plan.events(&env, json!({}), &headers, &secrets).unwrap();
        assert_eq!(keyed.events, vec![(json!({}), Some("72d3162e".into()))]);
        let ping = plan.readable_headers([("X-GitHub-Event", b"ping".as_slice())]);
        assert!(
            plan.events(&env, json!({}), &ping, &secrets)
                .unwrap()
                .events
                .is_empty()
        );
    }

    #[test]
    fn a_when_that_fails_is_an_error_not_a_dropped_event() {
        let env = Arc::new(Environment::new());
        let secrets = Secrets::default();
        let when = Value::Binary(
            BinaryOp::Eq,
            Box::new(Value::Secret(crate::secrets::Credential::plain("MISSING"))),
            Box::new(Value::Literal(json!("x"))),
        );
        let failed =
            hook(Some(when), None).events(&env, json!({}), &RequestHeaders::default(), &secrets);
        assert!(matches!(
            failed,
            Err(TriggerError::When(EvalError::MissingSecret(_)))
        ));
    }
}
