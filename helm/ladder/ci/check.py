"""The chart and image checks behind `cargo test --test chart` (via check.sh).

Lints the Dockerfile (hadolint) and the chart (Helm's own lint, strict),
renders the chart offline with its default values, with ci/full-values.yaml and
with a transaction pooler on the existing Secret,
validates every rendered manifest strictly against the JSON schemas of the
newest Kubernetes release kubernetes-validate ships (the ServiceMonitor against
the Prometheus Operator's CRD models), checks what the deployment relies on
(gRPC probes, a non-root read-only pod, the migration hook, HPA, PDB,
NetworkPolicy, which role's URL goes where, the pooler's settings), and that
the values schema and templates refuse a wrong type, an unknown key and a
transaction pooler without a direct URL. Exits non-zero listing every failure.
"""

import subprocess
import sys
from pathlib import Path

import helm_python as helm
import kubernetes_validate
import kubernetes_validate.utils as kv_utils
import yaml
from cloudcoil.models.prometheus_operator.v1 import ServiceMonitor

REPO = Path(sys.argv[1])
CHART = REPO / "helm" / "ladder"
RELEASE = "ladder"
NAMESPACE = "ladder"
KUBERNETES = kv_utils.latest_version()

failures: list[str] = []


def check(condition: bool, message: str) -> None:
    if not condition:
        failures.append(message)


class UniqueKeyLoader(yaml.SafeLoader):
    """YAML that refuses a mapping with a key twice (PyYAML keeps the last)."""


def _unique_mapping(loader: UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        seen.add(key)
    return loader.construct_mapping(node, deep)


UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _unique_mapping)


def documents(text: str, where: str) -> list[dict]:
    """The YAML documents of `text`; a duplicate key is a failure."""
    try:
        return [doc for doc in yaml.load_all(text, Loader=UniqueKeyLoader) if doc]
    except yaml.constructor.ConstructorError as e:
        failures.append(f"{where}: {e}")
        return [doc for doc in yaml.safe_load_all(text) if doc]


def render(values: dict | None, upgrade: bool = False) -> list[dict]:
    with helm.Chart.load(CHART) as chart:
        rendered = chart.render(
            values=values,
            name=RELEASE,
            namespace=NAMESPACE,
            is_install=not upgrade,
            is_upgrade=upgrade,
        )
    return [
        doc
        for path, text in sorted(rendered.items())
        if path.endswith((".yaml", ".yml"))
        for doc in documents(text, path)
    ]


def validate(doc: dict, where: str) -> None:
    name = f"{where}: {doc.get('kind')}/{doc.get('metadata', {}).get('name')}"
    if doc.get("apiVersion") == "monitoring.coreos.com/v1":
        # The models ignore unknown fields, so compare what they kept.
        model = ServiceMonitor.model_validate(doc)
        kept = model.model_dump(mode="json", by_alias=True, exclude_none=True)
        check(kept == doc, f"{name}: fields outside the ServiceMonitor CRD: {doc} != {kept}")
        return
    try:
        kubernetes_validate.validate(doc, KUBERNETES, strict=True)
    except kubernetes_validate.ValidationError as e:
        failures.append(f"{name}: {'.'.join(map(str, e.path))}: {e.message}")
    except kv_utils.SchemaNotFoundError as e:
        failures.append(f"{name}: {e.message}")


def by_kind(docs: list[dict], kind: str) -> list[dict]:
    return [d for d in docs if d["kind"] == kind]


def one(docs: list[dict], kind: str, where: str, component: str | None = None) -> dict:
    found = [
        d
        for d in by_kind(docs, kind)
        if component is None
        or d["metadata"]["labels"].get("app.kubernetes.io/component") == component
    ]
    check(len(found) == 1, f"{where}: expected one {kind}, found {len(found)}")
    return found[0] if found else {}


def env_of(container: dict) -> dict:
    return {e["name"]: e for e in container.get("env", [])}


def secret_ref(container: dict, name: str) -> tuple[str, str] | None:
    ref = env_of(container).get(name, {}).get("valueFrom", {}).get("secretKeyRef")
    return (ref["name"], ref["key"]) if ref else None


