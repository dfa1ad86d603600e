#!/bin/sh
# Bootbench's imaging agent (busybox sh). Runs in the imaging environment and, for tests
# and benchmarks, on a plain Linux host against loop devices.
#   bootbench-agent disks              one line per disk: name, size, transport, removable, model, serial
#   bootbench-agent run URL [MAC]      ask the host at URL for this PC's task and carry it out
#
# Outside the imaging environment it writes only to the disks listed in
# BOOTBENCH_AGENT_DISKS (e.g. "/dev/loop7"): a test must never reach this machine's own disks.
set -u
set -o pipefail
SYS=${BOOTBENCH_SYSFS:-/sys}
CHUNK_MIB=4
# chunks per curl, sha256 and zstd call
BATCH=${BOOTBENCH_AGENT_BATCH:-8}

# SHA-256 of the files named (or of stdin): "HASH NAME" lines. openssl uses the CPU's SHA
# instructions, several times faster than busybox's sha256sum, which stays the fallback.
if command -v openssl >/dev/null 2>&1; then
  sha256() { openssl dgst -sha256 -r "$@" | sed 's/ \*/ /'; }
else
  sha256() { sha256sum "$@"; }
fi
# Level 4, not zstd's default 3: each chunk is its own frame and starts with an empty window,
# which at level 3 made an image a little larger than the same stream compressed whole.
ZSTD_LEVEL=${BOOTBENCH_ZSTD_LEVEL:-4}
# bb-imgio moves the chunks in one process (cut, compress, hash, keep-alive connections)
# where dd, zstd, openssl and curl each read or wrote every chunk staged in tmpfs files. The
# shell path below stays for a system without it (BOOTBENCH_AGENT_IMGIO=0 forces that path).
IMGIO=
[ "${BOOTBENCH_AGENT_IMGIO:-1}" != 0 ] && command -v bb-imgio >/dev/null 2>&1 && IMGIO=bb-imgio
IN_ENVIRONMENT=0
[ -f /etc/bootbench-imaging-release ] && IN_ENVIRONMENT=1

# --- disks ---------------------------------------------------------------------------

# Transport from where the disk hangs in the device tree: a USB disk is refused for
# writing whatever its model says, so look at the bus, not at the name.
disk_transport() {
  path=$(readlink -f "$SYS/block/$1/device" 2>/dev/null || true)
  case "$1:$path" in
    loop*) echo loop ;;
    *:*/usb[0-9]*) echo usb ;;
    nvme*) echo nvme ;;
    vd*) echo virtio ;;
    *:*/ata[0-9]*) echo sata ;;
    *:*virtio*) echo virtio ;;
    *) echo other ;;
  esac
}

field() { [ -r "$1" ] && tr -d '\n' <"$1" | sed 's/^ *//; s/ *$//; s/[^A-Za-z0-9._:+@-]/_/g'; }

candidate_names() {
  if [ -n "${BOOTBENCH_AGENT_DISKS:-}" ]; then
    for d in $BOOTBENCH_AGENT_DISKS; do echo "${d##*/}"; done
  elif [ "$IN_ENVIRONMENT" = 1 ] || [ "${LIST_ONLY:-0}" = 1 ]; then
    for dev in "$SYS"/block/*; do echo "${dev##*/}"; done
  fi
}

list_disks() {
  for name in $(candidate_names); do
    dev=$SYS/block/$name
    case "$name" in ram*|sr*|zram*|dm-*|md*|fd*) continue ;; esac
    [ -z "${BOOTBENCH_AGENT_DISKS:-}" ] && case "$name" in loop*) continue ;; esac
    sectors=$(cat "$dev/size" 2>/dev/null || echo 0)
    [ "$sectors" -gt 0 ] || continue
    model=$(field "$dev/device/model")
    serial=$(field "$dev/device/serial")
    [ -n "$serial" ] || serial=$(field "$dev/serial")
    echo "disk name=$name size=$((sectors * 512)) transport=$(disk_transport "$name") removable=$(cat "$dev/removable" 2>/dev/null || echo 0) model=${model:--} serial=${serial:--}"
  done
}

value_of() { echo "$2" | sed -n "s/.* $1=\([^ ]*\).*/\1/p"; }

