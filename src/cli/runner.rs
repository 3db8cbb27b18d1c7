//! `mailkeep run [JOB...]` (issue 6): the jobs of a config file ([`crate::cli::runconf`]) run one
//! after another, unattended, as cron or a systemd timer starts them.
//!
//! - Every job is validated before any runs (a config error is exit 2, nothing runs). A job
//!   that fails does not stop the others; the run's exit code is the worst job's, in the
//!   order of [`severity`].
//! - Each archive is locked for its job by the archive lock ([`crate::archive::lock`]): a job that
//!   finds it held ends at once with exit 5 and changes nothing; a lock left by a killed run is
//!   a released `flock`, so the next run simply takes it.
//! - A job that ends with a temporary failure (exit 4 without a TLS trust problem: connection
//!   refused, reset or dropped, timeout, `BYE`, `[UNAVAILABLE]`, `[SYS/TEMP]`, throttling) is
//!   run again, up to `retries` times, after 1, 4 and then 15 times `retry_delay` (default 2 s,
//!   8 s, 30 s), or after the wait the server suggested (`Suggested Backoff Time`) when it is
//!   longer; no wait is longer than 10 minutes. The error line of a job that gave up says
//!   after how many attempts. Which faults are retried, and how, is [`next_step`] over the
//!   class [`crate::core::fault::classify_line`] finds in the error line: credentials refused and
//!   permanent refusals never; a POP3 `[LOGIN-DELAY]` window is waited out when it fits in the
//!   job's [`retry_budget`], else the job ends "try later"; after a used-up bandwidth
//!   allowance (`BYE [OVERQUOTA]`) or a full target (`NO [OVERQUOTA]`) the job ends "try later"
//!   and no later job of the run logs in to that account.
//! - A job that would delete server mail on the strength of an archive (a prune, a backup with
//!   `delete`, a migration `--via` with `delete_after_migrate`) whose backup failed, was
//!   partial or ended "try later" earlier in the run deletes nothing: a prune is skipped, the
//!   others run without deleting (docs/run.md, "What `mailkeep run` does"). Backups and migrations are incremental, so a rerun goes on where the failed one
//!   stopped; the job's report has the final attempt's report, the earlier attempts and the
//!   counts summed over all attempts (`totals`).
//! - Output: one summary per job on stdout (`--quiet`: none), errors on stderr (always), one
//!   JSON object per job with `--json`, and with `--log-file` one line per event, never a
//!   secret.
//!
//! Test switch: `MAILKEEP_TEST_RETRY_BASE_MS=N` replaces `retry_delay` with N milliseconds.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::ValueEnum;

use crate::cli::config::{self, BackupPlan, MigratePlan, Output, PrunePlan};
use crate::cli::runconf::{self, Job, JobArgs, RunConfig};
use crate::cli::{RunArgs, ServerArgs, VerifyArgs};
use crate::core::error::{self, Error, Exit, Result};
use crate::core::fault::{self, FaultClass, Retry};
use crate::engine;

/// The longest wait between two attempts, whether `retry_delay` or a server's suggested
/// backoff asks for more: with at most [`runconf::MAX_RETRIES`] retries, a job waits at most
/// 100 minutes in all.
pub const MAX_SUGGESTED_WAIT: Duration = Duration::from_secs(600);

/// How bad an outcome is, for the exit code of a run of several jobs (the worst job's):
/// ok < locked (another run is doing the job) < partial < network < protocol < incomplete <
/// auth < usage < archive < damaged. Failures a person must fix rank above those that a
/// later run may clear, and anything about the archive's safety ranks highest. Pure.
pub fn severity(e: Exit) -> u8 {
    match e {
        Exit::Ok => 0,
        Exit::Locked => 1,
        Exit::Partial => 2,
        Exit::Network => 3,
        Exit::Protocol => 4,
        Exit::Incomplete => 5,
        Exit::Auth => 6,
        Exit::Usage => 7,
        Exit::Archive => 8,
        Exit::Damaged => 9,
    }
}

/// The worse of two outcomes (see [`severity`]).
pub fn worst(a: Exit, b: Exit) -> Exit {
    if severity(b) > severity(a) {
        b
    } else {
        a
    }
}

/// Whether an attempt that ended with `exit` and `error` may succeed when run again: a network
/// failure (exit 4), except a refused plaintext login and a certificate that is not trusted,
/// which a retry cannot change. Pure.
pub fn temporary(exit: Exit, error: Option<&str>) -> bool {
    if exit != Exit::Network {
        return false;
    }
    let e = error.unwrap_or("").to_ascii_lowercase();
    !(e.contains("refusing to log in without tls")
        || (e.contains("tls handshake") && e.contains("certificate"))
        || e.contains("cannot read ca file"))
}

/// The wait a server asked for in an error's text (`Suggested Backoff Time: 4000
/// milliseconds`, Office 365), if any. Pure.
pub fn suggested_wait(error: Option<&str>) -> Option<Duration> {
    crate::protocol::imap::ImapError::No {
        command: String::new(),
        text: error?.to_string(),
    }
    .suggested_backoff()
}

/// The wait before retry number `retry` (1-based): `base`, then 4 and 15 times `base`, or the
/// server's suggestion when longer; at most [`MAX_SUGGESTED_WAIT`]. Pure.
pub fn wait_before(retry: u32, base: Duration, suggested: Option<Duration>) -> Duration {
    let factor = match retry {
        0 | 1 => 1,
        2 => 4,
        _ => 15,
    };
    let d = (base * factor).min(MAX_SUGGESTED_WAIT);
    match suggested {
        Some(s) => d.max(s.min(MAX_SUGGESTED_WAIT)),
        None => d,
    }
}

/// What the scheduler does after an attempt that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Run the job again after this wait.
    Retry(Duration),
    /// End the job "try later": the server asked not to be bothered in this run (or not
    /// before a window longer than the job's retry budget). The next run goes on from here.
    TryLater,
    /// End the job with its error: retrying cannot help (credentials, a permanent refusal),
    /// or the retries are used up.
    Stop,
}

/// The time a job's remaining retries would wait anyway: [`wait_before`] summed over retries
/// `attempt..=retries`. A server's login window no longer than this is waited out. Pure.
pub fn retry_budget(attempt: u32, retries: u32, base: Duration) -> Duration {
    (attempt.max(1)..=retries)
        .map(|r| wait_before(r, base, None))
        .sum()
}

