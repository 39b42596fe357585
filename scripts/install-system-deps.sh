#!/usr/bin/env bash
# System packages the tests need beyond Python: Chromium (the docs browser test)
# and Node.js/npm (the docs build takes Mermaid and KaTeX from npm so the site
# works offline). Installs from Debian's packages when running as root with
# apt-get; otherwise says what is missing and carries on (the browser test then
# reports itself skipped with the reason, never silently passes).
set -u
need=()
command -v chromium >/dev/null 2>&1 || [ -x /usr/bin/chromium ] || need+=(chromium)
command -v npm >/dev/null 2>&1 || need+=(nodejs npm)
if [ ${#need[@]} -eq 0 ]; then
    exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing system packages: ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null && apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null \
        || echo "warning: could not install ${need[*]} with apt-get" >&2
else
    echo "note: missing system packages ${need[*]} (install them with your package manager; not root, so not installing)" >&2
fi
exit 0
