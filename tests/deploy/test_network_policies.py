"""NetworkPolicies of the kustomize base (deploy/base/network-policies) and of the example overlay:
default deny, every pod covered, the sync pods reach only DNS, the collector and the configured
databases, the collector takes OTLP from its own namespace only and sends only to DNS and GreptimeDB."""

from __future__ import annotations

import subprocess
from urllib.parse import urlsplit

import kubernetes_validate
import pytest

from deploy_helpers import (
    DEPLOY,
    K8S_VERSIONS,
    collector_config,
    find,
    kubectl,
    load_yaml,
    load_yaml_docs,
    render_base,
)

EXAMPLE_OVERLAY = DEPLOY / "overlays" / "example"
DNS_PORTS = {("UDP", 53), ("TCP", 53)}
OTLP_PORTS = {("TCP", 4317), ("TCP", 4318)}
KUBE_DNS_PEER = {
    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
    "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
}


def policies(docs: list[dict]) -> list[dict]:
    return [d for d in docs if d["kind"] == "NetworkPolicy"]


def selects(selector: dict, labels: dict) -> bool:
    """matchLabels semantics; the policies here use nothing else (asserted, so a matchExpressions
    added later cannot slip past these tests unevaluated)."""
    assert set(selector) <= {"matchLabels"}, f"selector {selector} uses more than matchLabels"
    return all(labels.get(k) == v for k, v in selector.get("matchLabels", {}).items())


def pod_templates(docs: list[dict]) -> dict[str, dict]:
    """name -> pod template labels, for every workload."""
    out = {}
    for d in docs:
        if d["kind"] == "CronJob":
            out[d["metadata"]["name"]] = d["spec"]["jobTemplate"]["spec"]["template"]["metadata"]["labels"]
        elif d["kind"] in ("Deployment", "StatefulSet", "DaemonSet", "Job"):
            out[d["metadata"]["name"]] = d["spec"]["template"]["metadata"]["labels"]
    return out


def governing(docs: list[dict], labels: dict) -> list[dict]:
    return [p for p in policies(docs) if selects(p["spec"]["podSelector"], labels)]


def rules(pols: list[dict], direction: str) -> list[tuple[str, dict]]:
    """(policy name, rule) for every ingress/egress rule of the policies that govern that direction."""
    kind = direction.capitalize()
    return [(p["metadata"]["name"], r) for p in pols if kind in p["spec"]["policyTypes"]
            for r in p["spec"].get(direction, []) or []]


def ports(rule: dict) -> set[tuple[str, int]]:
    return {(p.get("protocol", "TCP"), p["port"]) for p in rule.get("ports", [])}


def peers(rule: dict, direction: str) -> list[dict]:
    return rule.get("to" if direction == "egress" else "from", [])


def sync_pods(docs):
    t = pod_templates(docs)
    return {"sling-sync": t["sling-sync"], "sling-sync-console": t["sling-sync-console"]}


def collector_pod(docs):
    return pod_templates(docs)["otel-collector"]


# ---------------------------------------------------------------------------------------------------
# the shared checks, run on the base and on the example overlay


def check_default_deny(docs):
    deny = [p for p in policies(docs) if p["spec"]["podSelector"] == {}
            and set(p["spec"].get("policyTypes", [])) == {"Ingress", "Egress"}
            and not p["spec"].get("ingress") and not p["spec"].get("egress")]
    assert len(deny) == 1, "exactly one default-deny policy (all pods, Ingress+Egress, no rules) expected"


def check_every_pod_is_covered(docs):
    """Every pod is isolated both ways AND has a policy of its own (its allowances are explicit)."""
    templates = pod_templates(docs)
    assert len(templates) == 3
    for name, labels in templates.items():
        pols = governing(docs, labels)
        types = {t for p in pols for t in p["spec"]["policyTypes"]}
        assert types == {"Ingress", "Egress"}, f"pods of {name} are not isolated both ways: {types}"
        own = [p for p in pols if p["spec"]["podSelector"] != {}]
        assert own, f"no NetworkPolicy is written for the pods of {name}"