/// The scheduler's decision after attempt number `attempt` (1-based) of a job allowed
/// `retries` retries failed with a fault that may be retried as `retry`, the server having
/// asked for `retry_after` (docs/run.md, "What `mailkeep run` does"). Pure:
///
/// - [`Retry::Never`] (credentials refused, a permanent refusal): stop.
/// - [`Retry::NextRun`] (bandwidth or quota used up): try later; no new login in this run.
/// - [`Retry::Soon`] (connection lost, throttled, unavailable, in use): retry after
///   [`wait_before`] while retries remain, else stop.
/// - [`Retry::AfterWindow`] (POP3 `[LOGIN-DELAY]`): wait the window (default
///   [`fault::DEFAULT_LOGIN_DELAY`]) and retry when a retry remains and the window is no
///   longer than [`retry_budget`] and [`MAX_SUGGESTED_WAIT`]; else try later.
pub fn next_step(
    retry: Retry,
    retry_after: Option<Duration>,
    attempt: u32,
    retries: u32,
    base: Duration,
) -> Next {
    match retry {
        Retry::Never => Next::Stop,
        Retry::NextRun => Next::TryLater,
        Retry::Soon if attempt <= retries => Next::Retry(wait_before(attempt, base, retry_after)),
        Retry::Soon => Next::Stop,
        Retry::AfterWindow => {
            let window = retry_after.unwrap_or(fault::DEFAULT_LOGIN_DELAY);
            if attempt <= retries
                && window <= retry_budget(attempt, retries, base)
                && window <= MAX_SUGGESTED_WAIT
            {
                Next::Retry(window)
            } else {
                Next::TryLater
            }
        }
    }
}

/// How an attempt that ended with `exit` and `error` may be retried, and the wait the server
/// asked for: the server's words in the error line ([`fault::classify_line`]: LOGIN-DELAY,
/// bandwidth or quota used up, throttling), else [`temporary`]. Pure.
pub fn retry_of(exit: Exit, error: Option<&str>) -> (Retry, Option<Duration>, Option<FaultClass>) {
    if exit == Exit::Ok {
        return (Retry::Never, None, None);
    }
    if exit != Exit::Auth {
        if let Some(r) = error.and_then(fault::classify_line) {
            return (r.class.retry(), r.retry_after, Some(r.class));
        }
    }
    if temporary(exit, error) {
        (Retry::Soon, suggested_wait(error), None)
    } else {
        (Retry::Never, None, None)
    }
}

/// A job ready to run.
enum Plan {
    Backup(Box<BackupPlan>),
    Migrate(Box<MigratePlan>),
    Prune(Box<PrunePlan>),
    /// Run as `mailkeep verify ... --json` in a child process, whose report is read back.
    Verify(Box<VerifyArgs>),
}

/// One attempt's outcome.
struct Attempt {
    exit: Exit,
    error: Option<String>,
    /// Counts that add up over attempts (fetched, uploaded, deleted, ...).
    counts: BTreeMap<&'static str, u64>,
    /// The command's own report.
    report: serde_json::Value,
    /// Summary lines for stdout.
    summary: Vec<String>,
    warnings: Vec<String>,
    /// `MAILBOX MESSAGE: error` lines.
    failures: Vec<String>,
}

impl Attempt {
    fn failed(e: &Error) -> Attempt {
        Attempt {
            exit: e.exit(),
            error: Some(e.to_string()),
            counts: BTreeMap::new(),
            report: serde_json::Value::Null,
            summary: Vec::new(),
            warnings: Vec::new(),
            failures: Vec::new(),
        }
    }
}

/// An earlier attempt of a job that ended in a temporary failure.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RetriedAttempt {
    pub attempt: u32,
    pub exit: Exit,
    pub exit_code: u8,
    pub error: Option<String>,
    /// What it did before it failed (kept: the next attempt goes on from there).
    pub counts: BTreeMap<&'static str, u64>,
    /// The wait before the next attempt, seconds.
    pub wait_secs: f64,
}

/// What one job did: the `--json` line.
#[derive(Debug, Clone, serde::Serialize)]
pub struct JobReport {
    /// `run`.
    pub command: &'static str,
    pub job: String,
    /// `backup`, `migrate`, `prune` or `verify`.
    pub kind: &'static str,
    /// Attempts made (1 + retries used).
    pub attempts: u32,
    /// The attempts before the last, each with its error and counts.
    pub retried: Vec<RetriedAttempt>,
    /// Counts summed over every attempt: e.g. a backup's `fetched` is every message this job
    /// stored, whichever attempt stored it.
    pub totals: BTreeMap<&'static str, u64>,
    /// The last attempt's report, as the command prints it with `--json`.
    pub report: serde_json::Value,
    /// The error that ended the last attempt.
    pub error: Option<String>,
    /// `ok`, `partial` (some messages failed), `failed`, `try-later` (the server asked not to
    /// be bothered in this run: LOGIN-DELAY, bandwidth or quota used up; the next run goes on
    /// from here) or `skipped` (not started: see `error`).
    pub status: &'static str,
    pub duration_secs: f64,
    pub exit: Exit,
    pub exit_code: u8,
}

