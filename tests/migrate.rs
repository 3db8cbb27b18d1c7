//! `mailkeep migrate` against a real Dovecot with two or three users (issue 4): IMAP to IMAP
//! with every folder, flag, keyword and INTERNALDATE; POP3 to IMAP into INBOX exactly once;
//! `--via ARCHIVE`; `--delete-after-migrate`; reruns that append nothing, also after the
//! uploads ledger is deleted; `--dry-run`; and the usage errors.
//!
//! Dovecot's own Maildir files are the truth about what each account holds.

mod support;

use std::path::Path;

use mailkeep::core::message::normalize;
use support::dovecot::{Dovecot, Options, User};
use support::run::{digests, ledger_state, Run};

const SRC_VAR: &str = "MAILKEEP_TEST_SOURCE_PASSWORD";
const DST_VAR: &str = "MAILKEEP_TEST_TARGET_PASSWORD";

/// `mailkeep migrate SOURCE TARGET --json <extra>` with per-test state.
fn migrate(d: &Dovecot, from: &str, src: &User, dst: &User, state: &Path, extra: &[&str]) -> Run {
    let out = support::mailkeep()
        .args(["migrate", &d.url(from, src), &d.url("imaps", dst), "--json"])
        .arg("--source-tls-ca")
        .arg(&d.ca_pem)
        .arg("--target-tls-ca")
        .arg(&d.ca_pem)
        .args([
            "--source-password-env",
            SRC_VAR,
            "--target-password-env",
            DST_VAR,
        ])
        .args(extra)
        .env(SRC_VAR, &src.password)
        .env(DST_VAR, &dst.password)
        .env("XDG_STATE_HOME", state)
        .output()
        .unwrap();
    Run::from_output(out)
}

fn backup(d: &Dovecot, u: &User, archive: &str) -> Run {
    let out = support::mailkeep()
        .args(["backup", &d.url("imaps", u), archive, "--json", "--tls-ca"])
        .arg(&d.ca_pem)
        .args(["--password-env", SRC_VAR])
        .env(SRC_VAR, &u.password)
        .output()
        .unwrap();
    Run::from_output(out)
}

/// A number from the report's `upload` part.
#[track_caller]
fn up(run: &Run, key: &str) -> u64 {
    run.report["upload"][key]
        .as_u64()
        .unwrap_or_else(|| panic!("no upload.{key} in report: {run:#?}"))
}

fn chown_like(path: &Path, like: &Path) {
    use std::os::unix::fs::MetadataExt;
    let md = std::fs::metadata(like).unwrap();
    std::os::unix::fs::chown(path, Some(md.uid()), Some(md.gid())).unwrap();
}

const FOLDERS: [&str; 4] = ["INBOX", "Sent", "Archive/2023", "日本語/受信箱"];
const INFOS: [&str; 6] = ["", "S", "FS", "RS", "D", "FRS"];

/// Seeds `u` with every 40th corpus message across [`FOLDERS`], with flags, the keywords
/// `$Work`/`Later` in INBOX, and known dates. Returns the message count.
fn seed_account(u: &User) -> usize {
    let dir = u.ensure_mailbox("INBOX");
    let file = dir.join("dovecot-keywords");
    std::fs::write(&file, "0 $Work\n1 Later\n").unwrap();
    chown_like(&file, &dir);
    let corpus = support::corpus::all();
    let mut n = 0;
    for (i, m) in corpus.iter().step_by(40).enumerate() {
        let folder = FOLDERS[(i * 3 + i / 7) % FOLDERS.len()];
        let mut info = INFOS[i % INFOS.len()].to_string();
        if folder == "INBOX" {
            if i % 4 == 0 {
                info.push('a');
            }
            if i % 5 == 1 {
                info.push('b');
            }
        }
        u.seed_message(
            folder,
            &m.raw,
            &info,
            Some(1_300_000_000 + i as i64 * 7_919),
        );
        n += 1;
    }
    n
}

fn counts(u: &User) -> Vec<usize> {
    FOLDERS.iter().map(|f| u.message_count(f)).collect()
}

/// SHA-256 of each message of `mailbox` in its stored form, sorted.
fn shas(u: &User, mailbox: &str) -> Vec<String> {
    let stored: Vec<Vec<u8>> = u.messages(mailbox).iter().map(|m| normalize(m)).collect();
    let mut v = digests(stored.iter().map(Vec::as_slice));
    v.sort();
    v
}

