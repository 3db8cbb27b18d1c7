//! POP3 server quirks (issue 15), one row each, through the real binary against the scripted
//! fake POP3 server (tests/support/fake_server.rs): a UIDL listed for several messages (RFC
//! 1939 7 says it names one), byte-identical duplicates, no UIDL, no UIDL and no TOP, UIDLs that
//! change between sessions, the response codes of RFC 2449 section 8 and RFC 3206, a RETR
//! refused, a RETR shorter than LIST said.
//!
//! Each row runs a backup against the quirky server and checks the exact archive (Maildir
//! files, bytes), the JSON counts (`listed = fetched + already_archived + failed`), the exit
//! code and the wording; then reruns against the quirky server again (nothing moves) and against
//! a healthy one (each message its own UIDL), which must converge: every message archived once,
//! none twice, exit 0.

mod support;

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::process::Stdio;

use serde_json::Value;
use support::fake_server::FakeServer;
use support::mailkeep;
use support::run::{maildir_messages, Run};

const PASSWORD_VAR: &str = "MAILKEEP_QUIRKS_POP3_PASSWORD";

/// Message `i` (1-based) of the test maildrop, CRLF line ends, as the server stores it.
fn message(i: usize) -> Vec<u8> {
    format!(
        "From: sender{i}@example.com\r\nTo: alice@example.com\r\nSubject: message {i}\r\nMessage-ID: <m{i}@example.com>\r\nDate: Mon, 7 Dec 2020 10:0{i}:00 +0000\r\n\r\nBody of message {i}.\r\n.starts with a dot\r\n"
    )
    .into_bytes()
}

/// The archived form of message `i` (LF line ends, README "Byte fidelity").
fn stored(i: usize) -> Vec<u8> {
    mailkeep::core::message::crlf_to_lf(&message(i))
}

/// The POP3 wire form (dot-stuffed, `.` line) of `raw`.
fn wire(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for line in raw.split_inclusive(|&b| b == b'\n') {
        if line.starts_with(b".") {
            out.push(b'.');
        }
        out.extend_from_slice(line);
    }
    out.extend_from_slice(b".\r\n");
    out
}

/// A scripted maildrop: what each listed message is and how the server behaves.
#[derive(Clone)]
struct Server {
    /// CAPA lines (without the `+OK` and `.`); `None`: `-ERR` to CAPA.
    capa: Vec<String>,
    /// The answer to PASS (one `S:` line).
    pass: String,
    /// Listed messages: (message index, UIDL).
    msgs: Vec<(usize, String)>,
    /// `-ERR` to UIDL.
    no_uidl: bool,
    /// `-ERR` to TOP.
    no_top: bool,
    /// Message numbers whose RETR is answered `-ERR` with this text.
    retr_err: BTreeMap<u32, String>,
    /// Octets LIST adds to a message's real size, by message number.
    list_lies: BTreeMap<u32, u64>,
    /// Message numbers whose second RETR sends another message (index): the maildrop
    /// changed under the same number between two reads.
    second_retr: BTreeMap<u32, usize>,
    /// Message numbers LIST shows and the UIDL listing leaves out.
    uidl_omits: Vec<u32>,
}

impl Server {
    /// A healthy server listing messages `msgs` (index, UIDL).
    fn new(msgs: &[(usize, &str)]) -> Server {
        Server {
            capa: ["USER", "UIDL", "TOP", "RESP-CODES"]
                .map(String::from)
                .to_vec(),
            pass: "+OK logged in".into(),
            msgs: msgs.iter().map(|(i, u)| (*i, u.to_string())).collect(),
            no_uidl: false,
            no_top: false,
            retr_err: BTreeMap::new(),
            list_lies: BTreeMap::new(),
            second_retr: BTreeMap::new(),
            uidl_omits: Vec::new(),
        }
    }

    fn without_uidl(mut self) -> Server {
        self.no_uidl = true;
        self.capa.retain(|c| c != "UIDL");
        self
    }

    fn without_top(mut self) -> Server {
        self.no_top = true;
        self.capa.retain(|c| c != "TOP");
        self
    }

    fn pass(mut self, line: &str) -> Server {
        self.pass = line.into();
        self
    }

    fn capa(mut self, line: &str) -> Server {
        self.capa.push(line.into());
        self
    }

