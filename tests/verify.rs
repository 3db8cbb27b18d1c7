//! `mailkeep verify` (issue 5): archives made by real backups of a seeded Dovecot, then damaged
//! on purpose (a flipped byte, a deleted Maildir file, an mbox cut in the middle of a message,
//! a tmp/ leftover): verify names exactly what is wrong (path and ledger identity), exits with
//! the documented code (8 incomplete, 9 damaged), and leaves every byte of the archive (ledger
//! included) as it was. `--against` compares with the server over IMAP and POP3.

mod support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use mailkeep::archive::ledger::{Ledger, Record};
use support::dovecot::{Dovecot, User};
use support::run::{snapshot, Run};

const PW_VAR: &str = "MAILKEEP_TEST_PASSWORD";

fn backup(d: &Dovecot, u: &User, scheme: &str, archive: &str) -> Run {
    let run = Run::from_output(
        support::mailkeep()
            .arg("backup")
            .arg(d.url(scheme, u))
            .arg(archive)
            .arg("--tls-ca")
            .arg(&d.ca_pem)
            .args(["--password-env", PW_VAR, "--json"])
            .env(PW_VAR, &u.password)
            .output()
            .unwrap(),
    );
    run.assert_code(0);
    run
}

/// `mailkeep verify <args> --json`.
fn verify(args: &[&str]) -> Run {
    Run::from_output(
        support::mailkeep()
            .arg("verify")
            .args(args)
            .arg("--json")
            .output()
            .unwrap(),
    )
}

/// `mailkeep verify ARCHIVE --against URL --json` with the test's TLS CA and password.
fn verify_against(d: &Dovecot, u: &User, scheme: &str, archive: &str) -> Run {
    Run::from_output(
        support::mailkeep()
            .arg("verify")
            .arg(archive)
            .arg("--against")
            .arg(d.url(scheme, u))
            .arg("--tls-ca")
            .arg(&d.ca_pem)
            .args(["--password-env", PW_VAR, "--json"])
            .env(PW_VAR, &u.password)
            .output()
            .unwrap(),
    )
}

/// The ledger's records, read from a copy (so the archive itself is not touched).
fn records(root: &Path) -> Vec<Record> {
    let tmp = tempfile::tempdir().unwrap();
    let state = root.join("mailkeep");
    for name in ["ledger.sqlite", "ledger.sqlite-wal"] {
        if state.join(name).exists() {
            std::fs::copy(state.join(name), tmp.path().join(name)).unwrap();
        }
    }
    Ledger::open_read_only(&tmp.path().join("ledger.sqlite"))
        .unwrap()
        .records()
        .unwrap()
}

/// The file holding a Maildir record (`<folder>/cur/<base>` plus any `:2,` info).
fn maildir_file(root: &Path, r: &Record) -> PathBuf {
    let loc = root.join(&r.location);
    let (dir, base) = (
        loc.parent().unwrap(),
        loc.file_name().unwrap().to_str().unwrap(),
    );
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with(&format!("{base}:2,"))
        })
        .unwrap_or_else(|| panic!("no file for {}", r.location))
}

/// (kind, path, identity) of every finding in a `--json` report's `key` list.
fn findings(run: &Run, key: &str) -> BTreeSet<(String, Option<String>, Option<String>)> {
    run.report[key]
        .as_array()
        .unwrap_or_else(|| panic!("no `{key}`: {run:#?}"))
        .iter()
        .map(|p| {
            (
                p["kind"].as_str().unwrap().to_string(),
                p["path"].as_str().map(str::to_string),
                p["identity"].as_str().map(str::to_string),
            )
        })
        .collect()
}

fn finding(
    kind: &str,
    path: impl AsRef<Path>,
    identity: Option<&str>,
) -> (String, Option<String>, Option<String>) {
    (
        kind.to_string(),
        Some(path.as_ref().display().to_string()),
        identity.map(str::to_string),
    )
}

