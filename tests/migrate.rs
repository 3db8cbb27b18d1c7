//! `mailkeep migrate` against a real Dovecot with two or three users (issue 4): IMAP to IMAP
//! with every folder, flag, keyword and INTERNALDATE; POP3 to IMAP into INBOX exactly once;
//! `--via ARCHIVE`; `--delete-after-migrate`; reruns that append nothing, also after the
//! uploads ledger is deleted; `--dry-run`; and the usage errors.
//!
//! Dovecot's own Maildir files are the truth about what each account holds.

mod support;

use std::path::Path;

use mailkeep::message::normalize;
use support::dovecot::{Dovecot, User};
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
        .args(["--source-password-env", SRC_VAR, "--target-password-env", DST_VAR])
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
        u.seed_message(folder, &m.raw, &info, Some(1_300_000_000 + i as i64 * 7_919));
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
    assert!(sa.values().flatten().any(|(_, f, _)| f.contains(&"$Work".to_string())));

    // A rerun fetches and appends nothing (recorded by source identity)...
    let again = migrate(&d, "imaps", &a, &b, &state, &[]);
    again.assert_code(0);
    assert_eq!(up(&again, "uploaded"), 0, "{again:#?}");
    assert_eq!(up(&again, "already_present"), total);
    assert_eq!(counts(&b), counts(&a));

    // ...a new message on the source is the only one copied...
    a.seed_message("Sent", b"From: a@example.org\nSubject: new\nMessage-ID: <new-1@example.org>\n\nnew\n", "S", Some(1_700_000_000));
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
    assert_eq!(a.message_count("INBOX") as u64, n, "the source is untouched");

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
    let next = migrate(&d, "pop3s", &a, &b, &state, &["--delete-after-migrate", "--into", "Old POP"]);
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

    let del = migrate(&d, "pop3s", &a, &b, &state, &["--via", &via, "--delete-after-migrate"]);
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
        (&["imaps://a@127.0.0.1", "imaps://a@127.0.0.1"], "same account"),
        (&["pop3s://a@127.0.0.1", "imaps://b@127.0.0.1", "--folder", "x"], "IMAP sources"),
        (&["imaps://a@127.0.0.1", "imaps://b@127.0.0.1", "--seen"], "POP3 sources"),
        (&["maildir:/tmp/x", "imaps://b@127.0.0.1"], "mailkeep restore"),
        (&["imaps://a@127.0.0.1", "pop3s://b@127.0.0.1"], "not an IMAP account"),
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
