//! Request URLs that can only reach the connection's host.
//!
//! A request's URL is the connection's base URL followed by the step's path. Values a path
//! template interpolates are percent-encoded (`plan::path_formatter`) (every byte but RFC 3986's unreserved ones),
//! so `//evil.example`, `../admin`, `?x=` or `@host` arrive as data inside one segment. The
//! joined URL is then checked against the base: same scheme, host and port, or refused.

use reqwest::Url;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum UrlError {
    #[error("base URL `{0}` is not an absolute http(s) URL")]
    BadBase(String),
    #[error("`{url}` is not on the connection's host `{host}`: refused")]
    OffHost { url: String, host: String },
    #[error("`{0}` is not a valid URL")]
    Invalid(String),
    #[error("oauth2 `token_url` `{0}` is not an absolute http(s) URL")]
    TokenUrl(String),
    #[error("path `{0}` has a `.` or `..` segment, which would leave the base URL's path: refused")]
    DotSegment(String),
    #[error("`{url}` is outside the base URL's path `{base}`: refused")]
    OutsideBase { url: String, base: String },
}

/// The connection's base URL, parsed and checked.
pub fn base(text: &str) -> Result<Url, UrlError> {
    crate::model::http::base_url(text).ok_or_else(|| UrlError::BadBase(text.to_string()))
}

/// `base` followed by `path` (already encoded where it came from values). A `.` or `..`
/// segment is refused, encoded or not: URL parsers resolve them, which would move the
/// request out of the base URL's path (another tenant, the API's root).
pub fn join(base: &Url, path: &str) -> Result<Url, UrlError> {
    let prefix = base.as_str().trim_end_matches('/');
    let path = if path.is_empty() || path.starts_with('/') {
        path.to_string()
    } else {
        format!("/{path}")
    };
    if crate::model::http::has_dot_segment(&path) {
        return Err(UrlError::DotSegment(path));
    }
    let url = Url::parse(&format!("{prefix}{path}"))
        .map_err(|_| UrlError::Invalid(format!("{prefix}{path}")))?;
    same_origin(base, &url)?;
    Ok(url)
}

/// A next-page link or redirect target must stay on the base's scheme, host and port.
pub fn same_origin(base: &Url, url: &Url) -> Result<(), UrlError> {
    let same = url.scheme() == base.scheme()
        && url.host_str() == base.host_str()
        && url.port_or_known_default() == base.port_or_known_default()
        && url.username().is_empty()
        && url.password().is_none();
    if same {
        Ok(())
    } else {
        Err(UrlError::OffHost {
            url: url.to_string(),
            host: base.host_str().unwrap_or_default().to_string(),
        })
    }
}

/// Resolves a next-page link (absolute or relative, from a response or a stored poll
/// position) against the current URL. It is held to the rule of templated paths: no `.` or
/// `..` segment as written, and once resolved, the base's origin and under its path.
pub fn next_link(base: &Url, current: &Url, link: &str) -> Result<Url, UrlError> {
    if crate::model::http::has_dot_segment(link) {
        return Err(UrlError::DotSegment(link.to_string()));
    }
    let url = current
        .join(link)
        .map_err(|_| UrlError::Invalid(link.to_string()))?;
    under_base(base, &url)?;
    Ok(url)
}

/// Whether `url` is on the base's origin and under its path: where a connection's
/// requests, next pages and redirects may go.
pub fn under_base(base: &Url, url: &Url) -> Result<(), UrlError> {
    same_origin(base, url)?;
    let root = base.path().trim_end_matches('/');
    let path = url.path();
    let under = path == root || path.strip_prefix(root).is_some_and(|p| p.starts_with('/'));
    if under {
        Ok(())
    } else {
        Err(UrlError::OutsideBase {
            url: url.to_string(),
            base: base.path().to_string(),
        })
    }
}