    /// Writes the message files into `dir` and starts the fake server.
    fn start(&self, dir: &Path) -> FakeServer {
        let mut s = String::from("S: +OK POP3 ready\n");
        s += "C: CAPA\nS: +OK\n";
        for c in &self.capa {
            s += &format!("S: {c}\n");
        }
        s += "S: .\n";
        s += "C: USER alice\nS: +OK\n";
        s += &format!("C: PASS secret\nS: {}\n", self.pass);
        s += "C: CAPA\nS: +OK\n";
        for c in &self.capa {
            s += &format!("S: {c}\n");
        }
        s += "S: .\n";
        s += "C: LIST\nS: +OK\n";
        for (n, (i, _)) in self.msgs.iter().enumerate() {
            let n = n as u32 + 1;
            let lie = self.list_lies.get(&n).copied().unwrap_or(0);
            s += &format!("S: {n} {}\n", message(*i).len() as u64 + lie);
        }
        s += "S: .\n";
        if self.no_uidl {
            s += "C: UIDL\nS: -ERR command not supported\n";
        } else {
            s += "C: UIDL\nS: +OK\n";
            for (n, (_, u)) in self.msgs.iter().enumerate() {
                if self.uidl_omits.contains(&(n as u32 + 1)) {
                    continue;
                }
                s += &format!("S: {} {u}\n", n + 1);
            }
            s += "S: .\n";
        }
        for (n, (i, _)) in self.msgs.iter().enumerate() {
            let n = n + 1;
            let file = format!("m{i}.pop-wire");
            fs::write(dir.join(&file), wire(&message(*i))).unwrap();
            if self.no_top {
                s += &format!("C: TOP {n} 0\nS: -ERR unknown command\n");
            } else {
                let raw = message(*i);
                let head_end = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
                let top = format!("m{i}.top0-wire");
                fs::write(dir.join(&top), wire(&raw[..head_end])).unwrap();
                s += &format!("C: TOP {n} 0\nS: +OK\nS+ {top}\n");
            }
            match self.retr_err.get(&(n as u32)) {
                Some(text) => s += &format!("C: RETR {n}\nS: -ERR {text}\n"),
                None => s += &format!("C: RETR {n}\nS: +OK\nS+ {file}\n"),
            }
            if let Some(j) = self.second_retr.get(&(n as u32)) {
                let other = format!("m{j}.pop-wire");
                fs::write(dir.join(&other), wire(&message(*j))).unwrap();
                s += &format!("C: RETR {n}\nS: +OK\nS+ {other}\n");
            }
        }
        s += "C: QUIT\nS: +OK bye\n";
        FakeServer::pop3_from_str(&s, dir)
    }
}

/// `mailkeep backup pop3://alice@ADDR maildir:DIR --allow-plaintext --password-env VAR --json`
/// plus `extra`.
fn backup(server: &FakeServer, archive: &Path, extra: &[&str]) -> Run {
    let out = mailkeep()
        .arg("backup")
        .arg(format!("pop3://alice@{}", server.addr()))
        .arg(format!("maildir:{}", archive.display()))
        .args([
            "--allow-plaintext",
            "--password-env",
            PASSWORD_VAR,
            "--json",
        ])
        .args(["--timeout", "20"])
        .args(extra)
        .env(PASSWORD_VAR, "secret")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    Run::from_output(out)
}

/// The archived messages' bytes, sorted.
fn archived(archive: &Path) -> Vec<Vec<u8>> {
    let mut v: Vec<Vec<u8>> = maildir_messages(archive)
        .into_iter()
        .map(|(name, bytes)| {
            assert!(name.starts_with("cur/"), "a message outside cur/: {name}");
            bytes
        })
        .collect();
    v.sort();
    v
}

fn expected(indices: &[usize]) -> Vec<Vec<u8>> {
    let mut v: Vec<Vec<u8>> = indices.iter().map(|i| stored(*i)).collect();
    v.sort();
    v
}

/// What a run must report.
struct Want<'a> {
    code: i32,
    /// (listed, fetched, already_archived, failed)
    counts: (u64, u64, u64, u64),
    /// Messages archived after the run (indices).
    archive: &'a [usize],
    /// Exact `message` and `error` of each failure, in order.
    failures: &'a [(&'a str, &'a str)],
    /// Every warning that must be in the report (exact lines).
    warnings: &'a [&'a str],
}

