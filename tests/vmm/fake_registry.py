#!/usr/bin/env python3
"""fake_registry.py — a small OCI distribution registry for registry_test.sh.

Serves one repository, `dstack/guest`, with the API calls a puller makes:
`/v2/<repo>/tags/list` (3 tags a page, `Link: rel="next"`), manifests by
tag and digest (an OCI index, OCI and Docker v2 manifests), and blobs
(redirected to another host, `http://127.0.0.2:PORT/storage/<digest>`,
which refuses requests that carry an Authorization header: credentials
must not follow a redirect to another host). Every /v2
call needs a Bearer token from `/token` (anonymous, scope checked).

Images (tags):
  0.5.9         OCI index (arm64 first, then amd64) → 2 layers: a tar.gz with
                metadata.json, kernel, initrd, a 150-character pax path, a
                symlink to /etc and a file `obsolete`; a plain tar with
                digest.txt and the whiteout `.wh.obsolete`
  0.5.9-docker  Docker v2 manifest, one tar.gz layer in GNU format with a long name
  nometa        a layer without metadata.json
  badsum        a layer whose bytes do not match its digest
  evil          a layer with the entry `../escape.txt`
  zstd          a layer of media type tar+zstd
  sha256-0123.sig  (a signature tag: must not be listed)

usage: fake_registry.py PORT LOGFILE
"""
import gzip
import hashlib
import http.server
import io
import json
import sys
import tarfile
import urllib.parse

PORT, LOG = int(sys.argv[1]), sys.argv[2]
REPO = "dstack/guest"
TOKEN = "tok-" + hashlib.sha256(str(PORT).encode()).hexdigest()[:16]
blobs, manifests = {}, {}  # digest -> bytes; tag or digest -> (media type, bytes)

META = json.dumps({"kernel": "bzImage", "initrd": "initramfs.cpio.gz", "cmdline": "console=ttyS0",
                   "version": "0.5.9", "shared_ro": True}).encode()
LONG = "deep/" + "d" * 60 + "/" + "f" * 80 + ".txt"


def tar(entries, fmt=tarfile.PAX_FORMAT, gz=True):
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=fmt) as t:
        for name, data in entries:
            info = tarfile.TarInfo(name)
            if isinstance(data, tuple):  # ("symlink", target)
                info.type, info.linkname = tarfile.SYMTYPE, data[1]
                t.addfile(info)
                continue
            info.size, info.mode = len(data), 0o644
            t.addfile(info, io.BytesIO(data))
    b = raw.getvalue()
    return gzip.compress(b) if gz else b


def blob(data):
    d = "sha256:" + hashlib.sha256(data).hexdigest()
    blobs[d] = data
    return d


def manifest(layers, media="application/vnd.oci.image.manifest.v1+json",
             layer_media="application/vnd.oci.image.layer.v1.tar+gzip"):
    cfg = blob(b"{}")
    m = {"schemaVersion": 2, "mediaType": media,
         "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cfg, "size": 2},
         "layers": []}
    for data in layers:
        lm, payload = layer_media, data
        if isinstance(data, tuple):
            lm, payload = data
        m["layers"].append({"mediaType": lm, "digest": blob(payload), "size": len(payload)})
    body = json.dumps(m).encode()
    d = "sha256:" + hashlib.sha256(body).hexdigest()
    manifests[d] = (media, body)
    return d, body


def tag(name, media, body):
    manifests[name] = (media, body)


OCI_M = "application/vnd.oci.image.manifest.v1+json"
# 0.5.9: an index whose amd64 entry is the real image
good_layers = [tar([("metadata.json", META), ("bzImage", b"kernel"), ("initramfs.cpio.gz", b"initrd"),
                    (LONG, b"long"), ("etc-link", ("symlink", "/etc")), ("obsolete", b"old")]),
               ("application/vnd.oci.image.layer.v1.tar",
                tar([("digest.txt", b"ab" * 32), (".wh.obsolete", b"")], gz=False))]
amd64, _ = manifest(good_layers)
arm64, _ = manifest([tar([("metadata.json", b"{\"arm\":true}")])])
index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [
    {"mediaType": OCI_M, "digest": arm64, "size": 1, "platform": {"os": "linux", "architecture": "arm64"}},
    {"mediaType": OCI_M, "digest": amd64, "size": 1, "platform": {"os": "linux", "architecture": "amd64"}}]}
