#!/usr/bin/env python3
"""Checks that a benchmark run got every message: compares a Maildir++ tree with the manifest
scripts/lib/genmail.py wrote for the seeded account.

usage: benchcheck.py MANIFEST DIR [--only FOLDER] [--label NAME] [--strip-header NAME]
                     [--unfold-headers]

DIR is a Maildir++ tree (the root is INBOX, `.Archive.2023` is Archive/2023, names in IMAP
modified UTF-7 as Dovecot, mbsync 1.4 and mailkeep store them). Every message file in a
folder's cur/ and new/ counts; its octets are counted with line ends as LF (CR removed), so a
tool that stores CRLF and one that stores LF compare alike with the seeded files (LF). Each
folder of the manifest must hold exactly its count and octets, and no other folder may hold
messages. With --only FOLDER only that folder of the manifest is expected (POP3 serves INBOX).
With --strip-header NAME one header field NAME that the tool adds to every message it stores
(mbsync's `X-TUID:`, its own tracking ID) is not counted. With --unfold-headers the line
breaks of folded header lines are not counted (getmail6 re-folds long header lines through
Python's email package; the seeded headers are never folded, so unfolding gives their octets).

Exit 0 and one summary line on stdout when complete; exit 1 and one line per difference on
stderr otherwise.
"""
import argparse, base64, json, os, sys


def mutf7_decode(name):
    """Decodes an IMAP modified UTF-7 name (RFC 3501 5.1.3): `&ZeVnLIqe-` is 日本語."""
    out, i = [], 0
    while i < len(name):
        c = name[i]
        if c != "&":
            out.append(c)
            i += 1
            continue
        j = name.index("-", i)
        chunk = name[i + 1:j]
        if not chunk:
            out.append("&")
        else:
            b64 = chunk.replace(",", "/")
            b64 += "=" * (-len(b64) % 4)
            out.append(base64.b64decode(b64).decode("utf-16-be"))
        i = j + 1
    return "".join(out)


def folder_name(rel):
    """The mailbox of a Maildir++ folder directory: "" is INBOX, `.Archive.2023` Archive/2023."""
    if rel == "":
        return "INBOX"
    return "/".join(mutf7_decode(level) for level in rel[1:].split("."))


def added_header_octets(data, name):
    """The octets of the header field `name` (bytes, lower case, with its colon) in the header
    section of `data`, line end included; 0 when it has none."""
    head = data[:header_end(data)]
    lower = head.lower()
    i = 0 if lower.startswith(name) else lower.find(b"\n" + name)
    if i < 0:
        return 0
    if i > 0:
        i += 1
    j = data.find(b"\n", i)
    line = data[i:j + 1 if j >= 0 else len(data)]
    return len(line) - line.count(b"\r")


def header_end(data):
    ends = [e for e in (data.find(b"\n\n"), data.find(b"\n\r\n")) if e >= 0]
    return min(ends) if ends else len(data)


def scan(root, strip=None, unfold=False):
    """{folder: [messages, octets with LF line ends]} for a Maildir++ tree, not counting the
    header field `strip` (e.g. b"x-tuid:") when given, nor header folds with `unfold`."""
    found = {}
    folders = [""] + sorted(d for d in os.listdir(root) if d.startswith(".") and d not in (".", "..")
                            and os.path.isdir(os.path.join(root, d)))
    for rel in folders:
        n = b = 0
        for sub in ("cur", "new"):
            d = os.path.join(root, rel, sub)
            if not os.path.isdir(d):
                continue
            for entry in os.scandir(d):
                if not entry.is_file():
                    continue
                with open(entry.path, "rb") as f:
                    data = f.read()
                n += 1
                b += len(data) - data.count(b"\r")
                if strip:
                    b -= added_header_octets(data, strip)
                if unfold:
                    head = data[:header_end(data)]
                    b -= head.count(b"\n ") + head.count(b"\n\t")
        if n:
            found[folder_name(rel)] = [n, b]
    return found


def compare(expected, found, label):
    """Lines naming every difference between {folder: [count, octets]} maps; [] when equal."""
    problems = []
    for folder in sorted(set(expected) | set(found)):
        want = expected.get(folder, [0, 0])
        got = found.get(folder, [0, 0])
        if want != got:
            problems.append(f"error: {label}: folder {folder!r} holds {got[0]} messages, {got[1]} octets; "
                            f"expected {want[0]} messages, {want[1]} octets")
    return problems


def expected_from(manifest_path, only):
    with open(manifest_path, encoding="utf-8") as f:
        manifest = json.load(f)
    return {k: [v["count"], v["bytes"]] for k, v in manifest.items()
            if v["count"] and (only is None or k == only)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("manifest")
    ap.add_argument("dir")
    ap.add_argument("--only")
    ap.add_argument("--label", default="run")
    ap.add_argument("--strip-header")
    ap.add_argument("--unfold-headers", action="store_true")
    args = ap.parse_args()
    expected = expected_from(args.manifest, args.only)
    if not os.path.isdir(args.dir):
        print(f"error: {args.label}: {args.dir} does not exist", file=sys.stderr)
        return 1
    strip = args.strip_header.lower().encode() + b":" if args.strip_header else None
    found = scan(args.dir, strip, args.unfold_headers)
    problems = compare(expected, found, args.label)
    for p in problems:
        print(p, file=sys.stderr)
    if problems:
        return 1
    n = sum(v[0] for v in found.values())
    b = sum(v[1] for v in found.values())
    print(f"{args.label}: complete, {n} messages, {b} octets in {len(found)} folders")
    return 0


if __name__ == "__main__":
    sys.exit(main())
