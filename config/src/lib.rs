//! The node configuration.
//!
//! Every Continuum node boots the same kernel image; what makes it *this*
//! node is a short text file that QEMU hands over through `fw_cfg`
//! (`opt/continuum/config`) or that `boot/` bakes into a USB image (sealed
//! with a checksum, see [`ramdisk`]). The same
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
//! heap_mib   = 64
//! log_level  = info
//! mode       = node   # or selftest, wal-exercise, wal-bench, net-bench, ...
//! unsafe_no_flush = false
//! disk       = nvme:S3EVNX0K123456   # or ahci:<port>, virtio:<n>; default: any
//! format     = blank-only            # or this-disk (needs `disk`)
//! # networking (see the field docs)
//! secret_key = 9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60
//! lan_ip     = 10.7.0.1/24
//! peer       = 2 10.7.0.2 3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c
//! peer       = 3 10.7.0.3 fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025
//! # the bank's genesis (identical on every node) and Raft timing
//! operator_key    = d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a
//! reserve_account = 1
//! supply          = 1000000000
//! election_ms     = 1000
//! heartbeat_ms    = 100
//! ledger_heap_mib = 64      # sizes the bank's tables (identical on every node)
//! dedup_window_ms = 600000  # longest validity of a signed command
//! snapshot_entries = 10000  # applied entries between ledger snapshots
//! ```
//!
//! `peer` is the one key that may repeat (once per other member).
//!
//! Parsing is total: any bytes give `Ok(Config)` or a [`ConfigError`] that
//! names the line and what is wrong with it. The kernel prints that error and
//! halts rather than guess.
#![no_std]
#![warn(missing_docs)]
#![forbid(unsafe_code)]

pub mod fuzz_check;
mod parse;
pub mod ramdisk;

pub use continuum_base::{NodeId, MAX_NODE_ID};
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
    /// Only what stops the node.
    Error,
    /// Also what the operator should look at.
    Warn,
    /// Also boot progress and role changes (the default).
    Info,
    /// Also per-event detail; slow under TCG.
    Debug,
    /// Everything; very slow under TCG.
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
    /// Storage exercise, without Raft: append entries with
    /// deterministic payloads in batches forever, printing
    /// `wal: acked through index N term T` only after the batch's flush
    /// returned, and persist a changing hard state (term, vote), printed
    /// after its flush. Needs a disk. Used by the kill -9 tests.
    WalExercise,
    /// Storage benchmark: appends/s and flush latency p50/p99 for batch
    /// sizes 1, 16 and 256 on the attached disk, printed as a table; then
    /// exits QEMU through `isa-debug-exit`. Needs a disk.
    WalBench,
    /// Run as a node, and if this is the lowest node id, measure round
    /// trips and message rate of authenticated peer messages to the next
    /// peer, print them, and exit QEMU (benchmarks only).
    NetBench,
    /// Measure the floor under `NetBench`: raw Ethernet frames echoed
    /// between two NICs with no IP stack and no authentication (benchmarks only).
    NetBenchRaw,
}

/// Accepted `election_ms` values: below 100 ms a TCG guest holds spurious
/// elections; above a minute failover is too slow to be useful.
pub const ELECTION_MS_RANGE: core::ops::RangeInclusive<u32> = 100..=60_000;
/// Accepted `heartbeat_ms` values.
pub const HEARTBEAT_MS_RANGE: core::ops::RangeInclusive<u32> = 10..=10_000;

/// Accepted `ledger_heap_mib` values (the node's own `heap_mib` must be at
/// least as large).
pub const LEDGER_HEAP_MIB_RANGE: core::ops::RangeInclusive<u32> = 1..=1024;
/// Accepted `dedup_window_ms` values: ten seconds to one day. A client
/// signs for the window minus an allowance for its clock being ahead of
/// the cluster's (at least 5 s), so a shorter window leaves it no time.
pub const DEDUP_WINDOW_MS_RANGE: core::ops::RangeInclusive<u64> = 10_000..=86_400_000;
/// Default `dedup_window_ms`: 10 minutes.
pub const DEFAULT_DEDUP_WINDOW_MS: u64 = 600_000;
/// Default `snapshot_entries`.
pub const DEFAULT_SNAPSHOT_ENTRIES: u64 = 10_000;

/// Accepted `snapshot_entries` values. Below the minimum a node would
/// spend its time writing snapshots; above the maximum the log between two
/// snapshots outgrows any disk.
pub const SNAPSHOT_ENTRIES_RANGE: core::ops::RangeInclusive<u64> = 10..=10_000_000;

/// Most peers a node can have (a 9-node cluster); bounds the fixed table
/// the parser fills without a heap.
pub const MAX_PEERS: usize = 8;

