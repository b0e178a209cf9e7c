#!/usr/bin/env python3
"""routing_test.py — backend choice, port policy, PROXY protocol and the
admin/built-in endpoints of the real dstack-gateway process (TAP).

No WireGuard and no root: the gateway's address plan is loopback
(`core.wg.ip = 127.0.0.1/8`, clients from 127.0.0.0/24), so a CVM registered
through the Debug service at 127.0.0.N is played by servers of this process
bound to 127.0.0.N. `wg` and `ip` are stand-ins on the gateway's PATH: `wg
show <if> latest-handshakes` prints a file this test writes, everything else
succeeds. A stand-in guest agent (DSTACK_AGENT_ADDRESS=http://...) answers
Info. Checked:

  - gateway.<base>/app-info serves the agent's Info (also under /.dstack/);
  - by app id, the N = 3 most recently handshaked instances are the
    candidates (a 4th fresh one, a stale one and a never-handshaked one are
    not), and the list is cached for timeouts.cache_top_n (4 s here): a
    handshake change shows only after it expires;
  - an instance without a known port policy is refused (fail closed) while
    its server listens, and the gateway answers the next client; once an
    admin sets a policy the same name connects;
  - Admin.Status / GetInfo count connections per instance, not per app;
    GetInfo of an unknown id says found = false;
  - an outbound PROXY v2 header synthesized from the client's address when
    the port policy asks for it; with inbound_pp_enabled a client's v2 and v1
    headers are passed on (same version), and a client without one is closed;
  - thread_per_core = false runs one proxy thread;
  - Debug GetSyncData answers with a clear error; Admin.Exit {force} exits 0.

usage: routing_test.py <dstack-gateway>
"""
import http.server
import json
import os
import queue
import socket
import struct
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gwproc  # noqa: E402
from gwproc import Conn, Server  # noqa: E402

BASE = "app.test"
t = gwproc.Tap()
APP = "a1" * 20
AGENT_INFO = {"app_id": "0x" + "9f" * 20, "instance_id": "77" * 20, "app_name": "dstack-gateway",
              "tcb_info": "{}", "device_id": "", "key_provider_info": "", "compose_hash": "c0" * 32}
PP2_SIG = b"\r\n\r\n\x00\r\nQUIT\n"


def iid(i):
    return f"{i:02x}" * 20


def fake_tools(d, hs_file):
    b = os.path.join(d, "fakebin")
    os.makedirs(b, exist_ok=True)
    with open(os.path.join(b, "wg"), "w") as f:
        f.write(f'#!/bin/sh\n# test stand-in for wg(8)\nif [ "$1" = show ]; then cat "{hs_file}"; fi\nexit 0\n')
    with open(os.path.join(b, "ip"), "w") as f:
        f.write("#!/bin/sh\n# test stand-in for ip(8): the link always exists\nexit 0\n")
    for n in ("wg", "ip"):
        os.chmod(os.path.join(b, n), 0o755)
    return b


def write_handshakes(path, keys_times):
    with open(path + ".tmp", "w") as f:
        for k, tm in keys_times:
            f.write(f"{k}\t{tm}\n")
    os.replace(path + ".tmp", path)


