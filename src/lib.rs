//! integ: declarative integrations between SaaS APIs.
//!
//! The pipeline runs one way: text -> `syntax` (pest parse tree, then the spanned `ast`)
//! -> `check` (every diagnostic at once, then the checked `model`) -> the engine (to come).
//! See ARCHITECTURE.md.

pub mod ast;
pub mod check;
pub mod cli;
pub mod diagnostic;
pub mod engine;
pub mod lint;
pub mod mock;
pub mod model;
pub mod plan;
pub mod secrets;
pub mod serve;
pub mod span;
pub mod store;
pub mod syntax;
pub mod testing;
pub mod webhook;
