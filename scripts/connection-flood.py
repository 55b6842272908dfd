#!/usr/bin/env python3
"""Floods a release server's proxy port with 5,000 idle and 300 slowloris connections (a header byte every 2 s),
measures `/health` on the API port every 100 ms throughout, then checks that the server closed every flooding
connection within its deadlines (--header-timeout, default 10 s) and that its memory came back.

    scripts/connection-flood.py [path/to/handoffrail]      (default target/release/handoffrail)
"""
import os, resource, socket, sys, threading, time, urllib.request

import local_server

binary = sys.argv[1] if len(sys.argv) > 1 else "target/release/handoffrail"
IDLE, SLOW = 5000, 300
# --header-timeout for this run (default 30 s, so that every flooding connection is open at once while they
# are being opened); every one must be gone this long after the last opened, plus a little.
HEADER_TIMEOUT = int(os.environ.get("HEADER_TIMEOUT", "30"))
SECONDS = HEADER_TIMEOUT + 3
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def rss_mib(pid):
    return int(next(l for l in open(f"/proc/{pid}/status") if l.startswith("VmRSS")).split()[1]) / 1024


server, api, proxy, key = local_server.start(binary, "--header-timeout", str(HEADER_TIMEOUT))
try:
    time.sleep(0.5)
    before = rss_mib(server.pid)
    latencies, stop = [], threading.Event()

    def probe():
        while not stop.is_set():
            started = time.perf_counter()
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{api}/health", timeout=5).read()
                latencies.append((time.perf_counter() - started) * 1000)
            except Exception:
                latencies.append(float("inf"))
            time.sleep(0.1)

    threading.Thread(target=probe, daemon=True).start()

    def closed(s):
        try:
            return s.recv(65536) == b""
        except BlockingIOError:
            return False
        except OSError:
            return True

    opened = time.time()
    idle, slow = [], []
    for _ in range(IDLE):
        s = socket.create_connection(("127.0.0.1", proxy)); s.setblocking(False); idle.append(s)
    for _ in range(SLOW):
        s = socket.create_connection(("127.0.0.1", proxy)); s.sendall(b"GET http://x/ HTTP/1.1\r\n")
        s.setblocking(False); slow.append(s)
    still = sum(1 for s in idle + slow if not closed(s))
    print(f"opened {IDLE} idle + {SLOW} slowloris connections in {time.time() - opened:.1f} s, {still} open at once; "
          f"server RSS {before:.1f} -> {rss_mib(server.pid):.1f} MiB")
    opened = time.time()  # deadlines are measured from here: the last connection is this old

    closed_at = {}
    while time.time() - opened < SECONDS:
        for s in slow:
            if s not in closed_at:
                try:
                    s.send(b"X")
                except OSError:
                    closed_at[s] = time.time() - opened
        for s in idle + slow:
            if s not in closed_at and closed(s):
                closed_at[s] = time.time() - opened
        time.sleep(2)
    stop.set()
    open_idle = sum(1 for s in idle if s not in closed_at)
    open_slow = sum(1 for s in slow if s not in closed_at)
    latest = max(closed_at.values()) if closed_at else float("nan")
    for s in idle + slow:
        s.close()
    time.sleep(12)  # the server hands freed memory back every 10 s
    after = rss_mib(server.pid)
    finite = sorted(l for l in latencies if l != float("inf"))
    failures = len(latencies) - len(finite)
    print(f"/health: {len(latencies)} probes, max {finite[-1]:.1f} ms, p99 "
          f"{finite[int(len(finite) * 0.99) - 1]:.1f} ms, failures {failures}")
    print(f"still open after {SECONDS} s: {open_idle} idle, {open_slow} slowloris; last closed at {latest:.1f} s")
    print(f"server RSS before {before:.1f} MiB, after {after:.1f} MiB (delta {after - before:+.1f} MiB)")
finally:
    server.terminate(); server.wait()
