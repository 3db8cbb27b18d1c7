//! From the command line to a validated plan: endpoints parsed, options checked, before any
//! I/O happens. Nothing below this module sees a raw flag.

use std::path::PathBuf;
use std::time::Duration;

use crate::cli::{AuthArg, BackupArgs, OutputArgs, RestoreArgs, ServerArgs};
use crate::core::credentials::PasswordSource;
use crate::core::endpoint::{self, ArchiveSpec, Endpoint, Protocol, ServerSpec};
use crate::core::error::{Error, Result};
use crate::engine::plan::FolderFilter;

pub use crate::engine::plans::{
    restore_state_file, BackupPlan, ConvertPlan, DeletePolicy, ImapChoices, MigrateFrom,
    MigratePlan, Output, PrunePlan, RestorePlan, ServerPlan, ServerQuery, ZipBackupPlan,
};

/// Parses a server endpoint that must be IMAP (for `list` and `quota`).
pub fn imap_query(source: &str, server: &ServerArgs, warn_at: u8) -> Result<ServerQuery> {
    let spec = match endpoint::parse(source, home().as_deref())? {
        Endpoint::Server(s) if s.protocol == Protocol::Imap => s,
        _ => {
            return Err(Error::Usage(format!(
                "`{source}` is not an IMAP account: write imaps://USER@HOST or imap://USER@HOST"
            )))
        }
    };
    Ok(ServerQuery {
        source: server_plan(spec, server)?,
        warn_at,
    })
}

fn home() -> Option<PathBuf> {
    std::env::var_os("HOME").map(PathBuf::from)
}

/// Validates server options for `spec`.
pub fn server_plan(spec: ServerSpec, a: &ServerArgs) -> Result<ServerPlan> {
    let password = if let Some(v) = &a.password_env {
        PasswordSource::Env(v.clone())
    } else if let Some(c) = &a.password_command {
        PasswordSource::Command(c.clone())
    } else if let Some(f) = &a.password_file {
        PasswordSource::File(f.clone())
    } else {
        PasswordSource::Prompt
    };
    if let Some(ca) = &a.tls_ca {
        check_ca_file(ca)?;
    }
    if a.connect_timeout == 0 || a.timeout == 0 {
        return Err(Error::Usage(
            "--connect-timeout and --timeout must be at least 1 second".into(),
        ));
    }
    let oauth2_token = a
        .oauth2_token_command
        .clone()
        .map(PasswordSource::TokenCommand);
    let auth = match (a.auth, &oauth2_token) {
        (AuthArg::Auto, Some(_)) => AuthArg::Xoauth2,
        (AuthArg::Xoauth2 | AuthArg::Oauthbearer, None) => {
            return Err(Error::Usage(
                "--auth xoauth2/oauthbearer needs --oauth2-token-command CMD".into(),
            ))
        }
        (AuthArg::Apop, _) if spec.protocol == Protocol::Imap => {
            return Err(Error::Usage("--auth apop is for POP3 only".into()))
        }
        (AuthArg::Login | AuthArg::Xoauth2 | AuthArg::Oauthbearer, _)
            if spec.protocol == Protocol::Pop3 =>
        {
            return Err(Error::Usage(
                format!("--auth {:?} is for IMAP only", a.auth).to_lowercase(),
            ))
        }
        (auth, _) => auth,
    };
    Ok(ServerPlan {
        spec,
        password,
        oauth2_token,
        tls_ca: a.tls_ca.clone(),
        tls_fingerprint: a.tls_fingerprint.clone(),
        allow_plaintext: a.allow_plaintext,
        auth,
        connect_timeout: Duration::from_secs(a.connect_timeout),
        io_timeout: Duration::from_secs(a.timeout),
    })
}

/// Checks a `--tls-ca` file before any I/O on the network, so a wrong file is a usage error
/// (exit 2) and not a TLS failure at connect time (exit 4).
///
/// Errors: [`Error::Usage`] when it cannot be read or does not start with a PEM certificate.
fn check_ca_file(ca: &std::path::Path) -> Result<()> {
    let pem = std::fs::read(ca)
        .map_err(|e| Error::Usage(format!("--tls-ca {}: cannot read: {e}", ca.display())))?;
    native_tls::Certificate::from_pem(&pem).map_err(|e| {
        let detail = e.to_string().replace('\n', " ");
        Error::Usage(format!(
            "--tls-ca {}: not a PEM certificate ({})",
            ca.display(),
            detail.trim()
        ))
    })?;
    Ok(())
}

