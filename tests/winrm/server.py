#!/usr/bin/env python3
"""A test WinRM endpoint on 127.0.0.1 standing in for one Windows host, for kmsconf's e2e tests.

It speaks what a Windows WinRM listener speaks, as strictly as is cheap: HTTP/1.1 keep-alive on
`/wsman`, Negotiate (SPNEGO or raw NTLM, a real acceptor from pyspnego; SPNEGO's Kerberos through
MIT krb5 given `--keytab`) bound to the TCP connection, MS-WSMV 2.2.9.1 message encryption
required over HTTP, and the WinRS `cmd` shell whose one command runs `kmsconf lab agent` in place
of `powershell.exe`. It is not a WS-Man
implementation: it knows only the shell's Create, Command, Send, Receive, Signal and Delete.

Response shapes follow pypsrp's recordings of Windows Server 2012 R2-2019 (tests/responses/*.yml
in the pypsrp 0.9.1 sdist). Usage: `server.py --help` and `server.py make-cert --help`.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import datetime
import http.server
import ipaddress
import json
import logging
import os
import re
import signal
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import xml.etree.ElementTree as ET
from xml.sax.saxutils import escape

NS = {
    "s": "http://www.w3.org/2003/05/soap-envelope",
    "a": "http://schemas.xmlsoap.org/ws/2004/08/addressing",
    "w": "http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd",
    "rsp": "http://schemas.microsoft.com/wbem/wsman/1/windows/shell",
}
SHELL_URI = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/cmd"
TRANSFER = "http://schemas.xmlsoap.org/ws/2004/09/transfer/"
SHELL = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/"
ACTIONS = {
    TRANSFER + "Create": "Create",
    TRANSFER + "Delete": "Delete",
    SHELL + "Command": "Command",
    SHELL + "Send": "Send",
    SHELL + "Receive": "Receive",
    SHELL + "Signal": "Signal",
}
ANONYMOUS = "http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous"
BOUNDARY = b"--Encrypted Boundary"
SPNEGO_ENCRYPTED = "application/HTTP-SPNEGO-session-encrypted"
ENCRYPTED_TYPE = f'multipart/encrypted;protocol="{SPNEGO_ENCRYPTED}";boundary="Encrypted Boundary"'
REQUIRED_ARGS = "-NoLogo -NoProfile -NonInteractive"
# what one ReceiveResponse carries at most, raw: base64 of it stays under the 150 KiB envelope
RECEIVE_CHUNK = 96 * 1024
DEFAULT_OPERATION_TIMEOUT = 60.0  # Windows' MaxTimeoutms default
# the service's idle timeout, the longest a shell may ask for (7200 s in the recorded replies)
SERVICE_IDLE_TIMEOUT = 7200.0
# the least IdleTimeout WinRM keeps ("The minimum value is 60000", Microsoft's WinRM configuration
# page); a Create asking less is refused here, the stricter of what a host may do with it
MINIMUM_IDLE_TIMEOUT = 60.0

log = logging.getLogger("winrm-test-server")


# ---------------------------------------------------------------------------------------------
# Faults, shaped as Windows sends them (HTTP 500, a sealed SOAP fault)


class Fault(Exception):
    """A WS-Man fault to answer instead of the operation's response."""

    def __init__(self, code, subcode, reason, wsman_code, message=None, detail="", provider=None,
                 inner_fault=False):
        super().__init__(reason)
        self.code, self.subcode, self.reason = code, subcode, reason
        self.wsman_code, self.message, self.detail = wsman_code, message or reason, detail
        self.provider = provider  # (name, path) of the ProviderFault wrapping the message
        self.inner_fault = inner_fault  # the provider's message is a WSManFault of its own

    def body(self, machine: str) -> str:
        message = escape(self.message)
        if self.inner_fault:
            message = (f'<f:WSManFault xmlns:f="http://schemas.microsoft.com/wbem/wsman/1/wsmanfault" '
                       f'Code="{self.wsman_code}" Machine="{machine}"><f:Message>{message}'
                       "</f:Message></f:WSManFault>")
        if self.provider:
            name, path = self.provider
            message = f'<f:ProviderFault provider="{name}" path="{path}">{message}</f:ProviderFault>'
        detail = f"<w:FaultDetail>{self.detail}</w:FaultDetail>" if self.detail else ""
        return (
            f"<s:Fault><s:Code><s:Value>{self.code}</s:Value><s:Subcode><s:Value>{self.subcode}"
            f'</s:Value></s:Subcode></s:Code><s:Reason><s:Text xml:lang="en-US">{escape(self.reason)}'
            f"</s:Text></s:Reason><s:Detail>{detail}<f:WSManFault "
            f'xmlns:f="http://schemas.microsoft.com/wbem/wsman/1/wsmanfault" Code="{self.wsman_code}" '
            f'Machine="{machine}"><f:Message>{message}</f:Message></f:WSManFault></s:Detail></s:Fault>'
        )


UNEXPECTED_SELECTORS = "http://schemas.dmtf.org/wbem/wsman/1/wsman/faultDetail/UnexpectedSelectors"
INVALID_SELECTORS = (
    "The WS-Management service cannot process the request because the request contained invalid "
    "selectors for the resource. "
)
TIMED_OUT = (
    "The WS-Management service cannot complete the operation within the time specified in "
    "OperationTimeout.  "
)


def timed_out() -> Fault:
    return Fault("s:Receiver", "w:TimedOut", TIMED_OUT, 2150858793)


def shell_not_found() -> Fault:
    # test_psrp_is_alive_invalid_selectors.yml: the shell provider nests its own WSManFault
    return Fault("s:Sender", "w:InvalidSelectors", INVALID_SELECTORS, 2150858843,
                 detail=UNEXPECTED_SELECTORS, inner_fault=True,
                 provider=("Shell provider", "%systemroot%\\system32\\WsmSvc.dll"))


