//! The mbox format (RFC 4155 family), pure and streaming: writing mboxrd entries and reading
//! mboxrd, mboxo and Netscape/Thunderbird (`From - `) files.
//!
//! Our own code rather than a library's: the libraries we measured dropped the final message
//! or split on every `From` (DESIGN.md, "Dependencies").
//!
//! ## Writing (always mboxrd)
//!
//! An entry is a separator line from [`from_line`] (`From sender Thu Mar  7 09:05:07 2024`,
//! the date in UTC), then the message with one `>` added to every line matching `^>*From `
//! ([`QuoteWriter`]), ending in LF (one is added when missing), then one empty line. Every
//! `From ` line of a message is quoted, so no message line can ever look like a separator, and
//! reading an entry back gives the message bytes exactly.
//!
//! ## Reading ([`MboxReader`])
//!
//! A new message starts at a separator line:
//! - the first line of the file, which must start with `From ` (otherwise the reader returns
//!   the error `not an mbox: first line is not a From line`; an empty file has no messages);
//! - a line `From <sender> <date>` that follows an empty line, where `<date>` is asctime-like
//!   (`Thu Mar  7 09:05:07 2024`; runs of spaces allowed, seconds optional, a time-zone token
//!   allowed before the year and up to two after it, then optionally `remote from <host>`);
//!   the sender may be several words (pipermail writes `user at host`);
//! - leniency for Netscape/Thunderbird folders: any line starting `From - ` (or exactly
//!   `From -`), even when it does not follow an empty line.
//!
//! Any other line, including a `From ` line without a date, is message content. The message
//! bytes are the file's bytes between separator lines, without the one empty line (LF or
//! CRLF) that precedes the next separator or the end of the file; line ends are kept as they
//! are in the file (CRLF stays CRLF). With [`Dialect::Mboxrd`] (the default) one `>` is removed
//! from every line matching `^>+From `; [`Dialect::Mboxo`] leaves lines as they are.
//! `Content-Length:` headers are ignored: real files carry wrong values.
//!
//! The reader never panics on malformed input. It holds one message at a time in memory.

use std::io::{self, BufRead, Read, Write};
use std::path::{Path, PathBuf};

use crate::core::error::{Error, Result};

const WEEKDAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// The sender written when none is known.
pub const UNKNOWN_SENDER: &str = "MAILER-DAEMON";

/// Earliest and latest dates [`from_line`] writes (years 0001 to 9999), in seconds since the
/// UNIX epoch; dates outside are clamped so the year always has four digits.
const MIN_DATE: i64 = -62_135_596_800;
const MAX_DATE: i64 = 253_402_300_799;

// ---------------------------------------------------------------------------------------------
// Writer side
// ---------------------------------------------------------------------------------------------

/// Makes an envelope sender one `From `-line token: whitespace and control characters become
/// `_`; an empty sender becomes `MAILER-DAEMON`. Other characters (UTF-8 included) are kept.
pub fn sanitize_sender(envelope_from: &str) -> String {
    let s: String = envelope_from
        .trim()
        .chars()
        .map(|c| {
            if c.is_whitespace() || c.is_control() {
                '_'
            } else {
                c
            }
        })
        .collect();
    if s.is_empty() {
        UNKNOWN_SENDER.to_string()
    } else {
        s
    }
}

/// The asctime form of a date (`Thu Mar  7 09:05:07 2024`, UTC, day padded with a space).
/// `date_secs` is in seconds since the UNIX epoch; it is clamped to the years 0001–9999.
pub fn asctime(date_secs: i64) -> String {
    let secs = date_secs.clamp(MIN_DATE, MAX_DATE);
    let dt = chrono::DateTime::from_timestamp(secs, 0)
        .unwrap_or_default()
        .naive_utc();
    use chrono::{Datelike, Timelike};
    format!(
        "{} {} {:>2} {:02}:{:02}:{:02} {:04}",
        WEEKDAYS[dt.weekday().num_days_from_monday() as usize],
        MONTHS[dt.month0() as usize],
        dt.day(),
        dt.hour(),
        dt.minute(),
        dt.second(),
        dt.year()
    )
}

/// The separator line of an entry, with its LF: `From sender Thu Mar  7 09:05:07 2024\n`.
/// The sender goes through [`sanitize_sender`]; `date_secs` (seconds since the UNIX epoch) is
/// written in UTC.
pub fn from_line(envelope_from: &str, date_secs: i64) -> Vec<u8> {
    format!(
        "From {} {}\n",
        sanitize_sender(envelope_from),
        asctime(date_secs)
    )
    .into_bytes()
}

