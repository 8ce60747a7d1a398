//! Credentials on requests. OAuth2 tokens are cached until shortly before they expire;
//! one caller refreshes while the others wait on the same lock, and a 401 forces one
//! refresh.

use reqwest::{RequestBuilder, Url};
use serde::Deserialize;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

/// A connection's credentials, resolved from secrets once. `Debug` names the kind only.
pub enum Auth {
    None,
    Bearer(String),
    Basic {
        username: String,
        password: String,
    },
    ApiKey {
        in_query: bool,
        name: String,
        value: String,
    },
    OAuth2(Box<OAuth2>),
}

pub struct OAuth2 {
    pub token_url: Url,
    pub client_id: String,
    pub client_secret: String,
    pub refresh_token: Option<String>,
    pub scopes: Option<String>,
    pub audience: Option<String>,
    /// The current token; the lock is held while a token is fetched, so concurrent callers
    /// wait for that one fetch instead of starting their own.
    token: Mutex<Option<Token>>,
}

#[derive(Debug, Clone)]
struct Token {
    access_token: String,
    /// When to stop using it: the server's expiry minus a margin.
    good_until: Option<Instant>,
    /// Bumped on each fetch, so a caller that saw a 401 with token N refreshes only if
    /// nobody has replaced N meanwhile.
    generation: u64,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    /// Seconds; some providers send it as a string.
    expires_in: Option<serde_json::Value>,
}

/// A token request gives up after this long, so a silent token endpoint cannot hold every
/// caller of the connection.
const TOKEN_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("token request to {url} failed: {detail}")]
    Token { url: String, detail: String },
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Auth::None => "Auth::None",
            Auth::Bearer(_) => "Auth::Bearer(..)",
            Auth::Basic { .. } => "Auth::Basic(..)",
            Auth::ApiKey { .. } => "Auth::ApiKey(..)",
            Auth::OAuth2(_) => "Auth::OAuth2(..)",
        })
    }
}

impl std::fmt::Debug for OAuth2 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuth2")
            .field("token_url", &self.token_url.as_str())
            .finish_non_exhaustive()
    }
}

/// Tokens are renewed this long before the server says they expire.
const EXPIRY_MARGIN: Duration = Duration::from_secs(30);

impl OAuth2 {
    pub fn new(
        token_url: Url,
        client_id: String,
        client_secret: String,
        refresh_token: Option<String>,
        scopes: Option<String>,
        audience: Option<String>,
    ) -> Self {
        Self {
            token_url,
            client_id,
            client_secret,
            refresh_token,
            scopes,
            audience,
            token: Mutex::new(None),
        }
    }

    /// A valid token and its generation, fetching one if there is none or it expired.
    pub async fn token(&self, client: &reqwest::Client) -> Result<(String, u64), AuthError> {
        let mut slot = self.token.lock().await;
        if let Some(token) = slot
            .as_ref()
            .filter(|t| t.good_until.is_none_or(|until| Instant::now() < until))
        {
            return Ok((token.access_token.clone(), token.generation));
        }
        let generation = slot.as_ref().map_or(1, |t| t.generation + 1);
        let token = self.fetch(client, generation).await?;
        let result = (token.access_token.clone(), generation);
        *slot = Some(token);
        Ok(result)
    }

    /// After a 401 with the token of `generation`: drop it unless another caller already
    /// replaced it, so that many 401s cause one refresh.
    pub async fn invalidate(&self, generation: u64) {
        let mut slot = self.token.lock().await;
        if let Some(token) = slot.as_mut().filter(|t| t.generation == generation) {
            token.good_until = Some(Instant::now());
        }
    }

    async fn fetch(&self, client: &reqwest::Client, generation: u64) -> Result<Token, AuthError> {
        let mut form: Vec<(&str, &str)> = vec![
            ("client_id", &self.client_id),
            ("client_secret", &self.client_secret),
        ];
        match &self.refresh_token {
            Some(refresh) => form.extend([
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh.as_str()),
            ]),
            None => form.push(("grant_type", "client_credentials")),
        }
        if let Some(scopes) = &self.scopes {
            form.push(("scope", scopes));
        }
        if let Some(audience) = &self.audience {
            form.push(("audience", audience));
        }
        let error = |detail: String| AuthError::Token {
            url: self.token_url.to_string(),
            detail,
        };
        let response = client
            .post(self.token_url.clone())
            .timeout(TOKEN_TIMEOUT)
            .form(&form)
            .send()
            .await
            .map_err(|e| error(e.without_url().to_string()))?;
        let status = response.status();
        if !status.is_success() {
            return Err(error(format!("status {status}")));
        }
        let body: TokenResponse = response
            .json()
            .await
            .map_err(|e| error(format!("unreadable response: {e}")))?;
        let seconds = match &body.expires_in {
            Some(serde_json::Value::Number(n)) => n.as_u64(),
            Some(serde_json::Value::String(text)) => text.trim().parse().ok(),
            _ => None,
        };
        let good_until = seconds.and_then(|seconds| {
            Instant::now().checked_add(Duration::from_secs(seconds).saturating_sub(EXPIRY_MARGIN))
        });
        Ok(Token {
            access_token: body.access_token,
            good_until,
            generation,
        })
    }
}

impl Auth {
    /// Every credential value, in every form it may take on the wire, for redaction.
    pub fn credentials(&self) -> Vec<String> {
        use base64::Engine as _;
        match self {
            Auth::None => Vec::new(),
            Auth::Bearer(token) => vec![token.clone()],
            Auth::Basic { username, password } => {
                let header = base64::engine::general_purpose::STANDARD
                    .encode(format!("{username}:{password}"));
                vec![password.clone(), header]
            }
            Auth::ApiKey { value, .. } => vec![value.clone()],
            Auth::OAuth2(oauth) => [Some(&oauth.client_secret), oauth.refresh_token.as_ref()]
                .into_iter()
                .flatten()
                .cloned()
                .collect(),
        }
    }

    /// The header that carries the credentials, shown (redacted) in dry runs.
    pub fn header(&self) -> Option<&str> {
        match self {
            Auth::None | Auth::ApiKey { in_query: true, .. } => None,
            Auth::ApiKey {
                in_query: false,
                name,
                ..
            } => Some(name),
            Auth::Bearer(_) | Auth::Basic { .. } | Auth::OAuth2(_) => Some("Authorization"),
        }
    }

    /// Adds the credentials to a request; returns the OAuth2 token generation used, if any.
    pub async fn apply(
        &self,
        request: RequestBuilder,
        client: &reqwest::Client,
    ) -> Result<(RequestBuilder, Option<u64>), AuthError> {
        Ok(match self {
            Auth::None => (request, None),
            Auth::Bearer(token) => (request.bearer_auth(token), None),
            Auth::Basic { username, password } => {
                (request.basic_auth(username, Some(password)), None)
            }
            Auth::ApiKey {
                in_query: true,
                name,
                value,
            } => (request.query(&[(name, value)]), None),
            Auth::ApiKey {
                in_query: false,
                name,
                value,
            } => (request.header(name.as_str(), value.as_str()), None),
            Auth::OAuth2(oauth) => {
                let (token, generation) = oauth.token(client).await?;
                (request.bearer_auth(token), Some(generation))
            }
        })
    }
}
