//! A scripted fake POP3 server for fault tests (STYLE.md: "a real server in tests; a scripted
//! fake only for faults").
//!
//! It plays transcripts in the format of `shared/cases/TRANSCRIPT-FORMAT.md` on
//! `127.0.0.1:<port>`, one thread per connection. `SESSION n` scripts serve the n-th connection
//! (connections after the last scripted session get the last one again; a script without
//! `SESSION` lines serves every connection).
//!
//! Matching is forgiving, because transcripts mark some commands optional and some "must NOT
//! be sent": a command is answered by the next scripted `C:` block with the same command name
//! (and, for `RETR`, `TOP`, `DELE`, `LIST n`, `UIDL n`, the same message number), skipping the
//! blocks in between; failing that, by any earlier block that matches (a second CAPA, a RETR
//! sent again); failing that, by a built-in answer (`LIST n`/`UIDL n`/`STAT` derived from the
//! scripted LIST/UIDL listing, `+OK` to DELE/RSET/NOOP, `+OK` and close to QUIT, `-ERR`
//! otherwise). Every command line received is recorded for [`FakeServer::commands`].
//!
//! Faults: `PAUSE ms`, `STALL` (stop sending, keep the socket open until the server is
//! dropped), `CLOSE`, `HUGE n` (send `n` octets of `x` with no line end: a reply line that
//! never ends), and [`CutFile`] (send only the first K bytes of an `S+` file, then close
//! or stall).

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// What to do after a cut file's first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cut {
    /// Close the connection.
    Close,
    /// Keep the connection open, silent, until the server is dropped.
    Stall,
}

/// A fault: the `times` first sends of the `S+` file named `file` (its file name, e.g.
/// `m2.pop-wire`) stop after `after_bytes` bytes, then [`Cut`].
#[derive(Debug, Clone)]
pub struct CutFile {
    pub file: String,
    pub after_bytes: usize,
    pub then: Cut,
    pub times: usize,
}

impl CutFile {
    /// Cuts the first send of `file` after `after_bytes` bytes, then `then`.
    pub fn once(file: &str, after_bytes: usize, then: Cut) -> Self {
        CutFile {
            file: file.to_string(),
            after_bytes,
            then,
            times: 1,
        }
    }
}

#[derive(Debug, Clone)]
enum Step {
    Line(String),
    File(PathBuf),
    Pause(u64),
    Stall,
    Close,
    /// `n` octets of `x`, no line end.
    Huge(usize),
}

#[derive(Debug, Clone)]
struct Exchange {
    /// Upper-cased command name.
    name: String,
    /// The first argument when it selects a message (RETR, TOP, DELE, LIST n, UIDL n).
    msg: Option<String>,
    steps: Vec<Step>,
}

#[derive(Debug, Clone, Default)]
struct Session {
    opening: Vec<Step>,
    exchanges: Vec<Exchange>,
}

/// Splits a command line into the upper-cased name and its message-number argument (for the
/// commands whose first argument selects a message).
fn command_key(line: &str) -> (String, Option<String>) {
    let mut w = line.split_whitespace();
    let name = w.next().unwrap_or("").to_ascii_uppercase();
    let msg = match name.as_str() {
        "RETR" | "TOP" | "DELE" | "LIST" | "UIDL" => w.next().map(str::to_string),
        _ => None,
    };
    (name, msg)
}

fn parse(script: &str, base_dir: &Path) -> Vec<Session> {
    let mut sessions: Vec<Session> = Vec::new();
    let mut current = Session::default();
    let mut seen_session = false;
    for raw in script.lines() {
        let line = raw.trim_end_matches('\r');
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let step = if let Some(text) = line.strip_prefix("S: ") {
            Step::Line(text.to_string())
        } else if line == "S:" {
            Step::Line(String::new())
        } else if let Some(file) = line.strip_prefix("S+ ") {
            Step::File(base_dir.join(file.trim()))
        } else if let Some(cmd) = line.strip_prefix("C: ") {
            // Drop an annotation such as "   (optional)" or "(must NOT be sent ...)".
            let cmd = match cmd.find(" (") {
                Some(i) if cmd.trim_end().ends_with(')') => &cmd[..i],
                _ => cmd,
            };
            let (name, msg) = command_key(cmd);
            current.exchanges.push(Exchange {
                name,
                msg,
                steps: Vec::new(),
            });
            continue;
        } else if let Some(ms) = line.strip_prefix("PAUSE ") {
            Step::Pause(ms.trim().parse().expect("PAUSE <ms>"))
        } else if line.trim() == "STALL" {
            Step::Stall
        } else if line.trim() == "CLOSE" {
            Step::Close
        } else if let Some(n) = line.strip_prefix("HUGE ") {
            Step::Huge(n.trim().parse().expect("HUGE <bytes>"))
        } else if line.starts_with("SESSION ") {
            if seen_session {
                sessions.push(std::mem::take(&mut current));
            } else {
                current = Session::default();
            }
            seen_session = true;
            continue;
        } else {
            panic!("fake server: cannot parse script line {line:?}");
        };
        match current.exchanges.last_mut() {
            Some(ex) => ex.steps.push(step),
            None => current.opening.push(step),
        }
    }
    sessions.push(current);
    sessions
}

