#!/usr/bin/env bash
# Formatting and clippy, warnings as errors, for the workspace and the kernel.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo fmt --all -- --check
cargo fmt --manifest-path kernel/Cargo.toml -- --check
cargo clippy --workspace --all-targets -- -D warnings
cargo clippy --manifest-path kernel/Cargo.toml -- -D warnings
# Drivers never call up into the node or the tasks above them (issue 15):
# the layers that use a driver pass it what it needs.
upcalls='crate::(\{[^}]*)?\b(consensus|network|shell|disk|metrics|netbench)\b'
if grep -rnE "$upcalls" kernel/src/drivers; then
  echo "lint: kernel/src/drivers calls up into the node (above); invert the call" >&2
  exit 1
fi
echo "lint: clean"
