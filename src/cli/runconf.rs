//! The config file of `mailkeep run` (issue 6): accounts and jobs in TOML, parsed and checked
//! before anything runs, and turned into the same argument structs the command line fills
//! ([`BackupArgs`], [`MigrateArgs`], [`PruneArgs`], [`VerifyArgs`]), so that a job is
//! validated by exactly the code that validates the command line ([`crate::cli::config`]) and the
//! two cannot drift apart.
//!
//! ```toml
//! retries = 3                       # temporary failures retried per job (default 3)
//! log_file = "~/.local/state/mailkeep/run.log"
//!
//! [accounts.home]
//! endpoint = "pop3s://alice@pop.example.com"
//! password_command = "pass show mail/home"
//!
//! [jobs.home-backup]
//! kind = "backup"
//! account = "home"
//! archive = "maildir:~/Mail/home"
//! ```
//!
//! Secrets never live in the file: an account names where its password comes from
//! (`password_env`, `password_command`, `password_file`, `oauth2_token_command`), and a
//! `password` key is refused. Because the file names commands mailkeep runs, a file that
//! others can write (group/world-writable, or owned by another user) is refused.
//!
//! File names (`log_file`, `password_file`, `tls_ca`, archives) are full paths, `/...` or
//! `~/...`: cron, systemd and a shell start mailkeep in different folders, so a relative name
//! would mean another file each time.
//!
//! Every error is one line naming the file, the line and the key:
//! `/home/alice/.config/mailkeep/config.toml:7: jobs.nightly.archiv: unknown field ...`.
//! Parsing is pure ([`parse`]); [`load`] adds reading the file and checking who may write it.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::ValueEnum;
use serde::Deserialize;
use toml::Spanned;

use crate::cli::{
    AuthArg, BackupArgs, LimitArgs, MigrateArgs, OutputArgs, PruneArgs, ServerArgs,
    SourceServerArgs, TargetServerArgs, VerifyArgs,
};
use crate::core::endpoint::{self, Endpoint};
use crate::core::error::{Error, Result};

/// Temporary failures retried per job when the file does not say.
pub const DEFAULT_RETRIES: u32 = 3;
/// At most this many retries per job.
pub const MAX_RETRIES: u32 = 10;
/// The first wait before a retry when the file does not say (then 4 and 15 times as long:
/// 2 s, 8 s, 30 s).
pub const DEFAULT_RETRY_DELAY: Duration = Duration::from_secs(2);

type S<T> = Option<Spanned<T>>;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileToml {
    retries: S<u32>,
    retry_delay: S<u64>,
    log_file: S<String>,
    #[serde(default)]
    accounts: BTreeMap<String, Spanned<AccountToml>>,
    #[serde(default)]
    jobs: BTreeMap<String, Spanned<JobToml>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AccountToml {
    endpoint: Spanned<String>,
    password_env: S<String>,
    password_command: S<String>,
    password_file: S<String>,
    tls_ca: S<String>,
    tls_fingerprint: S<String>,
    allow_plaintext: S<bool>,
    auth: S<String>,
    oauth2_token_command: S<String>,
    connect_timeout: S<u64>,
    timeout: S<u64>,
    /// Refused with a message (never a secret in the file).
    password: S<toml::Value>,
    /// Refused with a message.
    oauth2_token: S<toml::Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct JobToml {
    kind: Spanned<String>,
    account: S<String>,
    source: S<String>,
    target: S<String>,
    archive: S<String>,
    via: S<String>,
    into: S<String>,
    map: S<Vec<String>>,
    folder: S<Vec<String>>,
    exclude: S<Vec<String>>,
    delete_after_backup: S<bool>,
    keep_days: S<u32>,
    mirror: S<bool>,
    dedup: S<bool>,
    connections: S<u16>,
    delete_after_migrate: S<bool>,
    seen: S<bool>,
    dry_run: S<bool>,
    older_than: S<String>,
    yes: S<bool>,
    against: S<String>,
    retries: S<u32>,
    /// `--max-message-size`: bytes (an integer) or a size string (`"50M"`).
    max_message_size: S<toml::Value>,
    /// Refused with a message.
    password: S<toml::Value>,
}

/// The job kinds and the keys each takes (besides `kind`).
const KINDS: &[(&str, &[&str])] = &[
    (
        "backup",
        &[
            "account",
            "archive",
            "delete_after_backup",
            "keep_days",
            "folder",
            "exclude",
            "mirror",
            "dedup",
            "connections",
            "retries",
            "max_message_size",
        ],
    ),
    (
        "migrate",
        &[
            "source",
            "target",
            "via",
            "delete_after_migrate",
            "seen",
            "folder",
            "exclude",
            "into",
            "map",
            "dry_run",
            "connections",
            "retries",
            "max_message_size",
        ],
    ),
    (
        "prune",
        &[
            "account",
            "archive",
            "older_than",
            "folder",
            "exclude",
            "dry_run",
            "yes",
            "retries",
        ],
    ),
    (
        "verify",
        &[
            "archive",
            "against",
            "folder",
            "exclude",
            "retries",
            "max_message_size",
        ],
    ),
];

impl AccountToml {
    /// The login keys given (other than `endpoint`), with their spans.
    fn present(&self) -> Vec<(&'static str, Range<usize>)> {
        let mut v = Vec::new();
        macro_rules! keys {
            ($($f:ident),*) => {
                $( if let Some(x) = &self.$f { v.push((stringify!($f), x.span())); } )*
            };
        }
        keys!(
            password_env,
            password_command,
            password_file,
            tls_ca,
            tls_fingerprint,
            allow_plaintext,
            auth,
            oauth2_token_command,
            connect_timeout,
            timeout
        );
        v.sort_by_key(|(_, s)| s.start);
        v
    }
}

impl JobToml {
    /// The keys given (other than `kind`), with their spans.
    fn present(&self) -> Vec<(&'static str, Range<usize>)> {
        let mut v = Vec::new();
        macro_rules! keys {
            ($($f:ident),*) => {
                $( if let Some(x) = &self.$f { v.push((stringify!($f), x.span())); } )*
            };
        }
        keys!(
            account,
            source,
            target,
            archive,
            via,
            into,
            map,
            folder,
            exclude,
            delete_after_backup,
            keep_days,
            mirror,
            dedup,
            connections,
            delete_after_migrate,
            seen,
            dry_run,
            older_than,
            yes,
            against,
            retries,
            max_message_size
        );
        v.sort_by_key(|(_, s)| s.start);
        v
    }
}

/// A loaded config file.
#[derive(Debug)]
pub struct RunConfig {
    /// The file it came from.
    pub path: PathBuf,
    /// `log_file`, `~/` expanded.
    pub log_file: Option<PathBuf>,
    /// The line of `log_file`, for an error opening it.
    pub log_file_line: usize,
    /// `retry_delay`: the first wait before a retry.
    pub retry_delay: Duration,
    /// The jobs, in file order.
    pub jobs: Vec<Job>,
}

/// One job of the file.
#[derive(Debug)]
pub struct Job {
    pub name: String,
    /// The line of its table (`[jobs.NAME]`), for errors found later.
    pub line: usize,
    /// Where each key of the job, and of the accounts it uses, is written, by the command-line
    /// option it becomes: an error found when the job is validated like a command line names
    /// the option, and is reported at the key's line ([`Job::key_for`]).
    pub keys: Vec<KeyLine>,
    /// Temporary failures retried (`retries`, per job or for the file).
    pub retries: u32,
    pub args: JobArgs,
}

/// A key of the file, by the command-line option it stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyLine {
    /// The option without its dashes: `keep-days`, `tls-ca`, `source-tls-ca`, `jobs`.
    pub option: String,
    /// The key as errors name it: `jobs.nightly.keep_days`, `accounts.work.tls_ca`.
    pub key: String,
    /// Its 1-based line.
    pub line: usize,
    /// A file name as messages show it (`~/` expanded), to tell apart two accounts' keys
    /// that give the same option; empty for other keys.
    pub value: String,
}

impl Job {
    /// The key that an error about the job's options is about: the first `--OPTION` of
    /// `message` that a key of the job or of its accounts gave. Pure.
    pub fn key_for(&self, message: &str) -> Option<&KeyLine> {
        option_tokens(message).find_map(|o| {
            let mut named = self.keys.iter().filter(|k| k.option == o).peekable();
            let first = named.peek().copied();
            named
                .find(|k| !k.value.is_empty() && message.contains(&k.value))
                .or(first)
        })
    }
}

/// The `--name` options written in a message, in order.
fn option_tokens(msg: &str) -> impl Iterator<Item = &str> {
    msg.match_indices("--").filter_map(move |(i, _)| {
        let before_ok = msg[..i]
            .chars()
            .next_back()
            .is_none_or(|c| !(c.is_alphanumeric() || c == '-'));
        let after = &msg[i + 2..];
        let end = after
            .find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'))
            .unwrap_or(after.len());
        let name = after[..end].trim_end_matches('-');
        (before_ok && !name.is_empty() && !name.starts_with('-')).then_some(name)
    })
}

/// A job as the command line would have given it.
#[derive(Debug)]
pub enum JobArgs {
    Backup(BackupArgs),
    Migrate(MigrateArgs),
    Prune(PruneArgs),
    Verify(VerifyArgs),
}

impl JobArgs {
    /// `backup`, `migrate`, `prune` or `verify`.
    pub fn kind(&self) -> &'static str {
        match self {
            JobArgs::Backup(_) => "backup",
            JobArgs::Migrate(_) => "migrate",
            JobArgs::Prune(_) => "prune",
            JobArgs::Verify(_) => "verify",
        }
    }

    /// The job's `--max-message-size` (prune reads no message: `None`).
    pub fn limits(&self) -> Option<LimitArgs> {
        match self {
            JobArgs::Backup(a) => Some(a.limits),
            JobArgs::Migrate(a) => Some(a.limits),
            JobArgs::Prune(_) => None,
            JobArgs::Verify(a) => Some(a.limits),
        }
    }
}

