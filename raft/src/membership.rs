//! Membership changes through the log: one server at a time (Raft thesis
//! §4.1–§4.2, with the errata fix), and learners.
//!
//! # Why one server at a time, not joint consensus
//!
//! Every operation the product needs (grow 3 → 5, shrink back, replace a
//! dead disk, remove the leader) is a sequence of single-server steps, and
//! any majority of a configuration and any majority of a configuration
//! that differs by one voter intersect (thesis §4.1), so no joint phase is
//! needed. One kind of configuration entry, one quorum rule and one place
//! where the configuration changes keep the core small enough to check in
//! the simulator; joint consensus (thesis §4.3, raft-rs `ConfChangeV2`)
//! buys arbitrary changes in one step, which nothing here asks for.
//!
//! # The rules
//!
//! * **Changes.** [`ConfChangeKind`]: add a learner, promote a learner to
//!   voter, remove a voter, remove a learner. A new node always joins as a
//!   learner, catches up (by entries or InstallSnapshot) and is promoted
//!   only once it holds the leader's commit index, so it never weakens a
//!   quorum while empty.
//! * **In effect on append** (thesis §4.1). A configuration entry
//!   ([`EntryKind::ConfChange`], data [`ConfEntry`]) carries the whole new
//!   [`ConfState`], not a delta. Every node uses the newest configuration
//!   entry *in its log*, committed or not; when a conflicting suffix is
//!   truncated (Raft §5.3) and that entry goes with it, the node falls back
//!   to the newest one left (or to the snapshot's, or the bootstrap
//!   configuration). The application sees the entry again when it commits
//!   (to update peer addresses and keys); Raft has acted on it already.
//! * **Errata fix** (thesis §4.1 / raft-dev 2015 "bug in single-server
//!   membership changes"). A leader proposes a change only after it has
//!   committed an entry of its own term (its election no-op), and only if
//!   no other change is uncommitted ([`ConfChangeError::ChangeInProgress`]).
//!   Together these ensure that any configuration entry a follower can lose
//!   to truncation is the newest one, and that the one before it is
//!   committed.
//! * **Learners** receive entries, heartbeats and snapshots like voters but
//!   are never asked to vote, never count toward a commit, a ReadIndex
//!   round, a lease or check-quorum, and never campaign (a node campaigns
//!   only if it is a voter in its own configuration; a TimeoutNow to a
//!   non-voter is ignored). A learner still *answers* a vote request: the
//!   candidate may already have the entry promoting it, and an answer it
//!   does not count costs nothing.
//! * **Removing the leader.** The leader refuses to remove itself
//!   ([`ConfChangeError::RemoveLeader`]): the caller first hands leadership
//!   to another voter ([`crate::Raft::transfer_leader`], thesis §3.10) and
//!   proposes the removal at the new leader. So a leader is always a voter
//!   of its own configuration, and the thesis §4.2.2 mode (a leader that
//!   manages a cluster it is no longer part of) never arises.
//! * **Removed nodes** keep receiving appends until their removal commits
//!   (so they normally learn it), then nothing: the leader drops their
//!   progress. They never campaign once their log holds their removal. One
//!   that never learnt of it cannot win (its log lacks the committed
//!   removal) and is kept from disrupting the cluster by pre-vote and
//!   check-quorum (thesis §4.2.3): voters that hear a leader ignore its
//!   vote requests.
//! * **Silent leaders.** A node that does not campaign (learner, removed,
//!   joining) forgets its leader after an election timeout without it, as
//!   a voter would by campaigning, so a leader lease it promised ends and
//!   it follows the next leader.
//! * **Senders.** A node accepts messages from nodes outside its own
//!   configuration (its configuration may be behind the leader's: a new
//!   voter may lead before a lagging follower has the entry that added
//!   it); votes, acks and read confirmations are only ever counted for the
//!   voters of the counting node's configuration. Deciding *who may send at
//!   all* is the transport's job (peer keys that follow the log,
//!   `docs/membership.md`).
//! * **Restart and snapshots.** Storage returns the configuration at the
//!   start of its log (its snapshot's, or the bootstrap one; a snapshot's
//!   metadata carries `conf_state` and `conf_index`), and [`crate::Raft::new`]
//!   replays the configuration entries of the stored log after it. A
//!   follower that installs a snapshot takes the snapshot's configuration,
//!   since its whole log is replaced.
//! * **Joining.** A node whose storage holds an empty configuration is a
//!   joining node: it waits, passive, for a leader to replicate to it.
//!
//! Refusals are typed: [`ConfChangeError`]. A guard against *liveness*
//! mistakes (an operator removing a working voter while another is down)
//! is [`ConfChangeError::WouldLoseQuorum`]; it is a best-effort check on
//! which voters answered recently, never part of safety.

