//! Credentials on requests. OAuth2 tokens are cached until shortly before they expire; one
//! caller fetches while the others wait on the same (async) lock, and a 401 forces one
//! refresh. Every token obtained joins the redaction set before it is used, and a rotated
//! refresh token is saved, sealed, before it is ever sent.

use super::http::{HttpError, read_capped};
use super::seal::{RefreshTokens, Sealer};
use crate::secrets::{Redaction, Source};
use crate::telemetry::{TokenMetrics, labels::Outcome};
use reqwest::{RequestBuilder, Url};
use serde_json::Value as Json;
use std::collections::HashMap;
use std::sync::{Arc, PoisonError};
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
    OAuth2(Arc<OAuth2>),
}

/// What a connection's `auth oauth2` says, evaluated.
pub struct OAuth2Settings {
    pub token_url: Url,
    pub client_id: String,
    pub client_secret: String,
    /// The refresh token configured in the secrets; without one, the client credentials
    /// grant is used.
    pub refresh_token: Option<String>,
    pub scopes: Option<String>,
    pub audience: Option<String>,
}

/// Where the engine keeps what it learns at run time: the shared redaction set, the keeper
/// of rotated refresh tokens and the connection's names for it, the response size cap.
pub struct OAuth2Context {
    pub redaction: Redaction,
    pub keeper: Option<Arc<dyn RefreshTokens>>,
    pub integration: String,
    pub connection: String,
    pub max_response_bytes: usize,
    /// The connection's `timeout`, which bounds each token request too.
    pub timeout: Option<Duration>,
}

pub struct OAuth2 {
    settings: OAuth2Settings,
    redaction: Redaction,
    /// Where the tokens this client obtains join the redaction set.
    obtained: Source,
    /// The store that keeps a rotated refresh token, when a refresh token is configured.
    keeper: Option<Arc<dyn RefreshTokens>>,
    /// The names the rotated refresh token is kept under: one per connection sharing this
    /// client (see `OAuth2Clients`). A synchronous lock, never held across an await.
    kept_as: std::sync::Mutex<Vec<KeptAs>>,
    /// Token fetches, counted under the connection that set the client up.
    metrics: TokenMetrics,
    max_response_bytes: usize,
    timeout: Duration,
    /// The current tokens. A tokio lock held across the token fetch: concurrent callers
    /// wait for that one fetch (a single flight) instead of starting their own, and a
    /// rotated refresh token is replaced by one fetch at a time.
    state: Mutex<State>,
}

/// A name (integration, connection) a rotated refresh token is kept under, with its sealer.
struct KeptAs {
    sealer: Sealer,
    integration: String,
    connection: String,
}

/// OAuth2 clients shared by the connections that send the same credentials to the same
/// token endpoint: every connection of one engine, and of every engine given the same
/// `Options`. Two clients holding one refresh token would each spend it: when the endpoint
/// rotates it, the other's next refresh is refused (`invalid_grant`), and an endpoint with
/// reuse detection revokes both. Clients of the client credentials grant hold nothing to
/// spend and are not shared.
#[derive(Default)]
pub struct OAuth2Clients(std::sync::Mutex<HashMap<[u8; 32], Arc<OAuth2>>>);

impl std::fmt::Debug for OAuth2Clients {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OAuth2Clients(..)")
    }
}

impl OAuth2Clients {
    /// The client for these settings: the one already made for the same credentials, which
    /// then also keeps its rotated refresh token under this connection's name, or a new one.
    pub(super) fn client(&self, settings: OAuth2Settings, context: OAuth2Context) -> Arc<OAuth2> {
        if settings.refresh_token.is_none() {
            return Arc::new(OAuth2::new(settings, context));
        }
        let key = settings.identity();
        // Held only while a client is made (a read of the store), never across an await.
        let mut clients = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(shared) = clients.get(&key) {
            shared.join(&context);
            return shared.clone();
        }
        let client = Arc::new(OAuth2::new(settings, context));
        clients.insert(key, client.clone());
        client
    }
}

