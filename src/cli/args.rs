//! The command line, as clap derive structs. No I/O here; [`crate::cli::config`] turns these into a
//! validated plan. The doc comments are the `--help` text.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

pub use crate::core::credentials::AuthArg;

/// Keep mail safe: back up POP3 and IMAP mailboxes into open archives (Maildir, mbox),
/// incrementally, without ever losing or duplicating a message.
#[derive(Debug, Parser)]
#[command(
    name = "mailkeep",
    version,
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,

    /// Write the protocol exchange with every server to stderr (`trace HOST:PORT#N C: ...` for
    /// what mailkeep sends, `S: ...` for what the server answers), to diagnose a server. The
    /// login exchange is shown as [redacted] (LOGIN, AUTHENTICATE, PASS, APOP, AUTH) and message
    /// bodies as [N octets].
    #[arg(long, global = true)]
    pub trace: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Copy every message not yet archived from a mail server into a local archive.
    ///
    /// SOURCE is pop3s://USER@HOST[:PORT] (TLS, port 995), pop3://USER@HOST[:PORT] (port 110,
    /// upgraded with STLS), imaps://USER@HOST[:PORT] (TLS, port 993) or imap://USER@HOST[:PORT]
    /// (port 143, upgraded with STARTTLS). ARCHIVE is maildir:PATH or mbox:PATH (a bare PATH is
    /// an existing archive's kind, else Maildir). Mail stays on the server unless
    /// --delete-after-backup (POP3). An IMAP backup never changes anything on the server.
    Backup(BackupArgs),

    /// Upload an archive's messages to an IMAP account, with flags, keywords and dates, never
    /// twice.
    ///
    /// ARCHIVE is maildir:PATH, mbox:PATH (a file or a folder of files), eml:DIR,
    /// zip:PATH.zip or thunderbird:PATH; it is only read. TARGET is imaps://USER@HOST[:PORT] or
    /// imap://USER@HOST[:PORT]. Folders are created as needed; every upload is recorded in
    /// $XDG_STATE_HOME/mailkeep/uploads.sqlite (default ~/.local/state/mailkeep), so a rerun
    /// appends only what is missing.
    Restore(RestoreArgs),

    /// Copy a mail account into an IMAP account: POP3 to IMAP or IMAP to IMAP, with flags,
    /// keywords and dates, never twice.
    ///
    /// SOURCE is pop3s://, pop3://, imaps:// or imap://USER@HOST[:PORT]; TARGET is imaps:// or
    /// imap://USER@HOST[:PORT]. Messages stream from SOURCE to TARGET (no local copy unless
    /// --via ARCHIVE); every upload is recorded in $XDG_STATE_HOME/mailkeep/uploads.sqlite, so a
    /// rerun copies only what is missing. The source is only read, unless
    /// --delete-after-migrate (POP3).
    Migrate(MigrateArgs),

    /// Copy every message of one archive into another, with flags, keywords, dates and folders.
    ///
    /// FROM is maildir:PATH, mbox:PATH, eml:DIR, zip:PATH.zip or thunderbird:PATH; it is only
    /// read. TO is maildir:PATH or mbox:PATH (a mailkeep archive with its ledger), zip:PATH.zip
    /// (added to when it exists; written as PATH.zip.partial and renamed when complete),
    /// eml:DIR (one .eml per message and a manifest.jsonl) or thunderbird:DIR (a Local Folders
    /// tree). Message bytes are kept exactly (Thunderbird output adds its X-Mozilla-* lines).
    /// A rerun writes only what the target does not hold yet.
    Convert(ConvertArgs),

    /// Show the mailboxes of an IMAP account (STATUS), or of a local archive with counts,
    /// sizes and dates; with --messages (archives) one line per message.
    ///
    /// An imaps:// or imap:// URL lists the server's mailboxes. Anything else is an archive:
    /// maildir:PATH, mbox:PATH, eml:DIR, thunderbird:PATH, zip:FILE, or the bare PATH of a
    /// mailkeep archive. An archive is only read.
    List(ListArgs),

    /// Check a mailkeep archive: every message the ledger records is there with its SHA-256,
    /// mbox files parse, nothing is left in tmp/; with --against, compare with the server.
    ///
    /// ARCHIVE is maildir:PATH, mbox:PATH, zip:FILE or the bare PATH of a mailkeep archive. It
    /// is never changed. Exit 0: everything checks out; 8: messages are missing (incomplete);
    /// 9: bytes do not match or files do not parse (damaged).
    Verify(VerifyArgs),

    /// Write an archive's messages (all, or those matching the filters) as .eml files into a
    /// folder, one subfolder per mailbox, never overwriting a file.
    ///
    /// ARCHIVE is maildir:PATH, mbox:PATH, eml:DIR, thunderbird:PATH, zip:FILE or the bare PATH
    /// of a mailkeep archive; it is only read. Files are named
    /// DATE_SUBJECT_SHA.eml (e.g. 2023-04-01_quarterly-report_3fa9c2d1.eml) and hold the stored
    /// bytes (LF line ends; --crlf for CRLF).
    Export(ExportArgs),

    /// Show the quota usage and limits of an IMAP account (GETQUOTAROOT, RFC 9208).
    Quota(QuotaArgs),

    /// Run the jobs of a config file (all of them, in file order, or those named), as cron or a
    /// systemd timer would: each archive locked, temporary failures retried, one exit code.
    ///
    /// The config file (TOML) names accounts and jobs (backup, migrate, prune, verify); default
    /// $XDG_CONFIG_HOME/mailkeep/config.toml, else ~/.config/mailkeep/config.toml. The exit code
    /// is the worst job's (README: "Scheduled backups").
    Run(RunArgs),

    /// Delete from a server old messages whose exact bytes are verified in the archive, to free
    /// space.
    ///
    /// SOURCE is the account (imaps://, imap://, pop3s://, pop3://USER@HOST[:PORT]) that was
    /// backed up into ARCHIVE. Only messages older than --older-than whose archived copy is read
    /// back and matches the SHA-256 the ledger recorded are deleted (IMAP: UID STORE \Deleted and
    /// UID EXPUNGE of exactly those; POP3: DELE). Without --yes nothing is deleted: it prints what
    /// would be.
    Prune(PruneArgs),

    /// Print a shell completion script to stdout.
    Completions {
        /// The shell to complete for.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

/// How to reach and log in to a mail server.
#[derive(Debug, Args, Clone, Default)]
pub struct ServerArgs {
    /// Read the password from this environment variable.
    #[arg(long, value_name = "VAR", group = "password")]
    pub password_env: Option<String>,

    /// Run this shell command and use the first line of its output as the password.
    #[arg(long, value_name = "CMD", group = "password")]
    pub password_command: Option<String>,

    /// Read the password from the first line of this file (must not be readable by group or
    /// others: chmod 600).
    #[arg(long, value_name = "FILE", group = "password")]
    pub password_file: Option<PathBuf>,

    /// Trust this CA certificate (PEM) in addition to the system's, e.g. for a server with a
    /// self-signed or private-CA certificate.
    #[arg(long, value_name = "FILE")]
    pub tls_ca: Option<PathBuf>,

    /// Accept only the server certificate with this SHA-256 fingerprint (64 hex digits, colons
    /// optional, as `openssl x509 -noout -fingerprint -sha256` prints). With a pin, the
    /// certificate chain and host name are not checked: a pinned self-signed certificate works
    /// without --tls-ca.
    #[arg(long, value_name = "SHA256")]
    pub tls_fingerprint: Option<crate::protocol::net::Fingerprint>,

    /// Allow logging in without TLS when a pop3:// or imap:// server offers no STLS/STARTTLS.
    /// The password then crosses the network readable by anyone on the path.
    #[arg(long)]
    pub allow_plaintext: bool,

    /// Authentication mechanism.
    #[arg(long, value_enum, default_value_t = AuthArg::Auto)]
    pub auth: AuthArg,

    /// Run this shell command and use the first line of its output as an OAuth2 access token
    /// (XOAUTH2 / OAUTHBEARER, as Gmail and Microsoft 365 require). Implies --auth xoauth2
    /// unless --auth oauthbearer is given.
    #[arg(long, value_name = "CMD")]
    pub oauth2_token_command: Option<String>,

    /// Seconds to wait for a TCP connection and TLS handshake.
    #[arg(long, value_name = "SECS", default_value_t = 30)]
    pub connect_timeout: u64,

    /// Seconds to wait for any reply from the server before giving up.
    #[arg(long, value_name = "SECS", default_value_t = 120)]
    pub timeout: u64,
}

/// The largest message accepted from any input (docs/limits.md, "Limits").
#[derive(Debug, Args, Clone, Copy, PartialEq, Eq)]
pub struct LimitArgs {
    /// Refuse a message larger than SIZE bytes (a number, or with K, M or G: 50M, 2G), from a
    /// server or an archive, before reading it into memory or writing it anywhere: it is named,
    /// counted as failed (exit 1) and tried again next run.
    #[arg(long, value_name = "SIZE", default_value = "1G", value_parser = crate::core::limits::parse_size)]
    pub max_message_size: u64,
}

impl Default for LimitArgs {
    fn default() -> Self {
        LimitArgs {
            max_message_size: crate::core::limits::DEFAULT_MAX_MESSAGE_SIZE,
        }
    }
}

/// How much a run prints.
#[derive(Debug, Args, Clone, Default)]
pub struct OutputArgs {
    /// Print nothing on success; errors still go to stderr.
    #[arg(long, short)]
    pub quiet: bool,

    /// Print the run's report as one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct BackupArgs {
    /// The mail server account: pop3s://USER@HOST[:PORT], pop3://USER@HOST[:PORT],
    /// imaps://USER@HOST[:PORT] or imap://USER@HOST[:PORT].
    #[arg(value_name = "SOURCE")]
    pub source: String,

    /// The archive: maildir:PATH or mbox:PATH (incremental, with a ledger), or zip:PATH.zip (a
    /// snapshot file, rewritten with the new messages added).
    #[arg(value_name = "ARCHIVE")]
    pub archive: String,

    #[command(flatten)]
    pub server: ServerArgs,

    /// zip: store messages uncompressed instead of deflating them.
    #[arg(long)]
    pub store: bool,

    /// After every message is durably archived and recorded, delete the archived messages from
    /// the server (POP3 DELE). Nothing is deleted when anything in the run failed.
    #[arg(long)]
    pub delete_after_backup: bool,

    /// Delete from the server only messages archived at least this many days ago (so the
    /// server keeps recent mail for other devices). Implies --delete-after-backup.
    #[arg(long, value_name = "DAYS")]
    pub keep_days: Option<u32>,

    /// IMAP: back up only mailboxes matching this pattern (repeatable; `*` stays within one
    /// level, `**` crosses levels, `?` is one character, anything else matches itself, so
    /// `[Gmail]/All Mail` is that folder; `glob:PATTERN` for the whole glob syntax; names as
    /// LIST shows them decoded, levels joined with `/`). A pattern matching no mailbox is an
    /// error.
    #[arg(long, value_name = "PATTERN")]
    pub folder: Vec<String>,

    /// IMAP: skip mailboxes matching this pattern (repeatable; as --folder).
    #[arg(long, value_name = "PATTERN")]
    pub exclude: Vec<String>,

    /// IMAP: remove from a Maildir archive the messages that were deleted on the server (only
    /// after a complete listing of that mailbox). Without it the archive keeps them.
    #[arg(long)]
    pub mirror: bool,

    /// IMAP: store a message whose exact bytes are already in the archive only once (e.g.
    /// Gmail folder by folder, whose `[Gmail]/All Mail` holds every message again; a Gmail
    /// backup by label stores each message once without it). The ledger still records it in
    /// every mailbox.
    #[arg(long)]
    pub dedup: bool,

    /// Gmail: back up folder by folder like any server (one copy per label folder, All Mail
    /// included) instead of each message once with its labels (the default for a server
    /// with X-GM-EXT-1 when no --folder or --exclude is given).
    #[arg(long)]
    pub gmail_folders: bool,

    /// Gmail: a backup by label includes Spam and Trash (left out by default).
    #[arg(long)]
    pub gmail_spam_trash: bool,

    /// IMAP: connections working on different mailboxes at once.
    #[arg(long, value_name = "N", default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..=16))]
    pub jobs: u16,

    #[command(flatten)]
    pub limits: LimitArgs,

    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// The archive to read: maildir:PATH, mbox:PATH, eml:DIR, zip:PATH.zip or
    /// thunderbird:PATH.
    #[arg(value_name = "ARCHIVE")]
    pub archive: String,

    /// The IMAP account: imaps://USER@HOST[:PORT] or imap://USER@HOST[:PORT].
    #[arg(value_name = "TARGET")]
    pub target: String,

    #[command(flatten)]
    pub server: ServerArgs,

    /// Put every mailbox under this folder (levels separated by `/`, e.g. `Restored/2024`);
    /// INBOX becomes PREFIX/INBOX.
    #[arg(long, value_name = "PREFIX")]
    pub into: Option<String>,

    /// Restore the archive's mailbox SRC (and its subfolders) as DST (repeatable; names with
    /// levels separated by `/`, e.g. --map 'Sent Items=Sent').
    #[arg(long, value_name = "SRC=DST")]
    pub map: Vec<String>,

    /// Print the plan (folder mapping, messages to upload and already present per folder) and
    /// change nothing: no folder created, no message appended, nothing recorded.
    #[arg(long)]
    pub dry_run: bool,

    /// Connections uploading to different target mailboxes at once.
    #[arg(long, value_name = "N", default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..=16))]
    pub jobs: u16,

    #[command(flatten)]
    pub limits: LimitArgs,

    #[command(flatten)]
    pub output: OutputArgs,
}

/// How to log in to the source server of `migrate` (the same options as backup's, prefixed).
#[derive(Debug, Args, Clone, Default)]
pub struct SourceServerArgs {
    /// Read the source server's password from this environment variable.
    #[arg(
        long = "source-password-env",
        id = "source_password_env",
        value_name = "VAR",
        group = "source_password"
    )]
    pub password_env: Option<String>,

    /// Run this shell command and use the first line of its output as the source password.
    #[arg(
        long = "source-password-command",
        id = "source_password_command",
        value_name = "CMD",
        group = "source_password"
    )]
    pub password_command: Option<String>,

    /// Read the source password from the first line of this file (chmod 600).
    #[arg(
        long = "source-password-file",
        id = "source_password_file",
        value_name = "FILE",
        group = "source_password"
    )]
    pub password_file: Option<PathBuf>,

    /// Trust this CA certificate (PEM) for the source server.
    #[arg(long = "source-tls-ca", id = "source_tls_ca", value_name = "FILE")]
    pub tls_ca: Option<PathBuf>,

    /// Accept only the source server certificate with this SHA-256 fingerprint (chain and host
    /// name are then not checked).
    #[arg(
        long = "source-tls-fingerprint",
        id = "source_tls_fingerprint",
        value_name = "SHA256"
    )]
    pub tls_fingerprint: Option<crate::protocol::net::Fingerprint>,

    /// Allow logging in to a pop3:// or imap:// source without TLS when it offers none.
    #[arg(long = "source-allow-plaintext", id = "source_allow_plaintext")]
    pub allow_plaintext: bool,

    /// Authentication mechanism for the source.
    #[arg(long = "source-auth", id = "source_auth", value_enum, default_value_t = AuthArg::Auto)]
    pub auth: AuthArg,

    /// OAuth2 access token command for the source (XOAUTH2 / OAUTHBEARER).
    #[arg(
        long = "source-oauth2-token-command",
        id = "source_oauth2_token_command",
        value_name = "CMD"
    )]
    pub oauth2_token_command: Option<String>,
}

