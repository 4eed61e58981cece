//! Formatting a blank disk and opening (recovering) a formatted one.
//!
//! Open sequence (each step's failure is a distinct [`OpenError`]):
//! 1. Check the device: 512-byte blocks, a flush command, minimum size.
//!    Flush once, so everything read below is durable.
//! 2. Read both superblock copies. Both blank, or our own first format
//!    interrupted while writing copy 0: format the disk. Otherwise neither
//!    valid: refuse (never format over something we cannot read). Take
//!    the valid copy with the higher format epoch, check the identity,
//!    and rewrite the other copy if it differs.
//! 3. Read both hard-state slots; the valid one with the higher sequence
//!    number is current.
//! 4. Scan the WAL (`recovery.rs`): refuse on mid-log corruption, drop a
//!    torn tail.
//! 5. Report a commit index beyond the recovered log (loudly; Raft's
//!    adapter must clamp it). Bump the WAL generation in a new slot write and flush, so nothing
//!    past the recovered end can ever be read as a continuation.
//! 6. Read both snapshot slots (`snapshot.rs`); the valid one with the
//!    higher sequence whose data matches its SHA-256 is current. Refuse if
//!    the log starts past it (lost entries). If a crash fell between a
//!    snapshot write and its compaction or log reset, finish that now.

use crate::device::{BlockDevice, BLOCK_SIZE};
use crate::error::OpenError;
use crate::error::StoreError;
use crate::hard_state::{is_fresh_format_slot, newer_slot, HardState, SlotDefect, SlotState};
use crate::layout::{
    Geometry, Identity, Superblock, SuperblockDefect, HARD_STATE_LBA, SUPERBLOCK_LBAS,
};
use crate::recovery::{scan, RecoveryReport, ScanError};
use crate::snapshot::{self, SlotGeometry, SnapshotDefect, SnapshotMeta};
use crate::store::{read_slot_data, Store};
use alloc::vec::Vec;

/// Default bound on records held in the in-memory index
/// ([`OpenOptions::max_entries`]): 1 Mi entries x 24 bytes = 24 MiB.
pub const DEFAULT_MAX_ENTRIES: usize = 1 << 20;

/// Knobs for [`Store::open_with`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenOptions {
    /// Accept a device without a cache-flush command. Default `false`;
    /// only for benchmarks (the node config's `unsafe_no_flush`): with
    /// it set, "durable" means nothing.
    pub unsafe_no_flush: bool,
    /// Most live records the in-memory index holds (24 bytes each).
    /// Default [`DEFAULT_MAX_ENTRIES`]; appends beyond it fail until
    /// [`Store::compact_to`] releases a prefix.
    pub max_entries: usize,
}

impl Default for OpenOptions {
    fn default() -> OpenOptions {
        OpenOptions {
            unsafe_no_flush: false,
            max_entries: DEFAULT_MAX_ENTRIES,
        }
    }
}

fn check_device<D: BlockDevice>(dev: &D, options: &OpenOptions) -> Result<Geometry, OpenError> {
    if dev.block_size() != BLOCK_SIZE {
        return Err(OpenError::UnsupportedBlockSize(dev.block_size()));
    }
    if !dev.supports_flush() && !options.unsafe_no_flush {
        return Err(OpenError::NoFlushSupport);
    }
    let blocks = dev.capacity_blocks();
    Geometry::for_capacity(blocks).ok_or(OpenError::TooSmall { blocks })
}

fn flush<D: BlockDevice>(dev: &mut D) -> Result<(), OpenError> {
    if dev.supports_flush() {
        dev.flush()?;
    }
    Ok(())
}

fn read_block<D: BlockDevice>(dev: &mut D, lba: u64) -> Result<[u8; BLOCK_SIZE], OpenError> {
    let mut b = [0u8; BLOCK_SIZE];
    dev.read(lba, &mut b)?;
    Ok(b)
}

