#!/usr/bin/env bash
# Installs and starts what Gatehouse's tests need on a Debian machine.
# Idempotent: safe to run on every CI run.
set -euo pipefail
need=()
command -v psql >/dev/null || need+=(postgresql-client)
command -v pg_ctlcluster >/dev/null || need+=(postgresql)
command -v pgbench >/dev/null || need+=(postgresql-contrib)
command -v sshd >/dev/null || [ -x /usr/sbin/sshd ] || need+=(openssh-server)
command -v ssh >/dev/null || need+=(openssh-client)
if [ ${#need[@]} -gt 0 ]; then
	if [ "$(id -u)" = 0 ]; then
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"
	else
		echo "deps: missing packages: ${need[*]} (install them with apt-get)" >&2
		exit 1
	fi
fi
# Start PostgreSQL if it is installed but not answering.
if ! pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; then
	if command -v pg_ctlcluster >/dev/null; then
		ver=$(ls /etc/postgresql | sort -V | tail -1)
		pg_ctlcluster --skip-systemctl-redirect "$ver" main start || true
	fi
fi