/// Whether a request path (as sent, percent-encoded) is the path a spec wrote (as text):
/// `/contacts/ada%40example.com` is `/contacts/ada@example.com`.
pub fn same_path(written: &str, sent: &str) -> bool {
    written == sent || percent_encoding::percent_decode_str(sent).decode_utf8_lossy() == written
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api() -> Url {
        base("https://api.example.com/v2").unwrap()
    }

    #[test]
    fn paths_join_under_the_base_path() {
        assert_eq!(
            join(&api(), "/contacts/1").unwrap().as_str(),
            "https://api.example.com/v2/contacts/1"
        );
        assert_eq!(
            join(&api(), "").unwrap().as_str(),
            "https://api.example.com/v2"
        );
    }

    #[test]
    fn encoded_values_cannot_leave_the_host() {
        for hostile in [
            "//evil.example",
            "http://evil.example",
            "@evil.example",
            "../../admin",
            "a?b=c#d",
        ] {
            let encoded = crate::plan::encode_segment(hostile);
            let url = join(&api(), &format!("/contacts/{encoded}")).unwrap();
            assert_eq!(url.host_str(), Some("api.example.com"), "{hostile}");
            assert!(
                url.path().starts_with("/v2/contacts/"),
                "{hostile} gave {url}"
            );
            assert_eq!(url.query(), None, "{hostile}");
        }
    }

    #[test]
    fn even_unencoded_paths_cannot_change_the_host() {
        // A path is always joined after a `/` that ends the authority.
        let base = base("https://api.example.com").unwrap();
        for path in [
            "@evil.example/x",
            ".evil.example/x",
            "//evil.example/x",
            ":8080/x",
        ] {
            assert_eq!(
                join(&base, path).unwrap().host_str(),
                Some("api.example.com"),
                "{path}"
            );
        }
    }

    #[test]
    fn dot_segments_cannot_climb_out_of_the_base_path() {
        let tenant = base("https://api.example.com/tenants/42").unwrap();
        for path in ["/../profile", "/./x", "/%2e%2e/x", "/%2E./x", "/a/.."] {
            assert!(
                matches!(join(&tenant, path), Err(UrlError::DotSegment(_))),
                "{path}"
            );
        }
        assert!(
            join(&tenant, "/..x/y").is_ok(),
            "dots inside a segment are data"
        );
    }

    #[test]
    fn base_urls_with_a_query_or_fragment_are_refused() {
        assert!(base("https://api.example.com/v1?api-version=2024").is_err());
        assert!(base("https://api.example.com/v1#x").is_err());
    }

    #[test]
    fn next_links_stay_on_the_host() {
        let current = join(&api(), "/items").unwrap();
        assert!(next_link(&api(), &current, "/v2/items?page=2").is_ok());
        assert!(next_link(&api(), &current, "https://api.example.com/v2/items?page=3").is_ok());
        assert!(next_link(&api(), &current, "https://evil.example/items").is_err());
        assert!(next_link(&api(), &current, "http://api.example.com/v2/items").is_err());
    }

    #[test]
    fn next_links_stay_under_the_base_path_without_dot_segments() {
        let tenant = base("https://api.example.com/tenants/42").unwrap();
        let current = join(&tenant, "/items").unwrap();
        for (link, ok) in [
            ("/tenants/42/items?page=2", true),
            ("items?page=2", true),
            ("https://api.example.com/tenants/42?page=2", true),
            ("?page=2", true),
            ("../../43/private", false),
            ("/tenants/43/items", false),
            ("/tenants/420/items", false),
            ("/tenants/42/items/../../43", false),
            ("/tenants/42/%2e%2e/43", false),
            ("/tenants/42/%2E./43", false),
            ("./items?page=2", false),
            ("..\\..\\43", false),
            ("https://api.example.com/tenants/42/x/..%2F..", true),
            ("//api.example.com/admin", false),
        ] {
            let url = next_link(&tenant, &current, link);
            assert_eq!(url.is_ok(), ok, "{link}: {url:?}");
            if let Ok(url) = url {
                assert!(url.path().starts_with("/tenants/42"), "{link}: {url}");
            }
        }
        let root = base("https://api.example.com").unwrap();
        let current = join(&root, "/items").unwrap();
        assert!(next_link(&root, &current, "/anything?page=2").is_ok());
    }
}
