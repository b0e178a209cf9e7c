#!/usr/bin/env python3
"""proxy_process_test.py — the proxy of the real dstack-gateway process in
the reference's localhost test mode (TAP).

The gateway runs from a generated gateway.toml with
`[core.debug] insecure_localhost_backend = true`, so `localhost-<port>.<base>`
is terminated by the gateway and relayed to 127.0.0.1:<port>, and
`localhost-<port>s.<base>` is passed through. Backends are threads of this
process. Checked:

  - TLS: with the default tls_versions, `openssl s_client -tls1_2` and
    `-tls1_3` both negotiate, and each resumes its session from a ticket
    (-sess_out / -sess_in: "Reused");
  - terminate and passthrough relay 1 KiB and 1 MiB byte-exact (passthrough
    both with a raw ClientHello + bytes and with a real TLS backend);
  - 200 concurrent connections, terminate and passthrough, all open at once
    (Admin.Status counts them);
  - half-close both ways: the client ends first (close_notify / FIN) and
    still receives the backend's answer; the backend ends first and still
    receives what the client sends afterwards;
  - garbage bytes, a ClientHello without SNI, an unknown app, an oversized
    ClientHello: the connection is closed, and the gateway serves the next
    client at once;
  - slow and malicious clients: 40 connections trickling a ClientHello byte
    by byte and 8 that never read while their backend writes as fast as it
    can do not slow down other clients, and the gateway's RSS stays bounded;
  - a second gateway with `timeouts.idle = "2s"`: an idle connection is
    reaped after 2 s (terminate and passthrough), one that keeps trickling
    bytes is not.

usage: proxy_process_test.py <dstack-gateway>
"""
import hashlib
import os
import queue
import shutil
import socket
import ssl
import struct
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gwproc  # noqa: E402
from gwproc import Conn, Server, closed_by_peer, echo_handler, exchange  # noqa: E402

BASE = "app.test"
t = gwproc.Tap()


def name(port, s=""):
    return f"localhost-{port}{s}.{BASE}"


def s_client(gw, sni, ver, cafile, sess_out=None, sess_in=None):
    args = ["openssl", "s_client", "-ign_eof", "-connect", f"127.0.0.1:{gw.proxy}", "-servername", sni, ver,
            "-CAfile", cafile]
    if sess_out:
        args += ["-sess_out", sess_out]
    if sess_in:
        args += ["-sess_in", sess_in]
    r = subprocess.run(args, input=b"GET / HTTP/1.0\r\n\r\n", capture_output=True, timeout=30)
    return r.stdout.decode(errors="replace")


def test_tls_versions(gw, certs, d):
    sni = f"health.{BASE}"
    for ver, label in (("-tls1_2", "TLSv1.2"), ("-tls1_3", "TLSv1.3")):
        sess = os.path.join(d, f"sess{ver}.pem")
        out = s_client(gw, sni, ver, certs["wild.crt"], sess_out=sess)
        if not t.ok(f"New, {label}" in out and "Verify return code: 0" in out and "HTTP/1.1 200" in out,
                    f"openssl s_client {ver}: {label} negotiated with the default tls_versions, health answers 200"):
            t.diag(out[-1500:])
        t.ok(os.path.exists(sess) and os.path.getsize(sess) > 0, f"{label}: session ticket saved (-sess_out)")
        out = s_client(gw, sni, ver, certs["wild.crt"], sess_in=sess)
        if not t.ok(f"Reused, {label}" in out and "HTTP/1.1 200" in out,
                    f"{label}: session resumed from the ticket (Reused)"):
            t.diag(out[-1500:])
    for maxv, label in ((ssl.TLSVersion.TLSv1_2, "TLSv1.2"), (None, "TLSv1.3")):
        c = Conn(gw.proxy, sni, ctx=gwproc.insecure_ctx(maxv))
        ok = c.handshake()
        t.ok(ok and c.tls.version() == label, f"python ssl {'capped at 1.2' if maxv else 'default'}: {label}")
        c.close()


