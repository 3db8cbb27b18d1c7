#!/usr/bin/env python3
"""Generates a realistic mailbox straight into a Dovecot Maildir++ tree (for the benchmark).

usage: genmail.py MAILDIR N [--seed S] [--uid U --gid G] [--small]

Size mix (issue 8): most messages 2-20 KB of text, about one in ten 100 KB-2 MB with a base64
attachment, a few (1 in 2000) near 10 MB. --small keeps every message at 2-20 KB. Folders:
INBOX, Sent, Archive/2023, Archive/2024, a Japanese-named one and a German one (stored in
modified UTF-7 like Dovecot does), with assorted flags. INTERNALDATEs (file mtimes) spread over
two years. Prints "<messages> <bytes>" on stdout.
"""
import argparse, base64, os, random, time

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
    if ARGS.small or r < 0.9:
        return (head + "Content-Type: text/plain; charset=utf-8\n\n" + text(rng, rng.randint(2000, 20000))).encode()
    big = rng.randint(9_000_000, 10_000_000) if rng.random() < 0.005 else rng.randint(100_000, 2_000_000)
    blob = base64.encodebytes(os.urandom(big * 3 // 4)).decode()
    return (head + 'Content-Type: multipart/mixed; boundary="b"\n\n--b\nContent-Type: text/plain\n\n'
            + text(rng, 1500) + '--b\nContent-Type: application/octet-stream; name="a.bin"\n'
            + "Content-Transfer-Encoding: base64\n\n" + blob + "--b--\n").encode()

ap = argparse.ArgumentParser()
ap.add_argument("maildir"); ap.add_argument("n", type=int)
ap.add_argument("--seed", type=int, default=1); ap.add_argument("--uid", type=int); ap.add_argument("--gid", type=int)
ap.add_argument("--small", action="store_true")
ARGS = ap.parse_args()
rng = random.Random(ARGS.seed)
now = int(time.time())
total = 0
dirs = {}
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
print(ARGS.n, total)
