//! Who may use the admin listener, and what a request may change: the `--admin-token`
//! (a bearer header for programs, a session cookie for browsers, signed with the token so
//! the cookie is never the token, and expiring after `SESSION`; `Secure` unless signed in
//! over plain HTTP on this machine's loopback), a loopback-only `Host` when there is no token (so that a
//! site re-pointing its name at 127.0.0.1 reaches nothing), and for every POST an `Origin`
//! of this listener plus the form's token. Answers carry headers that keep the pages out
//! of frames and caches.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use hmac::{KeyInit, Mac};
use std::sync::Arc;
use subtle::ConstantTimeEq;

/// The cookie a browser keeps after it gave the token.
pub(super) const SESSION_COOKIE: &str = "integ_admin";

/// How long a sign-in lasts: a working day. The cookie says so (`Max-Age`) and carries its
/// end, signed, so that a copy of it is refused afterwards too.
const SESSION: i64 = 12 * 3600;

/// What guards the admin listener.
pub struct Guard {
    /// The `--admin-token`, if one was given; it also signs the session cookies.
    token: Option<String>,
    /// The token every form carries: random for each process, so that a page from another
    /// site, which cannot read ours, cannot know it.
    form_token: String,
}

impl std::fmt::Debug for Guard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Guard")
            .field("token", &self.token.as_ref().map(|_| "[redacted]"))
            .finish_non_exhaustive()
    }
}

impl Guard {
    /// A guard with `token`, or without one (loopback only).
    pub fn new(token: Option<String>) -> Result<Self, String> {
        let mut random = [0u8; 32];
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut random)
            .map_err(|_| "no randomness for the admin pages' form token".to_string())?;
        Ok(Self {
            token,
            form_token: hex::encode(random),
        })
    }

    pub(super) fn form_token(&self) -> &str {
        &self.form_token
    }

    pub(super) fn has_token(&self) -> bool {
        self.token.is_some()
    }

    /// Whether `given` is the form token of this process.
    pub(super) fn form_token_is(&self, given: &str) -> bool {
        equal(given, &self.form_token)
    }

    /// Whether `given` is the admin token.
    pub(super) fn token_is(&self, given: &str) -> bool {
        self.token
            .as_deref()
            .is_some_and(|token| equal(given, token))
    }

    /// The session cookie a browser gets once it gave the token, at `now` (seconds since
    /// the Unix epoch); `Secure` unless the sign-in came over plain HTTP on loopback.
    pub(super) fn session_cookie(&self, secure: bool, now: i64) -> Option<String> {
        let token = self.token.as_deref()?;
        let ends = now.saturating_add(SESSION);
        let session = format!("{ends}.{}", session_mac(token, ends));
        let secure = if secure { "; Secure" } else { "" };
        Some(format!(
            "{SESSION_COOKIE}={session}; Path=/; Max-Age={SESSION}; HttpOnly; SameSite=Strict{secure}"
        ))
    }

    /// Whether a request carries the token (a bearer header) or a session cookie that has
    /// not ended at `now`.
    fn signed_in(&self, headers: &HeaderMap, now: i64) -> bool {
        let bearer = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        if bearer.is_some_and(|b| self.token_is(b)) {
            return true;
        }
        let Some(token) = &self.token else {
            return false;
        };
        cookies(headers)
            .filter(|(name, _)| *name == SESSION_COOKIE)
            .filter_map(|(_, value)| value.split_once('.'))
            .any(|(ends, mac)| {
                ends.parse::<i64>()
                    .is_ok_and(|ends| now < ends && equal(mac, &session_mac(token, ends)))
            })
    }
}

