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
//!
//! One file per part of the config file: `account.rs` (the `[accounts.NAME]` tables),
//! `job.rs` (the `[jobs.NAME]` tables, [`Job`], [`JobArgs`], [`KeyLine`]), `errors.rs` (the
//! wording of the errors: file, line and key, suggestions for typos); this file holds the
//! top-level keys, [`RunConfig`] and reading the file.

mod account;
mod errors;
mod job;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use crate::core::error::{Error, Result};

use account::AccountToml;
pub use errors::option_names_as_keys;
use errors::{line_of, Errs};
use job::JobToml;
pub use job::{Job, JobArgs, KeyLine};

/// Temporary failures retried per job when the file does not say.
pub const DEFAULT_RETRIES: u32 = 3;
/// At most this many retries per job.
pub const MAX_RETRIES: u32 = 10;
/// The first wait before a retry when the file does not say (then 4 and 15 times as long:
/// 2 s, 8 s, 30 s).
pub const DEFAULT_RETRY_DELAY: Duration = Duration::from_secs(2);

/// An optional key, with where it is written.
type S<T> = Option<Spanned<T>>;

/// The whole file as written.
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

/// Parses a config file's text (`path` is only for messages; `home` expands `~/`). Pure.
///
/// Errors: [`Error::Usage`], one line naming the file, the line and the key: TOML syntax, an
/// unknown key or a value of the wrong type, an inline secret (`password`), a missing key, an
/// account or job reference that does not exist, a key a job of that kind does not take, a
/// malformed endpoint, archive or age.
pub fn parse(text: &str, path: &Path, home: Option<&Path>) -> Result<RunConfig> {
    let errs = Errs { path, text };
    let file: FileToml = toml::from_str(text).map_err(|e| errs.toml(&e))?;

    let mut accounts = BTreeMap::new();
    for (name, a) in &file.accounts {
        accounts.insert(name.clone(), account::parse_account(&errs, name, a, home)?);
    }
    let (retries, retry_delay, log_file) = top_level(&errs, &file, home)?;

    let mut ordered: Vec<(&String, &Spanned<JobToml>)> = file.jobs.iter().collect();
    ordered.sort_by_key(|(_, j)| j.span().start);
    let mut jobs = Vec::new();
    for (name, j) in ordered {
        jobs.push(job::parse_job(&errs, name, j, &accounts, retries, home)?);
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

/// The top-level keys of the file: `retries` (for every job that does not give its own),
/// `retry_delay` and `log_file` (`~/` expanded with `home`). Pure.
fn top_level(
    errs: &Errs,
    file: &FileToml,
    home: Option<&Path>,
) -> Result<(u32, Duration, Option<PathBuf>)> {
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
    Ok((retries, retry_delay, log_file))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::AuthArg;

    pub(super) const GOOD: &str = r#"
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

    pub(super) fn parse_text(text: &str) -> Result<RunConfig> {
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
}
