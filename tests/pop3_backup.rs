//! POP3 backup against a real Dovecot (issue 2): the whole shared corpus into Maildir and mbox
//! with exact bytes, incremental runs, deletion policies, and the failures a user meets.

mod support;

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::Path;

use mailkeep::core::message::normalize;
use support::dovecot::{Dovecot, User};
use support::run::{digests, maildir_messages, mbox_messages, snapshot, Run};

const PW_VAR: &str = "MAILKEEP_TEST_PASSWORD";

/// `mailkeep backup <url> <archive> --tls-ca <ca> --password-env ... --json <extra>`.
fn backup(d: &Dovecot, u: &User, scheme: &str, archive: &str, extra: &[&str]) -> Run {
    let mut cmd = support::mailkeep();
    cmd.arg("backup")
        .arg(d.url(scheme, u))
        .arg(archive)
        .arg("--tls-ca")
        .arg(&d.ca_pem)
        .args(["--password-env", PW_VAR, "--json"])
        .args(extra)
        .env(PW_VAR, &u.password);
    Run::from_output(cmd.output().unwrap())
}

fn archive_arg(kind: &str, dir: &Path) -> String {
    format!("{kind}:{}", dir.display())
}

/// The stored messages of an archive's INBOX, whatever its kind.
fn inbox_messages(kind: &str, dir: &Path) -> Vec<Vec<u8>> {
    match kind {
        "maildir" => maildir_messages(dir).into_iter().map(|(_, b)| b).collect(),
        _ => mbox_messages(&dir.join("INBOX.mbox")),
    }
}

#[test]
fn corpus_backup_is_byte_exact_in_maildir_and_mbox() {
    let d = Dovecot::start();
    let u = d.add_user("corpus", "c0rpus-pw");
    let corpus = support::corpus::all();
    assert_eq!(corpus.len(), support::corpus::CORPUS_TOTAL);
    for m in &corpus {
        u.seed_message("INBOX", &m.raw, "", None);
    }
    let want = digests(
        corpus
            .iter()
            .map(|m| normalize(&m.raw))
            .collect::<Vec<_>>()
            .iter()
            .map(Vec::as_slice),
    );
    let tmp = tempfile::tempdir().unwrap();

    for kind in ["maildir", "mbox"] {
        let dir = tmp.path().join(kind);
        let run = backup(&d, &u, "pop3s", &archive_arg(kind, &dir), &[]);
        run.assert_code(0);
        assert_eq!(run.n("listed"), corpus.len() as u64);
        assert_eq!(run.n("fetched"), corpus.len() as u64);
        let stored = inbox_messages(kind, &dir);
        assert_eq!(stored.len(), corpus.len(), "{kind}: message count");
        let got = digests(stored.iter().map(Vec::as_slice));
        assert!(
            got == want,
            "{kind}: stored bytes differ from the corpus (after CRLF->LF)"
        );
        assert_eq!(
            run.n("fetched_bytes"),
            stored.iter().map(|m| m.len() as u64).sum::<u64>()
        );
    }

    // An independent reader: Python's mailbox module splits the mbox into the same messages
    // (mboxrd unquoting applied on top, since Python reads mboxo).
    let mbox = tmp.path().join("mbox/INBOX.mbox");
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(
            r#"
import hashlib, mailbox, re, sys
box = mailbox.mbox(sys.argv[1], create=False)
for key in box.iterkeys():
    raw = box.get_bytes(key)
    raw = re.sub(rb'(?m)^>(>*From )', rb'\1', raw)
    print(hashlib.sha256(raw).hexdigest())
"#,
        )
        .arg(&mbox)
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut py: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    py.sort();
    assert_eq!(py.len(), corpus.len(), "python's mailbox module count");
    assert!(
        py == want,
        "python's mailbox module reads other bytes than were stored"
    );
}

