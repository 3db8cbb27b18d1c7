//! TCP connections with timeouts, TLS through `native-tls` (OpenSSL on Linux), certificate
//! pinning and the `--trace` protocol trace.
//!
//! Every connection mailkeep makes goes through [`connect`] (implicit TLS or plain) or
//! [`connect_tcp`] + [`tls_wrap`] / [`Stream::plain`] + [`Stream::start_tls`] (STLS /
//! STARTTLS upgrades). Certificate and host-name verification is always on;
//! [`TlsOptions::ca_file`] adds a private CA to the system roots, it never turns verification
//! off. The one exception is a pin, [`TlsOptions::fingerprint`] (`--tls-fingerprint`): then the
//! certificate must be exactly the pinned one (SHA-256 of its DER encoding), and the chain and
//! the host name are not checked, as fetchmail's `sslfingerprint` and mpop's
//! `--tls-fingerprint` do: a pinned self-signed certificate is the point of the option. The
//! pin is compared right after the handshake, before any byte of the protocol is sent.
//!
//! Timeouts: [`Timeouts::connect`] bounds the TCP connect (all resolved addresses together);
//! [`Timeouts::io`] is set as the socket read and write timeout, so a silent server makes a
//! read fail after that long. On Linux such a read fails with `WouldBlock` (not `TimedOut`);
//! [`readable_io_error`] turns both into "timed out after N s waiting for the server".
//!
//! Trace: with [`set_trace`] on (`--trace`), every [`Stream`] writes the protocol exchange to
//! stderr, one line per protocol line, `trace HOST:PORT#N C: ...` (client) or `S: ...`
//! (server), through [`Redactor`], which hides the authentication exchange and summarises
//! message bodies. Everything that is read or written goes through [`Stream`]'s `Read` and
//! `Write`, so no protocol path escapes it.

use std::collections::VecDeque;
use std::fmt;
use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};

use openssl::ssl::{HandshakeError, SslConnector, SslMethod, SslStream, SslVerifyMode, SslVersion};
use openssl::x509::{X509VerifyResult, X509};
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

/// TLS settings for one connection.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsOptions {
    /// A PEM file with one or more extra CA certificates to trust, in addition to the system
    /// roots (`--tls-ca FILE`), for servers with a private CA or a self-signed certificate.
    pub ca_file: Option<PathBuf>,
    /// `--tls-fingerprint`: the SHA-256 of the server certificate's DER encoding. When set, the
    /// certificate must be this one; chain and host name are then not verified.
    pub fingerprint: Option<Fingerprint>,
}

/// A certificate pin: the SHA-256 digest of a certificate's DER encoding (32 bytes).
///
/// Parsed ([`FromStr`]) from 64 hex digits, upper or lower case, with or without colons
/// between the bytes, optionally preceded by `sha256:` or `SHA256 Fingerprint=` (what
/// `openssl x509 -noout -fingerprint -sha256 -in cert.pem` prints). Displayed as OpenSSL does:
/// upper-case byte pairs joined by colons. Boxed, so that an unused `Option<Fingerprint>` in
/// the command-line structs costs one pointer.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Fingerprint(pub Box<[u8; 32]>);

impl Fingerprint {
    /// The fingerprint of a DER-encoded certificate.
    pub fn of_der(der: &[u8]) -> Fingerprint {
        Fingerprint(Box::new(Sha256::digest(der).into()))
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, b) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(":")?;
            }
            write!(f, "{b:02X}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({self})")
    }
}

impl FromStr for Fingerprint {
    type Err = String;

    /// Errors: one line saying what is wrong (not hex, wrong length).
    fn from_str(s: &str) -> Result<Self, String> {
        let t = s.trim();
        let lower = t.to_ascii_lowercase();
        let t = if lower.starts_with("sha256 fingerprint=") {
            &t["sha256 fingerprint=".len()..]
        } else if lower.starts_with("sha256:") {
            &t["sha256:".len()..]
        } else {
            t
        };
        let hex: String = t.chars().filter(|c| *c != ':').collect();
        if let Some(c) = hex.chars().find(|c| !c.is_ascii_hexdigit()) {
            return Err(format!(
                "`{s}` is not a SHA-256 fingerprint: `{c}` is not a hex digit (write 64 hex digits, colons allowed, as `openssl x509 -noout -fingerprint -sha256` prints)"
            ));
        }
        if hex.len() != 64 {
            return Err(format!(
                "`{s}` is not a SHA-256 fingerprint: {} hex digits instead of 64 (a SHA-1 or MD5 fingerprint is not accepted; use `openssl x509 -noout -fingerprint -sha256`)",
                hex.len()
            ));
        }
        let mut out = [0u8; 32];
        hex::decode_to_slice(&hex, &mut out).map_err(|e| format!("`{s}`: {e}"))?;
        Ok(Fingerprint(Box::new(out)))
    }
}

/// Network timeouts. A zero duration means "no timeout".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// Upper bound for establishing the TCP connection, across all addresses the host name
    /// resolves to.
    pub connect: Duration,
    /// Socket read and write timeout: how long one read or write may wait for the server.
    pub io: Duration,
}

impl Default for Timeouts {
    /// 30 s to connect, 120 s per read or write.
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(30),
            io: Duration::from_secs(120),
        }
    }
}

enum Inner {
    Plain(TcpStream),
    Tls(Box<SslStream<BufSocket>>),
}

/// The socket under TLS, read in blocks of up to [`BufSocket::BLOCK`] bytes. OpenSSL reads
/// each TLS record's 5-byte header and then its body with separate `recv` calls (78,000
/// calls for a 142 MB POP3 download from Dovecot); served from this buffer, that is one
/// `recv` per block the kernel has ready. Writes go straight to the socket.
struct BufSocket {
    tcp: TcpStream,
    buf: Box<[u8]>,
    /// `buf[pos..end]` is read from the socket and not yet handed to OpenSSL.
    pos: usize,
    end: usize,
}

impl BufSocket {
    /// Bytes read from the socket at once, at most.
    const BLOCK: usize = 64 * 1024;

    fn new(tcp: TcpStream) -> BufSocket {
        BufSocket {
            tcp,
            buf: vec![0; Self::BLOCK].into_boxed_slice(),
            pos: 0,
            end: 0,
        }
    }
}

impl fmt::Debug for BufSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.tcp.fmt(f)
    }
}

impl Read for BufSocket {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.pos == self.end {
            if out.len() >= self.buf.len() {
                return self.tcp.read(out);
            }
            // An error (a read timeout: WouldBlock) leaves the buffer as it was.
            let n = self.tcp.read(&mut self.buf)?;
            self.pos = 0;
            self.end = n;
        }
        let n = out.len().min(self.end - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

impl Write for BufSocket {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.tcp.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.tcp.flush()
    }
}

/// A connected byte stream: plain TCP or TLS over TCP, traced when [`set_trace`] is on.
pub struct Stream {
    inner: Inner,
    trace: Option<Box<Tracer>>,
}

impl fmt::Debug for Stream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.inner {
            Inner::Plain(s) => f.debug_tuple("Plain").field(s).finish(),
            Inner::Tls(s) => f.debug_tuple("Tls").field(&s.get_ref().tcp).finish(),
        }
    }
}

impl Stream {
    /// A plain (not yet encrypted) stream over a connected socket; `host` names the server in
    /// the trace.
    pub fn plain(tcp: TcpStream, host: &str) -> Stream {
        let trace = Tracer::new(host, &tcp);
        Stream {
            inner: Inner::Plain(tcp),
            trace,
        }
    }

