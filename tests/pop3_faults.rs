//! End-to-end fault tests: the real `mailkeep` binary against the scripted fake POP3 server
//! (tests/support/fake_server.rs), into Maildir and mbox archives.
//!
//! - shared/cases/14: UIDL renumbering between sessions and dot-stuffing, three runs.
//! - a connection dropped in the middle of a RETR, then a rerun.
//! - shared/cases/26 in POP3 form: a run killed (SIGKILL, SIGINT) while a message stalls
//!   half-way, then resumed; also as an incremental run over an earlier complete one.
//! - shared/cases/27 in POP3 form: overlapping runs on one archive (exit 5), a killed holder's
//!   lock taken over without cleanup, a run on another archive not blocked.
//! - DESIGN.md invariant 2: kill at every ledger event (`MAILKEEP_TEST_KILL_AFTER_EVENTS`),
//!   rerun, compare with a clean run.
//!
//! The fake sends `S+` files verbatim, so the tests write POP3 wire forms (CRLF, dot-stuffed,
//! terminated by a `.` line) of the cases' `.eml` files into a temporary folder and play
//! scripts built here against it.

mod support;

use std::collections::BTreeMap;
use std::fs;
use std::io::BufReader;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use mailkeep::archive::ledger::{Ledger, Record};
use mailkeep::archive::mbox::format::MboxReader;
use mailkeep::core::message::{crlf_to_lf, normalize};
use serde_json::Value;
use support::fake_server::{Cut, CutFile, FakeServer};
use support::mailkeep;

const PASSWORD_VAR: &str = "MAILKEEP_POP3_FAULTS_PASSWORD";
const KILL_VAR: &str = "MAILKEEP_TEST_KILL_AFTER_EVENTS";

// ---------------------------------------------------------------------------------------------
// Archives

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Maildir,
    Mbox,
}

impl Kind {
    fn endpoint(self, dir: &Path) -> String {
        match self {
            Kind::Maildir => format!("maildir:{}", dir.display()),
            Kind::Mbox => format!("mbox:{}", dir.display()),
        }
    }

    /// Where messages are staged before they become part of the archive.
    fn staging_dir(self, dir: &Path) -> PathBuf {
        match self {
            Kind::Maildir => dir.join("tmp"),
            Kind::Mbox => dir.join("mailkeep").join("spool"),
        }
    }
}

/// File names in `dir` (sorted), empty when it does not exist.
fn file_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = match fs::read_dir(dir) {
        Ok(rd) => rd
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => panic!("read_dir {}: {e}", dir.display()),
    };
    names.sort();
    names
}

fn mbox_path(dir: &Path) -> PathBuf {
    dir.join("INBOX.mbox")
}

/// The messages the archive holds, as stored bytes: Maildir `cur/` in file-name order (and
/// `new/` must be empty), mbox `INBOX.mbox` in file order, unquoted by the mboxrd reader.
fn stored(kind: Kind, dir: &Path) -> Vec<Vec<u8>> {
    match kind {
        Kind::Maildir => {
            assert_eq!(file_names(&dir.join("new")), Vec::<String>::new(), "new/");
            file_names(&dir.join("cur"))
                .iter()
                .map(|n| fs::read(dir.join("cur").join(n)).unwrap())
                .collect()
        }
        Kind::Mbox => {
            let path = mbox_path(dir);
            if !path.exists() {
                return Vec::new();
            }
            let file = fs::File::open(&path).unwrap();
            MboxReader::new(BufReader::new(file))
                .with_path(&path)
                .map(|m| m.expect("mbox reads").raw)
                .collect()
        }
    }
}

/// A short description of messages for failure output (their Subject lines and sizes).
fn describe(msgs: &[Vec<u8>]) -> Vec<String> {
    msgs.iter()
        .map(|m| {
            let text = String::from_utf8_lossy(m);
            let subject = text
                .lines()
                .find(|l| l.starts_with("Subject:"))
                .unwrap_or("(no subject)")
                .to_string();
            format!("{subject} [{} bytes]", m.len())
        })
        .collect()
}

/// The archive holds exactly `expected` (stored forms), each once; an mbox in that order.
#[track_caller]
fn assert_archive(kind: Kind, dir: &Path, expected: &[Vec<u8>], what: &str) {
    let got = stored(kind, dir);
    let (mut g, mut e) = (got.clone(), expected.to_vec());
    g.sort();
    e.sort();
    assert!(
        g == e,
        "{kind:?} {what}: archive holds {:?}, expected {:?}",
        describe(&got),
        describe(expected)
    );
    if kind == Kind::Mbox {
        assert!(
            got == expected,
            "{kind:?} {what}: mbox order {:?}",
            describe(&got)
        );
    }
}

/// Every message in the archive is complete (one of `expected`) and there is none twice.
#[track_caller]
fn assert_only_complete(kind: Kind, dir: &Path, expected: &[Vec<u8>], what: &str) {
    let got = stored(kind, dir);
    for (i, m) in got.iter().enumerate() {
        assert!(
            expected.contains(m),
            "{kind:?} {what}: message {i} is not one of the originals: {:?}",
            describe(std::slice::from_ref(m))
        );
        assert!(
            !got[..i].contains(m),
            "{kind:?} {what}: stored twice: {:?}",
            describe(std::slice::from_ref(m))
        );
    }
}

/// The bytes that hold the archived messages: each Maildir `cur/` file (name -> bytes, mtime),
/// or the whole mbox file.
#[derive(Debug, Clone, PartialEq, Eq)]
enum MessageFiles {
    Maildir(BTreeMap<String, (Vec<u8>, i64)>),
    Mbox(Vec<u8>),
}

fn message_files(kind: Kind, dir: &Path) -> MessageFiles {
    match kind {
        Kind::Maildir => MessageFiles::Maildir(
            file_names(&dir.join("cur"))
                .into_iter()
                .map(|n| {
                    let p = dir.join("cur").join(&n);
                    let mtime = fs::metadata(&p).unwrap().mtime();
                    (n, (fs::read(&p).unwrap(), mtime))
                })
                .collect(),
        ),
        Kind::Mbox => MessageFiles::Mbox(fs::read(mbox_path(dir)).unwrap_or_default()),
    }
}

