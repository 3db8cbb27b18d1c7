//! Server refusals graded by scope (issue 15, README.md "Servers and their quirks"):
//!
//! - a real Dovecot with the quota plugin: `NO [OVERQUOTA]` to APPEND stops a restore's
//!   appends at once (one line, "N stored, M pending"), and after the quota is raised a rerun
//!   appends exactly the pending messages; messages over the per-message size limit are
//!   refused one by one, summarised in one line with a count, one JSON entry each;
//! - the scripted fake IMAP server: `BYE [OVERQUOTA]` (Gmail's bandwidth limit) mid-backup
//!   ends the job "try later" with no new login to that account in the run; `[INUSE]` and
//!   `[UNAVAILABLE]` at login are retried (exit 4, not a protocol error);
//! - the scripted fake POP3 server: `[LOGIN-DELAY]` in `mailkeep run` is waited out when the
//!   CAPA window is short and ends the job "try later" when it is long;
//! - `mailkeep run`: a prune after a failed backup of its archive is skipped, in one line.
//!
//! Each rerun against a healthy server converges: every message once, none lost.

mod support;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use mailkeep::core::message::normalize;
use support::dovecot::{Dovecot, Options, User};
use support::fake_imap::{FakeImap, Fault, Reply};
use support::fake_server::FakeServer;
use support::run::{maildir_messages, Run};

const PW_VAR: &str = "MAILKEEP_TEST_PASSWORD";

/// The quota plugin (Dovecot 2.3), unlimited unless a user's `quota_rule` or
/// `quota_max_mail_size` says otherwise.
const QUOTA: &str = "
mail_plugins = $mail_plugins quota
protocol imap {
  mail_plugins = $mail_plugins imap_quota
}
plugin {
  quota = maildir:User quota
}
";

fn quota_dovecot() -> Dovecot {
    Dovecot::start_with(Options {
        extra_config: QUOTA.into(),
        ..Options::default()
    })
}

/// A message of exactly `size` octets (LF line ends), numbered `i`.
fn sized(i: usize, size: usize) -> Vec<u8> {
    let head = format!(
        "From: Ann <ann@example.com>\nTo: Bob <bob@example.org>\nSubject: quota {i}\nDate: Mon, 01 Apr 2024 06:00:{:02} +0000\nMessage-ID: <quota-{i}@example.com>\n\n",
        i % 60
    );
    let mut m = head.into_bytes();
    while m.len() + 1 < size {
        m.push(b'a' + (m.len() % 26) as u8);
    }
    m.push(b'\n');
    assert_eq!(m.len(), size);
    m
}

/// An `eml:` folder of `msgs`, named `m01.eml`, ... (INBOX).
fn eml_dir(root: &Path, msgs: &[Vec<u8>]) -> String {
    fs::create_dir_all(root).unwrap();
    for (i, m) in msgs.iter().enumerate() {
        fs::write(root.join(format!("m{:02}.eml", i + 1)), m).unwrap();
    }
    format!("eml:{}", root.display())
}

fn restore(d: &Dovecot, u: &User, archive: &str, state: &Path, extra: &[&str]) -> Run {
    let out = support::mailkeep()
        .args(["restore", archive, &d.url("imaps", u), "--tls-ca"])
        .arg(&d.ca_pem)
        .args(["--password-env", PW_VAR])
        .args(extra)
        .env(PW_VAR, &u.password)
        .env("XDG_STATE_HOME", state)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    Run::from_output(out)
}

/// The target INBOX's messages, sorted, LF line ends.
fn inbox(u: &User) -> Vec<Vec<u8>> {
    let mut v: Vec<Vec<u8>> = u
        .messages("INBOX")
        .into_iter()
        .map(|m| normalize(&m))
        .collect();
    v.sort();
    v
}

fn sorted(mut v: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
    v.sort();
    v
}

// ---------------------------------------------------------------------------------------------
// 1. Real Dovecot: OVERQUOTA and per-message size refusals on APPEND

