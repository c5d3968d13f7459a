"""The production WSGI server: waitress with our limits and timeouts (used by `python -m serve` and tests)."""

import logging

import waitress

DEFAULT_HOST = "127.0.0.1"  # the kiosk's browser is local; exposing the API is a deliberate choice
DEFAULT_PORT = 5000
DEFAULT_THREADS = 4
# Idle keep-alive or stalled connections are closed after this many seconds of silence.
CHANNEL_TIMEOUT = 15
CLEANUP_INTERVAL = 5
CONNECTION_LIMIT = 100
MAX_REQUEST_HEADER_BYTES = 16 * 1024


def create_server(app, host=DEFAULT_HOST, port=DEFAULT_PORT, threads=DEFAULT_THREADS,
                  channel_timeout=CHANNEL_TIMEOUT, cleanup_interval=CLEANUP_INTERVAL):
    """A bound waitress server for `app`; call .run() to serve and .close() to stop."""
    # waitress warns whenever a request waits for a free thread, which is normal under load.
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)
    max_body = app.config["MAX_CONTENT_LENGTH"]
    return waitress.create_server(
        app,
        host=host,
        port=port,
        threads=threads,
        ident="",  # no Server: header, so no version banner
        channel_timeout=channel_timeout,
        cleanup_interval=cleanup_interval,
        connection_limit=CONNECTION_LIMIT,
        max_request_header_size=MAX_REQUEST_HEADER_BYTES,
        # Bodies a little over the app's limit still reach Flask for a JSON 413; far bigger ones are
        # cut off by waitress itself before they are buffered to disk.
        max_request_body_size=2 * max_body,
        expose_tracebacks=False,
        clear_untrusted_proxy_headers=True,
    )