/// Parses an archive endpoint (`maildir:PATH`, `mbox:PATH` or a bare PATH).
pub fn archive_spec(s: &str) -> Result<ArchiveSpec> {
    match endpoint::parse(s, home().as_deref())? {
        Endpoint::Archive(a) => Ok(a),
        Endpoint::BarePath(p) => ArchiveSpec::resolve_bare(p),
        Endpoint::Server(_) => Err(Error::Usage(format!(
            "`{s}` is a server, but an archive is expected here (maildir:PATH or mbox:PATH)"
        ))),
    }
}

fn output(o: &OutputArgs) -> Output {
    Output {
        quiet: o.quiet,
        json: o.json,
    }
}

/// Validates `backup` arguments.
pub fn backup_plan(a: &BackupArgs) -> Result<BackupPlan> {
    if a.store {
        return Err(Error::Usage(
            "--store is for zip: archives (Maildir and mbox store messages as they are)".into(),
        ));
    }
    let spec = match endpoint::parse(&a.source, home().as_deref())? {
        Endpoint::Server(s) => s,
        _ => {
            return Err(Error::Usage(format!(
                "`{}` is not a server: SOURCE is pop3s://USER@HOST, pop3://USER@HOST, imaps://USER@HOST or imap://USER@HOST",
                a.source
            )))
        }
    };
    if spec.protocol == Protocol::Imap && (a.delete_after_backup || a.keep_days.is_some()) {
        return Err(Error::Usage(
            "--delete-after-backup and --keep-days are for POP3 sources; an IMAP backup never changes the server".into(),
        ));
    }
    if spec.protocol == Protocol::Pop3
        && (!a.folder.is_empty() || !a.exclude.is_empty() || a.mirror || a.dedup)
    {
        return Err(Error::Usage(
            "--folder, --exclude, --mirror and --dedup are for IMAP sources (POP3 has only INBOX)"
                .into(),
        ));
    }
    let delete = match (a.delete_after_backup, a.keep_days) {
        (_, Some(d)) => DeletePolicy::Archived { min_age_days: d },
        (true, None) => DeletePolicy::Archived { min_age_days: 0 },
        (false, None) => DeletePolicy::Never,
    };
    Ok(BackupPlan {
        source: server_plan(spec, &a.server)?,
        archive: archive_spec(&a.archive)?,
        delete,
        imap: ImapChoices {
            filter: FolderFilter::new(&a.folder, &a.exclude)?,
            filtered: !a.folder.is_empty() || !a.exclude.is_empty(),
            mirror: a.mirror,
            dedup: a.dedup,
            jobs: usize::from(a.jobs),
            gmail_folders: a.gmail_folders,
            gmail_spam_trash: a.gmail_spam_trash,
        },
        output: output(&a.output),
    })
}

/// Validates `restore` arguments.
pub fn restore_plan(a: &RestoreArgs) -> Result<RestorePlan> {
    let spec = match endpoint::parse(&a.target, home().as_deref()) {
        Ok(Endpoint::Server(s)) if s.protocol == Protocol::Imap => s,
        _ => {
            return Err(Error::Usage(format!(
                "`{}` is not an IMAP account: TARGET is imaps://USER@HOST or imap://USER@HOST",
                a.target
            )))
        }
    };
    let rules = mapping_rules(a.into.as_deref(), &a.map)?;
    // Checked before any I/O, so a typo is a usage error (exit 2), not a missing archive later.
    let kind = a
        .archive
        .split_once(':')
        .map(|(k, _)| k.to_ascii_lowercase());
    if !kind
        .as_deref()
        .is_some_and(|k| ["maildir", "mbox", "eml", "thunderbird", "zip"].contains(&k))
    {
        return Err(Error::Usage(format!(
            "`{}`: write the archive as maildir:PATH, mbox:PATH, eml:DIR, thunderbird:PATH or zip:PATH.zip",
            a.archive
        )));
    }
    Ok(RestorePlan {
        archive: a.archive.clone(),
        target: server_plan(spec, &a.server)?,
        rules,
        dry_run: a.dry_run,
        state_file: restore_state_file()?,
        jobs: usize::from(a.jobs),
        output: output(&a.output),
    })
}