impl OAuth2Settings {
    /// A digest of everything the token request sends, to find connections that send the
    /// same; it stays in memory.
    fn identity(&self) -> [u8; 32] {
        use sha2::Digest as _;
        let mut digest = sha2::Sha256::new();
        let fields = [
            Some(self.token_url.as_str()),
            Some(self.client_id.as_str()),
            Some(self.client_secret.as_str()),
            self.refresh_token.as_deref(),
            self.scopes.as_deref(),
            self.audience.as_deref(),
        ];
        for field in fields {
            // Length-prefixed, so that no two lists of fields read the same.
            let field = field.unwrap_or("\u{0}none");
            digest.update((field.len() as u64).to_le_bytes());
            digest.update(field.as_bytes());
        }
        digest.finalize().into()
    }
}

struct State {
    access: Option<Token>,
    /// The refresh token to send next: the configured one, or the last one the endpoint
    /// rotated to.
    refresh_token: Option<String>,
    /// Bumped on each fetch, so a caller that saw a 401 with token N refreshes only if
    /// nobody has replaced N meanwhile.
    generation: u64,
}

#[derive(Clone)]
struct Token {
    access_token: String,
    /// When to stop using it: the server's expiry minus a margin.
    good_until: Option<Instant>,
    generation: u64,
}

/// One token request gives up after this long (unless the connection sets its `timeout`),
/// so a silent token endpoint cannot hold every caller of the connection.
const TOKEN_TIMEOUT: Duration = Duration::from_secs(30);
/// A token request is tried this many times in all when it times out, cannot connect or
/// gets a 429 or 5xx, with exponential backoff from `TOKEN_BACKOFF`.
const TOKEN_ATTEMPTS: u32 = 3;
const TOKEN_BACKOFF: Duration = Duration::from_millis(500);
/// Tokens are renewed this long before the server says they expire, or a fifth of their
/// lifetime when that is shorter: a token good for 30 s is used for 24 s, not never.
const EXPIRY_MARGIN: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("token request to {url} failed: {detail}")]
    Token { url: String, detail: String },
    /// The endpoint answered with an error, with its RFC 6749 §5.2 code and description
    /// when it gave them (`invalid_grant`: the refresh token was revoked or already used).
    #[error("token request to {url} refused: status {status}{}", oauth_error(.code, .description))]
    Refused {
        url: String,
        status: u16,
        code: Option<String>,
        description: Option<String>,
    },
}

fn oauth_error(code: &Option<String>, description: &Option<String>) -> String {
    match (code, description) {
        (Some(code), Some(description)) => format!(": {code}: {description}"),
        (Some(code), None) => format!(": {code}"),
        (None, Some(description)) => format!(": {description}"),
        (None, None) => String::new(),
    }
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
            .field("token_url", &self.settings.token_url.as_str())
            .finish_non_exhaustive()
    }
}

/// A failed token request, and whether trying again may help.
struct Failure {
    error: AuthError,
    transient: bool,
}

/// What a token endpoint answered, read.
struct Answer {
    access_token: String,
    refresh_token: Option<String>,
    expires_in: Option<u64>,
}

impl OAuth2 {
    /// The connection's OAuth2 client. With a keeper, a refresh token saved by an earlier
    /// run (rotated from the configured one) is used instead of the configured one.
    pub fn new(settings: OAuth2Settings, context: OAuth2Context) -> Self {
        let keeper = context
            .keeper
            .clone()
            .filter(|_| settings.refresh_token.is_some());
        let client = Self {
            obtained: context.redaction.source(),
            redaction: context.redaction.clone(),
            keeper,
            kept_as: std::sync::Mutex::new(Vec::new()),
            metrics: TokenMetrics::new(&context.integration, &context.connection),
            max_response_bytes: context.max_response_bytes,
            timeout: context.timeout.unwrap_or(TOKEN_TIMEOUT),
            state: Mutex::new(State {
                access: None,
                refresh_token: settings.refresh_token.clone(),
                generation: 0,
            }),
            settings,
        };
        client.join(&context);
        client
    }

    /// Keeps the rotated refresh token under this connection's name too. If none was
    /// restored yet and one was saved under this name, it is the one to send.
    fn join(&self, context: &OAuth2Context) {
        let (Some(keeper), Some(configured)) = (&self.keeper, &self.settings.refresh_token) else {
            return;
        };
        let Some(sealer) = Sealer::new(
            &self.settings.client_secret,
            &context.integration,
            &context.connection,
            configured,
        ) else {
            return;
        };
        let (integration, connection) = (&context.integration, &context.connection);
        let restored = match keeper.load(integration, connection) {
            Ok(sealed) => sealed.and_then(|sealed| sealer.open(&sealed)),
            Err(error) => {
                let error = self.redaction.redact(&error.to_string());
                tracing::warn!(%integration, %connection, %error, "cannot read the saved refresh token; using the configured one");
                None
            }
        };
        if let Some(restored) = restored {
            self.redaction.add(&restored);
            // Clients are made before any request, so nobody holds the state yet.
            if let Ok(mut state) = self.state.try_lock()
                && state.refresh_token.as_ref() == Some(configured)
            {
                state.refresh_token = Some(restored);
            }
        }
        self.kept_as
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(KeptAs {
                sealer,
                integration: integration.clone(),
                connection: connection.clone(),
            });
    }

