//! Gmail by label (issue 17): the scripted fake IMAP server in Gmail mode (`X-GM-EXT-1`,
//! `[Gmail]` `\Noselect`, special-use folders, `X-GM-MSGID` / `X-GM-LABELS` in FETCH) holds
//! five messages with assorted labels (system, nested, non-ASCII, starred and important, one
//! only in All Mail). A backup stores each once, in the folder of its first user label (else
//! INBOX, Sent or `Archive`), records it in every label's mailbox, reads nothing but All
//! Mail, and a rerun brings label changes in without downloading a body; a restore of the
//! archive to a real Dovecot puts one copy per label, with flags.

mod support;

use std::collections::BTreeMap;
use std::path::Path;

use support::dovecot::Dovecot;
use support::fake_imap::{FakeImap, Fault};
use support::run::{dovecot_mailbox, Run};

const PW: &str = "MAILKEEP_GMAIL_PW";

/// (UID, X-GM-MSGID (0: none sent), X-GM-LABELS as sent, FLAGS, tag of the message)
type Row = (u32, u64, &'static str, &'static str, &'static str);

const ROWS: [Row; 5] = [
    (
        1,
        1001,
        r#"("\\Inbox" "\\Important")"#,
        r"(\Seen)",
        "inbox-important",
    ),
    (
        2,
        1002,
        r#"("\\Inbox" Work "Receipts/2024" "\\Starred")"#,
        r"(\Seen \Flagged)",
        "receipt",
    ),
    (3, 1003, r#"("\\Sent")"#, r"(\Seen)", "sent"),
    (4, 1004, "()", "()", "archived"),
    (5, 1005, r#"("Rechnungen/&AOQ-rger")"#, "()", "rechnung"),
];

/// LIST of the Gmail account (the data after `* LIST `): INBOX, `[Gmail]` with its
/// special-use folders, two user labels.
const GMAIL_LIST: [&str; 10] = [
    r#"(\HasNoChildren) "/" "INBOX""#,
    r#"(\HasChildren \Noselect) "/" "[Gmail]""#,
    r#"(\All \HasNoChildren) "/" "[Gmail]/All Mail""#,
    r#"(\HasNoChildren \Sent) "/" "[Gmail]/Sent Mail""#,
    r#"(\HasNoChildren \Junk) "/" "[Gmail]/Spam""#,
    r#"(\HasNoChildren \Trash) "/" "[Gmail]/Trash""#,
    r#"(\HasNoChildren \Flagged) "/" "[Gmail]/Starred""#,
    r#"(\HasNoChildren \Important) "/" "[Gmail]/Important""#,
    r#"(\HasNoChildren) "/" "Receipts/2024""#,
    r#"(\HasNoChildren) "/" "Work""#,
];

fn body(tag: &str) -> String {
    format!(
        "From: a@example.org\r\nTo: b@example.org\r\nSubject: {tag}\r\nMessage-ID: <{tag}@gmail-test>\r\nDate: Tue, 4 Mar 2014 10:00:00 +0100\r\n\r\nbody of {tag}\r\n"
    )
}

/// The Gmail account's script, `rows` in All Mail; message files written to `dir`.
fn gmail(dir: &Path, rows: &[Row]) -> FakeImap {
    gmail_with(dir, rows, Vec::new())
}

/// As [`gmail`], with `faults`.
fn gmail_with(dir: &Path, rows: &[Row], faults: Vec<Fault>) -> FakeImap {
    gmail_listing(dir, rows, faults, &[])
}

/// As [`gmail_with`], with more label folders in LIST (`extra`: the data after `* LIST `).
fn gmail_listing(dir: &Path, rows: &[Row], faults: Vec<Fault>, extra: &[&str]) -> FakeImap {
    gmail_script(dir, rows, faults, extra, None)
}

/// As [`gmail_listing`]; with `modseq`, the server has CONDSTORE and All Mail's STATUS and
/// EXAMINE say HIGHESTMODSEQ `modseq`.
fn gmail_script(
    dir: &Path,
    rows: &[Row],
    faults: Vec<Fault>,
    extra: &[&str],
    modseq: Option<u64>,
) -> FakeImap {
    std::fs::create_dir_all(dir).unwrap();
    let condstore = if modseq.is_some() { " CONDSTORE" } else { "" };
    let mut s = format!(
        "S: * OK [CAPABILITY IMAP4rev1 UIDPLUS X-GM-EXT-1 SPECIAL-USE{condstore}] Gimap ready\n"
    );
    for l in GMAIL_LIST.iter().chain(extra) {
        s += &format!("S: * LIST {l}\n");
    }
    s += "C: TAG LOGIN <user> <password>\nS: TAG OK alice authenticated (Success)\n";
    if let Some(m) = modseq {
        s += &format!(
            "C: TAG STATUS \"[Gmail]/All Mail\" (MESSAGES UIDNEXT UIDVALIDITY HIGHESTMODSEQ)\nS: * STATUS \"[Gmail]/All Mail\" (MESSAGES {} UIDNEXT 6 UIDVALIDITY 11 HIGHESTMODSEQ {m})\nS: TAG OK Success\n",
            rows.len()
        );
    }
    s += &format!(
        "C: TAG SELECT \"[Gmail]/All Mail\"\nS: * {} EXISTS\nS: * OK [UIDVALIDITY 11] UIDs valid\nS: * OK [UIDNEXT 6] next\n{}S: TAG OK [READ-ONLY] EXAMINE completed\n",
        rows.len(),
        modseq.map_or(String::new(), |m| format!("S: * OK [HIGHESTMODSEQ {m}] modseq\n"))
    );
    s += "C: TAG UID FETCH <set> (<items>)\n";
    for (i, (uid, msgid, labels, flags, tag)) in rows.iter().enumerate() {
        let b = body(tag);
        let file = format!("m{uid}.eml");
        std::fs::write(dir.join(&file), &b).unwrap();
        let msgid_item = match msgid {
            0 => String::new(),
            _ => format!("X-GM-MSGID {msgid} "),
        };
        s += &format!(
            "S: * {} FETCH (UID {uid} {msgid_item}X-GM-THRID {} X-GM-LABELS {labels} FLAGS {flags} INTERNALDATE \"04-Mar-2014 10:00:0{i} +0100\" RFC822.SIZE {n} BODY[] {{{n}}}\nS+ {file}\nS: )\n",
            i + 1,
            msgid + 8000,
            n = b.len()
        );
    }
    s += "S: TAG OK Success\n";
    let mut b = FakeImap::builder_str(&s, dir);
    for f in faults {
        b = b.fault(f);
    }
    b.start()
}

fn mailkeep(args: &[&str]) -> Run {
    let out = support::mailkeep()
        .args(args)
        .arg("--json")
        .env(PW, "secret")
        .output()
        .unwrap();
    Run::from_output(out)
}

fn backup(server: &FakeImap, archive: &str, extra: &[&str]) -> Run {
    let url = format!("imap://alice@{}", server.addr());
    let mut args = vec![
        "backup",
        url.as_str(),
        archive,
        "--password-env",
        PW,
        "--allow-plaintext",
        "--timeout",
        "10",
    ];
    args.extend_from_slice(extra);
    mailkeep(&args)
}

/// `list --json`: messages per mailbox.
fn listed(archive: &str) -> BTreeMap<String, u64> {
    let run = mailkeep(&["list", archive]);
    run.assert_code(0);
    run.report["mailboxes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["mailbox"].as_str().unwrap().to_string(),
                m["messages"].as_u64().unwrap(),
            )
        })
        .collect()
}

fn files(root: &Path) -> usize {
    let mut n = 0;
    let mut dirs = vec![root.to_path_buf()];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let p = e.path();
            if e.file_type().unwrap().is_dir() {
                if p.file_name().unwrap() != "mailkeep" && p.file_name().unwrap() != "tmp" {
                    dirs.push(p);
                }
            } else if p.parent().unwrap().file_name().unwrap() == "cur"
                || p.parent().unwrap().file_name().unwrap() == "new"
            {
                n += 1;
            }
        }
    }
    n
}

