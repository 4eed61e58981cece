#!/usr/bin/env bash
# The run command: set up, build, and start a local Continuum cluster in QEMU
# (3 nodes by default, `--nodes 5` for five) with the `continuum` CLI; once a
# leader is elected, open two demo accounts and move money between them,
# printing every result. Ctrl-C stops everything (the disks stay, so the next
# run continues the same ledger).
#
#   qemu/run.sh [--nodes 3|5] [--dir DIR] [--accel auto|kvm|tcg]
#   qemu/run.sh --single [options]   # one node, console on this terminal
set -euo pipefail
cd "$(dirname "$0")/.."

# --- one node, console here (qemu/run.sh --single --help) -------------------
single_usage() {
  cat <<USAGE
usage: qemu/run.sh --single [options]
  --uefi            boot the UEFI image with OVMF (default: BIOS image)
  --machine M       pc or q35 (default: q35)
  --accel A         auto, kvm or tcg (default: auto = kvm only if kvm_intel/kvm_amd is loaded)
  --config FILE     node config passed through fw_cfg (default: none, kernel defaults)
  --selftest        run the in-kernel self-tests and exit
  --memory MIB      guest memory (default: 256)
  -h, --help        this text
USAGE
}

single() {
  local firmware=bios machine=q35 accel=auto config= selftest=no memory=256
  while [ $# -gt 0 ]; do
    case "$1" in
      --uefi) firmware=uefi ;;
      --bios) firmware=bios ;;
      --machine) machine=${2:?--machine needs pc or q35}; shift ;;
      --accel) accel=${2:?--accel needs auto, kvm or tcg}; shift ;;
      --config) config=${2:?--config needs a file}; shift ;;
      --selftest) selftest=yes ;;
      --memory) memory=${2:?--memory needs a number of MiB}; shift ;;
      -h|--help) single_usage; exit 0 ;;
      *) echo "run.sh --single: unknown option $1" >&2; single_usage >&2; exit 2 ;;
    esac
    shift
  done
  case "$machine" in pc|q35) ;; *) echo "run.sh: --machine must be pc or q35" >&2; exit 2 ;; esac
  case "$memory" in ''|*[!0-9]*) echo "run.sh: --memory must be a number of MiB" >&2; exit 2 ;; esac
  if [ -n "$config" ] && [ ! -r "$config" ]; then echo "run.sh: cannot read config $config" >&2; exit 2; fi

  qemu/setup.sh
  qemu/build.sh

  local real_kvm=no why
  { [ -d /sys/module/kvm_intel ] || [ -d /sys/module/kvm_amd ]; } && [ -e /dev/kvm ] && real_kvm=yes
  case "$accel" in
    auto) if [ "$real_kvm" = yes ]; then accel=kvm; why="kvm_intel/kvm_amd loaded";
          else accel=tcg; why="no kvm_intel/kvm_amd module (a paravirtual /dev/kvm cannot run this guest)"; fi ;;
    kvm) why="forced with --accel kvm" ;;
    tcg) why="forced with --accel tcg" ;;
    *) echo "run.sh: --accel must be auto, kvm or tcg" >&2; exit 2 ;;
  esac
  echo "run.sh: accelerator ${accel^^} ($why)"

  local args=(-machine "$machine" -m "${memory}M" -accel "$accel" -display none -serial stdio -monitor none -no-reboot)
  [ "$accel" = kvm ] && args+=(-cpu host)
  if [ "$firmware" = uefi ]; then
    local ovmf=${CONTINUUM_OVMF:-}
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
  local status=0
  qemu-system-x86_64 "${args[@]}" || status=$?
  # A self-test run exits through isa-debug-exit: 33 means every test passed.
  if [ "$selftest" = yes ]; then
    [ "$status" -eq 33 ] && { echo "run.sh: self-tests passed"; exit 0; }
    echo "run.sh: self-tests failed (QEMU status $status)"; exit 1
  fi
  exit "$status"
}

if [ "${1:-}" = --single ]; then
  shift
  single "$@"
fi

# --- a cluster --------------------------------------------------------------
usage() {
  cat <<USAGE
usage: qemu/run.sh [options]
  --nodes N         cluster size, 3 or 5 (default: \$NODES or 3)
  --dir DIR         cluster directory (default: target/cluster-N; made with
                    \`continuum cluster init\` when it holds no cluster yet)
  --accel A         auto, kvm or tcg (default: auto = kvm only if kvm_intel/kvm_amd is loaded)
  --single ...      boot one node with its console here instead (--single --help)
  -h, --help        this text
USAGE
}

nodes=${NODES:-3} dir= accel=auto
while [ $# -gt 0 ]; do
  case "$1" in
    --nodes) nodes=${2:?--nodes needs 3 or 5}; shift ;;
    --dir) dir=${2:?--dir needs a directory}; shift ;;
    --accel) accel=${2:?--accel needs auto, kvm or tcg}; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "run.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
  esac
  shift
done
case "$nodes" in 3|5) ;; *) echo "run.sh: --nodes must be 3 or 5" >&2; exit 2 ;; esac
case "$accel" in
  auto) ;;
  kvm|tcg) export CONTINUUM_ACCEL=$accel ;;
  *) echo "run.sh: --accel must be auto, kvm or tcg" >&2; exit 2 ;;
esac
dir=${dir:-target/cluster-$nodes}

qemu/setup.sh
qemu/build.sh
cargo build -p continuum-cli
. qemu/lib.sh
cli=$(cargo_target_dir)/debug/continuum
continuum() { "$cli" --dir "$dir" "$@"; }

if [ ! -f "$dir/cluster.json" ]; then
  continuum cluster init --nodes "$nodes"
fi

continuum cluster up --foreground --nodes "$nodes" &
supervisor=$!
stop() {
  trap - INT TERM
  echo
  echo "run.sh: stopping the cluster"
  kill -INT "$supervisor" 2>/dev/null || true
  wait "$supervisor" 2>/dev/null || true
  exit 0
}
trap stop INT TERM

# The supervisor reports the VMs started in state.json; then wait for a leader.
for _ in $(seq 150); do
  grep -qs '"phase": "running"' "$dir/run/state.json" && break
  if ! kill -0 "$supervisor" 2>/dev/null; then
    wait "$supervisor" || true
    echo "run.sh: the cluster did not start" >&2
    exit 1
  fi
  sleep 0.2
done
echo "run.sh: waiting for a leader"
continuum --timeout 180 cluster wait

# Two accounts, some transfers, one refused. A failed step is shown, not
# fatal: the cluster keeps running for you to explore.
demo() {
  echo "\$ continuum $*"
  local status=0
  continuum "$@" || status=$?
  [ "$status" -eq 0 ] || echo "(exit status $status)"
}
demo account create --id 10
demo account create --id 11
demo transfer --from 1 --to 10 --amount 5000
demo transfer --from 10 --to 11 --amount 2000
demo transfer --from 10 --to 11 --amount 1000000
demo balance 10
demo balance 11
demo cluster status
cat <<EOF

run.sh: the cluster runs. In another terminal, for example:
  $cli --dir $dir watch
  $cli --dir $dir nemesis kill 2
  $cli --dir $dir transfer --from 10 --to 11 --amount 5
  $cli --dir $dir nemesis restart 2
Ctrl-C here stops the cluster.
EOF
wait "$supervisor"
