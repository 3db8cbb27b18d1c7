//! IMAP client session (RFC 3501, RFC 9051 where they agree), over our own TCP and TLS
//! ([`crate::protocol::net`]), every answer read by one response reader ([`crate::protocol::imap::reader`]).
//!
//! What it does: connect (`imaps://` implicit TLS; `imap://` with STARTTLS, RFC 3501 6.2.1,
//! refused without it unless plain text is allowed), log in (LOGIN with quoted strings or
//! literals, AUTHENTICATE PLAIN, XOAUTH2, OAUTHBEARER, with SASL-IR when offered), list
//! mailboxes (names read exactly, decoded from modified UTF-7, [`crate::core::mutf7`]), open one
//! read-only (EXAMINE, so nothing on the server changes, `\Seen` included), list its messages
//! (UID, FLAGS, RFC822.SIZE, INTERNALDATE, MODSEQ with CONDSTORE, RFC 7162), fetch bodies with
//! `BODY.PEEK[]`, STATUS, GETQUOTAROOT (RFC 9208 / 2087), and for restore and prune CREATE,
//! APPEND (pipelined, MULTIAPPEND, LITERAL+), SEARCH, STORE and EXPUNGE.
//!
//! The STARTTLS exchange (greeting, CAPABILITY, STARTTLS) is done on the raw socket, one byte
//! at a time, so nothing sent before the TLS handshake can be buffered and mistaken for
//! protected data.
//!
//! Answers are read as a stream, one response at a time: FETCH bodies are handed over as soon
//! as each is complete (memory: one message, not the batch; responses for one message merged
//! by sequence number, the last non-empty FLAGS winning, case 17); other answers are held
//! whole up to [`MAX_ANSWER`] bytes. Mailbox names and other strings go to the server as
//! quoted strings when they are printable ASCII, else as literals (RFC 3501 4.3, 9
//! `astring`), so any name the server listed can be sent back. Answers that cannot tell what
//! a caller needs (a STATUS without UIDVALIDITY, numbers beyond 32 bits, an EXAMINE without
//! UIDVALIDITY) are reported as such ([`ImapClient::status`] gives `None`,
//! [`ImapError::Unusable`]), not as a broken session.
//!
//! After an I/O error (timeout, closed connection) or a response that cannot be read, the
//! session is out of step with the server; every later call returns an error. Connect again.

mod append;
mod command;
mod fetch;
mod mailboxes;
mod quota;
pub mod reader;
mod search;
mod session;

pub use crate::core::date::imap_date_time;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::io::{self, Read, Write};
use std::time::Duration;

use crate::core::endpoint::{ServerSpec, TlsMode};
use crate::core::message::{Flag, Flags, MailboxName};
use crate::core::mutf7;
use crate::protocol::imap::reader::{
    tokenize, FetchItems, NextError, Parser, ReadBuf, Response, Untagged, Value, MAX_RESPONSE_TEXT,
};
use crate::protocol::net::{self, NetError, Stream, Timeouts, TlsOptions};

/// The longest line accepted before TLS (greeting, CAPABILITY), in bytes.
const MAX_PRE_TLS_LINE: usize = 64 * 1024;

/// Server text in an error message, with control characters escaped (`\r`, `\u{1b}`): an
/// error stays one line and a hostile server cannot send terminal escapes to the user.
fn esc(text: &str) -> String {
    crate::core::endpoint::escape_controls(text)
}

/// Everything that can go wrong in an IMAP session. Display is one lower-case line; no variant
/// ever carries the password or token.
#[derive(Debug, thiserror::Error)]
pub enum ImapError {
    /// Connecting or the TLS handshake failed.
    #[error(transparent)]
    Net(#[from] NetError),

    /// Reading or writing failed after connecting. The kind tells what happened:
    /// `UnexpectedEof` ("connection closed by server"), `TimedOut` ("timed out after N s
    /// waiting for the server"), `ConnectionReset`, or `Other` for a session unusable after an
    /// earlier error.
    #[error("{0}")]
    Io(#[from] io::Error),

    /// The server refused the credentials: its text to LOGIN or AUTHENTICATE (response code
    /// included, e.g. `[AUTHENTICATIONFAILED] Authentication failed.`), or no usable
    /// mechanism (LOGINDISABLED without AUTH=PLAIN).
    #[error("login refused: {}", esc(.0))]
    Auth(String),

    /// An `imap://` server does not offer STARTTLS (or refused it) and plain text was not
    /// allowed.
    #[error("refusing to log in without TLS: {}", esc(.0))]
    NoTls(String),

    /// The server answered `NO` to `command` (e.g. `EXAMINE "Sent"`); `text` is the rest of the
    /// line, response code included.
    #[error("the server answered NO to `{}`: {}", esc(.command), esc(.text))]
    No { command: String, text: String },

    /// The server answered `BAD` to `command`.
    #[error("the server answered BAD to `{}`: {}", esc(.command), esc(.text))]
    Bad { command: String, text: String },

    /// The server ended the session (`BYE`, in the greeting or to a command).
    #[error("the server closed the session: {}", esc(.0))]
    Bye(String),

    /// The server broke the protocol: a response that cannot be read, or an answer out of
    /// step. The session is unusable afterwards.
    #[error("protocol error: {}", esc(.0))]
    Protocol(String),

    /// The answer to `command` was read but cannot be used (an EXAMINE without UIDVALIDITY,
    /// a number beyond 32 bits): a fault of that mailbox; the session is fine.
    #[error("the server's answer to `{}` cannot be used: {}", esc(.command), esc(.text))]
    Unusable { command: String, text: String },

    /// A message literal (UID `uid` when known) was announced as `size` octets, over the
    /// largest message accepted (`limit`, [`crate::core::limits::max_message_size`]). It was refused
    /// before anything was reserved for it; the session is unusable (the literal is still on
    /// its way).
    #[error("{}{}", .uid.map(|u| format!("UID {u}: ")).unwrap_or_default(), crate::core::limits::too_large(Some(*.size), *.limit))]
    TooLarge {
        uid: Option<u32>,
        size: u64,
        limit: u64,
    },
}

/// How to log in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ImapAuth {
    /// AUTHENTICATE PLAIN when the server lists `AUTH=PLAIN`, else LOGIN; refused (as
    /// [`ImapError::Auth`]) when the server says LOGINDISABLED and offers no PLAIN.
    #[default]
    Auto,
    /// LOGIN (RFC 3501 6.2.3).
    Login,
    /// AUTHENTICATE PLAIN (RFC 4616).
    Plain,
    /// AUTHENTICATE XOAUTH2 (Google, Microsoft) with an OAuth2 access token as the secret.
    XOAuth2,
    /// AUTHENTICATE OAUTHBEARER (RFC 7628) with an OAuth2 access token as the secret.
    OAuthBearer,
}

/// Connection settings.
#[derive(Debug, Clone, Default)]
pub struct ImapOptions {
    /// Log in over an unencrypted `imap://` connection when the server has no STARTTLS.
    pub allow_plaintext: bool,
    pub auth: ImapAuth,
    pub tls: TlsOptions,
    pub timeouts: Timeouts,
}

/// The server's CAPABILITY list (RFC 3501 7.2.1), upper-cased.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Capabilities(BTreeSet<String>);

impl Capabilities {
    /// Builds the set from capability tokens (any case).
    pub fn from_tokens<I: IntoIterator<Item = S>, S: AsRef<str>>(tokens: I) -> Self {
        Capabilities(
            tokens
                .into_iter()
                .map(|t| t.as_ref().to_ascii_uppercase())
                .filter(|t| !t.is_empty())
                .collect(),
        )
    }

    /// True when the server announced `cap` (case-insensitive), e.g. `CONDSTORE`, `UIDPLUS`,
    /// `QUOTA`, `SPECIAL-USE`, `LITERAL+`, `MOVE`, `AUTH=PLAIN`.
    pub fn has(&self, cap: &str) -> bool {
        self.0.contains(&cap.to_ascii_uppercase())
    }

    /// The SASL mechanisms (`AUTH=` entries), upper-cased.
    pub fn auth_mechanisms(&self) -> impl Iterator<Item = &str> {
        self.0.iter().filter_map(|c| c.strip_prefix("AUTH="))
    }

    /// All capabilities, upper-cased, sorted.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }
}

/// A special-use attribute of a mailbox (RFC 6154 section 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum SpecialUse {
    All,
    Archive,
    Drafts,
    Flagged,
    Junk,
    Sent,
    Trash,
}

