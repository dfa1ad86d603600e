#!/bin/sh
# Bootbench's imaging agent (busybox sh). Runs in the imaging environment and, for tests
# and benchmarks, on a plain Linux host.
#   bootbench-agent disks       one line per disk: name, size, transport, removable, model, serial
#   bootbench-agent run URL     ask the host at URL for this PC's task and carry it out
set -u
SYS=${BOOTBENCH_SYSFS:-/sys}

# Transport from where the disk hangs in the device tree: a USB disk is refused for
# writing whatever its model says, so look at the bus, not at the name.
disk_transport() {
  path=$(readlink -f "$SYS/block/$1/device" 2>/dev/null || true)
  case "$1:$path" in
    *:*/usb[0-9]*) echo usb ;;
    nvme*) echo nvme ;;
    vd*) echo virtio ;;
    *:*/ata[0-9]*) echo sata ;;
    *:*virtio*) echo virtio ;;
    *) echo other ;;
  esac
}

field() { [ -r "$1" ] && tr -d '\n' <"$1" | sed 's/^ *//; s/ *$//; s/ /_/g'; }

list_disks() {
  for dev in "$SYS"/block/*; do
    name=${dev##*/}
    case "$name" in loop*|ram*|sr*|zram*|dm-*|md*|fd*) continue ;; esac
    sectors=$(cat "$dev/size" 2>/dev/null || echo 0)
    [ "$sectors" -gt 0 ] || continue
    model=$(field "$dev/device/model")
    serial=$(field "$dev/device/serial")
    [ -n "$serial" ] || serial=$(field "$dev/serial")
    echo "disk name=$name size=$((sectors * 512)) transport=$(disk_transport "$name") removable=$(cat "$dev/removable" 2>/dev/null || echo 0) model=${model:--} serial=${serial:--}"
  done
}

case "${1:-}" in
  disks) list_disks ;;
  run)
    echo "bootbench-agent: no imaging task support in this build; host ${2:-?}" >&2
    exit 2 ;;
  *) echo "usage: bootbench-agent disks | run URL" >&2; exit 64 ;;
esac
