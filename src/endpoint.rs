//! Endpoint strings, parsed the way users already write them (DESIGN.md, "One engine"):
//! `pop3s://alice@pop.example.com`, `imap://bob@host:1143`, `maildir:~/Mail/backup`,
//! `mbox:~/Mail/backup`. Parsing is pure; nothing here touches the network or the disk except
//! [`ArchiveSpec::resolve_bare`], which looks at an existing path to tell its kind.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

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
    /// Host name or IP literal (brackets removed from IPv6 literals).
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
/// Errors: [`Error::Usage`] naming the string and what is wrong with it.
pub fn parse(s: &str, home: Option<&Path>) -> Result<Endpoint> {
    if let Some((scheme, rest)) = s.split_once("://") {
        return parse_server(s, scheme, rest).map(Endpoint::Server);
    }
    if let Some((prefix, path)) = s.split_once(':') {
        let kind = match prefix.to_ascii_lowercase().as_str() {
            "maildir" => Some(ArchiveKind::Maildir),
            "mbox" => Some(ArchiveKind::Mbox),
            _ => None,
        };
        if let Some(kind) = kind {
            if path.is_empty() {
                return Err(Error::Usage(format!(
                    "`{s}`: the archive path is empty (write `{prefix}:PATH`)"
                )));
            }
            return Ok(Endpoint::Archive(ArchiveSpec {
                kind,
                path: expand_home(path, home),
            }));
        }
        if ["zip", "eml", "thunderbird"].contains(&prefix.to_ascii_lowercase().as_str()) {
            return Err(Error::Usage(format!(
                "`{s}`: `{prefix}:` archives are not supported yet (use maildir: or mbox:)"
            )));
        }
    }
    if s.is_empty() {
        return Err(Error::Usage("an endpoint is empty".into()));
    }
    Ok(Endpoint::BarePath(expand_home(s, home)))
}

fn expand_home(path: &str, home: Option<&Path>) -> PathBuf {
    match (path.strip_prefix("~/"), home) {
        (Some(rest), Some(h)) => h.join(rest),
        _ if path == "~" => home.map(Path::to_path_buf).unwrap_or_else(|| path.into()),
        _ => PathBuf::from(path),
    }
}

fn parse_server(s: &str, scheme: &str, rest: &str) -> Result<ServerSpec> {
    let bad = |why: &str| Error::Usage(format!("`{s}`: {why}"));
    let (protocol, tls, default_port) = match scheme.to_ascii_lowercase().as_str() {
        "pop3s" => (Protocol::Pop3, TlsMode::Implicit, 995),
        "pop3" => (Protocol::Pop3, TlsMode::StartTls, 110),
        "imaps" => (Protocol::Imap, TlsMode::Implicit, 993),
        "imap" => (Protocol::Imap, TlsMode::StartTls, 143),
        other => {
            return Err(bad(&format!(
                "unknown scheme `{other}://` (use pop3s://, pop3://, imaps:// or imap://)"
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
    let (host, port) = split_host_port(hostport).ok_or_else(|| bad("bad host or port"))?;
    if host.is_empty() {
        return Err(bad("the host is empty"));
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
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
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
    /// the kind recorded in its `.mailkeep/kind` file; an existing directory with `cur/` is a
    /// Maildir; anything else (including a path that does not exist yet) is a Maildir.
    pub fn resolve_bare(path: PathBuf) -> ArchiveSpec {
        let recorded = std::fs::read_to_string(path.join(".mailkeep").join("kind")).ok();
        let kind = match recorded.as_deref().map(str::trim) {
            Some("mbox") => ArchiveKind::Mbox,
            _ => ArchiveKind::Maildir,
        };
        ArchiveSpec { kind, path }
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
        ];
        for (s, want) in cases {
            let err = parse(s, None).unwrap_err().to_string();
            assert!(err.contains(want), "{s}: {err}");
            assert!(
                err.contains(s),
                "{s}: error should name the endpoint: {err}"
            );
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
            .contains("not supported yet"));
    }
}