fn message(i: usize, body_lines: usize) -> Vec<u8> {
    let mut m = format!(
        "From: sender{i}@example.org\nTo: you@example.org\nSubject: message {i}\nMessage-ID: <{i}@example.org>\n\n"
    );
    for l in 0..body_lines {
        m.push_str(&format!(
            "line {l} of message {i}: some words to make it longer\n"
        ));
    }
    m.into_bytes()
}

/// The `source_id` of `entry` in the manifest of the zip `bytes`.
fn zip_identity(bytes: &[u8], entry: &str) -> String {
    let mut a = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
    let mut text = String::new();
    std::io::Read::read_to_string(&mut a.by_name("manifest.jsonl").unwrap(), &mut text).unwrap();
    text.lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|r| r["entry"] == entry)
        .unwrap_or_else(|| panic!("no row for {entry}"))["source_id"]
        .as_str()
        .unwrap()
        .to_string()
}

#[track_caller]
fn assert_exit(run: &Run, code: i32, name: &str) {
    run.assert_code(code);
    assert_eq!(run.report["exit"], name, "{run:#?}");
    assert_eq!(run.report["exit_code"], code, "{run:#?}");
}

#[test]
fn verify_names_maildir_damage_exactly_and_changes_nothing() {
    let d = Dovecot::start();
    let u = d.add_user("verimd", "v-pw");
    for i in 0..4 {
        u.seed_message("INBOX", &message(i, 5), "S", Some(1_700_000_000 + i as i64));
    }
    for i in 4..6 {
        u.seed_message("Sent", &message(i, 5), "", Some(1_700_000_000 + i as i64));
    }
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("a");
    let arg = format!("maildir:{}", root.display());
    backup(&d, &u, "imaps", &arg);

    // A clean archive: exit 0, every record intact, nothing changed (no -shm, no -wal, no lock).
    let before = snapshot(&root);
    let run = verify(&[&arg]);
    assert_exit(&run, 0, "ok");
    assert_eq!((run.n("records"), run.n("intact")), (6, 6));
    assert!(findings(&run, "problems").is_empty() && findings(&run, "notes").is_empty());
    assert!(run.report["against"].is_null() && run.report["error"].is_null());
    assert_eq!(snapshot(&root), before);
    let text = support::mailkeep()
        .arg("verify")
        .arg(&root)
        .output()
        .unwrap();
    let text = String::from_utf8(text.stdout).unwrap();
    assert_eq!(
        text.trim(),
        format!("verify {arg}: 6 messages recorded, 6 intact -> ok (exit 0)")
    );
    let quiet = support::mailkeep()
        .args(["verify", "-q", &arg])
        .output()
        .unwrap();
    assert!(quiet.status.success() && quiet.stdout.is_empty());

    // Damage: a flipped byte (INBOX), a deleted file (Sent), a tmp/ leftover, a stranger.
    let recs = records(&root);
    let flipped_rec = recs.iter().find(|r| r.mailbox == "INBOX").unwrap();
    let deleted_rec = recs.iter().find(|r| r.mailbox == "Sent").unwrap();
    let flipped = maildir_file(&root, flipped_rec);
    let mut bytes = std::fs::read(&flipped).unwrap();
    let at = bytes.len() - 10;
    bytes[at] ^= 0x20;
    std::fs::write(&flipped, &bytes).unwrap();
    let deleted = maildir_file(&root, deleted_rec);
    std::fs::remove_file(&deleted).unwrap();
    let leftover = root.join("tmp").join("1700000000.P42Q1.mailkeep");
    std::fs::write(&leftover, b"From: half a mess").unwrap();
    let stranger = root.join(".Sent/cur/1700000099.stranger:2,S");
    std::fs::write(&stranger, message(99, 1)).unwrap();
    let damaged = snapshot(&root);

    let run = verify(&[&arg]);
    assert_exit(&run, 9, "damaged");
    assert_eq!((run.n("records"), run.n("intact")), (6, 4));
    assert_eq!(
        findings(&run, "problems"),
        BTreeSet::from([
            finding("sha256-mismatch", &flipped, Some(&flipped_rec.identity)),
            finding(
                "missing",
                root.join(&deleted_rec.location),
                Some(&deleted_rec.identity)
            ),
            finding("tmp-leftover", &leftover, None),
        ])
    );
    assert_eq!(
        findings(&run, "notes"),
        BTreeSet::from([finding("untracked", &stranger, None)])
    );
    let problems = run.report["problems"].as_array().unwrap();
    let mismatch = problems
        .iter()
        .find(|p| p["kind"] == "sha256-mismatch")
        .unwrap();
    assert_eq!(mismatch["class"], "damaged");
    assert_eq!(mismatch["mailbox"], "INBOX");
    assert!(mismatch["detail"]
        .as_str()
        .unwrap()
        .contains(&format!("the ledger recorded {}", flipped_rec.sha256)));
    // The text report names the same things, one line each, and ends with the verdict.
    let out = support::mailkeep()
        .arg("verify")
        .arg(&arg)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(9));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains(&format!(
        "damaged: {} ({}): the bytes changed",
        flipped.display(),
        flipped_rec.identity
    )));
    assert!(text.contains(&format!(
        "incomplete: {} ({}): the message file is gone",
        root.join(&deleted_rec.location).display(),
        deleted_rec.identity
    )));
    assert!(text.contains(&format!("incomplete: {}: ", leftover.display())));
    assert!(text.trim_end().ends_with(
        "6 messages recorded, 4 intact, 1 missing, 1 with another SHA-256, 1 left in tmp/, 1 not in the ledger -> damaged (exit 9)"
    ), "{text}");
    assert_eq!(snapshot(&root), damaged, "verify changed the archive");

    // Only missing things left: incomplete.
    bytes[at] ^= 0x20;
    std::fs::write(&flipped, &bytes).unwrap();
    let run = verify(&[&root.display().to_string()]);
    assert_exit(&run, 8, "incomplete");
    assert_eq!(
        findings(&run, "problems"),
        BTreeSet::from([
            finding(
                "missing",
                root.join(&deleted_rec.location),
                Some(&deleted_rec.identity)
            ),
            finding("tmp-leftover", &leftover, None),
        ])
    );
}

