#!/usr/bin/env python3
"""Offline checks of deploy/: what can be proven without a container engine.

Run from anywhere:  python3 deploy/validate.py [--compose-schema PATH]
Needs Python 3 and PyYAML; runs `promtool check config` when promtool is on the PATH, and
validates compose.yaml against the Compose Specification JSON schema when one is given
(github.com/compose-spec/compose-spec, schema/compose-spec.json) and `jsonschema` is installed.
Exit status 0 when every check passed, 1 otherwise. Prints one line per check.
"""

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

DEPLOY = Path(__file__).resolve().parent
ROOT = DEPLOY.parent

PANEL_TITLES = [
    "Total Requests",
    "Requests Per Minute",
    "Errors Per Second",
    "Average Response Time",
    "Request Duration P60",
    "CPU Usage",
    "Memory Usage",
    "Logger Stream",
]
# Host ports the stack publishes (container side); 4317/4318 stay internal on purpose.
USER_FACING = {"backend": 8000, "grafana": 3000, "prometheus": 9090, "loki": 3100, "tempo": 3200}
# Services whose image cannot run a healthcheck (documented in compose.yaml).
NO_HEALTHCHECK = {"tempo"}

failures = []


def check(ok, what, detail=""):
    print(("ok    " if ok else "FAIL  ") + what + (f": {detail}" if detail else ""))
    if not ok:
        failures.append(what)


def load_yaml(path):
    """The file's document, or the list of its documents when it holds several (manifests)."""
    try:
        with open(path) as f:
            docs = [d for d in yaml.safe_load_all(f) if d is not None]
        return docs[0] if len(docs) == 1 else docs
    except Exception as e:  # report every broken file, not just the first
        check(False, f"{path.relative_to(ROOT)} parses as YAML", str(e))
        return None


def check_parse_all():
    for path in sorted(DEPLOY.rglob("*")):
        if path.suffix in (".yml", ".yaml"):
            check(load_yaml(path) is not None, f"{path.relative_to(ROOT)} parses as YAML")
        elif path.suffix == ".json":
            try:
                json.loads(path.read_text())
                check(True, f"{path.relative_to(ROOT)} parses as JSON")
            except ValueError as e:
                check(False, f"{path.relative_to(ROOT)} parses as JSON", str(e))


def dockerfile_has_healthcheck(service):
    build = service.get("build") or {}
    dockerfile = ROOT / (build.get("dockerfile") or "Dockerfile") if isinstance(build, dict) else None
    return bool(dockerfile and dockerfile.exists() and re.search(r"^HEALTHCHECK ", dockerfile.read_text(), re.M))


def check_compose(schema_path):
    compose = load_yaml(DEPLOY / "compose.yaml")
    if compose is None:
        return
    services = compose.get("services", {})
    declared_volumes = set((compose.get("volumes") or {}).keys())
    healthy = set()
    for name, svc in services.items():
        image = svc.get("image", "")
        if "build" in svc:
            ctx = (DEPLOY / svc["build"].get("context", ".")).resolve()
            dockerfile = ctx / svc["build"].get("dockerfile", "Dockerfile")
            check(dockerfile.exists(), f"{name}: build dockerfile exists", str(dockerfile.relative_to(ROOT)))
        else:
            tag = image.rsplit(":", 1)[1] if ":" in image.split("/")[-1] else ""
            pinned = bool(tag) and tag != "latest" and re.search(r"\d", tag) is not None
            check(pinned, f"{name}: image pinned to a version", image)
        has_hc = "healthcheck" in svc or dockerfile_has_healthcheck(svc)
        if has_hc:
            healthy.add(name)
        check(has_hc or name in NO_HEALTHCHECK, f"{name}: healthcheck (or documented exemption)")
        for vol in svc.get("volumes", []):
            source = vol.split(":")[0] if isinstance(vol, str) else vol.get("source", "")
            if source.startswith((".", "/")) and not source.startswith("/var/run"):
                check((DEPLOY / source).exists(), f"{name}: mounted path exists", source)
            elif "$" in source:
                continue  # e.g. ${DOCKER_SOCKET:-/var/run/docker.sock}: a host path, not ours
            elif not source.startswith("/"):
                check(source in declared_volumes, f"{name}: named volume declared", source)
        published = set()
        for port in svc.get("ports", []):
            published.add(int(str(port).rsplit(":", 1)[-1].split("/")[0]))
        expected = {USER_FACING[name]} if name in USER_FACING else set()
        check(published == expected, f"{name}: publishes only user-facing ports", str(sorted(published)))
    for name, svc in services.items():
        for dep, cond in (svc.get("depends_on") or {}).items():
            condition = cond.get("condition") if isinstance(cond, dict) else "service_started"
            ok = dep in services and (condition != "service_healthy" or dep in healthy)
            check(ok, f"{name}: depends_on {dep} ({condition}) is satisfiable")
    if schema_path:
        try:
            import jsonschema
        except ImportError:
            check(False, "compose.yaml against the Compose Specification schema", "pip install jsonschema")
            return
        schema = json.loads(Path(schema_path).read_text())
        errors = list(jsonschema.Draft7Validator(schema).iter_errors(compose))
        check(not errors, "compose.yaml against the Compose Specification schema",
              "; ".join(f"{list(e.path)}: {e.message}" for e in errors[:5]))