# The one disk a task may touch: internal (never USB or removable), matching the task's
# selector (serial or model) when it has one; exactly one, or nothing happens.
choose_disk() {
  selector=$1
  list_disks >"$TMP/disks"
  : >"$TMP/chosen"
  while read -r line; do
    [ "$(value_of transport "$line")" = usb ] && continue
    [ "$(value_of removable "$line")" = 1 ] && continue
    if [ -n "$selector" ] && [ "$(value_of serial "$line")" != "$selector" ] && [ "$(value_of model "$line")" != "$selector" ]; then continue; fi
    echo "$line" >>"$TMP/chosen"
  done <"$TMP/disks"
  seen=$(sed 's/^disk //' "$TMP/disks" | tr '\n' ';' | sed 's/;$//')
  count=$(wc -l <"$TMP/chosen")
  if [ "$count" -eq 0 ]; then
    if [ -n "$selector" ]; then fail "no internal disk has serial or model \"$selector\"; disks seen: ${seen:-none}"
    else fail "no internal disk to use (USB and removable disks are never written); disks seen: ${seen:-none}"; fi
  fi
  if [ "$count" -gt 1 ]; then
    fail "$count internal disks and the task names none: choose one by serial or model (--disk); disks seen: $seen"
  fi
  DISK_LINE=$(cat "$TMP/chosen")
  DISK_NAME=$(value_of name "$DISK_LINE")
  DISK_SIZE=$(value_of size "$DISK_LINE")
  if [ -n "${BOOTBENCH_AGENT_DISKS:-}" ]; then
    for d in $BOOTBENCH_AGENT_DISKS; do [ "${d##*/}" = "$DISK_NAME" ] && DISK_DEV=$d; done
  else
    DISK_DEV=/dev/$DISK_NAME
  fi
}

# Partition N's device: the kernel's node, or (a loop device without partition scanning)
# a loop device over the partition's range.
partition_device() {
  n=$1; start=$2; sectors=$3
  for p in "${DISK_NAME}$n" "${DISK_NAME}p$n"; do
    if [ -e "$SYS/block/$DISK_NAME/$p" ] && [ -b "/dev/$p" ]; then echo "/dev/$p"; return 0; fi
  done
  case "$DISK_NAME" in
    loop*)
      # util-linux's losetup by path: busybox's applet (which its shell prefers) has no --sizelimit.
      dev=$(/usr/sbin/losetup -f --show -o $((start * 512)) --sizelimit $((sectors * 512)) "$DISK_DEV") || return 1
      echo "$dev" >>"$TMP/loops"
      echo "$dev" ;;
    *) return 1 ;;
  esac
}

release_partitions() {
  [ -f "$TMP/loops" ] && while read -r d; do /usr/sbin/losetup -d "$d" 2>/dev/null; done <"$TMP/loops"
  rm -f "$TMP/loops"
}

# `sfdisk --dump` partition lines: "<dev>N : start= S, size= C, type=..."
partition_lines() {
  sed -n 's/^[^ ]*[^0-9]\([0-9][0-9]*\) *: *start= *\([0-9]*\), *size= *\([0-9]*\).*/\1 \2 \3/p' "$1"
}

fs_type() { blkid "$1" 2>/dev/null | sed -n 's/.* TYPE="\([^"]*\)".*/\1/p'; }

reader_for() {
  case "$1" in
    ext2|ext3|ext4) echo extfs ;;
    ntfs) echo ntfs ;;
    vfat|fat12|fat16|fat32) echo fat ;;
    xfs) echo xfs ;;
    btrfs) echo btrfs ;;
    *) echo dd ;;
  esac
}

# --- talking to the host ---------------------------------------------------------------

# curl, not busybox wget: wget's --post-file stops at the first NUL byte.
http_get() { curl -sS --fail-with-body -o "$2" "$SERVER$1"; }
http_post_file() { curl -sS --fail-with-body -o "${3:-/dev/null}" --data-binary @"$2" -H 'Content-Type: application/octet-stream' "$SERVER$1"; }

