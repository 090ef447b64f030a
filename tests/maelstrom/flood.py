#!/usr/bin/env python3
"""A hostile node: after init, it floods its host for a few seconds with
messages to itself (never reading its stdin again), lines that are not
JSON, and its stderr. The host must stay bounded in memory and log."""
import json
import os
import sys
import time

init = json.loads(sys.stdin.readline())
me = init["body"]["node_id"]
print(json.dumps({"src": me, "dest": init["src"],
                  "body": {"type": "init_ok", "in_reply_to": init["body"]["msg_id"]}}), flush=True)
payload = "x" * 4096
to_self = json.dumps({"src": me, "dest": me, "body": {"type": "echo", "pad": payload}}) + "\n"
junk = "not json " * 100 + "\n"
noise = b"e" * 65536
end = time.time() + float(os.environ.get("FLOOD_SECONDS", "6"))
out = sys.stdout
while time.time() < end:
    out.write(to_self * 64)
    out.write(junk * 16)
    out.flush()
    sys.stderr.buffer.write(noise)
    sys.stderr.flush()
time.sleep(600)
