//! `--dedup` archives hold one copy of a message that several mailboxes have (Gmail's labels
//! as folders, All Mail): the ledger records every mailbox it is in, with that mailbox's
//! flags. Every reader of the archive honours every recorded membership (issue 17): a restore
//! puts the message back in each of its mailboxes with that mailbox's flags and date, and
//! `list`, `convert` and `export` count and write it in each. (They used to put it only in
//! the folder holding its file: a restored INBOX held 1 of its 3 messages.)
//!
//! A real Dovecot account (Maildir) holds one message in INBOX (seen), Work (flagged) and All
//! Mail, one in INBOX and All Mail, and one only in All Mail; it is backed up with `--dedup`
//! into Maildir and into mbox, then restored into a second account, converted, listed and
//! exported, each compared with the source account mailbox by mailbox.

mod support;

use std::collections::BTreeMap;
use std::path::Path;

use support::dovecot::{Dovecot, User};
use support::run::{dovecot_mailbox, Run};

const PW: &str = "MAILKEEP_DEDUP_PW";

fn message(tag: &str) -> Vec<u8> {
    format!(
        "From: a@example.org\nTo: b@example.org\nSubject: {tag}\nMessage-ID: <{tag}@dedup>\nDate: Tue, 4 Mar 2014 10:00:00 +0100\n\nbody of {tag}\n"
    )
    .into_bytes()
}

/// The source account: (mailbox, message, Maildir flags, INTERNALDATE).
fn seed(u: &User) {
    let rows: [(&str, &str, &str, i64); 6] = [
        ("INBOX", "shared", "S", 1_650_000_000),
        ("INBOX", "twice", "", 1_650_000_100),
        ("Work", "shared", "F", 1_650_000_000),
        ("All Mail", "shared", "", 1_650_000_000),
        ("All Mail", "twice", "S", 1_650_000_100),
        ("All Mail", "only", "", 1_650_000_200),
    ];
    for (mailbox, tag, flags, date) in rows {
        u.seed_message(mailbox, &message(tag), flags, Some(date));
    }
}

/// A mailbox as stored by Dovecot: (bytes, Maildir flags, INTERNALDATE) per message.
type Stored = Vec<(Vec<u8>, String, i64)>;

const MAILBOXES: [&str; 3] = ["INBOX", "Work", "All Mail"];

fn mailkeep(args: &[&str], password: &str, state: &Path) -> Run {
    let mut cmd = support::mailkeep();
    cmd.args(args);
    if !password.is_empty() {
        cmd.args(["--password-env", PW]).env(PW, password);
    }
    let out = cmd
        .arg("--json")
        .env("XDG_STATE_HOME", state)
        .output()
        .unwrap();
    Run::from_output(out)
}

