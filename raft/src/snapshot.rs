//! InstallSnapshot (Raft §7): the leader's switch from probe/replicate to
//! snapshot for a follower that needs a compacted entry, and the follower's
//! verified, resumable receipt of content-addressed chunks, so a follower
//! fetches only the chunks it lacks.
//!
//! ## Chunks: content-defined, named by SHA-256
//! Snapshot data is cut into chunks by content-defined chunking
//! ([`ContentChunks`]): a gear rolling hash (`h = (h << 1) + GEAR[byte]`,
//! whose top bits depend on the last 64 bytes only) declares a boundary
//! where its top `log2(max/4)` bits are zero, no earlier than `min = max/2`
//! bytes into a chunk and no later than `max` bytes (on average about
//! `3/4 max`: a chunk costs 36 bytes of manifest, so chunks stay large),
//! with `max` =
//! `Config::snapshot_chunk_bytes` so one chunk fits one message. Because
//! boundaries follow the content, a change early in the data moves the
//! boundaries only up to the next boundary after the change; every later
//! chunk is cut (and named) exactly as before. A chunk's name is its
//! SHA-256. The cut is deterministic and depends on `max` alone, so any two
//! nodes cut the same bytes the same way.
//!
//! The **manifest** is the ordered list of `(name, len)` of the snapshot's
//! chunks; the data is their concatenation. Its hash
//! ([`manifest_hash`]) covers `max` and every entry.
//!
//! ## Protocol (stop-and-wait, follower-driven)
//! Every InstallSnapshot message identifies the snapshot (`index`, term,
//! chain hash, `total_len`, `total_hash`) and carries one
//! [`SnapshotPart`]: a piece of the manifest (as many entries as fit
//! `snapshot_chunk_bytes`, at least one) or one chunk by position. Every
//! answer says what the follower needs next ([`SnapshotWant`]): the
//! manifest from entry `manifest_next` while it is incomplete, then the
//! chunk at `chunk_next`, the first position it neither holds nor can
//! reuse; or `done`. The leader keeps only that answer per follower and
//! sends exactly the part asked for; a lost part or answer is re-sent on the
//! next heartbeat response, like a probe. Chunks the follower holds are
//! never sent, so a follower holding the previous snapshot fetches only
//! the chunks that changed.
//!
//! ## Leader
//! When the entry before a follower's `next` is compacted, its progress
//! enters [`ProgressState::Snapshot`] for the storage's newest snapshot,
//! asking for the manifest from 0. The leader cuts its snapshot once and
//! caches the manifest (with each chunk's offset) for as long as that is
//! storage's snapshot. If storage compacts again meanwhile, the newer
//! snapshot restarts the transfer. When the follower reports `done`, the
//! progress probes from after the snapshot.
//!
//! ## Follower
//! Manifest pieces are appended only if they start where the held entries
//! end; once complete the manifest must match its hash and its lengths
//! must add up to `total_len`, or it is dropped unanswered (the leader's
//! re-send on the next heartbeat response then finds the follower asking
//! from the start, so a corrupting link costs one attempt per heartbeat,
//! not a tight loop). Then
//! the follower cuts its **own** current snapshot (storage's) with the same
//! `max`, copies every chunk whose name the manifest lists into place
//! (reused), and fills positions repeating an earlier name from that
//! earlier position (reused); the rest it asks for one at a time (fetched).
//! A chunk is accepted only if its SHA-256 equals the manifest's name at
//! its position. Once every position is filled and the whole matches
//! `total_hash`, the log switches to the snapshot (committed and applied
//! move to its index) and the next [`crate::Ready`] carries it: the caller
//! persists it and restores the application from it first. Nothing reaches
//! storage before that, so a crash mid-install leaves the follower on its
//! old state (what it had received is lost with the process; its own
//! snapshot is still reused after the restart).
//!
//! A part of a different snapshot (another leader's, a newer one) abandons
//! the partial install, but its filled chunks are carried over and reused
//! like the follower's own snapshot once the new manifest is complete (a
//! leader that compacts again mid-transfer costs a new manifest, not the
//! chunks already sent). A new leader with the same snapshot starts at the
//! manifest's start; the follower's answer says it holds the manifest and
//! where its first missing chunk is, so the transfer resumes there.
//!
//! ## Bounds
//! * Assembly buffer: `total_len <= Config::max_snapshot_bytes` (a larger
//!   snapshot is refused), allocated once the manifest is verified; plus,
//!   until then, at most one abandoned install's buffer (carried chunks),
//!   so at most `2 * max_snapshot_bytes` of snapshot data.
//! * Manifest: `chunk_count <= total_len` (codec) and, once verified,
//!   `sum(len) == total_len` with `1 <= len <= max`; per position the
//!   follower keeps 36 bytes of entry, 8 of offset, 1 of fill flag and at
//!   most one name-index node, so the manifest costs under
//!   `chunk_count * 100` bytes besides the data. Per message at most
//!   [`crate::codec::MAX_MANIFEST_ENTRIES_PER_MESSAGE`] entries.
//! * Cutting the own snapshot streams over storage's data: one digest at a
//!   time, nothing is retained except copied chunks (inside the buffer).
//! * Leader: one cached manifest (of storage's current snapshot), one
//!   [`SnapshotWant`] per follower, one part in flight per follower.
//!
//! ## Counters
//! [`Raft::snapshot_chunk_stats`] counts, on the follower, chunks (and
//! bytes) fetched from the leader and reused from its own snapshot or an
//! earlier position, plus manifests and whole snapshots that failed their
//! hash.

