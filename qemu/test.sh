#!/usr/bin/env bash
# The test command: set-up, the images, then every test of the workspace —
# host unit, property and simulation tests, and the QEMU tests that boot the
# images built here (target/images; the tests never build them themselves).
# Extra arguments go to `cargo test` (e.g. qemu/test.sh -p continuum-raft).
set -euo pipefail
cd "$(dirname "$0")/.."
qemu/setup.sh
qemu/build.sh
echo "test.sh: running cargo test --workspace $*" >&2
cargo test --workspace "$@"
