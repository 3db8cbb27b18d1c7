//! The manifest of a zip archive (`zip:X.zip`) and of an `eml:DIR` export written by mailkeep,
//! and the names of their message files. Pure: parsing and formatting, no I/O.
//!
//! ## Layout
//!
//! One message per file, `<mailbox folder>/<NNNNNN>.eml`: `INBOX/000001.eml`,
//! `Archive/2023/000002.eml`. The number counts the messages of the whole archive in the order
//! they were written (at least six digits); a later write continues after the highest number.
//! The mailbox folder is the mailbox's levels joined by `/`, each level escaped by
//! [`escape_level`] so that it is one safe path segment on every system; a mailbox with no
//! message is kept in a zip as a directory entry (`Empty/`).
//!
//! ## `manifest.jsonl`
//!
//! At the root: one JSON object per line (UTF-8, LF), one line per message, in writing order:
//!
//! ```json
//! {"entry":"INBOX/000001.eml","mailbox":"INBOX","flags":["\\Seen"],"keywords":["$Forwarded"],"internal_date":1700000000,"date_source":"ledger","source_id":"pop3:alice@pop.example.com UIDL 0001","size":1234,"sha256":"9f86d0…"}
//! ```
//!
//! | field | meaning |
//! | --- | --- |
//! | `entry` | the message file, relative to the root, `/`-separated |
//! | `mailbox` | the mailbox, decoded, levels joined by `/` (authoritative: folder names are escaped) |
//! | `flags` | IMAP system flags: `\Seen`, `\Answered`, `\Flagged`, `\Deleted`, `\Draft` |
//! | `keywords` | IMAP keywords (`$Forwarded`, `Work`) |
//! | `internal_date` | INTERNALDATE in seconds since the UNIX epoch (UTC), or `null` when unknown |
//! | `date_source` | where that date came from (`ledger`, `server`, `file-mtime`, `mbox-from-line`, `date-header`, `received`, `unknown`) |
//! | `source_id` | the message's identity at its origin (`pop3:USER@HOST UIDL …`, `imap:USER@HOST MAILBOX … UIDVALIDITY … UID …`), or one mailkeep made up for a message that had none (`convert:<sha256> MAILBOX <mailbox> #<n>`) |
//! | `size` | size of the file in bytes |
//! | `sha256` | lower-case hex SHA-256 of the file |
//!
//! The message file holds the message's stored bytes exactly (LF line ends, see docs/archive-formats.md, "Byte
//! fidelity"); `size` and `sha256` are of those bytes. Readers ignore unknown fields, so later
//! versions may add some.

use std::collections::BTreeSet;

use crate::archive::reader::DateSource;
use crate::core::message::{Flag, Flags, MailboxName};

/// The manifest's file name at the root of a zip or an eml export.
pub const MANIFEST: &str = "manifest.jsonl";

/// One line of `manifest.jsonl` (see the module documentation).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ManifestRow {
    pub entry: String,
    pub mailbox: String,
    #[serde(default)]
    pub flags: Vec<String>,
    #[serde(default)]
    pub keywords: Vec<String>,
    #[serde(default)]
    pub internal_date: Option<i64>,
    #[serde(default)]
    pub date_source: Option<String>,
    #[serde(default)]
    pub source_id: Option<String>,
    pub size: u64,
    pub sha256: String,
}

