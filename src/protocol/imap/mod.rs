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

pub mod reader;

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

impl ImapClient {
    /// Connects and reads the greeting; for `imap://` (`TlsMode::StartTls`) also CAPABILITY
    /// and STARTTLS (RFC 3501 6.2.1), then reads CAPABILITY again over TLS.
    ///
    /// Errors: [`ImapError::Net`] (connect, TLS), [`ImapError::NoTls`] when an `imap://` server
    /// has no STARTTLS (or refuses it) and `opts.allow_plaintext` is false, [`ImapError::Bye`]
    /// for a `* BYE` greeting, [`ImapError::Protocol`] for a `PREAUTH` greeting (not supported)
    /// or anything else unexpected, [`ImapError::Io`].
    pub fn connect(spec: &ServerSpec, opts: &ImapOptions) -> Result<Self, ImapError> {
        let tcp = net::connect_tcp(&spec.host, spec.port, &opts.timeouts)?;
        let io_timeout = tcp.read_timeout().ok().flatten();
        let stream = match spec.tls {
            TlsMode::Implicit => {
                let mut s = net::tls_wrap(tcp, &spec.host, &opts.tls)?;
                let greeting = read_line_unbuffered(&mut s, io_timeout)?;
                check_greeting(&greeting)?;
                s
            }
            TlsMode::StartTls => starttls(Stream::plain(tcp, &spec.host), spec, opts, io_timeout)?,
        };
        let tls = stream.is_tls();
        let mut client = ImapClient {
            state: State::NotAuthenticated,
            caps: Capabilities::default(),
            host: spec.host.clone(),
            tls,
            allow_plaintext: opts.allow_plaintext,
            auth: opts.auth,
            io_timeout,
            condstore: false,
            nomodseq: false,
            modseq_refused: false,
            selected: None,
            stream: ReadBuf::new(stream),
            tag: 0,
            examined_wire: None,
            examined_read_write: false,
            namespace: None,
            delimiter: None,
            unreadable: Vec::new(),
        };
        client.refresh_capabilities()?;
        Ok(client)
    }

    /// True when the session cannot be used any more (after an I/O error, a broken
    /// protocol, a refused literal): the caller connects again.
    pub fn is_broken(&self) -> bool {
        matches!(self.state, State::Broken(_))
    }

    /// True when the session is encrypted.
    pub fn is_tls(&self) -> bool {
        self.tls
    }

    /// Logs in with the method from [`ImapOptions::auth`]; `secret` is the password, or the
    /// OAuth2 access token for XOAUTH2 / OAUTHBEARER. Reads CAPABILITY again afterwards
    /// (from the tagged OK's `[CAPABILITY ...]` when the server sends it).
    ///
    /// LOGIN sends the user name and password as quoted strings when they are printable
    /// ASCII (`"` and `\` escaped), else as literals (RFC 3501 4.3 and 9: a quoted string is
    /// 7-bit; a password with 8-bit UTF-8, CR or LF needs a literal). AUTHENTICATE sends the
    /// SASL response in base64 (RFC 4616: UTF-8 bytes), in the command line when the server
    /// has SASL-IR (RFC 4959).
    ///
    /// Errors: [`ImapError::Auth`] for refused credentials (NO with no response code, or
    /// `AUTHENTICATIONFAILED`, `AUTHORIZATIONFAILED`, `EXPIRED`, ...), or LOGINDISABLED
    /// without AUTH=PLAIN; [`ImapError::No`] for a refusal that is not about the credentials
    /// (`[UNAVAILABLE]`, `[SERVERBUG]`, `[INUSE]`, `[LIMIT]`) so callers can retry later;
    /// [`ImapError::NoTls`] on an unencrypted session without `allow_plaintext`. The secret is
    /// never part of an error.
    pub fn login(&mut self, user: &str, secret: &str) -> Result<(), ImapError> {
        if !self.tls && !self.allow_plaintext {
            return Err(ImapError::NoTls("the session is not encrypted".into()));
        }
        match &self.state {
            State::NotAuthenticated => {}
            State::Authenticated => return Err(ImapError::Protocol("already logged in".into())),
            State::Broken(_) => return self.session(),
        }
        let method = match self.auth {
            ImapAuth::Auto if self.caps.has("AUTH=PLAIN") => ImapAuth::Plain,
            ImapAuth::Auto => ImapAuth::Login,
            m => m,
        };
        if method == ImapAuth::Login && self.caps.has("LOGINDISABLED") {
            return Err(ImapError::Auth(
                "the server disabled LOGIN (LOGINDISABLED) and offers no AUTHENTICATE PLAIN".into(),
            ));
        }
        // A NUL cannot be in a LOGIN literal (RFC 3501 9: CHAR8 is %x01-ff) and separates the
        // fields of SASL PLAIN (RFC 4616 2): refused before anything is sent.
        let nul_ok = !matches!(method, ImapAuth::Login | ImapAuth::Auto | ImapAuth::Plain);
        if !nul_ok && (user.contains('\0') || secret.contains('\0')) {
            return Err(ImapError::Auth(
                "the user name or password contains a NUL byte, which IMAP LOGIN and SASL PLAIN cannot carry (RFC 3501 9, RFC 4616 2); nothing was sent".into(),
            ));
        }
        let result = match method {
            ImapAuth::Login | ImapAuth::Auto => self.raw_command(
                "LOGIN",
                &[
                    Arg::Text("LOGIN ".into()),
                    astring(user),
                    Arg::Text(" ".into()),
                    astring(secret),
                ],
            ),
            ImapAuth::Plain => self.authenticate("PLAIN", format!("\0{user}\0{secret}"), ""),
            // On failure the server sends a JSON error as a challenge and waits for an empty
            // response before its tagged NO.
            ImapAuth::XOAuth2 => self.authenticate(
                "XOAUTH2",
                format!("user={user}\x01auth=Bearer {secret}\x01\x01"),
                "",
            ),
            // RFC 7628 3.1; after an error challenge the client sends a lone %x01.
            ImapAuth::OAuthBearer => self.authenticate(
                "OAUTHBEARER",
                format!("n,a={},\x01auth=Bearer {secret}\x01\x01", gs2_escape(user)),
                "\x01",
            ),
        };
        match result {
            Ok((_, text)) => {
                self.state = State::Authenticated;
                match capability_code(&text) {
                    Some(caps) => {
                        self.caps = caps;
                        Ok(())
                    }
                    None => self.refresh_capabilities(),
                }
            }
            Err(e) => Err(login_error(e)),
        }
    }

