#!/usr/bin/env bash
# Checks the container image definition and the Helm chart: hadolint on the
# Dockerfile; helm lint, the values schema and the rendered manifests (default
# and ci/full-values.yaml) validated strictly against the Kubernetes schemas.
# Everything comes from PyPI into a virtual environment under the Cargo target
# directory, made on first use and reused after (remade when requirements.txt
# changes). `cargo test --test chart` runs this.
set -euo pipefail
ci_dir="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$ci_dir/../../.." && pwd)"
target="${CARGO_TARGET_DIR:-$repo/target}"
case "$target" in /*) ;; *) target="$repo/$target" ;; esac
venv="$target/chart-venv"
stamp="$venv/.requirements"
mkdir -p "$target"
(
    # One installer at a time: test runs started together share the venv.
    flock 9
    if ! cmp -s "$ci_dir/requirements.txt" "$stamp" 2>/dev/null; then
        echo "chart check: creating $venv from PyPI" >&2
        rm -rf "$venv"
        python3 -m venv "$venv"
        "$venv/bin/pip" install --quiet --disable-pip-version-check --no-input \
            -r "$ci_dir/requirements.txt"
        cp "$ci_dir/requirements.txt" "$stamp"
    fi
) 9>"$target/chart-venv.lock"
# Run from the CI directory's parent so no file here shadows a module.
cd "$repo"
exec "$venv/bin/python" "$ci_dir/check.py" "$repo"
