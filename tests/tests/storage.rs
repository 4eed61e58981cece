//! The durable log on a real (emulated) disk: what a node acknowledged
//! survives `kill -9`, and a mid-log bit flip is refused, on each disk kind
//! (virtio-blk, NVMe, AHCI); a foreign or flush-less disk is refused with
//! a reason; a blank disk is formatted.
//!
//! The kernel's `wal-exercise` mode prints `wal: acked through index N term T`
//! only after the flush for that batch returned, and `wal: hard state term T
//! vote V` after the hard state's flush; every boot prints `storage:
//! recovered last index N ... hard state term T vote V ...`. These tests
//! hold the recovered values against the last promises seen before the kill.
//!
//! Disks are raw sparse images under `target/qemu-runs/<test>/`, attached
//! with `cache=writeback` so a guest flush is an `fdatasync` on the host
//! (see `DiskCache`).

use continuum_config::NodeId;
use continuum_harness::{blank_disk, workspace_root, DiskCache, DiskKind, Run, Vm, VmConfig};
use continuum_storage::layout::Geometry;
use continuum_storage::record::{decode_header, RecordHeader, FLAG_BATCH_END, HEADER_LEN};
use continuum_storage::BLOCK_SIZE;
use std::path::PathBuf;
use std::time::Duration;

/// Upper bound of the random delay between an ack and the kill (a few
/// exercise rounds under TCG).
const KILL_JITTER_US: u64 = 4000;

/// Disk size for the tests: small, but far more WAL than a test fills.
const DISK_MIB: u64 = 32;

fn disk_path(test: &str) -> PathBuf {
    let path = workspace_root()
        .join("target/qemu-runs")
        .join(test)
        .join("disk.img");
    blank_disk(&path, DISK_MIB);
    path
}

fn exercise_config(node: NodeId) -> String {
    format!("node_id = {node}\ncluster_id = 7\nmode = wal-exercise\n")
}

/// The number following `key` in `line`.
fn number_after(line: &str, key: &str) -> Option<u64> {
    let rest = &line[line.find(key)? + key.len()..];
    let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
    digits.parse().ok()
}

/// What a boot recovered, from `storage: recovered last index ...`.
#[derive(Debug, Clone, Copy)]
struct Recovered {
    last_index: u64,
    term: u64,
    vote: Option<u64>,
}

fn parse_recovered(line: &str) -> Recovered {
    let parse = |key| number_after(line, key).unwrap_or_else(|| panic!("no {key:?} in {line:?}"));
    Recovered {
        last_index: parse("last index "),
        term: parse("hard state term "),
        vote: number_after(line, " vote "),
    }
}

/// The kernel's exercise votes for `term % 5 + 1` in `term`
/// (`kernel/src/disk/exercise.rs`, `vote_for`).
fn vote_for(term: u64) -> u64 {
    term % 5 + 1
}

/// The strongest promise the console made: the last index and hard-state
/// term that a recovery must not fall below.
#[derive(Debug, Clone, Copy, Default)]
struct Promise {
    index: u64,
    term: u64,
    acks: usize,
}

fn promise_from(run: &Run, mut promise: Promise) -> Promise {
    for (_, line) in &run.lines {
        if let Some(k) = number_after(line, "wal: truncating from index ") {
            // A truncation may be durable before anything later is acked.
            promise.index = k - 1;
        } else if let Some(n) = number_after(line, "wal: acked through index ") {
            promise.index = n;
            promise.acks += 1;
        } else if let Some(t) = number_after(line, "wal: hard state term ") {
            promise.term = t;
        }
    }
    promise
}

fn boot_and_recover(vm: &mut Vm) -> Recovered {
    let (_, line) = vm.wait_for_line("storage: recovered last index");
    parse_recovered(&line)
}

#[test]
fn acknowledged_entries_and_votes_survive_kill_9() {
    survive_kill_9(DiskKind::Virtio, &[6, 25, 13, 40, 2, 60]);
}

#[test]
fn acknowledged_entries_and_votes_survive_kill_9_on_nvme() {
    survive_kill_9(DiskKind::Nvme, &[6, 25, 2, 40]);
}

#[test]
fn acknowledged_entries_and_votes_survive_kill_9_on_ahci() {
    survive_kill_9(DiskKind::Ahci, &[6, 25, 2, 40]);
}

