//! POP3 backup: list, plan (a pure function of the listing and the ledger), transfer into the
//! sink, record, and only then delete on the server.
//!
//! Order is important (DESIGN.md invariant 1): a batch of messages is staged, placed and made
//! durable by the sink, then recorded in one ledger commit; deletions (`DELE` + `QUIT`, RFC
//! 1939 6) are sent only for recorded messages and only when nothing in the run failed, and
//! they are recorded only after the server confirmed them.

use std::collections::{HashMap, HashSet};
use std::io::Read;

use sha2::{Digest, Sha256};

use super::now_secs;
use super::plan;
use crate::archive::ledger::Record;
use crate::archive::staging::fsync_pool::{FsyncPool, Pending};
use crate::archive::staging::placer;
use crate::archive::writer::{PlaceMeta, Sink, StagedMessage};
use crate::archive::{self, OpenArchive};
use crate::core::credentials::Password;
use crate::core::error::{Error, Result};
use crate::core::fault::{self, FaultClass};
use crate::core::headers;
use crate::core::message::{Flags, MailboxName};
use crate::engine::plans::{BackupPlan, DeletePolicy, ServerPlan};
use crate::engine::progress::Progress;
use crate::engine::report::{Failure, RunReport};
use crate::protocol::net::{Timeouts, TlsOptions};
use crate::protocol::pop3::{AuthMethod, Pop3Client, Pop3Error, Pop3Options, RespCode};

/// A batch is committed to the ledger after this many messages...
const BATCH_MESSAGES: usize = 200;
/// ...or this many bytes (as the server reports them), whichever comes first.
const BATCH_BYTES: u64 = 32 * 1024 * 1024;

/// One message of a POP3 listing: its number in this session (RFC 1939 3: valid only for the
/// session), its stable identity in the ledger and its size in octets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub number: u32,
    /// UIDL (RFC 1939 7), or a content key when the server has no UIDL.
    pub uidl: String,
    pub identity: String,
    pub octets: u64,
    /// Set when the message could not be named: its content was needed (a repeated UIDL, no
    /// UIDL) and the server refused it (`-ERR` to RETR: its words) or it is over the size
    /// limit. Such a message is counted failed and never deleted.
    pub refused: Option<String>,
    /// The SHA-256 of the message's normalised bytes (lower-case hex) when this session read
    /// it while listing (to tell it apart by content): the delete step compares it with the
    /// record instead of reading the message again.
    pub sha256: Option<String>,
}

/// What a run must do with a listing.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Pop3Plan {
    /// Messages not in the ledger (or whose archived copy is missing), in server order.
    pub fetch: Vec<Listed>,
    /// Messages already recorded.
    pub already: u64,
    /// Messages with the same identity as an earlier one of the listing: one message listed
    /// twice with the same bytes (identities are told apart by content when a UIDL repeats,
    /// see [`list`]). Archived once; each counts as already archived once its first is.
    pub same_bytes: Vec<Listed>,
    /// Messages that could not be named ([`Listed::refused`]): failed this run.
    pub refused: Vec<Listed>,
    /// UIDLs the ledger knows with another size: the server reused them for other messages
    /// (RFC 1939 7 says it must not); those are fetched as new messages.
    pub reused: Vec<String>,
}

/// [`Listed::refused`] of a message LIST shows and the UIDL listing leaves out.
const NO_UIDL_IN_LISTING: &str = "has no UIDL in the server's UIDL listing";

/// The identity of a POP3 message in the ledger: `<ledger key> UIDL <uidl>`.
pub fn pop3_identity(ledger_key: &str, uidl: &str) -> String {
    format!("{ledger_key} UIDL {uidl}")
}

/// Decides what to fetch. Pure.
///
/// `recorded` maps each recorded identity to the size the server reported for it. A listed
/// message is already archived when its identity is recorded with the same size (or no size)
/// and `present` does not say its archived copy is gone. When the server reuses a UIDL for a
/// message of another size, the message gets the identity `<identity> SIZE <octets>`, so it
/// is fetched and never confused with (nor deleted in place of) the archived one. Every
/// listed message lands in exactly one of `fetch`, `already`, `same_bytes`, `refused`.
pub fn plan_pop3(
    listing: &[Listed],
    recorded: &HashMap<String, Option<u64>>,
    present: &dyn Fn(&str) -> bool,
) -> Pop3Plan {
    let mut plan = Pop3Plan::default();
    let mut seen = HashSet::new();
    for m in listing {
        if m.refused.is_some() {
            plan.refused.push(m.clone());
            continue;
        }
        if !seen.insert(m.identity.as_str()) {
            plan.same_bytes.push(m.clone());
            continue;
        }
        let mut m = m.clone();
        if let Some(Some(size)) = recorded.get(&m.identity) {
            if *size != m.octets && m.octets != 0 {
                plan.reused.push(m.uidl.clone());
                m.identity = format!("{} SIZE {}", m.identity, m.octets);
            }
        }
        if recorded.contains_key(&m.identity) && present(&m.identity) {
            plan.already += 1;
        } else {
            plan.fetch.push(m);
        }
    }
    plan
}

/// Decides what to delete from the server: listed messages that are recorded and were
/// recorded at least `min_age_days` days before `now` (seconds since the epoch). Pure.
pub fn plan_deletions(
    listing: &[Listed],
    stored: &HashMap<String, (i64, Option<i64>)>,
    policy: DeletePolicy,
    now: i64,
) -> Vec<Listed> {
    let DeletePolicy::Archived { min_age_days } = policy else {
        return Vec::new();
    };
    let cutoff = now - i64::from(min_age_days) * 86_400;
    // Two listed messages share an identity only when their bytes are the same (see
    // [`list`]); each is deleted only after its own bytes were compared (`backup`).
    listing
        .iter()
        .filter(|m| m.refused.is_none())
        .filter(|m| matches!(stored.get(&m.identity), Some((at, _)) if *at <= cutoff))
        .cloned()
        .collect()
}

/// Maps a POP3 error to a user-facing error about `account`, with `context` (which message).
pub(crate) fn pop3_error(account: &str, context: &str, e: Pop3Error) -> Error {
    pop3_error_with(account, context, e, None)
}

