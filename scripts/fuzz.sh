#!/usr/bin/env bash
# Coverage-guided fuzzing of mailkeep's parsers on STABLE Rust (no nightly, no cargo-fuzz):
# libFuzzer from the libfuzzer-sys crate (built from C++ with the system g++) plus the
# SanitizerCoverage instrumentation rustc has on stable (`-Cpasses=sancov-module` and LLVM
# options, what `cargo fuzz --sanitizer none` passes), with debug assertions and overflow checks.
#
# Usage: scripts/fuzz.sh [--ci] [SECONDS_PER_TARGET] [TARGET...]
#   SECONDS_PER_TARGET  wall-clock time per target (default 300; 15 with --ci or FUZZ_CI=1)
#   TARGET              some of: pop3 mbox maildir mutf7 endpoint runconf imap date (default: all)
# Environment: FUZZ_JOBS (targets run at once, default 1; 2 with --ci), FUZZ_RSS_MB (default 2048),
#   CARGO_TARGET_DIR (default fuzz/target).
#
# Each target runs from its seeds (fuzz/seeds/<target>/, from real mail: shared/corpus and the
# shared cases; see fuzz/make_seeds.py) plus the growing working corpus fuzz/corpus/<target>/
# (not committed). A crashing input is written to fuzz/artifacts/<target>/. Prints, per target:
# CPU seconds, executions, coverage (cov = edges, ft = features), corpus size, result. Exits 1
# when a target crashed (or timed out, or ran out of memory), 2 on a build failure.
#
# Reproduce a crash: fuzz/target/<host>/release/<target> fuzz/artifacts/<target>/crash-...
# and add it to tests/fuzz_regressions.rs.
set -euo pipefail
cd "$(dirname "$0")/.."

all_targets=(pop3 mbox maildir mutf7 endpoint runconf imap date)
ci=${FUZZ_CI:-0}
secs=""
targets=()
for a in "$@"; do
    case "$a" in
        --ci) ci=1 ;;
        -h|--help) sed -n '2,21p' "$0"; exit 0 ;;
        ''|*[!0-9]*) targets+=("$a") ;;
        *) secs=$a ;;
    esac
done
[ ${#targets[@]} -gt 0 ] || targets=("${all_targets[@]}")
for t in "${targets[@]}"; do
    case " ${all_targets[*]} " in *" $t "*) ;; *) echo "fuzz.sh: unknown target $t (one of: ${all_targets[*]})" >&2; exit 2 ;; esac
done
if [ -z "$secs" ]; then
    if [ "$ci" = 1 ]; then secs=15; else secs=300; fi
fi
if [ "$ci" = 1 ]; then jobs=${FUZZ_JOBS:-2}; else jobs=${FUZZ_JOBS:-1}; fi
rss=${FUZZ_RSS_MB:-2048}

# libFuzzer is C++: libfuzzer-sys compiles it with the system C++ compiler.
if ! command -v g++ >/dev/null 2>&1 && ! command -v c++ >/dev/null 2>&1; then
    echo "==> installing g++ (libFuzzer is built from C++)"
    sudo=""
    [ "$(id -u)" = 0 ] || sudo=sudo
    $sudo apt-get update -qq && $sudo apt-get install -y -qq g++ >/dev/null
fi
command -v cargo >/dev/null 2>&1 || { echo "fuzz.sh: cargo not found" >&2; exit 2; }

host=$(rustc -vV | sed -n 's/^host: //p')
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/fuzz/target}
# --target keeps these flags off build scripts and proc macros (as cargo-fuzz does).
export RUSTFLAGS="--cfg fuzzing -Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares -Cdebug-assertions -Coverflow-checks ${FUZZ_RUSTFLAGS:-}"
echo "==> building fuzz targets ($(rustc --version), $host, SanitizerCoverage)"
logdir=$(mktemp -d)
trap 'rm -rf "$logdir"' EXIT
TIMEFORMAT='%R %U %S'
# fuzz/Cargo.lock pins the versions; no --locked, so a dependency added to the main crate
# only adds its entries.
# --ci builds with the lighter `fuzzci` profile (fuzz/Cargo.toml): the build is most of a
# short run's time.
profile=release
[ "$ci" = 1 ] && profile=fuzzci
{ time cargo build --profile "$profile" --manifest-path fuzz/Cargo.toml \
    --target "$host" --bins 2>&3 ; } 3>&2 2>"$logdir/build.time" || { echo "fuzz.sh: build failed" >&2; exit 2; }
read -r b_real b_user b_sys <"$logdir/build.time"
echo "==> built in ${b_real}s (${b_user}s user + ${b_sys}s sys CPU)"
bindir=$CARGO_TARGET_DIR/$host/$profile

run_one() {
    local t=$1
    mkdir -p "fuzz/corpus/$t" "fuzz/artifacts/$t"
    local rc=0
    local tf="$logdir/$t.time"
    { time "$bindir/$t" "fuzz/corpus/$t" "fuzz/seeds/$t" \
        -max_total_time="$secs" -rss_limit_mb="$rss" -timeout=10 -max_len=8192 \
        -error_exitcode=77 -timeout_exitcode=78 -print_final_stats=1 \
        -artifact_prefix="fuzz/artifacts/$t/" >"$logdir/$t.log" 2>&1 ; } 2>"$tf" || rc=$?
    echo "$rc" >"$logdir/$t.rc"
}

echo "==> fuzzing ${targets[*]}: ${secs}s each, $jobs at a time"
running=0
for t in "${targets[@]}"; do
    run_one "$t" &
    running=$((running + 1))
    if [ "$running" -ge "$jobs" ]; then
        wait -n || true
        running=$((running - 1))
    fi
done
wait || true

failed=0
printf '%-9s %8s %12s %7s %7s %7s  %s\n' target cpu_s execs cov ft corpus result
for t in "${targets[@]}"; do
    log="$logdir/$t.log"
    rc=$(cat "$logdir/$t.rc" 2>/dev/null || echo 1)
    read -r _ user sys <"$logdir/$t.time" || { user=0; sys=0; }
    cpu=$(awk -v u="$user" -v s="$sys" 'BEGIN { printf "%.1f", u + s }')
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n1)
    last=$(grep -E '^#[0-9]+' "$log" | grep -E 'cov: ' | tail -n1 || true)
    cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
    ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
    corp=$(sed -n 's/.* corp: \([0-9]*\).*/\1/p' <<<"$last")
    case "$rc" in
        0) result=ok ;;
        78) result="TIMEOUT" ;;
        *) result="CRASH (exit $rc)" ;;
    esac
    if [ "$rc" != 0 ]; then
        failed=1
        art=$(ls -t "fuzz/artifacts/$t"/ 2>/dev/null | head -n1)
        [ -n "$art" ] && result="$result: fuzz/artifacts/$t/$art"
    fi
    printf '%-9s %8s %12s %7s %7s %7s  %s\n' "$t" "$cpu" "${execs:-?}" "${cov:-?}" "${ft:-?}" "${corp:-?}" "$result"
    if [ "$rc" != 0 ]; then
        echo "---- $t: end of the libFuzzer log ----"
        grep -v -E '^#[0-9]+' "$log" | tail -n 40
        echo "----"
    fi
done
if [ "$failed" != 0 ]; then
    echo "==> FUZZING FOUND A PROBLEM: reproduce with $bindir/<target> <artifact>" >&2
    exit 1
fi
echo "==> fuzzing: ${#targets[@]} targets, 0 crashes"
