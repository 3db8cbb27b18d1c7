//! A POP3 client: RFC 1939 (USER/PASS, APOP, STAT, LIST, UIDL, TOP, RETR, DELE, RSET, QUIT,
//! byte-stuffing), RFC 2449 (CAPA, PIPELINING, response codes), RFC 2595 (STLS) and RFC 5034
//! (AUTH PLAIN).
//!
//! Messages are streamed: [`Pop3Client::retr_each`] hands the caller a reader over one message's
//! un-stuffed wire bytes, read through a fixed 64 KiB buffer, so memory does not grow with the
//! message or the maildrop. The end of a message is only ever the `.` line (RFC 1939 section 3);
//! the octet count some servers put in the `+OK` reply is ignored. A connection that drops
//! mid-message is an error, never a short message.
//!
//! Secrets: the password is only ever written to the socket. No error, `Debug` output or log
//! line contains it; errors name commands as `PASS`, `AUTH PLAIN`, `APOP <user>`.
//!
//! After a failure in the middle of a multi-line reply (a dropped connection, a caller that
//! stopped reading a message while pipelined commands were in flight) the session is
//! *abandoned*: later calls fail, and [`Pop3Client::quit`] closes the connection without sending
//! `QUIT`, so the server leaves the UPDATE state out and deletes nothing (RFC 1939 section 6).

use std::fmt;
use std::io::{self, Read, Write};
use std::time::Duration;

use base64::Engine as _;
use md5::{Digest, Md5};

use crate::core::endpoint::{escape_controls, ServerSpec, TlsMode};
use crate::protocol::net::{self, NetError, Stream, Timeouts, TlsOptions};

/// Longest reply line accepted (status lines, CAPA, LIST, UIDL lines), in bytes without CRLF.
/// Message body lines have no limit.
pub const MAX_REPLY_LINE: usize = 64 * 1024;

/// Size of the read buffer, in bytes.
const BUF_SIZE: usize = 64 * 1024;

/// How many RETR or DELE commands are kept in flight when the server announces PIPELINING
/// (RFC 2449 section 6.6).
pub const PIPELINE_WINDOW: usize = 16;

/// Longest command line, CRLF included (RFC 2449 section 4); longer AUTH PLAIN initial
/// responses are sent in the continuation form instead (RFC 5034 section 4).
const MAX_COMMAND: usize = 255;

/// A POP3 failure. Display is one lower-case line; it never contains the password.
#[derive(Debug, thiserror::Error)]
pub enum Pop3Error {
    /// Connecting or the TLS handshake failed.
    #[error(transparent)]
    Net(#[from] NetError),

    /// Reading or writing failed after connecting. The kind tells what happened:
    /// `UnexpectedEof` ("connection closed by server"), `TimedOut` ("timed out after N s waiting
    /// for the server"), `ConnectionReset`, or `Other` for an abandoned session.
    #[error("{0}")]
    Io(#[from] io::Error),

    /// The server refused the credentials: its `-ERR` text to USER, PASS, APOP or AUTH.
    #[error("login refused: {0}")]
    Auth(String),

    /// A `pop3://` server does not offer STLS (or refused it), or the session is not encrypted,
    /// and plain-text login was not allowed.
    #[error("refusing to log in without TLS: {0}")]
    NoTls(String),

    /// The server answered `-ERR` to `command` (e.g. `RETR 3`, `DELE 2`, `QUIT`); `text` is the
    /// rest of the `-ERR` line.
    #[error("the server answered -ERR to `{command}`: {text}")]
    Err { command: String, text: String },

    /// The server broke the protocol: a reply that is neither `+OK` nor `-ERR`, an unparseable
    /// STAT/LIST/UIDL line, a reply line over [`MAX_REPLY_LINE`] bytes.
    #[error("protocol error: {0}")]
    Protocol(String),

    /// The answer to `command` (`RETR n`, `TOP n 0`) went on past `limit` bytes
    /// ([`crate::core::limits::max_message_size`]); reading stopped there and the session is
    /// abandoned (the rest of the answer is still on the way).
    #[error("`{command}`: {}", crate::core::limits::too_large(None, *.limit))]
    TooLarge { command: String, limit: u64 },
}

/// How to log in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AuthMethod {
    /// AUTH PLAIN when the server lists SASL PLAIN, else USER/PASS, on a TLS session (or with
    /// plain text allowed); APOP on an unencrypted session whose greeting has a timestamp.
    #[default]
    Auto,
    /// USER and PASS (RFC 1939 section 7).
    User,
    /// APOP with the greeting's timestamp (RFC 1939 section 7).
    Apop,
    /// AUTH PLAIN (RFC 5034, RFC 4616).
    Plain,
}

/// Everything [`Pop3Client::connect`] needs besides the server.
#[derive(Debug, Clone, Default)]
pub struct Pop3Options {
    /// Allow a `pop3://` session without STLS, and sending the password unencrypted
    /// (`--allow-plaintext`).
    pub allow_plaintext: bool,
    /// How to log in (used by the caller for [`Pop3Client::login`]).
    pub auth: AuthMethod,
    /// Extra trusted CA.
    pub tls: TlsOptions,
    /// Connect and read/write timeouts.
    pub timeouts: Timeouts,
}

/// What the server announced in its CAPA reply (RFC 2449 section 6). A server without CAPA
/// (it answers `-ERR`) gives all `false` and empty; that does not mean UIDL or TOP are missing,
/// only unknown.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Capabilities {
    /// The server answered CAPA with `+OK`.
    pub capa: bool,
    pub top: bool,
    pub uidl: bool,
    pub user: bool,
    pub pipelining: bool,
    pub stls: bool,
    /// RESP-CODES: `-ERR [CODE]` response codes are used.
    pub resp_codes: bool,
    /// SASL mechanisms, upper-cased (`PLAIN`, `XOAUTH2`).
    pub sasl: Vec<String>,
    /// The IMPLEMENTATION argument, if any.
    pub implementation: Option<String>,
    /// `LOGIN-DELAY n` (RFC 2449 6.8): the least time between two logins, in seconds. Before
    /// login a server may announce the longest value it uses; after login, this user's.
    pub login_delay: Option<u64>,
    /// Every capability line as sent.
    pub lines: Vec<String>,
}

impl Capabilities {
    /// True when `mech` (any case) is among the SASL mechanisms.
    pub fn has_sasl(&self, mech: &str) -> bool {
        self.sasl.iter().any(|m| m.eq_ignore_ascii_case(mech))
    }
}

/// Parses the lines of a CAPA reply (without the status line and the final `.`).
pub fn parse_capa(lines: &[String]) -> Capabilities {
    let mut c = Capabilities {
        capa: true,
        lines: lines.to_vec(),
        ..Capabilities::default()
    };
    for line in lines {
        let mut words = line.split_whitespace();
        let Some(name) = words.next() else { continue };
        match name.to_ascii_uppercase().as_str() {
            "TOP" => c.top = true,
            "UIDL" => c.uidl = true,
            "USER" => c.user = true,
            "PIPELINING" => c.pipelining = true,
            "STLS" => c.stls = true,
            "RESP-CODES" => c.resp_codes = true,
            "SASL" => c.sasl.extend(words.map(str::to_ascii_uppercase)),
            "LOGIN-DELAY" => c.login_delay = words.next().and_then(|n| n.parse().ok()),
            "IMPLEMENTATION" => {
                let rest = line.trim()[name.len()..].trim();
                c.implementation = (!rest.is_empty()).then(|| rest.to_string());
            }
            _ => {}
        }
    }
    c
}

/// A status line: `+OK text`, `-ERR text`, or a SASL continuation `+ data` (RFC 5034 section 4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    Ok(String),
    Err(String),
    Continue(String),
}

/// Parses a status line (without CRLF). `+OK`/`-ERR` are matched in any case (RFC 1939
/// section 3 says they are upper case; some servers differ). `Err` holds the line, shortened,
/// for a [`Pop3Error::Protocol`].
pub fn parse_status(line: &[u8]) -> Result<Reply, String> {
    let s = String::from_utf8_lossy(line);
    let rest_after = |n: usize| -> Option<String> {
        let rest = &s[n..];
        if rest.is_empty() {
            Some(String::new())
        } else if rest.starts_with(' ') || rest.starts_with('\t') {
            Some(rest.trim().to_string())
        } else {
            None
        }
    };
    if s.len() >= 3 && s.is_char_boundary(3) && s[..3].eq_ignore_ascii_case("+OK") {
        if let Some(t) = rest_after(3) {
            return Ok(Reply::Ok(t));
        }
    }
    if s.len() >= 4 && s.is_char_boundary(4) && s[..4].eq_ignore_ascii_case("-ERR") {
        if let Some(t) = rest_after(4) {
            // Shown in errors: one line, control characters escaped (found by fuzzing).
            return Ok(Reply::Err(escape_controls(&t)));
        }
    }
    if s == "+" {
        return Ok(Reply::Continue(String::new()));
    }
    if let Some(rest) = s.strip_prefix("+ ") {
        return Ok(Reply::Continue(escape_controls(rest.trim())));
    }
    Err(shorten(&s))
}

fn shorten(s: &str) -> String {
    const MAX: usize = 120;
    if s.len() <= MAX {
        return format!("`{}`", escape_controls(s));
    }
    let mut end = MAX;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("`{}…` ({} bytes)", escape_controls(&s[..end]), s.len())
}

