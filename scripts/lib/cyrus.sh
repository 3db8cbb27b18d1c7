#!/usr/bin/env bash
# Sourced by the tests (tests/support/real_server.rs) and usable by hand: a throwaway Cyrus
# IMAP 3.6 server on 127.0.0.1 with its own config, spool, state, self-signed certificate and
# free ports, run from the private root that install_real_servers (scripts/lib/install-deps.sh)
# unpacked into $MAILKEEP_SERVERS_ROOT/cyrus (default /opt/mailkeep-test/cyrus).
#
#   cyrus_start DIR       starts it (DIR must not exist or be empty); sets IMAP_PORT IMAPS_PORT
#                         POP3_PORT POP3S_PORT CA_PEM SERVER_PGID SERVER_LOG
#   cyrus_user NAME PW    adds a user (its INBOX is created at its first login)
#   cyrus_transcript NAME records every later session of NAME into DIR/conf/log/NAME/
#                         (Cyrus's own protocol telemetry, RFC 3501 commands and replies)
#   MAILKEEP_SERVER_NO_FSYNC=1  (before cyrus_start) the server does not fsync (libeatmydata)
#   cyrus_stop            stops it (SIGTERM, then SIGKILL, to every process of its session)
#
# Choices (Debian's packaged defaults differ; see docs/servers.md, "Tested servers"): upstream 3.x
# namespace defaults (`altnamespace: yes`, `unixhierarchysep: yes`: folders beside INBOX,
# delimiter `/`), users in a private sasldb (`sasl_pwcheck_method: auxprop`, PLAIN and LOGIN,
# `allowplaintext: yes` so a test can check that mailkeep refuses plain text itself), INBOX
# created at first login (`autocreate_quota: 0`), implicit TLS on IMAPS_PORT/POP3S_PORT and
# STARTTLS/STLS on the plain ports. Cyrus will not run as root: when started as root its
# processes run as nobody:nogroup (`cyrus_user`), which owns DIR. Cyrus logs to syslog only;
# master's own output goes to DIR/master.log.

CYRUS_ROOT=${MAILKEEP_SERVERS_ROOT:-/opt/mailkeep-test}/cyrus

. "$(dirname "${BASH_SOURCE[0]}")/real-server.sh"

cyrus_start() {
    CYRUS_DIR=$1
    local d=$CYRUS_DIR bin=$CYRUS_ROOT/usr/lib/cyrus/bin
    [ -x "$bin/master" ] || { echo "error: no Cyrus in $CYRUS_ROOT: run install_real_servers (scripts/lib/install-deps.sh)" >&2; return 1; }
    mkdir -p "$d"/{conf,spool,proc,lock,socket}
    chmod 755 "$d"
    local user group
    if [ "$(id -u)" = 0 ]; then user=nobody group=nogroup; else user=$(id -un) group=$(id -gn); fi
    _self_signed "$d"
    CA_PEM=$d/cert.pem
    read -r IMAP_PORT IMAPS_PORT POP3_PORT POP3S_PORT <<<"$(_free_ports 4)"
    cat >"$d/imapd.conf" <<CONF
configdirectory: $d/conf
defaultpartition: default
partition-default: $d/spool
proc_path: $d/proc
mboxname_lockpath: $d/lock
lmtpsocket: $d/socket/lmtp
idlesocket: $d/socket/idle
notifysocket: $d/socket/notify
cyrus_user: $user
cyrus_group: $group
allowplaintext: yes
sasl_pwcheck_method: auxprop
sasl_auxprop_plugin: sasldb
sasl_sasldb_path: $d/sasldb2
sasl_mech_list: PLAIN LOGIN
autocreate_quota: 0
popminpoll: 0
tls_server_cert: $d/cert.pem
tls_server_key: $d/key.pem
syslog_prefix: mailkeep-cyrus
CONF
    local c="-C $d/imapd.conf"
    cat >"$d/cyrus.conf" <<CONF
START {
  recover cmd="$bin/ctl_cyrusdb $c -r"
}
SERVICES {
  imap cmd="$bin/imapd $c" listen="127.0.0.1:$IMAP_PORT" prefork=0
  imaps cmd="$bin/imapd $c -s" listen="127.0.0.1:$IMAPS_PORT" prefork=0
  pop3 cmd="$bin/pop3d $c" listen="127.0.0.1:$POP3_PORT" prefork=0
  pop3s cmd="$bin/pop3d $c -s" listen="127.0.0.1:$POP3S_PORT" prefork=0
}
EVENTS {
}
CONF
    chmod 600 "$d/key.pem"
    [ "$(id -u)" = 0 ] && chown -R "$user:$group" "$d"
    SERVER_LOG=$d/master.log
    # Its own session (setsid), so a stop reaches master and every child it forked.
    LD_LIBRARY_PATH=$CYRUS_ROOT/usr/lib/x86_64-linux-gnu \
        LD_PRELOAD=$(_no_fsync_preload) setsid "$bin/master" -C "$d/imapd.conf" -M "$d/cyrus.conf" -p "$d/master.pid" -D \
        </dev/null >"$SERVER_LOG" 2>&1 &
    SERVER_PGID=$!
    _wait_listening "$SERVER_LOG" "$IMAP_PORT" "$IMAPS_PORT" "$POP3_PORT" "$POP3S_PORT"
}

cyrus_user() {
    local name=$1 pw=$2
    printf '%s' "$pw" | saslpasswd2 -f "$CYRUS_DIR/sasldb2" -p -c "$name" || return
    chmod 600 "$CYRUS_DIR/sasldb2"
    [ "$(id -u)" = 0 ] && chown nobody:nogroup "$CYRUS_DIR/sasldb2"
    return 0
}

cyrus_transcript() {
    mkdir -p "$CYRUS_DIR/conf/log/$1"
    [ "$(id -u)" = 0 ] && chown -R nobody:nogroup "$CYRUS_DIR/conf/log"
    return 0
}

cyrus_stop() {
    [ -n "${SERVER_PGID:-}" ] || return 0
    _session_stop "$SERVER_PGID"
    SERVER_PGID=
}