/// Runs `mailkeep run`; prints reports and errors; returns the worst job's exit status.
pub fn run(args: &RunArgs) -> Exit {
    let out = Output {
        quiet: args.quiet,
        json: args.json,
    };
    let loaded = args
        .config
        .clone()
        .map(Ok)
        .unwrap_or_else(runconf::default_path)
        .and_then(|p| runconf::load(&p));
    let conf = match loaded {
        Ok(c) => c,
        // A file given with --config: the hint to pass one is no help.
        Err(Error::Usage(m)) if args.config.is_some() => {
            let e = Error::Usage(m.replace("; or pass --config FILE)", ")"));
            return fail(&e, out);
        }
        Err(e) => return fail(&e, out),
    };
    let jobs = match select(&conf, &args.jobs) {
        Ok(j) => j,
        Err(e) => return fail(&e, out),
    };
    let mut plans = Vec::new();
    for job in &jobs {
        match plan(&conf, job) {
            Ok(p) => plans.push(Ok(p)),
            Err(e @ Error::Usage(_)) => return fail(&e, out),
            // Not a mistake in the file (e.g. a damaged archive): that job fails, others run.
            Err(e) => plans.push(Err(e)),
        }
    }
    if args.check {
        for job in &jobs {
            let dry = matches!(&job.args, JobArgs::Prune(p) if !p.yes || p.dry_run);
            if out.json {
                let mut line = serde_json::json!({
                    "command": "run",
                    "check": true,
                    "job": job.name,
                    "kind": job.args.kind(),
                    "config": conf.path.display().to_string(),
                    "line": job.line,
                    "exit": Exit::Ok,
                    "exit_code": 0,
                });
                if let JobArgs::Prune(_) = &job.args {
                    line["dry_run"] = dry.into();
                }
                println!("{line}");
            } else if !out.quiet {
                println!(
                    "{}: {} job, line {} of {}: ok{}",
                    job.name,
                    job.args.kind(),
                    job.line,
                    conf.path.display(),
                    if dry {
                        " (a dry run: it deletes nothing without `yes = true`)"
                    } else {
                        ""
                    }
                );
            }
        }
        return Exit::Ok;
    }
    let log_path = args.log_file.clone().or_else(|| conf.log_file.clone());
    let mut log = match log_path.as_deref().map(Log::open).transpose() {
        Ok(l) => l,
        // The file's `log_file`: named at its line, as every mistake in the file is.
        Err(Error::Usage(m)) if args.log_file.is_none() => {
            let e = Error::Usage(format!(
                "{}:{}: log_file: {m}",
                conf.path.display(),
                conf.log_file_line
            ));
            return fail(&e, out);
        }
        Err(e) => return fail(&e, out),
    };
    let base = std::env::var("MAILKEEP_TEST_RETRY_BASE_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .map(Duration::from_millis)
        .unwrap_or(conf.retry_delay);
    let names: Vec<&str> = jobs.iter().map(|j| j.name.as_str()).collect();
    if let Some(l) = &mut log {
        l.event(
            "-",
            "run-start",
            &[
                ("config", bare_or_quoted(&conf.path.display().to_string())),
                ("jobs", names.join(",")),
            ],
        );
    }
    let mut run_exit = Exit::Ok;
    let mut failed = 0;
    let mut sched = Schedule::default();
    for (job, plan) in jobs.iter().zip(plans) {
        let report = run_job(job, plan, base, out, &mut log, &mut sched);
        if report.exit != Exit::Ok {
            failed += 1;
        }
        run_exit = worst(run_exit, report.exit);
        if out.json {
            let text = serde_json::to_string(&report).expect("a report is plain data");
            let mut stdout = std::io::stdout().lock();
            let written = writeln!(stdout, "{text}").and_then(|()| stdout.flush());
            if let Some(line) = written.err().as_ref().and_then(error::stdout_failure) {
                eprintln!("{}", crate::engine::report::one_line(&line));
            }
        }
    }
    if let Some(l) = &mut log {
        l.event(
            "-",
            "run-end",
            &[
                ("exit", exit_name(run_exit)),
                ("exit_code", run_exit.code().to_string()),
                ("jobs", jobs.len().to_string()),
                ("failed", failed.to_string()),
            ],
        );
    }
    run_exit
}

/// One line on stderr, and with `--json` the short object every command prints for an error
/// before its report.
fn fail(e: &Error, out: Output) -> Exit {
    eprintln!(
        "{}",
        crate::engine::report::one_line(&format!("mailkeep: {e}"))
    );
    if out.json {
        let report = serde_json::json!({
            "command": "run",
            "error": e.to_string(),
            "exit": e.exit(),
            "exit_code": e.exit().code(),
        });
        println!("{report}");
    }
    e.exit()
}

/// The jobs to run: `names` in the order given (each once), or every job in file order.
fn select<'c>(conf: &'c RunConfig, names: &[String]) -> Result<Vec<&'c Job>> {
    if names.is_empty() {
        return Ok(conf.jobs.iter().collect());
    }
    let mut out: Vec<&Job> = Vec::new();
    for n in names {
        let Some(job) = conf.jobs.iter().find(|j| &j.name == n) else {
            let known: Vec<&str> = conf.jobs.iter().map(|j| j.name.as_str()).collect();
            return Err(Error::Usage(format!(
                "{}: no job named `{n}` (jobs: {})",
                conf.path.display(),
                known.join(", ")
            )));
        };
        if !out.iter().any(|j| j.name == job.name) {
            out.push(job);
        }
    }
    Ok(out)
}

/// Validates a job exactly as its command line would be. A usage error names the file, the
/// job's line and the job, with the config file's keys for the command line's options.
fn plan(conf: &RunConfig, job: &Job) -> Result<Plan> {
    let r = match &job.args {
        JobArgs::Backup(a) => config::backup_plan(a).map(|p| Plan::Backup(Box::new(p))),
        JobArgs::Migrate(a) => config::migrate_plan(a).map(|p| Plan::Migrate(Box::new(p))),
        JobArgs::Prune(a) => config::prune_plan(a).map(|p| Plan::Prune(Box::new(p))),
        JobArgs::Verify(a) => config::verify_plan(a).map(|_| {
            Plan::Verify(Box::new(VerifyArgs {
                archive: a.archive.clone(),
                against: a.against.clone(),
                server: a.server.clone(),
                folder: a.folder.clone(),
                exclude: a.exclude.clone(),
                limits: a.limits,
                quiet: a.quiet,
                json: a.json,
            }))
        }),
    };
    r.map_err(|e| match e {
        Error::Usage(m) => {
            // At the key the message is about (`--keep-days`: the job's `keep_days`, `--tls-ca`:
            // its account's `tls_ca`), else at the job's table.
            let (line, key) = match job.key_for(&m) {
                Some(k) => (k.line, k.key.clone()),
                None => (job.line, format!("jobs.{}", job.name)),
            };
            Error::Usage(format!(
                "{}:{line}: {key}: {}",
                conf.path.display(),
                runconf::option_names_as_keys(&m)
            ))
        }
        other => other,
    })
}

/// What earlier jobs of this run left for later ones: accounts not to log in to (until an
/// instant, or for the rest of the run) and archives whose last backup did not finish.
#[derive(Default)]
struct Schedule {
    /// Account (`user@host:port`) -> (no login before this instant, `None`: not in this run;
    /// why).
    holds: BTreeMap<String, (Option<Instant>, String)>,
    /// Archive path -> the job whose backup into it failed, and how it ended.
    unfinished: BTreeMap<PathBuf, String>,
}

/// The server accounts a job logs in to.
fn accounts_of(plan: &Plan) -> Vec<String> {
    match plan {
        Plan::Backup(p) => vec![p.source.spec.account()],
        Plan::Migrate(p) => vec![p.source.spec.account(), p.restore.target.spec.account()],
        Plan::Prune(p) => vec![p.source.spec.account()],
        Plan::Verify(_) => Vec::new(),
    }
}

