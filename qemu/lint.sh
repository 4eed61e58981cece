#!/usr/bin/env bash
# Formatting and clippy, warnings as errors, for the workspace and the kernel.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo fmt --all -- --check
cargo fmt --manifest-path kernel/Cargo.toml -- --check
cargo clippy --workspace --all-targets -- -D warnings
cargo clippy --manifest-path kernel/Cargo.toml -- -D warnings
echo "lint: clean"
