//! Logging in to an IMAP account and naming what went wrong, for every flow that talks IMAP
//! (backup, restore, migrate, prune, verify `--against`, `list`/`quota` of a server): the
//! secret ([`read_secret`]), the session ([`connect`]), the ledger identity of a message
//! ([`imap_identity`]), and the mapping of [`ImapError`]s to [`Error`]s graded by
//! [`fault::classify`] ([`imap_error`], [`wider_than_mailbox`]).
//!
//! May use: `core`, `protocol`, `engine::plans`.

use crate::core::credentials::{AuthArg, Password};
use crate::core::error::{Error, Result};
use crate::core::fault::{self, FaultClass};
use crate::core::message::MailboxName;
use crate::engine::plans::ServerPlan;
use crate::protocol::imap::{ImapAuth, ImapClient, ImapError, ImapOptions};
use crate::protocol::net::{Timeouts, TlsOptions};

/// The identity of an IMAP message in the ledger (RFC 3501 2.3.1.1: a UID is unique only
/// together with the mailbox and its UIDVALIDITY).
pub fn imap_identity(
    ledger_key: &str,
    mailbox: &MailboxName,
    uidvalidity: u32,
    uid: u32,
) -> String {
    format!("{ledger_key} MAILBOX {mailbox} UIDVALIDITY {uidvalidity} UID {uid}")
}

/// Maps an IMAP error to a user-facing error about `account`, with `context`.
pub fn imap_error(account: &str, context: &str, e: ImapError) -> Error {
    let ctx = if context.is_empty() {
        String::new()
    } else {
        format!("{context}: ")
    };
    match e {
        ImapError::Net(e) => Error::Network {
            account: account.into(),
            detail: format!("{ctx}{e}"),
        },
        ImapError::Io(e) => Error::Network {
            account: account.into(),
            detail: format!("{ctx}{}", crate::protocol::net::io_reason(&e)),
        },
        ImapError::Bye(t) => {
            let r = fault::classify(fault::Status::Bye, fault::Command::Other, &t);
            let later = match r.class {
                FaultClass::BandwidthExhausted => format!(
                    ": {}; no new login to this account in this run ({})",
                    r.class.describe(),
                    fault::retry_after_phrase(r.retry_after.unwrap_or(fault::BANDWIDTH_PAUSE))
                ),
                _ => String::new(),
            };
            Error::Network {
                account: account.into(),
                detail: format!("{ctx}the server closed the session: {t}{later}"),
            }
        }
        ImapError::Auth(t) => Error::Auth {
            account: account.into(),
            detail: t,
        },
        ImapError::NoTls(t) => Error::PlaintextRefused {
            account: account.into(),
            detail: t,
        },
        ImapError::No { command, text } => refused(account, &ctx, "NO", command, text),
        ImapError::Bad { command, text } => refused(account, &ctx, "BAD", command, text),
        ImapError::Protocol(t) => Error::Protocol {
            account: account.into(),
            detail: format!("{ctx}{t}"),
        },
        e @ ImapError::Unusable { .. } => Error::Protocol {
            account: account.into(),
            detail: format!("{ctx}{e}"),
        },
        e @ ImapError::TooLarge { .. } => Error::Protocol {
            account: account.into(),
            detail: format!("{ctx}{e}"),
        },
    }
}

/// What an IMAP command string is about, for [`fault::classify`]: LOGIN/AUTHENTICATE,
/// APPEND, a mailbox command (EXAMINE, SELECT, STATUS, CREATE), the selected mailbox's
/// messages (FETCH, SEARCH, STORE, with or without UID), or other.
pub fn command_kind(command: &str) -> fault::Command {
    let verb = command
        .split_ascii_whitespace()
        .next()
        .unwrap_or("")
        .to_ascii_uppercase();
    match verb.as_str() {
        "LOGIN" | "AUTHENTICATE" => fault::Command::Login,
        "APPEND" => fault::Command::Append,
        "EXAMINE" | "SELECT" | "STATUS" | "CREATE" => fault::Command::Mailbox,
        // The messages of the selected mailbox (a listing `UID FETCH 1:*` included).
        "FETCH" | "UID" | "SEARCH" | "STORE" => fault::Command::Fetch,
        _ => fault::Command::Other,
    }
}

