#!/usr/bin/env python3
"""cf_standin.py - a stand-in for the Cloudflare DNS API v4 (gateway.md 8.3),
for the certbot tests: Cloudflare is a SaaS we cannot run, so this serves the
calls the certbot makes, with Cloudflare's envelopes and paging:

  GET    /client/v4/zones?page=&per_page=            (per_page <= 50)
  GET    /client/v4/zones/<zone>/dns_records?name=&page=&per_page=
  POST   /client/v4/zones/<zone>/dns_records          TXT {type,name,content,ttl}
                                                      CAA {type,name,data{flags,tag,value}}
  DELETE /client/v4/zones/<zone>/dns_records/<id>

Every call needs "Authorization: Bearer <token>", the token taken from the
environment (CF_STANDIN_TOKEN), not the command line. TXT records are forwarded
to pebble-challtestsrv's management API (/set-txt, /clear-txt) so the DNS
server pebble validates against - and the certbot's self-check asks - sees
them; names under a --no-forward suffix are accepted but never forwarded (a
DNS that does not propagate). --filler N adds N unrelated zones listed before
the real ones, so the zone lookup has to follow pages.

Every request is appended to --log as "METHOD PATH?QUERY AUTH" where AUTH is
"auth-ok" or "auth-bad" (never the header itself). Stdlib only.
"""
import argparse
import hashlib
import json
import os
import threading
import urllib.parse
import urllib.request
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PREFIX = "/client/v4"


class State:
    def __init__(self, args):
        self.lock = threading.Lock()
        self.token = os.environ["CF_STANDIN_TOKEN"]
        self.challtestsrv = args.challtestsrv.rstrip("/") if args.challtestsrv else None
        self.no_forward = [s.lower() for s in args.no_forward]
        self.log_path = args.log
        names = [f"filler-{i:03d}.invalid" for i in range(args.filler)] + args.zones
        self.zones = [{"id": hashlib.md5(n.encode()).hexdigest(), "name": n} for n in names]
        self.records = {}  # id -> record dict (with "zone_id")

    def zone(self, zone_id):
        return next((z for z in self.zones if z["id"] == zone_id), None)

    def log(self, line):
        if self.log_path:
            with open(self.log_path, "a") as f:
                f.write(line + "\n")

    def forward(self, path, body):
        if not self.challtestsrv:
            return
        req = urllib.request.Request(self.challtestsrv + path, data=json.dumps(body).encode(), method="POST")
        urllib.request.urlopen(req, timeout=5).read()

    def sync_txt(self, name):
        """Make challtestsrv hold exactly the TXT values stored for name."""
        if any(name.lower() == s or name.lower().endswith("." + s) for s in self.no_forward):
            return
        host = name.rstrip(".") + "."
        self.forward("/clear-txt", {"host": host})
        for r in self.records.values():
            if r["type"] == "TXT" and r["name"].lower() == name.lower():
                self.forward("/set-txt", {"host": host, "value": r["content"]})


def envelope(result, info=None):
    out = {"success": True, "errors": [], "messages": [], "result": result}
    if info is not None:
        out["result_info"] = info
    return out


def failure(code, message):
    return {"success": False, "errors": [{"code": code, "message": message}], "messages": [], "result": None}


