#!/usr/bin/env bash
# The documentation says what the program does: the README's tables of config
# keys and layer kinds are the ones `gentrain help keys|layers --markdown`
# prints from the program's own tables, and tools/torch_ref.py (the PyTorch
# twin of every layer kind) knows every kind with the same options and
# defaults as `gentrain help layers --json`.
set -euo pipefail
build=$1 src=$2
source "$src/tests/common.bash"

# The README block between "<!-- gentrain help TOPIC -->" and "<!-- end -->".
readme_block() {
  awk -v start="<!-- gentrain help $1 -->" '$0 == start { on = 1; next } on && $0 == "<!-- end -->" { exit } on' \
    "$src/README.md"
}
for topic in keys layers; do
  "$bin" help "$topic" --markdown > "$tmp/$topic.md"
  readme_block "$topic" > "$tmp/readme-$topic.md"
  if [ -s "$tmp/readme-$topic.md" ] && cmp -s "$tmp/$topic.md" "$tmp/readme-$topic.md"; then
    ok "README's $topic table is gentrain help $topic --markdown"
  else
    fail "README's $topic table differs from gentrain help $topic --markdown (paste it between <!-- gentrain help $topic --> and <!-- end -->):
$(diff "$tmp/readme-$topic.md" "$tmp/$topic.md" | head -20)"
  fi
done

"$bin" help layers --json > "$tmp/layers.json"
if "$py" - "$tmp/layers.json" "$src/tools" <<'PY'
import json, sys
sys.path.insert(0, sys.argv[2])
import torch_ref
kinds = json.load(open(sys.argv[1]))
ours = torch_ref.LAYER_KINDS
bad = []
if set(kinds) != set(ours):
    bad.append("kinds: gentrain has %s, torch_ref %s" % (sorted(kinds), sorted(ours)))
for k, opts in kinds.items():
    if k not in ours:
        continue
    if set(opts) != set(ours[k]):
        bad.append("%s: options %s vs %s" % (k, sorted(opts), sorted(ours[k])))
        continue
    for name, o in opts.items():
        parse, default = ours[k][name]
        want = None if o["default"] is None else parse(o["default"])
        if want != default:
            bad.append("%s %s: default %r in gentrain, %r in torch_ref" % (k, name, want, default))
for b in bad:
    print("  " + b)
sys.exit(1 if bad else 0)
PY
then ok "tools/torch_ref.py has every layer kind with gentrain's options and defaults"
else fail "tools/torch_ref.py disagrees with gentrain help layers --json (above)"; fi

"$bin" train --help > "$tmp/train-help.txt"
missing=$("$bin" help keys --markdown | awk -F'`' 'NR > 2 { print $4 }' | while read -r key; do
  grep -q "^    $key " "$tmp/train-help.txt" || echo "$key"; done)
if [ -z "$missing" ]; then ok "gentrain train --help lists every key"; else fail "train --help lacks: $missing"; fi

finish docs
