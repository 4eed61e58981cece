//! The node configuration.
//!
//! Every Continuum node boots the same kernel image; what makes it *this*
//! node is a short text file that QEMU hands over through `fw_cfg`
//! (`opt/continuum/config`) or that `boot/` bakes into a USB image. The same
//! parser runs in the kernel (before the heap exists, so it never allocates)
//! and on the host (so tools can validate a config before booting it).
//!
//! # Format
//!
//! One `key = value` per line; `#` starts a comment; blank lines are ignored.
//! Keys may appear at most once. Unknown keys are an error, not a warning: a
//! misspelt `heap_mib` silently ignored would boot a node with the wrong
//! settings.
//!
//! ```text
//! # node 1 of the demo cluster
//! node_id    = 1
//! cluster_id = 42
//! heap_mib   = 16
//! log_level  = info
//! mode       = node   # or selftest, wal-exercise, wal-bench, ...
//! unsafe_no_flush = false
//! ```
//!
//! Parsing is total: any bytes give `Ok(Config)` or a [`ConfigError`] that
//! names the line and what is wrong with it. The kernel prints that error and
//! halts rather than guess.
#![no_std]
#![forbid(unsafe_code)]

mod parse;

pub use parse::{ConfigError, ConfigErrorKind};

/// Largest accepted configuration file, in bytes. The kernel reads the file
/// into a fixed buffer of this size before it has a heap.
pub const MAX_CONFIG_BYTES: usize = 4096;

/// Heap sizes the kernel accepts, in MiB. Below the minimum the node's own
/// tables do not fit; above the maximum we would eat the memory that DMA
/// buffers and page tables need on a small VM.
pub const HEAP_MIB_RANGE: core::ops::RangeInclusive<u32> = 1..=1024;

/// How verbose the boot console is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    Error,
    Warn,
    Info,
    Debug,
    Trace,
}

/// What the kernel does after it has brought the platform up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Run as a cluster node (the default).
    Node,
    /// Run the in-kernel self-tests, then exit QEMU through `isa-debug-exit`
    /// with a pass or fail code. Only meaningful under QEMU with that device.
    SelfTest,
    /// Touch an unmapped address on purpose, to prove that a page fault is
    /// reported (address, error code) and turned into an exit code, not a hang.
    SelfTestPageFault,
    /// Storage exercise (until Raft drives the log): append entries with
    /// deterministic payloads in batches forever, printing
    /// `wal: acked through index N term T` only after the batch's flush
    /// returned, and persist a changing hard state (term, vote), printed
    /// after its flush. Needs a virtio-blk disk. Used by the kill -9 tests.
    WalExercise,
    /// Storage benchmark: appends/s and flush latency p50/p99 for batch
    /// sizes 1, 16 and 256 on the attached disk, printed as a table; then
    /// exits QEMU through `isa-debug-exit`. Needs a virtio-blk disk.
    WalBench,
}

/// A parsed node configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// This node's identity in the cluster, 1..=255. Default 1.
    /// Every node of a cluster needs a different id.
    pub node_id: u8,
    /// The cluster this node belongs to. Default 1. Nodes and disks of
    /// different clusters refuse to talk to each other.
    pub cluster_id: u64,
    /// Kernel heap in MiB, within [`HEAP_MIB_RANGE`]. Default 16. Raise it
    /// for large batches or a long in-memory log.
    pub heap_mib: u32,
    /// Console verbosity. Default `info`; `debug` and `trace` slow a TCG
    /// guest noticeably because every byte goes through an emulated UART.
    pub log_level: LogLevel,
    /// What to do after boot. Default [`Mode::Node`].
    pub mode: Mode,
    /// Accept a virtio-blk disk without a cache-flush command
    /// (`VIRTIO_BLK_F_FLUSH`). Default `false`: such a disk is refused,
    /// because nothing written to it is ever known to be durable. Only for
    /// benchmarks; with it set, an acknowledged entry can be lost.
    pub unsafe_no_flush: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            node_id: 1,
            cluster_id: 1,
            heap_mib: 16,
            log_level: LogLevel::Info,
            mode: Mode::Node,
            unsafe_no_flush: false,
        }
    }
}

impl Config {
    /// Parses a configuration file. See the crate docs for the format.
    pub fn parse(bytes: &[u8]) -> Result<Config, ConfigError> {
        parse::parse(bytes)
    }
}

impl core::fmt::Display for LogLevel {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            LogLevel::Error => "error",
            LogLevel::Warn => "warn",
            LogLevel::Info => "info",
            LogLevel::Debug => "debug",
            LogLevel::Trace => "trace",
        })
    }
}

impl core::fmt::Display for Mode {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Mode::Node => "node",
            Mode::SelfTest => "selftest",
            Mode::SelfTestPageFault => "selftest-page-fault",
            Mode::WalExercise => "wal-exercise",
            Mode::WalBench => "wal-bench",
        })
    }
}