/// Boots `wal-exercise` on a `kind` disk, kills it after each number of
/// acks in `kills` (plus jitter), and checks every recovery against the
/// promises seen before the kill.
fn survive_kill_9(kind: DiskKind, kills: &[usize]) {
    let name = format!("wal-kill-{kind}");
    let disk = disk_path(&name);
    let mut promise = Promise::default();
    // Kill after different amounts of work so the kill lands at different
    // points of the append/flush cycle.
    for (cycle, &acks_before_kill) in kills.iter().enumerate() {
        let mut vm = VmConfig::new(&format!("{name}-{cycle}"))
            .disk_of(kind, &disk, DiskCache::Writeback)
            .node_config(&exercise_config(1))
            .start();
        let recovered = boot_and_recover(&mut vm);
        let text = vm.console_text();
        assert_eq!(
            text.contains("storage: blank disk, formatted"),
            cycle == 0,
            "only the first boot formats:\n{text}"
        );
        assert!(
            recovered.last_index >= promise.index,
            "cycle {cycle}: recovered last index {} < {} acknowledged before the kill\n{text}",
            recovered.last_index,
            promise.index
        );
        assert!(
            recovered.term >= promise.term,
            "cycle {cycle}: recovered term {} < {} persisted before the kill\n{text}",
            recovered.term,
            promise.term
        );
        if recovered.term > 0 {
            assert_eq!(
                recovered.vote,
                Some(vote_for(recovered.term)),
                "cycle {cycle}: the vote of term {} did not survive\n{text}",
                recovered.term
            );
        }
        // The exercise re-reads the newest entries and halts if one differs.
        vm.wait_for_line("wal: verified ");
        vm.wait_for_nth_line("wal: acked through index", acks_before_kill);
        // Then a few hundred microseconds to milliseconds more, different
        // every run, so the kill also lands inside a write or a flush.
        let jitter = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos() as u64 % KILL_JITTER_US);
        eprintln!("cycle {cycle}: kill {jitter} us after ack #{acks_before_kill}");
        std::thread::sleep(Duration::from_micros(jitter));
        let run = vm.crash();
        assert!(
            !run.console().contains("refusing to start"),
            "{}",
            run.console()
        );
        promise = promise_from(
            &run,
            Promise {
                index: recovered.last_index,
                term: recovered.term,
                acks: 0,
            },
        );
        assert!(promise.acks >= acks_before_kill, "{promise:?}");
    }
    // A last boot checks the last kill.
    let mut vm = VmConfig::new(&format!("{name}-final"))
        .disk_of(kind, &disk, DiskCache::Writeback)
        .node_config(&exercise_config(1))
        .start();
    let recovered = boot_and_recover(&mut vm);
    assert!(
        recovered.last_index >= promise.index && recovered.term >= promise.term,
        "recovered {recovered:?} below the promise {promise:?}\n{}",
        vm.console_text()
    );
    vm.wait_for_line("wal: verified ");
}

/// The records of the current log, walked the way the store lays them out
/// (back to back, each batch starting on a block boundary), with their
/// byte offsets in the image.
fn wal_records(image: &[u8]) -> Vec<(usize, RecordHeader)> {
    let geometry = Geometry::for_capacity((image.len() / BLOCK_SIZE) as u64)
        .expect("test disk is large enough");
    let wal = geometry.wal_lba as usize * BLOCK_SIZE;
    let mut records = Vec::new();
    let mut offset = 0usize;
    let mut next_index = None;
    while wal + offset + HEADER_LEN <= image.len() {
        let Ok(header) = decode_header(&image[wal + offset..]) else {
            break;
        };
        if next_index.is_some_and(|n| n != header.index) {
            break; // stale bytes beyond the current log
        }
        next_index = Some(header.index + 1);
        records.push((wal + offset, header));
        offset += header.record_len();
        if header.flags & FLAG_BATCH_END != 0 {
            offset = offset.next_multiple_of(BLOCK_SIZE);
        }
    }
    records
}

#[test]
fn corrupt_record_in_the_middle_is_refused() {
    corrupt_record_is_refused(DiskKind::Virtio);
}

#[test]
fn corrupt_record_in_the_middle_is_refused_on_nvme() {
    corrupt_record_is_refused(DiskKind::Nvme);
}

#[test]
fn corrupt_record_in_the_middle_is_refused_on_ahci() {
    corrupt_record_is_refused(DiskKind::Ahci);
}

