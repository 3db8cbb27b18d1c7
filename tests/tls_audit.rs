//! The TLS and secrets audit (issue 7), against a real Dovecot where it can show the point,
//! the scripted fakes where it cannot (a server that offers STLS/STARTTLS and then refuses it):
//!
//! 1. expired, self-signed (without `--tls-ca`) and wrong-name certificates are refused with one
//!    line naming the server and what is wrong, exit 4, nothing written to the archive and no
//!    password sent (IMAPS, POP3S, STARTTLS and STLS);
//! 2. a server that offers STARTTLS/STLS and refuses it is refused unless `--allow-plaintext`
//!    (one that does not offer it at all: tests/pop3_backup.rs
//!    `plaintext_login_is_refused_unless_allowed`, tests/imap_backup.rs
//!    `wrong_password_plaintext_refusal_and_a_folder_matching_nothing` and
//!    tests/restore.rs `imap_url_uses_starttls_and_a_plaintext_only_server_needs_allow_plaintext`);
//! 3. `--tls-fingerprint` pins a certificate (right pin: accepted without `--tls-ca`, even
//!    self-signed and for another name; wrong pin: refused showing both fingerprints; malformed:
//!    exit 2), also as migrate's `--source-/--target-tls-fingerprint` and the `run` config key;
//! 4. `--trace` shows the exchange with the login redacted and message bodies summarised;
//! 5. passwords and OAuth tokens appear in no output, report, log, trace, archive file or
//!    child argv;
//! 6. files are 0600 and folders 0700 under umask 022 and 000, and an archive owned by another
//!    user is refused (exit 6).

mod support;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use support::dovecot::{openssl_fingerprint, Certs, Dovecot, Options, Validity};
use support::fake_imap::FakeImap;
use support::fake_server::FakeServer;
use support::run::{maildir_messages, Run};

const PW_VAR: &str = "MAILKEEP_TLS_AUDIT_PW";

fn run(mut cmd: Command) -> Run {
    Run::from_output(cmd.output().unwrap())
}

/// `mailkeep <verb> <server> <archive> --password-env PW_VAR <extra>` with the password set.
fn mk(verb: &str, server: &str, archive: &str, password: &str, extra: &[&str]) -> Command {
    let mut c = support::mailkeep();
    c.args([
        verb,
        server,
        archive,
        "--password-env",
        PW_VAR,
        "--timeout",
        "20",
    ])
    .args(extra)
    .env(PW_VAR, password);
    c
}

/// Every regular file under `dir` that is not mailkeep's state (`mailkeep/`): the messages.
fn stored_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    fn walk(root: &Path, d: &Path, out: &mut Vec<PathBuf>) {
        let Ok(rd) = std::fs::read_dir(d) else { return };
        for e in rd.flatten() {
            let p = e.path();
            if p == root.join("mailkeep") {
                continue;
            }
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                out.push(p);
            }
        }
    }
    walk(dir, dir, &mut out);
    out
}

/// The number of messages the archive's ledger records (0 when there is no ledger).
fn ledger_count(dir: &Path) -> i64 {
    let db = dir.join("mailkeep/ledger.sqlite");
    if !db.exists() {
        return 0;
    }
    let c = rusqlite::Connection::open(db).unwrap();
    c.query_row("SELECT count(*) FROM messages", [], |r| r.get(0))
        .unwrap()
}

fn seed(u: &support::dovecot::User, n: usize) {
    for i in 0..n {
        u.seed_message(
            "INBOX",
            format!("Subject: audit {i}\nMessage-ID: <audit-{i}@t>\n\nbody-{i} PLAIN-BODY-TEXT\n")
                .as_bytes(),
            "",
            Some(1_700_000_000 + i as i64),
        );
    }
}

// ---------------------------------------------------------------------------------------------
// 1. Certificates refused

