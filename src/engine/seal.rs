//! Refresh tokens at rest: a token endpoint that rotates refresh tokens makes the state store
//! the only place the current one lives, so it is kept there sealed (ChaCha20-Poly1305, the
//! `ring` that TLS already uses). The key is derived from the connection's client secret,
//! which never enters the store: the state file alone reveals no usable token. The refresh
//! token configured in the secrets is the associated data, so a stored token opens only
//! while that configuration stands: an operator who puts a new refresh token in the secrets
//! (after authorising again) gets it used, not an older stored one.

use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::hkdf;
use ring::rand::{SecureRandom, SystemRandom};

/// Where a connection's rotated refresh token is kept, sealed: the state store under
/// `integ serve` and `integ run`. The engine seals and opens; the keeper stores bytes.
pub trait RefreshTokens: Send + Sync + std::fmt::Debug {
    /// The sealed token of a connection, if one was saved.
    fn load(&self, integration: &str, connection: &str) -> Result<Option<Vec<u8>>, KeeperError>;
    /// Replaces the sealed token of a connection; durable when it returns.
    fn save(&self, integration: &str, connection: &str, sealed: &[u8]) -> Result<(), KeeperError>;
}

/// A keeper's failure, as its own error type says it (never holding a token).
pub type KeeperError = Box<dyn std::error::Error + Send + Sync>;

/// The key and associated data of one connection.
pub struct Sealer {
    key: LessSafeKey,
    configured: Vec<u8>,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer(..)")
    }
}

impl Sealer {
    /// `None` only if HKDF refuses the key length, which it does not for 32 bytes.
    pub fn new(
        client_secret: &str,
        integration: &str,
        connection: &str,
        configured: &str,
    ) -> Option<Self> {
        let salt = hkdf::Salt::new(hkdf::HKDF_SHA256, b"integ refresh token v1");
        let info = [integration.as_bytes(), b"\0", connection.as_bytes()];
        let key: UnboundKey = salt
            .extract(client_secret.as_bytes())
            .expand(&info, &CHACHA20_POLY1305)
            .ok()?
            .into();
        Some(Self {
            key: LessSafeKey::new(key),
            configured: configured.as_bytes().to_vec(),
        })
    }

    /// `token` sealed: a random nonce, then the ciphertext and its tag.
    pub fn seal(&self, token: &str) -> Option<Vec<u8>> {
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new().fill(&mut nonce).ok()?;
        let mut sealed = token.as_bytes().to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(&self.configured),
                &mut sealed,
            )
            .ok()?;
        let mut out = nonce.to_vec();
        out.append(&mut sealed);
        Some(out)
    }

    /// The token sealed in `sealed`, if it opens with this key and configuration.
    pub fn open(&self, sealed: &[u8]) -> Option<String> {
        let (nonce, ciphertext) = sealed.split_at_checked(NONCE_LEN)?;
        let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
        let mut buffer = ciphertext.to_vec();
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(&self.configured), &mut buffer)
            .ok()?;
        String::from_utf8(plain.to_vec()).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_token_opens_only_with_the_same_secret_and_configuration() {
        let sealer = Sealer::new("client-secret", "crm", "api", "configured-rt").unwrap();
        let sealed = sealer.seal("rotated-rt-2").unwrap();
        assert!(!sealed.windows(12).any(|w| w == b"rotated-rt-2"));
        assert_eq!(sealer.open(&sealed).as_deref(), Some("rotated-rt-2"));
        let other_secret = Sealer::new("other", "crm", "api", "configured-rt").unwrap();
        assert_eq!(other_secret.open(&sealed), None);
        let reauthorised = Sealer::new("client-secret", "crm", "api", "new-configured").unwrap();
        assert_eq!(reauthorised.open(&sealed), None);
        let other_connection =
            Sealer::new("client-secret", "crm", "billing", "configured-rt").unwrap();
        assert_eq!(other_connection.open(&sealed), None);
        assert_eq!(sealer.open(&sealed[..5]), None);
    }
}
