"""Serve the committed model and the kiosk page with waitress: `python -m serve [--host H] [--port P] [--workers N]`.

Binds 127.0.0.1:5000 unless HOST/PORT or the flags say otherwise. Flask's debug mode is never on here.
SIGTERM stops it gracefully (serve/drain.py): not ready, no new connections, requests in flight finished.
With more than one worker, a supervisor (serve/workers.py) runs N such servers on the one port.
"""

import argparse
import logging
import os
import socket
import sys
import threading

from serve.server import DEFAULT_HOST, DEFAULT_PORT, DEFAULT_THREADS
from serve.workers import REFUSED, default_worker_count, run_workers


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog="python -m serve", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default=os.environ.get("HOST") or DEFAULT_HOST,
                        help="address to bind (env HOST; default %(default)s, this machine only)")
    parser.add_argument("--port", type=int, default=os.environ.get("PORT") or DEFAULT_PORT,
                        help="TCP port (env PORT; default %(default)s; 0 picks a free one)")
    parser.add_argument("--workers", type=int, default=os.environ.get("WORKERS") or default_worker_count(),
                        help="server processes on the one port, restarted if they die "
                             "(env WORKERS; default %(default)s, the CPUs this process may use)")
    parser.add_argument("--threads", type=int, default=DEFAULT_THREADS,
                        help="threads per worker process (default %(default)s)")
    parser.add_argument("--variant", choices=["fp32", "int8"], default=None,
                        help="model variant from the manifest (default: the manifest's default_variant); "
                             "the number reader runs it too when it has one, else its own default")
    parser.add_argument("--artifacts", default=None, help="artifacts directory (default: the repo's artifacts/)")
    parser.add_argument("--quiet", action="store_true", help="no per-request log lines")
    parser.add_argument("--user", default=None,
                        help="started as root: the user each server process runs as once it has loaded the "
                             "model and bound the port (serve/privileges.py)")
    # Set by the supervisor for its workers: the inherited listening socket, and a pipe for "ready".
    parser.add_argument("--listen-fd", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--ready-fd", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.workers < 1:
        parser.error("--workers must be at least 1")
    return args


def build_app(args):
    from serve.app import create_app

    # With --user the store is opened once root is dropped (serve below), so its files are that user's.
    config = {"DEBUG": False, "TESTING": False, "FEEDBACK_OPEN_LATER": bool(args.user)}
    if args.variant:
        config["MODEL_VARIANT"] = args.variant
    if args.artifacts:
        config["ARTIFACTS_DIR"] = args.artifacts
    app = create_app(config)
    app.debug = False  # FLASK_DEBUG in the environment must not turn on tracebacks in production
    return app


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    if args.workers > 1:
        return run_workers(argv, args.workers, args.host, args.port, args.user)
    return serve(args)


def serve(args):
    """One server process: load the model, then answer until interrupted."""
    from serve.drain import serve_until_stopped
    from serve.feedback import ConfigError, open_at_start
    from serve.files import precompress
    from serve.model import ModelError
    from serve.privileges import drop_privileges
    from serve.server import create_server

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("serve.access").setLevel(logging.WARNING if args.quiet else logging.INFO)
    try:
        app = build_app(args)
    except (ModelError, ConfigError) as error:
        print(f"serve: refusing to start: {error}", file=sys.stderr)
        return REFUSED
    listen_socket = None if args.listen_fd is None else socket.socket(fileno=args.listen_fd)
    server = create_server(app, host=args.host, port=args.port, threads=args.threads, listen_socket=listen_socket)
    if args.user:
        drop_privileges(args.user)
        open_at_start(app)
    # The kiosk's first page load fetches the 14 MB runtime; have its gzip ready by then.
    threading.Thread(target=precompress, args=(app.config["WEB_DIR"],), name="precompress", daemon=True).start()
    model = app.extensions["model"]
    numbers = "" if model.numbers is None else f", numbers {model.numbers.model_id} ({model.numbers.variant})"
    banner = f"serve: model {model.model_id} ({model.variant}){numbers} on http://{server.effective_host}:{server.effective_port}"
    if args.ready_fd is None:
        print(banner, file=sys.stderr, flush=True)
    else:  # the supervisor prints one banner for all workers
        os.write(args.ready_fd, banner.encode() + b"\n")
        os.close(args.ready_fd)
    serve_until_stopped(server, float(app.config["DRAIN_DELAY"]), float(app.config["DRAIN_TIMEOUT"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