#[test]
fn verify_names_an_mbox_cut_in_the_middle_of_a_message() {
    let d = Dovecot::start();
    let u = d.add_user("verimbox", "v-pw");
    for i in 0..3 {
        u.seed_message("INBOX", &message(i, 40), "", Some(1_700_000_000 + i as i64));
    }
    u.seed_message("Sent", &message(3, 40), "", Some(1_700_000_100));
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("m");
    let arg = format!("mbox:{}", root.display());
    backup(&d, &u, "imaps", &arg);
    let before = snapshot(&root);
    let run = verify(&[&arg]);
    assert_exit(&run, 0, "ok");
    assert_eq!((run.n("records"), run.n("intact")), (4, 4));
    assert_eq!(snapshot(&root), before);

    // Cut INBOX.mbox in the middle of its second message; flip a byte in Sent.mbox.
    let recs = records(&root);
    let mut inbox: Vec<&Record> = recs.iter().filter(|r| r.mailbox == "INBOX").collect();
    let span = |r: &Record| -> (u64, u64) {
        let mut it = r.location.rsplitn(3, ':');
        let len = it.next().unwrap().parse().unwrap();
        let off = it.next().unwrap().parse().unwrap();
        (off, len)
    };
    inbox.sort_by_key(|r| span(r).0);
    let (off2, len2) = span(inbox[1]);
    let (off3, _) = span(inbox[2]);
    let file = root.join("INBOX.mbox");
    let f = std::fs::OpenOptions::new().write(true).open(&file).unwrap();
    f.set_len(off2 + len2 / 2).unwrap();
    drop(f);
    let sent = recs.iter().find(|r| r.mailbox == "Sent").unwrap();
    let sent_file = root.join("Sent.mbox");
    let mut bytes = std::fs::read(&sent_file).unwrap();
    let at = bytes.len() - 20;
    bytes[at] ^= 0x01;
    std::fs::write(&sent_file, &bytes).unwrap();
    let damaged = snapshot(&root);

    let run = verify(&[&arg]);
    assert_exit(&run, 9, "damaged");
    assert_eq!((run.n("records"), run.n("intact")), (4, 1));
    let shown = file.display().to_string();
    assert_eq!(
        findings(&run, "problems"),
        BTreeSet::from([
            finding("truncated", &file, None),
            finding(
                "truncated",
                format!("{shown}:{off2}"),
                Some(&inbox[1].identity)
            ),
            finding(
                "missing",
                format!("{shown}:{off3}"),
                Some(&inbox[2].identity)
            ),
            finding(
                "sha256-mismatch",
                format!("{}:0", sent_file.display()),
                Some(&sent.identity)
            ),
        ])
    );
    assert!(findings(&run, "notes").is_empty());
    assert_eq!(snapshot(&root), damaged, "verify changed the archive");
}

