//! Found by an adversarial tester against a real Dovecot (issue 14): each test failed before
//! its fix and asserts the safe behaviour; an `#[ignore]`d one is known and still open.

mod support;

use std::fs;
use std::path::Path;

use mailkeep::core::message::normalize;
use support::dovecot::{Dovecot, User};
use support::run::{Run, Side};

const PW: &str = "MAILKEEP_BREAKER_PW";

fn msg(tag: &str) -> Vec<u8> {
    format!(
        "From: Ann <ann@example.com>\nTo: Bob <bob@example.org>\nSubject: {tag}\nDate: Mon, 1 Jan 2018 10:00:00 +0000\nMessage-ID: <{tag}@example.com>\n\nThe {tag} message.\n"
    )
    .into_bytes()
}

fn mailkeep(d: &Dovecot, u: &User, args: &[&str]) -> Run {
    support::run::as_user(d, u, args)
}

/// Every regular file under `dir` (recursively), its bytes.
fn all_files(dir: &Path) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap().flatten() {
            let ft = e.file_type().unwrap();
            if ft.is_dir() {
                if e.file_name() != "mailkeep" {
                    stack.push(e.path());
                }
            } else if ft.is_file() {
                out.push(fs::read(e.path()).unwrap());
            }
        }
    }
    out
}

fn archive_holds(dir: &Path, raw: &[u8]) -> bool {
    let want = normalize(raw);
    all_files(dir).iter().any(|b| b == &want)
}

/// --dedup stores a message once for two mailboxes. Prune one mailbox (its message is now only
/// in the archive), then the message is deleted on the server from the other mailbox, and a
/// `backup --mirror --dedup` removes the one stored copy: the pruned message is gone
/// everywhere.
#[test]
fn breaker_dedup_mirror_after_prune_keeps_the_pruned_message() {
    let d = Dovecot::start();
    for (i, (pruned, deleted)) in [("Other", "INBOX"), ("INBOX", "Other")]
        .into_iter()
        .enumerate()
    {
        let u = d.add_user(&format!("brkdedup{i}"), "pw-dedup");
        let m = msg(&format!("dedup-{i}"));
        u.seed_message("INBOX", &m, "S", Some(1_500_000_000));
        u.seed_message("Other", &m, "S", Some(1_500_000_000));
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("archive");
        let archive = format!("maildir:{}", dir.display());
        let url = d.url("imaps", &u);
        mailkeep(
            &d,
            &u,
            &["backup", &url, &archive, "--dedup", "--jobs", "1"],
        )
        .assert_code(0);
        assert!(archive_holds(&dir, &m));
        let p = mailkeep(
            &d,
            &u,
            &[
                "prune",
                &url,
                "--archive",
                &archive,
                "--older-than",
                "1d",
                "--folder",
                pruned,
                "--yes",
            ],
        );
        p.assert_code(0);
        assert_eq!(p.n("deleted"), 1, "{p:#?}");
        assert_eq!(u.message_count(pruned), 0);
        // The user deletes the other copy on the server, trusting the archive.
        for f in u.message_files(deleted) {
            fs::remove_file(f).unwrap();
        }
        let m2 = mailkeep(
            &d,
            &u,
            &[
                "backup", &url, &archive, "--dedup", "--mirror", "--jobs", "1",
            ],
        );
        eprintln!("mirror run: {m2:#?}");
        assert!(
            archive_holds(&dir, &m),
            "case {i}: pruned from {pruned}, deleted from {deleted}: the message is neither on the server nor in the archive"
        );
    }
}