/// `earlier`'s messages are all still there, byte for byte: the same Maildir files, or an mbox
/// that starts with the earlier file.
#[track_caller]
fn assert_kept(earlier: &MessageFiles, now: &MessageFiles, what: &str) {
    match (earlier, now) {
        (MessageFiles::Maildir(a), MessageFiles::Maildir(b)) => {
            for (name, v) in a {
                assert_eq!(
                    b.get(name),
                    Some(v),
                    "{what}: cur/{name} changed or vanished"
                );
            }
        }
        (MessageFiles::Mbox(a), MessageFiles::Mbox(b)) => {
            assert!(
                b.starts_with(a),
                "{what}: the mbox ({} bytes) no longer starts with its earlier {} bytes",
                b.len(),
                a.len()
            );
        }
        _ => unreachable!(),
    }
}

/// Every file and folder under `dir`, with the bytes of the files.
fn tree(dir: &Path) -> BTreeMap<String, Option<Vec<u8>>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Option<Vec<u8>>>) {
        for name in file_names(dir) {
            let p = dir.join(&name);
            let rel = p.strip_prefix(root).unwrap().display().to_string();
            if p.is_dir() {
                out.insert(rel + "/", None);
                walk(root, &p, out);
            } else {
                out.insert(rel, Some(fs::read(&p).unwrap()));
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// The ledger's state: message records (without `stored_at` and the trust level, which
/// [`unverified`] checks on its own; sorted by identity), mbox file lengths, and how many
/// placed-but-unrecorded notes are left.
type LedgerState = (Vec<Record>, Vec<(String, u64, Option<u64>)>, usize);

/// How many records were adopted without comparing with the server (a killed run's files).
fn unverified(dir: &Path) -> u64 {
    let ledger = Ledger::open(&dir.join("mailkeep").join("ledger.sqlite")).unwrap();
    ledger
        .records()
        .unwrap()
        .iter()
        .filter(|r| !r.verified)
        .count() as u64
}

fn ledger_state(dir: &Path) -> LedgerState {
    let ledger = Ledger::open(&dir.join("mailkeep").join("ledger.sqlite")).unwrap();
    let mut records = ledger.records().unwrap();
    for r in &mut records {
        r.stored_at = 0;
        r.verified = true;
    }
    records.sort_by(|a, b| a.identity.cmp(&b.identity));
    (
        records,
        ledger.mbox_files().unwrap(),
        ledger.placed().unwrap().len(),
    )
}

// ---------------------------------------------------------------------------------------------
// Runs

/// `mailkeep backup pop3://alice@127.0.0.1:PORT <kind>:<dir> --allow-plaintext --password-env
/// VAR --json --timeout <timeout>`, stdout and stderr captured.
fn backup(server: &FakeServer, kind: Kind, dir: &Path, timeout_secs: u64) -> Command {
    let mut c = mailkeep();
    c.arg("backup")
        .arg(format!("pop3://alice@{}", server.addr()))
        .arg(kind.endpoint(dir))
        .args([
            "--allow-plaintext",
            "--password-env",
            PASSWORD_VAR,
            "--json",
        ])
        .args(["--timeout", &timeout_secs.to_string()])
        .env(PASSWORD_VAR, "secret")
        .env_remove(KILL_VAR)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

struct Run {
    status: ExitStatus,
    json: Value,
    stdout: String,
    stderr: String,
    elapsed: Duration,
}

impl Run {
    fn from_output(out: Output, elapsed: Duration) -> Run {
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        let json = if stdout.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(stdout.trim())
                .unwrap_or_else(|e| panic!("stdout is not one JSON object ({e}): {stdout}"))
        };
        Run {
            status: out.status,
            json,
            stdout,
            stderr,
            elapsed,
        }
    }

    fn code(&self) -> Option<i32> {
        self.status.code()
    }

    #[track_caller]
    fn n(&self, key: &str) -> u64 {
        self.json[key]
            .as_u64()
            .unwrap_or_else(|| panic!("JSON report has no number {key:?}: {}", self.stdout))
    }

    fn stderr_lines(&self) -> Vec<&str> {
        self.stderr
            .lines()
            .filter(|l| !l.trim().is_empty())
            .collect()
    }

    fn warnings(&self) -> Vec<String> {
        self.json["warnings"]
            .as_array()
            .map(|a| a.iter().map(|w| w.as_str().unwrap().to_string()).collect())
            .unwrap_or_default()
    }
}

impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "status {:?} after {:?}\nstdout: {}\nstderr: {}",
            self.status, self.elapsed, self.stdout, self.stderr
        )
    }
}

fn run(mut cmd: Command) -> Run {
    let start = Instant::now();
    let out = cmd.output().expect("run mailkeep");
    Run::from_output(out, start.elapsed())
}

/// The run succeeded (exit 0) and its report agrees.
#[track_caller]
fn assert_ok(r: &Run, what: &str) {
    assert_eq!(r.code(), Some(0), "{what}: {r:?}");
    assert_eq!(r.json["exit_code"], 0, "{what}: {r:?}");
    assert!(r.json["error"].is_null(), "{what}: {r:?}");
    assert_eq!(r.json["failures"], serde_json::json!([]), "{what}: {r:?}");
}

/// The report's counts: (listed, fetched, already_archived, recovered); deleted is always 0.
#[track_caller]
fn assert_counts(r: &Run, counts: (u64, u64, u64, u64), what: &str) {
    let got = (
        r.n("listed"),
        r.n("fetched"),
        r.n("already_archived"),
        r.n("recovered"),
    );
    assert_eq!(
        got, counts,
        "{what}: (listed, fetched, already_archived, recovered): {r:?}"
    );
    assert_eq!(r.n("deleted"), 0, "{what}: {r:?}");
}

/// The run failed with `code`; stderr is one line that names everything in `needles`, and the
/// JSON report carries the same error.
#[track_caller]
fn assert_one_error(r: &Run, code: i32, needles: &[&str], what: &str) {
    assert_eq!(r.code(), Some(code), "{what}: {r:?}");
    assert_eq!(r.json["exit_code"], code, "{what}: {r:?}");
    let lines = r.stderr_lines();
    assert_eq!(lines.len(), 1, "{what}: stderr must be one line: {r:?}");
    let line = lines[0];
    eprintln!("{what}: exit {code}, stderr: {line}");
    for n in needles {
        assert!(
            line.contains(n),
            "{what}: stderr does not name {n:?}: {line}"
        );
    }
    let error = r.json["error"].as_str().unwrap_or_else(|| panic!("{r:?}"));
    assert!(
        line.contains(error),
        "{what}: JSON error {error:?} vs {line:?}"
    );
}

/// The RETR and DELE commands of a list of commands.
fn retrs_and_deles(commands: &[String]) -> Vec<String> {
    commands
        .iter()
        .filter(|c| c.starts_with("RETR") || c.starts_with("DELE"))
        .cloned()
        .collect()
}