/// The signature of a session ending at `ends`: HMAC-SHA256 under the token.
fn session_mac(token: &str, ends: i64) -> String {
    // HMAC takes a key of any length.
    let mut mac = <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(token.as_bytes())
        .expect("HMAC takes any key length");
    mac.update(format!("integ admin session until {ends}").as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// Over what a sign-in came, from the page that posted it (its `Origin`, else `Referer`)
/// and the `Host` it was sent to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Transport {
    /// HTTPS (a TLS proxy in front of the listener): the cookie is `Secure`.
    Https,
    /// Plain HTTP to this machine's loopback: nothing crosses a network.
    LoopbackHttp,
    /// Plain HTTP by another name: the cookie would cross a network in clear.
    PlainHttp,
}

pub(super) fn transport(headers: &HeaderMap) -> Transport {
    let text = |name| {
        headers
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
    };
    let page = text(header::ORIGIN).or_else(|| text(header::REFERER));
    if page.is_some_and(|p| p.starts_with("https://")) {
        Transport::Https
    } else if loopback_host(text(header::HOST).unwrap_or("")) {
        Transport::LoopbackHttp
    } else {
        Transport::PlainHttp
    }
}

fn equal(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

fn cookies(headers: &HeaderMap) -> impl Iterator<Item = (&str, &str)> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
}

/// Whether `host` (a `Host` header) names this machine's loopback interface.
fn loopback_host(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        Some(rest) => match rest.split_once(']') {
            Some((name, _)) => name,
            None => return false,
        },
        None => host.rsplit_once(':').map_or(host, |(name, _)| name),
    };
    name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Whether a POST comes from a page of this listener: its `Origin` (or, without one, its
/// `Referer`) is this listener's own, as the `Host` header names it.
fn same_origin(headers: &HeaderMap) -> bool {
    let text = |name| {
        headers
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
    };
    let Some(host) = text(header::HOST) else {
        return false;
    };
    let ours = |origin: &str| {
        origin
            .strip_prefix("http://")
            .or_else(|| origin.strip_prefix("https://"))
            .is_some_and(|rest| rest.eq_ignore_ascii_case(host))
    };
    match (text(header::ORIGIN), text(header::REFERER)) {
        (Some(origin), _) => ours(origin),
        (None, Some(referer)) => {
            let origin: String = referer.splitn(4, '/').take(3).collect::<Vec<_>>().join("/");
            ours(&origin)
        }
        (None, None) => false,
    }
}

/// Every request to the admin listener goes through this first (`/metrics` too).
pub async fn guard(State(guard): State<Arc<Guard>>, request: Request, next: Next) -> Response {
    let headers = request.headers();
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let mut refused = None;
    if !guard.has_token() && !loopback_host(host) {
        refused = Some((
            StatusCode::FORBIDDEN,
            "this admin listener answers requests to localhost only; give --admin-token to reach it by another name",
        ));
    } else if guard.has_token()
        && !guard.signed_in(headers, crate::store::now())
        && request.uri().path() != "/login"
    {
        // A person's browser is sent to sign in; a program (a scraper) is told why not.
        let html = headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|accept| accept.contains("text/html"));
        let browser = request.method() == Method::GET && html && !super::view::wants_json(&request);
        if browser {
            return secured(Redirect::to("/login").into_response());
        }
        refused = Some((StatusCode::UNAUTHORIZED, "the admin token is required"));
    } else if request.method() != Method::GET
        && request.method() != Method::HEAD
        && !same_origin(headers)
    {
        refused = Some((
            StatusCode::FORBIDDEN,
            "refused: this change did not come from a page of this listener (Origin)",
        ));
    }
    let response = match refused {
        Some((status, reason)) => {
            tracing::warn!(
                path = request.uri().path(),
                status = status.as_u16(),
                "admin request refused"
            );
            (status, reason).into_response()
        }
        None => next.run(request).await,
    };
    secured(response)
}

/// No framing (clickjacking), no scripts or outside resources, no caching, no referrer.
fn secured(mut response: Response) -> Response {
    let headers = response.headers_mut();
    let fixed = [
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::CACHE_CONTROL, "no-store"),
        (header::REFERRER_POLICY, "same-origin"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    ];
    for (name, value) in fixed {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts_are_told_apart_from_names_pointing_there() {
        for host in [
            "localhost",
            "localhost:9464",
            "127.0.0.1:9464",
            "[::1]:9464",
            "127.0.0.2",
        ] {
            assert!(loopback_host(host), "{host}");
        }
        for host in [
            "evil.example",
            "evil.example:9464",
            "10.0.0.1:9464",
            "",
            "[::1",
        ] {
            assert!(!loopback_host(host), "{host}");
        }
    }

    #[test]
    fn a_session_cookie_holds_until_it_ends_and_only_as_signed() {
        let guard = Guard::new(Some("a-token-of-sixteen-chars".into())).unwrap();
        let cookie = guard.session_cookie(true, 1_000).unwrap();
        assert!(cookie.contains("; Max-Age=43200;") && cookie.ends_with("; Secure"));
        let pair = cookie.split(';').next().unwrap();
        let with = |pair: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::COOKIE, HeaderValue::from_str(pair).unwrap());
            headers
        };
        assert!(guard.signed_in(&with(pair), 1_000 + SESSION - 1));
        assert!(!guard.signed_in(&with(pair), 1_000 + SESSION), "ended");
        let (_, mac) = pair.split_once('.').unwrap();
        let later = format!("{SESSION_COOKIE}={}.{mac}", 1_000 + 10 * SESSION);
        assert!(
            !guard.signed_in(&with(&later), 1_000 + SESSION),
            "its end moved"
        );
        let other = Guard::new(Some("another-token-sixteen".into())).unwrap();
        assert!(!other.signed_in(&with(pair), 1_000), "another token's");
        assert!(
            !guard
                .session_cookie(false, 1_000)
                .unwrap()
                .contains("Secure")
        );
    }

    #[test]
    fn a_post_is_ours_only_from_our_origin() {
        let with = |pairs: &[(header::HeaderName, &str)]| {
            let mut headers = HeaderMap::new();
            for (name, value) in pairs {
                headers.insert(name.clone(), HeaderValue::from_str(value).unwrap());
            }
            same_origin(&headers)
        };
        let host = (header::HOST, "127.0.0.1:9464");
        assert!(with(&[
            host.clone(),
            (header::ORIGIN, "http://127.0.0.1:9464")
        ]));
        assert!(with(&[
            host.clone(),
            (header::REFERER, "http://127.0.0.1:9464/dead-letters")
        ]));
        assert!(!with(&[
            host.clone(),
            (header::ORIGIN, "http://evil.example")
        ]));
        assert!(!with(&[host.clone(), (header::ORIGIN, "null")]));
        assert!(!with(&[
            host.clone(),
            (header::REFERER, "http://127.0.0.1:9464.evil.example/")
        ]));
        assert!(!with(&[host]), "neither header: refused");
    }
}
