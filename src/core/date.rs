//! Dates as real mail writes them: the `Date:` header and the date of a `Received:` header
//! (RFC 5322 3.3, with the obsolete syntax of RFC 5322 4.3), the asctime date of an mbox
//! `From ` line, and the broken forms programs put there. Pure: no clock, no I/O; the caller
//! passes "now" to [`plausible`].
//!
//! [`parse`] returns the instant and the zone the writer used ([`MailDate`]), so an IMAP
//! APPEND date-time (RFC 3501 9, `date-time`) keeps the original zone
//! ([`MailDate::imap_date_time`]): `Tue, 4 Mar 2014 10:00:00 +0100` is appended as
//! `"04-Mar-2014 10:00:00 +0100"`, not as `09:00:00 +0000`.
//!
//! # Forms read
//! - RFC 5322 3.3: `[day-of-week ,] d month yyyy hh:mm[:ss] zone`, CFWS anywhere (comments are
//!   dropped, nested or not: `+0100 (CET)`, `(Central European Standard Time)`).
//! - RFC 5322 4.3 (obsolete): two-digit years (00-49 are 20xx, 50-99 19xx), three-digit years
//!   (+ 1900), `UT`/`GMT`, the US zones `EST`..`PDT`, military one-letter zones (read as
//!   `-0000`, "zone unknown", as 4.3 says, since their signs were reversed in RFC 822), other
//!   alphabetic zones as `-0000` too, except a short table of unambiguous ones (`CET`,
//!   `CEST`, `BST`, `JST`, ... see `named_zone`).
//! - asctime (mbox `From ` lines, ctime(3), date(1)): `Wed Mar  5 08:15:00 2014`, with or without
//!   a zone, before or after the year (`Wed Mar 5 08:15:00 PST 2014`).
//! - What real mail also holds: no day-of-week, a wrong day-of-week (ignored), no seconds, a
//!   one-digit hour, no zone (`-0000`), `-0000` itself (RFC 5322 3.3: UTC, local zone unknown),
//!   full or odd-case month names (`march`, `MAR`, `Sept.`), fields joined by dashes or dots
//!   (`04-Mar-2014`, `4.Mar.2014`, `04.03.2014`), ISO 8601 (`2014-03-04T10:00:00Z`,
//!   `2014-03-04 10:00:00 +0100`, fractions of a second dropped), `GMT+0100`, `+01:00`, words
//!   or garbage before or after the date.
//!
//! Rejected: a field out of range (month 13, day 32, 30 February, hour 25, minute 60, a zone
//! above 23:59 such as `+9999`), a date missing its day, month, year or time, and (for
//! [`plausible`]) an instant before 1971 or more than a day after "now".
//!
//! # Why our own code rather than mail-parser or chrono
//! Measured on the forms of `tests::real_world_forms` (mail-parser 0.11 `Message::date()`,
//! chrono 0.4 `DateTime::parse_from_rfc2822`):
//! - mail-parser is right on the plain RFC 5322 form, comments, two-digit years, missing
//!   seconds, a one-digit hour, a wrong day-of-week, the US zones and lower-case months. It is
//!   wrong, silently, on: a three-digit year (`114` is year 114, not 2014); `CET` and
//!   `GMT+0100` (read as `+0000`, an hour off); `04.03.2014` (read as 4 October 2000); `-0000`
//!   and military zones (read as a known `+0000`); fields out of range, rolled over instead
//!   of rejected (`32 Mar` is 1 April, `25:00` the next day, `30 Feb` 1 March, `+9999`
//!   `+03:39`). It finds nothing in asctime, ISO 8601, a date without zone, full day and
//!   month names (`Tuesday, 4 March`) or `04-Mar-2014`.
//! - chrono is right wherever it answers (it rejects out-of-range fields) but answers nothing
//!   for a wrong day-of-week, a one-digit hour, `CET`, a missing zone, full names, dashes,
//!   asctime and ISO 8601, and reads military zones and `-0000` as a known `+0000`.
//!
//! Neither can be used as a first pass (mail-parser's wrong answers cannot be told from its
//! right ones; chrono's answers are a subset of ours and lose "zone unknown"), so every form
//! goes through the one tokenizer below; chrono does the calendar arithmetic (days in a
//! month, the instant of a civil time), where it is exact. An IMAP INTERNALDATE, which has
//! one strict form (RFC 3501 9), is still read by chrono (`parse_internal_date` of the IMAP
//! client).

