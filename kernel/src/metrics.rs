//! The kernel's own measurements for `/metrics`: where a node's time goes
//! on the commit path (issue 15, step 0).
//!
//! Each measurement is a named [`Histogram`] static with fixed buckets
//! ([`DURATION_BUCKETS_US`] for times, [`COUNT_BUCKETS`] for sizes), or a
//! [`WakeCounters`] for why the network task woke. The glue records into
//! them at the seams it already has — the network loop, the disk
//! (`disk::node_disk::NodeDisk`), the calls into the consensus node — and
//! [`render`] prints them in the Prometheus text format. Recording takes a
//! spin lock that only tasks take (never an interrupt handler) on the one
//! CPU, so it cannot contend.

use alloc::string::String;
use core::fmt::Write;
use spin::Mutex;

/// Upper bounds (µs) of the duration buckets: 10 µs to 1 s.
pub const DURATION_BUCKETS_US: [u64; 16] = [
    10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000,
    500_000, 1_000_000,
];
/// Upper bounds of the count buckets (entries per Ready and the like).
pub const COUNT_BUCKETS: [u64; 16] = [0, 1, 2, 3, 4, 5, 6, 8, 10, 12, 16, 24, 32, 64, 128, 256];
/// Buckets per histogram (both kinds have the same number).
const BUCKETS: usize = DURATION_BUCKETS_US.len();

/// What a histogram counts, which fixes its buckets and unit.
#[derive(Clone, Copy)]
pub enum Unit {
    /// Microseconds recorded, exposed in seconds.
    Micros,
    /// Plain counts.
    Count,
}

/// A fixed-bucket histogram (Prometheus semantics: cumulative `le`
/// buckets, a sum and a count).
pub struct Histogram {
    name: &'static str,
    help: &'static str,
    unit: Unit,
    /// Observations per bucket (not cumulative); the last is `+Inf`.
    counts: [u64; BUCKETS + 1],
    sum: u64,
    count: u64,
}

impl Histogram {
    pub const fn new(name: &'static str, help: &'static str, unit: Unit) -> Histogram {
        Histogram {
            name,
            help,
            unit,
            counts: [0; BUCKETS + 1],
            sum: 0,
            count: 0,
        }
    }

    fn bounds(&self) -> &'static [u64; BUCKETS] {
        match self.unit {
            Unit::Micros => &DURATION_BUCKETS_US,
            Unit::Count => &COUNT_BUCKETS,
        }
    }

    pub fn record(&mut self, value: u64) {
        let bucket = self
            .bounds()
            .iter()
            .position(|&b| value <= b)
            .unwrap_or(BUCKETS);
        self.counts[bucket] += 1;
        self.sum = self.sum.saturating_add(value);
        self.count += 1;
    }

    fn render(&self, out: &mut String, node: continuum_config::NodeId) {
        let (name, kind) = (self.name, "histogram");
        let _ = writeln!(
            out,
            "# HELP continuum_{name} {}\n# TYPE continuum_{name} {kind}",
            self.help
        );
        let mut cumulative = 0;
        for (i, bound) in self.bounds().iter().enumerate() {
            cumulative += self.counts[i];
            let _ = write!(out, "continuum_{name}_bucket{{node=\"{node}\",le=\"");
            self.value(out, *bound);
            let _ = writeln!(out, "\"}} {cumulative}");
        }
        let _ = writeln!(
            out,
            "continuum_{name}_bucket{{node=\"{node}\",le=\"+Inf\"}} {}",
            self.count
        );
        let _ = write!(out, "continuum_{name}_sum{{node=\"{node}\"}} ");
        self.value(out, self.sum);
        let _ = writeln!(
            out,
            "\ncontinuum_{name}_count{{node=\"{node}\"}} {}",
            self.count
        );
    }

    /// A value in the exposed unit (seconds for durations).
    fn value(&self, out: &mut String, v: u64) {
        let _ = match self.unit {
            Unit::Micros => write!(out, "{}.{:06}", v / 1_000_000, v % 1_000_000),
            Unit::Count => write!(out, "{v}"),
        };
    }
}

