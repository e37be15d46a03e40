#!/usr/bin/env bash
# Local development/test services for OpenVisit: PostgreSQL, MinIO and a development OpenID
# provider (deploy/dev/devidp) on loopback.
#
#   deploy/services.sh start    install what is missing, start what is not running
#                               (idempotent, ~1 s when both already run), write .dev/env;
#                               servers running without TLS (an older state dir) are
#                               restarted with it
#   deploy/services.sh stop     stop the servers (data is kept)
#   deploy/services.sh status   show what runs; exit 0 only when all answer
#   deploy/services.sh env      print the settings that `start` writes to .dev/env
#   deploy/services.sh purge    stop both and delete their data (state dir)
#
# Both servers speak TLS only, with a certificate from a local CA generated once into the
# state dir (tls/ca.crt; deploy/dev/localca): PostgreSQL has ssl=on and accepts TCP
# connections over TLS only (pg_hba hostssl; the unix socket stays trust), MinIO serves
# HTTPS (--certs-dir). The env file points clients at that CA (sslmode=verify-full,
# OPENVISIT_S3_CA_FILE), so tests and `make run` verify the servers as production does.
#
# The dev OpenID provider (issuer https://localhost:$OV_DEV_OIDC_PORT, same certificate) is
# built from deploy/dev/devidp into the state dir; its client secret and admin token are
# generated once there (oidc/). The env file configures it as the clinic's identity provider
# (OPENVISIT_OIDC_ISSUERS) and tells tests where it is (OV_DEV_OIDC_*).
#
# Everything here is DEV/TEST ONLY: trust authentication, fixed well-known credentials,
# fsync off. Never point it at data you care about.
#
# Overrides (environment):
#   OV_DEV_STATE               state dir (data, logs, pids); default
#                              /tmp/openvisit-dev/<hash of checkout path>. Must be
#                              reachable by the `postgres` user, so not under /root.
#   OV_DEV_PG_PORT             PostgreSQL port (default 5544)
#   OV_DEV_PG_BIN              PostgreSQL server binaries (default /usr/lib/postgresql/15/bin)
#   OV_DEV_MINIO_PORT          MinIO S3 port (default 9000)
#   OV_DEV_MINIO_CONSOLE_PORT  MinIO console port (default: S3 port + 1)
#   OV_DEV_BIN                 where the MinIO binary is cached (default ~/.cache/openvisit/bin)
#   OV_DEV_OIDC_PORT           dev OpenID provider port (default 5556)
#   OV_DEV_ENV_FILE            the env file `start` writes (default <checkout>/.dev/env)
set -euo pipefail
umask 022 # the postgres user must be able to reach the state dir

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
export PATH="/usr/local/go/bin:${HOME}/go/bin:${PATH}"

STATE_HASH=$(printf '%s' "$ROOT" | sha256sum | cut -c1-10)
STATE=${OV_DEV_STATE:-/tmp/openvisit-dev/$STATE_HASH}

PG_PORT=${OV_DEV_PG_PORT:-5544}
PG_BIN=${OV_DEV_PG_BIN:-/usr/lib/postgresql/15/bin}
PG_DATA=$STATE/pgdata
PG_LOG=$STATE/postgres.log
PG_DB=openvisit

MINIO_VERSION=v0.0.0-20260212201848-7aac2a2c5b7c # pinned: MinIO tags are not semver
MINIO_PORT=${OV_DEV_MINIO_PORT:-9000}
MINIO_CONSOLE_PORT=${OV_DEV_MINIO_CONSOLE_PORT:-$((MINIO_PORT + 1))}
MINIO_CACHE=${OV_DEV_BIN:-${HOME}/.cache/openvisit/bin}
MINIO_BIN=$MINIO_CACHE/minio
MINIO_DATA=$STATE/minio
MINIO_LOG=$STATE/minio.log
MINIO_PID=$STATE/minio.pid
# Fixed, obviously dev-only credentials (MinIO wants a password of >= 8 characters).
MINIO_USER=openvisit-dev
MINIO_PASSWORD=openvisit-dev-secret

OIDC_PORT=${OV_DEV_OIDC_PORT:-5556}
OIDC_DIR=$STATE/oidc
OIDC_BIN=$STATE/devidp
OIDC_PID=$OIDC_DIR/devidp.pid
OIDC_LOG=$STATE/devidp.log
OIDC_ISSUER=https://localhost:$OIDC_PORT
OIDC_CLIENT_ID=openvisit-dev

ENV_FILE=${OV_DEV_ENV_FILE:-$ROOT/.dev/env}

# The local CA and the server certificate both servers present (certs.LocalCA).
TLS_DIR=$STATE/tls
CA_FILE=$TLS_DIR/ca.crt
TLS_HOSTS=localhost,127.0.0.1,::1
MINIO_CERTS=$STATE/minio-certs

