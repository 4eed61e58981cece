//! One Continuum node as a deterministic state machine: Raft over the
//! durable log, the bank applied in log order, and the client requests
//! waiting on both. See the crate doc for the driving loop.

use alloc::collections::{BTreeMap, VecDeque};
use alloc::vec::Vec;
use core::fmt;

use continuum_bank::{
    GenesisConfig, GenesisError, Ledger, Outcome, OwnerKey, SnapshotError, VerdictMemo,
};
use continuum_clock::HlcTimestamp;
use continuum_net::client::MembershipRefusal;
use continuum_net::client::{
    encode_balance_answer, encode_transfer_answer, ClientReply, ClientRequest, ReplyBody,
    ReplyError, RequestOp, TransferAnswer,
};
use continuum_raft::{
    ConfChange, ConfChangeError, ConfChangeKind, ConfEntry, ConfState, Config as RaftConfig,
    ConfigError, EntryKind, MessageBody, NodeId, ProposeError, Raft, ReadIndexError, Role,
    TransferError,
};
use continuum_storage::{BlockDevice, Store, StoreError};

use crate::admission::{self, Admission, ADMISSION_SIGNATURES_PER_PASS};
use crate::disk_log::{DiskLog, PersistError};
use crate::membership::{
    self, CheckContext, ConfContext, Directory, Member, MembershipChange, MembershipFault, Refusal,
    SignedMembership,
};
use crate::stages::{StageSample, Stages};
use crate::trace::{Local, TraceSink};
use crate::wire::{Body, EntryHeader, ForwardRefusal};

/// Largest bank entry a client may submit: an AppendEntries carrying one
/// such entry must fit one peer datagram (`net`'s 1351-byte peer payload
/// minus the envelope, the Raft message and entry headers; checked by a test).
pub const MAX_ENTRY_BYTES: usize = 1024;
/// Soft byte limit on entries in one AppendEntries, so it fits a datagram.
pub const MAX_APPEND_BYTES: usize = 1100;
/// A receipt-chain checkpoint is kept at every applied index divisible by
/// this; nodes exchange their latest one to detect divergence.
pub const CHECKPOINT_EVERY: u64 = 16;
/// Checkpoints remembered (the window in which peers' heads are compared).
pub const CHECKPOINTS_KEPT: usize = 64;
/// Most client writes waiting for their entry to apply on this node
/// (proposed here or forwarded to the leader). Each holds its bank entry
/// (≤ [`MAX_ENTRY_BYTES`]): ≤ ~5 MiB. Beyond it a write gets `Busy`; a
/// follower under a client flood cannot exhaust its heap this way.
pub const MAX_WAITING_WRITES: usize = 4096;
/// Most client reads waiting for their ReadIndex confirmation or for the
/// confirmed index to apply (small: no command bytes). Beyond it `Busy`.
pub const MAX_WAITING_READS: usize = 4096;
/// Ticks the log must have been quiet (no flush) before the node closes
/// the witness window of its newest flushed batch (`disk_log.rs`): 1 s
/// at 10 ms ticks, so a slow client's gaps do not each cost a flush.
pub const WITNESS_QUIET_TICKS: u64 = 100;
/// Most persisted entries queued for verification ahead of apply; past it
/// an entry is verified at apply instead (same outcome, on the commit path).
pub const MAX_VERIFY_AHEAD: usize = 256;
/// Snapshot events kept for [`Node::take_snapshot_events`]; older ones are
/// dropped (and counted) if the caller does not take them.
pub const MAX_SNAPSHOT_EVENTS: usize = 16;
/// Membership events kept for [`Node::take_membership_events`]; older ones
/// are dropped if the caller does not take them.
pub const MAX_MEMBERSHIP_EVENTS: usize = 16;
/// Ticks between a leader's checks for learners to promote (100 ms).
pub const PROMOTE_CHECK_TICKS: u64 = 10;

/// Messages a leader may send before its own write of the Ready that
/// produced them: they carry its log and commit index, not a promise about
/// its disk (votes and answers, which do, wait for the flush).
fn sendable_before_persist(body: &MessageBody) -> bool {
    matches!(
        body,
        MessageBody::Append { .. }
            | MessageBody::Heartbeat { .. }
            | MessageBody::InstallSnapshot { .. }
            | MessageBody::TimeoutNow
    )
}

/// Everything that makes this node this node.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    /// This node (non-zero, one of `voters` unless joining).
    pub id: NodeId,
    /// The boot configuration: every member `cluster init` made, this node
    /// included. Empty for a node joining a running cluster: it learns the
    /// membership from the leader and never votes before it is a voter.
    pub voters: Vec<NodeId>,
    /// The boot facts of the member directory: (id, LAN address, public
    /// key) of every member this node knows at boot (for a joining node,
    /// the members it was told to contact). The log and snapshots take
    /// over from there (`membership.rs`).
    pub members: Vec<(NodeId, [u8; 4], [u8; 32])>,
    /// Cluster id as carried in client datagram headers.
    pub cluster_id: u64,
    /// The bank's genesis, identical on every node.
    pub genesis: GenesisConfig,
    /// Raft election timeout base, in ticks.
    pub election_ticks: u64,
    /// Raft heartbeat interval, in ticks.
    pub heartbeat_ticks: u64,
    /// A client request not answered within this many ticks gets
    /// `Timeout` (writes: outcome unknown, query it) or `Unavailable` (reads).
    pub request_timeout_ticks: u64,
    /// Ticks between chain-head exchanges.
    pub chain_check_ticks: u64,
    /// Seed of Raft's randomized timeouts.
    pub seed: u64,
    /// Take a snapshot of the ledger (and compact the log up to it) every
    /// this many applied entries; 0 = never (the log then only grows).
    pub snapshot_entries: u64,
}

/// The driving loop's tick: [`Node::tick`] is called every this many ms.
pub const TICK_MS: u64 = 10;

/// Why a boot config cannot make a node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeConfigError {
    /// `operator_key` is not set, so the bank has no genesis.
    NoOperatorKey,
}

impl fmt::Display for NodeConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NodeConfigError::NoOperatorKey => {
                f.write_str("operator_key is not set, so the bank has no genesis")
            }
        }
    }
}

impl NodeConfig {
    /// The node a validated boot config describes (the one mapping from
    /// config keys to node parameters; the kernel and the benchmarks use
    /// it). `seed` seeds Raft's randomized timeouts.
    pub fn from_config(
        config: &continuum_config::Config,
        seed: u64,
    ) -> Result<NodeConfig, NodeConfigError> {
        let operator_key = config.operator_key.ok_or(NodeConfigError::NoOperatorKey)?;
        let mut members: Vec<(NodeId, [u8; 4], [u8; 32])> = config
            .peers()
            .map(|p| (p.id, p.lan_ip, p.public_key))
            .collect();
        if let (Some(secret), Some(lan)) = (config.secret_key, config.lan_ip) {
            let public = ed25519_dalek::SigningKey::from_bytes(&secret).verifying_key();
            members.push((config.node_id, lan.address, public.to_bytes()));
        }
        members.sort_unstable_by_key(|m| m.0);
        let mut voters: Vec<NodeId> = config.peers().map(|p| p.id).collect();
        voters.push(config.node_id);
        voters.sort_unstable();
        if config.join {
            // Joining: the peers are contacts, not the configuration.
            voters.clear();
        }
        let election_ticks = u64::from(config.election_ms) / TICK_MS;
        Ok(NodeConfig {
            id: config.node_id,
            voters,
            members,
            cluster_id: config.cluster_id,
            genesis: GenesisConfig {
                cluster_id: u128::from(config.cluster_id),
                operator_key,
                reserve_account: config.reserve_account,
                supply: config.supply,
                // Part of the genesis, identical on every node: a full table
                // decides outcomes (the config parser checked the heap fits).
                limits: continuum_bank::Limits::for_heap(u64::from(config.ledger_heap_mib)),
                max_expiry_window_ms: config.dedup_window_ms,
            },
            election_ticks,
            heartbeat_ticks: (u64::from(config.heartbeat_ms) / TICK_MS).max(1),
            request_timeout_ticks: (election_ticks * 4).max(300),
            chain_check_ticks: 100,
            seed,
            snapshot_entries: config.snapshot_entries,
        })
    }
}

/// Something the snapshot machinery did, for the console.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SnapshotEvent {
    /// At start, the ledger was restored from the stored snapshot; only
    /// the log after `index` is replayed.
    Restored {
        /// The snapshot's index.
        index: u64,
    },
    /// A snapshot received from the leader by InstallSnapshot replaced
    /// the ledger and the log.
    Installed {
        /// The snapshot's index.
        index: u64,
        /// The leader that sent it (as known when it was installed).
        leader: NodeId,
    },
    /// This node took a snapshot and compacted its log up to `index`.
    Taken {
        /// The snapshot's index.
        index: u64,
        /// Its size.
        bytes: u64,
    },
}