def check_every_policy_selects_a_pod(docs):
    """A typo in a selector label would leave the pods isolated by default-deny with no allowance."""
    templates = pod_templates(docs)
    for p in policies(docs):
        hit = [n for n, labels in templates.items() if selects(p["spec"]["podSelector"], labels)]
        assert hit, f"NetworkPolicy {p['metadata']['name']} selects no pod of this deployment"


def check_sync_pods(docs, database_policy: dict):
    collector = collector_pod(docs)
    collector_ports = {(p.get("protocol", "TCP"), p["containerPort"])
                       for p in find(docs, "Deployment", "otel-collector")["spec"]["template"]["spec"]["containers"][0]["ports"]}
    for name, labels in sync_pods(docs).items():
        pols = governing(docs, labels)
        assert not rules(pols, "ingress"), f"{name}: nothing may connect to the sync pods"
        dns = collector_rules = db = 0
        for pol, rule in rules(pols, "egress"):
            where = f"{name}: egress rule of {pol}"
            assert rule.get("ports"), f"{where} allows every port"
            assert peers(rule, "egress"), f"{where} allows every destination"
            if pol == "sling-sync-to-databases":
                db += 1
                for peer in peers(rule, "egress"):
                    assert set(peer) <= {"namespaceSelector", "podSelector", "ipBlock"}, where
                    if "ipBlock" in peer:
                        assert peer["ipBlock"]["cidr"] not in ("0.0.0.0/0", "::/0"), f"{where}: the whole internet"
                continue
            assert pol == "sling-sync", f"{where}: sync-pod egress belongs in sling-sync or sling-sync-to-databases"
            if ports(rule) == DNS_PORTS:
                assert peers(rule, "egress") == [KUBE_DNS_PEER], f"{where}: DNS only to kube-dns"
                dns += 1
            else:
                assert ports(rule) == OTLP_PORTS and ports(rule) <= collector_ports, f"{where}: {ports(rule)}"
                (peer,) = peers(rule, "egress")
                assert set(peer) == {"podSelector"}, f"{where}: the collector is in this namespace"
                assert selects(peer["podSelector"], collector), f"{where}: peer does not select the collector pods"
                collector_rules += 1
        assert dns == 1 and collector_rules == 1, f"{name}: DNS rules {dns}, collector rules {collector_rules}"
        assert db == len(database_policy["spec"]["egress"]), f"{name}: database rules missing"


def check_collector(docs):
    pols = governing(docs, collector_pod(docs))
    ingress = rules(pols, "ingress")
    assert ingress, "the collector must accept OTLP"
    for pol, rule in ingress:
        where = f"collector ingress rule of {pol}"
        assert ports(rule) <= OTLP_PORTS and rule.get("ports"), f"{where}: {ports(rule)}"
        # An empty `from` would mean every source, a namespaceSelector or ipBlock other namespaces.
        assert peers(rule, "ingress"), f"{where} accepts every source"
        for peer in peers(rule, "ingress"):
            assert set(peer) == {"podSelector"}, f"{where}: {peer} reaches beyond the namespace"
    greptime_port = {urlsplit(e["endpoint"]).port for e in collector_config()["exporters"].values()
                     if "endpoint" in e}
    assert greptime_port == {4000}, greptime_port
    egress = rules(pols, "egress")
    assert egress
    for pol, rule in egress:
        where = f"collector egress rule of {pol}"
        assert rule.get("ports") and peers(rule, "egress"), f"{where} is open-ended"
        assert ports(rule) == DNS_PORTS or ports(rule) == {("TCP", 4000)}, f"{where}: {ports(rule)}"
        if ports(rule) == DNS_PORTS:
            assert peers(rule, "egress") == [KUBE_DNS_PEER], where


def check_all(docs, database_policy):
    check_default_deny(docs)
    check_every_pod_is_covered(docs)
    check_every_policy_selects_a_pod(docs)
    check_sync_pods(docs, database_policy)
    check_collector(docs)


# ---------------------------------------------------------------------------------------------------
# the base


