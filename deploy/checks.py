"""The checks behind deploy/check.sh, runnable one by one (python deploy/checks.py --help).

It reads the service's source (service/observability.py for the metric names, service/config.py for
the settings) instead of importing it, so it runs in the check tools' own environment. Needs PyYAML;
the compose and Kubernetes checks also need jsonschema and kubernetes-validate (deploy/check.sh
installs them). tests/deploy imports it to show that each cross-check catches what it is for.

Kubernetes targets: the base, the base with the Prometheus Operator component, and the external-secrets
overlay (TARGETS); custom resources are validated against the hand-written schemas in deploy/k8s/schemas/.
"""

from __future__ import annotations

import argparse
import ast
import json
import re
import subprocess
import sys
import tempfile
import tomllib
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parent.parent
DEPLOY = REPO / "deploy"
RULES = DEPLOY / "prometheus" / "rules.yml"
RULE_TESTS = DEPLOY / "prometheus" / "rules.test.yml"
RUNBOOK = DEPLOY / "RUNBOOK.md"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "recovery-loop.json"
DATASOURCES = DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yml"
COMPOSE = DEPLOY / "compose.yaml"
DOCKERFILE = DEPLOY / "Dockerfile"
LOCK = DEPLOY / "requirements.lock"
BUILD_LOCK = DEPLOY / "build-requirements.lock"
PYPROJECT = REPO / "pyproject.toml"
K8S_BASE = DEPLOY / "k8s" / "base"
K8S_OPERATOR = DEPLOY / "k8s" / "components" / "prometheus-operator"
K8S_EXTERNAL_SECRETS = DEPLOY / "k8s" / "overlays" / "external-secrets"
PROMETHEUSRULE = K8S_OPERATOR / "prometheusrule.yaml"
JOB = "recovery-loop"  # the scrape job the alert rules select on
K8S_SCHEMAS = DEPLOY / "k8s" / "schemas"

# The prometheus_client defaults on Linux (process collector, platform and GC collectors).
CLIENT_DEFAULT_METRICS = frozenset(
    {
        "process_virtual_memory_bytes",
        "process_resident_memory_bytes",
        "process_start_time_seconds",
        "process_cpu_seconds_total",
        "process_open_fds",
        "process_max_fds",
        "python_info",
        "python_gc_objects_collected_total",
        "python_gc_objects_uncollectable_total",
        "python_gc_collections_total",
    }
)
# Series Prometheus makes itself for every target; the service cannot export them.
PROMETHEUS_SYNTHETIC = frozenset({"up"})
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")
SIGNAL_KINDS = ("complaint", "nps", "review", "callback", "ticket")
SECRET_KEYS = frozenset(
    {
        "RECOVERY_DATABASE_URL",
        "RECOVERY_API_TOKENS",
        "RECOVERY_KAFKA_SASL_PASSWORD",
        "RECOVERY_CONSOLE_SESSION_KEY",
        "RECOVERY_DATA_KEYS",
    }
)
# RECOVERY_KAFKA_SASL_MECHANISM -> the KEDA Kafka scaler's `sasl` value
KEDA_SASL = {"PLAIN": "plaintext", "SCRAM-SHA-256": "scram_sha256", "SCRAM-SHA-512": "scram_sha512"}
SERVICE_DRAIN_SECONDS = 30  # the broker's graceful_timeout in service/bootstrap.py


class Report:
    """Collects failures; prints each check as it goes."""

    def __init__(self) -> None:
        self.failures: list[str] = []

    def check(self, condition: bool, what: str, detail: str = "") -> bool:
        if condition:
            print(f"  ok    {what}")
        else:
            self.failures.append(f"{what}: {detail}" if detail else what)
            print(f"  FAIL  {what}" + (f": {detail}" if detail else ""))
        return condition

    def exit_code(self) -> int:
        if self.failures:
            print(f"\n{len(self.failures)} check(s) failed")
            return 1
        return 0


# --- metric names ----------------------------------------------------------------------------------


def exported_metrics(service_dir: Path = REPO / "service") -> dict[str, str]:
    """Metric base name -> type, for every Counter/Gauge/Histogram/Summary the service constructs."""
    found: dict[str, str] = {}
    kinds = {"Counter": "counter", "Gauge": "gauge", "Histogram": "histogram", "Summary": "summary"}
    for path in sorted(service_dir.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call) or not node.args:
                continue
            func = node.func
            name = (
                func.id
                if isinstance(func, ast.Name)
                else func.attr
                if isinstance(func, ast.Attribute)
                else ""
            )
            first = node.args[0]
            if name in kinds and isinstance(first, ast.Constant) and isinstance(first.value, str):
                base = first.value
                if kinds[name] == "counter" and base.endswith("_total"):
                    base = base[: -len("_total")]
                found[base] = kinds[name]
    return found


def exported_sample_names(service_dir: Path = REPO / "service") -> set[str]:
    """Every sample name the service's /metrics can carry (as PromQL sees them)."""
    names = set(CLIENT_DEFAULT_METRICS)
    for base, kind in exported_metrics(service_dir).items():
        if kind == "counter":
            names |= {f"{base}_total", f"{base}_created"}
        elif kind in ("histogram", "summary"):
            names |= {base + s for s in HISTOGRAM_SUFFIXES} | {f"{base}_created"}
            if kind == "summary":
                names.add(base)
        else:
            names.add(base)
    return names


_GRAFANA_VARIABLE = re.compile(r"\$\{[^}]*\}|\$__\w+|\$\w+")


def grafana_to_promql(expr: str) -> str:
    """Replace Grafana's variables ($__rate_interval, ${var}) with values PromQL accepts."""
    return _GRAFANA_VARIABLE.sub("5m", expr)


