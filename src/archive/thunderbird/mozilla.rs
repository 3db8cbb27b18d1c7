//! Thunderbird's (and Netscape's) local bookkeeping in mbox messages: the `X-Mozilla-Status`,
//! `X-Mozilla-Status2` and `X-Mozilla-Keys` header lines it adds to each message, and the
//! separator line an export add-on leaves quoted at the top (`>From - …`).
//!
//! These lines were never on any server (shared/cases/03): [`strip`] removes them from the
//! header block, wherever they are in it (Netscape 3 put `X-Mozilla-Status` in the middle),
//! with their continuation lines, and turns them into flags:
//!
//! | `X-Mozilla-Status` bit | meaning | result |
//! | --- | --- | --- |
//! | 0x0001 | read | `\Seen` |
//! | 0x0002 | replied | `\Answered` |
//! | 0x0004 | marked (starred) | `\Flagged` |
//! | 0x0008 | expunged (deleted, folder not compacted) | not restored, counted as skipped |
//! | 0x1000 | forwarded | `$Forwarded` |
//!
//! `X-Mozilla-Status2` (the high 16 bits of the same flag word, as 8 hex digits): 0x00200000
//! (IMAP-deleted, an offline copy of a message marked `\Deleted` on the server) gives
//! `\Deleted`; a label 1–5 in bits 0x0E000000 gives the keyword `$label1`…`$label5`.
//! `X-Mozilla-Keys` is a space-separated keyword list (`$label1 work`), each kept as a keyword.
//! Other bits (has-Re, offline, new, attachment, ...) describe the local copy and are ignored.

use crate::core::message::{Flag, Flags};

/// What the Mozilla lines of one message said.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MozillaInfo {
    /// `X-Mozilla-Status`, parsed from hex.
    pub status: Option<u32>,
    /// `X-Mozilla-Status2`, parsed from hex.
    pub status2: Option<u32>,
    /// The words of `X-Mozilla-Keys`.
    pub keys: Vec<String>,
}

const READ: u32 = 0x0001;
const REPLIED: u32 = 0x0002;
const MARKED: u32 = 0x0004;
const EXPUNGED: u32 = 0x0008;
const FORWARDED: u32 = 0x1000;
const IMAP_DELETED: u32 = 0x0020_0000;
const LABELS: u32 = 0x0E00_0000;

impl MozillaInfo {
    /// True when Thunderbird marked the message expunged (deleted, not compacted yet).
    pub fn expunged(&self) -> bool {
        self.status.is_some_and(|s| s & EXPUNGED != 0)
    }

    /// The flags and keywords the lines give (see the module table).
    pub fn flags(&self) -> Flags {
        let mut f = Flags::new();
        let s = self.status.unwrap_or(0);
        for (bit, flag) in [
            (READ, Flag::Seen),
            (REPLIED, Flag::Answered),
            (MARKED, Flag::Flagged),
        ] {
            if s & bit != 0 {
                f.insert(flag);
            }
        }
        if s & FORWARDED != 0 {
            f.insert(Flag::Keyword("$Forwarded".into()));
        }
        let s2 = self.status2.unwrap_or(0);
        if s2 & IMAP_DELETED != 0 {
            f.insert(Flag::Deleted);
        }
        let label = (s2 & LABELS) >> 25;
        if label != 0 {
            f.insert(Flag::Keyword(format!("$label{label}")));
        }
        for k in &self.keys {
            if let Some(flag) = Flag::from_imap(k) {
                f.insert(flag);
            }
        }
        f
    }
}

fn parse_hex(v: &[u8]) -> Option<u32> {
    let s = std::str::from_utf8(v).ok()?.trim();
    u32::from_str_radix(s, 16).ok()
}