/// [`pop3_error`], with the server's CAPA `LOGIN-DELAY` (RFC 2449 6.8) as the window a
/// `[LOGIN-DELAY]` refusal names (`retry after N s`, read by `mailkeep run`).
pub(crate) fn pop3_error_with(
    account: &str,
    context: &str,
    e: Pop3Error,
    login_delay: Option<std::time::Duration>,
) -> Error {
    let ctx = if context.is_empty() {
        String::new()
    } else {
        format!("{context}: ")
    };
    match e {
        Pop3Error::Net(e) => Error::Network {
            account: account.into(),
            detail: format!("{ctx}{e}"),
        },
        Pop3Error::Io(e) => Error::Network {
            account: account.into(),
            detail: format!("{ctx}{}", crate::protocol::net::io_reason(&e)),
        },
        Pop3Error::Auth(t) => Error::Auth {
            account: account.into(),
            detail: t,
        },
        e @ Pop3Error::TooLarge { .. } => Error::Protocol {
            account: account.into(),
            detail: format!("{ctx}{e}"),
        },
        Pop3Error::NoTls(t) => Error::PlaintextRefused {
            account: account.into(),
            detail: t,
        },
        // RFC 2449 8 / RFC 3206: the server says why; not a broken protocol.
        Pop3Error::Err { command, text } if RespCode::of(&text).is_some() => refused(
            account,
            &ctx,
            &command,
            &text,
            login_delay.map(|d| d.as_secs()),
        ),
        // Without a code: what the text says (old daemons' "Mailbox locked", providers'
        // limits), by crate::core::fault::classify (docs/exit-codes.md: exit 4 when it passes).
        Pop3Error::Err { command, text } => {
            let kind = match command.split_ascii_whitespace().next() {
                Some("USER" | "PASS" | "APOP" | "AUTH") => fault::Command::Login,
                Some("RETR" | "TOP") => fault::Command::Fetch,
                _ => fault::Command::Other,
            };
            let r = fault::classify(fault::Status::Err, kind, &text).with_login_delay(login_delay);
            let quoted = format!("`-ERR {text}` to {command}");
            match r.class {
                FaultClass::ServerUnavailable
                | FaultClass::InUse
                | FaultClass::TooManyConnections => Error::Network {
                    account: account.into(),
                    detail: format!(
                        "{ctx}the server is temporarily unavailable ({quoted}); try again later"
                    ),
                },
                FaultClass::LoginDelay => Error::Network {
                    account: account.into(),
                    detail: format!(
                        "{ctx}{} ({quoted}, RFC 2449 8.1.2); {}",
                        r.class.describe(),
                        fault::retry_after_phrase(
                            r.retry_after.unwrap_or(fault::DEFAULT_LOGIN_DELAY)
                        )
                    ),
                },
                FaultClass::BandwidthExhausted => Error::Network {
                    account: account.into(),
                    detail: format!(
                        "{ctx}{} ({quoted}); no new login to this account in this run ({})",
                        r.class.describe(),
                        fault::retry_after_phrase(r.retry_after.unwrap_or(fault::BANDWIDTH_PAUSE))
                    ),
                },
                FaultClass::AccountUnavailable if kind == fault::Command::Login => Error::Auth {
                    account: account.into(),
                    detail: format!("{} ({quoted})", r.class.describe()),
                },
                _ => Error::Protocol {
                    account: account.into(),
                    detail: format!("{ctx}server answered {quoted}"),
                },
            }
        }
        Pop3Error::Protocol(t) => Error::Protocol {
            account: account.into(),
            detail: format!("{ctx}{t}"),
        },
    }
}

/// The error for a `-ERR` carrying a response code (RFC 2449 8, RFC 3206) to `command`,
/// quoting the server; `login_delay` is the CAPA `LOGIN-DELAY` value in seconds, if any.
fn refused(account: &str, ctx: &str, command: &str, text: &str, login_delay: Option<u64>) -> Error {
    let said = format!("`-ERR {text}` to {command}");
    let (detail, retry_after) = match RespCode::of(text) {
        Some(RespCode::InUse) => (
            format!("{ctx}the server is temporarily unavailable: the maildrop is in use by another session ({said}, RFC 2449 8.1.1); try again later"),
            None,
        ),
        Some(RespCode::LoginDelay) => match login_delay {
            Some(secs) => (
                format!("{ctx}the server is temporarily unavailable: it allows one login every {secs} s ({said}, RFC 2449 8.1.2); {}", fault::retry_after_phrase(std::time::Duration::from_secs(secs))),
                Some(std::time::Duration::from_secs(secs)),
            ),
            None => (
                format!("{ctx}the server is temporarily unavailable: logged in too soon after the last login ({said}, RFC 2449 8.1.2); try again later"),
                None,
            ),
        },
        Some(RespCode::SysTemp) => (
            format!("{ctx}the server is temporarily unavailable: a temporary problem on the server ({said}, RFC 3206 4); try again later"),
            None,
        ),
        Some(RespCode::SysPerm) => (
            format!("{ctx}the server refuses this account until its administrator acts ({said}, RFC 3206 4)"),
            None,
        ),
        Some(RespCode::Auth) | None => {
            return Error::Auth {
                account: account.into(),
                detail: format!("{ctx}{text}"),
            }
        }
    };
    Error::ServerRefused {
        account: account.into(),
        detail,
        temporary: RespCode::of(text).is_some_and(RespCode::is_temporary),
        retry_after,
    }
}

/// The error of one message's transfer: the server's, or the archive's.
enum FetchError {
    Pop3(Pop3Error),
    Sink(Error),
}

impl From<Pop3Error> for FetchError {
    fn from(e: Pop3Error) -> Self {
        FetchError::Pop3(e)
    }
}

