#!/usr/bin/env python3
"""An independent WinRM client for proving tests/winrm/server.py, not kmsconf: pyspnego's NTLM
initiator, http.client on one keep-alive connection, and MS-WSMV message encryption.

It authenticates the way pywinrm and pypsrp do (an empty POST to set the context up), checks that
a plaintext body over HTTP is refused, then creates a shell, runs the agent's `powershell.exe`,
sends the agent script line and one `discover` request, receives until the answer arrives,
terminates the command, deletes the shell and checks that the deleted shell is not found.
It prints one JSON summary line; exit 0 when every check passed.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import re
import ssl
import struct
import sys
import uuid
import xml.etree.ElementTree as ET

import spnego

NS = {
    "s": "http://www.w3.org/2003/05/soap-envelope",
    "a": "http://schemas.xmlsoap.org/ws/2004/08/addressing",
    "w": "http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd",
    "rsp": "http://schemas.microsoft.com/wbem/wsman/1/windows/shell",
    "f": "http://schemas.microsoft.com/wbem/wsman/1/wsmanfault",
}
SHELL = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/"
TRANSFER = "http://schemas.xmlsoap.org/ws/2004/09/transfer/"
BOUNDARY = b"--Encrypted Boundary"
PROTOCOL = "application/HTTP-SPNEGO-session-encrypted"


class Check(Exception):
    pass


def expect(cond, what):
    if not cond:
        raise Check(what)


class Client:
    def __init__(self, args):
        self.args = args
        if args.ca:
            tls = ssl.create_default_context(cafile=args.ca)
            self.conn = http.client.HTTPSConnection("127.0.0.1", args.port, context=tls, timeout=60)
        else:
            self.conn = http.client.HTTPConnection("127.0.0.1", args.port, timeout=60)
        self.url = f"{'https' if args.ca else 'http'}://127.0.0.1:{args.port}/wsman"
        self.ctx = None

    def post(self, body: bytes, headers: dict) -> tuple[int, dict, bytes, http.client.HTTPMessage]:
        self.conn.request("POST", "/wsman", body=body, headers=headers)
        r = self.conn.getresponse()
        data = r.read()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, data, r.headers

    def authenticate(self):
        status, headers, _, raw = self.post(b"", {"Content-Length": "0"})
        expect(status == 401 and "Negotiate" in raw.get_all("WWW-Authenticate", []),
               f"unauthenticated POST: {status} {headers.get('www-authenticate')}")
        domain, _, user = self.args.user.rpartition("\\")
        username = f"{domain}\\{user}" if domain else user
        self.ctx = spnego.client(username, self.args.password, hostname="127.0.0.1",
                                 service="http", protocol=self.args.protocol)
        token = self.ctx.step()
        while True:
            status, headers, _, _ = self.post(
                b"", {"Content-Length": "0", "Authorization": "Negotiate " + base64.b64encode(token).decode()})
            m = re.search(r"Negotiate ([A-Za-z0-9+/=]+)", headers.get("www-authenticate", ""))
            if status != 401 or not m:
                break
            token = self.ctx.step(base64.b64decode(m.group(1)))
        if status == 200 and m and not self.ctx.complete:
            self.ctx.step(base64.b64decode(m.group(1)))  # SPNEGO's accept-completed
        return status

    def soap(self, message: bytes, encrypt=True) -> tuple[int, bytes]:
        if not encrypt:
            status, _, body, _ = self.post(message, {"Content-Type": "application/soap+xml;charset=UTF-8"})
            return status, body
        w = self.ctx.wrap_winrm(message)
        body = (BOUNDARY + b"\r\n\tContent-Type: " + PROTOCOL.encode() + b"\r\n"
                + f"\tOriginalContent: type=application/soap+xml;charset=UTF-8;Length={len(message)}\r\n".encode()
                + BOUNDARY + b"\r\n\tContent-Type: application/octet-stream\r\n"
                + struct.pack("<I", len(w.header)) + w.header + w.data + BOUNDARY + b"--\r\n")
        ctype = f'multipart/encrypted;protocol="{PROTOCOL}";boundary="Encrypted Boundary"'
        status, headers, data, _ = self.post(body, {"Content-Type": ctype})
        expect(headers.get("content-type", "").startswith("multipart/encrypted;"),
               f"answer not encrypted: {status} {headers.get('content-type')}")
        return status, self.unseal(data)

    def unseal(self, data: bytes) -> bytes:
        parts = [p for p in data.split(BOUNDARY + b"\r\n") if p]
        meta, payload = parts[0], parts[1]
        length = int(re.search(rb"Length=(\d+)", meta).group(1))
        payload = payload[len(b"\tContent-Type: application/octet-stream\r\n"):]
        payload = payload[: -len(BOUNDARY + b"--\r\n")]
        hlen = struct.unpack("<I", payload[:4])[0]
        plain = self.ctx.unwrap_winrm(payload[4:4 + hlen], payload[4 + hlen:])
        expect(len(plain) == length, "answer Length mismatch")
        return plain

    def envelope(self, action, body="", shell_id=None, timeout="PT20S") -> tuple[str, bytes]:
        mid = f"uuid:{str(uuid.uuid4()).upper()}"
        sel = (f'<w:SelectorSet><w:Selector Name="ShellId">{shell_id}</w:Selector></w:SelectorSet>'
               if shell_id else "")
        xml = (f'<s:Envelope xmlns:s="{NS["s"]}" xmlns:a="{NS["a"]}" xmlns:w="{NS["w"]}" '
               f'xmlns:rsp="{NS["rsp"]}"><s:Header><a:Action s:mustUnderstand="true">{action}</a:Action>'
               f"<w:MaxEnvelopeSize>153600</w:MaxEnvelopeSize><a:MessageID>{mid}</a:MessageID>"
               f"<w:OperationTimeout>{timeout}</w:OperationTimeout><a:ReplyTo><a:Address>"
               "http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</a:Address></a:ReplyTo>"
               f"<w:ResourceURI>{SHELL}cmd</w:ResourceURI><a:To>{self.url}</a:To>{sel}</s:Header>"
               f"<s:Body>{body}</s:Body></s:Envelope>")
        return mid, xml.encode()

    def call(self, action, body="", shell_id=None, timeout="PT20S", want=200):
        mid, xml = self.envelope(action, body, shell_id, timeout)
        status, answer = self.soap(xml)
        root = ET.fromstring(answer)
        expect(status == want, f"{action.rsplit('/', 1)[-1]}: HTTP {status}: {answer[:300]!r}")
        expect(root.findtext("s:Header/a:RelatesTo", namespaces=NS) == mid, "RelatesTo mismatch")
        return root


def run(args) -> dict:
    c = Client(args)
    summary = {"auth_status": c.authenticate()}
    expect(summary["auth_status"] == 200, f"authentication ended with {summary['auth_status']}")
    if not args.ca:
        _, plain = c.envelope(TRANSFER + "Create", "<rsp:Shell/>")
        status, _ = c.soap(plain, encrypt=False)
        expect(status == 500, f"plaintext over HTTP answered {status}")
        summary["plaintext_status"] = status
    root = c.call(TRANSFER + "Create", "<rsp:Shell><rsp:InputStreams>stdin</rsp:InputStreams>"
                  "<rsp:OutputStreams>stdout stderr</rsp:OutputStreams></rsp:Shell>")
    shell = root.findtext("s:Body/rsp:Shell/rsp:ShellId", namespaces=NS)
    expect(shell and shell == shell.upper(), f"ShellId {shell}")
    encoded = base64.b64encode("$null".encode("utf-16-le")).decode()
    root = c.call(SHELL + "Command", "<rsp:CommandLine><rsp:Command>powershell.exe</rsp:Command>"
                  f"<rsp:Arguments>-NoLogo -NoProfile -NonInteractive -EncodedCommand {encoded}"
                  "</rsp:Arguments></rsp:CommandLine>", shell)
    cid = root.findtext("s:Body/rsp:CommandResponse/rsp:CommandId", namespaces=NS)
    stdin = b"QUdFTlQgU0NSSVBU\n" + json.dumps({"id": 1, "op": "discover"}).encode() + b"\n"
    c.call(SHELL + "Send", f'<rsp:Send><rsp:Stream Name="stdin" CommandId="{cid}">'
           f"{base64.b64encode(stdin).decode()}</rsp:Stream></rsp:Send>", shell)
    out, receives, timeouts = b"", 0, 0
    while b"KMSCONF:discovery:" not in out and receives < 50:
        receives += 1
        mid, xml = c.envelope(SHELL + "Receive", f'<rsp:Receive><rsp:DesiredStream CommandId="{cid}">'
                              "stdout stderr</rsp:DesiredStream></rsp:Receive>", shell, "PT5S")
        status, answer = c.soap(xml)
        root = ET.fromstring(answer)
        if status == 500:
            code = root.find(".//f:WSManFault", NS).get("Code")
            expect(code == "2150858793", f"Receive fault {code}")
            timeouts += 1
            continue
        for s in root.findall(".//rsp:Stream", NS):
            if s.get("Name") == "stdout":
                out += base64.b64decode(s.text or "")
    lines = [l for l in out.decode().splitlines() if l.startswith("KMSCONF:")]
    expect(any(l.startswith("KMSCONF:begin:") for l in lines), f"no begin line in {out[:200]!r}")
    discovery = next(l for l in lines if l.startswith("KMSCONF:discovery:"))
    answer = json.loads(base64.b64decode(discovery.split(":", 2)[2]))
    expect(answer.get("Ok") is True and answer.get("Id") == 1, f"discovery answer {answer}")
    summary.update(receives=receives, receive_timeouts=timeouts, agent_lines=[l.split(":")[1] for l in lines])
    c.call(SHELL + "Signal", f'<rsp:Signal CommandId="{cid}"><rsp:Code>{SHELL}signal/terminate'
           "</rsp:Code></rsp:Signal>", shell)
    c.call(TRANSFER + "Delete", "", shell)
    root = c.call(TRANSFER + "Delete", "", shell, want=500)
    expect(root.findtext(".//s:Subcode/s:Value", namespaces=NS) == "w:InvalidSelectors",
           "deleted shell not reported as InvalidSelectors")
    summary["ok"] = True
    return summary


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--user", required=True, help="DOMAIN\\user or user")
    p.add_argument("--password", required=True)
    p.add_argument("--ca", help="CA file: connect with HTTPS, checking the certificate against it")
    p.add_argument("--protocol", default="ntlm", choices=["ntlm", "negotiate"])
    args = p.parse_args()
    try:
        summary = run(args)
    except (Check, OSError, http.client.HTTPException, spnego.exceptions.SpnegoError) as e:
        print(json.dumps({"ok": False, "error": f"{type(e).__name__}: {e}"}))
        return 1
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
