"""OpenTelemetry Collector configuration (deploy/base/otel-collector/config.yaml) and its objects."""

from __future__ import annotations

import yaml

from deploy_helpers import BASE, DEPLOY, collector_config, find, load_yaml

SIGNALS = ("traces", "logs", "metrics")
GREPTIME_PIPELINE_HEADERS = ("x-greptime-pipeline-name", "x-greptime-log-pipeline-name")


def ctype(component_id: str) -> str:
    """`otlphttp/greptime_traces` -> `otlphttp`."""
    return component_id.split("/", 1)[0]


def pipeline_exporters(cfg: dict, signal: str) -> list[str]:
    return cfg["service"]["pipelines"][signal]["exporters"]


def greptime_exporter(cfg: dict, signal: str) -> dict:
    ids = [e for e in pipeline_exporters(cfg, signal) if ctype(e) == "otlphttp"]
    assert len(ids) == 1, f"{signal}: expected exactly one otlphttp exporter, found {ids}"
    return cfg["exporters"][ids[0]]


def problems(cfg: dict) -> list[str]:
    """Structural checks; returns human-readable problems (empty = fine)."""
    out = []
    for section in ("receivers", "processors", "exporters", "extensions"):
        if not isinstance(cfg.get(section), dict):
            out.append(f"section {section} missing")
    service = cfg.get("service", {})
    for ext in service.get("extensions", []):
        if ext not in cfg.get("extensions", {}):
            out.append(f"service.extensions names undeclared extension {ext}")
    for name, p in service.get("pipelines", {}).items():
        for kind in ("receivers", "processors", "exporters"):
            for comp in p.get(kind, []):
                if comp not in (cfg.get(kind) or {}):
                    out.append(f"pipeline {name}: {kind[:-1]} {comp} is not declared")
    for section in ("exporters", "receivers", "processors"):
        for comp in cfg.get(section) or {}:
            if ctype(comp) == "logging":
                out.append(f"{section}: `logging` was removed in collector v0.111; use `debug`")
    return out


def test_config_parses_and_references_only_declared_components():
    assert problems(collector_config()) == []


def test_reference_check_catches_undeclared_components():
    cfg = collector_config()
    cfg["service"]["pipelines"]["traces"]["exporters"].append("otlphttp/missing")
    cfg["service"]["extensions"].append("file_storage/missing")
    cfg["exporters"]["logging"] = {}
    found = problems(cfg)
    assert len(found) == 3, found


def test_every_signal_has_a_pipeline_with_memory_limiter_first_then_batch():
    cfg = collector_config()
    for signal in SIGNALS:
        p = cfg["service"]["pipelines"][signal]
        assert p["receivers"] == ["otlp"]
        assert p["processors"][0] == "memory_limiter", f"{signal}: memory_limiter must come first"
        assert "batch" in p["processors"][1:]
    ml = cfg["processors"]["memory_limiter"]
    assert ml["check_interval"] and ("limit_percentage" in ml or "limit_mib" in ml)


def test_receivers_and_health_check_listen_on_all_interfaces():
    cfg = collector_config()
    protocols = cfg["receivers"]["otlp"]["protocols"]
    assert protocols["grpc"]["endpoint"] == "0.0.0.0:4317"
    assert protocols["http"]["endpoint"] == "0.0.0.0:4318"
    assert cfg["extensions"]["health_check"]["endpoint"] == "0.0.0.0:13133"
    assert "health_check" in cfg["service"]["extensions"]


def test_one_otlphttp_exporter_per_signal_to_greptimedb():
    cfg = collector_config()
    seen = set()
    for signal in SIGNALS:
        for e in pipeline_exporters(cfg, signal):
            assert ctype(e) in ("otlphttp", "debug"), f"{signal}: GreptimeDB needs otlphttp, not {e}"
        exp = greptime_exporter(cfg, signal)
        assert id(exp) not in seen, "each signal needs its own exporter (different headers)"
        seen.add(id(exp))
        endpoint = exp["endpoint"]
        assert endpoint.startswith("http") and endpoint.endswith("/v1/otlp"), (
            f"{signal}: endpoint {endpoint} must be the base URL ending in /v1/otlp (the exporter appends /v1/{signal})"
        )
        assert exp.get("encoding", "proto") == "proto", "GreptimeDB rejects OTLP/JSON"
        assert exp["headers"].get("x-greptime-db-name"), f"{signal}: x-greptime-db-name missing"
        assert exp["retry_on_failure"]["enabled"] is True
        assert exp["sending_queue"]["enabled"] is True
    dbs = {greptime_exporter(cfg, s)["headers"]["x-greptime-db-name"] for s in SIGNALS}
    assert len(dbs) == 1, f"all signals should go to one database, got {dbs}"


