#!/usr/bin/env python3
"""cert_reload_test.py — the real dstack-gateway picks up a renewed wildcard
certificate without a restart: SIGHUP and Admin.ReloadCert re-read
[core.proxy] cert_chain/cert_key (what certbot's renewed_hook triggers); a
broken file, a key that does not match, or a missing file is refused with a
clear error while the certificate in use keeps being served; a connection
opened before the reload keeps working; the admin method needs the token.

Usage: cert_reload_test.py <dstack-gateway>   (TAP on stdout)
"""
import os
import shutil
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gwproc  # noqa: E402
from gwproc import Conn  # noqa: E402

BASE = "reload.test"
t = gwproc.Tap()


def new_wildcard(d, tag):
    """A fresh self-signed *.BASE certificate and key; returns their paths."""
    crt, key = os.path.join(d, f"{tag}.crt"), os.path.join(d, f"{tag}.key")
    gwproc.run("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
               "-days", "2", "-subj", f"/CN=*.{BASE}/O={tag}", "-addext", f"subjectAltName=DNS:*.{BASE}",
               "-keyout", key, "-out", crt)
    return crt, key


def der_of(crt):
    return subprocess.run(["openssl", "x509", "-in", crt, "-outform", "DER"], check=True,
                          capture_output=True).stdout


def served(gw):
    """The certificate the proxy presents for health.BASE (DER), or None."""
    c = Conn(gw.proxy, f"health.{BASE}")
    try:
        if not c.handshake():
            return None
        return c.tls.getpeercert(binary_form=True)
    finally:
        c.close()


def install(src_crt, src_key, dst_crt, dst_key):
    """Replace the configured files the way certbot does: write, then rename."""
    for s, dst in ((src_crt, dst_crt), (src_key, dst_key)):
        tmp = dst + ".tmp"
        shutil.copyfile(s, tmp)
        os.chmod(tmp, 0o600)
        os.replace(tmp, dst)


def wait_served(gw, der, secs=5):
    deadline = time.time() + secs
    while time.time() < deadline:
        if served(gw) == der:
            return True
        time.sleep(0.1)
    return False


def main():
    if len(sys.argv) < 2:
        print("usage: cert_reload_test.py <dstack-gateway>")
        return 2
    binary = os.path.realpath(sys.argv[1])
    d = gwproc.tempdir("gw-reload-")
    certs = gwproc.make_certs(d, BASE)
    live_crt, live_key = certs["wild.crt"], certs["wild.key"]
    first = der_of(live_crt)
    gw = gwproc.Gateway(binary, d, certs, BASE)
    try:
        if not t.ok(gw.start(), "gateway starts with the first wildcard certificate"):
            t.diag(gw.log()[-3000:])
            return t.done()
        t.ok(served(gw) == first, "the first certificate is served")

        # A connection opened before the renewal.
        old = Conn(gw.proxy, f"health.{BASE}")
        t.ok(old.handshake(), "a connection opened before the renewal")

        # SIGHUP after certbot renewed the files.
        b_crt, b_key = new_wildcard(d, "second")
        second = der_of(b_crt)
        install(b_crt, b_key, live_crt, live_key)
        t.ok(served(gw) == first, "renewed on disk only: still the first certificate (no polling)")
        gw.proc.send_signal(signal.SIGHUP)
        t.ok(wait_served(gw, second), "SIGHUP: the renewed certificate is served")
        t.ok(gw.alive() and "SIGHUP: reloading certificates" in gw.log() and
             f"certificates reloaded: *.{BASE} from its files" in gw.log(),
             "SIGHUP: the gateway stays up and logs the reload")
        old.send(f"GET / HTTP/1.1\r\nHost: health.{BASE}\r\nConnection: close\r\n\r\n".encode())
        old.pump(lambda x: x.eof, 10)
        t.ok(bytes(old.got).startswith(b"HTTP/1.1 200"), "the connection opened before still answers")
        old.close()

        # Admin.ReloadCert: token required.
        st, _ = gw._post(gw.admin, "/prpc/Admin.ReloadCert?json", {})
        t.ok(st == 401, f"Admin.ReloadCert without the token: 401 ({st})")

        # Broken inputs: refused, the second certificate stays.
        with open(live_crt, "w") as f:
            f.write("-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n")
        st, r = gw.admin_call("ReloadCert")
        err = r.get("error", "")
        t.ok(st != 200 and "certificate reload failed" in err and live_crt in err,
             f"garbage certificate file: refused, the error names the file ({st} {err})")
        t.ok(served(gw) == second and gw.alive(), "... and the certificate in use is still served")

        c_crt, c_key = new_wildcard(d, "third")
        third = der_of(c_crt)
        shutil.copyfile(c_crt, live_crt)  # new certificate, old key
        st, r = gw.admin_call("ReloadCert")
        err = r.get("error", "")
        t.ok(st != 200 and "mismatch" in err and live_key in err,
             f"certificate and key that do not match: refused ({err})")
        t.ok(served(gw) == second, "... still the second certificate")

        os.unlink(live_key)
        st, r = gw.admin_call("ReloadCert")
        err = r.get("error", "")
        t.ok(st != 200 and live_key in err, f"key file missing: refused, the error names it ({err})")
        t.ok(served(gw) == second, "... still the second certificate")

        install(c_crt, c_key, live_crt, live_key)
        st, r = gw.admin_call("ReloadCert")
        t.ok(st == 200 and r is None, f"Admin.ReloadCert after a good renewal: 200, null (Empty) ({st} {r})")
        t.ok(served(gw) == third, "the third certificate is served")
        t.ok("(the certificates in use stay in place)" in gw.log(), "failed reloads are logged as such")

        # A restart serves what is on disk.
        gw.stop()
        t.ok(gw.start() and served(gw) == third, "after a restart: the files on disk are served")
    finally:
        gw.stop()
        if t.failed:
            t.diag(gw.log()[-3000:])
        shutil.rmtree(d, ignore_errors=True)
    return t.done()


if __name__ == "__main__":
    sys.exit(main())
