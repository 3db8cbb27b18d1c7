//! A real Dovecot per test, on loopback, with its own config, storage, TLS certificate and
//! free ports.
//!
//! ```ignore
//! let dovecot = Dovecot::start();
//! let alice = dovecot.add_user("alice", "secret");
//! alice.seed_message("INBOX", b"Subject: hi\n\nbody\n", "S", Some(1_700_000_000));
//! // mailkeep backup --tls-ca <dovecot.ca_pem> pop3s://alice@127.0.0.1:<dovecot.pop3s_port> ...
//! ```
//!
//! Each instance is `dovecot -F -c <dir>/dovecot.conf`, run under a tiny `sh` watchdog whose
//! stdin is a pipe from the test process, in a process group of its own. Dropping the
//! [`Dovecot`] SIGKILLs that process group (a SIGTERM'd master waits 1-6 s for its children);
//! if the test process dies in any way (panic, abort, SIGKILL), the pipe closes and the
//! watchdog kills its process group itself. Everything lives in one temporary directory (`base_dir`,
//! `state_dir`, log, passwd-files, certificate, mail), removed on drop. Start-up takes
//! 60-100 ms on 2 cores (Dovecot parsing its config and binding; plus about 45 ms once per
//! test process for `openssl req`), stop about 5 ms.
//!
//! # Configuration choices (Dovecot 2.3.19, Debian 12)
//!
//! * Listeners on `127.0.0.1` only, on ports found free by binding port 0 (a start-up that
//!   loses the race for a port is retried with new ports).
//! * `ssl = yes` with a self-signed EC certificate for `CN=localhost`, SAN `DNS:localhost,
//!   IP:127.0.0.1` (made once per test process with the `openssl` CLI, copied into each
//!   instance): implicit TLS on `pop3s_port`/`imaps_port`, STLS/STARTTLS offered on the plain
//!   ports. [`Dovecot::start_without_starttls`] uses `ssl = no`: the plain ports then offer
//!   neither STLS nor STARTTLS; Dovecot 2.3 has no per-listener switch for that and opens no
//!   `ssl = yes` listener when `ssl = no` (measured: connection refused), so that variant has
//!   no TLS ports (`pop3s_port`/`imaps_port` are 0).
//! * `disable_plaintext_auth = no`: Dovecot accepts USER/PASS and LOGIN in clear text, so a
//!   test can check that *mailkeep* refuses to send a password without TLS.
//! * `auth_mechanisms = plain login`; passwords stored `{PLAIN.b64}` (any bytes) in one `passwd-file` per user
//!   (`users/%u`): Dovecot stats a passwd-file at most once a second, so a shared file appended
//!   to would not be seen by a login in the same second, while a new per-user file is read on
//!   the first lookup. [`Dovecot::add_user`] thus works while Dovecot runs.
//!   Extra settings (e.g. `auth_mechanisms = plain login apop`) can be appended with
//!   [`Dovecot::start_with`].
//! * **Running as root**: Dovecot refuses mail access as root whatever the settings
//!   (`passwd-file: User has invalid UID '0'`; with `mail_uid = root` and
//!   `first_valid_uid = first_valid_gid = 0`: `Couldn't drop privileges: Mail access not
//!   allowed for root`). So when the tests run as root, mail processes run as `nobody:nogroup`
//!   (`mail_uid`/`mail_gid`), the instance directory is made traversable (0755), and the
//!   harness `chown`s everything it creates under the mail storage to that uid/gid. When the
//!   tests run as an ordinary user, Dovecot runs entirely as that user (internal and login
//!   users = the current user, no chroot for login processes).
//! * `mail_location = maildir:<dir>/mail/%u` (Maildir++: INBOX is the root, folder `A.B` is the
//!   directory `.A.B`, hierarchy separator `.`); `mail_max_userip_connections = 1000`.
//! * POP3 keeps Dovecot's defaults: `pop3_uidl_format = %08Xu%08Xv`, and RETR sets `\Seen`
//!   (the file is renamed to `...:2,S`).
//! * Seeded files go to `cur/` (never `new/`); Dovecot still reports them `\Recent` to the
//!   first session that sees them, and numbers them (UIDs, POP3 message numbers) in seeding
//!   order. Seed before or while Dovecot runs, but do not rewrite a file Dovecot has already
//!   seen: it caches sizes in its index.
//!
//! # How Dovecot serves seeded files (measured with Dovecot 2.3.19.1)
//!
//! Maildir files are served as follows (the sizes are POP3 `LIST`/IMAP `RFC822.SIZE`):
//!
//! | file on disk | POP3 `RETR` (between `+OK` and `.`, dot-unstuffed) | IMAP `BODY[]` literal |
//! | --- | --- | --- |
//! | LF line ends | every LF -> CRLF; size counts the CRs | same as POP3 |
//! | CRLF line ends | unchanged | unchanged |
//! | mixed LF and CRLF | LF -> CRLF, existing CRLF left alone (no CRCRLF) | same |
//! | bare CR (`a\rb\r`) | bare CRs passed through unchanged | unchanged, no CRLF added |
//! | no final newline (`...line2`) | CRLF appended before `.` (the protocol needs it); the `LIST` size does NOT count it | exact, nothing appended (`...line2)`) |
//! | NUL byte | passed through as `\0` | **replaced by `0x80`** (`BINARY[]` returns the `\0`) |
//! | 8-bit bytes (`\xe9\xff`) | unchanged | unchanged |
//! | line starting with `.` | dot-stuffed on the wire (`..dot`), i.e. unchanged after unstuffing | unchanged |
//!
//! So: the wire form is "the file with each LF not preceded by CR turned into CRLF", except
//! (POP3) a missing final newline gets a CRLF and (IMAP non-BINARY fetch) NUL becomes 0x80.
//! [`wire_form`] computes it. POP3 sizes and IMAP `RFC822.SIZE` are the size of that form
//! (without the POP3-appended final CRLF).

