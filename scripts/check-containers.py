"""Checks Dockerfile and compose.yaml (docs/operations.md, "Containers"), run by .ci/run.

Where a container engine answers, the image is built and started and its health check run; where none does
(`docker info` fails), this says so and checks what can be checked without one: that the compose file parses and
wires HandoffRail to PostgreSQL 16 with health checks, both ports and persistent volumes; that the Dockerfile is
multi-stage, runs as a non-root user with a data volume, and copies only what exists and is not ignored; that
every HANDOFFRAIL_* setting either file names is one `handoffrail serve` reads; and that the release binary
starts with the image's settings and answers the image's health check.

    python scripts/check-containers.py target/release/handoffrail
"""

import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def fail(message):
    print(f"check-containers: not so: {message}", file=sys.stderr)
    sys.exit(1)


def check(condition, message):
    if not condition:
        fail(message)


def dockerfile_instructions():
    """(instruction, arguments) pairs, continuation lines joined, comments dropped."""
    text = (ROOT / "Dockerfile").read_text()
    joined = re.sub(r"\\\n", " ", text)
    pairs = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            instruction, _, arguments = line.partition(" ")
            pairs.append((instruction.upper(), arguments.strip()))
    return pairs


def ignored(path, patterns):
    return any(Path(path).match(pattern) or path.split("/")[0] == pattern for pattern in patterns)


def check_dockerfile():
    instructions = dockerfile_instructions()
    stages = [arguments for instruction, arguments in instructions if instruction == "FROM"]
    check(len(stages) >= 2, "the Dockerfile is multi-stage")
    runtime = max(index for index, (instruction, _) in enumerate(instructions) if instruction == "FROM")
    final = instructions[runtime:]
    users = [arguments for instruction, arguments in final if instruction == "USER"]
    check(users and users[-1].split(":")[0] not in ("root", "0"), "the runtime stage runs as a non-root user")
    volumes = " ".join(arguments for instruction, arguments in final if instruction == "VOLUME")
    check("/var/lib/handoffrail" in volumes, "the data directory is a volume")
    exposed = " ".join(arguments for instruction, arguments in final if instruction == "EXPOSE").split()
    check({"8080", "8081"} <= set(exposed), "the API and proxy ports are exposed")
    check(any(instruction == "HEALTHCHECK" for instruction, _ in final), "the image has a health check")
    patterns = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
                if line.strip() and not line.startswith("#")]
    for instruction, arguments in instructions:
        if instruction == "COPY" and "--from=" not in arguments:
            for source in arguments.split()[:-1]:
                check((ROOT / source).exists(), f"COPY {source}: it exists")
                check(not ignored(source, patterns), f"COPY {source}: .dockerignore keeps it")
    environment = {}
    for instruction, arguments in final:
        if instruction == "ENV":
            for name, value in re.findall(r"(\w+)=(\S+)", arguments):
                environment[name] = value
    return environment


def check_compose():
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    services = compose["services"]
    postgres, server = services["postgres"], services["handoffrail"]
    check(str(postgres["image"]).startswith("postgres:16"), "PostgreSQL 16")
    check("healthcheck" in postgres and "healthcheck" in server, "both services have health checks")
    check(server["depends_on"]["postgres"]["condition"] == "service_healthy",
          "HandoffRail waits for a healthy PostgreSQL")
    check(server["build"] == ".", "HandoffRail is built from this repository's Dockerfile")
    url = server["environment"]["HANDOFFRAIL_DATABASE_URL"]
    check(url.startswith("postgres://") and "@postgres:5432/" in url, "HandoffRail uses the postgres service")
    published = {str(port).split("#")[0].strip().split(":")[-1] for port in server["ports"]}
    check({"8080", "8081"} <= published, "the API and the proxy ports are published")
    named = set(compose.get("volumes") or {})
    for service, path in ((postgres, "/var/lib/postgresql/data"), (server, "/var/lib/handoffrail")):
        mounts = [volume.split(":") for volume in service["volumes"]]
        check(any(target == path and source in named for source, target, *_ in mounts),
              f"{path} is on a named volume")
    return server["environment"]


def check_settings(names, binary):
    help_text = subprocess.run([binary, "serve", "--help"], capture_output=True, text=True, check=True).stdout
    for name in sorted(names):
        if name.startswith("HANDOFFRAIL_"):
            check(f"env: {name}" in help_text, f"{name} is a setting of handoffrail serve")


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def run_with_image_settings(environment, binary):
    """The binary with the image's settings (paths moved under a scratch directory), probed as the image is."""
    scratch = Path(tempfile.mkdtemp())
    try:
        env = dict(os.environ)
        env.update(environment)
        env["HANDOFFRAIL_HOST"] = "127.0.0.1"
        env["HANDOFFRAIL_DATA_DIR"] = str(scratch / "data")
        shutil.copytree(ROOT / "rules", scratch / "rules")
        env["HANDOFFRAIL_RULES"] = str(scratch / "rules")
        port = free_port()
        env["HANDOFFRAIL_PORT"], env["HANDOFFRAIL_PROXY_PORT"] = str(port), str(free_port())
        server = subprocess.Popen([binary, "serve"], env=env, cwd=scratch,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            for _ in range(100):
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=1) as answer:
                        check(answer.status == 200, "/ready answers 200")
                        break
                except OSError:
                    check(server.poll() is None, "the server keeps running with the image's settings")
                    time.sleep(0.1)
            else:
                fail("the server did not become ready with the image's settings")
        finally:
            server.terminate()
            output, _ = server.communicate(timeout=10)
        first = next((line for line in output.splitlines() if line.startswith("{")), "")
        check(first.startswith("{"), "HANDOFFRAIL_LOG_FORMAT=json writes JSON lines")
    finally:
        shutil.rmtree(scratch)


def engine_answers():
    if shutil.which("docker") is None:
        return False
    return subprocess.run(["docker", "info"], capture_output=True).returncode == 0


def build_and_run():
    subprocess.run(["docker", "build", "--tag", "handoffrail:ci", str(ROOT)], check=True)
    user = subprocess.run(["docker", "run", "--rm", "--entrypoint", "id", "handoffrail:ci", "-u"],
                          capture_output=True, text=True, check=True).stdout.strip()
    check(user != "0", "the image runs as a non-root user")
    name = f"handoffrail-ci-{os.getpid()}"
    subprocess.run(["docker", "run", "--detach", "--name", name, "handoffrail:ci"], check=True)
    try:
        for _ in range(60):
            health = subprocess.run(["docker", "inspect", "--format", "{{.State.Health.Status}}", name],
                                    capture_output=True, text=True).stdout.strip()
            if health == "healthy":
                break
            time.sleep(1)
        else:
            fail("the container did not become healthy")
    finally:
        subprocess.run(["docker", "rm", "--force", name], capture_output=True)
    if subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        subprocess.run(["docker", "compose", "--file", str(ROOT / "compose.yaml"), "config", "--quiet"], check=True)


def main():
    binary = str(Path(sys.argv[1]).resolve()) if len(sys.argv) > 1 else str(ROOT / "target/release/handoffrail")
    image_settings = check_dockerfile()
    compose_settings = check_compose()
    check_settings(set(image_settings) | set(compose_settings), binary)
    run_with_image_settings(image_settings, binary)
    if engine_answers():
        build_and_run()
        print("check-containers: the image was built, ran healthy and non-root; compose.yaml checked")
    else:
        print("check-containers: no container engine answers here (docker info fails), so the image was not "
              "built; the Dockerfile's and compose.yaml's structure, their settings, and the binary under the "
              "image's settings were checked")


if __name__ == "__main__":
    main()
