
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
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('backup', 'backup', [CompletionResultType]::ParameterValue, 'Copy every message not yet archived from a mail server into a local archive')
            [CompletionResult]::new('restore', 'restore', [CompletionResultType]::ParameterValue, 'Upload an archive''s messages to an IMAP account, with flags, keywords and dates, never twice')
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'Show the mailboxes of an IMAP account with message counts and sizes (STATUS)')
            [CompletionResult]::new('quota', 'quota', [CompletionResultType]::ParameterValue, 'Show the quota usage and limits of an IMAP account (GETQUOTAROOT, RFC 9208)')
            [CompletionResult]::new('completions', 'completions', [CompletionResultType]::ParameterValue, 'Print a shell completion script to stdout')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'mailkeep;backup' {
            [CompletionResult]::new('--password-env', '--password-env', [CompletionResultType]::ParameterName, 'Read the password from this environment variable')
            [CompletionResult]::new('--password-command', '--password-command', [CompletionResultType]::ParameterName, 'Run this shell command and use the first line of its output as the password')
            [CompletionResult]::new('--password-file', '--password-file', [CompletionResultType]::ParameterName, 'Read the password from the first line of this file (must not be readable by group or others: chmod 600)')
            [CompletionResult]::new('--tls-ca', '--tls-ca', [CompletionResultType]::ParameterName, 'Trust this CA certificate (PEM) in addition to the system''s, e.g. for a server with a self-signed or private-CA certificate')
            [CompletionResult]::new('--auth', '--auth', [CompletionResultType]::ParameterName, 'Authentication mechanism')
            [CompletionResult]::new('--oauth2-token-command', '--oauth2-token-command', [CompletionResultType]::ParameterName, 'Run this shell command and use the first line of its output as an OAuth2 access token (XOAUTH2 / OAUTHBEARER, as Gmail and Microsoft 365 require). Implies --auth xoauth2 unless --auth oauthbearer is given')
            [CompletionResult]::new('--connect-timeout', '--connect-timeout', [CompletionResultType]::ParameterName, 'Seconds to wait for a TCP connection and TLS handshake')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Seconds to wait for any reply from the server before giving up')
            [CompletionResult]::new('--keep-days', '--keep-days', [CompletionResultType]::ParameterName, 'Delete from the server only messages archived at least this many days ago (so the server keeps recent mail for other devices). Implies --delete-after-backup')
            [CompletionResult]::new('--folder', '--folder', [CompletionResultType]::ParameterName, 'IMAP: back up only mailboxes matching this glob (repeatable; `*` stays within one level, `**` crosses levels; names as LIST shows them decoded, levels joined with `/`)')
            [CompletionResult]::new('--exclude', '--exclude', [CompletionResultType]::ParameterName, 'IMAP: skip mailboxes matching this glob (repeatable)')
            [CompletionResult]::new('--jobs', '--jobs', [CompletionResultType]::ParameterName, 'IMAP: connections working on different mailboxes at once')
            [CompletionResult]::new('--allow-plaintext', '--allow-plaintext', [CompletionResultType]::ParameterName, 'Allow logging in without TLS when a pop3:// or imap:// server offers no STLS/STARTTLS. The password then crosses the network readable by anyone on the path')
            [CompletionResult]::new('--delete-after-backup', '--delete-after-backup', [CompletionResultType]::ParameterName, 'After every message is durably archived and recorded, delete the archived messages from the server (POP3 DELE). Nothing is deleted when anything in the run failed')
            [CompletionResult]::new('--mirror', '--mirror', [CompletionResultType]::ParameterName, 'IMAP: remove from a Maildir archive the messages that were deleted on the server (only after a complete listing of that mailbox). Without it the archive keeps them')
            [CompletionResult]::new('--dedup', '--dedup', [CompletionResultType]::ParameterName, 'IMAP: store a message whose exact bytes are already in the archive only once (e.g. Gmail''s `[Gmail]/All Mail`, which holds every message again). The ledger still records it in every mailbox')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print nothing on success; errors still go to stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print nothing on success; errors still go to stderr')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print the run''s report as one JSON object on stdout')
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
            [CompletionResult]::new('--auth', '--auth', [CompletionResultType]::ParameterName, 'Authentication mechanism')
            [CompletionResult]::new('--oauth2-token-command', '--oauth2-token-command', [CompletionResultType]::ParameterName, 'Run this shell command and use the first line of its output as an OAuth2 access token (XOAUTH2 / OAUTHBEARER, as Gmail and Microsoft 365 require). Implies --auth xoauth2 unless --auth oauthbearer is given')
            [CompletionResult]::new('--connect-timeout', '--connect-timeout', [CompletionResultType]::ParameterName, 'Seconds to wait for a TCP connection and TLS handshake')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Seconds to wait for any reply from the server before giving up')
            [CompletionResult]::new('--into', '--into', [CompletionResultType]::ParameterName, 'Put every mailbox under this folder (levels separated by `/`, e.g. `Restored/2024`); INBOX becomes PREFIX/INBOX')
            [CompletionResult]::new('--map', '--map', [CompletionResultType]::ParameterName, 'Restore the archive''s mailbox SRC (and its subfolders) as DST (repeatable; names with levels separated by `/`, e.g. --map ''Sent Items=Sent'')')
            [CompletionResult]::new('--allow-plaintext', '--allow-plaintext', [CompletionResultType]::ParameterName, 'Allow logging in without TLS when a pop3:// or imap:// server offers no STLS/STARTTLS. The password then crosses the network readable by anyone on the path')
            [CompletionResult]::new('--dry-run', '--dry-run', [CompletionResultType]::ParameterName, 'Print the plan (folder mapping, messages to upload and already present per folder) and change nothing: no folder created, no message appended, nothing recorded')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print nothing on success; errors still go to stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print nothing on success; errors still go to stderr')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print the run''s report as one JSON object on stdout')
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
            [CompletionResult]::new('--auth', '--auth', [CompletionResultType]::ParameterName, 'Authentication mechanism')
            [CompletionResult]::new('--oauth2-token-command', '--oauth2-token-command', [CompletionResultType]::ParameterName, 'Run this shell command and use the first line of its output as an OAuth2 access token (XOAUTH2 / OAUTHBEARER, as Gmail and Microsoft 365 require). Implies --auth xoauth2 unless --auth oauthbearer is given')
            [CompletionResult]::new('--connect-timeout', '--connect-timeout', [CompletionResultType]::ParameterName, 'Seconds to wait for a TCP connection and TLS handshake')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Seconds to wait for any reply from the server before giving up')
            [CompletionResult]::new('--allow-plaintext', '--allow-plaintext', [CompletionResultType]::ParameterName, 'Allow logging in without TLS when a pop3:// or imap:// server offers no STLS/STARTTLS. The password then crosses the network readable by anyone on the path')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print JSON instead of a table')
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
            [CompletionResult]::new('--auth', '--auth', [CompletionResultType]::ParameterName, 'Authentication mechanism')
            [CompletionResult]::new('--oauth2-token-command', '--oauth2-token-command', [CompletionResultType]::ParameterName, 'Run this shell command and use the first line of its output as an OAuth2 access token (XOAUTH2 / OAUTHBEARER, as Gmail and Microsoft 365 require). Implies --auth xoauth2 unless --auth oauthbearer is given')
            [CompletionResult]::new('--connect-timeout', '--connect-timeout', [CompletionResultType]::ParameterName, 'Seconds to wait for a TCP connection and TLS handshake')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Seconds to wait for any reply from the server before giving up')
            [CompletionResult]::new('--warn-at', '--warn-at', [CompletionResultType]::ParameterName, 'Warn (and exit 1) when a quota resource is used above this percentage')
            [CompletionResult]::new('--allow-plaintext', '--allow-plaintext', [CompletionResultType]::ParameterName, 'Allow logging in without TLS when a pop3:// or imap:// server offers no STLS/STARTTLS. The password then crosses the network readable by anyone on the path')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print JSON instead of a table')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'mailkeep;completions' {
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'mailkeep;help' {
            [CompletionResult]::new('backup', 'backup', [CompletionResultType]::ParameterValue, 'Copy every message not yet archived from a mail server into a local archive')
            [CompletionResult]::new('restore', 'restore', [CompletionResultType]::ParameterValue, 'Upload an archive''s messages to an IMAP account, with flags, keywords and dates, never twice')
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'Show the mailboxes of an IMAP account with message counts and sizes (STATUS)')
            [CompletionResult]::new('quota', 'quota', [CompletionResultType]::ParameterValue, 'Show the quota usage and limits of an IMAP account (GETQUOTAROOT, RFC 9208)')
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
        'mailkeep;help;list' {
            break
        }
        'mailkeep;help;quota' {
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