set_state() { echo "$1" >"$TMP/phase"; [ $# -ge 2 ] && echo "$2" >"$TMP/bytes"; [ $# -ge 3 ] && echo "$3" >"$TMP/total"; }

# The state files are read with the shell's own `read`, not `$(cat)`: the reporter runs every
# second beside the work, and each command substitution was a fork. A file caught between
# its truncation and its rewrite reads empty: that report is skipped, the next one is sent.
send_report() {
  read -r report_bytes <"$TMP/bytes" && read -r report_total <"$TMP/total" && read -r report_phase <"$TMP/phase" || return 0
  report_part=; [ -s "$TMP/part" ] && read -r report_part <"$TMP/part"
  [ "$report_total" -gt 0 ] && [ "$report_bytes" -gt "$report_total" ] && report_bytes=$report_total
  { echo "phase=$report_phase"; echo "bytes=$report_bytes"; echo "total=$report_total"
    [ -n "$report_part" ] && echo "part=$report_part"
    [ $# -ge 1 ] && echo "reason=$1"; } >"$TMP/$REPORT_FILE"
  http_post_file "/imaging/jobs/$JOB/report?mac=$MAC" "$TMP/$REPORT_FILE"
}
REPORT_FILE=report

# At least one report a second while work goes on (its own report file: the agent also
# reports between its ticks). A stop lets a report under way arrive first, so none arrives
# stale after the agent's last; the sleep is waited for, so a stop need not wait it out.
start_reporter() {
  ( trap 'exit 0' TERM; REPORT_FILE=report.tick; while :; do sleep 1 >/dev/null 2>&1 & wait $!; send_report 2>/dev/null; done ) &
  REPORTER=$!
}

# With "wait": until the report under way, if any, has arrived.
stop_reporter() {
  [ -n "${WATCHER:-}" ] && kill "$WATCHER" 2>/dev/null
  [ -n "${REPORTER:-}" ] && kill "$REPORTER" 2>/dev/null && [ "${1:-}" = wait ] && wait "$REPORTER"
  REPORTER=; WATCHER=
}

fail() {
  stop_reporter
  echo "bootbench-agent: failed: $1" >&2
  if [ -n "${JOB:-}" ]; then
    echo failed >"$TMP/phase"
    send_report "$1" || echo "bootbench-agent: could not report the failure to $SERVER" >&2
  fi
  release_partitions
  exit 1
}

# --- capture ---------------------------------------------------------------------------

# Reads a partclone stream on stdin, cuts it into chunks, compresses and sends each; the
# chunk list goes to $TMP/chunks. Bytes done are added to $TMP/bytes. Chunks go in batches
# of $BATCH (one zstd, one sha256, one curl each): a process per chunk cost more than the
# data itself. While a batch is read, the one before is compressed and the one before that
# uploads, so reading, compressing and sending overlap as in a pipe.
# The stream's own SHA-256 (what a deploy's read-back is checked against) is taken from the
# batch files as they are cut, in order, by one hasher reading fd 7: a tee between the reader
# and the cutter copied every byte through small pipe writes and cost more than the cutting.
send_chunks() {
  part=$1; b=0; last=0; older=; newer=
  rm -rf "$TMP/up"; mkdir -p "$TMP/up"
  touch "$TMP/up/-1.done"
  while [ "$last" = 0 ]; do
    dir=$TMP/up/$b
    mkdir -p "$dir"
    # Only dd and shell built-ins here: while this loop runs, the reader waits for it. An
    # empty chunk is the end of the stream (a short one is followed by an empty one).
    set --
    while [ $# -lt "$BATCH" ]; do
      dd bs=1M count=$CHUNK_MIB iflag=fullblock of="$dir/$#" 2>/dev/null || return 1
      [ -s "$dir/$#" ] || { last=1; break; }
      set -- "$@" "$dir/$#"
    done
    [ $# -gt 0 ] || break
    cat "$@" >&7 || { echo "hashing the stream of partition $part failed" >"$TMP/why"; return 1; }
    if [ -n "$older" ]; then wait "$older" || return 1; fi
    { pack_batch "$b" "$@" || { touch "$TMP/up/failed"; exit 1; }; } &
    older=$newer; newer=$!
    b=$((b + 1))
  done
  for pid in $older $newer; do wait "$pid" || return 1; done
  return 0
}

# Compresses and hashes batch $1 (files $2...), then uploads it once the batch before it
# is stored, so the chunk list keeps the stream's order.
pack_batch() {
  n=$1; shift
  dir=$TMP/up/$n
  stat -c %s "$@" >"$dir/sizes"
  zstd -q -f -"$ZSTD_LEVEL" "$@" || { echo "zstd could not compress batch $n" >"$TMP/why"; return 1; }
  sha256 $(for f in "$@"; do echo "$f.zst"; done) >"$dir/sums" || return 1
  rm -f "$@"
  while [ ! -e "$TMP/up/$((n - 1)).done" ]; do
    [ -e "$TMP/up/failed" ] && return 1
    sleep 0.02
  done
  upload_batch "$dir" || return 1
  touch "$TMP/up/$n.done"
}

# Uploads the batch in $1 (one curl, one connection), then records its chunks in order.
upload_batch() {
  dir=$1
  set --
  while read -r sha file; do set -- "$@" -T "$file" "$SERVER/imaging/chunks/$sha?job=$JOB&mac=$MAC"; done <"$dir/sums"
  curl -sS --fail-with-body --fail-early -H 'Content-Type: application/octet-stream' "$@" >"$dir/answer" 2>&1 \
    || { echo "the host refused a chunk: $(tail -c 300 "$dir/answer")" >"$TMP/why"; return 1; }
  sed "s/^\([0-9a-f]*\) .*/chunk=$part \1/" "$dir/sums" >>"$TMP/chunks"
  added=0
  while read -r size; do added=$((added + size)); done <"$dir/sizes"
  echo $(($(cat "$TMP/bytes") + added)) >"$TMP/bytes"
  rm -rf "$dir"
}

capture() {
  choose_disk "$TASK_DISK"
  set_state checking 0 0
  send_report || fail "the host at $SERVER does not answer"
  sfdisk --dump "$DISK_DEV" >"$TMP/table" 2>/dev/null || fail "disk $DISK_NAME has no partition table sfdisk can read: only GPT and MBR disks are captured"
  label=$(sed -n 's/^label: *//p' "$TMP/table")
  partition_lines "$TMP/table" >"$TMP/parts"
  [ -s "$TMP/parts" ] || fail "disk $DISK_NAME has no partitions"
  # Everything that would make the image wrong is checked before the first byte is sent.
  : >"$TMP/plan"
  while read -r n start sectors; do
    dev=$(partition_device "$n" "$start" "$sectors") || fail "partition $n of $DISK_NAME has no device node"
    fs=$(fs_type "$dev")
    case "$fs" in
      BitLocker) fail "partition $n is BitLocker-encrypted: its data cannot be read. Turn BitLocker off in Windows (Settings > Privacy & security > Device encryption), let it decrypt, then capture again" ;;
      ntfs)
        ntfs-3g.probe --readwrite "$dev" 2>/dev/null; rc=$?
        case $rc in
          0) ;;
          14) fail "partition $n (NTFS) is hibernated: Windows was put to sleep or shut down with Fast Startup. In Windows run 'powercfg /h off' (or shut down with Shift held), then capture again" ;;
          15) fail "partition $n (NTFS) was not cleanly unmounted (Fast Startup or a crash). Start Windows, run 'chkdsk /f', shut down fully (Shift + Shut down), then capture again" ;;
          *) fail "partition $n (NTFS) cannot be read safely (ntfs-3g.probe exit $rc): run 'chkdsk /f' in Windows, then capture again" ;;
        esac ;;
    esac
    echo "$n $start $sectors $dev ${fs:--} $(reader_for "$fs")" >>"$TMP/plan"
  done <"$TMP/parts"
  # The boot area goes first as "partition 0": the MBR's boot code, and on an MBR disk the
  # gap before the first partition too (where GRUB and other BIOS loaders keep their core).
  first=$(sort -n -k2 "$TMP/parts" | head -n 1 | cut -d' ' -f2)
  boot_sectors=1
  [ "$label" = dos ] && boot_sectors=$first
  { echo "0 0 $boot_sectors $DISK_DEV - boot"; cat "$TMP/plan"; } >"$TMP/plan.all" && mv "$TMP/plan.all" "$TMP/plan"
  # The row's "X of Y" counts stream bytes, and partclone streams only the used blocks: the
  # total starts at the streams' largest sizes, takes each partclone partition's exact stream
  # size once partclone has counted its used blocks (watch_total), and each partition's
  # actual stream as it ends. It only shrinks, to the exact total, so the row never shows
  # 100% before the end.
  rest=0 # the not yet started partitions' largest streams
  while read -r n start sectors dev fs tool; do full_stream "$tool" "$sectors"; rest=$((rest + FULL)); done <"$TMP/plan"
  read_total=0 # the streams of the partitions read so far
  set_state reading 0 "$rest"
  start_reporter
  : >"$TMP/chunks"
  : >"$TMP/partlines"
  while read -r n start sectors dev fs tool; do
    echo "$n" >"$TMP/part"
    before=$(cat "$TMP/bytes")
    full_stream "$tool" "$sectors"; rest=$((rest - FULL))
    rm -f "$TMP/partclone.log"
    case "$tool" in boot|dd) ;; *) watch_total $((read_total + rest)) & WATCHER=$! ;; esac
    if [ -n "$IMGIO" ]; then
      # It appends the partition's chunk lines to $TMP/chunks and prints "BYTES SHA256" of the stream.
      rm -f "$TMP/why"
      read_partition "$tool" "$dev" "$sectors" \
        | bb-imgio put -u "$SERVER" -q "job=$JOB&mac=$MAC" -n "$n" -L "$ZSTD_LEVEL" -c "$TMP/chunks" -b "$TMP/bytes" -e "$TMP/why" >"$TMP/sum" \
        || fail "reading partition $n ($fs) failed: $(cat "$TMP/why" 2>/dev/null || tail -n 2 "$TMP/partclone.log" 2>/dev/null | tr '\n' ' ')"
      read -r bytes sum <"$TMP/sum"
    else
      rm -f "$TMP/fifo"; mkfifo "$TMP/fifo"
      sha256 <"$TMP/fifo" >"$TMP/sum" &
      hasher=$!
      exec 7>"$TMP/fifo"
      read_partition "$tool" "$dev" "$sectors" | send_chunks "$n" \
        || { exec 7>&-; kill "$hasher" 2>/dev/null; fail "reading partition $n ($fs) failed: $(cat "$TMP/why" 2>/dev/null || tail -n 2 "$TMP/partclone.log" 2>/dev/null | tr '\n' ' ')"; }
      exec 7>&-
      wait "$hasher" || fail "hashing the stream of partition $n failed"
      bytes=$(($(cat "$TMP/bytes") - before))
      sum=$(cut -d' ' -f1 "$TMP/sum")
    fi
    [ "$bytes" -gt 0 ] || fail "reading partition $n ($fs) gave no data: $(tail -n 2 "$TMP/partclone.log" 2>/dev/null | tr '\n' ' ')"
    echo "part=$n start=$start sectors=$sectors fs=$fs tool=$tool bytes=$bytes sha256=$sum" >>"$TMP/partlines"
    # The watcher's report, if under way, arrives before this exact one.
    if [ -n "${WATCHER:-}" ]; then kill "$WATCHER" 2>/dev/null; wait "$WATCHER"; WATCHER=; fi
    read_total=$((read_total + bytes))
    echo $((read_total + rest)) >"$TMP/total"
    send_report 2>/dev/null || :
  done <"$TMP/plan"
  # The last report before "done" is the whole stream, read.
  stop_reporter wait
  send_report 2>/dev/null || :
  {
    echo "label=$label"
    echo "disk=$DISK_NAME size=$DISK_SIZE model=$(value_of model "$DISK_LINE") serial=$(value_of serial "$DISK_LINE")"
    cat "$TMP/partlines" "$TMP/chunks"
    sed 's/^/table=/' "$TMP/table"
  } >"$TMP/manifest"
  release_partitions
  http_post_file "/imaging/jobs/$JOB/image?mac=$MAC" "$TMP/manifest" "$TMP/answer" || fail "the host did not accept the image: $(cat "$TMP/answer" 2>/dev/null)"
  echo "bootbench-agent: captured $DISK_NAME into image $TASK_IMAGE"
}

