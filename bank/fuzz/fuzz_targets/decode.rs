//! Entry and command decoding over arbitrary bytes: no panic, and whatever
//! decodes re-encodes to exactly the input (one canonical encoding).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    continuum_bank::fuzzing::decode_roundtrip(data);
});