#![allow(dead_code)]

use std::ffi::{CStr, CString};
use std::fs;
use std::io::Write;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tempfile::TempDir;

const START_TIMEOUT: Duration = Duration::from_secs(10);

/// How to start an instance; [`Default`] is what [`Dovecot::start`] uses.
#[derive(Debug, Clone)]
pub struct Options {
    /// `true`: `ssl = yes` (TLS ports + STLS/STARTTLS offered on plain ports).
    /// `false`: `ssl = no` (plain ports only, no STLS/STARTTLS; TLS ports are 0).
    pub tls: bool,
    /// Appended verbatim to the generated `dovecot.conf` (later settings win).
    pub extra_config: String,
    /// The TLS certificate chain and key (PEM files) to serve instead of the instance's
    /// self-signed `localhost` certificate, e.g. an expired one or one for another host name
    /// (see [`Certs`]). [`Dovecot::ca_pem`] is then a copy of this certificate file.
    pub cert: Option<(PathBuf, PathBuf)>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            tls: true,
            extra_config: String::new(),
            cert: None,
        }
    }
}

/// A running Dovecot instance. Dropping it stops Dovecot and removes all its storage.
pub struct Dovecot {
    pub pop3_port: u16,
    /// 0 when started without TLS.
    pub pop3s_port: u16,
    pub imap_port: u16,
    /// 0 when started without TLS.
    pub imaps_port: u16,
    /// The instance's self-signed certificate (for `--tls-ca`); valid for `localhost` and
    /// `127.0.0.1`. Exists (and is usable) even when started without TLS.
    pub ca_pem: PathBuf,
    /// The instance's directory (config, log, `users/<user>` passwd-files, `mail/<user>`); removed on drop.
    pub dir: TempDir,
    pub log_path: PathBuf,
    pub tls: bool,
    owner: Owner,
    watchdog: Option<Child>,
    watchdog_stdin: Option<ChildStdin>,
}

/// A mail user of one instance.
#[derive(Debug, Clone)]
pub struct User {
    pub name: String,
    pub password: String,
    /// The Maildir++ root (INBOX).
    pub maildir: PathBuf,
    owner: Owner,
}

/// Who owns the mail storage (the uid/gid Dovecot's mail processes run as).
#[derive(Debug, Clone, Copy)]
struct Owner {
    uid: u32,
    gid: u32,
    /// Whether the harness must chown what it creates (it runs as root, Dovecot as `nobody`).
    chown: bool,
}

impl Owner {
    fn apply(&self, path: &Path) {
        if self.chown {
            std::os::unix::fs::chown(path, Some(self.uid), Some(self.gid))
                .unwrap_or_else(|e| panic!("chown {}: {e}", path.display()));
        }
    }
}

impl Dovecot {
    /// Starts an instance with TLS (implicit TLS ports, STLS/STARTTLS on plain ports).
    /// Panics with a clear message if Dovecot or openssl is not installed.
    pub fn start() -> Dovecot {
        Self::start_with(Options::default())
    }

