//! `GET /status`: the node's state as one JSON document, for people and
//! for the harness (`continuum cluster status`, the QEMU tests).
//!
//! The network members come from the task's [`NetworkStatus`](super::super::NetworkStatus), the
//! `"raft"` member from the consensus node (read under its lock through
//! [`consensus::with_node`]), or `null` when no node runs. Field names and
//! order are an interface: the tests and the CLI read them.
//!
//! Hand-written JSON: every value is a number, a boolean, or a string we
//! formatted ourselves (no escaping needed). Reads only; changes nothing.

use super::super::{fmt_cidr, fmt_ip, fmt_mac, STATUS};
use crate::consensus::{self, KernelNode};
use crate::time;
use alloc::string::String;
use continuum_node::Hex;
use core::fmt::Write;

/// The `/status` document.
pub fn status_json(node_id: continuum_config::NodeId, cluster_id: u64) -> String {
    let status = STATUS.lock().clone().unwrap_or_default();
    let mut out = String::new();
    let _ = write!(
        out,
        "{{\"node_id\":{node_id},\"cluster_id\":{cluster_id},\"uptime_ms\":{},\"hlc\":{},\"epoch\":{},",
        time::monotonic_ns() / 1_000_000,
        time::hlc_now().map_or(0, |t| t.packed()),
        status.epoch
    );
    let (heap_used, heap_free) = crate::memory::heap_usage();
    let _ = write!(
        out,
        "\"memory\":{{\"heap_used\":{heap_used},\"heap_free\":{heap_free}}},"
    );
    let (rtc_steps, rtc_error_ms) = time::rtc_discipline();
    let _ = write!(
        out,
        "\"clock\":{{\"rtc_steps\":{rtc_steps},\"rtc_last_error_ms\":{rtc_error_ms},\"wall_step_ms\":{}}},",
        time::wall_step_ms()
    );
    for (name, iface, nic) in [
        ("lan", status.lan, status.lan_nic),
        ("client", status.client, status.client_nic),
    ] {
        match iface {
            Some((cidr, mac)) => {
                let _ = write!(
                    out,
                    "\"{name}\":{{\"ip\":\"{}\",\"mac\":\"{}\",\"rx_frames\":{},\"tx_frames\":{},\"tx_errors\":{}}},",
                    fmt_cidr(cidr),
                    fmt_mac(mac),
                    nic.rx_frames,
                    nic.tx_frames,
                    nic.tx_errors
                );
            }
            None => {
                let _ = write!(out, "\"{name}\":null,");
            }
        }
    }
    out.push_str("\"peers\":[");
    for (i, (id, p)) in status.peers.iter().enumerate() {
        let _ = write!(
            out,
            "{}{{\"id\":{id},\"ip\":\"{}\",\"reachable\":{},\"pings_sent\":{},\"pongs_received\":{},\"last_rtt_us\":{}}}",
            if i > 0 { "," } else { "" },
            fmt_ip(p.ip),
            p.reachable,
            p.pings_sent,
            p.pongs_received,
            p.last_rtt_us
        );
    }
    let a = status.auth;
    let _ = write!(
        out,
        "],\"peer_messages\":{{\"accepted\":{},\"malformed\":{},\"wrong_cluster\":{},\"misdirected\":{},\"unknown_sender\":{},\"wrong_scheme\":{},\"forged\":{},\"replayed\":{},\"too_old\":{},\"stale_epoch\":{},\"stale_receiver_epoch\":{}}},\"status_requests\":{},\"status_aborted\":{},\"client_requests\":{},\"client_rejected\":{}}}",
        a.accepted, a.malformed, a.wrong_cluster, a.misdirected, a.unknown_sender, a.wrong_scheme, a.forged, a.replayed, a.too_old, a.stale_epoch, a.stale_receiver_epoch, status.status_requests, status.status_aborted, status.client_requests, status.client_rejected
    );
    out.pop(); // the closing brace: one more member follows
    out.push_str(",\"raft\":");
    raft_json(&mut out);
    out.push('}');
    out
}

/// The `"raft"` member of `/status` (a JSON object), or `null`.
fn raft_json(out: &mut String) {
    consensus::with_node(|node| match node {
        Some(node) => raft_members(out, node),
        None => out.push_str("null"),
    })
}