def command_not_found() -> Fault:
    # test_winrs_bad_cmd_id.yml
    return Fault("s:Sender", "w:InvalidSelectors", INVALID_SELECTORS, 2150858843,
                 "The Windows Remote Shell received a request to perform an operation on a command "
                 "identifier that does not exist. Either the command has completed execution or the "
                 "client specified an invalid command identifier. ", UNEXPECTED_SELECTORS)


def invalid_parameter() -> Fault:
    # test_winrs_fail_poll_process.yml's shape; here for a command line the agent does not run
    return Fault("s:Sender", "w:InvalidParameter", "The parameter is incorrect. ", 87,
                 detail="http://schemas.dmtf.org/wbem/wsman/1/wsman/faultDetail/InvalidValue",
                 provider=("Shell cmd plugin", "%systemroot%\\system32\\winrscmd.dll"))


def invalid_header(what: str) -> Fault:
    # the recorded shape for a bad SOAP header (an invalid OperationTimeout); reused for a missing
    # or unknown Action, MessageID or ResourceURI, for which no recording exists
    return Fault("s:Sender", "a:InvalidMessageInformationHeader",
                 "The WS-Management service cannot process the request. The request contains one or "
                 "more invalid SOAP headers. ", 2150858767,
                 f"The WS-Management service cannot process the request. {what} ")


def idle_timeout_out_of_bounds(asked: str) -> Fault:
    # ERROR_WINRS_IDLETIMEOUT_OUTOFBOUNDS (0x803381F2): the code is Windows'; no recording of the
    # fault exists, so its text here is the endpoint's own
    return Fault("s:Sender", "w:InvalidParameter",
                 f"The WS-Management service cannot process the request: the shell's IdleTimeOut "
                 f"{asked} is less than the minimum of {MINIMUM_IDLE_TIMEOUT:.0f} seconds. ",
                 2150859250)


def quota_exceeded() -> Fault:
    # Not recorded anywhere kmsconf has read: the text is Windows' as users report it, the code
    # is a stand-in (no source gives the unsigned code Windows writes for it); kmsconf shows
    # whatever code and text the host sends
    return Fault("s:Sender", "w:QuotaLimit",
                 "The WS-Management service cannot process the request. This user has exceeded the "
                 "maximum number of concurrent shells allowed for this plugin. Close at least one open "
                 "shell or raise the plugin quota for this user. ", 2144108120)


def access_denied() -> Fault:
    return Fault("s:Sender", "w:AccessDenied", "Access is denied. ", 5)


# ---------------------------------------------------------------------------------------------
# Server state: counters, faults to inject, shells


class Stats:
    """The counters the tests read, rewritten atomically to `--stats FILE` after every change."""

    def __init__(self, path: str | None):
        self.path, self.lock = path, threading.Lock()
        self.data = {"connections": 0, "authentications": 0, "auth_failures": 0,
                     "plaintext_refused": 0, "shells_created": 0, "shells_expired": 0, "commands": 0,
                     "shells_refused_idle_timeout": 0,
                     "requests_by_action": {}, "authentications_by_protocol": {}}
        self.write()

    def bump(self, field: str, key: str | None = None) -> int:
        """Adds one to `field`, or to its `key` entry when the field counts by key."""
        with self.lock:
            if key is None:
                self.data[field] += 1
                value = self.data[field]
            else:
                counts = self.data[field]
                counts[key] = value = counts.get(key, 0) + 1
            self._write_locked()
            return value

    def write(self):
        with self.lock:
            self._write_locked()

    def _write_locked(self):
        if not self.path:
            return
        directory = os.path.dirname(os.path.abspath(self.path))
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".stats.")
        with os.fdopen(fd, "w") as f:
            json.dump(self.data, f, sort_keys=True)
        os.replace(tmp, self.path)


class FaultPlan:
    """`--fault-on ACTION:KIND[:N]`: quota and access-denied answer every matching request (or
    only the N-th when N is given); drop closes the connection on the N-th (default first);
    delay waits N seconds before handling it; plaintext answers the N-th (default first) with an
    unsealed body over HTTP, tamper with a sealed body one bit of which was flipped in transit:
    a client must refuse both."""

    KINDS = ("quota", "access-denied", "drop", "delay", "plaintext", "tamper")

    def __init__(self, specs: list[str]):
        self.rules = []
        for spec in specs:
            parts = spec.split(":")
            if len(parts) not in (2, 3) or parts[0] not in ACTIONS.values() or parts[1] not in self.KINDS:
                raise ValueError(f"bad --fault-on `{spec}`: want ACTION:KIND[:N], ACTION one of "
                                 f"{sorted(ACTIONS.values())}, KIND one of {list(self.KINDS)}")
            number = float(parts[2]) if len(parts) == 3 else None
            if parts[1] == "delay" and number is None:
                raise ValueError(f"bad --fault-on `{spec}`: delay needs SECONDS")
            self.rules.append((parts[0], parts[1], number))

    def for_request(self, action: str, ordinal: int) -> list[tuple[str, float | None]]:
        """The faults that apply to the `ordinal`-th request (from 1) with this action."""
        hits = []
        for rule_action, kind, number in self.rules:
            if rule_action != action:
                continue
            once = kind in ("drop", "plaintext", "tamper")
            if kind == "delay" or (once and ordinal == int(number or 1)) or (
                kind in ("quota", "access-denied") and (number is None or ordinal == int(number))
            ):
                hits.append((kind, number))
        return hits


