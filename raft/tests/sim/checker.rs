//! Safety checker fed by the simulator after every step (Raft Figure 3):
//! election safety, leader append-only, log matching, leader completeness,
//! state-machine safety, durability of committed entries, and read
//! linearizability; with membership changes, election safety holds across
//! configurations (one leader per term whatever configuration elected it),
//! every commit is backed by a majority of the committing leader's
//! configuration, and durability is judged against the configurations
//! that could elect the next leader. It recomputes chain hashes itself rather than trusting
//! the code under test.

use continuum_raft::{compute_chain_hash, ConfState, Entry, LogChainHash, NodeId};
use std::collections::BTreeMap;
use std::fmt;

/// A broken safety property.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Violation {
    /// Two leaders in one term (Election Safety).
    TwoLeaders {
        term: u64,
        first: NodeId,
        second: NodeId,
    },
    /// A leader truncated or rewrote its own log (Leader Append-Only).
    LeaderOverwrote { node: NodeId, term: u64, index: u64 },
    /// An entry's chain hash is not the hash of its content on its prefix.
    BadChain { node: NodeId, index: u64 },
    /// Same (index, term) with different content (Log Matching).
    LogMismatch { node: NodeId, index: u64, term: u64 },
    /// Two nodes applied different entries at one index (State Machine Safety).
    ApplyMismatch { node: NodeId, index: u64 },
    /// A node applied out of order.
    ApplyGap {
        node: NodeId,
        expected: u64,
        got: u64,
    },
    /// A leader lacks an entry committed before its term (Leader Completeness).
    LeaderIncomplete { node: NodeId, term: u64, index: u64 },
    /// A committed entry is no longer persisted on a quorum.
    CommittedLost { index: u64, holders: usize },
    /// A leader committed an entry that a majority of the voters of its
    /// configuration did not hold.
    CommitWithoutQuorum {
        node: NodeId,
        term: u64,
        index: u64,
        voters: Vec<NodeId>,
        holders: usize,
    },
    /// A node that is not a voter of its own configuration campaigned.
    NonVoterCampaigned { node: NodeId, term: u64 },
    /// A read returned an index older than a commit that preceded it.
    StaleRead {
        node: NodeId,
        ctx: u64,
        index: u64,
        required: u64,
    },
    /// After faults stopped, the cluster did not converge in time.
    NoLiveness { detail: String },
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self:?}")
    }
}

/// A committed entry as first observed.
#[derive(Clone, Copy, Debug)]
struct Committed {
    term: u64,
    hash: LogChainHash,
    /// Term of the node that first applied it: the entry was committed in a
    /// term <= this, so every leader of a later term must hold it.
    known_at_term: u64,
}

/// Global history.
#[derive(Default)]
pub struct Checker {
    leaders: BTreeMap<u64, NodeId>,
    /// Index i + 1 -> committed entry.
    committed: Vec<Committed>,
    entry_hashes: BTreeMap<(u64, u64), LogChainHash>,
    applied: BTreeMap<NodeId, u64>,
    /// Open reads: (node, ctx) -> commit index known when issued.
    reads: BTreeMap<(NodeId, u64), u64>,
}

impl Checker {
    /// Empty history.
    pub fn new() -> Checker {
        Checker::default()
    }

    /// Highest index known committed.
    pub fn commit_index(&self) -> u64 {
        self.committed.len() as u64
    }

    /// Newest committed entry: (index, known_at_term, hash).
    pub fn last_committed(&self) -> Option<(u64, u64, LogChainHash)> {
        self.committed
            .last()
            .map(|c| (self.committed.len() as u64, c.known_at_term, c.hash))
    }

    /// Chain hash of committed `index`.
    pub fn committed_hash(&self, index: u64) -> Option<LogChainHash> {
        index
            .checked_sub(1)
            .and_then(|i| self.committed.get(i as usize))
            .map(|c| c.hash)
    }

    /// Election Safety: `node` is leader of `term`.
    pub fn on_leader(&mut self, node: NodeId, term: u64) -> Result<(), Violation> {
        let first = *self.leaders.entry(term).or_insert(node);
        if first != node {
            return Err(Violation::TwoLeaders {
                term,
                first,
                second: node,
            });
        }
        Ok(())
    }

    /// A Ready's entries are about to be persisted by `node`. `prev_hash`
    /// gives the node's chain hash at an index; `leader_term` is Some if the
    /// node is leader.
    pub fn on_persist(
        &mut self,
        node: NodeId,
        leader_term: Option<u64>,
        truncate_from: Option<u64>,
        entries: &[Entry],
        prev_hash: impl Fn(u64) -> Option<LogChainHash>,
    ) -> Result<(), Violation> {
        if let (Some(term), Some(index)) = (leader_term, truncate_from) {
            return Err(Violation::LeaderOverwrote { node, term, index });
        }
        let mut prev: Option<LogChainHash> = None;
        for entry in entries {
            if let Some(term) = leader_term {
                if entry.term != term {
                    return Err(Violation::LeaderOverwrote {
                        node,
                        term,
                        index: entry.index,
                    });
                }
            }
            let before = match prev {
                Some(hash) => hash,
                None => prev_hash(entry.index - 1).ok_or(Violation::BadChain {
                    node,
                    index: entry.index,
                })?,
            };
            let expect =
                compute_chain_hash(&before, entry.index, entry.term, entry.kind, &entry.data);
            if expect != entry.chain_hash {
                return Err(Violation::BadChain {
                    node,
                    index: entry.index,
                });
            }
            let known = *self
                .entry_hashes
                .entry((entry.index, entry.term))
                .or_insert(entry.chain_hash);
            if known != entry.chain_hash {
                return Err(Violation::LogMismatch {
                    node,
                    index: entry.index,
                    term: entry.term,
                });
            }
            prev = Some(entry.chain_hash);
        }
        Ok(())
    }