impl fmt::Display for SnapshotEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SnapshotEvent::Restored { index } => {
                write!(f, "restored snapshot at index {index}")
            }
            SnapshotEvent::Installed { index, leader } => {
                write!(
                    f,
                    "installed snapshot at index {index} from leader {leader}"
                )
            }
            SnapshotEvent::Taken { index, bytes } => {
                write!(
                    f,
                    "took snapshot at index {index} ({bytes} bytes), log compacted"
                )
            }
        }
    }
}

/// Snapshot and log-space figures for `/status`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SnapshotStatus {
    /// First index the log holds: half a snapshot interval before the
    /// snapshot (the entries kept for followers a little behind), or the
    /// snapshot index + 1 right after an install.
    pub first_index: u64,
    /// Index of the stored snapshot (0: none).
    pub snapshot_index: u64,
    /// Its data size in bytes.
    pub snapshot_bytes: u64,
    /// WAL bytes the live log occupies.
    pub wal_used_bytes: u64,
    /// WAL region size.
    pub wal_capacity_bytes: u64,
    /// Snapshots this node took (this boot).
    pub snapshots_taken: u64,
    /// Snapshots installed from a leader (this boot).
    pub snapshots_installed: u64,
    /// Tick (of this boot) at which the last snapshot was taken or
    /// installed; 0 if none.
    pub last_snapshot_tick: u64,
    /// InstallSnapshot chunks fetched from a leader (this boot).
    pub snapshot_chunks_fetched: u64,
    /// InstallSnapshot chunks reused instead: found in this node's own
    /// snapshot or an abandoned install (this boot).
    pub snapshot_chunks_reused: u64,
    /// Bytes of the fetched chunks.
    pub snapshot_chunk_bytes_fetched: u64,
    /// Bytes of the reused chunks.
    pub snapshot_chunk_bytes_reused: u64,
}

/// Why the node cannot go on. The kernel prints it and halts: continuing
/// could break a promise (persistence) or spread a divergent state.
#[derive(Debug)]
pub enum NodeError {
    /// The log could not be made durable.
    Persist(PersistError),
    /// The log on disk could not be read back at start.
    Open(StoreError),
    /// Raft rejected the configuration.
    Raft(ConfigError),
    /// The genesis configuration is invalid.
    Genesis(GenesisError),
    /// A stored or received snapshot does not restore to a ledger of this
    /// cluster at its index.
    Snapshot {
        /// The snapshot's index.
        index: u64,
        /// Why the ledger refused it (`None`: it belongs to another genesis
        /// or index).
        error: Option<SnapshotError>,
    },
    /// A committed configuration change is not one the operator signed
    /// (or a promotion nobody authorized): the log cannot be followed.
    Membership {
        /// The entry's index.
        index: u64,
        /// What is wrong with it.
        fault: MembershipFault,
    },
    /// A majority of peers applied the same index to a different receipt
    /// chain head: this replica diverged.
    Diverged {
        /// The applied index the heads were compared at.
        index: u64,
        /// This node's receipt-chain head there.
        mine: [u8; 32],
        /// The head the peers agree on.
        theirs: [u8; 32],
        /// How many peers reported it.
        peers: usize,
    },
}

impl fmt::Display for NodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NodeError::Persist(e) => write!(f, "{e}"),
            NodeError::Open(e) => write!(f, "reading the Raft log at start failed: {e}"),
            NodeError::Raft(e) => write!(f, "raft configuration: {e:?}"),
            NodeError::Genesis(e) => write!(f, "bank genesis: {e:?}"),
            NodeError::Snapshot { index, error } => match error {
                Some(e) => write!(f, "ledger snapshot at index {index} does not restore: {e}"),
                None => write!(
                    f,
                    "ledger snapshot at index {index} is of another genesis or a later index"
                ),
            },
            NodeError::Membership { index, fault } => write!(
                f,
                "committed membership change at index {index} cannot be followed: {fault}"
            ),
            NodeError::Diverged {
                index,
                mine,
                theirs,
                peers,
            } => write!(
                f,
                "DIVERGED at applied index {index}: my receipt chain head {} but {peers} peers agree on {}",
                Hex(mine),
                Hex(theirs)
            ),
        }
    }
}

/// Lower-case hex of a hash, for messages.
pub struct Hex<'a>(pub &'a [u8; 32]);

impl fmt::Display for Hex<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for byte in self.0 {
            write!(f, "{byte:02x}")?;
        }
        Ok(())
    }
}

/// Counters for `/metrics` and `/status`.
#[derive(Clone, Copy, Debug, Default)]
pub struct Metrics {
    /// Entries this node proposed as leader.
    pub proposals: u64,
    /// Client writes forwarded to the leader.
    pub forwarded: u64,
    /// Entries seen committed.
    pub committed_entries: u64,
    /// Bank commands applied (every outcome).
    pub applied_commands: u64,
    /// Client requests received.
    pub client_requests: u64,
    /// Client requests refused as malformed.
    pub client_bad_requests: u64,
    /// Client submits refused at admission: a signature does not verify.
    pub client_bad_signatures: u64,
    /// Client requests answered `Busy` (a waiting queue or the admission
    /// budget was full, or Raft refused more uncommitted entries or reads).
    pub client_busy: u64,
    /// Unchecked forwards this leader dropped (bad or unresolvable
    /// signer, budget spent, or not leader any more).
    pub forwards_refused: u64,
    /// Client requests answered `Timeout` (writes) or `Unavailable` (reads).
    pub client_timeouts: u64,
    /// Linearizable reads answered.
    pub reads_served: u64,
    /// Peer messages refused: Raft would not step them, a read answer
    /// nobody asked for, or a malformed forward.
    pub raft_rejected: u64,
    /// Times the known leader changed.
    pub leader_changes: u64,
    /// Chain checks whose head matched ours.
    pub chain_checks_matched: u64,
    /// Chain checks whose head differed from ours.
    pub chain_checks_mismatched: u64,
    /// Snapshots taken (log compacted up to them).
    pub snapshots_taken: u64,
    /// Snapshots installed from a leader.
    pub snapshots_installed: u64,
    /// Snapshot events dropped because nobody took them.
    pub snapshot_events_dropped: u64,
    /// Signatures verified ahead of apply, off the commit path (entries
    /// persisted or sent but not yet committed).
    pub preverified_signatures: u64,
    /// Slots written and flushed only to witness a quiet log's last batch.
    pub witness_flushes: u64,
    /// Membership commands refused at admission.
    pub membership_refused: u64,
    /// Configuration changes applied (committed).
    pub membership_changes: u64,
    /// Promotions of caught-up learners this leader proposed.
    pub promotions_proposed: u64,
    /// Entries re-applied at restart without verifying their signatures
    /// again: at or below the disk's clean mark (`disk_log.rs`).
    pub replayed_clean: u64,
}

/// The membership as this node sees it, for `/status` and the console.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MembershipStatus {
    /// Voters of the configuration in effect (newest in the log).
    pub voters: Vec<NodeId>,
    /// Learners of it.
    pub learners: Vec<NodeId>,
    /// Index of the entry that set it (0: the boot configuration).
    pub conf_index: u64,
    /// Index of the configuration change applied last.
    pub applied_conf_index: u64,
    /// This node is a voter.
    pub voting: bool,
    /// The committed change at this index removed this node.
    pub removed_at: Option<u64>,
}

/// A configuration change this node applied, for the console.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MembershipEvent {
    /// The entry's index.
    pub index: u64,
    /// The change.
    pub change: MembershipChange,
    /// The node it changed.
    pub node: NodeId,
    /// This node was removed by it.
    pub removed_self: bool,
}

impl fmt::Display for MembershipEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (what, node, index) = (self.change, self.node, self.index);
        if self.removed_self {
            return write!(f, "removed from the cluster at index {index}");
        }
        match what {
            MembershipChange::AddLearner { lan_ip, .. } => write!(
                f,
                "membership: node {node} ({}.{}.{}.{}) added as a learner at index {index}",
                lan_ip[0], lan_ip[1], lan_ip[2], lan_ip[3]
            ),
            MembershipChange::PromoteLearner => {
                write!(
                    f,
                    "membership: node {node} promoted to voter at index {index}"
                )
            }
            MembershipChange::RemoveVoter | MembershipChange::RemoveLearner => {
                write!(f, "membership: node {node} removed at index {index}")
            }
            MembershipChange::TransferLeader => {
                write!(f, "membership: leadership handed to node {node}")
            }
        }
    }
}

