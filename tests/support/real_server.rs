//! Real Cyrus IMAP and Courier-IMAP servers for the tests, one per test binary, on loopback,
//! with throwaway storage: [`RealServer::shared`] starts one on first use.
//!
//! ```ignore
//! let s = RealServer::shared(Kind::Cyrus);
//! let alice = s.add_user("alice", "secret");
//! let mut c = s.client(&alice);
//! c.create(&s.kind.wire_name(&["Archive", "2023"]));
//! c.append("INBOX", &["\\Seen"], 1_500_000_000, b"Subject: hi\r\n\r\nbody\r\n").unwrap();
//! // mailkeep backup imaps://alice@127.0.0.1:<s.imaps_port> --tls-ca <s.ca_pem> ...
//! ```
//!
//! The servers are Debian 12's packages (`cyrus-imapd` 3.6, `courier-imap` 5.0), unpacked into
//! a private root by `install_real_servers` (scripts/lib/install-deps.sh; scripts/test.sh runs
//! it) and started by `scripts/lib/cyrus.sh` / `scripts/lib/courier.sh` (their comments give
//! every configuration choice). The shell functions run in a small controller (`bash`, in a
//! process group of its own) whose stdin is a pipe from the test process: it starts the
//! server, prints its ports, adds users on request (`user NAME PW` -> `ok`) and stops the
//! server when the pipe closes, however the test process ended. A server that does not
//! start fails the test with its log: nothing is skipped.
//!
//! Seeding goes through the server itself (IMAP APPEND on the plain port, RFC 3501 6.3.11,
//! with flags and INTERNALDATE), so the stored form is the server's own; [`ImapClient`] and
//! [`Pop3Client`] are deliberately tiny clients, independent of mailkeep's, that read back
//! what the server holds (`UID FETCH 1:* (UID FLAGS INTERNALDATE BODY.PEEK[])`, POP3 `UIDL`
//! and `RETR`, RFC 1939).

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Which server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Cyrus IMAP 3.6 (upstream namespace defaults: folders beside INBOX, delimiter `/`).
    Cyrus,
    /// Courier-IMAP 5.0 (folders under `INBOX.`, delimiter `.`).
    Courier,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Cyrus => "cyrus",
            Kind::Courier => "courier",
        }
    }

    /// The personal namespace's prefix (RFC 2342): `""` (Cyrus) or `"INBOX."` (Courier).
    pub fn prefix(self) -> &'static str {
        match self {
            Kind::Cyrus => "",
            Kind::Courier => "INBOX.",
        }
    }

    /// The hierarchy delimiter.
    pub fn delimiter(self) -> char {
        match self {
            Kind::Cyrus => '/',
            Kind::Courier => '.',
        }
    }

    /// The name mailkeep's ledger and reports give the mailbox with these levels: the server's
    /// own name (namespace prefix included: Courier's `INBOX.Sent` is `INBOX/Sent`), levels
    /// decoded and joined with `/`.
    pub fn archive_name(self, levels: &[&str]) -> String {
        if levels.len() == 1 && levels[0].eq_ignore_ascii_case("INBOX") {
            return "INBOX".into();
        }
        match self {
            Kind::Cyrus => levels.join("/"),
            Kind::Courier => format!("INBOX/{}", levels.join("/")),
        }
    }

    /// The wire name (modified UTF-7, RFC 3501 5.1.3) of the mailbox with these levels:
    /// `["INBOX"]` is `INBOX`; others go under the personal namespace.
    pub fn wire_name(self, levels: &[&str]) -> String {
        if levels.len() == 1 && levels[0].eq_ignore_ascii_case("INBOX") {
            return "INBOX".into();
        }
        let joined: Vec<String> = levels
            .iter()
            .map(|l| super::dovecot::mutf7_encode(l))
            .collect();
        format!(
            "{}{}",
            self.prefix(),
            joined.join(&self.delimiter().to_string())
        )
    }
}

/// A mail account on a [`RealServer`].
#[derive(Debug, Clone)]
pub struct Account {
    pub name: String,
    pub password: String,
}