tag("0.5.9", index["mediaType"], json.dumps(index).encode())
DOCKER_M = "application/vnd.docker.distribution.manifest.v2+json"
_, body = manifest([tar([("metadata.json", META), ("bzImage", b"k"), ("initramfs.cpio.gz", b"i"),
                         ("g/" + "n" * 120, b"gnu")], fmt=tarfile.GNU_FORMAT)],
                   media=DOCKER_M, layer_media="application/vnd.docker.image.rootfs.diff.tar.gzip")
tag("0.5.9-docker", DOCKER_M, body)
_, body = manifest([tar([("bzImage", b"k")])])
tag("nometa", OCI_M, body)
_, body = manifest([tar([("metadata.json", META)])])
m = json.loads(body)
blobs[m["layers"][0]["digest"]] = tar([("metadata.json", b"{\"tampered\":true}")])
tag("badsum", OCI_M, body)
_, body = manifest([tar([("metadata.json", META), ("../escape.txt", b"x")])])
tag("evil", OCI_M, body)
_, body = manifest([("application/vnd.oci.image.layer.v1.tar+zstd", b"\x28\xb5\x2f\xfd")])
tag("zstd", OCI_M, body)
tag("sha256-0123.sig", OCI_M, body)
TAGS = ["0.5.9", "0.5.9-docker", "badsum", "evil", "nometa", "sha256-0123.sig", "zstd"]


class H(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass

    def reply(self, code, body=b"", ctype="application/json", headers=()):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        u = urllib.parse.urlsplit(self.path)
        q = urllib.parse.parse_qs(u.query)
        with open(LOG, "a") as f:
            f.write(f"{u.path} auth={'yes' if self.headers.get('Authorization') else 'no'}\n")
        if u.path == "/token":
            if q.get("scope") != [f"repository:{REPO}:pull"] or q.get("service") != ["fake-registry"]:
                return self.reply(400, b'{"details":"bad scope"}')
            return self.reply(200, json.dumps({"token": TOKEN}).encode())
        if u.path.startswith("/storage/"):
            if self.headers.get("Authorization"):
                return self.reply(400, b'{"errors":[{"message":"credentials leaked to storage"}]}')
            d = u.path[len("/storage/"):]
            return self.reply(200, blobs[d], "application/octet-stream") if d in blobs else self.reply(404)
        if self.headers.get("Authorization") != f"Bearer {TOKEN}":
            chal = (f'Bearer realm="http://127.0.0.1:{PORT}/token",service="fake-registry",'
                    f'scope="repository:{REPO}:pull"')
            return self.reply(401, b'{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}',
                              headers=[("WWW-Authenticate", chal)])
        prefix = f"/v2/{REPO}/"
        if not u.path.startswith(prefix):
            return self.reply(404, b'{"errors":[{"code":"NAME_UNKNOWN","message":"repository name not known"}]}')
        rest = u.path[len(prefix):]
        if rest == "tags/list":
            last = q.get("last", [""])[0]
            start = TAGS.index(last) + 1 if last else 0
            page = TAGS[start:start + 3]
            hdrs = []
            if start + 3 < len(TAGS):
                hdrs.append(("Link", f'</v2/{REPO}/tags/list?n=3&last={page[-1]}>; rel="next"'))
            return self.reply(200, json.dumps({"name": REPO, "tags": page}).encode(), headers=hdrs)
        if rest.startswith("manifests/"):
            ref = rest[len("manifests/"):]
            if ref not in manifests:
                return self.reply(404, b'{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}')
            media, body = manifests[ref]
            return self.reply(200, body, media)
        if rest.startswith("blobs/"):
            return self.reply(307, headers=[("Location", f"http://127.0.0.2:{PORT}/storage/{rest[len('blobs/'):]}")])
        return self.reply(404)


import threading  # noqa: E402

storage = http.server.ThreadingHTTPServer(("127.0.0.2", PORT), H)
threading.Thread(target=storage.serve_forever, daemon=True).start()
http.server.ThreadingHTTPServer(("127.0.0.1", PORT), H).serve_forever()
