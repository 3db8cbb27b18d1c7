//! What goes on the wire besides the commands themselves: strings as quoted strings or
//! literals (RFC 3501 4.3, 9 `astring`) and the sizes up to which a literal is sent without
//! waiting (LITERAL+, LITERAL-, RFC 7888), the flag keywords that can be sent (atoms), and UID
//! sets.

use super::*;

/// The largest literal sent non-synchronising (`{N+}`, RFC 7888) when the server has LITERAL+.
/// Bigger messages wait for the server's `+` so it can refuse them (`NO [TOOBIG]`) before a
/// single octet is sent (RFC 7888 section 4 advises against huge non-synchronising literals).
pub const NONSYNC_LITERAL_MAX: usize = 1024 * 1024;

/// LITERAL- (RFC 7888 section 5) allows non-synchronising literals up to this size only.
pub(super) const LITERAL_MINUS_MAX: usize = 4096;

/// A mailbox name as a quoted string, the way the crate sends it (for error messages).
pub(super) fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// One argument of a command sent by [`ImapClient::raw_command`].
pub(super) enum Arg<'a> {
    /// Text, sent as is (atoms, quoted strings, spaces, parentheses).
    Text(String),
    /// A literal (RFC 3501 4.3): `{N}` (waiting for `+`) or `{N+}` (LITERAL+), then the octets.
    Literal(&'a [u8]),
}

/// A string argument: quoted (with `\` escapes) when it is printable ASCII, else a literal.
pub(super) fn astring(s: &str) -> Arg<'_> {
    if s.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        Arg::Text(quote(s))
    } else {
        Arg::Literal(s.as_bytes())
    }
}

/// True when `k` can be sent as a flag keyword: an IMAP atom (RFC 3501 9: ASCII 0x21-0x7e
/// without `(){ %*"\]`).
pub(super) fn is_atom(k: &str) -> bool {
    !k.is_empty()
        && k.bytes()
            .all(|b| (0x21..0x7f).contains(&b) && !b"(){ %*\"\\]".contains(&b))
}

/// Compresses UIDs into an IMAP sequence set (RFC 3501 9, `sequence-set`): sorted, repeats
/// removed, runs as ranges: `[1,2,3,4,5,9,12,13]` gives `1:5,9,12:13`.
pub fn uid_set(uids: &[u32]) -> String {
    let sorted: BTreeSet<u32> = uids.iter().copied().collect();
    let mut out = String::new();
    let mut it = sorted.into_iter().peekable();
    while let Some(start) = it.next() {
        let mut end = start;
        while it.peek() == Some(&(end.wrapping_add(1))) && end != u32::MAX {
            end = it.next().unwrap_or(end);
        }
        if !out.is_empty() {
            out.push(',');
        }
        if start == end {
            out.push_str(&start.to_string());
        } else {
            out.push_str(&format!("{start}:{end}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uid_sets_are_compressed() {
        assert_eq!(uid_set(&[1, 2, 3, 4, 5, 9, 12, 13]), "1:5,9,12:13");
        assert_eq!(uid_set(&[9, 1, 3, 2, 2]), "1:3,9");
        assert_eq!(uid_set(&[7]), "7");
        assert_eq!(uid_set(&[]), "");
        assert_eq!(uid_set(&[u32::MAX - 1, u32::MAX]), "4294967294:4294967295");
        assert_eq!(uid_set(&[1, 3, 5]), "1,3,5");
    }

    #[test]
    fn keywords_must_be_atoms() {
        for ok in ["$Work", "Junk", "$label1", "NonJunk"] {
            assert!(is_atom(ok), "{ok}");
        }
        for bad in ["", "a b", "a]", "(x", "a\"", "x%", "x*", "x\\", "ü", "a{1}"] {
            assert!(!is_atom(bad), "{bad}");
        }
    }
}
