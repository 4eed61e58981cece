#!/usr/bin/env bash
# Boots one Continuum node in QEMU with its console on this terminal.
# Ctrl-C stops it.
set -euo pipefail
cd "$(dirname "$0")/.."

usage() {
  cat <<USAGE
usage: qemu/run.sh [options]
  --uefi            boot the UEFI image with OVMF (default: BIOS image)
  --machine M       pc or q35 (default: q35)
  --accel A         auto, kvm or tcg (default: auto = kvm only if kvm_intel/kvm_amd is loaded)
  --config FILE     node config passed through fw_cfg (default: none, kernel defaults)
  --selftest        run the in-kernel self-tests and exit
  --memory MIB      guest memory (default: 256)
  -h, --help        this text
USAGE
}

firmware=bios machine=q35 accel=auto config= selftest=no memory=256
while [ $# -gt 0 ]; do
  case "$1" in
    --uefi) firmware=uefi ;;
    --bios) firmware=bios ;;
    --machine) machine=${2:?--machine needs pc or q35}; shift ;;
    --accel) accel=${2:?--accel needs auto, kvm or tcg}; shift ;;
    --config) config=${2:?--config needs a file}; shift ;;
    --selftest) selftest=yes ;;
    --memory) memory=${2:?--memory needs a number of MiB}; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "run.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
  esac
  shift
done
case "$machine" in pc|q35) ;; *) echo "run.sh: --machine must be pc or q35" >&2; exit 2 ;; esac
case "$memory" in ''|*[!0-9]*) echo "run.sh: --memory must be a number of MiB" >&2; exit 2 ;; esac
if [ -n "$config" ] && [ ! -r "$config" ]; then echo "run.sh: cannot read config $config" >&2; exit 2; fi

qemu/setup.sh
qemu/build.sh

real_kvm=no
{ [ -d /sys/module/kvm_intel ] || [ -d /sys/module/kvm_amd ]; } && [ -e /dev/kvm ] && real_kvm=yes
case "$accel" in
  auto) if [ "$real_kvm" = yes ]; then accel=kvm; why="kvm_intel/kvm_amd loaded";
        else accel=tcg; why="no kvm_intel/kvm_amd module (a paravirtual /dev/kvm cannot run this guest)"; fi ;;
  kvm) why="forced with --accel kvm" ;;
  tcg) why="forced with --accel tcg" ;;
  *) echo "run.sh: --accel must be auto, kvm or tcg" >&2; exit 2 ;;
esac
echo "run.sh: accelerator ${accel^^} ($why)"

args=(-machine "$machine" -m "${memory}M" -accel "$accel" -display none -serial stdio -monitor none -no-reboot)
[ "$accel" = kvm ] && args+=(-cpu host)
if [ "$firmware" = uefi ]; then
  ovmf=${CONTINUUM_OVMF:-}
  for f in /usr/share/ovmf/OVMF.fd /usr/share/OVMF/OVMF.fd /usr/share/edk2/ovmf/OVMF.fd /usr/share/qemu/OVMF.fd; do
    [ -z "$ovmf" ] && [ -f "$f" ] && ovmf=$f
  done
  args+=(-bios "$ovmf" -drive "format=raw,file=target/images/continuum-uefi.img,snapshot=on")
else
  args+=(-drive "format=raw,file=target/images/continuum-bios.img,snapshot=on")
fi
if [ "$selftest" = yes ]; then
  mkdir -p target/run
  printf 'mode = selftest\n' > target/run/selftest.cfg
  config=target/run/selftest.cfg
  args+=(-device isa-debug-exit,iobase=0xf4,iosize=0x04)
fi
[ -n "$config" ] && args+=(-fw_cfg "name=opt/continuum/config,file=$config")

echo "run.sh: booting the ${firmware^^} image on $machine; Ctrl-C stops the node"
status=0
qemu-system-x86_64 "${args[@]}" || status=$?
# A self-test run exits through isa-debug-exit: 33 means every test passed.
if [ "$selftest" = yes ]; then
  [ "$status" -eq 33 ] && { echo "run.sh: self-tests passed"; exit 0; }
  echo "run.sh: self-tests failed (QEMU status $status)"; exit 1
fi
exit "$status"
