"""nginx in front of the server workers: `python -m serve.front [--host H] [--port P] [--workers N]` (`make front`).

Starts `python -m serve --workers N` on a private loopback port, renders deploy/nginx/nginx.conf.template
into a run directory, and runs Debian's nginx on HOST:PORT in the foreground. nginx holds slow clients,
limits each address, answers oversized bodies with our JSON 413, serves web/ and the model files, and
retries a request on another worker when one dies. Ctrl-C or SIGTERM stops both.
"""

import argparse
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from serve.app import DEFAULT_CONFIG, ROOT, SECURITY_HEADERS
from serve.feedback import CONFIG_DEFAULTS as FEEDBACK_DEFAULTS
from serve.files import COMPRESSIBLE, CONTENT_TYPES, IMMUTABLE, MIN_COMPRESS_BYTES, REVALIDATE
from serve.privileges import default_user, user_and_group
from serve.server import DEFAULT_HOST, DEFAULT_PORT, MAX_REQUEST_HEADER_BYTES
from serve.workers import STOP_MARGIN, default_worker_count, stop_timeout

TEMPLATE = ROOT / "deploy" / "nginx" / "nginx.conf.template"
PLACEHOLDER = re.compile(r"\{\{(\w+)\}\}")
RATE_PER_ADDRESS = 50  # /predict requests per second from one address; a kiosk makes about one
BURST_PER_ADDRESS = 100
# /number reads a whole line (several times dearer than /predict); the operator's /stats is a person typing.
NUMBER_RATE_PER_ADDRESS = 10
NUMBER_BURST_PER_ADDRESS = 20
OPERATOR_RATE_PER_MINUTE = 30
OPERATOR_BURST = 10
CONNECTIONS_PER_ADDRESS = 32  # requests in progress at once from one address; a browser opens at most 6
# Passive health: a server (host) is left out for FAIL_TIMEOUT after MAX_FAILS failed attempts.
MAX_FAILS = 1
FAIL_TIMEOUT = "5s"
START_TIMEOUT = 120


@dataclass
class FrontConfig:
    """What the template needs; every default comes from the app's own definitions."""

    listen: str
    upstreams: list  # "host:port" of each server; one local supervisor appears once per worker
    web_dir: str = DEFAULT_CONFIG["WEB_DIR"]
    artifacts_dir: str = DEFAULT_CONFIG["ARTIFACTS_DIR"]
    max_body: int = DEFAULT_CONFIG["MAX_CONTENT_LENGTH"]
    rate: int = RATE_PER_ADDRESS
    burst: int = BURST_PER_ADDRESS
    connections_per_address: int = CONNECTIONS_PER_ADDRESS
    number_rate: int = NUMBER_RATE_PER_ADDRESS
    number_burst: int = NUMBER_BURST_PER_ADDRESS
    # nginx's feedback limit is the app's own (a burst of a minute's worth), so nginx sheds a flood first.
    feedback_rate_per_minute: int = FEEDBACK_DEFAULTS["FEEDBACK_RATE_PER_MINUTE"]
    operator_rate_per_minute: int = OPERATOR_RATE_PER_MINUTE
    operator_burst: int = OPERATOR_BURST
    max_fails: int = MAX_FAILS
    fail_timeout: str = FAIL_TIMEOUT
    worker_processes: str = "auto"
    access_log: str = "off"
    user: str = None  # started as root, nginx's workers run as this user (serve/privileges.py's default if None)


def nginx_types():
    """serve/files.py's content types as an nginx types block, and the types that get a charset."""
    by_type, charset_types = {}, set()
    for suffix, content_type in CONTENT_TYPES.items():
        mime, _, parameters = content_type.partition(";")
        by_type.setdefault(mime.strip(), []).append(suffix.lstrip("."))
        if "charset" in parameters:
            charset_types.add(mime.strip())
    lines = [f"        {mime} {' '.join(suffixes)};" for mime, suffixes in sorted(by_type.items())]
    return "\n".join(lines), " ".join(sorted(charset_types - {"text/html"}))  # nginx adds text/html itself


