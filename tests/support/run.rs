//! Running the `mailkeep` binary in tests, reading its JSON report, and comparing archives.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Output;

use mailkeep::archive::mbox::format::MboxReader;

/// The outcome of one `mailkeep` run.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    /// The `--json` report (Null when the run printed none).
    pub report: serde_json::Value,
}

impl Run {
    pub fn from_output(out: Output) -> Run {
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        let report = serde_json::from_str(stdout.trim()).unwrap_or(serde_json::Value::Null);
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout,
            stderr,
            report,
        }
    }

    /// A number from the JSON report.
    #[track_caller]
    pub fn n(&self, key: &str) -> u64 {
        self.report[key]
            .as_u64()
            .unwrap_or_else(|| panic!("no `{key}` in report: {self:#?}"))
    }

    #[track_caller]
    pub fn assert_code(&self, code: i32) -> &Self {
        assert_eq!(self.code, code, "unexpected exit code: {self:#?}");
        self
    }

    /// Asserts stderr is exactly one line and contains every one of `parts`.
    #[track_caller]
    pub fn assert_one_line_error(&self, parts: &[&str]) -> &Self {
        let lines: Vec<&str> = self.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "expected one error line: {self:#?}");
        for p in parts {
            assert!(lines[0].contains(p), "error line lacks `{p}`: {}", lines[0]);
        }
        self
    }
}

/// Every file under `dir` (relative path -> (bytes, mtime)), except the lock file, which
/// holds the last run's pid.
pub fn snapshot(dir: &Path) -> BTreeMap<String, (Vec<u8>, i64)> {
    let mut out = BTreeMap::new();
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, (Vec<u8>, i64)>) {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        for e in rd.flatten() {
            let p = e.path();
            let rel = p.strip_prefix(root).unwrap().display().to_string();
            if rel == "mailkeep/lock" {
                continue;
            }
            let md = std::fs::symlink_metadata(&p).unwrap();
            if md.is_dir() {
                walk(root, &p, out);
            } else {
                out.insert(rel, (std::fs::read(&p).unwrap(), md.mtime()));
            }
        }
    }
    walk(dir, dir, &mut out);
    out
}

/// The message files of a Maildir folder's `cur/` and `new/` (name, bytes), sorted by name.
pub fn maildir_messages(folder: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for sub in ["cur", "new"] {
        let Ok(rd) = std::fs::read_dir(folder.join(sub)) else {
            continue;
        };
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if !name.starts_with('.') {
                out.push((format!("{sub}/{name}"), std::fs::read(e.path()).unwrap()));
            }
        }
    }
    out.sort();
    out
}

/// The messages of an mbox file, unquoted (mboxrd), in file order.
pub fn mbox_messages(file: &Path) -> Vec<Vec<u8>> {
    let f = std::io::BufReader::new(std::fs::File::open(file).unwrap());
    MboxReader::new(f)
        .with_path(file)
        .map(|m| m.unwrap().raw)
        .collect()
}

/// Sorted SHA-256 hex digests of some byte strings (a multiset to compare).
pub fn digests<'a>(items: impl IntoIterator<Item = &'a [u8]>) -> Vec<String> {
    use sha2::Digest;
    let mut v: Vec<String> = items
        .into_iter()
        .map(|b| hex::encode(sha2::Sha256::digest(b)))
        .collect();
    v.sort();
    v
}

/// A mailkeep archive's ledger: mailbox -> sorted (sha256, sorted flags, INTERNALDATE). Opened
/// `immutable`, so reading leaves no -shm/-wal files in the archive.
pub fn ledger_state(archive: &Path) -> BTreeMap<String, Vec<(String, Vec<String>, i64)>> {
    let db = rusqlite::Connection::open_with_flags(
        format!(
            "file:{}?immutable=1",
            archive.join("mailkeep/ledger.sqlite").display()
        ),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_URI,
    )
    .unwrap();
    let mut st = db
        .prepare("SELECT mailbox, sha256, flags, internal_date FROM messages")
        .unwrap();
    let mut out: BTreeMap<String, Vec<_>> = BTreeMap::new();
    let rows = st
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, i64>(3)?,
            ))
        })
        .unwrap();
    for row in rows {
        let (mb, sha, flags, date) = row.unwrap();
        let mut flags: Vec<String> = flags.split_whitespace().map(str::to_string).collect();
        flags.sort();
        out.entry(mb).or_default().push((sha, flags, date));
    }
    for v in out.values_mut() {
        v.sort();
    }
    out
}

/// A restore/migrate state file's uploads (`mailkeep/uploads.sqlite`): sorted (target mailbox,
/// sha256) rows, without what differs between two accounts seeded alike (account names, UIDs,
/// UIDVALIDITY, times, whether a row was `appended` or `found`). Opened `immutable`.
pub fn uploads_state(state_file: &Path) -> Vec<(String, String)> {
    let db = rusqlite::Connection::open_with_flags(
        format!("file:{}?immutable=1", state_file.display()),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_URI,
    )
    .unwrap();
    let mut st = db.prepare("SELECT mailbox, sha256 FROM uploads").unwrap();
    let mut out: Vec<(String, String)> = st
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    out.sort();
    out
}