/// The archive a job writes (a backup, a migration `--via` an archive).
fn archive_written(plan: &Plan) -> Option<PathBuf> {
    match plan {
        Plan::Backup(p) => Some(p.archive.path.clone()),
        Plan::Migrate(p) => p.via.as_ref().map(|a| a.path.clone()),
        _ => None,
    }
}

/// How an archive path is compared between jobs: the same archive however a job spells it
/// (through a symbolic link to a folder above it, with `..` or `.` in it). The path with its
/// links resolved when it exists, else its folder's resolved path and its name, else as given.
fn archive_key(path: &Path) -> PathBuf {
    if let Ok(p) = std::fs::canonicalize(path) {
        return p;
    }
    match (path.parent(), path.file_name()) {
        (Some(dir), Some(name)) => std::fs::canonicalize(dir)
            .map(|d| d.join(name))
            .unwrap_or_else(|_| path.to_path_buf()),
        _ => path.to_path_buf(),
    }
}

/// The archive a job deletes server mail on the strength of: a prune, a backup with
/// `delete`, a migration `--via` an archive with `delete_after_migrate`.
fn archive_deleted_from(plan: &Plan) -> Option<PathBuf> {
    match plan {
        Plan::Prune(p) if p.act => Some(p.archive.path.clone()),
        Plan::Backup(p) if p.delete != config::DeletePolicy::Never => Some(p.archive.path.clone()),
        Plan::Migrate(p) if p.delete_after => p.via.as_ref().map(|a| a.path.clone()),
        _ => None,
    }
}

/// A job that ended before any attempt: `status` `skipped` or `try-later`, with `error`.
fn not_started(job: &Job, status: &'static str, error: String, exit: Exit) -> (JobReport, Attempt) {
    let a = Attempt {
        exit,
        error: Some(error),
        counts: BTreeMap::new(),
        report: serde_json::Value::Null,
        summary: Vec::new(),
        warnings: Vec::new(),
        failures: Vec::new(),
    };
    let r = JobReport {
        command: "run",
        job: job.name.clone(),
        kind: job.args.kind(),
        attempts: 0,
        retried: Vec::new(),
        totals: BTreeMap::new(),
        report: serde_json::Value::Null,
        error: a.error.clone(),
        status,
        duration_secs: 0.0,
        exit,
        exit_code: exit.code(),
    };
    (r, a)
}

/// Before a job starts: the rules of earlier jobs' outcomes (docs/run.md, "What `mailkeep run`
/// does"). A job that deletes from an archive whose backup failed in this run does not
/// delete (a prune is skipped; a backup or migration runs without deleting, with a warning);
/// a job whose account is held waits when the hold ends within its retry budget, else ends
/// "try later" without logging in. `Err` is the job's report when it does not start.
fn before_job(
    job: &Job,
    plan: &mut Plan,
    base: Duration,
    sched: &Schedule,
    warnings: &mut Vec<String>,
) -> std::result::Result<(), Box<(JobReport, Attempt)>> {
    if let Some(path) = archive_deleted_from(plan) {
        if let Some(why) = sched.unfinished.get(&archive_key(&path)) {
            let line = format!(
                "not deleting anything on the strength of {}: {why} earlier in this run",
                path.display()
            );
            match plan {
                Plan::Prune(_) => {
                    return Err(Box::new(not_started(job, "skipped", line, Exit::Partial)));
                }
                Plan::Backup(p) => p.delete = config::DeletePolicy::Never,
                Plan::Migrate(p) => p.delete_after = false,
                Plan::Verify(_) => {}
            }
            warnings.push(line);
        }
    }
    for account in accounts_of(plan) {
        let Some((until, why)) = sched.holds.get(&account) else {
            continue;
        };
        let left = until.map(|t| t.saturating_duration_since(Instant::now()));
        match left {
            Some(d) if d.is_zero() => {}
            Some(d) if d <= retry_budget(1, job.retries, base) => std::thread::sleep(d),
            _ => {
                let when = match left {
                    Some(d) => fault::retry_after_phrase(d),
                    None => "not in this run".to_string(),
                };
                return Err(Box::new(not_started(
                    job,
                    "try-later",
                    format!("no login to {account} ({why}; {when})"),
                    Exit::Network,
                )));
            }
        }
    }
    Ok(())
}

/// The account an error line is about (`alice@host:110: ...`), among `accounts`.
fn account_in<'a>(line: &str, accounts: &'a [String]) -> Option<&'a String> {
    accounts
        .iter()
        .find(|a| line.starts_with(&format!("{a}:")) || line.contains(&format!("failed for {a}:")))
}

