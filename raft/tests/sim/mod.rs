//! Deterministic whole-cluster simulator for the Raft core (host only).
//!
//! One seed drives everything: per-node clock rates, network loss, delay,
//! duplication and reordering, partitions, crashes and restarts, and client
//! load. A crash throws away the node's in-memory state, keeping only what a
//! processed Ready persisted to its storage. The [`checker::Checker`] runs
//! after every step. Reproduce a failing seed with `RAFT_SIM_SEED=<seed>`.
#![allow(dead_code)]

pub mod checker;
pub mod cluster;
pub mod nemesis;
pub mod network;