    /// Upgrades a plain stream to TLS after STLS / STARTTLS was accepted (the trace goes on
    /// under the same connection number). A stream that is already TLS is returned as it is.
    ///
    /// Errors: as [`tls_wrap`].
    pub fn start_tls(self, host: &str, opts: &TlsOptions) -> Result<Stream, NetError> {
        match self.inner {
            Inner::Plain(tcp) => tls_wrap_traced(tcp, host, opts, self.trace),
            Inner::Tls(_) => Ok(self),
        }
    }

    /// True when the stream is encrypted.
    pub fn is_tls(&self) -> bool {
        matches!(self.inner, Inner::Tls(_))
    }

    /// The underlying TCP socket.
    pub fn tcp(&self) -> &TcpStream {
        match &self.inner {
            Inner::Plain(s) => s,
            Inner::Tls(s) => &s.get_ref().tcp,
        }
    }

    /// The socket's read timeout (the [`Timeouts::io`] it was connected with), if any.
    pub fn io_timeout(&self) -> Option<Duration> {
        self.tcp().read_timeout().ok().flatten()
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = match &mut self.inner {
            Inner::Plain(s) => s.read(buf),
            Inner::Tls(s) => s.read(buf),
        }?;
        if let Some(t) = &mut self.trace {
            t.server(&buf[..n]);
        }
        Ok(n)
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = match &mut self.inner {
            Inner::Plain(s) => s.write(buf),
            Inner::Tls(s) => s.write(buf),
        }?;
        if let Some(t) = &mut self.trace {
            t.client(&buf[..n]);
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        match &mut self.inner {
            Inner::Plain(s) => s.flush(),
            Inner::Tls(s) => s.flush(),
        }
    }
}

/// A connect or TLS failure. Display is one lower-case line naming the server.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// The host name did not resolve.
    #[error("cannot resolve {host}: {reason}")]
    Resolve { host: String, reason: String },

    /// Every address refused or failed (`addr` is `host:port` as given).
    #[error("cannot connect to {addr}: {reason}")]
    Connect { addr: String, reason: String },

    /// The TCP connect did not finish within [`Timeouts::connect`].
    #[error("timed out after {secs} s connecting to {addr}")]
    ConnectTimeout { addr: String, secs: u64 },

    /// The `--tls-ca` file could not be read or holds no PEM certificate.
    #[error("cannot read CA file {}: {reason}", path.display())]
    CaFile { path: PathBuf, reason: String },

    /// The TLS handshake failed; `reason` keeps OpenSSL's reason (made readable) and, for an
    /// untrusted certificate, a hint to pass `--tls-ca`.
    #[error("TLS handshake with {host} failed: {reason}")]
    Tls { host: String, reason: String },

    /// The server did not complete the TLS handshake within [`Timeouts::io`].
    #[error("timed out after {secs} s in the TLS handshake with {host}")]
    TlsTimeout { host: String, secs: u64 },

    /// `--tls-fingerprint` was given and the server's certificate is another one.
    #[error("TLS certificate of {host} does not match the pinned fingerprint (--tls-fingerprint): expected SHA256 {expected}, the server sent SHA256 {received}")]
    PinMismatch {
        host: String,
        expected: Fingerprint,
        received: Fingerprint,
    },
}

/// `host:port`, with brackets around an IPv6 literal.
fn host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// An io::Error's text without Rust's " (os error N)" suffix, first letter lower-cased:
/// "Connection refused (os error 111)" gives "connection refused".
pub fn io_reason(e: &io::Error) -> String {
    let s = e.to_string();
    let s = match s.rfind(" (os error ") {
        Some(i) if s.ends_with(')') => s[..i].to_string(),
        _ => s,
    };
    lower_first(&s)
}

fn lower_first(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_lowercase().chain(c).collect(),
        None => String::new(),
    }
}

fn secs(d: Duration) -> u64 {
    // Round up so that 500 ms does not print as "0 s".
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

/// True for the error kinds a socket timeout produces (`WouldBlock` on Linux, `TimedOut`
/// elsewhere).
pub fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// Makes an I/O error from an established connection readable, keeping its kind meaningful:
///
/// - `WouldBlock` / `TimedOut` become kind `TimedOut`, "timed out after N s waiting for the
///   server" (`io_timeout` is the socket's read timeout; `None` leaves out the "after N s");
/// - an end of stream (`UnexpectedEof`, or OpenSSL's "unexpected eof") becomes kind
///   `UnexpectedEof`, "connection closed by server";
/// - a reset becomes "connection reset by server";
/// - anything else keeps its kind, with the " (os error N)" suffix removed.
pub fn readable_io_error(e: io::Error, io_timeout: Option<Duration>) -> io::Error {
    if is_timeout(&e) {
        return timeout_error(io_timeout);
    }
    let text = io_reason(&e);
    if e.kind() == io::ErrorKind::UnexpectedEof || text.contains("unexpected eof") {
        return io::Error::new(io::ErrorKind::UnexpectedEof, "connection closed by server");
    }
    match e.kind() {
        io::ErrorKind::ConnectionReset => {
            io::Error::new(io::ErrorKind::ConnectionReset, "connection reset by server")
        }
        io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionAborted => {
            io::Error::new(e.kind(), "connection closed by server")
        }
        kind => io::Error::new(kind, text),
    }
}

/// The error for a read that waited `io_timeout` for the server: kind `TimedOut`,
/// "timed out after N s waiting for the server".
pub fn timeout_error(io_timeout: Option<Duration>) -> io::Error {
    let text = match io_timeout {
        Some(d) => format!("timed out after {} s waiting for the server", secs(d)),
        None => "timed out waiting for the server".to_string(),
    };
    io::Error::new(io::ErrorKind::TimedOut, text)
}

/// Resolves `host`, tries each address with `connect_timeout` until one connects (all within
/// `t.connect`), then sets the read and write timeouts to `t.io` and turns on TCP_NODELAY.
///
/// Errors: [`NetError::Resolve`], [`NetError::ConnectTimeout`] when the time ran out (or the
/// last address timed out), else [`NetError::Connect`] with the last address's reason.
pub fn connect_tcp(host: &str, port: u16, t: &Timeouts) -> Result<TcpStream, NetError> {
    let addr = host_port(host, port);
    let addrs: Vec<_> = (host, port)
        .to_socket_addrs()
        .map_err(|e| NetError::Resolve {
            host: host.to_string(),
            reason: io_reason(&e),
        })?
        .collect();
    if addrs.is_empty() {
        return Err(NetError::Resolve {
            host: host.to_string(),
            reason: "no address found".into(),
        });
    }
    let deadline = (!t.connect.is_zero()).then(|| Instant::now() + t.connect);
    let timed_out = || NetError::ConnectTimeout {
        addr: addr.clone(),
        secs: secs(t.connect),
    };
    let mut last: Option<io::Error> = None;
    for sa in &addrs {
        let attempt = match deadline {
            None => TcpStream::connect(sa),
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(timed_out());
                }
                TcpStream::connect_timeout(sa, left)
            }
        };
        match attempt {
            Ok(tcp) => {
                let io = (!t.io.is_zero()).then_some(t.io);
                let setup = tcp
                    .set_read_timeout(io)
                    .and_then(|_| tcp.set_write_timeout(io))
                    .and_then(|_| tcp.set_nodelay(true));
                return match setup {
                    Ok(()) => Ok(tcp),
                    Err(e) => Err(NetError::Connect {
                        addr,
                        reason: io_reason(&e),
                    }),
                };
            }
            Err(e) => last = Some(e),
        }
    }
    let e = last.expect("at least one address was tried");
    if is_timeout(&e) {
        return Err(timed_out());
    }
    let mut reason = io_reason(&e);
    if addrs.len() > 1 {
        reason.push_str(&format!(" (tried {} addresses)", addrs.len()));
    }
    Err(NetError::Connect { addr, reason })
}

