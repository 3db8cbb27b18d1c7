//! `mailkeep restore` against a real Dovecot with two users (issue 4): round trips through
//! Maildir and mbox (backup A, restore into empty B, backup B: same folders, bytes, flags,
//! keywords, INTERNALDATEs), reruns that append nothing (also after deleting the uploads
//! ledger), case 21 (messages without Message-ID, two identical), a message the server refuses,
//! `--dry-run`, and special-use mapping.
//!
//! The restore state goes to a per-test `XDG_STATE_HOME`; Dovecot's own Maildir files are
//! the truth about what the target holds.

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use mailkeep::message::normalize;
use support::dovecot::{Dovecot, Options, User};
use support::run::{digests, Run};

const PW_VAR: &str = "MAILKEEP_TEST_PASSWORD";

fn imaps(d: &Dovecot, u: &User) -> String {
    d.url("imaps", u)
}

fn backup(d: &Dovecot, u: &User, archive: &str) -> Run {
    let out = support::mailkeep()
        .args(["backup", &imaps(d, u), archive, "--json", "--tls-ca"])
        .arg(&d.ca_pem)
        .args(["--password-env", PW_VAR])
        .env(PW_VAR, &u.password)
        .output()
        .unwrap();
    Run::from_output(out)
}

/// `mailkeep restore ARCHIVE imaps://u@.. --json <extra>` with `XDG_STATE_HOME=state`.
fn restore(d: &Dovecot, u: &User, archive: &str, state: &Path, extra: &[&str]) -> Run {
    let out = support::mailkeep()
        .args(["restore", archive, &imaps(d, u), "--tls-ca"])
        .arg(&d.ca_pem)
        .args(["--password-env", PW_VAR])
        .args(extra)
        .env(PW_VAR, &u.password)
        .env("XDG_STATE_HOME", state)
        .output()
        .unwrap();
    Run::from_output(out)
}

fn state_file(state: &Path) -> PathBuf {
    state.join("mailkeep/uploads.sqlite")
}

fn sha(b: &[u8]) -> String {
    digests([b]).remove(0)
}

/// A mailkeep archive's ledger: mailbox -> sorted (sha256, sorted flags, INTERNALDATE).
fn ledger_state(archive: &Path) -> BTreeMap<String, Vec<(String, Vec<String>, i64)>> {
    // `immutable`: reading must not leave -shm/-wal files in the archive being compared.
    let db = rusqlite::Connection::open_with_flags(
        format!(
            "file:{}?immutable=1",
            archive.join("mailkeep/ledger.sqlite").display()
        ),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_URI,
    )
    .unwrap();
    let mut st = db
        .prepare("SELECT mailbox, sha256, flags, internal_date FROM messages")
        .unwrap();
    let mut out: BTreeMap<String, Vec<_>> = BTreeMap::new();
    let rows = st
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, i64>(3)?,
            ))
        })
        .unwrap();
    for row in rows {
        let (mb, sha, flags, date) = row.unwrap();
        let mut flags: Vec<String> = flags.split_whitespace().map(str::to_string).collect();
        flags.sort();
        out.entry(mb).or_default().push((sha, flags, date));
    }
    for v in out.values_mut() {
        v.sort();
    }
    out
}

/// Per Maildir folder of an archive (relative directory): sorted (sha256 of the file, mtime).
fn maildir_files(root: &Path) -> BTreeMap<String, Vec<(String, i64)>> {
    use std::os::unix::fs::MetadataExt;
    let mut out: BTreeMap<String, Vec<(String, i64)>> = BTreeMap::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for e in std::fs::read_dir(&dir).unwrap().flatten() {
            let p = e.path();
            let name = e.file_name().to_string_lossy().into_owned();
            if !p.is_dir() || name == "mailkeep" {
                continue;
            }
            if name == "cur" || name == "new" {
                let rel = dir.strip_prefix(root).unwrap().display().to_string();
                for f in std::fs::read_dir(&p).unwrap().flatten() {
                    let md = f.metadata().unwrap();
                    let entry = out.entry(rel.clone()).or_default();
                    entry.push((sha(&std::fs::read(f.path()).unwrap()), md.mtime()));
                }
            } else if name != "tmp" {
                dirs.push(p);
            }
        }
    }
    for v in out.values_mut() {
        v.sort();
    }
    out
}

