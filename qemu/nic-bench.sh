#!/usr/bin/env bash
# Compares NIC drivers under the same load: for each QEMU NIC model given
# (default: virtio e1000 e1000e), two nodes on the fabric run the raw-frame
# floor (mode net-bench-raw) and authenticated peer messages (net-bench);
# node 1 prints round-trip p50/p99 and messages/s (see harness/src/bin/net-bench.rs
# for the virtio-only Rust version of this benchmark).
set -euo pipefail
cd "$(dirname "$0")/.."
models=("$@")
[ ${#models[@]} -eq 0 ] && models=(virtio e1000 e1000e)
for m in "${models[@]}"; do
  case "$m" in virtio|e1000|e1000e|e1000-82545em) ;; *) echo "nic-bench.sh: unknown NIC model $m (virtio, e1000, e1000e, e1000-82545em)" >&2; exit 2 ;; esac
done

qemu/build.sh >/dev/null
cargo build --release -q -p continuum-fabric
. qemu/lib.sh
fabric_bin=$(cargo_target_dir)/release/continuum-fabric
run_dir=$(mktemp -d "${TMPDIR:-/tmp}/continuum-nic-bench.XXXXXX")
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$run_dir"' EXIT

# Public Ed25519 test keys (RFC 8032 §7.1, tests 1 and 2): a benchmark needs
# no secrets.
secret=(9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60
        4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb)
public=(d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a
        3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c)

accel=tcg
{ [ -d /sys/module/kvm_intel ] || [ -d /sys/module/kvm_amd ]; } && [ -e /dev/kvm ] && accel=kvm

# run MODEL MODE: prints node 1's result line.
run() {
  local model=$1 mode=$2 dir="$run_dir/$1-$2" device
  mkdir -p "$dir"
  case "$model" in
    virtio) device="virtio-net-pci,disable-legacy=on" ;;
    *) device=$model ;;
  esac
  "$fabric_bin" --dir "$dir" --nodes 2 >"$dir/fabric.log" 2>&1 &
  local fabric=$!
  for _ in $(seq 50); do [ -S "$dir/switch-2.sock" ] && break; sleep 0.1; done
  for id in 1 2; do
    local other=$((3 - id))
    printf 'node_id = %s\ncluster_id = 7\nsecret_key = %s\nlan_ip = 10.7.0.%s/24\npeer = %s 10.7.0.%s %s\nmode = %s\n' \
      "$id" "${secret[id-1]}" "$id" "$other" "$other" "${public[other-1]}" "$mode" >"$dir/node-$id.cfg"
  done
  local pids=()
  for id in 2 1; do
    qemu-system-x86_64 -machine q35 -m 256M -accel "$accel" -display none -serial stdio -monitor none -no-reboot \
      -device isa-debug-exit,iobase=0xf4,iosize=0x04 \
      -drive format=raw,file=target/images/continuum-bios.img,snapshot=on \
      -fw_cfg "name=opt/continuum/config,file=$dir/node-$id.cfg" \
      -netdev "dgram,id=lan,local.type=unix,local.path=$dir/node-$id.sock,remote.type=unix,remote.path=$dir/switch-$id.sock" \
      -device "$device,netdev=lan,mac=52:54:00:07:00:0$id" >"$dir/node-$id.log" 2>&1 &
    pids+=($!)
  done
  # Node 1 measures, prints and exits through isa-debug-exit; give it 5 minutes.
  for _ in $(seq 3000); do kill -0 "${pids[1]}" 2>/dev/null || break; sleep 0.1; done
  kill "${pids[@]}" "$fabric" 2>/dev/null || true
  wait "${pids[@]}" "$fabric" 2>/dev/null || true
  grep -h "rtt_p50_us=" "$dir/node-1.log" | sed 's/.*INFO  //' || echo "no result (console: $dir/node-1.log)"
}

echo "accelerator: $accel; load average: $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo unknown)"
for model in "${models[@]}"; do
  echo "$model: $(run "$model" net-bench-raw)"
  echo "$model: $(run "$model" net-bench)"
done
