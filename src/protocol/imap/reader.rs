//! The one reader of IMAP server responses (RFC 3501 7 and 9, RFC 9051): every answer of an
//! [`crate::protocol::imap::ImapClient`] session is read here, as a stream. FETCH responses come out
//! typed ([`FetchItems`]); EXISTS, EXPUNGE, VANISHED, BYE, `OK [UIDVALIDITY]`, continuations
//! and tagged completions too; every other untagged response (LIST, STATUS, CAPABILITY,
//! SEARCH, NAMESPACE, QUOTA, status responses with their codes) comes tokenised
//! ([`Untagged`], [`Value`]), with one grammar for all. See DESIGN-NOTES.md ("The IMAP
//! parser") for why mailkeep reads responses itself rather than through a crate.
//!
//! Two layers:
//! - [`Parser`], a push state machine with no I/O: [`Parser::feed`] takes whatever bytes
//!   arrived (any split, down to one byte at a time) and returns one complete [`Response`] at
//!   a time. The text of a response (everything but its literals) is collected up to
//!   [`MAX_RESPONSE_TEXT`] bytes; each literal (`{N}`, `{N+}`, literal8 `~{N}`, RFC 3501 4.3,
//!   RFC 7888, RFC 3516) is read as exactly N octets into its own `Vec`, so the memory of a
//!   response is its literals (one message body) plus its text. The item list is tokenised
//!   once, when the response is complete.
//! - [`ReadBuf`], one read buffer over the connection.
//!
//! Errors: [`ParseError`] (malformed response, too long a text, non-numeric UID or size; the
//! message names the UID when it is known); the caller maps it to
//! [`crate::protocol::imap::ImapError::Protocol`].

use std::io::{self, Read};

use crate::core::message::{Flag, Flags};

/// The longest response text (everything but literals, CRLFs included) accepted, in bytes:
/// a FETCH line of UID, FLAGS, sizes and dates is well under 1 KiB; a server sending more
/// than this without a line end is broken (or hostile) and gets a protocol error instead of
/// our memory.
pub const MAX_RESPONSE_TEXT: usize = 1024 * 1024;

/// At most this much is reserved in advance for a literal, in bytes (a lying `{N}` with a
/// huge N must not allocate N before a single octet arrived); a larger literal grows.
const LITERAL_RESERVE_MAX: usize = 64 * 1024 * 1024;

/// Size of [`ReadBuf`]'s buffer, in bytes.
pub const READ_BUF_SIZE: usize = 64 * 1024;

/// What one FETCH response (`* n FETCH (...)`) said about message `seq`. Items the response
/// did not carry are `None`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FetchItems {
    /// The message sequence number.
    pub seq: u32,
    pub uid: Option<u32>,
    /// FLAGS, `\Recent` dropped; `Some(empty)` for `FLAGS ()`.
    pub flags: Option<Flags>,
    /// INTERNALDATE in seconds since the Unix epoch (UTC); `None` also when it cannot be
    /// parsed (the caller names the UID then).
    pub internal_date: Option<i64>,
    /// What the server sent as INTERNALDATE when the item came, for messages about a date that
    /// cannot be read: `NIL`, `"garbage"` (quoted as sent, at most 64 characters, control
    /// characters escaped); `None` when the item did not come.
    pub internal_date_sent: Option<String>,
    /// RFC822.SIZE in octets.
    pub size: Option<u64>,
    /// MODSEQ (RFC 7162 3.1.4).
    pub modseq: Option<u64>,
    /// `BODY[]` (also `BODY[]<0>`, `RFC822`, `BINARY[]`) as sent; `None` when absent or NIL.
    pub body: Option<Vec<u8>>,
    /// The body item came as `NIL` (the server has no message to give for this UID).
    pub body_nil: bool,
    /// Gmail's X-GM-MSGID: the message's id across the account's folders (a 64-bit number).
    pub gm_msgid: Option<u64>,
    /// Gmail's X-GM-THRID: the conversation's id.
    pub gm_thrid: Option<u64>,
    /// Gmail's X-GM-LABELS, as sent (lossy UTF-8): system labels with their backslash
    /// (`\Inbox`, `\Sent`, `\Important`), user labels in modified UTF-7 with `/` levels.
    pub gm_labels: Option<Vec<String>>,
}

/// One complete server response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    /// `* n FETCH (...)`.
    Fetch(FetchItems),
    /// `* n EXISTS`.
    Exists(u32),
    /// `* n EXPUNGE` (sequence numbers above n move down by one).
    Expunge(u32),
    /// `* VANISHED ...` (RFC 7162 3.2.10); `earlier` for `VANISHED (EARLIER)`.
    Vanished { earlier: bool },
    /// `* OK [UIDVALIDITY n] ...`: the mailbox's UIDVALIDITY (RFC 3501 7.1); inside a FETCH
    /// answer it means the mailbox was recreated meanwhile.
    UidValidity(u32),
    /// `* BYE text`: the server is closing the connection; the text is empty when the
    /// server gave none (iCloud).
    Bye(String),
    /// Any other untagged response (`* LIST`, `* STATUS`, `* CAPABILITY`, `* SEARCH`,
    /// `* OK [UIDNEXT n]`, `* FLAGS`, `* n RECENT`, ...), tokenised: see [`Untagged`].
    Other(Untagged),
    /// A continuation request `+ ...`.
    Continuation,
    /// The tagged completion: `status` upper-cased (`OK`, `NO`, `BAD`), `text` the rest of
    /// the line (response code included) without CRLF.
    Tagged {
        tag: String,
        status: String,
        text: String,
    },
}

/// A value of a response's data (RFC 3501 9, RFC 9051 9), owned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// `NIL`.
    Nil,
    /// An atom or a number, as sent (lossy UTF-8): `\Noselect`, `MESSAGES`, `4294967296`.
    Atom(String),
    /// A quoted string (unescaped: `\"` gives `"`, `\\` gives `\`) or a literal's octets.
    Str(Vec<u8>),
    /// A parenthesised list.
    List(Vec<Value>),
}

impl Value {
    /// The text of an atom or string (lossy UTF-8); `None` for NIL and lists.
    pub fn text(&self) -> Option<String> {
        match self {
            Value::Atom(a) => Some(a.clone()),
            Value::Str(s) => Some(String::from_utf8_lossy(s).into_owned()),
            _ => None,
        }
    }

