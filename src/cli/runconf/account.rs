//! The `[accounts.NAME]` tables of the config file: where a server is (`endpoint`) and how to
//! log in to it (`password_env`, `password_command`, `password_file`, `oauth2_token_command`,
//! TLS and timeouts), checked and turned into the [`ServerArgs`] a command line gives. A
//! secret written in the file (`password`, `oauth2_token`) is refused.

use std::ops::Range;
use std::path::Path;

use clap::ValueEnum;
use serde::Deserialize;
use toml::Spanned;

use super::errors::{line_of, Errs};
use super::{expand, good_name, not_full, S};
use crate::cli::{AuthArg, ServerArgs};
use crate::core::endpoint::{self, Endpoint};
use crate::core::error::Result;

/// An `[accounts.NAME]` table as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct AccountToml {
    endpoint: Spanned<String>,
    password_env: S<String>,
    password_command: S<String>,
    password_file: S<String>,
    tls_ca: S<String>,
    tls_fingerprint: S<String>,
    allow_plaintext: S<bool>,
    auth: S<String>,
    oauth2_token_command: S<String>,
    connect_timeout: S<u64>,
    timeout: S<u64>,
    /// Refused with a message (never a secret in the file).
    password: S<toml::Value>,
    /// Refused with a message.
    oauth2_token: S<toml::Value>,
}

/// The keys an account takes besides `endpoint`, each the command-line option of the same
/// name (`tls_ca` is `--tls-ca`).
pub(super) const ACCOUNT_KEYS: &[&str] = &[
    "password_env",
    "password_command",
    "password_file",
    "tls_ca",
    "tls_fingerprint",
    "allow_plaintext",
    "auth",
    "oauth2_token_command",
    "connect_timeout",
    "timeout",
];

impl AccountToml {
    /// The login keys given (other than `endpoint`), with their spans.
    fn present(&self) -> Vec<(&'static str, Range<usize>)> {
        let mut v = Vec::new();
        macro_rules! keys {
            ($($f:ident),*) => {
                $( if let Some(x) = &self.$f { v.push((stringify!($f), x.span())); } )*
            };
        }
        keys!(
            password_env,
            password_command,
            password_file,
            tls_ca,
            tls_fingerprint,
            allow_plaintext,
            auth,
            oauth2_token_command,
            connect_timeout,
            timeout
        );
        v.sort_by_key(|(_, s)| s.start);
        v
    }
}