/// How to log in to the target server of `migrate`.
#[derive(Debug, Args, Clone, Default)]
pub struct TargetServerArgs {
    /// Read the target server's password from this environment variable.
    #[arg(
        long = "target-password-env",
        id = "target_password_env",
        value_name = "VAR",
        group = "target_password"
    )]
    pub password_env: Option<String>,

    /// Run this shell command and use the first line of its output as the target password.
    #[arg(
        long = "target-password-command",
        id = "target_password_command",
        value_name = "CMD",
        group = "target_password"
    )]
    pub password_command: Option<String>,

    /// Read the target password from the first line of this file (chmod 600).
    #[arg(
        long = "target-password-file",
        id = "target_password_file",
        value_name = "FILE",
        group = "target_password"
    )]
    pub password_file: Option<PathBuf>,

    /// Trust this CA certificate (PEM) for the target server.
    #[arg(long = "target-tls-ca", id = "target_tls_ca", value_name = "FILE")]
    pub tls_ca: Option<PathBuf>,

    /// Accept only the target server certificate with this SHA-256 fingerprint (chain and host
    /// name are then not checked).
    #[arg(
        long = "target-tls-fingerprint",
        id = "target_tls_fingerprint",
        value_name = "SHA256"
    )]
    pub tls_fingerprint: Option<crate::protocol::net::Fingerprint>,

    /// Allow logging in to an imap:// target without TLS when it offers no STARTTLS.
    #[arg(long = "target-allow-plaintext", id = "target_allow_plaintext")]
    pub allow_plaintext: bool,

    /// Authentication mechanism for the target.
    #[arg(long = "target-auth", id = "target_auth", value_enum, default_value_t = AuthArg::Auto)]
    pub auth: AuthArg,

    /// OAuth2 access token command for the target (XOAUTH2 / OAUTHBEARER).
    #[arg(
        long = "target-oauth2-token-command",
        id = "target_oauth2_token_command",
        value_name = "CMD"
    )]
    pub oauth2_token_command: Option<String>,
}

