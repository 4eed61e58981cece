//! Open a sample disk image damaged by the fuzzer's bytes: recovery must
//! return an error or a consistent store, never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|damage: &[u8]| {
    continuum_storage::testing::open_damaged_image(damage);
});