# --- deploy ----------------------------------------------------------------------------

# Writes chunk after chunk of partition $1 to stdout, each checked against its name first.
# Chunks travel in batches of $BATCH: one curl (one connection) fetches a batch and one
# sha256 checks it, while the batch before is decompressed and written; a batch is written
# only once every chunk in it hashed to its name. A process per chunk cost more than the
# data itself.
verified_stream() {
  # "SHA BYTES" lines: BYTES is what the chunk adds to the partition's stream (a host before
  # it sent none: then 4 MiB, the capture's cut, is counted).
  grep "^chunk=$1 " "$TMP/manifest" | cut -d' ' -f2,3 >"$TMP/want"
  # bb-imgio fetches ahead over one connection and checks each chunk before writing any of it.
  if [ -n "$IMGIO" ]; then
    bb-imgio get -u "$SERVER" -n "$1" -l "$TMP/want" -b "$TMP/bytes" -e "$TMP/why" || exit 1
    return 0
  fi
  rm -rf "$TMP/batch"; mkdir -p "$TMP/batch"
  k=0; i=0
  while read -r sha size; do
    [ "$i" -eq 0 ] && : >"$TMP/batch/$k.list" && : >"$TMP/batch/$k.sizes"
    echo "$sha" >>"$TMP/batch/$k.list"
    echo "${size:-$((CHUNK_MIB * 1048576))}" >>"$TMP/batch/$k.sizes"
    i=$((i + 1))
    [ "$i" -eq "$BATCH" ] && { k=$((k + 1)); i=0; }
  done <"$TMP/want"
  [ "$i" -eq 0 ] && k=$((k - 1))
  b=0; fetcher=
  while [ "$b" -le "$k" ]; do
    fetch_batch "$b" &
    fetcher=$!
    if [ "$b" -gt 0 ]; then write_batch $((b - 1)) || { kill "$fetcher" 2>/dev/null; exit 1; }; fi
    if ! wait "$fetcher"; then
      if [ -s "$TMP/batch/$b.why" ]; then cat "$TMP/batch/$b.why" >"$TMP/why"
      else echo "a chunk of partition $1 could not be fetched: $(cat "$TMP/batch/$b.err" 2>/dev/null)" >"$TMP/why"; fi
      exit 1
    fi
    b=$((b + 1))
  done
  [ "$k" -ge 0 ] && { write_batch "$k" || exit 1; }
  return 0
}