use chrono::{NaiveDate, NaiveDateTime, NaiveTime};

/// A date read from a message: the instant and the zone its writer used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MailDate {
    /// Seconds since the UNIX epoch (UTC).
    pub secs: i64,
    /// The writer's offset east of UTC in seconds (`+0100` is 3600); `None` when the date gave
    /// no zone, `-0000`, or a zone RFC 5322 4.3 says to read as unknown (the civil time is
    /// then taken as UTC, as 4.3 says for `-0000`).
    pub offset: Option<i32>,
}

impl MailDate {
    /// The IMAP `date-time` (RFC 3501 9: `dd-Mon-yyyy hh:mm:ss +zzzz`, two-digit day) in the
    /// writer's zone, `+0000` when it is unknown. `None` when the year is not four digits.
    pub fn imap_date_time(&self) -> Option<String> {
        imap_date_time(self.secs, self.offset.unwrap_or(0))
    }
}

/// Formats an INTERNALDATE for APPEND (RFC 3501 9, `date-time`), always with the two-digit day
/// strict servers require (case 19): `09-Mar-2025 08:05:07 +0000`. `secs` is the instant
/// (seconds since the Unix epoch), `offset_secs` the zone to write it in (east of UTC, whole
/// minutes). `None` when the year is not four digits or the offset is out of range.
pub fn imap_date_time(secs: i64, offset_secs: i32) -> Option<String> {
    if offset_secs % 60 != 0 {
        return None;
    }
    let zone = chrono::FixedOffset::east_opt(offset_secs)?;
    let t = chrono::DateTime::from_timestamp(secs, 0)?.with_timezone(&zone);
    if !(0..=9999).contains(&chrono::Datelike::year(&t)) {
        return None;
    }
    Some(t.format("%d-%b-%Y %H:%M:%S %z").to_string())
}

/// True for an instant worth believing as a message's date: after 1970 (a zero or tiny date is
/// a placeholder, `From mboxrd@z Thu Jan  1 00:00:00 1970`) and at most a day after `now`
/// (seconds since the UNIX epoch). Pure.
pub fn plausible(secs: i64, now: i64) -> bool {
    secs > 31_536_000 && secs < now.saturating_add(86_400)
}

/// [`parse`], then [`plausible`] against `now`.
pub fn parse_plausible(s: &[u8], now: i64) -> Option<MailDate> {
    parse(s).filter(|d| plausible(d.secs, now))
}

/// The longest input looked at, in bytes: a date is short; the rest of a longer header is
/// ignored (bounds the work on hostile input).
pub const MAX_LEN: usize = 1000;

/// Reads one date in any of the forms of the module documentation from a header value (without
/// the `Date:` name) or an mbox `From ` line's date part. Bytes that are not UTF-8 are read as
/// Latin-1 (they can only be garbage words). `None` when no complete, in-range date is found.
/// Never panics.
pub fn parse(s: &[u8]) -> Option<MailDate> {
    let s = &s[..s.len().min(MAX_LEN)];
    let text: String = s.iter().map(|&b| char::from(b)).collect();
    let text = join_colons(&strip_comments(&text));
    let mut f = Fields::default();
    for raw in text.split(|c: char| c.is_ascii_whitespace() || c == ',') {
        if !raw.is_empty() {
            f.token(raw);
        }
    }
    f.finish()
}

