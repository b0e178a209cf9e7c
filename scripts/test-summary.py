#!/usr/bin/env python3
"""Summarise a meson test run by assertion.

Meson counts test executables; our unit tests speak TAP, so this reads
meson-logs/testlog.json and counts every `ok` / `not ok` line. A test that
failed without reporting a failed assertion (crash, timeout, sanitizer
report) counts as one extra failure. Ends with the line CI reads:

    N passed, N failed
"""
import json
import re
import sys

logs = sys.argv[1:] or ["build/meson-logs/testlog.json"]
passed = failed = skipped = 0
failures = []
todos = []
lines = []
for log in logs:
    try:
        lines += open(log).read().splitlines()
    except OSError as e:
        failures.append(f"no test log {log}: {e}")
        failed += 1

for line in lines:
    t = json.loads(line)
    out = t.get("stdout") or ""
    oks = re.findall(r"^ok \d+", out, re.M)
    # A TAP "# TODO" or "# SKIP" result is neither a pass nor a failure: it is
    # counted and listed as skipped, never silently folded into the passes.
    skips = re.findall(r"^(?:not )?ok \d+.*# (?:SKIP|TODO).*$", out, re.M | re.I)
    bad = [b for b in re.findall(r"^not ok \d+.*$", out, re.M) if not re.search(r"# (?:SKIP|TODO)", b, re.I)]
    if oks or bad:
        passed += len(oks) - len([x for x in skips if x.startswith("ok")])
        skipped += len(skips)
        todos += [f"{t['name']}: {x}" for x in skips]
        failed += len(bad)
        failures += [f"{t['name']}: {b}" for b in bad]
        if t["result"] not in ("OK", "EXPECTEDFAIL") and not bad:
            failed += 1
            failures.append(f"{t['name']}: {t['result']} (exit {t.get('returncode')}) after {len(oks)} assertions")
    elif t["result"] == "SKIP":
        skipped += 1
        reason = re.search(r"# SKIP\s*(.*)", out)
        todos.append(f"{t['name']}: whole test skipped: {reason.group(1) if reason else '(no reason given)'}")
    elif t["result"] in ("OK", "EXPECTEDFAIL"):
        passed += 1
    else:
        failed += 1
        failures.append(f"{t['name']}: {t['result']} (exit {t.get('returncode')})")

for x in todos:
    print("SKIPPED", x)
for f in failures:
    print("FAILED", f)
tail = f", {skipped} skipped" if skipped else ""
print(f"{passed} passed, {failed} failed{tail}")
sys.exit(1 if failed else 0)