/// How far this node's applied entries are known clean (no `BadSignature`
/// outcome), for the mark stamped on its log records (`disk_log.rs`).
#[derive(Debug, Clone, Copy)]
struct CleanMark {
    /// Every entry from the last snapshot through this index applied with
    /// no `BadSignature` outcome.
    through: u64,
    /// An entry with a `BadSignature` outcome applied since the last
    /// snapshot: `through` stays put until the next snapshot covers it
    /// (a replay re-verifies from there on).
    stopped: bool,
    /// Entries at or below this index are re-applied without verifying
    /// (the mark this disk recovered at open; 0 for none).
    replay_through: u64,
}

struct Waiting<A> {
    client: A,
    cluster_id: u64,
    request_id: u64,
    deadline: u64,
    op: RequestOp,
    /// The leader this write was forwarded to unchecked, the one node
    /// whose `ForwardRefused` for it is believed.
    forwarded_unchecked: Option<NodeId>,
}

/// One node. `D` is the disk, `A` the client address replies go to.
pub struct Node<D: BlockDevice, A: Clone> {
    config: NodeConfig,
    raft: Raft<DiskLog<D>>,
    ledger: Ledger,
    /// The operator key (signs account creation), parsed once.
    operator: OwnerKey,
    /// Signatures verified at admission since the last `drive`.
    admission_spent: usize,
    /// Signature verdicts computed before apply (admission, background),
    /// used and consumed at apply (`continuum_bank::verdicts`).
    verdicts: VerdictMemo,
    /// Entries persisted but not yet verified ahead of apply: (index,
    /// entry data), at most [`MAX_VERIFY_AHEAD`].
    unverified: VecDeque<(u64, Vec<u8>)>,
    /// The log's flush count when last seen, and the tick it changed.
    flushes_seen: (u64, u64),
    /// Stage timestamps of this leader's entries (`stages.rs`).
    stages: Stages,
    /// Where local trace events go (`trace.rs`); none: not traced.
    trace: Option<TraceSink>,
    /// Writes this node took from clients, by request tag, until applied.
    writes: BTreeMap<u64, Waiting<A>>,
    /// Reads waiting for their ReadIndex, by ctx.
    reads: BTreeMap<u64, Waiting<A>>,
    /// Confirmed reads: (read index, ctx), served once applied.
    confirmed: Vec<(u64, u64)>,
    next_request_tag: u64,
    ticks: u64,
    applied: u64,
    checkpoints: VecDeque<(u64, [u8; 32])>,
    /// Peers' reported heads: index -> (peer -> head).
    peer_heads: BTreeMap<u64, BTreeMap<NodeId, [u8; 32]>>,
    outbox: Vec<(NodeId, Body)>,
    replies: Vec<(A, ClientReply)>,
    leader_seen: NodeId,
    /// Latest HLC reading the caller gave (stamped on read replies).
    hlc: u64,
    metrics: Metrics,
    snapshot_events: VecDeque<SnapshotEvent>,
    last_snapshot_tick: u64,
    /// Members' addresses and keys as of the last applied change.
    directory: Directory,
    /// The member an appended, uncommitted addition brings, with the
    /// configuration index it was computed for.
    pending_member: (u64, Option<(NodeId, Member)>),
    /// The committed change that removed this node.
    removed_at: Option<u64>,
    /// The configuration entry in effect (appended, maybe not committed)
    /// removes this node. A removed node may never hear that its removal
    /// committed: the leader stops replicating to it once it has.
    removal_in_log: Option<u64>,
    membership_events: VecDeque<MembershipEvent>,
    clean: CleanMark,
}

impl<D: BlockDevice, A: Clone> Node<D, A> {
    /// Starts (or restarts) a node on an opened store: restores the ledger
    /// from the stored snapshot, if any, and replays only the committed log
    /// after it as Raft hands the entries back.
    pub fn new(config: NodeConfig, store: Store<D>) -> Result<Node<D, A>, NodeError> {
        let log = DiskLog::new(store, config.voters.clone()).map_err(NodeError::Open)?;
        let mut snapshot_events = VecDeque::new();
        let boot_directory = Directory::from_boot(
            &config.members,
            ConfState::with_voters(config.voters.clone()),
        );
        let (ledger, applied, directory) = match continuum_raft::Storage::snapshot(&log) {
            Some(snapshot) => {
                let index = snapshot.metadata.index;
                let (ledger, directory) = restore_snapshot(&config.genesis, snapshot)?;
                snapshot_events.push_back(SnapshotEvent::Restored { index });
                (ledger, index, directory.unwrap_or(boot_directory))
            }
            None => (
                Ledger::genesis(config.genesis).map_err(NodeError::Genesis)?,
                0,
                boot_directory,
            ),
        };
        // Entries the disk vouches were applied clean before the restart
        // (`disk_log.rs`); only those after the snapshot are replayed.
        let replay_through = log
            .recovered_clean_mark()
            .filter(|&mark| mark > applied)
            .unwrap_or(0);
        let clean = CleanMark {
            through: applied.max(replay_through),
            stopped: false,
            replay_through,
        };
        let next_request_tag = first_request_tag(log.boot_generation());
        let mut raft_config = RaftConfig::new(config.id);
        raft_config.election_ticks = config.election_ticks;
        raft_config.heartbeat_ticks = config.heartbeat_ticks;
        raft_config.max_bytes_per_msg = MAX_APPEND_BYTES;
        raft_config.max_entries_per_msg = 64;
        raft_config.applied = applied;
        let raft = Raft::new(raft_config, log, config.seed).map_err(NodeError::Raft)?;
        let operator = OwnerKey::parse(&config.genesis.operator_key)
            .ok_or(NodeError::Genesis(GenesisError::InvalidOperatorKey))?;
        Ok(Node {
            config,
            raft,
            ledger,
            operator,
            admission_spent: 0,
            verdicts: VerdictMemo::new(),
            unverified: VecDeque::new(),
            flushes_seen: (0, 0),
            stages: Stages::new(),
            trace: None,
            writes: BTreeMap::new(),
            reads: BTreeMap::new(),
            confirmed: Vec::new(),
            next_request_tag,
            ticks: 0,
            applied,
            checkpoints: VecDeque::new(),
            peer_heads: BTreeMap::new(),
            outbox: Vec::new(),
            replies: Vec::new(),
            leader_seen: continuum_raft::NO_NODE,
            hlc: 0,
            metrics: Metrics::default(),
            snapshot_events,
            last_snapshot_tick: 0,
            directory,
            pending_member: (0, None),
            removed_at: None,
            removal_in_log: None,
            membership_events: VecDeque::new(),
            clean,
        })
    }

    /// Snapshot and log-space figures (`/status`).
    pub fn snapshot_status(&self) -> SnapshotStatus {
        let log = self.raft.storage();
        let store = log.store();
        let chunks = self.raft.snapshot_chunk_stats();
        SnapshotStatus {
            first_index: store.first_index(),
            snapshot_index: store.snapshot_index(),
            snapshot_bytes: store.snapshot_meta().map_or(0, |m| m.data_len),
            wal_used_bytes: store.wal_used_bytes(),
            wal_capacity_bytes: store.wal_capacity_bytes(),
            snapshots_taken: self.metrics.snapshots_taken,
            snapshots_installed: self.metrics.snapshots_installed,
            last_snapshot_tick: self.last_snapshot_tick,
            snapshot_chunks_fetched: chunks.chunks_fetched,
            snapshot_chunks_reused: chunks.chunks_reused,
            snapshot_chunk_bytes_fetched: chunks.bytes_fetched,
            snapshot_chunk_bytes_reused: chunks.bytes_reused,
        }
    }

    /// Snapshot events since the last call (at most
    /// [`MAX_SNAPSHOT_EVENTS`]; older ones were dropped), for the console.
    pub fn take_snapshot_events(&mut self) -> Vec<SnapshotEvent> {
        self.snapshot_events.drain(..).collect()
    }

    fn snapshot_event(&mut self, event: SnapshotEvent) {
        if self.snapshot_events.len() >= MAX_SNAPSHOT_EVENTS {
            self.snapshot_events.pop_front();
            self.metrics.snapshot_events_dropped += 1;
        }
        self.snapshot_events.push_back(event);
    }

