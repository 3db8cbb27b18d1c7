//! A record proves only what was checked (issue 14, DESIGN.md invariant 2), against a real
//! Dovecot: nothing is deleted on a server on the strength of a record alone.
//!
//! - A lost ledger plus an archived file damaged without changing its size: the next backup
//!   adopts the file as *unverified*; `prune --yes` compares the server's bytes first and keeps
//!   the damaged one's message (IMAP and POP3); `backup --delete-after-backup` reads it again,
//!   archives the server's bytes in place of the damaged file, and only then deletes.
//! - A target that lost the copies: `restore` uploads again what was expunged on the target
//!   since its upload was recorded, and `migrate --delete-after-migrate` deletes at the source
//!   only once the target holds the copy again.
//! - A second server on the same host (another port) is another target.
//!
//! Server message counts are asserted before and after every destructive step.

mod support;

use std::fs;
use std::path::{Path, PathBuf};

use mailkeep::core::message::normalize;
use support::dovecot::{Dovecot, User};
use support::run::{maildir_messages, Run, Side};

const PW: &str = "MAILKEEP_TRUST_PW";
const DAY: i64 = 86_400;

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn msg(tag: &str) -> Vec<u8> {
    format!(
        "From: Ann <ann@example.com>\nTo: Bob <bob@example.org>\nSubject: {tag}\nDate: Mon, 1 Jan 2018 10:00:00 +0000\nMessage-ID: <{tag}@example.com>\n\nThe {tag} message, with a body long enough to damage.\n"
    )
    .into_bytes()
}

fn mailkeep(d: &Dovecot, u: &User, args: &[&str]) -> Run {
    support::run::as_user(d, u, args)
}

