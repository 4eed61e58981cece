//! Raft's [`Storage`] over the durable WAL ([`continuum_storage::Store`]),
//! and the persistence half of the Ready loop.
//!
//! * Reads: `term` comes from the store's in-memory index; `chain_hash`
//!   from a 32-byte-per-entry table built at open (every record is read and
//!   checksum-verified once at boot anyway, to replay the ledger);
//!   `entries` from a bounded cache of recent entries, else one device read
//!   (re-verified against the record checksums).
//! * Writes happen only in [`DiskLog::persist`]: truncate a conflicting
//!   suffix (durable on return), append the Ready's entries as one batch,
//!   write the hard state if its term or vote changed, then **one flush**
//!   (no I/O at all when the only change is the commit index, see
//!   `persist`). Only after `persist`
//!   returned `Ok` may the Ready's messages be sent (persistence before
//!   speech). Group commit falls out: everything proposed between two
//!   Readies is one write and one flush.
//! * Ordering without a second flush: a device may make the slot durable
//!   before the WAL batch written just before it. So the commit index in
//!   the slot never exceeds the last index that was durable *before* this
//!   persist began (the entries of this Ready are not): a commit lost that
//!   way is learnt again from the leader, whereas a commit beyond the log
//!   would stop the node from ever starting.
//! * A commit index on disk beyond the log (written by a build without the
//!   rule above; the open report prints a WARNING) is clamped to the last
//!   index in the hard state handed to Raft.
//! * Witness: recovery tells a corrupt acknowledged record from a torn
//!   tail only if something durable written later records the WAL as
//!   flushed past it: a later record (each stores the flushed offset when
//!   it was written) or a flushed slot. Under load the next batch's flush
//!   is that witness. The last batch before a pause has none until
//!   [`DiskLog::close_witness`] writes and flushes a slot; the node calls
//!   it once the log has been quiet for a few ticks, never on the commit
//!   path (a flush there would cost every commit a disk round trip). The
//!   window this leaves — media corruption of the newest flushed record
//!   within those few ticks, before the next flush — is the known limit
//!   of `storage`'s recovery module, now bounded in time.
//! * Chain hashes are re-verified (SHA-256 over each entry and its
//!   predecessor's hash) at open for every entry **after** the newest
//!   applied one the disk vouches for: the snapshot's index, or the
//!   recovered clean mark (below) if later. Entries up to it were applied
//!   here, so they were flushed before they were applied (`persist` comes
//!   before apply in every Ready) and, being committed, never truncated or
//!   rewritten since; only an unflushed suffix can hold a stale record
//!   (a rewrite after truncation that a power cut lost while later
//!   records of the same batch survived, since virtio-blk does not order
//!   writes), and that suffix is exactly what is re-hashed. The trusted
//!   prefix keeps its checksummed, stored hashes (issue 12: under TCG a
//!   SHA-256 per held entry was most of a restart). The record at the
//!   snapshot index must still carry the snapshot's chain hash.
//! * A read that misses the cache checks each record's stored chain hash
//!   against the table (itself verified at open, or Raft's for entries
//!   appended since): with the record checksum that identifies the entry,
//!   without hashing it again.
//!
//! * Snapshots (Raft §7): [`DiskLog::compact`] stores the application's
//!   snapshot at an applied index in the store's snapshot region and
//!   releases the log up to `keep` entries before it (its WAL space is reused);
//!   a Ready's received snapshot (InstallSnapshot) is stored first in
//!   [`DiskLog::persist`], before that Ready's entries, and the log
//!   restarts after it. The newest snapshot is held in memory (read and
//!   verified once at open) for [`Storage::snapshot`]: a leader sends it
//!   to a follower that needs a compacted entry. The store keeps the
//!   entries `keep` before the snapshot ([`DiskLog::compact`]), so Raft's
//!   first index is one past the store's first entry, whose term and
//!   chain hash stand for the entry before the log; right after an
//!   install the store starts after the snapshot, and the snapshot's term
//!   and chain hash stand for it. At open, a kept tail must reach the
//!   snapshot's index with the snapshot's chain hash.
//! * Membership (Raft thesis §4): the configuration entries of the held log
//!   are tracked as they are read at open, appended and truncated, so
//!   [`DiskLog::compact`] records the configuration in effect *at the
//!   snapshot index* (the newest configuration entry at or before it, else
//!   the previous snapshot's, else the boot configuration) with its index;
//!   a snapshot carries voters, learners and that index on disk
//!   (`continuum-storage` snapshot header version 2). [`Storage::initial_state`]
//!   returns the snapshot's configuration when there is one, the boot
//!   configuration otherwise (empty for a joining node); Raft replays the
//!   configuration entries after it.
//!
//! * The **clean mark** (`Node`'s replay without re-verification): every
//!   record carries the node's mark (`continuum_storage::Store::set_mark`,
//!   [`DiskLog::set_clean_mark`]) — every entry up to it was applied here,
//!   with no `BadSignature` outcome since the snapshot before it. The mark
//!   only ever names entries applied before the record was written, which
//!   are committed, so it is true however the write ends (torn, truncated
//!   or lost, its record simply takes the claim along). At open the newest
//!   recovered mark ([`DiskLog::recovered_clean_mark`]) lets the node
//!   re-apply the tail up to it without verifying signatures again: the
//!   verdicts are a pure function of bytes this disk holds, and were all
//!   "valid".
//!
//! The store's `entries` needs `&mut` (it reads the device) while Raft's
//! `Storage` reads through `&`; a `RefCell` bridges the two. Raft never
//! re-enters storage while a read is in progress, so the borrow cannot fail.

