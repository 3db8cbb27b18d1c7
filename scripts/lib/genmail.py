#!/usr/bin/env python3
"""Generates a realistic mailbox straight into a Dovecot Maildir++ tree (for the benchmark).

usage: genmail.py MAILDIR N [--seed S] [--uid U --gid G] [--small] [--manifest FILE]

Size mix (issue 8): most messages 2-20 KB of text, about one in ten 100 KB-2 MB with a base64
attachment, a few near 10 MB (9-10 MB, one in every 2,000 messages: N=500 has 1, N=5000 has 3,
N=20000 has 10). --small keeps every message at 2-20 KB. Folders: INBOX, Sent, Archive/2023,
Archive/2024, a Japanese-named one and a German one (stored in modified UTF-7 like Dovecot
does: `.&ZeVnLIqe-` is 日本語, `.Entw&APw-rfe` is Entwürfe), with assorted flags (\Seen,
\Answered, \Flagged, \Draft, none). INTERNALDATEs (file mtimes) spread over two years. Lines end
in LF on disk (Dovecot serves them with CRLF). The output is deterministic for a given seed.

Prints "<messages> <bytes>" on stdout. With --manifest, also writes a JSON object
{folder: {"count": messages, "bytes": octets on disk (LF line ends), "wire": octets as served
(CRLF line ends)}} keyed by the folder's decoded name with `/` between levels ("INBOX",
"Archive/2023", "日本語"), which scripts/lib/benchcheck.py checks each tool's result against.
"""
import argparse, base64, json, os, random, time

FOLDERS = [("INBOX", ""), ("Sent", ".Sent"), ("Archive/2023", ".Archive.2023"),
           ("Archive/2024", ".Archive.2024"), ("日本語", ".&ZeVnLIqe-"), ("Entwürfe", ".Entw&APw-rfe")]
FLAGS = ["S", "S", "S", "RS", "FS", "", "", "DS", "S"]
WORDS = ("mail backup server archive quota folder message restore verify ledger invoice meeting "
         "report schedule budget review draft notes please thanks regards tomorrow project").split()

def text(rng, n):
    out, size = [], 0
    while size < n:
        line = " ".join(rng.choice(WORDS) for _ in range(rng.randint(6, 12)))
        out.append(line)
        size += len(line) + 1
    return "\n".join(out) + "\n"

def message(rng, i, when):
    r = rng.random()
    date = time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime(when))
    head = (f"Return-Path: <sender{i % 97}@example.org>\n"
            f"Received: from mx.example.org by mail.example.com; {date}\n"
            f"From: Sender {i % 97} <sender{i % 97}@example.org>\nTo: bench@example.com\n"
            f"Subject: message {i} {rng.choice(WORDS)}\nDate: {date}\n"
            f"Message-ID: <bench-{i}@example.org>\nMIME-Version: 1.0\n")
    if not ARGS.small and i % 2000 == 250:
        return head.encode() + attachment(rng, rng.randint(9_000_000, 10_000_000))
    if ARGS.small or r < 0.9:
        return (head + "Content-Type: text/plain; charset=utf-8\n\n" + text(rng, rng.randint(2000, 20000))).encode()
    big = rng.randint(100_000, 2_000_000)
    return head.encode() + attachment(rng, big)

def attachment(rng, big):
    """A multipart/mixed body of about `big` octets: a short text part and a base64 part."""
    blob = base64.encodebytes(rng.randbytes(big * 3 // 4)).decode()
    return ('Content-Type: multipart/mixed; boundary="b"\n\n--b\nContent-Type: text/plain\n\n'
            + text(rng, 1500) + '--b\nContent-Type: application/octet-stream; name="a.bin"\n'
            + "Content-Transfer-Encoding: base64\n\n" + blob + "--b--\n").encode()

ap = argparse.ArgumentParser()
ap.add_argument("maildir"); ap.add_argument("n", type=int)
ap.add_argument("--seed", type=int, default=1); ap.add_argument("--uid", type=int); ap.add_argument("--gid", type=int)
ap.add_argument("--small", action="store_true"); ap.add_argument("--manifest")
ARGS = ap.parse_args()
rng = random.Random(ARGS.seed)
now = int(time.time())
total = 0
dirs = {}
manifest = {name: {"count": 0, "bytes": 0, "wire": 0} for name, _ in FOLDERS}
for name, sub in FOLDERS:
    d = os.path.join(ARGS.maildir, sub) if sub else ARGS.maildir
    for x in ("cur", "new", "tmp"):
        os.makedirs(os.path.join(d, x), exist_ok=True)
    if sub:
        open(os.path.join(d, "maildirfolder"), "a").close()
    dirs[name] = d
for i in range(ARGS.n):
    when = now - rng.randint(0, 2 * 365 * 86400)
    folder = FOLDERS[0][0] if rng.random() < 0.5 else rng.choice(FOLDERS)[0]
    raw = message(rng, i, when)
    total += len(raw)
    m = manifest[folder]
    m["count"] += 1; m["bytes"] += len(raw); m["wire"] += len(raw) + raw.count(b"\n")
    base = f"{when}.M{i:09d}P1.bench"
    path = os.path.join(dirs[folder], "cur", f"{base}:2,{rng.choice(FLAGS)}")
    with open(path, "wb") as f:
        f.write(raw)
    os.utime(path, (when, when))
if ARGS.uid is not None:
    for root, ds, fs in os.walk(ARGS.maildir):
        for x in ds + fs:
            os.chown(os.path.join(root, x), ARGS.uid, ARGS.gid)
    os.chown(ARGS.maildir, ARGS.uid, ARGS.gid)
if ARGS.manifest:
    with open(ARGS.manifest, "w", encoding="utf-8") as f:
        json.dump(manifest, f, ensure_ascii=False, indent=1)
print(ARGS.n, total)
