//! Errors a user can see, and the exit codes they map to.
//!
//! Every variant names the thing it is about (account, mailbox, UIDL/UID, path), so the one-line
//! message printed by `main` is enough to act on. The exit codes are documented in docs/exit-codes.md
//! ("Exit codes"); keep the two in step.

use std::path::PathBuf;

/// Process exit status, one per class of outcome (docs/exit-codes.md, "Exit codes").
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Exit {
    /// Everything asked for was done.
    #[default]
    Ok = 0,
    /// The run finished but some messages or mailboxes failed; the report lists them.
    Partial = 1,
    /// Usage or configuration error (bad endpoint, unsafe password file, missing option).
    Usage = 2,
    /// The server refused the credentials.
    Auth = 3,
    /// Network or TLS failure: refused, timed out, dropped, certificate rejected, no TLS offered.
    Network = 4,
    /// Another mailkeep run holds the archive's lock.
    Locked = 5,
    /// The archive cannot be written or read safely: permission denied, disk full, damaged.
    Archive = 6,
    /// The server broke the protocol (a reply that cannot be parsed).
    Protocol = 7,
    /// `verify`: messages are missing from the archive: recorded in the ledger but gone, on
    /// the server but never archived (`--against`), or left half-written by an interrupted run.
    /// Nothing that is there is damaged; a backup run fetches what is missing.
    Incomplete = 8,
    /// `verify`: the archive holds bytes that do not match the ledger (a SHA-256 differs) or
    /// files that cannot be read as what they should be (an mbox that does not parse, a file
    /// shorter than recorded). Takes precedence over [`Exit::Incomplete`].
    Damaged = 9,
}

impl Exit {
    /// The numeric process exit status.
    pub fn code(self) -> u8 {
        self as u8
    }
}

