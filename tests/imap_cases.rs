//! IMAP backup against the scripted fake server, for what Dovecot will not produce on demand:
//! shared/cases 17 (FETCH literals in unusual places), 13 (UIDVALIDITY change between runs)
//! and 25 (a 43 MB message, with bounded memory).

mod support;

use std::path::{Path, PathBuf};

use mailkeep::core::message::normalize;
use support::fake_imap::FakeImap;
use support::run::{maildir_messages, mbox_messages, Run};

const PW: &str = "MAILKEEP_IMAP_CASES_PW";

fn case_dir(name: &str) -> PathBuf {
    support::corpus_dir().join("../cases").join(name)
}

fn backup(server: &FakeImap, archive: &str) -> Run {
    let out = support::mailkeep()
        .arg("backup")
        .arg(format!("imap://alice@{}", server.addr()))
        .arg(archive)
        .args([
            "--allow-plaintext",
            "--password-env",
            PW,
            "--json",
            "--timeout",
            "30",
        ])
        .env(PW, "secret")
        .output()
        .unwrap();
    Run::from_output(out)
}

fn ledger_rows(dir: &Path) -> Vec<(String, String, i64, String)> {
    let db = rusqlite::Connection::open(dir.join("mailkeep/ledger.sqlite")).unwrap();
    let mut st = db
        .prepare("SELECT mailbox, flags, internal_date, sha256 FROM messages ORDER BY uid")
        .unwrap();
    st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

#[test]
fn case_17_fetch_literals_in_unusual_places() {
    let case = case_dir("17-fetch-literals-in-unusual-places");
    let eml = |n: &str| normalize(&std::fs::read(case.join(n)).unwrap());
    let t = tempfile::tempdir().unwrap();
    for kind in ["maildir", "mbox"] {
        let server = FakeImap::from_transcript(&case.join("server-fetch.txt"));
        let dir = t.path().join(kind);
        let run = backup(&server, &format!("{kind}:{}", dir.display()));
        run.assert_code(0);
        assert_eq!(run.n("fetched"), 3, "{run:#?}");
        assert!(run.report["failures"].as_array().unwrap().is_empty());
        let rows = ledger_rows(&dir);
        let flags: Vec<&str> = rows.iter().map(|r| r.1.as_str()).collect();
        assert_eq!(flags, ["\\Seen", "", "\\Seen \\Flagged"], "{kind}");
        let dates: Vec<i64> = rows.iter().map(|r| r.2).collect();
        // 03-Mar-2025 08:00:03, 09:00:04, 10:00:05 +0000
        assert_eq!(
            dates,
            [1_740_988_803, 1_740_992_404, 1_740_996_005],
            "{kind}"
        );
        if kind == "maildir" {
            let files = maildir_messages(&dir);
            let mut by_date: Vec<_> = files.iter().collect();
            by_date.sort();
            let infos: Vec<&str> = by_date
                .iter()
                .map(|(n, _)| n.rsplit(":2,").next().unwrap())
                .collect();
            assert_eq!(infos, ["S", "", "FS"]);
            let bodies: Vec<Vec<u8>> = by_date.iter().map(|(_, b)| b.clone()).collect();
            assert_eq!(bodies, [eml("a.eml"), eml("b.eml"), eml("c.eml")]);
        } else {
            assert_eq!(
                mbox_messages(&dir.join("INBOX.mbox")),
                [eml("a.eml"), eml("b.eml"), eml("c.eml")]
            );
        }
    }
}

#[test]
fn case_13_uidvalidity_change_rekeys_without_duplicates() {
    let case = case_dir("13-uidvalidity-change-between-runs");
    let eml = |n: &str| normalize(&std::fs::read(case.join(n)).unwrap());
    let t = tempfile::tempdir().unwrap();
    for kind in ["maildir", "mbox"] {
        let server = FakeImap::from_transcript(&case.join("server-runs.txt"));
        let dir = t.path().join(kind);
        let arch = format!("{kind}:{}", dir.display());
        let r1 = backup(&server, &arch);
        r1.assert_code(0);
        assert_eq!(r1.n("fetched"), 3, "{r1:#?}");
        let r2 = backup(&server, &arch);
        r2.assert_code(0);
        assert_eq!(
            (r2.n("fetched"), r2.n("already_archived")),
            (1, 3),
            "{r2:#?}"
        );
        let warnings = r2.report["warnings"].to_string();
        assert!(
            warnings.contains("UIDVALIDITY changed from 3857529045 to 3857530000"),
            "{warnings}"
        );
        // Run 2 fetches the bodies after the change (size and date are no proof of identity) and
        // stores only m4: m1-m3 are matched to the archive by SHA-256.
        let body_fetches: Vec<String> = server
            .commands_in(2)
            .into_iter()
            .filter(|c| c.contains("BODY.PEEK[]"))
            .collect();
        assert_eq!(body_fetches.len(), 1, "{body_fetches:?}");
        let stored = match kind {
            "maildir" => maildir_messages(&dir.join(".Archive"))
                .into_iter()
                .map(|(_, b)| b)
                .collect::<Vec<_>>(),
            _ => mbox_messages(&dir.join("Archive.mbox")),
        };
        let mut got = support::run::digests(stored.iter().map(Vec::as_slice));
        got.dedup();
        let want = support::run::digests(
            ["m1.eml", "m2.eml", "m3.eml", "m4.eml"]
                .map(eml)
                .iter()
                .map(Vec::as_slice),
        );
        assert_eq!(
            (stored.len(), got),
            (4, want),
            "{kind}: 4 messages, each once"
        );
        // One local folder for `Archive`.
        let folders: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n != "mailkeep" && !["cur", "new", "tmp"].contains(&n.as_str()))
            .collect();
        assert_eq!(folders.len(), 1, "{kind}: {folders:?}");
        let r3 = backup(&server, &arch);
        r3.assert_code(0);
        assert_eq!(r3.n("fetched"), 0, "{r3:#?}");
        assert!(
            !server
                .commands_in(3)
                .iter()
                .any(|c| c.contains("BODY.PEEK[]")),
            "run 3 fetched a body"
        );
    }
}

