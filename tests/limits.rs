//! Bounded resources from any input (README "Limits"): `--max-message-size` against a POP3
//! RETR that never ends, a LIST size over the limit, an IMAP literal whose announced size lies,
//! an RFC822.SIZE over the limit, an mbox message over the limit, a zip entry over it (declared)
//! and a zip bomb (a small declared size that inflates past it), and a zip bomb under a
//! virtual-memory limit (`ulimit -v`, RLIMIT_AS set in the child) that must not abort.
//!
//! Every test uses a small limit (1 MiB) and messages of a few MiB built on the fly, so disk
//! use stays small; each asserts the exit code, the one-line wording naming the message, that
//! no file over the limit is left behind, and that the other messages are archived.

mod support;

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use support::fake_imap::FakeImap;
use support::fake_server::FakeServer;
use support::run::Run;

const PW: &str = "MAILKEEP_TEST_LIMITS_PW";
const MIB: u64 = 1 << 20;

fn mailkeep(args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_mailkeep"));
    c.args(args)
        .env(PW, "secret")
        .env_remove("MAILKEEP_TEST_KILL_AFTER_EVENTS")
        .env_remove("RUST_BACKTRACE")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

fn run(mut c: Command) -> Run {
    Run::from_output(c.output().expect("run mailkeep"))
}

/// The stderr lines that are not warnings.
fn error_lines(r: &Run) -> Vec<String> {
    r.stderr
        .lines()
        .filter(|l| !l.starts_with("mailkeep: warning: "))
        .map(str::to_string)
        .collect()
}

/// Three small CRLF messages.
fn messages() -> Vec<Vec<u8>> {
    (1..=3)
        .map(|i| {
            format!(
                "From: Ann <ann@example.com>\r\nTo: alice@example.com\r\nSubject: message {i}\r\n\
                 Date: Mon, 0{i} Jan 2025 10:00:00 +0000\r\nMessage-ID: <m{i}@example.com>\r\n\r\n\
                 Hello {i}.\r\n"
            )
            .into_bytes()
        })
        .collect()
}

/// Every regular file under `dir` with its size.
fn files(dir: &Path) -> Vec<(PathBuf, u64)> {
    let mut out = Vec::new();
    let Ok(rd) = fs::read_dir(dir) else {
        return out;
    };
    for e in rd.flatten() {
        let md = e.metadata().unwrap();
        if md.is_dir() {
            out.extend(files(&e.path()));
        } else {
            out.push((e.path(), md.len()));
        }
    }
    out
}

/// No file under `dir` is larger than `limit` bytes.
#[track_caller]
fn assert_nothing_over(dir: &Path, limit: u64) {
    for (p, len) in files(dir) {
        assert!(len <= limit, "{} is {len} bytes, over {limit}", p.display());
    }
}

/// The messages of a Maildir archive, every folder (files under a `cur/` or `new/`), as
/// stored, sorted.
fn maildir_messages(root: &Path) -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = files(root)
        .into_iter()
        .filter(|(p, _)| {
            let parent = p.parent().and_then(Path::file_name);
            parent.is_some_and(|n| n == "cur" || n == "new")
        })
        .map(|(p, _)| fs::read(p).unwrap())
        .collect();
    out.sort();
    out
}

fn lf(m: &[u8]) -> Vec<u8> {
    String::from_utf8(m.to_vec())
        .unwrap()
        .replace("\r\n", "\n")
        .into_bytes()
}

// ---------------------------------------------------------------------------------------------
// POP3

