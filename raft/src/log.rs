//! The Raft log as the core sees it: persisted entries (read through
//! [`Storage`]) followed by *unstable* entries not yet handed to storage.
//!
//! Unstable entries start at `unstable_offset`. When a follower overwrites a
//! conflicting suffix (Raft §5.3), `unstable_offset` may be `<=
//! storage.last_index()`: the unstable entries then shadow the stored ones,
//! and the next [`crate::Ready`] tells the caller to truncate storage there.

use crate::entry::{Entry, LogChainHash};
use crate::storage::{SnapshotMetadata, Storage, StorageError};
use alloc::vec::Vec;

/// Why entries from a leader were not appended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum AppendError {
    /// An entry's chain hash differs from the one recomputed locally (or from
    /// the hash of the identical (index, term) entry already held).
    ChainMismatch { index: u64 },
}

pub(crate) struct RaftLog<S: Storage> {
    pub(crate) storage: S,
    unstable: Vec<Entry>,
    unstable_offset: u64,
    /// Highest index known committed (Raft Figure 2 `commitIndex`).
    pub(crate) committed: u64,
    /// Highest index handed to the application to apply.
    pub(crate) applied: u64,
    /// A snapshot received by InstallSnapshot that replaces the stored log
    /// once the caller persists it (until then it shadows storage).
    restoring: Option<SnapshotMetadata>,
}

fn fatal(what: &str, index: u64, err: StorageError) -> ! {
    panic!("raft: storage failed reading {what} of index {index}: {err}; halting rather than risk safety")
}

impl<S: Storage> RaftLog<S> {
    pub(crate) fn new(storage: S, committed: u64, applied: u64) -> RaftLog<S> {
        let last = storage.last_index();
        assert!(
            committed <= last,
            "raft: hard state commit {committed} beyond persisted last index {last}"
        );
        assert!(
            applied <= committed,
            "raft: applied {applied} beyond commit {committed}"
        );
        RaftLog {
            unstable_offset: last + 1,
            storage,
            unstable: Vec::new(),
            committed,
            applied,
            restoring: None,
        }
    }

    pub(crate) fn first_index(&self) -> u64 {
        match &self.restoring {
            Some(snapshot) => snapshot.index + 1,
            None => self.storage.first_index(),
        }
    }

    pub(crate) fn last_index(&self) -> u64 {
        match (self.unstable.last(), &self.restoring) {
            (Some(entry), _) => entry.index,
            (None, Some(snapshot)) => snapshot.index,
            (None, None) => self.storage.last_index(),
        }
    }

    /// Follower: the log becomes the snapshot `snapshot` (Raft §7: it
    /// covers entries this log does not hold, so every entry is discarded)
    /// and everything up to it counts as committed and applied (the
    /// application restores from the snapshot in the next Ready).
    pub(crate) fn restore(&mut self, snapshot: SnapshotMetadata) {
        assert!(
            snapshot.index > self.committed,
            "raft: snapshot at {} does not pass the commit index {}",
            snapshot.index,
            self.committed
        );
        self.unstable.clear();
        self.unstable_offset = snapshot.index + 1;
        self.committed = snapshot.index;
        self.applied = snapshot.index;
        self.restoring = Some(snapshot);
    }

    /// Called from `advance` after the caller persisted the snapshot a
    /// Ready carried.
    pub(crate) fn snapshot_persisted(&mut self) {
        let Some(snapshot) = self.restoring.take() else {
            return;
        };
        let stored = self.storage.first_index();
        let stored_term = self.storage.term(snapshot.index).ok();
        assert!(
            stored == snapshot.index + 1 && stored_term == Some(snapshot.term),
            "raft: advance() called but storage starts at {stored} (term {stored_term:?} at {}), \
             expected the snapshot at {} term {}: persist Ready::snapshot before advance",
            snapshot.index,
            snapshot.index,
            snapshot.term
        );
    }

    /// Configuration at the start of the log, from the snapshot being
    /// restored or the stored one; `None` without a snapshot.
    pub(crate) fn base_conf(&self) -> Option<(crate::storage::ConfState, u64)> {
        match &self.restoring {
            Some(s) => Some((s.conf_state.clone(), s.conf_index)),
            None => self
                .storage
                .snapshot()
                .map(|s| (s.metadata.conf_state.clone(), s.metadata.conf_index)),
        }
    }

