//! `mailkeep prune` against a real Dovecot (issue 6): only messages older than the cutoff
//! whose archived copy reads back with its recorded SHA-256 are deleted from the server, IMAP
//! (UID STORE \Deleted + UID EXPUNGE) and POP3 (DELE); a damaged copy keeps its message on the
//! server and is reported; nothing changes without `--yes`; a later `backup --mirror` keeps
//! the pruned messages in the archive.

mod support;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use mailkeep::core::message::normalize;
use support::dovecot::{wire_form, Dovecot, User};
use support::run::{maildir_messages, mbox_messages, Run};

const PW: &str = "MAILKEEP_PRUNE_PW";
const DAY: i64 = 86_400;

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn msg(tag: &str, date: i64) -> Vec<u8> {
    let d = chrono::DateTime::from_timestamp(date, 0)
        .unwrap()
        .to_rfc2822();
    format!(
        "From: Ann <ann@example.com>\nTo: Bob <bob@example.org>\nSubject: {tag}\nDate: {d}\nMessage-ID: <{tag}@example.com>\n\nThe {tag} message.\n"
    )
    .into_bytes()
}

fn mailkeep(d: &Dovecot, u: &User, args: &[&str]) -> Run {
    let out = support::mailkeep()
        .args(args)
        .arg("--tls-ca")
        .arg(&d.ca_pem)
        .args(["--password-env", PW, "--json"])
        .env(PW, &u.password)
        .output()
        .unwrap();
    Run::from_output(out)
}

/// The server's messages of `mailbox`, sorted (Dovecot keeps the seeded files as they are).
fn on_server(u: &User, mailbox: &str) -> Vec<Vec<u8>> {
    let mut v = u.messages(mailbox);
    v.sort();
    v
}

fn sorted(items: &[&Vec<u8>]) -> Vec<Vec<u8>> {
    let mut v: Vec<Vec<u8>> = items.iter().map(|m| (*m).clone()).collect();
    v.sort();
    v
}

/// Flips one byte of the body of the archived file holding `raw`.
fn corrupt_maildir_copy(folder: &Path, raw: &[u8]) -> PathBuf {
    let (name, _) = maildir_messages(folder)
        .into_iter()
        .find(|(_, b)| b == &normalize(raw))
        .expect("archived copy");
    let path = folder.join(name);
    let mut bytes = fs::read(&path).unwrap();
    let i = bytes.len() - 3;
    bytes[i] ^= 0x20;
    fs::write(&path, bytes).unwrap();
    path
}

/// Deleted-at times recorded in the ledger, per record.
fn deleted_in_ledger(archive: &Path) -> usize {
    let db = rusqlite::Connection::open(archive.join("mailkeep/ledger.sqlite")).unwrap();
    db.query_row(
        "SELECT COUNT(*) FROM messages WHERE deleted_at IS NOT NULL",
        [],
        |r| r.get::<_, i64>(0),
    )
    .unwrap() as usize
}

