//! Error messages and exit codes a user sees before (or instead of) any mail moving, pinned
//! from the newcomer review: each test is named after the confusing behaviour it fixes. The
//! runs need no mail server: they fail at the command line, at the password, or at a closed
//! port; the two that need a finished run use the scripted fake POP3 server.

mod support;

use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};

use support::fake_server::FakeServer;
use support::mailkeep;
use support::run::Run;

const PASSWORD_VAR: &str = "MAILKEEP_CLI_ERRORS_PASSWORD";

/// A throwaway CA certificate (PEM), only ever parsed.
const CA_PEM: &str = "-----BEGIN CERTIFICATE-----
MIIBjTCCATOgAwIBAgIUBiARcKdYZhw/5kiSmfVXhp+Cjx8wCgYIKoZIzj0EAwIw
GzEZMBcGA1UEAwwQbWFpbGtlZXAgdGVzdCBDQTAgFw0yNjExMzAwNDA2MThaGA8y
MTI2MTEwNjA0MDYxOFowGzEZMBcGA1UEAwwQbWFpbGtlZXAgdGVzdCBDQTBZMBMG
ByqGSM49AgEGCCqGSM49AwEHA0IABCEFf3hK+KEqOpSOwdGK7lsWEn1OkTtkaDzn
PPd7IddJ9p1+s8EIJF1s98sKfcEsQLbIMtNaT+ZwSI+uwa/sCBGjUzBRMB0GA1Ud
DgQWBBTxO/Ralg2EqxvherGVUHicz2YB4jAfBgNVHSMEGDAWgBTxO/Ralg2Eqxvh
erGVUHicz2YB4jAPBgNVHRMBAf8EBTADAQH/MAoGCCqGSM49BAMCA0gAMEUCIGK8
63JMDCTAgzfiIBvItfhQf0v3I5Tf4g5U1WJ/ZLdJAiEAuxisfOB+k6ZTgXTH53Bp
sEDr/QZRBt6ptfqUsZjEZXA=
-----END CERTIFICATE-----
";

/// `pop3s://alice@127.0.0.1:PORT` on a loopback port nothing listens on.
fn closed_port_source() -> String {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    format!("pop3s://alice@127.0.0.1:{port}")
}

/// `mailkeep backup SOURCE ARCHIVE ARGS...` with a password in the environment, in `cwd`.
fn backup(source: &str, archive: &str, args: &[&str], cwd: &Path) -> Command {
    let mut c = mailkeep();
    c.arg("backup")
        .arg(source)
        .arg(archive)
        .args(args)
        .env(PASSWORD_VAR, "secret")
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

#[track_caller]
fn run(cmd: &mut Command) -> Run {
    Run::from_output(cmd.output().expect("run mailkeep"))
}

/// Every entry of `dir`, sorted.
fn entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// Review item 1: `maildr:/tmp/x` was taken as the relative path `./maildr:/tmp/x`.
#[test]
fn typo_in_archive_kind_is_a_usage_error_not_a_path() {
    let tmp = tempfile::tempdir().unwrap();
    let target = tmp.path().join("x");
    let cases = [
        (
            format!("maildr:{}", target.display()),
            format!(
                "unknown archive kind `maildr:` (write maildir:PATH or mbox:PATH; a file name containing `:` can be written ./maildr:{})",
                target.display()
            ),
        ),
        ("mbx:x".to_string(), "unknown archive kind `mbx:`".to_string()),
        (
            "eml:x".to_string(),
            "a `eml:` archive cannot be used here".to_string(),
        ),
    ];
    for (archive, want) in cases {
        let r = run(&mut backup(
            &closed_port_source(),
            &archive,
            &["--password-env", PASSWORD_VAR],
            tmp.path(),
        ));
        r.assert_code(2)
            .assert_one_line_error(&[&format!("`{archive}`"), &want]);
        assert_eq!(r.stdout, "", "{archive}");
    }
    assert_eq!(entries(tmp.path()), Vec::<String>::new(), "nothing created");
}

/// Review item 2: `pop3s://u@h:995/INBOX` said "port `995/INBOX` is not a number".
#[test]
fn path_after_host_is_explained() {
    let tmp = tempfile::tempdir().unwrap();
    for source in ["pop3s://u@h:995/INBOX", "imaps://u@h/INBOX"] {
        let r = run(&mut backup(
            source,
            "maildir:a",
            &["--password-env", PASSWORD_VAR],
            tmp.path(),
        ));
        r.assert_code(2).assert_one_line_error(&[
            &format!("`{source}`"),
            "a path after the host is not supported (`/INBOX`); POP3 has only INBOX and IMAP backs up every mailbox (use --folder)",
        ]);
        assert!(!r.stderr.contains("not a number"), "{r:#?}");
    }
}

/// Review item 3: CR, LF or NUL in the user name or host went to the server as they were.
#[test]
fn control_characters_in_user_or_host_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let cases = [
        (
            "pop3s://alice%0D%0ADELE%201@127.0.0.1",
            "`pop3s://alice%0D%0ADELE%201@127.0.0.1`: the user name contains a control character (\\r)",
        ),
        (
            "pop3s://alice%00@127.0.0.1",
            "the user name contains a control character (\\u{0})",
        ),
        (
            "pop3s://alice@127.0.0.1%0A",
            "the host contains a control character (\\n)",
        ),
        // Typed raw: the error escapes it, so it stays one line.
        (
            "pop3s://alice\n@127.0.0.1",
            "`pop3s://alice\\n@127.0.0.1`: the user name contains a control character (\\n)",
        ),
    ];
    for (source, want) in cases {
        let r = run(&mut backup(
            source,
            "maildir:a",
            &["--password-env", PASSWORD_VAR],
            tmp.path(),
        ));
        r.assert_code(2).assert_one_line_error(&[want]);
    }
}