    /// Starts an instance with `ssl = no`: plain ports only, no STLS/STARTTLS offered;
    /// `pop3s_port` and `imaps_port` are 0.
    pub fn start_without_starttls() -> Dovecot {
        Self::start_with(Options {
            tls: false,
            ..Options::default()
        })
    }

    pub fn start_with(options: Options) -> Dovecot {
        let dovecot_bin = find_dovecot();
        let mut last_error = String::new();
        for _attempt in 0..5 {
            match Self::try_start(&dovecot_bin, &options) {
                Ok(d) => return d,
                Err((msg, retry)) => {
                    if !retry {
                        panic!("{msg}");
                    }
                    last_error = msg;
                }
            }
        }
        panic!("Dovecot did not start after 5 attempts (port conflicts?): {last_error}");
    }

    fn try_start(dovecot_bin: &Path, options: &Options) -> Result<Dovecot, (String, bool)> {
        let dir = tempfile::Builder::new()
            .prefix("mailkeep-dovecot-")
            .tempdir_in("/tmp") // short path: unix socket paths in base_dir are limited to 108 bytes
            .expect("create a temporary directory for Dovecot");
        let root = dir.path().to_path_buf();
        fs::set_permissions(&root, fs::Permissions::from_mode(0o755)).unwrap();
        for sub in ["run", "state", "mail", "users"] {
            fs::create_dir(root.join(sub)).unwrap();
        }
        let owner = storage_owner();
        owner.apply(&root.join("mail"));

        let ca_pem = root.join("cert.pem");
        let key_pem = root.join("key.pem");
        match &options.cert {
            Some((cert, key)) => {
                fs::copy(cert, &ca_pem).unwrap_or_else(|e| panic!("copy {}: {e}", cert.display()));
                fs::copy(key, &key_pem).unwrap_or_else(|e| panic!("copy {}: {e}", key.display()));
            }
            None => write_cert(&ca_pem, &key_pem),
        }
        fs::set_permissions(&key_pem, fs::Permissions::from_mode(0o600)).unwrap();

        let ports = free_ports(if options.tls { 4 } else { 2 });
        let (pop3_port, imap_port) = (ports[0], ports[1]);
        let (pop3s_port, imaps_port) = if options.tls {
            (ports[2], ports[3])
        } else {
            (0, 0)
        };
        let log_path = root.join("dovecot.log");
        let conf = root.join("dovecot.conf");
        fs::write(
            &conf,
            config(
                &root, options, owner, pop3_port, pop3s_port, imap_port, imaps_port,
            ),
        )
        .unwrap();

        let stderr = fs::File::create(root.join("stderr.log")).unwrap();
        let mut watchdog = Command::new("/bin/sh");
        watchdog
            .arg("-c")
            .arg(WATCHDOG)
            .arg("dovecot-watchdog")
            .arg(dovecot_bin)
            .arg(&conf)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(stderr)
            // Its own process group: the watchdog, the master and every Dovecot process in it
            // (Dovecot never changes it), so a stop kills exactly this instance.
            .process_group(0);
        let mut watchdog = watchdog
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run /bin/sh to start Dovecot: {e}"));
        let watchdog_stdin = watchdog.stdin.take();

        let mut dovecot = Dovecot {
            pop3_port,
            pop3s_port,
            imap_port,
            imaps_port,
            ca_pem,
            dir,
            log_path,
            tls: options.tls,
            owner,
            watchdog: Some(watchdog),
            watchdog_stdin,
        };

        let started = Instant::now();
        let mut waiting: Vec<u16> = [pop3_port, imap_port, pop3s_port, imaps_port]
            .into_iter()
            .filter(|p| *p != 0)
            .collect();
        while !waiting.is_empty() {
            if let Some(status) = dovecot.watchdog.as_mut().unwrap().try_wait().unwrap() {
                dovecot.watchdog = None;
                let diag = dovecot.diagnostics();
                let retry = diag.contains("Address already in use");
                return Err((
                    format!("Dovecot exited during start-up ({status}).\n{diag}"),
                    retry,
                ));
            }
            if started.elapsed() > START_TIMEOUT {
                let diag = dovecot.diagnostics();
                return Err((
                    format!(
                        "Dovecot did not accept connections on ports {waiting:?} within {START_TIMEOUT:?}.\n{diag}"
                    ),
                    false,
                ));
            }
            let listening = listening_ports();
            waiting.retain(|port| match &listening {
                Some(ports) => !ports.contains(port),
                // No /proc/net/tcp: probe by connecting instead.
                None => TcpStream::connect_timeout(
                    &SocketAddr::from(([127, 0, 0, 1], *port)),
                    Duration::from_millis(200),
                )
                .is_err(),
            });
            if !waiting.is_empty() {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        Ok(dovecot)
    }

    /// Adds a user (a name without `:`, `/` or newlines; a password of any bytes) and creates
    /// its empty INBOX. Works while Dovecot runs (the passwd-file is re-read when it changes).
    ///
    /// The password is stored `{PLAIN.b64}` (Dovecot's PLAIN scheme, base64-encoded), so
    /// spaces, quotes, `%`, `:` and non-ASCII bytes reach Dovecot exactly; it is still a
    /// plain-text password, so APOP works when enabled.
    pub fn add_user(&self, name: &str, password: &str) -> User {
        use base64::Engine as _;
        assert!(
            !name.is_empty() && !name.contains([':', '\n', '/']),
            "user name unusable in a passwd-file: {name:?}"
        );
        let maildir = self.dir.path().join("mail").join(name);
        let user = User {
            name: name.to_string(),
            password: password.to_string(),
            maildir: maildir.clone(),
            owner: self.owner,
        };
        user.ensure_mailbox("INBOX");

        // One passwd-file per user: Dovecot stats a passwd-file at most once a second, so
        // appending to a shared file would not be seen by a login in the same second; a new
        // file is read on the first lookup of its user.
        let passwd = self.dir.path().join("users").join(name);
        assert!(!passwd.exists(), "user {name} added twice");
        // name:password:uid:gid:gecos:home:shell (uid/gid come from mail_uid/mail_gid)
        let b64 = base64::engine::general_purpose::STANDARD.encode(password.as_bytes());
        let line = format!("{name}:{{PLAIN.b64}}{b64}::::{}::\n", maildir.display());
        // Written under another name and renamed, so Dovecot never reads a partial file.
        let tmp = self.dir.path().join("users").join(format!(".{name}.tmp"));
        fs::write(&tmp, line).unwrap();
        fs::set_permissions(&tmp, fs::Permissions::from_mode(0o644)).unwrap();
        fs::rename(&tmp, &passwd).unwrap();
        user
    }

    /// Sets `user`'s userdb extra fields (Dovecot `passwd-file` field 8, e.g.
    /// `userdb_quota_rule=*:storage=10K` for an instance started with the quota plugin in
    /// `extra_config`), replacing earlier ones. Dovecot re-reads a passwd-file at most once a
    /// second: this waits 1.1 s so the next login sees the change.
    pub fn set_user_fields(&self, user: &User, fields: &str) {
        assert!(!fields.contains('\n'), "unusable extra fields: {fields:?}");
        let passwd = self.dir.path().join("users").join(&user.name);
        let line = format!(
            "{}:{{PLAIN}}{}::::{}::{fields}\n",
            user.name,
            user.password,
            user.maildir.display()
        );
        let tmp = self
            .dir
            .path()
            .join("users")
            .join(format!(".{}.tmp", user.name));
        fs::write(&tmp, line).unwrap();
        fs::set_permissions(&tmp, fs::Permissions::from_mode(0o644)).unwrap();
        fs::rename(&tmp, &passwd).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(1100));
    }

    /// `scheme://user@127.0.0.1:port` for `pop3`, `pop3s`, `imap`, `imaps`.
    pub fn url(&self, scheme: &str, user: &User) -> String {
        let port = match scheme {
            "pop3" => self.pop3_port,
            "pop3s" => self.pop3s_port,
            "imap" => self.imap_port,
            "imaps" => self.imaps_port,
            _ => panic!("unknown scheme {scheme}"),
        };
        assert!(
            port != 0,
            "{scheme} is not served by this instance (started without TLS)"
        );
        format!("{scheme}://{}@127.0.0.1:{port}", user.name)
    }

    /// The whole Dovecot log.
    pub fn log(&self) -> String {
        String::from_utf8_lossy(&fs::read(&self.log_path).unwrap_or_default()).into_owned()
    }

    /// The last `n` lines of the Dovecot log.
    pub fn log_tail(&self, n: usize) -> String {
        let log = self.log();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    fn diagnostics(&self) -> String {
        let read = |name: &str| fs::read_to_string(self.dir.path().join(name)).unwrap_or_default();
        format!(
            "--- Dovecot stderr ---\n{}\n--- tail of {} ---\n{}\n--- dovecot.conf ---\n{}",
            read("stderr.log").trim_end(),
            self.log_path.display(),
            self.log_tail(30),
            read("dovecot.conf").trim_end(),
        )
    }

    /// Stops Dovecot and removes its storage (the same as dropping it).
    pub fn stop(self) {}

    fn shutdown(&mut self) {
        drop(self.watchdog_stdin.take());
        let Some(mut child) = self.watchdog.take() else {
            return;
        };
        // SIGKILL the whole process group (watchdog, master, login/auth/mail processes) by its
        // id: a SIGTERM'd master waits for its children, which takes 1-6 s, and the storage is
        // thrown away anyway.
        unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
        let _ = child.wait();
    }
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        self.shutdown();
        if std::thread::panicking() {
            eprintln!(
                "--- tail of Dovecot log {} ---\n{}",
                self.log_path.display(),
                self.log_tail(20)
            );
        }
    }
}

/// Runs `dovecot -F -c conf`; when stdin reaches EOF (the test process is gone, however it
/// died) kills its own process group, i.e. this instance; exits with Dovecot's status.
const WATCHDOG: &str = r#"
exec 3<&0
"$1" -F -c "$2" </dev/null 3<&- &
d=$!
( read _ <&3; kill -KILL 0 ) &
w=$!
exec 3<&-
wait "$d"; st=$?
kill "$w" 2>/dev/null
exit $st
"#;

static SEED_COUNTER: AtomicU64 = AtomicU64::new(0);

impl User {
    /// The Maildir++ directory of an IMAP mailbox name: `INBOX` (any case) is the root, other
    /// names `.Name` with `/` accepted as a synonym of the separator `.` and non-ASCII names
    /// encoded in modified UTF-7, as Dovecot does.
    pub fn mailbox_dir(&self, mailbox: &str) -> PathBuf {
        if mailbox.eq_ignore_ascii_case("INBOX") {
            self.maildir.clone()
        } else {
            let name = mailbox.replace('/', ".");
            self.maildir.join(format!(".{}", mutf7_encode(&name)))
        }
    }