/// A running server. The shared one lives until the test process ends (its controller stops it).
pub struct RealServer {
    pub kind: Kind,
    pub imap_port: u16,
    pub imaps_port: u16,
    pub pop3_port: u16,
    pub pop3s_port: u16,
    /// The server's self-signed certificate (CN=localhost, SAN localhost and 127.0.0.1).
    pub ca_pem: PathBuf,
    /// The instance directory (config, spool, state, log).
    pub dir: PathBuf,
    /// The server's log (Cyrus: master's output; Courier: every listener's and authdaemond's).
    pub log_path: PathBuf,
    /// The server's session id: every server process is in it.
    pub session: i32,
    controller: Mutex<(Child, ChildStdin, BufReader<ChildStdout>)>,
    _tmp: tempfile::TempDir,
}

const START_TIMEOUT: Duration = Duration::from_secs(30);

fn lib_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/lib"))
}

const CONTROLLER: &str = r#"
kind=$1 dir=$2
export MAILKEEP_SERVER_NO_FSYNC=1
. "$3/$kind.sh" || exit 1
"${kind}_start" "$dir" || { "${kind}_stop"; exit 1; }
echo "ready $IMAP_PORT $IMAPS_PORT $POP3_PORT $POP3S_PORT $SERVER_PGID $CA_PEM $SERVER_LOG"
while read -r cmd a b; do
    case $cmd in
        user) if "${kind}_user" "$a" "$b" >&2; then echo ok; else echo fail; fi ;;
        transcript) if cyrus_transcript "$a" >&2; then echo ok; else echo fail; fi ;;
        *) echo "fail: unknown command $cmd" ;;
    esac
done
"${kind}_stop"
"#;