impl ManifestRow {
    /// A row for a message stored at `entry`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        entry: String,
        mailbox: &MailboxName,
        flags: &Flags,
        internal_date: Option<i64>,
        date_source: DateSource,
        source_id: &str,
        size: u64,
        sha256: &str,
    ) -> ManifestRow {
        let (mut system, mut keywords) = (Vec::new(), Vec::new());
        for f in flags.iter() {
            match f {
                Flag::Keyword(k) => keywords.push(k.clone()),
                other => system.push(other.to_imap()),
            }
        }
        ManifestRow {
            entry,
            mailbox: mailbox.to_string(),
            flags: system,
            keywords,
            internal_date,
            date_source: Some(date_source_name(date_source)),
            source_id: Some(source_id.to_string()),
            size,
            sha256: sha256.to_string(),
        }
    }

    /// The row as one manifest line, with its LF.
    pub fn to_line(&self) -> String {
        let mut s = serde_json::to_string(self).expect("a manifest row is plain data");
        s.push('\n');
        s
    }

    /// Flags and keywords together (unknown system flags are dropped).
    pub fn all_flags(&self) -> Flags {
        self.flags
            .iter()
            .filter_map(|f| Flag::from_imap(f).filter(|f| !matches!(f, Flag::Keyword(_))))
            .chain(
                self.keywords
                    .iter()
                    .filter(|k| !k.is_empty() && !k.starts_with('\\'))
                    .map(|k| Flag::Keyword(k.clone())),
            )
            .collect()
    }

    /// The mailbox.
    pub fn mailbox(&self) -> MailboxName {
        MailboxName::new(&self.mailbox)
    }

    /// Where the date came from; [`DateSource::Unknown`] when there is no date.
    pub fn date_source(&self) -> DateSource {
        match self.internal_date {
            None => DateSource::Unknown,
            Some(_) => parse_date_source(self.date_source.as_deref().unwrap_or("")),
        }
    }
}

/// The kebab-case name of a date source, as `--json` reports and the manifest write it
/// (`ledger`, `date-header`, ...).
pub fn date_source_name(d: DateSource) -> String {
    serde_json::to_value(d)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_else(|| "unknown".into())
}

/// The inverse of [`date_source_name`]; an unknown name is [`DateSource::Ledger`] (the date is
/// the one the writer recorded).
pub fn parse_date_source(s: &str) -> DateSource {
    [
        DateSource::FileMtime,
        DateSource::MboxFromLine,
        DateSource::DateHeader,
        DateSource::Received,
        DateSource::Server,
        DateSource::Unknown,
    ]
    .into_iter()
    .find(|d| date_source_name(*d) == s)
    .unwrap_or(DateSource::Ledger)
}

/// A problem with one manifest line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadLine {
    /// 1-based line number.
    pub line: usize,
    pub detail: String,
}

/// Parses a manifest. Empty lines are ignored. With `allow_torn_tail`, a last line without
/// its LF (a write cut short by a crash) is ignored and its offset returned, so that an
/// appending writer can cut it off; otherwise it must parse like any other.
///
/// Returns the rows and, when a torn tail was ignored, the length of the good part.
pub fn parse(
    text: &[u8],
    allow_torn_tail: bool,
) -> Result<(Vec<ManifestRow>, Option<usize>), BadLine> {
    let mut rows = Vec::new();
    let mut pos = 0;
    for (i, line) in text.split_inclusive(|&b| b == b'\n').enumerate() {
        let complete = line.ends_with(b"\n");
        if !complete && allow_torn_tail {
            return Ok((rows, Some(pos)));
        }
        pos += line.len();
        let body = line.strip_suffix(b"\n").unwrap_or(line);
        if body.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let row = parse_line(body).map_err(|detail| BadLine {
            line: i + 1,
            detail,
        })?;
        rows.push(row);
    }
    Ok((rows, None))
}

/// Parses one manifest line (without its LF) and checks its `entry` and `sha256`.
pub fn parse_line(body: &[u8]) -> Result<ManifestRow, String> {
    let row: ManifestRow = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    check_entry_name(&row.entry)?;
    if row.sha256.len() != 64 || !row.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!("`sha256` of `{}` is not 64 hex digits", row.entry));
    }
    Ok(row)
}

