#!/usr/bin/env bash
# mailkeep benchmark: a throwaway Dovecot on 127.0.0.1 seeded with N generated messages of a
# realistic size mix (scripts/lib/genmail.py), then timed runs, three each, median reported:
#   - IMAPS -> Maildir, cold (empty archive) and no-change rerun
#   - POP3S -> Maildir, cold (the INBOX share of the messages)
#   - restore of the IMAPS backup (Maildir) into an empty second account over IMAPS, with
#     --jobs 1 and with the default (--jobs 3); then the same with Dovecot's `mail_fsync =
#     never`, which shows what is mailkeep's time and what is the server's fsyncs (Dovecot
#     syncs two or three times per APPEND)
# Each run is checked for completeness (the archive, or the restored account, holds every
# message) before its time counts. Writes a table (wall seconds, MB/s, messages/s, user+sys CPU, peak RSS) to
# BENCHMARKS.md under a heading with the date, the machine and the command.
#
#   scripts/bench.sh [N]          # default N=20000
#   BENCH_MIX=small scripts/bench.sh 20000   # every message 2-20 KB
#   BENCH_SMOKE=1 scripts/bench.sh 500       # CI smoke test: checks completeness, writes nothing
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/install-deps.sh
. scripts/lib/dovecot.sh
install_deps time

N=${1:-20000}
MIX=${BENCH_MIX:-realistic}
SMOKE=${BENCH_SMOKE:-}
cargo build --release --quiet
mk=$PWD/target/release/mailkeep
work=$(mktemp -d /tmp/mailkeep-bench.XXXXXX)
chmod 755 "$work" # Dovecot's unprivileged processes must reach their files
cleanup() {
    local rc=$?
    if [ "$rc" != 0 ] && [ -f "$work/dovecot/dovecot.log" ]; then
        echo "--- last lines of the Dovecot log:" >&2
        tail -n 15 "$work/dovecot/dovecot.log" >&2
    fi
    dovecot_stop
    rm -rf "$work"
}
trap cleanup EXIT
dovecot_start "$work/dovecot"
dovecot_user bench bench-pw
mixflag=(); [ "$MIX" = small ] && mixflag=(--small)
uid=$(id -u "$MAIL_UID"); gid=$(getent group "$MAIL_GID" | cut -d: -f3)
read -r count bytes < <(python3 scripts/lib/genmail.py "$work/dovecot/mail/bench" "$N" "${mixflag[@]}" --uid "$uid" --gid "$gid")
inbox_count=$(ls "$work/dovecot/mail/bench/cur" | wc -l)
inbox_bytes=$(du -sb "$work/dovecot/mail/bench/cur" | cut -f1)
echo "==> seeded $count messages ($((bytes / 1000000)) MB), $inbox_count in INBOX"
export BENCH_PW=bench-pw
common=(--tls-ca "$CA_PEM" --password-env BENCH_PW --quiet)

# run NAME EXPECTED_MESSAGES ARCHIVE_DIR -- command...: runs once under /usr/bin/time, checks
# the archive's message count, appends "wall user sys rss_kb" to $work/NAME.times.
run() {
    local name=$1 expect=$2 dir=$3; shift 4
    /usr/bin/time -f "%e %U %S %M" -o "$work/t" "$@"
    local got
    got=$(find "$dir" -path '*/cur/*' -type f | wc -l)
    if [ "$got" != "$expect" ]; then
        echo "error: $name: the archive holds $got messages, expected $expect" >&2
        exit 1
    fi
    cat "$work/t" >>"$work/$name.times"
}

for i in 1 2 3; do
    rm -rf "$work/imap"
    run imap-cold "$count" "$work/imap" -- "$mk" backup "imaps://bench@127.0.0.1:$IMAPS_PORT" "maildir:$work/imap" "${common[@]}"
    run imap-rerun "$count" "$work/imap" -- "$mk" backup "imaps://bench@127.0.0.1:$IMAPS_PORT" "maildir:$work/imap" "${common[@]}"
    rm -rf "$work/pop"
    run pop3-cold "$inbox_count" "$work/pop" -- "$mk" backup "pop3s://bench@127.0.0.1:$POP3S_PORT" "maildir:$work/pop" "${common[@]}"