    /// Creates the mailbox's Maildir (and its parents') if missing.
    pub fn ensure_mailbox(&self, mailbox: &str) -> PathBuf {
        let dir = self.mailbox_dir(mailbox);
        if dir.join("tmp").is_dir() {
            return dir;
        }
        if dir != self.maildir {
            self.ensure_mailbox("INBOX");
        }
        for d in [
            dir.clone(),
            dir.join("cur"),
            dir.join("new"),
            dir.join("tmp"),
        ] {
            if !d.is_dir() {
                let _ = fs::create_dir(&d);
                self.owner.apply(&d);
            }
        }
        if dir != self.maildir {
            let marker = dir.join("maildirfolder");
            fs::write(&marker, b"").unwrap();
            self.owner.apply(&marker);
        }
        dir
    }

    /// Writes `raw` byte for byte as a message file into `mailbox` (`cur/`, info `:2,<flags>`,
    /// e.g. `"S"`, `"FS"` or `""`), with the file's mtime (= IMAP INTERNALDATE) set to `mtime`
    /// (Unix seconds) if given. Dovecot assigns UIDs in seeding order. Returns the file path.
    /// Cheap: a few syscalls per message, no fsync.
    pub fn seed_message(
        &self,
        mailbox: &str,
        raw: &[u8],
        flags: &str,
        mtime: Option<i64>,
    ) -> PathBuf {
        let dir = self.ensure_mailbox(mailbox);
        let mut flags: Vec<char> = flags.chars().collect();
        assert!(
            flags.iter().all(|c| c.is_ascii_alphabetic()),
            "Maildir flags are letters: {flags:?}"
        );
        flags.sort_unstable();
        flags.dedup();
        let flags: String = flags.into_iter().collect();
        let n = SEED_COUNTER.fetch_add(1, Ordering::Relaxed);
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        // Dovecot sorts new files by name when assigning UIDs: keep names in seeding order.
        let base = format!("{now}.M{n:012}P{}.mailkeep-test", std::process::id());
        let tmp = dir.join("tmp").join(&base);
        {
            let mut f = fs::File::create(&tmp).unwrap_or_else(|e| panic!("{}: {e}", tmp.display()));
            f.write_all(raw).unwrap();
            if let Some(secs) = mtime {
                f.set_modified(unix_time(secs)).unwrap();
            }
        }
        self.owner.apply(&tmp);
        let dest = dir.join("cur").join(format!("{base}:2,{flags}"));
        fs::rename(&tmp, &dest).unwrap();
        dest
    }

