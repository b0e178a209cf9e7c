"""gwproc.py — shared pieces of the python3 tests that run the real
dstack-gateway process (proxy_process_test.py, routing_test.py).

Standard library only (no pip): a TAP producer, certificates made with the
openssl CLI, free loopback ports, the gateway process with a generated
gateway.toml, JSON calls to its Debug/Admin services, small backends (echo,
scripted, TLS) on threads, and a client that moves bytes over a raw or TLS
connection in one select loop (TLS through ssl.MemoryBIO, so reading and
writing interleave without threads and close_notify / TCP half-close are
under the test's control).
"""
import hashlib
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
import selectors


# ---- TAP ----

class Tap:
    def __init__(self):
        self.n = 0
        self.failed = 0

    def ok(self, cond, msg):
        self.n += 1
        if not cond:
            self.failed += 1
        print(f"{'ok' if cond else 'not ok'} {self.n} - {msg}".split("\n")[0], flush=True)
        return bool(cond)

    def diag(self, msg):
        for line in str(msg).splitlines():
            print(f"# {line}", flush=True)

    def done(self):
        print(f"1..{self.n}", flush=True)
        return 1 if self.failed else 0


def skip_all(reason):
    print(f"1..0 # SKIP {reason}", flush=True)
    raise SystemExit(0)


# ---- environment ----

def free_port():
    """A loopback TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(*args, **kw):
    return subprocess.run(list(args), check=True, capture_output=True, text=True, **kw)


def make_certs(d, base):
    """CA + RPC certificate (for [tls]), a self-signed wildcard for *.base
    (the proxy), and another self-signed wildcard with its own key (a
    passthrough backend). Returns a dict of paths."""
    p = {k: os.path.join(d, k) for k in
         ("ca.crt", "ca.key", "rpc.crt", "rpc.key", "wild.crt", "wild.key", "backend.crt", "backend.key")}
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "2"]
    run("openssl", "req", "-x509", *ec, "-subj", "/CN=test-ca", "-keyout", p["ca.key"], "-out", p["ca.crt"])
    run("openssl", "req", *ec, "-subj", "/CN=gateway.local", "-keyout", p["rpc.key"],
        "-out", os.path.join(d, "rpc.csr"))
    ext = os.path.join(d, "rpc.ext")
    with open(ext, "w") as f:
        f.write("subjectAltName=DNS:gateway.local,IP:127.0.0.1\n")
    run("openssl", "x509", "-req", "-in", os.path.join(d, "rpc.csr"), "-CA", p["ca.crt"], "-CAkey", p["ca.key"],
        "-CAcreateserial", "-days", "2", "-extfile", ext, "-out", p["rpc.crt"])
    for name, cn in (("wild", "*." + base), ("backend", "*." + base)):
        run("openssl", "req", "-x509", *ec, "-subj", f"/CN={cn}", "-addext", f"subjectAltName=DNS:{cn}",
            "-keyout", p[name + ".key"], "-out", p[name + ".crt"])
    for k in p:
        if k.endswith(".key"):
            os.chmod(p[k], 0o600)
    return p


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


# ---- the gateway process ----

class Gateway:
    """dstack-gateway with a generated config (`extra` is appended TOML)."""

    def __init__(self, binary, workdir, certs, base, extra="", env=None, name="gw", localhost_backend=False):
        self.binary, self.dir, self.base = binary, workdir, base
        self.rpc, self.proxy = free_port(), free_port()
        self.admin, self.debug = free_port(), free_port()
        self.token = "t-" + os.urandom(8).hex()
        self.log_path = os.path.join(workdir, name + ".log")
        self.cfg_path = os.path.join(workdir, name + ".toml")
        self.env = dict(os.environ, **(env or {}))
        self.env.setdefault("DSTACK_AGENT_ADDRESS", "/nonexistent/dstack-agent.sock")
        self.proc = None
        self.config = f"""port = {self.rpc}
[tls]
key = "{certs['rpc.key']}"
certs = "{certs['rpc.crt']}"
[tls.mutual]
ca_certs = "{certs['ca.crt']}"
mandatory = false
[core.sync]
data_dir = "{workdir}/state-{name}"
[core.admin]
enabled = true
address = "127.0.0.1:{self.admin}"
auth_token = "{self.token}"
[core.debug]
insecure_enable_debug_rpc = true
insecure_localhost_backend = {"true" if localhost_backend else "false"}
address = "127.0.0.1:{self.debug}"
"""
        self.config += extra
        self.config += f"""