def promql_metric_names(expr: str) -> set[str]:
    """Metric names a PromQL expression reads: the names of its vector selectors (`name{...}` or
    `{__name__="name"}`), found by a real PromQL parser (promql-parser, Prometheus's grammar in Rust).
    Raises ValueError when the expression does not parse."""
    import promql_parser

    names: set[str] = set()

    def visit(node: Any) -> bool:
        if isinstance(node, promql_parser.VectorSelector):
            if node.name:
                names.add(node.name)
            matchers = [*node.matchers.matchers, *(m for group in node.matchers.or_matchers for m in group)]
            names.update(m.value for m in matchers if m.name == "__name__")
        return True

    try:
        tree = promql_parser.parse(grafana_to_promql(expr))
    except ValueError as e:
        raise ValueError(f"not PromQL ({e}): {expr}") from e
    promql_parser.walk(tree, visit)
    return names


def _metric_names(report: Report, where: str, expr: str) -> set[str]:
    try:
        return promql_metric_names(expr)
    except ValueError as e:
        report.check(False, f"{where}: parses as PromQL", str(e))
        return set()


def is_exported(name: str, samples: set[str]) -> bool:
    if name in samples:
        return True
    for suffix in HISTOGRAM_SUFFIXES:
        if name.endswith(suffix) and name[: -len(suffix)] + "_bucket" in samples:
            return True
    return False


def dashboard_exprs(path: Path = DASHBOARD) -> list[tuple[str, str]]:
    """(where, expr) for every query in the dashboard, nested rows included."""
    dashboard = json.loads(path.read_text(encoding="utf-8"))
    out: list[tuple[str, str]] = []

    def walk(panels: Iterable[dict[str, Any]]) -> None:
        for panel in panels:
            for target in panel.get("targets", []):
                if "expr" in target:
                    out.append(
                        (
                            f"panel {panel.get('id')} {panel.get('title')!r} {target.get('refId')}",
                            target["expr"],
                        )
                    )
            walk(panel.get("panels", []))

    walk(dashboard.get("panels", []))
    return out


def rules(path: Path = RULES) -> list[dict[str, Any]]:
    return [
        rule
        for group in yaml.safe_load(path.read_text(encoding="utf-8"))["groups"]
        for rule in group["rules"]
    ]


def alert_rules(path: Path = RULES) -> list[dict[str, Any]]:
    return [rule for rule in rules(path) if "alert" in rule]


def recorded_names(path: Path = RULES) -> set[str]:
    return {rule["record"] for rule in rules(path) if "record" in rule}


def used_metric_names() -> dict[str, set[str]]:
    """Metric name -> where it is used, over the dashboard and the alerting rules (recorded and
    Prometheus-made series left out)."""
    used: dict[str, set[str]] = {}
    sources = [(f"dashboard {where}", expr) for where, expr in dashboard_exprs()]
    sources += [(f"rule {r.get('alert') or r.get('record')}", r["expr"]) for r in rules()]
    recorded = recorded_names()
    for where, expr in sources:
        for name in promql_metric_names(expr):
            if name not in recorded and name not in PROMETHEUS_SYNTHETIC:
                used.setdefault(name, set()).add(where)
    return used


# --- alerts, runbook, rule tests --------------------------------------------------------------------


def github_anchor(heading: str) -> str:
    slug = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return slug.replace(" ", "-")


def check_alerts(report: Report) -> None:
    alerts = alert_rules()
    report.check(bool(alerts), "rules.yml has alerting rules")
    names = [a["alert"] for a in alerts]
    report.check(len(names) == len(set(names)), "alert names are unique", str(names))
    runbook = RUNBOOK.read_text(encoding="utf-8")
    sections = {github_anchor(h): h.strip() for h in re.findall(r"^## (.+)$", runbook, re.MULTILINE)}
    tests = yaml.safe_load(RULE_TESTS.read_text(encoding="utf-8"))
    firing: set[str] = set()
    silent: set[str] = set()
    for test in tests.get("tests", []):
        for case in test.get("alert_rule_test", []):
            (firing if case.get("exp_alerts") else silent).add(case["alertname"])
    samples = exported_sample_names()
    recorded = recorded_names()
    for alert in alerts:
        name = alert["alert"]
        labels, annotations = alert.get("labels", {}), alert.get("annotations", {})
        report.check(
            labels.get("severity") in ("page", "ticket"), f"{name}: severity is page or ticket", str(labels)
        )
        missing = [k for k in ("summary", "description", "runbook_url") if not annotations.get(k)]
        report.check(not missing, f"{name}: has summary, description and runbook_url", f"missing {missing}")
        url = annotations.get("runbook_url", "")
        path, _, anchor = url.partition("#")
        report.check(
            path == "deploy/RUNBOOK.md" and anchor == github_anchor(name),
            f"{name}: runbook_url points at its own section",
            f"{url!r}, expected deploy/RUNBOOK.md#{github_anchor(name)}",
        )
        report.check(
            sections.get(anchor) == name,
            f"{name}: deploy/RUNBOOK.md has a section '## {name}'",
            "no such section",
        )
        section = runbook.split(f"## {name}\n", 1)[-1].split("\n## ", 1)[0]
        for part in ("**Meaning.**", "**Check.**", "**Act.**"):
            report.check(part in section, f"{name}: runbook section has {part}")
        report.check(name in firing, f"{name}: rules.test.yml tests it firing")
        report.check(name in silent, f"{name}: rules.test.yml tests it not firing")
        unknown = {
            n
            for n in _metric_names(report, name, alert["expr"])
            if n not in recorded and n not in PROMETHEUS_SYNTHETIC and not is_exported(n, samples)
        }
        report.check(
            not unknown, f"{name}: reads only metrics the service exports", f"unknown {sorted(unknown)}"
        )
    stale = sorted(set(sections.values()) - set(names))
    report.check(
        not stale, "every runbook section belongs to an alert", f"sections without an alert: {stale}"
    )
    production = (
        (REPO / "docs" / "operators.md").read_text(encoding="utf-8").partition("\n## Production\n")[2]
    )
    unlisted = [
        n
        for n in names
        if f"| {n} |" not in production or f"(../deploy/RUNBOOK.md#{github_anchor(n)})" not in production
    ]
    report.check(
        not unlisted,
        "docs/operators.md's Production section lists every alert with its runbook link",
        str(unlisted),
    )
    check_scrape_jobs(report)


