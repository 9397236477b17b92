#!/usr/bin/env python3
"""Checks the Kubernetes manifests the way a cluster would take them, without a cluster.

1. Renders every overlay with `kubectl kustomize`.
2. Validates the rendered objects against the Kubernetes schemas (kubernetes-validate, strict:
   unknown fields are errors) and lints them and the Dockerfile with checkov; the checks left
   out are listed in SKIPPED_CHECKS, each with its reason.
3. Starts the example overlay on loopback: the migration Job, then one pod of every Deployment,
   each as a process running the container's own command, arguments and environment (from its
   ConfigMap, Secret and downward API references), and probes each as the kubelet would, on
   the readiness and liveness paths and ports the manifest names. Only what a cluster provides
   is replaced: Service names and pod addresses by loopback ports, volumes by temporary folders,
   the Ingress by the gateway's own port, and the Secret's external services (database, Redis,
   S3) by the test ones. Then a request through the gateway reaches every role.
4. Checks the monitoring: the alert rules with `promtool check rules` and their unit tests with
   `promtool test rules`, every query of the Grafana dashboard with promtool (as recording
   rules), and a real Prometheus that scrapes every started pod where its annotations say,
   loads the alert rules, and must see every target up with the operational figures present.

Run by scripts/test.sh with the binary in TURTLEMEN_BIN and the services in
TURTLEMEN_TEST_POSTGRES_URL / TURTLEMEN_TEST_REDIS_URL; S3 is a moto server started here.
"""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
OVERLAYS = ["example", "production"]
KUBERNETES_VERSION = "1.31.0"
PROMETHEUS_DIR = os.path.join(ROOT, "deploy", "prometheus")
DASHBOARD = os.path.join(ROOT, "deploy", "grafana", "turtlemen.json")

# checkov checks that do not apply, each with the reason (kept short; docs/kubernetes.md says more).
SKIPPED_CHECKS = {
    "CKV_K8S_43": "images are named by tag in the overlays; pin a digest in your own overlay",
    "CKV_K8S_35": "the roles read their settings from TURTLEMEN_* variables (and S3 from AWS_*), "
    "so the Secret is handed over as environment, never logged",
}


def fail(msg):
    print(f"FAIL: {msg}", file=sys.stderr)
    sys.exit(1)


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, text=True, capture_output=True, **kw)


def render(overlay):
    out = run(["kubectl", "kustomize", os.path.join(HERE, "overlays", overlay)]).stdout
    return out, [d for d in yaml.safe_load_all(out) if d]


def validate(rendered_files):
    for path in rendered_files:
        res = subprocess.run(
            ["kubernetes-validate", "--strict", "--kubernetes-version", KUBERNETES_VERSION, path],
            text=True,
            capture_output=True,
        )
        bad = [line for line in res.stdout.splitlines() if not line.startswith("INFO")]
        if res.returncode != 0 or bad:
            fail(f"kubernetes-validate {os.path.basename(path)}:\n{res.stdout}{res.stderr}")
    print(f"kubernetes-validate {KUBERNETES_VERSION} --strict: {len(rendered_files)} renderings valid")


def lint(rendered_files):
    skip = ",".join(SKIPPED_CHECKS)
    targets = [("kubernetes", p) for p in rendered_files] + [("dockerfile", os.path.join(ROOT, "Dockerfile"))]
    for framework, path in targets:
        res = subprocess.run(
            ["checkov", "--quiet", "--compact", "--skip-download", "--framework", framework, "--skip-check", skip, "-f", path],
            text=True,
            capture_output=True,
        )
        if res.returncode != 0:
            fail(f"checkov ({framework}) {os.path.basename(path)}:\n{res.stdout}{res.stderr}")
    print(f"checkov: no failed check ({len(SKIPPED_CHECKS)} skipped, each with its reason)")