/// Where [`QuoteWriter`] is within the current line.
#[derive(Debug, Clone, Copy)]
enum QuoteState {
    /// At the start of a line, or inside its prefix: `gt` `>` characters then the first
    /// `matched` bytes of `From ` have been seen and held back.
    Prefix { gt: u64, matched: usize },
    /// The line cannot match any more; bytes pass through until the next LF.
    Rest,
}

/// A writer adding mboxrd quoting: one `>` before every line matching `^>*From ` (`From`
/// followed by a space; `From:` and `Fromage` are left alone). Streaming: lines may be of any
/// length and writes may split them anywhere. Call [`QuoteWriter::finish`] at the end.
pub struct QuoteWriter<W: Write> {
    inner: W,
    state: QuoteState,
    written: u64,
    last: Option<u8>,
}

const FROM_SPACE: &[u8] = b"From ";

impl<W: Write> QuoteWriter<W> {
    /// Quotes into `inner`.
    pub fn new(inner: W) -> Self {
        QuoteWriter {
            inner,
            state: QuoteState::Prefix { gt: 0, matched: 0 },
            written: 0,
            last: None,
        }
    }

    /// Bytes written to the inner writer so far (quoting included).
    pub fn written(&self) -> u64 {
        self.written
    }

    /// The last input byte seen (`None` before any input).
    pub fn last_byte(&self) -> Option<u8> {
        self.last
    }

    fn put(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.inner.write_all(bytes)?;
        self.written += bytes.len() as u64;
        Ok(())
    }

    fn put_gt(&mut self, mut n: u64) -> io::Result<()> {
        const GTS: [u8; 64] = [b'>'; 64];
        while n > 0 {
            let k = n.min(64) as usize;
            self.put(&GTS[..k])?;
            n -= k as u64;
        }
        Ok(())
    }

    /// Writes a held-back prefix unchanged.
    fn release(&mut self, gt: u64, matched: usize) -> io::Result<()> {
        self.put_gt(gt)?;
        self.put(&FROM_SPACE[..matched])
    }

    /// Writes a held-back line prefix (a line ending without LF), flushes, and returns the
    /// inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        if let QuoteState::Prefix { gt, matched } = self.state {
            self.release(gt, matched)?;
        }
        self.inner.flush()?;
        Ok(self.inner)
    }
}

impl<W: Write> Write for QuoteWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut i = 0;
        while i < buf.len() {
            match self.state {
                QuoteState::Rest => match buf[i..].iter().position(|&b| b == b'\n') {
                    Some(p) => {
                        self.put(&buf[i..=i + p])?;
                        i += p + 1;
                        self.state = QuoteState::Prefix { gt: 0, matched: 0 };
                    }
                    None => {
                        self.put(&buf[i..])?;
                        i = buf.len();
                    }
                },
                QuoteState::Prefix { gt, matched } => {
                    let b = buf[i];
                    if matched == 0 && b == b'>' {
                        self.state = QuoteState::Prefix {
                            gt: gt + 1,
                            matched,
                        };
                        i += 1;
                    } else if b == FROM_SPACE[matched] {
                        if matched + 1 == FROM_SPACE.len() {
                            self.put_gt(gt + 1)?;
                            self.put(FROM_SPACE)?;
                            self.state = QuoteState::Rest;
                        } else {
                            self.state = QuoteState::Prefix {
                                gt,
                                matched: matched + 1,
                            };
                        }
                        i += 1;
                    } else {
                        // No match: give back what was held and reprocess `b` in the line.
                        self.release(gt, matched)?;
                        self.state = QuoteState::Rest;
                    }
                }
            }
        }
        if let Some(&b) = buf.last() {
            self.last = Some(b);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// mboxrd-quotes a whole message in memory (see [`QuoteWriter`]).
pub fn quote(message: &[u8]) -> Vec<u8> {
    let mut q = QuoteWriter::new(Vec::with_capacity(message.len() + 16));
    q.write_all(message).expect("writing to a Vec cannot fail");
    q.finish().expect("writing to a Vec cannot fail")
}

/// Streams one complete entry into `out`: [`from_line`], the quoted message from `message`
/// (an LF added when it does not end in one; an empty message stays empty), then one empty
/// line. Returns the entry's length in bytes. Memory use is bounded by the copy buffer.
pub fn write_entry<W: Write, R: Read>(
    out: &mut W,
    envelope_from: &str,
    date_secs: i64,
    message: &mut R,
) -> io::Result<u64> {
    let head = from_line(envelope_from, date_secs);
    out.write_all(&head)?;
    let mut q = QuoteWriter::new(&mut *out);
    io::copy(message, &mut q)?;
    let needs_lf = matches!(q.last_byte(), Some(b) if b != b'\n');
    let body = q.written();
    q.finish()?;
    let mut tail: &[u8] = b"\n";
    if needs_lf {
        tail = b"\n\n";
    }
    out.write_all(tail)?;
    Ok(head.len() as u64 + body + tail.len() as u64)
}

/// One complete entry in memory (see [`write_entry`]).
pub fn entry(envelope_from: &str, date_secs: i64, message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len() + 64);
    write_entry(&mut out, envelope_from, date_secs, &mut &message[..])
        .expect("writing to a Vec cannot fail");
    out
}