/// Removes RFC 5322 comments (nested parentheses, `\` quoting), each replaced by a space.
fn strip_comments(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut depth = 0usize;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' if depth > 0 => {
                chars.next();
            }
            '(' => {
                depth += 1;
                if depth == 1 {
                    out.push(' ');
                }
            }
            ')' if depth > 0 => depth -= 1,
            _ if depth > 0 => {}
            c => out.push(c),
        }
    }
    out
}

/// Removes white space next to a `:` (RFC 5322 4.3 allows CFWS inside the time: `10 : 00`).
fn join_colons(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut pending = String::new();
    for c in s.chars() {
        if c.is_ascii_whitespace() {
            pending.push(c);
            continue;
        }
        if c != ':' && !out.ends_with(':') {
            out.push_str(&pending);
        }
        pending.clear();
        out.push(c);
    }
    out
}

/// What the tokens told so far.
#[derive(Debug, Default)]
struct Fields {
    day: Option<u32>,
    month: Option<u32>,
    year: Option<i32>,
    /// (hour, minute, second)
    time: Option<(u32, u32, u32)>,
    /// `Some(None)`: a zone that says "unknown".
    zone: Option<Option<i32>>,
    /// A field was out of range: the whole date is rejected.
    bad: bool,
}

const MONTHS: [&str; 12] = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
];

const DAYS: [&str; 7] = [
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
];

/// The month of a name: its first three letters or more of the English name, any case,
/// a final `.` allowed (`Mar`, `MARCH`, `Sept.`).
fn month_of(w: &str) -> Option<u32> {
    let w = w.strip_suffix('.').unwrap_or(w).to_ascii_lowercase();
    if w.len() < 3 {
        return None;
    }
    MONTHS
        .iter()
        .position(|m| m.starts_with(&w))
        .map(|i| i as u32 + 1)
}

fn is_day_name(w: &str) -> bool {
    let w = w.strip_suffix('.').unwrap_or(w).to_ascii_lowercase();
    w.len() >= 3 && DAYS.iter().any(|d| d.starts_with(&w))
}

/// An alphabetic zone: `Some(Some(offset))` known, `Some(None)` read as unknown (RFC 5322
/// 4.3: military letters, and any other name), `None` when `w` is not a zone name at all.
/// Besides RFC 5322's `UT`, `GMT` and the US zones, a few names that mean one offset
/// wherever mail is written (no `IST`, `CST` of China, ...: those keep the numeric zone or
/// count as unknown).
fn named_zone(w: &str) -> Option<Option<i32>> {
    let h = |n: i32| Some(Some(n * 3600));
    match w.to_ascii_uppercase().as_str() {
        "UT" | "UTC" | "GMT" | "Z" | "WET" => h(0),
        "EST" => h(-5),
        "EDT" => h(-4),
        "CST" => h(-6),
        "CDT" => h(-5),
        "MST" => h(-7),
        "MDT" => h(-6),
        "PST" => h(-8),
        "PDT" => h(-7),
        "CET" | "MET" | "MEZ" | "BST" | "WEST" => h(1),
        "CEST" | "MEST" | "MESZ" | "EET" => h(2),
        "EEST" | "MSK" => h(3),
        "JST" | "KST" => h(9),
        "AEST" => h(10),
        "AEDT" => h(11),
        "NZST" => h(12),
        "NZDT" => h(13),
        m if m.len() == 1 && m.as_bytes()[0].is_ascii_alphabetic() && m != "J" => Some(None),
        _ => None,
    }
}