def test_relay(gw, echo, tls_backend):
    for size, label in ((1024, "1 KiB"), (1 << 20, "1 MiB")):
        data = os.urandom(size)
        t.ok(exchange(gw.proxy, name(echo.port), data), f"terminate: {label} echoed byte-exact")
        hello = gwproc.client_hello(name(echo.port, "s"))
        t.ok(exchange(gw.proxy, None, data, tls=False, prefix=hello),
             f"passthrough: ClientHello + {label} relayed raw and echoed byte-exact")
        c = Conn(gw.proxy, name(tls_backend.port, "s"))
        ok = c.handshake()
        cert = c.tls.getpeercert(binary_form=True) if ok else b""
        c.send(data)
        c.pump(lambda x: len(x.got) >= size or x.eof, 60)
        t.ok(ok and bytes(c.got) == data and cert == tls_backend.der,
             f"passthrough to a TLS backend: its own certificate, {label} byte-exact")
        c.close()


def test_concurrency(gw, echo, n=200):
    for mode in ("terminate", "passthrough"):
        barrier = threading.Barrier(n + 1, timeout=120)
        results = [False] * n

        def one(i):
            try:
                payload = f"{mode} {i} ".encode() * 100
                if mode == "terminate":
                    c = Conn(gw.proxy, name(echo.port))
                    if not c.handshake(60):
                        barrier.abort()
                        return
                    want = payload
                else:
                    hello = gwproc.client_hello(name(echo.port, "s"))
                    c = Conn(gw.proxy, tls=False, prefix=hello)
                    want = hello + payload
                barrier.wait()  # all n open
                c.send(payload)
                c.pump(lambda x: len(x.got) >= len(want) or x.eof, 60)
                results[i] = bytes(c.got) == want
                barrier.wait()  # all n exchanged before any closes
                c.close()
            except (OSError, threading.BrokenBarrierError):
                pass

        th = [threading.Thread(target=one, args=(i,)) for i in range(n)]
        for x in th:
            x.start()
        live = -1
        try:
            barrier.wait()
            _, st = gw.admin_call("Status")
            live = st.get("num_connections", -1)
            barrier.wait()
        except threading.BrokenBarrierError:
            pass
        for x in th:
            x.join(120)
        t.ok(all(results), f"{mode}: {n} concurrent connections, {sum(results)} echoed byte-exact")
        t.ok(live >= n, f"{mode}: all {n} open at once (Admin.Status num_connections = {live})")


def test_half_close(gw):
    # Client ends first: the backend answers after it saw EOF.
    def after_eof(c, a):
        got = bytearray()
        while True:
            d = c.recv(65536)
            if not d:
                break
            got += d
        c.sendall(f"got {len(got)} bytes {hashlib.sha256(got).hexdigest()}".encode())
        c.shutdown(socket.SHUT_WR)

    # Backend ends first: it says bye, half-closes, then reports what still arrives.
    late = queue.Queue()

    def bye_first(c, a):
        c.sendall(b"bye")
        c.shutdown(socket.SHUT_WR)
        got = bytearray()
        while True:
            d = c.recv(65536)
            if not d:
                break
            got += d
        late.put(bytes(got))

    s1, s2 = Server(after_eof), Server(bye_first)
    body = os.urandom(50000)
    want = f"got {len(body)} bytes {hashlib.sha256(body).hexdigest()}".encode()
    try:
        c = Conn(gw.proxy, name(s1.port))
        c.handshake()
        c.send(body)
        c.pump(lambda x: not x.out and not getattr(x, "pending", b""), 20)
        c.close_notify()
        c.shutdown_write()
        c.pump(lambda x: x.eof, 20)
        t.ok(bytes(c.got) == want, f"terminate, client ends first (close_notify + FIN): answer after EOF arrives ({bytes(c.got)[:40]!r})")
        c.close()

        hello = gwproc.client_hello(name(s1.port, "s"))
        c = Conn(gw.proxy, tls=False, prefix=hello)
        c.send(body)
        c.shutdown_write()
        c.pump(lambda x: x.eof, 20)
        n = len(hello) + len(body)
        t.ok(bytes(c.got) == f"got {n} bytes {hashlib.sha256(hello + body).hexdigest()}".encode(),
             "passthrough, client ends first (FIN): answer after EOF arrives")
        c.close()

        c = Conn(gw.proxy, name(s2.port))
        c.handshake()
        c.pump(lambda x: x.eof, 20)
        t.ok(bytes(c.got) == b"bye" and c.eof and not c.reset, "terminate, backend ends first: client sees bye + EOF")
        c.send(b"still talking")
        c.pump(lambda x: not x.out, 10)
        time.sleep(0.2)
        c.shutdown_write()
        try:
            got = late.get(timeout=20)
        except queue.Empty:
            got = None
        t.ok(got == b"still talking", f"terminate: bytes sent after the backend's EOF reach it ({got!r})")
        c.close()

        hello = gwproc.client_hello(name(s2.port, "s"))
        c = Conn(gw.proxy, tls=False, prefix=hello)
        c.pump(lambda x: x.eof, 20)
        t.ok(bytes(c.got) == b"bye" and c.eof and not c.reset, "passthrough, backend ends first: client sees bye + EOF")
        c.send(b"still talking")
        c.shutdown_write()
        try:
            got = late.get(timeout=20)
        except queue.Empty:
            got = None
        t.ok(got == hello + b"still talking", "passthrough: bytes sent after the backend's EOF reach it")
        c.close()
    finally:
        s1.close()
        s2.close()


