#!/usr/bin/env bash
# The layers of src/ only look down (docs/DESIGN.md, "Layers"): every #include "folder/..."
# of a file under src/ names its own folder or a folder of a lower rank. Folders of the
# same rank (mamba, optim, data) do not include each other. A folder this script does not
# know is an error, so that a new folder is placed in the order when it is made.
set -uo pipefail
source "$(dirname "$0")/check.sh"

declare -A rank=([core]=0 [autograd]=1 [mamba]=2 [optim]=2 [data]=2 [tokenizer]=2 [sparse]=2 [io]=3 [prune]=4 [infer]=5 [config]=5 [run]=6 [cli]=7)

order=""
for folder in "${!rank[@]}"; do order+="$folder=${rank[$folder]} "; done
unknown=0
for path in "$src"/src/*/; do
    folder=$(basename "$path")
    if [ -z "${rank[$folder]+set}" ]; then
        echo "       src/$folder/ has no rank in tests/test_layers.sh"
        unknown=$((unknown + 1))
    fi
done
# One line per offending include: "src/FOLDER/FILE:LINE: includes X/ from FOLDER/".
offences=$(cd "$src" && grep -Hn '^[[:space:]]*#[[:space:]]*include[[:space:]]*"[a-z_]*/' src/*/*.[ch] |
    awk -v order="$order" '
        BEGIN { n = split(order, pairs, " "); for (i = 1; i <= n; i++) { split(pairs[i], kv, "="); rank[kv[1]] = kv[2] } }
        {
            split($0, parts, ":"); split(parts[1], where, "/"); folder = where[2]
            included = $0; sub(/^[^"]*"/, "", included); sub(/\/.*/, "", included)
            if (included != folder && (!(included in rank) || rank[included] >= rank[folder]))
                printf "       %s:%s: includes %s/ from %s/\n", parts[1], parts[2], included, folder
        }')
[ -n "$offences" ] && echo "$offences"
violations=$(grep -c . <<<"$offences")
check "every folder of src/ has a rank" test "$unknown" -eq 0
check "no file of src/ includes a folder above its own or beside it" test "$violations" -eq 0

check "config ranks above prune, so that prune cannot include it" test "${rank[config]}" -gt "${rank[prune]}"
check_summary
