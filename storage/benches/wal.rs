//! `cargo bench -p continuum-storage` (harness = false): WAL append
//! throughput on MemDisk, checksum costs, and the host's raw fsync latency
//! plus store appends on a real file (`File::sync_data`), the physical
//! floor the kernel's virtio-blk benchmark is compared against.
//!
//! Each measurement is time-bounded (~1 s) to keep the run short on a
//! shared machine. `CONTINUUM_BENCH_DIR` picks where the fsync test file
//! goes (default: the cargo target directory, a real disk; not /tmp, which
//! may be tmpfs).

use std::fs::{File, OpenOptions as FsOpenOptions};
use std::hint::black_box;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use continuum_storage::crc32c::crc32c;
use continuum_storage::{
    BlockDevice, DeviceError, Identity, MemDisk, Record, Store, StoreError, BLOCK_SIZE,
};
use sha2::{Digest, Sha256};

const ID: Identity = Identity {
    cluster_id: 1,
    node_id: 1,
};
/// Payload per entry: about one signed bank transfer.
const PAYLOAD: usize = 200;
const BUDGET: Duration = Duration::from_millis(1000);

fn record(index: u64) -> Record {
    Record {
        index,
        term: 1,
        kind: 0,
        chain_hash: [index as u8; 32],
        payload: vec![index as u8; PAYLOAD],
    }
}

/// Append batches of `batch` records + sync until the budget or the WAL
/// runs out; returns (records, elapsed, per-batch sync latencies).
fn run_appends<D: BlockDevice>(
    store: &mut Store<D>,
    batch: usize,
    budget: Duration,
) -> (u64, Duration, Vec<Duration>) {
    let start = Instant::now();
    let mut syncs = Vec::new();
    let mut n = 0u64;
    while start.elapsed() < budget {
        let first = store.last_index() + 1;
        let records: Vec<Record> = (first..first + batch as u64).map(record).collect();
        match store.append(&records) {
            Ok(()) => {}
            Err(StoreError::WalFull { .. }) => break,
            Err(e) => panic!("append: {e}"),
        }
        let t = Instant::now();
        store.sync().expect("sync");
        syncs.push(t.elapsed());
        n += batch as u64;
    }
    (n, start.elapsed(), syncs)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i]
}

fn memdisk_appends() {
    println!("== WAL appends on MemDisk ({PAYLOAD}-byte payloads, append + sync per batch)");
    for batch in [1usize, 16, 256] {
        let disk = MemDisk::new(128 * 1024); // 64 MiB
        let (mut store, _) = Store::format(disk, ID).expect("format");
        let (n, elapsed, _) = run_appends(&mut store, batch, BUDGET);
        let secs = elapsed.as_secs_f64();
        println!(
            "batch {batch:>3}: {:>10.0} appends/s  {:>7.1} MB/s of payload  ({n} records in {:.2} s)",
            n as f64 / secs,
            n as f64 * PAYLOAD as f64 / secs / 1e6,
            secs
        );
    }
}

