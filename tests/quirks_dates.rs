//! Dates at message scope (issue 15), against the scripted fake IMAP server: an INTERNALDATE
//! that is missing, `NIL`, garbage or absurd no longer stops the account (it stopped every run
//! with exit 7, nothing archived): the message is archived dated by its `Date:` header, else
//! the archiving time, with one warning per mailbox and a ledger note; a `BODY[]` that is
//! `NIL` or empty is a failure of that UID only (exit 1), and a rerun against a healthy server
//! archives it, nothing duplicated. Also restore keeping the `Date:` header's zone in the
//! APPEND date-time, and `eml:`/`mbox:` imports of broken dates (`mailkeep convert`).

mod support;

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use mailkeep::core::message::normalize;
use support::fake_imap::FakeImap;
use support::run::{maildir_messages, mbox_messages, Run};

const PW: &str = "MAILKEEP_QUIRKS_DATES_PW";

/// UID 1: a healthy message.
const OK_MSG: &str = "Date: Mon, 3 Mar 2014 09:00:00 +0000\r\nSubject: healthy\r\n\r\nfine\r\n";
/// The INTERNALDATE of UID 1: 03-Mar-2014 09:30:00 +0000.
const OK_DATE: i64 = 1_393_839_000;
/// A message whose `Date:` header gives the date: Tue, 4 Mar 2014 10:00:00 +0100.
const HDR_MSG: &str =
    "Date: Tue, 4 Mar 2014 10:00:00 +0100 (CET)\r\nSubject: dated by header\r\n\r\nbody\r\n";
const HDR_DATE: i64 = 1_393_923_600;
/// A message without a usable `Date:` header.
const NODATE_MSG: &str = "Date: someday\r\nSubject: no date\r\n\r\nbody\r\n";

/// One message of a script: UID, the INTERNALDATE item as sent (`None`: no such item), and
/// the body: a message, or the item as sent (`NIL`, `""`) when it starts with `!`.
struct Msg<'a> {
    uid: u32,
    date: Option<&'a str>,
    body: &'a str,
}