/// A failure a user can see. Display is one lower-case line naming what it is about.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Usage(String),

    #[error("authentication failed for {account}: {detail}")]
    Auth { account: String, detail: String },

    #[error("{account}: {detail}")]
    Network { account: String, detail: String },

    #[error("{account}: refusing to log in without TLS: {detail} (use pop3s:// or imaps://, or pass --allow-plaintext on a trusted network)")]
    PlaintextRefused { account: String, detail: String },

    #[error("{account}: server protocol error: {detail}")]
    Protocol { account: String, detail: String },

    /// The server refused a command with `NO` (or a `BAD` that is not about the protocol) and
    /// mailkeep cannot go on without it: a refusal, not a broken protocol, so the line quotes
    /// the server without calling it a protocol error. Exit 7 like a broken reply when it stops
    /// the run; a mailbox's or message's refusal is a failure of that mailbox or message.
    #[error("{account}: {detail}")]
    Refused { account: String, detail: String },
    /// The server refused the session with a response code that says why (POP3: RFC 2449
    /// section 8, RFC 3206): for now (`temporary`: exit 4, and `retry_after` when the server
    /// said how long to wait) or until someone acts (exit 3). `detail` quotes the server.
    #[error("{account}: {detail}")]
    ServerRefused {
        account: String,
        detail: String,
        temporary: bool,
        retry_after: Option<std::time::Duration>,
    },

    #[error("archive {path} is locked by another mailkeep run{}", holder.map(|p| format!(" (pid {p})")).unwrap_or_default())]
    Locked { path: PathBuf, holder: Option<u32> },

    #[error("{account}: another mailkeep{} is restoring or migrating into this account; wait for it to finish", holder.map(|p| format!(" (pid {p})")).unwrap_or_default())]
    TargetLocked {
        account: String,
        holder: Option<u32>,
    },

    #[error("archive {path}: {detail}")]
    Archive { path: PathBuf, detail: String },

    #[error("archive {path}: {source}")]
    ArchiveIo {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A file mailkeep writes outside an archive (an `export` folder) cannot be written.
    #[error("{path}: {source}")]
    OutputIo {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// The exit status this error maps to.
    pub fn exit(&self) -> Exit {
        match self {
            Error::Usage(_) => Exit::Usage,
            Error::Auth { .. } => Exit::Auth,
            Error::ServerRefused { temporary, .. } => {
                if *temporary {
                    Exit::Network
                } else {
                    Exit::Auth
                }
            }
            Error::Network { .. } | Error::PlaintextRefused { .. } => Exit::Network,
            Error::Protocol { .. } | Error::Refused { .. } => Exit::Protocol,
            Error::Locked { .. } | Error::TargetLocked { .. } => Exit::Locked,
            Error::Archive { .. } | Error::ArchiveIo { .. } | Error::OutputIo { .. } => {
                Exit::Archive
            }
        }
    }

    /// How long the server asked to wait before the next attempt, when it said so (POP3
    /// `[LOGIN-DELAY]` with the CAPA value `LOGIN-DELAY n`, RFC 2449 6.8 and 8.1.2), for a
    /// scheduler. `None` for every other error (wait as usual, or do not retry: see
    /// [`Error::exit`]).
    pub fn retry_after(&self) -> Option<std::time::Duration> {
        match self {
            Error::ServerRefused { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// An archive I/O error about `path`.
    pub fn archive_io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::ArchiveIo {
            path: path.into(),
            source,
        }
    }

    /// An error writing `path` outside an archive (an `export` folder).
    pub fn output_io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::OutputIo {
            path: path.into(),
            source,
        }
    }

    /// An archive error about `path` with a free-text detail.
    pub fn archive(path: impl Into<PathBuf>, detail: impl Into<String>) -> Self {
        Error::Archive {
            path: path.into(),
            detail: detail.into(),
        }
    }
}

/// The line to print on stderr when writing the report to stdout failed with `e` (`/dev/full`,
/// an I/O error); `None` for a broken pipe (`mailkeep ... | head`), which is not an error.
pub fn stdout_failure(e: &std::io::Error) -> Option<String> {
    match e.kind() {
        std::io::ErrorKind::BrokenPipe => None,
        _ => Some(format!("mailkeep: cannot write the report to stdout: {e}")),
    }
}

/// Result with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::ErrorKind;

    #[test]
    fn stdout_failures() {
        let cases = [
            (ErrorKind::BrokenPipe, None),
            (
                ErrorKind::StorageFull,
                Some("mailkeep: cannot write the report to stdout: "),
            ),
            (
                ErrorKind::Other,
                Some("mailkeep: cannot write the report to stdout: "),
            ),
        ];
        for (kind, want) in cases {
            let line = stdout_failure(&std::io::Error::from(kind));
            assert_eq!(
                line.as_deref().map(|l| &l[..want.map_or(0, str::len)]),
                want,
                "{kind:?}"
            );
        }
        let full = std::io::Error::from_raw_os_error(libc::ENOSPC);
        assert_eq!(
            stdout_failure(&full).unwrap(),
            format!("mailkeep: cannot write the report to stdout: {full}")
        );
    }

    #[test]
    fn exit_codes_match_the_readme() {
        let cases = [
            (Exit::Ok, 0, "\"ok\""),
            (Exit::Partial, 1, "\"partial\""),
            (Exit::Usage, 2, "\"usage\""),
            (Exit::Auth, 3, "\"auth\""),
            (Exit::Network, 4, "\"network\""),
            (Exit::Locked, 5, "\"locked\""),
            (Exit::Archive, 6, "\"archive\""),
            (Exit::Protocol, 7, "\"protocol\""),
            (Exit::Incomplete, 8, "\"incomplete\""),
            (Exit::Damaged, 9, "\"damaged\""),
        ];
        for (exit, code, json) in cases {
            assert_eq!(exit.code(), code);
            assert_eq!(serde_json::to_string(&exit).unwrap(), json);
        }
    }
}