/// Parses `--into PREFIX` and `--map SRC=DST` (levels separated by `/`).
///
/// Errors: [`Error::Usage`] naming the option for an empty or malformed name.
fn mapping_rules(
    into: Option<&str>,
    map: &[String],
) -> Result<crate::engine::restore_plan::MappingRules> {
    use crate::core::message::MailboxName;
    use crate::engine::restore_plan::{levels_of, MappingRules};
    let into = match into {
        None => Vec::new(),
        Some(p) => levels_of(p.trim_matches('/')).ok_or_else(|| {
            Error::Usage(format!(
                "--into `{p}`: write a folder name, levels separated by `/`"
            ))
        })?,
    };
    let mut maps = Vec::new();
    for m in map {
        let parsed = m
            .split_once('=')
            .and_then(|(s, d)| Some((levels_of(s)?, levels_of(d)?)));
        let Some((src, dst)) = parsed else {
            return Err(Error::Usage(format!(
                "--map `{m}`: write SRC=DST with folder names, levels separated by `/`"
            )));
        };
        maps.push((MailboxName::new(&src.join("/")), dst));
    }
    Ok(MappingRules { into, maps })
}

impl From<&crate::cli::SourceServerArgs> for ServerArgs {
    fn from(a: &crate::cli::SourceServerArgs) -> Self {
        ServerArgs {
            password_env: a.password_env.clone(),
            password_command: a.password_command.clone(),
            password_file: a.password_file.clone(),
            tls_ca: a.tls_ca.clone(),
            tls_fingerprint: a.tls_fingerprint.clone(),
            allow_plaintext: a.allow_plaintext,
            auth: a.auth,
            oauth2_token_command: a.oauth2_token_command.clone(),
            ..ServerArgs::default()
        }
    }
}

impl From<&crate::cli::TargetServerArgs> for ServerArgs {
    fn from(a: &crate::cli::TargetServerArgs) -> Self {
        ServerArgs {
            password_env: a.password_env.clone(),
            password_command: a.password_command.clone(),
            password_file: a.password_file.clone(),
            tls_ca: a.tls_ca.clone(),
            tls_fingerprint: a.tls_fingerprint.clone(),
            allow_plaintext: a.allow_plaintext,
            auth: a.auth,
            oauth2_token_command: a.oauth2_token_command.clone(),
            ..ServerArgs::default()
        }
    }
}

