//! `mailkeep run` (issue 6): a config file of accounts and jobs run end to end against a real
//! Dovecot, one job failing alone; config errors naming file, line and key; the archive lock
//! between overlapping runs and after `kill -9` (shared/cases/27); temporary failures retried
//! with backoff against scripted fake servers (drops, throttling; shared/cases/23's
//! `Suggested Backoff Time`), the counts adding up over the attempts.

mod support;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use mailkeep::core::message::normalize;
use support::dovecot::Dovecot;
use support::fake_imap::{Cut, FakeImap, Fault, Reply};
use support::fake_server::{CutFile, FakeServer};
use support::run::{maildir_messages, snapshot};

/// The outcome of one `mailkeep run`.
#[derive(Debug)]
struct Ran {
    code: i32,
    stdout: String,
    stderr: String,
    /// With `--json`: one report per job, in the order they ran.
    jobs: Vec<serde_json::Value>,
}

impl Ran {
    fn from_output(out: std::process::Output) -> Ran {
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let jobs = stdout
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        Ran {
            code: out.status.code().unwrap_or(-1),
            stdout,
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            jobs,
        }
    }

    /// The JSON report of job `name`.
    #[track_caller]
    fn job(&self, name: &str) -> &serde_json::Value {
        self.jobs
            .iter()
            .find(|j| j["job"] == name)
            .unwrap_or_else(|| panic!("no report for job {name}: {self:#?}"))
    }

    #[track_caller]
    fn assert_code(&self, code: i32) -> &Self {
        assert_eq!(self.code, code, "unexpected exit code: {self:#?}");
        self
    }
}

/// Writes `text` as a private config file in `dir`.
fn config(dir: &Path, text: &str) -> PathBuf {
    let p = dir.join("config.toml");
    fs::write(&p, text).unwrap();
    fs::set_permissions(&p, fs::Permissions::from_mode(0o600)).unwrap();
    p
}

/// `mailkeep run --config <config> <args>`, with the restore state under `state`.
fn run_cmd(config: &Path, state: &Path, args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut cmd = support::mailkeep();
    cmd.arg("run")
        .arg("--config")
        .arg(config)
        .args(args)
        .env("XDG_STATE_HOME", state)
        .env("MAILKEEP_TEST_RETRY_BASE_MS", "20")
        .stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

fn run(config: &Path, state: &Path, args: &[&str], env: &[(&str, &str)]) -> Ran {
    Ran::from_output(run_cmd(config, state, args, env).output().unwrap())
}

fn msg(tag: &str, i: usize) -> Vec<u8> {
    format!(
        "From: Ann <ann@example.com>\nTo: Bob <bob@example.org>\nSubject: {tag} {i}\nDate: Mon, 01 Apr 2024 06:00:0{} +0000\nMessage-ID: <{tag}-{i}@example.com>\n\nThis is {tag} message {i}.\n",
        i % 10
    )
    .into_bytes()
}

/// Sorted stored messages of a Maildir archive (every folder).
fn maildir_all(root: &Path) -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = Vec::new();
    out.extend(maildir_messages(root).into_iter().map(|(_, b)| b));
    for e in fs::read_dir(root).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') && e.path().is_dir() {
            out.extend(maildir_messages(&e.path()).into_iter().map(|(_, b)| b));
        }
    }
    out.sort();
    out
}

fn sorted(mut v: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
    v.sort();
    v
}

// ---------------------------------------------------------------------------------------------
// 1. End to end against Dovecot

