#!/usr/bin/env python3
"""The costliest evaluation request we can build within the default limits, against a release server: the CPU
time and peak memory the server spends on it. Records come through the proxy (10 MiB bodies are allowed there),
then one 1 MiB evaluation body of 1,000 claims mixing the worst paths we know: nested descendant segments,
regexes over every string, 31-deep filters, wide selections whose `actual` is cut.

    scripts/worst-evaluation.py [path/to/handoffrail]      (default target/release/handoffrail)
"""
import json, os, sys, threading, time, urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import local_server

binary = sys.argv[1] if len(sys.argv) > 1 else "target/release/handoffrail"


def document(width, depth):
    """A deep and wide JSON document: `depth` levels of nesting, `width` objects of strings and numbers each."""
    node = {"leaf": "x" * 8}
    for level in range(depth):
        node = {"level": level, "items": [{"name": f"item-{level}-{i}", "n": i, "tag": "abcabc"} for i in range(width)],
                "next": node}
    return node


big = json.dumps(document(width=2000, depth=int(os.environ.get("DEPTH", "75")))).encode()
# Two records of which one fills the default evidence budget (8 MiB), and one deeply nested record.
bodies = {"/big": big, "/big2": big.replace(b"abcabc", b"abcabd"),
          "/nested": json.dumps(document(width=5, depth=120)).encode()}


class Upstream(BaseHTTPRequestHandler):
    def do_GET(self):
        body = bodies.get(self.path, b"{}")
        self.send_response(200); self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body))); self.end_headers(); self.wfile.write(body)

    def log_message(self, *args):
        pass


upstream = ThreadingHTTPServer(("127.0.0.1", local_server.free_port()), Upstream)
threading.Thread(target=upstream.serve_forever, daemon=True).start()
server, api, proxy, key = local_server.start(binary)
try:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler(
        {"http": f"http://agent:{key}@127.0.0.1:{proxy}"}))
    records = {}
    for path in bodies:
        with opener.open(f"http://127.0.0.1:{upstream.server_port}{path}") as response:
            response.read(); records[path] = response.headers["x-handoffrail-record"]
    worst_paths = [
        "$..*..*..*..*",
        "$..[?match(@, '(a|b|c)*c(a|b|c)*')]",
        "$..[?search(@.name, 'item-[0-9]+-1[0-9]{2}')]",
        "$" + "[?@" * 15 + "]" * 15,
        "$..items[*]",
        "$..[?@.n > 5 && @.tag == 'abcabc' || length(@.name) > 3]",
    ]
    claims = []
    while len(json.dumps({"claims": claims})) < 1000 * 1024 and len(claims) < 1000:
        i = len(claims)
        mode = ["exact", "field_extraction", "presence"][i % 3]
        claims.append({"action_name": "worst", "verification_mode": mode,
                       "json_path": worst_paths[i % len(worst_paths)],
                       "claimed_value": True if mode == "presence" else "nope",
                       "record_id": records[["/big", "/big2", "/nested"][i % 3]]})
    body = json.dumps({"claims": claims}).encode()

    def cpu_and_peak():
        stat = open(f"/proc/{server.pid}/stat").read().split()
        ticks = int(stat[13]) + int(stat[14])
        peak = next(line for line in open(f"/proc/{server.pid}/status") if line.startswith("VmHWM")).split()[1]
        rss = next(line for line in open(f"/proc/{server.pid}/status") if line.startswith("VmRSS")).split()[1]
        return ticks / os.sysconf("SC_CLK_TCK"), int(peak) // 1024, int(rss) // 1024

    before = cpu_and_peak()
    started = time.time()
    request = urllib.request.Request(f"http://127.0.0.1:{api}/api/v1/evaluations", data=body, method="POST",
                                     headers={"X-API-Key": key, "content-type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        answer = response.read()
    wall = time.time() - started
    after = cpu_and_peak()
    verdict = json.loads(answer)
    reasons = {}
    for claim in verdict["per_claim"]:
        reasons[claim["reason"]] = reasons.get(claim["reason"], 0) + 1
    print(f"records: {', '.join(f'{len(b):,}' for b in bodies.values())} bytes; request: {len(claims)} claims, {len(body):,} bytes")
    print(f"server CPU {after[0] - before[0]:.2f} s, wall {wall:.2f} s, RSS {before[2]} -> peak {after[1]} MiB "
          f"(+{after[1] - before[2]} MiB), answer {len(answer):,} bytes, reasons {reasons}")
finally:
    server.terminate(); server.wait(); upstream.shutdown()