/// A target copy marked \Deleted (an expunge in waiting: Thunderbird's "mark as deleted", or
/// any client) is counted as held by `--delete-after-migrate`, which deletes the source; the
/// target's next EXPUNGE then loses the message.
#[test]
fn breaker_delete_after_migrate_trusts_a_target_copy_marked_deleted() {
    let d = Dovecot::start();
    let src = d.add_user("brkmsrc", "src-pw");
    let dst = d.add_user("brkmdst", "dst-pw");
    let msgs: Vec<Vec<u8>> = (0..3).map(|i| msg(&format!("mdel-{i}"))).collect();
    for m in &msgs {
        src.seed_message("INBOX", m, "", None);
    }
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    let migrate = |extra: &[&str]| {
        support::run::migrate(
            &Side::of(&d, "pop3s", &src),
            &Side::of(&d, "imaps", &dst),
            &state,
            extra,
        )
    };
    migrate(&[]).assert_code(0);
    assert_eq!(dst.message_count("INBOX"), 3);
    // Mark every target copy \Deleted (Maildir info letter T), as a client would.
    let dir = dst.mailbox_dir("INBOX");
    for f in dst.message_files("INBOX") {
        let name = f.file_name().unwrap().to_string_lossy().to_string();
        let base = name.split(":2,").next().unwrap().to_string();
        let flags = name.split(":2,").nth(1).unwrap_or("").to_string();
        let mut fl: Vec<char> = format!("{flags}T").chars().collect();
        fl.sort();
        fl.dedup();
        let fl: String = fl.into_iter().collect();
        fs::rename(&f, dir.join("cur").join(format!("{base}:2,{fl}"))).unwrap();
    }
    let again = migrate(&["--delete-after-migrate"]);
    eprintln!("{again:#?}");
    let deleted = again.n("deleted_at_source");
    // The target's next EXPUNGE (any client closing the mailbox) removes the marked copies.
    let left_on_target = dst
        .message_files("INBOX")
        .into_iter()
        .filter(|f| {
            !f.file_name()
                .unwrap()
                .to_string_lossy()
                .split(":2,")
                .nth(1)
                .unwrap_or("")
                .contains('T')
        })
        .count();
    let left_on_source = src.message_count("INBOX");
    assert_eq!(
        left_on_target + left_on_source,
        3,
        "deleted at source: {deleted}; undeleted copies left on target: {left_on_target}, on source: {left_on_source}"
    );
}

fn start_with(extra: &str) -> Dovecot {
    Dovecot::start_with(support::dovecot::Options {
        extra_config: extra.to_string(),
        ..Default::default()
    })
}

/// Two POP3 servers on one host, reached on two ports (SSH tunnels, as issue 14 says of
/// targets), same user name, UIDLs of the common `%08Xu` form. Migrating the first, then the
/// second with --delete-after-migrate: the second server's messages are taken as migrated
/// (the source identity has no port) and deleted, though they were never copied.
#[test]
#[ignore = "known, open: a second POP3 server on the same host (or a reused UIDL) is never migrated; nothing is deleted, but the rerun does not copy it either"]
fn breaker_delete_after_migrate_second_pop3_server_same_host() {
    let d1 = start_with("pop3_uidl_format = %08Xu\n");
    let d2 = start_with("pop3_uidl_format = %08Xu\n");
    let dt = Dovecot::start();
    let s1 = d1.add_user("brktwin", "twin-pw");
    let s2 = d2.add_user("brktwin", "twin-pw");
    let dst = dt.add_user("brktwindst", "dst-pw");
    let a: Vec<Vec<u8>> = (0..3).map(|i| msg(&format!("aaa-{i}"))).collect();
    let b: Vec<Vec<u8>> = (0..3).map(|i| msg(&format!("bbb-{i}"))).collect();
    for m in &a {
        s1.seed_message("INBOX", m, "", None);
    }
    for m in &b {
        s2.seed_message("INBOX", m, "", None);
    }
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    let migrate = |d: &Dovecot, src: &User, extra: &[&str]| {
        support::run::migrate(
            &Side::of(d, "pop3s", src),
            &Side::of(&dt, "imaps", &dst),
            &state,
            extra,
        )
    };
    migrate(&d1, &s1, &[]).assert_code(0);
    assert_eq!(dst.message_count("INBOX"), 3);
    let second = migrate(&d2, &s2, &["--delete-after-migrate"]);
    eprintln!("{second:#?}");
    let on_target: Vec<Vec<u8>> = dst.messages("INBOX").iter().map(|m| normalize(m)).collect();
    let mut lost = 0;
    for m in &b {
        let on_t = on_target.contains(&normalize(m));
        let on_s = s2
            .messages("INBOX")
            .iter()
            .any(|x| normalize(x) == normalize(m));
        if !on_t && !on_s {
            lost += 1;
        }
    }
    assert_eq!(
        lost,
        0,
        "messages of the second server neither on target nor on source: {lost}; target holds {}",
        dst.message_count("INBOX")
    );
    // The note says "run the migration again to copy them": do so.
    let third = migrate(&d2, &s2, &[]);
    eprintln!("{third:#?}");
    let on_target: Vec<Vec<u8>> = dst.messages("INBOX").iter().map(|m| normalize(m)).collect();
    let copied = b
        .iter()
        .filter(|m| on_target.contains(&normalize(m)))
        .count();
    assert_eq!(
        copied, 3,
        "the second server's messages are never migrated (exit {})",
        third.code
    );
}

