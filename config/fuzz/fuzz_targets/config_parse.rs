//! Fuzz target: `continuum_config::fuzz_check::config_parse` (never panics; see
//! the function's doc). The same function runs in `cargo test`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    continuum_config::fuzz_check::config_parse(data);
});