/// Wraps a connected socket in TLS, verifying the certificate chain (system roots plus
/// `opts.ca_file`) and that the certificate is for `host` (a name or an IP literal, which is
/// also sent as SNI when it is a name). With `opts.fingerprint`, the certificate must instead
/// have exactly that SHA-256 fingerprint (chain and name are then not checked), compared
/// after the handshake and before anything is sent.
///
/// Errors: [`NetError::CaFile`], [`NetError::Tls`] (with a readable reason),
/// [`NetError::TlsTimeout`] when the server stops answering during the handshake,
/// [`NetError::PinMismatch`].
pub fn tls_wrap(tcp: TcpStream, host: &str, opts: &TlsOptions) -> Result<Stream, NetError> {
    let trace = Tracer::new(host, &tcp);
    tls_wrap_traced(tcp, host, opts, trace)
}

/// The TLS client context for `opts.ca_file`, built once per process and CA file: OpenSSL's
/// default verify paths (the system's CA bundle, or `SSL_CERT_FILE` / `SSL_CERT_DIR`), plus
/// the certificates of `--tls-ca`; peer verification on, TLS 1.2 at least. Loading the system
/// bundle is most of a no-change backup's CPU, so every connection of a run shares one
/// context (native-tls loaded the bundle twice per connection: BENCHMARKS.md).
///
/// Errors: [`NetError::CaFile`] (unreadable, not PEM, no certificate), [`NetError::Tls`] when
/// OpenSSL cannot make a context.
fn connector_for(opts: &TlsOptions, host: &str) -> Result<SslConnector, NetError> {
    static CONNECTORS: std::sync::Mutex<Vec<(Option<PathBuf>, SslConnector)>> =
        std::sync::Mutex::new(Vec::new());
    let mut cache = CONNECTORS.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((_, c)) = cache.iter().find(|(ca, _)| *ca == opts.ca_file) {
        return Ok(c.clone());
    }
    let tls_err = |e: openssl::error::ErrorStack| NetError::Tls {
        host: host.to_string(),
        reason: format!("cannot set up TLS: {e}"),
    };
    // `SslConnector::builder` sets OpenSSL's default verify paths, verification of the peer
    // and a safe cipher list.
    let mut builder = SslConnector::builder(SslMethod::tls()).map_err(tls_err)?;
    builder
        .set_min_proto_version(Some(SslVersion::TLS1_2))
        .map_err(tls_err)?;
    if let Some(path) = &opts.ca_file {
        let ca_err = |reason: String| NetError::CaFile {
            path: path.clone(),
            reason,
        };
        let pem = std::fs::read(path).map_err(|e| ca_err(io_reason(&e)))?;
        let certs = X509::stack_from_pem(&pem)
            .map_err(|e| ca_err(format!("not a PEM certificate file: {e}")))?;
        if certs.is_empty() {
            return Err(ca_err("no PEM certificate found in the file".into()));
        }
        for c in certs {
            // A certificate already in the store (the system's own) is not an error.
            let _ = builder.cert_store_mut().add_cert(c);
        }
    }
    let connector = builder.build();
    cache.push((opts.ca_file.clone(), connector.clone()));
    Ok(connector)
}

fn tls_wrap_traced(
    tcp: TcpStream,
    host: &str,
    opts: &TlsOptions,
    mut trace: Option<Box<Tracer>>,
) -> Result<Stream, NetError> {
    let tls_err = |reason: String| NetError::Tls {
        host: host.to_string(),
        reason,
    };
    let connector = connector_for(opts, host)?;
    let io_timeout = tcp.read_timeout().ok().flatten();
    let mut config = connector.configure().map_err(|e| tls_err(e.to_string()))?;
    if opts.fingerprint.is_some() {
        // The pin replaces chain and name verification; it is checked below.
        config.set_verify(SslVerifyMode::NONE);
        config = config.verify_hostname(false);
    }
    let s = match config.connect(host, BufSocket::new(tcp)) {
        Ok(s) => s,
        Err(HandshakeError::SetupFailure(e)) => return Err(tls_err(e.to_string())),
        Err(HandshakeError::Failure(mid)) => {
            // The text native-tls gives: OpenSSL's error, then the verify result if any.
            let verify = mid.ssl().verify_result();
            let error = mid.into_error();
            let text = if verify == X509VerifyResult::OK {
                error.to_string()
            } else {
                format!("{error} ({verify})")
            };
            let mut reason = readable_tls_reason(&text, host);
            if let (Some(ca), Some(stripped)) = (&opts.ca_file, reason.strip_suffix(CA_HINT)) {
                // The hint to pass --tls-ca is wrong when it was passed.
                reason = format!(
                    "{stripped} — it is not signed by the CA in --tls-ca {}",
                    ca.display()
                );
            }
            return Err(tls_err(reason));
        }
        // A blocking socket only reports WouldBlock when its read timeout expired.
        Err(HandshakeError::WouldBlock(_)) => {
            return Err(NetError::TlsTimeout {
                host: host.to_string(),
                secs: io_timeout.map(secs).unwrap_or(0),
            })
        }
    };
    let received = s
        .ssl()
        .peer_certificate()
        .and_then(|c| c.to_der().ok())
        .map(|der| Fingerprint::of_der(&der));
    if let Some(t) = &mut trace {
        t.note(&match &received {
            Some(fp) => format!("TLS established; server certificate SHA256 {fp}"),
            None => "TLS established".to_string(),
        });
    }
    if let Some(expected) = &opts.fingerprint {
        match received {
            Some(received) if received == *expected => {}
            Some(received) => {
                return Err(NetError::PinMismatch {
                    host: host.to_string(),
                    expected: expected.clone(),
                    received,
                })
            }
            None => {
                return Err(tls_err(
                    "the server sent no certificate to compare with --tls-fingerprint".into(),
                ))
            }
        }
    }
    Ok(Stream {
        inner: Inner::Tls(Box::new(s)),
        trace,
    })
}

/// Connects to `host:port`: TCP with [`connect_tcp`], then TLS with [`tls_wrap`] when
/// `implicit_tls` (pop3s, imaps). With `implicit_tls == false` the stream is plain; the
/// protocol client upgrades it (STLS / STARTTLS) itself with [`Stream::start_tls`].
pub fn connect(
    host: &str,
    port: u16,
    implicit_tls: bool,
    opts: &TlsOptions,
    t: &Timeouts,
) -> Result<Stream, NetError> {
    let tcp = connect_tcp(host, port, t)?;
    if implicit_tls {
        tls_wrap(tcp, host, opts)
    } else {
        Ok(Stream::plain(tcp, host))
    }
}

const CA_HINT: &str = " — pass --tls-ca FILE to trust a private CA, or --tls-fingerprint SHA256 to pin this certificate";