    /// Takes a snapshot and compacts the log once `snapshot_entries`
    /// entries were applied since the last one. Half an interval of
    /// entries before the snapshot is kept: a follower that lags by less
    /// is sent entries; only one further behind (stopped, restarted,
    /// partitioned) gets the snapshot by InstallSnapshot. The WAL then
    /// holds at most 1.5 × `snapshot_entries` entries.
    fn maybe_snapshot(&mut self) -> Result<(), NodeError> {
        let every = self.config.snapshot_entries;
        let since = self.raft.storage().snapshot_index();
        if every == 0 || self.applied.saturating_sub(since) < every {
            return Ok(());
        }
        let data = membership::join_snapshot(&self.directory, &self.ledger.snapshot());
        let bytes = data.len() as u64;
        let app = self.ledger.chain_head().1.to_vec();
        let index = self.applied;
        self.raft
            .storage_mut()
            .compact(index, every / 2, data, app)
            .map_err(NodeError::Persist)?;
        self.metrics.snapshots_taken += 1;
        self.last_snapshot_tick = self.ticks;
        self.clean.restart_at(index);
        self.snapshot_event(SnapshotEvent::Taken { index, bytes });
        Ok(())
    }

    /// This node's id.
    pub fn id(&self) -> NodeId {
        self.config.id
    }

    /// The Raft core (role, term, leader, progress) for status pages.
    pub fn raft(&self) -> &Raft<DiskLog<D>> {
        &self.raft
    }

    /// The ledger (balances, chain head) for status pages and the console.
    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    /// Counters.
    pub fn metrics(&self) -> Metrics {
        self.metrics
    }

    /// Index of the last entry applied to the ledger.
    pub fn applied(&self) -> u64 {
        self.applied
    }

    /// Client requests waiting (writes, reads).
    pub fn waiting(&self) -> (usize, usize) {
        (self.writes.len(), self.reads.len() + self.confirmed.len())
    }

    /// One logical clock tick (the kernel calls it every 10 ms).
    pub fn tick(&mut self) {
        self.raft.tick();
        self.ticks += 1;
        let now = self.ticks;
        for (_, waiting) in drain_expired(&mut self.writes, now) {
            self.metrics.client_timeouts += 1;
            self.reply_error(waiting, ReplyError::Timeout);
        }
        for (_, waiting) in drain_expired(&mut self.reads, now) {
            self.metrics.client_timeouts += 1;
            self.reply_error(waiting, ReplyError::Unavailable);
        }
        if self.config.chain_check_ticks > 0 && now.is_multiple_of(self.config.chain_check_ticks) {
            if let Some(&(index, head)) = self.checkpoints.back() {
                let conf = self.raft.conf_state();
                for &peer in conf.voters.iter().chain(&conf.learners) {
                    if peer != self.config.id {
                        self.outbox.push((peer, Body::ChainCheck { index, head }));
                    }
                }
            }
        }
        if now.is_multiple_of(PROMOTE_CHECK_TICKS) {
            self.promote_caught_up_learners();
        }
    }

    /// Leader: proposes the promotion of a learner that was added to be
    /// promoted once Raft accepts it (it holds the commit index). Refusals
    /// (behind, another change in flight, not ready) are retried next time.
    fn promote_caught_up_learners(&mut self) {
        if self.raft.role() != Role::Leader || self.directory.conf_index != self.raft.conf_index() {
            return;
        }
        let waiting: Vec<NodeId> = self
            .raft
            .learners()
            .iter()
            .copied()
            .filter(|id| self.directory.members.get(id).is_some_and(|m| m.promote))
            .collect();
        for node in waiting {
            let header = EntryHeader {
                origin: self.config.id,
                request_tag: 0,
                hlc: self.hlc,
            };
            let change = ConfChange {
                kind: ConfChangeKind::PromoteLearner,
                node,
                context: header.wrap(&ConfContext::Promotion.encode()),
            };
            if self.raft.propose_conf_change(change).is_ok() {
                self.metrics.promotions_proposed += 1;
                return; // one change at a time
            }
        }
    }

    /// A client datagram arrived from `client`. `hlc` is the node's hybrid
    /// clock now (stamped on the entry if this node proposes it).
    pub fn on_client(&mut self, client: A, request: ClientRequest, hlc: u64) {
        self.metrics.client_requests += 1;
        self.hlc = self.hlc.max(hlc);
        let waiting = Waiting {
            client,
            cluster_id: request.cluster_id,
            request_id: request.request_id,
            deadline: self.ticks + self.config.request_timeout_ticks,
            op: request.op,
            forwarded_unchecked: None,
        };
        if waiting.cluster_id != self.config.cluster_id {
            self.metrics.client_bad_requests += 1;
            return self.reply_error(waiting, ReplyError::BadRequest);
        }
        match &waiting.op {
            RequestOp::Submit { entry } => {
                let decoded = match continuum_bank::Entry::decode(entry) {
                    Ok(decoded) if entry.len() <= MAX_ENTRY_BYTES => decoded,
                    _ => {
                        self.metrics.client_bad_requests += 1;
                        return self.reply_error(waiting, ReplyError::BadRequest);
                    }
                };
                if self.writes.len() >= MAX_WAITING_WRITES {
                    return self.reply_busy(waiting);
                }
                let Some(admission) = self.admit(&decoded) else {
                    return self.reply_busy(waiting);
                };
                match admission {
                    Admission::BadSignature => {
                        self.metrics.client_bad_signatures += 1;
                        return self.reply_error(waiting, ReplyError::BadSignature);
                    }
                    // No node can check it: the leader's ledger is the most
                    // up to date there is. Nothing unchecked enters the log.
                    Admission::Unresolved if self.raft.role() == Role::Leader => {
                        self.metrics.client_bad_requests += 1;
                        return self.reply_error(waiting, ReplyError::BadRequest);
                    }
                    Admission::Valid | Admission::Unresolved => {}
                }
                let admitted = admission == Admission::Valid;
                let request_tag = self.next_request_tag;
                self.next_request_tag = request_tag_after(request_tag);
                let transfer = decoded
                    .commands()
                    .iter()
                    .find_map(|c| match c.command {
                        continuum_bank::Command::Transfer(t) => Some(t.id),
                        continuum_bank::Command::CreateAccount(_) => None,
                    })
                    .unwrap_or(0);
                self.traced(Local::Request {
                    origin: self.config.id,
                    request_tag,
                    transfer,
                });
                let header = EntryHeader {
                    origin: self.config.id,
                    request_tag,
                    hlc,
                };
                // An unresolved entry is only ever forwarded, never
                // proposed here (this node is not the leader: checked above).
                let proposed = if admitted {
                    self.raft.propose(header.wrap(entry))
                } else {
                    Err(ProposeError::NotLeader {
                        leader: self.raft.leader(),
                    })
                };
                match proposed {
                    Ok(index) => {
                        self.stages.proposed(index, index);
                        self.traced_proposal(header, index);
                        self.metrics.proposals += 1;
                        self.writes.insert(request_tag, waiting);
                    }
                    Err(ProposeError::NotLeader { leader }) if leader != 0 => {
                        self.metrics.forwarded += 1;
                        let entry = entry.clone();
                        self.outbox.push((
                            leader,
                            Body::Forward {
                                origin: self.config.id,
                                request_tag,
                                entry,
                                admitted,
                            },
                        ));
                        let forwarded_unchecked = (!admitted).then_some(leader);
                        self.writes.insert(
                            request_tag,
                            Waiting {
                                forwarded_unchecked,
                                ..waiting
                            },
                        );
                    }
                    Err(ProposeError::TooManyUncommitted) => self.reply_busy(waiting),
                    Err(_) => self.reply_error(waiting, ReplyError::Unavailable),
                }
            }
            RequestOp::ChangeMembership { command } => {
                let command = command.clone();
                self.on_membership_command(waiting, &command, hlc);
            }
            RequestOp::QueryBalance { .. }
            | RequestOp::QueryOutcome { .. }
            | RequestOp::QueryChainHead => {
                if self.reads.len() >= MAX_WAITING_READS {
                    return self.reply_busy(waiting);
                }
                let request_tag = self.next_request_tag;
                self.next_request_tag = request_tag_after(request_tag);
                match self.raft.read_index(request_tag) {
                    Ok(()) => {
                        self.reads.insert(request_tag, waiting);
                    }
                    Err(ReadIndexError::NoLeader) => {
                        self.reply_error(waiting, ReplyError::Unavailable)
                    }
                    Err(ReadIndexError::TooManyPendingReads) => self.reply_busy(waiting),
                }
            }
        }
    }

