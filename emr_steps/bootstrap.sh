#!/usr/bin/env bash
# EMR bootstrap action: install the dark-halo-scope wheel and its pinned dependencies on a node.
#
#   Path: <code_prefix>/bootstrap.sh   Args: <code_prefix> <wheel file name>
#
# <code_prefix> holds the wheel, requirements.lock and this script (emr_steps.steps.stage_code).
# Runs on every node before YARN starts; any failure fails the cluster with a message naming what
# failed (visible in <log_uri>/<cluster>/node/<instance>/bootstrap-actions/1/stderr).
#
# Why python3.11: emr-7.x nodes (Amazon Linux 2023) have python3 = 3.9; the package requires 3.11.
# The steps point PySpark at $DHS_PYTHON (emr_steps.steps.EMR_PYTHON).
# Why "-c requirements.lock": the lock pins the whole dev environment (Airflow, GX, moto, ...);
# as a constraints file it pins only what the wheel (plus boto3) actually pulls in, and pyspark
# is not installed at all (EMR's own Spark must be the one on the PYTHONPATH).
set -euo pipefail

CODE_PREFIX="${1:?usage: bootstrap.sh <code_prefix s3://...> <wheel file name>}"
WHEEL="${2:?usage: bootstrap.sh <code_prefix s3://...> <wheel file name>}"
DHS_PYTHON="${DHS_PYTHON:-python3.11}"
# mktemp -d: a fresh folder of mode 0700, so no other local user can swap the downloads; removed
# however the script ends
WORK="$(mktemp -d "${TMPDIR:-/tmp}/dhs_bootstrap.XXXXXX")"
trap 'rm -rf "${WORK}"' EXIT

fail() { echo "dhs bootstrap FAILED: $*" >&2; exit 1; }
step() { echo "dhs bootstrap: $*"; }

CODE_PREFIX="${CODE_PREFIX/#s3a:\/\//s3://}"
CODE_PREFIX="${CODE_PREFIX%/}"

step "python: ${DHS_PYTHON}"
if ! command -v "${DHS_PYTHON}" >/dev/null 2>&1; then
  sudo dnf install -y python3.11 python3.11-pip >/dev/null || fail "could not install ${DHS_PYTHON} with dnf"
fi
"${DHS_PYTHON}" -m pip --version >/dev/null 2>&1 || fail "${DHS_PYTHON} has no pip"

step "fetching ${CODE_PREFIX}/requirements.lock and ${CODE_PREFIX}/${WHEEL}"
aws s3 cp --only-show-errors "${CODE_PREFIX}/requirements.lock" "${WORK}/requirements.lock" \
  || fail "cannot download ${CODE_PREFIX}/requirements.lock"
aws s3 cp --only-show-errors "${CODE_PREFIX}/${WHEEL}" "${WORK}/${WHEEL}" \
  || fail "cannot download ${CODE_PREFIX}/${WHEEL}"

# pyspark/py4j come from EMR; drop them from the constraints so nothing tries to match them.
grep -v -E '^(pyspark|py4j)==' "${WORK}/requirements.lock" > "${WORK}/constraints.txt" \
  || fail "cannot read ${WORK}/requirements.lock"

step "installing ${WHEEL} with dependencies pinned by requirements.lock"
sudo "${DHS_PYTHON}" -m pip install --no-cache-dir --disable-pip-version-check \
  --constraint "${WORK}/constraints.txt" "${WORK}/${WHEEL}" boto3 \
  || fail "pip install of ${WHEEL} (constrained by requirements.lock) failed"

"${DHS_PYTHON}" -c "import pipeline, emr_steps.inject, emr_steps.compact, h5py, lenstronomy, pyarrow, boto3" \
  || fail "the installed package does not import"

# No shared numba cache: a world-writable one (the seed's /tmp/numba_cache, mode 1777) lets any
# local user plant pickled code that the next Spark task loads. Each YARN container gets
# NUMBA_CACHE_DIR={{PWD}}/numba_cache, its own private working directory (emr_steps.steps.EMR_CONF),
# which numba creates on first use.

step "done"
