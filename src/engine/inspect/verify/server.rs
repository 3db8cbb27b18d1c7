//! `verify --against SOURCE`: the server listed in the ledger's identities ([`list_server`]:
//! IMAP LIST, EXAMINE and a UID listing per mailbox; POP3 UIDL) and compared with the ledger's
//! records ([`compare`], pure).
//!
//! Uses the engine's IMAP and POP3 connections ([`crate::engine::imap`],
//! [`crate::engine::pop3`]); reads nothing of the archive but the rows it is given.

use std::collections::{BTreeMap, HashMap, HashSet};

use super::{LedgerRow, MailboxComparison, MissingMessage};
use crate::core::endpoint::Protocol;
use crate::core::error::Result;
use crate::engine::plan::FolderFilter;
use crate::engine::plans::ServerPlan;

/// A server message as `--against` compares it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerMessage {
    /// Its identity in the ledger's terms.
    pub identity: String,
    /// How the server names it (`UID 42`, `UIDL 0001`).
    pub label: String,
}

/// Compares the server's listing (mailbox -> messages) with the ledger's records of the
/// account (`(mailbox, identity)`), `bad` being the identities whose archived copy is missing
/// or damaged. Mailboxes come out sorted by name. Pure.
pub fn compare(
    server: &BTreeMap<String, Vec<ServerMessage>>,
    archived: &[(&str, &str)],
    bad: &HashSet<String>,
) -> (Vec<MailboxComparison>, Vec<MissingMessage>) {
    let mut recorded: BTreeMap<&str, HashSet<&str>> = BTreeMap::new();
    for (mb, id) in archived {
        recorded.entry(mb).or_default().insert(id);
    }
    let mut names: Vec<&str> = server.keys().map(String::as_str).collect();
    names.extend(recorded.keys().copied());
    names.sort_unstable();
    names.dedup();
    let empty_server = Vec::new();
    let empty_recorded = HashSet::new();
    let mut rows = Vec::new();
    let mut missing = Vec::new();
    for name in names {
        let on_server = server.get(name).unwrap_or(&empty_server);
        let in_archive = recorded.get(name).unwrap_or(&empty_recorded);
        let listed: HashSet<&str> = on_server.iter().map(|m| m.identity.as_str()).collect();
        let mut row = MailboxComparison {
            mailbox: name.to_string(),
            on_server: listed.len() as u64,
            in_archive: in_archive.len() as u64,
            ..Default::default()
        };
        let mut seen = HashSet::new();
        for m in on_server {
            if !seen.insert(m.identity.as_str()) {
                continue;
            }
            let is_recorded = in_archive.contains(m.identity.as_str());
            if !is_recorded || bad.contains(&m.identity) {
                row.missing_from_archive += 1;
                missing.push(MissingMessage {
                    mailbox: name.to_string(),
                    identity: m.identity.clone(),
                    message: m.label.clone(),
                    recorded: is_recorded,
                });
            }
        }
        row.only_in_archive = in_archive.iter().filter(|id| !listed.contains(*id)).count() as u64;
        rows.push(row);
    }
    (rows, missing)
}

/// The identity a POP3 listing entry has in the ledger: as listed, or `<identity> SIZE
/// <octets>` when the ledger knows the UIDL with another size (a reused UIDL, which backup
/// archives under that identity; see [`crate::engine::pop3::plan_pop3`]). Pure.
pub fn pop3_ledger_identity(
    identity: &str,
    octets: u64,
    recorded: &HashMap<String, Option<u64>>,
) -> String {
    match recorded.get(identity) {
        Some(Some(size)) if *size != octets && octets != 0 => format!("{identity} SIZE {octets}"),
        _ => identity.to_string(),
    }
}