#[test]
fn dovecot_overquota_on_append_stops_at_once_and_a_rerun_appends_exactly_the_pending() {
    let d = quota_dovecot();
    let u = d.add_user("full", "secret");
    // 1000-octet messages, 10 KiB: ten fit (10 x 1000 <= 10240), the eleventh does not.
    d.set_user_fields(&u, "userdb_quota_rule=*:storage=10K");
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let msgs: Vec<Vec<u8>> = (1..=15).map(|i| sized(i, 1000)).collect();
    let archive = eml_dir(&t.join("eml"), &msgs);

    let human = restore(&d, &u, &archive, t, &[]);
    human.assert_code(1);
    let held = inbox(&u);
    assert_eq!(held, sorted(msgs[..10].to_vec()), "{human:#?}");
    // One line about the quota, no line per message, and the summary.
    let lines: Vec<&str> = human.stderr.lines().collect();
    assert_eq!(
        lines,
        [format!(
            "mailkeep: full@127.0.0.1:{}: 10 stored, 5 pending: the target account is over quota (NO [OVERQUOTA] Quota exceeded (mailbox for user is full).)",
            d.imaps_port
        )],
        "{human:#?}"
    );
    assert!(
        human
            .stdout
            .contains(": 15 read, 10 uploaded (10.0 kB), 0 already present, 5 pending (the target account is over quota), 1 mailbox in "),
        "{human:#?}"
    );
    // The server was sent no APPEND after its first OVERQUOTA: one refusal in its log at most
    // as many as the pipelined batch held, never one per message of the archive.
    let appends_refused = d.log().matches("Quota exceeded").count();
    assert!(appends_refused <= 5, "{}", d.log_tail(40));

    // Still full: a rerun appends nothing, says the same, exit 1; JSON has the counts.
    let again = restore(&d, &u, &archive, t, &["--json"]);
    again.assert_code(1);
    assert_eq!(
        (
            again.n("read"),
            again.n("uploaded"),
            again.n("already_present"),
            again.n("pending"),
            again.n("failed")
        ),
        (15, 0, 10, 5, 0),
        "{again:#?}"
    );
    assert_eq!(again.report["exit"], "partial");
    assert_eq!(
        again.report["over_quota"],
        "NO [OVERQUOTA] Quota exceeded (mailbox for user is full)."
    );
    assert_eq!(again.report["failures"].as_array().unwrap().len(), 0);
    assert_eq!(inbox(&u), sorted(msgs[..10].to_vec()));
    // Without --json a rerun that stores nothing still prints its counts: a full target is
    // not a run that stopped (it used to print only the error line).
    let human = restore(&d, &u, &archive, t, &[]);
    human.assert_code(1);
    assert!(
        human
            .stdout
            .contains(": 15 read, 0 uploaded (0 B), 10 already present, 5 pending (the target account is over quota), 1 mailbox in "),
        "{human:#?}"
    );

    // The quota raised: exactly the 5 pending are appended, nothing twice.
    d.set_user_fields(&u, "userdb_quota_rule=*:storage=1M");
    let done = restore(&d, &u, &archive, t, &["--json"]);
    done.assert_code(0);
    assert_eq!(
        (
            done.n("uploaded"),
            done.n("already_present"),
            done.n("pending")
        ),
        (5, 10, 0),
        "{done:#?}"
    );
    assert_eq!(done.report["over_quota"], serde_json::Value::Null);
    assert_eq!(inbox(&u), sorted(msgs.clone()));
}

#[test]
fn dovecot_messages_over_the_size_limit_are_refusals_counted_in_one_line() {
    let d = quota_dovecot();
    let u = d.add_user("small", "secret");
    d.set_user_fields(&u, "userdb_quota_max_mail_size=2k");
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    // Messages 2, 3, 4, 5, 6, 7 and 9 are over 2 KiB.
    let sizes = [500, 3000, 3000, 3000, 3000, 3000, 3000, 600, 3000, 700];
    let msgs: Vec<Vec<u8>> = sizes
        .iter()
        .enumerate()
        .map(|(i, s)| sized(i + 1, *s))
        .collect();
    let archive = eml_dir(&t.join("eml"), &msgs);

    let human = restore(&d, &u, &archive, t, &[]);
    human.assert_code(1);
    let small: Vec<Vec<u8>> = msgs.iter().filter(|m| m.len() < 2048).cloned().collect();
    assert_eq!(inbox(&u), sorted(small.clone()));
    // Dovecot's timing, `(0.001 + 0.000 secs)`, is left out: identical refusals stay
    // identical.
    let words = format!("refused by the server (small@127.0.0.1:{}): NO [LIMIT] Mail size is larger than the maximum size allowed by server configuration.", d.imaps_port);
    let eml = t.join("eml");
    let path = |n: usize| format!("{}/m{n:02}.eml", eml.display());
    let lines: Vec<&str> = human.stderr.lines().collect();
    assert_eq!(
        lines,
        [format!(
            "mailkeep: INBOX: 7 messages {words} (first 5: {}, {}, {}, {}, {})",
            path(2),
            path(3),
            path(4),
            path(5),
            path(6)
        )],
        "{human:#?}"
    );
    assert!(
        human.stdout.contains(", 7 failed, 1 mailbox in "),
        "{human:#?}"
    );

    // JSON: one entry per message, with the server's words; not a protocol error.
    let again = restore(&d, &u, &archive, t, &["--json"]);
    again.assert_code(1);
    let failures = again.report["failures"].as_array().unwrap();
    let named: Vec<(&str, &str)> = failures
        .iter()
        .map(|f| (f["message"].as_str().unwrap(), f["error"].as_str().unwrap()))
        .collect();
    let want: Vec<String> = [2, 3, 4, 5, 6, 7, 9].iter().map(|n| path(*n)).collect();
    assert_eq!(
        named,
        want.iter()
            .map(|p| (p.as_str(), words.as_str()))
            .collect::<Vec<_>>()
    );
    assert_eq!(
        (
            again.n("uploaded"),
            again.n("already_present"),
            again.n("failed")
        ),
        (0, 3, 7)
    );

    // The limit lifted: the seven are appended, the three not again.
    d.set_user_fields(&u, "userdb_quota_max_mail_size=0");
    let done = restore(&d, &u, &archive, t, &["--json"]);
    done.assert_code(0);
    assert_eq!((done.n("uploaded"), done.n("already_present")), (7, 3));
    assert_eq!(inbox(&u), sorted(msgs));
}

