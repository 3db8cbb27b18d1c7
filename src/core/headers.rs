//! What mailkeep reads from a message's header block: the date a message arrived and its
//! envelope sender. Parsing is lossy-tolerant and never fails: dates through
//! [`crate::core::date`] (mail-parser's date reader is wrong on several real forms, see there), the
//! sender through mail-parser. Nothing read here is ever written back into message bytes.

use mail_parser::{HeaderValue, MessageParser};

use crate::core::date::{self, MailDate};

/// Which header gave a message's date.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DateSource {
    /// The top (newest) `Received:` header: when the receiving server accepted it, which is
    /// what a server's INTERNALDATE records on delivery (RFC 3501 2.3.3).
    Received,
    /// The `Date:` header (RFC 5322 3.6.1): when the sender wrote it.
    DateHeader,
    /// Neither was usable: the time of the backup.
    Now,
}

/// The arrival date of a POP3 message, which POP3 does not report (RFC 1939 has no
/// INTERNALDATE): the top `Received:` header's date, else the `Date:` header, else `now`.
/// Dates are read by [`crate::core::date::parse`] (RFC 5322 3.3 and 4.3, asctime, ISO 8601...);
/// dates before 1971 or more than a day in the future are not believed. Seconds since the UNIX
/// epoch, UTC.
pub fn arrival_date(header: &[u8], now: i64) -> (i64, DateSource) {
    if let Some(d) = received_date(header).filter(|d| date::plausible(d.secs, now)) {
        return (d.secs, DateSource::Received);
    }
    if let Some(d) = date_header(header).filter(|d| date::plausible(d.secs, now)) {
        return (d.secs, DateSource::DateHeader);
    }
    (now, DateSource::Now)
}

/// The date of a message whose server gave no believable INTERNALDATE (IMAP): its `Date:`
/// header (RFC 5322 3.6.1) when it can be read and believed at `now`, else `now` (the time
/// of archiving). `header` may be the whole message. Seconds since the UNIX epoch, UTC.
pub fn fallback_date(header: &[u8], now: i64) -> (i64, DateSource) {
    match date_header(header).filter(|d| date::plausible(d.secs, now)) {
        Some(d) => (d.secs, DateSource::DateHeader),
        None => (now, DateSource::Now),
    }
}

/// The first `Date:` header's date (syntax only, no plausibility), read by
/// [`crate::core::date::parse`]. `header` may be the whole message (reading stops at the empty
/// line).
pub fn date_header(header: &[u8]) -> Option<MailDate> {
    date::parse(&first_header(header, b"date")?)
}

/// The date of the top (newest) `Received:` header: the part after its last `;` (RFC 5322
/// 3.6.7: `received = "Received:" *received-token ";" date-time`), syntax only.
pub fn received_date(header: &[u8]) -> Option<MailDate> {
    let v = first_header(header, b"received")?;
    let at = v.iter().rposition(|&b| b == b';')?;
    date::parse(&v[at + 1..])
}

/// The offset (seconds east of UTC) a message's own headers give for the instant `secs`:
/// that of its `Date:` header, else of its top `Received:` header, when that header's date
/// is exactly `secs`; `None` otherwise, or when that zone is unknown (`-0000`, no zone).
/// Restore uses it to APPEND a date in the zone the message was written in.
pub fn zone_of(header: &[u8], secs: i64) -> Option<i32> {
    [date_header(header), received_date(header)]
        .into_iter()
        .flatten()
        .find(|d| d.secs == secs)
        .and_then(|d| d.offset)
}

/// The value of the first header field named `name` (lower-case, without the colon), folded
/// lines joined (RFC 5322 2.2.3: the CRLF before white space removed). Reading stops at the
/// first empty line. At most [`crate::core::date::MAX_LEN`] bytes are kept.
fn first_header(header: &[u8], name: &[u8]) -> Option<Vec<u8>> {
    let mut value: Option<Vec<u8>> = None;
    for line in header.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            break;
        }
        if let Some(v) = value.as_mut() {
            if line[0] == b' ' || line[0] == b'\t' {
                if v.len() < date::MAX_LEN {
                    v.extend_from_slice(line);
                }
                continue;
            }
            break;
        }
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        if line[..colon].trim_ascii_end().eq_ignore_ascii_case(name) {
            let v = &line[colon + 1..];
            value = Some(v[..v.len().min(date::MAX_LEN)].to_vec());
        }
    }
    value
}

