//! The mbox reader and writer against real mail: the shared corpus (`shared/corpus/public-mbox`,
//! see its README.md for the per-file counts) and the failure cases 01, 05 and 07
//! (`shared/cases/*/CASE.md`).

use std::collections::BTreeMap;
use std::fs::File;
use std::io::BufReader;
use std::path::PathBuf;

use mailkeep::archive::mbox::format as mbox;
use mailkeep::archive::mbox::format::{Dialect, MboxMessage, MboxReader};
use mailkeep::core::message::normalize;
use sha2::{Digest, Sha256};

fn corpus() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/corpus/public-mbox"
    ))
}

fn case(dir: &str) -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/cases")).join(dir)
}

#[track_caller]
fn read_file(path: &PathBuf) -> Vec<MboxMessage> {
    let f = File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    MboxReader::new(BufReader::new(f))
        .with_path(path)
        .map(|m| m.unwrap_or_else(|e| panic!("{e}")))
        .collect()
}

fn read_bytes(data: &[u8]) -> Vec<MboxMessage> {
    MboxReader::new(data).map(|m| m.unwrap()).collect()
}

fn sha256(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

const COUNTS: &[(&str, usize)] = &[
    ("r-help_2002-02.pipermail.mbox", 698),
    ("r-help_2007-07.pipermail.mbox", 2211),
    ("r-devel_2015-03.pipermail.mbox", 212),
    ("r-sig-geo_2012-03.pipermail.mbox", 365),
    ("tomoyo-users-en_2019-2024.mboxrd.mbox", 66),
    ("tomoyo-users-ja_2019-2024.mboxrd.mbox", 4),
    ("sisimai_bounces_crlf.mbox", 37),
    ("netscape-1996_from-dash_content-length.mbox", 29),
];

#[test]
fn corpus_message_counts() {
    let mut seen = 0;
    for entry in std::fs::read_dir(corpus()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "mbox") {
            seen += 1;
            let name = path.file_name().unwrap().to_str().unwrap();
            let want = COUNTS
                .iter()
                .find(|(n, _)| *n == name)
                .unwrap_or_else(|| panic!("no expected count for {name}"))
                .1;
            let msgs = read_file(&path);
            assert_eq!(msgs.len(), want, "{name}");
            // Offsets point at the separator lines, in order.
            let data = std::fs::read(&path).unwrap();
            for m in &msgs {
                let at = &data[m.offset as usize..];
                assert!(at.starts_with(&m.from_line), "{name} offset {}", m.offset);
                assert!(at.starts_with(b"From "));
            }
        }
    }
    assert_eq!(seen, COUNTS.len());
}

#[test]
fn corpus_separator_details() {
    let msgs = read_file(&corpus().join("sisimai_bounces_crlf.mbox"));
    assert_eq!(msgs[0].envelope_from, "MAILER-DAEMON");
    // `From mailer-daemon  Sat Jan 10 09:50:37 2009`: two spaces before the date.
    let two = msgs
        .iter()
        .find(|m| m.from_line.ends_with(b"Sat Jan 10 09:50:37 2009"))
        .unwrap();
    assert_eq!(two.envelope_from, "mailer-daemon");
    assert!(msgs.iter().all(|m| !m.envelope_from.is_empty()));
    assert!(msgs.iter().all(|m| m.date.is_some()));
    // CRLF kept, no leading empty line, no trailing separator empty line.
    for m in &msgs {
        assert!(!m.raw.starts_with(b"\r\n"));
        assert!(m.raw.ends_with(b"\r\n"));
        assert!(!m.from_line.ends_with(b"\r"));
    }
    assert!(msgs[30].raw.contains(&0u8), "message #31 has a NUL byte");

    let msgs = read_file(&corpus().join("netscape-1996_from-dash_content-length.mbox"));
    assert!(msgs.iter().all(|m| m.envelope_from == "-"));
    assert_eq!(msgs.iter().filter(|m| m.date.is_none()).count(), 4);
    assert!(msgs.iter().all(|m| !m.raw.starts_with(b"From ")));

    let msgs = read_file(&corpus().join("r-help_2002-02.pipermail.mbox"));
    assert_eq!(msgs[0].envelope_from, "myotis at cix.compulink.co.uk");
    assert!(msgs.iter().all(|m| m.date.is_some()));
}