/// A POP3 session serving the three messages; `over` replaces the reply steps of a command
/// (`LIST`, `RETR 2`).
fn pop_script(over: &[(&str, &str)]) -> String {
    let all = messages();
    let steps = |cmd: &str, default: String| -> String {
        match over.iter().find(|(c, _)| *c == cmd) {
            Some((_, s)) => format!("{}\n", s.trim_end()),
            None => default,
        }
    };
    let mut s = String::from("S: +OK fake POP3 ready\n");
    s += "C: CAPA\nS: +OK\nS: USER\nS: UIDL\nS: TOP\nS: .\n";
    s += "C: STLS\nS: -ERR not here\n";
    s += "C: USER alice\nS: +OK\nC: PASS secret\nS: +OK logged in\n";
    let mut u = String::from("S: +OK\n");
    let mut l = String::from("S: +OK\n");
    for (i, m) in all.iter().enumerate() {
        u += &format!("S: {} FM-{:04}\n", i + 1, i + 1);
        l += &format!("S: {} {}\n", i + 1, m.len());
    }
    u += "S: .\n";
    l += "S: .\n";
    s += &format!("C: UIDL\n{}", steps("UIDL", u));
    s += &format!("C: LIST\n{}", steps("LIST", l));
    for (i, m) in all.iter().enumerate() {
        let cmd = format!("RETR {}", i + 1);
        s += &format!(
            "C: {cmd}\n{}",
            steps(
                &cmd,
                format!("S: +OK {} octets\nS+ m{}.pop-wire\n", m.len(), i + 1)
            )
        );
    }
    s += "C: QUIT\nS: +OK bye\n";
    s
}

fn write_pop_files(dir: &Path) {
    for (i, m) in messages().iter().enumerate() {
        let mut w = m.clone();
        w.extend_from_slice(b".\r\n");
        fs::write(dir.join(format!("m{}.pop-wire", i + 1)), w).unwrap();
    }
}

fn pop_backup(server: &FakeServer, archive: &Path, limit: &str) -> Run {
    let source = format!("pop3://alice@{}", server.addr());
    let target = format!("maildir:{}", archive.display());
    run(mailkeep(&[
        "backup",
        &source,
        &target,
        "--password-env",
        PW,
        "--allow-plaintext",
        "--timeout",
        "5",
        "--json",
        "--max-message-size",
        limit,
    ]))
}

/// A RETR whose answer never ends (3 MiB of `x` without a line end, then silence) stops at
/// the 1 MiB limit: the partial file is removed, the message named and counted, the message
/// before it kept and recorded, the one after it counted as not fetched (the connection is
/// given up); exit 1. A rerun against a healthy server brings the missing two.
#[test]
fn pop3_endless_retr_stops_at_the_limit() {
    let base = tempfile::tempdir().unwrap();
    write_pop_files(base.path());
    let archive = base.path().join("archive");
    let script = pop_script(&[("RETR 2", "S: +OK\nHUGE 3145728\nSTALL")]);
    let server = FakeServer::pop3_from_str(&script, base.path());
    let account = format!("alice@{}", server.addr());
    let r = pop_backup(&server, &archive, "1M");
    r.assert_code(1);
    assert_eq!(
        (
            r.n("listed"),
            r.n("fetched"),
            r.report["failures"].as_array().unwrap().len()
        ),
        (3, 1, 2),
        "{r:#?}"
    );
    assert_eq!(
        error_lines(&r),
        [
            format!("mailkeep: INBOX UIDL FM-0002: {account}: UIDL FM-0002 (message 2): `RETR 2`: the message goes on past the maximum message size of 1 MiB (--max-message-size); not stored"),
            format!("mailkeep: INBOX UIDL FM-0003: {account}: UIDL FM-0003 (message 3): not fetched: the connection was given up after a message went past the maximum message size; the next run fetches it"),
        ],
        "{r:#?}"
    );
    // Nothing left in tmp/, nothing over the limit anywhere; message 1 is archived.
    assert_eq!(files(&archive.join("tmp")), vec![]);
    assert_nothing_over(&archive, MIB);
    assert_eq!(maildir_messages(&archive), vec![lf(&messages()[0])]);
    drop(server);

    // The next run (a healthy server) fetches what failed, and only that.
    let server = FakeServer::pop3_from_str(&pop_script(&[]), base.path());
    let r = pop_backup(&server, &archive, "1M");
    r.assert_code(0);
    assert_eq!((r.n("fetched"), r.n("already_archived")), (2, 1), "{r:#?}");
    let mut want: Vec<Vec<u8>> = messages().iter().map(|m| lf(m)).collect();
    want.sort();
    assert_eq!(maildir_messages(&archive), want);
}