/// One pass of the network task's loop (receive, peers, status, clients,
/// consensus, transmit), from waking to going back to sleep.
pub static LOOP_PASS: Mutex<Histogram> = Mutex::new(Histogram::new(
    "loop_pass_seconds",
    "One pass of the network task loop",
    Unit::Micros,
));
/// A WAL (entry) block write, excluding hard-state slots.
pub static DISK_WRITE: Mutex<Histogram> = Mutex::new(Histogram::new(
    "disk_write_seconds",
    "One WAL block-range write (hard-state slots excluded)",
    Unit::Micros,
));
/// A hard-state slot write (LBA 2 or 3).
pub static SLOT_WRITE: Mutex<Histogram> = Mutex::new(Histogram::new(
    "slot_write_seconds",
    "One hard-state slot write",
    Unit::Micros,
));
/// A disk cache flush.
pub static DISK_FLUSH: Mutex<Histogram> = Mutex::new(Histogram::new(
    "flush_seconds",
    "Disk cache-flush latency",
    Unit::Micros,
));
/// One call of the Ready loop (`consensus::drive`) that found work: every
/// Ready it finds, each persisted (disk time included), its entries
/// applied (signatures verified), clients answered.
pub static DRIVE: Mutex<Histogram> = Mutex::new(Histogram::new(
    "drive_seconds",
    "One Ready-loop call: persist, apply (signature verify included), replies",
    Unit::Micros,
));
/// The part of a Ready-loop call not spent in disk writes and flushes:
/// applying entries (each transfer's Ed25519 verify and the ledger update),
/// Raft bookkeeping, encoding envelopes.
pub static APPLY: Mutex<Histogram> = Mutex::new(Histogram::new(
    "drive_cpu_seconds",
    "Ready-loop time outside the disk: apply with signature verify, bookkeeping",
    Unit::Micros,
));
/// A Ready-loop call that took a snapshot: the ledger's encoding, the
/// snapshot write and compaction, and the rest of that call.
pub static SNAPSHOT_DRIVE: Mutex<Histogram> = Mutex::new(Histogram::new(
    "snapshot_drive_seconds",
    "One Ready-loop call that took a snapshot (encode, write, compact, the rest of the call)",
    Unit::Micros,
));
/// Handing one client request to the node: decoding, admission (the
/// request's Ed25519 verify) and proposing or forwarding it.
pub static ADMIT: Mutex<Histogram> = Mutex::new(Histogram::new(
    "client_admit_seconds",
    "One client request handed to the node: admission verify and propose/forward",
    Unit::Micros,
));
/// Entries written to the WAL per Ready-loop call that wrote any, on the
/// leader.
pub static LEADER_ENTRIES: Mutex<Histogram> = Mutex::new(Histogram::new(
    "leader_entries_per_drive",
    "WAL entries written per Ready-loop call that wrote any, as leader",
    Unit::Count,
));
/// The same on a follower.
pub static FOLLOWER_ENTRIES: Mutex<Histogram> = Mutex::new(Histogram::new(
    "follower_entries_per_drive",
    "WAL entries written per Ready-loop call that wrote any, as follower",
    Unit::Count,
));
/// Entries applied per Ready-loop call that applied any.
pub static APPLIED_ENTRIES: Mutex<Histogram> = Mutex::new(Histogram::new(
    "applied_entries_per_drive",
    "Entries applied per Ready-loop call that applied any",
    Unit::Count,
));

/// The leader's entries through the pipeline: µs from proposal to each
/// stage (`continuum_node::stages`), one histogram per stage.
pub static STAGE_SENT: Mutex<Histogram> = Mutex::new(Histogram::new(
    "stage_sent_seconds",
    "Leader entry: proposal to its first AppendEntries handed to the NIC",
    Unit::Micros,
));
pub static STAGE_PERSISTED: Mutex<Histogram> = Mutex::new(Histogram::new(
    "stage_persisted_seconds",
    "Leader entry: proposal to the leader's own write and flush done",
    Unit::Micros,
));
pub static STAGE_FIRST_ACK: Mutex<Histogram> = Mutex::new(Histogram::new(
    "stage_first_ack_seconds",
    "Leader entry: proposal to the first follower's ack stepped",
    Unit::Micros,
));
pub static STAGE_COMMITTED: Mutex<Histogram> = Mutex::new(Histogram::new(
    "stage_committed_seconds",
    "Leader entry: proposal to committed",
    Unit::Micros,
));
pub static STAGE_APPLIED: Mutex<Histogram> = Mutex::new(Histogram::new(
    "stage_applied_seconds",
    "Leader entry: proposal to applied by the bank",
    Unit::Micros,
));
pub static STAGE_REPLIED: Mutex<Histogram> = Mutex::new(Histogram::new(
    "stage_replied_seconds",
    "Leader entry: proposal to the client reply handed over (writes this node took)",
    Unit::Micros,
));

