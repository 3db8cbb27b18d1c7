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
use crate::archive::{self, OpenArchive};
use crate::config::{BackupPlan, DeletePolicy, ServerPlan};
use crate::credentials::Password;
use crate::error::{Error, Result};
use crate::fault::{self, FaultClass};
use crate::headers;
use crate::ledger::Record;
use crate::message::{Flags, MailboxName};
use crate::net::{Timeouts, TlsOptions};
use crate::pop3::{AuthMethod, Pop3Client, Pop3Error, Pop3Options};
use crate::progress::Progress;
use crate::report::{Failure, RunReport};
use crate::sink::fsync_pool::{FsyncPool, Pending};
use crate::sink::placer;
use crate::sink::{PlaceMeta, Sink, StagedMessage};

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
}

/// What a run must do with a listing.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Pop3Plan {
    /// Messages not in the ledger (or whose archived copy is missing), in server order.
    pub fetch: Vec<Listed>,
    /// Messages already recorded.
    pub already: u64,
    /// UIDLs listed more than once by the server (the later ones are ignored).
    pub repeated: Vec<String>,
    /// UIDLs the ledger knows with another size: the server reused them for other messages
    /// (RFC 1939 7 says it must not); those are fetched as new messages.
    pub reused: Vec<String>,
}

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
/// is fetched and never confused with (nor deleted in place of) the archived one.
pub fn plan_pop3(
    listing: &[Listed],
    recorded: &HashMap<String, Option<u64>>,
    present: &dyn Fn(&str) -> bool,
) -> Pop3Plan {
    let mut plan = Pop3Plan::default();
    let mut seen = HashSet::new();
    for m in listing {
        if !seen.insert(m.identity.as_str()) {
            plan.repeated.push(m.uidl.clone());
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
    let mut seen = HashSet::new();
    listing
        .iter()
        .filter(|m| seen.insert(m.identity.as_str()))
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
            detail: format!("{ctx}{}", crate::net::io_reason(&e)),
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
        // RFC 2449 8.1 / RFC 3206: conditions that pass, not broken protocol (README: exit 4).
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
                        "{ctx}{} ({quoted}, RFC 2449 8.1.1); {}",
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
            crate::cli::AuthArg::Auto
            | crate::cli::AuthArg::Login
            | crate::cli::AuthArg::Xoauth2
            | crate::cli::AuthArg::Oauthbearer => AuthMethod::Auto,
            crate::cli::AuthArg::Plain => AuthMethod::Plain,
            crate::cli::AuthArg::User => AuthMethod::User,
            crate::cli::AuthArg::Apop => AuthMethod::Apop,
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
        let delay = fault::login_delay_from_capa(&client.capabilities().lines);
        return Err(pop3_error_with(&account, "", e, delay));
    }
    Ok((client, account))
}

/// Lists the maildrop: UIDL when the server has it, else content keys from `TOP n 0` (headers)
/// plus size.
pub(crate) fn list(
    client: &mut Pop3Client,
    account: &str,
    ledger_key: &str,
    warnings: &mut Vec<String>,
) -> Result<Vec<Listed>> {
    let sizes = client.list().map_err(|e| pop3_error(account, "LIST", e))?;
    let uidls = client.uidl().map_err(|e| pop3_error(account, "UIDL", e))?;
    let mut out = Vec::with_capacity(sizes.len());
    match uidls {
        Some(uidls) => {
            let by_number: HashMap<u32, u64> = sizes.into_iter().collect();
            for (number, uidl) in uidls {
                out.push(Listed {
                    number,
                    identity: pop3_identity(ledger_key, &uidl),
                    uidl,
                    octets: by_number.get(&number).copied().unwrap_or(0),
                });
            }
        }
        None => {
            warnings.push(format!(
                "{account}: the server has no UIDL; messages are told apart by a hash of their headers and size"
            ));
            for (number, octets) in sizes {
                let mut head = Vec::new();
                client
                    .top(number, 0, &mut head)
                    .map_err(|e| pop3_error(account, &format!("TOP {number} 0 (no UIDL)"), e))?;
                let mut h = Sha256::new();
                h.update(crate::message::crlf_to_lf(&head));
                h.update(octets.to_le_bytes());
                let key = format!("content-{}", &hex::encode(h.finalize())[..32]);
                out.push(Listed {
                    number,
                    identity: format!("{ledger_key} CONTENT {key}"),
                    uidl: key,
                    octets,
                });
            }
        }
    }
    Ok(out)
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
    let listing = list(&mut client, &account, &ledger_key, &mut warnings)?;
    for w in warnings {
        if archive.ledger.note_once(&ledger_key, &w, now_secs())? {
            report.warnings.push(w);
        }
    }
    report.listed = listing.len() as u64;

    let recorded = archive.ledger.identities(&ledger_key)?;
    let inbox = MailboxName::inbox();
    // A recorded message whose archived file is gone (deleted by hand) is fetched again.
    let mut missing: HashSet<String> = HashSet::new();
    for r in archive
        .ledger
        .mailbox_records(&ledger_key, inbox.as_str())?
    {
        if archive.sink.present(&r.location)? == Some(false) {
            missing.insert(r.identity);
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
    if !pop_plan.repeated.is_empty() {
        report.warnings.push(format!(
            "{account}: the server listed {} UIDL(s) twice (first: {}); each is archived once",
            pop_plan.repeated.len(),
            pop_plan.repeated[0]
        ));
    }

    let mut to_fetch = Vec::new();
    let mut recovered = Vec::new();
    let limit = crate::limits::max_message_size();
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
            // LIST says it is over the limit: not asked for (README: "Limits").
            None if m.octets > limit => report.failures.push(Failure {
                mailbox: inbox.to_string(),
                message: format!("UIDL {}", m.uidl),
                error: format!(
                    "{account}: UIDL {} (message {}): {}",
                    m.uidl,
                    m.number,
                    crate::limits::too_large(Some(m.octets), limit)
                ),
            }),
            None => to_fetch.push(m),
        }
    }
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
            if plan.delete != DeletePolicy::Never {
                report.warnings.push(format!(
                    "{account}: nothing deleted from the server because {} message(s) failed",
                    report.failures.len()
                ));
            }
            return Ok(());
        }
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
            let now_sha = server_sha256(&mut client, &account, &earlier)?;
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
                    archive
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

/// The SHA-256 of each message's stored form (README, "Byte fidelity") as the server sends it
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
                    crate::source::sha256_hex(&crate::message::normalize(&raw)),
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
fn fetch_batch(
    client: &mut Pop3Client,
    archive: &mut OpenArchive,
    (account, ledger_key): (&str, &str),
    batch: &[Listed],
    progress: &mut Progress,
    report: &mut RunReport,
    fetched_now: &mut HashSet<String>,
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
    // Each message is written to `tmp/` as it arrives, its fsync handed to the pool and the
    // message to the placer thread, which places it once the fsync is done
    // (src/sink/placer.rs); RETRs are answered in order, so the i-th handed over is batch[i].
    let sink = std::sync::Mutex::new(archive.sink.as_mut());
    let ledger = &mut archive.ledger;
    let place = |(m, msg): (&Listed, StagedMessage), fsync: Pending| -> Result<()> {
        let msg = fsync.synced(msg)?;
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
    let tails = archive.sink.sync()?;
    archive.ledger.record_batch(&records, &tails)?;
    fetched_now.extend(records.iter().map(|r| r.identity.clone()));
    report.fetched += records.len() as u64;
    report.fetched_bytes += records.iter().map(|r| r.size).sum::<u64>();
    match result {
        Ok(()) => Ok((batch.len(), false)),
        Err(FetchError::Sink(e)) => {
            // RETRs are answered in order: the message being stored is the first unrecorded.
            let failed = &batch[records.len().min(batch.len() - 1)];
            Err(crate::sink::storing(
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
            let failed = batch[records.len()].clone();
            report.failures.push(Failure {
                mailbox: inbox.to_string(),
                message: format!("UIDL {}", failed.uidl),
                error: format!("{account}: server answered `-ERR {text}` to {command}"),
            });
            Ok((records.len() + 1, false))
        }
        Err(FetchError::Pop3(e @ Pop3Error::TooLarge { .. })) => {
            // Its staged file was removed when it was dropped: nothing over the limit stays.
            let failed = batch[records.len().min(batch.len() - 1)].clone();
            report.failures.push(Failure {
                mailbox: inbox.to_string(),
                message: format!("UIDL {}", failed.uidl),
                error: format!(
                    "{account}: UIDL {} (message {}): {e}",
                    failed.uidl, failed.number
                ),
            });
            Ok((records.len() + 1, true))
        }
        Err(FetchError::Pop3(e)) => {
            let failed = &batch[records.len().min(batch.len() - 1)];
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
    staged: &mut crate::sink::Staged,
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
    use crate::error::Exit;

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
        // (listing, recorded, numbers to fetch, already archived, repeated UIDLs)
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
        ];
        for (listing, rec, fetch, already, repeated) in cases {
            let p = plan_pop3(&listing, &rec, &|_: &str| true);
            assert_eq!(p.fetch.iter().map(|m| m.number).collect::<Vec<_>>(), fetch);
            assert_eq!((p.already, p.repeated.len()), (already, repeated));
        }
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
            ("no such message", Exit::Protocol),
            ("[SYS/PERM] Your account is disabled", Exit::Auth),
            ("Unable to lock maildrop", Exit::Network),
        ];
        for (text, want) in cases {
            assert_eq!(pop3_error("a@h:995", "", err(text)).exit(), want, "{text}");
        }
        // The CAPA window is named, for `mailkeep run` (fault::retry_after_in).
        let e = pop3_error_with(
            "a@h:995",
            "",
            err("[LOGIN-DELAY] wait"),
            Some(std::time::Duration::from_secs(900)),
        );
        assert_eq!(
            e.to_string(),
            "a@h:995: the server allows no new login yet (`-ERR [LOGIN-DELAY] wait` to PASS, RFC 2449 8.1.1); retry after 900 s"
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
