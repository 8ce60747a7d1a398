//! The admin listener (`--admin-listen`, on 127.0.0.1 by default, never the webhook
//! port): what is for the people who run integ, not for the internet that sends webhooks.
//! `/metrics` for Prometheus; the run-history pages mount here too.

pub mod history;
mod metrics;

use super::Service;
use crate::telemetry::Exporter;
use std::sync::Arc;

/// What the admin pages share.
#[derive(Debug, Clone)]
pub struct Admin {
    pub service: Arc<Service>,
    /// The process's metrics; `None` where no recorder is installed (`/metrics` is 404).
    pub exporter: Option<Exporter>,
}

/// The admin listener's routes (`/metrics` and the run-history pages), every one behind
/// `guard` (see `history::Guard`).
pub fn router(admin: Admin, guard: Guard) -> Result<axum::Router, String> {
    let guard = Arc::new(guard);
    let pages = history::pages(admin.service.clone(), guard.clone())?;
    Ok(axum::Router::new()
        .route("/metrics", axum::routing::get(metrics::metrics))
        .with_state(admin)
        .merge(pages)
        .layer(axum::middleware::from_fn_with_state(guard, history::guard)))
}

pub use history::Guard;
pub use metrics::keep_metrics;