/// A numeric zone `+hhmm`, `-hhmm`, `+hh:mm`, `+hh`: `Some(Some(secs))`; `-0000` is
/// `Some(None)` (RFC 5322 3.3). `Some` with `bad` set when the digits are out of range.
fn numeric_zone(w: &str) -> Option<Result<Option<i32>, ()>> {
    let (sign, rest) = match w.as_bytes().first()? {
        b'+' => (1, &w[1..]),
        b'-' => (-1, &w[1..]),
        _ => return None,
    };
    let digits: String = rest.chars().filter(|c| *c != ':').collect();
    if !digits.bytes().all(|b| b.is_ascii_digit()) || rest.matches(':').count() > 1 {
        return None;
    }
    let (hh, mm) = match digits.len() {
        4 => (&digits[..2], &digits[2..]),
        2 if !rest.contains(':') => (&digits[..], "00"),
        _ => return None,
    };
    let (hh, mm): (i32, i32) = (hh.parse().ok()?, mm.parse().ok()?);
    if hh > 23 || mm > 59 {
        return Some(Err(()));
    }
    if sign < 0 && hh == 0 && mm == 0 {
        return Some(Ok(None));
    }
    Some(Ok(Some(sign * (hh * 3600 + mm * 60))))
}

fn all_digits(w: &str) -> bool {
    !w.is_empty() && w.bytes().all(|b| b.is_ascii_digit())
}

impl Fields {
    fn complete(&self) -> bool {
        self.day.is_some() && self.month.is_some() && self.year.is_some() && self.time.is_some()
    }

    fn token(&mut self, w: &str) {
        if self.bad {
            return;
        }
        // Once a whole date and its zone are read, the rest is words.
        if self.complete() && self.zone.is_some() {
            return;
        }
        // ISO 8601: 2014-03-04T10:00:00Z
        if let Some((d, t)) = w.split_once(['T', 't']) {
            if d.len() == 10 && d.as_bytes()[4] == b'-' && d.get(..4).is_some_and(all_digits) {
                self.token(d);
                if !t.is_empty() {
                    self.token(t);
                }
                return;
            }
        }
        if w.contains(':') && w.as_bytes()[0].is_ascii_digit() {
            return self.time_token(w);
        }
        if let Some(z) = numeric_zone(w) {
            match z {
                Ok(z) if self.zone.is_none() => self.zone = Some(z),
                Ok(_) => {}
                Err(()) => self.bad = true,
            }
            return;
        }
        if w.contains(['-', '.', '/']) && w.len() > 1 {
            return self.joined_date(w);
        }
        if all_digits(w) {
            return self.number(w);
        }
        if let Some(m) = month_of(w) {
            if self.month.is_none() {
                self.month = Some(m);
            }
            return;
        }
        if is_day_name(w) {
            return;
        }
        // GMT+0100, UTC-05:00
        for p in ["GMT", "UTC", "UT"] {
            if w.len() > p.len() && w.get(..p.len()).is_some_and(|h| h.eq_ignore_ascii_case(p)) {
                if let Some(z) = w.get(p.len()..).and_then(numeric_zone) {
                    match z {
                        Ok(z) if self.zone.is_none() => self.zone = Some(z),
                        Ok(_) => {}
                        Err(()) => self.bad = true,
                    }
                    return;
                }
            }
        }
        if let Some(z) = named_zone(w) {
            // Only after the time (a single letter elsewhere is an initial or garbage).
            if self.time.is_some() && self.zone.is_none() {
                self.zone = Some(z);
            }
        }
        // Any other word: ignored.
    }

    /// `hh:mm`, `hh:mm:ss`, `hh:mm:ss.fff`, possibly followed by a zone (`10:00:00Z`,
    /// `10:00:00+01:00`).
    fn time_token(&mut self, w: &str) {
        if self.time.is_some() {
            return;
        }
        let end = w
            .find(|c: char| !(c.is_ascii_digit() || c == ':' || c == '.'))
            .unwrap_or(w.len());
        let (t, zone) = w.split_at(end);
        let t = t.split('.').next().unwrap_or(t);
        let parts: Vec<&str> = t.split(':').collect();
        if parts.len() < 2
            || parts.len() > 3
            || !parts.iter().all(|p| all_digits(p) && p.len() <= 2)
        {
            self.bad = true;
            return;
        }
        let n = |i: usize| parts.get(i).map_or(Some(0), |p| p.parse::<u32>().ok());
        let (Some(h), Some(m), Some(s)) = (n(0), n(1), n(2)) else {
            self.bad = true;
            return;
        };
        // A leap second (RFC 5322 3.3 allows 60) is read as 59.
        if h > 23 || m > 59 || s > 60 || parts[1].len() != 2 {
            self.bad = true;
            return;
        }
        self.time = Some((h, m, s.min(59)));
        if !zone.is_empty() {
            self.token(zone);
        }
    }