impl RealServer {
    /// The server of this test binary, started on first use.
    pub fn shared(kind: Kind) -> &'static RealServer {
        static CYRUS: OnceLock<RealServer> = OnceLock::new();
        static COURIER: OnceLock<RealServer> = OnceLock::new();
        let cell = match kind {
            Kind::Cyrus => &CYRUS,
            Kind::Courier => &COURIER,
        };
        cell.get_or_init(|| RealServer::start(kind))
    }

    /// Starts a server; panics with the controller's output and the server's log if it cannot.
    pub fn start(kind: Kind) -> RealServer {
        // Courier's instance paths must fit in its compiled-in paths (scripts/lib/courier.sh):
        // /tmp/mkcXXXXXX is 14 bytes.
        let tmp = tempfile::Builder::new()
            .prefix(if kind == Kind::Cyrus { "mky" } else { "mkc" })
            .rand_bytes(6)
            .tempdir_in("/tmp")
            .expect("create a temporary directory");
        let dir = tmp.path().join("s");
        let ctl_log = tmp.path().join("controller.log");
        let started = Instant::now();
        let mut child = Command::new("bash")
            .arg("-c")
            .arg(CONTROLLER)
            .arg("mailkeep-test-server")
            .arg(kind.name())
            .arg(&dir)
            .arg(lib_dir())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(fs::File::create(&ctl_log).unwrap())
            .process_group(0)
            .spawn()
            .expect("run bash for the test server's controller");
        let stdin = child.stdin.take().unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        let _ = stdout.read_line(&mut line);
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.first() != Some(&"ready") || fields.len() != 8 {
            let _ = child.wait();
            panic!(
                "{} did not start (install it with scripts/test.sh, which runs install_real_servers \
                 from scripts/lib/install-deps.sh):\n--- controller ---\n{}\n--- server log ---\n{}",
                kind.name(),
                fs::read_to_string(&ctl_log).unwrap_or_default(),
                read_tail(&dir.join(if kind == Kind::Cyrus { "master.log" } else { "server.log" }), 40),
            );
        }
        let port = |i: usize| fields[i].parse::<u16>().unwrap();
        let s = RealServer {
            kind,
            imap_port: port(1),
            imaps_port: port(2),
            pop3_port: port(3),
            pop3s_port: port(4),
            session: fields[5].parse().unwrap(),
            ca_pem: PathBuf::from(fields[6]),
            log_path: PathBuf::from(fields[7]),
            dir,
            controller: Mutex::new((child, stdin, stdout)),
            _tmp: tmp,
        };
        eprintln!(
            "{} started in {:.2} s ({})",
            kind.name(),
            started.elapsed().as_secs_f64(),
            s.dir.display()
        );
        s
    }

    fn command(&self, cmd: &str) {
        let mut guard = self.controller.lock().unwrap_or_else(|e| e.into_inner());
        let (_, stdin, stdout) = &mut *guard;
        writeln!(stdin, "{cmd}").unwrap();
        stdin.flush().unwrap();
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        assert_eq!(
            line.trim(),
            "ok",
            "{}: `{}` failed:\n{}",
            self.kind.name(),
            cmd.split_whitespace().take(2).collect::<Vec<_>>().join(" "),
            read_tail(&self.dir.parent().unwrap().join("controller.log"), 20)
        );
    }

    /// Adds an account (name: letters, digits, `-`, `_`; password without white space).
    pub fn add_user(&self, name: &str, password: &str) -> Account {
        assert!(
            name.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
                && !password.is_empty()
                && !password.contains(char::is_whitespace),
            "unusable account {name:?}"
        );
        self.command(&format!("user {name} {password}"));
        Account {
            name: name.into(),
            password: password.into(),
        }
    }

    /// Cyrus only: records every later session of `user` (commands and replies) under
    /// `<dir>/conf/log/<user>/` (Cyrus's telemetry), for [`RealServer::transcripts`].
    pub fn record_transcripts(&self, user: &Account) {
        assert_eq!(self.kind, Kind::Cyrus, "only Cyrus keeps transcripts");
        self.command(&format!("transcript {}", user.name));
    }

    /// The recorded transcripts of `user` (Cyrus; see [`RealServer::record_transcripts`]).
    pub fn transcripts(&self, user: &Account) -> String {
        let dir = self.dir.join("conf/log").join(&user.name);
        let mut out = String::new();
        let mut files: Vec<PathBuf> = fs::read_dir(&dir)
            .map(|rd| rd.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        files.sort();
        for f in files {
            out.push_str(&format!("--- {} ---\n", f.display()));
            out.push_str(&String::from_utf8_lossy(&fs::read(&f).unwrap_or_default()));
        }
        out
    }

    /// `scheme://user@127.0.0.1:port` for `pop3`, `pop3s`, `imap`, `imaps`.
    pub fn url(&self, scheme: &str, user: &Account) -> String {
        let port = match scheme {
            "pop3" => self.pop3_port,
            "pop3s" => self.pop3s_port,
            "imap" => self.imap_port,
            "imaps" => self.imaps_port,
            _ => panic!("unknown scheme {scheme}"),
        };
        format!("{scheme}://{}@127.0.0.1:{port}", user.name)
    }

    /// The last `n` lines of the server's log.
    pub fn log_tail(&self, n: usize) -> String {
        read_tail(&self.log_path, n)
    }

    /// A logged-in IMAP client on the plain port.
    pub fn client(&self, user: &Account) -> ImapClient {
        let mut c = ImapClient::connect(self.imap_port);
        c.login(&user.name, &user.password);
        c
    }

    /// A logged-in POP3 client on the plain port.
    pub fn pop3(&self, user: &Account) -> Pop3Client {
        Pop3Client::connect(self.pop3_port, &user.name, &user.password)
    }

    /// Server processes now serving a session of `user`: Cyrus writes one file per serving
    /// process into its `proc` directory (`service TAB host TAB user ...`); Courier's imapd and
    /// courierpop3d carry `AUTHENTICATED=user` in their environment.
    pub fn open_sessions(&self, user: &str) -> usize {
        match self.kind {
            Kind::Cyrus => fs::read_dir(self.dir.join("proc"))
                .map(|rd| {
                    rd.flatten()
                        .filter(|e| {
                            fs::read(e.path()).is_ok_and(|b| {
                                String::from_utf8_lossy(&b).split('\t').nth(2) == Some(user)
                            })
                        })
                        .count()
                })
                .unwrap_or(0),
            Kind::Courier => {
                let want = format!("AUTHENTICATED={user}");
                session_pids(self.session)
                    .into_iter()
                    .filter(|pid| {
                        fs::read(format!("/proc/{pid}/environ"))
                            .is_ok_and(|env| env.split(|b| *b == 0).any(|v| v == want.as_bytes()))
                    })
                    .count()
            }
        }
    }

    /// Waits (at most 20 s) until no server process serves `user`: a killed client's sessions
    /// live on while the server works through commands already sent (pipelined APPENDs), and
    /// a rerun meanwhile would not see what they store.
    #[track_caller]
    pub fn wait_for_sessions_to_end(&self, user: &str) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let n = self.open_sessions(user);
            if n == 0 {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{}: {n} sessions of {user} still open\n{}",
                self.kind.name(),
                self.log_tail(20)
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for RealServer {
    fn drop(&mut self) {
        // SIGKILL every server process (the storage is thrown away), then let the controller
        // end.
        for pid in session_pids(self.session) {
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        let guard = self.controller.get_mut().unwrap_or_else(|e| e.into_inner());
        unsafe { libc::kill(-(guard.0.id() as i32), libc::SIGKILL) };
        let _ = guard.0.wait();
    }
}

/// The pids of the processes in session `sid` (field 6 of `/proc/PID/stat`).
pub fn session_pids(sid: i32) -> Vec<i32> {
    let mut out = Vec::new();
    let Ok(rd) = fs::read_dir("/proc") else {
        return out;
    };
    for e in rd.flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = fs::read_to_string(e.path().join("stat")) else {
            continue;
        };
        let Some((_, rest)) = stat.rsplit_once(") ") else {
            continue;
        };
        if rest.split_whitespace().nth(3) == Some(&sid.to_string()) {
            out.push(pid);
        }
    }
    out
}

fn read_tail(path: &Path, n: usize) -> String {
    let text = String::from_utf8_lossy(&fs::read(path).unwrap_or_default()).into_owned();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// LF not preceded by CR becomes CRLF (the form IMAP APPEND and POP3 carry, RFC 3501 4.3).
pub fn crlf(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len() + raw.len() / 30 + 2);
    let mut prev = 0u8;
    for &b in raw {
        if b == b'\n' && prev != b'\r' {
            out.push(b'\r');
        }
        out.push(b);
        prev = b;
    }
    out
}

/// One untagged or tagged response: its text with each literal's bytes removed (the `{n}`
/// marker stays) and the literals in order.
#[derive(Debug, Default)]
pub struct Response {
    pub text: String,
    pub literals: Vec<Vec<u8>>,
}

/// One message as the server holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    pub uid: u32,
    /// Flags and keywords as the server lists them, sorted, without `\Recent`.
    pub flags: Vec<String>,
    /// INTERNALDATE in Unix seconds.
    pub date: i64,
    /// `BODY[]`: the message's exact octets (RFC 3501 6.4.5).
    pub body: Vec<u8>,
}

/// A minimal IMAP4rev1 client (RFC 3501) over plain TCP, for seeding and reading back.
pub struct ImapClient {
    r: BufReader<TcpStream>,
    w: TcpStream,
    tag: u32,
}

impl ImapClient {
    pub fn connect(port: u16) -> ImapClient {
        let s = TcpStream::connect(("127.0.0.1", port)).expect("connect to the test server");
        s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        // Each command goes out in one write: with Nagle's algorithm and delayed ACKs, a
        // command written in pieces waits about 40 ms per round trip.
        s.set_nodelay(true).unwrap();
        let w = s.try_clone().unwrap();
        let mut c = ImapClient {
            r: BufReader::new(s),
            w,
            tag: 0,
        };
        let greeting = c.read_response();
        assert!(greeting.text.starts_with("* OK"), "greeting: {greeting:?}");
        c
    }

    fn read_line(&mut self) -> Vec<u8> {
        let mut line = Vec::new();
        self.r.read_until(b'\n', &mut line).unwrap();
        assert!(!line.is_empty(), "the server closed the connection");
        line
    }

    /// Reads one response (a line, with any literals it announces).
    pub fn read_response(&mut self) -> Response {
        let mut resp = Response::default();
        loop {
            let line = self.read_line();
            let text = String::from_utf8_lossy(&line).into_owned();
            let trimmed = text.trim_end_matches(['\r', '\n']);
            resp.text.push_str(trimmed);
            let lit = trimmed
                .strip_suffix('}')
                .and_then(|t| t.rsplit_once('{'))
                .and_then(|(_, n)| n.trim_end_matches('+').parse::<usize>().ok());
            match lit {
                Some(n) => {
                    let mut buf = vec![0; n];
                    self.r.read_exact(&mut buf).unwrap();
                    resp.literals.push(buf);
                }
                None => return resp,
            }
        }
    }

    /// Sends `cmd`; returns the untagged responses and the tagged one's text (`OK ...`, `NO ...`).
    pub fn command(&mut self, cmd: &str) -> (Vec<Response>, String) {
        self.tag += 1;
        let tag = format!("t{}", self.tag);
        self.w
            .write_all(format!("{tag} {cmd}\r\n").as_bytes())
            .unwrap();
        self.finish(&tag)
    }

    fn finish(&mut self, tag: &str) -> (Vec<Response>, String) {
        let mut untagged = Vec::new();
        loop {
            let r = self.read_response();
            if let Some(rest) = r.text.strip_prefix(&format!("{tag} ")) {
                return (untagged, rest.to_string());
            }
            untagged.push(r);
        }
    }

    /// Sends `cmd`, panicking unless the server answers OK.
    #[track_caller]
    pub fn ok(&mut self, cmd: &str) -> Vec<Response> {
        let (untagged, status) = self.command(cmd);
        assert!(status.starts_with("OK"), "{cmd}: {status}");
        untagged
    }

    pub fn login(&mut self, user: &str, password: &str) {
        self.ok(&format!("LOGIN {} {}", quote(user), quote(password)));
    }

    /// CREATE (RFC 3501 6.3.3); `Err` with the server's words on NO.
    pub fn create(&mut self, wire: &str) -> Result<(), String> {
        let (_, status) = self.command(&format!("CREATE {}", quote(wire)));
        if status.starts_with("OK") {
            Ok(())
        } else {
            Err(status)
        }
    }

    /// APPEND (RFC 3501 6.3.11) with a synchronizing literal; `raw` is sent as given.
    /// `Err` with the server's words on NO/BAD.
    pub fn append(
        &mut self,
        wire: &str,
        flags: &[&str],
        date: i64,
        raw: &[u8],
    ) -> Result<(), String> {
        self.tag += 1;
        let tag = format!("t{}", self.tag);
        let date = mailkeep::protocol::imap::imap_date_time(date, 0).unwrap();
        let line = format!(
            "{tag} APPEND {} ({}) \"{date}\" {{{}}}\r\n",
            quote(wire),
            flags.join(" "),
            raw.len()
        );
        self.w.write_all(line.as_bytes()).unwrap();
        let r = self.read_response();
        if !r.text.starts_with('+') {
            return match r.text.strip_prefix(&format!("{tag} ")) {
                Some(status) => Err(status.to_string()),
                None => Err(format!("unexpected: {}", r.text)),
            };
        }
        let mut data = Vec::with_capacity(raw.len() + 2);
        data.extend_from_slice(raw);
        data.extend_from_slice(b"\r\n");
        self.w.write_all(&data).unwrap();
        let (_, status) = self.finish(&tag);
        if status.starts_with("OK") {
            Ok(())
        } else {
            Err(status)
        }
    }

    /// `LIST "" "*"`: (attributes, name) of every mailbox.
    pub fn list(&mut self) -> Vec<(String, String)> {
        self.ok("LIST \"\" \"*\"")
            .into_iter()
            .filter_map(|r| {
                let rest = r.text.strip_prefix("* LIST (")?;
                let (attrs, rest) = rest.split_once(") ")?;
                // delimiter ("/" or NIL), then the name (quoted, atom or literal)
                let rest = rest.trim_start();
                let rest = if let Some(r) = rest.strip_prefix('"') {
                    &r[r.find('"')? + 1..]
                } else {
                    rest.split_once(' ').map(|x| x.1).unwrap_or("")
                };
                let name = if r.literals.len() == 1 {
                    String::from_utf8_lossy(&r.literals[0]).into_owned()
                } else {
                    unquote(rest.trim())
                };
                Some((attrs.to_string(), name))
            })
            .collect()
    }

    /// Every message of `wire` (EXAMINE, then `UID FETCH 1:* (UID FLAGS INTERNALDATE
    /// BODY.PEEK[])`), by UID.
    pub fn fetch_all(&mut self, wire: &str) -> Vec<Fetched> {
        self.ok(&format!("EXAMINE {}", quote(wire)));
        let mut out: Vec<Fetched> = self
            .ok("UID FETCH 1:* (UID FLAGS INTERNALDATE BODY.PEEK[])")
            .into_iter()
            .filter(|r| r.text.contains(" FETCH ("))
            .map(|r| parse_fetch(&r))
            .collect();
        out.sort_by_key(|f| f.uid);
        out
    }

    pub fn logout(mut self) {
        let _ = self.command("LOGOUT");
    }
}

fn parse_fetch(r: &Response) -> Fetched {
    let t = &r.text;
    let after = |key: &str| -> &str {
        let i = t.find(key).unwrap_or_else(|| panic!("no {key} in {t}"));
        &t[i + key.len()..]
    };
    let uid: u32 = after("UID ")
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let flags_text = after("FLAGS (");
    let flags_text = &flags_text[..flags_text.find(')').unwrap()];
    let mut flags: Vec<String> = flags_text
        .split_whitespace()
        .filter(|f| !f.eq_ignore_ascii_case("\\Recent"))
        .map(str::to_string)
        .collect();
    flags.sort();
    let date_text = after("INTERNALDATE \"");
    let date_text = &date_text[..date_text.find('"').unwrap()];
    let date = mailkeep::protocol::imap::reader::parse_internal_date(date_text.as_bytes())
        .unwrap_or_else(|| panic!("bad INTERNALDATE {date_text}"));
    assert_eq!(r.literals.len(), 1, "one literal (BODY[]) in {t}");
    Fetched {
        uid,
        flags,
        date,
        body: r.literals[0].clone(),
    }
}

/// A quoted string (RFC 3501 4.3: `"` and `\` escaped).
pub fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

fn unquote(s: &str) -> String {
    match s.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
        Some(inner) => inner.replace("\\\"", "\"").replace("\\\\", "\\"),
        None => s.to_string(),
    }
}