pub(crate) fn connect(plan: &ServerPlan, password: &Password) -> Result<(Pop3Client, String)> {
    let account = plan.spec.account();
    let opts = Pop3Options {
        allow_plaintext: plan.allow_plaintext,
        auth: match plan.auth {
            // IMAP-only mechanisms are refused by config before this point.
            crate::core::credentials::AuthArg::Auto
            | crate::core::credentials::AuthArg::Login
            | crate::core::credentials::AuthArg::Xoauth2
            | crate::core::credentials::AuthArg::Oauthbearer => AuthMethod::Auto,
            crate::core::credentials::AuthArg::Plain => AuthMethod::Plain,
            crate::core::credentials::AuthArg::User => AuthMethod::User,
            crate::core::credentials::AuthArg::Apop => AuthMethod::Apop,
        },
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
        Pop3Client::connect(&plan.spec, &opts).map_err(|e| pop3_error(&account, "", e))?;
    if let Err(e) = client.login(&plan.spec.user, password.expose(), opts.auth) {
        // LOGIN-DELAY's wait is the CAPA value the server announced before login.
        let delay = fault::login_delay_from_capa(&client.capabilities().lines);
        return Err(pop3_error_with(&account, "", e, delay));
    }
    Ok((client, account))
}

/// Lists the maildrop and names each message (DESIGN.md invariant 4).
///
/// With UIDL (RFC 1939 7) a message is `<key> UIDL <uidl>`. Without (the server answers `-ERR`
/// to UIDL and CAPA does not list it), `<key> CONTENT content-<hash>`: a SHA-256 of the header
/// block (`TOP n 0`, or the head of `RETR n` when TOP is refused) and the size. A base that is
/// repeated in this listing, or that has content twins in the ledger, is told apart by the
/// SHA-256 of the whole message ([`plan::pop3_content_needed`],
/// [`plan::pop3_identity_by_content`]): those messages are downloaded (`RETR`) once more per
/// run to hash them. `recorded` maps this account's recorded identities to their SHA-256.
///
/// A message whose content was needed but that the server refused (`-ERR` to RETR) or that is
/// over the size limit is listed with `refused` set and its base identity: the caller counts
/// it failed and never deletes it. Errors: those that end the session, worded by
/// [`pop3_error`].
pub(crate) fn list(
    client: &mut Pop3Client,
    account: &str,
    ledger_key: &str,
    warnings: &mut Vec<String>,
    recorded: &HashMap<String, String>,
) -> Result<Vec<Listed>> {
    let sizes = client.list().map_err(|e| pop3_error(account, "LIST", e))?;
    let uidls = client.uidl().map_err(|e| pop3_error(account, "UIDL", e))?;
    let limit = crate::core::limits::max_message_size();
    let by_number: HashMap<u32, u64> = sizes.iter().copied().collect();
    let mut out: Vec<Listed> = Vec::with_capacity(sizes.len());
    // Whole-content SHA-256 (and refusals) of the messages read so far, by number.
    let mut digests: HashMap<u32, String> = HashMap::new();
    let mut refused: HashMap<u32, String> = HashMap::new();
    let has_uidl = uidls.is_some();
    match uidls {
        Some(uidls) => {
            let named: HashSet<u32> = uidls.iter().map(|(n, _)| *n).collect();
            for (number, uidl) in uidls {
                out.push(Listed {
                    number,
                    identity: pop3_identity(ledger_key, &uidl),
                    uidl,
                    octets: by_number.get(&number).copied().unwrap_or(0),
                    refused: None,
                    sha256: None,
                });
            }
            // A message LIST shows and the UIDL listing leaves out is on the server and has no
            // name: counted failed (never skipped, never deleted), tried again next run.
            for &(number, octets) in &sizes {
                if !named.contains(&number) {
                    out.push(Listed {
                        number,
                        uidl: String::new(),
                        identity: format!("{ledger_key} NOUIDL message {number}"),
                        octets,
                        refused: Some(NO_UIDL_IN_LISTING.into()),
                        sha256: None,
                    });
                }
            }
        }
        None => {
            let mut top_works = true;
            let mut by_retr = Vec::new();
            for &(number, octets) in &sizes {
                if top_works {
                    let mut head = Vec::new();
                    match client.top(number, 0, &mut head) {
                        Ok(()) => {
                            let key = header_key(&crate::core::message::crlf_to_lf(&head), octets);
                            out.push(content_listed(ledger_key, number, key, octets));
                            continue;
                        }
                        // TOP is optional (RFC 1939 7): read whole messages instead.
                        Err(Pop3Error::Err { .. }) => top_works = false,
                        Err(e) => {
                            return Err(pop3_error(
                                account,
                                &format!("TOP {number} 0 (no UIDL)"),
                                e,
                            ))
                        }
                    }
                }
                by_retr.push(number);
            }
            warnings.push(if top_works {
                format!("{account}: the server has no UIDL; messages are told apart by a hash of their headers and size (TOP n 0)")
            } else {
                format!("{account}: the server has neither UIDL nor TOP; every message is downloaded on every run to tell it apart by its headers and size")
            });
            let (read, no) = retr_digests(client, account, &by_retr, &by_number, limit)?;
            for number in by_retr {
                let octets = by_number[&number];
                match (read.get(&number), no.get(&number)) {
                    (Some((sha, key)), _) => {
                        digests.insert(number, sha.clone());
                        out.push(content_listed(ledger_key, number, key.clone(), octets));
                    }
                    (None, why) => {
                        let mut m =
                            content_listed(ledger_key, number, format!("message-{number}"), octets);
                        m.refused = Some(why.cloned().unwrap_or_default());
                        out.push(m);
                    }
                }
            }
        }
    }
    // Bases the listing repeats (or whose duplicates the ledger knows) are told apart by content.
    let bases: Vec<&str> = out.iter().map(|m| m.identity.as_str()).collect();
    let needed = plan::pop3_content_needed(&bases, recorded);
    let mut count: HashMap<&str, usize> = HashMap::new();
    for b in &bases {
        *count.entry(b).or_default() += 1;
    }
    let repeated: Vec<bool> = bases.iter().map(|b| count[b] > 1).collect();
    let to_read: Vec<u32> = out
        .iter()
        .zip(&needed)
        .filter(|(m, need)| **need && m.refused.is_none() && !digests.contains_key(&m.number))
        .map(|(m, _)| m.number)
        .collect();
    let (read, no) = retr_digests(client, account, &to_read, &by_number, limit)?;
    digests.extend(read.into_iter().map(|(n, (sha, _))| (n, sha)));
    refused.extend(no);
    let dup_uidls: std::collections::BTreeSet<&str> = out
        .iter()
        .zip(&repeated)
        .filter(|(_, r)| **r)
        .map(|(m, _)| m.uidl.as_str())
        .collect();
    if !dup_uidls.is_empty() && has_uidl {
        warnings.push(format!(
            "{account}: the server listed {} UIDL(s) for more than one message (first: {}); those messages are told apart by their content (downloaded once more on every run to hash them)",
            dup_uidls.len(),
            dup_uidls.first().copied().unwrap_or_default()
        ));
    } else if !dup_uidls.is_empty() {
        warnings.push(format!(
            "{account}: {} header key(s) are shared by more than one message (same headers and size; first: {}); those messages are told apart by their content (downloaded on every run to hash them)",
            dup_uidls.len(),
            dup_uidls.first().copied().unwrap_or_default()
        ));
    }
    let mut named = Vec::with_capacity(out.len());
    for ((mut m, need), rep) in out.into_iter().zip(needed).zip(repeated) {
        m.sha256 = digests.get(&m.number).cloned();
        if need && m.refused.is_none() {
            match digests.get(&m.number) {
                Some(sha) => {
                    m.identity = plan::pop3_identity_by_content(&m.identity, rep, sha, recorded)
                }
                None => {
                    m.refused = Some(refused.get(&m.number).cloned().unwrap_or_default());
                }
            }
        }
        named.push(m);
    }
    Ok(named)
}

/// A message of a server without UIDL, named by its header key.
fn content_listed(ledger_key: &str, number: u32, key: String, octets: u64) -> Listed {
    Listed {
        number,
        identity: format!("{ledger_key} CONTENT {key}"),
        uidl: key,
        octets,
        refused: None,
        sha256: None,
    }
}

/// The content key of a message on a server without UIDL: `content-` and the first 32 hex
/// digits of the SHA-256 of its header block (LF line ends, the empty line included, as `TOP n
/// 0` gives it) followed by its size in octets (8 bytes, little-endian). The same whether the
/// header block came from TOP or from the head of RETR, so identities do not change when a
/// server stops answering TOP.
pub(crate) fn header_key(head_lf: &[u8], octets: u64) -> String {
    let mut h = Sha256::new();
    h.update(head_lf);
    h.update(octets.to_le_bytes());
    format!("content-{}", &hex::encode(h.finalize())[..32])
}

/// The header block of a message with LF line ends: up to and including the first empty line,
/// or all of it when it has no body.
fn head_of(lf: &[u8]) -> &[u8] {
    match lf.windows(2).position(|w| w == b"\n\n") {
        Some(i) => &lf[..i + 2],
        None => lf,
    }
}

/// RETRs `numbers` and returns, by number, the SHA-256 of each message's normalised bytes and
/// its header key ([`header_key`]), and the refusals: `-ERR` to RETR (the server's words) or
/// over the size limit (not asked for). One message in memory at a time.
///
/// Errors: those that end the session, as [`pop3_error`] words them.
#[allow(clippy::type_complexity)]
fn retr_digests(
    client: &mut Pop3Client,
    account: &str,
    numbers: &[u32],
    sizes: &HashMap<u32, u64>,
    limit: u64,
) -> Result<(HashMap<u32, (String, String)>, HashMap<u32, String>)> {
    let mut out = HashMap::new();
    let mut refused = HashMap::new();
    let mut numbers: Vec<u32> = numbers
        .iter()
        .copied()
        .filter(|n| {
            let octets = sizes.get(n).copied().unwrap_or(0);
            if octets > limit {
                refused.insert(*n, crate::core::limits::too_large(Some(octets), limit));
                false
            } else {
                true
            }
        })
        .collect();
    while !numbers.is_empty() {
        let read = client.retr_each(
            &numbers,
            |number, body: &mut dyn Read| -> Result<(), Pop3Error> {
                let mut raw = Vec::new();
                body.read_to_end(&mut raw).map_err(Pop3Error::Io)?;
                let sha =
                    crate::archive::reader::sha256_hex(&crate::core::message::normalize(&raw));
                let lf = crate::core::message::crlf_to_lf(&raw);
                let key = header_key(head_of(&lf), sizes.get(&number).copied().unwrap_or(0));
                out.insert(number, (sha, key));
                Ok(())
            },
        );
        match read {
            Ok(()) => break,
            // The session stays in step after an -ERR (see `retr_each`): go on after it.
            Err(Pop3Error::Err { command, text }) if command.starts_with("RETR") => {
                let at = numbers.iter().position(|n| command == format!("RETR {n}"));
                match at {
                    Some(i) => {
                        refused.insert(
                            numbers[i],
                            format!("server answered `-ERR {text}` to {command}"),
                        );
                        numbers.drain(..=i);
                    }
                    None => break,
                }
            }
            Err(e) => {
                return Err(pop3_error(
                    account,
                    "RETR (telling messages apart by content)",
                    e,
                ))
            }
        }
    }
    Ok((out, refused))
}

/// Runs a POP3 backup as planned, filling `report`.
pub fn backup(plan: &BackupPlan, progress: &mut Progress, report: &mut RunReport) -> Result<()> {
    // The password first: a password command that waits (for a keyring, a prompt) must not
    // hold the archive's lock meanwhile.
    let password = plan.source.password.read(&plan.source.spec.account())?;
    // A new archive is created once the login succeeded (a failed one leaves no folder); an
    // existing one is locked first, so a second run stops before logging in.
    let (mut archive, (mut client, account)) = if archive::is_new(&plan.archive) {
        let connected = connect(&plan.source, &password)?;
        (archive::open(&plan.archive)?, connected)
    } else {
        let archive = archive::open(&plan.archive)?;
        (archive, connect(&plan.source, &password)?)
    };
    report.login_delay_secs = fault::login_delay_from_capa(&client.capabilities().lines)
        .map(|d| d.as_secs())
        .filter(|s| *s > 0);
    report.warnings.append(&mut archive.repairs);
    if !archive::note_source_port(&mut archive, &plan.source.spec)? {
        report.warnings.push(super::another_port_warning(&account));
    }
    let ledger_key = plan.source.spec.ledger_key();
    let mut warnings = Vec::new();
    let inbox = MailboxName::inbox();
    let inbox_records = archive
        .ledger
        .mailbox_records(&ledger_key, inbox.as_str())?;
    let recorded_sha: HashMap<String, String> = inbox_records
        .iter()
        .map(|r| (r.identity.clone(), r.sha256.clone()))
        .collect();
    let listing = list(
        &mut client,
        &account,
        &ledger_key,
        &mut warnings,
        &recorded_sha,
    )?;
    for w in warnings {
        if archive.ledger.note_once(&ledger_key, &w, now_secs())? {
            report.warnings.push(w);
        }
    }
    report.listed = listing.len() as u64;

    let recorded = archive.ledger.identities(&ledger_key)?;
    // A recorded message whose archived file is gone (deleted by hand) is fetched again.
    let mut missing: HashSet<String> = HashSet::new();
    let listed_ids: HashSet<&str> = listing.iter().map(|m| m.identity.as_str()).collect();
    // Records no listed message names, by SHA-256: a message read now with one of these
    // contents is that record under a UIDL the server changed (RFC 1939 7 says it must not);
    // it is renamed, not archived twice.
    let mut vanished: HashMap<String, Vec<String>> = HashMap::new();
    for r in inbox_records {
        if archive.sink.present(&r.location)? == Some(false) {
            missing.insert(r.identity);
        } else if !listed_ids.contains(r.identity.as_str()) {
            vanished.entry(r.sha256).or_default().push(r.identity);
        }
    }
    let pop_plan = plan_pop3(&listing, &recorded, &|id: &str| !missing.contains(id));
    if !missing.is_empty() {
        report.warnings.push(format!(
            "{account}: {} archived message(s) were missing from the archive (deleted by hand?); fetched again",
            missing.len()
        ));
    }
    if !pop_plan.reused.is_empty() {
        report.warnings.push(format!(
            "{account}: the server reused {} UIDL(s) for messages of another size (first: {}); they are archived as new messages",
            pop_plan.reused.len(),
            pop_plan.reused[0]
        ));
    }
    report.already_archived = pop_plan.already;
    for m in &pop_plan.refused {
        if m.refused.as_deref() == Some(NO_UIDL_IN_LISTING) {
            report.failures.push(Failure {
                mailbox: inbox.to_string(),
                message: format!("message {}", m.number),
                error: format!(
                    "{account}: message {} (LIST: {} octets) {NO_UIDL_IN_LISTING}: not archived; the next run tries again",
                    m.number, m.octets
                ),
            });
            continue;
        }
        report.failures.push(Failure {
            mailbox: inbox.to_string(),
            message: format!("UIDL {}", m.uidl),
            error: format!(
                "{account}: UIDL {} (message {}): cannot tell it apart by content: {}",
                m.uidl,
                m.number,
                m.refused.as_deref().unwrap_or_default()
            ),
        });
    }
    // Identities archived before this run (recorded, their copy present).
    let archived_before: HashSet<String> = recorded
        .keys()
        .filter(|id| !missing.contains(*id))
        .cloned()
        .collect();
    let same_bytes = pop_plan.same_bytes.clone();

    let mut to_fetch = Vec::new();
    let mut recovered = Vec::new();
    let limit = crate::core::limits::max_message_size();
    for m in pop_plan.fetch {
        match archive.sink.find_unrecorded(&inbox, &m.identity)? {
            Some((stored, sha256, size)) => recovered.push(Record {
                account: ledger_key.clone(),
                mailbox: inbox.to_string(),
                uidl: Some(m.uidl.clone()),
                uidvalidity: None,
                uid: None,
                identity: m.identity.clone(),
                size,
                wire_size: Some(m.octets),
                sha256,
                internal_date: internal_date_of_location(&stored.location).unwrap_or_else(now_secs),
                flags: String::new(),
                location: stored.location,
                stored_at: now_secs(),
                verified: false,
            }),
            // LIST says it is over the limit: not asked for (docs/limits.md, "Limits").
            None if m.octets > limit => report.failures.push(Failure {
                mailbox: inbox.to_string(),
                message: format!("UIDL {}", m.uidl),
                error: format!(
                    "{account}: UIDL {} (message {}): {}",
                    m.uidl,
                    m.number,
                    crate::core::limits::too_large(Some(m.octets), limit)
                ),
            }),
            None => to_fetch.push(m),
        }
    }
    let recovered_ids: HashSet<String> = recovered.iter().map(|r| r.identity.clone()).collect();
    if !recovered.is_empty() {
        report.recovered = recovered.len() as u64;
        archive.ledger.record_batch(&recovered, &[])?;
    }

    // The identities whose bytes this session hashed as the server sent them.
    let mut fetched_now: HashSet<String> = HashSet::new();
    progress.start(
        &account,
        to_fetch.len() as u64,
        to_fetch.iter().map(|m| m.octets).sum(),
    );
    let mut start = 0;
    let mut gave_up = false;
    while start < to_fetch.len() {
        let mut end = start;
        let mut bytes = 0;
        while end < to_fetch.len()
            && end - start < BATCH_MESSAGES
            && (bytes < BATCH_BYTES || end == start)
        {
            bytes += to_fetch[end].octets;
            end += 1;
        }
        let batch = &to_fetch[start..end];
        let (done, given_up) = fetch_batch(
            &mut client,
            &mut archive,
            (&account, &ledger_key),
            batch,
            progress,
            report,
            &mut fetched_now,
            &mut vanished,
        )?;
        start += done.max(1);
        if given_up {
            // A RETR went on past the size limit: the rest of its answer is still coming, so
            // the connection is useless. What was stored is recorded; the rest waits for the
            // next run, each counted.
            for m in &to_fetch[start.min(to_fetch.len())..] {
                report.failures.push(Failure {
                    mailbox: inbox.to_string(),
                    message: format!("UIDL {}", m.uidl),
                    error: format!(
                        "{account}: UIDL {} (message {}): not fetched: the connection was given up after a message went past the maximum message size; the next run fetches it",
                        m.uidl, m.number
                    ),
                });
            }
            gave_up = true;
            break;
        }
    }
    // One message listed twice with the same bytes counts as archived with its first.
    for m in &same_bytes {
        if archived_before.contains(&m.identity)
            || fetched_now.contains(&m.identity)
            || recovered_ids.contains(&m.identity)
        {
            report.already_archived += 1;
        } else {
            report.failures.push(Failure {
                mailbox: inbox.to_string(),
                message: format!("UIDL {}", m.uidl),
                error: format!(
                    "{account}: UIDL {} (message {}): not archived: its bytes are those of another listed message, which failed",
                    m.uidl, m.number
                ),
            });
        }
    }
    if !same_bytes.is_empty() {
        report.warnings.push(format!(
            "{account}: {} message(s) are listed twice with the same bytes (first: UIDL {}, message {}); each is archived once",
            same_bytes.len(),
            same_bytes[0].uidl,
            same_bytes[0].number
        ));
    }
    if gave_up {
        if plan.delete != DeletePolicy::Never {
            report.warnings.push(format!(
                "{account}: nothing deleted from the server because {} message(s) failed",
                report.failures.len()
            ));
        }
        return Ok(());
    }

    if plan.delete != DeletePolicy::Never {
        if !report.failures.is_empty() {
            report.warnings.push(format!(
                "{account}: nothing deleted from the server because {} message(s) failed",
                report.failures.len()
            ));
        } else {
            let stored = archive.ledger.stored_times(&ledger_key)?;
            let mut doomed = plan_deletions(&listing, &stored, plan.delete, now_secs());
            // A message is deleted only when this session hashed the server's bytes and they
            // are the archived copy's (DESIGN.md invariant 2): those fetched now, and the
            // others after a RETR compared with their record. That catches an archived copy
            // adopted damaged (a lost ledger: an unverified record) and a UIDL the server
            // reused for another message of the same size; either way the server's message is
            // archived now (and then deleted).
            let records = pop3_records(&archive, &ledger_key)?;
            let earlier: Vec<Listed> = doomed
                .iter()
                .filter(|m| !fetched_now.contains(&m.identity))
                .cloned()
                .collect();
            // Those read while listing (told apart by content) are not read a third time.
            let unread: Vec<Listed> = earlier
                .iter()
                .filter(|m| m.sha256.is_none())
                .cloned()
                .collect();
            let mut now_sha = server_sha256(&mut client, &account, &unread)?;
            now_sha.extend(
                earlier
                    .iter()
                    .filter_map(|m| m.sha256.clone().map(|sha| (m.number, sha))),
            );
            let mut check = compare_with_server(&earlier, &now_sha, &records);
            archive.ledger.set_verified(&check.promote)?;
            if !check.differ.is_empty() {
                report.warnings.push(format!(
                    "{account}: {} message(s) on the server differ from their archived copy (same UIDL and size, other bytes: first UIDL {}); each is archived from the server now",
                    check.differ.len(),
                    check.differ[0].uidl
                ));
                let failures = report.failures.len();
                fetch_batch(
                    &mut client,
                    &mut archive,
                    (&account, &ledger_key),
                    &check.differ,
                    progress,
                    report,
                    &mut fetched_now,
                    &mut HashMap::new(),
                )?;
                if report.failures.len() > failures {
                    client.quit().map_err(|e| pop3_error(&account, "QUIT", e))?;
                    report.warnings.push(format!(
                        "{account}: nothing deleted from the server because a message failed"
                    ));
                    return Ok(());
                }
                for m in &earlier {
                    if let Some(again) = check.differ.iter().find(|d| d.number == m.number) {
                        if fetched_now.contains(&again.identity) {
                            check
                                .same
                                .insert(m.identity.clone(), again.identity.clone());
                        }
                    }
                }
            }
            // Reread when messages were archived just now (their records are new).
            let records = if check.differ.is_empty() {
                records
            } else {
                pop3_records(&archive, &ledger_key)?
            };
            let holder = |m: &Listed| -> Option<String> {
                if fetched_now.contains(&m.identity) {
                    Some(m.identity.clone())
                } else {
                    check.same.get(&m.identity).cloned()
                }
            };
            let mut unverified = Vec::new();
            doomed.retain(|m| {
                let ok = holder(m).and_then(|id| records.get(&id)).is_some_and(|r| {
                    // Read while listing: those very bytes must be the record's (a whole
                    // SHA-256, not the 16 digits of a content identity).
                    m.sha256.as_ref().is_none_or(|sha| *sha == r.sha256)
                        && archive
                            .sink
                            .verify_stored(
                                &inbox,
                                &r.location,
                                &Flags::from_imap_list(&r.flags),
                                &r.sha256,
                            )
                            .unwrap_or(false)
                });
                if !ok {
                    unverified.push(m.uidl.clone());
                }
                ok
            });
            if !unverified.is_empty() {
                report.warnings.push(format!(
                    "{account}: {} message(s) not deleted from the server because their archived copy is missing or damaged (first: UIDL {})",
                    unverified.len(),
                    unverified[0]
                ));
            }
            if !doomed.is_empty() {
                let numbers: Vec<u32> = doomed.iter().map(|m| m.number).collect();
                client
                    .dele(&numbers)
                    .map_err(|e| pop3_error(&account, "DELE", e))?;
                client.quit().map_err(|e| {
                    pop3_error(
                        &account,
                        "QUIT (the server did not confirm the deletions)",
                        e,
                    )
                })?;
                let ids: Vec<String> = doomed.iter().map(|m| m.identity.clone()).collect();
                archive.ledger.mark_deleted(&ids, now_secs())?;
                report.deleted = ids.len() as u64;
                return Ok(());
            }
        }
    }
    client.quit().map_err(|e| pop3_error(&account, "QUIT", e))?;
    Ok(())
}

/// The records of a POP3 account (its INBOX), by identity.
fn pop3_records(archive: &OpenArchive, ledger_key: &str) -> Result<HashMap<String, Record>> {
    Ok(archive
        .ledger
        .mailbox_records(ledger_key, MailboxName::inbox().as_str())?
        .into_iter()
        .map(|r| (r.identity.clone(), r))
        .collect())
}

/// The SHA-256 of each message's stored form (docs/archive-formats.md, "Byte fidelity") as the server sends it
/// now (`RETR`), by message number. A message the server refuses (`-ERR`: deleted meanwhile by
/// another client) is left out, so it is not deleted; the others are still read.
///
/// Errors: those of RETR that end the session, as [`pop3_error`] words them.
pub(crate) fn server_sha256(
    client: &mut Pop3Client,
    account: &str,
    msgs: &[Listed],
) -> Result<HashMap<u32, String>> {
    let mut numbers: Vec<u32> = msgs.iter().map(|m| m.number).collect();
    let mut out = HashMap::new();
    while !numbers.is_empty() {
        let read = client.retr_each(
            &numbers,
            |number, body: &mut dyn Read| -> Result<(), Pop3Error> {
                let mut raw = Vec::new();
                body.read_to_end(&mut raw).map_err(Pop3Error::Io)?;
                out.insert(
                    number,
                    crate::archive::reader::sha256_hex(&crate::core::message::normalize(&raw)),
                );
                Ok(())
            },
        );
        match read {
            Ok(()) => break,
            // The session stays in step after an -ERR (see `retr_each`): go on after it.
            Err(Pop3Error::Err { command, .. }) if command.starts_with("RETR") => {
                let refused = numbers.iter().position(|n| command == format!("RETR {n}"));
                match refused {
                    Some(i) => numbers.drain(..=i),
                    None => numbers.drain(..),
                };
            }
            Err(e) => return Err(pop3_error(account, "RETR (comparing with the archive)", e)),
        }
    }
    Ok(out)
}

/// What comparing the server's messages with their records found ([`compare_with_server`]).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ServerCheck {
    /// Listed identities whose server bytes a record holds, with that record's identity (the
    /// listed one, or its `SHA` twin): they may be deleted once that record's archived copy
    /// verifies.
    pub same: HashMap<String, String>,
    /// Of those, the unverified records the comparison proves (to promote).
    pub promote: Vec<String>,
    /// Messages whose bytes are not their record's, with the identity to archive them under:
    /// the record's own when it was unverified (its archived copy was adopted damaged: it is
    /// replaced), else `<identity> SHA <first 16 hex digits>` (the server reused the UIDL for
    /// another message of the same size: both are kept).
    pub differ: Vec<Listed>,
}

