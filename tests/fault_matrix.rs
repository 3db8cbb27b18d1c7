//! The fault-injection matrix (issue 7): the real `mailkeep` binary against the scripted fake
//! servers (tests/support/fake_server.rs for POP3, tests/support/fake_imap.rs for IMAP), one
//! injected fault per row.
//!
//! Every row runs, for a Maildir and an mbox archive:
//! 1. a seed run against a healthy server holding only the first message (so something is
//!    already stored when the fault hits);
//! 2. the faulty run, which must exit with the row's documented code (README "Exit codes"),
//!    print exactly one error line (warnings aside) naming the account and, for a fault about a
//!    message, the mailbox and UID (IMAP) or UIDL (POP3), and no panic or backtrace; what the
//!    seed run stored must be byte-identical afterwards (Maildir files; the mbox file starts
//!    with its earlier bytes), the archive must hold only complete messages of the clean run,
//!    each once, no staged file may be left, and the ledger's rows must be a subset of the
//!    clean run's;
//! 3. a rerun against the healthy server, which must exit 0 and leave exactly the clean run's
//!    archive: the same messages (0 lost, 0 duplicated) and the same ledger rows.
//!
//! The clean run is a fresh archive backed up from the healthy server in one go.
//!
//! The restore family (`imap_restore_target_faults`) restores a clean IMAP backup into a fake
//! target (INBOX, UIDVALIDITY 9, UIDNEXT 50) with one fault per row: exit code, one error line
//! naming the account and the mailbox (and the archive file of a refused message), the archive
//! unchanged, the uploads ledger (`$XDG_STATE_HOME/mailkeep/uploads.sqlite`) trusting exactly
//! the expected APPENDUIDs (none of another UIDVALIDITY, 0, below UIDNEXT or repeated), and a
//! rerun against a healthy target that appends exactly the messages not recorded (0
//! duplicated).
//!
//! Already covered elsewhere through the binary (not repeated here): a drop at byte 100 of a
//! RETR and kill/stall/resume (tests/pop3_faults.rs), dropped FETCH connections and a
//! throttling NO retried by `mailkeep run` (tests/run_jobs.rs), a UIDVALIDITY change between
//! runs (tests/imap_cases.rs case 13); APPENDUID missing/swapped and BYE mid-APPEND are also
//! tested on the client API (tests/imap_append.rs case 16, case 23).
//!
//! Rows run in parallel threads; stall rows use `--timeout 2`. Rows marked `KNOWN` describe
//! behaviour the IMAP body FETCH reader (`ImapClient::fetch_bodies`) must have and does not yet;
//! they are listed but only run with `MAILKEEP_FAULT_MATRIX_KNOWN=1`.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use support::fake_imap::{Cut, FakeImap, FakeImapBuilder, Fault, Reply};
use support::fake_server::{CutFile, FakeServer};
use support::run::mbox_messages;

const PW: &str = "MAILKEEP_FAULT_MATRIX_PW";
/// The `--timeout` of every run; a stalled server must be given up on after it.
const TIMEOUT_SECS: u64 = 2;
/// A faulty run must end within this (a stall row takes about `TIMEOUT_SECS`).
const RUN_BUDGET: Duration = Duration::from_secs(15);
const THREADS: usize = 6;

// ---------------------------------------------------------------------------------------------
// Archives

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Maildir,
    Mbox,
}

const KINDS: [Kind; 2] = [Kind::Maildir, Kind::Mbox];

impl Kind {
    fn endpoint(self, dir: &Path) -> String {
        match self {
            Kind::Maildir => format!("maildir:{}", dir.display()),
            Kind::Mbox => format!("mbox:{}", dir.display()),
        }
    }
}

/// One ledger row, without what differs between runs (times, file locations).
type Row = (String, String, String, i64, String);

/// What an archive holds.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Snapshot {
    /// Message files (Maildir `cur/`/`new/` files, mbox files) by path: their bytes.
    files: BTreeMap<String, Vec<u8>>,
    /// Every message stored, as bytes, sorted (a multiset).
    messages: Vec<Vec<u8>>,
    /// Files left in staging folders (Maildir `tmp/`, `mailkeep/spool`).
    staged: Vec<String>,
    /// The ledger's message rows: (identity, mailbox, sha256, size, flags).
    ledger: BTreeSet<Row>,
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, PathBuf)>) {
    let Ok(rd) = fs::read_dir(dir) else { return };
    for e in rd.flatten() {
        let p = e.path();
        let rel = p.strip_prefix(root).unwrap().display().to_string();
        if p.is_dir() {
            walk(root, &p, out);
        } else {
            out.push((rel, p));
        }
    }
}

fn snapshot(kind: Kind, dir: &Path) -> Snapshot {
    let mut all = Vec::new();
    walk(dir, dir, &mut all);
    let mut files = BTreeMap::new();
    let mut messages = Vec::new();
    let mut staged = Vec::new();
    for (rel, p) in all {
        let parent = p
            .parent()
            .and_then(|d| d.file_name())
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if rel.starts_with("mailkeep/") {
            if rel.starts_with("mailkeep/spool/") {
                staged.push(rel);
            }
            continue;
        }
        match kind {
            Kind::Maildir if parent == "tmp" => staged.push(rel),
            Kind::Maildir if parent == "cur" || parent == "new" => {
                let bytes = fs::read(&p).unwrap();
                messages.push(bytes.clone());
                files.insert(rel, bytes);
            }
            Kind::Mbox if rel.ends_with(".mbox") => {
                messages.extend(mbox_messages(&p));
                files.insert(rel, fs::read(&p).unwrap());
            }
            _ => {}
        }
    }
    messages.sort();
    Snapshot {
        files,
        messages,
        staged,
        ledger: ledger_rows(dir),
    }
}

fn ledger_rows(dir: &Path) -> BTreeSet<Row> {
    let path = dir.join("mailkeep/ledger.sqlite");
    if !path.exists() {
        return BTreeSet::new();
    }
    let db = rusqlite::Connection::open_with_flags(
        format!("file:{}?immutable=1", path.display()),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_URI,
    )
    .unwrap();
    let mut st = db
        .prepare("SELECT identity, mailbox, sha256, size, flags FROM messages")
        .unwrap();
    let rows = st
        .query_map([], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })
        .unwrap()
        .map(Result::unwrap)
        .collect();
    rows
}