/// The default config file: `$XDG_CONFIG_HOME/mailkeep/config.toml` (an absolute
/// `XDG_CONFIG_HOME` only, per the XDG base directory specification), else
/// `$HOME/.config/mailkeep/config.toml`.
///
/// Errors: [`Error::Usage`] when neither variable gives a place.
pub fn default_path() -> Result<PathBuf> {
    let dir = match std::env::var_os("XDG_CONFIG_HOME").map(PathBuf::from) {
        Some(d) if d.is_absolute() => d,
        _ => std::env::var_os("HOME")
            .map(PathBuf::from)
            .ok_or_else(|| {
                Error::Usage(
                    "neither XDG_CONFIG_HOME nor HOME is set: pass the config file with --config FILE"
                        .into(),
                )
            })?
            .join(".config"),
    };
    Ok(dir.join("mailkeep").join("config.toml"))
}

/// Why a config file with this mode and owner must not be used, if it must not: anyone who
/// can write it can make mailkeep run a command of theirs (`password_command`). `me` is the
/// effective uid; root's files are fine. Pure.
pub fn unsafe_file(mode: u32, owner: u32, me: u32) -> Option<String> {
    if mode & 0o022 != 0 {
        let who = match (mode & 0o020 != 0, mode & 0o002 != 0) {
            (true, true) => "its group and others",
            (true, false) => "its group",
            _ => "others",
        };
        return Some(format!(
            "can be written by {who} (mode {:o}), who could make mailkeep run their command: chmod go-w it",
            mode & 0o7777
        ));
    }
    if owner != me && owner != 0 {
        return Some(format!(
            "belongs to another user (uid {owner}), who could make mailkeep run their command: use a file of your own"
        ));
    }
    None
}

/// Reads, checks and parses the config file at `path`.
///
/// Errors: [`Error::Usage`] (exit 2) naming the file for a file that cannot be read or that
/// others can write, and naming the file, line and key for everything [`parse`] refuses.
pub fn load(path: &Path) -> Result<RunConfig> {
    use std::os::unix::fs::MetadataExt;
    let shown = path.display();
    let meta = std::fs::metadata(path).map_err(|e| {
        let hint = if e.kind() == std::io::ErrorKind::NotFound {
            " (write one: see README.md, \"Scheduled backups\"; or pass --config FILE)"
        } else {
            ""
        };
        Error::Usage(format!(
            "config file {shown}: {}{hint}",
            crate::protocol::net::io_reason(&e)
        ))
    })?;
    if !meta.is_file() {
        return Err(Error::Usage(format!("config file {shown}: not a file")));
    }
    // SAFETY: geteuid has no preconditions and touches no memory.
    let me = unsafe { libc::geteuid() };
    if let Some(why) = unsafe_file(meta.mode(), meta.uid(), me) {
        return Err(Error::Usage(format!("config file {shown} {why}")));
    }
    let bytes = std::fs::read(path).map_err(|e| {
        Error::Usage(format!(
            "config file {shown}: {}",
            crate::protocol::net::io_reason(&e)
        ))
    })?;
    let text = String::from_utf8(bytes)
        .map_err(|_| Error::Usage(format!("config file {shown}: not UTF-8 text")))?;
    let home = std::env::var_os("HOME").map(PathBuf::from);
    parse(&text, path, home.as_deref())
}

/// The 1-based line of byte `offset` in `text`.
fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// Builds errors that name the file, the line and the key.
struct Errs<'a> {
    path: &'a Path,
    text: &'a str,
}