    /// A valid token and its generation, fetching one if there is none or it expired.
    pub async fn token(&self, client: &reqwest::Client) -> Result<(String, u64), AuthError> {
        let mut state = self.state.lock().await;
        if let Some(token) = state
            .access
            .as_ref()
            .filter(|t| t.good_until.is_none_or(|until| Instant::now() < until))
        {
            return Ok((token.access_token.clone(), token.generation));
        }
        let answer = self.request(client, state.refresh_token.as_deref()).await;
        self.metrics.refreshed(match answer {
            Ok(_) => Outcome::Ok,
            Err(_) => Outcome::Error,
        });
        let answer = answer?;
        // Redacted from the moment they exist, before anything can echo them.
        self.obtained.add(&answer.access_token);
        if let Some(rotated) = &answer.refresh_token {
            self.obtained.add(rotated);
        }
        // RFC 6749 §6: a new refresh token replaces the old, which may be spent already;
        // without one, the old stays. Saved before it is ever sent.
        if let (Some(_), Some(rotated)) = (&state.refresh_token, answer.refresh_token)
            && state.refresh_token.as_ref() != Some(&rotated)
        {
            self.keep(&rotated).await;
            state.refresh_token = Some(rotated);
        }
        state.generation += 1;
        let token = Token {
            access_token: answer.access_token,
            good_until: answer.expires_in.and_then(good_until),
            generation: state.generation,
        };
        let result = (token.access_token.clone(), token.generation);
        state.access = Some(token);
        Ok(result)
    }

    /// After a 401 with the token of `generation`: drop it unless another caller already
    /// replaced it, so that many 401s cause one refresh.
    pub async fn invalidate(&self, generation: u64) {
        let mut state = self.state.lock().await;
        if let Some(token) = state.access.as_mut().filter(|t| t.generation == generation) {
            token.good_until = Some(Instant::now());
        }
    }

