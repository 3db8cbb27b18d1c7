//! IMAP backup against a real Dovecot (issue 3): the whole shared corpus across Unicode-named
//! folders into Maildir and mbox with exact bytes, flags, keywords and dates, served back by a
//! second Dovecot; incremental runs and flag changes; UIDVALIDITY changes (case 13); folder
//! selection and `--mirror`; `--dedup`; folder names (cases 10 and 11); memory with a 40 MB
//! message and with thousands of small ones; `list` and `quota`; the errors a user meets.
//!
//! Each test runs the real binary with `--json` against its own Dovecot instance. What the
//! archive should hold is computed from the seeded files and the harness's model of how
//! Dovecot serves them (`wire_form`, then CRLF -> LF), never from mailkeep's own code; the
//! served-back check reads the archive over a raw IMAP session (native-tls, no mailkeep code).

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use mailkeep::core::message::normalize;
use support::dovecot::{wire_form, Dovecot, Options, User};
use support::run::{digests, mbox_messages, Run};

const PW_VAR: &str = "MAILKEEP_TEST_PASSWORD";

// ---------------------------------------------------------------------------------------------
// Running mailkeep

/// `mailkeep <sub> <scheme>://user@127.0.0.1:port [archive] --tls-ca .. --password-env .. <extra>`.
fn mailkeep(
    d: &Dovecot,
    u: &User,
    sub: &str,
    scheme: &str,
    archive: Option<&str>,
    extra: &[&str],
) -> Run {
    let mut cmd = support::mailkeep();
    cmd.arg(sub).arg(d.url(scheme, u));
    if let Some(a) = archive {
        cmd.arg(a);
    }
    cmd.arg("--tls-ca")
        .arg(&d.ca_pem)
        .args(["--password-env", PW_VAR])
        .args(extra)
        .env(PW_VAR, &u.password);
    Run::from_output(cmd.output().unwrap())
}

/// `mailkeep backup imaps://... ARCHIVE --json <extra>`.
fn backup(d: &Dovecot, u: &User, archive: &str, extra: &[&str]) -> Run {
    let mut args = vec!["--json"];
    args.extend_from_slice(extra);
    mailkeep(d, u, "backup", "imaps", Some(archive), &args)
}

fn maildir_arg(dir: &Path) -> String {
    format!("maildir:{}", dir.display())
}

fn mbox_arg(dir: &Path) -> String {
    format!("mbox:{}", dir.display())
}

/// The per-mailbox entries of a backup report, by mailbox name.
fn per_mailbox(run: &Run) -> BTreeMap<String, serde_json::Value> {
    run.report["mailboxes"]
        .as_array()
        .unwrap_or_else(|| panic!("no mailboxes in report: {run:#?}"))
        .iter()
        .map(|m| (m["mailbox"].as_str().unwrap().to_string(), m.clone()))
        .collect()
}

/// `(mailbox, key)` -> number, for the mailboxes of a backup report.
fn mailbox_counts(run: &Run, key: &str) -> BTreeMap<String, u64> {
    per_mailbox(run)
        .into_iter()
        .map(|(k, v)| (k, v[key].as_u64().unwrap()))
        .collect()
}

