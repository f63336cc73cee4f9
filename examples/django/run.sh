#!/bin/sh
# Runs app.py under gunicorn (gunicorn.conf.py: $WORKERS, default 2, worker processes) on
# $HOST:$PORT, with what several workers share, in a fresh temporary directory removed on exit:
# PROMETHEUS_MULTIPROC_DIR (prometheus_client's multiprocess mode needs it empty, set before the
# workers start) and USERS_DB, the SQLite file of users. SIGTERM / SIGINT are passed on to
# gunicorn, which stops its workers gracefully.
# From examples/django:  HOST=127.0.0.1 PORT=8000 ./run.sh
set -u
here=$(cd "$(dirname "$0")" && pwd)
dir=$(mktemp -d "${TMPDIR:-/tmp}/django-peer.XXXXXX") || exit 1
trap 'rm -rf "$dir"' EXIT
# The metrics directory holds prometheus_client's *.db files only: it reads every *.db there.
mkdir "$dir/metrics" || exit 1
export PROMETHEUS_MULTIPROC_DIR="$dir/metrics"
export USERS_DB="$dir/users.sqlite3"
cd "$here" || exit 1
"${GUNICORN:-$here/../.venv/bin/gunicorn}" app:application &
child=$!
trap 'kill -TERM "$child" 2>/dev/null' TERM INT
# `wait` returns early when a trapped signal arrives: wait again for gunicorn's own exit.
while :; do
    wait "$child"; status=$?
    kill -0 "$child" 2>/dev/null || break
done
exit "$status"
