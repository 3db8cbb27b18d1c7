#!/usr/bin/env bash
# mailkeep peak memory (issue 8): "messages stream from socket to file; peak RSS stays under
# 64 MB plus the largest single message for any mailbox size (measure with a 50,000-message
# account and with one 40 MB message)".
#
#   scripts/bench-memory.sh [N]              # default N=50000; table appended to BENCHMARKS.md
#   scripts/bench.sh --memory [N]            # the same
#   BENCH_MEMORY_NOWRITE=1 scripts/bench-memory.sh 2000    # table on stdout only
#   BENCH_MAILKEEP=path/to/mailkeep scripts/bench-memory.sh # measure that binary, no build
#
# It starts a throwaway Dovecot on 127.0.0.1 (scripts/lib/dovecot.sh, with mail_fsync = never:
# memory is measured here, not time) and seeds two accounts straight into its Maildirs:
#   many  N messages of 2-20 KB in six folders (scripts/lib/genmail.py --small, the seed
#         scripts/bench.sh uses with BENCH_MIX=small)
#   big   one message in INBOX of 40,000,000 octets or just above (LF line ends as stored): a
#         short text part and a base64 attachment of random bytes (built below, deterministic)
# and runs the release build of mailkeep once per scenario under /usr/bin/time (peak RSS of the
# process, KB = 1024 bytes):
#   many: backup IMAPS -> Maildir, cold; the no-change rerun; backup POP3S -> Maildir (INBOX);
#         restore of the IMAPS Maildir archive into a new empty account; backup IMAPS -> mbox
#   big:  backup IMAPS -> Maildir; backup POP3S -> Maildir; restore into a new empty account
# Each run is checked complete before its figure counts: a Maildir (or, for a restore, the
# target account's storage on the server) must hold exactly the seeded messages and octets per
# folder (scripts/lib/benchcheck.py); an mbox archive is read back with an mboxrd reader below
# (entries split at `From ` lines, one `>` taken off `^>+From ` lines, the entry's closing
# empty line not counted) and compared the same way. An incomplete run or a failing command
# fails the script (non-zero exit); a peak RSS over the limit is reported as missed, exit 0.
#
# Units: MB in the table = 2^20 bytes (MiB), as /usr/bin/time's KB are KiB. The largest message
# is counted as served (CRLF line ends, its IMAP RFC822.SIZE): the bytes a client that held the
# whole message in memory would hold. The limit of a scenario is 64 MB plus the largest message
# of the messages it moves (for POP3, INBOX's largest).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/install-deps.sh
. scripts/lib/dovecot.sh

N=${1:-50000}
BIG=40000000
started=$(date +%s)
load_start=$(cut -d' ' -f1-3 /proc/loadavg)

install_deps time

if [ -n "${BENCH_MAILKEEP:-}" ]; then
    mk=$(realpath "$BENCH_MAILKEEP")
else
    cargo build --release --quiet
    mk=${CARGO_TARGET_DIR:-$PWD/target}/release/mailkeep
fi
work=$(mktemp -d /tmp/mailkeep-bench-memory.XXXXXX)
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
dovecot_setting "mail_fsync = never"
PW=bench-pw
dovecot_user many "$PW"
dovecot_user big "$PW"
uid=$(id -u "$MAIL_UID")
gid=$(getent group "$MAIL_GID" | cut -d: -f3)
export PYTHONDONTWRITEBYTECODE=1 # no __pycache__ in scripts/lib

read -r count bytes < <(python3 scripts/lib/genmail.py "$work/dovecot/mail/many" "$N" --small \
    --uid "$uid" --gid "$gid" --manifest "$work/many.json")

# The big message: one INBOX file named and owned like genmail.py's, with its manifest.
python3 - "$work/dovecot/mail/big" "$BIG" "$uid" "$gid" "$work/big.json" <<'PY'
import base64, json, os, random, sys, time
root, size, uid, gid, manifest = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
rng = random.Random(1)
when = int(time.time()) - 86400
date = time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime(when))
head = ("Return-Path: <sender@example.org>\n"
        f"Received: from mx.example.org by mail.example.com; {date}\n"
        "From: Sender <sender@example.org>\nTo: big@example.com\n"
        f"Subject: one large message\nDate: {date}\nMessage-ID: <bench-big@example.org>\n"
        'MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="b"\n\n'
        "--b\nContent-Type: text/plain; charset=utf-8\n\nThe attachment is random bytes.\n"
        '--b\nContent-Type: application/octet-stream; name="big.bin"\n'
        "Content-Transfer-Encoding: base64\n\n").encode()
