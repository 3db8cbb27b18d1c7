//! Endpoint strings, parsed the way users already write them (DESIGN.md, "One engine"):
//! `pop3s://alice@pop.example.com`, `imap://bob@host:1143`, `maildir:~/Mail/backup`,
//! `mbox:~/Mail/backup`. Parsing is pure; nothing here touches the network or the disk except
//! [`ArchiveSpec::resolve_bare`] and [`recorded_kind`], which read an existing archive's kind.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::core::error::{Error, Result};

/// The state folder inside an archive root. Not a dot-folder: in a Maildir++ root every
/// dot-folder is a mailbox to Dovecot and Courier, so `.mailkeep` would show up as one.
pub const STATE_DIR: &str = "mailkeep";

/// How a connection gets its TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TlsMode {
    /// TLS from the first byte (`pop3s://` port 995, `imaps://` port 993).
    Implicit,
    /// Plain connect, then STLS (RFC 2595) / STARTTLS (RFC 3501 6.2.1); refused without it
    /// unless `--allow-plaintext`.
    StartTls,
}

/// The mail protocol of a server endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Pop3,
    Imap,
}

/// A mail server account: `scheme://user@host[:port]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerSpec {
    pub protocol: Protocol,
    pub tls: TlsMode,
    /// The login name, percent-decoded (`alice%40example.com` gives `alice@example.com`).
    pub user: String,
    /// Host name or IP literal (brackets removed from IPv6 literals), percent-decoded.
    pub host: String,
    /// TCP port; defaults by scheme: pop3s 995, pop3 110, imaps 993, imap 143.
    pub port: u16,
}

impl ServerSpec {
    /// The account as it is named in messages, logs and the ledger: `user@host:port`.
    pub fn account(&self) -> String {
        if self.host.contains(':') {
            format!("{}@[{}]:{}", self.user, self.host, self.port)
        } else {
            format!("{}@{}:{}", self.user, self.host, self.port)
        }
    }

    /// The key that identifies the mailbox in the ledger, independent of port and TLS mode
    /// (so switching between `pop3://` + STLS and `pop3s://` does not fetch everything again):
    /// `pop3:user@host` or `imap:user@host`, host lower-cased.
    pub fn ledger_key(&self) -> String {
        let proto = match self.protocol {
            Protocol::Pop3 => "pop3",
            Protocol::Imap => "imap",
        };
        format!("{proto}:{}@{}", self.user, self.host.to_ascii_lowercase())
    }

    /// The key of a restore or migration *target* in the uploads state: [`ledger_key`]
    /// (Self::ledger_key) plus `:PORT` unless the port is the protocol's standard one (IMAP
    /// 143 or 993, POP3 110 or 995). Two servers reached on one host through different ports
    /// (SSH tunnels: `localhost:1143`, `localhost:2143`) are two targets, so what was uploaded
    /// to one is never taken as present on the other; `imap://` and `imaps://` on the
    /// standard ports stay one target.
    pub fn target_key(&self) -> String {
        let standard = match self.protocol {
            Protocol::Pop3 => [110, 995],
            Protocol::Imap => [143, 993],
        };
        if standard.contains(&self.port) {
            self.ledger_key()
        } else {
            format!("{}:{}", self.ledger_key(), self.port)
        }
    }
}

impl fmt::Display for ServerSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.account())
    }
}

/// The kind of a local archive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ArchiveKind {
    /// A Maildir++ tree (root is INBOX, subfolders `.Sent`, `.Archive.2023`).
    Maildir,
    /// A directory holding one mboxrd file per mailbox (`INBOX.mbox`, `Archive/2023.mbox`).
    Mbox,
}

impl ArchiveKind {
    /// The prefix users write: `maildir` or `mbox`.
    pub fn as_str(self) -> &'static str {
        match self {
            ArchiveKind::Maildir => "maildir",
            ArchiveKind::Mbox => "mbox",
        }
    }
}

/// A local archive: its kind and its root path (`~` expanded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveSpec {
    pub kind: ArchiveKind,
    pub path: PathBuf,
}

/// Any endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    Server(ServerSpec),
    Archive(ArchiveSpec),
    /// A path without a `kind:` prefix; see [`ArchiveSpec::resolve_bare`].
    BarePath(PathBuf),
}