    /// The newest configuration entry in the log: the unstable entries
    /// first (in memory), then the storage's stored ones below them.
    pub(crate) fn newest_conf_entry(&self) -> Option<Entry> {
        if let Some(entry) = self
            .unstable
            .iter()
            .rev()
            .find(|e| e.kind == crate::EntryKind::ConfChange)
        {
            return Some(entry.clone());
        }
        let stored_hi = self.unstable_offset.min(self.last_index() + 1);
        match self.storage.newest_conf_entry(stored_hi) {
            Ok(entry) => entry,
            Err(err) => fatal("newest_conf_entry", stored_hi, err),
        }
    }

    pub(crate) fn last_term(&self) -> u64 {
        self.term(self.last_index()).unwrap_or(0)
    }

    fn unstable_entry(&self, index: u64) -> Option<&Entry> {
        if index < self.unstable_offset {
            return None;
        }
        self.unstable.get((index - self.unstable_offset) as usize)
    }

    /// Term of `index`, `None` if beyond the log or compacted.
    pub(crate) fn term(&self, index: u64) -> Option<u64> {
        if index > self.last_index() || index + 1 < self.first_index() {
            return None;
        }
        if let Some(entry) = self.unstable_entry(index) {
            return Some(entry.term);
        }
        if let Some(snapshot) = &self.restoring {
            return (index == snapshot.index).then_some(snapshot.term);
        }
        match self.storage.term(index) {
            Ok(term) => Some(term),
            Err(err) => fatal("term", index, err),
        }
    }

    /// Chain hash of `index` (must be within `first_index()-1..=last_index()`).
    pub(crate) fn chain_hash(&self, index: u64) -> LogChainHash {
        if let Some(entry) = self.unstable_entry(index) {
            return entry.chain_hash;
        }
        if let Some(snapshot) = self.restoring.as_ref().filter(|s| s.index == index) {
            return snapshot.chain_hash;
        }
        match self.storage.chain_hash(index) {
            Ok(hash) => hash,
            Err(err) => fatal("chain hash", index, err),
        }
    }

    pub(crate) fn match_term(&self, index: u64, term: u64) -> bool {
        self.term(index) == Some(term)
    }

    /// Raft §5.4.1: is a log ending at (`last_index`, `last_term`) at least
    /// as up-to-date as ours?
    pub(crate) fn is_up_to_date(&self, last_index: u64, last_term: u64) -> bool {
        let my_term = self.last_term();
        last_term > my_term || (last_term == my_term && last_index >= self.last_index())
    }

    /// Largest index `<= index` whose term is `<= term` (thesis §5.3 fast
    /// backtracking; etcd `findConflictByTerm`).
    pub(crate) fn find_conflict_by_term(&self, index: u64, term: u64) -> u64 {
        let mut i = index.min(self.last_index());
        let floor = self.first_index().saturating_sub(1);
        while i > floor {
            match self.term(i) {
                Some(t) if t > term => i -= 1,
                _ => break,
            }
        }
        i
    }

    /// Entries `lo..hi` limited to roughly `max_bytes` (at least one).
    pub(crate) fn entries(&self, lo: u64, hi: u64, max_bytes: usize) -> Vec<Entry> {
        let hi = hi.min(self.last_index() + 1);
        let mut out = Vec::new();
        if lo >= hi {
            return out;
        }
        let stored_hi = hi.min(self.unstable_offset);
        if lo < stored_hi {
            out = match self.storage.entries(lo, stored_hi, max_bytes) {
                Ok(entries) => entries,
                Err(err) => fatal("entries", lo, err),
            };
            if (out.len() as u64) < stored_hi - lo {
                return out;
            }
        }
        let mut bytes: usize = out.iter().map(Entry::encoded_len).sum();
        let mut index = lo.max(self.unstable_offset);
        while index < hi {
            let Some(entry) = self.unstable_entry(index) else {
                break;
            };
            bytes += entry.encoded_len();
            if !out.is_empty() && bytes > max_bytes {
                break;
            }
            out.push(entry.clone());
            index += 1;
        }
        out
    }

