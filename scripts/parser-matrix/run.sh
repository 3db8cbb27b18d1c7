#!/bin/sh
# Reproduces RESULTS.md (the same commands as its "Exact commands" section). One build job.
set -e
export CARGO_BUILD_JOBS=1
cd "$(dirname "$0")"
mkdir -p out
cargo build --release --features mailkeep
(date -u +%H:%M; cd ../.. && git rev-parse --short HEAD && sha256sum fuzz/src/lib.rs src/protocol/imap/reader.rs src/protocol/imap/mod.rs | awk '{print substr($1,1,16), $2}') > out/mailkeep-tree.txt
./target/release/parser-matrix ../../tests/data/imap-quirk-responses.txt > out/matrix-default.md
CARGO_TARGET_DIR=target-ext cargo build --release --features codec-ext
./target-ext/release/parser-matrix ../../tests/data/imap-quirk-responses.txt > out/matrix-ext.md
CARGO_TARGET_DIR=target-noquirk cargo build --release --no-default-features --features codec-ext
./target-noquirk/release/parser-matrix ../../tests/data/imap-quirk-responses.txt > out/matrix-noquirk.md
./parser-matrix-sources.sh
(for i in 1 2 3; do echo "run $i, load $(cut -d' ' -f1-3 /proc/loadavg)"; ./target/release/parser-matrix bench; done) > out/bench.md
if [ -n "$TIMES" ]; then   # slow: clean builds
  ./buildtime/run.sh > out/buildtime.txt 2>&1
  ./buildtime/run-timings.sh > out/timings.txt 2>&1
  rm -rf /tmp/mk-head && mkdir -p /tmp/mk-head && git -C ../.. archive ac45b4c | tar -x -C /tmp/mk-head
  (cd deps-added && MK=/tmp/mk-head ./count.sh && python3 reach.py && MK=$(cd ../.. && pwd) ./count.sh && python3 reach.py) > out/deps-added.txt 2>&1
fi
python3 mkresults.py