#[track_caller]
fn wait_for(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits up to `timeout` for a child to exit; kills it and panics when it does not.
#[track_caller]
fn wait_child(child: &mut Child, timeout: Duration, what: &str) -> ExitStatus {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return st;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what}: did not exit within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn send_signal(child: &Child, sig: libc::c_int) {
    // SAFETY: kill(2) on the pid of a child we spawned and have not reaped yet.
    let rc = unsafe { libc::kill(child.id() as libc::pid_t, sig) };
    assert_eq!(rc, 0, "kill({}, {sig})", child.id());
}

// ---------------------------------------------------------------------------------------------
// Scripts

fn case_dir(dir: &str) -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/cases")).join(dir)
}

const CASE14: &str = "14-pop3-uidl-renumbered-after-deletion";
const CASE26: &str = "26-interrupted-run-resume";
const CASE27: &str = "27-concurrent-runs-and-stale-lock";

/// `m1.eml` ... `m<n>.eml` of a case, as the server stores them.
fn case_emls(case: &str, n: usize) -> Vec<Vec<u8>> {
    (1..=n)
        .map(|i| fs::read(case_dir(case).join(format!("m{i}.eml"))).unwrap())
        .collect()
}

fn normalized(emls: &[Vec<u8>]) -> Vec<Vec<u8>> {
    emls.iter().map(|m| normalize(m)).collect()
}