/// The message without leading `^>*From ` lines and without its `X-Mozilla-Status`,
/// `X-Mozilla-Status2` and `X-Mozilla-Keys` header lines (body untouched), and what those
/// lines said. Line ends are kept as they are.
///
/// Only the first line of each name is Thunderbird's: it adds each once per message. A second
/// one was in the message before (a message that once lived in a Thunderbird folder and was
/// sent on or archived elsewhere), so it is message content and stays.
pub fn strip(raw: &[u8]) -> (Vec<u8>, MozillaInfo) {
    let (raw, _) = crate::archive::reader::drop_leading_from_lines(raw);
    let end = crate::archive::reader::header_end(raw);
    let mut out = Vec::with_capacity(raw.len());
    let mut info = MozillaInfo::default();
    // Inside a dropped header (and whether it is `X-Mozilla-Keys`, whose folded lines hold
    // more keywords).
    let mut dropping = false;
    let mut in_keys = false;
    // Whether the Status, Status2 and Keys line was already taken.
    let mut taken = [false; 3];
    for line in raw[..end].split_inclusive(|&b| b == b'\n') {
        if line.starts_with(b" ") || line.starts_with(b"\t") {
            if in_keys {
                info.keys.extend(
                    String::from_utf8_lossy(line)
                        .split_whitespace()
                        .map(str::to_string),
                );
            }
            if !dropping {
                out.extend_from_slice(line);
            }
            continue;
        }
        dropping = false;
        in_keys = false;
        if let Some(colon) = line.iter().position(|&b| b == b':') {
            let name = line[..colon].trim_ascii();
            let value = line[colon + 1..].trim_ascii();
            if name.eq_ignore_ascii_case(b"X-Mozilla-Status") && !taken[0] {
                taken[0] = true;
                info.status = parse_hex(value);
                dropping = true;
            } else if name.eq_ignore_ascii_case(b"X-Mozilla-Status2") && !taken[1] {
                taken[1] = true;
                info.status2 = parse_hex(value);
                dropping = true;
            } else if name.eq_ignore_ascii_case(b"X-Mozilla-Keys") && !taken[2] {
                taken[2] = true;
                info.keys.extend(
                    String::from_utf8_lossy(value)
                        .split_whitespace()
                        .map(str::to_string),
                );
                dropping = true;
                in_keys = true;
            }
        }
        if !dropping {
            out.extend_from_slice(line);
        }
    }
    out.extend_from_slice(&raw[end..]);
    (out, info)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_line_of_the_same_name_is_message_content() {
        // Thunderbird's own lines come first; the message already carried an
        // X-Mozilla-Status2 and an X-Mozilla-Keys of its own (spamassassin corpus).
        let raw = b"X-Mozilla-Status: 0001\nX-Mozilla-Status2: 00000000\nX-Mozilla-Keys: \nFrom: a\nX-Mozilla-Status2: 00000000\nX-Mozilla-Keys: old\n\nbody\n";
        let (out, info) = strip(raw);
        assert_eq!(
            out,
            b"From: a\nX-Mozilla-Status2: 00000000\nX-Mozilla-Keys: old\n\nbody\n"
        );
        assert_eq!(info.status, Some(1));
        assert!(info.keys.is_empty());
    }

    #[test]
    fn strips_and_reads_flags() {
        let raw = b">From - Sat Apr 12 15:59:28 2025\nX-Mozilla-Status: 0003\nX-Mozilla-Status2: 04000000\nX-Mozilla-Keys: $label1 work  \n   more\nFrom: a\nX-Mozilla-Status: 0001\r\n\r\nX-Mozilla-Status: 0008\n";
        let (out, info) = strip(raw);
        // The second X-Mozilla-Status is the message's own (see the test above).
        assert_eq!(
            out,
            b"From: a\nX-Mozilla-Status: 0001\r\n\r\nX-Mozilla-Status: 0008\n"
        );
        assert_eq!(info.status, Some(3));
        assert_eq!(info.status2, Some(0x0400_0000));
        assert_eq!(info.keys, ["$label1", "work", "more"]);
        assert_eq!(
            info.flags().to_imap_list(),
            "\\Seen \\Answered $label1 $label2 more work"
        );
        assert!(!info.expunged());
        let (_, info) = strip(b"X-Mozilla-Status: 0009\n\n");
        assert!(info.expunged());
        assert_eq!(info.flags().to_imap_list(), "\\Seen");
        let (_, info) = strip(b"X-Mozilla-Status: 1006\nX-Mozilla-Status2: 00200000\n\n");
        assert_eq!(
            info.flags().to_imap_list(),
            "\\Answered \\Flagged \\Deleted $Forwarded"
        );
        let (out, info) = strip(b"Subject: x\n\nbody\n");
        assert_eq!(out, b"Subject: x\n\nbody\n");
        assert_eq!(info, MozillaInfo::default());
        assert!(info.flags().is_empty());
        let (out, _) = strip(b"X-Mozilla-Status: zz\n");
        assert_eq!(out, b"");
    }
}