#[test]
fn dovecot_migration_into_a_full_account_stops_appending_and_a_rerun_sends_the_pending() {
    use support::run::{migrate, Side};
    let d = quota_dovecot();
    let src = d.add_user("from", "secret1");
    let dst = d.add_user("into", "secret2");
    // 1000-octet messages, 3 KiB: three fit.
    d.set_user_fields(&dst, "userdb_quota_rule=*:storage=3K");
    let msgs: Vec<Vec<u8>> = (1..=6).map(|i| sized(i, 1000)).collect();
    for (i, m) in msgs.iter().enumerate() {
        src.seed_message("INBOX", m, "S", Some(1_711_950_000 + i as i64));
    }
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let (from, into) = (Side::of(&d, "imaps", &src), Side::of(&d, "imaps", &dst));
    let r = migrate(&from, &into, t, &[]);
    r.assert_code(1);
    assert_eq!(inbox(&dst).len(), 3, "{r:#?}");
    assert_eq!(
        (
            r.report["upload"]["uploaded"].as_u64(),
            r.report["upload"]["pending"].as_u64()
        ),
        (Some(3), Some(3)),
        "{r:#?}"
    );
    let lines: Vec<&str> = r.stderr.lines().collect();
    assert_eq!(
        lines,
        [format!(
            "mailkeep: target into@127.0.0.1:{}: 3 stored, 3 pending: the target account is over quota (NO [OVERQUOTA] Quota exceeded (mailbox for user is full).)",
            d.imaps_port
        )],
        "{r:#?}"
    );
    // Still full, without --json: nothing stored, and the summary still gives the counts.
    let out = support::mailkeep()
        .args(["migrate", &from.url, &into.url])
        .arg("--source-tls-ca")
        .arg(from.ca)
        .arg("--target-tls-ca")
        .arg(into.ca)
        .args([
            "--source-password-env",
            "SRC_PW",
            "--target-password-env",
            "DST_PW",
        ])
        .env("SRC_PW", from.password)
        .env("DST_PW", into.password)
        .env("XDG_STATE_HOME", t)
        .output()
        .unwrap();
    let human = Run::from_output(out);
    human.assert_code(1);
    assert_eq!(
        human.stderr,
        format!(
            "mailkeep: target into@127.0.0.1:{}: 0 stored, 3 pending: the target account is over quota (NO [OVERQUOTA] Quota exceeded (mailbox for user is full).)\n",
            d.imaps_port
        ),
        "{human:#?}"
    );
    assert!(
        human.stdout.starts_with(&format!(
            "migrate imap:from@127.0.0.1:{0} -> into@127.0.0.1:{0}: 6 read, 0 uploaded (0 B), 3 already present, 3 pending (the target account is over quota), 1 mailbox in ",
            d.imaps_port
        )),
        "{human:#?}"
    );
    // Room again: exactly the three pending, every message once.
    d.set_user_fields(&dst, "userdb_quota_rule=*:storage=1M");
    let r = migrate(&from, &into, t, &[]);
    r.assert_code(0);
    assert_eq!(
        (
            r.report["upload"]["uploaded"].as_u64(),
            r.report["upload"]["already_present"].as_u64()
        ),
        (Some(3), Some(3)),
        "{r:#?}"
    );
    assert_eq!(inbox(&dst), sorted(msgs));
}

// ---------------------------------------------------------------------------------------------
// 2. `mailkeep run` against scripted servers

/// The outcome of one `mailkeep run --json`.
#[derive(Debug)]
struct Ran {
    code: i32,
    stdout: String,
    stderr: String,
    jobs: Vec<serde_json::Value>,
}

impl Ran {
    #[track_caller]
    fn job(&self, name: &str) -> &serde_json::Value {
        self.jobs
            .iter()
            .find(|j| j["job"] == name)
            .unwrap_or_else(|| panic!("no report for job {name}: {self:#?}"))
    }
}