#[test]
fn imap_to_imap_copies_every_folder_with_flags_keywords_and_dates_once() {
    let d = Dovecot::start();
    let a = d.add_user("alice", "alice-pw");
    let b = d.add_user("bob", "bob-pw");
    let total = seed_account(&a) as u64;
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");

    let run = migrate(&d, "imaps", &a, &b, &state, &[]);
    run.assert_code(0);
    assert_eq!(run.report["command"], "migrate");
    assert_eq!(up(&run, "read"), total, "{run:#?}");
    assert_eq!(up(&run, "uploaded"), total);
    assert_eq!(up(&run, "already_present"), 0);
    assert_eq!(counts(&b), counts(&a));
    assert_eq!(counts(&b).iter().sum::<usize>() as u64, total);

    // Both accounts backed up: the same folders, bytes, flags, keywords and INTERNALDATEs.
    let (ar_a, ar_b) = (tmp.path().join("a"), tmp.path().join("b"));
    backup(&d, &a, &format!("maildir:{}", ar_a.display())).assert_code(0);
    backup(&d, &b, &format!("maildir:{}", ar_b.display())).assert_code(0);
    let (sa, sb) = (ledger_state(&ar_a), ledger_state(&ar_b));
    assert_eq!(sa.keys().collect::<Vec<_>>(), sb.keys().collect::<Vec<_>>());
    for (mb, want) in &sa {
        assert_eq!(&sb[mb], want, "mailbox {mb}: bytes, flags or dates differ");
    }
    assert!(sa
        .values()
        .flatten()
        .any(|(_, f, _)| f.contains(&"$Work".to_string())));

    // A rerun fetches and appends nothing (recorded by source identity)...
    let again = migrate(&d, "imaps", &a, &b, &state, &[]);
    again.assert_code(0);
    assert_eq!(up(&again, "uploaded"), 0, "{again:#?}");
    assert_eq!(up(&again, "already_present"), total);
    assert_eq!(counts(&b), counts(&a));

    // ...a new message on the source is the only one copied...
    a.seed_message(
        "Sent",
        b"From: a@example.org\nSubject: new\nMessage-ID: <new-1@example.org>\n\nnew\n",
        "S",
        Some(1_700_000_000),
    );
    let newer = migrate(&d, "imaps", &a, &b, &state, &[]);
    newer.assert_code(0);
    assert_eq!(up(&newer, "uploaded"), 1, "{newer:#?}");
    assert_eq!(shas(&b, "Sent"), shas(&a, "Sent"));

    // ...and without the uploads ledger every message is found on the target.
    std::fs::remove_file(state.join("mailkeep/uploads.sqlite")).unwrap();
    let lost = migrate(&d, "imaps", &a, &b, &state, &[]);
    lost.assert_code(0);
    assert_eq!(up(&lost, "uploaded"), 0, "{lost:#?}");
    assert_eq!(up(&lost, "found_on_target"), total + 1);
    assert_eq!(counts(&b), counts(&a));
}

