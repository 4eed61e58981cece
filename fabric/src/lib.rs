//! `continuum-fabric`: a user-space Ethernet switch for QEMU clusters that
//! injects faults on purpose.
//!
//! Each VM's NIC is a QEMU `-netdev dgram` over unix datagram sockets; every
//! datagram is one Ethernet frame. The fabric owns one socket per port, so
//! the ingress port of a frame is known without trusting its contents. It
//! learns MAC → port, forwards unicast and floods the rest, and applies a
//! seeded fault plan per *directed* link (drop, delay, jitter, duplicate,
//! reorder, corrupt, replay) and partitions of any shape, changed at run time over a control
//! socket speaking line-delimited JSON ([`control`]), or in-process through
//! [`FabricHandle`].
//!
//! Layout: [`switch`] is the pure core (forwarding + faults over explicit
//! time), [`runtime`] the sockets and threads, [`faults`] the per-link plan,
//! [`mangle`] the UDP payload rewriting of `corrupt`,
//! [`topology`] partitions as blocked links, [`client`] the control client.
//!
//! Determinism: each directed link has its own generator seeded from the
//! fabric seed and the link's ends, and draws a fixed number of values per
//! frame, so the k-th frame on a link meets the same fate in every run with
//! the same seed. (Arrival order *across* links depends on the VMs.)

pub mod client;
pub mod control;
mod control_server;
pub mod ethernet;
pub mod faults;
pub mod mangle;
pub mod rng;
pub mod runtime;
pub mod switch;
pub mod topology;

pub use client::ControlClient;
pub use control::Request;
pub use faults::LinkFaults;
pub use runtime::{Fabric, FabricConfig, FabricError, FabricHandle};
pub use switch::{LinkStats, PortStats, Switch};
