#!/usr/bin/env bash
# mailkeep benchmark, side by side with its peers on one throwaway Dovecot (issue 8).
#
#   scripts/bench.sh [N]                     # default N=20000; three runs each, median reported,
#                                            # table appended to BENCHMARKS.md
#   BENCH_MIX=small scripts/bench.sh 20000   # every message 2-20 KB
#   BENCH_EXTRA=1 scripts/bench.sh 5000      # also restore --jobs 1, and restore / mbsync push
#                                            # into a server with mail_fsync = never
#   scripts/bench.sh --smoke 500             # CI smoke test (same as BENCH_SMOKE=1): every
#                                            # scenario once, completeness checked, nothing written;
#                                            # uses the debug build (BENCH_PROFILE=release to change)
#                                            # and a server with mail_fsync = never
#   BENCH_MAILKEEP=path/to/mailkeep scripts/bench.sh 5000   # measure that binary, no build
#   scripts/bench.sh --memory [N]            # peak memory instead: scripts/bench-memory.sh
#
# It starts a throwaway Dovecot on 127.0.0.1 (scripts/lib/dovecot.sh), seeds one account with N
# messages of a realistic size mix (scripts/lib/genmail.py: most 2-20 KB, one in ten 100 KB-2 MB
# with a base64 attachment, one in 2,000 near 10 MB; six folders, two with non-ASCII names;
# assorted flags), installs the peers with apt-get when missing (isync, mpop, getmail6), then
# times, in rounds (each round runs every tool once, so load that comes and goes hits all alike):
#   IMAPS -> Maildir, cold:  mailkeep backup, mbsync (Sync Pull, every folder, SyncState *),
#                            the raw pipelined client over TLS and over plain IMAP (it reads and
#                            counts every message, writes nothing: the server's ceiling)
#   IMAPS -> Maildir, no-change rerun (right after that round's cold run): mailkeep, mbsync
#   POP3S -> Maildir (INBOX): mailkeep backup, mpop, getmail6, raw client over TLS and plain
#   Maildir -> IMAPS, into an empty account: mailkeep restore and mbsync Sync Push, both from
#                            mailkeep's IMAPS archive (mbsync from a fresh copy each round: it
#                            renames the files it assigns UIDs to)
# The peers' configurations: scripts/lib/peers.sh (mbsync with FSync on, its default; mpop with
# pipelining auto; getmail6 run with scripts/lib/getmail-waitfix, a fix of its child-wait race
# that otherwise stops it on a busy machine). Every run is reset first (fresh Maildir, state
# files removed, a new empty target account) and checked before its time counts: the Maildir
# (or, for a push, the target account's storage on the server) must hold exactly the seeded
# messages and octets per folder (scripts/lib/benchcheck.py; octets with LF line ends, not
# counting the X-TUID: header mbsync adds to every message it stores or uploads, nor the line
# breaks getmail6 adds when it re-folds long header lines); the raw client checks its own
# counts. Any incomplete run or failing tool fails the script. Missed speed targets are
# reported, never fatal.
#
# Reported per run: median wall seconds, MB/s and messages/s (of the seeded messages, MB = 10^6
# octets with LF line ends as stored), user+sys CPU seconds of the tool's whole process tree
# and its peak RSS (/usr/bin/time), and the ratio of the tool's wall time to mailkeep's in the
# same scenario (2.00 = mailkeep twice as fast).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = --memory ]; then shift; exec bash scripts/bench-memory.sh "$@"; fi
. scripts/lib/install-deps.sh
. scripts/lib/dovecot.sh
. scripts/lib/peers.sh

SMOKE=${BENCH_SMOKE:-}
if [ "${1:-}" = --smoke ]; then
    SMOKE=1
    shift
fi
N=${1:-20000}
MIX=${BENCH_MIX:-realistic}
EXTRA=${BENCH_EXTRA:-}
ROUNDS=3
[ -n "$SMOKE" ] && ROUNDS=1
started=$(date +%s)
load_start=$(cut -d' ' -f1-3 /proc/loadavg)

install_deps time
install_peers

# The smoke test checks completeness, not time: it uses the debug build CI already has
# (BENCH_PROFILE=release to override); the real benchmark always uses the release build.
# BENCH_MAILKEEP=PATH measures that binary instead (no build).
profile=release
[ -n "$SMOKE" ] && profile=${BENCH_PROFILE:-debug}
if [ -n "${BENCH_MAILKEEP:-}" ]; then
    mk=$(realpath "$BENCH_MAILKEEP")
    profile="given binary"