#[test]
fn bad_certificates_are_refused_with_one_line_and_nothing_written() {
    let certs = Certs::new();
    let ca = certs.ca_pem();
    let ca = ca.to_str().unwrap();
    let expired = certs.leaf("expired", "127.0.0.1", Validity::Expired);
    let other_name = certs.leaf("other", "mail.example.test", Validity::Current);
    let tmp = tempfile::tempdir().unwrap();

    let mut checked = 0;
    // (certificate, scheme, host, --tls-ca, what the line must say)
    type Case<'a> = (
        Option<&'a (PathBuf, PathBuf)>,
        &'a str,
        &'a str,
        Option<&'a str>,
        &'a str,
    );
    let cases: [Case; 7] = [
        (
            Some(&expired),
            "imaps",
            "127.0.0.1",
            Some(ca),
            "the server's certificate has expired",
        ),
        (
            Some(&expired),
            "pop3",
            "127.0.0.1",
            Some(ca),
            "the server's certificate has expired",
        ),
        (
            None,
            "pop3s",
            "127.0.0.1",
            None,
            "the server's certificate is self-signed and not trusted",
        ),
        (
            None,
            "imap",
            "127.0.0.1",
            None,
            "the server's certificate is self-signed and not trusted",
        ),
        (
            Some(&other_name),
            "imaps",
            "127.0.0.1",
            Some(ca),
            "the server's certificate is not valid for the name `127.0.0.1`",
        ),
        (
            Some(&other_name),
            "pop3s",
            "localhost",
            Some(ca),
            "the server's certificate is not valid for the name `localhost`",
        ),
        (
            Some(&other_name),
            "imap",
            "localhost",
            Some(ca),
            "the server's certificate is not valid for the name `localhost`",
        ),
    ];
    for (i, (cert, scheme, host, tls_ca, says)) in cases.into_iter().enumerate() {
        let d = Dovecot::start_with(Options {
            cert: cert.cloned(),
            ..Options::default()
        });
        let u = d.add_user("alice", "alice-pw-1");
        seed(&u, 1);
        let url = d.url(scheme, &u).replace("127.0.0.1", host);
        let dir = tmp.path().join(format!("a{i}"));
        let mut extra = vec!["--json"];
        if let Some(ca) = tls_ca {
            extra.extend(["--tls-ca", ca]);
        }
        let r = run(mk(
            "backup",
            &url,
            &format!("maildir:{}", dir.display()),
            &u.password,
            &extra,
        ));
        r.assert_code(4).assert_one_line_error(&[
            &format!("mailkeep: alice@{host}:"),
            &format!("TLS handshake with {host} failed: {says}"),
            "(OpenSSL: certificate verify failed: ",
        ]);
        assert!(
            !r.stderr.contains("error:0A"),
            "raw OpenSSL text: {}",
            r.stderr
        );
        eprintln!("{scheme}://{host}: {}", r.stderr.trim());
        assert!(
            stored_files(&dir).is_empty(),
            "{scheme}: {:?}",
            stored_files(&dir)
        );
        assert_eq!(ledger_count(&dir), 0);
        assert!(
            !d.log().contains("Login: user=<alice>"),
            "{scheme}: the password was sent"
        );
        checked += 1;
    }
    assert_eq!(checked, 7);
}

// ---------------------------------------------------------------------------------------------
// 2. STARTTLS / STLS offered, then refused

