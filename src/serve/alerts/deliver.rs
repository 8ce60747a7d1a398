//! Sending one notification, with bounded retries. A delivery is not a run: it never goes
//! through the engine, so a failed one (a Slack 429 among them) counts toward no alert
//! metric, only toward `integ_alert_notifications_total{result="error"}`.

use super::message::Notification;
use crate::secrets::Secrets;
use crate::telemetry::{self, labels::Outcome};
use reqwest::header::RETRY_AFTER;
use std::time::Duration;

/// Attempts per notification: a channel down for about a minute is waited out.
const ATTEMPTS: u32 = 6;
/// The first wait between attempts, doubled at each attempt up to `MAX_DELAY`.
const FIRST_DELAY: Duration = Duration::from_secs(1);
const MAX_DELAY: Duration = Duration::from_secs(60);
/// The longest `Retry-After` honoured; a longer one is waited for this long.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(300);
/// How long one attempt may take, connection included.
const TIMEOUT: Duration = Duration::from_secs(10);
/// How much of a refusal's body the error keeps.
const EXCERPT: usize = 200;

/// Where an alert is sent. The URL is a secret (whoever has it can post to the channel),
/// so this type never prints it.
#[derive(Clone)]
pub enum Target {
    Slack(reqwest::Url),
    Webhook(reqwest::Url),
    Email(super::email::Mailbox),
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Slack(_) => "Slack([redacted])",
            Self::Webhook(_) => "Webhook([redacted])",
            Self::Email(_) => "Email([redacted])",
        })
    }
}

/// Why an attempt failed, and whether another may succeed.
#[derive(Debug)]
pub(super) enum Failure {
    /// A timeout, a connection failure, a 408, 429 or 5xx: tried again, after the
    /// answer's `Retry-After` when it names one.
    Retry {
        why: String,
        after: Option<Duration>,
    },
    /// Any other refusal (a revoked Slack URL answers 403 or 404): not tried again.
    Final(String),
}

/// The HTTP client of every delivery: no redirects (a URL that moved is a configuration
/// to fix, and a redirect would carry the body elsewhere), a timeout per attempt.
pub fn client() -> Result<reqwest::Client, String> {
    crate::engine::install_crypto_provider();
    reqwest::Client::builder()
        .user_agent(concat!("integ/", env!("CARGO_PKG_VERSION")))
        .redirect(reqwest::redirect::Policy::none())
        .timeout(TIMEOUT)
        .connect_timeout(TIMEOUT)
        .build()
        .map_err(|e| format!("cannot build the alerts' HTTP client: {}", e.without_url()))
}

/// Sends `notification` to `target`, trying up to `ATTEMPTS` times; answers the error of
/// the last attempt (redacted) if none succeeded.
pub async fn deliver(
    client: &reqwest::Client,
    target: &Target,
    notification: &Notification,
    secrets: &Secrets,
    smtp: Option<&super::email::Smtp>,
) -> Result<(), String> {
    let mut attempt = 1;
    loop {
        let result = match target {
            Target::Slack(url) => post(client, url, &notification.slack()).await,
            Target::Webhook(url) => {
                post(
                    client,
                    url,
                    &serde_json::to_value(notification).unwrap_or_default(),
                )
                .await
            }
            Target::Email(to) => super::email::send(smtp, to, notification).await,
        };
        let failure = match result {
            Ok(()) => {
                telemetry::alert_notified(
                    &notification.integration,
                    &notification.alert,
                    Outcome::Ok,
                );
                return Ok(());
            }
            Err(failure) => failure,
        };
        telemetry::alert_notified(
            &notification.integration,
            &notification.alert,
            Outcome::Error,
        );
        let (why, after) = match failure {
            Failure::Final(why) => return Err(secrets.redact(&why)),
            Failure::Retry { why, after } => (secrets.redact(&why), after),
        };
        if attempt >= ATTEMPTS {
            return Err(why);
        }
        let wait = delay(attempt, after);
        tracing::warn!(
            integration = notification.integration,
            alert = notification.alert,
            attempt,
            error = why,
            "cannot send the alert; trying again in {wait:?}"
        );
        tokio::time::sleep(wait).await;
        attempt += 1;
    }
}

/// The wait before attempt `attempt + 1`: the answer's `Retry-After` (at most
/// `MAX_RETRY_AFTER`), else a doubling backoff up to `MAX_DELAY`.
fn delay(attempt: u32, retry_after: Option<Duration>) -> Duration {
    match retry_after {
        Some(asked) => asked.min(MAX_RETRY_AFTER),
        None => FIRST_DELAY
            .saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1)))
            .min(MAX_DELAY),
    }
}

async fn post(
    client: &reqwest::Client,
    url: &reqwest::Url,
    body: &serde_json::Value,
) -> Result<(), Failure> {
    // reqwest's errors print the URL: never keep it.
    let response = client
        .post(url.clone())
        .json(body)
        .send()
        .await
        .map_err(|e| Failure::Retry {
            why: e.without_url().to_string(),
            after: None,
        })?;
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    let after = response
        .headers()
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(retry_after);
    let excerpt = excerpt(response).await;
    let why = format!("status {}{excerpt}", status.as_u16());
    if status.as_u16() == 429 || status.as_u16() == 408 || status.is_server_error() {
        Err(Failure::Retry { why, after })
    } else {
        Err(Failure::Final(why))
    }
}

/// The start of a refusal's body, as `: text`, read within the attempt's timeout.
async fn excerpt(mut response: reqwest::Response) -> String {
    let mut bytes = Vec::new();
    while bytes.len() < EXCERPT {
        match response.chunk().await {
            Ok(Some(chunk)) => bytes.extend_from_slice(&chunk),
            _ => break,
        }
    }
    bytes.truncate(EXCERPT);
    let text = String::from_utf8_lossy(&bytes);
    let text = text.trim();
    if text.is_empty() {
        String::new()
    } else {
        format!(": {text}")
    }
}

/// `Retry-After` in whole seconds or as an HTTP date.
fn retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(
        at.duration_since(std::time::SystemTime::now())
            .unwrap_or_default(),
    )
}

impl Failure {
    /// An e-mail that could not be sent: a transient SMTP answer (4xx) or a connection
    /// failure is tried again.
    pub(super) fn mail(why: String, transient: bool) -> Self {
        if transient {
            Self::Retry { why, after: None }
        } else {
            Self::Final(why)
        }
    }
}

pub(super) type Sent = Result<(), Failure>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_double_up_to_a_minute_and_a_servers_wait_is_bounded() {
        let waits: Vec<u64> = (1..ATTEMPTS).map(|a| delay(a, None).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16]);
        assert_eq!(delay(30, None), MAX_DELAY);
        assert_eq!(
            delay(1, Some(Duration::from_secs(3))),
            Duration::from_secs(3)
        );
        assert_eq!(
            delay(1, Some(Duration::from_secs(u64::MAX))),
            MAX_RETRY_AFTER
        );
        assert_eq!(retry_after("7"), Some(Duration::from_secs(7)));
        assert_eq!(retry_after("soon"), None);
    }
}