tail = b"--b--\n"
# base64.encodebytes: 57 bytes per 77-octet line (76 + LF); enough whole lines to reach size.
lines = -(-(size - len(head) - len(tail)) // 77)
raw = head + base64.encodebytes(rng.randbytes(lines * 57)) + tail
assert len(raw) >= size
names = ["INBOX", "Sent", "Archive/2023", "Archive/2024", "日本語", "Entwürfe"]  # genmail.py's
path = os.path.join(root, "cur", f"{when}.M000000000P1.bench:2,S")
with open(path, "wb") as f:
    f.write(raw)
os.utime(path, (when, when))
os.chown(path, uid, gid)
m = {name: {"count": 0, "bytes": 0, "wire": 0} for name in names}
m["INBOX"] = {"count": 1, "bytes": len(raw), "wire": len(raw) + raw.count(b"\n")}
with open(manifest, "w", encoding="utf-8") as f:
    json.dump(m, f, ensure_ascii=False, indent=1)
PY

# largest DIR [--inbox]: the largest message file of a seeded Dovecot Maildir++ (of its INBOX
# with --inbox) in octets as served (LF line ends on disk, so one CR more per line).
largest() {
    python3 - "$@" <<'PY'
import os, sys
root, inbox = sys.argv[1], "--inbox" in sys.argv[2:]
best = 0
for d, _, files in os.walk(root):
    if os.path.basename(d) != "cur" or (inbox and os.path.dirname(d) != root.rstrip("/")):
        continue
    for name in files:
        with open(os.path.join(d, name), "rb") as f:
            data = f.read()
        best = max(best, len(data) + data.count(b"\n"))
print(best)
PY
}
many_largest=$(largest "$work/dovecot/mail/many")
many_inbox_largest=$(largest "$work/dovecot/mail/many" --inbox)
big_largest=$(largest "$work/dovecot/mail/big")
read -r inbox_count inbox_bytes < <(python3 -c 'import json,sys; m=json.load(open(sys.argv[1]))["INBOX"]; print(m["count"], m["bytes"])' "$work/many.json")
read -r big_bytes < <(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["INBOX"]["bytes"])' "$work/big.json")
echo "==> seeded many: $count messages ($((bytes / 1000000)) MB), $inbox_count in INBOX; big: 1 message of $big_bytes octets ($big_largest as served)"

export BENCH_PW=$PW
common=(--tls-ca "$CA_PEM" --password-env BENCH_PW --quiet)

# timed NAME COMMAND...: runs COMMAND under /usr/bin/time (wall, user, sys, peak RSS KB) into
# $work/t; any failure ends the script with the command's output.
timed() {
    local name=$1
    shift
    echo "==> $name"
    if ! /usr/bin/time -f "%e %U %S %M" -o "$work/t" "$@" >"$work/out" 2>&1; then
        echo "error: $name failed:" >&2
        tail -n 20 "$work/out" >&2
        exit 1
    fi
}
# check NAME MANIFEST DIR [--only INBOX]: DIR holds exactly the seeded messages and octets.
check() {
    local name=$1 manifest=$2 dir=$3
    shift 3
    python3 scripts/lib/benchcheck.py "$manifest" "$dir" --label "$name" "$@" >/dev/null || exit 1
}
# check_mbox NAME MANIFEST DIR: the mbox archive DIR (one mboxrd file per mailbox, named as
# mailkeep names them) holds exactly the seeded messages and octets per folder.
check_mbox() {
    python3 - "$@" <<'PY' || exit 1
import os, re, sys
from urllib.parse import unquote
sys.path.insert(0, "scripts/lib")
import benchcheck
label, manifest, root = sys.argv[1:4]
found = {}
for d, dirs, files in os.walk(root):
    if d == root and "mailkeep" in dirs:
        dirs.remove("mailkeep")  # the archive's state folder
    for name in files:
        if not name.endswith(".mbox"):
            continue
        rel = os.path.relpath(os.path.join(d, name), root)[:-len(".mbox")]
        folder = "/".join(unquote(level) for level in rel.split(os.sep))
        with open(os.path.join(d, name), "rb") as f:
            data = f.read().replace(b"\r", b"")
        # mboxrd: every unescaped line starting "From " opens an entry; the entry ends with
        # one empty line that is not part of the message.
        starts = [m.start() for m in re.finditer(rb"^From ", data, re.M)]
        if data and (not starts or starts[0] != 0):
            print(f"error: {label}: {name} does not start with a From line", file=sys.stderr)
            sys.exit(1)
        n = b = 0
        for i, s in enumerate(starts):
            e = starts[i + 1] if i + 1 < len(starts) else len(data)
            entry = data[data.index(b"\n", s) + 1:e]
            if not entry.endswith(b"\n\n"):
                print(f"error: {label}: {name}: the entry at {s} does not end with an empty line", file=sys.stderr)
                sys.exit(1)
            entry = re.sub(rb"^>(>*From )", rb"\1", entry[:-1], flags=re.M)
            n += 1
            b += len(entry)
        if n:
            found[folder] = [n, b]
problems = benchcheck.compare(benchcheck.expected_from(manifest, None), found, label)
for p in problems:
    print(p, file=sys.stderr)
sys.exit(1 if problems else 0)
PY
}

ROWS=()
MISSED=()
# record SCENARIO MESSAGES LARGEST_OCTETS: a row of the table from the last timed run (call it
# after the completeness check passed).
record() {
    local wall rss row
    read -r wall _ _ rss <"$work/t"
    row=$(awk -v s="$1" -v m="$2" -v l="$3" -v w="$wall" -v r="$rss" 'BEGIN {
        lm = l / 1048576; rm = r / 1024; lim = 64 + lm;
        ok = (rm <= lim) ? "yes" : sprintf("**no** (%.1f MB over)", rm - lim);
        printf "| %s | %d | %.2f | %.2f | %.1f | %.1f | %s |", s, m, lm, w, rm, lim, ok }')
    ROWS+=("$row")
    echo "    wall $wall s, peak RSS $((rss / 1024)) MB"
    case $row in
    *'**no**'*) MISSED+=("$1: $(awk -F' [|] ' '{ print $5 " MB, limit " $6 " MB" }' <<<"$row")") ;;
    esac
}

