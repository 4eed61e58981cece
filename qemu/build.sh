#!/usr/bin/env bash
# Builds the release kernel and the BIOS + UEFI images; prints their paths.
# (Used by run.sh and bench scripts; the test harness does the same itself.)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --manifest-path kernel/Cargo.toml
cargo build --release -p continuum-boot
./target/release/continuum-boot kernel/target/x86_64-unknown-none/release/continuum-kernel target/images