use crate::entry::LogChainHash;
use crate::message::{ChunkRef, MessageBody, SnapshotPart};
use crate::progress::ProgressState;
use crate::raft::Raft;
use crate::storage::{ConfState, Snapshot, SnapshotMetadata, Storage};
use crate::NodeId;
use alloc::collections::BTreeMap;
use alloc::vec;
use alloc::vec::Vec;
use sha2::{Digest, Sha256};

/// A SHA-256 digest of snapshot bytes: a chunk's name, a manifest's hash,
/// a whole snapshot's hash. Not a link of the log chain
/// ([`crate::LogChainHash`]).
pub type SnapshotDigest = [u8; 32];

/// SHA-256 of snapshot bytes (chunk names and the whole).
pub fn snapshot_digest(bytes: &[u8]) -> SnapshotDigest {
    Sha256::digest(bytes).into()
}

/// Encoded bytes of one manifest entry (name and length).
const MANIFEST_ENTRY_BYTES: usize = 32 + 4;

/// Gear table: 256 pseudo-random words from SplitMix64 (seed 0), fixed at
/// compile time so every node cuts identically.
const GEAR: [u64; 256] = gear_table();

const fn gear_table() -> [u64; 256] {
    let mut table = [0u64; 256];
    let mut rng = continuum_base::SplitMix64::new(0);
    let mut i = 0;
    while i < 256 {
        table[i] = rng.next_u64();
        i += 1;
    }
    table
}

/// Content-defined chunks of `data` for chunks of at most `max` bytes
/// (see the module doc): an iterator over consecutive slices covering
/// `data`, each `1..=max` bytes long, all but the last at least `max / 2`.
#[derive(Clone, Debug)]
pub struct ContentChunks<'a> {
    rest: &'a [u8],
    min: usize,
    max: usize,
    mask: u64,
}

