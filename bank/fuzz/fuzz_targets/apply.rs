//! `Ledger::apply` over arbitrary byte strings split into entries: no panic,
//! invariants hold (asserted inside apply), snapshot round-trips exactly.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut ledger = continuum_bank::fuzzing::fuzz_ledger();
    continuum_bank::fuzzing::apply_arbitrary(&mut ledger, data);
});