def check_dashboard():
    provisioned = load_yaml(DEPLOY / "grafana/provisioning/datasources/datasources.yaml") or {}
    uids = {d["uid"]: d["type"] for d in provisioned.get("datasources", [])}
    check(set(uids) == {"prometheus", "loki", "tempo"}, "datasources have fixed uids", str(uids))
    dash = json.loads((DEPLOY / "grafana/dashboards/fastapi-dashboard.json").read_text())
    titles = [p["title"] for p in dash["panels"]]
    check(titles == PANEL_TITLES, "dashboard has exactly the 8 Part 7 panels", str(titles))
    check(dash.get("time", {}).get("from") == "now-15m", "dashboard time range is the last 15 minutes")
    check(dash.get("refresh") in ("5s", "10s"), "dashboard refreshes every 5 or 10 s", dash.get("refresh"))
    for panel in dash["panels"]:
        refs = [panel["datasource"]] + [t.get("datasource", panel["datasource"]) for t in panel["targets"]]
        ok = all(uids.get(r["uid"]) == r["type"] for r in refs)
        check(ok, f"panel '{panel['title']}' uses a provisioned datasource uid")
        for target in panel["targets"]:
            check("$" not in target["expr"], f"panel '{panel['title']}' query has no template variable",
                  target["expr"])


def check_exemplars():
    """Latency -> trace: Prometheus keeps exemplars, Grafana links them to Tempo, the P60 panel
    asks for them."""
    compose = load_yaml(DEPLOY / "compose.yaml") or {}
    command = compose.get("services", {}).get("prometheus", {}).get("command", [])
    check("--enable-feature=exemplar-storage" in command, "compose: Prometheus keeps exemplars")
    k8s = (DEPLOY / "k8s/prometheus.yaml").read_text()
    check("--enable-feature=exemplar-storage" in k8s, "k8s: Prometheus keeps exemplars")
    provisioned = load_yaml(DEPLOY / "grafana/provisioning/datasources/datasources.yaml") or {}
    prometheus = [d for d in provisioned.get("datasources", []) if d.get("uid") == "prometheus"]
    links = prometheus[0].get("jsonData", {}).get("exemplarTraceIdDestinations", []) if prometheus else []
    check(any(l.get("name") == "trace_id" and l.get("datasourceUid") == "tempo" for l in links),
          "Grafana links the exemplars' trace_id to the Tempo datasource", str(links))
    dash = json.loads((DEPLOY / "grafana/dashboards/fastapi-dashboard.json").read_text())
    p60 = [t for p in dash["panels"] if p["title"] == "Request Duration P60" for t in p["targets"]]
    check(bool(p60) and all(t.get("exemplar") is True for t in p60),
          "the P60 latency panel shows exemplars (its buckets carry them)")


