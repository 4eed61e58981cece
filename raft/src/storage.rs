//! The stable-storage interface Raft reads from, and an in-memory version.
//!
//! Raft never writes storage itself: it hands entries and hard state to the
//! caller in a [`crate::Ready`], the caller makes them durable (the node:
//! `continuum_node::DiskLog::persist`, a WAL append + flush on virtio-blk)
//! and then calls [`crate::Raft::advance`].
//! Raft reads back through this trait.
//!
//! Indexes: the log holds entries `first_index()..=last_index()`. The entry
//! at `first_index() - 1` may be gone (compacted into a snapshot, Raft §7)
//! but its term and chain hash must stay readable; with no snapshot it is
//! the virtual entry 0 with term 0 and [`GENESIS_CHAIN_HASH`].
//!
//! Compaction is the caller's: once the application has applied index `i`
//! and serialised its state, it stores a [`Snapshot`] at `i` and drops the
//! log prefix (`MemStorage::compact`). A follower that receives a snapshot
//! by InstallSnapshot gets it in a [`crate::Ready`] and replaces its log
//! with it (`MemStorage::apply_snapshot`) before anything else of that
//! Ready.

use crate::entry::{Entry, EntryKind, LogChainHash, GENESIS_CHAIN_HASH};
use crate::membership::ConfEntry;
use crate::snapshot::SnapshotDigest;
use crate::NodeId;
use alloc::vec::Vec;
use core::fmt;

/// State that must be durable before any message of the same Ready is sent
/// (Raft Figure 2 "persistent state"; `commit` is kept too so a restart can
/// re-apply without a round trip).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HardState {
    /// Latest term this node has seen.
    pub term: u64,
    /// Candidate voted for in `term`, or [`crate::NO_NODE`].
    pub vote: NodeId,
    /// Highest index known committed.
    pub commit: u64,
}

/// `term T vote V commit C` (`vote none` for [`crate::NO_NODE`]): the form
/// the kernel's console and the storage open report print.
impl fmt::Display for HardState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "term {} vote ", self.term)?;
        match self.vote {
            crate::NO_NODE => write!(f, "none")?,
            v => write!(f, "{v}")?,
        }
        write!(f, " commit {}", self.commit)
    }
}

/// Cluster membership: the voting members and the learners (members that
/// receive the log and snapshots but never vote nor count toward a quorum;
/// see `membership.rs`). Both lists are sorted, unique, non-zero and
/// disjoint ([`ConfState::is_valid`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConfState {
    /// Voting members. Sorted, unique, non-zero.
    pub voters: Vec<NodeId>,
    /// Non-voting members. Sorted, unique, non-zero, none a voter.
    pub learners: Vec<NodeId>,
}

impl ConfState {
    /// A configuration of `voters` (sorted and deduplicated) and no learners.
    pub fn with_voters(voters: Vec<NodeId>) -> ConfState {
        let mut voters = voters;
        voters.sort_unstable();
        voters.dedup();
        ConfState {
            voters,
            learners: Vec::new(),
        }
    }

    /// Whether both lists are sorted, unique, free of [`crate::NO_NODE`]
    /// and disjoint.
    pub fn is_valid(&self) -> bool {
        let strictly_sorted = |ids: &[NodeId]| ids.windows(2).all(|w| w[0] < w[1]);
        strictly_sorted(&self.voters)
            && strictly_sorted(&self.learners)
            && !self.voters.contains(&crate::NO_NODE)
            && !self.learners.contains(&crate::NO_NODE)
            && !self
                .voters
                .iter()
                .any(|v| self.learners.binary_search(v).is_ok())
    }

    /// Whether `id` is a voter.
    pub fn is_voter(&self, id: NodeId) -> bool {
        self.voters.binary_search(&id).is_ok()
    }

    /// Whether `id` is a learner.
    pub fn is_learner(&self, id: NodeId) -> bool {
        self.learners.binary_search(&id).is_ok()
    }

    /// Whether `id` is a voter or a learner.
    pub fn is_member(&self, id: NodeId) -> bool {
        self.is_voter(id) || self.is_learner(id)
    }
}

/// Metadata of a snapshot: the last index/term/hash it covers and the
/// membership at that point (Raft §7).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SnapshotMetadata {
    /// Last log index covered by the snapshot.
    pub index: u64,
    /// Term of that entry.
    pub term: u64,
    /// Chain hash of that entry.
    pub chain_hash: LogChainHash,
    /// Membership in effect at `index` (set by the newest configuration
    /// entry at or before it, see `membership.rs`).
    pub conf_state: ConfState,
    /// Index of the configuration entry that set `conf_state` (0: the
    /// bootstrap configuration, no change yet).
    pub conf_index: u64,
}

/// A snapshot: the application state after applying `metadata.index`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// What the snapshot covers.
    pub metadata: SnapshotMetadata,
    /// The application's serialised state (opaque to Raft).
    pub data: Vec<u8>,
    /// SHA-256 of `data` (sent with every InstallSnapshot chunk so the
    /// follower can verify the whole before switching).
    pub data_hash: SnapshotDigest,
}

