//! Issue 14, item 2 and the name part of item 5: distinct server mailboxes get distinct archive
//! folders (DESIGN.md invariant 5), `prune` deletes per exact mailbox, and a mailbox name the
//! file system cannot hold fails that mailbox only.
//!
//! - Real Dovecot, hierarchy separator `.`, with the `listescape` plugin so that a level may
//!   contain `/` (stored on disk as `\2f`): `Work.x` (two levels) and `Work/x` (one level).
//! - The scripted fake IMAP server for names Dovecot cannot hold (a level over 255 bytes, a
//!   path over 4096 bytes).

mod support;

use std::fs;
use std::path::Path;

use mailkeep::core::message::normalize;
use support::dovecot::{Dovecot, Options, User};
use support::fake_imap::FakeImap;
use support::run::{maildir_messages, mbox_messages, Run};

const PW: &str = "MAILKEEP_NAMES_PW";
const DAY: i64 = 86_400;

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn msg(tag: &str) -> Vec<u8> {
    format!(
        "From: Ann <ann@example.com>\nTo: Bob <bob@example.org>\nSubject: {tag}\nMessage-ID: <{tag}@example.com>\n\nThe {tag} message.\n"
    )
    .into_bytes()
}

fn mailkeep(d: &Dovecot, u: &User, args: &[&str]) -> Run {
    support::run::as_user(d, u, args)
}

/// Dovecot's on-disk name (`listescape`: `\2f`) of the one-level mailbox `Work/x`.
const WORK_SLASH_X_ON_DISK: &str = "Work\\2fx";

/// A Dovecot whose separator is `.` and where a level may hold `/`, with `Work.x` (3 old
/// messages), `Work/x` (6 old messages) and INBOX (2 recent ones).
fn dovecot_with_colliding_names() -> (Dovecot, User, Vec<Vec<u8>>, Vec<Vec<u8>>) {
    let d = Dovecot::start_with(Options {
        extra_config: "mail_plugins = $mail_plugins listescape\n".into(),
        ..Options::default()
    });
    let u = d.add_user("names", "names-pw");
    let t0 = now();
    let two_levels: Vec<Vec<u8>> = (1..=3).map(|i| msg(&format!("two-levels-{i}"))).collect();
    let one_level: Vec<Vec<u8>> = (1..=6).map(|i| msg(&format!("one-level-{i}"))).collect();
    for m in &two_levels {
        u.seed_message("Work/x", m, "S", Some(t0 - 400 * DAY));
    }
    for m in &one_level {
        u.seed_message(WORK_SLASH_X_ON_DISK, m, "S", Some(t0 - 400 * DAY));
    }
    for i in 1..=2 {
        u.seed_message("INBOX", &msg(&format!("inbox-{i}")), "", Some(t0 - DAY));
    }
    (d, u, two_levels, one_level)
}

fn sorted(mut v: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
    v.sort();
    v
}

fn folder_bodies(folder: &Path) -> Vec<Vec<u8>> {
    sorted(
        maildir_messages(folder)
            .into_iter()
            .map(|(_, b)| b)
            .collect(),
    )
}

fn normalized(v: &[Vec<u8>]) -> Vec<Vec<u8>> {
    sorted(v.iter().map(|m| normalize(m)).collect())
}

/// The per-mailbox counts of a backup's JSON report: (mailbox, on server, fetched).
fn per_mailbox(r: &Run) -> Vec<(String, u64, u64)> {
    let mut v: Vec<(String, u64, u64)> = r.report["mailboxes"]
        .as_array()
        .unwrap_or_else(|| panic!("no mailboxes in {r:#?}"))
        .iter()
        .map(|m| {
            (
                m["mailbox"].as_str().unwrap().to_string(),
                m["on_server"].as_u64().unwrap(),
                m["fetched"].as_u64().unwrap(),
            )
        })
        .collect();
    v.sort();
    v
}