struct Shared {
    stop: AtomicBool,
    sockets: Mutex<Vec<TcpStream>>,
    stall: (Mutex<()>, Condvar),
    threads: Mutex<Vec<JoinHandle<()>>>,
    commands: Mutex<Vec<(usize, String)>>,
    faults: Mutex<Vec<CutFile>>,
}

impl Shared {
    /// Blocks until the server is dropped.
    fn stall(&self) {
        let (lock, cv) = &self.stall;
        let mut g = lock.lock().unwrap();
        while !self.stop.load(Ordering::SeqCst) {
            g = cv.wait_timeout(g, Duration::from_millis(100)).unwrap().0;
        }
    }
}

/// A fake POP3 server on `127.0.0.1:port`, stopped when dropped.
pub struct FakeServer {
    pub port: u16,
    shared: Arc<Shared>,
    connections: Arc<AtomicUsize>,
    acceptor: Option<JoinHandle<()>>,
}

impl FakeServer {
    /// Plays the transcript at `path`; `S+` files are relative to its folder.
    pub fn pop3_from_transcript(path: &Path) -> FakeServer {
        Self::pop3_from_transcript_with(path, Vec::new())
    }

    /// Like [`FakeServer::pop3_from_transcript`], with faults.
    pub fn pop3_from_transcript_with(path: &Path, faults: Vec<CutFile>) -> FakeServer {
        let script = std::fs::read_to_string(path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        Self::pop3_with(&script, path.parent().unwrap_or(Path::new(".")), faults)
    }

    /// Plays `script`; `S+` files are relative to `base_dir`.
    pub fn pop3_from_str(script: &str, base_dir: &Path) -> FakeServer {
        Self::pop3_with(script, base_dir, Vec::new())
    }

    /// Plays `script` with faults.
    pub fn pop3_with(script: &str, base_dir: &Path, faults: Vec<CutFile>) -> FakeServer {
        let sessions = Arc::new(parse(script, base_dir));
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let port = listener.local_addr().unwrap().port();
        let shared = Arc::new(Shared {
            stop: AtomicBool::new(false),
            sockets: Mutex::new(Vec::new()),
            stall: (Mutex::new(()), Condvar::new()),
            threads: Mutex::new(Vec::new()),
            commands: Mutex::new(Vec::new()),
            faults: Mutex::new(faults),
        });
        let connections = Arc::new(AtomicUsize::new(0));
        let (sh, conns) = (shared.clone(), connections.clone());
        let acceptor = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if sh.stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let n = conns.fetch_add(1, Ordering::SeqCst) + 1;
                if let Ok(clone) = stream.try_clone() {
                    sh.sockets.lock().unwrap().push(clone);
                }
                let session = sessions[(n - 1).min(sessions.len() - 1)].clone();
                let sh2 = sh.clone();
                let t = std::thread::spawn(move || serve(stream, n, &session, &sh2));
                sh.threads.lock().unwrap().push(t);
            }
        });
        FakeServer {
            port,
            shared,
            connections,
            acceptor: Some(acceptor),
        }
    }

    /// Every command line received, across connections, in order (e.g. `RETR 3`).
    pub fn commands(&self) -> Vec<String> {
        let c = self.shared.commands.lock().unwrap();
        c.iter().map(|(_, s)| s.clone()).collect()
    }

    /// The command lines received on the `n`-th connection (1-based).
    pub fn commands_in(&self, n: usize) -> Vec<String> {
        let c = self.shared.commands.lock().unwrap();
        c.iter()
            .filter(|(k, _)| *k == n)
            .map(|(_, s)| s.clone())
            .collect()
    }

    /// How many connections were accepted.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    /// `127.0.0.1:port`.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        self.shared.stall.1.notify_all();
        for s in self.shared.sockets.lock().unwrap().drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
        // Wake the acceptor.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(a) = self.acceptor.take() {
            let _ = a.join();
        }
        let threads: Vec<_> = self.shared.threads.lock().unwrap().drain(..).collect();
        for t in threads {
            let _ = t.join();
        }
    }
}

/// How a connection goes on after some steps.
enum Flow {
    Continue,
    Closed,
}

fn serve(stream: TcpStream, n: usize, session: &Session, shared: &Shared) {
    let Ok(read_half) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(read_half);
    let mut out = stream;
    if let Flow::Closed = play(&mut out, &session.opening, shared) {
        return;
    }
    let mut cursor = 0;
    loop {
        let mut line = String::new();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        if shared.stop.load(Ordering::SeqCst) {
            return;
        }
        let line = line.trim_end_matches(['\r', '\n']).to_string();
        shared.commands.lock().unwrap().push((n, line.clone()));
        let key = command_key(&line);
        let matches = |ex: &Exchange| ex.name == key.0 && ex.msg == key.1;
        let exs = &session.exchanges;
        let flow = if let Some(j) = (cursor..exs.len()).find(|&j| matches(&exs[j])) {
            cursor = j + 1;
            play(&mut out, &exs[j].steps, shared)
        } else if let Some(ex) = exs.iter().find(|ex| matches(ex)) {
            play(&mut out, &ex.steps, shared)
        } else {
            let reply = builtin_reply(&key.0, key.1.as_deref(), session);
            play(&mut out, &[Step::Line(reply)], shared)
        };
        if let Flow::Closed = flow {
            return;
        }
        if key.0 == "QUIT" {
            let _ = out.shutdown(Shutdown::Both);
            return;
        }
    }
}