impl SpecialUse {
    /// The attribute for a LIST attribute (`\Sent`, any case), if it is a special use.
    pub fn from_attribute(attr: &str) -> Option<SpecialUse> {
        match attr.to_ascii_lowercase().as_str() {
            "\\all" => Some(SpecialUse::All),
            "\\archive" => Some(SpecialUse::Archive),
            "\\drafts" => Some(SpecialUse::Drafts),
            "\\flagged" => Some(SpecialUse::Flagged),
            "\\junk" => Some(SpecialUse::Junk),
            "\\sent" => Some(SpecialUse::Sent),
            "\\trash" => Some(SpecialUse::Trash),
            _ => None,
        }
    }
}

/// One mailbox from LIST (RFC 3501 7.2.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailboxInfo {
    /// The decoded name, levels joined with `/` whatever the server's delimiter. A level that
    /// is not valid modified UTF-7 is kept as the server sent it. With a `.` delimiter a level
    /// may itself contain `/`: it is written `%2F` (see [`MailboxName`]), so distinct wire
    /// names give distinct names.
    pub name: MailboxName,
    /// The name exactly as LIST gave it (modified UTF-7, server delimiter), for EXAMINE,
    /// STATUS and GETQUOTAROOT. INBOX is always spelled `INBOX`.
    pub wire: String,
    /// The hierarchy delimiter, `None` for a flat namespace (`NIL`).
    pub delimiter: Option<char>,
    /// The LIST attributes as sent (`\HasNoChildren`, `\Sent`, ...).
    pub attributes: Vec<String>,
    /// False for `\Noselect` and `\NonExistent` (RFC 5258): such a name holds no messages.
    pub selectable: bool,
    /// The RFC 6154 special use, if the server tells.
    pub special_use: Option<SpecialUse>,
}

impl MailboxInfo {
    /// Builds the info from LIST's parts, decoding the name (see [`decode_mailbox_name`]).
    pub fn from_list(wire: &str, delimiter: Option<char>, attributes: Vec<String>) -> Self {
        let selectable = !attributes.iter().any(|a| {
            a.eq_ignore_ascii_case("\\Noselect") || a.eq_ignore_ascii_case("\\NonExistent")
        });
        let special_use = attributes
            .iter()
            .find_map(|a| SpecialUse::from_attribute(a));
        MailboxInfo {
            name: decode_mailbox_name(wire, delimiter),
            wire: wire.to_string(),
            delimiter,
            attributes,
            selectable,
            special_use,
        }
    }
}

/// Decodes a wire mailbox name: each level (split at `delimiter`) from modified UTF-7, a level
/// that does not decode kept as it is (never a panic, never a lost name); levels joined with
/// `/`, a `/` inside a level escaped (see [`MailboxName::from_levels`]); INBOX
/// case-insensitive.
pub fn decode_mailbox_name(wire: &str, delimiter: Option<char>) -> MailboxName {
    let levels: Vec<String> = match delimiter {
        Some(d) => wire
            .split(d)
            .map(|l| mutf7::decode(l).unwrap_or_else(|_| l.to_string()))
            .collect(),
        None => vec![mutf7::decode(wire).unwrap_or_else(|_| wire.to_string())],
    };
    MailboxName::from_levels(&levels)
}

/// The state of a mailbox opened with EXAMINE (RFC 3501 6.3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Selected {
    /// UIDVALIDITY: when it changes, earlier UIDs mean nothing (RFC 3501 2.3.1.1).
    pub uidvalidity: u32,
    /// The UID the next message will get, when the server says (it should).
    pub uidnext: Option<u32>,
    /// Number of messages.
    pub exists: u32,
    /// HIGHESTMODSEQ (RFC 7162 3.1.2.1), with CONDSTORE enabled; `None` for a server or
    /// mailbox without mod-sequences (`NOMODSEQ`).
    pub highestmodseq: Option<u64>,
}

/// STATUS of a mailbox (RFC 3501 6.3.10).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Status {
    pub messages: u32,
    pub uidnext: Option<u32>,
    pub uidvalidity: u32,
    /// Asked for only when the server has CONDSTORE.
    pub highestmodseq: Option<u64>,
}

/// One message in a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub uid: u32,
    /// System flags and keywords; `\Recent` dropped.
    pub flags: Flags,
    /// RFC822.SIZE: octets of the message as the server sends it (CRLF line ends).
    pub size: u64,
    /// INTERNALDATE, seconds since the Unix epoch (UTC), exact; `None` when the server sent
    /// none, or one that cannot be read or believed ([`crate::core::date::plausible`]: before 1971,
    /// more than a day in the future, e.g. `NIL`, `"garbage"`, year 1900 or 2999, month 00,
    /// zone `+9999`). The message is still listed: its date is the caller's to choose.
    pub internal_date: Option<i64>,
    /// When `internal_date` is `None`: what the server sent (`NIL`, `"garbage"`, quoted as
    /// sent), or `nothing` when it sent no INTERNALDATE.
    pub bad_internal_date: Option<String>,
    /// MODSEQ (RFC 7162), when CONDSTORE is enabled.
    pub modseq: Option<u64>,
}

/// One fetched message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched<'a> {
    pub uid: u32,
    /// System flags and keywords; `\Recent` dropped.
    pub flags: Flags,
    /// INTERNALDATE, seconds since the Unix epoch (UTC); `None` when missing, unreadable or
    /// absurd, as for [`Listed::internal_date`].
    pub internal_date: Option<i64>,
    /// When `internal_date` is `None`: what the server sent, as [`Listed::bad_internal_date`].
    pub bad_internal_date: Option<String>,
    /// `Some(what the server sent)` when it sent no message for this UID: `BODY[] NIL`, or a
    /// `BODY[]` of 0 octets (`""`, `{0}`); `body` is then empty. Never a message to store (RFC
    /// 5322 3.5: a message has at least a header block): a failure of this UID.
    pub no_body: Option<String>,
    /// RFC822.SIZE in octets (should equal `body.len()`).
    pub size: u64,
    /// `BODY[]` exactly as sent (CRLF line ends; Dovecot sends NUL as 0x80), borrowed from
    /// the literal the reader filled (no copy: a 40 MB message is held once).
    pub body: &'a [u8],
}

/// One quota root (RFC 9208 section 4.2 / RFC 2087).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct QuotaRoot {
    pub name: String,
    /// Empty when the server named the root but sent no QUOTA for it.
    pub resources: Vec<QuotaResource>,
}

/// One resource of a quota root.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct QuotaResource {
    /// `STORAGE` (units of 1024 octets), `MESSAGE` (count), or another name as sent.
    pub name: String,
    pub usage: u64,
    pub limit: u64,
}

enum State {
    NotAuthenticated,
    Authenticated,
    /// After an I/O error, a broken protocol or a refused literal: out of step with the server.
    Broken(String),
}

/// An IMAP session. Not `Clone`; one per connection.
pub struct ImapClient {
    state: State,
    caps: Capabilities,
    host: String,
    tls: bool,
    allow_plaintext: bool,
    auth: ImapAuth,
    io_timeout: Option<Duration>,
    /// CONDSTORE in use: STATUS asks for HIGHESTMODSEQ and the listing for MODSEQ. Turned off
    /// for the session when the server refuses them (a server that announces CONDSTORE but
    /// answers `BAD`/`NO` to MODSEQ).
    condstore: bool,
    /// The examined mailbox has no mod-sequences (`* OK [NOMODSEQ]`, RFC 7162 3.1.2.2):
    /// its listing does not ask for MODSEQ.
    nomodseq: bool,
    /// The server refused MODSEQ or HIGHESTMODSEQ once: not asked for again in this session.
    modseq_refused: bool,
    selected: Option<Selected>,
    /// The connection: one read buffer every answer is read through ([`crate::protocol::imap::reader`]).
    stream: ReadBuf<Stream>,
    /// The number of the last tag sent (`m1`, `m2`, ...).
    tag: u32,
    /// The wire name of the examined mailbox, while nothing was appended to it since.
    examined_wire: Option<String>,
    /// The server answered the last EXAMINE with `[READ-WRITE]` (see [`Self::note_append`]).
    examined_read_write: bool,
    /// Cached answers of [`ImapClient::personal_namespace`] and [`ImapClient::delimiter`].
    namespace: Option<Namespace>,
    delimiter: Option<Option<char>>,
    /// LIST lines that could not be read, as sent (escaped): see
    /// [`ImapClient::take_unreadable_lines`].
    unreadable: Vec<String>,
}

