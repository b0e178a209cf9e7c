# kms-stack.sh — sourced by integration tests that need certificates issued
# by a real dstack-kms on the simulated TDX (KMS SignCert through a guest
# agent's GetTlsKey), or CVMs booted against it, without writing the set-up
# again. Defines:
#
#   ks_init NS IP DIR [NAME...] use network namespace NS (made by the caller), the
#                           address IP in it and the work dir DIR; maps
#                           kms.test (and each NAME) to IP in /etc/netns/NS/hosts
#   ks_hosts NS             the same host names in another namespace NS
#   ks_kms_up GW_APP_ID     all three steps below, in order:
#     ks_collateral_up      collateral service (dstack simtee serve) on IP:8020
#     ks_kms_cvm_up         the KMS's own CVM (provider none) and guest agent
#     ks_kms_start GW_APP_ID  dstack-kms (dev auth, gateway_app_id = GW_APP_ID)
#                           at https://kms.test:8000, restarted if running; its
#                           root certificate is $KS_W/kms/certs/root-ca.crt
#   ks_setup NS NAME COMPOSE SYS_CONFIG [dstack-util setup args...]
#                           boot a simulated CVM with dstack-util in NS: shared
#                           files, a fresh TD (the work dir, and so the disk
#                           and keys, are kept across calls); SYS_CONFIG
#                           "" = {kms_urls: [https://kms.test:8000], vm_config};
#                           its log is $KS_W/NAME/setup.log
#   ks_agent_up NAME        the CVM's guest agent on $KS_W/NAME/dstack.sock
#   ks_cvm_boot NAME COMPOSE SYS_CONFIG [args...]  ks_setup in NS, then ks_agent_up
#   ks_agent NAME METHOD JSON   call the CVM's guest agent, print the reply
#   ks_client_cert NAME CRT KEY an RA-TLS client certificate from the KMS
#                           (chain with the App CA) carrying the CVM's AppInfo
#   ks_bg_in NS LOG CMD...  run CMD in NS in the background (stopped by ks_stop)
#   ks_wait TRIES CMD...    retry CMD every 0.2 s until it succeeds
#   ks_stop                 stop everything started here, remove the hosts files
#
# Needs root, and UTIL AGENT KMS DSTACK (built programs) in the environment.
# Processes started here are remembered in KS_PIDS.
. "$(dirname "${BASH_SOURCE[0]}")/kms-dev-toml.sh"

KS_PIDS=()
KS_HOSTS_NS=()
KS_KMS_PID=
KS_VMCFG='"vm_config":"{\"os_image_hash\":\"1111111111111111111111111111111111111111111111111111111111111111\"}"'

ks_init() { # ns ip dir [host names...]
	KS_NS=$1 KS_IP=$2 KS_W=$3
	shift 3
	KS_NAMES="kms.test${*:+ $*}"
	KS_PCCS=http://$KS_IP:8020
	ks_hosts "$KS_NS"
}

ks_hosts() { # ns
	mkdir -p "/etc/netns/$1"
	printf '127.0.0.1 localhost\n%s %s\n' "$KS_IP" "$KS_NAMES" >"/etc/netns/$1/hosts"
	KS_HOSTS_NS+=("$1")
}

ks_wait() { # tries cmd...
	local tries=$1
	shift
	for _ in $(seq "$tries"); do "$@" >/dev/null 2>&1 && return 0; sleep 0.2; done
	return 1
}

ks_bg_in() { # ns log cmd...: in the namespace, in the background
	local ns=$1 log=$2
	shift 2
	ip netns exec "$ns" "$@" >>"$log" 2>&1 &
	KS_PIDS+=($!)
}

ks_bg() { # log cmd...: in KS_NS
	ks_bg_in "$KS_NS" "$@"
}