# restore NAME SOURCE-ARCHIVE TARGET-USER MANIFEST: restores into a new, empty account and
# checks the account's storage on the server.
restore() {
    local name=$1 src=$2 user=$3 manifest=$4
    dovecot_user "$user" "$PW"
    rm -rf "$work/state"
    timed "$name" env XDG_STATE_HOME="$work/state" \
        "$mk" restore "maildir:$src" "imaps://$user@127.0.0.1:$IMAPS_PORT" "${common[@]}"
    check "$name (server side)" "$manifest" "$work/dovecot/mail/$user"
}

imaps=imaps://many@127.0.0.1:$IMAPS_PORT
pop3s=pop3s://many@127.0.0.1:$POP3S_PORT
s_many="$count messages"

rm -rf "$work/state"
timed "IMAPS -> Maildir, cold ($s_many)" env XDG_STATE_HOME="$work/state" \
    "$mk" backup "$imaps" "maildir:$work/many-imap" "${common[@]}"
check "IMAPS -> Maildir, cold" "$work/many.json" "$work/many-imap"
record "IMAPS -> Maildir, cold" "$count" "$many_largest"
timed "IMAPS -> Maildir, no-change rerun ($s_many)" env XDG_STATE_HOME="$work/state" \
    "$mk" backup "$imaps" "maildir:$work/many-imap" "${common[@]}"
check "IMAPS -> Maildir, no-change rerun" "$work/many.json" "$work/many-imap"
record "IMAPS -> Maildir, no-change rerun" "$count" "$many_largest"

rm -rf "$work/state"
timed "POP3S -> Maildir, INBOX ($inbox_count messages)" env XDG_STATE_HOME="$work/state" \
    "$mk" backup "$pop3s" "maildir:$work/many-pop" "${common[@]}"
check "POP3S -> Maildir" "$work/many.json" "$work/many-pop" --only INBOX
record "POP3S -> Maildir (INBOX)" "$inbox_count" "$many_inbox_largest"
rm -rf "$work/many-pop"