#[test]
fn pop3_to_imap_lands_in_inbox_once_and_deletes_only_what_the_target_holds() {
    let d = Dovecot::start();
    let a = d.add_user("popuser", "pop-pw");
    let b = d.add_user("imapuser", "imap-pw");
    let corpus = support::corpus::all();
    let picked: Vec<_> = corpus.iter().step_by(97).collect();
    for m in &picked {
        a.seed_message("INBOX", &m.raw, "", None);
    }
    let n = picked.len() as u64;
    let want: Vec<String> = {
        let stored: Vec<Vec<u8>> = picked.iter().map(|m| normalize(&m.raw)).collect();
        let mut v = digests(stored.iter().map(Vec::as_slice));
        v.sort();
        v
    };
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");

    // A dry run changes nothing and says what it would do.
    let dry = migrate(&d, "pop3s", &a, &b, &state, &["--dry-run"]);
    dry.assert_code(0);
    assert_eq!(up(&dry, "to_upload"), n, "{dry:#?}");
    assert_eq!(b.message_count("INBOX"), 0);
    assert!(!state.join("mailkeep/uploads.sqlite").exists());

    let run = migrate(&d, "pop3s", &a, &b, &state, &["--seen"]);
    run.assert_code(0);
    assert_eq!(up(&run, "uploaded"), n, "{run:#?}");
    assert_eq!(shas(&b, "INBOX"), want);
    for f in b.message_files("INBOX") {
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        assert!(name.ends_with(":2,S"), "--seen: {name}");
    }
    assert_eq!(
        a.message_count("INBOX") as u64,
        n,
        "the source is untouched"
    );

    // Rerun: nothing appended. Then --delete-after-migrate empties the POP3 box, and only it.
    let again = migrate(&d, "pop3s", &a, &b, &state, &[]);
    assert_eq!(up(&again, "uploaded"), 0, "{again:#?}");
    assert_eq!(up(&again, "already_present"), n);
    let late = b"From: x@example.org\nSubject: late\nMessage-ID: <late@example.org>\n\nlate\n";
    let del = migrate(&d, "pop3s", &a, &b, &state, &["--delete-after-migrate"]);
    del.assert_code(0);
    assert_eq!(del.n("deleted_at_source"), n, "{del:#?}");
    assert_eq!(a.message_count("INBOX"), 0);
    assert_eq!(shas(&b, "INBOX"), want);

    // A message that arrives later is copied (here under --into) and deleted in turn.
    a.seed_message("INBOX", late, "", None);
    let next = migrate(
        &d,
        "pop3s",
        &a,
        &b,
        &state,
        &["--delete-after-migrate", "--into", "Old POP"],
    );
    next.assert_code(0);
    assert_eq!(up(&next, "uploaded"), 1, "{next:#?}");
    assert_eq!(next.n("deleted_at_source"), 1);
    assert_eq!(b.message_count("Old POP/INBOX"), 1);
    assert_eq!(a.message_count("INBOX"), 0);
}

#[test]
fn via_archive_keeps_a_local_copy_and_deletes_after_the_target_confirms() {
    let d = Dovecot::start();
    let a = d.add_user("popvia", "pop-pw");
    let b = d.add_user("imapvia", "imap-pw");
    let corpus = support::corpus::all();
    let picked: Vec<_> = corpus.iter().skip(5).step_by(151).collect();
    for m in &picked {
        a.seed_message("INBOX", &m.raw, "", None);
    }
    let n = picked.len() as u64;
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    let archive = tmp.path().join("local");
    let via = format!("maildir:{}", archive.display());

    let run = migrate(&d, "pop3s", &a, &b, &state, &["--via", &via]);
    run.assert_code(0);
    assert_eq!(run.report["backup"]["fetched"], n, "{run:#?}");
    assert_eq!(up(&run, "uploaded"), n);
    let local = ledger_state(&archive);
    assert_eq!(local["INBOX"].len() as u64, n);
    let mut local_shas: Vec<String> = local["INBOX"].iter().map(|(s, _, _)| s.clone()).collect();
    local_shas.sort();
    assert_eq!(shas(&b, "INBOX"), local_shas);

    // The same identities are recorded whichever way: a direct rerun copies nothing.
    let direct = migrate(&d, "pop3s", &a, &b, &state, &[]);
    assert_eq!(up(&direct, "uploaded"), 0, "{direct:#?}");
    assert_eq!(up(&direct, "already_present"), n);

    let del = migrate(
        &d,
        "pop3s",
        &a,
        &b,
        &state,
        &["--via", &via, "--delete-after-migrate"],
    );
    del.assert_code(0);
    assert_eq!(del.report["backup"]["fetched"], 0);
    assert_eq!(up(&del, "uploaded"), 0);
    assert_eq!(del.n("deleted_at_source"), n, "{del:#?}");
    assert_eq!(a.message_count("INBOX"), 0);
    assert_eq!(b.message_count("INBOX") as u64, n);
    assert_eq!(ledger_state(&archive), local, "the local copy stays");
}

#[test]
fn usage_errors_are_one_line_with_exit_2() {
    let tmp = tempfile::tempdir().unwrap();
    let cases: [(&[&str], &str); 5] = [
        (
            &["imaps://a@127.0.0.1", "imaps://a@127.0.0.1"],
            "same account",
        ),
        (
            &[
                "pop3s://a@127.0.0.1",
                "imaps://b@127.0.0.1",
                "--folder",
                "x",
            ],
            "IMAP sources",
        ),
        (
            &["imaps://a@127.0.0.1", "imaps://b@127.0.0.1", "--seen"],
            "POP3 sources",
        ),
        (
            &["maildir:/tmp/x", "imaps://b@127.0.0.1"],
            "mailkeep restore",
        ),
        (
            &["imaps://a@127.0.0.1", "pop3s://b@127.0.0.1"],
            "not an IMAP account",
        ),
    ];
    for (args, part) in cases {
        let out = support::mailkeep()
            .arg("migrate")
            .args(args)
            .env("XDG_STATE_HOME", tmp.path())
            .output()
            .unwrap();
        let run = Run::from_output(out);
        run.assert_code(2).assert_one_line_error(&[part]);
    }
}

