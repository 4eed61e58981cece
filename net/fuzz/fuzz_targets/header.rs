//! Fuzz target: `continuum_net::fuzz_check::header` (never panics; an accepted
//! input re-encodes to itself). The same function runs in `cargo test`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    continuum_net::fuzz_check::header(data);
});