# Fetches batch $1 and checks its chunks against their names; what is wrong goes to $1.why.
fetch_batch() {
  list=$TMP/batch/$1.list; dir=$TMP/batch/$1.d; err=$TMP/batch/$1.err; why=$TMP/batch/$1.why
  mkdir -p "$dir"
  set --
  while read -r sha; do set -- "$@" -o "$dir/$sha" "$SERVER/imaging/chunks/$sha"; done <"$list"
  curl -sS --fail --fail-early "$@" 2>"$err" || return 1
  set --
  while read -r sha; do set -- "$@" "$dir/$sha"; done <"$list"
  if [ "$(sha256 "$@" | cut -d' ' -f1)" != "$(cat "$list")" ]; then
    while read -r sha; do
      got=$(sha256 "$dir/$sha" | cut -d' ' -f1)
      [ "$got" = "$sha" ] || { echo "chunk $sha arrived damaged (SHA-256 $got): nothing of it was written" >"$why"; return 1; }
    done <"$list"
  fi
}

# Decompresses batch $1's chunks, checked by fetch_batch, to stdout in order.
write_batch() {
  list=$TMP/batch/$1.list; dir=$TMP/batch/$1.d; sizes=$TMP/batch/$1.sizes
  set --
  while read -r sha; do set -- "$@" "$dir/$sha"; done <"$list"
  zstd -q -d -c "$@" || { echo "a chunk of $(tr '\n' ' ' <"$list")does not decompress" >"$TMP/why"; return 1; }
  added=0
  while read -r size; do added=$((added + size)); done <"$sizes"
  echo $(($(cat "$TMP/bytes") + added)) >"$TMP/bytes"
  rm -rf "$dir"
}

