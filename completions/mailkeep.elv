
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
            cand --trace 'Write the protocol exchange with every server to stderr (`trace HOST:PORT#N C: ...` for what mailkeep sends, `S: ...` for what the server answers), to diagnose a server. The login exchange is shown as [redacted] (LOGIN, AUTHENTICATE, PASS, APOP, AUTH) and message bodies as [N octets]'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
            cand backup 'Copy every message not yet archived from a mail server into a local archive'
            cand restore 'Upload an archive''s messages to an IMAP account, with flags, keywords and dates, never twice'
            cand migrate 'Copy a mail account into an IMAP account: POP3 to IMAP or IMAP to IMAP, with flags, keywords and dates, never twice'
            cand convert 'Copy every message of one archive into another, with flags, keywords, dates and folders'
            cand list 'Show the mailboxes of an IMAP account (STATUS), or of a local archive with counts, sizes and dates; with --messages (archives) one line per message'
            cand verify 'Check a mailkeep archive: every message the ledger records is there with its SHA-256, mbox files parse, nothing is left in tmp/; with --against, compare with the server'
            cand export 'Write an archive''s messages (all, or those matching the filters) as .eml files into a folder, one subfolder per mailbox, never overwriting a file'
            cand quota 'Show the quota usage and limits of an IMAP account (GETQUOTAROOT, RFC 9208)'
            cand run 'Run the jobs of a config file (all of them, in file order, or those named), as cron or a systemd timer would: each archive locked, temporary failures retried, one exit code'
            cand prune 'Delete from a server old messages whose exact bytes are verified in the archive, to free space'
            cand completions 'Print a shell completion script to stdout'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'mailkeep;backup'= {
            cand --password-env 'Read the password from this environment variable'
            cand --password-command 'Run this shell command and use the first line of its output as the password'
            cand --password-file 'Read the password from the first line of this file (must not be readable by group or others: chmod 600)'
            cand --tls-ca 'Trust this CA certificate (PEM) in addition to the system''s, e.g. for a server with a self-signed or private-CA certificate'
            cand --tls-fingerprint 'Accept only the server certificate with this SHA-256 fingerprint (64 hex digits, colons optional, as `openssl x509 -noout -fingerprint -sha256` prints). With a pin, the certificate chain and host name are not checked: a pinned self-signed certificate works without --tls-ca'
            cand --auth 'Authentication mechanism'
            cand --oauth2-token-command 'Run this shell command and use the first line of its output as an OAuth2 access token (XOAUTH2 / OAUTHBEARER, as Gmail and Microsoft 365 require). Implies --auth xoauth2 unless --auth oauthbearer is given'
            cand --connect-timeout 'Seconds to wait for a TCP connection and TLS handshake'
            cand --timeout 'Seconds to wait for any reply from the server before giving up'
            cand --keep-days 'Delete from the server only messages archived at least this many days ago (so the server keeps recent mail for other devices). Implies --delete-after-backup'
            cand --folder 'IMAP: back up only mailboxes matching this pattern (repeatable; `*` stays within one level, `**` crosses levels, `?` is one character, anything else matches itself, so `[Gmail]/All Mail` is that folder; `glob:PATTERN` for the whole glob syntax; names as LIST shows them decoded, levels joined with `/`). A pattern matching no mailbox is an error'
            cand --exclude 'IMAP: skip mailboxes matching this pattern (repeatable; as --folder)'
            cand --jobs 'IMAP: connections working on different mailboxes at once'
            cand --max-message-size 'Refuse a message larger than SIZE bytes (a number, or with K, M or G: 50M, 2G), from a server or an archive, before reading it into memory or writing it anywhere: it is named, counted as failed (exit 1) and tried again next run'
            cand --allow-plaintext 'Allow logging in without TLS when a pop3:// or imap:// server offers no STLS/STARTTLS. The password then crosses the network readable by anyone on the path'
            cand --store 'zip: store messages uncompressed instead of deflating them'
            cand --delete-after-backup 'After every message is durably archived and recorded, delete the archived messages from the server (POP3 DELE). Nothing is deleted when anything in the run failed'
            cand --mirror 'IMAP: remove from a Maildir archive the messages that were deleted on the server (only after a complete listing of that mailbox). Without it the archive keeps them'
            cand --dedup 'IMAP: store a message whose exact bytes are already in the archive only once (e.g. Gmail folder by folder, whose `[Gmail]/All Mail` holds every message again; a Gmail backup by label stores each message once without it). The ledger still records it in every mailbox'
            cand --gmail-folders 'Gmail: back up folder by folder like any server (one copy per label folder, All Mail included) instead of each message once with its labels (the default for a server with X-GM-EXT-1 when no --folder or --exclude is given)'
            cand --gmail-spam-trash 'Gmail: a backup by label includes Spam and Trash (left out by default)'
            cand -q 'Print nothing on success; errors still go to stderr'
            cand --quiet 'Print nothing on success; errors still go to stderr'
            cand --json 'Print the run''s report as one JSON object on stdout'
            cand --trace 'Write the protocol exchange with every server to stderr (`trace HOST:PORT#N C: ...` for what mailkeep sends, `S: ...` for what the server answers), to diagnose a server. The login exchange is shown as [redacted] (LOGIN, AUTHENTICATE, PASS, APOP, AUTH) and message bodies as [N octets]'
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
            cand --tls-fingerprint 'Accept only the server certificate with this SHA-256 fingerprint (64 hex digits, colons optional, as `openssl x509 -noout -fingerprint -sha256` prints). With a pin, the certificate chain and host name are not checked: a pinned self-signed certificate works without --tls-ca'
            cand --auth 'Authentication mechanism'
            cand --oauth2-token-command 'Run this shell command and use the first line of its output as an OAuth2 access token (XOAUTH2 / OAUTHBEARER, as Gmail and Microsoft 365 require). Implies --auth xoauth2 unless --auth oauthbearer is given'
            cand --connect-timeout 'Seconds to wait for a TCP connection and TLS handshake'
            cand --timeout 'Seconds to wait for any reply from the server before giving up'
            cand --into 'Put every mailbox under this folder (levels separated by `/`, e.g. `Restored/2024`); INBOX becomes PREFIX/INBOX'
            cand --map 'Restore the archive''s mailbox SRC (and its subfolders) as DST (repeatable; names with levels separated by `/`, e.g. --map ''Sent Items=Sent'')'
            cand --jobs 'Connections uploading to different target mailboxes at once'
            cand --max-message-size 'Refuse a message larger than SIZE bytes (a number, or with K, M or G: 50M, 2G), from a server or an archive, before reading it into memory or writing it anywhere: it is named, counted as failed (exit 1) and tried again next run'
            cand --allow-plaintext 'Allow logging in without TLS when a pop3:// or imap:// server offers no STLS/STARTTLS. The password then crosses the network readable by anyone on the path'
            cand --dry-run 'Print the plan (folder mapping, messages to upload and already present per folder) and change nothing: no folder created, no message appended, nothing recorded'
            cand -q 'Print nothing on success; errors still go to stderr'
            cand --quiet 'Print nothing on success; errors still go to stderr'
            cand --json 'Print the run''s report as one JSON object on stdout'
            cand --trace 'Write the protocol exchange with every server to stderr (`trace HOST:PORT#N C: ...` for what mailkeep sends, `S: ...` for what the server answers), to diagnose a server. The login exchange is shown as [redacted] (LOGIN, AUTHENTICATE, PASS, APOP, AUTH) and message bodies as [N octets]'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'mailkeep;migrate'= {
            cand --source-password-env 'Read the source server''s password from this environment variable'
            cand --source-password-command 'Run this shell command and use the first line of its output as the source password'
            cand --source-password-file 'Read the source password from the first line of this file (chmod 600)'
            cand --source-tls-ca 'Trust this CA certificate (PEM) for the source server'
            cand --source-tls-fingerprint 'Accept only the source server certificate with this SHA-256 fingerprint (chain and host name are then not checked)'
            cand --source-auth 'Authentication mechanism for the source'
            cand --source-oauth2-token-command 'OAuth2 access token command for the source (XOAUTH2 / OAUTHBEARER)'
            cand --target-password-env 'Read the target server''s password from this environment variable'
            cand --target-password-command 'Run this shell command and use the first line of its output as the target password'
            cand --target-password-file 'Read the target password from the first line of this file (chmod 600)'
            cand --target-tls-ca 'Trust this CA certificate (PEM) for the target server'
            cand --target-tls-fingerprint 'Accept only the target server certificate with this SHA-256 fingerprint (chain and host name are then not checked)'
            cand --target-auth 'Authentication mechanism for the target'
            cand --target-oauth2-token-command 'OAuth2 access token command for the target (XOAUTH2 / OAUTHBEARER)'
            cand --connect-timeout 'Seconds to wait for a TCP connection and TLS handshake (both servers)'
            cand --timeout 'Seconds to wait for any reply from a server before giving up (both servers)'
            cand --via 'First back up SOURCE into this local archive (maildir:PATH or mbox:PATH, as `backup` does), then restore from it: a local copy exists when the migration is over'
            cand --folder 'IMAP source: copy only mailboxes matching this pattern (repeatable; as for backup)'
            cand --exclude 'IMAP source: skip mailboxes matching this pattern (repeatable; as for backup)'
            cand --into 'Put every mailbox under this folder on the target (levels separated by `/`)'
            cand --map 'Copy the source mailbox SRC (and its subfolders) as DST (repeatable)'
            cand --jobs 'IMAP source: connection pairs working on different mailboxes at once (a POP3 source is read by one connection)'
            cand --max-message-size 'Refuse a message larger than SIZE bytes (a number, or with K, M or G: 50M, 2G), from a server or an archive, before reading it into memory or writing it anywhere: it is named, counted as failed (exit 1) and tried again next run'
            cand --source-allow-plaintext 'Allow logging in to a pop3:// or imap:// source without TLS when it offers none'
            cand --target-allow-plaintext 'Allow logging in to an imap:// target without TLS when it offers no STARTTLS'
            cand --delete-after-migrate 'POP3: after the run, delete from the source the messages the target holds (appended or found there, as recorded). Nothing is deleted when anything in the run failed'
            cand --seen 'POP3: upload the messages as read (\Seen). POP3 has no flags, so without it they arrive unread'
            cand --dry-run 'Print the plan (folder mapping, messages to copy and already present per folder) and change nothing on either server'
            cand -q 'Print nothing on success; errors still go to stderr'
            cand --quiet 'Print nothing on success; errors still go to stderr'
            cand --json 'Print the run''s report as one JSON object on stdout'
            cand --trace 'Write the protocol exchange with every server to stderr (`trace HOST:PORT#N C: ...` for what mailkeep sends, `S: ...` for what the server answers), to diagnose a server. The login exchange is shown as [redacted] (LOGIN, AUTHENTICATE, PASS, APOP, AUTH) and message bodies as [N octets]'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'mailkeep;convert'= {
            cand --max-message-size 'Refuse a message larger than SIZE bytes (a number, or with K, M or G: 50M, 2G), from a server or an archive, before reading it into memory or writing it anywhere: it is named, counted as failed (exit 1) and tried again next run'
            cand --store 'zip: store messages uncompressed instead of deflating them'
            cand -q 'Print nothing on success; errors still go to stderr'
            cand --quiet 'Print nothing on success; errors still go to stderr'
            cand --json 'Print the run''s report as one JSON object on stdout'
            cand --trace 'Write the protocol exchange with every server to stderr (`trace HOST:PORT#N C: ...` for what mailkeep sends, `S: ...` for what the server answers), to diagnose a server. The login exchange is shown as [redacted] (LOGIN, AUTHENTICATE, PASS, APOP, AUTH) and message bodies as [N octets]'
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
            cand --tls-fingerprint 'Accept only the server certificate with this SHA-256 fingerprint (64 hex digits, colons optional, as `openssl x509 -noout -fingerprint -sha256` prints). With a pin, the certificate chain and host name are not checked: a pinned self-signed certificate works without --tls-ca'
            cand --auth 'Authentication mechanism'
            cand --oauth2-token-command 'Run this shell command and use the first line of its output as an OAuth2 access token (XOAUTH2 / OAUTHBEARER, as Gmail and Microsoft 365 require). Implies --auth xoauth2 unless --auth oauthbearer is given'
            cand --connect-timeout 'Seconds to wait for a TCP connection and TLS handshake'
            cand --timeout 'Seconds to wait for any reply from the server before giving up'
            cand --max-message-size 'Refuse a message larger than SIZE bytes (a number, or with K, M or G: 50M, 2G), from a server or an archive, before reading it into memory or writing it anywhere: it is named, counted as failed (exit 1) and tried again next run'
            cand --allow-plaintext 'Allow logging in without TLS when a pop3:// or imap:// server offers no STLS/STARTTLS. The password then crosses the network readable by anyone on the path'
            cand --json 'Print JSON instead of a table'
            cand --messages 'Archives: one line per message (date, size, flags, sender, subject decoded)'
            cand --trace 'Write the protocol exchange with every server to stderr (`trace HOST:PORT#N C: ...` for what mailkeep sends, `S: ...` for what the server answers), to diagnose a server. The login exchange is shown as [redacted] (LOGIN, AUTHENTICATE, PASS, APOP, AUTH) and message bodies as [N octets]'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'mailkeep;verify'= {
            cand --against 'Also list this account (imaps://, imap://, pop3s://, pop3://USER@HOST[:PORT]) and report per mailbox what is on the server, in the archive, missing from it, only in it'
            cand --password-env 'Read the password from this environment variable'
            cand --password-command 'Run this shell command and use the first line of its output as the password'
            cand --password-file 'Read the password from the first line of this file (must not be readable by group or others: chmod 600)'
            cand --tls-ca 'Trust this CA certificate (PEM) in addition to the system''s, e.g. for a server with a self-signed or private-CA certificate'
            cand --tls-fingerprint 'Accept only the server certificate with this SHA-256 fingerprint (64 hex digits, colons optional, as `openssl x509 -noout -fingerprint -sha256` prints). With a pin, the certificate chain and host name are not checked: a pinned self-signed certificate works without --tls-ca'
            cand --auth 'Authentication mechanism'
            cand --oauth2-token-command 'Run this shell command and use the first line of its output as an OAuth2 access token (XOAUTH2 / OAUTHBEARER, as Gmail and Microsoft 365 require). Implies --auth xoauth2 unless --auth oauthbearer is given'
            cand --connect-timeout 'Seconds to wait for a TCP connection and TLS handshake'
            cand --timeout 'Seconds to wait for any reply from the server before giving up'
            cand --folder 'With --against an IMAP account: compare only mailboxes matching this pattern (repeatable; as backup''s --folder)'
            cand --exclude 'With --against an IMAP account: leave out mailboxes matching this pattern (repeatable)'
            cand --max-message-size 'Refuse a message larger than SIZE bytes (a number, or with K, M or G: 50M, 2G), from a server or an archive, before reading it into memory or writing it anywhere: it is named, counted as failed (exit 1) and tried again next run'
            cand --allow-plaintext 'Allow logging in without TLS when a pop3:// or imap:// server offers no STLS/STARTTLS. The password then crosses the network readable by anyone on the path'
            cand -q 'Print nothing when everything checks out'
            cand --quiet 'Print nothing when everything checks out'
            cand --json 'Print the report as one JSON object on stdout'
            cand --trace 'Write the protocol exchange with every server to stderr (`trace HOST:PORT#N C: ...` for what mailkeep sends, `S: ...` for what the server answers), to diagnose a server. The login exchange is shown as [redacted] (LOGIN, AUTHENTICATE, PASS, APOP, AUTH) and message bodies as [N octets]'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'mailkeep;export'= {
            cand --to 'The folder to write into (created if missing; must be outside the archive)'
            cand --mailbox 'Only mailboxes matching this pattern (repeatable; `*` stays within one level, `**` crosses levels, as backup''s --folder)'
            cand --since 'Only messages dated on or after this day (YYYY-MM-DD, UTC)'
            cand --before 'Only messages dated before this day (YYYY-MM-DD, UTC)'
            cand --from 'Only messages whose decoded From: header (`Name <address>`) contains this text (any case)'
            cand --subject 'Only messages whose decoded Subject: contains this text (any case)'
            cand --max-message-size 'Refuse a message larger than SIZE bytes (a number, or with K, M or G: 50M, 2G), from a server or an archive, before reading it into memory or writing it anywhere: it is named, counted as failed (exit 1) and tried again next run'
            cand --crlf 'Write CRLF line ends (the RFC 5322 form) instead of the stored LF'
            cand -q 'Print nothing on success; errors still go to stderr'
            cand --quiet 'Print nothing on success; errors still go to stderr'
            cand --json 'Print the run''s report as one JSON object on stdout'
            cand --trace 'Write the protocol exchange with every server to stderr (`trace HOST:PORT#N C: ...` for what mailkeep sends, `S: ...` for what the server answers), to diagnose a server. The login exchange is shown as [redacted] (LOGIN, AUTHENTICATE, PASS, APOP, AUTH) and message bodies as [N octets]'
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
            cand --tls-fingerprint 'Accept only the server certificate with this SHA-256 fingerprint (64 hex digits, colons optional, as `openssl x509 -noout -fingerprint -sha256` prints). With a pin, the certificate chain and host name are not checked: a pinned self-signed certificate works without --tls-ca'
            cand --auth 'Authentication mechanism'
            cand --oauth2-token-command 'Run this shell command and use the first line of its output as an OAuth2 access token (XOAUTH2 / OAUTHBEARER, as Gmail and Microsoft 365 require). Implies --auth xoauth2 unless --auth oauthbearer is given'
            cand --connect-timeout 'Seconds to wait for a TCP connection and TLS handshake'
            cand --timeout 'Seconds to wait for any reply from the server before giving up'
            cand --warn-at 'Warn (and exit 1) when a quota resource is used above this percentage'
            cand --allow-plaintext 'Allow logging in without TLS when a pop3:// or imap:// server offers no STLS/STARTTLS. The password then crosses the network readable by anyone on the path'
            cand --json 'Print JSON instead of a table'
            cand --trace 'Write the protocol exchange with every server to stderr (`trace HOST:PORT#N C: ...` for what mailkeep sends, `S: ...` for what the server answers), to diagnose a server. The login exchange is shown as [redacted] (LOGIN, AUTHENTICATE, PASS, APOP, AUTH) and message bodies as [N octets]'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'mailkeep;run'= {
            cand --config 'The config file (default: $XDG_CONFIG_HOME/mailkeep/config.toml, else ~/.config/mailkeep/config.toml)'
            cand --log-file 'Append one line per event (job started, retried, finished, with counts) to this file, created private (0600). Overrides the config file''s `log_file`'
            cand --check 'Check the config file and print the jobs it would run; run nothing'
            cand -q 'Print nothing on success; errors still go to stderr (cron mails only failures)'
            cand --quiet 'Print nothing on success; errors still go to stderr (cron mails only failures)'
            cand --json 'Print one JSON report per job on stdout (one object per line)'
            cand --trace 'Write the protocol exchange with every server to stderr (`trace HOST:PORT#N C: ...` for what mailkeep sends, `S: ...` for what the server answers), to diagnose a server. The login exchange is shown as [redacted] (LOGIN, AUTHENTICATE, PASS, APOP, AUTH) and message bodies as [N octets]'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'mailkeep;prune'= {
            cand --archive 'The archive it was backed up into: maildir:PATH, mbox:PATH or a mailkeep archive''s PATH'
            cand --older-than 'Delete only messages older than this: days (`365d`), weeks (`8w`) or years (`2y`, 365 days each), counted back from now; IMAP by INTERNALDATE, POP3 by the archived date'
            cand --password-env 'Read the password from this environment variable'
            cand --password-command 'Run this shell command and use the first line of its output as the password'
            cand --password-file 'Read the password from the first line of this file (must not be readable by group or others: chmod 600)'
            cand --tls-ca 'Trust this CA certificate (PEM) in addition to the system''s, e.g. for a server with a self-signed or private-CA certificate'
            cand --tls-fingerprint 'Accept only the server certificate with this SHA-256 fingerprint (64 hex digits, colons optional, as `openssl x509 -noout -fingerprint -sha256` prints). With a pin, the certificate chain and host name are not checked: a pinned self-signed certificate works without --tls-ca'
            cand --auth 'Authentication mechanism'
            cand --oauth2-token-command 'Run this shell command and use the first line of its output as an OAuth2 access token (XOAUTH2 / OAUTHBEARER, as Gmail and Microsoft 365 require). Implies --auth xoauth2 unless --auth oauthbearer is given'
            cand --connect-timeout 'Seconds to wait for a TCP connection and TLS handshake'
            cand --timeout 'Seconds to wait for any reply from the server before giving up'
            cand --folder 'IMAP: prune only mailboxes matching this pattern (repeatable; as backup''s --folder)'
            cand --exclude 'IMAP: leave mailboxes matching this pattern alone (repeatable)'
            cand --allow-plaintext 'Allow logging in without TLS when a pop3:// or imap:// server offers no STLS/STARTTLS. The password then crosses the network readable by anyone on the path'
            cand --dry-run 'Print what would be deleted and change nothing (the default without --yes)'
            cand --yes 'Really delete. Without it, prune only prints what it would delete'
            cand -q 'Print nothing on success; errors still go to stderr'
            cand --quiet 'Print nothing on success; errors still go to stderr'
            cand --json 'Print the run''s report as one JSON object on stdout'
            cand --trace 'Write the protocol exchange with every server to stderr (`trace HOST:PORT#N C: ...` for what mailkeep sends, `S: ...` for what the server answers), to diagnose a server. The login exchange is shown as [redacted] (LOGIN, AUTHENTICATE, PASS, APOP, AUTH) and message bodies as [N octets]'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'mailkeep;completions'= {
            cand --trace 'Write the protocol exchange with every server to stderr (`trace HOST:PORT#N C: ...` for what mailkeep sends, `S: ...` for what the server answers), to diagnose a server. The login exchange is shown as [redacted] (LOGIN, AUTHENTICATE, PASS, APOP, AUTH) and message bodies as [N octets]'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'mailkeep;help'= {
            cand backup 'Copy every message not yet archived from a mail server into a local archive'
            cand restore 'Upload an archive''s messages to an IMAP account, with flags, keywords and dates, never twice'
            cand migrate 'Copy a mail account into an IMAP account: POP3 to IMAP or IMAP to IMAP, with flags, keywords and dates, never twice'
            cand convert 'Copy every message of one archive into another, with flags, keywords, dates and folders'
            cand list 'Show the mailboxes of an IMAP account (STATUS), or of a local archive with counts, sizes and dates; with --messages (archives) one line per message'
            cand verify 'Check a mailkeep archive: every message the ledger records is there with its SHA-256, mbox files parse, nothing is left in tmp/; with --against, compare with the server'
            cand export 'Write an archive''s messages (all, or those matching the filters) as .eml files into a folder, one subfolder per mailbox, never overwriting a file'
            cand quota 'Show the quota usage and limits of an IMAP account (GETQUOTAROOT, RFC 9208)'
            cand run 'Run the jobs of a config file (all of them, in file order, or those named), as cron or a systemd timer would: each archive locked, temporary failures retried, one exit code'
            cand prune 'Delete from a server old messages whose exact bytes are verified in the archive, to free space'
            cand completions 'Print a shell completion script to stdout'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'mailkeep;help;backup'= {
        }
        &'mailkeep;help;restore'= {
        }
        &'mailkeep;help;migrate'= {
        }
        &'mailkeep;help;convert'= {
        }
        &'mailkeep;help;list'= {
        }
        &'mailkeep;help;verify'= {
        }
        &'mailkeep;help;export'= {
        }
        &'mailkeep;help;quota'= {
        }
        &'mailkeep;help;run'= {
        }
        &'mailkeep;help;prune'= {
        }
        &'mailkeep;help;completions'= {
        }
        &'mailkeep;help;help'= {
        }
    ]
    $completions[$command]
}
