#!/usr/bin/env python3
"""A Maelstrom lin-kv and txn-list-append node for faultline's tests that
is wrong on purpose: each node answers from its own map and never tells the
others, so clients of different nodes see different registers (not
linearizable) and different lists (not serializable)."""
import json
import sys

store = {}
lists = {}
me = None
for line in sys.stdin:
    msg = json.loads(line)
    body, src = msg["body"], msg["src"]
    t = body["type"]
    reply = None
    if t == "init":
        me = body["node_id"]
        reply = {"type": "init_ok"}
    elif t == "read":
        k = str(body["key"])
        reply = {"type": "read_ok", "value": store[k]} if k in store else {"type": "error", "code": 20}
    elif t == "write":
        store[str(body["key"])] = body["value"]
        reply = {"type": "write_ok"}
    elif t == "cas":
        k = str(body["key"])
        if k not in store:
            reply = {"type": "error", "code": 20}
        elif store[k] != body["from"]:
            reply = {"type": "error", "code": 22}
        else:
            store[k] = body["to"]
            reply = {"type": "cas_ok"}
    elif t == "txn":
        out = []
        for f, key, v in body["txn"]:
            if f == "append":
                lists.setdefault(str(key), []).append(v)
                out.append([f, key, v])
            else:
                out.append([f, key, list(lists.get(str(key), []))])
        reply = {"type": "txn_ok", "txn": out}
    if reply is not None:
        reply["in_reply_to"] = body["msg_id"]
        sys.stdout.write(json.dumps({"src": me, "dest": src, "body": reply}) + "\n")
        sys.stdout.flush()