impl Errs<'_> {
    fn at(&self, span: &Range<usize>, key: &str, msg: impl std::fmt::Display) -> Error {
        // Messages shared with the command line name its options; here they are keys.
        let msg = option_names_as_keys(&msg.to_string()).replace('\n', " ");
        // One line: control characters of the file (in a key, a quoted value) escaped.
        let escape = crate::core::endpoint::escape_controls;
        Error::Usage(format!(
            "{}:{}: {}: {}",
            self.path.display(),
            line_of(self.text, span.start),
            escape(key),
            escape(msg.trim())
        ))
    }

    /// A TOML syntax or type error: the table is the last `[header]` before the error, the key
    /// the one on the error's line (or the text the error points at).
    fn toml(&self, e: &toml::de::Error) -> Error {
        // serde's words for TOML's: a field is a key; the refused secret keys are not offered.
        let msg = e
            .message()
            .trim()
            .replace('\n', " ")
            .replace("unknown field", "unknown key")
            .replace("missing field", "missing key")
            .replace(", `password`", "")
            .replace(", `oauth2_token`", "")
            // and TOML's words for Rust's types.
            .replace("expected u16", "expected a whole number")
            .replace("expected u32", "expected a whole number")
            .replace("expected u64", "expected a whole number")
            .replace(
                "expected a sequence",
                "expected an array such as [\"INBOX\"]",
            )
            .replace("expected a string", "expected a string in double quotes");
        let msg = crate::core::endpoint::escape_controls(&with_suggestion(&msg));
        let Some(span) = e.span() else {
            return Error::Usage(format!("{}: {msg}", self.path.display()));
        };
        let start = span.start.min(self.text.len());
        let line_start = self.text[..start].rfind('\n').map_or(0, |i| i + 1);
        let line_end = self.text[start..]
            .find('\n')
            .map_or(self.text.len(), |i| start + i);
        let line = self.text[line_start..line_end].trim();
        let table = self.text[..line_start]
            .lines()
            .rev()
            .map(str::trim)
            .find(|l| l.starts_with('['))
            .map(|l| {
                l.trim_start_matches('[')
                    .split(']')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_string()
            });
        let key = if line.starts_with('[') {
            String::new()
        } else if let Some((k, _)) = line.split_once('=') {
            k.trim().to_string()
        } else {
            self.text.get(span.clone()).unwrap_or("").trim().to_string()
        };
        let key = if line.starts_with('[') {
            line.trim_start_matches('[')
                .split(']')
                .next()
                .unwrap_or("")
                .trim()
                .to_string()
        } else {
            match (table, key.is_empty()) {
                (Some(t), false) => format!("{t}.{key}"),
                (Some(t), true) => t,
                (None, _) => key,
            }
        };
        if key.is_empty() {
            Error::Usage(format!(
                "{}:{}: {msg}",
                self.path.display(),
                line_of(self.text, start)
            ))
        } else {
            self.at(&span, &key, msg)
        }
    }
}

/// `unknown key `exlude`, expected one of `kind`, ..., `exclude`, ...` with `(did you mean
/// `exclude`?)` after the unknown key, when one of the keys is a likely typo of it. Pure.
fn with_suggestion(msg: &str) -> String {
    let Some(rest) = msg.strip_prefix("unknown key `") else {
        return msg.to_string();
    };
    let Some((typo, expected)) = rest.split_once('`') else {
        return msg.to_string();
    };
    let wanted = typo.to_ascii_lowercase().replace('-', "_");
    let best = expected
        .split('`')
        .skip(1)
        .step_by(2)
        .map(|k| (edit_distance(&wanted, k), k))
        .min();
    match best {
        Some((d, k)) if d <= 2 && d < k.len() / 2 + 1 => {
            format!("unknown key `{typo}` (did you mean `{k}`?){expected}")
        }
        _ => msg.to_string(),
    }
}

/// Levenshtein distance of two short ASCII words. Pure.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<u8> = b.bytes().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.bytes().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = if ca == *cb {
                prev
            } else {
                1 + prev.min(row[j]).min(cur)
            };
            prev = cur;
        }
    }
    row[b.len()]
}

/// Expands a leading `~/` with `home`.
fn expand(p: &str, home: Option<&Path>) -> PathBuf {
    match (p.strip_prefix("~/"), home) {
        (Some(rest), Some(h)) => h.join(rest),
        _ if p == "~" => home.map_or_else(|| PathBuf::from(p), Path::to_path_buf),
        _ => PathBuf::from(p),
    }
}

/// Why `path` (written `written`, `~/` already expanded) must not be used: a file name in the
/// config file is a full path. A relative one would name another file under cron (which
/// starts in your home), systemd (in `/`) and your shell (wherever you are). Pure.
fn not_full(path: &Path, written: &str) -> Option<String> {
    if path.is_absolute() {
        None
    } else if path.starts_with("~") {
        Some(format!(
            "`{written}`: `~` is your home, but HOME is not set: write the full path"
        ))
    } else {
        Some(format!(
            "`{written}` is a relative path, which cron, systemd and your shell would each look for in another folder: write the full path (/... or ~/...)"
        ))
    }
}

/// A name of an account or job: letters, digits, `-`, `_`, `.`, `@` (so it can be written on
/// a command line and in a log line as is).
fn good_name(n: &str) -> bool {
    !n.is_empty()
        && n.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.@".contains(&b))
}