/// Parses a STAT reply text (`nn mm`, RFC 1939 section 5): (message count, maildrop size in
/// octets). Further words are ignored.
pub fn parse_stat(text: &str) -> Option<(u32, u64)> {
    let mut w = text.split_whitespace();
    Some((w.next()?.parse().ok()?, w.next()?.parse().ok()?))
}

/// Parses a scan listing line of LIST (`msg octets`, RFC 1939 section 5): (message number,
/// size in octets). Further words are ignored (RFC 1939 allows them).
pub fn parse_scan_line(line: &str) -> Option<(u32, u64)> {
    parse_stat(line)
}

/// Parses a UIDL line (`msg unique-id`, RFC 1939 section 7): (message number, unique-id). The
/// unique-id is 1 to 70 printable characters (0x21..=0x7E); longer ids are accepted, others are
/// not.
pub fn parse_uidl_line(line: &str) -> Option<(u32, String)> {
    let mut w = line.split_ascii_whitespace();
    let n = w.next()?.parse().ok()?;
    let uid = w.next()?;
    if w.next().is_some() || !uid.bytes().all(|b| (0x21..=0x7e).contains(&b)) {
        return None;
    }
    Some((n, uid.to_string()))
}

/// The APOP timestamp in a greeting: the first `<...>` containing an `@` (a msg-id, RFC 1939
/// section 7), brackets included.
pub fn apop_timestamp(greeting: &str) -> Option<&str> {
    let start = greeting.find('<')?;
    let len = greeting[start..].find('>')?;
    let ts = &greeting[start..=start + len];
    (ts.contains('@') && !ts.contains(char::is_whitespace)).then_some(ts)
}

/// The APOP digest: lower-case hex MD5 of `timestamp` (with its brackets) followed by the
/// password (RFC 1939 section 7).
pub fn apop_digest(timestamp: &str, password: &str) -> String {
    let mut h = Md5::new();
    h.update(timestamp.as_bytes());
    h.update(password.as_bytes());
    hex::encode(h.finalize())
}

/// An extended response code at the start of a `-ERR` text (RFC 2449 section 8, RFC 3206):
/// what the server says about why it refused, beyond its free text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RespCode {
    /// `[IN-USE]` (RFC 2449 8.1.1): another session holds the maildrop's lock. Temporary.
    InUse,
    /// `[LOGIN-DELAY]` (RFC 2449 8.1.2): logged in too soon after the last login; the CAPA
    /// value `LOGIN-DELAY n` says how long to wait. Temporary.
    LoginDelay,
    /// `[SYS/TEMP]` (RFC 3206 4): a temporary system problem. Temporary.
    SysTemp,
    /// `[SYS/PERM]` (RFC 3206 4): a permanent problem (an account disabled, a broken maildrop):
    /// retrying will not help until an administrator acts.
    SysPerm,
    /// `[AUTH]` (RFC 3206 5): the credentials are wrong. Permanent.
    Auth,
}

impl RespCode {
    /// The code at the start of `text` (the rest of a `-ERR` line), any case; `None` for text
    /// without a known code. Pure.
    pub fn of(text: &str) -> Option<RespCode> {
        let rest = text.trim_start().strip_prefix('[')?;
        let code = &rest[..rest.find(']')?];
        Some(match code.to_ascii_uppercase().as_str() {
            "IN-USE" => RespCode::InUse,
            "LOGIN-DELAY" => RespCode::LoginDelay,
            "SYS/TEMP" => RespCode::SysTemp,
            "SYS/PERM" => RespCode::SysPerm,
            "AUTH" => RespCode::Auth,
            _ => return None,
        })
    }

    /// True when trying again later may succeed (`IN-USE`, `LOGIN-DELAY`, `SYS/TEMP`).
    pub fn is_temporary(self) -> bool {
        matches!(
            self,
            RespCode::InUse | RespCode::LoginDelay | RespCode::SysTemp
        )
    }
}

/// The error for a `-ERR` to a login command: [`Pop3Error::Auth`], unless the text starts with a
/// response code saying the credentials may be fine (RFC 2449 section 8, RFC 3206): `[IN-USE]`,
/// `[LOGIN-DELAY]`, `[SYS/TEMP]`, `[SYS/PERM]`, or is a temporary refusal without a code
/// ([`crate::core::fault::classify`]: "Mailbox locked", "Unable to lock maildrop"), which give
/// [`Pop3Error::Err`].
fn login_refusal(command: String, text: String) -> Pop3Error {
    // Old daemons say "Mailbox locked" / "Unable to lock maildrop" without a code: temporary
    // too (crate::core::fault::classify).
    use crate::core::fault::{classify, Command, Status};
    match RespCode::of(&text) {
        Some(RespCode::Auth) => Pop3Error::Auth(text),
        Some(_) => Pop3Error::Err { command, text },
        None if classify(Status::Err, Command::Login, &text)
            .class
            .temporary() =>
        {
            Pop3Error::Err { command, text }
        }
        None => Pop3Error::Auth(text),
    }
}

/// The byte stream with its read buffer.
struct Conn<S> {
    s: S,
    buf: Box<[u8]>,
    start: usize,
    end: usize,
    /// The socket read timeout, for error messages.
    timeout: Option<Duration>,
}

fn closed() -> io::Error {
    io::Error::new(io::ErrorKind::UnexpectedEof, "connection closed by server")
}

impl<S: Read + Write> Conn<S> {
    fn new(s: S, timeout: Option<Duration>) -> Self {
        Conn {
            s,
            buf: vec![0u8; BUF_SIZE].into_boxed_slice(),
            start: 0,
            end: 0,
            timeout,
        }
    }

    fn avail(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    /// Reads more bytes after the buffered ones; an end of stream is an `UnexpectedEof` error.
    fn fill(&mut self) -> io::Result<()> {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        } else if self.end == self.buf.len() {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        debug_assert!(self.end < self.buf.len());
        loop {
            match self.s.read(&mut self.buf[self.end..]) {
                Ok(0) => return Err(closed()),
                Ok(n) => {
                    self.end += n;
                    return Ok(());
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(net::readable_io_error(e, self.timeout)),
            }
        }
    }

    /// One reply line without its line end (CRLF, or a bare LF from a sloppy server).
    fn read_line(&mut self) -> Result<Vec<u8>, Pop3Error> {
        let mut line = Vec::new();
        loop {
            if let Some(i) = self.avail().iter().position(|&b| b == b'\n') {
                line.extend_from_slice(&self.buf[self.start..self.start + i]);
                self.start += i + 1;
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                if line.len() > MAX_REPLY_LINE {
                    break;
                }
                return Ok(line);
            }
            line.extend_from_slice(self.avail());
            self.start = self.end;
            if line.len() > MAX_REPLY_LINE + 1 {
                break;
            }
            self.fill()?;
        }
        Err(Pop3Error::Protocol(format!(
            "a reply line is longer than {} KiB: {}",
            MAX_REPLY_LINE / 1024,
            shorten(&String::from_utf8_lossy(&line[..200]))
        )))
    }

    fn send(&mut self, data: &[u8]) -> io::Result<()> {
        self.s
            .write_all(data)
            .and_then(|_| self.s.flush())
            .map_err(|e| net::readable_io_error(e, self.timeout))
    }
}

/// Reads one multi-line body (RETR, TOP) from the connection: un-stuffs lines that start with
/// `.`, stops at the `.` line, keeps CRLF. Any failure is remembered and returned again.
///
/// At most [`crate::core::limits::max_message_size`] bytes are handed out: a body going on past it
/// fails (`over_limit`), whatever it says of itself, so an endless answer costs neither memory
/// nor disk.
struct Body<'a, S> {
    conn: &'a mut Conn<S>,
    at_line_start: bool,
    done: bool,
    failed: Option<(io::ErrorKind, String)>,
    /// Bytes handed out so far, and the most allowed.
    count: u64,
    limit: u64,
    /// Reading stopped because the body went on past `limit`.
    over_limit: bool,
}

impl<'a, S: Read + Write> Body<'a, S> {
    fn new(conn: &'a mut Conn<S>) -> Self {
        Body {
            conn,
            at_line_start: true,
            done: false,
            failed: None,
            count: 0,
            limit: crate::core::limits::max_message_size(),
            over_limit: false,
        }
    }

    /// Makes at least `n` bytes (n <= 3) available.
    fn need(&mut self, n: usize) -> io::Result<()> {
        while self.conn.avail().len() < n {
            self.conn.fill()?;
        }
        Ok(())
    }

    /// Copies as many whole or partial lines as fit into `out` (dot-unstuffed, RFC 1939
    /// section 3), reading from the socket only when nothing is copied yet; 0 at the
    /// terminating `.` line.
    fn read_inner(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.done || out.is_empty() {
            return Ok(0);
        }
        let mut w = 0;
        while w < out.len() {
            if self.at_line_start {
                if w > 0 {
                    // A line start is decided only with the bytes at hand: otherwise what
                    // is copied goes out first, and the next call reads on.
                    let a = self.conn.avail();
                    if a.is_empty() || (a[0] == b'.' && a.len() < 3) {
                        break;
                    }
                }
                self.need(1)?;
                if self.conn.avail()[0] == b'.' {
                    self.need(2)?;
                    match self.conn.avail()[1] {
                        b'\n' => {
                            self.conn.start += 2;
                            self.done = true;
                            return Ok(w);
                        }
                        b'\r' => {
                            self.need(3)?;
                            if self.conn.avail()[2] == b'\n' {
                                self.conn.start += 3;
                                self.done = true;
                                return Ok(w);
                            }
                        }
                        _ => {}
                    }
                    // A stuffed line: drop the first dot (RFC 1939 section 3).
                    self.conn.start += 1;
                }
                self.at_line_start = false;
            }
            if self.conn.avail().is_empty() {
                if w > 0 {
                    break;
                }
                self.conn.fill()?;
            }
            let avail = self.conn.avail();
            let mut n = avail.len().min(out.len() - w);
            if let Some(i) = memchr::memchr(b'\n', &avail[..n]) {
                n = i + 1;
                self.at_line_start = true;
            }
            out[w..w + n].copy_from_slice(&avail[..n]);
            self.conn.start += n;
            w += n;
        }
        Ok(w)
    }