// ---------------------------------------------------------------------------------------------
// Separator parsing
// ---------------------------------------------------------------------------------------------

/// What a separator line says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FromLineInfo {
    /// The sender (everything between `From ` and the date, trimmed), decoded lossily.
    pub envelope_from: String,
    /// The date in seconds since the UNIX epoch; `None` without a (valid) date.
    pub date: Option<i64>,
}

fn strip_eol(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// Whitespace-separated tokens of `s` with their start offsets.
fn tokens(s: &[u8]) -> Vec<(usize, &[u8])> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < s.len() {
        while i < s.len() && (s[i] == b' ' || s[i] == b'\t') {
            i += 1;
        }
        let start = i;
        while i < s.len() && s[i] != b' ' && s[i] != b'\t' {
            i += 1;
        }
        if i > start {
            out.push((start, &s[start..i]));
        }
    }
    out
}

fn name_index(tok: &[u8], names: &[&str]) -> Option<usize> {
    names
        .iter()
        .position(|n| tok.eq_ignore_ascii_case(n.as_bytes()))
}

fn number(tok: &[u8], min_len: usize, max_len: usize) -> Option<u32> {
    if tok.len() < min_len || tok.len() > max_len || !tok.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(tok).ok()?.parse().ok()
}

/// A numeric zone `+hhmm`/`-hhmm`, as an offset in seconds east of UTC.
fn numeric_zone(tok: &[u8]) -> Option<i64> {
    if tok.len() != 5 {
        return None;
    }
    let sign = match tok[0] {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let v = number(&tok[1..], 4, 4)? as i64;
    Some(sign * ((v / 100) * 3600 + (v % 100) * 60))
}

/// A zone name such as `EST`, `MET`, `GMT` (letters only, at most 5).
fn zone_name(tok: &[u8]) -> bool {
    !tok.is_empty() && tok.len() <= 5 && tok.iter().all(u8::is_ascii_alphabetic)
}

fn time_of_day(tok: &[u8]) -> Option<(u32, u32, u32)> {
    let parts: Vec<&[u8]> = tok.split(|&b| b == b':').collect();
    let (h, m, s) = match parts.as_slice() {
        [h, m] => (*h, *m, &b"00"[..]),
        [h, m, s] => (*h, *m, *s),
        _ => return None,
    };
    Some((number(h, 1, 2)?, number(m, 2, 2)?, number(s, 2, 2)?))
}

/// Parses an asctime-like date at the start of `toks`, which must cover the rest of the line.
/// Returns the date (`None` when well-formed but not a real calendar date) on success.
fn parse_date(toks: &[(usize, &[u8])]) -> Option<Option<i64>> {
    let mut it = toks.iter().map(|t| t.1);
    name_index(it.next()?, &WEEKDAYS)?;
    let month = name_index(it.next()?, &MONTHS)? as u32 + 1;
    let day = number(it.next()?, 1, 2)?;
    let (h, mi, s) = time_of_day(it.next()?)?;
    let mut offset = 0i64;
    let mut tok = it.next()?;
    if number(tok, 4, 4).is_none() {
        if let Some(o) = numeric_zone(tok) {
            offset = o;
        } else if !zone_name(tok) {
            return None;
        }
        tok = it.next()?;
    }
    let year = number(tok, 4, 4)?;
    // Trailing: up to two zone tokens, then optionally `remote from <host>`.
    let rest: Vec<&[u8]> = it.collect();
    let mut k = 0;
    while k < rest.len() && k < 2 {
        if let Some(o) = numeric_zone(rest[k]) {
            offset = o;
        } else if !zone_name(rest[k]) || rest[k].eq_ignore_ascii_case(b"remote") {
            break;
        }
        k += 1;
    }
    match &rest[k..] {
        [] => {}
        [r, f, _host] if r.eq_ignore_ascii_case(b"remote") && f.eq_ignore_ascii_case(b"from") => {}
        _ => return None,
    }
    let date = chrono::NaiveDate::from_ymd_opt(year as i32, month, day)
        .and_then(|d| d.and_hms_opt(h, mi, s))
        .map(|dt| dt.and_utc().timestamp() - offset);
    // The shape is checked above (what makes a line a separator); the instant is
    // crate::core::date's, which also knows zone names (`PST`, `CET`: an offset, not UTC).
    let joined: Vec<u8> = toks.iter().map(|t| t.1).collect::<Vec<_>>().join(&b' ');
    Some(date.and(crate::core::date::parse(&joined).map(|d| d.secs)))
}

/// Parses a strict separator line `From <sender> <asctime date>` (line end optional). Returns
/// `None` when the line is not one; `From - ` lines without a date are not strict separators
/// (the reader accepts them through its `From - ` leniency).
pub fn parse_from_line(line: &[u8]) -> Option<FromLineInfo> {
    let rest = strip_eol(line).strip_prefix(b"From ")?;
    let toks = tokens(rest);
    for i in 1..toks.len() {
        if let Some(date) = parse_date(&toks[i..]) {
            let sender = rest[..toks[i].0].trim_ascii();
            return Some(FromLineInfo {
                envelope_from: String::from_utf8_lossy(sender).into_owned(),
                date,
            });
        }
    }
    None
}

/// What any separator line the reader accepted says: the strict parse when it succeeds,
/// otherwise its first token as sender and no date.
fn separator_info(line: &[u8]) -> FromLineInfo {
    if let Some(info) = parse_from_line(line) {
        return info;
    }
    let rest = strip_eol(line).strip_prefix(b"From ").unwrap_or_default();
    let toks = tokens(rest);
    let sender = toks.first().map(|t| t.1).unwrap_or_default();
    // A lenient separator (`From - ...`) whose date is not asctime: any date form
    // crate::core::date reads (`From - 2014-03-04 10:00:00`, `From - 4 Mar 2014 10:00 +0100`).
    let date = toks
        .get(1)
        .and_then(|t| crate::core::date::parse(&rest[t.0..]))
        .map(|d| d.secs);
    FromLineInfo {
        envelope_from: String::from_utf8_lossy(sender).into_owned(),
        date,
    }
}

fn is_dash_separator(line: &[u8]) -> bool {
    line.starts_with(b"From - ") || strip_eol(line) == b"From -"
}

fn is_empty_line(line: &[u8]) -> bool {
    line == b"\n" || line == b"\r\n"
}

/// True for a line matching `^>+From `.
fn is_quoted_from(line: &[u8]) -> bool {
    let gts = line.iter().take_while(|&&b| b == b'>').count();
    gts > 0 && line[gts..].starts_with(FROM_SPACE)
}

// ---------------------------------------------------------------------------------------------
// Reader side
// ---------------------------------------------------------------------------------------------

/// How `>From ` lines are read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Dialect {
    /// mboxrd: one `>` is removed from every line matching `^>+From ` (what we write).
    #[default]
    Mboxrd,
    /// mboxo: lines are kept as they are (a `>From ` written by the sender stays).
    Mboxo,
}

