//! Webhooks: verifying what providers send.

pub mod signature;