    /// The octets of an atom or string; `None` for NIL and lists.
    pub fn octets(&self) -> Option<&[u8]> {
        match self {
            Value::Atom(a) => Some(a.as_bytes()),
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// An atom that is a number of up to 64 bits; `None` otherwise (also for a number beyond
    /// 64 bits).
    pub fn number(&self) -> Option<u64> {
        match self {
            Value::Atom(a) if !a.is_empty() && a.bytes().all(|b| b.is_ascii_digit()) => {
                a.parse().ok()
            }
            _ => None,
        }
    }
}

/// An untagged response other than those [`Response`] names (RFC 3501 7.1-7.4, RFC 9051 7).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Untagged {
    /// The response's name, upper-cased: `LIST`, `LSUB`, `STATUS`, `CAPABILITY`, `SEARCH`,
    /// `FLAGS`, `NAMESPACE`, `QUOTA`, `QUOTAROOT`, `ENABLED`, `ID`, ...; `OK`, `NO`, `BAD`,
    /// `PREAUTH` for status responses; after a number (`* 3 RECENT`) the word after it.
    pub name: String,
    /// The number before the name (`* 3 RECENT`), if any.
    pub number: Option<u64>,
    /// The data after the name, tokenised; `None` when it is not well-formed (a name with a
    /// bare `"`, an unclosed list): the caller names what it could not read.
    pub values: Option<Vec<Value>>,
    /// The data after the name as sent (lossy UTF-8, literals left out, no line end): for a
    /// status response its text with the response code (`[UIDNEXT 5] Predicted next UID`).
    pub text: String,
}

impl Untagged {
    /// For a status response (`* OK [CODE args] text`): the code upper-cased and its
    /// arguments as sent (`("UIDNEXT", "5")`, `("NOMODSEQ", "")`).
    pub fn code(&self) -> Option<(String, String)> {
        let inner = self.text.trim_start().strip_prefix('[')?;
        let end = inner.find(']')?;
        let inner = &inner[..end];
        let (word, args) = inner.split_once(' ').unwrap_or((inner, ""));
        Some((word.to_ascii_uppercase(), args.trim().to_string()))
    }
}

/// Tokenises response data (what follows `* NAME `, literals inline after their `{N}` CRLF,
/// as [`crate::protocol::imap`] sends them in tests and fuzzing): `None` when malformed. The same
/// grammar as the responses [`Parser`] reads.
pub fn tokenize(data: &[u8]) -> Option<Vec<Value>> {
    // Split the inline literals out, as the parser does while reading.
    let mut text = Vec::with_capacity(data.len());
    let mut literals = Vec::new();
    let mut i = 0;
    while i < data.len() {
        let line_end = data[i..]
            .iter()
            .position(|&b| b == b'\n')
            .map(|p| i + p + 1);
        let end = line_end.unwrap_or(data.len());
        text.extend_from_slice(&data[i..end]);
        i = end;
        if line_end.is_some() {
            if let Some(n) = literal_at_end(&text) {
                let n = n.ok()?;
                literals.push(data.get(i..i.checked_add(n)?)?.to_vec());
                i += n;
            }
        }
    }
    let mut c = Cursor {
        t: &text,
        i: 0,
        literals: literals.into_iter(),
        uid: None,
        what: "response",
    };
    let v = c.values().ok()?;
    c.literals.as_slice().is_empty().then_some(v)
}

/// A response that breaks the protocol; the text names the UID when known. Displayed as one
/// line: control characters (quoted from the server) escaped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", crate::core::endpoint::escape_controls(.0))]
pub struct ParseError(pub String);

/// The literal being read.
#[derive(Debug)]
struct Literal {
    want: usize,
    data: Vec<u8>,
}

/// Push parser for server responses; see the module documentation. One parser reads one
/// response at a time; after a [`ParseError`] it must be [`reset`](Parser::reset) (the
/// connection is out of step anyway).
#[derive(Debug)]
pub struct Parser {
    /// The response's text so far, literals left out (their `{N}` CRLF stays).
    text: Vec<u8>,
    /// The literals of the response so far, in order.
    literals: Vec<Vec<u8>>,
    literal: Option<Literal>,
    max_text: usize,
    /// The largest literal accepted, in octets (a message body).
    max_literal: u64,
    /// The size of the literal refused for being above `max_literal`, once refused.
    refused: Option<u64>,
}

impl Default for Parser {
    fn default() -> Self {
        Parser::new()
    }
}

impl Parser {
    /// A parser accepting response texts up to [`MAX_RESPONSE_TEXT`] bytes and literals up to
    /// [`crate::core::limits::max_message_size`] octets.
    pub fn new() -> Self {
        Parser::with_max_text(MAX_RESPONSE_TEXT)
    }

    /// A parser accepting response texts up to `max_text` bytes (tests use small limits).
    pub fn with_max_text(max_text: usize) -> Self {
        Parser {
            text: Vec::with_capacity(256),
            literals: Vec::new(),
            literal: None,
            max_text,
            max_literal: crate::core::limits::max_message_size(),
            refused: None,
        }
    }

    /// The same parser accepting literals up to `max_literal` octets.
    pub fn with_max_literal(mut self, max_literal: u64) -> Self {
        self.max_literal = max_literal;
        self
    }

    /// The announced size of a literal refused for being above the limit, and the limit:
    /// set when [`feed`](Self::feed) failed for that reason.
    pub fn refused_literal(&self) -> Option<(u64, u64)> {
        self.refused.map(|n| (n, self.max_literal))
    }

    /// Forgets a partly read response.
    pub fn reset(&mut self) {
        self.text.clear();
        self.literals.clear();
        self.literal = None;
        self.refused = None;
    }

    /// True when part of a response has been read.
    pub fn in_progress(&self) -> bool {
        !self.text.is_empty() || self.literal.is_some()
    }

    /// The UID of the response being read, when its text so far names one (`UID n`).
    pub fn uid_hint(&self) -> Option<u32> {
        uid_in_text(&self.text)
    }

    /// While a literal is read: (octets received, octets announced).
    pub fn literal_progress(&self) -> Option<(usize, usize)> {
        self.literal.as_ref().map(|l| (l.data.len(), l.want))
    }

