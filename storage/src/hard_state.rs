//! Raft's hard state and the two alternating slots that hold it.
//!
//! Raft §5.1/§5.2 (Figure 2, "persistent state on all servers"): `term`
//! and `vote` must be durable before the node answers a RequestVote or
//! AppendEntries; `commit` is persisted so a restart re-applies no further
//! than it knows. Each update goes to the slot *not* holding the last
//! flushed value, with a sequence number one higher; at open the valid slot
//! with the higher sequence wins. A write torn by power loss therefore
//! damages only the slot being written: the previous durable value
//! survives in the other.
//!
//! The slot also carries the WAL's truncation marker (generation and the
//! index it was truncated from; see `recovery.rs`) and where the live log
//! starts (first index, its WAL position and the checksum it links to), so
//! a truncation or a compaction is made durable by the same single-block
//! write.

use core::fmt;

use continuum_raft::NO_NODE;

use crate::bytes::{get_u32, get_u64, put_u32, put_u64};
use crate::crc32c::crc32c;
use crate::device::BLOCK_SIZE;

/// Hard-state slot magic ("CNTMHARD").
pub const SLOT_MAGIC: [u8; 8] = *b"CNTMHARD";
/// Largest log start index accepted from disk (keeps index arithmetic far
/// from overflow whatever a checksummed but hostile slot says).
pub const MAX_LOG_INDEX: u64 = 1 << 62;
/// Largest logical WAL position accepted from disk (the circular WAL's
/// positions only grow; 2^62 bytes is far beyond any disk's lifetime).
pub const MAX_WAL_POSITION: u64 = 1 << 62;
/// Bytes covered by the slot checksum (the checksum follows).
const SLOT_BODY: usize = 100;

/// Raft's persistent per-server state (Raft Figure 2): the Raft core's own
/// type, so node and store share one hard state and nothing converts it.
/// On disk a vote of [`continuum_raft::NO_NODE`] is "no vote" (flag byte 0).
pub use continuum_raft::HardState;

/// Everything one slot holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlotState {
    /// Monotonic write counter; the valid slot with the larger one is current.
    pub seq: u64,
    /// Raft hard state.
    pub hard_state: HardState,
    /// WAL generation: bumped by every truncation (and at every open).
    pub wal_generation: u64,
    /// Records with index >= this and an older generation are dead.
    pub wal_truncated_from: u64,
    /// Index of the first WAL record (snapshot index + 1; 1 without one).
    pub log_start_index: u64,
    /// WAL position the store knew to be flushed when it wrote this slot:
    /// a bad record below it is mid-log corruption, not a torn tail.
    pub wal_durable_upto: u64,
    /// WAL position (logical, see `store.rs`) of the record at
    /// `log_start_index`: recovery scans from here.
    pub wal_start_offset: u64,
    /// Checksum the record at `log_start_index` links to (the released
    /// record before it; 0 for a log starting on a fresh position).
    pub wal_start_prev_checksum: u32,
}

/// Why a slot was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotDefect {
    /// Magic mismatch (never written, or overwritten).
    BadMagic,
    /// Checksum mismatch (torn or corrupted write).
    BadChecksum,
    /// Written under an earlier format of this disk.
    StaleEpoch(u64),
    /// Checksummed but with values this crate never writes.
    BadField,
}

impl fmt::Display for SlotDefect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SlotDefect::BadMagic => write!(f, "bad magic"),
            SlotDefect::BadChecksum => write!(f, "checksum mismatch"),
            SlotDefect::StaleEpoch(e) => write!(f, "from format epoch {e}"),
            SlotDefect::BadField => write!(f, "invalid field values"),
        }
    }
}

impl SlotState {
    /// Encode into one block for a disk of format epoch `epoch`.
    pub fn encode(&self, epoch: u64) -> [u8; BLOCK_SIZE] {
        let mut b = [0u8; BLOCK_SIZE];
        b[0..8].copy_from_slice(&SLOT_MAGIC);
        put_u64(&mut b, 8, epoch);
        put_u64(&mut b, 16, self.seq);
        put_u64(&mut b, 24, self.hard_state.term);
        put_u64(&mut b, 32, self.hard_state.vote);
        b[40] = u8::from(self.hard_state.vote != NO_NODE);
        put_u64(&mut b, 48, self.hard_state.commit);
        put_u64(&mut b, 56, self.wal_generation);
        put_u64(&mut b, 64, self.wal_truncated_from);
        put_u64(&mut b, 72, self.log_start_index);
        put_u64(&mut b, 80, self.wal_durable_upto);
        put_u64(&mut b, 88, self.wal_start_offset);
        put_u32(&mut b, 96, self.wal_start_prev_checksum);
        let crc = crc32c(&b[..SLOT_BODY]);
        put_u32(&mut b, SLOT_BODY, crc);
        b
    }

