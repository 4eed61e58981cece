//! The node's durable log at boot: find the disk, open (recover or format)
//! the store, say on the console what was found, and refuse to start on a
//! disk that is not ours or whose log is damaged.
//!
//! The on-disk format and recovery rules live in the portable
//! `continuum-storage` crate (its README has the layout tables); this
//! module is the kernel's wiring of it onto virtio-blk
//! ([`crate::drivers::virtio_blk`]).
//!
//! In `mode = node` the store goes to the consensus node
//! ([`crate::consensus`]). Two test modes drive the log directly instead:
//! [`exercise`] (`mode = wal-exercise`, for the kill -9 tests) and
//! [`bench`] (`mode = wal-bench`).
//!
//! Console lines the host tests parse (keep them stable):
//! * `storage: recovered last index N last term L hard state term T vote V commit C`
//!   after every open (`vote none` when there is no vote);
//! * `storage: refusing to start: ...` followed by `halted` on any refusal;
//! * `storage: no virtio-blk disk` when there is none.

pub mod bench;
pub mod exercise;

use crate::drivers::virtio_blk::VirtioBlk;
use crate::drivers::{self, VirtioDevice};
use continuum_config::Config;
use continuum_storage::{Identity, OpenOptions, Store};
use virtio_drivers::transport::DeviceType;

/// The store over the node's disk.
pub type DiskStore = Store<VirtioBlk>;

/// The WAL generation this boot's open bumped and flushed (0: no disk
/// opened). Every open bumps it durably before returning, so it grows
/// across boots: the network task derives the peer boot epoch from it
/// (`continuum_net::persisted_boot_epoch`) before sealing anything.
static BOOT_WAL_GENERATION: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(0);

/// This boot's durable WAL generation, if a disk was opened.
pub fn boot_wal_generation() -> Option<u64> {
    match BOOT_WAL_GENERATION.load(core::sync::atomic::Ordering::SeqCst) {
        0 => None,
        generation => Some(generation),
    }
}

/// The identity a disk must carry to be this node's.
pub fn identity(config: &Config) -> Identity {
    Identity {
        cluster_id: u128::from(config.cluster_id),
        node_id: u64::from(config.node_id),
    }
}

/// Opens the first virtio-blk disk as this node's log. `None` when there is
/// no disk; halts (never returns) when the disk must not be used.
pub fn open_at_boot(config: &Config) -> Option<DiskStore> {
    let mut disks = drivers::claim_virtio(DeviceType::Block);
    if disks.is_empty() {
        log::info!("storage: no virtio-blk disk");
        return None;
    }
    if disks.len() > 1 {
        log::warn!(
            "storage: {} virtio-blk disks; using the first, ignoring the rest",
            disks.len()
        );
    }
    let VirtioDevice {
        transport,
        location: (bus, device, function),
        ..
    } = disks.swap_remove(0);
    let disk = match VirtioBlk::new(transport) {
        Ok(disk) => disk,
        Err(error) => refuse(format_args!(
            "virtio-blk {bus:02x}:{device:02x}.{function}: {error}"
        )),
    };
    log::info!(
        "storage: virtio-blk {bus:02x}:{device:02x}.{function}, {} MiB, cache flush {}",
        continuum_storage::BlockDevice::capacity_blocks(&disk) / 2048,
        if continuum_storage::BlockDevice::supports_flush(&disk) {
            "supported"
        } else {
            "NOT supported"
        }
    );
    if !continuum_storage::BlockDevice::supports_flush(&disk) {
        if config.unsafe_no_flush {
            log::warn!(
                "storage: UNSAFE: the disk cannot flush its cache and unsafe_no_flush = true: \
                 acknowledged entries can be lost on power failure (benchmarks only)"
            );
        } else {
            refuse(format_args!(
                "the disk has no cache-flush command (VIRTIO_BLK_F_FLUSH), so nothing \
                 written to it is ever known to be durable (set unsafe_no_flush = true \
                 only for benchmarks)"
            ));
        }
    }
    let options = OpenOptions {
        unsafe_no_flush: config.unsafe_no_flush,
        ..OpenOptions::default()
    };
    let expected = identity(config);
    let (store, report) = match Store::open_with(disk, expected, options) {
        Ok(opened) => opened,
        Err(error) => refuse(format_args!("{error}")),
    };
    BOOT_WAL_GENERATION.store(report.wal_generation, core::sync::atomic::Ordering::SeqCst);
    for line in alloc::format!("{report}").lines() {
        log::info!("{line}");
    }
    let hs = store.hard_state();
    let last = store.last_index();
    let last_term = if last >= store.first_index() {
        store.term(last).unwrap_or(0)
    } else {
        0
    };
    log::info!("storage: recovered last index {last} last term {last_term} hard state {hs}");
    Some(store)
}

/// Reports why the disk is refused and halts: a node that runs on a
/// damaged or foreign log can forget a vote or an acknowledged entry.
pub fn refuse(why: core::fmt::Arguments) -> ! {
    crate::halt_with(format_args!("storage: refusing to start: {why}"))
}
