#!/usr/bin/env bash
# bench/gateway/ab.sh — A/B comparison of proxy builds or settings by the
# proxy's CPU time per request, for changes too small for run.sh's req/s to
# resolve on a shared machine. Contestants run side by side in front of one
# backend; rounds alternate between them so load from other jobs hits all
# alike; the median of each is printed. Not a test: run by hand.
#
#   bench/gateway/ab.sh base=/tmp/proxyd.old new=build/gateway/dstack-proxyd nginx
#   ARGS_new="--no-rebalance" MODE=ka ROUNDS=8 bench/gateway/ab.sh a=... b=...
#
# A contestant is `label=path-to-dstack-proxyd` (extra flags in ARGS_<label>),
# `label=path-to-dstack-gateway` (localhost mode, TLS 1.2 and 1.3), or `nginx` (stream TLS termination, NumTickets 1) or `nginx1` (the same
# with one worker process). Env: MODE nc (new TLS connection per request,
# -c16) or ka (keep-alive, -c64); ROUNDS (6); DUR (wrk seconds, 4); WORKERS
# (2); STRACE=1 adds one `strace -c -f` pass per contestant and prints
# syscalls per request. Needs root (private mount namespace for /etc/hosts),
# wrk and nginx-light + libnginx-mod-stream (see run.sh).
set -euo pipefail
MODE=${MODE:-nc} ROUNDS=${ROUNDS:-6} DUR=${DUR:-4} WORKERS=${WORKERS:-2} STRACE=${STRACE:-0}
BASE_PORT=${BASE_PORT:-18600}
[ $# -gt 0 ] || {
	sed -n '2,18p' "$0"
	exit 2
}
ulimit -n 65536 2>/dev/null || true

