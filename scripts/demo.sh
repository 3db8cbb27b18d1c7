#!/usr/bin/env bash
# mailkeep demo: builds mailkeep, starts a throwaway Dovecot on 127.0.0.1 seeded with sample
# mail, backs the POP3 mailbox up over POP3S into a Maildir and an mbox archive, shows that a
# second run fetches nothing and that new mail is fetched exactly once, backs the account up
# over IMAPS (every folder), restores that archive into a second account (twice: the second
# time uploads nothing), and prints where the archives are. Works as root on a fresh Debian 12 (installs Dovecot with apt-get).
#
#   scripts/demo.sh            # archives land in /tmp/mailkeep-demo (override: MAILKEEP_DEMO_DIR)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/install-deps.sh
. scripts/lib/dovecot.sh

install_deps
command -v cargo >/dev/null 2>&1 || { echo "error: cargo not found (install Rust: https://rustup.rs)" >&2; exit 1; }
echo "==> building mailkeep (release; the first build takes a few minutes)"
cargo build --release --quiet
mailkeep=${CARGO_TARGET_DIR:-$PWD/target}/release/mailkeep

demo=${MAILKEEP_DEMO_DIR:-/tmp/mailkeep-demo}
rm -rf "$demo"
mkdir -p "$demo"
trap dovecot_stop EXIT
echo "==> starting a throwaway Dovecot in $demo/dovecot"
dovecot_start "$demo/dovecot"
dovecot_user alice 'demo-password'

# Sample mail: plain notes, a Japanese subject (RFC 2047, ISO-2022-JP), a body line starting
# with "From " (which mbox must quote), a small base64 attachment, 8-bit Latin-1 text.
samples=$demo/samples
mkdir -p "$samples"
make_message() { # n subject extra-headers body
    printf 'Return-Path: <sender%s@example.org>\nReceived: from mx.example.org by mail.example.com; %s\nFrom: Sender %s <sender%s@example.org>\nTo: Alice <alice@example.com>\nSubject: %s\nDate: %s\nMessage-ID: <demo-%s@example.org>\n%s\n%s\n' \
        "$1" "$(date -u -R -d "2024-01-01 +$1 days")" "$1" "$1" "$2" "$(date -u -R -d "2024-01-01 +$1 days -2 hours")" "$1" "$3" "$4" >"$samples/$1.eml"
}
for n in $(seq 1 24); do
    make_message "$n" "Weekly note $n" "" "Hello Alice,

this is note number $n.
From here on, nothing special.
.a line starting with a dot
-- 
Sender $n"
done
make_message 25 '=?ISO-2022-JP?B?GyRCRnxLXDhsGyhC?= (Japanese subject)' "MIME-Version: 1.0
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: 8bit" "日本語の本文です。"
make_message 26 'Invoice attached' "MIME-Version: 1.0
Content-Type: multipart/mixed; boundary=\"b1\"" "--b1
Content-Type: text/plain

See attachment.
--b1
Content-Type: application/octet-stream; name=\"invoice.bin\"
Content-Transfer-Encoding: base64

$(head -c 3000 /dev/urandom | base64)
--b1--"
printf 'From: =?iso-8859-1?q?J=E9r=F4me?= <jerome@example.org>\nTo: alice@example.com\nSubject: Caf\xe9 r\xe9sum\xe9 (raw Latin-1 bytes)\nDate: Tue, 11 Mar 2025 10:00:00 +0100\n\nBudget: 1200 \x80.\n' >"$samples/27.eml"
for n in $(seq 1 27); do dovecot_seed alice INBOX "$samples/$n.eml"; done
echo "==> Dovecot serves 27 messages to alice over POP3S on 127.0.0.1:$POP3S_PORT"

export MAILKEEP_DEMO_PASSWORD='demo-password'
run() { printf "$ %s\n" "$(printf "%q " "$@")"; "$@"; echo; }
src="pop3s://alice@127.0.0.1:$POP3S_PORT"
common=(--tls-ca "$CA_PEM" --password-env MAILKEEP_DEMO_PASSWORD)

echo "==> 1. back up into a Maildir and into an mbox archive"
run "$mailkeep" backup "$src" "maildir:$demo/archive-maildir" "${common[@]}"
run "$mailkeep" backup "$src" "mbox:$demo/archive-mbox" "${common[@]}"

