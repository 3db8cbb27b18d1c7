//! IMAP modified UTF-7 (RFC 3501 section 5.1.3), the encoding of mailbox names on the wire.
//!
//! Printable US-ASCII (0x20-0x7e) stands for itself, except `&`, written `&-`. Every other
//! character is written as UTF-16 (big-endian, surrogate pairs for characters beyond U+FFFF) in
//! a base64 variant (`,` instead of `/`, no `=` padding) between `&` and `-`. `+` has no special
//! meaning (unlike RFC 2152 UTF-7, case 10 of the shared cases).
//!
//! [`encode`] always gives the one minimal form; [`decode`] is strict and accepts only that form,
//! so `decode(encode(s)) == s` for every string and `encode(decode(w)) == w` for every `w` that
//! decodes. Keep the wire form of a name next to its decoded form and never encode a wire name
//! again (imapsync#478: `Cart&APM-rio` encoded twice becomes `Cart&-APM-rio`).

use std::fmt;

/// Why a wire name is not valid modified UTF-7. Display is one lower-case line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mutf7Error {
    /// A character outside printable US-ASCII (e.g. raw UTF-8 from a server that did not
    /// encode), at this byte offset.
    NotAscii { offset: usize },
    /// An `&` without the closing `-`, at this byte offset.
    Unterminated { offset: usize },
    /// A character that is not modified base64 inside `&...-`, at this byte offset.
    BadBase64 { offset: usize },
    /// A base64 run whose length does not make whole UTF-16 units, or whose padding bits are
    /// not zero, starting at this byte offset.
    BadLength { offset: usize },
    /// A UTF-16 surrogate without its pair, in the run at this byte offset.
    BadSurrogate { offset: usize },
    /// A form that is valid but not the one minimal form: printable ASCII (or `&`) inside a
    /// base64 run, or two runs next to each other, at this byte offset.
    NotMinimal { offset: usize },
}

impl fmt::Display for Mutf7Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Mutf7Error::NotAscii { offset } => {
                write!(f, "non-ASCII character at byte {offset}")
            }
            Mutf7Error::Unterminated { offset } => {
                write!(f, "`&` at byte {offset} is not closed by `-`")
            }
            Mutf7Error::BadBase64 { offset } => {
                write!(f, "invalid modified base64 character at byte {offset}")
            }
            Mutf7Error::BadLength { offset } => {
                write!(f, "base64 run at byte {offset} is not whole UTF-16 units")
            }
            Mutf7Error::BadSurrogate { offset } => {
                write!(f, "unpaired UTF-16 surrogate in the run at byte {offset}")
            }
            Mutf7Error::NotMinimal { offset } => {
                write!(f, "non-minimal encoding at byte {offset}")
            }
        }
    }
}

impl std::error::Error for Mutf7Error {}

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

fn is_direct(c: char) -> bool {
    (' '..='~').contains(&c)
}

fn b64_value(b: u8) -> Option<u32> {
    match b {
        b'A'..=b'Z' => Some(u32::from(b - b'A')),
        b'a'..=b'z' => Some(u32::from(b - b'a') + 26),
        b'0'..=b'9' => Some(u32::from(b - b'0') + 52),
        b'+' => Some(62),
        b',' => Some(63),
        _ => None,
    }
}

/// Encodes a Unicode mailbox name (one level or a whole path, the delimiter being ASCII) for
/// the wire. Never fails; the result is printable ASCII.
pub fn encode(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 8);
    let mut units: Vec<u16> = Vec::new();
    for c in name.chars() {
        if is_direct(c) {
            flush(&mut units, &mut out);
            if c == '&' {
                out.push_str("&-");
            } else {
                out.push(c);
            }
        } else {
            let mut buf = [0u16; 2];
            units.extend_from_slice(c.encode_utf16(&mut buf));
        }
    }
    flush(&mut units, &mut out);
    out
}

/// Writes pending UTF-16 units as one `&...-` run.
fn flush(units: &mut Vec<u16>, out: &mut String) {
    if units.is_empty() {
        return;
    }
    out.push('&');
    let mut acc: u32 = 0;
    let mut bits = 0u32;
    for u in units.drain(..) {
        acc = (acc << 16) | u32::from(u);
        bits += 16;
        while bits >= 6 {
            bits -= 6;
            out.push(ALPHABET[((acc >> bits) & 0x3f) as usize] as char);
        }
        acc &= (1 << bits) - 1;
    }
    if bits > 0 {
        out.push(ALPHABET[((acc << (6 - bits)) & 0x3f) as usize] as char);
    }
    out.push('-');
}

