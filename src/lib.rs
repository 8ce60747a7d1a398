//! integ: declarative integrations between SaaS APIs.
//!
//! The pipeline runs one way: text -> `syntax` (pest parse tree, then the spanned `ast`)
//! -> `check` (every diagnostic at once, then the checked `model`) -> `plan` (JSONPaths and
//! templates compiled once) -> `engine` (one event's run) -> `serve` and `store` (the
//! durable inbox, workers, dead letters, run history). `cli` drives them and is the only
//! module that prints. See ARCHITECTURE.md; `tests/architecture.rs` checks the direction.

pub mod ast;
pub mod check;
pub mod cli;
pub mod diagnostic;
pub mod doc;
pub mod engine;
pub mod fmt;
pub mod lint;
pub mod mock;
pub mod model;
pub mod plan;
#[cfg(test)]
mod scratch;
pub mod secrets;
pub mod serve;
pub mod span;
pub mod store;
pub mod syntax;
pub mod telemetry;
pub mod testing;
pub mod webhook;
