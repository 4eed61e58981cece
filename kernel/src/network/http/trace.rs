//! `GET /trace?transfer=<hex id>[&index=<n>]`: this node's trace events of
//! one transfer, as JSON (`continuum_node::trace::write_answer`; the CLI's
//! `continuum trace` gathers them from every node and merges them).
//! `GET /trace?recent`: the newest transfer ids this node took (the
//! dashboard lists them to click).
//!
//! The transfer is resolved to its write (origin, request tag, log index)
//! from this node's ring, and the index from its ledger when it applied the
//! transfer (or from `index=`, which the CLI passes when another node knew
//! it). The answer is bounded (`MAX_TRACE_ANSWER` events); a malformed
//! query is a `400` saying what is wrong; no node running here is a `503`.
//! Reads only; changes nothing.

use crate::consensus;
use alloc::format;
use alloc::string::String;
use continuum_node::trace::parse_query;

/// The status code and JSON body for a `/trace` request with `query` (the
/// bytes after `?`).
pub fn trace_answer(query: &[u8]) -> (&'static str, String) {
    let query = match parse_query(query) {
        Ok(query) => query,
        Err(error) => return ("400 Bad Request", format!("{{\"error\":\"{error}\"}}")),
    };
    // The node lock is released before the trace lock is taken.
    let applied_at = consensus::with_node(|node| {
        let transfer = query.transfer()?;
        node?.ledger().transfer_outcome(transfer).map(|d| d.index)
    });
    consensus::with_trace(|ring| match ring {
        Some(ring) => {
            let mut body = String::new();
            let _ = ring.respond(&mut body, query, applied_at);
            ("200 OK", body)
        }
        None => (
            "503 Service Unavailable",
            String::from("{\"error\":\"no consensus node runs here\"}"),
        ),
    })
}
