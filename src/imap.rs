//! IMAP client session for backups (RFC 3501), on top of the `imap` crate, over our own TCP and
//! TLS ([`crate::net`]).
//!
//! What it does: connect (`imaps://` implicit TLS; `imap://` with STARTTLS, RFC 3501 6.2.1,
//! refused without it unless plain text is allowed), log in (LOGIN, AUTHENTICATE PLAIN,
//! XOAUTH2, OAUTHBEARER), list mailboxes (names decoded from modified UTF-7, [`crate::mutf7`]),
//! open one read-only (EXAMINE, so nothing on the server changes, `\Seen` included), list its
//! messages (UID, FLAGS, RFC822.SIZE, INTERNALDATE, MODSEQ with CONDSTORE, RFC 7162), fetch
//! bodies with `BODY.PEEK[]`, STATUS and GETQUOTAROOT (RFC 9208 / 2087).
//!
//! The STARTTLS exchange (greeting, CAPABILITY, STARTTLS) is done here on the raw socket, one
//! byte at a time so nothing sent before the TLS handshake can be buffered and mistaken for
//! protected data; the `imap` crate only ever sees the TLS stream (or, with plain text allowed
//! and no STARTTLS, the plain socket). For `imaps://` the greeting is read through the crate.
//!
//! `UID FETCH` (the listing and the bodies) does not go through the crate: it reads a whole
//! command response into memory and re-parses a FETCH response from its start at every line
//! while a literal arrives. [`crate::imap_fetch`] reads the answer as a stream instead, one
//! response at a time, and [`fetch_bodies`] hands each message over as soon as it is
//! complete (memory: one message, not the batch). Responses for one message are merged by
//! sequence number and the last non-empty FLAGS wins (case 17). Both read the same buffer
//! (`SharedStream`), which never gives the crate bytes past a line end.
//!
//! Limits of the `imap` crate (3.0.0-alpha.15) and what is done about them:
//! - an untagged line it cannot parse ends the command with a `BYE` "no explanation given";
//!   that is reported as [`ImapError::Protocol`];
//! - its LIST attribute type is not exported; attributes are read from its `Debug` form.
//!
//! After an I/O error (timeout, closed connection) the session is out of step with the server;
//! every later call returns an error. Connect again.
//!
//! [`fetch_bodies`]: ImapClient::fetch_bodies

use std::cell::Cell;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::io::{self, Read, Write};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use crate::endpoint::{ServerSpec, TlsMode};
use crate::imap_fetch::{FetchItems, NextError, Parser, ReadBuf, Response};
use crate::message::{Flag, Flags, MailboxName};
use crate::mutf7;
use crate::net::{self, NetError, Stream, Timeouts, TlsOptions};

/// The longest line accepted before TLS (greeting, CAPABILITY), in bytes.
const MAX_PRE_TLS_LINE: usize = 64 * 1024;

/// Server text in an error message, with control characters escaped (`\r`, `\u{1b}`): an
/// error stays one line and a hostile server cannot send terminal escapes to the user.
fn esc(text: &str) -> String {
    crate::endpoint::escape_controls(text)
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

    /// The server broke the protocol, or sent something the `imap` crate cannot parse.
    #[error("protocol error: {}", esc(.0))]
    Protocol(String),

    /// A message literal (UID `uid` when known) was announced as `size` octets, over the
    /// largest message accepted (`limit`, [`crate::limits::max_message_size`]). It was refused
    /// before anything was reserved for it; the session is unusable (the literal is still on
    /// its way).
    #[error("{}{}", .uid.map(|u| format!("UID {u}: ")).unwrap_or_default(), crate::limits::too_large(Some(*.size), *.limit))]
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
    /// INTERNALDATE, seconds since the Unix epoch (UTC), exact.
    pub internal_date: i64,
    /// MODSEQ (RFC 7162), when CONDSTORE is enabled.
    pub modseq: Option<u64>,
}

/// One fetched message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched<'a> {
    pub uid: u32,
    /// System flags and keywords; `\Recent` dropped.
    pub flags: Flags,
    /// INTERNALDATE, seconds since the Unix epoch (UTC).
    pub internal_date: i64,
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
    NotAuthenticated(::imap::Client<SharedStream>),
    Authenticated(::imap::Session<SharedStream>),
    /// After an I/O error or a failed login that lost the connection.
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
    condstore: bool,
    selected: Option<Selected>,
    /// The same stream the crate reads and writes, for literals (see [`SharedStream`]).
    raw: SharedStream,
    /// The wire name of the examined mailbox, while nothing was appended to it since.
    examined_wire: Option<String>,
    /// Cached answers of [`ImapClient::personal_namespace`] and [`ImapClient::delimiter`].
    namespace: Option<Namespace>,
    delimiter: Option<Option<char>>,
}