ks_setup() { # ns name compose sys-config [dstack-util setup args...]
	local ns=$1 name=$2 compose=$3 sys=$4
	shift 4
	mkdir -p "$KS_W/$name/shared"
	printf '%s' "$compose" >"$KS_W/$name/shared/app-compose.json"
	[ -n "$sys" ] || sys=$(printf '{"kms_urls":["https://kms.test:8000"],%s}' "$KS_VMCFG")
	printf '%s' "$sys" >"$KS_W/$name/shared/.sys-config.json"
	rm -rf "$KS_W/$name/rt"
	"$DSTACK" simtee td-create --state "$KS_W/$name/td.json" >/dev/null || return 1
	ip netns exec "$ns" "$UTIL" setup --work-dir "$KS_W/$name/work" --host-shared "$KS_W/$name/shared" \
		--tee simtee --simtee-dir "$KS_W/pki" --simtee-state "$KS_W/$name/td.json" \
		--runtime-events-dir "$KS_W/$name/rt" --pccs-url "$KS_PCCS" --dev-root-ca "$KS_W/pki/root_ca.pem" "$@" \
		>"$KS_W/$name/setup.log" 2>&1
}

ks_agent_up() { # name
	ks_bg "$KS_W/$1/agent.log" "$AGENT" -c "$KS_W/$1/work/agent.json" --dstack-sock "$KS_W/$1/dstack.sock" \
		--tappd-sock "$KS_W/$1/tappd.sock" --external none --guest-api none
	ks_wait 100 test -S "$KS_W/$1/dstack.sock"
}

ks_cvm_boot() { # name compose sys-config [dstack-util setup args...]
	ks_setup "$KS_NS" "$@" && ks_agent_up "$1"
}

ks_collateral_up() {
	(cd "$KS_W" && "$DSTACK" simtee init pki >/dev/null) || return 1
	ks_bg "$KS_W/simtee.log" "$DSTACK" simtee serve --dir "$KS_W/pki" --listen "tcp:$KS_IP:8020"
	ks_wait 50 ip netns exec "$KS_NS" bash -c "exec 3<>/dev/tcp/$KS_IP/8020"
}

ks_kms_cvm_up() {
	ks_cvm_boot kmscvm '{"manifest_version":2,"name":"kms","runner":"docker-compose","docker_compose_file":"services: {}","key_provider":"none"}' \
		"{$KS_VMCFG}"
}

ks_kms_start() { # gateway_app_id
	local p keep=()
	if [ -n "$KS_KMS_PID" ]; then
		kill "$KS_KMS_PID" 2>/dev/null
		wait "$KS_KMS_PID" 2>/dev/null
		for p in "${KS_PIDS[@]}"; do [ "$p" = "$KS_KMS_PID" ] || keep+=("$p"); done
		KS_PIDS=("${keep[@]}")
	fi
	mkdir -p "$KS_W/kms"
	kms_dev_toml "$KS_IP" 8000 8001 "$KS_PCCS" "$KS_W/pki/root_ca.pem" "$1" kms.test >"$KS_W/kms/kms.toml"
	(cd "$KS_W/kms" && DSTACK_AGENT_ADDRESS=$KS_W/kmscvm/dstack.sock DSTACK_KMS_ETC_DIR=$KS_W/kms/etc \
		exec ip netns exec "$KS_NS" "$KMS" -c kms.toml >>kms.log 2>&1) &
	KS_KMS_PID=$!
	KS_PIDS+=($!)
	ks_wait 150 ip netns exec "$KS_NS" curl -sfk https://kms.test:8000/prpc/GetMeta?json
}

ks_kms_up() { # gateway_app_id
	ks_collateral_up && ks_kms_cvm_up && ks_kms_start "$1"
}

ks_agent() { # name method json
	curl -sf --max-time 30 --unix-socket "$KS_W/$1/dstack.sock" -H 'Content-Type: application/json' \
		-d "$3" "http://localhost/$2?json"
}

ks_client_cert() { # name crt key
	ks_agent "$1" GetTlsKey '{"subject":"dstack-guest-agent","usage_client_auth":true,"with_app_info":true}' |
		python3 -c '
import json, os, sys
r = json.load(sys.stdin)
fd = os.open(sys.argv[2], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
os.write(fd, r["key"].encode())
os.close(fd)
with open(sys.argv[1], "w") as f:
    f.write("".join(c if c.endswith("\n") else c + "\n" for c in r["certificate_chain"]))' "$2" "$3"
}

ks_stop() {
	local p ns
	for p in "${KS_PIDS[@]}"; do kill "$p" 2>/dev/null; done
	for p in "${KS_PIDS[@]}"; do wait "$p" 2>/dev/null; done
	KS_PIDS=()
	KS_KMS_PID=
	for ns in "${KS_HOSTS_NS[@]}"; do rm -rf "/etc/netns/$ns"; done
	KS_HOSTS_NS=()
}