#[test]
fn a_config_of_accounts_and_jobs_runs_end_to_end_and_a_wrong_password_fails_alone() {
    let d = Dovecot::start();
    let pop = d.add_user("runpop", "pop-secret-1");
    let imap = d.add_user("runimap", "imap-secret-2");
    let pop_mail: Vec<Vec<u8>> = (0..3).map(|i| msg("pop", i)).collect();
    for m in &pop_mail {
        pop.seed_message("INBOX", m, "", None);
    }
    imap.seed_message("INBOX", &msg("imap", 0), "S", Some(1_650_000_000));
    imap.seed_message("INBOX", &msg("imap", 1), "", Some(1_650_000_100));
    imap.seed_message("Work", &msg("work", 0), "F", Some(1_650_000_200));

    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let pw_file = t.join("imap.pw");
    fs::write(&pw_file, "imap-secret-2\n").unwrap();
    fs::set_permissions(&pw_file, fs::Permissions::from_mode(0o600)).unwrap();
    let ca = d.ca_pem.display();
    let text = format!(
        r#"# nightly mail jobs
log_file = "{t}/state/run.log"

[accounts.pop]
endpoint = "{pop_url}"
password_env = "RUN_POP_PW"
tls_ca = "{ca}"

[accounts.imap]
endpoint = "{imap_url}"
password_file = "{pw}"
tls_ca = "{ca}"

[accounts.imap-typo]
endpoint = "{imap_url}"
password_env = "RUN_TYPO_PW"
tls_ca = "{ca}"

[jobs.pop-backup]
kind = "backup"
account = "pop"
archive = "maildir:{t}/pop"

[jobs.wrong]
kind = "backup"
account = "imap-typo"
archive = "maildir:{t}/wrong"

[jobs.imap-backup]
kind = "backup"
account = "imap"
archive = "mbox:{t}/imap"
exclude = ["Old POP/**"]

[jobs.pop-to-imap]
kind = "migrate"
source = "pop"
target = "imap"
into = "Old POP"

[jobs.check]
kind = "verify"
archive = "maildir:{t}/pop"
against = "pop"
"#,
        t = t.display(),
        pop_url = d.url("pop3s", &pop),
        imap_url = d.url("imaps", &imap),
        pw = pw_file.display(),
    );
    let conf = config(t, &text);
    let state = t.join("state");
    let env = [
        ("RUN_POP_PW", "pop-secret-1"),
        ("RUN_TYPO_PW", "imap-secret-X"),
    ];

    let r = run(&conf, &state, &["--json"], &env);
    r.assert_code(3);
    let names: Vec<&str> = r.jobs.iter().map(|j| j["job"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        ["pop-backup", "wrong", "imap-backup", "pop-to-imap", "check"],
        "{r:#?}"
    );
    for j in &r.jobs {
        assert_eq!(j["command"], "run");
        assert_eq!(j["attempts"], 1, "{j:#}");
    }
    let pb = r.job("pop-backup");
    assert_eq!(
        (pb["exit"].as_str(), pb["exit_code"].as_u64()),
        (Some("ok"), Some(0))
    );
    assert_eq!(pb["kind"], "backup");
    assert_eq!(pb["report"]["fetched"], 3);
    assert_eq!(pb["totals"]["fetched"], 3);
    let w = r.job("wrong");
    assert_eq!(
        (w["exit"].as_str(), w["exit_code"].as_u64()),
        (Some("auth"), Some(3))
    );
    assert!(
        w["error"]
            .as_str()
            .unwrap()
            .contains("authentication failed for runimap@127.0.0.1"),
        "{w:#}"
    );
    assert!(!t.join("wrong").join("cur").exists() || maildir_all(&t.join("wrong")).is_empty());
    let ib = r.job("imap-backup");
    assert_eq!(ib["exit_code"], 0, "{ib:#}");
    assert_eq!(ib["report"]["fetched"], 3);
    assert_eq!(ib["report"]["mailboxes"].as_array().unwrap().len(), 2);
    let mg = r.job("pop-to-imap");
    assert_eq!(
        (mg["kind"].as_str(), mg["exit_code"].as_u64()),
        (Some("migrate"), Some(0))
    );
    assert_eq!(mg["report"]["upload"]["uploaded"], 3, "{mg:#}");
    assert_eq!(mg["totals"]["uploaded"], 3);
    assert_eq!(
        sorted(imap.messages("Old POP/INBOX")),
        sorted(pop_mail.iter().map(|m| normalize(m)).collect())
    );
    let ck = r.job("check");
    assert_eq!(
        (ck["kind"].as_str(), ck["exit_code"].as_u64()),
        (Some("verify"), Some(0)),
        "{ck:#}"
    );
    assert_eq!(ck["report"]["records"], 3);
    assert_eq!(ck["report"]["intact"], 3);
    assert_eq!(
        sorted(maildir_all(&t.join("pop"))),
        sorted(pop_mail.iter().map(|m| normalize(m)).collect())
    );
    // Errors on stderr name the job; nothing secret anywhere.
    assert!(
        r.stderr
            .contains("mailkeep: job wrong: authentication failed"),
        "{}",
        r.stderr
    );

    // From cron: --quiet prints nothing on stdout and only the failure on stderr.
    let r2 = run(&conf, &state, &["--quiet"], &env);
    r2.assert_code(3);
    assert_eq!(r2.stdout, "", "{r2:#?}");
    let lines: Vec<&str> = r2.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{r2:#?}");
    assert!(
        lines[0].starts_with("mailkeep: job wrong: authentication failed for runimap@127.0.0.1")
    );

    // The good jobs alone: silence and exit 0; a second run fetches nothing.
    let r3 = run(
        &conf,
        &state,
        &["--quiet", "pop-backup", "imap-backup", "check"],
        &env,
    );
    r3.assert_code(0);
    assert_eq!((r3.stdout.as_str(), r3.stderr.as_str()), ("", ""));
    let r4 = run(&conf, &state, &["--json", "pop-backup"], &env);
    r4.assert_code(0);
    assert_eq!(r4.jobs.len(), 1);
    assert_eq!(r4.job("pop-backup")["report"]["fetched"], 0);
    assert_eq!(r4.job("pop-backup")["report"]["already_archived"], 3);

    // Without --json or --quiet: one summary per job, named.
    let r5 = run(&conf, &state, &["pop-backup"], &env);
    r5.assert_code(0);
    assert!(
        r5.stdout
            .starts_with("pop-backup: backup runpop@127.0.0.1:"),
        "{r5:#?}"
    );
    assert_eq!(r5.stdout.lines().count(), 1);

    // The log: one line per event, private, without secrets.
    let log_path = state.join("run.log");
    let log = fs::read_to_string(&log_path).unwrap();
    assert_eq!(
        fs::metadata(&log_path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let ends: Vec<&str> = log.lines().filter(|l| l.contains(" event=end ")).collect();
    assert_eq!(ends.len(), 5 + 5 + 3 + 1 + 1, "{log}");
    assert!(
        log.lines().any(
            |l| l.contains(" job=wrong event=end attempts=1 exit=auth exit_code=3 ")
                && l.contains("error=\"authentication failed for runimap@127.0.0.1")
        ),
        "{log}"
    );
    assert!(
        log.lines().any(|l| l
            .contains(" job=pop-backup event=end attempts=1 exit=ok exit_code=0 ")
            && l.contains(" fetched=3 ")),
        "{log}"
    );
    assert_eq!(
        log.lines()
            .filter(|l| l.contains(" event=run-end "))
            .count(),
        5
    );
    for l in log.lines() {
        // `2026-11-30T05:50:06+00:00 job=...`
        let ts = l.split(' ').next().unwrap();
        assert!(chrono::DateTime::parse_from_rfc3339(ts).is_ok(), "{l}");
    }
    for secret in ["pop-secret-1", "imap-secret-2", "imap-secret-X"] {
        for (what, text) in [
            ("log", &log),
            ("stdout", &r.stdout),
            ("stderr", &r.stderr),
            ("stderr 2", &r2.stderr),
        ] {
            assert!(!text.contains(secret), "{what} holds a password");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// 2. Config errors: one line naming file, line and key; exit 2; nothing runs

#[test]
fn config_errors_name_the_file_line_and_key() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let acct = "[accounts.a]\nendpoint = \"imaps://alice@127.0.0.1:1\"\npassword_env = \"PW\"\n";
    let job = format!(
        "\n[jobs.nightly]\nkind = \"backup\"\naccount = \"a\"\narchive = \"maildir:{}/m\"\n",
        t.display()
    );
    let cases: Vec<(String, &str)> = vec![
        (format!("{acct}{job}archiv = \"x\"\n"), ":9: jobs.nightly.archiv: unknown key `archiv`"),
        (
            format!("{acct}password = \"hunter2\"\n{job}"),
            ":4: accounts.a.password: secrets are not written in the config file",
        ),
        (
            format!("[accounts.a]\nendpoint = \"imaps://alice@mail.example.com/INBOX\"\npassword_env = \"PW\"\n{job}"),
            ":2: accounts.a.endpoint: ",
        ),
        // Found when the job is checked like its command line: named at the key's line.
        (
            format!("{acct}[jobs.nightly]\nkind = \"backup\"\naccount = \"a\"\narchive = \"maildir:{}/m\"\nkeep_days = 5\n", t.display()),
            ":8: jobs.nightly.keep_days: delete_after_backup and keep_days are for POP3 sources; an IMAP backup never changes the server",
        ),
        (
            format!("{acct}tls_ca = \"{}/no-ca.pem\"\n{job}", t.display()),
            ":4: accounts.a.tls_ca: tls_ca ",
        ),
        (
            format!("{acct}auth = \"apop\"\n{job}"),
            ":4: accounts.a.auth: auth apop is for POP3 only",
        ),
        // A log file that cannot be opened: at its line.
        (
            format!("log_file = \"{}\"\n{acct}{job}", t.display()),
            ":1: log_file: log file ",
        ),
        // Relative names would mean another file under cron, systemd and a shell.
        (
            format!("{acct}[jobs.nightly]\nkind = \"backup\"\naccount = \"a\"\narchive = \"maildir:m\"\n"),
            ":7: jobs.nightly.archive: `maildir:m` is a relative path, which cron, systemd and your shell would each look for in another folder: write the full path (/... or ~/...)",
        ),
        (
            format!("{acct}[jobs.nightly]\nkind = \"verify\"\narchive = \"pop3s://alice@127.0.0.1:1\"\n"),
            ":6: jobs.nightly.archive: `pop3s://alice@127.0.0.1:1` is a server; an archive is maildir:PATH or mbox:PATH",
        ),
    ];
    for (text, want) in cases {
        let conf = config(t, &text);
        let r = run(&conf, t, &[], &[("PW", "x")]);
        r.assert_code(2);
        assert_eq!(r.stdout, "");
        let lines: Vec<&str> = r.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "{r:#?}");
        let prefix = format!("mailkeep: {}{want}", conf.display());
        assert!(
            lines[0].starts_with(&prefix),
            "got {:?}\nwant {prefix:?}…",
            lines[0]
        );
        assert!(!lines[0].contains("hunter2"));
        assert!(!t.join("m").exists(), "a job ran: {r:#?}");
        // --json: the short error object every command prints.
        let j = run(&conf, t, &["--json"], &[("PW", "x")]);
        j.assert_code(2);
        assert_eq!(j.jobs.len(), 1, "{j:#?}");
        assert_eq!(
            (
                j.jobs[0]["command"].as_str(),
                j.jobs[0]["exit_code"].as_u64()
            ),
            (Some("run"), Some(2))
        );
    }

    // A file others can write could make mailkeep run their password_command.
    let conf = config(t, &format!("{acct}{job}"));
    fs::set_permissions(&conf, fs::Permissions::from_mode(0o620)).unwrap();
    let r = run(&conf, t, &[], &[]);
    r.assert_code(2);
    assert!(r.stderr.contains("can be written by its group"), "{r:#?}");
    fs::set_permissions(&conf, fs::Permissions::from_mode(0o644)).unwrap();
    let r = run(&conf, t, &["--check"], &[]);
    r.assert_code(0);
    assert_eq!(
        r.stdout,
        format!("nightly: backup job, line 5 of {}: ok\n", conf.display())
    );
    // --check --json: one object per job, like a run's.
    let r = run(&conf, t, &["--check", "--json"], &[]);
    r.assert_code(0);
    assert_eq!(
        r.jobs,
        [serde_json::json!({
            "command": "run", "check": true, "job": "nightly", "kind": "backup",
            "config": conf.display().to_string(), "line": 5, "exit": "ok", "exit_code": 0
        })]
    );
    let r = run(&conf, t, &["nope"], &[]);
    r.assert_code(2);
    assert!(
        r.stderr.contains("no job named `nope` (jobs: nightly)"),
        "{r:#?}"
    );
    // A --config file that is not there: where to look, not to pass --config.
    let r = run(&t.join("nope.toml"), t, &[], &[]);
    r.assert_code(2);
    assert_eq!(
        r.stderr,
        format!(
            "mailkeep: config file {}: no such file or directory (write one: see README.md, \"Scheduled backups\")\n",
            t.join("nope.toml").display()
        )
    );
    // The default place: $XDG_CONFIG_HOME/mailkeep/config.toml.
    let r = Ran::from_output(
        support::mailkeep()
            .args(["run", "--check"])
            .env("XDG_CONFIG_HOME", t.join("xdg"))
            .output()
            .unwrap(),
    );
    r.assert_code(2);
    let want = format!(
        "{}: no such file or directory",
        t.join("xdg/mailkeep/config.toml").display()
    );
    assert!(r.stderr.contains(&want), "{r:#?}");
    // Without it (or with a relative one, which the XDG spec says to ignore): $HOME/.config.
    for xdg in [None, Some("relative/xdg")] {
        let mut cmd = support::mailkeep();
        cmd.args(["run", "--check"]).env("HOME", t.join("home"));
        match xdg {
            Some(x) => cmd.env("XDG_CONFIG_HOME", x),
            None => cmd.env_remove("XDG_CONFIG_HOME"),
        };
        let r = Ran::from_output(cmd.output().unwrap());
        r.assert_code(2);
        assert_eq!(
            r.stderr,
            format!(
                "mailkeep: config file {}: no such file or directory (write one: see README.md, \"Scheduled backups\"; or pass --config FILE)\n",
                t.join("home/.config/mailkeep/config.toml").display()
            )
        );
    }
}

// ---------------------------------------------------------------------------------------------
// 2b. A server that is down: retried with backoff, then exit 4 with one line saying so

#[test]
fn a_refused_connection_is_retried_then_fails_with_one_line_naming_the_attempts() {
    // A port nothing listens on.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let conf = config(
        t,
        &format!(
            "retries = 2\nlog_file = \"{t}/run.log\"\n\n[accounts.down]\nendpoint = \"imaps://alice@127.0.0.1:{port}\"\npassword_env = \"PW\"\n\n[jobs.down]\nkind = \"backup\"\naccount = \"down\"\narchive = \"maildir:{t}/a\"\n",
            t = t.display()
        ),
    );
    let started = Instant::now();
    let r = run(&conf, t, &["--quiet"], &[("PW", "x")]);
    let took = started.elapsed();
    r.assert_code(4);
    assert_eq!(r.stdout, "", "{r:#?}");
    let lines: Vec<&str> = r.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{r:#?}");
    let want = format!(
        "mailkeep: job down: alice@127.0.0.1:{port}: cannot connect to 127.0.0.1:{port}: connection refused (gave up after 3 attempts in "
    );
    assert!(lines[0].starts_with(&want), "{r:#?}");
    let secs: u64 = lines[0][want.len()..]
        .strip_suffix(" s)")
        .unwrap_or_else(|| panic!("{r:#?}"))
        .parse()
        .unwrap();
    assert!(
        secs <= took.as_secs() + 1,
        "{secs} s, but the run took {took:?}"
    );
    // 20 ms, then 80 ms (MAILKEEP_TEST_RETRY_BASE_MS): bounded, and quick.
    assert!(took < Duration::from_secs(10), "{took:?}");
    let log = fs::read_to_string(t.join("run.log")).unwrap();
    let events: Vec<&str> = log
        .lines()
        .map(|l| l.split_once(' ').unwrap().1)
        .map(|l| l.split(" deleted=").next().unwrap())
        .collect();
    assert_eq!(
        events,
        [
            format!("job=- event=run-start config={} jobs=down", conf.display()).as_str(),
            "job=down event=start kind=backup",
            "job=down event=retry attempt=1 exit=network wait_secs=0.0",
            "job=down event=retry attempt=2 exit=network wait_secs=0.1",
            "job=down event=end attempts=3 exit=network exit_code=4",
            "job=- event=run-end exit=network exit_code=4 jobs=1 failed=1",
        ],
        "{log}"
    );
}

// ---------------------------------------------------------------------------------------------
// 3. shared/cases/27: overlapping runs and a run killed with SIGKILL

fn case_dir(name: &str) -> PathBuf {
    support::corpus_dir().join("../cases").join(name)
}

const CASE27: &str = "27-concurrent-runs-and-stale-lock";
const CASE23: &str = "23-office365-throttling-and-disconnect";

/// The case's slow server, with `pause_ms` before each message instead of 2000.
fn slow_server(pause_ms: u64) -> FakeImap {
    let dir = case_dir(CASE27);
    let script = fs::read_to_string(dir.join("server-slow.txt"))
        .unwrap()
        .replace("PAUSE 2000", &format!("PAUSE {pause_ms}"));
    FakeImap::from_str(&script, &dir)
}

fn case27_mail() -> Vec<Vec<u8>> {
    (1..=5)
        .map(|i| normalize(&fs::read(case_dir(CASE27).join(format!("m{i}.eml"))).unwrap()))
        .collect()
}

fn imap_job_config(t: &Path, jobs: &[(&str, &FakeImap, &str)], extra: &str) -> PathBuf {
    let mut text = String::from(extra);
    for (name, server, archive) in jobs {
        text.push_str(&format!(
            "\n[accounts.{name}]\nendpoint = \"imap://alice@{}\"\npassword_env = \"FAKE_PW\"\nallow_plaintext = true\ntimeout = 20\n\n[jobs.{name}]\nkind = \"backup\"\naccount = \"{name}\"\narchive = \"{archive}\"\n",
            server.addr()
        ));
    }
    config(t, &text)
}

#[track_caller]
fn wait_for(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn kill9(child: &mut Child) {
    // SAFETY: kill(2) on the pid of a child we spawned and have not reaped yet.
    let rc = unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGKILL) };
    assert_eq!(rc, 0);
    let st = child.wait().unwrap();
    assert!(!st.success());
}

#[test]
fn case27_an_overlapping_run_exits_locked_at_once_and_a_killed_runs_lock_is_taken_over() {
    let slow = slow_server(1000);
    let other = slow_server(0);
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let archive = t.join("archive");
    let conf = imap_job_config(
        t,
        &[
            ("cron", &slow, &format!("maildir:{}", archive.display())),
            (
                "other",
                &other,
                &format!("maildir:{}", t.join("other").display()),
            ),
        ],
        "",
    );
    let env = [("FAKE_PW", "secret")];

    // Run A: slow, holds the archive's lock while the server sends the messages.
    let mut a = run_cmd(&conf, t, &["--json", "cron"], &env)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for("run A to fetch bodies", Duration::from_secs(10), || {
        slow.commands().iter().any(|c| c.contains("BODY.PEEK[]"))
    });
    let before = snapshot(&archive);

    // Run B, as a second cron job would: at once, exit 5, nothing changed.
    let started = Instant::now();
    let b = run(&conf, t, &["--json", "cron"], &env);
    let took = started.elapsed();
    b.assert_code(5);
    assert!(took < Duration::from_secs(5), "run B took {took:?}");
    let j = b.job("cron");
    assert_eq!(
        (j["exit"].as_str(), j["attempts"].as_u64()),
        (Some("locked"), Some(1)),
        "{j:#}"
    );
    let pid = a.id().to_string();
    assert!(
        j["error"]
            .as_str()
            .unwrap()
            .contains(&format!("is locked by another mailkeep run (pid {pid})")),
        "{j:#}"
    );
    assert!(b.stderr.contains(&archive.display().to_string()), "{b:#?}");
    assert!(snapshot(&archive) == before, "run B changed the archive");
    assert_eq!(slow.connections(), 1, "run B connected to the server");

    // A prune of that archive meanwhile: the same, so it never deletes what the backup is
    // still writing.
    let started = Instant::now();
    let p = Ran::from_output(
        support::mailkeep()
            .args(["prune", &format!("imap://alice@{}", slow.addr())])
            .args(["--archive", &format!("maildir:{}", archive.display())])
            .args(["--older-than", "1d", "--yes", "--allow-plaintext"])
            .args(["--password-env", "FAKE_PW"])
            .env("FAKE_PW", "secret")
            .stdin(Stdio::null())
            .output()
            .unwrap(),
    );
    p.assert_code(5);
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(p.stdout, "");
    assert_eq!(
        p.stderr,
        format!(
            "mailkeep: archive {} is locked by another mailkeep run (pid {pid})\n",
            archive.display()
        )
    );
    assert!(
        snapshot(&archive) == before,
        "the prune changed the archive"
    );
    assert_eq!(slow.connections(), 1, "the prune connected to the server");

    // Another archive is not blocked meanwhile.
    let e = run(&conf, t, &["--json", "other"], &env);
    e.assert_code(0);
    assert_eq!(e.job("other")["report"]["fetched"], 5);
    assert!(a.try_wait().unwrap().is_none(), "run A ended too early");

    // The machine "crashes": A dies without cleanup. Run C takes the lock over and completes.
    kill9(&mut a);
    let c = run(&conf, t, &["--json", "cron"], &env);
    c.assert_code(0);
    assert_eq!(c.job("cron")["report"]["fetched"], 5, "{c:#?}");
    let mut want = case27_mail();
    want.sort();
    assert_eq!(maildir_all(&archive), want);

    // Run D adds nothing.
    let d = run(&conf, t, &["--json", "cron"], &env);
    d.assert_code(0);
    let j = d.job("cron");
    assert_eq!(
        (
            j["report"]["fetched"].as_u64(),
            j["report"]["already_archived"].as_u64()
        ),
        (Some(0), Some(5))
    );
    assert_eq!(maildir_all(&archive), want);
}

// ---------------------------------------------------------------------------------------------
// 4. Temporary failures retried inside the run

/// The case 27 server without its pauses: five messages in INBOX, UIDPLUS.
fn fast_script() -> (String, PathBuf) {
    let dir = case_dir(CASE27);
    let script = fs::read_to_string(dir.join("server-slow.txt"))
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with("PAUSE"))
        .collect::<Vec<_>>()
        .join("\n");
    (script, dir)
}

#[test]
fn imap_two_dropped_connections_and_a_throttling_reply_are_waited_out_and_retried() {
    // shared/cases/23's reply, with a shorter suggested wait.
    let throttled = "Request is throttled. Suggested Backoff Time: 700 milliseconds";
    assert!(
        fs::read_to_string(case_dir(CASE23).join("destination-o365.txt"))
            .unwrap()
            .contains("Request is throttled. Suggested Backoff Time: 4000 milliseconds")
    );
    let (script, dir) = fast_script();
    let server = FakeImap::builder_str(&script, &dir)
        .fault(Fault::Reply {
            command: "SELECT".into(),
            nth: 1,
            reply: Reply::No(throttled.into()),
        })
        .cut_file("m2.eml", 40, Cut::Close)
        .cut_file("m4.eml", 40, Cut::Close)
        .start();
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let archive = t.join("a");
    let conf = imap_job_config(
        t,
        &[("mail", &server, &format!("maildir:{}", archive.display()))],
        &format!("log_file = \"{}/run.log\"\n", t.display()),
    );
    let r = run(&conf, t, &["--json"], &[("FAKE_PW", "secret")]);
    r.assert_code(0);
    let j = r.job("mail");
    assert_eq!(j["attempts"], 4, "{j:#}");
    let retried = j["retried"].as_array().unwrap();
    let exits: Vec<&str> = retried
        .iter()
        .map(|a| a["exit"].as_str().unwrap())
        .collect();
    assert_eq!(exits, ["network", "network", "network"]);
    assert!(
        retried[0]["error"].as_str().unwrap().contains(throttled),
        "{j:#}"
    );
    assert_eq!(retried[0]["wait_secs"].as_f64(), Some(0.7));
    assert!(
        retried[1]["error"]
            .as_str()
            .unwrap()
            .contains("mailbox INBOX"),
        "{j:#}"
    );
    // The schedule goes on: 4 x and 15 x 20 ms (MAILKEEP_TEST_RETRY_BASE_MS).
    assert_eq!(retried[1]["wait_secs"].as_f64(), Some(0.08));
    assert_eq!(retried[2]["wait_secs"].as_f64(), Some(0.3));
    // A dropped FETCH keeps what arrived before the drop (each message is stored as soon as
    // it is complete, the batch recorded when the connection fails): the 2nd attempt stores
    // m1, the 3rd m2 and m3, the last m4 and m5; all five once in total.
    assert_eq!(j["report"]["fetched"], 2);
    assert_eq!(j["report"]["listed"], 5);
    assert_eq!(j["totals"]["fetched"], 5);
    assert_eq!(j["exit"], "ok");
    let mut want = case27_mail();
    want.sort();
    assert_eq!(maildir_all(&archive), want);
    // The retry after the throttling reply came at least the suggested 700 ms later.
    let timed = server.timed_commands();
    let throttled_at = timed
        .iter()
        .find(|(_, c)| c.starts_with("EXAMINE"))
        .unwrap()
        .0;
    let next_login = timed
        .iter()
        .filter(|(at, c)| *at > throttled_at && c.starts_with("LOGIN"))
        .map(|(at, _)| *at)
        .next()
        .unwrap();
    assert!(
        next_login.duration_since(throttled_at) >= Duration::from_millis(700),
        "{:?}",
        next_login.duration_since(throttled_at)
    );
    assert_eq!(server.connections(), 4);
    let log = fs::read_to_string(t.join("run.log")).unwrap();
    let retries: Vec<&str> = log
        .lines()
        .filter(|l| l.contains(" job=mail event=retry "))
        .collect();
    assert_eq!(retries.len(), 3, "{log}");
    assert!(
        retries[0].contains(" attempt=1 exit=network wait_secs=0.7 "),
        "{log}"
    );
    assert!(
        log.contains(" job=mail event=end attempts=4 exit=ok exit_code=0 "),
        "{log}"
    );

    // Retries are bounded: with `retries = 0` the first failure is the job's result.
    let server = FakeImap::builder_str(&script, &dir)
        .cut_file("m2.eml", 40, Cut::Close)
        .start();
    let conf = imap_job_config(
        t,
        &[(
            "mail",
            &server,
            &format!("maildir:{}", t.join("b").display()),
        )],
        "retries = 0\n",
    );
    let r = run(&conf, t, &["--json"], &[("FAKE_PW", "secret")]);
    r.assert_code(4);
    let j = r.job("mail");
    assert_eq!(
        (j["attempts"].as_u64(), j["exit_code"].as_u64()),
        (Some(1), Some(4)),
        "{j:#}"
    );
    assert_eq!(server.connections(), 1);
}

/// The POP3 wire form of a message (RFC 1939 3): CRLF line ends, dot-stuffing, final `.`.
fn pop_wire(eml: &[u8]) -> Vec<u8> {
    let lf = normalize(eml);
    let mut out = Vec::new();
    for line in lf.split_inclusive(|&b| b == b'\n') {
        if line.starts_with(b".") {
            out.push(b'.');
        }
        out.extend_from_slice(&line[..line.len() - 1]);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b".\r\n");
    out
}

/// A POP3 session over messages `(uidl, file, octets)`; `pass` answers PASS.
fn pop_session(msgs: &[(String, String, u64)], pass: &str) -> String {
    let total: u64 = msgs.iter().map(|m| m.2).sum();
    let mut s = String::from("S: +OK POP3 fake ready\n");
    s += "C: CAPA\nS: +OK capability list follows\nS: USER\nS: UIDL\nS: TOP\nS: .\n";
    s += "C: USER alice\nS: +OK\n";
    s += &format!("C: PASS secret\nS: {pass}\n");
    s += &format!("C: STAT\nS: +OK {} {total}\n", msgs.len());
    s += "C: UIDL\nS: +OK\n";
    for (i, m) in msgs.iter().enumerate() {
        s += &format!("S: {} {}\n", i + 1, m.0);
    }
    s += "S: .\nC: LIST\nS: +OK\n";
    for (i, m) in msgs.iter().enumerate() {
        s += &format!("S: {} {}\n", i + 1, m.2);
    }
    s += "S: .\n";
    for (i, m) in msgs.iter().enumerate() {
        s += &format!("C: RETR {}\nS: +OK {} octets\nS+ {}\n", i + 1, m.2, m.1);
    }
    s += "C: QUIT\nS: +OK bye\n";
    s
}

#[test]
fn pop3_retries_resume_where_the_failed_attempt_stopped_and_the_counts_add_up() {
    let wires = tempfile::tempdir().unwrap();
    let mail = case27_mail();
    let msgs: Vec<(String, String, u64)> = mail
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let file = format!("m{}.pop-wire", i + 1);
            fs::write(wires.path().join(&file), pop_wire(m)).unwrap();
            (format!("CRON-{i}"), file, m.len() as u64)
        })
        .collect();
    // Connection 1: a temporary refusal (RFC 3206); then the maildrop, whose RETR 2 and RETR 4
    // are cut off once each.
    let script = format!(
        "SESSION 1\n{}SESSION 2\n{}",
        pop_session(&msgs, "-ERR [SYS/TEMP] too many connections, slow down"),
        pop_session(&msgs, "+OK")
    );
    let server = FakeServer::pop3_with(
        &script,
        wires.path(),
        vec![
            CutFile::once("m2.pop-wire", 30, support::fake_server::Cut::Close),
            CutFile::once("m4.pop-wire", 30, support::fake_server::Cut::Close),
        ],
    );
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let archive = t.join("pop");
    let conf = config(
        t,
        &format!(
            "[accounts.pop]\nendpoint = \"pop3://alice@{}\"\npassword_env = \"FAKE_PW\"\nallow_plaintext = true\n\n[jobs.pop]\nkind = \"backup\"\naccount = \"pop\"\narchive = \"maildir:{}\"\n",
            server.addr(),
            archive.display()
        ),
    );
    let r = run(&conf, t, &["--json"], &[("FAKE_PW", "secret")]);
    r.assert_code(0);
    let j = r.job("pop");
    assert_eq!(j["attempts"], 4, "{j:#}");
    let fetched: Vec<u64> = j["retried"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["counts"]["fetched"].as_u64().unwrap())
        .collect();
    // Refused at login; m1 stored before the cut in m2; m2 and m3 before the cut in m4.
    assert_eq!(fetched, [0, 1, 2]);
    assert!(
        j["retried"][0]["error"]
            .as_str()
            .unwrap()
            .contains("[SYS/TEMP]"),
        "{j:#}"
    );
    assert_eq!(
        (
            j["report"]["listed"].as_u64(),
            j["report"]["already_archived"].as_u64(),
            j["report"]["fetched"].as_u64()
        ),
        (Some(5), Some(3), Some(2))
    );
    assert_eq!(j["totals"]["fetched"], 5);
    assert_eq!(
        j["totals"]["fetched_bytes"].as_u64(),
        Some(mail.iter().map(|m| m.len() as u64).sum())
    );
    let mut want = mail.clone();
    want.sort();
    assert_eq!(maildir_all(&archive), want);
    // Each message was downloaded completely exactly once.
    let retrs: Vec<String> = server
        .commands()
        .into_iter()
        .filter(|c| c.starts_with("RETR"))
        .collect();
    assert_eq!(
        retrs,
        ["RETR 1", "RETR 2", "RETR 2", "RETR 3", "RETR 4", "RETR 4", "RETR 5"]
    );
}