# Partition $1's data to stdout: from the deploy's multicast stream when the task names one
# and the receiver is here, else chunk by chunk over HTTP (verified_stream). bb-stream-recv
# runs once for the whole deploy: it checks each chunk against its name, repairs what the
# stream missed by HTTP, and hands partition N's chunks to the FIFO $TMP/stream/part-N.
partition_stream() {
  if [ -z "${TASK_STREAM:-}" ] || ! command -v bb-stream-recv >/dev/null 2>&1; then verified_stream "$1"; return; fi
  if [ ! -d "$TMP/stream" ]; then
    mkdir -p "$TMP/stream"
    sed -n 's/^chunk=//p' "$TMP/manifest" >"$TMP/stream/list"
    for p in $(cut -d' ' -f1 "$TMP/stream/list" | uniq); do mkfifo "$TMP/stream/part-$p"; done
    # Its stdout is not this pipe: the partition's writer must see the end of its data.
    bb-stream-recv -g "$TASK_STREAM" -s "$SERVER" -m "$MAC" -l "$TMP/stream/list" -o "$TMP/stream" -b "$TMP/bytes" -e "$TMP/stream/why" >/dev/null &
  fi
  zstd -q -d -c <"$TMP/stream/part-$1" && [ ! -e "$TMP/stream/why" ] \
    || { echo "partition $1 from the stream: $(cat "$TMP/stream/why" 2>/dev/null || echo 'a chunk does not decompress')" >"$TMP/why"; exit 1; }
}

# FULL: the largest stream partition $2 (sectors) read with tool $1 can give: the raw size,
# less the 72 bytes of the table in the boot area's first sector.
full_stream() { if [ "$1" = boot ]; then FULL=$(($2 * 512 - 72)); else FULL=$(($2 * 512)); fi; }

# Once partclone's log shows the used blocks (it counts them before it copies any), the total
# ($1 plus this partition's share) takes the exact size of the stream it will give: its image
# header (110 bytes), the bitmap (a bit a block) and its CRC32 (4 bytes), the used blocks; no
# per-block checksums (-a0). Run in the background: a stop ends it between two polls.
watch_total() {
  trap 'exit 0' TERM
  while ! grep -q '^Total block' "$TMP/partclone.log" 2>/dev/null; do sleep 0.2 >/dev/null 2>&1 & wait $!; done
  used=$(sed -n 's/^Space in use:.*= *\([0-9]*\) Blocks.*/\1/p' "$TMP/partclone.log")
  size=$(sed -n 's/^Block size: *\([0-9]*\) Byte.*/\1/p' "$TMP/partclone.log")
  blocks=$(sed -n 's/^Total block *\([0-9]*\).*/\1/p' "$TMP/partclone.log")
  [ -n "$used" ] && [ -n "$size" ] && [ -n "$blocks" ] || exit 0
  echo $(($1 + 110 + (blocks + 7) / 8 + 4 + used * size)) >"$TMP/total"
  REPORT_FILE=report.estimate send_report 2>/dev/null
  exit 0
}

# The partition as a stream: partclone's used-blocks image, or for partclone.dd (which
# takes no -c) the raw partition.
# The boot area ($3 sectors from the disk's start) leaves out bytes 440-511 of sector 0:
# the disk signature and partition table, which the table itself restores.
read_partition() {
  case "$1" in
    dd) partclone.dd -f 0 -s "$2" -o - -L "$TMP/partclone.log" 2>/dev/null ;;
    boot) dd if="$2" bs=440 count=1 2>/dev/null && dd if="$2" bs=512 skip=1 count=$(($3 - 1)) 2>/dev/null ;;
    # -a0: no per-block CRC32 in the stream; each chunk's SHA-256 and the partition's
    # stream SHA-256 already cover it. -f 0: see write_partition.
    *) partclone."$1" -c ${4:--a0} -f 0 -s "$2" -o - -L "$TMP/partclone.log" 2>/dev/null ;;
  esac
}

# partclone.dd streams are the raw partition, with no partclone header to restore from.
write_partition() {
  case "$1" in
    dd) dd of="$2" bs=1M 2>"$TMP/partclone.log" ;;
    boot) dd of="$2" bs=440 count=1 iflag=fullblock conv=notrunc 2>"$TMP/partclone.log" \
      && dd of="$2" bs=512 seek=1 conv=notrunc 2>>"$TMP/partclone.log" ;;
    # -f 0: partclone's progress thread otherwise sleeps its 2 s interval out before
    # partclone exits, on every partition; at 0 it ends at once and costs no CPU.
    *) partclone.restore -f 0 -s - -O "$2" -L "$TMP/partclone.log" >/dev/null 2>&1 ;;
  esac
}