def oversized_hello(sni):
    """A ClientHello of ~6 KiB whose SNI comes after 6000 bytes of cipher suites."""
    host = sni.encode()
    sni_ext = struct.pack(">HHHBH", 0, len(host) + 5, len(host) + 3, 0, len(host)) + host
    suites = b"\x00\x2f" * 3000
    body = b"\x03\x03" + os.urandom(32) + b"\x00" + struct.pack(">H", len(suites)) + suites + b"\x01\x00"
    body += struct.pack(">H", len(sni_ext)) + sni_ext
    hs = b"\x01" + struct.pack(">I", len(body))[1:] + body
    return b"\x16\x03\x01" + struct.pack(">H", len(hs)) + hs


def test_bad_input(gw, echo):
    cases = [
        ("garbage bytes", b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" + os.urandom(200)),
        ("a ClientHello without SNI", gwproc.client_hello(None)),
        ("an unknown app", gwproc.client_hello(f"0123456789abcdef0123456789abcdef01234567.{BASE}")),
        ("a ClientHello larger than the 4 KiB sniff window", oversized_hello(name(echo.port))),
        ("an SNI with no dot", gwproc.client_hello("nodot")),
    ]
    for label, data in cases:
        c = Conn(gw.proxy, tls=False, prefix=data)
        closed = closed_by_peer(c, 10)
        c.close()
        t.ok(closed and not c.got, f"{label}: connection closed by the gateway ({c.closed_after:.2f} s)")
        t.ok(gw.alive() and exchange(gw.proxy, name(echo.port), b"next client"),
             f"after {label}: the gateway serves the next client")


def test_slow_clients(gw, echo):
    """Trickling ClientHellos and clients that never read must not block others."""
    stop = threading.Event()
    pushed = [0]

    def firehose(c, a):
        chunk = os.urandom(65536)
        c.settimeout(0.5)
        while not stop.is_set():
            try:
                c.sendall(chunk)
                pushed[0] += len(chunk)
            except socket.timeout:
                continue

    fh = Server(firehose)
    r0 = gwproc.rss_kib(gw.proc.pid)
    trick, readers = [], []
    hello = gwproc.client_hello(name(echo.port))
    try:
        for _ in range(40):
            s = socket.create_connection(("127.0.0.1", gw.proxy))
            trick.append(s)
        for _ in range(8):
            c = Conn(gw.proxy, name(fh.port))
            c.handshake()
            readers.append(c)  # never read from again
        worst, served, k = 0.0, 0, 0
        marks = []
        for phase in (2.5, 2.5):
            t_end = time.time() + phase
            while time.time() < t_end:
                for s in trick:  # one more byte of the ClientHello each round
                    try:
                        s.send(hello[k:k + 1])
                    except OSError:
                        pass
                k += 1
                t0 = time.time()
                if exchange(gw.proxy, name(echo.port), b"x" * 100, timeout=10):
                    served += 1
                worst = max(worst, time.time() - t0)
                time.sleep(0.05)
            marks.append((pushed[0], gwproc.rss_kib(gw.proc.pid)))
        t.ok(served > 10 and worst < 2.0,
             f"40 trickling + 8 never-reading clients: {served} other clients served, slowest {worst * 1000:.0f} ms")
        (p1, r1), (p2, r2) = marks
        t.ok(p1 > 1 << 20 and p2 - p1 < 2 << 20,
             f"the backends of the never-reading clients are flow-controlled: {p1 >> 20} MiB pushed, then "
             f"{(p2 - p1) >> 10} KiB in the next 2.5 s")
        t.ok((r2 - r0) / 1024 < 16 and r2 - r1 < 4 << 10,
             f"gateway RSS bounded: +{(r1 - r0) / 1024:.1f} MiB with them blocked, then +{(r2 - r1) / 1024:.1f} MiB")
    finally:
        stop.set()
        for s in trick:
            s.close()
        for c in readers:
            c.close()
        fh.close()


def test_idle(binary, d, certs, echo):
    gw = gwproc.Gateway(binary, d, certs, BASE, name="idle", localhost_backend=True)
    gw.config += '[core.proxy.timeouts]\nidle = "2s"\n'
    if not t.ok(gw.start(proxy_extra="workers = 2\n"), "second gateway with timeouts.idle = 2s"):
        t.diag(gw.log()[-2000:])
        return
    try:
        for mode in ("terminate", "passthrough"):
            if mode == "terminate":
                c = Conn(gw.proxy, name(echo.port))
                c.handshake()
                c.send(b"ping")
                c.pump(lambda x: len(x.got) >= 4, 10)
            else:
                hello = gwproc.client_hello(name(echo.port, "s"))
                c = Conn(gw.proxy, tls=False, prefix=hello + b"ping")
                c.pump(lambda x: len(x.got) >= len(hello) + 4, 10)
            t0 = time.time()
            closed = c.pump(lambda x: x.eof, 10)
            dt = time.time() - t0
            t.ok(closed and 1.8 <= dt <= 4.5, f"{mode}: idle connection reaped after {dt:.2f} s (idle = 2 s)")
            c.close()
        c = Conn(gw.proxy, name(echo.port))
        c.handshake()
        alive = True
        for i in range(8):  # 4 s of a byte every 0.5 s
            c.send(b".")
            c.pump(lambda x: len(x.got) >= i + 1, 2)
            if c.eof:
                alive = False
                break
            time.sleep(0.5)
        t.ok(alive and len(c.got) == 8, "a connection that keeps moving bytes is not reaped (4 s, idle = 2 s)")
        c.close()
    finally:
        gw.stop()
        log = gw.log()
        t.ok("AddressSanitizer" not in log and "runtime error" not in log, "no sanitizer report (idle gateway)")


def main():
    if len(sys.argv) < 2:
        print("usage: proxy_process_test.py <dstack-gateway>")
        return 2
    binary = os.path.realpath(sys.argv[1])
    if not shutil.which("openssl"):
        gwproc.skip_all("needs openssl")
    d = gwproc.tempdir("gw-proxy-proc-")
    certs = gwproc.make_certs(d, BASE)
    echo = Server(echo_handler)
    bctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    bctx.load_cert_chain(certs["backend.crt"], certs["backend.key"])
    tls_backend = Server(echo_handler, tls_ctx=bctx)
    with open(certs["backend.crt"]) as f:
        tls_backend.der = ssl.PEM_cert_to_DER_cert(f.read())

    # A small ASan quarantine (sanitizer builds only) so freed memory is reused
    # and RSS reflects what the gateway holds, not what it freed recently.
    asan = os.environ.get("ASAN_OPTIONS", "")
    asan = (asan + ":" if asan else "") + "quarantine_size_mb=1:thread_local_quarantine_size_kb=64"
    gw = gwproc.Gateway(binary, d, certs, BASE, localhost_backend=True, env={"ASAN_OPTIONS": asan})
    try:
        if not t.ok(gw.start(proxy_extra="workers = 2\n"), "dstack-gateway starts (localhost test mode)"):
            t.diag(gw.log()[-3000:])
            return t.done()
        test_tls_versions(gw, certs, d)
        test_relay(gw, echo, tls_backend)
        test_concurrency(gw, echo)
        test_half_close(gw)
        test_bad_input(gw, echo)
        test_slow_clients(gw, echo)
        t.ok(gw.alive(), "the gateway is still running")
    finally:
        gw.stop()
    log = gw.log()
    t.ok("AddressSanitizer" not in log and "runtime error" not in log and "LeakSanitizer" not in log,
         "no sanitizer report in the gateway's log")
    test_idle(binary, d, certs, echo)
    echo.close()
    tls_backend.close()
    if t.failed:
        t.diag("gateway log (tail):")
        t.diag(log[-3000:])
    gwproc.cleanup_dir(d)
    return t.done()


if __name__ == "__main__":
    sys.exit(main())