/// Lists the server's messages by mailbox, in the ledger's identities; what the POP3 listing
/// noticed is added to `said` (warnings for the report).
pub(super) fn list_server(
    plan: &ServerPlan,
    filter: &FolderFilter,
    rows: &[LedgerRow],
    said: &mut Vec<String>,
) -> Result<BTreeMap<String, Vec<ServerMessage>>> {
    let ledger_key = plan.spec.ledger_key();
    let account = plan.spec.account();
    let mut out: BTreeMap<String, Vec<ServerMessage>> = BTreeMap::new();
    match plan.spec.protocol {
        Protocol::Imap => {
            use crate::engine::imap::{connect, imap_error, imap_identity, read_secret};
            let mut client = connect(plan, &read_secret(plan)?)?;
            let boxes = client
                .list_mailboxes()
                .map_err(|e| imap_error(&account, "LIST", e))?;
            for mb in boxes
                .iter()
                .filter(|m| m.selectable && filter.wants(m.name.as_str()))
            {
                let sel = client
                    .examine(mb)
                    .map_err(|e| imap_error(&account, &format!("EXAMINE {}", mb.name), e))?;
                let listed = if sel.exists == 0 {
                    Vec::new()
                } else {
                    client
                        .list_messages(None)
                        .map_err(|e| imap_error(&account, &format!("UID FETCH {}", mb.name), e))?
                };
                let entry = out.entry(mb.name.to_string()).or_default();
                for l in listed {
                    entry.push(ServerMessage {
                        identity: imap_identity(&ledger_key, &mb.name, sel.uidvalidity, l.uid),
                        label: format!("UIDVALIDITY {} UID {}", sel.uidvalidity, l.uid),
                    });
                }
            }
            let _ = client.logout();
        }
        Protocol::Pop3 => {
            let password = plan.password.read(&account)?;
            let (mut client, account) = crate::engine::pop3::connect(plan, &password)?;
            let mut warnings = Vec::new();
            let recorded_sha: HashMap<String, String> = rows
                .iter()
                .filter(|r| r.account == ledger_key)
                .map(|r| (r.identity.clone(), r.sha256.clone()))
                .collect();
            let listing = crate::engine::pop3::list(
                &mut client,
                &account,
                &ledger_key,
                &mut warnings,
                &recorded_sha,
            )?;
            let _ = client.quit();
            // Said only when the listing succeeded, as before the report.
            said.extend(warnings);
            let recorded: HashMap<String, Option<u64>> = rows
                .iter()
                .filter(|r| r.account == ledger_key)
                .map(|r| (r.identity.clone(), r.wire_size))
                .collect();
            let entry = out.entry("INBOX".to_string()).or_default();
            for m in listing {
                entry.push(ServerMessage {
                    identity: pop3_ledger_identity(&m.identity, m.octets, &recorded),
                    label: format!("UIDL {} (message {})", m.uidl, m.number),
                });
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msgs(ids: &[&str]) -> Vec<ServerMessage> {
        ids.iter()
            .map(|i| ServerMessage {
                identity: i.to_string(),
                label: format!("UID {i}"),
            })
            .collect()
    }

    #[test]
    fn comparing_with_the_server() {
        let server = BTreeMap::from([
            ("INBOX".to_string(), msgs(&["i1", "i2", "i3", "i4"])),
            ("Sent".to_string(), msgs(&["s1"])),
            ("New".to_string(), msgs(&["n1"])),
        ]);
        let archived = [
            ("INBOX", "i1"),
            ("INBOX", "i2"),
            ("INBOX", "i3"),
            ("INBOX", "old"),
            ("Sent", "s1"),
            ("Gone", "g1"),
        ];
        let bad = HashSet::from(["i2".to_string()]);
        let (rows, missing) = compare(&server, &archived, &bad);
        let table: Vec<(&str, u64, u64, u64, u64)> = rows
            .iter()
            .map(|r| {
                (
                    r.mailbox.as_str(),
                    r.on_server,
                    r.in_archive,
                    r.missing_from_archive,
                    r.only_in_archive,
                )
            })
            .collect();
        assert_eq!(
            table,
            vec![
                ("Gone", 0, 1, 0, 1),
                ("INBOX", 4, 4, 2, 1),
                ("New", 1, 0, 1, 0),
                ("Sent", 1, 1, 0, 0),
            ]
        );
        let m: Vec<(&str, &str, bool)> = missing
            .iter()
            .map(|m| (m.mailbox.as_str(), m.identity.as_str(), m.recorded))
            .collect();
        assert_eq!(
            m,
            vec![
                ("INBOX", "i2", true),
                ("INBOX", "i4", false),
                ("New", "n1", false)
            ]
        );
    }

    #[test]
    fn pop3_identities_follow_reused_uidls() {
        let recorded = HashMap::from([
            ("k UIDL a".to_string(), Some(100)),
            ("k UIDL b".to_string(), None),
        ]);
        assert_eq!(pop3_ledger_identity("k UIDL a", 100, &recorded), "k UIDL a");
        assert_eq!(
            pop3_ledger_identity("k UIDL a", 120, &recorded),
            "k UIDL a SIZE 120"
        );
        assert_eq!(pop3_ledger_identity("k UIDL a", 0, &recorded), "k UIDL a");
        assert_eq!(pop3_ledger_identity("k UIDL b", 7, &recorded), "k UIDL b");
        assert_eq!(pop3_ledger_identity("k UIDL c", 7, &recorded), "k UIDL c");
    }
}