/// An account, checked.
struct Account {
    endpoint: String,
    server: ServerArgs,
    /// The keys given (but `endpoint`), their lines and values as errors show them.
    keys: Vec<(&'static str, usize, String)>,
}

/// Parses a config file's text (`path` is only for messages; `home` expands `~/`). Pure.
///
/// Errors: [`Error::Usage`], one line naming the file, the line and the key: TOML syntax, an
/// unknown key or a value of the wrong type, an inline secret (`password`), a missing key, an
/// account or job reference that does not exist, a key a job of that kind does not take, a
/// malformed endpoint, archive or age.
pub fn parse(text: &str, path: &Path, home: Option<&Path>) -> Result<RunConfig> {
    let errs = Errs { path, text };
    let file: FileToml = toml::from_str(text).map_err(|e| errs.toml(&e))?;

    let mut accounts: BTreeMap<String, Account> = BTreeMap::new();
    for (name, a) in &file.accounts {
        let span = a.span();
        let a = a.get_ref();
        let key = |k: &str| format!("accounts.{name}.{k}");
        if !good_name(name) {
            return Err(errs.at(
                &span,
                &format!("accounts.{name}"),
                "an account name is letters, digits, `-`, `_`, `.` or `@`",
            ));
        }
        for (k, v) in [("password", &a.password), ("oauth2_token", &a.oauth2_token)] {
            if let Some(v) = v {
                return Err(errs.at(
                    &v.span(),
                    &key(k),
                    "secrets are not written in the config file: use password_env, password_command or password_file (oauth2_token_command for a token)",
                ));
            }
        }
        let ep = &a.endpoint;
        match endpoint::parse(ep.get_ref(), home) {
            Ok(Endpoint::Server(_)) => {}
            Ok(_) => {
                return Err(errs.at(
                    &ep.span(),
                    &key("endpoint"),
                    format!(
                        "`{}` is not a server: write imaps://, imap://, pop3s:// or pop3://USER@HOST[:PORT]",
                        ep.get_ref()
                    ),
                ))
            }
            Err(e) => return Err(errs.at(&ep.span(), &key("endpoint"), e)),
        }
        let sources: Vec<(&str, &Spanned<String>)> = [
            ("password_env", &a.password_env),
            ("password_command", &a.password_command),
            ("password_file", &a.password_file),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| (k, v)))
        .collect();
        if sources.len() > 1 {
            return Err(errs.at(
                &sources[1].1.span(),
                &key(sources[1].0),
                format!(
                    "give one of password_env, password_command, password_file (also {} is given)",
                    sources[0].0
                ),
            ));
        }
        if sources.is_empty() && a.oauth2_token_command.is_none() {
            return Err(errs.at(
                &span,
                &format!("accounts.{name}"),
                "no password source: add password_env, password_command or password_file (or oauth2_token_command)",
            ));
        }
        for (k, v) in [
            ("password_env", &a.password_env),
            ("password_command", &a.password_command),
            ("password_file", &a.password_file),
            ("oauth2_token_command", &a.oauth2_token_command),
            ("tls_ca", &a.tls_ca),
            ("tls_fingerprint", &a.tls_fingerprint),
        ] {
            if let Some(v) = v {
                if v.get_ref().trim().is_empty() {
                    return Err(errs.at(&v.span(), &key(k), "is empty"));
                }
            }
        }
        let auth = match &a.auth {
            None => AuthArg::Auto,
            Some(s) => AuthArg::from_str(s.get_ref(), true).map_err(|_| {
                errs.at(
                    &s.span(),
                    &key("auth"),
                    format!(
                        "unknown mechanism `{}` (auto, plain, user, apop, login, xoauth2, oauthbearer)",
                        s.get_ref()
                    ),
                )
            })?,
        };
        for (k, v) in [
            ("connect_timeout", &a.connect_timeout),
            ("timeout", &a.timeout),
        ] {
            if let Some(v) = v {
                if *v.get_ref() == 0 || *v.get_ref() > 86_400 {
                    return Err(errs.at(&v.span(), &key(k), "seconds, from 1 to 86400"));
                }
            }
        }
        for (k, v) in [("password_file", &a.password_file), ("tls_ca", &a.tls_ca)] {
            if let Some(v) = v {
                if let Some(why) = not_full(&expand(v.get_ref(), home), v.get_ref()) {
                    return Err(errs.at(&v.span(), &key(k), why));
                }
            }
        }
        let tls_fingerprint = match &a.tls_fingerprint {
            None => None,
            Some(v) => Some(
                v.get_ref()
                    .parse::<crate::protocol::net::Fingerprint>()
                    .map_err(|e| errs.at(&v.span(), &key("tls_fingerprint"), e))?,
            ),
        };
        let text_of = |v: &S<String>| v.as_ref().map(|s| s.get_ref().clone());
        let path_of = |v: &S<String>| v.as_ref().map(|s| expand(s.get_ref(), home));
        let shown = |k: &str| -> String {
            let v = match k {
                "password_file" => &a.password_file,
                "tls_ca" => &a.tls_ca,
                _ => return String::new(),
            };
            v.as_ref()
                .map(|s| expand(s.get_ref(), home).display().to_string())
                .unwrap_or_default()
        };
        let keys = a
            .present()
            .into_iter()
            .map(|(k, s)| (k, line_of(text, s.start), shown(k)))
            .collect();
        accounts.insert(
            name.clone(),
            Account {
                endpoint: ep.get_ref().clone(),
                server: ServerArgs {
                    password_env: text_of(&a.password_env),
                    password_command: text_of(&a.password_command),
                    password_file: path_of(&a.password_file),
                    tls_ca: path_of(&a.tls_ca),
                    tls_fingerprint,
                    allow_plaintext: a.allow_plaintext.as_ref().is_some_and(|b| *b.get_ref()),
                    auth,
                    oauth2_token_command: text_of(&a.oauth2_token_command),
                    connect_timeout: a.connect_timeout.as_ref().map_or(30, |v| *v.get_ref()),
                    timeout: a.timeout.as_ref().map_or(120, |v| *v.get_ref()),
                },
                keys,
            },
        );
    }

    let retries = match &file.retries {
        None => DEFAULT_RETRIES,
        Some(r) if *r.get_ref() <= MAX_RETRIES => *r.get_ref(),
        Some(r) => return Err(errs.at(&r.span(), "retries", format!("at most {MAX_RETRIES}"))),
    };
    let retry_delay = match &file.retry_delay {
        None => DEFAULT_RETRY_DELAY,
        Some(d) if (1..=600).contains(d.get_ref()) => Duration::from_secs(*d.get_ref()),
        Some(d) => return Err(errs.at(&d.span(), "retry_delay", "seconds, from 1 to 600")),
    };
    let log_file = match &file.log_file {
        None => None,
        Some(l) if l.get_ref().trim().is_empty() => {
            return Err(errs.at(&l.span(), "log_file", "is empty"))
        }
        Some(l) => {
            let p = expand(l.get_ref(), home);
            if let Some(why) = not_full(&p, l.get_ref()) {
                return Err(errs.at(&l.span(), "log_file", why));
            }
            Some(p)
        }
    };