use alloc::collections::VecDeque;
use alloc::vec::Vec;
use core::cell::RefCell;
use core::fmt;

use continuum_raft::{
    compute_chain_hash, ConfEntry, ConfState, Entry, EntryKind, HardState, LogChainHash, NodeId,
    Ready, Snapshot, SnapshotMetadata, Storage, StorageError, GENESIS_CHAIN_HASH,
};
use continuum_storage::{BlockDevice, Record, RecordDefect, SnapshotMeta, Store, StoreError};

/// Bytes of recent entries kept in memory to serve appends to followers and
/// the apply loop without device reads.
pub const ENTRY_CACHE_BYTES: usize = 2 * 1024 * 1024;

/// A persistence step failed: the node must stop (it may have promised
/// something it cannot keep).
#[derive(Debug)]
pub struct PersistError(pub StoreError);

impl fmt::Display for PersistError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "persisting the Raft log failed: {}", self.0)
    }
}

/// The durable log Raft runs on.
pub struct DiskLog<D: BlockDevice> {
    store: RefCell<Store<D>>,
    /// The configuration the node was booted with (`cluster init`'s
    /// voters; empty for a node joining a running cluster): in effect when
    /// neither a snapshot nor a configuration entry says otherwise.
    boot: ConfState,
    /// The configuration entries of the held log, in index order (one per
    /// membership change, so bounded by the log itself).
    confs: Vec<(u64, ConfState)>,
    /// Chain hash of every entry `first_index..=last_index`, in order.
    chain: Vec<LogChainHash>,
    /// Most recent entries (contiguous, ending at `last_index`).
    cache: VecDeque<Entry>,
    cache_bytes: usize,
    /// The newest stored snapshot (the log holds the kept tail before it, or
    /// starts right after it).
    snapshot: Option<Snapshot>,
    /// Bytes of entries appended (metrics).
    pub bytes_written: u64,
    /// Flushes issued (metrics).
    pub flushes: u64,
    /// The newest commit index Raft reported. The commit index is not
    /// persistent state (Raft §5: it is learnt again from the leader); it
    /// rides along whenever a slot is written anyway, clamped to the
    /// durable log.
    commit: u64,
}

fn entry_of(record: Record) -> Result<Entry, StorageError> {
    Ok(Entry {
        index: record.index,
        term: record.term,
        kind: EntryKind::from_byte(record.kind).ok_or(StorageError::Io)?,
        data: record.payload,
        chain_hash: record.chain_hash,
    })
}

fn record_of(entry: &Entry) -> Record {
    Record {
        index: entry.index,
        term: entry.term,
        kind: entry.kind.byte(),
        chain_hash: entry.chain_hash,
        payload: entry.data.clone(),
    }
}

/// Whether `record` carries the chain hash of its own contents on `prev`
/// (the CRC only proves the bytes are as written, not that the writer
/// hashed them right, nor that the record belongs after `prev`).
fn chain_holds(prev: &LogChainHash, record: &Record) -> bool {
    let Some(kind) = EntryKind::from_byte(record.kind) else {
        return false;
    };
    compute_chain_hash(prev, record.index, record.term, kind, &record.payload) == record.chain_hash
}

