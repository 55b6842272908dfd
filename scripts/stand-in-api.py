#!/usr/bin/env python3
"""A stand-in upstream API over TLS, for running the documents' agent examples without the internet.

    scripts/stand-in-api.py --port 9443 --tls-dir DIR

Creates DIR/ca.pem (a throwaway CA; start HandoffRail with `--upstream-ca DIR/ca.pem` so the proxy trusts it)
and a certificate for localhost signed by it, then serves:

    GET /v1/orders/{id}     an order (status, total, lines)
    GET /v1/stock/{sku}     stock for a SKU (available, warehouse)
    GET /v1/forecast?latitude=&longitude=&current=temperature_2m
                            current weather, shaped like Open-Meteo's forecast API
"""

import argparse
import http.server
import json
import os
import ssl
import subprocess
import sys
import urllib.parse


def make_certificates(directory):
    ca, ca_key = os.path.join(directory, "ca.pem"), os.path.join(directory, "ca.key")
    leaf, leaf_key = os.path.join(directory, "api.pem"), os.path.join(directory, "api.key")
    if os.path.exists(leaf):
        return leaf, leaf_key
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    run = lambda *args: subprocess.run(["openssl", *args], check=True, capture_output=True)
    run("req", "-x509", *ec, "-days", "2", "-subj", "/CN=orders-api stand-in CA", "-keyout", ca_key, "-out", ca)
    csr = os.path.join(directory, "api.csr")
    run("req", *ec, "-subj", "/CN=localhost", "-keyout", leaf_key, "-out", csr)
    extensions = os.path.join(directory, "api.ext")
    with open(extensions, "w") as file:
        file.write("subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n"
                   "keyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n")
    run("x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial", "-days", "2",
        "-extfile", extensions, "-out", leaf)
    return leaf, leaf_key


ORDERS = {
    "ord_8d1f2c": {
        "order_id": "ord_8d1f2c",
        "status": "shipped",
        "total": 1234.56,
        "currency": "EUR",
        "lines": [{"sku": "SKU-00003", "quantity": 2}, {"sku": "SKU-00017", "quantity": 1}],
    }
}
STOCK = {"SKU-00003": {"sku": "SKU-00003", "available": 41, "warehouse": "AMS-2"}}


def forecast(query):
    """Open-Meteo's shape: the place asked for, and the current values named in `current`."""
    latitude, longitude = float(query.get("latitude", ["0"])[0]), float(query.get("longitude", ["0"])[0])
    # A fixed, place-dependent temperature, so that runs repeat.
    readings = {"temperature_2m": round(7.3 + (latitude - 51.5) / 10, 1), "wind_speed_10m": 14.2}
    units = {"temperature_2m": "°C", "wind_speed_10m": "km/h"}
    names = [name for name in query.get("current", [""])[0].split(",") if name in readings]
    return {
        "latitude": round(latitude, 4), "longitude": round(longitude, 4), "generationtime_ms": 0.02,
        "utc_offset_seconds": 0, "timezone": "GMT", "timezone_abbreviation": "GMT", "elevation": 23.0,
        "current_units": {"time": "iso8601", "interval": "seconds", **{name: units[name] for name in names}},
        "current": {"time": "2026-12-07T12:00", "interval": 900, **{name: readings[name] for name in names}},
    }


class StandInApi(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        path, _, query = self.path.partition("?")
        parts = path.strip("/").split("/")
        found = None
        if parts == ["v1", "forecast"]:
            found = forecast(urllib.parse.parse_qs(query))
        elif len(parts) == 3 and parts[:2] == ["v1", "orders"]:
            found = ORDERS.get(parts[2])
        elif len(parts) == 3 and parts[:2] == ["v1", "stock"]:
            found = STOCK.get(parts[2])
        body = json.dumps(found if found else {"detail": "not found"}).encode()
        self.send_response(200 if found else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--tls-dir", required=True)
    args = parser.parse_args()
    os.makedirs(args.tls_dir, exist_ok=True)
    certificate, key = make_certificates(args.tls_dir)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", args.port), StandInApi)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certificate, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    print(f"stand-in API on https://localhost:{args.port}", file=sys.stderr, flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
