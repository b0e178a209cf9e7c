#!/usr/bin/env bash
# bench/gateway/run.sh — dstack-proxyd and dstack-gateway (localhost mode) vs
# nginx vs HAProxy vs direct, same backend, same machine. Run by hand from the
# build tree (release build):
#
#   ./do build && build/bench/gateway/run.sh
#
# Env: DUR (wrk seconds, 5), ROUNDS (interleaved rounds, best kept, 3), CONNS (wrk connections, 64), THREADS (wrk
# threads, 2), WORKERS (proxy threads/processes, 2), IDLE_N (idle
# connections for the RSS test, 2000), MIB (bulk MiB per transfer, 1024).
# Needs root for apt-get (wrk nginx-light libnginx-mod-stream haproxy) and for
# a private mount namespace that maps *.gw.test to 127.0.0.1 for wrk without
# touching the real /etc/hosts.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
BUILD=$(cd "$HERE/../.." && pwd)
PROXYD=$BUILD/gateway/dstack-proxyd
GATEWAY=$BUILD/gateway/dstack-gateway
TOOL=$HERE/proxy-bench-tool
DUR=${DUR:-5} ROUNDS=${ROUNDS:-3} CONNS=${CONNS:-64} THREADS=${THREADS:-2} WORKERS=${WORKERS:-2}
IDLE_N=${IDLE_N:-2000} MIB=${MIB:-1024}

need=()
for p in wrk nginx-light libnginx-mod-stream haproxy openssl wireguard-tools; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

# Every listener below uses SO_REUSEPORT: a leftover process on one of these
# ports would silently take half of the connections, so refuse to start.
PORTS="18080 19000 18443 18444 18445 18446 18447 18448 18449 18450"
for p in $PORTS; do
	if ss -Hltn "sport = :$p" | grep -q .; then
		echo "port $p is already in use (leftover benchmark process?)" >&2
		exit 1
	fi
done

W=$(mktemp -d /tmp/proxybench.XXXXXX)
PIDS=()
cleanup() {
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$W"
}
trap cleanup EXIT INT TERM PIPE
# Start a daemon in the background; its pid is left in $LAST.
start() { "$@" >"$W/log.$(basename "$1").$RANDOM" 2>&1 & LAST=$!; PIDS+=("$LAST"); }
wait_port() {
	for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0; sleep 0.05; done
	echo "port $1 not up" >&2; tail -n 5 "$W"/log.* >&2; exit 1
}

# --- certificate (*.gw.test), names ---
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
	-keyout "$W/key.pem" -out "$W/cert.pem" -subj "/CN=*.gw.test" \
	-addext "subjectAltName=DNS:*.gw.test" 2>/dev/null
cat "$W/cert.pem" "$W/key.pem" >"$W/combined.pem"
echo "127.0.0.1 localhost localhost-18080.gw.test" >"$W/hosts"

# --- backends: nginx HTTP "hello" on 18080, byte sink on 19000 ---
mkdir -p "$W/tmp"
cat >"$W/backend.conf" <<CONF
worker_processes $WORKERS; daemon off; pid $W/backend.pid; error_log $W/backend.err;
events { worker_connections 30000; }
http { access_log off; client_body_temp_path $W/tmp; proxy_temp_path $W/tmp;
  keepalive_requests 100000000; keepalive_timeout 600s;
  server { listen 127.0.0.1:18080 backlog=4096 reuseport; location / { return 200 "hello\n"; } } }
CONF
start nginx -c "$W/backend.conf"
start "$TOOL" sink 19000

# --- proxies ---
# ours: 18443 (terminate + passthrough, userspace relay), 18448 (splice)
start "$PROXYD" --listen 127.0.0.1 --port 18443 --workers "$WORKERS" --base-domain gw.test \
	--cert "$W/cert.pem" --key "$W/key.pem" --localhost --log warn
P_OURS=$LAST
start "$PROXYD" --listen 127.0.0.1 --port 18448 --workers "$WORKERS" --base-domain gw.test \
	--cert "$W/cert.pem" --key "$W/key.pem" --localhost --splice 0 --log warn
