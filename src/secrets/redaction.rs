//! The redaction set: every value integ must never show, in every form it may take, shared
//! by every clone so that a credential obtained at run time is redacted everywhere from the
//! moment it is added.

use base64::Engine as _;
use serde_json::Value as Json;
use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

/// Text put in place of a secret value wherever it would be shown.
pub const REDACTED: &str = "[redacted]";

/// Credentials each source (an OAuth2 client) obtained at run time kept for redaction,
/// newest last: a long-running service refreshes tokens for ever, and each one costs every
/// later `redact`. A source's current access and refresh tokens and those of its three
/// fetches before are kept, so a token is dropped only long after it was last sent.
const KEPT_PER_SOURCE: usize = 8;

/// The shared set. Readers take a snapshot (an `Arc` clone under a read lock, released at
/// once); writers build the next snapshot under the write lock. No lock is held while text
/// is redacted, nor across an await.
#[derive(Clone, Default)]
pub struct Redaction(Arc<Shared>);

#[derive(Default)]
struct Shared {
    set: RwLock<Arc<Set>>,
    /// Numbers the sources of run-time credentials.
    sources: AtomicU64,
}

#[derive(Default)]
struct Set {
    /// Values known from the start: secrets and what is derived from them.
    fixed: Vec<String>,
    /// Credentials obtained at run time (OAuth2 tokens), by source, oldest first.
    obtained: BTreeMap<u64, VecDeque<String>>,
    /// Every form of every value, longest first; derived once per change, not per call.
    forms: Vec<String>,
}

/// Where credentials obtained at run time come from (one OAuth2 client): each keeps its
/// newest `KEPT_PER_SOURCE` in the set.
#[derive(Debug, Clone)]
pub struct Source {
    redaction: Redaction,
    id: u64,
}

/// Never prints the values.
impl std::fmt::Debug for Redaction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Redaction({} forms)", self.snapshot().forms.len())
    }
}