/// A message whose LIST size is over the limit is not asked for (no RETR); the others are
/// archived; exit 1 naming its UIDL and size.
#[test]
fn pop3_list_size_over_the_limit_is_not_fetched() {
    let base = tempfile::tempdir().unwrap();
    write_pop_files(base.path());
    let archive = base.path().join("archive");
    let all = messages();
    let list = format!(
        "S: +OK\nS: 1 {}\nS: 2 3145728\nS: 3 {}\nS: .",
        all[0].len(),
        all[2].len()
    );
    let script = pop_script(&[("LIST", &list)]);
    let server = FakeServer::pop3_from_str(&script, base.path());
    let account = format!("alice@{}", server.addr());
    let r = pop_backup(&server, &archive, "1M");
    r.assert_code(1);
    assert_eq!((r.n("listed"), r.n("fetched")), (3, 2), "{r:#?}");
    assert_eq!(
        error_lines(&r),
        [format!("mailkeep: INBOX UIDL FM-0002: {account}: UIDL FM-0002 (message 2): the message is 3145728 bytes, over the maximum message size of 1 MiB (--max-message-size); not stored")],
    );
    let retrs: Vec<String> = server
        .commands()
        .into_iter()
        .filter(|c| c.starts_with("RETR"))
        .collect();
    assert_eq!(retrs, ["RETR 1", "RETR 3"]);
    let mut want = vec![lf(&all[0]), lf(&all[2])];
    want.sort();
    assert_eq!(maildir_messages(&archive), want);
}

// ---------------------------------------------------------------------------------------------
// IMAP

const UIDS: [u32; 3] = [11, 12, 13];

fn write_imap_files(dir: &Path) {
    for (i, m) in messages().iter().enumerate() {
        fs::write(dir.join(format!("m{}.eml", i + 1)), m).unwrap();
    }
}

/// An IMAP session: INBOX with the three messages; `size_of(i)` is message i's RFC822.SIZE.
fn imap_script(size_of: &dyn Fn(usize) -> usize) -> String {
    let all = messages();
    let mut s = String::from("S: * OK [CAPABILITY IMAP4rev1 UIDPLUS] fake IMAP ready\n");
    s += "C: TAG LOGIN alice secret\nS: TAG OK LOGIN completed\n";
    s += "C: TAG EXAMINE INBOX\nS: * 3 EXISTS\nS: * OK [UIDVALIDITY 7] UIDs valid\nS: * OK [UIDNEXT 14] next\nS: TAG OK [READ-ONLY] EXAMINE completed\n";
    let chunks: String = (0..3)
        .map(|i| {
            format!(
                "S: * {} FETCH (UID {} FLAGS (\\Seen) INTERNALDATE \"0{}-Jan-2025 10:00:00 +0000\" RFC822.SIZE {} BODY[] {{{}}}\nS+ m{}.eml\nS: )\n",
                i + 1,
                UIDS[i],
                i + 1,
                size_of(i),
                all[i].len(),
                i + 1
            )
        })
        .collect();
    s += &format!("C: TAG UID FETCH 1:* (UID FLAGS)\n{chunks}S: TAG OK FETCH completed\n");
    s += &format!("C: TAG UID FETCH <uids> (BODY.PEEK[])\n{chunks}S: TAG OK FETCH completed\n");
    s
}

fn imap_backup(server: &FakeImap, archive: &Path, limit: &str) -> Run {
    let source = format!("imap://alice@{}", server.addr());
    let target = format!("maildir:{}", archive.display());
    run(mailkeep(&[
        "backup",
        &source,
        &target,
        "--password-env",
        PW,
        "--allow-plaintext",
        "--timeout",
        "5",
        "--json",
        "--jobs",
        "1",
        "--max-message-size",
        limit,
    ]))
}

