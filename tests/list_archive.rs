//! `mailkeep list ARCHIVE` (issue 5): mailboxes with exact counts, sizes and date ranges of an
//! archive made by a real backup, in Maildir and mbox, named by kind or by bare path; `--messages`
//! with the headers of shared/cases/09 (ISO-2022-JP, Shift_JIS, UTF-8 split inside a
//! character) decoded exactly as `expected-decoded.tsv` says, aligned by display width.

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use mailkeep::core::message::normalize;
use support::dovecot::Dovecot;
use support::run::Run;

const PW_VAR: &str = "MAILKEEP_TEST_PASSWORD";

fn mailkeep(args: &[&str]) -> Run {
    Run::from_output(support::mailkeep().args(args).output().unwrap())
}

fn case09_dir() -> PathBuf {
    support::corpus_dir().join("../cases/09-japanese-iso2022jp-sjis-encoded-words")
}

/// `expected-decoded.tsv`: file -> header -> decoded text.
fn expected_decoded() -> BTreeMap<String, BTreeMap<String, String>> {
    let tsv = std::fs::read_to_string(case09_dir().join("expected-decoded.tsv")).unwrap();
    let mut out: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for line in tsv.lines().filter(|l| !l.is_empty()) {
        let cols: Vec<&str> = line.split('\t').collect();
        assert_eq!(cols.len(), 3, "{line}");
        out.entry(cols[0].into())
            .or_default()
            .insert(cols[1].into(), cols[2].into());
    }
    out
}

fn sha256_hex(b: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(b))
}

/// Display width as a terminal shows it (CJK two columns).
fn width(s: &str) -> usize {
    unicode_width::UnicodeWidthStr::width(s)
}

const CASE09: [&str; 3] = ["iso2022jp.eml", "split-utf8.eml", "sjis.eml"];

/// INBOX: two small messages; `日本語`: the three case-09 messages. Returns what was seeded
/// per mailbox as (stored bytes, INTERNALDATE), in seeding order.
fn seed(u: &support::dovecot::User) -> BTreeMap<&'static str, Vec<(Vec<u8>, i64)>> {
    let mut out: BTreeMap<&str, Vec<(Vec<u8>, i64)>> = BTreeMap::new();
    let inbox = [
        (
            b"From: alice@example.org\nSubject: first\n\nhello\n".to_vec(),
            1_680_340_000,
        ),
        (
            b"From: bob@example.org\nSubject: second\n\nworld, a longer body\n".to_vec(),
            1_706_799_600,
        ),
    ];
    for (raw, date) in inbox {
        u.seed_message("INBOX", &raw, "S", Some(date));
        out.entry("INBOX")
            .or_default()
            .push((normalize(&raw), date));
    }
    for (i, name) in CASE09.iter().enumerate() {
        let raw = std::fs::read(case09_dir().join(name)).unwrap();
        let date = 1_741_565_700 + i as i64 * 3600;
        u.seed_message("日本語", &raw, "", Some(date));
        out.entry("日本語")
            .or_default()
            .push((normalize(&raw), date));
    }
    out
}

