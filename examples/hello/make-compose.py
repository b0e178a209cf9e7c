#!/usr/bin/env python3
# Regenerate app-compose.json from server.py (the compose embeds the script,
# so its hash, and the app id, change whenever server.py does).
import json, pathlib
here = pathlib.Path(__file__).parent
script = "PY=/usr/bin/python3; [ -x \"$PY\" ] || PY=python3\nexec \"$PY\" - <<'HELLO_PY'\n" + (here / "server.py").read_text() + "HELLO_PY\n"
compose = {
    "manifest_version": 2,
    "name": "hello",
    "runner": "bash",
    "bash_script": script,
    "kms_enabled": True,
    "gateway_enabled": True,
    "public_logs": True,
    "public_sysinfo": True,
    "allowed_envs": ["GREETING"],
    "no_instance_id": False,
    "secure_time": False,
}
(here / "app-compose.json").write_text(json.dumps(compose, indent=2) + "\n")