    /// Appends `entries` to the unstable part, replacing any suffix at or
    /// after `entries[0].index`.
    ///
    /// # Panics
    /// If that would remove a committed entry (Raft §5.4 safety) or leave a gap.
    pub(crate) fn append(&mut self, entries: &[Entry]) {
        let Some(first) = entries.first() else { return };
        assert!(
            first.index > self.committed,
            "raft: refusing to overwrite committed entry {} (commit index {})",
            first.index,
            self.committed
        );
        assert!(
            first.index <= self.last_index() + 1,
            "raft: append at {} leaves a gap after {}",
            first.index,
            self.last_index()
        );
        let end = self.unstable_offset + self.unstable.len() as u64;
        if first.index == end {
            self.unstable.extend_from_slice(entries);
        } else if first.index <= self.unstable_offset {
            self.unstable_offset = first.index;
            self.unstable.clear();
            self.unstable.extend_from_slice(entries);
        } else {
            self.unstable
                .truncate((first.index - self.unstable_offset) as usize);
            self.unstable.extend_from_slice(entries);
        }
    }

    /// Follower side of AppendEntries (Raft §5.3): if the log matches at
    /// (`prev_index`, `prev_term`), append the entries that are new,
    /// truncating only a conflicting suffix, verify their chain hashes, and
    /// advance the commit index. Returns the last index now known to match
    /// the leader, or `None` if the consistency check failed.
    pub(crate) fn maybe_append(
        &mut self,
        prev_index: u64,
        prev_term: u64,
        leader_commit: u64,
        entries: &[Entry],
    ) -> Result<Option<u64>, AppendError> {
        if !self.match_term(prev_index, prev_term) {
            return Ok(None);
        }
        let last_new = prev_index + entries.len() as u64;
        let mut conflict_at = None;
        for (pos, entry) in entries.iter().enumerate() {
            if self.match_term(entry.index, entry.term) {
                // Same (index, term) means same entry (Log Matching); the hash
                // must agree or someone's log is corrupt.
                if self.chain_hash(entry.index) != entry.chain_hash {
                    return Err(AppendError::ChainMismatch { index: entry.index });
                }
            } else {
                conflict_at = Some(pos);
                break;
            }
        }
        if let Some(pos) = conflict_at {
            let new = &entries[pos..];
            let mut prev_hash = self.chain_hash(new[0].index - 1);
            for entry in new {
                if !entry.verify_chain(&prev_hash) {
                    return Err(AppendError::ChainMismatch { index: entry.index });
                }
                prev_hash = entry.chain_hash;
            }
            self.append(new);
        }
        self.commit_to(leader_commit.min(last_new));
        Ok(Some(last_new))
    }

    /// Raises the commit index; never lowers it, and never past the last
    /// index this log holds: a peer's commit index (a heartbeat's, computed
    /// from what the leader believes this node holds) can exceed it when
    /// this node lost an acknowledged entry, e.g. to a corrupt record at
    /// recovery. Committing only what is here (etcd's `commitTo` moves
    /// within the log) and letting replication repair the rest keeps the
    /// replica running instead of crash-looping on every heartbeat.
    pub(crate) fn commit_to(&mut self, index: u64) {
        let index = index.min(self.last_index());
        if index <= self.committed {
            return;
        }
        self.committed = index;
    }

    /// Leader commit rule (Raft §5.4.2): commit `index` only if its entry
    /// is from the current `term`.
    pub(crate) fn maybe_commit(&mut self, index: u64, term: u64) -> bool {
        if index > self.committed && self.term(index) == Some(term) {
            self.commit_to(index);
            return true;
        }
        false
    }

    /// Unstable entries to persist, and where storage must be truncated.
    pub(crate) fn unstable_entries(&self) -> (&[Entry], Option<u64>) {
        // A snapshot being restored replaces the whole stored log first.
        let truncate = if self.restoring.is_none()
            && !self.unstable.is_empty()
            && self.unstable_offset <= self.storage.last_index()
        {
            Some(self.unstable_offset)
        } else {
            None
        };
        (&self.unstable, truncate)
    }

    pub(crate) fn has_unstable(&self) -> bool {
        !self.unstable.is_empty()
    }

    /// Called from `advance`: the caller has persisted all unstable entries.
    pub(crate) fn stable_to_last(&mut self) {
        let Some(last) = self.unstable.last() else {
            return;
        };
        let stored = self.storage.last_index();
        let stored_term = self.storage.term(stored).ok();
        assert!(
            stored == last.index && stored_term == Some(last.term),
            "raft: advance() called but storage ends at {stored} (term {stored_term:?}), expected entry {} term {}: \
             persist Ready::entries before advance",
            last.index,
            last.term
        );
        self.unstable.clear();
        self.unstable_offset = stored + 1;
    }