/// One message read from an mbox file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MboxMessage {
    /// The separator line, without its line end.
    pub from_line: Vec<u8>,
    /// The sender named in the separator line (lossy UTF-8; `-` for `From - ` lines).
    pub envelope_from: String,
    /// The separator line's date, in seconds since the UNIX epoch (an asctime date is taken
    /// as UTC unless a numeric zone follows it); `None` when it has none (`From - `).
    pub date: Option<i64>,
    /// The message bytes, unquoted per the dialect, line ends as in the file; empty when
    /// `oversize`.
    pub raw: Vec<u8>,
    /// Byte offset of the separator line in the file.
    pub offset: u64,
    /// `Some(n)`: the message's `n` bytes (as in the file) are more than the reader's limit
    /// ([`MboxReader::max_message`]); they were skipped over, not kept, and `raw` is empty.
    pub oversize: Option<u64>,
    /// With [`MboxReader::hashing`]: the lower-case hex SHA-256 of the message bytes (what
    /// `raw` holds, or would hold without the limit).
    pub sha256: Option<String>,
}

/// Reads messages from an mbox, one at a time (see the module documentation for the rules).
pub struct MboxReader<R: BufRead> {
    inner: R,
    dialect: Dialect,
    path: PathBuf,
    pos: u64,
    started: bool,
    done: bool,
    next_from: Option<(Vec<u8>, u64)>,
    line: Vec<u8>,
    /// The largest message kept, in bytes.
    max_message: u64,
    /// The last line read ended with a line end (or nothing was read yet after a separator):
    /// the next byte starts a line.
    at_line_start: bool,
    /// Hash each message as it is read ([`MboxMessage::sha256`]), kept or not.
    hash: bool,
}