#[test]
fn starttls_and_stls_offered_then_refused_need_allow_plaintext() {
    let tmp = tempfile::tempdir().unwrap();
    // POP3: CAPA lists STLS, STLS gets -ERR.
    let script = "S: +OK fake POP3 ready\n\
        C: CAPA\nS: +OK\nS: USER\nS: UIDL\nS: STLS\nS: .\n\
        C: STLS\nS: -ERR TLS is not available right now\n\
        C: USER alice\nS: +OK\nC: PASS secret\nS: +OK in\n\
        C: STAT\nS: +OK 1 23\nC: UIDL\nS: +OK\nS: 1 u-1\nS: .\nC: LIST\nS: +OK\nS: 1 23\nS: .\n\
        C: RETR 1\nS: +OK 23 octets\nS: Subject: stls\nS:\nS: body\nS: .\n\
        C: QUIT\nS: +OK bye\n";
    let pop = FakeServer::pop3_from_str(script, tmp.path());
    let dir = tmp.path().join("pop");
    let url = format!("pop3://alice@{}", pop.addr());
    let arch = format!("maildir:{}", dir.display());
    let refused = run(mk("backup", &url, &arch, "secret", &["--json"]));
    refused.assert_code(4).assert_one_line_error(&[
        "mailkeep: alice@127.0.0.1:",
        "refusing to log in without TLS",
        "refused STLS: TLS is not available right now",
        "--allow-plaintext",
    ]);
    assert!(!pop
        .commands()
        .iter()
        .any(|c| c.starts_with("PASS") || c.starts_with("USER")));
    assert!(stored_files(&dir).is_empty());
    let allowed = run(mk(
        "backup",
        &url,
        &arch,
        "secret",
        &["--json", "--allow-plaintext"],
    ));
    allowed.assert_code(0);
    assert_eq!(allowed.n("fetched"), 1);
    let msgs = maildir_messages(&dir);
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0].1, b"Subject: stls\n\nbody\n");

    // IMAP: CAPABILITY lists STARTTLS, STARTTLS gets NO (the fake's built-in answer).
    let case = support::corpus_dir().join("../cases/17-fetch-literals-in-unusual-places");
    let script = std::fs::read_to_string(case.join("server-fetch.txt"))
        .unwrap()
        .replace(
            "S: * OK [CAPABILITY IMAP4rev1] ready",
            "S: * OK [CAPABILITY IMAP4rev1 STARTTLS] ready",
        );
    let imap = FakeImap::from_str(&script, &case);
    let dir = tmp.path().join("imap");
    let url = format!("imap://alice@{}", imap.addr());
    let arch = format!("maildir:{}", dir.display());
    let refused = run(mk("backup", &url, &arch, "secret", &["--json"]));
    refused.assert_code(4).assert_one_line_error(&[
        "mailkeep: alice@127.0.0.1:",
        "refusing to log in without TLS",
        "refused STARTTLS",
        "--allow-plaintext",
    ]);
    let cmds = imap.commands();
    assert!(cmds.iter().any(|c| c.contains("STARTTLS")), "{cmds:?}");
    assert!(
        !cmds
            .iter()
            .any(|c| c.contains("LOGIN") || c.contains("AUTHENTICATE")),
        "{cmds:?}"
    );
    assert!(stored_files(&dir).is_empty());
    let allowed = run(mk(
        "backup",
        &url,
        &arch,
        "secret",
        &["--json", "--allow-plaintext"],
    ));
    allowed.assert_code(0);
    assert_eq!(allowed.n("fetched"), 3);
}

// ---------------------------------------------------------------------------------------------
// 3. --tls-fingerprint

