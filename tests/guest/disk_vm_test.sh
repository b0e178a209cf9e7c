#!/bin/bash
# disk_vm_test.sh — the encrypted data disk (guest.md §5g) inside a real
# Linux VM, where device-mapper exists (TAP).
#
# The host kernel here has no device-mapper, so guest_disk (disk_test.c)
# skips mapping and mounting the LUKS2 volume. This test boots Debian's
# kernel under QEMU (KVM when /dev/kvm is usable, else TCG) with an
# initramfs built now by tests/support/mkinitramfs.py: busybox, the modules
# (dm-crypt, loop, virtio-blk and their dependencies), cryptsetup and the
# e2fsprogs/util-linux tools with their libraries, and the dstack-util and
# guest_disk_test of this build tree. Its /init (disk_vm_init.sh) runs
# guest_disk_test on loop devices, then `dstack-util setup` on a virtio data
# disk, and writes both TAP streams to a second serial port. Here they are
# re-emitted as "in VM: ..." lines, and it is required that:
#   - the VM reaches its end marker before VM_TIMEOUT (QEMU is killed
#     otherwise; the test never hangs);
#   - guest_disk_test exits 0, its plan is complete, no SKIP names
#     device-mapper and the mount/reopen checks ran and passed;
#   - on the host, the data disk image now starts with a LUKS2 header
#     (cryptsetup luksDump: aes-xts-plain64, pbkdf2) and the text the guest
#     wrote through the mapping is nowhere in the image in plain.
# Skips (1..0 # SKIP) only when QEMU, a kernel with its modules, a static
# busybox or cryptsetup/mkfs.ext4/losetup/blkid is missing.
# Env: UTIL DISK_TEST DSTACK (built programs), WORK (a build directory),
# optional KERNEL, VM_TIMEOUT (seconds, default 420), KEEP=1 keeps the files.
set -u
here=$(cd "$(dirname "$0")" && pwd)
n=0
fails=0
ok() {
	n=$((n + 1))
	if [ "$1" = 0 ]; then echo "ok $n - $2"; else
		echo "not ok $n - $2"
		fails=$((fails + 1))
	fi
}
skip_all() {
	echo "1..0 # SKIP $1"
	exit 0
}

# ---- what the VM needs ----
for v in UTIL DISK_TEST DSTACK; do [ -x "${!v:-}" ] || skip_all "$v not built"; done
QEMU=$(command -v qemu-system-x86_64) || skip_all "qemu-system-x86_64 not installed (Debian qemu-system-x86)"
QEMU_IMG=$(command -v qemu-img) || skip_all "qemu-img not installed (Debian qemu-utils)"
BUSYBOX=/bin/busybox
[ -x "$BUSYBOX" ] || BUSYBOX=$(command -v busybox) || skip_all "busybox not installed (Debian busybox-static)"
ldd "$BUSYBOX" 2>&1 | grep -q "not a dynamic" || skip_all "$BUSYBOX is not static (Debian busybox-static)"
declare -A TOOL
for t in cryptsetup mkfs.ext4 losetup blkid; do
	TOOL[$t]=$(PATH=/usr/sbin:/sbin:$PATH command -v $t) ||
		skip_all "$t not installed (scripts/deps/guest-disk.txt)"
done
command -v python3 >/dev/null || skip_all "python3 not installed"
# /bin/sh of the VM: Debian's busybox-static shell runs its own applets
# before PATH (so `losetup --show` would be busybox's); dash searches PATH.
GUEST_SH=$(command -v dash || command -v bash) || skip_all "neither dash nor bash for the VM's /bin/sh"

# The newest kernel under /boot whose modules include dm-crypt.
kernel_ok() { [ -r "$1" ] && grep -q "/dm-crypt.ko" "/lib/modules/${1##*/vmlinuz-}/modules.dep" 2>/dev/null; }
if [ -n "${KERNEL:-}" ]; then
	kernel_ok "$KERNEL" || skip_all "KERNEL=$KERNEL: unreadable or no dm-crypt module under /lib/modules"
else
	KERNEL=
	while read -r k; do kernel_ok "$k" && KERNEL=$k; done < <(printf '%s\n' /boot/vmlinuz-* | sort -V)
	[ -n "$KERNEL" ] || skip_all "no readable /boot/vmlinuz-* with dm-crypt in its modules (Debian linux-image-cloud-amd64)"
