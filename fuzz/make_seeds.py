#!/usr/bin/env python3
"""Builds fuzz/seeds/<target>/ from real data: ../shared/corpus (mbox files, Maildir file and
folder names, messages), ../shared/cases (POP3 and IMAP transcripts, TRANSCRIPT-FORMAT.md,
case 10's folder names, case 12's Maildir names) and a few hand-written inputs.

Run from the repository root: python3 fuzz/make_seeds.py [SHARED_DIR]. Deterministic; every
seed is at most MAX_SEED bytes, the whole set a few hundred KB. The first byte of each seed is
the mode/parameter byte that mailkeep::fuzzing::fuzz_<target> expects.
"""
import hashlib
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(ROOT), "shared")
OUT = os.path.join(ROOT, "fuzz", "seeds")
MAX_SEED = 6000


def put(target, data):
    data = bytes(data)[:MAX_SEED]
    d = os.path.join(OUT, target)
    os.makedirs(d, exist_ok=True)
    name = hashlib.sha1(data).hexdigest()[:16]
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def read(path):
    with open(path, "rb") as f:
        return f.read()


def files(top):
    for dirpath, dirnames, filenames in os.walk(top):
        dirnames.sort()
        for n in sorted(filenames):
            yield os.path.join(dirpath, n)


def transcripts(kind):
    """(case folder, list of sessions, each a list of server byte strings) for transcripts of
    `kind` ('pop3' or 'imap')."""
    cases = os.path.join(SHARED, "cases")
    for case in sorted(os.listdir(cases)):
        folder = os.path.join(cases, case)
        if not os.path.isdir(folder):
            continue
        for n in sorted(os.listdir(folder)):
            if not n.endswith(".txt") or n.startswith("expected"):
                continue
            text = read(os.path.join(folder, n)).decode("utf-8", "replace")
            is_pop = "+OK" in text and "* OK" not in text
            if (kind == "pop3") != is_pop:
                continue
            sessions, cur = [], []
            for line in text.splitlines():
                if line.startswith("SESSION") and cur:
                    sessions.append(cur)
                    cur = []
                elif line.startswith("S: "):
                    cur.append(line[3:].encode() + b"\r\n")
                elif line.startswith("S+ "):
                    p = os.path.join(folder, line[3:].strip())
                    if os.path.exists(p):
                        cur.append(read(p))
            if cur:
                sessions.append(cur)
            yield folder, sessions


def mbox_chunks(data, limit):
    """The file cut after whole messages, at most `limit` bytes (at least one message)."""
    starts = [m.start() for m in re.finditer(rb"(?:^|\n)From ", data)]
    out = data[:limit]
    for s in starts[1:]:
        if s > limit:
            break
        out = data[: s + 1]
    return out