/// Compares the SHA-256 the server's messages have now (`now_sha`, by message number) with
/// their records. Pure.
pub fn compare_with_server(
    msgs: &[Listed],
    now_sha: &HashMap<u32, String>,
    records: &HashMap<String, Record>,
) -> ServerCheck {
    let mut out = ServerCheck::default();
    for m in msgs {
        let Some(sha) = now_sha.get(&m.number) else {
            continue;
        };
        let Some(r) = records.get(&m.identity) else {
            continue;
        };
        if &r.sha256 == sha {
            out.same.insert(m.identity.clone(), m.identity.clone());
            if !r.verified {
                out.promote.push(m.identity.clone());
            }
            continue;
        }
        let twin = format!("{} SHA {}", m.identity, &sha[..16.min(sha.len())]);
        match records.get(&twin) {
            // Archived before under its own identity: this record stands for it.
            Some(t) if &t.sha256 == sha => {
                out.same.insert(m.identity.clone(), twin);
            }
            _ => {
                let mut again = m.clone();
                if r.verified {
                    again.identity = twin;
                }
                out.differ.push(again);
            }
        }
    }
    out
}

/// The INTERNALDATE encoded in a Maildir location's file name (`<secs>.M...`), if any.
fn internal_date_of_location(location: &str) -> Option<i64> {
    let name = location.rsplit('/').next()?;
    name.split('.').next()?.parse().ok()
}