#[test]
fn imap_prune_deletes_exactly_the_old_verified_messages() {
    let d = Dovecot::start();
    let u = d.add_user("pruneimap", "prune-pw");
    let t0 = now();
    // INBOX: three old archived (one of them will be damaged in the archive), two recent.
    let old_a = msg("old-a", t0 - 700 * DAY);
    let old_damaged = msg("old-damaged", t0 - 500 * DAY);
    let old_b = msg("old-b", t0 - 380 * DAY);
    let recent_a = msg("recent-a", t0 - 300 * DAY);
    let recent_b = msg("recent-b", t0 - DAY);
    for (m, date) in [
        (&old_a, t0 - 700 * DAY),
        (&old_damaged, t0 - 500 * DAY),
        (&old_b, t0 - 380 * DAY),
        (&recent_a, t0 - 300 * DAY),
        (&recent_b, t0 - DAY),
    ] {
        u.seed_message("INBOX", m, "S", Some(date));
    }
    // Archive/2023: one old, one recent.
    let arch_old = msg("arch-old", t0 - 400 * DAY);
    let arch_recent = msg("arch-recent", t0 - 10 * DAY);
    u.seed_message("Archive/2023", &arch_old, "", Some(t0 - 400 * DAY));
    u.seed_message("Archive/2023", &arch_recent, "F", Some(t0 - 10 * DAY));

    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("archive");
    let archive = format!("maildir:{}", dir.display());
    let url = d.url("imaps", &u);
    mailkeep(&d, &u, &["backup", &url, &archive]).assert_code(0);
    corrupt_maildir_copy(&dir, &old_damaged);
    // Arrived after the backup, with an old INTERNALDATE: not archived, so kept.
    let old_unarchived = msg("old-unarchived", t0 - 600 * DAY);
    u.seed_message("INBOX", &old_unarchived, "", Some(t0 - 600 * DAY));
    let inbox_before = u.message_files("INBOX");
    let archive_before = u.message_files("Archive/2023");

    // Without --yes, and with --dry-run: the same decisions, nothing changed.
    for extra in [&[][..], &["--dry-run", "--yes"][..]] {
        let mut args = vec!["prune", &url, "--archive", &archive, "--older-than", "365d"];
        args.extend_from_slice(extra);
        let r = mailkeep(&d, &u, &args);
        r.assert_code(1);
        assert_eq!(r.report["dry_run"], true);
        assert_eq!(
            (
                r.n("to_delete"),
                r.n("deleted"),
                r.n("damaged"),
                r.n("not_archived"),
                r.n("older")
            ),
            (3, 0, 1, 1, 5),
            "{r:#?}"
        );
        assert_eq!(
            u.message_files("INBOX"),
            inbox_before,
            "{extra:?} changed INBOX"
        );
        assert_eq!(u.message_files("Archive/2023"), archive_before);
    }
    let r = support::mailkeep()
        .args(["prune", &url, "--archive", &archive, "--older-than", "365d"])
        .arg("--tls-ca")
        .arg(&d.ca_pem)
        .args(["--password-env", PW])
        .env(PW, &u.password)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&r.stdout);
    assert!(stdout.contains("  INBOX: 2 would be deleted ("), "{stdout}");
    assert!(
        stdout.contains("  Archive/2023: 1 would be deleted ("),
        "{stdout}"
    );
    assert!(
        stdout.contains("(to delete them, run again with --yes)"),
        "{stdout}"
    );
    // INBOX's six and Archive/2023's two: what the server holds in the archived mailboxes.
    assert!(
        stdout.contains(", 8 on server in 2 archived mailboxes in "),
        "{stdout}"
    );
    // The damaged copy: one line, with the message, and what to do about it.
    let stderr = String::from_utf8_lossy(&r.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(
        lines[0].starts_with("mailkeep: INBOX UID 2: the archived copy (cur/"),
        "{stderr}"
    );
    assert!(
        lines[0].ends_with(&format!(
            ") is missing or does not match its recorded SHA-256: kept on the server; `mailkeep verify {archive}` tells which, and the next backup fetches a missing copy again (move a damaged one aside first)"
        )),
        "{stderr}"
    );

    // As a job of `mailkeep run` without `yes = true`: a dry run, which --check points out,
    // and whose hint names the key, not the command line's --yes.
    let conf = tmp.path().join("config.toml");
    let job_text = format!(
        "[accounts.me]\nendpoint = \"{url}\"\npassword_env = \"{PW}\"\ntls_ca = \"{}\"\n\n[jobs.free-space]\nkind = \"prune\"\naccount = \"me\"\narchive = \"{archive}\"\nolder_than = \"365d\"\n",
        d.ca_pem.display()
    );
    fs::write(&conf, &job_text).unwrap();
    fs::set_permissions(&conf, fs::Permissions::from_mode(0o600)).unwrap();
    let run_text = |args: &[&str]| {
        let out = support::mailkeep()
            .arg("run")
            .args(args)
            .arg("--config")
            .arg(&conf)
            .env(PW, &u.password)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    assert_eq!(
        run_text(&["--check"]),
        (
            Some(0),
            format!(
                "free-space: prune job, line 6 of {}: ok (a dry run: it deletes nothing without `yes = true`)\n",
                conf.display()
            )
        )
    );
    let (code, stdout) = run_text(&[]);
    assert_eq!(code, Some(1), "{stdout}");
    assert!(
        stdout.contains("free-space: prune (dry run) ")
            && stdout.ends_with(
                "; nothing was changed (to delete them, set `yes = true` in this job)\n"
            ),
        "{stdout}"
    );
    assert_eq!(u.message_files("INBOX"), inbox_before);

    // For real (yes = true).
    fs::write(&conf, format!("{job_text}yes = true\n")).unwrap();
    let out = support::mailkeep()
        .args(["run", "--json", "--config"])
        .arg(&conf)
        .env(PW, &u.password)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let job: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(job["kind"], "prune");
    let r = &job["report"];
    assert_eq!(r["dry_run"], false);
    assert_eq!(
        (
            r["deleted"].as_u64(),
            r["damaged"].as_u64(),
            r["not_archived"].as_u64()
        ),
        (Some(3), Some(1), Some(1)),
        "{job:#}"
    );
    let size = |m: &[u8]| wire_form(m, false).len() as u64;
    assert_eq!(
        r["freed_bytes"].as_u64(),
        Some(size(&old_a) + size(&old_b) + size(&arch_old))
    );
    let per: Vec<(String, u64, u64)> = r["mailboxes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["mailbox"].as_str().unwrap().to_string(),
                m["deleted"].as_u64().unwrap(),
                m["freed_bytes"].as_u64().unwrap(),
            )
        })
        .collect();
    assert!(
        per.contains(&("INBOX".into(), 2, size(&old_a) + size(&old_b))),
        "{per:?}"
    );
    assert!(
        per.contains(&("Archive/2023".into(), 1, size(&arch_old))),
        "{per:?}"
    );
    let failures = r["failures"].as_array().unwrap();
    assert_eq!(failures.len(), 1, "{job:#}");
    assert_eq!(failures[0]["mailbox"], "INBOX");
    assert_eq!(failures[0]["message"], "UID 2");
    assert!(failures[0]["error"]
        .as_str()
        .unwrap()
        .contains("kept on the server"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("mailkeep: job free-space: INBOX UID 2: the archived copy"),
        "{stderr}"
    );

    // Dovecot holds exactly the damaged, recent and unarchived messages.
    assert_eq!(
        on_server(&u, "INBOX"),
        sorted(&[&old_damaged, &recent_a, &recent_b, &old_unarchived])
    );
    assert_eq!(on_server(&u, "Archive/2023"), sorted(&[&arch_recent]));
    assert_eq!(deleted_in_ledger(&dir), 3);

    // Again: nothing left to delete; the damaged copy is still reported.
    let r = mailkeep(
        &d,
        &u,
        &[
            "prune",
            &url,
            "--archive",
            &archive,
            "--older-than",
            "365d",
            "--yes",
        ],
    );
    r.assert_code(1);
    assert_eq!(
        (r.n("deleted"), r.n("damaged"), r.n("to_delete")),
        (0, 1, 0)
    );
    assert_eq!(r.n("listed"), 5);

    // A backup with --mirror keeps what prune deleted: that is what the archive is for.
    let r = mailkeep(&d, &u, &["backup", &url, &archive, "--mirror"]);
    r.assert_code(0);
    assert_eq!((r.n("removed"), r.n("fetched")), (0, 1), "{r:#?}");
    let kept: Vec<Vec<u8>> = maildir_messages(&dir).into_iter().map(|(_, b)| b).collect();
    for m in [&old_a, &old_b] {
        assert!(
            kept.contains(&normalize(m)),
            "the archive lost a pruned message"
        );
    }
    let arch_folder = fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .find(|e| e.file_name().to_string_lossy().starts_with(".Archive"))
        .unwrap()
        .path();
    assert_eq!(maildir_messages(&arch_folder).len(), 2);
}

