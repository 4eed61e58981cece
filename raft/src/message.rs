//! Messages Raft nodes exchange (Raft Figure 2, thesis §3–§6, §9.6).
//!
//! Every message carries the sender's term; term supremacy (Raft §5.1) is
//! applied to it before anything else in [`crate::Raft::step`]. The binary
//! form is in [`crate::codec`].

use crate::entry::{ChainHash, Entry};
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
    /// One chunk of InstallSnapshot (Raft §7): the leader sends its
    /// snapshot to a follower that needs a compacted entry, one chunk per
    /// message (stop-and-wait: the next chunk follows the answer), so every
    /// message fits a datagram. The follower verifies each chunk against
    /// `chunk_hash` and the whole against `total_hash` before it switches;
    /// partial data is kept in memory only, so a crash mid-install leaves
    /// the follower on its old state.
    InstallSnapshot {
        /// Last log index the snapshot covers.
        index: u64,
        /// Term of that entry.
        snapshot_term: u64,
        /// Chain hash of that entry.
        chain_hash: ChainHash,
        /// Membership in effect at `index` (the follower's log is replaced
        /// by the snapshot, so it learns the configuration from here).
        conf_state: ConfState,
        /// Index of the configuration entry that set `conf_state`.
        conf_index: u64,
        /// Length of the whole snapshot data.
        total_len: u64,
        /// SHA-256 of the whole snapshot data.
        total_hash: ChainHash,
        /// Offset of `chunk` in the data.
        offset: u64,
        /// SHA-256 of `chunk`.
        chunk_hash: ChainHash,
        /// The bytes `offset..offset + chunk.len()`.
        chunk: Vec<u8>,
    },
    /// Answer to [`MessageBody::InstallSnapshot`].
    InstallSnapshotResponse {
        /// The snapshot index being answered.
        index: u64,
        /// Bytes of it the follower holds: the offset the next chunk must
        /// start at (resumes after loss or a leader change).
        next_offset: u64,
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