use crate::codec::{put_conf_state, DecodeError};
use crate::config::MAX_ENTRY_DATA_BYTES;
use crate::entry::EntryKind;
use crate::progress::Progress;
use crate::raft::{Raft, Role};
use crate::storage::{ConfState, Storage};
use crate::{NodeId, NO_NODE};
use alloc::vec::Vec;
use core::fmt;

/// Fixed part of an encoded [`ConfEntry`] besides the configuration:
/// kind, node id and context length.
const CONF_ENTRY_FIXED_BYTES: usize = 1 + 8 + 4;

/// Largest `context` a configuration change may carry: what is left of
/// [`MAX_ENTRY_DATA_BYTES`] after the largest configuration.
pub const MAX_CONF_CONTEXT_BYTES: usize =
    MAX_ENTRY_DATA_BYTES - CONF_ENTRY_FIXED_BYTES - 8 - 8 * crate::codec::MAX_CLUSTER_MEMBERS;

/// One single-server membership change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfChangeKind {
    /// Add a node that is not a member as a learner.
    AddLearner,
    /// Make a learner a voter.
    PromoteLearner,
    /// Remove a voter (not the leader itself).
    RemoveVoter,
    /// Remove a learner.
    RemoveLearner,
}

impl ConfChangeKind {
    /// Wire byte.
    pub fn byte(self) -> u8 {
        match self {
            ConfChangeKind::AddLearner => 1,
            ConfChangeKind::PromoteLearner => 2,
            ConfChangeKind::RemoveVoter => 3,
            ConfChangeKind::RemoveLearner => 4,
        }
    }

    /// Inverse of [`ConfChangeKind::byte`].
    pub fn from_byte(kind: u8) -> Option<ConfChangeKind> {
        Some(match kind {
            1 => ConfChangeKind::AddLearner,
            2 => ConfChangeKind::PromoteLearner,
            3 => ConfChangeKind::RemoveVoter,
            4 => ConfChangeKind::RemoveLearner,
            _ => return None,
        })
    }
}

/// A membership change as proposed: what, whom, and an opaque `context`
/// for the application (the node layer puts the new member's address,
/// public key and the operator's signature there; Raft never reads it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfChange {
    /// The change.
    pub kind: ConfChangeKind,
    /// The node it applies to.
    pub node: NodeId,
    /// Application bytes, at most [`MAX_CONF_CONTEXT_BYTES`].
    pub context: Vec<u8>,
}

/// The data of a [`EntryKind::ConfChange`] entry: the change and the whole
/// configuration it produces. Layout: `kind:u8 node:u64 conf_state
/// context_len:u32 context`, `conf_state` as in the codec (`voters:u32 ids
/// learners:u32 ids`). Decoding refuses every other byte string.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfEntry {
    /// The change that was proposed.
    pub change: ConfChange,
    /// The configuration in effect from this entry on.
    pub conf_state: ConfState,
}

impl ConfEntry {
    /// Canonical encoding (entry data).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(
            CONF_ENTRY_FIXED_BYTES
                + 8
                + 8 * (self.conf_state.voters.len() + self.conf_state.learners.len())
                + self.change.context.len(),
        );
        out.push(self.change.kind.byte());
        out.extend_from_slice(&self.change.node.to_be_bytes());
        put_conf_state(&mut out, &self.conf_state);
        out.extend_from_slice(&(self.change.context.len() as u32).to_be_bytes());
        out.extend_from_slice(&self.change.context);
        out
    }

    /// Decodes entry data; total (never panics), canonical, and checks
    /// that `conf_state` is what `change` makes of *some* configuration
    /// (the node is a member of the right kind afterwards).
    pub fn decode(bytes: &[u8]) -> Result<ConfEntry, DecodeError> {
        let (&kind, rest) = bytes.split_first().ok_or(DecodeError::Truncated)?;
        let kind = ConfChangeKind::from_byte(kind).ok_or(DecodeError::ConfState)?;
        let (node, rest) = split_u64(rest)?;
        let (conf_state, rest) = crate::codec::take_conf_state(rest)?;
        let (len, rest) = split_u32(rest)?;
        let len = len as usize;
        if len > MAX_CONF_CONTEXT_BYTES {
            return Err(DecodeError::EntryTooLarge);
        }
        if rest.len() < len {
            return Err(DecodeError::Truncated);
        }
        if rest.len() > len {
            return Err(DecodeError::TrailingBytes);
        }
        let consistent = node != NO_NODE
            && match kind {
                ConfChangeKind::AddLearner => conf_state.is_learner(node),
                ConfChangeKind::PromoteLearner => conf_state.is_voter(node),
                ConfChangeKind::RemoveVoter | ConfChangeKind::RemoveLearner => {
                    !conf_state.is_member(node)
                }
            };
        if !consistent {
            return Err(DecodeError::ConfState);
        }
        Ok(ConfEntry {
            change: ConfChange {
                kind,
                node,
                context: rest.to_vec(),
            },
            conf_state,
        })
    }
}

