//! Forgetting old state, so that the state file does not grow forever.

use super::Service;
use crate::store::Pruned;
use std::sync::Arc;
use std::time::Duration;

/// How long dedupe keys, finished events and runs are kept by default: a provider's
/// redelivery comes within hours or days, and the state file must not grow forever.
pub const RETENTION: Duration = Duration::from_secs(30 * 24 * 3600);

/// Forgets state older than `retention` (see `Store::prune`), once an hour, until shutdown.
pub async fn prune(service: Arc<Service>, retention: Duration) {
    while !service.stopping() {
        let store = service.store.clone();
        match tokio::task::spawn_blocking(move || store.prune(retention)).await {
            Ok(Ok(pruned)) if pruned != Pruned::default() => tracing::info!(
                dedupe_keys = pruned.dedupe_keys,
                events = pruned.events,
                runs = pruned.runs,
                dead_letters = pruned.dead_letters,
                "forgot state older than the retention"
            ),
            Ok(Err(error)) => tracing::warn!(%error, "cannot prune old state"),
            _ => {}
        }
        for _ in 0..3600 {
            if service.stopping() {
                return;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
}
