//! `mailkeep list SOURCE` and `mailkeep quota SOURCE`: read-only questions to an IMAP account.
//! Each returns its report ([`ServerListing`], [`QuotaReport`]); printing them is
//! `cli::render`'s.

use crate::core::error::{Exit, Result};
use crate::engine::imap::{connect, imap_error, read_secret};
use crate::engine::plans::ServerQuery;
use crate::engine::report::{human_bytes, QuotaLine};

/// One mailbox as `list` shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct MailboxLine {
    /// Decoded name, levels joined with `/`.
    pub mailbox: String,
    /// RFC 6154 special use (`sent`, `trash`, ...), if the server says.
    pub special_use: Option<String>,
    /// Messages (STATUS MESSAGES), or `None` for a `\Noselect` mailbox.
    pub messages: Option<u32>,
    /// Total size in octets: the sum of the messages' RFC822.SIZE.
    pub size: Option<u64>,
    pub uidvalidity: Option<u32>,
    pub uidnext: Option<u32>,
}

/// What `list SOURCE` found: the account's mailboxes. Printed as [`table`], or (`--json`) as
/// the array of `mailboxes`.
#[derive(Debug, Clone)]
pub struct ServerListing {
    pub mailboxes: Vec<MailboxLine>,
    /// Always ok: a failure is an error.
    pub exit: Exit,
}

/// Lists the account's mailboxes with counts and sizes.
pub fn list(q: &ServerQuery) -> Result<ServerListing> {
    let account = q.source.spec.account();
    let mut client = connect(&q.source, &read_secret(&q.source)?)?;
    let boxes = client
        .list_mailboxes()
        .map_err(|e| imap_error(&account, "LIST", e))?;
    let mut lines = Vec::new();
    for mb in &boxes {
        let mut line = MailboxLine {
            mailbox: mb.name.to_string(),
            special_use: mb.special_use.map(|s| format!("{s:?}").to_lowercase()),
            messages: None,
            size: None,
            uidvalidity: None,
            uidnext: None,
        };
        if mb.selectable {
            let st = client
                .status_or_examine(mb)
                .map_err(|e| imap_error(&account, &format!("STATUS {}", mb.name), e))?;
            line.messages = Some(st.messages);
            line.uidvalidity = Some(st.uidvalidity);
            line.uidnext = st.uidnext;
            // The size: the sum of RFC822.SIZE (STATUS SIZE, RFC 8438, is not parsed by the
            // IMAP library), read-only with EXAMINE.
            if st.messages > 0 {
                client
                    .examine(mb)
                    .map_err(|e| imap_error(&account, &format!("EXAMINE {}", mb.name), e))?;
                let listed = client
                    .list_messages(None)
                    .map_err(|e| imap_error(&account, &format!("UID FETCH {}", mb.name), e))?;
                line.size = Some(listed.iter().map(|l| l.size).sum());
            } else {
                line.size = Some(0);
            }
        }
        lines.push(line);
    }
    let _ = client.logout();
    Ok(ServerListing {
        mailboxes: lines,
        exit: Exit::Ok,
    })
}

/// The `list` table: the MAILBOX column padded by display width, so a CJK name (two columns
/// a character) lines up with the others. Pure.
pub fn table(lines: &[MailboxLine]) -> String {
    use crate::engine::inspect::{pad_to_width, width};
    let cols = lines
        .iter()
        .map(|l| width(&l.mailbox))
        .max()
        .unwrap_or(7)
        .max(7);
    let mut out = format!(
        "{}  {:>9}  {:>10}\n",
        pad_to_width("MAILBOX", cols),
        "MESSAGES",
        "SIZE"
    );
    for l in lines {
        let msgs = l
            .messages
            .map(|m| m.to_string())
            .unwrap_or_else(|| "-".into());
        let size = l.size.map(human_bytes).unwrap_or_else(|| "-".into());
        let special = l
            .special_use
            .as_deref()
            .map(|s| format!("  ({s})"))
            .unwrap_or_default();
        out += &format!(
            "{}  {msgs:>9}  {size:>10}{special}\n",
            pad_to_width(&l.mailbox, cols)
        );
    }
    let total: u64 = lines.iter().filter_map(|l| l.messages).map(u64::from).sum();
    let bytes: u64 = lines.iter().filter_map(|l| l.size).sum();
    out += &format!(
        "{} mailboxes, {total} messages, {}\n",
        lines.len(),
        human_bytes(bytes)
    );
    out
}

/// What `quota SOURCE` found.
#[derive(Debug, Clone)]
pub struct QuotaReport {
    /// The account as shown everywhere (`alice@imap.example.com:993`).
    pub account: String,
    /// False when the server has no QUOTA capability (nothing was asked).
    pub supported: bool,
    /// Usage and limit per resource of INBOX's quota roots.
    pub lines: Vec<QuotaLine>,
    /// `--warn-at`, percent.
    pub warn_at: u8,
    /// Partial (exit 1) when a resource is at or above `warn_at` percent.
    pub exit: Exit,
}

impl QuotaReport {
    /// The resources at or above `warn_at` percent.
    pub fn over(&self) -> impl Iterator<Item = &QuotaLine> {
        self.lines
            .iter()
            .filter(|l| l.percent >= f64::from(self.warn_at))
    }
}

/// Asks for usage and limit per quota root (GETQUOTAROOT INBOX, RFC 9208 4.2 / RFC 2087);
/// exit 1 when a resource is at or above `warn_at` percent.
pub fn quota(q: &ServerQuery) -> Result<QuotaReport> {
    let account = q.source.spec.account();
    let mut client = connect(&q.source, &read_secret(&q.source)?)?;
    let mut report = QuotaReport {
        account: account.clone(),
        supported: true,
        lines: Vec::new(),
        warn_at: q.warn_at,
        exit: Exit::Ok,
    };
    if !client.capabilities().has("QUOTA") {
        let _ = client.logout();
        report.supported = false;
        return Ok(report);
    }
    let boxes = client
        .list_mailboxes()
        .map_err(|e| imap_error(&account, "LIST", e))?;
    let inbox = boxes
        .iter()
        .find(|m| m.name.is_inbox())
        .cloned()
        .or_else(|| boxes.first().cloned());
    if let Some(inbox) = inbox {
        let roots = client
            .quota_roots(&inbox)
            .map_err(|e| imap_error(&account, "GETQUOTAROOT", e))?;
        for r in &roots {
            report.lines.extend(QuotaLine::from_root(r));
        }
    }
    let _ = client.logout();
    if report.over().next().is_some() {
        report.exit = Exit::Partial;
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_list_table_aligns_wide_names_by_display_width() {
        let line = |name: &str, n: Option<u32>| MailboxLine {
            mailbox: name.into(),
            special_use: None,
            messages: n,
            size: n.map(|n| u64::from(n) * 100),
            uidvalidity: None,
            uidnext: None,
        };
        let t = table(&[
            line("日本語", Some(1)),
            line("Sent", Some(2)),
            line("Archive", None),
        ]);
        assert_eq!(
            t,
            [
                "MAILBOX   MESSAGES        SIZE",
                "日本語           1       100 B",
                "Sent             2       200 B",
                "Archive          -           -",
                "3 mailboxes, 3 messages, 300 B\n",
            ]
            .join("\n")
        );
    }
}
