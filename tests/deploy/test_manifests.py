"""Kubernetes manifests: the kustomize base renders, passes strict schema validation, matches
deploy/deployment.yaml, and the CronJob / console / collector objects keep their contract."""

from __future__ import annotations

import re
import subprocess

import kubernetes_validate
import pytest
import yaml

from deploy_helpers import (
    ALL_IN_ONE,
    BASE,
    HEADER_LINES,
    K8S_VERSIONS,
    REPO,
    find,
    in_ci,
    kubectl,
    load_yaml,
    load_yaml_docs,
)

REQUIRED_LABELS = (
    "app.kubernetes.io/name",
    "app.kubernetes.io/instance",
    "app.kubernetes.io/component",
    "app.kubernetes.io/part-of",
    "app.kubernetes.io/version",
)
NAMESPACE = "sling-sync"
# user:password@ in a URL (scheme://user:pass@host)
CREDENTIAL_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^/\s:@'\"]+:[^@\s/'\"]+@")


def duration_seconds(text: str) -> int:
    units = {"s": 1, "m": 60, "h": 3600}
    total = 0
    for num, unit in re.findall(r"(\d+)([smh])", text):
        total += int(num) * units[unit]
    assert total > 0, f"cannot parse duration {text!r}"
    return total


def validate_strict(doc: dict, version: str) -> str | None:
    try:
        kubernetes_validate.validate(doc, version, strict=True)
    except kubernetes_validate.ValidationError as e:
        path = "/".join(str(p) for p in e.path)
        return f"{doc.get('kind')}/{doc.get('metadata', {}).get('name')}: {e.message} (at {path or '<root>'})"
    return None