/// Review item 4: a directory given as `--password-file` was "readable by group or others
/// (mode 0755); run chmod 600"; a file that is not UTF-8 was sent mangled.
#[test]
fn password_file_that_is_a_directory_or_not_text() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("secrets");
    std::fs::create_dir(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let latin1 = tmp.path().join("latin1.pw");
    std::fs::write(&latin1, b"caf\xe9\n").unwrap();
    std::fs::set_permissions(&latin1, std::fs::Permissions::from_mode(0o600)).unwrap();
    let cases = [
        (&dir, "is a directory, not a file"),
        (&latin1, "the first line of password file"),
    ];
    for (file, want) in cases {
        let r = run(&mut backup(
            &closed_port_source(),
            &format!("maildir:{}", tmp.path().join("archive").display()),
            &["--password-file", &file.display().to_string()],
            tmp.path(),
        ));
        r.assert_code(2)
            .assert_one_line_error(&[&file.display().to_string(), want]);
        assert!(!r.stderr.contains("chmod"), "{r:#?}");
    }
}

/// Review item 5: `--tls-ca /dev/null` said "no such file", and a file that is no certificate
/// failed only at connect time, as a network error (exit 4).
#[test]
fn tls_ca_is_read_and_parsed_before_connecting() {
    let tmp = tempfile::tempdir().unwrap();
    let not_pem = tmp.path().join("notes.txt");
    std::fs::write(&not_pem, "hello\n").unwrap();
    let ca = tmp.path().join("ca.pem");
    std::fs::write(&ca, CA_PEM).unwrap();
    let missing = tmp.path().join("missing.pem");
    let cases = [
        (
            Path::new("/dev/null"),
            "--tls-ca /dev/null: not a PEM certificate (",
        ),
        (&not_pem, "not a PEM certificate ("),
        (tmp.path(), "cannot read"),
        (&missing, "cannot read"),
    ];
    let archive = format!("maildir:{}", tmp.path().join("archive").display());
    for (file, want) in cases {
        let r = run(&mut backup(
            &closed_port_source(),
            &archive,
            &[
                "--password-env",
                PASSWORD_VAR,
                "--tls-ca",
                &file.display().to_string(),
            ],
            tmp.path(),
        ));
        r.assert_code(2)
            .assert_one_line_error(&[&format!("--tls-ca {}: ", file.display()), want]);
        assert!(!r.stderr.contains("no such file"), "{r:#?}");
    }
    // A real certificate passes; the run gets as far as the (closed) port.
    let r = run(&mut backup(
        &closed_port_source(),
        &archive,
        &[
            "--password-env",
            PASSWORD_VAR,
            "--tls-ca",
            &ca.display().to_string(),
        ],
        tmp.path(),
    ));
    r.assert_code(4);
}

/// Review item 6: a `--password-command` that prints nothing is named as such (the time
/// limit of a hanging command is tested in `credentials`, with a short limit).
#[test]
fn password_command_that_prints_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let r = run(&mut backup(
        &closed_port_source(),
        &format!("maildir:{}", tmp.path().join("archive").display()),
        &["--password-command", "true"],
        tmp.path(),
    ));
    r.assert_code(2)
        .assert_one_line_error(&["--password-command printed nothing"]);
}

