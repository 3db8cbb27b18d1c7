//! Header values for display: finding a header in a message's header block, and decoding RFC
//! 2047 encoded words the way mail readers do (shared/cases/09):
//!
//! - white space between two adjacent encoded words is dropped (RFC 2047 6.2);
//! - consecutive encoded words in the same charset are decoded as one byte sequence, so a
//!   character whose bytes the sender split over two words comes out whole (except in stateful
//!   charsets such as ISO-2022-JP, whose words are complete by rule, RFC 1468);
//! - charset labels in any case and spelling mail-parser knows (`shift_jis`, `ISO-2022-JP`,
//!   `x-sjis`, ...), an RFC 2231 language suffix (`utf-8*ja`) ignored;
//! - `B` words are decoded leniently (missing padding accepted), `Q` words per RFC 2047 4.2;
//! - text outside encoded words is UTF-8 when it is valid UTF-8, else Windows-1252 (raw 8-bit
//!   headers from old mailers).
//!
//! mail-parser decodes each word on its own (a split character becomes U+FFFD), which is why
//! this is ours; its charset tables ([`charset_decoder`]) do the conversion.

use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine;
use mail_parser::decoders::charsets::map::charset_decoder;

/// The value of the first header called `name` (any case) in the header block of `raw`,
/// unfolded (line breaks before continuation lines removed, the white space kept), without the
/// line end. `None` when there is no such header.
pub fn header_value(raw: &[u8], name: &str) -> Option<Vec<u8>> {
    let head = &raw[..crate::archive::reader::header_end(raw)];
    let mut lines = head.split_inclusive(|&b| b == b'\n').peekable();
    while let Some(line) = lines.next() {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        if !line[..colon]
            .trim_ascii()
            .eq_ignore_ascii_case(name.as_bytes())
        {
            continue;
        }
        let mut value = strip_eol(&line[colon + 1..]).to_vec();
        while let Some(next) = lines.peek() {
            if !matches!(next.first(), Some(b' ' | b'\t')) {
                break;
            }
            value.extend_from_slice(strip_eol(next));
            lines.next();
        }
        return Some(value.trim_ascii().to_vec());
    }
    None
}

fn strip_eol(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// One encoded word: its charset (lower case, no language) and decoded bytes.
struct Word {
    charset: String,
    bytes: Vec<u8>,
}

/// Parses an encoded word `=?charset?B|Q?text?=` at the start of `s`; returns it and its
/// length in bytes.
fn encoded_word(s: &[u8]) -> Option<(Word, usize)> {
    let rest = s.strip_prefix(b"=?")?;
    let q1 = rest.iter().position(|&b| b == b'?')?;
    let charset = &rest[..q1];
    let enc = *rest.get(q1 + 1)?;
    if rest.get(q1 + 2) != Some(&b'?') {
        return None;
    }
    let text_start = q1 + 3;
    let text_len = rest[text_start..].windows(2).position(|w| w == b"?=")?;
    let text = &rest[text_start..text_start + text_len];
    if charset.is_empty() || text.iter().any(|b| b.is_ascii_whitespace()) {
        return None;
    }
    let bytes = match enc {
        b'B' | b'b' => {
            let engine = GeneralPurpose::new(
                &base64::alphabet::STANDARD,
                GeneralPurposeConfig::new()
                    .with_decode_padding_mode(DecodePaddingMode::Indifferent)
                    .with_decode_allow_trailing_bits(true),
            );
            engine.decode(text).ok()?
        }
        b'Q' | b'q' => {
            let mut out = Vec::with_capacity(text.len());
            let mut i = 0;
            while i < text.len() {
                match text[i] {
                    b'_' => out.push(b' '),
                    b'=' if i + 3 <= text.len() => {
                        let hex = std::str::from_utf8(&text[i + 1..i + 3]).ok();
                        match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                            Some(b) => {
                                out.push(b);
                                i += 3;
                                continue;
                            }
                            None => out.push(b'='),
                        }
                    }
                    b => out.push(b),
                }
                i += 1;
            }
            out
        }
        _ => return None,
    };
    let charset = String::from_utf8_lossy(charset);
    let charset = charset.split('*').next().unwrap_or("").to_ascii_lowercase();
    Some((Word { charset, bytes }, 2 + text_start + text_len + 2))
}

/// True for a charset whose words each start and end in its initial state (ISO-2022-JP and
/// friends, UTF-7): such words are decoded one by one, as joining them would put two escape
/// sequences side by side, which decoders reject (WHATWG Encoding, ISO-2022-JP decoder).
fn stateful(charset: &str) -> bool {
    let c = charset.replace('_', "-");
    c.starts_with("iso-2022") || c.starts_with("csiso2022") || c == "utf-7" || c == "hz-gb-2312"
}

/// Bytes in `charset` as text; unknown charsets (and UTF-8) as UTF-8, invalid sequences U+FFFD.
fn to_text(charset: &str, bytes: &[u8]) -> String {
    match charset {
        "utf-8" | "utf8" | "us-ascii" => String::from_utf8_lossy(bytes).into_owned(),
        _ => match charset_decoder(charset.as_bytes()) {
            Some(decode) => decode(bytes),
            None => String::from_utf8_lossy(bytes).into_owned(),
        },
    }
}

/// Text outside encoded words: UTF-8 when valid, else Windows-1252.
fn raw_text(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(s) => s.to_string(),
        Err(_) => to_text("windows-1252", bytes),
    }
}

