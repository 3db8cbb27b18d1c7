//! Disk-full, file-too-large and permission faults while writing an archive (issue 7).
//!
//! Faults, each while mailkeep writes:
//! - `RLIMIT_FSIZE` set in the child (`pre_exec`, SIGXFSZ ignored), so a write past the limit
//!   fails with EFBIG: works without privileges. Several limits per path, so the fault lands
//!   in different places (a message file, the mbox, the zip, the ledger's WAL).
//! - A real tiny filesystem (`mount -t tmpfs -o size=...`, ENOSPC) when running as root and
//!   mounting works; skipped with a printed reason otherwise.
//! - Permissions: the child runs as `nobody` (setuid in `pre_exec`) in a folder it owns, with
//!   one subfolder or file made unwritable; skipped with a printed reason when not root.
//!
//! Paths: backup (POP3 and IMAP, from a real Dovecot) into Maildir, mbox and zip; convert into
//! Maildir, mbox and zip; restore (its uploads ledger on the full disk).
//!
//! After a fault: exit 6 (README "Exit codes": the archive cannot be written) and one error
//! line naming the path; no message file in Maildir `cur/`/`new/` that is not complete; an mbox
//! whose recorded part holds exactly the recorded messages (an unrecorded tail is ours, marked
//! pending, and cut back by the next run); no zip, or the old one; the ledger records exactly
//! the complete messages. Then a rerun with room completes with exactly the messages of an
//! uninterrupted run (0 lost, 0 duplicated).

mod support;

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use support::dovecot::{Dovecot, Options, User};
use support::run::{digests, ledger_state, maildir_messages, mbox_messages, Run};

const PW_VAR: &str = "MAILKEEP_TEST_PASSWORD";

fn dovecot() -> Dovecot {
    Dovecot::start_with(Options {
        extra_config: "mail_fsync = never\n".into(),
        ..Options::default()
    })
}

/// A message of about `kib` KiB that does not compress (base64 of pseudo-random bytes).
fn big_message(tag: u32, kib: usize) -> Vec<u8> {
    use base64::Engine as _;
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15 ^ tag as u64;
    let bytes: Vec<u8> = (0..kib * 768)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    let b64 = base64::engine::general_purpose::STANDARD.encode(bytes);
    let mut m = format!(
        "From: Big {tag} <big{tag}@example.net>\nTo: alice@example.org\nSubject: big {tag}\n\
         Date: Mon, 0{tag} Jul 2024 09:00:00 +0000\nMessage-ID: <big-{tag}@example.net>\n\
         Content-Type: application/octet-stream\nContent-Transfer-Encoding: base64\n\n"
    );
    for line in b64.as_bytes().chunks(76) {
        m.push_str(std::str::from_utf8(line).unwrap());
        m.push('\n');
    }
    m.into_bytes()
}

/// Seven messages: small corpus messages (one without a Message-ID) around two big ones, and a
/// twin of the first. (bytes, flags, date).
fn messages() -> Vec<(Vec<u8>, &'static str, i64)> {
    let corpus = support::corpus::all();
    let head = |raw: &[u8]| {
        let end = raw
            .windows(2)
            .position(|w| w == b"\n\n")
            .or_else(|| raw.windows(4).position(|w| w == b"\r\n\r\n"))
            .unwrap_or(raw.len());
        String::from_utf8_lossy(&raw[..end]).to_ascii_lowercase()
    };
    let small: Vec<&support::corpus::CorpusMessage> = corpus
        .iter()
        .filter(|m| m.raw.len() < 6_000 && head(&m.raw).contains("\ndate:"))
        .collect();
    let with_id: Vec<Vec<u8>> = small
        .iter()
        .filter(|m| head(&m.raw).contains("\nmessage-id:"))
        .step_by(53)
        .take(3)
        .map(|m| m.raw.clone())
        .collect();
    let without = small
        .iter()
        .find(|m| !head(&m.raw).contains("message-id:"))
        .unwrap()
        .raw
        .clone();
    let raws = vec![
        with_id[0].clone(),
        with_id[1].clone(),
        big_message(1, 500),
        without,
        big_message(2, 500),
        with_id[2].clone(),
        with_id[0].clone(),
    ];
    let flags = ["S", "", "FS", "", "S", "RS", "S"];
    raws.into_iter()
        .enumerate()
        .map(|(i, r)| {
            let date = if i == 6 {
                1_500_000_000
            } else {
                1_500_000_000 + i as i64 * 3_600
            };
            (r, flags[i], date)
        })
        .collect()
}

