#!/usr/bin/env bash
# One-time set-up on a fresh Debian 12 machine: system libraries (+ chromium for the browser tests), npm packages,
# native addon, TypeScript build, web UI build.
# Safe to re-run: each step is skipped when already done.
set -euo pipefail
cd "$(dirname "$0")/.."

apt_pkgs=()
[ -f /usr/include/oneapi/dnnl/dnnl.hpp ] || apt_pkgs+=(libdnnl-dev)
# The browser tests (test/e2e.test.ts) drive Debian's chromium; skip it with INSTRUCTKIT_NO_BROWSER=1 (outside CI
# the test then skips itself; in CI it fails, as it must run there).
if [ -z "${INSTRUCTKIT_NO_BROWSER:-}" ] && [ ! -x /usr/bin/chromium ]; then apt_pkgs+=(chromium); fi
if [ ${#apt_pkgs[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "instructkit needs: sudo apt-get update && sudo apt-get install -y ${apt_pkgs[*]}" >&2
    exit 1
  fi
  echo "installing ${apt_pkgs[*]} ..."
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${apt_pkgs[@]}" >/dev/null
fi

# npm ci runs the package's install script (scripts/install-native.mjs): it builds the native addon with node-gyp
# against /usr headers unless the addon already built is current for this Node.
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ] \
  || [ ! -f build/Release/instructkit.node ]; then
  npm ci --no-audit --no-fund
fi
# The build also marks the CLI executable (tsc writes it 644), which `npx instructkit` needs.
npm run build --silent
node scripts/build-web.mjs
