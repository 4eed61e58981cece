//! The lowest crate of the workspace: the few definitions that several
//! crates need and that belong to none of them.
//!
//! * [`NodeId`] — the one type of a cluster member's id. Config text and
//!   wire decoders convert into it once, at their boundary; every layer
//!   above (raft, node, net, storage, kernel, harness, fabric) uses it.
//! * [`bytes::Reader`] — the one total byte reader the codecs (net, raft,
//!   bank, node) decode with, its byte order part of its type.
//! * [`SplitMix64`] — the one small seeded PRNG (Raft timeouts, the
//!   snapshot chunker's gear table, the fabric, simulators, `MemDisk`).
//!
//! `#![no_std]` with no dependencies, so the kernel, the pure crates and
//! the host tools can all depend on it.

#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod bytes;
mod rng;

pub use rng::SplitMix64;

/// Identifier of a cluster member. Valid ids are `1..=`[`MAX_NODE_ID`].
pub type NodeId = u64;

/// "No node": no vote cast, no leader known, no sender.
pub const NO_NODE: NodeId = 0;

/// Largest node id a config may name: an id is also the last octet of
/// test LAN addresses and part of a node's MAC, so it fits a byte.
pub const MAX_NODE_ID: NodeId = 255;