/// A literal announced as 999,999,999,999 octets (the listing said a few hundred) is refused
/// before anything is reserved for it: that message fails (named by UID, exit 1), the ones
/// before it are archived, nothing is left in tmp/. The default limit (1 GiB) is enough here:
/// the announced size is far above it.
#[test]
fn imap_lying_literal_is_refused_before_allocating() {
    let base = tempfile::tempdir().unwrap();
    write_imap_files(base.path());
    let archive = base.path().join("archive");
    let all = messages();
    let script = imap_script(&|i| all[i].len());
    let lie = 999_999_999_999 - all[2].len() as i64;
    let server = FakeImap::builder_str(&script, base.path())
        .lie_literal("m3.eml", lie, None)
        .start();
    let account = format!("alice@{}", server.addr());
    let r = imap_backup(&server, &archive, "1G");
    r.assert_code(1);
    assert_eq!((r.n("listed"), r.n("fetched")), (3, 2), "{r:#?}");
    assert_eq!(
        error_lines(&r),
        [format!("mailkeep: INBOX UID 13: {account}: mailbox INBOX UID 13: the message is 999999999999 bytes, over the maximum message size of 1 GiB (--max-message-size); not stored")],
        "{r:#?}"
    );
    assert_eq!(files(&archive.join("tmp")), vec![]);
    let mut want = vec![lf(&all[0]), lf(&all[1])];
    want.sort();
    assert_eq!(maildir_messages(&archive), want);
}

/// A message whose RFC822.SIZE is over the limit is not fetched: the body FETCH asks only for
/// the others; exit 1 naming its UID and size.
#[test]
fn imap_rfc822_size_over_the_limit_is_not_fetched() {
    let base = tempfile::tempdir().unwrap();
    write_imap_files(base.path());
    let archive = base.path().join("archive");
    let all = messages();
    let script = imap_script(&|i| if i == 1 { 3 << 20 } else { all[i].len() });
    let server = FakeImap::builder_str(&script, base.path()).start();
    let account = format!("alice@{}", server.addr());
    let r = imap_backup(&server, &archive, "1M");
    r.assert_code(1);
    assert_eq!((r.n("listed"), r.n("fetched")), (3, 2), "{r:#?}");
    assert_eq!(
        error_lines(&r),
        [format!("mailkeep: INBOX UID 12: {account}: mailbox INBOX UID 12: the message is 3145728 bytes, over the maximum message size of 1 MiB (--max-message-size); not stored")],
    );
    let fetches: Vec<String> = server
        .commands()
        .into_iter()
        .filter(|c| c.contains("BODY.PEEK"))
        .collect();
    assert_eq!(fetches.len(), 1, "{fetches:?}");
    assert!(fetches[0].contains("UID FETCH 11,13 "), "{fetches:?}");
    let mut want = vec![lf(&all[0]), lf(&all[2])];
    want.sort();
    assert_eq!(maildir_messages(&archive), want);
}

/// An answer (here LIST) that goes on without end (70 MiB without a line end, then silence)
/// is cut off once one response passes 1 MiB without a line end (a LIST line is well under
/// that; whole answers are capped at 65 MiB): a protocol error, exit 7, not a wait for the
/// timeout with the memory growing.
#[test]
fn imap_endless_answer_to_list_is_cut_off() {
    let base = tempfile::tempdir().unwrap();
    write_imap_files(base.path());
    let archive = base.path().join("archive");
    let all = messages();
    let script = imap_script(&|i| all[i].len());
    let server = FakeImap::builder_str(&script, base.path())
        .huge_line("LIST", 1, 70, support::fake_imap::Cut::Stall)
        .start();
    let account = format!("alice@{}", server.addr());
    let r = imap_backup(&server, &archive, "1M");
    r.assert_code(7);
    assert_eq!(
        error_lines(&r),
        [format!("mailkeep: {account}: server protocol error: LIST: answering `LIST \"\" \"*\"`: a response is longer than 1048576 bytes without a line end")],
        "{r:#?}"
    );
}

// ---------------------------------------------------------------------------------------------
// mbox, zip

/// An mbox of three messages, the second `big` bytes long (its body one long run of lines).
fn write_mbox(path: &Path, big: usize) {
    let mut f = std::io::BufWriter::new(fs::File::create(path).unwrap());
    for (i, m) in messages().iter().enumerate() {
        writeln!(f, "From ann@example.com Mon Jan  {} 10:00:00 2025", i + 1).unwrap();
        f.write_all(&lf(m)).unwrap();
        if i == 1 {
            let line = [b'y'; 99];
            let mut left = big;
            while left > 0 {
                let n = left.min(100);
                f.write_all(&line[..n - 1]).unwrap();
                f.write_all(b"\n").unwrap();
                left -= n;
            }
        }
        f.write_all(b"\n").unwrap();
    }
}