/// `mailkeep run --config <text> <args>` with retries `base_ms` apart (the test switch).
fn run(dir: &Path, text: &str, args: &[&str], base_ms: u64) -> Ran {
    let conf = dir.join("config.toml");
    fs::write(&conf, text).unwrap();
    fs::set_permissions(&conf, fs::Permissions::from_mode(0o600)).unwrap();
    let out = support::mailkeep()
        .arg("run")
        .arg("--config")
        .arg(&conf)
        .args(args)
        .env("XDG_STATE_HOME", dir)
        .env("MAILKEEP_TEST_RETRY_BASE_MS", base_ms.to_string())
        .env("FAKE_PW", "secret")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    Ran {
        code: out.status.code().unwrap_or(-1),
        jobs: stdout
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect(),
        stdout,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn case_dir(name: &str) -> PathBuf {
    support::corpus_dir().join("../cases").join(name)
}

const CASE27: &str = "27-concurrent-runs-and-stale-lock";

/// Case 27's server without its pauses: five messages in INBOX.
fn case27_script() -> (String, PathBuf) {
    let dir = case_dir(CASE27);
    let script = fs::read_to_string(dir.join("server-slow.txt"))
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with("PAUSE"))
        .collect::<Vec<_>>()
        .join("\n");
    (script, dir)
}

fn case27_mail() -> Vec<Vec<u8>> {
    sorted(
        (1..=5)
            .map(|i| normalize(&fs::read(case_dir(CASE27).join(format!("m{i}.eml"))).unwrap()))
            .collect(),
    )
}

fn maildir_sorted(root: &Path) -> Vec<Vec<u8>> {
    sorted(maildir_messages(root).into_iter().map(|(_, b)| b).collect())
}

/// An IMAP account on `addr` and backup jobs `(name, archive)` of it.
fn imap_backups(addr: &str, jobs: &[(&str, &Path)], extra: &str) -> String {
    let mut text = format!(
        "{extra}\n[accounts.mail]\nendpoint = \"imap://alice@{addr}\"\npassword_env = \"FAKE_PW\"\nallow_plaintext = true\ntimeout = 20\n"
    );
    for (name, archive) in jobs {
        text.push_str(&format!(
            "\n[jobs.{name}]\nkind = \"backup\"\naccount = \"mail\"\narchive = \"maildir:{}\"\n",
            archive.display()
        ));
    }
    text
}

const GMAIL_BANDWIDTH: &str =
    "[OVERQUOTA] Account exceeded command or bandwidth limits. https://support.google.com/mail/answer/7126229";

#[test]
fn bye_overquota_mid_backup_ends_the_job_try_later_with_no_new_login_in_the_run() {
    let (script, dir) = case27_script();
    // The second FETCH (the first of the bodies, after the listing) gets Gmail's BYE.
    let server = FakeImap::builder_str(&script, &dir)
        .fault(Fault::Reply {
            command: "FETCH".into(),
            nth: 2,
            reply: Reply::Bye(GMAIL_BANDWIDTH.into()),
        })
        .start();
    let port = server.port();
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let (a, b) = (t.join("a"), t.join("b"));
    let text = imap_backups(
        &server.addr(),
        &[("first", &a), ("second", &b)],
        "retries = 3\n",
    );
    let r = run(t, &text, &["--json"], 20);
    assert_eq!(r.code, 4, "{r:#?}");
    let first = r.job("first");
    assert_eq!(
        (
            first["status"].as_str(),
            first["attempts"].as_u64(),
            first["exit_code"].as_u64()
        ),
        (Some("try-later"), Some(1), Some(4)),
        "{first:#}"
    );
    let error = first["error"].as_str().unwrap();
    assert!(
        error.ends_with(&format!(
            "the server closed the session: {GMAIL_BANDWIDTH}: the account used up its bandwidth or command allowance; no new login to this account in this run (retry after 3600 s)"
        )),
        "{error}"
    );
    // Listed, then refused at the bodies' FETCH: nothing stored, nothing lost.
    assert_eq!(first["report"]["fetched"], 0, "{first:#}");
    let fetches = server.commands();
    let fetches: Vec<&String> = fetches
        .iter()
        .filter(|c| c.starts_with("UID FETCH"))
        .collect();
    assert_eq!(fetches.len(), 2, "{fetches:?}");
    // The second job of the same account does not log in.
    let second = r.job("second");
    assert_eq!(
        (
            second["status"].as_str(),
            second["attempts"].as_u64(),
            second["exit_code"].as_u64()
        ),
        (Some("try-later"), Some(0), Some(4)),
        "{second:#}"
    );
    assert_eq!(
        second["error"],
        format!("no login to alice@127.0.0.1:{port} (the account used up its bandwidth or command allowance; not in this run)")
    );
    assert_eq!(server.connections(), 1, "{:?}", server.commands());
    assert_eq!(
        server
            .commands()
            .iter()
            .filter(|c| c.starts_with("LOGIN"))
            .count(),
        1
    );
    assert!(maildir_messages(&a).is_empty());
    drop(server);

    // The next run, the allowance back: everything once, nothing lost.
    let server = FakeImap::builder_str(&script, &dir).on_port(port).start();
    let r = run(t, &text, &["--json"], 20);
    assert_eq!(r.code, 0, "{r:#?}");
    assert_eq!(r.job("first")["status"], "ok");
    assert_eq!(r.job("first")["report"]["fetched"], 5);
    assert_eq!(r.job("second")["report"]["fetched"], 5);
    assert_eq!(maildir_sorted(&a), case27_mail());
    assert_eq!(maildir_sorted(&b), case27_mail());
    assert_eq!(server.connections(), 2);
}

#[test]
fn office365_not_connected_ends_try_later_and_inuse_unavailable_at_login_are_retried() {
    let (script, dir) = case27_script();
    // Office 365's answer to SELECT when the mailbox's allowance is used up.
    let server = FakeImap::builder_str(&script, &dir)
        .fault(Fault::Reply {
            command: "SELECT".into(),
            nth: 1,
            reply: Reply::No("User is authenticated but not connected.".into()),
        })
        .start();
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let a = t.join("a");
    let text = imap_backups(&server.addr(), &[("o365", &a)], "retries = 3\n");
    let r = run(t, &text, &[], 20);
    assert_eq!(r.code, 4, "{r:#?}");
    assert_eq!(server.connections(), 1);
    assert!(
        r.stdout.contains("o365: try later: the server asked not to be bothered in this run; the next run goes on from here\n"),
        "{r:#?}"
    );
    let lines: Vec<&str> = r.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{r:#?}");
    assert!(
        lines[0].contains("the account used up its bandwidth or command allowance (`NO User is authenticated but not connected.` to EXAMINE"),
        "{r:#?}"
    );
    assert!(maildir_messages(&a).is_empty());
    let port = server.port();
    drop(server);
    // The next run converges.
    let server = FakeImap::builder_str(&script, &dir).on_port(port).start();
    let r = run(t, &text, &["--json"], 20);
    assert_eq!(r.code, 0, "{r:#?}");
    assert_eq!(r.job("o365")["report"]["fetched"], 5);
    assert_eq!(maildir_sorted(&a), case27_mail());
    drop(server);

    // `[INUSE]` then `[UNAVAILABLE]` at LOGIN: temporary (exit 4), retried, then done.
    let server = FakeImap::builder_str(&script, &dir)
        .fault(Fault::Reply {
            command: "LOGIN".into(),
            nth: 1,
            reply: Reply::No("[INUSE] Mailbox is locked by another session".into()),
        })
        .fault(Fault::Reply {
            command: "LOGIN".into(),
            nth: 2,
            reply: Reply::No("[UNAVAILABLE] Server too busy".into()),
        })
        .start();
    let b = t.join("b");
    let text = imap_backups(&server.addr(), &[("busy", &b)], "retries = 3\n");
    let r = run(t, &text, &["--json"], 20);
    assert_eq!(r.code, 0, "{r:#?}");
    let j = r.job("busy");
    assert_eq!(
        (j["attempts"].as_u64(), j["status"].as_str()),
        (Some(3), Some("ok"))
    );
    let errors: Vec<&str> = j["retried"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["error"].as_str().unwrap())
        .collect();
    assert_eq!(errors.len(), 2);
    assert!(errors[0].contains("the mailbox is in use by another session (`NO [INUSE] Mailbox is locked by another session` to LOGIN); try again later"), "{errors:?}");
    assert!(errors[1].contains("the server is temporarily unavailable (`NO [UNAVAILABLE] Server too busy` to LOGIN); try again later"), "{errors:?}");
    assert_eq!(maildir_sorted(&b), case27_mail());
}

/// The POP3 wire form of a message (RFC 1939 3): CRLF line ends, dot-stuffing, final `.`.
fn pop_wire(eml: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for line in normalize(eml).split_inclusive(|&b| b == b'\n') {
        if line.starts_with(b".") {
            out.push(b'.');
        }
        out.extend_from_slice(&line[..line.len() - 1]);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b".\r\n");
    out
}

/// A POP3 session whose CAPA announces `LOGIN-DELAY delay`; `refuse`: PASS gets
/// `-ERR [LOGIN-DELAY] ...`, else the maildrop of `msgs` `(uidl, file, octets)`.
fn pop_session(msgs: &[(String, String, u64)], delay: u64, refuse: bool) -> String {
    pop_session_with(
        msgs,
        delay,
        refuse.then_some("[LOGIN-DELAY] Please wait between logins"),
    )
}

/// [`pop_session`] with PASS refused by `-ERR <refusal>` when given.
fn pop_session_with(msgs: &[(String, String, u64)], delay: u64, refusal: Option<&str>) -> String {
    let total: u64 = msgs.iter().map(|m| m.2).sum();
    let mut s = String::from("S: +OK POP3 fake ready\n");
    s += &format!("C: CAPA\nS: +OK capability list follows\nS: USER\nS: UIDL\nS: TOP\nS: RESP-CODES\nS: LOGIN-DELAY {delay}\nS: .\n");
    s += "C: USER alice\nS: +OK\n";
    if let Some(refusal) = refusal {
        s += &format!("C: PASS secret\nS: -ERR {refusal}\n");
        s += "C: QUIT\nS: +OK bye\n";
        return s;
    }
    s += "C: PASS secret\nS: +OK\n";
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

fn pop_config(addr: &str, jobs: &[(&str, &Path)]) -> String {
    let mut text = format!(
        "retries = 3\n\n[accounts.pop]\nendpoint = \"pop3://alice@{addr}\"\npassword_env = \"FAKE_PW\"\nallow_plaintext = true\n"
    );
    for (name, archive) in jobs {
        text.push_str(&format!(
            "\n[jobs.{name}]\nkind = \"backup\"\naccount = \"pop\"\narchive = \"maildir:{}\"\n",
            archive.display()
        ));
    }
    text
}

#[test]
fn pop3_login_delay_in_run_is_waited_out_when_short_and_try_later_when_long() {
    let wires = tempfile::tempdir().unwrap();
    let mail = case27_mail();
    let msgs: Vec<(String, String, u64)> = mail
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let file = format!("m{}.pop-wire", i + 1);
            fs::write(wires.path().join(&file), pop_wire(m)).unwrap();
            (format!("DELAY-{i}"), file, m.len() as u64)
        })
        .collect();
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();

    // CAPA `LOGIN-DELAY 1`, retries 400 ms apart: the budget (0.4 + 1.6 + 6 s) holds the
    // 1 s window, so the job waits exactly that and logs in again.
    let script = format!(
        "SESSION 1\n{}SESSION 2\n{}",
        pop_session(&msgs, 1, true),
        pop_session(&msgs, 1, false)
    );
    let server = FakeServer::pop3_from_str(&script, wires.path());
    let a = t.join("a");
    let r = run(
        t,
        &pop_config(&server.addr(), &[("pop", &a)]),
        &["--json"],
        400,
    );
    assert_eq!(r.code, 0, "{r:#?}");
    let j = r.job("pop");
    assert_eq!(
        (j["attempts"].as_u64(), j["status"].as_str()),
        (Some(2), Some("ok")),
        "{j:#}"
    );
    assert_eq!(j["retried"][0]["wait_secs"].as_f64(), Some(1.0), "{j:#}");
    assert!(
        j["retried"][0]["error"]
            .as_str()
            .unwrap()
            .ends_with("the server is temporarily unavailable: it allows one login every 1 s (`-ERR [LOGIN-DELAY] Please wait between logins` to PASS, RFC 2449 8.1.2); retry after 1 s"),
        "{j:#}"
    );
    assert_eq!(maildir_sorted(&a), mail);
    assert_eq!(server.connections(), 2);
    drop(server);

    // After a login that succeeded, the CAPA window still holds: a second job of the same
    // account waits it out before it logs in.
    let script = pop_session(&msgs, 1, false);
    let server = FakeServer::pop3_from_str(&script, wires.path());
    let (d1, d2) = (t.join("d1"), t.join("d2"));
    let text = pop_config(&server.addr(), &[("one", &d1), ("two", &d2)]);
    let r = run(t, &text, &["--json"], 400);
    assert_eq!(r.code, 0, "{r:#?}");
    assert_eq!(r.job("one")["report"]["login_delay_secs"], 1);
    let two = r.job("two");
    assert_eq!(
        (two["attempts"].as_u64(), two["status"].as_str()),
        (Some(1), Some("ok"))
    );
    assert!(two["duration_secs"].as_f64().unwrap() >= 0.9, "{two:#}");
    assert_eq!(maildir_sorted(&d1), mail);
    assert_eq!(maildir_sorted(&d2), mail);
    assert_eq!(server.connections(), 2);
    drop(server);

    // CAPA `LOGIN-DELAY 900`: far beyond the budget. The job ends "try later" at once, the
    // next job of the account does not log in at all.
    let script = pop_session(&msgs, 900, true);
    let server = FakeServer::pop3_from_str(&script, wires.path());
    let (b, c) = (t.join("b"), t.join("c"));
    let text = pop_config(&server.addr(), &[("pop", &b), ("pop2", &c)]);
    let r = run(t, &text, &[], 20);
    assert_eq!(r.code, 4, "{r:#?}");
    assert_eq!(server.connections(), 1);
    assert_eq!(
        r.stdout,
        "pop: try later: the server asked not to be bothered in this run; the next run goes on from here\npop2: try later: the server asked not to be bothered in this run; the next run goes on from here\n",
        "{r:#?}"
    );
    let lines: Vec<&str> = r.stderr.lines().collect();
    assert_eq!(lines.len(), 2, "{r:#?}");
    assert!(
        lines[0].starts_with("mailkeep: job pop: alice@127.0.0.1:"),
        "{r:#?}"
    );
    assert!(lines[0].ends_with("the server is temporarily unavailable: it allows one login every 900 s (`-ERR [LOGIN-DELAY] Please wait between logins` to PASS, RFC 2449 8.1.2); retry after 900 s"), "{r:#?}");
    assert!(
        lines[1].starts_with("mailkeep: job pop2: no login to alice@127.0.0.1:"),
        "{r:#?}"
    );
    assert!(
        lines[1].contains(" (the server allows no new login yet; retry after 9"),
        "{r:#?}"
    );
    assert!(!b.join("cur").exists() || maildir_messages(&b).is_empty());
}

#[test]
fn an_old_pop3_daemons_mailbox_locked_at_pass_is_retried_not_taken_for_a_wrong_password() {
    let wires = tempfile::tempdir().unwrap();
    let mail = case27_mail();
    let msgs: Vec<(String, String, u64)> = mail
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let file = format!("m{}.pop-wire", i + 1);
            fs::write(wires.path().join(&file), pop_wire(m)).unwrap();
            (format!("LOCK-{i}"), file, m.len() as u64)
        })
        .collect();
    // qpopper and friends: no response code, only words.
    let script = format!(
        "SESSION 1\n{}SESSION 2\n{}",
        pop_session_with(&msgs, 0, Some("Mailbox locked by another session")),
        pop_session_with(&msgs, 0, None)
    );
    let server = FakeServer::pop3_from_str(&script, wires.path());
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let a = t.join("a");
    let r = run(
        t,
        &pop_config(&server.addr(), &[("pop", &a)]),
        &["--json"],
        20,
    );
    assert_eq!(r.code, 0, "{r:#?}");
    let j = r.job("pop");
    assert_eq!(
        (j["attempts"].as_u64(), j["status"].as_str()),
        (Some(2), Some("ok")),
        "{j:#}"
    );
    assert_eq!(j["retried"][0]["exit_code"], 4, "{j:#}");
    assert!(
        j["retried"][0]["error"].as_str().unwrap().ends_with(
            "the server is temporarily unavailable (`-ERR Mailbox locked by another session` to PASS); try again later"
        ),
        "{j:#}"
    );
    assert_eq!(maildir_sorted(&a), mail);
    // A plain wrong password is still exit 3, and not retried.
    let script = pop_session_with(&msgs, 0, Some("Authentication failed"));
    let server = FakeServer::pop3_from_str(&script, wires.path());
    let r = run(
        t,
        &pop_config(&server.addr(), &[("pop", &t.join("b"))]),
        &["--json"],
        20,
    );
    assert_eq!(r.code, 3, "{r:#?}");
    assert_eq!(r.job("pop")["attempts"], 1);
    assert_eq!(server.connections(), 1);
}