/// Folds finished stage samples into the stage histograms.
pub fn record_stages(samples: impl IntoIterator<Item = continuum_node::StageSample>) {
    for s in samples {
        for (value, histogram) in [
            (s.sent, &STAGE_SENT),
            (s.persisted, &STAGE_PERSISTED),
            (s.first_ack, &STAGE_FIRST_ACK),
            (s.committed, &STAGE_COMMITTED),
            (s.applied, &STAGE_APPLIED),
            (s.replied, &STAGE_REPLIED),
        ] {
            if let Some(v) = value {
                histogram.lock().record(v);
            }
        }
    }
}

/// Why the network task woke up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wake {
    /// A NIC interrupt (either interface).
    Interrupt,
    /// The sleep ended: a ping, Raft tick, smoltcp timer or status deadline
    /// was due (or the polled-NIC fallback period passed).
    Timer,
    /// No sleep at all: something was due already (a client backlog, a
    /// timer in the past).
    Immediate,
}

/// Wake-ups of the network task by cause.
pub struct WakeCounters {
    interrupt: u64,
    timer: u64,
    immediate: u64,
}

impl WakeCounters {
    pub fn record(&mut self, wake: Wake) {
        match wake {
            Wake::Interrupt => self.interrupt += 1,
            Wake::Timer => self.timer += 1,
            Wake::Immediate => self.immediate += 1,
        }
    }
}

pub static WAKES: Mutex<WakeCounters> = Mutex::new(WakeCounters {
    interrupt: 0,
    timer: 0,
    immediate: 0,
});

/// Disk time (µs) spent since boot in writes and flushes, so a caller can
/// subtract what a span of its own spent on the disk.
static DISK_BUSY_US: Mutex<u64> = Mutex::new(0);

/// Records a block write at `lba` that took `micros`.
pub fn record_write(lba: u64, micros: u64) {
    if crate::disk::node_disk::is_slot_lba(lba) {
        SLOT_WRITE.lock().record(micros);
    } else {
        DISK_WRITE.lock().record(micros);
    }
    *DISK_BUSY_US.lock() += micros;
}

/// Records a flush that took `micros`.
pub fn record_flush(micros: u64) {
    DISK_FLUSH.lock().record(micros);
    *DISK_BUSY_US.lock() += micros;
}

/// Disk time so far (see [`DISK_BUSY_US`]).
pub fn disk_busy_us() -> u64 {
    *DISK_BUSY_US.lock()
}

/// Microseconds since `started_ns` (a `time::monotonic_ns` reading).
pub fn micros_since(started_ns: u64) -> u64 {
    crate::time::monotonic_ns().saturating_sub(started_ns) / 1_000
}

/// Every kernel measurement in the Prometheus text format.
pub fn render(out: &mut String, node: continuum_config::NodeId) {
    for histogram in [
        &LOOP_PASS,
        &DISK_WRITE,
        &SLOT_WRITE,
        &DISK_FLUSH,
        &DRIVE,
        &APPLY,
        &SNAPSHOT_DRIVE,
        &ADMIT,
        &LEADER_ENTRIES,
        &FOLLOWER_ENTRIES,
        &APPLIED_ENTRIES,
        &STAGE_SENT,
        &STAGE_PERSISTED,
        &STAGE_FIRST_ACK,
        &STAGE_COMMITTED,
        &STAGE_APPLIED,
        &STAGE_REPLIED,
    ] {
        histogram.lock().render(out, node);
    }
    let w = WAKES.lock();
    let _ = writeln!(
        out,
        "# HELP continuum_wakeups_total Network task wake-ups by cause\n# TYPE continuum_wakeups_total counter"
    );
    for (cause, n) in [
        ("interrupt", w.interrupt),
        ("timer", w.timer),
        ("immediate", w.immediate),
    ] {
        let _ = writeln!(
            out,
            "continuum_wakeups_total{{node=\"{node}\",cause=\"{cause}\"}} {n}"
        );
    }
}
