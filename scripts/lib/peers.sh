#!/usr/bin/env bash
# Sourced by scripts/bench.sh: configuration files for the peers mailkeep is measured against,
# each pointed at the throwaway Dovecot of scripts/lib/dovecot.sh (127.0.0.1, its self-signed
# certificate $CA_PEM as the one trusted CA, TLS verified) and written 0600 (they hold the
# password, which never goes on a command line).
#
#   mbsync_rc FILE USER PW PORT MAILDIR DIRECTION [STATE]
#       isync 1.4 (mbsync): one channel `bench` between the IMAPS account (every folder,
#       `Patterns *`; host `localhost`, as mbsync 1.4 does not match a certificate's IP
#       address entries) and a Maildir++ tree MAILDIR (root = INBOX, `.Archive.2023`, names kept in
#       modified UTF-7, like Dovecot's and mailkeep's own layout). DIRECTION Pull: IMAP ->
#       Maildir, creating folders on the Maildir side, sync state in the store (`SyncState *`,
#       the .mbsyncstate file of each folder). DIRECTION Push: Maildir -> IMAP, creating
#       folders on the server, sync state under STATE (so a Maildir that is only read keeps no
#       state of this run). FSync is mbsync's default (yes).
#   mpop_rc FILE USER PW PORT MAILDIR UIDLS
#       mpop: account `bench`, POP3 over TLS on connect (pop3s), delivery to the Maildir
#       MAILDIR, messages kept on the server, no Received: header added (so the archive's
#       octets equal the server's), the UIDL state in UIDLS. Pipelining is mpop's default (auto).
#   getmail_rc FILE USER PW PORT MAILDIR [DELIVERY_USER]
#       getmail6: SimplePOP3SSLRetriever with ca_certs, Maildir destination, read_all, nothing
#       deleted, no Delivered-To:/Received: headers added. getmail refuses to deliver as root:
#       run as root, give DELIVERY_USER (its Maildir destination's `user`, the owner of MAILDIR).
#       Run it with scripts/lib/getmail-waitfix on PYTHONPATH (see there: getmail 6.18 can miss
#       the exit of its delivery child on a busy machine).

mbsync_rc() {
    local file=$1 user=$2 pw=$3 port=$4 maildir=$5 direction=$6 state=${7:-}
    local create=Near syncstate="*"
    if [ "$direction" = Push ]; then
        create=Far
        syncstate=$state/
    fi
    (
        umask 077
        cat >"$file" <<RC
IMAPAccount bench
Host localhost
Port $port
User $user
Pass $pw
SSLType IMAPS
CertificateFile $CA_PEM

IMAPStore bench-far
Account bench

MaildirStore bench-near
Inbox $maildir
SubFolders Maildir++

Channel bench
Far :bench-far:
Near :bench-near:
Patterns *
Create $create
Sync $direction
SyncState $syncstate
RC
    )
}

mpop_rc() {
    local file=$1 user=$2 pw=$3 port=$4 maildir=$5 uidls=$6
    (
        umask 077
        cat >"$file" <<RC
defaults
tls on
tls_starttls off
tls_trust_file $CA_PEM
keep on
only_new on
received_header off

account bench
host 127.0.0.1
port $port
user $user
auth user
password $pw
delivery maildir $maildir
uidls_file $uidls
RC
    )
}

getmail_rc() {
    local file=$1 user=$2 pw=$3 port=$4 maildir=$5 delivery_user=${6:-}
    (
        umask 077
        cat >"$file" <<RC
[retriever]
type = SimplePOP3SSLRetriever
server = 127.0.0.1
port = $port
username = $user
password = $pw
ca_certs = $CA_PEM

[destination]
type = Maildir
path = $maildir/
${delivery_user:+user = $delivery_user}

[options]
verbose = 0
read_all = true
delete = false
delivered_to = false
received = false
message_log_syslog = false
RC
    )
}