#[test]
fn a_prune_after_a_failed_backup_of_its_archive_is_skipped_in_one_line() {
    let (script, dir) = case27_script();
    let server = FakeImap::from_str(&script, &dir);
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let a = t.join("a");
    // A first run fills the archive.
    let text = imap_backups(&server.addr(), &[("fill", &a)], "");
    assert_eq!(run(t, &text, &[], 20).code, 0);
    let before = support::run::snapshot(&a);
    let connections = server.connections();
    // Then: a backup into it from an account that is down, and a prune of it.
    let down = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let text = format!(
        "retries = 0\n\n[accounts.down]\nendpoint = \"imap://alice@127.0.0.1:{down}\"\npassword_env = \"FAKE_PW\"\nallow_plaintext = true\n\n[accounts.mail]\nendpoint = \"imap://alice@{}\"\npassword_env = \"FAKE_PW\"\nallow_plaintext = true\n\n[jobs.nightly]\nkind = \"backup\"\naccount = \"down\"\narchive = \"maildir:{}\"\n\n[jobs.tidy]\nkind = \"prune\"\naccount = \"mail\"\narchive = \"maildir:{}\"\nolder_than = \"1d\"\nyes = true\n",
        server.addr(),
        a.display(),
        a.display()
    );
    let r = run(t, &text, &["--json"], 20);
    assert_eq!(r.code, 4, "{r:#?}");
    assert_eq!(r.job("nightly")["status"], "failed");
    let tidy = r.job("tidy");
    assert_eq!(
        (
            tidy["status"].as_str(),
            tidy["attempts"].as_u64(),
            tidy["exit_code"].as_u64()
        ),
        (Some("skipped"), Some(0), Some(1)),
        "{tidy:#}"
    );
    let line = format!(
        "not deleting anything on the strength of {}: job nightly ended failed earlier in this run",
        a.display()
    );
    assert_eq!(tidy["error"], line.as_str());
    assert!(
        r.stderr
            .lines()
            .any(|l| l == format!("mailkeep: job tidy: {line}")),
        "{r:#?}"
    );
    // The prune neither connected nor changed the archive.
    assert_eq!(server.connections(), connections);
    assert_eq!(support::run::snapshot(&a), before);
    assert_eq!(maildir_sorted(&a), case27_mail());
}