log() { printf 'services: %s\n' "$*" >&2; }
die() { printf 'services: ERROR: %s\n' "$*" >&2; exit 1; }

# Run a command as the postgres user (initdb/postgres refuse root). cd / first: the
# caller's working directory may be under /root, which postgres cannot enter, and initdb
# then fails to find its own executable.
as_pg() {
	if [ "$(id -u)" -eq 0 ]; then
		(cd / && runuser -u postgres -- "$@")
	else
		(cd / && "$@")
	fi
}

# Is pid a live process (not a zombie waiting to be reaped)?
alive() {
	local stat
	stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	stat=${stat##*) }
	case "${stat%% *}" in Z | X | x) return 1 ;; esac
}

# Wrap a value in single quotes for a shell `export` line.
shquote() { printf "'%s'" "${1//\'/\'\\\'\'}"; }

# apt-get install packages (root only); on failure run apt-get update and retry once.
apt_install() {
	[ "$(id -u)" -eq 0 ] || die "missing: $*; install it with 'apt-get install -y $*' (as root)"
	log "installing $* (apt-get install -y $*)..."
	export DEBIAN_FRONTEND=noninteractive
	if ! apt-get install -y "$@" </dev/null >"$STATE/apt.log" 2>&1; then
		log "install failed; running apt-get update and retrying"
		apt-get update </dev/null >>"$STATE/apt.log" 2>&1 ||
			{ tail -n 20 "$STATE/apt.log" >&2; die "apt-get update failed (log: $STATE/apt.log)"; }
		apt-get install -y "$@" </dev/null >>"$STATE/apt.log" 2>&1 ||
			{ tail -n 20 "$STATE/apt.log" >&2; die "apt-get install $* failed (log: $STATE/apt.log)"; }
	fi
}

# ----------------------------------------------------------------------- TLS

# Make (once) the local CA and the server certificate for loopback in $TLS_DIR, renewing
# what expires within 30 days. The small Go program is built into the state dir and
# rebuilt when its source changes.
tls_ensure() {
	local bin=$STATE/localca out
	if [ ! -x "$bin" ] || [ -n "$(find "$ROOT/deploy/dev/localca" "$ROOT/internal/certs" -name '*.go' -newer "$bin" 2>/dev/null | head -n1)" ]; then
		command -v go >/dev/null || die "go not found (expected /usr/local/go/bin/go) — needed to make the local CA"
		if ! (cd "$ROOT" && GOFLAGS='' go build -o "$bin.tmp" ./deploy/dev/localca) >"$STATE/localca-build.log" 2>&1; then
			tail -n 20 "$STATE/localca-build.log" >&2
			die "could not build deploy/dev/localca (log: $STATE/localca-build.log)"
		fi
		mv -f "$bin.tmp" "$bin"
	fi
	out=$("$bin" -dir "$TLS_DIR" -hosts "$TLS_HOSTS") || die "could not make the local CA in $TLS_DIR"
	if [ "$out" = changed ]; then log "new server certificate for $TLS_HOSTS from the local CA $CA_FILE"; fi
}

# Copy src to dst (mode, owner) when it differs; return 0 if it was copied.
install_changed() {
	local mode=$1 owner=$2 src=$3 dst=$4
	if [ -f "$dst" ] && cmp -s "$src" "$dst"; then return 1; fi
	install -m "$mode" -o "$owner" "$src" "$dst"
}

# Percent-encode a value for a URL query (a path with spaces or '&' stays one value).
urlquery() {
	local LC_ALL=C s=$1 out='' c i
	for ((i = 0; i < ${#s}; i++)); do
		c=${s:i:1}
		case "$c" in
		[A-Za-z0-9/._~-]) out+=$c ;;
		*) out+=$(printf '%%%02X' "'$c") ;;
		esac
	done
	printf '%s' "$out"
}

# ---------------------------------------------------------------- PostgreSQL

# Find the server binaries without installing anything: $PG_BIN, else (another major
# version, not Debian 12) the newest /usr/lib/postgresql/*/bin. Returns 1 if none.
pg_resolve_bin() {
	if [ -x "$PG_BIN/postgres" ]; then return 0; fi
	local alt
	alt=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1 || true)
	if [ -n "$alt" ] && [ -x "$alt/postgres" ]; then PG_BIN=$alt; return 0; fi
	return 1
}

pg_ensure_installed() {
	if [ -x "$PG_BIN/postgres" ]; then return; fi
	if [ -z "${OV_DEV_PG_BIN:-}" ] && pg_resolve_bin; then return; fi
	apt_install postgresql
	pg_resolve_bin || die "postgresql installed but no server binaries under /usr/lib/postgresql"
}

