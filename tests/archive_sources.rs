//! Archives read as message sources (`src/source/`), the restore side of the engine: the
//! whole shared corpus through the right source with exact counts, the failure cases 03, 05,
//! 12 and 21 (`shared/cases/*/CASE.md`), archives written by mailkeep read back with the
//! ledger's exact flags, keywords and INTERNALDATE, and damaged mbox files.

mod support;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use mailkeep::archive::ledger::{Ledger, Record};
use mailkeep::archive::maildir::writer::MaildirSink;
use mailkeep::archive::mbox::writer::MboxSink;
use mailkeep::archive::reader as source;
use mailkeep::archive::reader::{ArchivedMessage, DateSource, Skipped, SourceCounts};
use mailkeep::archive::writer::{PlaceMeta, Sink};
use mailkeep::core::message::{lf_to_crlf, Flag, Flags, MailboxName};
use sha2::{Digest, Sha256};

fn case(dir: &str) -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/cases")).join(dir)
}

fn sha256(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// Every mailbox of `spec` with its messages and counts.
#[track_caller]
fn read_all(spec: &str) -> BTreeMap<String, (Vec<ArchivedMessage>, SourceCounts)> {
    let mut src = source::open(spec).unwrap_or_else(|e| panic!("{spec}: {e}"));
    let mut out = BTreeMap::new();
    for mb in src.mailboxes().unwrap() {
        let mut msgs = Vec::new();
        let counts = src
            .messages(&mb, &mut |m| {
                msgs.push(m);
                Ok(())
            })
            .unwrap_or_else(|e| panic!("{spec} {mb}: {e}"));
        assert_eq!(counts.read as usize, msgs.len());
        out.insert(mb.to_string(), (msgs, counts));
    }
    out
}

fn total(read: &BTreeMap<String, (Vec<ArchivedMessage>, SourceCounts)>) -> usize {
    read.values().map(|(m, _)| m.len()).sum()
}

#[track_caller]
fn check_invariants(m: &ArchivedMessage) {
    assert_eq!(m.sha256, sha256(&m.raw), "{}", m.origin);
    assert!(!m.raw.windows(2).any(|w| w == b"\r\n"), "{}", m.origin);
    assert!(m.raw.ends_with(b"\n"), "{}", m.origin);
    assert!(!m.raw.starts_with(b"From "), "{}", m.origin);
    assert!(!m.raw.starts_with(b"\n"), "{}", m.origin);
    match m.internal_date {
        Some(t) => assert!(t > 31_536_000, "{} {t}", m.origin),
        None => assert_eq!(m.date_source, DateSource::Unknown),
    }
}

// ---------------------------------------------------------------------------------------------
// The shared corpus
// ---------------------------------------------------------------------------------------------

#[test]
fn corpus_public_mbox_files_through_mbox_source() {
    let dir = support::corpus_dir().join("public-mbox");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "mbox"))
        .collect();
    files.sort();
    assert_eq!(files.len(), 8);
    let mut sum = 0;
    let mut tomoyo_sha = Vec::new();
    for f in &files {
        let read = read_all(&format!("mbox:{}", f.display()));
        assert_eq!(read.len(), 1, "{}", f.display());
        let (name, (msgs, counts)) = read.into_iter().next().unwrap();
        let stem = f.file_stem().unwrap().to_str().unwrap();
        assert_eq!(name, stem);
        assert!(counts.skipped.is_empty(), "{counts:?}");
        for m in &msgs {
            check_invariants(m);
            assert_ne!(m.date_source, DateSource::Unknown, "{}", m.origin);
        }
        if stem.starts_with("tomoyo") {
            // `From mboxrd@z Thu Jan  1 00:00:00 1970` is not believed: the Date: header is.
            assert!(msgs.iter().all(|m| m.date_source == DateSource::DateHeader));
            tomoyo_sha.extend(msgs.iter().map(|m| m.sha256.clone()));
        }
        if stem.starts_with("netscape") {
            assert_eq!(msgs.len(), 29);
            let seen = msgs
                .iter()
                .filter(|m| m.flags.contains(&Flag::Seen))
                .count();
            let flagged = msgs
                .iter()
                .filter(|m| m.flags.contains(&Flag::Flagged))
                .count();
            assert_eq!((seen, flagged), (28, 7));
            for m in &msgs {
                assert!(
                    !m.raw.windows(11).any(|w| w == b"X-Mozilla-S"),
                    "{}",
                    m.origin
                );
            }
        }
        sum += msgs.len();
    }
    assert_eq!(sum, 3_622);
    // mboxrd unquoting gives the original bytes of every tomoyo message.
    let want: Vec<String> = std::fs::read_to_string(dir.join("tomoyo-users_mboxrd.sha256"))
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| l.split_whitespace().next().unwrap().to_string())
        .collect();
    let mut got = tomoyo_sha.clone();
    let mut want_sorted = want.clone();
    got.sort();
    want_sorted.sort();
    assert_eq!(got, want_sorted);
}

