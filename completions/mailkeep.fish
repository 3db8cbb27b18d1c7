# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_mailkeep_global_optspecs
    string join \n trace h/help V/version
end

function __fish_mailkeep_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_mailkeep_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_mailkeep_using_subcommand
    set -l cmd (__fish_mailkeep_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c mailkeep -n "__fish_mailkeep_needs_command" -l trace -d 'Write the protocol exchange with every server to stderr (`trace HOST:PORT#N C: ...` for what mailkeep sends, `S: ...` for what the server answers), to diagnose a server. The login exchange is shown as [redacted] (LOGIN, AUTHENTICATE, PASS, APOP, AUTH) and message bodies as [N octets]'
complete -c mailkeep -n "__fish_mailkeep_needs_command" -s h -l help -d 'Print help'
complete -c mailkeep -n "__fish_mailkeep_needs_command" -s V -l version -d 'Print version'
complete -c mailkeep -n "__fish_mailkeep_needs_command" -f -a "backup" -d 'Copy every message not yet archived from a mail server into a local archive'
complete -c mailkeep -n "__fish_mailkeep_needs_command" -f -a "restore" -d 'Upload an archive\'s messages to an IMAP account, with flags, keywords and dates, never twice'
complete -c mailkeep -n "__fish_mailkeep_needs_command" -f -a "migrate" -d 'Copy a mail account into an IMAP account: POP3 to IMAP or IMAP to IMAP, with flags, keywords and dates, never twice'
complete -c mailkeep -n "__fish_mailkeep_needs_command" -f -a "convert" -d 'Copy every message of one archive into another, with flags, keywords, dates and folders'
complete -c mailkeep -n "__fish_mailkeep_needs_command" -f -a "list" -d 'Show the mailboxes of an IMAP account (STATUS), or of a local archive with counts, sizes and dates; with --messages (archives) one line per message'
complete -c mailkeep -n "__fish_mailkeep_needs_command" -f -a "verify" -d 'Check a mailkeep archive: every message the ledger records is there with its SHA-256, mbox files parse, nothing is left in tmp/; with --against, compare with the server'
complete -c mailkeep -n "__fish_mailkeep_needs_command" -f -a "export" -d 'Write an archive\'s messages (all, or those matching the filters) as .eml files into a folder, one subfolder per mailbox, never overwriting a file'
complete -c mailkeep -n "__fish_mailkeep_needs_command" -f -a "quota" -d 'Show the quota usage and limits of an IMAP account (GETQUOTAROOT, RFC 9208)'
complete -c mailkeep -n "__fish_mailkeep_needs_command" -f -a "run" -d 'Run the jobs of a config file (all of them, in file order, or those named), as cron or a systemd timer would: each archive locked, temporary failures retried, one exit code'
complete -c mailkeep -n "__fish_mailkeep_needs_command" -f -a "prune" -d 'Delete from a server old messages whose exact bytes are verified in the archive, to free space'
complete -c mailkeep -n "__fish_mailkeep_needs_command" -f -a "completions" -d 'Print a shell completion script to stdout'
complete -c mailkeep -n "__fish_mailkeep_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c mailkeep -n "__fish_mailkeep_using_subcommand backup" -l password-env -d 'Read the password from this environment variable' -r
complete -c mailkeep -n "__fish_mailkeep_using_subcommand backup" -l password-command -d 'Run this shell command and use the first line of its output as the password' -r
complete -c mailkeep -n "__fish_mailkeep_using_subcommand backup" -l password-file -d 'Read the password from the first line of this file (must not be readable by group or others: chmod 600)' -r -F
complete -c mailkeep -n "__fish_mailkeep_using_subcommand backup" -l tls-ca -d 'Trust this CA certificate (PEM) in addition to the system\'s, e.g. for a server with a self-signed or private-CA certificate' -r -F
complete -c mailkeep -n "__fish_mailkeep_using_subcommand backup" -l tls-fingerprint -d 'Accept only the server certificate with this SHA-256 fingerprint (64 hex digits, colons optional, as `openssl x509 -noout -fingerprint -sha256` prints). With a pin, the certificate chain and host name are not checked: a pinned self-signed certificate works without --tls-ca' -r
complete -c mailkeep -n "__fish_mailkeep_using_subcommand backup" -l auth -d 'Authentication mechanism' -r -f -a "auto\t'POP3: SASL PLAIN when offered, else USER/PASS (APOP on a plaintext session). IMAP: AUTHENTICATE PLAIN when offered, else LOGIN; XOAUTH2 with --oauth2-token-command'
plain\t'SASL PLAIN (RFC 5034 for POP3)'
user\t'USER and PASS (RFC 1939 7)'
apop\t'APOP (RFC 1939 7): the password itself is not sent (POP3 only)'
login\t'IMAP LOGIN (RFC 3501 6.2.3)'
xoauth2\t'SASL XOAUTH2 with a token from --oauth2-token-command (Gmail, Microsoft 365)'
oauthbearer\t'SASL OAUTHBEARER (RFC 7628) with a token from --oauth2-token-command'"
complete -c mailkeep -n "__fish_mailkeep_using_subcommand backup" -l oauth2-token-command -d 'Run this shell command and use the first line of its output as an OAuth2 access token (XOAUTH2 / OAUTHBEARER, as Gmail and Microsoft 365 require). Implies --auth xoauth2 unless --auth oauthbearer is given' -r
complete -c mailkeep -n "__fish_mailkeep_using_subcommand backup" -l connect-timeout -d 'Seconds to wait for a TCP connection and TLS handshake' -r
complete -c mailkeep -n "__fish_mailkeep_using_subcommand backup" -l timeout -d 'Seconds to wait for any reply from the server before giving up' -r
complete -c mailkeep -n "__fish_mailkeep_using_subcommand backup" -l keep-days -d 'Delete from the server only messages archived at least this many days ago (so the server keeps recent mail for other devices). Implies --delete-after-backup' -r
complete -c mailkeep -n "__fish_mailkeep_using_subcommand backup" -l folder -d 'IMAP: back up only mailboxes matching this pattern (repeatable; `*` stays within one level, `**` crosses levels, `?` is one character, anything else matches itself, so `[Gmail]/All Mail` is that folder; `glob:PATTERN` for the whole glob syntax; names as LIST shows them decoded, levels joined with `/`). A pattern matching no mailbox is an error' -r
complete -c mailkeep -n "__fish_mailkeep_using_subcommand backup" -l exclude -d 'IMAP: skip mailboxes matching this pattern (repeatable; as --folder)' -r
complete -c mailkeep -n "__fish_mailkeep_using_subcommand backup" -l jobs -d 'IMAP: connections working on different mailboxes at once' -r
complete -c mailkeep -n "__fish_mailkeep_using_subcommand backup" -l max-message-size -d 'Refuse a message larger than SIZE bytes (a number, or with K, M or G: 50M, 2G), from a server or an archive, before reading it into memory or writing it anywhere: it is named, counted as failed (exit 1) and tried again next run' -r
complete -c mailkeep -n "__fish_mailkeep_using_subcommand backup" -l allow-plaintext -d 'Allow logging in without TLS when a pop3:// or imap:// server offers no STLS/STARTTLS. The password then crosses the network readable by anyone on the path'
complete -c mailkeep -n "__fish_mailkeep_using_subcommand backup" -l store -d 'zip: store messages uncompressed instead of deflating them'
complete -c mailkeep -n "__fish_mailkeep_using_subcommand backup" -l delete-after-backup -d 'After every message is durably archived and recorded, delete the archived messages from the server (POP3 DELE). Nothing is deleted when anything in the run failed'
complete -c mailkeep -n "__fish_mailkeep_using_subcommand backup" -l mirror -d 'IMAP: remove from a Maildir archive the messages that were deleted on the server (only after a complete listing of that mailbox). Without it the archive keeps them'
complete -c mailkeep -n "__fish_mailkeep_using_subcommand backup" -l dedup -d 'IMAP: store a message whose exact bytes are already in the archive only once (e.g. Gmail folder by folder, whose `[Gmail]/All Mail` holds every message again; a Gmail backup by label stores each message once without it). The ledger still records it in every mailbox'
complete -c mailkeep -n "__fish_mailkeep_using_subcommand backup" -l gmail-folders -d 'Gmail: back up folder by folder like any server (one copy per label folder, All Mail included) instead of each message once with its labels (the default for a server with X-GM-EXT-1 when no --folder or --exclude is given)'
complete -c mailkeep -n "__fish_mailkeep_using_subcommand backup" -l gmail-spam-trash -d 'Gmail: a backup by label includes Spam and Trash (left out by default)'
complete -c mailkeep -n "__fish_mailkeep_using_subcommand backup" -s q -l quiet -d 'Print nothing on success; errors still go to stderr'
complete -c mailkeep -n "__fish_mailkeep_using_subcommand backup" -l json -d 'Print the run\'s report as one JSON object on stdout'
complete -c mailkeep -n "__fish_mailkeep_using_subcommand backup" -l trace -d 'Write the protocol exchange with every server to stderr (`trace HOST:PORT#N C: ...` for what mailkeep sends, `S: ...` for what the server answers), to diagnose a server. The login exchange is shown as [redacted] (LOGIN, AUTHENTICATE, PASS, APOP, AUTH) and message bodies as [N octets]'
complete -c mailkeep -n "__fish_mailkeep_using_subcommand backup" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c mailkeep -n "__fish_mailkeep_using_subcommand backup" -s V -l version -d 'Print version'
complete -c mailkeep -n "__fish_mailkeep_using_subcommand restore" -l password-env -d 'Read the password from this environment variable' -r
complete -c mailkeep -n "__fish_mailkeep_using_subcommand restore" -l password-command -d 'Run this shell command and use the first line of its output as the password' -r
complete -c mailkeep -n "__fish_mailkeep_using_subcommand restore" -l password-file -d 'Read the password from the first line of this file (must not be readable by group or others: chmod 600)' -r -F
complete -c mailkeep -n "__fish_mailkeep_using_subcommand restore" -l tls-ca -d 'Trust this CA certificate (PEM) in addition to the system\'s, e.g. for a server with a self-signed or private-CA certificate' -r -F
complete -c mailkeep -n "__fish_mailkeep_using_subcommand restore" -l tls-fingerprint -d 'Accept only the server certificate with this SHA-256 fingerprint (64 hex digits, colons optional, as `openssl x509 -noout -fingerprint -sha256` prints). With a pin, the certificate chain and host name are not checked: a pinned self-signed certificate works without --tls-ca' -r
complete -c mailkeep -n "__fish_mailkeep_using_subcommand restore" -l auth -d 'Authentication mechanism' -r -f -a "auto\t'POP3: SASL PLAIN when offered, else USER/PASS (APOP on a plaintext session). IMAP: AUTHENTICATE PLAIN when offered, else LOGIN; XOAUTH2 with --oauth2-token-command'
plain\t'SASL PLAIN (RFC 5034 for POP3)'
user\t'USER and PASS (RFC 1939 7)'
apop\t'APOP (RFC 1939 7): the password itself is not sent (POP3 only)'
login\t'IMAP LOGIN (RFC 3501 6.2.3)'
xoauth2\t'SASL XOAUTH2 with a token from --oauth2-token-command (Gmail, Microsoft 365)'
oauthbearer\t'SASL OAUTHBEARER (RFC 7628) with a token from --oauth2-token-command'"
complete -c mailkeep -n "__fish_mailkeep_using_subcommand restore" -l oauth2-token-command -d 'Run this shell command and use the first line of its output as an OAuth2 access token (XOAUTH2 / OAUTHBEARER, as Gmail and Microsoft 365 require). Implies --auth xoauth2 unless --auth oauthbearer is given' -r
complete -c mailkeep -n "__fish_mailkeep_using_subcommand restore" -l connect-timeout -d 'Seconds to wait for a TCP connection and TLS handshake' -r
complete -c mailkeep -n "__fish_mailkeep_using_subcommand restore" -l timeout -d 'Seconds to wait for any reply from the server before giving up' -r
complete -c mailkeep -n "__fish_mailkeep_using_subcommand restore" -l into -d 'Put every mailbox under this folder (levels separated by `/`, e.g. `Restored/2024`); INBOX becomes PREFIX/INBOX' -r
complete -c mailkeep -n "__fish_mailkeep_using_subcommand restore" -l map -d 'Restore the archive\'s mailbox SRC (and its subfolders) as DST (repeatable; names with levels separated by `/`, e.g. --map \'Sent Items=Sent\')' -r
complete -c mailkeep -n "__fish_mailkeep_using_subcommand restore" -l jobs -d 'Connections uploading to different target mailboxes at once' -r
complete -c mailkeep -n "__fish_mailkeep_using_subcommand restore" -l max-message-size -d 'Refuse a message larger than SIZE bytes (a number, or with K, M or G: 50M, 2G), from a server or an archive, before reading it into memory or writing it anywhere: it is named, counted as failed (exit 1) and tried again next run' -r
complete -c mailkeep -n "__fish_mailkeep_using_subcommand restore" -l allow-plaintext -d 'Allow logging in without TLS when a pop3:// or imap:// server offers no STLS/STARTTLS. The password then crosses the network readable by anyone on the path'
complete -c mailkeep -n "__fish_mailkeep_using_subcommand restore" -l dry-run -d 'Print the plan (folder mapping, messages to upload and already present per folder) and change nothing: no folder created, no message appended, nothing recorded'
complete -c mailkeep -n "__fish_mailkeep_using_subcommand restore" -s q -l quiet -d 'Print nothing on success; errors still go to stderr'
complete -c mailkeep -n "__fish_mailkeep_using_subcommand restore" -l json -d 'Print the run\'s report as one JSON object on stdout'
complete -c mailkeep -n "__fish_mailkeep_using_subcommand restore" -l trace -d 'Write the protocol exchange with every server to stderr (`trace HOST:PORT#N C: ...` for what mailkeep sends, `S: ...` for what the server answers), to diagnose a server. The login exchange is shown as [redacted] (LOGIN, AUTHENTICATE, PASS, APOP, AUTH) and message bodies as [N octets]'
complete -c mailkeep -n "__fish_mailkeep_using_subcommand restore" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c mailkeep -n "__fish_mailkeep_using_subcommand restore" -s V -l version -d 'Print version'
complete -c mailkeep -n "__fish_mailkeep_using_subcommand migrate" -l source-password-env -d 'Read the source server\'s password from this environment variable' -r
complete -c mailkeep -n "__fish_mailkeep_using_subcommand migrate" -l source-password-command -d 'Run this shell command and use the first line of its output as the source password' -r
complete -c mailkeep -n "__fish_mailkeep_using_subcommand migrate" -l source-password-file -d 'Read the source password from the first line of this file (chmod 600)' -r -F
complete -c mailkeep -n "__fish_mailkeep_using_subcommand migrate" -l source-tls-ca -d 'Trust this CA certificate (PEM) for the source server' -r -F
complete -c mailkeep -n "__fish_mailkeep_using_subcommand migrate" -l source-tls-fingerprint -d 'Accept only the source server certificate with this SHA-256 fingerprint (chain and host name are then not checked)' -r
complete -c mailkeep -n "__fish_mailkeep_using_subcommand migrate" -l source-auth -d 'Authentication mechanism for the source' -r -f -a "auto\t'POP3: SASL PLAIN when offered, else USER/PASS (APOP on a plaintext session). IMAP: AUTHENTICATE PLAIN when offered, else LOGIN; XOAUTH2 with --oauth2-token-command'
plain\t'SASL PLAIN (RFC 5034 for POP3)'
user\t'USER and PASS (RFC 1939 7)'
apop\t'APOP (RFC 1939 7): the password itself is not sent (POP3 only)'
login\t'IMAP LOGIN (RFC 3501 6.2.3)'
xoauth2\t'SASL XOAUTH2 with a token from --oauth2-token-command (Gmail, Microsoft 365)'
oauthbearer\t'SASL OAUTHBEARER (RFC 7628) with a token from --oauth2-token-command'"
complete -c mailkeep -n "__fish_mailkeep_using_subcommand migrate" -l source-oauth2-token-command -d 'OAuth2 access token command for the source (XOAUTH2 / OAUTHBEARER)' -r
complete -c mailkeep -n "__fish_mailkeep_using_subcommand migrate" -l target-password-env -d 'Read the target server\'s password from this environment variable' -r
complete -c mailkeep -n "__fish_mailkeep_using_subcommand migrate" -l target-password-command -d 'Run this shell command and use the first line of its output as the target password' -r
complete -c mailkeep -n "__fish_mailkeep_using_subcommand migrate" -l target-password-file -d 'Read the target password from the first line of this file (chmod 600)' -r -F
complete -c mailkeep -n "__fish_mailkeep_using_subcommand migrate" -l target-tls-ca -d 'Trust this CA certificate (PEM) for the target server' -r -F
complete -c mailkeep -n "__fish_mailkeep_using_subcommand migrate" -l target-tls-fingerprint -d 'Accept only the target server certificate with this SHA-256 fingerprint (chain and host name are then not checked)' -r
complete -c mailkeep -n "__fish_mailkeep_using_subcommand migrate" -l target-auth -d 'Authentication mechanism for the target' -r -f -a "auto\t'POP3: SASL PLAIN when offered, else USER/PASS (APOP on a plaintext session). IMAP: AUTHENTICATE PLAIN when offered, else LOGIN; XOAUTH2 with --oauth2-token-command'
plain\t'SASL PLAIN (RFC 5034 for POP3)'
user\t'USER and PASS (RFC 1939 7)'
apop\t'APOP (RFC 1939 7): the password itself is not sent (POP3 only)'
login\t'IMAP LOGIN (RFC 3501 6.2.3)'
xoauth2\t'SASL XOAUTH2 with a token from --oauth2-token-command (Gmail, Microsoft 365)'
oauthbearer\t'SASL OAUTHBEARER (RFC 7628) with a token from --oauth2-token-command'"
complete -c mailkeep -n "__fish_mailkeep_using_subcommand migrate" -l target-oauth2-token-command -d 'OAuth2 access token command for the target (XOAUTH2 / OAUTHBEARER)' -r
complete -c mailkeep -n "__fish_mailkeep_using_subcommand migrate" -l connect-timeout -d 'Seconds to wait for a TCP connection and TLS handshake (both servers)' -r
complete -c mailkeep -n "__fish_mailkeep_using_subcommand migrate" -l timeout -d 'Seconds to wait for any reply from a server before giving up (both servers)' -r
complete -c mailkeep -n "__fish_mailkeep_using_subcommand migrate" -l via -d 'First back up SOURCE into this local archive (maildir:PATH or mbox:PATH, as `backup` does), then restore from it: a local copy exists when the migration is over' -r
complete -c mailkeep -n "__fish_mailkeep_using_subcommand migrate" -l folder -d 'IMAP source: copy only mailboxes matching this pattern (repeatable; as for backup)' -r
complete -c mailkeep -n "__fish_mailkeep_using_subcommand migrate" -l exclude -d 'IMAP source: skip mailboxes matching this pattern (repeatable; as for backup)' -r
complete -c mailkeep -n "__fish_mailkeep_using_subcommand migrate" -l into -d 'Put every mailbox under this folder on the target (levels separated by `/`)' -r
complete -c mailkeep -n "__fish_mailkeep_using_subcommand migrate" -l map -d 'Copy the source mailbox SRC (and its subfolders) as DST (repeatable)' -r
complete -c mailkeep -n "__fish_mailkeep_using_subcommand migrate" -l jobs -d 'IMAP source: connection pairs working on different mailboxes at once (a POP3 source is read by one connection)' -r
complete -c mailkeep -n "__fish_mailkeep_using_subcommand migrate" -l max-message-size -d 'Refuse a message larger than SIZE bytes (a number, or with K, M or G: 50M, 2G), from a server or an archive, before reading it into memory or writing it anywhere: it is named, counted as failed (exit 1) and tried again next run' -r
complete -c mailkeep -n "__fish_mailkeep_using_subcommand migrate" -l source-allow-plaintext -d 'Allow logging in to a pop3:// or imap:// source without TLS when it offers none'
complete -c mailkeep -n "__fish_mailkeep_using_subcommand migrate" -l target-allow-plaintext -d 'Allow logging in to an imap:// target without TLS when it offers no STARTTLS'
complete -c mailkeep -n "__fish_mailkeep_using_subcommand migrate" -l delete-after-migrate -d 'POP3: after the run, delete from the source the messages the target holds (appended or found there, as recorded). Nothing is deleted when anything in the run failed'
complete -c mailkeep -n "__fish_mailkeep_using_subcommand migrate" -l seen -d 'POP3: upload the messages as read (\\Seen). POP3 has no flags, so without it they arrive unread'
complete -c mailkeep -n "__fish_mailkeep_using_subcommand migrate" -l dry-run -d 'Print the plan (folder mapping, messages to copy and already present per folder) and change nothing on either server'
complete -c mailkeep -n "__fish_mailkeep_using_subcommand migrate" -s q -l quiet -d 'Print nothing on success; errors still go to stderr'
complete -c mailkeep -n "__fish_mailkeep_using_subcommand migrate" -l json -d 'Print the run\'s report as one JSON object on stdout'
complete -c mailkeep -n "__fish_mailkeep_using_subcommand migrate" -l trace -d 'Write the protocol exchange with every server to stderr (`trace HOST:PORT#N C: ...` for what mailkeep sends, `S: ...` for what the server answers), to diagnose a server. The login exchange is shown as [redacted] (LOGIN, AUTHENTICATE, PASS, APOP, AUTH) and message bodies as [N octets]'
complete -c mailkeep -n "__fish_mailkeep_using_subcommand migrate" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c mailkeep -n "__fish_mailkeep_using_subcommand migrate" -s V -l version -d 'Print version'
complete -c mailkeep -n "__fish_mailkeep_using_subcommand convert" -l max-message-size -d 'Refuse a message larger than SIZE bytes (a number, or with K, M or G: 50M, 2G), from a server or an archive, before reading it into memory or writing it anywhere: it is named, counted as failed (exit 1) and tried again next run' -r
complete -c mailkeep -n "__fish_mailkeep_using_subcommand convert" -l store -d 'zip: store messages uncompressed instead of deflating them'
complete -c mailkeep -n "__fish_mailkeep_using_subcommand convert" -s q -l quiet -d 'Print nothing on success; errors still go to stderr'
complete -c mailkeep -n "__fish_mailkeep_using_subcommand convert" -l json -d 'Print the run\'s report as one JSON object on stdout'
complete -c mailkeep -n "__fish_mailkeep_using_subcommand convert" -l trace -d 'Write the protocol exchange with every server to stderr (`trace HOST:PORT#N C: ...` for what mailkeep sends, `S: ...` for what the server answers), to diagnose a server. The login exchange is shown as [redacted] (LOGIN, AUTHENTICATE, PASS, APOP, AUTH) and message bodies as [N octets]'
complete -c mailkeep -n "__fish_mailkeep_using_subcommand convert" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c mailkeep -n "__fish_mailkeep_using_subcommand convert" -s V -l version -d 'Print version'
complete -c mailkeep -n "__fish_mailkeep_using_subcommand list" -l password-env -d 'Read the password from this environment variable' -r
complete -c mailkeep -n "__fish_mailkeep_using_subcommand list" -l password-command -d 'Run this shell command and use the first line of its output as the password' -r
complete -c mailkeep -n "__fish_mailkeep_using_subcommand list" -l password-file -d 'Read the password from the first line of this file (must not be readable by group or others: chmod 600)' -r -F
complete -c mailkeep -n "__fish_mailkeep_using_subcommand list" -l tls-ca -d 'Trust this CA certificate (PEM) in addition to the system\'s, e.g. for a server with a self-signed or private-CA certificate' -r -F
complete -c mailkeep -n "__fish_mailkeep_using_subcommand list" -l tls-fingerprint -d 'Accept only the server certificate with this SHA-256 fingerprint (64 hex digits, colons optional, as `openssl x509 -noout -fingerprint -sha256` prints). With a pin, the certificate chain and host name are not checked: a pinned self-signed certificate works without --tls-ca' -r
complete -c mailkeep -n "__fish_mailkeep_using_subcommand list" -l auth -d 'Authentication mechanism' -r -f -a "auto\t'POP3: SASL PLAIN when offered, else USER/PASS (APOP on a plaintext session). IMAP: AUTHENTICATE PLAIN when offered, else LOGIN; XOAUTH2 with --oauth2-token-command'
plain\t'SASL PLAIN (RFC 5034 for POP3)'
user\t'USER and PASS (RFC 1939 7)'
apop\t'APOP (RFC 1939 7): the password itself is not sent (POP3 only)'
login\t'IMAP LOGIN (RFC 3501 6.2.3)'
xoauth2\t'SASL XOAUTH2 with a token from --oauth2-token-command (Gmail, Microsoft 365)'
oauthbearer\t'SASL OAUTHBEARER (RFC 7628) with a token from --oauth2-token-command'"
complete -c mailkeep -n "__fish_mailkeep_using_subcommand list" -l oauth2-token-command -d 'Run this shell command and use the first line of its output as an OAuth2 access token (XOAUTH2 / OAUTHBEARER, as Gmail and Microsoft 365 require). Implies --auth xoauth2 unless --auth oauthbearer is given' -r
complete -c mailkeep -n "__fish_mailkeep_using_subcommand list" -l connect-timeout -d 'Seconds to wait for a TCP connection and TLS handshake' -r
complete -c mailkeep -n "__fish_mailkeep_using_subcommand list" -l timeout -d 'Seconds to wait for any reply from the server before giving up' -r
complete -c mailkeep -n "__fish_mailkeep_using_subcommand list" -l max-message-size -d 'Refuse a message larger than SIZE bytes (a number, or with K, M or G: 50M, 2G), from a server or an archive, before reading it into memory or writing it anywhere: it is named, counted as failed (exit 1) and tried again next run' -r
complete -c mailkeep -n "__fish_mailkeep_using_subcommand list" -l allow-plaintext -d 'Allow logging in without TLS when a pop3:// or imap:// server offers no STLS/STARTTLS. The password then crosses the network readable by anyone on the path'
complete -c mailkeep -n "__fish_mailkeep_using_subcommand list" -l json -d 'Print JSON instead of a table'
complete -c mailkeep -n "__fish_mailkeep_using_subcommand list" -l messages -d 'Archives: one line per message (date, size, flags, sender, subject decoded)'
complete -c mailkeep -n "__fish_mailkeep_using_subcommand list" -l trace -d 'Write the protocol exchange with every server to stderr (`trace HOST:PORT#N C: ...` for what mailkeep sends, `S: ...` for what the server answers), to diagnose a server. The login exchange is shown as [redacted] (LOGIN, AUTHENTICATE, PASS, APOP, AUTH) and message bodies as [N octets]'
complete -c mailkeep -n "__fish_mailkeep_using_subcommand list" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c mailkeep -n "__fish_mailkeep_using_subcommand list" -s V -l version -d 'Print version'
complete -c mailkeep -n "__fish_mailkeep_using_subcommand verify" -l against -d 'Also list this account (imaps://, imap://, pop3s://, pop3://USER@HOST[:PORT]) and report per mailbox what is on the server, in the archive, missing from it, only in it' -r
complete -c mailkeep -n "__fish_mailkeep_using_subcommand verify" -l password-env -d 'Read the password from this environment variable' -r
complete -c mailkeep -n "__fish_mailkeep_using_subcommand verify" -l password-command -d 'Run this shell command and use the first line of its output as the password' -r
complete -c mailkeep -n "__fish_mailkeep_using_subcommand verify" -l password-file -d 'Read the password from the first line of this file (must not be readable by group or others: chmod 600)' -r -F
complete -c mailkeep -n "__fish_mailkeep_using_subcommand verify" -l tls-ca -d 'Trust this CA certificate (PEM) in addition to the system\'s, e.g. for a server with a self-signed or private-CA certificate' -r -F
complete -c mailkeep -n "__fish_mailkeep_using_subcommand verify" -l tls-fingerprint -d 'Accept only the server certificate with this SHA-256 fingerprint (64 hex digits, colons optional, as `openssl x509 -noout -fingerprint -sha256` prints). With a pin, the certificate chain and host name are not checked: a pinned self-signed certificate works without --tls-ca' -r
complete -c mailkeep -n "__fish_mailkeep_using_subcommand verify" -l auth -d 'Authentication mechanism' -r -f -a "auto\t'POP3: SASL PLAIN when offered, else USER/PASS (APOP on a plaintext session). IMAP: AUTHENTICATE PLAIN when offered, else LOGIN; XOAUTH2 with --oauth2-token-command'
plain\t'SASL PLAIN (RFC 5034 for POP3)'
user\t'USER and PASS (RFC 1939 7)'
apop\t'APOP (RFC 1939 7): the password itself is not sent (POP3 only)'
login\t'IMAP LOGIN (RFC 3501 6.2.3)'
xoauth2\t'SASL XOAUTH2 with a token from --oauth2-token-command (Gmail, Microsoft 365)'
oauthbearer\t'SASL OAUTHBEARER (RFC 7628) with a token from --oauth2-token-command'"
complete -c mailkeep -n "__fish_mailkeep_using_subcommand verify" -l oauth2-token-command -d 'Run this shell command and use the first line of its output as an OAuth2 access token (XOAUTH2 / OAUTHBEARER, as Gmail and Microsoft 365 require). Implies --auth xoauth2 unless --auth oauthbearer is given' -r
complete -c mailkeep -n "__fish_mailkeep_using_subcommand verify" -l connect-timeout -d 'Seconds to wait for a TCP connection and TLS handshake' -r
complete -c mailkeep -n "__fish_mailkeep_using_subcommand verify" -l timeout -d 'Seconds to wait for any reply from the server before giving up' -r
complete -c mailkeep -n "__fish_mailkeep_using_subcommand verify" -l folder -d 'With --against an IMAP account: compare only mailboxes matching this pattern (repeatable; as backup\'s --folder)' -r
complete -c mailkeep -n "__fish_mailkeep_using_subcommand verify" -l exclude -d 'With --against an IMAP account: leave out mailboxes matching this pattern (repeatable)' -r
complete -c mailkeep -n "__fish_mailkeep_using_subcommand verify" -l max-message-size -d 'Refuse a message larger than SIZE bytes (a number, or with K, M or G: 50M, 2G), from a server or an archive, before reading it into memory or writing it anywhere: it is named, counted as failed (exit 1) and tried again next run' -r
complete -c mailkeep -n "__fish_mailkeep_using_subcommand verify" -l allow-plaintext -d 'Allow logging in without TLS when a pop3:// or imap:// server offers no STLS/STARTTLS. The password then crosses the network readable by anyone on the path'
complete -c mailkeep -n "__fish_mailkeep_using_subcommand verify" -s q -l quiet -d 'Print nothing when everything checks out'
complete -c mailkeep -n "__fish_mailkeep_using_subcommand verify" -l json -d 'Print the report as one JSON object on stdout'
complete -c mailkeep -n "__fish_mailkeep_using_subcommand verify" -l trace -d 'Write the protocol exchange with every server to stderr (`trace HOST:PORT#N C: ...` for what mailkeep sends, `S: ...` for what the server answers), to diagnose a server. The login exchange is shown as [redacted] (LOGIN, AUTHENTICATE, PASS, APOP, AUTH) and message bodies as [N octets]'
complete -c mailkeep -n "__fish_mailkeep_using_subcommand verify" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c mailkeep -n "__fish_mailkeep_using_subcommand verify" -s V -l version -d 'Print version'
complete -c mailkeep -n "__fish_mailkeep_using_subcommand export" -l to -d 'The folder to write into (created if missing; must be outside the archive)' -r -F
complete -c mailkeep -n "__fish_mailkeep_using_subcommand export" -l mailbox -d 'Only mailboxes matching this pattern (repeatable; `*` stays within one level, `**` crosses levels, as backup\'s --folder)' -r
complete -c mailkeep -n "__fish_mailkeep_using_subcommand export" -l since -d 'Only messages dated on or after this day (YYYY-MM-DD, UTC)' -r
complete -c mailkeep -n "__fish_mailkeep_using_subcommand export" -l before -d 'Only messages dated before this day (YYYY-MM-DD, UTC)' -r
complete -c mailkeep -n "__fish_mailkeep_using_subcommand export" -l from -d 'Only messages whose decoded From: header (`Name <address>`) contains this text (any case)' -r
complete -c mailkeep -n "__fish_mailkeep_using_subcommand export" -l subject -d 'Only messages whose decoded Subject: contains this text (any case)' -r
complete -c mailkeep -n "__fish_mailkeep_using_subcommand export" -l max-message-size -d 'Refuse a message larger than SIZE bytes (a number, or with K, M or G: 50M, 2G), from a server or an archive, before reading it into memory or writing it anywhere: it is named, counted as failed (exit 1) and tried again next run' -r
complete -c mailkeep -n "__fish_mailkeep_using_subcommand export" -l crlf -d 'Write CRLF line ends (the RFC 5322 form) instead of the stored LF'
complete -c mailkeep -n "__fish_mailkeep_using_subcommand export" -s q -l quiet -d 'Print nothing on success; errors still go to stderr'
complete -c mailkeep -n "__fish_mailkeep_using_subcommand export" -l json -d 'Print the run\'s report as one JSON object on stdout'
complete -c mailkeep -n "__fish_mailkeep_using_subcommand export" -l trace -d 'Write the protocol exchange with every server to stderr (`trace HOST:PORT#N C: ...` for what mailkeep sends, `S: ...` for what the server answers), to diagnose a server. The login exchange is shown as [redacted] (LOGIN, AUTHENTICATE, PASS, APOP, AUTH) and message bodies as [N octets]'
complete -c mailkeep -n "__fish_mailkeep_using_subcommand export" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c mailkeep -n "__fish_mailkeep_using_subcommand export" -s V -l version -d 'Print version'
complete -c mailkeep -n "__fish_mailkeep_using_subcommand quota" -l password-env -d 'Read the password from this environment variable' -r
complete -c mailkeep -n "__fish_mailkeep_using_subcommand quota" -l password-command -d 'Run this shell command and use the first line of its output as the password' -r
complete -c mailkeep -n "__fish_mailkeep_using_subcommand quota" -l password-file -d 'Read the password from the first line of this file (must not be readable by group or others: chmod 600)' -r -F
complete -c mailkeep -n "__fish_mailkeep_using_subcommand quota" -l tls-ca -d 'Trust this CA certificate (PEM) in addition to the system\'s, e.g. for a server with a self-signed or private-CA certificate' -r -F
complete -c mailkeep -n "__fish_mailkeep_using_subcommand quota" -l tls-fingerprint -d 'Accept only the server certificate with this SHA-256 fingerprint (64 hex digits, colons optional, as `openssl x509 -noout -fingerprint -sha256` prints). With a pin, the certificate chain and host name are not checked: a pinned self-signed certificate works without --tls-ca' -r
complete -c mailkeep -n "__fish_mailkeep_using_subcommand quota" -l auth -d 'Authentication mechanism' -r -f -a "auto\t'POP3: SASL PLAIN when offered, else USER/PASS (APOP on a plaintext session). IMAP: AUTHENTICATE PLAIN when offered, else LOGIN; XOAUTH2 with --oauth2-token-command'
plain\t'SASL PLAIN (RFC 5034 for POP3)'
user\t'USER and PASS (RFC 1939 7)'
apop\t'APOP (RFC 1939 7): the password itself is not sent (POP3 only)'
login\t'IMAP LOGIN (RFC 3501 6.2.3)'
xoauth2\t'SASL XOAUTH2 with a token from --oauth2-token-command (Gmail, Microsoft 365)'
oauthbearer\t'SASL OAUTHBEARER (RFC 7628) with a token from --oauth2-token-command'"
complete -c mailkeep -n "__fish_mailkeep_using_subcommand quota" -l oauth2-token-command -d 'Run this shell command and use the first line of its output as an OAuth2 access token (XOAUTH2 / OAUTHBEARER, as Gmail and Microsoft 365 require). Implies --auth xoauth2 unless --auth oauthbearer is given' -r
complete -c mailkeep -n "__fish_mailkeep_using_subcommand quota" -l connect-timeout -d 'Seconds to wait for a TCP connection and TLS handshake' -r
complete -c mailkeep -n "__fish_mailkeep_using_subcommand quota" -l timeout -d 'Seconds to wait for any reply from the server before giving up' -r
complete -c mailkeep -n "__fish_mailkeep_using_subcommand quota" -l warn-at -d 'Warn (and exit 1) when a quota resource is used above this percentage' -r
complete -c mailkeep -n "__fish_mailkeep_using_subcommand quota" -l allow-plaintext -d 'Allow logging in without TLS when a pop3:// or imap:// server offers no STLS/STARTTLS. The password then crosses the network readable by anyone on the path'
complete -c mailkeep -n "__fish_mailkeep_using_subcommand quota" -l json -d 'Print JSON instead of a table'
complete -c mailkeep -n "__fish_mailkeep_using_subcommand quota" -l trace -d 'Write the protocol exchange with every server to stderr (`trace HOST:PORT#N C: ...` for what mailkeep sends, `S: ...` for what the server answers), to diagnose a server. The login exchange is shown as [redacted] (LOGIN, AUTHENTICATE, PASS, APOP, AUTH) and message bodies as [N octets]'
complete -c mailkeep -n "__fish_mailkeep_using_subcommand quota" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c mailkeep -n "__fish_mailkeep_using_subcommand quota" -s V -l version -d 'Print version'
complete -c mailkeep -n "__fish_mailkeep_using_subcommand run" -l config -d 'The config file (default: $XDG_CONFIG_HOME/mailkeep/config.toml, else ~/.config/mailkeep/config.toml)' -r -F
complete -c mailkeep -n "__fish_mailkeep_using_subcommand run" -l log-file -d 'Append one line per event (job started, retried, finished, with counts) to this file, created private (0600). Overrides the config file\'s `log_file`' -r -F
complete -c mailkeep -n "__fish_mailkeep_using_subcommand run" -l check -d 'Check the config file and print the jobs it would run; run nothing'
complete -c mailkeep -n "__fish_mailkeep_using_subcommand run" -s q -l quiet -d 'Print nothing on success; errors still go to stderr (cron mails only failures)'
complete -c mailkeep -n "__fish_mailkeep_using_subcommand run" -l json -d 'Print one JSON report per job on stdout (one object per line)'
complete -c mailkeep -n "__fish_mailkeep_using_subcommand run" -l trace -d 'Write the protocol exchange with every server to stderr (`trace HOST:PORT#N C: ...` for what mailkeep sends, `S: ...` for what the server answers), to diagnose a server. The login exchange is shown as [redacted] (LOGIN, AUTHENTICATE, PASS, APOP, AUTH) and message bodies as [N octets]'
complete -c mailkeep -n "__fish_mailkeep_using_subcommand run" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c mailkeep -n "__fish_mailkeep_using_subcommand run" -s V -l version -d 'Print version'
complete -c mailkeep -n "__fish_mailkeep_using_subcommand prune" -l archive -d 'The archive it was backed up into: maildir:PATH, mbox:PATH or a mailkeep archive\'s PATH' -r
complete -c mailkeep -n "__fish_mailkeep_using_subcommand prune" -l older-than -d 'Delete only messages older than this: days (`365d`), weeks (`8w`) or years (`2y`, 365 days each), counted back from now; IMAP by INTERNALDATE, POP3 by the archived date' -r
complete -c mailkeep -n "__fish_mailkeep_using_subcommand prune" -l password-env -d 'Read the password from this environment variable' -r
complete -c mailkeep -n "__fish_mailkeep_using_subcommand prune" -l password-command -d 'Run this shell command and use the first line of its output as the password' -r
complete -c mailkeep -n "__fish_mailkeep_using_subcommand prune" -l password-file -d 'Read the password from the first line of this file (must not be readable by group or others: chmod 600)' -r -F
complete -c mailkeep -n "__fish_mailkeep_using_subcommand prune" -l tls-ca -d 'Trust this CA certificate (PEM) in addition to the system\'s, e.g. for a server with a self-signed or private-CA certificate' -r -F
complete -c mailkeep -n "__fish_mailkeep_using_subcommand prune" -l tls-fingerprint -d 'Accept only the server certificate with this SHA-256 fingerprint (64 hex digits, colons optional, as `openssl x509 -noout -fingerprint -sha256` prints). With a pin, the certificate chain and host name are not checked: a pinned self-signed certificate works without --tls-ca' -r
complete -c mailkeep -n "__fish_mailkeep_using_subcommand prune" -l auth -d 'Authentication mechanism' -r -f -a "auto\t'POP3: SASL PLAIN when offered, else USER/PASS (APOP on a plaintext session). IMAP: AUTHENTICATE PLAIN when offered, else LOGIN; XOAUTH2 with --oauth2-token-command'
plain\t'SASL PLAIN (RFC 5034 for POP3)'
user\t'USER and PASS (RFC 1939 7)'
apop\t'APOP (RFC 1939 7): the password itself is not sent (POP3 only)'
login\t'IMAP LOGIN (RFC 3501 6.2.3)'
xoauth2\t'SASL XOAUTH2 with a token from --oauth2-token-command (Gmail, Microsoft 365)'
oauthbearer\t'SASL OAUTHBEARER (RFC 7628) with a token from --oauth2-token-command'"
complete -c mailkeep -n "__fish_mailkeep_using_subcommand prune" -l oauth2-token-command -d 'Run this shell command and use the first line of its output as an OAuth2 access token (XOAUTH2 / OAUTHBEARER, as Gmail and Microsoft 365 require). Implies --auth xoauth2 unless --auth oauthbearer is given' -r
complete -c mailkeep -n "__fish_mailkeep_using_subcommand prune" -l connect-timeout -d 'Seconds to wait for a TCP connection and TLS handshake' -r
complete -c mailkeep -n "__fish_mailkeep_using_subcommand prune" -l timeout -d 'Seconds to wait for any reply from the server before giving up' -r
complete -c mailkeep -n "__fish_mailkeep_using_subcommand prune" -l folder -d 'IMAP: prune only mailboxes matching this pattern (repeatable; as backup\'s --folder)' -r
complete -c mailkeep -n "__fish_mailkeep_using_subcommand prune" -l exclude -d 'IMAP: leave mailboxes matching this pattern alone (repeatable)' -r
complete -c mailkeep -n "__fish_mailkeep_using_subcommand prune" -l allow-plaintext -d 'Allow logging in without TLS when a pop3:// or imap:// server offers no STLS/STARTTLS. The password then crosses the network readable by anyone on the path'
complete -c mailkeep -n "__fish_mailkeep_using_subcommand prune" -l dry-run -d 'Print what would be deleted and change nothing (the default without --yes)'
complete -c mailkeep -n "__fish_mailkeep_using_subcommand prune" -l yes -d 'Really delete. Without it, prune only prints what it would delete'
complete -c mailkeep -n "__fish_mailkeep_using_subcommand prune" -s q -l quiet -d 'Print nothing on success; errors still go to stderr'
complete -c mailkeep -n "__fish_mailkeep_using_subcommand prune" -l json -d 'Print the run\'s report as one JSON object on stdout'
complete -c mailkeep -n "__fish_mailkeep_using_subcommand prune" -l trace -d 'Write the protocol exchange with every server to stderr (`trace HOST:PORT#N C: ...` for what mailkeep sends, `S: ...` for what the server answers), to diagnose a server. The login exchange is shown as [redacted] (LOGIN, AUTHENTICATE, PASS, APOP, AUTH) and message bodies as [N octets]'
complete -c mailkeep -n "__fish_mailkeep_using_subcommand prune" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c mailkeep -n "__fish_mailkeep_using_subcommand prune" -s V -l version -d 'Print version'
complete -c mailkeep -n "__fish_mailkeep_using_subcommand completions" -l trace -d 'Write the protocol exchange with every server to stderr (`trace HOST:PORT#N C: ...` for what mailkeep sends, `S: ...` for what the server answers), to diagnose a server. The login exchange is shown as [redacted] (LOGIN, AUTHENTICATE, PASS, APOP, AUTH) and message bodies as [N octets]'
complete -c mailkeep -n "__fish_mailkeep_using_subcommand completions" -s h -l help -d 'Print help'
complete -c mailkeep -n "__fish_mailkeep_using_subcommand completions" -s V -l version -d 'Print version'
complete -c mailkeep -n "__fish_mailkeep_using_subcommand help; and not __fish_seen_subcommand_from backup restore migrate convert list verify export quota run prune completions help" -f -a "backup" -d 'Copy every message not yet archived from a mail server into a local archive'
complete -c mailkeep -n "__fish_mailkeep_using_subcommand help; and not __fish_seen_subcommand_from backup restore migrate convert list verify export quota run prune completions help" -f -a "restore" -d 'Upload an archive\'s messages to an IMAP account, with flags, keywords and dates, never twice'
complete -c mailkeep -n "__fish_mailkeep_using_subcommand help; and not __fish_seen_subcommand_from backup restore migrate convert list verify export quota run prune completions help" -f -a "migrate" -d 'Copy a mail account into an IMAP account: POP3 to IMAP or IMAP to IMAP, with flags, keywords and dates, never twice'
complete -c mailkeep -n "__fish_mailkeep_using_subcommand help; and not __fish_seen_subcommand_from backup restore migrate convert list verify export quota run prune completions help" -f -a "convert" -d 'Copy every message of one archive into another, with flags, keywords, dates and folders'
complete -c mailkeep -n "__fish_mailkeep_using_subcommand help; and not __fish_seen_subcommand_from backup restore migrate convert list verify export quota run prune completions help" -f -a "list" -d 'Show the mailboxes of an IMAP account (STATUS), or of a local archive with counts, sizes and dates; with --messages (archives) one line per message'
complete -c mailkeep -n "__fish_mailkeep_using_subcommand help; and not __fish_seen_subcommand_from backup restore migrate convert list verify export quota run prune completions help" -f -a "verify" -d 'Check a mailkeep archive: every message the ledger records is there with its SHA-256, mbox files parse, nothing is left in tmp/; with --against, compare with the server'
complete -c mailkeep -n "__fish_mailkeep_using_subcommand help; and not __fish_seen_subcommand_from backup restore migrate convert list verify export quota run prune completions help" -f -a "export" -d 'Write an archive\'s messages (all, or those matching the filters) as .eml files into a folder, one subfolder per mailbox, never overwriting a file'
complete -c mailkeep -n "__fish_mailkeep_using_subcommand help; and not __fish_seen_subcommand_from backup restore migrate convert list verify export quota run prune completions help" -f -a "quota" -d 'Show the quota usage and limits of an IMAP account (GETQUOTAROOT, RFC 9208)'
complete -c mailkeep -n "__fish_mailkeep_using_subcommand help; and not __fish_seen_subcommand_from backup restore migrate convert list verify export quota run prune completions help" -f -a "run" -d 'Run the jobs of a config file (all of them, in file order, or those named), as cron or a systemd timer would: each archive locked, temporary failures retried, one exit code'
complete -c mailkeep -n "__fish_mailkeep_using_subcommand help; and not __fish_seen_subcommand_from backup restore migrate convert list verify export quota run prune completions help" -f -a "prune" -d 'Delete from a server old messages whose exact bytes are verified in the archive, to free space'
complete -c mailkeep -n "__fish_mailkeep_using_subcommand help; and not __fish_seen_subcommand_from backup restore migrate convert list verify export quota run prune completions help" -f -a "completions" -d 'Print a shell completion script to stdout'
complete -c mailkeep -n "__fish_mailkeep_using_subcommand help; and not __fish_seen_subcommand_from backup restore migrate convert list verify export quota run prune completions help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