/// `convert` of an mbox holding a 3 MiB message with a 1 MiB limit: the big message is
/// named (file and offset), counted as failed (exit 1), never written; the other two are
/// converted. `list` reads the same mbox and names it too (exit 1).
#[test]
fn mbox_message_over_the_limit_is_refused() {
    let base = tempfile::tempdir().unwrap();
    let mbox = base.path().join("in.mbox");
    write_mbox(&mbox, 3 << 20);
    let offset = {
        let data = fs::read(&mbox).unwrap();
        let first =
            lf(&messages()[0]).len() + "From ann@example.com Mon Jan  1 10:00:00 2025\n\n".len();
        assert_eq!(&data[first..first + 5], b"From ");
        first
    };
    let big = lf(&messages()[1]).len() + (3 << 20);
    let out = base.path().join("out");
    let r = run(mailkeep(&[
        "convert",
        &format!("mbox:{}", mbox.display()),
        &format!("maildir:{}", out.display()),
        "--json",
        "--max-message-size",
        "1M",
    ]));
    r.assert_code(1);
    assert_eq!((r.n("written"), r.n("failed")), (2, 1), "{r:#?}");
    assert_eq!(
        error_lines(&r),
        [format!("mailkeep: in: {}:{offset}: the message is {big} bytes, over the maximum message size of 1 MiB (--max-message-size); not stored", mbox.display())],
        "{r:#?}"
    );
    assert_nothing_over(&out, MIB);
    let mut want = vec![lf(&messages()[0]), lf(&messages()[2])];
    want.sort();
    assert_eq!(maildir_messages(&out), want);

    let r = run(mailkeep(&[
        "list",
        &format!("mbox:{}", mbox.display()),
        "--max-message-size",
        "1M",
    ]));
    r.assert_code(1);
    assert_eq!(
        error_lines(&r),
        [format!("mailkeep: {}:{offset}: the message is {big} bytes, over the maximum message size of 1 MiB (--max-message-size); not stored", mbox.display())],
        "{r:#?}"
    );
}

/// Writes a zip of mailkeep's shape (no manifest: loose `.eml` entries) with messages 1 and 3
/// and, between them, `INBOX/big.eml` of `big` bytes of one repeated byte, deflated (a few
/// KiB in the file). With `lie`, the big entry's declared uncompressed size (local header and
/// central directory) is patched down to 100 bytes: a zip bomb.
fn write_zip(path: &Path, big: u64, lie: bool) {
    let f = fs::File::create(path).unwrap();
    let mut z = zip::ZipWriter::new(f);
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .large_file(big >= u32::MAX as u64);
    let all = messages();
    z.start_file("INBOX/m1.eml", opts).unwrap();
    z.write_all(&all[0]).unwrap();
    z.start_file("INBOX/m2-big.eml", opts).unwrap();
    let chunk = vec![b'z'; 1 << 20];
    let mut left = big;
    while left > 0 {
        let n = left.min(chunk.len() as u64) as usize;
        z.write_all(&chunk[..n]).unwrap();
        left -= n as u64;
    }
    z.start_file("INBOX/m3.eml", opts).unwrap();
    z.write_all(&all[2]).unwrap();
    z.finish().unwrap();
    if lie {
        assert!(big < u32::MAX as u64);
        let mut data = fs::read(path).unwrap();
        let name = b"INBOX/m2-big.eml";
        let want = (big as u32).to_le_bytes();
        let mut patched = 0;
        // Local file header: signature PK\x03\x04, uncompressed size at +22, name at +30.
        // Central directory header: signature PK\x01\x02, uncompressed size at +24, name at +46.
        for i in 0..data.len().saturating_sub(50) {
            let (size_at, name_at) = match &data[i..i + 4] {
                b"PK\x03\x04" => (22, 30),
                b"PK\x01\x02" => (24, 46),
                _ => continue,
            };
            if data[i + name_at..].starts_with(name) && data[i + size_at..i + size_at + 4] == want {
                data[i + size_at..i + size_at + 4].copy_from_slice(&100u32.to_le_bytes());
                patched += 1;
            }
        }
        assert_eq!(patched, 2, "both headers of the big entry patched");
        fs::write(path, data).unwrap();
    }
}