/// Decodes the encoded words in a header value (see the module documentation). Never fails.
pub fn decode_words(value: &[u8]) -> String {
    let mut out = String::new();
    // The run of consecutive encoded words in one charset, not yet converted.
    let mut run: Option<Word> = None;
    // Literal text seen since the last encoded word (dropped if only white space before the
    // next encoded word).
    let mut pending: Vec<u8> = Vec::new();
    let mut i = 0;
    while i < value.len() {
        if value[i] == b'=' && value.get(i + 1) == Some(&b'?') {
            if let Some((word, len)) = encoded_word(&value[i..]) {
                let only_space = pending.iter().all(|b| b.is_ascii_whitespace());
                let after_word = run.is_some();
                if !(only_space && after_word) {
                    flush(&mut out, &mut run);
                    out.push_str(&raw_text(&pending));
                }
                pending.clear();
                match &mut run {
                    Some(r) if r.charset == word.charset && !stateful(&r.charset) => {
                        r.bytes.extend(word.bytes)
                    }
                    _ => {
                        flush(&mut out, &mut run);
                        run = Some(word);
                    }
                }
                i += len;
                continue;
            }
        }
        pending.push(value[i]);
        i += 1;
    }
    flush(&mut out, &mut run);
    out.push_str(&raw_text(&pending));
    out
}

fn flush(out: &mut String, run: &mut Option<Word>) {
    if let Some(w) = run.take() {
        out.push_str(&to_text(&w.charset, &w.bytes));
    }
}

/// The display name of a `From:`-like value (`"Name" <addr>`, `Name <addr>`), decoded; `None`
/// when the value has no `<` (a bare address) or the name part is empty.
pub fn display_name(value: &[u8]) -> Option<String> {
    // The first `<` outside double quotes starts the address.
    let mut quoted = false;
    let mut escaped = false;
    let mut lt = None;
    for (i, &b) in value.iter().enumerate() {
        match b {
            _ if escaped => escaped = false,
            b'\\' if quoted => escaped = true,
            b'"' => quoted = !quoted,
            b'<' if !quoted => {
                lt = Some(i);
                break;
            }
            _ => {}
        }
    }
    let name = value[..lt?].trim_ascii();
    // Quotes removed and `\x` unescaped; encoded words inside quotes (a common practice
    // RFC 2047 5 does not allow) are decoded too.
    let mut plain = Vec::with_capacity(name.len());
    let mut escaped = false;
    for &b in name {
        match b {
            _ if escaped => {
                plain.push(b);
                escaped = false;
            }
            b'\\' => escaped = true,
            b'"' => {}
            _ => plain.push(b),
        }
    }
    Some(decode_words(&plain)).filter(|n| !n.trim().is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_and_unfolds_headers() {
        let raw = b"Received: x\nsubject: =?a?b?\r\n =?c?d?\nX: 1\n\nSubject: body\n";
        assert_eq!(
            header_value(raw, "Subject").as_deref(),
            Some(&b"=?a?b? =?c?d?"[..])
        );
        assert_eq!(header_value(raw, "From"), None);
        assert_eq!(header_value(b"", "From"), None);
        assert_eq!(
            header_value(b"From:x\n\tfolded\n", "from").as_deref(),
            Some(&b"x\tfolded"[..])
        );
    }

    #[test]
    fn words() {
        let cases: &[(&[u8], &str)] = &[
            (b"plain text", "plain text"),
            (b"=?UTF-8?Q?J=C3=BCrgen_M=C3=BCller?=", "Jürgen Müller"),
            (b"=?utf-8?q?a?= =?utf-8?q?b?=", "ab"),
            (b"=?utf-8?q?a?=\t \t=?iso-8859-1?q?=E9?=", "aé"),
            (b"x =?utf-8?q?a?= y", "x a y"),
            (b"=?utf-8?q?a?= y =?utf-8?q?b?=", "a y b"),
            // A character split over two words: the bytes are joined before decoding.
            (
                b"=?UTF-8?B?5pel?= =?UTF-8?B?5pys6A==?= =?UTF-8?B?qp4=?=",
                "日本語",
            ),
            // Missing padding, language suffix, lower-case shift_jis.
            (b"=?utf-8*ja?B?5pel5pys?=", "日本"),
            (b"=?shift_jis?B?g1yDdINn?=", "ソフト"),
            (b"=?ISO-2022-JP?B?GyRCRnxLXDhsGyhC?=", "日本語"),
            // Two ISO-2022-JP words, each ending in ASCII state: decoded one by one.
            (
                b"=?ISO-2022-JP?B?GyRCRnxLXBsoQg==?= =?ISO-2022-JP?B?GyRCOGwbKEI=?=",
                "日本語",
            ),
            // Not encoded words: kept as they are.
            (b"=?utf-8?x?abc?=", "=?utf-8?x?abc?="),
            (b"=?utf-8?q?a b?=", "=?utf-8?q?a b?="),
            (b"=? broken", "=? broken"),
            (b"caf\xe9", "café"),
            (b"=?utf-8?q?=ZZ=4?=", "=ZZ=4"),
        ];
        for (input, want) in cases {
            assert_eq!(
                decode_words(input),
                *want,
                "{}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn display_names() {
        assert_eq!(
            display_name(b"\"Doe, \\\"Jo\\\"\" <jo@x>").as_deref(),
            Some("Doe, \"Jo\"")
        );
        assert_eq!(
            display_name(b"=?UTF-8?B?55Sw5Lit?= <t@x>").as_deref(),
            Some("田中")
        );
        assert_eq!(
            display_name(b"\"=?UTF-8?B?55Sw5Lit?=\" <t@x>").as_deref(),
            Some("田中")
        );
        assert_eq!(display_name(b"a@b"), None);
        assert_eq!(display_name(b"<a@b>"), None);
        assert_eq!(display_name(b"\"<not>\" <a@b>").as_deref(), Some("<not>"));
    }
}
