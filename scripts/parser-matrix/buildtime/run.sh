#!/bin/sh
# Clean builds of each parser crate alone (own target dirs), one job, debug and release.
set -e
export CARGO_BUILD_JOBS=1
cd "$(dirname "$0")"
for p in codec-only proto-only; do
  for prof in dev release; do
    rm -rf "$p/target"
    (cd "$p" && cargo fetch -q)
    s=$(date +%s.%N)
    (cd "$p" && cargo build -q --profile $prof)
    e=$(date +%s.%N)
    echo "$p $prof $(echo "$e - $s" | bc) s"
  done
  (cd "$p" && echo "$p cargo tree -e normal lines: $(cargo tree -e normal | wc -l)"; echo "$p cargo tree (all edges) lines: $(cargo tree | wc -l)"; echo "$p unique crates: $(cargo tree -e normal,build --prefix none | sed 's/ (\*)//' | sort -u | wc -l)")
done