    /// Takes bytes from `input`. Returns how many were used and, when a response ended with
    /// them, that response (the bytes after it are left for the next call). Never keeps a
    /// reference to `input`.
    ///
    /// Errors: a response text above the maximum (without its line end), or a complete
    /// response that is not well-formed.
    pub fn feed(&mut self, input: &[u8]) -> Result<(usize, Option<Response>), ParseError> {
        let mut used = 0;
        while used < input.len() {
            if let Some(lit) = &mut self.literal {
                let take = (lit.want - lit.data.len()).min(input.len() - used);
                lit.data.extend_from_slice(&input[used..used + take]);
                used += take;
                if lit.data.len() == lit.want {
                    let lit = self.literal.take().map(|l| l.data).unwrap_or_default();
                    self.literals.push(lit);
                }
                continue;
            }
            let rest = &input[used..];
            let (chunk, line_end) = match rest.iter().position(|&b| b == b'\n') {
                Some(i) => (&rest[..=i], true),
                None => (rest, false),
            };
            if self.text.len() + chunk.len() > self.max_text {
                return Err(ParseError(format!(
                    "a response{} is longer than {} bytes without a line end",
                    self.uid_words(chunk),
                    self.max_text
                )));
            }
            self.text.extend_from_slice(chunk);
            used += chunk.len();
            if !line_end {
                continue;
            }
            if let Some(n) = literal_at_end(&self.text) {
                let n = n.map_err(|what| {
                    ParseError(format!(
                        "a literal size{} is not a number: `{}`",
                        self.uid_words(&[]),
                        crate::core::endpoint::escape_controls(&what)
                    ))
                })?;
                if n as u64 > self.max_literal {
                    // Refused before a byte of it is reserved or read: the connection is out of
                    // step from here on (the literal is still coming).
                    self.refused = Some(n as u64);
                    return Err(ParseError(format!(
                        "a literal{} of {n} octets: {}",
                        self.uid_words(&[]),
                        crate::core::limits::too_large(Some(n as u64), self.max_literal)
                    )));
                }
                if n == 0 {
                    self.literals.push(Vec::new());
                } else {
                    self.literal = Some(Literal {
                        want: n,
                        data: Vec::with_capacity(n.min(LITERAL_RESERVE_MAX)),
                    });
                }
                continue;
            }
            let text = std::mem::replace(&mut self.text, Vec::with_capacity(256));
            let literals = std::mem::take(&mut self.literals);
            return parse_response(&text, literals).map(|r| (used, Some(r)));
        }
        Ok((used, None))
    }

    /// ` for UID n` when the text so far (and `more`) names the UID, else empty.
    fn uid_words(&self, more: &[u8]) -> String {
        let mut t = self.text.clone();
        t.extend_from_slice(&more[..more.len().min(256)]);
        match uid_in_text(&t) {
            Some(u) => format!(" for UID {u}"),
            None => String::new(),
        }
    }
}

/// When `text` (a line with its CRLF or LF) ends with a literal's announcement (`{N}`,
/// `{N+}`, `~{N}`): `Some(Ok(N))`, or `Some(Err(what))` when the braces hold no number.
fn literal_at_end(text: &[u8]) -> Option<Result<usize, String>> {
    let t = text.strip_suffix(b"\n")?;
    let t = t.strip_suffix(b"\r").unwrap_or(t);
    let t = t.strip_suffix(b"}")?;
    let open = t.iter().rposition(|&b| b == b'{')?;
    // `{` must start a token: after a space, `(`, `~`, or at the start of a line.
    if open > 0 && !matches!(t[open - 1], b' ' | b'(' | b'~' | b'\n') {
        return None;
    }
    let inner = &t[open + 1..];
    let digits = inner.strip_suffix(b"+").unwrap_or(inner);
    // A quoted string cannot hold a CR or LF, so a `{...}` ending the line is a literal.
    if !digits.is_empty() && digits.len() <= 19 && digits.iter().all(u8::is_ascii_digit) {
        let n: u64 = std::str::from_utf8(digits).ok()?.parse().ok()?;
        return Some(usize::try_from(n).map_err(|_| String::from_utf8_lossy(inner).into_owned()));
    }
    Some(Err(
        String::from_utf8_lossy(&inner[..inner.len().min(40)]).into_owned()
    ))
}

/// `UID n` anywhere in `text` (case-insensitive), for error messages.
fn uid_in_text(text: &[u8]) -> Option<u32> {
    let mut i = 0;
    while i + 4 <= text.len() {
        if text[i..i + 4].eq_ignore_ascii_case(b"UID ")
            && (i == 0 || matches!(text[i - 1], b' ' | b'('))
        {
            let digits: Vec<u8> = text[i + 4..]
                .iter()
                .take_while(|b| b.is_ascii_digit())
                .copied()
                .collect();
            if let Some(u) = std::str::from_utf8(&digits)
                .ok()
                .and_then(|d| d.parse().ok())
            {
                return Some(u);
            }
        }
        i += 1;
    }
    None
}

/// A value in a response (RFC 3501 9).
#[derive(Debug)]
enum Val<'t> {
    Nil,
    /// An atom or number, as sent.
    Atom(&'t [u8]),
    /// A quoted string (unescaped) or a literal's octets.
    Str(Vec<u8>),
    List(Vec<Val<'t>>),
}

fn owned(v: Val<'_>) -> Value {
    match v {
        Val::Nil => Value::Nil,
        Val::Atom(a) => Value::Atom(String::from_utf8_lossy(a).into_owned()),
        Val::Str(s) => Value::Str(s),
        Val::List(l) => Value::List(l.into_iter().map(owned).collect()),
    }
}

/// A cursor over a complete response: its text and, in order, its literals.
struct Cursor<'t> {
    t: &'t [u8],
    i: usize,
    literals: std::vec::IntoIter<Vec<u8>>,
    /// The UID, once read (for error messages).
    uid: Option<u32>,
    /// What is read, for error messages: `FETCH response`, `response`.
    what: &'static str,
}

/// Nested lists deeper than this are refused (a stack guard).
const MAX_DEPTH: usize = 64;

impl<'t> Cursor<'t> {
    fn err(&self, what: &str) -> ParseError {
        let uid = self.uid.or_else(|| uid_in_text(self.t));
        let at = match uid {
            Some(u) => format!(" for UID {u}"),
            None => String::new(),
        };
        let line = self.t.split(|&b| b == b'\n').next().unwrap_or_default();
        let shown = String::from_utf8_lossy(&line[..line.len().min(80)]);
        ParseError(format!(
            "malformed {}{at}: {what} (`{}`)",
            self.what,
            crate::core::endpoint::escape_controls(shown.trim_end())
        ))
    }

    fn peek(&self) -> Option<u8> {
        self.t.get(self.i).copied()
    }

    fn skip_spaces(&mut self) {
        while self.peek() == Some(b' ') {
            self.i += 1;
        }
    }