impl fmt::Debug for ImapClient {
    /// Names the server and the state only: never the stream's buffers (a LOGIN command with
    /// the password may still be in them).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.state {
            State::NotAuthenticated(_) => "not authenticated",
            State::Authenticated(_) => "authenticated",
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
        let raw = SharedStream(Arc::new(Mutex::new(ReadBuf::new(stream))));
        let mut client = ::imap::Client::new(raw.clone());
        client.greeting_read = true;
        let caps = client
            .capabilities()
            .map_err(|e| map_err(e, "CAPABILITY", io_timeout))?;
        Ok(ImapClient {
            state: State::NotAuthenticated(client),
            caps: caps_from_crate(&caps),
            host: spec.host.clone(),
            tls,
            allow_plaintext: opts.allow_plaintext,
            auth: opts.auth,
            io_timeout,
            condstore: false,
            selected: None,
            raw,
            examined_wire: None,
            namespace: None,
            delimiter: None,
        })
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
    /// OAuth2 access token for XOAUTH2 / OAUTHBEARER. Reads CAPABILITY again afterwards.
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
        let client = match std::mem::replace(&mut self.state, State::Broken("login".into())) {
            State::NotAuthenticated(c) => c,
            other => {
                self.state = other;
                return Err(ImapError::Protocol("already logged in".into()));
            }
        };
        let method = match self.auth {
            ImapAuth::Auto if self.caps.has("AUTH=PLAIN") => ImapAuth::Plain,
            ImapAuth::Auto => ImapAuth::Login,
            m => m,
        };
        if method == ImapAuth::Login && self.caps.has("LOGINDISABLED") {
            self.state = State::NotAuthenticated(client);
            return Err(ImapError::Auth(
                "the server disabled LOGIN (LOGINDISABLED) and offers no AUTHENTICATE PLAIN".into(),
            ));
        }
        let (command, result) = match method {
            ImapAuth::Login | ImapAuth::Auto => ("LOGIN", client.login(user, secret)),
            ImapAuth::Plain => {
                let a = Sasl::new(format!("\0{user}\0{secret}"), "");
                ("AUTHENTICATE PLAIN", client.authenticate("PLAIN", &a))
            }
            ImapAuth::XOAuth2 => {
                // On failure the server sends a JSON error as a challenge and waits for an
                // empty response before its tagged NO.
                let a = Sasl::new(format!("user={user}\x01auth=Bearer {secret}\x01\x01"), "");
                ("AUTHENTICATE XOAUTH2", client.authenticate("XOAUTH2", &a))
            }
            ImapAuth::OAuthBearer => {
                // RFC 7628 3.1; after an error challenge the client sends a lone %x01.
                let a = Sasl::new(
                    format!("n,a={},\x01auth=Bearer {secret}\x01\x01", gs2_escape(user)),
                    "\x01",
                );
                (
                    "AUTHENTICATE OAUTHBEARER",
                    client.authenticate("OAUTHBEARER", &a),
                )
            }
        };
        match result {
            Ok(session) => {
                self.state = State::Authenticated(session);
                self.refresh_capabilities()
            }
            Err((e, client)) => {
                let err = login_error(e, command, self.io_timeout);
                self.state = match &err {
                    ImapError::Io(_) => State::Broken(err.to_string()),
                    _ => State::NotAuthenticated(client),
                };
                Err(err)
            }
        }
    }

    /// The server's capabilities (re-read after login, as they usually change).
    pub fn capabilities(&self) -> &Capabilities {
        &self.caps
    }

    fn refresh_capabilities(&mut self) -> Result<(), ImapError> {
        let t = self.io_timeout;
        let s = self.session()?;
        let caps = s.capabilities().map_err(|e| map_err(e, "CAPABILITY", t));
        let caps = self.check(caps)?;
        self.caps = caps_from_crate(&caps);
        Ok(())
    }

    /// Turns CONDSTORE on (RFC 7162 3.1): `ENABLE CONDSTORE` when the server has ENABLE, else
    /// CONDSTORE is used implicitly by asking for MODSEQ. Returns whether mod-sequences are
    /// available; afterwards [`examine`](Self::examine) reports HIGHESTMODSEQ and
    /// [`list_messages`](Self::list_messages) MODSEQ.
    pub fn enable_condstore(&mut self) -> Result<bool, ImapError> {
        if !self.caps.has("CONDSTORE") {
            return Ok(false);
        }
        if self.caps.has("ENABLE") {
            let t = self.io_timeout;
            let s = self.session()?;
            let r = s
                .run_command_and_read_response("ENABLE CONDSTORE")
                .map_err(|e| map_err(e, "ENABLE CONDSTORE", t));
            self.check(r)?;
            self.drain_unsolicited();
        }
        self.condstore = true;
        Ok(true)
    }

    /// All mailboxes: `LIST "" "*"`, with `RETURN (SPECIAL-USE)` when the server has
    /// SPECIAL-USE and LIST-EXTENDED (RFC 6154 / 5258). In the server's order; includes
    /// unselectable names (check [`MailboxInfo::selectable`]).
    ///
    /// Errors: [`ImapError::No`] / [`ImapError::Bad`] / I/O.
    pub fn list_mailboxes(&mut self) -> Result<Vec<MailboxInfo>, ImapError> {
        let pattern = if self.caps.has("SPECIAL-USE") && self.caps.has("LIST-EXTENDED") {
            "\"*\" RETURN (SPECIAL-USE)"
        } else {
            "\"*\""
        };
        let command = format!("LIST \"\" {pattern}");
        let t = self.io_timeout;
        let s = self.session()?;
        let r = s
            .list(Some(""), Some(pattern))
            .map_err(|e| map_err(e, &command, t));
        let names = self.check(r)?;
        let out = names
            .iter()
            .map(|n| {
                let attrs = n.attributes().iter().map(name_attribute).collect();
                let delim = n.delimiter().and_then(|d| d.chars().next());
                MailboxInfo::from_list(n.name(), delim, attrs)
            })
            .collect();
        self.drain_unsolicited();
        Ok(out)
    }

    /// Opens `mb` read-only with EXAMINE (RFC 3501 6.3.2): no flag changes, `\Seen` included.
    ///
    /// Errors: [`ImapError::No`] (e.g. the mailbox was deleted), [`ImapError::Protocol`] when
    /// the server sends no UIDVALIDITY.
    pub fn examine(&mut self, mb: &MailboxInfo) -> Result<Selected, ImapError> {
        self.open_mailbox(mb, true)
    }

    /// EXAMINE (`read_only`) or SELECT `mb`, and remember it as the mailbox commands act on.
    fn open_mailbox(&mut self, mb: &MailboxInfo, read_only: bool) -> Result<Selected, ImapError> {
        self.selected = None;
        self.examined_wire = None;
        let verb = if read_only { "EXAMINE" } else { "SELECT" };
        let command = format!("{verb} {}", quote(&mb.wire));
        let t = self.io_timeout;
        let s = self.session()?;
        let r = if read_only {
            s.examine(&mb.wire)
        } else {
            s.select(&mb.wire)
        }
        .map_err(|e| map_err(e, &command, t));
        let m = self.check(r)?;
        self.drain_unsolicited();
        let uidvalidity = m.uid_validity.ok_or_else(|| {
            ImapError::Protocol(format!("no UIDVALIDITY in the answer to `{command}`"))
        })?;
        let sel = Selected {
            uidvalidity,
            uidnext: m.uid_next,
            exists: m.exists,
            highestmodseq: m.highest_mod_seq,
        };
        self.selected = Some(sel);
        if read_only {
            self.examined_wire = Some(mb.wire.clone());
        }
        Ok(sel)
    }

    /// STATUS (MESSAGES UIDNEXT UIDVALIDITY [HIGHESTMODSEQ]) of `mb` (RFC 3501 6.3.10); does
    /// not change the selected mailbox. Do not use it on the examined mailbox.
    pub fn status(&mut self, mb: &MailboxInfo) -> Result<Status, ImapError> {
        let items = if self.caps.has("CONDSTORE") {
            "(MESSAGES UIDNEXT UIDVALIDITY HIGHESTMODSEQ)"
        } else {
            "(MESSAGES UIDNEXT UIDVALIDITY)"
        };
        let command = format!("STATUS {} {items}", quote(&mb.wire));
        let t = self.io_timeout;
        let s = self.session()?;
        let r = s
            .status(&mb.wire, items)
            .map_err(|e| map_err(e, &command, t));
        let m = self.check(r)?;
        self.drain_unsolicited();
        let uidvalidity = m.uid_validity.ok_or_else(|| {
            ImapError::Protocol(format!("no UIDVALIDITY in the answer to `{command}`"))
        })?;
        Ok(Status {
            messages: m.exists,
            uidnext: m.uid_next,
            uidvalidity,
            highestmodseq: m.highest_mod_seq,
        })
    }

    /// Lists the messages of the examined mailbox: `UID FETCH 1:* (UID FLAGS RFC822.SIZE
    /// INTERNALDATE [MODSEQ]) [(CHANGEDSINCE n)]` (RFC 3501 6.4.8, RFC 7162 3.1.4). With
    /// `changed_since` (needs [`enable_condstore`](Self::enable_condstore)) only messages
    /// whose MODSEQ is above it. Sorted by UID. An empty mailbox gives `Ok(vec![])`.
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
        let mut query = String::from("(UID FLAGS RFC822.SIZE INTERNALDATE");
        if self.condstore {
            query.push_str(" MODSEQ");
        }
        query.push(')');
        if let Some(n) = changed_since {
            query.push_str(&format!(" (CHANGEDSINCE {n})"));
        }
        let command = format!("UID FETCH 1:* {query}");
        let mut merged = Merger::default();
        self.stream_fetch::<ImapError>(&command, &mut |items, expunged| {
            merged.add(items, expunged);
            Ok(())
        })?;
        let mut out = Vec::with_capacity(merged.by_key.len());
        for m in merged.by_key.into_values() {
            let Some(uid) = m.uid else { continue };
            let size = m.size.ok_or_else(|| missing("RFC822.SIZE", uid))?;
            let internal_date = m
                .internal_date
                .ok_or_else(|| missing("INTERNALDATE", uid))?;
            out.push(Listed {
                uid,
                flags: m.flags.unwrap_or_default(),
                size,
                internal_date,
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
    /// ([`crate::imap_fetch`]): memory holds one message (plus a message whose FLAGS or
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
        // Hands over a message once its body, UID, FLAGS and INTERNALDATE are all known.
        let mut deliver =
            |m: Merged, last: bool, got: &mut BTreeSet<u32>| -> Result<Option<Merged>, E> {
                let (Some(uid), Some(_)) = (m.uid, m.body.as_ref()) else {
                    return Ok(Some(m));
                };
                if !last && (m.flags.is_none() || m.internal_date.is_none()) {
                    return Ok(Some(m));
                }
                if !wanted.contains(&uid) || got.contains(&uid) {
                    return Ok(None);
                }
                let internal_date = m
                    .internal_date
                    .ok_or_else(|| E::from(missing("INTERNALDATE", uid)))?;
                let body = m.body.unwrap_or_default();
                got.insert(uid);
                f(Fetched {
                    uid,
                    flags: m.flags.unwrap_or_default(),
                    internal_date,
                    size: m.size.unwrap_or(body.len() as u64),
                    body: &body,
                })?;
                Ok(None)
            };
        self.stream_fetch::<E>(&command, &mut |items, expunged| {
            let key = merged.add(items, expunged);
            if let Some(k) = key {
                if merged.by_key.get(&k).is_some_and(|m| m.body.is_some()) {
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
        let t = self.io_timeout;
        let r = self
            .session()
            .and_then(|s| s.run_command(command).map_err(|e| map_err(e, command, t)));
        self.check(r)?;
        let mut parser = Parser::new();
        let mut expunged = false;
        let mut failed: Option<E> = None;
        loop {
            let r = self.raw.lock().next_response(&mut parser);
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
                Response::Vanished { earlier: true } | Response::Other => {}
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
                    let e = self.check::<()>(Err(ImapError::Bye(text))).unwrap_err();
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
        let t = self.io_timeout;
        let s = self.session()?;
        let r = s
            .get_quota_root(&mb.wire)
            .map_err(|e| map_err(e, &command, t));
        let resp = self.check(r)?;
        let roots = resp
            .quota_root_names()
            .map(|root| QuotaRoot {
                name: root.to_string(),
                resources: resp
                    .quotas()
                    .iter()
                    .filter(|q| q.root_name == root)
                    .flat_map(|q| q.resources.iter())
                    .map(|r| QuotaResource {
                        name: match &r.name {
                            ::imap::types::QuotaResourceName::Storage => "STORAGE".into(),
                            ::imap::types::QuotaResourceName::Message => "MESSAGE".into(),
                            ::imap::types::QuotaResourceName::Atom(a) => a.to_ascii_uppercase(),
                            other => format!("{other:?}").to_ascii_uppercase(),
                        },
                        usage: r.usage,
                        limit: r.limit,
                    })
                    .collect(),
            })
            .collect();
        self.drain_unsolicited();
        Ok(roots)
    }

    /// LOGOUT (RFC 3501 6.1.3) and close. A session that never logged in is just closed.
    pub fn logout(self) -> Result<(), ImapError> {
        match self.state {
            State::Authenticated(mut s) => s
                .logout()
                .map_err(|e| map_err(e, "LOGOUT", self.io_timeout)),
            State::NotAuthenticated(_) => Ok(()),
            State::Broken(_) => Ok(()),
        }
    }

    fn session(&mut self) -> Result<&mut ::imap::Session<SharedStream>, ImapError> {
        match &mut self.state {
            State::Authenticated(s) => Ok(s),
            State::NotAuthenticated(_) => Err(ImapError::Protocol("not logged in".into())),
            State::Broken(why) => Err(ImapError::Io(io::Error::other(format!(
                "the connection is unusable after an earlier error ({why})"
            )))),
        }
    }

    /// Marks the session broken after an I/O or protocol-synchronisation error.
    fn check<T>(&mut self, r: Result<T, ImapError>) -> Result<T, ImapError> {
        if let Err(e) = &r {
            if matches!(e, ImapError::Io(_) | ImapError::Bye(_)) {
                self.state = State::Broken(e.to_string());
                self.selected = None;
                self.examined_wire = None;
            }
        }
        r
    }

    /// Takes the unsolicited responses; returns true when any message was expunged (sequence
    /// numbers moved during the command).
    fn drain_unsolicited(&mut self) -> bool {
        let State::Authenticated(s) = &mut self.state else {
            return false;
        };
        let mut expunged = false;
        for u in s.take_all_unsolicited() {
            match u {
                ::imap::types::UnsolicitedResponse::Expunge(_)
                | ::imap::types::UnsolicitedResponse::Vanished { .. } => expunged = true,
                ::imap::types::UnsolicitedResponse::Exists(n) => {
                    if let Some(sel) = &mut self.selected {
                        sel.exists = n;
                    }
                }
                _ => {}
            }
        }
        expunged
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
    modseq: Option<u64>,
    body: Option<Vec<u8>>,
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
        let key = if expunged {
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
        if fe.internal_date.is_some() {
            m.internal_date = fe.internal_date;
        }
        if fe.modseq.is_some() {
            m.modseq = fe.modseq;
        }
        if fe.body.is_some() {
            m.body = fe.body;
        }
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

/// The LIST attribute as sent (`\HasNoChildren`), from the crate's `NameAttribute`, whose
/// type `imap` does not export: read from its `Debug` form.
fn name_attribute(a: &impl fmt::Debug) -> String {
    let d = format!("{a:?}");
    if let Some(inner) = d
        .strip_prefix("Extension(\"")
        .and_then(|r| r.strip_suffix("\")"))
    {
        return inner.replace("\\\\", "\\");
    }
    match d.as_str() {
        "NoInferiors" => "\\Noinferiors".into(),
        "NoSelect" => "\\Noselect".into(),
        other => format!("\\{other}"),
    }
}

fn caps_from_crate(c: &::imap::types::Capabilities) -> Capabilities {
    Capabilities::from_tokens(c.iter().map(imap_proto_capability::token))
}

/// Capability tokens from the crate's `Capability` (re-exported from imap-proto).
mod imap_proto_capability {
    use std::fmt::Debug;

    /// `IMAP4rev1`, `AUTH=PLAIN`, or the atom, from the Debug form of a `Capability`
    /// (`Imap4rev1`, `Auth("PLAIN")`, `Atom("IDLE")`).
    pub fn token(c: &impl Debug) -> String {
        let d = format!("{c:?}");
        if d == "Imap4rev1" {
            return "IMAP4rev1".into();
        }
        if let Some(v) = d
            .strip_prefix("Auth(\"")
            .and_then(|r| r.strip_suffix("\")"))
        {
            return format!("AUTH={v}");
        }
        if let Some(v) = d
            .strip_prefix("Atom(\"")
            .and_then(|r| r.strip_suffix("\")"))
        {
            return v.replace("\\\\", "\\");
        }
        d
    }
}

/// A SASL client for `Client::authenticate`: the first challenge gets `first`, later ones
/// (error challenges) get `after`.
struct Sasl {
    first: String,
    after: &'static str,
    calls: Cell<u32>,
}

impl Sasl {
    fn new(first: String, after: &'static str) -> Self {
        Sasl {
            first,
            after,
            calls: Cell::new(0),
        }
    }
}

impl ::imap::Authenticator for Sasl {
    type Response = Vec<u8>;
    fn process(&self, _challenge: &[u8]) -> Vec<u8> {
        let n = self.calls.get();
        self.calls.set(n + 1);
        if n == 0 {
            self.first.as_bytes().to_vec()
        } else {
            self.after.as_bytes().to_vec()
        }
    }
}

/// RFC 5801 `saslname` escaping for the authorization identity: `,` and `=`.
fn gs2_escape(s: &str) -> String {
    s.replace('=', "=3D").replace(',', "=2C")
}

/// Maps a crate error to ours; `command` names what was sent (never a secret).
fn map_err(e: ::imap::Error, command: &str, io_timeout: Option<Duration>) -> ImapError {
    use ::imap::Error as E;
    let with_code = |info: String, code: Option<String>| match code {
        Some(c) => format!("[{c}] {info}"),
        None => info,
    };
    match e {
        // ReadBuf::read_for_crate cut an answer off at the size limit.
        E::Io(e) if e.kind() == io::ErrorKind::FileTooLarge => {
            ImapError::Protocol(format!("answering `{}`: {e}", shorten(command)))
        }
        E::Io(e) => ImapError::Io(net::readable_io_error(e, io_timeout)),
        E::ConnectionLost => ImapError::Io(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "connection closed by server",
        )),
        E::No(n) => ImapError::No {
            command: command.to_string(),
            text: with_code(n.information, n.code.map(|c| format!("{c:?}"))),
        },
        E::Bad(b) => ImapError::Bad {
            command: command.to_string(),
            text: with_code(b.information, b.code.map(|c| format!("{c:?}"))),
        },
        // The crate reports an untagged line it cannot parse as a BYE without text.
        E::Bye(b) if b.code.is_none() && b.information == "no explanation given" => {
            ImapError::Protocol(format!(
                "the answer to `{command}` holds a response the imap crate cannot parse"
            ))
        }
        E::Bye(b) => ImapError::Bye(b.information),
        E::Parse(p) => ImapError::Protocol(format!(
            "cannot parse the answer to `{command}`: {}",
            shorten(&p.to_string())
        )),
        other => ImapError::Protocol(format!("`{command}`: {}", shorten(&other.to_string()))),
    }
}

/// Login errors: a NO is [`ImapError::Auth`] unless [`crate::fault::classify`] says the
/// credentials may be fine (a response code of RFC 5530 or a provider's text).
fn login_error(e: ::imap::Error, command: &str, io_timeout: Option<Duration>) -> ImapError {
    match map_err(e, command, io_timeout) {
        ImapError::No { command, text } => {
            // `[UNAVAILABLE]`, `[SERVERBUG]`, `[INUSE]`, `[LIMIT]`, "too many simultaneous
            // connections", a used-up bandwidth allowance: the credentials may be fine.
            use crate::fault::{classify, Command, Status};
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
/// its INTERNALDATE in seconds since the Unix epoch.
pub type AppendItem<'a> = (&'a [u8], &'a Flags, Option<i64>);

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
        crate::fault::suggested_backoff(text)
    }
}

/// The response code at the start of a response text (`[TOOBIG] Message too large`).
fn response_code(text: &str) -> Option<String> {
    let inner = text.trim_start().strip_prefix('[')?;
    let end = inner.find(']')?;
    let word = inner[..end].split_ascii_whitespace().next()?;
    Some(word.to_ascii_uppercase())
}

/// Formats an INTERNALDATE for APPEND (RFC 3501 9, `date-time`), always with the two-digit day
/// strict servers require (case 19): `09-Mar-2025 08:05:07 +0000`. `secs` is the instant
/// (seconds since the Unix epoch), `offset_secs` the zone to write it in (east of UTC, whole
/// minutes). `None` when the year is not four digits or the offset is out of range.
pub fn imap_date_time(secs: i64, offset_secs: i32) -> Option<String> {
    if offset_secs % 60 != 0 {
        return None;
    }
    let zone = chrono::FixedOffset::east_opt(offset_secs)?;
    let t = chrono::DateTime::from_timestamp(secs, 0)?.with_timezone(&zone);
    if !(0..=9999).contains(&chrono::Datelike::year(&t)) {
        return None;
    }
    Some(t.format("%d-%b-%Y %H:%M:%S %z").to_string())
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

/// The stream the `imap` crate owns, shared with [`ImapClient`]: the crate has no way to send
/// a literal of non-UTF-8 octets or a LITERAL+ literal, so those are written here, between
/// the crate's writes (which it flushes after every command line).
///
/// Reading goes through one buffer ([`ReadBuf`]): the crate gets at most one line per read, so
/// its own buffered reader never holds bytes past the line it asked for, and our FETCH reader
/// ([`crate::imap_fetch`]) reads the same buffer directly, leaving whatever follows a tagged
/// answer there for the crate.
#[derive(Clone)]
struct SharedStream(Arc<Mutex<ReadBuf<Stream>>>);

impl fmt::Debug for SharedStream {
    /// Never the buffer's contents.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SharedStream")
    }
}

impl SharedStream {
    fn lock(&self) -> std::sync::MutexGuard<'_, ReadBuf<Stream>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Read for SharedStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.lock().read_for_crate(buf)
    }
}

impl Write for SharedStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut b = self.lock();
        b.command_sent();
        b.get_mut().write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.lock().get_mut().flush()
    }
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

/// A response token (RFC 3501 9): enough for NAMESPACE, LIST and SEARCH lines.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Nil,
    Atom(String),
    /// A quoted string (unescaped) or a literal's octets.
    Str(Vec<u8>),
    List(Vec<Tok>),
}

impl Tok {
    /// The text of an atom or string (lossy UTF-8).
    fn text(&self) -> Option<String> {
        match self {
            Tok::Atom(a) => Some(a.clone()),
            Tok::Str(s) => Some(String::from_utf8_lossy(s).into_owned()),
            _ => None,
        }
    }
}

/// Tokenizes response data (after `* NAME `); `None` for malformed data.
fn tokenize(data: &[u8]) -> Option<Vec<Tok>> {
    fn parse(d: &[u8], i: &mut usize, depth: usize) -> Option<Vec<Tok>> {
        let mut out = Vec::new();
        while *i < d.len() {
            match d[*i] {
                b' ' | b'\r' | b'\n' => *i += 1,
                b'(' => {
                    *i += 1;
                    out.push(Tok::List(parse(d, i, depth + 1)?));
                }
                b')' => {
                    if depth == 0 {
                        return None;
                    }
                    *i += 1;
                    return Some(out);
                }
                b'"' => {
                    *i += 1;
                    let mut s = Vec::new();
                    loop {
                        match *d.get(*i)? {
                            b'\\' => {
                                s.push(*d.get(*i + 1)?);
                                *i += 2;
                            }
                            b'"' => {
                                *i += 1;
                                break;
                            }
                            b => {
                                s.push(b);
                                *i += 1;
                            }
                        }
                    }
                    out.push(Tok::Str(s));
                }
                b'{' => {
                    let close = d[*i..].iter().position(|&b| b == b'}')? + *i;
                    let n: usize = std::str::from_utf8(&d[*i + 1..close])
                        .ok()?
                        .trim_end_matches('+')
                        .parse()
                        .ok()?;
                    let mut start = close + 1;
                    if d.get(start) == Some(&b'\r') {
                        start += 1;
                    }
                    if d.get(start) == Some(&b'\n') {
                        start += 1;
                    }
                    out.push(Tok::Str(d.get(start..start + n)?.to_vec()));
                    *i = start + n;
                }
                _ => {
                    let start = *i;
                    while *i < d.len() && !b" ()\r\n".contains(&d[*i]) {
                        *i += 1;
                    }
                    let a = String::from_utf8_lossy(&d[start..*i]).into_owned();
                    out.push(if a.eq_ignore_ascii_case("NIL") {
                        Tok::Nil
                    } else {
                        Tok::Atom(a)
                    });
                }
            }
        }
        (depth == 0).then_some(out)
    }
    parse(data, &mut 0, 0)
}

/// The data of an untagged response named `name` (`* NAMESPACE ...` gives `...`), if `line`
/// is one.
fn untagged_data<'l>(line: &'l [u8], name: &str) -> Option<&'l [u8]> {
    let rest = line.strip_prefix(b"* ")?;
    let n = name.len();
    if rest.len() >= n
        && rest[..n].eq_ignore_ascii_case(name.as_bytes())
        && matches!(rest.get(n), None | Some(b' ' | b'\r' | b'\n'))
    {
        Some(&rest[n..])
    } else {
        None
    }
}

/// Parses the personal namespace from the data of `* NAMESPACE` (RFC 2342 5): `(("INBOX."
/// "."))`. `None` when the personal namespace is `NIL` or malformed.
pub(crate) fn parse_namespace(data: &[u8]) -> Option<Namespace> {
    let toks = tokenize(data)?;
    let Tok::List(personal) = toks.first()? else {
        return None;
    };
    let Tok::List(first) = personal.first()? else {
        return None;
    };
    let prefix = first.first()?.text()?;
    let delimiter = match first.get(1)? {
        Tok::Nil => None,
        t => t.text()?.chars().next(),
    };
    Some(Namespace { prefix, delimiter })
}

/// Parses `* LIST (attrs) "delim" name` data into (name, delimiter).
pub(crate) fn parse_list(data: &[u8]) -> Option<(String, Option<char>)> {
    let toks = tokenize(data)?;
    let delimiter = match toks.get(1)? {
        Tok::Nil => None,
        t => t.text()?.chars().next(),
    };
    Some((toks.get(2)?.text()?, delimiter))
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
                .find_map(|l| untagged_data(l, "NAMESPACE"))
                .and_then(parse_namespace);
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
            .find_map(|l| untagged_data(l, "LIST"))
            .and_then(parse_list)
            .and_then(|(_, d)| d);
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
            .filter_map(|l| untagged_data(l, "LIST"))
            .filter_map(parse_list)
            .any(|(name, _)| {
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
    /// `raw_crlf` is sent byte for byte (CRLF line ends: see [`crate::message::lf_to_crlf`]),
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
                results[i] = Some(self.append(wire_mailbox, raw, flags, date));
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
        internal_date: Option<i64>,
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
            Some(secs) => {
                let d = imap_date_time(secs, 0).ok_or_else(|| {
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

    /// An APPEND to the examined mailbox makes the next search EXAMINE it again.
    fn note_append(&mut self, wire_mailbox: &str) {
        if self.examined_wire.as_deref() == Some(wire_mailbox) {
            self.examined_wire = None;
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
        let mut uids: Vec<u32> = untagged
            .iter()
            .filter_map(|l| untagged_data(l, "SEARCH"))
            .flat_map(|d| {
                String::from_utf8_lossy(d)
                    .split_ascii_whitespace()
                    .filter_map(|n| n.parse().ok())
                    .collect::<Vec<u32>>()
            })
            .collect();
        uids.sort_unstable();
        uids.dedup();
        Ok(uids)
    }

    /// True when a literal of `len` octets is sent non-synchronising.
    fn nonsync(&self, len: usize) -> bool {
        (self.caps.has("LITERAL+") && len <= NONSYNC_LITERAL_MAX)
            || (self.caps.has("LITERAL-") && len <= LITERAL_MINUS_MAX)
    }

    /// Sends a command built of `args` and reads its answer, bypassing the crate's parser
    /// (which rejects NAMESPACE and cannot send literals). Returns the untagged lines (literals
    /// inline) and the tagged OK's text. Untagged `EXISTS` updates the examined mailbox; a
    /// `BYE` ends the session. `command` names the command in errors.
    fn raw_command(
        &mut self,
        command: &str,
        args: &[Arg<'_>],
    ) -> Result<(Vec<Vec<u8>>, String), ImapError> {
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

    /// Sends `args` (the first part through the crate, so its tag counter stays right; the
    /// rest, literal octets included, straight to the stream). For a synchronising literal it
    /// waits for `+`; a tagged answer instead (a refusal) is returned as `Some`.
    fn send_command_reading(
        &mut self,
        command: &str,
        args: &[Arg<'_>],
        untagged: &mut Vec<Vec<u8>>,
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
                            let l = self.read_logical_line(command)?;
                            if l.starts_with(b"+") {
                                break;
                            }
                            if l.starts_with(b"* ") {
                                self.note_untagged(&l)?;
                                untagged.push(l);
                                continue;
                            }
                            return Ok(Some(parse_tagged(&l)?));
                        }
                    }
                    let t = self.io_timeout;
                    self.raw
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

    fn send_line(&mut self, first: &mut bool, line: &str, command: &str) -> Result<(), ImapError> {
        let t = self.io_timeout;
        if *first {
            *first = false;
            self.session()?
                .run_command(line)
                .map_err(|e| map_err(e, command, t))
        } else {
            let mut w = || -> io::Result<()> {
                self.raw.write_all(line.as_bytes())?;
                self.raw.write_all(b"\r\n")?;
                self.raw.flush()
            };
            w().map_err(|e| ImapError::Io(net::readable_io_error(e, t)))
        }
    }

    /// Reads untagged lines until the tagged one.
    fn read_tagged(
        &mut self,
        command: &str,
        untagged: &mut Vec<Vec<u8>>,
    ) -> Result<Tagged, ImapError> {
        loop {
            let l = self.read_logical_line(command)?;
            if l.starts_with(b"* ") {
                self.note_untagged(&l)?;
                untagged.push(l);
            } else if l.starts_with(b"+") {
                return Err(ImapError::Protocol(format!(
                    "the server asked for a continuation nobody announced, answering `{command}`"
                )));
            } else {
                return parse_tagged(&l);
            }
        }
    }

    /// Reacts to an untagged line: EXISTS for the examined mailbox, BYE.
    fn note_untagged(&mut self, l: &[u8]) -> Result<(), ImapError> {
        if let Some(d) = untagged_data(l, "BYE") {
            let text = String::from_utf8_lossy(d).trim().to_string();
            return Err(ImapError::Bye(if text.is_empty() {
                "BYE".into()
            } else {
                text
            }));
        }
        let text = String::from_utf8_lossy(&l[2..]).into_owned();
        let mut w = text.split_ascii_whitespace();
        if let (Some(n), Some(kind)) = (w.next(), w.next()) {
            if kind.eq_ignore_ascii_case("EXISTS") {
                if let (Ok(n), Some(sel)) = (n.parse(), self.selected.as_mut()) {
                    sel.exists = n;
                }
            }
        }
        Ok(())
    }

    /// One response line, with its literals (`{N}` CRLF and N octets) inline, CRLF included.
    /// Read through the crate's buffer (its `read_greeting` reads exactly one line).
    fn read_logical_line(&mut self, command: &str) -> Result<Vec<u8>, ImapError> {
        let t = self.io_timeout;
        let s = self.session()?;
        let mut buf: Vec<u8> = Vec::new();
        let mut text_from = 0;
        let mut literal_end: Option<usize> = None;
        loop {
            s.greeting_read = false;
            let part = s.read_greeting().map_err(|e| map_err(e, command, t))?;
            buf.extend_from_slice(&part);
            if let Some(end) = literal_end {
                if buf.len() <= end {
                    continue;
                }
                text_from = end;
            }
            let text = &buf[text_from..];
            let trimmed = text
                .strip_suffix(b"\r\n")
                .or_else(|| text.strip_suffix(b"\n"))
                .unwrap_or(text);
            if let Some(open) = trimmed
                .strip_suffix(b"}")
                .and_then(|t| t.iter().rposition(|&b| b == b'{'))
            {
                let digits = &trimmed[open + 1..trimmed.len() - 1];
                if !digits.is_empty() && digits.iter().all(u8::is_ascii_digit) {
                    let n: usize = std::str::from_utf8(digits)
                        .ok()
                        .and_then(|d| d.parse().ok())
                        .unwrap_or(0);
                    literal_end = Some(buf.len() + n);
                    continue;
                }
            }
            return Ok(buf);
        }
    }
}

/// Parses a tagged line `tag SP status SP text`.
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
            let set = uid_set(chunk);
            let command = format!("UID STORE {set} {query}");
            let t = self.io_timeout;
            let s = self.session()?;
            let r = s
                .uid_store(&set, query)
                .map(|_| ())
                .map_err(|e| map_err(e, &command, t));
            self.check(r)?;
            self.drain_unsolicited();
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
            let set = uid_set(chunk);
            let command = format!("UID EXPUNGE {set}");
            let t = self.io_timeout;
            let s = self.session()?;
            let r = s
                .uid_expunge(&set)
                .map(|_| ())
                .map_err(|e| map_err(e, &command, t));
            self.check(r)?;
            self.drain_unsolicited();
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
        let t = self.io_timeout;
        let s = self.session()?;
        let r = s
            .expunge()
            .map(|_| ())
            .map_err(|e| map_err(e, "EXPUNGE", t));
        self.check(r)?;
        self.drain_unsolicited();
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
        let t = self.io_timeout;
        let s = self.session()?;
        let r = s.uid_search(criteria).map_err(|e| map_err(e, &command, t));
        let found = self.check(r)?;
        self.drain_unsolicited();
        Ok(found.into_iter().collect())
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

    #[test]
    fn name_attributes_from_debug() {
        #[derive(Debug)]
        #[allow(dead_code)]
        enum Fake {
            NoSelect,
            Sent,
            Extension(&'static str),
        }
        assert_eq!(name_attribute(&Fake::NoSelect), "\\Noselect");
        assert_eq!(name_attribute(&Fake::Sent), "\\Sent");
        assert_eq!(
            name_attribute(&Fake::Extension("\\HasChildren")),
            "\\HasChildren"
        );
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
        let d = |l: &'static [u8], n| untagged_data(l, n).unwrap();
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
        assert_eq!(untagged_data(b"* LISTX a\r\n", "LIST"), None);
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