#[test]
fn corpus_public_mbox_directory() {
    let read = read_all(&format!(
        "mbox:{}",
        support::corpus_dir().join("public-mbox").display()
    ));
    assert_eq!(read.len(), 8);
    assert_eq!(total(&read), 3_622);
    assert!(read.contains_key("sisimai_bounces_crlf"));
}

#[test]
fn corpus_maildir_trees() {
    let root = support::corpus_dir().join("maildir");
    let read = read_all(&format!("maildir:{}", root.display()));
    let counts: Vec<(String, usize)> = read.iter().map(|(k, v)| (k.clone(), v.0.len())).collect();
    let want: Vec<(String, usize)> = [
        ("lkml", 210),
        ("notmuch-list", 28),
        ("notmuch-list/bar", 6),
        ("notmuch-list/bar/baz", 7),
        ("notmuch-list/foo", 6),
        ("notmuch-list/foo/baz", 6),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), *b))
    .collect();
    assert_eq!(counts, want);
    assert_eq!(total(&read), 263);
    for (msgs, c) in read.values() {
        assert!(c.skipped.is_empty());
        for m in msgs {
            check_invariants(m);
            // Every notmuch-list and lkml file is `:2,` or in new/ without info: no flags.
            assert!(m.flags.is_empty(), "{}", m.origin);
            assert_eq!(m.date_source, DateSource::FileMtime);
            assert_eq!(m.raw, std::fs::read(&m.origin).unwrap(), "{}", m.origin);
        }
    }

    // The Maildir++ tree on its own: root is INBOX, `.foo.baz` is `foo/baz`.
    let read = read_all(&format!("maildir:{}", root.join("notmuch-list").display()));
    assert_eq!(
        read.keys().cloned().collect::<Vec<_>>(),
        ["INBOX", "bar", "bar/baz", "foo", "foo/baz"]
    );
    assert_eq!(total(&read), 53);
}

#[test]
fn corpus_eml_tree() {
    let read = read_all(&format!(
        "eml:{}",
        support::corpus_dir().join("eml").display()
    ));
    assert_eq!(total(&read), 402);
    assert_eq!(read["spamassassin/easy_ham"].0.len(), 100);
    assert_eq!(read["japanese"].0.len(), 15);
    assert_eq!(read["line-endings"].0.len(), 9);
    for (msgs, c) in read.values() {
        assert!(c.skipped.is_empty());
        for m in msgs {
            assert_eq!(m.sha256, sha256(&m.raw));
            assert!(!m.raw.starts_with(b"From "), "{}", m.origin);
            assert!(m.flags.is_empty());
        }
    }
    // The 98 easy_ham files with an mbox `From ` line: the line is dropped, its date used.
    let from_line = read["spamassassin/easy_ham"]
        .0
        .iter()
        .filter(|m| m.date_source == DateSource::MboxFromLine)
        .count();
    assert_eq!(from_line, 98);
}

// ---------------------------------------------------------------------------------------------
// Cases
// ---------------------------------------------------------------------------------------------