#[test]
fn verify_against_the_server_over_imap_and_pop3() {
    let d = Dovecot::start();
    let u = d.add_user("veriagainst", "v-pw");
    for i in 0..3 {
        u.seed_message("INBOX", &message(i, 3), "", Some(1_700_000_000 + i as i64));
    }
    let tmp = tempfile::tempdir().unwrap();
    let imap_root = tmp.path().join("imap");
    let pop_root = tmp.path().join("pop");
    let imap_arg = format!("maildir:{}", imap_root.display());
    let pop_arg = format!("maildir:{}", pop_root.display());
    backup(&d, &u, "imaps", &imap_arg);
    backup(&d, &u, "pop3s", &pop_arg);

    // In step: exit 0, per mailbox all on both sides.
    let run = verify_against(&d, &u, "imaps", &imap_arg);
    assert_exit(&run, 0, "ok");
    let a = &run.report["against"];
    assert_eq!(a["account"], format!("imap:{}@127.0.0.1", u.name));
    assert_eq!(
        a["mailboxes"],
        serde_json::json!([{"mailbox": "INBOX", "on_server": 3, "in_archive": 3,
                            "missing_from_archive": 0, "only_in_archive": 0}])
    );

    // One archived file deleted by hand, one new message on the server.
    let recs = records(&imap_root);
    let gone = recs
        .iter()
        .find(|r| r.identity.ends_with(" UID 2"))
        .unwrap();
    std::fs::remove_file(maildir_file(&imap_root, gone)).unwrap();
    u.seed_message("INBOX", &message(3, 3), "", Some(1_700_000_003));
    let before = snapshot(&imap_root);

    let run = verify_against(&d, &u, "imaps", &imap_arg);
    assert_exit(&run, 8, "incomplete");
    let new_identity = gone.identity.replace(" UID 2", " UID 4");
    assert_eq!(
        findings(&run, "problems"),
        BTreeSet::from([
            finding(
                "missing",
                imap_root.join(&gone.location),
                Some(&gone.identity)
            ),
            (
                "missing-from-archive".to_string(),
                None,
                Some(new_identity.clone())
            ),
        ])
    );
    let a = &run.report["against"];
    assert_eq!(
        a["mailboxes"],
        serde_json::json!([{"mailbox": "INBOX", "on_server": 4, "in_archive": 3,
                            "missing_from_archive": 2, "only_in_archive": 0}])
    );
    let uidvalidity = gone.uidvalidity.unwrap();
    assert_eq!(
        a["missing_from_archive"],
        serde_json::json!([
            {"mailbox": "INBOX", "identity": gone.identity,
             "message": format!("UIDVALIDITY {uidvalidity} UID 2"), "recorded": true},
            {"mailbox": "INBOX", "identity": new_identity,
             "message": format!("UIDVALIDITY {uidvalidity} UID 4"), "recorded": false},
        ])
    );
    assert_eq!(snapshot(&imap_root), before, "verify changed the archive");

    // The table form.
    let out = support::mailkeep()
        .arg("verify")
        .arg(&imap_arg)
        .arg("--against")
        .arg(d.url("imaps", &u))
        .arg("--tls-ca")
        .arg(&d.ca_pem)
        .args(["--password-env", PW_VAR])
        .env(PW_VAR, &u.password)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(8));
    let text = String::from_utf8(out.stdout).unwrap();
    let row: Vec<&str> = text
        .lines()
        .find(|l| l.starts_with("INBOX "))
        .unwrap_or_else(|| panic!("{text}"))
        .split_whitespace()
        .collect();
    assert_eq!(row, ["INBOX", "4", "3", "2", "0"]);
    assert!(text.contains("MISSING FROM ARCHIVE"), "{text}");
    assert!(
        text.contains(&format!(
            "missing from archive: INBOX UIDVALIDITY {uidvalidity} UID 4\n"
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "; {}: 2 missing from the archive, 0 only in the archive -> incomplete (exit 8)",
            d.url("imaps", &u).trim_start_matches("imaps://")
        )),
        "{text}"
    );

    // POP3: the new message (UIDL) is missing from the POP3 archive.
    let run = verify_against(&d, &u, "pop3s", &pop_arg);
    assert_exit(&run, 8, "incomplete");
    let a = &run.report["against"];
    assert_eq!(a["account"], format!("pop3:{}@127.0.0.1", u.name));
    assert_eq!(
        a["mailboxes"],
        serde_json::json!([{"mailbox": "INBOX", "on_server": 4, "in_archive": 3,
                            "missing_from_archive": 1, "only_in_archive": 0}])
    );
    let missing = &a["missing_from_archive"][0];
    assert_eq!(missing["recorded"], false);
    assert!(missing["message"].as_str().unwrap().starts_with("UIDL "));
    let problems = findings(&run, "problems");
    assert_eq!(problems.len(), 1);
    assert_eq!(problems.iter().next().unwrap().0, "missing-from-archive");

    // An archive compared with an account it never backed up: all missing, and a warning.
    let run = verify_against(&d, &u, "imaps", &pop_arg);
    assert_exit(&run, 8, "incomplete");
    assert!(
        run.stderr.contains("holds no message of imap:"),
        "{}",
        run.stderr
    );
}

