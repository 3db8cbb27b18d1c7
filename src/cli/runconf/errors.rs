//! The wording of the config file's errors: one line naming the file, the line and the key
//! (`/home/alice/.config/mailkeep/config.toml:7: jobs.nightly.archiv: unknown field ...`), with
//! a suggestion for a likely typo of a key (`(did you mean `archive`?)`), and the command
//! line's option names in shared messages rewritten into the file's keys (`--keep-days` into
//! `keep_days`). Pure.

use std::ops::Range;
use std::path::Path;

use super::account::ACCOUNT_KEYS;
use super::job::KINDS;
use crate::core::error::Error;

/// The 1-based line of byte `offset` in `text`.
pub(super) fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// Builds errors that name the file, the line and the key.
pub(super) struct Errs<'a> {
    pub(super) path: &'a Path,
    pub(super) text: &'a str,
}

impl Errs<'_> {
    pub(super) fn at(&self, span: &Range<usize>, key: &str, msg: impl std::fmt::Display) -> Error {
        // Messages shared with the command line name its options; here they are keys.
        let msg = option_names_as_keys(&msg.to_string()).replace('\n', " ");
        // One line: control characters of the file (in a key, a quoted value) escaped.
        let escape = crate::core::endpoint::escape_controls;
        Error::Usage(format!(
            "{}:{}: {}: {}",
            self.path.display(),
            line_of(self.text, span.start),
            escape(key),
            escape(msg.trim())
        ))
    }

    /// A TOML syntax or type error: the table is the last `[header]` before the error, the key
    /// the one on the error's line (or the text the error points at).
    pub(super) fn toml(&self, e: &toml::de::Error) -> Error {
        // serde's words for TOML's: a field is a key; the refused secret keys are not offered.
        let msg = e
            .message()
            .trim()
            .replace('\n', " ")
            .replace("unknown field", "unknown key")
            .replace("missing field", "missing key")
            .replace(", `password`", "")
            .replace(", `oauth2_token`", "")
            // and TOML's words for Rust's types.
            .replace("expected u16", "expected a whole number")
            .replace("expected u32", "expected a whole number")
            .replace("expected u64", "expected a whole number")
            .replace(
                "expected a sequence",
                "expected an array such as [\"INBOX\"]",
            )
            .replace("expected a string", "expected a string in double quotes");
        let msg = crate::core::endpoint::escape_controls(&with_suggestion(&msg));
        let Some(span) = e.span() else {
            return Error::Usage(format!("{}: {msg}", self.path.display()));
        };
        let start = span.start.min(self.text.len());
        let line_start = self.text[..start].rfind('\n').map_or(0, |i| i + 1);
        let line_end = self.text[start..]
            .find('\n')
            .map_or(self.text.len(), |i| start + i);
        let line = self.text[line_start..line_end].trim();
        let table = self.text[..line_start]
            .lines()
            .rev()
            .map(str::trim)
            .find(|l| l.starts_with('['))
            .map(|l| {
                l.trim_start_matches('[')
                    .split(']')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_string()
            });
        let key = if line.starts_with('[') {
            String::new()
        } else if let Some((k, _)) = line.split_once('=') {
            k.trim().to_string()
        } else {
            self.text.get(span.clone()).unwrap_or("").trim().to_string()
        };
        let key = if line.starts_with('[') {
            line.trim_start_matches('[')
                .split(']')
                .next()
                .unwrap_or("")
                .trim()
                .to_string()
        } else {
            match (table, key.is_empty()) {
                (Some(t), false) => format!("{t}.{key}"),
                (Some(t), true) => t,
                (None, _) => key,
            }
        };
        if key.is_empty() {
            Error::Usage(format!(
                "{}:{}: {msg}",
                self.path.display(),
                line_of(self.text, start)
            ))
        } else {
            self.at(&span, &key, msg)
        }
    }
}