impl Redaction {
    fn snapshot(&self) -> Arc<Set> {
        // A writer cannot panic while it holds the lock (it only swaps a built set), so a
        // poisoned lock still holds a whole set.
        self.0
            .set
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn change(
        &self,
        change: impl FnOnce(&mut Vec<String>, &mut BTreeMap<u64, VecDeque<String>>) -> bool,
    ) {
        let mut slot = self.0.set.write().unwrap_or_else(PoisonError::into_inner);
        let (mut fixed, mut obtained) = (slot.fixed.clone(), slot.obtained.clone());
        if change(&mut fixed, &mut obtained) {
            let forms = forms(fixed.iter().chain(obtained.values().flatten()));
            *slot = Arc::new(Set {
                fixed,
                obtained,
                forms,
            });
        }
    }

    /// Redacts `value` from now on, for as long as the process runs.
    pub fn add(&self, value: &str) {
        self.change(|fixed, _| {
            let new = !value.is_empty() && !fixed.iter().any(|v| v == value);
            if new {
                fixed.push(value.to_string());
            }
            new
        });
    }

    /// A new source of credentials obtained at run time.
    pub fn source(&self) -> Source {
        Source {
            redaction: self.clone(),
            id: self.0.sources.fetch_add(1, Ordering::Relaxed),
        }
    }

    /// `text` with every value, in each of its forms, replaced by `[redacted]`.
    pub fn redact(&self, text: &str) -> String {
        let set = self.snapshot();
        let mut out = text.to_string();
        for form in &set.forms {
            if out.contains(form.as_str()) {
                out = out.replace(form.as_str(), REDACTED);
            }
        }
        out
    }

    /// `text`, which may end where an answer's excerpt was cut (`…` marks a cut), with
    /// every value redacted, and also the beginning of one (4 characters or more) that the
    /// cut left standing at the end: a secret straddling the cut is not half shown.
    pub fn redact_cut(&self, text: &str) -> String {
        let mut out = self.redact(text);
        let cut = out.strip_suffix('…').map(str::len).unwrap_or(out.len());
        let set = self.snapshot();
        let standing = set
            .forms
            .iter()
            .filter_map(|form| {
                (4..form.len())
                    .rev()
                    .filter(|&n| form.is_char_boundary(n))
                    .find(|&n| out[..cut].ends_with(&form[..n]))
            })
            .max();
        if let Some(n) = standing {
            out.replace_range(cut - n..cut, REDACTED);
        }
        out
    }

    /// `value` with every string redacted, object keys included. A number or boolean whose
    /// text holds a secret becomes the redacted text, a string: a secret `12345` turns
    /// `{"pin": 12345}` into `{"pin": "[redacted]"}`, never into invalid JSON.
    pub fn redact_json(&self, value: &Json) -> Json {
        match value {
            Json::Null => Json::Null,
            Json::String(text) => Json::String(self.redact(text)),
            Json::Number(_) | Json::Bool(_) => {
                let text = value.to_string();
                let redacted = self.redact(&text);
                if redacted == text {
                    value.clone()
                } else {
                    Json::String(redacted)
                }
            }
            Json::Array(items) => Json::Array(items.iter().map(|i| self.redact_json(i)).collect()),
            Json::Object(fields) => Json::Object(
                fields
                    .iter()
                    .map(|(k, v)| (self.redact(k), self.redact_json(v)))
                    .collect(),
            ),
        }
    }
}

impl Source {
    /// Redacts a credential this source obtained (an access or refresh token) from now on;
    /// the source's oldest leaves the set once it has `KEPT_PER_SOURCE` newer ones.
    pub fn add(&self, value: &str) {
        self.redaction.change(|_, obtained| {
            let kept = obtained.entry(self.id).or_default();
            let new = !value.is_empty() && !kept.iter().any(|v| v == value);
            if new {
                kept.push_back(value.to_string());
                if kept.len() > KEPT_PER_SOURCE {
                    kept.pop_front();
                }
            }
            new
        });
    }
}

/// Each value as written, percent-encoded (in a URL or a form body), base64-encoded, and
/// escaped as in JSON text; longest first, so that a secret containing another is redacted
/// whole. Values shorter than 4 characters are left out: they would redact ordinary words
/// and reveal little.
fn forms<'a>(values: impl Iterator<Item = &'a String>) -> Vec<String> {
    let mut forms: Vec<String> = values
        .filter(|v| v.len() >= 4)
        .flat_map(|v| {
            let component =
                percent_encoding::utf8_percent_encode(v, percent_encoding::NON_ALPHANUMERIC);
            let form: String = form_urlencoded::byte_serialize(v.as_bytes()).collect();
            // Without padding: the padded text contains it, and so is redacted too.
            let standard = base64::engine::general_purpose::STANDARD_NO_PAD.encode(v);
            let url_safe = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v);
            let json = serde_json::to_string(v).unwrap_or_default();
            let json = json
                .get(1..json.len().saturating_sub(1))
                .unwrap_or_default();
            [
                v.clone(),
                component.to_string(),
                form,
                standard,
                url_safe,
                json.to_string(),
            ]
        })
        .filter(|form| !form.is_empty())
        .collect();
    forms.sort_by_key(|form| std::cmp::Reverse(form.len()));
    forms.dedup();
    forms
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_secret_cut_at_the_end_of_an_excerpt_is_redacted_too() {
        let redaction = Redaction::default();
        redaction.add("canary-secret-7f3a");
        let cut = "echo: Bearer canary-sec…";
        assert_eq!(redaction.redact_cut(cut), "echo: Bearer [redacted]…");
        assert_eq!(
            redaction.redact_cut("ends: canary-secret-7f"),
            "ends: [redacted]"
        );
        assert_eq!(
            redaction.redact_cut("whole canary-secret-7f3a"),
            "whole [redacted]"
        );
        assert_eq!(
            redaction.redact_cut("a word: can…"),
            "a word: can…",
            "3 characters stay"
        );
    }

    #[test]
    fn a_value_added_to_one_clone_is_redacted_by_every_clone() {
        let redaction = Redaction::default();
        let other = redaction.clone();
        other.source().add("access-token-1");
        let base64 = base64::engine::general_purpose::STANDARD.encode("access-token-1");
        assert_eq!(
            redaction.redact(&format!("Bearer access-token-1 or {base64}")),
            "Bearer [redacted] or [redacted]="
        );
    }

    #[test]
    fn each_source_keeps_its_newest_credentials() {
        let redaction = Redaction::default();
        redaction.add("fixed-secret");
        let (busy, quiet) = (redaction.source(), redaction.source());
        quiet.add("quiet-token");
        for n in 0..=KEPT_PER_SOURCE {
            busy.add(&format!("token-{n:04}"));
        }
        assert_eq!(redaction.redact("token-0000"), "token-0000");
        assert_eq!(
            redaction.redact("token-0001 fixed-secret quiet-token"),
            "[redacted] [redacted] [redacted]",
            "another source's busy refreshing never drops a quiet one's token"
        );
    }

    #[test]
    fn json_is_redacted_as_a_tree_numbers_and_quotes_included() {
        let redaction = Redaction::default();
        redaction.add("12345");
        redaction.add(r#"pa"ss\word"#);
        let event = json!({
            "pin": 12345,
            "other": 7,
            "long": 9123459,
            "note": r#"pa"ss\word"#,
            r#"key pa"ss\word"#: true,
            "list": [12345, "x"],
        });
        let redacted = redaction.redact_json(&event);
        assert_eq!(
            redacted,
            json!({
                "pin": "[redacted]",
                "other": 7,
                "long": "9[redacted]9",
                "note": "[redacted]",
                "key [redacted]": true,
                "list": ["[redacted]", "x"],
            })
        );
        // And the JSON-escaped form, as an echoed body shows it in an error excerpt.
        assert_eq!(
            redaction.redact(r#"{"echo":"pa\"ss\\word"}"#),
            r#"{"echo":"[redacted]"}"#
        );
    }
}