# dstack-gateway itself, localhost mode: proxy on 18449 (its RPC listener on
# 18450, no WireGuard link, admin and debug services off). TLS 1.2 and 1.3 as
# for the others (the gateway's own default is 1.2 only, as the reference's).
(umask 077 && wg genkey >"$W/wg.key")
cat >"$W/gateway.toml" <<TOML
address = "127.0.0.1"
port = 18450
log_level = "warn"
[tls]
key = "$W/key.pem"
certs = "$W/cert.pem"
[tls.mutual]
ca_certs = "$W/cert.pem"
[core]
rpc_domain = "gateway.gw.test"
[core.sync]
data_dir = "$W/gw-state"
[core.wg]
interface = ""
config_path = "$W/wg0.conf"
private_key = "$(cat "$W/wg.key")"
public_key = "$(wg pubkey <"$W/wg.key")"
[core.proxy]
cert_chain = "$W/cert.pem"
cert_key = "$W/key.pem"
base_domain = "gw.test"
listen_addr = "127.0.0.1"
listen_port = 18449
workers = $WORKERS
tls_versions = ["1.2", "1.3"]
[core.debug]
insecure_localhost_backend = true
TOML
chmod 600 "$W/gateway.toml" "$W/wg.key"
start "$GATEWAY" -c "$W/gateway.toml"
P_GATEWAY=$LAST
# nginx stream: 18444 TLS terminate -> 18080, 18446 ssl_preread passthrough -> 19000
cat >"$W/nginx.conf" <<CONF
load_module /usr/lib/nginx/modules/ngx_stream_module.so;
worker_processes $WORKERS; daemon off; pid $W/nginx.pid; error_log $W/nginx.err;
events { worker_connections 30000; }
stream {
  server { listen 127.0.0.1:18444 ssl reuseport backlog=4096; tcp_nodelay on; proxy_timeout 600s;
    ssl_certificate $W/cert.pem; ssl_certificate_key $W/key.pem; ssl_protocols TLSv1.2 TLSv1.3;
    ssl_session_tickets on; ssl_conf_command NumTickets 1; proxy_pass 127.0.0.1:18080; }
  server { listen 127.0.0.1:18446 reuseport backlog=4096; ssl_preread on; proxy_timeout 600s;
    proxy_pass 127.0.0.1:19000; }
}
CONF
start nginx -c "$W/nginx.conf"
P_NGINX=$LAST
# HAProxy tcp mode: 18445 TLS terminate -> 18080, 18447 SNI-inspecting passthrough -> 19000
cat >"$W/haproxy.cfg" <<CONF
global
  nbthread $WORKERS
  maxconn $(( $(ulimit -n) / 2 - 500 ))
defaults
  mode tcp
  timeout connect 5s
  timeout client 600s
  timeout server 600s
frontend term
  bind 127.0.0.1:18445 ssl crt $W/combined.pem
  default_backend http
frontend pass
  bind 127.0.0.1:18447
  tcp-request inspect-delay 5s
  tcp-request content accept if { req_ssl_hello_type 1 }
  default_backend sink
backend http
  server s1 127.0.0.1:18080
backend sink
  server s1 127.0.0.1:19000
CONF
start haproxy -db -f "$W/haproxy.cfg"
P_HAPROXY=$LAST
for p in $PORTS; do wait_port $p; done

in_ns() { unshare -m sh -c "mount --bind '$W/hosts' /etc/hosts && exec \"\$@\"" sh "$@"; }
# CPU ticks (user+system, 1/100 s) of a process and its children.
ticks() {
	local t=0 p
	for p in $1 $(pgrep -P "$1" || true); do t=$((t + $(awk '{print $14 + $15}' /proc/"$p"/stat))); done
	echo $t
}
# wrk against a target served by process $1 (0 = none): "req/s cpu_us_per_req".
rps() {
	local pid=$1 b=0 a=0 out
	[ "$pid" = 0 ] || b=$(ticks "$pid")
	out=$(in_ns wrk -t"$THREADS" -c"$2" -d"$DUR"s "${@:3}" 2>&1)
	[ "$pid" = 0 ] || a=$(ticks "$pid")
	echo "$out" | awk -v t=$((a - b)) '/requests in/ {n = $1} /Requests\/sec/ {r = $2}
		END { printf "%.0f %.1f", r, (n > 0 ? t * 10000 / n : 0) }'
}