/// Runs a job, retrying temporary failures; prints and logs it; returns its report.
fn run_job(
    job: &Job,
    plan: Result<Plan>,
    base: Duration,
    out: Output,
    log: &mut Option<Log>,
    sched: &mut Schedule,
) -> JobReport {
    let started = Instant::now();
    let kind = job.args.kind();
    let name = job.name.as_str();
    if let Some(l) = log {
        l.event(name, "start", &[("kind", kind.to_string())]);
    }
    if let Some(l) = job.args.limits() {
        crate::core::limits::set_max_message_size(l.max_message_size);
    }
    let mut plan = plan;
    let mut early_warnings = Vec::new();
    if let Ok(p) = &mut plan {
        if let Err(ended) = before_job(job, p, base, sched, &mut early_warnings) {
            let (report, last) = *ended;
            // A backup that did not even start leaves its archive as unfinished as a failed
            // one: a later job of the run deletes nothing on its strength.
            if let Some(path) = archive_written(p) {
                sched.unfinished.insert(
                    archive_key(&path),
                    format!("job {name} ended {}", report.status),
                );
            }
            print_job(&report, &last, out);
            if let Some(l) = log {
                l.event(
                    name,
                    "end",
                    &[
                        ("status", report.status.to_string()),
                        ("exit", exit_name(report.exit)),
                        ("exit_code", report.exit_code.to_string()),
                        ("error", quoted(report.error.as_deref().unwrap_or(""))),
                    ],
                );
            }
            return report;
        }
    }
    let accounts = plan.as_ref().map(accounts_of).unwrap_or_default();
    let written = plan.as_ref().ok().and_then(archive_written);
    let mut retried = Vec::new();
    let mut totals: BTreeMap<&'static str, u64> = BTreeMap::new();
    let mut attempt_no = 1;
    let mut try_later = false;
    let last = loop {
        let mut a = match &plan {
            Ok(p) => attempt(p),
            Err(e) => Attempt::failed(e),
        };
        // `--password-env` or `pass --tls-ca FILE` in a message about a job is a key of its
        // file (`password_env`, `tls_ca`).
        a.error = a.error.map(|e| runconf::option_names_as_keys(&e));
        for (k, v) in &a.counts {
            *totals.entry(k).or_default() += v;
        }
        let (retry, retry_after, class) = retry_of(a.exit, a.error.as_deref());
        let wait = match next_step(retry, retry_after, attempt_no, job.retries, base) {
            Next::Retry(w) => w,
            Next::Stop => break a,
            Next::TryLater => {
                try_later = true;
                // No new login to the account the server spoke for, in this run or before
                // its window ends.
                let line = a.error.clone().unwrap_or_default();
                let held: Vec<String> = match account_in(&line, &accounts) {
                    Some(acc) => vec![acc.clone()],
                    None => accounts.clone(),
                };
                let until = match class {
                    Some(FaultClass::LoginDelay) => retry_after.map(|d| Instant::now() + d),
                    _ => None,
                };
                let why = class.map_or("the server said try later", FaultClass::describe);
                for acc in held {
                    sched.holds.insert(acc, (until, why.to_string()));
                }
                break a;
            }
        };
        if !out.quiet && !out.json {
            eprintln!(
                "mailkeep: job {name}: attempt {attempt_no} failed: {}; trying again in {:.1} s",
                a.error.as_deref().unwrap_or("temporary failure"),
                wait.as_secs_f64()
            );
        }
        if let Some(l) = log {
            let mut fields = vec![
                ("attempt", attempt_no.to_string()),
                ("exit", exit_name(a.exit)),
                ("wait_secs", format!("{:.1}", wait.as_secs_f64())),
            ];
            fields.extend(a.counts.iter().map(|(k, v)| (*k, v.to_string())));
            fields.push(("error", quoted(a.error.as_deref().unwrap_or(""))));
            l.event(name, "retry", &fields);
        }
        retried.push(RetriedAttempt {
            attempt: attempt_no,
            exit: a.exit,
            exit_code: a.exit.code(),
            error: a.error.clone(),
            counts: a.counts.clone(),
            wait_secs: wait.as_secs_f64(),
        });
        std::thread::sleep(wait);
        attempt_no += 1;
    };
    let mut last = last;
    last.warnings.splice(0..0, early_warnings);
    // A POP3 server that allows one login every n seconds (CAPA `LOGIN-DELAY n`): no job of
    // this run logs in to it again before that (counted from the end of the job: later than
    // the login, so never inside the window).
    let delay = [
        &last.report["login_delay_secs"],
        &last.report["backup"]["login_delay_secs"],
    ]
    .iter()
    .find_map(|v| v.as_u64());
    if let (Some(secs), Ok(p)) = (delay, &plan) {
        if let Some(source) = accounts_of(p).first() {
            let until = Instant::now() + Duration::from_secs(secs);
            let held = sched.holds.get(source).is_some_and(|(u, _)| u.is_none());
            if !held {
                sched.holds.insert(
                    source.clone(),
                    (Some(until), FaultClass::LoginDelay.describe().to_string()),
                );
            }
        }
    }
    let status = match (last.exit, try_later) {
        (_, true) => "try-later",
        (Exit::Ok, _) => "ok",
        (Exit::Partial, _) => "partial",
        _ => "failed",
    };
    if let Some(path) = written {
        if status != "ok" {
            sched
                .unfinished
                .insert(archive_key(&path), format!("job {name} ended {status}"));
        }
    }
    let report = JobReport {
        command: "run",
        job: name.to_string(),
        kind,
        attempts: attempt_no,
        retried,
        totals,
        report: last.report.clone(),
        error: last.error.clone(),
        status,
        duration_secs: started.elapsed().as_secs_f64(),
        exit: last.exit,
        exit_code: last.exit.code(),
    };
    print_job(&report, &last, out);
    if let Some(l) = log {
        let mut fields = vec![
            ("attempts", report.attempts.to_string()),
            ("exit", exit_name(report.exit)),
            ("exit_code", report.exit_code.to_string()),
        ];
        fields.extend(report.totals.iter().map(|(k, v)| (*k, v.to_string())));
        fields.push(("duration_secs", format!("{:.1}", report.duration_secs)));
        fields.push(("status", report.status.to_string()));
        if let Some(e) = &report.error {
            fields.push(("error", quoted(e)));
        }
        l.event(name, "end", &fields);
    }
    report
}

/// A job's output: problems on stderr (always), the summary on stdout (not with `--quiet` or
/// `--json`; the JSON line is printed by the caller).
fn print_job(report: &JobReport, last: &Attempt, out: Output) {
    let name = &report.job;
    let mut stderr = std::io::stderr();
    if !out.quiet {
        for w in &last.warnings {
            let _ = writeln!(
                stderr,
                "{}",
                crate::engine::report::one_line(&format!("mailkeep: job {name}: warning: {w}"))
            );
        }
    }
    for f in &last.failures {
        let _ = writeln!(
            stderr,
            "{}",
            crate::engine::report::one_line(&format!("mailkeep: job {name}: {f}"))
        );
    }
    if let Some(e) = &last.error {
        // From cron only this line is seen: say that it was not a single try.
        let tries = if report.attempts > 1 && report.status != "try-later" {
            format!(
                " (gave up after {} attempts in {:.0} s)",
                report.attempts, report.duration_secs
            )
        } else {
            String::new()
        };
        let _ = writeln!(
            stderr,
            "{}",
            crate::engine::report::one_line(&format!("mailkeep: job {name}: {e}{tries}"))
        );
    }
    if out.quiet || out.json {
        return;
    }
    let mut stdout = std::io::stdout().lock();
    let mut text = String::new();
    for line in &last.summary {
        if line.starts_with(' ') {
            text.push_str(&format!("{line}\n"));
        } else {
            text.push_str(&format!("{name}: {line}\n"));
        }
    }
    match report.status {
        "try-later" => text.push_str(&format!(
            "{name}: try later: the server asked not to be bothered in this run; the next run goes on from here\n"
        )),
        "skipped" => text.push_str(&format!("{name}: skipped\n")),
        _ => {}
    }
    if report.attempts > 1 && report.status != "try-later" {
        text.push_str(&format!(
            "{name}: {} after {} attempts\n",
            if report.exit == Exit::Ok {
                "done"
            } else {
                "gave up"
            },
            report.attempts
        ));
    }
    let written = stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush());
    if let Some(line) = written.err().as_ref().and_then(error::stdout_failure) {
        let _ = writeln!(stderr, "{}", crate::engine::report::one_line(&line));
    }
}

