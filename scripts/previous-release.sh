#!/usr/bin/env bash
# Builds the previous release's `turtlemen` binary, for the upgrade test (tests/it/upgrade.rs),
# and prints its path on stdout (everything else goes to stderr).
#
# The release is the commit named in tests/upgrade/PREVIOUS_RELEASE (one line, the full hash),
# taken from this repository's own history (a clone with full history; `git fetch --unshallow`
# a shallow one). Its tree is written with `git archive` under
# $CARGO_TARGET_DIR/previous-release/ (`target/` without CARGO_TARGET_DIR), outside the clone,
# and built there (debug profile, --locked) with a target dir of its own beside it, so the main
# build's binaries are never touched and the dependencies stay compiled between runs. The binary
# is kept as bin/turtlemen-<commit>; when it exists nothing is built again.
set -euo pipefail
cd "$(dirname "$0")/.."

commit="$(tr -d '[:space:]' < tests/upgrade/PREVIOUS_RELEASE)"
if ! [[ "$commit" =~ ^[0-9a-f]{40}$ ]]; then
  echo "tests/upgrade/PREVIOUS_RELEASE must hold one full commit hash, not '$commit'" >&2
  exit 1
fi

root="$(realpath -m "${CARGO_TARGET_DIR:-target}")/previous-release"
bin="$root/bin/turtlemen-$commit"
mkdir -p "$root/bin"
# One build at a time: a second run waits, then finds the binary.
exec 9>"$root/lock"
flock 9
if [ -x "$bin" ]; then
  echo "$bin"
  exit 0
fi

if ! git cat-file -e "$commit^{commit}" 2>/dev/null; then
  echo "the previous release $commit is not in this clone's history (a shallow clone? run \`git fetch --unshallow\`)" >&2
  exit 1
fi

# The release's tree, written afresh (a half-written one from an interrupted run is replaced).
src="$root/src-$commit"
rm -rf "$src"
mkdir -p "$src"
git archive --format=tar "$commit" | tar -x -C "$src"

# Its front-end packages, from its own lockfile (the build embeds them).
npm ci --prefix "$src/web" --no-audit --no-fund --loglevel=error >&2

echo "building the previous release $commit (debug) in $root" >&2
(cd "$src" && CARGO_TARGET_DIR="$root/target" cargo build --locked --bin turtlemen >&2)
cp "$root/target/debug/turtlemen" "$bin.partial"
mv "$bin.partial" "$bin"
echo "$bin"
