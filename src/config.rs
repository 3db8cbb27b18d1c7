//! From the command line to a validated plan: endpoints parsed, options checked, before any
//! I/O happens. Nothing below this module sees a raw flag.

use std::path::PathBuf;
use std::time::Duration;

use crate::cli::{AuthArg, BackupArgs, OutputArgs, RestoreArgs, ServerArgs};
use crate::credentials::PasswordSource;
use crate::endpoint::{self, ArchiveSpec, Endpoint, Protocol, ServerSpec};
use crate::engine::plan::FolderFilter;
use crate::error::{Error, Result};

/// How to talk to a server, independent of protocol.
#[derive(Debug, Clone)]
pub struct ServerPlan {
    pub spec: ServerSpec,
    pub password: PasswordSource,
    /// `--oauth2-token-command`: the secret is an OAuth2 access token from this command.
    pub oauth2_token: Option<PasswordSource>,
    /// Extra trusted CA certificate (PEM).
    pub tls_ca: Option<PathBuf>,
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
    pub json: bool,
    /// `quota --warn-at`, percent.
    pub warn_at: u8,
}

/// Parses a server endpoint that must be IMAP (for `list` and `quota`).
pub fn imap_query(
    source: &str,
    server: &ServerArgs,
    json: bool,
    warn_at: u8,
) -> Result<ServerQuery> {
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
        json,
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
        },
        output: output(&a.output),
    })
}

/// A validated `restore`.
#[derive(Debug, Clone)]
pub struct RestorePlan {
    /// The archive spec as given (`maildir:PATH`, ...), opened by [`crate::source::open`].
    pub archive: String,
    pub target: ServerPlan,
    /// `--into` and `--map`.
    pub rules: crate::engine::restore_plan::MappingRules,
    pub dry_run: bool,
    /// The restore state file (uploads ledger): `$XDG_STATE_HOME/mailkeep/uploads.sqlite`,
    /// default `~/.local/state/mailkeep/uploads.sqlite`.
    pub state_file: PathBuf,
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
        _ => home()
            .ok_or_else(|| {
                Error::Usage(
                    "neither XDG_STATE_HOME nor HOME is set: mailkeep needs a place for the restore state (uploads.sqlite)".into(),
                )
            })?
            .join(".local/state"),
    };
    Ok(dir.join("mailkeep").join("uploads.sqlite"))
}

/// Validates `restore` arguments.
pub fn restore_plan(a: &RestoreArgs) -> Result<RestorePlan> {
    use crate::engine::restore_plan::{levels_of, MappingRules};
    use crate::message::MailboxName;
    let spec = match endpoint::parse(&a.target, home().as_deref()) {
        Ok(Endpoint::Server(s)) if s.protocol == Protocol::Imap => s,
        _ => {
            return Err(Error::Usage(format!(
                "`{}` is not an IMAP account: TARGET is imaps://USER@HOST or imap://USER@HOST",
                a.target
            )))
        }
    };
    let into = match &a.into {
        None => Vec::new(),
        Some(p) => levels_of(p.trim_matches('/')).ok_or_else(|| {
            Error::Usage(format!(
                "--into `{p}`: write a folder name, levels separated by `/`"
            ))
        })?,
    };
    let mut maps = Vec::new();
    for m in &a.map {
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
    // Checked before any I/O, so a typo is a usage error (exit 2), not a missing archive later.
    let kind = a
        .archive
        .split_once(':')
        .map(|(k, _)| k.to_ascii_lowercase());
    if !kind
        .as_deref()
        .is_some_and(|k| ["maildir", "mbox", "eml", "thunderbird"].contains(&k))
    {
        return Err(Error::Usage(format!(
            "`{}`: write the archive as maildir:PATH, mbox:PATH, eml:DIR or thunderbird:PATH",
            a.archive
        )));
    }
    Ok(RestorePlan {
        archive: a.archive.clone(),
        target: server_plan(spec, &a.server)?,
        rules: MappingRules { into, maps },
        dry_run: a.dry_run,
        state_file: restore_state_file()?,
        output: output(&a.output),
    })
}
