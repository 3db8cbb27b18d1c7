//! The layers of `src/` stay layers (issue 16): every `crate::` and `super::` path in every
//! `src/**/*.rs` (code, `use` groups and doc links alike) is mapped to the top-level folder it
//! names, and a file may only name its own layer or one below:
//!
//! | layer | folder | may use |
//! | --- | --- | --- |
//! | 0 | `core/` | nothing of mailkeep |
//! | 1 | `protocol/` | core |
//! | 2 | `archive/` | core, protocol |
//! | 3 | `engine/` | core, protocol, archive |
//! | 4 | `cli/` | everything below |
//! | 5 | `lib.rs`, `main.rs`, `fuzz_api.rs` | everything |
//!
//! A path to anything else at the crate root (`crate::run`) counts as the top layer. The test
//! also fails when the graph of imports between top-level folders has a cycle. Both checks are
//! shown to fail on a planted upward import (`the_check_fails_on_*`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The layer of a top-level module name (the first segment of a `crate::` path, or a file's
/// folder under `src/`).
fn layer(top: &str) -> usize {
    match top {
        "core" => 0,
        "protocol" => 1,
        "archive" => 2,
        "engine" => 3,
        "cli" => 4,
        _ => 5,
    }
}

/// The module path of a source file, from its path relative to `src/`:
/// `archive/mbox/writer.rs` is `[archive, mbox, writer]`, `engine/mod.rs` is `[engine]`,
/// `lib.rs` and `main.rs` are the root `[]`.
fn module_of(rel: &str) -> Vec<String> {
    let rel = rel.strip_suffix(".rs").unwrap_or(rel);
    let mut segs: Vec<String> = rel.split('/').map(str::to_string).collect();
    if matches!(
        segs.last().map(String::as_str),
        Some("mod" | "lib" | "main")
    ) {
        segs.pop();
    }
    segs
}

/// The top-level folder a file belongs to (`""` for the crate root files).
fn top_of(rel: &str) -> String {
    module_of(rel).first().cloned().unwrap_or_default()
}

/// One path found in a file: its line and the top-level module it names.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Import {
    line: usize,
    text: String,
    top: String,
}