#[track_caller]
fn check(row: &str, what: &str, run: &Run, archive: &Path, want: &Want<'_>, addr: &str) {
    assert_eq!(run.code, want.code, "{row} {what}: exit code: {run:#?}");
    let r = &run.report;
    let counts = (
        run.n("listed"),
        run.n("fetched"),
        run.n("already_archived"),
        r["failures"].as_array().map_or(0, |f| f.len() as u64),
    );
    assert_eq!(counts, want.counts, "{row} {what}: counts: {run:#?}");
    assert_eq!(
        counts.0,
        counts.1 + counts.2 + counts.3,
        "{row} {what}: listed = stored + already + failed"
    );
    let failures: Vec<(String, String)> = r["failures"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|f| {
            (
                f["message"].as_str().unwrap().to_string(),
                f["error"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let want_failures: Vec<(String, String)> = want
        .failures
        .iter()
        .map(|(m, e)| {
            (
                m.to_string(),
                e.replace("ACCOUNT", &format!("alice@{addr}")),
            )
        })
        .collect();
    assert_eq!(failures, want_failures, "{row} {what}: failures");
    let warnings: Vec<&str> = r["warnings"]
        .as_array()
        .map(|w| w.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    for w in want.warnings {
        let w = &w
            .replace("ACCOUNT", &format!("alice@{addr}"))
            .replace("KEY", "pop3:alice@127.0.0.1");
        assert!(
            warnings.contains(&w.as_str()),
            "{row} {what}: missing warning {w:?} in {warnings:#?}"
        );
    }
    assert_eq!(
        archived(archive),
        expected(want.archive),
        "{row} {what}: archive content"
    );
}

/// A login refused with a response code: the run stops at once, exit `code`, one line that
/// quotes the server; no archive is created; a rerun against a healthy server archives all.
#[track_caller]
fn refused_login(row: &str, server: Server, code: i32, line: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let archive = tmp.path().join("archive");
    let fake = server.start(tmp.path());
    let run = backup(&fake, &archive, &[]);
    assert_eq!(run.code, code, "{row}: {run:#?}");
    let port = fake.addr().rsplit(':').next().unwrap().to_string();
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(
        lines,
        vec![line.replace("PORT", &port).as_str()],
        "{row}: wording"
    );
    assert!(!run.stderr.contains("secret"), "{row}: the password leaked");
    assert!(
        !archive.exists(),
        "{row}: a refused login created the archive"
    );
    drop(fake);
    let healthy = Server::new(&[(1, "u1"), (2, "u2")]).start(tmp.path());
    let run = backup(&healthy, &archive, &[]);
    check(
        row,
        "healthy rerun",
        &run,
        &archive,
        &Want {
            code: 0,
            counts: (2, 2, 0, 0),
            archive: &[1, 2],
            failures: &[],
            warnings: &[],
        },
        &healthy.addr(),
    );
}

/// Runs `quirky` (first run, `first`), `quirky` again (`again`), then a healthy server listing
/// `healthy` (`converged`).
#[track_caller]
fn three_runs(
    row: &str,
    quirky: Server,
    first: Want<'_>,
    again: Want<'_>,
    healthy: Server,
    converged: Want<'_>,
) -> (FakeServer, FakeServer) {
    let tmp = tempfile::tempdir().unwrap();
    let archive = tmp.path().join("archive");
    let fake = quirky.start(tmp.path());
    let run = backup(&fake, &archive, &[]);
    check(row, "first run", &run, &archive, &first, &fake.addr());
    let files = maildir_messages(&archive);
    let run = backup(&fake, &archive, &[]);
    check(row, "second run", &run, &archive, &again, &fake.addr());
    if again.counts.1 == 0 && first.failures.is_empty() {
        assert_eq!(
            maildir_messages(&archive),
            files,
            "{row}: a rerun with nothing new changed the archive"
        );
    }
    let healthy = healthy.start(tmp.path());
    let run = backup(&healthy, &archive, &[]);
    check(
        row,
        "healthy run",
        &run,
        &archive,
        &converged,
        &healthy.addr(),
    );
    (fake, healthy)
}

#[test]
fn duplicate_uidl_two_messages() {
    let quirky = Server::new(&[(1, "u1"), (2, "u1"), (3, "u3")]);
    let (fake, _) = three_runs(
        "two messages share a UIDL",
        quirky,
        Want {
            code: 0,
            counts: (3, 3, 0, 0),
            archive: &[1, 2, 3],
            failures: &[],
            warnings: &["ACCOUNT: the server listed 1 UIDL(s) for more than one message (first: u1); those messages are told apart by their content (downloaded once more on every run to hash them)"],
        },
        Want {
            code: 0,
            counts: (3, 0, 3, 0),
            archive: &[1, 2, 3],
            failures: &[],
            warnings: &[],
        },
        // The server mends its UIDLs: the two get UIDLs of their own; their bytes are
        // recognised (renamed in the ledger), nothing is stored twice.
        Server::new(&[(1, "n1"), (2, "n2"), (3, "u3")]),
        Want {
            code: 0,
            counts: (3, 0, 3, 0),
            archive: &[1, 2, 3],
            failures: &[],
            warnings: &["ACCOUNT: 2 message(s) came back under another UIDL with the bytes already archived (first: `KEY UIDL u1 SHA e6cdeb82c8125e4c` is now `KEY UIDL n1`); renamed in the ledger, not archived twice"],
        },
    );
    // The first run read both messages twice (once to tell them apart, once to store them);
    // the second run once each (to tell them apart), the unique one not at all.
    let retrs = |n: usize| {
        fake.commands_in(n)
            .into_iter()
            .filter(|c| c.starts_with("RETR"))
            .collect::<Vec<_>>()
    };
    assert_eq!(retrs(1), ["RETR 1", "RETR 2", "RETR 1", "RETR 2", "RETR 3"]);
    assert_eq!(retrs(2), ["RETR 1", "RETR 2"]);
}

#[test]
fn duplicate_uidl_three_messages_and_the_duplicates_disappear() {
    three_runs(
        "three messages share a UIDL",
        Server::new(&[(1, "dup"), (2, "dup"), (3, "dup"), (4, "u4")]),
        Want {
            code: 0,
            counts: (4, 4, 0, 0),
            archive: &[1, 2, 3, 4],
            failures: &[],
            warnings: &["ACCOUNT: the server listed 1 UIDL(s) for more than one message (first: dup); those messages are told apart by their content (downloaded once more on every run to hash them)"],
        },
        Want {
            code: 0,
            counts: (4, 0, 4, 0),
            archive: &[1, 2, 3, 4],
            failures: &[],
            warnings: &[],
        },
        // Two of the three were deleted by another client; the one left is still `dup`, and
        // a new message arrived: only that one is stored.
        Server::new(&[(2, "dup"), (4, "u4"), (5, "u5")]),
        Want {
            code: 0,
            counts: (3, 1, 2, 0),
            archive: &[1, 2, 3, 4, 5],
            failures: &[],
            warnings: &[],
        },
    );
}

#[test]
fn duplicate_uidl_with_the_same_bytes_is_archived_once() {
    // One message listed twice (same UIDL, same bytes): stored once, the second counted as
    // already archived; both may be deleted (each compared first).
    let tmp = tempfile::tempdir().unwrap();
    let archive = tmp.path().join("archive");
    let fake = Server::new(&[(1, "u1"), (1, "u1"), (2, "u2")]).start(tmp.path());
    let run = backup(&fake, &archive, &[]);
    let same = "ACCOUNT: 1 message(s) are listed twice with the same bytes (first: UIDL u1, message 2); each is archived once";
    check(
        "same bytes twice",
        "first run",
        &run,
        &archive,
        &Want {
            code: 0,
            counts: (3, 2, 1, 0),
            archive: &[1, 2],
            failures: &[],
            warnings: &["ACCOUNT: the server listed 1 UIDL(s) for more than one message (first: u1); those messages are told apart by their content (downloaded once more on every run to hash them)", same],
        },
        &fake.addr(),
    );
    let run = backup(&fake, &archive, &["--delete-after-backup"]);
    check(
        "same bytes twice",
        "delete run",
        &run,
        &archive,
        &Want {
            code: 0,
            counts: (3, 0, 3, 0),
            archive: &[1, 2],
            failures: &[],
            warnings: &[same],
        },
        &fake.addr(),
    );
    assert_eq!(run.n("deleted"), 3, "{run:#?}");
    let dele: Vec<String> = fake
        .commands_in(2)
        .into_iter()
        .filter(|c| c.starts_with("DELE") || c.starts_with("RETR") || c == "QUIT")
        .collect();
    // RETR 1 and 2 tell the pair apart while listing (their whole SHA-256 is then compared
    // with the record); the delete step reads only the third again before any DELE.
    assert_eq!(
        dele,
        ["RETR 1", "RETR 2", "RETR 3", "DELE 1", "DELE 2", "DELE 3", "QUIT"]
    );
}

#[test]
fn duplicate_uidl_deleted_after_backup_each_compared() {
    let tmp = tempfile::tempdir().unwrap();
    let archive = tmp.path().join("archive");
    let fake = Server::new(&[(1, "u1"), (2, "u1"), (3, "u3")]).start(tmp.path());
    let run = backup(&fake, &archive, &["--delete-after-backup"]);
    check(
        "duplicate UIDL, --delete-after-backup",
        "first run",
        &run,
        &archive,
        &Want {
            code: 0,
            counts: (3, 3, 0, 0),
            archive: &[1, 2, 3],
            failures: &[],
            warnings: &[],
        },
        &fake.addr(),
    );
    assert_eq!(run.n("deleted"), 3, "{run:#?}");
    let dele: Vec<String> = fake
        .commands_in(1)
        .into_iter()
        .filter(|c| c.starts_with("DELE"))
        .collect();
    assert_eq!(dele, ["DELE 1", "DELE 2", "DELE 3"]);
}

#[test]
fn no_uidl_uses_header_keys_from_top() {
    let (fake, _) = three_runs(
        "no UIDL",
        Server::new(&[(1, ""), (2, ""), (3, "")]).without_uidl(),
        Want {
            code: 0,
            counts: (3, 3, 0, 0),
            archive: &[1, 2, 3],
            failures: &[],
            warnings: &["ACCOUNT: the server has no UIDL; messages are told apart by a hash of their headers and size (TOP n 0)"],
        },
        Want {
            code: 0,
            counts: (3, 0, 3, 0),
            archive: &[1, 2, 3],
            failures: &[],
            warnings: &[],
        },
        // Now the server has UIDL: UIDL identities are new names; the bytes are recognised
        // and the records renamed, nothing stored twice.
        Server::new(&[(1, "u1"), (2, "u2"), (3, "u3")]),
        Want {
            code: 0,
            counts: (3, 0, 3, 0),
            archive: &[1, 2, 3],
            failures: &[],
            warnings: &["ACCOUNT: 3 message(s) came back under another UIDL with the bytes already archived (first: `KEY CONTENT content-462c0cc19163f23db4aae00605c99a95` is now `KEY UIDL u1`); renamed in the ledger, not archived twice"],
        },
    );
    // The cost: TOP n 0 per message per run; a rerun downloads nothing.
    let second: Vec<String> = fake
        .commands_in(2)
        .into_iter()
        .filter(|c| c.starts_with("RETR") || c.starts_with("TOP"))
        .collect();
    assert_eq!(second, ["TOP 1 0", "TOP 2 0", "TOP 3 0"]);
}

#[test]
fn no_uidl_and_no_top_reads_whole_messages() {
    let (fake, _) = three_runs(
        "no UIDL, no TOP",
        Server::new(&[(1, ""), (2, ""), (3, "")])
            .without_uidl()
            .without_top(),
        Want {
            code: 0,
            counts: (3, 3, 0, 0),
            archive: &[1, 2, 3],
            failures: &[],
            warnings: &["ACCOUNT: the server has neither UIDL nor TOP; every message is downloaded on every run to tell it apart by its headers and size"],
        },
        Want {
            code: 0,
            counts: (3, 0, 3, 0),
            archive: &[1, 2, 3],
            failures: &[],
            warnings: &[],
        },
        // TOP works again: the same header keys, so nothing moves.
        Server::new(&[(1, ""), (2, ""), (3, "")]).without_uidl(),
        Want {
            code: 0,
            counts: (3, 0, 3, 0),
            archive: &[1, 2, 3],
            failures: &[],
            warnings: &[],
        },
    );
    // The cost: every message downloaded on every run.
    let second: Vec<String> = fake
        .commands_in(2)
        .into_iter()
        .filter(|c| c.starts_with("RETR") || c.starts_with("TOP"))
        .collect();
    assert_eq!(second, ["TOP 1 0", "RETR 1", "RETR 2", "RETR 3"]);
}

#[test]
fn no_uidl_with_a_message_listed_twice() {
    // Without UIDL two listed messages with the same headers and size share a header key: told
    // apart by their whole content; identical bytes are archived once.
    three_runs(
        "no UIDL, one message twice",
        Server::new(&[(1, ""), (1, ""), (2, "")]).without_uidl(),
        Want {
            code: 0,
            counts: (3, 2, 1, 0),
            archive: &[1, 2],
            failures: &[],
            warnings: &[
                "ACCOUNT: 1 header key(s) are shared by more than one message (same headers and size; first: content-462c0cc19163f23db4aae00605c99a95); those messages are told apart by their content (downloaded on every run to hash them)",
                "ACCOUNT: 1 message(s) are listed twice with the same bytes (first: UIDL content-462c0cc19163f23db4aae00605c99a95, message 2); each is archived once",
            ],
        },
        Want {
            code: 0,
            counts: (3, 0, 3, 0),
            archive: &[1, 2],
            failures: &[],
            warnings: &["ACCOUNT: 1 message(s) are listed twice with the same bytes (first: UIDL content-462c0cc19163f23db4aae00605c99a95, message 2); each is archived once"],
        },
        Server::new(&[(1, ""), (2, "")]).without_uidl(),
        Want {
            code: 0,
            counts: (2, 0, 2, 0),
            archive: &[1, 2],
            failures: &[],
            warnings: &[],
        },
    );
}

#[test]
fn uidl_changes_between_runs_for_the_same_content() {
    let tmp = tempfile::tempdir().unwrap();
    let archive = tmp.path().join("archive");
    let first = Server::new(&[(1, "a1"), (2, "a2")]).start(tmp.path());
    let run = backup(&first, &archive, &[]);
    check(
        "UIDLs change",
        "first run",
        &run,
        &archive,
        &Want {
            code: 0,
            counts: (2, 2, 0, 0),
            archive: &[1, 2],
            failures: &[],
            warnings: &[],
        },
        &first.addr(),
    );
    let files = maildir_messages(&archive);
    drop(first);
    // The server renumbered its UIDLs (RFC 1939 7 says it must not) and a message arrived.
    let second = Server::new(&[(1, "b1"), (2, "b2"), (3, "b3")]).start(tmp.path());
    let run = backup(&second, &archive, &[]);
    check(
        "UIDLs change",
        "renumbered run",
        &run,
        &archive,
        &Want {
            code: 0,
            counts: (3, 1, 2, 0),
            archive: &[1, 2, 3],
            failures: &[],
            warnings: &["ACCOUNT: 2 message(s) came back under another UIDL with the bytes already archived (first: `KEY UIDL a1` is now `KEY UIDL b1`); renamed in the ledger, not archived twice"],
        },
        &second.addr(),
    );
    // The two files archived first are untouched.
    let now = maildir_messages(&archive);
    for f in &files {
        assert!(now.contains(f), "{} changed or vanished", f.0);
    }
    let run = backup(&second, &archive, &[]);
    check(
        "UIDLs change",
        "rerun",
        &run,
        &archive,
        &Want {
            code: 0,
            counts: (3, 0, 3, 0),
            archive: &[1, 2, 3],
            failures: &[],
            warnings: &[],
        },
        &second.addr(),
    );
    let retrs = second
        .commands_in(2)
        .iter()
        .filter(|c| c.starts_with("RETR"))
        .count();
    assert_eq!(retrs, 0, "a rerun downloads nothing");
}

#[test]
fn in_use() {
    refused_login(
        "[IN-USE]",
        Server::new(&[]).pass("-ERR [IN-USE] maildrop locked by another session"),
        4,
        "mailkeep: alice@127.0.0.1:PORT: the server is temporarily unavailable: the maildrop is in use by another session (`-ERR [IN-USE] maildrop locked by another session` to PASS, RFC 2449 8.1.1); try again later",
    );
}

#[test]
fn login_delay_with_capa_value() {
    refused_login(
        "[LOGIN-DELAY] with LOGIN-DELAY 900",
        Server::new(&[])
            .capa("LOGIN-DELAY 900")
            .pass("-ERR [LOGIN-DELAY] wait a quarter of an hour"),
        4,
        "mailkeep: alice@127.0.0.1:PORT: the server is temporarily unavailable: it allows one login every 900 s (`-ERR [LOGIN-DELAY] wait a quarter of an hour` to PASS, RFC 2449 8.1.2); retry after 900 s",
    );
}

#[test]
fn sys_temp() {
    refused_login(
        "[SYS/TEMP]",
        Server::new(&[]).pass("-ERR [SYS/TEMP] disk quota service down"),
        4,
        "mailkeep: alice@127.0.0.1:PORT: the server is temporarily unavailable: a temporary problem on the server (`-ERR [SYS/TEMP] disk quota service down` to PASS, RFC 3206 4); try again later",
    );
}

#[test]
fn sys_perm() {
    refused_login(
        "[SYS/PERM]",
        Server::new(&[]).pass("-ERR [SYS/PERM] account disabled"),
        3,
        "mailkeep: alice@127.0.0.1:PORT: the server refuses this account until its administrator acts (`-ERR [SYS/PERM] account disabled` to PASS, RFC 3206 4)",
    );
}

#[test]
fn auth() {
    refused_login(
        "[AUTH]",
        Server::new(&[]).pass("-ERR [AUTH] invalid user name or password"),
        3,
        "mailkeep: authentication failed for alice@127.0.0.1:PORT: [AUTH] invalid user name or password",
    );
}

#[test]
fn retr_refused_for_one_message() {
    let mut quirky = Server::new(&[(1, "u1"), (2, "u2"), (3, "u3")]);
    quirky
        .retr_err
        .insert(2, "[SYS/TEMP] message temporarily unavailable".into());
    let tmp = tempfile::tempdir().unwrap();
    let archive = tmp.path().join("archive");
    let fake = quirky.start(tmp.path());
    let error =
        "ACCOUNT: server answered `-ERR [SYS/TEMP] message temporarily unavailable` to RETR 2";
    for what in ["first run", "second run"] {
        let run = backup(&fake, &archive, &["--delete-after-backup"]);
        check(
            "RETR refused",
            what,
            &run,
            &archive,
            &Want {
                code: 1,
                counts: if what == "first run" {
                    (3, 2, 0, 1)
                } else {
                    (3, 0, 2, 1)
                },
                archive: &[1, 3],
                failures: &[("UIDL u2", error)],
                warnings: &["ACCOUNT: nothing deleted from the server because 1 message(s) failed"],
            },
            &fake.addr(),
        );
        // Nothing is deleted while a message failed.
        assert_eq!(run.n("deleted"), 0);
    }
    assert!(!fake.commands().iter().any(|c| c.starts_with("DELE")));
    let healthy = Server::new(&[(1, "u1"), (2, "u2"), (3, "u3")]).start(tmp.path());
    let run = backup(&healthy, &archive, &[]);
    check(
        "RETR refused",
        "healthy run",
        &run,
        &archive,
        &Want {
            code: 0,
            counts: (3, 1, 2, 0),
            archive: &[1, 2, 3],
            failures: &[],
            warnings: &[],
        },
        &healthy.addr(),
    );
}

#[test]
fn duplicate_uidl_whose_content_is_refused() {
    // The content of a repeated UIDL is needed to name it; the server refuses one: that one
    // fails (named), the others are archived, exit 1; nothing is deleted.
    let mut quirky = Server::new(&[(1, "u1"), (2, "u1"), (3, "u3")]);
    quirky.retr_err.insert(2, "no such message".into());
    let tmp = tempfile::tempdir().unwrap();
    let archive = tmp.path().join("archive");
    let fake = quirky.start(tmp.path());
    let error = "ACCOUNT: UIDL u1 (message 2): cannot tell it apart by content: server answered `-ERR no such message` to RETR 2";
    let run = backup(&fake, &archive, &["--delete-after-backup"]);
    check(
        "repeated UIDL, content refused",
        "first run",
        &run,
        &archive,
        &Want {
            code: 1,
            counts: (3, 2, 0, 1),
            archive: &[1, 3],
            failures: &[("UIDL u1", error)],
            warnings: &[
                "ACCOUNT: the server listed 1 UIDL(s) for more than one message (first: u1); those messages are told apart by their content (downloaded once more on every run to hash them)",
                "ACCOUNT: nothing deleted from the server because 1 message(s) failed",
            ],
        },
        &fake.addr(),
    );
    assert!(!fake.commands().iter().any(|c| c.starts_with("DELE")));
    let healthy = Server::new(&[(1, "u1"), (2, "u1"), (3, "u3")]).start(tmp.path());
    let run = backup(&healthy, &archive, &[]);
    check(
        "repeated UIDL, content refused",
        "healthy run",
        &run,
        &archive,
        &Want {
            code: 0,
            counts: (3, 1, 2, 0),
            archive: &[1, 2, 3],
            failures: &[],
            warnings: &[],
        },
        &healthy.addr(),
    );
}

#[test]
fn retr_shorter_than_list_said() {
    // LIST says 40 octets more than RETR sends: the `.` line ends a message (RFC 1939 3), LIST
    // sizes are not checked against it; the message is archived as sent, once.
    let mut quirky = Server::new(&[(1, "u1"), (2, "u2")]);
    quirky.list_lies.insert(2, 40);
    three_runs(
        "RETR shorter than LIST",
        quirky.clone(),
        Want {
            code: 0,
            counts: (2, 2, 0, 0),
            archive: &[1, 2],
            failures: &[],
            warnings: &[],
        },
        Want {
            code: 0,
            counts: (2, 0, 2, 0),
            archive: &[1, 2],
            failures: &[],
            warnings: &[],
        },
        quirky,
        Want {
            code: 0,
            counts: (2, 0, 2, 0),
            archive: &[1, 2],
            failures: &[],
            warnings: &[],
        },
    );
}

#[test]
fn duplicate_uidl_prune_compares_each() {
    // `prune` on a maildrop with a repeated UIDL: each copy's bytes are compared with the
    // archive before it is deleted.
    let tmp = tempfile::tempdir().unwrap();
    let archive = tmp.path().join("archive");
    let fake = Server::new(&[(1, "u1"), (2, "u1"), (3, "u3")]).start(tmp.path());
    backup(&fake, &archive, &[]).assert_code(0);
    let out = mailkeep()
        .arg("prune")
        .arg(format!("pop3://alice@{}", fake.addr()))
        .arg("--archive")
        .arg(format!("maildir:{}", archive.display()))
        .args([
            "--allow-plaintext",
            "--password-env",
            PASSWORD_VAR,
            "--json",
        ])
        .args(["--older-than", "365d", "--yes"])
        .env(PASSWORD_VAR, "secret")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let run = Run::from_output(out);
    assert_eq!(run.code, 0, "{run:#?}");
    let cmds: Vec<String> = fake
        .commands_in(2)
        .into_iter()
        .filter(|c| c.starts_with("DELE") || c.starts_with("RETR"))
        .collect();
    assert_eq!(
        cmds,
        ["RETR 1", "RETR 2", "RETR 1", "RETR 2", "RETR 3", "DELE 1", "DELE 2", "DELE 3"]
    );
}

#[test]
fn migrate_copies_every_message_of_a_repeated_uidl_once() {
    // POP3 -> IMAP: the migration source reads the POP3 listing too; the second message of a
    // repeated UIDL was skipped (lost) before issue 15.
    use support::dovecot::Dovecot;
    use support::run::{dovecot_mailbox, migrate, Side};
    let d = Dovecot::start();
    let target = d.add_user("bob", "target-pw");
    let tmp = tempfile::tempdir().unwrap();
    let fake = Server::new(&[(1, "u1"), (2, "u1"), (3, "u3")]).start(tmp.path());
    let src = Side {
        url: format!("pop3://alice@{}", fake.addr()),
        ca: &d.ca_pem,
        password: "secret",
    };
    let dst = Side::of(&d, "imaps", &target);
    let state = tmp.path().join("state");
    let target_bytes = || {
        let mut v: Vec<Vec<u8>> = dovecot_mailbox(&target, "INBOX")
            .into_iter()
            .map(|(b, _, _)| b)
            .collect();
        v.sort();
        v
    };
    // Dovecot stores LF line ends.
    let mut want: Vec<Vec<u8>> = (1..=3).map(stored).collect();
    want.sort();
    for what in ["first run", "rerun"] {
        let run = migrate(&src, &dst, &state, &["--source-allow-plaintext"]);
        assert_eq!(run.code, 0, "{what}: {run:#?}");
        assert_eq!(target_bytes(), want, "{what}: the target's INBOX");
    }
}

#[test]
fn a_duplicate_whose_bytes_change_between_reads_is_not_archived_nor_deleted() {
    // Message 2 shares UIDL u1; the server sends other bytes when it is read the second time
    // (to be stored) than the first (to name it). Those bytes are not archived under the
    // identity that names message 2's (the record would say message 2 is archived, and no
    // run would fetch it again): message 2 fails, named, exit 1, and nothing is deleted.
    let mut quirky = Server::new(&[(1, "u1"), (2, "u1"), (3, "u3")]);
    quirky.second_retr.insert(2, 4);
    let tmp = tempfile::tempdir().unwrap();
    let archive = tmp.path().join("archive");
    let fake = quirky.start(tmp.path());
    let run = backup(&fake, &archive, &["--delete-after-backup"]);
    let sha = |i: usize| {
        use sha2::{Digest, Sha256};
        let d = Sha256::digest(stored(i));
        d.iter().map(|b| format!("{b:02x}")).collect::<String>()[..16].to_string()
    };
    let error = format!(
        "ACCOUNT: UIDL u1 (message 2): the server sent other bytes than when it was listed (SHA-256 {} then {}); not archived, the next run reads it again",
        sha(2),
        sha(4)
    );
    check(
        "bytes change between reads",
        "first run",
        &run,
        &archive,
        &Want {
            code: 1,
            counts: (3, 2, 0, 1),
            archive: &[1, 3],
            failures: &[("UIDL u1", &error)],
            warnings: &["ACCOUNT: nothing deleted from the server because 1 message(s) failed"],
        },
        &fake.addr(),
    );
    assert!(!fake.commands().iter().any(|c| c.starts_with("DELE")));
}

#[test]
fn breaker_duplicate_bytes_changed_between_reads_is_not_recorded_as_archived() {
    // Message 2 shares UIDL u1 and is named by the bytes of its first RETR (message 2's); its
    // second RETR sends other bytes (message 4's). The record must not say message 2's content
    // is archived when it is not: the run that did not archive it does not exit 0, and a
    // later run against a healthy server (message 2 stable) archives message 2.
    let mut quirky = Server::new(&[(1, "u1"), (2, "u1"), (3, "u3")]);
    quirky.second_retr.insert(2, 4);
    let tmp = tempfile::tempdir().unwrap();
    let archive = tmp.path().join("archive");
    let fake = quirky.start(tmp.path());
    let run = backup(&fake, &archive, &[]);
    let has2 = archived(&archive).contains(&stored(2));
    assert!(
        has2 || run.code != 0,
        "exit 0 while message 2 was not archived: {run:#?}"
    );
    assert_eq!(
        run.n("listed"),
        run.n("fetched")
            + run.n("already_archived")
            + run.report["failures"]
                .as_array()
                .map_or(0, |f| f.len() as u64),
        "listed = stored + already + failed: {run:#?}"
    );
    drop(fake);
    let healthy = Server::new(&[(1, "u1"), (2, "u1"), (3, "u3")]).start(tmp.path());
    let run = backup(&healthy, &archive, &[]);
    assert_eq!(run.code, 0, "healthy run: {run:#?}");
    let got = archived(&archive);
    for i in [1, 2, 3] {
        assert!(
            got.contains(&stored(i)),
            "healthy run: message {i} is not archived: {run:#?}"
        );
    }
}

#[test]
fn breaker_a_message_list_shows_and_uidl_leaves_out_is_not_silently_skipped() {
    // LIST shows messages 1 to 3; the UIDL listing leaves out message 2. Message 2 is on the
    // server and not archived: the run must not exit 0, message 2 must be counted (failed)
    // and named, and nothing may be deleted on the strength of that listing.
    let mut quirky = Server::new(&[(1, "u1"), (2, "u2"), (3, "u3")]);
    quirky.uidl_omits = vec![2];
    let tmp = tempfile::tempdir().unwrap();
    let archive = tmp.path().join("archive");
    let fake = quirky.start(tmp.path());
    let run = backup(&fake, &archive, &["--delete-after-backup"]);
    check(
        "UIDL leaves out a message",
        "first run",
        &run,
        &archive,
        &Want {
            code: 1,
            counts: (3, 2, 0, 1),
            archive: &[1, 3],
            failures: &[(
                "message 2",
                "ACCOUNT: message 2 (LIST: 180 octets) has no UIDL in the server's UIDL listing: not archived; the next run tries again",
            )],
            warnings: &["ACCOUNT: nothing deleted from the server because 1 message(s) failed"],
        },
        &fake.addr(),
    );
    assert!(!fake.commands().iter().any(|c| c.starts_with("DELE")));
    let healthy = Server::new(&[(1, "u1"), (2, "u2"), (3, "u3")]).start(tmp.path());
    let run = backup(&healthy, &archive, &[]);
    check(
        "UIDL leaves out a message",
        "healthy run",
        &run,
        &archive,
        &Want {
            code: 0,
            counts: (3, 1, 2, 0),
            archive: &[1, 2, 3],
            failures: &[],
            warnings: &[],
        },
        &healthy.addr(),
    );
}

#[test]
fn breaker_migrate_a_message_list_shows_and_uidl_leaves_out_is_not_silently_skipped() {
    // POP3 -> IMAP with message 2 left out of the UIDL listing: the migration must not exit
    // 0 without it, and a rerun against a healthy server copies it, each message once.
    use support::dovecot::Dovecot;
    use support::run::{dovecot_mailbox, migrate, Side};
    let d = Dovecot::start();
    let target = d.add_user("bob", "target-pw");
    let tmp = tempfile::tempdir().unwrap();
    let mut quirky = Server::new(&[(1, "u1"), (2, "u2"), (3, "u3")]);
    quirky.uidl_omits = vec![2];
    let fake = quirky.start(tmp.path());
    let dst = Side::of(&d, "imaps", &target);
    let state = tmp.path().join("state");
    let target_bytes = || {
        let mut v: Vec<Vec<u8>> = dovecot_mailbox(&target, "INBOX")
            .into_iter()
            .map(|(b, _, _)| b)
            .collect();
        v.sort();
        v
    };
    let src = Side {
        url: format!("pop3://alice@{}", fake.addr()),
        ca: &d.ca_pem,
        password: "secret",
    };
    let run = migrate(&src, &dst, &state, &["--source-allow-plaintext"]);
    let has2 = target_bytes().contains(&stored(2));
    assert!(has2 || run.code != 0, "exit 0 without message 2: {run:#?}");
    drop(fake);
    let healthy = Server::new(&[(1, "u1"), (2, "u2"), (3, "u3")]).start(tmp.path());
    let src = Side {
        url: format!("pop3://alice@{}", healthy.addr()),
        ca: &d.ca_pem,
        password: "secret",
    };
    let run = migrate(&src, &dst, &state, &["--source-allow-plaintext"]);
    assert_eq!(run.code, 0, "{run:#?}");
    let mut want: Vec<Vec<u8>> = (1..=3).map(stored).collect();
    want.sort();
    assert_eq!(target_bytes(), want, "{run:#?}");
}
