//! TCP connections with timeouts, and TLS through `native-tls` (OpenSSL on Linux).
//!
//! Every connection mailkeep makes goes through [`connect`] (implicit TLS or plain) or
//! [`connect_tcp`] + [`tls_wrap`] (STLS / STARTTLS upgrades). Certificate and host-name
//! verification is always on; [`TlsOptions::ca_file`] adds a private CA to the system roots, it
//! never turns verification off.
//!
//! Timeouts: [`Timeouts::connect`] bounds the TCP connect (all resolved addresses together);
//! [`Timeouts::io`] is set as the socket read and write timeout, so a silent server makes a
//! read fail after that long. On Linux such a read fails with `WouldBlock` (not `TimedOut`);
//! [`readable_io_error`] turns both into "timed out after N s waiting for the server".

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// TLS settings for one connection.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsOptions {
    /// A PEM file with one or more extra CA certificates to trust, in addition to the system
    /// roots (`--tls-ca FILE`), for servers with a private CA or a self-signed certificate.
    pub ca_file: Option<PathBuf>,
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

/// A connected byte stream: plain TCP or TLS over TCP.
pub enum Stream {
    Plain(TcpStream),
    Tls(Box<native_tls::TlsStream<TcpStream>>),
}

impl fmt::Debug for Stream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Stream::Plain(s) => f.debug_tuple("Plain").field(s).finish(),
            Stream::Tls(s) => f.debug_tuple("Tls").field(s.get_ref()).finish(),
        }
    }
}

impl Stream {
    /// True when the stream is encrypted.
    pub fn is_tls(&self) -> bool {
        matches!(self, Stream::Tls(_))
    }

    /// The underlying TCP socket.
    pub fn tcp(&self) -> &TcpStream {
        match self {
            Stream::Plain(s) => s,
            Stream::Tls(s) => s.get_ref(),
        }
    }

    /// The socket's read timeout (the [`Timeouts::io`] it was connected with), if any.
    pub fn io_timeout(&self) -> Option<Duration> {
        self.tcp().read_timeout().ok().flatten()
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            Stream::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
            Stream::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            Stream::Tls(s) => s.flush(),
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
/// also sent as SNI when it is a name). Verification is never disabled.
///
/// Errors: [`NetError::CaFile`], [`NetError::Tls`] (with a readable reason),
/// [`NetError::TlsTimeout`] when the server stops answering during the handshake.
pub fn tls_wrap(tcp: TcpStream, host: &str, opts: &TlsOptions) -> Result<Stream, NetError> {
    let tls_err = |reason: String| NetError::Tls {
        host: host.to_string(),
        reason,
    };
    let mut builder = native_tls::TlsConnector::builder();
    if let Some(path) = &opts.ca_file {
        let ca_err = |reason: String| NetError::CaFile {
            path: path.clone(),
            reason,
        };
        let pem = std::fs::read(path).map_err(|e| ca_err(io_reason(&e)))?;
        let certs = native_tls::Certificate::stack_from_pem(&pem)
            .map_err(|e| ca_err(format!("not a PEM certificate file: {e}")))?;
        if certs.is_empty() {
            return Err(ca_err("no PEM certificate found in the file".into()));
        }
        for c in certs {
            builder.add_root_certificate(c);
        }
    }
    let connector = builder.build().map_err(|e| tls_err(e.to_string()))?;
    let io_timeout = tcp.read_timeout().ok().flatten();
    match connector.connect(host, tcp) {
        Ok(s) => Ok(Stream::Tls(Box::new(s))),
        Err(native_tls::HandshakeError::Failure(e)) => {
            let mut reason = readable_tls_reason(&e.to_string(), host);
            if let (Some(ca), Some(stripped)) = (&opts.ca_file, reason.strip_suffix(CA_HINT)) {
                // The hint to pass --tls-ca is wrong when it was passed.
                reason = format!(
                    "{stripped} — the server's certificate is not signed by the CA in --tls-ca {}",
                    ca.display()
                );
            }
            Err(tls_err(reason))
        }
        // A blocking socket only reports WouldBlock when its read timeout expired.
        Err(native_tls::HandshakeError::WouldBlock(_)) => Err(NetError::TlsTimeout {
            host: host.to_string(),
            secs: io_timeout.map(secs).unwrap_or(0),
        }),
    }
}

/// Connects to `host:port`: TCP with [`connect_tcp`], then TLS with [`tls_wrap`] when
/// `implicit_tls` (pop3s, imaps). With `implicit_tls == false` the stream is plain; the
/// protocol client upgrades it (STLS / STARTTLS) itself.
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
        Ok(Stream::Plain(tcp))
    }
}