/// The POP3 wire form of a message (RFC 1939 3): CRLF line ends, a final line end, lines
/// starting with `.` stuffed with one more `.`, and the terminating `.` line.
fn pop_wire(eml: &[u8]) -> Vec<u8> {
    let lf = normalize(&crlf_to_lf(eml));
    let mut out = Vec::with_capacity(lf.len() + lf.len() / 20 + 3);
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

/// One message of a scripted session.
#[derive(Debug, Clone)]
struct Msg {
    uidl: String,
    /// The `S+` file (in the server's base folder) answering its RETR.
    file: String,
    /// The size announced by LIST and the RETR `+OK`.
    octets: u64,
    /// Wait before answering its RETR.
    pause_ms: u64,
    /// Stop sending after the file (a partial file, `STALL`).
    stall: bool,
}

/// Writes the wire form of each message as `m<i>.pop-wire` into `dir`; returns the session's
/// messages (`uidl_prefix-000<i>`).
fn write_wires(dir: &Path, emls: &[Vec<u8>], uidl_prefix: &str) -> Vec<Msg> {
    emls.iter()
        .enumerate()
        .map(|(i, eml)| {
            let file = format!("m{}.pop-wire", i + 1);
            fs::write(dir.join(&file), pop_wire(eml)).unwrap();
            Msg {
                uidl: format!("{uidl_prefix}-{:04}", i + 1),
                file,
                octets: eml.len() as u64,
                pause_ms: 0,
                stall: false,
            }
        })
        .collect()
}

/// A POP3 session: CAPA with USER, UIDL and TOP (no PIPELINING, no SASL, no STLS), USER/PASS,
/// STAT, UIDL, LIST, a RETR block per message, QUIT.
fn session(msgs: &[Msg]) -> String {
    let total: u64 = msgs.iter().map(|m| m.octets).sum();
    let mut s = String::new();
    s += "S: +OK POP3 fake ready\n";
    s += "C: CAPA\nS: +OK capability list follows\nS: USER\nS: UIDL\nS: TOP\nS: .\n";
    s += "C: USER alice\nS: +OK\n";
    s += &format!(
        "C: PASS secret\nS: +OK maildrop has {} messages\n",
        msgs.len()
    );
    s += &format!("C: STAT\nS: +OK {} {total}\n", msgs.len());
    s += "C: UIDL\nS: +OK unique-id listing follows\n";
    for (i, m) in msgs.iter().enumerate() {
        s += &format!("S: {} {}\n", i + 1, m.uidl);
    }
    s += "S: .\nC: LIST\nS: +OK scan listing follows\n";
    for (i, m) in msgs.iter().enumerate() {
        s += &format!("S: {} {}\n", i + 1, m.octets);
    }
    s += "S: .\n";
    for (i, m) in msgs.iter().enumerate() {
        s += &format!("C: RETR {}\n", i + 1);
        if m.pause_ms > 0 {
            s += &format!("PAUSE {}\n", m.pause_ms);
        }
        s += &format!("S: +OK {} octets\nS+ {}\n", m.octets, m.file);
        if m.stall {
            s += "STALL\n";
        }
    }
    s += "C: QUIT\nS: +OK bye\n";
    s
}

/// A script whose n-th connection plays `sessions[n-1]` (the last one again after that).
fn sessions(scripts: &[String]) -> String {
    scripts
        .iter()
        .enumerate()
        .map(|(i, s)| format!("SESSION {}\n{s}", i + 1))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// 1. shared/cases/14: UIDL renumbered after a deletion

fn case14(kind: Kind) {
    let server = FakeServer::pop3_from_transcript(&case_dir(CASE14).join("pop3-sessions.txt"));
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("archive");
    let m = normalized(&case_emls(CASE14, 4));

    // Session 1: three messages.
    let r = run(backup(&server, kind, &dir, 5));
    assert_ok(&r, "run 1");
    assert_counts(&r, (3, 3, 0, 0), "run 1");
    let cmds = server.commands_in(1);
    for c in ["RETR 1", "RETR 2", "RETR 3"] {
        assert!(cmds.iter().any(|x| x == c), "run 1 sent no {c}: {cmds:?}");
    }
    assert_eq!(retrs_and_deles(&cmds), ["RETR 1", "RETR 2", "RETR 3"]);
    assert_archive(kind, &dir, &m[..3], "after run 1");

    // Session 2: QX-7f3a-0001 was deleted elsewhere, 0004 arrived; numbers shifted.
    let r = run(backup(&server, kind, &dir, 5));
    assert_ok(&r, "run 2");
    assert_counts(&r, (3, 1, 2, 0), "run 2");
    assert_eq!(retrs_and_deles(&server.commands_in(2)), ["RETR 3"]);
    assert_archive(kind, &dir, &m, "after run 2");
    let stored_m2 = stored(kind, &dir)
        .into_iter()
        .find(|s| s == &m[1])
        .expect("m2 stored");
    let text = String::from_utf8(stored_m2).unwrap();
    assert!(
        text.contains("\n.signature starts with a dot\n..\nend\n"),
        "m2 not un-stuffed exactly once: {text}"
    );
    assert!(
        !text.contains("..signature") && !text.contains("...\n"),
        "{text}"
    );
    let files = message_files(kind, &dir);

    // Session 2 again: nothing to fetch, nothing changes.
    let r = run(backup(&server, kind, &dir, 5));
    assert_ok(&r, "run 3");
    assert_counts(&r, (3, 0, 3, 0), "run 3");
    assert_eq!(
        retrs_and_deles(&server.commands_in(3)),
        Vec::<String>::new()
    );
    assert_eq!(
        message_files(kind, &dir),
        files,
        "run 3 changed the archive"
    );
    assert_archive(kind, &dir, &m, "after run 3");

    assert_eq!(server.connections(), 3);
    let all = server.commands();
    assert!(!all.iter().any(|c| c.starts_with("DELE")), "{all:?}");
}

#[test]
fn case14_uidl_renumbered_maildir() {
    case14(Kind::Maildir);
}

#[test]
fn case14_uidl_renumbered_mbox() {
    case14(Kind::Mbox);
}

// ---------------------------------------------------------------------------------------------
// 2. Connection dropped in the middle of a RETR

fn drop_mid_retr(kind: Kind) {
    let transcript = case_dir(CASE14).join("pop3-sessions.txt");
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("archive");
    let m = normalized(&case_emls(CASE14, 3));

    let server = FakeServer::pop3_from_transcript_with(
        &transcript,
        vec![CutFile::once("m2.pop-wire", 100, Cut::Close)],
    );
    let r = run(backup(&server, kind, &dir, 5));
    assert_one_error(
        &r,
        4,
        &["alice@127.0.0.1", "QX-7f3a-0002"],
        "connection dropped mid-RETR 2",
    );
    assert_eq!(r.n("fetched"), 1, "{r:?}");
    assert_eq!(r.n("deleted"), 0, "{r:?}");
    assert_archive(kind, &dir, &m[..1], "after the dropped run");
    assert_eq!(
        file_names(&kind.staging_dir(&dir)),
        Vec::<String>::new(),
        "a staged file was left behind"
    );
    if kind == Kind::Maildir {
        assert_eq!(file_names(&dir.join("cur")).len(), 1);
    }
    assert!(!server.commands().iter().any(|c| c.starts_with("DELE")));
    drop(server);

    // A healthy session 1: only what is missing is fetched.
    let server = FakeServer::pop3_from_transcript(&transcript);
    let r = run(backup(&server, kind, &dir, 5));
    assert_ok(&r, "rerun");
    assert_counts(&r, (3, 2, 1, 0), "rerun");
    let cmds = server.commands_in(1);
    assert!(cmds.iter().any(|c| c == "RETR 2"), "{cmds:?}");
    assert!(cmds.iter().any(|c| c == "RETR 3"), "{cmds:?}");
    assert!(!cmds.iter().any(|c| c == "RETR 1"), "{cmds:?}");
    assert_eq!(retrs_and_deles(&cmds), ["RETR 2", "RETR 3"]);
    assert_archive(kind, &dir, &m, "after the rerun");
    assert_eq!(file_names(&kind.staging_dir(&dir)), Vec::<String>::new());
}

#[test]
fn drop_mid_retr_maildir() {
    drop_mid_retr(Kind::Maildir);
}

#[test]
fn drop_mid_retr_mbox() {
    drop_mid_retr(Kind::Mbox);
}

// ---------------------------------------------------------------------------------------------
// 3. shared/cases/26 in POP3 form: a run killed mid-message, resumed

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Interrupt {
    Kill,
    Int,
}

/// `incremental`: step 3 of CASE.md, a complete run of m1..m3 first.
fn case26(kind: Kind, how: Interrupt, incremental: bool) {
    let what = format!(
        "{kind:?} {how:?}{}",
        if incremental { " incremental" } else { "" }
    );
    let wires = tempfile::tempdir().unwrap();
    let emls = case_emls(CASE26, 5);
    let m = normalized(&emls);
    let healthy = write_wires(wires.path(), &emls, "C26");
    // m4 stops after its first 2463 octets (m4.first-half), then the server stalls.
    let m4_wire = fs::read(wires.path().join("m4.pop-wire")).unwrap();
    fs::write(
        wires.path().join("m4.first-half.pop-wire"),
        &m4_wire[..2463],
    )
    .unwrap();
    let mut stalling = healthy.clone();
    stalling[3].file = "m4.first-half.pop-wire".into();
    stalling[3].stall = true;

    let mut scripts = Vec::new();
    if incremental {
        scripts.push(session(&healthy[..3]));
    }
    scripts.push(session(&stalling));
    scripts.push(session(&healthy));
    let server = FakeServer::pop3_from_str(&sessions(&scripts), wires.path());
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("archive");
    let mut conn = 0;

    let mut earlier = None;
    if incremental {
        conn += 1;
        let r = run(backup(&server, kind, &dir, 5));
        assert_ok(&r, &format!("{what}: first complete run"));
        assert_counts(&r, (3, 3, 0, 0), &what);
        assert_archive(kind, &dir, &m[..3], &what);
        earlier = Some(message_files(kind, &dir));
    }

    // The run that is interrupted while m4 stalls (a long reply timeout: the signal ends it).
    conn += 1;
    let mut cmd = backup(&server, kind, &dir, 60);
    // A shell without job control (CI, `nohup`, cron) starts its children with SIGINT ignored,
    // and an ignored signal stays ignored across exec: the child gets the default back, as a
    // terminal user's mailkeep has it.
    unsafe {
        use std::os::unix::process::CommandExt;
        cmd.pre_exec(|| {
            libc::signal(libc::SIGINT, libc::SIG_DFL);
            Ok(())
        });
    }
    let mut child = cmd.spawn().unwrap();
    wait_for("RETR 4", Duration::from_secs(20), || {
        if let Some(st) = child.try_wait().unwrap() {
            panic!("{what}: mailkeep exited ({st}) before RETR 4");
        }
        server.commands_in(conn).iter().any(|c| c == "RETR 4")
    });
    std::thread::sleep(Duration::from_millis(300));
    if let Some(e) = &earlier {
        assert_kept(
            e,
            &message_files(kind, &dir),
            &format!("{what}: during the stall"),
        );
    }
    let signalled = Instant::now();
    match how {
        Interrupt::Kill => send_signal(&child, libc::SIGKILL),
        Interrupt::Int => send_signal(&child, libc::SIGINT),
    }
    let st = wait_child(&mut child, Duration::from_secs(10), &what);
    let out = child.wait_with_output().unwrap();
    eprintln!(
        "{what}: interrupted run ended ({st}) {:?} after the signal; stderr: {}",
        signalled.elapsed(),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!st.success(), "{what}: the interrupted run says success");
    if how == Interrupt::Kill {
        assert_eq!(st.signal(), Some(libc::SIGKILL), "{what}: {st}");
    }

    // Right after: m1..m3 complete, nothing of m4.
    assert_archive(
        kind,
        &dir,
        &m[..3],
        &format!("{what}: right after the interrupt"),
    );
    if kind == Kind::Maildir {
        assert_eq!(file_names(&dir.join("cur")).len(), 3, "{what}");
    } else {
        let bytes = fs::read(mbox_path(&dir)).unwrap();
        for needle in [&b"Subject: Sent item 4"[..], b"of message 4"] {
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle),
                "{what}: part of m4 is in the mbox after the interrupt"
            );
        }
    }
    if let Some(e) = &earlier {
        assert_kept(
            e,
            &message_files(kind, &dir),
            &format!("{what}: after the interrupt"),
        );
    }
    let leftovers = file_names(&kind.staging_dir(&dir));
    if !leftovers.is_empty() {
        eprintln!("{what}: staged files left by the interrupted run: {leftovers:?}");
    }

    // Resume against a healthy server: only m4 and m5 are downloaded.
    conn += 1;
    let r = run(backup(&server, kind, &dir, 5));
    assert_ok(&r, &format!("{what}: resume"));
    assert_eq!(
        retrs_and_deles(&server.commands_in(conn)),
        ["RETR 4", "RETR 5"],
        "{what}: resume"
    );
    let counts = match (kind, incremental) {
        // Maildir finds the three renamed files by name and records them.
        (Kind::Maildir, false) => (5, 2, 0, 3),
        // mbox records what was appended and noted as placed while it opens the archive.
        (Kind::Mbox, false) => (5, 2, 3, 0),
        (_, true) => (5, 2, 3, 0),
    };
    assert_counts(&r, counts, &format!("{what}: resume"));
    if kind == Kind::Mbox && !incremental {
        let w = r.warnings();
        assert!(
            w.iter()
                .any(|w| w.contains("INBOX.mbox") && w.contains("kept the 3 message(s)")),
            "{what}: resume warnings {w:?}"
        );
    }
    assert_archive(kind, &dir, &m, &format!("{what}: after the resume"));
    if kind == Kind::Mbox {
        let bytes = fs::read(mbox_path(&dir)).unwrap();
        let needle = b"Subject: Sent item 4";
        let n = bytes.windows(needle.len()).filter(|w| w == needle).count();
        assert_eq!(n, 1, "{what}: m4 appears {n} times in the mbox");
    }
    if let Some(e) = &earlier {
        assert_kept(
            e,
            &message_files(kind, &dir),
            &format!("{what}: after the resume"),
        );
    }
    assert_eq!(
        file_names(&kind.staging_dir(&dir)),
        Vec::<String>::new(),
        "{what}: the half of m4 staged by the interrupted run is still there after the resume"
    );
    let (records, mbox_files, placed) = ledger_state(&dir);
    assert_eq!(records.len(), 5, "{what}: ledger {records:?}");
    assert_eq!(placed, 0, "{what}");
    assert!(
        mbox_files.iter().all(|(_, _, p)| p.is_none()),
        "{mbox_files:?}"
    );
    let files = message_files(kind, &dir);

    // Third run: nothing new, nothing changes.
    conn += 1;
    let r = run(backup(&server, kind, &dir, 5));
    assert_ok(&r, &format!("{what}: third run"));
    assert_counts(&r, (5, 0, 5, 0), &format!("{what}: third run"));
    assert_eq!(
        retrs_and_deles(&server.commands_in(conn)),
        Vec::<String>::new()
    );
    assert_eq!(
        message_files(kind, &dir),
        files,
        "{what}: third run changed bytes"
    );
    assert!(!server.commands().iter().any(|c| c.starts_with("DELE")));
}

