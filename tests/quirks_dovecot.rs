//! The quirk matrix rows a real server can produce on demand (issue 15): Dovecot accepts
//! mailbox names holding `"` and `\` (and `*`/`%`-free punctuation), which it lists as quoted
//! strings with escapes. Before mailkeep read IMAP answers itself, the STATUS answer for such
//! a name could not be parsed and the whole account stopped (exit 7, nothing archived).
//! Here: backup into Maildir and mbox, restore into another account, migrate IMAP to IMAP,
//! each byte-exact with flags and dates, and reruns that move nothing.

mod support;

use std::collections::BTreeMap;

use support::dovecot::{Dovecot, User};
use support::run::{as_user, migrate, Run, Side};

/// Mailbox names as the user sees them, and on disk in Dovecot's Maildir++ layout (`.` is the
/// separator there; these have none).
const NAMES: &[&str] = &[
    "Re: \"quoted\" things",
    "C:\\Users\\mail",
    "back\\slash \"both\"",
];

fn body(tag: &str) -> Vec<u8> {
    format!(
        "From: Ann <ann@example.com>\nTo: Bob <bob@example.org>\nSubject: {tag}\nMessage-ID: <{tag}@quirks.example>\nDate: Tue, 4 Mar 2014 10:00:00 +0100\n\nThe {tag} message.\n"
    )
    .into_bytes()
}

/// Seeds INBOX and the three quirky mailboxes: two messages each, flags and dates differing.
fn seed(u: &User) -> BTreeMap<String, Vec<(Vec<u8>, String, i64)>> {
    let mut want = BTreeMap::new();
    for (i, name) in std::iter::once(&"INBOX").chain(NAMES).enumerate() {
        let mut msgs = Vec::new();
        for j in 0..2 {
            let b = body(&format!("m{i}-{j}"));
            let flags = if j == 0 { "S" } else { "FS" };
            let date = 1_400_000_000 + (i as i64) * 86_400 + j as i64 * 3_600;
            u.seed_message(name, &b, flags, Some(date));
            msgs.push((b, flags.to_string(), date));
        }
        want.insert(name.to_string(), msgs);
    }
    want
}

/// The messages of each mailbox of `u` as Dovecot holds them (bytes, Maildir flags, mtime =
/// INTERNALDATE), sorted.
fn held(u: &User) -> BTreeMap<String, Vec<(Vec<u8>, String, i64)>> {
    std::iter::once(&"INBOX")
        .chain(NAMES)
        .map(|name| {
            let mut v = support::run::dovecot_mailbox(u, name);
            v.sort();
            (name.to_string(), v)
        })
        .collect()
}

fn per_mailbox(r: &Run) -> BTreeMap<String, (u64, u64)> {
    r.report["mailboxes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["mailbox"].as_str().unwrap().to_string(),
                (
                    m["on_server"].as_u64().unwrap(),
                    m["fetched"].as_u64().unwrap_or(0),
                ),
            )
        })
        .collect()
}

#[test]
fn names_with_quotes_and_backslashes_back_up_restore_and_migrate() {
    let d = Dovecot::start();
    let u = d.add_user("quirky", "quirky-pw");
    let seeded = seed(&u);
    let url = d.url("imaps", &u);
    let tmp = tempfile::tempdir().unwrap();

    for kind in ["maildir", "mbox"] {
        let archive = format!("{kind}:{}", tmp.path().join(kind).display());
        let r = as_user(&d, &u, &["backup", &url, &archive]);
        assert_eq!(r.code, 0, "{kind}: {r:#?}");
        let want: BTreeMap<String, (u64, u64)> = std::iter::once(&"INBOX")
            .chain(NAMES)
            .map(|n| (n.to_string(), (2, 2)))
            .collect();
        assert_eq!(per_mailbox(&r), want, "{kind}");
        assert_eq!((r.n("listed"), r.n("fetched")), (8, 8), "{kind}");
        // A rerun moves nothing.
        let again = as_user(&d, &u, &["backup", &url, &archive]);
        assert_eq!(again.code, 0, "{kind}: {again:#?}");
        assert_eq!(
            (again.n("fetched"), again.n("already_archived")),
            (0, 8),
            "{kind}"
        );

        // Restore into an empty account: the same mailboxes, bytes, flags and dates.
        let v = d.add_user(&format!("restored-{kind}"), "restored-pw");
        let target = d.url("imaps", &v);
        let r = as_user(&d, &v, &["restore", &archive, &target]);
        assert_eq!(r.code, 0, "{kind} restore: {r:#?}");
        assert_eq!(held(&v), seeded, "{kind} restore");
        let again = as_user(&d, &v, &["restore", &archive, &target]);
        assert_eq!(again.code, 0, "{kind} restore rerun: {again:#?}");
        assert_eq!(held(&v), seeded, "{kind} restore rerun: nothing duplicated");
    }

    // Migrate IMAP to IMAP.
    let w = d.add_user("migrated", "migrated-pw");
    let state = tmp.path().join("state");
    let r = migrate(
        &Side::of(&d, "imaps", &u),
        &Side::of(&d, "imaps", &w),
        &state,
        &[],
    );
    assert_eq!(r.code, 0, "migrate: {r:#?}");
    assert_eq!(held(&w), seeded, "migrate");
    let again = migrate(
        &Side::of(&d, "imaps", &u),
        &Side::of(&d, "imaps", &w),
        &state,
        &[],
    );
    assert_eq!(again.code, 0, "migrate rerun: {again:#?}");
    assert_eq!(held(&w), seeded, "migrate rerun");
}
