"""deploy/chromium-policies: well-formed JSON that Debian's Chromium knows, locking the kiosk to its own origin."""

import json
import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"
POLICY_FILE = DEPLOY / "chromium-policies" / "digit-kiosk.json"
# /usr/bin/chromium is Debian's launcher script; the browser itself, with its built-in list of policy names, is here.
CHROMIUM_BINARY = Path("/usr/lib/chromium/chromium")

# The policies this file may set, with the JSON type Chromium's policy list gives each.
POLICY_TYPES = {
    "DeveloperToolsAvailability": int,
    "PrintingEnabled": bool,
    "DownloadRestrictions": int,
    "AllowFileSelectionDialogs": bool,
    "URLBlocklist": list,
    "URLAllowlist": list,
    "IncognitoModeAvailability": int,
    "BrowserGuestModeEnabled": bool,
}
# What the kiosk relies on, with the values Chromium's policy list documents for them.
REQUIRED = {
    "DeveloperToolsAvailability": 2,  # developer tools disallowed everywhere
    "PrintingEnabled": False,
    "DownloadRestrictions": 3,  # block all downloads
    "URLBlocklist": ["*"],
}


@pytest.fixture(scope="module")
def policies():
    return json.loads(POLICY_FILE.read_text())


def kiosk_origin():
    """The origin of the launcher's default address (KIOSK_URL in kiosk-browser.sh)."""
    launcher = (DEPLOY / "kiosk-browser.sh").read_text()
    url = re.search(r'URL="\$\{KIOSK_URL:-([^}]+)\}"', launcher).group(1)
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def test_policies_lock_down_tools_printing_downloads_and_navigation(policies):
    assert {name: policies.get(name) for name in REQUIRED} == REQUIRED


def test_only_the_kiosk_origin_is_allowed(policies):
    assert policies["URLAllowlist"] == [kiosk_origin()]


def test_every_policy_has_its_chromium_type(policies):
    assert set(policies) <= set(POLICY_TYPES)
    for name, value in policies.items():
        assert type(value) is POLICY_TYPES[name], name
        if isinstance(value, list):
            assert value and all(isinstance(item, str) for item in value), name


def test_every_policy_is_one_the_installed_chromium_knows(policies):
    binary = CHROMIUM_BINARY.read_bytes()
    assert [name for name in policies if name.encode() not in binary] == []