impl<'a> ContentChunks<'a> {
    /// Chunks of `data` of at most `max` bytes (`max` 0 is taken as 1).
    pub fn new(data: &'a [u8], max: usize) -> ContentChunks<'a> {
        let max = max.max(1);
        let min = (max / 2).max(1);
        // Average extra length past `min` is 2^bits, with 2^bits <= max/4.
        let bits = (max / 4).max(1).ilog2();
        let mask = if bits == 0 { 0 } else { !0u64 << (64 - bits) };
        ContentChunks {
            rest: data,
            min,
            max,
            mask,
        }
    }

    fn next_len(&self) -> usize {
        let n = self.rest.len().min(self.max);
        if n <= self.min {
            return n;
        }
        let mut h = 0u64;
        for (i, &b) in self.rest[..n].iter().enumerate() {
            h = (h << 1).wrapping_add(GEAR[b as usize]);
            if i + 1 >= self.min && h & self.mask == 0 {
                return i + 1;
            }
        }
        n
    }
}

impl<'a> Iterator for ContentChunks<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        if self.rest.is_empty() {
            return None;
        }
        let (chunk, rest) = self.rest.split_at(self.next_len());
        self.rest = rest;
        Some(chunk)
    }
}

/// The manifest of `data` cut with chunks of at most `max_chunk` bytes.
pub fn manifest_of(data: &[u8], max_chunk: usize) -> Vec<ChunkRef> {
    ContentChunks::new(data, max_chunk)
        .map(|c| ChunkRef {
            name: snapshot_digest(c),
            len: c.len() as u32,
        })
        .collect()
}

/// SHA-256 over `max_chunk:u32`, the entry count `u32` and every entry's
/// `name len:u32` (big-endian), in order.
pub fn manifest_hash(max_chunk: u32, entries: &[ChunkRef]) -> SnapshotDigest {
    let mut h = Sha256::new();
    h.update(max_chunk.to_be_bytes());
    h.update((entries.len() as u32).to_be_bytes());
    for e in entries {
        h.update(e.name);
        h.update(e.len.to_be_bytes());
    }
    h.finalize().into()
}

/// Follower-side chunk counters, cumulative since start.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SnapshotChunkStats {
    /// Chunks received from a leader and accepted.
    pub chunks_fetched: u64,
    /// Bytes of those chunks.
    pub bytes_fetched: u64,
    /// Chunk positions filled without fetching: from the follower's own
    /// snapshot or from an earlier position with the same name.
    pub chunks_reused: u64,
    /// Bytes of those chunks.
    pub bytes_reused: u64,
    /// Complete manifests refused (hash or lengths wrong), asked for again.
    pub manifests_refused: u64,
    /// Assembled snapshots refused (whole hash wrong), started over.
    pub snapshots_refused: u64,
}

/// What a follower asked for last (the leader's [`crate::Progress`] keeps
/// one per follower in snapshot state).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SnapshotWant {
    /// Manifest entries the follower holds.
    pub manifest_next: u32,
    /// First chunk position it lacks (meaningful once the manifest is held).
    pub chunk_next: u32,
}

/// InstallSnapshot state kept in [`Raft`].
#[derive(Clone, Debug, Default)]
pub(crate) struct SnapshotTransfer {
    /// Follower: the snapshot being received.
    incoming: Option<IncomingSnapshot>,
    /// Leader: manifest of storage's snapshot, cut once.
    outgoing: Option<OutgoingManifest>,
    stats: SnapshotChunkStats,
}

/// Leader's manifest of one snapshot.
#[derive(Clone, Debug)]
struct OutgoingManifest {
    index: u64,
    data_hash: SnapshotDigest,
    max_chunk: u32,
    entries: Vec<ChunkRef>,
    /// Offset of each entry's chunk in the data.
    offsets: Vec<u64>,
    hash: SnapshotDigest,
}

impl OutgoingManifest {
    fn new(snapshot: &Snapshot, max_chunk: usize) -> OutgoingManifest {
        let entries = manifest_of(&snapshot.data, max_chunk);
        let offsets = offsets_of(&entries);
        let max_chunk = max_chunk as u32;
        OutgoingManifest {
            index: snapshot.metadata.index,
            data_hash: snapshot.data_hash,
            max_chunk,
            hash: manifest_hash(max_chunk, &entries),
            entries,
            offsets,
        }
    }
}

