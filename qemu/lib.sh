# Sourced by the qemu/ scripts: facts about this checkout's build.

# The directory cargo builds host binaries in: target/ unless the caller set
# CARGO_TARGET_DIR, CARGO_BUILD_TARGET_DIR or build.target-dir (cargo knows).
cargo_target_dir() {
  cargo metadata --format-version 1 --no-deps |
    sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p'
}
