//! At start, the state of alerts no longer declared: an alert removed from its spec (or
//! whose metric or channel changed) would otherwise stay in the store, firing for ever on
//! the overview. Only the integrations served are looked at: another one's alerts may be
//! served again from this state file.

use crate::model::{AlertStatus, alert::identity};
use crate::serve::Service;
use crate::store::AlertKey;
use std::collections::{HashMap, HashSet};

/// Forgets the kept state of every alert of an integration served that it no longer
/// declares. One firing, or whose firing was sent, is logged at `warn`: no resolved message
/// can follow (its target went with it), so whoever got the firing one is told here.
pub fn forget_undeclared(service: &Service) {
    let declared: HashSet<(&str, &str)> = service
        .engines
        .iter()
        .flat_map(|engine| {
            let plan = engine.plan();
            plan.alerts
                .iter()
                .map(move |alert| (plan.name.as_str(), alert.key.as_str()))
        })
        .collect();
    let served: HashSet<&str> = service
        .engines
        .iter()
        .map(|e| e.plan().name.as_str())
        .collect();
    // The key an alert had before keys named the metric and channel (`CONDITION notify
    // CHANNEL TARGET`): its state moves to the key of now, so an upgrade neither fires a
    // firing alert again nor leaves it unresolved. Such a key may hold an e-mail address:
    // it is never logged.
    let earlier: HashMap<(&str, String), &str> = service
        .engines
        .iter()
        .flat_map(|engine| {
            let plan = engine.plan();
            plan.alerts.iter().map(move |watched| {
                let alert = &watched.alert;
                let old = identity(&alert.condition(), alert.channel.as_str(), &alert.target);
                ((plan.name.as_str(), old), watched.key.as_str())
            })
        })
        .collect();
    let kept = match service.store.alerts() {
        Ok(kept) => kept,
        Err(error) => {
            tracing::error!(%error, "cannot read the alerts' state to forget those no longer declared; tried again at the next start");
            return;
        }
    };
    let has_state: HashSet<(&str, &str)> = kept
        .iter()
        .map(|state| (state.integration.as_str(), state.alert.as_str()))
        .collect();
    for state in &kept {
        let (integration, alert) = (state.integration.as_str(), state.alert.as_str());
        if !served.contains(integration) || declared.contains(&(integration, alert)) {
            continue;
        }
        let key = AlertKey { integration, alert };
        if let Some(now) = earlier.get(&(integration, alert.to_string()))
            && !has_state.contains(&(integration, *now))
        {
            match service.store.rename_alert(key, now) {
                Ok(()) => tracing::info!(
                    integration,
                    alert = now,
                    "an alert's state kept under its earlier key moved to its key of now"
                ),
                Err(error) => {
                    tracing::error!(integration, alert = now, %error, "cannot move an alert's state to its key of now; tried again at the next start")
                }
            }
            continue;
        }
        if alert.contains(" notify ") {
            // An earlier version's key, maybe with an address in it: forgotten unnamed.
            if let Err(error) = service.store.forget_alert(key) {
                tracing::error!(integration, %error, "cannot forget an alert no longer declared; tried again at the next start");
            }
            continue;
        }
        if let Err(error) = service.store.forget_alert(key) {
            tracing::error!(integration, alert, %error, "cannot forget an alert no longer declared; tried again at the next start");
            continue;
        }
        if state.status == AlertStatus::Firing || state.notified == AlertStatus::Firing {
            tracing::warn!(
                integration,
                alert,
                "an alert no longer declared was firing: forgotten, and no resolved message is sent"
            );
        } else {
            tracing::info!(
                integration,
                alert,
                "an alert no longer declared is forgotten"
            );
        }
    }
}
