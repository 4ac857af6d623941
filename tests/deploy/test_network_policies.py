"""deploy/k8s/network-policies.yaml admits exactly the flows of README's architecture
picture: the policies are evaluated as data, by the rules of the NetworkPolicy API
(networking.k8s.io/v1), for every (from, to, port) pair of the pods of the manifests and
the peers around them. Allowed flows must be allowed, every other one denied."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.deploy.manifests import K8S_DIR, REPO, k8s_resources

NAMESPACE = "taskmgr"
POLICIES = k8s_resources("NetworkPolicy")
CONFIG = k8s_resources("ConfigMap")[0]["data"]
SECRETS_EXAMPLE = dict(
    line.split("=", 1)
    for line in (K8S_DIR / "secrets.env.example").read_text().splitlines()
    if line.strip() and not line.startswith("#")
)


@dataclass(frozen=True)
class Endpoint:
    """A pod (namespace, labels, named container ports) or a host outside the cluster (ip)."""

    name: str
    namespace: str | None = None
    labels: dict[str, str] = field(default_factory=dict, hash=False)
    ports: dict[str, tuple[int, str]] = field(default_factory=dict, hash=False)  # name -> (port, protocol)
    ip: str | None = None

    @property
    def is_pod(self) -> bool:
        return self.namespace is not None

    def listens(self) -> set[tuple[int, str]]:
        return set(self.ports.values())


def deployment_pods() -> dict[str, Endpoint]:
    pods = {}
    for deployment in k8s_resources("Deployment"):
        template = deployment["spec"]["template"]
        [container] = template["spec"]["containers"]
        ports = {p["name"]: (p["containerPort"], p.get("protocol", "TCP")) for p in container["ports"]}
        name = deployment["metadata"]["name"]
        pods[name] = Endpoint(name, NAMESPACE, template["metadata"]["labels"], ports)
    return pods


def url_port(name: str) -> int:
    return urlsplit(SECRETS_EXAMPLE[name]).port


PODS = deployment_pods()
EDGE, USER, TASK, NOTIFY = (PODS[name] for name in ("edge-api", "user-svc", "task-svc", "notify-svc"))
SERVICES = (USER, TASK, NOTIFY)
# The peers around the product. PostgreSQL and RabbitMQ are where the policies say they
# are (the operator sets those addresses); their ports are the secrets' URLs'.
POSTGRES = Endpoint("postgresql", ip="192.0.2.10", ports={"pg": (url_port("USER_SVC_DATABASE_URL"), "TCP")})
RABBITMQ = Endpoint("rabbitmq", ip="192.0.2.20", ports={"amqp": (url_port("AMQP_URL"), "TCP")})
SMTP = Endpoint("smtp", ip="192.0.2.25", ports={"submission": (int(CONFIG["SMTP_PORT"]), "TCP")})
WEB = Endpoint("a web server", ip="203.0.113.7", ports={"https": (443, "TCP")})
CLIENT = Endpoint("a client outside", ip="203.0.113.99")
NODE_LOCAL = Endpoint("a private address", ip="10.1.2.3", ports={"smtp": (587, "TCP"), "pg": (5432, "TCP")})
INGRESS = Endpoint(
    "ingress controller",
    "ingress-nginx",
    {"app.kubernetes.io/name": "ingress-nginx"},
    {"https": (443, "TCP")},
)
PROMETHEUS = Endpoint("prometheus", "monitoring", {"app.kubernetes.io/name": "prometheus"})
DNS = Endpoint(
    "kube-dns", "kube-system", {"k8s-app": "kube-dns"}, {"dns": (53, "UDP"), "dns-tcp": (53, "TCP")}
)
OTHER_POD = Endpoint(
    "a pod of another app", "default", {"app.kubernetes.io/name": "edge-api"}, {"grpc": (50051, "TCP")}
)
IMPOSTOR = Endpoint(
    "a pod labelled user-svc in another namespace",
    "tenant",
    {"app.kubernetes.io/name": "user-svc"},
    {"grpc": (50051, "TCP")},
)
ENDPOINTS = (
    *PODS.values(),
    POSTGRES,
    RABBITMQ,
    SMTP,
    WEB,
    CLIENT,
    NODE_LOCAL,
    INGRESS,
    PROMETHEUS,
    DNS,
    OTHER_POD,
    IMPOSTOR,
)
NAMESPACE_LABELS = {
    endpoint.namespace: {"kubernetes.io/metadata.name": endpoint.namespace}
    for endpoint in ENDPOINTS
    if endpoint.is_pod
}


def port(endpoint: Endpoint, name: str) -> tuple[int, str]:
    return endpoint.ports[name]


# README's picture, as flows (from, to, (port, protocol)).
ALLOWED = {
    (INGRESS, EDGE, port(EDGE, "http")),
    *((PROMETHEUS, pod, port(pod, "metrics")) for pod in (EDGE, *SERVICES)),
    *((EDGE, service, port(service, "grpc")) for service in SERVICES),
    (TASK, USER, port(USER, "grpc")),  # GetUser, the JWKS, revocations
    (NOTIFY, USER, port(USER, "grpc")),  # the JWKS, revocations
    (TASK, NOTIFY, port(NOTIFY, "grpc")),  # a task's notifications (ListSubjectNotifications)
    *(
        (service, store, port(store, name))
        for service in SERVICES
        for store, name in ((POSTGRES, "pg"), (RABBITMQ, "amqp"))
    ),
    (NOTIFY, SMTP, port(SMTP, "submission")),
    *((pod, DNS, port(DNS, name)) for pod in PODS.values() for name in ("dns", "dns-tcp")),
}


# --- the evaluator: the NetworkPolicy rules (Kubernetes docs, services-networking/network-policies) ---


def selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """A LabelSelector: matchLabels and matchExpressions (In, NotIn, Exists, DoesNotExist)."""
    if any(labels.get(key) != value for key, value in selector.get("matchLabels", {}).items()):
        return False
    for expression in selector.get("matchExpressions", []):
        key, operator, values = expression["key"], expression["operator"], expression.get("values", [])
        present = key in labels
        holds = {
            "In": present and labels.get(key) in values,
            "NotIn": not present or labels[key] not in values,
            "Exists": present,
            "DoesNotExist": not present,
        }[operator]
        if not holds:
            return False
    return True


def peer_matches(peer: dict[str, Any], endpoint: Endpoint, policy_namespace: str) -> bool:
    if "ipBlock" in peer:
        # ipBlock is for addresses outside the cluster (pod IPs are ephemeral).
        if endpoint.is_pod:
            return False
        address = ipaddress.ip_address(endpoint.ip)
        block = peer["ipBlock"]
        return address in ipaddress.ip_network(block["cidr"]) and not any(
            address in ipaddress.ip_network(cidr) for cidr in block.get("except", [])
        )
    if not endpoint.is_pod:
        return False
    if "namespaceSelector" in peer:
        if not selects(peer["namespaceSelector"], NAMESPACE_LABELS[endpoint.namespace]):
            return False
    elif endpoint.namespace != policy_namespace:
        return False  # a podSelector alone means the policy's own namespace
    return selects(peer.get("podSelector", {}), endpoint.labels)


def port_matches(rule_ports: list[dict[str, Any]] | None, target: Endpoint, wanted: tuple[int, str]) -> bool:
    """Named ports are resolved on the destination pod (for ingress rules, the selected pod)."""
    if not rule_ports:
        return True
    number, protocol = wanted
    for rule_port in rule_ports:
        if rule_port.get("protocol", "TCP") != protocol:
            continue
        value = rule_port.get("port")
        if value is None:
            return True
        if isinstance(value, str):
            if target.ports.get(value) == wanted:
                return True
        elif value <= number <= rule_port.get("endPort", value):
            return True
    return False


def admitted(
    direction: str, subject: Endpoint, peer: Endpoint, target: Endpoint, wanted: tuple[int, str]
) -> bool:
    """Whether `subject`'s policies admit the flow in `direction` ("Ingress": from `peer`;
    "Egress": to `peer`). A pod no policy of that type selects is not isolated."""
    if not subject.is_pod or subject.namespace != NAMESPACE:
        return True  # no policy of ours governs it (the peers' own namespaces)
    chosen = [
        policy
        for policy in POLICIES
        if direction in policy["spec"].get("policyTypes", ["Ingress"])
        and selects(policy["spec"]["podSelector"], subject.labels)
    ]
    if not chosen:
        return True
    key, peers_key = ("ingress", "from") if direction == "Ingress" else ("egress", "to")
    for policy in chosen:
        for rule in policy["spec"].get(key, []):
            peers = rule.get(peers_key)
            if (not peers or any(peer_matches(p, peer, policy["metadata"]["namespace"]) for p in peers)) and (
                port_matches(rule.get("ports"), target, wanted)
            ):
                return True
    return False


def allowed(source: Endpoint, target: Endpoint, wanted: tuple[int, str]) -> bool:
    return admitted("Egress", source, target, target, wanted) and admitted(
        "Ingress", target, source, target, wanted
    )


# Every port anyone listens on, tried against every target: a policy must not open a port
# of one pod because another pod listens on it.
ALL_PORTS = sorted({p for endpoint in ENDPOINTS for p in endpoint.listens()})
# Every pair with one end in taskmgr's namespace (flows between others are not ours to rule).
FLOWS = [
    (s, t, p)
    for s in ENDPOINTS
    for t in ENDPOINTS
    if s != t and NAMESPACE in (s.namespace, t.namespace)
    for p in ALL_PORTS
]


# --- the tests ---------------------------------------------------------------------------


def test_every_flow_of_the_picture_is_allowed_and_every_other_denied():
    assert all(flow in FLOWS for flow in ALLOWED), "the picture names a port nobody listens on"
    wrong = [
        f"{'denied' if flow in ALLOWED else 'allowed'}: {source.name} -> {target.name}:{number}/{protocol}"
        for flow in FLOWS
        for source, target, (number, protocol) in [flow]
        if allowed(*flow) != (flow in ALLOWED)
    ]
    assert not wrong, "\n".join(wrong)
    assert len(FLOWS) > 1000


def test_the_picture_holds_every_call_the_code_makes():
    """Which service a package dials is which `*_svc_addr` setting its code reads: a new
    call fails here until the policies (and ALLOWED) admit it."""
    dials = re.compile(r"settings\.(user|task|notify)_svc_addr")
    packages = {"edge_api": EDGE, "user_svc": USER, "task_svc": TASK, "notify_svc": NOTIFY}
    for package, caller in packages.items():
        called = {m for source in (REPO / package).rglob("*.py") for m in dials.findall(source.read_text())}
        for name in called:
            callee = PODS[f"{name}-svc"]
            assert (caller, callee, port(callee, "grpc")) in ALLOWED, f"{package} calls {name}_svc"
    assert (TASK, USER, port(USER, "grpc")) in ALLOWED


def test_the_edge_holds_no_database_or_broker_url():
    """What lets the data-stores policy leave the edge out."""
    [edge] = [d for d in k8s_resources("Deployment") if d["metadata"]["name"] == "edge-api"]
    names = {entry["name"] for entry in edge["spec"]["template"]["spec"]["containers"][0].get("env", [])}
    assert (
        not {"AMQP_URL", "USER_SVC_DATABASE_URL", "TASK_SVC_DATABASE_URL", "NOTIFY_SVC_DATABASE_URL"} & names
    )


def test_every_pod_is_isolated_both_ways():
    for pod in PODS.values():
        for direction in ("Ingress", "Egress"):
            assert any(
                direction in policy["spec"]["policyTypes"]
                and selects(policy["spec"]["podSelector"], pod.labels)
                for policy in POLICIES
            ), f"{pod.name}: no {direction} policy"


def test_the_ingress_class_is_the_controller_the_policies_admit():
    [ingress] = k8s_resources("Ingress")
    assert ingress["spec"]["ingressClassName"] == "nginx"
    assert allowed(INGRESS, EDGE, port(EDGE, "http"))


# --- the evaluator itself, on policies written for the purpose ----------------------------


def _policy(spec: dict[str, Any]) -> dict[str, Any]:
    return {"metadata": {"name": "p", "namespace": NAMESPACE}, "spec": spec}


@pytest.mark.parametrize(
    ("extra", "flow", "expected"),
    [
        # Without any policy, nothing is isolated.
        ([], (OTHER_POD, USER, (50051, "TCP")), True),
        # A podSelector alone is the policy's namespace: the same labels elsewhere do not match.
        (
            [
                _policy(
                    {
                        "podSelector": {},
                        "policyTypes": ["Ingress"],
                        "ingress": [
                            {
                                "from": [
                                    {"podSelector": {"matchLabels": {"app.kubernetes.io/name": "edge-api"}}}
                                ]
                            }
                        ],
                    }
                )
            ],
            (OTHER_POD, USER, (50051, "TCP")),
            False,
        ),
        # An empty rule admits all; a named port resolves on the target.
        (
            [
                _policy(
                    {
                        "podSelector": {},
                        "policyTypes": ["Ingress"],
                        "ingress": [{"ports": [{"port": "grpc"}]}],
                    }
                )
            ],
            (OTHER_POD, USER, (50051, "TCP")),
            True,
        ),
        (
            [
                _policy(
                    {
                        "podSelector": {},
                        "policyTypes": ["Ingress"],
                        "ingress": [{"ports": [{"port": "http"}]}],
                    }
                )
            ],
            (OTHER_POD, USER, (50051, "TCP")),
            False,
        ),
        # Egress isolation with an ipBlock and its except list.
        (
            [
                _policy(
                    {
                        "podSelector": {},
                        "policyTypes": ["Egress"],
                        "egress": [{"to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": ["10.0.0.0/8"]}}]}],
                    }
                )
            ],
            (USER, NODE_LOCAL, (5432, "TCP")),
            False,
        ),
        (
            [
                _policy(
                    {
                        "podSelector": {},
                        "policyTypes": ["Egress"],
                        "egress": [{"to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": ["10.0.0.0/8"]}}]}],
                    }
                )
            ],
            (USER, WEB, (443, "TCP")),
            True,
        ),
        # Protocols differ: UDP 53 is not TCP 53; endPort ranges.
        (
            [
                _policy(
                    {
                        "podSelector": {},
                        "policyTypes": ["Egress"],
                        "egress": [{"ports": [{"protocol": "UDP", "port": 53}]}],
                    }
                )
            ],
            (USER, DNS, (53, "TCP")),
            False,
        ),
        (
            [
                _policy(
                    {
                        "podSelector": {},
                        "policyTypes": ["Egress"],
                        "egress": [{"ports": [{"port": 400, "endPort": 500}]}],
                    }
                )
            ],
            (USER, WEB, (443, "TCP")),
            True,
        ),
        # matchExpressions.
        (
            [
                _policy(
                    {
                        "podSelector": {
                            "matchExpressions": [
                                {"key": "app.kubernetes.io/name", "operator": "NotIn", "values": ["user-svc"]}
                            ]
                        },
                        "policyTypes": ["Ingress"],
                    }
                )
            ],
            (EDGE, USER, (50051, "TCP")),
            True,
        ),
    ],
)
def test_the_evaluator_follows_the_networkpolicy_rules(monkeypatch, extra, flow, expected):
    monkeypatch.setattr(f"{__name__}.POLICIES", extra)
    assert allowed(*flow) is expected