    /// Number of messages in `mailbox` (files in `cur/` and `new/`).
    pub fn message_count(&self, mailbox: &str) -> usize {
        self.message_files(mailbox).len()
    }

    /// Message files of `mailbox` (`cur/` and `new/`), sorted by file name.
    pub fn message_files(&self, mailbox: &str) -> Vec<PathBuf> {
        let dir = self.mailbox_dir(mailbox);
        let mut files = Vec::new();
        for sub in ["cur", "new"] {
            let Ok(entries) = fs::read_dir(dir.join(sub)) else {
                continue;
            };
            for e in entries.flatten() {
                if !e.file_name().to_string_lossy().starts_with('.') {
                    files.push(e.path());
                }
            }
        }
        files.sort_by(|a, b| a.file_name().cmp(&b.file_name()));
        files
    }

    /// Contents of the message files of `mailbox`, in file-name order (Dovecot stores messages
    /// it receives by APPEND with LF line ends).
    pub fn messages(&self, mailbox: &str) -> Vec<Vec<u8>> {
        self.message_files(mailbox)
            .iter()
            .map(|p| fs::read(p).unwrap())
            .collect()
    }
}

/// What Dovecot sends for a seeded file (see the module docs): LF not preceded by CR becomes
/// CRLF; for `pop3 == true` a CRLF is appended if the file does not end with LF (before the
/// terminating `.`; dot-stuffing not included); for IMAP `BODY[]` (`pop3 == false`) NUL
/// becomes 0x80.
pub fn wire_form(raw: &[u8], pop3: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len() + raw.len() / 32 + 2);
    let mut prev = 0u8;
    for &b in raw {
        if b == b'\n' && prev != b'\r' {
            out.push(b'\r');
        }
        out.push(if b == 0 && !pop3 { 0x80 } else { b });
        prev = b;
    }
    if pop3 && !out.ends_with(b"\n") {
        out.extend_from_slice(b"\r\n");
    }
    out
}

