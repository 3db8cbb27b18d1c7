//! The protocol's nouns: mailbox names, flags and keywords, and what is known about a stored
//! message. Values here are plain data; nothing in this module does I/O.

use std::fmt;

/// A mailbox name as the user and the server know it, decoded to UTF-8 (RFC 3501 5.1).
///
/// Hierarchy is expressed with `/` in this type, whatever the server's delimiter is. A `/`
/// inside one level (possible on a server whose delimiter is `.`: `Work/x` there is one level)
/// is written `%2F`, and a `%` that would otherwise read as one of the two escapes (`%` followed
/// by `25` or `2F`) is written `%25`; every other character, `%` included, is kept. So distinct
/// lists of levels give distinct values ([`MailboxName::from_levels`] and
/// [`MailboxName::levels`] are inverse), and the names of ordinary mailboxes read as they are.
///
/// `INBOX` is case-insensitive (RFC 3501 5.1): `inbox`, `Inbox` and `INBOX` all build the same
/// value, spelled `INBOX`. Only the name INBOX itself is reserved: `inbox/Sub` and
/// `INBOX/Sub` are two mailboxes (Dovecot keeps them apart), so a first level is kept as sent.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub struct MailboxName(String);

/// Writes one level in the `/`-joined form of [`MailboxName`]: `/` as `%2F`, a `%` followed
/// by `25`, `2F` or `2f` as `%25`; everything else kept.
fn escape_name_level(level: &str, out: &mut String) {
    let b = level.as_bytes();
    for (i, c) in level.char_indices() {
        match c {
            '/' => out.push_str("%2F"),
            '%' if is_name_escape(&b[i..]) => out.push_str("%25"),
            c => out.push(c),
        }
    }
}

/// True when `b` starts with `%25`, `%2F` or `%2f` (the escapes of the `/`-joined form).
fn is_name_escape(b: &[u8]) -> bool {
    b.len() >= 3 && b[0] == b'%' && b[1] == b'2' && matches!(b[2], b'5' | b'F' | b'f')
}

/// The inverse of [`escape_name_level`]: `%2F` (either case) is `/`, `%25` is `%`; any other
/// `%` is kept.
fn unescape_name_level(level: &str) -> String {
    if !level.contains('%') {
        return level.to_string();
    }
    let b = level.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if is_name_escape(&b[i..]) {
            out.push(if b[i + 2] == b'5' { b'%' } else { b'/' });
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).expect("only ASCII escapes were replaced")
}

impl MailboxName {
    /// The INBOX mailbox (where POP3 mail lives).
    pub fn inbox() -> Self {
        MailboxName("INBOX".to_string())
    }

    /// Builds a name from its `/`-joined form (what the user writes, what [`as_str`] gives,
    /// what the ledger stores): levels separated by `/`, a `/` inside a level written `%2F`
    /// (see the type's documentation). Any case of `INBOX` alone becomes `INBOX`.
    ///
    /// [`as_str`]: MailboxName::as_str
    pub fn new(name: &str) -> Self {
        if !name.contains('%') {
            return MailboxName::canonical(name.to_string());
        }
        let levels: Vec<String> = name.split('/').map(unescape_name_level).collect();
        MailboxName::from_levels(&levels)
    }

    /// Builds a name from its levels as the server has them (already split at the server's
    /// delimiter and decoded from modified UTF-7); a level may hold any character, `/`
    /// included. No levels at all is INBOX.
    pub fn from_levels<S: AsRef<str>>(levels: &[S]) -> Self {
        if levels.is_empty() {
            return MailboxName::inbox();
        }
        let mut out = String::new();
        for (i, level) in levels.iter().enumerate() {
            if i > 0 {
                out.push('/');
            }
            escape_name_level(level.as_ref(), &mut out);
        }
        MailboxName::canonical(out)
    }

    fn canonical(joined: String) -> Self {
        if joined.eq_ignore_ascii_case("INBOX") {
            MailboxName::inbox()
        } else {
            MailboxName(joined)
        }
    }

    /// The levels of the name, each decoded (a level may contain `/`); at least one.
    pub fn levels(&self) -> Vec<String> {
        self.0.split('/').map(unescape_name_level).collect()
    }

    /// The name as a string, levels joined with `/` (a `/` inside a level written `%2F`).
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// True for INBOX itself.
    pub fn is_inbox(&self) -> bool {
        self.0 == "INBOX"
    }
}