fn broken_chain(index: u64) -> StoreError {
    StoreError::CorruptRecord {
        index,
        defect: RecordDefect::BrokenLink,
    }
}

impl<D: BlockDevice> DiskLog<D> {
    /// Wraps an opened store. Reads every record once (verifying checksums
    /// and recomputing every chain hash) to build the chain-hash table; a
    /// record that fails here means the disk cannot be trusted: `Err`.
    /// `voters` is the boot configuration (empty: a joining node).
    pub fn new(mut store: Store<D>, voters: Vec<NodeId>) -> Result<DiskLog<D>, StoreError> {
        let snapshot = store.read_snapshot()?.map(|(meta, data)| {
            let metadata = SnapshotMetadata {
                index: meta.index,
                term: meta.term,
                chain_hash: meta.chain_hash,
                conf_state: ConfState {
                    voters: meta.voters,
                    learners: meta.learners,
                },
                conf_index: meta.conf_index,
            };
            Snapshot {
                metadata,
                data,
                data_hash: meta.data_hash,
            }
        });
        let base_hash = snapshot
            .as_ref()
            .map_or(GENESIS_CHAIN_HASH, |s| s.metadata.chain_hash);
        let first = store.first_index();
        let last = store.last_index();
        // The store keeps the log from right after its snapshot, or from
        // some entries before it (the tail kept for followers a little
        // behind), which must then reach the snapshot's entry.
        let snapshot_index = snapshot.as_ref().map(|s| s.metadata.index);
        let pairs = match snapshot_index {
            None => first == 1,
            Some(index) => first == index + 1 || (first <= index && index <= last),
        };
        if !pairs {
            return Err(StoreError::OutOfRange {
                index: snapshot_index.unwrap_or(0),
                first,
                last,
            });
        }
        // A kept tail starts with an entry whose predecessor is released:
        // it anchors the chain, which must then pass through the
        // snapshot's chain hash at the snapshot's index (checked below).
        let anchored = snapshot_index.is_some_and(|index| first <= index);
        // Records up to here were applied (the snapshot covers them, or the
        // newest recovered clean mark names them), so they were flushed
        // before they were applied and never rewritten since: their
        // checksummed chain hashes are taken as stored (module doc).
        let trusted = snapshot_index
            .unwrap_or(0)
            .max(store.recovered_mark().unwrap_or(0))
            .min(last);
        let mut chain = Vec::with_capacity((last + 1 - first) as usize);
        let mut confs = Vec::new();
        let mut cache = VecDeque::new();
        let mut cache_bytes = 0;
        let mut next = first;
        while next <= last {
            let records = store.entries(next, last + 1, 1024 * 1024)?;
            if records.is_empty() {
                return Err(StoreError::OutOfRange {
                    index: next,
                    first,
                    last,
                });
            }
            for record in records {
                // The first entry chains onto the snapshot (or genesis).
                let anchor = anchored && chain.is_empty();
                let prev = chain.last().copied().unwrap_or(base_hash);
                if !anchor && record.index > trusted && !chain_holds(&prev, &record) {
                    return Err(broken_chain(record.index));
                }
                next = record.index + 1;
                chain.push(record.chain_hash);
                if record.kind == EntryKind::ConfChange.byte() {
                    // Checksummed and chained, so written as Raft built it:
                    // a configuration that does not decode is a corrupt disk.
                    let conf = ConfEntry::decode(&record.payload).map_err(|_| {
                        StoreError::CorruptRecord {
                            index: record.index,
                            defect: RecordDefect::BadHeader,
                        }
                    })?;
                    confs.push((record.index, conf.conf_state));
                }
                if let Ok(entry) = entry_of(record) {
                    cache_bytes += entry.encoded_len();
                    cache.push_back(entry);
                    while cache_bytes > ENTRY_CACHE_BYTES {
                        let old = cache.pop_front().expect("over budget means non-empty");
                        cache_bytes -= old.encoded_len();
                    }
                }
            }
        }
        if let (true, Some(s)) = (anchored, &snapshot) {
            let index = s.metadata.index;
            if chain.get((index - first) as usize) != Some(&s.metadata.chain_hash) {
                return Err(broken_chain(index));
            }
        }
        Ok(DiskLog {
            store: RefCell::new(store),
            boot: ConfState::with_voters(voters),
            confs,
            chain,
            cache,
            cache_bytes,
            snapshot,
            bytes_written: 0,
            flushes: 0,
            commit: 0,
        })
    }