#[test]
fn a_level_holding_slash_and_two_levels_get_two_folders_and_prune_per_mailbox() {
    let (d, u, two_levels, one_level) = dovecot_with_colliding_names();
    assert_eq!(u.message_count("Work/x"), 3);
    assert_eq!(u.message_count(WORK_SLASH_X_ON_DISK), 6);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("archive");
    let archive = format!("maildir:{}", dir.display());
    let url = d.url("imaps", &u);

    let r = mailkeep(&d, &u, &["backup", &url, &archive]);
    r.assert_code(0);
    assert_eq!((r.n("listed"), r.n("fetched")), (11, 11), "{r:#?}");
    assert_eq!(
        per_mailbox(&r),
        [
            ("INBOX".to_string(), 2, 2),
            ("Work%2Fx".to_string(), 6, 6),
            ("Work/x".to_string(), 3, 3),
        ]
    );
    // Two folders, each with exactly its own mailbox's messages.
    assert_eq!(folder_bodies(&dir.join(".Work.x")), normalized(&two_levels));
    assert_eq!(
        folder_bodies(&dir.join(".Work%2Fx")),
        normalized(&one_level)
    );

    // A seventh message arrives in `Work/x` (one level) after the backup: not archived.
    let late = msg("one-level-late");
    u.seed_message(WORK_SLASH_X_ON_DISK, &late, "S", Some(now() - 400 * DAY));

    let r = mailkeep(&d, &u, &["verify", &archive, "--against", &url]);
    assert_eq!(r.code, 8, "one message not archived: {r:#?}");

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
    assert_eq!(r.n("deleted"), 9, "{r:#?}");
    assert_eq!(r.n("not_archived"), 1, "{r:#?}");
    // Exactly the verified ones, per mailbox: the late message stays, INBOX is untouched.
    assert_eq!(u.message_count("Work/x"), 0);
    assert_eq!(u.messages(WORK_SLASH_X_ON_DISK), vec![late.clone()]);
    assert_eq!(u.message_count("INBOX"), 2);
    // The archive still holds all nine.
    assert_eq!(folder_bodies(&dir.join(".Work.x")).len(), 3);
    assert_eq!(folder_bodies(&dir.join(".Work%2Fx")).len(), 6);
}

#[test]
fn the_two_mailboxes_get_two_mbox_files_and_read_back_under_their_names() {
    let (d, u, two_levels, one_level) = dovecot_with_colliding_names();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("archive");
    let archive = format!("mbox:{}", dir.display());
    let url = d.url("imaps", &u);
    let r = mailkeep(&d, &u, &["backup", &url, &archive]);
    r.assert_code(0);
    assert_eq!((r.n("listed"), r.n("fetched")), (11, 11), "{r:#?}");
    assert_eq!(
        sorted(mbox_messages(&dir.join("Work/x.mbox"))),
        normalized(&two_levels)
    );
    assert_eq!(
        sorted(mbox_messages(&dir.join("Work%2Fx.mbox"))),
        normalized(&one_level)
    );
    // Converted to a zip and listed: the same two mailboxes.
    let zip = tmp.path().join("a.zip");
    let out = support::mailkeep()
        .args([
            "convert",
            &archive,
            &format!("zip:{}", zip.display()),
            "--json",
        ])
        .output()
        .unwrap();
    let r = Run::from_output(out);
    r.assert_code(0);
    let mut names: Vec<(String, u64)> = r.report["mailboxes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["mailbox"].as_str().unwrap().to_string(),
                m["written"].as_u64().unwrap(),
            )
        })
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            ("INBOX".to_string(), 2),
            ("Work%2Fx".to_string(), 6),
            ("Work/x".to_string(), 3)
        ]
    );
}

