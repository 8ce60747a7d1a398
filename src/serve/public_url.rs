//! The URL a webhook's sender signed: HubSpot v3 signs the whole URL it called, scheme and
//! host included, and behind a proxy that is not the URL this process sees.

use axum::http::{HeaderMap, Uri};

/// Where the signed URL's scheme, host and path prefix come from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum PublicUrl {
    /// The listener's own: plain `http`, the request's `Host`.
    #[default]
    Listener,
    /// As `Listener`, except that a proxy's `X-Forwarded-Proto` and `X-Forwarded-Host`
    /// win. Only for a listener that nothing but the proxy can reach: anyone else could
    /// forge them.
    Forwarded,
    /// A fixed base (`https://hooks.example.com/prefix`, no trailing slash) that the
    /// request's path and query follow.
    Fixed(String),
}

impl PublicUrl {
    /// `--public-url`: an `http` or `https` URL with a host and at most a path prefix.
    pub fn fixed(text: &str) -> Result<Self, String> {
        let url = reqwest::Url::parse(text).map_err(|e| {
            format!("`{text}` is not a URL such as `https://hooks.example.com`: {e}")
        })?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(format!("`{text}` must be an http or https URL with a host"));
        }
        if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() {
            return Err(format!(
                "`{text}` may hold a scheme, a host and a path prefix, nothing else"
            ));
        }
        Ok(Self::Fixed(url.as_str().trim_end_matches('/').to_string()))
    }

    /// The URL the sender of a request to `uri` with `headers` called.
    pub fn of(&self, uri: &Uri, headers: &HeaderMap) -> String {
        let path = uri.path_and_query().map_or(uri.path(), |p| p.as_str());
        if let Self::Fixed(base) = self {
            return format!("{base}{path}");
        }
        let forwarded = |name: &str| {
            (*self == Self::Forwarded)
                .then(|| first(headers, name))
                .flatten()
        };
        let scheme = forwarded("x-forwarded-proto")
            .filter(|p| matches!(*p, "http" | "https"))
            .unwrap_or("http");
        let host = forwarded("x-forwarded-host")
            .or_else(|| first(headers, "host"))
            .or_else(|| uri.authority().map(|a| a.as_str()))
            .unwrap_or("");
        format!("{scheme}://{host}{path}")
    }
}

/// The first value of a header that proxies append to (`a, b`): the one the client-facing
/// proxy set.
fn first<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    let value = headers.get(name)?.to_str().ok()?;
    value
        .split(',')
        .next()
        .map(str::trim)
        .filter(|v| !v.is_empty())
}
