//! The node's durable log at boot: find the disks, choose one, open
//! (recover or format) the store, say on the console what was found, and
//! refuse to start on a disk that is not ours or whose log is damaged.
//!
//! The on-disk format and recovery rules live in the portable
//! `continuum-storage` crate (its README has the layout tables); this
//! module is the kernel's wiring of it onto whichever disk was chosen
//! ([`node_disk::NodeDisk`] over virtio-blk, NVMe or AHCI).
//!
//! # Which disk, and what the node does to it
//! Every disk a driver brings up is listed (kind, PCI place, unit, model,
//! serial, size, write cache) with what it holds ([`node_disk::Contents`]),
//! read without writing. Then:
//! * `disk = ...` pins one; nothing else is considered. Without a pin the
//!   node takes, in PCI order, the first disk holding *this* node's log,
//!   else the first holding any Continuum log (open refuses it if it is
//!   another node's or cluster's), else the first blank disk.
//! * A blank disk (first and last MiB all zeros) is formatted.
//! * A disk holding anything else (a partition table, a filesystem) is
//!   never written: unpinned, it is skipped with a line saying which keys
//!   would give it to the node; pinned, the node refuses to start, unless
//!   `format = this-disk`, which formats it.
//!
//! In `mode = node` the store goes to the consensus node
//! ([`crate::consensus`]). Two test modes drive the log directly instead:
//! [`exercise`] (`mode = wal-exercise`, for the kill -9 tests) and
//! [`bench`] (`mode = wal-bench`).
//!
//! Console lines the host tests parse (keep them stable):
//! * `storage: disk <kind> ...` once per disk found, and
//!   `storage: using <kind> ...` for the one chosen;
//! * `storage: leaving untouched: <kind> ...` for a disk skipped as not ours;
//! * `storage: recovered last index N last term L hard state term T vote V commit C`
//!   after every open (`vote none` when there is no vote);
//! * `storage: refusing to start: ...` followed by `halted` on any refusal;
//! * `storage: no disk` / `storage: no usable disk` when there is none.

pub mod bench;
pub mod exercise;
pub mod node_disk;

use crate::drivers;
use crate::drivers::blockdev::{DiskInfo, DiskKind};
use alloc::vec::Vec;
use continuum_config::{Config, DiskPin, FormatPolicy};
use continuum_storage::{BlockDevice, Identity, OpenOptions, Store};
use node_disk::{Contents, NodeDisk};

/// The store over the node's disk.
pub type DiskStore = Store<NodeDisk>;

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
        node_id: config.node_id,
    }
}

/// The config value that pins `info`'s disk.
fn pin_text(info: &DiskInfo) -> alloc::string::String {
    match info.kind {
        DiskKind::Nvme => alloc::format!("nvme:{}", info.serial),
        DiskKind::Ahci => alloc::format!("ahci:{}", info.unit),
        DiskKind::Virtio => alloc::format!("virtio:{}", info.unit),
    }
}

/// Whether `pin` names `info`'s disk (the first AHCI disk on the port wins).
fn pinned(pin: &DiskPin, info: &DiskInfo) -> bool {
    match pin {
        DiskPin::Any => false,
        DiskPin::Virtio { index } => {
            info.kind == DiskKind::Virtio && info.unit == u32::from(*index)
        }
        DiskPin::Ahci { port } => info.kind == DiskKind::Ahci && info.unit == u32::from(*port),
        DiskPin::Nvme { .. } => {
            info.kind == DiskKind::Nvme && Some(info.serial.as_str()) == pin.nvme_serial()
        }
    }
}

/// Finds the disks, chooses one (see the module docs) and opens its store.
/// `None` when there is no usable disk; halts (never returns) when the
/// chosen disk must not be used.
pub fn open_at_boot(config: &Config) -> Option<DiskStore> {
    let mut found: Vec<(NodeDisk, Contents)> = Vec::new();
    for claimed in drivers::claim_disks() {
        let mut disk = NodeDisk::new(claimed);
        match disk.contents() {
            Ok(contents) => {
                log::info!("storage: disk {}, holds {contents}", disk.info());
                found.push((disk, contents));
            }
            Err(error) => log::error!(
                "storage: disk {}: cannot read its first blocks ({error}); skipped",
                disk.info()
            ),
        }
    }
    if found.is_empty() {
        log::info!("storage: no disk");
        return None;
    }
    let expected = identity(config);
    let chosen = choose(config, expected, &found)?;
    let (disk, contents) = found.swap_remove(chosen);
    log::info!("storage: using {}", disk.info());
    if !disk.supports_flush() {
        if config.unsafe_no_flush {
            log::warn!(
                "storage: UNSAFE: the disk cannot flush its cache and unsafe_no_flush = true: \
                 acknowledged entries can be lost on power failure (benchmarks only)"
            );
        } else {
            refuse(format_args!(
                "the disk has a write cache and no cache-flush command, so nothing \
                 written to it is ever known to be durable (set unsafe_no_flush = true \
                 only for benchmarks)"
            ));
        }
    }
    let options = OpenOptions {
        unsafe_no_flush: config.unsafe_no_flush,
        ..OpenOptions::default()
    };
    let opened = match contents {
        Contents::Continuum(_) | Contents::Blank => Store::open_with(disk, expected, options),
        _ if config.format == FormatPolicy::ThisDisk => {
            log::warn!(
                "storage: formatting {} (it held {contents}): the config says disk = {} and format = this-disk",
                disk.info(),
                config.disk
            );
            Store::format_with(disk, expected, options)
        }
        _ => refuse(format_args!(
            "the config pins {}, which holds {contents}: it is not this node's and the \
             node formats only blank disks. To format it, destroying what is on it, add \
             `format = this-disk`",
            disk.info()
        )),
    };
    let (store, report) = match opened {
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

/// Which of the `found` disks holds (or gets) the log; `None` when none
/// is usable. See the module docs for the order.
fn choose(config: &Config, expected: Identity, found: &[(NodeDisk, Contents)]) -> Option<usize> {
    if config.disk != DiskPin::Any {
        return match found.iter().position(|(d, _)| pinned(&config.disk, d.info())) {
            Some(at) => Some(at),
            None => refuse(format_args!(
                "the config pins disk = {} and no such disk was found (the disks seen are listed above)",
                config.disk
            )),
        };
    }
    for (disk, contents) in found {
        if !matches!(contents, Contents::Continuum(_) | Contents::Blank) {
            log::warn!(
                "storage: leaving untouched: {}: it holds {contents}, so it is not this node's. \
                 To give it to this node, destroying what is on it, set `disk = {}` and \
                 `format = this-disk` in the node config",
                disk.info(),
                pin_text(disk.info())
            );
        }
    }
    let ours = found
        .iter()
        .position(|(_, c)| *c == Contents::Continuum(Some(expected)));
    let any_log = found
        .iter()
        .position(|(_, c)| matches!(c, Contents::Continuum(_)));
    let blank = found.iter().position(|(_, c)| *c == Contents::Blank);
    let chosen = ours.or(any_log).or(blank);
    if chosen.is_none() {
        log::warn!("storage: no usable disk");
    }
    chosen
}

/// Reports why the disk is refused and halts: a node that runs on a
/// damaged or foreign log can forget a vote or an acknowledged entry.
pub fn refuse(why: core::fmt::Arguments) -> ! {
    crate::halt_with(format_args!("storage: refusing to start: {why}"))
}