fn short(msgs: &[Vec<u8>]) -> Vec<String> {
    msgs.iter()
        .map(|m| {
            let t = String::from_utf8_lossy(m);
            let subject = t
                .lines()
                .find(|l| l.starts_with("Subject:"))
                .unwrap_or("(no subject)");
            format!("{subject} [{} bytes]", m.len())
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Runs

struct Ran {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    elapsed: Duration,
}

impl std::fmt::Debug for Ran {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {:?} after {:?}\n--- stdout:\n{}\n--- stderr:\n{}",
            self.code, self.elapsed, self.stdout, self.stderr
        )
    }
}

impl Ran {
    /// stderr lines that are not warnings.
    fn error_lines(&self) -> Vec<&str> {
        self.stderr
            .lines()
            .filter(|l| !l.trim().is_empty() && !l.starts_with("mailkeep: warning: "))
            .collect()
    }
}

/// Runs `mailkeep backup <source> <archive>` with a password from the environment, `--json` and
/// `--timeout 2`, plus `extra`.
fn backup(source: &str, kind: Kind, dir: &Path, extra: &[&str]) -> Ran {
    let mut c = Command::new(env!("CARGO_BIN_EXE_mailkeep"));
    c.arg("backup")
        .arg(source)
        .arg(kind.endpoint(dir))
        .args(["--password-env", PW, "--json"])
        .args(["--timeout", &TIMEOUT_SECS.to_string()])
        .args(extra)
        .env(PW, "secret")
        .env_remove("MAILKEEP_TEST_KILL_AFTER_EVENTS")
        .env_remove("RUST_BACKTRACE")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let start = Instant::now();
    let out = c.output().expect("run mailkeep");
    Ran {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        elapsed: start.elapsed(),
    }
}

/// What a faulty run must do.
#[derive(Debug, Clone)]
struct Expect {
    code: i32,
    /// Exit 0 only: a warning must contain this, and the archive may still miss messages
    /// (the rerun must bring them); without it, exit 0 means the archive is complete.
    warning: Option<&'static str>,
    /// Texts the one error line must contain (besides the account); empty for exit 0.
    needles: Vec<String>,
}

fn expect(code: i32, needles: &[&str]) -> Expect {
    Expect {
        code,
        warning: None,
        needles: needles.iter().map(|s| s.to_string()).collect(),
    }
}

/// The checks of one faulty run (see the module documentation). Returns the error line.
#[track_caller]
#[allow(clippy::too_many_arguments)]
fn check_faulty(
    row: &str,
    kind: Kind,
    account: &str,
    ran: &Ran,
    want: &Expect,
    before: &Snapshot,
    after: &Snapshot,
    clean: &Snapshot,
) -> String {
    let what = format!("row `{row}` ({kind:?})");
    assert!(
        ran.elapsed < RUN_BUDGET,
        "{what}: took {:?} (timeout not enforced?): {ran:?}",
        ran.elapsed
    );
    for bad in ["panicked", "RUST_BACKTRACE", "stack backtrace"] {
        assert!(
            !ran.stderr.contains(bad),
            "{what}: {bad} on stderr: {ran:?}"
        );
    }
    assert_eq!(ran.code, Some(want.code), "{what}: exit code: {ran:?}");
    let lines = ran.error_lines();
    let line = if want.code == 0 {
        assert!(lines.is_empty(), "{what}: exit 0 with errors: {ran:?}");
        String::new()
    } else {
        assert_eq!(lines.len(), 1, "{what}: exactly one error line: {ran:?}");
        let line = lines[0].to_string();
        assert!(line.starts_with("mailkeep: "), "{what}: {line}");
        for n in std::iter::once(account).chain(want.needles.iter().map(String::as_str)) {
            assert!(
                line.contains(n),
                "{what}: the error line lacks {n:?}: {line}"
            );
        }
        line
    };
    // Nothing stored before is damaged.
    for (path, bytes) in &before.files {
        let now = after
            .files
            .get(path)
            .unwrap_or_else(|| panic!("{what}: {path} vanished"));
        match kind {
            Kind::Maildir => assert!(now == bytes, "{what}: {path} changed"),
            Kind::Mbox => assert!(
                now.starts_with(bytes),
                "{what}: {path} ({} bytes) no longer starts with its earlier {} bytes",
                now.len(),
                bytes.len()
            ),
        }
    }
    // Only complete messages of the clean run, each once.
    for (i, m) in after.messages.iter().enumerate() {
        assert!(
            clean.messages.contains(m),
            "{what}: stored message not in the clean archive: {:?}; archive {:?}",
            short(std::slice::from_ref(m)),
            short(&after.messages)
        );
        assert!(
            i == 0 || after.messages[i - 1] != *m,
            "{what}: stored twice: {:?}",
            short(std::slice::from_ref(m))
        );
    }
    assert!(
        after.staged.is_empty(),
        "{what}: staged files left: {:?}",
        after.staged
    );
    assert!(
        after.ledger.is_subset(&clean.ledger),
        "{what}: ledger rows not in the clean run's: {:?}",
        after.ledger.difference(&clean.ledger).collect::<Vec<_>>()
    );
    assert_eq!(
        after.ledger.len(),
        after.messages.len(),
        "{what}: ledger rows vs stored messages"
    );
    if let Some(w) = want.warning {
        assert!(
            ran.stderr
                .lines()
                .any(|l| l.starts_with("mailkeep: warning: ")
                    && l.contains(w)
                    && l.contains(account)),
            "{what}: no warning naming {w:?}: {ran:?}"
        );
    } else if want.code == 0 {
        // A fault that is survived leaves the complete archive.
        assert!(
            after.messages == clean.messages && after.ledger == clean.ledger,
            "{what}: exit 0 but the archive is not the clean run's: {:?}",
            short(&after.messages)
        );
    }
    line
}

#[track_caller]
fn check_rerun(row: &str, kind: Kind, ran: &Ran, after: &Snapshot, clean: &Snapshot) {
    let what = format!("row `{row}` ({kind:?}) rerun");
    assert_eq!(ran.code, Some(0), "{what}: {ran:?}");
    assert!(ran.error_lines().is_empty(), "{what}: {ran:?}");
    assert!(
        after.messages == clean.messages,
        "{what}: archive {:?}, clean run {:?}",
        short(&after.messages),
        short(&clean.messages)
    );
    assert_eq!(after.ledger, clean.ledger, "{what}: ledger rows");
    assert!(after.staged.is_empty(), "{what}: {:?}", after.staged);
}

/// One line of the results table, printed at the end of each family.
#[derive(Debug, Clone)]
struct Outcome {
    row: String,
    code: i32,
    line: String,
}

/// Runs `rows` on `threads` threads; panics listing every failed row.
fn run_rows<R: Sync>(
    rows: &[R],
    name: impl Fn(&R) -> String + Sync,
    f: impl Fn(&R) -> Outcome + Sync,
) {
    let next = Mutex::new(0usize);
    let results: Mutex<Vec<(String, Result<Outcome, String>)>> = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..THREADS {
            s.spawn(|| loop {
                let i = {
                    let mut n = next.lock().unwrap();
                    *n += 1;
                    *n - 1
                };
                let Some(r) = rows.get(i) else { return };
                let res =
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(r))).map_err(|p| {
                        p.downcast_ref::<String>()
                            .cloned()
                            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                            .unwrap_or_default()
                    });
                results.lock().unwrap().push((name(r), res));
            });
        }
    });
    let mut results = results.into_inner().unwrap();
    results.sort_by(|a, b| a.0.cmp(&b.0));
    let mut failed = Vec::new();
    for (row, r) in &results {
        match r {
            Ok(o) => eprintln!("ROW | {} | exit {} | {}", o.row, o.code, o.line),
            Err(e) => {
                eprintln!("ROW FAILED | {row} | {e}");
                failed.push(row.clone());
            }
        }
    }
    assert!(
        failed.is_empty(),
        "{} row(s) failed: {failed:?}",
        failed.len()
    );
}

fn known_rows_enabled() -> bool {
    std::env::var_os("MAILKEEP_FAULT_MATRIX_KNOWN").is_some()
}

// ---------------------------------------------------------------------------------------------
// Messages

/// Three messages with CRLF line ends: a short one, a longer one (a dot-stuffed line, a body
/// of some KiB), a short one.
fn messages() -> Vec<Vec<u8>> {
    let mut m2 = String::from(
        "From: Bob <bob@example.com>\r\nTo: alice@example.com\r\nSubject: two\r\n\
         Date: Tue, 07 Jan 2025 10:00:00 +0000\r\nMessage-ID: <two@example.com>\r\n\r\n",
    );
    for i in 0..60 {
        m2 += &format!("line {i:02} of the second message, long enough to matter.\r\n");
        if i == 30 {
            m2 += ".a line that starts with a dot\r\n";
        }
    }
    vec![
        b"From: Ann <ann@example.com>\r\nTo: alice@example.com\r\nSubject: one\r\n\
          Date: Mon, 06 Jan 2025 10:00:00 +0000\r\nMessage-ID: <one@example.com>\r\n\r\n\
          Hello.\r\n"
            .to_vec(),
        m2.into_bytes(),
        b"From: Cy <cy@example.com>\r\nTo: alice@example.com\r\nSubject: three\r\n\
          Date: Wed, 08 Jan 2025 10:00:00 +0000\r\nMessage-ID: <three@example.com>\r\n\r\n\
          Bye.\r\n"
            .to_vec(),
    ]
}

// ---------------------------------------------------------------------------------------------
// POP3

/// The POP3 wire form of a CRLF message (RFC 1939 3): dot-stuffed, with the `.` line.
fn pop_wire(eml: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for line in eml.split_inclusive(|&b| b == b'\n') {
        if line.starts_with(b".") {
            out.push(b'.');
        }
        out.extend_from_slice(line);
    }
    out.extend_from_slice(b".\r\n");
    out
}

fn uidl(i: usize) -> String {
    format!("FM-{:04}", i + 1)
}