/// Checks that a manifest `entry` is a relative path without `.`/`..` or empty segments.
fn check_entry_name(entry: &str) -> Result<(), String> {
    if entry.is_empty()
        || entry.starts_with('/')
        || entry.contains('\\')
        || entry.contains('\0')
        || entry
            .split('/')
            .any(|s| s.is_empty() || s == "." || s == "..")
    {
        return Err(format!("`entry` `{entry}` is not a relative path"));
    }
    Ok(())
}

/// Escapes one mailbox level as a path segment:
/// - `%` becomes `%25`, and `/` (inside a level, on a server whose delimiter is `.`) `%2F`;
/// - ASCII control characters and `\ : * ? " < > |` (unsafe in Windows file names and in zip
///   tools) become `%XX` (upper-case hex);
/// - a leading `.` becomes `%2E` (no hidden folders, no `.` or `..`);
/// - a trailing `.` or space becomes `%2E` / `%20` (Windows drops them);
/// - an empty level becomes `%`.
///
/// Everything else, UTF-8 included, is kept. [`unescape_level`] is the inverse.
pub fn escape_level(level: &str) -> String {
    if level.is_empty() {
        return "%".to_string();
    }
    let n = level.chars().count();
    let mut out = String::with_capacity(level.len());
    for (i, c) in level.chars().enumerate() {
        let unsafe_char = c == '%'
            || c == '/'
            || c.is_ascii_control()
            || matches!(c, '\\' | ':' | '*' | '?' | '"' | '<' | '>' | '|')
            || (c == '.' && (i == 0 || i + 1 == n))
            || (c == ' ' && i + 1 == n);
        if unsafe_char {
            out.push_str(&format!("%{:02X}", c as u32));
        } else {
            out.push(c);
        }
    }
    out
}

/// The inverse of [`escape_level`]: `%XX` decoded (either case), a level that is exactly `%`
/// is empty, a `%` not followed by two hex digits stays.
pub fn unescape_level(level: &str) -> String {
    crate::archive::maildir::writer::unescape_level(level)
}

/// The folder of a mailbox inside a zip or an eml export, `/`-separated, without a trailing
/// `/`: `INBOX`, `Archive/2023`, `%2Ehidden`. Each level goes through [`escape_level`], and a
/// top-level `manifest.jsonl` becomes `%6Danifest.jsonl`, so it cannot meet the manifest file.
pub fn mailbox_dir(mailbox: &MailboxName) -> String {
    let mut levels: Vec<String> = mailbox.levels().iter().map(|l| escape_level(l)).collect();
    if levels[0] == MANIFEST {
        levels[0] = format!("%6D{}", &MANIFEST[1..]);
    }
    levels.join("/")
}

/// The mailbox of a folder (the inverse of [`mailbox_dir`]); the root (`""`) is INBOX.
pub fn mailbox_of_dir(dir: &str) -> MailboxName {
    let dir = dir.trim_matches('/');
    if dir.is_empty() {
        return MailboxName::inbox();
    }
    let levels: Vec<String> = dir.split('/').map(unescape_level).collect();
    MailboxName::from_levels(&levels)
}

/// The entry name of the message numbered `n` in `mailbox`: `INBOX/000001.eml`.
pub fn entry_name(mailbox: &MailboxName, n: u64) -> String {
    format!("{}/{n:06}.eml", mailbox_dir(mailbox))
}

/// The number of an entry named like [`entry_name`] (`…/000042.eml` is 42).
pub fn entry_number(entry: &str) -> Option<u64> {
    let file = entry.rsplit('/').next()?;
    let stem = file.strip_suffix(".eml")?;
    if stem.is_empty() || !stem.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    stem.parse().ok()
}

/// The source identities of some rows.
pub fn identities(rows: &[ManifestRow]) -> std::collections::HashSet<String> {
    rows.iter().filter_map(|r| r.source_id.clone()).collect()
}