fn unix_time(secs: i64) -> SystemTime {
    if secs >= 0 {
        UNIX_EPOCH + Duration::from_secs(secs as u64)
    } else {
        UNIX_EPOCH - Duration::from_secs(secs.unsigned_abs())
    }
}

/// IMAP modified UTF-7 (RFC 3501 5.1.3).
pub fn mutf7_encode(name: &str) -> String {
    use base64::Engine as _;
    let engine = base64::engine::general_purpose::STANDARD_NO_PAD;
    let mut out = String::new();
    let mut pending: Vec<u16> = Vec::new();
    let flush = |pending: &mut Vec<u16>, out: &mut String| {
        if !pending.is_empty() {
            let bytes: Vec<u8> = pending.iter().flat_map(|u| u.to_be_bytes()).collect();
            out.push('&');
            out.push_str(&engine.encode(bytes).replace('/', ","));
            out.push('-');
            pending.clear();
        }
    };
    for c in name.chars() {
        if (' '..='~').contains(&c) {
            flush(&mut pending, &mut out);
            if c == '&' {
                out.push_str("&-");
            } else {
                out.push(c);
            }
        } else {
            let mut buf = [0u16; 2];
            pending.extend_from_slice(c.encode_utf16(&mut buf));
        }
    }
    flush(&mut pending, &mut out);
    out
}

fn find_dovecot() -> PathBuf {
    if let Some(p) = std::env::var_os("MAILKEEP_TEST_DOVECOT") {
        return PathBuf::from(p);
    }
    let mut candidates = vec![
        PathBuf::from("/usr/sbin/dovecot"),
        PathBuf::from("/usr/local/sbin/dovecot"),
    ];
    if let Some(path) = std::env::var_os("PATH") {
        candidates.extend(std::env::split_paths(&path).map(|d| d.join("dovecot")));
    }
    candidates
        .into_iter()
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "Dovecot is not installed (no dovecot in /usr/sbin, /usr/local/sbin or PATH): \
             run scripts/test.sh, which installs it (apt-get install dovecot-imapd dovecot-pop3d)"
            )
        })
}

/// Writes the certificate and key, generated once per test process (about 40 ms) and copied
/// into each instance.
fn write_cert(cert: &Path, key: &Path) {
    static CERT: OnceLock<(Vec<u8>, Vec<u8>)> = OnceLock::new();
    let (cert_pem, key_pem) = CERT.get_or_init(|| {
        generate_cert(cert, key);
        (fs::read(cert).unwrap(), fs::read(key).unwrap())
    });
    fs::write(cert, cert_pem).unwrap();
    fs::write(key, key_pem).unwrap();
}

