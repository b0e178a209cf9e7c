# lib.sh — sourced by the dstack-vmm shell tests (tests/vmm/*.sh), so each
# test is its checks and not its scaffolding. Defines:
#
#   ok NAME 'TEST'           eval TEST: "ok N - NAME" / "not ok N - NAME"; the
#                            test's own output goes to stderr, never into TAP
#   skip NAME                "ok N - # SKIP NAME"
#   free_port BASE SPAN [HOST...]  a TCP port in [BASE, BASE+SPAN) that is free
#                            on every HOST (default 127.0.0.1) right now; the
#                            search starts at a pid- and RANDOM-derived offset
#   wait_for SECONDS CMD...  run CMD every 0.1 s until it succeeds
#   rpc METHOD [JSON]        POST $VMM_API/prpc/METHOD?json ({} by default);
#                            VMM_API is http://host:port or unix:/path
#   fake_image DIR VERSION [CMDLINE]  a placeholder guest image in DIR (empty
#                            kernel and initrd, metadata.json with VERSION)
#   supervisor_toml          the [supervisor] section of a vmm.toml: $SV, its
#                            socket, pid file and log in $T
#   finish                   stop $VPID, the pids in PIDS and the supervisor
#                            ($T/sv.pid, or SV_PID_FILE), remove $T
#                            (unless KEEP_TEST_DIR)
#
# A test sets T (its scratch directory) and, as it starts them, VPID (the
# dstack-vmm) and PIDS (stand-ins), then `trap finish EXIT`.
n=0
PIDS=()

ok() { n=$((n + 1)); if eval "$2" >&2; then echo "ok $n - $1"; else echo "not ok $n - $1"; fi; }
skip() { n=$((n + 1)); echo "ok $n - # SKIP $1"; }

free_port() { # base span [hosts...]
	python3 - "$1" "$2" "$(($$ * 7 + RANDOM))" "${@:3}" <<'PY'
import socket, sys
base, span, salt = map(int, sys.argv[1:4])
hosts = sys.argv[4:] or ["127.0.0.1"]
for i in range(span):
    p = base + (salt + i) % span
    free = True
    for h in hosts:
        s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((h, p))
        except OSError:
            free = False
        finally:
            s.close()
    if free:
        print(p); break
PY
}

wait_for() { # seconds cmd...
	local s=$1
	shift
	for _ in $(seq $((s * 10))); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
	return 1
}

rpc() { # method [json]
	local body='{}'
	[ $# -ge 2 ] && body=$2
	case $VMM_API in
	unix:*) curl -s --max-time 30 --unix-socket "${VMM_API#unix:}" -H 'Content-Type: application/json' \
		-d "$body" "http://localhost/prpc/$1?json" ;;
	*) curl -s --max-time 30 -H 'Content-Type: application/json' -d "$body" "$VMM_API/prpc/$1?json" ;;
	esac
}

fake_image() { # dir version [cmdline]
	mkdir -p "$1"
	: >"$1/bzImage"
	: >"$1/initramfs.cpio.gz"
	printf '{"kernel":"bzImage","initrd":"initramfs.cpio.gz","cmdline":"%s","version":"%s","shared_ro":true}\n' \
		"${3:-x}" "$2" >"$1/metadata.json"
}

supervisor_toml() {
	cat <<TOML
[supervisor]
exe = "$SV"
sock = "$T/sv.sock"
pid_file = "$T/sv.pid"
log_file = "$T/sv.log"
TOML
}

finish() {
	local p sv=${SV_PID_FILE:-$T/sv.pid}
	[ -n "${VPID:-}" ] && kill "$VPID" 2>/dev/null && wait "$VPID" 2>/dev/null
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
	for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
	if [ -f "$sv" ] && p=$(cat "$sv") && kill "$p" 2>/dev/null; then
		# not our child: wait until it is gone (it stops its VMs) before removing $T
		for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
	fi
	[ -n "${KEEP_TEST_DIR:-}" ] || rm -rf "$T"
}
