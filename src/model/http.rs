//! What HTTP accepts of a spec's values. Lint checks the values written in a spec with these
//! rules, and the engine applies the same ones to values known only at run time (secrets,
//! environment variables, templates), so that lint passes nothing run would refuse.

use reqwest::Url;
use reqwest::header::{HeaderName, HeaderValue};

/// A connection's base URL: absolute `http` or `https` with a host, and no query or
/// fragment (they would swallow every step's path).
pub fn base_url(text: &str) -> Option<Url> {
    let url = http_url(text)?;
    (url.query().is_none() && url.fragment().is_none()).then_some(url)
}

/// An absolute `http` or `https` URL with a host, such as an OAuth2 `token_url`.
pub fn http_url(text: &str) -> Option<Url> {
    let url = Url::parse(text).ok()?;
    let web = matches!(url.scheme(), "http" | "https") && url.host_str().is_some();
    web.then_some(url)
}

/// An HTTP header name: a token of RFC 9110 (letters, digits and ``!#$%&'*+-.^_`|~``).
pub fn header_name(text: &str) -> Option<HeaderName> {
    HeaderName::from_bytes(text.as_bytes()).ok()
}

/// An HTTP header value as the client sends it: no line break or other control character
/// but the tab.
pub fn header_value(text: &str) -> Option<HeaderValue> {
    HeaderValue::from_str(text).ok()
}

/// Whether a request path has a `.` or `..` segment before its query, written or
/// percent-encoded: URL parsers resolve them, which would move the request out of the base
/// URL's path, so the engine refuses such a path. A `\` separates segments too: URL parsers
/// read it as `/` in http(s).
pub fn has_dot_segment(path: &str) -> bool {
    let before_query = path.split(['?', '#']).next().unwrap_or_default();
    before_query.split(['/', '\\']).any(|segment| {
        let decoded = percent_encoding::percent_decode_str(segment).decode_utf8_lossy();
        decoded == "." || decoded == ".."
    })
}

/// Whether a webhook path is a URL path as a request carries it (ASCII, without a space,
/// query or fragment), so that a request can match it.
pub fn route_path(path: &str) -> bool {
    path.is_ascii()
        && path
            .parse::<axum::http::uri::PathAndQuery>()
            .is_ok_and(|p| p.query().is_none() && p.as_str() == path)
}

/// A mock's or expectation's path and the query parameters written after its `?`, decoded
/// as a server decodes them (`+` and `%20` are spaces).
pub fn split_query(path: &str) -> (&str, Vec<(String, String)>) {
    match path.split_once('?') {
        Some((path, query)) => {
            let pairs = form_urlencoded::parse(query.as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect();
            (path, pairs)
        }
        None => (path, Vec::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_headers_follow_what_the_client_accepts() {
        assert!(base_url("https://api.example.com/v2").is_some());
        assert!(base_url("https://api.example.com:99999").is_none());
        assert!(base_url("https://api.example.com/?x=1").is_none());
        assert!(base_url("api.example.com").is_none());
        assert!(http_url("https://auth.example.com/token?x=1").is_some());
        assert!(http_url("not a url").is_none());
        assert!(http_url("ftp://example.com/token").is_none());
        assert!(header_name("X-Request-Id").is_some());
        assert!(header_name("X Request Id").is_none());
        assert!(header_name("").is_none());
        assert!(header_value("Bearer abc").is_some());
        assert!(header_value("a\nb").is_none());
        assert!(header_value("a\0b").is_none());
        assert!(has_dot_segment("/contacts/../admin") && has_dot_segment("/a/%2e%2E/b"));
        assert!(!has_dot_segment("/contacts/1?next=../x"));
        assert!(route_path("/hooks/stripe") && route_path("/hooks/a%20b"));
        assert!(!route_path("/hooks/my hook") && !route_path("/hooks?x=1"));
        assert!(!route_path("/hooks/é") && !route_path("/hooks#x"));
    }
}