/// Decodes a wire mailbox name. `&-` is `&`; `+` is itself.
///
/// Errors ([`Mutf7Error`]): a byte outside printable ASCII, an `&` without `-`, a character
/// outside the modified base64 alphabet, a run that is not whole UTF-16 units or has non-zero
/// padding bits, an unpaired surrogate, printable ASCII or `&` encoded in base64, or two runs
/// next to each other (`&AOQ-&AOQ-` instead of `&AOQA5A-`).
pub fn decode(wire: &str) -> Result<String, Mutf7Error> {
    let bytes = wire.as_bytes();
    let mut out = String::with_capacity(wire.len());
    let mut i = 0;
    // End offset of the previous base64 run, to refuse adjacent runs.
    let mut last_run_end: Option<usize> = None;
    while i < bytes.len() {
        let b = bytes[i];
        if !(0x20..=0x7e).contains(&b) {
            return Err(Mutf7Error::NotAscii { offset: i });
        }
        if b != b'&' {
            out.push(b as char);
            i += 1;
            continue;
        }
        let start = i;
        let Some(rel) = bytes[i + 1..].iter().position(|&c| c == b'-') else {
            return Err(Mutf7Error::Unterminated { offset: start });
        };
        let run = &bytes[i + 1..i + 1 + rel];
        i += rel + 2;
        if run.is_empty() {
            out.push('&');
            continue;
        }
        if last_run_end == Some(start) {
            return Err(Mutf7Error::NotMinimal { offset: start });
        }
        last_run_end = Some(i);
        decode_run(run, start, &mut out)?;
    }
    Ok(out)
}

