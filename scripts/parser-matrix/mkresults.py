#!/usr/bin/env python3
"""Builds RESULTS.md from results-template.md and the outputs in out/."""
import re

def rows(path):
    out = {}
    for line in open(path, encoding="utf-8"):
        if line.startswith("| ") and not line.startswith("| row |"):
            cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]
            out[cells[0]] = cells
    return out

def totals(path):
    for line in open(path, encoding="utf-8"):
        if line.startswith("Totals correct"):
            return line.strip()
    return ""

d = rows("out/matrix-default.md")
e = rows("out/matrix-ext.md")
q = rows("out/matrix-noquirk.md")
n = len(d)
table = ["| row | expected facts | imap-proto 0.16.7 | imap-codec 2.0.0-alpha.10 (default features) | imap-codec + ext features | mailkeep (working tree) |",
         "|---|---|---|---|---|---|"]
ok = [0, 0, 0, 0]
for name, c in d.items():
    ext = e[name][3]
    cols = [c[2], c[3], ext, c[4]]
    for i, v in enumerate(cols):
        if v.startswith("✓"):
            ok[i] += 1
    table.append(f"| {name} | {c[1]} | {cols[0]} | {cols[1]} | {cols[2]} | {cols[3]} |")
nq = sum(1 for name in q if q[name][3].startswith("✓"))
tot = (f"| parser | rows correct (of {n}) |\n|---|---|\n"
       f"| imap-proto 0.16.7 (mailkeep's Cargo.lock at HEAD) | **{ok[0]}** |\n"
       f"| imap-codec 2.0.0-alpha.10, default features (= the `quirk` set) | **{ok[1]}** |\n"
       f"| imap-codec 2.0.0-alpha.10, default + ext_condstore_qresync, ext_utf8, ext_list_extended, ext_namespace | **{ok[2]}** |\n"
       f"| imap-codec 2.0.0-alpha.10, the same extensions, quirk features off | {nq} |\n"
       f"| mailkeep (`fuzzing::imap_response_facts`, /work/main working tree) | **{ok[3]}** |")
details = [l.rstrip() for l in open("out/matrix-default.md", encoding="utf-8") if l.startswith("- ")]
t = open("results-template.md", encoding="utf-8").read()
t = t.replace("<!--TOTALS-->", tot)
t = t.replace("<!--TABLE-->", "\n".join(table))
t = t.replace("<!--DETAILS-->", "\n".join(details))
t = t.replace("<!--BENCH-->", open("out/bench.md", encoding="utf-8").read().strip().replace("\n| input", "\n\n| input").replace("|\nrun ", "|\n\nrun "))
t = t.replace("<!--TIMINGS-->", open("out/timings.txt", encoding="utf-8").read().strip())
t = t.replace("<!--BUILDTIME-->", open("out/buildtime.txt", encoding="utf-8").read().strip())
t = t.replace("<!--DEPS-->", open("out/deps-added.txt", encoding="utf-8").read().strip())
t = t.replace("<!--SOURCES-->", "| row | source |\n|---|---|\n" + open("out/sources.md", encoding="utf-8").read().strip())
mk = [l.split() for l in open("out/mailkeep-tree.txt", encoding="utf-8") if l.strip()]
t = t.replace("<!--MKTIME-->", mk[0][0] + " UTC")
t = t.replace("<!--MKHASH-->", ", ".join(f"`{f}` {h}" for h, f in mk[2:]))
open("RESULTS.md", "w", encoding="utf-8").write(t)
print("RESULTS.md written;", tot.replace("\n", " "))