/// Validates `migrate` arguments.
///
/// Errors: [`Error::Usage`] for a SOURCE that is not a server, a TARGET that is not IMAP, the
/// same account on both sides, options of the other protocol (`--folder` for POP3, `--seen`
/// and `--delete-after-migrate` for IMAP), or a malformed `--via`, `--into`, `--map`.
pub fn migrate_plan(a: &crate::cli::MigrateArgs) -> Result<MigratePlan> {
    let source = match endpoint::parse(&a.source, home().as_deref())? {
        Endpoint::Server(s) => s,
        _ => {
            return Err(Error::Usage(format!(
                "`{}` is not a server: SOURCE is pop3s://USER@HOST, pop3://USER@HOST, imaps://USER@HOST or imap://USER@HOST (to upload an archive, use `mailkeep restore`)",
                a.source
            )))
        }
    };
    let target = match endpoint::parse(&a.target, home().as_deref()) {
        Ok(Endpoint::Server(s)) if s.protocol == Protocol::Imap => s,
        _ => {
            return Err(Error::Usage(format!(
                "`{}` is not an IMAP account: TARGET is imaps://USER@HOST or imap://USER@HOST",
                a.target
            )))
        }
    };
    if source.ledger_key() == target.ledger_key() {
        return Err(Error::Usage(format!(
            "SOURCE and TARGET are the same account ({}): a migration copies between two accounts",
            target.account()
        )));
    }
    let from = match source.protocol {
        Protocol::Pop3 => MigrateFrom::Pop3,
        Protocol::Imap => MigrateFrom::Imap,
    };
    if from == MigrateFrom::Imap && (a.delete_after_migrate || a.seen) {
        return Err(Error::Usage(
            "--delete-after-migrate and --seen are for POP3 sources; an IMAP source is never changed and its flags are copied".into(),
        ));
    }
    if from == MigrateFrom::Pop3 && (!a.folder.is_empty() || !a.exclude.is_empty()) {
        return Err(Error::Usage(
            "--folder and --exclude are for IMAP sources (POP3 has only INBOX)".into(),
        ));
    }
    let via = a.via.as_deref().map(archive_spec).transpose()?;
    let timeouts = |mut s: ServerArgs| {
        s.connect_timeout = a.connect_timeout;
        s.timeout = a.timeout;
        s
    };
    let source_plan = server_plan(source.clone(), &timeouts((&a.source_server).into()))?;
    let target_plan = server_plan(target, &timeouts((&a.target_server).into()))?;
    let archive = match &via {
        Some(v) => format!("{}:{}", v.kind.as_str(), v.path.display()),
        None => source.account(),
    };
    Ok(MigratePlan {
        source: source_plan,
        from,
        filter: FolderFilter::new(&a.folder, &a.exclude)?,
        filtered: !a.folder.is_empty() || !a.exclude.is_empty(),
        seen: a.seen,
        via,
        delete_after: a.delete_after_migrate,
        restore: RestorePlan {
            archive,
            target: target_plan,
            rules: mapping_rules(a.into.as_deref(), &a.map)?,
            dry_run: a.dry_run,
            state_file: restore_state_file()?,
            // One POP3 session at a time: many servers lock the maildrop (RFC 1939 8).
            jobs: match from {
                MigrateFrom::Pop3 => 1,
                MigrateFrom::Imap => usize::from(a.jobs),
            },
            output: output(&a.output),
        },
    })
}

// ---------------------------------------------------------------------------------------------
// verify and export (src/inspect/)
// ---------------------------------------------------------------------------------------------

/// Validates `verify` arguments.
pub fn verify_plan(
    a: &crate::cli::VerifyArgs,
) -> Result<crate::engine::inspect::verify::VerifyPlan> {
    let archive = crate::engine::inspect::resolve(&a.archive)?;
    let against = match &a.against {
        None => None,
        Some(s) => match endpoint::parse(s, home().as_deref())? {
            Endpoint::Server(spec) => Some(server_plan(spec, &a.server)?),
            _ => {
                return Err(Error::Usage(format!(
                    "--against `{s}` is not a server: write imaps://, imap://, pop3s:// or pop3://USER@HOST"
                )))
            }
        },
    };
    let imap = against
        .as_ref()
        .is_some_and(|p| p.spec.protocol == Protocol::Imap);
    if !imap && (!a.folder.is_empty() || !a.exclude.is_empty()) {
        return Err(Error::Usage(
            "--folder and --exclude choose the mailboxes of an IMAP --against account".into(),
        ));
    }
    Ok(crate::engine::inspect::verify::VerifyPlan {
        archive,
        against,
        filter: FolderFilter::new(&a.folder, &a.exclude)?,
        output: Output {
            quiet: a.quiet,
            json: a.json,
        },
    })
}

