#!/usr/bin/env bash
# Install Debian's Chromium for tests/chapters/test_browser.py (headless JupyterLab via Python Playwright,
# which cannot download its own browsers on machines without general internet access).
# Does nothing when a Chromium is already there (POSTERIOR_TUTOR_CHROMIUM, chromium on PATH or
# /usr/bin/chromium). Uses apt-get as root, or through sudo without a password; otherwise it says
# why it cannot and exits 1 (the browser test then skips).
set -uo pipefail

have_chromium() {
  if [ -n "${POSTERIOR_TUTOR_CHROMIUM:-}" ]; then
    [ -x "$POSTERIOR_TUTOR_CHROMIUM" ]
    return
  fi
  command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 \
    || [ -x /usr/bin/chromium ]
}

if have_chromium; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "install_chromium: no apt-get (not Debian/Ubuntu); install Chromium by hand or set" \
       "POSTERIOR_TUTOR_CHROMIUM=/path/to/chromium" >&2
  exit 1
fi
if [ "$(id -u)" = 0 ]; then
  SUDO=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  SUDO=(sudo -n)
else
  echo "install_chromium: not root and no password-less sudo; run as root:" \
       "apt-get update && apt-get install -y chromium" >&2
  exit 1
fi
echo "==> installing Debian's chromium (for tests/chapters/test_browser.py)"
export DEBIAN_FRONTEND=noninteractive
if ! "${SUDO[@]}" apt-get install -y -qq chromium >/dev/null 2>&1; then
  # the package lists of a fresh machine are often empty or stale
  if ! { "${SUDO[@]}" apt-get update -qq && \
         "${SUDO[@]}" apt-get install -y -qq chromium; } >/tmp/install_chromium.log 2>&1; then
    echo "install_chromium: apt-get could not install chromium (log: /tmp/install_chromium.log):" >&2
    tail -n 5 /tmp/install_chromium.log >&2
    exit 1
  fi
fi
if have_chromium; then
  echo "==> $(chromium --version 2>/dev/null || echo chromium installed)"
  exit 0
fi
echo "install_chromium: apt-get ran but no chromium executable was found" >&2
exit 1
