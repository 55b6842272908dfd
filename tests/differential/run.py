"""Verdict soundness (docs/verdict-soundness.md): HandoffRail's evaluator against SourceryKit 1.5.0 and against
two labelled corpora, through a running release binary.

    python tests/differential/run.py BINARY        (in a Python >= 3.12 venv holding sourcerykit==1.5.0)

1. Generates the corpora (tests/differential/corpus.py) and checks that the labelled ones kept in the repository
   (tests/differential/corpora/*.gz) are exactly what the generator writes.
2. Starts BINARY on a scratch SQLite database, imports every document as a record three times — from a trusted
   endpoint, from an untrusted host, and a copy that is altered in the database after it was sealed — and
   trusts the API's endpoint.
3. The differential corpus through both evaluators: every disagreement must belong to a by-design class
   (tests/differential/classes.py, documented in docs/verdict-soundness.md); the classes and counts are printed.
4. The truthful corpus must give only PASS, the adversarial corpus no PASS.
Exits non-zero on any failure, naming the claims.
"""

from __future__ import annotations

import base64
import collections
import gzip
import json
import os
import secrets
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import classes  # noqa: E402
import corpus  # noqa: E402

TRUSTED = "https://api.example.com/v1/docs/{name}"
UNTRUSTED = "https://api.example.com.evil.net/v1/docs/{name}"
TAMPERED = "https://api.example.com/v1/docs/{name}/copy"
CHUNK = 1000