    /// Gives the store back.
    pub fn into_store(self) -> Store<D> {
        self.store.into_inner()
    }

    /// This boot's number, unique across restarts of this disk
    /// ([`Store::boot_generation`]): persisted, strictly increasing.
    pub fn boot_generation(&self) -> u64 {
        self.store.borrow().boot_generation()
    }

    /// The device, mutably: for fault injection in tests (power cuts
    /// inside [`DiskLog::persist`]). Writing to it breaks the log.
    pub fn device_mut(&mut self) -> &mut D {
        self.store.get_mut().device_mut()
    }

    /// The store (status, metrics).
    pub fn store(&self) -> core::cell::Ref<'_, Store<D>> {
        self.store.borrow()
    }

    /// Sets the clean mark stamped on every record written from now on
    /// (module doc).
    pub fn set_clean_mark(&mut self, mark: u64) {
        self.store.get_mut().set_mark(mark);
    }

    /// The newest clean mark the open recovered (module doc), if any.
    pub fn recovered_clean_mark(&self) -> Option<u64> {
        self.store.borrow().recovered_mark()
    }

    /// Index of the newest snapshot (0: none).
    pub fn snapshot_index(&self) -> u64 {
        self.snapshot.as_ref().map_or(0, |s| s.metadata.index)
    }

    /// Stores `data` (the application's state after applying `index`) as
    /// the snapshot at `index` with opaque metadata `app`, then releases
    /// the log up to `index - keep`: the `keep` entries before the
    /// snapshot stay, so a follower a little behind is caught up with
    /// entries rather than the whole snapshot (etcd keeps 5,000 behind its
    /// 10,000-entry snapshots for the same reason). Durable on return.
    /// `index` must be in the log and applied by the caller.
    pub fn compact(
        &mut self,
        index: u64,
        keep: u64,
        data: Vec<u8>,
        app: Vec<u8>,
    ) -> Result<(), PersistError> {
        let metadata = SnapshotMetadata {
            index,
            term: Storage::term(self, index).map_err(|_| out_of_log(self, index))?,
            chain_hash: self
                .chain_hash(index)
                .map_err(|_| out_of_log(self, index))?,
            conf_state: ConfState::default(),
            conf_index: 0,
        };
        let (conf_state, conf_index) = self.conf_at(index);
        let metadata = SnapshotMetadata {
            conf_state,
            conf_index,
            ..metadata
        };
        let snapshot = Snapshot::new(metadata, data);
        let meta = store_meta(&snapshot, app);
        let store = self.store.get_mut();
        store
            .write_snapshot(&meta, &snapshot.data)
            .map_err(PersistError)?;
        let release = index.saturating_sub(keep);
        if release >= store.first_index() {
            store.compact_to(release).map_err(PersistError)?;
        }
        let first_kept = store.first_index();
        let drop = self.chain.len() - (store.last_index() + 1 - first_kept) as usize;
        self.chain.drain(..drop);
        self.confs.retain(|(at, _)| *at >= first_kept);
        while self.cache.front().is_some_and(|e| e.index < first_kept) {
            let gone = self.cache.pop_front().expect("checked non-empty");
            self.cache_bytes -= gone.encoded_len();
        }
        self.snapshot = Some(snapshot);
        Ok(())
    }

    /// Makes a Ready's log changes and hard state durable: a received
    /// snapshot first (the log restarts after it), then truncate, append,
    /// hard state, one flush. Call before sending the Ready's messages.
    pub fn persist(&mut self, ready: &Ready) -> Result<(), PersistError> {
        if let Some(snapshot) = &ready.snapshot {
            let meta = store_meta(snapshot, Vec::new());
            self.store
                .get_mut()
                .install_snapshot(&meta, &snapshot.data)
                .map_err(PersistError)?;
            self.chain.clear();
            self.confs.clear();
            self.cache.clear();
            self.cache_bytes = 0;
            self.snapshot = Some(snapshot.clone());
        }
        let store = self.store.get_mut();
        // Term and vote as last written (commit-only writes keep them).
        let vote_changed = ready.hard_state.is_some_and(|hs| {
            let durable = store.hard_state();
            hs.term != durable.term || hs.vote != durable.vote
        });
        if let Some(from) = ready.truncate_from {
            if from <= store.last_index() {
                store.truncate_from(from).map_err(PersistError)?;
                let keep = (from - store.first_index()) as usize;
                self.chain.truncate(keep);
                self.confs.retain(|(at, _)| *at < from);
                while self.cache.back().is_some_and(|e| e.index >= from) {
                    let gone = self.cache.pop_back().expect("checked non-empty");
                    self.cache_bytes -= gone.encoded_len();
                }
            }
        }
        // Every entry already in the store is durable (each append below is
        // flushed before `persist` returns): the slot's commit may cover
        // them, never this Ready's own entries (see the module doc).
        let durable_last = store.last_index();
        if !ready.entries.is_empty() {
            let records: Vec<Record> = ready.entries.iter().map(record_of).collect();
            store.append(&records).map_err(PersistError)?;
            for entry in &ready.entries {
                if entry.kind == EntryKind::ConfChange {
                    // Raft built or validated it (codec) before handing it over.
                    let conf = ConfEntry::decode(&entry.data)
                        .expect("raft hands over only valid configuration entries");
                    self.confs.push((entry.index, conf.conf_state));
                }
                self.bytes_written += entry.encoded_len() as u64;
                self.chain.push(entry.chain_hash);
                self.cache_bytes += entry.encoded_len();
                self.cache.push_back(entry.clone());
            }
            while self.cache_bytes > ENTRY_CACHE_BYTES {
                let old = self.cache.pop_front().expect("over budget means non-empty");
                self.cache_bytes -= old.encoded_len();
            }
        }
        if let Some(hs) = ready.hard_state {
            self.commit = self.commit.max(hs.commit);
            // A hard state whose only change is the commit index is not
            // written at all (etcd's `MustSync`, one step further): a
            // commit index lost in a crash is learnt again from the leader,
            // and nothing this node says depends on it having been
            // durable. It is written with the next slot (a new term or
            // vote, a truncation, `close_witness`).
            if vote_changed {
                store
                    .set_hard_state(HardState {
                        commit: self.commit.min(durable_last),
                        ..hs
                    })
                    .map_err(PersistError)?;
            }
        }
        // A flush is owed for new entries, a truncation, or a new term or
        // vote.
        if ready.truncate_from.is_some() || !ready.entries.is_empty() || vote_changed {
            store.sync().map_err(PersistError)?;
            self.flushes += 1;
        }
        Ok(())
    }

    /// Whether flushed records exist that nothing durable written after
    /// them witnesses yet (see the module doc).
    pub fn witness_pending(&self) -> bool {
        self.store.borrow().witness_pending()
    }

    /// Makes the WAL's flushed end witnessed: writes the hard state as it
    /// is (its slot records the flushed offset) and flushes. Returns
    /// whether it had anything to do. Call when the log is quiet, off the
    /// commit path.
    pub fn close_witness(&mut self) -> Result<bool, PersistError> {
        let store = self.store.get_mut();
        if !store.witness_pending() {
            return Ok(false);
        }
        // Every record is flushed (each append is): the commit may cover
        // the whole log.
        let hard_state = HardState {
            commit: self.commit.min(store.last_index()),
            ..store.hard_state()
        };
        store.set_hard_state(hard_state).map_err(PersistError)?;
        store.sync().map_err(PersistError)?;
        self.flushes += 1;
        Ok(true)
    }

    /// The configuration in effect at held `index` and the index of the
    /// entry that set it: the newest configuration entry at or before
    /// `index`, else the snapshot's, else the boot configuration (index 0).
    pub fn conf_at(&self, index: u64) -> (ConfState, u64) {
        if let Some((at, conf)) = self.confs.iter().rev().find(|(at, _)| *at <= index) {
            return (conf.clone(), *at);
        }
        match &self.snapshot {
            Some(s) => (s.metadata.conf_state.clone(), s.metadata.conf_index),
            None => (self.boot.clone(), 0),
        }
    }

    /// Where `index` sits among the entries the store holds (which may
    /// start before the snapshot: the kept tail).
    fn position(&self, index: u64) -> Result<usize, StorageError> {
        let first = self.store.borrow().first_index();
        if index < first {
            return Err(StorageError::Compacted);
        }
        if index > self.last_index() {
            return Err(StorageError::Unavailable);
        }
        Ok((index - first) as usize)
    }
}

