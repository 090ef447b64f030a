#!/usr/bin/env python3
"""A Maelstrom lin-kv and txn-list-append node for faultline's tests: n1 (the first node) holds
the only copy of the map and sends a heartbeat to every other node every
100 ms; every other node forwards each client request to n1 and relays the
answer. n1 answers each forwarded request once (duplicates are recognised
by the client and its msg_id), so the store is linearizable under any
message fault; its leader is n1 by construction."""
import json
import sys
import threading
import time

out_lock = threading.Lock()
# --heartbeat-ms N: how often n1 sends its heartbeats (default 100).
HEARTBEAT = 0.1
if "--heartbeat-ms" in sys.argv:
    HEARTBEAT = int(sys.argv[sys.argv.index("--heartbeat-ms") + 1]) / 1000.0


def send(msg):
    with out_lock:
        sys.stdout.write(json.dumps(msg) + "\n")
        sys.stdout.flush()


me = None
nodes = []
store = {}
lists = {}  # txn-list-append: key -> list
done = {}  # (client, msg_id) -> answer body, on n1
waiting = {}  # forward id -> (client, msg_id), on the others
next_id = [1]


def apply(body):
    t, k = body["type"], str(body.get("key"))
    if t == "read":
        if k not in store:
            return {"type": "error", "code": 20, "text": "not found"}
        return {"type": "read_ok", "value": store[k]}
    if t == "write":
        store[k] = body["value"]
        return {"type": "write_ok"}
    if t == "cas":
        if k not in store:
            return {"type": "error", "code": 20, "text": "not found"}
        if store[k] != body["from"]:
            return {"type": "error", "code": 22, "text": "mismatch"}
        store[k] = body["to"]
        return {"type": "cas_ok"}
    if t == "txn":
        out = []
        for f, key, v in body["txn"]:
            if f == "append":
                lists.setdefault(str(key), []).append(v)
                out.append([f, key, v])
            else:
                out.append([f, key, list(lists.get(str(key), []))])
        return {"type": "txn_ok", "txn": out}
    return {"type": "error", "code": 10, "text": "unsupported"}


def heartbeats():
    while True:
        for n in nodes:
            if n != me:
                send({"src": me, "dest": n, "body": {"type": "heartbeat"}})
        time.sleep(HEARTBEAT)


for line in sys.stdin:
    msg = json.loads(line)
    body, src = msg["body"], msg["src"]
    t = body["type"]
    if t == "init":
        me, nodes = body["node_id"], body["node_ids"]
        send({"src": me, "dest": src, "body": {"type": "init_ok", "in_reply_to": body["msg_id"]}})
        if me == nodes[0] and len(nodes) > 1:
            threading.Thread(target=heartbeats, daemon=True).start()
    elif t == "heartbeat":
        pass
    elif t == "forward":
        key = (body["client"], body["req"]["msg_id"])
        if key not in done:
            done[key] = apply(body["req"])
        send({"src": me, "dest": src, "body": {"type": "forward_ok", "in_reply_to": body["msg_id"], "answer": done[key]}})
    elif t == "forward_ok":
        if body["in_reply_to"] in waiting:
            client, msg_id = waiting.pop(body["in_reply_to"])
            answer = dict(body["answer"], in_reply_to=msg_id)
            send({"src": me, "dest": client, "body": answer})
    elif me == nodes[0]:
        key = (src, body["msg_id"])
        if key not in done:
            done[key] = apply(body)
        send({"src": me, "dest": src, "body": dict(done[key], in_reply_to=body["msg_id"])})
    else:
        fid = next_id[0]
        next_id[0] += 1
        waiting[fid] = (src, body["msg_id"])
        send({"src": me, "dest": nodes[0], "body": {"type": "forward", "msg_id": fid, "client": src, "req": body}})