/// The mailboxes some rows name.
pub fn mailboxes(rows: &[ManifestRow]) -> BTreeSet<MailboxName> {
    rows.iter().map(ManifestRow::mailbox).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_escape_and_come_back() {
        let cases = [
            ("INBOX", "INBOX"),
            ("Archive/2023", "Archive/2023"),
            ("日本語/Entwürfe", "日本語/Entwürfe"),
            (".hidden", "%2Ehidden"),
            ("a:b*c?", "a%3Ab%2Ac%3F"),
            ("100%", "100%25"),
            ("trail. /x ", "trail.%20/x%20"),
            ("end.", "end%2E"),
            ("..", "%2E%2E"),
            ("a//b", "a/%/b"),
            ("manifest.jsonl", "%6Danifest.jsonl"),
            ("x/manifest.jsonl", "x/manifest.jsonl"),
            ("tab\there", "tab%09here"),
            ("back\\slash|pipe", "back%5Cslash%7Cpipe"),
            // A `/` inside a level (a `.` server's `Work/x`) and the two-level `Work/x`.
            ("Work%2Fx", "Work%2Fx"),
            ("Work/x", "Work/x"),
            ("a%25b", "a%25b"),
        ];
        for (name, dir) in cases {
            let mb = MailboxName::new(name);
            assert_eq!(mailbox_dir(&mb), dir, "{name}");
            assert_eq!(mailbox_of_dir(dir), mb, "{name}");
        }
        assert_eq!(mailbox_of_dir(""), MailboxName::inbox());
        assert_eq!(entry_name(&MailboxName::inbox(), 7), "INBOX/000007.eml");
        assert_eq!(entry_name(&MailboxName::new("A"), 1234567), "A/1234567.eml");
        assert_eq!(entry_number("Archive/2023/000042.eml"), Some(42));
        assert_eq!(entry_number("x/notes.eml"), None);
        assert_eq!(entry_number("x/000001.txt"), None);
    }

    #[test]
    fn rows_round_trip_and_bad_lines_are_named() {
        let flags = Flags::from_imap_list("\\Seen \\Deleted $Forwarded Work");
        let row = ManifestRow::new(
            "INBOX/000001.eml".into(),
            &MailboxName::inbox(),
            &flags,
            Some(1_700_000_000),
            DateSource::MboxFromLine,
            "pop3:a@h UIDL 1",
            12,
            &"a".repeat(64),
        );
        let line = row.to_line();
        assert!(
            line.contains(r#""flags":["\\Seen","\\Deleted"],"keywords":["$Forwarded","Work"]"#),
            "{line}"
        );
        let (rows, torn) = parse(line.as_bytes(), false).unwrap();
        assert_eq!((rows.clone(), torn), (vec![row.clone()], None));
        assert_eq!(rows[0].all_flags(), flags);
        assert_eq!(rows[0].date_source(), DateSource::MboxFromLine);

        let mut text = line.clone().into_bytes();
        text.extend_from_slice(b"\n{\"entry\":\"INBOX/0000");
        assert_eq!(
            parse(&text, true).unwrap(),
            (vec![row.clone()], Some(line.len() + 1))
        );
        assert_eq!(parse(&text, false).unwrap_err().line, 3);
        let bad = br#"{"entry":"../x.eml","mailbox":"INBOX","size":1,"sha256":"aa"}"#;
        assert!(parse(bad, false)
            .unwrap_err()
            .detail
            .contains("relative path"));
        let bad = br#"{"entry":"x.eml","mailbox":"INBOX","size":1,"sha256":"aa"}"#;
        assert!(parse(bad, false).unwrap_err().detail.contains("64 hex"));
        // Unknown fields are ignored; missing optional ones default.
        let ok = format!(
            r#"{{"entry":"x.eml","mailbox":"INBOX","size":1,"sha256":"{}","later":true}}"#,
            "b".repeat(64)
        );
        let (rows, _) = parse(ok.as_bytes(), false).unwrap();
        assert_eq!(rows[0].date_source(), DateSource::Unknown);
        assert!(rows[0].all_flags().is_empty());
    }
}
