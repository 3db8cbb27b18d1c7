#!/bin/sh
# Clean builds with --timings, one job: per-crate compile time of the parser crates.
export CARGO_BUILD_JOBS=1
cd "$(dirname "$0")"
NEW="imap-codec imap-types bounded-static bounded-static-derive base64 abnf-core nom minimal-lexical"
for prof in release dev; do
  for p in codec-only proto-only; do
    rm -rf $p/target; (cd $p && cargo build -q --profile $prof --timings 2>/dev/null)
    echo "[$prof, load $(cut -d' ' -f1-3 /proc/loadavg)]"; python3 timings.py $p $NEW imap-proto
  done
done