/// shared/cases/03: a Thunderbird folder gives 2 of 3 messages (status 0009 skipped as
/// deleted, not an error), flags from the status bits, bytes without any `From `/`>From ` or
/// `X-Mozilla-*` line; the add-on export gives 1 message, `\Seen`, the same bytes.
#[test]
fn case_03_thunderbird_from_dash_mozilla_status() {
    let dir = case("03-thunderbird-from-dash-mozilla-status");
    let expected1 = std::fs::read(dir.join("expected-Inbox-1.eml")).unwrap();
    let expected3 = std::fs::read(dir.join("expected-Inbox-3.eml")).unwrap();
    assert_eq!(
        sha256(&expected1),
        "588b5924ed1249751a20f8dae9a378093683b2e7d3b9e5eabe731bc0971d165c"
    );
    let local = dir.join("profile/Mail/Local Folders");
    let before = sha256(&std::fs::read(local.join("Inbox")).unwrap());
    assert_eq!(
        before,
        "56284eda647e16c9a2b180af01618482c9e11c0ec55001bdb37735cc269e3e16"
    );
    for spec in [
        format!("thunderbird:{}", local.display()),
        // As a plain mbox file, the same result.
        format!("mbox:{}", local.join("Inbox").display()),
    ] {
        let read = read_all(&spec);
        assert_eq!(read.keys().collect::<Vec<_>>(), ["INBOX"], "{spec}");
        let (msgs, counts) = &read["INBOX"];
        assert_eq!(msgs.len(), 2);
        assert_eq!(counts.skipped.len(), 1);
        assert!(matches!(
            &counts.skipped[0],
            Skipped::MozillaDeleted { origin } if origin.ends_with("Inbox:611")
        ));
        assert_eq!(counts.skipped_by_reason()["mozilla-deleted"], 1);
        assert_eq!(msgs[0].flags.to_imap_list(), "\\Seen \\Answered");
        assert_eq!(msgs[1].flags.to_imap_list(), "\\Seen \\Flagged");
        assert_eq!(lf_to_crlf(&msgs[0].raw), expected1);
        assert_eq!(lf_to_crlf(&msgs[1].raw), expected3);
        assert_eq!(msgs[0].date_source, DateSource::MboxFromLine);
        // `From - Sat Apr 12 15:59:28 2025`
        assert_eq!(msgs[0].internal_date, Some(1_744_473_568));
        for m in msgs {
            check_invariants(m);
        }
    }
    assert_eq!(
        sha256(&std::fs::read(local.join("Inbox")).unwrap()),
        before,
        "the input is never modified"
    );

    let read = read_all(&format!("mbox:{}", dir.join("addon-export.mbox").display()));
    assert_eq!(read.keys().collect::<Vec<_>>(), ["addon-export"]);
    let (msgs, counts) = &read["addon-export"];
    assert_eq!(msgs.len(), 1);
    assert!(counts.skipped.is_empty());
    assert_eq!(msgs[0].flags.to_imap_list(), "\\Seen");
    assert_eq!(lf_to_crlf(&msgs[0].raw), expected1);
}

/// shared/cases/05: CRLF and mixed-EOL mbox files give 2 messages each, byte-identical (in
/// wire form) to the expected CRLF files: no leading empty line, no stray CR, no X-Mozilla.
#[test]
fn case_05_mbox_crlf_and_mixed_line_endings() {
    let dir = case("05-mbox-crlf-and-mixed-line-endings");
    let want = [
        std::fs::read(dir.join("expected-1.eml")).unwrap(),
        std::fs::read(dir.join("expected-2.eml")).unwrap(),
    ];
    for file in ["windows-copied.mbox", "mixed-eol.mbox"] {
        let read = read_all(&format!("mbox:{}", dir.join(file).display()));
        let (msgs, counts) = read.values().next().unwrap();
        assert_eq!(msgs.len(), 2, "{file}");
        assert!(counts.skipped.is_empty());
        for (m, w) in msgs.iter().zip(&want) {
            check_invariants(m);
            let wire = lf_to_crlf(&m.raw);
            assert_eq!(wire, *w, "{file}");
            assert!(wire.starts_with(b"From: "));
            // Only mixed-eol.mbox has X-Mozilla-Status lines (0001: read).
            let want_flags = if file == "mixed-eol.mbox" {
                "\\Seen"
            } else {
                ""
            };
            assert_eq!(m.flags.to_imap_list(), want_flags, "{file}");
        }
    }
}

