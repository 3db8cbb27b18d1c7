#!/usr/bin/env bash
# Regenerates the man pages in man/ from the clap definitions (examples/mangen.rs).
# tests/man_pages.rs fails when these files are stale; run this after changing src/cli/args.rs.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo run --quiet --example mangen -- man
