//! InstallSnapshot (Raft §7): the leader's switch from probe/replicate to
//! snapshot for a follower that needs a compacted entry, and the follower's
//! chunked, verified, resumable receipt.
//!
//! ## Leader
//! When the entry before a follower's `next` is compacted, its progress
//! enters [`ProgressState::Snapshot`] for the storage's newest snapshot and
//! the leader sends one chunk of `Config::snapshot_chunk_bytes` at a time
//! (stop-and-wait: the next chunk follows the answer; a lost chunk or
//! answer is re-sent on the next heartbeat response, like a probe). Each
//! answer carries the offset the follower holds, so the leader resumes from
//! there. If storage compacts again meanwhile, the newer snapshot restarts
//! the transfer. When the follower reports `done`, the progress probes from
//! after the snapshot.
//!
//! ## Follower
//! Chunks are verified (SHA-256 of the chunk) and appended in memory only
//! if they start exactly where the held data ends; a chunk of a different
//! snapshot (another leader, a newer snapshot) discards the partial data.
//! A new leader starts at offset 0; the follower answers with what it holds
//! and the leader resumes there. Once the data is complete and its SHA-256
//! equals `total_hash`, the log switches to the snapshot (committed and
//! applied move to its index) and the next [`crate::Ready`] carries it: the
//! caller persists it and restores the application from it first. Nothing
//! reaches storage before that, so a crash mid-install leaves the follower
//! on its old state.

use crate::entry::ChainHash;
use crate::message::MessageBody;
use crate::progress::ProgressState;
use crate::raft::Raft;
use crate::storage::{ConfState, Snapshot, SnapshotMetadata, Storage};
use crate::NodeId;
use alloc::vec::Vec;
use sha2::{Digest, Sha256};

/// SHA-256 of snapshot bytes (chunks and whole).
pub fn snapshot_digest(bytes: &[u8]) -> ChainHash {
    Sha256::digest(bytes).into()
}

/// A snapshot being received, held in memory until complete and verified.
#[derive(Clone, Debug)]
pub(crate) struct IncomingSnapshot {
    metadata: SnapshotMetadata,
    total_len: u64,
    total_hash: ChainHash,
    data: Vec<u8>,
}

/// One InstallSnapshot chunk as received.
pub(crate) struct Chunk {
    pub index: u64,
    pub snapshot_term: u64,
    pub chain_hash: ChainHash,
    pub conf_state: ConfState,
    pub conf_index: u64,
    pub total_len: u64,
    pub total_hash: ChainHash,
    pub offset: u64,
    pub chunk_hash: ChainHash,
    pub chunk: Vec<u8>,
}

impl<S: Storage> Raft<S> {
    /// Leader: `to` needs an entry the log no longer holds; switch it to
    /// snapshot state and send the first chunk.
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

    /// Leader: sends `to` the chunk at its snapshot offset.
    pub(crate) fn send_snapshot_chunk(&mut self, to: NodeId) -> bool {
        let chunk_bytes = self.config.snapshot_chunk_bytes as u64;
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
        let total_len = snapshot.data.len() as u64;
        let offset = pr.snapshot_offset.min(total_len);
        let end = offset.saturating_add(chunk_bytes).min(total_len);
        let chunk = snapshot.data[offset as usize..end as usize].to_vec();
        pr.sent_append(None);
        let body = MessageBody::InstallSnapshot {
            index: snapshot.metadata.index,
            snapshot_term: snapshot.metadata.term,
            chain_hash: snapshot.metadata.chain_hash,
            conf_state: snapshot.metadata.conf_state.clone(),
            conf_index: snapshot.metadata.conf_index,
            total_len,
            total_hash: snapshot.data_hash,
            offset,
            chunk_hash: snapshot_digest(&chunk),
            chunk,
        };
        self.send(to, self.term, body);
        true
    }

    /// Leader: the answer to a chunk.
    pub(crate) fn handle_install_snapshot_response(
        &mut self,
        from: NodeId,
        index: u64,
        next_offset: u64,
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
            pr.snapshot_offset = next_offset;
            self.send_snapshot_chunk(from);
        }
    }

    /// Follower: one chunk from the leader (term already checked).
    pub(crate) fn handle_install_snapshot(&mut self, from: NodeId, c: Chunk) {
        let reply = |raft: &mut Raft<S>, next_offset: u64, done: bool| {
            let body = MessageBody::InstallSnapshotResponse {
                index: c.index,
                next_offset,
                done,
            };
            raft.send(from, raft.term, body);
        };
        if c.index <= self.log.committed || self.log.match_term(c.index, c.snapshot_term) {
            // The log already covers it (Raft §7: keep the entries after it).
            // Below our own snapshot point the entry is compacted here too
            // (this node snapshotted past it meanwhile): committed, so it
            // matches by Log Matching; otherwise the hashes must agree.
            let readable = c.index + 1 >= self.log.first_index();
            if readable && self.log.chain_hash(c.index) != c.chain_hash {
                self.stats.chain_hash_mismatches += 1;
                return;
            }
            return reply(self, c.total_len, true);
        }
        if c.total_len > self.config.max_snapshot_bytes || snapshot_digest(&c.chunk) != c.chunk_hash
        {
            self.stats.ignored_messages += 1;
            return;
        }
        let same = self.incoming_snapshot.as_ref().is_some_and(|s| {
            s.metadata.index == c.index
                && s.metadata.term == c.snapshot_term
                && s.metadata.chain_hash == c.chain_hash
                && s.metadata.conf_state == c.conf_state
                && s.metadata.conf_index == c.conf_index
                && s.total_len == c.total_len
                && s.total_hash == c.total_hash
        });
        if !same {
            self.incoming_snapshot = Some(IncomingSnapshot {
                metadata: SnapshotMetadata {
                    index: c.index,
                    term: c.snapshot_term,
                    chain_hash: c.chain_hash,
                    conf_state: c.conf_state.clone(),
                    conf_index: c.conf_index,
                },
                total_len: c.total_len,
                total_hash: c.total_hash,
                data: Vec::new(),
            });
        }
        let incoming = self.incoming_snapshot.as_mut().expect("set above");
        let held = incoming.data.len() as u64;
        if c.offset != held {
            return reply(self, held, false);
        }
        incoming.data.extend_from_slice(&c.chunk);
        let held = incoming.data.len() as u64;
        if held < c.total_len {
            return reply(self, held, false);
        }
        let incoming = self.incoming_snapshot.take().expect("set above");
        if snapshot_digest(&incoming.data) != incoming.total_hash {
            // Every chunk verified but the whole does not: start over.
            self.stats.ignored_messages += 1;
            return reply(self, 0, false);
        }
        self.log.restore(incoming.metadata.clone());
        // The whole log is replaced: the snapshot's configuration holds.
        let (conf, conf_index) = (
            incoming.metadata.conf_state.clone(),
            incoming.metadata.conf_index,
        );
        self.set_conf(conf, conf_index);
        self.pending_snapshot = Some(Snapshot::new(incoming.metadata, incoming.data));
        reply(self, c.total_len, true);
    }
}