#[test]
fn list_archive_counts_sizes_dates_and_decodes_case_09() {
    let d = Dovecot::start();
    let u = d.add_user("lister", "l1st-pw");
    let seeded = seed(&u);
    let tmp = tempfile::tempdir().unwrap();
    let maildir = tmp.path().join("maildir");
    let mbox = tmp.path().join("mbox");
    for (kind, dir) in [("maildir", &maildir), ("mbox", &mbox)] {
        let run = Run::from_output(
            support::mailkeep()
                .arg("backup")
                .arg(d.url("imaps", &u))
                .arg(format!("{kind}:{}", dir.display()))
                .arg("--tls-ca")
                .arg(&d.ca_pem)
                .args(["--password-env", PW_VAR, "--json"])
                .env(PW_VAR, &u.password)
                .output()
                .unwrap(),
        );
        run.assert_code(0);
    }

    // The summary, by bare path (the archive's kind file) and by kind: exact figures.
    let size = |mb: &str| seeded[mb].iter().map(|(b, _)| b.len() as u64).sum::<u64>();
    let inbox_size = size("INBOX");
    let jp_size = size("日本語");
    for (arg, kind, dir) in [
        (maildir.display().to_string(), "maildir", &maildir),
        (format!("mbox:{}", mbox.display()), "mbox", &mbox),
    ] {
        let run = mailkeep(&["list", &arg, "--json"]);
        run.assert_code(0);
        let r = &run.report;
        assert_eq!(r["archive"], format!("{kind}:{}", dir.display()));
        let boxes: Vec<(String, u64, u64, String, String)> = r["mailboxes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| {
                (
                    m["mailbox"].as_str().unwrap().to_string(),
                    m["messages"].as_u64().unwrap(),
                    m["size"].as_u64().unwrap(),
                    m["first_date"].as_str().unwrap().to_string(),
                    m["last_date"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        assert_eq!(
            boxes,
            vec![
                (
                    "INBOX".to_string(),
                    2,
                    inbox_size,
                    "2023-04-01T09:06:40Z".to_string(),
                    "2024-02-01T15:00:00Z".to_string()
                ),
                (
                    "日本語".to_string(),
                    3,
                    jp_size,
                    "2025-03-10T00:15:00Z".to_string(),
                    "2025-03-10T02:15:00Z".to_string()
                ),
            ],
            "{kind}: {run:#?}"
        );
        assert_eq!(r["messages"], 5);
        assert_eq!(r["size"], inbox_size + jp_size);
        assert_eq!(r["first_date"], "2023-04-01T09:06:40Z");
        assert_eq!(r["last_date"], "2025-03-10T02:15:00Z");
        assert_eq!(r["undated"], 0);
        assert_eq!(r["skipped"], serde_json::json!([]));
        assert!(r.get("entries").is_none(), "entries only with --messages");
    }

    // The table.
    let run = mailkeep(&["list", &format!("maildir:{}", maildir.display())]);
    run.assert_code(0);
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines.len(), 4, "{}", run.stdout);
    let cols = |l: &str| l.split_whitespace().map(str::to_string).collect::<Vec<_>>();
    assert_eq!(
        cols(lines[0]),
        ["MAILBOX", "MESSAGES", "SIZE", "FIRST", "LAST"]
    );
    assert_eq!(cols(lines[1])[..2], ["INBOX".to_string(), "2".to_string()]);
    assert_eq!(cols(lines[1])[4..], ["2023-04-01", "2024-02-01"]);
    assert_eq!(cols(lines[2])[4..], ["2025-03-10", "2025-03-10"]);
    assert!(
        lines[3].starts_with("2 mailboxes, 5 messages, ")
            && lines[3].ends_with(", 2023-04-01 to 2025-03-10"),
        "{}",
        lines[3]
    );

    // --messages --json: the decoded headers, exactly.
    let expected = expected_decoded();
    let by_sha: BTreeMap<String, &str> = CASE09
        .iter()
        .map(|n| {
            let raw = std::fs::read(case09_dir().join(n)).unwrap();
            (sha256_hex(&normalize(&raw)), *n)
        })
        .collect();
    for arg in [
        format!("maildir:{}", maildir.display()),
        format!("mbox:{}", mbox.display()),
    ] {
        let run = mailkeep(&["list", &arg, "--messages", "--json"]);
        run.assert_code(0);
        let entries = run.report["entries"].as_array().unwrap();
        assert_eq!(entries.len(), 5);
        let mut seen = 0;
        for e in entries {
            let Some(file) = by_sha.get(e["sha256"].as_str().unwrap()) else {
                assert_eq!(e["mailbox"], "INBOX");
                continue;
            };
            seen += 1;
            assert_eq!(e["mailbox"], "日本語");
            let want = &expected[*file];
            assert_eq!(
                e["subject"].as_str(),
                Some(want["Subject"].as_str()),
                "{file}"
            );
            if let Some(name) = want.get("From display name") {
                assert_eq!(e["from_name"].as_str(), Some(name.as_str()), "{file}");
            }
            for field in ["subject", "from_name"] {
                let v = e[field].as_str().unwrap_or("");
                assert!(!v.contains("=?") && !v.contains('\u{fffd}'), "{file}: {v}");
            }
        }
        assert_eq!(seen, 3);
        let first = &entries[0];
        assert_eq!(first["mailbox"], "INBOX");
        assert_eq!(first["date"], "2023-04-01T09:06:40Z");
        assert_eq!(first["date_source"], "ledger");
        assert_eq!(first["flags"], serde_json::json!(["\\Seen"]));
        assert_eq!(first["from_address"], "alice@example.org");
        assert_eq!(first["subject"], "first");
        assert_eq!(first["size"], seeded["INBOX"][0].0.len() as u64);
    }

    // --messages as a table: the subjects, decoded, start at one display column.
    let run = mailkeep(&["list", &maildir.display().to_string(), "--messages"]);
    run.assert_code(0);
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines.len(), 7, "{}", run.stdout);
    let subject_col = |line: &str, subject: &str| {
        let at = line
            .find(subject)
            .unwrap_or_else(|| panic!("`{subject}` not in `{line}`"));
        width(&line[..at])
    };
    let col = subject_col(lines[0], "SUBJECT");
    assert_eq!(subject_col(lines[1], "first"), col);
    for (file, headers) in &expected {
        let subject = &headers["Subject"];
        let line = lines
            .iter()
            .find(|l| l.contains(subject.as_str()))
            .unwrap_or_else(|| panic!("{file}: `{subject}` not listed:\n{}", run.stdout));
        assert_eq!(subject_col(line, subject), col, "{file}: {line}");
        assert!(line.starts_with("日本語 "), "{line}");
        if let Some(name) = headers.get("From display name") {
            assert!(line.contains(name.as_str()), "{line}");
        }
    }
    assert!(
        lines[6].starts_with("2 mailboxes, 5 messages"),
        "{}",
        lines[6]
    );

    // --messages is for archives.
    mailkeep(&["list", &d.url("imaps", &u), "--messages"])
        .assert_code(2)
        .assert_one_line_error(&["--messages"]);
}

#[test]
fn list_any_kind_and_refuse_what_is_not_an_archive() {
    // eml: a folder of files (case 09 in a subfolder), no server needed.
    let tmp = tempfile::tempdir().unwrap();
    let eml = tmp.path().join("eml");
    std::fs::create_dir_all(eml.join("Japan")).unwrap();
    for n in CASE09 {
        std::fs::copy(case09_dir().join(n), eml.join("Japan").join(n)).unwrap();
    }
    let run = mailkeep(&[
        "list",
        &format!("eml:{}", eml.display()),
        "--messages",
        "--json",
    ]);
    run.assert_code(0);
    assert_eq!(run.report["messages"], 3);
    let subjects: Vec<&str> = run.report["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["subject"].as_str().unwrap())
        .collect();
    // eml files are read in name order: iso2022jp, sjis, split-utf8.
    let expected = expected_decoded();
    assert_eq!(
        subjects,
        [
            expected["iso2022jp.eml"]["Subject"].as_str(),
            expected["sjis.eml"]["Subject"].as_str(),
            expected["split-utf8.eml"]["Subject"].as_str()
        ]
    );

    // A folder that is not a mailkeep archive, a typo in the kind, a missing path.
    let plain = tmp.path().join("plain");
    std::fs::create_dir(&plain).unwrap();
    mailkeep(&["list", plain.to_str().unwrap()])
        .assert_code(2)
        .assert_one_line_error(&["is not a mailkeep archive", "maildir:PATH"]);
    mailkeep(&["list", "maildr:/x"])
        .assert_code(2)
        .assert_one_line_error(&["unknown archive kind `maildr:`"]);
    mailkeep(&[
        "list",
        &format!("maildir:{}", tmp.path().join("nope").display()),
    ])
    .assert_code(6)
    .assert_one_line_error(&["does not exist"]);
    assert!(!Path::new(&tmp.path().join("nope")).exists());
}

#[test]
fn list_shows_control_characters_in_mailbox_names_escaped_and_aligned() {
    // Folder names come from servers and other programs: a TAB or an escape sequence must not
    // break the columns nor reach the terminal. JSON keeps the exact name.
    let tmp = tempfile::tempdir().unwrap();
    let msg = std::fs::read(case09_dir().join("sjis.eml")).unwrap();
    for dir in ["tab\tx", "esc\u{1b}[31mred", "日本語"] {
        std::fs::create_dir_all(tmp.path().join(dir)).unwrap();
        std::fs::write(tmp.path().join(dir).join("m.eml"), &msg).unwrap();
    }
    let spec = format!("eml:{}", tmp.path().display());
    let run = mailkeep(&["list", &spec]);
    run.assert_code(0);
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(
        lines[..4],
        [
            "MAILBOX            MESSAGES        SIZE  FIRST       LAST",
            "esc\\u{1b}[31mred          1       363 B  2025-03-11  2025-03-11",
            "tab\\tx                    1       363 B  2025-03-11  2025-03-11",
            "日本語                    1       363 B  2025-03-11  2025-03-11",
        ]
    );
    assert!(!run.stdout.contains('\t') && !run.stdout.contains('\u{1b}'));
    let run = mailkeep(&["list", &spec, "--messages"]);
    run.assert_code(0);
    let rows: Vec<&str> = run.stdout.lines().skip(1).take(3).collect();
    let col = |row: &str| width(&row[..row.find("2025-03-11").unwrap()]);
    assert_eq!(
        rows.iter().map(|r| col(r)).collect::<Vec<_>>(),
        [18, 18, 18]
    );
    assert!(
        rows[1].starts_with("tab\\tx            2025-03-11 09:40"),
        "{}",
        rows[1]
    );
    let run = mailkeep(&["list", &spec, "--json"]);
    let names: Vec<&str> = run.report["mailboxes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["mailbox"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["esc\u{1b}[31mred", "tab\tx", "日本語"]);
}
