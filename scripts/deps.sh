#!/usr/bin/env bash
# Installs and starts what Gatehouse's tests need on a Debian machine:
# PostgreSQL (server, client, pgbench), OpenSSH (server and client) and
# Chromium for the dashboard's browser test. Idempotent: CI runs it as root
# before `make test`, and `make test` runs it too.
#
# As root it installs what is missing with apt-get and starts PostgreSQL
# when it does not answer. Otherwise, or with --check, it installs nothing:
# when something is missing it names it and exits 1 with the command to
# run. With GATEHOUSE_SKIP_INTEGRATION=1 (integration tests skipped on
# request) a missing package is only reported.
set -euo pipefail
check=false
case "${1:-}" in
"") ;;
--check) check=true ;;
*)
	echo "usage: $0 [--check]" >&2
	exit 2
	;;
esac
[ "$(id -u)" = 0 ] || check=true

has() { command -v "$1" >/dev/null 2>&1; }
has_chromium() {
	if [ -n "${GATEHOUSE_CHROMIUM:-}" ]; then
		has "$GATEHOUSE_CHROMIUM"
		return
	fi
	has chromium || has chromium-browser
}

need=()
has psql || need+=(postgresql-client)
has pg_ctlcluster || need+=(postgresql)
has pgbench || need+=(postgresql-contrib)
has sshd || [ -x /usr/sbin/sshd ] || need+=(openssh-server)
has ssh || need+=(openssh-client)
has_chromium || need+=(chromium)

if [ ${#need[@]} -gt 0 ]; then
	if $check; then
		echo "deps: missing Debian packages: ${need[*]}" >&2
		if [ "${GATEHOUSE_SKIP_INTEGRATION:-}" = 1 ]; then
			echo "deps: GATEHOUSE_SKIP_INTEGRATION=1: continuing; the tests that need them are skipped" >&2
			exit 0
		fi
		echo "deps: install them with: sudo $0" >&2
		echo "deps: (that is: sudo apt-get install -y ${need[*]})" >&2
		exit 1
	fi
	if ! has apt-get; then
		echo "deps: missing packages ${need[*]} and there is no apt-get to install them" >&2
		exit 1
	fi
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"
	if ! has_chromium; then
		echo "deps: chromium was installed but neither chromium nor chromium-browser is on PATH" >&2
		exit 1
	fi
fi

# Start PostgreSQL if it is installed but not answering.
if ! $check && ! pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; then
	if has pg_ctlcluster; then
		ver=$(ls /etc/postgresql | sort -V | tail -1)
		pg_ctlcluster --skip-systemctl-redirect "$ver" main start || true
	fi
fi
