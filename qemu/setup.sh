#!/usr/bin/env bash
# Installs what building and booting Continuum needs, and says what it did.
# Idempotent: a second run installs nothing and says so.
#   - QEMU (qemu-system-x86_64) and OVMF (UEFI firmware), with apt on Debian/Ubuntu
#   - Chromium and chromedriver (Debian chromium, chromium-driver) for the
#     dashboard's browser test
#   - the Rust components the pinned nightly needs: rust-src, llvm-tools-preview
#     (the bootloader builds its stages with them), clippy, rustfmt, and the
#     x86_64-unknown-none target
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf 'setup: %s\n' "$*"; }

# --- system packages -------------------------------------------------------
missing=()
command -v qemu-system-x86_64 >/dev/null 2>&1 || missing+=(qemu-system-x86)
ovmf_found=no
for f in /usr/share/ovmf/OVMF.fd /usr/share/OVMF/OVMF.fd /usr/share/edk2/ovmf/OVMF.fd /usr/share/qemu/OVMF.fd; do
  [ -f "$f" ] && ovmf_found=yes
done
[ "$ovmf_found" = yes ] || missing+=(ovmf)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)

if [ ${#missing[@]} -eq 0 ]; then
  say "QEMU, OVMF, Chromium and chromedriver already installed"
elif command -v apt-get >/dev/null 2>&1; then
  sudo=()
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || { say "need root (or sudo) to apt-get install ${missing[*]}"; exit 1; }
    sudo=(sudo)
  fi
  say "installing ${missing[*]} with apt-get"
  "${sudo[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null
  say "installed ${missing[*]}"
else
  say "this is not a Debian/Ubuntu host; please install with your package manager:"
  say "  QEMU for x86_64 (qemu-system-x86_64), e.g. Fedora: qemu-system-x86, Arch: qemu-system-x86, macOS: brew install qemu"
  say "  OVMF UEFI firmware (OVMF.fd), e.g. Fedora: edk2-ovmf, Arch: edk2-ovmf; or set CONTINUUM_OVMF=/path/to/OVMF.fd"
  say "  Chromium and chromedriver (only the dashboard test needs them; it skips without)"
  exit 1
fi

# --- Rust -------------------------------------------------------------------
command -v rustup >/dev/null 2>&1 || { say "rustup not found: install it from rustup.rs, then re-run"; exit 1; }
toolchain=$(sed -n 's/^channel *= *"\(.*\)"/\1/p' rust-toolchain.toml)
if ! rustup run "$toolchain" rustc --version >/dev/null 2>&1; then
  say "installing Rust toolchain $toolchain"
  rustup toolchain install "$toolchain" --profile minimal
fi
installed=$(rustup component list --toolchain "$toolchain" --installed)
want=()
for c in rust-src llvm-tools clippy rustfmt; do
  grep -q "^$c" <<<"$installed" || want+=("$c")
done
if [ ${#want[@]} -eq 0 ]; then
  say "Rust $toolchain components already installed"
else
  # llvm-tools is listed as llvm-tools-preview when adding.
  add=("${want[@]/llvm-tools/llvm-tools-preview}")
  say "adding Rust components ${add[*]} to $toolchain"
  rustup component add --toolchain "$toolchain" "${add[@]}"
fi
if rustup target list --toolchain "$toolchain" --installed | grep -q '^x86_64-unknown-none$'; then
  say "target x86_64-unknown-none already installed"
else
  say "adding target x86_64-unknown-none to $toolchain"
  rustup target add --toolchain "$toolchain" x86_64-unknown-none
fi