/// Turns native-tls/OpenSSL's error text into one readable line that says first what is wrong
/// with the certificate, then OpenSSL's own words (for searching), then what to do:
///
/// `error:0A000086:SSL routines:tls_post_process_server_certificate:certificate verify
/// failed:../ssl/statem/statem_clnt.c:2092: (self-signed certificate)` becomes
/// `the server's certificate is self-signed and not trusted (OpenSSL: certificate verify
/// failed: self-signed certificate) — pass --tls-ca FILE to trust a private CA, or
/// --tls-fingerprint SHA256 to pin this certificate`.
///
/// Other failures keep OpenSSL's reason (`wrong version number`, with a hint that the port
/// does not speak TLS).
pub fn readable_tls_reason(raw: &str, host: &str) -> String {
    // The verification result, if any, is the last parenthesised part.
    let (stack, verify) = match (raw.rfind(" ("), raw.ends_with(')')) {
        (Some(i), true) => (&raw[..i], Some(&raw[i + 2..raw.len() - 1])),
        _ => (raw, None),
    };
    let reason = openssl_reason(stack);
    let openssl = match verify {
        Some(v) => format!("(OpenSSL: {reason}: {v})"),
        None => format!("(OpenSSL: {reason})"),
    };
    let v = verify.unwrap_or("").to_ascii_lowercase();
    let r = reason.to_ascii_lowercase();
    if v.contains("hostname mismatch") || v.contains("ip address mismatch") {
        format!(
            "the server's certificate is not valid for the name `{host}` {openssl}; connect using a name the certificate lists"
        )
    } else if v.contains("expired") {
        format!(
            "the server's certificate has expired {openssl}; check the server, and this machine's clock"
        )
    } else if v.contains("not yet valid") {
        format!("the server's certificate is not valid yet {openssl}; check this machine's clock")
    } else if v.contains("self-signed certificate in certificate chain")
        || v.contains("self signed certificate in certificate chain")
    {
        format!("the server's certificate is signed by an untrusted root CA {openssl}{CA_HINT}")
    } else if v.contains("self-signed") || v.contains("self signed") {
        format!("the server's certificate is self-signed and not trusted {openssl}{CA_HINT}")
    } else if v.contains("unable to get local issuer")
        || v.contains("unable to get issuer")
        || v.contains("unable to verify the first certificate")
    {
        format!("the server's certificate is signed by an unknown issuer {openssl}{CA_HINT}")
    } else if r.contains("wrong version number") || r.contains("packet length too long") {
        format!("{reason} — the server did not answer with TLS; is this a plain-text port (use pop3:// or imap:// for STLS/STARTTLS)?")
    } else if r.contains("unexpected eof") {
        "the server closed the connection during the TLS handshake".to_string()
    } else {
        match verify {
            Some(v) => format!("{reason} ({v})"),
            None => reason,
        }
    }
}

/// The reason field of the first error of an OpenSSL error stack
/// (`error:CODE:LIB:FUNC:REASON:FILE:LINE:DATA`), or the text as it is when it has another shape.
fn openssl_reason(stack: &str) -> String {
    let first = stack.split(", error:").next().unwrap_or(stack).trim();
    if let Some(rest) = first.strip_prefix("error:") {
        let fields: Vec<&str> = rest.split(':').collect();
        // CODE, LIB, FUNC, REASON, ...
        if fields.len() >= 4 && !fields[3].is_empty() {
            return fields[3].to_string();
        }
    }
    lower_first(first)
}

// ---------------------------------------------------------------------------------------------
// --trace

static TRACE: AtomicBool = AtomicBool::new(false);
static CONNECTIONS: AtomicU64 = AtomicU64::new(0);

/// Turns the protocol trace (`--trace`) on or off for connections made from now on.
pub fn set_trace(on: bool) {
    TRACE.store(on, Ordering::SeqCst);
}

/// True when [`set_trace`] turned the trace on.
pub fn trace_enabled() -> bool {
    TRACE.load(Ordering::SeqCst)
}

/// Writes one connection's redacted exchange to stderr, `trace HOST:PORT#N C: line`.
struct Tracer {
    label: String,
    redactor: Redactor,
}

impl Tracer {
    /// A tracer for a new connection when the trace is on; numbers connections from 1.
    fn new(host: &str, tcp: &TcpStream) -> Option<Box<Tracer>> {
        if !trace_enabled() {
            return None;
        }
        let n = CONNECTIONS.fetch_add(1, Ordering::SeqCst) + 1;
        let label = match tcp.peer_addr() {
            Ok(a) => format!("{}#{n}", host_port(host, a.port())),
            Err(_) => format!("{host}#{n}"),
        };
        Some(Box::new(Tracer {
            label,
            redactor: Redactor::default(),
        }))
    }

    fn emit(&self, lines: Vec<String>) {
        if lines.is_empty() {
            return;
        }
        let mut out = String::new();
        for l in lines {
            out.push_str(&format!("trace {} {l}\n", self.label));
        }
        // The trace is diagnostics: a failing stderr must not fail the transfer.
        let _ = io::stderr().lock().write_all(out.as_bytes());
    }

    fn client(&mut self, bytes: &[u8]) {
        let lines = self.redactor.client(bytes);
        self.emit(lines);
    }

    fn server(&mut self, bytes: &[u8]) {
        let lines = self.redactor.server(bytes);
        self.emit(lines);
    }

    fn note(&mut self, text: &str) {
        self.emit(vec![format!("-- {text}")]);
    }
}

/// The longest line the trace shows; the rest is counted (`[+N octets]`).
const TRACE_LINE_MAX: usize = 1000;

/// Bytes of one direction, cut into lines; IMAP literals and POP3 bodies are skipped.
#[derive(Debug, Default)]
struct LineBuf {
    /// The line so far (at most [`TRACE_LINE_MAX`] bytes, without CRLF).
    line: Vec<u8>,
    /// Bytes of the line beyond `line`.
    overflow: u64,
    /// The last bytes of an overflowing line (for a `{N}` at its end).
    tail: Vec<u8>,
    /// Octets of a literal still to skip.
    literal_left: u64,
    /// The size of the literal being skipped.
    literal_size: u64,
}

impl LineBuf {
    /// Feeds `bytes`, calling `on` with each complete line (without CRLF, and the number of
    /// bytes cut from it), which returns the size of a literal that follows the line (IMAP),
    /// and with [`Event::LiteralDone`] when a literal's octets have all passed.
    fn feed(&mut self, mut bytes: &[u8], mut on: impl FnMut(Event) -> Option<u64>) {
        while !bytes.is_empty() {
            if self.literal_left > 0 {
                let n = (self.literal_left.min(bytes.len() as u64)) as usize;
                self.literal_left -= n as u64;
                bytes = &bytes[n..];
                if self.literal_left == 0 {
                    on(Event::LiteralDone(self.literal_size));
                }
                continue;
            }
            match bytes.iter().position(|b| *b == b'\n') {
                Some(i) => {
                    self.push(&bytes[..i]);
                    bytes = &bytes[i + 1..];
                    let mut line = std::mem::take(&mut self.line);
                    let overflow = std::mem::take(&mut self.overflow);
                    let tail = std::mem::take(&mut self.tail);
                    if overflow > 0 {
                        // Keep the end for literal detection: `... {123}`.
                        line.extend_from_slice(b" ... ");
                        line.extend_from_slice(&tail);
                    }
                    let mut overflow = overflow;
                    if line.last() == Some(&b'\r') {
                        line.pop();
                        overflow = overflow.saturating_sub(1);
                    }
                    if let Some(n) = on(Event::Line(line, overflow)) {
                        if n > 0 {
                            self.literal_left = n;
                            self.literal_size = n;
                        } else {
                            on(Event::LiteralDone(0));
                        }
                    }
                }
                None => {
                    self.push(bytes);
                    bytes = &[];
                }
            }
        }
    }