/// Straightforward FIPS 180-4 SHA-256 compression, standing in for the
/// kernel's `force-soft` sha2 backend (the host's sha2 uses SHA-NI).
fn soft_sha256(msg: &[u8]) -> [u8; 32] {
    const K: [u32; 64] = [
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
        0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
        0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
        0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
        0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
        0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
        0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
        0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
        0xc67178f2,
    ];
    let mut h: [u32; 8] = [
        0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab,
        0x5be0cd19,
    ];
    let mut data = msg.to_vec();
    data.push(0x80);
    while data.len() % 64 != 56 {
        data.push(0);
    }
    data.extend_from_slice(&((msg.len() as u64) * 8).to_be_bytes());
    for chunk in data.chunks_exact(64) {
        let mut w = [0u32; 64];
        for (i, word) in chunk.chunks_exact(4).enumerate() {
            w[i] = u32::from_be_bytes([word[0], word[1], word[2], word[3]]);
        }
        for i in 16..64 {
            let s0 = w[i - 15].rotate_right(7) ^ w[i - 15].rotate_right(18) ^ (w[i - 15] >> 3);
            let s1 = w[i - 2].rotate_right(17) ^ w[i - 2].rotate_right(19) ^ (w[i - 2] >> 10);
            w[i] = w[i - 16]
                .wrapping_add(s0)
                .wrapping_add(w[i - 7])
                .wrapping_add(s1);
        }
        let [mut a, mut b, mut c, mut d, mut e, mut f, mut g, mut hh] = h;
        for i in 0..64 {
            let s1 = e.rotate_right(6) ^ e.rotate_right(11) ^ e.rotate_right(25);
            let ch = (e & f) ^ (!e & g);
            let t1 = hh
                .wrapping_add(s1)
                .wrapping_add(ch)
                .wrapping_add(K[i])
                .wrapping_add(w[i]);
            let s0 = a.rotate_right(2) ^ a.rotate_right(13) ^ a.rotate_right(22);
            let maj = (a & b) ^ (a & c) ^ (b & c);
            let t2 = s0.wrapping_add(maj);
            hh = g;
            g = f;
            f = e;
            e = d.wrapping_add(t1);
            d = c;
            c = b;
            b = a;
            a = t1.wrapping_add(t2);
        }
        for (x, y) in h.iter_mut().zip([a, b, c, d, e, f, g, hh]) {
            *x = x.wrapping_add(y);
        }
    }
    let mut out = [0u8; 32];
    for (i, x) in h.iter().enumerate() {
        out[i * 4..i * 4 + 4].copy_from_slice(&x.to_be_bytes());
    }
    out
}

fn time_per_kib(len: usize, mut f: impl FnMut(&[u8])) -> f64 {
    let buf: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
    let start = Instant::now();
    let mut iters = 0u64;
    while start.elapsed() < Duration::from_millis(300) {
        for _ in 0..64 {
            f(black_box(&buf));
        }
        iters += 64;
    }
    start.elapsed().as_nanos() as f64 / iters as f64 / (len as f64 / 1024.0)
}

fn checksums() {
    println!("== checksum cost (ns per KiB; lower is better)");
    let probe = b"continuum";
    assert_eq!(soft_sha256(probe)[..], Sha256::digest(probe)[..]);
    for len in [296usize, 1024, 64 * 1024] {
        let crc = time_per_kib(len, |b| {
            black_box(crc32c(b));
        });
        let sha_hw = time_per_kib(len, |b| {
            black_box(Sha256::digest(b));
        });
        let sha_soft = time_per_kib(len, |b| {
            black_box(soft_sha256(b));
        });
        println!(
            "{len:>6}-byte buffers: CRC-32C {crc:>7.0} ns/KiB ({:.2} GB/s) | SHA-256 sha2 crate (host, SHA-NI if present) {sha_hw:>7.0} ns/KiB | SHA-256 portable soft {sha_soft:>7.0} ns/KiB",
            1024.0 / crc
        );
    }
}

/// A file-backed block device for the host benchmark: `flush` is
/// `File::sync_data` (fdatasync).
struct FileDisk {
    file: File,
    blocks: u64,
}

impl BlockDevice for FileDisk {
    fn block_size(&self) -> usize {
        BLOCK_SIZE
    }
    fn capacity_blocks(&self) -> u64 {
        self.blocks
    }
    fn read(&mut self, lba: u64, buf: &mut [u8]) -> Result<(), DeviceError> {
        continuum_storage::check_request(lba, buf.len(), self.blocks)?;
        self.file
            .read_exact_at(buf, lba * BLOCK_SIZE as u64)
            .map_err(|e| DeviceError::Io {
                code: e.raw_os_error().unwrap_or(0) as u32,
            })
    }
    fn write(&mut self, lba: u64, buf: &[u8]) -> Result<(), DeviceError> {
        continuum_storage::check_request(lba, buf.len(), self.blocks)?;
        self.file
            .write_all_at(buf, lba * BLOCK_SIZE as u64)
            .map_err(|e| DeviceError::Io {
                code: e.raw_os_error().unwrap_or(0) as u32,
            })
    }
    fn flush(&mut self) -> Result<(), DeviceError> {
        self.file.sync_data().map_err(|e| DeviceError::Io {
            code: e.raw_os_error().unwrap_or(0) as u32,
        })
    }
    fn supports_flush(&self) -> bool {
        true
    }
}