# RSS (KiB) of a process and its children.
rss() {
	local total=0 p
	for p in $1 $(pgrep -P "$1" || true); do
		total=$((total + $(awk '/VmRSS/ {print $2}' /proc/"$p"/status)))
	done
	echo $total
}
idle_kib() { # pid port sni mode
	local before after fifo=$W/hold.fifo n
	rm -f "$fifo"; mkfifo "$fifo"
	before=$(rss "$1")
	"$TOOL" hold "$2" "$3" "$IDLE_N" "$4" <"$fifo" >"$W/held" &
	local hp=$!
	exec 7>"$fifo"
	for _ in $(seq 600); do [ -s "$W/held" ] && break; sleep 0.1; done
	sleep 1
	after=$(rss "$1")
	n=$(cat "$W/held")
	exec 7>&-
	wait $hp 2>/dev/null || true
	sleep 1
	awk -v a="$after" -v b="$before" -v n="$n" 'BEGIN { printf "%.1f", (a - b) / n }'
}

# Memory first, on fresh processes (after load, allocator caches hide the
# per-connection cost). Passthrough before terminate for every proxy.
echo "== RSS per idle relayed connection ($IDLE_N connections, KiB)" >&2
RSS_OURS_P=$(idle_kib "$P_OURS" 18443 localhost-19000s.gw.test raw)
RSS_OURS_T=$(idle_kib "$P_OURS" 18443 localhost-18080.gw.test tls)
RSS_GW_P=$(idle_kib "$P_GATEWAY" 18449 localhost-19000s.gw.test raw)
RSS_GW_T=$(idle_kib "$P_GATEWAY" 18449 localhost-18080.gw.test tls)
RSS_NGINX_P=$(idle_kib "$P_NGINX" 18446 localhost-19000s.gw.test raw)
RSS_NGINX_T=$(idle_kib "$P_NGINX" 18444 localhost-18080.gw.test tls)
RSS_HAPROXY_P=$(idle_kib "$P_HAPROXY" 18447 localhost-19000s.gw.test raw)
RSS_HAPROXY_T=$(idle_kib "$P_HAPROXY" 18445 localhost-18080.gw.test tls)

URL_T=https://localhost-18080.gw.test
# Throughput: ROUNDS interleaved rounds (direct, ours, nginx, HAProxy, ...),
# best of each, so load from other jobs on the machine hits all alike. The
# proxy's CPU time per request (lowest of the rounds) does not depend on
# that load.
max() { awk -v a="${1:-0}" -v b="${2:-0}" 'BEGIN { print (a > b ? a : b) }'; }
min() { awk -v a="${1:-0}" -v b="${2:-0}" 'BEGIN { print (a == 0 || (b > 0 && b < a) ? b : a) }'; }
declare -A RPS CPU ALL
measure() { # key pid conns wrk-args...
	local r
	r=$(rps "${@:2}")
	RPS[$1]=$(max "${RPS[$1]:-0}" "${r% *}")
	CPU[$1]=$(min "${CPU[$1]:-0}" "${r#* }")
	ALL[$1]="${ALL[$1]:-}${ALL[$1]:+ }${r% *}/${r#* }"
}
for round in $(seq "$ROUNDS"); do
	echo "== round $round/$ROUNDS: keep-alive HTTPS (wrk -t$THREADS -c$CONNS -d${DUR}s)" >&2
	measure ka_direct 0 "$CONNS" http://127.0.0.1:18080/
	measure ka_ours "$P_OURS" "$CONNS" $URL_T:18443/
	measure ka_gw "$P_GATEWAY" "$CONNS" $URL_T:18449/
	measure ka_nginx "$P_NGINX" "$CONNS" $URL_T:18444/
	measure ka_haproxy "$P_HAPROXY" "$CONNS" $URL_T:18445/
	echo "== round $round/$ROUNDS: new TLS connection per request" >&2
	measure nc_direct 0 16 -H "Connection: close" http://127.0.0.1:18080/
	measure nc_ours "$P_OURS" 16 -H "Connection: close" $URL_T:18443/
	measure nc_gw "$P_GATEWAY" 16 -H "Connection: close" $URL_T:18449/
	measure nc_nginx "$P_NGINX" 16 -H "Connection: close" $URL_T:18444/
	measure nc_haproxy "$P_HAPROXY" 16 -H "Connection: close" $URL_T:18445/
