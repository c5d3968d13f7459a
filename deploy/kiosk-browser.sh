#!/bin/sh
# Chromium full screen on the kiosk page, started by the desktop session (see deploy/README.md).
# Waits for the server (up to a minute) but opens the page anyway: after one visit the page starts
# from its offline copy and runs the model in the browser. Restarts Chromium if it ever exits.
# Developer tools, printing, downloads and other addresses are switched off by the policies in
# deploy/chromium-policies/ (installed into /etc/chromium/policies/managed/, see deploy/README.md).
URL="${KIOSK_URL:-http://127.0.0.1:5000/}"
# A profile of its own that survives reboots: it holds the offline copy of the page and the model
# (never --incognito, which would forget them).
PROFILE="${KIOSK_PROFILE:-$HOME/.local/share/digit-kiosk/chromium}"

BROWSER=$(command -v chromium || command -v chromium-browser) || { echo "kiosk: Chromium is not installed" >&2; exit 1; }
mkdir -p "$PROFILE"

tries=0
until curl -fsS -o /dev/null "${URL%/}/healthz" || [ "$tries" -ge 60 ]; do
    tries=$((tries + 1))
    sleep 1
done

while true; do
    # A power cut must not leave a "restore pages?" bubble on the screen.
    sed -i 's/"exited_cleanly":false/"exited_cleanly":true/; s/"exit_type":"[^"]*"/"exit_type":"Normal"/' \
        "$PROFILE/Default/Preferences" 2>/dev/null
    "$BROWSER" \
        --kiosk "$URL" \
        --user-data-dir="$PROFILE" \
        --no-first-run \
        --noerrdialogs \
        --disable-infobars \
        --disable-session-crashed-bubble \
        --hide-crash-restore-bubble \
        --disable-features=Translate,TranslateUI \
        --disable-pinch \
        --overscroll-history-navigation=0 \
        --check-for-update-interval=31536000 \
        --password-store=basic
    sleep 2
done