/// Flips one byte near the end of the archived file holding `raw` (its size is unchanged).
fn damage(folder: &Path, raw: &[u8]) -> PathBuf {
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

fn lose_ledger(archive: &Path) {
    for f in ["ledger.sqlite", "ledger.sqlite-wal", "ledger.sqlite-shm"] {
        let _ = fs::remove_file(archive.join("mailkeep").join(f));
    }
}

fn unverified_records(archive: &Path) -> i64 {
    let db = rusqlite::Connection::open(archive.join("mailkeep/ledger.sqlite")).unwrap();
    db.query_row("SELECT COUNT(*) FROM messages WHERE verified=0", [], |r| {
        r.get(0)
    })
    .unwrap()
}

fn sorted_archive(folder: &Path) -> Vec<Vec<u8>> {
    let mut v: Vec<Vec<u8>> = maildir_messages(folder)
        .into_iter()
        .map(|(_, b)| b)
        .collect();
    v.sort();
    v
}

#[test]
fn imap_prune_after_a_lost_ledger_keeps_the_message_whose_adopted_copy_is_damaged() {
    let d = Dovecot::start();
    let u = d.add_user("trustimap", "trust-pw");
    let t0 = now();
    let msgs: Vec<Vec<u8>> = (0..4).map(|i| msg(&format!("imap-{i}"))).collect();
    for m in &msgs {
        u.seed_message("INBOX", m, "S", Some(t0 - 800 * DAY));
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("archive");
    let archive = format!("maildir:{}", dir.display());
    let url = d.url("imaps", &u);
    mailkeep(&d, &u, &["backup", &url, &archive]).assert_code(0);

    // The ledger is lost and one archived file is damaged, its size unchanged.
    lose_ledger(&dir);
    damage(&dir, &msgs[1]);
    let again = mailkeep(&d, &u, &["backup", &url, &archive]);
    again.assert_code(0);
    assert_eq!(again.n("fetched"), 0, "{again:#?}");
    assert_eq!(again.n("recovered"), 4, "{again:#?}");
    assert_eq!(unverified_records(&dir), 4);
    // verify says so (a note: the archive itself is complete).
    let v = support::mailkeep()
        .args(["verify", &archive, "--json"])
        .output()
        .unwrap();
    let v = Run::from_output(v);
    v.assert_code(0);
    assert_eq!(v.report["problems"], serde_json::json!([]), "{v:#?}");
    assert_eq!(
        v.report["notes"],
        serde_json::json!([{
            "class": "note",
            "kind": "unverified",
            "mailbox": null,
            "identity": null,
            "path": dir.join("mailkeep/ledger.sqlite").display().to_string(),
            "detail": "4 record(s) were adopted without comparing their bytes with the server (a lost or older ledger, an interrupted run, a converted archive); prune and --delete-after-backup compare them with the server before deleting anything"
        }]),
        "{v:#?}"
    );

    // Without --yes: the comparison is made and reported, nothing changes.
    let dry = mailkeep(
        &d,
        &u,
        &["prune", &url, "--archive", &archive, "--older-than", "365d"],
    );
    dry.assert_code(1);
    assert_eq!(dry.n("to_delete"), 3, "{dry:#?}");
    assert_eq!(u.message_count("INBOX"), 4);
    assert_eq!(unverified_records(&dir), 4);

    let pruned = mailkeep(
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
    pruned.assert_code(1);
    assert_eq!(pruned.n("deleted"), 3, "{pruned:#?}");
    assert_eq!(pruned.n("damaged"), 1, "{pruned:#?}");
    let failures = pruned.report["failures"].as_array().unwrap();
    assert_eq!(failures.len(), 1, "{pruned:#?}");
    assert!(
        failures[0]["error"]
            .as_str()
            .unwrap()
            .starts_with("the server's message is not the archived copy ("),
        "{pruned:#?}"
    );
    // Exactly the message whose copy is damaged is still on the server.
    assert_eq!(u.messages("INBOX"), vec![msgs[1].clone()]);
    // The three compared equal were promoted; the damaged one stays unverified.
    assert_eq!(unverified_records(&dir), 1);
}

#[test]
fn pop3_delete_after_backup_rereads_adopted_copies_and_archives_the_servers_bytes() {
    let d = Dovecot::start();
    let u = d.add_user("trustpop", "trust-pw");
    let msgs: Vec<Vec<u8>> = (0..4).map(|i| msg(&format!("pop-{i}"))).collect();
    for m in &msgs {
        u.seed_message("INBOX", m, "", None);
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("archive");
    let archive = format!("maildir:{}", dir.display());
    let url = d.url("pop3s", &u);
    mailkeep(&d, &u, &["backup", &url, &archive]).assert_code(0);
    let good = sorted_archive(&dir);
    assert_eq!(good.len(), 4);

    lose_ledger(&dir);
    let damaged = damage(&dir, &msgs[2]);
    // The damaged file is adopted as unverified (a plain backup deletes nothing)...
    let adopt = mailkeep(&d, &u, &["backup", &url, &archive]);
    adopt.assert_code(0);
    assert_eq!(adopt.n("recovered"), 4, "{adopt:#?}");
    assert_eq!(unverified_records(&dir), 4);
    assert_eq!(u.message_count("INBOX"), 4);

    // ...and a backup that deletes reads every message again before deleting it.
    let del = mailkeep(&d, &u, &["backup", &url, &archive, "--delete-after-backup"]);
    del.assert_code(0);
    assert_eq!(del.n("deleted"), 4, "{del:#?}");
    assert_eq!(del.n("fetched"), 1, "{del:#?}");
    let warnings: Vec<&str> = del.report["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w.as_str().unwrap())
        .collect();
    assert_eq!(
        warnings,
        [format!(
            "{}: 1 message(s) on the server differ from their archived copy (same UIDL and size, other bytes: first UIDL {}); each is archived from the server now",
            url.trim_start_matches("pop3s://"),
            warnings[0]
                .rsplit("first UIDL ")
                .next()
                .unwrap()
                .split(')')
                .next()
                .unwrap()
        )],
        "{del:#?}"
    );
    assert_eq!(u.message_count("INBOX"), 0);
    // The archive holds the server's bytes of all four, the damaged file replaced.
    assert_eq!(sorted_archive(&dir), good);
    assert!(!damaged.exists() || fs::read(&damaged).unwrap() == normalize(&msgs[2]));
    assert_eq!(unverified_records(&dir), 0);
}

#[test]
fn pop3_prune_compares_every_candidate_with_the_server() {
    let d = Dovecot::start();
    let u = d.add_user("trustpop3prune", "trust-pw");
    let msgs: Vec<Vec<u8>> = (0..3).map(|i| msg(&format!("pp-{i}"))).collect();
    for m in &msgs {
        u.seed_message("INBOX", m, "", None);
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("archive");
    let archive = format!("maildir:{}", dir.display());
    let url = d.url("pop3s", &u);
    mailkeep(&d, &u, &["backup", &url, &archive]).assert_code(0);
    lose_ledger(&dir);
    damage(&dir, &msgs[0]);
    mailkeep(&d, &u, &["backup", &url, &archive]).assert_code(0);
    let pruned = mailkeep(
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
    pruned.assert_code(1);
    assert_eq!(pruned.n("deleted"), 2, "{pruned:#?}");
    assert_eq!(pruned.n("damaged"), 1, "{pruned:#?}");
    assert_eq!(u.messages("INBOX"), vec![msgs[0].clone()]);
}

fn restore(d: &Dovecot, u: &User, archive: &str, url: &str, state: &Path) -> Run {
    let out = support::mailkeep()
        .args(["restore", archive, url, "--tls-ca"])
        .arg(&d.ca_pem)
        .args(["--password-env", PW, "--json"])
        .env(PW, &u.password)
        .env("XDG_STATE_HOME", state)
        .output()
        .unwrap();
    Run::from_output(out)
}

/// Builds a Maildir archive of `msgs` in INBOX by backing `u` up.
fn archive_of(d: &Dovecot, u: &User, msgs: &[Vec<u8>], dir: &Path) -> String {
    for m in msgs {
        u.seed_message("INBOX", m, "S", Some(1_500_000_000));
    }
    let archive = format!("maildir:{}", dir.display());
    mailkeep(d, u, &["backup", &d.url("imaps", u), &archive]).assert_code(0);
    archive
}

#[test]
fn restore_uploads_again_what_the_target_lost_since_it_was_recorded() {
    let d = Dovecot::start();
    let src = d.add_user("trustrsrc", "src-pw");
    let dst = d.add_user("trustrdst", "dst-pw");
    let msgs: Vec<Vec<u8>> = (0..10).map(|i| msg(&format!("r-{i}"))).collect();
    let tmp = tempfile::tempdir().unwrap();
    let archive = archive_of(&d, &src, &msgs, &tmp.path().join("archive"));
    let state = tmp.path().join("state");
    let url = d.url("imaps", &dst);
    let first = restore(&d, &dst, &archive, &url, &state);
    first.assert_code(0);
    assert_eq!(first.n("uploaded"), 10, "{first:#?}");
    assert_eq!(dst.message_count("INBOX"), 10);

    // Two copies are expunged on the target (another client, a server-side cleanup).
    let mut files = dst.message_files("INBOX");
    files.sort();
    for f in &files[..2] {
        fs::remove_file(f).unwrap();
    }
    assert_eq!(dst.message_count("INBOX"), 8);
    let again = restore(&d, &dst, &archive, &url, &state);
    again.assert_code(0);
    assert_eq!(again.n("uploaded"), 2, "{again:#?}");
    assert_eq!(again.n("already_present"), 8, "{again:#?}");
    assert_eq!(
        again.report["warnings"],
        serde_json::json!([
            "INBOX: 2 message(s) recorded as uploaded are no longer in the target mailbox (expunged, or moved by another client): uploaded again"
        ]),
        "{again:#?}"
    );
    let mut want: Vec<Vec<u8>> = msgs.iter().map(|m| normalize(m)).collect();
    want.sort();
    let mut have: Vec<Vec<u8>> = dst.messages("INBOX").iter().map(|m| normalize(m)).collect();
    have.sort();
    assert_eq!(have, want);
    // And a third run moves nothing, and warns no more.
    let third = restore(&d, &dst, &archive, &url, &state);
    third.assert_code(0);
    assert_eq!(
        third.report["warnings"],
        serde_json::json!([]),
        "{third:#?}"
    );
    assert_eq!(third.n("uploaded"), 0, "{third:#?}");
    assert_eq!(third.n("already_present"), 10, "{third:#?}");
}

#[test]
fn a_second_server_on_another_port_of_the_same_host_is_another_target() {
    let d1 = Dovecot::start();
    let d2 = Dovecot::start();
    let src = d1.add_user("trustport", "pw-one");
    let t1 = d1.add_user("trustsame", "same-pw");
    let t2 = d2.add_user("trustsame", "same-pw");
    let msgs: Vec<Vec<u8>> = (0..2).map(|i| msg(&format!("p-{i}"))).collect();
    let tmp = tempfile::tempdir().unwrap();
    let archive = archive_of(&d1, &src, &msgs, &tmp.path().join("archive"));
    let state = tmp.path().join("state");
    let one = restore(&d1, &t1, &archive, &d1.url("imaps", &t1), &state);
    one.assert_code(0);
    assert_eq!(one.n("uploaded"), 2, "{one:#?}");
    let two = restore(&d2, &t2, &archive, &d2.url("imaps", &t2), &state);
    two.assert_code(0);
    assert_eq!(two.n("uploaded"), 2, "{two:#?}");
    assert_eq!(two.n("already_present"), 0, "{two:#?}");
    assert_eq!(t1.message_count("INBOX"), 2);
    assert_eq!(t2.message_count("INBOX"), 2);
}

#[test]
fn delete_after_migrate_deletes_at_the_source_only_what_the_target_holds_now() {
    let d = Dovecot::start();
    let src = d.add_user("trustmsrc", "src-pw");
    let dst = d.add_user("trustmdst", "dst-pw");
    let msgs: Vec<Vec<u8>> = (0..5).map(|i| msg(&format!("m-{i}"))).collect();
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
    let first = migrate(&[]);
    first.assert_code(0);
    assert_eq!(dst.message_count("INBOX"), 5);
    assert_eq!(src.message_count("INBOX"), 5);

    // The target loses every copy; the uploads ledger still records all five.
    for f in dst.message_files("INBOX") {
        fs::remove_file(f).unwrap();
    }
    assert_eq!(dst.message_count("INBOX"), 0);
    let again = migrate(&["--delete-after-migrate"]);
    again.assert_code(0);
    // Uploaded again (not "already present"), and deleted at the source only after that.
    assert_eq!(again.report["upload"]["uploaded"], 5, "{again:#?}");
    assert_eq!(again.report["upload"]["already_present"], 0, "{again:#?}");
    assert_eq!(again.n("deleted_at_source"), 5, "{again:#?}");
    assert_eq!(dst.message_count("INBOX"), 5);
    assert_eq!(src.message_count("INBOX"), 0);
    let mut want: Vec<Vec<u8>> = msgs.iter().map(|m| normalize(m)).collect();
    want.sort();
    let mut have: Vec<Vec<u8>> = dst.messages("INBOX").iter().map(|m| normalize(m)).collect();
    have.sort();
    assert_eq!(have, want);
}

#[test]
fn a_ledger_from_a_newer_mailkeep_is_refused_by_backup_and_verify() {
    let d = Dovecot::start();
    let u = d.add_user("trustnewer", "trust-pw");
    u.seed_message("INBOX", &msg("newer"), "", None);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("archive");
    let archive = format!("maildir:{}", dir.display());
    let url = d.url("imaps", &u);
    mailkeep(&d, &u, &["backup", &url, &archive]).assert_code(0);
    let ledger = dir.join("mailkeep/ledger.sqlite");
    {
        let db = rusqlite::Connection::open(&ledger).unwrap();
        db.execute("UPDATE meta SET value='99' WHERE key='schema_version'", [])
            .unwrap();
    }
    let v = Run::from_output(
        support::mailkeep()
            .args(["verify", &archive])
            .output()
            .unwrap(),
    );
    v.assert_code(9);
    assert!(
        v.stdout.contains(&format!(
            "ledger schema version 99 is newer than this mailkeep understands ({}): upgrade mailkeep to verify this archive",
            mailkeep::archive::ledger::SCHEMA_VERSION
        )),
        "{v:#?}"
    );
    let b = mailkeep(&d, &u, &["backup", &url, &archive]);
    b.assert_code(6);
    assert!(
        b.stderr.contains(&format!(
            "ledger schema version 99 is newer than this mailkeep understands ({}): upgrade mailkeep",
            mailkeep::archive::ledger::SCHEMA_VERSION
        )),
        "{b:#?}"
    );
    // A version that is not a number is named as damage, without Rust's words for it.
    {
        let db = rusqlite::Connection::open(&ledger).unwrap();
        db.execute("UPDATE meta SET value='7x' WHERE key='schema_version'", [])
            .unwrap();
    }
    let b = mailkeep(&d, &u, &["backup", &url, &archive]);
    b.assert_code(6);
    assert!(
        b.stderr.contains(
            r#"ledger schema version "7x" is not one mailkeep ever wrote: the ledger is damaged"#
        ),
        "{b:#?}"
    );
    assert!(
        !b.stderr.contains("ParseIntError") && !b.stderr.contains("Err("),
        "{b:#?}"
    );
}

/// What happened to the archive or its ledger between the first backup and the destructive
/// step (the "destructive paths" matrix of issue 14).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    /// `mailkeep/ledger.sqlite` removed.
    LedgerLost,
    /// The ledger put back from a copy taken when only messages 0 and 1 were archived.
    LedgerOlder,
    /// As `LedgerOlder`, and message 2's file (not in that ledger) damaged, same size.
    LedgerOlderDamaged,
    /// The ledger removed and message 1's file damaged, same size.
    LostDamaged,
    /// Message 1's file damaged, same size, the ledger intact.
    Damaged,
    /// Message 1's file cut short, the ledger intact.
    Truncated,
    /// Message 1's file removed, the ledger intact.
    Removed,
}

/// The destructive step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// `backup` (IMAP), then `prune --yes`.
    PruneImap,
    /// `backup` (POP3), then `prune --yes`.
    PrunePop3,
    /// `backup --delete-after-backup` (POP3).
    DeleteAfterBackup,
    /// `backup --keep-days 0` (POP3).
    KeepDays,
}

fn archive_file_of(dir: &Path, raw: &[u8]) -> PathBuf {
    let (name, _) = maildir_messages(dir)
        .into_iter()
        .find(|(_, b)| b == &normalize(raw))
        .expect("archived copy");
    dir.join(name)
}

/// For every step and fault: the server loses exactly the expected number of messages, and
/// every message it lost is in the archive byte for byte (0 deleted that are not verified
/// present).
#[test]
fn destructive_paths_never_delete_what_the_archive_does_not_hold() {
    use Fault::*;
    use Step::*;
    let d = Dovecot::start();
    let faults = [
        LedgerLost,
        LedgerOlder,
        LedgerOlderDamaged,
        LostDamaged,
        Damaged,
        Truncated,
        Removed,
    ];
    // Messages deleted from the server, per step, in the order of `faults`.
    let table: [(Step, [usize; 7]); 4] = [
        // Removed: the backup before the prune fetches a missing file again (IMAP and POP3).
        (PruneImap, [4, 4, 3, 3, 3, 3, 4]),
        (PrunePop3, [4, 4, 3, 3, 3, 3, 4]),
        (DeleteAfterBackup, [4, 4, 4, 4, 3, 3, 4]),
        (KeepDays, [4, 4, 4, 4, 3, 3, 4]),
    ];
    let t0 = now();
    let mut cases = 0;
    for (step, want) in table {
        for (fault, want_deleted) in faults.into_iter().zip(want) {
            let name = format!("m{}{}", step as u8, fault as u8);
            let u = d.add_user(&name, "matrix-pw");
            let msgs: Vec<Vec<u8>> = (0..4).map(|i| msg(&format!("{name}-{i}"))).collect();
            let imap = step == PruneImap;
            let url = d.url(if imap { "imaps" } else { "pop3s" }, &u);
            let tmp = tempfile::tempdir().unwrap();
            let dir = tmp.path().join("archive");
            let archive = format!("maildir:{}", dir.display());
            let ledger = dir.join("mailkeep/ledger.sqlite");
            let seed = |m: &[u8]| u.seed_message("INBOX", m, "", Some(t0 - 800 * DAY));
            let older = matches!(fault, LedgerOlder | LedgerOlderDamaged);
            if older {
                for m in &msgs[..2] {
                    seed(m);
                }
                mailkeep(&d, &u, &["backup", &url, &archive]).assert_code(0);
                fs::copy(&ledger, tmp.path().join("old-ledger")).unwrap();
                for m in &msgs[2..] {
                    seed(m);
                }
            } else {
                for m in &msgs {
                    seed(m);
                }
            }
            mailkeep(&d, &u, &["backup", &url, &archive]).assert_code(0);
            match fault {
                LedgerLost => lose_ledger(&dir),
                LedgerOlder | LedgerOlderDamaged => {
                    lose_ledger(&dir);
                    fs::copy(tmp.path().join("old-ledger"), &ledger).unwrap();
                    if fault == LedgerOlderDamaged {
                        damage(&dir, &msgs[2]);
                    }
                }
                LostDamaged => {
                    lose_ledger(&dir);
                    damage(&dir, &msgs[1]);
                }
                Damaged => {
                    damage(&dir, &msgs[1]);
                }
                Truncated => {
                    let f = archive_file_of(&dir, &msgs[1]);
                    let len = fs::metadata(&f).unwrap().len();
                    fs::OpenOptions::new()
                        .write(true)
                        .open(&f)
                        .unwrap()
                        .set_len(len - 10)
                        .unwrap();
                }
                Removed => fs::remove_file(archive_file_of(&dir, &msgs[1])).unwrap(),
            }
            assert_eq!(u.message_count("INBOX"), 4, "{step:?} {fault:?}");
            let ctx = format!("{step:?} {fault:?}");
            match step {
                PruneImap | PrunePop3 => {
                    mailkeep(&d, &u, &["backup", &url, &archive]);
                    let p = mailkeep(
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
                    assert_eq!(p.n("deleted") as usize, want_deleted, "{ctx}: {p:#?}");
                    assert_eq!(
                        p.code,
                        if want_deleted == 4 { 0 } else { 1 },
                        "{ctx}: {p:#?}"
                    );
                }
                DeleteAfterBackup | KeepDays => {
                    let opt: &[&str] = if step == KeepDays {
                        &["--keep-days", "0"]
                    } else {
                        &["--delete-after-backup"]
                    };
                    let mut args = vec!["backup", url.as_str(), archive.as_str()];
                    args.extend_from_slice(opt);
                    let b = mailkeep(&d, &u, &args);
                    assert_eq!(b.n("deleted") as usize, want_deleted, "{ctx}: {b:#?}");
                }
            }
            let on_server = u.messages("INBOX");
            assert_eq!(on_server.len(), 4 - want_deleted, "{ctx}");
            let archived: Vec<Vec<u8>> =
                maildir_messages(&dir).into_iter().map(|(_, b)| b).collect();
            for m in msgs.iter().filter(|m| !on_server.contains(m)) {
                assert!(
                    archived.contains(&normalize(m)),
                    "{ctx}: a message deleted from the server is not in the archive byte for byte"
                );
            }
            cases += 1;
        }
    }
    println!("destructive paths: {cases} cases, 0 deleted without a verified archived copy");
    assert_eq!(cases, 28);
}

/// Adoption, comparison, promotion, replacement and deletion, killed at every ledger event:
/// a lost ledger and a damaged file, then `backup --delete-after-backup` (POP3), killed after
/// N events and run again, always ends with the server empty and the archive holding every
/// message byte for byte, all verified.
#[test]
fn adoption_and_promotion_killed_at_every_event_converge() {
    let d = Dovecot::start();
    let prepare = |name: &str, tmp: &Path| -> (User, Vec<Vec<u8>>, PathBuf, String, String) {
        let u = d.add_user(name, "kill-pw");
        let msgs: Vec<Vec<u8>> = (0..4).map(|i| msg(&format!("killtrust-{i}"))).collect();
        for m in &msgs {
            u.seed_message("INBOX", m, "", None);
        }
        let dir = tmp.join(name);
        let archive = format!("maildir:{}", dir.display());
        let url = d.url("pop3s", &u);
        mailkeep(&d, &u, &["backup", &url, &archive]).assert_code(0);
        lose_ledger(&dir);
        damage(&dir, &msgs[1]);
        (u, msgs, dir, archive, url)
    };
    let run = |u: &User, url: &str, archive: &str, env: &[(&str, String)]| {
        let mut c = support::mailkeep();
        c.args(["backup", url, archive, "--delete-after-backup", "--tls-ca"])
            .arg(&d.ca_pem)
            .args(["--password-env", PW, "--json"])
            .env(PW, &u.password);
        for (k, v) in env {
            c.env(k, v);
        }
        Run::from_output(c.output().unwrap())
    };
    let tmp = tempfile::tempdir().unwrap();
    let count_file = tmp.path().join("events");
    let (u, msgs, dir, archive, url) = prepare("killtrustclean", tmp.path());
    let clean = run(
        &u,
        &url,
        &archive,
        &[(
            "MAILKEEP_TEST_EVENT_COUNT_FILE",
            count_file.display().to_string(),
        )],
    );
    clean.assert_code(0);
    let events = fs::read_to_string(&count_file).unwrap().lines().count();
    assert!(
        events >= 4,
        "adoption, promotion, replacement, deletion: {events}"
    );
    let mut want: Vec<Vec<u8>> = msgs.iter().map(|m| normalize(m)).collect();
    want.sort();
    assert_eq!(sorted_archive(&dir), want);
    assert_eq!(u.message_count("INBOX"), 0);

    let mut covered = 0;
    for n in 0..events {
        let (u, _, dir, archive, url) = prepare(&format!("killtrust{n}"), tmp.path());
        let killed = run(
            &u,
            &url,
            &archive,
            &[("MAILKEEP_TEST_KILL_AFTER_EVENTS", n.to_string())],
        );
        assert_eq!(killed.code, 137, "N={n}: {killed:#?}");
        // Nothing is ever deleted that the archive does not hold byte for byte.
        let on_server = u.messages("INBOX");
        let archived: Vec<Vec<u8>> = maildir_messages(&dir).into_iter().map(|(_, b)| b).collect();
        for m in msgs.iter().filter(|m| !on_server.contains(m)) {
            assert!(archived.contains(&normalize(m)), "N={n}: lost a message");
        }
        support::run::wait_for_sessions_to_end(&d, &u.name, 0);
        let again = run(&u, &url, &archive, &[]);
        again.assert_code(0);
        assert_eq!(u.message_count("INBOX"), 0, "N={n}: {again:#?}");
        assert_eq!(sorted_archive(&dir), want, "N={n}");
        assert_eq!(unverified_records(&dir), 0, "N={n}");
        covered += 1;
    }
    println!("kill points covered: adoption and promotion (POP3 --delete-after-backup) {covered}");
    assert_eq!(covered, events);
}

/// `prune --yes` over adopted (unverified) records, killed at every ledger event (promotion,
/// the deletion records), then run again: the server keeps exactly the message whose
/// archived copy is damaged.
#[test]
fn prune_promotion_killed_at_every_event_converges() {
    let d = Dovecot::start();
    let t0 = now();
    let prepare = |name: &str, tmp: &Path| -> (User, Vec<Vec<u8>>, String, String) {
        let u = d.add_user(name, "kill-pw");
        let msgs: Vec<Vec<u8>> = (0..4).map(|i| msg(&format!("killprune-{i}"))).collect();
        for m in &msgs {
            u.seed_message("INBOX", m, "S", Some(t0 - 800 * DAY));
        }
        let dir = tmp.join(name);
        let archive = format!("maildir:{}", dir.display());
        let url = d.url("imaps", &u);
        mailkeep(&d, &u, &["backup", &url, &archive]).assert_code(0);
        lose_ledger(&dir);
        damage(&dir, &msgs[1]);
        mailkeep(&d, &u, &["backup", &url, &archive]).assert_code(0);
        (u, msgs, archive, url)
    };
    let prune = |u: &User, url: &str, archive: &str, env: &[(&str, String)]| {
        let mut c = support::mailkeep();
        c.args([
            "prune",
            url,
            "--archive",
            archive,
            "--older-than",
            "365d",
            "--yes",
        ])
        .arg("--tls-ca")
        .arg(&d.ca_pem)
        .args(["--password-env", PW, "--json"])
        .env(PW, &u.password);
        for (k, v) in env {
            c.env(k, v);
        }
        Run::from_output(c.output().unwrap())
    };
    let tmp = tempfile::tempdir().unwrap();
    let count_file = tmp.path().join("events");
    let (u, msgs, archive, url) = prepare("killpruneclean", tmp.path());
    let clean = prune(
        &u,
        &url,
        &archive,
        &[(
            "MAILKEEP_TEST_EVENT_COUNT_FILE",
            count_file.display().to_string(),
        )],
    );
    clean.assert_code(1);
    assert_eq!(u.messages("INBOX"), vec![msgs[1].clone()]);
    let events = fs::read_to_string(&count_file).unwrap().lines().count();
    assert!(events >= 2, "promotion, deletion record: {events}");
    let mut covered = 0;
    for n in 0..events {
        let (u, msgs, archive, url) = prepare(&format!("killprune{n}"), tmp.path());
        let killed = prune(
            &u,
            &url,
            &archive,
            &[("MAILKEEP_TEST_KILL_AFTER_EVENTS", n.to_string())],
        );
        assert_eq!(killed.code, 137, "N={n}: {killed:#?}");
        assert!(u.messages("INBOX").contains(&msgs[1]), "N={n}");
        let again = prune(&u, &url, &archive, &[]);
        again.assert_code(1);
        assert_eq!(
            u.messages("INBOX"),
            vec![msgs[1].clone()],
            "N={n}: {again:#?}"
        );
        covered += 1;
    }
    println!("kill points covered: prune promotion (IMAP) {covered}");
    assert_eq!(covered, events);
}

/// A mailbox recreated on the server (a new UIDVALIDITY: here Dovecot's UID list and indexes
/// removed, so it numbers the same messages anew) is another mailbox to prune: nothing is
/// deleted on the strength of records made under the old UIDVALIDITY; the next backup matches
/// the messages by content, and then prune deletes them.
#[test]
fn a_recreated_mailbox_is_pruned_only_after_a_backup_matched_it() {
    let d = Dovecot::start();
    let u = d.add_user("trustrecreated", "trust-pw");
    let t0 = now();
    let msgs: Vec<Vec<u8>> = (0..3).map(|i| msg(&format!("recreated-{i}"))).collect();
    for m in &msgs {
        u.seed_message("INBOX", m, "S", Some(t0 - 800 * DAY));
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("archive");
    let archive = format!("maildir:{}", dir.display());
    let url = d.url("imaps", &u);
    mailkeep(&d, &u, &["backup", &url, &archive]).assert_code(0);
    let uidvalidity = |u: &User| -> String {
        let list = fs::read_to_string(u.maildir.join("dovecot-uidlist")).unwrap();
        list.split_whitespace().nth(1).unwrap().to_string()
    };
    let before = uidvalidity(&u);
    // Recreated: Dovecot forgets the mailbox's UIDs and gives it a new UIDVALIDITY.
    for entry in fs::read_dir(&u.maildir).unwrap() {
        let p = entry.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().to_string();
        if name.starts_with("dovecot-uidlist") || name.starts_with("dovecot.index") {
            fs::remove_file(&p).unwrap();
        }
    }
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let prune = || {
        mailkeep(
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
        )
    };
    let p = prune();
    p.assert_code(0);
    assert_eq!(p.n("deleted"), 0, "{p:#?}");
    assert_eq!(p.n("not_archived"), 3, "{p:#?}");
    assert_eq!(u.message_count("INBOX"), 3);
    assert_ne!(uidvalidity(&u), before, "the mailbox got a new UIDVALIDITY");

    let b = mailkeep(&d, &u, &["backup", &url, &archive]);
    b.assert_code(0);
    // Downloaded and matched by content with the records of the old UIDVALIDITY: counted as
    // already archived, stored once.
    assert_eq!(b.n("fetched"), 0, "{b:#?}");
    assert_eq!(b.n("already_archived"), 3, "{b:#?}");
    assert_eq!(sorted_archive(&dir).len(), 3, "no duplicate in the archive");
    let p = prune();
    p.assert_code(0);
    assert_eq!(p.n("deleted"), 3, "{p:#?}");
    assert_eq!(u.message_count("INBOX"), 0);
}

/// Following prune's advice works: a message kept because its (adopted) archived copy is not
/// the server's is archived again once that file is moved out of the archive, even though
/// nothing changed on the server, and the next prune deletes it.
#[test]
fn moving_a_damaged_copy_aside_then_backing_up_fetches_it_again() {
    let d = Dovecot::start();
    let u = d.add_user("trustadvice", "trust-pw");
    let t0 = now();
    let msgs: Vec<Vec<u8>> = (0..2).map(|i| msg(&format!("advice-{i}"))).collect();
    for m in &msgs {
        u.seed_message("INBOX", m, "S", Some(t0 - 800 * DAY));
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("archive");
    let archive = format!("maildir:{}", dir.display());
    let url = d.url("imaps", &u);
    mailkeep(&d, &u, &["backup", &url, &archive]).assert_code(0);
    lose_ledger(&dir);
    let damaged = damage(&dir, &msgs[0]);
    mailkeep(&d, &u, &["backup", &url, &archive]).assert_code(0);
    let prune = || {
        mailkeep(
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
        )
    };
    let p = prune();
    p.assert_code(1);
    assert_eq!(p.n("deleted"), 1, "{p:#?}");
    assert_eq!(u.messages("INBOX"), vec![msgs[0].clone()]);
    // The advice: move that file out of the archive and back up again.
    fs::rename(&damaged, tmp.path().join("aside")).unwrap();
    let b = mailkeep(&d, &u, &["backup", &url, &archive]);
    b.assert_code(0);
    assert_eq!(b.n("fetched"), 1, "{b:#?}");
    let p = prune();
    p.assert_code(0);
    assert_eq!(p.n("deleted"), 1, "{p:#?}");
    assert_eq!(u.message_count("INBOX"), 0);
    let mut want: Vec<Vec<u8>> = msgs.iter().map(|m| normalize(m)).collect();
    want.sort();
    assert_eq!(sorted_archive(&dir), want);
}

/// Pruning against an archive of another account is refused (a cron job would otherwise
/// find nothing to delete, every night, without a word).
#[test]
fn prune_against_an_archive_of_another_account_is_a_usage_error() {
    let d = Dovecot::start();
    let a = d.add_user("trustowner", "trust-pw");
    let b = d.add_user("trustother", "trust-pw");
    a.seed_message("INBOX", &msg("owner"), "", None);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("archive");
    let archive = format!("maildir:{}", dir.display());
    mailkeep(&d, &a, &["backup", &d.url("imaps", &a), &archive]).assert_code(0);
    let p = mailkeep(
        &d,
        &b,
        &[
            "prune",
            &d.url("imaps", &b),
            "--archive",
            &archive,
            "--older-than",
            "30d",
        ],
    );
    p.assert_code(2);
    assert_eq!(
        p.report["error"],
        format!(
            "{archive} holds no message of imap:trustother@127.0.0.1 (it holds imap:trustowner@127.0.0.1): back this account up into it first, or name the account as it was backed up (the same user and host name)"
        ),
        "{p:#?}"
    );
}
