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
//! Limits of the `imap` crate (3.0.0-alpha.15) and what is done about them:
//! - it reads a whole command response into memory before parsing it, so [`fetch_bodies`]
//!   needs about the batch's bytes (plus one message copy) of memory: batch by bytes;
//! - an untagged line it cannot parse ends the command with a `BYE` "no explanation given";
//!   that is reported as [`ImapError::Protocol`];
//! - its `Fetch` does not tell an absent `FLAGS` from an empty `FLAGS ()`; responses for one
//!   message are merged by sequence number and the last non-empty FLAGS wins (case 17);
//! - its LIST attribute type is not exported; attributes are read from its `Debug` form;
//! - a tagged `NO` to UID FETCH discards the data already received for that command (the whole
//!   batch fails; retry smaller or one by one).
//!
//! After an I/O error (timeout, closed connection) the session is out of step with the server;
//! every later call returns an error. Connect again.
//!
//! [`fetch_bodies`]: ImapClient::fetch_bodies

use std::cell::Cell;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use crate::endpoint::{ServerSpec, TlsMode};
use crate::message::{Flag, Flags, MailboxName};
use crate::mutf7;
use crate::net::{self, NetError, Stream, Timeouts, TlsOptions};

/// The longest line accepted before TLS (greeting, CAPABILITY), in bytes.
const MAX_PRE_TLS_LINE: usize = 64 * 1024;

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
    #[error("login refused: {0}")]
    Auth(String),

    /// An `imap://` server does not offer STARTTLS (or refused it) and plain text was not
    /// allowed.
    #[error("refusing to log in without TLS: {0}")]
    NoTls(String),

    /// The server answered `NO` to `command` (e.g. `EXAMINE "Sent"`); `text` is the rest of the
    /// line, response code included.
    #[error("the server answered NO to `{command}`: {text}")]
    No { command: String, text: String },

    /// The server answered `BAD` to `command`.
    #[error("the server answered BAD to `{command}`: {text}")]
    Bad { command: String, text: String },

    /// The server ended the session (`BYE`, in the greeting or to a command).
    #[error("the server closed the session: {0}")]
    Bye(String),

    /// The server broke the protocol, or sent something the `imap` crate cannot parse.
    #[error("protocol error: {0}")]
    Protocol(String),
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
    /// is not valid modified UTF-7 is kept as the server sent it. Note: with a `.` delimiter a
    /// level may itself contain `/`; use `wire` (+ `delimiter`) as the identity.
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
/// `/`; INBOX case-insensitive (see [`MailboxName::new`]).
pub fn decode_mailbox_name(wire: &str, delimiter: Option<char>) -> MailboxName {
    let levels: Vec<String> = match delimiter {
        Some(d) => wire
            .split(d)
            .map(|l| mutf7::decode(l).unwrap_or_else(|_| l.to_string()))
            .collect(),
        None => vec![mutf7::decode(wire).unwrap_or_else(|_| wire.to_string())],
    };
    MailboxName::new(&levels.join("/"))
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
    /// the response buffer (no copy: a 40 MB message is held once).
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
    NotAuthenticated(::imap::Client<Stream>),
    Authenticated(::imap::Session<Stream>),
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
            TlsMode::StartTls => starttls(tcp, spec, opts, io_timeout)?,
        };
        let tls = stream.is_tls();
        let mut client = ::imap::Client::new(stream);
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
        })
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
        self.selected = None;
        let command = format!("EXAMINE {}", quote(&mb.wire));
        let t = self.io_timeout;
        let s = self.session()?;
        let r = s.examine(&mb.wire).map_err(|e| map_err(e, &command, t));
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
        let t = self.io_timeout;
        let s = self.session()?;
        let r = s
            .uid_fetch("1:*", &query)
            .map_err(|e| map_err(e, &command, t));
        let fetches = self.check(r)?;
        let expunged = self.drain_unsolicited();
        let merged = merge_fetches(fetches.iter(), expunged);
        let mut out = Vec::with_capacity(merged.len());
        for m in merged.into_values() {
            let Some(uid) = m.uid else { continue };
            let size = m.size.ok_or_else(|| missing("RFC822.SIZE", uid))?;
            let internal_date = m
                .internal_date
                .ok_or_else(|| missing("INTERNALDATE", uid))?;
            out.push(Listed {
                uid,
                flags: m.flags,
                size: u64::from(size),
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
    /// compressed into ranges (`1:5,9,12:20`), and calls `f` once per message in UID order.
    /// The whole answer is held in memory while `f` runs: the caller bounds a batch by bytes
    /// (RFC822.SIZE from [`list_messages`](Self::list_messages)).
    ///
    /// Returns the requested UIDs the server did not return (expunged meanwhile), sorted.
    ///
    /// Errors: the first error of `f` (the rest of the batch is not delivered), or an
    /// [`ImapError`] converted with `E::from`. A tagged NO loses the whole batch (crate
    /// limitation): retry with smaller batches to find the message the server cannot send.
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
        let query = "(UID FLAGS INTERNALDATE RFC822.SIZE BODY.PEEK[])";
        let command = format!("UID FETCH {set} {query}");
        let t = self.io_timeout;
        let s = self.session()?;
        let r = s
            .uid_fetch(&set, query)
            .map_err(|e| map_err(e, &command, t));
        let fetches = self.check(r)?;
        let expunged = self.drain_unsolicited();
        let wanted: BTreeSet<u32> = uids.iter().copied().collect();
        // Bodies stay borrowed from the crate's buffer until handed over, one at a time.
        let mut bodies: BTreeMap<u32, &[u8]> = BTreeMap::new();
        for fe in fetches.iter() {
            if let (Some(uid), Some(body)) = (fe.uid, fe.body()) {
                if wanted.contains(&uid) {
                    bodies.insert(uid, body);
                }
            }
        }
        let merged = merge_fetches(fetches.iter(), expunged);
        let mut meta: BTreeMap<u32, Merged> = BTreeMap::new();
        for m in merged.into_values() {
            if let Some(uid) = m.uid {
                meta.insert(uid, m);
            }
        }
        let mut got = BTreeSet::new();
        for (uid, body) in bodies {
            let m = meta.remove(&uid).unwrap_or_default();
            let internal_date = m
                .internal_date
                .ok_or_else(|| missing("INTERNALDATE", uid))?;
            got.insert(uid);
            f(Fetched {
                uid,
                flags: m.flags,
                internal_date,
                size: m.size.map(u64::from).unwrap_or(body.len() as u64),
                body,
            })?;
        }
        Ok(wanted.difference(&got).copied().collect())
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

    fn session(&mut self) -> Result<&mut ::imap::Session<Stream>, ImapError> {
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
    flags: Flags,
    size: Option<u32>,
    internal_date: Option<i64>,
    modseq: Option<u64>,
}

/// Merges FETCH responses by sequence number (RFC 3501 7.4.2: a server may split a message's
/// items over several responses and send unsolicited FLAGS updates, case 17). The last
/// non-empty FLAGS wins. When messages were expunged during the command (`expunged`),
/// responses without a UID are ignored, as their sequence numbers may have moved.
fn merge_fetches<'a>(
    fetches: impl Iterator<Item = &'a ::imap::types::Fetch<'a>>,
    expunged: bool,
) -> BTreeMap<u32, Merged> {
    let mut by_seq: BTreeMap<u32, Merged> = BTreeMap::new();
    let mut extra_key = u32::MAX;
    for fe in fetches {
        if expunged && fe.uid.is_none() {
            continue;
        }
        let key = match (expunged, fe.uid) {
            // Keyed by UID's own slot when sequence numbers cannot be trusted.
            (true, Some(_)) => {
                extra_key -= 1;
                extra_key
            }
            _ => fe.message,
        };
        let m = by_seq.entry(key).or_default();
        if fe.uid.is_some() {
            m.uid = fe.uid;
        }
        let flags = convert_flags(fe.flags());
        if !flags.is_empty() || m.flags.is_empty() {
            m.flags = flags;
        }
        if fe.size.is_some() {
            m.size = fe.size;
        }
        if let Some(d) = fe.internal_date() {
            m.internal_date = Some(d.timestamp());
        }
        if let Some(ms) = fe.mod_seq() {
            m.modseq = Some(ms);
        }
    }
    by_seq
}

fn convert_flags(flags: &[::imap::types::Flag<'_>]) -> Flags {
    flags
        .iter()
        .filter_map(|f| Flag::from_imap(&f.to_string()))
        .collect()
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

/// Login errors: a NO is [`ImapError::Auth`] unless its response code (RFC 5530) says the
/// credentials may be fine.
fn login_error(e: ::imap::Error, command: &str, io_timeout: Option<Duration>) -> ImapError {
    match map_err(e, command, io_timeout) {
        ImapError::No { command, text } => {
            let upper = text.to_ascii_uppercase();
            let temporary = ["[UNAVAILABLE]", "[SERVERBUG]", "[INUSE]", "[LIMIT]"]
                .iter()
                .any(|c| upper.starts_with(c));
            if temporary {
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
fn check_greeting(line: &str) -> Result<(), ImapError> {
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
    tcp: &mut TcpStream,
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
    mut tcp: TcpStream,
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
            return Ok(Stream::Plain(tcp));
        }
        return Err(ImapError::NoTls(format!(
            "{} does not offer STARTTLS (use imaps:// or --allow-plaintext)",
            spec.host
        )));
    }
    match pre_tls_command(&mut tcp, "m2", "STARTTLS", io_timeout) {
        Ok(_) => Ok(net::tls_wrap(tcp, &spec.host, &opts.tls)?),
        Err(ImapError::No { text, .. } | ImapError::Bad { text, .. }) => {
            if opts.allow_plaintext {
                Ok(Stream::Plain(tcp))
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
}