fn offsets_of(entries: &[ChunkRef]) -> Vec<u64> {
    let mut at = 0u64;
    entries
        .iter()
        .map(|e| {
            let offset = at;
            at += u64::from(e.len);
            offset
        })
        .collect()
}

/// Manifest header as announced by the leader.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct ManifestHeader {
    max_chunk: u32,
    chunk_count: u32,
    hash: SnapshotDigest,
}

/// A snapshot being received, held in memory until complete and verified.
#[derive(Clone, Debug)]
struct IncomingSnapshot {
    metadata: SnapshotMetadata,
    total_len: u64,
    total_hash: SnapshotDigest,
    header: Option<ManifestHeader>,
    /// Manifest entries received so far (in order).
    entries: Vec<ChunkRef>,
    /// Set once the manifest is complete and verified.
    assembly: Option<Assembly>,
    /// Chunks held for an abandoned install, reused once this manifest is
    /// complete, then dropped.
    carried: Option<Carried>,
}

/// The filled chunks of an abandoned install.
#[derive(Clone, Debug)]
struct Carried {
    entries: Vec<ChunkRef>,
    assembly: Assembly,
}

impl Carried {
    /// The chunks it holds.
    fn chunks(&self) -> impl Iterator<Item = (&SnapshotDigest, &[u8])> {
        let a = &self.assembly;
        self.entries
            .iter()
            .enumerate()
            .filter(|&(p, _)| a.filled[p])
            .map(|(p, e)| {
                let at = a.offsets[p] as usize;
                (&e.name, &a.data[at..at + e.len as usize])
            })
    }
}

/// The data being assembled from reused and fetched chunks.
#[derive(Clone, Debug)]
struct Assembly {
    offsets: Vec<u64>,
    /// Name -> first position carrying it.
    first_position: BTreeMap<SnapshotDigest, u32>,
    filled: Vec<bool>,
    /// Every position below it is filled.
    cursor: u32,
    data: Vec<u8>,
}

impl IncomingSnapshot {
    fn want(&self) -> SnapshotWant {
        SnapshotWant {
            manifest_next: self.entries.len() as u32,
            chunk_next: self.assembly.as_ref().map_or(0, |a| a.cursor),
        }
    }

    /// What an abandoned install leaves for the next: its filled chunks.
    fn into_carried(self) -> Option<Carried> {
        match self.assembly {
            Some(assembly) => Some(Carried {
                entries: self.entries,
                assembly,
            }),
            None => self.carried,
        }
    }

    /// Drops the manifest; chunks already filled are carried over.
    fn reset_manifest(&mut self) {
        self.header = None;
        let entries = core::mem::take(&mut self.entries);
        if let Some(assembly) = self.assembly.take() {
            self.carried = Some(Carried { entries, assembly });
        }
    }
}

impl Assembly {
    /// Copies `bytes` (named `name`) into its first position, if the
    /// manifest lists it there unfilled; returns whether it did.
    fn fill(&mut self, entries: &[ChunkRef], name: &SnapshotDigest, bytes: &[u8]) -> bool {
        let Some(&p) = self.first_position.get(name) else {
            return false;
        };
        let p = p as usize;
        if self.filled[p] || entries[p].len as usize != bytes.len() {
            return false;
        }
        let at = self.offsets[p] as usize;
        self.data[at..at + bytes.len()].copy_from_slice(bytes);
        self.filled[p] = true;
        true
    }

