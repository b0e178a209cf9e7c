#!/usr/bin/env python3
# protoc-c.py — run protoc-c on one .proto after rewriting proto3 `optional`.
#
# protoc-c 1.4.1 refuses proto3 files with `optional` fields. A proto3
# optional field is by definition a one-member oneof named `_<field>` with the
# same wire format, so `optional T f = N;` becomes `oneof _f { T f = N; }`:
# identical encodings, and C code gets a presence flag (`_f_case`). lib/prpc
# treats one-member oneofs as optional fields (null when unset).
#
# Usage: protoc-c.py PROTOC_C SRC_ROOT OUT_ROOT REL_PATH
import os
import re
import subprocess
import sys
import tempfile

protoc_c, src_root, out_root, rel = sys.argv[1:5]
FIELD = re.compile(r"(?<![A-Za-z0-9_.])optional\s+([A-Za-z_][A-Za-z0-9_.]*)\s+([A-Za-z_][A-Za-z0-9_]*)"
                   r"\s*=\s*([0-9]+)\s*(\[[^\]]*\])?\s*;")


def rewrite(src):
    if not re.search(r'^\s*syntax\s*=\s*"proto3"\s*;', src, re.M):
        return src
    # Match on a copy with comments blanked (same offsets), edit the original.
    masked = re.sub(r"//[^\n]*|/\*.*?\*/", lambda m: re.sub(r"[^\n]", " ", m.group(0)), src, flags=re.S)
    out, pos = [], 0
    for m in FIELD.finditer(masked):
        typ, name, num, opts = m.group(1), m.group(2), m.group(3), m.group(4)
        out.append(src[pos:m.start()])
        out.append("oneof _%s { %s %s = %s%s; }" % (name, typ, name, num, " " + opts if opts else ""))
        pos = m.end()
    out.append(src[pos:])
    return "".join(out)


with tempfile.TemporaryDirectory() as tmp:
    dst = os.path.join(tmp, rel)
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    with open(os.path.join(src_root, rel), encoding="utf-8") as f:
        text = rewrite(f.read())
    with open(dst, "w", encoding="utf-8") as f:
        f.write(text)
    rc = subprocess.call([protoc_c, "--proto_path=" + tmp, "--proto_path=" + src_root,
                          "--c_out=" + out_root, dst])
if rc != 0:
    sys.exit(rc)
# The *__INIT macros initialise each oneof union with {0}, which -Wall
# (-Wmissing-braces) rejects when the first member is a struct (bytes).
# An empty initialiser zero-fills any union and needs no inner braces.
hdr = os.path.join(out_root, rel[:-len(".proto")] + ".pb-c.h")
with open(hdr, encoding="utf-8") as f:
    text = f.read()
text = re.sub(r"(__NOT_SET), \{0\}", r"\1, {}", text)
with open(hdr, "w", encoding="utf-8") as f:
    f.write(text)