/// Peak resident memory of the largest child this process has waited for, in KiB.
fn children_max_rss_kib() -> i64 {
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut ru) };
    ru.ru_maxrss
}

#[test]
fn case_25_a_43_mb_message_is_archived_exactly_with_bounded_memory() {
    let case = case_dir("25-very-large-message");
    let t = tempfile::tempdir().unwrap();
    let base = t.path().join("files");
    std::fs::create_dir(&base).unwrap();
    let status = std::process::Command::new("python3")
        .arg(case.join("make-large.py"))
        .arg(base.join("large.eml"))
        .status()
        .unwrap();
    assert!(status.success());
    std::fs::copy(case.join("small.eml"), base.join("small.eml")).unwrap();
    let script = std::fs::read_to_string(case.join("source-server.txt")).unwrap();
    let server = FakeImap::from_str(&script, &base);
    let dir = t.path().join("a");
    let run = backup(&server, &format!("maildir:{}", dir.display()));
    run.assert_code(0);
    assert_eq!(run.n("fetched"), 2, "{run:#?}");
    let rows = ledger_rows(&dir);
    let large = normalize(&std::fs::read(base.join("large.eml")).unwrap());
    use sha2::Digest;
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].3, hex::encode(sha2::Sha256::digest(&large)));
    assert_eq!(
        rows[1].3,
        hex::encode(sha2::Sha256::digest(normalize(
            &std::fs::read(base.join("small.eml")).unwrap()
        )))
    );
    let rss_mib = children_max_rss_kib() / 1024;
    eprintln!("case 25: peak RSS of mailkeep (and any other child) {rss_mib} MiB for a 43,047,373-octet message");
    assert!(
        rss_mib < 123,
        "peak RSS {rss_mib} MiB is not below 3x the message size"
    );
}

/// `--oauth2-token-command`: the token comes from the command, mailkeep authenticates with
/// SASL XOAUTH2 (or OAUTHBEARER), and the token shows nowhere in its output.
#[test]
fn oauth2_token_command_authenticates_with_xoauth2_and_never_prints_the_token() {
    let case = case_dir("17-fetch-literals-in-unusual-places");
    let script = std::fs::read_to_string(case.join("server-fetch.txt"))
        .unwrap()
        .replace(
            "S: * OK [CAPABILITY IMAP4rev1] ready",
            "S: * OK [CAPABILITY IMAP4rev1 AUTH=XOAUTH2 AUTH=OAUTHBEARER] ready",
        );
    for (auth, mech) in [(None, "XOAUTH2"), (Some("oauthbearer"), "OAUTHBEARER")] {
        let server = FakeImap::from_str(&script, &case);
        let t = tempfile::tempdir().unwrap();
        let mut cmd = support::mailkeep();
        cmd.arg("backup")
            .arg(format!("imap://alice@{}", server.addr()))
            .arg(format!("maildir:{}", t.path().join("a").display()))
            .args(["--allow-plaintext", "--json"])
            .args(["--oauth2-token-command", "echo ya29.SECRET-TOKEN"]);
        if let Some(a) = auth {
            cmd.args(["--auth", a]);
        }
        let run = Run::from_output(cmd.output().unwrap());
        run.assert_code(0);
        assert_eq!(run.n("fetched"), 3, "{run:#?}");
        let commands = server.commands();
        assert!(
            commands
                .iter()
                .any(|c| c.starts_with(&format!("AUTHENTICATE {mech}"))),
            "{commands:?}"
        );
        assert!(
            !commands.iter().any(|c| c.starts_with("LOGIN")),
            "{commands:?}"
        );
        assert!(!run.stdout.contains("SECRET-TOKEN") && !run.stderr.contains("SECRET-TOKEN"));
    }
}