fn corrupt_record_is_refused(kind: DiskKind) {
    let name = format!("wal-corrupt-{kind}");
    let disk = disk_path(&name);
    let mut vm = VmConfig::new(&format!("{name}-fill"))
        .disk_of(kind, &disk, DiskCache::Writeback)
        .node_config(&exercise_config(1))
        .start();
    vm.wait_for_nth_line("wal: acked through index", 20);
    vm.kill();

    let mut image = std::fs::read(&disk).expect("read the disk image");
    let records = wal_records(&image);
    assert!(
        records.len() >= 20,
        "only {} records on disk",
        records.len()
    );
    let (offset, header) = records[records.len() / 2];
    // One bit of one payload byte: only the checksum can tell.
    image[offset + HEADER_LEN] ^= 0x01;
    std::fs::write(&disk, &image).expect("write the disk image");

    let mut vm = VmConfig::new(&format!("{name}-boot"))
        .disk_of(kind, &disk, DiskCache::Writeback)
        .node_config(&exercise_config(1))
        .timeout(Duration::from_secs(60))
        .start();
    let (_, line) = vm.wait_for_line("storage: refusing to start");
    assert!(
        line.contains(&format!("WAL record {} at byte", header.index))
            && line.contains("corrupt")
            && line.contains("flushed"),
        "the refusal must name the record and why: {line}"
    );
    vm.wait_for_line("halted");
    let text = vm.console_text();
    assert!(
        !text.contains("storage: recovered") && !text.contains("wal: acked"),
        "a node with a damaged log must not run:\n{text}"
    );
}

#[test]
fn blank_disk_is_formatted_and_only_its_node_may_use_it() {
    let disk = disk_path("wal-owner");
    let node = |id: NodeId| format!("node_id = {id}\ncluster_id = 7\n");

    let mut vm = VmConfig::new("wal-owner-format")
        .disk(&disk, DiskCache::Writeback)
        .node_config(&node(1))
        .start();
    vm.wait_for_line("storage: blank disk, formatted (epoch 1)");
    let recovered = boot_and_recover(&mut vm);
    assert_eq!((recovered.last_index, recovered.term), (0, 0));
    vm.kill();

    let mut vm = VmConfig::new("wal-owner-reopen")
        .disk(&disk, DiskCache::Writeback)
        .node_config(&node(1))
        .start();
    boot_and_recover(&mut vm);
    let text = vm.console_text();
    assert!(
        text.contains("storage: format epoch 1") && !text.contains("formatted"),
        "a formatted disk is opened, not formatted again:\n{text}"
    );
    vm.kill();

    let mut vm = VmConfig::new("wal-owner-wrong-node")
        .disk(&disk, DiskCache::Writeback)
        .node_config(&node(2))
        .start();
    let (_, line) = vm.wait_for_line("storage: refusing to start");
    assert!(
        line.contains("disk belongs to another node")
            && line.contains("node 1")
            && line.contains("node 2"),
        "{line}"
    );
    vm.wait_for_line("halted");
    assert!(!vm.console_text().contains("storage: recovered"));
    vm.kill();

    let mut vm = VmConfig::new("wal-owner-wrong-cluster")
        .disk(&disk, DiskCache::Writeback)
        .node_config("node_id = 1\ncluster_id = 8\n")
        .start();
    let (_, line) = vm.wait_for_line("storage: refusing to start");
    assert!(line.contains("disk belongs to another cluster"), "{line}");
}

#[test]
fn disk_without_cache_flush_is_refused() {
    // A write-through drive with config-wce=off: no VIRTIO_BLK_F_FLUSH.
    let disk = disk_path("wal-no-flush");
    let mut vm = VmConfig::new("wal-no-flush")
        .disk(&disk, DiskCache::WritethroughNoFlush)
        .node_config(&exercise_config(1))
        .start();
    let (_, line) = vm.wait_for_line("storage: refusing to start");
    assert!(
        line.contains("no cache-flush command") && line.contains("unsafe_no_flush"),
        "{line}"
    );
    vm.wait_for_line("halted");
    vm.kill();

    // Explicitly unsafe: runs, and says so.
    let mut vm = VmConfig::new("wal-no-flush-unsafe")
        .disk(&disk, DiskCache::WritethroughNoFlush)
        .node_config(&format!("{}unsafe_no_flush = true\n", exercise_config(1)))
        .start();
    vm.wait_for_line("storage: UNSAFE");
    vm.wait_for_line("wal: acked through index");
}
