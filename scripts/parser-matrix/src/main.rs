//! parser-matrix: runs rows.txt through imap-proto, imap-codec and mailkeep and prints a
//! markdown table; `bench` times parse speed on large inputs.
mod codec;
mod facts;
mod proto;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Instant;

struct Row {
    name: String,
    bytes: Vec<u8>,
    expect: Vec<String>,
    source: String,
}

fn unescape(s: &str) -> Vec<u8> {
    s.replace("\\r\\n", "\r\n").replace("\\x00", "\0").into_bytes()
}

fn read_rows(path: &str) -> Vec<Row> {
    let text = std::fs::read_to_string(path).expect("rows file");
    let mut rows = Vec::new();
    let mut cur: Option<Row> = None;
    for line in text.lines().chain(std::iter::once("")) {
        if line.starts_with('#') {
            continue;
        }
        if line.trim().is_empty() {
            if let Some(r) = cur.take() {
                rows.push(r);
            }
            continue;
        }
        let r = cur.get_or_insert_with(|| Row {
            name: String::new(),
            bytes: Vec::new(),
            expect: Vec::new(),
            source: String::new(),
        });
        if let Some(v) = line.strip_prefix("name: ") {
            r.name = v.to_string();
        } else if let Some(v) = line.strip_prefix("bytes: ") {
            r.bytes = unescape(v);
        } else if let Some(v) = line.strip_prefix("expect: ") {
            r.expect.push(v.to_string());
        } else if let Some(v) = line.strip_prefix("source: ") {
            r.source = v.to_string();
        } else if line.starts_with("note: ") {
        } else {
            panic!("bad line in rows file: {line}");
        }
    }
    rows
}

type Adaptor = fn(&[u8]) -> (Vec<String>, Option<String>);

#[cfg(feature = "mailkeep")]
fn mailkeep_facts(b: &[u8]) -> Option<(Vec<String>, Option<String>)> {
    Some((mailkeep_fuzz::imap_response_facts(b), None))
}
/// mailkeep's reader alone (ReadBuf + Parser over an in-memory stream, 64 KiB reads).
#[cfg(feature = "mailkeep")]
fn mailkeep_reader(b: &[u8]) -> usize {
    let (v, end) = mailkeep_fuzz::imap_responses(b, 64 * 1024);
    // "too many": the fuzzing helper stops after 10,000 responses (a cap, not a parse error).
    if end == "Eof" || end == "too many" { v.len() } else { eprintln!("mailkeep reader: {end}"); usize::MAX }
}
#[cfg(not(feature = "mailkeep"))]
fn mailkeep_reader(_: &[u8]) -> usize {
    0
}
#[cfg(not(feature = "mailkeep"))]
fn mailkeep_facts(_: &[u8]) -> Option<(Vec<String>, Option<String>)> {
    None
}

fn guarded(f: &dyn Fn(&[u8]) -> (Vec<String>, Option<String>), b: &[u8]) -> (Vec<String>, Option<String>) {
    match catch_unwind(AssertUnwindSafe(|| f(b))) {
        Ok(r) => r,
        Err(_) => (vec!["PANIC".into()], Some("panicked".into())),
    }
}

/// Lines outside the fact format are not compared: a bare `UNSUPPORTED` (mailkeep prints one
/// for each response it reads but does not use: FLAGS, RECENT, ENABLED, QUOTA, VANISHED) and
/// untagged `OK`/`NO`/`BAD` lines whose code the format has no fact for.
fn in_format(f: &&String) -> bool {
    !(f.as_str() == "UNSUPPORTED" || f.starts_with("OK ") || f.starts_with("NO ") || f.starts_with("BAD "))
}

fn same(got: &[String], want: &[String]) -> bool {
    let got: Vec<&String> = got.iter().filter(in_format).collect();
    let want: Vec<&String> = want.iter().filter(in_format).collect();
    got.len() == want.len()
        && got.iter().zip(&want).all(|(g, w)| facts::canon(g) == facts::canon(w))
}

fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', "<br>")
}

fn matrix(path: &str) {
    std::panic::set_hook(Box::new(|_| {}));
    let rows = read_rows(path);
    let with_mk = mailkeep_facts(b"* 1 EXISTS\r\n").is_some();
    let codec_label = if cfg!(feature = "codec-ext") {
        "imap-codec (+ext)"
    } else {
        "imap-codec (default)"
    };
    println!("| row | expected | imap-proto 0.16.7 | {codec_label} | mailkeep |");
    println!("|---|---|---|---|---|");
    let mut ok = [0usize; 3];
    let mut details = Vec::new();
    for r in &rows {
        let want = &r.expect;
        let adaptors: [Option<(Vec<String>, Option<String>)>; 3] = [
            Some(guarded(&(proto::facts as Adaptor), &r.bytes)),
            Some(guarded(&(codec::facts as Adaptor), &r.bytes)),
            if with_mk {
                Some(guarded(&|b: &[u8]| mailkeep_facts(b).unwrap(), &r.bytes))
            } else {
                None
            },
        ];
        let mut cells = Vec::new();
        for (i, a) in adaptors.iter().enumerate() {
            match a {
                None => cells.push("pending".to_string()),
                Some((got, detail)) => {
                    if same(got, want) {
                        ok[i] += 1;
                        match detail {
                            Some(d) if d.starts_with("note: ") => {
                                cells.push("✓ ²".into());
                                details.push(format!("{} / {}: {}", r.name, ["imap-proto", "imap-codec", "mailkeep"][i], d));
                            }
                            _ => cells.push("✓".into()),
                        }
                    } else {
                        let shown = if got.is_empty() { "(no facts)".to_string() } else { got.join("\n") };
                        cells.push(format!("`{}`", cell(&shown).replace("<br>", "`<br>`")));
                        if let Some(d) = detail {
                            details.push(format!("{} / {}: {}", r.name, ["imap-proto", "imap-codec", "mailkeep"][i], d));
                        }
                    }
                }
            }
        }
        println!(
            "| {} | `{}` | {} | {} | {} |",
            r.name,
            cell(&want.join("\n")).replace("<br>", "`<br>`"),
            cells[0],
            cells[1],
            cells[2]
        );
    }
    let n = rows.len();
    println!();
    println!(
        "Totals correct: imap-proto {}/{n}, {codec_label} {}/{n}, mailkeep {}",
        ok[0],
        ok[1],
        if with_mk { format!("{}/{n}", ok[2]) } else { "pending".into() }
    );
    println!();
    println!("Parser error details (where the parser said why):");
    for d in details {
        println!("- {d}");
    }
}

fn sources(path: &str) {
    for r in read_rows(path) {
        println!("| {} | {} |", r.name, cell(&r.source));
    }
}

// ------------------------------------------------------------------------------------------
// Speed
// ------------------------------------------------------------------------------------------

fn list_input(n: usize) -> Vec<u8> {
    let mut v = Vec::new();
    for i in 0..n {
        v.extend_from_slice(
            format!("* LIST (\\HasNoChildren \\UnMarked) \"/\" \"Archive/{}/Folder name {i:05}\"\r\n", 2000 + i % 25)
                .as_bytes(),
        );
    }
    v.extend_from_slice(b"A3 OK LIST completed\r\n");
    v
}

fn fetch_listing_input(n: usize) -> Vec<u8> {
    let mut v = Vec::new();
    for i in 1..=n {
        v.extend_from_slice(
            format!(
                "* {i} FETCH (UID {} FLAGS (\\Seen $Forwarded) INTERNALDATE \"{:02}-Mar-2024 10:{:02}:00 +0100\" RFC822.SIZE {})\r\n",
                i * 3,
                1 + i % 28,
                i % 60,
                1000 + i * 17
            )
            .as_bytes(),
        );
    }
    v.extend_from_slice(b"A4 OK UID FETCH completed\r\n");
    v
}