pg_ready() { "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres -t 2 >/dev/null 2>&1; }

pg_psql() { "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PG_PORT" -U postgres "$@"; }

# Is the pid recorded in postmaster.pid a live postgres process? (Anything else — no
# such process, or a pid reused by an unrelated process after a crash/reboot — is stale.)
pg_pidfile_live() {
	local pid
	[ -f "$PG_DATA/postmaster.pid" ] || return 1
	pid=$(head -n1 "$PG_DATA/postmaster.pid" 2>/dev/null || true)
	[[ "$pid" =~ ^[0-9]+$ ]] && alive "$pid" || return 1
	[ "$(cat "/proc/$pid/comm" 2>/dev/null || true)" = postgres ]
}

pg_start() {
	pg_ensure_installed
	if pg_ready && pg_adopt_running; then return; fi

	if [ "$(id -u)" -eq 0 ] && ! runuser -u postgres -- test -x "$STATE"; then
		die "the postgres user cannot reach $STATE (check the permissions of it and its parent directories)"
	fi
	# A data dir is only trusted once initdb finished (marker written afterwards); a
	# half-made one from an interrupted run is thrown away.
	if [ ! -f "$STATE/pg.initialized" ] || [ ! -f "$PG_DATA/PG_VERSION" ]; then
		log "initialising PostgreSQL data dir $PG_DATA"
		rm -rf "$PG_DATA"
		install -d -m 0700 -o "$(pg_owner)" "$PG_DATA"
		as_pg "$PG_BIN/initdb" -D "$PG_DATA" -U postgres -A trust -E UTF8 --locale=C.UTF-8 --no-sync >"$STATE/initdb.log" 2>&1 ||
			{ tail -n 20 "$STATE/initdb.log" >&2; die "initdb failed (log: $STATE/initdb.log)"; }
		touch "$STATE/pg.initialized"
	fi
	local have_ver want_ver
	have_ver=$(cat "$PG_DATA/PG_VERSION")
	want_ver=$("$PG_BIN/postgres" --version | awk '{print $3}' | cut -d. -f1)
	[ "$have_ver" = "$want_ver" ] ||
		die "data dir $PG_DATA is PostgreSQL $have_ver but $PG_BIN is $want_ver; run 'deploy/services.sh purge' (deletes dev data)"

	if pg_pidfile_live; then
		# Our postmaster exists but does not answer yet (starting or shutting down).
		log "PostgreSQL process exists but is not ready; waiting..."

		for _ in $(seq 1 30); do pg_ready && break; sleep 1; done
		pg_ready || die "PostgreSQL (pid $(head -n1 "$PG_DATA/postmaster.pid")) does not answer on 127.0.0.1:$PG_PORT; see $PG_LOG"
		if pg_adopt_running; then return; fi
	fi
	pg_tls_files || true
	pg_write_hba || true
	# Crash leftovers: postmaster.pid / socket lock pointing at a dead or unrelated process.
	if [ -f "$PG_DATA/postmaster.pid" ]; then
		log "removing stale $PG_DATA/postmaster.pid"
		rm -f "$PG_DATA/postmaster.pid"
	fi
	rm -f "$PG_DATA"/.s.PGSQL.*.lock "$PG_DATA"/.s.PGSQL.[0-9]*

	[ -e "$PG_LOG" ] || install -m 0640 -o "$(pg_owner)" /dev/null "$PG_LOG"
	log "starting PostgreSQL on 127.0.0.1:$PG_PORT"
	# fsync=off and synchronous_commit=off: this is a THROWAWAY dev/test server, where speed
	# matters and a crash may lose data. Never use these settings for real data.
	# -k puts the unix socket in the data dir instead of /var/run/postgresql.
	# ssl=on with the local CA's server certificate (copied into the data dir, key 0600
	# owned by the server's user, as PostgreSQL demands); pg_hba.conf admits TCP over TLS only.
	# 8>&- 9>&-: the server must not inherit (and so hold forever) this script's lock files.
	if ! as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$PG_LOG" -w -t 60 start \
		-o "-c listen_addresses=127.0.0.1 -p $PG_PORT -k $PG_DATA -c fsync=off -c synchronous_commit=off -c ssl=on -c ssl_cert_file=server.crt -c ssl_key_file=server.key -c ssl_min_protocol_version=TLSv1.2" >/dev/null 8>&- 9>&-; then
		tail -n 20 "$PG_LOG" >&2 || true
		die "PostgreSQL did not start (log: $PG_LOG)"
	fi
	pg_ready || die "PostgreSQL started but does not answer on 127.0.0.1:$PG_PORT (log: $PG_LOG)"
	pg_createdb
}

pg_owner() { if [ "$(id -u)" -eq 0 ]; then echo postgres; else id -un; fi; }

# The server answering on $PG_PORT. Ours is brought up to date: reloaded when its
# certificate or pg_hba.conf changed, or — running without TLS (a state dir from before
# TLS) — stopped so that the caller starts it again with TLS (returns 1 then). Another
# checkout's server is reused, with that checkout's CA when it has one.
pg_adopt_running() {
	local dir reload=false
	dir=$(pg_psql -d postgres -Atc 'show data_directory' 2>/dev/null || true)
	if [ "$dir" != "$PG_DATA" ]; then
		log "PostgreSQL already answering on 127.0.0.1:$PG_PORT (data dir '${dir:-?}', not $PG_DATA); reusing it"
		if [ -n "$dir" ] && [ -f "$(dirname "$dir")/tls/ca.crt" ]; then
			CA_FILE=$(dirname "$dir")/tls/ca.crt
			log "using that server's CA $CA_FILE"
		fi
		pg_createdb
		return 0
	fi
	if pg_tls_files; then reload=true; fi
	if pg_write_hba; then reload=true; fi
	if [ "$(pg_psql -d postgres -Atc 'show ssl' 2>/dev/null || true)" != on ]; then
		log "PostgreSQL on 127.0.0.1:$PG_PORT runs without TLS; restarting it with TLS"
		as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -m fast -w -t 60 stop >/dev/null
		return 1
	fi
	if [ "$reload" = true ]; then
		log "reloading PostgreSQL (new certificate or pg_hba.conf)"
		pg_psql -d postgres -Atc 'select pg_reload_conf()' >/dev/null
	fi
	log "PostgreSQL already running on 127.0.0.1:$PG_PORT"
	pg_createdb
	return 0
}

# Copy the server certificate and key into the data dir; return 0 if either changed.
pg_tls_files() {
	local changed=1
	if install_changed 0644 "$(pg_owner)" "$TLS_DIR/server.crt" "$PG_DATA/server.crt"; then changed=0; fi
	if install_changed 0600 "$(pg_owner)" "$TLS_DIR/server.key" "$PG_DATA/server.key"; then changed=0; fi
	return $changed
}

# TCP over TLS only: a plaintext TCP connection is refused ("no encryption"). The unix
# socket (in the data dir) keeps trust, as initdb -A trust made it. Return 0 if changed.
pg_write_hba() {
	local want
	want=$(
		cat <<-'HBA'
			# Written by deploy/services.sh (dev/test only): TCP over TLS only.
			# TYPE    DATABASE     USER  ADDRESS       METHOD
			local     all          all                 trust
			local     replication  all                 trust
			hostssl   all          all   127.0.0.1/32  trust
			hostssl   all          all   ::1/128       trust
			hostnossl all          all   0.0.0.0/0     reject
			hostnossl all          all   ::/0          reject
		HBA
	)
	if [ "$(cat "$PG_DATA/pg_hba.conf" 2>/dev/null || true)" = "$want" ]; then return 1; fi
	printf '%s\n' "$want" >"$STATE/pg_hba.conf.tmp"
	install -m 0600 -o "$(pg_owner)" "$STATE/pg_hba.conf.tmp" "$PG_DATA/pg_hba.conf"
	rm -f "$STATE/pg_hba.conf.tmp"
}

pg_createdb() {
	if [ "$(pg_psql -d postgres -Atc "select 1 from pg_database where datname = '$PG_DB'")" != 1 ]; then
		log "creating database $PG_DB"
		"$PG_BIN/createdb" -h 127.0.0.1 -p "$PG_PORT" -U postgres "$PG_DB"
	fi
}

pg_stop() {
	pg_resolve_bin || true
	if [ -x "$PG_BIN/pg_ctl" ] && [ -f "$PG_DATA/PG_VERSION" ] && pg_pidfile_live; then
		log "stopping PostgreSQL"
		as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -m fast -w -t 60 stop >/dev/null
	elif pg_ready; then
		log "PostgreSQL on 127.0.0.1:$PG_PORT was not started from $PG_DATA; leaving it alone"
	else
		log "PostgreSQL not running"
	fi
}

# --------------------------------------------------------------------- MinIO

# Does MinIO answer over HTTPS with a certificate from $CA_FILE?
minio_ready() { [ -f "$CA_FILE" ] && minio_health --cacert "$CA_FILE" "https://127.0.0.1:$MINIO_PORT"; }
minio_health() { curl -fsS -o /dev/null --max-time 2 "${@:1:$#-1}" "${!#}/minio/health/live" 2>/dev/null; }

# How MinIO answers on $MINIO_PORT: tls (verified with $CA_FILE), other-ca (HTTPS with a
# certificate $CA_FILE does not verify), plain (HTTP), or down.
minio_state() {
	if minio_ready; then
		echo tls
	elif minio_health --insecure "https://127.0.0.1:$MINIO_PORT"; then
		echo other-ca
	elif minio_health "http://127.0.0.1:$MINIO_PORT"; then
		echo plain
	else
		echo down
	fi
}

# MinIO's --certs-dir: the server certificate and key, and the CA (for its own clients,
# such as the console). Return 0 if anything changed.
minio_tls_files() {
	local changed=1
	mkdir -p "$MINIO_CERTS/CAs"
	if install_changed 0644 "$(id -un)" "$TLS_DIR/server.crt" "$MINIO_CERTS/public.crt"; then changed=0; fi
	if install_changed 0600 "$(id -un)" "$TLS_DIR/server.key" "$MINIO_CERTS/private.key"; then changed=0; fi
	if install_changed 0644 "$(id -un)" "$TLS_DIR/ca.crt" "$MINIO_CERTS/CAs/ca.crt"; then changed=0; fi
	return $changed
}

# pid from minio.pid if that process is still our MinIO server.
minio_pid() {
	local pid
	[ -f "$MINIO_PID" ] || return 1
	pid=$(cat "$MINIO_PID" 2>/dev/null || true)
	[[ "$pid" =~ ^[0-9]+$ ]] && alive "$pid" || return 1
	tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" | grep -qF -- "$MINIO_DATA" || return 1
	echo "$pid"
}

minio_ensure_binary() {
	mkdir -p "$MINIO_CACHE"
	if minio_binary_ok; then return; fi
	command -v go >/dev/null || die "go not found (expected /usr/local/go/bin/go) — needed to build MinIO"
	# One build at a time across checkouts: wait for a concurrent build to finish.
	exec 8>"$MINIO_CACHE/.minio-build.lock"
	if ! flock -n 8; then
		log "another MinIO build is running; waiting for it..."
		flock -w 1800 8 || die "timed out waiting for the MinIO build lock"
	fi
	if ! minio_binary_ok; then
		log "building MinIO $MINIO_VERSION into $MINIO_CACHE (a cold build takes ~6 minutes and ~1.5 GiB RAM; cached afterwards)..."
		if ! (cd / && GOBIN="$MINIO_CACHE" GOFLAGS='' GOWORK=off go install "github.com/minio/minio@$MINIO_VERSION") >"$STATE/minio-build.log" 2>&1; then
			tail -n 30 "$STATE/minio-build.log" >&2
			die "MinIO build failed (log: $STATE/minio-build.log)"
		fi
		minio_binary_ok || die "MinIO built but $MINIO_BIN is not version $MINIO_VERSION"
		log "MinIO built"
	fi
	flock -u 8
	exec 8>&-
}

# The cached binary exists and was built from the pinned version.
minio_binary_ok() {
	[ -x "$MINIO_BIN" ] || return 1
	command -v go >/dev/null || return 0 # cannot check without go; trust it
	go version -m "$MINIO_BIN" 2>/dev/null | grep -qE "^[[:space:]]+mod[[:space:]]+github.com/minio/minio[[:space:]]+$MINIO_VERSION([[:space:]]|\$)"
}

minio_start() {
	local pid state changed=false
	if minio_tls_files; then changed=true; fi
	state=$(minio_state)
	if pid=$(minio_pid); then
		case "$state" in
		tls)
			if [ "$changed" = false ]; then
				log "MinIO already running on 127.0.0.1:$MINIO_PORT"
				return
			fi
			log "MinIO (pid $pid): new certificate; restarting it"
			;;
		plain | other-ca) log "MinIO (pid $pid) runs without TLS from $CA_FILE; restarting it with TLS" ;;
		down) log "MinIO (pid $pid) exists but is not healthy; restarting it" ;;
		esac
		minio_kill "$pid"
	else
		case "$state" in
		tls)
			log "MinIO already answering on 127.0.0.1:$MINIO_PORT but not started from $MINIO_DATA; reusing it (its credentials may differ)"
			return
			;;
		plain | other-ca)
			die "MinIO on 127.0.0.1:$MINIO_PORT was not started from $MINIO_DATA and does not serve TLS with a certificate from $CA_FILE; stop it or set OV_DEV_MINIO_PORT"
			;;
		esac
	fi
	minio_ensure_binary
	mkdir -p "$MINIO_DATA"
	log "starting MinIO on 127.0.0.1:$MINIO_PORT (console 127.0.0.1:$MINIO_CONSOLE_PORT)"
	# setsid: own session, so Ctrl-C on `make run` does not reach it; nohup: survives the
	# shell. env, setsid and nohup all exec in place, so $! is MinIO's pid. HTTPS only:
	# --certs-dir holds public.crt/private.key from the local CA.
	(cd / && exec env MINIO_ROOT_USER="$MINIO_USER" MINIO_ROOT_PASSWORD="$MINIO_PASSWORD" \
		MINIO_UPDATE=off setsid nohup "$MINIO_BIN" server --address "127.0.0.1:$MINIO_PORT" \
		--console-address "127.0.0.1:$MINIO_CONSOLE_PORT" --certs-dir "$MINIO_CERTS" --quiet "$MINIO_DATA" \
		>>"$MINIO_LOG" 2>&1 </dev/null 8>&- 9>&-) &
	pid=$!
	echo "$pid" >"$MINIO_PID"

	for _ in $(seq 1 120); do
		minio_ready && break
		if ! alive "$pid"; then
			tail -n 20 "$MINIO_LOG" >&2 || true
			die "MinIO exited during startup (log: $MINIO_LOG)"
		fi
		sleep 0.25
	done
	minio_ready || { tail -n 20 "$MINIO_LOG" >&2 || true; die "MinIO did not become healthy within 30 s (log: $MINIO_LOG)"; }
	if ! minio_pid >/dev/null; then
		# setsid forks when it is a process group leader; record the real pid then.
		local p
		for p in /proc/[0-9]*; do
			if tr '\0' ' ' 2>/dev/null <"$p/cmdline" | grep -qF -- "$MINIO_BIN server --address 127.0.0.1:$MINIO_PORT"; then
				echo "${p#/proc/}" >"$MINIO_PID"
				break
			fi
		done
	fi
}