fn chown_like(path: &Path, like: &Path) {
    use std::os::unix::fs::MetadataExt;
    let md = std::fs::metadata(like).unwrap();
    let st = Command::new("chown")
        .arg("-R")
        .arg(format!("{}:{}", md.uid(), md.gid()))
        .arg(path)
        .status()
        .unwrap();
    assert!(st.success());
}

/// Asserts that `dir` holds the same files with the same bytes and mtimes as `before`,
/// naming the files that differ.
#[track_caller]
fn assert_same_tree(dir: &Path, before: &BTreeMap<String, (Vec<u8>, i64)>) {
    let now = support::run::snapshot(dir);
    let differ: Vec<&String> = now
        .keys()
        .chain(before.keys())
        .filter(|k| now.get(*k) != before.get(*k))
        .collect();
    let show: Vec<String> = differ
        .iter()
        .map(|k| {
            let len = |m: &BTreeMap<String, (Vec<u8>, i64)>| m.get(*k).map(|(b, t)| (b.len(), *t));
            format!("{k}: before {:?}, now {:?}", len(before), len(&now))
        })
        .collect();
    assert!(differ.is_empty(), "restore changed the archive: {show:?}");
}

const FOLDERS: [&str; 4] = ["INBOX", "Sent", "Archive/2023", "日本語/受信箱"];
const INFOS: [&str; 7] = ["", "S", "FS", "RS", "D", "FRS", "DS"];