/// Longest NVMe serial number (Identify Controller bytes 4..24).
pub const MAX_SERIAL_BYTES: usize = 20;

/// Which disk holds this node's log (`disk = ...`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DiskPin {
    /// The first usable disk in PCI order (one holding this node's log,
    /// else the first blank one). The default.
    Any,
    /// The `n`-th virtio-blk disk in PCI order, from 0 (`virtio:<n>`).
    Virtio {
        /// Position among the virtio-blk disks, from 0.
        index: u8,
    },
    /// The NVMe disk with this serial number (`nvme:<serial>`), as the
    /// console lists it; ASCII without blanks, at most
    /// [`MAX_SERIAL_BYTES`].
    Nvme {
        /// The serial's bytes, zero-padded.
        serial: [u8; MAX_SERIAL_BYTES],
        /// How many bytes of `serial` are used.
        len: u8,
    },
    /// The SATA disk on this port of the first AHCI controller (PCI order)
    /// that has a disk on that port (`ahci:<port>`, 0..=31).
    Ahci {
        /// AHCI port number, 0..=31.
        port: u8,
    },
}

impl DiskPin {
    /// The serial of an `nvme:` pin.
    pub fn nvme_serial(&self) -> Option<&str> {
        match self {
            DiskPin::Nvme { serial, len } => {
                core::str::from_utf8(&serial[..usize::from(*len)]).ok()
            }
            _ => None,
        }
    }
}

impl core::fmt::Display for DiskPin {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            DiskPin::Any => f.write_str("any"),
            DiskPin::Virtio { index } => write!(f, "virtio:{index}"),
            DiskPin::Nvme { .. } => write!(f, "nvme:{}", self.nvme_serial().unwrap_or("?")),
            DiskPin::Ahci { port } => write!(f, "ahci:{port}"),
        }
    }
}

/// What the node may format (`format = ...`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FormatPolicy {
    /// Format only a disk whose first and last MiB are all zeros. The default.
    BlankOnly,
    /// Also format the disk `disk` names when it holds something that is
    /// not a Continuum log (a partition table, a filesystem): its contents
    /// are destroyed. A Continuum log of another node or cluster is still
    /// refused. Needs `disk` set to a specific disk.
    ThisDisk,
}

impl core::fmt::Display for FormatPolicy {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            FormatPolicy::BlankOnly => "blank-only",
            FormatPolicy::ThisDisk => "this-disk",
        })
    }
}

/// An IPv4 address with its prefix length, as in `10.7.0.1/24`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ipv4Cidr {
    /// The address, most significant octet first.
    pub address: [u8; 4],
    /// Network prefix length, 0..=32.
    pub prefix_len: u8,
}

/// Another member of the cluster.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Peer {
    /// Its node id (1..=255, not ours, unique).
    pub id: NodeId,
    /// Its address on the replication LAN.
    pub lan_ip: [u8; 4],
    /// Its Ed25519 public key (32 bytes).
    pub public_key: [u8; 32],
}

