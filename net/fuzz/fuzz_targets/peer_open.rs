//! Fuzz target: `continuum_net::fuzz_check::peer_open_on` (arbitrary bytes
//! are never authenticated). The receivers' link keys are derived once per
//! process, not per input. The same function runs in `cargo test`.
#![no_main]

use continuum_net::fuzz_check::{peer_open_on, PeerOpenFixture};
use libfuzzer_sys::fuzz_target;
use std::cell::RefCell;

thread_local! {
    static FIXTURE: RefCell<PeerOpenFixture> = RefCell::new(PeerOpenFixture::new());
}

fuzz_target!(|data: &[u8]| {
    FIXTURE.with(|fixture| peer_open_on(&mut fixture.borrow_mut(), data));
});
