//! `/metrics`: every series in the Prometheus text format.

use super::Admin;
use crate::telemetry::Exporter;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::time::Duration;

/// The content type of the Prometheus text format.
const TEXT_FORMAT: &str = "text/plain; version=0.0.4; charset=utf-8";

pub(super) async fn metrics(State(admin): State<Admin>) -> Response {
    let Some(exporter) = admin.exporter else {
        return (StatusCode::NOT_FOUND, "no metrics recorder in this process").into_response();
    };
    ([(header::CONTENT_TYPE, TEXT_FORMAT)], exporter.render()).into_response()
}

/// How often histograms' samples are folded into their buckets when nobody scrapes.
const UPKEEP: Duration = Duration::from_secs(5);

/// Keeps the recorder's memory bounded between scrapes, until the task is dropped.
pub async fn keep_metrics(exporter: Exporter) {
    let mut every = tokio::time::interval(UPKEEP);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        exporter.upkeep();
    }
}
