#!/usr/bin/env bash
# Sourced by the tests (tests/support/real_server.rs) and usable by hand: a throwaway
# Courier-IMAP 5.0 + Courier POP3 server on 127.0.0.1 with its own configuration, user
# database, Maildirs, self-signed certificate and free ports, run from the private root that
# install_real_servers (scripts/lib/install-deps.sh) unpacked into
# $MAILKEEP_SERVERS_ROOT/courier (default /opt/mailkeep-test/courier).
#
#   courier_start DIR     starts it; DIR must not exist and its path must be at most 16 bytes
#                         (e.g. mktemp -d /tmp/mkcXXXXXX, see below); sets IMAP_PORT IMAPS_PORT
#                         POP3_PORT POP3S_PORT CA_PEM SERVER_PGID SERVER_LOG
#   courier_user NAME PW  adds a user with an empty Maildir (works while the server runs)
#   MAILKEEP_SERVER_NO_FSYNC=1  (before courier_start) the server does not fsync (libeatmydata)
#   courier_stop          stops it (SIGTERM, then SIGKILL, to every process of its session)
#
# How: four couriertcpd listeners (IMAP: imaplogin -> imapd; POP3: courierpop3login ->
# courierpop3d; implicit TLS through `couriertls -server -tcpd`, STARTTLS/STLS on the plain
# ports through couriertls too) and authdaemond with the userdb module. Courier's authlib has
# its paths compiled in (/etc/courier/authdaemonrc, /etc/courier/userdb.dat and
# userdbshadow.dat, the socket /run/courier/authdaemon/socket), shared by every instance on a
# machine; so each instance gets copies of authdaemond, libcourierauth.so.0 and
# libauthuserdb.so.0 with those strings replaced by paths inside DIR (hence the short DIR:
# the new paths must fit in the old ones) and finds them first on LD_LIBRARY_PATH /
# LTDL_LIBRARY_PATH. Passwords are stored `{SHA256}` (base64 of the SHA-256). Mail processes
# run as the user who starts the server, or nobody:nogroup when started as root. Every login
# and logout is logged to DIR/server.log (`LOGIN, user=...`, `LOGOUT, user=...`).

COURIER_ROOT=${MAILKEEP_SERVERS_ROOT:-/opt/mailkeep-test}/courier

. "$(dirname "${BASH_SOURCE[0]}")/real-server.sh"

# _binpatch IN OUT OLD NEW [OLD NEW]...: OUT is IN with each C string OLD replaced by NEW (not
# longer; padded with NULs), also where the compiler inlined OLD as two overlapping 16-byte
# copies (OLD[0..16] and the last 16 bytes, with or without the NUL). Fails if an OLD is absent.
_binpatch() {
    perl -e '
use strict;
my ($in, $out, @pairs) = @ARGV;
local $/;
open my $f, "<:raw", $in or die "$in: $!\n"; my $d = <$f>; close $f;
while (my ($a, $b) = splice(@pairs, 0, 2)) {
    die "$b is longer than $a\n" if length($b) > length($a);
    my $a0 = $a . "\0";
    my $b0 = $b . ("\0" x (length($a0) - length($b)));
    my $n = ($d =~ s/\Q$a0\E/$b0/g);
    for my $s ($a0, $a) {
        my $len = length($s);
        next if $len <= 16 || $len > 32;
        my $t = substr($b0, 0, $len);
        my ($h, $tail) = (substr($s, 0, 16), substr($s, $len - 16));
        my ($nh, $ntail) = (substr($t, 0, 16), substr($t, $len - 16));
        $n += ($d =~ s/\Q$h$tail\E/$nh$ntail/g);
    }
    die "$a not found in $in\n" unless $n;
}
open my $o, ">:raw", $out or die "$out: $!\n"; print $o $d; close $o;
chmod 0755, $out;
' "$@"
}

