# scripts/lib.sh - shared by scripts/demo.sh, scripts/test.sh and bench/run:
# install what is missing, build and install the extension, and run a
# throwaway PostgreSQL cluster that only this script touches.
#
# The cluster lives in a fresh temporary directory owned by the postgres
# system user (initdb and postgres refuse to run as root), listens only on a
# Unix socket inside that directory, and is stopped by its own pg_ctl when
# the calling script exits, however it exits.

set -euo pipefail

BJ_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PG_MAJOR=${PG_MAJOR:-15}
PG_BIN=${BJ_PG_BIN:-/usr/lib/postgresql/$PG_MAJOR/bin}
export PG_CONFIG=$PG_BIN/pg_config
BJ_PACKAGES="postgresql-$PG_MAJOR postgresql-server-dev-$PG_MAJOR postgresql-$PG_MAJOR-pgtap libipc-run-perl postgresql-$PG_MAJOR-plproxy make gcc"
# The Node client's tests (clients/node) need node and npm: Debian's are
# enough, and a node already on the PATH is kept.
command -v node >/dev/null 2>&1 || BJ_PACKAGES+=" nodejs npm"
# Its dashboard's tests drive a real browser (playwright-core): Debian's
# chromium, unless one is already installed there.
[ -x /usr/bin/chromium ] || BJ_PACKAGES+=" chromium"

bj_log() { printf '== %s\n' "$*" >&2; }

# Installs the Debian packages that are missing; nothing when all are there.
bj_install_packages() {
	local missing=() p
	for p in $BJ_PACKAGES; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
			missing+=("$p")
	done
	if [ ${#missing[@]} -gt 0 ]; then
		[ "$(id -u)" -eq 0 ] || { echo "run as root to install: ${missing[*]}" >&2; exit 1; }
		bj_log "installing ${missing[*]}"
		export DEBIAN_FRONTEND=noninteractive
		apt-get update -qq
		apt-get install -y -qq "${missing[@]}" >/dev/null
	fi
}

bj_build() {
	bj_log "building and installing batchjob"
	make -C "$BJ_ROOT" -s PG_CONFIG="$PG_CONFIG" >/dev/null
	make -C "$BJ_ROOT" -s PG_CONFIG="$PG_CONFIG" install >/dev/null
}

BJ_CLUSTER_DIR=
BJ_PG_STARTED=

bj_stop_cluster() {
	if [ -n "$BJ_PG_STARTED" ]; then
		runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$BJ_CLUSTER_DIR/data" \
			-m fast -w stop >/dev/null 2>&1 || true
		BJ_PG_STARTED=
	fi
	if [ -n "$BJ_CLUSTER_DIR" ] && [ -z "${BJ_KEEP_CLUSTER:-}" ]; then
		rm -rf "$BJ_CLUSTER_DIR"
	fi
}

# Starts the throwaway cluster; extra arguments become postgres -c settings.
# Exports PGHOST, PGPORT and PGUSER for psql and pg_regress.
bj_start_cluster() {
	local opts="" s
	BJ_CLUSTER_DIR=$(mktemp -d /tmp/batchjob.XXXXXX)
	chown postgres: "$BJ_CLUSTER_DIR"
	chmod 700 "$BJ_CLUSTER_DIR"
	trap bj_stop_cluster EXIT
	trap 'exit 130' INT TERM
	runuser -u postgres -- "$PG_BIN/initdb" -D "$BJ_CLUSTER_DIR/data" \
		-U postgres --auth=trust --no-sync -E UTF8 --locale=C.UTF-8 >/dev/null
	for s in "$@"; do opts+=" -c $s"; done
	runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$BJ_CLUSTER_DIR/data" \
		-l "$BJ_CLUSTER_DIR/server.log" -w \
		-o "-k $BJ_CLUSTER_DIR -c listen_addresses= -p 54329 -c max_connections=60 $opts" \
		start >/dev/null
	BJ_PG_STARTED=1
	export PGHOST=$BJ_CLUSTER_DIR PGPORT=54329 PGUSER=postgres
	bj_log "throwaway cluster running in $BJ_CLUSTER_DIR"
}

bj_psql() { "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 "$@"; }