#[test]
fn second_run_changes_nothing_and_new_mail_is_fetched_exactly_once() {
    let d = Dovecot::start();
    let u = d.add_user("incr", "incr-pw");
    let corpus = support::corpus::all();
    for m in corpus.iter().take(20) {
        u.seed_message("INBOX", &m.raw, "", None);
    }
    let tmp = tempfile::tempdir().unwrap();
    for kind in ["maildir", "mbox"] {
        let dir = tmp.path().join(kind);
        let arch = archive_arg(kind, &dir);
        assert_eq!(
            backup(&d, &u, "pop3s", &arch, &[])
                .assert_code(0)
                .n("fetched"),
            20
        );
        let before = snapshot(&dir);
        let second = backup(&d, &u, "pop3s", &arch, &[]);
        second.assert_code(0);
        assert_eq!((second.n("fetched"), second.n("already_archived")), (0, 20));
        assert!(
            snapshot(&dir) == before,
            "{kind}: a run with nothing new changed the archive"
        );
    }
    for m in corpus.iter().skip(20).take(3) {
        u.seed_message("INBOX", &m.raw, "", None);
    }
    for kind in ["maildir", "mbox"] {
        let dir = tmp.path().join(kind);
        let run = backup(&d, &u, "pop3s", &archive_arg(kind, &dir), &[]);
        run.assert_code(0);
        assert_eq!((run.n("fetched"), run.n("already_archived")), (3, 20));
        let stored = inbox_messages(kind, &dir);
        let want: Vec<Vec<u8>> = corpus.iter().take(23).map(|m| normalize(&m.raw)).collect();
        assert_eq!(
            digests(stored.iter().map(Vec::as_slice)),
            digests(want.iter().map(Vec::as_slice))
        );
    }
}