/// shared/cases/12: info separators `:2,` `!2,` `;2,`, Dovecot `,S=`/`,W=` fields, flags on
/// files in `new/`, a `:` in the parent path; nothing from `tmp/` or Dovecot's files.
#[test]
fn case_12_maildir_info_separators_and_size_fields() {
    let root = case("12-maildir-info-separators-and-size-fields")
        .join("snap@2024-01-06T10:00:00")
        .join("Maildir");
    let read = read_all(&format!("maildir:{}", root.display()));
    assert_eq!(read.keys().collect::<Vec<_>>(), ["Archive", "INBOX"]);
    let flags_of = |mailbox: &str| -> BTreeMap<String, String> {
        read[mailbox]
            .0
            .iter()
            .map(|m| {
                let name = Path::new(&m.origin).file_name().unwrap().to_str().unwrap();
                let unique = name.split(['.', '_']).next().unwrap().to_string();
                (unique, m.flags.to_imap_list())
            })
            .collect()
    };
    let inbox = flags_of("INBOX");
    let want: BTreeMap<String, String> = [
        ("1704535200", "\\Seen \\Flagged"),
        ("1704535201", "\\Seen \\Answered"),
        ("1704535202", "\\Seen"),
        ("1704535203", "\\Seen \\Draft"),
        ("1704535204", ""),
        ("1704535206", ""),
        ("1704535208", "\\Flagged"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(inbox, want);
    assert_eq!(
        flags_of("Archive"),
        BTreeMap::from([("1704535209".to_string(), "\\Seen".to_string())])
    );
    for (msgs, counts) in read.values() {
        assert!(counts.skipped.is_empty());
        for m in msgs {
            check_invariants(m);
            assert!(!m.origin.contains("/Maildir/tmp/"));
        }
    }
}

/// shared/cases/21: messages without Message-ID are all read, none skipped, bytes unchanged.
#[test]
fn case_21_messages_without_message_id() {
    let dir = case("21-messages-without-message-id");
    let file = dir.join("sent-items.mbox");
    let before = sha256(&std::fs::read(&file).unwrap());
    let read = read_all(&format!("mbox:{}", file.display()));
    assert_eq!(read.keys().collect::<Vec<_>>(), ["sent-items"]);
    let (msgs, counts) = &read["sent-items"];
    assert!(counts.skipped.is_empty());
    let want: Vec<Vec<u8>> = ["expected-1.eml", "expected-2.eml", "expected-3.eml"]
        .iter()
        .map(|f| std::fs::read(dir.join(f)).unwrap())
        .collect();
    let got: Vec<Vec<u8>> = msgs.iter().map(|m| lf_to_crlf(&m.raw)).collect();
    assert_eq!(
        got,
        vec![
            want[0].clone(),
            want[1].clone(),
            want[2].clone(),
            want[2].clone()
        ]
    );
    assert_eq!(msgs[2].sha256, msgs[3].sha256);
    assert_eq!(sha256(&std::fs::read(&file).unwrap()), before);
    assert_eq!(
        before,
        "f4ac4e342471d2ccb7210aa6854584a5653c0f13bdcf8ecf0aa35ad6f020fced"
    );
}

// ---------------------------------------------------------------------------------------------
// Archives written by mailkeep
// ---------------------------------------------------------------------------------------------

struct Written {
    mailbox: &'static str,
    raw: &'static [u8],
    flags: Flags,
    date: i64,
}

fn many_keywords() -> Flags {
    // 28 keywords: Maildir file names hold 26 (a-z); only the ledger holds all.
    let mut f: Flags = (0..28)
        .map(|i| Flag::Keyword(format!("kw{i:02}")))
        .collect();
    f.insert(Flag::Seen);
    f
}

fn written() -> Vec<Written> {
    vec![
        Written {
            mailbox: "INBOX",
            raw: b"Subject: one\nDate: Mon, 10 Mar 2025 07:00:00 +0100\n\nFrom me\n>From you\n",
            flags: Flags::from_imap_list("\\Seen \\Answered $Forwarded Work"),
            date: 1_600_000_000,
        },
        Written {
            mailbox: "Archive/2023",
            raw: b"Subject: two\n\nbody\n",
            flags: Flags::new(),
            date: 1_500_000_000,
        },
        Written {
            mailbox: "Archive/2023",
            raw: b"Subject: three\n\nx\n",
            flags: many_keywords(),
            date: 1_400_000_000,
        },
        Written {
            mailbox: "日本語.box",
            raw: b"Subject: four\n\ny\n",
            flags: Flags::from_imap_list("\\Flagged \\Draft"),
            date: 1_300_000_000,
        },
    ]
}

fn write_archive(sink: &mut dyn Sink, root: &Path) {
    let mut records = Vec::new();
    let mut tails = Vec::new();
    for (i, w) in written().iter().enumerate() {
        let mailbox = MailboxName::new(w.mailbox);
        let mut staged = sink.stage(&mailbox).unwrap();
        staged.write_all(w.raw).unwrap();
        let staged = staged.finish().unwrap();
        let (size, sha) = (staged.size, staged.sha256.clone());
        let meta = PlaceMeta {
            mailbox: mailbox.clone(),
            flags: w.flags.clone(),
            internal_date: w.date,
            envelope_from: "a@example.com".into(),
            identity: format!("imap:a@h\0{}\01\0{i}", w.mailbox),
        };
        let stored = sink.place(staged, &meta).unwrap();
        tails.extend(sink.sync().unwrap());
        records.push(Record {
            account: "imap:a@h".into(),
            mailbox: mailbox.to_string(),
            uidl: None,
            uidvalidity: Some(1),
            uid: Some(i as u32 + 1),
            identity: meta.identity.clone(),
            size,
            wire_size: None,
            sha256: sha,
            internal_date: w.date,
            flags: w.flags.to_imap_list(),
            location: stored.location,
            stored_at: 1_700_000_000,
            verified: true,
        });
    }
    std::fs::create_dir_all(root.join("mailkeep")).unwrap();
    let mut ledger = Ledger::open(&root.join("mailkeep/ledger.sqlite")).unwrap();
    ledger.record_batch(&records, &tails).unwrap();
}

fn listing(dir: &Path) -> Vec<(String, u64)> {
    let mut out: Vec<(String, u64)> = walk(dir)
        .into_iter()
        .map(|p| {
            let len = std::fs::metadata(&p).unwrap().len();
            (p.strip_prefix(dir).unwrap().display().to_string(), len)
        })
        .collect();
    out.sort();
    out
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[track_caller]
fn check_written(spec: &str) {
    let read = read_all(spec);
    assert_eq!(
        read.keys().collect::<Vec<_>>(),
        ["Archive/2023", "INBOX", "日本語.box"]
    );
    for w in written() {
        let (msgs, _) = &read[w.mailbox];
        let m = msgs
            .iter()
            .find(|m| m.raw == w.raw)
            .unwrap_or_else(|| panic!("{}: {:?}", w.mailbox, String::from_utf8_lossy(w.raw)));
        assert_eq!(m.flags, w.flags, "{}", m.origin);
        assert_eq!(m.internal_date, Some(w.date), "{}", m.origin);
        assert_eq!(m.date_source, DateSource::Ledger, "{}", m.origin);
        check_invariants(m);
    }
    assert_eq!(total(&read), written().len());
}

#[test]
fn mailkeep_maildir_archive_reads_back_from_the_ledger() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("md");
    {
        let mut sink = MaildirSink::open(&root).unwrap();
        write_archive(&mut sink, &root);
    }
    // Another program touched the files' mtimes: the ledger's INTERNALDATE still wins.
    for p in walk(&root) {
        if p.parent().is_some_and(|d| d.ends_with("cur")) {
            let f = std::fs::File::options().write(true).open(&p).unwrap();
            f.set_modified(std::time::SystemTime::now()).unwrap();
        }
    }
    let before = listing(&root);
    check_written(&format!("maildir:{}", root.display()));
    assert_eq!(
        listing(&root),
        before,
        "reading changes nothing in the archive"
    );

    // A file whose flags another program changed: the file name's flags win.
    let inbox_cur = root.join("cur");
    let name = std::fs::read_dir(&inbox_cur)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .file_name()
        .into_string()
        .unwrap();
    let base = name.split(":2,").next().unwrap();
    let kw = std::fs::read_to_string(root.join("dovecot-keywords")).unwrap();
    assert_eq!(kw, "0 $Forwarded\n1 Work\n");
    std::fs::rename(
        inbox_cur.join(&name),
        root.join("new").join(format!("{base}:2,Fb")),
    )
    .unwrap();
    let read = read_all(&format!("maildir:{}", root.display()));
    let m = &read["INBOX"].0[0];
    assert_eq!(m.flags.to_imap_list(), "\\Flagged Work");
    assert_eq!(m.internal_date, Some(1_600_000_000));
    assert_eq!(m.date_source, DateSource::Ledger);

    // A message put there by another program (no record): its mtime.
    let foreign = root.join(".Archive.2023/new/1.foreign.host");
    std::fs::write(&foreign, b"Subject: foreign\r\n\r\nz\r\n").unwrap();
    let f = std::fs::File::options().write(true).open(&foreign).unwrap();
    f.set_modified(std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_234_567_890))
        .unwrap();
    let read = read_all(&format!("maildir:{}", root.display()));
    let m = read["Archive/2023"]
        .0
        .iter()
        .find(|m| m.origin.ends_with("1.foreign.host"))
        .unwrap();
    assert_eq!(m.raw, b"Subject: foreign\n\nz\n");
    assert_eq!(
        (m.internal_date, m.date_source),
        (Some(1_234_567_890), DateSource::FileMtime)
    );
}

#[test]
fn mailkeep_mbox_archive_reads_back_from_the_ledger() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("mb");
    {
        let mut sink = MboxSink::open(&root).unwrap();
        write_archive(&mut sink, &root);
    }
    let before = listing(&root);
    check_written(&format!("mbox:{}", root.display()));
    assert_eq!(
        listing(&root),
        before,
        "reading changes nothing in the archive"
    );

    // One file of the archive on its own: named as in the archive, ledger still used.
    let read = read_all(&format!(
        "mbox:{}",
        root.join("Archive/2023.mbox").display()
    ));
    assert_eq!(read.keys().collect::<Vec<_>>(), ["Archive/2023"]);
    let (msgs, _) = &read["Archive/2023"];
    assert_eq!(msgs[1].flags, many_keywords());
    assert_eq!(msgs[1].date_source, DateSource::Ledger);

    // An entry appended by another program: From-line date, no ledger.
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(root.join("INBOX.mbox"))
        .unwrap();
    f.write_all(b"From x@y Sat Feb 14 00:00:00 2009\nSubject: later\n\nq\n\n")
        .unwrap();
    let read = read_all(&format!("mbox:{}", root.display()));
    let m = read["INBOX"].0.last().unwrap();
    assert_eq!(m.raw, b"Subject: later\n\nq\n");
    assert_eq!(
        (m.internal_date, m.date_source),
        (Some(1_234_569_600), DateSource::MboxFromLine)
    );
    assert!(m.flags.is_empty());
}