def check_pod(pod: dict, where: str) -> None:
    spec = pod["spec"]
    psc = spec.get("securityContext", {})
    check(psc.get("runAsNonRoot") is True, f"{where}: pod runAsNonRoot")
    check(psc.get("seccompProfile", {}).get("type") == "RuntimeDefault", f"{where}: pod seccomp")
    check(spec.get("automountServiceAccountToken") is False, f"{where}: no API token mounted")
    for volume in spec.get("volumes", []):
        check(
            set(volume) - {"name"} <= {"secret", "emptyDir"},
            f"{where}: volume {volume['name']} is neither a Secret nor an emptyDir",
        )
    for container in spec["containers"]:
        csc = container.get("securityContext", {})
        at = f"{where}: container {container['name']}"
        check(csc.get("runAsNonRoot") is True, f"{at}: runAsNonRoot")
        check(isinstance(csc.get("runAsUser"), int) and csc["runAsUser"] > 0, f"{at}: numeric non-root UID")
        check(csc.get("readOnlyRootFilesystem") is True, f"{at}: readOnlyRootFilesystem")
        check(csc.get("allowPrivilegeEscalation") is False, f"{at}: allowPrivilegeEscalation false")
        check(csc.get("capabilities", {}).get("drop") == ["ALL"], f"{at}: drops ALL capabilities")
        check(csc.get("seccompProfile", {}).get("type") == "RuntimeDefault", f"{at}: seccomp")
        check("limits" in container.get("resources", {}), f"{at}: resource limits")
        check("requests" in container.get("resources", {}), f"{at}: resource requests")


