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