#[test]
fn breaker_a_prune_naming_the_failed_backups_archive_another_way_is_skipped_too() {
    // The backup job writes `<t>/a`; the prune names the same archive through a symbolic link
    // to its folder (`<t>/link/a`, as `/home` -> `/usr/home`) or with `..` in it: the same
    // archive, so the prune must be skipped after the backup failed.
    let (script, dir) = case27_script();
    let server = FakeImap::from_str(&script, &dir);
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let a = t.join("a");
    let text = imap_backups(&server.addr(), &[("fill", &a)], "");
    assert_eq!(run(t, &text, &[], 20).code, 0);
    std::os::unix::fs::symlink(t, t.join("link")).unwrap();
    fs::create_dir(t.join("sub")).unwrap();
    let down = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    for other in [t.join("link").join("a"), t.join("sub").join("..").join("a")] {
        let before = support::run::snapshot(&a);
        let connections = server.connections();
        let text = format!(
            "retries = 0\n\n[accounts.down]\nendpoint = \"imap://alice@127.0.0.1:{down}\"\npassword_env = \"FAKE_PW\"\nallow_plaintext = true\n\n[accounts.mail]\nendpoint = \"imap://alice@{}\"\npassword_env = \"FAKE_PW\"\nallow_plaintext = true\n\n[jobs.nightly]\nkind = \"backup\"\naccount = \"down\"\narchive = \"maildir:{}\"\n\n[jobs.tidy]\nkind = \"prune\"\naccount = \"mail\"\narchive = \"maildir:{}\"\nolder_than = \"1d\"\nyes = true\n",
            server.addr(),
            a.display(),
            other.display()
        );
        let r = run(t, &text, &["--json"], 20);
        assert_eq!(r.job("nightly")["status"], "failed", "{r:#?}");
        assert_eq!(
            r.job("tidy")["status"].as_str(),
            Some("skipped"),
            "{}: {r:#?}",
            other.display()
        );
        assert_eq!(server.connections(), connections, "{}", other.display());
        assert_eq!(support::run::snapshot(&a), before);
    }
}