/// A fake server with INBOX (UIDVALIDITY 1000) holding `msgs`; the bodies written to `dir`.
fn server(dir: &Path, msgs: &[Msg<'_>]) -> FakeImap {
    std::fs::create_dir_all(dir).unwrap();
    let n = msgs.len();
    let next = msgs.iter().map(|m| m.uid).max().unwrap_or(0) + 1;
    let mut s = String::from("S: * OK [CAPABILITY IMAP4rev1] ready\n");
    s += "C: TAG LOGIN <user> <password>\nS: TAG OK LOGIN completed\n";
    s += &format!(
        "C: TAG SELECT INBOX\nS: * {n} EXISTS\nS: * OK [UIDVALIDITY 1000] UIDs valid\nS: * OK [UIDNEXT {next}] next\nS: TAG OK SELECT completed\n"
    );
    s += "C: TAG UID FETCH <set> (<items>)\n";
    for (i, m) in msgs.iter().enumerate() {
        let date = m
            .date
            .map_or(String::new(), |d| format!(" INTERNALDATE {d}"));
        let head = format!("S: * {} FETCH (UID {} FLAGS (\\Seen){date}", i + 1, m.uid);
        match m.body.strip_prefix('!') {
            Some(item) => s += &format!("{head} RFC822.SIZE 40 BODY[] {item})\n"),
            None => {
                let file = format!("m{}.eml", m.uid);
                std::fs::write(dir.join(&file), m.body).unwrap();
                let len = m.body.len();
                s += &format!("{head} RFC822.SIZE {len} BODY[] {{{len}}}\nS+ {file}\nS: )\n");
            }
        }
    }
    s += "S: TAG OK FETCH completed\n";
    FakeImap::from_str(&s, dir)
}

fn backup(server: &FakeImap, archive: &str) -> Run {
    let out = support::mailkeep()
        .arg("backup")
        .arg(format!("imap://alice@{}", server.addr()))
        .arg(archive)
        .args(["--allow-plaintext", "--password-env", PW, "--json"])
        .args(["--timeout", "30"])
        .env(PW, "secret")
        .output()
        .unwrap();
    Run::from_output(out)
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// The Maildir messages of the archive's INBOX: (date from the file name, mtime, bytes),
/// sorted by name.
fn maildir_dated(dir: &Path) -> Vec<(i64, i64, Vec<u8>)> {
    maildir_messages(dir)
        .into_iter()
        .map(|(name, bytes)| {
            let date: i64 = name["cur/".len()..]
                .split('.')
                .next()
                .unwrap()
                .parse()
                .unwrap();
            let mtime = std::fs::metadata(dir.join(&name)).unwrap().mtime();
            (date, mtime, bytes)
        })
        .collect()
}

/// (uid, internal_date) of the ledger's records, by UID.
fn ledger_dates(dir: &Path) -> Vec<(i64, i64)> {
    let db = rusqlite::Connection::open(dir.join("mailkeep/ledger.sqlite")).unwrap();
    let mut st = db
        .prepare("SELECT uid, internal_date FROM messages ORDER BY uid")
        .unwrap();
    st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

fn ledger_notes(dir: &Path) -> Vec<String> {
    let db = rusqlite::Connection::open(dir.join("mailkeep/ledger.sqlite")).unwrap();
    let mut st = db.prepare("SELECT text FROM notes ORDER BY id").unwrap();
    st.query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

fn warnings(run: &Run) -> Vec<String> {
    run.report["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w.as_str().unwrap().to_string())
        .collect()
}

/// Each INTERNALDATE fault alone: the message is archived (exit 0), dated by its `Date:`
/// header in the Maildir name, mtime and ledger; one warning and one ledger note name the UID
/// and what the server sent; a second run changes nothing.
#[test]
fn each_bad_internaldate_is_dated_from_the_date_header() {
    let faults: &[(&str, Option<&str>, &str)] = &[
        ("missing", None, "nothing"),
        ("NIL", Some("NIL"), "NIL"),
        ("garbage", Some("\"garbage\""), "\"garbage\""),
        (
            "year 1900",
            Some("\"04-Mar-1900 10:00:00 +0000\""),
            "\"04-Mar-1900 10:00:00 +0000\"",
        ),
        (
            "year 2999",
            Some("\"04-Mar-2999 10:00:00 +0000\""),
            "\"04-Mar-2999 10:00:00 +0000\"",
        ),
        (
            "month 00",
            Some("\"04-00-2014 10:00:00 +0000\""),
            "\"04-00-2014 10:00:00 +0000\"",
        ),
        (
            "zone +9999",
            Some("\"04-Mar-2014 10:00:00 +9999\""),
            "\"04-Mar-2014 10:00:00 +9999\"",
        ),
    ];
    let t = tempfile::tempdir().unwrap();
    for (i, (what, item, sent)) in faults.iter().enumerate() {
        let msgs = [
            Msg {
                uid: 1,
                date: Some("\"03-Mar-2014 09:30:00 +0000\""),
                body: OK_MSG,
            },
            Msg {
                uid: 2,
                date: *item,
                body: HDR_MSG,
            },
        ];
        let srv = server(&t.path().join(format!("s{i}")), &msgs);
        let dir = t.path().join(format!("a{i}"));
        let arch = format!("maildir:{}", dir.display());
        let run = backup(&srv, &arch);
        run.assert_code(0);
        assert_eq!(
            (run.n("listed"), run.n("fetched"), run.n("already_archived")),
            (2, 2, 0),
            "{what}: {run:#?}"
        );
        assert!(
            run.report["failures"].as_array().unwrap().is_empty(),
            "{what}"
        );
        assert_eq!(
            warnings(&run),
            [format!(
                "alice@{}: mailbox INBOX: 1 message had no valid INTERNALDATE; dated from their Date: header (1) or the archiving time (0): UID 2 ({sent})",
                srv.addr()
            )],
            "{what}"
        );
        let mb = &run.report["mailboxes"][0];
        assert_eq!(mb["dated_from_header"], 1, "{what}");
        assert!(mb.get("dated_at_archiving").is_none(), "{what}: {mb}");
        assert_eq!(
            maildir_dated(&dir),
            [
                (OK_DATE, OK_DATE, normalize(OK_MSG.as_bytes())),
                (HDR_DATE, HDR_DATE, normalize(HDR_MSG.as_bytes())),
            ],
            "{what}"
        );
        assert_eq!(ledger_dates(&dir), [(1, OK_DATE), (2, HDR_DATE)], "{what}");
        assert_eq!(
            ledger_notes(&dir),
            [format!(
                "mailbox INBOX UIDVALIDITY 1000 UID 2: no valid INTERNALDATE (the server sent {sent}); dated from its Date: header"
            )],
            "{what}"
        );
        // Idempotent: nothing fetched, no warning, no byte changed.
        let before = support::run::snapshot(&dir);
        let again = backup(&srv, &arch);
        again.assert_code(0);
        assert_eq!((again.n("fetched"), again.n("already_archived")), (0, 2));
        assert!(
            warnings(&again).is_empty(),
            "{what}: {:?}",
            warnings(&again)
        );
        assert_eq!(support::run::snapshot(&dir), before, "{what}");
    }
}

/// Several faults in one mailbox: one warning with the counts (Date: header 2, archiving time
/// 2); into an mbox, the `From ` line carries the date used.
#[test]
fn one_warning_per_mailbox_with_counts_and_mbox_from_lines() {
    let t = tempfile::tempdir().unwrap();
    let msgs = [
        Msg {
            uid: 3,
            date: Some("NIL"),
            body: HDR_MSG,
        },
        Msg {
            uid: 4,
            date: Some("\"garbage\""),
            body: NODATE_MSG,
        },
        Msg {
            uid: 5,
            date: None,
            body: "Subject: nothing\r\n\r\nx\r\n",
        },
        Msg {
            uid: 6,
            date: Some("\"01-Jan-1900 00:00:00 +0000\""),
            body: "Date: Wed Mar  5 08:15:00 2014\r\nSubject: asctime\r\n\r\ny\r\n",
        },
    ];
    for kind in ["maildir", "mbox"] {
        let srv = server(&t.path().join(format!("s-{kind}")), &msgs);
        let dir = t.path().join(kind);
        let before = now();
        let run = backup(&srv, &format!("{kind}:{}", dir.display()));
        let after = now();
        run.assert_code(0);
        assert_eq!((run.n("listed"), run.n("fetched")), (4, 4), "{run:#?}");
        assert_eq!(
            warnings(&run),
            [format!("alice@{}: mailbox INBOX: 4 messages had no valid INTERNALDATE; dated from their Date: header (2) or the archiving time (2): UID 3 (NIL), UID 4 (\"garbage\"), UID 5 (nothing), UID 6 (\"01-Jan-1900 00:00:00 +0000\")", srv.addr())],
            "{kind}"
        );
        let mb = &run.report["mailboxes"][0];
        assert_eq!(
            (
                mb["dated_from_header"].as_u64(),
                mb["dated_at_archiving"].as_u64()
            ),
            (Some(2), Some(2))
        );
        let dates = ledger_dates(&dir);
        assert_eq!(dates[0], (3, HDR_DATE), "{kind}");
        assert_eq!(dates[3], (6, 1_394_007_300), "{kind}: asctime Date: header");
        for (uid, d) in &dates[1..3] {
            assert!(
                (before..=after).contains(d),
                "{kind} UID {uid}: {d} not in {before}..={after}"
            );
        }
        if kind == "mbox" {
            let text = std::fs::read_to_string(dir.join("INBOX.mbox")).unwrap();
            let froms: Vec<&str> = text.lines().filter(|l| l.starts_with("From ")).collect();
            assert_eq!(froms.len(), 4, "{text}");
            assert!(froms[0].ends_with(" Tue Mar  4 09:00:00 2014"), "{froms:?}");
            // In the order the server delivered them: UID 5 (no INTERNALDATE item at all)
            // is handed over at the end of the FETCH answer.
            assert!(froms[2].ends_with(" Wed Mar  5 08:15:00 2014"), "{froms:?}");
            assert_eq!(
                mbox_messages(&dir.join("INBOX.mbox"))[0],
                normalize(HDR_MSG.as_bytes())
            );
        }
    }
}

/// `BODY[] NIL`, `BODY[] ""` and `BODY[] {0}`: a failure of that UID (named with what the
/// server sent, exit 1), the other message archived; a rerun against a server that sends the
/// message archives it, and nothing is duplicated.
#[test]
fn empty_or_nil_body_fails_only_its_uid_and_a_rerun_converges() {
    let t = tempfile::tempdir().unwrap();
    let faults: &[(&str, &str)] = &[
        ("!NIL", "BODY[] NIL"),
        ("!\"\"", "an empty BODY[] (0 octets)"),
        ("", "an empty BODY[] (0 octets)"),
    ];
    for (i, (body, sent)) in faults.iter().enumerate() {
        let ok = Msg {
            uid: 1,
            date: Some("\"03-Mar-2014 09:30:00 +0000\""),
            body: OK_MSG,
        };
        let bad = Msg {
            uid: 2,
            date: Some("\"04-Mar-2014 10:00:00 +0100\""),
            body,
        };
        let sdir = t.path().join(format!("s{i}"));
        let srv = server(&sdir, &[ok, bad]);
        let dir = t.path().join(format!("a{i}"));
        let arch = format!("maildir:{}", dir.display());
        let run = backup(&srv, &arch);
        run.assert_code(1);
        assert_eq!(
            (run.n("listed"), run.n("fetched"), run.n("already_archived")),
            (2, 1, 0),
            "{sent}: {run:#?}"
        );
        let failures = run.report["failures"].as_array().unwrap();
        assert_eq!(failures.len(), 1, "{sent}");
        assert_eq!(failures[0]["mailbox"], "INBOX");
        assert_eq!(failures[0]["message"], "UID 2");
        assert_eq!(
            failures[0]["error"],
            format!("alice@{}: mailbox INBOX UID 2: the server sent no message ({sent}); the next run tries again", srv.addr()),
        );
        assert_eq!(
            maildir_dated(&dir),
            [(OK_DATE, OK_DATE, normalize(OK_MSG.as_bytes()))],
            "{sent}"
        );
        // The server is healthy again: UID 2 is archived, UID 1 not fetched again.
        let healthy = server(
            &t.path().join(format!("h{i}")),
            &[
                Msg {
                    uid: 1,
                    date: Some("\"03-Mar-2014 09:30:00 +0000\""),
                    body: OK_MSG,
                },
                Msg {
                    uid: 2,
                    date: Some("\"04-Mar-2014 10:00:00 +0100\""),
                    body: HDR_MSG,
                },
            ],
        );
        let again = backup(&healthy, &arch);
        again.assert_code(0);
        assert_eq!(
            (
                again.n("listed"),
                again.n("fetched"),
                again.n("already_archived")
            ),
            (2, 1, 1),
            "{sent}: {again:#?}"
        );
        let bodies: Vec<String> = healthy
            .commands()
            .into_iter()
            .filter(|c| c.contains("BODY.PEEK[]"))
            .collect();
        assert_eq!(bodies.len(), 1, "{bodies:?}");
        assert!(bodies[0].contains("UID FETCH 2 "), "{bodies:?}");
        assert_eq!(
            maildir_dated(&dir),
            [
                (OK_DATE, OK_DATE, normalize(OK_MSG.as_bytes())),
                (HDR_DATE, HDR_DATE, normalize(HDR_MSG.as_bytes())),
            ],
            "{sent}"
        );
        assert_eq!(ledger_dates(&dir), [(1, OK_DATE), (2, HDR_DATE)]);
    }
}

fn target(dir: &Path) -> FakeImap {
    std::fs::create_dir_all(dir).unwrap();
    let s = "S: * OK [CAPABILITY IMAP4rev1 UIDPLUS] target ready\n\
             C: TAG LOGIN <user> <password>\nS: TAG OK LOGIN completed\n\
             C: TAG SELECT INBOX\nS: * 0 EXISTS\nS: * OK [UIDVALIDITY 9] UIDs valid\nS: * OK [UIDNEXT 1] next\nS: TAG OK [READ-WRITE] SELECT completed\n";
    FakeImap::from_str(s, dir)
}

fn restore(archive: &str, target: &FakeImap, state: &Path) -> Run {
    let out = support::mailkeep()
        .arg("restore")
        .arg(archive)
        .arg(format!("imap://alice@{}", target.addr()))
        .args(["--allow-plaintext", "--password-env", PW, "--json"])
        .args(["--timeout", "30"])
        .env(PW, "secret")
        .env("XDG_STATE_HOME", state)
        .output()
        .unwrap();
    Run::from_output(out)
}

/// The restore of a message archived without a valid INTERNALDATE APPENDs the fallback date in
/// the zone of the `Date:` header it came from; a message with a valid INTERNALDATE keeps it
/// (in UTC, as the ledger holds it).
#[test]
fn restore_appends_the_fallback_date_in_the_headers_zone() {
    let t = tempfile::tempdir().unwrap();
    let srv = server(
        &t.path().join("s"),
        &[
            Msg {
                uid: 1,
                date: Some("\"03-Mar-2014 09:30:00 +0000\""),
                body: OK_MSG,
            },
            Msg {
                uid: 2,
                date: Some("\"garbage\""),
                body: HDR_MSG,
            },
        ],
    );
    let dir = t.path().join("a");
    let arch = format!("maildir:{}", dir.display());
    backup(&srv, &arch).assert_code(0);
    let tgt = target(&t.path().join("t"));
    let run = restore(&arch, &tgt, &t.path().join("state"));
    run.assert_code(0);
    let mut got: Vec<(Option<String>, Vec<u8>)> = tgt
        .appends()
        .into_iter()
        .map(|a| (a.date, a.bytes))
        .collect();
    got.sort();
    assert_eq!(
        got,
        [
            (
                Some("03-Mar-2014 09:30:00 +0000".to_string()),
                OK_MSG.as_bytes().to_vec()
            ),
            (
                Some("04-Mar-2014 10:00:00 +0100".to_string()),
                HDR_MSG.as_bytes().to_vec()
            ),
        ]
    );
}

fn convert(from: &str, to: &str) -> Run {
    let out = support::mailkeep()
        .args(["convert", from, to, "--json"])
        .output()
        .unwrap();
    Run::from_output(out)
}

/// `.eml` files with broken dates: asctime in a `From ` line or a `Date:` header, a three-digit
/// year, a dashed date; a file with no date is dated by its mtime, counted and warned about.
/// The archive's dates and the restore's APPEND date-times are exact.
#[test]
fn eml_and_mbox_imports_read_broken_dates_and_count_the_mtime_fallback() {
    let t = tempfile::tempdir().unwrap();
    let eml = t.path().join("eml");
    std::fs::create_dir_all(&eml).unwrap();
    let files: &[(&str, &str)] = &[
        (
            "a.eml",
            "From someone@example.org Wed Mar  5 08:15:00 2014\nSubject: asctime From line\n\na\n",
        ),
        (
            "b.eml",
            "Date: Wed Mar  5 08:15:00 2014\nSubject: asctime Date\n\nb\n",
        ),
        (
            "c.eml",
            "Date: Tue, 4 Mar 114 10:00:00 +0100\nSubject: 3-digit year\n\nc\n",
        ),
        (
            "d.eml",
            "Date: Tue, 04-Mar-2014 10:00:00 -0500\nSubject: dashes\n\nd\n",
        ),
        ("e.eml", "Date: sometime last week\nSubject: no date\n\ne\n"),
    ];
    for (name, text) in files {
        std::fs::write(eml.join(name), text).unwrap();
    }
    // e.eml's only date is its mtime: 2020-01-02 03:04:05 UTC.
    let mtime: i64 = 1_577_934_245;
    let f = std::fs::File::options()
        .write(true)
        .open(eml.join("e.eml"))
        .unwrap();
    f.set_modified(std::time::UNIX_EPOCH + std::time::Duration::from_secs(mtime as u64))
        .unwrap();
    drop(f);

    let dir = t.path().join("md");
    let arch = format!("maildir:{}", dir.display());
    let run = convert(&format!("eml:{}", eml.display()), &arch);
    run.assert_code(0);
    assert_eq!((run.n("read"), run.n("written")), (5, 5), "{run:#?}");
    assert_eq!(run.n("dated_from_mtime"), 1);
    assert_eq!(run.report["mailboxes"][0]["dated_from_mtime"], 1);
    assert_eq!(
        warnings(&run),
        ["INBOX: 1 message(s) had no date in the file (no From line date, no readable Date: or Received: header); dated from the file's modification time"]
    );
    let mut dates: Vec<i64> = maildir_dated(&dir)
        .into_iter()
        .map(|(d, m, _)| {
            assert_eq!(d, m);
            d
        })
        .collect();
    dates.sort();
    // d: 15:00 UTC on 4 March; c: 09:00 UTC; a and b: 08:15 UTC on 5 March.
    assert_eq!(
        dates,
        [
            1_393_923_600,
            1_393_945_200,
            1_394_007_300,
            1_394_007_300,
            mtime
        ]
    );

    // Restored straight from the .eml folder: each date in its header's zone (asctime has
    // none: +0000).
    let tgt = target(&t.path().join("t"));
    let r = restore(
        &format!("eml:{}", eml.display()),
        &tgt,
        &t.path().join("state"),
    );
    r.assert_code(0);
    assert_eq!(r.n("dated_from_mtime"), 1);
    let mut got: Vec<(String, String)> = tgt
        .appends()
        .into_iter()
        .map(|a| {
            let subject = String::from_utf8_lossy(&a.bytes)
                .lines()
                .find_map(|l| l.strip_prefix("Subject: ").map(str::to_string))
                .unwrap();
            (subject, a.date.unwrap())
        })
        .collect();
    got.sort();
    assert_eq!(
        got,
        [
            (
                "3-digit year".to_string(),
                "04-Mar-2014 10:00:00 +0100".to_string()
            ),
            (
                "asctime Date".to_string(),
                "05-Mar-2014 08:15:00 +0000".to_string()
            ),
            (
                "asctime From line".to_string(),
                "05-Mar-2014 08:15:00 +0000".to_string()
            ),
            (
                "dashes".to_string(),
                "04-Mar-2014 10:00:00 -0500".to_string()
            ),
            (
                "no date".to_string(),
                "02-Jan-2020 03:04:05 +0000".to_string()
            ),
        ]
    );

    // An mbox whose separator dates carry a zone name, and a Thunderbird-style `From - `
    // line with an ISO date: read with their zones.
    let mbox = t.path().join("in.mbox");
    std::fs::write(
        &mbox,
        "From a@example.org Wed Mar  5 08:15:00 PST 2014\nSubject: pst\n\nx\n\nFrom - 2014-03-04 10:00:00 +0100\nSubject: iso\n\ny\n",
    )
    .unwrap();
    let out = t.path().join("from-mbox");
    let run = convert(
        &format!("mbox:{}", mbox.display()),
        &format!("maildir:{}", out.display()),
    );
    run.assert_code(0);
    assert_eq!(run.n("written"), 2, "{run:#?}");
    assert!(run.report.get("dated_from_mtime").is_none());
    let mut dates: Vec<i64> = maildir_dated(&out.join(".in"))
        .into_iter()
        .map(|(d, _, _)| d)
        .collect();
    dates.sort();
    assert_eq!(dates, [1_393_923_600, 1_394_036_100]);
}

/// `migrate` from a server: a message with a garbage INTERNALDATE is appended with its
/// `Date:` header's date, in that header's zone; one the server sends no body for is a failure
/// named with what the server sent (exit 1), not an empty message appended.
#[test]
fn migrate_dates_from_the_header_and_fails_a_nil_body() {
    let t = tempfile::tempdir().unwrap();
    let src = server(
        &t.path().join("s"),
        &[
            Msg {
                uid: 1,
                date: Some("\"garbage\""),
                body: HDR_MSG,
            },
            Msg {
                uid: 2,
                date: Some("\"04-Mar-2014 10:00:00 +0100\""),
                body: "!NIL",
            },
        ],
    );
    let tgt = target(&t.path().join("t"));
    let out = support::mailkeep()
        .arg("migrate")
        .arg(format!("imap://alice@{}", src.addr()))
        .arg(format!("imap://bob@{}", tgt.addr()))
        .args(["--source-allow-plaintext", "--target-allow-plaintext"])
        .args(["--json", "--timeout", "30"])
        .args(["--source-password-env", PW, "--target-password-env", PW])
        .env(PW, "secret")
        .env("XDG_STATE_HOME", t.path().join("state"))
        .output()
        .unwrap();
    let run = Run::from_output(out);
    run.assert_code(1);
    let appends: Vec<(Option<String>, Vec<u8>)> = tgt
        .appends()
        .into_iter()
        .map(|a| (a.date, a.bytes))
        .collect();
    assert_eq!(
        appends,
        [(
            Some("04-Mar-2014 10:00:00 +0100".to_string()),
            HDR_MSG.as_bytes().to_vec()
        )]
    );
    let text = run.report.to_string();
    assert!(
        text.contains(&format!(
            "alice@{} INBOX UID 2: the server sent no message (BODY[] NIL); the next run tries again",
            src.addr()
        )),
        "{text}"
    );
}

/// A Maildir file (not a mailkeep archive) whose mtime cannot be believed (1970) is dated by
/// its `Date:` header, whatever its form; a believable mtime is the Maildir convention and
/// wins, and is not counted as a fallback.
#[test]
fn maildir_file_with_a_1970_mtime_is_dated_by_its_header() {
    let t = tempfile::tempdir().unwrap();
    let md = t.path().join("md");
    for sub in ["cur", "new", "tmp"] {
        std::fs::create_dir_all(md.join(sub)).unwrap();
    }
    let files: &[(&str, &str, u64)] = &[
        (
            "1.host:2,S",
            "Date: 04-Mar-2014 10:00:00 -0500\nSubject: a\n\na\n",
            0,
        ),
        (
            "2.host:2,",
            "Date: Wed Mar  5 08:15:00 2014\nSubject: b\n\nb\n",
            0,
        ),
        (
            "3.host:2,",
            "Date: Wed Mar  5 08:15:00 2014\nSubject: c\n\nc\n",
            1_577_934_245,
        ),
    ];
    for (name, text, mtime) in files {
        let p = md.join("cur").join(name);
        std::fs::write(&p, text).unwrap();
        let f = std::fs::File::options().write(true).open(&p).unwrap();
        f.set_modified(std::time::UNIX_EPOCH + std::time::Duration::from_secs(*mtime))
            .unwrap();
    }
    let out = t.path().join("out");
    let run = convert(
        &format!("maildir:{}", md.display()),
        &format!("maildir:{}", out.display()),
    );
    run.assert_code(0);
    assert_eq!(run.n("written"), 3, "{run:#?}");
    assert!(run.report.get("dated_from_mtime").is_none(), "{run:#?}");
    assert!(warnings(&run).is_empty(), "{:?}", warnings(&run));
    let mut dates: Vec<i64> = maildir_dated(&out).into_iter().map(|(d, _, _)| d).collect();
    dates.sort();
    assert_eq!(dates, [1_393_945_200, 1_394_007_300, 1_577_934_245]);
}