def check_scrape_jobs(report: Report) -> None:
    """The rules select job="recovery-loop": both Prometheus configurations must scrape under that name
    and load rules.yml."""
    for name in ("prometheus.yml", "prometheus-kubernetes.yml"):
        config = yaml.safe_load((DEPLOY / "prometheus" / name).read_text(encoding="utf-8"))
        jobs = {job["job_name"]: job for job in config.get("scrape_configs", [])}
        report.check("recovery-loop" in jobs, f"{name}: has the scrape job recovery-loop")
        report.check(
            any(str(f).endswith("/rules.yml") for f in config.get("rule_files", [])),
            f"{name}: loads rules.yml",
        )
    kubernetes = yaml.safe_load(
        (DEPLOY / "prometheus" / "prometheus-kubernetes.yml").read_text(encoding="utf-8")
    )
    job = next(j for j in kubernetes["scrape_configs"] if j["job_name"] == "recovery-loop")
    keeps = {r.get("regex") for r in job.get("relabel_configs", []) if r.get("action") == "keep"}
    deployment = yaml.safe_load((K8S_BASE / "deployment.yaml").read_text(encoding="utf-8"))
    pod_name = deployment["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/name"]
    report.check(
        pod_name in keeps and "http" in keeps,
        "prometheus-kubernetes.yml: keeps the Deployment's pods, on their http port",
        str(keeps),
    )


# --- dashboard ---------------------------------------------------------------------------------------


def check_dashboard(report: Report, promtool: str) -> None:
    try:
        dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        report.check(False, "dashboard JSON parses", str(e))
        return
    report.check(True, "dashboard JSON parses")
    report.check(
        bool(dashboard.get("uid")) and bool(dashboard.get("title")), "dashboard has a uid and a title"
    )
    panels = list(_panels(dashboard.get("panels", [])))
    ids = [p.get("id") for p in panels]
    report.check(len(ids) == len(set(ids)), "panel ids are unique", str(ids))
    report.check(all("gridPos" in p for p in panels), "every panel has a gridPos")
    variables = {v["name"]: v for v in dashboard.get("templating", {}).get("list", [])}
    datasource_uid = yaml.safe_load(DATASOURCES.read_text(encoding="utf-8"))["datasources"][0]["uid"]
    report.check(
        variables.get("datasource", {}).get("current", {}).get("value") == datasource_uid,
        "the datasource variable defaults to the provisioned Prometheus",
        f"provisioned uid {datasource_uid!r}",
    )
    queried = [p for p in panels if p.get("type") not in ("row", "text")]
    report.check(all(p.get("targets") for p in queried), "every graph panel has queries")
    report.check(
        all(p.get("datasource", {}).get("uid") == "${datasource}" for p in queried),
        "every graph panel uses the datasource variable",
    )
    exprs = dashboard_exprs()
    samples = exported_sample_names()
    for where, expr in exprs:
        unknown = {
            n
            for n in _metric_names(report, where, expr)
            if n not in PROMETHEUS_SYNTHETIC and not is_exported(n, samples)
        }
        report.check(
            not unknown, f"{where}: every metric is exported", f"unknown {sorted(unknown)} in {expr}"
        )
    # PromQL syntax: promtool parses each query as a recording rule.
    group = {
        "groups": [
            {
                "name": "dashboard-syntax",
                "rules": [
                    {"record": f"dashboard:query_{n}", "expr": grafana_to_promql(expr)}
                    for n, (_, expr) in enumerate(exprs)
                ],
            }
        ]
    }
    with tempfile.NamedTemporaryFile("w", suffix=".yml", delete=False) as f:
        yaml.safe_dump(group, f)
    result = subprocess.run([promtool, "check", "rules", f.name], capture_output=True, text=True)
    Path(f.name).unlink()
    report.check(
        result.returncode == 0,
        f"all {len(exprs)} dashboard queries are valid PromQL (promtool)",
        result.stdout + result.stderr,
    )
    text = json.dumps(dashboard).lower()
    report.check(
        "time to resolution" in text, "the dashboard says that time to resolution is not exported yet"
    )