# The kernel adds the new partitions' nodes as it re-reads the table: wait for the first
# (up to 3 s) rather than a fixed time. A loop device without partition scanning never
# gets them (partition_device makes its own).
wait_for_partitions() {
  [ "$(cat "$SYS/block/$DISK_NAME/loop/partscan" 2>/dev/null || echo 1)" = 0 ] && return 0
  first=$(sed -n 's/^part=\([1-9][0-9]*\) .*/\1/p' "$TMP/manifest" | head -n 1)
  [ -n "$first" ] || return 0
  tries=0
  while [ "$tries" -lt 30 ]; do
    for p in "${DISK_NAME}$first" "${DISK_NAME}p$first"; do [ -b "/dev/$p" ] && return 0; done
    sleep 0.1
    tries=$((tries + 1))
  done
}

deploy() {
  http_get "/imaging/jobs/$JOB/manifest?mac=$MAC" "$TMP/manifest" || fail "the host has no image \"$TASK_IMAGE\" for this job"
  choose_disk "$TASK_DISK"
  required=$(sed -n 's/^required=//p' "$TMP/manifest")
  set_state checking 0 0
  if [ "$DISK_SIZE" -lt "$required" ]; then
    fail "disk $DISK_NAME has $DISK_SIZE bytes, the image needs $required: use a larger disk"
  fi
  send_report || fail "the host at $SERVER does not answer"
  total=0
  for b in $(sed -n 's/^part=.* bytes=\([0-9]*\) .*/\1/p' "$TMP/manifest"); do total=$((total + b)); done
  set_state partitioning 0 "$total"
  start_reporter
  sed -n 's/^table=//p' "$TMP/manifest" | grep -v -e '^device:' -e '^last-lba:' >"$TMP/table"
  sfdisk -q --no-reread --no-tell-kernel "$DISK_DEV" <"$TMP/table" >/dev/null 2>"$TMP/why" || fail "writing the partition table failed: $(cat "$TMP/why")"
  blockdev --rereadpt "$DISK_DEV" 2>/dev/null
  wait_for_partitions
  sed -n 's/^part=\([0-9]*\) start=\([0-9]*\) sectors=\([0-9]*\) fs=\([^ ]*\) tool=\([^ ]*\) bytes=\([0-9]*\) sha256=\([0-9a-f]*\)/\1 \2 \3 \4 \5 \6 \7/p' "$TMP/manifest" >"$TMP/plan"
  : >"$TMP/devices"
  while read -r n start sectors fs tool bytes sha; do
    if [ "$n" = 0 ]; then dev=$DISK_DEV
    else dev=$(partition_device "$n" "$start" "$sectors") || fail "partition $n has no device node after writing the table"; fi
    echo "$n $dev $tool $sha $fs $bytes $sectors" >>"$TMP/devices"
    echo "$n" >"$TMP/part"
    set_state writing
    # Told at once, not at the next tick: the row names the partition, and the bytes so far
    # are exactly the partitions before it.
    send_report 2>/dev/null
    rm -f "$TMP/why"
    partition_stream "$n" | write_partition "$tool" "$dev" \
      || fail "writing partition $n failed: $(cat "$TMP/why" 2>/dev/null || tail -n 2 "$TMP/partclone.log" | tr '\n' ' ')"
  done <"$TMP/plan"
  # Verified: each partition read back from the disk gives the very stream the image holds.
  set_state verifying 0 "$total"
  while read -r n dev tool sha fs bytes sectors; do
    echo "$n" >"$TMP/part"
    got=$(read_partition "$tool" "$dev" "$sectors" | sha256 | cut -d' ' -f1)
    # An image whose stream carries partclone's CRC32 (-a1, partclone's default) reads back that way.
    if [ "$got" != "$sha" ] && [ "$tool" != dd ] && [ "$tool" != boot ]; then
      got=$(read_partition "$tool" "$dev" "$sectors" -a1 | sha256 | cut -d' ' -f1)
    fi
    [ "$got" = "$sha" ] || fail "partition $n reads back differently from the image (SHA-256 $got, expected $sha): the disk may be failing"
    echo $(($(cat "$TMP/bytes") + bytes)) >"$TMP/bytes"
  done <"$TMP/devices"
  : >"$TMP/part"
  set_state naming
  name_machine
  release_partitions
  stop_reporter
  set_state done
  send_report || echo "bootbench-agent: could not report the result to $SERVER" >&2
  echo "bootbench-agent: deployed image $TASK_IMAGE to $DISK_NAME, verified"
  [ -f "$TMP/named" ] && sed 's/^/bootbench-agent: /' "$TMP/named"
}