def check_release(docs: list[dict], values: dict, where: str) -> None:
    grpc_port, admin_port = values["grpcPort"], values["adminPort"]
    deployment = one(docs, "Deployment", where)
    job = one(docs, "Job", where, "migrate")
    if not deployment or not job:
        return
    pod = deployment["spec"]["template"]
    selector = deployment["spec"]["selector"]["matchLabels"]
    check(selector.items() <= pod["metadata"]["labels"].items(), f"{where}: selector matches the pods")
    check_pod(pod, f"{where}: Deployment")
    check_pod(job["spec"]["template"], f"{where}: migration Job")

    server = pod["spec"]["containers"][0]
    env = env_of(server)
    tls = values["tls"]
    if tls["existingSecret"]:
        # The kubelet's gRPC probes cannot speak TLS: the admin port answers them.
        for probe, path in (("livenessProbe", "/livez"), ("readinessProbe", "/readyz"), ("startupProbe", "/readyz")):
            check(
                server.get(probe, {}).get("httpGet", {}) == {"path": path, "port": "admin"},
                f"{where}: with TLS, {probe} asks {path} on the admin port",
            )
        mounts = {m["mountPath"]: m["name"] for m in server["volumeMounts"]}
        volumes = {v["name"]: v.get("secret", {}).get("secretName") for v in pod["spec"]["volumes"]}
        check(
            env.get("LADDER_TLS_CERT", {}).get("value") == "/etc/ladder/tls/tls.crt"
            and env.get("LADDER_TLS_KEY", {}).get("value") == "/etc/ladder/tls/tls.key"
            and volumes.get(mounts.get("/etc/ladder/tls")) == tls["existingSecret"],
            f"{where}: the server certificate is mounted from {tls['existingSecret']} and configured",
        )
        if tls["clientCaSecret"]:
            check(
                env.get("LADDER_TLS_CLIENT_CA", {}).get("value") == "/etc/ladder/client-ca/ca.crt"
                and volumes.get(mounts.get("/etc/ladder/client-ca")) == tls["clientCaSecret"],
                f"{where}: mutual TLS trusts the CA in {tls['clientCaSecret']}",
            )
    else:
        for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
            check(
                server.get(probe, {}).get("grpc", {}).get("port") == grpc_port,
                f"{where}: {probe} is a native gRPC probe on {grpc_port}",
            )
        check(
            server["livenessProbe"]["grpc"].get("service") == "liveness",
            f"{where}: liveness asks the health name that ignores the database",
        )
        check("LADDER_TLS_CERT" not in env, f"{where}: no TLS configured without a Secret")
    check(server["args"] == ["serve", "--no-migrate"], f"{where}: the server does not migrate")
    env = env_of(server)
    check(env.get("LADDER_LISTEN", {}).get("value") == f"0.0.0.0:{grpc_port}", f"{where}: gRPC listen")
    check(
        env.get("LADDER_ADMIN_LISTEN", {}).get("value") == f"0.0.0.0:{admin_port}",
        f"{where}: admin listen",
    )
    check(bool(env.get("LADDER_JWT_AUDIENCE", {}).get("value")), f"{where}: JWT audience set")
    check(
        ("OTEL_EXPORTER_OTLP_ENDPOINT" in env) == bool(values["otel"]["endpoint"]),
        f"{where}: OTLP endpoint exactly when otel.endpoint is set",
    )
    check("OTEL_SERVICE_NAME" in env and "OTEL_RESOURCE_ATTRIBUTES" in env, f"{where}: OTel resource")
    delay_ms = int(env.get("LADDER_SHUTDOWN_DELAY_MS", {}).get("value", "-1"))
    grace_ms = int(env.get("LADDER_SHUTDOWN_GRACE_MS", {}).get("value", "-1"))
    termination = pod["spec"].get("terminationGracePeriodSeconds", 30)
    check(
        delay_ms == values["shutdownDelaySeconds"] * 1000
        and grace_ms > 0
        and delay_ms + grace_ms + 5000 <= termination * 1000,
        f"{where}: shutdown delay {delay_ms} ms + grace {grace_ms} ms + 5 s fit in "
        f"terminationGracePeriodSeconds {termination}",
    )
    ports = {p["name"]: p["containerPort"] for p in server["ports"]}
    check(ports == {"grpc": grpc_port, "admin": admin_port}, f"{where}: container ports {ports}")

    hooks = set(job["metadata"].get("annotations", {}).get("helm.sh/hook", "").split(","))
    check({"pre-install", "pre-upgrade"} <= hooks, f"{where}: migration Job is a pre-install,pre-upgrade hook")
    migrate = job["spec"]["template"]["spec"]["containers"][0]
    check(migrate.get("args") == ["migrate"], f"{where}: the Job runs `ladder migrate`")
    check(migrate["image"] == server["image"], f"{where}: the Job runs the server's image")
    owner = secret_ref(migrate, "DATABASE_URL")
    app = secret_ref(server, "DATABASE_URL")
    if owner is None or app is None:
        failures.append(f"{where}: DATABASE_URL of the Job or the server is not from a Secret")
        return
    check(owner[1] == values["database"]["migrationUrlKey"], f"{where}: the Job gets the owner URL")
    check(app[1] == values["database"]["urlKey"], f"{where}: the server gets the application URL")
    secrets = {s["metadata"]["name"]: s for s in by_kind(docs, "Secret")}
    if owner[0] in secrets:
        annotations = secrets[owner[0]]["metadata"].get("annotations", {})
        check(
            int(annotations.get("helm.sh/hook-weight", "0"))
            < int(job["metadata"]["annotations"].get("helm.sh/hook-weight", "0"))
            and "pre-install" in annotations.get("helm.sh/hook", ""),
            f"{where}: the owner URL's Secret is a hook created before the Job",
        )
        check(app[0] != owner[0], f"{where}: the server's Secret does not hold the owner URL")
    database = values["database"]
    read = env_of(server).get("LADDER_DATABASE_READ_URL", {}).get("valueFrom", {}).get("secretKeyRef")
    check(
        (read is not None) == bool(database["existingSecret"] or database["readUrl"]),
        f"{where}: the read replica's URL is passed exactly when a Secret can hold it",
    )
    if read is not None:
        check(
            (read["name"], read["key"]) == (app[0], database["readUrlKey"]) and read.get("optional") is True,
            f"{where}: the read URL comes from the database Secret, optional there",
        )
    if database["readUrl"] and not database["existingSecret"]:
        check(
            secrets.get(app[0], {}).get("stringData", {}).get(database["readUrlKey"]) == database["readUrl"],
            f"{where}: the chart's database Secret holds the read URL",
        )
    # A transaction pooler: the servers say so and get PostgreSQL itself
    # beside it for the listener; the migration Job never goes through it.
    check(
        env.get("LADDER_DATABASE_POOLER", {}).get("value") == database["pooler"],
        f"{where}: the servers are told how the database URL reaches PostgreSQL ({database['pooler']})",
    )
    direct = env.get("LADDER_DATABASE_DIRECT_URL", {}).get("valueFrom", {}).get("secretKeyRef")
    check(
        (direct is not None) == (database["pooler"] == "transaction"),
        f"{where}: the direct URL is passed exactly with a transaction pooler",
    )
    if direct is not None:
        check(
            (direct["name"], direct["key"]) == (app[0], database["directUrlKey"]) and not direct.get("optional"),
            f"{where}: the direct URL comes from the database Secret, required there",
        )
    if database["directUrl"] and not database["existingSecret"]:
        check(
            secrets.get(app[0], {}).get("stringData", {}).get(database["directUrlKey"]) == database["directUrl"],
            f"{where}: the chart's database Secret holds the direct URL",
        )
    migrate_env = env_of(migrate)
    check(
        migrate_env.get("LADDER_DATABASE_POOLER", {}).get("value") == "direct"
        and "LADDER_DATABASE_DIRECT_URL" not in migrate_env,
        f"{where}: the migration Job reaches PostgreSQL directly with the owner URL (its advisory lock is a session's)",
    )

    service = one(docs, "Service", where)
    check(
        {p["name"]: p["port"] for p in service.get("spec", {}).get("ports", [])}
        == {"grpc": grpc_port, "admin": admin_port},
        f"{where}: Service has the gRPC and admin ports",
    )
    check(service.get("spec", {}).get("selector") == selector, f"{where}: Service selects the pods")

    hpa = one(docs, "HorizontalPodAutoscaler", where)
    check(
        hpa.get("spec", {}).get("scaleTargetRef", {}).get("name") == deployment["metadata"]["name"],
        f"{where}: HPA scales the Deployment",
    )
    check("replicas" not in deployment["spec"], f"{where}: the HPA, not the Deployment, sets replicas")
    pdb = one(docs, "PodDisruptionBudget", where)
    check(pdb.get("spec", {}).get("selector", {}).get("matchLabels") == selector, f"{where}: PDB selects the pods")

    policy = one(docs, "NetworkPolicy", where)
    spec = policy.get("spec", {})
    check(spec.get("podSelector", {}).get("matchLabels") == selector, f"{where}: NetworkPolicy selects the pods")
    check(sorted(spec.get("policyTypes", [])) == ["Egress", "Ingress"], f"{where}: NetworkPolicy both ways")
    ingress_ports = sorted(str(p["port"]) for rule in spec.get("ingress", []) for p in rule.get("ports", []))
    check(
        ingress_ports == ["admin", "grpc"] and all(r.get("ports") for r in spec.get("ingress", [])),
        f"{where}: ingress only on the gRPC and admin ports, got {ingress_ports}",
    )
    egress_ports = sorted(str(p["port"]) for rule in spec.get("egress", []) for p in rule.get("ports", []))
    expected = [53, 53, values["networkPolicy"]["database"]["port"]]
    if values["database"]["pooler"] == "transaction":
        expected.append(values["networkPolicy"]["pooler"]["port"])
    if values["otel"]["endpoint"]:
        expected.append(values["networkPolicy"]["otlp"]["port"])
    check(
        egress_ports == sorted(map(str, expected)) and all(r.get("ports") for r in spec.get("egress", [])),
        f"{where}: egress only to DNS, the database, its pooler and OTLP, got {egress_ports}",
    )

    sa = one(docs, "ServiceAccount", where)
    check(sa.get("metadata", {}).get("name") == pod["spec"].get("serviceAccountName"), f"{where}: ServiceAccount used")
    monitors = by_kind(docs, "ServiceMonitor")
    check(len(monitors) == int(values["serviceMonitor"]["enabled"]), f"{where}: ServiceMonitor when enabled")
    for monitor in monitors:
        check(monitor["spec"]["endpoints"][0]["port"] == "admin", f"{where}: ServiceMonitor scrapes admin")