fn map(pairs: &[(&str, u64)]) -> BTreeMap<String, u64> {
    pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

#[test]
fn a_gmail_account_is_stored_once_with_its_labels_and_label_changes_come_without_bodies() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("archive");
    let archive = format!("maildir:{}", root.display());
    let server = gmail(&t.path().join("s1"), &ROWS);
    let run = backup(&server, &archive, &[]);
    run.assert_code(0);
    assert_eq!(
        (run.n("listed"), run.n("fetched"), run.n("already_archived")),
        (5, 5, 0),
        "{run:#?}"
    );
    // Only All Mail was opened; no label folder was read.
    let opened: Vec<String> = server
        .commands()
        .into_iter()
        .filter(|c| c.starts_with("EXAMINE") || c.starts_with("SELECT"))
        .collect();
    assert_eq!(opened, [r#"EXAMINE "[Gmail]/All Mail""#]);
    // Each message stored once.
    assert_eq!(files(&root), 5);
    let want = map(&[
        ("Archive", 1),
        ("INBOX", 2),
        ("Receipts/2024", 1),
        ("Rechnungen/ärger", 1),
        ("Work", 1),
        ("[Gmail]/Sent Mail", 1),
    ]);
    assert_eq!(listed(&archive), want);
    mailkeep(&["verify", &archive]).assert_code(0);

    // Nothing new: nothing fetched.
    let again = backup(&gmail(&t.path().join("s2"), &ROWS), &archive, &[]);
    again.assert_code(0);
    assert_eq!(
        (
            again.n("fetched"),
            again.n("already_archived"),
            again.n("flags_updated")
        ),
        (0, 5, 0),
        "{again:#?}"
    );

    // Labels changed on the server: `receipt` left Work for Travel and lost its star;
    // `archived` got Inbox. No body is downloaded.
    let mut rows = ROWS;
    rows[1].2 = r#"("\\Inbox" Travel "Receipts/2024")"#;
    rows[1].3 = r"(\Seen)";
    rows[3].2 = r#"("\\Inbox")"#;
    let server = gmail(&t.path().join("s3"), &rows);
    let changed = backup(&server, &archive, &[]);
    changed.assert_code(0);
    assert_eq!(
        (changed.n("fetched"), changed.n("flags_updated")),
        (0, 2),
        "{changed:#?}"
    );
    let bodies = server
        .commands()
        .iter()
        .filter(|c| c.contains("BODY.PEEK"))
        .count();
    assert_eq!(bodies, 0);
    assert_eq!(files(&root), 5);
    let want = map(&[
        ("Archive", 1),
        ("INBOX", 3),
        ("Receipts/2024", 1),
        ("Rechnungen/ärger", 1),
        ("Travel", 1),
        ("[Gmail]/Sent Mail", 1),
    ]);
    assert_eq!(listed(&archive), want);

    // --gmail-folders: folder by folder, as for any server (All Mail is a folder then).
    let folders = format!("maildir:{}", t.path().join("folders").display());
    let server = gmail(&t.path().join("s4"), &ROWS);
    let run = backup(
        &server,
        &folders,
        &["--gmail-folders", "--folder", "[Gmail]/All Mail"],
    );
    run.assert_code(0);
    assert_eq!(
        listed(&folders),
        map(&[("INBOX", 0), ("[Gmail]/All Mail", 5)])
    );
}

#[test]
fn a_gmail_archive_restores_to_another_server_as_one_folder_per_label() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("archive");
    let archive = format!("maildir:{}", root.display());
    backup(&gmail(&t.path().join("s1"), &ROWS), &archive, &[]).assert_code(0);
    let d = Dovecot::start();
    let u = d.add_user("fromgmail", "pw");
    let out = support::mailkeep()
        .args(["restore", &archive, &d.url("imaps", &u), "--tls-ca"])
        .arg(&d.ca_pem)
        .args(["--password-env", PW, "--json"])
        .env(PW, &u.password)
        .env("XDG_STATE_HOME", t.path().join("state"))
        .output()
        .unwrap();
    let run = Run::from_output(out);
    run.assert_code(0);
    assert_eq!(run.n("uploaded"), 7, "{run:#?}");
    let flags = |mailbox: &str| -> Vec<String> {
        dovecot_mailbox(&u, mailbox)
            .into_iter()
            .map(|(_, f, _)| f)
            .collect()
    };
    // INBOX: the important message (seen, keyword `a` = $Important in Dovecot's
    // dovecot-keywords) and the starred receipt (flagged, seen), in byte order.
    assert_eq!(flags("INBOX"), ["Sa", "FS"]);
    assert_eq!(flags("Work"), ["FS"]);
    assert_eq!(flags("Receipts/2024"), ["FS"]);
    assert_eq!(flags("Archive"), [""]);
    assert_eq!(flags("Rechnungen/ärger"), [""]);
    for m in [
        "INBOX",
        "Work",
        "Receipts/2024",
        "Archive",
        "Rechnungen/ärger",
    ] {
        for (bytes, _, date) in dovecot_mailbox(&u, m) {
            assert!(bytes.starts_with(b"From: a@example.org\n"), "{m}");
            assert!(
                (1_393_923_600..1_393_923_610).contains(&date),
                "{m}: {date}"
            );
        }
    }
}

/// A Gmail account for a direct migration (`--jobs 1`, mailboxes read in name order): the
/// virtual `Archive` (All Mail's messages in no label folder), then each label folder, each
/// with its listing and body FETCH blocks.
fn gmail_folders(dir: &Path) -> FakeImap {
    std::fs::create_dir_all(dir).unwrap();
    let mut s =
        String::from("S: * OK [CAPABILITY IMAP4rev1 UIDPLUS X-GM-EXT-1 SPECIAL-USE] Gimap ready\n");
    for l in GMAIL_LIST
        .iter()
        .chain(&[r#"(\HasNoChildren) "/" "Rechnungen/&AOQ-rger""#])
    {
        s += &format!("S: * LIST {l}\n");
    }
    s += "C: TAG LOGIN <user> <password>\nS: TAG OK alice authenticated (Success)\n";
    // (folder, UIDVALIDITY, rows of ROWS in it)
    let folders: [(&str, u32, &[usize]); 6] = [
        ("[Gmail]/All Mail", 11, &[0, 1, 2, 3, 4]),
        ("INBOX", 21, &[0, 1]),
        ("Receipts/2024", 22, &[1]),
        ("Rechnungen/&AOQ-rger", 23, &[4]),
        ("Work", 24, &[1]),
        ("[Gmail]/Sent Mail", 25, &[2]),
    ];
    for (folder, uidvalidity, rows) in folders {
        s += &format!(
            "C: TAG SELECT \"{folder}\"\nS: * {} EXISTS\nS: * OK [UIDVALIDITY {uidvalidity}] UIDs valid\nS: * OK [UIDNEXT 9] next\nS: TAG OK [READ-ONLY] EXAMINE completed\n",
            rows.len()
        );
        let chunks: String = rows
            .iter()
            .enumerate()
            .map(|(seq, &i)| {
                let (uid, msgid, labels, flags, tag) = ROWS[i];
                let b = body(tag);
                let file = format!("m{uid}.eml");
                std::fs::write(dir.join(&file), &b).unwrap();
                format!(
                    "S: * {} FETCH (UID {uid} X-GM-MSGID {msgid} X-GM-LABELS {labels} FLAGS {flags} INTERNALDATE \"04-Mar-2014 10:00:0{i} +0100\" RFC822.SIZE {n} BODY[] {{{n}}}\nS+ {file}\nS: )\n",
                    seq + 1,
                    n = b.len()
                )
            })
            .collect();
        s += &format!("C: TAG UID FETCH 1:* (UID FLAGS)\n{chunks}S: TAG OK Success\n");
        s += &format!("C: TAG UID FETCH <uids> (BODY.PEEK[])\n{chunks}S: TAG OK Success\n");
    }
    FakeImap::from_str(&s, dir)
}

#[test]
fn a_direct_migration_from_gmail_copies_label_folders_and_archived_mail_not_all_mail() {
    let t = tempfile::tempdir().unwrap();
    let server = gmail_folders(&t.path().join("s"));
    let d = Dovecot::start();
    let u = d.add_user("gmailmig", "pw");
    let out = support::mailkeep()
        .args([
            "migrate",
            &format!("imap://alice@{}", server.addr()),
            &d.url("imaps", &u),
            "--source-allow-plaintext",
            "--target-tls-ca",
        ])
        .arg(&d.ca_pem)
        .args([
            "--source-password-env",
            PW,
            "--target-password-env",
            "MAILKEEP_GMAIL_DST_PW",
            "--jobs",
            "1",
            "--json",
        ])
        .env(PW, "secret")
        .env("MAILKEEP_GMAIL_DST_PW", &u.password)
        .env("XDG_STATE_HOME", t.path().join("state"))
        .output()
        .unwrap();
    let run = Run::from_output(out);
    run.assert_code(0);
    let count = |m: &str| dovecot_mailbox(&u, m).len();
    assert_eq!(
        [
            count("Archive"),
            count("INBOX"),
            count("Receipts/2024"),
            count("Rechnungen/ärger"),
            count("Work")
        ],
        [1, 2, 1, 1, 1],
        "{run:#?}"
    );
    for m in [
        "[Gmail]/All Mail",
        "[Gmail]/Starred",
        "[Gmail]/Important",
        "[Gmail]/Spam",
    ] {
        assert!(!u.mailbox_dir(m).exists(), "{m} was created: {run:#?}");
    }
    // All Mail was read only for the archived message.
    let bodies: Vec<String> = server
        .commands()
        .into_iter()
        .filter(|c| c.contains("BODY.PEEK"))
        .map(|c| c.split(" (").next().unwrap().to_string())
        .collect();
    assert_eq!(bodies[0], "UID FETCH 4");
}

#[test]
fn a_google_takeout_file_restores_as_one_folder_per_label_with_flags() {
    let t = tempfile::tempdir().unwrap();
    let file = t.path().join("All mail Including Spam and Trash.mbox");
    let msg = |n: u32, labels: &str| {
        format!(
            "From 16{n}@xxx Mon Mar 03 0{n}:00:00 +0000 2014\nX-GM-THRID: 16{n}\nX-Gmail-Labels: {labels}\nFrom: a@example.org\nSubject: takeout {n}\nMessage-ID: <takeout{n}@example.org>\nDate: Mon, 3 Mar 2014 0{n}:00:00 +0000\n\nbody {n}\n>From here\n\n"
        )
    };
    let mbox = [
        msg(1, "Inbox,Work,Starred,Opened"),
        msg(2, "Archived,Unread,Category Updates"),
        msg(3, "Sent,Opened"),
        msg(4, "Spam,Unread"),
    ]
    .concat();
    std::fs::write(&file, mbox).unwrap();
    let archive = format!("mbox:{}", file.display());
    let run = mailkeep(&["list", &archive]);
    run.assert_code(0);
    assert_eq!(
        listed(&archive),
        map(&[("Archive", 1), ("INBOX", 1), ("Sent", 1), ("Work", 1)])
    );
    // The folder holding it, named instead of the file: one mailbox of every message (Spam
    // included), with a warning naming the way to read it by label.
    let folder = format!("mbox:{}", t.path().display());
    let run = mailkeep(&["list", &folder]);
    run.assert_code(0);
    assert_eq!(
        listed(&folder),
        map(&[("All mail Including Spam and Trash", 4)])
    );
    assert!(
        run.stderr.contains(&format!(
            "mailkeep: warning: {}: a Google Takeout file (X-Gmail-Labels), read here as one mailbox holding every message in it, Spam, Trash and Chat included, its labels unused; name the file itself (mbox:'{}') to read it as one mailbox per label\n",
            file.display(),
            file.display()
        )),
        "{run:#?}"
    );
    // verify checks a mailkeep archive against its ledger: a lone file is a usage error.
    let run = mailkeep(&["verify", &archive]);
    run.assert_code(2);
    run.assert_one_line_error(&[&format!(
        "{} is a file, not a mailkeep archive (a folder holding mailkeep/ledger.sqlite): nothing to verify against (`mailkeep list '{archive}'` reads it)",
        file.display()
    )]);
    let d = Dovecot::start();
    let u = d.add_user("takeout", "pw");
    let restore = || {
        let out = support::mailkeep()
            .args(["restore", &archive, &d.url("imaps", &u), "--tls-ca"])
            .arg(&d.ca_pem)
            .args(["--password-env", PW, "--json"])
            .env(PW, &u.password)
            .env("XDG_STATE_HOME", t.path().join("state"))
            .output()
            .unwrap();
        Run::from_output(out)
    };
    let run = restore();
    run.assert_code(0);
    assert_eq!(run.n("uploaded"), 4, "{run:#?}");
    assert!(
        run.stderr.contains(
            "1 message(s) labelled Spam, Trash or Chat in this Google Takeout file are left out"
        ),
        "{run:#?}"
    );
    let flags = |mailbox: &str| -> Vec<String> {
        dovecot_mailbox(&u, mailbox)
            .into_iter()
            .map(|(_, f, _)| f)
            .collect()
    };
    assert_eq!(flags("INBOX"), ["FS"]);
    assert_eq!(flags("Work"), ["FS"]);
    assert_eq!(flags("Archive"), [""]);
    assert_eq!(flags("Sent"), ["S"]);
    // Bytes as in the file (mboxrd unquoted, the label header kept), dated by the From line.
    let (bytes, _, date) = dovecot_mailbox(&u, "Archive").remove(0);
    assert!(bytes.starts_with(b"X-GM-THRID: 162\nX-Gmail-Labels: Archived,Unread"));
    assert!(
        bytes.ends_with(b"body 2\nFrom here\n"),
        "{}",
        String::from_utf8_lossy(&bytes)
    );
    assert_eq!(date, 1_393_812_000);
    let again = restore();
    again.assert_code(0);
    assert_eq!(again.n("uploaded"), 0, "{again:#?}");
}

#[test]
fn a_killed_gmail_backup_adopts_the_files_it_stored_with_the_flags_of_the_rerun() {
    // Killed after storing every message and before recording any; the receipt lost its
    // star before the rerun. The rerun records the files found (no download, no second
    // copy) and renames the receipt's file to its flags now.
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("archive");
    let archive = format!("maildir:{}", root.display());
    let first = gmail(&t.path().join("s1"), &ROWS);
    let out = support::mailkeep()
        .args(["backup", &format!("imap://alice@{}", first.addr())])
        .arg(&archive)
        .args(["--password-env", PW, "--allow-plaintext", "--timeout", "10"])
        .env(PW, "secret")
        .env("MAILKEEP_TEST_KILL_AFTER_EVENTS", "0")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(137));
    assert_eq!(files(&root), 5);
    let mut rows = ROWS;
    rows[1].2 = r#"("\\Inbox" Work "Receipts/2024")"#;
    rows[1].3 = r"(\Seen)";
    let server = gmail(&t.path().join("s2"), &rows);
    let run = backup(&server, &archive, &[]);
    run.assert_code(0);
    assert_eq!(
        (
            run.n("listed"),
            run.n("fetched"),
            run.n("already_archived"),
            run.n("recovered")
        ),
        (5, 0, 5, 5),
        "{run:#?}"
    );
    let bodies = server
        .commands()
        .iter()
        .filter(|c| c.contains("BODY.PEEK"))
        .count();
    assert_eq!(bodies, 0);
    assert_eq!(files(&root), 5);
    let receipts: Vec<String> = std::fs::read_dir(root.join(".Receipts.2024/cur"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(receipts.len(), 1);
    assert!(receipts[0].ends_with(":2,S"), "{receipts:?}");
    let want = map(&[
        ("Archive", 1),
        ("INBOX", 2),
        ("Receipts/2024", 1),
        ("Rechnungen/ärger", 1),
        ("Work", 1),
        ("[Gmail]/Sent Mail", 1),
    ]);
    assert_eq!(listed(&archive), want);
    mailkeep(&["verify", &archive]).assert_code(0);
}

#[test]
fn a_gmail_message_the_server_cannot_send_fails_alone() {
    // UID 2's mail file is damaged on the server: the batch's FETCH is refused whole
    // (Dovecot's `NO [SERVERBUG]`); each message is asked for again alone, so only UID 2
    // fails, named with the server's words, and the other four are archived.
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("archive");
    let archive = format!("maildir:{}", root.display());
    let damaged = Fault::Damaged {
        uid: 2,
        text: "[SERVERBUG] Internal error occurred".into(),
        others: false,
    };
    let server = gmail_with(&t.path().join("s1"), &ROWS, vec![damaged]);
    let run = backup(&server, &archive, &[]);
    run.assert_code(1);
    assert_eq!(
        (run.n("listed"), run.n("fetched"), run.n("already_archived")),
        (5, 4, 0),
        "{run:#?}"
    );
    let failures = run.report["failures"].as_array().unwrap();
    assert_eq!(failures.len(), 1, "{run:#?}");
    assert_eq!(failures[0]["message"], "UID 2");
    let error = failures[0]["error"].as_str().unwrap();
    assert!(
        error.contains("NO [SERVERBUG] Internal error occurred") && error.contains("UID FETCH 2 "),
        "{error}"
    );
    assert_eq!(files(&root), 4);
    // Healthy again: the rerun fetches only UID 2.
    let again = backup(&gmail(&t.path().join("s2"), &ROWS), &archive, &[]);
    again.assert_code(0);
    assert_eq!(
        (again.n("fetched"), again.n("already_archived")),
        (1, 4),
        "{again:#?}"
    );
    assert_eq!(files(&root), 5);
}

#[test]
fn a_gmail_message_without_a_msgid_of_its_own_fails_alone() {
    // (archive, rows, the failed UID and what its error says)
    let mut repeated = ROWS;
    repeated[3].1 = 1002;
    let mut missing = ROWS;
    missing[2].1 = 0;
    let cases = [
        (
            "repeated",
            repeated,
            "UID 4",
            "X-GM-MSGID 1002 for it and for UID 2",
        ),
        ("missing", missing, "UID 3", "no X-GM-MSGID"),
    ];
    let t = tempfile::tempdir().unwrap();
    for (dir, rows, uid, says) in cases {
        let root = t.path().join(dir);
        let archive = format!("maildir:{}", root.display());
        let run = backup(
            &gmail(&t.path().join(format!("s-{dir}")), &rows),
            &archive,
            &[],
        );
        run.assert_code(1);
        assert_eq!(
            (run.n("listed"), run.n("fetched"), run.n("already_archived")),
            (5, 4, 0),
            "{run:#?}"
        );
        let failures = run.report["failures"].as_array().unwrap();
        assert_eq!(failures.len(), 1, "{run:#?}");
        assert_eq!(failures[0]["message"], uid);
        assert!(
            failures[0]["error"].as_str().unwrap().contains(says),
            "{run:#?}"
        );
        assert_eq!(files(&root), 4, "{dir}");
        mailkeep(&["verify", &archive]).assert_code(0);
    }
}

#[test]
fn archived_mail_is_never_merged_into_a_label_called_archive() {
    let t = tempfile::tempdir().unwrap();
    let archive = format!("maildir:{}", t.path().join("archive").display());
    let mut rows = ROWS;
    rows[0].2 = "(Archive)";
    let server = gmail_listing(
        &t.path().join("s"),
        &rows,
        Vec::new(),
        &[r#"(\HasNoChildren) "/" "Archive""#],
    );
    backup(&server, &archive, &[]).assert_code(0);
    let got = listed(&archive);
    assert_eq!(got.get("Archive"), Some(&1), "{got:?}");
    assert_eq!(got.get("Archive (only in All Mail)"), Some(&1), "{got:?}");
}

#[test]
fn gmail_folder_choices_that_store_messages_again_or_do_nothing_are_warned_about() {
    let t = tempfile::tempdir().unwrap();
    let folder_warning = "Gmail backed up folder by folder because --folder/--exclude was given, `[Gmail]/All Mail` included: each message is stored once per folder it is in and again in All Mail (without --folder/--exclude a Gmail account is backed up by label, each message once; or add --exclude '[Gmail]/All Mail', or --dedup)";
    let warnings = |run: &Run| -> Vec<String> {
        run.report["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| w.as_str().unwrap().to_string())
            .collect()
    };
    // --exclude of Spam alone (left out by label anyway): folder by folder, All Mail included.
    let server = gmail_folders(&t.path().join("s1"));
    let account = format!("alice@{}", server.addr());
    let run = backup(
        &server,
        &format!("maildir:{}", t.path().join("a1").display()),
        &["--exclude", "[Gmail]/Spam", "--jobs", "1"],
    );
    run.assert_code(0);
    assert_eq!(
        warnings(&run),
        [format!("{account}: {folder_warning}")],
        "{run:#?}"
    );
    // All Mail excluded, or the only folder asked for, or --gmail-folders: as asked, no word.
    for (n, extra) in [
        &["--exclude", "[Gmail]/All Mail"][..],
        &["--folder", "[Gmail]/All Mail"],
        &["--exclude", "[Gmail]/Spam", "--gmail-folders"],
    ]
    .into_iter()
    .enumerate()
    {
        let server = gmail_folders(&t.path().join(format!("s2{n}")));
        let mut args = extra.to_vec();
        args.extend(["--jobs", "1"]);
        let run = backup(
            &server,
            &format!("maildir:{}", t.path().join(format!("a2{n}")).display()),
            &args,
        );
        run.assert_code(0);
        assert_eq!(warnings(&run), Vec::<String>::new(), "{extra:?}: {run:#?}");
    }
    // --dedup on a backup by label: nothing to do, said once.
    let server = gmail(&t.path().join("s3"), &ROWS);
    let run = backup(
        &server,
        &format!("maildir:{}", t.path().join("a3").display()),
        &["--dedup"],
    );
    run.assert_code(0);
    assert_eq!(
        warnings(&run),
        [format!(
            "alice@{}: --dedup has no effect on a Gmail backup by label: each message is stored once already",
            server.addr()
        )]
    );
}

#[test]
fn an_unchanged_gmail_account_is_not_listed_again() {
    // With CONDSTORE, HIGHESTMODSEQ moves with every label or flag change: a nightly run on an
    // unchanged account costs a STATUS, not a listing of All Mail.
    let t = tempfile::tempdir().unwrap();
    let archive = format!("maildir:{}", t.path().join("archive").display());
    let run = backup(
        &gmail_script(&t.path().join("s1"), &ROWS, Vec::new(), &[], Some(700)),
        &archive,
        &[],
    );
    run.assert_code(0);
    assert_eq!(run.n("fetched"), 5, "{run:#?}");
    let server = gmail_script(&t.path().join("s2"), &ROWS, Vec::new(), &[], Some(700));
    let again = backup(&server, &archive, &[]);
    again.assert_code(0);
    assert_eq!(
        (
            again.n("listed"),
            again.n("fetched"),
            again.n("already_archived")
        ),
        (5, 0, 5),
        "{again:#?}"
    );
    let fetches = server
        .commands()
        .iter()
        .filter(|c| c.starts_with("UID FETCH") || c.starts_with("EXAMINE"))
        .count();
    assert_eq!(fetches, 0, "{:?}", server.commands());
    // A label change moves HIGHESTMODSEQ: listed, brought in without a body.
    let mut rows = ROWS;
    rows[3].2 = r#"("\\Inbox")"#;
    let server = gmail_script(&t.path().join("s3"), &rows, Vec::new(), &[], Some(705));
    let changed = backup(&server, &archive, &[]);
    changed.assert_code(0);
    assert_eq!(
        (changed.n("fetched"), changed.n("flags_updated")),
        (0, 1),
        "{changed:#?}"
    );
    assert_eq!(listed(&archive).get("INBOX"), Some(&3));
}

#[test]
fn gmail_throttling_a_body_fetch_ends_the_run_to_try_later_without_asking_per_message() {
    // `NO [UNAVAILABLE]` is about the server, not the messages: no message-by-message retry,
    // exit 4 (try later), what was stored is kept.
    let t = tempfile::tempdir().unwrap();
    let archive = format!("maildir:{}", t.path().join("archive").display());
    let server = gmail_with(
        &t.path().join("s"),
        &ROWS,
        vec![Fault::Reply {
            command: "FETCH".into(),
            nth: 2,
            reply: support::fake_imap::Reply::No("[UNAVAILABLE] Try again later".into()),
        }],
    );
    let run = backup(&server, &archive, &[]);
    run.assert_code(4);
    let bodies = server
        .commands()
        .iter()
        .filter(|c| c.contains("BODY.PEEK"))
        .count();
    assert_eq!(bodies, 1, "{:?}", server.commands());
}