    let mut ordered: Vec<(&String, &Spanned<JobToml>)> = file.jobs.iter().collect();
    ordered.sort_by_key(|(_, j)| j.span().start);
    let mut jobs = Vec::new();
    for (name, j) in ordered {
        let span = j.span();
        let table = format!("jobs.{name}");
        let j = j.get_ref();
        let key = |k: &str| format!("jobs.{name}.{k}");
        if !good_name(name) {
            return Err(errs.at(
                &span,
                &table,
                "a job name is letters, digits, `-`, `_`, `.` or `@`",
            ));
        }
        if let Some(p) = &j.password {
            return Err(errs.at(
                &p.span(),
                &key("password"),
                "secrets are not written in the config file: give the account a password_env, password_command or password_file",
            ));
        }
        let kind = j.kind.get_ref().as_str();
        let Some((_, allowed)) = KINDS.iter().find(|(k, _)| *k == kind) else {
            return Err(errs.at(
                &j.kind.span(),
                &key("kind"),
                format!("unknown kind `{kind}` (backup, migrate, prune or verify)"),
            ));
        };
        for (k, s) in j.present() {
            if !allowed.contains(&k) {
                let takes: Vec<&str> = KINDS
                    .iter()
                    .filter(|(_, keys)| keys.contains(&k))
                    .map(|(n, _)| *n)
                    .collect();
                return Err(errs.at(
                    &s,
                    &key(k),
                    format!(
                        "a {kind} job does not take `{k}` (a key of {} jobs)",
                        takes.join(" and ")
                    ),
                ));
            }
        }
        let need = |v: &S<String>, k: &str| -> Result<Spanned<String>> {
            v.clone()
                .ok_or_else(|| errs.at(&span, &table, format!("a {kind} job needs `{k}`")))
        };
        let account = |v: &Spanned<String>, k: &str| -> Result<&Account> {
            accounts.get(v.get_ref()).ok_or_else(|| {
                let known: Vec<&str> = accounts.keys().map(String::as_str).collect();
                errs.at(
                    &v.span(),
                    &key(k),
                    format!(
                        "no account named `{}` (accounts: {})",
                        v.get_ref(),
                        if known.is_empty() {
                            "none".to_string()
                        } else {
                            known.join(", ")
                        }
                    ),
                )
            })
        };
        let archive = |v: &Spanned<String>, k: &str| -> Result<String> {
            match endpoint::parse(v.get_ref(), home) {
                Ok(Endpoint::Server(_)) => Err(errs.at(
                    &v.span(),
                    &key(k),
                    format!(
                        "`{}` is a server; an archive is maildir:PATH or mbox:PATH",
                        v.get_ref()
                    ),
                )),
                Ok(
                    Endpoint::Archive(endpoint::ArchiveSpec { path, .. })
                    | Endpoint::BarePath(path),
                ) => match not_full(&path, v.get_ref()) {
                    Some(why) => Err(errs.at(&v.span(), &key(k), why)),
                    None => Ok(v.get_ref().clone()),
                },
                Err(e) => Err(errs.at(&v.span(), &key(k), e)),
            }
        };
        let list = |v: &S<Vec<String>>| v.as_ref().map(|l| l.get_ref().clone()).unwrap_or_default();
        let flag = |v: &S<bool>| v.as_ref().is_some_and(|b| *b.get_ref());
        let connections = match &j.connections {
            None => 3,
            Some(c) if (1..=16).contains(c.get_ref()) => *c.get_ref(),
            Some(c) => return Err(errs.at(&c.span(), &key("connections"), "from 1 to 16")),
        };
        let quiet = OutputArgs {
            quiet: true,
            json: false,
        };
        let limits = match &j.max_message_size {
            None => LimitArgs::default(),
            Some(v) => {
                let size = match v.get_ref() {
                    toml::Value::Integer(n) if *n > 0 => Ok(*n as u64),
                    toml::Value::String(t) => crate::core::limits::parse_size(t),
                    _ => Err("not a size (bytes, or a string with K, M or G, e.g. \"50M\")".into()),
                };
                LimitArgs {
                    max_message_size: size
                        .map_err(|e| errs.at(&v.span(), &key("max_message_size"), e))?,
                }
            }
        };
        let args = match kind {
            "backup" => {
                let acct = need(&j.account, "account")?;
                let a = account(&acct, "account")?;
                JobArgs::Backup(BackupArgs {
                    source: a.endpoint.clone(),
                    archive: archive(&need(&j.archive, "archive")?, "archive")?,
                    server: a.server.clone(),
                    delete_after_backup: flag(&j.delete_after_backup),
                    keep_days: j.keep_days.as_ref().map(|d| *d.get_ref()),
                    folder: list(&j.folder),
                    exclude: list(&j.exclude),
                    mirror: flag(&j.mirror),
                    dedup: flag(&j.dedup),
                    jobs: connections,
                    store: false,
                    limits,
                    output: quiet,
                })
            }
            "migrate" => {
                let s = account(&need(&j.source, "source")?, "source")?;
                let t = account(&need(&j.target, "target")?, "target")?;
                let via = match &j.via {
                    Some(v) => Some(archive(v, "via")?),
                    None => None,
                };
                JobArgs::Migrate(MigrateArgs {
                    source: s.endpoint.clone(),
                    target: t.endpoint.clone(),
                    source_server: SourceServerArgs {
                        password_env: s.server.password_env.clone(),
                        password_command: s.server.password_command.clone(),
                        password_file: s.server.password_file.clone(),
                        tls_ca: s.server.tls_ca.clone(),
                        tls_fingerprint: s.server.tls_fingerprint.clone(),
                        allow_plaintext: s.server.allow_plaintext,
                        auth: s.server.auth,
                        oauth2_token_command: s.server.oauth2_token_command.clone(),
                    },
                    target_server: TargetServerArgs {
                        password_env: t.server.password_env.clone(),
                        password_command: t.server.password_command.clone(),
                        password_file: t.server.password_file.clone(),
                        tls_ca: t.server.tls_ca.clone(),
                        tls_fingerprint: t.server.tls_fingerprint.clone(),
                        allow_plaintext: t.server.allow_plaintext,
                        auth: t.server.auth,
                        oauth2_token_command: t.server.oauth2_token_command.clone(),
                    },
                    connect_timeout: s.server.connect_timeout.max(t.server.connect_timeout),
                    timeout: s.server.timeout.max(t.server.timeout),
                    via,
                    delete_after_migrate: flag(&j.delete_after_migrate),
                    seen: flag(&j.seen),
                    folder: list(&j.folder),
                    exclude: list(&j.exclude),
                    into: j.into.as_ref().map(|s| s.get_ref().clone()),
                    map: list(&j.map),
                    dry_run: flag(&j.dry_run),
                    jobs: connections,
                    limits,
                    output: quiet,
                })
            }
            "prune" => {
                let a = account(&need(&j.account, "account")?, "account")?;
                let age = need(&j.older_than, "older_than")?;
                crate::cli::config::parse_age("older_than", age.get_ref())
                    .map_err(|e| errs.at(&age.span(), &key("older_than"), e))?;
                JobArgs::Prune(PruneArgs {
                    source: a.endpoint.clone(),
                    archive: archive(&need(&j.archive, "archive")?, "archive")?,
                    older_than: age.get_ref().clone(),
                    server: a.server.clone(),
                    folder: list(&j.folder),
                    exclude: list(&j.exclude),
                    dry_run: flag(&j.dry_run),
                    yes: flag(&j.yes),
                    output: quiet,
                })
            }
            _ => {
                let against = match &j.against {
                    Some(v) => Some(account(v, "against")?),
                    None => None,
                };
                JobArgs::Verify(VerifyArgs {
                    archive: archive(&need(&j.archive, "archive")?, "archive")?,
                    against: against.map(|a| a.endpoint.clone()),
                    server: against.map(|a| a.server.clone()).unwrap_or_default(),
                    folder: list(&j.folder),
                    exclude: list(&j.exclude),
                    limits,
                    quiet: true,
                    json: false,
                })
            }
        };
        let retries = match &j.retries {
            None => retries,
            Some(r) if *r.get_ref() <= MAX_RETRIES => *r.get_ref(),
            Some(r) => {
                return Err(errs.at(&r.span(), &key("retries"), format!("at most {MAX_RETRIES}")))
            }
        };
        let mut keys: Vec<KeyLine> = j
            .present()
            .into_iter()
            .map(|(k, s)| KeyLine {
                option: if k == "connections" {
                    "jobs".into()
                } else {
                    k.replace('_', "-")
                },
                key: key(k),
                line: line_of(text, s.start),
                value: String::new(),
            })
            .collect();
        // The accounts the job uses, with the prefix their options have on its command line
        // (a migration's `--source-tls-ca`; it shares `--connect-timeout` and `--timeout`, and
        // some of its messages name the unprefixed option).
        let roles: Vec<(&str, &S<String>)> = match kind {
            "migrate" => vec![
                ("source-", &j.source),
                ("target-", &j.target),
                ("", &j.source),
                ("", &j.target),
            ],
            "verify" => vec![("", &j.against)],
            _ => vec![("", &j.account)],
        };
        for (prefix, acct) in roles {
            let Some(acct) = acct.as_ref().map(|a| a.get_ref()) else {
                continue;
            };
            for (k, line, value) in accounts.get(acct).map_or(&[][..], |a| &a.keys[..]) {
                keys.push(KeyLine {
                    option: format!("{prefix}{}", k.replace('_', "-")),
                    key: format!("accounts.{acct}.{k}"),
                    line: *line,
                    value: value.clone(),
                });
            }
        }
        jobs.push(Job {
            name: name.clone(),
            line: line_of(text, span.start),
            keys,
            retries,
            args,
        });
    }
    if jobs.is_empty() {
        return Err(Error::Usage(format!(
            "{}: no jobs (add a [jobs.NAME] table; see README.md, \"Scheduled backups\")",
            path.display()
        )));
    }
    Ok(RunConfig {
        path: path.to_path_buf(),
        log_file,
        log_file_line: file
            .log_file
            .as_ref()
            .map_or(0, |l| line_of(text, l.span().start)),
        retry_delay,
        jobs,
    })
}

