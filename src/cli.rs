//! The command line, as clap derive structs. No I/O here; [`crate::config`] turns these into a
//! validated plan. The doc comments are the `--help` text.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

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
    /// ARCHIVE is maildir:PATH, mbox:PATH (a file or a folder of files), eml:DIR or
    /// thunderbird:PATH; it is only read. TARGET is imaps://USER@HOST[:PORT] or
    /// imap://USER@HOST[:PORT]. Folders are created as needed; every upload is recorded in
    /// $XDG_STATE_HOME/mailkeep/uploads.sqlite (default ~/.local/state/mailkeep), so a rerun
    /// appends only what is missing.
    Restore(RestoreArgs),

    /// Show the mailboxes of an IMAP account with message counts and sizes (STATUS).
    List(ListArgs),

    /// Show the quota usage and limits of an IMAP account (GETQUOTAROOT, RFC 9208).
    Quota(QuotaArgs),

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

/// Authentication mechanism choices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum AuthArg {
    /// POP3: SASL PLAIN when offered, else USER/PASS (APOP on a plaintext session). IMAP:
    /// AUTHENTICATE PLAIN when offered, else LOGIN; XOAUTH2 with --oauth2-token-command.
    #[default]
    Auto,
    /// SASL PLAIN (RFC 5034 for POP3).
    Plain,
    /// USER and PASS (RFC 1939 7).
    User,
    /// APOP (RFC 1939 7): the password itself is not sent (POP3 only).
    Apop,
    /// IMAP LOGIN (RFC 3501 6.2.3).
    Login,
    /// SASL XOAUTH2 with a token from --oauth2-token-command (Gmail, Microsoft 365).
    Xoauth2,
    /// SASL OAUTHBEARER (RFC 7628) with a token from --oauth2-token-command.
    Oauthbearer,
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

    /// The archive: maildir:PATH or mbox:PATH.
    #[arg(value_name = "ARCHIVE")]
    pub archive: String,

    #[command(flatten)]
    pub server: ServerArgs,

    /// After every message is durably archived and recorded, delete the archived messages from
    /// the server (POP3 DELE). Nothing is deleted when anything in the run failed.
    #[arg(long)]
    pub delete_after_backup: bool,

    /// Delete from the server only messages archived at least this many days ago (so the
    /// server keeps recent mail for other devices). Implies --delete-after-backup.
    #[arg(long, value_name = "DAYS")]
    pub keep_days: Option<u32>,

    /// IMAP: back up only mailboxes matching this glob (repeatable; `*` stays within one
    /// level, `**` crosses levels; names as LIST shows them decoded, levels joined with `/`).
    #[arg(long, value_name = "GLOB")]
    pub folder: Vec<String>,

    /// IMAP: skip mailboxes matching this glob (repeatable).
    #[arg(long, value_name = "GLOB")]
    pub exclude: Vec<String>,

    /// IMAP: remove from a Maildir archive the messages that were deleted on the server (only
    /// after a complete listing of that mailbox). Without it the archive keeps them.
    #[arg(long)]
    pub mirror: bool,

    /// IMAP: store a message whose exact bytes are already in the archive only once (e.g.
    /// Gmail's `[Gmail]/All Mail`, which holds every message again). The ledger still records
    /// it in every mailbox.
    #[arg(long)]
    pub dedup: bool,

    /// IMAP: connections working on different mailboxes at once.
    #[arg(long, value_name = "N", default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..=16))]
    pub jobs: u16,

    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// The archive to read: maildir:PATH, mbox:PATH, eml:DIR or thunderbird:PATH.
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

    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// The IMAP account: imaps://USER@HOST[:PORT] or imap://USER@HOST[:PORT].
    #[arg(value_name = "SOURCE")]
    pub source: String,

    #[command(flatten)]
    pub server: ServerArgs,

    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
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