fn bench_path() -> PathBuf {
    let dir = std::env::var_os("CONTINUUM_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/continuum-storage-bench")
        });
    std::fs::create_dir_all(&dir).expect("bench dir");
    dir.join("wal.img")
}

fn file_disk(path: &PathBuf, bytes: u64) -> FileDisk {
    let file = FsOpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
        .expect("open bench file");
    file.set_len(bytes).expect("size bench file");
    // Allocate the blocks up front so fsync measures data, not extent
    // allocation metadata.
    let zero = vec![0u8; 1 << 20];
    for off in (0..bytes).step_by(zero.len()) {
        file.write_all_at(&zero, off).expect("prefill");
    }
    file.sync_all().expect("sync prefill");
    FileDisk {
        file,
        blocks: bytes / BLOCK_SIZE as u64,
    }
}

fn host_fsync() {
    let path = bench_path();
    println!("== host file {} (fdatasync)", path.display());
    let mut disk = file_disk(&path, 32 << 20);
    // Raw floor: one 512-byte write + fdatasync, sequential offsets.
    let block = [0xA5u8; BLOCK_SIZE];
    let mut lat = Vec::new();
    let start = Instant::now();
    let mut lba = 0;
    while start.elapsed() < BUDGET && lat.len() < 2000 {
        disk.write(lba, &block).unwrap();
        let t = Instant::now();
        disk.flush().unwrap();
        lat.push(t.elapsed());
        lba += 1;
    }
    lat.sort();
    println!(
        "raw 512-byte write + fdatasync: p50 {:?}  p99 {:?}  ({} samples)",
        percentile(&lat, 0.5),
        percentile(&lat, 0.99),
        lat.len()
    );
    let (mut store, _) = Store::format(disk, ID).expect("format file disk");
    for batch in [1usize, 16, 256] {
        store.truncate_from(1).expect("reset the log");
        let (n, elapsed, mut syncs) = run_appends(&mut store, batch, BUDGET);
        syncs.sort();
        println!(
            "store batch {batch:>3}: {:>9.0} appends/s  sync p50 {:?}  p99 {:?}  ({} batches)",
            n as f64 / elapsed.as_secs_f64(),
            percentile(&syncs, 0.5),
            percentile(&syncs, 0.99),
            syncs.len()
        );
    }
    drop(store);
    let _ = std::fs::remove_file(&path);
}

/// Boot-time cost: open (recovery scan) of a MemDisk holding a full log.
fn recovery_scan() {
    println!("== recovery scan on MemDisk (open of a disk holding N records)");
    let disk = MemDisk::new(128 * 1024); // 64 MiB
    let (mut store, _) = Store::format(disk, ID).expect("format");
    let mut next = 1u64;
    loop {
        let records: Vec<Record> = (next..next + 256).map(record).collect();
        if store.append(&records).is_err() {
            break;
        }
        store.sync().expect("sync");
        next += 256;
    }
    let mut disk = store.into_device();
    let mut times = Vec::new();
    let mut records = 0;
    for _ in 0..5 {
        let t = Instant::now();
        let (store, report) = Store::open(&mut disk, ID).expect("open");
        times.push(t.elapsed());
        records = report.records;
        drop(store);
    }
    times.sort();
    println!(
        "{records} records ({} MiB of WAL): open median {:?} ({:.0} ns/record)",
        (records * (PAYLOAD as u64 + 92)) >> 20,
        times[2],
        times[2].as_nanos() as f64 / records as f64
    );
}

fn main() {
    memdisk_appends();
    recovery_scan();
    checksums();
    host_fsync();
}