fn seed(u: &User, msgs: &[(Vec<u8>, &str, i64)], folders: bool) {
    for (i, (raw, flags, date)) in msgs.iter().enumerate() {
        let mb = if folders && i % 3 == 2 {
            "Sent"
        } else {
            "INBOX"
        };
        u.seed_message(mb, raw, flags, Some(*date));
    }
}

/// How the child's writes fail.
#[derive(Debug, Clone, Copy)]
enum Fault {
    /// RLIMIT_FSIZE in bytes (EFBIG).
    FileSize(u64),
    /// No fault.
    None,
}

/// Runs `cmd` with `fault` applied in the child.
fn run_with(mut cmd: Command, fault: Fault) -> Run {
    if let Fault::FileSize(limit) = fault {
        unsafe {
            cmd.pre_exec(move || {
                libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
                let r = libc::rlimit {
                    rlim_cur: limit,
                    rlim_max: limit,
                };
                if libc::setrlimit(libc::RLIMIT_FSIZE, &r) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    Run::from_output(cmd.output().unwrap())
}

/// Runs `cmd` as `nobody` (setgroups, setgid, setuid in the child).
fn run_as_nobody(mut cmd: Command) -> Run {
    let (uid, gid) = nobody();
    unsafe {
        cmd.pre_exec(move || {
            if libc::setgroups(0, std::ptr::null()) != 0
                || libc::setgid(gid) != 0
                || libc::setuid(uid) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    Run::from_output(cmd.output().unwrap())
}

fn nobody() -> (u32, u32) {
    let name = std::ffi::CString::new("nobody").unwrap();
    let pw = unsafe { libc::getpwnam(name.as_ptr()) };
    if pw.is_null() {
        (65534, 65534)
    } else {
        unsafe { ((*pw).pw_uid, (*pw).pw_gid) }
    }
}

fn is_root() -> bool {
    unsafe { libc::geteuid() == 0 }
}

/// A tmpfs of `kib` KiB mounted at `dir` (root only), unmounted on drop.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, kib: u64) -> Result<Tmpfs, String> {
        if !is_root() {
            return Err("not running as root".into());
        }
        std::fs::create_dir_all(dir).unwrap();
        let out = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={kib}k,mode=0700"),
                "tmpfs",
            ])
            .arg(dir)
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "mount -t tmpfs failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(Tmpfs(dir.to_path_buf()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

// ---------------------------------------------------------------------------------------------
// What an archive holds

/// Every message the archive holds as a complete copy, and checks that nothing incomplete
/// looks complete. `want` is the multiset of complete messages (from the clean run).
fn check_after_fault(kind: &str, archive: &Path, want: &[Vec<u8>], what: &str) {
    let want_set: std::collections::HashSet<&[u8]> = want.iter().map(Vec::as_slice).collect();
    match kind {
        "maildir" => {
            let mut folders = vec![archive.to_path_buf()];
            if let Ok(rd) = std::fs::read_dir(archive) {
                for e in rd.flatten() {
                    let n = e.file_name().to_string_lossy().into_owned();
                    if n.starts_with('.') && e.path().is_dir() {
                        folders.push(e.path());
                    }
                }
            }
            let mut files = Vec::new();
            for f in &folders {
                files.extend(maildir_messages(f));
            }
            for (name, bytes) in &files {
                assert!(
                    want_set.contains(bytes.as_slice()),
                    "{what}: {name} ({} bytes) is not a complete message",
                    bytes.len()
                );
            }
            if archive.join("mailkeep/ledger.sqlite").exists() {
                let recorded: Vec<String> = ledger_state(archive)
                    .values()
                    .flatten()
                    .map(|(s, _, _)| s.clone())
                    .collect();
                let mut recorded = recorded;
                recorded.sort();
                let on_disk = digests(files.iter().map(|(_, b)| b.as_slice()));
                // Every recorded message is on disk; a file on disk not recorded is a whole
                // message (checked above) that the next run finds by its name.
                for r in &recorded {
                    assert!(on_disk.contains(r), "{what}: recorded {r} is not on disk");
                }
            }
        }
        "mbox" => {
            let ledger = archive.join("mailkeep/ledger.sqlite");
            if !ledger.exists() {
                return;
            }
            let db = rusqlite::Connection::open_with_flags(
                format!("file:{}?immutable=1", ledger.display()),
                rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_URI,
            )
            .unwrap();
            let files: Vec<(String, i64, Option<i64>)> = db
                .prepare("SELECT file, committed_len, pending_len FROM mbox_files")
                .unwrap()
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .unwrap()
                .map(Result::unwrap)
                .collect();
            let recorded: BTreeMap<String, Vec<(String, Vec<String>, i64)>> = ledger_state(archive);
            for (file, committed, pending) in files {
                let path = archive.join(&file);
                let len = std::fs::metadata(&path)
                    .map(|m| m.len() as i64)
                    .unwrap_or(0);
                assert!(len >= committed, "{what}: {file} shorter than recorded");
                if len > committed {
                    assert!(
                        pending.is_some(),
                        "{what}: {file} has an unrecorded tail ({len} > {committed}) not marked pending"
                    );
                }
                // The recorded part holds exactly complete messages.
                let bytes = std::fs::read(&path).unwrap_or_default();
                let part = archive.join("recorded-part.mbox");
                std::fs::write(&part, &bytes[..committed as usize]).unwrap();
                let msgs = mbox_messages(&part);
                std::fs::remove_file(&part).unwrap();
                for m in &msgs {
                    assert!(
                        want_set.contains(m.as_slice()),
                        "{what}: {file}: a recorded message is not complete"
                    );
                }
                let mailbox = file.trim_end_matches(".mbox");
                let n = recorded.get(mailbox).map_or(0, Vec::len);
                assert_eq!(
                    msgs.len(),
                    n,
                    "{what}: {file}: the ledger records {n}, the recorded part holds {}",
                    msgs.len()
                );
            }
        }
        "zip" => {
            let zip = archive.with_extension("zip");
            assert!(
                !zip.exists(),
                "{what}: a zip was left after a failed first run"
            );
            let partial = PathBuf::from(format!("{}.partial", zip.display()));
            assert!(!partial.exists(), "{what}: the partial zip was left");
        }
        _ => unreachable!(),
    }
}

/// The messages of an archive, for comparing with the clean run: (name or mailbox, bytes).
fn archive_messages(kind: &str, archive: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = match kind {
        "maildir" => support::run::snapshot(archive)
            .into_iter()
            .filter(|(k, _)| {
                !k.starts_with("mailkeep/") && (k.contains("cur/") || k.contains("new/"))
            })
            .map(|(k, (b, _))| (k, b))
            .collect(),
        "mbox" => {
            let mut v = Vec::new();
            for e in std::fs::read_dir(archive).unwrap().flatten() {
                let n = e.file_name().to_string_lossy().into_owned();
                if n.ends_with(".mbox") {
                    v.extend(mbox_messages(&e.path()).into_iter().map(|m| (n.clone(), m)));
                }
            }
            v
        }
        "zip" => {
            use std::io::Read;
            let zip = archive.with_extension("zip");
            let mut z = zip::ZipArchive::new(std::fs::File::open(&zip).unwrap()).unwrap();
            let mut v = Vec::new();
            for i in 0..z.len() {
                let mut e = z.by_index(i).unwrap();
                let mut b = Vec::new();
                e.read_to_end(&mut b).unwrap();
                v.push((e.name().to_string(), b));
            }
            v
        }
        _ => unreachable!(),
    };
    out.sort();
    out
}

fn archive_arg(kind: &str, archive: &Path) -> String {
    if kind == "zip" {
        format!("zip:{}", archive.with_extension("zip").display())
    } else {
        format!("{kind}:{}", archive.display())
    }
}

/// (lost, duplicated) between two message lists.
fn lost_dup(want: &[(String, Vec<u8>)], got: &[(String, Vec<u8>)]) -> (usize, usize) {
    let mut c: BTreeMap<&[u8], i64> = BTreeMap::new();
    for (_, b) in want {
        *c.entry(b).or_default() += 1;
    }
    for (_, b) in got {
        *c.entry(b).or_default() -= 1;
    }
    (
        c.values().filter(|v| **v > 0).sum::<i64>() as usize,
        c.values().filter(|v| **v < 0).map(|v| -v).sum::<i64>() as usize,
    )
}

/// Asserts a failed run's error: exit 6, one line on stderr naming `path_part`.
#[track_caller]
fn assert_fault_error(r: &Run, path_part: &str, what: &str) {
    assert_eq!(r.code, 6, "{what}: {r:#?}");
    let lines: Vec<&str> = r.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{what}: one error line: {r:#?}");
    assert!(
        lines[0].contains(path_part),
        "{what}: the error names {path_part}: {}",
        lines[0]
    );
    assert!(!r.stderr.contains("panicked"), "{what}: {r:#?}");
}

/// The error names what was being written: the ledger, the zip entry, or the message
/// (`(while storing <account> ... <id>`).
#[track_caller]
fn assert_names_what_failed(r: &Run, kind: &str, id: &str, what: &str) {
    let line = r.stderr.trim();
    let ok = line.contains("ledger.sqlite: ledger: ")
        || (kind == "zip" && line.contains(".eml`"))
        || (line.contains("(while storing ") && line.contains(id));
    assert!(
        ok,
        "{what}: the error does not name the message or the ledger: {line}"
    );
}

// ---------------------------------------------------------------------------------------------
// backup

fn backup_cmd(d: &Dovecot, scheme: &str, u: &User, archive: &str) -> Command {
    let mut cmd = support::mailkeep();
    cmd.args(["backup", &d.url(scheme, u), archive, "--quiet", "--tls-ca"])
        .arg(&d.ca_pem)
        .args(["--password-env", PW_VAR, "--jobs", "1"])
        .env(PW_VAR, &u.password);
    cmd
}

/// Backup from `scheme` into `kind` with each file-size limit in `limits`; returns the faults
/// that hit (runs that failed).
fn backup_with_limits(scheme: &str, kind: &str, limits: &[u64]) -> Vec<String> {
    let d = dovecot();
    let msgs = messages();
    let u = d.add_user("disk", "disk-pw");
    seed(&u, &msgs, scheme == "imaps");
    let tmp = tempfile::tempdir().unwrap();
    let clean = tmp.path().join("clean");
    run_with(
        backup_cmd(&d, scheme, &u, &archive_arg(kind, &clean)),
        Fault::None,
    )
    .assert_code(0);
    let want = archive_messages(kind, &clean);
    assert_eq!(
        want.iter()
            .filter(|(n, _)| !n.ends_with('/') && n != "manifest.jsonl")
            .count(),
        7
    );
    let want_bytes: Vec<Vec<u8>> = want.iter().map(|(_, b)| b.clone()).collect();
    let want_ledger = (kind != "zip").then(|| ledger_state(&clean));
    let mut hit = Vec::new();
    for &limit in limits {
        let what = format!("backup {scheme} -> {kind}, RLIMIT_FSIZE {limit}");
        let dir = tmp.path().join(format!("l{limit}"));
        let arg = archive_arg(kind, &dir);
        let r = run_with(backup_cmd(&d, scheme, &u, &arg), Fault::FileSize(limit));
        if r.code == 0 {
            hit.push(format!("{what}: no fault (everything fit)"));
        } else {
            let shown = if kind == "zip" {
                dir.with_extension("zip").display().to_string()
            } else {
                dir.display().to_string()
            };
            assert_fault_error(&r, &shown, &what);
            assert_names_what_failed(
                &r,
                kind,
                if scheme == "pop3s" { "UIDL " } else { "UID " },
                &what,
            );
            check_after_fault(kind, &dir, &want_bytes, &what);
            hit.push(format!("{what}: exit {} `{}`", r.code, r.stderr.trim()));
        }
        let again = run_with(backup_cmd(&d, scheme, &u, &arg), Fault::None);
        again.assert_code(0);
        let got = archive_messages(kind, &dir);
        assert_eq!(lost_dup(&want, &got), (0, 0), "{what}: lost, duplicated");
        assert_eq!(got, want, "{what}: the rerun equals an uninterrupted run");
        if let Some(l) = &want_ledger {
            assert_eq!(&ledger_state(&dir), l, "{what}: ledger");
        }
    }
    for h in &hit {
        println!("disk fault: {h}");
    }
    hit
}

const LIMITS: [u64; 3] = [120_000, 300_000, 700_000];

fn assert_some_fault(hit: &[String]) {
    assert!(
        hit.iter().filter(|h| h.contains("exit 6")).count() >= 2,
        "at least two limits must cause a fault: {hit:#?}"
    );
}

#[test]
fn pop3_backup_maildir_file_size_limit() {
    assert_some_fault(&backup_with_limits("pop3s", "maildir", &LIMITS));
}

#[test]
fn pop3_backup_mbox_file_size_limit() {
    assert_some_fault(&backup_with_limits("pop3s", "mbox", &LIMITS));
}

#[test]
fn pop3_backup_zip_file_size_limit() {
    assert_some_fault(&backup_with_limits("pop3s", "zip", &LIMITS));
}

#[test]
fn imap_backup_maildir_file_size_limit() {
    assert_some_fault(&backup_with_limits("imaps", "maildir", &LIMITS));
}

#[test]
fn imap_backup_mbox_file_size_limit() {
    assert_some_fault(&backup_with_limits("imaps", "mbox", &LIMITS));
}

#[test]
fn imap_backup_zip_file_size_limit() {
    assert_some_fault(&backup_with_limits("imaps", "zip", &LIMITS));
}

// ---------------------------------------------------------------------------------------------
// convert

#[test]
fn convert_into_every_kind_with_a_file_size_limit() {
    let d = dovecot();
    let msgs = messages();
    let u = d.add_user("conv", "conv-pw");
    seed(&u, &msgs, true);
    let tmp = tempfile::tempdir().unwrap();
    let from_dir = tmp.path().join("from");
    let from = archive_arg("maildir", &from_dir);
    run_with(backup_cmd(&d, "imaps", &u, &from), Fault::None).assert_code(0);
    let convert = |to: &str| {
        let mut cmd = support::mailkeep();
        cmd.args(["convert", &from, to, "--quiet"]);
        cmd
    };
    for kind in ["maildir", "mbox", "zip"] {
        let clean = tmp.path().join(format!("clean-{kind}"));
        run_with(convert(&archive_arg(kind, &clean)), Fault::None).assert_code(0);
        let want = archive_messages(kind, &clean);
        let want_bytes: Vec<Vec<u8>> = want.iter().map(|(_, b)| b.clone()).collect();
        let mut faults = 0;
        for limit in LIMITS {
            let what = format!("convert -> {kind}, RLIMIT_FSIZE {limit}");
            let dir = tmp.path().join(format!("{kind}-{limit}"));
            let arg = archive_arg(kind, &dir);
            let r = run_with(convert(&arg), Fault::FileSize(limit));
            if r.code != 0 {
                faults += 1;
                let shown = if kind == "zip" {
                    dir.with_extension("zip").display().to_string()
                } else {
                    dir.display().to_string()
                };
                assert_fault_error(&r, &shown, &what);
                assert_names_what_failed(&r, kind, "/from/", &what);
                check_after_fault(kind, &dir, &want_bytes, &what);
                println!("disk fault: {what}: exit {} `{}`", r.code, r.stderr.trim());
            }
            run_with(convert(&arg), Fault::None).assert_code(0);
            let got = archive_messages(kind, &dir);
            assert_eq!(lost_dup(&want, &got), (0, 0), "{what}");
            assert_eq!(got, want, "{what}");
        }
        assert!(faults >= 2, "convert -> {kind}: {faults} faults");
    }
}

// ---------------------------------------------------------------------------------------------
// restore: the uploads ledger cannot grow

#[test]
fn restore_with_a_state_file_that_cannot_grow_appends_each_message_once() {
    let d = dovecot();
    let msgs = messages();
    let src = d.add_user("rsrc", "pw");
    seed(&src, &msgs, true);
    let tmp = tempfile::tempdir().unwrap();
    let archive = archive_arg("maildir", &tmp.path().join("archive"));
    run_with(backup_cmd(&d, "imaps", &src, &archive), Fault::None).assert_code(0);
    let restore = |u: &User, state: &Path| {
        let mut cmd = support::mailkeep();
        cmd.args([
            "restore",
            &archive,
            &d.url("imaps", u),
            "--quiet",
            "--tls-ca",
        ])
        .arg(&d.ca_pem)
        .args(["--password-env", PW_VAR, "--jobs", "1"])
        .env(PW_VAR, &u.password)
        .env("XDG_STATE_HOME", state);
        cmd
    };
    let clean = d.add_user("rclean", "pw");
    run_with(restore(&clean, &tmp.path().join("s-clean")), Fault::None).assert_code(0);
    let want: Vec<_> = ["INBOX", "Sent"]
        .iter()
        .map(|f| support::run::dovecot_mailbox(&clean, f))
        .collect();
    assert_eq!(want.iter().map(Vec::len).sum::<usize>(), 7);
    let (mut faults, mut appended_unrecorded) = (0, 0);
    for limit in [8_192u64, 70_000, 140_000, 200_000, 300_000] {
        let what = format!("restore, state RLIMIT_FSIZE {limit}");
        let u = d.add_user(&format!("r{limit}"), "pw");
        let state = tmp.path().join(format!("s-{limit}"));
        let from = d.log().len();
        let r = run_with(restore(&u, &state), Fault::FileSize(limit));
        if r.code != 0 {
            faults += 1;
            assert_fault_error(&r, "uploads.sqlite", &what);
            support::run::wait_for_sessions_to_end(&d, &u.name, from);
            let held = u.message_count("INBOX") + u.message_count("Sent");
            if held > 0 {
                appended_unrecorded += 1;
            }
            println!(
                "disk fault: {what}: exit {} ({held} appended before the fault) `{}`",
                r.code,
                r.stderr.trim()
            );
        }
        support::run::wait_for_sessions_to_end(&d, &u.name, from);
        run_with(restore(&u, &state), Fault::None).assert_code(0);
        let got: Vec<_> = ["INBOX", "Sent"]
            .iter()
            .map(|f| support::run::dovecot_mailbox(&u, f))
            .collect();
        assert_eq!(got, want, "{what}: the target holds each message once");
    }
    assert!(faults >= 2, "{faults} faults");
    assert!(
        appended_unrecorded >= 1,
        "no fault hit after an APPEND: the rerun's lookup on the target was not exercised"
    );
}

// ---------------------------------------------------------------------------------------------
// A real full filesystem (ENOSPC)

#[test]
fn backup_into_a_full_tmpfs_fails_cleanly_and_resumes() {
    let d = dovecot();
    let msgs = messages();
    let u = d.add_user("full", "pw");
    seed(&u, &msgs, false);
    let tmp = tempfile::tempdir().unwrap();
    for kind in ["maildir", "mbox", "zip"] {
        let clean = tmp.path().join(format!("clean-{kind}"));
        run_with(
            backup_cmd(&d, "pop3s", &u, &archive_arg(kind, &clean)),
            Fault::None,
        )
        .assert_code(0);
        let want = archive_messages(kind, &clean);
        let want_bytes: Vec<Vec<u8>> = want.iter().map(|(_, b)| b.clone()).collect();
        let mnt = tmp.path().join(format!("mnt-{kind}"));
        let fs = match Tmpfs::mount(&mnt, 600) {
            Ok(fs) => fs,
            Err(why) => {
                println!("disk fault: tmpfs ENOSPC variant skipped: {why}");
                return;
            }
        };
        let dir = mnt.join("archive");
        let arg = archive_arg(kind, &dir);
        let what = format!("backup pop3 -> {kind} on a 600 KiB tmpfs");
        let r = run_with(backup_cmd(&d, "pop3s", &u, &arg), Fault::None);
        let shown = if kind == "zip" {
            dir.with_extension("zip").display().to_string()
        } else {
            dir.display().to_string()
        };
        assert_fault_error(&r, &shown, &what);
        check_after_fault(kind, &dir, &want_bytes, &what);
        println!("disk fault: {what}: exit {} `{}`", r.code, r.stderr.trim());
        // Room again: copy what is there to a bigger place and rerun there.
        let moved = tmp.path().join(format!("moved-{kind}"));
        let status = Command::new("cp")
            .arg("-a")
            .arg(&mnt)
            .arg(&moved)
            .status()
            .unwrap();
        assert!(status.success());
        drop(fs);
        let dir = moved.join("archive");
        let arg = archive_arg(kind, &dir);
        run_with(backup_cmd(&d, "pop3s", &u, &arg), Fault::None).assert_code(0);
        let got = archive_messages(kind, &dir);
        assert_eq!(lost_dup(&want, &got), (0, 0), "{what}");
        assert_eq!(got, want, "{what}");
        if kind != "zip" {
            assert_eq!(ledger_state(&dir), ledger_state(&clean), "{what}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Permissions

/// A folder under /tmp that `nobody` owns (and can reach).
fn nobody_dir(tmp: &Path, name: &str) -> PathBuf {
    let (uid, gid) = nobody();
    std::fs::set_permissions(tmp, std::fs::Permissions::from_mode(0o755)).unwrap();
    let dir = tmp.join(name);
    std::fs::create_dir(&dir).unwrap();
    std::os::unix::fs::chown(&dir, Some(uid), Some(gid)).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    dir
}

#[test]
fn backup_into_an_unwritable_folder_fails_cleanly_and_resumes() {
    if !is_root() {
        println!("permission fault skipped: not root, cannot run the child as another user");
        return;
    }
    let d = dovecot();
    let msgs = messages();
    let u = d.add_user("perm", "pw");
    seed(&u, &msgs[..3], true);
    let tmp = tempfile::tempdir().unwrap();
    for kind in ["maildir", "mbox"] {
        let home = nobody_dir(tmp.path(), &format!("home-{kind}"));
        let dir = home.join("archive");
        let arg = archive_arg(kind, &dir);
        let cmd = || {
            let mut c = backup_cmd(&d, "imaps", &u, &arg);
            c.env("HOME", &home).current_dir(&home);
            c
        };
        run_as_nobody(cmd()).assert_code(0);
        // New mail in both folders; then the archive's Sent folder (or file) is made
        // read-only for its owner.
        for (i, (raw, flags, date)) in msgs[3..].iter().enumerate() {
            u.seed_message(
                if i % 2 == 0 { "Sent" } else { "INBOX" },
                raw,
                flags,
                Some(*date),
            );
        }
        let locked = if kind == "maildir" {
            dir.join(".Sent/cur")
        } else {
            dir.join("Sent.mbox")
        };
        let mode = std::fs::metadata(&locked).unwrap().permissions().mode();
        std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(mode & !0o222)).unwrap();
        let what = format!("backup imap -> {kind}, {} read-only", locked.display());
        let r = run_as_nobody(cmd());
        assert!(r.code != 0, "{what}: {r:#?}");
        println!(
            "permission fault: {what}: exit {} `{}`",
            r.code,
            r.stderr.trim()
        );
        assert!(matches!(r.code, 1 | 6), "{what}: {r:#?}");
        assert!(
            r.stderr.contains("Sent"),
            "{what}: names the folder: {r:#?}"
        );
        assert!(!r.stderr.contains("panicked"), "{what}");
        std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(mode)).unwrap();
        run_as_nobody(cmd()).assert_code(0);
        let got = archive_messages(kind, &dir);
        let clean = tmp.path().join(format!("clean-{kind}"));
        run_with(
            backup_cmd(&d, "imaps", &u, &archive_arg(kind, &clean)),
            Fault::None,
        )
        .assert_code(0);
        let want = archive_messages(kind, &clean);
        assert_eq!(lost_dup(&want, &got), (0, 0), "{what}");
        assert_eq!(ledger_state(&dir), ledger_state(&clean), "{what}");
        // Reset the account's new mail for the next kind.
        for f in ["INBOX", "Sent"] {
            for p in u
                .message_files(f)
                .into_iter()
                .skip(if f == "INBOX" { 2 } else { 1 })
            {
                std::fs::remove_file(p).unwrap();
            }
        }
    }
}
