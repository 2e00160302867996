#!/usr/bin/env bash
# Runs every Go fuzz target in the module for $FUZZTIME each (default 30s).
set -euo pipefail
cd "$(dirname "$0")/.."
FUZZTIME="${FUZZTIME:-30s}"
found=0
while IFS= read -r file; do
	dir=$(dirname "$file")
	for target in $(grep -oE '^func (Fuzz[A-Za-z0-9_]+)' "$file" | awk '{print $2}'); do
		found=$((found + 1))
		echo "fuzz: ./$dir $target ($FUZZTIME)"
		go test -run '^$' -fuzz "^${target}\$" -fuzztime "$FUZZTIME" "./$dir"
	done
done < <(grep -rl --include='*_test.go' -E '^func Fuzz' . | sort)
echo "fuzz: $found targets ran"