fn raft_members(out: &mut String, node: &KernelNode) {
    let raft = node.raft();
    let (head_index, head) = node.ledger().chain_head();
    let m = node.metrics();
    let log = raft.storage();
    let _ = write!(
        out,
        "{{\"role\":\"{}\",\"term\":{},\"leader\":{},\"commit\":{},\"applied\":{},\"last_index\":{},\"chain_head\":{{\"index\":{head_index},\"hash\":\"{}\"}},\"lamport\":{},",
        consensus::role_name(raft.role()),
        raft.term(),
        raft.leader(),
        raft.commit_index(),
        node.applied(),
        raft.last_index(),
        Hex(&head),
        consensus::lamport(),
    );
    let ms = node.membership_status();
    let ids = |ids: &[u64]| {
        ids.iter()
            .map(|id| alloc::format!("{id}"))
            .collect::<alloc::vec::Vec<_>>()
            .join(",")
    };
    let _ = write!(
        out,
        "\"membership\":{{\"voters\":[{}],\"learners\":[{}],\"conf_index\":{},\"applied_conf_index\":{},\"voting\":{},\"state\":\"{}\"}},",
        ids(&ms.voters),
        ids(&ms.learners),
        ms.conf_index,
        ms.applied_conf_index,
        ms.voting,
        match (ms.removed_at, ms.voting) {
            (Some(_), _) => "removed",
            (None, true) => "voter",
            (None, false) if ms.learners.contains(&node.id()) => "learner",
            (None, false) => "joining",
        }
    );
    out.push_str("\"peers\":[");
    let mut first = true;
    let conf = raft.conf_state();
    for &peer in conf.voters.iter().chain(&conf.learners) {
        if peer == node.id() {
            continue;
        }
        let matched = raft.progress(peer).map_or(0, |p| p.matched);
        let clock = consensus::peer_clock(peer);
        let _ = write!(
            out,
            "{}{{\"id\":{peer},\"match_index\":{matched},\"offset_ms\":{},\"skew_rejections\":{}}}",
            if first { "" } else { "," },
            clock.offset_ms,
            clock.skew_rejections
        );
        first = false;
    }
    let (writes, reads) = node.waiting();
    let snap = node.snapshot_status();
    let _ = write!(
        out,
        "],\"first_index\":{},\"snapshot_index\":{},\"snapshot_bytes\":{},\"wal_used_bytes\":{},\"wal_free_bytes\":{},\"wal_capacity_bytes\":{},\"snapshot_chunks_fetched\":{},\"snapshot_chunks_reused\":{},\"snapshot_chunk_bytes_fetched\":{},\"snapshot_chunk_bytes_reused\":{}",
        snap.first_index,
        snap.snapshot_index,
        snap.snapshot_bytes,
        snap.wal_used_bytes,
        snap.wal_capacity_bytes.saturating_sub(snap.wal_used_bytes),
        snap.wal_capacity_bytes,
        snap.snapshot_chunks_fetched,
        snap.snapshot_chunks_reused,
        snap.snapshot_chunk_bytes_fetched,
        snap.snapshot_chunk_bytes_reused,
    );
    let _ = write!(
        out,
        ",\"counters\":{{\"snapshots_taken\":{},\"snapshots_installed\":{},\"proposals\":{},\"forwarded\":{},\"committed_entries\":{},\"applied_commands\":{},\"client_requests\":{},\"client_bad_requests\":{},\"client_bad_signatures\":{},\"client_busy\":{},\"forwards_refused\":{},\"client_timeouts\":{},\"reads_served\":{},\"raft_rejected\":{},\"leader_changes\":{},\"elections\":{},\"chain_checks_matched\":{},\"chain_checks_mismatched\":{},\"wal_bytes\":{},\"flushes\":{},\"envelope_decode_errors\":{}}},\"waiting\":{{\"writes\":{writes},\"reads\":{reads}}}}}",
        snap.snapshots_taken,
        snap.snapshots_installed,
        m.proposals,
        m.forwarded,
        m.committed_entries,
        m.applied_commands,
        m.client_requests,
        m.client_bad_requests,
        m.client_bad_signatures,
        m.client_busy,
        m.forwards_refused,
        m.client_timeouts,
        m.reads_served,
        m.raft_rejected,
        m.leader_changes,
        raft.stats().elections_started,
        m.chain_checks_matched,
        m.chain_checks_mismatched,
        log.bytes_written,
        log.flushes,
        consensus::envelope_decode_errors(),
    );
}
