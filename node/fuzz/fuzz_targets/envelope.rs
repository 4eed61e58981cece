//! Fuzz target: `continuum_node::fuzz_check::envelope` (never panics; what
//! decodes re-encodes to itself). The same function runs in `cargo test`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    continuum_node::fuzz_check::envelope(data);
});