/// Validates `export` arguments.
pub fn export_plan(
    a: &crate::cli::ExportArgs,
) -> Result<crate::engine::inspect::export::ExportPlan> {
    use crate::engine::inspect::{export, parse_day};
    let archive = crate::engine::inspect::resolve(&a.archive)?;
    let since = a
        .since
        .as_deref()
        .map(|d| parse_day("--since", d))
        .transpose()?;
    let before = a
        .before
        .as_deref()
        .map(|d| parse_day("--before", d))
        .transpose()?;
    if let (Some(s), Some(b)) = (since, before) {
        if s >= b {
            return Err(Error::Usage(format!(
                "--since {} is not before --before {}: no message can match",
                a.since.as_deref().unwrap_or_default(),
                a.before.as_deref().unwrap_or_default()
            )));
        }
    }
    let mailboxes = FolderFilter::new(&a.mailbox, &[])
        .map_err(|e| Error::Usage(e.to_string().replacen("--folder", "--mailbox", 1)))?;
    let text = |o: &Option<String>| o.clone().filter(|t| !t.is_empty());
    Ok(export::ExportPlan {
        archive,
        to: a.to.clone(),
        filter: export::ExportFilter {
            mailboxes,
            since,
            before,
            from: text(&a.from),
            subject: text(&a.subject),
        },
        crlf: a.crlf,
        output: output(&a.output),
    })
}

/// Validates `convert` arguments: both kinds known, `--store` only for a zip target, and the
/// target neither the source nor inside it.
pub fn convert_plan(a: &crate::cli::ConvertArgs) -> Result<ConvertPlan> {
    use crate::engine::convert::{parse_target, ConvertTarget};
    let kinds = "maildir:PATH, mbox:PATH, eml:DIR, thunderbird:PATH or zip:PATH.zip";
    let source_path = match a.from.split_once(':') {
        Some((k, p))
            if !p.is_empty()
                && ["maildir", "mbox", "eml", "thunderbird", "zip"]
                    .contains(&k.to_ascii_lowercase().as_str()) =>
        {
            match (p.strip_prefix("~/"), home()) {
                (Some(rest), Some(h)) => h.join(rest),
                _ => PathBuf::from(p),
            }
        }
        _ => {
            return Err(Error::Usage(format!(
                "`{}`: write the source as {kinds}",
                a.from
            )))
        }
    };
    let target = parse_target(&a.to, home().as_deref())?;
    if a.store && !matches!(target, ConvertTarget::Zip(_)) {
        return Err(Error::Usage("--store is for a zip: target".into()));
    }
    let abs = |p: &std::path::Path| {
        std::fs::canonicalize(p).unwrap_or_else(|_| {
            std::env::current_dir()
                .map(|d| d.join(p))
                .unwrap_or_else(|_| p.to_path_buf())
        })
    };
    let (src, dst) = (abs(&source_path), abs(target.path()));
    if dst == src || (src.is_dir() && dst.starts_with(&src)) {
        return Err(Error::Usage(format!(
            "`{}` is inside the source `{}`: write the target somewhere else",
            a.to, a.from
        )));
    }
    Ok(ConvertPlan {
        source: a.from.clone(),
        target,
        store: a.store,
        output: output(&a.output),
    })
}

// ---------------------------------------------------------------------------------------------
// prune (src/engine/prune.rs)
// ---------------------------------------------------------------------------------------------

/// Parses an age: `<N>d` (days), `<N>w` (weeks) or `<N>y` (years of 365 days), N at least 1;
/// returns seconds.
///
/// Errors: [`Error::Usage`] naming `option` and the value.
pub fn parse_age(option: &str, value: &str) -> Result<i64> {
    let bad = || {
        Error::Usage(format!(
            "{option} `{value}`: write a number of days, weeks or years, e.g. 365d, 8w, 2y"
        ))
    };
    let mut chars = value.trim().chars();
    let unit = chars.next_back().ok_or_else(bad)?.to_ascii_lowercase();
    let days_per = match unit {
        'd' => 1,
        'w' => 7,
        'y' => 365,
        _ => return Err(bad()),
    };
    let n: i64 = chars.as_str().parse().map_err(|_| bad())?;
    if !(1..=100_000).contains(&n) {
        return Err(bad());
    }
    Ok(n * days_per * 86_400)
}

