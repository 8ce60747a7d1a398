//! Where the state is: `--state` takes a file path (SQLite) or a URL naming the backend.
//! Neither this type's text nor its errors ever hold what the operator wrote in full: a
//! store URL may carry a password (`redis://:password@host`), and a message echoing it
//! would print it.

use super::StoreError;
use std::ffi::OsStr;
use std::path::PathBuf;

/// A state store, as `--state` names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A SQLite file: `PATH`, `sqlite:PATH` or `sqlite://PATH` (`sqlite:///var/integ.db` is
    /// absolute). The path is taken as written: no percent-decoding, no query.
    Sqlite(PathBuf),
}

/// What `--state` accepts, for every refusal to say.
const ACCEPTED: &str = "--state takes a file path, `sqlite:PATH` or `sqlite://PATH`";

/// Why `--state` names no store this integ can open.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlProblem {
    #[error("`sqlite:` needs the path of a file, such as `sqlite:.integ/state.db`; {ACCEPTED}")]
    NoPath,
    /// Options in the URL (`?mode=ro`, as other tools take them) would otherwise become
    /// part of the file's name: a new, empty store.
    #[error(
        "a `sqlite:` URL is a path alone, without `?` or `#` (for a file whose name has \
         one, give the path without `sqlite:`); {ACCEPTED}"
    )]
    Options,
    /// A backend to come: the URL is right, this integ cannot open it yet.
    #[error("the `{0}` store is not available yet; {ACCEPTED}")]
    NotYet(&'static str),
    /// The scheme only (letters, digits, `+`, `-`, `.`): never the rest of the URL.
    #[error(
        "`{0}:` is not a kind of state store; {ACCEPTED} (for a file whose name has a colon, \
         write `./NAME`)"
    )]
    Unknown(String),
}

impl Location {
    /// The store `text` names: a URL when it starts as one (`scheme:`), else a file path.
    /// A path that is not UTF-8 is a path: URLs are text.
    pub fn parse(text: &OsStr) -> Result<Self, StoreError> {
        let Some((scheme, rest)) = text.to_str().and_then(split_scheme) else {
            return Ok(Self::Sqlite(PathBuf::from(text)));
        };
        match scheme.to_ascii_lowercase().as_str() {
            "sqlite" => {
                let path = rest.strip_prefix("//").unwrap_or(rest);
                if path.is_empty() {
                    return Err(UrlProblem::NoPath.into());
                }
                if path.contains(['?', '#']) {
                    return Err(UrlProblem::Options.into());
                }
                Ok(Self::Sqlite(PathBuf::from(path)))
            }
            "redis" | "rediss" => Err(UrlProblem::NotYet("redis").into()),
            _ => Err(UrlProblem::Unknown(scheme.to_string()).into()),
        }
    }

    /// The file `integ serve` holds locked while it serves this store. A SQLite file has
    /// one serving process: two would each put back the other's running events at start.
    /// A shared store (Redis, to come) is served by a fleet, kept apart by the owners and
    /// leases of its claims, and has no lock file: `None`.
    pub fn serve_lock(&self) -> Option<PathBuf> {
        match self {
            Self::Sqlite(path) => {
                let mut lock = path.as_os_str().to_owned();
                lock.push(".serve-lock");
                Some(PathBuf::from(lock))
            }
        }
    }
}

/// The store as messages and logs show it: never a credential.
impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Sqlite(path) => write!(f, "{}", path.display()),
        }
    }
}

/// The scheme and the rest, when `text` starts as a URL does (RFC 3986: a letter, then
/// letters, digits, `+`, `-` or `.`, then `:`). A single letter is a Windows drive
/// (`C:\state.db`): a path.
fn split_scheme(text: &str) -> Option<(&str, &str)> {
    let (scheme, rest) = text.split_once(':')?;
    let mut chars = scheme.chars();
    let first = chars.next().is_some_and(|c| c.is_ascii_alphabetic());
    let others = chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    (scheme.len() > 1 && first && others).then_some((scheme, rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Location, StoreError> {
        Location::parse(OsStr::new(text))
    }

    fn sqlite(path: &str) -> Location {
        Location::Sqlite(PathBuf::from(path))
    }

    #[test]
    fn paths_and_sqlite_urls_name_a_sqlite_file() {
        for (text, path) in [
            (".integ/state.db", ".integ/state.db"),
            ("/var/lib/integ/state.db", "/var/lib/integ/state.db"),
            ("./odd:name.db", "./odd:name.db"),
            (r"C:\integ\state.db", r"C:\integ\state.db"),
            ("sqlite:state.db", "state.db"),
            ("SQLite:state.db", "state.db"),
            ("sqlite://state/integ.db", "state/integ.db"),
            ("sqlite:///var/integ.db", "/var/integ.db"),
        ] {
            assert_eq!(parse(text).unwrap(), sqlite(path), "{text}");
        }
    }

    #[test]
    fn other_stores_are_refused_without_echoing_the_url() {
        let refused = parse("redis://:hunter2@localhost:6379/0").unwrap_err();
        assert!(
            matches!(refused, StoreError::Url(UrlProblem::NotYet("redis"))),
            "{refused:?}"
        );
        let message = refused.to_string();
        assert!(!message.contains("hunter2"), "{message}");
        assert!(
            message.contains("sqlite:PATH"),
            "says what is accepted: {message}"
        );
        assert!(matches!(
            parse("postgres://u:p@h/db"),
            Err(StoreError::Url(UrlProblem::Unknown(s))) if s == "postgres"
        ));
        for empty in ["sqlite:", "sqlite://"] {
            assert!(matches!(
                parse(empty),
                Err(StoreError::Url(UrlProblem::NoPath))
            ));
        }
        for options in ["sqlite://state.db?mode=rwc", "sqlite:state.db#main"] {
            assert!(matches!(
                parse(options),
                Err(StoreError::Url(UrlProblem::Options))
            ));
        }
        assert_eq!(
            parse("odd?.db").unwrap(),
            sqlite("odd?.db"),
            "a path is a path"
        );
    }

    #[test]
    fn a_sqlite_file_is_served_under_a_lock_beside_it() {
        assert_eq!(
            sqlite("state/integ.db").serve_lock(),
            Some(PathBuf::from("state/integ.db.serve-lock"))
        );
    }
}
