//! `mailkeep backup SOURCE zip:X.zip` against a real Dovecot (issue 5): a complete snapshot
//! with exact bytes, flags, keywords and INTERNALDATEs per folder; a rerun fetches nothing and
//! leaves the zip as it was; a new message is added to the zip without fetching the others.

mod support;

use std::collections::BTreeMap;
use std::path::Path;

use mailkeep::archive::reader as source;
use mailkeep::archive::zip::reader::ZipProblem;
use support::dovecot::{Dovecot, User};
use support::run::{ledger_state, Run};

const PW_VAR: &str = "MAILKEEP_TEST_PASSWORD";

fn backup(d: &Dovecot, scheme: &str, u: &User, archive: &str) -> Run {
    let out = support::mailkeep()
        .args(["backup", &d.url(scheme, u), archive, "--json", "--tls-ca"])
        .arg(&d.ca_pem)
        .args(["--password-env", PW_VAR])
        .env(PW_VAR, &u.password)
        .output()
        .unwrap();
    Run::from_output(out)
}

/// A zip's messages per mailbox: sorted (sha256, sorted flags, INTERNALDATE), as read back.
fn zip_state(zip: &Path) -> BTreeMap<String, Vec<(String, Vec<String>, i64)>> {
    let mut src = source::open(&format!("zip:{}", zip.display())).unwrap();
    let mut out: BTreeMap<String, Vec<_>> = BTreeMap::new();
    for mb in src.mailboxes().unwrap() {
        let mut v = Vec::new();
        src.messages(&mb, &mut |m| {
            let mut flags: Vec<String> = m
                .flags
                .to_imap_list()
                .split_whitespace()
                .map(str::to_string)
                .collect();
            flags.sort();
            v.push((m.sha256.clone(), flags, m.internal_date.unwrap()));
            Ok(())
        })
        .unwrap();
        v.sort();
        if !v.is_empty() {
            out.insert(mb.to_string(), v);
        }
    }
    out
}

fn seed(u: &User) -> usize {
    let folders = ["INBOX", "Sent", "Archive/2023", "日本語"];
    let infos = ["", "S", "FS", "RS", "DS"];
    let corpus = support::corpus::all();
    let mut n = 0;
    for (i, m) in corpus.iter().skip(3).step_by(61).enumerate() {
        u.seed_message(
            folders[i % folders.len()],
            &m.raw,
            infos[i % infos.len()],
            Some(1_400_000_000 + i as i64 * 86_400),
        );
        n += 1;
    }
    n
}

#[test]
fn imap_backup_into_zip_is_a_complete_snapshot_and_reruns_fetch_only_new_mail() {
    let d = Dovecot::start();
    let u = d.add_user("zipper", "zip-pw");
    let total = seed(&u) as u64;
    let tmp = tempfile::tempdir().unwrap();
    let zip = tmp.path().join("mail.zip");
    let zip_arg = format!("zip:{}", zip.display());
    let maildir = tmp.path().join("md");

    let run = backup(&d, "imaps", &u, &zip_arg);
    run.assert_code(0);
    assert_eq!(run.report["command"], "backup");
    assert_eq!(run.n("written"), total, "{run:#?}");
    assert!(!tmp.path().join("mail.zip.partial").exists());
    assert_eq!(
        mailkeep::archive::zip::reader::check(&zip).unwrap(),
        Vec::<ZipProblem>::new()
    );

    // The same as an incremental Maildir backup of the account: folders, bytes, flags, dates.
    backup(&d, "imaps", &u, &format!("maildir:{}", maildir.display())).assert_code(0);
    assert_eq!(zip_state(&zip), ledger_state(&maildir));

    // Nothing new: nothing fetched, the zip not rewritten.
    let before = std::fs::read(&zip).unwrap();
    let again = backup(&d, "imaps", &u, &zip_arg);
    again.assert_code(0);
    assert_eq!(again.n("written"), 0, "{again:#?}");
    assert_eq!(again.n("already_present"), total);
    assert_eq!(std::fs::read(&zip).unwrap(), before);

    // One new message: only it is fetched; the zip holds all.
    u.seed_message(
        "Sent",
        b"From: z@example.org\nSubject: new\nMessage-ID: <zip-new@example.org>\n\nnew\n",
        "S",
        Some(1_700_000_000),
    );
    let newer = backup(&d, "imaps", &u, &zip_arg);
    newer.assert_code(0);
    assert_eq!(newer.n("written"), 1, "{newer:#?}");
    assert_eq!(newer.n("already_present"), total);
    assert_eq!(
        zip_state(&zip).values().map(Vec::len).sum::<usize>() as u64,
        total + 1
    );
    assert_eq!(
        mailkeep::archive::zip::reader::check(&zip).unwrap(),
        Vec::<ZipProblem>::new()
    );
}

#[test]
fn pop3_backup_into_zip_and_usage_errors() {
    let d = Dovecot::start();
    let u = d.add_user("popzip", "zip-pw");
    let corpus = support::corpus::all();
    let picked: Vec<_> = corpus.iter().step_by(211).collect();
    for m in &picked {
        u.seed_message("INBOX", &m.raw, "", None);
    }
    let tmp = tempfile::tempdir().unwrap();
    let zip = tmp.path().join("pop.zip");
    let zip_arg = format!("zip:{}", zip.display());
    let run = backup(&d, "pop3s", &u, &zip_arg);
    run.assert_code(0);
    assert_eq!(run.n("written"), picked.len() as u64, "{run:#?}");
    let mut want: Vec<String> = picked
        .iter()
        .map(|m| {
            support::run::digests([mailkeep::core::message::normalize(&m.raw).as_slice()]).remove(0)
        })
        .collect();
    want.sort();
    let got: Vec<String> = zip_state(&zip)["INBOX"]
        .iter()
        .map(|(s, _, _)| s.clone())
        .collect();
    assert_eq!(got, want);
    let again = backup(&d, "pop3s", &u, &zip_arg);
    assert_eq!(again.n("written"), 0, "{again:#?}");

    for (extra, part) in [
        ("--delete-after-backup", "a zip is a snapshot"),
        ("--mirror", "a zip is a snapshot"),
    ] {
        let out = support::mailkeep()
            .args(["backup", &d.url("pop3s", &u), &zip_arg, extra])
            .args(["--password-env", PW_VAR])
            .env(PW_VAR, &u.password)
            .output()
            .unwrap();
        Run::from_output(out)
            .assert_code(2)
            .assert_one_line_error(&[part]);
    }
}

/// A `--folder` that matches no mailbox is a usage error for a zip too (exit 2, no zip
/// written), as for Maildir and mbox: a typo in a cron job must not back up nothing, silently.
#[test]
fn a_folder_that_matches_nothing_is_a_usage_error_and_writes_no_zip() {
    let d = Dovecot::start();
    let u = d.add_user("zipnofolder", "zip-pw");
    seed(&u);
    let tmp = tempfile::tempdir().unwrap();
    let zip = tmp.path().join("a.zip");
    let out = support::mailkeep()
        .args([
            "backup",
            &d.url("imaps", &u),
            &format!("zip:{}", zip.display()),
        ])
        .args(["--folder", "Nope", "--tls-ca"])
        .arg(&d.ca_pem)
        .args(["--password-env", PW_VAR])
        .env(PW_VAR, &u.password)
        .output()
        .unwrap();
    let r = Run::from_output(out);
    r.assert_code(2);
    r.assert_one_line_error(&[
        "zipnofolder@127.0.0.1",
        "no mailbox matches --folder `Nope` (",
    ]);
    assert!(!zip.exists());
}
