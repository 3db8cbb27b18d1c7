//! The largest message mailkeep accepts from any input (`--max-message-size`, docs/limits.md,
//! "Limits"): a server's literal or RETR, an mbox message, an `.eml` file, a zip entry. A
//! message above it is refused before it is allocated or written, named, and counted as a
//! failure of that message (exit 1); the next run tries it again.
//!
//! The limit is one process-wide setting, set once from the command line (or per job by
//! `mailkeep run`) before any input is read, and read by the protocol readers and archive
//! readers, which have no other knowledge of the command line.

use std::sync::atomic::{AtomicU64, Ordering};

/// The default limit, in bytes: 1 GiB.
pub const DEFAULT_MAX_MESSAGE_SIZE: u64 = 1 << 30;

static MAX_MESSAGE_SIZE: AtomicU64 = AtomicU64::new(DEFAULT_MAX_MESSAGE_SIZE);

/// The largest message accepted, in bytes.
pub fn max_message_size() -> u64 {
    MAX_MESSAGE_SIZE.load(Ordering::Relaxed)
}

/// Sets the largest message accepted, in bytes (at least 1).
pub fn set_max_message_size(bytes: u64) {
    MAX_MESSAGE_SIZE.store(bytes.max(1), Ordering::Relaxed);
}

/// A size for messages: `1 MiB` when it is a whole number of KiB, MiB or GiB, else
/// `N bytes`.
pub fn human(bytes: u64) -> String {
    for (shift, unit) in [(30, "GiB"), (20, "MiB"), (10, "KiB")] {
        if bytes >= 1 << shift && bytes % (1 << shift) == 0 {
            return format!("{} {unit}", bytes >> shift);
        }
    }
    format!("{bytes} bytes")
}

/// The one-line reason a message of `size` bytes (`None`: unknown, it went on past the
/// limit) is refused.
pub fn too_large(size: Option<u64>, limit: u64) -> String {
    match size {
        Some(n) => format!(
            "the message is {n} bytes, over the maximum message size of {} (--max-message-size); not stored",
            human(limit)
        ),
        None => format!(
            "the message goes on past the maximum message size of {} (--max-message-size); not stored",
            human(limit)
        ),
    }
}

/// Parses a size: plain bytes (`1048576`) or a number with a K, M or G suffix (powers of
/// 1024; `KiB`/`MiB`/`GiB` and `KB`/`MB`/`GB` are read the same; any case). Pure.
///
/// Errors: a one-line message for an empty, non-numeric, zero or overflowing size.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let shift = match unit.trim().to_ascii_uppercase().as_str() {
        "" | "B" => 0,
        "K" | "KB" | "KIB" => 10,
        "M" | "MB" | "MIB" => 20,
        "G" | "GB" | "GIB" => 30,
        _ => {
            return Err(format!(
                "`{s}` is not a size (bytes, or a number with K, M or G, e.g. 50M)"
            ))
        }
    };
    let n: u64 = digits.parse().map_err(|_| {
        format!("`{s}` is not a size (bytes, or a number with K, M or G, e.g. 50M)")
    })?;
    if n == 0 {
        return Err(format!("`{s}`: the size must be above 0"));
    }
    n.checked_mul(1u64 << shift)
        .ok_or_else(|| format!("`{s}` is too large a size"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        let table: &[(&str, Result<u64, &str>)] = &[
            ("1048576", Ok(1 << 20)),
            ("1K", Ok(1024)),
            ("1k", Ok(1024)),
            ("50M", Ok(50 << 20)),
            ("50MiB", Ok(50 << 20)),
            ("2 GB", Ok(2 << 30)),
            ("1G", Ok(1 << 30)),
            ("0", Err("`0`: the size must be above 0")),
            ("", Err("`` is not a size")),
            ("M", Err("`M` is not a size")),
            ("12T", Err("`12T` is not a size")),
            ("1.5M", Err("`1.5M` is not a size")),
            (
                "99999999999999999999",
                Err("`99999999999999999999` is not a size"),
            ),
            ("99999999999G", Err("`99999999999G` is too large a size")),
        ];
        for (input, want) in table {
            match (parse_size(input), want) {
                (Ok(n), Ok(w)) => assert_eq!(n, *w, "{input}"),
                (Err(e), Err(w)) => assert!(e.starts_with(w), "{input}: {e}"),
                (got, want) => panic!("{input}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn human_sizes() {
        assert_eq!(human(1 << 30), "1 GiB");
        assert_eq!(human(3 << 20), "3 MiB");
        assert_eq!(human(1536), "1536 bytes");
        assert_eq!(human(2048), "2 KiB");
    }
}