/// Two IMAP servers on one host (two ports), same user name, same UIDVALIDITY (legal: it is
/// unique per server only). Backup of server 1, then prune of server 2 against the same
/// archive: the records of server 1 (no port in the account key) let prune expunge server 2's
/// messages, never archived.
#[test]
fn breaker_prune_second_imap_server_same_host() {
    let d1 = Dovecot::start();
    let d2 = Dovecot::start();
    let s1 = d1.add_user("brktwinimap", "twin-pw");
    let s2 = d2.add_user("brktwinimap", "twin-pw");
    for (u, tag) in [(&s1, "aaa"), (&s2, "bbb")] {
        for i in 0..3 {
            u.seed_message(
                "INBOX",
                &msg(&format!("{tag}-{i}")),
                "S",
                Some(1_500_000_000),
            );
        }
        fs::write(u.maildir.join("dovecot-uidlist"), "3 V1234567 N1\n").unwrap();
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("archive");
    let archive = format!("maildir:{}", dir.display());
    mailkeep(&d1, &s1, &["backup", &d1.url("imaps", &s1), &archive]).assert_code(0);
    let p = mailkeep(
        &d2,
        &s2,
        &[
            "prune",
            &d2.url("imaps", &s2),
            "--archive",
            &archive,
            "--older-than",
            "1d",
            "--yes",
        ],
    );
    eprintln!("{p:#?}");
    let mut lost = 0;
    for i in 0..3 {
        let m = msg(&format!("bbb-{i}"));
        let on_s = s2
            .messages("INBOX")
            .iter()
            .any(|x| normalize(x) == normalize(&m));
        if !on_s && !archive_holds(&dir, &m) {
            lost += 1;
        }
    }
    assert_eq!(
        lost, 0,
        "server 2 messages neither on server 2 nor in the archive"
    );
}

/// The archive's `cur/` (INBOX) and a whole subfolder are moved out of the archive and
/// replaced by symbolic links. `prune --yes` must not accept copies read through a link
/// (outside the archive) as proof: the README says no link inside an archive is followed.
#[test]
fn breaker_prune_refuses_archived_copies_behind_a_symlinked_cur() {
    let d = Dovecot::start();
    let u = d.add_user("brklink", "pw-link");
    for i in 0..3 {
        u.seed_message("INBOX", &msg(&format!("lnk-{i}")), "S", Some(1_500_000_000));
        u.seed_message("Sub", &msg(&format!("lnks-{i}")), "S", Some(1_500_000_000));
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("archive");
    let outside = tmp.path().join("outside");
    fs::create_dir(&outside).unwrap();
    let archive = format!("maildir:{}", dir.display());
    let url = d.url("imaps", &u);
    mailkeep(&d, &u, &["backup", &url, &archive]).assert_code(0);
    fs::rename(dir.join("cur"), outside.join("cur")).unwrap();
    std::os::unix::fs::symlink(outside.join("cur"), dir.join("cur")).unwrap();
    fs::rename(dir.join(".Sub"), outside.join(".Sub")).unwrap();
    std::os::unix::fs::symlink(outside.join(".Sub"), dir.join(".Sub")).unwrap();
    let v = support::mailkeep()
        .args(["verify", &archive, "--json"])
        .output()
        .unwrap();
    let v = Run::from_output(v);
    eprintln!("verify: code {} intact {}", v.code, v.n("intact"));
    let p = mailkeep(
        &d,
        &u,
        &[
            "prune",
            &url,
            "--archive",
            &archive,
            "--older-than",
            "1d",
            "--yes",
        ],
    );
    eprintln!("{p:#?}");
    assert_eq!(
        (u.message_count("INBOX"), u.message_count("Sub")),
        (3, 3),
        "prune deleted server messages whose only copies are outside the archive, read through a link (exit {})",
        p.code
    );
}

fn pending_files(dir: &Path) -> i64 {
    let db = rusqlite::Connection::open(dir.join("mailkeep/ledger.sqlite")).unwrap();
    db.query_row(
        "SELECT COUNT(*) FROM mbox_files WHERE pending_len IS NOT NULL",
        [],
        |r| r.get(0),
    )
    .unwrap()
}

/// An older ledger (a copy taken by a system backup while a mailkeep run was appending, so it
/// notes a pending append) is put back after later runs archived more mail and deleted it from
/// the server. The next backup "repairs" the mbox by cutting it back to the pending length:
/// the messages archived by the later run are cut out of the archive, and the server no longer
/// has them.
#[test]
fn breaker_older_ledger_with_pending_append_cuts_later_mail() {
    let d = Dovecot::start();
    let mut k = 1;
    loop {
        assert!(k < 30, "no kill point leaves a pending append");
        let u = d.add_user(&format!("brkpend{k}"), "pw-pend");
        let m0 = msg(&format!("pend-{k}"));
        u.seed_message("INBOX", &m0, "", None);
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("archive");
        let archive = format!("mbox:{}", dir.display());
        let url = d.url("pop3s", &u);
        let killed = support::mailkeep()
            .args(["backup", &url, &archive, "--tls-ca"])
            .arg(&d.ca_pem)
            .args(["--password-env", PW])
            .env(PW, &u.password)
            .env("MAILKEEP_TEST_KILL_AFTER_EVENTS", k.to_string())
            .output()
            .unwrap();
        k += 1;
        if !dir.join("mailkeep/ledger.sqlite").exists() || pending_files(&dir) == 0 {
            continue;
        }
        eprintln!(
            "kill after {} events: status {:?}, pending append noted",
            k - 1,
            killed.status
        );
        let snap = tmp.path().join("ledger-snapshot");
        fs::copy(dir.join("mailkeep/ledger.sqlite"), &snap).unwrap();
        // The next run finishes the job and, as asked, deletes the archived message.
        let r = mailkeep(&d, &u, &["backup", &url, &archive, "--delete-after-backup"]);
        eprintln!("{r:#?}");
        r.assert_code(0);
        assert_eq!(u.message_count("INBOX"), 0);
        assert!(
            archive_holds_mbox(&dir, &m0),
            "archived before the ledger is put back"
        );
        // The ledger is damaged; the user puts back the copy from the system backup.
        for f in ["ledger.sqlite", "ledger.sqlite-wal", "ledger.sqlite-shm"] {
            let _ = fs::remove_file(dir.join("mailkeep").join(f));
        }
        fs::copy(&snap, dir.join("mailkeep/ledger.sqlite")).unwrap();
        let again = mailkeep(&d, &u, &["backup", &url, &archive]);
        eprintln!("{again:#?}");
        assert!(
            archive_holds_mbox(&dir, &m0),
            "the message is gone from the archive (run exit {}) and from the server",
            again.code
        );
        return;
    }
}

fn archive_holds_mbox(dir: &Path, raw: &[u8]) -> bool {
    let text = fs::read(dir.join("INBOX.mbox")).unwrap_or_default();
    let want = normalize(raw);
    let body = &want[want.len() - 20..];
    text.windows(body.len()).any(|w| w == body)
}

fn kill_at(mut cmd: std::process::Command, ms: u64) -> Option<i32> {
    let mut child = cmd
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(ms));
    if child.try_wait().unwrap().is_none() {
        // SIGKILL this child only (by its pid).
        let _ = child.kill();
    }
    child.wait().unwrap().code()
}

/// Random kill -9 moments during POP3 backups with --delete-after-backup (mbox and Maildir),
/// then a clean run: every message exactly once in the archive, none left on the server.
#[test]
#[ignore = "slow (random kills of a 720-message run); it held up: run with --ignored"]
fn breaker_random_kills_pop3_delete_after_backup() {
    let d = Dovecot::start();
    let mut seed: u64 = 0x9e3779b97f4a7c15;
    let mut rnd = move |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    for kind in ["mbox", "maildir"] {
        let u = d.add_user(&format!("brkrk{kind}"), "pw-rk");
        let mut msgs: Vec<Vec<u8>> = Vec::new();
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("archive");
        let archive = format!("{kind}:{}", dir.display());
        let url = d.url("pop3s", &u);
        for round in 0..12 {
            for i in 0..60 {
                let m = msg(&format!("rk-{kind}-{round:02}-{i:03}"));
                u.seed_message("INBOX", &m, "", None);
                msgs.push(m);
            }
            let mut cmd = support::mailkeep();
            cmd.args([
                "backup",
                &url,
                &archive,
                "--delete-after-backup",
                "--tls-ca",
            ])
            .arg(&d.ca_pem)
            .args(["--password-env", PW])
            .env(PW, &u.password);
            let ms = 20 + rnd(250);
            let code = kill_at(cmd, ms);
            eprintln!(
                "{kind} round {round}: killed at {ms} ms -> {code:?}, server {}",
                u.message_count("INBOX")
            );
            // Every message is on the server or in the archive at every moment.
            for m in &msgs {
                let on_s = u
                    .messages("INBOX")
                    .iter()
                    .any(|x| normalize(x) == normalize(m));
                let in_a = if kind == "mbox" {
                    archive_holds_mbox(&dir, m)
                } else {
                    archive_holds(&dir, m)
                };
                assert!(
                    on_s || in_a,
                    "{kind} round {round}: a message is neither on the server nor in the archive"
                );
            }
        }
        let last = mailkeep(&d, &u, &["backup", &url, &archive, "--delete-after-backup"]);
        eprintln!("{last:#?}");
        last.assert_code(0);
        assert_eq!(u.message_count("INBOX"), 0);
        let v = Run::from_output(
            support::mailkeep()
                .args(["verify", &archive, "--json"])
                .output()
                .unwrap(),
        );
        assert_eq!(v.code, 0, "{v:#?}");
        assert_eq!(v.n("intact"), msgs.len() as u64, "{v:#?}");
        // Exactly once each.
        if kind == "mbox" {
            let text = fs::read(dir.join("INBOX.mbox")).unwrap();
            let n = text.windows(6).filter(|w| w == b"\nFrom ").count()
                + usize::from(text.starts_with(b"From "));
            assert_eq!(n, msgs.len(), "mbox entries");
        } else {
            assert_eq!(all_files(&dir).len(), msgs.len(), "maildir files");
        }
    }
}

/// An older ledger (from before a prune) is put back; the next `backup --mirror` sees the
/// pruned messages recorded as plain archived copies whose server messages are gone, and
/// removes them from the archive: the prune deleted them from the server, the mirror from the
/// archive. (Issue 14's destructive-paths matrix has "ledger older than the archive", but not
/// crossed with --mirror.)
#[test]
fn breaker_older_ledger_then_mirror_removes_pruned_mail() {
    let d = Dovecot::start();
    for lost in [true, false] {
        let u = d.add_user(&format!("brkmirror{}", lost as u8), "pw-mirror");
        let msgs: Vec<Vec<u8>> = (0..4)
            .map(|i| msg(&format!("mir-{}-{i}", lost as u8)))
            .collect();
        for m in &msgs {
            u.seed_message("INBOX", m, "S", Some(1_500_000_000));
        }
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("archive");
        let archive = format!("maildir:{}", dir.display());
        let url = d.url("imaps", &u);
        mailkeep(&d, &u, &["backup", &url, &archive]).assert_code(0);
        let ledger = dir.join("mailkeep/ledger.sqlite");
        let snap = tmp.path().join("snap");
        fs::copy(&ledger, &snap).unwrap();
        let p = mailkeep(
            &d,
            &u,
            &[
                "prune",
                &url,
                "--archive",
                &archive,
                "--older-than",
                "1d",
                "--yes",
            ],
        );
        p.assert_code(0);
        assert_eq!(u.message_count("INBOX"), 0);
        for f in ["ledger.sqlite", "ledger.sqlite-wal", "ledger.sqlite-shm"] {
            let _ = fs::remove_file(dir.join("mailkeep").join(f));
        }
        if !lost {
            fs::copy(&snap, &ledger).unwrap();
        }
        let m = mailkeep(&d, &u, &["backup", &url, &archive, "--mirror"]);
        eprintln!("lost={lost}: {m:#?}");
        let kept = msgs.iter().filter(|x| archive_holds(&dir, x)).count();
        assert_eq!(
            kept,
            4,
            "ledger {}: {} of 4 pruned messages removed from the archive by --mirror (exit {})",
            if lost { "lost" } else { "older" },
            4 - kept,
            m.code
        );
    }
}

/// `restore` counts target copies marked \Deleted (an expunge in waiting) as already present.
#[test]
fn breaker_restore_counts_deleted_marked_copies_as_present() {
    let d = Dovecot::start();
    let src = d.add_user("brkrsrc", "src-pw");
    let dst = d.add_user("brkrdst", "dst-pw");
    for i in 0..3 {
        src.seed_message(
            "INBOX",
            &msg(&format!("rdel-{i}")),
            "S",
            Some(1_500_000_000),
        );
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("archive");
    let archive = format!("maildir:{}", dir.display());
    mailkeep(&d, &src, &["backup", &d.url("imaps", &src), &archive]).assert_code(0);
    let state = tmp.path().join("state");
    let restore = || {
        Run::from_output(
            support::mailkeep()
                .args(["restore", &archive, &d.url("imaps", &dst), "--tls-ca"])
                .arg(&d.ca_pem)
                .args(["--password-env", PW, "--json"])
                .env(PW, &dst.password)
                .env("XDG_STATE_HOME", &state)
                .output()
                .unwrap(),
        )
    };
    restore().assert_code(0);
    let inbox = dst.mailbox_dir("INBOX");
    for f in dst.message_files("INBOX") {
        let name = f.file_name().unwrap().to_string_lossy().to_string();
        let base = name.split(":2,").next().unwrap().to_string();
        let flags = name.split(":2,").nth(1).unwrap_or("").to_string();
        fs::rename(&f, inbox.join("cur").join(format!("{base}:2,{flags}T"))).unwrap();
    }
    let again = restore();
    eprintln!("{again:#?}");
    assert_eq!(
        again.n("uploaded"),
        3,
        "copies marked \\Deleted taken as present: {}",
        again.n("already_present")
    );
}

/// Prune, then the mailbox is recreated on the server (new UIDVALIDITY, the remaining
/// messages kept), then `backup --mirror`: the pruned messages must stay in the archive.
#[test]
fn breaker_uidvalidity_change_then_mirror_keeps_pruned_mail() {
    let d = Dovecot::start();
    let u = d.add_user("brkuvmir", "pw-uvmir");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let old: Vec<Vec<u8>> = (0..2).map(|i| msg(&format!("uvold-{i}"))).collect();
    let new: Vec<Vec<u8>> = (0..2).map(|i| msg(&format!("uvnew-{i}"))).collect();
    for m in &old {
        u.seed_message("INBOX", m, "S", Some(1_500_000_000));
    }
    for m in &new {
        u.seed_message("INBOX", m, "S", Some(now - 60));
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("archive");
    let archive = format!("maildir:{}", dir.display());
    let url = d.url("imaps", &u);
    mailkeep(&d, &u, &["backup", &url, &archive]).assert_code(0);
    let p = mailkeep(
        &d,
        &u,
        &[
            "prune",
            &url,
            "--archive",
            &archive,
            "--older-than",
            "30d",
            "--yes",
        ],
    );
    p.assert_code(0);
    assert_eq!(p.n("deleted"), 2);
    // Recreate: Dovecot forgets the UIDs (new UIDVALIDITY) and keeps the two files.
    std::thread::sleep(std::time::Duration::from_secs(1));
    for e in fs::read_dir(&u.maildir).unwrap().flatten() {
        let n = e.file_name().to_string_lossy().to_string();
        if n.starts_with("dovecot") {
            let _ = fs::remove_file(e.path());
        }
    }
    let b = mailkeep(&d, &u, &["backup", &url, &archive, "--mirror"]);
    eprintln!("{b:#?}");
    let kept = old.iter().filter(|x| archive_holds(&dir, x)).count();
    assert_eq!(
        kept,
        2,
        "{} pruned message(s) removed from the archive (exit {})",
        2 - kept,
        b.code
    );
    assert_eq!(new.iter().filter(|x| archive_holds(&dir, x)).count(), 2);
}

/// `migrate --via ARCHIVE --delete-after-migrate` after the via archive lost its ledger and a
/// file was damaged (same size): the damaged copy must not stand for the source message.
#[test]
#[ignore = "known, open: migrate --via uploads an adopted damaged copy and never converges (nothing is deleted at the source)"]
fn breaker_migrate_via_damaged_adopted_copy_then_delete() {
    let d = Dovecot::start();
    let src = d.add_user("brkviasrc", "src-pw");
    let dst = d.add_user("brkviadst", "dst-pw");
    let msgs: Vec<Vec<u8>> = (0..3).map(|i| msg(&format!("via-{i}"))).collect();
    for m in &msgs {
        src.seed_message("INBOX", m, "", None);
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("via");
    let via = format!("maildir:{}", dir.display());
    mailkeep(&d, &src, &["backup", &d.url("pop3s", &src), &via]).assert_code(0);
    for f in ["ledger.sqlite", "ledger.sqlite-wal", "ledger.sqlite-shm"] {
        let _ = fs::remove_file(dir.join("mailkeep").join(f));
    }
    // Damage msgs[1]'s archived file without changing its size.
    let want = normalize(&msgs[1]);
    let mut damaged = None;
    for e in fs::read_dir(dir.join("cur")).unwrap().flatten() {
        let b = fs::read(e.path()).unwrap();
        if b == want {
            let mut b2 = b.clone();
            let i = b2.len() - 3;
            b2[i] ^= 0x20;
            fs::write(e.path(), &b2).unwrap();
            damaged = Some(b2);
        }
    }
    let damaged = damaged.expect("archived copy");
    let state = tmp.path().join("state");
    let migrate_via = || {
        support::run::migrate(
            &Side::of(&d, "pop3s", &src),
            &Side::of(&d, "imaps", &dst),
            &state,
            &["--via", &via, "--delete-after-migrate"],
        )
    };
    let r = migrate_via();
    eprintln!("{r:#?}");
    // The note says "run the migration again to copy them": do so, twice.
    for _ in 0..2 {
        let again = migrate_via();
        eprintln!(
            "again: exit {} deleted {} note {}",
            again.code, again.report["deleted_at_source"], again.report["deletion_note"]
        );
    }
    let on_target: Vec<Vec<u8>> = dst.messages("INBOX").iter().map(|m| normalize(m)).collect();
    let on_source: Vec<Vec<u8>> = src.messages("INBOX").iter().map(|m| normalize(m)).collect();
    eprintln!(
        "target holds damaged copy: {}",
        on_target.contains(&damaged)
    );
    for m in &msgs {
        let n = normalize(m);
        assert!(
            on_target.contains(&n),
            "after three runs the intact message is still not on the target (exit {}); on source: {}",
            r.code, on_source.contains(&n)
        );
    }
}
