//! Passwords with any bytes log in (issue 15): spaces, quotes, a backslash, `(*%{`, non-ASCII
//! UTF-8, a leading space; on every login method, against a real Dovecot: POP3 USER/PASS
//! (RFC 1939 7: PASS takes the rest of the line), APOP (MD5 of the timestamp and the UTF-8
//! bytes), AUTH PLAIN (RFC 5034, base64 of UTF-8), IMAP LOGIN (RFC 3501 6.2.3: quoted when
//! 7-bit, a literal otherwise) and AUTHENTICATE PLAIN. And, on a scripted server that offers
//! only LOGIN, the exact bytes of a LOGIN with literals (synchronising and LITERAL+), a literal
//! refused before the password is sent, and the `--trace` redaction of literals.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use mailkeep::core::endpoint::{Protocol, ServerSpec, TlsMode};
use mailkeep::protocol::imap::{ImapAuth, ImapClient, ImapError, ImapOptions};
use support::dovecot::{Dovecot, Options};
use support::mailkeep;
use support::run::{maildir_messages, Run};

const PASSWORDS: [&str; 5] = ["pa ss", "p\"a\\ss", "(*%{", "pässwörd€", " lead"];

const VAR: &str = "MAILKEEP_CREDENTIALS_PW";

fn message(user: &str) -> Vec<u8> {
    format!(
        "From: bob@example.com\r\nTo: {user}@example.com\r\nSubject: for {user}\r\nMessage-ID: <{user}@example.com>\r\n\r\nHello {user}.\r\n"
    )
    .into_bytes()
}

/// `mailkeep backup URL maildir:DIR --auth AUTH --tls-ca CA --password-env VAR --json`.
fn backup(
    d: &Dovecot,
    url: &str,
    dir: &std::path::Path,
    auth: &str,
    pw: &str,
    extra: &[&str],
) -> Run {
    let out = mailkeep()
        .args(["backup", url])
        .arg(format!("maildir:{}", dir.display()))
        .args(["--auth", auth])
        .arg("--tls-ca")
        .arg(&d.ca_pem)
        .args(["--password-env", VAR, "--json"])
        .args(extra)
        .env(VAR, pw)
        .output()
        .unwrap();
    Run::from_output(out)
}

#[test]
fn every_password_logs_in_on_every_method() {
    let d = Dovecot::start_with(Options {
        extra_config: "auth_mechanisms = plain login apop\n".into(),
        ..Options::default()
    });
    let tmp = tempfile::tempdir().unwrap();
    for (i, pw) in PASSWORDS.iter().enumerate() {
        let u = d.add_user(&format!("user{i}"), pw);
        u.seed_message("INBOX", &message(&u.name), "", None);
        let stored = mailkeep::core::message::crlf_to_lf(&message(&u.name));
        // (method, URL scheme, --auth, extra arguments)
        let methods: [(&str, &str, &str, &[&str]); 5] = [
            ("POP3 USER/PASS", "pop3s", "user", &[]),
            ("POP3 AUTH PLAIN", "pop3s", "plain", &[]),
            // APOP is for sessions without TLS (the password is not sent); Dovecot's plain
            // port offers STLS, which mailkeep takes, and APOP then runs inside TLS.
            ("POP3 APOP", "pop3", "apop", &[]),
            ("IMAP LOGIN", "imaps", "login", &[]),
            ("IMAP AUTHENTICATE PLAIN", "imaps", "plain", &[]),
        ];
        for (j, (method, scheme, auth, extra)) in methods.iter().enumerate() {
            let dir = tmp.path().join(format!("u{i}-m{j}"));
            let run = backup(&d, &d.url(scheme, &u), &dir, auth, pw, extra);
            assert_eq!(run.code, 0, "{method} with password {pw:?}: {run:#?}");
            assert_eq!(
                (run.n("listed"), run.n("fetched")),
                (1, 1),
                "{method} {pw:?}: {run:#?}"
            );
            let files = maildir_messages(&dir);
            assert_eq!(files.len(), 1, "{method} {pw:?}");
            assert_eq!(files[0].1, stored, "{method} {pw:?}: archived bytes");
            assert!(!run.stderr.contains(pw) && !run.stdout.contains(pw));
        }
        // A wrong password (the right one with its leading/trailing space trimmed, or one
        // byte off) is refused: the login really compared these bytes.
        let wrong = if pw.trim() != *pw {
            pw.trim().to_string()
        } else {
            format!("{pw}x")
        };
        for (scheme, auth) in [("pop3s", "user"), ("imaps", "login")] {
            let dir = tmp.path().join(format!("u{i}-wrong-{auth}"));
            let run = backup(&d, &d.url(scheme, &u), &dir, auth, &wrong, &[]);
            assert_eq!(run.code, 3, "{scheme} {auth} {wrong:?}: {run:#?}");
        }
    }
}