fn convert_zip(zip: &Path, out: &Path, limit: &str) -> Command {
    mailkeep(&[
        "convert",
        &format!("zip:{}", zip.display()),
        &format!("maildir:{}", out.display()),
        "--json",
        "--max-message-size",
        limit,
    ])
}

/// A zip entry declaring 3 MiB is not inflated with a 1 MiB limit; a zip bomb (declared 100
/// bytes, inflating to 3 MiB) is stopped at the limit. Either way: that entry named and
/// counted (exit 1), the other two converted, nothing over the limit written.
#[test]
fn zip_entry_over_the_limit_and_zip_bomb_are_refused() {
    let base = tempfile::tempdir().unwrap();
    for (lie, size_words) in [
        (false, "the message is 3145728 bytes"),
        (true, "the message goes on past"),
    ] {
        let zip = base.path().join(format!("in-{lie}.zip"));
        write_zip(&zip, 3 << 20, lie);
        assert!(fs::metadata(&zip).unwrap().len() < 64 * 1024);
        let out = base.path().join(format!("out-{lie}"));
        let r = run(convert_zip(&zip, &out, "1M"));
        r.assert_code(1);
        assert_eq!((r.n("written"), r.n("failed")), (2, 1), "{r:#?}");
        let lines = error_lines(&r);
        assert_eq!(lines.len(), 1, "{r:#?}");
        let want_start = format!(
            "mailkeep: INBOX: {}:INBOX/m2-big.eml: {size_words}",
            zip.display()
        );
        assert!(lines[0].starts_with(&want_start), "{lines:?}");
        assert!(
            lines[0].ends_with(
                "over the maximum message size of 1 MiB (--max-message-size); not stored"
            ) || lines[0].ends_with(
                "past the maximum message size of 1 MiB (--max-message-size); not stored"
            ),
            "{lines:?}"
        );
        assert_nothing_over(&out, MIB);
        let mut want = vec![lf(&messages()[0]), lf(&messages()[2])];
        want.sort();
        assert_eq!(maildir_messages(&out), want, "lie {lie}");
    }
}