/// A message without Message-ID, sent twice with the very same bytes (a monitoring alert).
const ALERT: &[u8] =
    b"From: monitor@example.org\nTo: ops@example.org\nSubject: disk full\nDate: Mon, 01 Jan 2024 10:00:00 +0000\n\nidentical body\n";

/// Identical copies of a message without Message-ID land once each (twice for two copies, in
/// one run); a third copy that arrives after the first migration is taken by the target
/// lookup for a copy that is already another message's, so `--delete-after-migrate` must not
/// take it for migrated: it deletes exactly the messages the target holds a copy of each.
#[test]
fn identical_copies_land_once_each_and_a_later_copy_is_deleted_only_when_the_target_has_it() {
    let d = Dovecot::start();
    let a = d.add_user("popdup", "pop-pw");
    let b = d.add_user("imapdup", "imap-pw");
    let other = b"From: a@example.org\nSubject: other\nMessage-ID: <other@example.org>\n\nother\n";
    a.seed_message("INBOX", ALERT, "", None);
    a.seed_message("INBOX", ALERT, "", None);
    a.seed_message("INBOX", other, "", None);
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    let alert_copies = |u: &User| {
        u.messages("INBOX")
            .iter()
            .filter(|m| normalize(m) == ALERT)
            .count()
    };

    let run = migrate(&d, "pop3s", &a, &b, &state, &[]);
    run.assert_code(0);
    assert_eq!(up(&run, "uploaded"), 3, "{run:#?}");
    assert_eq!(alert_copies(&b), 2, "two identical copies land twice");
    let again = migrate(&d, "pop3s", &a, &b, &state, &[]);
    assert_eq!(up(&again, "uploaded"), 0, "{again:#?}");
    assert_eq!(alert_copies(&b), 2, "not three times");

    // A third identical copy arrives, and the POP3 box is emptied.
    a.seed_message("INBOX", ALERT, "", None);
    let del = migrate(&d, "pop3s", &a, &b, &state, &["--delete-after-migrate"]);
    let deleted = del.n("deleted_at_source");
    let left = alert_copies(&a);
    assert_eq!(deleted as usize + left, 4, "{del:#?}");
    // Every deleted message has its own copy on the target: the copies the target holds are
    // the alert copies deleted, plus the other message.
    assert_eq!(alert_copies(&b) + 1, deleted as usize, "{del:#?}");
    assert_eq!(b.message_count("INBOX"), 1 + alert_copies(&b));
    if left == 1 {
        // The target holds two copies for three: the third stays, and the run says so.
        del.assert_code(1);
        let note = del.report["deletion_note"].as_str().unwrap();
        assert!(
            note.starts_with("kept 1 message(s) on the source: message 4 (UIDL "),
            "{note}"
        );
        assert!(
            del.stderr
                .lines()
                .any(|l| l.starts_with("mailkeep: kept 1 message(s)")),
            "{del:#?}"
        );
        // A rerun deletes nothing more and keeps saying so.
        let rerun = migrate(&d, "pop3s", &a, &b, &state, &["--delete-after-migrate"]);
        rerun.assert_code(1);
        assert_eq!(rerun.n("deleted_at_source"), 0, "{rerun:#?}");
        assert_eq!(alert_copies(&a), 1);
    } else {
        del.assert_code(0);
        assert_eq!(alert_copies(&b), 3);
    }
}

