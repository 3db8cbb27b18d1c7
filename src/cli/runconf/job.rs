//! The `[jobs.NAME]` tables of the config file: a job's kind (`backup`, `migrate`, `prune`,
//! `verify`), the keys each kind takes ([`KINDS`]), and the job turned into the argument struct
//! the command line fills ([`JobArgs`]), with the accounts it names resolved. [`Job::keys`]
//! remembers where each key is written, so that an error found later, when the job is
//! validated like a command line, is reported at the key's line.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::Path;

use serde::Deserialize;
use toml::Spanned;

use super::account::Account;
use super::errors::{line_of, option_tokens, Errs};
use super::{good_name, not_full, MAX_RETRIES, S};
use crate::cli::{
    BackupArgs, LimitArgs, MigrateArgs, OutputArgs, PruneArgs, SourceServerArgs, TargetServerArgs,
    VerifyArgs,
};
use crate::core::endpoint::{self, Endpoint};
use crate::core::error::Result;

/// A `[jobs.NAME]` table as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct JobToml {
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
    gmail_folders: S<bool>,
    gmail_spam_trash: S<bool>,
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
pub(super) const KINDS: &[(&str, &[&str])] = &[
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
            "gmail_folders",
            "gmail_spam_trash",
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
            gmail_folders,
            gmail_spam_trash,
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

/// Checks one `[jobs.NAME]` table (`j`, with the span of its table) and turns it into a [`Job`]:
/// its accounts looked up in `accounts`, `retries` (the file's) unless it gives its own,
/// `home` expanding `~/`. Pure.
///
/// Errors: [`Error::Usage`](crate::core::error::Error::Usage) at the key: a bad name, an
/// inline secret, an unknown kind, a key its kind does not take, a missing key, an unknown
/// account, a malformed archive or age, a number out of range.
pub(super) fn parse_job(
    errs: &Errs,
    name: &str,
    j: &Spanned<JobToml>,
    accounts: &BTreeMap<String, Account>,
    retries: u32,
    home: Option<&Path>,
) -> Result<Job> {
    let span = j.span();
    let j = j.get_ref();
    let key = |k: &str| format!("jobs.{name}.{k}");
    if !good_name(name) {
        return Err(errs.at(
            &span,
            &format!("jobs.{name}"),
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
    let connections = match &j.connections {
        None => 3,
        Some(c) if (1..=16).contains(c.get_ref()) => *c.get_ref(),
        Some(c) => return Err(errs.at(&c.span(), &key("connections"), "from 1 to 16")),
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
    let checking = Checking {
        errs,
        name,
        span: span.clone(),
        kind,
        accounts,
        home,
    };
    let args = match kind {
        "backup" => checking.backup(j, connections, limits)?,
        "migrate" => checking.migrate(j, connections, limits)?,
        "prune" => checking.prune(j)?,
        _ => checking.verify(j, limits)?,
    };
    let retries = match &j.retries {
        None => retries,
        Some(r) if *r.get_ref() <= MAX_RETRIES => *r.get_ref(),
        Some(r) => {
            return Err(errs.at(&r.span(), &key("retries"), format!("at most {MAX_RETRIES}")))
        }
    };
    Ok(Job {
        name: name.to_string(),
        line: line_of(errs.text, span.start),
        keys: checking.key_lines(j),
        retries,
        args,
    })
}

/// A job's table being turned into arguments: what its errors name, and what its keys refer to.
struct Checking<'a> {
    errs: &'a Errs<'a>,
    name: &'a str,
    /// The span of the job's table.
    span: Range<usize>,
    kind: &'a str,
    accounts: &'a BTreeMap<String, Account>,
    home: Option<&'a Path>,
}

impl<'a> Checking<'a> {
    /// The key `k` of this job as errors name it: `jobs.NAME.k`.
    fn key(&self, k: &str) -> String {
        format!("jobs.{}.{k}", self.name)
    }

    /// The value of a key the job's kind needs (`k`), or an error at its table.
    fn need(&self, v: &S<String>, k: &str) -> Result<Spanned<String>> {
        v.clone().ok_or_else(|| {
            self.errs.at(
                &self.span,
                &format!("jobs.{}", self.name),
                format!("a {} job needs `{k}`", self.kind),
            )
        })
    }

    /// The account that key `k` names, or an error listing the accounts there are.
    fn account(&self, v: &Spanned<String>, k: &str) -> Result<&'a Account> {
        self.accounts.get(v.get_ref()).ok_or_else(|| {
            let known: Vec<&str> = self.accounts.keys().map(String::as_str).collect();
            self.errs.at(
                &v.span(),
                &self.key(k),
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
    }

    /// The archive that key `k` names, as written: an archive (not a server) with a full path.
    fn archive(&self, v: &Spanned<String>, k: &str) -> Result<String> {
        match endpoint::parse(v.get_ref(), self.home) {
            Ok(Endpoint::Server(_)) => Err(self.errs.at(
                &v.span(),
                &self.key(k),
                format!(
                    "`{}` is a server; an archive is maildir:PATH or mbox:PATH",
                    v.get_ref()
                ),
            )),
            Ok(
                Endpoint::Archive(endpoint::ArchiveSpec { path, .. }) | Endpoint::BarePath(path),
            ) => match not_full(&path, v.get_ref()) {
                Some(why) => Err(self.errs.at(&v.span(), &self.key(k), why)),
                None => Ok(v.get_ref().clone()),
            },
            Err(e) => Err(self.errs.at(&v.span(), &self.key(k), e)),
        }
    }

    /// A `backup` job: its account's server into its archive.
    fn backup(&self, j: &JobToml, connections: u16, limits: LimitArgs) -> Result<JobArgs> {
        let acct = self.need(&j.account, "account")?;
        let a = self.account(&acct, "account")?;
        Ok(JobArgs::Backup(BackupArgs {
            source: a.endpoint.clone(),
            archive: self.archive(&self.need(&j.archive, "archive")?, "archive")?,
            server: a.server.clone(),
            delete_after_backup: flag(&j.delete_after_backup),
            keep_days: j.keep_days.as_ref().map(|d| *d.get_ref()),
            folder: list(&j.folder),
            exclude: list(&j.exclude),
            mirror: flag(&j.mirror),
            dedup: flag(&j.dedup),
            gmail_folders: flag(&j.gmail_folders),
            gmail_spam_trash: flag(&j.gmail_spam_trash),
            jobs: connections,
            store: false,
            limits,
            output: quiet(),
        }))
    }

    /// A `migrate` job: its source account's server to its target's, each with its own login
    /// options (the timeouts shared: the larger of the two).
    fn migrate(&self, j: &JobToml, connections: u16, limits: LimitArgs) -> Result<JobArgs> {
        let s = self.account(&self.need(&j.source, "source")?, "source")?;
        let t = self.account(&self.need(&j.target, "target")?, "target")?;
        let via = match &j.via {
            Some(v) => Some(self.archive(v, "via")?),
            None => None,
        };
        Ok(JobArgs::Migrate(MigrateArgs {
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
            output: quiet(),
        }))
    }

    /// A `prune` job: its account's messages older than `older_than` and archived, deleted.
    fn prune(&self, j: &JobToml) -> Result<JobArgs> {
        let a = self.account(&self.need(&j.account, "account")?, "account")?;
        let age = self.need(&j.older_than, "older_than")?;
        crate::cli::config::parse_age("older_than", age.get_ref())
            .map_err(|e| self.errs.at(&age.span(), &self.key("older_than"), e))?;
        Ok(JobArgs::Prune(PruneArgs {
            source: a.endpoint.clone(),
            archive: self.archive(&self.need(&j.archive, "archive")?, "archive")?,
            older_than: age.get_ref().clone(),
            server: a.server.clone(),
            folder: list(&j.folder),
            exclude: list(&j.exclude),
            dry_run: flag(&j.dry_run),
            yes: flag(&j.yes),
            output: quiet(),
        }))
    }

    /// A `verify` job: its archive checked, against its `against` account's server if it names one.
    fn verify(&self, j: &JobToml, limits: LimitArgs) -> Result<JobArgs> {
        let against = match &j.against {
            Some(v) => Some(self.account(v, "against")?),
            None => None,
        };
        Ok(JobArgs::Verify(VerifyArgs {
            archive: self.archive(&self.need(&j.archive, "archive")?, "archive")?,
            against: against.map(|a| a.endpoint.clone()),
            server: against.map(|a| a.server.clone()).unwrap_or_default(),
            folder: list(&j.folder),
            exclude: list(&j.exclude),
            limits,
            quiet: true,
            json: false,
        }))
    }

    /// Where each key of the job, and of the accounts it uses, is written, by the command-line
    /// option it becomes.
    fn key_lines(&self, j: &JobToml) -> Vec<KeyLine> {
        let mut keys: Vec<KeyLine> = j
            .present()
            .into_iter()
            .map(|(k, s)| KeyLine {
                option: if k == "connections" {
                    "jobs".into()
                } else {
                    k.replace('_', "-")
                },
                key: self.key(k),
                line: line_of(self.errs.text, s.start),
                value: String::new(),
            })
            .collect();
        // The accounts the job uses, with the prefix their options have on its command line
        // (a migration's `--source-tls-ca`; it shares `--connect-timeout` and `--timeout`, and
        // some of its messages name the unprefixed option).
        let roles: Vec<(&str, &S<String>)> = match self.kind {
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
            for (k, line, value) in self.accounts.get(acct).map_or(&[][..], |a| &a.keys[..]) {
                keys.push(KeyLine {
                    option: format!("{prefix}{}", k.replace('_', "-")),
                    key: format!("accounts.{acct}.{k}"),
                    line: *line,
                    value: value.clone(),
                });
            }
        }
        keys
    }
}

/// The strings of a list key (none: empty).
fn list(v: &S<Vec<String>>) -> Vec<String> {
    v.as_ref().map(|l| l.get_ref().clone()).unwrap_or_default()
}

/// A yes/no key (none: no).
fn flag(v: &S<bool>) -> bool {
    v.as_ref().is_some_and(|b| *b.get_ref())
}

/// A job's output options: quiet, no JSON.
fn quiet() -> OutputArgs {
    OutputArgs {
        quiet: true,
        json: false,
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{parse_text, GOOD};
    use super::*;

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
}