#[test]
fn case26_sigkill_resume_maildir() {
    case26(Kind::Maildir, Interrupt::Kill, false);
}

#[test]
fn case26_sigkill_resume_mbox() {
    case26(Kind::Mbox, Interrupt::Kill, false);
}

#[test]
fn case26_sigint_resume_maildir() {
    case26(Kind::Maildir, Interrupt::Int, false);
}

#[test]
fn case26_sigint_resume_mbox() {
    case26(Kind::Mbox, Interrupt::Int, false);
}

#[test]
fn case26_incremental_sigkill_maildir() {
    case26(Kind::Maildir, Interrupt::Kill, true);
}

#[test]
fn case26_incremental_sigkill_mbox() {
    case26(Kind::Mbox, Interrupt::Kill, true);
}

// ---------------------------------------------------------------------------------------------
// 4. shared/cases/27 in POP3 form: overlapping runs and the lock of a killed run

fn case27(kind: Kind) {
    let wires = tempfile::tempdir().unwrap();
    let emls = case_emls(CASE27, 5);
    let m = normalized(&emls);
    let fast = write_wires(wires.path(), &emls, "C27");
    let mut slow = fast.clone();
    for msg in &mut slow {
        msg.pause_ms = 2000;
    }
    // Every connection gets the same script (no SESSION lines): parallel runs are fine.
    let slow_server = FakeServer::pop3_from_str(&session(&slow), wires.path());
    let fast_server = FakeServer::pop3_from_str(&session(&fast), wires.path());
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("archive");
    let other = tmp.path().join("other-archive");

    // t=0: run A.
    let t0 = Instant::now();
    let mut a = backup(&slow_server, kind, &dir, 30).spawn().unwrap();
    let a_pid = a.id();
    wait_for("A's RETR 1", Duration::from_secs(10), || {
        slow_server.commands_in(1).iter().any(|c| c == "RETR 1")
    });
    if let Some(rest) = Duration::from_secs(1).checked_sub(t0.elapsed()) {
        std::thread::sleep(rest);
    }

    // t=1 s: run B, the identical command, while A waits for its first message.
    let before = tree(&dir);
    let b = run(backup(&slow_server, kind, &dir, 30));
    let after = tree(&dir);
    assert_one_error(
        &b,
        5,
        &[&dir.display().to_string(), &format!("pid {a_pid}")],
        &format!("{kind:?} run B"),
    );
    assert!(b.elapsed < Duration::from_secs(5), "B took {:?}", b.elapsed);
    assert_eq!(b.n("fetched"), 0);
    assert_eq!(slow_server.connections(), 1, "B must not even connect");
    assert!(
        before == after,
        "{kind:?}: the archive changed while B ran: before {:?}, after {:?}",
        before.keys().collect::<Vec<_>>(),
        after.keys().collect::<Vec<_>>()
    );

    // A run on another archive is not blocked by A's lock.
    let e = run(backup(&fast_server, kind, &other, 5));
    assert_ok(&e, "run on another archive");
    assert_counts(&e, (5, 5, 0, 0), "run on another archive");
    assert_archive(kind, &other, &m, "the other archive");
    assert!(
        a.try_wait().unwrap().is_none(),
        "A ended before the other archive's run finished: the overlap was not tested"
    );

    // t=3 s: A dies without cleanup.
    if let Some(rest) = Duration::from_secs(3).checked_sub(t0.elapsed()) {
        std::thread::sleep(rest);
    }
    a.kill().unwrap();
    let st = a.wait().unwrap();
    assert_eq!(st.signal(), Some(libc::SIGKILL), "A: {st}");
    assert_only_complete(kind, &dir, &m, "after A was killed");
    eprintln!(
        "{kind:?}: A was killed after {:?} holding {} message(s); lock file: {:?}",
        t0.elapsed(),
        stored(kind, &dir).len(),
        fs::read_to_string(dir.join("mailkeep/lock")).ok()
    );

    // Run C: no manual cleanup; finishes the job without downloading anything twice.
    let c = run(backup(&slow_server, kind, &dir, 30));
    assert_ok(&c, &format!("{kind:?} run C"));
    assert_eq!(c.n("listed"), 5);
    assert_eq!(
        c.n("fetched") + c.n("already_archived") + c.n("recovered"),
        5,
        "{c:?}"
    );
    let c_retrs = retrs_and_deles(&slow_server.commands_in(2));
    assert_eq!(c_retrs.len() as u64, c.n("fetched"), "C: {c_retrs:?}");
    assert_archive(kind, &dir, &m, "after C");
    let files = message_files(kind, &dir);

    // Run D: adds nothing.
    let d = run(backup(&slow_server, kind, &dir, 30));
    assert_ok(&d, "run D");
    assert_counts(&d, (5, 0, 5, 0), "run D");
    assert_eq!(
        retrs_and_deles(&slow_server.commands_in(3)),
        Vec::<String>::new()
    );
    assert_eq!(message_files(kind, &dir), files, "D changed the archive");
    assert_archive(kind, &dir, &m, "after D");
}