#[test]
fn verify_refuses_what_it_cannot_check() {
    let tmp = tempfile::tempdir().unwrap();
    let plain = tmp.path().join("plain");
    std::fs::create_dir(&plain).unwrap();
    let run = verify(&[&format!("maildir:{}", plain.display())]);
    assert_exit(&run, 2, "usage");
    assert!(
        run.stderr.contains("is not a mailkeep archive"),
        "{}",
        run.stderr
    );
    assert!(!plain.join("mailkeep").exists());

    let run = verify(&[&format!("eml:{}", plain.display())]);
    assert_exit(&run, 2, "usage");
    assert!(run.stderr.contains("no ledger"), "{}", run.stderr);

    // The command line itself is wrong: the short JSON object.
    let run = verify(&[plain.to_str().unwrap()]);
    run.assert_code(2);
    assert_eq!(run.report["command"], "verify");
    assert_eq!(run.report["exit"], "usage");

    // A backup holds the archive's lock: exit 5, nothing else touched.
    let root = tmp.path().join("locked");
    std::fs::create_dir_all(root.join("mailkeep")).unwrap();
    std::fs::write(root.join("mailkeep/kind"), "maildir\n").unwrap();
    let lock =
        mailkeep::archive::lock::ArchiveLock::acquire(&root.join("mailkeep/lock"), &root).unwrap();
    let run = verify(&[&format!("maildir:{}", root.display())]);
    assert_exit(&run, 5, "locked");
    assert!(
        run.stderr.contains(&format!("pid {}", std::process::id())),
        "{}",
        run.stderr
    );
    drop(lock);
    // Released: an archive whose first run died before its ledger existed is fine and empty.
    let run = verify(&[&format!("maildir:{}", root.display())]);
    assert_exit(&run, 0, "ok");
    assert_eq!(run.n("records"), 0);
}