fn warnings(run: &Run) -> Vec<String> {
    run.report["warnings"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|w| w.as_str().unwrap_or_default().to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// What `mailkeep list --json` says: mailbox -> (messages, uidvalidity).
fn list_json(d: &Dovecot, u: &User) -> BTreeMap<String, (Option<u64>, Option<u64>)> {
    let run = mailkeep(d, u, "list", "imaps", None, &["--json"]);
    run.assert_code(0);
    run.report
        .as_array()
        .unwrap_or_else(|| panic!("list --json printed no array: {run:#?}"))
        .iter()
        .map(|l| {
            (
                l["mailbox"].as_str().unwrap().to_string(),
                (l["messages"].as_u64(), l["uidvalidity"].as_u64()),
            )
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Expected values and reading archives back

/// A message as the archive should hold it: digest of the stored bytes, IMAP flags (system
/// flags as `\Seen` etc., keywords as spelled), INTERNALDATE.
type Expect = (String, BTreeSet<String>, i64);

fn sha(b: &[u8]) -> String {
    digests([b]).remove(0)
}

/// The bytes mailkeep should store for a seeded file: Dovecot's IMAP `BODY[]` with CRLF -> LF.
fn stored_form(raw: &[u8]) -> Vec<u8> {
    normalize(&wire_form(raw, false))
}

fn system_flag(letter: char) -> Option<&'static str> {
    Some(match letter {
        'D' => "\\Draft",
        'F' => "\\Flagged",
        'R' => "\\Answered",
        'S' => "\\Seen",
        'T' => "\\Deleted",
        _ => return None,
    })
}

/// IMAP flags of Maildir info letters, keywords looked up in `keywords` (letter -> keyword).
fn flags_of_info(info: &str, keywords: &BTreeMap<char, String>) -> BTreeSet<String> {
    info.chars()
        .map(|c| match system_flag(c) {
            Some(f) => f.to_string(),
            None => keywords
                .get(&c)
                .unwrap_or_else(|| panic!("info letter {c:?} not in dovecot-keywords {keywords:?}"))
                .clone(),
        })
        .collect()
}

fn flag_set(list: &str) -> BTreeSet<String> {
    list.split_whitespace()
        .filter(|f| !f.eq_ignore_ascii_case("\\Recent"))
        .map(str::to_string)
        .collect()
}

/// A folder's `dovecot-keywords` (letter -> keyword).
fn read_keywords(folder: &Path) -> BTreeMap<char, String> {
    let text = std::fs::read_to_string(folder.join("dovecot-keywords")).unwrap_or_default();
    text.lines()
        .filter_map(|l| {
            let (n, k) = l.split_once(' ')?;
            let n: u8 = n.parse().ok()?;
            Some(((b'a' + n) as char, k.to_string()))
        })
        .collect()
}

/// One message file of a Maildir folder.
#[derive(Debug)]
struct MaildirFile {
    path: PathBuf,
    info: String,
    bytes: Vec<u8>,
    mtime: i64,
}

fn maildir_files(folder: &Path) -> Vec<MaildirFile> {
    let mut out = Vec::new();
    for sub in ["cur", "new"] {
        let Ok(rd) = std::fs::read_dir(folder.join(sub)) else {
            continue;
        };
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            let info = name.split_once(":2,").map(|(_, i)| i).unwrap_or("");
            out.push(MaildirFile {
                path: e.path(),
                info: info.to_string(),
                bytes: std::fs::read(e.path()).unwrap(),
                mtime: e.metadata().unwrap().mtime(),
            });
        }
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out
}

/// What a Maildir archive folder holds, as sorted `Expect`s.
fn maildir_state(folder: &Path) -> Vec<Expect> {
    let kw = read_keywords(folder);
    let mut v: Vec<Expect> = maildir_files(folder)
        .iter()
        .map(|f| (sha(&f.bytes), flags_of_info(&f.info, &kw), f.mtime))
        .collect();
    v.sort();
    v
}

/// One row of the ledger's `messages` table.
#[derive(Debug, Clone)]
struct LedgerRow {
    mailbox: String,
    uidvalidity: Option<i64>,
    uid: Option<i64>,
    flags: String,
    internal_date: i64,
    sha256: String,
    location: String,
}

fn ledger(archive: &Path) -> Vec<LedgerRow> {
    let db = rusqlite::Connection::open_with_flags(
        archive.join("mailkeep/ledger.sqlite"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    let mut st = db
        .prepare(
            "SELECT mailbox, uidvalidity, uid, flags, internal_date, sha256, location \
             FROM messages ORDER BY mailbox, uid",
        )
        .unwrap();
    st.query_map([], |r| {
        Ok(LedgerRow {
            mailbox: r.get(0)?,
            uidvalidity: r.get(1)?,
            uid: r.get(2)?,
            flags: r.get(3)?,
            internal_date: r.get(4)?,
            sha256: r.get(5)?,
            location: r.get(6)?,
        })
    })
    .unwrap()
    .map(Result::unwrap)
    .collect()
}

/// The ledger's view of an archive: mailbox -> sorted `Expect`s.
fn ledger_state(archive: &Path) -> BTreeMap<String, Vec<Expect>> {
    let mut out: BTreeMap<String, Vec<Expect>> = BTreeMap::new();
    for r in ledger(archive) {
        out.entry(r.mailbox.clone()).or_default().push((
            r.sha256.clone(),
            flag_set(&r.flags),
            r.internal_date,
        ));
    }
    for v in out.values_mut() {
        v.sort();
    }
    out
}

/// Chowns `path` (recursively) to the owner of `like`: the harness makes Dovecot's storage
/// belong to the mail uid (`nobody` when the tests run as root).
fn chown_like(path: &Path, like: &Path) {
    let md = std::fs::metadata(like).unwrap();
    let st = Command::new("chown")
        .arg("-R")
        .arg(format!("{}:{}", md.uid(), md.gid()))
        .arg(path)
        .status()
        .unwrap();
    assert!(st.success());
}

/// Writes a `dovecot-keywords` file into a Dovecot folder (before Dovecot first reads it).
fn seed_keywords(u: &User, mailbox: &str, text: &str) {
    let dir = u.ensure_mailbox(mailbox);
    let file = dir.join("dovecot-keywords");
    std::fs::write(&file, text).unwrap();
    chown_like(&file, &dir);
}

/// Copies an archive tree into a Dovecot user's mail location (as a user restoring it would).
fn install_as_mail_location(archive: &Path, u: &User) {
    let owner = u.maildir.parent().unwrap().join(".owner-probe");
    std::fs::create_dir(&owner).unwrap();
    chown_like(&owner, &u.maildir);
    let st = Command::new("cp")
        .arg("-a")
        .arg(format!("{}/.", archive.display()))
        .arg(&u.maildir)
        .status()
        .unwrap();
    assert!(st.success());
    chown_like(&u.maildir, &owner);
    std::fs::remove_dir(&owner).unwrap();
}

// ---------------------------------------------------------------------------------------------
// A raw IMAP session (native-tls), independent of mailkeep's client

trait Stream: Read + Write {}
impl<T: Read + Write> Stream for T {}

/// One untagged response: its text with each literal replaced by `{}`, and the literals.
#[derive(Debug)]
struct Untagged {
    text: String,
    literals: Vec<Vec<u8>>,
}

struct RawImap {
    s: BufReader<Box<dyn Stream>>,
    n: u32,
}

impl RawImap {
    fn login(d: &Dovecot, u: &User) -> RawImap {
        let pem = std::fs::read(&d.ca_pem).unwrap();
        let connector = native_tls::TlsConnector::builder()
            .add_root_certificate(native_tls::Certificate::from_pem(&pem).unwrap())
            .disable_built_in_roots(true)
            .build()
            .unwrap();
        let tcp = TcpStream::connect(("127.0.0.1", d.imaps_port)).unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let tls = connector.connect("localhost", tcp).unwrap();
        let mut c = RawImap {
            s: BufReader::new(Box::new(tls)),
            n: 0,
        };
        let mut greeting = Vec::new();
        c.s.read_until(b'\n', &mut greeting).unwrap();
        c.cmd(&format!("LOGIN \"{}\" \"{}\"", u.name, u.password));
        c
    }

    /// Sends a command; returns its untagged responses; panics unless the reply is OK.
    fn cmd(&mut self, cmd: &str) -> Vec<Untagged> {
        self.n += 1;
        let tag = format!("t{}", self.n);
        let w = self.s.get_mut();
        w.write_all(format!("{tag} {cmd}\r\n").as_bytes()).unwrap();
        w.flush().unwrap();
        let mut out = Vec::new();
        let mut cur = Untagged {
            text: String::new(),
            literals: Vec::new(),
        };
        loop {
            let mut buf = Vec::new();
            self.s.read_until(b'\n', &mut buf).unwrap();
            assert!(!buf.is_empty(), "connection closed during {cmd}");
            let line = String::from_utf8_lossy(&buf).into_owned();
            if cur.text.is_empty() && line.starts_with(&format!("{tag} ")) {
                assert!(line.starts_with(&format!("{tag} OK")), "{cmd}: {line}");
                return out;
            }
            let body = line.trim_end_matches(['\r', '\n']);
            if let Some(open) = body.rfind('{').filter(|_| body.ends_with('}')) {
                let n: usize = body[open + 1..body.len() - 1]
                    .trim_start_matches('~')
                    .parse()
                    .unwrap();
                let mut lit = vec![0; n];
                self.s.read_exact(&mut lit).unwrap();
                cur.text.push_str(&body[..open]);
                cur.text.push_str("{}");
                cur.literals.push(lit);
                continue;
            }
            cur.text.push_str(body);
            out.push(std::mem::replace(
                &mut cur,
                Untagged {
                    text: String::new(),
                    literals: Vec::new(),
                },
            ));
        }
    }

    /// Selectable mailboxes as LIST shows them (wire names).
    fn mailboxes(&mut self) -> BTreeSet<String> {
        self.cmd("LIST \"\" \"*\"")
            .into_iter()
            .filter(|r| r.text.starts_with("* LIST "))
            .filter(|r| !r.text.to_ascii_lowercase().contains("\\noselect"))
            .map(|r| {
                // * LIST (attrs) "." name
                let after = &r.text[r.text.find(')').unwrap() + 2..];
                let name = after.split_once(' ').unwrap().1;
                if let Some(q) = name.strip_prefix('"') {
                    q.strip_suffix('"')
                        .unwrap()
                        .replace("\\\"", "\"")
                        .replace("\\\\", "\\")
                } else {
                    name.to_string()
                }
            })
            .collect()
    }

    /// Every message of a mailbox (EXAMINE; BODY.PEEK[] so nothing changes): (uid, flags,
    /// INTERNALDATE, body).
    fn messages(&mut self, mailbox: &str) -> Vec<(u32, BTreeSet<String>, i64, Vec<u8>)> {
        self.cmd(&format!("EXAMINE \"{mailbox}\""));
        self.cmd("UID FETCH 1:* (UID FLAGS INTERNALDATE BODY.PEEK[])")
            .into_iter()
            .filter(|r| r.text.contains(" FETCH ("))
            .map(|mut r| {
                let t = &r.text;
                let uid: u32 = t[t.find("UID ").unwrap() + 4..]
                    .split([' ', ')'])
                    .next()
                    .unwrap()
                    .parse()
                    .unwrap();
                let f = &t[t.find("FLAGS (").unwrap() + 7..];
                let flags = flag_set(&f[..f.find(')').unwrap()]);
                let dt = &t[t.find("INTERNALDATE \"").unwrap() + 14..];
                let date = parse_internaldate(&dt[..dt.find('"').unwrap()]);
                (uid, flags, date, r.literals.remove(0))
            })
            .collect()
    }

    /// The flags of every message of an EXAMINEd/SELECTed mailbox, by UID.
    fn flags(&mut self) -> BTreeMap<u32, BTreeSet<String>> {
        self.cmd("UID FETCH 1:* (UID FLAGS)")
            .into_iter()
            .filter(|r| r.text.contains(" FETCH ("))
            .map(|r| {
                let t = &r.text;
                let uid: u32 = t[t.find("UID ").unwrap() + 4..]
                    .split([' ', ')'])
                    .next()
                    .unwrap()
                    .parse()
                    .unwrap();
                let f = &t[t.find("FLAGS (").unwrap() + 7..];
                (uid, flag_set(&f[..f.find(')').unwrap()]))
            })
            .collect()
    }

    fn logout(mut self) {
        self.n += 1;
        let _ = self
            .s
            .get_mut()
            .write_all(format!("t{} LOGOUT\r\n", self.n).as_bytes());
    }
}

/// `"17-Jul-2017 02:40:00 +0200"` -> Unix seconds.
fn parse_internaldate(s: &str) -> i64 {
    let s = s.trim();
    let (date, rest) = s.split_once(' ').unwrap();
    let (time, zone) = rest.split_once(' ').unwrap();
    let mut dp = date.split('-');
    let day: i64 = dp.next().unwrap().trim().parse().unwrap();
    let mon = dp.next().unwrap();
    let month = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ]
    .iter()
    .position(|m| *m == mon)
    .unwrap_or_else(|| panic!("month in {s:?}")) as i64
        + 1;
    let year: i64 = dp.next().unwrap().parse().unwrap();
    let hms: Vec<i64> = time.split(':').map(|x| x.parse().unwrap()).collect();
    // Days from civil (Howard Hinnant).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let sign = if zone.starts_with('-') { -1 } else { 1 };
    let zh: i64 = zone[1..3].parse().unwrap();
    let zm: i64 = zone[3..5].parse().unwrap();
    days * 86_400 + hms[0] * 3600 + hms[1] * 60 + hms[2] - sign * (zh * 3600 + zm * 60)
}

/// Checks that Dovecot, serving `archive` as `u`'s mail location, lists exactly the
/// `expected` mailboxes (wire names) and serves each message with the expected bytes (after
/// CRLF -> LF), flags and INTERNALDATE.
///
/// Returns the mailboxes Dovecot lists beyond those (see
/// `dovecot_serving_an_archive_shows_no_state_mailbox`).
fn check_served_back(archive: &Path, expected: &BTreeMap<String, Vec<Expect>>) -> BTreeSet<String> {
    let d2 = Dovecot::start();
    let u2 = d2.add_user("restored", "restored-pw");
    install_as_mail_location(archive, &u2);
    let mut c = RawImap::login(&d2, &u2);
    let listed = c.mailboxes();
    let want: BTreeSet<String> = expected.keys().cloned().collect();
    let extra: BTreeSet<String> = listed.difference(&want).cloned().collect();
    assert!(
        want.is_subset(&listed) && extra.is_empty(),
        "Dovecot serving the Maildir archive lists other mailboxes: {listed:?}, want {want:?}"
    );
    for (wire, want) in expected {
        let mut got: Vec<Expect> = c
            .messages(wire)
            .into_iter()
            .map(|(_, flags, date, body)| (sha(&normalize(&body)), flags, date))
            .collect();
        got.sort();
        assert_eq!(got.len(), want.len(), "{wire}: message count served back");
        let missing: Vec<&Expect> = want.iter().filter(|e| !got.contains(e)).collect();
        let unexpected: Vec<&Expect> = got.iter().filter(|e| !want.contains(e)).collect();
        assert!(
            &got == want,
            "{wire}: Dovecot serves other bytes/flags/dates than were backed up: \
             missing {missing:?}, served instead {unexpected:?}"
        );
    }
    c.logout();
    extra
}

// ---------------------------------------------------------------------------------------------
// 1. The corpus across folders

/// Folders of the corpus test (IMAP names, `/` = hierarchy).
const CORPUS_FOLDERS: [&str; 7] = [
    "INBOX",
    "Sent",
    "Archive/2023",
    "日本語/受信箱",
    "Entwürfe",
    "📦 Pakete",
    "Tom & Jerry",
];

/// Folders given a `dovecot-keywords` file (keywords `$Work` = a, `Later` = b).
const KEYWORD_FOLDERS: [&str; 3] = ["INBOX", "Archive/2023", "日本語/受信箱"];
const KEYWORDS: &str = "0 $Work\n1 Later\n";

const SYSTEM_INFOS: [&str; 9] = ["", "S", "FS", "RS", "D", "T", "FRS", "DS", "ST"];

#[test]
fn corpus_across_unicode_folders_is_exact_in_maildir_and_mbox_and_served_back() {
    let d = Dovecot::start();
    let u = d.add_user("corpus", "c0rpus-pw");
    let corpus = support::corpus::all();
    assert_eq!(corpus.len(), support::corpus::CORPUS_TOTAL);
    for f in KEYWORD_FOLDERS {
        seed_keywords(&u, f, KEYWORDS);
    }
    let kw: BTreeMap<char, String> = [('a', "$Work".to_string()), ('b', "Later".to_string())]
        .into_iter()
        .collect();
    let mut expected: BTreeMap<&str, Vec<Expect>> = BTreeMap::new();
    let mut served_expected: BTreeMap<&str, Vec<Expect>> = BTreeMap::new();
    let mut round_trip_differs = Vec::new();
    for (i, m) in corpus.iter().enumerate() {
        let folder = CORPUS_FOLDERS[(i * 7 + i / 5) % CORPUS_FOLDERS.len()];
        let mut info = SYSTEM_INFOS[i % SYSTEM_INFOS.len()].to_string();
        if KEYWORD_FOLDERS.contains(&folder) {
            if i % 4 == 0 {
                info.push('a');
            }
            if i % 6 == 1 {
                info.push('b');
            }
        }
        let date = 1_300_000_000 + i as i64 * 7_919;
        u.seed_message(folder, &m.raw, &info, Some(date));
        let stored = stored_form(&m.raw);
        let flags = flags_of_info(&info, &kw);
        // Served back from the archive file: Dovecot's wire form of the stored bytes. It
        // differs from the stored bytes (after CRLF -> LF) only where the stored form holds a
        // CR before an LF (bare-CR messages): LF storage cannot tell `\r\n` from `\r` + line
        // end, and Dovecot leaves an existing CRLF alone.
        let again = normalize(&wire_form(&stored, false));
        if again != stored {
            round_trip_differs.push(m.origin.clone());
        }
        served_expected
            .entry(folder)
            .or_default()
            .push((sha(&again), flags.clone(), date));
        expected
            .entry(folder)
            .or_default()
            .push((sha(&stored), flags, date));
    }
    for v in expected.values_mut().chain(served_expected.values_mut()) {
        v.sort();
    }
    let counts: BTreeMap<String, u64> = expected
        .iter()
        .map(|(k, v)| (k.to_string(), v.len() as u64))
        .collect();
    assert_eq!(counts.len(), 7);

    // Dovecot itself reports the seeded keywords.
    let mut c = RawImap::login(&d, &u);
    let ex = c.cmd("EXAMINE INBOX");
    let flags_line = ex
        .iter()
        .find(|r| r.text.starts_with("* FLAGS"))
        .unwrap()
        .text
        .clone();
    assert!(
        flags_line.contains("$Work") && flags_line.contains("Later"),
        "{flags_line}"
    );
    let by_uid = c.flags();
    assert!(by_uid[&1].contains("$Work"), "{:?}", by_uid[&1]);
    c.logout();

    let tmp = tempfile::tempdir().unwrap();
    let mdir = tmp.path().join("maildir");
    let t0 = Instant::now();
    let run = backup(&d, &u, &maildir_arg(&mdir), &[]);
    let first_secs = t0.elapsed().as_secs_f64();
    run.assert_code(0);
    assert_eq!(run.n("listed"), corpus.len() as u64);
    assert_eq!(run.n("fetched"), corpus.len() as u64);
    assert_eq!(mailbox_counts(&run, "fetched"), counts);
    assert_eq!(mailbox_counts(&run, "on_server"), counts);
    assert!(run.report["failures"].as_array().unwrap().is_empty());

    // Maildir: folder names as Dovecot spells them; bytes, flags, keywords and mtimes.
    for (folder, want) in &expected {
        let dir = if *folder == "INBOX" {
            mdir.clone()
        } else {
            mdir.join(u.mailbox_dir(folder).file_name().unwrap())
        };
        let got = maildir_state(&dir);
        assert_eq!(
            got.len(),
            want.len(),
            "{folder}: files in the Maildir archive"
        );
        assert!(
            &got == want,
            "{folder}: bytes/flags/dates differ in Maildir"
        );
    }
    // Every ledger record points at its file.
    for r in ledger(&mdir) {
        assert!(
            mdir.join(&r.location).exists() || {
                let p = mdir.join(&r.location);
                std::fs::read_dir(p.parent().unwrap())
                    .unwrap()
                    .flatten()
                    .any(|e| {
                        e.file_name()
                            .to_string_lossy()
                            .starts_with(p.file_name().unwrap().to_str().unwrap())
                    })
            },
            "ledger location {} has no file",
            r.location
        );
    }

    // mbox: one file per mailbox; bytes from the files, flags/dates from the ledger.
    let xdir = tmp.path().join("mbox");
    let run = backup(&d, &u, &mbox_arg(&xdir), &[]);
    run.assert_code(0);
    assert_eq!(mailbox_counts(&run, "fetched"), counts);
    let lstate = ledger_state(&xdir);
    for (folder, want) in &expected {
        let msgs = mbox_messages(&xdir.join(format!("{folder}.mbox")));
        let want_digests: Vec<String> = want.iter().map(|e| e.0.clone()).sorted_vec();
        assert_eq!(
            digests(msgs.iter().map(Vec::as_slice)),
            want_digests,
            "{folder}: mbox bytes"
        );
        assert!(
            lstate.get(*folder) == Some(want),
            "{folder}: ledger flags/dates/digests differ for mbox"
        );
    }
    assert_eq!(lstate.len(), expected.len());

    // The second run of an unchanged account fetches nothing and is quick.
    let t0 = Instant::now();
    let again = backup(&d, &u, &maildir_arg(&mdir), &[]);
    let second_secs = t0.elapsed().as_secs_f64();
    again.assert_code(0);
    assert_eq!(
        (again.n("fetched"), again.n("already_archived")),
        (0, corpus.len() as u64)
    );
    eprintln!(
        "corpus {} messages: first IMAP backup {first_secs:.2} s, unchanged rerun {second_secs:.2} s",
        corpus.len()
    );

    // A second Dovecot serves the Maildir archive with the same folders, bytes, flags, dates.
    let served: BTreeMap<String, Vec<Expect>> = served_expected
        .iter()
        .map(|(folder, v)| {
            let wire = if *folder == "INBOX" {
                "INBOX".to_string()
            } else {
                u.mailbox_dir(folder).file_name().unwrap().to_string_lossy()[1..].to_string()
            };
            (wire, v.clone())
        })
        .collect();
    check_served_back(&mdir, &served);
    eprintln!(
        "corpus: {} message(s) come back from Dovecot with other bytes than stored \
         (a CR before a line end): {round_trip_differs:?}",
        round_trip_differs.len()
    );
}

/// Dovecot lists every `.`-directory of a Maildir++ root as a mailbox, so the archive's state
/// directory `mailkeep/` shows up as a mailbox `mailkeep` when the archive is served as a
/// mail location.
#[test]
fn dovecot_serving_an_archive_shows_no_state_mailbox() {
    let d = Dovecot::start();
    let u = d.add_user("state", "state-pw");
    u.seed_message("INBOX", &small("state", 0), "S", Some(1_650_000_000));
    u.seed_message("Sent", &small("state", 1), "", Some(1_650_000_100));
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("a");
    backup(&d, &u, &maildir_arg(&dir), &[]).assert_code(0);
    let want: BTreeMap<String, Vec<Expect>> = [
        (
            "INBOX".to_string(),
            vec![expect(&small("state", 0), &["\\Seen"], 1_650_000_000)],
        ),
        (
            "Sent".to_string(),
            vec![expect(&small("state", 1), &[], 1_650_000_100)],
        ),
    ]
    .into_iter()
    .collect();
    let extra = check_served_back(&dir, &want);
    assert!(
        extra.is_empty(),
        "Dovecot lists {extra:?} besides the archived mailboxes"
    );
}

type Snapshot = BTreeMap<String, (Vec<u8>, i64)>;

/// `support::run::snapshot` without SQLite's `-wal`/`-shm` side files, which come and go with
/// readers (this test's ledger reads included).
fn archive_snapshot(dir: &Path) -> Snapshot {
    let mut s = support::run::snapshot(dir);
    s.retain(|k, _| !k.ends_with("-wal") && !k.ends_with("-shm"));
    s
}

/// The paths that differ between two snapshots (added, removed, or other bytes/mtime).
fn snapshot_diff(before: &Snapshot, after: &Snapshot) -> Vec<String> {
    let mut out = Vec::new();
    for (k, v) in before {
        match after.get(k) {
            None => out.push(format!("-{k}")),
            Some(w) if w.1 != v.1 => out.push(format!("~{k} (mtime {} -> {})", v.1, w.1)),
            Some(w) if w.0 != v.0 => out.push(format!("~{k} (bytes)")),
            _ => {}
        }
    }
    for k in after.keys() {
        if !before.contains_key(k) {
            out.push(format!("+{k}"));
        }
    }
    out
}

trait SortedVec {
    fn sorted_vec(self) -> Vec<String>;
}

impl<I: Iterator<Item = String>> SortedVec for I {
    fn sorted_vec(self) -> Vec<String> {
        let mut v: Vec<String> = self.collect();
        v.sort();
        v
    }
}

// ---------------------------------------------------------------------------------------------
// 2. Incremental runs, flag changes, \Seen untouched

fn small(tag: &str, i: usize) -> Vec<u8> {
    format!(
        "From: Sender {i} <s{i}@example.com>\nTo: r@example.org\nSubject: {tag} {i}\n\
         Message-ID: <{tag}-{i}@example.com>\n\nbody of {tag} {i}\n"
    )
    .into_bytes()
}

fn expect(raw: &[u8], flags: &[&str], date: i64) -> Expect {
    (
        sha(&stored_form(raw)),
        flags.iter().map(|f| f.to_string()).collect(),
        date,
    )
}

fn sorted(mut v: Vec<Expect>) -> Vec<Expect> {
    v.sort();
    v
}

#[test]
fn incremental_runs_fetch_only_new_mail_bring_flag_changes_and_never_set_seen() {
    let d = Dovecot::start();
    let u = d.add_user("incr", "incr-pw");
    let date = |i: usize| 1_600_000_000 + i as i64 * 3_600;
    let inbox: Vec<Vec<u8>> = (0..6).map(|i| small("inbox", i)).collect();
    let work: Vec<Vec<u8>> = (0..4).map(|i| small("work", i)).collect();
    for (i, m) in inbox.iter().enumerate() {
        u.seed_message("INBOX", m, "", Some(date(i)));
    }
    let mut work_files = Vec::new();
    for (i, m) in work.iter().enumerate() {
        let f = if i % 2 == 0 { "S" } else { "" };
        work_files.push(u.seed_message("Work", m, f, Some(date(10 + i))));
    }
    let tmp = tempfile::tempdir().unwrap();
    let mdir = tmp.path().join("maildir");
    let xdir = tmp.path().join("mbox");
    for arch in [maildir_arg(&mdir), mbox_arg(&xdir)] {
        let run = backup(&d, &u, &arch, &[]);
        run.assert_code(0);
        assert_eq!(run.n("fetched"), 10, "{arch}");
    }

    // The mbox `From ` lines carry the INTERNALDATE (UTC, asctime form).
    let text = String::from_utf8(std::fs::read(xdir.join("INBOX.mbox")).unwrap()).unwrap();
    let from_dates: Vec<i64> = text
        .lines()
        .filter(|l| l.starts_with("From "))
        .map(|l| {
            let t: Vec<&str> = l.split_whitespace().rev().take(4).collect();
            // [year, time, day, month]
            parse_internaldate(&format!("{}-{}-{} {} +0000", t[2], t[3], t[0], t[1]))
        })
        .collect();
    assert_eq!(from_dates, (0..6).map(date).collect::<Vec<_>>());

    // A backup never sets \Seen (nor anything else) on the server.
    for f in u.message_files("INBOX") {
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            name.ends_with(":2,"),
            "backup changed a server file: {name}"
        );
    }
    let mut c = RawImap::login(&d, &u);
    c.cmd("EXAMINE INBOX");
    assert!(
        c.flags().values().all(BTreeSet::is_empty),
        "server flags changed"
    );

    // Nothing new: nothing fetched, nothing changed, quick.
    let before = archive_snapshot(&mdir);
    let t0 = Instant::now();
    let again = backup(&d, &u, &maildir_arg(&mdir), &[]);
    let secs = t0.elapsed().as_secs_f64();
    again.assert_code(0);
    assert_eq!(
        (
            again.n("fetched"),
            again.n("already_archived"),
            again.n("flags_updated")
        ),
        (0, 10, 0)
    );
    assert!(secs < 5.0, "an unchanged rerun took {secs:.2} s");
    assert!(
        archive_snapshot(&mdir) == before,
        "a run with nothing new changed the archive"
    );

    // Flags change on the server: by IMAP STORE (a system flag and a new keyword) in INBOX,
    // and by another Maildir writer renaming a file in Work.
    c.cmd("SELECT INBOX");
    c.cmd("UID STORE 1 +FLAGS.SILENT (\\Flagged \\Seen)");
    c.cmd("UID STORE 2 +FLAGS.SILENT ($Work)");
    c.cmd("UNSELECT");
    let renamed = work_files[1].to_string_lossy().replace(":2,", ":2,R");
    std::fs::rename(&work_files[1], &renamed).unwrap();
    c.logout();

    for (arch, dir) in [(maildir_arg(&mdir), &mdir), (mbox_arg(&xdir), &xdir)] {
        let run = backup(&d, &u, &arch, &[]);
        run.assert_code(0);
        assert_eq!(
            (run.n("fetched"), run.n("flags_updated")),
            (0, 3),
            "{arch}: {run:#?}"
        );
        assert_eq!(
            mailbox_counts(&run, "flags_updated"),
            [("INBOX".to_string(), 2), ("Work".to_string(), 1)]
                .into_iter()
                .collect()
        );
        let want_inbox = sorted(
            inbox
                .iter()
                .enumerate()
                .map(|(i, m)| match i {
                    0 => expect(m, &["\\Flagged", "\\Seen"], date(i)),
                    1 => expect(m, &["$Work"], date(i)),
                    _ => expect(m, &[], date(i)),
                })
                .collect(),
        );
        let want_work = sorted(
            work.iter()
                .enumerate()
                .map(|(i, m)| match i {
                    1 => expect(m, &["\\Answered"], date(10 + i)),
                    _ if i % 2 == 0 => expect(m, &["\\Seen"], date(10 + i)),
                    _ => expect(m, &[], date(10 + i)),
                })
                .collect(),
        );
        let ls = ledger_state(dir);
        assert_eq!(ls["INBOX"], want_inbox, "{arch}: ledger INBOX");
        assert_eq!(ls["Work"], want_work, "{arch}: ledger Work");
        if dir == &mdir {
            assert_eq!(maildir_state(&mdir), want_inbox, "Maildir INBOX files");
            assert_eq!(
                maildir_state(&mdir.join(".Work")),
                want_work,
                "Maildir Work"
            );
            assert_eq!(
                read_keywords(&mdir).get(&'a').map(String::as_str),
                Some("$Work")
            );
        }
    }

    // New mail in two folders (and none in a third).
    u.seed_message("Empty", b"Subject: x\n\ny\n", "", Some(date(30)));
    let r = backup(&d, &u, &maildir_arg(&mdir), &[]);
    r.assert_code(0);
    assert_eq!(r.n("fetched"), 1);
    let new_in: Vec<Vec<u8>> = (6..8).map(|i| small("inbox", i)).collect();
    for (k, m) in new_in.iter().enumerate() {
        u.seed_message("INBOX", m, "", Some(date(20 + k)));
    }
    u.seed_message("Work", &small("work", 4), "F", Some(date(25)));
    for arch in [maildir_arg(&mdir), mbox_arg(&xdir)] {
        let run = backup(&d, &u, &arch, &[]);
        run.assert_code(0);
        let fetched = mailbox_counts(&run, "fetched");
        let want_total = if arch.starts_with("mbox") { 4 } else { 3 };
        assert_eq!(run.n("fetched"), want_total, "{arch}: {fetched:?}");
        assert_eq!(fetched["INBOX"], 2);
        assert_eq!(fetched["Work"], 1);
    }
    let names: Vec<_> = maildir_files(&mdir)
        .iter()
        .map(|f| f.info.clone())
        .collect();
    assert_eq!(names.len(), 8);
    let work_now = maildir_state(&mdir.join(".Work"));
    assert!(work_now.contains(&expect(&small("work", 4), &["\\Flagged"], date(25))));
    // Still nothing \Seen on the server that was not \Seen before.
    for f in u.message_files("INBOX").iter().skip(1) {
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        assert!(!name.contains(":2,S") && !name.ends_with('S'), "{name}");
    }
}

// ---------------------------------------------------------------------------------------------
// 3. UIDVALIDITY changes (case 13)

fn case_dir(prefix: &str) -> PathBuf {
    let root = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/cases"));
    std::fs::read_dir(&root)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.file_name().unwrap().to_string_lossy().starts_with(prefix))
        .unwrap_or_else(|| panic!("no case {prefix} in {}", root.display()))
}

/// 02..05-Dec-2024 10:00:05 +0000, the INTERNALDATEs of case 13.
fn case13_date(i: usize) -> i64 {
    1_733_133_605 + i as i64 * 86_400
}

fn case13_messages() -> Vec<Vec<u8>> {
    let dir = case_dir("13-");
    (1..=4)
        .map(|i| std::fs::read(dir.join(format!("m{i}.eml"))).unwrap())
        .collect()
}

#[test]
fn uidvalidity_change_stores_only_the_new_message_and_warns_once() {
    let d = Dovecot::start();
    let u = d.add_user("uidv", "uidv-pw");
    let m = case13_messages();
    for (i, raw) in m.iter().take(3).enumerate() {
        u.seed_message("Archive", raw, "S", Some(case13_date(i)));
    }
    let v1 = list_json(&d, &u)["Archive"].1.unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let mdir = tmp.path().join("maildir");
    let xdir = tmp.path().join("mbox");
    for arch in [maildir_arg(&mdir), mbox_arg(&xdir)] {
        let run = backup(&d, &u, &arch, &[]);
        run.assert_code(0);
        assert_eq!(run.n("fetched"), 3);
    }

    // The mailbox is recreated: same messages plus one; m2 got another INTERNALDATE (so it
    // can only be matched by content) and m3 another flag.
    std::fs::remove_dir_all(u.mailbox_dir("Archive")).unwrap();
    let flags = ["S", "S", "FS", "S"];
    for (i, raw) in m.iter().enumerate() {
        let date = if i == 1 {
            case13_date(i) + 3_600
        } else {
            case13_date(i)
        };
        u.seed_message("Archive", raw, flags[i], Some(date));
    }
    let v2 = list_json(&d, &u)["Archive"].1.unwrap();
    assert_ne!(
        v1, v2,
        "Dovecot kept the UIDVALIDITY of a recreated mailbox"
    );

    let want: Vec<(String, BTreeSet<String>)> = {
        let mut v: Vec<_> = m
            .iter()
            .enumerate()
            .map(|(i, raw)| {
                let f: Vec<&str> = if i == 2 {
                    vec!["\\Flagged", "\\Seen"]
                } else {
                    vec!["\\Seen"]
                };
                (
                    sha(&stored_form(raw)),
                    f.iter().map(|s| s.to_string()).collect(),
                )
            })
            .collect();
        v.sort();
        v
    };
    let strip = |v: Vec<Expect>| -> Vec<(String, BTreeSet<String>)> {
        let mut v: Vec<_> = v.into_iter().map(|(s, f, _)| (s, f)).collect();
        v.sort();
        v
    };
    for (arch, dir) in [(maildir_arg(&mdir), &mdir), (mbox_arg(&xdir), &xdir)] {
        let run = backup(&d, &u, &arch, &[]);
        run.assert_code(0);
        assert_eq!(run.n("fetched"), 1, "{arch}: {run:#?}");
        assert_eq!(run.n("already_archived"), 3, "{arch}");
        let w = warnings(&run);
        assert_eq!(
            w.iter().filter(|w| w.contains("UIDVALIDITY")).count(),
            1,
            "{arch}: {w:?}"
        );
        let text = w.iter().find(|w| w.contains("UIDVALIDITY")).unwrap();
        assert!(
            text.contains("Archive")
                && text.contains(&v1.to_string())
                && text.contains(&v2.to_string()),
            "{text}"
        );
        let rows: Vec<LedgerRow> = ledger(dir);
        assert_eq!(rows.len(), 4, "{arch}: {rows:#?}");
        assert!(rows.iter().all(|r| r.uidvalidity == Some(v2 as i64)));
        let uids: BTreeSet<i64> = rows.iter().filter_map(|r| r.uid).collect();
        assert_eq!(uids, (1..=4).collect());
        assert_eq!(
            strip(ledger_state(dir)["Archive"].clone()),
            want,
            "{arch}: ledger"
        );
        if dir == &mdir {
            assert_eq!(
                strip(maildir_state(&mdir.join(".Archive"))),
                want,
                "Maildir"
            );
            // Exactly one local folder for Archive.
            let folders: Vec<String> = std::fs::read_dir(&mdir)
                .unwrap()
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with('.'))
                .collect();
            assert_eq!(folders, vec![".Archive".to_string()]);
        } else {
            let msgs = mbox_messages(&xdir.join("Archive.mbox"));
            assert_eq!(
                digests(msgs.iter().map(Vec::as_slice)),
                want.iter().map(|w| w.0.clone()).sorted_vec()
            );
            let files: Vec<String> = std::fs::read_dir(&xdir)
                .unwrap()
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n != "mailkeep")
                .collect();
            assert_eq!(files, vec!["Archive.mbox".to_string()]);
        }
        // Run 3: nothing new, no new warning, nothing changed.
        let before = archive_snapshot(dir);
        let run = backup(&d, &u, &arch, &[]);
        run.assert_code(0);
        assert_eq!((run.n("fetched"), run.n("already_archived")), (0, 4));
        assert!(warnings(&run).iter().all(|w| !w.contains("UIDVALIDITY")));
        let after = archive_snapshot(dir);
        assert!(
            after == before,
            "{arch}: run 3 changed the archive: {:?}",
            snapshot_diff(&before, &after)
        );
    }
}

#[test]
fn two_mailboxes_sharing_one_uidvalidity_are_both_backed_up() {
    let d = Dovecot::start();
    let u = d.add_user("same", "same-pw");
    let m = case13_messages();
    // Dovecot takes a folder's UIDVALIDITY from its dovecot-uidlist when there is one.
    for folder in ["Invoices/2023", "Invoices/2024"] {
        let dir = u.ensure_mailbox(folder);
        let f = dir.join("dovecot-uidlist");
        std::fs::write(&f, "3 V1700000000 N1\n").unwrap();
        chown_like(&f, &dir);
    }
    for (i, raw) in m.iter().enumerate() {
        let folder = if i < 2 {
            "Invoices/2023"
        } else {
            "Invoices/2024"
        };
        u.seed_message(folder, raw, "S", Some(case13_date(i)));
    }
    let listed = list_json(&d, &u);
    assert_eq!(listed["Invoices/2023"], (Some(2), Some(1_700_000_000)));
    assert_eq!(listed["Invoices/2024"], (Some(2), Some(1_700_000_000)));
    let tmp = tempfile::tempdir().unwrap();
    let mdir = tmp.path().join("maildir");
    let run = backup(&d, &u, &maildir_arg(&mdir), &[]);
    run.assert_code(0);
    assert_eq!(run.n("fetched"), 4);
    for (folder, range) in [(".Invoices.2023", 0..2), (".Invoices.2024", 2..4)] {
        let got = maildir_state(&mdir.join(folder));
        let want = sorted(
            range
                .map(|i| expect(&m[i], &["\\Seen"], case13_date(i)))
                .collect(),
        );
        assert_eq!(got, want, "{folder}");
    }
    let run = backup(&d, &u, &maildir_arg(&mdir), &[]);
    run.assert_code(0);
    assert_eq!((run.n("fetched"), run.n("already_archived")), (0, 4));
}

// ---------------------------------------------------------------------------------------------
// 4. --folder / --exclude and --mirror

#[test]
fn folder_and_exclude_globs_select_exactly_the_right_mailboxes() {
    let d = Dovecot::start();
    let u = d.add_user("globs", "globs-pw");
    let folders = [
        "INBOX",
        "Sent",
        "Trash",
        "Spam",
        "Archive/2023",
        "Archive/2024",
        "Archive/2024/Q1",
    ];
    for (i, f) in folders.iter().enumerate() {
        u.seed_message(f, &small("glob", i), "", Some(1_650_000_000));
    }
    let tmp = tempfile::tempdir().unwrap();
    let cases: [(&[&str], &[&str]); 5] = [
        (
            &["--folder", "Archive/*"],
            &["Archive/2023", "Archive/2024"],
        ),
        (
            &["--folder", "Archive/**"],
            &["Archive/2023", "Archive/2024", "Archive/2024/Q1"],
        ),
        (
            &["--folder", "INBOX", "--folder", "Sent"],
            &["INBOX", "Sent"],
        ),
        (
            &["--exclude", "Archive/**", "--exclude", "Trash"],
            &["INBOX", "Sent", "Spam"],
        ),
        (
            &["--folder", "Archive/**", "--exclude", "*/2024"],
            &["Archive/2023", "Archive/2024/Q1"],
        ),
    ];
    for (n, (args, want)) in cases.iter().enumerate() {
        let dir = tmp.path().join(format!("a{n}"));
        let run = backup(&d, &u, &maildir_arg(&dir), args);
        run.assert_code(0);
        let got: BTreeSet<String> = per_mailbox(&run).into_keys().collect();
        let want: BTreeSet<String> = want.iter().map(|s| s.to_string()).collect();
        assert_eq!(got, want, "{args:?}");
        assert_eq!(run.n("fetched"), want.len() as u64, "{args:?}");
        let in_ledger: BTreeSet<String> = ledger(&dir).into_iter().map(|r| r.mailbox).collect();
        assert_eq!(in_ledger, want, "{args:?}: ledger");
        // The archive holds folders for exactly those mailboxes.
        let mut on_disk: BTreeSet<String> = std::fs::read_dir(&dir)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with('.'))
            .map(|n| n[1..].replace('.', "/"))
            .collect();
        if !maildir_files(&dir).is_empty() {
            on_disk.insert("INBOX".into());
        }
        assert_eq!(on_disk, want, "{args:?}: folders on disk");
    }
}

