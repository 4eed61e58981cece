//! The QEMU integration tests live in `tests/tests/`, one file per area
//! (see `docs/testing.md`); they drive real kernel images through the
//! harness crate, `continuum-harness`. This library is empty: cargo needs
//! a target besides the tests.