class Agent(http.server.BaseHTTPRequestHandler):
    def _reply(self):
        n = int(self.headers.get("Content-Length") or 0)
        if n:
            self.rfile.read(n)
        if self.path.split("?")[0].endswith("/Info"):
            body = json.dumps(AGENT_INFO).encode()
            self.send_response(200)
        else:
            body = b'{"error":"no such method"}'
            self.send_response(404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _reply

    def log_message(self, *a):
        pass


def who(gw, sni, prefix=b"", timeout=8):
    """Connect through the proxy; the backend's first line, or None if closed."""
    c = Conn(gw.proxy, sni, prefix=prefix)
    try:
        if not c.handshake(timeout):
            return None
        c.pump(lambda x: b"\n" in x.got or x.eof, timeout)
        return bytes(c.got).split(b"\n")[0].decode() if b"\n" in c.got else None
    finally:
        c.close()


def ident_handler(c, a):
    c.sendall(f"I am {c.getsockname()[0]}\n".encode())
    while c.recv(65536):
        pass


def pp_handler(q):
    def h(c, a):
        got = b""
        c.settimeout(10)
        while len(got) < 16:
            d = c.recv(16 - len(got))
            if not d:
                break
            got += d
        if got.startswith(PP2_SIG):
            ln = struct.unpack(">H", got[14:16])[0]
            body = b""
            while len(body) < ln:
                body += c.recv(ln - len(body))
            src, dst = socket.inet_ntoa(body[0:4]), socket.inet_ntoa(body[4:8])
            sp, dp = struct.unpack(">HH", body[8:12])
            q.put(("v2", got[12], got[13], src, sp, dst, dp))
        elif got.startswith(b"PROXY "):
            while not got.endswith(b"\r\n"):
                got += c.recv(1)
            q.put(("v1", got.decode().strip()))
        else:
            q.put(("none", got))
        c.sendall(b"ok\n")
        while c.recv(65536):
            pass
    return h


def pp2_header(src, sport, dst, dport):
    return PP2_SIG + bytes([0x21, 0x11]) + struct.pack(">H", 12) + socket.inet_aton(src) + \
        socket.inet_aton(dst) + struct.pack(">HH", sport, dport)


def bindable_port(hosts):
    for _ in range(50):
        p = gwproc.free_port()
        try:
            socks = []
            for h in hosts:
                s = socket.socket()
                s.bind((h, p))
                socks.append(s)
            for s in socks:
                s.close()
            return p
        except OSError:
            for s in socks:
                s.close()
    raise RuntimeError("no free port")


def register(gw, app, inst, key, expect_ip=None):
    st, r = gw.debug_call("RegisterCvm", {"client_public_key": key, "app_id": app, "instance_id": inst})
    ip = r.get("wg", {}).get("client_ip") if st == 200 else None
    return ip


def set_policy(gw, inst, ports=None, restrict=False):
    return gw.admin_call("SetInstancePortPolicy", {"instance_id": inst, "port_policy": {
        "restrict_mode": restrict, "ports": ports or []}})[0] == 200


def status_hosts(gw):
    st, r = gw.admin_call("Status")
    return {h["instance_id"]: h for h in r.get("hosts", [])} if st == 200 else {}


def main():
    if len(sys.argv) < 2:
        print("usage: routing_test.py <dstack-gateway>")
        return 2
    binary = os.path.realpath(sys.argv[1])
    d = gwproc.tempdir("gw-routing-")
    certs = gwproc.make_certs(d, BASE)
    hs_file = os.path.join(d, "handshakes")
    write_handshakes(hs_file, [])
    fakebin = fake_tools(d, hs_file)
    agent = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Agent)
    threading.Thread(target=agent.serve_forever, daemon=True).start()
    env = {"PATH": fakebin + ":" + os.environ.get("PATH", "/usr/bin:/bin"),
           "DSTACK_AGENT_ADDRESS": f"http://127.0.0.1:{agent.server_address[1]}"}
    hosts = [f"127.0.0.{i}" for i in range(2, 14)]
    bport = bindable_port(hosts)
    agent_port = gwproc.free_port()  # nothing answers the policy fetch there
    gw = gwproc.Gateway(binary, d, certs, BASE, env=env)
    gw.config += '[core.proxy.timeouts]\ncache_top_n = "4s"\n'
    wg = {"interface": f'"gwfake{os.getpid()}"', "ip": '"127.0.0.1/8"', "reserved_net": '["127.0.0.1/32"]',
          "client_ip_range": '"127.0.0.0/24"'}
    servers = []
    try:
        if not t.ok(gw.start(proxy_extra=f"workers = 2\nagent_port = {agent_port}\n", wg=wg),
                    "gateway starts with a loopback address plan and stand-in wg/ip/agent"):
            t.diag(gw.log()[-3000:])
            return t.done()
        t.ok(f"this gateway's app id is {'9f' * 20}" in gw.log(), "own app id read from the guest agent's Info")

        # ---- gateway.<base>/app-info ----
        for path in ("/app-info", "/.dstack/app-info"):
            c = Conn(gw.proxy, f"gateway.{BASE}")
            c.handshake()
            c.send(f"GET {path} HTTP/1.1\r\nHost: gateway.{BASE}\r\n\r\n".encode())
            c.pump(lambda x: x.eof, 10)
            head, _, body = bytes(c.got).partition(b"\r\n\r\n")
            try:
                got = json.loads(body)
            except ValueError:
                got = None
            t.ok(head.startswith(b"HTTP/1.1 200") and got == AGENT_INFO,
                 f"gateway.{BASE}{path}: the guest agent's Info ({head[:15]!r})")
            c.close()

        # ---- registrations and GetInfo ----
        st, r = gw.admin_call("GetInfo", {"id": "ee" * 20})
        t.ok(st == 200 and not r.get("found"), f"Admin.GetInfo of an unknown id: found = false ({r})")
        keys = [gwproc.wg_pubkey_like(f"inst{i}") for i in range(12)]
        ips = [register(gw, APP, iid(i), keys[i]) for i in range(6)]
        t.ok(ips == hosts[:6], f"six instances of one app at 127.0.0.2..7 ({ips})")
        st, r = gw.admin_call("GetInfo", {"id": iid(3)})
        info = r.get("info", {})
        t.ok(st == 200 and r.get("found") and info.get("ip") == "127.0.0.5" and info.get("app_id") == APP,
             f"Admin.GetInfo of a registered id: found, its ip and app ({info})")
        for i in range(6):
            set_policy(gw, iid(i))
            servers.append(Server(ident_handler, host=hosts[i], port=bport))

        # ---- backend choice: N most recent, stale and never left out, 30 s cache ----
        now = int(time.time())
        # 0..3 fresh (0 most recent), 4 stale (older than 30 min), 5 never
        write_handshakes(hs_file, [(keys[0], now - 5), (keys[1], now - 10), (keys[2], now - 15),
                                   (keys[3], now - 20), (keys[4], now - 3600)])
        hs = status_hosts(gw)  # Status re-reads the handshakes first
        t.ok(hs.get(iid(0), {}).get("latest_handshake") == now - 5 and
             not hs.get(iid(5), {}).get("latest_handshake"),
             "Admin.Status shows the handshake times read from `wg show`")
        seen = {who(gw, f"{APP}-{bport}.{BASE}") for _ in range(10)}
        top3 = {f"I am {h}" for h in hosts[:3]}
        t.ok(seen and seen <= top3, f"by app id: answered by the 3 most recent only ({sorted(map(str, seen))})")
        servers[0].close()
        servers[1].close()
        seen = {who(gw, f"{APP}-{bport}.{BASE}") for _ in range(5)}
        t.ok(seen == {f"I am {hosts[2]}"}, f"the two freshest refuse: the third candidate answers ({seen})")
        servers[2].close()
        t.ok(who(gw, f"{APP}-{bport}.{BASE}") is None,
             "all three refuse: closed, although a 4th fresh, a stale and a never-handshaked instance listen")
        t.ok(gw.alive() and who(gw, f"{iid(3)}-{bport}.{BASE}") == f"I am {hosts[3]}",
             "the gateway still answers: by instance id the 4th one serves (no health check)")
        servers[2] = Server(ident_handler, host=hosts[2], port=bport)
        t_fill = time.time()
        first = who(gw, f"{APP}-{bport}.{BASE}")
        write_handshakes(hs_file, [(keys[3], now), (keys[0], now - 3600), (keys[1], now - 3600),
                                   (keys[2], now - 3600)])
        status_hosts(gw)
        cached = who(gw, f"{APP}-{bport}.{BASE}")
        within = time.time() - t_fill
        time.sleep(max(0.0, t_fill + 4.5 - time.time()))
        fresh = who(gw, f"{APP}-{bport}.{BASE}")
        t.ok(first == f"I am {hosts[2]}" and (cached == first or within >= 4),
             f"within cache_top_n the cached candidates are used after a handshake change ({cached}, {within:.1f} s)")
        t.ok(fresh == f"I am {hosts[3]}", f"after cache_top_n the new most recent instance is chosen ({fresh})")

        # ---- fail closed ----
        cl_key = gwproc.wg_pubkey_like("closed")
        cl_ip = register(gw, "b2" * 20, iid(0x40), cl_key)
        servers.append(Server(ident_handler, host=cl_ip, port=bport))
        t.ok(who(gw, f"{iid(0x40)}-{bport}.{BASE}") is None and who(gw, f"{'b2' * 20}-{bport}.{BASE}") is None,
             "no port policy known (Debug registration, agent unreachable): refused by instance and by app id")
        t.ok(gw.alive() and who(gw, f"{iid(3)}-{bport}.{BASE}") == f"I am {hosts[3]}",
             "and the gateway answers the next client right after")
        st, r = gw.admin_call("GetInstancePortPolicy", {"instance_id": iid(0x40)})
        t.ok(r.get("source") == "none", f"its policy source is none ({r.get('source')})")
        set_policy(gw, iid(0x40))
        t.ok(who(gw, f"{iid(0x40)}-{bport}.{BASE}") == f"I am {cl_ip}",
             "with an admin policy the same name connects (the refusal was the policy)")

        # ---- connections per instance ----
        app_c = "c3" * 20
        c_ips = [register(gw, app_c, iid(0x50 + i), gwproc.wg_pubkey_like(f"c{i}")) for i in range(2)]
        for i in range(2):
            set_policy(gw, iid(0x50 + i))
            servers.append(Server(ident_handler, host=c_ips[i], port=bport))
        held = []
        for i, n in ((0, 2), (1, 1)):
            for _ in range(n):
                c = Conn(gw.proxy, f"{iid(0x50 + i)}-{bport}.{BASE}")
                c.handshake()
                c.pump(lambda x: b"\n" in x.got or x.eof, 8)
                held.append(c)
        hs = status_hosts(gw)
        n0 = hs.get(iid(0x50), {}).get("num_connections", 0)
        n1 = hs.get(iid(0x51), {}).get("num_connections", 0)
        t.ok(n0 == 2 and n1 == 1, f"Admin.Status: connections per instance of one app (2 and 1: {n0}, {n1})")
        st, r = gw.admin_call("GetInfo", {"id": iid(0x50)})
        t.ok(r.get("info", {}).get("num_connections") == 2, "Admin.GetInfo: the instance's own count")
        for c in held:
            c.close()
        gone = False
        for _ in range(50):
            hs = status_hosts(gw)
            if not hs.get(iid(0x50), {}).get("num_connections") and not hs.get(iid(0x51), {}).get("num_connections"):
                gone = True
                break
            time.sleep(0.1)
        t.ok(gone, "closed connections are no longer counted")

        # ---- outbound PROXY v2, synthesized ----
        pq = queue.Queue()
        pp_ip = register(gw, "d4" * 20, iid(0x60), gwproc.wg_pubkey_like("pp"))
        pport = bindable_port([pp_ip])
        set_policy(gw, iid(0x60), [{"port": pport, "pp": True}], restrict=True)
        servers.append(Server(pp_handler(pq), host=pp_ip, port=pport))
        c = Conn(gw.proxy, f"{iid(0x60)}-{pport}.{BASE}")
        c.handshake()
        c.pump(lambda x: b"\n" in x.got or x.eof, 8)
        cport = c.sock.getsockname()[1]
        c.close()
        try:
            h = pq.get(timeout=5)
        except queue.Empty:
            h = None
        t.ok(h == ("v2", 0x21, 0x11, "127.0.0.1", cport, "127.0.0.1", gw.proxy),
             f"pp in the port policy: a PROXY v2 header from the client's address reaches the CVM ({h})")
        st, r = gw.debug_call("GetSyncData")
        t.ok(st == 400 and "no cluster sync store" in r.get("error", ""), f"Debug GetSyncData: {r.get('error')}")

        # ---- inbound PROXY headers, one proxy thread ----
        gw.stop()
        gw.config = gw.config.replace("[core.proxy]\n", "[core.proxy]\ninbound_pp_enabled = true\nthread_per_core = false\n", 1)
        if not t.ok(gw.start(proxy_extra=f"workers = 2\nagent_port = {agent_port}\n", wg=wg),
                    "restarted with inbound_pp_enabled and thread_per_core = false"):
            t.diag(gw.log()[-2000:])
            return t.done()
        t.ok("one proxy thread" in gw.log() and "proxy: 1 workers" in gw.log(),
             "thread_per_core = false: one proxy thread")
        line = who(gw, f"{iid(0x60)}-{pport}.{BASE}", prefix=pp2_header("203.0.113.7", 4242, "198.51.100.1", 443))
        try:
            h = pq.get(timeout=5)
        except queue.Empty:
            h = None
        t.ok(line == "ok" and h == ("v2", 0x21, 0x11, "203.0.113.7", 4242, "198.51.100.1", 443),
             f"a client's PROXY v2 header is passed on to the CVM ({h})")
        line = who(gw, f"{iid(0x60)}-{pport}.{BASE}", prefix=b"PROXY TCP4 203.0.113.9 198.51.100.1 5151 443\r\n")
        try:
            h = pq.get(timeout=5)
        except queue.Empty:
            h = None
        t.ok(line == "ok" and h == ("v1", "PROXY TCP4 203.0.113.9 198.51.100.1 5151 443"),
             f"a v1 header is passed on as v1 ({h})")
        c = Conn(gw.proxy, tls=False, prefix=gwproc.client_hello(f"{iid(0x60)}-{pport}.{BASE}"))
        closed = gwproc.closed_by_peer(c, 10)
        c.close()
        t.ok(closed and not c.got, "inbound_pp_enabled: a client without a PROXY header is closed")
        line = who(gw, f"{iid(3)}-{bport}.{BASE}", prefix=pp2_header("203.0.113.8", 1, "198.51.100.1", 443))
        t.ok(gw.alive() and line == f"I am {hosts[3]}", "and the gateway serves the next client")

        # ---- Admin.Exit {force} ----
        try:
            gw.admin_call("Exit", {"force": True})
        except OSError:
            pass  # the process may be gone before it answers
        try:
            rc = gw.proc.wait(10)
        except Exception:
            rc = None
        t.ok(rc == 0, f"Admin.Exit {{force: true}}: the process exits at once with status 0 ({rc})")
    finally:
        for s in servers:
            s.close()
        gw.stop()
        agent.shutdown()
    log = gw.log()
    t.ok("AddressSanitizer" not in log and "runtime error" not in log, "no sanitizer report in the gateway's log")
    if t.failed:
        t.diag("gateway log (tail):")
        t.diag(log[-3000:])
    gwproc.cleanup_dir(d)
    return t.done()


if __name__ == "__main__":
    sys.exit(main())