fi
KVER=${KERNEL##*/vmlinuz-}

W=$(mktemp -d "${WORK:-/tmp}/disk-vm-XXXXXX")
QPID=
cleanup() {
	if [ -n "$QPID" ] && kill -0 "$QPID" 2>/dev/null; then
		kill "$QPID" 2>/dev/null
		wait "$QPID" 2>/dev/null
	fi
	if [ "${KEEP:-0}" = 1 ] || [ "$fails" != 0 ]; then
		rm -f "$W/initramfs.cpio" "$W/data.img"
		echo "# files kept in $W"
	else
		rm -rf "$W"
	fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# ---- the image ----
t0=$(date +%s)
mkdir -p "$W/cvm/shared"
"$DSTACK" simtee init "$W/cvm/pki" >"$W/simtee.log" 2>&1 &&
	"$DSTACK" simtee td-create --state "$W/cvm/td.json" >>"$W/simtee.log" 2>&1
ok $? "simulated TDX PKI and TD state for the VM's dstack-util"
cat >"$W/cvm/shared/app-compose.json" <<'EOF'
{"manifest_version":2,"name":"disk-vm","runner":"docker-compose","docker_compose_file":"services: {}",
 "key_provider":"none","storage_fs":"ext4"}
EOF
echo '{"kms_urls":[],"gateway_urls":[],"vm_config":"{}"}' >"$W/cvm/shared/.sys-config.json"

# Text the guest writes through the LUKS mapping; must not reach the image in plain.
MARKER="dstack-disk-vm-plaintext-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
{
	for v in ASAN_OPTIONS UBSAN_OPTIONS LSAN_OPTIONS; do
		[ -n "${!v:-}" ] && printf "export %s='%s'\n" "$v" "${!v//\'/}"
	done
	printf "export VDA_MARKER='%s'\n" "$MARKER"
} >"$W/vm-test.env"

extra=()
[ -f /etc/mke2fs.conf ] && extra+=(--file /etc/mke2fs.conf=/etc/mke2fs.conf)
python3 "$here/../support/mkinitramfs.py" -o "$W/initramfs.cpio" \
	--init "$here/disk_vm_init.sh" --busybox "$BUSYBOX" \
	--bin "${TOOL[cryptsetup]}=/usr/sbin/cryptsetup" --bin "${TOOL[mkfs.ext4]}=/usr/sbin/mkfs.ext4" \
	--bin "${TOOL[losetup]}=/usr/sbin/losetup" --bin "${TOOL[blkid]}=/usr/sbin/blkid" \
	--bin "$GUEST_SH=/bin/sh" --bin "$UTIL=/usr/bin/dstack-util" --bin "$DISK_TEST=/usr/bin/guest_disk_test" \
	--file "$W/vm-test.env=/etc/vm-test.env" --tree "$W/cvm=/cvm" "${extra[@]}" \
	--kver "$KVER" --module dm-crypt --module loop --module xts --module ecb \
	--module af_alg --module algif_skcipher --module algif_hash \
	--module virtio_pci --module virtio_blk --module virtio-rng 2>"$W/mkinitramfs.log"
ok $? "initramfs built ($(($(stat -c %s "$W/initramfs.cpio" 2>/dev/null || echo 0) / 1048576)) MiB, kernel $KVER)"
sed 's/^/# /' "$W/mkinitramfs.log"
"$QEMU_IMG" create -q -f raw "$W/data.img" 64M
ok $? "64 MiB virtio data disk image"
if [ $fails != 0 ]; then
	echo "1..$n"
	exit 1
fi

# ---- the VM ----
if [ -r /dev/kvm ] && [ -w /dev/kvm ]; then accel=(-accel kvm -cpu host); else accel=(-accel tcg -cpu max); fi
: >"$W/tap.log"
"$QEMU" -nodefaults -no-user-config -display none -no-reboot "${accel[@]}" -m 1024 -smp 1 \
	-kernel "$KERNEL" -initrd "$W/initramfs.cpio" -append "console=ttyS0 panic=-1 quiet" \
	-serial "file:$W/console.log" -serial "file:$W/tap.log" \
	-drive "file=$W/data.img,format=raw,if=virtio" -device virtio-rng-pci \
	>"$W/qemu.log" 2>&1 &
QPID=$!
t_vm=$(date +%s)
deadline=$(($(date +%s) + ${VM_TIMEOUT:-420}))
while ! grep -q "^DSTACK-VM-END" "$W/tap.log" && kill -0 $QPID 2>/dev/null && [ "$(date +%s)" -lt "$deadline" ]; do
	sleep 0.5
done
reached=1
grep -q "^DSTACK-VM-END" "$W/tap.log" && reached=0
# after the marker /init powers off; give QEMU a moment, then stop it
[ $reached = 0 ] && for _ in $(seq 40); do kill -0 $QPID 2>/dev/null || break; sleep 0.5; done
if kill -0 $QPID 2>/dev/null; then
	kill $QPID
	[ $reached = 0 ] || echo "# VM still running after ${VM_TIMEOUT:-420} s: killed"
fi
wait $QPID 2>/dev/null
QPID=
ok $reached "VM (${accel[1]}) ran both stages and reached its end marker (VM $(($(date +%s) - t_vm)) s, with the image $(($(date +%s) - t0)) s)"
if [ $reached != 0 ]; then
	tail -n 40 "$W/console.log" 2>/dev/null | tr -d '\r' | sed 's/^/# console: /'
	sed 's/^/# qemu: /' "$W/qemu.log"
fi

# ---- the guest's TAP, re-emitted ----
declare -A plan count rc notok
passed=()
skip_dm=0
section=
while IFS= read -r line; do
	line=${line%$'\r'}
	case "$line" in
	"DSTACK-VM-TAP "*) section=${line#DSTACK-VM-TAP }; count[$section]=0; notok[$section]=0; continue ;;
	"DSTACK-VM-RC "*) read -r _ s r <<<"$line"; rc[$s]=$r; section=; continue ;;
	DSTACK-VM-*) echo "# in VM: $line"; continue ;;
	esac
	if [ -z "$section" ]; then
		[ -n "$line" ] && echo "# in VM: ${line#\# }"
		continue
	fi
	if [[ $line =~ ^(not\ ok|ok)([[:space:]]+[0-9]+)?([[:space:]]+-)?[[:space:]]*(.*)$ ]]; then
		status=${BASH_REMATCH[1]}
		desc=${BASH_REMATCH[4]}
		count[$section]=$((count[$section] + 1))
		[ "$status" = ok ] || notok[$section]=$((notok[$section] + 1))
		if [[ $desc == *"# SKIP"* ]] && [[ $desc == *device-mapper* ]]; then skip_dm=$((skip_dm + 1)); fi
		n=$((n + 1))
		echo "$status $n - in VM: $desc"
		[ "$status" = ok ] || fails=$((fails + 1))
		[[ $desc == *"# SKIP"* ]] || [ "$status" != ok ] || passed+=("$section: ${desc%% (*}")
	elif [[ $line =~ ^1\.\.([0-9]+) ]]; then
		plan[$section]=${BASH_REMATCH[1]}
	elif [ -n "$line" ]; then
		echo "# in VM: ${line#\# }"
	fi
