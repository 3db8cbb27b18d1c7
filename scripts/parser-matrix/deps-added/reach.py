# Crates reachable from mailkeep (normal+build edges, this platform) with and without the edge
# to the `imap` crate: what leaving imap (and imap-proto) would remove.
import json, subprocess, sys
m = json.loads(subprocess.check_output(["cargo", "metadata", "-q", "--format-version", "1", "--filter-platform", "x86_64-unknown-linux-gnu"], cwd="mk-only"))
nodes = {n["id"]: n for n in m["resolve"]["nodes"]}
name = {p["id"]: f'{p["name"]} {p["version"]}' for p in m["packages"]}
root = [i for i in nodes if name[i].startswith("mailkeep ")][0]
def reach(skip):
    seen, todo = set(), [root]
    while todo:
        i = todo.pop()
        if i in seen: continue
        seen.add(i)
        for d in nodes[i]["deps"]:
            if not any(k["kind"] in (None, "build") for k in d["dep_kinds"]): continue
            if i == root and name[d["pkg"]].startswith(skip): continue
            todo.append(d["pkg"])
    return {name[i] for i in seen}
full = reach("\0"); without = reach("imap ")
print(len(full), "crates with imap;", len(without), "without; removed:", sorted(full - without))