/// A POP3 session serving `msgs` (indexes into [`messages`]): greeting, CAPA (USER UIDL TOP,
/// plus `extra_capa`), USER/PASS, UIDL, LIST, RETR, DELE, QUIT. `over` replaces the reply
/// steps of a command (`GREETING` for the greeting, `RETR 2`, `DELE 1`, ...).
fn pop_script(msgs: &[usize], extra_capa: &[&str], over: &[(&str, &str)]) -> String {
    let all = messages();
    let steps = |cmd: &str, default: String| -> String {
        match over.iter().find(|(c, _)| *c == cmd) {
            Some((_, s)) => format!("{}\n", s.trim_end()),
            None => default,
        }
    };
    let mut s = steps("GREETING", "S: +OK fake POP3 ready\n".into());
    let mut capa = String::from("S: +OK\nS: USER\nS: UIDL\nS: TOP\n");
    for c in extra_capa {
        capa += &format!("S: {c}\n");
    }
    capa += "S: .\n";
    s += &format!("C: CAPA\n{}", steps("CAPA", capa));
    s += &format!("C: STLS\n{}", steps("STLS", "S: -ERR not here\n".into()));
    s += &format!("C: USER alice\n{}", steps("USER", "S: +OK\n".into()));
    s += &format!(
        "C: PASS secret\n{}",
        steps("PASS", "S: +OK logged in\n".into())
    );
    let total: usize = msgs.iter().map(|&i| all[i].len()).sum();
    s += &format!(
        "C: STAT\n{}",
        steps("STAT", format!("S: +OK {} {total}\n", msgs.len()))
    );
    let mut u = String::from("S: +OK\n");
    let mut l = String::from("S: +OK\n");
    for (n, &i) in msgs.iter().enumerate() {
        u += &format!("S: {} {}\n", n + 1, uidl(i));
        l += &format!("S: {} {}\n", n + 1, all[i].len());
    }
    u += "S: .\n";
    l += "S: .\n";
    s += &format!("C: UIDL\n{}", steps("UIDL", u));
    s += &format!("C: LIST\n{}", steps("LIST", l));
    for (n, &i) in msgs.iter().enumerate() {
        let cmd = format!("RETR {}", n + 1);
        s += &format!(
            "C: {cmd}\n{}",
            steps(
                &cmd,
                format!("S: +OK {} octets\nS+ m{}.pop-wire\n", all[i].len(), i + 1)
            )
        );
        let cmd = format!("DELE {}", n + 1);
        s += &format!("C: {cmd}\n{}", steps(&cmd, "S: +OK deleted\n".into()));
    }
    s += &format!("C: QUIT\n{}", steps("QUIT", "S: +OK bye\n".into()));
    s
}

/// Writes the wire files into `dir`: `m<i>.pop-wire` and `m<i>.nodot` (without the `.` line).
fn write_pop_files(dir: &Path) {
    for (i, m) in messages().iter().enumerate() {
        let w = pop_wire(m);
        fs::write(dir.join(format!("m{}.pop-wire", i + 1)), &w).unwrap();
        fs::write(dir.join(format!("m{}.nodot", i + 1)), &w[..w.len() - 3]).unwrap();
    }
}