impl<D: BlockDevice> Storage for DiskLog<D> {
    fn initial_state(&self) -> (HardState, ConfState) {
        let store = self.store.borrow();
        let hs = store.hard_state();
        (
            HardState {
                // A slot that reached the disk before its entries (an older
                // build; the open report prints a WARNING): Raft must not
                // start with a commit beyond its log.
                commit: hs.commit.min(store.last_index()),
                ..hs
            },
            self.snapshot
                .as_ref()
                .map_or_else(|| self.boot.clone(), |s| s.metadata.conf_state.clone()),
        )
    }

    /// The store's first entry, or the one after it when the store still
    /// holds entries the snapshot covers (the kept tail): then that first
    /// entry is the boundary whose term and chain hash Raft may ask for,
    /// as it asks for the snapshot's when nothing before it is kept.
    fn first_index(&self) -> u64 {
        let held = self.store.borrow().first_index();
        match &self.snapshot {
            Some(s) if s.metadata.index >= held && held <= self.last_index() => held + 1,
            _ => held,
        }
    }

    fn last_index(&self) -> u64 {
        self.store.borrow().last_index()
    }

    fn term(&self, index: u64) -> Result<u64, StorageError> {
        let held = self.position(index);
        if held.is_err() && index + 1 == self.first_index() {
            return Ok(self.snapshot.as_ref().map_or(0, |s| s.metadata.term));
        }
        held?;
        self.store
            .borrow()
            .term(index)
            .map_err(|_| StorageError::Io)
    }