minio_kill() {
	local pid=$1
	kill -TERM "$pid" 2>/dev/null || return 0
	for _ in $(seq 1 40); do
		alive "$pid" || return 0
		sleep 0.25
	done
	log "MinIO (pid $pid) did not stop within 10 s; killing it"
	kill -KILL "$pid" 2>/dev/null || true
	for _ in $(seq 1 20); do alive "$pid" || return 0; sleep 0.1; done
}

minio_stop() {
	local pid
	if pid=$(minio_pid); then
		log "stopping MinIO (pid $pid)"
		minio_kill "$pid"
		rm -f "$MINIO_PID"
	elif [ "$(minio_state)" != down ]; then
		log "MinIO on 127.0.0.1:$MINIO_PORT was not started from $MINIO_DATA; leaving it alone"
	else
		log "MinIO not running"
		rm -f "$MINIO_PID"
	fi
}

# ----------------------------------------------------- dev OpenID provider

# Build deploy/dev/devidp into the state dir when missing or older than its sources.
oidc_ensure_binary() {
	if [ -x "$OIDC_BIN" ] && [ -z "$(find "$ROOT/deploy/dev/devidp" "$ROOT/go.mod" "$ROOT/go.sum" -newer "$OIDC_BIN" 2>/dev/null | head -n1)" ]; then
		return 1
	fi
	command -v go >/dev/null || die "go not found (expected /usr/local/go/bin/go) — needed to build the dev OpenID provider"
	log "building the dev OpenID provider (deploy/dev/devidp)"
	if ! (cd "$ROOT" && GOFLAGS='' go build -o "$OIDC_BIN.tmp" ./deploy/dev/devidp) >"$STATE/devidp-build.log" 2>&1; then
		tail -n 20 "$STATE/devidp-build.log" >&2
		die "could not build deploy/dev/devidp (log: $STATE/devidp-build.log)"
	fi
	mv -f "$OIDC_BIN.tmp" "$OIDC_BIN"
}