#[test]
fn mirror_removes_what_the_server_deleted_and_a_plain_backup_keeps_it() {
    let d = Dovecot::start();
    let u = d.add_user("mirror", "mirror-pw");
    let files: Vec<PathBuf> = (0..3)
        .map(|i| u.seed_message("INBOX", &small("mirror", i), "S", Some(1_650_000_000)))
        .collect();
    u.seed_message("Other", &small("other", 0), "", Some(1_650_000_000));
    let tmp = tempfile::tempdir().unwrap();
    let keep = tmp.path().join("keep");
    let mirror = tmp.path().join("mirror");
    for dir in [&keep, &mirror] {
        assert_eq!(
            backup(&d, &u, &maildir_arg(dir), &[])
                .assert_code(0)
                .n("fetched"),
            4
        );
    }
    std::fs::remove_file(&files[1]).unwrap();

    let run = backup(&d, &u, &maildir_arg(&keep), &[]);
    run.assert_code(0);
    assert_eq!((run.n("removed"), run.n("fetched")), (0, 0));
    assert_eq!(maildir_files(&keep).len(), 3, "a backup keeps deleted mail");

    let run = backup(&d, &u, &maildir_arg(&mirror), &["--mirror"]);
    run.assert_code(0);
    assert_eq!((run.n("removed"), run.n("fetched")), (1, 0), "{run:#?}");
    assert_eq!(mailbox_counts(&run, "removed")["INBOX"], 1);
    let left: Vec<String> = maildir_files(&mirror)
        .iter()
        .map(|f| sha(&f.bytes))
        .sorted_vec();
    let want: Vec<String> = [0, 2]
        .iter()
        .map(|&i| sha(&stored_form(&small("mirror", i))))
        .sorted_vec();
    assert_eq!(left, want, "--mirror removed the wrong file");
    assert_eq!(maildir_files(&mirror.join(".Other")).len(), 1);
    assert_eq!(
        ledger(&mirror)
            .iter()
            .filter(|r| r.mailbox == "INBOX")
            .count(),
        2
    );
    // Nothing more to remove on the next run.
    let run = backup(&d, &u, &maildir_arg(&mirror), &["--mirror"]);
    run.assert_code(0);
    assert_eq!((run.n("removed"), run.n("fetched")), (0, 0));
}

