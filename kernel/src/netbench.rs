//! Network benchmarks between two nodes, run by the lowest node id when the
//! config says `mode = net-bench` (authenticated peer messages through
//! smoltcp) or `mode = net-bench-raw` (raw Ethernet frames through the NIC
//! trait: the floor that QEMU and the fabric impose).
//!
//! Two phases: [`LATENCY_ROUND_TRIPS`] closed-loop round trips (one in
//! flight) for the RTT distribution, then [`THROUGHPUT_ROUND_TRIPS`] with
//! [`THROUGHPUT_WINDOW`] in flight for the message rate. A round trip not
//! answered within [`LOSS_TIMEOUT_US`] counts as lost and frees its slot.

use crate::arch::x86_64::debug_exit::{self, ExitCode};
use crate::arch::x86_64::device_irq::DeviceIrq;
use crate::{executor, time};
use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use continuum_config::Config;
use continuum_net::nic::{Nic, MAX_FRAME_BYTES};
use core::time::Duration;

pub const LATENCY_ROUND_TRIPS: u64 = 1_000;
pub const THROUGHPUT_ROUND_TRIPS: u64 = 10_000;
pub const THROUGHPUT_WINDOW: usize = 32;
pub const LOSS_TIMEOUT_US: u64 = 500_000;
/// Ethertype for raw benchmark frames (IEEE 802 local experimental).
const ETHERTYPE_BENCH: [u8; 2] = [0x88, 0xb5];
/// Raw benchmark frame: 14-byte header + 8-byte sequence number + padding
/// to the size of a small authenticated peer datagram.
const RAW_FRAME_BYTES: usize = 128;

/// The two-phase round-trip driver, independent of the transport.
pub struct NetBench {
    latency: Vec<u64>,
    in_flight: BTreeMap<u64, u64>,
    next_seq: u64,
    answered: u64,
    lost: u64,
    throughput_started_us: Option<u64>,
    throughput_elapsed_us: u64,
}

impl NetBench {
    pub fn new() -> NetBench {
        NetBench {
            latency: Vec::with_capacity(LATENCY_ROUND_TRIPS as usize),
            in_flight: BTreeMap::new(),
            next_seq: 1,
            answered: 0,
            lost: 0,
            throughput_started_us: None,
            throughput_elapsed_us: 0,
        }
    }

    fn in_latency_phase(&self) -> bool {
        self.next_seq <= LATENCY_ROUND_TRIPS
    }

    /// Sequence numbers to send now.
    pub fn due(&mut self, now_us: u64) -> Vec<u64> {
        let expired: Vec<u64> = self
            .in_flight
            .iter()
            .filter(|(_, &sent)| now_us - sent > LOSS_TIMEOUT_US)
            .map(|(&seq, _)| seq)
            .collect();
        for seq in expired {
            self.in_flight.remove(&seq);
            self.lost += 1;
        }
        let total = LATENCY_ROUND_TRIPS + THROUGHPUT_ROUND_TRIPS;
        let window = if self.in_latency_phase() {
            1
        } else {
            THROUGHPUT_WINDOW
        };
        // The latency phase drains before the throughput phase starts.
        if !self.in_latency_phase() && self.throughput_started_us.is_none() {
            if !self.in_flight.is_empty() {
                return Vec::new();
            }
            self.throughput_started_us = Some(now_us);
        }
        let mut due = Vec::new();
        while self.in_flight.len() < window && self.next_seq <= total {
            if self.next_seq == LATENCY_ROUND_TRIPS + 1 && self.throughput_started_us.is_none() {
                break;
            }
            self.in_flight.insert(self.next_seq, now_us);
            due.push(self.next_seq);
            self.next_seq += 1;
        }
        due
    }

    pub fn on_reply(&mut self, seq: u64, now_us: u64) {
        let Some(sent) = self.in_flight.remove(&seq) else {
            return; // late reply to a round trip already counted lost
        };
        self.answered += 1;
        if seq <= LATENCY_ROUND_TRIPS {
            self.latency.push(now_us - sent);
        } else if let Some(start) = self.throughput_started_us {
            self.throughput_elapsed_us = now_us - start;
        }
    }

