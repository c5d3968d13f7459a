"""Never root: a server process started as root loads the model, binds its port, then runs as `--user`.

`python -m serve --user NAME`: each server process drops to NAME before it reads a request. The supervisor,
like nginx's master, keeps root only to start workers (which drop in turn) and reads no request itself;
workers start as root and drop, so the user needs no access to the interpreter's files (a pyenv under
/root, say), as long as what Python imports lazily is imported first. `python -m serve.front` started as
root does all this by default, for nginx's workers and ours alike.
"""

import grp
import os
import pwd
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FALLBACK_USER = "nobody"


def default_user():
    """Whoever owns the checkout, so the server can use its files as they are; `nobody` if that is root."""
    owner = ROOT.stat().st_uid
    try:
        return pwd.getpwuid(owner).pw_name if owner != 0 else FALLBACK_USER
    except KeyError:  # a uid with no name here (a checkout unpacked from elsewhere)
        return FALLBACK_USER


def user_and_group(name):
    """(user, its primary group's name) for nginx's `user` directive; a clear error if there is no such user."""
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        raise SystemExit(f"serve: no such user {name!r} to run as") from None
    return entry.pw_name, grp.getgrgid(entry.pw_gid).gr_name


def drop_privileges(name):
    """As root: become `name` (its uid, its primary group, no supplementary groups). Otherwise nothing to do."""
    if os.geteuid() != 0:
        return
    entry = pwd.getpwnam(user_and_group(name)[0])
    if entry.pw_uid == 0:
        raise SystemExit(f"serve: --user {name} is root; name an unprivileged user")
    load_lazy_modules()
    os.setgroups([])
    os.setgid(entry.pw_gid)
    os.setuid(entry.pw_uid)
    os.environ["HOME"] = entry.pw_dir
    warn_if_store_is_not_writable()


def load_lazy_modules():
    """Import now what answering would import on first use: Pillow's format plugins, the IDNA codec."""
    import encodings.idna  # noqa: F401 (a Host header that is not ASCII)

    from PIL import Image

    Image.init()


def warn_if_store_is_not_writable():
    """Feedback writes to a SQLite file: say once, at start, when the new user cannot write its folder."""
    from serve.feedback import CONFIG_DEFAULTS, OFF_VALUES

    if os.environ.get("SERVE_FEEDBACK_URL") or os.environ.get("SERVE_FEEDBACK", "on").lower() in OFF_VALUES:
        return
    database = Path(os.environ.get("SERVE_FEEDBACK_DB") or CONFIG_DEFAULTS["FEEDBACK_DB"])
    # os.path.exists, not Path.exists: a folder above that this user cannot enter is "not there", never an error.
    folder = next((path for path in (database.parent, *database.parent.parents) if os.path.exists(path)), Path("/"))
    if not os.access(folder, os.W_OK | os.X_OK):
        print(f"serve: running as uid {os.getuid()}, which cannot write {folder}: feedback will answer 503 until "
              f"that folder is this user's or SERVE_FEEDBACK_DB names one that is", file=sys.stderr, flush=True)