/// `ok`, `network`, ...: the JSON name of an exit.
fn exit_name(e: Exit) -> String {
    serde_json::to_value(e)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// A value for a log line: in double quotes, with `"`, `\` and control characters escaped.
fn quoted(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_default()
}

/// A value for a log line as it is, or [`quoted`] when it has a space, a quote, a backslash,
/// an `=` or a control character, so that `key=value` pairs always split on spaces.
fn bare_or_quoted(s: &str) -> String {
    if s.is_empty()
        || s.chars()
            .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '"' | '\\' | '='))
    {
        quoted(s)
    } else {
        s.to_string()
    }
}

/// `MAILBOX MESSAGE: error` lines, a run of identical refusals in one line with a count
/// ([`crate::engine::report::failure_lines`]).
fn failures_of(f: &[crate::engine::report::Failure]) -> Vec<String> {
    crate::engine::report::failure_lines(f)
}

/// Runs one attempt of a job.
fn attempt(plan: &Plan) -> Attempt {
    let value = |r: &dyn erased::Report| r.json();
    match plan {
        Plan::Backup(p) => {
            let mut progress = crate::engine::progress::Progress::new(false);
            let r = engine::backup(p, &mut progress);
            let mut summary = Vec::new();
            if r.error.is_none() || r.fetched > 0 {
                summary.push(r.to_string());
            }
            Attempt {
                exit: r.exit,
                error: r.error.clone(),
                counts: BTreeMap::from([
                    ("fetched", r.fetched),
                    ("fetched_bytes", r.fetched_bytes),
                    ("recovered", r.recovered),
                    ("deleted", r.deleted),
                ]),
                report: value(&r),
                summary,
                warnings: r.warnings.clone(),
                failures: failures_of(&r.failures),
            }
        }
        Plan::Migrate(p) => {
            let r = engine::migrate::run(p);
            let mut summary = Vec::new();
            let mut warnings = Vec::new();
            let mut failures = Vec::new();
            let mut error = None;
            let mut counts = BTreeMap::from([
                ("uploaded", r.upload.uploaded),
                ("uploaded_bytes", r.upload.uploaded_bytes),
                ("deleted_at_source", r.deleted_at_source),
            ]);
            if let Some(b) = &r.backup {
                counts.insert("fetched", b.fetched);
                counts.insert("fetched_bytes", b.fetched_bytes);
                warnings.extend(b.warnings.iter().cloned());
                failures.extend(failures_of(&b.failures));
                error = b.error.clone();
                if b.error.is_none() || b.fetched > 0 {
                    summary.push(b.to_string());
                }
            }
            if error.is_none() {
                warnings.extend(r.upload.warnings.iter().cloned());
                failures.extend(failures_of(&r.upload.failures));
                error = r.upload.error.clone();
                if r.upload.error.is_none() || r.upload.uploaded > 0 || r.upload.dry_run {
                    summary.push(r.upload.to_string());
                }
            }
            if r.deleted_at_source > 0 {
                summary.push(format!(
                    "deleted {} message(s) from {} that {} holds",
                    r.deleted_at_source, r.source, r.target
                ));
            }
            if let Some(n) = &r.deletion_note {
                if error.is_none() && r.exit != Exit::Ok && r.exit != Exit::Partial {
                    error = Some(n.clone());
                } else {
                    warnings.push(n.clone());
                }
            }
            Attempt {
                exit: r.exit,
                error,
                counts,
                report: value(&r),
                summary,
                warnings,
                failures,
            }
        }
        Plan::Prune(p) => {
            let r = engine::prune::prune(p);
            let mut summary: Vec<String> = r.mailbox_lines().lines().map(String::from).collect();
            if r.error.is_none() || !r.mailboxes.is_empty() {
                // A job has no command line to add `--yes` to: its key is `yes`.
                summary.push(
                    r.to_string()
                        .replace("run again with --yes", "set `yes = true` in this job"),
                );
            }
            Attempt {
                exit: r.exit,
                error: r.error.clone(),
                counts: BTreeMap::from([("deleted", r.deleted), ("freed_bytes", r.freed_bytes)]),
                report: value(&r),
                summary,
                warnings: r.warnings.clone(),
                failures: failures_of(&r.failures),
            }
        }
        Plan::Verify(a) => verify(a),
    }
}

/// Serialising the different reports through one signature.
mod erased {
    pub trait Report {
        fn json(&self) -> serde_json::Value;
    }
    impl<T: serde::Serialize> Report for T {
        fn json(&self) -> serde_json::Value {
            serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
        }
    }
}

/// The command-line options that give these login options (never a secret: names of
/// variables, commands and files).
fn server_flags(s: &ServerArgs) -> Vec<String> {
    let mut v = Vec::new();
    let mut opt = |k: &str, val: Option<String>| {
        if let Some(val) = val {
            v.push(format!("--{k}"));
            v.push(val);
        }
    };
    opt("password-env", s.password_env.clone());
    opt("password-command", s.password_command.clone());
    opt(
        "password-file",
        s.password_file.as_ref().map(|p| p.display().to_string()),
    );
    opt("tls-ca", s.tls_ca.as_ref().map(|p| p.display().to_string()));
    opt(
        "tls-fingerprint",
        s.tls_fingerprint.as_ref().map(|f| f.to_string()),
    );
    opt("oauth2-token-command", s.oauth2_token_command.clone());
    opt(
        "auth",
        s.auth.to_possible_value().map(|p| p.get_name().to_string()),
    );
    opt("connect-timeout", Some(s.connect_timeout.to_string()));
    opt("timeout", Some(s.timeout.to_string()));
    if s.allow_plaintext {
        v.push("--allow-plaintext".into());
    }
    v
}

fn exit_of_code(code: i32) -> Exit {
    [
        Exit::Ok,
        Exit::Partial,
        Exit::Usage,
        Exit::Auth,
        Exit::Network,
        Exit::Locked,
        Exit::Archive,
        Exit::Protocol,
        Exit::Incomplete,
        Exit::Damaged,
    ]
    .into_iter()
    .find(|e| i32::from(e.code()) == code)
    .unwrap_or(Exit::Archive)
}

