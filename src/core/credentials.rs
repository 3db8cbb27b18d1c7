//! Where a password comes from. Never from argv (it would show in `ps` and shell history):
//! an environment variable, the first line of a command's output, a file that only its owner
//! can read, or a no-echo prompt when stdin is a terminal. A command gets
//! [`COMMAND_TIME_LIMIT`] to print it.

use std::io::{IsTerminal, Read};
use std::os::fd::AsRawFd;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::core::error::{Error, Result};

/// Authentication mechanism choices (`--auth`; the doc comments are its `--help` text).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Default)]
pub enum AuthArg {
    /// POP3: SASL PLAIN when offered, else USER/PASS (APOP on a plaintext session). IMAP:
    /// AUTHENTICATE PLAIN when offered, else LOGIN; XOAUTH2 with --oauth2-token-command.
    #[default]
    Auto,
    /// SASL PLAIN (RFC 5034 for POP3).
    Plain,
    /// USER and PASS (RFC 1939 7).
    User,
    /// APOP (RFC 1939 7): the password itself is not sent (POP3 only).
    Apop,
    /// IMAP LOGIN (RFC 3501 6.2.3).
    Login,
    /// SASL XOAUTH2 with a token from --oauth2-token-command (Gmail, Microsoft 365).
    Xoauth2,
    /// SASL OAUTHBEARER (RFC 7628) with a token from --oauth2-token-command.
    Oauthbearer,
}

/// A configured password source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PasswordSource {
    /// `--password-env VAR`.
    Env(String),
    /// `--password-command CMD`, run with `sh -c`; the first line of its stdout.
    Command(String),
    /// `--oauth2-token-command CMD`: as `Command`, named so in errors.
    TokenCommand(String),
    /// `--password-file FILE`: the first line; refused when group or others can read it.
    File(PathBuf),
    /// A no-echo prompt on the terminal (only when stdin is a TTY).
    Prompt,
    /// A secret read earlier in this run (so that one run asks once, whatever the number of
    /// connections or steps that need it).
    Known(Password),
}

/// A password held in memory; its Debug output is redacted so it cannot leak into logs.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    /// The secret itself, for the login command only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

/// How long `--password-command` (or `--oauth2-token-command`) may run before it is killed: a
/// command waiting for a keyring that never unlocks must not hold the archive's lock forever.
pub const COMMAND_TIME_LIMIT: Duration = Duration::from_secs(60);

/// The first line of a password source's bytes, without its line end. `what` names the source
/// in the error (`password file /x`, `the output of --password-command`).
fn first_line(bytes: &[u8], account: &str, what: &str) -> Result<String> {
    let line = bytes.split(|b| *b == b'\n').next().unwrap_or_default();
    String::from_utf8(line.to_vec()).map_err(|_| {
        Error::Usage(format!(
            "{account}: the first line of {what} is not valid UTF-8 text"
        ))
    })
}

impl PasswordSource {
    /// Reads the password for `account` (named in errors).
    ///
    /// Errors: [`Error::Usage`] for a missing variable, a failing, silent or hanging command
    /// (killed after [`COMMAND_TIME_LIMIT`]), an unsafe or unreadable file, a directory, a
    /// first line that is not UTF-8, an empty password, or no source when stdin is not a
    /// terminal.
    pub fn read(&self, account: &str) -> Result<Password> {
        let pw = match self {
            PasswordSource::Known(p) => return Ok(p.clone()),
            PasswordSource::Env(var) => std::env::var(var).map_err(|_| {
                Error::Usage(format!(
                    "{account}: environment variable `{var}` (from --password-env) is not set"
                ))
            })?,
            PasswordSource::Command(cmd) => {
                command_secret(cmd, "--password-command", account, COMMAND_TIME_LIMIT)?
            }
            PasswordSource::TokenCommand(cmd) => {
                command_secret(cmd, "--oauth2-token-command", account, COMMAND_TIME_LIMIT)?
            }
            PasswordSource::File(path) => {
                let meta = std::fs::metadata(path).map_err(|e| {
                    Error::Usage(format!(
                        "{account}: cannot read password file {}: {e}",
                        path.display()
                    ))
                })?;
                if meta.is_dir() {
                    return Err(Error::Usage(format!(
                        "{account}: password file {} is a directory, not a file",
                        path.display()
                    )));
                }
                let mode = meta.permissions().mode() & 0o777;
                if mode & 0o077 != 0 {
                    return Err(Error::Usage(format!(
                        "{account}: password file {} can be read by group or others (mode {mode:04o}); run `chmod 600 {}`",
                        path.display(),
                        path.display()
                    )));
                }
                let bytes = std::fs::read(path).map_err(|e| {
                    Error::Usage(format!(
                        "{account}: cannot read password file {}: {e}",
                        path.display()
                    ))
                })?;
                first_line(
                    &bytes,
                    account,
                    &format!("password file {}", path.display()),
                )?
            }
            PasswordSource::Prompt => {
                if !std::io::stdin().is_terminal() {
                    return Err(Error::Usage(format!(
                        "{account}: no password given: use --password-env VAR, --password-command CMD or --password-file FILE (stdin is not a terminal, so mailkeep cannot prompt)"
                    )));
                }
                rpassword::prompt_password(format!("Password for {account}: ")).map_err(|e| {
                    Error::Usage(format!("{account}: cannot read the password: {e}"))
                })?
            }
        };
        let pw = pw.trim_end_matches(['\r', '\n']).to_string();
        if pw.is_empty() {
            return Err(Error::Usage(format!("{account}: the password is empty")));
        }
        Ok(Password(pw))
    }
}