elif [ "$profile" = release ]; then
    cargo build --release --quiet
    mk=${CARGO_TARGET_DIR:-$PWD/target}/release/mailkeep
else
    cargo build --quiet
    mk=${CARGO_TARGET_DIR:-$PWD/target}/debug/mailkeep
fi
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
# The smoke test checks completeness, not time: spare it the server's fsyncs (the restore and
# the push are mostly Dovecot syncing each APPEND).
[ -z "$SMOKE" ] || dovecot_setting "mail_fsync = never"
PW=bench-pw
dovecot_user bench "$PW"
mixflag=()
[ "$MIX" = small ] && mixflag=(--small)
uid=$(id -u "$MAIL_UID")
gid=$(getent group "$MAIL_GID" | cut -d: -f3)
manifest=$work/manifest.json
read -r count bytes < <(python3 scripts/lib/genmail.py "$work/dovecot/mail/bench" "$N" "${mixflag[@]}" \
    --uid "$uid" --gid "$gid" --manifest "$manifest")
read -r inbox_count inbox_bytes < <(python3 -c 'import json,sys; m=json.load(open(sys.argv[1]))["INBOX"]; print(m["count"], m["bytes"])' "$manifest")
folders=$(python3 -c 'import json,sys; print(sum(1 for v in json.load(open(sys.argv[1])).values() if v["count"]))' "$manifest")
echo "==> seeded $count messages ($((bytes / 1000000)) MB) in $folders folders, $inbox_count in INBOX ($((inbox_bytes / 1000000)) MB)"
export BENCH_PW=$PW
export PYTHONDONTWRITEBYTECODE=1 # no __pycache__ in scripts/lib
common=(--tls-ca "$CA_PEM" --password-env BENCH_PW --quiet)
imaps=imaps://bench@127.0.0.1:$IMAPS_PORT
pop3s=pop3s://bench@127.0.0.1:$POP3S_PORT

# timed NAME COMMAND...: runs COMMAND under /usr/bin/time (wall, user, sys, peak RSS of the
# process tree) into $work/t; any failure ends the benchmark with the command's output.
timed() {
    local name=$1
    shift
    if ! /usr/bin/time -f "%e %U %S %M" -o "$work/t" "$@" >"$work/out" 2>&1; then
        echo "error: $name failed:" >&2
        tail -n 20 "$work/out" >&2
        exit 1
    fi
}
# getmail_run: getmail6 POP3S -> Maildir from scratch. getmail 6.18 loses the exit of the child
# that delivers a message every few hundred messages on a busy machine (it installs its SIGCHLD
# handler after fork()) and then stops with "waiting child pid N timed out"; it runs with
# scripts/lib/getmail-waitfix on PYTHONPATH, which makes it wait for that child with waitpid().
getmail_run() {
    rm -rf "$work/getmail" "$work/getmail-state"
    mkdir -p "$work/getmail"/{cur,new,tmp} "$work/getmail-state"
    [ -z "$getmail_user" ] || chown -R "$getmail_user" "$work/getmail"
    timed getmail6 env PYTHONPATH="$PWD/scripts/lib/getmail-waitfix" \
        getmail --getmaildir "$work/getmail-state" --rcfile "$work/getmailrc" -q
}
# record NAME: the last timed run counts (call it after the completeness check passed).
record() {
    tail -n 1 "$work/t" >>"$work/$1.times"
    [ -z "$SMOKE" ] || printf '    %-22s %s s\n' "$1" "$(cut -d' ' -f1 "$work/t" | tail -n 1)"
}
# check NAME DIR [--only INBOX]: DIR holds exactly the seeded messages and octets per folder.
check() {
    local name=$1 dir=$2
    shift 2
    python3 scripts/lib/benchcheck.py "$manifest" "$dir" --label "$name" "$@" >/dev/null || exit 1
}

# new_account PREFIX ROUND: prints the name of a new, empty account.
new_account() {
    local user=$1-$2
    dovecot_user "$user" "$PW"
    echo "$user"
}

rm_account() {
    rm -rf "$work/dovecot/mail/$1" "$work/dovecot/users/$1"
}

