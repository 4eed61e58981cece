//! `cargo run --release -p continuum-harness --bin wal-bench [-- --disk virtio|nvme|ahci ...]`
//!
//! Runs once per disk kind given (default: all three, in one run).
//!
//! Boots the kernel in `mode = wal-bench` on a fresh raw disk image
//! (`target/qemu-runs/wal-bench/disk.img`, attached `cache=writeback`, so
//! every guest flush is an `fdatasync` of the image on the host), prints the
//! guest's table (appends/s and flush latency p50/p99 for batch sizes 1, 16
//! and 256), then measures the host's own floor in the same directory:
//! `File::sync_data` after each 4 KiB write, p50/p99 over [`HOST_SAMPLES`],
//! once appending (metadata too) and once overwriting a preallocated file
//! (data only), the latter right before and right after the guest run.
//! The guest's flush latency is printed as a multiple of the mean of the
//! before/after overwrite figures, the floor. Last, the guest runs again
//! with `cache=unsafe` (host flushes dropped): the guest + QEMU overhead.

use continuum_harness::{
    blank_disk, workspace_root, Accel, DiskCache, DiskKind, Exit, VmConfig, DISK_KINDS,
};
use std::io::Write;
use std::time::{Duration, Instant};

/// Disk image size; sparse, the benchmark writes < 100 MiB of it.
const DISK_MIB: u64 = 256;
/// Host fsync samples.
const HOST_SAMPLES: usize = 300;

fn number_after(line: &str, key: &str) -> Option<u64> {
    let rest = &line[line.find(key)? + key.len()..];
    let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
    digits.parse().ok()
}

fn percentile(sorted: &[Duration], p: usize) -> Duration {
    sorted[(sorted.len() * p / 100).min(sorted.len() - 1)]
}

/// p50 and p99 of `sync_data` after a 4 KiB write, in a file next to the
/// image. `grow`: each write appends (the file size changes, so the sync
/// also commits metadata); otherwise the writes overwrite a file that was
/// written and synced in full first (data only: the physical floor).
fn host_fsync(dir: &std::path::Path, grow: bool) -> (Duration, Duration) {
    use std::io::{Seek, SeekFrom};
    let path = dir.join("host-fsync.bin");
    let mut file = std::fs::File::create(&path).expect("create the host fsync file");
    let block = [0x5au8; 4096];
    if !grow {
        for _ in 0..HOST_SAMPLES {
            file.write_all(&block).expect("host prefill");
        }
        file.sync_all().expect("host prefill sync");
        file.seek(SeekFrom::Start(0)).expect("host seek");
    }
    let mut samples = Vec::with_capacity(HOST_SAMPLES);
    for _ in 0..HOST_SAMPLES {
        file.write_all(&block).expect("host write");
        let t = Instant::now();
        file.sync_data().expect("host sync_data");
        samples.push(t.elapsed());
    }
    drop(file);
    let _ = std::fs::remove_file(&path);
    samples.sort();
    (percentile(&samples, 50), percentile(&samples, 99))
}

fn main() {
    let mut kinds = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let kind = match (arg.as_str(), args.next()) {
            ("--disk", Some(kind)) => kind.parse::<DiskKind>(),
            _ => Err(format!(
                "usage: wal-bench [--disk virtio|nvme|ahci]... (got `{arg}`)"
            )),
        };
        match kind {
            Ok(kind) => kinds.push(kind),
            Err(error) => {
                eprintln!("wal-bench: {error}");
                std::process::exit(2);
            }
        }
    }
    if kinds.is_empty() {
        kinds = DISK_KINDS.to_vec();
    }
    for kind in kinds {
        bench(kind);
    }
}

