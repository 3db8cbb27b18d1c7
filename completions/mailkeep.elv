
use builtin;
use str;

set edit:completion:arg-completer[mailkeep] = {|@words|
    fn spaces {|n|
        builtin:repeat $n ' ' | str:join ''
    }
    fn cand {|text desc|
        edit:complex-candidate $text &display=$text' '(spaces (- 14 (wcswidth $text)))$desc
    }
    var command = 'mailkeep'
    for word $words[1..-1] {
        if (str:has-prefix $word '-') {
            break
        }
        set command = $command';'$word
    }
    var completions = [
        &'mailkeep'= {
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
            cand backup 'Copy every message not yet archived from a mail server into a local archive'
            cand restore 'Upload an archive''s messages to an IMAP account, with flags, keywords and dates, never twice'
            cand list 'Show the mailboxes of an IMAP account with message counts and sizes (STATUS)'
            cand quota 'Show the quota usage and limits of an IMAP account (GETQUOTAROOT, RFC 9208)'
            cand completions 'Print a shell completion script to stdout'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'mailkeep;backup'= {
            cand --password-env 'Read the password from this environment variable'
            cand --password-command 'Run this shell command and use the first line of its output as the password'
            cand --password-file 'Read the password from the first line of this file (must not be readable by group or others: chmod 600)'
            cand --tls-ca 'Trust this CA certificate (PEM) in addition to the system''s, e.g. for a server with a self-signed or private-CA certificate'
            cand --auth 'Authentication mechanism'
            cand --oauth2-token-command 'Run this shell command and use the first line of its output as an OAuth2 access token (XOAUTH2 / OAUTHBEARER, as Gmail and Microsoft 365 require). Implies --auth xoauth2 unless --auth oauthbearer is given'
            cand --connect-timeout 'Seconds to wait for a TCP connection and TLS handshake'
            cand --timeout 'Seconds to wait for any reply from the server before giving up'
            cand --keep-days 'Delete from the server only messages archived at least this many days ago (so the server keeps recent mail for other devices). Implies --delete-after-backup'
            cand --folder 'IMAP: back up only mailboxes matching this glob (repeatable; `*` stays within one level, `**` crosses levels; names as LIST shows them decoded, levels joined with `/`)'
            cand --exclude 'IMAP: skip mailboxes matching this glob (repeatable)'
            cand --jobs 'IMAP: connections working on different mailboxes at once'
            cand --allow-plaintext 'Allow logging in without TLS when a pop3:// or imap:// server offers no STLS/STARTTLS. The password then crosses the network readable by anyone on the path'
            cand --delete-after-backup 'After every message is durably archived and recorded, delete the archived messages from the server (POP3 DELE). Nothing is deleted when anything in the run failed'
            cand --mirror 'IMAP: remove from a Maildir archive the messages that were deleted on the server (only after a complete listing of that mailbox). Without it the archive keeps them'
            cand --dedup 'IMAP: store a message whose exact bytes are already in the archive only once (e.g. Gmail''s `[Gmail]/All Mail`, which holds every message again). The ledger still records it in every mailbox'
            cand -q 'Print nothing on success; errors still go to stderr'
            cand --quiet 'Print nothing on success; errors still go to stderr'
            cand --json 'Print the run''s report as one JSON object on stdout'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'mailkeep;restore'= {
            cand --password-env 'Read the password from this environment variable'
            cand --password-command 'Run this shell command and use the first line of its output as the password'
            cand --password-file 'Read the password from the first line of this file (must not be readable by group or others: chmod 600)'
            cand --tls-ca 'Trust this CA certificate (PEM) in addition to the system''s, e.g. for a server with a self-signed or private-CA certificate'
            cand --auth 'Authentication mechanism'
            cand --oauth2-token-command 'Run this shell command and use the first line of its output as an OAuth2 access token (XOAUTH2 / OAUTHBEARER, as Gmail and Microsoft 365 require). Implies --auth xoauth2 unless --auth oauthbearer is given'
            cand --connect-timeout 'Seconds to wait for a TCP connection and TLS handshake'
            cand --timeout 'Seconds to wait for any reply from the server before giving up'
            cand --into 'Put every mailbox under this folder (levels separated by `/`, e.g. `Restored/2024`); INBOX becomes PREFIX/INBOX'
            cand --map 'Restore the archive''s mailbox SRC (and its subfolders) as DST (repeatable; names with levels separated by `/`, e.g. --map ''Sent Items=Sent'')'
            cand --allow-plaintext 'Allow logging in without TLS when a pop3:// or imap:// server offers no STLS/STARTTLS. The password then crosses the network readable by anyone on the path'
            cand --dry-run 'Print the plan (folder mapping, messages to upload and already present per folder) and change nothing: no folder created, no message appended, nothing recorded'
            cand -q 'Print nothing on success; errors still go to stderr'
            cand --quiet 'Print nothing on success; errors still go to stderr'
            cand --json 'Print the run''s report as one JSON object on stdout'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'mailkeep;list'= {
            cand --password-env 'Read the password from this environment variable'
            cand --password-command 'Run this shell command and use the first line of its output as the password'
            cand --password-file 'Read the password from the first line of this file (must not be readable by group or others: chmod 600)'
            cand --tls-ca 'Trust this CA certificate (PEM) in addition to the system''s, e.g. for a server with a self-signed or private-CA certificate'
            cand --auth 'Authentication mechanism'
            cand --oauth2-token-command 'Run this shell command and use the first line of its output as an OAuth2 access token (XOAUTH2 / OAUTHBEARER, as Gmail and Microsoft 365 require). Implies --auth xoauth2 unless --auth oauthbearer is given'
            cand --connect-timeout 'Seconds to wait for a TCP connection and TLS handshake'
            cand --timeout 'Seconds to wait for any reply from the server before giving up'
            cand --allow-plaintext 'Allow logging in without TLS when a pop3:// or imap:// server offers no STLS/STARTTLS. The password then crosses the network readable by anyone on the path'
            cand --json 'Print JSON instead of a table'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'mailkeep;quota'= {
            cand --password-env 'Read the password from this environment variable'
            cand --password-command 'Run this shell command and use the first line of its output as the password'
            cand --password-file 'Read the password from the first line of this file (must not be readable by group or others: chmod 600)'
            cand --tls-ca 'Trust this CA certificate (PEM) in addition to the system''s, e.g. for a server with a self-signed or private-CA certificate'
            cand --auth 'Authentication mechanism'
            cand --oauth2-token-command 'Run this shell command and use the first line of its output as an OAuth2 access token (XOAUTH2 / OAUTHBEARER, as Gmail and Microsoft 365 require). Implies --auth xoauth2 unless --auth oauthbearer is given'
            cand --connect-timeout 'Seconds to wait for a TCP connection and TLS handshake'
            cand --timeout 'Seconds to wait for any reply from the server before giving up'
            cand --warn-at 'Warn (and exit 1) when a quota resource is used above this percentage'
            cand --allow-plaintext 'Allow logging in without TLS when a pop3:// or imap:// server offers no STLS/STARTTLS. The password then crosses the network readable by anyone on the path'
            cand --json 'Print JSON instead of a table'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'mailkeep;completions'= {
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'mailkeep;help'= {
            cand backup 'Copy every message not yet archived from a mail server into a local archive'
            cand restore 'Upload an archive''s messages to an IMAP account, with flags, keywords and dates, never twice'
            cand list 'Show the mailboxes of an IMAP account with message counts and sizes (STATUS)'
            cand quota 'Show the quota usage and limits of an IMAP account (GETQUOTAROOT, RFC 9208)'
            cand completions 'Print a shell completion script to stdout'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'mailkeep;help;backup'= {
        }
        &'mailkeep;help;restore'= {
        }
        &'mailkeep;help;list'= {
        }
        &'mailkeep;help;quota'= {
        }
        &'mailkeep;help;completions'= {
        }
        &'mailkeep;help;help'= {
        }
    ]
    $completions[$command]
}
