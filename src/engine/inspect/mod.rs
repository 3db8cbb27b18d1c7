//! Read-only looks at a local archive, for people and scripts: `list ARCHIVE` ([`list`]),
//! `verify ARCHIVE` ([`verify`]) and `export ARCHIVE --to DIR` ([`export`]).
//!
//! `list` and `export` read any archive kind through [`crate::archive::reader::open`], so they work on
//! everything `restore` reads. `verify` checks a mailkeep archive (Maildir, mbox, zip) against
//! its ledger. None of them writes to the archive: the ledger is opened read-only, no lock file
//! is created (an existing one is held shared, so they exit 5 while a backup writes).
//!
//! This module holds what the three share: how an archive argument is resolved, and the
//! decoded header summary of a message (date, sender, subject) with its display helpers.
//!
//! Each returns its report (a listing, [`verify::VerifyReport`], [`export::ExportReport`])
//! with the exit status it implies; nothing here prints: `cli::render` does.

pub mod decode;
pub mod export;
pub mod list;
pub mod verify;

use std::path::{Path, PathBuf};

use mail_parser::MessageParser;
use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

use crate::core::error::{Error, Result};

/// Archive kinds written as `kind:PATH`.
const KINDS: [&str; 5] = ["maildir", "mbox", "eml", "thunderbird", "zip"];

/// An archive argument, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveArg {
    /// The kind, lower case: `maildir`, `mbox`, `eml`, `thunderbird` or `zip`.
    pub kind: String,
    /// The path, `~/` expanded.
    pub path: PathBuf,
}

impl ArchiveArg {
    /// The spec [`crate::archive::reader::open`] takes: `kind:PATH`.
    pub fn spec(&self) -> String {
        format!("{}:{}", self.kind, self.path.display())
    }
}

/// True when `arg` is a server URL (`imaps://...`, `pop3://...`) rather than an archive.
pub fn is_server(arg: &str) -> bool {
    arg.contains("://")
}

fn expand_home(path: &str) -> PathBuf {
    let home = std::env::var_os("HOME").map(PathBuf::from);
    match (path.strip_prefix("~/"), home) {
        (Some(rest), Some(h)) => h.join(rest),
        (None, Some(h)) if path == "~" => h,
        _ => PathBuf::from(path),
    }
}

/// Resolves an archive argument: `maildir:PATH`, `mbox:PATH`, `eml:DIR`, `thunderbird:PATH`,
/// `zip:FILE` (any case), or a bare PATH: an existing mailkeep archive (its `mailkeep/kind`
/// file says `maildir` or `mbox`) or a `.zip` file.
///
/// Errors: [`Error::Usage`] for an unknown `kind:`, an empty path, or a bare path that is not a
/// mailkeep archive; those of [`crate::core::endpoint::recorded_kind`] for a damaged kind file.
pub fn resolve(arg: &str) -> Result<ArchiveArg> {
    if let Some((prefix, path)) = arg.split_once(':') {
        let kind = prefix.to_ascii_lowercase();
        if KINDS.contains(&kind.as_str()) {
            if path.is_empty() {
                return Err(Error::Usage(format!(
                    "`{arg}`: the archive path is empty (write `{prefix}:PATH`)"
                )));
            }
            return Ok(ArchiveArg {
                kind,
                path: expand_home(path),
            });
        }
        if prefix.len() >= 2 && prefix.bytes().all(|b| b.is_ascii_alphabetic()) {
            return Err(Error::Usage(format!(
                "`{arg}`: unknown archive kind `{prefix}:` (write maildir:PATH, mbox:PATH, eml:DIR, thunderbird:PATH or zip:FILE; a file name containing `:` can be written ./{arg})"
            )));
        }
    }
    if arg.is_empty() {
        return Err(Error::Usage("the archive argument is empty".into()));
    }
    let path = expand_home(arg);
    if let Some(kind) = crate::core::endpoint::recorded_kind(&path)? {
        return Ok(ArchiveArg {
            kind: kind.as_str().to_string(),
            path,
        });
    }
    if path.is_file()
        && path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("zip"))
    {
        return Ok(ArchiveArg {
            kind: "zip".into(),
            path,
        });
    }
    let why = if path.exists() {
        "is not a mailkeep archive (it has no mailkeep/kind file)"
    } else {
        "does not exist"
    };
    Err(Error::Usage(format!(
        "`{arg}` {why}: write the archive as maildir:PATH, mbox:PATH, eml:DIR, thunderbird:PATH or zip:FILE"
    )))
}