/// Longest piece of a line read at once, in bytes: a line longer than this is read in pieces,
/// so memory is bounded by the message limit, never by a line.
const LINE_PIECE: u64 = 64 * 1024;

/// The first line must start with `From ` within this many bytes.
const FIRST_LINE_PEEK: u64 = 1024;

impl<R: BufRead> MboxReader<R> {
    /// Reads mboxrd from `inner`.
    pub fn new(inner: R) -> Self {
        MboxReader {
            inner,
            dialect: Dialect::Mboxrd,
            path: PathBuf::new(),
            pos: 0,
            started: false,
            done: false,
            next_from: None,
            line: Vec::new(),
            max_message: crate::core::limits::max_message_size(),
            at_line_start: true,
            hash: false,
        }
    }

    /// Hashes every message while reading it ([`MboxMessage::sha256`]): a message over the
    /// limit is hashed too, in bounded memory (for `verify`, which checks bytes it does not
    /// keep).
    pub fn hashing(mut self) -> Self {
        self.hash = true;
        self
    }

    /// Keeps messages up to `bytes` (default [`crate::core::limits::max_message_size`]); a larger
    /// one is skipped over and handed out with [`MboxMessage::oversize`].
    pub fn max_message(mut self, bytes: u64) -> Self {
        self.max_message = bytes;
        self
    }

    /// Sets the dialect (default [`Dialect::Mboxrd`]).
    pub fn dialect(mut self, dialect: Dialect) -> Self {
        self.dialect = dialect;
        self
    }

    /// Names the file in errors.
    pub fn with_path(mut self, path: impl Into<PathBuf>) -> Self {
        self.path = path.into();
        self
    }

    /// The file named in errors.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn io(&self, e: io::Error) -> Error {
        Error::archive_io(self.path.clone(), e)
    }

    /// Reads one line, or the next piece of at most [`LINE_PIECE`] bytes of a long one, into
    /// `self.line`; returns its length (0 at the end). Whether it starts a line is
    /// `self.at_line_start` before the call.
    fn read_line(&mut self) -> io::Result<usize> {
        self.line.clear();
        let n = (&mut self.inner)
            .take(LINE_PIECE)
            .read_until(b'\n', &mut self.line)?;
        self.pos += n as u64;
        Ok(n)
    }

    fn start(&mut self) -> Result<()> {
        self.started = true;
        self.line.clear();
        let n = (&mut self.inner)
            .take(FIRST_LINE_PEEK)
            .read_until(b'\n', &mut self.line)
            .map_err(|e| self.io(e))?;
        if n == 0 {
            return Ok(());
        }
        if !self.line.starts_with(b"From ") {
            return Err(Error::archive(
                self.path.clone(),
                "not an mbox: first line is not a From line",
            ));
        }
        if !self.line.ends_with(b"\n") {
            self.inner
                .read_until(b'\n', &mut self.line)
                .map_err(|e| Error::archive_io(self.path.clone(), e))?;
        }
        self.pos = self.line.len() as u64;
        self.next_from = Some((std::mem::take(&mut self.line), 0));
        Ok(())
    }

    /// The next message, or `None` at the end of the file.
    pub fn next_message(&mut self) -> Result<Option<MboxMessage>> {
        if self.done {
            return Ok(None);
        }
        let r = self.read_message();
        if !matches!(r, Ok(Some(_))) {
            self.done = true;
        }
        r
    }

    fn read_message(&mut self) -> Result<Option<MboxMessage>> {
        if !self.started {
            self.start()?;
        }
        let Some((from_line, offset)) = self.next_from.take() else {
            return Ok(None);
        };
        let mut raw = Vec::new();
        let mut last_start = 0;
        let mut prev_empty = false;
        // Bytes of the message so far (kept or not): above the limit nothing more is kept.
        let mut size: u64 = 0;
        let mut oversize = false;
        // With `hash`: the bytes hashed so far, and the last piece held back while it is an
        // empty line (the one before a separator is not the message's).
        let mut hasher = self.hash.then(<sha2::Sha256 as sha2::Digest>::new);
        let mut held: Vec<u8> = Vec::new();
        self.at_line_start = true;
        loop {
            let line_offset = self.pos;
            let starts_line = self.at_line_start;
            let n = self.read_line().map_err(|e| self.io(e))?;
            if n == 0 {
                if prev_empty {
                    raw.truncate(last_start);
                    size = size.saturating_sub(1);
                }
                break;
            }
            self.at_line_start = self.line.ends_with(b"\n");
            let line = &self.line;
            let separator = starts_line
                && (is_dash_separator(line)
                    || (prev_empty
                        && line.starts_with(b"From ")
                        && parse_from_line(line).is_some()));
            if separator {
                if prev_empty {
                    raw.truncate(last_start);
                    size = size.saturating_sub(1);
                }
                self.next_from = Some((std::mem::take(&mut self.line), line_offset));
                break;
            }
            // A piece that continues a line is never an empty line nor a quoted From.
            prev_empty = starts_line && self.at_line_start && is_empty_line(line);
            last_start = raw.len();
            let piece = if starts_line && self.dialect == Dialect::Mboxrd && is_quoted_from(line) {
                &line[1..]
            } else {
                &line[..]
            };
            if let Some(h) = hasher.as_mut() {
                use sha2::Digest;
                h.update(&held);
                held.clear();
                if prev_empty {
                    held.extend_from_slice(piece);
                } else {
                    h.update(piece);
                }
            }
            size += piece.len() as u64;
            // One byte of slack: the empty line before the next separator is not the message's.
            if size > self.max_message.saturating_add(1) && !oversize {
                // Over the limit: what was kept is dropped; the rest is only scanned for the
                // next separator.
                oversize = true;
                raw = Vec::new();
            }
            if oversize {
                last_start = 0;
            } else {
                raw.extend_from_slice(piece);
            }
        }
        if !oversize && raw.len() as u64 > self.max_message {
            oversize = true;
            raw = Vec::new();
        }
        // The held-back empty line is the message's only when no separator followed it (a
        // message cut off by the end of the file without one: see the truncations above).
        let sha256 = hasher.map(|mut h| {
            use sha2::Digest;
            if !prev_empty {
                h.update(&held);
            }
            hex::encode(h.finalize())
        });
        let info = separator_info(&from_line);
        let mut from_line = from_line;
        let keep = strip_eol(&from_line).len();
        from_line.truncate(keep);
        Ok(Some(MboxMessage {
            from_line,
            envelope_from: info.envelope_from,
            date: info.date,
            raw,
            offset,
            oversize: oversize.then_some(size),
            sha256,
        }))
    }
}