    /// Bytes up to a space, `(`, `)`, CR or LF; `[...]` sections (which may hold spaces and
    /// parentheses) and a `<n>` origin are part of the atom.
    fn atom(&mut self) -> &'t [u8] {
        let start = self.i;
        let mut depth = 0usize;
        while let Some(b) = self.peek() {
            match b {
                b'[' => depth += 1,
                b']' => depth = depth.saturating_sub(1),
                b'\r' | b'\n' => break,
                b' ' | b'(' | b')' if depth == 0 => break,
                _ => {}
            }
            self.i += 1;
        }
        &self.t[start..self.i]
    }

    /// Bytes up to a space, `(`, `)`, CR or LF: an atom, number or flag as a value (`[`
    /// and `]` are ordinary characters there: a keyword may hold them).
    fn plain_atom(&mut self) -> &'t [u8] {
        let start = self.i;
        while let Some(b) = self.peek() {
            if matches!(b, b' ' | b'(' | b')' | b'\r' | b'\n') {
                break;
            }
            self.i += 1;
        }
        &self.t[start..self.i]
    }

    /// The values up to the end of the response, owned.
    fn values(&mut self) -> Result<Vec<Value>, ParseError> {
        let mut out = Vec::new();
        loop {
            self.skip_spaces();
            if self.at_end() {
                return Ok(out);
            }
            let v = self.value(0)?;
            out.push(owned(v));
        }
    }

    fn number<T: std::str::FromStr>(&mut self, what: &str) -> Result<T, ParseError> {
        let a = self.atom();
        std::str::from_utf8(a)
            .ok()
            .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| {
                self.err(&format!(
                    "{what} is not a number: `{}`",
                    String::from_utf8_lossy(&a[..a.len().min(40)])
                ))
            })
    }

    fn value(&mut self, depth: usize) -> Result<Val<'t>, ParseError> {
        if depth > MAX_DEPTH {
            return Err(self.err("lists nested too deep"));
        }
        match self.peek() {
            None | Some(b'\r' | b'\n') => Err(self.err("a value is missing")),
            Some(b'(') => {
                self.i += 1;
                let mut items = Vec::new();
                loop {
                    self.skip_spaces();
                    match self.peek() {
                        Some(b')') => {
                            self.i += 1;
                            return Ok(Val::List(items));
                        }
                        None | Some(b'\r' | b'\n') => {
                            return Err(self.err("a parenthesis is not closed"))
                        }
                        _ => items.push(self.value(depth + 1)?),
                    }
                }
            }
            Some(b')') => Err(self.err("unbalanced `)`")),
            Some(b'"') => {
                self.i += 1;
                let mut s = Vec::new();
                loop {
                    match self.peek() {
                        Some(b'\\') => match self.t.get(self.i + 1) {
                            Some(&c @ (b'\\' | b'"')) => {
                                s.push(c);
                                self.i += 2;
                            }
                            // A server that does not escape its backslashes (`"a\b"`): the
                            // backslash is taken as itself.
                            Some(b'\r' | b'\n') | None => {
                                return Err(self.err("a quoted string is not closed"))
                            }
                            Some(_) => {
                                s.push(b'\\');
                                self.i += 1;
                            }
                        },
                        Some(b'"') => {
                            self.i += 1;
                            return Ok(Val::Str(s));
                        }
                        None | Some(b'\r' | b'\n') => {
                            return Err(self.err("a quoted string is not closed"))
                        }
                        Some(b) => {
                            s.push(b);
                            self.i += 1;
                        }
                    }
                }
            }
            Some(b'{') | Some(b'~')
                if self
                    .t
                    .get(self.i..)
                    .is_some_and(|r| r.starts_with(b"{") || r.starts_with(b"~{")) =>
            {
                if self.peek() == Some(b'~') {
                    self.i += 1;
                }
                let close = self.t[self.i..]
                    .iter()
                    .position(|&b| b == b'}')
                    .map(|p| p + self.i)
                    .ok_or_else(|| self.err("a `{` without `}`"))?;
                self.i = close + 1;
                if self.t.get(self.i) == Some(&b'\r') {
                    self.i += 1;
                }
                if self.t.get(self.i) != Some(&b'\n') {
                    return Err(self.err("a literal announcement not at the end of a line"));
                }
                self.i += 1;
                let lit = self
                    .literals
                    .next()
                    .ok_or_else(|| self.err("a literal is missing"))?;
                Ok(Val::Str(lit))
            }
            Some(_) => {
                let a = self.plain_atom();
                if a.is_empty() {
                    return Err(self.err("an empty value"));
                }
                Ok(if a.eq_ignore_ascii_case(b"NIL") {
                    Val::Nil
                } else {
                    Val::Atom(a)
                })
            }
        }
    }

    /// True at the end of the response (only a line end left).
    fn at_end(&self) -> bool {
        matches!(&self.t[self.i..], b"" | b"\n" | b"\r\n")
    }
}

