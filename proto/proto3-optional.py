#!/usr/bin/env python3
# proto3-optional.py — rewrite proto3 `optional` fields as synthetic oneofs.
#
# protoc-c 1.4.1 refuses proto3 files with `optional` fields. A proto3
# optional field is defined as a one-member oneof named `_<field>`, with the
# same wire format, so rewriting `optional T f = N;` to
# `oneof _f { T f = N; }` gives identical encodings and a presence flag
# (`_f_case`) in C. lib/prpc treats one-member oneofs as optional fields.
#
# Usage: proto3-optional.py IN.proto OUT.proto
import re
import sys

src = open(sys.argv[1], encoding="utf-8").read()
if re.search(r'^\s*syntax\s*=\s*"proto3"\s*;', src, re.M):
    # Blank out comments for matching, but keep offsets so we edit `src`.
    masked = re.sub(r"//[^\n]*|/\*.*?\*/", lambda m: re.sub(r"[^\n]", " ", m.group(0)), src, flags=re.S)
    pat = re.compile(
        r"(?<![A-Za-z0-9_.])optional\s+([A-Za-z_][A-Za-z0-9_.]*)\s+([A-Za-z_][A-Za-z0-9_]*)\s*=\s*([0-9]+)\s*(\[[^\]]*\])?\s*;")
    out, pos = [], 0
    for m in pat.finditer(masked):
        typ, name, num, opts = m.group(1), m.group(2), m.group(3), m.group(4) or ""
        out.append(src[pos:m.start()])
        out.append("oneof _%s { %s %s = %s%s; }" % (name, typ, name, num, " " + opts if opts else ""))
        pos = m.end()
    out.append(src[pos:])
    src = "".join(out)
open(sys.argv[2], "w", encoding="utf-8").write(src)