/// Seeds `u` with every 14th corpus message (about 300) across [`FOLDERS`], with flags, the
/// keywords `$Work`/`Later` in two folders, and known dates. Returns the message count.
fn seed_account(u: &User) -> usize {
    for f in ["INBOX", "Archive/2023"] {
        let dir = u.ensure_mailbox(f);
        let file = dir.join("dovecot-keywords");
        std::fs::write(&file, "0 $Work\n1 Later\n").unwrap();
        chown_like(&file, &dir);
    }
    let corpus = support::corpus::all();
    let mut n = 0;
    for (i, m) in corpus.iter().step_by(14).enumerate() {
        let folder = FOLDERS[(i * 3 + i / 7) % FOLDERS.len()];
        let mut info = INFOS[i % INFOS.len()].to_string();
        if folder == "INBOX" || folder == "Archive/2023" {
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

/// The Dovecot message counts of `u` per [`FOLDERS`].
fn counts(u: &User) -> Vec<usize> {
    FOLDERS.iter().map(|f| u.message_count(f)).collect()
}

fn round_trip(kind: &str) {
    let d = Dovecot::start();
    let a = d.add_user("alice", "alice-pw");
    let b = d.add_user("bob", "bob-pw");
    let total = seed_account(&a) as u64;
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    let first = tmp.path().join("a");
    let second = tmp.path().join("b");
    let first_arg = format!("{kind}:{}", first.display());
    let second_arg = format!("{kind}:{}", second.display());

    backup(&d, &a, &first_arg).assert_code(0);
    let before = support::run::snapshot(&first);

    let run = restore(&d, &b, &first_arg, &state, &["--json"]);
    run.assert_code(0);
    assert_eq!(run.n("read"), total, "{run:#?}");
    assert_eq!(run.n("uploaded"), total, "{run:#?}");
    assert_eq!(run.n("already_present"), 0);
    assert_same_tree(&first, &before);
    let on_b = counts(&b);
    assert_eq!(on_b.iter().sum::<usize>() as u64, total);
    assert_eq!(on_b, counts(&a));

    backup(&d, &b, &second_arg).assert_code(0);
    let (sa, sb) = (ledger_state(&first), ledger_state(&second));
    assert_eq!(
        sa.keys().collect::<Vec<_>>(),
        sb.keys().collect::<Vec<_>>(),
        "folders differ"
    );
    for (mb, want) in &sa {
        assert_eq!(&sb[mb], want, "mailbox {mb}: bytes, flags or dates differ");
    }
    assert!(
        sa.values()
            .flatten()
            .any(|(_, f, _)| f.contains(&"$Work".to_string())),
        "keywords were seeded"
    );
    if kind == "maildir" {
        assert_eq!(maildir_files(&first), maildir_files(&second));
    }

    // A rerun appends nothing, and so does one after the uploads ledger is deleted.
    let again = restore(&d, &b, &first_arg, &state, &["--json"]);
    again.assert_code(0);
    assert_eq!(again.n("uploaded"), 0, "{again:#?}");
    assert_eq!(again.n("already_present"), total);
    assert_eq!(counts(&b), on_b);
    std::fs::remove_file(state_file(&state)).unwrap();
    let lost = restore(&d, &b, &first_arg, &state, &["--json"]);
    lost.assert_code(0);
    assert_eq!(lost.n("uploaded"), 0, "{lost:#?}");
    assert_eq!(lost.n("found_on_target"), total);
    assert_eq!(counts(&b), on_b);
    // ...and found messages are recorded: the next run needs no search.
    let third = restore(&d, &b, &first_arg, &state, &["--json"]);
    assert_eq!(third.n("found_on_target"), 0);
    assert_eq!(third.n("already_present"), total);
    assert_same_tree(&first, &before);
}

#[test]
fn round_trip_through_maildir_then_reruns_append_nothing() {
    round_trip("maildir");
}

#[test]
fn round_trip_through_mbox_then_reruns_append_nothing() {
    round_trip("mbox");
}

fn case21() -> PathBuf {
    support::corpus_dir().join("../cases/21-messages-without-message-id")
}

#[test]
fn case_21_messages_without_message_id_are_neither_merged_nor_duplicated() {
    let d = Dovecot::start();
    let b = d.add_user("bob", "bob-pw");
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    let mbox = case21().join("sent-items.mbox");
    let original = std::fs::read(&mbox).unwrap();
    let arg = format!("mbox:{}", mbox.display());
    let map = ["--json", "--map", "sent-items=Sent Items"];
    let expected = {
        let e =
            |n: u8| normalize(&std::fs::read(case21().join(format!("expected-{n}.eml"))).unwrap());
        let (e1, e2, e3) = (e(1), e(2), e(3));
        digests([&e1[..], &e2[..], &e3[..], &e3[..]])
    };
    let held = || {
        let msgs = b.messages("Sent Items");
        digests(msgs.iter().map(|m| &m[..]).collect::<Vec<_>>())
    };

    let first = restore(&d, &b, &arg, &state, &map);
    first.assert_code(0);
    assert_eq!(first.n("uploaded"), 4, "{first:#?}");
    assert_eq!(held(), expected);
    let second = restore(&d, &b, &arg, &state, &map);
    second.assert_code(0);
    assert_eq!(second.n("uploaded"), 0, "{second:#?}");
    assert_eq!(second.n("already_present"), 4);
    assert_eq!(held(), expected);
    // Without the ledger: found by size, date and content, one target message each.
    std::fs::remove_file(state_file(&state)).unwrap();
    let third = restore(&d, &b, &arg, &state, &map);
    third.assert_code(0);
    assert_eq!(third.n("uploaded"), 0, "{third:#?}");
    assert_eq!(third.n("found_on_target"), 4);
    assert_eq!(held(), expected);
    assert!(third.report["failures"].as_array().unwrap().is_empty());
    assert_eq!(
        std::fs::read(&mbox).unwrap(),
        original,
        "the archive changed"
    );
    assert_eq!(
        sha(&original),
        "f4ac4e342471d2ccb7210aa6854584a5653c0f13bdcf8ecf0aa35ad6f020fced"
    );
}

#[test]
fn a_refused_message_is_reported_and_the_others_are_uploaded() {
    let d = Dovecot::start_with(Options {
        extra_config: "mail_plugins = $mail_plugins quota\nplugin {\n  quota = count:User quota\n  quota_vsizes = yes\n  quota_max_mail_size = 20k\n}\n".into(),
        ..Options::default()
    });
    let b = d.add_user("bob", "bob-pw");
    let tmp = tempfile::tempdir().unwrap();
    let eml = tmp.path().join("export");
    std::fs::create_dir_all(eml.join("Scans")).unwrap();
    let small = |n: u32| {
        format!("From: a@example.org\nSubject: small {n}\nDate: Mon, 10 Mar 2025 07:00:00 +0100\nMessage-ID: <s{n}@example.org>\n\nhello\n")
    };
    std::fs::write(eml.join("Scans/1.eml"), small(1)).unwrap();
    let big = format!(
        "From: a@example.org\nSubject: big\nDate: Mon, 10 Mar 2025 07:00:00 +0100\n\n{}",
        ("y".repeat(75) + "\n").repeat(600)
    );
    std::fs::write(eml.join("Scans/2.eml"), big).unwrap();
    std::fs::write(eml.join("Scans/3.eml"), small(3)).unwrap();
    let state = tmp.path().join("state");
    let arg = format!("eml:{}", eml.display());

    let run = restore(&d, &b, &arg, &state, &["--json"]);
    run.assert_code(1);
    assert_eq!(run.n("uploaded"), 2, "{run:#?}");
    assert_eq!(run.n("failed"), 1);
    let failures = run.report["failures"].as_array().unwrap();
    assert_eq!(failures.len(), 1, "{run:#?}");
    assert_eq!(failures[0]["mailbox"], "Scans");
    assert!(
        failures[0]["message"].as_str().unwrap().ends_with("2.eml"),
        "{failures:?}"
    );
    assert_eq!(b.message_count("Scans"), 2);
    assert_eq!(run.report["exit"], "partial");

    // The rerun tries the refused one again (it is not recorded) and nothing else.
    let again = restore(&d, &b, &arg, &state, &["--json"]);
    again.assert_code(1);
    assert_eq!(again.n("uploaded"), 0);
    assert_eq!(again.n("already_present"), 2);
    assert_eq!(b.message_count("Scans"), 2);
}

#[test]
fn dry_run_changes_nothing_and_special_use_folders_map_onto_the_targets() {
    let d = Dovecot::start_with(Options {
        extra_config: "namespace inbox {\n  inbox = yes\n  mailbox Gesendet {\n    special_use = \\Sent\n    auto = create\n  }\n}\n".into(),
        ..Options::default()
    });
    let b = d.add_user("bob", "bob-pw");
    let tmp = tempfile::tempdir().unwrap();
    let eml = tmp.path().join("export");
    for (dir, n) in [("Sent Items", 2), ("INBOX", 1), ("Projects/2024", 1)] {
        std::fs::create_dir_all(eml.join(dir)).unwrap();
        for i in 0..n {
            std::fs::write(
                eml.join(dir).join(format!("{i}.eml")),
                format!("From: a@example.org\nSubject: {dir} {i}\nDate: Mon, 10 Mar 2025 07:00:00 +0100\nMessage-ID: <{i}.{}@example.org>\n\nbody\n", dir.len()),
            )
            .unwrap();
        }
    }
    let state = tmp.path().join("state");
    let arg = format!("eml:{}", eml.display());
    let listed_before = support::run::snapshot(&b.maildir);

    let plan = restore(&d, &b, &arg, &state, &["--dry-run"]);
    plan.assert_code(0);
    assert!(plan.stdout.contains("Sent Items"), "{plan:#?}");
    assert!(
        plan.stdout.contains("-> Gesendet (special-use)"),
        "{plan:#?}"
    );
    assert!(plan.stdout.contains("[create]"), "{plan:#?}");
    assert!(plan.stdout.contains("4 to upload"), "{plan:#?}");
    assert!(plan.stdout.contains("nothing was changed"), "{plan:#?}");
    let json = restore(&d, &b, &arg, &state, &["--dry-run", "--json"]);
    json.assert_code(0);
    assert_eq!(json.n("to_upload"), 4);
    assert_eq!(json.n("uploaded"), 0);
    assert!(!state.exists(), "a dry run wrote the state");
    assert_eq!(b.message_count("INBOX"), 0);
    assert!(
        !b.mailbox_dir("Projects/2024").exists(),
        "a dry run created a folder"
    );
    // Dovecot's index files may change on reads; message files and folders do not.
    let files = |s: &BTreeMap<String, (Vec<u8>, i64)>| {
        s.keys()
            .filter(|k| k.contains("/cur/") || k.contains("/new/") || k.starts_with("cur/"))
            .cloned()
            .collect::<Vec<_>>()
    };
    assert_eq!(
        files(&support::run::snapshot(&b.maildir)),
        files(&listed_before)
    );

    let run = restore(&d, &b, &arg, &state, &["--json"]);
    run.assert_code(0);
    assert_eq!(run.n("uploaded"), 4, "{run:#?}");
    assert_eq!(b.message_count("Gesendet"), 2);
    assert_eq!(b.message_count("Projects/2024"), 1);
    assert_eq!(b.message_count("INBOX"), 1);
    assert!(!b.mailbox_dir("Sent Items").exists());
    let plan = restore(&d, &b, &arg, &state, &["--dry-run", "--json"]);
    assert_eq!(plan.n("to_upload"), 0);
    assert_eq!(plan.n("already_present"), 4);
}