/// The envelope sender for an mbox `From ` line: the `Return-Path:` address, else the first
/// `From:` address, else `MAILER-DAEMON`. Always one token of printable ASCII without spaces.
pub fn envelope_from(header: &[u8]) -> String {
    let msg = MessageParser::default().parse_headers(header);
    let mut addr: Option<String> = None;
    if let Some(msg) = &msg {
        if let HeaderValue::Address(a) = msg.return_path() {
            addr = a.first().and_then(|a| a.address()).map(str::to_string);
        } else if let HeaderValue::Text(t) = msg.return_path() {
            addr = Some(t.trim_matches(['<', '>', ' ']).to_string());
        }
        if addr.as_deref().is_none_or(str::is_empty) {
            addr = msg
                .from()
                .and_then(|f| f.first())
                .and_then(|a| a.address())
                .map(str::to_string);
        }
    }
    let token: String = addr
        .unwrap_or_default()
        .chars()
        .filter(|c| c.is_ascii_graphic())
        .collect();
    if token.is_empty() {
        "MAILER-DAEMON".to_string()
    } else {
        token
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000;

    #[test]
    fn arrival_date_sources() {
        let cases: &[(&str, i64, DateSource)] = &[
            (
                "Received: from a by b; Tue, 11 Mar 2025 09:00:00 +0000\nReceived: from c by a; Tue, 11 Mar 2025 08:00:00 +0000\nDate: Mon, 10 Mar 2025 07:00:00 +0000\n",
                1_741_683_600,
                DateSource::Received,
            ),
            ("Date: Mon, 10 Mar 2025 07:00:00 +0100\nSubject: x\n", 1_741_586_400, DateSource::DateHeader),
            ("Date: garbage\n", NOW, DateSource::Now),
            // Forms mail-parser misread or could not read (src/date.rs).
            ("Date: Wed Mar  5 08:15:00 2014\n", 1_394_007_300, DateSource::DateHeader),
            ("Date: Tue, 4 Mar 2014 10:00:00 CET\n", 1_393_923_600, DateSource::DateHeader),
            ("Date: Tue, 4 Mar 114 10:00:00 +0100\n", 1_393_923_600, DateSource::DateHeader),
            (
                "Received: from a by b\n\t(8.14/8.14); Tue, 4 Mar 2014\n 10:00:00 +0100 (CET)\nDate: x\n",
                1_393_923_600,
                DateSource::Received,
            ),
            ("Date: Tue, 32 Mar 2014 10:00:00 +0100\n", NOW, DateSource::Now),
            ("Subject: x\n\nDate: Tue, 4 Mar 2014 10:00:00 +0100\n", NOW, DateSource::Now),
            ("Date: Thu, 01 Jan 1970 00:00:00 +0000\n", NOW, DateSource::Now),
            ("Subject: no date\n", NOW, DateSource::Now),
            ("", NOW, DateSource::Now),
        ];
        for (h, t, src) in cases {
            assert_eq!(arrival_date(h.as_bytes(), NOW), (*t, *src), "{h}");
        }
    }

    #[test]
    fn fallback_dates_and_zones() {
        let h = b"Received: by x; Wed, 5 Mar 2014 09:00:00 -0500\nDATE : Tue, 4 Mar 2014 10:00:00 +0100 (CET)\n\nbody";
        assert_eq!(
            fallback_date(h, NOW),
            (1_393_923_600, DateSource::DateHeader)
        );
        assert_eq!(
            fallback_date(b"Date: 1 Jan 2999 00:00 +0000\n", NOW),
            (NOW, DateSource::Now)
        );
        assert_eq!(
            fallback_date(b"Subject: none\n", NOW),
            (NOW, DateSource::Now)
        );
        // The zone of the header that gave this instant; none for another instant.
        assert_eq!(zone_of(h, 1_393_923_600), Some(3600));
        assert_eq!(zone_of(h, 1_394_028_000), Some(-5 * 3600));
        assert_eq!(zone_of(h, 1_393_923_601), None);
        assert_eq!(
            zone_of(b"Date: Wed Mar  5 08:15:00 2014\n", 1_394_007_300),
            None
        );
    }

    #[test]
    fn envelope_senders() {
        let cases: &[(&[u8], &str)] = &[
            (
                b"Return-Path: <bounce@example.org>\nFrom: A <a@example.com>\n",
                "bounce@example.org",
            ),
            (
                b"From: Alice Rivera <alice.rivera@example.com>\n",
                "alice.rivera@example.com",
            ),
            (b"Return-Path: <>\nFrom: b@example.com\n", "b@example.com"),
            (b"Subject: none\n", "MAILER-DAEMON"),
            (
                b"From: J\xe9r\xf4me <j\xc3\xa9r@example.org>\n",
                "jr@example.org",
            ),
        ];
        for (h, want) in cases {
            assert_eq!(envelope_from(h), *want, "{}", String::from_utf8_lossy(h));
        }
    }
}