[core.proxy]
cert_chain = "{certs['wild.crt']}"
cert_key = "{certs['wild.key']}"
base_domain = "{base}"
listen_addr = "127.0.0.1"
listen_port = {self.proxy}
"""

    def start(self, proxy_extra="", wg=None):
        """proxy_extra: more [core.proxy] keys (TOML lines, before any sub-table)."""
        wg = wg or {}
        wgcfg = {"interface": '""', "config_path": f'"{self.dir}/wg-{os.path.basename(self.cfg_path)}.conf"'}
        wgcfg.update(wg)
        text = self.config.replace("[core.proxy]\n", "[core.proxy]\n" + proxy_extra, 1)
        text += "[core.wg]\n" + "".join(f"{k} = {v}\n" for k, v in wgcfg.items())
        with open(self.cfg_path, "w") as f:
            f.write(text)
        os.chmod(self.cfg_path, 0o600)
        self.logf = open(self.log_path, "ab")
        self.proc = subprocess.Popen([self.binary, "-c", self.cfg_path], cwd=self.dir, stdout=self.logf,
                                     stderr=subprocess.STDOUT, env=self.env)
        deadline = time.time() + 30
        while time.time() < deadline:
            if self.proc.poll() is not None:
                return False
            if all(port_open(p) for p in (self.rpc, self.proxy, self.admin, self.debug)):
                return True
            time.sleep(0.05)
        return False

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc:
            self.logf.close()

    def log(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def _post(self, port, path, body, headers=None):
        req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json", **(headers or {})})
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, json.loads(r.read() or b"{}")
        except urllib.error.HTTPError as e:
            raw = e.read()
            try:
                return e.code, json.loads(raw)
            except ValueError:
                return e.code, {"error": raw.decode(errors="replace")}

    def admin_call(self, method, body=None):
        return self._post(self.admin, f"/prpc/Admin.{method}?json", body or {},
                          {"Authorization": f"Bearer {self.token}"})

    def debug_call(self, method, body=None):
        return self._post(self.debug, f"/prpc/{method}?json", body or {})


def port_open(port, host="127.0.0.1"):
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def wg_pubkey_like(seed):
    """A syntactically valid WireGuard public key (base64 of 32 bytes)."""
    import base64
    return base64.b64encode(hashlib.sha256(seed.encode()).digest()).decode()


# ---- backends ----

class Server:
    """A threaded TCP server on host:port; handler(conn, addr) per connection."""

    def __init__(self, handler, host="127.0.0.1", port=0, tls_ctx=None):
        self.handler, self.tls_ctx = handler, tls_ctx
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, port))
        self.sock.listen(1024)
        self.host, self.port = host, self.sock.getsockname()[1]
        self.conns = []
        self.lock = threading.Lock()
        self.stopped = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, a = self.sock.accept()
            except OSError:
                return
            if self.stopped:
                c.close()
                return
            with self.lock:
                self.conns.append(c)
            threading.Thread(target=self._run, args=(c, a), daemon=True).start()

    def _run(self, c, a):
        try:
            if self.tls_ctx:
                c = self.tls_ctx.wrap_socket(c, server_side=True)
            self.handler(c, a)
        except (OSError, ssl.SSLError):
            pass
        finally:
            try:
                c.close()
            except OSError:
                pass

    def close(self):
        self.stopped = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        with self.lock:
            for c in self.conns:
                try:
                    c.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


def echo_handler(c, a):
    """Echo every byte; on EOF from the peer, half-close and return."""
    while True:
        d = c.recv(65536)
        if not d:
            break
        c.sendall(d)
    try:
        if isinstance(c, ssl.SSLSocket):
            c.unwrap()
        else:
            c.shutdown(socket.SHUT_WR)
    except (OSError, ssl.SSLError):
        pass


# ---- client side ----

def client_hello(sni, ctx=None):
    """The bytes of a real TLS ClientHello for `sni` (None = no SNI)."""
    ctx = ctx or insecure_ctx()
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, out, server_hostname=sni)
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return out.read()


def insecure_ctx(maxv=None, alpn=None):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if maxv:
        ctx.maximum_version = maxv
    if alpn:
        ctx.set_alpn_protocols(alpn)
    return ctx


class Conn:
    """One client connection: raw bytes, or TLS through memory BIOs.

    All I/O goes through pump(), which sends queued bytes and collects
    received plaintext until a condition holds or the deadline passes."""

    def __init__(self, port, sni=None, tls=True, ctx=None, host="127.0.0.1", prefix=b""):
        self.sock = socket.create_connection((host, port), timeout=10)
        self.sock.setblocking(False)
        self.out = bytearray(prefix)  # raw bytes to write to the socket
        self.got = bytearray()        # plaintext received
        self.eof = False              # the peer ended its direction (FIN or close_notify)
        self.reset = False
        self.tls = None
        if tls:
            self.inc, self.obio = ssl.MemoryBIO(), ssl.MemoryBIO()
            self.tls = (ctx or insecure_ctx()).wrap_bio(self.inc, self.obio, server_hostname=sni)
        self.handshaken = not tls

    def _drain_tls_out(self):
        if self.tls:
            d = self.obio.read()
            if d:
                self.out += d

    def _tls_step(self):
        if not self.handshaken:
            try:
                self.tls.do_handshake()
                self.handshaken = True
            except ssl.SSLWantReadError:
                pass
        if self.handshaken:
            while True:
                try:
                    d = self.tls.read(65536)
                except ssl.SSLWantReadError:
                    break
                except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                    self.eof = True
                    break
                if not d:
                    self.eof = True
                    break
                self.got += d
        self._drain_tls_out()

    def send(self, data):
        if self.tls:
            self.pending = getattr(self, "pending", bytearray()) + data
            self._flush_pending()
        else:
            self.out += data

    def _flush_pending(self):
        p = getattr(self, "pending", None)
        if self.tls and self.handshaken and p:
            self.tls.write(bytes(p))
            self.pending = bytearray()
            self._drain_tls_out()

    def close_notify(self):
        try:
            self.tls.unwrap()
        except (ssl.SSLWantReadError, ssl.SSLError):
            pass
        self._drain_tls_out()

    def shutdown_write(self):
        self.pump(lambda c: not c.out, 10)
        try:
            self.sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def pump(self, until, timeout):
        """Move bytes until until(self) is true; returns that truth value."""
        deadline = time.time() + timeout
        sel = selectors.DefaultSelector()
        sel.register(self.sock, selectors.EVENT_READ)
        try:
            while True:
                if self.tls:
                    self._tls_step()
                    self._flush_pending()
                if until(self):
                    return True
                if self.eof and not self.out and not until(self):
                    return until(self)
                left = deadline - time.time()
                if left <= 0:
                    return until(self)
                sel.modify(self.sock, selectors.EVENT_READ | (selectors.EVENT_WRITE if self.out else 0))
                for _key, ev in sel.select(min(left, 0.5)):
                    if ev & selectors.EVENT_WRITE and self.out:
                        try:
                            n = self.sock.send(self.out[:262144])
                            del self.out[:n]
                        except BlockingIOError:
                            pass
                        except OSError:
                            self.reset = True
                            self.eof = True
                            self.out.clear()
                    if ev & selectors.EVENT_READ:
                        try:
                            d = self.sock.recv(262144)
                        except BlockingIOError:
                            continue
                        except OSError:
                            self.reset = True
                            self.eof = True
                            continue
                        if not d:
                            if self.tls:
                                self.inc.write_eof()
                                self._tls_step()
                            self.eof = True
                        elif self.tls:
                            self.inc.write(d)
                        else:
                            self.got += d
        finally:
            sel.close()

    def handshake(self, timeout=10):
        # done when our last handshake flight (the client Finished) is on the wire too
        return self.pump(lambda c: (c.handshaken and not c.out) or c.eof, timeout) and self.handshaken

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def closed_by_peer(c, timeout):
    """True if the peer closes (EOF or reset) within timeout; sets c.closed_after."""
    t0 = time.time()
    r = c.pump(lambda x: x.eof, timeout)
    c.closed_after = time.time() - t0
    return r


def exchange(port, sni, payload, tls=True, prefix=b"", timeout=30, expect=None):
    """Send payload (after prefix, raw) and collect the echo; True if byte-exact."""
    c = Conn(port, sni, tls=tls, prefix=prefix)
    try:
        if tls and not c.handshake(timeout):
            return False
        c.send(payload)
        want = expect if expect is not None else (prefix + payload if not tls else payload)
        c.pump(lambda x: len(x.got) >= len(want) or x.eof, timeout)
        return bytes(c.got) == want
    finally:
        c.close()


def cleanup_dir(d):
    if not os.environ.get("KEEP_TEST_DIR"):
        shutil.rmtree(d, ignore_errors=True)


def tempdir(prefix):
    return tempfile.mkdtemp(prefix=prefix)