impl Snapshot {
    /// A snapshot of `data` at `metadata`, with its digest.
    pub fn new(metadata: SnapshotMetadata, data: Vec<u8>) -> Snapshot {
        let data_hash = crate::snapshot::snapshot_digest(&data);
        Snapshot {
            metadata,
            data,
            data_hash,
        }
    }
}

/// A storage read that could not be served.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StorageError {
    /// The index is below `first_index() - 1` (compacted away).
    Compacted,
    /// The index is above `last_index()`.
    Unavailable,
    /// The device failed to read.
    Io,
}

impl fmt::Display for StorageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StorageError::Compacted => "log index compacted",
            StorageError::Unavailable => "log index not yet written",
            StorageError::Io => "storage I/O error",
        })
    }
}

/// Read side of the durable log. Every method reflects only *persisted*
/// state. Raft treats an error for an index inside
/// `first_index()-1..=last_index()` as fatal (the node halts: continuing on
/// a log it cannot read could violate safety).
pub trait Storage {
    /// Hard state, and the membership at the *start* of the stored log:
    /// the snapshot's `conf_state` if there is a snapshot, else the
    /// bootstrap configuration (empty for a node that joins a running
    /// cluster). Raft replays the configuration entries stored after it
    /// (`membership.rs`), so storage never interprets them.
    fn initial_state(&self) -> (HardState, ConfState);
    /// First index present in the log (1 without a snapshot; with one, at
    /// most snapshot index + 1: a storage may keep entries the snapshot
    /// covers, so a follower a little behind is sent entries, not the
    /// snapshot).
    fn first_index(&self) -> u64;
    /// Last index present (`first_index() - 1` when empty).
    fn last_index(&self) -> u64;
    /// Term of entry `index`, for `first_index()-1 <= index <= last_index()`.
    fn term(&self, index: u64) -> Result<u64, StorageError>;
    /// Chain hash of entry `index`, same range as [`Storage::term`].
    fn chain_hash(&self, index: u64) -> Result<LogChainHash, StorageError>;
    /// Entries `lo..hi`, stopping early once their encoded size exceeds
    /// `max_bytes` (but always at least one entry if `lo < hi`).
    fn entries(&self, lo: u64, hi: u64, max_bytes: usize) -> Result<Vec<Entry>, StorageError>;
    /// The newest persisted snapshot, whose index is at least
    /// `first_index() - 1` (`None`: no snapshot, the log starts at 1). A leader sends it to a
    /// follower that needs a compacted entry.
    fn snapshot(&self) -> Option<&Snapshot> {
        None
    }
    /// The newest configuration entry ([`EntryKind::ConfChange`]) among
    /// the stored entries `first_index()..hi`, if any. Raft asks at start
    /// and after a truncation. The default reads backwards one entry at a
    /// time; a storage that tracks its configuration entries should answer
    /// without reading the log (at a restart the whole unapplied tail,
    /// 10,000 entries, was 10,000 single-entry reads).
    fn newest_conf_entry(&self, hi: u64) -> Result<Option<Entry>, StorageError> {
        let first = self.first_index();
        let mut index = hi.min(self.last_index() + 1);
        while index > first {
            index -= 1;
            let entry = self
                .entries(index, index + 1, 0)?
                .pop()
                .ok_or(StorageError::Unavailable)?;
            if entry.kind == EntryKind::ConfChange {
                return Ok(Some(entry));
            }
        }
        Ok(None)
    }
}

/// Log storage in memory: the test and benchmark implementation, and the
/// reference semantics for the kernel's WAL-backed one.
#[derive(Clone, Debug)]
pub struct MemStorage {
    hard_state: HardState,
    conf_state: ConfState,
    /// Metadata of the (virtual) entry before `entries[0]`.
    snapshot: SnapshotMetadata,
    /// The snapshot's state, if a snapshot was taken or installed.
    snapshot_data: Option<Snapshot>,
    entries: Vec<Entry>,
}

impl MemStorage {
    /// Empty log for a cluster of `voters` (none: a node that will join
    /// a running cluster and learn its membership from the leader).
    pub fn new(voters: Vec<NodeId>) -> MemStorage {
        MemStorage::new_with_conf(ConfState::with_voters(voters))
    }

    /// Empty log bootstrapped with `conf_state` (voters and learners).
    pub fn new_with_conf(conf_state: ConfState) -> MemStorage {
        let snapshot = SnapshotMetadata {
            index: 0,
            term: 0,
            chain_hash: GENESIS_CHAIN_HASH,
            conf_state: conf_state.clone(),
            conf_index: 0,
        };
        MemStorage {
            hard_state: HardState::default(),
            conf_state,
            snapshot,
            snapshot_data: None,
            entries: Vec::new(),
        }
    }

