"""Connection secrets as a file (checkov CKV_K8S_35): Secret sling-connections is Sling's env.yaml,
mounted read-only at $SLING_HOME_DIR; no connection URL is in any pod's environment. The last test
runs the real wrapper and the real Sling 1.4.11 against a directory shaped like a mounted Secret."""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import subprocess
import tempfile
from pathlib import Path

import pytest
import yaml

from deploy_helpers import BASE, DEPLOY, REPO, find, in_ci, kubectl, load_yaml, load_yaml_docs, render_base

SECRET = "sling-connections"
URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")


def pod_spec(doc: dict) -> dict:
    if doc["kind"] == "CronJob":
        return doc["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return doc["spec"]["template"]["spec"]


def sync_workloads(docs):
    return [find(docs, "CronJob", "sling-sync"), find(docs, "Deployment", "sling-sync-console")]


def env_yaml_mount(doc: dict) -> tuple[str, dict, dict]:
    """(SLING_HOME_DIR, its volumeMount, its volume) for the one sync container of a workload."""
    spec = pod_spec(doc)
    (c,) = spec["containers"]
    env = {e["name"]: e for e in c.get("env", [])}
    home = env["SLING_HOME_DIR"]["value"]
    (mount,) = [m for m in c["volumeMounts"] if m["mountPath"] == home]
    (volume,) = [v for v in spec["volumes"] if v["name"] == mount["name"]]
    return home, mount, volume


def test_env_yaml_secret_is_mounted_read_only_at_sling_home_dir(rendered):
    for doc in sync_workloads(rendered):
        name = f"{doc['kind']}/{doc['metadata']['name']}"
        home, mount, volume = env_yaml_mount(doc)
        assert mount.get("readOnly") is True, f"{name}: the connections mount must be read-only"
        assert "subPath" not in mount, f"{name}: a subPath mount would not see Secret updates"
        secret = volume.get("secret")
        assert secret and secret["secretName"] == SECRET, f"{name}: {home} must be Secret {SECRET}"
        assert secret["items"] == [{"key": "env.yaml", "path": "env.yaml"}], f"{name}: only env.yaml, as env.yaml"
        assert secret["defaultMode"] == 0o440, f"{name}: owner+group read only (fsGroup gives the group)"
        assert secret.get("optional") is not True, f"{name}: a missing Secret must stop the pod"
        assert pod_spec(doc)["securityContext"]["fsGroup"] == 10001


def test_no_connection_reaches_the_environment(rendered):
    """No envFrom, no secretKeyRef, no URL in a value: every Sling child would inherit it."""
    for doc in sync_workloads(rendered):
        name = f"{doc['kind']}/{doc['metadata']['name']}"
        for c in pod_spec(doc)["containers"] + pod_spec(doc).get("initContainers", []):
            assert not c.get("envFrom"), f"{name}/{c['name']}: envFrom puts every Secret key into the environment"
            for e in c.get("env", []):
                assert "secretKeyRef" not in (e.get("valueFrom") or {}), f"{name}: env {e['name']} comes from a Secret"
                value = e.get("value", "")
                if URL.match(value):
                    assert e["name"] == "OTEL_EXPORTER_OTLP_ENDPOINT" and value.startswith("http://"), \
                        f"{name}: env {e['name']} holds a URL"


def test_secret_example_is_a_sling_env_yaml_with_the_pipelines_connections(rendered):
    secret = load_yaml(BASE / "secret.example.yaml")
    assert set(secret["stringData"]) == {"env.yaml"}, "the Secret holds one key, env.yaml"
    env_yaml = yaml.safe_load(secret["stringData"]["env.yaml"])
    conns = env_yaml["connections"]
    for name, conn in conns.items():
        assert name == name.upper(), f"{name}: Sling upper-cases connection names"
        assert "CHANGE_ME" in conn["url"], f"{name}: the example must not carry a real password"
    cm = find(rendered, "ConfigMap", "sling-pipelines")
    for file, text in cm["data"].items():
        rep = yaml.safe_load(text)
        for role in ("source", "target"):
            assert rep[role] in conns, f"{file}: {role} {rep[role]} is not a connection of the example env.yaml"


def test_env_var_component_restores_the_old_form():
    """deploy/components/env-var-connections: envFrom back, env.yaml mount and SLING_HOME_DIR gone."""
    render_base()  # same skip/fail rules when kubectl is missing
    with tempfile.TemporaryDirectory() as tmp:
        rel = lambda p: os.path.relpath(p, tmp)  # noqa: E731  (kustomize refuses absolute paths)
        Path(tmp, "kustomization.yaml").write_text(yaml.safe_dump({
            "resources": [rel(BASE)],
            "components": [rel(DEPLOY / "components" / "env-var-connections")],
        }))
        proc = subprocess.run([kubectl(), "kustomize", tmp], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    docs = load_yaml_docs(proc.stdout)
    for doc in sync_workloads(docs):
        spec = pod_spec(doc)
        c = spec["containers"][0]
        assert c["envFrom"] == [{"secretRef": {"name": SECRET}}]
        assert "SLING_HOME_DIR" not in {e["name"] for e in c["env"]}
        assert not [v for v in spec["volumes"] if "secret" in v]
        assert {m["name"] for m in c["volumeMounts"]} == {v["name"] for v in spec["volumes"]}
    # The console stays ready without SLING_HOME_DIR (its probe only checks the file when it is set).
    probe = " ".join(pod_spec(find(docs, "Deployment", "sling-sync-console"))["containers"][0]
                     ["readinessProbe"]["exec"]["command"])
    assert '[ -z "$SLING_HOME_DIR" ]' in probe


def test_console_probes(rendered):
    c = pod_spec(find(rendered, "Deployment", "sling-sync-console"))["containers"][0]
    ready = c["readinessProbe"]["exec"]["command"]
    assert ready[:2] == ["/bin/sh", "-c"]
    assert "$SLING_HOME_DIR/env.yaml" in ready[2] and 'test -w "$SLING_STATE_PATH"' in ready[2]
    assert c["livenessProbe"]["exec"]["command"] == ["/usr/local/bin/sling-sync-wrapper", "--version"]
    for probe in ("readinessProbe", "livenessProbe"):
        assert c[probe]["periodSeconds"] >= 30, f"{probe}: the console pod idles; no need to poll often"


@pytest.fixture
def open_tmp():
    """A temp dir the unprivileged user can reach (pytest's tmp_path sits under a 0700 dir)."""
    path = Path(tempfile.mkdtemp(prefix="sling-deploy-test-"))
    os.chmod(path, 0o755)
    yield path
    for p in [path, *path.rglob("*")]:
        if p.is_dir() and not p.is_symlink():
            os.chmod(p, 0o755)
    shutil.rmtree(path)


def test_console_readiness_command_means_what_it_says(open_tmp):
    """Run the probe's shell command: ready with a readable env.yaml and a writable state dir, not
    ready without the file or with a read-only state dir (as a non-root user, like the pod)."""
    docs = load_yaml_docs((DEPLOY / "deployment.yaml").read_text(encoding="utf-8"))
    script = pod_spec(find(docs, "Deployment", "sling-sync-console"))["containers"][0]["readinessProbe"]["exec"]["command"][2]
    tmp_path = open_tmp
    home, state = tmp_path / "conn", tmp_path / "state"
    home.mkdir()
    state.mkdir()
    (home / "env.yaml").write_text("connections: {}\n")

    def ready(**env) -> bool:
        return run_as_nobody(["/bin/sh", "-c", script], env).returncode == 0

    os.chmod(state, 0o777)
    assert ready(SLING_HOME_DIR=str(home), SLING_STATE_PATH=str(state))
    assert ready(SLING_STATE_PATH=str(state)), "without SLING_HOME_DIR only the state dir counts"
    assert not ready(SLING_HOME_DIR=str(tmp_path / "missing"), SLING_STATE_PATH=str(state))
    os.chmod(state, 0o555)
    assert not ready(SLING_HOME_DIR=str(home), SLING_STATE_PATH=str(state))


# ---------------------------------------------------------------------------------------------------
# the real thing: wrapper + Sling 1.4.11 with $SLING_HOME_DIR on a read-only, Secret-shaped directory

NOBODY = 65534


def run_as_nobody(cmd: list[str], env: dict, **kw) -> subprocess.CompletedProcess:
    """As root, drop to uid/gid 65534 (root ignores file modes, so read-only would prove nothing)."""
    base = {"PATH": "/usr/local/bin:/usr/bin:/bin"}
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("setpriv (util-linux) is needed to run as a non-root user")
        cmd = [setpriv, f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", *cmd]
    return subprocess.run(cmd, env={**base, **env}, capture_output=True, text=True, timeout=120, **kw)


def tool(path: Path, what: str) -> Path:
    if path.is_file() and os.access(path, os.X_OK):
        return path
    if in_ci():
        pytest.fail(f"{what} is required in CI (CI=true): {path} is missing")
    pytest.skip(f"{what} not found at {path}")


def secret_volume(root: Path, env_yaml: str) -> Path:
    """The layout the kubelet gives a Secret volume: env.yaml -> ..data/env.yaml, ..data -> a
    timestamped dir; root-owned, group-readable (fsGroup), nothing writable."""
    vol = root / "connections"
    stamp = vol / "..2026_01_01_00_00_00.000000001"
    stamp.mkdir(parents=True)
    (stamp / "env.yaml").write_text(env_yaml)
    (vol / "..data").symlink_to(stamp.name)
    (vol / "env.yaml").symlink_to("..data/env.yaml")
    gid = NOBODY if os.geteuid() == 0 else os.getegid()
    for p in (vol, stamp, stamp / "env.yaml"):
        if os.geteuid() == 0:
            os.chown(p, 0, gid)
        os.chmod(p, 0o440 if p.is_file() else 0o550)
    return vol


def test_real_sling_reads_env_yaml_from_a_read_only_secret_mount(open_tmp):
    tmp_path = open_tmp
    work = tmp_path / "work"
    for d in ("work", "home", "state", "pipelines", "bin"):
        (tmp_path / d).mkdir()
    # Copies: the checkout may sit under a directory the unprivileged user cannot enter.
    wrapper = shutil.copy2(tool(REPO / "target" / "debug" / "sling-sync-wrapper", "the wrapper (cargo build)"),
                           tmp_path / "bin")
    sling = shutil.copy2(tool(REPO / ".tools" / "sling-1.4.11" / "sling", "Sling 1.4.11 (scripts/install-sling.sh)"),
                         tmp_path / "bin")
    src, dst = work / "mission.db", work / "command.db"
    with sqlite3.connect(src) as db:
        db.execute("create table events (id integer primary key, updated_at text)")
        db.executemany("insert into events values (?, ?)", [(i, f"2026-01-01 00:00:{i:02d}") for i in range(1, 8)])
    vol = secret_volume(tmp_path, yaml.safe_dump({"connections": {
        "MISSION_LITE": {"url": f"sqlite://{src}"},
        "COMMAND_LITE": {"url": f"sqlite://{dst}"},
    }}))
    (tmp_path / "pipelines" / "lite.yaml").write_text(
        "source: MISSION_LITE\ntarget: COMMAND_LITE\n"
        "defaults: {mode: full-refresh, object: 'main.{stream_table}_copy'}\nstreams:\n  main.events:\n")
    if os.geteuid() == 0:
        for d in ("work", "home", "state"):
            os.chown(tmp_path / d, NOBODY, NOBODY)
        os.chown(src, NOBODY, NOBODY)
    env = {
        "HOME": str(tmp_path / "home"), "TMPDIR": str(tmp_path / "home"),
        "SLING_HOME_DIR": str(vol), "SLING_BIN": str(sling), "MISSION_CLUSTER_ID": "deploy-test",
        "PIPELINE_DIR": str(tmp_path / "pipelines"), "SLING_STATE_PATH": str(tmp_path / "state"),
        "SYNC_LOG_FORMAT": "text", "SYNC_MAX_RETRIES": "0",
        # No collector here: an endpoint that refuses at once keeps the flush short.
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9", "SYNC_TELEMETRY_FLUSH_TIMEOUT": "1s",
    }
    noop = run_as_nobody([str(wrapper), "--batch", "--mode", "noop"], env, cwd=work)
    assert noop.returncode == 0, noop.stdout + noop.stderr
    assert f"`MISSION_LITE` from {vol}/env.yaml" in noop.stdout, noop.stdout
    assert "`COMMAND_LITE`: reachable (sling conns discover succeeded)" in noop.stdout, noop.stdout

    run = run_as_nobody([str(wrapper), "--batch"], env, cwd=work)
    assert run.returncode == 0, run.stdout + run.stderr
    with sqlite3.connect(dst) as db:
        assert db.execute("select count(*) from events_copy").fetchone() == (7,)
    # Sling wrote nothing into the read-only directory (its .sling.db is simply not kept there).
    assert sorted(p.name for p in vol.iterdir()) == ["..2026_01_01_00_00_00.000000001", "..data", "env.yaml"]
