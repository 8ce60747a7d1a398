//! The HTTP side's guards against slow and numerous clients, and the accept loop that
//! applies them.
//!
//! `axum::serve` gives hyper no timer, so hyper's header read timeout never fires, and it
//! accepts every connection: a client sending a byte every few seconds, or thousands of
//! half-open connections, held the process (and its shutdown) for as long as they liked.
//! Here every connection is HTTP/1 with a header read timeout (which also ends a
//! connection that stays silent), the body has a deadline of its own (`webhook.rs`), and a
//! semaphore bounds the connections served at once: past the cap the loop stops accepting,
//! so further clients wait in the kernel's listen backlog (bounded) instead of costing
//! memory here, and are served as soon as a slot frees.

use super::PublicUrl;
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// How the HTTP side meets slow, numerous or proxied clients.
#[derive(Debug, Clone)]
pub struct HttpOptions {
    /// The time a client has to send a request's headers (or to start one on an idle
    /// connection), and again to send its body.
    pub read_timeout: Duration,
    /// The time the service has to check and commit a request once it is read.
    pub request_timeout: Duration,
    /// Connections served at once; more wait to be accepted.
    pub max_connections: usize,
    /// The URL senders sign against.
    pub public_url: PublicUrl,
}

/// Providers give up on a webhook after 5 to 30 s; a read slower than this is not one.
pub const READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Checking a signature and committing to the inbox takes milliseconds; this is the
/// bound for a stalled disk, not a budget.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);
/// Well under the usual limit of 1 024 open files, which the store and the outgoing
/// connections share.
pub const MAX_CONNECTIONS: u16 = 512;

impl Default for HttpOptions {
    fn default() -> Self {
        Self {
            read_timeout: READ_TIMEOUT,
            request_timeout: REQUEST_TIMEOUT,
            max_connections: usize::from(MAX_CONNECTIONS),
            public_url: PublicUrl::Listener,
        }
    }
}

/// Serves `app` on `listener` until `stop` completes, then stops accepting, lets each
/// connection finish the request it is on (idle ones close at once) and returns when all
/// are closed. The caller bounds that wait: whatever a connection still holds is bounded by
/// the read and request timeouts anyway.
pub async fn listen(
    listener: TcpListener,
    app: Router,
    options: &HttpOptions,
    stop: impl Future<Output = ()>,
) {
    let slots = Arc::new(Semaphore::new(options.max_connections.max(1)));
    let connections = GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(options.read_timeout);
    tokio::pin!(stop);
    loop {
        let slot = tokio::select! {
            () = &mut stop => break,
            slot = slots.clone().acquire_owned() => slot,
        };
        // The semaphore is never closed.
        let Ok(slot) = slot else { break };
        let stream = tokio::select! {
            () = &mut stop => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(error) => {
                    // Out of file descriptors, mostly: wait for some to free.
                    tracing::warn!(%error, "cannot accept a connection; retrying in 100 ms");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let connection =
            http.serve_connection(TokioIo::new(stream), TowerToHyperService::new(app.clone()));
        let connection = connections.watch(connection);
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, "connection ended with an error");
            }
            drop(slot);
        });
    }
    drop(listener);
    connections.shutdown().await;
}
