//! §7: what each environment changes, and the spec's tests with what each checks.

use super::connections::{ConnectionDoc, connection};
use super::value::Source;
use crate::model::Integration;
use serde::Serialize;

/// An environment: every connection with its overrides applied.
#[derive(Debug, Serialize)]
pub struct EnvironmentDoc {
    pub name: String,
    pub connections: Vec<ConnectionDoc>,
}

pub fn build(model: &Integration, source: Source<'_>) -> Vec<EnvironmentDoc> {
    model
        .environments
        .iter()
        .map(|environment| EnvironmentDoc {
            name: environment.name.clone(),
            connections: environment
                .connections
                .iter()
                .map(|c| connection(c, source))
                .collect(),
        })
        .collect()
}
