//! The normalised facts every adaptor emits, so that three parsers compare as strings.
//! Format (one fact a line, in response order):
//!   STATUS <name JSON> MESSAGES=n UIDNEXT=n UIDVALIDITY=n HIGHESTMODSEQ=n   (present items only)
//!   LIST (<attrs lowercased, sorted, comma-separated>) <delim JSON|NIL> <name JSON>
//!   EXISTS n | EXPUNGE n
//!   UIDVALIDITY n | UIDNEXT n | HIGHESTMODSEQ n | NOMODSEQ        (codes of untagged OK)
//!   FETCH <seq> UID=n FLAGS=(<sorted, space-separated>) INTERNALDATE=<as given|NIL>
//!         RFC822.SIZE=n MODSEQ=n BODY[]=<length|NIL>                 (present items only)
//!   CAPABILITY <uppercased, sorted, space-separated>
//!   TAGGED <OK|NO|BAD> [<CODE atom uppercased>] <text>               ([..] only with a code)
//!   BYE [<CODE>] <text>
//!   ERROR          the parser refused the input (nothing after it is read)
//!   UNSUPPORTED x  the parser has no typed representation for a fact the row needs

pub fn json(s: &str) -> String {
    serde_json::to_string(s).unwrap()
}

#[derive(Default)]
pub struct Status {
    pub messages: Option<u64>,
    pub uidnext: Option<u64>,
    pub uidvalidity: Option<u64>,
    pub highestmodseq: Option<u64>,
}

pub fn status(name: &str, s: &Status) -> String {
    let mut out = format!("STATUS {}", json(name));
    for (k, v) in [
        ("MESSAGES", s.messages),
        ("UIDNEXT", s.uidnext),
        ("UIDVALIDITY", s.uidvalidity),
        ("HIGHESTMODSEQ", s.highestmodseq),
    ] {
        if let Some(v) = v {
            out.push_str(&format!(" {k}={v}"));
        }
    }
    out
}

pub fn list(attrs: Vec<String>, delim: Option<String>, name: &str) -> String {
    let mut a: Vec<String> = attrs.into_iter().map(|s| s.to_lowercase()).collect();
    a.sort();
    let d = match delim {
        Some(d) => json(&d),
        None => "NIL".to_string(),
    };
    format!("LIST ({}) {} {}", a.join(","), d, json(name))
}

#[derive(Default)]
pub struct Fetch {
    pub uid: Option<u64>,
    pub flags: Option<Vec<String>>,
    pub internaldate: Option<Option<String>>,
    pub size: Option<u64>,
    pub modseq: Option<u64>,
    pub body: Option<Option<usize>>,
}

pub fn fetch(seq: u64, f: Fetch) -> String {
    let mut out = format!("FETCH {seq}");
    if let Some(u) = f.uid {
        out.push_str(&format!(" UID={u}"));
    }
    if let Some(mut fl) = f.flags {
        fl.sort();
        out.push_str(&format!(" FLAGS=({})", fl.join(" ")));
    }
    if let Some(d) = f.internaldate {
        out.push_str(&format!(" INTERNALDATE={}", d.unwrap_or_else(|| "NIL".into())));
    }
    if let Some(s) = f.size {
        out.push_str(&format!(" RFC822.SIZE={s}"));
    }
    if let Some(m) = f.modseq {
        out.push_str(&format!(" MODSEQ={m}"));
    }
    if let Some(b) = f.body {
        match b {
            Some(n) => out.push_str(&format!(" BODY[]={n}")),
            None => out.push_str(" BODY[]=NIL"),
        }
    }
    out
}

pub fn capability(caps: Vec<String>) -> String {
    let mut c: Vec<String> = caps.into_iter().map(|s| s.to_uppercase()).collect();
    c.sort();
    format!("CAPABILITY {}", c.join(" "))
}

/// `TAGGED OK [CODE] text`, `BYE [CODE] text`: parts that are empty are left out.
pub fn cond(head: &str, code: Option<String>, text: &str) -> String {
    let mut parts = vec![head.to_string()];
    if let Some(c) = code {
        parts.push(format!("[{}]", c.to_uppercase()));
    }
    if !text.is_empty() {
        parts.push(text.to_string());
    }
    parts.join(" ")
}

/// Comparison form: an RFC 3501 date-day-fixed may be " 5" or "05"; both mean the same day,
/// and a parser that keeps a parsed date (imap-codec) can only print one of them.
pub fn canon(f: &str) -> String {
    // INBOX is case-insensitive (RFC 3501 §5.1): both crates print any spelling as INBOX.
    let f = &code_atom(&inbox(f));
    let key = "INTERNALDATE=0";
    if let Some(i) = f.find(key) {
        let b = f.as_bytes();
        let j = i + key.len();
        if j + 1 < b.len() && b[j].is_ascii_digit() && b[j + 1] == b'-' {
            let mut s = f.to_string();
            s.replace_range(j - 1..j, " ");
            return s;
        }
    }
    f.to_string()
}

fn inbox(f: &str) -> String {
    if let Some(rest) = f.strip_prefix("STATUS ") {
        if rest.len() >= 7 && rest[..7].eq_ignore_ascii_case("\"inbox\"") {
            return format!("STATUS \"INBOX\"{}", &rest[7..]);
        }
    }
    if f.starts_with("LIST ") && f.len() > 8 {
        let cut = f.len() - 8;
        if f.is_char_boundary(cut) && f[cut..].eq_ignore_ascii_case(" \"inbox\"") {
            return format!("{} \"INBOX\"", &f[..cut]);
        }
    }
    f.to_string()
}

/// `TAGGED OK [HIGHESTMODSEQ 7] done` -> `TAGGED OK [HIGHESTMODSEQ] done`: the format's
/// `[<CODE>]` is read as the code's atom (its arguments are not compared), whichever way an
/// adaptor printed it.
fn code_atom(f: &str) -> String {
    let head_len = if f.starts_with("TAGGED ") {
        match f[7..].find(' ') {
            Some(i) => 7 + i + 1,
            None => return f.to_string(),
        }
    } else if f.starts_with("BYE ") {
        4
    } else {
        return f.to_string();
    };
    let rest = &f[head_len..];
    if let Some(inner) = rest.strip_prefix('[') {
        if let Some(end) = inner.find(']') {
            let code = &inner[..end];
            let atom = code.split(' ').next().unwrap_or("").to_uppercase();
            return format!("{}[{}]{}", &f[..head_len], atom, &inner[end + 1..]);
        }
    }
    f.to_string()
}
