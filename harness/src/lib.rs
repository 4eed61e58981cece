//! The QEMU test harness.
//!
//! Small and boring on purpose, in the spirit of the bootloader crate's
//! runner: build the image, start QEMU with `isa-debug-exit`, capture the
//! serial console, map the exit status to an outcome. What it adds: a hard
//! timeout (QEMU is killed when it expires, or when the handle is dropped),
//! line-by-line waiting on the console for VMs that are not meant to exit,
//! and the whole serial log printed when a test fails.
//!
//! Images are built once per test process, in release mode: a debug kernel
//! takes ~20 s to load under TCG (shared/PLATFORM.md). Long-lived users (the
//! `continuum` CLI) point a VM at prebuilt images instead
//! ([`VmConfig::prebuilt_images`]), keep its files in a directory of their
//! own ([`VmConfig::files_in`]), append its console to a file as it arrives
//! ([`VmConfig::console_log`]) and pause or resume it over QMP
//! ([`VmConfig::qmp`], [`Vm::pause`]).
//!
//! Modules: [`cluster`] (a fabric and one VM per node, fault verbs),
//! [`plan`] (cluster identity: keys, genesis, node configs), [`client`] (the
//! client protocol with retries), [`qmp`] (QEMU's machine protocol),
//! [`shapes`] (partition shapes, loss plans), [`inspect`] (status fields,
//! injected frames), [`faults`] (clock offset and disk faults from outside
//! the guest), [`chaos`] (the seeded fault schedule shared by the Jepsen
//! test and `continuum chaos`).

//!
//! Files: [`vm`] (one QEMU VM), [`images`] (the images it boots), [`http`]
//! (loopback ports and status GETs); their items are re-exported here.

pub mod bank;
pub mod chaos;
pub mod checker;
pub mod cli;
pub mod client;
pub mod cluster;
pub mod faults;
pub mod http;
pub mod images;
pub mod inspect;
pub mod load;
pub mod plan;
pub mod private;
pub mod qmp;
pub mod shapes;
pub mod vm;

/// The one node id type (`continuum_base`), as config and wire decoders produce it.
pub use continuum_config::{NodeId, MAX_NODE_ID};
pub use http::*;
pub use images::*;
pub use vm::*;