class Command:
    """One running agent: its stdin, and its stdout/stderr gathered for Receive."""

    def __init__(self, command_line: str, env: dict):
        self.id = str(uuid.uuid4()).upper()
        self.process = subprocess.Popen(
            ["/bin/sh", "-c", command_line], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, env=env, start_new_session=True)
        self.cond = threading.Condition()
        self.buffers = {"stdout": bytearray(), "stderr": bytearray()}
        self.open_streams = {"stdout", "stderr"}
        self.exit_code: int | None = None
        for name in ("stdout", "stderr"):
            threading.Thread(target=self._pump, args=(name,), daemon=True).start()
        threading.Thread(target=self._reap, daemon=True).start()

    def _pump(self, name: str):
        pipe = getattr(self.process, name)
        while chunk := os.read(pipe.fileno(), 65536):
            with self.cond:
                self.buffers[name] += chunk
                self.cond.notify_all()
        with self.cond:
            self.open_streams.discard(name)
            self.cond.notify_all()

    def _reap(self):
        code = self.process.wait()
        with self.cond:
            self.exit_code = code
            self.cond.notify_all()

    def send(self, data: bytes, end: bool):
        if self.process.stdin.closed:
            return
        try:
            if data:
                self.process.stdin.write(data)
                self.process.stdin.flush()
            if end:
                self.process.stdin.close()
        except (BrokenPipeError, OSError):
            pass  # the agent is gone; Receive reports its exit

    def _finished(self) -> bool:
        return self.exit_code is not None and not self.open_streams

    def receive(self, timeout: float) -> tuple[list[tuple[str, bytes, bool]], int | None]:
        """Waits up to `timeout` for output or the end; `([], None)` when nothing came."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while not any(self.buffers.values()) and not self._finished():
                left = deadline - time.monotonic()
                if left <= 0:
                    return [], None
                self.cond.wait(left)
            streams, budget = [], RECEIVE_CHUNK
            for name in ("stdout", "stderr"):
                take = bytes(self.buffers[name][:budget])
                del self.buffers[name][: len(take)]
                budget -= len(take)
                if take:
                    streams.append((name, take, False))
            done = self._finished() and not any(self.buffers.values())
            if done:
                streams += [("stdout", b"", True), ("stderr", b"", True)]
            return streams, (self.exit_code if done else None)

    def kill(self):
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if not self.process.stdin.closed:
            try:
                self.process.stdin.close()
            except OSError:
                pass


class Shell:
    """A shell and its idle clock: WinRM deletes a shell no request has touched for its
    IdleTimeOut (WSMAN_SHELL_STARTUP_INFO idleTimeoutMs); a request in progress (a Receive's long
    poll) keeps it alive."""

    def __init__(self, owner: str, client_ip: str, idle_timeout: float):
        self.id = str(uuid.uuid4()).upper()
        self.owner, self.client_ip = owner, client_ip
        self.commands: dict[str, Command] = {}
        self.idle_timeout = idle_timeout
        self.last_activity, self.active = time.monotonic(), 0

    def idle_for(self) -> float | None:
        """Seconds idle, or None while a request is in progress."""
        return None if self.active else time.monotonic() - self.last_activity


class State:
    """Everything shared between connections."""

    def __init__(self, args):
        self.args = args
        self.stats = Stats(args.stats)
        self.faults = FaultPlan(args.fault_on)
        self.lock = threading.Lock()
        self.shells: dict[str, Shell] = {}
        self.ordinals: dict[str, int] = {}
        self.active_connections = 0
        self.users = read_users(os.environ.get("NTLM_USER_FILE"))
        threading.Thread(target=self._expire_idle_shells, daemon=True).start()

    def _expire_idle_shells(self):
        while True:
            time.sleep(0.1)
            with self.lock:
                expired = [sh for sh in self.shells.values()
                           if (idle := sh.idle_for()) is not None and idle > sh.idle_timeout]
                for shell in expired:
                    self.shells.pop(shell.id, None)
            for shell in expired:
                for command in shell.commands.values():
                    command.kill()
                self.stats.bump("shells_expired")
                log.info("shell %s idle for more than %.0f s: deleted", shell.id, shell.idle_timeout)

    def next_ordinal(self, action: str) -> int:
        with self.lock:
            self.ordinals[action] = self.ordinals.get(action, 0) + 1
            return self.ordinals[action]

    def agent_command(self) -> tuple[str, dict]:
        env = dict(os.environ)
        if self.args.kmsconf:
            env["KMSCONF_BIN"] = self.args.kmsconf
        if self.args.lab:
            env["LAB_FILE"] = self.args.lab
        return self.args.agent_command, env

    def kill_all(self):
        with self.lock:
            shells, self.shells = list(self.shells.values()), {}
        for shell in shells:
            for command in shell.commands.values():
                command.kill()


def read_users(path: str | None) -> dict[str, str]:
    """`DOMAIN:user:password` lines (pyspnego's Heimdal form) -> {lowercase user forms: password},
    for Basic auth (NTLM reads the file itself)."""
    users = {}
    if not path or not os.path.isfile(path):
        return users
    with open(path, encoding="utf-8") as f:
        for line in f:
            parts = line.rstrip("\r\n").split(":", 2)
            if len(parts) != 3 or not parts[1]:
                continue
            domain, user, password = parts
            users[user.lower()] = password
            if domain:
                users[f"{domain}\\{user}".lower()] = password
    return users


# ---------------------------------------------------------------------------------------------
# The WinRS shell: one SOAP request in, one SOAP response (or a Fault) out


def parse_duration(text: str | None) -> float:
    if not text:
        return DEFAULT_OPERATION_TIMEOUT
    m = re.fullmatch(r"P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?", text.strip())
    if not m or not any(m.groups()):
        raise invalid_header(f"The XML contains an invalid timeout field in the SOAP header: {text}.")
    days, hours, minutes, seconds = (float(g) if g else 0.0 for g in m.groups())
    return ((days * 24 + hours) * 60 + minutes) * 60 + seconds


class Request:
    """A parsed SOAP request: its header fields and body element."""

    def __init__(self, xml: bytes):
        try:
            root = ET.fromstring(xml)
        except ET.ParseError as e:
            raise invalid_header(f"The request is not well-formed XML: {e}.") from None
        header = root.find("s:Header", NS)
        self.body = root.find("s:Body", NS)
        if header is None or self.body is None:
            raise invalid_header("The SOAP envelope has no Header or no Body.")
        text = lambda path: (header.findtext(path, namespaces=NS) or "").strip()
        self.message_id = text("a:MessageID")
        self.action_uri = text("a:Action")
        self.resource_uri = text("w:ResourceURI")
        self.to = text("a:To")
        self.operation_timeout = text("w:OperationTimeout")
        self.selectors = {s.get("Name"): (s.text or "").strip()
                          for s in header.findall("w:SelectorSet/w:Selector", NS)}
        self.action = ACTIONS.get(self.action_uri)

    def validate(self):
        if not self.message_id:
            raise invalid_header("The request has no MessageID header.")
        if self.action is None:
            raise invalid_header(f"The action `{self.action_uri or '(none)'}` is not supported.")
        if self.resource_uri != SHELL_URI:
            raise invalid_header(f"The resource URI `{self.resource_uri or '(none)'}` is not supported.")


def envelope(action: str, relates_to: str, body: str) -> bytes:
    return (
        '<s:Envelope xml:lang="en-US" xmlns:s="http://www.w3.org/2003/05/soap-envelope" '
        'xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing" '
        'xmlns:x="http://schemas.xmlsoap.org/ws/2004/09/transfer" '
        'xmlns:e="http://schemas.xmlsoap.org/ws/2004/08/eventing" '
        'xmlns:n="http://schemas.xmlsoap.org/ws/2004/09/enumeration" '
        'xmlns:w="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd" '
        'xmlns:rsp="http://schemas.microsoft.com/wbem/wsman/1/windows/shell" '
        'xmlns:p="http://schemas.microsoft.com/wbem/wsman/1/wsman.xsd">'
        f"<s:Header><a:Action>{action}</a:Action><a:MessageID>uuid:{str(uuid.uuid4()).upper()}"
        f"</a:MessageID><a:To>{ANONYMOUS}</a:To>"
        + (f"<a:RelatesTo>{escape(relates_to)}</a:RelatesTo>" if relates_to else "")
        + f"</s:Header><s:Body>{body}</s:Body></s:Envelope>"
    ).encode("utf-8")


class ShellService:
    """The `windows/shell/cmd` resource."""

    def __init__(self, state: State):
        self.state = state

    def handle(self, req: Request, who: str, client_ip: str, machine: str) -> bytes:
        handler = getattr(self, "op_" + req.action.lower())
        with self.state.lock:
            shell = self.state.shells.get(req.selectors.get("ShellId", ""))
            if shell is not None:
                shell.active += 1
        try:
            return handler(req, who, client_ip, machine)
        finally:
            if shell is not None:
                with self.state.lock:
                    shell.active -= 1
                    shell.last_activity = time.monotonic()

    def _shell(self, req: Request, machine: str) -> Shell:
        with self.state.lock:
            shell = self.state.shells.get(req.selectors.get("ShellId", ""))
        if shell is None:
            raise shell_not_found()
        return shell

    @staticmethod
    def _command(shell: Shell, command_id: str | None) -> Command:
        command = shell.commands.get((command_id or "").upper())
        if command is None:
            raise command_not_found()
        return command

    def op_create(self, req, who, client_ip, machine):
        asked = req.body.findtext("rsp:Shell/rsp:IdleTimeOut", None, NS)
        service_idle = self.state.args.service_idle_timeout
        idle = parse_duration(asked) if asked else service_idle
        if idle < MINIMUM_IDLE_TIMEOUT:
            self.state.stats.bump("shells_refused_idle_timeout")
            raise idle_timeout_out_of_bounds(asked)
        shell = Shell(who, client_ip, min(idle, service_idle))
        with self.state.lock:
            self.state.shells[shell.id] = shell
        self.state.stats.bump("shells_created")
        address = escape(req.to or f"http://{machine}/wsman")
        body = (
            f"<x:ResourceCreated><a:Address>{address}</a:Address><a:ReferenceParameters>"
            f"<w:ResourceURI>{SHELL_URI}</w:ResourceURI><w:SelectorSet><w:Selector Name=\"ShellId\">"
            f"{shell.id}</w:Selector></w:SelectorSet></a:ReferenceParameters></x:ResourceCreated>"
            f'<rsp:Shell xmlns:rsp="{NS["rsp"]}"><rsp:ShellId>{shell.id}</rsp:ShellId>'
            f"<rsp:ResourceUri>{SHELL_URI}</rsp:ResourceUri><rsp:Owner>{escape(who)}</rsp:Owner>"
            f"<rsp:ClientIP>{client_ip}</rsp:ClientIP><rsp:IdleTimeOut>PT{shell.idle_timeout:.3f}S</rsp:IdleTimeOut>"
            "<rsp:InputStreams>stdin</rsp:InputStreams><rsp:OutputStreams>stdout stderr"
            "</rsp:OutputStreams><rsp:ShellRunTime>P0DT0H0M0S</rsp:ShellRunTime>"
            "<rsp:ShellInactivity>P0DT0H0M0S</rsp:ShellInactivity></rsp:Shell>"
        )
        log.info("created shell %s for %s (idle timeout %.0f s)", shell.id, who, shell.idle_timeout)
        return envelope(TRANSFER + "CreateResponse", req.message_id, body)

    def op_command(self, req, who, client_ip, machine):
        shell = self._shell(req, machine)
        line = req.body.find("rsp:CommandLine", NS)
        program = (line.findtext("rsp:Command", "", NS) if line is not None else "").strip()
        arguments = " ".join((a.text or "").strip() for a in line.findall("rsp:Arguments", NS)) \
            if line is not None else ""
        if program.lower() != "powershell.exe" or not arguments.startswith(REQUIRED_ARGS) \
                or "-EncodedCommand" not in arguments.split():
            log.warning("refused command `%s` with arguments starting `%s`", program, arguments[:60])
            raise invalid_parameter()
        command_line, env = self.state.agent_command()
        command = Command(command_line, env)
        with self.state.lock:
            shell.commands[command.id] = command
        self.state.stats.bump("commands")
        log.info("shell %s: command %s runs `%s` (pid %d)", shell.id, command.id, command_line,
                 command.process.pid)
        body = f"<rsp:CommandResponse><rsp:CommandId>{command.id}</rsp:CommandId></rsp:CommandResponse>"
        return envelope(SHELL + "CommandResponse", req.message_id, body)

    def op_send(self, req, who, client_ip, machine):
        shell = self._shell(req, machine)
        for stream in req.body.findall("rsp:Send/rsp:Stream", NS):
            command = self._command(shell, stream.get("CommandId"))
            if stream.get("Name", "stdin") != "stdin":
                raise invalid_parameter()
            try:
                data = base64.b64decode(stream.text or "", validate=True)
            except binascii.Error:
                raise invalid_parameter() from None
            end = (stream.get("End") or "").lower() == "true"
            command.send(data, end)
            log.info("shell %s: %d bytes to stdin%s", shell.id, len(data), " (end)" if end else "")
        return envelope(SHELL + "SendResponse", req.message_id, "<rsp:SendResponse/>")

    def op_receive(self, req, who, client_ip, machine):
        shell = self._shell(req, machine)
        desired = req.body.find("rsp:Receive/rsp:DesiredStream", NS)
        command = self._command(shell, desired.get("CommandId") if desired is not None else None)
        streams, exit_code = command.receive(parse_duration(req.operation_timeout))
        if not streams:
            raise timed_out()
        cid = command.id
        parts = []
        for name, data, end in streams:
            end_attr = ' End="true"' if end else ""
            parts.append(f'<rsp:Stream Name="{name}" CommandId="{cid}"{end_attr}>'
                         f"{base64.b64encode(data).decode()}</rsp:Stream>")
        if exit_code is None:
            parts.append(f'<rsp:CommandState CommandId="{cid}" '
                         f'State="{SHELL}CommandState/Running"></rsp:CommandState>')
        else:
            parts.append(f'<rsp:CommandState CommandId="{cid}" State="{SHELL}CommandState/Done">'
                         f"<rsp:ExitCode>{exit_code}</rsp:ExitCode></rsp:CommandState>")
        body = f"<rsp:ReceiveResponse>{''.join(parts)}</rsp:ReceiveResponse>"
        return envelope(SHELL + "ReceiveResponse", req.message_id, body)

    def op_signal(self, req, who, client_ip, machine):
        shell = self._shell(req, machine)
        signal_el = req.body.find("rsp:Signal", NS)
        command = self._command(shell, signal_el.get("CommandId") if signal_el is not None else None)
        code = (signal_el.findtext("rsp:Code", "", NS) or "").strip().rsplit("/", 1)[-1]
        if code in ("terminate", "ctrl_c", "ctrl_break"):
            command.kill()
            log.info("shell %s: command %s signalled %s", shell.id, command.id, code)
        else:
            raise invalid_parameter()
        return envelope(SHELL + "SignalResponse", req.message_id, "<rsp:SignalResponse/>")

    def op_delete(self, req, who, client_ip, machine):
        shell = self._shell(req, machine)
        with self.state.lock:
            self.state.shells.pop(shell.id, None)
        for command in shell.commands.values():
            command.kill()
        log.info("deleted shell %s", shell.id)
        return envelope(TRANSFER + "DeleteResponse", req.message_id, "")


# ---------------------------------------------------------------------------------------------
# Message encryption (MS-WSMV 2.2.9.1.1)


class BadEncryptedBody(Exception):
    pass


def unseal(ctx, body: bytes) -> bytes:
    """The SOAP message in a `multipart/encrypted` body; BadEncryptedBody when it is malformed,
    fails its signature, or its plaintext is not the length the body announces."""
    end = BOUNDARY + b"--\r\n"
    if not body.startswith(BOUNDARY + b"\r\n") or not body.endswith(end):
        raise BadEncryptedBody("not framed by `--Encrypted Boundary`")
    parts = body[: -len(end)].split(BOUNDARY + b"\r\n")[1:]
    if len(parts) % 2 or not parts:
        raise BadEncryptedBody(f"{len(parts)} MIME parts, want pairs")
    message = b""
    for meta, payload in zip(parts[0::2], parts[1::2]):
        if f"Content-Type: {SPNEGO_ENCRYPTED}".encode() not in meta:
            raise BadEncryptedBody("the first part's Content-Type is not " + SPNEGO_ENCRYPTED)
        m = re.search(rb"OriginalContent: type=application/soap\+xml;charset=UTF-8;Length=(\d+)\r\n$", meta)
        if not m:
            raise BadEncryptedBody("no OriginalContent with a Length")
        prefix = b"\tContent-Type: application/octet-stream\r\n"
        if not payload.startswith(prefix) or len(payload) < len(prefix) + 4:
            raise BadEncryptedBody("the second part is not application/octet-stream")
        payload = payload[len(prefix):]
        header_length = struct.unpack("<I", payload[:4])[0]
        header, data = payload[4: 4 + header_length], payload[4 + header_length:]
        try:
            plain = ctx.unwrap_winrm(header, data)
        except Exception as e:  # pyspnego raises several kinds for a bad signature
            raise BadEncryptedBody(f"unwrap failed: {type(e).__name__}: {e}") from None
        if len(plain) != int(m.group(1)):
            raise BadEncryptedBody(f"Length={m.group(1)} but {len(plain)} bytes unsealed")
        message += plain
    return message


def seal(ctx, message: bytes) -> bytes:
    wrapped = ctx.wrap_winrm(message)
    return (
        BOUNDARY + b"\r\n"
        + f"\tContent-Type: {SPNEGO_ENCRYPTED}\r\n".encode()
        + f"\tOriginalContent: type=application/soap+xml;charset=UTF-8;Length={len(message)}\r\n".encode()
        + BOUNDARY + b"\r\n\tContent-Type: application/octet-stream\r\n"
        + struct.pack("<I", len(wrapped.header)) + wrapped.header + wrapped.data
        + BOUNDARY + b"--\r\n"
    )


# ---------------------------------------------------------------------------------------------
# HTTP: one handler instance per TCP connection, which owns that connection's auth context


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "Microsoft-HTTPAPI/2.0"

    def setup(self):
        super().setup()
        self.ctx = None  # the connection's NTLM/SPNEGO acceptor
        self.user = None  # who authenticated on this connection
        self.state: State = self.server.state

    def version_string(self):
        return self.server_version

    def log_message(self, format, *args):
        log.debug("%s %s", self.client_address[0], format % args)

    # -- plumbing ------------------------------------------------------------------------------

    def read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            body = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return body
                body += self.rfile.read(size)
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def reply(self, code: int, body: bytes = b"", content_type: str | None = None,
              headers: list[tuple[str, str]] = (), close: bool = False):
        self.send_response(code)
        for name, value in headers:
            self.send_header(name, value)
        if content_type and body:
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(body)

    def challenge_headers(self) -> list[tuple[str, str]]:
        headers = [("WWW-Authenticate", "Negotiate")]
        if self.server.https and self.state.args.allow_basic:
            headers.append(("WWW-Authenticate", 'Basic realm="WSMAN"'))
        return headers

    # -- requests ------------------------------------------------------------------------------

    def do_GET(self):
        self.read_body()
        self.reply(404 if self.path != "/wsman" else 405)

    def do_POST(self):
        body = self.read_body()
        if self.path.split("?")[0] != "/wsman":
            return self.reply(404)
        authorized, extra_headers = self.authenticate()
        if not authorized:
            return
        if not body:
            # pywinrm's and pypsrp's first request: it only sets the security context up
            return self.reply(200, headers=extra_headers)
        content_type = self.headers.get("Content-Type", "")
        if content_type.lower().startswith("multipart/encrypted"):
            if self.ctx is None or SPNEGO_ENCRYPTED not in content_type:
                log.warning("encrypted body without an NTLM/SPNEGO context or of another protocol")
                return self.reply(400, headers=extra_headers)
            try:
                message = unseal(self.ctx, body)
            except BadEncryptedBody as e:
                log.warning("refused an encrypted body: %s", e)
                return self.reply(400, headers=extra_headers)
            encrypted = True
        elif content_type.lower().startswith("application/soap+xml"):
            if not self.server.https:
                # Windows with AllowUnencrypted=false answers a plaintext body over HTTP with a
                # bare 500 (pywinrm issues #129 and #208, winrm4j #151, metasploit #8900)
                self.state.stats.bump("plaintext_refused")
                log.warning("refused a plaintext SOAP body over HTTP")
                return self.reply(500, headers=extra_headers)
            message, encrypted = body, False
        else:
            return self.reply(415, headers=extra_headers)
        self.answer_soap(message, encrypted, extra_headers)

    def answer_soap(self, message: bytes, encrypted: bool, extra_headers):
        machine = self.headers.get("Host", "127.0.0.1").rsplit(":", 1)[0] or "127.0.0.1"
        relates_to, status, corrupt = "", 200, None
        try:
            req = Request(message)
            relates_to = req.message_id
            req.validate()
            ordinal = self.state.next_ordinal(req.action)
            self.state.stats.bump("requests_by_action", req.action)
            for kind, number in self.state.faults.for_request(req.action, ordinal):
                log.info("injecting %s on %s #%d", kind, req.action, ordinal)
                if kind == "delay":
                    time.sleep(number)
                elif kind == "drop":
                    self.drop()
                    return
                elif kind == "quota":
                    raise quota_exceeded()
                elif kind == "access-denied":
                    raise access_denied()
                elif kind in ("plaintext", "tamper"):
                    corrupt = kind
            client_ip = self.client_address[0]
            response = ShellService(self.state).handle(req, self.user or "", client_ip, machine)
        except Fault as fault:
            log.info("fault %s (%s)", fault.subcode, fault.wsman_code)
            status = 500
            response = envelope("http://schemas.dmtf.org/wbem/wsman/1/wsman/fault", relates_to,
                                fault.body(machine))
        if encrypted and corrupt != "plaintext":
            body, content_type = seal(self.ctx, response), ENCRYPTED_TYPE
            if corrupt == "tamper":
                # a bit of the sealed data (after the part headers and the signature) flipped
                at = len(body) - len(BOUNDARY) - 8
                body = body[:at] + bytes([body[at] ^ 1]) + body[at + 1:]
        else:
            body, content_type = response, "application/soap+xml;charset=UTF-8"
        self.reply(status, body, content_type, extra_headers)

    def drop(self):
        log.info("dropping the connection without an answer")
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    # -- authentication ------------------------------------------------------------------------

    def authenticate(self) -> tuple[bool, list[tuple[str, str]]]:
        """`(True, headers for the answer)` when the request may proceed; otherwise it has been
        answered (401) already."""
        header = self.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        scheme = scheme.lower()
        if scheme in ("negotiate", "ntlm"):
            return self.step_negotiate("NTLM" if scheme == "ntlm" else "Negotiate", token.strip())
        if scheme == "basic":
            return self.check_basic(token.strip()), []
        if self.ctx is not None and self.ctx.complete and not header:
            return True, []
        if header:
            log.info("refused the `%s` scheme", scheme)
        self.reply(401, headers=self.challenge_headers())
        return False, []

    def step_negotiate(self, scheme: str, token_b64: str) -> tuple[bool, list]:
        import spnego

        try:
            token = base64.b64decode(token_b64, validate=True)
        except binascii.Error:
            token = b""
        if not token:
            self.reply(401, headers=self.challenge_headers(), close=True)
            return False, []
        starts_context = token.startswith(b"NTLMSSP\0\x01\0\0\0") or token[:1] == b"\x60"
        if self.ctx is None or self.ctx.complete or starts_context:
            protocol = "ntlm" if token.startswith(b"NTLMSSP\0") else "negotiate"
            self.ctx = spnego.server(protocol=protocol, service="HTTP",
                                     channel_bindings=self.server.channel_bindings)
            self.user = None
        try:
            out = self.ctx.step(token)
        except Exception as e:  # a wrong password or a malformed token: both are a 401
            self.state.stats.bump("auth_failures")
            log.warning("authentication failed: %s: %s", type(e).__name__, e)
            self.ctx = None
            self.reply(401, headers=self.challenge_headers(), close=True)
            return False, []
        if not self.ctx.complete:
            self.reply(401, headers=[("WWW-Authenticate", f"{scheme} {base64.b64encode(out).decode()}")])
            return False, []
        self.user = str(self.ctx.client_principal or "")
        self.state.stats.bump("authentications")
        # which mechanism SPNEGO settled on: `kerberos` or `ntlm`
        self.state.stats.bump("authentications_by_protocol", self.ctx.negotiated_protocol)
        log.info("authenticated `%s` (%s, %s)", self.user, scheme, self.ctx.negotiated_protocol)
        # SPNEGO's last leg (accept-completed, mechListMIC) rides on the answer, as HTTP.sys does
        headers = [("WWW-Authenticate", f"{scheme} {base64.b64encode(out).decode()}")] if out else []
        return True, headers

    def check_basic(self, token_b64: str) -> bool:
        if not (self.server.https and self.state.args.allow_basic):
            log.info("refused Basic auth (%s)", "not allowed" if self.server.https else "over HTTP")
            self.reply(401, headers=self.challenge_headers())
            return False
        try:
            user, _, password = base64.b64decode(token_b64, validate=True).decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError):
            user, password = "", None
        expected = self.state.users.get(user.lower())
        if expected is None or password != expected:
            self.state.stats.bump("auth_failures")
            log.warning("Basic authentication failed for `%s`", user)
            self.reply(401, headers=self.challenge_headers(), close=True)
            return False
        self.user = user
        self.state.stats.bump("authentications")
        return True


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, state: State, tls: ssl.SSLContext | None):
        self.state, self.tls, self.https = state, tls, tls is not None
        self.channel_bindings = None
        if state.args.channel_binding:
            from spnego.channel_bindings import GssChannelBindings
            self.channel_bindings = GssChannelBindings(
                application_data=tls_server_end_point(state.args.channel_binding))
        super().__init__(("127.0.0.1", 0), Handler)

    def process_request(self, request, client_address):
        limit = self.state.args.max_connections
        with self.state.lock:
            over = limit is not None and self.state.active_connections >= limit
            if not over:
                self.state.active_connections += 1
        self.state.stats.bump("connections")
        if over:
            log.warning("connection from %s over --max-connections %d: closed", client_address, limit)
            self.shutdown_request(request)
            return
        super().process_request(request, client_address)

    def finish_request(self, request, client_address):
        # the TLS handshake runs here, in the connection's thread, not in the accept loop
        try:
            if self.tls:
                try:
                    request = self.tls.wrap_socket(request, server_side=True)
                except (ssl.SSLError, OSError) as e:
                    log.info("TLS handshake with %s failed: %s", client_address, e)
                    return
            super().finish_request(request, client_address)
        finally:
            with self.state.lock:
                self.state.active_connections -= 1


# ---------------------------------------------------------------------------------------------
# make-cert: a test CA and a server certificate signed by it


def make_cert(directory: str, name: str, wrong_name: bool, hash_name: str = "sha256"):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    os.makedirs(directory, exist_ok=True)
    path = lambda f: os.path.join(directory, f)
    pem = lambda key: key.private_bytes(serialization.Encoding.PEM,
                                        serialization.PrivateFormat.PKCS8,
                                        serialization.NoEncryption())
    now = datetime.datetime.now(datetime.timezone.utc)
    start, end = now - datetime.timedelta(days=1), now + datetime.timedelta(days=30)
    if os.path.exists(path("ca.pem")) and os.path.exists(path("ca-key.pem")):
        with open(path("ca.pem"), "rb") as f:
            ca = x509.load_pem_x509_certificate(f.read())
        with open(path("ca-key.pem"), "rb") as f:
            ca_key = serialization.load_pem_private_key(f.read(), None)
    else:
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kmsconf test WinRM CA")])
        ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
              .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
              .not_valid_before(start).not_valid_after(end)
              .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
              .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False),
                             critical=True)
              .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
              .sign(ca_key, hashes.SHA256()))
        write_file(path("ca-key.pem"), pem(ca_key))
        write_file(path("ca.pem"), ca.public_bytes(serialization.Encoding.PEM))
    if wrong_name:
        # a name the client never connects to, and neither 127.0.0.1 nor localhost
        names, prefix = [x509.DNSName("wrong-host.invalid")], "wrong-"
        common_name = "wrong-host.invalid"
    else:
        names = [x509.DNSName(name), x509.DNSName("localhost"),
                 x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
        if name == "localhost":
            names.pop(1)
        prefix, common_name = "", name
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
            .issuer_name(ca.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(start).not_valid_after(end)
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False)
            .sign(ca_key, {"sha256": hashes.SHA256(), "sha384": hashes.SHA384()}[hash_name]))
    write_file(path(prefix + "key.pem"), pem(key))
    write_file(path(prefix + "cert.pem"), cert.public_bytes(serialization.Encoding.PEM))


def write_file(path: str, data: bytes):
    with open(path, "wb") as f:
        f.write(data)


# ---------------------------------------------------------------------------------------------
# command line


def parse_args(argv):
    p = argparse.ArgumentParser(description="A test WinRM endpoint on 127.0.0.1 (see the module doc).")
    p.add_argument("--port-file", required=True, help="where to write the port it listens on")
    p.add_argument("--https", nargs=2, metavar=("CERT", "KEY"), help="serve TLS with this certificate")
    p.add_argument("--allow-basic", action="store_true", help="accept Basic auth (over HTTPS only)")
    p.add_argument("--kmsconf", help="kmsconf binary, $KMSCONF_BIN in --agent-command")
    p.add_argument("--lab", help="lab host file, $LAB_FILE in --agent-command")
    p.add_argument("--agent-command", default='"$KMSCONF_BIN" lab agent "$LAB_FILE"',
                   help="what `powershell.exe` runs, a /bin/sh command line")
    p.add_argument("--stats", help="JSON counters, rewritten after every change")
    p.add_argument("--fault-on", action="append", default=[], metavar="ACTION:KIND[:N]",
                   help="Create:quota, Create:access-denied, Receive:drop:N, Command:delay:SECONDS, ...")
    p.add_argument("--max-connections", type=int, help="close connections beyond this many open ones")
    p.add_argument("--log", help="log file (no passwords, no stdin contents)")
    p.add_argument("--keytab", help="Kerberos keys of HTTP/<host> (KRB5_KTNAME), for SPNEGO's Kerberos; "
                                    "the realm's KDC comes from KRB5_CONFIG")
    p.add_argument("--service-idle-timeout", type=float, default=SERVICE_IDLE_TIMEOUT, metavar="SECONDS",
                   help="the service's IdleTimeout: the most a shell's idle time may be (its Create reply "
                        "says what it granted)")
    p.add_argument("--channel-binding", metavar="CERT",
                   help="require RFC 5929 tls-server-end-point channel bindings of CERT (PEM; the "
                        "served certificate for a client to pass, another to see bindings checked), "
                        "as WinRM with CbtHardeningLevel=Strict: NTLM without them is refused")
    return p.parse_args(argv)


def tls_server_end_point(pem_path: str) -> bytes:
    """RFC 5929 section 4.1: the certificate's hash with its signature's hash algorithm, SHA-256
    in place of MD5 and SHA-1 (and where the algorithm names none)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    with open(pem_path, "rb") as f:
        cert = x509.load_pem_x509_certificate(f.read())
    algorithm = cert.signature_hash_algorithm
    if algorithm is None or isinstance(algorithm, (hashes.MD5, hashes.SHA1)):
        algorithm = hashes.SHA256()
    digest = hashes.Hash(algorithm)
    digest.update(cert.public_bytes(serialization_der()))
    return b"tls-server-end-point:" + digest.finalize()


def serialization_der():
    from cryptography.hazmat.primitives.serialization import Encoding
    return Encoding.DER


def make_cert_main(argv):
    p = argparse.ArgumentParser(prog="server.py make-cert",
                                description="Write ca.pem, ca-key.pem, cert.pem and key.pem to DIR; "
                                            "with --wrong-name, wrong-cert.pem and wrong-key.pem "
                                            "for `wrong-host.invalid`, signed by DIR's CA")
    p.add_argument("--dir", required=True)
    p.add_argument("--name", default="localhost")
    p.add_argument("--wrong-name", action="store_true")
    p.add_argument("--hash", choices=["sha256", "sha384"], default="sha256",
                   help="the hash the CA signs the server certificate with (channel bindings follow it)")
    args = p.parse_args(argv)
    make_cert(args.dir, args.name, args.wrong_name, args.hash)
    return 0


def serve_main(argv):
    args = parse_args(argv)
    if args.log:
        logging.basicConfig(filename=args.log, level=logging.INFO,
                            format="%(asctime)s %(threadName)s %(levelname)s %(message)s")
    else:
        log.addHandler(logging.NullHandler())  # silent: no last-resort warnings on stderr
    if args.keytab:
        # read by MIT krb5 when pyspnego's acceptor (python-gssapi) takes its credentials
        os.environ["KRB5_KTNAME"] = "FILE:" + os.path.abspath(args.keytab)
    try:
        import spnego  # noqa: F401  (fail at start, not at the first request)
        state = State(args)
        tls = None
        if args.https:
            tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            tls.load_cert_chain(*args.https)
        server = Server(state, tls)
    except (ValueError, OSError, ImportError, ssl.SSLError) as e:
        print(f"winrm test server: {e}", file=sys.stderr)
        return 2
    port = server.server_address[1]
    write_file(args.port_file + ".tmp", f"{port}\n".encode())
    os.replace(args.port_file + ".tmp", args.port_file)
    log.info("listening on 127.0.0.1:%d (%s)", port, "https" if tls else "http")

    def stop(signum, frame):
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        state.kill_all()
        server.server_close()
        log.info("stopped")
    return 0


def main(argv):
    if argv[:1] == ["make-cert"]:
        return make_cert_main(argv[1:])
    return serve_main(argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