#[test]
fn delete_after_backup_empties_the_server_and_keeps_the_archive() {
    let d = Dovecot::start();
    let u = d.add_user("del", "del-pw");
    for i in 0..4 {
        u.seed_message(
            "INBOX",
            format!("Subject: m{i}\n\nbody {i}\n").as_bytes(),
            "",
            None,
        );
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("a");
    let run = backup(
        &d,
        &u,
        "pop3s",
        &archive_arg("maildir", &dir),
        &["--delete-after-backup"],
    );
    run.assert_code(0);
    assert_eq!((run.n("fetched"), run.n("deleted")), (4, 4));
    assert_eq!(u.message_count("INBOX"), 0, "server should be empty");
    assert_eq!(inbox_messages("maildir", &dir).len(), 4);
    let again = backup(
        &d,
        &u,
        "pop3s",
        &archive_arg("maildir", &dir),
        &["--delete-after-backup"],
    );
    again.assert_code(0);
    assert_eq!(
        (again.n("listed"), again.n("fetched"), again.n("deleted")),
        (0, 0, 0)
    );
}

#[test]
fn keep_days_deletes_only_messages_archived_long_enough_ago() {
    let d = Dovecot::start();
    let u = d.add_user("keep", "keep-pw");
    for i in 0..3 {
        u.seed_message(
            "INBOX",
            format!("Subject: k{i}\n\nbody\n").as_bytes(),
            "",
            None,
        );
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("a");
    let arch = archive_arg("mbox", &dir);
    let run = backup(&d, &u, "pop3s", &arch, &["--keep-days", "2"]);
    run.assert_code(0);
    assert_eq!((run.n("fetched"), run.n("deleted")), (3, 0));
    assert_eq!(u.message_count("INBOX"), 3);
    // Make two of them look archived three days ago.
    let db = rusqlite::Connection::open(dir.join("mailkeep/ledger.sqlite")).unwrap();
    let aged = db
        .execute(
            "UPDATE messages SET stored_at = stored_at - 3*86400 WHERE id IN (SELECT id FROM messages ORDER BY id LIMIT 2)",
            [],
        )
        .unwrap();
    assert_eq!(aged, 2);
    drop(db);
    let run = backup(&d, &u, "pop3s", &arch, &["--keep-days", "2"]);
    run.assert_code(0);
    assert_eq!((run.n("fetched"), run.n("deleted")), (0, 2));
    assert_eq!(u.message_count("INBOX"), 1);
    assert_eq!(inbox_messages("mbox", &dir).len(), 3);
}

#[test]
fn a_failure_before_the_delete_step_deletes_nothing() {
    let d = Dovecot::start();
    let u = d.add_user("fail", "fail-pw");
    u.seed_message("INBOX", b"Subject: small 1\n\nbody\n", "", None);
    u.seed_message("INBOX", b"Subject: small 2\n\nbody\n", "", None);
    let mut big = b"Subject: big\n\n".to_vec();
    big.extend(
        std::iter::repeat_n(
            b"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde\n".as_slice(),
            16_000,
        )
        .flatten(),
    );
    u.seed_message("INBOX", &big, "", None);
    u.seed_message("INBOX", b"Subject: small 3\n\nbody\n", "", None);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("a");
    // A real fault: the process may not write files larger than 256 KiB (RLIMIT_FSIZE), so the
    // 1 MB message cannot be stored.
    let mut cmd = support::mailkeep();
    cmd.arg("backup")
        .arg(d.url("pop3s", &u))
        .arg(archive_arg("maildir", &dir))
        .arg("--tls-ca")
        .arg(&d.ca_pem)
        .args(["--password-env", PW_VAR, "--json", "--delete-after-backup"])
        .env(PW_VAR, &u.password);
    unsafe {
        cmd.pre_exec(|| {
            let lim = libc::rlimit {
                rlim_cur: 256 * 1024,
                rlim_max: 256 * 1024,
            };
            if libc::setrlimit(libc::RLIMIT_FSIZE, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let run = Run::from_output(cmd.output().unwrap());
    run.assert_code(6);
    assert!(
        run.stderr.contains("File too large") || run.stderr.contains("too large"),
        "{run:#?}"
    );
    assert_eq!(
        u.message_count("INBOX"),
        4,
        "nothing may be deleted after a failure"
    );
    assert_eq!(run.n("deleted"), 0);
    assert_eq!(
        inbox_messages("maildir", &dir).len(),
        2,
        "the messages before the failure are kept"
    );
    assert!(
        std::fs::read_dir(dir.join("tmp")).unwrap().next().is_none(),
        "no partial message may be left in tmp/"
    );
    // Without the limit the rerun completes, fetching only what is missing, then deletes.
    let rerun = backup(
        &d,
        &u,
        "pop3s",
        &archive_arg("maildir", &dir),
        &["--delete-after-backup"],
    );
    rerun.assert_code(0);
    assert_eq!(
        (
            rerun.n("fetched"),
            rerun.n("already_archived"),
            rerun.n("deleted")
        ),
        (2, 2, 4)
    );
    assert_eq!(inbox_messages("maildir", &dir).len(), 4);
}

#[test]
fn case_01_mbox_quotes_only_from_space_lines() {
    let case = support::corpus_dir().join("../cases/01-mboxrd-from-colon-header");
    let eml = std::fs::read(case.join("message.eml")).unwrap();
    let expected = std::fs::read(case.join("expected-mboxrd-message-part.txt")).unwrap();
    let d = Dovecot::start();
    let u = d.add_user("case01", "pw01");
    u.seed_message("INBOX", &eml, "", None);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("m");
    backup(&d, &u, "pop3s", &archive_arg("mbox", &dir), &[]).assert_code(0);
    let file = std::fs::read(dir.join("INBOX.mbox")).unwrap();
    let (from_line, rest) = file.split_at(file.iter().position(|&b| b == b'\n').unwrap() + 1);
    let from_line = String::from_utf8_lossy(from_line);
    let re_ok = from_line.starts_with("From alice.rivera@example.com ")
        && from_line.trim_end().len()
            == "From alice.rivera@example.com Thu Mar  7 09:05:07 2024".len();
    assert!(re_ok, "separator line: {from_line:?}");
    // The entry ends with the one empty line the writer adds.
    assert_eq!(rest, [expected.as_slice(), b"\n"].concat().as_slice());
    let changed: Vec<_> = String::from_utf8_lossy(rest)
        .lines()
        .zip(String::from_utf8_lossy(&normalize(&eml)).lines())
        .filter(|(a, b)| a != b)
        .map(|(a, _)| a.to_string())
        .collect();
    assert_eq!(
        changed,
        [
            ">From the figures we have, Q1 looks fine.",
            ">>From the archive: last year was similar.",
            ">>>From here on it gets complicated."
        ]
    );
    assert_eq!(
        mbox_messages(&dir.join("INBOX.mbox")),
        vec![normalize(&eml)]
    );
    let again = backup(&d, &u, "pop3s", &archive_arg("mbox", &dir), &[]);
    assert_eq!(again.assert_code(0).n("fetched"), 0);
    assert_eq!(mbox_messages(&dir.join("INBOX.mbox")).len(), 1);
}

#[test]
fn case_07_raw_8bit_bytes_are_kept() {
    let case = support::corpus_dir().join("../cases/07-raw-8bit-header-bytes");
    let eml = std::fs::read(case.join("eight-bit.eml")).unwrap();
    let d = Dovecot::start();
    let u = d.add_user("case07", "pw07");
    u.seed_message("INBOX", &eml, "", None);
    let tmp = tempfile::tempdir().unwrap();
    for kind in ["maildir", "mbox"] {
        let dir = tmp.path().join(kind);
        backup(&d, &u, "pop3s", &archive_arg(kind, &dir), &[]).assert_code(0);
        let stored = inbox_messages(kind, &dir);
        assert_eq!(stored, vec![normalize(&eml)], "{kind}");
        for octet in [0xE9u8, 0xF4, 0xFF, 0xFE, 0x80] {
            assert!(stored[0].contains(&octet), "{kind}: octet {octet:#x} lost");
        }
    }
}

#[test]
fn failures_give_one_line_and_the_documented_exit_code_and_leave_the_archive_alone() {
    let d = Dovecot::start();
    let u = d.add_user("errs", "right-pw");
    u.seed_message("INBOX", b"Subject: one\n\nbody\n", "", None);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("a");
    let arch = archive_arg("maildir", &dir);
    backup(&d, &u, "pop3s", &arch, &[]).assert_code(0);
    u.seed_message("INBOX", b"Subject: two\n\nbody\n", "", None);
    let before = snapshot(&dir);
    let account = format!("errs@127.0.0.1:{}", d.pop3s_port);

    // Wrong password: 3.
    let mut cmd = support::mailkeep();
    cmd.args([
        "backup",
        &d.url("pop3s", &u),
        &arch,
        "--password-env",
        PW_VAR,
    ])
    .arg("--tls-ca")
    .arg(&d.ca_pem)
    .env(PW_VAR, "wrong-pw");
    Run::from_output(cmd.output().unwrap())
        .assert_code(3)
        .assert_one_line_error(&["authentication failed", &account]);

    // Untrusted certificate (no --tls-ca): 4.
    let mut cmd = support::mailkeep();
    cmd.args([
        "backup",
        &d.url("pop3s", &u),
        &arch,
        "--password-env",
        PW_VAR,
    ])
    .env(PW_VAR, &u.password);
    Run::from_output(cmd.output().unwrap())
        .assert_code(4)
        .assert_one_line_error(&["certificate", "127.0.0.1", "--tls-ca"]);

    // Connection refused: 4.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut cmd = support::mailkeep();
    cmd.args([
        "backup",
        &format!("pop3s://errs@127.0.0.1:{closed}"),
        &arch,
        "--password-env",
        PW_VAR,
    ])
    .env(PW_VAR, &u.password);
    Run::from_output(cmd.output().unwrap())
        .assert_code(4)
        .assert_one_line_error(&["connection refused", &format!("127.0.0.1:{closed}")]);

    // Password file readable by others: 2.
    let pwfile = tmp.path().join("pw");
    std::fs::write(&pwfile, "right-pw\n").unwrap();
    std::fs::set_permissions(&pwfile, std::fs::Permissions::from_mode(0o644)).unwrap();
    let mut cmd = support::mailkeep();
    cmd.args(["backup", &d.url("pop3s", &u), &arch, "--password-file"])
        .arg(&pwfile)
        .arg("--tls-ca")
        .arg(&d.ca_pem);
    Run::from_output(cmd.output().unwrap())
        .assert_code(2)
        .assert_one_line_error(&["0644", "chmod 600"]);

    // No password source and no terminal: 2.
    let mut cmd = support::mailkeep();
    cmd.args(["backup", &d.url("pop3s", &u), &arch])
        .arg("--tls-ca")
        .arg(&d.ca_pem)
        .stdin(std::process::Stdio::null());
    Run::from_output(cmd.output().unwrap())
        .assert_code(2)
        .assert_one_line_error(&["--password-env"]);

    assert!(snapshot(&dir) == before, "a failed run changed the archive");

    // An archive path that cannot be created (its parent is a file): 6.
    let file = tmp.path().join("plain-file");
    std::fs::write(&file, "x").unwrap();
    let bad = format!("maildir:{}/sub", file.display());
    let mut cmd = support::mailkeep();
    cmd.args([
        "backup",
        &d.url("pop3s", &u),
        &bad,
        "--password-env",
        PW_VAR,
    ])
    .arg("--tls-ca")
    .arg(&d.ca_pem)
    .env(PW_VAR, &u.password);
    Run::from_output(cmd.output().unwrap())
        .assert_code(6)
        .assert_one_line_error(&["plain-file"]);

    // The password never shows in anything mailkeep prints.
    let run = backup(&d, &u, "pop3s", &arch, &[]);
    run.assert_code(0);
    assert!(!run.stdout.contains("right-pw") && !run.stderr.contains("right-pw"));
}

#[test]
fn plaintext_login_is_refused_unless_allowed() {
    let d = Dovecot::start_without_starttls();
    let u = d.add_user("plain", "plain-pw");
    u.seed_message("INBOX", b"Subject: p\n\nbody\n", "", None);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("a");
    let arch = archive_arg("maildir", &dir);
    let mut cmd = support::mailkeep();
    cmd.args([
        "backup",
        &d.url("pop3", &u),
        &arch,
        "--password-env",
        PW_VAR,
    ])
    .env(PW_VAR, &u.password);
    Run::from_output(cmd.output().unwrap())
        .assert_code(4)
        .assert_one_line_error(&["STLS", "--allow-plaintext"]);
    assert!(inbox_messages("maildir", &dir).is_empty());
    let mut cmd = support::mailkeep();
    cmd.args([
        "backup",
        &d.url("pop3", &u),
        &arch,
        "--password-env",
        PW_VAR,
        "--allow-plaintext",
        "--json",
    ])
    .env(PW_VAR, &u.password);
    assert_eq!(
        Run::from_output(cmd.output().unwrap())
            .assert_code(0)
            .n("fetched"),
        1
    );
}

#[test]
fn pop3_with_stls_upgrades_and_shares_the_ledger_with_pop3s() {
    let d = Dovecot::start();
    let u = d.add_user("stls", "stls-pw");
    u.seed_message("INBOX", b"Subject: s1\n\nbody\n", "", None);
    let tmp = tempfile::tempdir().unwrap();
    let arch = archive_arg("mbox", &tmp.path().join("a"));
    assert_eq!(
        backup(&d, &u, "pop3", &arch, &[])
            .assert_code(0)
            .n("fetched"),
        1
    );
    u.seed_message("INBOX", b"Subject: s2\n\nbody\n", "", None);
    let run = backup(&d, &u, "pop3s", &arch, &[]);
    assert_eq!(
        (run.assert_code(0).n("fetched"), run.n("already_archived")),
        (1, 1)
    );
}

#[test]
fn archive_files_are_private() {
    let d = Dovecot::start();
    let u = d.add_user("perm", "perm-pw");
    u.seed_message("INBOX", b"Subject: p\n\nbody\n", "", None);
    let tmp = tempfile::tempdir().unwrap();
    for kind in ["maildir", "mbox"] {
        let dir = tmp.path().join(kind);
        backup(&d, &u, "pop3s", &archive_arg(kind, &dir), &[]).assert_code(0);
        fn walk(p: &Path) {
            for e in std::fs::read_dir(p).unwrap().flatten() {
                let md = e.metadata().unwrap();
                let mode = md.permissions().mode() & 0o777;
                if md.is_dir() {
                    assert_eq!(mode, 0o700, "{}", e.path().display());
                    walk(&e.path());
                } else {
                    assert_eq!(mode, 0o600, "{}", e.path().display());
                }
            }
        }
        assert_eq!(
            std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777,
            0o700
        );
        walk(&dir);
    }
}

#[test]
fn kill_9_at_a_random_point_then_rerun_gives_the_uninterrupted_archive() {
    let d = Dovecot::start();
    let u = d.add_user("kill", "kill-pw");
    let corpus = support::corpus::all();
    // ~2,200 messages, 4 MB: long enough to be killed in the middle.
    for m in corpus
        .iter()
        .filter(|m| m.origin.starts_with("r-help_2007"))
    {
        u.seed_message("INBOX", &m.raw, "", None);
    }
    let tmp = tempfile::tempdir().unwrap();
    for kind in ["maildir", "mbox"] {
        let clean = tmp.path().join(format!("{kind}-clean"));
        backup(&d, &u, "pop3s", &archive_arg(kind, &clean), &[]).assert_code(0);
        for (i, delay_ms) in [150u64, 400, 900].into_iter().enumerate() {
            let dir = tmp.path().join(format!("{kind}-killed-{i}"));
            let mut child = support::mailkeep()
                .arg("backup")
                .arg(d.url("pop3s", &u))
                .arg(archive_arg(kind, &dir))
                .arg("--tls-ca")
                .arg(&d.ca_pem)
                .args(["--password-env", PW_VAR, "--quiet"])
                .env(PW_VAR, &u.password)
                .spawn()
                .unwrap();
            std::thread::sleep(std::time::Duration::from_millis(delay_ms));
            let _ = child.kill(); // SIGKILL
            let _ = child.wait();
            let rerun = backup(&d, &u, "pop3s", &archive_arg(kind, &dir), &[]);
            rerun.assert_code(0);
            let (a, b) = (snapshot(&clean), snapshot(&dir));
            let msgs = |s: &std::collections::BTreeMap<String, (Vec<u8>, i64)>| {
                s.iter()
                    .filter(|(k, _)| !k.starts_with("mailkeep/"))
                    // An mbox file's mtime is when it was last appended to; a Maildir file's
                    // is the message's date and must match too.
                    .map(|(k, v)| (k.clone(), v.0.clone(), if kind == "mbox" { 0 } else { v.1 }))
                    .collect::<Vec<_>>()
            };
            if msgs(&a) != msgs(&b) {
                let (ma, mb) = (msgs(&a), msgs(&b));
                let na: Vec<_> = ma.iter().map(|x| (x.0.clone(), x.2)).collect();
                let nb: Vec<_> = mb.iter().map(|x| (x.0.clone(), x.2)).collect();
                let only_a: Vec<_> = na.iter().filter(|x| !nb.contains(x)).take(5).collect();
                let only_b: Vec<_> = nb.iter().filter(|x| !na.contains(x)).take(5).collect();
                eprintln!(
                    "{kind}: {} vs {} files; only clean: {only_a:?}; only killed: {only_b:?}",
                    ma.len(),
                    mb.len()
                );
            }
            assert!(
                msgs(&a) == msgs(&b),
                "{kind}: killed after {delay_ms} ms and rerun, the archive differs from an uninterrupted run"
            );
        }
    }
}
