//! Configuration of one Raft node.
//!
//! Times are in *ticks*: the caller calls [`crate::Raft::tick`] at a fixed
//! period. The defaults assume a **10 ms tick**, giving a 150–300 ms
//! randomized election timeout and a 50 ms heartbeat (Raft §5.2, §9.3: the
//! election timeout must be an order of magnitude above the broadcast time).
//! Under emulation (QEMU TCG) the kernel scales the tick period rather than
//! these counts, so the ratios stay the same.

use crate::codec::{MAX_ENTRIES_PER_MESSAGE, MAX_MESSAGE_BYTES};
use crate::entry::ENTRY_HEADER_BYTES;
use crate::NodeId;
use core::fmt;

/// Largest `data` accepted in one proposal, in bytes. Keeps one entry far
/// below [`MAX_MESSAGE_BYTES`] so that any entry can always be shipped.
pub const MAX_ENTRY_DATA_BYTES: usize = 64 * 1024;

/// How a leader answers [`crate::Raft::read_index`] (thesis §6.4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadOnlyOption {
    /// Confirm leadership with a heartbeat round to a quorum before answering
    /// (thesis §6.4). Safe under any clock behaviour. The default.
    Safe,
    /// Answer from the leader lease (thesis §6.4.1) when a quorum acked a
    /// heartbeat recently enough; otherwise fall back to `Safe`. No round
    /// trip, but correct only if clock rates differ by at most
    /// `max_clock_drift_pct`, and only if *every* node runs with
    /// `check_quorum` and `LeaseBased` (followers then refuse votes for an
    /// election timeout after hearing from the leader, and for one after
    /// booting). Accepted only together with `check_quorum`.
    LeaseBased,
}

/// Configuration of one node. Build with [`Config::new`] and adjust fields.
#[derive(Clone, Debug)]
pub struct Config {
    /// This node's id (non-zero). No default: set by the cluster config.
    pub id: NodeId,
    /// Base election timeout in ticks. The effective timeout is drawn
    /// uniformly from `[election_ticks, 2 * election_ticks)` after every reset
    /// (Raft §5.2). Default 15 (150–300 ms at 10 ms ticks). Raise it on slow
    /// links or under emulation, where spurious elections would appear.
    pub election_ticks: u64,
    /// Heartbeat interval of a leader, in ticks. Default 5 (50 ms). Must be
    /// well below `election_ticks`; lower it to detect leader loss sooner at
    /// the price of more messages.
    pub heartbeat_ticks: u64,
    /// Run a pre-vote round before a real election (thesis §9.6) so that a
    /// partitioned node rejoining does not disrupt the cluster with a higher
    /// term. Default true; turn off only to compare with plain Raft.
    pub pre_vote: bool,
    /// A leader that has not heard from a quorum within an election timeout
    /// steps down (thesis §6.2), and followers that heard from a leader
    /// recently ignore vote requests. Default true; required for lease reads.
    pub check_quorum: bool,
    /// How reads are served; default [`ReadOnlyOption::Safe`]. Switch to
    /// `LeaseBased` only if clock drift is bounded and you need the latency.
    pub read_only: ReadOnlyOption,
    /// Bound on clock-rate difference between any two nodes, in percent of
    /// the slower tick period (10 = one node's ticks may be up to 10 %
    /// longer than another's). Only used for lease reads: the lease lasts
    /// `(election_ticks - 1) * 100 / (100 + max_clock_drift_pct)` ticks after
    /// the quorum's heartbeat was sent. Default 20; raise it on hardware or
    /// emulators with worse clocks (it shortens the lease).
    pub max_clock_drift_pct: u64,
    /// Most entries in one AppendEntries message. Default 256. Raise for
    /// throughput with tiny entries; bounded by [`MAX_ENTRIES_PER_MESSAGE`].
    pub max_entries_per_msg: usize,
    /// Soft limit on the encoded bytes of entries in one AppendEntries (at
    /// least one entry is always sent). Default 256 KiB; bounded so a message
    /// always fits [`MAX_MESSAGE_BYTES`].
    pub max_bytes_per_msg: usize,
    /// AppendEntries messages in flight per follower in replicate state
    /// (pipelining, thesis §10.2.2). Default 64. Raise on high
    /// bandwidth-delay links; lower to bound memory per follower.
    pub max_inflight_msgs: usize,
    /// Most entries the leader may hold beyond its commit index; further
    /// proposals are refused with [`crate::ProposeError::TooManyUncommitted`]
    /// so a stalled cluster cannot grow memory without bound. Default 8192.
    pub max_uncommitted_entries: u64,
    /// Most bytes of committed entries handed to the application in one
    /// [`crate::Ready`]. Default 1 MiB; lower it to bound apply latency.
    pub max_committed_bytes_per_ready: usize,
    /// Most ReadIndex requests waiting for quorum confirmation (or for the
    /// leader's first commit). Default 4096; excess reads are refused.
    pub max_pending_reads: usize,
    /// Index already applied by the state machine when (re)starting. Default
    /// 0: the application replays the log from the start (or from the
    /// storage's snapshot, if it has one: never below it).
    pub applied: u64,
    /// Bytes of snapshot data per InstallSnapshot message: the largest
    /// content-defined chunk (and the budget of a manifest piece, 36 bytes
    /// per entry, at least one). Default 1024, so
    /// one chunk plus its ~140 header bytes fits a ~1.3 KiB datagram; raise
    /// it on links that carry bigger messages (at most
    /// [`crate::MAX_SNAPSHOT_CHUNK_BYTES`]).
    pub snapshot_chunk_bytes: usize,
    /// Largest snapshot a follower accepts by InstallSnapshot (it buffers
    /// the data in memory until the whole is verified, plus, until the new
    /// manifest is complete, the chunks of one abandoned install: at most
    /// twice this). Default 256 MiB.
    pub max_snapshot_bytes: u64,
}