// ---------------------------------------------------------------------------------------------
// 5. --dedup

#[test]
fn dedup_stores_the_same_bytes_once_and_records_every_mailbox() {
    let d = Dovecot::start();
    let u = d.add_user("dedup", "dedup-pw");
    let same = small("same", 0);
    u.seed_message("INBOX", &same, "S", Some(1_650_000_000));
    u.seed_message("All Mail", &same, "", Some(1_650_000_000));
    u.seed_message("All Mail", &small("only", 1), "", Some(1_650_000_100));
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("dedup");
    let run = backup(&d, &u, &maildir_arg(&dir), &["--dedup", "--jobs", "1"]);
    run.assert_code(0);
    assert_eq!(run.n("listed"), 3);
    let mut all = maildir_files(&dir);
    all.extend(maildir_files(&dir.join(".All Mail")));
    let stored: Vec<String> = all.iter().map(|f| sha(&f.bytes)).sorted_vec();
    let want: Vec<String> = [&same, &small("only", 1)]
        .iter()
        .map(|m| sha(&stored_form(m)))
        .sorted_vec();
    assert_eq!(stored, want, "the duplicate was stored twice");
    let rows = ledger(&dir);
    assert_eq!(rows.len(), 3);
    let dup: Vec<&LedgerRow> = rows
        .iter()
        .filter(|r| r.sha256 == sha(&stored_form(&same)))
        .collect();
    assert_eq!(dup.len(), 2);
    assert_ne!(dup[0].mailbox, dup[1].mailbox);
    assert_eq!(dup[0].location, dup[1].location);
    let again = backup(&d, &u, &maildir_arg(&dir), &["--dedup"]);
    again.assert_code(0);
    assert_eq!(again.n("fetched"), 0);
}