/// What `list --messages` and `export` show of a message: its sender and subject, decoded
/// (RFC 2047 encoded words in any charset mail-parser knows, ISO-2022-JP and Shift_JIS
/// included; adjacent words joined; control characters made spaces).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Summary {
    /// The display name of the first `From:` address, when it has one.
    pub from_name: Option<String>,
    /// The first `From:` address (`local@domain`).
    pub from_address: Option<String>,
    /// The `Subject:` header.
    pub subject: Option<String>,
}

impl Summary {
    /// Reads the header block of `raw` (the stored form). Never fails: a message without the
    /// headers gives `None`s.
    pub fn of(raw: &[u8]) -> Summary {
        let end = crate::archive::reader::header_end(raw);
        let clean = |s: String| Some(clean_text(&s)).filter(|s| !s.is_empty());
        let from = decode::header_value(raw, "From");
        // The address as mail-parser reads it (groups, comments, obsolete forms); the name
        // decoded by our own decoder (split and adjacent encoded words).
        let address = MessageParser::default()
            .parse_headers(&raw[..end])
            .and_then(|m| {
                let first = m.from().and_then(|a| a.first())?;
                let address = first.address().map(str::to_string);
                let name = first.name().map(str::to_string);
                Some((address, name))
            });
        let from_name = from
            .as_deref()
            .and_then(decode::display_name)
            .or_else(|| address.as_ref().and_then(|(_, n)| n.clone()))
            .and_then(clean);
        Summary {
            from_name,
            from_address: address.and_then(|(a, _)| a).and_then(clean),
            subject: decode::header_value(raw, "Subject")
                .map(|v| decode::decode_words(&v))
                .and_then(clean),
        }
    }

    /// The sender as the table shows it: the display name, else the address, else empty.
    pub fn from_shown(&self) -> &str {
        self.from_name
            .as_deref()
            .or(self.from_address.as_deref())
            .unwrap_or("")
    }

    /// The sender as `--from` matches it: `Name <address>`, or whichever part exists.
    pub fn from_full(&self) -> String {
        match (&self.from_name, &self.from_address) {
            (Some(n), Some(a)) => format!("{n} <{a}>"),
            (Some(n), None) => n.clone(),
            (None, Some(a)) => a.clone(),
            (None, None) => String::new(),
        }
    }
}

/// `s` with every control character (CR, LF, TAB, ESC, ...) made a space, runs of spaces
/// collapsed and the ends trimmed: safe to print on a terminal, one line.
pub fn clean_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut space = false;
    for c in s.chars() {
        if c.is_control() || (c.is_whitespace() && c != '\u{3000}') {
            space = true;
        } else {
            if space && !out.is_empty() {
                out.push(' ');
            }
            space = false;
            out.push(c);
        }
    }
    out
}

/// Case-insensitive substring test: both sides case-folded (Unicode lower case, and the
/// foldings lower case misses: `ß`/`ẞ` are `ss`, final `ς` is `σ`, and the dot that lower-casing
/// `İ` leaves after `i` is dropped, so `STRASSE` finds `Straße` and `istanbul` finds `İstanbul`).
pub fn contains_ci(haystack: &str, needle: &str) -> bool {
    fold_case(haystack).contains(&fold_case(needle))
}