#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// The account to copy from: pop3s://, pop3://, imaps:// or imap://USER@HOST[:PORT].
    #[arg(value_name = "SOURCE")]
    pub source: String,

    /// The IMAP account to copy into: imaps://USER@HOST[:PORT] or imap://USER@HOST[:PORT].
    #[arg(value_name = "TARGET")]
    pub target: String,

    #[command(flatten)]
    pub source_server: SourceServerArgs,

    #[command(flatten)]
    pub target_server: TargetServerArgs,

    /// Seconds to wait for a TCP connection and TLS handshake (both servers).
    #[arg(long, value_name = "SECS", default_value_t = 30)]
    pub connect_timeout: u64,

    /// Seconds to wait for any reply from a server before giving up (both servers).
    #[arg(long, value_name = "SECS", default_value_t = 120)]
    pub timeout: u64,

    /// First back up SOURCE into this local archive (maildir:PATH or mbox:PATH, as `backup`
    /// does), then restore from it: a local copy exists when the migration is over.
    #[arg(long, value_name = "ARCHIVE")]
    pub via: Option<String>,

    /// POP3: after the run, delete from the source the messages the target holds (appended or
    /// found there, as recorded). Nothing is deleted when anything in the run failed.
    #[arg(long)]
    pub delete_after_migrate: bool,

    /// POP3: upload the messages as read (\Seen). POP3 has no flags, so without it they
    /// arrive unread.
    #[arg(long)]
    pub seen: bool,

    /// IMAP source: copy only mailboxes matching this pattern (repeatable; as for backup).
    #[arg(long, value_name = "PATTERN")]
    pub folder: Vec<String>,

    /// IMAP source: skip mailboxes matching this pattern (repeatable; as for backup).
    #[arg(long, value_name = "PATTERN")]
    pub exclude: Vec<String>,

    /// Put every mailbox under this folder on the target (levels separated by `/`).
    #[arg(long, value_name = "PREFIX")]
    pub into: Option<String>,

    /// Copy the source mailbox SRC (and its subfolders) as DST (repeatable).
    #[arg(long, value_name = "SRC=DST")]
    pub map: Vec<String>,

    /// Print the plan (folder mapping, messages to copy and already present per folder) and
    /// change nothing on either server.
    #[arg(long)]
    pub dry_run: bool,

    /// IMAP source: connection pairs working on different mailboxes at once (a POP3 source
    /// is read by one connection).
    #[arg(long, value_name = "N", default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..=16))]
    pub jobs: u16,

    #[command(flatten)]
    pub limits: LimitArgs,

    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// The IMAP account (imaps://USER@HOST[:PORT] or imap://USER@HOST[:PORT]) or an archive
    /// (maildir:PATH, mbox:PATH, eml:DIR, thunderbird:PATH, zip:FILE, a mailkeep archive's
    /// PATH).
    #[arg(value_name = "SOURCE|ARCHIVE")]
    pub source: String,

    #[command(flatten)]
    pub server: ServerArgs,

    #[command(flatten)]
    pub limits: LimitArgs,

    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,

    /// Archives: one line per message (date, size, flags, sender, subject decoded).
    #[arg(long)]
    pub messages: bool,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The archive: maildir:PATH, mbox:PATH, zip:FILE or a mailkeep archive's PATH.
    #[arg(value_name = "ARCHIVE")]
    pub archive: String,

    /// Also list this account (imaps://, imap://, pop3s://, pop3://USER@HOST[:PORT]) and report
    /// per mailbox what is on the server, in the archive, missing from it, only in it.
    #[arg(long, value_name = "SOURCE")]
    pub against: Option<String>,

    #[command(flatten)]
    pub server: ServerArgs,

    /// With --against an IMAP account: compare only mailboxes matching this pattern
    /// (repeatable; as backup's --folder).
    #[arg(long, value_name = "PATTERN")]
    pub folder: Vec<String>,

    /// With --against an IMAP account: leave out mailboxes matching this pattern (repeatable).
    #[arg(long, value_name = "PATTERN")]
    pub exclude: Vec<String>,

    #[command(flatten)]
    pub limits: LimitArgs,

    /// Print nothing when everything checks out.
    #[arg(long, short)]
    pub quiet: bool,

    /// Print the report as one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The archive: maildir:PATH, mbox:PATH, eml:DIR, thunderbird:PATH, zip:FILE or a
    /// mailkeep archive's PATH.
    #[arg(value_name = "ARCHIVE")]
    pub archive: String,

    /// The folder to write into (created if missing; must be outside the archive).
    #[arg(long, value_name = "DIR")]
    pub to: PathBuf,

    /// Only mailboxes matching this pattern (repeatable; `*` stays within one level, `**`
    /// crosses levels, as backup's --folder).
    #[arg(long, value_name = "PATTERN")]
    pub mailbox: Vec<String>,

    /// Only messages dated on or after this day (YYYY-MM-DD, UTC).
    #[arg(long, value_name = "DATE")]
    pub since: Option<String>,

    /// Only messages dated before this day (YYYY-MM-DD, UTC).
    #[arg(long, value_name = "DATE")]
    pub before: Option<String>,

    /// Only messages whose decoded From: header (`Name <address>`) contains this text (any
    /// case).
    #[arg(long, value_name = "TEXT")]
    pub from: Option<String>,

    /// Only messages whose decoded Subject: contains this text (any case).
    #[arg(long, value_name = "TEXT")]
    pub subject: Option<String>,

    /// Write CRLF line ends (the RFC 5322 form) instead of the stored LF.
    #[arg(long)]
    pub crlf: bool,

    #[command(flatten)]
    pub limits: LimitArgs,

    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(Debug, Args)]