def test_trace_pipeline_header_only_on_traces():
    cfg = collector_config()
    traces = greptime_exporter(cfg, "traces")["headers"]
    assert traces.get("x-greptime-pipeline-name") == "greptime_trace_v1"
    for signal in ("logs", "metrics"):
        headers = greptime_exporter(cfg, signal)["headers"]
        for h in GREPTIME_PIPELINE_HEADERS:
            assert h not in headers, f"{signal} exporter must not send {h} (logs would be rejected)"
        assert "greptime_trace_v1" not in yaml.safe_dump(headers)


def test_sending_queues_use_a_declared_file_storage_on_a_writable_volume(rendered):
    cfg = collector_config()
    storages = {greptime_exporter(cfg, s)["sending_queue"].get("storage") for s in SIGNALS}
    assert len(storages) == 1 and None not in storages, storages
    storage = storages.pop()
    assert ctype(storage) == "file_storage"
    assert storage in cfg["extensions"] and storage in cfg["service"]["extensions"]
    directory = cfg["extensions"][storage]["directory"]
    compaction_dir = cfg["extensions"][storage].get("compaction", {}).get("directory", directory)

    dep = find(rendered, "Deployment", "otel-collector")
    spec = dep["spec"]["template"]["spec"]
    container = spec["containers"][0]
    vols = {v["name"]: v for v in spec["volumes"]}
    by_path = {m["mountPath"]: m for m in container["volumeMounts"]}
    for path in {directory, compaction_dir}:
        assert path in by_path, f"{path} (file_storage) is not a mounted volume: read-only root filesystem"
        mount = by_path[path]
        assert not mount.get("readOnly")
        vol = vols[mount["name"]]
        assert "emptyDir" in vol or "persistentVolumeClaim" in vol


def test_debug_exporter_not_logging():
    cfg = collector_config()
    assert "debug" in cfg["exporters"]
    assert not [e for e in cfg["exporters"] if ctype(e) == "logging"]


def test_collector_objects(rendered):
    dep = find(rendered, "Deployment", "otel-collector")
    spec = dep["spec"]["template"]["spec"]
    c = spec["containers"][0]
    image = c["image"]
    assert image.startswith("otel/opentelemetry-collector-contrib:"), image
    tag = image.rsplit(":", 1)[1]
    assert tag != "latest" and any(ch.isdigit() for ch in tag), f"pin the collector image: {image}"
    major, minor = (int(x) for x in tag.split(".")[:2])
    assert (major, minor) >= (0, 111), "the debug exporter needs collector >= 0.111"
    for probe in ("livenessProbe", "readinessProbe"):
        port = c[probe]["httpGet"]["port"]
        ports = {p["name"]: p["containerPort"] for p in c["ports"]}
        assert ports.get(port, port) == 13133, f"{probe} must hit the health_check extension"
    # The mounted config is exactly the file in the repository.
    cm_name = next(v["configMap"]["name"] for v in spec["volumes"] if "configMap" in v)
    cm = find(rendered, "ConfigMap", cm_name)
    assert cm["data"]["config.yaml"] == (BASE / "otel-collector" / "config.yaml").read_text(encoding="utf-8")
    mount = next(m for m in c["volumeMounts"] if m["name"] == next(v["name"] for v in spec["volumes"] if "configMap" in v))
    assert mount["mountPath"] == "/etc/otelcol-contrib"

    svc = find(rendered, "Service", "otel-collector")
    ports = {p["port"] for p in svc["spec"]["ports"]}
    assert {4317, 4318, 13133} <= ports


def test_local_stack_uses_the_same_collector_config():
    compose = load_yaml(DEPLOY / "local" / "compose.yaml")
    vols = compose["services"]["otel-collector"]["volumes"]
    mounted = [v.split(":")[0] for v in vols if v.split(":")[1] == "/etc/otelcol-contrib/config.yaml"]
    assert mounted, "the compose collector must mount a config at /etc/otelcol-contrib/config.yaml"
    path = (DEPLOY / "local" / mounted[0]).resolve()
    assert path == (BASE / "otel-collector" / "config.yaml").resolve()