/// Decodes the base64 between `&` and `-` (the `&` is at byte `offset`) and appends it.
fn decode_run(run: &[u8], offset: usize, out: &mut String) -> Result<(), Mutf7Error> {
    let mut units: Vec<u16> = Vec::with_capacity(run.len() * 6 / 16);
    let mut acc: u32 = 0;
    let mut bits = 0u32;
    for (k, &c) in run.iter().enumerate() {
        let v = b64_value(c).ok_or(Mutf7Error::BadBase64 {
            offset: offset + 1 + k,
        })?;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 16 {
            bits -= 16;
            units.push(((acc >> bits) & 0xffff) as u16);
            acc &= (1 << bits) - 1;
        }
    }
    // Leftover bits must be padding: fewer than 6, and zero.
    if bits >= 6 || acc != 0 || units.is_empty() {
        return Err(Mutf7Error::BadLength { offset });
    }
    for r in char::decode_utf16(units) {
        let c = r.map_err(|_| Mutf7Error::BadSurrogate { offset })?;
        if is_direct(c) {
            return Err(Mutf7Error::NotMinimal { offset });
        }
        out.push(c);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every row of shared/cases/10-modified-utf7-folder-names/expected-names.tsv (Unicode
    /// name, source wire name), plus more.
    const TABLE: &[(&str, &str)] = &[
        ("INBOX", "INBOX"),
        ("送信済み", "&kAFP4W4IMH8-"),
        ("プロジェクト", "&MNcw7TC4MKcwrzDI-"),
        ("プロジェクト/見積もり", "&MNcw7TC4MKcwrzDI-/&iYt6TTCCMIo-"),
        ("Entwürfe", "Entw&APw-rfe"),
        ("Rechnungen", "Rechnungen"),
        ("Rechnungen/2024", "Rechnungen/2024"),
        ("Rechnungen/2024/03_März", "Rechnungen/2024/03_M&AOQ-rz"),
        ("Réponses 1200+1201+1202", "R&AOk-ponses 1200+1201+1202"),
        ("Tom & Jerry", "Tom &- Jerry"),
        ("Cartório", "Cart&APM-rio"),
        // RFC 3501 5.1.3's example.
        ("~peter/mail/台北/日本語", "~peter/mail/&U,BTFw-/&ZeVnLIqe-"),
        ("&", "&-"),
        ("&&", "&-&-"),
        ("", ""),
        ("ä", "&AOQ-"),
        ("ää", "&AOQA5A-"),
        ("äää", "&AOQA5ADk-"),
        ("a\u{1}b", "a&AAE-b"),
        ("Ordner 😀", "Ordner &2D3eAA-"),
        ("😀🎉", "&2D3eANg834k-"),
        ("€uro", "&IKw-uro"),
        ("[Gmail]/All Mail", "[Gmail]/All Mail"),
    ];

    #[test]
    fn table_encodes_and_decodes() {
        for (unicode, wire) in TABLE {
            assert_eq!(encode(unicode), *wire, "encode {unicode:?}");
            assert_eq!(decode(wire).as_deref(), Ok(*unicode), "decode {wire:?}");
        }
    }

    #[test]
    fn case10_tsv_rows_round_trip() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../shared/cases/10-modified-utf7-folder-names/expected-names.tsv"
        );
        let Ok(tsv) = std::fs::read_to_string(path) else {
            eprintln!("{path} not found; skipping");
            return;
        };
        let mut rows = 0;
        for line in tsv.lines().skip(1).filter(|l| !l.is_empty()) {
            let cols: Vec<&str> = line.split('\t').collect();
            let (unicode, wire, slash) = (cols[0], cols[1], cols[2]);
            assert_eq!(encode(unicode), wire);
            assert_eq!(encode(unicode), slash);
            assert_eq!(decode(wire).unwrap(), unicode);
            // Never double-encode: the wire form of an encoded name is not the name again.
            assert_eq!(encode(&decode(wire).unwrap()), wire);
            // The `.` destination: each level encoded alone, joined with `.`.
            let dot: Vec<String> = unicode.split('/').map(encode).collect();
            let dot = dot.join(".");
            let want = cols[3];
            let want = if unicode == "INBOX" {
                want.to_string()
            } else {
                want.strip_prefix("INBOX.").unwrap().to_string()
            };
            assert_eq!(dot, want);
            rows += 1;
        }
        assert_eq!(rows, 11);
    }

    #[test]
    fn wrong_forms_from_case10_are_not_what_we_produce() {
        // Double encoding, Latin-1 mix-up, `+` in base64, unencoded `&`.
        assert_ne!(encode("Cartório"), "Cart&-APM-rio");
        assert_eq!(encode("Cart&APM-rio"), "Cart&-APM-rio");
        assert_ne!(encode("03_März"), "03_M&AMMApA-rz");
        assert_eq!(decode("03_M&AMMApA-rz").unwrap(), "03_MÃ¤rz");
        assert_eq!(
            decode("R&AOk-ponses 1200&ACs-1201&ACs-1202"),
            Err(Mutf7Error::NotMinimal { offset: 17 })
        );
        assert_eq!(
            decode("Tom & Jerry"),
            Err(Mutf7Error::Unterminated { offset: 4 })
        );
        assert_eq!(
            decode("Tom & Jerry-"),
            Err(Mutf7Error::BadBase64 { offset: 5 })
        );
    }

    #[test]
    fn strict_decoding_rejects_bad_forms() {
        let bad: &[(&str, Mutf7Error)] = &[
            ("a&AOQ", Mutf7Error::Unterminated { offset: 1 }),
            ("&", Mutf7Error::Unterminated { offset: 0 }),
            ("&A=Q-", Mutf7Error::BadBase64 { offset: 2 }),
            ("&AO/-", Mutf7Error::BadBase64 { offset: 3 }),
            // 2 characters: 12 bits, not a whole unit.
            ("&AO-", Mutf7Error::BadLength { offset: 0 }),
            // 4 characters: 24 bits = 1 unit + 8 bits of padding (>= 6).
            ("&AOQA-", Mutf7Error::BadLength { offset: 0 }),
            // Non-zero padding bits (`AOR` instead of `AOQ`).
            ("&AOR-", Mutf7Error::BadLength { offset: 0 }),
            // ASCII `a` (U+0061) in base64.
            ("&AGE-", Mutf7Error::NotMinimal { offset: 0 }),
            // `&` in base64.
            ("&ACY-", Mutf7Error::NotMinimal { offset: 0 }),
            // Adjacent runs.
            ("&AOQ-&AOQ-", Mutf7Error::NotMinimal { offset: 5 }),
            // A lone high surrogate (U+D83D).
            ("&2D0-", Mutf7Error::BadSurrogate { offset: 0 }),
            ("Entwürfe", Mutf7Error::NotAscii { offset: 4 }),
            ("a\tb", Mutf7Error::NotAscii { offset: 1 }),
        ];
        for (wire, want) in bad {
            assert_eq!(decode(wire).as_ref(), Err(want), "{wire:?}");
        }
        // `&-` right after a run is fine: it is a literal `&`, not a second run.
        assert_eq!(decode("&AOQ-&-").unwrap(), "ä&");
        assert_eq!(decode("&AOQ-x&AOQ-").unwrap(), "äxä");
    }

    /// A small deterministic generator (xorshift) for the round-trip property.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn char(&mut self) -> char {
            let pools: [(u32, u32); 6] = [
                (0x20, 0x7e),
                (0x20, 0x7e),
                (0x00, 0x1f),
                (0x80, 0x7ff),
                (0x3000, 0x9fff),
                (0x1f300, 0x1faff),
            ];
            loop {
                let (lo, hi) = pools[(self.next() % pools.len() as u64) as usize];
                let v = lo + (self.next() % u64::from(hi - lo + 1)) as u32;
                if let Some(c) = char::from_u32(v) {
                    return c;
                }
            }
        }
    }

    #[test]
    fn round_trip_property() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        for _ in 0..20_000 {
            let len = (rng.next() % 12) as usize;
            let s: String = (0..len).map(|_| rng.char()).collect();
            let wire = encode(&s);
            assert!(
                wire.bytes().all(|b| (0x20..=0x7e).contains(&b)),
                "{s:?} -> {wire:?}"
            );
            assert_eq!(
                decode(&wire).as_deref(),
                Ok(s.as_str()),
                "{s:?} -> {wire:?}"
            );
            assert_eq!(encode(&decode(&wire).unwrap()), wire);
        }
    }
}