    /// Decode one block written for format epoch `epoch`; total.
    pub fn decode(b: &[u8; BLOCK_SIZE], epoch: u64) -> Result<SlotState, SlotDefect> {
        if b[0..8] != SLOT_MAGIC {
            return Err(SlotDefect::BadMagic);
        }
        if crc32c(&b[..SLOT_BODY]) != get_u32(b, SLOT_BODY) {
            return Err(SlotDefect::BadChecksum);
        }
        let found_epoch = get_u64(b, 8);
        if found_epoch != epoch {
            return Err(SlotDefect::StaleEpoch(found_epoch));
        }
        // Flag 0: no vote (the vote field is not read); flag 1: a vote for
        // a node, which is never NO_NODE.
        let vote = match (b[40], get_u64(b, 32)) {
            (0, _) => NO_NODE,
            (1, NO_NODE) => return Err(SlotDefect::BadField),
            (1, node) => node,
            _ => return Err(SlotDefect::BadField),
        };
        let log_start_index = get_u64(b, 72);
        // Index arithmetic (start + entries) must not overflow; no real log
        // gets anywhere near 2^62 entries.
        let wal_start_offset = get_u64(b, 88);
        let wal_durable_upto = get_u64(b, 80);
        if log_start_index == 0
            || log_start_index > MAX_LOG_INDEX
            || wal_start_offset > MAX_WAL_POSITION
            || wal_durable_upto > MAX_WAL_POSITION
        {
            return Err(SlotDefect::BadField);
        }
        Ok(SlotState {
            seq: get_u64(b, 16),
            hard_state: HardState {
                term: get_u64(b, 24),
                vote,
                commit: get_u64(b, 48),
            },
            wal_generation: get_u64(b, 56),
            wal_truncated_from: get_u64(b, 64),
            log_start_index,
            wal_durable_upto,
            wal_start_offset,
            wal_start_prev_checksum: get_u32(b, 96),
        })
    }
}

/// Whether `b` is a slot exactly as `format` writes it (any format epoch,
/// sequence 0 or 1, empty hard state, first generation): a disk whose
/// slots are both like this has never been opened, so nothing on it was
/// ever acknowledged. Used to recognise an interrupted first format.
pub fn is_fresh_format_slot(b: &[u8; BLOCK_SIZE]) -> bool {
    match SlotState::decode(b, get_u64(b, 8)) {
        Ok(s) => {
            s.seq <= 1
                && s.hard_state == HardState::default()
                && s.wal_generation == 1
                && s.wal_truncated_from == 1
        }
        Err(_) => false,
    }
}

/// Pick the current slot from the two decoded ones: the valid one with the
/// larger sequence number. Returns its position (0 or 1) and contents.
pub fn newer_slot(
    slots: [Result<SlotState, SlotDefect>; 2],
) -> Result<(usize, SlotState), [SlotDefect; 2]> {
    match slots {
        [Ok(a), Ok(b)] => Ok(if b.seq > a.seq { (1, b) } else { (0, a) }),
        [Ok(a), Err(_)] => Ok((0, a)),
        [Err(_), Ok(b)] => Ok((1, b)),
        [Err(a), Err(b)] => Err([a, b]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(seq: u64) -> SlotState {
        SlotState {
            seq,
            hard_state: HardState {
                term: 9,
                vote: 2,
                commit: 40,
            },
            wal_generation: 3,
            wal_truncated_from: 17,
            log_start_index: 1,
            wal_durable_upto: 4096,
            wal_start_offset: 512,
            wal_start_prev_checksum: 77,
        }
    }

    #[test]
    fn round_trip_and_flips_are_caught() {
        let enc = sample(5).encode(4);
        assert_eq!(SlotState::decode(&enc, 4), Ok(sample(5)));
        assert_eq!(SlotState::decode(&enc, 5), Err(SlotDefect::StaleEpoch(4)));
        for byte in 0..SLOT_BODY + 4 {
            let mut bad = enc;
            bad[byte] ^= 0x10;
            assert!(SlotState::decode(&bad, 4).is_err(), "flip at {byte}");
        }
    }

    #[test]
    fn a_vote_flag_without_a_node_is_refused() {
        // Flag 1 names a vote, and NO_NODE is never one: this crate never
        // writes it, so a checksummed slot saying so is refused.
        let mut enc = sample(5).encode(4);
        put_u64(&mut enc, 32, NO_NODE);
        let crc = crc32c(&enc[..SLOT_BODY]);
        put_u32(&mut enc, SLOT_BODY, crc);
        assert_eq!(SlotState::decode(&enc, 4), Err(SlotDefect::BadField));
        // Flag 0 is no vote, whatever the vote field holds.
        enc[40] = 0;
        let crc = crc32c(&enc[..SLOT_BODY]);
        put_u32(&mut enc, SLOT_BODY, crc);
        let decoded = SlotState::decode(&enc, 4).unwrap();
        assert_eq!(decoded.hard_state.vote, NO_NODE);
    }

    #[test]
    fn newer_valid_slot_wins() {
        let (a, b) = (Ok(sample(5)), Ok(sample(6)));
        assert_eq!(newer_slot([a, b]), Ok((1, sample(6))));
        assert_eq!(
            newer_slot([Ok(sample(5)), Err(SlotDefect::BadChecksum)]),
            Ok((0, sample(5)))
        );
        assert!(newer_slot([Err(SlotDefect::BadMagic), Err(SlotDefect::BadMagic)]).is_err());
    }
}