def _panels(panels: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels", []))


def _cookie_secure(env: dict[str, Any]) -> bool:
    """`recovery serve` off loopback refuses a cookie without Secure; the deployment must not ask for one."""
    return str(env.get("RECOVERY_CONSOLE_COOKIE_SECURE", "true")).strip().lower() not in ("false", "0", "no", "off")


# --- compose -----------------------------------------------------------------------------------------

_SECRETISH = re.compile(r"PASSWORD|SECRET|TOKEN|DATABASE_URL|API_KEY|SESSION_KEY", re.IGNORECASE)


def check_compose(report: Report, schema_path: Path | None) -> None:
    try:
        compose = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        report.check(False, "compose.yaml parses", str(e))
        return
    report.check(isinstance(compose, dict), "compose.yaml parses")
    if schema_path is not None:
        import jsonschema

        schema = json.loads(schema_path.read_text(encoding="utf-8"))
        errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(compose), key=lambda e: list(e.path))
        report.check(
            not errors,
            "compose.yaml is valid against the Compose specification schema",
            "; ".join(f"{'/'.join(map(str, e.path))}: {e.message}" for e in errors[:5]),
        )
    services = compose.get("services", {})
    required = {"kafka", "postgres", "recovery", "prometheus", "grafana"}
    report.check(required <= set(services), f"services {sorted(required)} are present", str(sorted(services)))
    kafka = services.get("kafka", {})
    kafka_env = kafka.get("environment", {})
    report.check(
        str(kafka.get("image", "")).startswith("apache/kafka:")
        and "controller" in str(kafka_env.get("KAFKA_PROCESS_ROLES", ""))
        and not any("ZOOKEEPER" in k for k in kafka_env),
        "Kafka is the official apache/kafka image in KRaft mode",
    )
    recovery = services.get("recovery", {})
    report.check(recovery.get("deploy", {}).get("replicas") == 2, "two replicas of the service")
    recovery_env = recovery.get("environment", {})
    report.check(
        isinstance(recovery_env, dict) and _cookie_secure(recovery_env),
        "the console's session cookie stays Secure (RECOVERY_CONSOLE_COOKIE_SECURE is not false)",
    )
    report.check(
        _seconds(recovery.get("stop_grace_period", "10s")) > SERVICE_DRAIN_SECONDS,
        f"the service's stop_grace_period is longer than its {SERVICE_DRAIN_SECONDS} s drain",
        str(recovery.get("stop_grace_period")),
    )
    for name, service in services.items():
        env = service.get("environment", {})
        if isinstance(env, list):
            env = dict(item.split("=", 1) for item in env)
        for key, value in env.items():
            if _SECRETISH.search(key):
                value = str(value)
                report.check(
                    "${" in value and ":?" in value,
                    f"{name}: {key} comes from the environment and is required",
                    f"{value!r} is not a ${{VAR:?message}} reference",
                )
        for volume in service.get("volumes", []):
            source = str(volume).split(":", 1)[0]
            if source.startswith("."):
                report.check((COMPOSE.parent / source).exists(), f"{name}: mounted {source} exists")
    prometheus_mounts = " ".join(map(str, services.get("prometheus", {}).get("volumes", [])))
    report.check(
        "prometheus/rules.yml" in prometheus_mounts and "prometheus/prometheus.yml" in prometheus_mounts,
        "Prometheus mounts the project's config and rules",
    )
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text(encoding="utf-8"))
    jobs = {job["job_name"]: job for job in config.get("scrape_configs", [])}
    discovered = [
        n for sd in jobs.get("recovery-loop", {}).get("dns_sd_configs", []) for n in sd.get("names", [])
    ]
    report.check(
        "recovery" in discovered, "Prometheus discovers every replica of `recovery` (job recovery-loop)"
    )
    grafana_mounts = " ".join(map(str, services.get("grafana", {}).get("volumes", [])))
    report.check(
        "grafana/provisioning" in grafana_mounts and "grafana/dashboards" in grafana_mounts,
        "Grafana mounts the provisioning and the dashboards",
    )


def _seconds(duration: str) -> float:
    total = 0.0
    for amount, unit in re.findall(r"(\d+(?:\.\d+)?)(ms|us|h|m|s)", str(duration)):
        total += float(amount) * {"h": 3600, "m": 60, "s": 1, "ms": 0.001, "us": 1e-6}[unit]
    return total


# --- Dockerfile --------------------------------------------------------------------------------------


def check_dockerfile(report: Report) -> None:
    lines = _dockerfile_instructions(DOCKERFILE.read_text(encoding="utf-8"))
    final = lines[max(i for i, (op, _) in enumerate(lines) if op == "FROM") :]
    ops = [op for op, _ in final]
    users = [arg for op, arg in final if op == "USER"]
    report.check(bool(users), "the image sets USER")
    user = users[-1].split(":")[0] if users else ""
    report.check(
        user.isdigit() and int(user) != 0,
        "the image runs as a numeric non-root user (so runAsNonRoot can verify it)",
        repr(users[-1] if users else None),
    )
    report.check(ops.count("HEALTHCHECK") == 1, "the image has one HEALTHCHECK")
    health = next((arg for op, arg in final if op == "HEALTHCHECK"), "")
    report.check("/healthz" in health, "the HEALTHCHECK asks /healthz")
    report.check(ops.count("CMD") + ops.count("ENTRYPOINT") >= 1, "the image has a command")
    report.check(not any(op == "ADD" and "://" in arg for op, arg in final), "nothing is downloaded with ADD")
    report.check(
        any(op == "FROM" and "-slim" in arg for op, arg in final), "the final stage is a slim base image"
    )
    check_image_lock(report, lines)


def check_image_lock(
    report: Report,
    lines: list[tuple[str, str]],
    lock: Path = LOCK,
    pyproject: Path = PYPROJECT,
) -> None:
    """The image installs the lock files with hashes and nothing else from an index; the lock (a copy in the
    tests) holds every runtime dependency of pyproject.toml at a version it allows (else: `make lock`)."""
    installs = [cmd for op, arg in lines if op == "RUN" for cmd in re.split(r"&&|;", arg) if " install " in cmd]
    for relative in (LOCK.relative_to(REPO).as_posix(), BUILD_LOCK.relative_to(REPO).as_posix()):
        report.check(
            any(f"-r {relative}" in c and "--require-hashes" in c and "--no-deps" in c for c in installs),
            f"the image installs {relative} with --require-hashes --no-deps",
        )
    loose = [c.strip() for c in installs if "--require-hashes" not in c and "--no-index" not in c]
    report.check(not loose, "every pip install in the image is hash-checked or offline (--no-index)", str(loose))
    pinned = _locked(lock)
    unhashed = sorted(name for name, (_, hashes) in pinned.items() if not hashes)
    report.check(bool(pinned) and not unhashed, f"every requirement in {lock.name} has a hash", str(unhashed))
    declared = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]["dependencies"]
    stale = [spec for spec in map(_requirement, declared) if not _satisfied(spec, pinned)]
    report.check(not stale, f"{lock.name} pins every dependency of pyproject.toml as it allows (make lock)",
                 ", ".join(str(spec) for spec in stale))


