//! Regression tests from fuzzing (scripts/fuzz.sh, fuzz/): every input that once crashed a fuzz
//! target, run through the same wrappers (`mailkeep_fuzz`, fuzz/src/lib.rs) on stable
//! `cargo test`, with the exact result now expected; and every committed seed (fuzz/seeds/<target>/) through its
//! target's property checks.

use std::path::Path;

use mailkeep_fuzz as fuzzing;

/// Runs `f` on every seed of `target`; returns how many there were.
fn run_seeds(target: &str, f: fn(&[u8])) -> usize {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/seeds")
        .join(target);
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).expect("the seed folder") {
        let path = entry.expect("a seed").path();
        let data = std::fs::read(&path).expect("a readable seed");
        let r = std::panic::catch_unwind(|| f(&data));
        assert!(r.is_ok(), "seed {} broke a property", path.display());
        n += 1;
    }
    n
}

#[test]
fn every_seed_passes_its_targets_checks() {
    let counts = [
        ("pop3", run_seeds("pop3", fuzzing::fuzz_pop3)),
        ("mbox", run_seeds("mbox", fuzzing::fuzz_mbox)),
        ("maildir", run_seeds("maildir", fuzzing::fuzz_maildir)),
        ("mutf7", run_seeds("mutf7", fuzzing::fuzz_mutf7)),
        ("endpoint", run_seeds("endpoint", fuzzing::fuzz_endpoint)),
        ("runconf", run_seeds("runconf", fuzzing::fuzz_runconf)),
        ("imap", run_seeds("imap", fuzzing::fuzz_imap)),
        ("date", run_seeds("date", fuzzing::fuzz_date)),
    ];
    for (target, n) in counts {
        assert!(n >= 5, "{target}: only {n} seeds");
    }
}

/// A crash input kept in fuzz/regressions/<target>/.
fn crash(target: &str, name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/regressions")
        .join(target)
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// pop3, found in the first seconds: a status line with a control character was quoted raw in
/// the protocol error (a multi-line error; terminal escapes from a server). Fixed in
/// `pop3::shorten` and `parse_status` (control characters escaped).
#[test]
fn pop3_status_line_with_control_characters_is_one_line_error() {
    let data = crash("pop3", "crash-8095c4a963d1b65e1370486f1fa04303c508787b");
    assert_eq!(data, b"\xb7\x03+OK");
    fuzzing::fuzz_pop3(&data);
    assert_eq!(
        mailkeep::protocol::pop3::parse_status(b"\x03+OK"),
        Err("`\\u{3}+OK`".to_string())
    );
    assert_eq!(
        fuzzing::pop3_session(b"\x03+OK\r\n", 64),
        Err("protocol error: a reply is neither +OK nor -ERR: `\\u{3}+OK`".to_string())
    );
    // The same for the text of an -ERR, which errors quote.
    assert_eq!(
        fuzzing::pop3_session(b"-ERR locked\r\x1b[2J now\r\n", 3),
        Err("the server answered -ERR to `connect`: locked\\r\\u{1b}[2J now".to_string())
    );
}

/// endpoint: the unknown scheme and the port were quoted with their control characters.
/// Fixed in `endpoint::parse_server` (every reason escaped).
#[test]
fn endpoint_errors_escape_control_characters() {
    let data = crash("endpoint", "crash-1f65db5c8e5eb255d01fb1de10238c3178131752");
    fuzzing::fuzz_endpoint(&data);
    assert_eq!(
        fuzzing::endpoint_parse("`\0APS://\0Me~@Host:0").unwrap_err(),
        "``\\u{0}APS://\\u{0}Me~@Host:0`: unknown scheme ``\\u{0}aps://` (use pop3s://, pop3://, imaps:// or imap://)"
    );
    let data = crash("endpoint", "crash-9b4d3565387fb72c42ea38e5ddb37e8768afe401");
    fuzzing::fuzz_endpoint(&data);
    assert_eq!(
        fuzzing::endpoint_parse("pop3://u@h:1\r2").unwrap_err(),
        "`pop3://u@h:1\\r2`: port `1\\r2` is not a number from 1 to 65535"
    );
}

/// runconf: a TOML error's key, taken from the line, kept its control characters. Fixed in
/// `runconf::Errs` (key and message escaped).
#[test]
fn config_errors_escape_control_characters() {
    let data = crash("runconf", "crash-ac941ee3e395a96dd520be767e0a0fe38a38cb29");
    fuzzing::fuzz_runconf(&data);
    let text = std::str::from_utf8(&data).unwrap();
    assert_eq!(
        fuzzing::runconf_parse(text).unwrap_err(),
        "/fuzz/mailkeep.toml:1: accoun\\u{1}\\u{0}\\u{0}\\u{0}\\u{0}\\u{0}\\u{0}Yendpoint = \"imap//u@h\": unclosed table, expected `]`"
    );
}

/// imap: FETCH parse errors quoted the server's line with its control characters (NUL in an
/// item name; bytes after a UID). Fixed in `imap_fetch::ParseError`'s Display.
#[test]
fn fetch_parse_errors_escape_control_characters() {
    let data = crash("imap", "crash-4814dd84ed5a75c0bda9f7882d226a7a5237e175");
    fuzzing::fuzz_imap(&data);
    let (responses, end) = fuzzing::imap_responses(&data[1..], usize::MAX);
    assert_eq!(responses.len(), 10);
    assert_eq!(
        end,
        "Parse: malformed FETCH response for UID 1: the item list is not closed (`* 1 FETCH (UID 1 RFC822.SIZE 272 BODY[HEADER.FIEL\\u{0}\\u{0}\\u{0}\\u{0}\\u{0}\\u{0}DS (MESSAGE-ID)] {39}`)"
    );
    let data = crash("imap", "crash-d5d7a8c3e9322d300285ace32bd0850240d93b18");
    fuzzing::fuzz_imap(&data);
    let (responses, end) = fuzzing::imap_responses(b"* 2 FETCH (UID 2\x04 FLAGS ())\r\n", 1);
    assert!(responses.is_empty());
    assert_eq!(
        end,
        "Parse: malformed FETCH response for UID 2: UID is not a number: `2\\u{4}` (`* 2 FETCH (UID 2\\u{4} FLAGS ())`)"
    );
}

/// maildir, found by the CI fuzzing pass after issue 14: a mailbox name whose Maildir++ folder
/// is longer than a file name may be is shortened with a hash (issue 14's injective names),
/// and its mailbox is then read back from the name file inside the folder, not from the name;
/// the target still asserted that the name alone reads back. The target now asserts the
/// shortened folder is at most 255 bytes and reads back from its name as nothing.
#[test]
fn maildir_a_shortened_folder_reads_back_from_its_name_file() {
    let data = crash("maildir", "crash-2a5cbb54ca90834e87177926fc99ad4cd724a107");
    assert_eq!(data[0] % 3, 2, "mode 2: a mailbox name");
    fuzzing::fuzz_maildir(&data);
    let (folder, back) = fuzzing::maildir_folder(&String::from_utf8_lossy(&data[1..]));
    assert!(
        mailkeep::archive::maildir::writer::is_shortened(&folder),
        "{folder:?}"
    );
    assert!(folder.len() <= 255);
    assert_eq!(back, None);
}