/// RFC 3501 5.1: INBOX is case-insensitive, so `--folder inbox` names INBOX.
#[test]
fn folder_glob_inbox_is_case_insensitive() {
    let d = Dovecot::start();
    let u = d.add_user("inboxcase", "pw");
    u.seed_message("INBOX", &small("case", 0), "", Some(1_650_000_000));
    u.seed_message("Sent", &small("case", 1), "", Some(1_650_000_000));
    let tmp = tempfile::tempdir().unwrap();
    let run = backup(
        &d,
        &u,
        &maildir_arg(&tmp.path().join("a")),
        &["--folder", "inbox"],
    );
    run.assert_code(0);
    let got: BTreeSet<String> = per_mailbox(&run).into_keys().collect();
    assert_eq!(got, ["INBOX".to_string()].into_iter().collect());
}

// ---------------------------------------------------------------------------------------------
// 6. Folder names: case 10 (modified UTF-7) and case 11 (a delimiter inside a name)

#[test]
fn case10_non_ascii_folder_names_round_trip_through_maildir_mbox_and_dovecot() {
    let tsv = std::fs::read_to_string(case_dir("10-").join("expected-names.tsv")).unwrap();
    // unicode name -> Dovecot/Courier (`INBOX.`-less, `.`-delimited) wire name
    let names: Vec<(String, String)> = tsv
        .lines()
        .skip(1)
        .map(|l| {
            let cols: Vec<&str> = l.split('\t').collect();
            let dot = cols[3].strip_prefix("INBOX.").unwrap_or(cols[3]);
            (cols[0].to_string(), dot.to_string())
        })
        .collect();
    assert_eq!(names.len(), 11);
    let empty = ["Rechnungen", "Rechnungen/2024"];
    let d = Dovecot::start();
    let u = d.add_user("names", "names-pw");
    let mut expected: BTreeMap<String, Vec<Expect>> = BTreeMap::new();
    for (i, (name, wire)) in names.iter().enumerate() {
        // The harness's Maildir++ directory is Dovecot's spelling; it must match the case's.
        if name != "INBOX" {
            assert_eq!(
                u.mailbox_dir(name).file_name().unwrap().to_string_lossy(),
                format!(".{wire}")
            );
        }
        if empty.contains(&name.as_str()) {
            u.ensure_mailbox(name);
            continue;
        }
        let raw = format!("Subject: {name}\nMessage-ID: <n{i}@example.com>\n\nin {name}\n");
        u.seed_message(name, raw.as_bytes(), "S", Some(1_700_000_000 + i as i64));
        expected.insert(
            wire.clone(),
            vec![expect(
                raw.as_bytes(),
                &["\\Seen"],
                1_700_000_000 + i as i64,
            )],
        );
    }
    let all: BTreeSet<String> = names.iter().map(|n| n.0.clone()).collect();
    let listed = list_json(&d, &u);
    assert_eq!(listed.keys().cloned().collect::<BTreeSet<_>>(), all, "list");

    let tmp = tempfile::tempdir().unwrap();
    let mdir = tmp.path().join("maildir");
    let xdir = tmp.path().join("mbox");
    for (arch, dir) in [(maildir_arg(&mdir), &mdir), (mbox_arg(&xdir), &xdir)] {
        let run = backup(&d, &u, &arch, &[]);
        run.assert_code(0);
        assert_eq!(run.n("fetched"), 9);
        let per = mailbox_counts(&run, "fetched");
        assert_eq!(per.keys().cloned().collect::<BTreeSet<_>>(), all, "{arch}");
        for (name, n) in &per {
            let want = u64::from(!empty.contains(&name.as_str()));
            assert_eq!(*n, want, "{arch}: {name}");
        }
        let before = archive_snapshot(dir);
        let again = backup(&d, &u, &arch, &[]);
        again.assert_code(0);
        assert_eq!(again.n("fetched"), 0);
        assert!(
            archive_snapshot(dir) == before,
            "{arch}: second run changed it"
        );
    }
    for (name, wire) in &names {
        if empty.contains(&name.as_str()) {
            continue;
        }
        let (md, mb) = if name == "INBOX" {
            (mdir.clone(), xdir.join("INBOX.mbox"))
        } else {
            (
                mdir.join(format!(".{wire}")),
                xdir.join(format!("{name}.mbox")),
            )
        };
        assert_eq!(maildir_files(&md).len(), 1, "Maildir {}", md.display());
        assert_eq!(mbox_messages(&mb).len(), 1, "mbox {}", mb.display());
    }
    let extra = check_served_back(&mdir, &expected);
    eprintln!("case 10: Dovecot serving the archive also lists {extra:?}");
}

