# lib.sh — helpers shared by the dev-stack end-to-end tests (sourced after
# DSTACK, the built dstack CLI, is set; BUILD is its build tree).
#
# TAP output (ok/nok/skip/check), the programs of the build tree, a scratch
# directory whose stack is brought down at exit (e2e_start), a scratch
# state directory with ports, WireGuard interface and subnet of its own (so
# parallel stacks never collide), and the network namespaces of a stack.
#
# Missing programs: on a CI machine (root on Debian, where `./do deps`
# installs everything) a missing program is a failure, not a skip, so a
# broken build or a dependency dropped from the list cannot pass unnoticed.
# Elsewhere, or with DSTACK_E2E_ALLOW_SKIP=1, the tests that need it skip.

[ -n "${DSTACK:-}" ] && BUILD=${BUILD:-$(cd "$(dirname "$DSTACK")/.." && pwd)}
n=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
nok() { n=$((n + 1)); echo "not ok $n - $1"; }
skip() { n=$((n + 1)); echo "ok $n # SKIP $1"; }
check() { if eval "$2" >/dev/null 2>&1; then ok "$1"; else nok "$1"; fi; }

# May a missing program be skipped here?
may_skip() {
	[ "${DSTACK_E2E_ALLOW_SKIP:-0}" = 1 ] && return 0
	[ "$(id -u)" = 0 ] && [ -f /etc/debian_version ] && return 1
	return 0
}

# find_prog NAME BUILD-RELATIVE-PATH: the build tree's program, else $PATH's.
find_prog() {
	if [ -x "$BUILD/$2" ]; then echo "$BUILD/$2"; else command -v "$1"; fi
}

# require NAME...: every program is present (build tree or $PATH); prints
# the missing ones. Returns 1 when something is missing and may be skipped,
# exits the test with a failure when it may not.
require() {
	local missing=() p
	for p in "$@"; do
		case $p in
		dstack-kms) [ -n "$(find_prog dstack-kms kms/dstack-kms)" ] || missing+=("$p") ;;
		dstack-gateway) [ -n "$(find_prog dstack-gateway gateway/dstack-gateway)" ] || missing+=("$p") ;;
		dstack-vmm) [ -n "$(find_prog dstack-vmm vmm/dstack-vmm)" ] || missing+=("$p") ;;
		auth-simple) [ -n "$(find_prog auth-simple auth-simple/auth-simple)" ] || missing+=("$p") ;;
		dstack-util) [ -n "$(find_prog dstack-util guest/dstack-util)" ] || missing+=("$p") ;;
		dstack-guest-agent) [ -n "$(find_prog dstack-guest-agent guest/dstack-guest-agent)" ] || missing+=("$p") ;;
		*) command -v "$p" >/dev/null || missing+=("$p") ;;
		esac
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	if may_skip; then
		echo "# missing: ${missing[*]}"
		return 1
	fi
	nok "programs present: ${missing[*]} missing (root on Debian: \`./do deps\` and \`./do build\` install and build them; DSTACK_E2E_ALLOW_SKIP=1 skips instead)"
	echo "1..$n"
	exit 1
}

# require_or_skip NAME...: require, and when something may be skipped, skip
# the whole test.
require_or_skip() {
	require "$@" && return 0
	echo "1..0 # SKIP programs missing (see above)"
	exit 0
}

# e2e_start TEMPLATE [SUBDIR]: T := a new directory (mktemp -d TEMPLATE),
# STACK := T/SUBDIR (or T), the stack's state directory. At exit: `dstack dev
# down` of STACK when it exists, then cleanup_extra (when the test defines
# one), then T removed unless KEEP or KEEP_TEST_DIR is set.
e2e_start() {
	T=$(mktemp -d "$1")
	STACK=$T${2:+/$2}
	trap e2e_cleanup EXIT
}
e2e_cleanup() {
	[ -d "$STACK" ] && "$DSTACK" dev down --dir "$STACK" --grace 2 >/dev/null 2>&1
	declare -F cleanup_extra >/dev/null && cleanup_extra
	[ -n "${KEEP:-}${KEEP_TEST_DIR:-}" ] || rm -rf "$T"
}