impl fmt::Debug for ImapClient {
    /// Names the server and the state only: never the stream's buffers (a LOGIN command with
    /// the password may still be in them).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.state {
            State::NotAuthenticated => "not authenticated",
            State::Authenticated => "authenticated",
            State::Broken(_) => "broken",
        };
        f.debug_struct("ImapClient")
            .field("host", &self.host)
            .field("tls", &self.tls)
            .field("state", &state)
            .field("selected", &self.selected)
            .finish_non_exhaustive()
    }
}

fn missing(item: &str, uid: u32) -> ImapError {
    ImapError::Protocol(format!("the server sent no valid {item} for UID {uid}"))
}

/// What several FETCH responses told about one message (sequence number).
#[derive(Debug, Default)]
struct Merged {
    uid: Option<u32>,
    /// `None` until a FLAGS item came.
    flags: Option<Flags>,
    size: Option<u64>,
    internal_date: Option<i64>,
    /// What the server sent as INTERNALDATE (`None` until the item came, readable or not).
    internal_date_sent: Option<String>,
    modseq: Option<u64>,
    body: Option<Vec<u8>>,
    /// The body came as `NIL`.
    body_nil: bool,
}

impl Merged {
    /// The body item came (a message, or `NIL`).
    fn has_body(&self) -> bool {
        self.body.is_some() || self.body_nil
    }

    /// The INTERNALDATE when readable and believable at `now` (seconds since the epoch), else
    /// `Err(what the server sent)` (`nothing` when the item never came).
    fn date(&self, now: i64) -> Result<i64, String> {
        match self.internal_date {
            Some(t) if crate::core::date::plausible(t, now) => Ok(t),
            _ => Err(self
                .internal_date_sent
                .clone()
                .unwrap_or_else(|| "nothing".into())),
        }
    }
}

/// Merges FETCH responses by sequence number (RFC 3501 7.4.2: a server may split a message's
/// items over several responses and send unsolicited FLAGS updates, case 17). The last
/// non-empty FLAGS wins. Once messages were expunged during the command, responses without a
/// UID are ignored, and each response with one stands alone, as sequence numbers may have
/// moved.
#[derive(Debug, Default)]
struct Merger {
    by_key: BTreeMap<u64, Merged>,
    /// Keys for responses after an expunge, above every sequence number.
    extra_key: u64,
}

impl Merger {
    /// Adds one response; returns the key it was merged under (`None`: ignored).
    fn add(&mut self, fe: FetchItems, expunged: bool) -> Option<u64> {
        if expunged && fe.uid.is_none() {
            return None;
        }
        // A response naming another UID than an earlier one of its sequence number (no
        // EXPUNGE between: the server contradicts itself) stands alone too: merged, one UID's
        // body would be stored as the other's, and recorded as archived.
        let conflict = !expunged
            && fe.uid.is_some()
            && self
                .by_key
                .get(&u64::from(fe.seq))
                .is_some_and(|m| m.uid.is_some() && m.uid != fe.uid);
        let key = if expunged || conflict {
            self.extra_key += 1;
            u64::from(u32::MAX) + self.extra_key
        } else {
            u64::from(fe.seq)
        };
        let m = self.by_key.entry(key).or_default();
        if fe.uid.is_some() {
            m.uid = fe.uid;
        }
        if let Some(flags) = fe.flags {
            if !flags.is_empty() || m.flags.as_ref().is_none_or(Flags::is_empty) {
                m.flags = Some(flags);
            }
        }
        if fe.size.is_some() {
            m.size = fe.size;
        }
        // A readable INTERNALDATE is not undone by an unreadable one in a later response.
        if fe.internal_date_sent.is_some()
            && (fe.internal_date.is_some() || m.internal_date.is_none())
        {
            m.internal_date = fe.internal_date;
            m.internal_date_sent = fe.internal_date_sent;
        }
        if fe.modseq.is_some() {
            m.modseq = fe.modseq;
        }
        if fe.body.is_some() {
            m.body = fe.body;
        }
        m.body_nil |= fe.body_nil;
        Some(key)
    }
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

/// A mailbox name as a quoted string, the way the crate sends it (for error messages).
fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// RFC 5801 `saslname` escaping for the authorization identity: `,` and `=`.
fn gs2_escape(s: &str) -> String {
    s.replace('=', "=3D").replace(',', "=2C")
}

/// The text of a BYE for an error: the server's, or a word that there was none.
fn bye_text(text: String) -> String {
    if text.is_empty() {
        "(no reason given)".into()
    } else {
        text
    }
}

/// Login errors: a NO is [`ImapError::Auth`] unless [`crate::core::fault::classify`] says the
/// credentials may be fine (a response code of RFC 5530 or a provider's text).
fn login_error(e: ImapError) -> ImapError {
    match e {
        ImapError::No { command, text } => {
            // `[UNAVAILABLE]`, `[SERVERBUG]`, `[INUSE]`, `[LIMIT]`, "too many simultaneous
            // connections", a used-up bandwidth allowance: the credentials may be fine.
            use crate::core::fault::{classify, Command, Status};
            if classify(Status::No, Command::Login, &text)
                .class
                .temporary()
            {
                ImapError::No { command, text }
            } else {
                ImapError::Auth(text)
            }
        }
        other => other,
    }
}

/// The capabilities in a response code `[CAPABILITY ...]` at the start of `text` (RFC 3501
/// 7.1), as a server may send them in its tagged OK to LOGIN.
fn capability_code(text: &str) -> Option<Capabilities> {
    let inner = text.trim_start().strip_prefix('[')?;
    let inner = &inner[..inner.find(']')?];
    let mut words = inner.split_ascii_whitespace();
    if !words.next()?.eq_ignore_ascii_case("CAPABILITY") {
        return None;
    }
    Some(Capabilities::from_tokens(words))
}

/// One LIST (or LSUB) response's data, tokenised: `(attributes) delimiter name` (RFC 3501
/// 7.2.2) as (attributes as sent, delimiter, name). The name is unescaped (quoted) or as
/// sent (literal, atom); 8-bit octets are kept when they are UTF-8. `None` when malformed.
pub fn list_entry(values: &[Value]) -> Option<(Vec<String>, Option<char>, String)> {
    let [Value::List(attrs), delim, name, ..] = values else {
        return None;
    };
    let attrs = attrs.iter().map(Value::text).collect::<Option<Vec<_>>>()?;
    let delimiter = match delim {
        Value::Nil => None,
        d => d.text()?.chars().next(),
    };
    let name = match name {
        Value::Nil => return None,
        n => String::from_utf8_lossy(n.octets()?).into_owned(),
    };
    Some((attrs, delimiter, name))
}

/// One STATUS response's data (RFC 3501 7.2.4): the mailbox name's octets and, when the
/// answer has what a no-change decision needs (MESSAGES and UIDVALIDITY, every number within
/// 32 bits but HIGHESTMODSEQ's 63), the [`Status`]. `None` when malformed.
fn status_entry(values: &[Value]) -> Option<(Vec<u8>, Option<Status>)> {
    let [name, rest @ ..] = values else {
        return None;
    };
    let name = name.octets()?.to_vec();
    // The item list; Exchange has been seen to send nothing or a space instead of `()`.
    let items: &[Value] = match rest.first() {
        Some(Value::List(items)) => items,
        None => &[],
        Some(_) => return Some((name, None)),
    };
    let (mut messages, mut uidnext, mut uidvalidity, mut highestmodseq) = (None, None, None, None);
    let mut usable = true;
    for pair in items.chunks(2) {
        let [key, value] = pair else {
            usable = false;
            break;
        };
        let (Some(key), Some(n)) = (key.text(), value.number()) else {
            usable = false;
            continue;
        };
        let small = u32::try_from(n).ok();
        match key.to_ascii_uppercase().as_str() {
            "MESSAGES" => messages = Some(small),
            "UIDNEXT" => uidnext = Some(small),
            "UIDVALIDITY" => uidvalidity = Some(small),
            "HIGHESTMODSEQ" => highestmodseq = Some(n),
            _ => {}
        }
    }
    let status = match (usable, messages, uidvalidity, uidnext) {
        (true, Some(Some(messages)), Some(Some(uidvalidity)), uidnext)
            if uidnext.is_none_or(|u| u.is_some()) =>
        {
            Some(Status {
                messages,
                uidnext: uidnext.flatten(),
                uidvalidity,
                highestmodseq,
            })
        }
        _ => None,
    };
    Some((name, status))
}

fn shorten(s: &str) -> String {
    const MAX: usize = 200;
    if s.len() <= MAX {
        return s.to_string();
    }
    let mut end = MAX;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &s[..end])
}

