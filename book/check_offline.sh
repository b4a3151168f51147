#!/usr/bin/env bash
# Check that a built site renders math and widgets with no network, in headless Chromium.
#
#   bash book/check_offline.sh [-d SITE] [-o OUTDIR] [PAGE ...]
#
#   SITE    the built HTML (default: _build/html under the repository root)
#   OUTDIR  where screenshots and DOM dumps go (default: _build/offline-check)
#   PAGE    pages relative to SITE (default: book/intro.html book/notation.html and every
#           chapters/*.html)
#
# It does not build anything. It serves SITE with `python3 -m http.server` on 127.0.0.1,
# opens each page in Debian's chromium (apt-get install chromium) with every host but
# 127.0.0.1 unresolvable, and writes OUTDIR/<page>.png (1280x2000) and OUTDIR/<page>.html
# (the DOM after scripts ran). It then reports, per page, how many formulas MathJax typeset
# and how many widgets were drawn, and exits 1 when a page with math shows none typeset, or
# a page with widget state shows no widget. With node installed it also drives chapter 2's
# scan-tree explorer (book/check_explorer.mjs): moving its slider and pressing Play must change
# the frame shown. Look at the PNGs too.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
site="$root/_build/html"
out="$root/_build/offline-check"
while getopts "d:o:h" opt; do
    case "$opt" in
    d) site="$OPTARG" ;;
    o) out="$OPTARG" ;;
    *)
        sed -n '2,16p' "${BASH_SOURCE[0]}"
        exit 2
        ;;
    esac
done
shift $((OPTIND - 1))

site="$(cd "$site" && pwd)"
[[ -f "$site/index.html" ]] || {
    echo "check_offline: no $site/index.html; build the book first" >&2
    exit 1
}
browser="$(command -v chromium || command -v chromium-browser || true)"
[[ -n "$browser" ]] || {
    echo "check_offline: chromium not found (apt-get install chromium)" >&2
    exit 1
}

pages=("$@")
if [[ ${#pages[@]} -eq 0 ]]; then
    pages=(book/intro.html book/notation.html)
    for f in "$site"/chapters/*.html; do
        [[ -e "$f" ]] && pages+=("chapters/$(basename "$f")")
    done
fi

mkdir -p "$out"
port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
python3 -m http.server "$port" --bind 127.0.0.1 --directory "$site" >"$out/http.log" 2>&1 &
server=$!
profile="$(mktemp -d)"
cleanup() {
    kill "$server" 2>/dev/null || true
    rm -rf "$profile"
}
trap cleanup EXIT
for _ in $(seq 50); do
    if python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port/')" \
        2>/dev/null; then
        break
    fi
    sleep 0.1
done

chrome() {
    # A fresh profile per run; every host except 127.0.0.1 fails to resolve, so nothing can
    # come from a CDN even on a machine with network.
    rm -rf "$profile" && mkdir -p "$profile"
    timeout 120 "$browser" --headless --no-sandbox --disable-gpu \
        --disable-background-networking --disable-component-update --disable-sync \
        --no-first-run --user-data-dir="$profile" \
        --host-resolver-rules="MAP * ~NOTFOUND, EXCLUDE 127.0.0.1" \
        --virtual-time-budget=5000 --hide-scrollbars --window-size=1280,2000 "$@" \
        2>>"$out/chromium.log"
}

status=0
printf '%-40s %8s %8s %8s %8s  %s\n' page math typeset widgets drawn verdict
for page in "${pages[@]}"; do
    if [[ ! -f "$site/$page" ]]; then
        printf '%-40s missing\n' "$page"
        status=1
        continue
    fi
    name="${page//\//_}"
    name="${name%.html}"
    url="http://127.0.0.1:$port/$page"
    chrome --screenshot="$out/$name.png" "$url" >/dev/null
    chrome --dump-dom "$url" >"$out/$name.html"
    read -r math typeset widgets drawn < <(
        python3 - "$site/$page" "$out/$name.html" <<'EOF'
import re
import sys

src = open(sys.argv[1], encoding="utf-8").read()
dom = open(sys.argv[2], encoding="utf-8").read()
# formulas in the built page: MathJax looks for \( \) and \[ \] inside class="math" spans/divs
math = len(re.findall(r'class="math[^"]*"', src))
typeset = len(re.findall(r"<mjx-container", dom))
widgets = len(re.findall(r"application/vnd\.jupyter\.widget-view\+json", src))
drawn = len(re.findall(r'class="[^"]*\bwidget-(?:slider|button|text|box|html|label|dropdown|'
                       r'checkbox|toggle|play|output|inline-hbox|vbox|hbox)\b', dom))
print(math, typeset, widgets, drawn)
EOF
    )
    verdict=ok
    if [[ $math -gt 0 && $typeset -eq 0 ]]; then
        verdict="FAIL: math not typeset"
        status=1
    fi
    if [[ $widgets -gt 0 && $drawn -eq 0 ]]; then
        [[ $verdict == ok ]] && verdict="FAIL: widgets not drawn" || verdict+=", widgets not drawn"
        status=1
    fi
    printf '%-40s %8s %8s %8s %8s  %s\n' "$page" "$math" "$typeset" "$widgets" "$drawn" "$verdict"
done
explorer="chapters/02_parallel_scans.html"
if [[ -f "$site/$explorer" ]] && command -v node >/dev/null; then
    # the scan-tree explorer must respond to its slider and Play button with no kernel
    echo "explorer on $explorer:"
    node "$root/book/check_explorer.mjs" "$browser" \
        "http://127.0.0.1:$port/$explorer" "$out/explorer.png" || status=1
fi
echo "screenshots and DOM dumps: $out"
missing="$(grep '" 404 -' "$out/http.log" | grep -v favicon.ico | sed 's/.*"GET \([^ ]*\).*/  \1/' |
    sort -u || true)"
if [[ -n "$missing" ]]; then
    echo "requests the site could not serve (404):"
    echo "$missing"
fi
exit $status