done
echo "== passthrough bulk ($MIB MiB, best of $ROUNDS interleaved, MB/s)" >&2
BK_DIRECT=0 BK_OURS=0 BK_SPLICE=0 BK_GW=0 BK_NGINX=0 BK_HAPROXY=0
blast() { "$TOOL" blast "$1" localhost-19000s.gw.test "$MIB"; }
for _ in $(seq "$ROUNDS"); do
	BK_DIRECT=$(max "$BK_DIRECT" "$(blast 19000)")
	BK_OURS=$(max "$BK_OURS" "$(blast 18443)")
	BK_SPLICE=$(max "$BK_SPLICE" "$(blast 18448)")
	BK_GW=$(max "$BK_GW" "$(blast 18449)")
	BK_NGINX=$(max "$BK_NGINX" "$(blast 18446)")
	BK_HAPROXY=$(max "$BK_HAPROXY" "$(blast 18447)")
done

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }
printf '\n%-34s %8s %8s %8s %8s %8s %8s   %s\n' metric direct ours ours+spl gateway nginx haproxy \
	"ours/nginx ours/haproxy gateway/nginx gateway/haproxy"
row() {
	printf '%-34s %8s %8s %8s %8s %8s %8s   %-10s %-12s %-13s %s\n' "$1" "$2" "$3" "$4" "$5" "$6" "$7" \
		"$(ratio "$3" "$6")" "$(ratio "$3" "$7")" "$(ratio "$5" "$6")" "$(ratio "$5" "$7")"
}
row "keep-alive req/s (c=$CONNS)" "${RPS[ka_direct]}" "${RPS[ka_ours]}" - "${RPS[ka_gw]}" "${RPS[ka_nginx]}" "${RPS[ka_haproxy]}"
row "  proxy CPU us/req" - "${CPU[ka_ours]}" - "${CPU[ka_gw]}" "${CPU[ka_nginx]}" "${CPU[ka_haproxy]}"
row "new TLS conn per req, req/s (c=16)" "${RPS[nc_direct]}" "${RPS[nc_ours]}" - "${RPS[nc_gw]}" "${RPS[nc_nginx]}" "${RPS[nc_haproxy]}"
row "  proxy CPU us/req" - "${CPU[nc_ours]}" - "${CPU[nc_gw]}" "${CPU[nc_nginx]}" "${CPU[nc_haproxy]}"
row "passthrough bulk MB/s" "$BK_DIRECT" "$BK_OURS" "$BK_SPLICE" "$BK_GW" "$BK_NGINX" "$BK_HAPROXY"
row "RSS KiB/idle conn, terminate" - "$RSS_OURS_T" - "$RSS_GW_T" "$RSS_NGINX_T" "$RSS_HAPROXY_T"
row "RSS KiB/idle conn, passthrough" - "$RSS_OURS_P" - "$RSS_GW_P" "$RSS_NGINX_P" "$RSS_HAPROXY_P"
echo "(ours = dstack-proxyd, the engine with a fixed routing table; gateway = dstack-gateway in localhost mode;"
echo " direct = wrk over plain HTTP to the backend / blast straight to the sink; lower is better for CPU and RSS)"
echo
echo "every round, req/s / proxy CPU us per req (the spread is the machine's noise):"
for k in ka_ours ka_gw ka_nginx ka_haproxy nc_ours nc_gw nc_nginx nc_haproxy; do printf '  %-11s %s\n' "$k" "${ALL[$k]}"; done
# Paired: ratio of two contestants measured back to back in the same round,
# median over the rounds (the machine's load swings between rounds cancel).
paired() { # a b field(1=req/s, 2=cpu)
	paste <(echo "${ALL[$1]}" | tr ' ' '\n') <(echo "${ALL[$2]}" | tr ' ' '\n') |
		awk -F'[/\t]' -v f="$3" '$(f) > 0 && $(f + 2) > 0 { print $(f) / $(f + 2) }' | sort -g |
		awk '{ v[NR] = $1 } END { if (NR == 0) print "-"; else if (NR % 2) printf "%.2f", v[(NR + 1) / 2];
			else printf "%.2f", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
echo
echo "paired per-round ratios, median of $ROUNDS rounds (req/s: higher is better; CPU/req: lower is better):"
printf '  %-28s %-10s %-12s %-13s %s\n' "" ours/nginx ours/haproxy gateway/nginx gateway/haproxy
for m in ka nc; do
	for f in 1 2; do
		printf '  %-28s %-10s %-12s %-13s %s\n' "$m $([ $f = 1 ] && echo req/s || echo 'proxy CPU/req')" \
			"$(paired ${m}_ours ${m}_nginx $f)" "$(paired ${m}_ours ${m}_haproxy $f)" \
			"$(paired ${m}_gw ${m}_nginx $f)" "$(paired ${m}_gw ${m}_haproxy $f)"
	done
done
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
