#!/usr/bin/env bash
# Sourced by scripts/lib/cyrus.sh and scripts/lib/courier.sh: what their throwaway servers share
# (free loopback ports, the self-signed certificate, waiting for listeners, stopping a server's
# session by pid).

# _no_fsync_preload: the LD_PRELOAD value that turns the server's fsync calls into no-ops
# (libeatmydata) when MAILKEEP_SERVER_NO_FSYNC=1 and the library is installed, else empty.
# The tests set it: they kill mailkeep, never the server, and Cyrus fsyncs several files per
# APPEND (measured: 35 ms per small message with fsync, 13 ms without, on a loaded 2-core VM).
_no_fsync_preload() {
    [ "${MAILKEEP_SERVER_NO_FSYNC:-}" = 1 ] || return 0
    local lib
    for lib in /usr/lib/x86_64-linux-gnu/libeatmydata.so.1 /usr/lib/*/libeatmydata.so.1; do
        [ -e "$lib" ] && { echo "$lib"; return 0; }
    done
}

_free_ports() {
    python3 -c 'import socket,sys
s=[socket.socket() for _ in range(int(sys.argv[1]))]
for x in s: x.bind(("127.0.0.1",0))
print(" ".join(str(x.getsockname()[1]) for x in s))' "$1"
}

# _self_signed DIR: DIR/cert.pem and DIR/key.pem for CN=localhost, SAN localhost and 127.0.0.1
# (the same certificate scripts/lib/dovecot.sh makes).
_self_signed() {
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 30 \
        -subj /CN=localhost -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
        -keyout "$1/key.pem" -out "$1/cert.pem" 2>/dev/null
}

# _wait_listening LOG PORT...: waits up to 10 s for every PORT to accept connections.
_wait_listening() {
    local log=$1 port
    shift
    for port in "$@"; do
        local ok=
        for _ in $(seq 200); do
            if python3 -c "import socket; socket.create_connection(('127.0.0.1',$port),0.2).close()" 2>/dev/null; then
                ok=1
                break
            fi
            kill -0 "$SERVER_PGID" 2>/dev/null || break
            sleep 0.05
        done
        if [ -z "$ok" ]; then
            echo "error: the server did not listen on 127.0.0.1:$port; its log ($log):" >&2
            tail -n 40 "$log" >&2 || true
            return 1
        fi
    done
}

# The pids of the processes in session SID (from /proc/PID/stat: after the command in
# parentheses come state, ppid, pgrp, session).
_session_pids() {
    local sid=$1 f line p
    for f in /proc/[0-9]*/stat; do
        { read -r line <"$f"; } 2>/dev/null || continue
        set -- ${line##*) }
        if [ "${4:-}" = "$sid" ]; then
            p=${f#/proc/}
            echo "${p%/stat}"
        fi
    done
}

# _session_stop SID: SIGTERM, then (after 3 s) SIGKILL, to every process of session SID.
_session_stop() {
    local sid=$1 sig pids
    for sig in TERM KILL; do
        pids=$(_session_pids "$sid")
        [ -n "$pids" ] || return 0
        kill "-$sig" $pids 2>/dev/null || true
        for _ in $(seq 30); do [ -n "$(_session_pids "$sid")" ] || return 0; sleep 0.1; done
    done
}