#[test]
fn pop3_rejects_line_breaks_and_nul_before_sending() {
    use std::os::unix::fs::PermissionsExt;
    let d = Dovecot::start();
    let u = d.add_user("alice", "secret");
    let tmp = tempfile::tempdir().unwrap();
    // A NUL cannot travel in an environment variable: from a password file (mode 600).
    for (pw, auth) in [
        ("se\u{0}cret", "user"),
        ("se\rcret", "plain"),
        ("se\u{0}x", "apop"),
    ] {
        let file = tmp.path().join("pw");
        std::fs::write(&file, pw).unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        let out = mailkeep()
            .args(["backup", &d.url("pop3s", &u)])
            .arg(format!("maildir:{}", tmp.path().join("a").display()))
            .args(["--auth", auth])
            .arg("--tls-ca")
            .arg(&d.ca_pem)
            .arg("--password-file")
            .arg(&file)
            .output()
            .unwrap();
        let run = Run::from_output(out);
        assert_eq!(run.code, 3, "{pw:?}: {run:#?}");
        let lines: Vec<&str> = run.stderr.lines().collect();
        assert_eq!(
            lines,
            [format!(
                "mailkeep: authentication failed for alice@127.0.0.1:{}: the password contains a line break or NUL byte, which POP3 cannot send (RFC 1939 3); nothing was sent",
                d.pop3s_port
            )],
            "{pw:?}"
        );
        assert!(
            !tmp.path().join("a").exists(),
            "{pw:?}: an archive was created"
        );
    }
}

/// What a scripted LOGIN-only IMAP server received, byte for byte.
type Received = Arc<Mutex<Vec<u8>>>;

/// A scripted IMAP server on 127.0.0.1 offering `caps` (no AUTH=PLAIN): answers CAPABILITY,
/// a LOGIN with literals (`+ go ahead` for each synchronising literal; none for `{N+}`),
/// then `TAG OK`, or `refuse` (a tagged line) instead of the first `+`; LOGOUT. Everything
/// received is recorded.
fn login_only_server(caps: &'static str, refuse: Option<&'static str>) -> (u16, Received) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let received: Received = Arc::new(Mutex::new(Vec::new()));
    let rec = received.clone();
    std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let mut out = stream.try_clone().unwrap();
        let mut r = BufReader::new(stream);
        out.write_all(format!("* OK [CAPABILITY {caps}] ready\r\n").as_bytes())
            .unwrap();
        loop {
            let mut line = Vec::new();
            if r.read_until(b'\n', &mut line).unwrap_or(0) == 0 {
                return;
            }
            rec.lock().unwrap().extend_from_slice(&line);
            let text = String::from_utf8_lossy(&line).into_owned();
            let tag = text.split(' ').next().unwrap().to_string();
            let upper = text.to_ascii_uppercase();
            if upper.contains(" CAPABILITY") {
                out.write_all(format!("* CAPABILITY {caps}\r\n{tag} OK done\r\n").as_bytes())
                    .unwrap();
            } else if upper.contains(" LOGIN ") {
                // Literals until a line does not end in one.
                let mut cur = text;
                let mut refused = false;
                while let Some((n, plus)) = literal_at_end(&cur) {
                    if !plus {
                        if let Some(refusal) = refuse {
                            out.write_all(format!("{tag} {refusal}\r\n").as_bytes())
                                .unwrap();
                            refused = true;
                            break;
                        }
                        out.write_all(b"+ go ahead\r\n").unwrap();
                    }
                    let mut lit = vec![0; n];
                    r.read_exact(&mut lit).unwrap();
                    let mut more = Vec::new();
                    r.read_until(b'\n', &mut more).unwrap();
                    let mut rec = rec.lock().unwrap();
                    rec.extend_from_slice(&lit);
                    rec.extend_from_slice(&more);
                    cur = String::from_utf8_lossy(&more).into_owned();
                }
                if !refused {
                    out.write_all(format!("{tag} OK logged in\r\n").as_bytes())
                        .unwrap();
                }
            } else if upper.contains(" LOGOUT") {
                out.write_all(format!("* BYE\r\n{tag} OK bye\r\n").as_bytes())
                    .unwrap();
                return;
            } else {
                out.write_all(format!("{tag} BAD unexpected\r\n").as_bytes())
                    .unwrap();
            }
        }
    });
    (port, received)
}

/// The size of the literal a line ends with (`{N}` or `{N+}`), and whether it is `{N+}`.
fn literal_at_end(line: &str) -> Option<(usize, bool)> {
    let t = line.trim_end().strip_suffix('}')?;
    let open = t.rfind('{')?;
    let spec = &t[open + 1..];
    match spec.strip_suffix('+') {
        Some(n) => Some((n.parse().ok()?, true)),
        None => Some((spec.parse().ok()?, false)),
    }
}

fn imap_login(port: u16, user: &str, pw: &str) -> Result<ImapClient, ImapError> {
    let spec = ServerSpec {
        protocol: Protocol::Imap,
        tls: TlsMode::StartTls,
        user: user.into(),
        host: "127.0.0.1".into(),
        port,
    };
    let opts = ImapOptions {
        allow_plaintext: true,
        auth: ImapAuth::Auto,
        ..ImapOptions::default()
    };
    let mut c = ImapClient::connect(&spec, &opts)?;
    c.login(user, pw)?;
    Ok(c)
}

