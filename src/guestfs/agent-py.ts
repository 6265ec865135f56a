/**
 * The guest-access agent: a small Python program run on the node (`python3 -c AGENT_PY`) that
 * holds ONE libguestfs handle for a whole conversion and answers calls over its stdin/stdout,
 * one JSON object per line. Every call is a libguestfs API call by name with positional and
 * keyword arguments; nothing is ever interpreted by a shell, in the agent or in the guest.
 *
 * Request:  {"id": 1, "m": "inspect_os", "a": [], "k": {}}
 * Reply:    {"id": 1, "ok": RESULT}  or  {"id": 1, "err": "message", "errno": N}
 * Bytes travel as {"$b64": "..."} both ways. The call "__exit" shuts the appliance down and
 * ends the agent with status 0. End of input does the same.
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
        if m.startswith("_") or not hasattr(g, m):
            raise AttributeError("no libguestfs call named " + m)
        res = getattr(g, m)(*dec(req.get("a", [])), **dec(req.get("k", {})))
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