/// Under a 1 GiB address-space limit (`ulimit -v`), a zip bomb inflating to 2 GiB (declared
/// 100 bytes) with the limit at 64 MiB: no abort (reading it whole would need 2 GiB), exit 1,
/// the bomb named, the other messages converted.
#[test]
fn zip_bomb_under_ulimit_v_does_not_abort() {
    use std::os::unix::process::CommandExt;
    let base = tempfile::tempdir().unwrap();
    let zip = base.path().join("bomb.zip");
    write_zip(&zip, 2 << 30, true);
    assert!(fs::metadata(&zip).unwrap().len() < 8 << 20);
    let out = base.path().join("out");
    let mut c = convert_zip(&zip, &out, "64M");
    // SAFETY: setrlimit is async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        c.pre_exec(|| {
            let lim = libc::rlimit {
                rlim_cur: 1 << 30,
                rlim_max: 1 << 30,
            };
            if libc::setrlimit(libc::RLIMIT_AS, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let r = run(c);
    r.assert_code(1);
    assert_eq!((r.n("written"), r.n("failed")), (2, 1), "{r:#?}");
    let lines = error_lines(&r);
    assert_eq!(
        lines,
        [format!("mailkeep: INBOX: {}:INBOX/m2-big.eml: the message goes on past the maximum message size of 64 MiB (--max-message-size); not stored", zip.display())],
    );
    assert_nothing_over(&out, 64 * MIB);
}

/// `restore` from an `eml:` folder whose middle file is 3 MiB, with a 1 MiB limit: that file
/// is not read, it is named and counted (exit 1); the other two are appended.
#[test]
fn restore_refuses_an_eml_file_over_the_limit() {
    let base = tempfile::tempdir().unwrap();
    let emls = base.path().join("emls");
    fs::create_dir_all(emls.join("INBOX")).unwrap();
    let all = messages();
    fs::write(emls.join("INBOX/1.eml"), &all[0]).unwrap();
    let mut big = all[1].clone();
    big.resize(3 << 20, b'q');
    fs::write(emls.join("INBOX/2.eml"), &big).unwrap();
    fs::write(emls.join("INBOX/3.eml"), &all[2]).unwrap();
    let mut script = String::from("S: * OK [CAPABILITY IMAP4rev1 UIDPLUS] fake target ready\n");
    script += "C: TAG LOGIN alice secret\nS: TAG OK LOGIN completed\n";
    script += "C: TAG SELECT INBOX\nS: * 0 EXISTS\nS: * OK [UIDVALIDITY 9] UIDs valid\nS: * OK [UIDNEXT 50] next\nS: TAG OK [READ-WRITE] SELECT completed\n";
    for k in 1..=2 {
        script += &format!(
            "C: TAG APPEND INBOX <flags> <date> {{0}}\nS: + go ahead\nS: TAG OK [APPENDUID 9 {}] APPEND completed\n",
            49 + k
        );
    }
    let target = FakeImap::builder_str(&script, base.path()).start();
    let state = base.path().join("state");
    let mut c = mailkeep(&[
        "restore",
        &format!("eml:{}", emls.display()),
        &format!("imap://alice@{}", target.addr()),
        "--password-env",
        PW,
        "--allow-plaintext",
        "--timeout",
        "5",
        "--json",
        "--max-message-size",
        "1M",
    ]);
    c.env("XDG_STATE_HOME", &state);
    let r = run(c);
    r.assert_code(1);
    assert_eq!(
        error_lines(&r),
        [format!(
            "mailkeep: INBOX: {}: the message is 3145728 bytes, over the maximum message size of 1 MiB (--max-message-size); not stored",
            emls.join("INBOX/2.eml").display()
        )],
        "{r:#?}"
    );
    let appended: Vec<Vec<u8>> = target.appends().into_iter().map(|a| a.bytes).collect();
    assert_eq!(appended, [all[0].clone(), all[2].clone()]);
}

/// The option's values: K/M/G suffixes and plain bytes; a bad size is a usage error (exit 2).
#[test]
fn bad_sizes_are_usage_errors() {
    let base = tempfile::tempdir().unwrap();
    let mbox = base.path().join("in.mbox");
    write_mbox(&mbox, 1000);
    for bad in ["0", "12T", "1.5M", "lots"] {
        let r = run(mailkeep(&[
            "list",
            &format!("mbox:{}", mbox.display()),
            "--max-message-size",
            bad,
        ]));
        r.assert_code(2);
        assert!(
            r.stderr.contains("--max-message-size") && r.stderr.contains(bad),
            "{bad}: {r:#?}"
        );
    }
    for good in ["1048576", "2K", "50M", "1G"] {
        let r = run(mailkeep(&[
            "list",
            &format!("mbox:{}", mbox.display()),
            "--max-message-size",
            good,
        ]));
        r.assert_code(0);
    }
}

/// `verify` hashes an mbox message while reading it: with a `--max-message-size` below the
/// messages' sizes, an intact mbox archive still verifies (exit 0), and a damaged byte in a
/// message over the limit is still found (exit 9).
#[test]
fn verify_checks_mbox_messages_over_the_limit_in_bounded_memory() {
    let tmp = tempfile::tempdir().unwrap();
    let wires = tmp.path().join("wires");
    fs::create_dir(&wires).unwrap();
    write_pop_files(&wires);
    let server = FakeServer::pop3_from_str(&pop_script(&[]), &wires);
    let archive = tmp.path().join("mbox");
    let target = format!("mbox:{}", archive.display());
    let source = format!("pop3://alice@{}", server.addr());
    let r = run(mailkeep(&[
        "backup",
        &source,
        &target,
        "--password-env",
        PW,
        "--allow-plaintext",
        "--json",
    ]));
    r.assert_code(0);
    let verify = |limit: &str| run(mailkeep(&["verify", &target, "--max-message-size", limit]));
    let v = verify("10");
    v.assert_code(0);
    assert!(v.stdout.contains(" intact -> ok"), "{v:#?}");
    // One byte of the last message changed: damaged, even though it is over the limit.
    let mbox = archive.join("INBOX.mbox");
    let mut bytes = fs::read(&mbox).unwrap();
    let i = bytes.len() - 3;
    bytes[i] ^= 0x20;
    fs::write(&mbox, bytes).unwrap();
    let v = verify("10");
    v.assert_code(9);
    assert!(v.stdout.contains("the bytes changed"), "{v:#?}");
}