done < <(cat "$W/tap.log" 2>/dev/null)

passed_has() { local p; for p in "${passed[@]}"; do [ "$p" = "$1" ] && return 0; done; return 1; }
for s in disk_test vda; do
	[ "${rc[$s]:-x}" = 0 ]
	ok $? "in VM: $s finished with status 0 (status ${rc[$s]:-none})"
	[ -n "${plan[$s]:-}" ] && [ "${plan[$s]}" = "${count[$s]:-0}" ]
	ok $? "in VM: $s ran its whole plan (${count[$s]:-0} of ${plan[$s]:-?})"
done
[ $skip_dm = 0 ]
ok $? "in VM: no check skipped for want of device-mapper ($skip_dm)"
for want in "boot 1: setup succeeds" "boot 1: ext4 mounted at the mount point" "boot 1: unmounted and closed" \
	"reopen: opened and mounted, no mkfs" "reopen: boot 1's file survived" "reopen: mapper removed"; do
	passed_has "disk_test: $want"
	ok $? "in VM: the device-mapper check \"$want\" ran and passed"
done

# ---- the data disk image, from the host ----
magic=$(head -c 8 "$W/data.img" 2>/dev/null | od -An -tx1 | tr -d ' \n')
[ "$magic" = 4c554b53babe0002 ]
ok $? "data disk image starts with a LUKS2 header (magic $magic)"
dump=$("${TOOL[cryptsetup]}" luksDump "$W/data.img" 2>&1)
echo "$dump" | grep -q "cipher: aes-xts-plain64" && echo "$dump" | grep -q "PBKDF:      pbkdf2" &&
	echo "$dump" | grep -q "offset: 16777216 \[bytes\]"
ok $? "cryptsetup luksDump of the image: aes-xts-plain64, pbkdf2, data at 16 MiB"
nonzero=$(tail -c +16777217 "$W/data.img" 2>/dev/null | tr -d '\0' | head -c 65536 | wc -c)
[ "$nonzero" -gt 4096 ]
ok $? "the encrypted area holds data written through the mapping ($nonzero non-zero bytes sampled)"
passed_has "vda: file written on the data disk reads back" && ! grep -qaF "$MARKER" "$W/data.img"
ok $? "the text the guest wrote to /data is not in the image in plain"

echo "1..$n"
[ $fails = 0 ]