pub struct QuotaArgs {
    /// The IMAP account: imaps://USER@HOST[:PORT] or imap://USER@HOST[:PORT].
    #[arg(value_name = "SOURCE")]
    pub source: String,

    #[command(flatten)]
    pub server: ServerArgs,

    /// Warn (and exit 1) when a quota resource is used above this percentage.
    #[arg(long, value_name = "PERCENT", default_value_t = 90, value_parser = clap::value_parser!(u8).range(1..=100))]
    pub warn_at: u8,

    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ConvertArgs {
    /// The archive to read: maildir:PATH, mbox:PATH, eml:DIR, zip:PATH.zip or
    /// thunderbird:PATH.
    #[arg(value_name = "FROM")]
    pub from: String,

    /// The archive to write: maildir:PATH, mbox:PATH, zip:PATH.zip, eml:DIR or
    /// thunderbird:DIR.
    #[arg(value_name = "TO")]
    pub to: String,

    /// zip: store messages uncompressed instead of deflating them.
    #[arg(long)]
    pub store: bool,

    #[command(flatten)]
    pub limits: LimitArgs,

    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The jobs to run, by name (default: every job of the config file, in file order).
    #[arg(value_name = "JOB")]
    pub jobs: Vec<String>,

    /// The config file (default: $XDG_CONFIG_HOME/mailkeep/config.toml, else
    /// ~/.config/mailkeep/config.toml).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Append one line per event (job started, retried, finished, with counts) to this file,
    /// created private (0600). Overrides the config file's `log_file`.
    #[arg(long, value_name = "FILE")]
    pub log_file: Option<PathBuf>,

    /// Check the config file and print the jobs it would run; run nothing.
    #[arg(long)]
    pub check: bool,

    /// Print nothing on success; errors still go to stderr (cron mails only failures).
    #[arg(long, short)]
    pub quiet: bool,

    /// Print one JSON report per job on stdout (one object per line).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct PruneArgs {
    /// The account that was backed up: imaps://, imap://, pop3s:// or pop3://USER@HOST[:PORT].
    #[arg(value_name = "SOURCE")]
    pub source: String,

    /// The archive it was backed up into: maildir:PATH, mbox:PATH or a mailkeep archive's PATH.
    #[arg(long, value_name = "ARCHIVE")]
    pub archive: String,

    /// Delete only messages older than this: days (`365d`), weeks (`8w`) or years (`2y`, 365
    /// days each), counted back from now; IMAP by INTERNALDATE, POP3 by the archived date.
    #[arg(long, value_name = "AGE")]
    pub older_than: String,

    #[command(flatten)]
    pub server: ServerArgs,

    /// IMAP: prune only mailboxes matching this pattern (repeatable; as backup's --folder).
    #[arg(long, value_name = "PATTERN")]
    pub folder: Vec<String>,

    /// IMAP: leave mailboxes matching this pattern alone (repeatable).
    #[arg(long, value_name = "PATTERN")]
    pub exclude: Vec<String>,

    /// Print what would be deleted and change nothing (the default without --yes).
    #[arg(long)]
    pub dry_run: bool,

    /// Really delete. Without it, prune only prints what it would delete.
    #[arg(long)]
    pub yes: bool,

    #[command(flatten)]
    pub output: OutputArgs,
}
