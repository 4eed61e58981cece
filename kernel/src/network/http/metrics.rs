//! `GET /metrics`: the Prometheus text exposition (format 0.0.4) of the
//! consensus node's gauges and counters, then the kernel's histograms
//! ([`crate::metrics::render`]). Every series carries `node="<id>"`.
//! Metric names are an interface (dashboards, `cluster-bench`, the tests).
//! Without a node it says so and reports `continuum_node_running 0`.
//! Reads only; changes nothing.

use crate::consensus::{self, KernelNode};
use alloc::string::String;
use continuum_raft::Role;
use core::fmt::Write;

/// Prometheus text exposition of the node's metrics.
pub fn metrics_text(out: &mut String, node_id: continuum_config::NodeId) {
    consensus::with_node(|node| match node {
        Some(node) => node_metrics(out, node, node_id),
        None => {
            let _ = writeln!(
                out,
                "# no consensus node runs here\ncontinuum_node_running{{node=\"{node_id}\"}} 0"
            );
        }
    })
}

/// The node's gauges and counters, then the kernel's histograms.
fn node_metrics(out: &mut String, node: &KernelNode, node_id: continuum_config::NodeId) {
    let raft = node.raft();
    let m = node.metrics();
    let log = raft.storage();
    let l = node_id;
    let gauge = |out: &mut String, name: &str, help: &str, value: u64| {
        let _ = writeln!(out, "# HELP continuum_{name} {help}\n# TYPE continuum_{name} gauge\ncontinuum_{name}{{node=\"{l}\"}} {value}");
    };
    let counter = |out: &mut String, name: &str, help: &str, value: u64| {
        let _ = writeln!(out, "# HELP continuum_{name} {help}\n# TYPE continuum_{name} counter\ncontinuum_{name}{{node=\"{l}\"}} {value}");
    };
    gauge(out, "node_running", "1 when a consensus node runs", 1);
    gauge(out, "raft_term", "Current Raft term", raft.term());
    gauge(
        out,
        "raft_is_leader",
        "1 on the leader",
        u64::from(raft.role() == Role::Leader),
    );
    gauge(
        out,
        "raft_leader",
        "Known leader id (0 = none)",
        raft.leader(),
    );
    gauge(
        out,
        "raft_commit_index",
        "Highest committed log index",
        raft.commit_index(),
    );
    gauge(
        out,
        "raft_applied_index",
        "Highest applied log index",
        node.applied(),
    );
    gauge(out, "raft_last_index", "Last log index", raft.last_index());
    let snap = node.snapshot_status();
    gauge(
        out,
        "raft_first_index",
        "First index the log holds",
        snap.first_index,
    );
    gauge(
        out,
        "snapshot_index",
        "Index of the stored ledger snapshot (0: none)",
        snap.snapshot_index,
    );
    gauge(
        out,
        "snapshot_bytes",
        "Size of the stored snapshot",
        snap.snapshot_bytes,
    );
    gauge(
        out,
        "wal_used_bytes",
        "WAL bytes the live log occupies",
        snap.wal_used_bytes,
    );
    gauge(
        out,
        "wal_capacity_bytes",
        "WAL region size",
        snap.wal_capacity_bytes,
    );
    counter(
        out,
        "snapshots_taken_total",
        "Ledger snapshots this node took (this boot)",
        snap.snapshots_taken,
    );
    counter(
        out,
        "snapshots_installed_total",
        "Snapshots installed from a leader (this boot)",
        snap.snapshots_installed,
    );
    for (name, help, value) in [
        (
            "snapshot_chunks_fetched_total",
            "InstallSnapshot chunks fetched from a leader (this boot)",
            snap.snapshot_chunks_fetched,
        ),
        (
            "snapshot_chunks_reused_total",
            "InstallSnapshot chunks found locally instead of fetched (this boot)",
            snap.snapshot_chunks_reused,
        ),
        (
            "snapshot_chunk_bytes_fetched_total",
            "Bytes of InstallSnapshot chunks fetched (this boot)",
            snap.snapshot_chunk_bytes_fetched,
        ),
        (
            "snapshot_chunk_bytes_reused_total",
            "Bytes of InstallSnapshot chunks reused (this boot)",
            snap.snapshot_chunk_bytes_reused,
        ),
    ] {
        counter(out, name, help, value);
    }
    counter(
        out,
        "proposals_total",
        "Entries proposed by this node as leader",
        m.proposals,
    );
    let (memo_hits, memo_misses) = node.verdict_memo_counts();
    counter(
        out,
        "verdict_memo_hits_total",
        "Signature verdicts taken from the memo (verified earlier, off the commit path)",
        memo_hits,
    );
    counter(
        out,
        "signatures_verified_total",
        "Signatures this node verified (admission, ahead of apply, or at apply on a miss)",
        memo_misses,
    );
    counter(
        out,
        "preverified_signatures_total",
        "Signatures verified ahead of apply, after the Ready's messages left",
        m.preverified_signatures,
    );
    counter(
        out,
        "replayed_clean_total",
        "Entries re-applied at restart without verifying again (the disk's clean mark)",
        m.replayed_clean,
    );
    counter(
        out,
        "witness_flushes_total",
        "Slot flushes that only witness a quiet log's newest batch",
        m.witness_flushes,
    );
    counter(
        out,
        "forwarded_total",
        "Client writes forwarded to the leader",
        m.forwarded,
    );
    counter(
        out,
        "committed_entries_total",
        "Entries applied after commit",
        m.committed_entries,
    );
    counter(
        out,
        "client_requests_total",
        "Client requests handed to the node",
        m.client_requests,
    );
    counter(
        out,
        "client_timeouts_total",
        "Client requests answered Timeout/Unavailable after waiting",
        m.client_timeouts,
    );
    counter(
        out,
        "reads_served_total",
        "Linearizable reads served",
        m.reads_served,
    );
    counter(
        out,
        "raft_rejected_total",
        "Peer messages rejected by the node",
        m.raft_rejected,
    );
    counter(
        out,
        "elections_total",
        "Elections started",
        raft.stats().elections_started,
    );
    counter(
        out,
        "leader_changes_total",
        "Leader changes seen",
        m.leader_changes,
    );
    counter(
        out,
        "wal_bytes_total",
        "Entry bytes appended to the WAL",
        log.bytes_written,
    );
    counter(out, "wal_flushes_total", "WAL flushes", log.flushes);
    let skew = consensus::hlc_skew_rejections();
    counter(
        out,
        "hlc_skew_rejections_total",
        "Peer timestamps too far ahead, not adopted",
        skew,
    );
    crate::metrics::render(out, l);
}