#[test]
fn breaker_a_restore_killed_after_overquota_then_rerun_with_room_holds_each_message_once() {
    // A restore into a full account, killed after each ledger event in turn (as kill -9
    // would), rerun while still full, then rerun once the quota is raised: the target holds
    // each message exactly once.
    let d = quota_dovecot();
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let msgs: Vec<Vec<u8>> = (1..=15).map(|i| sized(i, 1000)).collect();
    let archive = eml_dir(&t.join("eml"), &msgs);
    for n in 0..4u32 {
        let u = d.add_user(&format!("kill{n}"), "secret");
        d.set_user_fields(&u, "userdb_quota_rule=*:storage=10K");
        let state = t.join(format!("state{n}"));
        let out = support::mailkeep()
            .args(["restore", &archive, &d.url("imaps", &u), "--tls-ca"])
            .arg(&d.ca_pem)
            .args(["--password-env", PW_VAR, "--jobs", "2"])
            .env(PW_VAR, &u.password)
            .env("XDG_STATE_HOME", &state)
            .env("MAILKEEP_TEST_KILL_AFTER_EVENTS", n.to_string())
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let killed = Run::from_output(out);
        let full = restore(&d, &u, &archive, &state, &["--json", "--jobs", "2"]);
        assert_eq!(full.code, 1, "n={n} killed: {killed:#?}\nfull: {full:#?}");
        assert_eq!(inbox(&u), sorted(msgs[..10].to_vec()), "n={n}: {full:#?}");
        d.set_user_fields(&u, "userdb_quota_rule=*:storage=1M");
        let done = restore(&d, &u, &archive, &state, &["--json", "--jobs", "2"]);
        assert_eq!(done.code, 0, "n={n}: {done:#?}");
        assert_eq!(inbox(&u), sorted(msgs.clone()), "n={n}: {done:#?}");
    }
}

#[test]
fn a_prune_after_a_backup_that_never_started_is_skipped_too() {
    // Job `first` ends try-later on a long LOGIN-DELAY; job `second` (the same account, into
    // archive c) is not even started; job `tidy` prunes archive c through another account: it
    // must be skipped, as after a backup that failed.
    let wires = tempfile::tempdir().unwrap();
    let mail = case27_mail();
    let msgs: Vec<(String, String, u64)> = mail
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let file = format!("m{}.pop-wire", i + 1);
            fs::write(wires.path().join(&file), pop_wire(m)).unwrap();
            (format!("DELAY-{i}"), file, m.len() as u64)
        })
        .collect();
    let pop = FakeServer::pop3_from_str(&pop_session(&msgs, 900, true), wires.path());
    let (script, dir) = case27_script();
    let imap = FakeImap::from_str(&script, &dir);
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let (b, c) = (t.join("b"), t.join("c"));
    let text = format!(
        "{}\n[accounts.mail]\nendpoint = \"imap://alice@{}\"\npassword_env = \"FAKE_PW\"\nallow_plaintext = true\n\n[jobs.tidy]\nkind = \"prune\"\naccount = \"mail\"\narchive = \"maildir:{}\"\nolder_than = \"1d\"\nyes = true\n",
        pop_config(&pop.addr(), &[("first", &b), ("second", &c)]),
        imap.addr(),
        c.display()
    );
    let r = run(t, &text, &["--json"], 20);
    assert_eq!(r.code, 4, "{r:#?}");
    assert_eq!(r.job("first")["status"], "try-later", "{r:#?}");
    let second = r.job("second");
    assert_eq!(
        (second["status"].as_str(), second["attempts"].as_u64()),
        (Some("try-later"), Some(0)),
        "{second:#}"
    );
    let tidy = r.job("tidy");
    assert_eq!(
        (tidy["status"].as_str(), tidy["attempts"].as_u64()),
        (Some("skipped"), Some(0)),
        "{tidy:#}"
    );
    assert_eq!(
        tidy["error"].as_str(),
        Some(
            format!(
                "not deleting anything on the strength of {}: job second ended try-later earlier in this run",
                c.display()
            )
            .as_str()
        )
    );
    assert_eq!(pop.connections(), 1);
    assert_eq!(imap.connections(), 0);
}