echo "==> 2. run again: nothing new, nothing fetched, no archive byte changed"
run "$mailkeep" backup "$src" "maildir:$demo/archive-maildir" "${common[@]}"

echo "==> 3. two new messages arrive; the next run fetches exactly those"
make_message 28 "Fresh mail 1" "" "New."
make_message 29 "Fresh mail 2" "" "Newer."
dovecot_seed alice INBOX "$samples/28.eml"
dovecot_seed alice INBOX "$samples/29.eml"
run "$mailkeep" backup "$src" "maildir:$demo/archive-maildir" "${common[@]}"

echo "==> 4. a wrong password is one clear line and exit code 3"
set +e
MAILKEEP_DEMO_PASSWORD=wrong "$mailkeep" backup "$src" "maildir:$demo/archive-maildir" "${common[@]}"
echo "(exit code $?)"
set -e
echo

echo "==> 5. the same account over IMAP: every folder, with flags and dates"
dovecot_seed alice Sent "$samples/3.eml" S 1704100000
dovecot_seed alice Sent "$samples/4.eml" RS 1704200000
dovecot_seed alice Archive/2023 "$samples/5.eml" FS 1680000000
mkdir -p "$DOVECOT_DIR/mail/alice/.&ZeVnLIqe-"/{cur,new,tmp}   # 日本語, stored in modified UTF-7
touch "$DOVECOT_DIR/mail/alice/.&ZeVnLIqe-/maildirfolder"
[ "$(id -u)" = 0 ] && chown -R "$MAIL_UID:$MAIL_GID" "$DOVECOT_DIR/mail/alice/.&ZeVnLIqe-"
dovecot_seed alice '&ZeVnLIqe-' "$samples/25.eml" S
imap="imaps://alice@127.0.0.1:$IMAPS_PORT"
run "$mailkeep" list "$imap" "${common[@]}"
run "$mailkeep" backup "$imap" "maildir:$demo/archive-imap" "${common[@]}"
echo "\$ ls $demo/archive-imap/.Sent/cur"
ls "$demo/archive-imap/.Sent/cur"
echo

echo "==> 6. restore that archive into another, empty account (bob), with flags and dates"
dovecot_user bob 'demo-password'
export XDG_STATE_HOME=$demo/state   # where restore records its uploads (default ~/.local/state)
bob="imaps://bob@127.0.0.1:$IMAPS_PORT"
run "$mailkeep" restore "maildir:$demo/archive-imap" "$bob" "${common[@]}"
run "$mailkeep" list "$bob" "${common[@]}"
echo "==> 7. restore again: nothing is uploaded twice"
run "$mailkeep" restore "maildir:$demo/archive-imap" "$bob" "${common[@]}"

echo "==> 8. migrate alice's POP3 mailbox into another IMAP account (carol), straight from server to server"
dovecot_user carol 'demo-password'
carol="imaps://carol@127.0.0.1:$IMAPS_PORT"
mig=(--source-tls-ca "$CA_PEM" --target-tls-ca "$CA_PEM"
     --source-password-env MAILKEEP_DEMO_PASSWORD --target-password-env MAILKEEP_DEMO_PASSWORD)
run "$mailkeep" migrate "$src" "$carol" "${mig[@]}" --into "Old POP" --seen --dry-run
run "$mailkeep" migrate "$src" "$carol" "${mig[@]}" --into "Old POP" --seen
echo "==> 9. migrate again: nothing is copied twice"
run "$mailkeep" migrate "$src" "$carol" "${mig[@]}" --into "Old POP" --seen

count=$(ls "$demo/archive-maildir/cur" | wc -l)
mbox_count=$(grep -c '^From ' "$demo/archive-mbox/INBOX.mbox")
echo "==> done. The archives (Dovecot has been stopped; the archives stay):"
echo "    Maildir: $demo/archive-maildir   ($count messages in cur/; read it with: mutt -f $demo/archive-maildir)"
echo "    mbox:    $demo/archive-mbox/INBOX.mbox   ($mbox_count messages; read it with: mutt -f $demo/archive-mbox/INBOX.mbox)"
echo "    IMAP:    $demo/archive-imap   (Maildir++: .Sent, .Archive.2023, .&ZeVnLIqe- = 日本語; flags in the :2, suffix)"
echo "    state:   $demo/archive-maildir/mailkeep/ledger.sqlite (what was copied, with SHA-256 of every message)"
