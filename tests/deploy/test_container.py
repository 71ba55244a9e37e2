"""Container build (deploy/Dockerfile) and the local Docker stack (deploy/local/compose.yaml).

Neither can be built or started here (no Docker engine in CI); these are static checks of the files
against the runtime contract the Kubernetes manifests rely on."""

from __future__ import annotations

import json
import re

import pytest

from deploy_helpers import BASE, DEPLOY, PROVISIONING, REPO, load_yaml

DOCKERFILE = DEPLOY / "Dockerfile"
COMPOSE = DEPLOY / "local" / "compose.yaml"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined and comments dropped."""
    text = DOCKERFILE.read_text(encoding="utf-8")
    logical, buf = [], ""
    for line in text.splitlines():
        if not buf and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.rstrip().endswith("\\"):
            buf += line.rstrip()[:-1] + " "
            continue
        buf += line
        logical.append(buf.strip())
        buf = ""
    out = []
    for ln in logical:
        word, _, rest = ln.partition(" ")
        out.append((word.upper(), rest.strip()))
    return out


def args_defaults() -> dict:
    return dict(re.match(r"(\w+)=(\S+)", a).groups() for i, a in instructions() if i == "ARG" and "=" in a)


def stages() -> list[tuple[str, str, list[tuple[str, str]]]]:
    """[(image, stage_name, instructions)]."""
    out = []
    for ins, a in instructions():
        if ins == "FROM":
            m = re.match(r"(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?", a, re.IGNORECASE)
            out.append((m.group(1), (m.group(2) or "").lower(), []))
        elif out:
            out[-1][2].append((ins, a))
    return out


def expand(s: str) -> str:
    defaults = args_defaults()
    return re.sub(r"\$\{(\w+)\}", lambda m: defaults.get(m.group(1), m.group(0)), s)


def test_builder_stage_builds_the_locked_release_binary():
    builder = next(s for s in stages() if s[1] == "builder")
    image = expand(builder[0])
    m = re.fullmatch(r"rust:(\d+)\.(\d+)(?:\.\d+)?-slim(?:-\w+)?", image)
    assert m, f"builder must be a rust:<version>-slim image, got {image}"
    assert (int(m.group(1)), int(m.group(2))) >= (1, 88), f"{image}: the crate needs Rust >= 1.88"
    runs = " ".join(a for i, a in builder[2] if i == "RUN")
    assert "cargo build --release --locked" in runs
    assert "sling-sync-wrapper" in runs


def test_sling_stage_uses_the_pinned_wheel():
    sling = next(s for s in stages() if s[1] == "sling")
    body = " ".join(a for _, a in sling[2])
    script = (REPO / "scripts" / "install-sling.sh").read_text(encoding="utf-8")
    assert 'SLING_VERSION="1.4.11"' in script and "sling-linux-amd64==" in script
    assert "bin/sling-linux-amd64" in script
    assert "install-sling.sh" in body or "sling-linux-amd64==1.4.11" in body


def test_runtime_stage_contract():
    runtime = stages()[-1]
    image = expand(runtime[0])
    assert re.fullmatch(r"debian:[\w.-]*slim", image), f"runtime must be debian-slim, got {image}"
    ins = runtime[2]
    runs = " ".join(a for i, a in ins if i == "RUN")
    assert "ca-certificates" in runs
    assert "--uid 10001" in runs
    users = [a for i, a in ins if i == "USER"]
    assert users and users[-1].split(":")[0] == "10001", "the image must run as uid 10001"
    env = " ".join(a for i, a in ins if i == "ENV")
    for kv in ("HOME=/home/sync", "TMPDIR=/tmp", "SLING_TEMP_DIR=/tmp", "SLING_BIN=/usr/local/bin/sling",
               "SLING_STATE_PATH=/var/lib/sling_state"):
        assert kv in env, f"ENV {kv} missing"
    (volume,) = [json.loads(a) for i, a in ins if i == "VOLUME"]
    assert set(volume) == {"/home/sync", "/tmp", "/var/lib/sling_state"}
    copies = [a for i, a in ins if i == "COPY"]
    assert any(c.endswith("/usr/local/bin/sling") for c in copies)
    assert any(c.endswith("/usr/local/bin/sling-sync-wrapper") for c in copies)
    (entry,) = [json.loads(a) for i, a in ins if i == "ENTRYPOINT"]
    (cmd,) = [json.loads(a) for i, a in ins if i == "CMD"]
    assert entry == ["/usr/local/bin/sling-sync-wrapper"]
    assert cmd == ["--batch"]


def test_dockerignore_keeps_the_context_small():
    lines = (DEPLOY / "Dockerfile.dockerignore").read_text(encoding="utf-8").splitlines()
    ignore = [ln.strip() for ln in lines if ln.strip() and not ln.lstrip().startswith("#")]
    for entry in ("target", ".git", ".tools"):
        assert entry in ignore
    for needed in ("src", "Cargo.toml", "Cargo.lock", "scripts"):
        assert needed not in ignore


def test_manifests_match_the_image_contract(rendered):
    """The pods mount writable volumes exactly where the image declares VOLUMEs."""
    (volume,) = [json.loads(a) for i, a in stages()[-1][2] if i == "VOLUME"]
    cj = next(d for d in rendered if d["kind"] == "CronJob")
    c = cj["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
    mounted = {m["mountPath"] for m in c["volumeMounts"] if not m.get("readOnly")}
    assert set(volume) <= mounted


# ---------------------------------------------------------------------------------------------------
# deploy/local


@pytest.fixture(scope="module")
def compose() -> dict:
    return load_yaml(COMPOSE)


def test_compose_file_is_valid_compose_spec(compose):
    """Validated against the Compose Specification (unknown keys and wrong types are rejected).
    YAML anchors/merge keys are resolved by PyYAML first, as Docker Compose does."""
    compose_spec = pytest.importorskip("compose_spec", reason="pip install -r tests/deploy/requirements.txt")
    parsed = compose_spec.PyCompose.from_json(json.dumps(compose))
    assert set(parsed.service_names()) == set(compose["services"])
    with pytest.raises(ValueError):  # self-check: the validator does reject a misspelt key
        compose_spec.PyCompose.from_json(json.dumps({"services": {"a": {"image": "x", "read_onyl": True}}}))


def host_paths(service: dict) -> list[str]:
    out = []
    for v in service.get("volumes", []):
        src = v.split(":")[0] if isinstance(v, str) else v.get("source", "")
        if src.startswith((".", "/")):
            out.append(src)
    return out


def test_compose_images_are_pinned(compose):
    for name, svc in compose["services"].items():
        image = svc.get("image")
        assert image, f"service {name} has no image"
        assert ":" in image and not image.endswith(":latest"), f"service {name}: pin {image}"


def test_compose_host_paths_exist(compose):
    for name, svc in compose["services"].items():
        for p in host_paths(svc):
            assert (COMPOSE.parent / p).resolve().exists(), f"service {name}: {p} does not exist"
    build = compose["services"]["sling-sync"]["build"]
    assert (COMPOSE.parent / build["context"] / build["dockerfile"]).resolve() == DOCKERFILE.resolve()


def test_compose_greptimedb_ports_and_health(compose):
    g = compose["services"]["greptimedb"]
    assert re.fullmatch(r"greptime/greptimedb:v\d+\.\d+\.\d+", g["image"])
    published = {p.split(":")[0] for p in g["ports"]}
    assert published == {"4000", "4001", "4002", "4003"}
    cmd = " ".join(g["command"])
    for flag in ("--http-addr=0.0.0.0:4000", "--mysql-addr=0.0.0.0:4002", "--postgres-addr=0.0.0.0:4003"):
        assert flag in cmd
    assert "/health" in " ".join(g["healthcheck"]["test"])
    init = " ".join(compose["services"]["greptimedb-init"]["command"])
    collector_db = {e["headers"]["x-greptime-db-name"]
                    for k, e in load_yaml(BASE / "otel-collector" / "config.yaml")["exporters"].items()
                    if k.startswith("otlphttp")}
    assert f"CREATE DATABASE IF NOT EXISTS {collector_db.pop()}" in init


def test_compose_grafana_plugin_and_provisioning(compose):
    g = compose["services"]["grafana"]
    assert re.fullmatch(r"grafana/grafana:\d+\.\d+\.\d+", g["image"])
    env = g["environment"]
    plugin_id = "info8fcc-greptimedb-datasource"
    install = env.get("GF_PLUGINS_PREINSTALL_SYNC") or env.get("GF_PLUGINS_PREINSTALL") or env.get("GF_INSTALL_PLUGINS")
    assert install and install.startswith(plugin_id)
    assert plugin_id in env["GF_PLUGINS_ALLOW_LOADING_UNSIGNED_PLUGINS"]
    mounts = {v.split(":")[1]: (COMPOSE.parent / v.split(":")[0]).resolve() for v in g["volumes"] if v.startswith(".")}
    assert mounts["/etc/grafana/provisioning"] == PROVISIONING.resolve()
    provider = load_yaml(PROVISIONING / "dashboards" / "sling-sync.yaml")["providers"][0]
    dash_dir = mounts[provider["options"]["path"]]
    assert (dash_dir / "sling-sync.json").is_file()


def test_compose_databases_and_wrapper(compose):
    for svc, sql_name in (("mission-db", "mission.sql"), ("command-db", "command.sql")):
        s = compose["services"][svc]
        assert s["image"].startswith("postgres:")
        assert any(v.startswith(f"./init/{sql_name}:/docker-entrypoint-initdb.d/") for v in s["volumes"])
    mission_sql = (COMPOSE.parent / "init" / "mission.sql").read_text(encoding="utf-8")
    assert re.search(r"CREATE TABLE public\.demo_events \(\s*id\s+bigint\s+PRIMARY KEY", mission_sql)
    assert "updated_at" in mission_sql
    pipeline = load_yaml(BASE / "pipelines" / "mission-to-command.yaml")
    for stream in pipeline["streams"]:
        table = stream.split(".")[-1]
        assert f"CREATE TABLE {stream} (" in mission_sql, f"{stream} is not created by init/mission.sql"
        assert table
    schema = pipeline["defaults"]["object"].split(".")[0]
    assert schema in (COMPOSE.parent / "init" / "command.sql").read_text(encoding="utf-8")

    job = compose["services"]["sling-sync"]
    console = compose["services"]["sling-sync-console"]
    assert job["command"] == ["--batch"]
    assert console["command"] == [] and console["tty"] and console["stdin_open"]
    env = job["environment"]
    for conn in (pipeline["source"], pipeline["target"]):
        assert conn in env, f"compose wrapper lacks connection {conn}"
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://otel-collector:4317"
    assert job["read_only"] is True and "/tmp" in job["tmpfs"]


def test_readme_states_what_was_not_run():
    readme = (DEPLOY / "README.md").read_text(encoding="utf-8")
    assert "not executed in ci" in readme.lower()
    for pattern in (r"kubectl (-n sling-sync )?scale deploy/sling-sync-console --replicas=1",
                    r"kubectl (-n sling-sync )?exec -it deploy/sling-sync-console -- sling-sync-wrapper",
                    r"scripts/render-deploy\.sh", r"docker build", r"kubectl (-n sling-sync )?create secret generic sling-connections"):
        assert re.search(pattern, readme), f"deploy/README.md should show `{pattern}`"


def test_no_registry_host_names_in_deploy_files():
    """Package registries are reached through their clients only; their hosts are not written down."""
    hosts = ("pypi.org", "files.pythonhosted.org", "registry.npmjs.org", "crates.io", "deb.debian.org")
    for path in list(DEPLOY.rglob("*")) + list((REPO / "dashboards").rglob("*")):
        if path.is_file() and path.suffix in ("", ".yaml", ".yml", ".json", ".md", ".sql", ".dockerignore"):
            text = path.read_text(encoding="utf-8", errors="replace")
            for h in hosts:
                assert h not in text, f"{path.relative_to(REPO)} names {h}"
