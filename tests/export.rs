//! `mailkeep export ARCHIVE --to DIR` (issue 5): an archive made by a real backup, exported
//! whole and through each filter (`--mailbox`, `--since`, `--before`, `--from`, `--subject` on
//! decoded headers), with exact file names, counts and bytes; files are never overwritten, a
//! rerun writes nothing, `--crlf` writes CRLF, and the archive is not changed.

mod support;

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use mailkeep::core::message::{lf_to_crlf, normalize};
use support::dovecot::Dovecot;
use support::run::{snapshot, Run};

const PW_VAR: &str = "MAILKEEP_TEST_PASSWORD";

fn mailkeep(args: &[&str]) -> Run {
    Run::from_output(support::mailkeep().args(args).output().unwrap())
}

fn sha8(b: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(b))[..8].to_string()
}

/// Every file under `dir` (relative path -> bytes).
fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    snapshot(dir)
        .into_iter()
        .map(|(k, (b, _))| (k, b))
        .collect()
}

struct Msg {
    mailbox: &'static str,
    raw: Vec<u8>,
    date: i64,
    /// The expected file name's date and slug.
    name: &'static str,
}

fn corpus() -> Vec<Msg> {
    let m = |mailbox, from: &str, subject: &str, date, name| Msg {
        mailbox,
        raw: format!("From: {from}\nTo: x@example.org\nSubject: {subject}\n\nbody of {subject}\n")
            .into_bytes(),
        date,
        name,
    };
    vec![
        m(
            "INBOX",
            "Alice Example <alice@example.org>",
            "Quarterly report Q1",
            1_680_340_000,
            "2023-04-01_quarterly-report-q1",
        ),
        m(
            "INBOX",
            "bob@example.org",
            "Lunch?",
            1_685_642_400,
            "2023-06-01_lunch",
        ),
        m(
            "INBOX",
            "alice@example.org",
            "Re: quarterly REPORT",
            1_706_799_600,
            "2024-02-01_re-quarterly-report",
        ),
        m(
            "Sent",
            "Alice Example <alice@example.org>",
            "Report draft",
            1_683_273_600,
            "2023-05-05_report-draft",
        ),
        m(
            "Sent",
            "=?UTF-8?Q?J=C3=BCrgen_M=C3=BCller?= <jm@example.de>",
            // 日本語の報告 (ISO-2022-JP)
            "=?ISO-2022-JP?B?GyRCRnxLXDhsJE5KczlwGyhC?=",
            1_688_731_200,
            "2023-07-07_日本語の報告",
        ),
    ]
}

fn export(archive: &str, to: &Path, extra: &[&str]) -> Run {
    let mut args = vec!["export", archive, "--to", to.to_str().unwrap(), "--json"];
    args.extend_from_slice(extra);
    mailkeep(&args)
}