#[test]
fn verify_checks_a_zip_archive() {
    // A zip made by `convert` from the three case-09 messages.
    let tmp = tempfile::tempdir().unwrap();
    let eml = tmp.path().join("eml/Japan");
    std::fs::create_dir_all(&eml).unwrap();
    let cases = support::corpus_dir().join("../cases/09-japanese-iso2022jp-sjis-encoded-words");
    for n in ["iso2022jp.eml", "split-utf8.eml", "sjis.eml"] {
        std::fs::copy(cases.join(n), eml.join(n)).unwrap();
    }
    let z = tmp.path().join("z.zip");
    let out = support::mailkeep()
        .arg("convert")
        .arg(format!("eml:{}", tmp.path().join("eml").display()))
        .arg(format!("zip:{}", z.display()))
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let run = verify(&[z.to_str().unwrap()]);
    assert_exit(&run, 0, "ok");
    assert_eq!((run.n("records"), run.n("intact")), (3, 3));
    assert_eq!(run.report["archive"], format!("zip:{}", z.display()));

    // Flip a byte inside the stored data of the first message entry.
    let mut bytes = std::fs::read(&z).unwrap();
    let mut at = 0;
    let (entry, data_at) = loop {
        assert_eq!(&bytes[at..at + 4], b"PK\x03\x04", "local header at {at}");
        let u16_at = |o: usize| u16::from_le_bytes([bytes[at + o], bytes[at + o + 1]]) as usize;
        let size = u32::from_le_bytes(bytes[at + 18..at + 22].try_into().unwrap()) as usize;
        let (name_len, extra_len) = (u16_at(26), u16_at(28));
        let name = String::from_utf8(bytes[at + 30..at + 30 + name_len].to_vec()).unwrap();
        let data = at + 30 + name_len + extra_len;
        if name.ends_with(".eml") && size > 20 {
            break (name, data + size / 2);
        }
        at = data + size;
    };
    bytes[data_at] ^= 0x55;
    std::fs::write(&z, &bytes).unwrap();
    let damaged = std::fs::read(&z).unwrap();
    let run = verify(&[&format!("zip:{}", z.display())]);
    assert_exit(&run, 9, "damaged");
    assert_eq!((run.n("records"), run.n("intact")), (3, 2));
    assert_eq!(
        findings(&run, "problems"),
        BTreeSet::from([finding(
            "zip",
            format!("{}:{entry}", z.display()),
            Some(&zip_identity(&damaged, &entry))
        )])
    );
    assert_eq!(
        std::fs::read(&z).unwrap(),
        damaged,
        "verify changed the zip"
    );
}