def check_monitoring_files(tmp):
    run(["promtool", "check", "rules", os.path.join(PROMETHEUS_DIR, "alerts.yml")])
    run(["promtool", "test", "rules", "alerts.test.yml"], cwd=PROMETHEUS_DIR)
    dashboard = json.load(open(DASHBOARD))
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    rules = {"groups": [{"name": "dashboard", "rules": [{"record": f"dashboard:q{i}", "expr": e} for i, e in enumerate(exprs)]}]}
    path = os.path.join(tmp, "dashboard-queries.yml")
    open(path, "w").write(yaml.safe_dump(rules))
    res = subprocess.run(["promtool", "check", "rules", path], text=True, capture_output=True)
    if res.returncode != 0:
        fail(f"a dashboard query does not parse:\n{res.stdout}{res.stderr}")
    print(f"promtool: alert rules valid and their unit tests pass; {len(exprs)} dashboard queries parse")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(url, timeout=5):
    req = urllib.request.Request(url, headers={"Accept": "text/html,application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as res:
            return res.status, res.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()
    except OSError:
        return None, b""


class Cluster:
    """What a cluster gives the pods, on loopback."""

    def __init__(self, docs, binary, tmp):
        self.docs = docs
        self.binary = binary
        self.tmp = tmp
        self.config = {d["metadata"]["name"]: d for d in docs if d["kind"] in ("ConfigMap", "Secret")}
        self.services = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Service"}
        self.procs = []
        # One pod per workload, each with its own "address": a loopback port per container port.
        self.pod_ports = {}
        for d in self.workloads():
            ports = {}
            for c in d["spec"]["template"]["spec"]["containers"]:
                for p in c.get("ports", []):
                    ports[p["containerPort"]] = free_port()
                    ports[p["name"]] = ports[p["containerPort"]]
            self.pod_ports[d["metadata"]["name"]] = ports
        self.entrypoint = self.dockerfile_entrypoint()

    def workloads(self):
        return [d for d in self.docs if d["kind"] in ("Deployment", "Job")]

    def dockerfile_entrypoint(self):
        text = open(os.path.join(ROOT, "Dockerfile")).read()
        m = re.search(r"^ENTRYPOINT (\[.*\])$", text, re.M)
        if not m:
            fail("the Dockerfile has no exec-form ENTRYPOINT")
        return json.loads(m.group(1))

    def service_address(self, name, port):
        """The loopback address behind Service `name`'s `port` (its selected Deployment's pod)."""
        svc = self.services[name]
        selector = svc["spec"]["selector"]
        for d in self.workloads():
            labels = d["spec"]["template"]["metadata"]["labels"]
            if all(labels.get(k) == v for k, v in selector.items()):
                for p in svc["spec"]["ports"]:
                    if p["port"] == port:
                        return f"127.0.0.1:{self.pod_ports[d['metadata']['name']][p.get('targetPort', port)]}"
        fail(f"Service {name} port {port} selects no pod")

    def gateway_url(self):
        ingress = next(d for d in self.docs if d["kind"] == "Ingress")
        backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
        svc = self.services[backend["name"]]
        port = next(p["port"] for p in svc["spec"]["ports"] if p["name"] == backend["port"]["name"])
        return f"http://{self.service_address(backend['name'], port)}/"

    def env_of(self, workload, container, external):
        env = {}
        for src in container.get("envFrom", []):
            ref = src.get("configMapRef") or src.get("secretRef")
            obj = self.config[ref["name"]]
            env.update(obj.get("data", {}) if obj["kind"] == "ConfigMap" else obj.get("stringData", {}))
        for e in container.get("env", []):
            if "value" in e:
                # Dependent variables: $(NAME) is replaced by an earlier variable's value.
                env[e["name"]] = re.sub(r"\$\((\w+)\)", lambda m: env.get(m.group(1), m.group(0)), e["value"])
            elif e.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") == "status.podIP":
                env[e["name"]] = "127.0.0.1"
            else:
                fail(f"{workload['metadata']['name']}: env {e['name']} has a source this check does not know")
        env.update(external)
        ports = self.pod_ports[workload["metadata"]["name"]]
        volumes = {}
        for m in container.get("volumeMounts", []):
            path = os.path.join(self.tmp, workload["metadata"]["name"], m["name"])
            os.makedirs(path, mode=0o700, exist_ok=True)
            volumes[m["mountPath"]] = path

        def place(value):
            # Service names → their pods' loopback addresses; this pod's own ports → its ports.
            for name, svc in self.services.items():
                for p in svc["spec"]["ports"]:
                    value = value.replace(f"{name}:{p['port']}", self.service_address(name, p["port"]))
            for port, mapped in ports.items():
                if isinstance(port, int):
                    value = re.sub(rf"(0\.0\.0\.0|127\.0\.0\.1):{port}\b", f"127.0.0.1:{mapped}", value)
            for mount, path in volumes.items():
                if value == mount or value.startswith(mount + "/"):
                    value = path + value[len(mount):]
            return value

        env = {k: place(v) for k, v in env.items()}
        if "/tmp" in volumes:
            env["TMPDIR"] = volumes["/tmp"]
        return env, [place(a) for a in container.get("args", [])]

    def start(self, workload, external, wait=False):
        spec = workload["spec"]["template"]["spec"]
        (container,) = spec["containers"]
        env, args = self.env_of(workload, container, external)
        command = container.get("command", self.entrypoint)
        if command[0] != "turtlemen":
            fail(f"{workload['metadata']['name']} runs {command[0]}, not the turtlemen binary")
        argv = [self.binary] + command[1:] + args
        base = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG")}
        log = open(os.path.join(self.tmp, workload["metadata"]["name"] + ".log"), "w")
        proc = subprocess.Popen(argv, env={**base, **env}, stdout=log, stderr=subprocess.STDOUT, cwd=self.tmp)
        if wait:
            if proc.wait(timeout=120) != 0:
                self.dump(workload)
                fail(f"{workload['metadata']['name']} exited with {proc.returncode}")
            return
        self.procs.append((workload, proc))

    def probe_all(self, deadline_secs=90):
        deadline = time.time() + deadline_secs
        for workload, proc in self.procs:
            (container,) = workload["spec"]["template"]["spec"]["containers"]
            ports = self.pod_ports[workload["metadata"]["name"]]
            for kind in ("readinessProbe", "livenessProbe"):
                probe = container.get(kind)
                if not probe:
                    fail(f"{workload['metadata']['name']} has no {kind}")
                get = probe["httpGet"]
                url = f"http://127.0.0.1:{ports[get['port']]}{get['path']}"
                while True:
                    if proc.poll() is not None:
                        self.dump(workload)
                        fail(f"{workload['metadata']['name']} exited with {proc.returncode} before its {kind} passed")
                    status, _ = http_get(url)
                    if status == 200:
                        break
                    if time.time() > deadline:
                        self.dump(workload)
                        fail(f"{workload['metadata']['name']}: {kind} {get['path']} never answered 200 (last {status})")
                    time.sleep(0.3)
            print(f"  {workload['metadata']['name']}: {' '.join(container.get('args', []))} — ready and live")

    def scrape_targets(self):
        """`(pod, address, path)` for every started pod, from its prometheus.io annotations."""
        targets = []
        for workload, _ in self.procs:
            ann = workload["spec"]["template"]["metadata"].get("annotations", {})
            if ann.get("prometheus.io/scrape") != "true":
                fail(f"{workload['metadata']['name']} is not annotated for scraping")
            port = self.pod_ports[workload["metadata"]["name"]][int(ann["prometheus.io/port"])]
            targets.append((workload["metadata"]["name"], f"127.0.0.1:{port}", ann.get("prometheus.io/path", "/metrics")))
        return targets

    def dump(self, workload):
        path = os.path.join(self.tmp, workload["metadata"]["name"] + ".log")
        if os.path.exists(path):
            print(f"--- {workload['metadata']['name']} log (tail)", file=sys.stderr)
            print("".join(open(path).readlines()[-40:]), file=sys.stderr)

    def stop(self):
        for _, proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for _, proc in self.procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()


def start_moto():
    port = free_port()
    proc = subprocess.Popen(
        ["moto_server", "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    for _ in range(200):
        req = urllib.request.Request(f"http://127.0.0.1:{port}/turtlemen-media", method="PUT")
        try:
            with urllib.request.urlopen(req, timeout=2):
                return proc, port
        except OSError:
            time.sleep(0.1)
    proc.kill()
    fail("moto_server did not come up")


def pg_schema(base_url):
    name = f"k8s_{uuid.uuid4().hex}"
    run(["psql", base_url, "-q", "-c", f"CREATE SCHEMA {name}"])
    sep = "&" if "?" in base_url else "?"
    return name, f"{base_url}{sep}options[search_path]={name}"


def scrape_with_prometheus(targets, tmp):
    """A real Prometheus scrapes every pod and loads the alert rules; every target must be up and
    the operational figures present (each role times its database; API and workers count jobs)."""
    port = free_port()
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [os.path.join(PROMETHEUS_DIR, "alerts.yml")],
        "scrape_configs": [
            {"job_name": pod, "metrics_path": path, "static_configs": [{"targets": [addr]}]}
            for pod, addr, path in targets
        ],
    }
    path = os.path.join(tmp, "prometheus.yml")
    open(path, "w").write(yaml.safe_dump(config))
    log = open(os.path.join(tmp, "prometheus.log"), "w")
    proc = subprocess.Popen(
        ["prometheus", f"--config.file={path}", f"--storage.tsdb.path={os.path.join(tmp, 'tsdb')}",
         f"--web.listen-address=127.0.0.1:{port}"],
        stdout=log, stderr=subprocess.STDOUT,
    )
    api = f"http://127.0.0.1:{port}/api/v1"

    def query(q):
        status, body = http_get(f"{api}/query?query={urllib.parse.quote(q)}")
        return json.loads(body)["data"]["result"] if status == 200 else None

    try:
        deadline = time.time() + 60
        wanted = {
            "up": len(targets),
            "turtlemen_database_up == 1": sum(1 for pod, _, _ in targets if not pod.endswith("-gateway")),
            'turtlemen_jobs{state="queued"}': sum(1 for pod, _, _ in targets if pod.endswith(("-api", "-worker"))),
            "turtlemen_session_store_up == 1": sum(1 for pod, _, _ in targets if pod.endswith(("-api", "-auth", "-gateway"))),
        }
        while True:
            got = {q: query(q) for q in wanted}
            if all(r is not None and len(r) == n for (q, n), r in zip(wanted.items(), got.values())) and all(
                r["value"][1] == "1" for r in got["up"]
            ):
                break
            if time.time() > deadline:
                fail(f"Prometheus did not see every target with its figures: {json.dumps(got)[:2000]}")
            time.sleep(1)
        status, body = http_get(f"{api}/rules")
        groups = json.loads(body)["data"]["groups"] if status == 200 else []
        rules = [r for g in groups for r in g["rules"]]
        if not rules or any(r.get("health") not in ("ok", "unknown") for r in rules):
            fail(f"Prometheus did not load the alert rules: {body[:500]!r}")
        print(f"  Prometheus scraped {len(targets)} pods (all up, figures present) and loaded {len(rules)} alert rules")
    finally:
        proc.terminate()
        proc.wait(timeout=15)


def start_on_loopback(docs, binary):
    pg = os.environ.get("TURTLEMEN_TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/test")
    redis = os.environ.get("TURTLEMEN_TEST_REDIS_URL", "redis://127.0.0.1:6379")
    tmp = tempfile.mkdtemp(prefix="turtlemen-k8s-")
    schema, db_url = pg_schema(pg)
    moto, moto_port = start_moto()
    cluster = Cluster(docs, binary, tmp)
    try:
        public_url = cluster.gateway_url()
        external = {
            "TURTLEMEN_DATABASE_URL": db_url,
            "TURTLEMEN_SESSION_URL": redis,
            "TURTLEMEN_PUBLIC_URL": public_url,
            "AWS_ENDPOINT": f"http://127.0.0.1:{moto_port}",
            "AWS_ALLOW_HTTP": "true",
            "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test",
        }
        jobs = [d for d in cluster.workloads() if d["kind"] == "Job"]
        for job in jobs:
            cluster.start(job, external, wait=True)
            print(f"  {job['metadata']['name']}: {' '.join(job['spec']['template']['spec']['containers'][0]['args'])} — completed")
        for d in cluster.workloads():
            if d["kind"] == "Deployment":
                cluster.start(d, external)
        cluster.probe_all()
        # Through the gateway, as the Ingress sends users: the API's home page and the auth
        # service's discovery document, whose issuer is the public URL's.
        status, _ = http_get(public_url)
        if status != 200:
            fail(f"the home page through the gateway answered {status}")
        status, body = http_get(public_url + "auth/.well-known/openid-configuration")
        if status != 200 or json.loads(body)["issuer"].rstrip("/") != public_url + "auth":
            fail(f"discovery through the gateway answered {status}: {body[:200]!r}")
        status, _ = http_get(public_url + "metrics")
        if status != 404:
            fail(f"the gateway's public port answered /metrics with {status}, not 404")
        print(f"  through the gateway ({public_url}): home page and OIDC discovery answer; /metrics is not answered there")
        scrape_with_prometheus(cluster.scrape_targets(), tmp)
    finally:
        cluster.stop()
        moto.kill()
        subprocess.run(["psql", pg, "-q", "-c", f"DROP SCHEMA IF EXISTS {schema} CASCADE"], capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)


def main():
    binary = os.environ.get("TURTLEMEN_BIN") or os.path.join(ROOT, "target", "debug", "turtlemen")
    if not os.access(binary, os.X_OK):
        fail(f"no turtlemen binary at {binary} (set TURTLEMEN_BIN)")
    out_dir = tempfile.mkdtemp(prefix="turtlemen-rendered-")
    rendered, example_docs = [], None
    for overlay in OVERLAYS:
        text, docs = render(overlay)
        path = os.path.join(out_dir, f"{overlay}.yaml")
        open(path, "w").write(text)
        rendered.append(path)
        if overlay == "example":
            example_docs = docs
        print(f"rendered overlays/{overlay}: {len(docs)} objects")
    validate(rendered)
    lint(rendered)
    check_monitoring_files(out_dir)
    print("starting the example overlay on loopback:")
    start_on_loopback(example_docs, binary)
    shutil.rmtree(out_dir, ignore_errors=True)
    print("manifests: rendered, valid, linted, and every container started and probed")


if __name__ == "__main__":
    main()