/// A fake IMAP server whose hierarchy delimiter is `delim`, with these mailboxes (wire names)
/// in this LIST order, each holding `n` messages (UIDs 1..=n).
fn fake_server(files: &Path, delim: char, mailboxes: &[(&str, usize)]) -> FakeImap {
    let mut script = String::from("S: * OK [CAPABILITY IMAP4rev1 UIDPLUS] ready\n");
    for (name, _) in mailboxes {
        script.push_str(&format!("S: * LIST () \"{delim}\" \"{name}\"\n"));
    }
    script.push_str("C: TAG LOGIN <user> <password>\nS: TAG OK LOGIN completed\n");
    for (i, (name, n)) in mailboxes.iter().enumerate() {
        script.push_str(&format!(
            "C: TAG SELECT {name}\nS: * {n} EXISTS\nS: * OK [UIDVALIDITY 77{i}] UIDs valid\nS: * OK [UIDNEXT {}] next UID\nS: TAG OK SELECT completed\nC: TAG UID FETCH 1:* (UID)\n",
            n + 1
        ));
        for uid in 1..=*n {
            let body = format!(
                "Subject: m{i}-{uid}\nMessage-ID: <m{i}-{uid}@example.com>\n\nbody {i} {uid}\n"
            )
            .replace('\n', "\r\n");
            let file = format!("m{i}-{uid}.eml");
            fs::write(files.join(&file), &body).unwrap();
            script.push_str(&format!(
                "S: * {uid} FETCH (UID {uid} FLAGS () INTERNALDATE \"01-Apr-2024 06:00:01 +0000\" RFC822.SIZE {len} BODY[] {{{len}}}\nS+ {file}\nS: )\n",
                len = body.len()
            ));
        }
        script.push_str("S: TAG OK FETCH completed\n");
    }
    FakeImap::from_str(&script, files)
}

/// A fake IMAP server (`/` delimiter) with INBOX (1 message), `Long` (one level of 300
/// bytes, 1 message) and `Deep` (20 levels of 250 bytes: a path over 4096 bytes, 1 message),
/// then `Zed` (1 message), in this LIST order.
fn long_names_server(files: &Path) -> (FakeImap, String, String) {
    let long = "L".repeat(300);
    let deep = vec!["d".repeat(250); 20].join("/");
    let server = fake_server(
        files,
        '/',
        &[("INBOX", 1), (&long, 1), (&deep, 1), ("Zed", 1)],
    );
    (server, long, deep)
}

fn fake_backup(server: &FakeImap, archive: &str) -> Run {
    let out = support::mailkeep()
        .args([
            "backup",
            &format!("imap://alice@{}", server.addr()),
            archive,
        ])
        .args(["--allow-plaintext", "--password-env", PW, "--json"])
        .env(PW, "secret")
        .output()
        .unwrap();
    Run::from_output(out)
}