/// The first line of what `cmd` (run with `sh -c`, given as `flag`) prints, within `limit`.
fn command_secret(cmd: &str, flag: &str, account: &str, limit: Duration) -> Result<String> {
    let out = run_command(cmd, limit).map_err(|e| {
        Error::Usage(match e {
            CommandError::Spawn(e) => format!("{account}: cannot run {flag}: {e}"),
            CommandError::Io(e) => format!("{account}: cannot read the output of {flag}: {e}"),
            CommandError::Failed(st) => format!("{account}: {flag} failed ({st})"),
            CommandError::TimedOut => format!(
                "{account}: {flag} did not finish within {} s (it was stopped)",
                limit.as_secs()
            ),
        })
    })?;
    if out.is_empty() {
        return Err(Error::Usage(format!("{account}: {flag} printed nothing")));
    }
    first_line(&out, account, &format!("the output of {flag}"))
}

/// Why [`run_command`] gave no output.
#[derive(Debug)]
enum CommandError {
    Spawn(std::io::Error),
    Io(std::io::Error),
    Failed(ExitStatus),
    TimedOut,
}

/// Runs `cmd` with `sh -c` (stdin and stderr inherited, so it can prompt) and returns its
/// stdout once it has exited successfully and closed stdout, or kills it after `limit`.
///
/// Unless mailkeep runs in the foreground of a terminal, the command gets its own process
/// group, so that on timeout everything it started (`sh -c 'sleep 99'`, a background helper
/// holding the pipe) is killed with it. In the foreground of a terminal it stays in ours: a
/// background group would be stopped (SIGTTIN) as soon as it read the terminal to prompt, and
/// Ctrl-C reaches it there.
fn run_command(cmd: &str, limit: Duration) -> Result<Vec<u8>, CommandError> {
    let deadline = Instant::now() + limit;
    let mut command = Command::new("sh");
    command
        .arg("-c")
        .arg(cmd)
        .stdin(Stdio::inherit())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    let own_group = !in_terminal_foreground();
    if own_group {
        command.process_group(0);
    }
    let mut child = command.spawn().map_err(CommandError::Spawn)?;
    let kill = |child: &mut std::process::Child| {
        if own_group {
            // SAFETY: a signal to the process group we created (its id is the child's pid,
            // which cannot be reused while the group has members).
            unsafe { libc::killpg(child.id() as libc::pid_t, libc::SIGKILL) };
        }
        let _ = child.kill();
        let _ = child.wait();
    };
    let mut stdout = child.stdout.take().expect("stdout is piped");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = tx.send(stdout.read_to_end(&mut buf).map(|_| buf));
    });
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() >= deadline => {
                kill(&mut child);
                return Err(CommandError::TimedOut);
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => {
                kill(&mut child);
                return Err(CommandError::Io(e));
            }
        }
    };
    if !status.success() {
        return Err(CommandError::Failed(status));
    }
    // The command has exited, but something it started in the background may still hold
    // its stdout open.
    match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
        Ok(out) => out.map_err(CommandError::Io),
        Err(_) => {
            if own_group {
                // SAFETY: as above; the group lives on while that background process does.
                unsafe { libc::killpg(child.id() as libc::pid_t, libc::SIGKILL) };
            }
            Err(CommandError::TimedOut)
        }
    }
}