// ---------------------------------------------------------------------------------------------
// Damaged input
// ---------------------------------------------------------------------------------------------

#[test]
fn damaged_mbox_files_are_errors_naming_the_path_never_panics() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("mboxes");
    std::fs::create_dir(&dir).unwrap();
    let garbage = dir.join("garbage.mbox");
    std::fs::write(&garbage, b"\x00\x01\x02 this is not an mbox\n\xff\xfe").unwrap();
    let good = dir.join("good.mbox");
    std::fs::write(
        &good,
        b"From a Thu Mar  7 09:05:07 2024\nSubject: g\n\nok\n",
    )
    .unwrap();
    let truncated = dir.join("truncated.mbox");
    std::fs::write(
        &truncated,
        b"From a Thu Mar  7 09:05:07 2024\nSubject: 1\n\none\n\nFrom b Thu Mar  7 09:05:08 2024\nSubject: 2\n\ncut in the midd",
    )
    .unwrap();
    let binary: Vec<u8> = (0..200_000u32).map(|i| (i * 7919 % 251) as u8).collect();
    std::fs::write(dir.join("binary.mbox"), &binary).unwrap();

    let mut src = source::open(&format!("mbox:{}", dir.display())).unwrap();
    let boxes = src.mailboxes().unwrap();
    assert_eq!(boxes.len(), 4);
    let mut n = 0;
    let err = src
        .messages(&MailboxName::new("garbage"), &mut |_| {
            n += 1;
            Ok(())
        })
        .unwrap_err();
    assert_eq!(n, 0);
    let text = err.to_string();
    assert!(text.contains(&garbage.display().to_string()), "{text}");
    assert!(text.contains("not an mbox"), "{text}");
    assert!(src
        .messages(&MailboxName::new("binary"), &mut |_| Ok(()))
        .is_err());
    let mut msgs = Vec::new();
    let c = src
        .messages(&MailboxName::new("truncated"), &mut |m| {
            msgs.push(m);
            Ok(())
        })
        .unwrap();
    assert_eq!(c.read, 2);
    assert_eq!(msgs[1].raw, b"Subject: 2\n\ncut in the midd\n");
    // The other mailboxes still read.
    assert_eq!(
        src.messages(&MailboxName::new("good"), &mut |_| Ok(()))
            .unwrap()
            .read,
        1
    );

    // Unknown kinds, missing paths.
    let e = source::open("zap:/x").err().unwrap();
    assert!(e.to_string().contains("unknown archive kind"), "{e}");
    let e = source::open("zip:/nope.zip").err().unwrap();
    assert!(e.to_string().contains("does not exist"), "{e}");
    let missing = t.path().join("nope");
    let e = source::open(&format!("maildir:{}", missing.display()))
        .err()
        .unwrap();
    assert!(
        e.to_string().contains(&missing.display().to_string()),
        "{e}"
    );
    assert!(source::open("mbox:").is_err());
}