/// A fake IMAP source with INBOX holding `msgs` (UID, body); one FETCH block serves every
/// FETCH (the listing and each body FETCH replay it).
fn fetch_source(dir: &Path, msgs: &[(u32, &str)]) -> String {
    fs::create_dir_all(dir).unwrap();
    let next = msgs.iter().map(|m| m.0).max().unwrap_or(0) + 1;
    let mut s = String::from("S: * OK [CAPABILITY IMAP4rev1] ready\n");
    s += "C: TAG LOGIN <user> <password>\nS: TAG OK LOGIN completed\n";
    s += &format!(
        "C: TAG SELECT INBOX\nS: * {} EXISTS\nS: * OK [UIDVALIDITY 1000] UIDs valid\nS: * OK [UIDNEXT {next}] next\nS: TAG OK SELECT completed\n",
        msgs.len()
    );
    s += "C: TAG UID FETCH <set> (<items>)\n";
    for (i, (uid, body)) in msgs.iter().enumerate() {
        let file = format!("m{uid}.eml");
        fs::write(dir.join(&file), body).unwrap();
        let len = body.len();
        s += &format!(
            "S: * {} FETCH (UID {uid} FLAGS (\\Seen) INTERNALDATE \"04-Mar-2014 10:00:00 +0100\" RFC822.SIZE {len} BODY[] {{{len}}}\nS+ {file}\nS: )\n",
            i + 1
        );
    }
    s + "S: TAG OK FETCH completed\n"
}

#[test]
fn a_migration_copies_the_messages_around_one_the_source_cannot_send() {
    // The source refuses the whole batch because one mail file is damaged: each message is
    // asked for alone, the others are copied, and the damaged one is the only failure.
    let t = tempfile::tempdir().unwrap();
    let msgs: Vec<(u32, String)> = (1..=3)
        .map(|i| {
            (
                i,
                format!("From: a@example.org\r\nSubject: m{i}\r\nMessage-ID: <m{i}@damaged>\r\n\r\nbody {i}\r\n"),
            )
        })
        .collect();
    let refs: Vec<(u32, &str)> = msgs.iter().map(|(u, b)| (*u, b.as_str())).collect();
    let src_dir = t.path().join("s");
    let script = fetch_source(&src_dir, &refs);
    let src = FakeImap::builder_str(&script, &src_dir)
        .fault(Fault::Damaged {
            uid: 2,
            text: "[SERVERBUG] Internal error".into(),
            others: false,
        })
        .start();
    let tgt_dir = t.path().join("t");
    fs::create_dir_all(&tgt_dir).unwrap();
    let tgt = FakeImap::from_str(
        "S: * OK [CAPABILITY IMAP4rev1 UIDPLUS] target ready\n\
         C: TAG LOGIN <user> <password>\nS: TAG OK LOGIN completed\n\
         C: TAG SELECT INBOX\nS: * 0 EXISTS\nS: * OK [UIDVALIDITY 9] UIDs valid\nS: * OK [UIDNEXT 1] next\nS: TAG OK [READ-WRITE] SELECT completed\n",
        &tgt_dir,
    );
    let out = support::mailkeep()
        .arg("migrate")
        .arg(format!("imap://alice@{}", src.addr()))
        .arg(format!("imap://bob@{}", tgt.addr()))
        .args(["--source-allow-plaintext", "--target-allow-plaintext"])
        .args(["--timeout", "30"])
        .args([
            "--source-password-env",
            PW_VAR,
            "--target-password-env",
            PW_VAR,
        ])
        .env(PW_VAR, "secret")
        .env("XDG_STATE_HOME", t.path().join("state"))
        .output()
        .unwrap();
    let run = Run::from_output(out);
    run.assert_code(1);
    let appended: Vec<Vec<u8>> = tgt.appends().into_iter().map(|a| a.bytes).collect();
    assert_eq!(
        appended,
        [msgs[0].1.as_bytes().to_vec(), msgs[2].1.as_bytes().to_vec()]
    );
    assert_eq!(
        run.stderr,
        format!(
            "mailkeep: INBOX: alice@{} INBOX UID 2: refused by the server: `NO [SERVERBUG] Internal error` to UID FETCH 2 (UID FLAGS INTERNALDATE RFC822.SIZE BODY.PEEK[]); the next run tries again\n",
            src.addr()
        ),
        "{run:#?}"
    );
    let fetches: Vec<String> = src
        .commands()
        .into_iter()
        .filter(|c| c.contains("BODY.PEEK"))
        .map(|c| c.split(" (").next().unwrap().to_string())
        .collect();
    assert_eq!(
        fetches,
        ["UID FETCH 1:3", "UID FETCH 1", "UID FETCH 2", "UID FETCH 3"]
    );
}