    /// `04-Mar-2014`, `4.Mar.2014`, `2014-03-04`, `04.03.2014`, `04-Mar-14`.
    fn joined_date(&mut self, w: &str) {
        let parts: Vec<&str> = w.split(['-', '.', '/']).filter(|p| !p.is_empty()).collect();
        if parts.len() != 3 {
            // `Sept.` and the like.
            if parts.len() == 1 {
                self.token(parts[0]);
            }
            return;
        }
        if self.day.is_some() || self.month.is_some() {
            return;
        }
        let sep = w.contains('/');
        if parts.iter().all(|p| all_digits(p)) {
            // y-m-d (ISO) or d.m.y (European); m/d/y is ambiguous: ignored.
            if sep {
                return;
            }
            let (y, m, d) = if parts[0].len() == 4 {
                (parts[0], parts[1], parts[2])
            } else if parts[2].len() == 4 && w.contains('.') {
                (parts[2], parts[1], parts[0])
            } else {
                return;
            };
            match (m.parse::<u32>(), d.parse::<u32>()) {
                (Ok(m), Ok(d)) if (1..=12).contains(&m) => {
                    self.month = Some(m);
                    self.day = Some(d);
                    self.number(y);
                }
                _ => self.bad = true,
            }
            return;
        }
        for p in parts {
            self.token(p);
        }
    }

    /// A number: a day (before or just after the month) or a year.
    fn number(&mut self, w: &str) {
        if w.len() > 4 {
            return;
        }
        let Ok(n) = w.parse::<u32>() else { return };
        if w.len() <= 2 && self.day.is_none() && self.year.is_none() {
            self.day = Some(n);
            return;
        }
        if self.year.is_none() && w.len() >= 2 {
            // RFC 5322 4.3: 2 digits, 00-49 is 20xx, 50-99 19xx; 3 digits + 1900.
            let y = match w.len() {
                2 if n < 50 => 2000 + n,
                2 => 1900 + n,
                3 => 1900 + n,
                _ => n,
            };
            self.year = Some(y as i32);
        }
    }

