
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
            cand completions 'Print a shell completion script to stdout'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'mailkeep;backup'= {
            cand --password-env 'Read the password from this environment variable'
            cand --password-command 'Run this shell command and use the first line of its output as the password'
            cand --password-file 'Read the password from the first line of this file (must not be readable by group or others: chmod 600)'
            cand --tls-ca 'Trust this CA certificate (PEM) in addition to the system''s, e.g. for a server with a self-signed or private-CA certificate'
            cand --auth 'Authentication mechanism'
            cand --connect-timeout 'Seconds to wait for a TCP connection and TLS handshake'
            cand --timeout 'Seconds to wait for any reply from the server before giving up'
            cand --keep-days 'Delete from the server only messages archived at least this many days ago (so the server keeps recent mail for other devices). Implies --delete-after-backup'
            cand --allow-plaintext 'Allow logging in without TLS when a pop3:// or imap:// server offers no STLS/STARTTLS. The password then crosses the network readable by anyone on the path'
            cand --delete-after-backup 'After every message is durably archived and recorded, delete the archived messages from the server (POP3 DELE). Nothing is deleted when anything in the run failed'
            cand -q 'Print nothing on success; errors still go to stderr'
            cand --quiet 'Print nothing on success; errors still go to stderr'
            cand --json 'Print the run''s report as one JSON object on stdout'
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
            cand completions 'Print a shell completion script to stdout'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'mailkeep;help;backup'= {
        }
        &'mailkeep;help;completions'= {
        }
        &'mailkeep;help;help'= {
        }
    ]
    $completions[$command]
}