fn with_ca<'a>(d: &'a Dovecot, args: &[&'a str]) -> Vec<&'a str> {
    let mut v = args.to_vec();
    v.push("--tls-ca");
    v.push(d.ca_pem.to_str().unwrap());
    v
}

/// Per mailbox: how many messages `list --json` counts.
fn listed(archive: &str, state: &Path) -> BTreeMap<String, u64> {
    let run = mailkeep(&["list", archive], "", state);
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

#[test]
fn a_dedup_archive_restores_converts_lists_and_exports_every_membership() {
    let d = Dovecot::start();
    let src = d.add_user("dedupsrc", "src-pw");
    seed(&src);
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    let want: BTreeMap<&str, Stored> = MAILBOXES
        .iter()
        .map(|m| (*m, dovecot_mailbox(&src, m)))
        .collect();
    for (n, kind) in ["maildir", "mbox"].iter().enumerate() {
        let archive = format!("{kind}:{}", tmp.path().join(kind).display());
        let url = d.url("imaps", &src);
        let run = mailkeep(
            &with_ca(&d, &["backup", &url, &archive, "--dedup", "--jobs", "1"]),
            &src.password,
            &state,
        );
        run.assert_code(0);
        assert_eq!((run.n("listed"), run.n("fetched")), (6, 6), "{run:#?}");

        // verify: every record's copy is there.
        mailkeep(&["verify", &archive], "", &state).assert_code(0);
        // list: each mailbox counts every message recorded in it.
        let counts = listed(&archive, &state);
        assert_eq!(
            counts,
            BTreeMap::from([
                ("All Mail".to_string(), 3),
                ("INBOX".to_string(), 2),
                ("Work".to_string(), 1)
            ]),
            "{kind}"
        );

        // restore: each mailbox of the new account as in the source, flags and dates too.
        let dst = d.add_user(&format!("dedupdst{n}"), "dst-pw");
        let url = d.url("imaps", &dst);
        let run = mailkeep(
            &with_ca(&d, &["restore", &archive, &url]),
            &dst.password,
            &state,
        );
        run.assert_code(0);
        assert_eq!(run.n("uploaded"), 6, "{kind}: {run:#?}");
        for m in MAILBOXES {
            assert_eq!(dovecot_mailbox(&dst, m), want[m], "{kind}: restored {m}");
        }
        // A rerun appends nothing.
        let again = mailkeep(
            &with_ca(&d, &["restore", &archive, &url]),
            &dst.password,
            &state,
        );
        again.assert_code(0);
        assert_eq!(again.n("uploaded"), 0, "{kind}: {again:#?}");

        // convert into a plain Maildir: one file per membership, each with its flags.
        let plain = tmp.path().join(format!("{kind}-plain"));
        let run = mailkeep(
            &["convert", &archive, &format!("maildir:{}", plain.display())],
            "",
            &state,
        );
        run.assert_code(0);
        assert_eq!(
            listed(&format!("maildir:{}", plain.display()), &state),
            counts,
            "{kind}: converted"
        );
        let plain_inbox = support::run::maildir_messages(&plain);
        let mut flags: Vec<String> = plain_inbox
            .iter()
            .map(|(name, _)| {
                name.split_once(":2,")
                    .map(|x| x.1)
                    .unwrap_or("")
                    .to_string()
            })
            .collect();
        flags.sort();
        assert_eq!(flags, ["", "S"], "{kind}: converted INBOX flags");

        // export: one .eml per membership.
        let out = tmp.path().join(format!("{kind}-export"));
        let run = mailkeep(
            &["export", &archive, "--to", out.to_str().unwrap()],
            "",
            &state,
        );
        run.assert_code(0);
        let per_folder: BTreeMap<String, usize> = ["INBOX", "Work", "All Mail"]
            .iter()
            .map(|m| {
                let dir = out.join(m);
                let n = std::fs::read_dir(&dir)
                    .map(|r| r.count())
                    .unwrap_or_default();
                (m.to_string(), n)
            })
            .collect();
        assert_eq!(
            per_folder,
            BTreeMap::from([
                ("All Mail".to_string(), 3),
                ("INBOX".to_string(), 2),
                ("Work".to_string(), 1)
            ]),
            "{kind}: exported"
        );
    }
}

/// A ledger naming locations outside the archive (`../`, absolute, a symbolic link to a
/// folder outside) never makes a reader read there: those records' messages are vanished.
#[test]
fn a_hostile_ledger_never_makes_a_reader_leave_the_archive() {
    use mailkeep::archive::ledger::{Ledger, Record};
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("archive");
    for d in ["cur", "new", "tmp", "mailkeep"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    let own = b"Subject: mine\n\nmine\n".to_vec();
    std::fs::write(root.join("cur/1.own:2,S"), &own).unwrap();
    let outside = tmp.path().join("outside/cur");
    std::fs::create_dir_all(&outside).unwrap();
    let secret = b"Subject: secret\n\nsecret\n".to_vec();
    std::fs::write(outside.join("2.secret:2,S"), &secret).unwrap();
    // A folder of the archive that is a symbolic link to the outside one.
    std::os::unix::fs::symlink(tmp.path().join("outside"), root.join(".Linked")).unwrap();
    let sha = |b: &[u8]| support::run::digests([b]).remove(0);
    let rec = |mailbox: &str, id: &str, location: &str, bytes: &[u8]| Record {
        account: "imap:a@h".into(),
        mailbox: mailbox.into(),
        uidl: None,
        uidvalidity: Some(1),
        uid: Some(1),
        identity: id.into(),
        size: bytes.len() as u64,
        wire_size: None,
        sha256: sha(bytes),
        internal_date: 1_400_000_000,
        flags: "\\Seen".into(),
        location: location.into(),
        stored_at: 1,
        verified: true,
    };
    let mut l = Ledger::open(&root.join("mailkeep/ledger.sqlite")).unwrap();
    l.record_batch(
        &[
            rec("INBOX", "own", "cur/1.own", &own),
            rec("INBOX", "up", "../outside/cur/2.secret", &secret),
            rec(
                "Evil",
                "abs",
                &format!("{}/cur/2.secret", tmp.path().join("outside").display()),
                &secret,
            ),
            rec("Linked", "link", ".Linked/cur/2.secret", &secret),
        ],
        &[],
    )
    .unwrap();
    drop(l);
    let state = tmp.path().join("state");
    let archive = format!("maildir:{}", root.display());
    let run = mailkeep(&["list", &archive], "", &state);
    run.assert_code(0);
    let total: u64 = run.report["mailboxes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["messages"].as_u64().unwrap())
        .sum();
    assert_eq!(total, 1, "{run:#?}");
    let out = tmp.path().join("export");
    mailkeep(
        &["export", &archive, "--to", out.to_str().unwrap()],
        "",
        &state,
    );
    let mut exported = Vec::new();
    let mut dirs = vec![out.clone()];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten() {
            let p = e.unwrap().path();
            if p.is_dir() {
                dirs.push(p);
            } else {
                exported.push(std::fs::read(&p).unwrap());
            }
        }
    }
    assert!(
        exported
            .iter()
            .all(|b| !b.windows(6).any(|w| w == b"secret")),
        "read outside the archive"
    );
    assert_eq!(exported.len(), 1);
}