/// Parses an endpoint string. `home` expands a leading `~/` in archive paths.
///
/// A prefix of two or more ASCII letters before the first `:` is an archive kind: `maildir:`
/// and `mbox:` are known, anything else (`maildr:`, `mbx:`) is refused rather than taken as a
/// file name, which would silently create `./maildr:/tmp/x`. A one-letter prefix (`c:/x`) and
/// anything else (`./a:b`, `2024:x`) is a bare path.
///
/// Errors: [`Error::Usage`] naming the string and what is wrong with it.
pub fn parse(s: &str, home: Option<&Path>) -> Result<Endpoint> {
    if let Some((scheme, rest)) = s.split_once("://") {
        return parse_server(s, scheme, rest).map(Endpoint::Server);
    }
    let shown = escape_controls(s);
    if let Some((prefix, path)) = s.split_once(':') {
        let kind = match prefix.to_ascii_lowercase().as_str() {
            "maildir" => Some(ArchiveKind::Maildir),
            "mbox" => Some(ArchiveKind::Mbox),
            _ => None,
        };
        if let Some(kind) = kind {
            if path.is_empty() {
                return Err(Error::Usage(format!(
                    "`{shown}`: the archive path is empty (write `{prefix}:PATH`)"
                )));
            }
            return Ok(Endpoint::Archive(ArchiveSpec {
                kind,
                path: expand_home(path, home),
            }));
        }
        if ["zip", "eml", "thunderbird"].contains(&prefix.to_ascii_lowercase().as_str()) {
            return Err(Error::Usage(format!(
                "`{shown}`: a `{prefix}:` archive cannot be used here (use maildir: or mbox:)"
            )));
        }
        if prefix.len() >= 2 && prefix.bytes().all(|b| b.is_ascii_alphabetic()) {
            return Err(Error::Usage(format!(
                "`{shown}`: unknown archive kind `{prefix}:` (write maildir:PATH or mbox:PATH; a file name containing `:` can be written ./{shown})"
            )));
        }
    }
    if s.is_empty() {
        return Err(Error::Usage("an endpoint is empty".into()));
    }
    Ok(Endpoint::BarePath(expand_home(s, home)))
}

/// `s` as it is quoted in an error: control characters escaped (`\r`, `\n`, `\u{0}`), so the
/// error stays one line and the terminal shows what was typed.
pub(crate) fn escape_controls(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

fn expand_home(path: &str, home: Option<&Path>) -> PathBuf {
    match (path.strip_prefix("~/"), home) {
        (Some(rest), Some(h)) => h.join(rest),
        _ if path == "~" => home.map(Path::to_path_buf).unwrap_or_else(|| path.into()),
        _ => PathBuf::from(path),
    }
}

/// The endpoint as errors show it: control characters escaped, and a password written into
/// the URL (`user:secret@host`, which is refused) replaced by `***` so it is never printed.
fn redact_url(s: &str) -> String {
    let shown = escape_controls(s);
    if let Some((scheme, rest)) = shown.split_once("://") {
        if let Some((userinfo, host)) = rest.rsplit_once('@') {
            if let Some((user, _)) = userinfo.split_once(':') {
                return format!("{scheme}://{user}:***@{host}");
            }
        }
    }
    shown
}

fn parse_server(s: &str, scheme: &str, rest: &str) -> Result<ServerSpec> {
    let shown = redact_url(s);
    // One line: whatever of the input a reason quotes has its control characters escaped.
    let bad = |why: &str| Error::Usage(format!("`{shown}`: {}", escape_controls(why)));
    let (protocol, tls, default_port) = match scheme.to_ascii_lowercase().as_str() {
        "pop3s" => (Protocol::Pop3, TlsMode::Implicit, 995),
        "pop3" => (Protocol::Pop3, TlsMode::StartTls, 110),
        "imaps" => (Protocol::Imap, TlsMode::Implicit, 993),
        "imap" => (Protocol::Imap, TlsMode::StartTls, 143),
        other => {
            return Err(bad(&format!(
                "unknown scheme `{}://` (use pop3s://, pop3://, imaps:// or imap://)",
                escape_controls(other)
            )))
        }
    };
    let rest = rest.trim_end_matches('/');
    let (userinfo, hostport) = rest
        .rsplit_once('@')
        .ok_or_else(|| bad("no user name (write `scheme://user@host`)"))?;
    if userinfo.contains(':') {
        return Err(bad(
            "a password in the URL is not accepted (it would show in `ps` and shell history); use --password-env, --password-command or --password-file",
        ));
    }
    let user = percent_decode(userinfo).ok_or_else(|| bad("bad %-escape in the user name"))?;
    if user.is_empty() {
        return Err(bad("the user name is empty"));
    }
    if let Some(path) = hostport.find('/').map(|i| &hostport[i..]) {
        return Err(bad(&format!(
            "a path after the host is not supported (`{}`); POP3 has only INBOX and IMAP backs up every mailbox (use --folder)",
            escape_controls(path)
        )));
    }
    if let Some(c) = user.chars().find(|c| c.is_control()) {
        return Err(bad(&format!(
            "the user name contains a control character ({})",
            c.escape_default()
        )));
    }
    let (host, port) = split_host_port(hostport).ok_or_else(|| bad("bad host or port"))?;
    if host.is_empty() {
        return Err(bad("the host is empty"));
    }
    // %-escapes are allowed in a host (RFC 3986 3.2.2), e.g. an IPv6 zone `[fe80::1%25eth0]`.
    let host = percent_decode(&host).ok_or_else(|| bad("bad %-escape in the host"))?;
    if let Some(c) = host.chars().find(|c| c.is_control()) {
        return Err(bad(&format!(
            "the host contains a control character ({})",
            c.escape_default()
        )));
    }
    let port = match port {
        None => default_port,
        Some(p) => p
            .parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| bad(&format!("port `{p}` is not a number from 1 to 65535")))?,
    };
    Ok(ServerSpec {
        protocol,
        tls,
        user,
        host,
        port,
    })
}

