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

# Sysmon configurations: every condition, relation and onmatch, nested
# <Rule>s, an ignored event type and option (generated, not the public ones).
out="$(dirname "$0")/corpus/sysmon_config"
mkdir -p "$out"
m=0
for condition in "is" "is not" "is any" "contains" "contains any" "contains all" "excludes" "excludes any" "excludes all" "begin with" "not begin with" "end with" "not end with" "less than" "more than" "image" "bogus"; do
  for relation in or and; do
    for onmatch in include exclude; do
      m=$((m + 1))
      printf '<Sysmon schemaversion="4.90">\n<HashAlgorithms>md5,SHA256</HashAlgorithms>\n<CheckRevocation/>\n<EventFiltering>\n<RuleGroup name="g%s" groupRelation="%s">\n<ProcessCreate onmatch="%s">\n<Image condition="%s" name="n%s">%%windir%%\\cmd.exe;a;b</Image>\n<Rule name="r" groupRelation="%s"><CommandLine condition="%s">-enc;x</CommandLine><CommandLine condition="contains">-nop</CommandLine></Rule>\n</ProcessCreate>\n</RuleGroup>\n<NetworkConnect onmatch="include"><DestinationPort>443</DestinationPort></NetworkConnect>\n<FileDeleteDetected onmatch="%s"><TargetFilename condition="end with">.exe</TargetFilename></FileDeleteDetected>\n</EventFiltering>\n</Sysmon>\n' \
        "$m" "$relation" "$onmatch" "$condition" "$m" "$relation" "$condition" "$onmatch" > "$out/seed-$m.xml"
    done
  done
done
echo "wrote $m seeds to $out"
