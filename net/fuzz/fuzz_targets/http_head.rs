//! Fuzz target: `continuum_net::fuzz_check::http_head` (the status server's
//! request-head parser: never panics, decides the same however the bytes
//! are split). The same function runs in `cargo test`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    continuum_net::fuzz_check::http_head(data);
});
