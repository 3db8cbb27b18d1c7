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
//!
//! The files: this one holds [`ImapClient`], [`ImapError`] and the types the client hands
//! out; the client's methods are in `session.rs` (connect, login, capabilities), `mailboxes.rs`
//! (LIST, STATUS, EXAMINE, CREATE), `fetch.rs`, `append.rs`, `search.rs` (and STORE, EXPUNGE),
//! `quota.rs` and `command.rs` (sending a command, reading its answer). Beside them:
//! `starttls.rs` (the plain-socket start of `imap://`), [`reader`] (the response reader),
//! `answers.rs` (the data of LIST, STATUS, NAMESPACE, response codes, the tagged line),
//! `wire.rs` (quoted strings, literals, atoms, UID sets) and `names.rs` (mailbox names to and
//! from the wire).

mod answers;
mod append;
mod command;
mod fetch;
mod mailboxes;
mod names;
mod quota;
pub mod reader;
mod search;
mod session;
mod starttls;
mod wire;

pub use crate::core::date::imap_date_time;
pub(crate) use answers::parse_appenduid_set;
pub use answers::{list_entry, parse_appenduid, parse_list, parse_namespace};
pub use names::{
    decode_mailbox_name, mailbox_wire_name, wire_name_substitutions, DELIMITER_SUBSTITUTE,
    DELIMITER_SUBSTITUTE_FOR_UNDERSCORE,
};
pub use starttls::check_greeting;
pub use wire::{uid_set, NONSYNC_LITERAL_MAX};

// The helpers the files of this module share (their `use super::*` finds them here).
use answers::{
    bye_text, esc, missing, namespace_entry, response_code, shorten, status_entry, Tagged,
};
use starttls::{read_line_unbuffered, starttls};
use wire::{astring, is_atom, quote, Arg, LITERAL_MINUS_MAX};

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
    /// Gmail's items, when asked for ([`ImapClient::list_gmail`]).
    pub gmail: Option<GmailItems>,
}

/// What Gmail says about a message beyond IMAP (its IMAP extensions, `X-GM-EXT-1`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GmailItems {
    /// X-GM-MSGID: the message's id across the account's folders (one per message, whatever
    /// its labels).
    pub msgid: u64,
    /// X-GM-THRID: its conversation's id (0 when not sent).
    pub thrid: u64,
    /// X-GM-LABELS as sent: system labels with their backslash (`\Inbox`, `\Sent`,
    /// `\Draft`, `\Important`, `\Starred`), user labels in modified UTF-7 with `/` levels.
    pub labels: Vec<String>,
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

// ---------------------------------------------------------------------------------------------
// Restore: the personal namespace, and what an APPEND gave.
// ---------------------------------------------------------------------------------------------

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

/// The most untagged data one answer (not FETCH) may hold in memory, in bytes: a LIST of a
/// hundred thousand mailboxes or a SEARCH of a million UIDs is well under it.
pub const MAX_ANSWER: u64 = 65 << 20;

#[cfg(test)]
mod tests {
    use super::*;

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
    fn capabilities_are_case_insensitive() {
        let c = Capabilities::from_tokens(["IMAP4rev1", "auth=plain", "CONDSTORE"]);
        assert!(c.has("AUTH=PLAIN") && c.has("condstore") && !c.has("QUOTA"));
        assert_eq!(c.auth_mechanisms().collect::<Vec<_>>(), ["PLAIN"]);
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
}
