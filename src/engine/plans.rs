//! What a command asks an engine to do, validated: the plans the command line (`cli::config`)
//! builds (and `mailkeep run` from its run file) and the engines consume. Plain
//! data; nothing here parses a flag.

use std::path::PathBuf;
use std::time::Duration;

use crate::core::credentials::{AuthArg, PasswordSource};
use crate::core::endpoint::{ArchiveSpec, ServerSpec};
use crate::core::error::{Error, Result};
use crate::engine::plan::FolderFilter;

/// How to talk to a server, independent of protocol.
#[derive(Debug, Clone)]
pub struct ServerPlan {
    pub spec: ServerSpec,
    pub password: PasswordSource,
    /// `--oauth2-token-command`: the secret is an OAuth2 access token from this command.
    pub oauth2_token: Option<PasswordSource>,
    /// Extra trusted CA certificate (PEM).
    pub tls_ca: Option<PathBuf>,
    /// `--tls-fingerprint`: the only certificate accepted (chain and name not checked).
    pub tls_fingerprint: Option<crate::protocol::net::Fingerprint>,
    pub allow_plaintext: bool,
    pub auth: AuthArg,
    pub connect_timeout: Duration,
    pub io_timeout: Duration,
}

/// When a backup deletes messages from the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeletePolicy {
    /// Mail stays on the server (the default).
    Never,
    /// Delete archived messages that were recorded at least `min_age_days` days ago (0: all).
    Archived { min_age_days: u32 },
}

/// How much to print.
#[derive(Debug, Clone, Copy, Default)]
pub struct Output {
    pub quiet: bool,
    pub json: bool,
}

/// IMAP-only backup choices.
#[derive(Debug, Clone)]
pub struct ImapChoices {
    pub filter: FolderFilter,
    /// True when `--folder` or `--exclude` was given (a filter matching nothing is an error).
    pub filtered: bool,
    pub mirror: bool,
    pub dedup: bool,
    /// Connections working on different mailboxes at once (1..=16).
    pub jobs: usize,
    /// `--gmail-folders`: a Gmail account backed up folder by folder, not by label.
    pub gmail_folders: bool,
    /// `--gmail-spam-trash`: a Gmail backup by label includes Spam and Trash.
    pub gmail_spam_trash: bool,
}

/// A validated `backup`.
#[derive(Debug, Clone)]
pub struct BackupPlan {
    pub source: ServerPlan,
    pub archive: ArchiveSpec,
    pub delete: DeletePolicy,
    pub imap: ImapChoices,
    pub output: Output,
}

/// A validated `list` or `quota` of a server.
#[derive(Debug, Clone)]
pub struct ServerQuery {
    pub source: ServerPlan,
    /// `quota --warn-at`, percent.
    pub warn_at: u8,
}

/// A validated `restore`.
#[derive(Debug, Clone)]
pub struct RestorePlan {
    /// The archive spec as given (`maildir:PATH`, ...), opened by [`crate::archive::reader::open`].
    pub archive: String,
    pub target: ServerPlan,
    /// `--into` and `--map`.
    pub rules: crate::engine::restore_plan::MappingRules,
    pub dry_run: bool,
    /// The restore state file (uploads ledger): `$XDG_STATE_HOME/mailkeep/uploads.sqlite`,
    /// default `~/.local/state/mailkeep/uploads.sqlite`.
    pub state_file: PathBuf,
    /// `--jobs`: IMAP connections uploading to different target mailboxes at once (1..=16).
    pub jobs: usize,
    pub output: Output,
}

/// Where a migration reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MigrateFrom {
    Pop3,
    Imap,
}

/// A validated `migrate`.
#[derive(Debug, Clone)]
pub struct MigratePlan {
    pub source: ServerPlan,
    pub from: MigrateFrom,
    /// `--folder`/`--exclude` (IMAP source).
    pub filter: FolderFilter,
    pub filtered: bool,
    /// `--seen` (POP3 source).
    pub seen: bool,
    /// `--via ARCHIVE`: back up into it first, then restore from it.
    pub via: Option<ArchiveSpec>,
    /// `--delete-after-migrate` (POP3 source).
    pub delete_after: bool,
    /// The upload half: target, mapping rules, dry run, state file, output. Its `archive` is
    /// the `--via` archive's spec, or the source account for a direct migration.
    pub restore: RestorePlan,
}

/// A validated `convert`.
#[derive(Debug, Clone)]
pub struct ConvertPlan {
    /// The source spec as given (`maildir:PATH`, ...), opened by [`crate::archive::reader::open`].
    pub source: String,
    pub target: crate::engine::convert::ConvertTarget,
    /// `--store`: zip entries uncompressed.
    pub store: bool,
    pub output: Output,
}

/// A validated `prune`.
#[derive(Debug, Clone)]
pub struct PrunePlan {
    pub source: ServerPlan,
    pub archive: ArchiveSpec,
    /// `--older-than` as given (`365d`), for the report.
    pub older_than: String,
    /// `--older-than` in seconds.
    pub older_than_secs: i64,
    /// `--folder`/`--exclude` (IMAP).
    pub filter: FolderFilter,
    pub filtered: bool,
    /// True only with `--yes` and without `--dry-run`: delete. Otherwise print what would go.
    pub act: bool,
    pub output: Output,
}

/// A validated `backup` into a zip file (`zip:PATH.zip`): a snapshot, written as
/// `PATH.zip.partial` and renamed when complete; the messages of an existing zip are carried
/// over and not fetched again (its manifest records their source identities).
#[derive(Debug, Clone)]
pub struct ZipBackupPlan {
    pub source: ServerPlan,
    pub zip: PathBuf,
    /// `--folder`/`--exclude` (IMAP).
    pub filter: FolderFilter,
    /// `--store`: entries uncompressed.
    pub store: bool,
    pub output: Output,
}

/// The restore state file: `$XDG_STATE_HOME/mailkeep/uploads.sqlite` (an absolute
/// `XDG_STATE_HOME` only, per the XDG base directory specification), else
/// `$HOME/.local/state/mailkeep/uploads.sqlite`.
///
/// Errors: [`Error::Usage`] when neither variable gives a place.
pub fn restore_state_file() -> Result<PathBuf> {
    let dir = match std::env::var_os("XDG_STATE_HOME").map(PathBuf::from) {
        Some(d) if d.is_absolute() => d,
        _ => std::env::var_os("HOME").map(PathBuf::from)
            .ok_or_else(|| {
                Error::Usage(
                    "neither XDG_STATE_HOME nor HOME is set: mailkeep needs a place for the restore state (uploads.sqlite)".into(),
                )
            })?
            .join(".local/state"),
    };
    Ok(dir.join("mailkeep").join("uploads.sqlite"))
}