def check_promtool():
    promtool = shutil.which("promtool")
    if not promtool:
        print("skip  promtool not on PATH (Debian: apt-get install prometheus)")
        return
    for cfg in ("prometheus/prometheus.yml", "prometheus/native.yml"):
        run = subprocess.run([promtool, "check", "config", str(DEPLOY / cfg)], capture_output=True, text=True)
        check(run.returncode == 0, f"promtool check config {cfg}", (run.stdout + run.stderr).strip().splitlines()[-1])
    # The dashboard's PromQL, parsed by promtool as recording rules (syntax only).
    dash = json.loads((DEPLOY / "grafana/dashboards/fastapi-dashboard.json").read_text())
    rules = [{"record": f"dashboard:panel_{p['id']}", "expr": t["expr"]}
             for p in dash["panels"] if p["datasource"]["type"] == "prometheus" for t in p["targets"]]
    import tempfile
    with tempfile.NamedTemporaryFile("w", suffix=".yml", delete=False) as f:
        yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}, f)
    run = subprocess.run([promtool, "check", "rules", f.name], capture_output=True, text=True)
    Path(f.name).unlink()
    check(run.returncode == 0, f"promtool check rules: {len(rules)} dashboard PromQL queries parse",
          (run.stdout + run.stderr).strip().splitlines()[-1])


def check_k8s(validator):
    """deploy/k8s: every kustomization resource exists, the embedded Prometheus config passes
    promtool, and every manifest passes kubernetes-validate --strict (when given)."""
    k8s = DEPLOY / "k8s"
    kustomization = load_yaml(k8s / "kustomization.yaml")
    resources = kustomization.get("resources", [])
    for resource in resources:
        check((k8s / resource).is_file(), f"k8s: kustomization resource {resource} exists")
    manifests = sorted(p for p in k8s.glob("*.yaml") if p.name != "kustomization.yaml")
    config = None
    for path in manifests:
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and doc.get("kind") == "ConfigMap" and "prometheus.yml" in doc.get("data", {}):
                config = doc["data"]["prometheus.yml"]
    check(config is not None, "k8s: a ConfigMap carries prometheus.yml")
    promtool = shutil.which("promtool")
    if config is not None and promtool:
        with tempfile.NamedTemporaryFile("w", suffix=".yml", delete=False) as f:
            f.write(config)
        run = subprocess.run([promtool, "check", "config", f.name], capture_output=True, text=True)
        Path(f.name).unlink()
        said = (run.stdout + run.stderr).strip().splitlines()
        if "kubernetes_sd_configs not found" in (run.stdout + run.stderr):
            # Debian builds Prometheus without Kubernetes service discovery.
            print("skip  promtool check of the k8s prometheus.yml: this promtool has no kubernetes_sd")
        else:
            check(run.returncode == 0, "k8s: promtool check config of the ConfigMap's prometheus.yml",
                  said[-1] if said else "")
        check("job_name: fastapi-backend" in config and "role: pod" in config,
              "k8s: Prometheus scrapes every pod as job fastapi-backend (kubernetes_sd, pod role)")
    if not validator:
        print("skip  kubernetes-validate not given (--kubernetes-validate PATH)")
        return
    run = subprocess.run([validator, "--strict", *map(str, manifests)], capture_output=True, text=True)
    last = (run.stdout + run.stderr).strip().splitlines()
    check(run.returncode == 0, f"k8s: kubernetes-validate --strict on {len(manifests)} manifests",
          last[-1] if last else "")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--compose-schema", help="path to compose-spec.json")
    parser.add_argument("--kubernetes-validate", help="path to the kubernetes-validate command")
    args = parser.parse_args()
    check_parse_all()
    check_compose(args.compose_schema)
    check_dashboard()
    check_exemplars()
    check_promtool()
    check_k8s(args.kubernetes_validate)
    print(f"\n{len(failures)} failed" if failures else "\nall checks passed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
