
using namespace System.Management.Automation
using namespace System.Management.Automation.Language

Register-ArgumentCompleter -Native -CommandName 'mailkeep' -ScriptBlock {
    param($wordToComplete, $commandAst, $cursorPosition)

    $commandElements = $commandAst.CommandElements
    $command = @(
        'mailkeep'
        for ($i = 1; $i -lt $commandElements.Count; $i++) {
            $element = $commandElements[$i]
            if ($element -isnot [StringConstantExpressionAst] -or
                $element.StringConstantType -ne [StringConstantType]::BareWord -or
                $element.Value.StartsWith('-') -or
                $element.Value -eq $wordToComplete) {
                break
        }
        $element.Value
    }) -join ';'

    $completions = @(switch ($command) {
        'mailkeep' {
            [CompletionResult]::new('--trace', '--trace', [CompletionResultType]::ParameterName, 'Write the protocol exchange with every server to stderr (`trace HOST:PORT#N C: ...` for what mailkeep sends, `S: ...` for what the server answers), to diagnose a server. The login exchange is shown as [redacted] (LOGIN, AUTHENTICATE, PASS, APOP, AUTH) and message bodies as [N octets]')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('backup', 'backup', [CompletionResultType]::ParameterValue, 'Copy every message not yet archived from a mail server into a local archive')
            [CompletionResult]::new('restore', 'restore', [CompletionResultType]::ParameterValue, 'Upload an archive''s messages to an IMAP account, with flags, keywords and dates, never twice')
            [CompletionResult]::new('migrate', 'migrate', [CompletionResultType]::ParameterValue, 'Copy a mail account into an IMAP account: POP3 to IMAP or IMAP to IMAP, with flags, keywords and dates, never twice')
            [CompletionResult]::new('convert', 'convert', [CompletionResultType]::ParameterValue, 'Copy every message of one archive into another, with flags, keywords, dates and folders')
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'Show the mailboxes of an IMAP account (STATUS), or of a local archive with counts, sizes and dates; with --messages (archives) one line per message')
            [CompletionResult]::new('verify', 'verify', [CompletionResultType]::ParameterValue, 'Check a mailkeep archive: every message the ledger records is there with its SHA-256, mbox files parse, nothing is left in tmp/; with --against, compare with the server')
            [CompletionResult]::new('export', 'export', [CompletionResultType]::ParameterValue, 'Write an archive''s messages (all, or those matching the filters) as .eml files into a folder, one subfolder per mailbox, never overwriting a file')
            [CompletionResult]::new('quota', 'quota', [CompletionResultType]::ParameterValue, 'Show the quota usage and limits of an IMAP account (GETQUOTAROOT, RFC 9208)')
            [CompletionResult]::new('run', 'run', [CompletionResultType]::ParameterValue, 'Run the jobs of a config file (all of them, in file order, or those named), as cron or a systemd timer would: each archive locked, temporary failures retried, one exit code')
            [CompletionResult]::new('prune', 'prune', [CompletionResultType]::ParameterValue, 'Delete from a server old messages whose exact bytes are verified in the archive, to free space')
            [CompletionResult]::new('completions', 'completions', [CompletionResultType]::ParameterValue, 'Print a shell completion script to stdout')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'mailkeep;backup' {
            [CompletionResult]::new('--password-env', '--password-env', [CompletionResultType]::ParameterName, 'Read the password from this environment variable')
            [CompletionResult]::new('--password-command', '--password-command', [CompletionResultType]::ParameterName, 'Run this shell command and use the first line of its output as the password')
            [CompletionResult]::new('--password-file', '--password-file', [CompletionResultType]::ParameterName, 'Read the password from the first line of this file (must not be readable by group or others: chmod 600)')
            [CompletionResult]::new('--tls-ca', '--tls-ca', [CompletionResultType]::ParameterName, 'Trust this CA certificate (PEM) in addition to the system''s, e.g. for a server with a self-signed or private-CA certificate')
            [CompletionResult]::new('--tls-fingerprint', '--tls-fingerprint', [CompletionResultType]::ParameterName, 'Accept only the server certificate with this SHA-256 fingerprint (64 hex digits, colons optional, as `openssl x509 -noout -fingerprint -sha256` prints). With a pin, the certificate chain and host name are not checked: a pinned self-signed certificate works without --tls-ca')
            [CompletionResult]::new('--auth', '--auth', [CompletionResultType]::ParameterName, 'Authentication mechanism')
            [CompletionResult]::new('--oauth2-token-command', '--oauth2-token-command', [CompletionResultType]::ParameterName, 'Run this shell command and use the first line of its output as an OAuth2 access token (XOAUTH2 / OAUTHBEARER, as Gmail and Microsoft 365 require). Implies --auth xoauth2 unless --auth oauthbearer is given')
            [CompletionResult]::new('--connect-timeout', '--connect-timeout', [CompletionResultType]::ParameterName, 'Seconds to wait for a TCP connection and TLS handshake')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Seconds to wait for any reply from the server before giving up')
            [CompletionResult]::new('--keep-days', '--keep-days', [CompletionResultType]::ParameterName, 'Delete from the server only messages archived at least this many days ago (so the server keeps recent mail for other devices). Implies --delete-after-backup')
            [CompletionResult]::new('--folder', '--folder', [CompletionResultType]::ParameterName, 'IMAP: back up only mailboxes matching this pattern (repeatable; `*` stays within one level, `**` crosses levels, `?` is one character, anything else matches itself, so `[Gmail]/All Mail` is that folder; `glob:PATTERN` for the whole glob syntax; names as LIST shows them decoded, levels joined with `/`). A pattern matching no mailbox is an error')
            [CompletionResult]::new('--exclude', '--exclude', [CompletionResultType]::ParameterName, 'IMAP: skip mailboxes matching this pattern (repeatable; as --folder)')
            [CompletionResult]::new('--jobs', '--jobs', [CompletionResultType]::ParameterName, 'IMAP: connections working on different mailboxes at once')
            [CompletionResult]::new('--max-message-size', '--max-message-size', [CompletionResultType]::ParameterName, 'Refuse a message larger than SIZE bytes (a number, or with K, M or G: 50M, 2G), from a server or an archive, before reading it into memory or writing it anywhere: it is named, counted as failed (exit 1) and tried again next run')
            [CompletionResult]::new('--allow-plaintext', '--allow-plaintext', [CompletionResultType]::ParameterName, 'Allow logging in without TLS when a pop3:// or imap:// server offers no STLS/STARTTLS. The password then crosses the network readable by anyone on the path')
            [CompletionResult]::new('--store', '--store', [CompletionResultType]::ParameterName, 'zip: store messages uncompressed instead of deflating them')
            [CompletionResult]::new('--delete-after-backup', '--delete-after-backup', [CompletionResultType]::ParameterName, 'After every message is durably archived and recorded, delete the archived messages from the server (POP3 DELE). Nothing is deleted when anything in the run failed')
            [CompletionResult]::new('--mirror', '--mirror', [CompletionResultType]::ParameterName, 'IMAP: remove from a Maildir archive the messages that were deleted on the server (only after a complete listing of that mailbox). Without it the archive keeps them')
            [CompletionResult]::new('--dedup', '--dedup', [CompletionResultType]::ParameterName, 'IMAP: store a message whose exact bytes are already in the archive only once (e.g. Gmail folder by folder, whose `[Gmail]/All Mail` holds every message again; a Gmail backup by label stores each message once without it). The ledger still records it in every mailbox')
            [CompletionResult]::new('--gmail-folders', '--gmail-folders', [CompletionResultType]::ParameterName, 'Gmail: back up folder by folder like any server (one copy per label folder, All Mail included) instead of each message once with its labels (the default for a server with X-GM-EXT-1 when no --folder or --exclude is given)')
            [CompletionResult]::new('--gmail-spam-trash', '--gmail-spam-trash', [CompletionResultType]::ParameterName, 'Gmail: a backup by label includes Spam and Trash (left out by default)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print nothing on success; errors still go to stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print nothing on success; errors still go to stderr')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print the run''s report as one JSON object on stdout')
            [CompletionResult]::new('--trace', '--trace', [CompletionResultType]::ParameterName, 'Write the protocol exchange with every server to stderr (`trace HOST:PORT#N C: ...` for what mailkeep sends, `S: ...` for what the server answers), to diagnose a server. The login exchange is shown as [redacted] (LOGIN, AUTHENTICATE, PASS, APOP, AUTH) and message bodies as [N octets]')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'mailkeep;restore' {
            [CompletionResult]::new('--password-env', '--password-env', [CompletionResultType]::ParameterName, 'Read the password from this environment variable')
            [CompletionResult]::new('--password-command', '--password-command', [CompletionResultType]::ParameterName, 'Run this shell command and use the first line of its output as the password')
            [CompletionResult]::new('--password-file', '--password-file', [CompletionResultType]::ParameterName, 'Read the password from the first line of this file (must not be readable by group or others: chmod 600)')
            [CompletionResult]::new('--tls-ca', '--tls-ca', [CompletionResultType]::ParameterName, 'Trust this CA certificate (PEM) in addition to the system''s, e.g. for a server with a self-signed or private-CA certificate')
            [CompletionResult]::new('--tls-fingerprint', '--tls-fingerprint', [CompletionResultType]::ParameterName, 'Accept only the server certificate with this SHA-256 fingerprint (64 hex digits, colons optional, as `openssl x509 -noout -fingerprint -sha256` prints). With a pin, the certificate chain and host name are not checked: a pinned self-signed certificate works without --tls-ca')
            [CompletionResult]::new('--auth', '--auth', [CompletionResultType]::ParameterName, 'Authentication mechanism')
            [CompletionResult]::new('--oauth2-token-command', '--oauth2-token-command', [CompletionResultType]::ParameterName, 'Run this shell command and use the first line of its output as an OAuth2 access token (XOAUTH2 / OAUTHBEARER, as Gmail and Microsoft 365 require). Implies --auth xoauth2 unless --auth oauthbearer is given')
            [CompletionResult]::new('--connect-timeout', '--connect-timeout', [CompletionResultType]::ParameterName, 'Seconds to wait for a TCP connection and TLS handshake')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Seconds to wait for any reply from the server before giving up')
            [CompletionResult]::new('--into', '--into', [CompletionResultType]::ParameterName, 'Put every mailbox under this folder (levels separated by `/`, e.g. `Restored/2024`); INBOX becomes PREFIX/INBOX')
            [CompletionResult]::new('--map', '--map', [CompletionResultType]::ParameterName, 'Restore the archive''s mailbox SRC (and its subfolders) as DST (repeatable; names with levels separated by `/`, e.g. --map ''Sent Items=Sent'')')
            [CompletionResult]::new('--jobs', '--jobs', [CompletionResultType]::ParameterName, 'Connections uploading to different target mailboxes at once')
            [CompletionResult]::new('--max-message-size', '--max-message-size', [CompletionResultType]::ParameterName, 'Refuse a message larger than SIZE bytes (a number, or with K, M or G: 50M, 2G), from a server or an archive, before reading it into memory or writing it anywhere: it is named, counted as failed (exit 1) and tried again next run')
            [CompletionResult]::new('--allow-plaintext', '--allow-plaintext', [CompletionResultType]::ParameterName, 'Allow logging in without TLS when a pop3:// or imap:// server offers no STLS/STARTTLS. The password then crosses the network readable by anyone on the path')
            [CompletionResult]::new('--dry-run', '--dry-run', [CompletionResultType]::ParameterName, 'Print the plan (folder mapping, messages to upload and already present per folder) and change nothing: no folder created, no message appended, nothing recorded')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print nothing on success; errors still go to stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print nothing on success; errors still go to stderr')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print the run''s report as one JSON object on stdout')
            [CompletionResult]::new('--trace', '--trace', [CompletionResultType]::ParameterName, 'Write the protocol exchange with every server to stderr (`trace HOST:PORT#N C: ...` for what mailkeep sends, `S: ...` for what the server answers), to diagnose a server. The login exchange is shown as [redacted] (LOGIN, AUTHENTICATE, PASS, APOP, AUTH) and message bodies as [N octets]')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'mailkeep;migrate' {
            [CompletionResult]::new('--source-password-env', '--source-password-env', [CompletionResultType]::ParameterName, 'Read the source server''s password from this environment variable')
            [CompletionResult]::new('--source-password-command', '--source-password-command', [CompletionResultType]::ParameterName, 'Run this shell command and use the first line of its output as the source password')
            [CompletionResult]::new('--source-password-file', '--source-password-file', [CompletionResultType]::ParameterName, 'Read the source password from the first line of this file (chmod 600)')
            [CompletionResult]::new('--source-tls-ca', '--source-tls-ca', [CompletionResultType]::ParameterName, 'Trust this CA certificate (PEM) for the source server')
            [CompletionResult]::new('--source-tls-fingerprint', '--source-tls-fingerprint', [CompletionResultType]::ParameterName, 'Accept only the source server certificate with this SHA-256 fingerprint (chain and host name are then not checked)')
            [CompletionResult]::new('--source-auth', '--source-auth', [CompletionResultType]::ParameterName, 'Authentication mechanism for the source')
            [CompletionResult]::new('--source-oauth2-token-command', '--source-oauth2-token-command', [CompletionResultType]::ParameterName, 'OAuth2 access token command for the source (XOAUTH2 / OAUTHBEARER)')
            [CompletionResult]::new('--target-password-env', '--target-password-env', [CompletionResultType]::ParameterName, 'Read the target server''s password from this environment variable')
            [CompletionResult]::new('--target-password-command', '--target-password-command', [CompletionResultType]::ParameterName, 'Run this shell command and use the first line of its output as the target password')
            [CompletionResult]::new('--target-password-file', '--target-password-file', [CompletionResultType]::ParameterName, 'Read the target password from the first line of this file (chmod 600)')
            [CompletionResult]::new('--target-tls-ca', '--target-tls-ca', [CompletionResultType]::ParameterName, 'Trust this CA certificate (PEM) for the target server')
            [CompletionResult]::new('--target-tls-fingerprint', '--target-tls-fingerprint', [CompletionResultType]::ParameterName, 'Accept only the target server certificate with this SHA-256 fingerprint (chain and host name are then not checked)')
            [CompletionResult]::new('--target-auth', '--target-auth', [CompletionResultType]::ParameterName, 'Authentication mechanism for the target')
            [CompletionResult]::new('--target-oauth2-token-command', '--target-oauth2-token-command', [CompletionResultType]::ParameterName, 'OAuth2 access token command for the target (XOAUTH2 / OAUTHBEARER)')
            [CompletionResult]::new('--connect-timeout', '--connect-timeout', [CompletionResultType]::ParameterName, 'Seconds to wait for a TCP connection and TLS handshake (both servers)')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Seconds to wait for any reply from a server before giving up (both servers)')
            [CompletionResult]::new('--via', '--via', [CompletionResultType]::ParameterName, 'First back up SOURCE into this local archive (maildir:PATH or mbox:PATH, as `backup` does), then restore from it: a local copy exists when the migration is over')
            [CompletionResult]::new('--folder', '--folder', [CompletionResultType]::ParameterName, 'IMAP source: copy only mailboxes matching this pattern (repeatable; as for backup)')
            [CompletionResult]::new('--exclude', '--exclude', [CompletionResultType]::ParameterName, 'IMAP source: skip mailboxes matching this pattern (repeatable; as for backup)')
            [CompletionResult]::new('--into', '--into', [CompletionResultType]::ParameterName, 'Put every mailbox under this folder on the target (levels separated by `/`)')
            [CompletionResult]::new('--map', '--map', [CompletionResultType]::ParameterName, 'Copy the source mailbox SRC (and its subfolders) as DST (repeatable)')
            [CompletionResult]::new('--jobs', '--jobs', [CompletionResultType]::ParameterName, 'IMAP source: connection pairs working on different mailboxes at once (a POP3 source is read by one connection)')
            [CompletionResult]::new('--max-message-size', '--max-message-size', [CompletionResultType]::ParameterName, 'Refuse a message larger than SIZE bytes (a number, or with K, M or G: 50M, 2G), from a server or an archive, before reading it into memory or writing it anywhere: it is named, counted as failed (exit 1) and tried again next run')
            [CompletionResult]::new('--source-allow-plaintext', '--source-allow-plaintext', [CompletionResultType]::ParameterName, 'Allow logging in to a pop3:// or imap:// source without TLS when it offers none')
            [CompletionResult]::new('--target-allow-plaintext', '--target-allow-plaintext', [CompletionResultType]::ParameterName, 'Allow logging in to an imap:// target without TLS when it offers no STARTTLS')
            [CompletionResult]::new('--delete-after-migrate', '--delete-after-migrate', [CompletionResultType]::ParameterName, 'POP3: after the run, delete from the source the messages the target holds (appended or found there, as recorded). Nothing is deleted when anything in the run failed')
            [CompletionResult]::new('--seen', '--seen', [CompletionResultType]::ParameterName, 'POP3: upload the messages as read (\Seen). POP3 has no flags, so without it they arrive unread')
            [CompletionResult]::new('--dry-run', '--dry-run', [CompletionResultType]::ParameterName, 'Print the plan (folder mapping, messages to copy and already present per folder) and change nothing on either server')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print nothing on success; errors still go to stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print nothing on success; errors still go to stderr')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print the run''s report as one JSON object on stdout')
            [CompletionResult]::new('--trace', '--trace', [CompletionResultType]::ParameterName, 'Write the protocol exchange with every server to stderr (`trace HOST:PORT#N C: ...` for what mailkeep sends, `S: ...` for what the server answers), to diagnose a server. The login exchange is shown as [redacted] (LOGIN, AUTHENTICATE, PASS, APOP, AUTH) and message bodies as [N octets]')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'mailkeep;convert' {
            [CompletionResult]::new('--max-message-size', '--max-message-size', [CompletionResultType]::ParameterName, 'Refuse a message larger than SIZE bytes (a number, or with K, M or G: 50M, 2G), from a server or an archive, before reading it into memory or writing it anywhere: it is named, counted as failed (exit 1) and tried again next run')
            [CompletionResult]::new('--store', '--store', [CompletionResultType]::ParameterName, 'zip: store messages uncompressed instead of deflating them')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print nothing on success; errors still go to stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print nothing on success; errors still go to stderr')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print the run''s report as one JSON object on stdout')
            [CompletionResult]::new('--trace', '--trace', [CompletionResultType]::ParameterName, 'Write the protocol exchange with every server to stderr (`trace HOST:PORT#N C: ...` for what mailkeep sends, `S: ...` for what the server answers), to diagnose a server. The login exchange is shown as [redacted] (LOGIN, AUTHENTICATE, PASS, APOP, AUTH) and message bodies as [N octets]')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'mailkeep;list' {
            [CompletionResult]::new('--password-env', '--password-env', [CompletionResultType]::ParameterName, 'Read the password from this environment variable')
            [CompletionResult]::new('--password-command', '--password-command', [CompletionResultType]::ParameterName, 'Run this shell command and use the first line of its output as the password')
            [CompletionResult]::new('--password-file', '--password-file', [CompletionResultType]::ParameterName, 'Read the password from the first line of this file (must not be readable by group or others: chmod 600)')
            [CompletionResult]::new('--tls-ca', '--tls-ca', [CompletionResultType]::ParameterName, 'Trust this CA certificate (PEM) in addition to the system''s, e.g. for a server with a self-signed or private-CA certificate')
            [CompletionResult]::new('--tls-fingerprint', '--tls-fingerprint', [CompletionResultType]::ParameterName, 'Accept only the server certificate with this SHA-256 fingerprint (64 hex digits, colons optional, as `openssl x509 -noout -fingerprint -sha256` prints). With a pin, the certificate chain and host name are not checked: a pinned self-signed certificate works without --tls-ca')
            [CompletionResult]::new('--auth', '--auth', [CompletionResultType]::ParameterName, 'Authentication mechanism')
            [CompletionResult]::new('--oauth2-token-command', '--oauth2-token-command', [CompletionResultType]::ParameterName, 'Run this shell command and use the first line of its output as an OAuth2 access token (XOAUTH2 / OAUTHBEARER, as Gmail and Microsoft 365 require). Implies --auth xoauth2 unless --auth oauthbearer is given')
            [CompletionResult]::new('--connect-timeout', '--connect-timeout', [CompletionResultType]::ParameterName, 'Seconds to wait for a TCP connection and TLS handshake')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Seconds to wait for any reply from the server before giving up')
            [CompletionResult]::new('--max-message-size', '--max-message-size', [CompletionResultType]::ParameterName, 'Refuse a message larger than SIZE bytes (a number, or with K, M or G: 50M, 2G), from a server or an archive, before reading it into memory or writing it anywhere: it is named, counted as failed (exit 1) and tried again next run')
            [CompletionResult]::new('--allow-plaintext', '--allow-plaintext', [CompletionResultType]::ParameterName, 'Allow logging in without TLS when a pop3:// or imap:// server offers no STLS/STARTTLS. The password then crosses the network readable by anyone on the path')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print JSON instead of a table')
            [CompletionResult]::new('--messages', '--messages', [CompletionResultType]::ParameterName, 'Archives: one line per message (date, size, flags, sender, subject decoded)')
            [CompletionResult]::new('--trace', '--trace', [CompletionResultType]::ParameterName, 'Write the protocol exchange with every server to stderr (`trace HOST:PORT#N C: ...` for what mailkeep sends, `S: ...` for what the server answers), to diagnose a server. The login exchange is shown as [redacted] (LOGIN, AUTHENTICATE, PASS, APOP, AUTH) and message bodies as [N octets]')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'mailkeep;verify' {
            [CompletionResult]::new('--against', '--against', [CompletionResultType]::ParameterName, 'Also list this account (imaps://, imap://, pop3s://, pop3://USER@HOST[:PORT]) and report per mailbox what is on the server, in the archive, missing from it, only in it')
            [CompletionResult]::new('--password-env', '--password-env', [CompletionResultType]::ParameterName, 'Read the password from this environment variable')
            [CompletionResult]::new('--password-command', '--password-command', [CompletionResultType]::ParameterName, 'Run this shell command and use the first line of its output as the password')
            [CompletionResult]::new('--password-file', '--password-file', [CompletionResultType]::ParameterName, 'Read the password from the first line of this file (must not be readable by group or others: chmod 600)')
            [CompletionResult]::new('--tls-ca', '--tls-ca', [CompletionResultType]::ParameterName, 'Trust this CA certificate (PEM) in addition to the system''s, e.g. for a server with a self-signed or private-CA certificate')
            [CompletionResult]::new('--tls-fingerprint', '--tls-fingerprint', [CompletionResultType]::ParameterName, 'Accept only the server certificate with this SHA-256 fingerprint (64 hex digits, colons optional, as `openssl x509 -noout -fingerprint -sha256` prints). With a pin, the certificate chain and host name are not checked: a pinned self-signed certificate works without --tls-ca')
            [CompletionResult]::new('--auth', '--auth', [CompletionResultType]::ParameterName, 'Authentication mechanism')
            [CompletionResult]::new('--oauth2-token-command', '--oauth2-token-command', [CompletionResultType]::ParameterName, 'Run this shell command and use the first line of its output as an OAuth2 access token (XOAUTH2 / OAUTHBEARER, as Gmail and Microsoft 365 require). Implies --auth xoauth2 unless --auth oauthbearer is given')
            [CompletionResult]::new('--connect-timeout', '--connect-timeout', [CompletionResultType]::ParameterName, 'Seconds to wait for a TCP connection and TLS handshake')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Seconds to wait for any reply from the server before giving up')
            [CompletionResult]::new('--folder', '--folder', [CompletionResultType]::ParameterName, 'With --against an IMAP account: compare only mailboxes matching this pattern (repeatable; as backup''s --folder)')
            [CompletionResult]::new('--exclude', '--exclude', [CompletionResultType]::ParameterName, 'With --against an IMAP account: leave out mailboxes matching this pattern (repeatable)')
            [CompletionResult]::new('--max-message-size', '--max-message-size', [CompletionResultType]::ParameterName, 'Refuse a message larger than SIZE bytes (a number, or with K, M or G: 50M, 2G), from a server or an archive, before reading it into memory or writing it anywhere: it is named, counted as failed (exit 1) and tried again next run')
            [CompletionResult]::new('--allow-plaintext', '--allow-plaintext', [CompletionResultType]::ParameterName, 'Allow logging in without TLS when a pop3:// or imap:// server offers no STLS/STARTTLS. The password then crosses the network readable by anyone on the path')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print nothing when everything checks out')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print nothing when everything checks out')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print the report as one JSON object on stdout')
            [CompletionResult]::new('--trace', '--trace', [CompletionResultType]::ParameterName, 'Write the protocol exchange with every server to stderr (`trace HOST:PORT#N C: ...` for what mailkeep sends, `S: ...` for what the server answers), to diagnose a server. The login exchange is shown as [redacted] (LOGIN, AUTHENTICATE, PASS, APOP, AUTH) and message bodies as [N octets]')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'mailkeep;export' {
            [CompletionResult]::new('--to', '--to', [CompletionResultType]::ParameterName, 'The folder to write into (created if missing; must be outside the archive)')
            [CompletionResult]::new('--mailbox', '--mailbox', [CompletionResultType]::ParameterName, 'Only mailboxes matching this pattern (repeatable; `*` stays within one level, `**` crosses levels, as backup''s --folder)')
            [CompletionResult]::new('--since', '--since', [CompletionResultType]::ParameterName, 'Only messages dated on or after this day (YYYY-MM-DD, UTC)')
            [CompletionResult]::new('--before', '--before', [CompletionResultType]::ParameterName, 'Only messages dated before this day (YYYY-MM-DD, UTC)')
            [CompletionResult]::new('--from', '--from', [CompletionResultType]::ParameterName, 'Only messages whose decoded From: header (`Name <address>`) contains this text (any case)')
            [CompletionResult]::new('--subject', '--subject', [CompletionResultType]::ParameterName, 'Only messages whose decoded Subject: contains this text (any case)')
            [CompletionResult]::new('--max-message-size', '--max-message-size', [CompletionResultType]::ParameterName, 'Refuse a message larger than SIZE bytes (a number, or with K, M or G: 50M, 2G), from a server or an archive, before reading it into memory or writing it anywhere: it is named, counted as failed (exit 1) and tried again next run')
            [CompletionResult]::new('--crlf', '--crlf', [CompletionResultType]::ParameterName, 'Write CRLF line ends (the RFC 5322 form) instead of the stored LF')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print nothing on success; errors still go to stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print nothing on success; errors still go to stderr')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print the run''s report as one JSON object on stdout')
            [CompletionResult]::new('--trace', '--trace', [CompletionResultType]::ParameterName, 'Write the protocol exchange with every server to stderr (`trace HOST:PORT#N C: ...` for what mailkeep sends, `S: ...` for what the server answers), to diagnose a server. The login exchange is shown as [redacted] (LOGIN, AUTHENTICATE, PASS, APOP, AUTH) and message bodies as [N octets]')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'mailkeep;quota' {
            [CompletionResult]::new('--password-env', '--password-env', [CompletionResultType]::ParameterName, 'Read the password from this environment variable')
            [CompletionResult]::new('--password-command', '--password-command', [CompletionResultType]::ParameterName, 'Run this shell command and use the first line of its output as the password')
            [CompletionResult]::new('--password-file', '--password-file', [CompletionResultType]::ParameterName, 'Read the password from the first line of this file (must not be readable by group or others: chmod 600)')
            [CompletionResult]::new('--tls-ca', '--tls-ca', [CompletionResultType]::ParameterName, 'Trust this CA certificate (PEM) in addition to the system''s, e.g. for a server with a self-signed or private-CA certificate')
            [CompletionResult]::new('--tls-fingerprint', '--tls-fingerprint', [CompletionResultType]::ParameterName, 'Accept only the server certificate with this SHA-256 fingerprint (64 hex digits, colons optional, as `openssl x509 -noout -fingerprint -sha256` prints). With a pin, the certificate chain and host name are not checked: a pinned self-signed certificate works without --tls-ca')
            [CompletionResult]::new('--auth', '--auth', [CompletionResultType]::ParameterName, 'Authentication mechanism')
            [CompletionResult]::new('--oauth2-token-command', '--oauth2-token-command', [CompletionResultType]::ParameterName, 'Run this shell command and use the first line of its output as an OAuth2 access token (XOAUTH2 / OAUTHBEARER, as Gmail and Microsoft 365 require). Implies --auth xoauth2 unless --auth oauthbearer is given')
            [CompletionResult]::new('--connect-timeout', '--connect-timeout', [CompletionResultType]::ParameterName, 'Seconds to wait for a TCP connection and TLS handshake')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Seconds to wait for any reply from the server before giving up')
            [CompletionResult]::new('--warn-at', '--warn-at', [CompletionResultType]::ParameterName, 'Warn (and exit 1) when a quota resource is used above this percentage')
            [CompletionResult]::new('--allow-plaintext', '--allow-plaintext', [CompletionResultType]::ParameterName, 'Allow logging in without TLS when a pop3:// or imap:// server offers no STLS/STARTTLS. The password then crosses the network readable by anyone on the path')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print JSON instead of a table')
            [CompletionResult]::new('--trace', '--trace', [CompletionResultType]::ParameterName, 'Write the protocol exchange with every server to stderr (`trace HOST:PORT#N C: ...` for what mailkeep sends, `S: ...` for what the server answers), to diagnose a server. The login exchange is shown as [redacted] (LOGIN, AUTHENTICATE, PASS, APOP, AUTH) and message bodies as [N octets]')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'mailkeep;run' {
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'The config file (default: $XDG_CONFIG_HOME/mailkeep/config.toml, else ~/.config/mailkeep/config.toml)')
            [CompletionResult]::new('--log-file', '--log-file', [CompletionResultType]::ParameterName, 'Append one line per event (job started, retried, finished, with counts) to this file, created private (0600). Overrides the config file''s `log_file`')
            [CompletionResult]::new('--check', '--check', [CompletionResultType]::ParameterName, 'Check the config file and print the jobs it would run; run nothing')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print nothing on success; errors still go to stderr (cron mails only failures)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print nothing on success; errors still go to stderr (cron mails only failures)')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print one JSON report per job on stdout (one object per line)')
            [CompletionResult]::new('--trace', '--trace', [CompletionResultType]::ParameterName, 'Write the protocol exchange with every server to stderr (`trace HOST:PORT#N C: ...` for what mailkeep sends, `S: ...` for what the server answers), to diagnose a server. The login exchange is shown as [redacted] (LOGIN, AUTHENTICATE, PASS, APOP, AUTH) and message bodies as [N octets]')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'mailkeep;prune' {
            [CompletionResult]::new('--archive', '--archive', [CompletionResultType]::ParameterName, 'The archive it was backed up into: maildir:PATH, mbox:PATH or a mailkeep archive''s PATH')
            [CompletionResult]::new('--older-than', '--older-than', [CompletionResultType]::ParameterName, 'Delete only messages older than this: days (`365d`), weeks (`8w`) or years (`2y`, 365 days each), counted back from now; IMAP by INTERNALDATE, POP3 by the archived date')
            [CompletionResult]::new('--password-env', '--password-env', [CompletionResultType]::ParameterName, 'Read the password from this environment variable')
            [CompletionResult]::new('--password-command', '--password-command', [CompletionResultType]::ParameterName, 'Run this shell command and use the first line of its output as the password')
            [CompletionResult]::new('--password-file', '--password-file', [CompletionResultType]::ParameterName, 'Read the password from the first line of this file (must not be readable by group or others: chmod 600)')
            [CompletionResult]::new('--tls-ca', '--tls-ca', [CompletionResultType]::ParameterName, 'Trust this CA certificate (PEM) in addition to the system''s, e.g. for a server with a self-signed or private-CA certificate')
            [CompletionResult]::new('--tls-fingerprint', '--tls-fingerprint', [CompletionResultType]::ParameterName, 'Accept only the server certificate with this SHA-256 fingerprint (64 hex digits, colons optional, as `openssl x509 -noout -fingerprint -sha256` prints). With a pin, the certificate chain and host name are not checked: a pinned self-signed certificate works without --tls-ca')
            [CompletionResult]::new('--auth', '--auth', [CompletionResultType]::ParameterName, 'Authentication mechanism')
            [CompletionResult]::new('--oauth2-token-command', '--oauth2-token-command', [CompletionResultType]::ParameterName, 'Run this shell command and use the first line of its output as an OAuth2 access token (XOAUTH2 / OAUTHBEARER, as Gmail and Microsoft 365 require). Implies --auth xoauth2 unless --auth oauthbearer is given')
            [CompletionResult]::new('--connect-timeout', '--connect-timeout', [CompletionResultType]::ParameterName, 'Seconds to wait for a TCP connection and TLS handshake')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Seconds to wait for any reply from the server before giving up')
            [CompletionResult]::new('--folder', '--folder', [CompletionResultType]::ParameterName, 'IMAP: prune only mailboxes matching this pattern (repeatable; as backup''s --folder)')
            [CompletionResult]::new('--exclude', '--exclude', [CompletionResultType]::ParameterName, 'IMAP: leave mailboxes matching this pattern alone (repeatable)')
            [CompletionResult]::new('--allow-plaintext', '--allow-plaintext', [CompletionResultType]::ParameterName, 'Allow logging in without TLS when a pop3:// or imap:// server offers no STLS/STARTTLS. The password then crosses the network readable by anyone on the path')
            [CompletionResult]::new('--dry-run', '--dry-run', [CompletionResultType]::ParameterName, 'Print what would be deleted and change nothing (the default without --yes)')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Really delete. Without it, prune only prints what it would delete')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print nothing on success; errors still go to stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print nothing on success; errors still go to stderr')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print the run''s report as one JSON object on stdout')
            [CompletionResult]::new('--trace', '--trace', [CompletionResultType]::ParameterName, 'Write the protocol exchange with every server to stderr (`trace HOST:PORT#N C: ...` for what mailkeep sends, `S: ...` for what the server answers), to diagnose a server. The login exchange is shown as [redacted] (LOGIN, AUTHENTICATE, PASS, APOP, AUTH) and message bodies as [N octets]')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'mailkeep;completions' {
            [CompletionResult]::new('--trace', '--trace', [CompletionResultType]::ParameterName, 'Write the protocol exchange with every server to stderr (`trace HOST:PORT#N C: ...` for what mailkeep sends, `S: ...` for what the server answers), to diagnose a server. The login exchange is shown as [redacted] (LOGIN, AUTHENTICATE, PASS, APOP, AUTH) and message bodies as [N octets]')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'mailkeep;help' {
            [CompletionResult]::new('backup', 'backup', [CompletionResultType]::ParameterValue, 'Copy every message not yet archived from a mail server into a local archive')
            [CompletionResult]::new('restore', 'restore', [CompletionResultType]::ParameterValue, 'Upload an archive''s messages to an IMAP account, with flags, keywords and dates, never twice')
            [CompletionResult]::new('migrate', 'migrate', [CompletionResultType]::ParameterValue, 'Copy a mail account into an IMAP account: POP3 to IMAP or IMAP to IMAP, with flags, keywords and dates, never twice')
            [CompletionResult]::new('convert', 'convert', [CompletionResultType]::ParameterValue, 'Copy every message of one archive into another, with flags, keywords, dates and folders')
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'Show the mailboxes of an IMAP account (STATUS), or of a local archive with counts, sizes and dates; with --messages (archives) one line per message')
            [CompletionResult]::new('verify', 'verify', [CompletionResultType]::ParameterValue, 'Check a mailkeep archive: every message the ledger records is there with its SHA-256, mbox files parse, nothing is left in tmp/; with --against, compare with the server')
            [CompletionResult]::new('export', 'export', [CompletionResultType]::ParameterValue, 'Write an archive''s messages (all, or those matching the filters) as .eml files into a folder, one subfolder per mailbox, never overwriting a file')
            [CompletionResult]::new('quota', 'quota', [CompletionResultType]::ParameterValue, 'Show the quota usage and limits of an IMAP account (GETQUOTAROOT, RFC 9208)')
            [CompletionResult]::new('run', 'run', [CompletionResultType]::ParameterValue, 'Run the jobs of a config file (all of them, in file order, or those named), as cron or a systemd timer would: each archive locked, temporary failures retried, one exit code')
            [CompletionResult]::new('prune', 'prune', [CompletionResultType]::ParameterValue, 'Delete from a server old messages whose exact bytes are verified in the archive, to free space')
            [CompletionResult]::new('completions', 'completions', [CompletionResultType]::ParameterValue, 'Print a shell completion script to stdout')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'mailkeep;help;backup' {
            break
        }
        'mailkeep;help;restore' {
            break
        }
        'mailkeep;help;migrate' {
            break
        }
        'mailkeep;help;convert' {
            break
        }
        'mailkeep;help;list' {
            break
        }
        'mailkeep;help;verify' {
            break
        }
        'mailkeep;help;export' {
            break
        }
        'mailkeep;help;quota' {
            break
        }
        'mailkeep;help;run' {
            break
        }
        'mailkeep;help;prune' {
            break
        }
        'mailkeep;help;completions' {
            break
        }
        'mailkeep;help;help' {
            break
        }
    })

    $completions.Where{ $_.CompletionText -like "$wordToComplete*" } |
        Sort-Object -Property ListItemText
}