def security_header_lines():
    return "\n".join(f"        add_header {name} \"{value}\" always;" for name, value in SECURITY_HEADERS.items())


def model_locations(artifacts_dir):
    """One exact location per model file the manifest names, served from disk as immutable."""
    from serve.model import read_manifest

    _, manifest = read_manifest(artifacts_dir)
    blocks = []
    for variant in manifest["variants"].values():
        path = Path(artifacts_dir, variant["file"]).resolve()
        blocks.append(f"        location = /model/{variant['file']} {{\n"
                      f"            alias {path};\n"
                      f"            add_header Cache-Control \"{IMMUTABLE}\" always;\n"
                      f"{security_header_lines().replace('        ', '            ')}\n"
                      "        }")
    return "\n".join(blocks)


def render(config):
    """The nginx.conf text for `config`."""
    types, charset_types = nginx_types()
    gzip_types = sorted({CONTENT_TYPES[suffix].partition(";")[0] for suffix in COMPRESSIBLE if suffix in CONTENT_TYPES}
                        - {"text/html"})  # nginx always compresses text/html
    upstreams = "\n".join(f"        server {address} max_fails={config.max_fails} fail_timeout={config.fail_timeout};"
                          for address in config.upstreams)
    values = {
        # Only a root master switches its workers' user; the run directory is made theirs (Nginx below).
        "user": "user {} {};".format(*user_and_group(config.user or default_user())) if os.geteuid() == 0 else "",
        "worker_processes": config.worker_processes,
        "types": types,
        "charset_types": charset_types,
        "access_log": config.access_log,
        "max_header": f"{MAX_REQUEST_HEADER_BYTES // 1024}k",
        "max_body": config.max_body,
        "rate": config.rate,
        "burst": config.burst,
        "connections_per_address": config.connections_per_address,
        "number_rate": config.number_rate,
        "number_burst": config.number_burst,
        "feedback_rate": config.feedback_rate_per_minute,
        "feedback_burst": config.feedback_rate_per_minute,
        "operator_rate": config.operator_rate_per_minute,
        "operator_burst": config.operator_burst,
        "min_compress": MIN_COMPRESS_BYTES,
        "gzip_types": " ".join(gzip_types),
        "upstream_servers": upstreams,
        "listen": config.listen,
        "web_dir": Path(config.web_dir).resolve(),
        "retries": max(2, len(config.upstreams)),
        "security_headers": security_header_lines(),
        "model_locations": model_locations(config.artifacts_dir),
        "revalidate": REVALIDATE,
    }
    return PLACEHOLDER.sub(lambda match: str(values[match.group(1)]), TEMPLATE.read_text())


def nginx_binary():
    # /usr/sbin is not on every user's PATH.
    found = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin")
    if not found:
        raise SystemExit("serve.front: nginx is not installed; `make front` installs Debian's")
    return found


