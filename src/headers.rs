//! What mailkeep reads from a message's header block: the date a message arrived and its
//! envelope sender. Parsing is lossy-tolerant (mail-parser never fails); nothing read here is
//! ever written back into message bytes.

use mail_parser::{HeaderValue, MessageParser};

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
/// Dates before 1971 or more than a day in the future are not believed. Seconds since the UNIX
/// epoch, UTC.
pub fn arrival_date(header: &[u8], now: i64) -> (i64, DateSource) {
    let plausible = |t: i64| t > 31_536_000 && t < now + 86_400;
    let msg = MessageParser::default().parse_headers(header);
    if let Some(msg) = msg {
        if let Some(t) = msg
            .received_all()
            .next()
            .and_then(|r| r.date())
            .map(|d| d.to_timestamp())
            .filter(|t| plausible(*t))
        {
            return (t, DateSource::Received);
        }
        if let Some(t) = msg
            .date()
            .map(|d| d.to_timestamp())
            .filter(|t| plausible(*t))
        {
            return (t, DateSource::DateHeader);
        }
    }
    (now, DateSource::Now)
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
            ("Date: Thu, 01 Jan 1970 00:00:00 +0000\n", NOW, DateSource::Now),
            ("Subject: no date\n", NOW, DateSource::Now),
            ("", NOW, DateSource::Now),
        ];
        for (h, t, src) in cases {
            assert_eq!(arrival_date(h.as_bytes(), NOW), (*t, *src), "{h}");
        }
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
