#!/usr/bin/env bash
# Sourced by scripts/*.sh: installs what mailkeep's tests, demo and benchmark need when it is
# missing (Debian/Ubuntu: Dovecot IMAP + POP3, the openssl CLI, python3, plus any packages
# given as arguments), without starting the system Dovecot service.
#
# install_peers: the optional peers only scripts/bench.sh measures mailkeep against (mbsync from
# isync, mpop, getmail6; Debian 12 package names). The tests and the demo never need them.
BENCH_PEER_PACKAGES=(isync mpop getmail6)
install_peers() {
    install_deps "${BENCH_PEER_PACKAGES[@]}"
}

install_deps() {
    local missing=()
    local extra
    for extra in "$@"; do
        dpkg -s "$extra" >/dev/null 2>&1 || missing+=("$extra")
    done
    [ -x /usr/sbin/dovecot ] || command -v dovecot >/dev/null 2>&1 || missing+=(dovecot-core)
    [ -x /usr/lib/dovecot/imap ] || missing+=(dovecot-imapd)
    [ -x /usr/lib/dovecot/pop3 ] || missing+=(dovecot-pop3d)
    command -v openssl >/dev/null 2>&1 || missing+=(openssl)
    command -v python3 >/dev/null 2>&1 || missing+=(python3)

    if [ ${#missing[@]} -gt 0 ]; then
        echo "==> installing ${missing[*]}"
        sudo=()
        if [ "$(id -u)" != 0 ]; then
            command -v sudo >/dev/null 2>&1 || { echo "error: need root (or sudo) to install: ${missing[*]}" >&2; return 1; }
            sudo=(sudo)
        fi
        # Keep the package scripts from starting the system Dovecot service: the tests do not use
        # it, and in a container without an init system starting it can fail the installation.
        policy=/usr/sbin/policy-rc.d
        created_policy=
        if [ ! -e "$policy" ]; then
            printf '#!/bin/sh\nexit 101\n' | "${sudo[@]}" tee "$policy" >/dev/null
            "${sudo[@]}" chmod 755 "$policy"
            created_policy=1
        fi
        status=0
        "${sudo[@]}" apt-get update -q || status=$?
        if [ "$status" = 0 ]; then
            "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
                "${missing[@]}" || status=$?
        fi
        if [ -n "$created_policy" ]; then
            "${sudo[@]}" rm -f "$policy"
        fi
        if [ "$status" != 0 ]; then
            echo "error: apt-get failed (status $status)" >&2
            return "$status"
        fi
    fi
}

# install_real_servers: Cyrus IMAP 3.6 and Courier-IMAP 5.0 (Debian 12 packages) for
# tests/server_cyrus.rs and tests/server_courier.rs, unpacked into private roots
# $MAILKEEP_SERVERS_ROOT/{cyrus,courier} (default /opt/mailkeep-test). Their packages
# `Conflicts: imap-server, pop3-server` with each other and with Dovecot, so they are never
# installed with dpkg: `apt-get download` fetches the .debs (kept in $MAILKEEP_SERVERS_ROOT/debs),
# `dpkg-deb -x` unpacks them (no maintainer scripts run, no service started, nothing under /etc
# or /usr), and only the shared libraries they link against are installed with apt (they
# conflict with nothing). scripts/lib/cyrus.sh and scripts/lib/courier.sh run the binaries from
# there with LD_LIBRARY_PATH. Idempotent: a root whose stamp lists the same .debs is kept, and
# with every stamp present nothing is downloaded (works offline once done).
MAILKEEP_SERVERS_ROOT=${MAILKEEP_SERVERS_ROOT:-/opt/mailkeep-test}
CYRUS_DEBS=(cyrus-common cyrus-imapd cyrus-pop3d)
CYRUS_LIBS=(libsasl2-2 libsasl2-modules libsasl2-modules-db sasl2-bin libical3 libpcre3
    libxapian30 libwrap0 libjansson4 libicu72 libpq5 libldap-2.5-0 libkrb5-3 libcom-err2
    libsqlite3-0 libssl3 libxml2 zlib1g openssl)
COURIER_DEBS=(courier-base courier-imap courier-pop courier-authlib courier-authdaemon
    courier-authlib-userdb)
COURIER_LIBS=(libcourier-unicode4 libgamin0 libgdbm6 libidn12 libltdl7 libpcre3 libgnutls30
    libcrypt1 libpam0g perl-base)
# libeatmydata: the tests start both servers with fsync turned off (scripts/lib/real-server.sh).
SERVER_TEST_LIBS=(libeatmydata1)

install_real_servers() {
    local root=$MAILKEEP_SERVERS_ROOT
    local sudo=()
    [ "$(id -u)" = 0 ] || sudo=(sudo)
    if [ -f "$root/cyrus/.mailkeep-stamp" ] && [ -f "$root/courier/.mailkeep-stamp" ]; then
        _real_servers_check "$root" && return 0
    fi
    install_deps "${CYRUS_LIBS[@]}" "${COURIER_LIBS[@]}" "${SERVER_TEST_LIBS[@]}" || return
    "${sudo[@]}" mkdir -p "$root/debs" || return
    "${sudo[@]}" chmod 755 "$root" "$root/debs"
    local name debs
    for name in cyrus courier; do
        if [ "$name" = cyrus ]; then debs=("${CYRUS_DEBS[@]}"); else debs=("${COURIER_DEBS[@]}"); fi
        # apt-get download writes into the current directory; as root it warns that the _apt
        # user cannot write there, harmlessly.
        (cd "$root/debs" && "${sudo[@]}" apt-get download -q "${debs[@]}" 2>&1 | grep -v '^W: Download is performed unsandboxed') || true
        local files=() pkg f
        for pkg in "${debs[@]}"; do
            f=$(ls -t "$root/debs/${pkg}_"*.deb 2>/dev/null | head -n1)
            [ -n "$f" ] || { echo "error: apt-get download $pkg failed (no .deb in $root/debs)" >&2; return 1; }
            files+=("$f")
        done
        local stamp
        stamp=$(printf '%s\n' "${files[@]##*/}")
        if [ "$(cat "$root/$name/.mailkeep-stamp" 2>/dev/null)" != "$stamp" ]; then
            echo "==> unpacking ${debs[*]} into $root/$name"
            "${sudo[@]}" rm -rf "$root/$name.new"
            "${sudo[@]}" mkdir -p "$root/$name.new"
            for f in "${files[@]}"; do
                "${sudo[@]}" dpkg-deb -x "$f" "$root/$name.new" || return
            done
            printf '%s\n' "$stamp" | "${sudo[@]}" tee "$root/$name.new/.mailkeep-stamp" >/dev/null
            "${sudo[@]}" rm -rf "$root/$name"
            "${sudo[@]}" mv "$root/$name.new" "$root/$name"
        fi
    done
    _real_servers_check "$root"
}

# Every binary the tests run finds its libraries (ldd says `not found` otherwise).
_real_servers_check() {
    local root=$1 bin missing=""
    for bin in cyrus/usr/lib/cyrus/bin/master cyrus/usr/lib/cyrus/bin/imapd \
        cyrus/usr/lib/cyrus/bin/pop3d cyrus/usr/lib/cyrus/bin/ctl_cyrusdb; do
        missing+=$(LD_LIBRARY_PATH=$root/cyrus/usr/lib/x86_64-linux-gnu ldd "$root/$bin" 2>&1 | grep 'not found' | sed "s|^|$bin: |")
    done
    for bin in courier/usr/sbin/couriertcpd courier/usr/bin/couriertls courier/usr/bin/imapd \
        courier/usr/lib/courier/courier/imaplogin courier/usr/lib/courier/courier/courierpop3login \
        courier/usr/lib/courier/courier/courierpop3d courier/usr/lib/courier/courier-authlib/authdaemond \
        courier/usr/lib/courier/courier-authlib/makedatprog courier/usr/bin/maildirmake.courier; do
        missing+=$(LD_LIBRARY_PATH=$root/courier/usr/lib:$root/courier/usr/lib/courier-authlib ldd "$root/$bin" 2>&1 | grep -E 'not found|No such file' | sed "s|^|$bin: |")
    done
    command -v saslpasswd2 >/dev/null 2>&1 || missing+="saslpasswd2 (sasl2-bin)"
    if [ -n "$missing" ]; then
        echo "error: the test servers in $root cannot run:" >&2
        echo "$missing" >&2
        return 1
    fi
}