#[test]
fn export_with_filters_writes_exact_files_and_never_overwrites() {
    let d = Dovecot::start();
    let u = d.add_user("exporter", "e-pw");
    let msgs = corpus();
    for m in &msgs {
        u.seed_message(m.mailbox, &m.raw, "S", Some(m.date));
    }
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("archive");
    let arg = format!("maildir:{}", root.display());
    let run = Run::from_output(
        support::mailkeep()
            .arg("backup")
            .arg(d.url("imaps", &u))
            .arg(&arg)
            .arg("--tls-ca")
            .arg(&d.ca_pem)
            .args(["--password-env", PW_VAR, "--json"])
            .env(PW_VAR, &u.password)
            .output()
            .unwrap(),
    );
    run.assert_code(0);
    drop(d);
    let archive_before = snapshot(&root);

    let expected_name = |m: &Msg| format!("{}/{}_{}.eml", m.mailbox, m.name, sha8(&m.raw));

    // Everything: one file per message, the stored bytes, the message's date as mtime.
    let all = tmp.path().join("all");
    let run = export(&arg, &all, &[]);
    run.assert_code(0);
    assert_eq!(
        (
            run.n("read"),
            run.n("matched"),
            run.n("written"),
            run.n("already_present")
        ),
        (5, 5, 5, 0)
    );
    let total: u64 = msgs.iter().map(|m| m.raw.len() as u64).sum();
    assert_eq!(run.n("bytes"), total);
    assert_eq!(run.report["line_ends"], "lf");
    assert_eq!(run.report["exit"], "ok");
    let want: BTreeMap<String, Vec<u8>> = msgs
        .iter()
        .map(|m| (expected_name(m), normalize(&m.raw)))
        .collect();
    assert_eq!(files(&all), want);
    let listed: Vec<&str> = run.report["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap())
        .collect();
    assert_eq!(listed.len(), 5);
    for m in &msgs {
        let p = all.join(expected_name(m));
        assert!(listed.contains(&expected_name(m).as_str()));
        assert_eq!(
            std::fs::metadata(&p).unwrap().mtime(),
            m.date,
            "{}",
            p.display()
        );
    }
    // Read back as an eml: archive, the mailboxes are the same.
    let back = mailkeep(&["list", &format!("eml:{}", all.display()), "--json"]);
    back.assert_code(0);
    let boxes: Vec<(String, u64)> = back.report["mailboxes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            (
                b["mailbox"].as_str().unwrap().into(),
                b["messages"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(boxes, [("INBOX".to_string(), 3), ("Sent".to_string(), 2)]);

    // Filters, each alone and together (text is matched in any case, on decoded headers).
    let cases: &[(&[&str], &[usize])] = &[
        (&["--mailbox", "inbox"], &[0, 1, 2]),
        (&["--mailbox", "S*"], &[3, 4]),
        (&["--since", "2023-06-01"], &[1, 2, 4]),
        (&["--before", "2023-06-01"], &[0, 3]),
        (
            &["--since", "2023-05-05", "--before", "2023-07-07"],
            &[1, 3],
        ),
        (&["--from", "ALICE"], &[0, 2, 3]),
        (&["--from", "jürgen müller"], &[4]),
        (&["--subject", "report"], &[0, 2, 3]),
        (&["--subject", "日本語"], &[4]),
        (
            &[
                "--mailbox",
                "INBOX",
                "--since",
                "2023-01-01",
                "--before",
                "2024-01-01",
                "--from",
                "alice",
                "--subject",
                "REPORT",
            ],
            &[0],
        ),
        (&["--subject", "no such thing"], &[]),
    ];
    for (i, (filters, picked)) in cases.iter().enumerate() {
        let to = tmp.path().join(format!("f{i}"));
        let run = export(&arg, &to, filters);
        run.assert_code(0);
        let want: BTreeMap<String, Vec<u8>> = picked
            .iter()
            .map(|&k| (expected_name(&msgs[k]), normalize(&msgs[k].raw)))
            .collect();
        assert_eq!(files(&to), want, "{filters:?}");
        assert_eq!(run.n("matched"), picked.len() as u64, "{filters:?}");
        assert_eq!(run.n("written"), picked.len() as u64, "{filters:?}");
    }

    // A rerun writes nothing; a file changed since keeps its bytes and the message gets `_2`.
    let run = export(&arg, &all, &[]);
    run.assert_code(0);
    assert_eq!((run.n("written"), run.n("already_present")), (0, 5));
    let edited = all.join(expected_name(&msgs[1]));
    std::fs::write(&edited, b"my notes\n").unwrap();
    let run = export(&arg, &all, &["--mailbox", "INBOX"]);
    run.assert_code(0);
    assert_eq!((run.n("written"), run.n("already_present")), (1, 2));
    assert_eq!(std::fs::read(&edited).unwrap(), b"my notes\n");
    let second = expected_name(&msgs[1]).replace(".eml", "_2.eml");
    assert_eq!(run.report["files"], serde_json::json!([second]));
    assert_eq!(std::fs::read(all.join(&second)).unwrap(), msgs[1].raw);

    // --crlf: the RFC 5322 form; same names (the hash is of the stored form).
    let crlf = tmp.path().join("crlf");
    let run = export(&arg, &crlf, &["--crlf", "--mailbox", "Sent"]);
    run.assert_code(0);
    assert_eq!(run.report["line_ends"], "crlf");
    let want: BTreeMap<String, Vec<u8>> = msgs[3..]
        .iter()
        .map(|m| (expected_name(m), lf_to_crlf(&m.raw)))
        .collect();
    assert_eq!(files(&crlf), want);

    // The text summary.
    let out = support::mailkeep()
        .args(["export", &arg, "--to"])
        .arg(tmp.path().join("text"))
        .args(["--subject", "lunch"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8(out.stdout).unwrap().trim(),
        format!(
            "export {arg} -> {}: 5 read, 1 matched, 1 written ({} B), 0 already there",
            tmp.path().join("text").display(),
            msgs[1].raw.len()
        )
    );

    // What export refuses: a folder inside the archive, a date it cannot read, an empty range.
    let run = export(&arg, &root.join("out"), &[]);
    run.assert_code(2);
    assert!(run.report["error"]
        .as_str()
        .unwrap()
        .contains("outside the archive"));
    assert!(!root.join("out").exists());
    export(&arg, &tmp.path().join("x"), &["--since", "2023-13-01"]).assert_code(2);
    export(
        &arg,
        &tmp.path().join("x"),
        &["--since", "2024-01-01", "--before", "2023-01-01"],
    )
    .assert_code(2);
    assert!(!tmp.path().join("x").exists());

    assert_eq!(
        snapshot(&root),
        archive_before,
        "export changed the archive"
    );
}

#[test]
fn export_never_writes_into_the_archive_nor_through_a_file() {
    let tmp = tempfile::tempdir().unwrap();
    let top = tmp.path().join("top");
    let inbox = top.join("INBOX");
    std::fs::create_dir_all(&inbox).unwrap();
    let raw = b"From: a@example.org\nSubject: =?UTF-8?B?xLBzdGFuYnVs?= Cafe\xcc\x81\nDate: Mon, 1 Jan 2024 00:00:00 +0000\n\nbody\n";
    std::fs::write(inbox.join("m.eml"), raw).unwrap();
    let before = snapshot(&top);
    // `eml:top/INBOX` holds mailbox INBOX; exporting it to `top` would write into top/INBOX.
    let run = mailkeep(&[
        "export",
        &format!("eml:{}", inbox.display()),
        "--to",
        top.to_str().unwrap(),
    ]);
    run.assert_code(2).assert_one_line_error(&[
        &format!(
            "--to {}: mailbox INBOX would be written to {}",
            top.display(),
            inbox.display()
        ),
        "inside the archive; export to a folder outside it",
    ]);
    assert_eq!(snapshot(&top), before);
    // A --to through a file.
    let file = tmp.path().join("afile");
    std::fs::write(&file, b"x").unwrap();
    let to = file.join("out");
    let run = mailkeep(&[
        "export",
        &format!("eml:{}", inbox.display()),
        "--to",
        to.to_str().unwrap(),
    ]);
    run.assert_code(2).assert_one_line_error(&[&format!(
        "--to {}: {} is a file, not a folder; choose another folder",
        to.display(),
        file.display()
    )]);
    // Combining marks stay with their letters in the file name (`İ` lower-cased is `i̇`).
    let out = tmp.path().join("out");
    let run = mailkeep(&[
        "export",
        &format!("eml:{}", inbox.display()),
        "--to",
        out.to_str().unwrap(),
        "--json",
    ]);
    run.assert_code(0);
    assert_eq!(
        run.report["files"],
        serde_json::json!([format!(
            "INBOX/2024-01-01_i\u{307}stanbul-cafe\u{301}_{}.eml",
            sha8(raw)
        )])
    );
}