/// A verify job: `mailkeep verify ... --json` in a child process (its command prints its own
/// report; this reads it back as data).
fn verify(a: &VerifyArgs) -> Attempt {
    let exe = match std::env::current_exe() {
        Ok(e) => e,
        Err(e) => {
            return Attempt::failed(&Error::Usage(format!(
                "cannot find the mailkeep program to run verify: {e}"
            )))
        }
    };
    let mut cmd = std::process::Command::new(exe);
    cmd.arg("verify").arg(&a.archive).arg("--json");
    if let Some(against) = &a.against {
        cmd.arg("--against")
            .arg(against)
            .args(server_flags(&a.server));
    }
    for f in &a.folder {
        cmd.arg("--folder").arg(f);
    }
    for x in &a.exclude {
        cmd.arg("--exclude").arg(x);
    }
    cmd.arg("--max-message-size")
        .arg(a.limits.max_message_size.to_string());
    cmd.stdin(std::process::Stdio::null());
    let output = match cmd.output() {
        Ok(o) => o,
        Err(e) => {
            return Attempt::failed(&Error::Usage(format!("cannot run verify: {e}")));
        }
    };
    let exit = output.status.code().map_or(Exit::Archive, exit_of_code);
    let report: serde_json::Value = String::from_utf8_lossy(&output.stdout)
        .lines()
        .next()
        .and_then(|l| serde_json::from_str(l).ok())
        .unwrap_or(serde_json::Value::Null);
    let error = report["error"].as_str().map(str::to_string).or_else(|| {
        (exit != Exit::Ok && report.is_null()).then(|| {
            String::from_utf8_lossy(&output.stderr)
                .lines()
                .last()
                .unwrap_or("verify failed")
                .trim_start_matches("mailkeep: ")
                .to_string()
        })
    });
    let failures: Vec<String> = report["problems"]
        .as_array()
        .map(|ps| {
            ps.iter()
                .map(|p| {
                    let place = p["path"].as_str().or(p["mailbox"].as_str()).unwrap_or("");
                    format!(
                        "{}: {place}: {}",
                        p["class"].as_str().unwrap_or("problem"),
                        p["detail"].as_str().unwrap_or("")
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let n = |k: &str| report[k].as_u64().unwrap_or(0);
    let summary = if report.is_null() {
        Vec::new()
    } else {
        vec![format!(
            "verify {}: {} recorded, {} intact, {} problem(s) (exit {})",
            report["archive"].as_str().unwrap_or(&a.archive),
            n("records"),
            n("intact"),
            failures.len(),
            exit.code()
        )]
    };
    Attempt {
        exit,
        error,
        counts: BTreeMap::new(),
        report,
        summary,
        warnings: Vec::new(),
        failures,
    }
}

/// The `--log-file`: one line per event, appended.
struct Log {
    file: File,
    path: PathBuf,
    broken: bool,
}

impl Log {
    /// Opens (creating it 0600, and its folder 0700) the log file for appending.
    ///
    /// Errors: [`Error::Usage`] naming the file when it cannot be opened.
    fn open(path: &Path) -> Result<Log> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            if !dir.is_dir() {
                std::fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(dir)
                    .map_err(|e| {
                        Error::Usage(format!(
                            "log file {}: cannot create its folder: {}",
                            path.display(),
                            crate::protocol::net::io_reason(&e)
                        ))
                    })?;
            }
        }
        let file = OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o600)
            .open(path)
            .map_err(|e| {
                Error::Usage(format!(
                    "log file {}: {}",
                    path.display(),
                    crate::protocol::net::io_reason(&e)
                ))
            })?;
        Ok(Log {
            file,
            path: path.to_path_buf(),
            broken: false,
        })
    }

    /// Appends `<RFC 3339 time> job=<job> event=<event> key=value...`. A write error is
    /// reported once on stderr; the run goes on.
    fn event(&mut self, job: &str, event: &str, fields: &[(&str, String)]) {
        let now = chrono::Local::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, false);
        let mut line = format!("{now} job={job} event={event}");
        for (k, v) in fields {
            line.push_str(&format!(" {k}={v}"));
        }
        line.push('\n');
        if let Err(e) = self.file.write_all(line.as_bytes()) {
            if !self.broken {
                self.broken = true;
                eprintln!(
                    "mailkeep: log file {}: {}",
                    self.path.display(),
                    crate::protocol::net::io_reason(&e)
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_worst_job_decides_the_exit_code() {
        let order = [
            Exit::Ok,
            Exit::Locked,
            Exit::Partial,
            Exit::Network,
            Exit::Protocol,
            Exit::Incomplete,
            Exit::Auth,
            Exit::Usage,
            Exit::Archive,
            Exit::Damaged,
        ];
        for (i, a) in order.iter().enumerate() {
            for (j, b) in order.iter().enumerate() {
                assert_eq!(worst(*a, *b), order[i.max(j)], "{a:?} {b:?}");
            }
        }
        let run = [Exit::Ok, Exit::Auth, Exit::Ok, Exit::Locked]
            .into_iter()
            .fold(Exit::Ok, worst);
        assert_eq!(run, Exit::Auth);
    }

    #[test]
    fn which_failures_are_retried() {
        let cases = [
            (Exit::Network, Some("a@h:993: connection reset by peer"), true),
            (Exit::Network, Some("a@h:993: the server closed the session: BYE"), true),
            (Exit::Network, None, true),
            (
                Exit::Network,
                Some("a@h:993: TLS handshake with h failed: certificate verify failed (self-signed certificate; pass --tls-ca)"),
                false,
            ),
            (
                Exit::Network,
                Some("a@h:143: refusing to log in without TLS: no STARTTLS"),
                false,
            ),
            (Exit::Auth, Some("authentication failed for a@h"), false),
            (Exit::Locked, Some("archive /a is locked"), false),
            (Exit::Partial, None, false),
            (Exit::Protocol, Some("server protocol error"), false),
            (Exit::Ok, None, false),
        ];
        for (exit, error, want) in cases {
            assert_eq!(temporary(exit, error), want, "{exit:?} {error:?}");
        }
    }

    #[test]
    fn waits_grow_and_honour_the_servers_suggestion() {
        let s = Duration::from_secs;
        let ms = Duration::from_millis;
        let cases = [
            (1, s(2), None, s(2)),
            (2, s(2), None, s(8)),
            (3, s(2), None, s(30)),
            (7, s(2), None, s(30)),
            (1, ms(10), None, ms(10)),
            (1, s(2), Some(ms(4000)), ms(4000)),
            (3, s(2), Some(ms(4000)), s(30)),
            (1, s(2), Some(s(299)), s(299)),
            (1, s(2), Some(s(9999)), MAX_SUGGESTED_WAIT),
            // No wait is longer than 10 minutes, however large `retry_delay`.
            (1, s(600), None, s(600)),
            (2, s(200), None, s(600)),
            (3, s(600), Some(s(9999)), s(600)),
            (3, s(30), None, s(450)),
        ];
        for (retry, base, suggested, want) in cases {
            assert_eq!(
                wait_before(retry, base, suggested),
                want,
                "{retry} {base:?} {suggested:?}"
            );
        }
        assert_eq!(
            suggested_wait(Some(
                "a@h:993: mailbox INBOX: the server is throttling this client (`NO Request is throttled. Suggested Backoff Time: 4000 milliseconds` to EXAMINE \"INBOX\"); try again later"
            )),
            Some(ms(4000))
        );
        assert_eq!(suggested_wait(Some("connection reset")), None);
        assert_eq!(suggested_wait(None), None);
    }

    #[test]
    fn verify_login_options_name_sources_never_secrets() {
        let s = ServerArgs {
            password_env: Some("PW".into()),
            tls_ca: Some(PathBuf::from("/ca.pem")),
            allow_plaintext: true,
            auth: crate::cli::AuthArg::Plain,
            connect_timeout: 30,
            timeout: 120,
            ..ServerArgs::default()
        };
        assert_eq!(
            server_flags(&s),
            [
                "--password-env",
                "PW",
                "--tls-ca",
                "/ca.pem",
                "--auth",
                "plain",
                "--connect-timeout",
                "30",
                "--timeout",
                "120",
                "--allow-plaintext"
            ]
        );
        for code in 0..=9 {
            assert_eq!(i32::from(exit_of_code(code).code()), code);
        }
    }

    #[test]
    fn log_values_are_quoted_on_one_line() {
        assert_eq!(quoted("a \"b\"\nc"), "\"a \\\"b\\\"\\nc\"");
        assert_eq!(bare_or_quoted("/home/a/config.toml"), "/home/a/config.toml");
        assert_eq!(
            bare_or_quoted("/home/a b/config.toml"),
            "\"/home/a b/config.toml\""
        );
        assert_eq!(bare_or_quoted("/x=y"), "\"/x=y\"");
        assert_eq!(bare_or_quoted(""), "\"\"");
        assert_eq!(exit_name(Exit::Network), "network");
    }

    #[test]
    fn scheduling_decisions() {
        use super::{next_step, retry_budget, Next};
        use crate::core::fault::Retry;
        let ms = Duration::from_millis;
        let secs = Duration::from_secs;
        let base = ms(100);
        // retry_budget: 100 + 400 + 1500 ms for 3 retries from the first.
        assert_eq!(retry_budget(1, 3, base), ms(2000));
        assert_eq!(retry_budget(3, 3, base), ms(1500));
        assert_eq!(retry_budget(4, 3, base), Duration::ZERO);
        // (retry, retry_after, attempt, retries) -> next
        let table = [
            (Retry::Never, None, 1, 3, Next::Stop),
            (Retry::NextRun, None, 1, 3, Next::TryLater),
            (Retry::NextRun, Some(secs(3600)), 1, 3, Next::TryLater),
            (Retry::Soon, None, 1, 3, Next::Retry(ms(100))),
            (Retry::Soon, None, 2, 3, Next::Retry(ms(400))),
            (Retry::Soon, Some(ms(700)), 1, 3, Next::Retry(ms(700))),
            (Retry::Soon, None, 4, 3, Next::Stop),
            (Retry::Soon, None, 1, 0, Next::Stop),
            // A login window within the budget is waited out...
            (
                Retry::AfterWindow,
                Some(secs(1)),
                1,
                3,
                Next::Retry(secs(1)),
            ),
            (
                Retry::AfterWindow,
                Some(secs(2)),
                1,
                3,
                Next::Retry(secs(2)),
            ),
            // ...a longer one, an unknown one (15 min), or one without retries left is not.
            (Retry::AfterWindow, Some(ms(2001)), 1, 3, Next::TryLater),
            (
                Retry::AfterWindow,
                Some(secs(1)),
                3,
                3,
                Next::Retry(secs(1)),
            ),
            (Retry::AfterWindow, Some(secs(1)), 4, 3, Next::TryLater),
            (Retry::AfterWindow, None, 1, 3, Next::TryLater),
            (Retry::AfterWindow, Some(secs(1)), 1, 0, Next::TryLater),
        ];
        for (retry, after, attempt, retries, want) in table {
            assert_eq!(
                next_step(retry, after, attempt, retries, base),
                want,
                "{retry:?} {after:?} attempt {attempt} of {retries}"
            );
        }
        // Never more than 10 minutes, whatever the budget.
        assert_eq!(
            next_step(Retry::AfterWindow, Some(secs(601)), 1, 10, secs(600)),
            Next::TryLater
        );
    }

    #[test]
    fn retry_of_error_lines() {
        use super::retry_of;
        use crate::core::fault::Retry;
        let cases = [
            (Exit::Network, "a@h:110: the server is temporarily unavailable: it allows one login every 900 s (`-ERR [LOGIN-DELAY] wait` to PASS, RFC 2449 8.1.2); retry after 900 s", Retry::AfterWindow, Some(Duration::from_secs(900))),
            (Exit::Network, "a@h:993: the server closed the session: [OVERQUOTA] Account exceeded command or bandwidth limits.", Retry::NextRun, Some(crate::core::fault::BANDWIDTH_PAUSE)),
            (Exit::Partial, "a@h:993: 3 stored, 2 pending: the target account is over quota (NO [OVERQUOTA] full)", Retry::NextRun, None),
            (Exit::Network, "a@h:993: connection refused", Retry::Soon, None),
            (Exit::Network, "a@h:993: refusing to log in without TLS: x", Retry::Never, None),
            (Exit::Auth, "authentication failed for a@h:993: [OVERQUOTA] odd", Retry::Never, None),
            (Exit::Protocol, "a@h:993: server answered `BAD x` to y", Retry::Never, None),
            (Exit::Ok, "", Retry::Never, None),
        ];
        for (exit, line, retry, after) in cases {
            let (r, a, _) = retry_of(exit, Some(line));
            assert_eq!((r, a), (retry, after), "{line}");
        }
    }
}