/// Review item 7: a damaged `mailkeep/kind` gave "/x is a garbage archive; write garbage:/x".
#[test]
fn damaged_kind_file_of_a_bare_path() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("archive");
    std::fs::create_dir_all(root.join("mailkeep")).unwrap();
    let kind_file = root.join("mailkeep").join("kind");
    std::fs::write(&kind_file, "garbage\n").unwrap();
    let r = run(&mut backup(
        &closed_port_source(),
        &root.display().to_string(),
        &["--password-env", PASSWORD_VAR],
        tmp.path(),
    ));
    r.assert_code(6).assert_one_line_error(&[
        &format!("{} is damaged", kind_file.display()),
        "holds `garbage`, not `maildir` or `mbox`",
    ]);
    assert!(!r.stderr.contains("garbage:"), "{r:#?}");
}

/// Review item 8: `--json` with a usage error printed no JSON at all.
#[test]
fn json_usage_error_prints_a_report_object() {
    let tmp = tempfile::tempdir().unwrap();
    let r = run(&mut backup(
        "pop3s://u@h:995/INBOX",
        "maildir:a",
        &["--password-env", PASSWORD_VAR, "--json"],
        tmp.path(),
    ));
    r.assert_code(2)
        .assert_one_line_error(&["a path after the host is not supported"]);
    assert_eq!(r.stdout.lines().count(), 1, "{r:#?}");
    let error = r.stderr.trim().strip_prefix("mailkeep: ").unwrap();
    assert_eq!(
        r.report,
        serde_json::json!({"command": "backup", "error": error, "exit": "usage", "exit_code": 2})
    );
    // The exit in the object is the error's own (a damaged archive is 6, not 2).
    let root = tmp.path().join("damaged");
    std::fs::create_dir_all(root.join("mailkeep")).unwrap();
    std::fs::write(root.join("mailkeep").join("kind"), "garbage\n").unwrap();
    let r = run(&mut backup(
        &closed_port_source(),
        &root.display().to_string(),
        &["--password-env", PASSWORD_VAR, "--json"],
        tmp.path(),
    ));
    r.assert_code(6);
    assert_eq!(
        (r.report["exit"].as_str(), r.n("exit_code")),
        (Some("archive"), 6)
    );
}

/// A fake POP3 server with two messages: the first is served, the second refused (`-ERR`),
/// so a run fetches one message and fails on the other.
fn one_good_one_refused(base: &Path) -> FakeServer {
    let wire = "From: a@example.org\r\nSubject: one\r\n\r\nbody\r\n.\r\n";
    std::fs::write(base.join("m1.pop-wire"), wire).unwrap();
    let script = "S: +OK fake ready
C: CAPA
S: +OK
S: USER
S: UIDL
S: TOP
S: .
C: USER alice
S: +OK
C: PASS secret
S: +OK
C: STAT
S: +OK 2 80
C: UIDL
S: +OK
S: 1 uid-1
S: 2 uid-2
S: .
C: LIST
S: +OK
S: 1 40
S: 2 40
S: .
C: RETR 1
S: +OK 40 octets
S+ m1.pop-wire
C: RETR 2
S: -ERR message is locked
C: QUIT
S: +OK bye
";
    FakeServer::pop3_from_str(script, base)
}

fn fake_backup(server: &FakeServer, archive: &Path, args: &[&str]) -> Command {
    backup(
        &format!("pop3://alice@{}", server.addr()),
        &format!("maildir:{}", archive.display()),
        &[
            &["--allow-plaintext", "--password-env", PASSWORD_VAR][..],
            args,
        ]
        .concat(),
        archive.parent().unwrap(),
    )
}

/// Review item 9: with `--quiet`, a failed run still printed its summary line on stdout.
#[test]
fn quiet_failed_run_prints_nothing_on_stdout() {
    let tmp = tempfile::tempdir().unwrap();
    let server = one_good_one_refused(tmp.path());

    let quiet = run(&mut fake_backup(
        &server,
        &tmp.path().join("quiet"),
        &["--quiet"],
    ));
    assert_ne!(quiet.code, 0, "{quiet:#?}");
    assert_eq!(quiet.stdout, "", "{quiet:#?}");
    assert!(quiet.stderr.contains("uid-2"), "{quiet:#?}");

    // The same run without --quiet prints the summary (so the one above is not vacuous).
    let loud = run(&mut fake_backup(&server, &tmp.path().join("loud"), &[]));
    assert_eq!(loud.code, quiet.code, "{loud:#?}");
    assert!(loud.stdout.contains("1 fetched"), "{loud:#?}");
    assert_eq!(loud.stderr, quiet.stderr.replace("quiet", "loud"));
}

