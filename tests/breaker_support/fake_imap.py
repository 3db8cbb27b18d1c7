# Minimal IMAP server: mailboxes from a JSON spec {wire: {"uidvalidity": n, "msgs": [body,...]}}
import socket, sys, threading, json, re
port = int(sys.argv[1]); spec = json.load(open(sys.argv[2])); log = sys.argv[3] if len(sys.argv) > 3 else None
lock = threading.Lock()
for _n, _mb in spec.items():
    _mb.setdefault("uids", list(range(1, len(_mb["msgs"]) + 1)))
    _mb.setdefault("next", len(_mb["msgs"]) + 1)
def crlf(b): return b.replace("\r\n", "\n").replace("\n", "\r\n").encode()
def q(s): return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'
def handle(c):
    f = c.makefile("rb")
    c.sendall(b"* OK [CAPABILITY IMAP4rev1 UIDPLUS] fake\r\n")
    sel = None
    while True:
        line = f.readline()
        if not line: return
        s = line.decode("utf-8", "replace").rstrip("\r\n")
        if log:
            with lock: open(log, "a").write(s + "\n")
        parts = s.split(" ", 2); tag = parts[0]; cmd = parts[1].upper() if len(parts) > 1 else ""; arg = parts[2] if len(parts) > 2 else ""
        if cmd == "UID":
            sub = arg.split(" ", 1); cmd = "UID " + sub[0].upper(); arg = sub[1] if len(sub) > 1 else ""
        def name_arg(a):
            a = a.strip()
            if a.startswith('"'):
                m = re.match(r'"((?:[^"\\]|\\.)*)"', a); return m.group(1).replace('\\"', '"').replace("\\\\", "\\"), a[m.end():]
            sp = a.split(" ", 1); return sp[0], (sp[1] if len(sp) > 1 else "")
        out = b""
        if cmd == "CAPABILITY": out = b"* CAPABILITY IMAP4rev1 UIDPLUS\r\n" + (tag + " OK done\r\n").encode()
        elif cmd in ("LOGIN", "NOOP", "ENABLE", "ID", "CHECK", "UNSELECT", "CLOSE"): out = (tag + " OK done\r\n").encode()
        elif cmd == "NAMESPACE": out = b'* NAMESPACE (("" "/")) NIL NIL\r\n' + (tag + " OK done\r\n").encode()
        elif cmd in ("LIST", "LSUB"):
            for w in spec:
                if "\r" in w or "\n" in w:
                    out += ('* LIST (\\HasNoChildren) "/" {%d}\r\n' % len(w.encode())).encode() + w.encode() + b"\r\n"
                else:
                    out += ('* LIST (\\HasNoChildren) "/" ' + q(w) + "\r\n").encode("utf-8")
            out += (tag + " OK done\r\n").encode()
        elif cmd == "STATUS":
            n, _ = name_arg(arg); mb = spec.get(n)
            if mb is None: out = (tag + " NO no such mailbox\r\n").encode()
            else: out = ("* STATUS " + q(n) + " (MESSAGES %d UIDNEXT %d UIDVALIDITY %d UNSEEN 0)\r\n" % (len(mb["msgs"]), mb["next"], mb["uidvalidity"])).encode("utf-8") + (tag + " OK done\r\n").encode()
        elif cmd in ("SELECT", "EXAMINE"):
            n, _ = name_arg(arg); mb = spec.get(n)
            if mb is None: out = (tag + " NO no such mailbox\r\n").encode()
            else:
                sel = n
                out = ("* %d EXISTS\r\n* 0 RECENT\r\n* OK [UIDVALIDITY %d] v\r\n* OK [UIDNEXT %d] n\r\n* FLAGS (\\Seen \\Deleted)\r\n" % (len(mb["msgs"]), mb["uidvalidity"], mb["next"])).encode() + (tag + (" OK [READ-ONLY] done\r\n" if cmd == "EXAMINE" else " OK [READ-WRITE] done\r\n")).encode()
        elif cmd in ("UID FETCH", "FETCH"):
            mb = spec[sel]; sset, items = arg.split(" ", 1)
            uids = set()
            for part in sset.split(","):
                if ":" in part:
                    a, b = part.split(":"); a = int(a); b = (max(mb["uids"]) if mb["uids"] else 0) if b == "*" else int(b)
                    uids.update(range(min(a, b), max(a, b) + 1))
                else: uids.add((max(mb["uids"]) if mb["uids"] else 0) if part == "*" else int(part))
            if cmd == "FETCH":
                uids = set(mb["uids"][k - 1] for k in uids if 0 < k <= len(mb["uids"]))
            body = "BODY" in items.upper() or "RFC822)" in items.upper() or "BINARY" in items.upper()
            for i, m in enumerate(mb["msgs"]):
                uid = mb["uids"][i]
                if uid not in uids: continue
                raw = crlf(m)
                head = "* %d FETCH (UID %d FLAGS (\\Seen) RFC822.SIZE %d INTERNALDATE \"01-Jan-2018 10:00:00 +0000\"" % (i + 1, uid, len(raw))
                if body: out += (head + " BODY[] {%d}\r\n" % len(raw)).encode() + raw + b")\r\n"
                else: out += (head + ")\r\n").encode()
            out += (tag + " OK done\r\n").encode()
        elif cmd in ("UID SEARCH", "SEARCH"):
            mb = spec[sel]
            want = None
            m_ = re.search(r"UID ([0-9:,*]+)", arg)
            if m_:
                want = set()
                for part in m_.group(1).split(","):
                    if ":" in part:
                        a, b = part.split(":"); want.update(range(int(a), int(b) + 1)) if b != "*" else want.update(u for u in mb["uids"] if u >= int(a))
                    else: want.add(int(part))
            if "DELETED" in arg.upper(): hits = []
            else: hits = [u for u in mb["uids"] if want is None or u in want]
            out = ("* SEARCH " + " ".join(str(u) for u in hits) + "\r\n").encode() + (tag + " OK done\r\n").encode()
        elif cmd in ("UID STORE", "STORE"):
            out = (tag + " OK done\r\n").encode()
        elif cmd == "UID EXPUNGE":
            mb = spec[sel]; gone = set()
            for part in arg.split(","):
                if ":" in part:
                    a, b = part.split(":"); gone.update(range(int(a), int(b) + 1))
                else: gone.add(int(part))
            for k in range(len(mb["uids"]) - 1, -1, -1):
                if mb["uids"][k] in gone:
                    del mb["uids"][k]; del mb["msgs"][k]; out += b"* %d EXPUNGE\r\n" % (k + 1)
            out += (tag + (" NO [SERVERBUG] expunge failed\r\n" if mb.get("expunge_no") else " OK done\r\n")).encode()
        elif cmd == "LOGOUT": out = b"* BYE bye\r\n" + (tag + " OK done\r\n").encode(); c.sendall(out); c.close(); return
        elif cmd == "GETQUOTAROOT": out = (tag + " NO no quota\r\n").encode()
        else: out = (tag + " BAD unknown " + cmd + "\r\n").encode()
        c.sendall(out)
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", port)); s.listen(8)
while True:
    c, _ = s.accept()
    threading.Thread(target=handle, args=(c,), daemon=True).start()