fn generate_cert(cert: &Path, key: &Path) {
    let out = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
        ])
        .args(["-nodes", "-days", "3650", "-subj", "/CN=localhost"])
        .args(["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
        .arg("-keyout")
        .arg(key)
        .arg("-out")
        .arg(cert)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run the openssl CLI ({e}): run scripts/test.sh, which installs it")
        });
    assert!(
        out.status.success(),
        "openssl req failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Test certificates made with the `openssl` CLI in a temporary folder: a private CA and
/// leaf certificates it signs, for TLS refusal tests (expired, wrong host name) and pinning.
///
/// ```ignore
/// let certs = Certs::new();
/// let (cert, key) = certs.leaf("expired", "127.0.0.1", Validity::Expired);
/// let d = Dovecot::start_with(Options { cert: Some((cert, key)), ..Options::default() });
/// // mailkeep ... --tls-ca <certs.ca_pem()>: refused, "has expired"
/// ```
pub struct Certs {
    pub dir: TempDir,
}

/// The validity period of a [`Certs::leaf`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Validity {
    /// From now for 30 days.
    Current,
    /// Not after yesterday (`openssl x509 -days -1`): expired.
    Expired,
}

impl Certs {
    /// Makes the CA (`CN=mailkeep test CA`, EC P-256, 10 years).
    pub fn new() -> Certs {
        let dir = tempfile::tempdir().unwrap();
        openssl(
            &[
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-days",
                "3650",
                "-subj",
                "/CN=mailkeep test CA",
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
            ],
            dir.path(),
        );
        Certs { dir }
    }

