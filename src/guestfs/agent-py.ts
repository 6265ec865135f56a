/**
 * The guest-access agent: a small Python program run on the node (`python3 -c AGENT_PY`) that
 * holds ONE libguestfs handle for a whole conversion and answers calls over its stdin/stdout,
 * one JSON object per line. Every call is a libguestfs API call by name with positional and
 * keyword arguments; nothing is ever interpreted by a shell, in the agent or in the guest.
 *
 * Request:  {"id": 1, "m": "inspect_os", "a": [], "k": {}}
 * Reply:    {"id": 1, "ok": RESULT}  or  {"id": 1, "err": "message", "errno": N}
 * Bytes travel as {"$b64": "..."} both ways. The call "__exit" shuts the appliance down and
 * ends the agent with status 0. End of input does the same. Besides libguestfs's calls, the
 * agent has registry calls built on its hivex_* API: v2v_reg_keys(hive, [path..]) reads keys
 * (values with type and bytes, subkey names), v2v_reg_set(hive, [{key, values}]) sets values
 * (creating keys) and commits; each opens the hive once.
 */
export const AGENT_PY = String.raw`
import base64, json, sys
import guestfs

def dec(v):
    if isinstance(v, dict):
        if set(v.keys()) == {"$b64"}:
            return base64.b64decode(v["$b64"])
        return {k: dec(x) for k, x in v.items()}
    if isinstance(v, list):
        return [dec(x) for x in v]
    return v

def enc(v):
    if isinstance(v, (bytes, bytearray)):
        return {"$b64": base64.b64encode(bytes(v)).decode("ascii")}
    if isinstance(v, dict):
        return {str(k): enc(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [enc(x) for x in v]
    return v

out = sys.stdout
g = guestfs.GuestFS(python_return_dict=True)

# Registry operations (hivex in the same appliance), one hive open per call.
def _reg_node(path, create):
    node = g.hivex_root()
    for name in path:
        child = g.hivex_node_get_child(node, name)
        if child == 0:
            if not create:
                return 0
            child = g.hivex_node_add_child(node, name)
        node = child
    return node

def v2v_reg_keys(hive, paths):
    g.hivex_open(hive, write=False)
    try:
        res = []
        for p in paths:
            node = _reg_node(p, False)
            if node == 0:
                res.append(None)
                continue
            values = []
            for v in g.hivex_node_values(node):
                vh = v["hivex_value_h"]
                values.append({"name": g.hivex_value_key(vh), "type": g.hivex_value_type(vh),
                               "data": g.hivex_value_value(vh)})
            subkeys = [g.hivex_node_name(c["hivex_node_h"]) for c in g.hivex_node_children(node)]
            res.append({"values": values, "subkeys": subkeys})
        return res
    finally:
        g.hivex_close()

def v2v_reg_set(hive, edits):
    g.hivex_open(hive, write=True)
    try:
        for e in edits:
            node = _reg_node(e["key"], True)
            for v in e["values"]:
                g.hivex_node_set_value(node, v["name"], v["type"], v["data"])
        g.hivex_commit(None)
    finally:
        g.hivex_close()

EXTRA = {"v2v_reg_keys": v2v_reg_keys, "v2v_reg_set": v2v_reg_set}
out.write(json.dumps({"id": 0, "ok": "ready"}) + "\n")
out.flush()
for line in sys.stdin:
    line = line.strip()
    if not line:
        continue
    req = json.loads(line)
    rid = req.get("id")
    m = req.get("m", "")
    if m == "__exit":
        try:
            g.shutdown()
        except Exception:
            pass
        g.close()
        out.write(json.dumps({"id": rid, "ok": None}) + "\n")
        out.flush()
        sys.exit(0)
    try:
        if m in EXTRA:
            fn = EXTRA[m]
        elif m.startswith("_") or not hasattr(g, m):
            raise AttributeError("no libguestfs call named " + m)
        else:
            fn = getattr(g, m)
        res = fn(*dec(req.get("a", [])), **dec(req.get("k", {})))
        out.write(json.dumps({"id": rid, "ok": enc(res)}) + "\n")
    except Exception as e:
        errno = 0
        try:
            errno = g.last_errno()
        except Exception:
            pass
        out.write(json.dumps({"id": rid, "err": str(e), "errno": errno}) + "\n")
    out.flush()
try:
    g.shutdown()
except Exception:
    pass
g.close()
`;