# A random secret made once into file (mode 0600).
oidc_secret() {
	[ -s "$1" ] || (umask 077 && head -c 24 /dev/urandom | base64 | tr '+/' '-_' >"$1")
}

# Does the provider answer discovery over HTTPS verified with $CA_FILE?
oidc_ready() {
	[ -f "$CA_FILE" ] && curl -fsS -o /dev/null --max-time 2 --cacert "$CA_FILE" "$OIDC_ISSUER/.well-known/openid-configuration" 2>/dev/null
}

# pid from devidp.pid if that process is still our provider.
oidc_pid() {
	local pid
	[ -f "$OIDC_PID" ] || return 1
	pid=$(cat "$OIDC_PID" 2>/dev/null || true)
	[[ "$pid" =~ ^[0-9]+$ ]] && alive "$pid" || return 1
	tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" | grep -qF -- "$OIDC_BIN " || return 1
	echo "$pid"
}

oidc_start() {
	local pid rebuilt=false certs=false
	mkdir -p "$OIDC_DIR"
	oidc_secret "$OIDC_DIR/client-secret"
	oidc_secret "$OIDC_DIR/admin.token"
	if oidc_ensure_binary; then rebuilt=true; fi
	if install_changed 0644 "$(id -un)" "$TLS_DIR/server.crt" "$OIDC_DIR/server.crt"; then certs=true; fi
	if install_changed 0600 "$(id -un)" "$TLS_DIR/server.key" "$OIDC_DIR/server.key"; then certs=true; fi
	if pid=$(oidc_pid); then
		if [ "$rebuilt" = false ] && [ "$certs" = false ] && oidc_ready; then
			log "dev OpenID provider already running on $OIDC_ISSUER"
			return
		fi
		log "dev OpenID provider (pid $pid): new binary, certificate or not answering; restarting it"
		minio_kill "$pid"
	elif oidc_ready; then
		die "something else answers on $OIDC_ISSUER; stop it or set OV_DEV_OIDC_PORT"
	fi
	log "starting the dev OpenID provider on $OIDC_ISSUER"
	# As MinIO: own session, survives the shell, does not hold this script's locks.
	(cd / && exec setsid nohup "$OIDC_BIN" -addr "127.0.0.1:$OIDC_PORT" -issuer "$OIDC_ISSUER" \
		-cert "$OIDC_DIR/server.crt" -key "$OIDC_DIR/server.key" -client-id "$OIDC_CLIENT_ID" \
		-client-secret "$(cat "$OIDC_DIR/client-secret")" -admin-token-file "$OIDC_DIR/admin.token" \
		>>"$OIDC_LOG" 2>&1 </dev/null 8>&- 9>&-) &
	pid=$!
	echo "$pid" >"$OIDC_PID"
	for _ in $(seq 1 80); do
		oidc_ready && break
		if ! alive "$pid"; then
			tail -n 20 "$OIDC_LOG" >&2 || true
			die "the dev OpenID provider exited during startup (log: $OIDC_LOG)"
		fi
		sleep 0.25
	done
	oidc_ready || { tail -n 20 "$OIDC_LOG" >&2 || true; die "the dev OpenID provider did not answer within 20 s (log: $OIDC_LOG)"; }
}