/// Validates `prune` arguments.
///
/// Errors: [`Error::Usage`] for a SOURCE that is not a server, a malformed ARCHIVE or
/// `--older-than`, `--folder`/`--exclude` with a POP3 source, or bad login options.
pub fn prune_plan(a: &crate::cli::PruneArgs) -> Result<PrunePlan> {
    let spec = match endpoint::parse(&a.source, home().as_deref())? {
        Endpoint::Server(s) => s,
        _ => {
            return Err(Error::Usage(format!(
                "`{}` is not a server: SOURCE is imaps://USER@HOST, imap://USER@HOST, pop3s://USER@HOST or pop3://USER@HOST",
                a.source
            )))
        }
    };
    let filtered = !a.folder.is_empty() || !a.exclude.is_empty();
    if spec.protocol == Protocol::Pop3 && filtered {
        return Err(Error::Usage(
            "--folder and --exclude are for IMAP sources (POP3 has only INBOX)".into(),
        ));
    }
    Ok(PrunePlan {
        older_than_secs: parse_age("--older-than", &a.older_than)?,
        older_than: a.older_than.trim().to_string(),
        source: server_plan(spec, &a.server)?,
        archive: archive_spec(&a.archive)?,
        filter: FolderFilter::new(&a.folder, &a.exclude)?,
        filtered,
        act: a.yes && !a.dry_run,
        output: output(&a.output),
    })
}

/// True when a backup's ARCHIVE is a zip (`zip:PATH`).
pub fn is_zip_archive(archive: &str) -> bool {
    archive
        .split_once(':')
        .is_some_and(|(k, _)| k.eq_ignore_ascii_case("zip"))
}

/// Validates `backup SOURCE zip:PATH.zip`.
///
/// Errors: [`Error::Usage`] for a SOURCE that is not a server, an empty path, and the options
/// that need an incremental archive (`--delete-after-backup`, `--keep-days`, `--mirror`,
/// `--dedup`).
pub fn zip_backup_plan(a: &BackupArgs) -> Result<ZipBackupPlan> {
    let spec = match endpoint::parse(&a.source, home().as_deref())? {
        Endpoint::Server(s) => s,
        _ => {
            return Err(Error::Usage(format!(
                "`{}` is not a server: SOURCE is pop3s://USER@HOST, pop3://USER@HOST, imaps://USER@HOST or imap://USER@HOST",
                a.source
            )))
        }
    };
    if a.delete_after_backup || a.keep_days.is_some() || a.mirror || a.dedup {
        return Err(Error::Usage(
            "--delete-after-backup, --keep-days, --mirror and --dedup need a maildir: or mbox: archive; a zip is a snapshot (to free server space, back up into maildir: and use `mailkeep prune`)".into(),
        ));
    }
    if spec.protocol == Protocol::Pop3 && (!a.folder.is_empty() || !a.exclude.is_empty()) {
        return Err(Error::Usage(
            "--folder and --exclude are for IMAP sources (POP3 has only INBOX)".into(),
        ));
    }
    let zip = match crate::engine::convert::parse_target(&a.archive, home().as_deref())? {
        crate::engine::convert::ConvertTarget::Zip(p) => p,
        _ => {
            return Err(Error::Usage(format!(
                "`{}`: write the zip as zip:PATH.zip",
                a.archive
            )))
        }
    };
    Ok(ZipBackupPlan {
        source: server_plan(spec, &a.server)?,
        zip,
        filter: FolderFilter::new(&a.folder, &a.exclude)?,
        store: a.store,
        output: output(&a.output),
    })
}

#[cfg(test)]
mod prune_tests {
    use super::*;

    #[test]
    fn ages() {
        let day = 86_400;
        let cases: &[(&str, Option<i64>)] = &[
            ("365d", Some(365 * day)),
            ("1d", Some(day)),
            ("8w", Some(56 * day)),
            ("2y", Some(730 * day)),
            ("2Y", Some(730 * day)),
            (" 30d ", Some(30 * day)),
            ("0d", None),
            ("d", None),
            ("", None),
            ("12", None),
            ("12h", None),
            ("-3d", None),
            ("1.5y", None),
            ("365 d", None),
            ("5é", None),
            ("+5d", Some(5 * day)),
        ];
        for (text, want) in cases {
            assert_eq!(parse_age("--older-than", text).ok(), *want, "{text:?}");
        }
        let e = parse_age("--older-than", "12h").unwrap_err().to_string();
        assert!(e.starts_with("--older-than `12h`: "), "{e}");
    }
}