    fn push(&mut self, b: &[u8]) {
        let room = TRACE_LINE_MAX.saturating_sub(self.line.len());
        let (keep, rest) = b.split_at(room.min(b.len()));
        self.line.extend_from_slice(keep);
        if !rest.is_empty() {
            self.overflow += rest.len() as u64;
            self.tail.extend_from_slice(rest);
            if self.tail.len() > 32 {
                self.tail.drain(..self.tail.len() - 32);
            }
        }
    }
}

/// What [`LineBuf::feed`] reports.
enum Event {
    /// A complete line without its line end, and how many bytes were cut from it.
    Line(Vec<u8>, u64),
    /// A literal of this many octets has passed.
    LiteralDone(u64),
}

/// The literal announced at the end of an IMAP line: `{123}` or `{123+}` (RFC 7888).
fn literal_at_end(line: &[u8]) -> Option<u64> {
    let l = line.strip_suffix(b"}")?;
    let l = l.strip_suffix(b"+").unwrap_or(l);
    let open = l.iter().rposition(|b| *b == b'{')?;
    let digits = &l[open + 1..];
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// A line for the trace: control characters escaped, non-UTF-8 bytes replaced, a long line's
/// hidden length noted.
fn show(line: &[u8], overflow: u64) -> String {
    let mut out = String::new();
    for c in String::from_utf8_lossy(line).chars() {
        if c.is_control() && c != '\t' {
            out.push_str(&format!("\\x{:02x}", c as u32));
        } else {
            out.push(c);
        }
    }
    if overflow > 0 {
        out.push_str(&format!(" [+{overflow} octets]"));
    }
    out
}

/// The protocol spoken, told by the server's greeting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Proto {
    #[default]
    Unknown,
    Imap,
    Pop3,
}

/// What a POP3 command's reply looks like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pop3Reply {
    /// One status line.
    Single,
    /// Status, then lines up to `.`, shown (CAPA, LIST, UIDL).
    Listing,
    /// Status, then a message up to `.`, summarised (RETR, TOP).
    Message,
}

/// The trace's redaction state machine, pure (bytes in, lines out), one per connection.
///
/// Feed it what the client wrote ([`Redactor::client`]) and what the server sent
/// ([`Redactor::server`]), in any chunks; it returns the complete lines to show, prefixed
/// `C: ` or `S: `. The protocol is told from the greeting (`+OK`/`-ERR`: POP3, `*`: IMAP).
///
/// Hidden (shown as `[redacted]`): IMAP `LOGIN` arguments (quoted or literals); IMAP
/// `AUTHENTICATE`'s initial response and every client line until the command's tagged reply;
/// POP3 `PASS` argument, `APOP` digest, `AUTH`'s initial response and every client line until
/// `+OK`/`-ERR`; any client line before the greeting. Summarised as `[N octets]`: the octets of
/// every IMAP literal (both directions: FETCH bodies, APPEND uploads) and of a POP3 `RETR`/`TOP`
/// reply (up to its `.` line). Everything else is shown as sent, a line cut after 1000 bytes.
#[derive(Debug, Default)]
pub struct Redactor {
    proto: Proto,
    client: LineBuf,
    server: LineBuf,
    /// IMAP: the client's command continues on lines after literals and is hidden (LOGIN).
    client_hiding: bool,
    /// IMAP: the tag of an AUTHENTICATE in progress.
    imap_auth_tag: Option<String>,
    /// POP3: an AUTH exchange is in progress.
    pop3_auth: bool,
    /// POP3: the replies still to come, in command order (PIPELINING).
    pop3_pending: VecDeque<Pop3Reply>,
    /// POP3: inside a multi-line reply: its kind and the octets seen so far.
    pop3_multi: Option<(Pop3Reply, u64)>,
}

impl Redactor {
    /// Lines the client wrote, redacted.
    pub fn client(&mut self, bytes: &[u8]) -> Vec<String> {
        let mut out = Vec::new();
        let mut buf = std::mem::take(&mut self.client);
        buf.feed(bytes, |ev| match ev {
            Event::Line(line, overflow) => self.client_line(&line, overflow, &mut out),
            Event::LiteralDone(_) => None,
        });
        self.client = buf;
        out
    }

    /// Lines the server sent, with bodies summarised.
    pub fn server(&mut self, bytes: &[u8]) -> Vec<String> {
        let mut out = Vec::new();
        let mut buf = std::mem::take(&mut self.server);
        buf.feed(bytes, |ev| match ev {
            Event::Line(line, overflow) => self.server_line(&line, overflow, &mut out),
            Event::LiteralDone(n) => {
                out.push(format!("S: [{n} octets]"));
                None
            }
        });
        self.server = buf;
        out
    }

    /// Handles one client line; returns the size of the literal that follows it.
    fn client_line(&mut self, line: &[u8], overflow: u64, out: &mut Vec<String>) -> Option<u64> {
        match self.proto {
            Proto::Unknown => {
                out.push("C: [redacted]".into());
                None
            }
            Proto::Pop3 => {
                let shown = self.pop3_client(line, overflow);
                out.push(format!("C: {shown}"));
                None
            }
            Proto::Imap => {
                let literal = literal_at_end(line);
                if self.imap_auth_tag.is_some() {
                    out.push("C: [redacted]".into());
                } else if self.client_hiding {
                    // The rest of a LOGIN after a literal.
                } else if let Some((tag, rest)) = split_word(line) {
                    let (cmd, args) = split_word(rest).unwrap_or((rest, b""));
                    if cmd.eq_ignore_ascii_case(b"LOGIN") {
                        out.push(format!("C: {} LOGIN [redacted]", show(tag, 0)));
                        self.client_hiding = literal.is_some();
                    } else if cmd.eq_ignore_ascii_case(b"AUTHENTICATE") {
                        let (mech, ir) = split_word(args).unwrap_or((args, b""));
                        let ir = if ir.is_empty() { "" } else { " [redacted]" };
                        out.push(format!(
                            "C: {} AUTHENTICATE {}{ir}",
                            show(tag, 0),
                            show(mech, 0)
                        ));
                        self.imap_auth_tag = Some(String::from_utf8_lossy(tag).into_owned());
                    } else if !line.is_empty() {
                        out.push(format!("C: {}", show(line, overflow)));
                    }
                } else if !line.is_empty() {
                    out.push(format!("C: {}", show(line, overflow)));
                }
                match literal {
                    Some(n) => {
                        if !self.client_hiding && self.imap_auth_tag.is_none() {
                            out.push(format!("C: [{n} octets]"));
                        }
                    }
                    None => self.client_hiding = false,
                }
                literal
            }
        }
    }

