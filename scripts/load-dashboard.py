#!/usr/bin/env python3
"""The dashboard's handoff list at scale: a release server pinned to core 0 on SQLite or PostgreSQL, seeded with
N packets by the lifecycle generator (pinned to core 1), then GET /dashboard/handoffs (50 a page, the first page
and a page deep in the cursor chain) asked one at a time over one keep-alive connection; p50/p99 ms and bytes.

    scripts/load-dashboard.py BINARY GENERATOR ROWS [postgres URL]

(`cargo bench --bench lifecycle --no-run` builds GENERATOR; PostgreSQL's database is vacuumed and analysed after
seeding, as autovacuum would.) Numbers go to BENCHMARKS.md."""
import http.client
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import local_server  # noqa: E402

binary, generator, rows = sys.argv[1], sys.argv[2], int(sys.argv[3])
database = sys.argv[4] if len(sys.argv) > 4 else None
key = local_server.new_key()
port = local_server.free_port()
data_dir = tempfile.mkdtemp()
url = database or f"sqlite://{data_dir}/handoffrail.db"
server = subprocess.Popen(["taskset", "-c", "0", binary, "serve", "--port", str(port), "--data-dir", data_dir,
                           "--database-url", url, "--no-rate-limits"],
                          env={**os.environ, "HANDOFFRAIL_ADMIN_KEY": key, "HANDOFFRAIL_LOG": "warn"})
try:
    local_server.wait_ready(port)
    subprocess.run(["taskset", "-c", "1", generator, "--url", f"http://127.0.0.1:{port}/api/v1", "--api-key", key,
                    "--seed", str(rows), "--seed-only"], check=True, stderr=subprocess.DEVNULL)
    if database:
        # The steady state a production table is in once autovacuum has visited it.
        subprocess.run(["psql", database, "-qc", "VACUUM ANALYZE"], check=True)
    connection = http.client.HTTPConnection("127.0.0.1", port)

    def get(path, cookie=""):
        connection.request("GET", path, headers={"Cookie": cookie} if cookie else {})
        response = connection.getresponse()
        return response, response.read()

    form, page = get("/dashboard/sign-in")
    sign_in_cookie = form.getheader("Set-Cookie").split(";")[0]
    token = re.search(rb'name="csrf" value="([^"]+)"', page).group(1).decode()
    body = urllib.parse.urlencode({"api_key": key, "csrf": token})
    connection.request("POST", "/dashboard/sign-in", body=body,
                       headers={"Cookie": sign_in_cookie, "Content-Type": "application/x-www-form-urlencoded"})
    signed = connection.getresponse()
    signed.read()
    session = [value.split(";")[0] for name, value in signed.getheaders()
               if name.lower() == "set-cookie" and value.startswith("hr_session=")][0]

    # A page deep in the chain: follow "Older handoffs" ten times.
    deep = "/dashboard/handoffs"
    for _ in range(10):
        _, html = get(deep, session)
        found = re.search(rb'href="(/dashboard/handoffs\?[^"]+)">Older', html)
        if not found:
            break
        deep = found.group(1).decode().replace("&amp;", "&")
    for label, path in [("first page", "/dashboard/handoffs"), ("11th page", deep)]:
        for _ in range(20):
            get(path, session)
        times, size = [], 0
        for _ in range(300):
            started = time.perf_counter()
            response, html = get(path, session)
            times.append((time.perf_counter() - started) * 1000)
            assert response.status == 200, response.status
            size = len(html)
        times.sort()
        backend = "PostgreSQL" if database else "SQLite"
        print(f"| {backend} | {rows:,} | {label} | {statistics.median(times):.2f} | "
              f"{times[int(len(times) * 0.99) - 1]:.2f} | {size:,} |", flush=True)
finally:
    server.terminate()
    server.wait()