def test_base_policies(rendered):
    check_all(rendered, find(rendered, "NetworkPolicy", "sling-sync-to-databases"))


def test_base_database_rules_are_documented_placeholders(rendered):
    """The base opens only what secret.example.yaml names: the `mission` namespace and a
    documentation address (RFC 5737) that reaches nothing, both on PostgreSQL's port."""
    egress = find(rendered, "NetworkPolicy", "sling-sync-to-databases")["spec"]["egress"]
    assert [ports(r) for r in egress] == [{("TCP", 5432)}, {("TCP", 5432)}]
    assert egress[0]["to"] == [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "mission"}}}]
    assert egress[1]["to"] == [{"ipBlock": {"cidr": "203.0.113.10/32"}}]


def test_checks_catch_a_policy_that_opens_too_much(rendered):
    """Self-check: the assertions above do fail on the mistakes they are meant to catch."""
    import copy

    def broken(mutate):
        docs = copy.deepcopy(rendered)
        mutate(docs)
        with pytest.raises(AssertionError):
            check_all(docs, find(docs, "NetworkPolicy", "sling-sync-to-databases"))

    def collector_from_any_namespace(docs):
        rule = find(docs, "NetworkPolicy", "otel-collector")["spec"]["ingress"][0]
        rule["from"] = [{"namespaceSelector": {}}]

    def sync_egress_everywhere(docs):
        find(docs, "NetworkPolicy", "sling-sync")["spec"]["egress"].append({"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}]})

    def no_default_deny(docs):
        docs.remove(find(docs, "NetworkPolicy", "default-deny"))

    def selector_typo(docs):
        find(docs, "NetworkPolicy", "sling-sync")["spec"]["podSelector"]["matchLabels"]["app.kubernetes.io/name"] = "sling-sync"

    def console_ingress(docs):
        find(docs, "NetworkPolicy", "sling-sync")["spec"]["ingress"] = [{"from": [{"podSelector": {}}]}]

    for mutate in (collector_from_any_namespace, sync_egress_everywhere, no_default_deny, selector_typo,
                   console_ingress):
        broken(mutate)


# ---------------------------------------------------------------------------------------------------
# the example overlay: how an operator opens the databases (deploy/README.md)


@pytest.fixture(scope="module")
def overlay() -> list[dict]:
    render_base()  # same skip/fail rules when kubectl is missing
    proc = subprocess.run([kubectl(), "kustomize", str(EXAMPLE_OVERLAY)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"kubectl kustomize deploy/overlays/example failed:\n{proc.stderr}"
    return load_yaml_docs(proc.stdout)


def test_overlay_replaces_the_database_list_as_a_whole(overlay):
    patch = load_yaml(EXAMPLE_OVERLAY / "databases.yaml")
    pol = find(overlay, "NetworkPolicy", "sling-sync-to-databases")
    assert pol["spec"]["egress"] == patch["spec"]["egress"], "the overlay's list must replace the base's, not merge"
    cidrs = [peer["ipBlock"]["cidr"] for r in pol["spec"]["egress"] for peer in r["to"] if "ipBlock" in peer]
    assert "203.0.113.10/32" not in cidrs, "the base placeholder survived the overlay"
    # The rest of the policy (which pods, which direction) still comes from the base.
    assert pol["spec"]["policyTypes"] == ["Egress"]
    assert selects(pol["spec"]["podSelector"], pod_templates(overlay)["sling-sync"])
    check_all(overlay, pol)


def test_overlay_pins_images_by_digest(overlay):
    for name in ("sling-sync", "sling-sync-console", "otel-collector"):
        d = next(x for x in overlay if x["metadata"]["name"] == name and x["kind"] in ("CronJob", "Deployment"))
        spec = d["spec"]["jobTemplate"]["spec"]["template"]["spec"] if d["kind"] == "CronJob" else d["spec"]["template"]["spec"]
        image = spec["containers"][0]["image"]
        assert "@sha256:" in image, f"{name}: {image} is not pinned by digest"


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_overlay_passes_strict_schema_validation(overlay, version):
    for doc in overlay:
        kubernetes_validate.validate(doc, version, strict=True)
