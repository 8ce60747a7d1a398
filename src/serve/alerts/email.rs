//! Alerts by e-mail, over SMTP (lettre). The SMTP URL carries a password: it is a secret
//! (`INTEG_SMTP_URL`) and never printed.

use super::deliver::{Failure, Sent};
use super::message::Notification;
use lettre::message::header::ContentType;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use std::time::Duration;

pub type Mailbox = lettre::message::Mailbox;

/// The secret that names the SMTP server: `smtp://user:password@host:587?tls=required`,
/// `smtps://...` for TLS from the start, `smtp://host:25` for a local relay.
pub const SMTP_URL: &str = "INTEG_SMTP_URL";

/// How long an SMTP exchange may take.
const TIMEOUT: Duration = Duration::from_secs(10);

/// The server alerts are sent through, and who they are from.
pub struct Smtp {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl std::fmt::Debug for Smtp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Smtp")
            .field("from", &self.from)
            .finish_non_exhaustive()
    }
}

impl Smtp {
    /// The server `url` names, sending as `from`. The error never holds the URL.
    pub fn new(url: &str, from: &str) -> Result<Self, String> {
        crate::engine::install_crypto_provider();
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(|_| format!("the secret {SMTP_URL} is not an SMTP URL such as `smtp://user:password@host:587?tls=required`"))?
            .timeout(Some(TIMEOUT))
            .build();
        let from = from
            .parse()
            .map_err(|e| format!("`--alert-from {from}` is not an e-mail address: {e}"))?;
        Ok(Self { transport, from })
    }
}

/// Sends `notification` to `to`.
pub(super) async fn send(smtp: Option<&Smtp>, to: &Mailbox, notification: &Notification) -> Sent {
    let Some(smtp) = smtp else {
        // `integ serve` refuses to start with an e-mail alert and no SMTP server.
        return Err(Failure::mail(format!("no SMTP server ({SMTP_URL})"), false));
    };
    let (subject, body) = notification.email();
    let message = Message::builder()
        .from(smtp.from.clone())
        .to(to.clone())
        .subject(subject)
        .header(ContentType::TEXT_PLAIN)
        .body(body)
        .map_err(|e| Failure::mail(format!("cannot write the e-mail: {e}"), false))?;
    match smtp.transport.send(message).await {
        Ok(_) => Ok(()),
        Err(e) => Err(Failure::mail(format!("SMTP: {e}"), !e.is_permanent())),
    }
}
