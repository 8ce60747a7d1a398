//! §6: what keeps each connection within its API's limits, and the ceiling in events per
//! minute that those limits put on each trigger.

use crate::check::format_duration;
use crate::model::CircuitBreaker;

/// A circuit breaker in words, its engine defaults filled in.
pub fn breaker(breaker: &CircuitBreaker) -> String {
    let mut opens = Vec::new();
    match (breaker.failures, &breaker.ratio) {
        (Some(n), _) => opens.push(format!("after {n} failed calls in a row")),
        (None, None) => opens.push(format!(
            "after {} failed calls in a row *(default)*",
            crate::engine::BREAKER_FAILURES
        )),
        (None, Some(_)) => {}
    }
    if let Some(ratio) = &breaker.ratio {
        let min_calls = ratio.min_calls.map_or_else(
            || format!("{} *(default)*", crate::engine::BREAKER_MIN_CALLS),
            |n| n.to_string(),
        );
        opens.push(format!(
            "when {}% of the calls within {} fail, once {min_calls} calls were made",
            ratio.percent,
            format_duration(ratio.window)
        ));
    }
    let cooldown = breaker.cooldown.map_or_else(
        || {
            format!(
                "{} *(default)*",
                format_duration(crate::engine::BREAKER_COOLDOWN)
            )
        },
        format_duration,
    );
    format!(
        "opens {}; stays open {cooldown} (calls fail at once, without reaching the API), then \
        lets one call through to probe",
        opens.join(" or ")
    )
}
