//! Where a password comes from. Never from argv (it would show in `ps` and shell history):
//! an environment variable, the first line of a command's output, a file that only its owner
//! can read, or a no-echo prompt when stdin is a terminal.

use std::io::IsTerminal;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use crate::error::{Error, Result};

/// A configured password source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PasswordSource {
    /// `--password-env VAR`.
    Env(String),
    /// `--password-command CMD`, run with `sh -c`; the first line of its stdout.
    Command(String),
    /// `--password-file FILE`: the first line; refused when group or others can read it.
    File(PathBuf),
    /// A no-echo prompt on the terminal (only when stdin is a TTY).
    Prompt,
}

/// A password held in memory; its Debug output is redacted so it cannot leak into logs.
#[derive(Clone)]
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

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or("")
}

impl PasswordSource {
    /// Reads the password for `account` (named in errors).
    ///
    /// Errors: [`Error::Usage`] for a missing variable, a failing command, an unsafe or
    /// unreadable file, an empty password, or no source when stdin is not a terminal.
    pub fn read(&self, account: &str) -> Result<Password> {
        let pw = match self {
            PasswordSource::Env(var) => std::env::var(var).map_err(|_| {
                Error::Usage(format!(
                    "{account}: environment variable `{var}` (from --password-env) is not set"
                ))
            })?,
            PasswordSource::Command(cmd) => {
                let out = Command::new("sh")
                    .arg("-c")
                    .arg(cmd)
                    .stdin(Stdio::inherit())
                    .stderr(Stdio::inherit())
                    .output()
                    .map_err(|e| {
                        Error::Usage(format!("{account}: cannot run --password-command: {e}"))
                    })?;
                if !out.status.success() {
                    return Err(Error::Usage(format!(
                        "{account}: --password-command failed ({})",
                        out.status
                    )));
                }
                first_line(&String::from_utf8_lossy(&out.stdout)).to_string()
            }
            PasswordSource::File(path) => {
                let meta = std::fs::metadata(path).map_err(|e| {
                    Error::Usage(format!(
                        "{account}: cannot read password file {}: {e}",
                        path.display()
                    ))
                })?;
                let mode = meta.permissions().mode() & 0o777;
                if mode & 0o077 != 0 {
                    return Err(Error::Usage(format!(
                        "{account}: password file {} can be read by group or others (mode {mode:04o}); run `chmod 600 {}`",
                        path.display(),
                        path.display()
                    )));
                }
                let text = std::fs::read_to_string(path).map_err(|e| {
                    Error::Usage(format!(
                        "{account}: cannot read password file {}: {e}",
                        path.display()
                    ))
                })?;
                first_line(&text).to_string()
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