    /// AUTHENTICATE `mechanism` (RFC 3501 6.2.2) with the SASL response `first` (base64 in the
    /// command line with SASL-IR, else after the server's `+`), then `after` to any further
    /// challenge (an error report, RFC 7628 3.2.3), at most twice.
    fn authenticate(
        &mut self,
        mechanism: &str,
        first: String,
        after: &str,
    ) -> Result<(Vec<Untagged>, String), ImapError> {
        use base64::Engine as _;
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s.as_bytes());
        let command = format!("AUTHENTICATE {mechanism}");
        let mut first = Some(b64(&first));
        let line = if self.caps.has("SASL-IR") {
            format!("{command} {}", first.take().unwrap_or_default())
        } else {
            command.clone()
        };
        let r = self.send_line(&mut true, &line, &command);
        self.check(r)?;
        let mut untagged = Vec::new();
        let mut rounds = 0;
        loop {
            let r = self.next(&command);
            match self.check(r)? {
                Response::Continuation => {
                    rounds += 1;
                    if rounds > 3 {
                        let e = ImapError::Protocol(format!(
                            "the server keeps asking for more after `{command}`"
                        ));
                        return Err(self.broken(e));
                    }
                    let reply = first.take().unwrap_or_else(|| b64(after));
                    let r = self.send_line(&mut false, &reply, &command);
                    self.check(r)?;
                }
                Response::Tagged { status, text, .. } => {
                    let text = Tagged { status, text }.into_result(&command)?;
                    return Ok((untagged, text));
                }
                other => {
                    if let Some(u) = self.note(other, &command)? {
                        untagged.push(u);
                    }
                }
            }
        }
    }

    /// The server's capabilities (re-read after login, as they usually change).
    pub fn capabilities(&self) -> &Capabilities {
        &self.caps
    }

    fn refresh_capabilities(&mut self) -> Result<(), ImapError> {
        let (untagged, _) = self.raw_command("CAPABILITY", &[Arg::Text("CAPABILITY".into())])?;
        let mut tokens = Vec::new();
        for u in untagged.iter().filter(|u| u.name == "CAPABILITY") {
            // Read from the text: a server's trailing space or odd token must not hide the
            // list (Exchange ends it with a space).
            tokens.extend(u.text.split_ascii_whitespace().map(str::to_string));
        }
        self.caps = Capabilities::from_tokens(tokens);
        Ok(())
    }

    /// Turns CONDSTORE on (RFC 7162 3.1): `ENABLE CONDSTORE` when the server has ENABLE, else
    /// CONDSTORE is used implicitly by asking for MODSEQ. Returns whether mod-sequences are
    /// available; afterwards [`examine`](Self::examine) reports HIGHESTMODSEQ and
    /// [`list_messages`](Self::list_messages) MODSEQ. A refused ENABLE leaves CONDSTORE off
    /// (`Ok(false)`).
    pub fn enable_condstore(&mut self) -> Result<bool, ImapError> {
        if !self.caps.has("CONDSTORE") {
            return Ok(false);
        }
        if self.caps.has("ENABLE") {
            match self.raw_command("ENABLE CONDSTORE", &[Arg::Text("ENABLE CONDSTORE".into())]) {
                Ok(_) => {}
                Err(ImapError::No { .. } | ImapError::Bad { .. }) => return Ok(false),
                Err(e) => return Err(e),
            }
        }
        self.condstore = true;
        Ok(true)
    }

    /// All mailboxes: `LIST "" "*"`, with `RETURN (SPECIAL-USE)` when the server has
    /// SPECIAL-USE and LIST-EXTENDED (RFC 6154 / 5258). In the server's order; includes
    /// unselectable names (check [`MailboxInfo::selectable`]). Names are read exactly: quoted
    /// strings unescaped (`\"`, `\\`), literals as sent, 8-bit UTF-8 kept (RFC 6855). A LIST
    /// line that cannot be read is left out and kept for
    /// [`take_unreadable_lines`](Self::take_unreadable_lines), so the caller names it.
    ///
    /// Errors: [`ImapError::No`] / [`ImapError::Bad`] / I/O.
    pub fn list_mailboxes(&mut self) -> Result<Vec<MailboxInfo>, ImapError> {
        let pattern = if self.caps.has("SPECIAL-USE") && self.caps.has("LIST-EXTENDED") {
            "\"*\" RETURN (SPECIAL-USE)"
        } else {
            "\"*\""
        };
        let command = format!("LIST \"\" {pattern}");
        let (untagged, _) = self.raw_command(&command, &[Arg::Text(command.clone())])?;
        let mut out = Vec::new();
        for u in untagged.iter().filter(|u| u.name == "LIST") {
            match u.values.as_deref().and_then(list_entry) {
                Some((attrs, delim, name)) => out.push(MailboxInfo::from_list(&name, delim, attrs)),
                None => self.unreadable.push(esc(&shorten(&u.text))),
            }
        }
        Ok(out)
    }

    /// The LIST lines [`list_mailboxes`](Self::list_mailboxes) could not read since the last
    /// call (escaped, shortened), for the report: their mailboxes are not archived.
    pub fn take_unreadable_lines(&mut self) -> Vec<String> {
        std::mem::take(&mut self.unreadable)
    }

    /// Opens `mb` read-only with EXAMINE (RFC 3501 6.3.2): no flag changes, `\Seen` included.
    ///
    /// Errors: [`ImapError::No`] (e.g. the mailbox was deleted: `[NONEXISTENT]`),
    /// [`ImapError::Unusable`] when the answer has no UIDVALIDITY or one beyond 32 bits (that
    /// mailbox cannot be archived incrementally; the session is fine).
    pub fn examine(&mut self, mb: &MailboxInfo) -> Result<Selected, ImapError> {
        self.open_mailbox(mb, true)
    }

    /// EXAMINE (`read_only`) or SELECT `mb`, and remember it as the mailbox commands act on.
    fn open_mailbox(&mut self, mb: &MailboxInfo, read_only: bool) -> Result<Selected, ImapError> {
        self.selected = None;
        self.examined_wire = None;
        self.nomodseq = false;
        let verb = if read_only { "EXAMINE" } else { "SELECT" };
        let command = format!("{verb} {}", quote(&mb.wire));
        let (untagged, tagged) = self.raw_command(
            &command,
            &[Arg::Text(format!("{verb} ")), astring(&mb.wire)],
        )?;
        // A server that answers EXAMINE with `[READ-WRITE]` opened the mailbox read-write
        // after all: a CLOSE would then expunge its messages marked \Deleted (RFC 3501 6.4.2).
        self.examined_read_write = read_only
            && tagged
                .trim_start()
                .to_ascii_uppercase()
                .starts_with("[READ-WRITE]");
        let mut uidvalidity: Option<Result<u32, String>> = None;
        let mut sel = Selected {
            uidvalidity: 0,
            uidnext: None,
            exists: 0,
            highestmodseq: None,
        };
        for u in &untagged {
            match (u.name.as_str(), u.number) {
                ("EXISTS", Some(n)) => sel.exists = u32::try_from(n).unwrap_or(u32::MAX),
                ("OK", _) => match u.code() {
                    Some((code, args)) if code == "UIDVALIDITY" => {
                        uidvalidity = Some(args.parse().map_err(|_| args.clone()));
                    }
                    Some((code, args)) if code == "UIDNEXT" => sel.uidnext = args.parse().ok(),
                    Some((code, args)) if code == "HIGHESTMODSEQ" => {
                        sel.highestmodseq = args.parse().ok();
                    }
                    Some((code, _)) if code == "NOMODSEQ" => self.nomodseq = true,
                    _ => {}
                },
                _ => {}
            }
        }
        if self.nomodseq {
            sel.highestmodseq = None;
        }
        sel.uidvalidity = match uidvalidity {
            Some(Ok(v)) => v,
            Some(Err(sent)) => {
                return Err(ImapError::Unusable {
                    command,
                    text: format!(
                        "UIDVALIDITY `{}` is not a 32-bit number (RFC 3501 nz-number)",
                        esc(&shorten(&sent))
                    ),
                })
            }
            None => {
                return Err(ImapError::Unusable {
                    command,
                    text: "the answer has no UIDVALIDITY".into(),
                })
            }
        };
        self.selected = Some(sel);
        if read_only {
            self.examined_wire = Some(mb.wire.clone());
        }
        Ok(sel)
    }

    /// STATUS (MESSAGES UIDNEXT UIDVALIDITY [HIGHESTMODSEQ]) of `mb` (RFC 3501 6.3.10); does
    /// not change the selected mailbox. Do not use it on the examined mailbox. The answer is
    /// matched by its decoded name (a server may quote or escape it differently than we
    /// sent it). When a CONDSTORE server refuses HIGHESTMODSEQ (`BAD`/`NO`), STATUS is asked
    /// again without it and CONDSTORE is off for the session.
    ///
    /// Returns `Ok(None)` when the answer cannot tell whether the mailbox changed: no STATUS
    /// line for it, `STATUS name ()`, no UIDVALIDITY or MESSAGES, or a number beyond 32 bits.
    /// Callers then EXAMINE and list the mailbox.
    ///
    /// Errors: [`ImapError::No`] / [`ImapError::Bad`] (that mailbox), I/O.
    pub fn status(&mut self, mb: &MailboxInfo) -> Result<Option<Status>, ImapError> {
        loop {
            let items = if self.caps.has("CONDSTORE") && !self.modseq_refused {
                "(MESSAGES UIDNEXT UIDVALIDITY HIGHESTMODSEQ)"
            } else {
                "(MESSAGES UIDNEXT UIDVALIDITY)"
            };
            let command = format!("STATUS {} {items}", quote(&mb.wire));
            let r = self.raw_command(
                &command,
                &[
                    Arg::Text("STATUS ".into()),
                    astring(&mb.wire),
                    Arg::Text(format!(" {items}")),
                ],
            );
            let untagged = match r {
                Ok((u, _)) => u,
                Err(ImapError::Bad { .. } | ImapError::No { .. })
                    if items.contains("HIGHESTMODSEQ") =>
                {
                    // A server announcing CONDSTORE that does not take HIGHESTMODSEQ here.
                    self.condstore = false;
                    self.modseq_refused = true;
                    continue;
                }
                Err(e) => return Err(e),
            };
            return Ok(untagged
                .iter()
                .filter(|u| u.name == "STATUS")
                .filter_map(|u| status_entry(u.values.as_deref()?))
                .filter(|(name, _)| {
                    name == mb.wire.as_bytes()
                        || (mb.name.is_inbox() && name.eq_ignore_ascii_case(b"INBOX"))
                })
                .map(|(_, s)| s)
                .next_back()
                .flatten());
        }
    }

    /// [`status`](Self::status), or when its answer cannot be used, the same numbers from an
    /// EXAMINE of `mb` (which then is the examined mailbox).
    ///
    /// Errors: as [`status`](Self::status) and [`examine`](Self::examine).
    pub fn status_or_examine(&mut self, mb: &MailboxInfo) -> Result<Status, ImapError> {
        if let Some(st) = self.status(mb)? {
            return Ok(st);
        }
        let sel = self.examine(mb)?;
        Ok(Status {
            messages: sel.exists,
            uidnext: sel.uidnext,
            uidvalidity: sel.uidvalidity,
            highestmodseq: sel.highestmodseq,
        })
    }

    /// Lists the messages of the examined mailbox: `UID FETCH 1:* (UID FLAGS RFC822.SIZE
    /// INTERNALDATE [MODSEQ]) [(CHANGEDSINCE n)]` (RFC 3501 6.4.8, RFC 7162 3.1.4). With
    /// `changed_since` (needs [`enable_condstore`](Self::enable_condstore)) only messages
    /// whose MODSEQ is above it. Sorted by UID. An empty mailbox gives `Ok(vec![])`. MODSEQ is
    /// not asked for in a `NOMODSEQ` mailbox; a server that refuses it (`BAD`, `NO
    /// [CANNOT]`) is asked again without it, and CONDSTORE is off for the rest of the session.
    ///
    /// Errors: [`ImapError::Protocol`] when no mailbox is examined, `changed_since` is given
    /// without CONDSTORE, or a message comes without RFC822.SIZE / a parseable INTERNALDATE.
    pub fn list_messages(&mut self, changed_since: Option<u64>) -> Result<Vec<Listed>, ImapError> {
        let sel = self
            .selected
            .ok_or_else(|| ImapError::Protocol("no mailbox is examined".into()))?;
        if changed_since.is_some() && !self.condstore {
            return Err(ImapError::Protocol(
                "CHANGEDSINCE needs CONDSTORE (call enable_condstore first)".into(),
            ));
        }
        if sel.exists == 0 {
            return Ok(Vec::new());
        }
        let with_modseq = self.condstore && !self.nomodseq && !self.modseq_refused;
        let mut query = String::from("(UID FLAGS RFC822.SIZE INTERNALDATE");
        if with_modseq {
            query.push_str(" MODSEQ");
        }
        query.push(')');
        if let (Some(n), true) = (changed_since, with_modseq) {
            query.push_str(&format!(" (CHANGEDSINCE {n})"));
        }
        let command = format!("UID FETCH 1:* {query}");
        let mut merged = Merger::default();
        let r = self.stream_fetch::<ImapError>(&command, &mut |items, expunged| {
            merged.add(items, expunged);
            Ok(())
        });
        match r {
            Ok(()) => {}
            Err(ImapError::Bad { .. } | ImapError::No { .. }) if with_modseq => {
                // A server that announces CONDSTORE and refuses MODSEQ (`BAD [CANNOT]`,
                // `NO`): a plain listing, everything compared.
                self.condstore = false;
                self.modseq_refused = true;
                return self.list_messages(None);
            }
            Err(e) => return Err(e),
        }
        let mut out = Vec::with_capacity(merged.by_key.len());
        let now = now_secs();
        for m in merged.by_key.into_values() {
            let Some(uid) = m.uid else { continue };
            let size = m.size.ok_or_else(|| missing("RFC822.SIZE", uid))?;
            let date = m.date(now);
            out.push(Listed {
                uid,
                flags: m.flags.unwrap_or_default(),
                size,
                internal_date: date.as_ref().ok().copied(),
                bad_internal_date: date.err(),
                modseq: m.modseq,
            });
        }
        out.sort_by_key(|l| l.uid);
        out.dedup_by_key(|l| l.uid);
        Ok(out)
    }

    /// Fetches the messages with these UIDs from the examined mailbox: `UID FETCH <set> (UID
    /// FLAGS INTERNALDATE RFC822.SIZE BODY.PEEK[])` (PEEK: `\Seen` is not set), the set
    /// compressed into ranges (`1:5,9,12:20`), and calls `f` once per message as soon as it
    /// has arrived, in the order the server sends them (ascending sequence numbers, which is
    /// UID order; callers must not rely on it). The answer is read as a stream
    /// ([`crate::protocol::imap::reader`]): memory holds one message (plus a message whose FLAGS or
    /// INTERNALDATE come in a later response, until they do or the command ends), not the
    /// batch. A server's split responses for one message are merged by sequence number (RFC
    /// 3501 7.4.2, case 17); the last non-empty FLAGS before the body wins.
    ///
    /// Returns the requested UIDs the server did not return (expunged meanwhile), sorted.
    ///
    /// Errors: the first error of `f` (the rest of the answer is read and dropped, so the
    /// session stays usable), or an [`ImapError`] converted with `E::from`: a tagged `NO` /
    /// `BAD` ([`ImapError::No`], [`ImapError::Bad`]) after the messages that came before it
    /// were delivered; [`ImapError::Io`] when the connection fails (naming the UID whose
    /// literal was cut short); [`ImapError::Bye`]; [`ImapError::Protocol`] for a malformed
    /// response (naming the UID when known) or a body without a valid INTERNALDATE. After
    /// `Io`, `Bye` and `Protocol` the session is unusable.
    pub fn fetch_bodies<E: From<ImapError>>(
        &mut self,
        uids: &[u32],
        f: &mut dyn FnMut(Fetched<'_>) -> Result<(), E>,
    ) -> Result<Vec<u32>, E> {
        if uids.is_empty() {
            return Ok(Vec::new());
        }
        if self.selected.is_none() {
            return Err(ImapError::Protocol("no mailbox is examined".into()).into());
        }
        let set = uid_set(uids);
        let command = format!("UID FETCH {set} (UID FLAGS INTERNALDATE RFC822.SIZE BODY.PEEK[])");
        let wanted: BTreeSet<u32> = uids.iter().copied().collect();
        let mut got = BTreeSet::new();
        let mut merged = Merger::default();
        let now = now_secs();
        // Hands over a message once its body, UID, FLAGS and INTERNALDATE (readable or not)
        // are all known.
        let mut deliver =
            |m: Merged, last: bool, got: &mut BTreeSet<u32>| -> Result<Option<Merged>, E> {
                let Some(uid) = m.uid.filter(|_| m.has_body()) else {
                    return Ok(Some(m));
                };
                if !last && (m.flags.is_none() || m.internal_date_sent.is_none()) {
                    return Ok(Some(m));
                }
                if !wanted.contains(&uid) || got.contains(&uid) {
                    return Ok(None);
                }
                let date = m.date(now);
                let no_body = match &m.body {
                    None => Some("BODY[] NIL".to_string()),
                    Some(b) if b.is_empty() => Some("an empty BODY[] (0 octets)".to_string()),
                    Some(_) => None,
                };
                let body = m.body.unwrap_or_default();
                got.insert(uid);
                f(Fetched {
                    uid,
                    flags: m.flags.unwrap_or_default(),
                    internal_date: date.as_ref().ok().copied(),
                    bad_internal_date: date.err(),
                    no_body,
                    size: m.size.unwrap_or(body.len() as u64),
                    body: &body,
                })?;
                Ok(None)
            };
        self.stream_fetch::<E>(&command, &mut |items, expunged| {
            let key = merged.add(items, expunged);
            if let Some(k) = key {
                if merged.by_key.get(&k).is_some_and(Merged::has_body) {
                    if let Some(m) = merged.by_key.remove(&k) {
                        if let Some(back) = deliver(m, false, &mut got)? {
                            merged.by_key.insert(k, back);
                        }
                    }
                }
            }
            Ok(())
        })?;
        // Bodies whose FLAGS or INTERNALDATE never came: delivered with what is known.
        for m in std::mem::take(&mut merged.by_key).into_values() {
            deliver(m, true, &mut got)?;
        }
        Ok(wanted.difference(&got).copied().collect())
    }

    /// Sends `command` (a `UID FETCH`) and reads its answer as a stream: each FETCH response
    /// goes to `on` with whether an EXPUNGE or VANISHED came before it (sequence numbers may
    /// have moved); EXISTS updates the examined mailbox. After an error of `on`, the rest of
    /// the answer is read and dropped and that error returned.
    fn stream_fetch<E: From<ImapError>>(
        &mut self,
        command: &str,
        on: &mut dyn FnMut(FetchItems, bool) -> Result<(), E>,
    ) -> Result<(), E> {
        let r = self.send_line(&mut true, command, command);
        self.check(r)?;
        let mut parser = Parser::new();
        let mut expunged = false;
        let mut failed: Option<E> = None;
        loop {
            let r = self.stream.next_response(&mut parser);
            let resp = match r {
                Ok(resp) => resp,
                Err(e) => {
                    let e = self.stream_error(e, &parser, command);
                    return Err(failed.unwrap_or_else(|| e.into()));
                }
            };
            match resp {
                Response::Fetch(items) => {
                    if failed.is_none() {
                        if let Err(e) = on(items, expunged) {
                            failed = Some(e);
                        }
                    }
                }
                Response::Exists(n) => {
                    if let Some(sel) = &mut self.selected {
                        sel.exists = n;
                    }
                }
                Response::Expunge(_) | Response::Vanished { earlier: false } => expunged = true,
                Response::Vanished { earlier: true } | Response::Other(_) => {}
                Response::UidValidity(n) => {
                    // The mailbox was recreated during the command: nothing after this point
                    // may be taken for a message of the examined mailbox.
                    let old = self.selected.map(|s| s.uidvalidity);
                    if failed.is_none() && old.is_some_and(|o| o != n) {
                        failed = Some(
                            ImapError::No {
                                command: command.to_string(),
                                text: format!(
                                    "[UIDVALIDITY {n}] (untagged, during the command) the mailbox was recreated: UIDVALIDITY changed from {} to {n}; nothing from this answer is stored after that point",
                                    old.unwrap_or_default()
                                ),
                            }
                            .into(),
                        );
                    }
                }
                Response::Bye(text) => {
                    let e = self
                        .check::<()>(Err(ImapError::Bye(bye_text(text))))
                        .unwrap_err();
                    return Err(failed.unwrap_or_else(|| e.into()));
                }
                Response::Continuation => {
                    let e = self.broken(ImapError::Protocol(format!(
                        "the server asked for a continuation nobody announced, answering `{command}`"
                    )));
                    return Err(failed.unwrap_or_else(|| e.into()));
                }
                Response::Tagged { status, text, .. } => {
                    if let Some(e) = failed {
                        return Err(e);
                    }
                    Tagged { status, text }.into_result(command)?;
                    return Ok(());
                }
            }
        }
    }

    /// The error for a FETCH answer that could not be read to its end; the session is marked
    /// unusable (it is out of step with the server).
    fn stream_error(&mut self, e: NextError, parser: &Parser, command: &str) -> ImapError {
        let during = match (parser.uid_hint(), parser.literal_progress()) {
            (Some(uid), Some((got, want))) => {
                format!(" while receiving UID {uid} ({got} of {want} octets)")
            }
            (Some(uid), None) => format!(" while receiving UID {uid}"),
            (None, Some((got, want))) => {
                format!(" in the middle of a literal ({got} of {want} octets)")
            }
            (None, None) if parser.in_progress() => " in the middle of a response".into(),
            (None, None) => String::new(),
        };
        let e = match e {
            NextError::Io(e) => {
                let e = net::readable_io_error(e, self.io_timeout);
                ImapError::Io(io::Error::new(e.kind(), format!("{e}{during}")))
            }
            NextError::Eof => ImapError::Io(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("connection closed by server{during}"),
            )),
            NextError::Parse(_) if parser.refused_literal().is_some() => {
                let (size, limit) = parser.refused_literal().unwrap_or_default();
                ImapError::TooLarge {
                    uid: parser.uid_hint(),
                    size,
                    limit,
                }
            }
            NextError::Parse(p) => {
                ImapError::Protocol(format!("answering `{}`: {p}", shorten(command)))
            }
        };
        self.broken(e)
    }

    /// Marks the session unusable after `e` and returns it.
    fn broken(&mut self, e: ImapError) -> ImapError {
        self.state = State::Broken(e.to_string());
        self.selected = None;
        self.examined_wire = None;
        e
    }

    /// The quota roots of `mb` with their resources: GETQUOTAROOT (RFC 9208 4.3 / RFC 2087
    /// 4.3). `Ok(vec![])` when the server does not announce QUOTA.
    pub fn quota_roots(&mut self, mb: &MailboxInfo) -> Result<Vec<QuotaRoot>, ImapError> {
        if !self.caps.has("QUOTA") {
            return Ok(Vec::new());
        }
        let command = format!("GETQUOTAROOT {}", quote(&mb.wire));
        let (untagged, _) = self.raw_command(
            &command,
            &[Arg::Text("GETQUOTAROOT ".into()), astring(&mb.wire)],
        )?;
        let mut roots: Vec<QuotaRoot> = Vec::new();
        for u in untagged.iter().filter(|u| u.name == "QUOTAROOT") {
            for r in u.values.iter().flatten().skip(1).filter_map(Value::text) {
                if !roots.iter().any(|x| x.name == r) {
                    roots.push(QuotaRoot {
                        name: r,
                        resources: Vec::new(),
                    });
                }
            }
        }
        for u in untagged.iter().filter(|u| u.name == "QUOTA") {
            let Some(values) = u.values.as_deref() else {
                continue;
            };
            let (Some(root), Some(Value::List(list))) =
                (values.first().and_then(Value::text), values.get(1))
            else {
                continue;
            };
            let resources: Vec<QuotaResource> = list
                .chunks(3)
                .filter_map(|c| match c {
                    [name, usage, limit] => Some(QuotaResource {
                        name: name.text()?.to_ascii_uppercase(),
                        usage: usage.number()?,
                        limit: limit.number()?,
                    }),
                    _ => None,
                })
                .collect();
            match roots.iter_mut().find(|x| x.name == root) {
                Some(x) => x.resources.extend(resources),
                None => roots.push(QuotaRoot {
                    name: root,
                    resources,
                }),
            }
        }
        Ok(roots)
    }

    /// LOGOUT (RFC 3501 6.1.3) and close. A session that never logged in is just closed.
    pub fn logout(mut self) -> Result<(), ImapError> {
        match self.state {
            State::Authenticated => match self.raw_command("LOGOUT", &[Arg::Text("LOGOUT".into())])
            {
                // The BYE that announces the end of the session is expected.
                Ok(_) | Err(ImapError::Bye(_)) => Ok(()),
                Err(e) => Err(e),
            },
            State::NotAuthenticated | State::Broken(_) => Ok(()),
        }
    }

    /// `Ok` when logged in and usable.
    fn session(&mut self) -> Result<(), ImapError> {
        match &self.state {
            State::Authenticated => Ok(()),
            State::NotAuthenticated => Err(ImapError::Protocol("not logged in".into())),
            State::Broken(why) => Err(ImapError::Io(io::Error::other(format!(
                "the connection is unusable after an earlier error ({why})"
            )))),
        }
    }

    /// Marks the session broken after an I/O or protocol-synchronisation error.
    fn check<T>(&mut self, r: Result<T, ImapError>) -> Result<T, ImapError> {
        if let Err(e) = &r {
            if matches!(
                e,
                ImapError::Io(_)
                    | ImapError::Bye(_)
                    | ImapError::Protocol(_)
                    | ImapError::TooLarge { .. }
            ) && !self.is_broken()
            {
                self.state = State::Broken(e.to_string());
                self.selected = None;
                self.examined_wire = None;
            }
        }
        r
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

/// The current time, seconds since the UNIX epoch.
fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
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
pub(crate) fn list_entry(values: &[Value]) -> Option<(Vec<String>, Option<char>, String)> {
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
pub(crate) fn check_greeting(line: &str) -> Result<(), ImapError> {
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
pub(crate) fn parse_namespace(data: &[u8]) -> Option<Namespace> {
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
pub(crate) fn parse_list(data: &[u8]) -> Option<(String, Option<char>)> {
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
pub(crate) fn parse_appenduid(text: &str) -> (Option<u32>, Option<u32>) {
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

impl ImapClient {
    /// The personal namespace: the first personal namespace of NAMESPACE (RFC 2342) when the
    /// server has it, else prefix `""` and the delimiter of [`delimiter`](Self::delimiter).
    /// A NAMESPACE whose personal namespace is `NIL` or has no delimiter gets the LIST one.
    /// Cached for the session.
    pub fn personal_namespace(&mut self) -> Result<Namespace, ImapError> {
        if let Some(ns) = &self.namespace {
            return Ok(ns.clone());
        }
        let mut ns = None;
        if self.caps.has("NAMESPACE") {
            let (untagged, _) = self.raw_command("NAMESPACE", &[Arg::Text("NAMESPACE".into())])?;
            ns = untagged
                .iter()
                .filter(|u| u.name == "NAMESPACE")
                .find_map(|u| namespace_entry(u.values.as_deref()?));
        }
        let ns = match ns {
            Some(n) if n.delimiter.is_some() => n,
            Some(n) => Namespace {
                prefix: n.prefix,
                delimiter: self.delimiter()?,
            },
            None => Namespace {
                prefix: String::new(),
                delimiter: self.delimiter()?,
            },
        };
        self.namespace = Some(ns.clone());
        Ok(ns)
    }

    /// The hierarchy delimiter: `LIST "" ""` (RFC 3501 6.3.8); `None` for a flat namespace
    /// (`NIL`, or no answer line). Cached for the session.
    pub fn delimiter(&mut self) -> Result<Option<char>, ImapError> {
        if let Some(d) = self.delimiter {
            return Ok(d);
        }
        let (untagged, _) =
            self.raw_command("LIST \"\" \"\"", &[Arg::Text("LIST \"\" \"\"".into())])?;
        let d = untagged
            .iter()
            .filter(|u| u.name == "LIST")
            .find_map(|u| list_entry(u.values.as_deref()?))
            .and_then(|(_, d, _)| d);
        self.delimiter = Some(d);
        Ok(d)
    }

    /// True when `LIST "" <wire_name>` names the mailbox (INBOX case-insensitively).
    fn mailbox_exists(&mut self, wire_name: &str) -> Result<bool, ImapError> {
        let command = format!("LIST \"\" {}", quote(wire_name));
        let (untagged, _) = self.raw_command(
            &command,
            &[Arg::Text("LIST \"\" ".into()), astring(wire_name)],
        )?;
        Ok(untagged
            .iter()
            .filter(|u| u.name == "LIST")
            .filter_map(|u| list_entry(u.values.as_deref()?))
            .any(|(_, _, name)| {
                name == wire_name
                    || (name.eq_ignore_ascii_case("INBOX")
                        && wire_name.eq_ignore_ascii_case("INBOX"))
            }))
    }

    /// CREATE (RFC 3501 6.3.3) of `wire_name` (from [`mailbox_wire_name`]) and of its missing
    /// parents, each level under the namespace prefix (servers should create parents
    /// themselves; not all do). Returns `true` when `wire_name` was created, `false` when it
    /// already existed (INBOX always does; `NO [ALREADYEXISTS]`, or a `NO` after which LIST
    /// shows the name).
    ///
    /// Errors: the server's `NO` to the CREATE of `wire_name` or a parent when the name does
    /// not exist afterwards ([`ImapError::No`], e.g. `[CANNOT]`, `[NOPERM]`, `[OVERQUOTA]`).
    pub fn create_mailbox(&mut self, wire_name: &str) -> Result<bool, ImapError> {
        if wire_name.eq_ignore_ascii_case("INBOX") || self.mailbox_exists(wire_name)? {
            return Ok(false);
        }
        let delim = self.delimiter()?;
        let prefix = self.personal_namespace()?.prefix;
        if let Some(d) = delim {
            // Parents: every proper prefix ending before a delimiter, beyond the namespace
            // prefix (`INBOX.` itself is not created).
            let mut parents = Vec::new();
            for (i, c) in wire_name.char_indices() {
                if c == d && i > 0 && i + c.len_utf8() < wire_name.len() {
                    let parent = &wire_name[..i];
                    let is_prefix = prefix.trim_end_matches(d) == parent;
                    if !is_prefix && !parent.eq_ignore_ascii_case("INBOX") {
                        parents.push(parent.to_string());
                    }
                }
            }
            for p in parents {
                if !self.mailbox_exists(&p)? {
                    self.create_one(&p)?;
                }
            }
        }
        self.create_one(wire_name)
    }

    /// One CREATE; `Ok(false)` when the name turns out to exist.
    fn create_one(&mut self, wire_name: &str) -> Result<bool, ImapError> {
        let command = format!("CREATE {}", quote(wire_name));
        match self.raw_command(&command, &[Arg::Text("CREATE ".into()), astring(wire_name)]) {
            Ok(_) => Ok(true),
            Err(e @ ImapError::No { .. }) => {
                if e.response_code().as_deref() == Some("ALREADYEXISTS")
                    || self.mailbox_exists(wire_name)?
                {
                    Ok(false)
                } else {
                    Err(e)
                }
            }
            Err(e) => Err(e),
        }
    }

    /// APPENDLIMIT=N from the capabilities (RFC 7889): the largest message the server takes.
    /// `None` without a global limit.
    pub fn append_limit(&self) -> Option<u64> {
        self.caps
            .iter()
            .find_map(|c| c.strip_prefix("APPENDLIMIT="))
            .and_then(|n| n.parse().ok())
    }

    /// APPEND (RFC 3501 6.3.11) of one message to `wire_mailbox` (a wire name: see
    /// [`mailbox_wire_name`]), with `flags` (system flags and keywords; `\Deleted` is sent if
    /// present, deciding about it is the caller's job; keywords that are not atoms are left
    /// out and listed in [`Appended::dropped_keywords`]) and `internal_date` (seconds since
    /// the Unix epoch) as `"dd-Mon-yyyy hh:mm:ss +0000"` (case 19). `None` lets the server
    /// use the current time: pass it only on purpose.
    ///
    /// `raw_crlf` is sent byte for byte (CRLF line ends: see [`crate::core::message::lf_to_crlf`]),
    /// as a `{N+}` literal when the server has LITERAL+ (or LITERAL- and N <= 4096) and N <=
    /// [`NONSYNC_LITERAL_MAX`], else as a synchronising `{N}` literal (the server can then
    /// refuse before the data is sent). Nothing is retried here.
    ///
    /// Errors:
    /// - over the server's APPENDLIMIT: `ImapError::No` with text `[TOOBIG] ...`, nothing sent
    ///   ([`ImapError::is_too_big`]);
    /// - the server's `NO` as [`ImapError::No`] with its text and response code as sent
    ///   (`[TOOBIG] Message too large`, `[TRYCREATE]`, `[OVERQUOTA]`, throttling: see
    ///   [`ImapError::is_permanent_refusal`], [`ImapError::suggested_backoff`]);
    /// - `internal_date` not expressible (year outside 0-9999): [`ImapError::Protocol`],
    ///   nothing sent;
    /// - I/O errors and `BYE` while the command is in flight: the outcome is **unknown** (the
    ///   server may have stored the message, case 23); reconnect and look for it
    ///   ([`search_message_id`](Self::search_message_id), or size + INTERNALDATE with
    ///   [`list_messages`](Self::list_messages)) before appending again.
    pub fn append(
        &mut self,
        wire_mailbox: &str,
        raw_crlf: &[u8],
        flags: &Flags,
        internal_date: Option<i64>,
    ) -> Result<Appended, ImapError> {
        self.append_dated(
            wire_mailbox,
            raw_crlf,
            flags,
            internal_date.map(AppendDate::from),
        )
    }

    /// [`append`](Self::append) with the date written in a given zone (`date.offset`), e.g.
    /// that of the message's `Date:` header.
    pub fn append_dated(
        &mut self,
        wire_mailbox: &str,
        raw_crlf: &[u8],
        flags: &Flags,
        internal_date: Option<AppendDate>,
    ) -> Result<Appended, ImapError> {
        let (command, args, dropped) =
            self.append_command(wire_mailbox, raw_crlf, flags, internal_date)?;
        self.note_append(wire_mailbox);
        let (_, text) = self.raw_command(&command, &args)?;
        let (uidvalidity, uid) = parse_appenduid(&text);
        Ok(Appended {
            uidvalidity,
            uid,
            dropped_keywords: dropped,
        })
    }

    /// Several APPENDs to one mailbox, pipelined: with LITERAL+ up to 64 commands (8 MiB) are
    /// sent before their answers are read, which saves a round trip per message. Messages
    /// too big for a non-synchronising literal, and all messages on a server without LITERAL+,
    /// are appended one at a time as by [`append`](Self::append). When the server has
    /// MULTIAPPEND (RFC 3502), each window goes as one command (one server transaction); if
    /// the server refuses it (nothing is stored then), the window's messages are sent again as
    /// single pipelined APPENDs, so a refused message gets its own answer.
    ///
    /// Returns one result per item, in order, each as [`append`](Self::append) would give it.
    /// When the connection fails, the items whose answer did not arrive get an
    /// [`ImapError::Io`] / [`ImapError::Bye`] (outcome unknown: check the server before
    /// appending them again) and the session is unusable; the outer `Err` is only for a
    /// session that was unusable from the start.
    ///
    /// Answers are matched to commands in the order sent (servers complete APPENDs in order).
    pub fn append_many(
        &mut self,
        wire_mailbox: &str,
        items: &[AppendItem<'_>],
    ) -> Result<Vec<Result<Appended, ImapError>>, ImapError> {
        self.session()?;
        let mut results: Vec<Option<Result<Appended, ImapError>>> =
            (0..items.len()).map(|_| None).collect();
        let mut i = 0;
        while i < items.len() {
            if matches!(self.state, State::Broken(_)) {
                for r in results.iter_mut().skip(i) {
                    *r = Some(Err(self.outcome_unknown()));
                }
                break;
            }
            if !self.nonsync(items[i].0.len()) {
                let (raw, flags, date) = items[i];
                results[i] = Some(self.append_dated(wire_mailbox, raw, flags, date));
                i += 1;
                continue;
            }
            // A window of non-synchronising APPENDs.
            let mut window = Vec::new();
            let mut bytes = 0;
            while i < items.len()
                && window.len() < PIPELINE_MAX_COMMANDS
                && self.nonsync(items[i].0.len())
                && (window.is_empty() || bytes + items[i].0.len() <= PIPELINE_MAX_BYTES)
            {
                bytes += items[i].0.len();
                window.push(i);
                i += 1;
            }
            self.note_append(wire_mailbox);
            if window.len() >= 2 && self.caps.has("MULTIAPPEND") {
                // The window as one command; when the server refuses it as a whole (nothing is
                // stored, RFC 3502 section 6.3.11), its messages go one by one below, so each
                // gets its own answer.
                if let Some(done) = self.multiappend(wire_mailbox, items, &window) {
                    for (k, r) in window.iter().zip(done) {
                        results[*k] = Some(r);
                    }
                    continue;
                }
            }
            let mut sent = Vec::new();
            for &k in &window {
                let (raw, flags, date) = items[k];
                match self.append_command(wire_mailbox, raw, flags, date) {
                    Err(e) => results[k] = Some(Err(e)),
                    Ok((command, args, dropped)) => {
                        let r = self.send_command(&command, &args);
                        match self.check(r) {
                            Ok(None) => sent.push((k, command, dropped)),
                            // Only a synchronising literal waits for an answer.
                            Ok(Some(_)) => {
                                results[k] = Some(Err(ImapError::Protocol(format!(
                                    "the server answered `{command}` before its literal was sent"
                                ))));
                                break;
                            }
                            Err(e) => {
                                results[k] = Some(Err(e));
                                break;
                            }
                        }
                    }
                }
            }
            for (k, command, dropped) in sent {
                let r = self.read_tagged(&command, &mut Vec::new());
                let r = self.check(r).and_then(|t| t.into_result(&command));
                results[k] = Some(r.map(|text| {
                    let (uidvalidity, uid) = parse_appenduid(&text);
                    Appended {
                        uidvalidity,
                        uid,
                        dropped_keywords: dropped,
                    }
                }));
            }
            // Anything sent but unanswered after a failure: outcome unknown.
            for &k in &window {
                if results[k].is_none() {
                    results[k] = Some(Err(self.outcome_unknown()));
                }
            }
        }
        Ok(results
            .into_iter()
            .map(|r| r.unwrap_or_else(|| Err(ImapError::Protocol("not sent".into()))))
            .collect())
    }

    /// The messages `window` of `items` in one MULTIAPPEND command (RFC 3502): one server
    /// transaction for the set, so one round of the server's fsyncs instead of one per
    /// message. Every literal is non-synchronising (the caller checked). Returns one result
    /// per message of the window, each UID taken from the tagged OK's `[APPENDUID v uid-set]`
    /// (RFC 4315 section 3: the set lists the new UIDs in the order of the messages; a set of
    /// another size gives no UIDs); `None` when the server refused the command (`NO`/`BAD`:
    /// nothing of it is stored) or a message failed a check made before sending (APPENDLIMIT,
    /// date), so the caller appends them one by one. A connection failure gives every message
    /// an outcome-unknown error.
    fn multiappend(
        &mut self,
        wire_mailbox: &str,
        items: &[AppendItem<'_>],
        window: &[usize],
    ) -> Option<Vec<Result<Appended, ImapError>>> {
        let mut args = vec![Arg::Text("APPEND ".into()), astring(wire_mailbox)];
        let mut dropped = Vec::new();
        for &k in window {
            let (raw, flags, date) = items[k];
            let (_, one, d) = self.append_command(wire_mailbox, raw, flags, date).ok()?;
            // `APPEND <mailbox>` then, per message, ` (flags) "date" ` and its literal.
            args.extend(one.into_iter().skip(2));
            dropped.push(d);
        }
        let command = format!(
            "APPEND {} (MULTIAPPEND of {} messages)",
            quote(wire_mailbox),
            window.len()
        );
        let unknown = |me: &mut Self| {
            let n = window.len();
            Some((0..n).map(|_| Err(me.outcome_unknown())).collect())
        };
        let r = self.send_command(&command, &args);
        match self.check(r) {
            Ok(None) => {}
            Ok(Some(_)) | Err(_) => return unknown(self),
        }
        let r = self.read_tagged(&command, &mut Vec::new());
        let text = match self.check(r) {
            Ok(t) => match t.into_result(&command) {
                Ok(text) => text,
                Err(ImapError::No { .. } | ImapError::Bad { .. }) => return None,
                Err(_) => return unknown(self),
            },
            Err(_) => return unknown(self),
        };
        let (uidvalidity, uids) = match parse_appenduid_set(&text, window.len()) {
            Some((v, uids)) => (Some(v), uids.into_iter().map(Some).collect()),
            None => (None, vec![None; window.len()]),
        };
        Some(
            uids.into_iter()
                .zip(dropped)
                .map(|(uid, dropped_keywords)| {
                    Ok(Appended {
                        uidvalidity: uid.and(uidvalidity),
                        uid,
                        dropped_keywords,
                    })
                })
                .collect(),
        )
    }

    /// The APPEND command's arguments for one message, after the checks that need no server
    /// (APPENDLIMIT, date). Returns (command for errors, args, dropped keywords).
    #[allow(clippy::type_complexity)]
    fn append_command<'a>(
        &self,
        wire_mailbox: &'a str,
        raw_crlf: &'a [u8],
        flags: &Flags,
        internal_date: Option<AppendDate>,
    ) -> Result<(String, Vec<Arg<'a>>, Vec<String>), ImapError> {
        let size = raw_crlf.len();
        let command = format!("APPEND {} {{{size}}}", quote(wire_mailbox));
        if let Some(limit) = self.append_limit() {
            if size as u64 > limit {
                return Err(ImapError::No {
                    command,
                    text: format!(
                        "[TOOBIG] the message is {size} octets, above the server's APPENDLIMIT \
                         of {limit} octets (not sent)"
                    ),
                });
            }
        }
        let mut dropped = Vec::new();
        let mut list = Vec::new();
        for f in flags.iter() {
            match f {
                Flag::Keyword(k) if !is_atom(k) => dropped.push(k.clone()),
                f => list.push(f.to_imap()),
            }
        }
        let date = match internal_date {
            None => String::new(),
            Some(AppendDate { secs, offset }) => {
                let d = imap_date_time(secs, offset).ok_or_else(|| {
                    ImapError::Protocol(format!(
                        "INTERNALDATE {secs} (seconds since 1970) cannot be written as an IMAP \
                         date-time; nothing was sent for `{command}`"
                    ))
                })?;
                format!(" \"{d}\"")
            }
        };
        let mut args = vec![Arg::Text("APPEND ".into()), astring(wire_mailbox)];
        args.push(Arg::Text(format!(" ({}){date} ", list.join(" "))));
        args.push(Arg::Literal(raw_crlf));
        Ok((command, args, dropped))
    }

    /// The error for an APPEND whose answer never came (the session failed meanwhile).
    fn outcome_unknown(&mut self) -> ImapError {
        let why = match &self.state {
            State::Broken(why) => why.clone(),
            _ => "an earlier command failed".into(),
        };
        ImapError::Io(io::Error::other(format!(
            "no answer to this APPEND, the message may or may not be stored ({why})"
        )))
    }

    /// Before an APPEND to `wire_mailbox`: when that is the examined mailbox, leave it first
    /// (UNSELECT, RFC 3691, when announced; else CLOSE, which after EXAMINE removes nothing,
    /// RFC 3501 6.4.2). Courier-IMAP 5.0 refuses an APPEND to the mailbox it has open
    /// read-only (`NO Current box is selected READ-ONLY.`), which RFC 3501 6.3.11 allows. The
    /// next search EXAMINEs the mailbox again. A refused UNSELECT/CLOSE is ignored (the APPEND
    /// then tells); a lost connection leaves the session broken, as any command does.
    fn note_append(&mut self, wire_mailbox: &str) {
        if self.examined_wire.as_deref() == Some(wire_mailbox) {
            let verb = if self.caps.has("UNSELECT") {
                Some("UNSELECT")
            } else if self.examined_read_write {
                // Opened read-write despite EXAMINE: a CLOSE would expunge the messages
                // marked \Deleted, and a server that did not open it read-only does not
                // refuse the APPEND for being read-only. Stay.
                None
            } else {
                Some("CLOSE")
            };
            if let Some(verb) = verb {
                let _ = self.raw_command(verb, &[Arg::Text(verb.into())]);
            }
            self.examined_wire = None;
            self.selected = None;
        }
    }

    /// The UIDs of the messages of `wire_mailbox` whose Message-ID header contains
    /// `message_id` (`<id@host>`; the angle brackets are added when missing), ascending:
    /// EXAMINE (skipped when the mailbox is already examined and nothing was appended to it
    /// since) and `UID SEARCH HEADER Message-ID "<...>"` (RFC 3501 6.4.4), the string quoted
    /// with `\` escapes for `"` and `\`, or sent as a literal with `CHARSET UTF-8` when it is
    /// not printable ASCII.
    ///
    /// Leaves `wire_mailbox` examined, so [`list_messages`](Self::list_messages) can follow.
    /// SEARCH matches substrings case-insensitively: the result is candidates, to confirm by
    /// size or content. A message without Message-ID must not be looked up by an empty or
    /// made-up one (case 21): use size + INTERNALDATE from `list_messages` instead.
    ///
    /// Errors: [`ImapError::No`] from EXAMINE (no such mailbox) or SEARCH (e.g.
    /// `[BADCHARSET]`), [`ImapError::Protocol`] for an empty `message_id`.
    pub fn search_message_id(
        &mut self,
        wire_mailbox: &str,
        message_id: &str,
    ) -> Result<Vec<u32>, ImapError> {
        let id = message_id.trim();
        if id.is_empty() || id == "<>" {
            return Err(ImapError::Protocol(
                "refusing to search for an empty Message-ID".into(),
            ));
        }
        let id = if id.starts_with('<') && id.ends_with('>') {
            id.to_string()
        } else {
            format!("<{}>", id.trim_start_matches('<').trim_end_matches('>'))
        };
        if self.examined_wire.as_deref() != Some(wire_mailbox) {
            let mb = MailboxInfo::from_list(wire_mailbox, None, Vec::new());
            self.examine(&mb)?;
        }
        let printable = id.bytes().all(|b| (0x20..0x7f).contains(&b));
        let (command, args) = if printable {
            let c = format!("UID SEARCH HEADER Message-ID {}", quote(&id));
            (c.clone(), vec![Arg::Text(c)])
        } else {
            (
                format!(
                    "UID SEARCH CHARSET UTF-8 HEADER Message-ID {{{}}}",
                    id.len()
                ),
                vec![
                    Arg::Text("UID SEARCH CHARSET UTF-8 HEADER Message-ID ".into()),
                    Arg::Literal(id.as_bytes()),
                ],
            )
        };
        let (untagged, _) = self.raw_command(&command, &args)?;
        let mut uids: Vec<u32> = search_uids(&untagged).into_iter().collect();
        uids.sort_unstable();
        uids.dedup();
        Ok(uids)
    }

    /// True when a literal of `len` octets is sent non-synchronising.
    fn nonsync(&self, len: usize) -> bool {
        (self.caps.has("LITERAL+") && len <= NONSYNC_LITERAL_MAX)
            || (self.caps.has("LITERAL-") && len <= LITERAL_MINUS_MAX)
    }

    /// Sends a command built of `args` and reads its answer. Returns the untagged responses
    /// (see [`Untagged`]; EXISTS, EXPUNGE and `OK [UIDVALIDITY n]` included as such) and the
    /// tagged OK's text. Untagged `EXISTS` updates the examined mailbox; a `BYE` ends the
    /// session. `command` names the command in errors (never a secret: LOGIN is named
    /// `LOGIN`). The untagged responses of one answer are held up to
    /// [`MAX_ANSWER`] bytes; a longer answer is an error and ends the session.
    fn raw_command(
        &mut self,
        command: &str,
        args: &[Arg<'_>],
    ) -> Result<(Vec<Untagged>, String), ImapError> {
        let mut untagged = Vec::new();
        let r = self.send_command_reading(command, args, &mut untagged);
        let tagged = match self.check(r)? {
            Some(early) => early,
            None => {
                let r = self.read_tagged(command, &mut untagged);
                self.check(r)?
            }
        };
        let text = tagged.into_result(command)?;
        Ok((untagged, text))
    }

    /// Sends `args`, the tag first; the rest, literal octets included, straight to the stream.
    /// For a synchronising literal it waits for `+`; a tagged answer instead (a refusal) is
    /// returned as `Some`.
    fn send_command_reading(
        &mut self,
        command: &str,
        args: &[Arg<'_>],
        untagged: &mut Vec<Untagged>,
    ) -> Result<Option<Tagged>, ImapError> {
        let mut line = String::new();
        let mut first = true;
        for a in args {
            match a {
                Arg::Text(s) => line.push_str(s),
                Arg::Literal(bytes) => {
                    let sync = !self.nonsync(bytes.len());
                    line.push_str(&format!(
                        "{{{}{}}}",
                        bytes.len(),
                        if sync { "" } else { "+" }
                    ));
                    self.send_line(&mut first, &line, command)?;
                    line.clear();
                    if sync {
                        loop {
                            match self.next(command)? {
                                Response::Continuation => break,
                                Response::Tagged { status, text, .. } => {
                                    return Ok(Some(Tagged { status, text }))
                                }
                                other => {
                                    if let Some(u) = self.note(other, command)? {
                                        untagged.push(u);
                                    }
                                }
                            }
                        }
                    }
                    let t = self.io_timeout;
                    self.stream
                        .get_mut()
                        .write_all(bytes)
                        .map_err(|e| ImapError::Io(net::readable_io_error(e, t)))?;
                }
            }
        }
        self.send_line(&mut first, &line, command)?;
        Ok(None)
    }

    /// [`send_command_reading`](Self::send_command_reading) for commands whose literals are all
    /// non-synchronising (nothing is read).
    fn send_command(
        &mut self,
        command: &str,
        args: &[Arg<'_>],
    ) -> Result<Option<Tagged>, ImapError> {
        let mut ignored = Vec::new();
        self.send_command_reading(command, args, &mut ignored)
    }

    /// Writes `line` and CRLF; when `first`, a new tag goes in front. Before login only
    /// CAPABILITY, LOGIN, AUTHENTICATE and LOGOUT may be sent.
    fn send_line(&mut self, first: &mut bool, line: &str, command: &str) -> Result<(), ImapError> {
        let t = self.io_timeout;
        let mut out = Vec::with_capacity(line.len() + 8);
        if *first {
            *first = false;
            let pre_auth = ["CAPABILITY", "LOGIN", "AUTHENTICATE", "LOGOUT"]
                .iter()
                .any(|c| command.starts_with(c));
            match (&self.state, pre_auth) {
                (State::Authenticated, _) | (State::NotAuthenticated, true) => {}
                _ => self.session()?,
            }
            self.tag += 1;
            out.extend_from_slice(format!("m{} ", self.tag).as_bytes());
        }
        out.extend_from_slice(line.as_bytes());
        out.extend_from_slice(b"\r\n");
        let s = self.stream.get_mut();
        s.write_all(&out)
            .and_then(|_| s.flush())
            .map_err(|e| ImapError::Io(net::readable_io_error(e, t)))
    }

    /// Reads responses until the tagged one; the untagged ones go to `untagged`.
    fn read_tagged(
        &mut self,
        command: &str,
        untagged: &mut Vec<Untagged>,
    ) -> Result<Tagged, ImapError> {
        let mut held = 0usize;
        loop {
            match self.next(command)? {
                Response::Tagged { status, text, .. } => return Ok(Tagged { status, text }),
                Response::Continuation => {
                    return Err(ImapError::Protocol(format!(
                    "the server asked for a continuation nobody announced, answering `{command}`"
                )))
                }
                other => {
                    if let Some(u) = self.note(other, command)? {
                        held += u.text.len() + 16;
                        if held as u64 > MAX_ANSWER {
                            return Err(ImapError::Protocol(format!(
                                "answering `{}`: the server's answer went on past {} (no answer but a message is that long)",
                                shorten(command),
                                crate::core::limits::human(MAX_ANSWER)
                            )));
                        }
                        untagged.push(u);
                    }
                }
            }
        }
    }

    /// The next response of a command's answer (literals up to [`MAX_RESPONSE_TEXT`] octets:
    /// no answer but FETCH carries a message).
    fn next(&mut self, command: &str) -> Result<Response, ImapError> {
        let mut parser = Parser::new().with_max_literal(MAX_RESPONSE_TEXT as u64);
        self.stream.next_response(&mut parser).map_err(|e| match e {
            NextError::Io(e) => ImapError::Io(net::readable_io_error(e, self.io_timeout)),
            NextError::Eof => ImapError::Io(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "connection closed by server",
            )),
            NextError::Parse(p) => {
                ImapError::Protocol(format!("answering `{}`: {p}", shorten(command)))
            }
        })
    }

    /// Reacts to an untagged response: EXISTS for the examined mailbox, BYE (an error).
    /// Returns it as an [`Untagged`] for the caller, `None` for FETCH data (unsolicited flag
    /// updates) and VANISHED.
    fn note(&mut self, r: Response, _command: &str) -> Result<Option<Untagged>, ImapError> {
        let plain = |name: &str, number: Option<u64>, text: String| Untagged {
            name: name.into(),
            number,
            values: Some(Vec::new()),
            text,
        };
        Ok(match r {
            Response::Bye(text) => return Err(ImapError::Bye(bye_text(text))),
            Response::Exists(n) => {
                if let Some(sel) = self.selected.as_mut() {
                    sel.exists = n;
                }
                Some(plain("EXISTS", Some(u64::from(n)), String::new()))
            }
            Response::Expunge(n) => Some(plain("EXPUNGE", Some(u64::from(n)), String::new())),
            Response::UidValidity(n) => Some(Untagged {
                name: "OK".into(),
                number: None,
                values: None,
                text: format!("[UIDVALIDITY {n}]"),
            }),
            Response::Other(u) => Some(u),
            Response::Fetch(_) | Response::Vanished { .. } => None,
            // Handled by the callers.
            Response::Continuation | Response::Tagged { .. } => None,
        })
    }
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

impl ImapClient {
    /// Opens `mb` read-write with SELECT (RFC 3501 6.3.1), for `prune`: flags can then be
    /// stored and messages expunged. [`list_messages`](Self::list_messages) lists it as after
    /// [`examine`](Self::examine).
    ///
    /// Errors: [`ImapError::No`] (e.g. the mailbox was deleted, or is read-only for this
    /// user), [`ImapError::Protocol`] when the server sends no UIDVALIDITY.
    pub fn select(&mut self, mb: &MailboxInfo) -> Result<Selected, ImapError> {
        self.open_mailbox(mb, false)
    }

    /// Sets (`add`) or clears the `\Deleted` flag of these UIDs in the selected mailbox:
    /// `UID STORE <set> +FLAGS.SILENT (\Deleted)` (or `-FLAGS.SILENT`), RFC 3501 6.4.6.
    ///
    /// Errors: [`ImapError::No`] (e.g. a read-only mailbox), [`ImapError::Protocol`] when no
    /// mailbox is selected.
    pub fn uid_store_deleted(&mut self, uids: &[u32], add: bool) -> Result<(), ImapError> {
        if self.selected.is_none() {
            return Err(ImapError::Protocol("no mailbox is selected".into()));
        }
        let query = if add {
            "+FLAGS.SILENT (\\Deleted)"
        } else {
            "-FLAGS.SILENT (\\Deleted)"
        };
        for chunk in uids.chunks(PRUNE_UIDS_PER_COMMAND) {
            let command = format!("UID STORE {} {query}", uid_set(chunk));
            self.raw_command(&command, &[Arg::Text(command.clone())])?;
        }
        Ok(())
    }

    /// Expunges exactly these UIDs of the selected mailbox, if they are marked `\Deleted`:
    /// `UID EXPUNGE <set>` (UIDPLUS, RFC 4315 2.1). Messages marked `\Deleted` by others are
    /// not touched.
    ///
    /// Errors: [`ImapError::Protocol`] when the server does not announce UIDPLUS or no mailbox
    /// is selected; [`ImapError::No`] / [`ImapError::Bad`] from the server.
    pub fn uid_expunge(&mut self, uids: &[u32]) -> Result<(), ImapError> {
        if !self.caps.has("UIDPLUS") {
            return Err(ImapError::Protocol(
                "UID EXPUNGE needs UIDPLUS, which the server does not announce".into(),
            ));
        }
        if self.selected.is_none() {
            return Err(ImapError::Protocol("no mailbox is selected".into()));
        }
        for chunk in uids.chunks(PRUNE_UIDS_PER_COMMAND) {
            let command = format!("UID EXPUNGE {}", uid_set(chunk));
            self.raw_command(&command, &[Arg::Text(command.clone())])?;
        }
        Ok(())
    }

    /// Expunges every message of the selected mailbox marked `\Deleted` (EXPUNGE, RFC 3501
    /// 6.4.3). Only safe when the caller made sure its own messages are the only ones marked.
    ///
    /// Errors: [`ImapError::Protocol`] when no mailbox is selected; [`ImapError::No`] from the
    /// server.
    pub fn expunge(&mut self) -> Result<(), ImapError> {
        if self.selected.is_none() {
            return Err(ImapError::Protocol("no mailbox is selected".into()));
        }
        self.raw_command("EXPUNGE", &[Arg::Text("EXPUNGE".into())])?;
        Ok(())
    }

    /// The UIDs of the selected mailbox matching a search: `UID SEARCH <criteria>` (RFC 3501
    /// 6.4.4), e.g. `DELETED`, sorted.
    ///
    /// Errors: [`ImapError::Protocol`] when no mailbox is selected; [`ImapError::No`] /
    /// [`ImapError::Bad`] from the server.
    pub fn uid_search(&mut self, criteria: &str) -> Result<BTreeSet<u32>, ImapError> {
        if self.selected.is_none() {
            return Err(ImapError::Protocol("no mailbox is selected".into()));
        }
        let command = format!("UID SEARCH {criteria}");
        let (untagged, _) = self.raw_command(&command, &[Arg::Text(command.clone())])?;
        Ok(search_uids(&untagged))
    }

    /// Which of these UIDs the selected mailbox still holds: `UID SEARCH UID <set>` in chunks
    /// (after an expunge, to count exactly what went).
    ///
    /// Errors: as [`uid_search`](Self::uid_search).
    pub fn uids_present(&mut self, uids: &[u32]) -> Result<BTreeSet<u32>, ImapError> {
        self.uids_matching(uids, "")
    }

    /// Which of these UIDs the selected mailbox still holds *not* marked `\Deleted`
    /// (`UID SEARCH UID <set> UNDELETED`): a copy marked `\Deleted` is one EXPUNGE away from
    /// gone, so it does not count as held (restore, `--delete-after-migrate`).
    ///
    /// Errors: as [`uid_search`](Self::uid_search).
    pub fn uids_held(&mut self, uids: &[u32]) -> Result<BTreeSet<u32>, ImapError> {
        self.uids_matching(uids, " UNDELETED")
    }

    fn uids_matching(&mut self, uids: &[u32], more: &str) -> Result<BTreeSet<u32>, ImapError> {
        let mut out = BTreeSet::new();
        for chunk in uids.chunks(PRUNE_UIDS_PER_COMMAND) {
            let asked: BTreeSet<u32> = chunk.iter().copied().collect();
            let found = self.uid_search(&format!("UID {}{more}", uid_set(chunk)))?;
            // `UID n:m` also matches the highest UID when n is above it (RFC 3501 6.4.8).
            out.extend(found.intersection(&asked));
        }
        Ok(out)
    }
}

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
