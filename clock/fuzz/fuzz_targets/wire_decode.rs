//! Timestamp decoding is total and canonical on arbitrary bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    continuum_clock::check_wire_decoding(bytes);
});