courier_start() {
    COURIER_DIR=$1
    local d=$COURIER_DIR r=$COURIER_ROOT
    [ -x "$r/usr/sbin/couriertcpd" ] || { echo "error: no Courier in $r: run install_real_servers (scripts/lib/install-deps.sh)" >&2; return 1; }
    [ ${#d} -le 16 ] || { echo "error: courier_start: $d is longer than 16 bytes" >&2; return 1; }
    mkdir -p "$d"/{lib,mail,shared}
    chmod 755 "$d"
    if [ "$(id -u)" = 0 ]; then
        COURIER_UID=$(id -u nobody) COURIER_GID=$(id -g nobody)
        chown "$COURIER_UID:$COURIER_GID" "$d/mail"
    else
        COURIER_UID=$(id -u) COURIER_GID=$(id -g)
    fi
    _binpatch "$r/usr/lib/libcourierauth.so.0" "$d/lib/libcourierauth.so.0" \
        /run/courier/authdaemon/socket "$d/sock" || return
    _binpatch "$r/usr/lib/courier/courier-authlib/authdaemond" "$d/lib/authdaemond" \
        /run/courier/authdaemon/socket "$d/sock" /etc/courier/authdaemonrc "$d/authrc" || return
    _binpatch "$r/usr/lib/courier-authlib/libauthuserdb.so.0" "$d/lib/libauthuserdb.so.0" \
        /etc/courier/userdb.dat "$d/u.dat" /etc/courier/userdbshadow.dat "$d/us.dat" || return
    ln -s libauthuserdb.so.0 "$d/lib/libauthuserdb.so"
    # The login programs run couriertls for STARTTLS/STLS as the compiled-in user `courier`,
    # which exists only where the package was installed: use the mail user's name instead
    # (patched where the string stands alone, "\0courier\0").
    local tls_user
    tls_user=$(id -un "$COURIER_UID")
    if [ ${#tls_user} -le 7 ]; then
        local login
        for login in imaplogin courierpop3login; do
            perl -e 'local $/; my ($in, $out, $u) = @ARGV; open my $f, "<:raw", $in or die; my $d = <$f>;
                my $n = ($d =~ s/\0courier\0/"\0" . $u . ("\0" x (8 - length($u)))/ge);
                die "courier not found in $in\n" unless $n == 1;
                open my $o, ">:raw", $out or die; print $o $d; close $o; chmod 0755, $out' \
                "$r/usr/lib/courier/courier/$login" "$d/lib/$login" "$tls_user" || return
        done
    else
        cp "$r/usr/lib/courier/courier/imaplogin" "$r/usr/lib/courier/courier/courierpop3login" "$d/lib/"
    fi
    : >"$d/userdb"
    : >"$d/userdbshadow"
    chmod 600 "$d/userdb" "$d/userdbshadow"
    _courier_makedat || return
    _self_signed "$d"
    cat "$d/cert.pem" "$d/key.pem" >"$d/tls.pem"
    chmod 600 "$d/key.pem" "$d/tls.pem"
    [ "$(id -u)" = 0 ] && chown "$COURIER_UID:$COURIER_GID" "$d/tls.pem"
    CA_PEM=$d/cert.pem
    read -r IMAP_PORT IMAPS_PORT POP3_PORT POP3S_PORT <<<"$(_free_ports 4)"
    cat >"$d/authrc" <<CONF
authmodulelist="authuserdb"
daemons=3
authdaemonvar=$d
DEBUG_LOGIN=0
DEFAULTOPTIONS=""
CONF
    # The settings /etc/courier/imapd, imapd-ssl and pop3d hold in a packaged install (Debian's
    # values, except: no IMAP_EMPTYTRASH, which would delete mail from Trash after 7 days).
    cat >"$d/env" <<CONF
IMAP_CAPABILITY="IMAP4rev1 UIDPLUS CHILDREN NAMESPACE THREAD=ORDEREDSUBJECT THREAD=REFERENCES SORT QUOTA IDLE"
IMAP_CAPABILITY_TLS="IMAP4rev1 UIDPLUS CHILDREN NAMESPACE THREAD=ORDEREDSUBJECT THREAD=REFERENCES SORT QUOTA IDLE AUTH=PLAIN"
IMAP_KEYWORDS=1
IMAP_ACL=1
IMAP_STARTTLS=YES
IMAP_TLS_REQUIRED=0
IMAP_USELOCKS=1
IMAP_UMASK=022
IMAP_MAILBOX_SANITY_CHECK=1
IMAP_SHAREDINDEXFILE=$d/shared/index
IMAP_TRASHFOLDERNAME=Trash
IMAP_MOVE_EXPUNGE_TO_TRASH=0
IMAP_IDLE_TIMEOUT=60
POP3AUTH="PLAIN LOGIN"
POP3AUTH_TLS="PLAIN LOGIN"
POP3_STARTTLS=YES
POP3_TLS_REQUIRED=0
COURIERTLS=$r/usr/bin/couriertls
TLS_CERTFILE=$d/tls.pem
TLS_PROTOCOL=TLS1_2+
TLS_STARTTLS_PROTOCOL=TLS1_2+
TLS_VERIFYPEER=NONE
MAILDIRPATH=Maildir
LD_LIBRARY_PATH=$d/lib:$r/usr/lib:$r/usr/lib/courier-authlib
LTDL_LIBRARY_PATH=$d/lib
LD_PRELOAD=$(_no_fsync_preload)
CONF
    SERVER_LOG=$d/server.log
    local tcpd="$r/usr/sbin/couriertcpd -address=127.0.0.1 -maxprocs=200 -maxperip=200 -nodnslookup -noidentlookup"
    local imap="$d/lib/imaplogin $r/usr/bin/imapd Maildir"
    local pop3="$d/lib/courierpop3login $r/usr/lib/courier/courier/courierpop3d Maildir"
    local tls="$r/usr/bin/couriertls -server -tcpd"
    # One session (setsid) for authdaemond and the four listeners, so a stop reaches them and
    # every process they forked.
    (
        cd "$d" || exit 1
        set -a
        . "$d/env"
        set +a
        exec setsid /bin/sh -c "
            $d/lib/authdaemond &
            $tcpd $IMAP_PORT $imap &
            $tcpd $IMAPS_PORT $tls $imap &
            $tcpd $POP3_PORT $pop3 &
            $tcpd $POP3S_PORT $tls $pop3 &
            wait"
    ) </dev/null >>"$SERVER_LOG" 2>&1 &
    SERVER_PGID=$!
    _wait_listening "$SERVER_LOG" "$IMAP_PORT" "$IMAPS_PORT" "$POP3_PORT" "$POP3S_PORT" || return
    for _ in $(seq 100); do [ -S "$d/sock" ] && return 0; sleep 0.05; done
    echo "error: authdaemond did not start; the log ($SERVER_LOG):" >&2
    tail -n 40 "$SERVER_LOG" >&2
    return 1
}

# Rebuilds u.dat and us.dat from the text files (makedatprog writes a new file and renames it,
# so authdaemond never reads a partial one).
_courier_makedat() {
    local d=$COURIER_DIR mk=$COURIER_ROOT/usr/lib/courier/courier-authlib/makedatprog
    export LD_LIBRARY_PATH=$COURIER_ROOT/usr/lib
    { cat "$d/userdb"; echo .; } | "$mk" - "$d/u.tmp" "$d/u.dat" || return
    { cat "$d/userdbshadow"; echo .; } | "$mk" - "$d/us.tmp" "$d/us.dat" || return
    unset LD_LIBRARY_PATH
    chmod 644 "$d/u.dat"
    chmod 600 "$d/us.dat"
}

courier_user() {
    local name=$1 pw=$2 d=$COURIER_DIR
    local home=$d/mail/$name
    mkdir -p "$home"
    LD_LIBRARY_PATH=$COURIER_ROOT/usr/lib "$COURIER_ROOT/usr/bin/maildirmake.courier" "$home/Maildir" || return
    [ "$(id -u)" = 0 ] && chown -R "$COURIER_UID:$COURIER_GID" "$home"
    printf '%s\tuid=%s|gid=%s|home=%s|mail=%s\n' "$name" "$COURIER_UID" "$COURIER_GID" "$home" "$home/Maildir" >>"$d/userdb"
    printf '%s\tsystempw={SHA256}%s\n' "$name" "$(printf '%s' "$pw" | openssl dgst -sha256 -binary | base64)" >>"$d/userdbshadow"
    _courier_makedat
}

courier_stop() {
    [ -n "${SERVER_PGID:-}" ] || return 0
    # couriertcpd puts each listener in a process group of its own, but all stay in the
    # session setsid made.
    _session_stop "$SERVER_PGID"
    SERVER_PGID=
}