    fn chain_hash(&self, index: u64) -> Result<LogChainHash, StorageError> {
        let held = self.position(index);
        if held.is_err() && index + 1 == self.first_index() {
            return Ok(self
                .snapshot
                .as_ref()
                .map_or(GENESIS_CHAIN_HASH, |s| s.metadata.chain_hash));
        }
        Ok(self.chain[held?])
    }

    fn entries(&self, lo: u64, hi: u64, max_bytes: usize) -> Result<Vec<Entry>, StorageError> {
        if lo >= hi {
            return Ok(Vec::new());
        }
        self.position(lo)?;
        self.position(hi - 1)?;
        let mut out = Vec::new();
        let mut bytes = 0;
        if let Some(front) = self.cache.front().filter(|e| e.index <= lo) {
            let skip = (lo - front.index) as usize;
            for entry in self.cache.iter().skip(skip).take((hi - lo) as usize) {
                bytes += entry.encoded_len();
                if !out.is_empty() && bytes > max_bytes {
                    break;
                }
                out.push(entry.clone());
            }
            return Ok(out);
        }
        let records = self
            .store
            .borrow_mut()
            .entries(lo, hi, max_bytes as u64)
            .map_err(|_| StorageError::Io)?;
        for record in records {
            // The table's hash was verified at open or came from Raft; a
            // record that passes its checksum and carries that same
            // SHA-256 is that entry (module doc: no second hash).
            let at = self.position(record.index)?;
            if self.chain[at] != record.chain_hash {
                return Err(StorageError::Io);
            }
            out.push(entry_of(record)?);
        }
        if out.is_empty() {
            return Err(StorageError::Io);
        }
        Ok(out)
    }

    fn snapshot(&self) -> Option<&Snapshot> {
        self.snapshot.as_ref()
    }

    /// From the configuration entries tracked since open (module doc):
    /// one read, not a backward scan of the log.
    fn newest_conf_entry(&self, hi: u64) -> Result<Option<Entry>, StorageError> {
        let first = self.first_index();
        match self
            .confs
            .iter()
            .rev()
            .find(|(at, _)| *at < hi && *at >= first)
        {
            Some(&(at, _)) => Ok(self.entries(at, at + 1, 0)?.pop()),
            None => Ok(None),
        }
    }
}

/// The store's metadata for a Raft snapshot.
fn store_meta(snapshot: &Snapshot, app: Vec<u8>) -> SnapshotMeta {
    let m = &snapshot.metadata;
    SnapshotMeta {
        index: m.index,
        term: m.term,
        chain_hash: m.chain_hash,
        voters: m.conf_state.voters.clone(),
        learners: m.conf_state.learners.clone(),
        conf_index: m.conf_index,
        app,
        data_len: snapshot.data.len() as u64,
        data_hash: snapshot.data_hash,
    }
}

fn out_of_log<D: BlockDevice>(log: &DiskLog<D>, index: u64) -> PersistError {
    PersistError(StoreError::OutOfRange {
        index,
        first: log.first_index(),
        last: log.last_index(),
    })
}