/// Review item 10: a report that could not be written (`/dev/full`) was lost silently. The
/// exit status stays the run's; one line on stderr says the report is missing. A reader that
/// goes away (a broken pipe) is not an error.
#[test]
fn report_that_cannot_be_written_is_reported() {
    let tmp = tempfile::tempdir().unwrap();
    let full = || {
        std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap()
    };

    // A usage error with --json: its JSON object cannot be written either.
    let mut cmd = backup(
        "pop3s://u@h/INBOX",
        "maildir:a",
        &["--password-env", PASSWORD_VAR, "--json"],
        tmp.path(),
    );
    let r = run(cmd.stdout(full()));
    r.assert_code(2);
    let lines: Vec<&str> = r.stderr.lines().collect();
    assert_eq!(lines.len(), 2, "{r:#?}");
    assert!(lines[0].contains("a path after the host"), "{r:#?}");
    assert!(
        lines[1].starts_with("mailkeep: cannot write the report to stdout: "),
        "{r:#?}"
    );

    // A run that worked: exit 0 still, and one line on stderr.
    let server = one_good_one_refused(tmp.path());
    for (n, args) in [&[][..], &["--json"][..]].into_iter().enumerate() {
        let mut cmd = fake_backup(&server, &tmp.path().join(format!("archive-{n}")), args);
        let r = run(cmd.stdout(full()));
        assert_eq!(r.code, 1, "{r:#?}");
        let last = r.stderr.lines().last().unwrap_or_default();
        assert!(
            last.starts_with("mailkeep: cannot write the report to stdout: "),
            "{args:?}: {r:#?}"
        );
        assert_eq!(
            r.stderr.matches("cannot write the report").count(),
            1,
            "{r:#?}"
        );
    }

    // A closed pipe: nothing more than the error itself.
    let mut child = backup(
        "pop3s://u@h/INBOX",
        "maildir:a",
        &["--password-env", PASSWORD_VAR, "--json"],
        tmp.path(),
    )
    .spawn()
    .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let r = Run::from_output(out);
    r.assert_code(2)
        .assert_one_line_error(&["a path after the host"]);
}

/// Review item 11: scripts/demo.sh ran `$PWD/target/release/mailkeep` even when
/// CARGO_TARGET_DIR pointed elsewhere.
#[test]
fn demo_script_finds_the_binary_in_cargo_target_dir() {
    let script =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/demo.sh")).unwrap();
    let line = script
        .lines()
        .find(|l| l.starts_with("mailkeep="))
        .expect("demo.sh sets mailkeep=");
    assert!(
        script.contains("the first build takes a few minutes"),
        "demo.sh should say the build is slow"
    );
    for (target_dir, want) in [
        (
            Some("/elsewhere/target"),
            "/elsewhere/target/release/mailkeep",
        ),
        (None, "/repo/target/release/mailkeep"),
    ] {
        let mut sh = Command::new("bash");
        sh.arg("-c")
            .arg(format!(
                "set -u; cd /; PWD=/repo; {line}; printf %s \"$mailkeep\""
            ))
            .env_remove("CARGO_TARGET_DIR");
        if let Some(d) = target_dir {
            sh.env("CARGO_TARGET_DIR", d);
        }
        let out = sh.output().unwrap();
        assert!(out.status.success(), "{out:?}");
        assert_eq!(String::from_utf8_lossy(&out.stdout), want, "{target_dir:?}");
    }
}

#[test]
fn a_second_restore_into_the_same_account_is_refused_as_locked() {
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    let held = mailkeep::archive::lock::ArchiveLock::acquire_target(
        &state.join("mailkeep"),
        "imap:bob@127.0.0.1:1",
        "bob@127.0.0.1:1",
    )
    .unwrap();
    let out = support::mailkeep()
        .args(["restore", "maildir:/nonexistent", "imaps://bob@127.0.0.1:1"])
        .args(["--password-env", PASSWORD_VAR])
        .env(PASSWORD_VAR, "pw")
        .env("XDG_STATE_HOME", &state)
        .output()
        .unwrap();
    let r = support::run::Run::from_output(out);
    r.assert_code(5).assert_one_line_error(&[
        "bob@127.0.0.1:1",
        "another mailkeep",
        &format!("pid {}", std::process::id()),
    ]);
    drop(held);
    // Once released, the run gets past the lock (and fails on the missing archive: exit 6).
    let out = support::mailkeep()
        .args(["restore", "maildir:/nonexistent", "imaps://bob@127.0.0.1:1"])
        .args(["--password-env", PASSWORD_VAR])
        .env(PASSWORD_VAR, "pw")
        .env("XDG_STATE_HOME", &state)
        .output()
        .unwrap();
    support::run::Run::from_output(out).assert_code(6);
}