    /// Moves the cursor past filled positions, filling repeats of earlier
    /// names from their first position; returns the positions reused.
    fn advance(&mut self, entries: &[ChunkRef], stats: &mut SnapshotChunkStats) {
        while (self.cursor as usize) < entries.len() {
            let p = self.cursor as usize;
            if !self.filled[p] {
                let first = self.first_position[&entries[p].name] as usize;
                if first >= p {
                    break;
                }
                // Below the cursor, so filled.
                let len = entries[p].len as usize;
                let (from, to) = (self.offsets[first] as usize, self.offsets[p] as usize);
                self.data.copy_within(from..from + len, to);
                self.filled[p] = true;
                stats.chunks_reused += 1;
                stats.bytes_reused += len as u64;
            }
            self.cursor += 1;
        }
    }

    fn complete(&self, entries: &[ChunkRef]) -> bool {
        self.cursor as usize == entries.len()
    }
}

/// One InstallSnapshot message as received.
pub(crate) struct Incoming {
    pub index: u64,
    pub snapshot_term: u64,
    pub chain_hash: LogChainHash,
    pub conf_state: ConfState,
    pub conf_index: u64,
    pub total_len: u64,
    pub total_hash: SnapshotDigest,
    pub part: SnapshotPart,
}

impl<S: Storage> Raft<S> {
    /// Follower-side chunk counters (see the module doc).
    pub fn snapshot_chunk_stats(&self) -> SnapshotChunkStats {
        self.snapshot_transfer.stats
    }

    /// Leader: `to` needs an entry the log no longer holds; switch it to
    /// snapshot state and send the manifest's first piece.
    pub(crate) fn start_snapshot(&mut self, to: NodeId) -> bool {
        let Some(index) = self.log.storage.snapshot().map(|s| s.metadata.index) else {
            panic!(
                "raft: follower {to} needs a compacted entry but storage has no snapshot \
                 (first index {}): storage broke its contract",
                self.log.first_index()
            )
        };
        if let Some(pr) = self.progress.get_mut(&to) {
            pr.become_snapshot(index);
        }
        self.send_snapshot_chunk(to)
    }

    /// Leader: sends `to` the part it asked for last.
    pub(crate) fn send_snapshot_chunk(&mut self, to: NodeId) -> bool {
        let chunk_bytes = self.config.snapshot_chunk_bytes;
        let Some(snapshot) = self.log.storage.snapshot() else {
            return false;
        };
        let Some(pr) = self.progress.get_mut(&to) else {
            return false;
        };
        if pr.is_paused() {
            return false;
        }
        if pr.snapshot_index != snapshot.metadata.index {
            // Storage compacted again: send the newer snapshot instead.
            pr.become_snapshot(snapshot.metadata.index);
        }
        let cache = &mut self.snapshot_transfer.outgoing;
        let fresh = cache.as_ref().is_some_and(|m| {
            m.index == snapshot.metadata.index
                && m.data_hash == snapshot.data_hash
                && m.max_chunk as usize == chunk_bytes
        });
        if !fresh {
            *cache = Some(OutgoingManifest::new(snapshot, chunk_bytes));
        }
        let manifest = cache.as_ref().expect("set above");
        let count = manifest.entries.len();
        let want = pr.snapshot_want;
        let part = if (want.manifest_next as usize) < count || want.chunk_next as usize >= count {
            // The manifest (also when an answer asks for a chunk past the
            // end: it must have dropped its manifest, start it over).
            let first = if (want.manifest_next as usize) < count {
                want.manifest_next as usize
            } else {
                0
            };
            let per = (chunk_bytes / MANIFEST_ENTRY_BYTES)
                .clamp(1, crate::codec::MAX_MANIFEST_ENTRIES_PER_MESSAGE);
            let end = first.saturating_add(per).min(count);
            SnapshotPart::Manifest {
                max_chunk: manifest.max_chunk,
                chunk_count: count as u32,
                manifest_hash: manifest.hash,
                first: first as u32,
                entries: manifest.entries[first..end].to_vec(),
            }
        } else {
            let p = want.chunk_next as usize;
            let at = manifest.offsets[p] as usize;
            let len = manifest.entries[p].len as usize;
            SnapshotPart::Chunk {
                position: p as u32,
                chunk: snapshot.data[at..at + len].to_vec(),
            }
        };
        pr.sent_append(None);
        let body = MessageBody::InstallSnapshot {
            index: snapshot.metadata.index,
            snapshot_term: snapshot.metadata.term,
            chain_hash: snapshot.metadata.chain_hash,
            conf_state: snapshot.metadata.conf_state.clone(),
            conf_index: snapshot.metadata.conf_index,
            total_len: snapshot.data.len() as u64,
            total_hash: snapshot.data_hash,
            part,
        };
        self.send(to, self.term, body);
        true
    }