#[test]
fn case27_concurrent_runs_and_killed_holder_maildir() {
    case27(Kind::Maildir);
}

#[test]
fn case27_concurrent_runs_and_killed_holder_mbox() {
    case27(Kind::Mbox);
}

// ---------------------------------------------------------------------------------------------
// 5. Kill at every ledger event (DESIGN.md invariant 2)

/// Six messages with dates (so Maildir names, mtimes and mbox `From ` lines are the same in
/// every run), lines that mboxrd quotes, dot-stuffed lines, and one without a final line end.
fn kill_test_messages() -> Vec<Vec<u8>> {
    (1..=6)
        .map(|i| {
            let mut m = format!(
                "Received: from relay.example.net by mx.example.org; Mon, 0{i} Jul 2024 10:0{i}:00 +0000\r\n\
                 From: Sender {i} <sender{i}@example.net>\r\n\
                 To: alice@example.org\r\n\
                 Subject: Kill point {i}\r\n\
                 Date: Mon, 0{i} Jul 2024 09:00:00 +0000\r\n\
                 Message-ID: <kill-{i}@example.net>\r\n\
                 \r\n\
                 Body of message {i}.\r\n\
                 From the start of a line (mboxrd quotes it).\r\n\
                 >From already quoted once.\r\n\
                 .a line starting with a dot\r\n\
                 ..\r\n"
            );
            if i == 6 {
                m += "no line end at the end";
            } else {
                m += "end\r\n";
            }
            m.into_bytes()
        })
        .collect()
}

/// Everything a run leaves that must be the same as in a clean run.
#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    files: MessageFiles,
    ledger: LedgerState,
}

fn outcome(kind: Kind, dir: &Path) -> Outcome {
    Outcome {
        files: message_files(kind, dir),
        ledger: ledger_state(dir),
    }
}

/// Runs the kill loop for one listing; returns the number of kill points covered.
fn kill_loop(kind: Kind, octets: Option<u64>) -> u64 {
    let what = format!(
        "{kind:?} {}",
        if octets.is_some() {
            "(LIST sizes inflated: batches of 2)"
        } else {
            "(true LIST sizes: one batch)"
        }
    );
    let wires = tempfile::tempdir().unwrap();
    let emls = kill_test_messages();
    let m = normalized(&emls);
    let mut msgs = write_wires(wires.path(), &emls, "KILL");
    if let Some(o) = octets {
        for msg in &mut msgs {
            msg.octets = o;
        }
    }
    let server = FakeServer::pop3_from_str(&session(&msgs), wires.path());
    let tmp = tempfile::tempdir().unwrap();

    let clean_dir = tmp.path().join("clean");
    let r = run(backup(&server, kind, &clean_dir, 5));
    assert_ok(&r, &format!("{what}: clean run"));
    assert_counts(&r, (6, 6, 0, 0), &format!("{what}: clean run"));
    assert_archive(kind, &clean_dir, &m, &format!("{what}: clean run"));
    let clean = outcome(kind, &clean_dir);
    assert_eq!(clean.ledger.0.len(), 6);

    for n in 0..100u64 {
        let dir = tmp.path().join(format!("kill-{n}"));
        let mut cmd = backup(&server, kind, &dir, 5);
        cmd.env(KILL_VAR, n.to_string());
        let killed = run(cmd);
        match killed.code() {
            Some(137) => {}
            Some(0) => {
                // Past the last event: the run just finished.
                assert_counts(&killed, (6, 6, 0, 0), &format!("{what}: N={n}"));
                assert_eq!(outcome(kind, &dir), clean, "{what}: N={n} (no kill)");
                // Every N before this one killed the run and was checked.
                eprintln!("{what}: {n} kill points (N={n} ran to the end)");
                return n;
            }
            _ => panic!("{what}: N={n}: {killed:?}"),
        }
        assert_only_complete(kind, &dir, &m, &format!("{what}: killed after {n} events"));

        let r = run(backup(&server, kind, &dir, 5));
        let label = format!("{what}: rerun after a kill after {n} events");
        assert_ok(&r, &label);
        assert_eq!(r.n("listed"), 6, "{label}");
        assert_eq!(
            r.n("fetched") + r.n("already_archived") + r.n("recovered"),
            6,
            "{label}: {r:?}"
        );
        let retrs = retrs_and_deles(&server.commands_in(server.connections()));
        assert_eq!(retrs.len() as u64, r.n("fetched"), "{label}: {retrs:?}");
        // What the rerun adopted (a killed run's Maildir files) is recorded as unverified.
        assert_eq!(unverified(&dir), r.n("recovered"), "{label}");
        let got = outcome(kind, &dir);
        assert!(
            got == clean,
            "{label}: differs from the clean run\n got: {got:#?}\n clean: {clean:#?}"
        );
    }
    panic!("{what}: the run never got past 100 events");
}

