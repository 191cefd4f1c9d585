#!/usr/bin/env python3
"""Recorded WinRM traffic for kmsconf's WS-Management tests, as one JSON file.

pypsrp's source distribution (PyPI, MIT) holds YAML files of request/response pairs recorded
from Windows Server 2012 R2, 2016 and 2019 (tests/tests_pypsrp/responses/*.yml). This script
reads them straight from the .tar.gz (nothing is extracted) and writes a JSON list of
{"file", "index", "request", "response", "meta"}: "meta" holds the pair's other keys, such as
"transport_error" ({"protocol": "http", "code": 500} for a fault). `_template.yml` is pypsrp's
placeholder for new fixtures, not a recording, and is left out. The sdist is downloaded with pip
into the cache directory when it is not there, and checked against its SHA-256.

Needs PyYAML (scripts/test.sh installs it in target/test-venv).

usage: winrm-fixtures.py --cache DIR --out FILE [--sdist PATH]
"""

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tarfile

VERSION = "0.9.1"
SDIST = f"pypsrp-{VERSION}.tar.gz"
# the sdist as PyPI serves it: a different file is refused rather than read
SHA256 = "3ad41285739d5f8107dd8277ae00e86ee44153aae5e82fb578ac8048307e0d12"
FIXTURES = "/tests/tests_pypsrp/responses/"


def fail(message):
    print(f"winrm-fixtures: {message}", file=sys.stderr)
    sys.exit(1)


def sdist_path(cache, given):
    if given:
        return given
    path = os.path.join(cache, SDIST)
    if not os.path.exists(path):
        os.makedirs(cache, exist_ok=True)
        command = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                   "--no-binary", ":all:", f"pypsrp=={VERSION}", "-d", cache]
        if subprocess.run(command, check=False).returncode != 0:
            fail(f"cannot download `{SDIST}` with pip into `{cache}`")
    return path


def check_hash(path):
    with open(path, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    if digest != SHA256:
        fail(f"`{path}` has SHA-256 {digest}, not pypsrp {VERSION}'s {SHA256}")


def fixtures(path, yaml):
    pairs = []
    with tarfile.open(path, "r:gz") as tar:
        members = sorted((m for m in tar.getmembers() if m.isfile()), key=lambda m: m.name)
        for member in members:
            name = os.path.basename(member.name)
            if FIXTURES not in member.name or not name.endswith(".yml") or name.startswith("_"):
                continue
            data = yaml.safe_load(tar.extractfile(member).read().decode("utf-8"))
            for index, message in enumerate(data.get("messages") or []):
                meta = {k: v for k, v in message.items() if k not in ("request", "response")}
                pairs.append({
                    "file": name,
                    "index": index,
                    "request": message.get("request") or "",
                    "response": message.get("response") or "",
                    "meta": meta,
                })
    return pairs


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", required=True, help="where the sdist is kept")
    parser.add_argument("--out", required=True, help="the JSON file to write")
    parser.add_argument("--sdist", help="a pypsrp-0.9.1.tar.gz already at hand")
    args = parser.parse_args()
    try:
        import yaml
    except ImportError:
        fail("PyYAML is missing; run `bash scripts/test.sh`, which installs it in a venv")
    path = sdist_path(args.cache, args.sdist)
    check_hash(path)
    pairs = fixtures(path, yaml)
    if not pairs:
        fail(f"no YAML fixtures under `{FIXTURES}` in `{path}`")
    tmp = args.out + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(pairs, f, indent=1)
    os.replace(tmp, args.out)
    files = len({p["file"] for p in pairs})
    print(f"winrm-fixtures: {len(pairs)} request/response pairs from {files} files -> {args.out}")


if __name__ == "__main__":
    main()