    pub fn done(&self) -> bool {
        self.next_seq > LATENCY_ROUND_TRIPS + THROUGHPUT_ROUND_TRIPS && self.in_flight.is_empty()
    }

    /// Prints the result line the bench command parses, then ends the run.
    pub fn finish(mut self, what: &str) -> ! {
        self.latency.sort_unstable();
        let pct = |p: usize| {
            self.latency
                .get((self.latency.len() * p / 100).min(self.latency.len().saturating_sub(1)))
                .copied()
                .unwrap_or(0)
        };
        let throughput_answered = self.answered.saturating_sub(self.latency.len() as u64);
        let round_trips_per_s = throughput_answered * 1_000_000 / self.throughput_elapsed_us.max(1);
        log::info!(
            "net-bench {what}: rtt_p50_us={} rtt_p99_us={} round_trips_per_s={round_trips_per_s} messages_per_s={} lost={} window={THROUGHPUT_WINDOW}",
            pct(50),
            pct(99),
            round_trips_per_s * 2,
            self.lost
        );
        debug_exit::exit(ExitCode::Success)
    }
}

/// The peer to measure against, if this node is the lowest id (the one
/// that measures).
pub fn bench_peer(config: &Config) -> Option<continuum_config::NodeId> {
    let lowest_peer = config.peers().map(|p| p.id).min()?;
    (config.node_id < lowest_peer).then_some(lowest_peer)
}

/// `mode = net-bench-raw`: claims the first NIC and starts [`raw`] on it,
/// without smoltcp; halts when there is no NIC or it does not start.
pub fn start_raw(config: &Config) {
    let Some(device) = crate::drivers::claim_nics().into_iter().next() else {
        crate::halt_with(format_args!("net-bench-raw: no NIC"));
    };
    match device.start() {
        Ok((nic, irq)) => executor::spawn(raw(nic, irq, bench_peer(config).is_some())),
        Err(error) => crate::halt_with(format_args!("net-bench-raw: NIC failed: {error}")),
    }
}

/// The raw floor: echo frames of our ethertype; the initiator measures.
pub async fn raw<N: Nic>(mut nic: N, irq: Option<DeviceIrq>, initiator: bool) {
    let mac = nic.mac();
    let mut bench = NetBench::new();
    let mut frame = [0u8; MAX_FRAME_BYTES];
    let mut out = [0u8; RAW_FRAME_BYTES];
    log::info!(
        "net-bench raw: {}",
        if initiator { "measuring" } else { "echoing" }
    );
    // Give the other VM time to boot before the clock starts.
    executor::sleep(Duration::from_secs(2)).await;
    loop {
        nic.ack_interrupt();
        let now_us = time::monotonic_ns() / 1_000;
        while let Some(len) = nic.receive(&mut frame) {
            if len < 22 || frame[12..14] != ETHERTYPE_BENCH || frame[6..12] == mac {
                continue;
            }
            if initiator {
                let seq = u64::from_be_bytes(frame[14..22].try_into().unwrap_or_default());
                bench.on_reply(seq, now_us);
            } else {
                out[..len.min(RAW_FRAME_BYTES)].copy_from_slice(&frame[..len.min(RAW_FRAME_BYTES)]);
                out[..6].copy_from_slice(&frame[6..12]);
                out[6..12].copy_from_slice(&mac);
                let _ = nic.transmit(&out[..len.min(RAW_FRAME_BYTES)]);
            }
        }
        if initiator {
            if bench.done() {
                bench.finish("raw frames");
            }
            for seq in bench.due(now_us) {
                out[..6].copy_from_slice(&[0xff; 6]);
                out[6..12].copy_from_slice(&mac);
                out[12..14].copy_from_slice(&ETHERTYPE_BENCH);
                out[14..22].copy_from_slice(&seq.to_be_bytes());
                let _ = nic.transmit(&out);
            }
        }
        match &irq {
            Some(irq) => {
                let wait = irq.wait();
                let timeout = executor::sleep(Duration::from_millis(10));
                crate::network::first_of(wait, timeout).await;
            }
            None => executor::sleep(Duration::from_millis(1)).await,
        }
    }
}
