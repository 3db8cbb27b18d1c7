//! Mailbox names between the archive and the server: a wire name decoded into its levels
//! (modified UTF-7, [`crate::core::mutf7`]), and levels encoded into the wire name for the
//! server's personal namespace, a delimiter inside a level substituted.

use super::*;

/// The character that stands for the hierarchy delimiter inside one level of a name (see
/// [`mailbox_wire_name`]); [`DELIMITER_SUBSTITUTE_FOR_UNDERSCORE`] when the delimiter is `_`.
pub const DELIMITER_SUBSTITUTE: char = '_';

/// The substitute used when the server's delimiter is itself `_`.
pub const DELIMITER_SUBSTITUTE_FOR_UNDERSCORE: char = '-';

/// Decodes a wire mailbox name: each level (split at `delimiter`) from modified UTF-7, a level
/// that does not decode kept as it is (never a panic, never a lost name); levels joined with
/// `/`, a `/` inside a level escaped (see [`MailboxName::from_levels`]); INBOX
/// case-insensitive.
pub fn decode_mailbox_name(wire: &str, delimiter: Option<char>) -> MailboxName {
    let levels: Vec<String> = match delimiter {
        Some(d) => wire
            .split(d)
            .map(|l| mutf7::decode(l).unwrap_or_else(|_| l.to_string()))
            .collect(),
        None => vec![mutf7::decode(wire).unwrap_or_else(|_| wire.to_string())],
    };
    MailboxName::from_levels(&levels)
}

/// The wire name of a mailbox given by its decoded levels (`["Projects", "2024"]`), for a
/// server with personal namespace `ns`. Pure.
///
/// - Each level is encoded in modified UTF-7 ([`mutf7::encode`]) and the levels are joined with
///   the server's delimiter; the namespace prefix (`INBOX.`) goes in front, with the delimiter
///   added if the prefix lacks it.
/// - INBOX (any case alone, exactly `INBOX` as a first level) stays `INBOX` (`INBOX`,
///   `INBOX.Sub`), never `INBOX.INBOX`.
/// - A level containing the delimiter cannot be created as one level: each delimiter in it
///   becomes [`DELIMITER_SUBSTITUTE`] (`_`; `-` when the delimiter is `_`). So on a `.` server
///   `example.org invoices` is `INBOX.example_org invoices`, and on a `/` server `A/B Testing`
///   is `A_B Testing` (case 11). [`wire_name_substitutions`] tells which levels changed.
/// - A flat namespace (`delimiter: None`) joins levels with `/`, which there is an ordinary
///   character (and what [`decode_mailbox_name`] gives back as levels).
///
/// Empty levels are kept (a server refuses `A..B`): callers pass real names.
pub fn mailbox_wire_name(levels: &[&str], ns: &Namespace) -> String {
    // Only INBOX itself is case-insensitive (RFC 3501 5.1): `inbox/Sub` is not `INBOX/Sub`.
    let inbox_first = match levels {
        [one] => one.eq_ignore_ascii_case("INBOX"),
        [first, ..] => *first == "INBOX",
        [] => false,
    };
    let joined = match ns.delimiter {
        None if inbox_first && levels.len() == 1 => "INBOX".to_string(),
        None => mutf7::encode(&levels.join("/")),
        Some(d) => levels
            .iter()
            .enumerate()
            .map(|(i, l)| {
                if i == 0 && inbox_first {
                    "INBOX".to_string()
                } else {
                    mutf7::encode(&substitute_delimiter(l, d))
                }
            })
            .collect::<Vec<_>>()
            .join(&d.to_string()),
    };
    if inbox_first || ns.prefix.is_empty() {
        return joined;
    }
    let mut prefix = ns.prefix.clone();
    if let Some(d) = ns.delimiter {
        if !prefix.ends_with(d) {
            prefix.push(d);
        }
    }
    prefix + &joined
}

/// The levels that [`mailbox_wire_name`] changes because they contain the delimiter (for the
/// report: "`example.org invoices` created as `example_org invoices`").
pub fn wire_name_substitutions(levels: &[&str], ns: &Namespace) -> Vec<String> {
    match ns.delimiter {
        Some(d) => levels
            .iter()
            .filter(|l| l.contains(d))
            .map(|l| l.to_string())
            .collect(),
        None => Vec::new(),
    }
}

