#!/usr/bin/env bash
# Ship the browser assets the built book needs, so pages render math and widgets offline.
#
#   bash book/vendor.sh          # idempotent; a fast no-op when book/_extra/vendor/ is current
#   bash book/vendor.sh --force  # redo the copy (and npm ci if node_modules is stale)
#
# 1. `npm ci` in book/ (pinned by book/package-lock.json), only when book/node_modules is
#    missing or was installed from another lock file.
# 2. Copy just the files the pages load into book/_extra/vendor/:
#      vendor/mathjax/       MathJax 3 es5: tex-mml-chtml.js, the TeX/MathML extensions it
#                            autoloads, CHTML woff-v2 fonts, menu, a11y and speech rule files
#      vendor/html-manager/  @jupyter-widgets/html-manager dist/embed-amd.js and the icon
#                            fonts it loads from its own folder
#      vendor/require.js     RequireJS (embed-amd.js is an AMD module)
#      vendor/widgets-offline.js  (from book/) tells RequireJS where the manager lives and
#                            lets it typeset widget labels with MathJax 3
# _config.yml points Sphinx at these (mathjax_path, nb_ipywidgets_js) and copies book/_extra
# to the root of _build/html (html_extra_path). Both book/node_modules and
# book/_extra/vendor/ are git-ignored.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here"

vendor="_extra/vendor"
stamp="$vendor/.stamp"
force=0
if [[ "${1:-}" == "--force" ]]; then
    force=1
fi

hash_of() { sha256sum "$@" | sha256sum | cut -c1-64; }

# The stamp records the lock file, this script and widgets-offline.js: a change to any of
# them redoes the copy.
want="$(hash_of package-lock.json vendor.sh widgets-offline.js)"
if [[ $force -eq 0 && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    exit 0
fi

lock_hash="$(hash_of package-lock.json)"
nm_stamp="node_modules/.scanbook-lock"
if [[ ! -f "$nm_stamp" || "$(cat "$nm_stamp")" != "$lock_hash" ]]; then
    if ! command -v npm >/dev/null 2>&1; then
        echo "vendor.sh: npm is needed once to fetch MathJax and the widget manager" \
            "(apt-get install npm, or https://nodejs.org)" >&2
        exit 1
    fi
    echo "vendor.sh: npm ci in book/"
    npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
    echo "$lock_hash" >"$nm_stamp"
fi

nm="node_modules"
mj="$nm/mathjax/es5"
hm="$nm/@jupyter-widgets/html-manager/dist"
rq="$nm/requirejs/require.js"

mkdir -p _extra
tmp="$(mktemp -d "$nm/.scanbook-vendor.XXXXXX")"
chmod 755 "$tmp"
trap 'rm -rf "$tmp"' EXIT

# MathJax: the combined component plus everything it may load at run time, relative to
# its own location ([mathjax]/input/..., [mathjax]/output/chtml/fonts/..., ...).
mkdir -p "$tmp/mathjax/input" "$tmp/mathjax/output/chtml/fonts"
cp "$mj/tex-mml-chtml.js" "$tmp/mathjax/"
cp -r "$mj/input/tex" "$mj/input/mml" "$tmp/mathjax/input/"
cp -r "$mj/output/chtml/fonts/woff-v2" "$tmp/mathjax/output/chtml/fonts/"
cp -r "$mj/ui" "$mj/a11y" "$mj/sre" "$tmp/mathjax/"
cp "$nm/mathjax/LICENSE" "$tmp/mathjax/"

# Widget manager: embed-amd.js sets its webpack public path to its own folder and loads
# the Font Awesome files (hashed names) from there.
mkdir -p "$tmp/html-manager"
cp "$hm/embed-amd.js" "$tmp/html-manager/"
find "$hm" -maxdepth 1 -type f \
    \( -name '*.woff2' -o -name '*.woff' -o -name '*.ttf' -o -name '*.eot' -o -name '*.svg' \) \
    -exec cp {} "$tmp/html-manager/" \;

cp "$rq" "$tmp/require.js"
cp widgets-offline.js "$tmp/widgets-offline.js"

for f in mathjax/tex-mml-chtml.js mathjax/output/chtml/fonts/woff-v2/MathJax_Main-Regular.woff \
    mathjax/input/tex/extensions/ams.js html-manager/embed-amd.js require.js widgets-offline.js; do
    if [[ ! -s "$tmp/$f" ]]; then
        echo "vendor.sh: missing $f after copy" >&2
        exit 1
    fi
done

echo "$want" >"$tmp/.stamp"
rm -rf "$vendor"
mv "$tmp" "$vendor"
trap - EXIT
echo "vendor.sh: $(du -sh "$vendor" | cut -f1) in book/$vendor"