done

# restore_run NAME JOBS ROUND: restores the IMAPS backup into a new, empty account with its
# own restore state, under /usr/bin/time; checks the account holds every message (APPENDed
# messages land in cur/ or new/), then throws the account's mail away.
restore_run() {
    local name=$1 jobs=$2 user=restore-$1-$3
    dovecot_user "$user" bench-pw
    rm -rf "$work/state"
    /usr/bin/time -f "%e %U %S %M" -o "$work/t" env XDG_STATE_HOME="$work/state" \
        "$mk" restore "maildir:$work/imap" "imaps://$user@127.0.0.1:$IMAPS_PORT" --jobs "$jobs" "${common[@]}"
    local got
    got=$(find "$work/dovecot/mail/$user" \( -path '*/cur/*' -o -path '*/new/*' \) -type f | wc -l)
    if [ "$got" != "$count" ]; then
        echo "error: $name: the restored account holds $got messages, expected $count" >&2
        exit 1
    fi
    cat "$work/t" >>"$work/$name.times"
    rm -rf "$work/dovecot/mail/$user"
}
archive_bytes=$(find "$work/imap" -path '*/cur/*' -type f -printf '%s\n' | awk '{s += $1} END {print s + 0}')
for i in 1 2 3; do
    restore_run restore-j1 1 "$i"
    restore_run restore-j3 3 "$i"
done
dovecot_setting "mail_fsync = never"
for i in 1 2 3; do
    restore_run restore-nofsync-j1 1 "$i"
    restore_run restore-nofsync-j3 3 "$i"
done

median() { sort -n | sed -n 2p; }
row() { # name label messages bytes
    local f=$work/$1.times
    local wall cpu rss
    wall=$(cut -d' ' -f1 "$f" | median)
    cpu=$(awk '{print $2 + $3}' "$f" | median)
    rss=$(cut -d' ' -f4 "$f" | median)
    awk -v l="$2" -v w="$wall" -v c="$cpu" -v r="$rss" -v m="$3" -v b="$4" 'BEGIN {
        mbps = (w > 0 && b > 0) ? sprintf("%.1f", b / 1e6 / w) : "-";
        mps = (w > 0 && m > 0) ? sprintf("%.0f", m / w) : "-";
        printf "| %s | %.2f | %s | %s | %.2f | %.0f |\n", l, w, mbps, mps, c, r / 1024 }'
}
table=$(
    echo "| run | wall s (median of 3) | MB/s | messages/s | user+sys CPU s | peak RSS MB |"
    echo "| --- | --- | --- | --- | --- | --- |"
    row imap-cold "mailkeep IMAPS -> Maildir, cold" "$count" "$bytes"
    row imap-rerun "mailkeep IMAPS -> Maildir, no-change rerun" 0 0
    row pop3-cold "mailkeep POP3S -> Maildir, cold (INBOX, $inbox_count messages)" "$inbox_count" "$inbox_bytes"
    row restore-j1 "mailkeep restore Maildir -> IMAPS, empty account, --jobs 1" "$count" "$archive_bytes"
    row restore-j3 "mailkeep restore Maildir -> IMAPS, empty account, --jobs 3 (default)" "$count" "$archive_bytes"
    row restore-nofsync-j1 "same, --jobs 1, server with mail_fsync = never" "$count" "$archive_bytes"
    row restore-nofsync-j3 "same, --jobs 3, server with mail_fsync = never" "$count" "$archive_bytes"
)
echo "$table"
if [ -n "$SMOKE" ]; then
    echo "==> smoke run complete: every run stored every message"
    exit 0
fi
{
    echo
    echo "## $(date -u +%Y-%m-%d): $count messages, $((bytes / 1000000)) MB ($MIX mix), $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo)"
    echo
    echo "Command: \`BENCH_MIX=$MIX scripts/bench.sh $N\` ($(uname -sr), $("${DOVECOT_BIN:-/usr/sbin/dovecot}" --version | cut -d' ' -f1) Dovecot on 127.0.0.1, TLS)"
    echo
    echo "$table"
} >>BENCHMARKS.md
echo "==> appended to BENCHMARKS.md"
