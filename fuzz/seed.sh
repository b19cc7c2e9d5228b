#!/bin/sh
# Fills fuzz/corpus/<target>/ (git-ignored) with the committed seeds plus the shared ASUS and
# Deco captures, which must not be copied into the repository. Run from anywhere:
#   fuzz/seed.sh [SHARED_FIXTURES_DIR]     (default: ../shared/fixtures beside the checkout)
# Deco replies are also encrypted into `{"data": …}` envelopes with the fuzz key of
# src/fuzzing/deco.rs (needs `openssl`).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
# The shared dir sits next to the main checkout (../shared), or two levels up from a worktree.
shared=${1:-}
if [ -z "$shared" ]; then
    for d in "$here/../../shared/fixtures" "$here/../../../shared/fixtures"; do
        [ -d "$d" ] && shared=$d && break
    done
fi
shared=${shared:-$here/../../shared/fixtures}
corpus=$here/corpus
key=31323334353637383930313233343536
iv=36353433323130393837363534333231

for dir in "$here"/seeds/*/; do
    target=$(basename "$dir")
    mkdir -p "$corpus/$target"
    cp "$dir"* "$corpus/$target/"
done

if [ ! -d "$shared" ]; then
    echo "no shared fixtures at $shared; committed seeds only" >&2
    exit 0
fi

put() { # target name file
    mkdir -p "$corpus/$1"
    cp "$3" "$corpus/$1/shared-$2"
}
for f in "$shared"/asus/appget-*.json; do
    put asus_appget "$(basename "$f")" "$f"
    put asus_hookjson "$(basename "$f")" "$f"
done
for f in "$shared"/asus/*.js "$shared"/asus/*.xml; do
    put asus_js "$(basename "$f")" "$f"
done
grep -ho '"[^"]*secs since boot)"' "$shared"/asus/*.json 2>/dev/null | tr -d '"' > "$corpus/asus_uptime/shared-uptimes.txt" || true
for f in "$shared"/deco/*.json; do
    name=$(basename "$f")
    put deco_json "$name" "$f"
    put deco_envelope "plain-$name" "$f"
    data=$(openssl enc -aes-128-cbc -K $key -iv $iv -in "$f" | base64 -w0)
    printf '{"data":"%s"}' "$data" > "$corpus/deco_envelope/shared-$name"
done
for f in "$shared"/vnstat/*.json "$shared"/vnstat/*/*.json; do
    put vnstat_json "$(basename "$(dirname "$f")")-$(basename "$f")" "$f"
done
for f in "$shared"/procnet/proc-net-dev*; do
    put proc_net_dev "$(basename "$f")" "$f"
done
echo "corpus ready in $corpus" >&2
