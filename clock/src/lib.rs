//! Time and causality for a Continuum node: a Lamport clock, a hybrid
//! logical clock (HLC) with CockroachDB-style skew rejection, and the wire
//! encoding of timestamps.
//!
//! # How the node uses it
//!
//! ```text
//!  local event / log record      hlc.now(&phys)            lamport.tick()
//!  outgoing message              hlc.now(&phys) -> stamp   lamport.send() -> stamp
//!  incoming message (stamp m)    hlc.update(m, &phys)?     lamport.recv(m)?
//!      Err(RemoteTooFarAhead)  -> drop the message, count it (hlc.skew_rejections())
//!  status page                   hlc.last(), lamport.current()
//! ```
//!
//! * Physical time is an input ([`PhysicalClock`]): the kernel implements it
//!   from the RTC read at boot plus the TSC; tests fake it. Nothing in this
//!   crate reads a clock by itself, and there is no global state.
//! * [`LamportClock`] and [`Hlc`] are shared through `&self` by every core
//!   and interrupt handler: their state is one 64-bit word updated with
//!   `lock xadd` / `lock cmpxchg` inline assembly (the only `unsafe` in the
//!   crate, in `atomic/x86_64.rs`); other architectures use `core` atomics
//!   with the same semantics.
//! * Nothing wraps silently: Lamport values are range-checked (see
//!   [`lamport`]), HLC logical overflow carries into the milliseconds and
//!   exhaustion is an error (see [`hlc`]).
//!
//! The contract the caller keeps: a message whose timestamp `update`/`recv`
//! refused must be dropped, not processed, or causality is no longer
//! reflected in the timestamps.

#![no_std]
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(missing_docs)]

#[cfg(test)]
extern crate std;

mod atomic;
pub mod hlc;
pub mod lamport;
mod physical;
mod timestamp;
mod wire;

pub use hlc::{Hlc, HlcConfig, HlcError, DEFAULT_MAX_OFFSET_MILLIS};
pub use lamport::{LamportClock, LamportError, LAMPORT_LIMIT, LAMPORT_REMOTE_MAX};
pub use physical::PhysicalClock;
pub use timestamp::{HlcTimestamp, HLC_LOGICAL_BITS, HLC_MAX_LOGICAL, HLC_MAX_MILLIS};
#[doc(hidden)]
pub use wire::check_wire_decoding;
pub use wire::{lamport_from_bytes, lamport_to_bytes, DecodeError, TIMESTAMP_WIRE_LEN};