struct PopRow {
    name: String,
    /// Replaced replies, see [`pop_script`].
    over: Vec<(&'static str, String)>,
    extra_capa: Vec<&'static str>,
    cuts: Vec<CutFile>,
    /// Extra arguments of the faulty run and the rerun.
    args: Vec<&'static str>,
    /// Without `--allow-plaintext` in the faulty run.
    tls_required: bool,
    want: Expect,
}

fn pop_row(name: &str, over: &[(&'static str, &str)], code: i32, needles: &[&str]) -> PopRow {
    PopRow {
        name: name.into(),
        over: over.iter().map(|(c, s)| (*c, s.to_string())).collect(),
        extra_capa: Vec::new(),
        cuts: Vec::new(),
        args: Vec::new(),
        tls_required: false,
        want: expect(code, needles),
    }
}

fn pop_rows() -> Vec<PopRow> {
    let w2 = pop_wire(&messages()[1]).len();
    let u2 = uidl(1);
    let u2 = u2.as_str();
    let timeout = "timed out";
    let mut rows = vec![
        // The greeting.
        pop_row(
            "garbage greeting",
            &[("GREETING", "S: HELLO I AM NOT POP3")],
            7,
            &["neither +OK nor -ERR"],
        ),
        pop_row(
            "-ERR greeting",
            &[("GREETING", "S: -ERR too many connections")],
            7,
            &["-ERR too many connections"],
        ),
        pop_row(
            "greeting: 4 MiB line without CRLF, then close",
            &[("GREETING", "HUGE 4194304\nCLOSE")],
            7,
            &["longer than"],
        ),
        pop_row(
            "greeting: 4 MiB line without CRLF, then stall",
            &[("GREETING", "HUGE 4194304\nSTALL")],
            7,
            &["longer than"],
        ),
        pop_row(
            "greeting never sent (stall)",
            &[("GREETING", "STALL")],
            4,
            &[timeout],
        ),
        pop_row(
            "connection closed before the greeting",
            &[("GREETING", "CLOSE")],
            4,
            &["closed"],
        ),
        // Authorization.
        pop_row(
            "-ERR to CAPA (treated as no CAPA)",
            &[("CAPA", "S: -ERR what")],
            0,
            &[],
        ),
        pop_row(
            "-ERR to USER",
            &[("USER", "S: -ERR no such user")],
            3,
            &["no such user"],
        ),
        pop_row(
            "-ERR to PASS",
            &[("PASS", "S: -ERR [AUTH] wrong password")],
            3,
            &["wrong password"],
        ),
        pop_row(
            "-ERR [SYS/TEMP] to PASS",
            &[("PASS", "S: -ERR [SYS/TEMP] try later")],
            4,
            &["temporarily unavailable"],
        ),
        pop_row(
            "-ERR [IN-USE] to PASS",
            &[("PASS", "S: -ERR [IN-USE] locked")],
            4,
            &["temporarily unavailable"],
        ),
        pop_row(
            "no reply to PASS (stall)",
            &[("PASS", "STALL")],
            4,
            &[timeout],
        ),
        pop_row("closed after USER", &[("USER", "CLOSE")], 4, &[]),
        pop_row(
            "CAPA reply: 4 MiB line without CRLF",
            &[("CAPA", "S: +OK\nHUGE 4194304\nSTALL")],
            7,
            &["longer than"],
        ),
        pop_row(
            "no reply to CAPA (stall)",
            &[("CAPA", "STALL")],
            4,
            &[timeout],
        ),
        pop_row(
            "no reply to USER (stall)",
            &[("USER", "STALL")],
            4,
            &[timeout],
        ),
        // Listing.
        // The server announced UIDL in CAPA: a -ERR is an error, not "no UIDL" (falling back
        // to content keys would archive every message again once UIDL works).
        pop_row(
            "-ERR to UIDL (announced in CAPA)",
            &[("UIDL", "S: -ERR not now")],
            7,
            &["UIDL", "-ERR not now"],
        ),
        pop_row(
            "no reply to UIDL (stall)",
            &[("UIDL", "STALL")],
            4,
            &["UIDL", timeout],
        ),
        pop_row(
            "-ERR to LIST",
            &[("LIST", "S: -ERR cannot list")],
            7,
            &["LIST", "-ERR cannot list"],
        ),
        pop_row(
            "garbage in the LIST listing",
            &[("LIST", "S: +OK\nS: one hundred\nS: .")],
            7,
            &["LIST", "one hundred"],
        ),
        pop_row(
            "garbage in the UIDL listing",
            &[("UIDL", "S: +OK\nS: 1\nS: .")],
            7,
            &["UIDL"],
        ),
        pop_row(
            "LIST reply: 4 MiB line without CRLF",
            &[("LIST", "HUGE 4194304\nSTALL")],
            7,
            &["longer than"],
        ),
        pop_row(
            "no reply to LIST (stall)",
            &[("LIST", "STALL")],
            4,
            &[timeout],
        ),
        pop_row(
            "LIST listing never ends (stall)",
            &[("LIST", "S: +OK\nS: 1 10\nSTALL")],
            4,
            &[timeout],
        ),
        pop_row(
            "closed during the UIDL listing",
            &[("UIDL", "S: +OK\nS: 1 FM-0001\nCLOSE")],
            4,
            &["closed"],
        ),
        // RETR.
        pop_row(
            "-ERR to RETR 2 (message skipped, run partial)",
            &[("RETR 2", "S: -ERR no such message")],
            1,
            &["INBOX", u2, "-ERR no such message"],
        ),
        pop_row(
            "no reply to RETR 2 (stall)",
            &[("RETR 2", "STALL")],
            4,
            &["INBOX", u2, timeout],
        ),
        pop_row(
            "RETR 2: +OK then close",
            &[("RETR 2", "S: +OK\nCLOSE")],
            4,
            &["INBOX", u2],
        ),
        pop_row(
            "RETR 2: body without the terminating dot, then close",
            &[("RETR 2", "S: +OK\nS+ m2.nodot\nCLOSE")],
            4,
            &["INBOX", u2],
        ),
        pop_row(
            "RETR 2: body without the terminating dot, then stall",
            &[("RETR 2", "S: +OK\nS+ m2.nodot\nSTALL")],
            4,
            &["INBOX", u2, timeout],
        ),
        pop_row(
            "RETR 2: garbage status line",
            &[("RETR 2", "S: here it comes\nS+ m2.pop-wire")],
            7,
            &["INBOX", u2, "neither +OK nor -ERR"],
        ),
        pop_row(
            "RETR 2: 4 MiB line without CRLF in the body",
            &[("RETR 2", "S: +OK\nHUGE 4194304\nCLOSE")],
            4,
            &["INBOX", u2],
        ),
        // QUIT without deletions: everything is stored; the server's answer does not matter.
        pop_row(
            "-ERR to QUIT (no deletions asked)",
            &[("QUIT", "S: -ERR oops")],
            7,
            &["QUIT", "-ERR oops"],
        ),
        pop_row(
            "no reply to QUIT (stall)",
            &[("QUIT", "STALL")],
            4,
            &["QUIT", timeout],
        ),
    ];
    // Connection dropped at byte K of the RETR 2 body.
    for (label, k) in [
        ("in the headers", 20),
        ("in the body", w2 / 2),
        ("right before the terminating dot line", w2 - 3),
        ("after the dot, before its CRLF", w2 - 2),
    ] {
        let mut r = pop_row(
            &format!("drop at byte {k} of RETR 2 ({label})"),
            &[],
            4,
            &["INBOX", u2],
        );
        r.cuts = vec![CutFile::once("m2.pop-wire", k, Cut::Close)];
        rows.push(r);
    }
    let mut r = pop_row(
        "stall at byte 200 of RETR 2",
        &[],
        4,
        &["INBOX", u2, timeout],
    );
    r.cuts = vec![CutFile::once("m2.pop-wire", 200, Cut::Stall)];
    rows.push(r);
    // STLS.
    let mut r = pop_row(
        "-ERR to STLS without --allow-plaintext",
        &[("STLS", "S: -ERR TLS not available")],
        4,
        &["refusing to log in without TLS", "TLS not available"],
    );
    r.extra_capa = vec!["STLS"];
    r.tls_required = true;
    rows.push(r);
    let mut r = pop_row(
        "-ERR to STLS with --allow-plaintext (goes on in plain text)",
        &[("STLS", "S: -ERR TLS not available")],
        0,
        &[],
    );
    r.extra_capa = vec!["STLS"];
    rows.push(r);
    // Deletions (--delete-after-backup).
    for (name, over, code, needles) in [
        (
            "-ERR to DELE 2 (--delete-after-backup)",
            ("DELE 2", "S: -ERR cannot delete"),
            7,
            vec!["DELE 2", "-ERR cannot delete"],
        ),
        (
            "-ERR to QUIT after DELE (--delete-after-backup)",
            ("QUIT", "S: -ERR some deleted messages not removed"),
            7,
            vec!["QUIT", "not removed"],
        ),
        (
            "no reply to DELE 1 (stall, --delete-after-backup)",
            ("DELE 1", "STALL"),
            4,
            vec!["DELE", timeout],
        ),
        (
            "no reply to QUIT after DELE (stall, --delete-after-backup)",
            ("QUIT", "STALL"),
            4,
            vec!["QUIT", timeout],
        ),
    ] {
        let mut r = pop_row(name, &[over], code, &needles);
        r.args = vec!["--delete-after-backup"];
        rows.push(r);
    }
    rows
}

fn pop_source(server: &FakeServer) -> String {
    format!("pop3://alice@{}", server.addr())
}

#[test]
fn pop3_backup_faults() {
    let base = tempfile::tempdir().unwrap();
    let wires = base.path().join("wires");
    fs::create_dir(&wires).unwrap();
    write_pop_files(&wires);
    let healthy = pop_script(&[0, 1, 2], &[], &[]);
    let seed = pop_script(&[0], &[], &[]);
    let plain = ["--allow-plaintext"];

    // The clean runs; mailkeep never sends STAT.
    let mut clean = Vec::new();
    for kind in KINDS {
        let server = FakeServer::pop3_from_str(&healthy, &wires);
        let dir = base.path().join(format!("clean-{kind:?}"));
        let r = backup(&pop_source(&server), kind, &dir, &plain);
        assert_eq!(r.code, Some(0), "clean {kind:?}: {r:?}");
        let cmds = server.commands();
        assert!(!cmds.iter().any(|c| c.starts_with("STAT")), "{cmds:?}");
        let snap = snapshot(kind, &dir);
        assert_eq!(snap.messages.len(), 3, "clean {kind:?}");
        clean.push(snap);
    }

    let rows = pop_rows();
    let jobs: Vec<(usize, Kind)> = (0..rows.len())
        .flat_map(|i| KINDS.map(|k| (i, k)))
        .collect();
    run_rows(
        &jobs,
        |(i, k)| format!("pop3 {} [{k:?}]", rows[*i].name),
        |(i, kind)| {
            let row = &rows[*i];
            let kind = *kind;
            let clean = &clean[KINDS.iter().position(|k| *k == kind).unwrap()];
            let dir = tempfile::tempdir_in(base.path()).unwrap();
            let dir = dir.path().join("archive");
            let server = FakeServer::pop3_from_str(&seed, &wires);
            let r = backup(&pop_source(&server), kind, &dir, &plain);
            assert_eq!(r.code, Some(0), "{}: seed run: {r:?}", row.name);
            drop(server);
            let before = snapshot(kind, &dir);
            assert_eq!(before.messages.len(), 1);

            let over: Vec<(&str, &str)> = row.over.iter().map(|(c, s)| (*c, s.as_str())).collect();
            let script = pop_script(&[0, 1, 2], &row.extra_capa, &over);
            let server = FakeServer::pop3_with(&script, &wires, row.cuts.clone());
            let account = format!("alice@{}", server.addr());
            let mut args: Vec<&str> = row.args.clone();
            if !row.tls_required {
                args.extend(plain);
            }
            let ran = backup(&pop_source(&server), kind, &dir, &args);
            let after = snapshot(kind, &dir);
            let line = check_faulty(
                &row.name, kind, &account, &ran, &row.want, &before, &after, clean,
            );
            drop(server);

            let server = FakeServer::pop3_from_str(&healthy, &wires);
            let mut args: Vec<&str> = row.args.clone();
            args.extend(plain);
            let ran = backup(&pop_source(&server), kind, &dir, &args);
            check_rerun(&row.name, kind, &ran, &snapshot(kind, &dir), clean);
            Outcome {
                row: format!("pop3 {} [{kind:?}]", row.name),
                code: row.want.code,
                line,
            }
        },
    );
}

// ---------------------------------------------------------------------------------------------
// IMAP backup

/// UIDs of the three messages in INBOX (UIDVALIDITY 7).
const UIDS: [u32; 3] = [11, 12, 13];

fn write_imap_files(dir: &Path) {
    for (i, m) in messages().iter().enumerate() {
        fs::write(dir.join(format!("m{}.eml", i + 1)), m).unwrap();
    }
}

/// The FETCH chunk of message `i` (an index into [`messages`]) as sequence number `seq`.
fn chunk(seq: usize, i: usize) -> String {
    let m = &messages()[i];
    format!(
        "S: * {seq} FETCH (UID {} FLAGS (\\Seen) INTERNALDATE \"0{}-Jan-2025 10:00:00 +0000\" RFC822.SIZE {} BODY[] {{{}}}\nS+ m{}.eml\nS: )\n",
        UIDS[i],
        6 + i,
        m.len(),
        m.len(),
        i + 1
    )
}

/// An IMAP session: INBOX holding `msgs`, two FETCH blocks (the listing and the body fetch
/// each use one); `body_chunks` replaces the chunks of the second one.
fn imap_script(msgs: &[usize], body_chunks: Option<&str>, body_prelude: &str) -> String {
    let next = msgs.iter().map(|&i| UIDS[i]).max().unwrap_or(10) + 1;
    let mut s = String::from("S: * OK [CAPABILITY IMAP4rev1 UIDPLUS] fake IMAP ready\n");
    s += "C: TAG LOGIN alice secret\nS: TAG OK LOGIN completed\n";
    s += &format!(
        "C: TAG EXAMINE INBOX\nS: * {} EXISTS\nS: * OK [UIDVALIDITY 7] UIDs valid\nS: * OK [UIDNEXT {next}] next\nS: TAG OK [READ-ONLY] EXAMINE completed\n",
        msgs.len()
    );
    let chunks: String = msgs
        .iter()
        .enumerate()
        .map(|(n, &i)| chunk(n + 1, i))
        .collect();
    s += &format!("C: TAG UID FETCH 1:* (UID FLAGS)\n{chunks}S: TAG OK FETCH completed\n");
    s += &format!(
        "C: TAG UID FETCH <uids> (BODY.PEEK[])\n{body_prelude}{}S: TAG OK FETCH completed\n",
        body_chunks.unwrap_or(&chunks)
    );
    s
}

struct ImapRow {
    name: String,
    /// The body FETCH's chunks (for messages 1..3 at sequence numbers 1..3), replacing the
    /// healthy ones.
    body: Option<String>,
    /// Lines sent before the body FETCH's chunks.
    prelude: String,
    faults: Vec<Fault>,
    want: Expect,
    /// Behaviour the body FETCH reader is being rewritten to have (run only on request).
    known: Option<&'static str>,
}

fn imap_row(name: &str, faults: Vec<Fault>, code: i32, needles: &[&str]) -> ImapRow {
    ImapRow {
        name: name.into(),
        body: None,
        prelude: String::new(),
        faults,
        want: expect(code, needles),
        known: None,
    }
}

fn reply(command: &str, nth: usize, r: Reply) -> Fault {
    Fault::Reply {
        command: command.into(),
        nth,
        reply: r,
    }
}

fn imap_rows() -> Vec<ImapRow> {
    let m2 = messages()[1].len();
    let timeout = "timed out";
    let no = |t: &str| Reply::No(t.into());
    let bad = |t: &str| Reply::Bad(t.into());
    let mut rows = vec![
        imap_row(
            "NO to LOGIN",
            vec![reply(
                "LOGIN",
                1,
                no("[AUTHENTICATIONFAILED] wrong password"),
            )],
            3,
            &["wrong password"],
        ),
        // BAD is "command not understood", not a refused password.
        imap_row(
            "BAD to LOGIN",
            vec![reply("LOGIN", 1, bad("syntax"))],
            7,
            &["BAD syntax"],
        ),
        imap_row(
            "NO [UNAVAILABLE] to LOGIN",
            vec![reply("LOGIN", 1, no("[UNAVAILABLE] maintenance"))],
            4,
            &["temporarily unavailable"],
        ),
        imap_row(
            "NO to CAPABILITY",
            vec![reply("CAPABILITY", 1, no("not now"))],
            7,
            &["CAPABILITY", "not now"],
        ),
        imap_row(
            "BAD to CAPABILITY",
            vec![reply("CAPABILITY", 1, bad("huh"))],
            7,
            &["CAPABILITY", "huh"],
        ),
        imap_row(
            "NO to the CAPABILITY after LOGIN",
            vec![reply("CAPABILITY", 3, no("not now"))],
            7,
            &["CAPABILITY", "not now"],
        ),
        imap_row(
            "NO to LIST",
            vec![reply("LIST", 1, no("cannot list"))],
            7,
            &["LIST", "cannot list"],
        ),
        imap_row(
            "BAD to LIST",
            vec![reply("LIST", 1, bad("huh"))],
            7,
            &["LIST", "huh"],
        ),
        // STATUS only decides whether a mailbox may be skipped: refused, EXAMINE decides.
        imap_row(
            "NO to STATUS (the mailbox is examined instead)",
            vec![reply("STATUS", 1, no("no status"))],
            0,
            &[],
        ),
        imap_row(
            "BAD to STATUS (the mailbox is examined instead)",
            vec![reply("STATUS", 1, bad("huh"))],
            0,
            &[],
        ),
        imap_row(
            "NO to EXAMINE (mailbox failed, run partial)",
            vec![reply("EXAMINE", 1, no("[NOPERM] not allowed"))],
            1,
            &["INBOX", "not allowed"],
        ),
        imap_row(
            "BAD to EXAMINE (mailbox failed, run partial)",
            vec![reply("EXAMINE", 1, bad("huh"))],
            1,
            &["INBOX", "huh"],
        ),
        imap_row(
            "NO to the listing UID FETCH",
            vec![reply("FETCH", 1, no("cannot list"))],
            1,
            &["INBOX", "cannot list"],
        ),
        imap_row(
            "BAD to the listing UID FETCH",
            vec![reply("FETCH", 1, bad("huh"))],
            1,
            &["INBOX", "huh"],
        ),
        // Refused as a batch, then each message refused alone too: the mailbox fails.
        imap_row(
            "NO to the body UID FETCH and to each message alone",
            (2..=4)
                .map(|n| reply("FETCH", n, no("cannot fetch")))
                .collect(),
            1,
            &["INBOX", "UID 12", "cannot fetch"],
        ),
        imap_row(
            "BAD to the body UID FETCH and to each message alone",
            (2..=4).map(|n| reply("FETCH", n, bad("huh"))).collect(),
            1,
            &["INBOX", "UID 12", "huh"],
        ),
        // Refused as a batch, then sent when asked for one at a time: all archived.
        imap_row(
            "NO to the body UID FETCH once",
            vec![reply("FETCH", 2, no("cannot fetch"))],
            0,
            &[],
        ),
        // One message refused alone: it fails alone, the other is archived.
        imap_row(
            "NO to the body UID FETCH and to one message alone",
            vec![
                reply("FETCH", 2, no("cannot fetch")),
                reply("FETCH", 3, no("damaged")),
            ],
            1,
            &["INBOX", "UID 12", "damaged"],
        ),
        imap_row(
            "NO [UNAVAILABLE] to the body UID FETCH",
            vec![reply("FETCH", 2, no("[UNAVAILABLE] later"))],
            4,
            &["INBOX", "UID 12", "temporarily unavailable"],
        ),
        imap_row(
            "NO to LOGOUT (everything stored)",
            vec![reply("LOGOUT", 1, no("whatever"))],
            0,
            &[],
        ),
        imap_row(
            "BAD to LOGOUT (everything stored)",
            vec![reply("LOGOUT", 1, bad("whatever"))],
            0,
            &[],
        ),
        // Commands other than FETCH go through the `imap` crate, which reports a BYE as "connection
        // closed by server" without its text (noted in the report, src/imap.rs).
        imap_row(
            "BYE instead of the LOGIN reply",
            vec![reply("LOGIN", 1, Reply::Bye("shutting down".into()))],
            4,
            &["closed"],
        ),
        imap_row(
            "BYE after LOGIN (to LIST)",
            vec![reply("LIST", 1, Reply::Bye("shutting down".into()))],
            4,
            &["LIST", "closed"],
        ),
        imap_row(
            "BYE to EXAMINE",
            vec![reply("EXAMINE", 1, Reply::Bye("shutting down".into()))],
            4,
            &["INBOX", "closed"],
        ),
        imap_row(
            "BYE to the body UID FETCH",
            vec![reply("FETCH", 2, Reply::Bye("shutting down".into()))],
            4,
            &["INBOX", "UID 12", "shutting down"],
        ),
        imap_row(
            "greeting: 4 MiB line without CRLF",
            vec![Fault::HugeLine {
                command: "GREETING".into(),
                nth: 1,
                bytes: 4 << 20,
                then: Cut::Stall,
            }],
            7,
            &[],
        ),
        ImapRow {
            // KNOWN: the `imap` crate (LOGIN, LIST, EXAMINE...) reads a line of any length:
            // 4 MiB are buffered, then the timeout fires (exit 4), no line limit (src/imap.rs).
            known: Some("imap crate reads unbounded lines"),
            ..imap_row(
                "LOGIN reply: 4 MiB line without CRLF",
                vec![Fault::HugeLine {
                    command: "LOGIN".into(),
                    nth: 1,
                    bytes: 4 << 20,
                    then: Cut::Stall,
                }],
                7,
                &[],
            )
        },
        imap_row(
            "listing reply: 4 MiB line without CRLF",
            vec![Fault::HugeLine {
                command: "FETCH".into(),
                nth: 1,
                bytes: 4 << 20,
                then: Cut::Stall,
            }],
            7,
            &["INBOX"],
        ),
    ];
    // Stalls: the timeout fires.
    for (label, cmd, nth) in [
        ("LOGIN", "LOGIN", 1),
        ("LIST", "LIST", 1),
        ("EXAMINE", "EXAMINE", 1),
        ("the listing UID FETCH", "FETCH", 1),
        ("the body UID FETCH", "FETCH", 2),
    ] {
        let mut r = imap_row(
            &format!("no reply to {label} (stall)"),
            Vec::new(),
            4,
            &[timeout],
        );
        if cmd == "EXAMINE" || cmd == "FETCH" {
            r.want.needles.push("INBOX".into());
        }
        if nth == 2 {
            r.want.needles.push("UID 12".into());
        }
        // A huge line of 0 octets then a stall: nothing is answered.
        r.faults = vec![Fault::HugeLine {
            command: cmd.into(),
            nth,
            bytes: 0,
            then: Cut::Stall,
        }];
        rows.push(r);
    }
    let mut r = imap_row(
        "greeting never sent (stall)",
        vec![Fault::HugeLine {
            command: "GREETING".into(),
            nth: 1,
            bytes: 0,
            then: Cut::Stall,
        }],
        4,
        &[timeout],
    );
    r.want.needles.clear();
    rows.push(r);
    // Body FETCH faults (the contract of the FETCH reader).
    for (label, k) in [
        ("in the headers", 20),
        ("in the body", m2 / 2),
        ("at its last octet", m2 - 1),
        ("after the whole literal, before `)`", m2),
    ] {
        rows.push(imap_row(
            &format!("drop at byte {k} of the UID 12 literal ({label})"),
            vec![Fault::Cut(CutFile::once("m2.eml", k, Cut::Close))],
            4,
            &["INBOX", "UID 12"],
        ));
    }
    rows.push(imap_row(
        "stall at byte 200 of the UID 12 literal",
        vec![Fault::Cut(CutFile::once("m2.eml", 200, Cut::Stall))],
        4,
        &["INBOX", "UID 12", timeout],
    ));
    rows.push(imap_row(
        "literal announced 10 octets bigger, then stall",
        vec![Fault::LieLiteral {
            file: "m2.eml".into(),
            delta: 10,
            then: Some(Cut::Stall),
            times: 1,
        }],
        4,
        &["INBOX", "UID 12", timeout],
    ));
    rows.push(imap_row(
        "literal announced 10 octets bigger, then close",
        vec![Fault::LieLiteral {
            file: "m2.eml".into(),
            delta: 10,
            then: Some(Cut::Close),
            times: 1,
        }],
        4,
        &["INBOX", "UID 12"],
    ));
    rows.push(imap_row(
        "literal announced 10 octets bigger, the session goes on",
        vec![Fault::LieLiteral {
            file: "m2.eml".into(),
            delta: 10,
            then: None,
            times: 1,
        }],
        7,
        &["INBOX", "UID 12"],
    ));
    rows.push(imap_row(
        "literal announced 8 octets smaller, the session goes on",
        vec![Fault::LieLiteral {
            file: "m2.eml".into(),
            delta: -8,
            then: None,
            times: 1,
        }],
        7,
        &["INBOX", "UID 12"],
    ));
    rows.push(imap_row(
        "body FETCH reply: 4 MiB line without CRLF",
        vec![Fault::HugeLine {
            command: "FETCH".into(),
            nth: 2,
            bytes: 4 << 20,
            then: Cut::Stall,
        }],
        7,
        &["INBOX", "UID 12"],
    ));
    // Malformed FETCH responses (scripted body chunks).
    let c1 = chunk(1, 0);
    let c3 = chunk(3, 2);
    let m2len = m2;
    let body = |c2: &str| format!("{c1}{c2}{c3}");
    let mut malformed = |name: &str, c2: String, code: i32, needles: &[&str]| {
        let mut r = imap_row(name, Vec::new(), code, needles);
        r.body = Some(body(&c2));
        rows.push(r);
    };
    malformed(
        "FETCH response with unbalanced parentheses (no `)`)",
        format!("S: * 2 FETCH (UID 12 FLAGS (\\Seen) BODY[] {{{m2len}}}\nS+ m2.eml\nS:\n"),
        7,
        &["INBOX", "UID 12"],
    );
    malformed(
        "FETCH response with an extra `(`",
        format!("S: * 2 FETCH ((UID 12 FLAGS (\\Seen) BODY[] {{{m2len}}}\nS+ m2.eml\nS: )\n"),
        7,
        &["INBOX", "UID 12"],
    );
    malformed(
        "FETCH response with a non-number literal size",
        "S: * 2 FETCH (UID 12 FLAGS (\\Seen) BODY[] {12x}\nS+ m2.eml\nS: )\n".to_string(),
        7,
        &["INBOX", "UID 12"],
    );
    malformed(
        "FETCH response whose literal size is not followed by CRLF",
        format!("S: * 2 FETCH (UID 12 FLAGS (\\Seen) BODY[] {{{m2len}}} junk\nS+ m2.eml\nS: )\n"),
        7,
        &["INBOX", "UID 12"],
    );
    // Without UID the body cannot be tied to UID 12: it is not stored, a warning names UID 12
    // and the mailbox's state is not recorded, so the rerun fetches it.
    // The body comes without its UID: not stored under a guess. UID 12 is then looked for
    // (`UID SEARCH UID 12`: the fake's answer is empty, so it counts as expunged meanwhile).
    let mut r = imap_row("FETCH response without UID", Vec::new(), 0, &[]);
    r.body = Some(body(&format!(
        "S: * 2 FETCH (FLAGS (\\Seen) BODY[] {{{m2len}}}\nS+ m2.eml\nS: )\n"
    )));
    r.want.warning = Some("UID 12 expunged on the server during the run");
    rows.push(r);
    // NONEXISTENT to EXAMINE of a mailbox a second LIST still shows: a failure of that
    // mailbox, not "deleted after it was listed" (tests/quirks_imap.rs has the mailbox that
    // really went away: a warning, exit 0).
    rows.push(imap_row(
        "NO [NONEXISTENT] to EXAMINE of a mailbox LIST still shows",
        vec![reply("EXAMINE", 1, no("[NONEXISTENT] gone"))],
        1,
        &["`NO [NONEXISTENT] gone` to EXAMINE but still lists it"],
    ));
    // A body for a UID never asked for, between the asked ones: ignored, not stored.
    let m3len = messages()[2].len();
    let extra = format!(
        "{}S! * 9 FETCH (UID 99 FLAGS (\\Seen) BODY[] {{{m3len}}}\nS+ m3.eml\nS: )\n",
        chunk(2, 1)
    );
    let mut r = imap_row(
        "FETCH body for a UID never asked for (UID 99)",
        Vec::new(),
        0,
        &[],
    );
    r.body = Some(body(&extra));
    rows.push(r);
    // BYE in the middle of the body FETCH: UID 12 arrived whole and is kept.
    let mut r = imap_row(
        "BYE during the body FETCH, after UID 12",
        Vec::new(),
        4,
        &["INBOX", "UID 13", "shutting down"],
    );
    r.body = Some(format!(
        "{c1}{}S: * BYE shutting down\nCLOSE\n",
        chunk(2, 1)
    ));
    rows.push(r);
    rows.push(ImapRow {
        // KNOWN: as for LOGIN: the `imap` crate buffers the line until the timeout.
        known: Some("imap crate reads unbounded lines"),
        ..imap_row(
            "LIST reply: 4 MiB line without CRLF",
            vec![Fault::HugeLine {
                command: "LIST".into(),
                nth: 1,
                bytes: 4 << 20,
                then: Cut::Stall,
            }],
            7,
            &["LIST"],
        )
    });
    // UIDVALIDITY announced as changed in the middle of the fetch.
    let mut r = imap_row(
        "UIDVALIDITY changes between the listing and the body FETCH",
        Vec::new(),
        1,
        &["INBOX", "UIDVALIDITY"],
    );
    r.prelude = "S: * OK [UIDVALIDITY 8] mailbox recreated\n".into();
    // KNOWN: the response code arrives inside the FETCH answer and is ignored; 12 and 13 are
    // recorded under UIDVALIDITY 7 and the run exits 0 (fetch reader being replaced).
    r.known =
        Some("UIDVALIDITY change inside a FETCH answer is ignored (fetch reader being replaced)");
    rows.push(r);
    rows
}

fn imap_source(server: &FakeImap) -> String {
    format!("imap://alice@{}", server.addr())
}

fn imap_server(script: &str, dir: &Path, faults: &[Fault]) -> FakeImap {
    faults
        .iter()
        .cloned()
        .fold(FakeImap::builder_str(script, dir), FakeImapBuilder::fault)
        .start()
}

#[test]
fn imap_backup_faults() {
    let base = tempfile::tempdir().unwrap();
    let files = base.path().join("files");
    fs::create_dir(&files).unwrap();
    write_imap_files(&files);
    let healthy = imap_script(&[0, 1, 2], None, "");
    let seed = imap_script(&[0], None, "");
    let plain = ["--allow-plaintext"];

    let mut clean = Vec::new();
    for kind in KINDS {
        let server = imap_server(&healthy, &files, &[]);
        let dir = base.path().join(format!("clean-{kind:?}"));
        let r = backup(&imap_source(&server), kind, &dir, &plain);
        assert_eq!(r.code, Some(0), "clean {kind:?}: {r:?}");
        eprintln!("clean IMAP commands: {:?}", server.commands());
        let snap = snapshot(kind, &dir);
        assert_eq!(snap.messages.len(), 3, "clean {kind:?}");
        clean.push(snap);
    }

    let rows: Vec<ImapRow> = imap_rows()
        .into_iter()
        .filter(|r| r.known.is_none() || known_rows_enabled())
        .collect();
    let jobs: Vec<(usize, Kind)> = (0..rows.len())
        .flat_map(|i| KINDS.map(|k| (i, k)))
        .collect();
    run_rows(
        &jobs,
        |(i, k)| format!("imap {} [{k:?}]", rows[*i].name),
        |(i, kind)| {
            let row = &rows[*i];
            let kind = *kind;
            let clean = &clean[KINDS.iter().position(|k| *k == kind).unwrap()];
            let dir = tempfile::tempdir_in(base.path()).unwrap();
            let dir = dir.path().join("archive");
            let server = imap_server(&seed, &files, &[]);
            let r = backup(&imap_source(&server), kind, &dir, &plain);
            assert_eq!(r.code, Some(0), "{}: seed run: {r:?}", row.name);
            drop(server);
            let before = snapshot(kind, &dir);
            assert_eq!(before.messages.len(), 1);

            let script = imap_script(&[0, 1, 2], row.body.as_deref(), &row.prelude);
            let server = imap_server(&script, &files, &row.faults);
            let account = format!("alice@{}", server.addr());
            let ran = backup(&imap_source(&server), kind, &dir, &plain);
            let after = snapshot(kind, &dir);
            let line = check_faulty(
                &row.name, kind, &account, &ran, &row.want, &before, &after, clean,
            );
            drop(server);

            let server = imap_server(&healthy, &files, &[]);
            let ran = backup(&imap_source(&server), kind, &dir, &plain);
            check_rerun(&row.name, kind, &ran, &snapshot(kind, &dir), clean);
            Outcome {
                row: format!("imap {} [{kind:?}]", row.name),
                code: row.want.code,
                line,
            }
        },
    );
}

// ---------------------------------------------------------------------------------------------
// IMAP restore target

/// A restore target: INBOX, empty, UIDVALIDITY 9, UIDNEXT 50; each APPEND answered with
/// `appenduid(k)` (k = 1, 2, 3) as its `[APPENDUID …]` code, or, when that starts with `!`,
/// with the script steps after the `!` (sent after the literal).
/// With `into`, the target is that mailbox, which does not exist yet (it is created).
fn target_script(appenduid: &dyn Fn(usize) -> String, into: Option<&str>) -> String {
    let mut s = String::from("S: * OK [CAPABILITY IMAP4rev1 UIDPLUS] fake target ready\n");
    s += "C: TAG LOGIN alice secret\nS: TAG OK LOGIN completed\n";
    s += "C: TAG SELECT INBOX\nS: * 0 EXISTS\nS: * OK [UIDVALIDITY 9] UIDs valid\nS: * OK [UIDNEXT 50] next\nS: TAG OK [READ-WRITE] SELECT completed\n";
    // `--into Restored` puts INBOX at `Restored/INBOX`.
    let mailbox = into.map_or("INBOX".to_string(), |m| format!("{m}/INBOX"));
    if into.is_some() {
        s += &format!("C: TAG CREATE {mailbox}\nS: TAG OK CREATE completed\n");
        s += &format!("C: TAG STATUS {mailbox} (MESSAGES UIDNEXT UIDVALIDITY)\nS: * STATUS {mailbox} (MESSAGES 0 UIDNEXT 50 UIDVALIDITY 9)\nS: TAG OK STATUS completed\n");
    }
    for k in 1..=3 {
        let code = appenduid(k);
        let after = match code.strip_prefix('!') {
            Some(steps) => steps.to_string(),
            None => format!("S: TAG OK [APPENDUID {code}] APPEND completed"),
        };
        s += &format!("C: TAG APPEND {mailbox} <flags> <date> {{0}}\nS: + go ahead\n{after}\n");
    }
    s
}

fn restore(archive: &Path, target: &FakeImap, state: &Path, extra: &[&str]) -> Ran {
    let mut c = Command::new(env!("CARGO_BIN_EXE_mailkeep"));
    c.arg("restore")
        .arg(Kind::Maildir.endpoint(archive))
        .arg(format!("imap://alice@{}", target.addr()))
        .args(["--password-env", PW, "--json", "--allow-plaintext"])
        .args(["--timeout", &TIMEOUT_SECS.to_string()])
        .args(extra)
        .env(PW, "secret")
        .env("XDG_STATE_HOME", state)
        .env_remove("MAILKEEP_TEST_KILL_AFTER_EVENTS")
        .env_remove("RUST_BACKTRACE")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let start = Instant::now();
    let out = c.output().expect("run mailkeep");
    Ran {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        elapsed: start.elapsed(),
    }
}

/// The uploads ledger's rows: (mailbox, sha256, uidvalidity, uid).
type Upload = (String, String, Option<i64>, Option<i64>);

fn uploads(state: &Path) -> Vec<Upload> {
    let path = state.join("mailkeep/uploads.sqlite");
    if !path.exists() {
        return Vec::new();
    }
    let db = rusqlite::Connection::open_with_flags(
        format!("file:{}?immutable=1", path.display()),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_URI,
    )
    .unwrap();
    let mut st = db
        .prepare("SELECT mailbox, sha256, uidvalidity, uid FROM uploads ORDER BY sha256")
        .unwrap();
    let rows = st
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    rows
}

struct RestoreRow {
    name: String,
    appenduid: fn(usize) -> String,
    faults: Vec<Fault>,
    want: Expect,
    /// The UIDs the uploads ledger may trust after the faulty run (sorted).
    trusted: Vec<i64>,
    /// `--into <mailbox>` of the faulty run: a target the fake does not list, so it is created.
    /// The fake lists every mailbox its script appends to, so the script's target is
    /// `Restored/INBOX`, and the rerun uses `--into Restored`.
    into: Option<&'static str>,
}

fn restore_rows() -> Vec<RestoreRow> {
    let good: fn(usize) -> String = |k| format!("9 {}", 49 + k);
    let row =
        |name: &str, faults: Vec<Fault>, code: i32, needles: &[&str], trusted: &[i64]| RestoreRow {
            name: name.into(),
            appenduid: good,
            faults,
            want: expect(code, needles),
            trusted: trusted.to_vec(),
            into: None,
        };
    let no = |t: &str| Reply::No(t.into());
    let bad = |t: &str| Reply::Bad(t.into());
    let mut rows = vec![
        row(
            "NO [OVERQUOTA] to the 2nd APPEND (the account is full: that one pending, run partial)",
            vec![reply("APPEND", 2, no("[OVERQUOTA] full"))],
            1,
            &["2 stored, 1 pending: the target account is over quota (NO [OVERQUOTA] full)"],
            &[50, 51],
        ),
        row(
            "NO [TOOBIG] to the 2nd APPEND (message refused, run partial)",
            vec![reply("APPEND", 2, no("[TOOBIG] Message too large"))],
            1,
            &[
                "INBOX",
                "refused by the server (",
                "): NO [TOOBIG] Message too large",
            ],
            &[50, 51],
        ),
        row(
            "BAD to the 2nd APPEND (message failed, run partial)",
            vec![reply("APPEND", 2, bad("huh"))],
            1,
            &["INBOX", "BAD huh"],
            &[50, 51],
        ),
        row(
            "BYE instead of the 2nd APPEND's continuation",
            vec![reply("APPEND", 2, Reply::Bye("shutting down".into()))],
            4,
            &["INBOX"],
            &[50],
        ),
        row(
            "NO to SELECT/STATUS of the target",
            vec![
                reply("STATUS", 1, no("no such thing")),
                reply("SELECT", 1, no("no such thing")),
            ],
            1,
            &["INBOX", "no such thing"],
            &[],
        ),
        row(
            "BAD to SELECT/STATUS of the target",
            vec![
                reply("STATUS", 1, bad("huh")),
                reply("SELECT", 1, bad("huh")),
            ],
            1,
            &["INBOX", "huh"],
            &[],
        ),
        row(
            "NO to EXAMINE of the target",
            vec![reply("SELECT", 1, no("no such thing"))],
            1,
            &["INBOX", "no such thing"],
            &[],
        ),
        RestoreRow {
            into: Some("Other"),
            ..row(
                "NO to CREATE (--into Other)",
                vec![reply("CREATE", 1, no("[NOPERM] not allowed"))],
                1,
                &["Other", "NOPERM"],
                &[],
            )
        },
        RestoreRow {
            into: Some("Other"),
            ..row(
                "BAD to CREATE (--into Other)",
                vec![reply("CREATE", 1, bad("huh"))],
                1,
                &["Other", "BAD huh"],
                &[],
            )
        },
        RestoreRow {
            into: Some("Other"),
            ..row(
                "BYE to CREATE (--into Other)",
                vec![reply("CREATE", 1, Reply::Bye("shutting down".into()))],
                4,
                &["Other"],
                &[],
            )
        },
    ];
    for (name, f, trusted) in [
        (
            "BYE after the 2nd APPEND's literal (outcome unknown)",
            (|k| {
                if k == 2 {
                    "!S: * BYE shutting down\nCLOSE".into()
                } else {
                    format!("9 {}", 49 + k)
                }
            }) as fn(usize) -> String,
            vec![50],
        ),
        (
            "APPENDUID with another UIDVALIDITY (another mailbox's)",
            |k| format!("8 {}", 49 + k),
            vec![],
        ),
        ("APPENDUID with UID 0", |_| "9 0".to_string(), vec![]),
        (
            "APPENDUID below the mailbox's UIDNEXT (UID outside what was appended)",
            |k| format!("9 {k}"),
            vec![],
        ),
        (
            "APPENDUID repeating one UID for every message",
            |_| "9 50".to_string(),
            vec![50],
        ),
    ] {
        rows.push(RestoreRow {
            name: name.into(),
            appenduid: f,
            faults: Vec::new(),
            want: if name.starts_with("BYE") {
                expect(4, &["INBOX", "shutting down"])
            } else {
                expect(0, &[])
            },
            trusted,
            into: None,
        });
    }
    rows
}

#[test]
fn imap_restore_target_faults() {
    let base = tempfile::tempdir().unwrap();
    let files = base.path().join("files");
    fs::create_dir(&files).unwrap();
    write_imap_files(&files);
    // The archive to restore: a clean IMAP backup of the three messages.
    let archive = base.path().join("archive");
    {
        let server = imap_server(&imap_script(&[0, 1, 2], None, ""), &files, &[]);
        let r = backup(
            &imap_source(&server),
            Kind::Maildir,
            &archive,
            &["--allow-plaintext"],
        );
        assert_eq!(r.code, Some(0), "{r:?}");
    }
    let archived = snapshot(Kind::Maildir, &archive);
    let good: fn(usize) -> String = |k| format!("9 {}", 49 + k);
    // The clean restore.
    let state = base.path().join("clean-state");
    let target = imap_server(&target_script(&good, None), &files, &[]);
    let r = restore(&archive, &target, &state, &[]);
    assert_eq!(r.code, Some(0), "clean restore: {r:?}");
    eprintln!("clean restore commands: {:?}", target.commands());
    assert_eq!(target.appends().len(), 3);
    let clean_uploads = uploads(&state);
    assert_eq!(clean_uploads.len(), 3, "{clean_uploads:?}");
    drop(target);

    let rows = restore_rows();
    run_rows(
        &rows,
        |r| format!("restore {}", r.name),
        |row| {
            let what = format!("row `{}`", row.name);
            let state = tempfile::tempdir_in(base.path()).unwrap();
            let state = state.path().to_path_buf();
            let args: Vec<&str> = row.into.map(|m| vec!["--into", m]).unwrap_or_default();
            let script_into = row.into.map(|_| "Restored");
            let target = imap_server(
                &target_script(&row.appenduid, script_into),
                &files,
                &row.faults,
            );
            let account = format!("alice@{}", target.addr());
            let ran = restore(&archive, &target, &state, &args);
            assert!(ran.elapsed < RUN_BUDGET, "{what}: {ran:?}");
            assert!(!ran.stderr.contains("panicked"), "{what}: {ran:?}");
            assert_eq!(ran.code, Some(row.want.code), "{what}: {ran:?}");
            let lines = ran.error_lines();
            let line = if row.want.code == 0 {
                assert!(lines.is_empty(), "{what}: {ran:?}");
                String::new()
            } else {
                assert_eq!(lines.len(), 1, "{what}: one error line: {ran:?}");
                for n in std::iter::once(account.as_str())
                    .chain(row.want.needles.iter().map(String::as_str))
                {
                    assert!(
                        lines[0].contains(n),
                        "{what}: the error line lacks {n:?}: {}",
                        lines[0]
                    );
                }
                lines[0].to_string()
            };
            // The archive is only read.
            assert_eq!(
                snapshot(Kind::Maildir, &archive),
                archived,
                "{what}: archive changed"
            );
            let after = uploads(&state);
            let mut trusted: Vec<i64> = after.iter().filter_map(|u| u.3).collect();
            trusted.sort();
            assert_eq!(
                trusted, row.trusted,
                "{what}: UIDs recorded as trusted: {after:?}"
            );
            for u in &after {
                assert!(u.3.is_none() || u.2 == Some(9), "{what}: {u:?}");
                assert!(clean_uploads.iter().any(|c| c.1 == u.1), "{what}: {u:?}");
            }
            let recorded = after.len();
            let port = target.port();
            drop(target);

            // The rerun's target holds the messages recorded with a trusted UID (its `UID
            // SEARCH UID <set>` answers them) and nothing else: the rerun appends exactly the
            // others. A record without a trusted UID proves nothing by itself (DESIGN.md
            // invariant 2): the target, which does not list the message, gets it again.
            let held: String = row.trusted.iter().map(|u| format!(" {u}")).collect();
            let script = target_script(&good, script_into).replacen(
                "SELECT completed\n",
                &format!(
                    "SELECT completed\nC: TAG UID SEARCH <held>\nS: * SEARCH{held}\nS: TAG OK SEARCH completed\n"
                ),
                1,
            );
            // The same server, restarted on its port.
            let target = FakeImap::builder_str(&script, &files).on_port(port).start();
            let args: Vec<&str> = script_into.map(|m| vec!["--into", m]).unwrap_or_default();
            let ran = restore(&archive, &target, &state, &args);
            assert_eq!(ran.code, Some(0), "{what} rerun: {ran:?}");
            assert!(recorded >= row.trusted.len(), "{what}: {after:?}");
            assert_eq!(
                target.appends().len(),
                3 - row.trusted.len(),
                "{what} rerun: APPENDs: {:?}",
                target.commands()
            );
            let mut shas: Vec<String> = uploads(&state).into_iter().map(|u| u.1).collect();
            shas.dedup();
            assert_eq!(shas.len(), 3, "{what} rerun: uploads");
            Outcome {
                row: format!("restore {}", row.name),
                code: row.want.code,
                line,
            }
        },
    );
}