def paged(items, query, max_per_page):
    try:
        page = int(query.get("page", ["1"])[0])
        per_page = int(query.get("per_page", ["20"])[0])
    except ValueError:
        return None, None
    if page < 1 or per_page < 1 or per_page > max_per_page:
        return None, None
    total_pages = max(1, (len(items) + per_page - 1) // per_page)
    chunk = items[(page - 1) * per_page : page * per_page]
    info = {"page": page, "per_page": per_page, "count": len(chunk), "total_count": len(items),
            "total_pages": total_pages}
    return chunk, info


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):  # quiet: the request log is the record
        pass

    def reply(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def handle_any(self, method):
        st = self.server.state
        url = urllib.parse.urlsplit(self.path)
        query = urllib.parse.parse_qs(url.query)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        authed = self.headers.get("Authorization") == f"Bearer {st.token}"
        st.log(f"{method} {self.path} {'auth-ok' if authed else 'auth-bad'}")
        if not authed:
            return self.reply(403, failure(9109, "Invalid access token"))
        if not url.path.startswith(PREFIX + "/"):
            return self.reply(404, failure(7000, "No route for that URI"))
        parts = url.path[len(PREFIX) + 1 :].split("/")
        with st.lock:
            if parts == ["zones"] and method == "GET":
                chunk, info = paged(st.zones, query, 50)
                if chunk is None:
                    return self.reply(400, failure(1001, "Invalid page or per_page"))
                return self.reply(200, envelope(chunk, info))
            if len(parts) < 3 or parts[0] != "zones" or parts[2] != "dns_records":
                return self.reply(404, failure(7000, "No route for that URI"))
            zone = st.zone(parts[1])
            if zone is None:
                return self.reply(404, failure(7003, "Could not route to /zones/" + parts[1]))
            if len(parts) == 3 and method == "GET":
                name = query.get("name", [None])[0]
                recs = [self.public(r) for r in st.records.values() if r["zone_id"] == zone["id"]
                        and (name is None or r["name"].lower() == name.lower())]
                chunk, info = paged(recs, query, 5000)
                if chunk is None:
                    return self.reply(400, failure(1001, "Invalid page or per_page"))
                return self.reply(200, envelope(chunk, info))
            if len(parts) == 3 and method == "POST":
                return self.create(zone, raw)
            if len(parts) == 4 and method == "DELETE":
                rec = st.records.get(parts[3])
                if rec is None or rec["zone_id"] != zone["id"]:
                    return self.reply(404, failure(81044, "Record does not exist."))
                del st.records[parts[3]]
                if rec["type"] == "TXT":
                    st.sync_txt(rec["name"])
                return self.reply(200, envelope({"id": parts[3]}))
        return self.reply(405, failure(10000, "Method not allowed"))

    @staticmethod
    def public(r):
        return {k: v for k, v in r.items() if k != "zone_id"}

    def create(self, zone, raw):
        st = self.server.state
        try:
            body = json.loads(raw)
            rtype, name = body["type"], body["name"]
        except (ValueError, KeyError, TypeError):
            return self.reply(400, failure(9207, "Request body is invalid."))
        zname = zone["name"]
        if not (name.lower() == zname or name.lower().endswith("." + zname)):
            return self.reply(400, failure(9005, "Content for record is not in the zone"))
        rec = {"id": uuid.uuid4().hex, "zone_id": zone["id"], "zone_name": zname, "type": rtype, "name": name,
               "ttl": body.get("ttl", 1)}
        if rtype == "TXT":
            ttl = rec["ttl"]
            if not isinstance(body.get("content"), str) or not (ttl == 1 or 60 <= ttl <= 86400):
                return self.reply(400, failure(9021, "Invalid TTL or content"))
            rec["content"] = body["content"]
        elif rtype == "CAA":
            data = body.get("data")
            if (not isinstance(data, dict) or data.get("tag") not in ("issue", "issuewild", "iodef")
                    or not isinstance(data.get("value"), str) or not isinstance(data.get("flags"), int)):
                return self.reply(400, failure(9101, "CAA data is invalid"))
            rec["data"] = {"flags": data["flags"], "tag": data["tag"], "value": data["value"]}
            rec["content"] = f'{data["flags"]} {data["tag"]} "{data["value"]}"'
        else:
            return self.reply(400, failure(9000, "Unsupported record type for this stand-in"))
        st.records[rec["id"]] = rec
        if rtype == "TXT":
            st.sync_txt(name)
        return self.reply(200, envelope(self.public(rec)))

    def do_GET(self):
        self.handle_any("GET")

    def do_POST(self):
        self.handle_any("POST")

    def do_DELETE(self):
        self.handle_any("DELETE")

    def do_PUT(self):
        self.handle_any("PUT")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--zone", dest="zones", action="append", default=[])
    ap.add_argument("--filler", type=int, default=0)
    ap.add_argument("--challtestsrv", default="")
    ap.add_argument("--no-forward", action="append", default=[])
    ap.add_argument("--log", default="")
    args = ap.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.state = State(args)
    print("ready", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