const CA_HINT: &str = " — pass --tls-ca FILE to trust a private CA";

/// Turns native-tls/OpenSSL's error text into one readable line, keeping OpenSSL's reason and
/// certificate verification result:
///
/// `error:0A000086:SSL routines:tls_post_process_server_certificate:certificate verify
/// failed:../ssl/statem/statem_clnt.c:2092: (self-signed certificate)` becomes
/// `certificate verify failed (self-signed certificate) — pass --tls-ca FILE to trust a
/// private CA`.
pub fn readable_tls_reason(raw: &str, host: &str) -> String {
    // The verification result, if any, is the last parenthesised part.
    let (stack, verify) = match (raw.rfind(" ("), raw.ends_with(')')) {
        (Some(i), true) => (&raw[..i], Some(&raw[i + 2..raw.len() - 1])),
        _ => (raw, None),
    };
    let reason = openssl_reason(stack);
    let mut out = match verify {
        Some(v) => format!("{reason} ({v})"),
        None => reason.clone(),
    };
    let v = verify.unwrap_or("").to_ascii_lowercase();
    let r = reason.to_ascii_lowercase();
    if v.contains("hostname mismatch") || v.contains("ip address mismatch") {
        out.push_str(&format!(
            " — the server's certificate is not valid for the name `{host}`; connect using a name the certificate lists"
        ));
    } else if v.contains("expired") {
        out.push_str(
            " — the server's certificate has expired (check the server, and this machine's clock)",
        );
    } else if v.contains("not yet valid") {
        out.push_str(" — the server's certificate is not valid yet (check this machine's clock)");
    } else if v.contains("self-signed")
        || v.contains("self signed")
        || v.contains("unable to get local issuer")
        || v.contains("unable to get issuer")
        || v.contains("unable to verify the first certificate")
    {
        out.push_str(CA_HINT);
    } else if r.contains("wrong version number") || r.contains("packet length too long") {
        out.push_str(" — the server did not answer with TLS; is this a plain-text port (use pop3:// or imap:// for STLS/STARTTLS)?");
    } else if r.contains("unexpected eof") {
        out = "the server closed the connection during the TLS handshake".to_string();
    }
    out
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
                "certificate verify failed (self-signed certificate) — pass --tls-ca FILE to trust a private CA",
            ),
            (
                "error:0A000086:SSL routines:tls_post_process_server_certificate:certificate verify failed:../ssl/statem/statem_clnt.c:2092: (Hostname mismatch)",
                "certificate verify failed (Hostname mismatch) — the server's certificate is not valid for the name `h`",
            ),
            (
                "error:0A000086:SSL routines:tls_post_process_server_certificate:certificate verify failed:../ssl/statem/statem_clnt.c:2092: (certificate has expired)",
                "certificate verify failed (certificate has expired) — the server's certificate has expired",
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
            msg.starts_with("TLS handshake with 127.0.0.1 failed: certificate verify failed (self")
                && msg.ends_with(CA_HINT),
            "{msg}"
        );
        // Trusted through --tls-ca: works.
        let ca = dir.path().join("127.0.0.1.crt");
        let opts = TlsOptions {
            ca_file: Some(ca.clone()),
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
}