impl fmt::Display for MailboxName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A message flag: an IMAP system flag (RFC 3501 2.3.2) or a keyword.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Flag {
    Seen,
    Answered,
    Flagged,
    Deleted,
    Draft,
    /// A keyword such as `$Forwarded` or `Work`, kept as the server spelled it.
    Keyword(String),
}

impl Flag {
    /// Parses an IMAP flag token (`\Seen`, `$Junk`, `Work`). `\Recent` is session state, not a
    /// flag to keep, and gives `None`, as does an unknown `\`-prefixed system flag.
    pub fn from_imap(token: &str) -> Option<Flag> {
        if let Some(sys) = token.strip_prefix('\\') {
            return match sys.to_ascii_lowercase().as_str() {
                "seen" => Some(Flag::Seen),
                "answered" => Some(Flag::Answered),
                "flagged" => Some(Flag::Flagged),
                "deleted" => Some(Flag::Deleted),
                "draft" => Some(Flag::Draft),
                _ => None,
            };
        }
        if token.is_empty() {
            None
        } else {
            Some(Flag::Keyword(token.to_string()))
        }
    }

    /// The IMAP spelling (`\Seen`, or the keyword itself).
    pub fn to_imap(&self) -> String {
        match self {
            Flag::Seen => "\\Seen".into(),
            Flag::Answered => "\\Answered".into(),
            Flag::Flagged => "\\Flagged".into(),
            Flag::Deleted => "\\Deleted".into(),
            Flag::Draft => "\\Draft".into(),
            Flag::Keyword(k) => k.clone(),
        }
    }

    /// The Maildir info letter for a system flag (cr.yp.to/proto/maildir.html: D draft,
    /// F flagged, R replied, S seen, T trashed). Keywords have none.
    pub fn maildir_letter(&self) -> Option<char> {
        match self {
            Flag::Draft => Some('D'),
            Flag::Flagged => Some('F'),
            Flag::Answered => Some('R'),
            Flag::Seen => Some('S'),
            Flag::Deleted => Some('T'),
            Flag::Keyword(_) => None,
        }
    }

    /// The system flag for a Maildir info letter; lower-case letters (Dovecot keywords) and
    /// unknown letters give `None`.
    pub fn from_maildir_letter(c: char) -> Option<Flag> {
        match c {
            'D' => Some(Flag::Draft),
            'F' => Some(Flag::Flagged),
            'R' => Some(Flag::Answered),
            'S' => Some(Flag::Seen),
            'T' => Some(Flag::Deleted),
            _ => None,
        }
    }
}

/// A set of flags, kept sorted and without repeats so equal sets compare equal.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Flags(Vec<Flag>);

impl FromIterator<Flag> for Flags {
    /// Builds a set from any flags, sorting and removing repeats.
    fn from_iter<I: IntoIterator<Item = Flag>>(it: I) -> Self {
        let mut v: Vec<Flag> = it.into_iter().collect();
        v.sort();
        v.dedup();
        Flags(v)
    }
}

impl Flags {
    /// An empty set.
    pub fn new() -> Self {
        Flags(Vec::new())
    }

    /// Adds a flag.
    pub fn insert(&mut self, f: Flag) {
        if let Err(pos) = self.0.binary_search(&f) {
            self.0.insert(pos, f);
        }
    }

    /// True when the set holds `f`.
    pub fn contains(&self, f: &Flag) -> bool {
        self.0.binary_search(f).is_ok()
    }

