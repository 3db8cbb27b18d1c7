#!/usr/bin/env bash
# Sourced by scripts/demo.sh and scripts/bench.sh: a throwaway Dovecot on 127.0.0.1 with its
# own config, storage, self-signed certificate and free ports (the same setup as the test
# harness, tests/support/dovecot.rs). Dovecot will not serve mail as root, so when run as root
# its mail processes run as nobody:nogroup and the storage is theirs.
#
#   dovecot_start DIR      starts it; sets POP3_PORT POP3S_PORT IMAP_PORT IMAPS_PORT CA_PEM
#   dovecot_user NAME PW   adds a user (works while Dovecot runs)
#   dovecot_seed USER MAILBOX FILE [FLAGS] [MTIME]   puts one message file into a mailbox
#   dovecot_setting LINE   appends a setting to the config and reloads (new sessions use it)
#   dovecot_stop           stops it

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

dovecot_start() {
    DOVECOT_DIR=$1
    mkdir -p "$DOVECOT_DIR"/{run,state,users,mail}
    chmod 755 "$DOVECOT_DIR"
    if [ "$(id -u)" = 0 ]; then MAIL_UID=nobody MAIL_GID=nogroup; else MAIL_UID=$(id -un) MAIL_GID=$(id -gn); fi
    [ "$(id -u)" = 0 ] && chown "$MAIL_UID:$MAIL_GID" "$DOVECOT_DIR/mail"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 30 \
        -subj /CN=localhost -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
        -keyout "$DOVECOT_DIR/key.pem" -out "$DOVECOT_DIR/cert.pem" 2>/dev/null
    CA_PEM=$DOVECOT_DIR/cert.pem
    POP3_PORT=$(free_port) POP3S_PORT=$(free_port) IMAP_PORT=$(free_port) IMAPS_PORT=$(free_port)
    local extra_users=""
    [ "$(id -u)" = 0 ] || extra_users="default_internal_user = $(id -un)
default_login_user = $(id -un)
"
    cat >"$DOVECOT_DIR/dovecot.conf" <<CONF
instance_name = mailkeep-$(basename "$DOVECOT_DIR")-$$
base_dir = $DOVECOT_DIR/run
state_dir = $DOVECOT_DIR/state
log_path = $DOVECOT_DIR/dovecot.log
protocols = imap pop3
listen = 127.0.0.1
disable_plaintext_auth = no
auth_mechanisms = plain login
mail_location = maildir:$DOVECOT_DIR/mail/%u
mail_uid = $MAIL_UID
mail_gid = $MAIL_GID
first_valid_uid = 1
first_valid_gid = 1
mail_max_userip_connections = 1000
$extra_users
passdb {
  driver = passwd-file
  args = $DOVECOT_DIR/users/%u
}
userdb {
  driver = passwd-file
  args = $DOVECOT_DIR/users/%u
}
ssl = yes
ssl_cert = <$DOVECOT_DIR/cert.pem
ssl_key = <$DOVECOT_DIR/key.pem
service pop3-login {
  inet_listener pop3 {
    port = $POP3_PORT
  }
  inet_listener pop3s {
    port = $POP3S_PORT
    ssl = yes
  }
}
service imap-login {
  inet_listener imap {
    port = $IMAP_PORT
  }
  inet_listener imaps {
    port = $IMAPS_PORT
    ssl = yes
  }
}
CONF
    local bin=/usr/sbin/dovecot
    [ -x "$bin" ] || bin=$(command -v dovecot)
    "$bin" -c "$DOVECOT_DIR/dovecot.conf"
    for _ in $(seq 100); do
        if python3 -c "import socket,sys; socket.create_connection(('127.0.0.1',$POP3S_PORT),0.2)" 2>/dev/null; then
            return 0
        fi
        sleep 0.1
    done
    echo "error: Dovecot did not start; its log:" >&2
    tail -n 20 "$DOVECOT_DIR/dovecot.log" >&2 || true
    return 1
}

dovecot_user() {
    local name=$1 pw=$2
    printf '%s:{PLAIN}%s::::%s::\n' "$name" "$pw" "$DOVECOT_DIR/mail/$name" >"$DOVECOT_DIR/users/.$name.tmp"
    chmod 644 "$DOVECOT_DIR/users/.$name.tmp"
    mv "$DOVECOT_DIR/users/.$name.tmp" "$DOVECOT_DIR/users/$name"
    mkdir -p "$DOVECOT_DIR/mail/$name"/{cur,new,tmp}
    [ "$(id -u)" = 0 ] && chown -R "$MAIL_UID:$MAIL_GID" "$DOVECOT_DIR/mail/$name"
    return 0
}

DOVECOT_SEQ=0
dovecot_seed() {
    local user=$1 mailbox=$2 file=$3 flags=${4:-} mtime=${5:-}
    local dir=$DOVECOT_DIR/mail/$user
    if [ "$mailbox" != INBOX ]; then
        dir=$dir/.${mailbox//\//.}
        mkdir -p "$dir"/{cur,new,tmp}
        touch "$dir/maildirfolder"
        [ "$(id -u)" = 0 ] && chown -R "$MAIL_UID:$MAIL_GID" "$dir"
    fi
    DOVECOT_SEQ=$((DOVECOT_SEQ + 1))
    local base
    base=$(date +%s).M$(printf %09d "$DOVECOT_SEQ")P$$.seed
    cp "$file" "$dir/tmp/$base"
    [ -n "$mtime" ] && touch -d "@$mtime" "$dir/tmp/$base"
    [ "$(id -u)" = 0 ] && chown "$MAIL_UID:$MAIL_GID" "$dir/tmp/$base"
    mv "$dir/tmp/$base" "$dir/cur/$base:2,$flags"
}

dovecot_setting() {
    echo "$1" >>"$DOVECOT_DIR/dovecot.conf"
    kill -HUP "$(cat "$DOVECOT_DIR/run/master.pid")"
    sleep 1 # the master re-reads its config and starts new processes with it
}

dovecot_stop() {
    [ -n "${DOVECOT_DIR:-}" ] || return 0
    local pid
    pid=$(cat "$DOVECOT_DIR/run/master.pid" 2>/dev/null || true)
    if [ -n "$pid" ]; then
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null || true
    fi
}
