#!/usr/bin/env bash
# End-to-end: `dstack dev up --backend qemu`. Without a bootable guest image
# it fails before anything starts, naming what is needed (--image DIR); a
# placeholder image is refused the same way. With an image that boots but
# does not run dstack's guest flow (Debian's kernel and a busybox initramfs
# made here, under TCG when there is no KVM) QEMU really runs it, and dev up
# neither hangs nor reports success: it fails within its --app-timeout with
# the guest's console in its output. `down` leaves no QEMU behind.
#
# Missing programs (QEMU, a kernel under /boot, static busybox, cpio) fail
# the test on a CI machine (see lib.sh).
set -u
DSTACK=$1
SRC=$2
. "$SRC/tests/e2e/lib.sh"
e2e_start /tmp/dstack-e2e-q.XXXXXX s

KERNEL=$(ls /boot/vmlinuz-* 2>/dev/null | tail -1)
require_or_skip dstack-kms dstack-gateway dstack-vmm dstack-util dstack-guest-agent qemu-system-x86_64 busybox cpio gzip wg ip
if [ -z "$KERNEL" ] || [ ! -r "$KERNEL" ] || ldd "$(command -v busybox)" >/dev/null 2>&1; then
	may_skip && {
		echo "1..0 # SKIP no readable kernel under /boot or no static busybox"
		exit 0
	}
	nok "a kernel under /boot and a static busybox (Debian: linux-image-cloud-amd64, busybox-static)"
	echo "1..$n"
	exit 1
fi

new_stack "$T/s" dev
out=$("$DSTACK" dev up --dir "$T/s" --backend qemu 2>&1)
rc=$?
check "--backend qemu without an image fails, naming --image DIR" '[ $rc -ne 0 ] && grep -q "needs its image: pass --image DIR" <<<"$out"'
check "... before anything starts (no pid file, no component log)" '[ -z "$(ls -A "$T/s/run")" ] && [ -z "$(ls -A "$T/s/logs")" ]'
check "--backend is recorded in build-config.sh and vmm.toml" 'grep -qx "VMM_BACKEND=qemu" "$T/s/build-config.sh" && grep -q "^backend = \"qemu\"" "$T/s/vmm.toml"'
check "QEMU guests are told the host as 10.0.2.2" 'grep -q "kms_urls = \[\"https://10.0.2.2:" "$T/s/vmm.toml"'

mkdir -p "$T/placeholder"
echo '{"kernel": "k", "initrd": "i", "version": "0.5.3"}' >"$T/placeholder/metadata.json"
: >"$T/placeholder/k"
: >"$T/placeholder/i"
out=$("$DSTACK" dev up --dir "$T/s" --image "$T/placeholder" 2>&1)
rc=$?
check "an image with an empty kernel is refused before anything starts" '[ $rc -ne 0 ] && grep -q "is empty" <<<"$out" && [ -z "$(ls -A "$T/s/run")" ]'

# A guest that boots and prints a marker, but runs no dstack guest flow.
IMG=$T/bbox-0.1
mkdir -p "$IMG/root/bin"
cp "$(command -v busybox)" "$IMG/root/bin/busybox"
printf '#!/bin/busybox sh\n/bin/busybox echo dstack-e2e-guest-up\nwhile true; do /bin/busybox sleep 3600; done\n' >"$IMG/root/init"
chmod +x "$IMG/root/init"
(cd "$IMG/root" && find . | cpio -o -H newc 2>/dev/null | gzip >"$IMG/initramfs.cpio.gz")
cp "$KERNEL" "$IMG/bzImage"
echo '{"cmdline": "console=ttyS0 panic=1", "kernel": "bzImage", "initrd": "initramfs.cpio.gz", "version": "0.5.3"}' >"$IMG/metadata.json"
start=$(date +%s)
out=$(timeout 300 "$DSTACK" dev up --dir "$T/s" --image "$IMG" --app-timeout 40 2>&1)
rc=$?
took=$(($(date +%s) - start))
check "a guest without dstack's flow: dev up fails (exit $rc), it does not report success" '[ $rc -ne 0 ] && [ $rc -ne 124 ] && ! grep -q "^The app (app id" <<<"$out"'
check "... within its app timeout, no hang (${took} s)" '[ $took -lt 200 ]'
check "... saying no instance registered with the gateway" 'grep -q "none of its 1 instance(s) registered" <<<"$out"'
check "QEMU booted the image: the guest's console (shown by dev up) has its marker" 'grep -q dstack-e2e-guest-up <<<"$out" && grep -q dstack-e2e-guest-up "$T"/s/vmm/vm/*/serial.log'
check "the image is linked into the VMM's image directory" '[ "$(readlink "$T/s/vmm/image/bbox-0.1")" = "$IMG" ]'
"$DSTACK" dev down --dir "$T/s" --grace 3 >/dev/null 2>&1
left=$(for d in /proc/[0-9]*; do { tr '\0' ' ' <"$d/cmdline" | grep -F -- "$T" >/dev/null && ! grep -q '^State:.*Z' "$d/status" && echo "${d#/proc/}"; } 2>/dev/null; done)
check "down leaves no QEMU (nor any process of the stack) behind" '[ -z "$left" ]'
echo "1..$n"
