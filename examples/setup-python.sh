#!/bin/sh
# Creates examples/.venv (one venv for the FastAPI, Flask, Django and aiohttp examples) and
# installs their requirements files. Idempotent: a stamp holding the requirements' hash skips the
# install when nothing changed. Exits non-zero when anything fails.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
venv="$here/.venv"
stamp="$venv/.requirements.sha256"
python=${PYTHON:-python3}

want=$(cat "$here/fastapi/requirements.txt" "$here/flask/requirements.txt" \
    "$here/django/requirements.txt" "$here/aiohttp/requirements.txt" | sha256sum | cut -d' ' -f1)

if [ -x "$venv/bin/python" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    echo "examples/.venv is up to date"
    exit 0
fi

if [ ! -x "$venv/bin/python" ]; then
    "$python" -m venv "$venv"
fi
rm -f "$stamp"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    -r "$here/fastapi/requirements.txt" -r "$here/flask/requirements.txt" \
    -r "$here/django/requirements.txt" -r "$here/aiohttp/requirements.txt"
if ! problems=$("$venv/bin/python" -m pip check); then
    echo "$problems" >&2
    exit 1
fi
echo "$want" > "$stamp"
echo "examples/.venv ready: $venv"