#[test]
fn verify_calls_an_unreadable_or_inconsistent_zip_damaged() {
    let tmp = tempfile::tempdir().unwrap();
    let eml = tmp.path().join("eml/Japan");
    std::fs::create_dir_all(&eml).unwrap();
    let cases = support::corpus_dir().join("../cases/09-japanese-iso2022jp-sjis-encoded-words");
    for n in ["iso2022jp.eml", "split-utf8.eml", "sjis.eml"] {
        std::fs::copy(cases.join(n), eml.join(n)).unwrap();
    }
    let good_zip = tmp.path().join("good.zip");
    let out = support::mailkeep()
        .arg("convert")
        .arg(format!("eml:{}", tmp.path().join("eml").display()))
        .arg(format!("zip:{}", good_zip.display()))
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let good = std::fs::read(&good_zip).unwrap();
    let local = 0; // the first local header
    assert_eq!(&good[..4], b"PK\x03\x04");
    let name_len = u16::from_le_bytes([good[26], good[27]]) as usize;
    let first = String::from_utf8(good[30..30 + name_len].to_vec()).unwrap();
    let central = good.windows(4).position(|w| w == b"PK\x01\x02").unwrap();
    let eocd = good.len() - 22;
    assert_eq!(&good[eocd..eocd + 4], b"PK\x05\x06");

    let z = tmp.path().join("z.zip");
    let whole = z.display().to_string();
    let entry = format!("{}:{first}", z.display());
    type Damage = Box<dyn Fn(&mut Vec<u8>)>;
    let cases: Vec<(&str, Damage, &str, &str)> = vec![
        (
            "cut in the middle",
            Box::new(|b: &mut Vec<u8>| b.truncate(b.len() / 2)),
            &whole,
            "not a readable zip: it has no end-of-archive record (the file is cut short, damaged, or not a zip)",
        ),
        (
            "cut at the end",
            Box::new(|b: &mut Vec<u8>| b.truncate(b.len() - 10)),
            &whole,
            "not a readable zip: ",
        ),
        (
            "a local header's name",
            Box::new(move |b: &mut Vec<u8>| b[local + 30] ^= 0x20),
            &entry,
            "its local header does not match the central directory (name `",
        ),
        (
            "central flags",
            Box::new(move |b: &mut Vec<u8>| b[central + 9] ^= 0x10),
            &entry,
            "its local header does not match the central directory (flags ",
        ),
        (
            "version needed",
            Box::new(move |b: &mut Vec<u8>| b[central + 6] = 0xEB),
            &entry,
            "the central directory says version 23.5 is needed to extract it",
        ),
        (
            "end record's directory size",
            Box::new(move |b: &mut Vec<u8>| b[eocd + 12] ^= 0x01),
            &whole,
            "the end-of-archive record is wrong (a directory of ",
        ),
    ];
    for (what, damage, place, detail) in cases {
        let mut bytes = good.clone();
        damage(&mut bytes);
        std::fs::write(&z, &bytes).unwrap();
        let run = verify(&[&format!("zip:{}", z.display())]);
        assert_exit(&run, 9, "damaged");
        assert_eq!(run.stderr, "", "{what}: {run:#?}");
        let problems = run.report["problems"].as_array().unwrap();
        assert!(
            problems.iter().any(|p| p["kind"] == "zip"
                && p["class"] == "damaged"
                && p["path"] == place
                && p["detail"].as_str().unwrap().contains(detail)),
            "{what}: {run:#?}"
        );
        assert_eq!(
            std::fs::read(&z).unwrap(),
            bytes,
            "{what}: verify changed the zip"
        );
        let names: BTreeSet<String> = std::fs::read_dir(tmp.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(
            names,
            BTreeSet::from(["eml".into(), "good.zip".into(), "z.zip".into()])
        );
    }

    // The table: one finding line and the verdict; a foreign zip's entries are "without a
    // manifest row" (there is no ledger).
    std::fs::write(&z, &good[..good.len() / 2]).unwrap();
    let out = support::mailkeep().arg("verify").arg(&z).output().unwrap();
    assert_eq!(out.status.code(), Some(9));
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        format!(
            "damaged: {whole}: not a readable zip: it has no end-of-archive record (the file is cut short, damaged, or not a zip)\nverify zip:{whole}: 0 messages recorded, 0 intact, 1 zip problem(s) -> damaged (exit 9)\n"
        )
    );
    let mut w = zip::ZipWriter::new(std::fs::File::create(&z).unwrap());
    w.start_file("INBOX/a.eml", zip::write::SimpleFileOptions::default())
        .unwrap();
    std::io::Write::write_all(&mut w, b"Subject: a\n\nbody\n").unwrap();
    w.finish().unwrap();
    let out = support::mailkeep().arg("verify").arg(&z).output().unwrap();
    assert_eq!(out.status.code(), Some(9));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.ends_with(&format!(
            "verify zip:{whole}: 0 messages recorded, 0 intact, 1 zip problem(s), 1 without a manifest row -> damaged (exit 9)\n"
        )),
        "{text}"
    );
}

