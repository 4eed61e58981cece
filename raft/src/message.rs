//! Messages Raft nodes exchange (Raft Figure 2, thesis §3–§6, §9.6).
//!
//! Every message carries the sender's term; term supremacy (Raft §5.1) is
//! applied to it before anything else in [`crate::Raft::step`]. The binary
//! form is in [`crate::codec`].

use crate::entry::{Entry, LogChainHash};
use crate::snapshot::SnapshotDigest;
use crate::storage::ConfState;
use crate::NodeId;
use alloc::vec::Vec;

/// One message between two nodes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// Sender.
    pub from: NodeId,
    /// Recipient.
    pub to: NodeId,
    /// Sender's term; for `PreVote` the term the sender *would* campaign in
    /// (thesis §9.6), for a granted `PreVoteResponse` that same term.
    pub term: u64,
    /// Type-specific fields.
    pub body: MessageBody,
}

/// Type-specific part of a [`Message`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MessageBody {
    /// Pre-vote request (thesis §9.6): would you vote for me in `term`?
    PreVote {
        /// Index of the candidate's last entry.
        last_log_index: u64,
        /// Term of the candidate's last entry.
        last_log_term: u64,
    },
    /// Answer to [`MessageBody::PreVote`].
    PreVoteResponse {
        /// True if the pre-vote was refused.
        reject: bool,
    },
    /// RequestVote (Raft §5.2, §5.4.1).
    Vote {
        /// Index of the candidate's last entry.
        last_log_index: u64,
        /// Term of the candidate's last entry.
        last_log_term: u64,
        /// Set when the election was started by TimeoutNow (thesis §3.10):
        /// voters disregard their leader lease.
        leader_transfer: bool,
    },
    /// Answer to [`MessageBody::Vote`].
    VoteResponse {
        /// True if the vote was refused.
        reject: bool,
    },
    /// AppendEntries (Raft §5.3).
    Append {
        /// Index of the entry before `entries`.
        prev_log_index: u64,
        /// Term of that entry.
        prev_log_term: u64,
        /// Leader's commit index.
        leader_commit: u64,
        /// Entries `prev_log_index + 1 ..`, possibly empty.
        entries: Vec<Entry>,
    },
    /// Answer to [`MessageBody::Append`].
    AppendResponse {
        /// True if the consistency check failed.
        reject: bool,
        /// On success the follower's last index matching the leader; on reject
        /// the `prev_log_index` that failed.
        index: u64,
        /// On reject: a hint index for fast backtracking (thesis §5.3 end):
        /// the largest index whose term is `<= hint_term`.
        reject_hint: u64,
        /// On reject: the term of the follower's entry at `reject_hint`.
        hint_term: u64,
    },
    /// One part of InstallSnapshot (Raft §7): the leader sends its snapshot
    /// to a follower that needs a compacted entry as a manifest of
    /// content-addressed chunks, then the chunks the follower lacks, one
    /// part per message (stop-and-wait: the next part follows the answer),
    /// so every message fits a datagram. See `snapshot.rs` for the
    /// protocol. The follower verifies the manifest against its hash, each
    /// chunk against its name (SHA-256) and the whole against `total_hash`
    /// before it switches; partial data is kept in memory only, so a crash
    /// mid-install leaves the follower on its old state.
    InstallSnapshot {
        /// Last log index the snapshot covers.
        index: u64,
        /// Term of that entry.
        snapshot_term: u64,
        /// Chain hash of that entry.
        chain_hash: LogChainHash,
        /// Membership in effect at `index` (the follower's log is replaced
        /// by the snapshot, so it learns the configuration from here).
        conf_state: ConfState,
        /// Index of the configuration entry that set `conf_state`.
        conf_index: u64,
        /// Length of the whole snapshot data.
        total_len: u64,
        /// SHA-256 of the whole snapshot data.
        total_hash: SnapshotDigest,
        /// A piece of the manifest, or one chunk.
        part: SnapshotPart,
    },
    /// Answer to [`MessageBody::InstallSnapshot`]: what the follower needs
    /// next (resumes after loss or a leader change).
    InstallSnapshotResponse {
        /// The snapshot index being answered.
        index: u64,
        /// Manifest entries the follower holds: while below the manifest's
        /// chunk count, the next part must be the manifest from here.
        manifest_next: u32,
        /// Once the manifest is complete: position (in the manifest) of the
        /// first chunk the follower neither holds nor could reuse.
        chunk_next: u32,
        /// The follower installed it (or already had that entry).
        done: bool,
    },
    /// Leader heartbeat; carries the commit index (capped at what the
    /// follower is known to have) and an optional ReadIndex round.
    Heartbeat {
        /// `min(leader commit, follower match)`.
        commit: u64,
        /// ReadIndex round being confirmed, 0 for none (thesis §6.4).
        read_seq: u64,
    },
    /// Answer to [`MessageBody::Heartbeat`], echoing `read_seq`.
    HeartbeatResponse {
        /// The round of the heartbeat being answered.
        read_seq: u64,
    },
    /// Start an election now, skipping pre-vote (leadership transfer,
    /// thesis §3.10).
    TimeoutNow,
    /// A follower forwards a client's ReadIndex request to the leader.
    ReadIndexRequest {
        /// Caller's request id, echoed back.
        ctx: u64,
    },
    /// Leader's answer to [`MessageBody::ReadIndexRequest`]: reads may be
    /// served once the follower has applied `index`.
    ReadIndexResponse {
        /// Caller's request id.
        ctx: u64,
        /// Read index (the leader's commit index when the read was confirmed).
        index: u64,
    },
}

/// One manifest entry: a chunk of snapshot data named by its SHA-256.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChunkRef {
    /// SHA-256 of the chunk's bytes.
    pub name: SnapshotDigest,
    /// Length of the chunk, `1..=max_chunk`.
    pub len: u32,
}

/// What one [`MessageBody::InstallSnapshot`] carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SnapshotPart {
    /// Manifest entries `first..first + entries.len()` of `chunk_count`:
    /// the snapshot data is the concatenation of the named chunks, cut by
    /// content-defined chunking with `max_chunk`.
    Manifest {
        /// Largest chunk; the follower cuts its own snapshot with the same
        /// parameter to find chunks it already holds.
        max_chunk: u32,
        /// Entries in the whole manifest.
        chunk_count: u32,
        /// SHA-256 of the whole manifest (`snapshot::manifest_hash`).
        manifest_hash: SnapshotDigest,
        /// Position of `entries[0]` in the manifest.
        first: u32,
        /// The entries.
        entries: Vec<ChunkRef>,
    },
    /// The chunk at `position` in the manifest.
    Chunk {
        /// Its position in the manifest.
        position: u32,
        /// Its bytes; SHA-256 must equal the manifest's name.
        chunk: Vec<u8>,
    },
}

impl MessageBody {
    /// Whether this is a response (used to apply term rules).
    pub fn is_response(&self) -> bool {
        matches!(
            self,
            MessageBody::PreVoteResponse { .. }
                | MessageBody::VoteResponse { .. }
                | MessageBody::AppendResponse { .. }
                | MessageBody::HeartbeatResponse { .. }
                | MessageBody::ReadIndexResponse { .. }
                | MessageBody::InstallSnapshotResponse { .. }
        )
    }
}