impl Config {
    /// Defaults described at each field, for node `id`.
    pub fn new(id: NodeId) -> Config {
        Config {
            id,
            election_ticks: 15,
            heartbeat_ticks: 5,
            pre_vote: true,
            check_quorum: true,
            read_only: ReadOnlyOption::Safe,
            max_clock_drift_pct: 20,
            max_entries_per_msg: 256,
            max_bytes_per_msg: 256 * 1024,
            max_inflight_msgs: 64,
            max_uncommitted_entries: 8192,
            max_committed_bytes_per_ready: 1024 * 1024,
            max_pending_reads: 4096,
            applied: 0,
            snapshot_chunk_bytes: 1024,
            max_snapshot_bytes: 256 * 1024 * 1024,
        }
    }

    /// Ticks a lease lasts after the heartbeat that started it was sent:
    /// a follower's promise lasts at least `election_ticks - 1` of its own
    /// ticks, converted to the leader's ticks under the drift bound.
    pub fn lease_ticks(&self) -> u64 {
        self.election_ticks.saturating_sub(1) * 100 / (100 + self.max_clock_drift_pct)
    }

    /// Checks the relations documented at the fields.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.id == crate::NO_NODE {
            return Err(ConfigError::ZeroId);
        }
        if self.heartbeat_ticks == 0 || self.election_ticks <= self.heartbeat_ticks {
            return Err(ConfigError::Timeouts);
        }
        if self.snapshot_chunk_bytes == 0
            || self.snapshot_chunk_bytes > crate::codec::MAX_SNAPSHOT_CHUNK_BYTES
            || self.max_snapshot_bytes == 0
        {
            return Err(ConfigError::ZeroLimit);
        }
        if self.max_entries_per_msg == 0 || self.max_entries_per_msg > MAX_ENTRIES_PER_MESSAGE {
            return Err(ConfigError::EntriesPerMessage);
        }
        // Worst case: max_bytes_per_msg plus one maximal entry, plus headers.
        let worst = self.max_bytes_per_msg + ENTRY_HEADER_BYTES + MAX_ENTRY_DATA_BYTES + 128;
        if self.max_bytes_per_msg == 0 || worst > MAX_MESSAGE_BYTES {
            return Err(ConfigError::BytesPerMessage);
        }
        if self.max_inflight_msgs == 0
            || self.max_uncommitted_entries == 0
            || self.max_pending_reads == 0
        {
            return Err(ConfigError::ZeroLimit);
        }
        if self.read_only == ReadOnlyOption::LeaseBased {
            if !self.check_quorum {
                return Err(ConfigError::LeaseWithoutCheckQuorum);
            }
            if self.lease_ticks() <= self.heartbeat_ticks {
                return Err(ConfigError::LeaseTooShort);
            }
        }
        Ok(())
    }
}

/// Why a [`Config`] was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfigError {
    /// Node id 0 is reserved for "no node".
    ZeroId,
    /// Need `0 < heartbeat_ticks < election_ticks`.
    Timeouts,
    /// `max_entries_per_msg` is 0 or above the codec cap.
    EntriesPerMessage,
    /// `max_bytes_per_msg` is 0 or a message could exceed the codec cap.
    BytesPerMessage,
    /// A queue limit is 0.
    ZeroLimit,
    /// Lease reads are only safe with check-quorum (thesis §6.4.1).
    LeaseWithoutCheckQuorum,
    /// With lease reads, the lease (after the drift margin) must outlast a
    /// heartbeat interval or it would never be valid.
    LeaseTooShort,
    /// The bootstrap membership in storage does not contain this node.
    NotAVoter,
    /// The stored membership is not sorted, unique, non-zero and disjoint.
    InvalidConf,
    /// `applied` is beyond the persisted commit index.
    AppliedBeyondCommit,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = match self {
            ConfigError::ZeroId => "node id 0 is reserved",
            ConfigError::Timeouts => "need 0 < heartbeat_ticks < election_ticks",
            ConfigError::EntriesPerMessage => {
                "max_entries_per_msg must be in 1..=MAX_ENTRIES_PER_MESSAGE"
            }
            ConfigError::BytesPerMessage => {
                "max_bytes_per_msg must be > 0 and keep messages under MAX_MESSAGE_BYTES"
            }
            ConfigError::ZeroLimit => "inflight, uncommitted and pending-read limits must be > 0",
            ConfigError::LeaseWithoutCheckQuorum => "lease-based reads require check_quorum",
            ConfigError::LeaseTooShort => {
                "lease shorter than a heartbeat interval after the drift margin"
            }
            ConfigError::NotAVoter => "this node is not a member of the bootstrap membership",
            ConfigError::InvalidConf => "stored membership is not a valid configuration",
            ConfigError::AppliedBeyondCommit => "applied index beyond persisted commit index",
        };
        f.write_str(text)
    }
}