impl<R: BufRead> Iterator for MboxReader<R> {
    type Item = Result<MboxMessage>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_message().transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashing_while_reading_gives_the_kept_bytes_hash_whatever_the_limit() {
        use sha2::Digest;
        let long = "z".repeat(200_000);
        let inputs = [
            "From a@b Mon Jan  1 10:00:00 2025\nSubject: one\n\nHi\n>From quoted\n\n\nFrom a@b Mon Jan  2 10:00:00 2025\nSubject: two\n\nBye\n".to_string(),
            // No empty line before the end, CRLF lines, an empty line at the very end.
            "From a@b Mon Jan  1 10:00:00 2025\r\nSubject: crlf\r\n\r\nbody\r\n\r\n".to_string(),
            format!("From a@b Mon Jan  1 10:00:00 2025\nSubject: long\n\n{long}\n\nFrom a@b Mon Jan  2 10:00:00 2025\nSubject: cut off\n\nno line end"),
        ];
        for data in &inputs {
            let whole: Vec<MboxMessage> = MboxReader::new(data.as_bytes())
                .max_message(u64::MAX)
                .hashing()
                .map(|m| m.unwrap())
                .collect();
            for m in &whole {
                assert_eq!(m.sha256, Some(hex::encode(sha2::Sha256::digest(&m.raw))));
            }
            for limit in [0u64, 5, 20, 70_000] {
                let limited: Vec<Option<String>> = MboxReader::new(data.as_bytes())
                    .max_message(limit)
                    .hashing()
                    .map(|m| m.unwrap().sha256)
                    .collect();
                let want: Vec<Option<String>> = whole.iter().map(|m| m.sha256.clone()).collect();
                assert_eq!(limited, want, "limit {limit}: {data:?}");
            }
        }
    }