/// Reads one CRLF-terminated line one byte at a time (no read-ahead), without the line end.
fn read_line_unbuffered<S: Read>(
    s: &mut S,
    io_timeout: Option<Duration>,
) -> Result<String, ImapError> {
    let mut line = Vec::new();
    let mut b = [0u8; 1];
    loop {
        match s.read(&mut b) {
            Ok(0) => {
                return Err(ImapError::Io(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "connection closed by server",
                )))
            }
            Ok(_) => {
                if b[0] == b'\n' {
                    if line.last() == Some(&b'\r') {
                        line.pop();
                    }
                    return Ok(String::from_utf8_lossy(&line).into_owned());
                }
                line.push(b[0]);
                if line.len() > MAX_PRE_TLS_LINE {
                    return Err(ImapError::Protocol(format!(
                        "a line from the server is longer than {MAX_PRE_TLS_LINE} bytes"
                    )));
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(ImapError::Io(net::readable_io_error(e, io_timeout))),
        }
    }
}

/// Checks the server greeting (RFC 3501 7.1): `* OK` is fine, `* BYE` and `* PREAUTH` are not.
pub fn check_greeting(line: &str) -> Result<(), ImapError> {
    let upper = line.to_ascii_uppercase();
    if upper.starts_with("* OK") {
        Ok(())
    } else if upper.starts_with("* BYE") {
        Err(ImapError::Bye(line[5..].trim().to_string()))
    } else if upper.starts_with("* PREAUTH") {
        Err(ImapError::Protocol(
            "the server greeted with PREAUTH (already authenticated), which is not supported"
                .into(),
        ))
    } else {
        Err(ImapError::Protocol(format!(
            "not an IMAP greeting: `{}`",
            shorten(line)
        )))
    }
}

/// Runs one command on the plain socket before TLS and returns its untagged lines.
/// Errors: NO/BAD as [`ImapError::No`] / [`ImapError::Bad`].
fn pre_tls_command(
    tcp: &mut Stream,
    tag: &str,
    command: &str,
    io_timeout: Option<Duration>,
) -> Result<Vec<String>, ImapError> {
    tcp.write_all(format!("{tag} {command}\r\n").as_bytes())
        .and_then(|_| tcp.flush())
        .map_err(|e| ImapError::Io(net::readable_io_error(e, io_timeout)))?;
    let mut untagged = Vec::new();
    loop {
        let line = read_line_unbuffered(tcp, io_timeout)?;
        if let Some(rest) = line.strip_prefix(&format!("{tag} ")) {
            let (status, text) = rest.split_once(' ').unwrap_or((rest, ""));
            return match status.to_ascii_uppercase().as_str() {
                "OK" => Ok(untagged),
                "NO" => Err(ImapError::No {
                    command: command.into(),
                    text: text.into(),
                }),
                "BAD" => Err(ImapError::Bad {
                    command: command.into(),
                    text: text.into(),
                }),
                _ => Err(ImapError::Protocol(format!(
                    "unexpected answer to `{command}`: `{}`",
                    shorten(&line)
                ))),
            };
        }
        if line.to_ascii_uppercase().starts_with("* BYE") {
            return Err(ImapError::Bye(line[5..].trim().to_string()));
        }
        untagged.push(line);
    }
}

/// The `imap://` start: greeting, CAPABILITY, STARTTLS and the TLS handshake (RFC 3501 6.2.1);
/// or, without STARTTLS and with plain text allowed, the plain socket.
fn starttls(
    mut tcp: Stream,
    spec: &ServerSpec,
    opts: &ImapOptions,
    io_timeout: Option<Duration>,
) -> Result<Stream, ImapError> {
    let greeting = read_line_unbuffered(&mut tcp, io_timeout)?;
    check_greeting(&greeting)?;
    let lines = pre_tls_command(&mut tcp, "m1", "CAPABILITY", io_timeout)?;
    let caps = Capabilities::from_tokens(lines.iter().flat_map(|l| {
        let mut w = l.split_ascii_whitespace();
        match (w.next(), w.next()) {
            (Some("*"), Some(c)) if c.eq_ignore_ascii_case("CAPABILITY") => w.collect(),
            _ => Vec::new(),
        }
    }));
    if !caps.has("STARTTLS") {
        if opts.allow_plaintext {
            return Ok(tcp);
        }
        return Err(ImapError::NoTls(format!(
            "{} does not offer STARTTLS (use imaps:// or --allow-plaintext)",
            spec.host
        )));
    }
    match pre_tls_command(&mut tcp, "m2", "STARTTLS", io_timeout) {
        Ok(_) => Ok(tcp.start_tls(&spec.host, &opts.tls)?),
        Err(ImapError::No { text, .. } | ImapError::Bad { text, .. }) => {
            if opts.allow_plaintext {
                Ok(tcp)
            } else {
                Err(ImapError::NoTls(format!(
                    "{} refused STARTTLS: {text}",
                    spec.host
                )))
            }
        }
        Err(e) => Err(e),
    }
}

// ---------------------------------------------------------------------------------------------
// Restore: namespaces, CREATE, APPEND, SEARCH.
// ---------------------------------------------------------------------------------------------

/// The largest literal sent non-synchronising (`{N+}`, RFC 7888) when the server has LITERAL+.
/// Bigger messages wait for the server's `+` so it can refuse them (`NO [TOOBIG]`) before a
/// single octet is sent (RFC 7888 section 4 advises against huge non-synchronising literals).
pub const NONSYNC_LITERAL_MAX: usize = 1024 * 1024;

/// LITERAL- (RFC 7888 section 5) allows non-synchronising literals up to this size only.
const LITERAL_MINUS_MAX: usize = 4096;

/// At most this many APPENDs, and this many octets, are in flight in [`ImapClient::append_many`].
const PIPELINE_MAX_COMMANDS: usize = 64;
const PIPELINE_MAX_BYTES: usize = 8 * 1024 * 1024;

/// The character that stands for the hierarchy delimiter inside one level of a name (see
/// [`mailbox_wire_name`]); [`DELIMITER_SUBSTITUTE_FOR_UNDERSCORE`] when the delimiter is `_`.
pub const DELIMITER_SUBSTITUTE: char = '_';
/// The substitute used when the server's delimiter is itself `_`.
pub const DELIMITER_SUBSTITUTE_FOR_UNDERSCORE: char = '-';

/// The personal namespace (RFC 2342): where the user's own mailboxes live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Namespace {
    /// The prefix as the server sent it (modified UTF-7, e.g. `INBOX.` on Courier/Cyrus-style
    /// servers, usually empty elsewhere). Prepended to every name but INBOX.
    pub prefix: String,
    /// The hierarchy delimiter; `None` for a flat namespace.
    pub delimiter: Option<char>,
}

/// What the server said about an APPEND (RFC 3501 6.3.11).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Appended {
    /// UIDVALIDITY from `[APPENDUID uidvalidity uid]` (UIDPLUS, RFC 4315 section 3), exactly as
    /// sent. `None` without the response code (no UIDPLUS, or a server that omits it although
    /// it announces UIDPLUS: case 16 server B). A server may send garbage (case 16 server C
    /// swaps the numbers): compare with the mailbox's UIDVALIDITY before trusting `uid`, e.g.
    /// with [`Appended::uid_if_valid`].
    pub uidvalidity: Option<u32>,
    /// The new message's UID from APPENDUID, as sent (same caveat).
    pub uid: Option<u32>,
    /// Keywords of the flag list that are not valid IMAP atoms (RFC 3501 9, `flag-keyword`,
    /// e.g. containing a space or `]`), left out of the APPEND rather than breaking the command.
    pub dropped_keywords: Vec<String>,
}

impl Appended {
    /// The UID, only when the server's APPENDUID names `uidvalidity` (the mailbox's, from
    /// STATUS or EXAMINE). `None` when the code was absent or inconsistent (case 16).
    pub fn uid_if_valid(&self, uidvalidity: u32) -> Option<u32> {
        match (self.uidvalidity, self.uid) {
            (Some(v), Some(u)) if v == uidvalidity && u != 0 => Some(u),
            _ => None,
        }
    }
}

/// One message for [`ImapClient::append_many`]: the message (CRLF line ends), its flags, and
/// its INTERNALDATE with the zone to write it in.
pub type AppendItem<'a> = (&'a [u8], &'a Flags, Option<AppendDate>);