restore "Maildir -> IMAPS restore, empty account ($s_many)" "$work/many-imap" restore-many "$work/many.json"
record "Maildir -> IMAPS restore, empty account" "$count" "$many_largest"
rm -rf "$work/dovecot/mail/restore-many" "$work/dovecot/users/restore-many"

rm -rf "$work/state"
timed "IMAPS -> mbox, cold ($s_many)" env XDG_STATE_HOME="$work/state" \
    "$mk" backup "$imaps" "mbox:$work/many-mbox" "${common[@]}"
check_mbox "IMAPS -> mbox, cold" "$work/many.json" "$work/many-mbox"
record "IMAPS -> mbox, cold" "$count" "$many_largest"
rm -rf "$work/many-mbox"

imaps=imaps://big@127.0.0.1:$IMAPS_PORT
pop3s=pop3s://big@127.0.0.1:$POP3S_PORT
rm -rf "$work/state"
timed "IMAPS -> Maildir, one 40 MB message" env XDG_STATE_HOME="$work/state" \
    "$mk" backup "$imaps" "maildir:$work/big-imap" "${common[@]}"
check "IMAPS -> Maildir, one 40 MB message" "$work/big.json" "$work/big-imap"
record "IMAPS -> Maildir, one 40 MB message" 1 "$big_largest"

rm -rf "$work/state"
timed "POP3S -> Maildir, one 40 MB message" env XDG_STATE_HOME="$work/state" \
    "$mk" backup "$pop3s" "maildir:$work/big-pop" "${common[@]}"
check "POP3S -> Maildir, one 40 MB message" "$work/big.json" "$work/big-pop" --only INBOX
record "POP3S -> Maildir, one 40 MB message" 1 "$big_largest"

restore "Maildir -> IMAPS restore, one 40 MB message" "$work/big-imap" restore-big "$work/big.json"
record "Maildir -> IMAPS restore, one 40 MB message" 1 "$big_largest"
load_end=$(cut -d' ' -f1-3 /proc/loadavg)
elapsed=$(($(date +%s) - started))

table=$(
    echo "| scenario | messages | largest message MB | wall s | peak RSS MB | limit MB (64 + largest) | within |"
    echo "| --- | --- | --- | --- | --- | --- | --- |"
    printf '%s\n' "${ROWS[@]}"
)
if [ ${#MISSED[@]} = 0 ]; then
    verdict="- peak RSS under 64 MB plus the largest message in every scenario: **met**"
else
    verdict="- peak RSS under 64 MB plus the largest message: **missed** in ${#MISSED[@]} scenario(s): $(printf '%s; ' "${MISSED[@]}" | sed 's/; $//')"
fi
note="MB = 2^20 bytes; the largest message as served (CRLF line ends); every run checked complete."
echo
echo "$table"
echo
echo "$note"
echo "$verdict"
echo "load average (1, 5, 15 min) at the start: $load_start; at the end: $load_end; took ${elapsed} s"
[ "${BENCH_MEMORY_NOWRITE:-}" = 1 ] && exit 0

dovecot_version=$("${DOVECOT_BIN:-/usr/sbin/dovecot}" --version | cut -d' ' -f1)
cmd="scripts/bench-memory.sh $N"
[ -z "${BENCH_MAILKEEP:-}" ] || cmd="BENCH_MAILKEEP=$BENCH_MAILKEEP $cmd"
{
    echo
    echo "## $(date -u '+%Y-%m-%d %H:%M UTC'): peak memory, $count messages and one 40 MB message"
    echo
    echo "Command: \`$cmd\`. Machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo) RAM,"
    echo "$(uname -sr), Dovecot $dovecot_version on 127.0.0.1 (mail_fsync = never). $("$mk" --version)."
    echo "Load average (1, 5, 15 min) at the start: $load_start; at the end: $load_end. One run per"
    echo "scenario; the benchmark took $elapsed s. Account \`many\`: $count messages of 2-20 KB"
    echo "($((bytes / 1000000)) MB) in 6 folders, INBOX $inbox_count ($((inbox_bytes / 1000000)) MB); account \`big\`: one message of $big_bytes octets."
    echo
    echo "$table"
    echo
    echo "$note Peak RSS from /usr/bin/time (%M)."
    echo
    echo "Target (issue 8):"
    echo
    echo "$verdict"
} >>BENCHMARKS.md
echo "==> appended to BENCHMARKS.md"