fn split_host_port(s: &str) -> Option<(String, Option<&str>)> {
    if let Some(rest) = s.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        return match after {
            "" => Some((host.to_string(), None)),
            _ => Some((host.to_string(), Some(after.strip_prefix(':')?))),
        };
    }
    match s.split_once(':') {
        Some((h, p)) => Some((h.to_string(), Some(p))),
        None => Some((s.to_string(), None)),
    }
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            // Two hex digits exactly (RFC 3986 2.1): `from_str_radix` alone would take `%+4`.
            let hex = bytes.get(i + 1..i + 3)?;
            if !hex.iter().all(u8::is_ascii_hexdigit) {
                return None;
            }
            out.push(u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

impl ArchiveSpec {
    /// Reads a bare PATH (no `maildir:`/`mbox:` prefix): an existing mailkeep archive keeps
    /// the kind recorded in its `mailkeep/kind` file; anything else (including a path that
    /// does not exist yet, or a file, which opening the archive then refuses) is a Maildir.
    ///
    /// Errors: those of [`recorded_kind`] (a damaged or unreadable kind file).
    pub fn resolve_bare(path: PathBuf) -> Result<ArchiveSpec> {
        let kind = recorded_kind(&path)?.unwrap_or(ArchiveKind::Maildir);
        Ok(ArchiveSpec { kind, path })
    }
}

/// The kind recorded in the archive at `root` (its `mailkeep/kind` file: `maildir` or
/// `mbox`, then a line end). `None` when nothing is recorded: no such file (a new archive, or
/// `root` is not a folder) or an empty one (a first run that died before writing it).
///
/// Errors: [`Error::Archive`] when the file holds anything else (damaged, or not mailkeep's),
/// [`Error::ArchiveIo`] when it cannot be read.
pub fn recorded_kind(root: &Path) -> Result<Option<ArchiveKind>> {
    let file = root.join(STATE_DIR).join("kind");
    let bytes = match std::fs::read(&file) {
        Ok(b) => b,
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
            ) =>
        {
            return Ok(None)
        }
        Err(e) => return Err(Error::archive_io(&file, e)),
    };
    let text = String::from_utf8_lossy(&bytes);
    match text.trim() {
        "" => Ok(None),
        "maildir" => Ok(Some(ArchiveKind::Maildir)),
        "mbox" => Ok(Some(ArchiveKind::Mbox)),
        other => {
            let mut held = escape_controls(&other.chars().take(40).collect::<String>());
            if other.chars().count() > 40 {
                held.push_str("...");
            }
            Err(Error::archive(
                root,
                format!(
                    "the state file {} is damaged: it holds `{held}`, not `maildir` or `mbox` (if you know the archive's kind, write it into that file)",
                    file.display()
                ),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(s: &str) -> ServerSpec {
        match parse(s, None).unwrap() {
            Endpoint::Server(x) => x,
            other => panic!("{s}: {other:?}"),
        }
    }

    #[test]
    fn percent_escapes_are_two_hex_digits() {
        for (input, want) in [
            ("alice%40example.com", Some("alice@example.com")),
            ("a%2Fb", Some("a/b")),
            ("a%+41b", None),
            ("a%-1", None),
            ("a% 4", None),
            ("a%4", None),
            ("a%zz", None),
            ("%C3%A9", Some("\u{e9}")),
            ("%C3", None),
        ] {
            assert_eq!(percent_decode(input).as_deref(), want, "{input}");
        }
    }

    #[test]
    fn server_endpoints() {
        let cases = [
            (
                "pop3s://alice@pop.example.com",
                Protocol::Pop3,
                TlsMode::Implicit,
                "alice",
                "pop.example.com",
                995,
            ),
            (
                "pop3://alice@pop.example.com",
                Protocol::Pop3,
                TlsMode::StartTls,
                "alice",
                "pop.example.com",
                110,
            ),
            (
                "imaps://bob@imap.example.com:10993",
                Protocol::Imap,
                TlsMode::Implicit,
                "bob",
                "imap.example.com",
                10993,
            ),
            (
                "IMAP://bob@127.0.0.1",
                Protocol::Imap,
                TlsMode::StartTls,
                "bob",
                "127.0.0.1",
                143,
            ),
            (
                "pop3s://alice%40example.com@[::1]:1995/",
                Protocol::Pop3,
                TlsMode::Implicit,
                "alice@example.com",
                "::1",
                1995,
            ),
            (
                "imaps://u@[fe80::1%25eth0]",
                Protocol::Imap,
                TlsMode::Implicit,
                "u",
                "fe80::1%eth0",
                993,
            ),
            (
                "pop3s://a@b@host",
                Protocol::Pop3,
                TlsMode::Implicit,
                "a@b",
                "host",
                995,
            ),
        ];
        for (s, proto, tls, user, host, port) in cases {
            let x = server(s);
            assert_eq!(
                (x.protocol, x.tls, x.user.as_str(), x.host.as_str(), x.port),
                (proto, tls, user, host, port),
                "{s}"
            );
        }
        assert_eq!(
            server("pop3s://alice@[::1]:1995").account(),
            "alice@[::1]:1995"
        );
        assert_eq!(
            server("pop3s://alice@Pop.Example.com").ledger_key(),
            "pop3:alice@pop.example.com"
        );
    }

    #[test]
    fn a_password_in_the_url_is_never_printed() {
        let err = parse("imaps://alice:hunter2@host", None)
            .unwrap_err()
            .to_string();
        assert!(!err.contains("hunter2"), "{err}");
        assert!(err.contains("alice:***@host"), "{err}");
    }

    #[test]
    fn bad_server_endpoints() {
        let cases = [
            ("pop3s://pop.example.com", "no user name"),
            ("pop3s://alice:secret@host", "password in the URL"),
            ("pop3s://alice@host:0", "port `0`"),
            ("pop3s://alice@host:99999", "port `99999`"),
            ("pop3s://alice@host:x", "port `x`"),
            ("smtp://alice@host", "unknown scheme"),
            ("pop3s://@host", "user name is empty"),
            ("pop3s://alice@", "host is empty"),
            ("pop3s://al%zzice@host", "%-escape"),
            (
                "pop3s://u@h:995/INBOX",
                "a path after the host is not supported (`/INBOX`); POP3 has only INBOX and IMAP backs up every mailbox (use --folder)",
            ),
            ("imaps://u@h/Sent/", "a path after the host is not supported (`/Sent`)"),
            ("imaps://u@[::1]:993/x", "(`/x`)"),
            ("pop3s://a%0D%0AUSER%20b@h", "user name contains a control character (\\r)"),
            ("pop3s://a%00@h", "user name contains a control character (\\u{0})"),
            ("pop3s://a@h%0A", "host contains a control character (\\n)"),
            ("pop3s://a@h%zz", "bad %-escape in the host"),
            ("pop3s://a@h\tx", "host contains a control character (\\t)"),
        ];
        for (s, want) in cases {
            let err = parse(s, None).unwrap_err().to_string();
            assert!(err.contains(want), "{s}: {err}");
            assert!(
                err.contains(&redact_url(s)),
                "{s}: error should name the endpoint: {err}"
            );
            assert!(!err.contains(['\r', '\n', '\0', '\t']), "{s}: {err:?}");
            assert!(!err.contains("secret"), "{s}: {err}");
        }
        // A trailing `/` alone is fine.
        assert_eq!(server("pop3s://u@h:995/").port, 995);
        assert_eq!(server("imaps://u@h//").host, "h");
    }

    #[test]
    fn unknown_archive_kinds() {
        let cases = [
            (
                "maildr:/tmp/x",
                "`maildr:/tmp/x`: unknown archive kind `maildr:` (write maildir:PATH or mbox:PATH; a file name containing `:` can be written ./maildr:/tmp/x)",
            ),
            (
                "mbx:x",
                "`mbx:x`: unknown archive kind `mbx:` (write maildir:PATH or mbox:PATH; a file name containing `:` can be written ./mbx:x)",
            ),
            (
                "Maildirs:x",
                "`Maildirs:x`: unknown archive kind `Maildirs:`",
            ),
            ("zip:x.zip", "a `zip:` archive cannot be used here"),
            ("EML:x", "a `EML:` archive cannot be used here"),
            ("thunderbird:x", "a `thunderbird:` archive cannot be used here"),
            ("maildir:", "the archive path is empty"),
        ];
        for (s, want) in cases {
            let err = parse(s, None).unwrap_err();
            assert_eq!(err.exit(), crate::core::error::Exit::Usage, "{s}");
            assert!(err.to_string().contains(want), "{s}: {err}");
        }
        // Not a kind prefix: one letter, digits or other characters before the `:`.
        for s in [
            "c:/x",
            "./maildr:/tmp/x",
            "2024:x",
            "pop3s:x",
            "a-b:c",
            "my dir:x",
        ] {
            assert_eq!(parse(s, None).unwrap(), Endpoint::BarePath(s.into()), "{s}");
        }
    }

    #[test]
    fn archive_endpoints() {
        let home = Path::new("/home/u");
        let cases = [
            (
                "maildir:~/Mail/backup",
                Endpoint::Archive(ArchiveSpec {
                    kind: ArchiveKind::Maildir,
                    path: "/home/u/Mail/backup".into(),
                }),
            ),
            (
                "mbox:/srv/mail",
                Endpoint::Archive(ArchiveSpec {
                    kind: ArchiveKind::Mbox,
                    path: "/srv/mail".into(),
                }),
            ),
            (
                "MBOX:rel/dir",
                Endpoint::Archive(ArchiveSpec {
                    kind: ArchiveKind::Mbox,
                    path: "rel/dir".into(),
                }),
            ),
            ("some/dir", Endpoint::BarePath("some/dir".into())),
            ("c:/x", Endpoint::BarePath("c:/x".into())),
        ];
        for (s, want) in cases {
            assert_eq!(parse(s, Some(home)).unwrap(), want, "{s}");
        }
        assert!(parse("maildir:", None)
            .unwrap_err()
            .to_string()
            .contains("empty"));
        assert!(parse("zip:x.zip", None)
            .unwrap_err()
            .to_string()
            .contains("cannot be used here"));
    }

    /// A bare path takes the kind its `mailkeep/kind` file records; a damaged file is an
    /// archive error naming it, not "`/x is a garbage archive; write garbage:/x`".
    #[test]
    fn bare_paths_take_the_recorded_kind() {
        let tmp = tempfile::tempdir().unwrap();
        let archive = |name: &str, kind: Option<&[u8]>| {
            let root = tmp.path().join(name);
            std::fs::create_dir_all(root.join("mailkeep")).unwrap();
            if let Some(k) = kind {
                std::fs::write(root.join("mailkeep/kind"), k).unwrap();
            }
            root
        };
        let ok = [
            (archive("new", None), ArchiveKind::Maildir),
            (tmp.path().join("absent/deeper"), ArchiveKind::Maildir),
            (archive("md", Some(b"maildir\n")), ArchiveKind::Maildir),
            (archive("mb", Some(b"mbox\n")), ArchiveKind::Mbox),
            (archive("mb-no-newline", Some(b"mbox")), ArchiveKind::Mbox),
            (archive("empty", Some(b"")), ArchiveKind::Maildir),
        ];
        for (path, kind) in ok {
            let spec = ArchiveSpec::resolve_bare(path.clone()).unwrap();
            assert_eq!((spec.kind, spec.path), (kind, path));
        }
        let file = tmp.path().join("a-file");
        std::fs::write(&file, "x").unwrap();
        assert_eq!(
            ArchiveSpec::resolve_bare(file).unwrap().kind,
            ArchiveKind::Maildir,
            "a file: opening the archive refuses it"
        );

        let bad = [
            (archive("garbage", Some(b"garbage\n")), "holds `garbage`"),
            (
                archive("binary", Some(b"\xff\x00\n")),
                "holds `\u{fffd}\\u{0}`",
            ),
            (archive("long", Some("x".repeat(100).as_bytes())), "xxx...`"),
        ];
        for (path, want) in bad {
            let err = ArchiveSpec::resolve_bare(path.clone()).unwrap_err();
            assert_eq!(err.exit(), crate::core::error::Exit::Archive, "{err}");
            let err = err.to_string();
            assert!(err.contains(want), "{err}");
            assert!(
                err.contains(&format!("{}/mailkeep/kind is damaged", path.display())),
                "{err}"
            );
            assert!(err.contains("not `maildir` or `mbox`"), "{err}");
        }
    }
}