#[test]
fn thunderbird_tree_with_subfolders() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("Local Folders");
    std::fs::create_dir_all(root.join("Inbox.sbd/Work.sbd")).unwrap();
    std::fs::create_dir_all(root.join("Orphan.sbd")).unwrap();
    let entry = |status: &str, keys: &str, subject: &str| {
        format!(
            "From - Sat Apr 12 16:05:51 2025\nX-Mozilla-Status: {status}\nX-Mozilla-Status2: 00000000\nX-Mozilla-Keys: {keys}\nSubject: {subject}\n\n>From the body\n\n"
        )
    };
    std::fs::write(root.join("Inbox"), entry("0001", "", "a")).unwrap();
    std::fs::write(
        root.join("Inbox.msf"),
        b"// <!-- <mdb:mork:z v=\"1.4\"/> -->",
    )
    .unwrap();
    std::fs::write(
        root.join("Inbox.sbd/Work"),
        entry("0004", "$label1 todo", "b") + &entry("0008", "", "gone"),
    )
    .unwrap();
    std::fs::write(root.join("Inbox.sbd/Work.sbd/Deep"), entry("1000", "", "c")).unwrap();
    std::fs::write(root.join("Orphan.sbd/Child"), entry("0000", "", "d")).unwrap();
    std::fs::write(root.join("Trash"), b"").unwrap();
    std::fs::write(root.join("popstate.dat"), b"# POP3 State File").unwrap();
    std::fs::write(root.join("notes"), b"not a folder").unwrap();

    let mut src = source::open(&format!("thunderbird:{}", root.display())).unwrap();
    let boxes: Vec<String> = src
        .mailboxes()
        .unwrap()
        .iter()
        .map(|m| m.to_string())
        .collect();
    assert_eq!(
        boxes,
        [
            "INBOX",
            "INBOX/Work",
            "INBOX/Work/Deep",
            "Orphan/Child",
            "Trash"
        ]
    );
    assert_eq!(src.warnings().len(), 1, "{:?}", src.warnings());
    let read = read_all(&format!("thunderbird:{}", root.display()));
    let flags =
        |mb: &str| -> Vec<String> { read[mb].0.iter().map(|m| m.flags.to_imap_list()).collect() };
    assert_eq!(flags("INBOX"), ["\\Seen"]);
    assert_eq!(flags("INBOX/Work"), ["\\Flagged $label1 todo"]);
    assert_eq!(read["INBOX/Work"].1.skipped.len(), 1);
    assert_eq!(flags("INBOX/Work/Deep"), ["$Forwarded"]);
    assert_eq!(flags("Orphan/Child"), [""]);
    assert_eq!(read["Trash"].0.len(), 0);
    // mboxo: the body's `>From` stays as Thunderbird wrote it.
    assert_eq!(read["INBOX"].0[0].raw, b"Subject: a\n\n>From the body\n");
}