    fn finish(self) -> Option<MailDate> {
        if self.bad {
            return None;
        }
        let (d, m, y) = (self.day?, self.month?, self.year?);
        let (h, min, s) = self.time?;
        let date = NaiveDate::from_ymd_opt(y, m, d)?;
        let time = NaiveTime::from_hms_opt(h, min, s)?;
        let offset = self.zone.flatten();
        let local = NaiveDateTime::new(date, time).and_utc().timestamp();
        Some(MailDate {
            secs: local - i64::from(offset.unwrap_or(0)),
            offset,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn append(s: &str) -> Option<String> {
        parse(s.as_bytes()).and_then(|d| d.imap_date_time())
    }

    /// Real `Date:` headers and `From ` line dates (public mail archives, mutt, Outlook,
    /// Thunderbird, Lotus Notes, PHP mailers, spam), with the APPEND date-time each must give.
    #[test]
    fn real_world_forms() {
        let cases: &[(&str, &str)] = &[
            // RFC 5322 3.3
            (
                "Tue, 4 Mar 2014 10:00:00 +0100",
                "04-Mar-2014 10:00:00 +0100",
            ),
            (
                "Tue, 04 Mar 2014 10:00:00 -0500",
                "04-Mar-2014 10:00:00 -0500",
            ),
            ("4 Mar 2014 10:00:00 +0000", "04-Mar-2014 10:00:00 +0000"),
            (
                "Mon, 10 Mar 2025 07:00:00 +0530",
                "10-Mar-2025 07:00:00 +0530",
            ),
            // CFWS and comments
            (
                "Tue, 4 Mar 2014 10:00:00 +0100 (CET)",
                "04-Mar-2014 10:00:00 +0100",
            ),
            (
                "Tue, 4 Mar 2014 10:00:00 +0100 (Central European Standard Time)",
                "04-Mar-2014 10:00:00 +0100",
            ),
            (
                " (sent) Tue,\r\n 4 (day) Mar 2014\t10:00:00 (x (nested)) +0100 ",
                "04-Mar-2014 10:00:00 +0100",
            ),
            (
                "Tue , 4 Mar 2014 10 :00:00 +0100",
                "04-Mar-2014 10:00:00 +0100",
            ),
            // trailing garbage, leading words
            (
                "Tue, 4 Mar 2014 10:00:00 +0100 garbage 99",
                "04-Mar-2014 10:00:00 +0100",
            ),
            (
                "Date: Tue, 4 Mar 2014 10:00:00 +0100",
                "04-Mar-2014 10:00:00 +0100",
            ),
            // obsolete years (RFC 5322 4.3)
            ("Tue, 4 Mar 14 10:00:00 +0100", "04-Mar-2014 10:00:00 +0100"),
            ("Thu, 4 Mar 99 10:00:00 +0100", "04-Mar-1999 10:00:00 +0100"),
            ("Sat, 1 Jan 49 00:00:00 +0000", "01-Jan-2049 00:00:00 +0000"),
            ("Fri, 1 Jan 50 00:00:00 +0000", "01-Jan-1950 00:00:00 +0000"),
            (
                "Tue, 4 Mar 114 10:00:00 +0100",
                "04-Mar-2014 10:00:00 +0100",
            ),
            // missing seconds, one-digit hour, no day-of-week, wrong day-of-week
            ("Tue, 4 Mar 2014 10:00 +0100", "04-Mar-2014 10:00:00 +0100"),
            (
                "Tue, 4 Mar 2014 8:05:09 +0100",
                "04-Mar-2014 08:05:09 +0100",
            ),
            ("4 Mar 2014 8:05 -0800", "04-Mar-2014 08:05:00 -0800"),
            (
                "Sun, 4 Mar 2014 10:00:00 +0100",
                "04-Mar-2014 10:00:00 +0100",
            ),
            (
                "Tuesday, 4 Mar 2014 10:00:00 +0100",
                "04-Mar-2014 10:00:00 +0100",
            ),
            // obsolete and named zones
            ("Tue, 4 Mar 2014 10:00:00 GMT", "04-Mar-2014 10:00:00 +0000"),
            ("Tue, 4 Mar 2014 10:00:00 UT", "04-Mar-2014 10:00:00 +0000"),
            ("Tue, 4 Mar 2014 10:00:00 UTC", "04-Mar-2014 10:00:00 +0000"),
            ("Tue, 4 Mar 2014 10:00:00 EST", "04-Mar-2014 10:00:00 -0500"),
            ("Tue, 4 Mar 2014 10:00:00 EDT", "04-Mar-2014 10:00:00 -0400"),
            ("Tue, 4 Mar 2014 10:00:00 cst", "04-Mar-2014 10:00:00 -0600"),
            ("Tue, 4 Mar 2014 10:00:00 PDT", "04-Mar-2014 10:00:00 -0700"),
            ("Tue, 4 Mar 2014 10:00:00 CET", "04-Mar-2014 10:00:00 +0100"),
            (
                "Tue, 4 Mar 2014 10:00:00 GMT+0100",
                "04-Mar-2014 10:00:00 +0100",
            ),
            (
                "Tue, 4 Mar 2014 10:00:00 +01:00",
                "04-Mar-2014 10:00:00 +0100",
            ),
            // military zones and no zone: unknown, the time read as UTC
            ("Tue, 4 Mar 2014 10:00:00 A", "04-Mar-2014 10:00:00 +0000"),
            ("Tue, 4 Mar 2014 10:00:00 z", "04-Mar-2014 10:00:00 +0000"),
            ("Tue, 4 Mar 2014 10:00:00", "04-Mar-2014 10:00:00 +0000"),
            (
                "Tue, 4 Mar 2014 10:00:00 -0000",
                "04-Mar-2014 10:00:00 +0000",
            ),
            (
                "Tue, 4 Mar 2014 10:00:00 XYZT",
                "04-Mar-2014 10:00:00 +0000",
            ),
            // month names
            (
                "Tue, 4 mar 2014 10:00:00 +0100",
                "04-Mar-2014 10:00:00 +0100",
            ),
            (
                "Tue, 4 MAR 2014 10:00:00 +0100",
                "04-Mar-2014 10:00:00 +0100",
            ),
            (
                "Tuesday, 4 March 2014 10:00:00 +0100",
                "04-Mar-2014 10:00:00 +0100",
            ),
            (
                "Thu, 4 Sept. 2014 10:00:00 +0100",
                "04-Sep-2014 10:00:00 +0100",
            ),
            (
                "4 december 2014 23:59:59 +1300",
                "04-Dec-2014 23:59:59 +1300",
            ),
            // dashes and dots
            (
                "Tue, 04-Mar-2014 10:00:00 +0100",
                "04-Mar-2014 10:00:00 +0100",
            ),
            ("04-Mar-14 10:00:00 GMT", "04-Mar-2014 10:00:00 +0000"),
            ("4.Mar.2014 10:00:00 +0100", "04-Mar-2014 10:00:00 +0100"),
            ("04.03.2014 10:00:00 +0100", "04-Mar-2014 10:00:00 +0100"),
            // asctime (mbox From lines, ctime(3), date(1))
            ("Wed Mar  5 08:15:00 2014", "05-Mar-2014 08:15:00 +0000"),
            ("Wed Mar 5 08:15:00 2014", "05-Mar-2014 08:15:00 +0000"),
            (
                "Wed Mar  5 08:15:00 2014 +0100",
                "05-Mar-2014 08:15:00 +0100",
            ),
            ("Wed Mar  5 08:15:00 PST 2014", "05-Mar-2014 08:15:00 -0800"),
            ("Wed Mar  5 08:15 2014", "05-Mar-2014 08:15:00 +0000"),
            ("Thu Jan  1 00:00:00 1970", "01-Jan-1970 00:00:00 +0000"),
            // ISO 8601
            ("2014-03-04T10:00:00Z", "04-Mar-2014 10:00:00 +0000"),
            ("2014-03-04T10:00:00+01:00", "04-Mar-2014 10:00:00 +0100"),
            ("2014-03-04 10:00:00 +0100", "04-Mar-2014 10:00:00 +0100"),
            ("2014-03-04T10:00:00.123-0500", "04-Mar-2014 10:00:00 -0500"),
            ("2014-03-04 10:00", "04-Mar-2014 10:00:00 +0000"),
            // leap second, end of February in a leap year
            (
                "Sat, 31 Dec 2016 23:59:60 +0000",
                "31-Dec-2016 23:59:59 +0000",
            ),
            (
                "Thu, 29 Feb 2024 12:00:00 +0000",
                "29-Feb-2024 12:00:00 +0000",
            ),
        ];
        assert!(cases.len() >= 40);
        for (input, want) in cases {
            assert_eq!(append(input).as_deref(), Some(*want), "{input:?}");
        }
    }

    #[test]
    fn instants_and_zones() {
        let d = parse(b"Tue, 4 Mar 2014 10:00:00 +0100").unwrap();
        assert_eq!(
            d,
            MailDate {
                secs: 1_393_923_600,
                offset: Some(3600)
            }
        );
        let d = parse(b"Wed Mar  5 08:15:00 2014").unwrap();
        assert_eq!(
            d,
            MailDate {
                secs: 1_394_007_300,
                offset: None
            }
        );
        let d = parse(b"Tue, 4 Mar 2014 10:00:00 -0000").unwrap();
        assert_eq!(d.offset, None);
        let d = parse(b"Tue, 4 Mar 2014 10:00:00 +0000").unwrap();
        assert_eq!(d.offset, Some(0));
        let d = parse(b"Tue, 4 Mar 2014 10:00:00 J").unwrap();
        assert_eq!(d.offset, None, "J is no zone: ignored");
    }

    #[test]
    fn rejected_forms() {
        let cases: &[&str] = &[
            "",
            "garbage",
            "NIL",
            "Tue, 4 Mar 2014",
            "10:00:00 +0100",
            "Tue, 4 2014 10:00:00 +0100",
            "Tue, Mar 2014 10:00:00 +0100",
            "Tue, 4 Mar 10:00:00 +0100",
            "Tue, 4 Foo 2014 10:00:00 +0100",
            "Tue, 32 Mar 2014 10:00:00 +0100",
            "Tue, 0 Mar 2014 10:00:00 +0100",
            "Fri, 30 Feb 2024 10:00:00 +0000",
            "Tue, 29 Feb 2023 10:00:00 +0000",
            "Tue, 4 Mar 2014 25:00:00 +0100",
            "Tue, 4 Mar 2014 10:60:00 +0100",
            "Tue, 4 Mar 2014 10:00:61 +0100",
            "Tue, 4 Mar 2014 10:00:00 +9999",
            "Tue, 4 Mar 2014 10:00:00 +2460",
            "2014-13-04T10:00:00Z",
            "2014-00-04T10:00:00Z",
            "04.13.2014 10:00:00 +0100",
            "03/04/2014 10:00:00 +0100",
            "Tue, 4 Mar 2014 1:2:3:4 +0100",
            "Tue, 4 Mar 2014 10:0 +0100",
        ];
        for input in cases {
            assert_eq!(parse(input.as_bytes()), None, "{input:?}");
        }
    }

    #[test]
    fn plausibility() {
        let now = 1_800_000_000;
        let p = |s: &str| parse_plausible(s.as_bytes(), now).map(|d| d.secs);
        assert_eq!(p("Thu Jan  1 00:00:00 1970"), None, "a placeholder");
        assert_eq!(p("Mon, 1 Jan 1900 00:00:00 +0000"), None);
        assert_eq!(p("Tue, 1 Jan 2999 00:00:00 +0000"), None);
        assert_eq!(p("Fri, 1 Jan 1971 00:00:01 +0000"), Some(31_536_001));
        assert!(plausible(now + 86_399, now));
        assert!(!plausible(now + 86_400, now));
        assert!(!plausible(i64::MAX, i64::MAX));
    }

    #[test]
    fn hostile_input_never_panics() {
        let inputs: &[&[u8]] = &[
            b"\xff\xfe\x00",
            b"((((((((",
            b"))))",
            b"\\",
            b"(\\",
            b"-",
            b"+",
            b"T",
            b"2014-03-04T",
            b"9999-99-99T99:99:99",
            b"4 Mar 99999 10:00:00",
            b"4 Mar 2014 99999999999999999999:00",
            b"4 Mar 2014 10:00:00 +99999999999999999999",
            b"...---///",
            b"1-2-3-4-5 6.7.8 9/9/9",
            b"\xc3\xa9 4 M\xe4r 2014 10:00",
        ];
        for i in inputs {
            let _ = parse(i);
        }
        let long = "4 Mar 2014 10:00:00 ".repeat(1000);
        assert!(parse(long.as_bytes()).is_some());
    }
}
