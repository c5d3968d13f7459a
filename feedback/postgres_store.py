"""The fleet's store: a PostgreSQL database that many kiosks' servers post into (SERVE_FEEDBACK_URL)."""

from contextlib import contextmanager

from feedback.store import Store, StoreError, StoreFullError

CONNECT_TIMEOUT_SECONDS = 5
# pg_advisory_xact_lock key for writers, so pruning and the running totals see one insert at a time.
WRITE_LOCK = 0x6B696F736B  # "kiosk"


class PostgresStore(Store):
    blob_type = "BYTEA"
    real_type = "DOUBLE PRECISION"

    def __init__(self, url, **bounds):
        super().__init__(**bounds)
        import psycopg  # only a fleet server needs the driver

        self.psycopg = psycopg
        self.url = url

    def connect(self):
        connection = getattr(self.local, "connection", None)
        if connection is None or connection.closed:
            connection = self.psycopg.connect(self.url, connect_timeout=CONNECT_TIMEOUT_SECONDS,
                                                autocommit=True)
            self.local.connection = connection
        return connection

    @contextmanager
    def session(self, exclusive=False, durable=True):
        psycopg = self.psycopg
        try:
            connection = self.connect()
            with connection.transaction():
                cursor = connection.cursor()
                if not durable:
                    cursor.execute("SET LOCAL synchronous_commit = off")
                if exclusive:
                    cursor.execute("SELECT pg_advisory_xact_lock(%s)", (WRITE_LOCK,))
                yield cursor
        except psycopg.Error as error:
            if connection_lost(error):
                self.disconnect()
            kind = StoreFullError if isinstance(error, psycopg.errors.DiskFull) else StoreError
            raise kind(f"feedback store: {str(error).strip().splitlines()[0]}") from None

    def run(self, cursor, sql, parameters=()):
        # The shared SQL uses `?`; psycopg's placeholder is %s (the SQL text is a constant either way).
        cursor.execute(sql.replace("?", "%s"), parameters)

    def describe(self):
        return "PostgreSQL"


def check_url(url):
    """The URL, if it is a postgresql:// URL psycopg can parse; else ValueError saying why (without the password)."""
    url = str(url)
    if not url.startswith(("postgresql://", "postgres://")):
        raise ValueError("must be a postgresql:// URL")
    try:
        import psycopg
    except ImportError:
        raise ValueError("a PostgreSQL store needs psycopg: pip install 'psycopg[binary]'") from None
    try:
        port = psycopg.conninfo.conninfo_to_dict(url).get("port")
    except psycopg.ProgrammingError as error:
        raise ValueError(f"cannot be parsed: {str(error).splitlines()[0]}") from None
    if port and not all(part.isdigit() for part in str(port).split(",")):
        raise ValueError(f"the port must be a number, not {port!r}")
    return url


def connection_lost(error):
    return error.__class__.__name__ in ("OperationalError", "InterfaceError") or error.sqlstate is None