/// The keys an account takes besides `endpoint`, each the command-line option of the same
/// name (`tls_ca` is `--tls-ca`).
const ACCOUNT_KEYS: &[&str] = &[
    "password_env",
    "password_command",
    "password_file",
    "tls_ca",
    "tls_fingerprint",
    "allow_plaintext",
    "auth",
    "oauth2_token_command",
    "connect_timeout",
    "timeout",
];

/// The config file's key for a command-line option of a job or an account (`keep-days` is
/// `keep_days`, `jobs` is `connections`, `source-tls-ca` is `tls_ca`), if there is one. Pure.
fn key_of_option(option: &str) -> Option<&'static str> {
    if option == "jobs" {
        return Some("connections");
    }
    let bare = option
        .strip_prefix("source-")
        .or_else(|| option.strip_prefix("target-"))
        .unwrap_or(option)
        .replace('-', "_");
    ACCOUNT_KEYS
        .iter()
        .chain(KINDS.iter().flat_map(|(_, keys)| keys.iter()))
        .find(|k| **k == bare)
        .copied()
}

/// Rewrites the command-line option names in a message into the config file's keys
/// (`--keep-days` into `keep_days`, `pass --tls-ca FILE` into `pass tls_ca FILE`), for errors
/// about a job. Only options that are keys are rewritten: other text with dashes (a mailbox
/// `Old--2019`, a server's reply) stays as it is. Pure.
pub fn option_names_as_keys(msg: &str) -> String {
    let mut out = String::with_capacity(msg.len());
    let mut done = 0;
    for name in option_tokens(msg) {
        // `name` borrows from `msg`: its offset, less the two dashes, is where the option is.
        let at = name.as_ptr() as usize - msg.as_ptr() as usize - 2;
        if let Some(key) = key_of_option(name) {
            out.push_str(&msg[done..at]);
            out.push_str(key);
            done = at + 2 + name.len();
        }
    }
    out.push_str(&msg[done..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
retries = 2
log_file = "~/run.log"

[accounts.pop]
endpoint = "pop3s://alice@pop.example.com"
password_env = "POP_PW"

[accounts.imap]
endpoint = "imaps://alice@imap.example.com:1993"
password_file = "~/.config/mailkeep/imap.pw"
tls_ca = "/etc/ca.pem"
auth = "PLAIN"
timeout = 60

[jobs.zeta]
kind = "backup"
account = "pop"
archive = "maildir:~/Mail/pop"
keep_days = 30

[jobs.alpha]
kind = "backup"
account = "imap"
archive = "mbox:/srv/mail"
folder = ["INBOX", "Archive/**"]
exclude = ["Junk"]
connections = 4
retries = 0

[jobs.move]
kind = "migrate"
source = "pop"
target = "imap"
via = "maildir:~/Mail/pop"
into = "Old"
map = ["Sent Items=Sent"]
seen = true

[jobs.old]
kind = "prune"
account = "imap"
archive = "mbox:/srv/mail"
older_than = "365d"
yes = true

[jobs.check]
kind = "verify"
archive = "maildir:~/Mail/pop"
against = "pop"
"#;

    fn parse_text(text: &str) -> Result<RunConfig> {
        parse(
            text,
            Path::new("/c/config.toml"),
            Some(Path::new("/home/a")),
        )
    }

    #[test]
    fn a_full_file_becomes_command_line_arguments_in_file_order() {
        let c = parse_text(GOOD).unwrap();
        assert_eq!(c.log_file, Some(PathBuf::from("/home/a/run.log")));
        assert_eq!(c.retry_delay, DEFAULT_RETRY_DELAY);
        let names: Vec<(&str, &str, usize, u32)> = c
            .jobs
            .iter()
            .map(|j| (j.name.as_str(), j.args.kind(), j.line, j.retries))
            .collect();
        assert_eq!(
            names,
            [
                ("zeta", "backup", 16, 2),
                ("alpha", "backup", 22, 0),
                ("move", "migrate", 31, 2),
                ("old", "prune", 40, 2),
                ("check", "verify", 47, 2),
            ]
        );
        let JobArgs::Backup(b) = &c.jobs[0].args else {
            panic!()
        };
        assert_eq!(b.source, "pop3s://alice@pop.example.com");
        assert_eq!(b.archive, "maildir:~/Mail/pop");
        assert_eq!(b.keep_days, Some(30));
        assert_eq!(b.server.password_env.as_deref(), Some("POP_PW"));
        assert_eq!((b.server.connect_timeout, b.server.timeout), (30, 120));
        assert_eq!(b.jobs, 3);
        assert!(b.output.quiet && !b.output.json);
        let JobArgs::Backup(b) = &c.jobs[1].args else {
            panic!()
        };
        assert_eq!(b.folder, ["INBOX", "Archive/**"]);
        assert_eq!(b.exclude, ["Junk"]);
        assert_eq!(b.jobs, 4);
        assert_eq!(
            b.server.password_file,
            Some(PathBuf::from("/home/a/.config/mailkeep/imap.pw"))
        );
        assert_eq!(b.server.auth, AuthArg::Plain);
        assert_eq!(b.server.timeout, 60);
        let JobArgs::Migrate(m) = &c.jobs[2].args else {
            panic!()
        };
        assert_eq!(
            (m.source.as_str(), m.target.as_str()),
            (
                "pop3s://alice@pop.example.com",
                "imaps://alice@imap.example.com:1993"
            )
        );
        assert_eq!(m.source_server.password_env.as_deref(), Some("POP_PW"));
        assert_eq!(m.target_server.tls_ca, Some(PathBuf::from("/etc/ca.pem")));
        assert_eq!(m.timeout, 120);
        assert!(m.seen && !m.delete_after_migrate && !m.dry_run);
        assert_eq!(m.map, ["Sent Items=Sent"]);
        assert_eq!(m.into.as_deref(), Some("Old"));
        let JobArgs::Prune(p) = &c.jobs[3].args else {
            panic!()
        };
        assert_eq!(p.older_than, "365d");
        assert!(p.yes && !p.dry_run);
        let JobArgs::Verify(v) = &c.jobs[4].args else {
            panic!()
        };
        assert_eq!(v.against.as_deref(), Some("pop3s://alice@pop.example.com"));
        assert_eq!(v.server.password_env.as_deref(), Some("POP_PW"));
    }

    #[test]
    fn max_message_size_is_bytes_or_a_size_string() {
        let acct = "[accounts.a]\nendpoint = \"imaps://u@h\"\npassword_env = \"P\"\n";
        let job = "[jobs.j]\nkind = \"backup\"\naccount = \"a\"\narchive = \"maildir:/m\"\n";
        let size = |line: &str| -> Result<u64> {
            let c = parse_text(&format!("{acct}{job}{line}"))?;
            Ok(c.jobs[0].args.limits().unwrap().max_message_size)
        };
        assert_eq!(
            size("").unwrap(),
            crate::core::limits::DEFAULT_MAX_MESSAGE_SIZE
        );
        assert_eq!(size("max_message_size = 1048576\n").unwrap(), 1 << 20);
        assert_eq!(size("max_message_size = \"50M\"\n").unwrap(), 50 << 20);
        let e = size("max_message_size = \"lots\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("/c/config.toml:8: jobs.j.max_message_size: `lots` is not a size"),
            "{e}"
        );
        let e = size("max_message_size = 0\n").unwrap_err().to_string();
        assert!(
            e.starts_with("/c/config.toml:8: jobs.j.max_message_size: not a size"),
            "{e}"
        );
        // prune reads no message: no such key.
        let prune = "[jobs.j]\nkind = \"prune\"\naccount = \"a\"\narchive = \"maildir:/m\"\nolder_than = \"1y\"\nmax_message_size = 5\n";
        assert!(parse_text(&format!("{acct}{prune}")).is_err());
    }

    #[test]
    fn every_error_is_one_line_with_file_line_and_key() {
        let acct = "[accounts.a]\nendpoint = \"imaps://u@h\"\npassword_env = \"P\"\n";
        let job = "[jobs.j]\nkind = \"backup\"\naccount = \"a\"\narchive = \"maildir:/m\"\n";
        // (file text, expected start of the message)
        let cases: Vec<(String, &str)> = vec![
            (
                format!("{acct}{job}archiv = \"x\"\n"),
                "/c/config.toml:8: jobs.j.archiv: unknown key `archiv` (did you mean `archive`?), expected one of `kind`, `account`,",
            ),
            (
                format!("{acct}password = \"hunter2\"\n{job}"),
                "/c/config.toml:4: accounts.a.password: secrets are not written in the config file",
            ),
            (
                format!("{acct}{job}password = \"x\"\n"),
                "/c/config.toml:8: jobs.j.password: secrets are not written",
            ),
            (
                format!("[accounts.a]\nendpoint = \"imaps://u:pw@h\"\npassword_env = \"P\"\n{job}"),
                "/c/config.toml:2: accounts.a.endpoint: ",
            ),
            (
                format!("[accounts.a]\nendpoint = \"maildir:/x\"\npassword_env = \"P\"\n{job}"),
                "/c/config.toml:2: accounts.a.endpoint: `maildir:/x` is not a server",
            ),
            (
                format!("[accounts.a]\nendpoint = \"imapz://u@h\"\npassword_env = \"P\"\n{job}"),
                "/c/config.toml:2: accounts.a.endpoint: ",
            ),
            (
                format!("[accounts.a]\nendpoint = \"imaps://u@h\"\n{job}"),
                "/c/config.toml:1: accounts.a: no password source",
            ),
            (
                format!("[accounts.a]\npassword_env = \"P\"\n{job}"),
                "/c/config.toml:1: accounts.a: missing key `endpoint`",
            ),
            (
                format!("{acct}password_file = \"/p\"\n{job}"),
                "/c/config.toml:4: accounts.a.password_file: give one of",
            ),
            (
                format!("{acct}auth = \"magic\"\n{job}"),
                "/c/config.toml:4: accounts.a.auth: unknown mechanism `magic`",
            ),
            (
                format!("{acct}timeout = \"ten\"\n{job}"),
                "/c/config.toml:4: accounts.a.timeout: invalid type",
            ),
            (
                format!("{acct}[jobs.j]\nkind = \"backup\"\naccount = \"b\"\narchive = \"maildir:/m\"\n"),
                "/c/config.toml:6: jobs.j.account: no account named `b` (accounts: a)",
            ),
            (
                format!("{acct}[jobs.j]\nkind = \"backups\"\n"),
                "/c/config.toml:5: jobs.j.kind: unknown kind `backups`",
            ),
            (
                format!("{acct}[jobs.j]\nkind = \"backup\"\naccount = \"a\"\n"),
                "/c/config.toml:4: jobs.j: a backup job needs `archive`",
            ),
            (
                format!("{acct}{job}older_than = \"365d\"\n"),
                "/c/config.toml:8: jobs.j.older_than: a backup job does not take `older_than` (a key of prune jobs)",
            ),
            (
                format!("{acct}[jobs.j]\nkind = \"prune\"\naccount = \"a\"\narchive = \"maildir:/m\"\nolder_than = \"1 year\"\n"),
                "/c/config.toml:8: jobs.j.older_than: older_than `1 year`: write a number of days",
            ),
            (
                format!("{acct}[jobs.j]\nkind = \"backup\"\naccount = \"a\"\narchive = \"imaps://u@h\"\n"),
                "/c/config.toml:7: jobs.j.archive: `imaps://u@h` is a server",
            ),
            (
                format!("{acct}[jobs.j]\nkind = \"backup\"\naccount = \"a\"\narchive = \"maildr:/m\"\n"),
                "/c/config.toml:7: jobs.j.archive: ",
            ),
            (
                format!("{acct}{job}connections = 40\n"),
                "/c/config.toml:8: jobs.j.connections: from 1 to 16",
            ),
            (
                format!("{acct}{job}retries = 11\n"),
                "/c/config.toml:8: jobs.j.retries: at most 10",
            ),
            (
                format!("colour = \"blue\"\n{acct}{job}"),
                "/c/config.toml:1: colour: unknown key `colour`",
            ),
            (
                format!("{acct}{job}folder = \"INBOX\"\n"),
                "/c/config.toml:8: jobs.j.folder: invalid type",
            ),
            (
                format!("{acct}[jobs.j]\nkind = backup\n"),
                "/c/config.toml:5: jobs.j.kind: ",
            ),
            (
                format!("{acct}[jobs.\"my job\"]\nkind = \"verify\"\narchive = \"maildir:/m\"\n"),
                "/c/config.toml:4: jobs.my job: a job name is",
            ),
            (acct.to_string(), "/c/config.toml: no jobs"),
            // A typo far from every key gets no suggestion.
            (
                format!("{acct}{job}zzz = 1\n"),
                "/c/config.toml:8: jobs.j.zzz: unknown key `zzz`, expected one of `kind`,",
            ),
            (
                format!("{acct}tls-ca = \"/ca.pem\"\n{job}"),
                "/c/config.toml:4: accounts.a.tls-ca: unknown key `tls-ca` (did you mean `tls_ca`?), expected one of `endpoint`,",
            ),
            // TOML's words for the types, not Rust's.
            (
                format!("{acct}{job}keep_days = \"30\"\n"),
                "/c/config.toml:8: jobs.j.keep_days: invalid type: string \"30\", expected a whole number",
            ),
            (
                format!("{acct}{job}exclude = \"Junk\"\n"),
                "/c/config.toml:8: jobs.j.exclude: invalid type: string \"Junk\", expected an array such as [\"INBOX\"]",
            ),
            (
                format!("{acct}[jobs.j]\nkind = \"prune\"\naccount = \"a\"\narchive = \"maildir:/m\"\nolder_than = 365\n"),
                "/c/config.toml:8: jobs.j.older_than: invalid type: integer `365`, expected a string in double quotes",
            ),
            // A verify job's archive is checked like any other.
            (
                format!("{acct}[jobs.j]\nkind = \"verify\"\narchive = \"imaps://u@h\"\n"),
                "/c/config.toml:6: jobs.j.archive: `imaps://u@h` is a server; an archive is maildir:PATH or mbox:PATH",
            ),
            (
                format!("{acct}[jobs.j]\nkind = \"verify\"\narchive = \"maildr:/m\"\n"),
                "/c/config.toml:6: jobs.j.archive: `maildr:/m`: unknown archive kind `maildr:`",
            ),
            // Relative file names: cron, systemd and a shell start in different folders.
            (
                format!("log_file = \"run.log\"\n{acct}{job}"),
                "/c/config.toml:1: log_file: `run.log` is a relative path, which cron, systemd and your shell would each look for in another folder: write the full path (/... or ~/...)",
            ),
            (
                format!("{acct}password_file = \"pw\"\n{job}")
                    .replace("password_env = \"P\"\n", ""),
                "/c/config.toml:3: accounts.a.password_file: `pw` is a relative path,",
            ),
            (
                format!("{acct}tls_ca = \"certs/ca.pem\"\n{job}"),
                "/c/config.toml:4: accounts.a.tls_ca: `certs/ca.pem` is a relative path,",
            ),
            (
                format!("{acct}[jobs.j]\nkind = \"backup\"\naccount = \"a\"\narchive = \"maildir:Mail/m\"\n"),
                "/c/config.toml:7: jobs.j.archive: `maildir:Mail/m` is a relative path,",
            ),
            (
                format!("{acct}[jobs.j]\nkind = \"backup\"\naccount = \"a\"\narchive = \"backups\"\n"),
                "/c/config.toml:7: jobs.j.archive: `backups` is a relative path,",
            ),
            (
                format!("{acct}[jobs.j]\nkind = \"migrate\"\nsource = \"a\"\ntarget = \"a\"\nvia = \"mbox:m\"\n"),
                "/c/config.toml:8: jobs.j.via: `mbox:m` is a relative path,",
            ),
        ];
        for (text, want) in cases {
            let e = parse_text(&text).unwrap_err();
            assert_eq!(e.exit(), crate::core::error::Exit::Usage);
            let msg = e.to_string();
            assert!(
                msg.starts_with(want),
                "got:  {msg}\nwant: {want}…\nfile:\n{text}"
            );
            assert!(!msg.contains('\n'), "{msg}");
            assert!(
                !msg.contains("hunter2") && !msg.contains("`password`"),
                "{msg}"
            );
        }
    }

    #[test]
    fn a_home_path_without_home_is_refused_at_its_key() {
        let text = "log_file = \"/var/log/mk.log\"\n[accounts.a]\nendpoint = \"imaps://u@h\"\npassword_env = \"P\"\n[jobs.j]\nkind = \"backup\"\naccount = \"a\"\narchive = \"maildir:~/Mail/m\"\n";
        let e = parse(text, Path::new("/c/config.toml"), None)
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "/c/config.toml:8: jobs.j.archive: `maildir:~/Mail/m`: `~` is your home, but HOME is not set: write the full path"
        );
        let text = text.replace("/var/log/mk.log", "~/mk.log");
        let e = parse(&text, Path::new("/c/config.toml"), None)
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "/c/config.toml:1: log_file: `~/mk.log`: `~` is your home, but HOME is not set: write the full path"
        );
        // With HOME, the same file is fine.
        let c = parse(&text, Path::new("/c/config.toml"), Some(Path::new("/h"))).unwrap();
        assert_eq!(c.log_file, Some(PathBuf::from("/h/mk.log")));
        assert_eq!(c.log_file_line, 1);
    }

    #[test]
    fn a_jobs_keys_and_its_accounts_keys_are_found_by_their_options() {
        let c = parse_text(GOOD).unwrap();
        let keys = |job: usize| -> Vec<(String, String, usize)> {
            c.jobs[job]
                .keys
                .iter()
                .map(|k| (k.option.clone(), k.key.clone(), k.line))
                .collect()
        };
        let own = |v: &[(&str, &str, usize)]| -> Vec<(String, String, usize)> {
            v.iter()
                .map(|(o, k, l)| (o.to_string(), k.to_string(), *l))
                .collect()
        };
        // zeta: its own keys, then its account's.
        assert_eq!(
            keys(0),
            own(&[
                ("account", "jobs.zeta.account", 18),
                ("archive", "jobs.zeta.archive", 19),
                ("keep-days", "jobs.zeta.keep_days", 20),
                ("password-env", "accounts.pop.password_env", 7),
            ])
        );
        // A migration's accounts, under their prefixed and their shared options.
        let m = &c.jobs[2];
        let find = |msg: &str| m.key_for(msg).map(|k| (k.key.as_str(), k.line));
        assert_eq!(
            find("--target-tls-ca /etc/ca.pem: cannot read"),
            Some(("accounts.imap.tls_ca", 12))
        );
        assert_eq!(
            find("--tls-ca /etc/ca.pem: cannot read"),
            Some(("accounts.imap.tls_ca", 12))
        );
        assert_eq!(
            find("--source-password-env X"),
            Some(("accounts.pop.password_env", 7))
        );
        assert_eq!(
            find("--timeout must be"),
            Some(("accounts.imap.timeout", 14))
        );
        // The first option that a key gave: `--delete-after-backup` is not in the file.
        let z = &c.jobs[0];
        assert_eq!(
            z.key_for("--delete-after-backup and --keep-days are for POP3 sources")
                .map(|k| (k.key.as_str(), k.line)),
            Some(("jobs.zeta.keep_days", 20))
        );
        assert_eq!(z.key_for("--folder and --exclude are for IMAP"), None);
        assert_eq!(z.key_for("no options here"), None);
    }

    #[test]
    fn files_others_can_write_are_refused() {
        let me = 1000;
        let cases = [
            (0o100600, me, None),
            (0o100644, me, None),
            (0o100640, 0, None),
            (0o100664, me, Some("can be written by its group (mode 664)")),
            (0o100646, me, Some("can be written by others (mode 646)")),
            (0o100666, me, Some("can be written by its group and others")),
            (0o100600, 1001, Some("belongs to another user (uid 1001)")),
        ];
        for (mode, owner, want) in cases {
            let got = unsafe_file(mode, owner, me);
            match (want, &got) {
                (None, None) => {}
                (Some(w), Some(g)) if g.starts_with(w) => {}
                _ => panic!("mode {mode:o} owner {owner}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn option_names_become_keys() {
        let cases = [
            (
                "--delete-after-backup and --keep-days are for POP3 sources",
                "delete_after_backup and keep_days are for POP3 sources",
            ),
            ("--tls-ca /x: cannot read", "tls_ca /x: cannot read"),
            ("--jobs 3", "connections 3"),
            ("--source-auth apop", "auth apop"),
            ("a -- b", "a -- b"),
            ("no options", "no options"),
            (
                "certificate verify failed — pass --tls-ca FILE to trust a private CA",
                "certificate verify failed — pass tls_ca FILE to trust a private CA",
            ),
            // Only options that are keys: mailbox names and other options stay as they are.
            ("mailbox Old--2019: NO", "mailbox Old--2019: NO"),
            ("mailbox --keep: NO", "mailbox --keep: NO"),
            ("--since 2024-01-01", "--since 2024-01-01"),
            (
                "--source-password-env and --target-tls-ca",
                "password_env and tls_ca",
            ),
        ];
        for (msg, want) in cases {
            assert_eq!(option_names_as_keys(msg), want);
        }
    }
}