/// An APPEND date (RFC 3501 6.3.11, `date-time`): the instant and the zone it is written in,
/// so a restored message keeps the zone its archive gave (`"04-Mar-2014 10:00:00 +0100"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendDate {
    /// Seconds since the Unix epoch (UTC).
    pub secs: i64,
    /// The zone, seconds east of UTC (whole minutes); 0 writes `+0000`.
    pub offset: i32,
}

impl From<i64> for AppendDate {
    /// The instant written in UTC (`+0000`).
    fn from(secs: i64) -> Self {
        AppendDate { secs, offset: 0 }
    }
}

impl ImapError {
    /// The response code of a `NO`/`BAD` (RFC 3501 7.1, RFC 5530), upper-cased, without
    /// arguments: `TOOBIG`, `LIMIT`, `OVERQUOTA`, `TRYCREATE`, `ALREADYEXISTS`, ...
    pub fn response_code(&self) -> Option<String> {
        match self {
            ImapError::No { text, .. } | ImapError::Bad { text, .. } => response_code(text),
            _ => None,
        }
    }

    /// True when the server (`NO [TOOBIG]`, RFC 4469 / 7889) or its APPENDLIMIT (checked here,
    /// the message then not sent at all) refuses the message for its size. Permanent: report
    /// it for this message and do not retry (case 25).
    pub fn is_too_big(&self) -> bool {
        self.response_code().as_deref() == Some("TOOBIG")
    }

    /// True for a refusal that retrying the same message will not change: `TOOBIG`, `LIMIT`,
    /// `OVERQUOTA`, `PARSE`, `CANNOT` (RFC 5530), or a `BAD` (the server could not take the
    /// command, e.g. NUL octets without BINARY). Throttling (`NO ... Suggested Backoff Time`,
    /// case 23), `[UNAVAILABLE]`, `[INUSE]`, `[SERVERBUG]` and connection errors are not.
    pub fn is_permanent_refusal(&self) -> bool {
        if matches!(self, ImapError::Bad { .. }) {
            return true;
        }
        matches!(
            self.response_code().as_deref(),
            Some("TOOBIG" | "LIMIT" | "OVERQUOTA" | "PARSE" | "CANNOT")
        )
    }

    /// The wait a throttling server asks for: Office 365's `NO Request is throttled. Suggested
    /// Backoff Time: 4000 milliseconds` (case 23).
    pub fn suggested_backoff(&self) -> Option<Duration> {
        let ImapError::No { text, .. } = self else {
            return None;
        };
        crate::core::fault::suggested_backoff(text)
    }
}

/// The response code at the start of a response text (`[TOOBIG] Message too large`).
fn response_code(text: &str) -> Option<String> {
    let inner = text.trim_start().strip_prefix('[')?;
    let end = inner.find(']')?;
    let word = inner[..end].split_ascii_whitespace().next()?;
    Some(word.to_ascii_uppercase())
}

/// True when `k` can be sent as a flag keyword: an IMAP atom (RFC 3501 9: ASCII 0x21-0x7e
/// without `(){ %*"\]`).
fn is_atom(k: &str) -> bool {
    !k.is_empty()
        && k.bytes()
            .all(|b| (0x21..0x7f).contains(&b) && !b"(){ %*\"\\]".contains(&b))
}

/// The wire name of a mailbox given by its decoded levels (`["Projects", "2024"]`), for a
/// server with personal namespace `ns`. Pure.
///
/// - Each level is encoded in modified UTF-7 ([`mutf7::encode`]) and the levels are joined with
///   the server's delimiter; the namespace prefix (`INBOX.`) goes in front, with the delimiter
///   added if the prefix lacks it.
/// - INBOX (any case alone, exactly `INBOX` as a first level) stays `INBOX` (`INBOX`,
///   `INBOX.Sub`), never `INBOX.INBOX`.
/// - A level containing the delimiter cannot be created as one level: each delimiter in it
///   becomes [`DELIMITER_SUBSTITUTE`] (`_`; `-` when the delimiter is `_`). So on a `.` server
///   `example.org invoices` is `INBOX.example_org invoices`, and on a `/` server `A/B Testing`
///   is `A_B Testing` (case 11). [`wire_name_substitutions`] tells which levels changed.
/// - A flat namespace (`delimiter: None`) joins levels with `/`, which there is an ordinary
///   character (and what [`decode_mailbox_name`] gives back as levels).
///
/// Empty levels are kept (a server refuses `A..B`): callers pass real names.
pub fn mailbox_wire_name(levels: &[&str], ns: &Namespace) -> String {
    // Only INBOX itself is case-insensitive (RFC 3501 5.1): `inbox/Sub` is not `INBOX/Sub`.
    let inbox_first = match levels {
        [one] => one.eq_ignore_ascii_case("INBOX"),
        [first, ..] => *first == "INBOX",
        [] => false,
    };
    let joined = match ns.delimiter {
        None if inbox_first && levels.len() == 1 => "INBOX".to_string(),
        None => mutf7::encode(&levels.join("/")),
        Some(d) => levels
            .iter()
            .enumerate()
            .map(|(i, l)| {
                if i == 0 && inbox_first {
                    "INBOX".to_string()
                } else {
                    mutf7::encode(&substitute_delimiter(l, d))
                }
            })
            .collect::<Vec<_>>()
            .join(&d.to_string()),
    };
    if inbox_first || ns.prefix.is_empty() {
        return joined;
    }
    let mut prefix = ns.prefix.clone();
    if let Some(d) = ns.delimiter {
        if !prefix.ends_with(d) {
            prefix.push(d);
        }
    }
    prefix + &joined
}

/// The levels that [`mailbox_wire_name`] changes because they contain the delimiter (for the
/// report: "`example.org invoices` created as `example_org invoices`").
pub fn wire_name_substitutions(levels: &[&str], ns: &Namespace) -> Vec<String> {
    match ns.delimiter {
        Some(d) => levels
            .iter()
            .filter(|l| l.contains(d))
            .map(|l| l.to_string())
            .collect(),
        None => Vec::new(),
    }
}

fn substitute_delimiter(level: &str, delim: char) -> String {
    let sub = if delim == DELIMITER_SUBSTITUTE {
        DELIMITER_SUBSTITUTE_FOR_UNDERSCORE
    } else {
        DELIMITER_SUBSTITUTE
    };
    level.replace(delim, &sub.to_string())
}

/// One argument of a command sent by [`ImapClient::raw_command`].
enum Arg<'a> {
    /// Text, sent as is (atoms, quoted strings, spaces, parentheses).
    Text(String),
    /// A literal (RFC 3501 4.3): `{N}` (waiting for `+`) or `{N+}` (LITERAL+), then the octets.
    Literal(&'a [u8]),
}

/// A string argument: quoted (with `\` escapes) when it is printable ASCII, else a literal.
fn astring(s: &str) -> Arg<'_> {
    if s.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        Arg::Text(quote(s))
    } else {
        Arg::Literal(s.as_bytes())
    }
}

/// The tagged end of a command: status (`OK`, `NO`, `BAD`) and the rest of the line.
#[derive(Debug)]
struct Tagged {
    status: String,
    text: String,
}

impl Tagged {
    fn into_result(self, command: &str) -> Result<String, ImapError> {
        match self.status.as_str() {
            "OK" => Ok(self.text),
            "NO" => Err(ImapError::No {
                command: command.into(),
                text: self.text,
            }),
            "BAD" => Err(ImapError::Bad {
                command: command.into(),
                text: self.text,
            }),
            _ => Err(ImapError::Protocol(format!(
                "unexpected answer to `{command}`: `{} {}`",
                self.status,
                shorten(&self.text)
            ))),
        }
    }
}

/// Parses the personal namespace from the data of `* NAMESPACE` (RFC 2342 5): `(("INBOX."
/// "."))`. `None` when the personal namespace is `NIL` or malformed.
pub fn parse_namespace(data: &[u8]) -> Option<Namespace> {
    namespace_entry(&tokenize(data)?)
}

/// The personal namespace of a NAMESPACE response's values (RFC 2342 5).
fn namespace_entry(values: &[Value]) -> Option<Namespace> {
    let Value::List(personal) = values.first()? else {
        return None;
    };
    let Value::List(first) = personal.first()? else {
        return None;
    };
    let prefix = first.first()?.text()?;
    let delimiter = match first.get(1)? {
        Value::Nil => None,
        t => t.text()?.chars().next(),
    };
    Some(Namespace { prefix, delimiter })
}

/// Parses `* LIST (attrs) "delim" name` data into (name, delimiter).
pub fn parse_list(data: &[u8]) -> Option<(String, Option<char>)> {
    let (_, delimiter, name) = list_entry(&tokenize(data)?)?;
    Some((name, delimiter))
}