fn split_u64(bytes: &[u8]) -> Result<(u64, &[u8]), DecodeError> {
    if bytes.len() < 8 {
        return Err(DecodeError::Truncated);
    }
    let (head, rest) = bytes.split_at(8);
    let value = u64::from_be_bytes(head.try_into().map_err(|_| DecodeError::Truncated)?);
    Ok((value, rest))
}

fn split_u32(bytes: &[u8]) -> Result<(u32, &[u8]), DecodeError> {
    if bytes.len() < 4 {
        return Err(DecodeError::Truncated);
    }
    let (head, rest) = bytes.split_at(4);
    let value = u32::from_be_bytes(head.try_into().map_err(|_| DecodeError::Truncated)?);
    Ok((value, rest))
}

/// `conf` after `change`, or why the change does not apply to it.
/// `leader` is the proposing node (it may not remove itself).
pub fn apply_change(
    conf: &ConfState,
    change: &ConfChange,
    leader: NodeId,
) -> Result<ConfState, ConfChangeError> {
    let node = change.node;
    if node == NO_NODE {
        return Err(ConfChangeError::UnknownNode);
    }
    let mut next = conf.clone();
    match change.kind {
        ConfChangeKind::AddLearner => {
            if conf.is_member(node) {
                return Err(ConfChangeError::AlreadyMember);
            }
            if conf.voters.len() + conf.learners.len() >= crate::codec::MAX_CLUSTER_MEMBERS {
                return Err(ConfChangeError::TooManyMembers);
            }
            insert_sorted(&mut next.learners, node);
        }
        ConfChangeKind::PromoteLearner => {
            if conf.is_voter(node) {
                return Err(ConfChangeError::AlreadyMember);
            }
            if !conf.is_learner(node) {
                return Err(ConfChangeError::UnknownNode);
            }
            next.learners.retain(|&l| l != node);
            insert_sorted(&mut next.voters, node);
        }
        ConfChangeKind::RemoveVoter => {
            if !conf.is_voter(node) {
                return Err(ConfChangeError::UnknownNode);
            }
            // Checked first: the last voter is the leader, and handing
            // leadership over is no way out for it.
            if conf.voters.len() == 1 {
                return Err(ConfChangeError::RemoveLastVoter);
            }
            if node == leader {
                return Err(ConfChangeError::RemoveLeader);
            }
            next.voters.retain(|&v| v != node);
        }
        ConfChangeKind::RemoveLearner => {
            if !conf.is_learner(node) {
                return Err(ConfChangeError::UnknownNode);
            }
            next.learners.retain(|&l| l != node);
        }
    }
    Ok(next)
}

fn insert_sorted(ids: &mut Vec<NodeId>, id: NodeId) {
    if let Err(pos) = ids.binary_search(&id) {
        ids.insert(pos, id);
    }
}