    fn pop3_client(&mut self, line: &[u8], overflow: u64) -> String {
        if self.pop3_auth {
            return "[redacted]".into();
        }
        let (cmd, args) = split_word(line).unwrap_or((line, b""));
        let upper = cmd.to_ascii_uppercase();
        let reply = match upper.as_slice() {
            b"RETR" | b"TOP" => Pop3Reply::Message,
            b"CAPA" => Pop3Reply::Listing,
            b"LIST" | b"UIDL" if args.is_empty() => Pop3Reply::Listing,
            b"AUTH" if args.is_empty() => Pop3Reply::Listing,
            _ => Pop3Reply::Single,
        };
        self.pop3_pending.push_back(reply);
        match upper.as_slice() {
            b"PASS" => "PASS [redacted]".into(),
            b"APOP" => {
                let user = split_word(args).map_or(args, |(u, _)| u);
                format!("APOP {} [redacted]", show(user, 0))
            }
            b"AUTH" if !args.is_empty() => {
                self.pop3_auth = true;
                let (mech, ir) = split_word(args).unwrap_or((args, b""));
                let ir = if ir.is_empty() { "" } else { " [redacted]" };
                format!("AUTH {}{ir}", show(mech, 0))
            }
            _ => show(line, overflow),
        }
    }

    /// Handles one server line; returns the size of the literal that follows it.
    fn server_line(&mut self, line: &[u8], overflow: u64, out: &mut Vec<String>) -> Option<u64> {
        if self.proto == Proto::Unknown {
            self.proto = if line.starts_with(b"*") {
                Proto::Imap
            } else {
                Proto::Pop3
            };
        }
        match self.proto {
            Proto::Imap | Proto::Unknown => {
                if let Some(tag) = &self.imap_auth_tag {
                    if line.starts_with(format!("{tag} ").as_bytes()) {
                        self.imap_auth_tag = None;
                    }
                }
                out.push(format!("S: {}", show(line, overflow)));
                literal_at_end(line)
            }
            Proto::Pop3 => {
                if let Some((kind, octets)) = &mut self.pop3_multi {
                    if line == b"." {
                        if *kind == Pop3Reply::Message {
                            out.push(format!("S: [{octets} octets]"));
                        }
                        out.push("S: .".into());
                        self.pop3_multi = None;
                    } else if *kind == Pop3Reply::Message {
                        *octets += line.len() as u64 + overflow + 2;
                    } else {
                        out.push(format!("S: {}", show(line, overflow)));
                    }
                    return None;
                }
                out.push(format!("S: {}", show(line, overflow)));
                let ok = line.starts_with(b"+OK");
                if self.pop3_auth {
                    if line.starts_with(b"+ ") || line == b"+" {
                        return None; // a SASL challenge: the client answers it
                    }
                    self.pop3_auth = false;
                }
                // The greeting answers no command.
                let kind = self.pop3_pending.pop_front().unwrap_or(Pop3Reply::Single);
                if ok && kind != Pop3Reply::Single {
                    self.pop3_multi = Some((kind, 0));
                }
                None
            }
        }
    }
}