/// Parses one complete response: `text` is its text with each literal's octets left out
/// (after the `{N}` CRLF), `literals` those octets in order.
fn parse_response(text: &[u8], literals: Vec<Vec<u8>>) -> Result<Response, ParseError> {
    let line = text
        .strip_suffix(b"\r\n")
        .or_else(|| text.strip_suffix(b"\n"))
        .unwrap_or(text);
    if line.first() == Some(&b'+') {
        return Ok(Response::Continuation);
    }
    // `*85416 FETCH ...` (seen from Yahoo): a tag never holds `*` (RFC 3501 9, `tag` is made
    // of ASTRING-CHARs, which exclude list-wildcards), so this is an untagged response
    // without its space.
    if line.len() > 1 && line[0] == b'*' && line[1].is_ascii_digit() {
        let mut fixed = Vec::with_capacity(text.len() + 1);
        fixed.extend_from_slice(b"* ");
        fixed.extend_from_slice(&text[1..]);
        return parse_response(&fixed, literals);
    }
    let Some(rest) = line.strip_prefix(b"* ") else {
        let s = String::from_utf8_lossy(line);
        let mut parts = s.splitn(3, ' ');
        let (tag, status) = (parts.next().unwrap_or(""), parts.next());
        return match status {
            Some(st) if !tag.is_empty() => Ok(Response::Tagged {
                tag: tag.to_string(),
                status: st.to_ascii_uppercase(),
                text: parts.next().unwrap_or("").to_string(),
            }),
            _ => Err(ParseError(format!(
                "not an IMAP response: `{}`",
                crate::core::endpoint::escape_controls(&String::from_utf8_lossy(
                    &line[..line.len().min(80)]
                ))
            ))),
        };
    };
    let mut c = Cursor {
        t: text,
        i: 2,
        literals: literals.into_iter(),
        uid: None,
        what: "FETCH response",
    };
    let first = c.atom();
    let words = |b: &[u8]| String::from_utf8_lossy(b).trim().to_string();
    if !first.is_empty() && first.iter().all(u8::is_ascii_digit) {
        let number: Option<u64> = std::str::from_utf8(first).ok().and_then(|s| s.parse().ok());
        c.skip_spaces();
        let kind = c.atom();
        if let Some(n) = number.and_then(|n| u32::try_from(n).ok()) {
            if kind.eq_ignore_ascii_case(b"EXISTS") {
                return Ok(Response::Exists(n));
            }
            if kind.eq_ignore_ascii_case(b"EXPUNGE") {
                return Ok(Response::Expunge(n));
            }
            if kind.eq_ignore_ascii_case(b"FETCH") {
                return parse_fetch(&mut c, n).map(Response::Fetch);
            }
        } else if kind.eq_ignore_ascii_case(b"FETCH") {
            return Err(c.err("a message number out of range"));
        }
        let name = String::from_utf8_lossy(kind).to_ascii_uppercase();
        return Ok(Response::Other(other(&mut c, name, number)));
    }
    let rest_words = &rest[first.len().min(rest.len())..];
    if first.eq_ignore_ascii_case(b"BYE") {
        let t = words(rest_words);
        return Ok(Response::Bye(t));
    }
    let name = String::from_utf8_lossy(first).to_ascii_uppercase();
    if matches!(name.as_str(), "OK" | "NO" | "BAD" | "PREAUTH") {
        let u = Untagged {
            name,
            number: None,
            values: None,
            text: words(rest_words),
        };
        if u.name == "OK" {
            if let Some(("UIDVALIDITY", n)) = u.code().as_ref().map(|(c, a)| (c.as_str(), a)) {
                if let Ok(n) = n.parse() {
                    return Ok(Response::UidValidity(n));
                }
            }
        }
        return Ok(Response::Other(u));
    }
    if name == "VANISHED" {
        let earlier = rest_words
            .trim_ascii_start()
            .get(..9)
            .is_some_and(|w| w.eq_ignore_ascii_case(b"(EARLIER)"));
        return Ok(Response::Vanished { earlier });
    }
    Ok(Response::Other(other(&mut c, name, None)))
}

/// The rest of an untagged response, the cursor after its name, as an [`Untagged`].
fn other(c: &mut Cursor<'_>, name: String, number: Option<u64>) -> Untagged {
    c.what = "response";
    let from = c.i;
    let line = &c.t[from..];
    let line = line.split(|&b| b == b'\n').next().unwrap_or_default();
    let text = String::from_utf8_lossy(line).trim().to_string();
    let values = c.values().ok().filter(|_| c.literals.as_slice().is_empty());
    Untagged {
        name,
        number,
        values,
        text,
    }
}

/// The item list of `* seq FETCH (...)`, the cursor after `FETCH`.
fn parse_fetch(c: &mut Cursor<'_>, seq: u32) -> Result<FetchItems, ParseError> {
    let mut f = FetchItems {
        seq,
        ..FetchItems::default()
    };
    c.skip_spaces();
    if c.peek() != Some(b'(') {
        return Err(c.err("no `(` after FETCH"));
    }
    c.i += 1;
    loop {
        c.skip_spaces();
        match c.peek() {
            Some(b')') => {
                c.i += 1;
                break;
            }
            None | Some(b'\r' | b'\n') => return Err(c.err("the item list is not closed")),
            _ => {}
        }
        let name = c.atom();
        if name.is_empty() {
            return Err(c.err("an item name is missing"));
        }
        let name = name.to_ascii_uppercase();
        c.skip_spaces();
        match name.as_slice() {
            b"UID" => {
                let u = c.number("UID")?;
                c.uid = Some(u);
                f.uid = Some(u);
            }
            b"RFC822.SIZE" => f.size = Some(c.number("RFC822.SIZE")?),
            b"FLAGS" => match c.value(1)? {
                Val::List(items) => {
                    let mut flags = Flags::new();
                    for it in items {
                        match it {
                            Val::Atom(a) => {
                                if let Some(fl) = Flag::from_imap(&String::from_utf8_lossy(a)) {
                                    flags.insert(fl);
                                }
                            }
                            _ => return Err(c.err("FLAGS holds something other than flags")),
                        }
                    }
                    f.flags = Some(flags);
                }
                _ => return Err(c.err("FLAGS is not a list")),
            },
            // A date that cannot be read (NIL, garbage, even an atom) is that message's
            // problem, not the response's: the caller dates it otherwise.
            b"INTERNALDATE" => match c.value(1)? {
                Val::Str(s) => {
                    f.internal_date = parse_internal_date(&s);
                    f.internal_date_sent = Some(shown(&s, true));
                }
                Val::Atom(a) => f.internal_date_sent = Some(shown(a, false)),
                Val::Nil => f.internal_date_sent = Some("NIL".into()),
                _ => return Err(c.err("INTERNALDATE is not a string")),
            },
            b"MODSEQ" => match c.value(1)? {
                Val::List(v) => match v.as_slice() {
                    [Val::Atom(a)] => {
                        f.modseq = std::str::from_utf8(a).ok().and_then(|s| s.parse().ok());
                        if f.modseq.is_none() {
                            return Err(c.err("MODSEQ is not a number"));
                        }
                    }
                    _ => return Err(c.err("MODSEQ is not a one-number list")),
                },
                _ => return Err(c.err("MODSEQ is not a list")),
            },
            b"BODY[]" | b"BODY[]<0>" | b"RFC822" | b"BINARY[]" | b"BINARY[]<0>" => {
                match c.value(1)? {
                    Val::Str(s) => f.body = Some(s),
                    Val::Nil => f.body_nil = true,
                    _ => return Err(c.err("the message body is not a string")),
                }
            }
            b"X-GM-MSGID" => f.gm_msgid = Some(c.number::<u64>("X-GM-MSGID")?),
            b"X-GM-THRID" => f.gm_thrid = Some(c.number::<u64>("X-GM-THRID")?),
            b"X-GM-LABELS" => match c.value(1)? {
                Val::List(items) => {
                    let mut labels = Vec::with_capacity(items.len());
                    for it in items {
                        match it {
                            Val::Atom(a) => labels.push(String::from_utf8_lossy(a).into_owned()),
                            Val::Str(a) => labels.push(String::from_utf8_lossy(&a).into_owned()),
                            _ => return Err(c.err("X-GM-LABELS holds something other than labels")),
                        }
                    }
                    f.gm_labels = Some(labels);
                }
                _ => return Err(c.err("X-GM-LABELS is not a list")),
            },
            _ => {
                // ENVELOPE, BODYSTRUCTURE...: read and dropped.
                c.value(1)?;
            }
        }
    }
    if !c.at_end() {
        return Err(c.err("something follows the item list"));
    }
    if !c.literals.as_slice().is_empty() {
        return Err(c.err("a literal outside the item list"));
    }
    Ok(f)
}