oidc_stop() {
	local pid
	if pid=$(oidc_pid); then
		log "stopping the dev OpenID provider (pid $pid)"
		minio_kill "$pid"
	else
		log "dev OpenID provider not running"
	fi
	rm -f "$OIDC_PID"
}

# The app's setting for the dev provider: one issuer whose groups map to the two staff roles.
oidc_issuers_json() {
	printf '[{"id":"clinic","name":"the clinic'"'"'s account","url":"%s","client_id":"%s","client_secret":"%s","ca_file":"%s","provider_groups":["openvisit-providers"],"admin_groups":["openvisit-admins"]}]' \
		"$OIDC_ISSUER" "$OIDC_CLIENT_ID" "$(cat "$OIDC_DIR/client-secret")" "$CA_FILE"
}

# ----------------------------------------------------------------- env/state

env_lines() {
	echo "# OpenVisit dev/test services — written by deploy/services.sh; do not edit."
	# Verified TLS to both, against the local CA: the production path is the tested path.
	echo "export OPENVISIT_DATABASE_URL=$(shquote "postgres://postgres@127.0.0.1:$PG_PORT/$PG_DB?sslmode=verify-full&sslrootcert=$(urlquery "$CA_FILE")")"
	echo "export OPENVISIT_S3_ENDPOINT=$(shquote "127.0.0.1:$MINIO_PORT")"
	echo "export OPENVISIT_S3_ACCESS_KEY=$(shquote "$MINIO_USER")"
	echo "export OPENVISIT_S3_SECRET_KEY=$(shquote "$MINIO_PASSWORD")"
	echo "export OPENVISIT_S3_USE_TLS='true'"
	echo "export OPENVISIT_S3_CA_FILE=$(shquote "$CA_FILE")"
	echo "export OV_DEV_STATE=$(shquote "$STATE")"
	if [ -s "$OIDC_DIR/client-secret" ]; then
		echo "export OPENVISIT_OIDC_ISSUERS=$(shquote "$(oidc_issuers_json)")"
		echo "export OV_DEV_OIDC_ISSUER=$(shquote "$OIDC_ISSUER")"
		echo "export OV_DEV_OIDC_CLIENT_ID=$(shquote "$OIDC_CLIENT_ID")"
		echo "export OV_DEV_OIDC_CLIENT_SECRET=$(shquote "$(cat "$OIDC_DIR/client-secret")")"
		echo "export OV_DEV_OIDC_ADMIN_TOKEN=$(shquote "$(cat "$OIDC_DIR/admin.token")")"
		echo "export OV_DEV_OIDC_CA_FILE=$(shquote "$CA_FILE")"
	fi
	local chromium=${OV_DEV_CHROMIUM:-}
	[ -n "$chromium" ] && [ -x "$chromium" ] || chromium=$(command -v chromium || true)
	if [ -n "$chromium" ]; then echo "export OV_DEV_CHROMIUM=$(shquote "$chromium")"; fi
}

