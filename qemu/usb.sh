#!/usr/bin/env bash
# Writes one node's USB-stick images (BIOS and UEFI, config baked in), and
# optionally boots one from an emulated USB stick to try it before flashing.
set -euo pipefail
cd "$(dirname "$0")/.."

usage() {
  cat <<USAGE
usage: qemu/usb.sh (--config FILE | --cluster-dir DIR --node N) [options]
  --config FILE       the node's config file
  --cluster-dir DIR   a cluster directory (DIR/node-N.conf, from \`continuum cluster init\`)
  --node N            which node of the cluster directory
  --out DIR           where the images go (default: the cluster directory, or target/usb)
  --boot              then boot the image from an emulated USB stick, console here (Ctrl-C stops)
  --uefi              with --boot: boot the UEFI image with OVMF (default: the BIOS image)
  --nic MODEL         with --boot: NIC model, e1000 (default), e1000e or virtio-net-pci
  --status-port P     with --boot: host port forwarded to the node's GET /status (default 18080)
  -h, --help          this text
Writes OUT/node-<id>-bios.img and OUT/node-<id>-uefi.img. Flash one with
  sudo dd if=OUT/node-<id>-bios.img of=/dev/sdX bs=4M status=progress conv=fsync
after checking the device name (README, "Run on real hardware").
USAGE
}

config= cluster_dir= node= out= boot=no firmware=bios nic=e1000 status_port=18080
while [ $# -gt 0 ]; do
  case "$1" in
    --config) config=${2:?--config needs a file}; shift ;;
    --cluster-dir) cluster_dir=${2:?--cluster-dir needs a directory}; shift ;;
    --node) node=${2:?--node needs a node id}; shift ;;
    --out) out=${2:?--out needs a directory}; shift ;;
    --boot) boot=yes ;;
    --uefi) firmware=uefi ;;
    --nic) nic=${2:?--nic needs a model}; shift ;;
    --status-port) status_port=${2:?--status-port needs a port}; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "usb.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
  esac
  shift
done
case "$nic" in e1000|e1000e|virtio-net-pci) ;; *) echo "usb.sh: --nic must be e1000, e1000e or virtio-net-pci" >&2; exit 2 ;; esac
case "$status_port" in ''|*[!0-9]*) echo "usb.sh: --status-port must be a port number" >&2; exit 2 ;; esac

if [ -n "$config" ] && [ -z "$cluster_dir$node" ]; then
  tool_args=(--config "$config" --out "${out:-target/usb}")
elif [ -z "$config" ] && [ -n "$cluster_dir" ] && [ -n "$node" ]; then
  tool_args=(usb --cluster-dir "$cluster_dir" --node "$node")
  [ -n "$out" ] && tool_args+=(--out "$out")
else
  echo "usb.sh: give either --config FILE or --cluster-dir DIR --node N" >&2; usage >&2; exit 2
fi

qemu/setup.sh
qemu/build.sh >/dev/null
report=$(cargo run --release -q -p continuum-boot -- "${tool_args[@]}")
echo "$report"
[ "$boot" = yes ] || exit 0

image=$(sed -n "s/^${firmware^^} image: //p" <<<"$report")
[ -f "$image" ] || { echo "usb.sh: no ${firmware^^} image reported" >&2; exit 1; }

real_kvm=no
{ [ -d /sys/module/kvm_intel ] || [ -d /sys/module/kvm_amd ]; } && [ -e /dev/kvm ] && real_kvm=yes
args=(-machine q35 -m 256M -display none -serial stdio -monitor none -no-reboot)
if [ "$real_kvm" = yes ]; then args+=(-accel kvm -cpu host); else args+=(-accel tcg); fi
if [ "$firmware" = uefi ]; then
  ovmf=${CONTINUUM_OVMF:-}
  for f in /usr/share/ovmf/OVMF.fd /usr/share/OVMF/OVMF.fd /usr/share/edk2/ovmf/OVMF.fd /usr/share/qemu/OVMF.fd; do
    [ -z "$ovmf" ] && [ -f "$f" ] && ovmf=$f
  done
  args+=(-bios "$ovmf")
fi
# The stick: usb-storage on an xHCI controller, opened read-only for the
# guest's writes (snapshot=on), booted first.
args+=(-device qemu-xhci,id=xhci
       -drive "if=none,id=stick,format=raw,file=$image,snapshot=on"
       -device usb-storage,bus=xhci.0,drive=stick,bootindex=0)
# NICs are taken in PCI order: the replication LAN first when the config
# sets lan_ip (here an isolated stand-in, no peers), then the client network
# on QEMU user networking with the status port forwarded.
config_file=${config:-$cluster_dir/node-$node.conf}
if grep -Eq '^[[:space:]]*lan_ip[[:space:]]*=' "$config_file"; then
  args+=(-netdev user,id=lan,restrict=on -device "$nic,netdev=lan")
fi
args+=(-netdev "user,id=client,hostfwd=tcp:127.0.0.1:$status_port-:8080"
       -device "$nic,netdev=client")
echo "usb.sh: booting $image from an emulated USB stick ($nic NIC); status at http://127.0.0.1:$status_port/status; Ctrl-C stops"
exec qemu-system-x86_64 "${args[@]}"
