#!/usr/bin/env bash
# The documentation is generated from the program's own tables, and stays so:
#  1. the README's key and layer tables are what `gentrain help keys|layers
#     --markdown` print (tools/readme-tables regenerates them);
#  2. tools/torch_ref.py knows every layer kind, option and default that
#     `gentrain help layers --json` lists (and no other).
set -uo pipefail
build=$1 src=$2
source "$src/tests/common.bash"

cp "$src/README.md" "$tmp/README.md"
if "$src/tools/readme-tables" "$bin" "$tmp/README.md" > "$tmp/rt.log" 2>&1 && cmp -s "$src/README.md" "$tmp/README.md"; then
  ok "README key and layer tables are gentrain help keys|layers --markdown"
else
  fail "README tables are out of date (run tools/readme-tables): $(cat "$tmp/rt.log"; diff "$src/README.md" "$tmp/README.md" | head -10)"
fi

"$bin" help layers --json > "$tmp/layers.json" || fail "help layers --json"
if $py - "$src/tools" "$tmp/layers.json" <<'PY'
import json, sys
sys.path.insert(0, sys.argv[1])
import torch_ref as tr
ours = json.load(open(sys.argv[2]))
bad = []
for kind, opts in ours.items():
    if kind not in tr.LAYER_KINDS:
        bad.append("torch_ref has no layer kind %s" % kind)
        continue
    theirs = tr.LAYER_KINDS[kind]
    for name, o in opts.items():
        if name not in theirs:
            bad.append("torch_ref: %s has no option %s" % (kind, name))
            continue
        parse, default = theirs[name]
        want = None if o["default"] is None else parse(o["default"])
        if want != default:
            bad.append("torch_ref: %s %s default %r, gentrain's %r" % (kind, name, default, o["default"]))
    for name in theirs:
        if name not in opts:
            bad.append("torch_ref: %s has an option %s that gentrain does not" % (kind, name))
for kind in tr.LAYER_KINDS:
    if kind not in ours:
        bad.append("torch_ref has a layer kind %s that gentrain does not" % kind)
print("\n".join(bad))
sys.exit(1 if bad else 0)
PY
then ok "tools/torch_ref.py LAYER_KINDS match gentrain help layers --json"
else fail "tools/torch_ref.py LAYER_KINDS differ from gentrain help layers --json"; fi
finish docs