/// The `+OK` lines of the scripted multi-line answer to `name` (without arguments).
fn listing<'a>(session: &'a Session, name: &str) -> Vec<&'a str> {
    let Some(ex) = session
        .exchanges
        .iter()
        .find(|ex| ex.name == name && ex.msg.is_none())
    else {
        return Vec::new();
    };
    ex.steps
        .iter()
        .filter_map(|s| match s {
            Step::Line(l) => Some(l.as_str()),
            _ => None,
        })
        .skip(1)
        .take_while(|l| *l != ".")
        .collect()
}

fn builtin_reply(name: &str, msg: Option<&str>, session: &Session) -> String {
    match (name, msg) {
        ("LIST" | "UIDL", Some(n)) => listing(session, name)
            .into_iter()
            .find(|l| l.split_whitespace().next() == Some(n))
            .map(|l| format!("+OK {l}"))
            .unwrap_or_else(|| "-ERR no such message".into()),
        ("STAT", _) => {
            let list = listing(session, "LIST");
            let size: u64 = list
                .iter()
                .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
                .sum();
            format!("+OK {} {size}", list.len())
        }
        ("DELE", Some(n)) => format!("+OK message {n} deleted"),
        ("RSET" | "NOOP", _) => "+OK".into(),
        ("QUIT", _) => "+OK bye".into(),
        ("RETR" | "TOP", _) => "-ERR no such message".into(),
        _ => "-ERR unknown command".into(),
    }
}

fn play(out: &mut TcpStream, steps: &[Step], shared: &Shared) -> Flow {
    for step in steps {
        let ok = match step {
            Step::Line(l) => out.write_all(format!("{l}\r\n").as_bytes()).is_ok(),
            Step::File(path) => {
                let data = std::fs::read(path)
                    .unwrap_or_else(|e| panic!("fake server: cannot read {}: {e}", path.display()));
                let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
                let cut = {
                    let mut faults = shared.faults.lock().unwrap();
                    faults
                        .iter_mut()
                        .find(|f| f.file == name && f.times > 0)
                        .map(|f| {
                            f.times -= 1;
                            (f.after_bytes.min(data.len()), f.then)
                        })
                };
                match cut {
                    None => out.write_all(&data).is_ok(),
                    Some((k, then)) => {
                        let _ = out.write_all(&data[..k]);
                        let _ = out.flush();
                        match then {
                            Cut::Close => {
                                let _ = out.shutdown(Shutdown::Both);
                            }
                            Cut::Stall => shared.stall(),
                        }
                        return Flow::Closed;
                    }
                }
            }
            Step::Pause(ms) => {
                let _ = out.flush();
                std::thread::sleep(Duration::from_millis(*ms));
                true
            }
            Step::Stall => {
                let _ = out.flush();
                shared.stall();
                return Flow::Closed;
            }
            Step::Close => {
                let _ = out.flush();
                let _ = out.shutdown(Shutdown::Both);
                return Flow::Closed;
            }
            Step::Huge(n) => {
                let chunk = vec![b'x'; 64 * 1024];
                let mut left = *n;
                let mut ok = true;
                while ok && left > 0 && !shared.stop.load(Ordering::SeqCst) {
                    let k = left.min(chunk.len());
                    ok = out.write_all(&chunk[..k]).is_ok();
                    left -= k;
                }
                ok
            }
        };
        if !ok {
            return Flow::Closed;
        }
    }
    let _ = out.flush();
    Flow::Continue
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sessions_and_annotations() {
        let s = parse(
            "# c\nSESSION 1\nS: +OK hi\nC: LIST   (optional)\nS: +OK\nS: 1 10\nS: .\n\
             C: RETR 1   (must NOT be sent)\nS: +OK\nS+ m1.pop-wire\nPAUSE 5\nSTALL\n\
             SESSION 2\nS: +OK again\nC: QUIT\nS: +OK\nCLOSE\n",
            Path::new("/d"),
        );
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].exchanges.len(), 2);
        assert_eq!(s[0].exchanges[0].name, "LIST");
        assert_eq!(s[0].exchanges[0].msg, None);
        assert_eq!(s[0].exchanges[1].msg.as_deref(), Some("1"));
        assert!(
            matches!(&s[0].exchanges[1].steps[1], Step::File(p) if p == Path::new("/d/m1.pop-wire"))
        );
        assert_eq!(builtin_reply("LIST", Some("1"), &s[0]), "+OK 1 10");
        assert_eq!(builtin_reply("STAT", None, &s[0]), "+OK 1 10");
        assert_eq!(s[1].exchanges[0].steps.len(), 2);
    }
}