/// The source identities named by more than one upload row of a state file (each source
/// message must be recorded once: a second row is a duplicate upload).
pub fn uploads_repeated_sources(state_file: &Path) -> Vec<String> {
    let db = rusqlite::Connection::open_with_flags(
        format!("file:{}?immutable=1", state_file.display()),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_URI,
    )
    .unwrap();
    let mut st = db
        .prepare(
            "SELECT source FROM uploads WHERE source IS NOT NULL GROUP BY source HAVING COUNT(*) > 1",
        )
        .unwrap();
    let out: Vec<String> = st
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    out
}

/// Waits (at most 10 s) until Dovecot has logged the end of every session of `user` that
/// began after byte `from` of its log (IMAP and POP3). A killed client's connections live on
/// in the server while it works through the commands already sent (pipelined APPENDs), and a
/// rerun meanwhile would not see what they store.
#[track_caller]
pub fn wait_for_sessions_to_end(d: &super::dovecot::Dovecot, user: &str, from: usize) {
    let login = format!("Login: user=<{user}>");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let log = d.log();
        let tail = log.get(from..).unwrap_or("");
        let open: Vec<&str> = tail
            .lines()
            .filter(|l| l.contains(&login))
            .filter_map(|l| l.split("session=<").nth(1)?.split('>').next())
            .filter(|id| {
                !tail
                    .lines()
                    .any(|l| l.contains(&format!("<{id}>: Info: Disconnected")))
            })
            .collect();
        // Dovecot sometimes logs a quick session's end without its `imap(user)<pid><session>`
        // prefix (`imap: Info: Disconnected: Logged out ...`, seen once in CI): such lines,
        // after `from`, count as ends of this user's open sessions.
        let anonymous_ends = tail
            .lines()
            .filter(|l| {
                l.contains(" imap: Info: Disconnected") || l.contains(" pop3: Info: Disconnected")
            })
            .count();
        if open.len() <= anonymous_ends {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "sessions of {user} still open: {open:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// One Dovecot mailbox as stored: sorted (message bytes, Maildir info flags after `:2,`,
/// mtime = INTERNALDATE), for comparing two accounts seeded and treated alike.
pub fn dovecot_mailbox(u: &super::dovecot::User, mailbox: &str) -> Vec<(Vec<u8>, String, i64)> {
    let mut out: Vec<(Vec<u8>, String, i64)> = u
        .message_files(mailbox)
        .iter()
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            let info = name
                .split_once(":2,")
                .map(|(_, f)| f.to_string())
                .unwrap_or_default();
            let md = std::fs::metadata(p).unwrap();
            (std::fs::read(p).unwrap(), info, md.mtime())
        })
        .collect();
    out.sort();
    out
}

/// `mailkeep ARGS --tls-ca <d's CA> --password-env VAR --json` with `u`'s password in VAR: a
/// command against account `u` of the test Dovecot `d`.
pub fn as_user(d: &super::dovecot::Dovecot, u: &super::dovecot::User, args: &[&str]) -> Run {
    const VAR: &str = "MAILKEEP_TEST_USER_PW";
    let out = super::mailkeep()
        .args(args)
        .arg("--tls-ca")
        .arg(&d.ca_pem)
        .args(["--password-env", VAR, "--json"])
        .env(VAR, &u.password)
        .output()
        .unwrap();
    Run::from_output(out)
}

/// One side of a migration: the server URL, its CA file and the account's password.
pub struct Side<'a> {
    pub url: String,
    pub ca: &'a Path,
    pub password: &'a str,
}

impl<'a> Side<'a> {
    /// Account `u` of Dovecot `d` over `scheme` (`pop3s`, `imaps`).
    pub fn of(d: &'a super::dovecot::Dovecot, scheme: &str, u: &'a super::dovecot::User) -> Self {
        Side {
            url: d.url(scheme, u),
            ca: &d.ca_pem,
            password: &u.password,
        }
    }
}

/// `mailkeep migrate SRC DST --json EXTRA` with both sides' CAs and passwords (from the
/// environment) and `XDG_STATE_HOME=state`.
pub fn migrate(src: &Side<'_>, dst: &Side<'_>, state: &Path, extra: &[&str]) -> Run {
    const SRC: &str = "MAILKEEP_TEST_SRC_PW";
    const DST: &str = "MAILKEEP_TEST_DST_PW";
    let out = super::mailkeep()
        .args(["migrate", &src.url, &dst.url, "--json"])
        .arg("--source-tls-ca")
        .arg(src.ca)
        .arg("--target-tls-ca")
        .arg(dst.ca)
        .args(["--source-password-env", SRC, "--target-password-env", DST])
        .args(extra)
        .env(SRC, src.password)
        .env(DST, dst.password)
        .env("XDG_STATE_HOME", state)
        .output()
        .unwrap();
    Run::from_output(out)
}