fn is_ident(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

/// The first segment of each item of a `{...}` group starting at `open` (the `{`), with the
/// index after the closing `}`.
fn group_items(s: &[u8], open: usize) -> (Vec<String>, usize) {
    let mut items = Vec::new();
    let mut depth = 0;
    let mut i = open;
    let mut at_item_start = true;
    while i < s.len() {
        match s[i] {
            b'{' => {
                depth += 1;
                at_item_start = depth == 1;
            }
            b'}' => {
                depth -= 1;
                if depth == 0 {
                    return (items, i + 1);
                }
            }
            b',' if depth == 1 => at_item_start = true,
            c if depth == 1 && at_item_start && is_ident(c) => {
                let start = i;
                while i < s.len() && is_ident(s[i]) {
                    i += 1;
                }
                items.push(String::from_utf8_lossy(&s[start..i]).into_owned());
                at_item_start = false;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    (items, s.len())
}

/// Every `crate::` and `super::` path of a file (`rel` is its path under `src/`), resolved to
/// the top-level module it names. `super::` that climbs to the crate root from a folder's
/// `mod.rs` is its own `tests` module looking at the folder, and counts as the file's own
/// folder.
fn imports(rel: &str, text: &str) -> Vec<Import> {
    let module = module_of(rel);
    let s = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < s.len() {
        let rest = &s[i..];
        let boundary = i == 0 || !(is_ident(s[i - 1]) || s[i - 1] == b':');
        let (is_crate, is_super) = (rest.starts_with(b"crate::"), rest.starts_with(b"super::"));
        if !boundary || !(is_crate || is_super) {
            i += 1;
            continue;
        }
        let line = text[..i].matches('\n').count() + 1;
        let start = i;
        // The base module the path starts from.
        let mut base: Vec<String> = Vec::new();
        if is_crate {
            i += "crate::".len();
        } else {
            base = module.clone();
            while s[i..].starts_with(b"super::") {
                base.pop();
                i += "super::".len();
            }
        }
        let firsts: Vec<String> = if i < s.len() && s[i] == b'{' {
            let (items, end) = group_items(s, i);
            i = end;
            items
        } else {
            let seg_start = i;
            while i < s.len() && is_ident(s[i]) {
                i += 1;
            }
            let first = String::from_utf8_lossy(&s[seg_start..i]).into_owned();
            // The rest of the path, for the message.
            let mut end = i;
            while s[end..].starts_with(b"::") && end + 2 < s.len() && is_ident(s[end + 2]) {
                end += 2;
                while end < s.len() && is_ident(s[end]) {
                    end += 1;
                }
            }
            i = i.max(end);
            vec![first]
        };
        let mut shown: String = String::from_utf8_lossy(&s[start..i])
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        if shown.len() > 100 {
            let cut = (0..=100)
                .rev()
                .find(|&n| shown.is_char_boundary(n))
                .unwrap_or(0);
            shown = format!("{}...", &shown[..cut]);
        }
        let mut seen = BTreeSet::new();
        for first in firsts {
            if first == "self" || first == "*" || first.is_empty() {
                continue;
            }
            let top = match base.first() {
                Some(t) => t.clone(),
                None if is_super => top_of(rel),
                None => first,
            };
            if !seen.insert(top.clone()) {
                continue;
            }
            out.push(Import {
                line,
                text: shown.clone(),
                top,
            });
        }
    }
    out
}

/// The layer rule and the cycle rule over a set of files (`(path under src/, text)`): one line
/// per breach, empty when the tree is layered.
fn check(files: &[(String, String)]) -> Vec<String> {
    let mut problems = Vec::new();
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (rel, text) in files {
        let own = top_of(rel);
        let own_layer = layer(&own);
        for imp in imports(rel, text) {
            let target = if layer(&imp.top) == 5 {
                String::new()
            } else {
                imp.top.clone()
            };
            if layer(&target) > own_layer {
                problems.push(format!(
                    "src/{rel}:{}: `{}` imports {} (layer {}) from {} (layer {})",
                    imp.line,
                    imp.text,
                    if target.is_empty() {
                        "the crate root"
                    } else {
                        &target
                    },
                    layer(&target),
                    if own.is_empty() {
                        "the crate root"
                    } else {
                        &own
                    },
                    own_layer
                ));
            }
            if target != own {
                edges.entry(own.clone()).or_default().insert(target);
            }
        }
    }
    // A cycle between top-level folders: depth-first search for a back edge.
    fn visit(
        n: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        state: &mut BTreeMap<String, u8>,
        stack: &mut Vec<String>,
        cycles: &mut Vec<String>,
    ) {
        state.insert(n.to_string(), 1);
        stack.push(n.to_string());
        for m in edges.get(n).into_iter().flatten() {
            match state.get(m.as_str()) {
                Some(1) => {
                    let from = stack.iter().position(|s| s == m).unwrap_or(0);
                    let mut cycle = stack[from..].to_vec();
                    cycle.push(m.clone());
                    for c in &mut cycle {
                        if c.is_empty() {
                            *c = "(crate root)".into();
                        }
                    }
                    cycles.push(format!(
                        "import cycle between folders: {}",
                        cycle.join(" -> ")
                    ));
                }
                Some(_) => {}
                None => visit(m, edges, state, stack, cycles),
            }
        }
        stack.pop();
        state.insert(n.to_string(), 2);
    }
    let mut state = BTreeMap::new();
    let nodes: Vec<String> = edges.keys().cloned().collect();
    for n in nodes {
        if !state.contains_key(&n) {
            visit(&n, &edges, &mut state, &mut Vec::new(), &mut problems);
        }
    }
    problems
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("a readable src folder") {
        let path = entry.expect("an entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn no_module_imports_a_layer_above_it_and_folders_form_no_cycle() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut paths = Vec::new();
    rust_files(&src, &mut paths);
    paths.sort();
    assert!(paths.len() > 40, "only {} files under src/", paths.len());
    let files: Vec<(String, String)> = paths
        .iter()
        .map(|p| {
            let rel = p.strip_prefix(&src).unwrap().to_string_lossy().into_owned();
            (rel, std::fs::read_to_string(p).unwrap())
        })
        .collect();
    let problems = check(&files);
    assert!(
        problems.is_empty(),
        "{} layer breaches:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

fn fake(rel: &str, text: &str) -> (String, String) {
    (rel.to_string(), text.to_string())
}

#[test]
fn the_check_fails_on_an_upward_import() {
    let files = [
        fake("core/date.rs", "use crate::core::error::Error;\n"),
        fake(
            "archive/mbox/writer.rs",
            "//! doc\n\nuse crate::{core::message::Flags, engine::now_secs};\n",
        ),
        fake("engine/imap.rs", "fn f() { crate::protocol::imap::x(); }\n"),
    ];
    let problems = check(&files);
    assert_eq!(
        problems,
        vec![
            "src/archive/mbox/writer.rs:3: `crate::{core::message::Flags, engine::now_secs}` imports engine (layer 3) from archive (layer 2)"
        ],
        "{problems:#?}"
    );
}

#[test]
fn the_check_fails_on_a_path_to_the_crate_root_and_on_super() {
    let files = [
        fake("engine/migrate.rs", "    crate::print_report(&r);\n"),
        // super:: from archive/zip/reader.rs is archive::zip: the same layer.
        fake("archive/zip/reader.rs", "use super::writer::X;\n"),
        // A test module in a folder's mod.rs looking at the folder: fine.
        fake(
            "engine/mod.rs",
            "mod tests { use super::*; use super::plan; }\n",
        ),
    ];
    let problems = check(&files);
    assert_eq!(
        problems,
        vec![
            "src/engine/migrate.rs:1: `crate::print_report` imports the crate root (layer 5) from engine (layer 3)"
        ]
    );
}

#[test]
fn the_check_fails_on_a_cycle_between_folders() {
    // Both directions between two folders: the upward one is a breach, and so is the cycle.
    let files = [
        fake("protocol/imap/mod.rs", "use crate::archive::x;\n"),
        fake("archive/ledger.rs", "use crate::protocol::imap::y;\n"),
    ];
    let problems = check(&files);
    assert_eq!(problems.len(), 2, "{problems:#?}");
    assert!(problems[0]
        .starts_with("src/protocol/imap/mod.rs:1: `crate::archive::x` imports archive (layer 2)"));
    assert_eq!(
        problems[1],
        "import cycle between folders: archive -> protocol -> archive"
    );
}

#[test]
fn module_paths_of_files() {
    assert_eq!(
        module_of("archive/mbox/writer.rs"),
        ["archive", "mbox", "writer"]
    );
    assert_eq!(module_of("engine/mod.rs"), ["engine"]);
    assert!(module_of("lib.rs").is_empty());
    assert_eq!(top_of("main.rs"), "");
    assert_eq!(layer(""), 5);
}