def _requirement(text: str) -> Any:
    try:
        from packaging.requirements import Requirement
    except ImportError:  # the check tools' venv may lack packaging; pip always carries a copy
        from pip._vendor.packaging.requirements import Requirement
    return Requirement(text)


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _locked(lock: Path) -> dict[str, tuple[str, list[str]]]:
    """name -> (pinned version, hashes) of a pip-compile --generate-hashes file."""
    entries: dict[str, tuple[str, list[str]]] = {}
    joined = re.sub(r"\\\n", " ", lock.read_text(encoding="utf-8"))
    for line in joined.splitlines():
        line = line.split("#", 1)[0].strip()
        match = re.match(r"^([A-Za-z0-9_.\-]+)==(\S+)(.*)$", line)
        if match:
            name, version, rest = match.groups()
            entries[_normal(name)] = (version, re.findall(r"--hash=sha256:([0-9a-f]{64})", rest))
    return entries


def _satisfied(requirement: Any, pinned: dict[str, tuple[str, list[str]]]) -> bool:
    entry = pinned.get(_normal(requirement.name))
    return entry is not None and requirement.specifier.contains(entry[0], prereleases=True)


def _dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    joined = re.sub(r"\\\n", " ", text)
    out = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            op, _, arg = line.partition(" ")
            out.append((op.upper(), arg.strip()))
    return out


# --- Kubernetes --------------------------------------------------------------------------------------


def load_documents(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d]


def render(directory: Path) -> list[dict[str, Any]]:
    """What `kustomize build` makes of a kustomization, for machines without kubectl: its resources (files
    and other kustomizations) and its components' resources, then its namespace, labels, image tags and
    `$patch: delete` patches applied (the only features deploy/k8s uses; anything else is refused)."""
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text(encoding="utf-8"))
    known = {"apiVersion", "kind", "namespace", "labels", "resources", "components", "images", "patches"}
    unknown = set(kustomization) - known
    if unknown:
        raise ValueError(f"render cannot apply {sorted(unknown)} in {directory}: install kubectl")
    docs = []
    for entry in [*kustomization.get("resources", []), *kustomization.get("components", [])]:
        path = (directory / entry).resolve()
        docs += render(path) if path.is_dir() else load_documents(path)
    for patch in kustomization.get("patches", []):
        docs = _delete(docs, yaml.safe_load(patch["patch"]))
    for doc in docs:
        _transform(doc, kustomization)
    return docs


def render_base(base: Path = K8S_BASE) -> list[dict[str, Any]]:
    return render(base)


def _delete(docs: list[dict[str, Any]], patch: dict[str, Any]) -> list[dict[str, Any]]:
    if patch.pop("$patch", None) != "delete":
        raise ValueError("render applies only `$patch: delete` patches: install kubectl")
    name = patch["metadata"]["name"]
    return [d for d in docs if (d.get("kind"), d["metadata"].get("name")) != (patch["kind"], name)]


def _transform(doc: dict[str, Any], kustomization: dict[str, Any]) -> None:
    images = {i["name"]: i for i in kustomization.get("images", [])}
    meta = doc.setdefault("metadata", {})
    if "namespace" in kustomization:
        meta["namespace"] = kustomization["namespace"]
    for entry in kustomization.get("labels", []):
        meta.setdefault("labels", {}).update(entry.get("pairs", {}))
        template = doc.get("spec", {}).get("template")
        if template is not None and entry.get("includeTemplates"):
            template.setdefault("metadata", {}).setdefault("labels", {}).update(entry["pairs"])
    for container in _containers(doc):
        name, _, tag = container["image"].partition(":")
        if name in images:
            image = images[name]
            container["image"] = f"{image.get('newName', name)}:{image.get('newTag', tag or 'latest')}"