    /// Leader: the answer to a part.
    pub(crate) fn handle_install_snapshot_response(
        &mut self,
        from: NodeId,
        index: u64,
        want: SnapshotWant,
        done: bool,
    ) {
        let Some(pr) = self.progress.get_mut(&from) else {
            return;
        };
        pr.recent_active = true;
        if pr.state != ProgressState::Snapshot || pr.snapshot_index != index {
            self.stats.ignored_messages += 1;
            return;
        }
        pr.probe_sent = false;
        if done {
            pr.maybe_update(index);
            pr.become_probe();
            self.send_append(from, true);
        } else {
            pr.snapshot_want = want;
            self.send_snapshot_chunk(from);
        }
    }

    /// Follower: one part from the leader (term already checked).
    pub(crate) fn handle_install_snapshot(&mut self, from: NodeId, m: Incoming) {
        let index = m.index;
        let reply = |raft: &mut Raft<S>, want: SnapshotWant, done: bool| {
            let body = MessageBody::InstallSnapshotResponse {
                index,
                manifest_next: want.manifest_next,
                chunk_next: want.chunk_next,
                done,
            };
            raft.send(from, raft.term, body);
        };
        if m.index <= self.log.committed || self.log.match_term(m.index, m.snapshot_term) {
            // The log already covers it (Raft §7: keep the entries after it).
            // Below our own snapshot point the entry is compacted here too
            // (this node snapshotted past it meanwhile): committed, so it
            // matches by Log Matching; otherwise the hashes must agree.
            let readable = m.index + 1 >= self.log.first_index();
            if readable && self.log.chain_hash(m.index) != m.chain_hash {
                self.stats.chain_hash_mismatches += 1;
                return;
            }
            return reply(self, SnapshotWant::default(), true);
        }
        if m.total_len > self.config.max_snapshot_bytes {
            self.stats.ignored_messages += 1;
            return;
        }
        let same = self.snapshot_transfer.incoming.as_ref().is_some_and(|s| {
            s.metadata.index == m.index
                && s.metadata.term == m.snapshot_term
                && s.metadata.chain_hash == m.chain_hash
                && s.metadata.conf_state == m.conf_state
                && s.metadata.conf_index == m.conf_index
                && s.total_len == m.total_len
                && s.total_hash == m.total_hash
        });
        if !same {
            // A newer snapshot (or another leader's): chunks already held
            // are carried over, as consecutive snapshots share most.
            let carried = self
                .snapshot_transfer
                .incoming
                .take()
                .and_then(IncomingSnapshot::into_carried);
            self.snapshot_transfer.incoming = Some(IncomingSnapshot {
                metadata: SnapshotMetadata {
                    index: m.index,
                    term: m.snapshot_term,
                    chain_hash: m.chain_hash,
                    conf_state: m.conf_state.clone(),
                    conf_index: m.conf_index,
                },
                total_len: m.total_len,
                total_hash: m.total_hash,
                header: None,
                entries: Vec::new(),
                assembly: None,
                carried,
            });
        }
        let stats = &mut self.snapshot_transfer.stats;
        let incoming = self.snapshot_transfer.incoming.as_mut().expect("set above");
        match m.part {
            SnapshotPart::Manifest {
                max_chunk,
                chunk_count,
                manifest_hash,
                first,
                entries,
            } => {
                let header = ManifestHeader {
                    max_chunk,
                    chunk_count,
                    hash: manifest_hash,
                };
                if incoming.header != Some(header) {
                    // Another cut of the same data (another leader's
                    // chunk size): start the manifest over.
                    incoming.reset_manifest();
                    incoming.header = Some(header);
                }
                if incoming.assembly.is_none() && first as usize == incoming.entries.len() {
                    incoming.entries.extend_from_slice(&entries);
                    if incoming.entries.len() == chunk_count as usize {
                        let own = self.log.storage.snapshot().map(|s| s.data.as_slice());
                        if !start_assembly(incoming, own, stats) {
                            // No answer: the leader re-sends on the next
                            // heartbeat response and the follower asks for
                            // the manifest from its start, paced like a
                            // probe rather than in a tight loop.
                            stats.manifests_refused += 1;
                            incoming.reset_manifest();
                            self.stats.ignored_messages += 1;
                            return;
                        }
                    }
                }
            }
            SnapshotPart::Chunk { position, chunk } => {
                let Some(assembly) = incoming.assembly.as_mut() else {
                    // No manifest yet: the answer asks for it.
                    let want = incoming.want();
                    return reply(self, want, false);
                };
                let name = snapshot_digest(&chunk);
                let listed = incoming
                    .entries
                    .get(position as usize)
                    .is_some_and(|e| e.name == name);
                if !listed {
                    self.stats.ignored_messages += 1;
                    return;
                }
                if assembly.fill(&incoming.entries, &name, &chunk) {
                    stats.chunks_fetched += 1;
                    stats.bytes_fetched += chunk.len() as u64;
                }
                assembly.advance(&incoming.entries, stats);
            }
        }
        let complete = incoming
            .assembly
            .as_ref()
            .is_some_and(|a| a.complete(&incoming.entries));
        if !complete {
            let want = incoming.want();
            return reply(self, want, false);
        }
        let incoming = self.snapshot_transfer.incoming.take().expect("set above");
        let data = incoming.assembly.expect("complete").data;
        if snapshot_digest(&data) != incoming.total_hash {
            // Every chunk and the manifest verified but the whole does not:
            // start over.
            // No answer, as for a refused manifest: the next part the
            // leader re-sends finds no install and asks for the manifest.
            self.snapshot_transfer.stats.snapshots_refused += 1;
            self.stats.ignored_messages += 1;
            return;
        }
        self.log.restore(incoming.metadata.clone());
        // The whole log is replaced: the snapshot's configuration holds.
        let (conf, conf_index) = (
            incoming.metadata.conf_state.clone(),
            incoming.metadata.conf_index,
        );
        self.set_conf(conf, conf_index);
        self.pending_snapshot = Some(Snapshot::new(incoming.metadata, data));
        reply(self, SnapshotWant::default(), true);
    }
}

