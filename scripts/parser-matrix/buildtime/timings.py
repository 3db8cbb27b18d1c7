# Per-crate compile times from cargo's --timings report: python3 timings.py <dir> <crate>...
import re, json, sys
h = open(sys.argv[1] + '/target/cargo-timings/cargo-timing.html').read()
data = json.loads(re.search(r'const UNIT_DATA = (\[.*?\]);\n', h, re.S).group(1))
want = sys.argv[2:]
tot = sum(u['duration'] for u in data)
sel = [(u['name'], u['version'], u['duration']) for u in data if u['name'] in want and 'build-script' not in str(u.get('target', ''))]
print(f"{sys.argv[1]}: all units {tot:.1f} s; " + ", ".join(f"{n} {v} {d:.1f} s" for n, v, d in sel) + f"; selected sum {sum(d for _, _, d in sel):.1f} s")
