//! Secrets: read from a secrets file (.env format) or the environment, never from the
//! spec; and scrubbed from anything integ prints.

mod credential;
mod file;
mod redaction;

pub use credential::{Credential, PLACEHOLDER};
pub use file::FileError;
pub use redaction::{REDACTED, Redaction, Source};

use std::collections::BTreeMap;
use std::path::Path;

/// Secret values by name, and the redaction set every clone shares.
#[derive(Default, Clone)]
pub struct Secrets {
    values: BTreeMap<String, String>,
    redaction: Redaction,
}

/// Never prints the values.
impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.values.keys()).finish()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    #[error(transparent)]
    File(#[from] FileError),
    #[error("{} not set: give {} in the environment or a --secrets file", list(.0), if .0.len() == 1 { "it" } else { "them" })]
    Missing(Vec<String>),
}

fn list(names: &[String]) -> String {
    let ticked: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
    match ticked.as_slice() {
        [one] => format!("secret {one} is"),
        many => format!("secrets {} are", many.join(", ")),
    }
}

impl Secrets {
    /// The secrets named, each from `file` when it has it, else from the environment.
    /// With `allow_missing` (a dry run), a missing secret reads as a placeholder.
    pub fn load<'a>(
        names: impl IntoIterator<Item = &'a str>,
        file: Option<&Path>,
        allow_missing: bool,
    ) -> Result<Self, SecretsError> {
        Self::load_with_optional(names, [], file, allow_missing)
    }

    /// `load`, with `optional` secrets added where the file or the environment has them
    /// (and left out, not missing, where neither has).
    pub fn load_with_optional<'a>(
        names: impl IntoIterator<Item = &'a str>,
        optional: impl IntoIterator<Item = &'a str>,
        file: Option<&Path>,
        allow_missing: bool,
    ) -> Result<Self, SecretsError> {
        let from_file = match file {
            Some(path) => file::read(path)?,
            None => BTreeMap::new(),
        };
        let lookup = |name: &str| {
            from_file
                .get(name)
                .cloned()
                .or_else(|| std::env::var(name).ok())
        };
        let mut values = BTreeMap::new();
        let mut missing = Vec::new();
        for name in names {
            match lookup(name) {
                Some(value) => {
                    values.insert(name.to_string(), value);
                }
                None if allow_missing => {
                    values.insert(name.to_string(), format!("<secret {name}>"));
                }
                None => missing.push(name.to_string()),
            }
        }
        for name in optional {
            if let Some(value) = lookup(name) {
                values.insert(name.to_string(), value);
            }
        }
        if missing.is_empty() {
            Ok(Self::build(values))
        } else {
            Err(SecretsError::Missing(missing))
        }
    }

    /// Secrets given directly, for tests and embedding.
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        let values = pairs
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Self::build(values)
    }

    /// A placeholder for each name, never a real value: `integ test` must not send real
    /// credentials to its mock servers, nor print them.
    pub fn placeholders<'a>(names: impl IntoIterator<Item = &'a str>) -> Self {
        let values = names
            .into_iter()
            .map(|n| (n.to_string(), format!("<secret {n}>")))
            .collect();
        Self::build(values)
    }

    /// Redacts `value` too from now on (a credential read with `env()`, say).
    pub fn also_redact(&self, value: &str) {
        self.redaction.add(value);
    }

    fn build(values: BTreeMap<String, String>) -> Self {
        let redaction = Redaction::default();
        for value in values.values() {
            redaction.add(value);
        }
        Self { values, redaction }
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    /// The redaction set, shared: what is added to it (a token obtained at run time) is
    /// redacted by every holder of these secrets from then on.
    pub fn redaction(&self) -> &Redaction {
        &self.redaction
    }

    /// `text` with every secret value, in each of its forms, replaced by `[redacted]`.
    pub fn redact(&self, text: &str) -> String {
        self.redaction.redact(text)
    }

    /// `text` redacted, and the beginning of a secret a cut left at its end (see
    /// `Redaction::redact_cut`): for texts that end with an answer's excerpt.
    pub fn redact_cut(&self, text: &str) -> String {
        self.redaction.redact_cut(text)
    }

    /// `value` with every secret redacted, walking the JSON tree (see `Redaction`).
    pub fn redact_json(&self, value: &serde_json::Value) -> serde_json::Value {
        self.redaction.redact_json(value)
    }
}

/// Whether a header or query parameter of this name carries a credential: lint refuses a
/// literal value for it, and output never shows its value.
pub fn is_credential_name(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    // Google and others call the API key simply `key`.
    name == "key"
        || [
            "authorization",
            "cookie",
            "token",
            "secret",
            "api-key",
            "apikey",
            "api_key",
            "password",
        ]
        .iter()
        .any(|word| name.contains(word))
}

/// Whether a request header carries a credential or a signature: `header()` never reads
/// it (lint refuses it, and `plan::RequestHeaders` leaves it out).
pub fn is_secret_header(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    is_credential_name(&name) || name.contains("signature") || name.contains("hmac")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redaction_replaces_every_occurrence_and_debug_shows_names_only() {
        let secrets = Secrets::from_pairs([("TOKEN", "tok-123456"), ("PIN", "42")]);
        let text = "Bearer tok-123456 and again tok-123456, pin 42";
        assert_eq!(
            secrets.redact(text),
            "Bearer [redacted] and again [redacted], pin 42"
        );
        assert_eq!(format!("{secrets:?}"), r#"{"PIN", "TOKEN"}"#);
    }

    #[test]
    fn encoded_and_nested_secrets_are_redacted_whole() {
        let secrets = Secrets::from_pairs([
            ("KEY", "ab+c/d=ef gh"),
            ("SHORT", "tok-1"),
            ("LONG", "tok-1-extended"),
        ]);
        secrets.also_redact("from-env-9");
        let text = "?k=ab%2Bc%2Fd%3Def+gh&x=ab%2Bc%2Fd%3Def%20gh tok-1-extended from-env-9";
        assert_eq!(
            secrets.redact(text),
            "?k=[redacted]&x=[redacted] [redacted] [redacted]"
        );
    }

    #[test]
    fn missing_secrets_are_all_named_at_once() {
        let names = ["INTEG_TEST_SURELY_UNSET_A", "INTEG_TEST_SURELY_UNSET_B"];
        let error = Secrets::load(names, None, false)
            .map(|_| ())
            .unwrap_err()
            .to_string();
        assert_eq!(
            error,
            "secrets `INTEG_TEST_SURELY_UNSET_A`, `INTEG_TEST_SURELY_UNSET_B` are not set: give them in the environment or a --secrets file"
        );
        let dry = Secrets::load(names, None, true).unwrap_or_default();
        assert_eq!(
            dry.get("INTEG_TEST_SURELY_UNSET_A"),
            Some("<secret INTEG_TEST_SURELY_UNSET_A>")
        );
    }
}