    #[test]
    fn a_message_over_the_limit_is_scanned_past_not_kept() {
        let big = "x".repeat(70_000) + "\nFrom inside a long line\n" + &"y\n".repeat(100);
        let data = format!(
            "From a@b Mon Jan  1 10:00:00 2025\nSubject: one\n\nHi\n\nFrom a@b Mon Jan  2 10:00:00 2025\nSubject: two\n\n{big}\nFrom a@b Mon Jan  3 10:00:00 2025\nSubject: three\n\nBye\n"
        );
        let two_len = "Subject: two\n\n".len() + big.len();
        for limit in [two_len as u64 - 1, 30] {
            let msgs: Vec<MboxMessage> = MboxReader::new(data.as_bytes())
                .max_message(limit)
                .map(|m| m.unwrap())
                .collect();
            assert_eq!(msgs.len(), 3, "limit {limit}");
            assert_eq!(msgs[0].raw, b"Subject: one\n\nHi\n");
            assert_eq!(msgs[0].oversize, None);
            assert_eq!(msgs[1].raw, b"");
            assert_eq!(msgs[1].oversize, Some(two_len as u64), "limit {limit}");
            assert_eq!(msgs[2].raw, b"Subject: three\n\nBye\n");
        }
        // At the limit (and with lines longer than a read piece): kept whole.
        let msgs: Vec<MboxMessage> = MboxReader::new(data.as_bytes())
            .max_message(two_len as u64)
            .map(|m| m.unwrap())
            .collect();
        assert_eq!(msgs[1].oversize, None);
        assert_eq!(msgs[1].raw, format!("Subject: two\n\n{big}").as_bytes());
        assert_eq!(msgs.len(), 3);
    }

    fn read_all(data: &[u8]) -> Vec<MboxMessage> {
        MboxReader::new(data).map(|m| m.unwrap()).collect()
    }

    #[test]
    fn from_line_is_asctime_utc() {
        // 2024-03-07 09:05:07 UTC
        assert_eq!(
            from_line("alice@example.com", 1_709_802_307),
            b"From alice@example.com Thu Mar  7 09:05:07 2024\n"
        );
        assert_eq!(
            from_line("", 0),
            b"From MAILER-DAEMON Thu Jan  1 00:00:00 1970\n"
        );
        assert_eq!(
            from_line(" a b\tc\r\n", 1_000_000_000),
            b"From a_b_c Sun Sep  9 01:46:40 2001\n"
        );
        assert_eq!(
            from_line("jérôme@example.org", 1_741_683_600),
            "From jérôme@example.org Tue Mar 11 09:00:00 2025\n".as_bytes()
        );
        assert!(from_line("x", i64::MAX).ends_with(b" 9999\n"));
        assert!(from_line("x", i64::MIN).ends_with(b" 0001\n"));
    }

    #[test]
    fn quoting_only_touches_from_space_lines() {
        let cases: &[(&[u8], &[u8])] = &[
            (b"From x\n", b">From x\n"),
            (b">From x\n", b">>From x\n"),
            (b">>>From \n", b">>>>From \n"),
            (b"From: a\n", b"From: a\n"),
            (b"Fromage\n", b"Fromage\n"),
            (b"From\n", b"From\n"),
            (b" From x\n", b" From x\n"),
            (b">Fro>From x\n", b">Fro>From x\n"),
            (b"a From x\nFrom y\n", b"a From x\n>From y\n"),
            (b">>Fro", b">>Fro"),
            (b"", b""),
            (b"\nFrom \n\n", b"\n>From \n\n"),
        ];
        for (input, want) in cases {
            assert_eq!(
                quote(input),
                *want,
                "input {:?}",
                String::from_utf8_lossy(input)
            );
            // Every split into single bytes gives the same result.
            let mut q = QuoteWriter::new(Vec::new());
            for b in input.iter() {
                q.write_all(&[*b]).unwrap();
            }
            assert_eq!(q.finish().unwrap(), *want);
        }
    }

    #[test]
    fn quoting_long_prefix_and_lines() {
        let mut input = vec![b'>'; 10_000];
        input.extend_from_slice(b"From x\n");
        input.extend(std::iter::repeat_n(b'y', 100_000));
        input.push(b'\n');
        let out = quote(&input);
        assert_eq!(out.len(), input.len() + 1);
        assert_eq!(&out[1..], &input[..]);
    }

    #[test]
    fn parse_separators() {
        let p = |s: &str| parse_from_line(s.as_bytes());
        let i = p("From alice@example.com Thu Mar  7 09:05:07 2024\n").unwrap();
        assert_eq!(i.envelope_from, "alice@example.com");
        assert_eq!(i.date, Some(1_709_802_307));
        let i = p("From myotis at cix.compulink.co.uk  Fri Feb  1 00:10:00 2002").unwrap();
        assert_eq!(i.envelope_from, "myotis at cix.compulink.co.uk");
        let i = p("From MAILER-DAEMON  Thu Sep 18 17:54:04 2008\r\n").unwrap();
        assert_eq!(i.envelope_from, "MAILER-DAEMON");
        let i = p("From a Thu Mar  7 09:05:07 2024 +0100").unwrap();
        assert_eq!(i.date, Some(1_709_802_307 - 3600));
        assert!(p("From a Thu Mar  7 09:05:07 EST 2024").is_some());
        assert!(p("From a Thu Mar  7 09:05 2024 remote from host").is_some());
        assert_eq!(p("From a Thu Feb 30 09:05:07 2024").unwrap().date, None);
        assert!(p("From here on it gets complicated.").is_none());
        assert!(p("From - ").is_none());
        assert!(p("From Thu Mar  7 09:05:07 2024").is_none());
        assert!(p("From a Thu Mar  7 09:05:07 2024 and more words").is_none());
        assert!(p("From: a").is_none());
    }