def main():
    # mbox: heads of every mbox file of the corpus and the cases, both dialects, a few buffer
    # sizes; and a middle piece of each (starting at a separator).
    mboxes = [p for p in files(SHARED) if p.endswith(".mbox") or p.endswith("Local Folders/Inbox")]
    for p in mboxes:
        data = read(p)
        put("mbox", b"\xfe" + mbox_chunks(data, MAX_SEED - 1))
        put("mbox", b"\x01" + mbox_chunks(data, 2500))
        put("mbox", b"\x10" + data[:1200])
        mid = data.find(b"\n\nFrom ", len(data) // 2)
        if mid > 0:
            put("mbox", b"\xfe" + mbox_chunks(data[mid + 2 :], 3000))

    # maildir: real file names (mode 0), folder names (mode 2), sink names (mode 1).
    names, folders = set(), set()
    for p in files(os.path.join(SHARED, "corpus", "maildir")):
        names.add(os.path.basename(p))
        for part in p.split(os.sep):
            if part.startswith("."):
                folders.add(part)
    for p in files(os.path.join(SHARED, "cases", "12-maildir-info-separators-and-size-fields")):
        names.add(os.path.basename(p))
    for n in sorted(names)[:300]:
        put("maildir", b"\x00" + n.encode())
    for f in sorted(folders):
        put("maildir", b"\x00" + f.encode())
        put("maildir", b"\x02" + f[1:].replace(".", "/").encode())
    for mb in ["INBOX", "Sent", "Archive/2023", "INBOX/Work", "a.b/c%d", "日本語/メモ", "", "x//y"]:
        put("maildir", b"\x02" + mb.encode())
    put("maildir", b"\x01" + (1704535200).to_bytes(8, "little") + (4321).to_bytes(8, "little")
        + b"\x0b" + bytes.fromhex("0123456789abcdef"))

    # mutf7: case 10's names, wire and decoded.
    tsv = os.path.join(SHARED, "cases", "10-modified-utf7-folder-names")
    for p in files(tsv):
        if p.endswith(".tsv") or p.endswith(".txt"):
            for line in read(p).decode("utf-8", "replace").splitlines():
                for field in line.split("\t"):
                    if field and not field.startswith("#"):
                        put("mutf7", field.encode())
    for s in ["&-", "Cart&APM-rio", "&ZeVnLIqe-", "Entw&APw-rfe", "&AOQ-&AOQ-", "+AOQ-", "a&b"]:
        put("mutf7", s.encode())

    # pop3: whole sessions from the transcripts (mode 0, two read sizes), the RETR wire files'
    # messages (mode 1), CAPA lines (mode 2), single server lines (mode 3).
    for folder, sessions in transcripts("pop3"):
        for sess in sessions:
            wire = b"".join(sess)
            put("pop3", b"\xfc" + wire)
            put("pop3", b"\x0c" + wire)
            for chunk in sess:
                for line in chunk.split(b"\r\n")[:40]:
                    if line:
                        put("pop3", b"\x03" + line)
    for p in files(os.path.join(SHARED, "cases")):
        if p.endswith(".eml"):
            put("pop3", b"\xfd" + read(p)[:3000])
    put("pop3", b"\x02" + b"TOP\nUSER\nUIDL\nPIPELINING\nSASL PLAIN XOAUTH2\nRESP-CODES\n"
        b"IMPLEMENTATION Dovecot\n.hidden")
    put("pop3", b"\x00" + b"+OK <1896.697170952@dbc.mtview.ca.us>\r\n+OK\r\nTOP\r\nUIDL\r\n"
        b"SASL PLAIN\r\n.\r\n+OK\r\n+OK 2 320\r\n+OK\r\n1 120\r\n2 200\r\n.\r\n+OK\r\n"
        b"1 whqtswO00WBw418f9t5JxYwZ\r\n2 QhdPYR:00WBw1Ph7x7\r\n.\r\n+OK\r\nSubject: a\r\n\r\n"
        b"..dot\r\n.\r\n+OK\r\nb\r\n.\r\n+OK\r\n+OK\r\n+OK bye\r\n")

    # imap: whole server streams (mode 0) and single response lines (mode 1).
    for folder, sessions in transcripts("imap"):
        for sess in sessions:
            wire = b"".join(sess)
            put("imap", b"\x00" + wire)
            put("imap", b"\x0e" + wire)
            for chunk in sess:
                for line in chunk.split(b"\r\n")[:60]:
                    m = re.match(rb"\* (LIST|LSUB|NAMESPACE) (.*)", line)
                    if m:
                        put("imap", b"\x01" + m.group(2))
                    elif line.startswith(b"* OK") or b"[" in line:
                        put("imap", b"\x01" + line.split(b" ", 1)[-1])
    for s in [b"(\\HasNoChildren) \".\" INBOX.Sent", b"((\"INBOX.\" \".\")) NIL NIL",
              b"() NIL {8}\r\nflat/box", b"[APPENDUID 38505 3955] APPEND completed",
              b"Request is throttled. Suggested Backoff Time: 4000 milliseconds"]:
        put("imap", b"\x01" + s)

    # imap: the server-quirk response matrix (tests/data/imap-quirk-responses.txt), whole.
    rows = os.path.join(os.path.dirname(__file__), "..", "tests", "data", "imap-quirk-responses.txt")
    for line in open(rows, encoding="utf-8"):
        if line.startswith("bytes: "):
            raw = line[len("bytes: "):].rstrip("\n").replace("\\r\\n", "\r\n").replace("\\x00", "\0")
            put("imap", b"\x00" + raw.encode("utf-8"))

    # endpoint: forms from the README and the tests; mode 1 for password URLs.
    for s in ["imaps://alice@imap.example.org", "pop3s://bob%40example.org@pop.example.org:995",
              "imap://u@[::1]:1143", "pop3://u@127.0.0.1:1100", "maildir:~/Mail", "mbox:/tmp/a.mbox",
              "zip:backup.zip", "maildr:/x", "./a:b", "~", "c:/x", "imaps://u@[fe80::1%25eth0]/",
              "IMAPS://Me@Host:0", "ftp://x@y"]:
        put("endpoint", b"\x00" + s.encode())
    put("endpoint", b"\x01" + b"alice\x00\x00imap.example.org")
    put("endpoint", b"\x03" + b"a%40b\x00x@y\x00host:993/")

    # runconf: the example configs in the README and docs/ and the tests' TOML texts.
    texts = []
    docs = os.path.join(ROOT, "docs")
    doc_pages = sorted(os.path.join(docs, f) for f in os.listdir(docs) if f.endswith(".md")) \
        if os.path.isdir(docs) else []
    runconf = os.path.join(ROOT, "src", "cli", "runconf")
    runconf_files = sorted(os.path.join(runconf, f) for f in os.listdir(runconf) if f.endswith(".rs")) \
        if os.path.isdir(runconf) else []
    for p in [os.path.join(ROOT, "README.md")] + doc_pages + runconf_files + [
              os.path.join(ROOT, "tests", "run_jobs.rs")]:
        if not os.path.exists(p):
            continue
        src = read(p).decode("utf-8", "replace")
        texts += re.findall(r"```toml\n(.*?)```", src, re.S)
        texts += [t.replace('\\"', '"') for t in re.findall(r'r#"(.*?)"#', src, re.S)
                  if "=" in t and "[" in t]
    for t in texts:
        put("runconf", t.encode())
    put("runconf", b'[accounts.a]\nendpoint = "imaps://u@h"\npassword = "x"\n')


    # date: Date: and Received: dates and mbox From-line dates from the corpus and the cases,
    # plus the broken forms of src/date.rs's table.
    dates = set()
    for top in [os.path.join(SHARED, "corpus"), os.path.join(SHARED, "cases")]:
        for p in files(top):
            for line in read(p)[:200000].split(b"\n"):
                if line[:5].lower() == b"date:":
                    dates.add(line[5:].strip())
                elif line.startswith(b"From ") and len(line) < 200:
                    dates.add(line[5:].split(b" ", 1)[-1].strip())
                elif line[:1] in (b" ", b"\t") and b";" in line and len(line) < 200:
                    dates.add(line.rsplit(b";", 1)[-1].strip())
    for d in sorted(dates)[:300]:
        put("date", d)
    for s in ["Wed Mar  5 08:15:00 2014", "Tue, 4 Mar 114 10:00:00 +0100 (CET)",
              "2014-03-04T10:00:00.123-05:00", "04-Mar-14 10:00 GMT+0100", "4.Mar.2014 8:05 A",
              "Tue, 4 Mar 2014 10:00:00 +9999", "31-Dec-2999 23:59:60 -0000", "garbage"]:
        put("date", s.encode())

if __name__ == "__main__":
    main()