push_round() { # ROUND TAG: mailkeep restore and mbsync push of mailkeep's IMAPS archive
    local i=$1 tag=$2 user
    user=$(new_account "restore$tag" "$i")
    rm -rf "$work/restore-state"
    timed "mailkeep restore" env XDG_STATE_HOME="$work/restore-state" \
        "$mk" restore "maildir:$work/mk-imap" "imaps://$user@127.0.0.1:$IMAPS_PORT" "${common[@]}"
    check "mailkeep restore (server side)" "$work/dovecot/mail/$user"
    record "mk-restore$tag"
    rm_account "$user"
    if [ -n "$EXTRA" ] && [ -z "$tag" ]; then
        user=$(new_account restore-j1 "$i")
        rm -rf "$work/restore-state"
        timed "mailkeep restore --jobs 1" env XDG_STATE_HOME="$work/restore-state" \
            "$mk" restore "maildir:$work/mk-imap" "imaps://$user@127.0.0.1:$IMAPS_PORT" --jobs 1 "${common[@]}"
        check "mailkeep restore --jobs 1 (server side)" "$work/dovecot/mail/$user"
        record mk-restore-j1
        rm_account "$user"
    fi
    user=$(new_account "push$tag" "$i")
    rm -rf "$work/push-src" "$work/push-state"
    cp -a "$work/mk-imap" "$work/push-src"
    mkdir -p "$work/push-state"
    mbsync_rc "$work/mbsyncrc-push" "$user" "$PW" "$IMAPS_PORT" "$work/push-src" Push "$work/push-state"
    timed "mbsync push" mbsync -c "$work/mbsyncrc-push" -q bench
    check "mbsync push (server side)" "$work/dovecot/mail/$user" --strip-header X-TUID
    record "mbsync-push$tag"
    rm_account "$user"
}

mbsync_rc "$work/mbsyncrc" bench "$PW" "$IMAPS_PORT" "$work/mb-imap" Pull
mpop_rc "$work/mpoprc" bench "$PW" "$POP3S_PORT" "$work/mpop" "$work/mpop-uidls"
getmail_user=
[ "$(id -u)" = 0 ] && getmail_user=nobody
getmail_rc "$work/getmailrc" bench "$PW" "$POP3S_PORT" "$work/getmail" $getmail_user

for i in $(seq "$ROUNDS"); do
    echo "==> round $i of $ROUNDS"
    # IMAPS -> Maildir, cold, then the no-change rerun on the state the cold run left.
    rm -rf "$work/mk-imap" "$work/mk-state"
    timed "mailkeep IMAP cold" env XDG_STATE_HOME="$work/mk-state" "$mk" backup "$imaps" "maildir:$work/mk-imap" "${common[@]}"
    check "mailkeep IMAP cold" "$work/mk-imap"
    record mk-imap-cold
    timed "mailkeep IMAP rerun" env XDG_STATE_HOME="$work/mk-state" "$mk" backup "$imaps" "maildir:$work/mk-imap" "${common[@]}"
    check "mailkeep IMAP rerun" "$work/mk-imap"
    record mk-imap-rerun

    rm -rf "$work/mb-imap"
    timed "mbsync IMAP cold" mbsync -c "$work/mbsyncrc" -q bench
    check "mbsync IMAP cold" "$work/mb-imap" --strip-header X-TUID
    record mbsync-imap-cold
    timed "mbsync IMAP rerun" mbsync -c "$work/mbsyncrc" -q bench
    check "mbsync IMAP rerun" "$work/mb-imap" --strip-header X-TUID
    record mbsync-imap-rerun

    timed "raw IMAPS client" python3 scripts/lib/rawclient.py imap "$IMAPS_PORT" --tls --ca "$CA_PEM" --manifest "$manifest"
    record raw-imaps
    timed "raw IMAP client (plain)" python3 scripts/lib/rawclient.py imap "$IMAP_PORT" --manifest "$manifest"
    record raw-imap

    # POP3S -> Maildir (the server's POP3 serves INBOX).
    rm -rf "$work/mk-pop" "$work/mk-state"
    timed "mailkeep POP3" env XDG_STATE_HOME="$work/mk-state" "$mk" backup "$pop3s" "maildir:$work/mk-pop" "${common[@]}"
    check "mailkeep POP3" "$work/mk-pop" --only INBOX
    record mk-pop3

    rm -rf "$work/mpop" "$work/mpop-uidls"
    mkdir -p "$work/mpop"/{cur,new,tmp}
    timed "mpop" mpop -C "$work/mpoprc" -q bench
    check "mpop" "$work/mpop" --only INBOX
    record mpop

    getmail_run
    check "getmail6" "$work/getmail" --only INBOX --unfold-headers
    record getmail

    timed "raw POP3S client" python3 scripts/lib/rawclient.py pop3 "$POP3S_PORT" --tls --ca "$CA_PEM" --manifest "$manifest"
    record raw-pop3s
    timed "raw POP3 client (plain)" python3 scripts/lib/rawclient.py pop3 "$POP3_PORT" --manifest "$manifest"
    record raw-pop3