fn read_superblocks<D: BlockDevice>(
    dev: &mut D,
) -> Result<[Result<Superblock, SuperblockDefect>; 2], OpenError> {
    let a = read_block(dev, SUPERBLOCK_LBAS[0])?;
    let b = read_block(dev, SUPERBLOCK_LBAS[1])?;
    Ok([Superblock::decode(&a), Superblock::decode(&b)])
}

/// Write a fresh format: both hard-state slots, then each superblock copy
/// with a flush after each, so a crash at any point of a *first* format
/// leaves a disk that the next open formats again (blank or torn copy 0
/// over valid slots) or one valid superblock over valid slots. The format
/// epoch is one above any readable earlier format. A *re*format
/// interrupted before copy 0 is written leaves the old superblock over
/// new-epoch slots: open then fails with `NoValidHardState` (stale epoch)
/// and the operator formats again; it never mixes the two logs.
fn format_disk<D: BlockDevice>(
    dev: &mut D,
    identity: Identity,
    geometry: Geometry,
) -> Result<u64, OpenError> {
    let previous = read_superblocks(dev)?
        .iter()
        .filter_map(|r| r.as_ref().ok().map(|sb| sb.format_epoch))
        .max()
        .unwrap_or(0);
    let epoch = previous + 1;
    let mut slot = SlotState {
        seq: 0,
        hard_state: HardState::default(),
        wal_generation: 1,
        wal_truncated_from: 1,
        log_start_index: 1,
        wal_durable_upto: 0,
        wal_start_offset: 0,
        wal_start_prev_checksum: 0,
    };
    dev.write(HARD_STATE_LBA + 1, &slot.encode(epoch))?;
    slot.seq = 1;
    dev.write(HARD_STATE_LBA, &slot.encode(epoch))?;
    flush(dev)?;
    let sb = Superblock {
        identity,
        format_epoch: epoch,
        geometry,
    }
    .encode();
    for lba in SUPERBLOCK_LBAS {
        dev.write(lba, &sb)?;
        flush(dev)?;
    }
    Ok(epoch)
}

/// The current snapshot: the valid slot with the higher sequence whose
/// data matches its SHA-256, as (position, sequence, metadata, the
/// verified data); and why each slot not chosen was unusable.
#[allow(clippy::type_complexity)]
fn read_snapshot_slots<D: BlockDevice>(
    dev: &mut D,
    geometry: &Geometry,
    epoch: u64,
) -> Result<
    (
        Option<(usize, u64, SnapshotMeta, Vec<u8>)>,
        [Option<SnapshotDefect>; 2],
    ),
    OpenError,
> {
    let slots = SlotGeometry::of(geometry);
    let mut found = [None, None];
    let mut defects = [None, None];
    for pos in 0..2 {
        let header = read_block(dev, slots.header_lba(pos))?;
        match snapshot::decode_header(&header, epoch, slots.data_capacity()) {
            Ok(v) => found[pos] = Some(v),
            Err(SnapshotDefect::UnknownVersion(version)) => {
                return Err(OpenError::UnknownSnapshotVersion { slot: pos, version })
            }
            Err(d) => defects[pos] = Some(d),
        }
    }
    let mut order = [0usize, 1];
    let seq = |p: usize| found[p].as_ref().map_or(0, |(s, _, _)| *s);
    if seq(1) > seq(0) {
        order = [1, 0];
    }
    for pos in order {
        let Some((seq, meta, check)) = found[pos].take() else {
            continue;
        };
        let data = read_slot_data(dev, &slots, pos, meta.data_len)?;
        if check.holds(&meta, &data) {
            defects[pos] = None;
            // The other slot is the older snapshot (or empty): not a defect.
            return Ok((Some((pos, seq, meta, data)), defects));
        }
        defects[pos] = Some(SnapshotDefect::DataMismatch);
    }
    Ok((None, defects))
}

