//! `mailkeep run [JOB...]` (issue 6): the jobs of a config file ([`crate::runconf`]) run one
//! after another, unattended, as cron or a systemd timer starts them.
//!
//! - Every job is validated before any runs (a config error is exit 2, nothing runs). A job
//!   that fails does not stop the others; the run's exit code is the worst job's, in the
//!   order of [`severity`].
//! - Each archive is locked for its job by the archive lock ([`crate::lock`]): a job that
//!   finds it held ends at once with exit 5 and changes nothing; a lock left by a killed run is
//!   a released `flock`, so the next run simply takes it.
//! - A job that ends with a temporary failure (exit 4 without a TLS trust problem: connection
//!   refused, reset or dropped, timeout, `BYE`, `[UNAVAILABLE]`, `[SYS/TEMP]`, throttling) is
//!   run again, up to `retries` times, after 1, 4 and then 15 times `retry_delay` (default 2 s,
//!   8 s, 30 s), or after the wait the server suggested (`Suggested Backoff Time`) when it is
//!   longer; no wait is longer than 10 minutes. The error line of a job that gave up says
//!   after how many attempts. Backups and migrations are incremental, so a rerun goes on where the failed one
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

use crate::cli::{RunArgs, ServerArgs, VerifyArgs};
use crate::config::{self, BackupPlan, MigratePlan, Output, PrunePlan};
use crate::engine;
use crate::error::{self, Error, Exit, Result};
use crate::runconf::{self, Job, JobArgs, RunConfig};

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
    crate::imap::ImapError::No {
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
    for (job, plan) in jobs.iter().zip(plans) {
        let report = run_job(job, plan, base, out, &mut log);
        if report.exit != Exit::Ok {
            failed += 1;
        }
        run_exit = worst(run_exit, report.exit);
        if out.json {
            let text = serde_json::to_string(&report).expect("a report is plain data");
            let mut stdout = std::io::stdout().lock();
            let written = writeln!(stdout, "{text}").and_then(|()| stdout.flush());
            if let Some(line) = written.err().as_ref().and_then(error::stdout_failure) {
                eprintln!("{}", crate::report::one_line(&line));
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
    eprintln!("{}", crate::report::one_line(&format!("mailkeep: {e}")));
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

/// Runs a job, retrying temporary failures; prints and logs it; returns its report.
fn run_job(
    job: &Job,
    plan: Result<Plan>,
    base: Duration,
    out: Output,
    log: &mut Option<Log>,
) -> JobReport {
    let started = Instant::now();
    let kind = job.args.kind();
    let name = job.name.as_str();
    if let Some(l) = log {
        l.event(name, "start", &[("kind", kind.to_string())]);
    }
    if let Some(l) = job.args.limits() {
        crate::limits::set_max_message_size(l.max_message_size);
    }
    let mut retried = Vec::new();
    let mut totals: BTreeMap<&'static str, u64> = BTreeMap::new();
    let mut attempt_no = 1;
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
        let retry = attempt_no <= job.retries && temporary(a.exit, a.error.as_deref());
        if !retry {
            break a;
        }
        let wait = wait_before(attempt_no, base, suggested_wait(a.error.as_deref()));
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
    let report = JobReport {
        command: "run",
        job: name.to_string(),
        kind,
        attempts: attempt_no,
        retried,
        totals,
        report: last.report.clone(),
        error: last.error.clone(),
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
                crate::report::one_line(&format!("mailkeep: job {name}: warning: {w}"))
            );
        }
    }
    for f in &last.failures {
        let _ = writeln!(
            stderr,
            "{}",
            crate::report::one_line(&format!("mailkeep: job {name}: {f}"))
        );
    }
    if let Some(e) = &last.error {
        // From cron only this line is seen: say that it was not a single try.
        let tries = if report.attempts > 1 {
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
            crate::report::one_line(&format!("mailkeep: job {name}: {e}{tries}"))
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
    if report.attempts > 1 {
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
        let _ = writeln!(stderr, "{}", crate::report::one_line(&line));
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

fn failures_of(f: &[crate::report::Failure]) -> Vec<String> {
    f.iter()
        .map(|f| {
            if f.message.is_empty() {
                format!("{}: {}", f.mailbox, f.error)
            } else {
                format!("{} {}: {}", f.mailbox, f.message, f.error)
            }
        })
        .collect()
}

/// Runs one attempt of a job.
fn attempt(plan: &Plan) -> Attempt {
    let value = |r: &dyn erased::Report| r.json();
    match plan {
        Plan::Backup(p) => {
            let mut progress = crate::progress::Progress::new(false);
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
                            crate::net::io_reason(&e)
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
                    crate::net::io_reason(&e)
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
                    crate::net::io_reason(&e)
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
}