#[test]
fn verify_a_zip_backup_against_the_server() {
    // A zip is compared by its manifest's identities, like a ledger: a complete zip backup is
    // complete, and a damaged entry is named with its message and counted missing.
    let d = Dovecot::start();
    let u = d.add_user("zipagainst", "z-pw");
    for i in 0..3 {
        u.seed_message("INBOX", &message(i, 3), "", Some(1_700_000_000 + i as i64));
    }
    let tmp = tempfile::tempdir().unwrap();
    let z = tmp.path().join("b.zip");
    let zarg = format!("zip:{}", z.display());
    let run = Run::from_output(
        support::mailkeep()
            .arg("backup")
            .arg(d.url("imaps", &u))
            .arg(&zarg)
            .arg("--tls-ca")
            .arg(&d.ca_pem)
            .args(["--password-env", PW_VAR])
            .env(PW_VAR, &u.password)
            .output()
            .unwrap(),
    );
    run.assert_code(0);
    assert!(
        run.stdout
            .starts_with(&format!("backup imap:{}@127.0.0.1:", u.name)),
        "{run:#?}"
    );
    for scheme in ["imaps", "pop3s"] {
        let run = verify_against(&d, &u, scheme, &zarg);
        if scheme == "imaps" {
            assert_exit(&run, 0, "ok");
            assert_eq!((run.n("records"), run.n("intact")), (3, 3));
            assert_eq!(
                run.report["against"]["mailboxes"],
                serde_json::json!([{"mailbox": "INBOX", "on_server": 3, "in_archive": 3,
                                    "missing_from_archive": 0, "only_in_archive": 0}])
            );
        } else {
            // The zip holds no POP3 message of the account: all three are missing.
            assert_exit(&run, 8, "incomplete");
            assert_eq!(
                run.report["against"]["mailboxes"][0]["missing_from_archive"],
                3
            );
        }
    }
    // Damage the first message entry's data.
    let mut bytes = std::fs::read(&z).unwrap();
    let name_len = u16::from_le_bytes([bytes[26], bytes[27]]) as usize;
    let extra_len = u16::from_le_bytes([bytes[28], bytes[29]]) as usize;
    let entry = String::from_utf8(bytes[30..30 + name_len].to_vec()).unwrap();
    bytes[30 + name_len + extra_len + 5] ^= 0x55;
    std::fs::write(&z, &bytes).unwrap();
    let identity = zip_identity(&bytes, &entry);
    let run = verify_against(&d, &u, "imaps", &zarg);
    assert_exit(&run, 9, "damaged");
    assert_eq!(
        findings(&run, "problems"),
        BTreeSet::from([finding(
            "zip",
            format!("{}:{entry}", z.display()),
            Some(&identity)
        )])
    );
    let a = &run.report["against"];
    assert_eq!(
        a["mailboxes"],
        serde_json::json!([{"mailbox": "INBOX", "on_server": 3, "in_archive": 3,
                            "missing_from_archive": 1, "only_in_archive": 0}])
    );
    assert_eq!(a["missing_from_archive"][0]["identity"], identity.as_str());
    assert_eq!(a["missing_from_archive"][0]["recorded"], true);
    assert_eq!(std::fs::read(&z).unwrap(), bytes, "verify changed the zip");
}

#[test]
fn verify_names_only_the_entry_whose_mbox_separator_is_damaged() {
    // The first `From ` line is damaged: the reader cannot parse the file, but the entries
    // after it are still where the ledger says, intact; only the first is named.
    let tmp = tempfile::tempdir().unwrap();
    let eml = tmp.path().join("eml/Japan");
    std::fs::create_dir_all(&eml).unwrap();
    let cases = support::corpus_dir().join("../cases/09-japanese-iso2022jp-sjis-encoded-words");
    for n in ["iso2022jp.eml", "split-utf8.eml", "sjis.eml"] {
        std::fs::copy(cases.join(n), eml.join(n)).unwrap();
    }
    let root = tmp.path().join("mb");
    let out = support::mailkeep()
        .arg("convert")
        .arg(format!("eml:{}", tmp.path().join("eml").display()))
        .arg(format!("mbox:{}", root.display()))
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let file = root.join("Japan.mbox");
    let mut bytes = std::fs::read(&file).unwrap();
    assert_eq!(&bytes[..5], b"From ");
    bytes[0] = b'X';
    std::fs::write(&file, &bytes).unwrap();
    let first = records(&root)
        .into_iter()
        .find(|r| r.location.contains(".mbox:0:"))
        .unwrap();
    let before = snapshot(&root);
    let run = verify(&[&format!("mbox:{}", root.display())]);
    assert_exit(&run, 9, "damaged");
    assert_eq!((run.n("records"), run.n("intact")), (3, 2));
    assert_eq!(
        findings(&run, "problems"),
        BTreeSet::from([
            finding("unreadable", &file, None),
            finding(
                "unreadable",
                format!("{}:0", file.display()),
                Some(&first.identity)
            ),
        ])
    );
    assert_eq!(snapshot(&root), before, "verify changed the archive");
}