/// A minimal POP3 client (RFC 1939) over plain TCP: USER/PASS, UIDL, RETR.
pub struct Pop3Client {
    r: BufReader<TcpStream>,
    w: TcpStream,
}

impl Pop3Client {
    pub fn connect(port: u16, user: &str, password: &str) -> Pop3Client {
        let s = TcpStream::connect(("127.0.0.1", port)).expect("connect to the test server");
        s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        s.set_nodelay(true).unwrap();
        let w = s.try_clone().unwrap();
        let mut c = Pop3Client {
            r: BufReader::new(s),
            w,
        };
        c.status_line();
        c.ok(&format!("USER {user}"));
        c.ok(&format!("PASS {password}"));
        c
    }

    fn status_line(&mut self) -> String {
        let mut line = String::new();
        self.r.read_line(&mut line).unwrap();
        assert!(line.starts_with("+OK"), "POP3: {line:?}");
        line.trim_end().to_string()
    }

    #[track_caller]
    fn ok(&mut self, cmd: &str) -> String {
        self.w.write_all(format!("{cmd}\r\n").as_bytes()).unwrap();
        self.status_line()
    }

    /// The lines of a multi-line reply, dot-unstuffed, each with its CRLF.
    fn multiline(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        loop {
            let mut line = Vec::new();
            self.r.read_until(b'\n', &mut line).unwrap();
            assert!(!line.is_empty(), "POP3 connection closed");
            if line == b".\r\n" {
                return out;
            }
            let start = usize::from(line.starts_with(b".."));
            out.extend_from_slice(&line[start..]);
        }
    }

    /// `UIDL`: message number -> unique id.
    pub fn uidl(&mut self) -> BTreeMap<u32, String> {
        self.ok("UIDL");
        String::from_utf8(self.multiline())
            .unwrap()
            .lines()
            .map(|l| {
                let (n, id) = l.split_once(' ').unwrap();
                (n.parse().unwrap(), id.to_string())
            })
            .collect()
    }

    /// `RETR n`: the message's octets as sent (CRLF line ends), dot-unstuffed.
    pub fn retr(&mut self, n: u32) -> Vec<u8> {
        self.ok(&format!("RETR {n}"));
        self.multiline()
    }

    pub fn quit(mut self) {
        let _ = self.ok("QUIT");
    }
}
