//! Fuzz target: `continuum_bank::fuzzing::restore_snapshot` (a snapshot
//! from a peer or a disk never panics the restore, and what restores is
//! canonical). The same function runs in `cargo test`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    continuum_bank::fuzzing::restore_snapshot(data);
});