    /// Reads and discards the rest of the body.
    fn drain(&mut self) -> io::Result<()> {
        io::copy(self, &mut io::sink()).map(|_| ())
    }
}

impl<S: Read + Write> Read for Body<'_, S> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if let Some((kind, text)) = &self.failed {
            return Err(io::Error::new(*kind, text.clone()));
        }
        let r = self.read_inner(out).and_then(|n| {
            self.count += n as u64;
            if self.count > self.limit {
                // The bytes of this read are not handed out: no caller ever gets more than
                // the limit.
                self.over_limit = true;
                return Err(io::Error::new(
                    io::ErrorKind::FileTooLarge,
                    crate::core::limits::too_large(None, self.limit),
                ));
            }
            Ok(n)
        });
        r.inspect_err(|e| {
            self.failed = Some((e.kind(), e.to_string()));
        })
    }
}

/// A POP3 session in the AUTHORIZATION state (after connecting) or TRANSACTION state (after
/// [`login`](Pop3Client::login)).
pub struct Pop3Client<S: Read + Write = Stream> {
    conn: Conn<S>,
    caps: Capabilities,
    greeting: String,
    timestamp: Option<String>,
    /// The session is encrypted.
    secure: bool,
    /// The password may be sent over an unencrypted session.
    allow_plaintext: bool,
    /// Why the session cannot be used any more.
    abandoned: Option<String>,
}

impl<S: Read + Write> fmt::Debug for Pop3Client<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pop3Client")
            .field("greeting", &self.greeting)
            .field("caps", &self.caps)
            .field("secure", &self.secure)
            .field("abandoned", &self.abandoned)
            .finish_non_exhaustive()
    }
}

impl Pop3Client<Stream> {
    /// Connects to `spec` and reads the greeting and CAPA.
    ///
    /// - [`TlsMode::Implicit`] (`pop3s://`): TLS from the first byte.
    /// - [`TlsMode::StartTls`] (`pop3://`): greeting, CAPA, `STLS`, TLS handshake, CAPA again
    ///   (RFC 2595 section 4). A server that does not list STLS in its CAPA, or answers `-ERR`,
    ///   gives [`Pop3Error::NoTls`] unless `opts.allow_plaintext`, which continues unencrypted.
    ///   A server without CAPA is sent STLS anyway.
    ///
    /// Read and write timeouts are `opts.timeouts.io`; a timeout surfaces as
    /// [`Pop3Error::Io`] of kind `TimedOut`.
    pub fn connect(spec: &ServerSpec, opts: &Pop3Options) -> Result<Self, Pop3Error> {
        let implicit = spec.tls == TlsMode::Implicit;
        let stream = net::connect(&spec.host, spec.port, implicit, &opts.tls, &opts.timeouts)?;
        let timeout = stream.io_timeout();
        let mut c = Self::start(stream, implicit, opts.allow_plaintext, timeout)?;
        if implicit {
            return Ok(c);
        }
        let refuse = |c: Self, why: String| {
            if c.allow_plaintext {
                Ok(c)
            } else {
                Err(Pop3Error::NoTls(why))
            }
        };
        if c.caps.capa && !c.caps.stls {
            return refuse(c, "the server does not offer STLS".into());
        }
        match c.simple("STLS", "STLS") {
            Ok(_) => {}
            Err(Pop3Error::Err { text, .. }) => {
                return refuse(c, format!("the server refused STLS: {text}"))
            }
            Err(e) => return Err(e),
        }
        let Pop3Client {
            conn,
            greeting,
            timestamp,
            allow_plaintext,
            ..
        } = c;
        if !conn.avail().is_empty() {
            return Err(Pop3Error::Protocol(
                "the server sent data after its STLS reply, before the TLS handshake".into(),
            ));
        }
        let tls = conn.s.start_tls(&spec.host, &opts.tls)?;
        let mut c = Pop3Client {
            conn: Conn::new(tls, timeout),
            caps: Capabilities::default(),
            greeting,
            timestamp,
            secure: true,
            allow_plaintext,
            abandoned: None,
        };
        c.caps = c.capa()?;
        Ok(c)
    }

    /// True when the session is encrypted (pop3s, or after STLS).
    pub fn is_tls(&self) -> bool {
        self.secure
    }
}

impl<S: Read + Write> Pop3Client<S> {
    /// Starts a session over an already connected stream: reads the greeting, then CAPA.
    /// The session counts as unencrypted; `allow_plaintext_auth` lets [`login`](Self::login)
    /// send the password anyway (tests over loopback or in-memory streams).
    pub fn from_stream(stream: S, allow_plaintext_auth: bool) -> Result<Self, Pop3Error> {
        Self::start(stream, false, allow_plaintext_auth, None)
    }

    fn start(
        stream: S,
        secure: bool,
        allow_plaintext: bool,
        timeout: Option<Duration>,
    ) -> Result<Self, Pop3Error> {
        let mut c = Pop3Client {
            conn: Conn::new(stream, timeout),
            caps: Capabilities::default(),
            greeting: String::new(),
            timestamp: None,
            secure,
            allow_plaintext,
            abandoned: None,
        };
        match c.read_status()? {
            Reply::Ok(text) => {
                c.timestamp = apop_timestamp(&text).map(str::to_string);
                c.greeting = text;
            }
            Reply::Err(text) => {
                return Err(Pop3Error::Err {
                    command: "connect".into(),
                    text,
                })
            }
            Reply::Continue(t) => {
                return Err(Pop3Error::Protocol(format!(
                    "the greeting is not +OK: `+ {t}`"
                )))
            }
        }
        c.caps = c.capa()?;
        Ok(c)
    }

    /// What the server announced in its last CAPA reply (RFC 2449).
    pub fn capabilities(&self) -> &Capabilities {
        &self.caps
    }

    /// The text of the server's greeting after `+OK`.
    pub fn greeting(&self) -> &str {
        &self.greeting
    }

    /// True when the session was abandoned after a failure and cannot be used (see the module
    /// documentation).
    pub fn is_abandoned(&self) -> bool {
        self.abandoned.is_some()
    }

    fn usable(&self) -> Result<(), Pop3Error> {
        match &self.abandoned {
            None => Ok(()),
            Some(why) => Err(Pop3Error::Io(io::Error::other(format!(
                "the POP3 session was abandoned ({why}); reconnect"
            )))),
        }
    }

    /// Marks the session unusable when `r` is an I/O or protocol error (the reply stream is no
    /// longer in step with the commands).
    fn track<T>(&mut self, r: Result<T, Pop3Error>) -> Result<T, Pop3Error> {
        if let Err(e @ (Pop3Error::Io(_) | Pop3Error::Protocol(_) | Pop3Error::TooLarge { .. })) =
            &r
        {
            if self.abandoned.is_none() {
                self.abandoned = Some(e.to_string());
            }
        }
        r
    }

    fn send(&mut self, line: &str) -> Result<(), Pop3Error> {
        let mut data = Vec::with_capacity(line.len() + 2);
        data.extend_from_slice(line.as_bytes());
        data.extend_from_slice(b"\r\n");
        let r = self.conn.send(&data).map_err(Pop3Error::Io);
        self.track(r)
    }

    fn read_status(&mut self) -> Result<Reply, Pop3Error> {
        let r = self.conn.read_line().and_then(|l| {
            parse_status(&l)
                .map_err(|s| Pop3Error::Protocol(format!("a reply is neither +OK nor -ERR: {s}")))
        });
        self.track(r)
    }

    /// Reads a `+OK` / `-ERR` answer to `shown` (the command as it may appear in errors).
    fn expect_ok(&mut self, shown: &str) -> Result<String, Pop3Error> {
        match self.read_status()? {
            Reply::Ok(t) => Ok(t),
            Reply::Err(text) => Err(Pop3Error::Err {
                command: shown.to_string(),
                text,
            }),
            Reply::Continue(t) => {
                let e = Pop3Error::Protocol(format!("unexpected `+ {t}` reply to `{shown}`"));
                self.track(Err(e))
            }
        }
    }

    /// Sends `line`, reads a single-line answer.
    fn simple(&mut self, line: &str, shown: &str) -> Result<String, Pop3Error> {
        self.usable()?;
        self.send(line)?;
        self.expect_ok(shown)
    }

    /// Reads the lines of a multi-line reply up to the `.` line, un-stuffed.
    fn read_multiline(&mut self) -> Result<Vec<String>, Pop3Error> {
        let mut lines = Vec::new();
        loop {
            let r = self.conn.read_line();
            let line = self.track(r)?;
            if line == b"." {
                return Ok(lines);
            }
            let line = line.strip_prefix(b".").unwrap_or(&line);
            lines.push(String::from_utf8_lossy(line).into_owned());
        }
    }

