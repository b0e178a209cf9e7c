#!/bin/sh
# /init of the data-disk VM (tests/guest/disk_vm_test.sh builds the
# initramfs around it): mounts the API file systems, loads the modules the
# builder listed in load-order (device-mapper, dm-crypt, loop, virtio-blk),
# then writes everything the host checks to the second serial port
# (/dev/ttyS1, a file on the host), so kernel messages on the console
# (ttyS0) never split a TAP line:
#   1. guest_disk_test (tests/guest/disk_test.c) on loop devices in tmpfs;
#   2. dstack-util setup on the virtio data disk /dev/vda: LUKS2-format,
#      open, ext4, mount, a file written; then unmounted and closed so the
#      host can inspect the image.
# Between the DSTACK-VM-BEGIN and DSTACK-VM-END markers; then power off.
# Runs under the image's /bin/sh (dash); every step is bounded by the host's timeout.
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tmpfs -o mode=1777 tmpfs /tmp
mount -t tmpfs -o mode=755 tmpfs /run
mkdir -p /run/cryptsetup /run/lock

out=/dev/ttyS1
say() { echo "$*" >"$out"; }
uptime_diag() { say "# guest uptime $(cut -d' ' -f1 /proc/uptime) s: $*"; }

kver=$(uname -r)
say "DSTACK-VM-BEGIN kernel $kver"
while read -r m; do
	insmod "/lib/modules/$kver/$m" 2>"$out" || say "# insmod $m failed"
done <"/lib/modules/$kver/load-order"
# virtio-blk probes asynchronously; wait (bounded) for the data disk.
i=0
while [ ! -b /dev/vda ] && [ $i -lt 100 ]; do
	sleep 0.1
	i=$((i + 1))
done

uptime_diag "modules loaded"

# shellcheck disable=SC1091 # written by the host script into the image
. /etc/vm-test.env

say "DSTACK-VM-TAP disk_test"
UTIL=/usr/bin/dstack-util /usr/bin/guest_disk_test >"$out" 2>&1
say "DSTACK-VM-RC disk_test $?"
uptime_diag "guest_disk_test done"

# --- the virtio data disk through dstack-util setup ---
say "DSTACK-VM-TAP vda"
n=0
failed=0
check() { # check DESCRIPTION COMMAND...
	d=$1
	shift
	n=$((n + 1))
	if "$@" >/dev/null 2>&1; then say "ok $n - $d"; else
		say "not ok $n - $d"
		failed=$((failed + 1))
	fi
}
mapper=/dev/mapper/dstack_data_disk
mkdir -p /run/cvm/work /run/cvm/rt /data
cp /cvm/td.json /run/cvm/td.json
/usr/bin/dstack-util setup --work-dir /run/cvm/work --host-shared /cvm/shared --tee simtee \
	--simtee-dir /cvm/pki --simtee-state /run/cvm/td.json --runtime-events-dir /run/cvm/rt \
	--device /dev/vda --mount-point /data >/run/cvm/setup.log 2>&1
rc=$?
check "dstack-util setup --device /dev/vda exits 0 (exit $rc)" test $rc = 0
check "setup log: initializing data disk, data disk ready" \
	sh -c 'grep -q "initializing data disk" /run/cvm/setup.log && grep -q "data disk ready" /run/cvm/setup.log'
check "/data is ext4 on $mapper" grep -q "^$mapper /data ext4 " /proc/mounts
check "$mapper is dm-crypt aes-xts-plain64 over /dev/vda" \
	sh -c "cryptsetup status dstack_data_disk >/run/cvm/status &&
	       grep -Eq 'cipher: +aes-xts-plain64' /run/cvm/status && grep -Eq 'device: +/dev/vda' /run/cvm/status"
echo "$VDA_MARKER" >/data/marker
sync
check "file written on the data disk reads back" \
	sh -c "grep -q '^$mapper /data ext4 ' /proc/mounts && grep -qx '$VDA_MARKER' /data/marker"
check "/data unmounted" umount /data
check "$mapper closed" cryptsetup close dstack_data_disk
[ $rc = 0 ] || sed 's/^/# setup: /' /run/cvm/setup.log >"$out"
say "1..$n"
say "DSTACK-VM-RC vda $failed"

sync
uptime_diag "data disk done"
say "DSTACK-VM-END"
poweroff -f
