//! Well-signed operation scripts (see `continuum_bank::fuzzing::apply_script`):
//! exactly-once, replica agreement with batching on/off, snapshot round-trip.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    continuum_bank::fuzzing::apply_script(data);
});
