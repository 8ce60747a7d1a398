//! Webhook signatures: each provider's scheme, compared in constant time, with a replay
//! window where the provider signs a timestamp.

use crate::model::{SignatureEncoding, SignaturePreset};
use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use subtle::ConstantTimeEq;

/// How old a signed timestamp may be when the spec sets no `tolerance`.
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(5 * 60);

/// A webhook request as signatures see it.
#[derive(Debug, Clone, Copy)]
pub struct Incoming<'a> {
    pub method: &'a str,
    /// The URL the provider called, scheme and host included (HubSpot signs it).
    pub url: &'a str,
    pub headers: &'a axum::http::HeaderMap,
    pub body: &'a [u8],
    pub now: SystemTime,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("missing `{0}` header")]
    Missing(String),
    #[error("malformed `{header}` header: {reason}")]
    Malformed {
        header: String,
        reason: &'static str,
    },
    #[error("signature does not match")]
    Mismatch,
    #[error("signed timestamp is outside the {0:?} tolerance")]
    Stale(Duration),
}

/// Checks `incoming` against `preset` with the shared `secret`.
pub fn verify(
    preset: &SignaturePreset,
    secret: &[u8],
    tolerance: Option<Duration>,
    incoming: &Incoming<'_>,
) -> Result<(), SignatureError> {
    let tolerance = tolerance.unwrap_or(DEFAULT_TOLERANCE);
    match preset {
        SignaturePreset::HmacSha256 {
            header,
            encoding,
            prefix,
        } => {
            let value = header_value(incoming, header)?;
            let value = match prefix {
                Some(prefix) => value
                    .strip_prefix(prefix.as_str())
                    .ok_or_else(|| malformed(header, "the declared prefix is missing"))?,
                None => value,
            };
            let given = match encoding {
                SignatureEncoding::Hex => hex_mac(header, value)?,
                SignatureEncoding::Base64 => base64_mac(header, value)?,
            };
            matches(&mac(secret, &[incoming.body]), &given)
        }
        SignaturePreset::Github => {
            const NAME: &str = "X-Hub-Signature-256";
            let value = header_value(incoming, NAME)?;
            let value = value
                .strip_prefix("sha256=")
                .ok_or_else(|| malformed(NAME, "it does not start with `sha256=`"))?;
            matches(&mac(secret, &[incoming.body]), &hex_mac(NAME, value)?)
        }
        SignaturePreset::Shopify => {
            const NAME: &str = "X-Shopify-Hmac-Sha256";
            let value = header_value(incoming, NAME)?;
            matches(&mac(secret, &[incoming.body]), &base64_mac(NAME, value)?)
        }
        SignaturePreset::Stripe => stripe(secret, tolerance, incoming),
        SignaturePreset::HubspotV3 => hubspot_v3(secret, tolerance, incoming),
    }
}