    /// An operator's membership command (`membership.rs`): only the leader
    /// takes it; checked, then proposed (or, for a leadership transfer,
    /// started). The client hears `Ok` once the change applied here.
    fn on_membership_command(&mut self, waiting: Waiting<A>, command: &[u8], hlc: u64) {
        if self.raft.role() != Role::Leader {
            let leader = self.raft.leader();
            let leader_hint = (leader != continuum_raft::NO_NODE).then_some(leader);
            return self.reply_body(waiting, ReplyBody::Redirect { leader_hint });
        }
        let Ok(signed) = SignedMembership::decode(command) else {
            return self.refuse_membership(waiting, MembershipRefusal::Malformed);
        };
        if self.writes.len() >= MAX_WAITING_WRITES || self.admission_budget() == 0 {
            return self.reply_busy(waiting);
        }
        self.admission_spent += 1;
        // The checks must see the configuration the entry will apply after:
        // the latest one, applied (Raft refuses a change while one is
        // uncommitted; this also waits for the last one to apply here).
        if self.directory.conf_index != self.raft.conf_index() {
            return self.refuse_membership(waiting, MembershipRefusal::ChangeInProgress);
        }
        let hlc_ms = HlcTimestamp::from_packed(hlc).millis();
        if let Err(refusal) = membership::check(&signed, &self.check_context(hlc_ms)) {
            return self.refuse(waiting, refusal);
        }
        let node = signed.command.node;
        let Some(kind) = signed.command.change.conf_change_kind() else {
            return match self.raft.transfer_leader(node) {
                Ok(()) => {
                    let event = MembershipEvent {
                        index: self.raft.last_index(),
                        change: MembershipChange::TransferLeader,
                        node,
                        removed_self: false,
                    };
                    self.membership_event(event);
                    let body = self.ok_body(self.raft.last_index(), hlc);
                    self.reply_body(waiting, body)
                }
                Err(e) => self.refuse(waiting, Refusal::Transfer(e)),
            };
        };
        let request_tag = self.next_request_tag;
        self.next_request_tag = request_tag_after(request_tag);
        let header = EntryHeader {
            origin: self.config.id,
            request_tag,
            hlc,
        };
        let change = ConfChange {
            kind,
            node,
            context: header.wrap(&ConfContext::Signed(signed).encode()),
        };
        match self.raft.propose_conf_change(change) {
            Ok(_) => {
                self.writes.insert(request_tag, waiting);
            }
            Err(ConfChangeError::NotLeader { leader }) => {
                let leader_hint = (leader != continuum_raft::NO_NODE).then_some(leader);
                self.reply_body(waiting, ReplyBody::Redirect { leader_hint })
            }
            Err(e) => self.refuse(waiting, Refusal::Raft(e)),
        }
    }