/// The two fields after `APPENDUID` in a tagged OK text's response code (RFC 4315 section
/// 3): UIDVALIDITY and the UID (or, after a MULTIAPPEND, the uid-set), as written; `None`
/// without that code.
fn appenduid_fields(text: &str) -> Option<(Option<&str>, Option<&str>)> {
    if response_code(text).as_deref() != Some("APPENDUID") {
        return None;
    }
    let inner = &text.trim_start()[1..];
    let inner = &inner[..inner.find(']').unwrap_or(inner.len())];
    let mut w = inner.split_ascii_whitespace().skip(1);
    Some((w.next(), w.next()))
}

/// The APPENDUID of a tagged OK text (`[APPENDUID 38505 3955] APPEND completed`).
pub fn parse_appenduid(text: &str) -> (Option<u32>, Option<u32>) {
    let Some((validity, uid)) = appenduid_fields(text) else {
        return (None, None);
    };
    (
        validity.and_then(|v| v.parse().ok()),
        uid.and_then(|u| u.parse().ok()),
    )
}

/// The `[APPENDUID uidvalidity uid-set]` of a MULTIAPPEND's tagged OK (RFC 4315 section 3,
/// `uid-set` as `3955:3957,3960`), when it names exactly `count` UIDs: (UIDVALIDITY, the UIDs
/// in the order the set lists them, a range `a:b` from `a` to `b` whichever is larger, as
/// RFC 3501 9 allows). `None` for a missing code, a malformed set or another count.
pub(crate) fn parse_appenduid_set(text: &str, count: usize) -> Option<(u32, Vec<u32>)> {
    let (validity, set) = appenduid_fields(text)?;
    let validity: u32 = validity?.parse().ok()?;
    let set = set?;
    let mut uids = Vec::with_capacity(count);
    for part in set.split(',') {
        let (a, b) = match part.split_once(':') {
            Some((a, b)) => (a.parse::<u32>().ok()?, b.parse::<u32>().ok()?),
            None => {
                let a = part.parse::<u32>().ok()?;
                (a, a)
            }
        };
        let (lo, hi) = (a.min(b), a.max(b));
        if lo == 0 || (hi - lo) as usize > count.saturating_sub(uids.len()) {
            // Zero, or more UIDs than messages: not this command's answer.
            return None;
        }
        uids.extend(lo..=hi);
    }
    (uids.len() == count).then_some((validity, uids))
}

/// The most untagged data one answer (not FETCH) may hold in memory, in bytes: a LIST of a
/// hundred thousand mailboxes or a SEARCH of a million UIDs is well under it.
pub const MAX_ANSWER: u64 = 65 << 20;

/// The UIDs of `* SEARCH` responses (RFC 3501 7.2.5); numbers beyond 32 bits are not UIDs
/// and are left out.
fn search_uids(untagged: &[Untagged]) -> BTreeSet<u32> {
    untagged
        .iter()
        .filter(|u| u.name == "SEARCH")
        .flat_map(|u| u.values.iter().flatten())
        .filter_map(|v| u32::try_from(v.number()?).ok())
        .collect()
}

/// Parses a tagged line `tag SP status SP text`.
#[cfg(test)]
fn parse_tagged(l: &[u8]) -> Result<Tagged, ImapError> {
    let line = String::from_utf8_lossy(l);
    let line = line.trim_end_matches(['\r', '\n']);
    let mut parts = line.splitn(3, ' ');
    let (_tag, status) = (parts.next(), parts.next());
    match status {
        Some(st) => Ok(Tagged {
            status: st.to_ascii_uppercase(),
            text: parts.next().unwrap_or("").to_string(),
        }),
        None => Err(ImapError::Protocol(format!(
            "not an IMAP response: `{}`",
            shorten(line)
        ))),
    }
}

// ---------------------------------------------------------------------------------------------
// Prune: SELECT (read-write), UID STORE \Deleted, UID EXPUNGE (RFC 4315), EXPUNGE, UID SEARCH.
// ---------------------------------------------------------------------------------------------