#[test]
fn a_path_too_long_fails_its_mailbox_only_and_a_long_level_is_shortened() {
    let tmp = tempfile::tempdir().unwrap();
    let files = tmp.path().join("files");
    fs::create_dir(&files).unwrap();

    // mbox: `Deep` needs a path of 5,019 bytes: the file system refuses it (ENAMETOOLONG), so
    // that mailbox fails, and the others (after it too) are archived.
    let (server, long, deep) = long_names_server(&files);
    let dir = tmp.path().join("mbox");
    let r = fake_backup(&server, &format!("mbox:{}", dir.display()));
    r.assert_code(1);
    assert_eq!((r.n("listed"), r.n("fetched")), (3, 3), "{r:#?}");
    let failures = r.report["failures"].as_array().unwrap();
    assert_eq!(failures.len(), 1, "{r:#?}");
    assert_eq!(failures[0]["mailbox"].as_str().unwrap(), deep);
    let error = failures[0]["error"].as_str().unwrap();
    assert!(
        error.starts_with(&format!(
            "alice@{}: mailbox `{}…` ({} bytes): its archive folder name is too long for this file system (",
            server.addr(),
            &deep[..120],
            deep.len()
        )),
        "{error}"
    );
    assert!(
        error.ends_with("); the mailbox is not archived (rename it on the server, or use a shorter archive path)"),
        "{error}"
    );
    assert!(!error.contains('\n'));
    assert_eq!(mbox_messages(&dir.join("INBOX.mbox")).len(), 1);
    assert_eq!(mbox_messages(&dir.join("Zed.mbox")).len(), 1);
    // The 300-byte level: a 255-byte file name ending in a hash, its full name in a hidden
    // file beside it.
    let mut entries: Vec<String> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    entries.sort();
    assert_eq!(entries.len(), 5, "{entries:?}");
    let file = entries.iter().find(|n| n.starts_with("LLL")).unwrap();
    assert_eq!(file.len(), 255);
    assert!(file.ends_with(".mbox") && file.contains("%~"), "{file}");
    let name_file = entries
        .iter()
        .find(|n| n.ends_with(".mailkeep-mailbox"))
        .unwrap();
    assert!(name_file.starts_with('.'), "{name_file}");
    assert_eq!(
        fs::read_to_string(dir.join(name_file)).unwrap(),
        format!("{long}\n")
    );
    assert_eq!(mbox_messages(&dir.join(file)).len(), 1);

    // Maildir: one directory entry per folder, shortened, so all four are archived; readers
    // give the full names back (convert to a zip lists them).
    let (server, long, deep) = long_names_server(&files);
    let mdir = tmp.path().join("maildir");
    let archive = format!("maildir:{}", mdir.display());
    let r = fake_backup(&server, &archive);
    r.assert_code(0);
    assert_eq!((r.n("listed"), r.n("fetched")), (4, 4), "{r:#?}");
    let zip = tmp.path().join("a.zip");
    let out = support::mailkeep()
        .args([
            "convert",
            &archive,
            &format!("zip:{}", zip.display()),
            "--json",
        ])
        .output()
        .unwrap();
    let r = Run::from_output(out);
    r.assert_code(0);
    let mut names: Vec<String> = r.report["mailboxes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["mailbox"].as_str().unwrap().to_string())
        .collect();
    names.sort();
    let mut want = vec!["INBOX".to_string(), long, deep, "Zed".to_string()];
    want.sort();
    assert_eq!(names, want);
    // A second backup: nothing new, nothing failed.
    let (server, _, _) = long_names_server(&files);
    let r = fake_backup(&server, &archive);
    r.assert_code(0);
    assert_eq!(r.n("fetched"), 0, "{r:#?}");
}

#[test]
fn inbox_children_spelled_in_another_case_are_another_mailbox() {
    // RFC 3501 5.1 reserves only the name INBOX itself: a server may hold `INBOX/Sub` and
    // `inbox/Sub` (Dovecot folds them; the fake server does not).
    let tmp = tempfile::tempdir().unwrap();
    let files = tmp.path().join("files");
    fs::create_dir(&files).unwrap();
    let mailboxes = [("INBOX", 1), ("INBOX/Sub", 1), ("inbox/Sub", 2)];
    let server = fake_server(&files, '/', &mailboxes);
    let dir = tmp.path().join("archive");
    let archive = format!("maildir:{}", dir.display());
    let r = fake_backup(&server, &archive);
    r.assert_code(0);
    assert_eq!(
        per_mailbox(&r),
        [
            ("INBOX".to_string(), 1, 1),
            ("INBOX/Sub".to_string(), 1, 1),
            ("inbox/Sub".to_string(), 2, 2),
        ]
    );
    assert_eq!(folder_bodies(&dir).len(), 1);
    assert_eq!(folder_bodies(&dir.join(".INBOX.Sub")).len(), 1);
    assert_eq!(folder_bodies(&dir.join(".inbox.Sub")).len(), 2);
    // A second run: nothing new anywhere.
    let server = fake_server(&files, '/', &mailboxes);
    let r = fake_backup(&server, &archive);
    r.assert_code(0);
    assert_eq!(r.n("fetched"), 0, "{r:#?}");
}