    /// The context membership checks run in, at log time `log_time_ms`.
    fn check_context(&self, log_time_ms: u64) -> CheckContext<'_> {
        CheckContext {
            cluster_id: self.config.genesis.cluster_id,
            operator: &self.operator,
            max_expiry_window_ms: self.config.genesis.max_expiry_window_ms,
            log_time_ms,
            directory: &self.directory,
        }
    }

    fn refuse(&mut self, waiting: Waiting<A>, refusal: Refusal) {
        self.refuse_membership(waiting, refusal_code(refusal));
    }

    fn refuse_membership(&mut self, waiting: Waiting<A>, reason: MembershipRefusal) {
        self.metrics.membership_refused += 1;
        let conf_index = self.raft.conf_index();
        self.reply_body(waiting, ReplyBody::MembershipRefused { reason, conf_index });
    }

    fn ok_body(&self, index: u64, hlc: u64) -> ReplyBody {
        ReplyBody::Ok {
            index,
            term: self.raft.log_term(index).unwrap_or(0),
            hlc,
            chain_hash: self.ledger.chain_head().1,
            outcome: Vec::new(),
        }
    }

    /// The membership as this node sees it (`/status`).
    pub fn membership_status(&self) -> MembershipStatus {
        let conf = self.raft.conf_state();
        MembershipStatus {
            voters: conf.voters.clone(),
            learners: conf.learners.clone(),
            conf_index: self.raft.conf_index(),
            applied_conf_index: self.directory.conf_index,
            voting: conf.is_voter(self.config.id),
            removed_at: self.removed_at.or(self.removal_in_log),
        }
    }

    /// The members whose peer messages this node accepts, with their LAN
    /// addresses and public keys: the directory (as of the last applied
    /// change, so a removed node is dropped once its removal commits),
    /// plus the member an appended but uncommitted addition brings.
    pub fn peer_directory(&self) -> Vec<(NodeId, Member)> {
        let mut members: Vec<(NodeId, Member)> = self
            .directory
            .members
            .iter()
            .map(|(&id, &m)| (id, m))
            .collect();
        if let (_, Some((id, member))) = self.pending_member {
            if !self.directory.members.contains_key(&id) {
                members.push((id, member));
                members.sort_unstable_by_key(|m| m.0);
            }
        }
        members
    }

    /// Membership changes applied since the last call (at most
    /// [`MAX_MEMBERSHIP_EVENTS`]), for the console.
    pub fn take_membership_events(&mut self) -> Vec<MembershipEvent> {
        self.membership_events.drain(..).collect()
    }

    fn membership_event(&mut self, event: MembershipEvent) {
        if self.membership_events.len() >= MAX_MEMBERSHIP_EVENTS {
            self.membership_events.pop_front();
        }
        self.membership_events.push_back(event);
    }

    /// Recomputes the member an appended, uncommitted addition brings
    /// (after each drive: Raft's configuration follows appends and
    /// truncations).
    fn refresh_pending_member(&mut self) {
        let conf_index = self.raft.conf_index();
        if self.pending_member.0 == conf_index {
            return;
        }
        let mut pending = None;
        self.removal_in_log = None;
        if conf_index > self.directory.conf_index {
            let entry = continuum_raft::Storage::entries(
                self.raft.storage(),
                conf_index,
                conf_index + 1,
                usize::MAX,
            )
            .ok()
            .and_then(|mut e| e.pop());
            let added = entry
                .and_then(|e| ConfEntry::decode(&e.data).ok())
                .and_then(|c| ConfContext::decode(&c.change.context).ok().map(|x| (c, x)));
            let me = self.config.id;
            let removal = added
                .as_ref()
                .filter(|(c, _)| c.change.node == me && !c.conf_state.is_member(me))
                .map(|(c, _)| c.change.kind);
            if let Some(kind) = removal {
                self.removal_in_log = Some(conf_index);
                let change = if kind == ConfChangeKind::RemoveVoter {
                    MembershipChange::RemoveVoter
                } else {
                    MembershipChange::RemoveLearner
                };
                self.membership_event(MembershipEvent {
                    index: conf_index,
                    change,
                    node: me,
                    removed_self: true,
                });
            }
            if let Some((conf, (_, ConfContext::Signed(signed)))) = added {
                if let MembershipChange::AddLearner {
                    lan_ip,
                    node_key,
                    promote,
                } = signed.command.change
                {
                    let member = Member {
                        lan_ip,
                        node_key,
                        promote,
                    };
                    pending = Some((conf.change.node, member));
                }
            }
        }
        self.pending_member = (conf_index, pending);
    }

    /// Applies a committed configuration entry: checks it like admission
    /// did (`membership::check_committed`), updates the directory, notes a
    /// removal of this node, answers the client that asked for it.
    fn apply_conf_change(&mut self, entry: &continuum_raft::Entry) -> Result<(), NodeError> {
        let fault = |fault| NodeError::Membership {
            index: entry.index,
            fault,
        };
        // Raft validated it when it entered the log (codec, propose).
        let conf =
            ConfEntry::decode(&entry.data).map_err(|_| fault(MembershipFault::UnknownContext))?;
        let node = conf.change.node;
        let (header, change) = {
            let directory = &self.directory;
            let (cluster_id, operator, window) = (
                self.config.genesis.cluster_id,
                &self.operator,
                self.config.genesis.max_expiry_window_ms,
            );
            membership::check_committed(conf.change.kind, node, &conf.change.context, |ms| {
                CheckContext {
                    cluster_id,
                    operator,
                    max_expiry_window_ms: window,
                    log_time_ms: ms,
                    directory,
                }
            })
            .map_err(fault)?
        };
        self.directory
            .apply(entry.index, node, &change, &conf.conf_state);
        self.metrics.membership_changes += 1;
        let removed_self = node == self.config.id && !conf.conf_state.is_member(node);
        if removed_self {
            self.removed_at = Some(entry.index);
        }
        self.membership_event(MembershipEvent {
            index: entry.index,
            change,
            node,
            removed_self,
        });
        if header.origin == self.config.id {
            let context = &conf.change.context;
            let same = self.writes.get(&header.request_tag).is_some_and(|w| {
                matches!(&w.op, RequestOp::ChangeMembership { command }
                    if context.ends_with(command))
            });
            if let Some(waiting) = same
                .then(|| self.writes.remove(&header.request_tag))
                .flatten()
            {
                let body = self.ok_body(entry.index, header.hlc);
                self.reply_body(waiting, body);
            }
        }
        Ok(())
    }

    /// Signatures this node may still verify at admission before the next
    /// [`Node::drive`] (see `admission.rs`). The kernel stops reading
    /// client datagrams at zero, so they wait in the socket, not in a
    /// `Busy` reply.
    pub fn admission_budget(&self) -> usize {
        ADMISSION_SIGNATURES_PER_PASS.saturating_sub(self.admission_spent)
    }

    /// Admission of `entry` within this pass's budget; `None` when the
    /// budget cannot cover it.
    fn admit(&mut self, entry: &continuum_bank::Entry) -> Option<Admission> {
        if admission::signatures_in(entry) > self.admission_budget() {
            return None;
        }
        let (admission, verified) =
            admission::admit(&self.ledger, self.operator, entry, &mut self.verdicts);
        self.admission_spent += verified;
        Some(admission)
    }

    /// A peer message arrived from authenticated peer `from`.
    pub fn on_peer(&mut self, from: NodeId, body: Body, hlc: u64) -> Result<(), NodeError> {
        self.hlc = self.hlc.max(hlc);
        match body {
            Body::Raft(message) => {
                // A ReadIndex response must answer a read this boot is
                // waiting for (request tags never repeat across boots): one for an
                // earlier incarnation's read, delayed across a restart,
                // would otherwise serve a new read at an old index.
                let unasked = matches!(message.body,
                    MessageBody::ReadIndexResponse { ctx, .. } if !self.reads.contains_key(&ctx));
                let acked = match message.body {
                    MessageBody::AppendResponse {
                        reject: false,
                        index,
                        ..
                    } => Some(index),
                    _ => None,
                };
                if message.from != from || unasked || self.raft.step(message).is_err() {
                    self.metrics.raft_rejected += 1;
                } else if let Some(index) = acked {
                    self.stages.mark(0, index, |s| &mut s.first_ack);
                }
            }
            Body::Forward {
                origin,
                request_tag,
                entry,
                admitted,
            } => {
                // Only the node that took the request may name itself origin.
                let decoded = match continuum_bank::Entry::decode(&entry) {
                    Ok(decoded) if origin == from && entry.len() <= MAX_ENTRY_BYTES => decoded,
                    _ => {
                        self.metrics.raft_rejected += 1;
                        return Ok(());
                    }
                };
                // An admitted forward was checked by its origin, an
                // authenticated member; an unchecked one is checked here,
                // and only a entry whose every signer resolves and
                // verifies is proposed.
                if !admitted {
                    let verdict = if self.raft.role() == Role::Leader {
                        self.admit(&decoded)
                    } else {
                        None
                    };
                    // Refused on its merits: tell the origin, so its client
                    // hears why. Dropped for leadership or load: its client
                    // times out and retries.
                    let refusal = match verdict {
                        Some(Admission::Valid) => None,
                        Some(Admission::BadSignature) => Some(ForwardRefusal::BadSignature),
                        Some(Admission::Unresolved) => Some(ForwardRefusal::Unresolved),
                        None => {
                            self.metrics.forwards_refused += 1;
                            return Ok(());
                        }
                    };
                    if let Some(reason) = refusal {
                        self.metrics.forwards_refused += 1;
                        self.outbox.push((
                            origin,
                            Body::ForwardRefused {
                                request_tag,
                                reason,
                            },
                        ));
                        return Ok(());
                    }
                }
                let header = EntryHeader {
                    origin,
                    request_tag,
                    hlc,
                };
                // A refused forward (not leader any more, overloaded) is
                // dropped: the origin answers its client Timeout, and the
                // client's retry is deduplicated by the transfer id.
                if let Ok(index) = self.raft.propose(header.wrap(&entry)) {
                    self.stages.proposed(index, index);
                    self.traced_proposal(header, index);
                    self.metrics.proposals += 1;
                }
            }
            Body::ForwardRefused {
                request_tag,
                reason,
            } => {
                // Only an unchecked write this node forwarded to `from` is
                // answered this way; anything else is dropped.
                let ours = self
                    .writes
                    .get(&request_tag)
                    .is_some_and(|w| w.forwarded_unchecked == Some(from));
                let Some(waiting) = ours.then(|| self.writes.remove(&request_tag)).flatten() else {
                    self.metrics.raft_rejected += 1;
                    return Ok(());
                };
                let error = match reason {
                    ForwardRefusal::BadSignature => {
                        self.metrics.client_bad_signatures += 1;
                        ReplyError::BadSignature
                    }
                    ForwardRefusal::Unresolved => {
                        self.metrics.client_bad_requests += 1;
                        ReplyError::BadRequest
                    }
                };
                self.reply_error(waiting, error);
            }
            Body::ChainCheck { index, head } => {
                // Only indexes a checkpoint can exist for; bounded memory.
                if index.is_multiple_of(CHECKPOINT_EVERY)
                    && self.raft.conf_state().is_member(from)
                    && index.saturating_add(CHECKPOINT_EVERY * CHECKPOINTS_KEPT as u64)
                        > self.applied
                {
                    self.count_report(index, &head);
                    self.peer_heads.entry(index).or_default().insert(from, head);
                    if self.peer_heads.len() > 2 * CHECKPOINTS_KEPT {
                        self.peer_heads.pop_last();
                    }
                    self.compare_heads()?;
                }
            }
        }
        Ok(())
    }

    /// Runs Raft's Ready loop: persist (one write, at most one flush, per Ready),
    /// queue the messages, apply committed entries, answer clients. Call
    /// after every batch of inputs; then send [`Node::take_outbox`] and
    /// [`Node::take_replies`].
    pub fn drive(&mut self) -> Result<(), NodeError> {
        self.drive_sending(|_, _| {})
    }

    /// [`Node::drive`], handing messages and replies to the network as
    /// soon as they may leave instead of at the end: `send(outbox,
    /// replies)` is called after each Ready is durable (its messages) and
    /// again after its committed entries applied (the replies), and should
    /// drain what it sends. Signatures of persisted entries not yet
    /// committed are verified after that (off the commit path; the
    /// verdicts wait in a memo for apply).
    pub fn drive_sending(
        &mut self,
        mut send: impl FnMut(&mut Vec<(NodeId, Body)>, &mut Vec<(A, ClientReply)>),
    ) -> Result<(), NodeError> {
        self.admission_spent = 0;
        while self.raft.has_ready() {
            let mut ready = self.raft.ready();
            if let Some(from) = ready.truncate_from {
                self.stages.truncated(from);
            }
            let appended = match (ready.entries.first(), ready.entries.last()) {
                (Some(first), Some(last)) => (first.index, last.index),
                _ => (1, 0), // empty
            };
            if let (Some(first), Some(last)) = (
                ready.committed_entries.first(),
                ready.committed_entries.last(),
            ) {
                self.stages
                    .mark(first.index, last.index, |s| &mut s.committed);
            }
            // A leader's appends and heartbeats promise nothing about its
            // own disk, so they leave before its write (thesis §10.2.1):
            // the followers' writes overlap the leader's. Its own entries
            // still count toward commit only once durable: persist below
            // returns before any answer to these appends can be stepped.
            let mut messages = core::mem::take(&mut ready.messages);
            if self.raft.role() == Role::Leader {
                let id = self.config.id;
                let (early, late): (Vec<_>, Vec<_>) = messages
                    .into_iter()
                    .partition(|m| m.from == id && sendable_before_persist(&m.body));
                messages = late;
                for message in early {
                    self.outbox.push((message.to, Body::Raft(message)));
                }
                send(&mut self.outbox, &mut self.replies);
                self.stages.mark(appended.0, appended.1, |s| &mut s.sent);
            }
            let log = self.raft.storage_mut();
            log.set_clean_mark(self.clean.through);
            log.persist(&ready).map_err(NodeError::Persist)?;
            self.stages
                .mark(appended.0, appended.1, |s| &mut s.persisted);
            if let Some(snapshot) = &ready.snapshot {
                // Before this Ready's committed entries, which follow it.
                let index = snapshot.metadata.index;
                let (ledger, directory) = restore_snapshot(&self.config.genesis, snapshot)?;
                self.ledger = ledger;
                if let Some(directory) = directory {
                    self.directory = directory;
                }
                self.applied = index;
                self.clean.restart_at(index);
                self.metrics.snapshots_installed += 1;
                self.last_snapshot_tick = self.ticks;
                let leader = self.raft.leader();
                self.snapshot_event(SnapshotEvent::Installed { index, leader });
            }
            if let Some(soft) = ready.soft_state {
                if soft.leader != self.leader_seen {
                    self.leader_seen = soft.leader;
                    self.metrics.leader_changes += 1;
                }
            }
            // Durable: the Ready's other messages may leave (acks, votes).
            for message in messages {
                self.outbox.push((message.to, Body::Raft(message)));
            }
            send(&mut self.outbox, &mut self.replies);
            for entry in ready.entries {
                if entry.kind == EntryKind::Normal && self.unverified.len() < MAX_VERIFY_AHEAD {
                    self.unverified.push_back((entry.index, entry.data));
                }
            }
            if let (Some(first), Some(last)) = (
                ready.committed_entries.first(),
                ready.committed_entries.last(),
            ) {
                let (first, last) = (first.index, last.index);
                self.traced(Local::Committed { first, last });
            }
            for entry in &ready.committed_entries {
                self.apply(entry)?;
            }
            for read in ready.read_states {
                self.confirmed.push((read.index, read.ctx));
            }
            self.raft.advance();
            self.maybe_snapshot()?;
        }
        self.refresh_pending_member();
        self.serve_reads();
        send(&mut self.outbox, &mut self.replies);
        self.verify_ahead();
        self.close_quiet_witness()?;
        self.compare_heads()
    }

    /// Verifies the signatures of persisted entries that are not applied
    /// yet, so their apply finds the verdicts in the memo. An entry a
    /// truncation replaced costs a wasted verify, nothing else: verdicts
    /// are keyed by content.
    fn verify_ahead(&mut self) {
        while let Some((index, data)) = self.unverified.pop_front() {
            if index <= self.applied {
                continue; // applied already (committed in the same Ready)
            }
            if let Ok((_, bank_entry)) = EntryHeader::unwrap(&data) {
                self.metrics.preverified_signatures +=
                    self.ledger.preverify_into(bank_entry, &mut self.verdicts) as u64;
            }
        }
    }

    /// Closes the witness window of the log's newest flushed batch once the
    /// log has been quiet for [`WITNESS_QUIET_TICKS`] (`disk_log.rs`).
    fn close_quiet_witness(&mut self) -> Result<(), NodeError> {
        let flushes = self.raft.storage().flushes;
        if flushes != self.flushes_seen.0 {
            self.flushes_seen = (flushes, self.ticks);
            return Ok(());
        }
        if self.ticks.saturating_sub(self.flushes_seen.1) >= WITNESS_QUIET_TICKS
            && self
                .raft
                .storage_mut()
                .close_witness()
                .map_err(NodeError::Persist)?
        {
            self.metrics.witness_flushes += 1;
            self.flushes_seen = (self.raft.storage().flushes, self.ticks);
        }
        Ok(())
    }

    /// The newest entry this restart re-applies without verifying its
    /// signatures again (the disk's clean mark, `disk_log.rs`); 0 if none.
    pub fn replay_clean_through(&self) -> u64 {
        self.clean.replay_through
    }

    /// Signature verdicts this node's memo answered, and the ones it had
    /// to compute (each signature verified once per replica: at admission,
    /// ahead of apply, or at apply on a miss).
    pub fn verdict_memo_counts(&self) -> (u64, u64) {
        (self.verdicts.hits(), self.verdicts.misses())
    }

    /// Installs the clock (monotonic µs) stage timestamps are read from
    /// (`stages.rs`); without one, no stage is tracked.
    pub fn set_stage_clock(&mut self, clock: fn() -> u64) {
        self.stages.set_clock(clock);
    }

    /// Installs the sink local trace events go to (`trace.rs`): the caller
    /// stamps each with its clocks and records it in its trace ring.
    pub fn set_trace_sink(&mut self, sink: TraceSink) {
        self.trace = Some(sink);
    }

    fn traced(&self, event: Local) {
        if let Some(sink) = self.trace {
            sink(self.config.id, event);
        }
    }

    fn traced_proposal(&self, header: EntryHeader, index: u64) {
        self.traced(Local::Proposed {
            origin: header.origin,
            request_tag: header.request_tag,
            index,
            term: self.raft.term(),
            hlc: header.hlc,
        });
    }

    /// Stage samples of entries this node proposed that have finished
    /// (applied here), oldest first; and how many were dropped unfinished
    /// or untaken over the node's life.
    pub fn take_stage_samples(&mut self) -> (VecDeque<StageSample>, u64) {
        (self.stages.take(), self.stages.dropped)
    }

    /// The disk, for fault injection by tests and benchmarks.
    pub fn device_mut(&mut self) -> &mut D {
        self.raft.storage_mut().device_mut()
    }

    /// Peer messages to send: (to, body). Wrap each in an envelope with the
    /// node's clocks.
    pub fn take_outbox(&mut self) -> Vec<(NodeId, Body)> {
        core::mem::take(&mut self.outbox)
    }

    /// Client replies to send.
    pub fn take_replies(&mut self) -> Vec<(A, ClientReply)> {
        core::mem::take(&mut self.replies)
    }

    fn apply(&mut self, entry: &continuum_raft::Entry) -> Result<(), NodeError> {
        self.metrics.committed_entries += 1;
        if entry.kind == EntryKind::ConfChange {
            self.apply_conf_change(entry)?;
        }
        let mut bad_signature = false;
        if entry.kind == EntryKind::Normal {
            let (header, bank_entry) = match EntryHeader::unwrap(&entry.data) {
                Ok((header, bank_entry)) => (Some(header), bank_entry),
                // Deterministic on every replica: the bank records a
                // malformed entry as such.
                Err(_) => (None, &[][..]),
            };
            // The bank's log time is the leader's HLC stamp, in ms.
            let hlc_ms = header.map_or(0, |h| HlcTimestamp::from_packed(h.hlc).millis());
            let result = if entry.index <= self.clean.replay_through {
                self.metrics.replayed_clean += 1;
                self.ledger.reapply_clean(entry.index, hlc_ms, bank_entry)
            } else {
                self.ledger
                    .apply_with_memo(entry.index, hlc_ms, bank_entry, &mut self.verdicts)
            };
            bad_signature = result.outcomes.contains(&Outcome::BadSignature);
            self.metrics.applied_commands += result.outcomes.len() as u64;
            self.traced(Local::Applied {
                index: entry.index,
                term: entry.term,
                origin: header.map_or(0, |h| h.origin),
                request_tag: header.map_or(0, |h| h.request_tag),
                head: result.chain_head,
            });
            self.stages
                .mark(entry.index, entry.index, |s| &mut s.applied);
            if let Some(header) = header.filter(|h| h.origin == self.config.id) {
                // The bank entry must match too: a request tag issued by an earlier
                // incarnation of this node (same term, before a restart) may
                // commit now, and must not answer a different request.
                let same = self.writes.get(&header.request_tag).is_some_and(
                    |w| matches!(&w.op, RequestOp::Submit { entry: e } if e.as_slice() == bank_entry),
                );
                if let Some(waiting) = same
                    .then(|| self.writes.remove(&header.request_tag))
                    .flatten()
                {
                    self.stages
                        .mark(entry.index, entry.index, |s| &mut s.replied);
                    self.traced(Local::Replied {
                        origin: header.origin,
                        request_tag: header.request_tag,
                        index: entry.index,
                    });
                    let mut outcome = Vec::with_capacity(result.outcomes.len());
                    for o in &result.outcomes {
                        o.encode_into(&mut outcome);
                    }
                    self.reply(
                        waiting.client,
                        waiting.cluster_id,
                        waiting.request_id,
                        ReplyBody::Ok {
                            index: entry.index,
                            term: entry.term,
                            hlc: header.hlc,
                            chain_hash: result.chain_head,
                            outcome,
                        },
                    );
                }
            }
        }
        self.clean.applied(entry.index, bad_signature);
        self.stages.finish(entry.index);
        self.applied = entry.index;
        if entry.index.is_multiple_of(CHECKPOINT_EVERY) {
            self.checkpoints
                .push_back((entry.index, self.ledger.chain_head().1));
            if self.checkpoints.len() > CHECKPOINTS_KEPT {
                self.checkpoints.pop_front();
            }
        }
        Ok(())
    }

    fn serve_reads(&mut self) {
        let applied = self.applied;
        let ready: Vec<u64> = self
            .confirmed
            .iter()
            .filter(|(index, _)| *index <= applied)
            .map(|&(_, ctx)| ctx)
            .collect();
        self.confirmed.retain(|(index, _)| *index > applied);
        for ctx in ready {
            let Some(waiting) = self.reads.remove(&ctx) else {
                continue; // timed out meanwhile
            };
            self.metrics.reads_served += 1;
            let mut answer = Vec::new();
            match waiting.op {
                RequestOp::QueryBalance { account } => {
                    encode_balance_answer(self.ledger.balance(account), &mut answer)
                }
                RequestOp::QueryOutcome { transfer_id } => {
                    encode_transfer_answer(&transfer_answer(&self.ledger, transfer_id), &mut answer)
                }
                RequestOp::QueryChainHead
                | RequestOp::Submit { .. }
                | RequestOp::ChangeMembership { .. } => {}
            }
            let (_, head) = self.ledger.chain_head();
            let term = self.raft.log_term(applied).unwrap_or(0);
            self.reply(
                waiting.client,
                waiting.cluster_id,
                waiting.request_id,
                ReplyBody::Ok {
                    index: applied,
                    term,
                    hlc: self.hlc,
                    chain_hash: head,
                    outcome: answer,
                },
            );
        }
    }

    /// Halts this node if a majority of the cluster (peers alone) agree on
    /// a different head at an index it applied. Peers' reports are kept
    /// (one per peer and index) while the index is inside the checkpoint
    /// window, so reports arriving one by one add up; reports for an index
    /// this node has not applied yet wait for it.
    fn compare_heads(&mut self) -> Result<(), NodeError> {
        let majority = self.raft.voters().len() / 2 + 1;
        if let Some(&(oldest, _)) = self.checkpoints.front() {
            self.peer_heads.retain(|&index, _| index >= oldest);
        }
        for (&index, heads) in &self.peer_heads {
            let Some(&(_, mine)) = self.checkpoints.iter().find(|&&(i, _)| i == index) else {
                continue;
            };
            let mut disagreeing: BTreeMap<[u8; 32], usize> = BTreeMap::new();
            for head in heads.values().filter(|&&head| head != mine) {
                *disagreeing.entry(*head).or_default() += 1;
            }
            if let Some((&theirs, &peers)) = disagreeing.iter().max_by_key(|(_, &n)| n) {
                if peers >= majority {
                    return Err(NodeError::Diverged {
                        index,
                        mine,
                        theirs,
                        peers,
                    });
                }
            }
        }
        Ok(())
    }

    /// Counts one peer report against this node's checkpoint (metrics).
    fn count_report(&mut self, index: u64, head: &[u8; 32]) {
        if let Some(&(_, mine)) = self.checkpoints.iter().find(|&&(i, _)| i == index) {
            if mine == *head {
                self.metrics.chain_checks_matched += 1;
            } else {
                self.metrics.chain_checks_mismatched += 1;
            }
        }
    }

    fn reply_busy(&mut self, waiting: Waiting<A>) {
        self.metrics.client_busy += 1;
        self.reply_error(waiting, ReplyError::Busy);
    }

    fn reply_error(&mut self, waiting: Waiting<A>, error: ReplyError) {
        self.reply_body(waiting, ReplyBody::Error(error));
    }

    fn reply_body(&mut self, waiting: Waiting<A>, body: ReplyBody) {
        self.reply(waiting.client, waiting.cluster_id, waiting.request_id, body);
    }

    fn reply(&mut self, client: A, cluster_id: u64, request_id: u64, body: ReplyBody) {
        self.replies.push((
            client,
            ClientReply {
                cluster_id,
                node: self.config.id,
                request_id,
                body,
            },
        ));
    }

    /// Stops the node and hands back its disk (tests crash and reopen it).
    pub fn into_device(self) -> D {
        self.raft.into_storage().into_store().into_device()
    }

    /// Role, for the console and status.
    pub fn role(&self) -> Role {
        self.raft.role()
    }
}