/// At most this many UIDs per UID STORE / UID EXPUNGE / UID SEARCH command, so that a set of
/// scattered UIDs stays well below servers' command length limits (Dovecot: 64 kB).
const PRUNE_UIDS_PER_COMMAND: usize = 500;

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 15: the INTERNALDATE a message is listed or fetched with; what the server sent
    /// when it cannot be read or believed.
    #[test]
    fn internal_dates_readable_and_believable() {
        let now = 1_800_000_000;
        let m = |t: Option<i64>, sent: Option<&str>| Merged {
            internal_date: t,
            internal_date_sent: sent.map(str::to_string),
            ..Merged::default()
        };
        let cases: &[(Merged, Result<i64, &str>)] = &[
            (m(Some(1_393_923_600), Some("\"x\"")), Ok(1_393_923_600)),
            (m(None, None), Err("nothing")),
            (m(None, Some("NIL")), Err("NIL")),
            (m(None, Some("\"garbage\"")), Err("\"garbage\"")),
            (m(Some(-2_208_988_800), Some("\"1900\"")), Err("\"1900\"")),
            (m(Some(0), Some("\"1970\"")), Err("\"1970\"")),
            (m(Some(now + 86_400), Some("\"2027\"")), Err("\"2027\"")),
            (m(Some(now + 86_399), Some("\"ok\"")), Ok(now + 86_399)),
        ];
        for (merged, want) in cases {
            assert_eq!(merged.date(now), want.map_err(str::to_string), "{merged:?}");
        }
        // Split responses: a readable date is kept over a later unreadable one, and an
        // unreadable one is replaced by a later readable one.
        let item = |t: Option<i64>, sent: &str| crate::protocol::imap::reader::FetchItems {
            seq: 1,
            uid: Some(5),
            internal_date: t,
            internal_date_sent: Some(sent.into()),
            ..Default::default()
        };
        for (first, second) in [
            (item(Some(1_393_923_600), "\"ok\""), item(None, "NIL")),
            (item(None, "NIL"), item(Some(1_393_923_600), "\"ok\"")),
        ] {
            let mut merger = Merger::default();
            merger.add(first, false);
            let k = merger.add(second, false).unwrap();
            assert_eq!(merger.by_key[&k].date(now), Ok(1_393_923_600));
        }
    }

    #[test]
    fn appenduid_sets_of_a_multiappend() {
        type Case = (&'static str, usize, Option<(u32, Vec<u32>)>);
        let cases: &[Case] = &[
            (
                "[APPENDUID 38505 3955:3957] done",
                3,
                Some((38505, vec![3955, 3956, 3957])),
            ),
            ("[APPENDUID 7 5,7,9:10] ok", 4, Some((7, vec![5, 7, 9, 10]))),
            ("[APPENDUID 7 10:9] ok", 2, Some((7, vec![9, 10]))),
            ("[APPENDUID 7 12] ok", 1, Some((7, vec![12]))),
            // Another count, zero, garbage, no code: no UIDs.
            ("[APPENDUID 7 1:3] ok", 2, None),
            ("[APPENDUID 7 1:4000000000] ok", 3, None),
            ("[APPENDUID 7 0:1] ok", 2, None),
            ("[APPENDUID 7 a:b] ok", 2, None),
            ("[APPENDUID 7] ok", 1, None),
            ("[APPENDUID x 1:2] ok", 2, None),
            ("OK done", 2, None),
        ];
        for (text, count, want) in cases {
            assert_eq!(&parse_appenduid_set(text, *count), want, "{text}");
        }
    }

    #[test]
    fn server_text_in_errors_is_one_line() {
        let cases = [
            (
                ImapError::Bye("going\r\n\u{1b}[2Jdown".into()),
                "the server closed the session: going\\r\\n\\u{1b}[2Jdown",
            ),
            (
                ImapError::No {
                    command: "LOGIN".into(),
                    text: "no\u{0}way".into(),
                },
                "the server answered NO to `LOGIN`: no\\u{0}way",
            ),
            (ImapError::Auth("bad\rpw".into()), "login refused: bad\\rpw"),
        ];
        for (e, want) in cases {
            assert_eq!(e.to_string(), want);
        }
    }

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
    fn mailbox_names_decode_per_level() {
        let n = decode_mailbox_name("Archive.2023", Some('.'));
        assert_eq!(n.as_str(), "Archive/2023");
        let n = decode_mailbox_name("&MNcw7TC4MKcwrzDI-/&iYt6TTCCMIo-", Some('/'));
        assert_eq!(n.as_str(), "プロジェクト/見積もり");
        let n = decode_mailbox_name("inbox", Some('/'));
        assert!(n.is_inbox());
        // Undecodable level kept raw; the others decoded.
        let n = decode_mailbox_name("Entw&APw-rfe.Tom & Jerry", Some('.'));
        assert_eq!(n.as_str(), "Entwürfe/Tom & Jerry");
        let n = decode_mailbox_name("Raw UTF-8 Entwürfe", None);
        assert_eq!(n.as_str(), "Raw UTF-8 Entwürfe");
        // Issue 14: `Work.x` (two levels) and `Work/x` (one level) on a `.` server.
        let two = decode_mailbox_name("Work.x", Some('.'));
        let one = decode_mailbox_name("Work/x", Some('.'));
        assert_ne!(two, one);
        assert_eq!(two.levels(), ["Work", "x"]);
        assert_eq!(one.levels(), ["Work/x"]);
        assert_eq!(one.as_str(), "Work%2Fx");
        assert_ne!(
            decode_mailbox_name("inbox.Sub", Some('.')),
            decode_mailbox_name("INBOX.Sub", Some('.'))
        );
    }

    #[test]
    fn mailbox_info_attributes() {
        let mb = MailboxInfo::from_list(
            "Sent",
            Some('/'),
            vec!["\\HasNoChildren".into(), "\\Sent".into()],
        );
        assert!(mb.selectable);
        assert_eq!(mb.special_use, Some(SpecialUse::Sent));
        let mb = MailboxInfo::from_list("A", Some('/'), vec!["\\NonExistent".into()]);
        assert!(!mb.selectable);
        let mb = MailboxInfo::from_list("A", Some('/'), vec!["\\NoSelect".into()]);
        assert!(!mb.selectable);
    }

    #[test]
    fn greetings() {
        assert!(check_greeting("* OK [CAPABILITY IMAP4rev1] ready").is_ok());
        assert!(matches!(
            check_greeting("* BYE too many connections"),
            Err(ImapError::Bye(t)) if t == "too many connections"
        ));
        assert!(matches!(
            check_greeting("* PREAUTH hi"),
            Err(ImapError::Protocol(_))
        ));
        assert!(matches!(
            check_greeting("+OK POP3 ready"),
            Err(ImapError::Protocol(_))
        ));
    }

    #[test]
    fn capabilities_are_case_insensitive() {
        let c = Capabilities::from_tokens(["IMAP4rev1", "auth=plain", "CONDSTORE"]);
        assert!(c.has("AUTH=PLAIN") && c.has("condstore") && !c.has("QUOTA"));
        assert_eq!(c.auth_mechanisms().collect::<Vec<_>>(), ["PLAIN"]);
    }

    /// STATUS answers as servers send them: (data after `* STATUS `, the name, the status).
    #[test]
    fn status_answers() {
        let st = |messages, uidnext, uidvalidity, highestmodseq| Status {
            messages,
            uidnext,
            uidvalidity,
            highestmodseq,
        };
        #[rustfmt::skip]
        let cases: &[(&[u8], &[u8], Option<Status>)] = &[
            (b"INBOX (MESSAGES 3 UIDNEXT 9 UIDVALIDITY 7)", b"INBOX", Some(st(3, Some(9), 7, None))),
            (b"\"a \\\"b\\\" c\" (MESSAGES 1 UIDVALIDITY 2)", b"a \"b\" c", Some(st(1, None, 2, None))),
            (b"\"back\\\\slash\" (MESSAGES 0 UIDNEXT 1 UIDVALIDITY 5)", b"back\\slash", Some(st(0, Some(1), 5, None))),
            (b"{3}\r\nx\"y (MESSAGES 2 UIDVALIDITY 4)", b"x\"y", Some(st(2, None, 4, None))),
            // Exchange: a trailing space inside the list.
            (b"Sent (MESSAGES 4 UIDNEXT 5 UIDVALIDITY 6 )", b"Sent", Some(st(4, Some(5), 6, None))),
            (b"Sent (messages 4 uidvalidity 6 highestmodseq 18446744073709551615)", b"Sent", Some(st(4, None, 6, Some(u64::MAX)))),
            // Cannot tell: the mailbox is examined instead.
            (b"Sent ()", b"Sent", None),
            (b"Sent", b"Sent", None),
            (b"Sent (UIDNEXT 5)", b"Sent", None),
            (b"Sent (MESSAGES 4 UIDNEXT 5)", b"Sent", None),
            (b"Sent (MESSAGES 4294967296 UIDVALIDITY 6)", b"Sent", None),
            (b"Sent (MESSAGES 4 UIDNEXT 4294967296 UIDVALIDITY 6)", b"Sent", None),
            (b"Sent (MESSAGES 4 UIDVALIDITY 99999999999999999999999)", b"Sent", None),
            (b"Sent (MESSAGES)", b"Sent", None),
            (b"Sent (MESSAGES x UIDVALIDITY 6)", b"Sent", None),
        ];
        for (data, name, want) in cases {
            let values =
                tokenize(data).unwrap_or_else(|| panic!("{}", String::from_utf8_lossy(data)));
            let (got_name, got) = status_entry(&values).unwrap();
            assert_eq!(got_name, *name, "{}", String::from_utf8_lossy(data));
            assert_eq!(got, *want, "{}", String::from_utf8_lossy(data));
        }
        assert_eq!(tokenize(b"\"a (MESSAGES 1)"), None, "unclosed quote");
    }

    /// LIST answers: (data after `* LIST `, attributes, delimiter, name).
    #[test]
    fn list_answers() {
        #[rustfmt::skip]
        type Case<'a> = (&'a [u8], &'a [&'a str], Option<char>, &'a str);
        let cases: &[Case] = &[
            (
                b"(\\HasNoChildren) \"/\" INBOX",
                &["\\HasNoChildren"],
                Some('/'),
                "INBOX",
            ),
            (
                b"() \".\" \"INBOX.a \\\"q\\\" b\"",
                &[],
                Some('.'),
                "INBOX.a \"q\" b",
            ),
            (b"() \"/\" \"back\\\\slash\"", &[], Some('/'), "back\\slash"),
            // A server that does not escape a backslash.
            (b"() \"/\" \"a\\b\"", &[], Some('/'), "a\\b"),
            (b"() \"/\" {7}\r\nab\"cd\\e", &[], Some('/'), "ab\"cd\\e"),
            (
                b"(\\Noselect \\HasChildren) NIL Flat",
                &["\\Noselect", "\\HasChildren"],
                None,
                "Flat",
            ),
            (
                b"(\\NonExistent) \"/\" \"Gone\"",
                &["\\NonExistent"],
                Some('/'),
                "Gone",
            ),
            (
                b"() \"/\" \"[Gmail]/All Mail\"",
                &[],
                Some('/'),
                "[Gmail]/All Mail",
            ),
            (b"() \"/\" \"a]b*c%d\"", &[], Some('/'), "a]b*c%d"),
            (
                b"(\\Sent $Junk) \"/\" \"Gesendete Objekte\"",
                &["\\Sent", "$Junk"],
                Some('/'),
                "Gesendete Objekte",
            ),
            (
                "() \"/\" \"Entw\u{fc}rfe\"".as_bytes(),
                &[],
                Some('/'),
                "Entw\u{fc}rfe",
            ),
            (b"() \"/\" \"\" ", &[], Some('/'), ""),
        ];
        for (data, attrs, delim, name) in cases {
            let values =
                tokenize(data).unwrap_or_else(|| panic!("{}", String::from_utf8_lossy(data)));
            let (a, d, n) = list_entry(&values).unwrap();
            assert_eq!(
                (a, d, n.as_str()),
                (
                    attrs.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
                    *delim,
                    *name
                )
            );
        }
        for bad in [&b"\\Noselect \"/\" x"[..], b"() \"/\"", b"() \"/\" NIL"] {
            let v = tokenize(bad).unwrap_or_default();
            assert_eq!(list_entry(&v), None, "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn capabilities_in_a_response_code() {
        let c = capability_code("[CAPABILITY IMAP4rev1 IDLE CONDSTORE ] Logged in").unwrap();
        assert!(c.has("IDLE") && c.has("CONDSTORE"));
        assert_eq!(capability_code("[ALERT] hi"), None);
        assert_eq!(capability_code("Logged in"), None);
    }

    fn ns(prefix: &str, delimiter: Option<char>) -> Namespace {
        Namespace {
            prefix: prefix.into(),
            delimiter,
        }
    }

    #[test]
    fn wire_names_per_namespace() {
        let slash = ns("", Some('/'));
        let dot_inbox = ns("INBOX.", Some('.'));
        let dot = ns("", Some('.'));
        let under = ns("", Some('_'));
        let flat = ns("", None);
        #[rustfmt::skip]
        let table: &[(&[&str], &Namespace, &str)] = &[
            // case 11, step 1: `/` source onto a Courier-style `INBOX.` server.
            (&["INBOX"], &dot_inbox, "INBOX"),
            (&["inbox"], &dot_inbox, "INBOX"),
            (&["Projects"], &dot_inbox, "INBOX.Projects"),
            (&["Projects", "2024"], &dot_inbox, "INBOX.Projects.2024"),
            (&["example.org invoices"], &dot_inbox, "INBOX.example_org invoices"),
            (&["v1.2 release", "notes"], &dot_inbox, "INBOX.v1_2 release.notes"),
            (&["INBOX", "Sub"], &dot_inbox, "INBOX.Sub"),
            // case 11, step 2: `.` source onto a `/` server.
            (&["Clients", "A/B Testing"], &slash, "Clients/A_B Testing"),
            (&["example.org invoices"], &slash, "example.org invoices"),
            (&["INBOX", "Sub"], &slash, "INBOX/Sub"),
            (&["inbox", "Sub"], &slash, "inbox/Sub"),
            // Prefix without its delimiter gets one.
            (&["Sent"], &ns("INBOX", Some('.')), "INBOX.Sent"),
            (&["Sent"], &ns("#mail/", Some('/')), "#mail/Sent"),
            // case 10: modified UTF-7 per level, `&` escaped, `+` plain.
            (&["日本語", "受信箱"], &dot, "&ZeVnLIqe-.&U9dP4Xux-"),
            (&["Entwürfe"], &slash, "Entw&APw-rfe"),
            (&["Tom & Jerry"], &slash, "Tom &- Jerry"),
            (&["Réponses 1200+1201"], &slash, "R&AOk-ponses 1200+1201"),
            (&["Cart\u{f3}rio"], &slash, "Cart&APM-rio"),
            // A `_` delimiter: `-` is the substitute.
            (&["a_b", "c"], &under, "a-b_c"),
            // Flat namespace: one name, `/` an ordinary character.
            (&["A", "B"], &flat, "A/B"),
            (&["INBOX"], &flat, "INBOX"),
        ];
        for (levels, n, want) in table {
            assert_eq!(mailbox_wire_name(levels, n), *want, "{levels:?} {n:?}");
        }
        assert_eq!(
            wire_name_substitutions(&["example.org invoices", "x"], &dot_inbox),
            ["example.org invoices"]
        );
        assert!(wire_name_substitutions(&["a.b"], &slash).is_empty());
        // What the backup side decodes gives the levels back.
        let w = mailbox_wire_name(&["日本語", "受信箱"], &dot);
        assert_eq!(decode_mailbox_name(&w, Some('.')).as_str(), "日本語/受信箱");
    }

    #[test]
    fn append_dates_have_two_digit_days() {
        // case 19: mbox separator dates, in UTC.
        assert_eq!(
            imap_date_time(1_741_507_507, 0).unwrap(),
            "09-Mar-2025 08:05:07 +0000"
        );
        assert_eq!(
            imap_date_time(1_419_897_599, 0).unwrap(),
            "29-Dec-2014 23:59:59 +0000"
        );
        assert_eq!(
            imap_date_time(1_835_438_400, 0).unwrap(),
            "29-Feb-2028 12:00:00 +0000"
        );
        // case 19 B: " 5-Jan-2023 07:03:09 +0100", kept in its zone or as the same instant.
        assert_eq!(
            imap_date_time(1_672_898_589, 3600).unwrap(),
            "05-Jan-2023 07:03:09 +0100"
        );
        assert_eq!(
            imap_date_time(1_672_898_589, 0).unwrap(),
            "05-Jan-2023 06:03:09 +0000"
        );
        assert_eq!(
            imap_date_time(-86_400, -5 * 3600).unwrap(),
            "30-Dec-1969 19:00:00 -0500"
        );
        assert_eq!(imap_date_time(i64::MAX, 0), None);
        assert_eq!(imap_date_time(300_000_000_000, 0), None, "year 11476");
        assert_eq!(imap_date_time(0, 30), None, "offset not whole minutes");
    }

    #[test]
    fn namespace_and_list_lines() {
        // The data after `* NAME `.
        let d = |l: &'static [u8], n: &str| &l[2 + n.len()..];
        assert_eq!(
            parse_namespace(d(
                b"* NAMESPACE ((\"INBOX.\" \".\")) NIL NIL\r\n",
                "NAMESPACE"
            )),
            Some(ns("INBOX.", Some('.')))
        );
        assert_eq!(
            parse_namespace(d(
                b"* NAMESPACE ((\"\" \"/\")(\"Archive/\" \"/\" \"X-EXT\" (\"a\"))) ((\"~\" \"/\")) NIL\r\n",
                "NAMESPACE"
            )),
            Some(ns("", Some('/')))
        );
        assert_eq!(
            parse_namespace(d(b"* NAMESPACE ((\"\" NIL)) NIL NIL\r\n", "NAMESPACE")),
            Some(ns("", None))
        );
        assert_eq!(
            parse_namespace(d(b"* NAMESPACE NIL NIL NIL\r\n", "NAMESPACE")),
            None
        );
        assert_eq!(
            parse_namespace(d(
                b"* namespace (({5}\r\nINBOX \".\")) NIL NIL\r\n",
                "NAMESPACE"
            )),
            Some(ns("INBOX", Some('.')))
        );
        assert_eq!(
            parse_list(d(b"* LIST (\\Noselect) \"/\" \"\"\r\n", "LIST")),
            Some((String::new(), Some('/')))
        );
        assert_eq!(
            parse_list(d(b"* LIST () NIL INBOX\r\n", "LIST")),
            Some(("INBOX".into(), None))
        );
        assert_eq!(
            parse_list(d(b"* LIST () \".\" \"a \\\"q\\\" b\"\r\n", "LIST")),
            Some(("a \"q\" b".into(), Some('.')))
        );
        assert_eq!(tokenize(b"(a"), None);
        assert_eq!(tokenize(b"a)"), None);
        assert_eq!(tokenize(b"\"unterminated"), None);
    }

    #[test]
    fn append_answers_and_refusals() {
        assert_eq!(
            parse_appenduid("[APPENDUID 38505 3955] APPEND completed"),
            (Some(38505), Some(3955))
        );
        // case 16 server C: as sent; the caller compares with the mailbox's UIDVALIDITY.
        let a = Appended {
            uidvalidity: Some(7064),
            uid: Some(1),
            dropped_keywords: vec![],
        };
        assert_eq!(a.uid_if_valid(1), None);
        assert_eq!(a.uid_if_valid(7064), Some(1));
        assert_eq!(parse_appenduid("APPEND completed"), (None, None));
        assert_eq!(parse_appenduid("[READ-WRITE] done"), (None, None));
        assert_eq!(parse_appenduid("[APPENDUID 5 3:4] x"), (Some(5), None));

        let no = |text: &str| ImapError::No {
            command: "APPEND".into(),
            text: text.into(),
        };
        assert!(no("[TOOBIG] Message too large").is_too_big());
        assert!(no("[TOOBIG] Message too large").is_permanent_refusal());
        assert!(no("[LIMIT] too many").is_permanent_refusal());
        assert!(!no("[LIMIT] too many").is_too_big());
        assert!(!no("[UNAVAILABLE] later").is_permanent_refusal());
        assert_eq!(
            no("[TRYCREATE] no mailbox").response_code().as_deref(),
            Some("TRYCREATE")
        );
        let throttled = no("Request is throttled. Suggested Backoff Time: 4000 milliseconds");
        assert_eq!(
            throttled.suggested_backoff(),
            Some(Duration::from_millis(4000))
        );
        assert!(!throttled.is_permanent_refusal());
        assert_eq!(no("[TOOBIG] x").suggested_backoff(), None);
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

    #[test]
    fn tagged_lines() {
        let t = parse_tagged(b"a7 NO [TOOBIG] Message too large\r\n").unwrap();
        assert_eq!(
            (t.status.as_str(), t.text.as_str()),
            ("NO", "[TOOBIG] Message too large")
        );
        let t = parse_tagged(b"a8 ok\r\n").unwrap();
        assert_eq!((t.status.as_str(), t.text.as_str()), ("OK", ""));
        assert!(parse_tagged(b"garbage\r\n").is_err());
    }
}