/// The case folding [`contains_ci`] compares. Pure.
fn fold_case(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars().flat_map(char::to_lowercase) {
        match c {
            'ß' | 'ẞ' => out.push_str("ss"),
            'ς' => out.push('σ'),
            '\u{307}' if out.ends_with('i') => {}
            c => out.push(c),
        }
    }
    out
}

/// Display width of `s` in terminal columns (East Asian wide characters count two).
pub fn width(s: &str) -> usize {
    UnicodeWidthStr::width(s)
}

/// `s` cut to at most `max` columns, with `…` at the end when something was cut.
pub fn truncate_to_width(s: &str, max: usize) -> String {
    if width(s) <= max {
        return s.to_string();
    }
    let mut out = String::new();
    let mut w = 0;
    for c in s.chars() {
        let cw = c.width().unwrap_or(0);
        if w + cw + 1 > max {
            break;
        }
        out.push(c);
        w += cw;
    }
    out.push('…');
    out
}

/// `s` followed by spaces up to `cols` display columns.
pub fn pad_to_width(s: &str, cols: usize) -> String {
    let w = width(s);
    let mut out = s.to_string();
    out.extend(std::iter::repeat_n(' ', cols.saturating_sub(w)));
    out
}

/// `2023-04-01T09:05:07Z` (UTC) from seconds since the UNIX epoch.
pub fn rfc3339(secs: i64) -> String {
    chrono::DateTime::from_timestamp(secs, 0)
        .map(|d| d.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default()
}

/// `2023-04-01` (UTC) from seconds since the UNIX epoch.
pub fn ymd(secs: i64) -> String {
    chrono::DateTime::from_timestamp(secs, 0)
        .map(|d| d.format("%Y-%m-%d").to_string())
        .unwrap_or_default()
}

/// `2023-04-01 09:05` (UTC) from seconds since the UNIX epoch.
pub fn ymd_hm(secs: i64) -> String {
    chrono::DateTime::from_timestamp(secs, 0)
        .map(|d| d.format("%Y-%m-%d %H:%M").to_string())
        .unwrap_or_default()
}

/// Parses a `YYYY-MM-DD` option value as midnight UTC, in seconds since the UNIX epoch.
///
/// Errors: [`Error::Usage`] naming the option.
pub fn parse_day(option: &str, value: &str) -> Result<i64> {
    chrono::NaiveDate::parse_from_str(value, "%Y-%m-%d")
        .ok()
        .filter(|_| value.len() == 10)
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc().timestamp())
        .ok_or_else(|| {
            Error::Usage(format!(
                "{option} `{value}`: write a date as YYYY-MM-DD (e.g. 2024-03-01)"
            ))
        })
}