class Nginx:
    """nginx run in the foreground from a directory of its own (config, pid, temp files)."""

    def __init__(self, config, run_dir):
        self.run_dir = Path(run_dir)
        (self.run_dir / "temp").mkdir(parents=True, exist_ok=True)
        (self.run_dir / "nginx.conf").write_text(render(config))
        if os.geteuid() == 0:  # the unprivileged workers write request bodies under temp/
            entry = pwd.getpwnam(config.user or default_user())
            for path in (self.run_dir, self.run_dir / "temp"):
                os.chown(path, entry.pw_uid, entry.pw_gid)
        self.command = [nginx_binary(), "-p", str(self.run_dir), "-c", "nginx.conf", "-e", "stderr", "-g", "daemon off;"]
        self.process = None

    def check(self):
        """nginx -t on the rendered config; raises with nginx's own words if it is wrong."""
        result = subprocess.run([*self.command[:-2], "-t", "-q"], capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(f"nginx rejects {self.run_dir / 'nginx.conf'}: {result.stderr.strip()}")

    def start(self, log=None):
        self.check()
        self.process = subprocess.Popen(self.command, stdout=log, stderr=log)
        return self

    def reload(self, config):
        """Render `config` again and have the running nginx take it (SIGHUP)."""
        (self.run_dir / "nginx.conf").write_text(render(config))
        self.check()
        self.process.send_signal(signal.SIGHUP)

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGQUIT)  # graceful: finish the answers in progress
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def free_port(host="127.0.0.1"):
    with socket.socket() as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def wait_for_port(host, port, process, timeout=START_TIMEOUT):
    """Wait until host:port accepts connections; fail early if `process` exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args[:4]} exited with status {process.returncode}")
        try:
            socket.create_connection((host, port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing answered on {host}:{port} within {timeout} s")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog="python -m serve.front", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default=os.environ.get("HOST") or DEFAULT_HOST,
                        help="address nginx listens on (env HOST; default %(default)s)")
    parser.add_argument("--port", type=int, default=os.environ.get("PORT") or DEFAULT_PORT,
                        help="port nginx listens on (env PORT; default %(default)s)")
    parser.add_argument("--workers", type=int, default=os.environ.get("WORKERS") or default_worker_count(),
                        help="server processes behind nginx (env WORKERS; default %(default)s)")
    parser.add_argument("--upstream-port", type=int, default=0,
                        help="the workers' port on 127.0.0.1 (default: a free one)")
    parser.add_argument("--run-dir", default=None, help="nginx's config, pid and temp files (default: a temp dir)")
    parser.add_argument("--user", default=default_user(),
                        help="started as root: the user nginx's workers and the server workers run as "
                             "(default %(default)s: the checkout's owner, or nobody if that is root)")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    upstream_port = args.upstream_port or free_port()
    as_user = ["--user", args.user] if os.geteuid() == 0 else []
    # The workers hear of each client from nginx's X-Forwarded-For: one trusted proxy.
    workers = subprocess.Popen([sys.executable, "-m", "serve", "--host", "127.0.0.1", "--port", str(upstream_port),
                                "--workers", str(args.workers), "--quiet", *as_user], cwd=ROOT,
                               env={**os.environ, "SERVE_TRUSTED_PROXIES": "1"})
    run_dir = args.run_dir or tempfile.mkdtemp(prefix="digit-kiosk-nginx-")
    host = f"[{args.host}]" if ":" in args.host else args.host
    # The one local address once per worker: nginx retries only on another entry, and the kernel hands each
    # new connection to a live worker. No failure accounting (max_fails=0): the entries are one address,
    # and a dead worker leaves the accept queue at once while the supervisor restarts it.
    config = FrontConfig(listen=f"{host}:{args.port}", upstreams=[f"127.0.0.1:{upstream_port}"] * max(2, args.workers),
                         max_fails=0, user=args.user)
    nginx = Nginx(config, run_dir)
    stopping = []
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopping.append(True))
    try:
        wait_for_port("127.0.0.1", upstream_port, workers)
        nginx.start()
        print(f"serve.front: nginx on http://{host}:{args.port} in front of {args.workers} workers "
              f"on 127.0.0.1:{upstream_port} (config: {run_dir}/nginx.conf)", file=sys.stderr, flush=True)
        while not stopping and nginx.process.poll() is None and workers.poll() is None:
            time.sleep(0.2)
        return 0 if stopping else 1
    finally:
        nginx.stop()
        if workers.poll() is None:
            workers.send_signal(signal.SIGTERM)  # they drain; the supervisor kills one that overruns
            workers.wait(stop_timeout() + STOP_MARGIN)
        if not args.run_dir:
            shutil.rmtree(run_dir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