/// The tomoyo mailboxes are public-inbox mboxrd exports; unquoting must give the original
/// messages exactly (`tomoyo-users_mboxrd.sha256`: `<sha256>  <file>#<n>  bytes=<len> ...`).
#[test]
fn tomoyo_mboxrd_unquotes_to_original_bytes() {
    let list = std::fs::read_to_string(corpus().join("tomoyo-users_mboxrd.sha256")).unwrap();
    let mut want: BTreeMap<String, Vec<(usize, String, usize)>> = BTreeMap::new();
    for line in list
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
    {
        let f: Vec<&str> = line.split_whitespace().collect();
        let (file, n) = f[1].split_once('#').unwrap();
        let bytes = f[2].strip_prefix("bytes=").unwrap().parse().unwrap();
        want.entry(file.to_string()).or_default().push((
            n.parse().unwrap(),
            f[0].to_string(),
            bytes,
        ));
    }
    assert_eq!(want.len(), 2);
    for (file, expected) in want {
        let msgs = read_file(&corpus().join(&file));
        assert_eq!(msgs.len(), expected.len(), "{file}");
        for (n, sha, len) in expected {
            let m = &msgs[n - 1];
            assert_eq!(m.raw.len(), len, "{file}#{n} length");
            assert_eq!(sha256(&m.raw), sha, "{file}#{n} sha256");
        }
        // The mboxo reading differs exactly where the originals had `>From`.
        let f = File::open(corpus().join(&file)).unwrap();
        let o: Vec<_> = MboxReader::new(BufReader::new(f))
            .dialect(Dialect::Mboxo)
            .map(|m| m.unwrap())
            .collect();
        assert_eq!(o.len(), msgs.len());
    }
}

/// Every corpus message, normalised to LF, written as mboxrd and read back, is unchanged.
#[test]
fn corpus_round_trip() {
    for (name, count) in COUNTS {
        let msgs = read_file(&corpus().join(name));
        let mut out = Vec::new();
        let mut originals = Vec::new();
        for (i, m) in msgs.iter().enumerate() {
            let raw = normalize(&m.raw);
            mbox::write_entry(
                &mut out,
                &m.envelope_from,
                m.date.unwrap_or(i as i64),
                &mut &raw[..],
            )
            .unwrap();
            originals.push((raw, m.date));
        }
        let back = read_bytes(&out);
        assert_eq!(back.len(), *count, "{name}");
        for (i, (b, (raw, date))) in back.iter().zip(&originals).enumerate() {
            assert!(
                b.raw == *raw,
                "{name} message #{} differs after round trip",
                i + 1
            );
            if let Some(d) = date {
                assert_eq!(b.date, Some(*d), "{name} #{}", i + 1);
            }
        }
    }
}

