//! A secret as a value sends it: the secret's name, and the literal text a spec writes
//! around it (`secret("KLAVIYO_KEY", "Klaviyo-API-Key {}")`, `secret("T", "Token {}")`).
//!
//! The composition is one value, filled in only where it is sent: the secret never passes
//! through a template (whose filters could print or transform it past redaction), and the
//! text around it is literal, so the sent value is redacted by the secret's own entry in the
//! redaction set (`Klaviyo-API-Key [redacted]`).

/// Where the secret goes in the text written around it.
pub const PLACEHOLDER: &str = "{}";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential {
    pub name: String,
    prefix: String,
    suffix: String,
}

impl Credential {
    /// `secret("NAME")`: the secret alone.
    pub fn plain(name: &str) -> Self {
        Self {
            name: name.to_string(),
            prefix: String::new(),
            suffix: String::new(),
        }
    }

    /// `secret("NAME", "TEXT {} TEXT")`: `None` unless the text holds the placeholder
    /// exactly once and no other brace (a `{{` would read as a template that it is not).
    pub fn composed(name: &str, text: &str) -> Option<Self> {
        let (prefix, suffix) = text.split_once(PLACEHOLDER)?;
        let braces = |part: &str| part.contains(['{', '}']);
        if braces(prefix) || braces(suffix) {
            return None;
        }
        Some(Self {
            name: name.to_string(),
            prefix: prefix.to_string(),
            suffix: suffix.to_string(),
        })
    }

    /// The value to send, with the secret's value in place.
    pub fn fill(&self, secret: &str) -> String {
        format!("{}{secret}{}", self.prefix, self.suffix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_text_around_holds_the_placeholder_once_and_no_other_brace() {
        let klaviyo = Credential::composed("K", "Klaviyo-API-Key {}").unwrap();
        assert_eq!(klaviyo.fill("pk_1"), "Klaviyo-API-Key pk_1");
        assert_eq!(Credential::composed("K", "{}/x").unwrap().fill("s"), "s/x");
        assert_eq!(Credential::plain("K").fill("s"), "s");
        for refused in [
            "Token",
            "{} {}",
            "Token {{}}",
            "{{ secret }}",
            "Token {x}",
            "}{}",
        ] {
            assert_eq!(Credential::composed("K", refused), None, "{refused}");
        }
    }
}