class Server:
    def __init__(self, binary: str, scratch: Path) -> None:
        self.key = "hr_" + base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")
        self.data = scratch / "data"
        port = free_port()
        self.base = f"http://127.0.0.1:{port}/api/v1"
        self.log = (scratch / "server.log").open("w")
        self.process = subprocess.Popen(
            [binary, "serve", "--port", str(port), "--no-proxy", "--data-dir", str(self.data), "--no-rate-limits"],
            env={**os.environ, "HANDOFFRAIL_ADMIN_KEY": self.key}, stdout=self.log, stderr=subprocess.STDOUT)
        for _ in range(200):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=1)
                return
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.05)
        raise RuntimeError("the server did not start: " + (scratch / "server.log").read_text())

    def call(self, method: str, path: str, body: Any) -> Any:
        request = urllib.request.Request(self.base + path, method=method, data=json.dumps(body).encode(),
                                         headers={"X-API-Key": self.key, "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=120) as response:
                return json.load(response)
        except urllib.error.HTTPError as error:
            raise RuntimeError(f"{method} {path}: {error.code} {error.read()[:500]!r}") from None

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=20)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def har_entry(url: str, document: Any) -> dict[str, Any]:
    return {"startedDateTime": "2026-12-07T12:00:00Z", "time": 12,
            "request": {"method": "GET", "url": url, "headers": []},
            "response": {"status": 200, "headers": [{"name": "Content-Type", "value": "application/json"}],
                         "content": {"mimeType": "application/json", "text": json.dumps(document)}},
            "_handoffrail": {"run_id": "soundness", "agent_id": "generator", "action": "read"}}


def set_at(document: Any, path: tuple[Any, ...], value: Any) -> None:
    for part in path[:-1]:
        document = document[part]
    document[path[-1]] = value


def parse_path(text: str) -> tuple[Any, ...]:
    """The corpus's `$.a[1].b` paths as parts."""
    parts: list[Any] = []
    for piece in text[1:].replace("[", ".[").split("."):
        if piece:
            parts.append(int(piece[1:-1]) if piece.startswith("[") else piece)
    return tuple(parts)


def tampered_copies(documents: dict[str, Any], claims: list[dict[str, Any]]) -> dict[str, Any]:
    """Each document as an attacker would alter it for the tampered claims on it: stating what they claim."""
    copies = json.loads(json.dumps(documents))
    for line in claims:
        if line["evidence"] == "tampered":
            claim = line["claim"]
            set_at(copies[line["document"]], parse_path(claim["json_path"]), claim["claimed_value"])
    return copies


def import_evidence(server: Server, documents: dict[str, Any], claims: list[dict[str, Any]]) -> dict[tuple[str, str], str]:
    """Record ids by (document, evidence kind); the tampered copies are altered in the database after sealing."""
    server.call("POST", "/trusted-endpoints", {"url": "https://api.example.com/v1/{rest:path}", "methods": ["GET"]})
    ids: dict[tuple[str, str], str] = {}
    for name, document in documents.items():
        entries = [har_entry(url.format(name=name), document) for url in (TRUSTED, UNTRUSTED, TAMPERED)]
        stored = server.call("POST", "/records", {"log": {"version": "1.2", "entries": entries}})["ids"]
        ids[(name, "genuine")], ids[(name, "untrusted")], ids[(name, "tampered")] = stored
        ids[(name, "other")] = ids[(name, "genuine")]
    copies = tampered_copies(documents, claims)
    with sqlite3.connect(server.data / "handoffrail.db") as database:
        for name in documents:
            database.execute("UPDATE records SET response_body = ? WHERE id = ?",
                             (json.dumps(copies[name]).encode(), ids[(name, "tampered")]))
    return ids


def ours(server: Server, lines: list[dict[str, Any]], ids: dict[tuple[str, str], str]) -> list[dict[str, Any]]:
    """HandoffRail's verdict on each claim, through POST /evaluations in chunks."""
    results: list[dict[str, Any]] = []
    for start in range(0, len(lines), CHUNK):
        chunk = lines[start:start + CHUNK]
        claims = [{**line["claim"], "record_id": ids[(line["document"], line["evidence"])]} for line in chunk]
        verdict = server.call("POST", "/evaluations", {"run_id": "soundness", "claims": claims})
        results.extend(verdict["per_claim"])
    return results


def sourcerykit(lines: list[dict[str, Any]], documents: dict[str, Any]) -> list[dict[str, Any]]:
    """SourceryKit 1.5.0's verdict on each claim, in process (`evaluate_claim` on the document); an exception out of
    it is reported as `RAISES`."""
    from sourcerykit.evaluator._eval_modes import evaluate_claim
    from sourcerykit.schemas import HandoffClaim

    results = []
    for line in lines:
        try:
            answer = evaluate_claim(HandoffClaim.model_validate(line["claim"]), documents[line["document"]])
            results.append({"result": str(answer["result"]), "detail": answer.get("detail")})
        except Exception as error:  # what escapes SourceryKit's evaluator is itself a finding
            results.append({"result": "RAISES", "detail": f"{type(error).__name__}: {error}"})
    return results


def check_kept_corpora(generated: Path) -> list[str]:
    failures = []
    for name in ("documents.json", "truthful.jsonl", "adversarial.jsonl"):
        kept = HERE / "corpora" / f"{name}.gz"
        if not kept.exists() or gzip.decompress(kept.read_bytes()) != (generated / name).read_bytes():
            failures.append(f"{kept} is not what corpus.py generates (python tests/differential/corpus.py "
                            f"--keep rewrites it)")
    return failures


def main() -> int:
    binary = sys.argv[1]
    scratch = Path(tempfile.mkdtemp(prefix="soundness-"))
    corpus.write(scratch / "corpora")
    failures = check_kept_corpora(scratch / "corpora")
    documents = json.loads((scratch / "corpora/documents.json").read_text())
    read = lambda name: [json.loads(line) for line in (scratch / "corpora" / f"{name}.jsonl").open()]  # noqa: E731
    differential, truthful, adversarial = read("differential"), read("truthful"), read("adversarial")

    server = Server(binary, scratch)
    try:
        ids = import_evidence(server, documents, adversarial)
        started = time.monotonic()
        our_differential = ours(server, differential, ids)
        ours_seconds = time.monotonic() - started
        our_truthful = ours(server, truthful, ids)
        our_adversarial = ours(server, adversarial, ids)
    finally:
        server.stop()
    started = time.monotonic()
    theirs = sourcerykit(differential, documents)
    theirs_seconds = time.monotonic() - started

    print(f"differential corpus: {len(differential)} claims over {len(documents)} documents "
          f"(HandoffRail over HTTP {ours_seconds:.2f} s, SourceryKit 1.5.0 in process {theirs_seconds:.2f} s)")
    agreed, by_class, unexplained = 0, collections.Counter(), []
    for line, mine, other in zip(differential, our_differential, theirs):
        if mine["result"] == other["result"]:
            agreed += 1
            continue
        found = classes.classify(line["claim"], documents[line["document"]], mine, other)
        if found is None:
            unexplained.append((line, mine, other))
        else:
            by_class[found] += 1
    print(f"  agree: {agreed}; disagree: {len(differential) - agreed}")
    for name, count in by_class.most_common():
        print(f"  by design, {name}: {count}")
    if os.environ.get("SOUNDNESS_DUMP"):
        with open(os.environ["SOUNDNESS_DUMP"], "w") as dump:
            for line, mine, other in unexplained:
                dump.write(json.dumps({"claim": line["claim"], "document": line["document"], "ours": mine,
                                       "theirs": other}) + "\n")
    for line, mine, other in unexplained[:20]:
        print(f"  UNEXPLAINED {line['id']}: {json.dumps(line['claim'])}\n"
              f"    ours {mine['result']} {mine.get('reason')} {mine.get('detail')}; sourcerykit {other}")
    if unexplained:
        failures.append(f"{len(unexplained)} disagreements with SourceryKit fall in no by-design class")

    for name, lines, results, forbidden in [("truthful", truthful, our_truthful, {"CAUGHT", "ERROR"}),
                                            ("adversarial", adversarial, our_adversarial, {"PASS"})]:
        counts = collections.Counter(result["result"] for result in results)
        reasons = collections.Counter((line["kind"], result["reason"]) for line, result in zip(lines, results))
        print(f"{name} corpus: {len(lines)} claims: " + ", ".join(f"{key} {value}" for key, value in sorted(counts.items())))
        for (kind, reason), count in sorted(reasons.items()):
            print(f"  {kind}: {reason} {count}")
        wrong = [(line, result) for line, result in zip(lines, results) if result["result"] in forbidden]
        for line, result in wrong[:20]:
            print(f"  WRONG {line['id']} ({line['kind']}, {line['evidence']}): {json.dumps(line['claim'])}\n"
                  f"    {result['result']} {result['reason']} {result.get('detail')}")
        if wrong:
            failures.append(f"{name} corpus: {len(wrong)} claims answered {'/'.join(sorted(forbidden))}")

    for failure in failures:
        print("FAILED: " + failure)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