#[test]
fn tls_fingerprint_pins_the_certificate() {
    let certs = Certs::new();
    // Self-signed AND for another name: only a pin can make it acceptable.
    let pinned = certs.self_signed("pinned", "mail.example.test");
    let other = certs.self_signed("other", "mail.example.test");
    let d = Dovecot::start_with(Options {
        cert: Some(pinned.clone()),
        ..Options::default()
    });
    let u = d.add_user("alice", "alice-pw-2");
    seed(&u, 2);
    let tmp = tempfile::tempdir().unwrap();
    let pin_openssl = openssl_fingerprint(&pinned.0); // "sha256 Fingerprint=AB:CD:..."
    let pin_hex = pin_openssl
        .split_once('=')
        .unwrap()
        .1
        .replace(':', "")
        .to_ascii_lowercase();
    let wrong = openssl_fingerprint(&other.0);
    let wrong_shown = wrong.split_once('=').unwrap().1.to_string();
    let right_shown = pin_openssl.split_once('=').unwrap().1.to_string();

    // Right pin, in two notations, IMAPS and POP3 STLS, no --tls-ca.
    for (scheme, pin) in [("imaps", pin_openssl.as_str()), ("pop3", pin_hex.as_str())] {
        let dir = tmp.path().join(format!("ok-{scheme}"));
        let r = run(mk(
            "backup",
            &d.url(scheme, &u),
            &format!("maildir:{}", dir.display()),
            &u.password,
            &["--json", "--tls-fingerprint", pin],
        ));
        r.assert_code(0);
        assert_eq!(r.n("fetched"), 2, "{scheme}");
        assert_eq!(maildir_messages(&dir).len(), 2);
    }
    // Without the pin the same server is refused (self-signed).
    let r = run(mk(
        "backup",
        &d.url("imaps", &u),
        &format!("maildir:{}", tmp.path().join("unpinned").display()),
        &u.password,
        &[],
    ));
    r.assert_code(4)
        .assert_one_line_error(&["self-signed", "--tls-fingerprint SHA256 to pin"]);
    let logins = d.log().matches("Login: user=<alice>").count();

    // Wrong pin: refused before anything is sent, showing both fingerprints.
    for scheme in ["imaps", "imap", "pop3s"] {
        let dir = tmp.path().join(format!("wrong-{scheme}"));
        let r = run(mk(
            "backup",
            &d.url(scheme, &u),
            &format!("maildir:{}", dir.display()),
            &u.password,
            &["--tls-fingerprint", &wrong],
        ));
        r.assert_code(4).assert_one_line_error(&[
            "TLS certificate of 127.0.0.1 does not match the pinned fingerprint",
            &format!("expected SHA256 {wrong_shown}, the server sent SHA256 {right_shown}"),
        ]);
        assert!(stored_files(&dir).is_empty());
    }
    assert_eq!(
        d.log().matches("Login: user=<alice>").count(),
        logins,
        "a login was sent despite the wrong pin"
    );

    // Malformed pins: usage errors (exit 2), nothing contacted.
    for bad in ["abc", "zz:11", &pin_hex[..62]] {
        let r = run(mk(
            "backup",
            &d.url("imaps", &u),
            &format!("maildir:{}", tmp.path().join("bad-pin").display()),
            &u.password,
            &["--tls-fingerprint", bad],
        ));
        r.assert_code(2);
        assert!(
            r.stderr.contains("is not a SHA-256 fingerprint"),
            "{}",
            r.stderr
        );
    }

    // migrate: one pin per side.
    let b = d.add_user("bob", "bob-pw-2");
    let mut c = support::mailkeep();
    c.args(["migrate", &d.url("imaps", &u), &d.url("imaps", &b)])
        .args([
            "--source-password-env",
            PW_VAR,
            "--target-password-env",
            "MAILKEEP_TLS_AUDIT_PW2",
        ])
        .args([
            "--source-tls-fingerprint",
            &pin_hex,
            "--target-tls-fingerprint",
            &pin_openssl,
            "--json",
        ])
        .env(PW_VAR, &u.password)
        .env("MAILKEEP_TLS_AUDIT_PW2", &b.password)
        .env("XDG_STATE_HOME", tmp.path().join("state"));
    let r = run(c);
    r.assert_code(0);
    assert_eq!(b.message_count("INBOX"), 2);
    let mut c = support::mailkeep();
    c.args(["migrate", &d.url("imaps", &u), &d.url("imaps", &b)])
        .args([
            "--source-password-env",
            PW_VAR,
            "--target-password-env",
            "MAILKEEP_TLS_AUDIT_PW2",
        ])
        .args([
            "--source-tls-fingerprint",
            &pin_hex,
            "--target-tls-fingerprint",
            &wrong,
        ])
        .env(PW_VAR, &u.password)
        .env("MAILKEEP_TLS_AUDIT_PW2", &b.password)
        .env("XDG_STATE_HOME", tmp.path().join("state"));
    run(c)
        .assert_code(4)
        .assert_one_line_error(&["target", "does not match the pinned fingerprint"]);

    // run: `tls_fingerprint` per account; a malformed one is named at its line.
    let dir = tmp.path().join("run");
    let conf = |pin: &str| {
        format!(
            "[accounts.a]\nendpoint = \"{}\"\npassword_env = \"{PW_VAR}\"\ntls_fingerprint = \"{pin}\"\n\n[jobs.j]\nkind = \"backup\"\naccount = \"a\"\narchive = \"maildir:{}\"\n",
            d.url("imaps", &u),
            dir.display()
        )
    };
    let file = tmp.path().join("config.toml");
    std::fs::write(&file, conf(&pin_openssl)).unwrap();
    let mut c = support::mailkeep();
    c.args(["run", "--config"])
        .arg(&file)
        .arg("--json")
        .env(PW_VAR, &u.password);
    run(c).assert_code(0);
    assert_eq!(maildir_messages(&dir).len(), 2);
    std::fs::write(&file, conf("12:34")).unwrap();
    let mut c = support::mailkeep();
    c.args(["run", "--config"])
        .arg(&file)
        .env(PW_VAR, &u.password);
    run(c).assert_code(2).assert_one_line_error(&[&format!(
        "{}:4: accounts.a.tls_fingerprint: `12:34` is not a SHA-256 fingerprint",
        file.display()
    )]);
}

// ---------------------------------------------------------------------------------------------
// 4. + 5. Secrets never leak; --trace

