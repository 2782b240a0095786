#!/usr/bin/env bash
# clients/node/test.sh - the Node client's tests on their own: builds and
# installs the extension, starts a throwaway cluster (scripts/lib.sh), then
# npm ci, build, a strict type-check and node:test against it.
# scripts/test.sh runs the same steps at its end.
#
# Usage (as root on Debian 12): bash clients/node/test.sh

source "$(dirname "$0")/../../scripts/lib.sh"

bj_install_packages
bj_build
bj_start_cluster

cd "$BJ_ROOT/clients/node"
npm ci --no-audit --no-fund --loglevel=error
npm run build
npm run typecheck
npm test
