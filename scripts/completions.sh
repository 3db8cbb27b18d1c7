#!/usr/bin/env bash
# Regenerates the shell completions in completions/ from the clap definitions.
# tests/completions.rs fails when these files are stale; run this after changing src/cli/args.rs.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --quiet
bin=target/debug/mailkeep
"$bin" completions bash >completions/mailkeep.bash
"$bin" completions zsh >completions/_mailkeep
"$bin" completions fish >completions/mailkeep.fish
"$bin" completions powershell >completions/_mailkeep.ps1
"$bin" completions elvish >completions/mailkeep.elv
echo "completions/ regenerated"