/// Whether this process is in the foreground process group of its controlling terminal.
fn in_terminal_foreground() -> bool {
    let Ok(tty) = std::fs::File::open("/dev/tty") else {
        return false;
    };
    // SAFETY: two queries about a descriptor we own and about this process.
    unsafe { libc::tcgetpgrp(tty.as_raw_fd()) == libc::getpgrp() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn file_mode_is_checked() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("pw");
        std::fs::File::create(&p)
            .unwrap()
            .write_all(b"s3cret\nignored\n")
            .unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = PasswordSource::File(p.clone()).read("a@h:1").unwrap_err();
        assert!(err.to_string().contains("mode 0644"), "{err}");
        assert!(err.to_string().contains("chmod 600"), "{err}");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(
            PasswordSource::File(p).read("a@h:1").unwrap().expose(),
            "s3cret"
        );
    }

    #[test]
    fn file_that_is_not_a_password_file() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("pw.d");
        std::fs::create_dir(&sub).unwrap();
        std::fs::set_permissions(&sub, std::fs::Permissions::from_mode(0o755)).unwrap();
        let latin1 = dir.path().join("latin1");
        std::fs::write(&latin1, b"caf\xe9\n").unwrap();
        std::fs::set_permissions(&latin1, std::fs::Permissions::from_mode(0o600)).unwrap();
        let missing = dir.path().join("missing");
        let cases = [
            (&sub, "is a directory, not a file"),
            (&latin1, "is not valid UTF-8"),
            (&missing, "cannot read password file"),
        ];
        for (path, want) in cases {
            let err = PasswordSource::File(path.clone())
                .read("a@h:1")
                .unwrap_err();
            assert_eq!(err.exit(), crate::core::error::Exit::Usage, "{err}");
            let err = err.to_string();
            assert!(err.contains(want), "{}: {err}", path.display());
            assert!(err.contains(&path.display().to_string()), "{err}");
            assert!(!err.contains("chmod"), "{err}");
        }
    }

    #[test]
    fn command_errors() {
        let cases = [
            ("true", "--password-command printed nothing"),
            ("printf ''", "--password-command printed nothing"),
            ("echo", "the password is empty"),
            ("exit 3", "--password-command failed"),
            ("printf 'caf\\351\\n'", "not valid UTF-8"),
        ];
        for (cmd, want) in cases {
            let err = PasswordSource::Command(cmd.into())
                .read("a@h:1")
                .unwrap_err();
            assert_eq!(err.exit(), crate::core::error::Exit::Usage, "{cmd}: {err}");
            assert!(err.to_string().contains(want), "{cmd}: {err}");
        }
        let err = PasswordSource::TokenCommand("true".into())
            .read("a@h:1")
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("--oauth2-token-command printed nothing"),
            "{err}"
        );
    }

    /// A command that hangs (a keyring that never unlocks) is killed after the time limit,
    /// with whatever it started: `sleep` in a shell that does not `exec` it, and a background
    /// process that keeps the output pipe open after the shell has exited.
    #[test]
    fn command_that_hangs_is_stopped() {
        for cmd in ["sleep 30; echo late", "sleep 30 & echo early"] {
            let start = Instant::now();
            let err = command_secret(cmd, "--password-command", "a@h:1", Duration::from_secs(1))
                .unwrap_err();
            assert!(start.elapsed() < Duration::from_secs(10), "{cmd}");
            assert_eq!(
                err.to_string(),
                "a@h:1: --password-command did not finish within 1 s (it was stopped)",
                "{cmd}"
            );
        }
        assert_eq!(COMMAND_TIME_LIMIT, Duration::from_secs(60));
    }

    #[test]
    fn command_and_env() {
        let pw = PasswordSource::Command("printf 'pa ss\\nsecond'".into())
            .read("x")
            .unwrap();
        assert_eq!(pw.expose(), "pa ss");
        assert_eq!(format!("{pw:?}"), "Password(<redacted>)");
        assert!(PasswordSource::Command("exit 3".into()).read("x").is_err());
        let err = PasswordSource::Env("MAILKEEP_SURELY_UNSET_VAR".into())
            .read("x")
            .unwrap_err();
        assert!(err.to_string().contains("MAILKEEP_SURELY_UNSET_VAR"));
    }
}