    /// CAPA (RFC 2449 section 5); `-ERR` gives empty capabilities.
    fn capa(&mut self) -> Result<Capabilities, Pop3Error> {
        match self.simple("CAPA", "CAPA") {
            Ok(_) => Ok(parse_capa(&self.read_multiline()?)),
            Err(Pop3Error::Err { .. }) => Ok(Capabilities::default()),
            Err(e) => Err(e),
        }
    }

    /// Logs in as `user` (RFC 1939 section 7, RFC 5034), then re-reads CAPA (RFC 2449 section
    /// 5: capabilities may change after login).
    ///
    /// [`AuthMethod::Auto`] chooses: on an unencrypted session whose greeting has a timestamp,
    /// APOP (the password is not sent); otherwise, when the session is TLS or plain text is
    /// allowed, AUTH PLAIN if SASL PLAIN is listed, else USER/PASS. USER/PASS and AUTH PLAIN
    /// are refused with [`Pop3Error::NoTls`] on an unencrypted session unless plain text is
    /// allowed.
    ///
    /// Errors: [`Pop3Error::Auth`] with the server's `-ERR` text (with or without the RFC 3206
    /// code `[AUTH]`), or naming the user name or password when it holds a CR, LF or NUL
    /// (nothing is sent then; every other byte is sent as given); but a `-ERR` carrying the
    /// RFC 2449/3206 response code `[IN-USE]`, `[LOGIN-DELAY]`, `[SYS/TEMP]` or `[SYS/PERM]`
    /// (the credentials may be fine, see [`RespCode`]) is [`Pop3Error::Err`] with `command`
    /// `USER`, `PASS`, `APOP` or `AUTH PLAIN`; the wait a `[LOGIN-DELAY]` asks for is
    /// [`Capabilities::login_delay`].
    pub fn login(
        &mut self,
        user: &str,
        password: &str,
        method: AuthMethod,
    ) -> Result<(), Pop3Error> {
        self.usable()?;
        // Any other byte is sent as given (PASS takes the rest of the line, RFC 1939 7); a
        // line break would end the command (RFC 1939 3) and a NUL is not a character.
        let bad = |s: &str| s.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0);
        for (what, s) in [("user name", user), ("password", password)] {
            if bad(s) {
                return Err(Pop3Error::Auth(format!(
                    "the {what} contains a line break or NUL byte, which POP3 cannot send (RFC 1939 3); nothing was sent"
                )));
            }
        }
        let plain_ok = self.secure || self.allow_plaintext;
        let method = match method {
            AuthMethod::Auto if !self.secure && self.timestamp.is_some() => AuthMethod::Apop,
            AuthMethod::Auto if self.caps.has_sasl("PLAIN") => AuthMethod::Plain,
            AuthMethod::Auto => AuthMethod::User,
            m => m,
        };
        if matches!(method, AuthMethod::User | AuthMethod::Plain) && !plain_ok {
            return Err(Pop3Error::NoTls(
                "the session is not encrypted; the password would be sent in clear text".into(),
            ));
        }
        match method {
            AuthMethod::User => {
                self.send(&format!("USER {user}"))?;
                self.auth_reply("USER")?;
                self.send(&format!("PASS {password}"))?;
                self.auth_reply("PASS")?;
            }
            AuthMethod::Apop => {
                let Some(ts) = self.timestamp.clone() else {
                    return Err(Pop3Error::Auth(
                        "APOP is not possible: the server's greeting has no <timestamp>".into(),
                    ));
                };
                self.send(&format!("APOP {user} {}", apop_digest(&ts, password)))?;
                self.auth_reply("APOP")?;
            }
            AuthMethod::Plain => self.auth_plain(user, password)?,
            AuthMethod::Auto => unreachable!("resolved above"),
        }
        if self.caps.capa {
            self.caps = self.capa()?;
        }
        Ok(())
    }

    fn auth_reply(&mut self, shown: &str) -> Result<(), Pop3Error> {
        match self.expect_ok(shown) {
            Err(Pop3Error::Err { command, text }) => Err(login_refusal(command, text)),
            r => r.map(|_| ()),
        }
    }

    /// AUTH PLAIN (RFC 5034 section 4): the initial-response form when the command fits in
    /// 255 octets, else `AUTH PLAIN`, `+ `, response.
    fn auth_plain(&mut self, user: &str, password: &str) -> Result<(), Pop3Error> {
        let resp =
            base64::engine::general_purpose::STANDARD.encode(format!("\0{user}\0{password}"));
        if "AUTH PLAIN ".len() + resp.len() + 2 <= MAX_COMMAND {
            self.send(&format!("AUTH PLAIN {resp}"))?;
        } else {
            self.send("AUTH PLAIN")?;
            match self.read_status()? {
                Reply::Continue(_) => self.send(&resp)?,
                Reply::Err(text) => return Err(login_refusal("AUTH PLAIN".into(), text)),
                Reply::Ok(_) => {
                    let e =
                        Pop3Error::Protocol("`+OK` to `AUTH PLAIN` before any credentials".into());
                    return self.track(Err(e));
                }
            }
        }
        match self.read_status()? {
            Reply::Continue(_) => {
                // The server wants more than PLAIN has to give: cancel (RFC 5034 section 4).
                self.send("*")?;
                let _ = self.read_status()?;
                Err(Pop3Error::Auth(
                    "the server asked for more data after the AUTH PLAIN response".into(),
                ))
            }
            Reply::Ok(_) => Ok(()),
            Reply::Err(text) => Err(login_refusal("AUTH PLAIN".into(), text)),
        }
    }

    /// STAT (RFC 1939 section 5): (number of messages, maildrop size in octets), deleted
    /// messages not counted.
    pub fn stat(&mut self) -> Result<(u32, u64), Pop3Error> {
        let text = self.simple("STAT", "STAT")?;
        parse_stat(&text).ok_or_else(|| {
            Pop3Error::Protocol(format!("cannot parse the STAT reply {}", shorten(&text)))
        })
    }

    /// LIST (RFC 1939 section 5): (message number, size in octets) of every message not marked
    /// deleted, in the server's order.
    pub fn list(&mut self) -> Result<Vec<(u32, u64)>, Pop3Error> {
        self.simple("LIST", "LIST")?;
        let lines = self.read_multiline()?;
        lines
            .iter()
            .map(|l| {
                parse_scan_line(l).ok_or_else(|| {
                    Pop3Error::Protocol(format!("cannot parse the LIST line {}", shorten(l)))
                })
            })
            .collect()
    }

    /// UIDL (RFC 1939 section 7): (message number, unique-id) of every message not marked
    /// deleted. `None` when the server answers `-ERR` (it has no UIDL); the caller then falls
    /// back to another identity (DESIGN.md invariant 3). A server whose CAPA announced UIDL
    /// (RFC 2449 6.7) and then answers `-ERR` gives that [`Pop3Error::Err`]: falling back to
    /// other identities for one session would archive every message again once UIDL works.
    pub fn uidl(&mut self) -> Result<Option<Vec<(u32, String)>>, Pop3Error> {
        match self.simple("UIDL", "UIDL") {
            Ok(_) => {}
            Err(Pop3Error::Err { .. }) if !self.caps.uidl => return Ok(None),
            Err(e) => return Err(e),
        }
        let lines = self.read_multiline()?;
        lines
            .iter()
            .map(|l| {
                parse_uidl_line(l).ok_or_else(|| {
                    Pop3Error::Protocol(format!("cannot parse the UIDL line {}", shorten(l)))
                })
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    }

    /// TOP (RFC 1939 section 7): writes the header block, the empty line and the first `lines`
    /// body lines of message `n` to `out`, un-stuffed, CRLF kept, without the final `.` line.
    ///
    /// A write error on `out` abandons the session and is returned as [`Pop3Error::Io`].
    pub fn top(&mut self, n: u32, lines: u32, out: &mut dyn Write) -> Result<(), Pop3Error> {
        let cmd = format!("TOP {n} {lines}");
        self.simple(&cmd, &cmd)?;
        let mut body = Body::new(&mut self.conn);
        let r = io::copy(&mut body, out);
        let net_failed = body.failed.take();
        let done = body.done;
        let r = match (net_failed, r) {
            (Some(_), _) if body.over_limit => Err(Pop3Error::TooLarge {
                command: cmd,
                limit: body.limit,
            }),
            (Some((kind, text)), _) => Err(Pop3Error::Io(io::Error::new(kind, text))),
            (None, Err(e)) => Err(Pop3Error::Io(e)),
            (None, Ok(_)) => Ok(()),
        };
        if r.is_err() && !done {
            return self.track(r);
        }
        r
    }

    /// RETR (RFC 1939 section 7) of each message in `msgs`, in order, calling `f(n, body)` for
    /// each. `body` yields the message's wire bytes: CRLF line ends kept, un-stuffed, without
    /// the final `.` line; it returns `Ok(0)` only after that `.` line, so a short read is
    /// never the end of a message. An octet count in the `+OK` reply is ignored.
    ///
    /// With PIPELINING announced (RFC 2449 section 6.6), up to [`PIPELINE_WINDOW`] RETR
    /// commands are kept in flight; otherwise one at a time.
    ///
    /// `f` should read the body to its end. When it returns `Ok` earlier, the rest is read and
    /// discarded. Errors, which stop the loop:
    /// - the body could not be read (connection closed, timeout): that [`Pop3Error::Io`]
    ///   (converted into `E`), whatever `f` returned, so a network failure is never mistaken
    ///   for the caller's own failure; the session is abandoned;
    /// - `f` returned `Err(e)`: `e`; the session is abandoned unless the body had been read to
    ///   its end and no other RETR was in flight;
    /// - `-ERR` to `RETR n`: [`Pop3Error::Err`] with `command` `RETR n`; RETRs already in
    ///   flight are read and discarded, so the session stays usable.
    pub fn retr_each<E: From<Pop3Error>>(
        &mut self,
        msgs: &[u32],
        mut f: impl FnMut(u32, &mut dyn Read) -> Result<(), E>,
    ) -> Result<(), E> {
        self.usable()?;
        let window = if self.caps.pipelining {
            PIPELINE_WINDOW
        } else {
            1
        };
        let mut sent = msgs.len().min(window);
        self.send_batch("RETR", &msgs[..sent])?;
        for (i, &n) in msgs.iter().enumerate() {
            let command = format!("RETR {n}");
            match self.expect_ok(&command) {
                Ok(_) => {}
                Err(e @ Pop3Error::Err { .. }) => {
                    // Keep the session in step: discard the answers already asked for.
                    for _ in i + 1..sent {
                        if self.discard_multiline_answer().is_err() {
                            break;
                        }
                    }
                    return Err(e.into());
                }
                Err(e) => return Err(e.into()),
            }
            if sent < msgs.len() {
                self.send(&format!("RETR {}", msgs[sent]))?;
                sent += 1;
            }
            let mut body = Body::new(&mut self.conn);
            let res = f(n, &mut body);
            let res = match (&body.failed, res) {
                (None, Ok(())) => body.drain().map_err(|e| Pop3Error::Io(e).into()),
                (None, Err(e)) => Err(e),
                (Some(_), _) => Ok(()),
            };
            let done = body.done;
            if body.over_limit {
                let limit = body.limit;
                self.abandoned
                    .get_or_insert_with(|| format!("`{command}` went on past the size limit"));
                return Err(Pop3Error::TooLarge { command, limit }.into());
            }
            if let Some((kind, text)) = body.failed.take() {
                let e = io::Error::new(kind, format!("{text} (during `{command}`)"));
                self.abandoned.get_or_insert_with(|| e.to_string());
                return Err(Pop3Error::Io(e).into());
            }
            if let Err(e) = res {
                if !done || sent > i + 1 {
                    self.abandoned = Some(format!("`{command}` was interrupted"));
                }
                return Err(e);
            }
        }
        Ok(())
    }

    /// Reads one answer that is multi-line when `+OK` (RETR), discarding it.
    fn discard_multiline_answer(&mut self) -> Result<(), Pop3Error> {
        if let Reply::Ok(_) = self.read_status()? {
            let r = Body::new(&mut self.conn).drain().map_err(Pop3Error::Io);
            self.track(r)?;
        }
        Ok(())
    }

    /// Sends `VERB n` for each of `msgs` in one write.
    fn send_batch(&mut self, verb: &str, msgs: &[u32]) -> Result<(), Pop3Error> {
        if msgs.is_empty() {
            return Ok(());
        }
        let batch: String = msgs.iter().map(|n| format!("{verb} {n}\r\n")).collect();
        let r = self.conn.send(batch.as_bytes()).map_err(Pop3Error::Io);
        self.track(r)
    }

    /// DELE (RFC 1939 section 6) of each message: marks them deleted; the server removes them
    /// only when [`quit`](Self::quit) succeeds. Pipelined (up to [`PIPELINE_WINDOW`] in flight)
    /// when the server announces PIPELINING.
    ///
    /// Every reply is read; the first `-ERR` is returned as [`Pop3Error::Err`] (`DELE n`), the
    /// other messages stay marked. [`rset`](Self::rset) unmarks all.
    pub fn dele(&mut self, msgs: &[u32]) -> Result<(), Pop3Error> {
        self.usable()?;
        let window = if self.caps.pipelining {
            PIPELINE_WINDOW
        } else {
            1
        };
        let mut sent = msgs.len().min(window);
        self.send_batch("DELE", &msgs[..sent])?;
        let mut first_err = None;
        for &n in msgs {
            let command = format!("DELE {n}");
            match self.expect_ok(&command) {
                Ok(_) => {}
                Err(e @ Pop3Error::Err { .. }) => {
                    first_err.get_or_insert(e);
                }
                Err(e) => return Err(e),
            }
            if sent < msgs.len() {
                self.send(&format!("DELE {}", msgs[sent]))?;
                sent += 1;
            }
        }
        first_err.map_or(Ok(()), Err)
    }

    /// RSET (RFC 1939 section 6): unmarks every message marked deleted in this session.
    pub fn rset(&mut self) -> Result<(), Pop3Error> {
        self.simple("RSET", "RSET").map(|_| ())
    }

    /// NOOP (RFC 1939 section 6), e.g. to keep a session open.
    pub fn noop(&mut self) -> Result<(), Pop3Error> {
        self.simple("NOOP", "NOOP").map(|_| ())
    }

    /// QUIT (RFC 1939 section 6): in the TRANSACTION state the server enters UPDATE and removes
    /// the messages marked by [`dele`](Self::dele). `Ok` means the server confirmed; `-ERR`
    /// (some deletions failed) is [`Pop3Error::Err`] `QUIT`; an I/O error leaves unknown which
    /// deletions happened (the next UIDL tells).
    ///
    /// An abandoned session is closed without sending QUIT, so nothing is deleted, and gives
    /// [`Pop3Error::Io`].
    pub fn quit(mut self) -> Result<(), Pop3Error> {
        if let Some(why) = &self.abandoned {
            return Err(Pop3Error::Io(io::Error::other(format!(
                "QUIT not sent, no message deleted: the session was abandoned ({why})"
            ))));
        }
        self.simple("QUIT", "QUIT").map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::Sha256;
    use std::io::Cursor;

    /// An in-memory server: replies are read from `input` at most `chunk` bytes per read;
    /// commands written are collected, with the input position at each write.
    struct Mock {
        input: Cursor<Vec<u8>>,
        chunk: usize,
        written: Vec<u8>,
        writes: Vec<(u64, Vec<u8>)>,
    }

    impl Mock {
        fn new(input: &[u8], chunk: usize) -> Self {
            Mock {
                input: Cursor::new(input.to_vec()),
                chunk,
                written: Vec::new(),
                writes: Vec::new(),
            }
        }
    }

    impl Read for Mock {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = buf.len().min(self.chunk);
            self.input.read(&mut buf[..n])
        }
    }

    impl Write for Mock {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.written.extend_from_slice(buf);
            self.writes.push((self.input.position(), buf.to_vec()));
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    const NO_CAPA: &str = "+OK ready\r\n-ERR no CAPA\r\n";

    fn client(script: &str, chunk: usize) -> Pop3Client<Mock> {
        Pop3Client::from_stream(Mock::new(script.as_bytes(), chunk), true).unwrap()
    }

    fn sent(c: &Pop3Client<Mock>) -> String {
        String::from_utf8(c.conn.s.written.clone()).unwrap()
    }

    /// Runs retr_each and collects the bodies.
    fn retr_all(c: &mut Pop3Client<Mock>, msgs: &[u32]) -> Result<Vec<Vec<u8>>, Pop3Error> {
        let mut out = Vec::new();
        c.retr_each(msgs, |_, r| {
            let mut v = Vec::new();
            r.read_to_end(&mut v)?;
            out.push(v);
            Ok::<(), Pop3Error>(())
        })?;
        Ok(out)
    }

    #[test]
    fn status_lines() {
        let ok = |s: &str| Ok(Reply::Ok(s.to_string()));
        let err = |s: &str| Ok(Reply::Err(s.to_string()));
        let cases: &[(&[u8], Result<Reply, ()>)] = &[
            (b"+OK", ok("")),
            (b"+OK 2 320", ok("2 320")),
            (b"+ok hello", ok("hello")),
            (b"-ERR", err("")),
            (b"-ERR [IN-USE] locked", err("[IN-USE] locked")),
            (b"-err no", err("no")),
            (b"+", Ok(Reply::Continue(String::new()))),
            (b"+ ", Ok(Reply::Continue(String::new()))),
            (b"+ abc=", Ok(Reply::Continue("abc=".into()))),
            (b"+OKAY", Err(())),
            (b"-ERROR", Err(())),
            (b"* OK imap", Err(())),
            (b"", Err(())),
            (b"\xff\xfe", Err(())),
        ];
        for (line, want) in cases {
            let got = parse_status(line).map_err(|_| ());
            assert_eq!(&got, want, "{:?}", String::from_utf8_lossy(line));
        }
    }

    #[test]
    fn response_codes() {
        // (text after -ERR, code, temporary)
        let cases = [
            ("[IN-USE] maildrop locked", Some(RespCode::InUse), true),
            ("[in-use]", Some(RespCode::InUse), true),
            (
                "[LOGIN-DELAY] wait 15 minutes",
                Some(RespCode::LoginDelay),
                true,
            ),
            ("[SYS/TEMP] disk full", Some(RespCode::SysTemp), true),
            (
                "[SYS/PERM] account disabled",
                Some(RespCode::SysPerm),
                false,
            ),
            ("[AUTH] invalid password", Some(RespCode::Auth), false),
            ("  [AUTH]x", Some(RespCode::Auth), false),
            ("[SYS] what", None, false),
            ("[IN-USE", None, false),
            ("bad password [AUTH]", None, false),
            ("", None, false),
        ];
        for (text, code, temporary) in cases {
            assert_eq!(RespCode::of(text), code, "{text}");
            assert_eq!(
                code.is_some_and(RespCode::is_temporary),
                temporary,
                "{text}"
            );
        }
        // Only [AUTH] (or no code) says the credentials are wrong.
        let refusal = |t: &str| login_refusal("PASS".into(), t.into());
        assert!(matches!(refusal("[AUTH] no"), Pop3Error::Auth(t) if t == "[AUTH] no"));
        assert!(matches!(refusal("no"), Pop3Error::Auth(_)));
        for t in [
            "[IN-USE] x",
            "[LOGIN-DELAY] x",
            "[SYS/TEMP] x",
            "[SYS/PERM] x",
        ] {
            assert!(
                matches!(refusal(t), Pop3Error::Err { ref command, ref text } if command == "PASS" && text == t),
                "{t}"
            );
        }
        let c = parse_capa(&["LOGIN-DELAY 900".into(), "USER".into()]);
        assert_eq!(c.login_delay, Some(900));
        assert_eq!(parse_capa(&["LOGIN-DELAY x".into()]).login_delay, None);
    }

    #[test]
    fn capa_lines() {
        let lines: Vec<String> = [
            "TOP",
            "uidl",
            "SASL PLAIN xoauth2",
            "RESP-CODES",
            "PIPELINING",
            "STLS",
            "USER",
            "IMPLEMENTATION Dovecot 2.3",
            "EXPIRE NEVER",
            "",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let c = parse_capa(&lines);
        assert!(c.capa && c.top && c.uidl && c.pipelining && c.stls && c.user && c.resp_codes);
        assert_eq!(c.sasl, ["PLAIN", "XOAUTH2"]);
        assert!(c.has_sasl("plain"));
        assert_eq!(c.implementation.as_deref(), Some("Dovecot 2.3"));
        let c = parse_capa(&["TOP".to_string()]);
        assert!(c.capa && c.top && !c.uidl && !c.pipelining && c.sasl.is_empty());
    }

    #[test]
    fn scan_and_uidl_lines() {
        let scans = [
            ("1 182", Some((1, 182))),
            ("2  221 extra", Some((2, 221))),
            ("x 1", None),
            ("1", None),
            ("1 -5", None),
            ("", None),
        ];
        for (l, want) in scans {
            assert_eq!(parse_scan_line(l), want, "{l:?}");
        }
        let uidls = [
            ("1 QX-7f3a-0001", Some((1, "QX-7f3a-0001".to_string()))),
            (
                "3 whqtswO00WBw418f9t5JxYwZ",
                Some((3, "whqtswO00WBw418f9t5JxYwZ".to_string())),
            ),
            ("1", None),
            ("a b", None),
            ("1 a b", None),
            ("1 caf\u{e9}", None),
        ];
        for (l, want) in uidls {
            assert_eq!(parse_uidl_line(l), want, "{l:?}");
        }
        assert_eq!(parse_stat("3 587"), Some((3, 587)));
    }

    #[test]
    fn apop_digest_matches_rfc1939() {
        let greeting = "POP3 server ready <1896.697170952@dbc.mtview.ca.us>";
        let ts = apop_timestamp(greeting).unwrap();
        assert_eq!(ts, "<1896.697170952@dbc.mtview.ca.us>");
        assert_eq!(
            apop_digest(ts, "tanstaaf"),
            "c4c9334bac560ecc979e58001b3e22fb"
        );
        for g in ["ready", "Dovecot ready.", "ready <no-at-sign>", "x < a@b >"] {
            assert_eq!(apop_timestamp(g), None, "{g}");
        }
    }

    /// (wire bytes after +OK, expected message bytes)
    const BODIES: &[(&str, &str)] = &[
        ("a\r\nb\r\n.\r\n", "a\r\nb\r\n"),
        (".\r\n", ""),
        ("..\r\n.\r\n", ".\r\n"),
        ("...\r\n.\r\n", "..\r\n"),
        ("..signature starts\r\n.\r\n", ".signature starts\r\n"),
        ("x.\r\n.x\r\n. \r\n.\r\n", "x.\r\nx\r\n \r\n"),
        ("bare\rcr\r\n.\r\n", "bare\rcr\r\n"),
        ("lf only\n.\n", "lf only\n"),
        ("no stuff .\r\n\r\n.\r\n", "no stuff .\r\n\r\n"),
        ("..\r\n..\r\n.\r\n", ".\r\n.\r\n"),
    ];

    #[test]
    fn unstuffing_across_read_boundaries() {
        for chunk in [1, 2, 3, 4, 5, 7, 64 * 1024] {
            for (wire, want) in BODIES {
                let script = format!("{NO_CAPA}+OK 12 octets\r\n{wire}+OK next\r\n");
                let mut c = client(&script, chunk);
                let got = retr_all(&mut c, &[1]).unwrap();
                assert_eq!(
                    String::from_utf8_lossy(&got[0]),
                    *want,
                    "chunk {chunk}, wire {wire:?}"
                );
                // The next reply is read in step.
                c.noop().unwrap();
            }
        }
    }

    #[test]
    fn unstuffing_into_small_and_large_read_buffers() {
        // The reader copies several lines per call: every output buffer size, with every
        // server chunking, gives the same bytes (all bodies of BODIES run together too).
        let all_wire: String = BODIES
            .iter()
            .map(|(w, _)| {
                w.strip_suffix(".\r\n")
                    .or_else(|| w.strip_suffix(".\n"))
                    .unwrap()
            })
            .collect();
        let joined = format!("{all_wire}.\r\n");
        for chunk in [1, 2, 3, 5, 64 * 1024] {
            for out_size in [1, 2, 3, 4, 7, 64, 8192] {
                for (wire, want) in BODIES.iter().copied().chain([(joined.as_str(), "")]) {
                    let script = format!("{NO_CAPA}+OK 12 octets\r\n{wire}+OK next\r\n");
                    let mut c = client(&script, chunk);
                    let mut got = Vec::new();
                    c.retr_each(&[1], |_, r| {
                        let mut buf = vec![0u8; out_size];
                        loop {
                            let n = r.read(&mut buf)?;
                            if n == 0 {
                                break;
                            }
                            got.extend_from_slice(&buf[..n]);
                        }
                        Ok::<(), Pop3Error>(())
                    })
                    .unwrap();
                    if wire == joined {
                        let want: String = BODIES.iter().map(|(_, w)| *w).collect();
                        assert_eq!(
                            String::from_utf8_lossy(&got),
                            want,
                            "chunk {chunk} out {out_size} joined"
                        );
                    } else {
                        assert_eq!(
                            String::from_utf8_lossy(&got),
                            want,
                            "chunk {chunk} out {out_size} {wire:?}"
                        );
                    }
                    c.noop().unwrap();
                }
            }
        }
    }

    #[test]
    fn several_messages_and_pipelining() {
        let wire = "+OK ready <1.2@h>\r\n+OK\r\nPIPELINING\r\nUIDL\r\n.\r\n\
                    +OK 5\r\nm1\r\n.\r\n+OK\r\n..m2\r\n.\r\n+OK\r\nm3\r\n.\r\n+OK bye\r\n";
        for chunk in [1, 3, 4096] {
            let mut c = client(wire, chunk);
            assert!(c.capabilities().pipelining);
            let got = retr_all(&mut c, &[1, 2, 3]).unwrap();
            assert_eq!(
                got,
                [b"m1\r\n".to_vec(), b".m2\r\n".to_vec(), b"m3\r\n".to_vec()]
            );
            // All three RETRs went out in one write, before any reply was read.
            let (_, batch) = &c.conn.s.writes[1];
            assert_eq!(batch, b"RETR 1\r\nRETR 2\r\nRETR 3\r\n");
            c.quit().unwrap();
        }
        // Without PIPELINING, one command per reply.
        let wire = format!("{NO_CAPA}+OK\r\nm1\r\n.\r\n+OK\r\nm2\r\n.\r\n");
        let mut c = client(&wire, 1);
        retr_all(&mut c, &[1, 2]).unwrap();
        let w = &c.conn.s.writes;
        assert_eq!(w[1].1, b"RETR 1\r\n");
        assert_eq!(w[2].1, b"RETR 2\r\n");
        assert!(
            w[2].0 > w[1].0,
            "RETR 2 was sent before the answer to RETR 1 was read"
        );
    }

    #[test]
    fn retr_err_keeps_session_in_step() {
        let wire = "+OK\r\n+OK\r\nPIPELINING\r\n.\r\n\
                    +OK\r\nm1\r\n.\r\n-ERR no such message\r\n+OK\r\nm3\r\n.\r\n+OK\r\n";
        let mut c = client(wire, 7);
        let mut got = Vec::new();
        let err = c
            .retr_each(&[1, 2, 3], |n, r| {
                io::copy(r, &mut io::sink())?;
                got.push(n);
                Ok::<(), Pop3Error>(())
            })
            .unwrap_err();
        assert_eq!(got, [1]);
        assert!(
            matches!(&err, Pop3Error::Err { command, text } if command == "RETR 2" && text == "no such message"),
            "{err:?}"
        );
        c.noop().unwrap();
    }

    #[test]
    fn dropped_connection_mid_body_is_an_error() {
        for chunk in [1, 5, 4096] {
            let wire = format!("{NO_CAPA}+OK\r\nm1\r\n.\r\n+OK\r\nline one\r\nline tw");
            let mut c = client(&wire, chunk);
            let mut complete = Vec::new();
            let err = c
                .retr_each(&[1, 2], |n, r| {
                    let mut v = Vec::new();
                    r.read_to_end(&mut v)?;
                    complete.push((n, v));
                    Ok::<(), Pop3Error>(())
                })
                .unwrap_err();
            assert_eq!(complete, [(1, b"m1\r\n".to_vec())]);
            match &err {
                Pop3Error::Io(e) => assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof),
                other => panic!("{other:?}"),
            }
            assert!(
                err.to_string().contains("connection closed by server"),
                "{err}"
            );
            assert!(c.is_abandoned());
            assert!(c.noop().is_err());
            // QUIT is not sent on an abandoned session: nothing gets deleted.
            let before = sent(&c);
            let e = c.quit().unwrap_err();
            assert!(e.to_string().contains("QUIT not sent"), "{e}");
            assert!(!before.contains("QUIT"));
        }
    }

    #[test]
    fn callers_error_passes_through_and_network_error_wins() {
        #[derive(Debug)]
        enum MyErr {
            Disk,
            Pop(Pop3Error),
        }
        impl From<Pop3Error> for MyErr {
            fn from(e: Pop3Error) -> Self {
                MyErr::Pop(e)
            }
        }
        // The caller fails: its error comes back.
        let wire = format!("{NO_CAPA}+OK\r\nm1\r\n.\r\n+OK\r\n");
        let mut c = client(&wire, 4096);
        let r = c.retr_each(&[1], |_, r| {
            io::copy(r, &mut io::sink()).unwrap();
            Err(MyErr::Disk)
        });
        assert!(matches!(r, Err(MyErr::Disk)));
        // Body read to the end, nothing else in flight: the session is still usable.
        c.noop().unwrap();

        // The connection fails while the caller maps it to its own error: the network error wins.
        let wire = format!("{NO_CAPA}+OK\r\npartial");
        let mut c = client(&wire, 4096);
        let r = c.retr_each(&[1], |_, r| {
            io::copy(r, &mut io::sink()).map_err(|_| MyErr::Disk)?;
            Ok(())
        });
        assert!(matches!(r, Err(MyErr::Pop(Pop3Error::Io(_)))), "{r:?}");

        // A caller that stops early and says Ok: the rest is skipped, the session stays in step.
        let wire = format!("{NO_CAPA}+OK\r\nhead\r\n\r\nbody\r\n.\r\n+OK\r\n");
        let mut c = client(&wire, 3);
        c.retr_each(&[1], |_, r| {
            let mut b = [0u8; 2];
            r.read_exact(&mut b)?;
            Ok::<(), Pop3Error>(())
        })
        .unwrap();
        c.noop().unwrap();
    }

    #[test]
    fn garbage_and_long_lines() {
        let wire = format!("{NO_CAPA}* OK this is IMAP\r\n");
        let mut c = client(&wire, 4096);
        let e = c.stat().unwrap_err();
        assert!(matches!(e, Pop3Error::Protocol(_)), "{e:?}");
        assert!(e.to_string().contains("neither +OK nor -ERR"), "{e}");

        let long = "9".repeat(MAX_REPLY_LINE + 10);
        let wire = format!("{NO_CAPA}+OK {long}\r\n");
        let e = client(&wire, 4096).stat().unwrap_err();
        assert!(e.to_string().contains("longer than 64 KiB"), "{e}");
        // ... also when the line never ends.
        let wire = format!("{NO_CAPA}+OK {long}");
        let e = client(&wire, 1000).stat().unwrap_err();
        assert!(e.to_string().contains("longer than 64 KiB"), "{e}");

        let wire = format!("{NO_CAPA}+OK\r\n1 abc\r\n.\r\n");
        let e = client(&wire, 4096).list().unwrap_err();
        assert!(
            e.to_string().contains("cannot parse the LIST line `1 abc`"),
            "{e}"
        );

        let wire = format!("{NO_CAPA}+OK lots\r\n");
        let e = client(&wire, 4096).stat().unwrap_err();
        assert!(e.to_string().contains("STAT"), "{e}");

        // Closed before the greeting.
        let e = Pop3Client::from_stream(Mock::new(b"", 10), true).unwrap_err();
        assert_eq!(e.to_string(), "connection closed by server");
    }

    #[test]
    fn stat_list_uidl_top() {
        let wire = format!(
            "{NO_CAPA}+OK 2 320\r\n+OK 2 messages\r\n1 120\r\n2 200\r\n.\r\n\
             +OK\r\n1 a-1\r\n2 b-2\r\n.\r\n-ERR UIDL not supported\r\n\
             +OK top of message\r\nSubject: x\r\n\r\n..dot\r\n.\r\n"
        );
        let mut c = client(&wire, 3);
        assert_eq!(c.stat().unwrap(), (2, 320));
        assert_eq!(c.list().unwrap(), [(1, 120), (2, 200)]);
        assert_eq!(
            c.uidl().unwrap(),
            Some(vec![(1, "a-1".to_string()), (2, "b-2".to_string())])
        );
        assert_eq!(c.uidl().unwrap(), None);
        let mut out = Vec::new();
        c.top(2, 1, &mut out).unwrap();
        assert_eq!(out, b"Subject: x\r\n\r\n.dot\r\n");
        assert!(sent(&c).ends_with("STAT\r\nLIST\r\nUIDL\r\nUIDL\r\nTOP 2 1\r\n"));
    }

    #[test]
    fn dele_rset_quit() {
        let wire = "+OK\r\n+OK\r\nPIPELINING\r\n.\r\n+OK\r\n-ERR gone\r\n+OK\r\n+OK\r\n-ERR some deleted messages not removed\r\n";
        let mut c = client(wire, 4096);
        let e = c.dele(&[1, 2, 3]).unwrap_err();
        assert_eq!(e.to_string(), "the server answered -ERR to `DELE 2`: gone");
        assert_eq!(c.conn.s.writes[1].1, b"DELE 1\r\nDELE 2\r\nDELE 3\r\n");
        c.rset().unwrap();
        let e = c.quit().unwrap_err();
        assert!(matches!(e, Pop3Error::Err { ref command, .. } if command == "QUIT"));
    }

    fn login_case(
        greeting: &str,
        capa: &str,
        replies: &str,
        allow: bool,
        method: AuthMethod,
    ) -> (Result<(), Pop3Error>, String) {
        let wire = format!("+OK {greeting}\r\n{capa}{replies}-ERR no capa after login\r\n");
        let mut c = Pop3Client::from_stream(Mock::new(wire.as_bytes(), 4096), allow).unwrap();
        let r = c.login("alice", "s3cret pw", method);
        let written = sent(&c);
        (r, written.split_once("\r\n").unwrap().1.to_string())
    }

    #[test]
    fn login_methods() {
        let capa_plain = "+OK\r\nUSER\r\nSASL PLAIN LOGIN\r\n.\r\n";
        let capa_user = "+OK\r\nUSER\r\n.\r\n";
        let plain = base64::engine::general_purpose::STANDARD.encode("\0alice\0s3cret pw");
        let apop = apop_digest("<7.8@host>", "s3cret pw");
        use AuthMethod::*;
        // (greeting, CAPA reply, replies to the login, plain text allowed, method,
        //  outcome, commands sent after the first CAPA)
        type Case<'a> = (
            &'a str,
            &'a str,
            &'a str,
            bool,
            AuthMethod,
            Result<(), &'a str>,
            String,
        );
        #[rustfmt::skip]
        let cases: Vec<Case> = vec![
            ("ready", capa_user, "+OK\r\n+OK\r\n", true, Auto, Ok(()),
             "USER alice\r\nPASS s3cret pw\r\nCAPA\r\n".into()),
            ("ready", capa_plain, "+OK\r\n", true, Auto, Ok(()),
             format!("AUTH PLAIN {plain}\r\nCAPA\r\n")),
            ("ready <7.8@host>", capa_plain, "+OK\r\n", true, Auto, Ok(()),
             format!("APOP alice {apop}\r\nCAPA\r\n")),
            ("ready <7.8@host>", capa_user, "+OK\r\n", false, Auto, Ok(()),
             format!("APOP alice {apop}\r\nCAPA\r\n")),
            ("ready", capa_user, "", false, Auto,
             Err("refusing to log in without TLS: the session is not encrypted"), "".into()),
            ("ready", capa_plain, "", false, Plain,
             Err("refusing to log in without TLS"), "".into()),
            ("ready", capa_user, "+OK\r\n-ERR [AUTH] invalid password\r\n", true, User,
             Err("login refused: [AUTH] invalid password"), "USER alice\r\nPASS s3cret pw\r\n".into()),
            ("ready", capa_user, "+OK\r\n-ERR [IN-USE] mailbox locked\r\n", true, User,
             Err("the server answered -ERR to `PASS`: [IN-USE] mailbox locked"),
             "USER alice\r\nPASS s3cret pw\r\n".into()),
            ("ready", capa_plain, "-ERR authentication failed\r\n", true, Plain,
             Err("login refused: authentication failed"), format!("AUTH PLAIN {plain}\r\n")),
            ("ready", capa_user, "", true, Apop,
             Err("login refused: APOP is not possible"), "".into()),
        ];
        for (greeting, capa, replies, allow, method, want, want_sent) in cases {
            let (r, written) = login_case(greeting, capa, replies, allow, method);
            match (&r, want) {
                (Ok(()), Ok(())) => {}
                (Err(e), Err(w)) => {
                    let msg = e.to_string();
                    assert!(msg.starts_with(w), "{greeting} {method:?}: {msg}");
                    assert!(!msg.contains("s3cret"), "password in error: {msg}");
                    assert!(!format!("{e:?}").contains("s3cret"), "password in Debug");
                }
                _ => panic!("{greeting} {method:?}: {r:?}"),
            }
            assert_eq!(written, want_sent, "{greeting} {method:?}");
        }
    }

    #[test]
    fn auth_plain_continuation_for_long_credentials() {
        let long_pw = "p".repeat(300);
        let wire = "+OK ready\r\n+OK\r\nSASL PLAIN\r\n.\r\n+ \r\n+OK logged in\r\n-ERR\r\n";
        let mut c = Pop3Client::from_stream(Mock::new(wire.as_bytes(), 4096), true).unwrap();
        c.login("alice", &long_pw, AuthMethod::Auto).unwrap();
        let resp = base64::engine::general_purpose::STANDARD.encode(format!("\0alice\0{long_pw}"));
        assert!(sent(&c).ends_with(&format!("AUTH PLAIN\r\n{resp}\r\nCAPA\r\n")));
        // Line breaks in credentials are refused before anything is sent.
        let mut c = client(NO_CAPA, 4096);
        let e = c
            .login("alice", "a\r\nDELE 1", AuthMethod::User)
            .unwrap_err();
        assert!(!e.to_string().contains("DELE"));
        assert_eq!(sent(&c), "CAPA\r\n");
    }

    /// Produces `+OK ready`, `-ERR` to CAPA, `+OK` to RETR, then a 40 MiB message on the fly
    /// (1 MiB lines, dot lines, short lines), so nothing of its size is held in memory.
    struct BigServer {
        line: usize,
        lines: usize,
        pending: Vec<u8>,
        pos: usize,
    }

    fn big_line(i: usize) -> Vec<u8> {
        match i % 4 {
            0 => {
                let mut l = vec![b'a' + (i % 26) as u8; 1024 * 1024];
                l.extend_from_slice(b"\r\n");
                l
            }
            1 => b".starts with a dot\r\n".to_vec(),
            2 => b".\r\n".to_vec(),
            _ => format!("line {i}\r\n").into_bytes(),
        }
    }

    impl Read for BigServer {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.pos == self.pending.len() {
                self.pos = 0;
                self.pending = if self.line == 0 {
                    b"+OK ready\r\n-ERR\r\n+OK 41943040 octets\r\n".to_vec()
                } else if self.line <= self.lines {
                    let l = big_line(self.line - 1);
                    if l[0] == b'.' {
                        [b".".as_slice(), &l].concat()
                    } else {
                        l
                    }
                } else if self.line == self.lines + 1 {
                    b".\r\n".to_vec()
                } else {
                    Vec::new()
                };
                self.line += 1;
            }
            let n = buf.len().min(self.pending.len() - self.pos);
            buf[..n].copy_from_slice(&self.pending[self.pos..self.pos + n]);
            self.pos += n;
            Ok(n)
        }
    }

    impl Write for BigServer {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn forty_mib_message_streams() {
        let lines = 160; // 40 lines of 1 MiB
        let mut want = Sha256::new();
        let mut want_len = 0u64;
        for i in 0..lines {
            let l = big_line(i);
            want_len += l.len() as u64;
            want.update(&l);
        }
        let server = BigServer {
            line: 0,
            lines,
            pending: Vec::new(),
            pos: 0,
        };
        let mut c = Pop3Client::from_stream(server, true).unwrap();
        let mut got = Sha256::new();
        let mut got_len = 0u64;
        let mut largest_read = 0;
        c.retr_each(&[1], |_, r| {
            let mut buf = vec![0u8; 256 * 1024];
            loop {
                let n = r.read(&mut buf)?;
                if n == 0 {
                    return Ok::<(), Pop3Error>(());
                }
                largest_read = largest_read.max(n);
                got.update(&buf[..n]);
                got_len += n as u64;
            }
        })
        .unwrap();
        assert_eq!(got_len, want_len);
        assert!(got_len > 40 * 1024 * 1024);
        assert_eq!(got.finalize(), want.finalize());
        assert!(largest_read <= BUF_SIZE, "reads are bounded by the buffer");
    }

    /// A pop3:// server on loopback: greeting, CAPA (with or without STLS), then STLS and TLS
    /// with `identity`, CAPA again, QUIT. Returns the port and the commands it received.
    fn stls_server(
        stls: bool,
        identity: Option<native_tls::Identity>,
    ) -> (u16, std::thread::JoinHandle<Vec<String>>) {
        use std::io::BufRead;
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let h = std::thread::spawn(move || {
            let (tcp, _) = l.accept().unwrap();
            let mut seen = Vec::new();
            let mut w = tcp.try_clone().unwrap();
            let mut r = io::BufReader::new(tcp.try_clone().unwrap());
            let mut line = String::new();
            w.write_all(b"+OK ready\r\n").unwrap();
            let caps = if stls {
                "+OK\r\nUSER\r\nSTLS\r\n.\r\n"
            } else {
                "+OK\r\nUSER\r\n.\r\n"
            };
            loop {
                line.clear();
                if r.read_line(&mut line).unwrap_or(0) == 0 {
                    return seen;
                }
                seen.push(line.trim_end().to_string());
                match line.trim_end() {
                    "CAPA" => w.write_all(caps.as_bytes()).unwrap(),
                    "STLS" => {
                        w.write_all(b"+OK begin TLS\r\n").unwrap();
                        break;
                    }
                    "QUIT" => {
                        w.write_all(b"+OK bye\r\n").unwrap();
                        return seen;
                    }
                    _ => w.write_all(b"+OK\r\n").unwrap(),
                }
            }
            let acceptor = native_tls::TlsAcceptor::new(identity.unwrap()).unwrap();
            let Ok(tls) = acceptor.accept(tcp) else {
                return seen;
            };
            let mut tls = io::BufReader::new(tls);
            loop {
                line.clear();
                if tls.read_line(&mut line).unwrap_or(0) == 0 {
                    return seen;
                }
                seen.push(format!("tls: {}", line.trim_end()));
                let reply: &[u8] = match line.trim_end() {
                    "CAPA" => b"+OK\r\nUSER\r\nPIPELINING\r\n.\r\n",
                    "QUIT" => b"+OK bye\r\n",
                    _ => b"+OK\r\n",
                };
                tls.get_mut().write_all(reply).unwrap();
                if line.trim_end() == "QUIT" {
                    return seen;
                }
            }
        });
        (port, h)
    }

    fn spec(port: u16) -> ServerSpec {
        ServerSpec {
            protocol: crate::core::endpoint::Protocol::Pop3,
            tls: TlsMode::StartTls,
            user: "alice".into(),
            host: "127.0.0.1".into(),
            port,
        }
    }

    #[test]
    fn stls_upgrade_and_refusal() {
        let dir = tempfile::tempdir().unwrap();
        let Some((cert, key)) =
            crate::protocol::net::tests::self_signed(dir.path(), "127.0.0.1", "30")
        else {
            eprintln!("openssl command not available; skipping");
            return;
        };
        let id = native_tls::Identity::from_pkcs8(&cert, &key).unwrap();
        let opts = Pop3Options {
            tls: TlsOptions {
                ca_file: Some(dir.path().join("127.0.0.1.crt")),
                ..TlsOptions::default()
            },
            ..Pop3Options::default()
        };
        let (port, h) = stls_server(true, Some(id));
        let mut c = Pop3Client::connect(&spec(port), &opts).unwrap();
        assert!(c.is_tls());
        assert!(c.capabilities().pipelining, "CAPA is read again after STLS");
        c.login("alice", "pw", AuthMethod::Auto).unwrap();
        c.quit().unwrap();
        assert_eq!(
            h.join().unwrap(),
            [
                "CAPA",
                "STLS",
                "tls: CAPA",
                "tls: USER alice",
                "tls: PASS pw",
                "tls: CAPA",
                "tls: QUIT"
            ]
        );

        // No STLS offered: refused unless plain text is allowed.
        let (port, h) = stls_server(false, None);
        let e = Pop3Client::connect(&spec(port), &opts).unwrap_err();
        assert!(matches!(e, Pop3Error::NoTls(_)), "{e:?}");
        assert_eq!(
            e.to_string(),
            "refusing to log in without TLS: the server does not offer STLS"
        );
        drop(h);
        let (port, h) = stls_server(false, None);
        let allow = Pop3Options {
            allow_plaintext: true,
            ..opts.clone()
        };
        let mut c = Pop3Client::connect(&spec(port), &allow).unwrap();
        assert!(!c.is_tls());
        c.login("alice", "pw", AuthMethod::User).unwrap();
        c.quit().unwrap();
        assert_eq!(
            h.join().unwrap(),
            ["CAPA", "USER alice", "PASS pw", "CAPA", "QUIT"]
        );
    }
}
