#!/bin/sh
# Writes generated seed rules (combinations of every modifier, condition
# form and logsource; no SigmaHQ content) to corpus/compile_rule/.
set -eu
out="$(dirname "$0")/corpus/compile_rule"
mkdir -p "$out"
n=0
for category in process_creation image_load file_event file_delete file_rename; do
  for mods in "" "|contains" "|startswith" "|endswith" "|contains|all" "|re" "|re|i" "|windash|contains" "|base64offset|contains" "|wide|base64" "|cased" "|exists" "|gt" "|cidr" "|fieldref"; do
    for cond in "selection" "selection and not filter" "1 of sel*" "all of them" "(selection or filter) and not selection"; do
      n=$((n + 1))
      value="'C:\\\\Windows\\\\*.exe'"
      case "$mods" in *exists*) value=true;; *gt*) value=4;; *cidr*) value="'10.0.0.0/8'";; *fieldref*) value=Image;; esac
      printf 'title: seed %s\nid: seed-%s\nlogsource:\n    product: windows\n    category: %s\ndetection:\n    selection:\n        Image%s: %s\n    filter:\n        - User: null\n        - ProcessId: [1, 2]\n    condition: %s\n' \
        "$n" "$n" "$category" "$mods" "$value" "$cond" > "$out/seed-$n.yml"
    done
  done
done
echo "wrote $n seeds to $out"