    /// The CA certificate (for `--tls-ca`).
    pub fn ca_pem(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// A certificate for `name` (a DNS name or an IP address, in CN and subjectAltName) signed
    /// by the CA; returns (certificate PEM, key PEM), files named after `label`.
    pub fn leaf(&self, label: &str, name: &str, validity: Validity) -> (PathBuf, PathBuf) {
        let san = if name.parse::<std::net::IpAddr>().is_ok() {
            format!("subjectAltName=IP:{name}")
        } else {
            format!("subjectAltName=DNS:{name}")
        };
        let d = self.dir.path();
        let (key, csr, crt, ext) = (
            format!("{label}.key"),
            format!("{label}.csr"),
            format!("{label}.pem"),
            format!("{label}.ext"),
        );
        fs::write(d.join(&ext), format!("{san}\n")).unwrap();
        openssl(
            &[
                "req",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-subj",
                &format!("/CN={name}"),
                "-keyout",
                &key,
                "-out",
                &csr,
            ],
            d,
        );
        let days = match validity {
            Validity::Current => "30",
            Validity::Expired => "-1",
        };
        openssl(
            &[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-days",
                days,
                "-extfile",
                &ext,
                "-out",
                &crt,
            ],
            d,
        );
        (d.join(crt), d.join(key))
    }

    /// A self-signed certificate for `name`, signed by no CA; returns (certificate, key).
    pub fn self_signed(&self, label: &str, name: &str) -> (PathBuf, PathBuf) {
        let d = self.dir.path();
        let (key, crt) = (format!("{label}.key"), format!("{label}.pem"));
        openssl(
            &[
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-days",
                "30",
                "-subj",
                &format!("/CN={name}"),
                "-addext",
                &format!("subjectAltName=DNS:{name}"),
                "-keyout",
                &key,
                "-out",
                &crt,
            ],
            d,
        );
        (d.join(crt), d.join(key))
    }
}

/// The SHA-256 fingerprint of a PEM certificate as `openssl x509 -noout -fingerprint -sha256`
/// prints it (`sha256 Fingerprint=AB:CD:...`), trimmed.
pub fn openssl_fingerprint(cert: &Path) -> String {
    let out = Command::new("openssl")
        .args(["x509", "-noout", "-fingerprint", "-sha256", "-in"])
        .arg(cert)
        .output()
        .expect("run openssl x509");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

fn openssl(args: &[&str], dir: &Path) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run the openssl CLI ({e}): run scripts/test.sh, which installs it")
        });
    assert!(
        out.status.success(),
        "openssl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Ports in state LISTEN on 127.0.0.1 (from /proc/net/tcp), or `None` if unreadable.
/// Used instead of connecting, which would leave login processes behind and log noise.
fn listening_ports() -> Option<Vec<u16>> {
    let table = fs::read_to_string("/proc/net/tcp").ok()?;
    Some(
        table
            .lines()
            .skip(1)
            .filter_map(|line| {
                let mut fields = line.split_whitespace();
                let local = fields.nth(1)?;
                let state = fields.nth(1)?;
                let (addr, port) = local.split_once(':')?;
                (state == "0A" && (addr == "0100007F" || addr == "00000000"))
                    .then(|| u16::from_str_radix(port, 16).ok())
                    .flatten()
            })
            .collect(),
    )
}

fn free_ports(n: usize) -> Vec<u16> {
    // Hold all listeners at once so the ports are distinct.
    let listeners: Vec<TcpListener> = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0"))
        .collect();
    listeners
        .iter()
        .map(|l| l.local_addr().unwrap().port())
        .collect()
}

fn user_name(uid: u32) -> Option<String> {
    unsafe {
        let pw = libc::getpwuid(uid);
        if pw.is_null() {
            return None;
        }
        Some(CStr::from_ptr((*pw).pw_name).to_string_lossy().into_owned())
    }
}

fn group_name(gid: u32) -> Option<String> {
    unsafe {
        let gr = libc::getgrgid(gid);
        if gr.is_null() {
            return None;
        }
        Some(CStr::from_ptr((*gr).gr_name).to_string_lossy().into_owned())
    }
}

fn nobody() -> (u32, u32) {
    unsafe {
        let name = CString::new("nobody").unwrap();
        let pw = libc::getpwnam(name.as_ptr());
        if pw.is_null() {
            (65534, 65534)
        } else {
            ((*pw).pw_uid, (*pw).pw_gid)
        }
    }
}

fn storage_owner() -> Owner {
    let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
    if uid == 0 {
        let (uid, gid) = nobody();
        Owner {
            uid,
            gid,
            chown: true,
        }
    } else {
        Owner {
            uid,
            gid,
            chown: false,
        }
    }
}

fn config(
    root: &Path,
    options: &Options,
    owner: Owner,
    pop3_port: u16,
    pop3s_port: u16,
    imap_port: u16,
    imaps_port: u16,
) -> String {
    let r = root.display();
    let name = root.file_name().unwrap().to_string_lossy();
    let mut c = format!(
        "# generated by tests/support/dovecot.rs
instance_name = {name}
base_dir = {r}/run
state_dir = {r}/state
log_path = {r}/dovecot.log
protocols = imap pop3
listen = 127.0.0.1
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_verbose = yes
mail_location = maildir:{r}/mail/%u
mail_uid = {uid}
mail_gid = {gid}
first_valid_uid = 1
first_valid_gid = 1
mail_max_userip_connections = 1000
passdb {{
  driver = passwd-file
  args = {r}/users/%u
}}
userdb {{
  driver = passwd-file
  args = {r}/users/%u
}}
",
        uid = owner.uid,
        gid = owner.gid,
    );
    if options.tls {
        c.push_str(&format!(
            "ssl = yes
ssl_cert = <{r}/cert.pem
ssl_key = <{r}/key.pem
service pop3-login {{
  inet_listener pop3 {{
    address = 127.0.0.1
    port = {pop3_port}
  }}
  inet_listener pop3s {{
    address = 127.0.0.1
    port = {pop3s_port}
    ssl = yes
  }}
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {imap_port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {imaps_port}
    ssl = yes
  }}
}}
"
        ));
    } else {
        c.push_str(&format!(
            "ssl = no
service pop3-login {{
  inet_listener pop3 {{
    address = 127.0.0.1
    port = {pop3_port}
  }}
  inet_listener pop3s {{
    port = 0
  }}
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {imap_port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
"
        ));
    }
    if !owner.chown {
        // Not root: everything runs as the current user, without chroot.
        let user = user_name(owner.uid).unwrap_or_else(|| owner.uid.to_string());
        let group = group_name(owner.gid).unwrap_or_else(|| owner.gid.to_string());
        c.push_str(&format!(
            "default_internal_user = {user}
default_internal_group = {group}
default_login_user = {user}
service anvil {{
  chroot =
}}
service imap-login {{
  chroot =
}}
service pop3-login {{
  chroot =
}}
service auth-worker {{
  user = $default_internal_user
}}
"
        ));
    }
    c.push_str(&options.extra_config);
    c.push('\n');
    c
}