    /// Saves a rotated refresh token, sealed, under every name it is kept under. A failure
    /// is logged and the token is used all the same: the one before it may be spent, so it
    /// is the only one that works.
    async fn keep(&self, rotated: &str) {
        let Some(keeper) = self.keeper.clone() else {
            return;
        };
        let sealed: Vec<(String, String, Option<Vec<u8>>)> = self
            .kept_as
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|k| {
                let sealed = k.sealer.seal(rotated);
                (k.integration.clone(), k.connection.clone(), sealed)
            })
            .collect();
        let saved = tokio::task::spawn_blocking(move || {
            sealed
                .into_iter()
                .map(|(integration, connection, sealed)| {
                    let saved = match sealed {
                        Some(sealed) => keeper
                            .save(&integration, &connection, &sealed)
                            .map_err(|e| e.to_string()),
                        None => Err("cannot seal it".to_string()),
                    };
                    (integration, connection, saved)
                })
                .collect::<Vec<_>>()
        })
        .await;
        let failures = match saved {
            Ok(saved) => saved
                .into_iter()
                .filter_map(|(i, c, saved)| saved.err().map(|e| (i, c, e)))
                .collect(),
            Err(error) => vec![(String::new(), String::new(), error.to_string())],
        };
        for (integration, connection, error) in failures {
            tracing::error!(%integration, %connection, error = %self.redaction.redact(&error), "cannot save the rotated refresh token; a restart will send the spent one");
        }
    }

    /// Asks the token endpoint, again after a timeout, a failed connection, a 429 or a 5xx,
    /// at most `TOKEN_ATTEMPTS` times with exponential backoff and full jitter.
    async fn request(
        &self,
        client: &reqwest::Client,
        refresh_token: Option<&str>,
    ) -> Result<Answer, AuthError> {
        let mut attempt = 1;
        loop {
            match self.request_once(client, refresh_token).await {
                Ok(answer) => return Ok(answer),
                Err(failure) if failure.transient && attempt < TOKEN_ATTEMPTS => {
                    let backoff = TOKEN_BACKOFF.saturating_mul(2u32.saturating_pow(attempt - 1));
                    tokio::time::sleep(backoff.mul_f64(fastrand::f64())).await;
                    attempt += 1;
                }
                Err(failure) => return Err(failure.error),
            }
        }
    }

    async fn request_once(
        &self,
        client: &reqwest::Client,
        refresh_token: Option<&str>,
    ) -> Result<Answer, Failure> {
        let settings = &self.settings;
        let mut form: Vec<(&str, &str)> = vec![
            ("client_id", &settings.client_id),
            ("client_secret", &settings.client_secret),
        ];
        match refresh_token {
            Some(refresh) => {
                form.extend([("grant_type", "refresh_token"), ("refresh_token", refresh)])
            }
            None => form.push(("grant_type", "client_credentials")),
        }
        if let Some(scopes) = &settings.scopes {
            form.push(("scope", scopes));
        }
        if let Some(audience) = &settings.audience {
            form.push(("audience", audience));
        }
        let url = settings.token_url.to_string();
        let failed = |detail: String, transient| Failure {
            error: AuthError::Token {
                url: url.clone(),
                detail,
            },
            transient,
        };
        let mut response = client
            .post(settings.token_url.clone())
            .timeout(self.timeout)
            .form(&form)
            .send()
            .await
            .map_err(|e| {
                // A timeout, a connection never made or broken: the endpoint may answer
                // the next time. A request that cannot be built will not.
                let transient = e.is_timeout() || e.is_connect() || e.is_request();
                failed(e.without_url().to_string(), transient)
            })?;
        let status = response.status().as_u16();
        let body = read_capped(&mut response, self.max_response_bytes)
            .await
            .map_err(|e| {
                failed(
                    e.to_string(),
                    matches!(e, HttpError::Timeout | HttpError::Transport(_)),
                )
            })?;
        let body: Option<Json> = serde_json::from_slice(&body).ok();
        if !(200..300).contains(&status) {
            let field = |name: &str| {
                body.as_ref()
                    .and_then(|b| b.get(name))
                    .and_then(Json::as_str)
                    .map(|text| super::http::excerpt(text.as_bytes()))
            };
            return Err(Failure {
                error: AuthError::Refused {
                    url: url.clone(),
                    status,
                    code: field("error"),
                    description: field("error_description"),
                },
                transient: status == 429 || status >= 500,
            });
        }
        // Only the field names, never serde's message: it quotes the values it read.
        let text = |name: &str| {
            body.as_ref()
                .and_then(|b| b.get(name))
                .and_then(Json::as_str)
                .filter(|t| !t.is_empty())
                .map(String::from)
        };
        let access_token = text("access_token")
            .ok_or_else(|| failed("the answer has no `access_token` string".into(), false))?;
        // Seconds; some providers send it as a string.
        let expires_in = match body.as_ref().and_then(|b| b.get("expires_in")) {
            Some(Json::Number(n)) => n.as_u64(),
            Some(Json::String(text)) => text.trim().parse().ok(),
            _ => None,
        };
        Ok(Answer {
            access_token,
            refresh_token: text("refresh_token"),
            expires_in,
        })
    }

    /// Every credential this client holds, for redaction: its secret (also as the Basic
    /// header a token endpoint may be sent) and the refresh token configured.
    fn credentials(&self) -> Vec<String> {
        use base64::Engine as _;
        let settings = &self.settings;
        let basic = base64::engine::general_purpose::STANDARD
            .encode(format!("{}:{}", settings.client_id, settings.client_secret));
        [
            Some(settings.client_secret.clone()),
            settings.refresh_token.clone(),
            Some(basic),
        ]
        .into_iter()
        .flatten()
        .collect()
    }
}

/// When a token answered with `expires_in` seconds stops being used: shortly before it
/// expires, by `EXPIRY_MARGIN` or a fifth of its lifetime. `None` (no expiry) only when
/// the lifetime is past what the clock can represent.
fn good_until(seconds: u64) -> Option<Instant> {
    let lifetime = Duration::from_secs(seconds);
    let margin = EXPIRY_MARGIN.min(lifetime / 5);
    Instant::now().checked_add(lifetime.saturating_sub(margin))
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
            Auth::OAuth2(oauth) => oauth.credentials(),
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