/// Seeds a message into a Dovecot `LAYOUT=fs` Maildir folder (`root/<a>/<b>/cur`).
fn seed_fs_layout(u: &User, levels: &str, raw: &[u8], mtime: i64) {
    let mut dir = u.maildir.clone();
    for level in levels.split('/') {
        dir.push(level);
        if !dir.is_dir() {
            std::fs::create_dir(&dir).unwrap();
            chown_like(&dir, &u.maildir);
        }
    }
    for sub in ["cur", "new", "tmp"] {
        let p = dir.join(sub);
        if !p.is_dir() {
            std::fs::create_dir(&p).unwrap();
            chown_like(&p, &u.maildir);
        }
    }
    let tmp = dir.join("tmp").join(format!("{mtime}.M1P1.seed"));
    std::fs::write(&tmp, raw).unwrap();
    std::fs::File::options()
        .write(true)
        .open(&tmp)
        .unwrap()
        .set_modified(std::time::UNIX_EPOCH + Duration::from_secs(mtime as u64))
        .unwrap();
    chown_like(&tmp, &u.maildir);
    std::fs::rename(&tmp, dir.join("cur").join(format!("{mtime}.M1P1.seed:2,"))).unwrap();
}

#[test]
fn case11_a_dot_inside_a_folder_name_is_escaped_not_split() {
    use mailkeep::archive::maildir::writer::{mailbox_from_maildir_folder, maildir_folder_name};
    use mailkeep::core::message::MailboxName;
    // The mapping itself, both ways.
    for (mailbox, folder) in [
        ("Projects", ".Projects"),
        ("Projects/2024", ".Projects.2024"),
        ("example.org invoices", ".example%2Eorg invoices"),
        ("v1.2 release", ".v1%2E2 release"),
        ("v1.2 release/notes", ".v1%2E2 release.notes"),
        ("Clients/A/B Testing", ".Clients.A.B Testing"),
    ] {
        let m = MailboxName::new(mailbox);
        assert_eq!(maildir_folder_name(&m), folder, "{mailbox}");
        assert_eq!(mailbox_from_maildir_folder(folder), Some(m), "{folder}");
    }

    // A Dovecot whose hierarchy delimiter is `/` (LAYOUT=fs) can hold `.` inside a name.
    let d = Dovecot::start_with(Options {
        extra_config: "mail_location = maildir:~/:LAYOUT=fs\n\
                       namespace inbox {\n  inbox = yes\n  separator = /\n}\n"
            .into(),
        ..Options::default()
    });
    let u = d.add_user("dots", "dots-pw");
    let folders = [
        ("INBOX", 1),
        ("Projects", 1),
        ("Projects/2024", 2),
        ("example.org invoices", 3),
        ("v1.2 release/notes", 1),
    ];
    let mut n = 0;
    let mut want: BTreeMap<String, Vec<Vec<u8>>> = BTreeMap::new();
    for (folder, count) in folders {
        for _ in 0..count {
            n += 1;
            let raw = format!("Subject: {folder} {n}\nMessage-ID: <d{n}@example.com>\n\nx\n");
            if folder == "INBOX" {
                u.seed_message("INBOX", raw.as_bytes(), "", Some(1_700_000_000 + n));
            } else {
                seed_fs_layout(&u, folder, raw.as_bytes(), 1_700_000_000 + n);
            }
            want.entry(folder.to_string())
                .or_default()
                .push(stored_form(raw.as_bytes()));
        }
    }
    let listed = list_json(&d, &u);
    assert!(
        listed.contains_key("example.org invoices") && listed.contains_key("v1.2 release/notes"),
        "Dovecot does not serve the dotted names: {listed:?}"
    );
    let tmp = tempfile::tempdir().unwrap();
    let mdir = tmp.path().join("maildir");
    let xdir = tmp.path().join("mbox");
    for (arch, dir) in [(maildir_arg(&mdir), &mdir), (mbox_arg(&xdir), &xdir)] {
        let run = backup(&d, &u, &arch, &[]);
        run.assert_code(0);
        assert_eq!(run.n("fetched"), 8, "{arch}: {run:#?}");
        for (folder, msgs) in &want {
            let got = if dir == &mdir {
                let f = maildir_folder_name(&MailboxName::new(folder));
                maildir_files(&mdir.join(f))
                    .into_iter()
                    .map(|f| f.bytes)
                    .collect()
            } else {
                mbox_messages(&xdir.join(format!("{folder}.mbox")))
            };
            assert_eq!(
                digests(got.iter().map(Vec::as_slice)),
                digests(msgs.iter().map(Vec::as_slice)),
                "{arch}: {folder}"
            );
        }
        let again = backup(&d, &u, &arch, &[]);
        assert_eq!(again.assert_code(0).n("fetched"), 0);
    }
    // No folder was split at the dot.
    let folders: BTreeSet<String> = std::fs::read_dir(&mdir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    for bad in [".example", ".example.org invoices", ".v1", ".v1.2 release"] {
        assert!(!folders.contains(bad), "{bad} in {folders:?}");
    }
    assert!(!xdir.join("example").exists() && !xdir.join("v1").exists());
}

// ---------------------------------------------------------------------------------------------
// 7. Memory: one 40 MB message; many small ones

/// Runs `mailkeep backup` under `/usr/bin/time`; returns the run and its peak RSS in bytes.
fn backup_measured(d: &Dovecot, u: &User, archive: &str) -> (Run, u64, f64) {
    let tmp = tempfile::NamedTempFile::new().unwrap();
    let mut cmd = Command::new("/usr/bin/time");
    cmd.arg("-f")
        .arg("%M %e")
        .arg("-o")
        .arg(tmp.path())
        .arg(env!("CARGO_BIN_EXE_mailkeep"))
        .arg("backup")
        .arg(d.url("imaps", u))
        .arg(archive)
        .arg("--tls-ca")
        .arg(&d.ca_pem)
        .args(["--password-env", PW_VAR, "--json"])
        .env(PW_VAR, &u.password);
    let run = Run::from_output(cmd.output().unwrap());
    let text = std::fs::read_to_string(tmp.path()).unwrap();
    let mut parts = text.split_whitespace();
    let kb: u64 = parts.next().unwrap().parse().unwrap();
    let secs: f64 = parts.next().unwrap().parse().unwrap();
    (run, kb * 1024, secs)
}

#[test]
fn a_40_mb_message_and_thousands_of_small_ones_keep_memory_bounded() {
    let d = Dovecot::start();
    let big_user = d.add_user("big", "big-pw");
    let mut big =
        b"From: big@example.com\nSubject: 40 MB\nMessage-ID: <big@example.com>\n\n".to_vec();
    let mut i = 0u64;
    while big.len() < 40 * 1024 * 1024 {
        big.extend_from_slice(
            format!("{i:08} the quick brown fox jumps over the lazy dog 0123456789 abcdef\n")
                .as_bytes(),
        );
        i += 1;
    }
    big_user.seed_message("INBOX", &big, "S", Some(1_650_000_000));
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("big");
    let (run, rss, secs) = backup_measured(&d, &big_user, &maildir_arg(&dir));
    run.assert_code(0);
    assert_eq!(run.n("fetched"), 1);
    let files = maildir_files(&dir);
    assert_eq!(files.len(), 1);
    assert!(
        files[0].bytes == stored_form(&big),
        "the 40 MB message differs"
    );
    let wire = wire_form(&big, false).len() as u64;
    eprintln!(
        "BENCH imap 40 MB message ({wire} bytes on the wire): peak RSS {:.1} MB, {secs:.2} s",
        rss as f64 / 1048576.0
    );
    assert!(
        rss < 3 * wire + 64 * 1024 * 1024,
        "peak RSS {rss} for a {wire}-byte message"
    );

    const SMALL: usize = 5_000;
    let many = d.add_user("many", "many-pw");
    for i in 0..SMALL {
        many.seed_message(
            "INBOX",
            format!("Subject: tiny {i}\nMessage-ID: <t{i}@example.com>\n\n{i}\n").as_bytes(),
            "",
            Some(1_650_000_000 + i as i64),
        );
    }
    let dir = tmp.path().join("many");
    let (run, rss_many, secs) = backup_measured(&d, &many, &maildir_arg(&dir));
    run.assert_code(0);
    assert_eq!(run.n("fetched"), SMALL as u64);
    assert_eq!(maildir_files(&dir).len(), SMALL);
    let (again, _, secs2) = backup_measured(&d, &many, &maildir_arg(&dir));
    again.assert_code(0);
    assert_eq!(again.n("fetched"), 0);
    eprintln!(
        "BENCH imap {SMALL} small messages: peak RSS {:.1} MB, first run {secs:.2} s, unchanged rerun {secs2:.2} s",
        rss_many as f64 / 1048576.0
    );
    assert!(
        rss_many < 128 * 1024 * 1024,
        "peak RSS {rss_many} for {SMALL} small messages"
    );
}

// ---------------------------------------------------------------------------------------------
// 8. list and quota

const QUOTA_CONFIG: &str = "mail_plugins = $mail_plugins quota
protocol imap {
  mail_plugins = $mail_plugins imap_quota
}
plugin {
  quota = maildir:User quota
  quota_rule = *:storage=100K:messages=50
}
";

#[test]
fn list_and_quota_report_what_dovecot_has() {
    let d = Dovecot::start_with(Options {
        extra_config: QUOTA_CONFIG.into(),
        ..Options::default()
    });
    let u = d.add_user("quota", "quota-pw");
    let filler = "x".repeat(75) + "\n";
    for i in 0..10 {
        let raw = format!("Subject: q{i}\n\n{}", filler.repeat(80));
        u.seed_message(
            if i < 7 { "INBOX" } else { "Sent" },
            raw.as_bytes(),
            "",
            None,
        );
    }
    u.ensure_mailbox("Empty");
    let listed = list_json(&d, &u);
    let counts: BTreeMap<String, Option<u64>> =
        listed.iter().map(|(k, v)| (k.clone(), v.0)).collect();
    assert_eq!(
        counts,
        [("INBOX", 7), ("Sent", 3), ("Empty", 0)]
            .into_iter()
            .map(|(k, v)| (k.to_string(), Some(v)))
            .collect()
    );
    let table = mailkeep(&d, &u, "list", "imaps", None, &[]);
    table.assert_code(0);
    assert!(
        table.stdout.contains("3 mailboxes, 10 messages"),
        "{}",
        table.stdout
    );

    let q = mailkeep(&d, &u, "quota", "imaps", None, &["--json"]);
    q.assert_code(0);
    let lines = q
        .report
        .as_array()
        .unwrap_or_else(|| panic!("{q:#?}"))
        .clone();
    let find = |res: &str| {
        lines
            .iter()
            .find(|l| l["resource"].as_str().unwrap().eq_ignore_ascii_case(res))
            .unwrap_or_else(|| panic!("no {res} in {lines:?}"))
            .clone()
    };
    let storage = find("STORAGE");
    assert_eq!(storage["limit"].as_u64(), Some(100));
    let used = storage["usage"].as_u64().unwrap();
    assert!((55..=70).contains(&used), "STORAGE usage {used} KiB");
    let messages = find("MESSAGE");
    assert_eq!(
        (messages["usage"].as_u64(), messages["limit"].as_u64()),
        (Some(10), Some(50))
    );

    let warn = mailkeep(&d, &u, "quota", "imaps", None, &["--warn-at", "50"]);
    warn.assert_code(1);
    assert!(
        warn.stderr.contains("warning") && warn.stderr.contains("STORAGE"),
        "{warn:#?}"
    );
    assert!(
        !warn.stderr.contains("MESSAGE"),
        "MESSAGE is at 20%: {warn:#?}"
    );

    let tmp = tempfile::tempdir().unwrap();
    let run = backup(&d, &u, &maildir_arg(&tmp.path().join("a")), &[]);
    run.assert_code(0);
    assert!(
        !run.report["quota"].as_array().unwrap().is_empty(),
        "no quota in the backup report: {run:#?}"
    );

    // Without a quota plugin: nothing to report, exit 0.
    let plain = Dovecot::start();
    let p = plain.add_user("noquota", "pw");
    let q = mailkeep(&plain, &p, "quota", "imaps", None, &["--json"]);
    q.assert_code(0);
    assert_eq!(q.report, serde_json::json!([]));
    let q = mailkeep(&plain, &p, "quota", "imaps", None, &["--warn-at", "1"]);
    q.assert_code(0);
    assert!(q.stdout.contains("no quota"), "{q:#?}");
}

// ---------------------------------------------------------------------------------------------
// 9. Errors

#[test]
fn wrong_password_plaintext_refusal_and_a_folder_matching_nothing() {
    let d = Dovecot::start();
    let u = d.add_user("err", "right-pw");
    u.seed_message("INBOX", &small("err", 0), "", Some(1_650_000_000));
    let tmp = tempfile::tempdir().unwrap();

    let mut wrong = u.clone();
    wrong.password = "wrong-pw".into();
    let dir = tmp.path().join("wrong");
    let run = backup(&d, &wrong, &maildir_arg(&dir), &[]);
    run.assert_code(3);
    assert!(maildir_files(&dir).is_empty());

    let dir = tmp.path().join("nomatch");
    // A --folder that matches nothing is an error (exit 2), not a nightly backup of nothing.
    let run = backup(&d, &u, &maildir_arg(&dir), &["--folder", "NoSuchFolder*"]);
    run.assert_code(2);
    assert!(run.stderr.contains("no mailbox matches"), "{run:#?}");

    // imap:// upgrades with STARTTLS.
    let dir = tmp.path().join("starttls");
    let run = mailkeep(
        &d,
        &u,
        "backup",
        "imap",
        Some(&maildir_arg(&dir)),
        &["--json"],
    );
    run.assert_code(0);
    assert_eq!(run.n("fetched"), 1);

    // A server without STARTTLS: refused, unless --allow-plaintext.
    let p = Dovecot::start_without_starttls();
    let pu = p.add_user("plain", "plain-pw");
    pu.seed_message("INBOX", &small("plain", 0), "", Some(1_650_000_000));
    let dir = tmp.path().join("plain");
    let run = mailkeep(
        &p,
        &pu,
        "backup",
        "imap",
        Some(&maildir_arg(&dir)),
        &["--json"],
    );
    run.assert_code(4);
    assert!(maildir_files(&dir).is_empty());
    assert!(
        !p.log().contains("Login: user=<plain>"),
        "the password was sent in clear"
    );
    let run = mailkeep(
        &p,
        &pu,
        "backup",
        "imap",
        Some(&maildir_arg(&dir)),
        &["--json", "--allow-plaintext"],
    );
    run.assert_code(0);
    assert_eq!(run.n("fetched"), 1);
}

/// Newcomer review (IMAP), bugs 1a-1c: `--dedup` with `--mirror` or a flag change never loses
/// the copy another mailbox shares; after a UIDVALIDITY change a different message with the
/// same size and date is fetched, not taken for archived; identical copies in one mailbox are
/// matched one for one.
#[test]
fn shared_copies_and_uidvalidity_matches_never_lose_or_double_mail() {
    let d = Dovecot::start();
    // 1a: the same bytes in INBOX and Copy, archived once with --dedup.
    let u = d.add_user("carol", "carol-pw");
    let m1 = small("shared", 1);
    u.seed_message("INBOX", &m1, "S", Some(1_704_103_200));
    u.seed_message("Copy", &m1, "S", Some(1_704_103_200));
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("dedup");
    let arch = maildir_arg(&dir);
    backup(&d, &u, &arch, &["--dedup"]).assert_code(0);
    let files = || {
        let mut n = maildir_files(&dir).len();
        n += maildir_files(&dir.join(".Copy")).len();
        n
    };
    assert_eq!(files(), 1, "stored once");
    // A flag change in INBOX, then INBOX's copy is deleted on the server.
    let mut c = RawImap::login(&d, &u);
    c.cmd("SELECT INBOX");
    c.cmd("UID STORE 1 +FLAGS (\\Flagged)");
    backup(&d, &u, &arch, &["--dedup"]).assert_code(0);
    c.cmd("UID STORE 1 +FLAGS (\\Deleted)");
    c.cmd("UID EXPUNGE 1");
    c.logout();
    let run = backup(&d, &u, &arch, &["--dedup", "--mirror"]);
    run.assert_code(0);
    assert_eq!(
        files(),
        1,
        "the copy Copy still has on the server stays: {run:#?}"
    );
    let copy_rows: Vec<LedgerRow> = ledger(&dir)
        .into_iter()
        .filter(|r| r.mailbox == "Copy")
        .collect();
    assert_eq!(copy_rows.len(), 1);
    let loc = dir.join(&copy_rows[0].location);
    let base = loc.file_name().unwrap().to_string_lossy().into_owned();
    let present = std::fs::read_dir(loc.parent().unwrap())
        .unwrap()
        .flatten()
        .any(|e| e.file_name().to_string_lossy().starts_with(&base));
    assert!(present, "Copy's ledger record points at an existing file");

    // 1b + 1c: the folder is recreated with other content of the same size and date, and
    // with two identical copies.
    let u = d.add_user("erin", "erin-pw");
    let a = small("same-size-a", 1);
    let b = small("same-size-b", 1);
    assert_eq!(a.len(), b.len());
    u.seed_message("X", &a, "S", Some(1_704_103_200));
    u.seed_message("X", &a, "S", Some(1_704_103_200));
    let dir = tmp.path().join("uv");
    let arch = maildir_arg(&dir);
    assert_eq!(backup(&d, &u, &arch, &[]).assert_code(0).n("fetched"), 2);
    std::fs::remove_dir_all(u.mailbox_dir("X")).unwrap();
    u.seed_message("X", &b, "S", Some(1_704_103_200));
    u.seed_message("X", &a, "S", Some(1_704_103_200));
    u.seed_message("X", &a, "S", Some(1_704_103_200));
    let run = backup(&d, &u, &arch, &[]);
    run.assert_code(0);
    assert_eq!(run.n("fetched"), 1, "only b is new: {run:#?}");
    let bodies: Vec<String> = maildir_files(&dir.join(".X"))
        .iter()
        .map(|f| sha(&std::fs::read(&f.path).unwrap()))
        .sorted_vec();
    let want = [stored_form(&a), stored_form(&a), stored_form(&b)]
        .iter()
        .map(|m| sha(m))
        .sorted_vec();
    assert_eq!(bodies, want, "a twice (as on the server), b once");
    assert_eq!(backup(&d, &u, &arch, &[]).assert_code(0).n("fetched"), 0);
}

/// A run killed after placing messages in `cur/` but before recording them: the rerun finds
/// them by name and records them without downloading again (`recovered`), and the archive
/// equals an uninterrupted run's. For mbox, the appended tail is kept or cut by the ledger's
/// placed notes.
#[test]
fn a_killed_imap_run_is_recovered_without_downloading_again() {
    let d = Dovecot::start();
    let u = d.add_user("kim", "kim-pw");
    for i in 0..6 {
        u.seed_message(
            if i % 2 == 0 { "INBOX" } else { "Sent" },
            &small("k", i),
            "S",
            Some(1_700_000_000 + i as i64),
        );
    }
    let tmp = tempfile::tempdir().unwrap();
    for kind in ["maildir", "mbox"] {
        let clean = tmp.path().join(format!("{kind}-clean"));
        let arg = |dir: &Path| {
            if kind == "maildir" {
                maildir_arg(dir)
            } else {
                mbox_arg(dir)
            }
        };
        backup(&d, &u, &arg(&clean), &["--jobs", "1"]).assert_code(0);
        let dir = tmp.path().join(format!("{kind}-killed"));
        let mut cmd = support::mailkeep();
        cmd.arg("backup")
            .arg(d.url("imaps", &u))
            .arg(arg(&dir))
            .arg("--tls-ca")
            .arg(&d.ca_pem)
            .args(["--password-env", PW_VAR, "--jobs", "1", "--quiet"])
            .env(PW_VAR, &u.password)
            .env("MAILKEEP_TEST_KILL_AFTER_EVENTS", "0");
        let status = cmd.status().unwrap();
        assert_eq!(
            status.code(),
            Some(137),
            "{kind}: killed at the first ledger event"
        );
        let rerun = backup(&d, &u, &arg(&dir), &["--jobs", "1"]);
        rerun.assert_code(0);
        if kind == "maildir" {
            assert!(rerun.n("recovered") > 0, "{kind}: {rerun:#?}");
            assert_eq!(
                rerun.n("recovered") + rerun.n("fetched"),
                6,
                "{kind}: {rerun:#?}"
            );
        }
        let strip = |s: Snapshot| -> Vec<(String, Vec<u8>)> {
            s.into_iter()
                .filter(|(k, _)| !k.starts_with("mailkeep/"))
                .map(|(k, v)| (k, v.0))
                .collect()
        };
        assert_eq!(
            strip(archive_snapshot(&dir)),
            strip(archive_snapshot(&clean)),
            "{kind}"
        );
    }
}

/// Kill at every ledger event of an IMAP backup (both archive kinds, two mailboxes; mbox adds a
/// pending mark and a placed note per message, so it has more events), rerun, and compare with
/// an uninterrupted run: the same messages in the same files, nothing lost, nothing twice.
#[test]
fn killed_at_every_ledger_event_the_rerun_equals_an_uninterrupted_run() {
    let d = Dovecot::start();
    let u = d.add_user("kill-every", "ke-pw");
    for i in 0..4 {
        let mb = if i % 2 == 0 { "INBOX" } else { "Sent" };
        u.seed_message(mb, &small("every", i), "S", Some(1_700_000_000 + i as i64));
    }
    let tmp = tempfile::tempdir().unwrap();
    for kind in ["maildir", "mbox"] {
        let arg = |dir: &Path| {
            if kind == "maildir" {
                maildir_arg(dir)
            } else {
                mbox_arg(dir)
            }
        };
        let strip = |s: Snapshot| -> Vec<(String, Vec<u8>)> {
            s.into_iter()
                .filter(|(k, _)| !k.starts_with("mailkeep/"))
                .map(|(k, v)| (k, v.0))
                .collect()
        };
        let clean = tmp.path().join(format!("{kind}-clean"));
        backup(&d, &u, &arg(&clean), &["--jobs", "1"]).assert_code(0);
        let want = strip(archive_snapshot(&clean));
        let mut covered = 0;
        for n in 0..60 {
            let dir = tmp.path().join(format!("{kind}-{n}"));
            let status = support::mailkeep()
                .arg("backup")
                .arg(d.url("imaps", &u))
                .arg(arg(&dir))
                .arg("--tls-ca")
                .arg(&d.ca_pem)
                .args(["--password-env", PW_VAR, "--jobs", "1", "--quiet"])
                .env(PW_VAR, &u.password)
                .env("MAILKEEP_TEST_KILL_AFTER_EVENTS", n.to_string())
                .status()
                .unwrap();
            if status.code() == Some(0) {
                break; // past the last event
            }
            assert_eq!(status.code(), Some(137), "{kind}: kill at event {n}");
            covered += 1;
            let rerun = backup(&d, &u, &arg(&dir), &["--jobs", "1"]);
            rerun.assert_code(0);
            assert_eq!(
                strip(archive_snapshot(&dir)),
                want,
                "{kind}: killed at event {n}, then rerun"
            );
            let again = backup(&d, &u, &arg(&dir), &["--jobs", "1"]);
            assert_eq!(again.assert_code(0).n("fetched"), 0, "{kind}: event {n}");
        }
        println!("kill points covered: backup imap (Dovecot) {kind} {covered}");
        assert!(covered >= 2, "{kind}: only {covered} kill points");
    }
}

/// A `--folder` that matches nothing is found after the login: a new archive path is then
/// left as it was (not created), like after a wrong password.
#[test]
fn a_folder_that_matches_nothing_leaves_no_new_archive_behind() {
    let d = Dovecot::start();
    let u = d.add_user("nofolderarchive", "pw-nofolder");
    u.seed_message("INBOX", b"From: a@b\nSubject: x\n\nx\n", "", None);
    let tmp = tempfile::tempdir().unwrap();
    for kind in ["maildir", "mbox"] {
        let dir = tmp.path().join(kind);
        let out = support::mailkeep()
            .args([
                "backup",
                &d.url("imaps", &u),
                &format!("{kind}:{}", dir.display()),
            ])
            .args(["--folder", "Nope", "--tls-ca"])
            .arg(&d.ca_pem)
            .args(["--password-env", "MAILKEEP_NOFOLDER_PW"])
            .env("MAILKEEP_NOFOLDER_PW", &u.password)
            .output()
            .unwrap();
        let r = support::run::Run::from_output(out);
        r.assert_code(2);
        r.assert_one_line_error(&["no mailbox matches --folder `Nope` ("]);
        assert!(!dir.exists(), "{kind}: {r:#?}");
    }
}