/// shared/cases/01: only `^>*From ` lines are quoted; the `From:` header is untouched.
#[test]
fn case_01_mboxrd_from_colon_header() {
    let dir = case("01-mboxrd-from-colon-header");
    let eml = std::fs::read(dir.join("message.eml")).unwrap();
    assert_eq!(
        sha256(&eml),
        "3acb9454ed223e5762b9a27fe942d05d32b6ce2f0b9b55c4dc533d08aec89e23"
    );
    let expected = std::fs::read(dir.join("expected-mboxrd-message-part.txt")).unwrap();
    let msg = normalize(&eml);
    let entry = mbox::entry("alice.rivera@example.com", 1_741_083_300, &msg);
    let first_lf = entry.iter().position(|&b| b == b'\n').unwrap();
    let from = std::str::from_utf8(&entry[..first_lf]).unwrap();
    assert_eq!(
        from,
        "From alice.rivera@example.com Tue Mar  4 10:15:00 2025"
    );
    let part = &entry[first_lf + 1..];
    // The message part, plus the one empty line the writer adds after the entry.
    assert_eq!(&part[..part.len() - 1], &expected[..]);
    assert_eq!(part[part.len() - 1], b'\n');
    let differing = msg
        .split(|&b| b == b'\n')
        .zip(expected.split(|&b| b == b'\n'))
        .filter(|(a, b)| a != b)
        .count();
    assert_eq!(differing, 3);
    let back = read_bytes(&entry);
    assert_eq!(back.len(), 1);
    assert_eq!(back[0].raw, msg);
    assert_eq!(mailkeep::core::message::lf_to_crlf(&back[0].raw), eml);
}

/// shared/cases/05: CRLF and mixed-EOL mbox files give 2 messages with no leading empty line
/// and no stray CR; stripped of the X-Mozilla lines (the Thunderbird source's job) and sent
/// with CRLF, they equal the expected files.
#[test]
fn case_05_crlf_and_mixed_line_endings() {
    let dir = case("05-mbox-crlf-and-mixed-line-endings");
    let expected = [
        std::fs::read(dir.join("expected-1.eml")).unwrap(),
        std::fs::read(dir.join("expected-2.eml")).unwrap(),
    ];
    for file in ["windows-copied.mbox", "mixed-eol.mbox"] {
        let msgs = read_file(&dir.join(file));
        assert_eq!(msgs.len(), 2, "{file}");
        for (m, want) in msgs.iter().zip(&expected) {
            assert!(m.raw.starts_with(b"X-Mozilla-Status: ") || m.raw.starts_with(b"From: "));
            assert!(!m.raw.windows(3).any(|w| w == b"\r\r\n"));
            let lf = normalize(&m.raw);
            let kept: Vec<u8> = lf
                .split_inclusive(|&b| b == b'\n')
                .filter(|l| !l.starts_with(b"X-Mozilla-Status"))
                .flatten()
                .copied()
                .collect();
            assert_eq!(mailkeep::core::message::lf_to_crlf(&kept), *want, "{file}");
            assert!(m.date.is_some());
        }
        // Written back: one line-end convention (LF) throughout, same messages.
        let mut out = Vec::new();
        for m in &msgs {
            mbox::write_entry(
                &mut out,
                &m.envelope_from,
                m.date.unwrap(),
                &mut &normalize(&m.raw)[..],
            )
            .unwrap();
        }
        assert!(!out.contains(&b'\r'));
        let back = read_bytes(&out);
        assert_eq!(back.len(), 2);
        for (b, m) in back.iter().zip(&msgs) {
            assert_eq!(b.raw, normalize(&m.raw));
        }
    }
}

/// shared/cases/07: raw 8-bit bytes in the separator and headers are kept, nothing panics.
#[test]
fn case_07_raw_8bit() {
    let dir = case("07-raw-8bit-header-bytes");
    let eml = std::fs::read(dir.join("eight-bit.eml")).unwrap();
    let msgs = read_file(&dir.join("eight-bit.mbox"));
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0].envelope_from, "jérôme@example.org");
    assert_eq!(msgs[0].date, Some(1_741_683_600));
    assert_eq!(normalize(&msgs[0].raw), normalize(&eml));
    assert_eq!(mailkeep::core::message::lf_to_crlf(&msgs[0].raw), eml);
    for b in [0xE9u8, 0xF4, 0xFF, 0xFE, 0x80] {
        assert!(msgs[0].raw.contains(&b));
    }
    let entry = mbox::entry(&msgs[0].envelope_from, 1_741_683_600, &normalize(&eml));
    assert_eq!(read_bytes(&entry)[0].raw, normalize(&eml));
}