#[test]
fn pop3_prune_deletes_old_verified_messages_with_dele() {
    let d = Dovecot::start();
    let u = d.add_user("prunepop", "prune-pop-pw");
    let t0 = now();
    let old_a = msg("p-old-a", t0 - 800 * DAY);
    let old_damaged = msg("p-old-damaged", t0 - 700 * DAY);
    let recent = msg("p-recent", t0 - 20 * DAY);
    let old_b = msg("p-old-b", t0 - 366 * DAY);
    for m in [&old_a, &old_damaged, &recent, &old_b] {
        u.seed_message("INBOX", m, "", None);
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("archive");
    let archive = format!("mbox:{}", dir.display());
    let url = d.url("pop3s", &u);
    mailkeep(&d, &u, &["backup", &url, &archive]).assert_code(0);
    // Damage the archived copy of one old message inside the mbox file.
    let mbox = dir.join("INBOX.mbox");
    let mut bytes = fs::read(&mbox).unwrap();
    let at = bytes
        .windows(b"The p-old-damaged message.".len())
        .position(|w| w == b"The p-old-damaged message.")
        .unwrap();
    bytes[at + 4] ^= 0x20;
    fs::write(&mbox, bytes).unwrap();
    // Not archived: its age is unknown to mailkeep, so it stays.
    let late = msg("p-late", t0 - 900 * DAY);
    u.seed_message("INBOX", &late, "", None);
    let before = u.message_files("INBOX");

    let r = mailkeep(
        &d,
        &u,
        &["prune", &url, "--archive", &archive, "--older-than", "1y"],
    );
    r.assert_code(1);
    assert_eq!(
        (
            r.n("to_delete"),
            r.n("deleted"),
            r.n("damaged"),
            r.n("not_archived")
        ),
        (2, 0, 1, 1),
        "{r:#?}"
    );
    assert_eq!(
        u.message_files("INBOX"),
        before,
        "prune without --yes changed the server"
    );

    let r = mailkeep(
        &d,
        &u,
        &[
            "prune",
            &url,
            "--archive",
            &archive,
            "--older-than",
            "1y",
            "--yes",
        ],
    );
    r.assert_code(1);
    assert_eq!((r.n("deleted"), r.n("damaged")), (2, 1), "{r:#?}");
    let size = |m: &[u8]| wire_form(m, true).len() as u64;
    assert_eq!(r.n("freed_bytes"), size(&old_a) + size(&old_b));
    assert_eq!(
        r.report["failures"][0]["message"]
            .as_str()
            .map(|m| m.starts_with("UIDL ")),
        Some(true)
    );
    assert_eq!(
        on_server(&u, "INBOX"),
        sorted(&[&old_damaged, &recent, &late])
    );
    assert_eq!(deleted_in_ledger(&dir), 2);
    // The archive itself is untouched by a prune: still the four messages of the backup.
    assert_eq!(mbox_messages(&mbox).len(), 4);

    // A prune into an archive that does not exist creates nothing.
    let none = tmp.path().join("none");
    let r = mailkeep(
        &d,
        &u,
        &[
            "prune",
            &url,
            "--archive",
            &format!("maildir:{}", none.display()),
            "--older-than",
            "30d",
            "--yes",
        ],
    );
    r.assert_code(2);
    assert!(!none.exists());
}

// ---------------------------------------------------------------------------------------------
// The protocol, against the scripted fake server (shared/cases/27's mailbox: five messages
// dated April 2024): UID STORE + UID EXPUNGE of exactly the verified UIDs with UIDPLUS;
// without UIDPLUS a plain EXPUNGE only when no other message is marked \Deleted.

mod fake {
    use super::*;
    use support::fake_imap::FakeImap;

    const FAKE_PW: &str = "MAILKEEP_PRUNE_FAKE_PW";

    fn case27() -> PathBuf {
        support::corpus_dir()
            .join("../cases")
            .join("27-concurrent-runs-and-stale-lock")
    }

    fn server(uidplus: bool) -> FakeImap {
        let mut script = fs::read_to_string(case27().join("server-slow.txt"))
            .unwrap()
            .lines()
            .filter(|l| !l.starts_with("PAUSE"))
            .collect::<Vec<_>>()
            .join("\n")
            // Message 3 is marked \Deleted (by another client).
            .replace("(UID 3 FLAGS ()", "(UID 3 FLAGS (\\Deleted)");
        if !uidplus {
            script = script.replace("[CAPABILITY IMAP4rev1 UIDPLUS]", "[CAPABILITY IMAP4rev1]");
        }
        FakeImap::from_str(&script, &case27())
    }

    fn mailkeep(server: &FakeImap, args: &[&str]) -> Run {
        let mut cmd = support::mailkeep();
        cmd.arg(args[0])
            .arg(format!("imap://alice@{}", server.addr()))
            .args(&args[1..])
            .args(["--allow-plaintext", "--password-env", FAKE_PW, "--json"])
            .env(FAKE_PW, "secret");
        Run::from_output(cmd.output().unwrap())
    }

    /// The commands that change the server.
    fn changes(server: &FakeImap) -> Vec<String> {
        server
            .commands()
            .into_iter()
            .filter(|c| c.contains("STORE") || c.contains("EXPUNGE") || c.starts_with("SELECT"))
            .collect()
    }

    #[test]
    fn with_uidplus_exactly_the_verified_uids_are_stored_and_expunged() {
        let tmp = tempfile::tempdir().unwrap();
        let archive = format!("maildir:{}", tmp.path().join("a").display());
        let s = server(true);
        mailkeep(&s, &["backup", &archive]).assert_code(0);
        // UID 4's archived copy is damaged: it stays.
        let m4 = fs::read(case27().join("m4.eml")).unwrap();
        corrupt_maildir_copy(&tmp.path().join("a"), &m4);
        let s = server(true);
        let r = mailkeep(
            &s,
            &["prune", "--archive", &archive, "--older-than", "365d"],
        );
        r.assert_code(1);
        assert_eq!(
            changes(&s),
            Vec::<String>::new(),
            "a dry run changed the server"
        );
        let s = server(true);
        let r = mailkeep(
            &s,
            &[
                "prune",
                "--archive",
                &archive,
                "--older-than",
                "365d",
                "--yes",
            ],
        );
        r.assert_code(1);
        assert_eq!((r.n("deleted"), r.n("damaged")), (4, 1), "{r:#?}");
        assert_eq!(
            changes(&s),
            [
                "SELECT \"INBOX\"",
                "UID STORE 1:3,5 +FLAGS.SILENT (\\Deleted)",
                "UID EXPUNGE 1:3,5"
            ]
        );
    }

    #[test]
    fn without_uidplus_a_mailbox_with_other_deleted_messages_is_left_alone() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("a");
        let archive = format!("maildir:{}", dir.display());
        let s = server(false);
        mailkeep(&s, &["backup", &archive]).assert_code(0);
        // The \Deleted message 3 is not ours to expunge when its copy does not verify.
        let m3 = fs::read(case27().join("m3.eml")).unwrap();
        let damaged = corrupt_maildir_copy(&dir, &m3);
        let s = server(false);
        let r = mailkeep(
            &s,
            &[
                "prune",
                "--archive",
                &archive,
                "--older-than",
                "365d",
                "--yes",
            ],
        );
        r.assert_code(1);
        assert_eq!(r.n("deleted"), 0);
        let errors: Vec<&str> = r.report["failures"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["error"].as_str().unwrap())
            .collect();
        assert!(
            errors.iter().any(|e| e.contains(
                "not pruned: the server has no UIDPLUS and 1 other message(s) are marked \\Deleted"
            )),
            "{r:#?}"
        );
        assert_eq!(changes(&s), ["SELECT \"INBOX\""]);

        // Repaired: every marked message is one of ours, so EXPUNGE is safe.
        let mut bytes = fs::read(&damaged).unwrap();
        let i = bytes.len() - 3;
        bytes[i] ^= 0x20;
        fs::write(&damaged, bytes).unwrap();
        let s = server(false);
        let r = mailkeep(
            &s,
            &[
                "prune",
                "--archive",
                &archive,
                "--older-than",
                "365d",
                "--yes",
            ],
        );
        r.assert_code(0);
        assert_eq!(r.n("deleted"), 5, "{r:#?}");
        assert_eq!(
            changes(&s),
            [
                "SELECT \"INBOX\"",
                "UID STORE 1:5 +FLAGS.SILENT (\\Deleted)",
                "EXPUNGE"
            ]
        );
        assert!(s.commands().iter().any(|c| c == "UID SEARCH DELETED"));
    }
}