fn substitute_delimiter(level: &str, delim: char) -> String {
    let sub = if delim == DELIMITER_SUBSTITUTE {
        DELIMITER_SUBSTITUTE_FOR_UNDERSCORE
    } else {
        DELIMITER_SUBSTITUTE
    };
    level.replace(delim, &sub.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mailbox_names_decode_per_level() {
        let n = decode_mailbox_name("Archive.2023", Some('.'));
        assert_eq!(n.as_str(), "Archive/2023");
        let n = decode_mailbox_name("&MNcw7TC4MKcwrzDI-/&iYt6TTCCMIo-", Some('/'));
        assert_eq!(n.as_str(), "プロジェクト/見積もり");
        let n = decode_mailbox_name("inbox", Some('/'));
        assert!(n.is_inbox());
        // Undecodable level kept raw; the others decoded.
        let n = decode_mailbox_name("Entw&APw-rfe.Tom & Jerry", Some('.'));
        assert_eq!(n.as_str(), "Entwürfe/Tom & Jerry");
        let n = decode_mailbox_name("Raw UTF-8 Entwürfe", None);
        assert_eq!(n.as_str(), "Raw UTF-8 Entwürfe");
        // Issue 14: `Work.x` (two levels) and `Work/x` (one level) on a `.` server.
        let two = decode_mailbox_name("Work.x", Some('.'));
        let one = decode_mailbox_name("Work/x", Some('.'));
        assert_ne!(two, one);
        assert_eq!(two.levels(), ["Work", "x"]);
        assert_eq!(one.levels(), ["Work/x"]);
        assert_eq!(one.as_str(), "Work%2Fx");
        assert_ne!(
            decode_mailbox_name("inbox.Sub", Some('.')),
            decode_mailbox_name("INBOX.Sub", Some('.'))
        );
    }

    fn ns(prefix: &str, delimiter: Option<char>) -> Namespace {
        Namespace {
            prefix: prefix.into(),
            delimiter,
        }
    }

    #[test]
    fn wire_names_per_namespace() {
        let slash = ns("", Some('/'));
        let dot_inbox = ns("INBOX.", Some('.'));
        let dot = ns("", Some('.'));
        let under = ns("", Some('_'));
        let flat = ns("", None);
        #[rustfmt::skip]
        let table: &[(&[&str], &Namespace, &str)] = &[
            // case 11, step 1: `/` source onto a Courier-style `INBOX.` server.
            (&["INBOX"], &dot_inbox, "INBOX"),
            (&["inbox"], &dot_inbox, "INBOX"),
            (&["Projects"], &dot_inbox, "INBOX.Projects"),
            (&["Projects", "2024"], &dot_inbox, "INBOX.Projects.2024"),
            (&["example.org invoices"], &dot_inbox, "INBOX.example_org invoices"),
            (&["v1.2 release", "notes"], &dot_inbox, "INBOX.v1_2 release.notes"),
            (&["INBOX", "Sub"], &dot_inbox, "INBOX.Sub"),
            // case 11, step 2: `.` source onto a `/` server.
            (&["Clients", "A/B Testing"], &slash, "Clients/A_B Testing"),
            (&["example.org invoices"], &slash, "example.org invoices"),
            (&["INBOX", "Sub"], &slash, "INBOX/Sub"),
            (&["inbox", "Sub"], &slash, "inbox/Sub"),
            // Prefix without its delimiter gets one.
            (&["Sent"], &ns("INBOX", Some('.')), "INBOX.Sent"),
            (&["Sent"], &ns("#mail/", Some('/')), "#mail/Sent"),
            // case 10: modified UTF-7 per level, `&` escaped, `+` plain.
            (&["日本語", "受信箱"], &dot, "&ZeVnLIqe-.&U9dP4Xux-"),
            (&["Entwürfe"], &slash, "Entw&APw-rfe"),
            (&["Tom & Jerry"], &slash, "Tom &- Jerry"),
            (&["Réponses 1200+1201"], &slash, "R&AOk-ponses 1200+1201"),
            (&["Cart\u{f3}rio"], &slash, "Cart&APM-rio"),
            // A `_` delimiter: `-` is the substitute.
            (&["a_b", "c"], &under, "a-b_c"),
            // Flat namespace: one name, `/` an ordinary character.
            (&["A", "B"], &flat, "A/B"),
            (&["INBOX"], &flat, "INBOX"),
        ];
        for (levels, n, want) in table {
            assert_eq!(mailbox_wire_name(levels, n), *want, "{levels:?} {n:?}");
        }
        assert_eq!(
            wire_name_substitutions(&["example.org invoices", "x"], &dot_inbox),
            ["example.org invoices"]
        );
        assert!(wire_name_substitutions(&["a.b"], &slash).is_empty());
        // What the backup side decodes gives the levels back.
        let w = mailbox_wire_name(&["日本語", "受信箱"], &dot);
        assert_eq!(decode_mailbox_name(&w, Some('.')).as_str(), "日本語/受信箱");
    }
}
