"""A hostile LDAP server on 127.0.0.1 for tests/e2e/hostile_ldap.rs: it completes a real SASL
GSSAPI bind with signing (python-gssapi, the service key from KRB5_KTNAME) when its mode needs
one, then lies. Prints its port, then serves connections until killed.

Modes (argv[1]):
  drip      answers the first bind request with one byte a second, forever
  huge      answers the first bind request with a BER header announcing a 2 GiB message
  refuse    refuses the bind with a diagnostic message full of terminal escapes and fake lines
  entries   binds, then answers the activation-object search with entries that never end
  big-entries  the same with 4 KB entries
  names     binds, then serves activation objects whose names and DNs are hostile text
"""

import socket
import struct
import sys
import threading
import time

MODE = sys.argv[1]

ROOT = b"DC=corp,DC=example"
SCHEMA = b"CN=Schema,CN=Configuration,DC=corp,DC=example"
HOSTILE = "\x1b]0;owned\x07\x1b[2J\r\nkms01: 0 changes\n\n`x` @octocat #1 https://evil.example/ [a](javascript:x) <b>"


def element(tag, contents):
    n = len(contents)
    if n < 0x80:
        return bytes([tag, n]) + contents
    digits = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(digits)]) + digits + contents


def integer(tag, value):
    return element(tag, value.to_bytes(max(1, (value.bit_length() + 8) // 8), "big", signed=True))


def octets(value):
    return element(0x04, value)


def message(msg_id, op):
    return element(0x30, integer(0x02, msg_id) + op)


def result(tag, code, diagnostic=b"", sasl=None):
    body = integer(0x0A, code) + octets(b"") + octets(diagnostic)
    if sasl is not None:
        body += element(0x87, sasl)
    return element(tag, body)


def entry(dn, attributes):
    attrs = b"".join(
        element(0x30, octets(name) + element(0x31, b"".join(octets(v) for v in values)))
        for name, values in attributes
    )
    return element(0x64, octets(dn) + element(0x30, attrs))


def read_element(read):
    """One BER element's (tag, contents), reading through `read(n)`."""
    tag, first = read(2)
    if first < 0x80:
        length = first
    else:
        length = int.from_bytes(read(first & 0x7F), "big")
    return tag, read(length)


def parts(contents):
    """The elements inside a constructed element, as (tag, contents)."""
    out, i = [], 0
    while i < len(contents):
        tag, first = contents[i], contents[i + 1]
        i += 2
        if first < 0x80:
            length = first
        else:
            k = first & 0x7F
            length = int.from_bytes(contents[i : i + k], "big")
            i += k
        out.append((tag, contents[i : i + length]))
        i += length
    return out


class Peer:
    def __init__(self, conn):
        self.conn = conn
        self.ctx = None
        self.signed = False
        self.plain = b""

    def exact(self, n):
        data = b""
        while len(data) < n:
            more = self.conn.recv(n - len(data))
            if not more:
                raise EOFError
            data += more
        return data

    def read_plain(self, n):
        if not self.signed:
            return self.exact(n)
        while len(self.plain) < n:
            (length,) = struct.unpack(">I", self.exact(4))
            self.plain += self.ctx.unwrap(self.exact(length)).message
        data, self.plain = self.plain[:n], self.plain[n:]
        return data

    def request(self):
        _, contents = read_element(self.read_plain)
        (_, msg_id), (op, body) = parts(contents)[:2]
        return int.from_bytes(msg_id, "big"), op, body

    def send(self, data):
        if self.signed:
            token = self.ctx.wrap(data, False).message
            data = struct.pack(">I", len(token)) + token
        self.conn.sendall(data)

    def bind(self, msg_id, body):
        """One SASL GSSAPI bind round (RFC 4752); True once bound."""
        import gssapi

        sasl = parts(parts(body)[2][1])
        token = sasl[1][1] if len(sasl) > 1 else b""
        if self.ctx is None:
            self.ctx = gssapi.SecurityContext(usage="accept")
        if not self.ctx.complete:
            out = self.ctx.step(token) or b""
            self.send(message(msg_id, result(0x61, 14, sasl=out)))
            return False
        if not token:
            # the offer: integrity protection, a 16 MiB buffer
            offer = self.ctx.wrap(b"\x07\xff\xff\xff", False).message
            self.send(message(msg_id, result(0x61, 14, sasl=offer)))
            return False
        self.ctx.unwrap(token)
        self.send(message(msg_id, result(0x61, 0)))
        self.signed = True
        return True


def search(peer, msg_id, body):
    base = parts(body)[0][1]
    if base == b"":
        peer.send(
            message(
                msg_id,
                entry(b"", [(b"rootDomainNamingContext", [ROOT]), (b"schemaNamingContext", [SCHEMA])]),
            )
        )
    elif base == SCHEMA:
        peer.send(message(msg_id, entry(b"CN=ms-SPP-Activation-Object," + SCHEMA, [(b"cn", [b"x"])])))
    elif MODE in ("entries", "big-entries"):
        value = b"x" * (4000 if MODE == "big-entries" else 1)
        one = message(msg_id, entry(b"CN=x", [(b"cn", [value])]))
        batch = one * (200 if MODE == "big-entries" else 20000)
        while True:
            peer.send(batch)
    else:
        name = HOSTILE.encode()
        dn = b"CN=" + name + b",CN=Activation Objects,CN=Microsoft SPP,CN=Services,CN=Configuration," + ROOT
        peer.send(
            message(
                msg_id,
                entry(
                    dn,
                    [
                        (b"cn", [name]),
                        (b"msSPP-CSVLKSkuId", [bytes(range(16))]),
                        (b"msSPP-CSVLKPartialProductKey", [b"\x1b[2J@x\n"]),
                        (b"msSPP-CSVLKPid", [name]),
                    ],
                ),
            )
        )
    peer.send(message(msg_id, result(0x65, 0)))


def serve(conn):
    peer = Peer(conn)
    try:
        while True:
            msg_id, op, body = peer.request()
            if op == 0x60 and MODE == "drip":
                # a 4 KiB message, its bytes a second apart
                conn.sendall(b"\x30\x82\x10\x00")
                while True:
                    time.sleep(1)
                    conn.sendall(b"\x02")
            elif op == 0x60 and MODE == "huge":
                conn.sendall(b"\x30\x84\x7f\xff\xff\xff" + b"\x02" * 1024)
                time.sleep(3600)
            elif op == 0x60 and MODE == "refuse":
                conn.sendall(message(msg_id, result(0x61, 49, HOSTILE.encode() * 20000)))
            elif op == 0x60:
                peer.bind(msg_id, body)
            elif op == 0x63:
                search(peer, msg_id, body)
            elif op == 0x42:
                return
    except (EOFError, OSError):
        pass
    finally:
        conn.close()


def main():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    print(listener.getsockname()[1], flush=True)
    while True:
        conn, _ = listener.accept()
        threading.Thread(target=serve, args=(conn,), daemon=True).start()


main()
