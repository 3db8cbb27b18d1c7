#!/usr/bin/env bash
# Runs the whole test suite: installs what the tests need when it is missing (Debian/Ubuntu:
# Dovecot IMAP + POP3 for tests/support/dovecot.rs, the openssl CLI, python3; Cyrus IMAP and
# Courier-IMAP unpacked into /opt/mailkeep-test for tests/support/real_server.rs), then builds and
# tests every target, then the doc tests, then a short fuzzing pass (scripts/fuzz.sh --ci) and
# the benchmark's smoke test (scripts/bench.sh --smoke 500: installs isync, mpop, getmail6).
# Exits non-zero on any failure.
#
# The tests start their own Dovecot instances (own config, ports, storage); the system Dovecot
# service is never used, and it is not started by the installation here.
set -euo pipefail
cd "$(dirname "$0")/.."

. scripts/lib/install-deps.sh
install_deps
# Cyrus IMAP and Courier-IMAP for tests/server_cyrus.rs and tests/server_courier.rs, unpacked
# into /opt/mailkeep-test (they conflict with Dovecot as packages; see install_real_servers).
install_real_servers

dovecot_bin=/usr/sbin/dovecot
[ -x "$dovecot_bin" ] || dovecot_bin=$(command -v dovecot)
echo "==> $("$dovecot_bin" --version | head -n1) (Dovecot), $(openssl version)"
echo "==> $(head -n3 "$MAILKEEP_SERVERS_ROOT/cyrus/.mailkeep-stamp" | tr '\n' ' ')"
echo "==> $(head -n3 "$MAILKEEP_SERVERS_ROOT/courier/.mailkeep-stamp" | tr '\n' ' ')"

command -v cargo >/dev/null 2>&1 || { echo "error: cargo not found (install Rust: https://rustup.rs)" >&2; exit 1; }
cargo --version

echo "==> cargo build --all-targets"
cargo build --all-targets

log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
echo "==> cargo test --all-targets --no-fail-fast"
cargo test --all-targets --no-fail-fast 2>&1 | tee "$log" || status=$?
echo "==> cargo test --doc"
doc_status=0
cargo test --doc 2>&1 | tee -a "$log" || doc_status=$?
[ "$status" != 0 ] || status=$doc_status

echo "==> fuzzing: scripts/fuzz.sh --ci (15 s per parser; every crash input ever found is a test)"
fuzz_status=0
bash scripts/fuzz.sh --ci || fuzz_status=$?
[ "$status" != 0 ] || status=$fuzz_status

echo "==> benchmark smoke test: scripts/bench.sh --smoke 500 (every tool gets every message; timings not checked)"
bench_status=0
bash scripts/bench.sh --smoke 500 || bench_status=$?
[ "$status" != 0 ] || status=$bench_status

echo "==> summary"
grep -E '^test result:' "$log" | awk '
    { for (i = 1; i <= NF; i++) { if ($(i) ~ /^(passed|failed|ignored);?$/) { k = $(i); sub(/;$/, "", k); n[k] += $(i - 1) } } runs++ }
    END { printf "%d test binaries: %d passed, %d failed, %d ignored\n", runs, n["passed"], n["failed"], n["ignored"] }'
sed -n 's/^---- \(.*\) stdout ----$/FAILED: \1/p' "$log"
if [ "$status" != 0 ]; then
    echo "==> FAILED (status $status)" >&2
fi
exit "$status"