/// Every form of `secret` to look for: itself, and inside any base64 word (SASL PLAIN and
/// XOAUTH2 send it base64-encoded).
fn leaks(text: &[u8], secret: &str) -> bool {
    use base64::Engine;
    let s = secret.as_bytes();
    if text.windows(s.len()).any(|w| w == s) {
        return true;
    }
    let words = text.split(|b| !(b.is_ascii_alphanumeric() || b"+/=".contains(b)));
    words.filter(|w| w.len() >= 16).any(|w| {
        let w = std::str::from_utf8(w).unwrap();
        [w, w.trim_end_matches('=')].iter().any(|w| {
            let decoded = base64::engine::general_purpose::STANDARD_NO_PAD
                .decode(w.trim_end_matches('='))
                .unwrap_or_default();
            decoded.windows(s.len()).any(|x| x == s)
        })
    })
}

/// Every file under `dir`, read.
fn all_files(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    fn walk(d: &Path, out: &mut Vec<(PathBuf, Vec<u8>)>) {
        let Ok(rd) = std::fs::read_dir(d) else { return };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else if let Ok(b) = std::fs::read(&p) {
                out.push((p, b));
            }
        }
    }
    walk(dir, &mut out);
    out
}

#[test]
fn secrets_never_leak_and_trace_redacts_the_login() {
    const SECRET: &str = "Zq7-SECRET-pw-4x9";
    const WRONG: &str = "Wr0ng-SECRET-pw-11";
    const TOKEN: &str = "ya29.SECRET-TOKEN-8k2";
    assert!(leaks(b"AGFsaWNlAFpxNy1TRUNSRVQtcHctNHg5", SECRET)); // the check can fail
    let d = Dovecot::start();
    let ca = d.ca_pem.to_str().unwrap().to_string();
    let u = d.add_user("alice", SECRET);
    let b = d.add_user("bob", SECRET);
    seed(&u, 3);
    let tmp = tempfile::tempdir().unwrap();
    let pw_file = tmp.path().join("pw");
    std::fs::write(&pw_file, format!("{SECRET}\n")).unwrap();
    std::fs::set_permissions(&pw_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    // The password command records its own argv and its parent's (mailkeep's).
    let argv_dir = tmp.path().join("argv");
    std::fs::create_dir(&argv_dir).unwrap();
    let pw_cmd = format!(
        "n=$(ls {a} | wc -l); tr '\\0' ' ' </proc/$$/cmdline >{a}/self-$n; tr '\\0' ' ' </proc/$PPID/cmdline >{a}/parent-$n; cat {f}",
        a = argv_dir.display(),
        f = pw_file.display()
    );
    let state = tmp.path().join("state");
    let mut outputs: Vec<(String, Vec<u8>)> = Vec::new();
    let go = |outputs: &mut Vec<(String, Vec<u8>)>, name: &str, mut c: Command, code: i32| -> Run {
        c.env("XDG_STATE_HOME", &state).env(PW_VAR, SECRET);
        let r = run(c);
        r.assert_code(code);
        outputs.push((format!("{name} stdout"), r.stdout.clone().into_bytes()));
        outputs.push((format!("{name} stderr"), r.stderr.clone().into_bytes()));
        r
    };
    let tls = ["--tls-ca", ca.as_str(), "--json", "--trace"];

    // POP3 backup (SASL PLAIN over STLS), password from the environment.
    let pop_dir = tmp.path().join("pop");
    let mut c = support::mailkeep();
    c.args([
        "backup",
        &d.url("pop3", &u),
        &format!("mbox:{}", pop_dir.display()),
    ])
    .args(["--password-env", PW_VAR])
    .args(tls);
    let r = go(&mut outputs, "pop3 backup", c, 0);
    assert_eq!(r.n("fetched"), 3);
    let pop_port = d.pop3_port;
    assert!(
        r.stderr
            .contains(&format!("trace 127.0.0.1:{pop_port}#1 S: +OK")),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("C: AUTH PLAIN [redacted]"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr
            .contains("-- TLS established; server certificate SHA256 "),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("C: RETR 1"), "{}", r.stderr);
    assert!(r.stderr.contains(" octets]"), "{}", r.stderr);
    assert!(
        !r.stderr.contains("PLAIN-BODY-TEXT"),
        "a body was dumped: {}",
        r.stderr
    );

    // POP3 USER/PASS and APOP-less: --auth user shows PASS [redacted].
    let mut c = support::mailkeep();
    c.args([
        "backup",
        &d.url("pop3s", &u),
        &format!("maildir:{}", tmp.path().join("pop-user").display()),
    ])
    .args([
        "--password-file",
        pw_file.to_str().unwrap(),
        "--auth",
        "user",
    ])
    .args(tls);
    let r = go(&mut outputs, "pop3 user backup", c, 0);
    assert!(r.stderr.contains("C: PASS [redacted]"), "{}", r.stderr);

    // IMAP backup (LOGIN), password from a command.
    let imap_dir = tmp.path().join("imap");
    let mut c = support::mailkeep();
    c.args([
        "backup",
        &d.url("imaps", &u),
        &format!("maildir:{}", imap_dir.display()),
    ])
    .args([
        "--password-command",
        &pw_cmd,
        "--auth",
        "login",
        "--jobs",
        "1",
    ])
    .args(tls);
    let r = go(&mut outputs, "imap backup", c, 0);
    assert_eq!(r.n("fetched"), 3);
    assert!(r.stderr.contains("LOGIN [redacted]"), "{}", r.stderr);
    eprintln!(
        "imap backup --trace (excerpt):\n{}",
        r.stderr.lines().take(30).collect::<Vec<_>>().join("\n")
    );
    assert!(
        r.stderr.contains("S: [") && r.stderr.contains(" octets]"),
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains("PLAIN-BODY-TEXT"), "a body was dumped");

    // restore (AUTHENTICATE PLAIN), password from a file.
    let mut c = support::mailkeep();
    c.args([
        "restore",
        &format!("maildir:{}", imap_dir.display()),
        &d.url("imap", &b),
    ])
    .args(["--password-file", pw_file.to_str().unwrap(), "--jobs", "1"])
    .args(tls);
    let r = go(&mut outputs, "restore", c, 0);
    assert!(r.stderr.contains("AUTHENTICATE PLAIN"), "{}", r.stderr);
    assert!(r.stderr.contains("APPEND"), "{}", r.stderr);
    assert!(
        !r.stderr.contains("PLAIN-BODY-TEXT"),
        "an upload was dumped"
    );
    assert_eq!(b.message_count("INBOX"), 3);

    // migrate, both passwords from commands/env.
    let c2 = d.add_user("carol", SECRET);
    let mut c = support::mailkeep();
    c.args(["migrate", &d.url("pop3s", &u), &d.url("imaps", &c2)])
        .args([
            "--source-password-env",
            PW_VAR,
            "--target-password-command",
            &pw_cmd,
        ])
        .args([
            "--source-tls-ca",
            &ca,
            "--target-tls-ca",
            &ca,
            "--json",
            "--trace",
        ]);
    go(&mut outputs, "migrate", c, 0);
    assert_eq!(c2.message_count("INBOX"), 3);

    // A wrong password: refused (exit 3), the wrong secret nowhere either.
    let mut c = support::mailkeep();
    c.args([
        "backup",
        &d.url("imaps", &u),
        &format!("maildir:{}", tmp.path().join("wrong").display()),
    ])
    .args(["--password-env", "MAILKEEP_TLS_AUDIT_WRONG"])
    .env("MAILKEEP_TLS_AUDIT_WRONG", WRONG)
    .args(tls);
    let r = go(&mut outputs, "wrong password", c, 3);
    assert!(
        r.stderr
            .contains("authentication failed for alice@127.0.0.1"),
        "{}",
        r.stderr
    );
    for (name, text) in &outputs {
        assert!(!leaks(text, WRONG), "{name} shows the wrong password");
    }

    // run with --log-file.
    let log = tmp.path().join("run.log");
    let conf = tmp.path().join("config.toml");
    std::fs::write(
        &conf,
        format!(
            "[accounts.a]\nendpoint = \"{}\"\npassword_command = \"{}\"\ntls_ca = \"{ca}\"\n\n[jobs.j]\nkind = \"backup\"\naccount = \"a\"\narchive = \"maildir:{}\"\n",
            d.url("imaps", &u),
            pw_cmd.replace('\\', "\\\\").replace('"', "\\\""),
            tmp.path().join("run-archive").display()
        ),
    )
    .unwrap();
    let mut c = support::mailkeep();
    c.args(["run", "--config"])
        .arg(&conf)
        .arg("--log-file")
        .arg(&log)
        .args(["--json", "--trace"]);
    go(&mut outputs, "run", c, 0);
    outputs.push(("run log file".into(), std::fs::read(&log).unwrap()));

    // OAuth2 token (XOAUTH2) against the fake IMAP server, traced.
    let case = support::corpus_dir().join("../cases/17-fetch-literals-in-unusual-places");
    let script = std::fs::read_to_string(case.join("server-fetch.txt"))
        .unwrap()
        .replace(
            "S: * OK [CAPABILITY IMAP4rev1] ready",
            "S: * OK [CAPABILITY IMAP4rev1 AUTH=XOAUTH2] ready",
        );
    let fake = FakeImap::from_str(&script, &case);
    let oauth_dir = tmp.path().join("oauth");
    let mut c = support::mailkeep();
    c.args([
        "backup",
        &format!("imap://alice@{}", fake.addr()),
        &format!("maildir:{}", oauth_dir.display()),
    ])
    .args(["--allow-plaintext", "--json", "--trace"])
    .args(["--oauth2-token-command", &format!("echo {TOKEN}")]);
    let r = go(&mut outputs, "oauth2 backup", c, 0);
    assert!(r.stderr.contains("AUTHENTICATE XOAUTH2"), "{}", r.stderr);
    assert!(fake
        .commands()
        .iter()
        .any(|c| c.starts_with("AUTHENTICATE XOAUTH2")));

    // Nowhere: outputs (stdout, stderr with the trace, JSON reports, the log file) ...
    assert!(outputs.len() >= 17);
    for (name, text) in &outputs {
        for s in [SECRET, TOKEN, WRONG] {
            assert!(!leaks(text, s), "{name} shows a secret ({s})");
        }
    }
    // ... every archive and state file (messages, ledgers, uploads state) ...
    let mut files = 0;
    for (p, bytes) in all_files(tmp.path()) {
        if p == pw_file || p.starts_with(&argv_dir) || p == conf {
            continue;
        }
        files += 1;
        for s in [SECRET, TOKEN] {
            assert!(!leaks(&bytes, s), "{} holds a secret", p.display());
        }
    }
    assert!(files > 20, "{files}");
    // ... and any child's argv (the password command ran 3 times: imap backup, migrate, run).
    let argvs = all_files(&argv_dir);
    assert_eq!(argvs.len(), 6, "{argvs:?}");
    for (p, bytes) in argvs {
        assert!(!leaks(&bytes, SECRET), "{} holds the password", p.display());
        assert!(!bytes.is_empty());
    }
}

// ---------------------------------------------------------------------------------------------
// 6. Permissions and ownership

/// Every directory under `root` (and `root`) is 0700, every file 0600.
fn assert_private(root: &Path) -> usize {
    let mut n = 0;
    let mode = std::fs::metadata(root).unwrap().permissions().mode() & 0o7777;
    let want = if root.is_dir() { 0o700 } else { 0o600 };
    assert_eq!(mode, want, "{}: {mode:o}", root.display());
    if root.is_dir() {
        for e in std::fs::read_dir(root).unwrap().flatten() {
            n += assert_private(&e.path());
        }
    }
    n + 1
}

#[test]
fn archives_and_state_are_private_whatever_the_umask() {
    let d = Dovecot::start();
    let u = d.add_user("alice", "alice-pw-6");
    let ca = d.ca_pem.to_str().unwrap().to_string();
    seed(&u, 2);
    u.ensure_mailbox("Sub.Folder");
    u.seed_message(
        "Sub.Folder",
        b"Subject: sub\n\nsub\n",
        "",
        Some(1_700_000_100),
    );
    for mask in [0o022, 0o000] {
        let tmp = tempfile::tempdir().unwrap();
        let t = tmp.path();
        let state = t.join("state");
        let with_umask = |mut c: Command| {
            c.env("XDG_STATE_HOME", &state).env(PW_VAR, &u.password);
            // SAFETY: umask only changes a process-wide setting of the child before exec.
            unsafe {
                c.pre_exec(move || {
                    libc::umask(mask);
                    Ok(())
                });
            }
            run(c)
        };
        let args = ["--password-env", PW_VAR, "--tls-ca", &ca, "--json"];
        for (scheme, arch) in [
            ("imaps", format!("maildir:{}", t.join("md").display())),
            ("imaps", format!("mbox:{}", t.join("mb").display())),
            ("imaps", format!("zip:{}", t.join("z/out.zip").display())),
            ("pop3s", format!("maildir:{}", t.join("pop").display())),
        ] {
            let mut c = support::mailkeep();
            c.args(["backup", &d.url(scheme, &u), &arch]).args(args);
            with_umask(c).assert_code(0);
        }
        let mut c = support::mailkeep();
        c.args(["convert", &format!("maildir:{}", t.join("md").display())])
            .arg(format!("eml:{}", t.join("eml").display()));
        with_umask(c).assert_code(0);
        // restore: the uploads state file under XDG_STATE_HOME.
        let b = d.add_user(&format!("bob{mask}"), &u.password);
        let mut c = support::mailkeep();
        c.args([
            "restore",
            &format!("maildir:{}", t.join("md").display()),
            &d.url("imaps", &b),
        ])
        .args(args);
        with_umask(c).assert_code(0);
        // run: the log file.
        std::fs::write(
            t.join("c.toml"),
            format!(
                "[accounts.a]\nendpoint = \"{}\"\npassword_env = \"{PW_VAR}\"\ntls_ca = \"{ca}\"\n\n[jobs.j]\nkind = \"backup\"\naccount = \"a\"\narchive = \"maildir:{}\"\n",
                d.url("imaps", &u),
                t.join("run").display()
            ),
        )
        .unwrap();
        let mut c = support::mailkeep();
        c.args(["run", "--config"])
            .arg(t.join("c.toml"))
            .arg("--log-file")
            .arg(t.join("logs/run.log"));
        with_umask(c).assert_code(0);

        let mut n = 0;
        for p in [
            "md",
            "mb",
            "z",
            "z/out.zip",
            "pop",
            "eml",
            "state/mailkeep",
            "run",
            "logs/run.log",
        ] {
            assert!(t.join(p).exists(), "umask {mask:o}: {p} missing");
            n += assert_private(&t.join(p));
        }
        for p in [
            "md/mailkeep/ledger.sqlite",
            "md/mailkeep/lock",
            "md/.Sub.Folder/cur",
            "mb/Sub/Folder.mbox",
            "state/mailkeep/uploads.sqlite",
            "eml/manifest.jsonl",
        ] {
            assert!(t.join(p).exists(), "umask {mask:o}: {p} missing");
        }
        assert!(n > 30, "umask {mask:o}: {n} paths checked");
        eprintln!("umask {mask:03o}: {n} files and folders checked, all 0600/0700");
    }
}

#[test]
fn an_archive_owned_by_another_user_is_refused() {
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: not running as root, so cannot chown a folder to `nobody`");
        return;
    }
    let nobody = unsafe {
        let pw = libc::getpwnam(c"nobody".as_ptr());
        assert!(!pw.is_null(), "no user `nobody`");
        ((*pw).pw_uid, (*pw).pw_gid)
    };
    let d = Dovecot::start();
    let u = d.add_user("alice", "alice-pw-7");
    seed(&u, 1);
    let ca = d.ca_pem.to_str().unwrap().to_string();
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let src = t.join("src");
    let r = run(mk(
        "backup",
        &d.url("imaps", &u),
        &format!("maildir:{}", src.display()),
        &u.password,
        &["--tls-ca", &ca],
    ));
    r.assert_code(0);
    for (kind, path, is_dir) in [
        ("maildir", t.join("md"), true),
        ("mbox", t.join("mb"), true),
        ("zip", t.join("z.zip"), false),
        ("eml", t.join("eml"), true),
    ] {
        if is_dir {
            std::fs::create_dir(&path).unwrap();
        } else {
            std::fs::write(&path, b"").unwrap();
        }
        std::os::unix::fs::chown(&path, Some(nobody.0), Some(nobody.1)).unwrap();
        let arch = format!("{kind}:{}", path.display());
        let r = if kind == "eml" {
            let mut c = support::mailkeep();
            c.args(["convert", &format!("maildir:{}", src.display()), &arch]);
            run(c)
        } else {
            run(mk(
                "backup",
                &d.url("imaps", &u),
                &arch,
                &u.password,
                &["--tls-ca", &ca],
            ))
        };
        r.assert_code(6).assert_one_line_error(&[
            &format!(
                "archive {}: belongs to another user (nobody, uid {})",
                path.display(),
                nobody.0
            ),
            "not to the user running mailkeep (root, uid 0)",
            "refusing to write into it",
        ]);
        if is_dir {
            assert_eq!(
                std::fs::read_dir(&path).unwrap().count(),
                0,
                "{kind}: something was written"
            );
        } else {
            assert_eq!(std::fs::metadata(&path).unwrap().len(), 0);
        }
        assert_eq!(std::fs::metadata(&path).unwrap().uid(), nobody.0);
    }
}