    /// Compaction (Raft §7): stores `data` as the snapshot at `index` and
    /// drops the entries up to it. `index` must be a stored entry above the
    /// current snapshot; the caller only compacts what it has applied.
    pub fn compact(&mut self, index: u64, data: Vec<u8>) -> Result<(), StorageError> {
        if index <= self.snapshot.index {
            return Err(StorageError::Compacted);
        }
        if index > self.last_index() {
            return Err(StorageError::Unavailable);
        }
        let (conf_state, conf_index) = self.conf_at(index)?;
        let metadata = SnapshotMetadata {
            index,
            term: self.term(index)?,
            chain_hash: self.chain_hash(index)?,
            conf_state: conf_state.clone(),
            conf_index,
        };
        self.conf_state = conf_state;
        self.entries.drain(..(index - self.snapshot.index) as usize);
        self.snapshot = metadata.clone();
        self.snapshot_data = Some(Snapshot::new(metadata, data));
        Ok(())
    }

    /// Installs a snapshot received from the leader (a Ready's `snapshot`):
    /// the whole log is replaced by it (Raft §7: the follower's entries
    /// either precede it or conflict; Raft only hands over a snapshot the
    /// log does not already contain), and the commit index is raised to it.
    pub fn apply_snapshot(&mut self, snapshot: Snapshot) {
        let index = snapshot.metadata.index;
        assert!(
            index > self.snapshot.index,
            "snapshot at {index} does not move past the current one at {}",
            self.snapshot.index
        );
        self.entries.clear();
        self.conf_state = snapshot.metadata.conf_state.clone();
        self.snapshot = snapshot.metadata.clone();
        self.hard_state.commit = self.hard_state.commit.max(index);
        self.snapshot_data = Some(snapshot);
    }

    /// The configuration in effect at stored `index`: the newest
    /// configuration entry at or before it, else the snapshot's (`Io` if a
    /// stored configuration entry does not decode).
    fn conf_at(&self, index: u64) -> Result<(ConfState, u64), StorageError> {
        let upto = (index - self.snapshot.index) as usize;
        for entry in self.entries[..upto].iter().rev() {
            if entry.kind == EntryKind::ConfChange {
                let conf = ConfEntry::decode(&entry.data).map_err(|_| StorageError::Io)?;
                return Ok((conf.conf_state, entry.index));
            }
        }
        Ok((self.snapshot.conf_state.clone(), self.snapshot.conf_index))
    }

    /// Persists the hard state.
    pub fn set_hard_state(&mut self, hard_state: HardState) {
        self.hard_state = hard_state;
    }

    /// Persists `entries`: any stored entries at or after `entries[0].index`
    /// are replaced (the Ready's `truncate_from`), then `entries` are
    /// appended. They must be contiguous with what remains.
    ///
    /// # Panics
    /// If `entries` would leave a gap in the log.
    pub fn append(&mut self, entries: &[Entry]) {
        let Some(first) = entries.first() else { return };
        let offset = self.snapshot.index + 1;
        assert!(
            first.index >= offset,
            "append below the first index {offset}: {}",
            first.index
        );
        let keep = (first.index - offset) as usize;
        assert!(
            keep <= self.entries.len(),
            "append at {} leaves a gap after {}",
            first.index,
            self.last_index()
        );
        self.entries.truncate(keep);
        self.entries.extend_from_slice(entries);
    }

    /// All stored entries (for tests and checkers).
    pub fn all_entries(&self) -> &[Entry] {
        &self.entries
    }

    /// Persisted hard state.
    pub fn hard_state(&self) -> HardState {
        self.hard_state
    }

    fn position(&self, index: u64) -> Result<Option<usize>, StorageError> {
        if index < self.snapshot.index {
            return Err(StorageError::Compacted);
        }
        if index > self.last_index() {
            return Err(StorageError::Unavailable);
        }
        if index == self.snapshot.index {
            return Ok(None);
        }
        Ok(Some((index - self.snapshot.index - 1) as usize))
    }
}

impl Storage for MemStorage {
    fn initial_state(&self) -> (HardState, ConfState) {
        (self.hard_state, self.conf_state.clone())
    }

    fn first_index(&self) -> u64 {
        self.snapshot.index + 1
    }

    fn last_index(&self) -> u64 {
        self.snapshot.index + self.entries.len() as u64
    }

    fn term(&self, index: u64) -> Result<u64, StorageError> {
        Ok(match self.position(index)? {
            None => self.snapshot.term,
            Some(pos) => self.entries[pos].term,
        })
    }

    fn chain_hash(&self, index: u64) -> Result<LogChainHash, StorageError> {
        Ok(match self.position(index)? {
            None => self.snapshot.chain_hash,
            Some(pos) => self.entries[pos].chain_hash,
        })
    }

    fn entries(&self, lo: u64, hi: u64, max_bytes: usize) -> Result<Vec<Entry>, StorageError> {
        if lo < self.first_index() {
            return Err(StorageError::Compacted);
        }
        if hi > self.last_index() + 1 {
            return Err(StorageError::Unavailable);
        }
        let mut out = Vec::new();
        let mut bytes = 0usize;
        for index in lo..hi {
            let entry = &self.entries[(index - self.first_index()) as usize];
            bytes += entry.encoded_len();
            if !out.is_empty() && bytes > max_bytes {
                break;
            }
            out.push(entry.clone());
        }
        Ok(out)
    }

    fn snapshot(&self) -> Option<&Snapshot> {
        self.snapshot_data.as_ref()
    }
}