# new_stack DIR AUTH: a build-config.sh in DIR with free ports BASE+1..+8
# below the ephemeral range, an interface dse2e<R> and a subnet of its own.
# Sets BASE, R, IFACE, SERVE (the gateway's serving port).
new_stack() {
	local dir=$1 auth=$2 try busy
	for try in 1 2 3 4 5 6 7 8 9 10; do
		R=$((RANDOM % 500))
		BASE=$((20000 + R * 20))
		busy=$(ss -Htaun 2>/dev/null | awk '{print $5}' | sed 's/.*://' |
			awk -v lo=$BASE -v hi=$((BASE + 9)) '$1 >= lo && $1 <= hi' | head -1)
		[ -z "$busy" ] && [ ! -e /sys/class/net/dse2e$R ] && break
	done
	IFACE=dse2e$R
	SERVE=$((BASE + 4))
	mkdir -p "$dir"
	cat >"$dir/build-config.sh" <<CFG
KMS_DOMAIN=kms.localhost
GATEWAY_DOMAIN=gateway.localhost
GATEWAY_PUBLIC_DOMAIN=app.localhost
BIND_IP=127.0.0.1
KMS_RPC_LISTEN_PORT=$((BASE + 1))
GATEWAY_RPC_LISTEN_PORT=$((BASE + 2))
GATEWAY_ADMIN_LISTEN_PORT=$((BASE + 3))
GATEWAY_SERVING_PORT=$SERVE
VMM_RPC_LISTEN_PORT=$((BASE + 5))
AUTH_LISTEN_PORT=$((BASE + 6))
SIMTEE_LISTEN_PORT=$((BASE + 7))
GATEWAY_WG_LISTEN_PORT=$((BASE + 8))
GATEWAY_WG_INTERFACE=$IFACE
GATEWAY_WG_IP=10.$((200 + R % 50)).$((R % 250)).1
CID_POOL_START=$((20000 + R * 16))
CID_POOL_SIZE=16
KMS_AUTH=$auth
CFG
}

# app_get HOST-PREFIX CURL-ARGS...: GET / of an app URL through the gateway.
app_get() {
	local h=$1
	shift
	curl -sS --max-time 10 --resolve "$h.app.localhost:$SERVE:127.0.0.1" "$@" "https://$h.app.localhost:$SERVE/"
}

# The host's network namespace (ours).
host_netns() { readlink /proc/self/ns/net | tr -cd 0-9; }

# stack_netns DIR: network namespace inodes (other than the host's) of the
# processes of the stack in DIR: those whose working directory is inside DIR
# or whose command line names it (the VMs' processes, the relays).
stack_netns() {
	local dir=$1 host d ns
	host=$(host_netns)
	for d in /proc/[0-9]*; do
		{
			case "$(readlink "$d/cwd")" in "$dir" | "$dir"/*) ;; *)
				tr '\0' ' ' <"$d/cmdline" | grep -qF -- "$dir" || continue
				;;
			esac
			ns=$(readlink "$d/ns/net" | tr -cd 0-9)
			[ -n "$ns" ] && [ "$ns" != "$host" ] && echo "$ns"
		} 2>/dev/null
	done | sort -u
}

# netns_alive INODE: a process is in it, or it is bind-mounted (`ip netns
# add`, or by anything else), or lsns lists it.
netns_alive() {
	local ns=$1 d
	for d in /proc/[0-9]*; do
		[ "$(readlink "$d/ns/net" 2>/dev/null | tr -cd 0-9)" = "$ns" ] && return 0
	done
	grep -q "net:\[$ns\]" /proc/self/mountinfo 2>/dev/null && return 0
	lsns -t net -n -o NS 2>/dev/null | tr -d ' ' | grep -qx "$ns" && return 0
	return 1
}
