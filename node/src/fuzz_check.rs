//! Properties of the node's two formats, as functions that panic on
//! violation. The cargo-fuzz targets in `node/fuzz/` and the property tests
//! in `node/tests/` call the same functions, so `cargo test` covers what
//! the fuzzer checks.

use alloc::vec::Vec;

use crate::wire::{EntryHeader, Envelope};

/// A peer envelope (what an authenticated peer sends): decoding never
/// panics, and an accepted envelope re-encodes to exactly the input.
pub fn envelope(bytes: &[u8]) {
    if let Ok(envelope) = Envelope::decode(bytes) {
        let mut again = Vec::new();
        envelope.encode(&mut again);
        assert_eq!(
            again.as_slice(),
            bytes,
            "envelope encoding is not canonical"
        );
    }
}

/// A log entry's node header (read from disk and from peers' appends):
/// splitting never panics, and header + command rewrap to the input.
pub fn entry_header(bytes: &[u8]) {
    if let Ok((header, command)) = EntryHeader::unwrap(bytes) {
        assert_eq!(header.wrap(command).as_slice(), bytes);
    }
}