/// `Stripe-Signature: t=TIMESTAMP,v1=HEX[,v1=HEX...]` over `TIMESTAMP.BODY`.
fn stripe(
    secret: &[u8],
    tolerance: Duration,
    incoming: &Incoming<'_>,
) -> Result<(), SignatureError> {
    const NAME: &str = "Stripe-Signature";
    let value = header_value(incoming, NAME)?;
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in value.split(',') {
        match part.trim().split_once('=') {
            Some(("t", t)) => timestamp = Some(t),
            Some(("v1", v)) => signatures.push(v),
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or_else(|| malformed(NAME, "no `t=` timestamp"))?;
    let signed_at = signed_time(timestamp, Duration::from_secs)
        .ok_or_else(|| malformed(NAME, "`t=` is not a time in seconds since 1970"))?;
    fresh(signed_at, tolerance, incoming.now)?;
    let expected = mac(secret, &[timestamp.as_bytes(), b".", incoming.body]);
    let any = signatures.iter().any(|signature| {
        hex::decode(signature).is_ok_and(|given| matches(&expected, &given).is_ok())
    });
    if any {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

/// `X-HubSpot-Signature-v3`: base64 of the MAC of method, URL, body and the
/// `X-HubSpot-Request-Timestamp` (milliseconds), which must be recent.
fn hubspot_v3(
    secret: &[u8],
    tolerance: Duration,
    incoming: &Incoming<'_>,
) -> Result<(), SignatureError> {
    const SIGNATURE: &str = "X-HubSpot-Signature-v3";
    const TIMESTAMP: &str = "X-HubSpot-Request-Timestamp";
    let signature = header_value(incoming, SIGNATURE)?;
    let timestamp = header_value(incoming, TIMESTAMP)?;
    let signed_at = signed_time(timestamp.trim(), Duration::from_millis)
        .ok_or_else(|| malformed(TIMESTAMP, "not a time in milliseconds since 1970"))?;
    fresh(signed_at, tolerance, incoming.now)?;
    let given = base64_mac(SIGNATURE, signature)?;
    let url = hubspot_uri(incoming.url);
    let signed = [
        incoming.method.as_bytes(),
        url.as_bytes(),
        incoming.body,
        timestamp.as_bytes(),
    ];
    matches(&mac(secret, &signed), &given)
}

/// The characters HubSpot decodes in the URL before signing it; its instructions for v3
/// say to decode these (and only these) the same way before checking.
const HUBSPOT_DECODED: [(&str, char); 12] = [
    ("3A", ':'),
    ("2F", '/'),
    ("3F", '?'),
    ("40", '@'),
    ("21", '!'),
    ("24", '$'),
    ("27", '\''),
    ("28", '('),
    ("29", ')'),
    ("2A", '*'),
    ("2C", ','),
    ("3B", ';'),
];

fn hubspot_uri(url: &str) -> String {
    let mut decoded = String::with_capacity(url.len());
    let mut rest = url;
    while let Some(at) = rest.find('%') {
        decoded.push_str(&rest[..at]);
        let code = rest.get(at + 1..at + 3).unwrap_or("");
        match HUBSPOT_DECODED
            .iter()
            .find(|(hex, _)| hex.eq_ignore_ascii_case(code))
        {
            Some((_, character)) => {
                decoded.push(*character);
                rest = &rest[at + 3..];
            }
            None => {
                decoded.push('%');
                rest = &rest[at + 1..];
            }
        }
    }
    decoded.push_str(rest);
    decoded
}

/// A signed time written as decimal digits counting `unit`s since 1970; `None` when it is
/// not such a number or lies past what the clock can hold (checked, never a panic).
fn signed_time(text: &str, unit: fn(u64) -> Duration) -> Option<SystemTime> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    UNIX_EPOCH.checked_add(unit(text.parse().ok()?))
}

fn fresh(
    signed_at: SystemTime,
    tolerance: Duration,
    now: SystemTime,
) -> Result<(), SignatureError> {
    let age = now
        .duration_since(signed_at)
        .unwrap_or_else(|e| e.duration());
    if age > tolerance {
        Err(SignatureError::Stale(tolerance))
    } else {
        Ok(())
    }
}

fn mac(secret: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    // HMAC accepts keys of any length, so this cannot fail.
    let Ok(mut mac) = <Hmac<Sha256> as KeyInit>::new_from_slice(secret) else {
        return Vec::new();
    };
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().to_vec()
}

/// Constant-time comparison of the expected MAC with the one given.
fn matches(expected: &[u8], given: &[u8]) -> Result<(), SignatureError> {
    if !expected.is_empty() && bool::from(expected.ct_eq(given)) {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

fn malformed(header: &str, reason: &'static str) -> SignatureError {
    SignatureError::Malformed {
        header: header.to_string(),
        reason,
    }
}

fn hex_mac(header: &str, value: &str) -> Result<Vec<u8>, SignatureError> {
    hex::decode(value.trim()).map_err(|_| malformed(header, "the signature is not hex"))
}

fn base64_mac(header: &str, value: &str) -> Result<Vec<u8>, SignatureError> {
    base64::engine::general_purpose::STANDARD
        .decode(value.trim())
        .map_err(|_| malformed(header, "the signature is not base64"))
}

fn header_value<'a>(incoming: &Incoming<'a>, header: &str) -> Result<&'a str, SignatureError> {
    let value = incoming
        .headers
        .get(header)
        .ok_or_else(|| SignatureError::Missing(header.to_string()))?;
    value
        .to_str()
        .map_err(|_| malformed(header, "it is not visible ASCII"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderMap;

    const SECRET: &[u8] = b"whsec_test";
    const BODY: &[u8] = br#"{"id":"evt_1","type":"invoice.paid"}"#;

    fn now() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_700_000_000)
    }

    fn headers(pairs: &[(&str, String)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(
                axum::http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                value.parse().unwrap(),
            );
        }
        map
    }

    fn check(
        preset: &SignaturePreset,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<(), SignatureError> {
        let url = "https://hooks.example.com/hooks/in?x=1";
        verify(
            preset,
            SECRET,
            None,
            &Incoming {
                method: "POST",
                url,
                headers,
                body,
                now: now(),
            },
        )
    }

    fn hex_mac(parts: &[&[u8]]) -> String {
        hex::encode(mac(SECRET, parts))
    }

    fn b64_mac(parts: &[&[u8]]) -> String {
        base64::engine::general_purpose::STANDARD.encode(mac(SECRET, parts))
    }

    /// Valid, tampered body, missing header, and (where signed) a stale timestamp.
    #[test]
    fn github_shopify_and_generic_hmac() {
        let cases = [
            (
                SignaturePreset::Github,
                "X-Hub-Signature-256",
                format!("sha256={}", hex_mac(&[BODY])),
            ),
            (
                SignaturePreset::Shopify,
                "X-Shopify-Hmac-Sha256",
                b64_mac(&[BODY]),
            ),
            (
                SignaturePreset::HmacSha256 {
                    header: "X-Signature".into(),
                    encoding: SignatureEncoding::Hex,
                    prefix: Some("sha256=".into()),
                },
                "X-Signature",
                format!("sha256={}", hex_mac(&[BODY])),
            ),
            (
                SignaturePreset::HmacSha256 {
                    header: "X-Signature".into(),
                    encoding: SignatureEncoding::Base64,
                    prefix: None,
                },
                "X-Signature",
                b64_mac(&[BODY]),
            ),
        ];
        for (preset, header, value) in cases {
            let signed = headers(&[(header, value)]);
            assert_eq!(check(&preset, &signed, BODY), Ok(()), "{preset:?}");
            assert_eq!(
                check(&preset, &signed, b"{\"id\":\"evt_2\"}"),
                Err(SignatureError::Mismatch),
                "{preset:?}"
            );
            assert!(
                matches!(
                    check(&preset, &HeaderMap::new(), BODY),
                    Err(SignatureError::Missing(_))
                ),
                "{preset:?}"
            );
        }
    }

    #[test]
    fn stripe_signs_a_timestamp_and_refuses_stale_ones() {
        let t = 1_700_000_000u64 - 60;
        let sig = hex_mac(&[t.to_string().as_bytes(), b".", BODY]);
        let signed = headers(&[("Stripe-Signature", format!("t={t},v1=deadbeef,v1={sig}"))]);
        assert_eq!(check(&SignaturePreset::Stripe, &signed, BODY), Ok(()));
        assert_eq!(
            check(&SignaturePreset::Stripe, &signed, b"{}"),
            Err(SignatureError::Mismatch)
        );
        let old = t - 600;
        let stale = headers(&[(
            "Stripe-Signature",
            format!(
                "t={old},v1={}",
                hex_mac(&[old.to_string().as_bytes(), b".", BODY])
            ),
        )]);
        assert_eq!(
            check(&SignaturePreset::Stripe, &stale, BODY),
            Err(SignatureError::Stale(DEFAULT_TOLERANCE))
        );
        assert!(matches!(
            check(&SignaturePreset::Stripe, &HeaderMap::new(), BODY),
            Err(SignatureError::Missing(_))
        ));
    }

    #[test]
    fn hubspot_v3_decodes_the_characters_hubspot_decodes_and_no_others() {
        assert_eq!(
            hubspot_uri("http://h/p%3a%2F%3F%40%21%24%27%28%29%2A%2C%3B?q=a%40b%20c%25%2"),
            "http://h/p:/?@!$'()*,;?q=a@b%20c%25%2"
        );
        assert_eq!(hubspot_uri("%"), "%");
        assert_eq!(hubspot_uri("%é3A"), "%é3A");
    }

    #[test]
    fn hubspot_v3_signs_method_url_body_and_timestamp() {
        let url = "https://hooks.example.com/hooks/in?x=1";
        let millis = (1_700_000_000u64 - 30) * 1000;
        let ts = millis.to_string();
        let sig = b64_mac(&[b"POST", url.as_bytes(), BODY, ts.as_bytes()]);
        let signed = headers(&[
            ("X-HubSpot-Signature-v3", sig.clone()),
            ("X-HubSpot-Request-Timestamp", ts),
        ]);
        assert_eq!(check(&SignaturePreset::HubspotV3, &signed, BODY), Ok(()));
        assert_eq!(
            check(&SignaturePreset::HubspotV3, &signed, b"[]"),
            Err(SignatureError::Mismatch)
        );
        let old = ((1_700_000_000u64 - 3600) * 1000).to_string();
        let stale = headers(&[
            (
                "X-HubSpot-Signature-v3",
                b64_mac(&[b"POST", url.as_bytes(), BODY, old.as_bytes()]),
            ),
            ("X-HubSpot-Request-Timestamp", old),
        ]);
        assert_eq!(
            check(&SignaturePreset::HubspotV3, &stale, BODY),
            Err(SignatureError::Stale(DEFAULT_TOLERANCE))
        );
        let missing = headers(&[("X-HubSpot-Signature-v3", sig)]);
        assert_eq!(
            check(&SignaturePreset::HubspotV3, &missing, BODY),
            Err(SignatureError::Missing(
                "X-HubSpot-Request-Timestamp".into()
            ))
        );
    }
}