done
# Maildir -> IMAPS: every round restores / pushes the last round's complete mailkeep archive.
for i in $(seq "$ROUNDS"); do
    push_round "$i" ""
done
if [ -n "$EXTRA" ]; then
    dovecot_setting "mail_fsync = never"
    for i in $(seq "$ROUNDS"); do
        push_round "$i" -nofsync
    done
fi
load_end=$(cut -d' ' -f1-3 /proc/loadavg)

# The median of the runs of a scenario and its row of the table.
median() { sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
wall_of() { cut -d' ' -f1 "$work/$1.times" | median; }
row() { # NAME SCENARIO TOOL MESSAGES BYTES MAILKEEP_NAME
    local f=$work/$1.times wall cpu rss base
    [ -f "$f" ] || return 0
    wall=$(wall_of "$1")
    cpu=$(awk '{ print $2 + $3 }' "$f" | median)
    rss=$(cut -d' ' -f4 "$f" | median)
    base=$(wall_of "$6")
    awk -v s="$2" -v t="$3" -v w="$wall" -v c="$cpu" -v r="$rss" -v m="$4" -v b="$5" -v k="$base" 'BEGIN {
        mbps = (w > 0 && b > 0) ? sprintf("%.1f", b / 1e6 / w) : "-";
        mps = (w > 0 && m > 0) ? sprintf("%.0f", m / w) : "-";
        ratio = (k > 0) ? sprintf("%.2f", w / k) : "-";
        printf "| %s | %s | %.2f | %s | %s | %.2f | %.0f | %s |\n", s, t, w, mbps, mps, c, r / 1024, ratio }'
}
cold="IMAPS -> Maildir, cold"
rerun="IMAPS -> Maildir, no-change rerun"
pop="POP3S -> Maildir (INBOX, $inbox_count messages)"
push="Maildir -> IMAPS, empty account"
table=$(
    echo "| scenario | tool | wall s | MB/s | messages/s | user+sys CPU s | peak RSS MB | tool wall / mailkeep wall |"
    echo "| --- | --- | --- | --- | --- | --- | --- | --- |"
    row mk-imap-cold "$cold" "mailkeep backup" "$count" "$bytes" mk-imap-cold
    row mbsync-imap-cold "$cold" "mbsync (isync)" "$count" "$bytes" mk-imap-cold
    row raw-imaps "$cold" "raw pipelined client, TLS (no disk)" "$count" "$bytes" mk-imap-cold
    row raw-imap "$cold" "raw pipelined client, plain IMAP (no disk)" "$count" "$bytes" mk-imap-cold
    row mk-imap-rerun "$rerun" "mailkeep backup" 0 0 mk-imap-rerun
    row mbsync-imap-rerun "$rerun" "mbsync (isync)" 0 0 mk-imap-rerun
    row mk-pop3 "$pop" "mailkeep backup" "$inbox_count" "$inbox_bytes" mk-pop3
    row mpop "$pop" "mpop" "$inbox_count" "$inbox_bytes" mk-pop3
    row getmail "$pop" "getmail6" "$inbox_count" "$inbox_bytes" mk-pop3
    row raw-pop3s "$pop" "raw pipelined client, TLS (no disk)" "$inbox_count" "$inbox_bytes" mk-pop3
    row raw-pop3 "$pop" "raw pipelined client, plain POP3 (no disk)" "$inbox_count" "$inbox_bytes" mk-pop3
    row mk-restore "$push" "mailkeep restore" "$count" "$bytes" mk-restore
    row mbsync-push "$push" "mbsync push (Sync Push)" "$count" "$bytes" mk-restore
    row mk-restore-j1 "$push" "mailkeep restore --jobs 1" "$count" "$bytes" mk-restore
    row mk-restore-nofsync "$push, server mail_fsync = never" "mailkeep restore" "$count" "$bytes" mk-restore-nofsync
    row mbsync-push-nofsync "$push, server mail_fsync = never" "mbsync push (Sync Push)" "$count" "$bytes" mk-restore-nofsync
)