/// The ledger and member directory a node snapshot holds (the directory
/// `None` for data written before it carried one); the directory takes the
/// snapshot's configuration from its metadata.
fn restore_snapshot(
    genesis: &GenesisConfig,
    snapshot: &continuum_raft::Snapshot,
) -> Result<(Ledger, Option<Directory>), NodeError> {
    let index = snapshot.metadata.index;
    let (directory, ledger) = membership::split_snapshot(&snapshot.data)
        .map_err(|_| NodeError::Snapshot { index, error: None })?;
    let directory = directory.map(|d| Directory {
        conf: snapshot.metadata.conf_state.clone(),
        conf_index: snapshot.metadata.conf_index,
        ..d
    });
    Ok((restore_ledger(genesis, index, ledger)?, directory))
}

impl CleanMark {
    /// `index` applied, with a `BadSignature` outcome or without.
    fn applied(&mut self, index: u64, bad_signature: bool) {
        self.stopped |= bad_signature;
        if !self.stopped {
            self.through = self.through.max(index);
        }
    }

    /// A snapshot at `index` (taken or installed) covers everything before:
    /// nothing at or below it is replayed again.
    fn restart_at(&mut self, index: u64) {
        self.through = self.through.max(index);
        self.stopped = false;
    }
}

/// The ledger a snapshot at `index` holds, checked to be of this
/// cluster's genesis and not past `index` (no-op entries do not reach the
/// ledger, so its own applied index may be lower). The snapshot data was
/// checked whole against its SHA-256 before it got here (by the store at
/// open, by Raft before an install), so the ledger's own trailer hash is
/// not computed again.
fn restore_ledger(genesis: &GenesisConfig, index: u64, data: &[u8]) -> Result<Ledger, NodeError> {
    let ledger = Ledger::restore_vouched(data).map_err(|e| NodeError::Snapshot {
        index,
        error: Some(e),
    })?;
    if ledger.config() != genesis || ledger.applied_index() > index {
        return Err(NodeError::Snapshot { index, error: None });
    }
    Ok(ledger)
}