def expect_refused(values: dict, what: str) -> None:
    try:
        render(values)
    except helm.HelmError:
        return
    failures.append(f"values with {what} were accepted")


def main() -> int:
    hadolint = subprocess.run(
        [str(Path(sys.executable).parent / "hadolint"), str(REPO / "Dockerfile")],
        capture_output=True,
        text=True,
    )
    check(hadolint.returncode == 0, f"hadolint Dockerfile:\n{hadolint.stdout}{hadolint.stderr}")
    dockerfile = (REPO / "Dockerfile").read_text()
    for label in ("title", "version", "revision", "created", "licenses", "base.name"):
        check(f"org.opencontainers.image.{label}=" in dockerfile, f"Dockerfile: OCI label {label}")
    check("CARGO_PROFILE_RELEASE_STRIP=true" in dockerfile, "Dockerfile: the image's binary is stripped")

    full_values = yaml.safe_load((CHART / "ci" / "full-values.yaml").read_text())
    manifests = 0
    value_sets = [
        ("default values", None),
        ("ci/full-values.yaml", full_values),
        # The direct URL from an existing Secret, as the default values take the others.
        ("a transaction pooler with database.existingSecret", {"database": {"pooler": "transaction"}}),
    ]
    for where, values in value_sets:
        report = helm.lint(CHART, values, strict=True, kube_version=f"v{KUBERNETES}")
        for message in report["messages"]:
            # Severity 1 is informational ("icon is recommended").
            check(message["severity"] < 2, f"{where}: helm lint: {message['path']}: {message['error']}")
        with helm.Chart.load(CHART) as chart:
            merged = chart.merge_values(values)
        for upgrade in (False, True):
            docs = render(values, upgrade)
            for doc in docs:
                validate(doc, where)
            manifests += len(docs)
            check_release(docs, merged, f"{where}{' (upgrade)' if upgrade else ''}")

    # The validator itself is strict: an unknown field is an error.
    try:
        kubernetes_validate.validate(
            {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "x"}, "spec": {"portz": []}},
            KUBERNETES,
            strict=True,
        )
        failures.append("kubernetes-validate accepted an unknown field")
    except kubernetes_validate.ValidationError:
        pass

    expect_refused({"replicaCount": "two"}, "a string for an integer")
    expect_refused({"replicas": 3}, "an unknown top-level key")
    expect_refused({"image": {"tags": "1.0"}}, "an unknown nested key")
    expect_refused({"otel": {"protocol": "udp"}}, "an unknown OTLP protocol")
    expect_refused({"jwt": {"audience": ""}}, "no JWT audience")
    expect_refused({"database": {"existingSecret": ""}}, "neither a database Secret nor URLs")
    expect_refused({"tls": {"clientCaSecret": "ca"}}, "mutual TLS without a server certificate")
    expect_refused({"autoscaling": {"minReplicas": 5, "maxReplicas": 3}}, "HPA minReplicas above maxReplicas")
    expect_refused({"grpcPort": 9090, "adminPort": 9090}, "one port for gRPC and admin")
    expect_refused({"database": {"pooler": "session"}}, "an unknown pooler mode")
    urls = {
        "existingSecret": "",
        "url": "postgres://ladder_app:x@pooler:5432/ladder",
        "migrationUrl": "postgres://ladder_owner:x@db:5432/ladder",
        "pooler": "transaction",
    }
    expect_refused({"database": urls}, "a transaction pooler without a direct URL")
    try:
        render({"database": {**urls, "directUrl": "postgres://ladder_app:x@db:5432/ladder"}})
    except helm.HelmError as e:
        failures.append(f"a transaction pooler with a direct URL was refused: {e}")
    expect_refused(
        {"terminationGracePeriodSeconds": 10, "shutdownDelaySeconds": 5},
        "no shutdown grace left after the delay",
    )
    # A duplicate key in a rendered manifest is caught.
    before = len(failures)
    documents("metadata:\n  labels:\n    a: x\n    a: y\n", "duplicate-key probe")
    check(len(failures) == before + 1, "a manifest with a duplicate key was accepted")
    del failures[before:before + 1]

    for failure in failures:
        print(f"FAIL {failure}", file=sys.stderr)
    print(
        f"chart check: Dockerfile linted; chart linted and rendered with {len(value_sets)} value sets, {manifests} "
        f"manifests validated against Kubernetes {KUBERNETES} (strict); {len(failures)} failed"
    )
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