# The targets of issue 8, from the medians above.
target() { # TEXT OK(1/0) DETAIL
    local verdict=missed
    [ "$2" = 1 ] && verdict=met
    echo "- $1: $3: **$verdict**"
}
ge() { awk -v a="$1" -v b="$2" 'BEGIN { print (a >= b) ? 1 : 0 }'; }
div() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b > 0) ? a / b : 0 }'; }
mk_cold=$(wall_of mk-imap-cold)
mb_cold=$(wall_of mbsync-imap-cold)
raw_cold=$(wall_of raw-imaps)
mk_rerun=$(wall_of mk-imap-rerun)
mb_rerun=$(wall_of mbsync-imap-rerun)
mk_pop=$(wall_of mk-pop3)
mpop_pop=$(wall_of mpop)
mk_push=$(wall_of mk-restore)
mb_push=$(wall_of mbsync-push)
targets=$(
    r=$(div "$mb_cold" "$mk_cold")
    target "IMAP cold at least 1.5x faster than mbsync" "$(ge "$r" 1.5)" "mbsync $mb_cold s / mailkeep $mk_cold s = ${r}x"
    r=$(div "$mk_cold" "$raw_cold")
    target "IMAP cold within 1.5x of the raw TLS client" "$(ge 1.5 "$r")" "mailkeep $mk_cold s / raw $raw_cold s = ${r}x"
    r=$(div "$mpop_pop" "$mk_pop")
    target "POP3 at least 1.5x faster than mpop" "$(ge "$r" 1.5)" "mpop $mpop_pop s / mailkeep $mk_pop s = ${r}x"
    target "restore at least as fast as mbsync push" "$(ge "$mb_push" "$mk_push")" "mailkeep $mk_push s, mbsync $mb_push s"
    target "no-change rerun under 1 s ($count messages; the issue's figure is for 20,000)" "$(ge 0.999 "$mk_rerun")" "mailkeep $mk_rerun s"
    target "no-change rerun no slower than mbsync's" "$(ge "$mb_rerun" "$mk_rerun")" "mailkeep $mk_rerun s, mbsync $mb_rerun s"
)
elapsed=$(($(date +%s) - started))
echo
echo "$table"
echo
echo "Targets (issue 8, medians of $ROUNDS):"
echo "$targets"
echo "load average (1, 5, 15 min) at the start: $load_start; at the end: $load_end; took ${elapsed} s"
if [ -n "$SMOKE" ]; then
    echo "==> smoke run complete: every tool stored every message (timings above are not meaningful)"
    exit 0
fi

dovecot_version=$("${DOVECOT_BIN:-/usr/sbin/dovecot}" --version | cut -d' ' -f1)
versions="$("$mk" --version), $(mbsync --version), $(mpop --version | head -n 1 | sed 's/ version//'), $(getmail --version), $(python3 --version) (raw client), $(openssl version | cut -d' ' -f1-2)"
cmd="scripts/bench.sh $N"
[ "$MIX" = realistic ] || cmd="BENCH_MIX=$MIX $cmd"
[ -z "$EXTRA" ] || cmd="BENCH_EXTRA=1 $cmd"
[ -z "${BENCH_MAILKEEP:-}" ] || cmd="BENCH_MAILKEEP=$BENCH_MAILKEEP $cmd"
{
    echo
    echo "## $(date -u '+%Y-%m-%d %H:%M UTC'): $count messages, $((bytes / 1000000)) MB ($MIX mix), mailkeep and peers"
    echo
    echo "Command: \`$cmd\`. Machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo) RAM,"
    echo "$(uname -sr), Dovecot $dovecot_version on 127.0.0.1. Tools: $versions."
    echo "Load average (1, 5, 15 min) at the start: $load_start; at the end: $load_end. Median of $ROUNDS"
    echo "rounds; the benchmark took $elapsed s. $folders folders, INBOX $inbox_count messages ($((inbox_bytes / 1000000)) MB)."
    echo
    echo "$table"
    echo
    echo "Targets (issue 8):"
    echo
    echo "$targets"
} >>BENCHMARKS.md
echo "==> appended to BENCHMARKS.md"