    /// The flags in order (system flags first, then keywords alphabetically).
    pub fn iter(&self) -> impl Iterator<Item = &Flag> {
        self.0.iter()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The Maildir info letters in ASCII order, as they follow `:2,` (e.g. `FRS`).
    pub fn maildir_info(&self) -> String {
        let mut letters: Vec<char> = self.0.iter().filter_map(Flag::maildir_letter).collect();
        letters.sort_unstable();
        letters.into_iter().collect()
    }

    /// Space-separated IMAP spelling, as in a FLAGS list: `\Seen \Flagged $Work`.
    pub fn to_imap_list(&self) -> String {
        self.0
            .iter()
            .map(Flag::to_imap)
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Parses a space-separated IMAP flag list (the inverse of [`Flags::to_imap_list`]).
    pub fn from_imap_list(s: &str) -> Self {
        s.split_whitespace().filter_map(Flag::from_imap).collect()
    }
}

/// Converts line ends to LF: a LF preceded by any number of CRs (`\r\n`, and the `\r\r\n` of
/// broken Windows tools) becomes one LF; a CR not followed by CRs and a LF (a bare CR) and
/// everything else stay untouched.
///
/// This is the one normalisation mailkeep applies to message bytes (docs/archive-formats.md, "Byte
/// fidelity"): archives hold LF line ends; the wire carries CRLF. Its output never holds a CR
/// right before a LF, so converting again changes nothing.
pub fn crlf_to_lf(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len());
    let mut held = 0usize;
    for &b in data {
        match b {
            b'\r' => held += 1,
            b'\n' => {
                held = 0;
                out.push(b'\n');
            }
            _ => {
                out.extend(std::iter::repeat_n(b'\r', held));
                held = 0;
                out.push(b);
            }
        }
    }
    out.extend(std::iter::repeat_n(b'\r', held));
    out
}

/// The stored form of a message as archives keep it: line ends as [`crlf_to_lf`] makes them,
/// CRs at the very end taken as the final line end, and a final LF added when the message does
/// not end with one (a POP3 or IMAP server ends every message with a line break, so this makes
/// archive bytes equal whatever the source was). Idempotent: `normalize(normalize(x)) ==
/// normalize(x)`, so a message keeps its bytes and SHA-256 through any number of round trips.
pub fn normalize(data: &[u8]) -> Vec<u8> {
    let mut out = crlf_to_lf(data);
    while out.last() == Some(&b'\r') {
        out.pop();
    }
    if !out.is_empty() && !out.ends_with(b"\n") {
        out.push(b'\n');
    }
    out
}

/// Converts LF line ends to CRLF for the wire (a lone LF becomes CRLF; an existing CRLF and a
/// bare CR are kept).
pub fn lf_to_crlf(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + data.len() / 40);
    let mut prev = 0u8;
    for &b in data {
        if b == b'\n' && prev != b'\r' {
            out.push(b'\r');
        }
        out.push(b);
        prev = b;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_is_idempotent_and_keeps_bare_crs() {
        let table: [(&[u8], &[u8]); 9] = [
            (b"a\r\nb\r\n", b"a\nb\n"),
            (b"a\r", b"a\n"),
            (b"a\r\r", b"a\n"),
            (b"a\r\r\nb", b"a\nb\n"),
            (b"x\ry\n", b"x\ry\n"),
            (b"a\n\r", b"a\n"),
            (b"\r", b""),
            (b"", b""),
            (b"a\r\rb\r\n", b"a\r\rb\n"),
        ];
        for (input, want) in table {
            let once = normalize(input);
            assert_eq!(once, want, "{input:?}");
            assert_eq!(normalize(&once), once, "not idempotent for {input:?}");
            assert_eq!(
                normalize(&lf_to_crlf(&once)),
                once,
                "wire round trip of {input:?}"
            );
        }
    }

    #[test]
    fn inbox_is_case_insensitive() {
        for s in ["inbox", "Inbox", "INBOX"] {
            assert_eq!(MailboxName::new(s), MailboxName::inbox());
        }
        // Only the name INBOX itself is case-insensitive (RFC 3501 5.1): `inbox/Work` and
        // `INBOX/Work` are two mailboxes.
        assert_eq!(MailboxName::new("inbox/Work").as_str(), "inbox/Work");
        assert_eq!(MailboxName::new("INBOX/Work").as_str(), "INBOX/Work");
        assert_eq!(MailboxName::from_levels(&["inbox"]), MailboxName::inbox());
        assert_eq!(MailboxName::new("Inboxes").as_str(), "Inboxes");
    }

    #[test]
    fn flags_parse_and_maildir_letters() {
        let f = Flags::from_imap_list("\\Seen \\Flagged \\Recent $Work \\Answered \\Seen");
        assert_eq!(f.maildir_info(), "FRS");
        assert_eq!(f.to_imap_list(), "\\Seen \\Answered \\Flagged $Work");
        assert!(f.contains(&Flag::Keyword("$Work".into())));
        let d = Flags::from_imap_list("\\Draft \\Deleted");
        assert_eq!(d.maildir_info(), "DT");
    }

    #[test]
    fn line_end_normalisation() {
        let cases: &[(&[u8], &[u8])] = &[
            (b"a\r\nb\r\n", b"a\nb\n"),
            (b"a\rb\r\n", b"a\rb\n"),
            (b"a\nb", b"a\nb\n"),
            (b"", b""),
            (b"a\r", b"a\n"),
        ];
        for (input, want) in cases {
            assert_eq!(normalize(input), *want, "input {:?}", input);
        }
        assert_eq!(lf_to_crlf(b"a\nb\r\nc\rd"), b"a\r\nb\r\nc\rd".to_vec());
    }
}
