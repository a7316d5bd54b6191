#!/usr/bin/env bash
# Publishes Bagel.Train for win-x64 (framework-dependent) into DIR/publish, with its own obj/ and bin/ under
# DIR/artifacts so the repository's build outputs and their restore stay untouched; the log goes to DIR/publish.log
# and dotnet's exit code to DIR/exit-code. WindowsPublishTests inspects DIR when BAGEL_WIN_X64_PUBLISH=DIR.
# The output cannot run here (no Windows); see the README's native-runtime section.
set -uo pipefail
cd "$(dirname "$0")/.."
dir=${1:?usage: .ci/win-x64-publish.sh DIR}
mkdir -p "$dir"
rm -rf "$dir/publish" "$dir/artifacts"
start=$(date +%s)
dotnet publish Bagel.Samples/Bagel.Train/Bagel.Train.csproj -c Release -r win-x64 --self-contained false \
  --artifacts-path "$dir/artifacts" -o "$dir/publish" > "$dir/publish.log" 2>&1
rc=$?
echo "$rc" > "$dir/exit-code"
echo "win-x64 publish of Bagel.Train: exit $rc in $(( $(date +%s) - start )) s ($dir)"
exit 0 # the test reports a failed publish with its log