/// `--via` an archive that also holds another account's backup (and folders `--exclude`d)
/// uploads the source account's mail only, and says what it left out.
#[test]
fn via_a_shared_archive_uploads_only_the_source_accounts_chosen_folders() {
    let d = Dovecot::start();
    let other = d.add_user("other", "other-pw");
    let a = d.add_user("viaimap", "via-pw");
    let b = d.add_user("viatarget", "target-pw");
    let msg = |n: &str| {
        format!("From: x@example.org\nSubject: {n}\nMessage-ID: <{n}@example.org>\n\n{n}\n")
    };
    for (mb, n) in [("INBOX", "o1"), ("Private", "o2"), ("Private", "o3")] {
        other.seed_message(mb, msg(n).as_bytes(), "S", Some(1_600_000_000));
    }
    for (mb, n) in [("INBOX", "a1"), ("Work", "a2"), ("Junk", "a3")] {
        a.seed_message(mb, msg(n).as_bytes(), "S", Some(1_600_000_000));
    }
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    let archive = tmp.path().join("shared");
    let via = format!("maildir:{}", archive.display());
    // The archive first gets the other account's mail, and this account's Junk.
    let out = support::mailkeep()
        .args([
            "backup",
            &d.url("imaps", &other),
            &via,
            "--json",
            "--tls-ca",
        ])
        .arg(&d.ca_pem)
        .args(["--password-env", SRC_VAR])
        .env(SRC_VAR, &other.password)
        .output()
        .unwrap();
    Run::from_output(out).assert_code(0);
    let out = support::mailkeep()
        .args([
            "backup",
            &d.url("imaps", &a),
            &via,
            "--json",
            "--folder",
            "Junk",
            "--tls-ca",
        ])
        .arg(&d.ca_pem)
        .args(["--password-env", SRC_VAR])
        .env(SRC_VAR, &a.password)
        .output()
        .unwrap();
    Run::from_output(out).assert_code(0);

    let run = migrate(
        &d,
        "imaps",
        &a,
        &b,
        &state,
        &["--via", &via, "--exclude", "Junk"],
    );
    run.assert_code(0);
    assert_eq!(run.report["backup"]["fetched"], 2, "{run:#?}");
    assert_eq!(up(&run, "read"), 2, "{run:#?}");
    assert_eq!(up(&run, "uploaded"), 2);
    let mailboxes: Vec<&str> = run.report["upload"]["mailboxes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["mailbox"].as_str().unwrap())
        .collect();
    assert_eq!(mailboxes, ["INBOX", "Work"]);
    assert_eq!(b.message_count("INBOX"), 1);
    assert_eq!(b.message_count("Work"), 1);
    assert!(
        !b.mailbox_dir("Private").exists(),
        "another account's folder was created"
    );
    assert!(
        !b.mailbox_dir("Junk").exists(),
        "an excluded folder was created"
    );
    let warnings = run.report["upload"]["warnings"].as_array().unwrap();
    assert_eq!(
        warnings[0],
        format!(
            "{via} also holds mail that is not from {} (other accounts, or folders not chosen): 2 mailbox(es) and 1 message(s) were left out; upload them with `mailkeep restore` if you want them",
            d.url("imaps", &a).trim_start_matches("imaps://")
        ),
        "{run:#?}"
    );
}

/// Errors say which side they are about and name that side's options; the target's login is
/// checked before anything is read from the source (a `--via` backup does not run for
/// nothing); a `--map` that matches no source mailbox is a warning.
#[test]
fn errors_name_the_side_and_a_bad_target_login_stops_before_the_source_is_read() {
    // No 2 s wait after a failed login, and no growing penalty for the next ones.
    let d = Dovecot::start_with(Options {
        extra_config: "auth_failure_delay = 0\nservice anvil {\n  unix_listener anvil-auth-penalty {\n    mode = 0\n  }\n}\n".into(),
        ..Options::default()
    });
    let a = d.add_user("sidesrc", "src-pw");
    let b = d.add_user("sidedst", "dst-pw");
    a.seed_message(
        "INBOX",
        b"Subject: x\nMessage-ID: <x@example.org>\n\nx\n",
        "",
        None,
    );
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    let archive = tmp.path().join("local");
    let via = format!("maildir:{}", archive.display());
    let (src, dst) = (d.url("imaps", &a), d.url("imaps", &b));
    let (src_acct, dst_acct) = (
        src.trim_start_matches("imaps://"),
        dst.trim_start_matches("imaps://"),
    );
    let run = |pw_src: &str, pw_dst: &str, extra: &[&str]| {
        let out = support::mailkeep()
            .args(["migrate", &src, &dst])
            .args(extra)
            .env(SRC_VAR, pw_src)
            .env(DST_VAR, pw_dst)
            .env("XDG_STATE_HOME", &state)
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        Run::from_output(out)
    };
    let ca = d.ca_pem.to_str().unwrap();
    let both = ["--source-tls-ca", ca, "--target-tls-ca", ca];
    let pws = [
        "--source-password-env",
        SRC_VAR,
        "--target-password-env",
        DST_VAR,
    ];
    let all: Vec<&str> = both.iter().chain(&pws).copied().collect();

    let bad_target = run("src-pw", "wrong", &[&all[..], &["--via", &via]].concat());
    bad_target.assert_code(3).assert_one_line_error(&[
        &format!("authentication failed for target account {dst_acct}: "),
        &format!("(check the user name in TARGET and the password in ${DST_VAR} (--target-password-env))"),
    ]);
    assert!(
        !archive.exists(),
        "the --via backup ran before the target login was checked"
    );
    assert_eq!(b.message_count("INBOX"), 0);

    let bad_source = run("wrong", "dst-pw", &all);
    bad_source.assert_code(3).assert_one_line_error(&[
        &format!("authentication failed for source account {src_acct}: "),
        &format!("(check the user name in SOURCE and the password in ${SRC_VAR} (--source-password-env))"),
    ]);
    let bad_source_via = run("wrong", "dst-pw", &[&all[..], &["--via", &via]].concat());
    bad_source_via.assert_code(3);
    assert!(
        bad_source_via.stderr.contains(&format!(
            "authentication failed for source account {src_acct}: "
        )),
        "{bad_source_via:#?}"
    );

    let no_target_pw = run(
        "src-pw",
        "",
        &[&both[..], &["--source-password-env", SRC_VAR]].concat(),
    );
    no_target_pw.assert_code(2).assert_one_line_error(&[
        &format!("mailkeep: target {dst_acct}: no password given: use --target-password-env VAR, --target-password-command CMD or --target-password-file FILE"),
    ]);
    let no_target_ca = run(
        "src-pw",
        "dst-pw",
        &[&pws[..], &["--source-tls-ca", ca]].concat(),
    );
    no_target_ca.assert_code(4).assert_one_line_error(&[
        &format!("mailkeep: target {dst_acct}: TLS handshake"),
        "pass --target-tls-ca FILE",
    ]);
    let no_source_ca = run(
        "src-pw",
        "dst-pw",
        &[&pws[..], &["--target-tls-ca", ca]].concat(),
    );
    no_source_ca.assert_code(4).assert_one_line_error(&[
        &format!("mailkeep: source {src_acct}: TLS handshake"),
        "pass --source-tls-ca FILE",
    ]);
    assert_eq!(b.message_count("INBOX"), 0);

    let typo = run(
        "src-pw",
        "dst-pw",
        &[&all[..], &["--map", "Sent Itmes=Sent", "--dry-run"]].concat(),
    );
    typo.assert_code(0);
    assert_eq!(
        typo.stderr,
        "mailkeep: warning: --map Sent Itmes=Sent: the source has no mailbox Sent Itmes, so this rule mapped nothing\n"
    );
}

/// Two migrations into one target account never run at once: the second exits 5 at once,
/// naming the target, and appends nothing; two started together leave no duplicate.
#[test]
fn a_second_migration_into_the_same_target_exits_5_and_appends_nothing() {
    let d = Dovecot::start();
    let a = d.add_user("locksrc", "src-pw");
    let b = d.add_user("lockdst", "dst-pw");
    let corpus = support::corpus::all();
    for (i, m) in corpus.iter().step_by(53).enumerate() {
        a.seed_message(
            ["INBOX", "Sent", "Lists"][i % 3],
            &m.raw,
            "S",
            Some(1_500_000_000),
        );
    }
    let total: usize = ["INBOX", "Sent", "Lists"]
        .iter()
        .map(|f| a.message_count(f))
        .sum();
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    let dst = d.url("imaps", &b);

    // A target is keyed with its port when that is not a standard one (two tunnels on one
    // host are two servers).
    let port = dst.rsplit(':').next().unwrap();
    let held = mailkeep::archive::lock::ArchiveLock::acquire_target(
        &state.join("mailkeep"),
        &format!("imap:lockdst@127.0.0.1:{port}"),
        "someone",
    )
    .unwrap();
    let locked = migrate(&d, "imaps", &a, &b, &state, &[]);
    locked.assert_code(5);
    assert_eq!(
        locked.stderr,
        format!(
            "mailkeep: target {}: another mailkeep (pid {}) is restoring or migrating into this account; wait for it to finish\n",
            dst.trim_start_matches("imaps://"),
            std::process::id()
        )
    );
    assert_eq!(locked.report["exit"], "locked");
    assert_eq!(b.message_count("INBOX"), 0);
    drop(held);

    // Two at once: one copies everything, the other stops (or, started late, finds it done).
    let spawn = || {
        support::mailkeep()
            .args(["migrate", &d.url("imaps", &a), &dst, "--json"])
            .args(["--source-tls-ca", d.ca_pem.to_str().unwrap()])
            .args(["--target-tls-ca", d.ca_pem.to_str().unwrap()])
            .args([
                "--source-password-env",
                SRC_VAR,
                "--target-password-env",
                DST_VAR,
            ])
            .env(SRC_VAR, &a.password)
            .env(DST_VAR, &b.password)
            .env("XDG_STATE_HOME", &state)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (one, two) = (spawn(), spawn());
    let runs = [one, two].map(|c| Run::from_output(c.wait_with_output().unwrap()));
    let mut codes: Vec<i32> = runs.iter().map(|r| r.code).collect();
    codes.sort();
    assert!(codes == [0, 0] || codes == [0, 5], "{runs:#?}");
    let uploaded: u64 = runs
        .iter()
        .filter(|r| r.code == 0)
        .map(|r| up(r, "uploaded"))
        .sum();
    assert_eq!(uploaded as usize, total, "{runs:#?}");
    for f in ["INBOX", "Sent", "Lists"] {
        assert_eq!(
            shas(&b, f),
            shas(&a, f),
            "{f}: duplicates or missing messages"
        );
    }
}

/// A POP3 migration killed after its first batch was recorded and its second appended (but
/// not recorded), with a message of the second batch identical to one of the first: the rerun
/// finds the unrecorded copies on the target, and `--delete-after-migrate` then counts the
/// target's copies of the identical message (its record may name the first message's copy)
/// and deletes every message, each of which the target holds.
#[test]
fn a_killed_run_rerun_with_delete_after_migrate_deletes_exactly_what_the_target_holds() {
    let d = Dovecot::start();
    let a = d.add_user("popkill", "pop-pw");
    let b = d.add_user("imapkill", "imap-pw");
    let twin = b"From: a@example.org\nSubject: twin\nMessage-ID: <twin@example.org>\n\ntwin\n";
    let mut want = Vec::new();
    for i in 1..=55 {
        let raw = match i {
            1 | 51 => twin.to_vec(),
            _ => format!(
                "From: a@example.org\nSubject: n{i}\nMessage-ID: <n{i}@example.org>\n\nbody {i}\n"
            )
            .into_bytes(),
        };
        a.seed_message("INBOX", &raw, "", None);
        want.push(raw);
    }
    let want = {
        let mut v = digests(want.iter().map(Vec::as_slice));
        v.sort();
        v
    };
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    let out = support::mailkeep()
        .args([
            "migrate",
            &d.url("pop3s", &a),
            &d.url("imaps", &b),
            "--json",
        ])
        .args(["--source-tls-ca", d.ca_pem.to_str().unwrap()])
        .args(["--target-tls-ca", d.ca_pem.to_str().unwrap()])
        .args([
            "--source-password-env",
            SRC_VAR,
            "--target-password-env",
            DST_VAR,
        ])
        .env(SRC_VAR, &a.password)
        .env(DST_VAR, &b.password)
        .env("XDG_STATE_HOME", &state)
        .env("MAILKEEP_TEST_KILL_AFTER_EVENTS", "1")
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(137),
        "stopped by the test switch: {out:?}"
    );
    assert_eq!(b.message_count("INBOX"), 55, "both batches were appended");

    let del = migrate(&d, "pop3s", &a, &b, &state, &["--delete-after-migrate"]);
    del.assert_code(0);
    assert_eq!(up(&del, "uploaded"), 0, "{del:#?}");
    assert_eq!(up(&del, "found_on_target"), 5);
    assert_eq!(del.n("deleted_at_source"), 55, "{del:#?}");
    assert_eq!(del.report["deletion_note"], serde_json::Value::Null);
    assert_eq!(a.message_count("INBOX"), 0);
    assert_eq!(shas(&b, "INBOX"), want);
    println!("kill points covered: migrate pop3->imap (55 messages, 2 batches) 1 (after event 1; every point: tests/kill_matrix.rs)");
}
