#!/usr/bin/env bash
# The test command: set-up, then every test of the workspace — host unit,
# property and simulation tests, and the QEMU tests that boot real images.
# Extra arguments go to `cargo test` (e.g. qemu/test.sh -p continuum-raft).
set -euo pipefail
cd "$(dirname "$0")/.."
qemu/setup.sh
# The kernel is a workspace of its own (see Cargo.toml); the QEMU tests build
# it too, but building it here first makes a compile error show up plainly.
cargo build --release --manifest-path kernel/Cargo.toml
cargo test --workspace "$@"