/// Fetches one batch; returns how many listed messages it dealt with (stored or failed), and
/// whether the connection had to be given up (a message went on past the size limit: it is
/// counted as failed in `report`, and the session is abandoned). Messages placed before an
/// error are made durable and recorded before the error returns.
#[allow(clippy::too_many_arguments)]
fn fetch_batch(
    client: &mut Pop3Client,
    archive: &mut OpenArchive,
    (account, ledger_key): (&str, &str),
    batch: &[Listed],
    progress: &mut Progress,
    report: &mut RunReport,
    fetched_now: &mut HashSet<String>,
    vanished: &mut HashMap<String, Vec<String>>,
) -> Result<(usize, bool)> {
    let inbox = MailboxName::inbox();
    let appends = archive.sink.tail(&inbox)?;
    if let Some(mark) = &appends {
        archive::check_mbox_known(archive, mark)?;
        archive.ledger.set_pending(mark)?;
    }
    let by_number: HashMap<u32, &Listed> = batch.iter().map(|m| (m.number, m)).collect();
    let numbers: Vec<u32> = batch.iter().map(|m| m.number).collect();
    let mut records: Vec<Record> = Vec::new();
    // (old identity, new identity, UIDL): records renamed instead of archived again.
    let mut rekeys: Vec<(String, String, String)> = Vec::new();
    // Messages read while listing (told apart by content) whose RETR now sent other bytes:
    // (the message, the SHA-256 of what was sent). Not archived under an identity that names
    // other bytes (DESIGN.md invariant 2); each is a failure, read again next run.
    let mut changed: Vec<(Listed, String)> = Vec::new();
    // Each message is written to `tmp/` as it arrives, its fsync handed to the pool and the
    // message to the placer thread, which places it once the fsync is done
    // (src/sink/placer.rs); RETRs are answered in order, so the i-th handed over is batch[i].
    let sink = std::sync::Mutex::new(archive.sink.as_mut());
    let ledger = &mut archive.ledger;
    let place = |(m, msg): (&Listed, StagedMessage), fsync: Pending| -> Result<()> {
        let msg = fsync.synced(msg)?;
        if m.sha256
            .as_ref()
            .is_some_and(|listed| *listed != msg.sha256)
        {
            let sha = msg.sha256.clone();
            msg.discard();
            changed.push((m.clone(), sha));
            return Ok(());
        }
        if let Some(old) = vanished.get_mut(&msg.sha256).and_then(Vec::pop) {
            msg.discard();
            rekeys.push((old, m.identity.clone(), m.uidl.clone()));
            return Ok(());
        }
        let now = now_secs();
        let (date, _) = headers::arrival_date(&msg.header, now);
        let meta = PlaceMeta {
            mailbox: inbox.clone(),
            flags: Flags::new(),
            internal_date: date,
            envelope_from: headers::envelope_from(&msg.header),
            identity: m.identity.clone(),
        };
        let (size, sha256) = (msg.size, msg.sha256.clone());
        let stored = lock_sink(&sink).place(msg, &meta)?;
        let record = Record {
            account: ledger_key.to_string(),
            mailbox: inbox.to_string(),
            uidl: Some(m.uidl.clone()),
            uidvalidity: None,
            uid: None,
            identity: m.identity.clone(),
            size,
            wire_size: Some(m.octets),
            sha256,
            internal_date: date,
            flags: String::new(),
            location: stored.location,
            stored_at: now,
            verified: true,
        };
        if appends.is_some() {
            // mbox: note it, so a crash before the batch commit does not fetch it again.
            ledger.record_placed(&record)?;
        }
        records.push(record);
        Ok(())
    };
    // One 64 KiB buffer for the batch: a body is copied in a few large writes (SHA-256 and
    // the CRLF writer work best on large pieces), not io::copy's 8 KiB.
    let mut copy_buf = vec![0u8; 64 * 1024];
    let (fetched, place_error) = placer::fetch_while_placing(
        |handoff| {
            client.retr_each(&numbers, |number, body: &mut dyn Read| {
                let m = by_number[&number];
                let mut staged = lock_sink(&sink).stage(&inbox).map_err(FetchError::Sink)?;
                copy_body(body, &mut staged, &mut copy_buf).map_err(|e| {
                    // A read error is the server's; a write error is the archive's.
                    if staged_write_failed(&e) {
                        FetchError::Sink(Error::archive_io(staged.path(), e))
                    } else {
                        FetchError::Pop3(Pop3Error::Io(e))
                    }
                })?;
                let path = staged.path().to_path_buf();
                let (msg, file) = staged
                    .finish_unsynced()
                    .map_err(|e| FetchError::Sink(Error::archive_io(&path, e)))?;
                let fsync = FsyncPool::global().submit(file);
                progress.message_done(m.octets);
                if !handoff.send((m, msg), fsync) {
                    // Placing failed: its error (below) is the one reported.
                    return Err(FetchError::Sink(Error::Usage("placing stopped".into())));
                }
                Ok(())
            })
        },
        place,
        |(_, msg): (&Listed, StagedMessage), fsync: Pending| fsync.discard(msg),
    );
    let result = match place_error {
        Some(e) => Err(FetchError::Sink(e)),
        None => fetched,
    };
    // Durable first, then recorded: whatever was placed before an error is kept.
    let tails = archive::batch_tails(appends.as_ref(), archive.sink.sync()?);
    archive.ledger.record_batch(&records, &tails)?;
    archive.ledger.rekey_pop3(&rekeys)?;
    fetched_now.extend(records.iter().map(|r| r.identity.clone()));
    fetched_now.extend(rekeys.iter().map(|(_, new, _)| new.clone()));
    report.already_archived += rekeys.len() as u64;
    if let Some((old, new, _)) = rekeys.first() {
        report.warnings.push(format!(
            "{account}: {} message(s) came back under another UIDL with the bytes already archived (first: `{old}` is now `{new}`); renamed in the ledger, not archived twice",
            rekeys.len()
        ));
    }
    for (m, sha) in &changed {
        let listed = m.sha256.as_deref().unwrap_or_default();
        report.failures.push(Failure {
            mailbox: inbox.to_string(),
            message: format!("UIDL {}", m.uidl),
            error: format!(
                "{account}: UIDL {} (message {}): the server sent other bytes than when it was listed (SHA-256 {} then {}); not archived, the next run reads it again",
                m.uidl,
                m.number,
                &listed[..16.min(listed.len())],
                &sha[..16.min(sha.len())]
            ),
        });
    }
    // Messages dealt with, in batch order (RETRs are answered in order).
    let handled = records.len() + rekeys.len() + changed.len();
    report.fetched += records.len() as u64;
    report.fetched_bytes += records.iter().map(|r| r.size).sum::<u64>();
    match result {
        Ok(()) => Ok((batch.len(), false)),
        Err(FetchError::Sink(e)) => {
            // RETRs are answered in order: the message being stored is the first unrecorded.
            let failed = &batch[handled.min(batch.len() - 1)];
            Err(crate::archive::writer::storing(
                e,
                &format!(
                    "{account} INBOX UIDL {} (message {})",
                    failed.uidl, failed.number
                ),
            ))
        }
        Err(FetchError::Pop3(Pop3Error::Err { command, text })) if command.starts_with("RETR") => {
            // The server refused this one message (e.g. deleted meanwhile by another client):
            // report it, keep going with the rest.
            let failed = batch[handled].clone();
            report.failures.push(Failure {
                mailbox: inbox.to_string(),
                message: format!("UIDL {}", failed.uidl),
                error: format!("{account}: server answered `-ERR {text}` to {command}"),
            });
            Ok((handled + 1, false))
        }
        Err(FetchError::Pop3(e @ Pop3Error::TooLarge { .. })) => {
            // Its staged file was removed when it was dropped: nothing over the limit stays.
            let failed = batch[handled.min(batch.len() - 1)].clone();
            report.failures.push(Failure {
                mailbox: inbox.to_string(),
                message: format!("UIDL {}", failed.uidl),
                error: format!(
                    "{account}: UIDL {} (message {}): {e}",
                    failed.uidl, failed.number
                ),
            });
            Ok((handled + 1, true))
        }
        Err(FetchError::Pop3(e)) => {
            let failed = &batch[handled.min(batch.len() - 1)];
            Err(pop3_error(
                account,
                &format!("INBOX UIDL {} (message {})", failed.uidl, failed.number),
                e,
            ))
        }
    }
}