/// A server's value for messages: at most 64 characters, control characters and non-ASCII
/// bytes escaped (`\x07`), in double quotes when it was a string.
fn shown(v: &[u8], quoted: bool) -> String {
    let mut out = String::new();
    for &b in v.iter().take(64) {
        if (0x20..0x7f).contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    if v.len() > 64 {
        out.push_str("...");
    }
    if quoted {
        format!("\"{out}\"")
    } else {
        out
    }
}

/// INTERNALDATE `dd-Mon-yyyy hh:mm:ss +zzzz` (RFC 3501 9, `date-time`; the day may be
/// space-padded) in seconds since the Unix epoch.
pub fn parse_internal_date(s: &[u8]) -> Option<i64> {
    let s = std::str::from_utf8(s).ok()?.trim();
    chrono::DateTime::parse_from_str(s, "%d-%b-%Y %H:%M:%S %z")
        .ok()
        .map(|d| d.timestamp())
}

/// A read buffer over a stream: responses are read from it by [`ReadBuf::next_response`],
/// writes go to [`ReadBuf::get_mut`].
#[derive(Debug)]
pub struct ReadBuf<S> {
    inner: S,
    buf: Box<[u8]>,
    pos: usize,
    end: usize,
}

/// Why [`ReadBuf::next_response`] stopped.
#[derive(Debug)]
pub enum NextError {
    /// The stream failed.
    Io(io::Error),
    /// The stream ended (the server closed the connection).
    Eof,
    /// The response is malformed.
    Parse(ParseError),
}

impl<S> ReadBuf<S> {
    /// A buffer of [`READ_BUF_SIZE`] bytes over `inner`.
    pub fn new(inner: S) -> Self {
        ReadBuf {
            inner,
            buf: vec![0; READ_BUF_SIZE].into_boxed_slice(),
            pos: 0,
            end: 0,
        }
    }

    /// The stream, for writing.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Bytes read from the stream and not consumed yet.
    pub fn buffered(&self) -> usize {
        self.end - self.pos
    }
}

impl<S: Read> ReadBuf<S> {
    /// Refills the buffer when it is empty; `Ok(0)` at the end of the stream.
    fn fill(&mut self) -> io::Result<usize> {
        if self.pos == self.end {
            self.pos = 0;
            self.end = 0;
            loop {
                match self.inner.read(&mut self.buf) {
                    Ok(n) => {
                        self.end = n;
                        break;
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(self.end - self.pos)
    }

    /// Reads the next complete response through `parser`.
    pub fn next_response(&mut self, parser: &mut Parser) -> Result<Response, NextError> {
        loop {
            if self.fill().map_err(NextError::Io)? == 0 {
                return Err(NextError::Eof);
            }
            let (used, r) = parser
                .feed(&self.buf[self.pos..self.end])
                .map_err(NextError::Parse)?;
            self.pos += used;
            if let Some(r) = r {
                return Ok(r);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `input` in pieces of `step` bytes (and everything at once), collecting responses.
    fn run(input: &[u8], step: usize) -> Result<Vec<Response>, ParseError> {
        let mut p = Parser::new();
        let mut out = Vec::new();
        let mut i = 0;
        while i < input.len() {
            let end = (i + step).min(input.len());
            let mut piece = &input[i..end];
            while !piece.is_empty() {
                let (used, r) = p.feed(piece)?;
                piece = &piece[used..];
                out.extend(r);
            }
            i = end;
        }
        Ok(out)
    }

    fn fetch(seq: u32) -> FetchItems {
        FetchItems {
            seq,
            ..FetchItems::default()
        }
    }

    fn flags(list: &[&str]) -> Option<Flags> {
        Some(list.iter().filter_map(|f| Flag::from_imap(f)).collect())
    }

    #[test]
    fn dovecot_response_at_every_split() {
        let body = b"From: a@example.org\r\nSubject: {3}\r\n\r\nbody ) \"x\r\n";
        let mut input = format!(
            "* 1 FETCH (UID 7 FLAGS (\\Seen $Work \\Recent) INTERNALDATE \" 3-Mar-2025 08:00:03 +0100\" RFC822.SIZE {n} BODY[] {{{n}}}\r\n",
            n = body.len()
        )
        .into_bytes();
        input.extend_from_slice(body);
        input.extend_from_slice(
            b")\r\n* 2 EXISTS\r\na3 OK Fetch completed (0.001 + 0.000 secs).\r\n",
        );
        let want = vec![
            Response::Fetch(FetchItems {
                uid: Some(7),
                flags: flags(&["\\Seen", "$Work"]),
                internal_date: Some(1740985203),
                internal_date_sent: Some("\" 3-Mar-2025 08:00:03 +0100\"".into()),
                size: Some(body.len() as u64),
                body: Some(body.to_vec()),
                ..fetch(1)
            }),
            Response::Exists(2),
            Response::Tagged {
                tag: "a3".into(),
                status: "OK".into(),
                text: "Fetch completed (0.001 + 0.000 secs).".into(),
            },
        ];
        for step in 1..=input.len() {
            assert_eq!(run(&input, step).unwrap(), want, "pieces of {step} bytes");
        }
        // Split at every single position into two pieces.
        for k in 0..input.len() {
            let mut p = Parser::new();
            let mut out = Vec::new();
            for part in [&input[..k], &input[k..]] {
                let mut piece = part;
                while !piece.is_empty() {
                    let (used, r) = p.feed(piece).unwrap();
                    piece = &piece[used..];
                    out.extend(r);
                }
            }
            assert_eq!(out, want, "split at {k}");
        }
    }

    #[test]
    fn table() {
        let ok = |input: &str| run(input.as_bytes(), 7).unwrap();
        let one = |input: &str| {
            let r = ok(input);
            assert_eq!(r.len(), 1, "{input}");
            r.into_iter().next().unwrap()
        };
        let err = |input: &[u8]| run(input, 5).unwrap_err().0;

        // Items in any order; body before flags (case 17 a); NIL; empty flags.
        assert_eq!(
            one("* 4 FETCH (BODY[] {2}\r\nhi FLAGS () UID 9 RFC822.SIZE 2)\r\n"),
            Response::Fetch(FetchItems {
                uid: Some(9),
                flags: flags(&[]),
                size: Some(2),
                body: Some(b"hi".to_vec()),
                ..fetch(4)
            })
        );
        assert_eq!(
            one("* 4 FETCH (UID 9 BODY[] NIL)\r\n"),
            Response::Fetch(FetchItems {
                uid: Some(9),
                body_nil: true,
                ..fetch(4)
            })
        );
        // An INTERNALDATE that cannot be read is the message's problem, not the response's:
        // what was sent is kept for the messages (issue 15).
        let date = |item: &str| match one(&format!("* 4 FETCH (UID 9 INTERNALDATE {item})\r\n")) {
            Response::Fetch(f) => (f.internal_date, f.internal_date_sent),
            r => panic!("{r:?}"),
        };
        let cases: &[(&str, Option<i64>, &str)] = &[
            ("NIL", None, "NIL"),
            ("\"garbage\"", None, "\"garbage\""),
            ("garbage", None, "garbage"),
            ("\"\"", None, "\"\""),
            (
                "\"31-Foo-2014 10:00:00 +0000\"",
                None,
                "\"31-Foo-2014 10:00:00 +0000\"",
            ),
            (
                "\"04-Mar-2014 10:00:00 +9999\"",
                None,
                "\"04-Mar-2014 10:00:00 +9999\"",
            ),
            (
                "\"04-00-2014 10:00:00 +0000\"",
                None,
                "\"04-00-2014 10:00:00 +0000\"",
            ),
            (
                "\"04-Mar-2014 25:00:00 +0000\"",
                None,
                "\"04-Mar-2014 25:00:00 +0000\"",
            ),
            // Readable; whether it is believable is the caller's question (crate::core::date).
            (
                "\"01-Jan-1900 00:00:00 +0000\"",
                Some(-2_208_988_800),
                "\"01-Jan-1900 00:00:00 +0000\"",
            ),
            (
                "\"04-Mar-2014 10:00:00 +0100\"",
                Some(1_393_923_600),
                "\"04-Mar-2014 10:00:00 +0100\"",
            ),
            (
                "{26}\r\n04-Mar-2014 10:00:00 +0100",
                Some(1_393_923_600),
                "\"04-Mar-2014 10:00:00 +0100\"",
            ),
        ];
        for (item, secs, sent) in cases {
            assert_eq!(date(item), (*secs, Some(sent.to_string())), "{item}");
        }
        let long = format!("\"{}\"", "x".repeat(100));
        assert_eq!(date(&long).1.unwrap(), format!("\"{}...\"", "x".repeat(64)));
        assert_eq!(date("\"\x07\"").1.unwrap(), "\"\\x07\"");
        // Quoted strings with escapes, nested lists and a literal inside ENVELOPE (case 17 b).
        assert_eq!(
            one("* 2 FETCH (ENVELOPE (\"d\" {5}\r\na\"b)c ((\"Q \\\"x\\\\\" NIL \"y\" \"z\")) NIL) UID 3 BODY[]<0> \"q\\\"\")\r\n"),
            Response::Fetch(FetchItems {
                uid: Some(3),
                body: Some(b"q\"".to_vec()),
                ..fetch(2)
            })
        );
        // Flags-only (unsolicited) FETCH; MODSEQ; lower case; literal8 and LITERAL+ forms.
        assert_eq!(
            one("* 3 fetch (flags (\\Seen \\Flagged) modseq (12345678901))\r\n"),
            Response::Fetch(FetchItems {
                flags: flags(&["\\Seen", "\\Flagged"]),
                modseq: Some(12345678901),
                ..fetch(3)
            })
        );
        assert_eq!(
            one("* 3 FETCH (UID 1 BINARY[] ~{3}\r\n\0\r\n)\r\n"),
            Response::Fetch(FetchItems {
                uid: Some(1),
                body: Some(b"\0\r\n".to_vec()),
                ..fetch(3)
            })
        );
        assert_eq!(
            one("* 3 FETCH (UID 1 BODY[] {0+}\r\n)\r\n"),
            Response::Fetch(FetchItems {
                uid: Some(1),
                body: Some(Vec::new()),
                ..fetch(3)
            })
        );
        // A section with spaces and parentheses is one item name.
        assert_eq!(
            one("* 3 FETCH (BODY[HEADER.FIELDS (SUBJECT FROM)] {4}\r\nab\r\n UID 5)\r\n"),
            Response::Fetch(FetchItems {
                uid: Some(5),
                ..fetch(3)
            })
        );
        // Other responses.
        assert_eq!(one("* 3 EXPUNGE\r\n"), Response::Expunge(3));
        assert_eq!(
            one("* VANISHED (EARLIER) 1:3\r\n"),
            Response::Vanished { earlier: true }
        );
        assert_eq!(
            one("* VANISHED 4\r\n"),
            Response::Vanished { earlier: false }
        );
        let o = |name: &str, number: Option<u64>, values: Option<Vec<Value>>, text: &str| {
            Response::Other(Untagged {
                name: name.into(),
                number,
                values,
                text: text.into(),
            })
        };
        assert_eq!(
            one("* OK [ALERT] hello\r\n"),
            o("OK", None, None, "[ALERT] hello")
        );
        assert_eq!(
            one("* OK [UIDVALIDITY 8] recreated\r\n"),
            Response::UidValidity(8)
        );
        assert_eq!(
            one("* 5 RECENT\r\n"),
            o("RECENT", Some(5), Some(vec![]), "")
        );
        assert_eq!(
            one("* FLAGS (\\Seen)\r\n"),
            o(
                "FLAGS",
                None,
                Some(vec![Value::List(vec![Value::Atom("\\Seen".into())])]),
                "(\\Seen)"
            )
        );
        assert_eq!(
            one("* BYE shutting down\r\n"),
            Response::Bye("shutting down".into())
        );
        assert_eq!(one("+ go ahead\r\n"), Response::Continuation);
        assert_eq!(
            one("a1 no [UNAVAILABLE] later\r\n"),
            Response::Tagged {
                tag: "a1".into(),
                status: "NO".into(),
                text: "[UNAVAILABLE] later".into()
            }
        );

        // Malformed: each a one-line error, naming the UID when it is known.
        assert_eq!(
            err(b"* 1 FETCH (UID 12 RFC822.SIZE 12a BODY[] {1}\r\nx)\r\n"),
            "malformed FETCH response for UID 12: RFC822.SIZE is not a number: `12a` (`* 1 FETCH (UID 12 RFC822.SIZE 12a BODY[] {1}`)"
        );
        assert_eq!(
            err(b"* 1 FETCH (UID x1 FLAGS ())\r\n"),
            "malformed FETCH response: UID is not a number: `x1` (`* 1 FETCH (UID x1 FLAGS ())`)"
        );
        assert!(err(b"* 1 FETCH (UID 4 FLAGS (\\Seen)\r\n")
            .starts_with("malformed FETCH response for UID 4: the item list is not closed"));
        assert!(err(b"* 1 FETCH (UID 4 FLAGS (\\Seen)))\r\n")
            .starts_with("malformed FETCH response for UID 4: something follows the item list"));
        assert!(err(b"* 1 FETCH (UID 4 X \"abc)\r\n")
            .starts_with("malformed FETCH response for UID 4: a quoted string is not closed"));
        // A backslash that escapes nothing (a server that does not escape it) is itself.
        assert_eq!(
            tokenize(b"X \"a\\bc\""),
            Some(vec![Value::Atom("X".into()), Value::Str(b"a\\bc".to_vec())])
        );
        assert!(err(b"* 1 FETCH UID 4\r\n").contains("no `(` after FETCH"));
        assert!(err(b"* 1 FETCH (UID 4 BODY[] {1x}\r\nabc)\r\n")
            .starts_with("a literal size for UID 4 is not a number: `1x`"));
        assert!(err(b"* 1 FETCH (UID 4 FLAGS \\Seen)\r\n").contains("FLAGS is not a list"));
        assert!(err(b"garbage\r\n").starts_with("not an IMAP response"));
        // A lying literal size (shorter than announced): what follows is read as the literal,
        // and the rest does not parse.
        assert!(err(b"* 1 FETCH (UID 8 BODY[] {3}\r\nhello)\r\n")
            .starts_with("malformed FETCH response for UID 8: "));
        // Deeply nested lists are refused, not a stack overflow.
        let deep = format!("* 1 FETCH (X {}{})\r\n", "(".repeat(100), ")".repeat(100));
        assert!(err(deep.as_bytes()).contains("nested too deep"));
    }

    #[test]
    fn a_line_without_end_is_bounded() {
        let mut p = Parser::with_max_text(1000);
        let mut input = b"* 1 FETCH (UID 77 X \"".to_vec();
        input.extend(std::iter::repeat_n(b'a', 5000));
        let mut used_total = 0;
        let e = loop {
            match p.feed(&input[used_total..(used_total + 100).min(input.len())]) {
                Ok((used, None)) => used_total += used,
                Ok((_, Some(r))) => panic!("{r:?}"),
                Err(e) => break e,
            }
        };
        assert_eq!(
            e.0,
            "a response for UID 77 is longer than 1000 bytes without a line end"
        );
        assert!(used_total <= 1000);
        // Literals do not count against the limit.
        let mut p = Parser::with_max_text(100);
        let mut input = b"* 1 FETCH (UID 1 BODY[] {5000}\r\n".to_vec();
        input.extend(std::iter::repeat_n(b'b', 5000));
        input.extend_from_slice(b")\r\n");
        let (used, r) = p.feed(&input).unwrap();
        assert_eq!(used, input.len());
        let Some(Response::Fetch(f)) = r else {
            panic!()
        };
        assert_eq!(f.body.unwrap().len(), 5000);
    }

    #[test]
    fn a_literal_over_the_limit_is_refused_before_it_is_read() {
        for announced in [101u64, 999_999_999_999] {
            let mut p = Parser::new().with_max_literal(100);
            let line = format!("* 1 FETCH (UID 4 RFC822.SIZE 90 BODY[] {{{announced}}}\r\n");
            let e = p.feed(line.as_bytes()).unwrap_err();
            assert_eq!(
                e.to_string(),
                format!("a literal for UID 4 of {announced} octets: the message is {announced} bytes, over the maximum message size of 100 bytes (--max-message-size); not stored")
            );
            assert_eq!(p.refused_literal(), Some((announced, 100)));
            assert_eq!(p.literal_progress(), None, "nothing reserved");
        }
        // At the limit: read.
        let mut p = Parser::new().with_max_literal(3);
        let (_, r) = p.feed(b"* 1 FETCH (UID 4 BODY[] {3}\r\nabc)\r\n").unwrap();
        assert!(matches!(r, Some(Response::Fetch(f)) if f.body.as_deref() == Some(&b"abc"[..])));
        assert_eq!(p.refused_literal(), None);
    }

    #[test]
    fn progress_while_a_literal_arrives() {
        let mut p = Parser::new();
        let (used, r) = p.feed(b"* 1 FETCH (UID 31 BODY[] {10}\r\n0123").unwrap();
        assert_eq!((used, r), (35, None));
        assert!(p.in_progress());
        assert_eq!(p.uid_hint(), Some(31));
        assert_eq!(p.literal_progress(), Some((4, 10)));
        p.reset();
        assert!(!p.in_progress());
    }

    #[test]
    fn read_buf_reads_one_response_at_a_time() {
        let data = b"* 1 EXISTS\r\na1 OK done\r\n* 2 FETCH (UID 4 FLAGS ())\r\n".to_vec();
        let mut rb = ReadBuf::new(&data[..]);
        let mut p = Parser::new();
        assert_eq!(rb.next_response(&mut p).unwrap(), Response::Exists(1));
        assert!(matches!(
            rb.next_response(&mut p).unwrap(),
            Response::Tagged { status, .. } if status == "OK"
        ));
        let mut p = Parser::new();
        let r = rb.next_response(&mut p).unwrap();
        assert_eq!(
            r,
            Response::Fetch(FetchItems {
                uid: Some(4),
                flags: flags(&[]),
                ..fetch(2)
            })
        );
        assert_eq!(rb.buffered(), 0);
        assert!(matches!(rb.next_response(&mut p), Err(NextError::Eof)));
    }
}
