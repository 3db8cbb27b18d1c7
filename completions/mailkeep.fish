# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_mailkeep_global_optspecs
    string join \n h/help V/version
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

complete -c mailkeep -n "__fish_mailkeep_needs_command" -s h -l help -d 'Print help'
complete -c mailkeep -n "__fish_mailkeep_needs_command" -s V -l version -d 'Print version'
complete -c mailkeep -n "__fish_mailkeep_needs_command" -f -a "backup" -d 'Copy every message not yet archived from a mail server into a local archive'
complete -c mailkeep -n "__fish_mailkeep_needs_command" -f -a "restore" -d 'Upload an archive\'s messages to an IMAP account, with flags, keywords and dates, never twice'
complete -c mailkeep -n "__fish_mailkeep_needs_command" -f -a "list" -d 'Show the mailboxes of an IMAP account with message counts and sizes (STATUS)'
complete -c mailkeep -n "__fish_mailkeep_needs_command" -f -a "quota" -d 'Show the quota usage and limits of an IMAP account (GETQUOTAROOT, RFC 9208)'
complete -c mailkeep -n "__fish_mailkeep_needs_command" -f -a "completions" -d 'Print a shell completion script to stdout'
complete -c mailkeep -n "__fish_mailkeep_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c mailkeep -n "__fish_mailkeep_using_subcommand backup" -l password-env -d 'Read the password from this environment variable' -r
complete -c mailkeep -n "__fish_mailkeep_using_subcommand backup" -l password-command -d 'Run this shell command and use the first line of its output as the password' -r
complete -c mailkeep -n "__fish_mailkeep_using_subcommand backup" -l password-file -d 'Read the password from the first line of this file (must not be readable by group or others: chmod 600)' -r -F
complete -c mailkeep -n "__fish_mailkeep_using_subcommand backup" -l tls-ca -d 'Trust this CA certificate (PEM) in addition to the system\'s, e.g. for a server with a self-signed or private-CA certificate' -r -F
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
complete -c mailkeep -n "__fish_mailkeep_using_subcommand backup" -l folder -d 'IMAP: back up only mailboxes matching this glob (repeatable; `*` stays within one level, `**` crosses levels; names as LIST shows them decoded, levels joined with `/`)' -r
complete -c mailkeep -n "__fish_mailkeep_using_subcommand backup" -l exclude -d 'IMAP: skip mailboxes matching this glob (repeatable)' -r
complete -c mailkeep -n "__fish_mailkeep_using_subcommand backup" -l jobs -d 'IMAP: connections working on different mailboxes at once' -r
complete -c mailkeep -n "__fish_mailkeep_using_subcommand backup" -l allow-plaintext -d 'Allow logging in without TLS when a pop3:// or imap:// server offers no STLS/STARTTLS. The password then crosses the network readable by anyone on the path'
complete -c mailkeep -n "__fish_mailkeep_using_subcommand backup" -l delete-after-backup -d 'After every message is durably archived and recorded, delete the archived messages from the server (POP3 DELE). Nothing is deleted when anything in the run failed'
complete -c mailkeep -n "__fish_mailkeep_using_subcommand backup" -l mirror -d 'IMAP: remove from a Maildir archive the messages that were deleted on the server (only after a complete listing of that mailbox). Without it the archive keeps them'
complete -c mailkeep -n "__fish_mailkeep_using_subcommand backup" -l dedup -d 'IMAP: store a message whose exact bytes are already in the archive only once (e.g. Gmail\'s `[Gmail]/All Mail`, which holds every message again). The ledger still records it in every mailbox'
complete -c mailkeep -n "__fish_mailkeep_using_subcommand backup" -s q -l quiet -d 'Print nothing on success; errors still go to stderr'
complete -c mailkeep -n "__fish_mailkeep_using_subcommand backup" -l json -d 'Print the run\'s report as one JSON object on stdout'
complete -c mailkeep -n "__fish_mailkeep_using_subcommand backup" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c mailkeep -n "__fish_mailkeep_using_subcommand backup" -s V -l version -d 'Print version'
complete -c mailkeep -n "__fish_mailkeep_using_subcommand restore" -l password-env -d 'Read the password from this environment variable' -r
complete -c mailkeep -n "__fish_mailkeep_using_subcommand restore" -l password-command -d 'Run this shell command and use the first line of its output as the password' -r
complete -c mailkeep -n "__fish_mailkeep_using_subcommand restore" -l password-file -d 'Read the password from the first line of this file (must not be readable by group or others: chmod 600)' -r -F
complete -c mailkeep -n "__fish_mailkeep_using_subcommand restore" -l tls-ca -d 'Trust this CA certificate (PEM) in addition to the system\'s, e.g. for a server with a self-signed or private-CA certificate' -r -F
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
complete -c mailkeep -n "__fish_mailkeep_using_subcommand restore" -l allow-plaintext -d 'Allow logging in without TLS when a pop3:// or imap:// server offers no STLS/STARTTLS. The password then crosses the network readable by anyone on the path'
complete -c mailkeep -n "__fish_mailkeep_using_subcommand restore" -l dry-run -d 'Print the plan (folder mapping, messages to upload and already present per folder) and change nothing: no folder created, no message appended, nothing recorded'
complete -c mailkeep -n "__fish_mailkeep_using_subcommand restore" -s q -l quiet -d 'Print nothing on success; errors still go to stderr'
complete -c mailkeep -n "__fish_mailkeep_using_subcommand restore" -l json -d 'Print the run\'s report as one JSON object on stdout'
complete -c mailkeep -n "__fish_mailkeep_using_subcommand restore" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c mailkeep -n "__fish_mailkeep_using_subcommand restore" -s V -l version -d 'Print version'
complete -c mailkeep -n "__fish_mailkeep_using_subcommand list" -l password-env -d 'Read the password from this environment variable' -r
complete -c mailkeep -n "__fish_mailkeep_using_subcommand list" -l password-command -d 'Run this shell command and use the first line of its output as the password' -r
complete -c mailkeep -n "__fish_mailkeep_using_subcommand list" -l password-file -d 'Read the password from the first line of this file (must not be readable by group or others: chmod 600)' -r -F
complete -c mailkeep -n "__fish_mailkeep_using_subcommand list" -l tls-ca -d 'Trust this CA certificate (PEM) in addition to the system\'s, e.g. for a server with a self-signed or private-CA certificate' -r -F
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
complete -c mailkeep -n "__fish_mailkeep_using_subcommand list" -l allow-plaintext -d 'Allow logging in without TLS when a pop3:// or imap:// server offers no STLS/STARTTLS. The password then crosses the network readable by anyone on the path'
complete -c mailkeep -n "__fish_mailkeep_using_subcommand list" -l json -d 'Print JSON instead of a table'
complete -c mailkeep -n "__fish_mailkeep_using_subcommand list" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c mailkeep -n "__fish_mailkeep_using_subcommand list" -s V -l version -d 'Print version'
complete -c mailkeep -n "__fish_mailkeep_using_subcommand quota" -l password-env -d 'Read the password from this environment variable' -r
complete -c mailkeep -n "__fish_mailkeep_using_subcommand quota" -l password-command -d 'Run this shell command and use the first line of its output as the password' -r
complete -c mailkeep -n "__fish_mailkeep_using_subcommand quota" -l password-file -d 'Read the password from the first line of this file (must not be readable by group or others: chmod 600)' -r -F
complete -c mailkeep -n "__fish_mailkeep_using_subcommand quota" -l tls-ca -d 'Trust this CA certificate (PEM) in addition to the system\'s, e.g. for a server with a self-signed or private-CA certificate' -r -F
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
complete -c mailkeep -n "__fish_mailkeep_using_subcommand quota" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c mailkeep -n "__fish_mailkeep_using_subcommand quota" -s V -l version -d 'Print version'
complete -c mailkeep -n "__fish_mailkeep_using_subcommand completions" -s h -l help -d 'Print help'
complete -c mailkeep -n "__fish_mailkeep_using_subcommand completions" -s V -l version -d 'Print version'
complete -c mailkeep -n "__fish_mailkeep_using_subcommand help; and not __fish_seen_subcommand_from backup restore list quota completions help" -f -a "backup" -d 'Copy every message not yet archived from a mail server into a local archive'
complete -c mailkeep -n "__fish_mailkeep_using_subcommand help; and not __fish_seen_subcommand_from backup restore list quota completions help" -f -a "restore" -d 'Upload an archive\'s messages to an IMAP account, with flags, keywords and dates, never twice'
complete -c mailkeep -n "__fish_mailkeep_using_subcommand help; and not __fish_seen_subcommand_from backup restore list quota completions help" -f -a "list" -d 'Show the mailboxes of an IMAP account with message counts and sizes (STATUS)'
complete -c mailkeep -n "__fish_mailkeep_using_subcommand help; and not __fish_seen_subcommand_from backup restore list quota completions help" -f -a "quota" -d 'Show the quota usage and limits of an IMAP account (GETQUOTAROOT, RFC 9208)'
complete -c mailkeep -n "__fish_mailkeep_using_subcommand help; and not __fish_seen_subcommand_from backup restore list quota completions help" -f -a "completions" -d 'Print a shell completion script to stdout'
complete -c mailkeep -n "__fish_mailkeep_using_subcommand help; and not __fish_seen_subcommand_from backup restore list quota completions help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