fn kill_at_every_event(kind: Kind) {
    let one_batch = kill_loop(kind, None);
    // LIST announcing 17 MiB per message makes the engine commit a batch every 2 messages
    // (BATCH_BYTES is 32 MiB): more ledger events to kill at, same bytes on the wire.
    let batches = kill_loop(kind, Some(17 * 1024 * 1024));
    println!("kill points covered: backup pop3 (fake server) {kind:?} one batch {one_batch}");
    println!("kill points covered: backup pop3 (fake server) {kind:?} batches of 2 {batches}");
    assert!(one_batch >= 1, "{kind:?}: no kill point with one batch");
    assert!(batches > 1, "{kind:?}: only {batches} kill point(s)");
}

#[test]
fn kill_at_every_ledger_event_maildir() {
    kill_at_every_event(Kind::Maildir);
}

#[test]
fn kill_at_every_ledger_event_mbox() {
    kill_at_every_event(Kind::Mbox);
}

/// A server that reuses a UIDL for a different message (another size) after a migration: the
/// new message is archived as new, the archived one is kept, and `--delete-after-backup`
/// deletes only what is archived under that size (newcomer review, bug 1d).
#[test]
fn reused_uidl_with_another_size_is_archived_as_new_and_not_deleted_blindly() {
    let t = tempfile::tempdir().unwrap();
    let first = b"Subject: old message\r\n\r\nold body\r\n".to_vec();
    let second = b"Subject: a different, longer message\r\n\r\nnew body, longer\r\n".to_vec();
    let wires = t.path().join("wires");
    fs::create_dir(&wires).unwrap();
    let m1 = write_wires(&wires, std::slice::from_ref(&first), "SAME");
    let s1 = FakeServer::pop3_from_str(&session(&m1), &wires);
    let dir = t.path().join("a");
    let r = run(backup(&s1, Kind::Maildir, &dir, 10));
    assert_ok(&r, "first run");
    assert_eq!(r.n("fetched"), 1);

    let wires2 = t.path().join("wires2");
    fs::create_dir(&wires2).unwrap();
    let m2 = write_wires(&wires2, std::slice::from_ref(&second), "SAME");
    assert_eq!(m1[0].uidl, m2[0].uidl);
    let s2 = FakeServer::pop3_from_str(&session(&m2), &wires2);
    let r = run(backup(&s2, Kind::Maildir, &dir, 10));
    assert_ok(&r, "second run");
    assert_eq!(r.n("fetched"), 1, "{r:?}");
    assert!(
        r.warnings().iter().any(|w| w.contains("reused")),
        "{:?}",
        r.warnings()
    );
    assert_archive(
        Kind::Maildir,
        &dir,
        &[normalize(&first), normalize(&second)],
        "both messages archived",
    );
}