impl<D: BlockDevice> Store<D> {
    /// Format `dev` for `identity` (destroying any log on it) and open it.
    pub fn format(dev: D, identity: Identity) -> Result<(Store<D>, RecoveryReport), OpenError> {
        Store::format_with(dev, identity, OpenOptions::default())
    }

    /// [`Store::format`] with options.
    pub fn format_with(
        mut dev: D,
        identity: Identity,
        options: OpenOptions,
    ) -> Result<(Store<D>, RecoveryReport), OpenError> {
        let geometry = check_device(&dev, &options)?;
        format_disk(&mut dev, identity, geometry)?;
        let (store, mut report) = Store::open_with(dev, identity, options)?;
        report.formatted = true;
        Ok((store, report))
    }

    /// Open the disk of node `expected`: format it if blank, recover it
    /// otherwise. See the module docs of `open.rs` for the sequence.
    pub fn open(dev: D, expected: Identity) -> Result<(Store<D>, RecoveryReport), OpenError> {
        Store::open_with(dev, expected, OpenOptions::default())
    }

    /// [`Store::open`] with options.
    pub fn open_with(
        mut dev: D,
        expected: Identity,
        options: OpenOptions,
    ) -> Result<(Store<D>, RecoveryReport), OpenError> {
        let device_geometry = check_device(&dev, &options)?;
        flush(&mut dev)?;
        let copies = read_superblocks(&mut dev)?;
        let (chosen, other) = match copies {
            [Err(SuperblockDefect::Blank), Err(SuperblockDefect::Blank)] => {
                return Store::format_with(dev, expected, options);
            }
            // Format writes (and flushes) both slots before superblock
            // copy 0, and copy 1 last: a torn copy 0 over a blank copy 1
            // and two never-opened slots is our own interrupted first
            // format (a used disk always has a slot with sequence >= 2).
            [Err(_), Err(SuperblockDefect::Blank)]
                if is_fresh_format_slot(&read_block(&mut dev, HARD_STATE_LBA)?)
                    && is_fresh_format_slot(&read_block(&mut dev, HARD_STATE_LBA + 1)?) =>
            {
                return Store::format_with(dev, expected, options);
            }
            [Err(SuperblockDefect::UnsupportedVersion(version)), Err(_)]
            | [Err(_), Err(SuperblockDefect::UnsupportedVersion(version))] => {
                return Err(OpenError::UnsupportedFormat { version })
            }
            [Err(a), Err(b)] => return Err(OpenError::NoValidSuperblock([a, b])),
            [Ok(a), Ok(b)] if b.format_epoch > a.format_epoch => (b, 0),
            [Ok(a), _] => (a, 1),
            [Err(_), Ok(b)] => (b, 0),
        };
        let found = chosen.identity;
        if found.cluster_id != expected.cluster_id {
            return Err(OpenError::WrongCluster { expected, found });
        }
        if found.node_id != expected.node_id {
            return Err(OpenError::WrongNode { expected, found });
        }
        let geometry = chosen.geometry;
        if geometry.capacity_blocks > device_geometry.capacity_blocks {
            return Err(OpenError::DeviceShrunk {
                formatted_blocks: geometry.capacity_blocks,
                device_blocks: device_geometry.capacity_blocks,
            });
        }
        let mut superblock_repaired = None;
        if copies[other] != Ok(chosen) {
            let defect = match copies[other] {
                Err(d) => d,
                // A valid copy of an older format: call it stale.
                Ok(_) => SuperblockDefect::BadGeometry,
            };
            dev.write(SUPERBLOCK_LBAS[other], &chosen.encode())?;
            flush(&mut dev)?;
            superblock_repaired = Some((other, defect));
        }
        let epoch = chosen.format_epoch;

        let slot_blocks = [
            read_block(&mut dev, HARD_STATE_LBA)?,
            read_block(&mut dev, HARD_STATE_LBA + 1)?,
        ];
        let decoded = [
            SlotState::decode(&slot_blocks[0], epoch),
            SlotState::decode(&slot_blocks[1], epoch),
        ];
        let slot_defect: Option<SlotDefect> = decoded.iter().find_map(|d| d.err());
        let (slot_pos, slot) = newer_slot(decoded).map_err(OpenError::NoValidHardState)?;

        let found_log =
            scan(&mut dev, &geometry, epoch, &slot, options.max_entries).map_err(|e| match e {
                ScanError::Device(d) => OpenError::Device(d),
                ScanError::MidLogCorruption {
                    offset,
                    index,
                    defect,
                    witness,
                } => OpenError::CorruptRecord {
                    index,
                    offset,
                    defect,
                    witness,
                },
                ScanError::TooManyRecords { max_entries } => {
                    OpenError::TooManyRecords { max_entries }
                }
            })?;

        let records = found_log.index.len() as u64;
        let last_index = (slot.log_start_index + records).saturating_sub(1);
        // A commit index beyond the log can only come from a slot that
        // reached the media before the entries it covers (a writer that
        // broke the ordering rule, or an older build). Raft cannot start
        // with it: reported loudly; the Raft adapter clamps it (the store
        // keeps the hard state opaque).
        let hard_state = slot.hard_state;
        let commit_clamped = (hard_state.commit > last_index).then_some(hard_state.commit);
        // Step 5: everything past the recovered end is dead from now on.
        let bumped = SlotState {
            seq: slot.seq.saturating_add(1),
            hard_state,
            wal_generation: slot.wal_generation.saturating_add(1),
            wal_truncated_from: last_index + 1,
            log_start_index: slot.log_start_index,
            wal_durable_upto: found_log.end_offset,
            wal_start_offset: slot.wal_start_offset,
            wal_start_prev_checksum: slot.wal_start_prev_checksum,
        };
        let bumped_pos = 1 - slot_pos;
        dev.write(HARD_STATE_LBA + bumped_pos as u64, &bumped.encode(epoch))?;
        flush(&mut dev)?;

        let (snapshot, snapshot_defects) = read_snapshot_slots(&mut dev, &geometry, epoch)?;
        let snapshot_index = snapshot.as_ref().map_or(0, |(_, _, m, _)| m.index);
        if snapshot_index + 1 < slot.log_start_index {
            return Err(OpenError::SnapshotBehindLog {
                snapshot_index,
                first_index: slot.log_start_index,
            });
        }
        let snapshot_bytes = snapshot.as_ref().map_or(0, |(_, _, m, _)| m.data_len);

        let mut report = RecoveryReport {
            formatted: false,
            format_epoch: epoch,
            superblock_repaired,
            hard_state,
            commit_clamped,
            slot_defect,
            records,
            first_index: slot.log_start_index,
            last_index,
            last_term: found_log.index.last().map_or(0, |e| e.term),
            wal_bytes_used: 0,
            wal_bytes_total: geometry.wal_bytes(),
            tail: found_log.tail,
            wal_generation: bumped.wal_generation,
            snapshot_index,
            snapshot_bytes,
            snapshot_defects,
            reconciled: None,
        };
        let mut store = Store::from_recovered(
            dev,
            Superblock {
                identity: found,
                format_epoch: epoch,
                geometry,
            },
            options,
            bumped,
            bumped_pos,
            found_log,
            snapshot,
        );
        report.reconciled = store.reconcile_snapshot().map_err(|e| match e {
            StoreError::Device(d) => OpenError::Device(d),
            e => OpenError::Reconcile(e),
        })?;
        if report.reconciled.is_some() {
            report.first_index = store.first_index();
            report.last_index = store.last_index();
            report.records = store.last_index() + 1 - store.first_index();
        }
        report.wal_bytes_used = store.wal_used_bytes();
        Ok((store, report))
    }
}