/// Why a membership change was refused. Nothing was appended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfChangeError {
    /// Only the leader proposes changes; `leader` is the known leader or
    /// [`NO_NODE`].
    NotLeader {
        /// Known leader, or [`NO_NODE`].
        leader: NodeId,
    },
    /// A leadership transfer is in progress.
    TransferInProgress,
    /// This leader has not yet committed an entry of its own term (thesis
    /// §4 errata): retry once its election no-op commits.
    LeaderNotReady,
    /// Another change is appended but not committed (one at a time).
    ChangeInProgress,
    /// The node is already a member (of the kind the change would make it).
    AlreadyMember,
    /// The node is not a member of the kind the change needs (or is 0).
    UnknownNode,
    /// The change would remove the only voter.
    RemoveLastVoter,
    /// The change would remove the leader: transfer leadership first.
    RemoveLeader,
    /// A learner is promoted only once it holds the leader's commit index.
    LearnerBehind,
    /// Too few voters of the new configuration answered the leader
    /// recently to form its quorum: the cluster would stall.
    WouldLoseQuorum,
    /// The configuration would exceed [`crate::MAX_CLUSTER_MEMBERS`].
    TooManyMembers,
    /// `context` is over [`MAX_CONF_CONTEXT_BYTES`].
    ContextTooLarge,
}

impl fmt::Display for ConfChangeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfChangeError::NotLeader { leader } if *leader == NO_NODE => {
                f.write_str("not leader; leader unknown")
            }
            ConfChangeError::NotLeader { leader } => write!(f, "not leader; leader is {leader}"),
            ConfChangeError::TransferInProgress => f.write_str("leadership transfer in progress"),
            ConfChangeError::LeaderNotReady => {
                f.write_str("new leader has not committed an entry of its term yet; retry")
            }
            ConfChangeError::ChangeInProgress => {
                f.write_str("another membership change is not committed yet")
            }
            ConfChangeError::AlreadyMember => f.write_str("node is already a member"),
            ConfChangeError::UnknownNode => {
                f.write_str("node is not a member of the kind this change needs")
            }
            ConfChangeError::RemoveLastVoter => f.write_str("cannot remove the last voter"),
            ConfChangeError::RemoveLeader => {
                f.write_str("cannot remove the leader; transfer leadership first")
            }
            ConfChangeError::LearnerBehind => {
                f.write_str("learner has not caught up with the commit index yet")
            }
            ConfChangeError::WouldLoseQuorum => {
                f.write_str("too few voters of the new configuration are reachable")
            }
            ConfChangeError::TooManyMembers => {
                write!(f, "more than {} members", crate::codec::MAX_CLUSTER_MEMBERS)
            }
            ConfChangeError::ContextTooLarge => {
                write!(f, "change context over {MAX_CONF_CONTEXT_BYTES} bytes")
            }
        }
    }
}

impl<S: Storage> Raft<S> {
    /// Proposes one membership change (see the module doc for the rules);
    /// returns the index of its entry. The new configuration is in effect
    /// on this leader at once; watch committed entries for this index and
    /// term to know it is final.
    pub fn propose_conf_change(&mut self, change: ConfChange) -> Result<u64, ConfChangeError> {
        assert!(
            self.ready_in_flight.is_none(),
            "raft: propose_conf_change called between ready() and advance()"
        );
        if self.role != Role::Leader {
            return Err(ConfChangeError::NotLeader {
                leader: self.leader,
            });
        }
        if self.lead_transferee.is_some() {
            return Err(ConfChangeError::TransferInProgress);
        }
        if change.context.len() > MAX_CONF_CONTEXT_BYTES {
            return Err(ConfChangeError::ContextTooLarge);
        }
        if self.log.term(self.log.committed) != Some(self.term) {
            return Err(ConfChangeError::LeaderNotReady);
        }
        if self.conf_index > self.log.committed {
            return Err(ConfChangeError::ChangeInProgress);
        }
        let next = apply_change(&self.conf, &change, self.id)?;
        if change.kind == ConfChangeKind::PromoteLearner {
            let matched = self.progress.get(&change.node).map_or(0, |pr| pr.matched);
            if matched < self.log.committed {
                return Err(ConfChangeError::LearnerBehind);
            }
        }
        if matches!(
            change.kind,
            ConfChangeKind::PromoteLearner | ConfChangeKind::RemoveVoter
        ) {
            let reachable = next
                .voters
                .iter()
                .filter(|&&v| {
                    v == self.id
                        || self
                            .progress
                            .get(&v)
                            .is_some_and(|pr| pr.recent_active || pr.active_last_round)
                })
                .count();
            if reachable < next.voters.len() / 2 + 1 {
                return Err(ConfChangeError::WouldLoseQuorum);
            }
        }
        let data = ConfEntry {
            change,
            conf_state: next,
        }
        .encode();
        let index = self.append_local([(EntryKind::ConfChange, data)]);
        self.pending_broadcast = true;
        Ok(index)
    }