/// The whole measurement (host floor, guest with writeback, guest with
/// `cache=unsafe`) on a `kind` disk.
fn bench(kind: DiskKind) {
    println!("=== disk {kind} ===");
    let dir = workspace_root().join("target/qemu-runs/wal-bench");
    let disk = dir.join("disk.img");
    blank_disk(&disk, DISK_MIB);
    println!(
        "wal-bench: accelerator {:?}, {DISK_MIB} MiB raw image, cache=writeback, in {}",
        Accel::detect(),
        dir.display()
    );
    // The host's fsync latency on this (shared, virtual) disk drifts by
    // an order of magnitude over minutes, so the floor is measured right
    // before and right after the guest, and the ratios use their mean.
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    let (before_p50, before_p99) = host_fsync(&dir, false);
    let rows = guest(kind, &disk, DiskCache::Writeback);
    let (after_p50, after_p99) = host_fsync(&dir, false);
    let (grow_p50, grow_p99) = host_fsync(&dir, true);
    println!(
        "host: sync_data after a 4 KiB overwrite, before the guest: p50 {:.0} us, p99 {:.0} us; after: p50 {:.0} us, p99 {:.0} us ({HOST_SAMPLES} samples each)",
        us(before_p50),
        us(before_p99),
        us(after_p50),
        us(after_p99)
    );
    println!(
        "host: sync_data after a 4 KiB append (file grows, metadata too), after the guest: p50 {:.0} us, p99 {:.0} us",
        us(grow_p50),
        us(grow_p99)
    );
    let host_p50 = (us(before_p50) + us(after_p50)) / 2.0;
    let host_p99 = (us(before_p99) + us(after_p99)) / 2.0;
    println!(
        "host floor (mean of before/after overwrite): p50 {host_p50:.0} us, p99 {host_p99:.0} us"
    );
    println!(
        "{:>6} {:>7} {:>9} {:>11} {:>14} {:>14} {:>14} {:>14}",
        "batch",
        "rounds",
        "entries",
        "appends/s",
        "flush p50 us",
        "flush p99 us",
        "p50/host p50",
        "p99/host p99"
    );
    for row in &rows {
        let get = |key| number_after(row, key).unwrap_or_else(|| panic!("no {key:?} in {row:?}"));
        let (p50, p99) = (get("flush_p50_us "), get("flush_p99_us "));
        println!(
            "{:>6} {:>7} {:>9} {:>11} {:>14} {:>14} {:>14.2} {:>14.2}",
            get("batch "),
            get("rounds "),
            get("entries "),
            get("appends_per_s "),
            p50,
            p99,
            p50 as f64 / host_p50,
            p99 as f64 / host_p99
        );
    }
    // The same guest with host flushes dropped (cache=unsafe): what the
    // guest, virtio and QEMU cost without the host's fdatasync.
    blank_disk(&disk, DISK_MIB);
    let rows = guest(kind, &disk, DiskCache::Unsafe);
    println!("cache=unsafe (guest flushes not passed to the host; guest + QEMU overhead only):");
    println!(
        "{:>6} {:>7} {:>9} {:>11} {:>14} {:>14}",
        "batch", "rounds", "entries", "appends/s", "flush p50 us", "flush p99 us"
    );
    for row in rows {
        let get = |key| number_after(&row, key).unwrap_or_else(|| panic!("no {key:?} in {row:?}"));
        println!(
            "{:>6} {:>7} {:>9} {:>11} {:>14} {:>14}",
            get("batch "),
            get("rounds "),
            get("entries "),
            get("appends_per_s "),
            get("flush_p50_us "),
            get("flush_p99_us "),
        );
    }
}

/// Boots `mode = wal-bench` on `disk` and returns the kernel's three
/// `wal-bench: batch ...` lines, after printing them.
fn guest(kind: DiskKind, disk: &std::path::Path, cache: DiskCache) -> Vec<String> {
    let run = VmConfig::new("wal-bench")
        .disk_of(kind, disk, cache)
        .node_config("mode = wal-bench\nheap_mib = 64\n")
        .timeout(Duration::from_secs(120))
        .run();
    run.assert_exit(Exit::Success);
    let rows: Vec<String> = run
        .lines
        .iter()
        .map(|(_, l)| l)
        .filter(|l| l.contains("wal-bench: batch "))
        .map(|l| l[l.find("wal-bench:").unwrap_or(0)..].to_owned())
        .collect();
    assert_eq!(rows.len(), 3, "expected 3 rows:\n{}", run.console());
    println!("guest, {kind} disk, cache={cache:?} (as printed by the kernel):");
    for row in &rows {
        println!("  {row}");
    }
    rows
}
