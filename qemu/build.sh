#!/usr/bin/env bash
# Builds the release kernel and its BIOS + UEFI images into target/images,
# in a bounded time, and prints their paths. qemu/test.sh runs it once before
# the tests, which boot these images and never build them themselves.
#
# Independent of the caller's environment: the kernel always builds in
# kernel/target and the images always land in target/images, whatever
# CARGO_TARGET_DIR says; the bootloader's nested builds get a target dir of
# their own (.cargo/config.toml [env]), so a global CARGO_TARGET_DIR or
# build.target-dir cannot deadlock them (shared/PLATFORM.md).
#
#   CONTINUUM_BUILD_TIMEOUT=S   give up after S seconds (default 1800)
set -euo pipefail
cd "$(dirname "$0")/.."

limit=${CONTINUUM_BUILD_TIMEOUT:-1800}
case "$limit" in ''|*[!0-9]*) echo "build.sh: CONTINUUM_BUILD_TIMEOUT must be a number of seconds" >&2; exit 2 ;; esac

bounded() {
  local what=$1; shift
  local started=$SECONDS status=0
  timeout --foreground --kill-after=10 "$limit" "$@" || status=$?
  if [ "$status" -eq 124 ] || [ "$status" -eq 137 ]; then
    echo "build.sh: $what did not finish within ${limit} s and was stopped." >&2
    echo "build.sh: a first build takes a few minutes (the bootloader compiles its stages);" >&2
    echo "build.sh: raise CONTINUUM_BUILD_TIMEOUT if this machine is slow, or look for another cargo holding a lock (ps aux | grep cargo)." >&2
    exit 1
  elif [ "$status" -ne 0 ]; then
    echo "build.sh: $what failed (exit $status)" >&2
    exit "$status"
  fi
  echo "build.sh: $what done in $((SECONDS - started)) s" >&2
}

echo "build.sh: building the release kernel (kernel/target)" >&2
bounded "kernel build" cargo build --release --manifest-path kernel/Cargo.toml --target-dir kernel/target
kernel=kernel/target/x86_64-unknown-none/release/continuum-kernel

[ -e "${CARGO_TARGET_DIR:-target}/release/continuum-boot" ] ||
  echo "build.sh: building the image tool; the first time the bootloader compiles its stages (~3 min on 2 cores)" >&2
bounded "image tool build" cargo build --release -p continuum-boot
bounded "image build" cargo run --release -q -p continuum-boot -- "$kernel" target/images