    /// The configuration in effect.
    pub fn conf_state(&self) -> &ConfState {
        &self.conf
    }

    /// Index of the entry that set the configuration in effect (0: the
    /// bootstrap configuration, or a snapshot's whose entry is compacted
    /// reports the snapshot's `conf_index`).
    pub fn conf_index(&self) -> u64 {
        self.conf_index
    }

    /// Whether this node may campaign: it is a voter of its configuration.
    pub(crate) fn promotable(&self) -> bool {
        self.conf.is_voter(self.id)
    }

    /// Leader: every node it replicates to, in id order: the members but
    /// this node, plus a node the uncommitted change removes (so that it
    /// receives its own removal and stops campaigning).
    pub(crate) fn replication_targets(&self) -> Vec<NodeId> {
        self.progress
            .keys()
            .copied()
            .filter(|&id| id != self.id)
            .collect()
    }

    /// Leader: once the configuration entry commits, stop replicating to
    /// the nodes it removed.
    pub(crate) fn prune_departed(&mut self) {
        if self.conf_index <= self.log.committed {
            let conf = &self.conf;
            self.progress.retain(|id, _| conf.is_member(*id));
        }
    }

    /// Makes `conf` (set by the entry at `index`) the configuration in
    /// effect, and adjusts the leader's bookkeeping: progress for new
    /// members, none for removed ones, a commit index recomputed for the
    /// new quorum. A node that stops being a voter stops campaigning.
    pub(crate) fn set_conf(&mut self, conf: ConfState, index: u64) {
        self.conf = conf;
        self.conf_index = index;
        match self.role {
            Role::Leader => {
                let last = self.log.last_index();
                let max_inflight = self.config.max_inflight_msgs;
                let members: Vec<NodeId> = self
                    .conf
                    .voters
                    .iter()
                    .chain(self.conf.learners.iter())
                    .copied()
                    .collect();
                // Removed nodes keep their progress until the change commits.
                self.prune_departed();
                for id in members {
                    self.progress
                        .entry(id)
                        .or_insert_with(|| Progress::new(last + 1, max_inflight));
                }
                // Read confirmations count the new configuration's voters only.
                let conf = &self.conf;
                for read in self.read_only.pending.iter_mut() {
                    read.acks.retain(|id| conf.is_voter(*id));
                }
                if self
                    .lead_transferee
                    .is_some_and(|to| !self.conf.is_voter(to))
                {
                    self.lead_transferee = None;
                }
                // A removal can make entries committed under the smaller
                // quorum; append_local also calls this after appending.
                if self.maybe_commit_leader() {
                    self.pending_broadcast = true;
                }
            }
            Role::Candidate | Role::PreCandidate if !self.promotable() => {
                let term = self.term;
                self.become_follower(term, NO_NODE);
            }
            _ => {}
        }
    }

    /// After entries were appended to the log: if any is a configuration
    /// entry newer than the one in effect, the newest becomes the
    /// configuration.
    pub(crate) fn conf_from_appended(&mut self, entries: &[crate::Entry]) {
        let Some(entry) = entries
            .iter()
            .rev()
            .find(|e| e.kind == EntryKind::ConfChange)
        else {
            return;
        };
        if entry.index <= self.conf_index {
            return;
        }
        let conf = decode_logged(entry);
        self.set_conf(conf, entry.index);
    }

    /// The configuration from the log alone: the newest configuration
    /// entry, else the configuration at the log's start (a snapshot's,
    /// the one being restored, or the bootstrap one). Used at start and
    /// after a truncation removed the entry in effect.
    pub(crate) fn conf_from_log(&self) -> (ConfState, u64) {
        if let Some(entry) = self.log.newest_conf_entry() {
            return (decode_logged(&entry), entry.index);
        }
        self.log
            .base_conf()
            .unwrap_or_else(|| self.boot_conf.clone())
    }
}

/// Decodes a configuration entry that is in this node's log. Every such
/// entry was validated when it arrived (codec) or built here, so a failure
/// means the stored log is corrupt: halt rather than guess a membership.
fn decode_logged(entry: &crate::Entry) -> ConfState {
    match ConfEntry::decode(&entry.data) {
        Ok(conf) => conf.conf_state,
        Err(err) => panic!(
            "raft: configuration entry {} in the log does not decode ({err}); halting",
            entry.index
        ),
    }
}
