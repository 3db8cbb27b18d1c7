//! mailkeep's IMAP response reader on the server-quirk response matrix
//! (`tests/data/imap-quirk-responses.txt`: 83 responses from other mail tools' bug reports and
//! RFC examples, each with the facts a reader must get from it). The same rows measured the
//! `imap` crate's parser (imap-proto) and imap-codec before mailkeep moved to its own reader:
//! DESIGN-NOTES.md, "The IMAP parser"; `scripts/parser-matrix/` reproduces the comparison.
//!
//! Every row must read exactly as expected, except the deviations listed in [`KNOWN`], each
//! decided on purpose.

use std::collections::BTreeMap;

/// Rows mailkeep reads differently from the expected facts, on purpose.
const KNOWN: &[(&str, &str)] = &[(
    "fetch-uid-64bit",
    "a UID is a 32-bit nz-number (RFC 3501 9, RFC 9051 9): a response with a larger one is refused (the session ends; that mailbox fails) rather than truncated",
)];

struct Row {
    name: String,
    bytes: Vec<u8>,
    expect: Vec<String>,
}

fn rows() -> Vec<Row> {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/imap-quirk-responses.txt"
    ))
    .unwrap();
    let mut rows = Vec::new();
    let mut cur: Option<Row> = None;
    for line in text.lines().chain(std::iter::once("")) {
        if line.starts_with('#') {
            continue;
        }
        if line.trim().is_empty() {
            rows.extend(cur.take());
            continue;
        }
        let r = cur.get_or_insert_with(|| Row {
            name: String::new(),
            bytes: Vec::new(),
            expect: Vec::new(),
        });
        if let Some(v) = line.strip_prefix("name: ") {
            r.name = v.to_string();
        } else if let Some(v) = line.strip_prefix("bytes: ") {
            r.bytes = v
                .replace("\\r\\n", "\r\n")
                .replace("\\x00", "\0")
                .into_bytes();
        } else if let Some(v) = line.strip_prefix("expect: ") {
            r.expect.push(v.to_string());
        } else if !line.starts_with("source: ") && !line.starts_with("note: ") {
            panic!("bad line in the rows file: {line}");
        }
    }
    rows
}

/// The comparison form of a fact (as in `scripts/parser-matrix`): a `date-day-fixed` may be
/// ` 5` or `05`; INBOX in any case is INBOX; a response code compares by its atom only.
fn canon(f: &str) -> String {
    let f = code_atom(&inbox(f));
    let key = "INTERNALDATE=0";
    if let Some(i) = f.find(key) {
        let b = f.as_bytes();
        let j = i + key.len();
        if j + 1 < b.len() && b[j].is_ascii_digit() && b[j + 1] == b'-' {
            let mut s = f.clone();
            s.replace_range(j - 1..j, " ");
            return s;
        }
    }
    f
}

fn inbox(f: &str) -> String {
    if let Some(rest) = f.strip_prefix("STATUS ") {
        if rest.len() >= 7 && rest[..7].eq_ignore_ascii_case("\"inbox\"") {
            return format!("STATUS \"INBOX\"{}", &rest[7..]);
        }
    }
    if f.starts_with("LIST ") && f.len() > 8 {
        let cut = f.len() - 8;
        if f.is_char_boundary(cut) && f[cut..].eq_ignore_ascii_case(" \"inbox\"") {
            return format!("{} \"INBOX\"", &f[..cut]);
        }
    }
    f.to_string()
}

fn code_atom(f: &str) -> String {
    let head_len = if let Some(rest) = f.strip_prefix("TAGGED ") {
        match rest.find(' ') {
            Some(i) => 7 + i + 1,
            None => return f.to_string(),
        }
    } else if f.starts_with("BYE ") {
        4
    } else {
        return f.to_string();
    };
    let rest = &f[head_len..];
    if let Some(inner) = rest.strip_prefix('[') {
        if let Some(end) = inner.find(']') {
            let atom = inner[..end].split(' ').next().unwrap_or("").to_uppercase();
            return format!("{}[{}]{}", &f[..head_len], atom, &inner[end + 1..]);
        }
    }
    f.to_string()
}

/// Lines outside the fact format are not compared: `UNSUPPORTED` (a response mailkeep reads
/// and does not use) and untagged `OK`/`NO`/`BAD` lines without a fact.
fn in_format(f: &&String) -> bool {
    !(f.as_str() == "UNSUPPORTED"
        || f.starts_with("OK ")
        || f.starts_with("NO ")
        || f.starts_with("BAD "))
}

#[test]
fn every_row_reads_as_expected_but_the_known_deviations() {
    let rows = rows();
    assert!(rows.len() >= 80, "{} rows", rows.len());
    let mut wrong: BTreeMap<String, (Vec<String>, Vec<String>)> = BTreeMap::new();
    for r in &rows {
        let got = mailkeep_fuzz::imap_response_facts(&r.bytes);
        let g: Vec<String> = got.iter().filter(in_format).map(|f| canon(f)).collect();
        let w: Vec<String> = r
            .expect
            .iter()
            .filter(in_format)
            .map(|f| canon(f))
            .collect();
        if g != w {
            wrong.insert(r.name.clone(), (w, g));
        }
    }
    let known: Vec<&str> = KNOWN.iter().map(|(n, _)| *n).collect();
    let unexpected: Vec<_> = wrong
        .iter()
        .filter(|(n, _)| !known.contains(&n.as_str()))
        .collect();
    assert!(
        unexpected.is_empty(),
        "rows read wrong (expected, got): {unexpected:#?}"
    );
    for n in known {
        assert!(
            wrong.contains_key(n),
            "{n} now reads as expected: remove it from KNOWN"
        );
    }
    assert_eq!(rows.len() - wrong.len(), rows.len() - KNOWN.len());
}