/// An account, checked.
pub(super) struct Account {
    pub(super) endpoint: String,
    pub(super) server: ServerArgs,
    /// The keys given (but `endpoint`), their lines and values as errors show them.
    pub(super) keys: Vec<(&'static str, usize, String)>,
}

/// Checks one `[accounts.NAME]` table (`a`, with the span of its table) and turns it into the
/// server options of a command line (`home` expands `~/`). Pure.
///
/// Errors: [`Error::Usage`](crate::core::error::Error::Usage) at the key: a bad name, an
/// inline secret, an endpoint that is not a server, no password source or more than one, an
/// empty value, an unknown mechanism, a timeout out of range, a relative file name, a
/// malformed fingerprint.
pub(super) fn parse_account(
    errs: &Errs,
    name: &str,
    a: &Spanned<AccountToml>,
    home: Option<&Path>,
) -> Result<Account> {
    let span = a.span();
    let a = a.get_ref();
    let key = |k: &str| format!("accounts.{name}.{k}");
    if !good_name(name) {
        return Err(errs.at(
            &span,
            &format!("accounts.{name}"),
            "an account name is letters, digits, `-`, `_`, `.` or `@`",
        ));
    }
    for (k, v) in [("password", &a.password), ("oauth2_token", &a.oauth2_token)] {
        if let Some(v) = v {
            return Err(errs.at(
                &v.span(),
                &key(k),
                "secrets are not written in the config file: use password_env, password_command or password_file (oauth2_token_command for a token)",
            ));
        }
    }
    let ep = &a.endpoint;
    match endpoint::parse(ep.get_ref(), home) {
        Ok(Endpoint::Server(_)) => {}
        Ok(_) => {
            return Err(errs.at(
                &ep.span(),
                &key("endpoint"),
                format!(
                    "`{}` is not a server: write imaps://, imap://, pop3s:// or pop3://USER@HOST[:PORT]",
                    ep.get_ref()
                ),
            ))
        }
        Err(e) => return Err(errs.at(&ep.span(), &key("endpoint"), e)),
    }
    let sources: Vec<(&str, &Spanned<String>)> = [
        ("password_env", &a.password_env),
        ("password_command", &a.password_command),
        ("password_file", &a.password_file),
    ]
    .into_iter()
    .filter_map(|(k, v)| v.as_ref().map(|v| (k, v)))
    .collect();
    if sources.len() > 1 {
        return Err(errs.at(
            &sources[1].1.span(),
            &key(sources[1].0),
            format!(
                "give one of password_env, password_command, password_file (also {} is given)",
                sources[0].0
            ),
        ));
    }
    if sources.is_empty() && a.oauth2_token_command.is_none() {
        return Err(errs.at(
            &span,
            &format!("accounts.{name}"),
            "no password source: add password_env, password_command or password_file (or oauth2_token_command)",
        ));
    }
    for (k, v) in [
        ("password_env", &a.password_env),
        ("password_command", &a.password_command),
        ("password_file", &a.password_file),
        ("oauth2_token_command", &a.oauth2_token_command),
        ("tls_ca", &a.tls_ca),
        ("tls_fingerprint", &a.tls_fingerprint),
    ] {
        if let Some(v) = v {
            if v.get_ref().trim().is_empty() {
                return Err(errs.at(&v.span(), &key(k), "is empty"));
            }
        }
    }
    let auth = match &a.auth {
        None => AuthArg::Auto,
        Some(s) => AuthArg::from_str(s.get_ref(), true).map_err(|_| {
            errs.at(
                &s.span(),
                &key("auth"),
                format!(
                    "unknown mechanism `{}` (auto, plain, user, apop, login, xoauth2, oauthbearer)",
                    s.get_ref()
                ),
            )
        })?,
    };
    for (k, v) in [
        ("connect_timeout", &a.connect_timeout),
        ("timeout", &a.timeout),
    ] {
        if let Some(v) = v {
            if *v.get_ref() == 0 || *v.get_ref() > 86_400 {
                return Err(errs.at(&v.span(), &key(k), "seconds, from 1 to 86400"));
            }
        }
    }
    for (k, v) in [("password_file", &a.password_file), ("tls_ca", &a.tls_ca)] {
        if let Some(v) = v {
            if let Some(why) = not_full(&expand(v.get_ref(), home), v.get_ref()) {
                return Err(errs.at(&v.span(), &key(k), why));
            }
        }
    }
    let tls_fingerprint = match &a.tls_fingerprint {
        None => None,
        Some(v) => Some(
            v.get_ref()
                .parse::<crate::protocol::net::Fingerprint>()
                .map_err(|e| errs.at(&v.span(), &key("tls_fingerprint"), e))?,
        ),
    };
    let text_of = |v: &S<String>| v.as_ref().map(|s| s.get_ref().clone());
    let path_of = |v: &S<String>| v.as_ref().map(|s| expand(s.get_ref(), home));
    let shown = |k: &str| -> String {
        let v = match k {
            "password_file" => &a.password_file,
            "tls_ca" => &a.tls_ca,
            _ => return String::new(),
        };
        v.as_ref()
            .map(|s| expand(s.get_ref(), home).display().to_string())
            .unwrap_or_default()
    };
    let keys = a
        .present()
        .into_iter()
        .map(|(k, s)| (k, line_of(errs.text, s.start), shown(k)))
        .collect();
    Ok(Account {
        endpoint: ep.get_ref().clone(),
        server: ServerArgs {
            password_env: text_of(&a.password_env),
            password_command: text_of(&a.password_command),
            password_file: path_of(&a.password_file),
            tls_ca: path_of(&a.tls_ca),
            tls_fingerprint,
            allow_plaintext: a.allow_plaintext.as_ref().is_some_and(|b| *b.get_ref()),
            auth,
            oauth2_token_command: text_of(&a.oauth2_token_command),
            connect_timeout: a.connect_timeout.as_ref().map_or(30, |v| *v.get_ref()),
            timeout: a.timeout.as_ref().map_or(120, |v| *v.get_ref()),
        },
        keys,
    })
}