/// The first space-separated word of `s` and the rest after the space.
fn split_word(s: &[u8]) -> Option<(&[u8], &[u8])> {
    if s.is_empty() {
        return None;
    }
    match s.iter().position(|b| *b == b' ') {
        Some(i) => Some((&s[..i], &s[i + 1..])),
        None => Some((s, b"")),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::net::TcpListener;
    use std::path::Path;
    use std::process::Command;

    #[test]
    fn tls_reasons_are_readable() {
        let cases = [
            (
                "error:0A000086:SSL routines:tls_post_process_server_certificate:certificate verify failed:../ssl/statem/statem_clnt.c:2092: (self-signed certificate)",
                "the server's certificate is self-signed and not trusted (OpenSSL: certificate verify failed: self-signed certificate) — pass --tls-ca FILE to trust a private CA, or --tls-fingerprint SHA256 to pin this certificate",
            ),
            (
                "error:0A000086:SSL routines:tls_post_process_server_certificate:certificate verify failed:../ssl/statem/statem_clnt.c:2092: (unable to get local issuer certificate)",
                "the server's certificate is signed by an unknown issuer (OpenSSL: certificate verify failed: unable to get local issuer certificate) — pass --tls-ca FILE",
            ),
            (
                "error:0A000086:SSL routines:tls_post_process_server_certificate:certificate verify failed:../ssl/statem/statem_clnt.c:2092: (Hostname mismatch)",
                "the server's certificate is not valid for the name `h` (OpenSSL: certificate verify failed: Hostname mismatch); connect using a name the certificate lists",
            ),
            (
                "error:0A000086:SSL routines:tls_post_process_server_certificate:certificate verify failed:../ssl/statem/statem_clnt.c:2092: (certificate has expired)",
                "the server's certificate has expired (OpenSSL: certificate verify failed: certificate has expired); check the server, and this machine's clock",
            ),
            (
                "error:0A00010B:SSL routines:ssl3_get_record:wrong version number:../ssl/record/ssl3_record.c:354:",
                "wrong version number — the server did not answer with TLS",
            ),
            ("Something else", "something else"),
        ];
        for (raw, want) in cases {
            let got = readable_tls_reason(raw, "h");
            assert!(got.starts_with(want), "{raw}\n got: {got}\nwant: {want}");
        }
    }

    #[test]
    fn io_errors_are_readable() {
        let t = Some(Duration::from_secs(30));
        let e = readable_io_error(io::Error::from(io::ErrorKind::WouldBlock), t);
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        assert_eq!(e.to_string(), "timed out after 30 s waiting for the server");
        let e = readable_io_error(io::Error::from(io::ErrorKind::UnexpectedEof), t);
        assert_eq!(e.to_string(), "connection closed by server");
        let e = io::Error::from_raw_os_error(libc::ECONNREFUSED);
        assert_eq!(io_reason(&e), "connection refused");
        assert_eq!(
            timeout_error(Some(Duration::from_millis(200))).to_string(),
            "timed out after 1 s waiting for the server"
        );
    }

    #[test]
    fn connect_refused_names_the_address() {
        // Bind then drop to find a port that is (almost certainly) closed.
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let err = connect_tcp("127.0.0.1", port, &Timeouts::default()).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("cannot connect to 127.0.0.1:{port}: connection refused")
        );
    }

    #[test]
    fn connect_sets_timeouts_and_read_timeout_is_readable() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let t = Timeouts {
            connect: Duration::from_secs(5),
            io: Duration::from_millis(200),
        };
        let mut s = connect("127.0.0.1", port, false, &TlsOptions::default(), &t).unwrap();
        assert!(!s.is_tls());
        assert_eq!(s.io_timeout(), Some(Duration::from_millis(200)));
        let _server_side = l.accept().unwrap();
        let mut b = [0u8; 1];
        let e = s.read(&mut b).unwrap_err();
        assert!(is_timeout(&e), "{e:?}");
        assert_eq!(
            readable_io_error(e, s.io_timeout()).to_string(),
            "timed out after 1 s waiting for the server"
        );
    }

    #[test]
    fn unknown_host_and_bad_ca_file() {
        let err = connect_tcp("no-such-host.invalid", 995, &Timeouts::default()).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("cannot resolve no-such-host.invalid: "),
            "{err}"
        );
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let tcp = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let opts = TlsOptions {
            ca_file: Some("/nonexistent/ca.pem".into()),
            ..TlsOptions::default()
        };
        let err = tls_wrap(tcp, "127.0.0.1", &opts).unwrap_err();
        assert_eq!(
            err.to_string(),
            "cannot read CA file /nonexistent/ca.pem: no such file or directory"
        );
    }

    /// Makes a self-signed certificate for `cn` (with that name, or IP, as subjectAltName)
    /// with the `openssl` command; `None` when the command is not installed.
    pub(crate) fn self_signed(dir: &Path, cn: &str, days: &str) -> Option<(Vec<u8>, Vec<u8>)> {
        let san = if cn.parse::<std::net::IpAddr>().is_ok() {
            format!("subjectAltName=IP:{cn}")
        } else {
            format!("subjectAltName=DNS:{cn}")
        };
        let key = dir.join(format!("{cn}.key"));
        let crt = dir.join(format!("{cn}.crt"));
        let st = Command::new("openssl")
            .args([
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", days,
            ])
            .arg("-subj")
            .arg(format!("/CN={cn}"))
            .arg("-addext")
            .arg(san)
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&crt)
            .stderr(std::process::Stdio::null())
            .status()
            .ok()?;
        if !st.success() {
            return None;
        }
        Some((std::fs::read(crt).unwrap(), std::fs::read(key).unwrap()))
    }

    /// Serves one TLS connection that writes `hello` and closes.
    fn tls_server(cert: &[u8], key: &[u8]) -> (u16, std::thread::JoinHandle<()>) {
        let id = native_tls::Identity::from_pkcs8(cert, key).unwrap();
        let acceptor = native_tls::TlsAcceptor::new(id).unwrap();
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let h = std::thread::spawn(move || {
            let (tcp, _) = l.accept().unwrap();
            if let Ok(mut s) = acceptor.accept(tcp) {
                let _ = s.write_all(b"hello");
                let _ = s.shutdown();
            }
        });
        (port, h)
    }

    #[test]
    fn tls_verification_and_private_ca() {
        let dir = tempfile::tempdir().unwrap();
        let Some((cert, key)) = self_signed(dir.path(), "127.0.0.1", "30") else {
            eprintln!("openssl command not available; skipping");
            return;
        };
        let t = Timeouts::default();
        // Self-signed, not trusted: refused with a hint.
        let (port, h) = tls_server(&cert, &key);
        let err = connect("127.0.0.1", port, true, &TlsOptions::default(), &t).unwrap_err();
        h.join().unwrap();
        let msg = err.to_string();
        assert!(
            msg.starts_with(
                "TLS handshake with 127.0.0.1 failed: the server's certificate is self-signed"
            ) && msg.ends_with(CA_HINT),
            "{msg}"
        );
        // Trusted through --tls-ca: works.
        let ca = dir.path().join("127.0.0.1.crt");
        let opts = TlsOptions {
            ca_file: Some(ca.clone()),
            ..TlsOptions::default()
        };
        let (port, h) = tls_server(&cert, &key);
        let mut s = connect("127.0.0.1", port, true, &opts, &t).unwrap();
        assert!(s.is_tls());
        let mut got = Vec::new();
        s.read_to_end(&mut got).unwrap();
        assert_eq!(got, b"hello");
        h.join().unwrap();
        // Trusted, but the certificate is for another name: hostname mismatch.
        let Some((cert2, key2)) = self_signed(dir.path(), "mail.example.org", "30") else {
            return;
        };
        let opts2 = TlsOptions {
            ca_file: Some(dir.path().join("mail.example.org.crt")),
            ..TlsOptions::default()
        };
        let (port, h) = tls_server(&cert2, &key2);
        let err = connect("127.0.0.1", port, true, &opts2, &t).unwrap_err();
        h.join().unwrap();
        let msg = err.to_string();
        assert!(msg.contains("mismatch"), "{msg}");
        assert!(msg.contains("not valid for the name `127.0.0.1`"), "{msg}");
        // A plain-text server on a TLS connection.
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let h = std::thread::spawn(move || {
            let (mut tcp, _) = l.accept().unwrap();
            let _ = tcp.write_all(b"+OK POP3 ready\r\n");
            let mut b = [0u8; 512];
            let _ = tcp.read(&mut b);
        });
        let err = connect("127.0.0.1", port, true, &opts, &t).unwrap_err();
        h.join().unwrap();
        assert!(err.to_string().contains("did not answer with TLS"), "{err}");
    }

    #[test]
    fn fingerprints_parse_in_openssl_forms() {
        let hex = "5d:a8:1f:00:11:22:33:44:55:66:77:88:99:aa:bb:cc:dd:ee:ff:00:01:02:03:04:05:06:07:08:09:0a:0b:0c";
        let want: Fingerprint = hex.parse().unwrap();
        assert_eq!(want.0[0], 0x5d);
        assert_eq!(want.0[31], 0x0c);
        for form in [
            hex.to_string(),
            hex.to_ascii_uppercase(),
            hex.replace(':', ""),
            format!("sha256 Fingerprint={}", hex.to_ascii_uppercase()),
            format!("SHA256:{hex}"),
            format!("  {hex}\n"),
        ] {
            assert_eq!(form.parse::<Fingerprint>(), Ok(want.clone()), "{form}");
        }
        assert_eq!(want.to_string(), hex.to_ascii_uppercase());
        let bad = [
            ("", "0 hex digits instead of 64"),
            ("abc", "3 hex digits instead of 64"),
            (&hex[..59], "40 hex digits instead of 64"),
            ("zz", "`z` is not a hex digit"),
            ("5d-a8", "`-` is not a hex digit"),
        ];
        for (input, want) in bad {
            let e = input.parse::<Fingerprint>().unwrap_err();
            assert!(e.contains(want), "{input}: {e}");
            assert!(!e.contains('\n'), "{e}");
        }
    }

    /// Feeds a session, chunk by chunk (`C`/`S`), and returns the trace lines.
    fn trace(steps: &[(char, &[u8])]) -> Vec<String> {
        let mut r = Redactor::default();
        let mut out = Vec::new();
        for (dir, bytes) in steps {
            out.extend(match dir {
                'C' => r.client(bytes),
                _ => r.server(bytes),
            });
        }
        out
    }

    #[test]
    fn redactor_hides_imap_credentials_and_bodies() {
        type Case<'a> = (&'a str, Vec<(char, &'a [u8])>, Vec<&'a str>);
        let cases: Vec<Case> = vec![
            (
                "LOGIN quoted",
                vec![
                    ('S', b"* OK ready\r\n"),
                    ('C', b"a1 LOGIN \"alice\" \"S3cret pw\"\r\n"),
                    ('S', b"a1 OK done\r\n"),
                ],
                vec!["S: * OK ready", "C: a1 LOGIN [redacted]", "S: a1 OK done"],
            ),
            (
                "LOGIN with literals, written byte by byte",
                vec![('S', &b"* OK ready\r\n"[..])]
                    .into_iter()
                    .chain(
                        b"a2 login {5}\r\nalice {8}\r\nS3cret\"x\r\na3 NOOP\r\n"
                            .chunks(1)
                            .map(|c| ('C', c)),
                    )
                    .collect(),
                vec!["S: * OK ready", "C: a2 LOGIN [redacted]", "C: a3 NOOP"],
            ),
            (
                "AUTHENTICATE with continuations until the tagged reply",
                vec![
                    ('S', b"* OK ready\r\n"),
                    ('C', b"a1 AUTHENTICATE XOAUTH2\r\n"),
                    ('S', b"+ \r\n"),
                    ('C', b"dXNlcj1hbGljZQFhdXRoPUJlYXJlciB0b2tlbgEB\r\n"),
                    ('S', b"+ eyJzdGF0dXMiOiI0MDAifQ==\r\n"),
                    ('C', b"\r\n"),
                    ('S', b"a1 NO [AUTHENTICATIONFAILED] bad\r\n"),
                    ('C', b"a2 LOGOUT\r\n"),
                ],
                vec![
                    "S: * OK ready",
                    "C: a1 AUTHENTICATE XOAUTH2",
                    "S: + ",
                    "C: [redacted]",
                    "S: + eyJzdGF0dXMiOiI0MDAifQ==",
                    "C: [redacted]",
                    "S: a1 NO [AUTHENTICATIONFAILED] bad",
                    "C: a2 LOGOUT",
                ],
            ),
            (
                "AUTHENTICATE with an initial response (SASL-IR)",
                vec![
                    ('S', b"* OK ready\r\n"),
                    ('C', b"a1 AUTHENTICATE PLAIN AGFsaWNlAFMzY3JldA==\r\n"),
                    ('S', b"a1 OK in\r\n"),
                ],
                vec![
                    "S: * OK ready",
                    "C: a1 AUTHENTICATE PLAIN [redacted]",
                    "S: a1 OK in",
                ],
            ),
            (
                "FETCH literal split across reads",
                vec![
                    ('S', b"* OK ready\r\n"),
                    ('C', b"a4 UID FETCH 5 BODY.PEEK[]\r\n"),
                    ('S', b"* 1 FETCH (UID 5 BODY[] {11}\r\nSecret "),
                    ('S', b"body)\r\n"),
                    ('S', b"a4 OK done\r\n"),
                ],
                vec![
                    "S: * OK ready",
                    "C: a4 UID FETCH 5 BODY.PEEK[]",
                    "S: * 1 FETCH (UID 5 BODY[] {11}",
                    "S: [11 octets]",
                    "S: )",
                    "S: a4 OK done",
                ],
            ),
            (
                "APPEND literal (LITERAL+) from the client",
                vec![
                    ('S', b"* OK ready\r\n"),
                    ('C', b"a5 APPEND INBOX (\\Seen) {9+}\r\n"),
                    ('C', b"Body text"),
                    ('C', b"\r\n"),
                    ('S', b"a5 OK [APPENDUID 1 7] done\r\n"),
                ],
                vec![
                    "S: * OK ready",
                    "C: a5 APPEND INBOX (\\Seen) {9+}",
                    "C: [9 octets]",
                    "S: a5 OK [APPENDUID 1 7] done",
                ],
            ),
            (
                "client bytes before any greeting",
                vec![('C', b"a1 LOGIN alice pw\r\n")],
                vec!["C: [redacted]"],
            ),
        ];
        for (name, steps, want) in cases {
            assert_eq!(trace(&steps), want, "{name}");
        }
    }

    #[test]
    fn redactor_hides_pop3_credentials_and_bodies() {
        type Case<'a> = (&'a str, Vec<(char, &'a [u8])>, Vec<&'a str>);
        let cases: Vec<Case> = vec![
            (
                "USER/PASS, then a listing and a message",
                vec![
                    ('S', b"+OK POP3 ready <1.2@h>\r\n"),
                    ('C', b"USER alice\r\n"),
                    ('S', b"+OK\r\n"),
                    ('C', b"PASS S3cret pw\r\n"),
                    ('S', b"+OK logged in\r\n"),
                    ('C', b"UIDL\r\n"),
                    ('S', b"+OK\r\n1 u1\r\n.\r\n"),
                    ('C', b"RETR 1\r\n"),
                    ('S', b"+OK 14 octets\r\nSubject: x\r\n\r\n..dot\r\n.\r\n"),
                    ('C', b"QUIT\r\n"),
                    ('S', b"+OK bye\r\n"),
                ],
                vec![
                    "S: +OK POP3 ready <1.2@h>",
                    "C: USER alice",
                    "S: +OK",
                    "C: PASS [redacted]",
                    "S: +OK logged in",
                    "C: UIDL",
                    "S: +OK",
                    "S: 1 u1",
                    "S: .",
                    "C: RETR 1",
                    "S: +OK 14 octets",
                    "S: [21 octets]",
                    "S: .",
                    "C: QUIT",
                    "S: +OK bye",
                ],
            ),
            (
                "APOP",
                vec![
                    ('S', b"+OK ready <1.2@h>\r\n"),
                    ('C', b"APOP alice 0123456789abcdef0123456789abcdef\r\n"),
                    ('S', b"-ERR no\r\n"),
                ],
                vec![
                    "S: +OK ready <1.2@h>",
                    "C: APOP alice [redacted]",
                    "S: -ERR no",
                ],
            ),
            (
                "AUTH with continuations, then pipelined RETRs (one refused)",
                vec![
                    ('S', b"+OK ready\r\n"),
                    ('C', b"AUTH PLAIN\r\n"),
                    ('S', b"+ \r\n"),
                    ('C', b"AGFsaWNlAFMzY3JldA==\r\n"),
                    ('S', b"+OK in\r\n"),
                    ('C', b"RETR 1\r\nRETR 2\r\nRETR 3\r\n"),
                    ('S', b"+OK\r\nab\r\n.\r\n-ERR locked\r\n+OK\r\n"),
                    ('S', b"cd\r\n"),
                    ('S', b".\r\n"),
                ],
                vec![
                    "S: +OK ready",
                    "C: AUTH PLAIN",
                    "S: + ",
                    "C: [redacted]",
                    "S: +OK in",
                    "C: RETR 1",
                    "C: RETR 2",
                    "C: RETR 3",
                    "S: +OK",
                    "S: [4 octets]",
                    "S: .",
                    "S: -ERR locked",
                    "S: +OK",
                    "S: [4 octets]",
                    "S: .",
                ],
            ),
            (
                "AUTH with an initial response",
                vec![
                    ('S', b"+OK ready\r\n"),
                    ('C', b"AUTH XOAUTH2 dXNlcj1hAWF1dGg9QmVhcmVyIHQBAQ==\r\n"),
                    ('S', b"-ERR [AUTH] no\r\n"),
                    ('C', b"QUIT\r\n"),
                ],
                vec![
                    "S: +OK ready",
                    "C: AUTH XOAUTH2 [redacted]",
                    "S: -ERR [AUTH] no",
                    "C: QUIT",
                ],
            ),
        ];
        for (name, steps, want) in cases {
            assert_eq!(trace(&steps), want, "{name}");
        }
    }

    #[test]
    fn redactor_cuts_long_lines_and_escapes_control_bytes() {
        let mut r = Redactor::default();
        let mut long = b"* OK ".to_vec();
        long.extend(std::iter::repeat_n(b'x', 5000));
        long.extend_from_slice(b" {3}\r\nabc)\r\n");
        let out = r.server(&long);
        assert_eq!(out.len(), 3, "{out:?}");
        assert!(out[0].ends_with("xx {3} [+4009 octets]"), "{}", out[0]);
        assert!(out[0].contains("xxx ... xxx"), "{}", out[0]);
        assert_eq!(out[0].matches('x').count(), 995 + 27, "{}", out[0]);
        assert_eq!(out[1..], ["S: [3 octets]", "S: )"]);
        assert_eq!(
            r.server(b"* BAD \x1b[31m\xff\r\n"),
            ["S: * BAD \\x1b[31m\u{fffd}"]
        );
    }
}
