//! What the serve and engine benches share: the w2h job, the fast sink and the bare
//! forwarder (each in a process of its own: the bench binary re-executed in a role), and
//! the load driver. Each bench compiles this module on its own and uses part of it, hence
//! `dead_code` allowed here.

#![allow(dead_code)]

pub mod child;
pub mod forwarder;
pub mod load;
pub mod sink;
pub mod w2h;
