#!/bin/sh
# Crates in mailkeep's normal+build dependency graph, without and with imap-codec.
# MK=path of the mailkeep checkout (default /work/main; /tmp/mk-head = `git -C /work/main archive ac45b4c`).
MK=${MK:-/work/main}
cd "$(dirname "$0")"
for d in mk-only mk-plus-codec; do
  sed -i "s#mailkeep = { path = \"[^\"]*\" }#mailkeep = { path = \"$MK\" }#" $d/Cargo.toml
  cp "$MK/Cargo.lock" $d/Cargo.lock
  (cd $d && cargo tree -q -e normal,build --prefix none | sed 's/ (\*)//; s/ (proc-macro)//; s/ ([/][^)]*)//' | sort -u | grep -v '^mk-' | grep -v '^mailkeep ' > ../$d.crates)
  echo "$MK: $d: $(wc -l < $d.crates) dependency crates"
done
echo "added by imap-codec:"; comm -13 mk-only.crates mk-plus-codec.crates