write_env() {
	mkdir -p "$(dirname "$ENV_FILE")"
	env_lines >"$ENV_FILE.tmp"
	mv -f "$ENV_FILE.tmp" "$ENV_FILE"
	log "wrote $ENV_FILE"
}

state_init() {
	case "$STATE" in
	/root | /root/*) die "OV_DEV_STATE=$STATE is under /root, which the postgres user cannot reach" ;;
	/*) ;;
	*) die "OV_DEV_STATE must be an absolute path (got '$STATE')" ;;
	esac
	if [ ! -d "$STATE" ]; then
		# umask 022: 0755 on every level, so the postgres user can reach its data dir.
		mkdir -p "$STATE"
	fi
	# Serialise concurrent start/stop on the same state dir (e.g. `make -j test run`).
	exec 9>"$STATE/.lock"
	if ! flock -n 9; then
		log "waiting for another deploy/services.sh on $STATE..."
		flock -w 900 9 || die "timed out waiting for the lock $STATE/.lock"
	fi
	echo "$ROOT" >"$STATE/checkout" # which checkout this state belongs to
}

cmd_start() {
	state_init
	command -v curl >/dev/null || apt_install curl # MinIO health checks
	tls_ensure
	pg_start
	minio_start
	oidc_start
	tls_verify
	write_env
	log "PostgreSQL 127.0.0.1:$PG_PORT, MinIO 127.0.0.1:$MINIO_PORT, OpenID provider $OIDC_ISSUER (TLS, CA $CA_FILE), state $STATE"
}

# Check what the env file promises: both servers verify against $CA_FILE, and our
# PostgreSQL refuses plaintext TCP.
tls_verify() {
	local err
	if ! err=$("$PG_BIN/psql" -X -q -Atc 'select 1' \
		"host=127.0.0.1 port=$PG_PORT user=postgres dbname=$PG_DB sslmode=verify-full sslrootcert=$CA_FILE" 2>&1 >/dev/null); then
		die "PostgreSQL on 127.0.0.1:$PG_PORT does not verify with $CA_FILE: $err"
	fi
	if pg_pidfile_live && "$PG_BIN/psql" -X -q -Atc 'select 1' \
		"host=127.0.0.1 port=$PG_PORT user=postgres dbname=$PG_DB sslmode=disable" >/dev/null 2>&1; then
		die "PostgreSQL on 127.0.0.1:$PG_PORT accepts plaintext TCP (check $PG_DATA/pg_hba.conf)"
	fi
	minio_ready || die "MinIO on 127.0.0.1:$MINIO_PORT does not answer over HTTPS verified with $CA_FILE (log: $MINIO_LOG)"
}

cmd_stop() {
	[ -d "$STATE" ] || { log "nothing to stop (no $STATE)"; return; }
	state_init
	oidc_stop
	minio_stop
	pg_stop
}

cmd_status() {
	local rc=0 pid
	pg_resolve_bin || true
	echo "state:      $STATE"
	if pg_ready; then
		echo "postgresql: running on 127.0.0.1:$PG_PORT ($(pg_pidfile_live && echo "data $PG_DATA" || echo "not started from $PG_DATA"), ssl $(pg_psql -d postgres -Atc 'show ssl' 2>/dev/null || echo '?'))"
	else
		echo "postgresql: not running (port $PG_PORT)"
		rc=1
	fi
	local mstate
	mstate=$(minio_state)
	if [ "$mstate" != down ]; then
		local tls="https, CA $CA_FILE"
		[ "$mstate" = tls ] || tls="$mstate: 'start' restarts it with TLS"
		if pid=$(minio_pid); then
			echo "minio:      running on 127.0.0.1:$MINIO_PORT (pid $pid, console 127.0.0.1:$MINIO_CONSOLE_PORT; $tls)"
		else
			echo "minio:      running on 127.0.0.1:$MINIO_PORT (not started from $MINIO_DATA; $tls)"
		fi
	else
		echo "minio:      not running (port $MINIO_PORT)"
		rc=1
	fi
	if oidc_ready; then
		echo "openid:     running, issuer $OIDC_ISSUER ($(pid=$(oidc_pid) && echo "pid $pid" || echo "not started from $STATE"); https, CA $CA_FILE)"
	else
		echo "openid:     not running (port $OIDC_PORT)"
		rc=1
	fi
	if minio_binary_ok; then echo "minio bin:  $MINIO_BIN"; else echo "minio bin:  missing ($MINIO_BIN; 'start' builds it)"; fi
	echo "env file:   $ENV_FILE$([ -f "$ENV_FILE" ] || echo " (missing)")"
	return $rc
}

cmd_purge() {
	cmd_stop
	if pg_pidfile_live || minio_pid >/dev/null || oidc_pid >/dev/null; then
		die "services from $STATE still run; not deleting their data"
	fi
	if [ -d "$STATE" ]; then
		log "deleting $STATE"
		rm -rf "$STATE"
	fi
	rm -f "$ENV_FILE"
}

case "${1:-}" in
start) cmd_start ;;
stop) cmd_stop ;;
status) cmd_status ;;
env) env_lines ;;
purge) cmd_purge ;;
*)
	echo "usage: $0 start|stop|status|env|purge" >&2
	exit 2
	;;
esac
