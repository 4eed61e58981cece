//! Any bytes decode to `Ok` or `Err` without panicking, and an accepted
//! message re-encodes to exactly the input (one encoding per message).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    continuum_raft::check_decode_canonical(data);
});