    #[test]
    fn reads_entries_and_unquotes() {
        let mut data = entry("a@x", 0, b"Subject: 1\n\nFrom here\n>From there\n");
        data.extend(entry("b@x", 60, b"Subject: 2\n\nbody\n\n"));
        data.extend(entry("", 120, b""));
        let msgs = read_all(&data);
        assert_eq!(msgs.len(), 3);
        assert_eq!(msgs[0].raw, b"Subject: 1\n\nFrom here\n>From there\n");
        assert_eq!(msgs[0].envelope_from, "a@x");
        assert_eq!(msgs[0].date, Some(0));
        assert_eq!(msgs[0].from_line, b"From a@x Thu Jan  1 00:00:00 1970");
        assert_eq!(msgs[1].raw, b"Subject: 2\n\nbody\n\n");
        assert_eq!(
            msgs[1].offset,
            entry("a@x", 0, b"Subject: 1\n\nFrom here\n>From there\n").len() as u64
        );
        assert_eq!(msgs[2].raw, b"");
        assert_eq!(msgs[2].envelope_from, "MAILER-DAEMON");
        let o: Vec<_> = MboxReader::new(&data[..])
            .dialect(Dialect::Mboxo)
            .map(|m| m.unwrap())
            .collect();
        assert_eq!(o[0].raw, b"Subject: 1\n\n>From here\n>>From there\n");
    }

    #[test]
    fn message_without_final_lf_gets_one() {
        let data = entry("a", 0, b"x\ny");
        assert_eq!(data, b"From a Thu Jan  1 00:00:00 1970\nx\ny\n\n");
        assert_eq!(read_all(&data)[0].raw, b"x\ny\n");
    }

    #[test]
    fn from_dash_needs_no_empty_line_and_crlf_kept() {
        let data =
            b"From - Sat Apr  6 20:13:31 2013\r\nA: 1\r\n\r\nx\r\nFrom - \r\nB: 2\r\n\r\ny\r\n\r\n";
        let msgs = read_all(data);
        assert_eq!(msgs.len(), 2);
        assert_eq!(msgs[0].raw, b"A: 1\r\n\r\nx\r\n");
        assert_eq!(msgs[0].date, Some(1_365_279_211));
        assert_eq!(msgs[0].envelope_from, "-");
        assert_eq!(msgs[1].raw, b"B: 2\r\n\r\ny\r\n");
        assert_eq!(msgs[1].date, None);
        assert_eq!(msgs[1].offset, 44);
    }

    #[test]
    fn undated_from_in_body_is_content() {
        let data = b"From a Thu Mar  7 09:05:07 2024\nS: 1\n\nFrom me to you\n\nFrom b Thu Mar  7 09:05:08 2024\nS: 2\n";
        let msgs = read_all(data);
        assert_eq!(msgs.len(), 2);
        assert_eq!(msgs[0].raw, b"S: 1\n\nFrom me to you\n");
        assert_eq!(msgs[1].raw, b"S: 2\n");
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let err = MboxReader::new(&b"Subject: x\n\nbody\n"[..])
            .next()
            .unwrap()
            .unwrap_err();
        assert!(err
            .to_string()
            .contains("not an mbox: first line is not a From line"));
        let big = vec![0u8; 1 << 20];
        let mut r = MboxReader::new(&big[..]);
        assert!(r.next().unwrap().is_err());
        assert!(r.next().is_none());
        assert!(read_all(b"").is_empty());
        // Odd but accepted: any `From ` first line.
        let msgs = read_all(b"From \xff\xfe\n\xff\n");
        assert_eq!(msgs[0].raw, b"\xff\n");
        assert_eq!(msgs[0].envelope_from, "\u{fffd}\u{fffd}");
        for junk in [
            &b"From "[..],
            b"From \n\n\n",
            b"From x\r",
            b"From -\nFrom -\n",
        ] {
            let _ = read_all(junk);
        }
    }
}