/// A parsed node configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// This node's identity in the cluster, 1..=255. Default 1.
    /// Every node of a cluster needs a different id.
    pub node_id: NodeId,
    /// The cluster this node belongs to. Default 1. Nodes and disks of
    /// different clusters refuse to talk to each other.
    pub cluster_id: u64,
    /// Kernel heap in MiB, within [`HEAP_MIB_RANGE`]. Default 64; at least
    /// `ledger_heap_mib`, since the bank's tables live in it.
    pub heap_mib: u32,
    /// Console verbosity. Default `info`; `debug` and `trace` slow a TCG
    /// guest noticeably because every byte goes through an emulated UART.
    pub log_level: LogLevel,
    /// What to do after boot. Default [`Mode::Node`].
    pub mode: Mode,
    /// Accept a disk that has a volatile write cache but no cache-flush
    /// command (virtio-blk without `VIRTIO_BLK_F_FLUSH`, a SATA disk with
    /// its write cache on and no FLUSH CACHE EXT). Default `false`: such a disk is refused,
    /// because nothing written to it is ever known to be durable. Only for
    /// benchmarks; with it set, an acknowledged entry can be lost.
    pub unsafe_no_flush: bool,
    /// Which disk holds the log. Default [`DiskPin::Any`]; pin one on a
    /// machine with several disks, or to let `format = this-disk` act.
    pub disk: DiskPin,
    /// What the node may format. Default [`FormatPolicy::BlankOnly`]: a
    /// disk with anything on it that is not this node's log is left alone.
    pub format: FormatPolicy,
    /// This node's Ed25519 secret key (the 32-byte seed, hex). Default none:
    /// without it the node cannot authenticate to peers and runs without
    /// the replication LAN. Keep config files with keys private.
    pub secret_key: Option<[u8; 32]>,
    /// Address on the replication LAN (the first virtio-net NIC). Default
    /// none (LAN not configured).
    pub lan_ip: Option<Ipv4Cidr>,
    /// The other members: up to [`MAX_PEERS`] `peer = <id> <lan ip> <public key hex>` lines.
    pub peers: [Option<Peer>; MAX_PEERS],
    /// Address on the client network (the second NIC). Default
    /// `10.0.2.15/24`, what QEMU user networking hands out; change it on
    /// real networks.
    pub client_ip: Ipv4Cidr,
    /// Default gateway on the client network. Default `10.0.2.2` (QEMU
    /// user networking's host side).
    pub client_gateway: [u8; 4],
    /// UDP port for peer messages on the LAN. Default 7000.
    pub peer_port: u16,
    /// UDP port for client requests on the client network. Default 7001.
    pub client_port: u16,
    /// TCP port of the HTTP status endpoint (`GET /status`) on the client
    /// network. Default 8080.
    pub status_port: u16,
    /// The operator's Ed25519 public key (hex): genesis credits the whole
    /// supply to the reserve account it owns, and it signs account
    /// creation. Default none: a node without it cannot run the bank and
    /// refuses to start in `mode = node` with a LAN.
    pub operator_key: Option<[u8; 32]>,
    /// Id of the reserve account that holds the supply at genesis. Default 1.
    pub reserve_account: u128,
    /// Total money in the ledger, fixed at genesis. Default 1_000_000_000.
    /// Every node of a cluster must use the same genesis (operator key,
    /// reserve account, supply, cluster id): the receipt chains differ otherwise.
    pub supply: u64,
    /// Base Raft election timeout in ms (the effective one is drawn from
    /// `[election_ms, 2 * election_ms)`). Default 1000, sized for TCG
    /// emulation where three guests share two host cores; 150–300 suits KVM
    /// or hardware.
    pub election_ms: u32,
    /// Raft leader heartbeat interval in ms. Default 100; at most a third of
    /// `election_ms`.
    pub heartbeat_ms: u32,
    /// Heap, in MiB, the bank's table limits are sized for
    /// (`continuum_bank::Limits::for_heap`): accounts, the dedup window's
    /// ids and sessions. Part of the genesis: identical on every node, since
    /// a full table decides outcomes. Default 64, within
    /// [`LEDGER_HEAP_MIB_RANGE`]; this node's `heap_mib` must be at least
    /// this (checked at parse).
    pub ledger_heap_mib: u32,
    /// Longest validity, in ms of log time, a signed command may ask for
    /// (`expires_at` beyond it is refused `ExpiryTooFar`); the bank forgets
    /// a decided id once its expiry has passed. Part of the genesis. Default
    /// 600000 (10 minutes), within [`DEDUP_WINDOW_MS_RANGE`].
    pub dedup_window_ms: u64,
    /// Applied entries between two snapshots of the ledger; after each the
    /// log prefix is released and its disk space reused. Default 10000,
    /// within [`SNAPSHOT_ENTRIES_RANGE`]. Each node's own choice.
    pub snapshot_entries: u64,
    /// This node joins a running cluster (`continuum cluster add-node`).
    /// Default `false`. Then the `peer` lines are the members to contact,
    /// not the configuration: the node boots with an empty configuration,
    /// learns the membership from the leader's log or snapshot, and never
    /// votes or campaigns before a committed change makes it a voter. Set it
    /// also for a blank disk replacing a node whose id is still a voter:
    /// that id lost its promises (docs/membership.md).
    pub join: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            node_id: 1,
            cluster_id: 1,
            heap_mib: 64,
            log_level: LogLevel::Info,
            mode: Mode::Node,
            unsafe_no_flush: false,
            disk: DiskPin::Any,
            format: FormatPolicy::BlankOnly,
            secret_key: None,
            lan_ip: None,
            peers: [None; MAX_PEERS],
            client_ip: Ipv4Cidr {
                address: [10, 0, 2, 15],
                prefix_len: 24,
            },
            client_gateway: [10, 0, 2, 2],
            peer_port: 7000,
            client_port: 7001,
            status_port: 8080,
            operator_key: None,
            reserve_account: 1,
            supply: 1_000_000_000,
            election_ms: 1000,
            heartbeat_ms: 100,
            ledger_heap_mib: 64,
            dedup_window_ms: DEFAULT_DEDUP_WINDOW_MS,
            snapshot_entries: DEFAULT_SNAPSHOT_ENTRIES,
            join: false,
        }
    }
}

impl Config {
    /// The configured peers, in file order.
    pub fn peers(&self) -> impl Iterator<Item = &Peer> {
        self.peers.iter().flatten()
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
            Mode::NetBench => "net-bench",
            Mode::NetBenchRaw => "net-bench-raw",
        })
    }
}