/// A `NO`/`BAD` (`status`) to `command` as an error, graded by [`fault::classify`]: a server
/// that asks to come back later (throttling, `[UNAVAILABLE]`, `[INUSE]`, `[LIMIT]` at login,
/// bandwidth used up) is a network error (exit 4) that `mailkeep run` retries or defers; the
/// credentials refused are exit 3; anything else is the server's refusal, worded with its
/// own text (exit 7 when it ends the run; callers that grade by mailbox or message keep going).
fn refused(account: &str, ctx: &str, status: &str, command: String, text: String) -> Error {
    let st = if status == "BAD" {
        fault::Status::Bad
    } else {
        fault::Status::No
    };
    let r = fault::classify(st, command_kind(&command), &text);
    let quoted = format!("`{status} {text}` to {command}");
    match r.class {
        FaultClass::Throttled
        | FaultClass::ServerUnavailable
        | FaultClass::InUse
        | FaultClass::TooManyConnections => Error::Network {
            account: account.into(),
            detail: format!("{ctx}{} ({quoted}); try again later", r.class.describe()),
        },
        FaultClass::BandwidthExhausted | FaultClass::LoginDelay => Error::Network {
            account: account.into(),
            detail: format!(
                "{ctx}{} ({quoted}); no new login to this account in this run ({})",
                r.class.describe(),
                fault::retry_after_phrase(r.retry_after.unwrap_or(fault::BANDWIDTH_PAUSE))
            ),
        },
        FaultClass::AuthRefused
        | FaultClass::AuthorizationRefused
        | FaultClass::CredentialsExpired
        | FaultClass::AccountUnavailable
            if st == fault::Status::No =>
        {
            Error::Auth {
                account: account.into(),
                detail: text,
            }
        }
        FaultClass::ProtocolBroken => Error::Protocol {
            account: account.into(),
            detail: format!("{ctx}server answered {quoted}"),
        },
        // A plain refusal (`NO [SERVERBUG]`, `NO [NOPERM]`, `BAD [CANNOT]` to a mailbox's
        // listing): the server's words, not "protocol error".
        _ => Error::Refused {
            account: account.into(),
            detail: format!("{ctx}refused by the server: {quoted}"),
        },
    }
}

/// True when a `NO`/`BAD` (with `text`) to a command about one mailbox says more than that
/// the mailbox failed: the server is throttling, unavailable, out of connections, or the
/// account's allowance is used up ([`fault::Scope::Connection`] or wider).
pub fn wider_than_mailbox(e: &ImapError, text: &str) -> bool {
    let (st, command) = match e {
        ImapError::Bad { command, .. } => (fault::Status::Bad, Some(command)),
        ImapError::No { command, .. } => (fault::Status::No, Some(command)),
        _ => (fault::Status::No, None),
    };
    // Graded as what it answered: a FETCH of the mailbox's messages, else a command about
    // the mailbox.
    let kind = match command.map(|c| command_kind(c)) {
        Some(k @ fault::Command::Fetch) => k,
        _ => fault::Command::Mailbox,
    };
    fault::classify(st, kind, text).class.scope() > fault::Scope::Mailbox
}

/// True for a `NO`/`BAD` to a body FETCH that is about the messages asked for, not the
/// session or the account ([`wider_than_mailbox`]).
pub fn refusal_of_messages(e: &ImapError) -> bool {
    match e {
        ImapError::No { text, .. } | ImapError::Bad { text, .. } => !wider_than_mailbox(e, text),
        _ => false,
    }
}

/// Reads the secret for an IMAP login: the OAuth2 access token from
/// `--oauth2-token-command`, else the password.
pub fn read_secret(plan: &ServerPlan) -> Result<Password> {
    let account = plan.spec.account();
    match &plan.oauth2_token {
        Some(src) => src.read(&account),
        None => plan.password.read(&account),
    }
}

/// Connects and logs in to an IMAP server as planned, with `secret` from [`read_secret`].
pub fn connect(plan: &ServerPlan, secret: &Password) -> Result<ImapClient> {
    let account = plan.spec.account();
    let auth = match plan.auth {
        AuthArg::Auto => ImapAuth::Auto,
        AuthArg::Plain => ImapAuth::Plain,
        AuthArg::Login | AuthArg::User => ImapAuth::Login,
        AuthArg::Xoauth2 => ImapAuth::XOAuth2,
        AuthArg::Oauthbearer => ImapAuth::OAuthBearer,
        AuthArg::Apop => ImapAuth::Auto,
    };
    let opts = ImapOptions {
        allow_plaintext: plan.allow_plaintext,
        auth,
        tls: TlsOptions {
            ca_file: plan.tls_ca.clone(),
            fingerprint: plan.tls_fingerprint.clone(),
        },
        timeouts: Timeouts {
            connect: plan.connect_timeout,
            io: plan.io_timeout,
        },
    };
    let mut client =
        ImapClient::connect(&plan.spec, &opts).map_err(|e| imap_error(&account, "", e))?;
    client
        .login(&plan.spec.user, secret.expose())
        .map_err(|e| imap_error(&account, "", e))?;
    Ok(client)
}