/// The received bytes from the LOGIN command on (the tag is mailkeep's: `m2`, after the
/// CAPABILITY `m1`).
fn login_bytes(received: &Received) -> Vec<u8> {
    let all = received.lock().unwrap().clone();
    let at = all
        .windows(7)
        .position(|w| w == b" LOGIN ")
        .expect("a LOGIN was sent");
    let start = all[..at]
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    let end = all[at..]
        .windows(9)
        .position(|w| w == b"CAPABILIT" || w == b"a3 LOGOUT")
        .map_or(all.len(), |i| {
            let p = at + i;
            all[..p]
                .iter()
                .rposition(|&b| b == b'\n')
                .map_or(p, |n| n + 1)
        });
    all[start..end].to_vec()
}

#[test]
fn imap_login_sends_a_non_ascii_password_as_a_literal() {
    // Synchronising literal (no LITERAL+): `{N}`, wait for `+`, the octets.
    let (port, received) = login_only_server("IMAP4rev1", None);
    let c = imap_login(port, "alice", "pässwörd€").expect("login");
    drop(c);
    let pw = "pässwörd€".as_bytes();
    let mut want = format!("m2 LOGIN \"alice\" {{{}}}\r\n", pw.len()).into_bytes();
    want.extend_from_slice(pw);
    want.extend_from_slice(b"\r\n");
    assert_eq!(
        String::from_utf8_lossy(&login_bytes(&received)),
        String::from_utf8_lossy(&want)
    );
}

#[test]
fn imap_login_with_literal_plus_and_a_non_ascii_user_name() {
    // LITERAL+ (RFC 7888): `{N+}`, no waiting; the user name is a literal too.
    let (port, received) = login_only_server("IMAP4rev1 LITERAL+", None);
    imap_login(port, "jösé", " lead").expect("login");
    let user = "jösé".as_bytes();
    let mut want = format!("m2 LOGIN {{{}+}}\r\n", user.len()).into_bytes();
    want.extend_from_slice(user);
    want.extend_from_slice(b" \" lead\"\r\n");
    assert_eq!(
        String::from_utf8_lossy(&login_bytes(&received)),
        String::from_utf8_lossy(&want)
    );
}

#[test]
fn imap_login_quotes_printable_passwords_with_escapes() {
    let (port, received) = login_only_server("IMAP4rev1", None);
    imap_login(port, "alice", "p\"a\\ss (*%{").expect("login");
    assert_eq!(
        String::from_utf8_lossy(&login_bytes(&received)),
        "m2 LOGIN \"alice\" \"p\\\"a\\\\ss (*%{\"\r\n"
    );
}

#[test]
fn imap_login_literal_refused_sends_no_password() {
    // The server refuses the user name's literal: the password is never sent, the refusal is
    // a login error quoting the server, and the secret appears nowhere.
    let (port, received) = login_only_server("IMAP4rev1", Some("NO [AUTHENTICATIONFAILED] nope"));
    let err = imap_login(port, "jösé", "pässwörd€").unwrap_err();
    assert!(matches!(err, ImapError::Auth(_)), "{err:?}");
    let shown = err.to_string();
    assert!(shown.contains("nope"), "{shown}");
    assert!(!shown.contains("pässwörd€"));
    let got = received.lock().unwrap().clone();
    assert!(
        !got.windows("pässwörd€".len())
            .any(|w| w == "pässwörd€".as_bytes()),
        "the password was sent: {}",
        String::from_utf8_lossy(&got)
    );
}

#[test]
fn imap_login_refuses_a_nul_byte() {
    let (port, received) = login_only_server("IMAP4rev1", None);
    let err = imap_login(port, "alice", "a\u{0}b").unwrap_err();
    assert_eq!(
        err.to_string(),
        "login refused: the user name or password contains a NUL byte, which IMAP LOGIN and SASL PLAIN cannot carry (RFC 3501 9, RFC 4616 2); nothing was sent"
    );
    assert!(!String::from_utf8_lossy(&received.lock().unwrap()).contains("LOGIN"));
}

#[test]
fn trace_redacts_a_login_literal() {
    let d = Dovecot::start();
    let u = d.add_user("alice", "pässwörd€");
    u.seed_message("INBOX", &message("alice"), "", None);
    let tmp = tempfile::tempdir().unwrap();
    let out = mailkeep()
        .arg("--trace")
        .args(["backup", &d.url("imaps", &u)])
        .arg(format!("maildir:{}", tmp.path().join("a").display()))
        .args(["--auth", "login"])
        .arg("--tls-ca")
        .arg(&d.ca_pem)
        .args(["--password-env", VAR])
        .env(VAR, "pässwörd€")
        .output()
        .unwrap();
    let run = Run::from_output(out);
    assert_eq!(run.code, 0, "{run:#?}");
    let login: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.contains(" C: ") && l.contains("LOGIN"))
        .collect();
    assert_eq!(login.len(), 1, "{}", run.stderr);
    assert!(
        login[0].ends_with(" C: m2 LOGIN [redacted]"),
        "{}",
        login[0]
    );
    assert!(!run.stderr.contains("pässwörd€"), "{}", run.stderr);
}