/// An archived file deleted by hand is fetched again, and `--delete-after-backup` deletes on
/// the server only messages whose archived copy verifies by SHA-256 (newcomer review, 1b).
#[test]
fn a_missing_or_damaged_archived_copy_is_never_deleted_from_the_server() {
    let t = tempfile::tempdir().unwrap();
    let emls: Vec<Vec<u8>> = (1..=3)
        .map(|i| format!("Subject: m{i}\r\n\r\nbody {i}\r\n").into_bytes())
        .collect();
    let wires = t.path().join("wires");
    fs::create_dir(&wires).unwrap();
    let msgs = write_wires(&wires, &emls, "KEEP");
    let server = FakeServer::pop3_from_str(&session(&msgs), &wires);
    let dir = t.path().join("a");
    assert_ok(&run(backup(&server, Kind::Maildir, &dir, 10)), "first run");
    let mut files: Vec<PathBuf> = fs::read_dir(dir.join("cur"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    // m1's file deleted by hand; m2's file damaged (same size, one byte changed).
    let gone = files
        .iter()
        .find(|p| fs::read(p).unwrap().ends_with(b"body 1\n"))
        .unwrap();
    let hurt = files
        .iter()
        .find(|p| fs::read(p).unwrap().ends_with(b"body 2\n"))
        .unwrap();
    fs::remove_file(gone).unwrap();
    let mut bytes = fs::read(hurt).unwrap();
    let last = bytes.len() - 2;
    bytes[last] = b'X';
    fs::write(hurt, &bytes).unwrap();

    let mut cmd = backup(&server, Kind::Maildir, &dir, 10);
    cmd.arg("--delete-after-backup");
    let r = run(cmd);
    assert_ok(&r, "run with deletion");
    assert_eq!(r.n("fetched"), 1, "m1 is fetched again: {r:?}");
    // m1 (fetched again, verified) and m3 are deleted; damaged m2 is not.
    assert_eq!(r.n("deleted"), 2, "{r:?}");
    let deles: Vec<String> = server
        .commands()
        .into_iter()
        .filter(|c| c.starts_with("DELE"))
        .collect();
    assert_eq!(deles, ["DELE 1", "DELE 3"]);
    assert!(
        r.warnings()
            .iter()
            .any(|w| w.contains("missing or damaged")),
        "{:?}",
        r.warnings()
    );
}

/// A server without UIDL (RFC 1939 7 makes it optional): messages are told apart by a hash of
/// their headers (`TOP n 0`) and size, the run says so once, and a second run fetches nothing.
#[test]
fn a_server_without_uidl_still_backs_up_incrementally() {
    let t = tempfile::tempdir().unwrap();
    let emls: Vec<Vec<u8>> = (1..=3)
        .map(|i| format!("Subject: n{i}\r\nMessage-ID: <n{i}@x>\r\n\r\nbody {i}\r\n").into_bytes())
        .collect();
    let wires = t.path().join("wires");
    fs::create_dir(&wires).unwrap();
    let msgs = write_wires(&wires, &emls, "unused");
    let mut s = String::new();
    s += "S: +OK POP3 fake ready\n";
    s += "C: CAPA\nS: +OK capability list follows\nS: USER\nS: TOP\nS: .\n";
    s += "C: USER alice\nS: +OK\nC: PASS secret\nS: +OK\n";
    s += "C: UIDL\nS: -ERR command not supported\n";
    s += "C: LIST\nS: +OK scan listing follows\n";
    for (i, m) in msgs.iter().enumerate() {
        s += &format!("S: {} {}\n", i + 1, m.octets);
    }
    s += "S: .\n";
    for (i, eml) in emls.iter().enumerate() {
        let head_end = eml.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        let top = format!("m{}.top0-wire", i + 1);
        let mut wire = eml[..head_end].to_vec();
        wire.extend_from_slice(b".\r\n");
        fs::write(wires.join(&top), wire).unwrap();
        s += &format!("C: TOP {} 0\nS: +OK\nS+ {top}\n", i + 1);
    }
    for (i, m) in msgs.iter().enumerate() {
        s += &format!(
            "C: RETR {}\nS: +OK {} octets\nS+ {}\n",
            i + 1,
            m.octets,
            m.file
        );
    }
    s += "C: QUIT\nS: +OK bye\n";
    let server = FakeServer::pop3_from_str(&s, &wires);
    let dir = t.path().join("a");
    let r = run(backup(&server, Kind::Mbox, &dir, 10));
    assert_ok(&r, "first run");
    assert_eq!(r.n("fetched"), 3, "{r:?}");
    assert!(
        r.warnings().iter().any(|w| w.contains("no UIDL")),
        "{:?}",
        r.warnings()
    );
    let r2 = run(backup(&server, Kind::Mbox, &dir, 10));
    assert_ok(&r2, "second run");
    assert_eq!(
        (r2.n("fetched"), r2.n("already_archived")),
        (0, 3),
        "{r2:?}"
    );
    assert!(r2.warnings().is_empty(), "said once: {:?}", r2.warnings());
    assert_archive(
        Kind::Mbox,
        &dir,
        &emls.iter().map(|e| normalize(e)).collect::<Vec<_>>(),
        "three messages, each once",
    );
}

// ---------------------------------------------------------------------------------------------
// A UIDL the server reuses for another message of the same size (issue 14)

/// Session 1 lists message X under UIDL `R-0001`; session 2 lists another message Y of the
/// same size under the same UIDL (RFC 1939 7 says it must not). A backup that deletes reads
/// the message again before deleting it, finds other bytes than X's, archives Y beside X, and
/// only then deletes it: both are in the archive, nothing is lost.
fn uidl_reused_same_size(kind: Kind) {
    let wires = tempfile::tempdir().unwrap();
    let body = |c: char| {
        format!(
            "From: a@example.net\r\nTo: alice@example.org\r\nSubject: reused {c}\r\nMessage-ID: <reused-{c}@example.net>\r\n\r\nBody {c}.\r\n"
        )
        .into_bytes()
    };
    let (x, y) = (body('X'), body('Y'));
    assert_eq!(x.len(), y.len());
    let mut first = write_wires(wires.path(), std::slice::from_ref(&x), "R");
    let mut second = write_wires(wires.path(), std::slice::from_ref(&y), "R");
    first[0].file = "x.pop-wire".into();
    second[0].file = "y.pop-wire".into();
    fs::rename(
        wires.path().join("m1.pop-wire"),
        wires.path().join("y.pop-wire"),
    )
    .unwrap();
    fs::write(wires.path().join("x.pop-wire"), pop_wire(&x)).unwrap();
    let script = sessions(&[session(&first), session(&second)]);
    let server = FakeServer::pop3_from_str(&script, wires.path());
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("archive");

    let r = run(backup(&server, kind, &dir, 5));
    assert_ok(&r, "session 1");
    assert_counts(&r, (1, 1, 0, 0), "session 1");
    assert_archive(
        kind,
        &dir,
        &normalized(std::slice::from_ref(&x)),
        "session 1",
    );

    let mut cmd = backup(&server, kind, &dir, 5);
    cmd.arg("--delete-after-backup");
    let r = run(cmd);
    assert_ok(&r, "session 2");
    assert_eq!(r.n("fetched"), 1, "session 2: {r:?}");
    assert_eq!(r.n("deleted"), 1, "session 2: {r:?}");
    assert_eq!(
        r.json["warnings"],
        serde_json::json!([format!(
            "alice@{}: 1 message(s) on the server differ from their archived copy (same UIDL and size, other bytes: first UIDL R-0001); each is archived from the server now",
            server.addr()
        )]),
        "{r:?}"
    );
    // Read to compare, read again to archive, and only then deleted.
    let cmds = retrs_and_deles(&server.commands_in(2));
    assert_eq!(cmds, ["RETR 1", "RETR 1", "DELE 1"], "{cmds:?}");
    assert_archive(kind, &dir, &normalized(&[x, y]), "session 2");
}

#[test]
fn a_uidl_reused_for_a_message_of_the_same_size_is_archived_before_it_is_deleted_maildir() {
    uidl_reused_same_size(Kind::Maildir);
}

#[test]
fn a_uidl_reused_for_a_message_of_the_same_size_is_archived_before_it_is_deleted_mbox() {
    uidl_reused_same_size(Kind::Mbox);
}

/// A message the server refuses to send again when a backup that deletes compares it (`-ERR`
/// to its RETR: deleted meanwhile by another client) is left alone; the others are still
/// compared and deleted. One message's refusal does not stop the deletions of the account.
#[test]
fn a_message_refused_while_comparing_is_kept_and_the_others_are_deleted() {
    let wires = tempfile::tempdir().unwrap();
    let emls = kill_test_messages();
    let msgs = write_wires(wires.path(), &emls[..2], "CMP");
    let mut second = session(&msgs);
    second = second.replacen(
        "C: RETR 1\nS: +OK",
        "C: RETR 1\nS: -ERR no such message\nC: RETR 1 (unused)\nS: +OK",
        1,
    );
    let server = FakeServer::pop3_from_str(&sessions(&[session(&msgs), second]), wires.path());
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("archive");
    let r = run(backup(&server, Kind::Maildir, &dir, 5));
    assert_ok(&r, "session 1");
    let mut cmd = backup(&server, Kind::Maildir, &dir, 5);
    cmd.arg("--delete-after-backup");
    let r = run(cmd);
    assert_eq!(r.code(), Some(0), "{r:?}");
    assert_eq!(r.n("deleted"), 1, "{r:?}");
    let cmds = retrs_and_deles(&server.commands_in(2));
    assert_eq!(cmds, ["RETR 1", "RETR 2", "DELE 2"], "{cmds:?}");
    assert_archive(Kind::Maildir, &dir, &normalized(&emls[..2]), "session 2");
}
