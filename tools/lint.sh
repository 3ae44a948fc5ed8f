#!/usr/bin/env bash
# Proto hygiene, called by `make lint`:
#   1. buf lint   - the STANDARD rules of buf.yaml over proto/
#   2. buf breaking - the current proto against tongban.v1 as first released
#      (the proto/ directory of the repository's first commit, extracted read-only
#      with `git archive` into a scratch directory).
#
# buf comes from the npm package @bufbuild/buf (tools/package.json). When node/npm
# or the package cannot be had (offline), the script says so and exits 0: lint is
# a developer convenience, the test suite does not depend on it.
#
# Usage: tools/lint.sh            (from anywhere; runs at the repository root)
#        BUF=/path/to/buf tools/lint.sh
#        FIRST_RELEASE=<commit> tools/lint.sh
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
cd "$root"

# tongban.v1 as first released: the commit that added proto/tongban/v1.
FIRST_RELEASE="${FIRST_RELEASE:-00ce794}"

buf="${BUF:-}"
if [[ -z "$buf" ]]; then
  if command -v buf >/dev/null 2>&1; then
    buf="$(command -v buf)"
  elif [[ -x "$here/node_modules/.bin/buf" ]]; then
    buf="$here/node_modules/.bin/buf"
  elif command -v npm >/dev/null 2>&1; then
    echo "lint: installing buf from npm (@bufbuild/buf) into tools/node_modules" >&2
    if (cd "$here" && npm install --no-audit --no-fund --silent >/dev/null 2>&1); then
      buf="$here/node_modules/.bin/buf"
    else
      echo "lint: SKIPPED buf: 'npm install' in tools/ failed (offline?)" >&2
      exit 0
    fi
  else
    echo "lint: SKIPPED buf: neither buf nor npm found (install Node.js, or set BUF=/path/to/buf)" >&2
    exit 0
  fi
fi

echo "lint: $("$buf" --version 2>&1 | head -1) buf lint proto/"
"$buf" lint
echo "lint: buf lint clean"

if ! git rev-parse --verify --quiet "${FIRST_RELEASE}^{commit}" >/dev/null 2>&1; then
  echo "lint: SKIPPED buf breaking: commit $FIRST_RELEASE (first release of tongban.v1) is not in this clone" >&2
  exit 0
fi
base="$(mktemp -d)"
trap 'rm -rf "$base"' EXIT
git archive "$FIRST_RELEASE" proto | tar -x -C "$base"
cp buf.yaml "$base/"
echo "lint: buf breaking against proto/ at $FIRST_RELEASE (first release)"
"$buf" breaking --against "$base"
echo "lint: no breaking change against $FIRST_RELEASE"