/// The reply code of a refused membership command.
fn refusal_code(refusal: Refusal) -> MembershipRefusal {
    use MembershipRefusal as R;
    match refusal {
        Refusal::BadSignature => R::BadSignature,
        Refusal::Expired => R::Expired,
        Refusal::ExpiryTooFar => R::ExpiryTooFar,
        Refusal::StaleConfiguration { .. } => R::StaleConfiguration,
        Refusal::BadMember => R::BadMember,
        Refusal::TooManyMembers | Refusal::Raft(ConfChangeError::TooManyMembers) => {
            R::TooManyMembers
        }
        Refusal::Raft(e) => match e {
            ConfChangeError::TransferInProgress => R::TransferInProgress,
            ConfChangeError::LeaderNotReady => R::LeaderNotReady,
            ConfChangeError::ChangeInProgress => R::ChangeInProgress,
            ConfChangeError::AlreadyMember => R::AlreadyMember,
            ConfChangeError::UnknownNode => R::UnknownNode,
            ConfChangeError::RemoveLastVoter => R::RemoveLastVoter,
            ConfChangeError::RemoveLeader => R::RemoveLeader,
            ConfChangeError::LearnerBehind => R::LearnerBehind,
            ConfChangeError::WouldLoseQuorum => R::WouldLoseQuorum,
            // A leader's own context is far below the bound; not leader
            // is answered with a redirect before this.
            ConfChangeError::ContextTooLarge
            | ConfChangeError::NotLeader { .. }
            | ConfChangeError::TooManyMembers => R::Malformed,
        },
        Refusal::Transfer(TransferError::ToSelf) => R::AlreadyLeader,
        Refusal::Transfer(TransferError::UnknownPeer) => R::UnknownNode,
        Refusal::Transfer(TransferError::NotLeader) => R::LeaderNotReady,
    }
}

/// What `ledger` knows about transfer `id`, as a `QueryOutcome` answer.
pub fn transfer_answer(ledger: &Ledger, id: u128) -> TransferAnswer {
    match ledger.transfer_outcome(id) {
        Some(d) if d.applied() => TransferAnswer::Applied { index: d.index },
        Some(d) => TransferAnswer::Rejected {
            index: d.index,
            outcome_code: d.outcome.code(),
        },
        None => TransferAnswer::NotDecided {
            log_time_ms: ledger.log_time_ms(),
        },
    }
}

/// Request tags (entry header tags and ReadIndex contexts) are
/// `boot << 32 | sequence`: `boot` is the low 32 bits of the store's boot
/// generation, which is persisted and bumped by every open, so no request tag of
/// this boot equals one an earlier incarnation issued that may still sit
/// in the log or in a delayed ReadIndex response (a repeat would answer a
/// new request with an old outcome or index). Within a boot the sequence
/// wraps after 2^32 requests, and boots wrap after 2^32 restarts; a
/// request waiting that long has long timed out. Total for every input.
const REQUEST_TAG_SEQUENCE_BITS: u32 = 32;

fn first_request_tag(boot_generation: u64) -> u64 {
    boot_generation.wrapping_shl(REQUEST_TAG_SEQUENCE_BITS)
}

fn request_tag_after(request_tag: u64) -> u64 {
    let sequence = (1u64 << REQUEST_TAG_SEQUENCE_BITS) - 1;
    (request_tag & !sequence) | (request_tag.wrapping_add(1) & sequence)
}

fn drain_expired<A>(map: &mut BTreeMap<u64, Waiting<A>>, now: u64) -> Vec<(u64, Waiting<A>)> {
    let expired: Vec<u64> = map
        .iter()
        .filter(|(_, w)| w.deadline <= now)
        .map(|(&k, _)| k)
        .collect();
    expired
        .into_iter()
        .filter_map(|k| map.remove(&k).map(|w| (k, w)))
        .collect()
}