    /// Committed entries not yet handed to the application.
    pub(crate) fn next_committed_entries(&self, max_bytes: usize) -> Vec<Entry> {
        if self.committed <= self.applied {
            return Vec::new();
        }
        self.entries(self.applied + 1, self.committed + 1, max_bytes)
    }

    pub(crate) fn applied_to(&mut self, index: u64) {
        assert!(
            index >= self.applied && index <= self.committed,
            "raft: applied index {index} outside {}..={}",
            self.applied,
            self.committed
        );
        self.applied = index;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entry::{EntryKind, GENESIS_CHAIN_HASH};
    use crate::storage::MemStorage;

    fn entries_with_terms(from: u64, prev: LogChainHash, terms: &[u64]) -> Vec<Entry> {
        let mut prev = prev;
        terms
            .iter()
            .enumerate()
            .map(|(i, &term)| {
                let entry = Entry::new(
                    &prev,
                    from + i as u64,
                    term,
                    EntryKind::Normal,
                    alloc::vec![i as u8],
                );
                prev = entry.chain_hash;
                entry
            })
            .collect()
    }

    fn log_with(terms: &[u64]) -> RaftLog<MemStorage> {
        let mut storage = MemStorage::new(alloc::vec![1]);
        storage.append(&entries_with_terms(1, GENESIS_CHAIN_HASH, terms));
        RaftLog::new(storage, 0, 0)
    }

    #[test]
    fn find_conflict_by_term_skips_whole_terms() {
        let log = log_with(&[1, 1, 2, 2, 2, 5, 5]);
        assert_eq!(log.find_conflict_by_term(7, 4), 5);
        assert_eq!(log.find_conflict_by_term(7, 1), 2);
        assert_eq!(log.find_conflict_by_term(7, 0), 0);
        assert_eq!(
            log.find_conflict_by_term(20, 9),
            7,
            "clamped to the last index"
        );
    }

    #[test]
    fn maybe_append_truncates_only_the_conflicting_suffix() {
        let mut log = log_with(&[1, 1, 2, 2]);
        let prefix_hash = log.chain_hash(2);
        let new = entries_with_terms(3, prefix_hash, &[3, 3, 3]);
        assert_eq!(log.maybe_append(2, 1, 0, &new), Ok(Some(5)));
        assert_eq!(
            log.unstable_entries().1,
            Some(3),
            "storage must drop 3.. first"
        );
        assert_eq!(log.term(3), Some(3));
        assert_eq!(log.last_index(), 5);
        // A duplicate of an older, shorter append changes nothing.
        assert_eq!(log.maybe_append(2, 1, 0, &new[..1]), Ok(Some(3)));
        assert_eq!(log.last_index(), 5);
        // Mismatched prev term: consistency check fails.
        assert_eq!(log.maybe_append(4, 9, 0, &[]), Ok(None));
    }

    #[test]
    fn maybe_append_refuses_a_broken_chain() {
        let mut log = log_with(&[1, 1]);
        let mut new = entries_with_terms(3, [7u8; 32], &[2]);
        assert_eq!(
            log.maybe_append(2, 1, 0, &new),
            Err(AppendError::ChainMismatch { index: 3 })
        );
        new[0].chain_hash = log.chain_hash(1);
        assert_eq!(
            log.maybe_append(2, 1, 0, &new),
            Err(AppendError::ChainMismatch { index: 3 })
        );
        assert_eq!(log.last_index(), 2);
    }

    #[test]
    #[should_panic(expected = "refusing to overwrite committed entry")]
    fn truncating_a_committed_entry_halts() {
        let mut log = log_with(&[1, 1, 1]);
        log.commit_to(3);
        let new = entries_with_terms(2, log.chain_hash(1), &[2]);
        log.append(&new);
    }

    #[test]
    fn a_commit_index_beyond_the_log_commits_only_what_the_log_holds() {
        let mut log = log_with(&[1, 1, 1]);
        log.commit_to(7);
        assert_eq!(log.committed, 3);
        log.commit_to(u64::MAX);
        assert_eq!(log.committed, 3);
    }

    #[test]
    fn commit_index_never_decreases_and_current_term_rule_holds() {
        let mut log = log_with(&[1, 2]);
        assert!(
            !log.maybe_commit(1, 2),
            "index 1 is from term 1, not the current term 2"
        );
        assert!(log.maybe_commit(2, 2));
        log.commit_to(1);
        assert_eq!(log.committed, 2);
    }
}