def pod_spec(doc: dict) -> dict:
    if doc["kind"] == "CronJob":
        return doc["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return doc["spec"]["template"]["spec"]


def pod_labels(doc: dict) -> dict:
    if doc["kind"] == "CronJob":
        return doc["spec"]["jobTemplate"]["spec"]["template"]["metadata"]["labels"]
    return doc["spec"]["template"]["metadata"]["labels"]


def env_map(container: dict) -> dict:
    out = {}
    for e in container.get("env", []):
        assert e["name"] not in out, f"duplicate env {e['name']}"
        out[e["name"]] = e.get("value", e.get("valueFrom"))
    return out


def mounts(container: dict) -> dict:
    return {m["mountPath"]: m for m in container.get("volumeMounts", [])}


def volumes(spec: dict) -> dict:
    return {v["name"]: v for v in spec.get("volumes", [])}


def workloads(docs):
    return [d for d in docs if d["kind"] in ("CronJob", "Deployment")]


# ---------------------------------------------------------------------------------------------------
# render, schema, drift


def test_base_renders(rendered):
    kinds = sorted(d["kind"] for d in rendered)
    for kind in ("CronJob", "Deployment", "Service", "ConfigMap", "PersistentVolumeClaim", "Namespace"):
        assert kind in kinds, f"{kind} missing from the render: {kinds}"


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_rendered_objects_pass_strict_schema_validation(rendered, version):
    errors = [err for d in rendered if (err := validate_strict(d, version))]
    assert not errors, f"strict validation against Kubernetes {version} failed:\n" + "\n".join(errors)


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_all_in_one_passes_strict_schema_validation(version):
    docs = load_yaml_docs(ALL_IN_ONE.read_text(encoding="utf-8"))
    assert docs, "deploy/deployment.yaml has no documents"
    errors = [err for d in docs if (err := validate_strict(d, version))]
    assert not errors, f"deploy/deployment.yaml vs Kubernetes {version}:\n" + "\n".join(errors)


def test_strict_validation_rejects_unknown_fields():
    """Self-check: strict mode really rejects a misspelt field (so the tests above can fail)."""
    bad = {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": "x"},
        "spec": {
            "schedule": "*/5 * * * *",
            "jobTemplate": {"spec": {"template": {"spec": {"containers": [
                {"name": "a", "image": "b", "securityContext": {"readOnlyRootFS": True}}]}}}},
        },
    }
    assert validate_strict(bad, K8S_VERSIONS[-1]) is not None


def test_secret_example_validates():
    doc = load_yaml(BASE / "secret.example.yaml")
    for version in K8S_VERSIONS:
        assert validate_strict(doc, version) is None


def test_all_in_one_matches_the_render(rendered_text):
    text = ALL_IN_ONE.read_text(encoding="utf-8")
    lines = text.splitlines(keepends=True)
    header, body = lines[:HEADER_LINES], "".join(lines[HEADER_LINES:])
    assert all(h.startswith("#") for h in header), "deploy/deployment.yaml must start with a 2-line comment header"
    assert "generated" in header[0].lower() and "scripts/render-deploy.sh" in "".join(header)
    assert body == rendered_text, (
        "deploy/deployment.yaml is out of date with deploy/base: run scripts/render-deploy.sh"
    )


def test_render_script_check_mode_passes():
    if kubectl() is None and not in_ci():
        pytest.skip("kubectl is not installed (and CI is not 'true')")
    proc = subprocess.run(["bash", str(REPO / "scripts" / "render-deploy.sh"), "--check"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr


# ---------------------------------------------------------------------------------------------------
# labels and namespace


def test_every_object_has_the_recommended_labels(rendered):
    for d in rendered:
        labels = d["metadata"].get("labels", {})
        missing = [k for k in REQUIRED_LABELS if not labels.get(k)]
        assert not missing, f"{d['kind']}/{d['metadata']['name']} lacks labels {missing}"
    for d in workloads(rendered):
        missing = [k for k in REQUIRED_LABELS if not pod_labels(d).get(k)]
        assert not missing, f"pod template of {d['kind']}/{d['metadata']['name']} lacks labels {missing}"


def test_selectors_match_templates_and_avoid_version(rendered):
    for d in rendered:
        if d["kind"] == "Deployment":
            sel = d["spec"]["selector"]["matchLabels"]
            tmpl = pod_labels(d)
        elif d["kind"] == "Service":
            sel = d["spec"]["selector"]
            tmpl = pod_labels(find(rendered, "Deployment", "otel-collector"))
        else:
            continue
        assert "app.kubernetes.io/version" not in sel, f"{d['metadata']['name']}: version in a selector"
        assert all(tmpl.get(k) == v for k, v in sel.items()), f"{d['metadata']['name']}: selector {sel} != {tmpl}"


def test_everything_lives_in_the_sling_sync_namespace(rendered):
    ns = find(rendered, "Namespace")
    assert ns["metadata"]["name"] == NAMESPACE
    assert ns["metadata"]["labels"].get("pod-security.kubernetes.io/enforce") == "restricted"
    for d in rendered:
        if d["kind"] != "Namespace":
            assert d["metadata"].get("namespace") == NAMESPACE, f"{d['kind']}/{d['metadata']['name']}"


# ---------------------------------------------------------------------------------------------------
# the CronJob


def sync_container(cj: dict) -> dict:
    containers = pod_spec(cj)["containers"]
    assert len(containers) == 1
    return containers[0]


def test_cronjob_schedule_and_concurrency(rendered):
    cj = find(rendered, "CronJob", "sling-sync")
    spec = cj["spec"]
    assert spec["schedule"] == "*/5 * * * *"
    assert spec["concurrencyPolicy"] == "Forbid"
    assert 0 < spec["startingDeadlineSeconds"] < 300, "a missed slot must not linger into the next one"
    assert 1 <= spec["successfulJobsHistoryLimit"] <= 10
    assert 1 <= spec["failedJobsHistoryLimit"] <= 10


def test_cronjob_deadlines_fit_the_retry_budget(rendered):
    cj = find(rendered, "CronJob", "sling-sync")
    job = cj["spec"]["jobTemplate"]["spec"]
    env = env_map(sync_container(cj))
    assert job["backoffLimit"] == 0, "the wrapper retries by itself; Kubernetes must not restart the job"
    attempts = 1 + int(env["SYNC_MAX_RETRIES"])
    per_attempt = duration_seconds(env["SLING_TIMEOUT"])
    budget = attempts * per_attempt
    deadline = job["activeDeadlineSeconds"]
    assert deadline > budget, f"activeDeadlineSeconds {deadline} < {attempts} attempts x {per_attempt}s"
    assert deadline <= budget + 3600, f"activeDeadlineSeconds {deadline} is far above the retry budget {budget}"
    grace = pod_spec(cj)["terminationGracePeriodSeconds"]
    cancel_grace = duration_seconds(env.get("SYNC_CANCEL_GRACE", "10s"))
    assert grace >= 30 and grace > cancel_grace + 5, "SIGINT grace + telemetry flush must fit"
    assert pod_spec(cj)["restartPolicy"] == "Never"


def test_cronjob_container_args_and_env(rendered):
    c = sync_container(find(rendered, "CronJob", "sling-sync"))
    assert c["args"] == ["--batch"]
    assert "command" not in c, "the image ENTRYPOINT is the wrapper"
    env = env_map(c)
    expected = {
        "PIPELINE_DIR": "/etc/sling/pipelines",
        "SLING_STATE_PATH": "/var/lib/sling_state",
        "SYNC_MODE": "",
        "SYNC_MAX_RETRIES": "3",
        "SYNC_BACKOFF_BASE": "5s",
        "SYNC_BACKOFF_MAX": "5m",
        "SLING_TIMEOUT": "30m",
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://otel-collector:4317",
        "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
        "OTEL_SERVICE_NAME": "sling-sync-wrapper",
        "SLING_BIN": "/usr/local/bin/sling",
        "HOME": "/home/sync",
    }
    for k, v in expected.items():
        assert env.get(k) == v, f"env {k}={env.get(k)!r}, expected {v!r}"
    assert env.get("MISSION_CLUSTER_ID"), "MISSION_CLUSTER_ID must be set"
    assert "SYNC_JOB_ID" not in env, "SYNC_JOB_ID must stay unset: each run gets a new id (and trace)"
    # Connections come from env.yaml in $SLING_HOME_DIR (test_connections.py), not from envFrom.
    assert env.get("SLING_HOME_DIR") == "/etc/sling/connections"
    assert "envFrom" not in c


def test_cronjob_volumes(rendered):
    cj = find(rendered, "CronJob", "sling-sync")
    spec, c = pod_spec(cj), sync_container(cj)
    env, m, v = env_map(c), mounts(c), volumes(spec)
    pipelines = m[env["PIPELINE_DIR"]]
    assert pipelines.get("readOnly") is True
    assert v[pipelines["name"]]["configMap"]["name"] == "sling-pipelines"
    state = m[env["SLING_STATE_PATH"]]
    assert v[state["name"]]["persistentVolumeClaim"]["claimName"] == "sling-state"
    for path in ("/home/sync", "/tmp"):
        assert "emptyDir" in v[m[path]["name"]], f"{path} must be an emptyDir (read-only root filesystem)"
    pvc = find(rendered, "PersistentVolumeClaim", "sling-state")
    assert pvc["spec"]["accessModes"] == ["ReadWriteOnce"]
    assert pvc["spec"]["resources"]["requests"]["storage"] == "1Gi"


def test_cronjob_resources(rendered):
    res = sync_container(find(rendered, "CronJob", "sling-sync"))["resources"]
    assert res["requests"]["cpu"] and res["requests"]["memory"]
    assert res["limits"]["cpu"] and res["limits"]["memory"]
    mem_mi = int(res["limits"]["memory"].removesuffix("Mi"))
    assert mem_mi >= 256, "Sling alone peaks around 123 MB RSS"


def assert_restricted(doc: dict):
    spec = pod_spec(doc)
    name = f"{doc['kind']}/{doc['metadata']['name']}"
    psc = spec["securityContext"]
    assert psc["runAsNonRoot"] is True, name
    assert psc["runAsUser"] == 10001, name
    assert psc["fsGroup"] == 10001, name
    assert psc["seccompProfile"]["type"] == "RuntimeDefault", name
    assert spec.get("automountServiceAccountToken") is False, name
    for c in spec["containers"] + spec.get("initContainers", []):
        sc = c["securityContext"]
        assert sc["allowPrivilegeEscalation"] is False, f"{name}/{c['name']}"
        assert sc["readOnlyRootFilesystem"] is True, f"{name}/{c['name']}"
        assert sc["capabilities"]["drop"] == ["ALL"], f"{name}/{c['name']}"
        assert not sc["capabilities"].get("add"), f"{name}/{c['name']}"
        assert sc.get("privileged") is not True, f"{name}/{c['name']}"
        assert c.get("resources", {}).get("limits"), f"{name}/{c['name']} has no limits"


def test_every_workload_is_restricted(rendered):
    found = workloads(rendered)
    assert len(found) == 3
    for d in found:
        assert_restricted(d)


# ---------------------------------------------------------------------------------------------------
# the console


def test_console_deployment_mirrors_the_cronjob(rendered):
    cj = find(rendered, "CronJob", "sling-sync")
    dep = find(rendered, "Deployment", "sling-sync-console")
    assert dep["spec"]["replicas"] == 0
    assert dep["spec"]["strategy"]["type"] == "Recreate", "two pods must not share the RWO state volume"
    job_c, con_c = sync_container(cj), pod_spec(dep)["containers"][0]
    assert con_c["image"] == job_c["image"]
    assert con_c["command"] == ["sleep", "infinity"]
    assert "args" not in con_c
    assert con_c["stdin"] is True and con_c["tty"] is True
    ignore = {"OTEL_RESOURCE_ATTRIBUTES"}  # names the workload kind
    assert {k: v for k, v in env_map(con_c).items() if k not in ignore} == \
        {k: v for k, v in env_map(job_c).items() if k not in ignore}
    assert con_c.get("envFrom") == job_c.get("envFrom")
    assert con_c["volumeMounts"] == job_c["volumeMounts"]
    assert pod_spec(dep)["volumes"] == pod_spec(cj)["volumes"]
    assert con_c["resources"] == job_c["resources"]
    assert pod_spec(dep)["terminationGracePeriodSeconds"] >= 30


# ---------------------------------------------------------------------------------------------------
# secrets vs config


def test_connection_urls_come_from_a_secret_not_a_configmap(rendered):
    assert not [d for d in rendered if d["kind"] == "Secret"], "no real Secret may be rendered from the base"
    kust = load_yaml(BASE / "kustomization.yaml")
    assert "secret.example.yaml" not in kust.get("resources", [])
    assert "secretGenerator" not in kust, "the secretGenerator stays a commented example"
    for d in rendered:
        if d["kind"] != "ConfigMap":
            continue
        for key, value in (d.get("data") or {}).items():
            assert not CREDENTIAL_URL.search(value), f"ConfigMap {d['metadata']['name']}/{key} holds a credential URL"


def test_credential_pattern_self_check():
    assert CREDENTIAL_URL.search("postgresql://user:pass@db:5432/x")
    assert not CREDENTIAL_URL.search("http://greptimedb:4000/v1/otlp")


def test_pipelines_use_connection_names_present_in_the_secret_example(rendered):
    secret = load_yaml(BASE / "secret.example.yaml")
    keys = set(yaml.safe_load(secret["stringData"]["env.yaml"])["connections"])
    assert {"MISSION_PG", "COMMAND_PG"} <= keys
    cm = find(rendered, "ConfigMap", "sling-pipelines")
    assert cm["data"], "no pipeline in ConfigMap sling-pipelines"
    for name, text in cm["data"].items():
        assert name.endswith((".yaml", ".yml"))
        rep = yaml.safe_load(text)
        for role in ("source", "target"):
            assert "://" not in rep[role], f"{name}: {role} must be a connection NAME, not a URL"
            assert rep[role] in keys, f"{name}: {role} {rep[role]} is not a key of secret.example.yaml"
        defaults = rep.get("defaults", {})
        assert defaults.get("mode") == "incremental"
        assert defaults.get("primary_key") and defaults.get("update_key")
        assert rep["streams"], f"{name}: no streams"