W=$(mktemp -d /tmp/proxyab.XXXXXX)
PIDS=()
cleanup() {
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$W"
}
trap cleanup EXIT INT TERM PIPE
start() { "$@" >"$W/log.$RANDOM" 2>&1 & LAST=$!; PIDS+=("$LAST"); }
wait_port() {
	for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0; sleep 0.05; done
	echo "port $1 not up" >&2; cat "$W"/log.* "$W"/*.err >&2 2>/dev/null
	exit 1
}
for p in $(seq "$BASE_PORT" $((BASE_PORT + $# + 1))); do
	if ss -Hltn "sport = :$p" | grep -q .; then
		echo "port $p is in use" >&2
		exit 1
	fi
done

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
	-keyout "$W/key.pem" -out "$W/cert.pem" -subj "/CN=*.gw.test" \
	-addext "subjectAltName=DNS:*.gw.test" 2>/dev/null
BACK=$BASE_PORT
echo "127.0.0.1 localhost localhost-$BACK.gw.test" >"$W/hosts"
mkdir -p "$W/tmp"
cat >"$W/backend.conf" <<CONF
worker_processes $WORKERS; daemon off; pid $W/backend.pid; error_log $W/backend.err;
events { worker_connections 30000; }
http { access_log off; client_body_temp_path $W/tmp; proxy_temp_path $W/tmp;
  keepalive_requests 100000000; keepalive_timeout 600s;
  server { listen 127.0.0.1:$BACK backlog=4096 reuseport; location / { return 200 "hello\n"; } } }
CONF
start nginx -c "$W/backend.conf" -e "$W/backend.err"

LABELS=() declare -A PID PORT
port=$((BASE_PORT + 1))
for c in "$@"; do
	label=${c%%=*}
	case "$c" in
	nginx | nginx1)
		n=$WORKERS
		[ "$c" = nginx1 ] && n=1
		cat >"$W/$label.conf" <<CONF
load_module /usr/lib/nginx/modules/ngx_stream_module.so;
worker_processes $n; daemon off; pid $W/$label.pid; error_log $W/$label.err;
events { worker_connections 30000; }
stream { server { listen 127.0.0.1:$port ssl reuseport backlog=4096; tcp_nodelay on; proxy_timeout 600s;
    ssl_certificate $W/cert.pem; ssl_certificate_key $W/key.pem; ssl_protocols TLSv1.2 TLSv1.3;
    ssl_session_tickets on; ssl_conf_command NumTickets 1; proxy_pass 127.0.0.1:$BACK; } }
CONF
		start nginx -c "$W/$label.conf" -e "$W/$label.err"
		;;
	*=*dstack-gateway)
		(umask 077 && wg genkey >"$W/$label.wg")
		cat >"$W/$label.toml" <<TOML
address = "127.0.0.1"
port = $((BASE_PORT + 50 + port - BASE_PORT))
log_level = "warn"
[tls]
key = "$W/key.pem"
certs = "$W/cert.pem"
[tls.mutual]
ca_certs = "$W/cert.pem"
[core]
rpc_domain = "gateway.gw.test"
[core.sync]
data_dir = "$W/$label.state"
[core.wg]
interface = ""
config_path = "$W/$label.wg0.conf"
private_key = "$(cat "$W/$label.wg")"
public_key = "$(wg pubkey <"$W/$label.wg")"
[core.proxy]
cert_chain = "$W/cert.pem"
cert_key = "$W/key.pem"
base_domain = "gw.test"
listen_addr = "127.0.0.1"
listen_port = $port
workers = $WORKERS
tls_versions = ["1.2", "1.3"]
[core.debug]
insecure_localhost_backend = true
TOML
		chmod 600 "$W/$label.toml"
		start "${c#*=}" -c "$W/$label.toml"
		;;
	*=*)
		args_var=ARGS_$label
		# shellcheck disable=SC2086
		start "${c#*=}" --listen 127.0.0.1 --port "$port" --workers "$WORKERS" --base-domain gw.test \
			--cert "$W/cert.pem" --key "$W/key.pem" --localhost --log warn ${!args_var:-}
		;;
	*)
		echo "bad contestant '$c'" >&2
		exit 2
		;;
	esac
	LABELS+=("$label")
	PID[$label]=$LAST
	PORT[$label]=$port
	port=$((port + 1))
done
for l in "${LABELS[@]}"; do wait_port "${PORT[$l]}"; done
wait_port "$BACK"

in_ns() { unshare -m sh -c "mount --bind '$W/hosts' /etc/hosts && exec \"\$@\"" sh "$@"; }
ticks() {
	local t=0 p
	for p in $1 $(pgrep -P "$1" || true); do t=$((t + $(awk '{print $14 + $15}' /proc/"$p"/stat))); done
	echo $t
}
if [ "$MODE" = nc ]; then
	WRK=(-c16 -H "Connection: close")
else
	WRK=(-c64)
fi
run() { # label -> "req/s cpu_us_per_req"
	local b a out
	b=$(ticks "${PID[$1]}")
	out=$(in_ns wrk -t2 -d"$DUR"s "${WRK[@]}" "https://localhost-$BACK.gw.test:${PORT[$1]}/" 2>&1)
	a=$(ticks "${PID[$1]}")
	echo "$out" | awk -v t=$((a - b)) '/requests in/ {n = $1} /Requests\/sec/ {r = $2}
		END { printf "%.0f %.1f", r, (n > 0 ? t * 10000 / n : 0) }'
}
declare -A ALL
for round in $(seq "$ROUNDS"); do
	# Alternate the order every round so no contestant always follows another.
	order=("${LABELS[@]}")
	if [ $((round % 2)) = 0 ]; then
		order=()
		for ((i = ${#LABELS[@]} - 1; i >= 0; i--)); do order+=("${LABELS[$i]}"); done
	fi
	for l in "${order[@]}"; do
		r=$(run "$l")
		ALL[$l]="${ALL[$l]:-} $r"
		printf 'round %d %-8s req/s %6s  cpu us/req %s  (load %s)\n' "$round" "$l" "${r% *}" "${r#* }" \
			"$(cut -d' ' -f1 /proc/loadavg)" >&2
	done
done
median() { tr ' ' '\n' | grep . | sort -g | awk '{v[NR] = $1} END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
echo "mode=$MODE rounds=$ROUNDS dur=${DUR}s workers=$WORKERS; median (min-max) of the rounds"
for l in "${LABELS[@]}"; do
	# shellcheck disable=SC2086
	set -- ${ALL[$l]}
	rq="" cpu=""
	while [ $# -gt 0 ]; do
		rq="$rq $1" cpu="$cpu $2"
		shift 2
	done
	printf '%-8s req/s %7s   cpu us/req %6s (%s-%s)\n' "$l" "$(echo "$rq" | median)" "$(echo "$cpu" | median)" \
		"$(echo "$cpu" | tr ' ' '\n' | grep . | sort -g | head -1)" \
		"$(echo "$cpu" | tr ' ' '\n' | grep . | sort -g | tail -1)"
done

# Paired: each contestant over the first contestant in the same round
# (adjacent in time, so slow swings of the machine's load cancel), median of
# the rounds; field 1 = req/s, 2 = CPU per request.
first=${LABELS[0]}
paired() { # label field
	# shellcheck disable=SC2086
	paste <(echo ${ALL[$first]} | tr ' ' '\n' | awk -v f="$2" 'NR % 2 == f % 2') \
		<(echo ${ALL[$1]} | tr ' ' '\n' | awk -v f="$2" 'NR % 2 == f % 2') |
		awk '$1 > 0 {print $2 / $1}' | tr '\n' ' '
}
for l in "${LABELS[@]:1}"; do
	for f in 1 2; do
		r=$(paired "$l" $f)
		printf '%-8s %-10s over %s, paired median %s (rounds: %s)\n' "$l" "$([ $f = 1 ] && echo req/s || echo cpu/req)" \
			"$first" "$(echo "$r" | median | awk '{printf "%.3f", $1}')" \
			"$(echo "$r" | awk '{for (i = 1; i <= NF; i++) printf "%.2f ", $i}')"
	done
done

if [ "$STRACE" = 1 ]; then
	echo "syscalls per request (strace -c -f, one wrk -d${DUR}s pass each):"
	for l in "${LABELS[@]}"; do
		pids=$(for p in ${PID[$l]} $(pgrep -P "${PID[$l]}" || true); do printf -- '-p %s ' "$p"; done)
		# shellcheck disable=SC2086
		strace -c -f -o "$W/strace.$l" $pids 2>/dev/null &
		sp=$!
		sleep 1
		out=$(in_ns wrk -t2 -d"$DUR"s "${WRK[@]}" "https://localhost-$BACK.gw.test:${PORT[$l]}/" 2>&1)
		kill -INT $sp
		wait $sp 2>/dev/null || true
		n=$(echo "$out" | awk '/requests in/ {print $1}')
		echo "== $l ($n requests)"
		awk -v n="$n" '$1 ~ /^[0-9.]+$/ && NF >= 5 && $NF != "total" {
			printf "  %-16s %6.2f  (failed %.2f)\n", $NF, $4 / n, (NF == 6 ? $5 : 0) / n; tot += $4 }
			END { printf "  %-16s %6.2f\n", "all", tot / n }' "$W/strace.$l" | sort -k2 -g -r | head -16
	done
fi