# The PC's name from the machine list: /etc/hostname of a Linux root file system, and
# an unattend file with ComputerName that Windows reads on its first start.
name_machine() {
  [ -n "$TASK_HOSTNAME" ] || return 0
  mkdir -p "$TMP/mnt"
  while read -r n dev tool sha fs bytes sectors; do
    case "$fs" in
      ext2|ext3|ext4|xfs|btrfs)
        mount -t "$fs" "$dev" "$TMP/mnt" 2>"$TMP/why" || { echo "bootbench-agent: partition $n ($fs) could not be mounted to name the PC: $(cat "$TMP/why")" >&2; continue; }
        if [ -f "$TMP/mnt/etc/hostname" ]; then
          echo "$TASK_HOSTNAME" >"$TMP/mnt/etc/hostname"
          echo "named: /etc/hostname on partition $n" >>"$TMP/named"
        fi
        umount "$TMP/mnt" ;;
      ntfs)
        ntfs-3g "$dev" "$TMP/mnt" 2>"$TMP/why" || { echo "bootbench-agent: partition $n (NTFS) could not be mounted to name the PC: $(cat "$TMP/why")" >&2; continue; }
        if [ -d "$TMP/mnt/Windows" ]; then
          mkdir -p "$TMP/mnt/Windows/Panther"
          unattend_xml >"$TMP/mnt/Windows/Panther/unattend.xml"
          echo "named: Windows/Panther/unattend.xml on partition $n" >>"$TMP/named"
        fi
        umount "$TMP/mnt" ;;
    esac
  done <"$TMP/devices"
}

unattend_xml() {
  cat <<XML
<?xml version="1.0" encoding="utf-8"?>
<unattend xmlns="urn:schemas-microsoft-com:unattend">
  <settings pass="specialize">
    <component name="Microsoft-Windows-Shell-Setup" processorArchitecture="amd64" publicKeyToken="31bf3856ad364e35" language="neutral" versionScope="nonSxS">
      <ComputerName>$TASK_HOSTNAME</ComputerName>
    </component>
  </settings>
</unattend>
XML
}

# --- main ------------------------------------------------------------------------------

run_task() {
  SERVER=${1%/}
  MAC=${2:-}
  if [ -z "$MAC" ]; then
    MAC=$(cat "/sys/class/net/$(sed -n 's/^\([^ ]*\) .*/\1/p' /run/network 2>/dev/null)/address" 2>/dev/null || true)
  fi
  [ -n "$MAC" ] || { echo "bootbench-agent: no MAC address to ask for a task with" >&2; exit 64; }
  if [ "$IN_ENVIRONMENT" = 0 ] && [ -z "${BOOTBENCH_AGENT_DISKS:-}" ]; then
    echo "bootbench-agent: outside the imaging environment, set BOOTBENCH_AGENT_DISKS to the disks it may use" >&2
    exit 64
  fi
  # A missing tool must stop the agent, not quietly turn a file system into a raw copy.
  for tool in sfdisk blkid partclone.restore partclone.extfs zstd curl sha256sum; do
    command -v "$tool" >/dev/null 2>&1 || { echo "bootbench-agent: $tool is missing from this environment" >&2; exit 69; }
  done
  TMP=$(mktemp -d "${BOOTBENCH_AGENT_TMP:-/tmp}/bootbench-agent.XXXXXX")
  trap 'stop_reporter; release_partitions; rm -rf "$TMP"' EXIT
  echo 0 >"$TMP/bytes"; echo 0 >"$TMP/total"; echo booting >"$TMP/phase"; : >"$TMP/part"
  http_get "/imaging/task?mac=$MAC" "$TMP/task" || { echo "bootbench-agent: the host at $SERVER does not answer" >&2; exit 1; }
  JOB= TASK_KIND= TASK_IMAGE= TASK_DISK= TASK_THEN= TASK_HOSTNAME= TASK_STREAM=
  while IFS='=' read -r key value; do
    case "$key" in
      job) JOB=$value ;; kind) TASK_KIND=$value ;; image) TASK_IMAGE=$value ;;
      disk) TASK_DISK=$value ;; then) TASK_THEN=$value ;; hostname) TASK_HOSTNAME=$value ;;
      stream) TASK_STREAM=$value ;;
    esac
  done <"$TMP/task"
  [ "$TASK_KIND" = none ] || echo "bootbench-agent: task $TASK_KIND of image $TASK_IMAGE (job $JOB) for ${TASK_HOSTNAME:-$MAC}"
  case "$TASK_KIND" in capture|deploy) [ -n "$IMGIO" ] && echo "bootbench-agent: chunks move through bb-imgio" ;; esac
  case "$TASK_KIND" in
    capture) capture ;;
    deploy) deploy ;;
    none) echo "bootbench-agent: no imaging task for $MAC"; return 3 ;;
    *) echo "bootbench-agent: the host sent an unknown task \"$TASK_KIND\"" >&2; exit 1 ;;
  esac
  echo "then=$TASK_THEN" >"${BOOTBENCH_AGENT_THEN_FILE:-/dev/null}"
}

case "${1:-}" in
  disks) LIST_ONLY=1 list_disks ;; # listing never writes: every disk is shown
  run) shift; run_task "$@" ;;
  *) echo "usage: bootbench-agent disks | run URL [MAC]" >&2; exit 64 ;;
esac
