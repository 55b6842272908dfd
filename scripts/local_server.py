"""A release server on free loopback ports with a fresh admin key and data directory, for the measurement scripts
(connection-flood.py, worst-evaluation.py)."""
import base64, os, secrets, socket, subprocess, tempfile, time, urllib.request


def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]; s.close(); return port


def new_key():
    return "hr_" + base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")


def wait_ready(port):
    for _ in range(100):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/ready"); return
        except Exception:
            time.sleep(0.1)


def start(binary, *flags):
    """`binary serve` with `flags`, once `/ready` answers: (process, api port, proxy port, admin key)."""
    key = new_key()
    api, proxy = free_port(), free_port()
    server = subprocess.Popen([binary, "serve", "--port", str(api), "--proxy-port", str(proxy), "--data-dir",
                               tempfile.mkdtemp(), "--no-rate-limits", *flags],
                              env={**os.environ, "HANDOFFRAIL_ADMIN_KEY": key, "HANDOFFRAIL_LOG": "warn"})
    wait_ready(api)
    return server, api, proxy, key