/// Copies a message body into the staged file through `buf`; the error of the read or the
/// write as it was (see [`staged_write_failed`]).
fn copy_body(
    body: &mut dyn Read,
    staged: &mut crate::archive::writer::Staged,
    buf: &mut [u8],
) -> std::io::Result<()> {
    loop {
        let n = match body.read(buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        std::io::Write::write_all(staged, &buf[..n])?;
    }
}

/// The archive's sink, shared by the connection (staging) and the placer (placing).
fn lock_sink<'m, 's>(
    sink: &'m std::sync::Mutex<&'s mut (dyn Sink + Send + 'static)>,
) -> std::sync::MutexGuard<'m, &'s mut (dyn Sink + Send + 'static)> {
    sink.lock().unwrap_or_else(|p| p.into_inner())
}

/// True when an io::copy error came from writing (the archive) rather than reading (the
/// server): disk full, file too large, permission, read-only file system.
fn staged_write_failed(e: &std::io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::ENOSPC)
            | Some(libc::EFBIG)
            | Some(libc::EDQUOT)
            | Some(libc::EROFS)
            | Some(libc::EACCES)
            | Some(libc::EIO)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::error::Exit;

    #[test]
    fn deleting_needs_the_servers_bytes_to_be_a_records() {
        let rec = |identity: &str, sha: &str, verified: bool| Record {
            account: "pop3:a@h".into(),
            mailbox: "INBOX".into(),
            uidl: None,
            uidvalidity: None,
            uid: None,
            identity: identity.into(),
            size: 10,
            wire_size: Some(12),
            sha256: sha.into(),
            internal_date: 0,
            flags: String::new(),
            location: "cur/x".into(),
            stored_at: 0,
            verified,
        };
        let id = |u: &str| pop3_identity("pop3:a@h", u);
        let sha = |c: char| c.to_string().repeat(64);
        let records: HashMap<String, Record> = [
            rec(&id("same"), &sha('a'), true),
            rec(&id("adopted"), &sha('b'), false),
            rec(&id("damaged"), &sha('c'), false),
            rec(&id("reused"), &sha('d'), true),
            rec(&id("reused-before"), &sha('e'), true),
            rec(
                &format!("{} SHA {}", id("reused-before"), &sha('f')[..16]),
                &sha('f'),
                true,
            ),
        ]
        .into_iter()
        .map(|r| (r.identity.clone(), r))
        .collect();
        let msgs: Vec<Listed> = [
            "same",
            "adopted",
            "damaged",
            "reused",
            "reused-before",
            "unknown",
        ]
        .iter()
        .enumerate()
        .map(|(i, u)| listed(i as u32 + 1, u))
        .collect();
        let now: HashMap<u32, String> = [
            (1, sha('a')),
            (2, sha('b')),
            (3, sha('x')),
            (4, sha('y')),
            (5, sha('f')),
            (6, sha('z')),
        ]
        .into_iter()
        .collect();
        let c = compare_with_server(&msgs, &now, &records);
        let same: std::collections::BTreeMap<_, _> = c.same.into_iter().collect();
        assert_eq!(
            same,
            [
                (id("adopted"), id("adopted")),
                (
                    id("reused-before"),
                    format!("{} SHA {}", id("reused-before"), &sha('f')[..16])
                ),
                (id("same"), id("same")),
            ]
            .into_iter()
            .collect()
        );
        assert_eq!(c.promote, vec![id("adopted")]);
        // The damaged adopted copy is replaced under its own identity; the reused UIDL's
        // message is archived beside the one recorded.
        let differ: Vec<(u32, String)> = c
            .differ
            .into_iter()
            .map(|m| (m.number, m.identity))
            .collect();
        assert_eq!(
            differ,
            vec![
                (3, id("damaged")),
                (4, format!("{} SHA {}", id("reused"), &sha('y')[..16])),
            ]
        );
    }

    fn listed(n: u32, uidl: &str) -> Listed {
        Listed {
            number: n,
            uidl: uidl.into(),
            identity: pop3_identity("pop3:a@h", uidl),
            octets: 100,
            refused: None,
            sha256: None,
        }
    }

    #[test]
    fn plan_uses_uidl_not_message_numbers() {
        // Case 14: after someone deleted message 1, the numbers shift; only UIDL 0004 is new.
        let recorded: HashMap<String, Option<u64>> =
            ["QX-7f3a-0001", "QX-7f3a-0002", "QX-7f3a-0003"]
                .iter()
                .map(|u| (pop3_identity("pop3:a@h", u), Some(100)))
                .collect();
        let listing = [
            listed(1, "QX-7f3a-0002"),
            listed(2, "QX-7f3a-0003"),
            listed(3, "QX-7f3a-0004"),
        ];
        let plan = plan_pop3(&listing, &recorded, &|_: &str| true);
        assert_eq!(plan.fetch, vec![listed(3, "QX-7f3a-0004")]);
        assert_eq!(plan.already, 2);
    }

    #[test]
    fn plan_truth_table() {
        let r = |ids: &[&str]| -> HashMap<String, Option<u64>> {
            ids.iter()
                .map(|u| (pop3_identity("pop3:a@h", u), Some(100)))
                .collect()
        };
        // (listing, recorded, numbers to fetch, already archived, listed twice with the same
        // identity: the same bytes, see `list`)
        type Case = (
            Vec<Listed>,
            HashMap<String, Option<u64>>,
            Vec<u32>,
            u64,
            usize,
        );
        let cases: Vec<Case> = vec![
            (vec![], r(&[]), vec![], 0, 0),
            (
                vec![listed(1, "a"), listed(2, "b")],
                r(&[]),
                vec![1, 2],
                0,
                0,
            ),
            (
                vec![listed(1, "a"), listed(2, "b")],
                r(&["a", "b"]),
                vec![],
                2,
                0,
            ),
            (vec![listed(1, "a"), listed(2, "a")], r(&[]), vec![1], 0, 1),
            (vec![listed(1, "a")], r(&["z"]), vec![1], 0, 0),
            (
                vec![listed(1, "a"), listed(2, "a"), listed(3, "a")],
                r(&["a"]),
                vec![],
                1,
                2,
            ),
        ];
        for (listing, rec, fetch, already, repeated) in cases {
            let p = plan_pop3(&listing, &rec, &|_: &str| true);
            assert_eq!(p.fetch.iter().map(|m| m.number).collect::<Vec<_>>(), fetch);
            assert_eq!((p.already, p.same_bytes.len()), (already, repeated));
        }
    }

    #[test]
    fn every_listed_message_is_planned_once_and_refused_ones_never_deleted() {
        let mut refused = listed(2, "d");
        refused.refused = Some("server answered `-ERR gone` to RETR 2".into());
        let listing = [listed(1, "a"), refused, listed(3, "a"), listed(4, "b")];
        let mut rec = HashMap::new();
        rec.insert(pop3_identity("pop3:a@h", "b"), Some(100));
        let p = plan_pop3(&listing, &rec, &|_: &str| true);
        assert_eq!(
            p.fetch.iter().map(|m| m.number).collect::<Vec<_>>(),
            vec![1]
        );
        assert_eq!(
            p.refused.iter().map(|m| m.number).collect::<Vec<_>>(),
            vec![2]
        );
        assert_eq!(
            p.same_bytes.iter().map(|m| m.number).collect::<Vec<_>>(),
            vec![3]
        );
        assert_eq!(p.already, 1);
        assert_eq!(
            p.fetch.len() + p.refused.len() + p.same_bytes.len() + p.already as usize,
            listing.len()
        );
        let stored: HashMap<String, (i64, Option<i64>)> = ["a", "b", "d"]
            .iter()
            .map(|u| (pop3_identity("pop3:a@h", u), (0, None)))
            .collect();
        let doomed = plan_deletions(
            &listing,
            &stored,
            DeletePolicy::Archived { min_age_days: 0 },
            10,
        );
        // Both copies of the same bytes may go (each is compared first); the refused one not.
        assert_eq!(
            doomed.iter().map(|m| m.number).collect::<Vec<_>>(),
            vec![1, 3, 4]
        );
    }

    #[test]
    fn reused_uidl_with_another_size_is_a_new_message() {
        let mut rec = HashMap::new();
        rec.insert(pop3_identity("pop3:a@h", "a"), Some(55));
        rec.insert(pop3_identity("pop3:a@h", "b"), Some(100));
        let p = plan_pop3(&[listed(1, "a"), listed(2, "b")], &rec, &|_: &str| true);
        assert_eq!(p.reused, vec!["a".to_string()]);
        assert_eq!(p.fetch.len(), 1);
        assert_eq!(p.fetch[0].identity, "pop3:a@h UIDL a SIZE 100");
        assert_eq!(p.already, 1);
        // Once archived under its new identity, it is not fetched again.
        rec.insert("pop3:a@h UIDL a SIZE 100".into(), Some(100));
        let p = plan_pop3(&[listed(1, "a")], &rec, &|_: &str| true);
        assert_eq!((p.fetch.len(), p.already), (0, 1));
    }

    #[test]
    fn missing_archived_copy_is_fetched_again() {
        let mut rec = HashMap::new();
        rec.insert(pop3_identity("pop3:a@h", "a"), Some(100));
        let gone = pop3_identity("pop3:a@h", "a");
        let p = plan_pop3(&[listed(1, "a")], &rec, &|id: &str| id != gone);
        assert_eq!((p.fetch.len(), p.already), (1, 0));
    }

    #[test]
    fn deletions_only_recorded_and_old_enough() {
        let now = 1_000_000;
        let listing = [listed(1, "a"), listed(2, "b"), listed(3, "c")];
        let mut stored = HashMap::new();
        stored.insert(pop3_identity("pop3:a@h", "a"), (now - 10 * 86_400, None));
        stored.insert(pop3_identity("pop3:a@h", "b"), (now - 86_400, None));
        let nums = |p| {
            plan_deletions(&listing, &stored, p, now)
                .iter()
                .map(|m| m.number)
                .collect::<Vec<_>>()
        };
        assert_eq!(nums(DeletePolicy::Never), Vec::<u32>::new());
        assert_eq!(nums(DeletePolicy::Archived { min_age_days: 0 }), vec![1, 2]);
        assert_eq!(nums(DeletePolicy::Archived { min_age_days: 5 }), vec![1]);
        assert_eq!(
            nums(DeletePolicy::Archived { min_age_days: 30 }),
            Vec::<u32>::new()
        );
    }

    #[test]
    fn temporary_server_conditions_are_exit_4_not_protocol_errors() {
        let err = |text: &str| Pop3Error::Err {
            command: "PASS".into(),
            text: text.into(),
        };
        let cases = [
            ("[SYS/TEMP] try later", Exit::Network),
            ("[in-use] mailbox locked", Exit::Network),
            ("[LOGIN-DELAY] wait", Exit::Network),
            ("[SYS/PERM] account disabled", Exit::Auth),
            ("[AUTH] bad password", Exit::Auth),
            ("no such message", Exit::Protocol),
            ("[SYS/PERM] Your account is disabled", Exit::Auth),
            ("Unable to lock maildrop", Exit::Network),
        ];
        for (text, want) in cases {
            assert_eq!(pop3_error("a@h:995", "", err(text)).exit(), want, "{text}");
        }
        // The CAPA window is named, for `mailkeep run` (fault::retry_after_in).
        let e = pop3_error_with(
            "a@h:110",
            "",
            err("[LOGIN-DELAY] wait"),
            Some(std::time::Duration::from_secs(900)),
        );
        assert_eq!(e.retry_after(), Some(std::time::Duration::from_secs(900)));
        assert_eq!(
            e.to_string(),
            "a@h:110: the server is temporarily unavailable: it allows one login every 900 s (`-ERR [LOGIN-DELAY] wait` to PASS, RFC 2449 8.1.2); retry after 900 s"
        );
        assert_eq!(
            fault::retry_after_in(&e.to_string()),
            Some(std::time::Duration::from_secs(900))
        );
        assert_eq!(
            pop3_error("a@h:110", "", err("[IN-USE] x")).retry_after(),
            None
        );
    }

    #[test]
    fn location_dates() {
        assert_eq!(
            internal_date_of_location("cur/1700000000.Mabc.mailkeep,S=1"),
            Some(1_700_000_000)
        );
        assert_eq!(internal_date_of_location("INBOX.mbox:0:10"), None);
    }
}
