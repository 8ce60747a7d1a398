//! Every signature preset's header parser on arbitrary input: an answer, never a panic.
//! Header values are arbitrary strings, arbitrary bytes (whatever HTTP lets through), and
//! well-formed headers around arbitrary timestamps, checked at arbitrary clock times.

#![allow(clippy::unwrap_used)]

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use base64::Engine as _;
use hmac::{KeyInit, Mac};
use integ::model::{SignatureEncoding, SignaturePreset};
use integ::webhook::signature::{Incoming, SignatureError, verify};
use proptest::prelude::*;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const SECRET: &[u8] = b"fuzz-secret";
const URL: &str = "http://127.0.0.1:8080/hooks/in";

/// Each preset with the headers it reads.
fn presets() -> Vec<(SignaturePreset, &'static [&'static str])> {
    vec![
        (SignaturePreset::Stripe, &["Stripe-Signature"]),
        (SignaturePreset::Github, &["X-Hub-Signature-256"]),
        (SignaturePreset::Shopify, &["X-Shopify-Hmac-Sha256"]),
        (
            SignaturePreset::HubspotV3,
            &["X-HubSpot-Signature-v3", "X-HubSpot-Request-Timestamp"],
        ),
        (
            SignaturePreset::HmacSha256 {
                header: "X-Signature".into(),
                encoding: SignatureEncoding::Hex,
                prefix: Some("sha256=".into()),
            },
            &["X-Signature"],
        ),
        (
            SignaturePreset::HmacSha256 {
                header: "X-Signature".into(),
                encoding: SignatureEncoding::Base64,
                prefix: None,
            },
            &["X-Signature"],
        ),
    ]
}

fn check(
    preset: &SignaturePreset,
    headers: &HeaderMap,
    body: &[u8],
    now: SystemTime,
    tolerance: Option<Duration>,
) -> Result<(), SignatureError> {
    let incoming = Incoming {
        method: "POST",
        url: URL,
        headers,
        body,
        now,
    };
    verify(preset, SECRET, tolerance, &incoming)
}

fn mac(parts: &[&[u8]]) -> Vec<u8> {
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(SECRET).unwrap();
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().to_vec()
}

/// Any instant a clock may report, before or after 1970.
fn any_now() -> impl Strategy<Value = SystemTime> {
    (any::<bool>(), 0..=i64::MAX as u64, 0..1_000_000_000u32).prop_map(|(before, secs, nanos)| {
        let offset = Duration::new(secs, nanos);
        let now = if before {
            UNIX_EPOCH.checked_sub(offset)
        } else {
            UNIX_EPOCH.checked_add(offset)
        };
        now.unwrap_or(UNIX_EPOCH)
    })
}

/// A header value as a sender may write it: text, raw bytes, or a number of any size.
fn any_value() -> impl Strategy<Value = HeaderValue> {
    prop_oneof![
        any::<String>().prop_filter_map("not a header value", |s| HeaderValue::from_str(&s).ok()),
        proptest::collection::vec(any::<u8>(), 0..200)
            .prop_filter_map("not a header value", |b| HeaderValue::from_bytes(&b).ok()),
        any::<u64>().prop_map(HeaderValue::from),
        any::<i128>().prop_map(|n| HeaderValue::from_str(&n.to_string()).unwrap()),
        (any::<u64>(), "[0-9a-f]{0,70}")
            .prop_map(|(t, v1)| { HeaderValue::from_str(&format!("t={t},v1={v1}")).unwrap() }),
        ("[ -~]{0,30}", "[ -~]{0,30}")
            .prop_map(|(t, v1)| { HeaderValue::from_str(&format!("t={t},v1={v1}")).unwrap() }),
    ]
}

fn any_tolerance() -> impl Strategy<Value = Option<Duration>> {
    proptest::option::of(any::<u64>().prop_map(Duration::from_secs))
}

proptest! {
    #[test]
    fn arbitrary_header_values_never_panic_and_never_pass(
        values in proptest::collection::vec(any_value(), 2),
        body in proptest::collection::vec(any::<u8>(), 0..64),
        now in any_now(),
        tolerance in any_tolerance(),
    ) {
        for (preset, names) in presets() {
            let mut headers = HeaderMap::new();
            for (name, value) in names.iter().zip(&values) {
                headers.insert(HeaderName::from_bytes(name.as_bytes()).unwrap(), value.clone());
            }
            // A forged MAC of 256 bits does not match by chance.
            prop_assert!(check(&preset, &headers, &body, now, tolerance).is_err(), "{preset:?}");
        }
    }

    /// A Stripe header signed with the right secret at any time at all passes exactly when
    /// that time is within the tolerance of now.
    #[test]
    fn stripe_at_any_timestamp(t in any::<u64>(), now in any_now(), tolerance in any_tolerance()) {
        let body = br#"{"id":1}"#;
        let v1 = hex::encode(mac(&[t.to_string().as_bytes(), b".", body]));
        let mut headers = HeaderMap::new();
        headers.insert("stripe-signature", HeaderValue::from_str(&format!("t={t},v1={v1}")).unwrap());
        let result = check(&SignaturePreset::Stripe, &headers, body, now, tolerance);
        prop_assert_eq!(result.is_ok(), within(UNIX_EPOCH.checked_add(Duration::from_secs(t)), now, tolerance));
    }

    /// The same for HubSpot's millisecond timestamps.
    #[test]
    fn hubspot_at_any_timestamp(millis in any::<u64>(), now in any_now(), tolerance in any_tolerance()) {
        let body = br#"[{"eventId":1}]"#;
        let text = millis.to_string();
        let v3 = base64::engine::general_purpose::STANDARD
            .encode(mac(&[b"POST", URL.as_bytes(), body, text.as_bytes()]));
        let mut headers = HeaderMap::new();
        headers.insert("x-hubspot-signature-v3", HeaderValue::from_str(&v3).unwrap());
        headers.insert("x-hubspot-request-timestamp", HeaderValue::from_str(&text).unwrap());
        let result = check(&SignaturePreset::HubspotV3, &headers, body, now, tolerance);
        prop_assert_eq!(result.is_ok(), within(UNIX_EPOCH.checked_add(Duration::from_millis(millis)), now, tolerance));
    }
}

fn within(signed_at: Option<SystemTime>, now: SystemTime, tolerance: Option<Duration>) -> bool {
    let tolerance = tolerance.unwrap_or(integ::webhook::signature::DEFAULT_TOLERANCE);
    signed_at.is_some_and(|at| {
        let age = now.duration_since(at).unwrap_or_else(|e| e.duration());
        age <= tolerance
    })
}