def _containers(doc: dict[str, Any]) -> list[dict[str, Any]]:
    pod = doc.get("spec", {}).get("template", {}).get("spec", {})
    if doc.get("kind") == "CronJob":
        pod = doc["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return [*pod.get("initContainers", []), *pod.get("containers", [])]


def settings_fields(config: Path = REPO / "service" / "config.py") -> set[str]:
    """RECOVERY_* names of the Settings class's fields, read from its source."""
    tree = ast.parse(config.read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == "Settings":
            return {
                "RECOVERY_" + stmt.target.id.upper()
                for stmt in node.body
                if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name)
            }
    raise ValueError("no Settings class in service/config.py")


# What deploy/check.sh builds: the base; the base with the Prometheus Operator component (an overlay made
# for the check, as an environment would); the example overlay that takes the Secret from a secret store.
# Each with the directory whose own files are validated one by one, and what to render without kubectl.
TARGETS: dict[str, tuple[Path, Callable[[], list[dict[str, Any]]]]] = {
    "base": (K8S_BASE, lambda: render(K8S_BASE)),
    "prometheus-operator": (K8S_OPERATOR, lambda: render(K8S_BASE) + render(K8S_OPERATOR)),
    "external-secrets": (K8S_EXTERNAL_SECRETS, lambda: render(K8S_EXTERNAL_SECRETS)),
}
# Custom resources, validated against the hand-written schemas in deploy/k8s/schemas/.
CUSTOM_SCHEMAS = {
    ("keda.sh/v1alpha1", "ScaledObject"): "keda.sh-v1alpha1-scaledobject.json",
    ("keda.sh/v1alpha1", "TriggerAuthentication"): "keda.sh-v1alpha1-triggerauthentication.json",
    ("monitoring.coreos.com/v1", "PodMonitor"): "monitoring.coreos.com-v1-podmonitor.json",
    ("monitoring.coreos.com/v1", "PrometheusRule"): "monitoring.coreos.com-v1-prometheusrule.json",
    ("external-secrets.io/v1", "ExternalSecret"): "external-secrets.io-v1-externalsecret.json",
}


def check_kubernetes(
    report: Report, built: list[dict[str, Any]], versions: list[str], directory: Path = K8S_BASE
) -> None:
    import jsonschema
    import kubernetes_validate

    custom = {key: K8S_SCHEMAS / name for key, name in CUSTOM_SCHEMAS.items()}
    files = sorted(p for p in directory.glob("*.yaml") if p.name != "kustomization.yaml")
    sources = [(p.name, d) for p in files for d in load_documents(p)] + [
        (f"built {d.get('kind')}/{d.get('metadata', {}).get('name')}", d) for d in built
    ]
    for where, doc in sources:
        key = (doc.get("apiVersion"), doc.get("kind"))
        if key in custom:
            schema = json.loads(custom[key].read_text(encoding="utf-8"))
            errors = list(jsonschema.Draft202012Validator(schema).iter_errors(doc))
            report.check(
                not errors,
                f"{where}: {key[1]} valid against {custom[key].name}",
                "; ".join(f"{'/'.join(map(str, e.path))}: {e.message}" for e in errors[:3]),
            )
            continue
        for version in versions:
            try:
                kubernetes_validate.validate(doc, version, strict=True)
                report.check(True, f"{where}: {key[1]} valid for Kubernetes {version} (strict)")
            except kubernetes_validate.ValidationError as e:
                path = "/".join(map(str, e.path))
                report.check(
                    False,
                    f"{where}: {key[1]} valid for Kubernetes {version} (strict)",
                    f"{path}: {e.message}",
                )
            except kubernetes_validate.SchemaNotFoundError as e:
                report.check(False, f"{where}: a schema for {key}", e.message)
    _check_policy(report, built)
    kinds = {d.get("kind") for d in built}
    if "PodMonitor" in kinds:
        _check_pod_monitor(report, built)
    if "PrometheusRule" in kinds:
        _check_prometheus_rule(report, built)


def _one(built: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    found = [d for d in built if d.get("kind") == kind]
    if len(found) != 1:
        raise AssertionError(f"expected one {kind} in the build, found {len(found)}")
    return found[0]


def _check_policy(report: Report, built: list[dict[str, Any]]) -> None:
    kinds = sorted(d["kind"] for d in built)
    expected = {
        "ConfigMap",
        "Deployment",
        "PodDisruptionBudget",
        "ScaledObject",
        "Service",
        "TriggerAuthentication",
    }
    report.check(expected <= set(kinds), f"the build has {sorted(expected)}", str(kinds))
    report.check(all(d["metadata"].get("namespace") for d in built), "every object has a namespace")
    deployment, config = _one(built, "Deployment"), _one(built, "ConfigMap")
    settings = settings_fields()
    data = config.get("data", {})
    unknown = sorted(set(data) - settings)
    report.check(
        not unknown, "every ConfigMap key is a RECOVERY_* setting of service/config.py", str(unknown)
    )
    report.check(not (set(data) & SECRET_KEYS), "no secret setting in the ConfigMap")
    report.check(_cookie_secure(data), "the console's session cookie stays Secure (behind the TLS ingress)")
    secret_name, secret_keys = _check_secret(report, built)
    refs = {
        source["secretRef"]["name"]
        for container in _containers(deployment)
        for source in container.get("envFrom", [])
        if "secretRef" in source
    }
    report.check(refs == {secret_name}, f"the containers take their secrets from {secret_name}", str(refs))

    pod = deployment["spec"]["template"]["spec"]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    report.check("replicas" not in deployment["spec"], "the Deployment leaves the replica count to KEDA")
    report.check(
        deployment["spec"]["selector"]["matchLabels"].items() <= labels.items(),
        "the selector matches the pod labels",
    )
    security = pod.get("securityContext", {})
    report.check(
        security.get("runAsNonRoot") is True and security.get("runAsUser", 0) > 0,
        "pods run as a non-root user",
    )
    main = pod["containers"][0]
    report.check(len(pod["containers"]) == 1, "one container (one process) per pod")
    pre_stop = main.get("lifecycle", {}).get("preStop", {})
    sleep = pre_stop.get("sleep", {}).get("seconds")
    if sleep is None and pre_stop.get("exec", {}).get("command", [None])[0] == "sleep":
        sleep = float(pre_stop["exec"]["command"][1])
    report.check(sleep is not None and sleep > 0, "a preStop sleep lets the endpoints drain before SIGTERM")
    grace = pod.get("terminationGracePeriodSeconds", 30)
    report.check(
        grace >= (sleep or 0) + SERVICE_DRAIN_SECONDS + 5,
        f"terminationGracePeriodSeconds ({grace}) > preStop ({sleep}) + the {SERVICE_DRAIN_SECONDS} s drain + 5 s",
    )
    for container in _containers(deployment):
        name = container["name"]
        sc = container.get("securityContext", {})
        report.check(
            sc.get("readOnlyRootFilesystem") is True
            and sc.get("allowPrivilegeEscalation") is False
            and "ALL" in sc.get("capabilities", {}).get("drop", []),
            f"container {name}: read-only root fs, no privilege escalation, all capabilities dropped",
        )
        resources = container.get("resources", {})
        report.check(
            {"cpu", "memory"} <= set(resources.get("requests", {}))
            and "memory" in resources.get("limits", {}),
            f"container {name}: cpu and memory requests, memory limit",
        )
    report.check(
        main.get("livenessProbe", {}).get("httpGet", {}).get("path") == "/healthz",
        "liveness probe on /healthz",
    )
    report.check(
        main.get("readinessProbe", {}).get("httpGet", {}).get("path") == "/readyz",
        "readiness probe on /readyz",
    )
    env = {e["name"]: e.get("value") for e in main.get("env", [])}
    migrates = [
        c for c in pod.get("initContainers", []) if "migrate" in c.get("args", []) + c.get("command", [])
    ]
    jobs = [d for d in built if d["kind"] == "Job" and "migrate" in json.dumps(_containers(d))]
    report.check(bool(migrates or jobs), "a migration init container or Job runs `recovery migrate`")
    report.check(
        env.get("RECOVERY_AUTO_MIGRATE") == "false",
        "the service container runs with RECOVERY_AUTO_MIGRATE=false",
    )
    ports = {p.get("name") for p in main.get("ports", [])}

    service = _one(built, "Service")
    report.check(service["spec"]["selector"].items() <= labels.items(), "the Service selects the pods")
    report.check(
        all(p["targetPort"] in ports for p in service["spec"]["ports"]),
        "the Service targets a named container port",
    )
    pdb = _one(built, "PodDisruptionBudget")
    report.check(
        pdb["spec"]["selector"]["matchLabels"].items() <= labels.items(),
        "the PodDisruptionBudget selects the pods",
    )

    scaled = _one(built, "ScaledObject")
    spec = scaled["spec"]
    partitions = int(data.get("RECOVERY_TOPIC_PARTITIONS", 6))
    report.check(
        spec["scaleTargetRef"]["name"] == deployment["metadata"]["name"],
        "the ScaledObject scales the Deployment",
    )
    report.check(
        spec.get("minReplicaCount", 0) >= 2,
        "KEDA keeps at least 2 replicas",
        str(spec.get("minReplicaCount")),
    )
    # aiokafka's default RoundRobin assignor deals the partitions of all the group's topics out together,
    # so every one of topics x partitions consumers owns at least one partition.
    group_partitions = partitions * len(SIGNAL_KINDS)
    report.check(
        spec.get("maxReplicaCount", 100) <= group_partitions,
        f"KEDA's maxReplicaCount ({spec.get('maxReplicaCount')}) <= the group's partitions"
        f" ({len(SIGNAL_KINDS)} signal topics x {partitions})",
    )
    kafka = [t for t in spec["triggers"] if t["type"] == "kafka"]
    report.check(
        len(kafka) == 1 and len(spec["triggers"]) == 1,
        "one trigger, a kafka one",
        str([t.get("name") for t in spec["triggers"]]),
    )
    report.check(
        all("topic" not in t["metadata"] for t in kafka),
        "the kafka trigger names no topic, so KEDA sums the lag of every topic the group consumes",
        str([t["metadata"].get("topic") for t in kafka]),
    )
    report.check(
        all(t["metadata"].get("allowIdleConsumers", "false") == "false" for t in kafka),
        "the kafka trigger keeps KEDA from adding consumers that would own no partition",
    )
    report.check(
        all(
            t["metadata"]["consumerGroup"] == data.get("RECOVERY_CONSUMER_GROUP", "recovery-loop")
            for t in kafka
        ),
        "the triggers read the service's consumer group",
    )
    report.check(
        all(
            t["metadata"].get("bootstrapServers") == data.get("RECOVERY_KAFKA_BOOTSTRAP_SERVERS")
            for t in kafka
        ),
        "the triggers use the service's bootstrap servers",
    )
    auths = {d["metadata"]["name"]: d for d in built if d["kind"] == "TriggerAuthentication"}
    for trigger in kafka:
        ref = trigger.get("authenticationRef", {}).get("name")
        if data.get("RECOVERY_KAFKA_SASL_MECHANISM"):
            report.check(
                ref in auths, f"trigger {trigger.get('name')}: its TriggerAuthentication exists", str(ref)
            )
            mechanism = KEDA_SASL.get(data["RECOVERY_KAFKA_SASL_MECHANISM"], "?")
            report.check(
                trigger["metadata"].get("sasl") == mechanism,
                f"trigger {trigger.get('name')}: SASL mechanism matches the service's",
                f"{trigger['metadata'].get('sasl')!r} vs {mechanism!r}",
            )
            tls = "enable" if "SSL" in data.get("RECOVERY_KAFKA_SECURITY_PROTOCOL", "") else "disable"
            report.check(
                trigger["metadata"].get("tls", "disable") == tls,
                f"trigger {trigger.get('name')}: TLS matches the service's",
            )
    for auth in auths.values():
        for ref in auth["spec"].get("secretTargetRef", []):
            report.check(
                ref["name"] == secret_name and ref["key"] in secret_keys,
                f"TriggerAuthentication {auth['metadata']['name']}: secret {ref['name']}/{ref['key']} exists",
            )
        for ref in auth["spec"].get("env", []):
            report.check(
                ref["name"] in data or ref["name"] in env,
                f"TriggerAuthentication {auth['metadata']['name']}: env {ref['name']} is set on the container",
            )


def _check_secret(report: Report, built: list[dict[str, Any]]) -> tuple[str, set[str]]:
    """The name and keys of the Secret the pods read: the base's placeholder Secret, or one an
    ExternalSecret makes from a secret store (deploy/k8s/overlays/external-secrets)."""
    secrets = [d for d in built if d["kind"] == "Secret"]
    external = [d for d in built if d["kind"] == "ExternalSecret"]
    report.check(
        len(secrets) + len(external) == 1,
        "one source of the secrets: the placeholder Secret or an ExternalSecret",
        str([f"{d['kind']}/{d['metadata']['name']}" for d in secrets + external]),
    )
    if external:
        target = external[0]["spec"]["target"]
        keys = {item["secretKey"] for item in external[0]["spec"].get("data", [])}
        report.check(
            keys == SECRET_KEYS, f"the ExternalSecret makes exactly {sorted(SECRET_KEYS)}", str(sorted(keys))
        )
        report.check(
            target.get("creationPolicy", "Owner") in ("Owner", "Orphan"),
            "the External Secrets Operator creates the Secret (creationPolicy Owner or Orphan)",
        )
        return target["name"], keys
    secret = secrets[0] if secrets else {"metadata": {"name": ""}}
    values = {**secret.get("stringData", {}), **secret.get("data", {})}
    report.check(
        set(values) == SECRET_KEYS, f"the Secret holds exactly {sorted(SECRET_KEYS)}", str(sorted(values))
    )
    report.check(
        all("CHANGE_ME" in str(v) for v in values.values()),
        "the committed Secret holds placeholders only (CHANGE_ME), never a real value",
    )
    report.check(
        "sslmode=verify-full" in values.get("RECOVERY_DATABASE_URL", ""),
        "the database URL asks for TLS with certificate verification",
    )
    return secret["metadata"]["name"], set(values)


def _check_pod_monitor(report: Report, built: list[dict[str, Any]]) -> None:
    monitor, deployment = _one(built, "PodMonitor"), _one(built, "Deployment")
    spec, template = monitor["spec"], deployment["spec"]["template"]
    labels = template["metadata"]["labels"]
    ports = {p.get("name") for c in template["spec"]["containers"] for p in c.get("ports", [])}
    report.check(
        spec["selector"].get("matchLabels", {}).items() <= labels.items()
        and not spec["selector"].get("matchExpressions"),
        "the PodMonitor selects the Deployment's pods",
    )
    report.check(
        monitor["metadata"].get("namespace") == deployment["metadata"].get("namespace")
        or deployment["metadata"].get("namespace") in spec.get("namespaceSelector", {}).get("matchNames", []),
        "the PodMonitor looks in the Deployment's namespace",
    )
    report.check(
        all(
            e.get("port") in ports and e.get("path", "/metrics") == "/metrics"
            for e in spec["podMetricsEndpoints"]
        ),
        "the PodMonitor scrapes /metrics on a named container port",
        str(sorted(map(str, ports))),
    )
    report.check(
        labels.get(spec.get("jobLabel", "")) == JOB,
        f"the PodMonitor's jobLabel gives the job the alert rules select on ({JOB})",
        f"jobLabel {spec.get('jobLabel')!r}",
    )


def _check_prometheus_rule(report: Report, built: list[dict[str, Any]]) -> None:
    rule = _one(built, "PrometheusRule")
    groups = yaml.safe_load(RULES.read_text(encoding="utf-8"))["groups"]
    report.check(
        rule["spec"]["groups"] == groups,
        f"the PrometheusRule's groups equal {RULES.relative_to(REPO)}'s",
        "run python deploy/prometheusrule.py",
    )


def write_operator_rules(out: Path) -> None:
    """The PrometheusRule's groups as a rules file, next to a copy of the rule tests, for promtool."""
    rule = load_documents(PROMETHEUSRULE)[0]
    out.mkdir(parents=True, exist_ok=True)
    (out / RULES.name).write_text(yaml.safe_dump({"groups": rule["spec"]["groups"]}, sort_keys=False))
    (out / RULE_TESTS.name).write_text(RULE_TESTS.read_text(encoding="utf-8"), encoding="utf-8")


# --- command line ------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="check", required=True)
    sub.add_parser("alerts", help="alerts: labels, annotations, runbook sections, rule tests, metric names")
    dashboard = sub.add_parser("dashboard", help="dashboard: JSON, datasource, metric names, PromQL syntax")
    dashboard.add_argument("--promtool", default="promtool")
    compose = sub.add_parser("compose", help="compose.yaml: schema, services, secrets from the environment")
    compose.add_argument("--schema", type=Path, help="the Compose specification JSON schema")
    sub.add_parser("dockerfile", help="deploy/Dockerfile: non-root, healthcheck, slim, built from the lock")
    sub.add_parser("metrics-used", help="print, as JSON, the metric names the dashboard and the rules read")
    kubernetes = sub.add_parser(
        "kubernetes", help="every manifest and the kustomize build, schemas and policy"
    )
    kubernetes.add_argument(
        "--target", choices=sorted(TARGETS), default="base", help="what to build and check"
    )
    kubernetes.add_argument("--built", type=Path, help="`kubectl kustomize` output (rendered here if absent)")
    operator_rules = sub.add_parser(
        "operator-rules",
        help="write the PrometheusRule's groups and a copy of the rule tests into a directory",
    )
    operator_rules.add_argument("--out", type=Path, required=True)
    kubernetes.add_argument("--versions", default="1.29,1.37", help="Kubernetes versions to validate against")
    args = parser.parse_args(argv)
    report = Report()
    if args.check == "alerts":
        check_alerts(report)
    elif args.check == "dashboard":
        check_dashboard(report, args.promtool)
    elif args.check == "compose":
        check_compose(report, args.schema)
    elif args.check == "dockerfile":
        check_dockerfile(report)
    elif args.check == "metrics-used":
        print(
            json.dumps({name: sorted(where) for name, where in sorted(used_metric_names().items())}, indent=2)
        )
    elif args.check == "kubernetes":
        directory, rendered = TARGETS[args.target]
        built = load_documents(args.built) if args.built else rendered()
        check_kubernetes(report, built, args.versions.split(","), directory)
        if args.target == "prometheus-operator":
            kinds = sorted(d["kind"] for d in built)
            report.check(
                {"PodMonitor", "PrometheusRule"} <= set(kinds),
                "the build has the PodMonitor and the PrometheusRule",
                str(kinds),
            )
    elif args.check == "operator-rules":
        write_operator_rules(args.out)
    return report.exit_code()


if __name__ == "__main__":
    sys.exit(main())