    /// `node` (currently in `node_term`) applies `entry`.
    pub fn on_apply(
        &mut self,
        node: NodeId,
        node_term: u64,
        entry: &Entry,
    ) -> Result<(), Violation> {
        let applied = self.applied.entry(node).or_insert(0);
        if entry.index != *applied + 1 {
            return Err(Violation::ApplyGap {
                node,
                expected: *applied + 1,
                got: entry.index,
            });
        }
        *applied = entry.index;
        let pos = (entry.index - 1) as usize;
        if let Some(known) = self.committed.get(pos) {
            if known.term != entry.term || known.hash != entry.chain_hash {
                return Err(Violation::ApplyMismatch {
                    node,
                    index: entry.index,
                });
            }
        } else {
            assert_eq!(pos, self.committed.len(), "apply contiguity implies this");
            self.committed.push(Committed {
                term: entry.term,
                hash: entry.chain_hash,
                known_at_term: node_term,
            });
        }
        Ok(())
    }

    /// `node` installs a snapshot at `index` with chain hash `hash`
    /// (InstallSnapshot): it must be of committed entries, and the node
    /// applies from after it.
    pub fn on_snapshot(
        &mut self,
        node: NodeId,
        index: u64,
        hash: &LogChainHash,
    ) -> Result<(), Violation> {
        match self.committed_hash(index) {
            Some(known) if known == *hash => {}
            Some(_) => return Err(Violation::ApplyMismatch { node, index }),
            None => {
                return Err(Violation::ApplyGap {
                    node,
                    expected: self.commit_index(),
                    got: index,
                })
            }
        }
        let applied = self.applied.entry(node).or_insert(0);
        if index <= *applied {
            return Err(Violation::ApplyGap {
                node,
                expected: *applied + 1,
                got: index,
            });
        }
        *applied = index;
        Ok(())
    }

    /// `node` restarted and will re-apply from after its snapshot at
    /// `snapshot_index` (0: from the beginning).
    pub fn on_restart(&mut self, node: NodeId, snapshot_index: u64) {
        self.applied.insert(node, snapshot_index);
        self.reads.retain(|(n, _), _| *n != node);
    }

    /// Leader Completeness for a leader of `term`: it must hold every entry
    /// committed in an earlier term. `hash_at` reads the leader's log.
    pub fn check_leader_complete(
        &self,
        node: NodeId,
        term: u64,
        hash_at: impl Fn(u64) -> Option<LogChainHash>,
    ) -> Result<(), Violation> {
        // The chain makes the newest qualifying entry enough.
        let Some(pos) = self.committed.iter().rposition(|c| c.known_at_term < term) else {
            return Ok(());
        };
        let index = pos as u64 + 1;
        if hash_at(index) != Some(self.committed[pos].hash) {
            return Err(Violation::LeaderIncomplete { node, term, index });
        }
        Ok(())
    }

    /// Durability: the newest committed entry is persisted on enough
    /// voters of *each* of `configs` (the configurations that could elect
    /// the next leader) that every majority of it includes a holder, so
    /// no leader can be elected without it (Leader Completeness): at least
    /// `n - (n/2 + 1) + 1` of `n` voters. With a fixed odd-sized cluster
    /// that is a majority. `holds(node, index, hash)` says whether a
    /// node's storage has it.
    pub fn check_durable(
        &self,
        configs: &[ConfState],
        holds: impl Fn(NodeId, u64, &LogChainHash) -> bool,
    ) -> Result<(), Violation> {
        let Some(last) = self.committed.last() else {
            return Ok(());
        };
        let index = self.committed.len() as u64;
        for conf in configs {
            let count = conf
                .voters
                .iter()
                .filter(|&&v| holds(v, index, &last.hash))
                .count();
            let n = conf.voters.len();
            if count < n - (n / 2 + 1) + 1 {
                return Err(Violation::CommittedLost {
                    index,
                    holders: count,
                });
            }
        }
        Ok(())
    }

    /// Quorum in effect: leader `node` of `term` just advanced its commit
    /// index to `index` with `voters` as its configuration; `holders` of
    /// them have the entry (the leader counting its own log, persisted or
    /// not, as Raft does).
    pub fn check_commit_quorum(
        &self,
        node: NodeId,
        term: u64,
        index: u64,
        voters: &[NodeId],
        holders: usize,
    ) -> Result<(), Violation> {
        if holders <= voters.len() / 2 {
            return Err(Violation::CommitWithoutQuorum {
                node,
                term,
                index,
                voters: voters.to_vec(),
                holders,
            });
        }
        Ok(())
    }

    /// A read with `ctx` was issued at `node`.
    pub fn on_read_issued(&mut self, node: NodeId, ctx: u64) {
        self.reads.insert((node, ctx), self.commit_index());
    }

    /// A read completed with `index`: linearizable only if it covers every
    /// commit that happened before the read was issued.
    pub fn on_read_done(&mut self, node: NodeId, ctx: u64, index: u64) -> Result<(), Violation> {
        if let Some(required) = self.reads.remove(&(node, ctx)) {
            if index < required {
                return Err(Violation::StaleRead {
                    node,
                    ctx,
                    index,
                    required,
                });
            }
        }
        Ok(())
    }
}
