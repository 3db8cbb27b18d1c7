#!/usr/bin/env python3
"""A minimal pipelined mail client, the ceiling of what the server delivers in the benchmark:
it reads every message and counts it, and writes nothing to disk.

usage: rawclient.py imap|pop3 PORT --manifest FILE [--tls --ca CA.pem] [--user U]

The password comes from $BENCH_PW (never argv).
- imap: LOGIN, LIST "" "*", then one write holding `EXAMINE <mailbox>` and
  `UID FETCH 1:* BODY.PEEK[]` for every selectable mailbox (pipelined, RFC 3501 5.5), then
  reads every literal, LOGOUT.
- pop3: USER/PASS, STAT, then `RETR 1..n` pipelined (RFC 2449 PIPELINING) with up to 256
  commands in flight, reading each multi-line answer up to its CRLF.CRLF, QUIT.
The messages and octets (LF line ends, dot-stuffing undone) per mailbox must equal the manifest
of scripts/lib/genmail.py (POP3: its INBOX) or the run fails (exit 1, one line per
difference).
"""
import argparse, os, re, socket, ssl, sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchcheck import compare, expected_from, mutf7_decode  # noqa: E402


def connect(port, tls, ca):
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if tls:
        ctx = ssl.create_default_context(cafile=ca)
        sock = ctx.wrap_socket(sock, server_hostname="127.0.0.1")
    return sock


def quote(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


LIST_RE = re.compile(rb'^\* LIST \(([^)]*)\) (NIL|"(?:[^"\\]|\\.)*") (.*)\r\n$', re.I)
LITERAL_RE = re.compile(rb"\{(\d+)\}\r\n$")


def imap(args, password):
    sock = connect(args.port, args.tls, args.ca)
    r = sock.makefile("rb", buffering=1 << 20)

    def send(line):
        sock.sendall(line.encode() + b"\r\n")

    def until_tagged(tag):
        lines = []
        while True:
            line = r.readline()
            if not line:
                raise SystemExit(f"error: raw imap: connection closed waiting for {tag}")
            if line.startswith(tag.encode() + b" "):
                if not line[len(tag) + 1:].upper().startswith(b"OK"):
                    raise SystemExit(f"error: raw imap: {line!r}")
                return lines
            lines.append(line)

    r.readline()  # greeting
    send(f"a LOGIN {quote(args.user)} {quote(password)}")
    until_tagged("a")
    send('l LIST "" "*"')
    mailboxes = []
    for line in until_tagged("l"):
        m = LIST_RE.match(line)
        if not m or b"\\noselect" in m.group(1).lower():
            continue
        delim = m.group(2).strip(b'"').decode() if m.group(2) != b"NIL" else None
        name = m.group(3).decode()
        if name.startswith('"'):
            name = name[1:-1].replace('\\"', '"').replace("\\\\", "\\")
        mailboxes.append((name, delim))
    # Everything at once: EXAMINE and UID FETCH for every mailbox in one write.
    cmds = []
    for i, (name, _) in enumerate(mailboxes):
        cmds.append(f"s{i} EXAMINE {quote(name)}\r\nf{i} UID FETCH 1:* BODY.PEEK[]\r\n")
    sock.sendall("".join(cmds).encode())
    found = {}
    current = None
    pending = len(mailboxes) * 2
    while pending:
        line = r.readline()
        if not line:
            raise SystemExit("error: raw imap: connection closed")
        if line[:1] == b"*":
            m = LITERAL_RE.search(line)
            while m:
                data = r.read(int(m.group(1)))
                entry = found.setdefault(current, [0, 0])
                entry[0] += 1
                entry[1] += len(data) - data.count(b"\r")
                line = r.readline()
                m = LITERAL_RE.search(line)
            continue
        tag, _, rest = line.partition(b" ")
        if not rest.upper().startswith(b"OK"):
            raise SystemExit(f"error: raw imap: {line!r}")
        pending -= 1
        if tag.startswith(b"s"):
            name, delim = mailboxes[int(tag[1:])]
            levels = name.split(delim) if delim else [name]
            current = "/".join(mutf7_decode(x) for x in levels)
    send("z LOGOUT")
    sock.close()
    return found


def pop3(args, password):
    sock = connect(args.port, args.tls, args.ca)
    buf = bytearray()
    pos = 0

    def fill():
        data = sock.recv(1 << 20)
        if not data:
            raise SystemExit("error: raw pop3: connection closed")
        buf.extend(data)

    def line():
        nonlocal pos
        while True:
            i = buf.find(b"\r\n", pos)
            if i >= 0:
                out = bytes(buf[pos:i])
                pos = i + 2
                if not out.startswith(b"+OK"):
                    raise SystemExit(f"error: raw pop3: {out!r}")
                return out
            fill()

    line()  # greeting
    sock.sendall(f"USER {args.user}\r\nPASS {password}\r\nSTAT\r\n".encode())
    line()
    line()
    count = int(line().split()[1])
    n = b = 0
    sent = 0
    window = 256

    def send_more():
        nonlocal sent
        upto = min(count, n + window)
        if sent < upto:
            sock.sendall(b"".join(b"RETR %d\r\n" % k for k in range(sent + 1, upto + 1)))
            sent = upto

    send_more()
    while n < count:
        line()
        start = pos
        scan = pos - 2  # an empty message ends right after the +OK line's CRLF
        while True:
            end = buf.find(b"\r\n.\r\n", scan)
            if end >= 0:
                break
            scan = max(start - 2, len(buf) - 4)
            fill()
        body = bytes(buf[start:end + 2])
        pos = end + 5
        stuffed = body.count(b"\r\n..") + (1 if body.startswith(b"..") else 0)
        n += 1
        b += len(body) - stuffed - body.count(b"\r")
        if pos > (8 << 20):
            del buf[:pos]
            pos = 0
        send_more()
    sock.sendall(b"QUIT\r\n")
    sock.close()
    return {"INBOX": [n, b]} if n else {}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("proto", choices=["imap", "pop3"])
    ap.add_argument("port", type=int)
    ap.add_argument("--manifest", required=True)
    ap.add_argument("--tls", action="store_true")
    ap.add_argument("--ca")
    ap.add_argument("--user", default="bench")
    args = ap.parse_args()
    password = os.environ["BENCH_PW"]
    found = imap(args, password) if args.proto == "imap" else pop3(args, password)
    expected = expected_from(args.manifest, "INBOX" if args.proto == "pop3" else None)
    label = f"raw {args.proto}{' TLS' if args.tls else ''}"
    problems = compare(expected, found, label)
    for p in problems:
        print(p, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