/// `unknown key `exlude`, expected one of `kind`, ..., `exclude`, ...` with `(did you mean
/// `exclude`?)` after the unknown key, when one of the keys is a likely typo of it. Pure.
fn with_suggestion(msg: &str) -> String {
    let Some(rest) = msg.strip_prefix("unknown key `") else {
        return msg.to_string();
    };
    let Some((typo, expected)) = rest.split_once('`') else {
        return msg.to_string();
    };
    let wanted = typo.to_ascii_lowercase().replace('-', "_");
    let best = expected
        .split('`')
        .skip(1)
        .step_by(2)
        .map(|k| (edit_distance(&wanted, k), k))
        .min();
    match best {
        Some((d, k)) if d <= 2 && d < k.len() / 2 + 1 => {
            format!("unknown key `{typo}` (did you mean `{k}`?){expected}")
        }
        _ => msg.to_string(),
    }
}

/// Levenshtein distance of two short ASCII words. Pure.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<u8> = b.bytes().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.bytes().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = if ca == *cb {
                prev
            } else {
                1 + prev.min(row[j]).min(cur)
            };
            prev = cur;
        }
    }
    row[b.len()]
}

/// The `--name` options written in a message, in order.
pub(super) fn option_tokens(msg: &str) -> impl Iterator<Item = &str> {
    msg.match_indices("--").filter_map(move |(i, _)| {
        let before_ok = msg[..i]
            .chars()
            .next_back()
            .is_none_or(|c| !(c.is_alphanumeric() || c == '-'));
        let after = &msg[i + 2..];
        let end = after
            .find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'))
            .unwrap_or(after.len());
        let name = after[..end].trim_end_matches('-');
        (before_ok && !name.is_empty() && !name.starts_with('-')).then_some(name)
    })
}

/// The config file's key for a command-line option of a job or an account (`keep-days` is
/// `keep_days`, `jobs` is `connections`, `source-tls-ca` is `tls_ca`), if there is one. Pure.
fn key_of_option(option: &str) -> Option<&'static str> {
    if option == "jobs" {
        return Some("connections");
    }
    let bare = option
        .strip_prefix("source-")
        .or_else(|| option.strip_prefix("target-"))
        .unwrap_or(option)
        .replace('-', "_");
    ACCOUNT_KEYS
        .iter()
        .chain(KINDS.iter().flat_map(|(_, keys)| keys.iter()))
        .find(|k| **k == bare)
        .copied()
}

/// Rewrites the command-line option names in a message into the config file's keys
/// (`--keep-days` into `keep_days`, `pass --tls-ca FILE` into `pass tls_ca FILE`), for errors
/// about a job. Only options that are keys are rewritten: other text with dashes (a mailbox
/// `Old--2019`, a server's reply) stays as it is. Pure.
pub fn option_names_as_keys(msg: &str) -> String {
    let mut out = String::with_capacity(msg.len());
    let mut done = 0;
    for name in option_tokens(msg) {
        // `name` borrows from `msg`: its offset, less the two dashes, is where the option is.
        let at = name.as_ptr() as usize - msg.as_ptr() as usize - 2;
        if let Some(key) = key_of_option(name) {
            out.push_str(&msg[done..at]);
            out.push_str(key);
            done = at + 2 + name.len();
        }
    }
    out.push_str(&msg[done..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn option_names_become_keys() {
        let cases = [
            (
                "--delete-after-backup and --keep-days are for POP3 sources",
                "delete_after_backup and keep_days are for POP3 sources",
            ),
            ("--tls-ca /x: cannot read", "tls_ca /x: cannot read"),
            ("--jobs 3", "connections 3"),
            ("--source-auth apop", "auth apop"),
            ("a -- b", "a -- b"),
            ("no options", "no options"),
            (
                "certificate verify failed — pass --tls-ca FILE to trust a private CA",
                "certificate verify failed — pass tls_ca FILE to trust a private CA",
            ),
            // Only options that are keys: mailbox names and other options stay as they are.
            ("mailbox Old--2019: NO", "mailbox Old--2019: NO"),
            ("mailbox --keep: NO", "mailbox --keep: NO"),
            ("--since 2024-01-01", "--since 2024-01-01"),
            (
                "--source-password-env and --target-tls-ca",
                "password_env and tls_ca",
            ),
        ];
        for (msg, want) in cases {
            assert_eq!(option_names_as_keys(msg), want);
        }
    }
}