fn fetch_body_input(size: usize) -> Vec<u8> {
    let mut v = format!("* 1 FETCH (UID 1 RFC822.SIZE {size} BODY[] {{{size}}}\r\n").into_bytes();
    let line = b"Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod.\r\n";
    while v.len() < size + 60 {
        v.extend_from_slice(line);
    }
    let head = v.iter().position(|&b| b == b'\n').unwrap() + 1;
    v.truncate(head + size);
    v.extend_from_slice(b")\r\nA5 OK UID FETCH completed\r\n");
    v
}

/// Median of 5 runs, as "median (min)" text; the min is the least disturbed by other load.
struct Ms(f64, f64);
impl std::fmt::Display for Ms {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(f, "{:.2} ({:.2})", self.0, self.1)
    }
}

fn median_ms(mut f: impl FnMut() -> usize) -> (Ms, usize) {
    let mut t = Vec::new();
    let mut n = 0;
    for _ in 0..5 {
        let s = Instant::now();
        n = std::hint::black_box(f());
        t.push(s.elapsed().as_secs_f64() * 1000.0);
    }
    t.sort_by(|a, b| a.partial_cmp(b).unwrap());
    (Ms(t[2], t[0]), n)
}

fn bench() {
    let inputs = [
        ("LIST answer, 10,000 lines", list_input(10_000)),
        ("FETCH listing, 1,000 lines (UID FLAGS INTERNALDATE RFC822.SIZE)", fetch_listing_input(1_000)),
        ("FETCH of one 16 MiB BODY[] literal", fetch_body_input(16 << 20)),
    ];
    let with_mk = mailkeep_facts(b"* 1 EXISTS\r\n").is_some();
    println!("| input | bytes | imap-proto parse | imap-proto parse+facts | imap-codec parse | imap-codec parse+facts | mailkeep reader | mailkeep facts |");
    println!("|---|---|---|---|---|---|---|---|");
    for (name, inp) in &inputs {
        let (pp, np) = median_ms(|| proto::parse_only(inp));
        let (pf, _) = median_ms(|| proto::facts(inp).0.len());
        let (cp, nc) = median_ms(|| codec::parse_only(inp));
        let (cf, _) = median_ms(|| codec::facts(inp).0.len());
        let (mk, mr) = if with_mk {
            let (m, _) = median_ms(|| mailkeep_facts(inp).unwrap().0.len());
            let (r, nr) = median_ms(|| mailkeep_reader(inp));
            (format!("{m} ms"), format!("{r} ms{}", if nr == usize::MAX { " (ERROR)" } else { "" }))
        } else {
            ("pending".into(), "pending".into())
        };
        let fail = |n: usize| if n == usize::MAX { " (ERROR)" } else { "" };
        println!(
            "| {name} | {} | {pp} ms{} | {pf} ms | {cp} ms{} | {cf} ms | {mr} | {mk} |",
            inp.len(),
            fail(np),
            fail(nc)
        );
    }
}

fn show(path: &str, name: &str) {
    for r in read_rows(path) {
        if r.name == name {
            println!("bytes: {:?}", String::from_utf8_lossy(&r.bytes));
            println!("expect: {:#?}", r.expect);
            println!("proto: {:#?}", guarded(&(proto::facts as Adaptor), &r.bytes));
            println!("codec: {:#?}", codec::facts(&r.bytes));
            if let Some(m) = mailkeep_facts(&r.bytes) {
                println!("mailkeep: {m:#?}");
            }
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(|s| s.as_str()) {
        Some("bench") => bench(),
        Some("sources") => sources(args.get(2).map(|s| s.as_str()).unwrap_or("rows.txt")),
        Some("show") => show("rows.txt", &args[2]),
        Some(p) => matrix(p),
        None => matrix("rows.txt"),
    }
}