/// Verifies a complete manifest and starts assembling: reuses every chunk
/// of `own` (the follower's current snapshot data) the manifest names.
/// Returns false if the manifest fails its hash or its lengths.
fn start_assembly(
    incoming: &mut IncomingSnapshot,
    own: Option<&[u8]>,
    stats: &mut SnapshotChunkStats,
) -> bool {
    let Some(header) = incoming.header else {
        return false;
    };
    let entries = &incoming.entries;
    let total: u64 = entries.iter().map(|e| u64::from(e.len)).sum();
    if total != incoming.total_len
        || entries
            .iter()
            .any(|e| e.len == 0 || e.len > header.max_chunk)
        || manifest_hash(header.max_chunk, entries) != header.hash
    {
        return false;
    }
    let mut first_position = BTreeMap::new();
    for (p, e) in entries.iter().enumerate() {
        first_position.entry(e.name).or_insert(p as u32);
    }
    let mut assembly = Assembly {
        offsets: offsets_of(entries),
        first_position,
        filled: vec![false; entries.len()],
        cursor: 0,
        data: vec![0; incoming.total_len as usize],
    };
    if let Some(own) = own {
        for chunk in ContentChunks::new(own, header.max_chunk as usize) {
            if assembly.fill(entries, &snapshot_digest(chunk), chunk) {
                stats.chunks_reused += 1;
                stats.bytes_reused += chunk.len() as u64;
            }
        }
    }
    if let Some(carried) = incoming.carried.take() {
        for (name, chunk) in carried.chunks() {
            if assembly.fill(entries, name, chunk) {
                stats.chunks_reused += 1;
                stats.bytes_reused += chunk.len() as u64;
            }
        }
    }
    assembly.advance(entries, stats);
    incoming.assembly = Some(assembly);
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::collections::BTreeSet;
    use continuum_base::SplitMix64;

    fn random(len: usize, seed: u64) -> Vec<u8> {
        let mut rng = SplitMix64::new(seed);
        (0..len).map(|_| rng.next_u64() as u8).collect()
    }

    #[test]
    fn chunks_cover_the_data_within_their_bounds() {
        for max in [1usize, 2, 3, 16, 64, 1024, 4096] {
            let data = random(50_000, max as u64);
            let chunks: Vec<&[u8]> = ContentChunks::new(&data, max).collect();
            assert_eq!(chunks.concat(), data, "max {max}");
            let min = (max / 2).max(1);
            for (i, c) in chunks.iter().enumerate() {
                assert!(!c.is_empty() && c.len() <= max, "max {max}: {}", c.len());
                if i + 1 < chunks.len() {
                    assert!(c.len() >= min, "max {max}: {}", c.len());
                }
            }
        }
        assert_eq!(ContentChunks::new(&[], 1024).count(), 0);
    }

    #[test]
    fn the_cut_is_content_defined_not_fixed_size() {
        let data = random(1 << 20, 1);
        let lens: BTreeSet<usize> = ContentChunks::new(&data, 1024).map(<[u8]>::len).collect();
        assert!(lens.len() > 100, "{} distinct lengths", lens.len());
        let count = ContentChunks::new(&data, 1024).count();
        // Between min (512) and max (1024), about 3/4 max.
        let average = data.len() / count;
        assert!((650..900).contains(&average), "average {average}");
    }

    #[test]
    fn an_insert_near_the_start_of_1_mib_leaves_over_90_percent_of_chunks_shared() {
        let data = random(1 << 20, 2);
        let mut edited = data.clone();
        let inserted = random(37, 3);
        edited.splice(1000..1000, inserted);
        let before: BTreeSet<SnapshotDigest> =
            manifest_of(&data, 1024).iter().map(|e| e.name).collect();
        let after = manifest_of(&edited, 1024);
        let shared = after.iter().filter(|e| before.contains(&e.name)).count();
        assert!(
            shared * 100 > after.len() * 90,
            "{shared} of {} chunks shared",
            after.len()
        );
        // Fixed-size cutting would share none after the insert point.
        let fixed: BTreeSet<&[u8]> = data.chunks(1024).collect();
        let fixed_shared = edited.chunks(1024).filter(|c| fixed.contains(c)).count();
        assert!(fixed_shared <= 1, "{fixed_shared}");
    }

    #[test]
    fn the_manifest_hash_covers_names_lengths_order_and_max() {
        let data = random(10_000, 4);
        let m = manifest_of(&data, 256);
        let h = manifest_hash(256, &m);
        assert_eq!(h, manifest_hash(256, &manifest_of(&data, 256)));
        assert_ne!(h, manifest_hash(255, &m));
        let mut swapped = m.clone();
        swapped.swap(0, 1);
        assert_ne!(h, manifest_hash(256, &swapped));
        let mut longer = m.clone();
        longer[0].len += 1;
        assert_ne!(h, manifest_hash(256, &longer));
        assert_ne!(h, manifest_hash(256, &m[..m.len() - 1]));
    }
}