/// A path relative to `root` when it is inside it, for shorter messages.
pub(crate) fn relative_to<'a>(path: &'a Path, root: &Path) -> &'a Path {
    path.strip_prefix(root).unwrap_or(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn case09(name: &str) -> Vec<u8> {
        let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../shared/cases/09-japanese-iso2022jp-sjis-encoded-words")
            .join(name);
        std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
    }

    #[test]
    fn japanese_encoded_words_decode_exactly() {
        // shared/cases/09 expected-decoded.tsv
        let s = Summary::of(&crate::core::message::normalize(&case09("iso2022jp.eml")));
        assert_eq!(s.from_name.as_deref(), Some("田中 花子"));
        assert_eq!(
            s.subject.as_deref(),
            Some("【重要】会議室の予約変更のお知らせ（第２会議室・午後の部）")
        );
        let s = Summary::of(&crate::core::message::normalize(&case09("split-utf8.eml")));
        assert_eq!(
            s.subject.as_deref(),
            Some("【要確認】備品の再予約通知 2025/03/10 12:00 - 13:00")
        );
        let s = Summary::of(&crate::core::message::normalize(&case09("sjis.eml")));
        assert_eq!(s.from_name.as_deref(), Some("佐藤 一郎"));
        assert_eq!(s.subject.as_deref(), Some("ソフト表示の確認について"));
    }

    #[test]
    fn summary_of_odd_messages() {
        assert_eq!(Summary::of(b""), Summary::default());
        assert_eq!(Summary::of(b"\n\nbody"), Summary::default());
        let s = Summary::of(b"From: a@b.example\nSubject: x\x1b[31m red\r\n\tfolded\n\nbody\n");
        assert_eq!(s.from_name, None);
        assert_eq!(s.from_address.as_deref(), Some("a@b.example"));
        assert_eq!(s.from_shown(), "a@b.example");
        assert_eq!(s.subject.as_deref(), Some("x [31m red folded"));
        let s = Summary::of(b"From: \"Bob B\" <bob@x.example>\n\n");
        assert_eq!(s.from_full(), "Bob B <bob@x.example>");
    }

    #[test]
    fn substrings_in_any_case() {
        assert!(contains_ci("Re: Quarterly REPORT", "quarterly report"));
        assert!(contains_ci("Straße ÄRGER", "STRASSE"));
        assert!(contains_ci("İstanbul STRASSE", "istanbul"));
        assert!(contains_ci("İstanbul STRASSE", "straße"));
        assert!(contains_ci("ΟΔΥΣΣΕΥΣ", "οδυσσευς"));
        assert!(contains_ci("Jürgen", "JÜRGEN"));
        assert!(!contains_ci("Jürgen", "jurgen"));
        assert!(contains_ci("anything", ""));
    }

    #[test]
    fn widths_count_wide_characters_twice() {
        assert_eq!(width("会議室"), 6);
        assert_eq!(pad_to_width("会議", 6), "会議  ");
        assert_eq!(pad_to_width("abcdefg", 3), "abcdefg");
        assert_eq!(truncate_to_width("会議室の予約", 7), "会議室…");
        assert_eq!(truncate_to_width("abc", 3), "abc");
        // A wide character that does not fit is left out: 4 + 2 + 1 columns.
        assert_eq!(truncate_to_width("aaaa会議室の予約", 8), "aaaa会…");
    }

    #[test]
    fn days_and_dates() {
        assert_eq!(parse_day("--since", "2024-03-07").unwrap(), 1_709_769_600);
        for bad in ["2024-3-7", "2024-02-30", "yesterday", "2024-03-07T00:00"] {
            assert!(parse_day("--since", bad).is_err(), "{bad}");
        }
        assert_eq!(rfc3339(1_709_802_307), "2024-03-07T09:05:07Z");
        assert_eq!(ymd(1_709_802_307), "2024-03-07");
        assert_eq!(ymd_hm(1_709_802_307), "2024-03-07 09:05");
    }

    #[test]
    fn archive_arguments() {
        let a = resolve("maildir:/x/y").unwrap();
        assert_eq!(
            (a.kind.as_str(), a.spec()),
            ("maildir", "maildir:/x/y".into())
        );
        assert_eq!(resolve("MBOX:/m").unwrap().kind, "mbox");
        assert_eq!(resolve("zip:/a.zip").unwrap().kind, "zip");
        assert!(matches!(resolve("maildr:/x"), Err(Error::Usage(_))));
        assert!(matches!(resolve("mbox:"), Err(Error::Usage(_))));
        assert!(matches!(resolve(""), Err(Error::Usage(_))));
        let dir = tempfile::tempdir().unwrap();
        let e = resolve(dir.path().to_str().unwrap()).unwrap_err();
        assert!(e.to_string().contains("is not a mailkeep archive"), "{e}");
        std::fs::create_dir(dir.path().join("mailkeep")).unwrap();
        std::fs::write(dir.path().join("mailkeep/kind"), "mbox\n").unwrap();
        let a = resolve(dir.path().to_str().unwrap()).unwrap();
        assert_eq!(a.kind, "mbox");
        let z = dir.path().join("b.ZIP");
        std::fs::write(&z, b"PK").unwrap();
        assert_eq!(resolve(z.to_str().unwrap()).unwrap().kind, "zip");
    }
}
