"""docs/distributed.md and deploy/ say only what exists: options, paths, chart keys, YAML.

PyYAML is not a dependency of the tool (Locust does not pull it in), so the manifests get a
full parse only where it is installed; everywhere else a minimal structural check runs and the
values this file needs (args lists, chart keys) are read by two small line-based readers that
are enough for the block-style YAML in deploy/.
"""

from __future__ import annotations

import itertools
import re
import subprocess
import sys
from pathlib import Path

import pytest

from loadtest.cli import run_command
from loadtest.users.options import OPTIONS

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "distributed.md"
DEPLOY = ROOT / "deploy"
HELM_VALUES = DEPLOY / "helm" / "locust-values.yaml"

#: Cited in docs/distributed.md but not in the repository yet, each with why.
NOT_YET_IN_REPOSITORY: dict[str, str] = {}

#: Every key path of deliveryhero/helm-charts stable/locust/values.yaml at commit
#: 296682e029afcde19c35bca6fc7f39c453b2d7b2 (chart version 0.35.0, appVersion 2.32.2; the file is
#: unchanged at 17aac330c35a61a0cde2052aa6fe5ab18e9a036f). A path whose chart value is a scalar,
#: a list or an empty mapping is a leaf: what goes under it is the user's (resources, env …).
_CHART_KEYS_TEXT = """
loadtest.name loadtest.locust_locustfile loadtest.locust_locustfile_path
loadtest.locust_locustfile_configmap loadtest.locust_lib_configmap loadtest.locust_host
loadtest.pip_packages loadtest.pip_requirementsfile_configmap
loadtest.locust_requirementsfile_path loadtest.pip_requirementsfile loadtest.environment
loadtest.environment_secret loadtest.environment_external_secret
loadtest.environment_load_from_secrets loadtest.mount_external_secret loadtest.headless
loadtest.tags loadtest.excludeTags loadtest.locustCmd image.repository image.tag
image.pullPolicy service.type service.annotations service.extraLabels service.loadBalancerIP
service.port service.targetPort master.image master.logLevel master.replicas
master.revisionHistoryLimit master.terminationGracePeriodSeconds master.lifecycle
master.resources master.serviceAccountAnnotations master.deploymentAnnotations
master.envs_include_default master.environment master.args master.command
master.initContainers master.strategy.type master.pdb.enabled master.auth.enabled
master.auth.username master.auth.password master.extraPorts
master.readinessProbe.initialDelaySeconds master.readinessProbe.periodSeconds
master.readinessProbe.timeoutSeconds master.readinessProbe.failureThreshold
master.readinessProbe.successThreshold master.readinessProbe.httpGet.path
master.readinessProbe.httpGet.port master.readinessProbe.httpGet.scheme
master.livenessProbe master.startupProbe master.restartPolicy master.nodeSelector
master.tolerations master.affinity master.extraVolumes master.extraVolumeMounts worker.image
worker.logLevel worker.replicas worker.revisionHistoryLimit worker.pdb.enabled
worker.hpa.enabled worker.hpa.minReplicas worker.hpa.maxReplicas
worker.hpa.targetCPUUtilizationPercentage worker.keda.enabled worker.keda.pollingInterval
worker.keda.cooldownPeriod worker.keda.triggers worker.resources worker.ports
worker.serviceAccountAnnotations worker.deploymentAnnotations worker.envs_include_default
worker.environment worker.args worker.command worker.initContainers worker.strategy.type
worker.restartPolicy worker.nodeSelector worker.tolerations worker.affinity
worker.extraVolumes worker.extraVolumeMounts nameOverride fullnameOverride imagePullSecrets
hostAliases podSecurityContext securityContext ingress.enabled ingress.className
ingress.annotations ingress.hosts ingress.tls extraConfigMaps nodeSelector tolerations
affinity extraLabels extraObjects
"""
CHART_KEYS = frozenset(_CHART_KEYS_TEXT.split())
CHART_PREFIXES = frozenset(
    ".".join(key.split(".")[:i]) for key in CHART_KEYS for i in range(1, key.count(".") + 1)
)


def yaml_files() -> list[Path]:
    return sorted(DEPLOY.rglob("*.yaml"))


# --- small readers for block-style YAML ----------------------------------------------------

KEY_LINE = re.compile(r"^(?P<indent> *)(?P<key>[A-Za-z_][\w.-]*):(?: |$)")


def key_paths(text: str) -> list[str]:
    """Dotted paths of every mapping key (list items and block scalars are skipped)."""
    paths: list[str] = []
    stack: list[tuple[int, str]] = []
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith(("#", "-")):
            continue
        match = KEY_LINE.match(line)
        if match is None:
            continue
        indent = len(match["indent"])
        while stack and stack[-1][0] >= indent:
            stack.pop()
        stack.append((indent, match["key"]))
        paths.append(".".join(key for _, key in stack))
    return paths


def lists_under(text: str, key: str) -> list[list[str]]:
    """The items of every block list under ``key:`` (quotes removed)."""
    found: list[list[str]] = []
    lines = text.splitlines()
    for number, line in enumerate(lines):
        match = re.match(rf"^( *){re.escape(key)}:\s*$", line)
        if match is None:
            continue
        items: list[str] = []
        for following in lines[number + 1 :]:
            item = re.match(rf"^{match[1]}  - (.*)$", following) or re.match(
                rf"^{match[1]}- (.*)$", following
            )
            if item is None:
                break
            items.append(item[1].strip().strip('"'))
        found.append(items)
    return found


# --- the options that exist -----------------------------------------------------------------


def flags_in(help_text: str) -> set[str]:
    return set(re.findall(r"(?<![\w-])(--?[A-Za-z][\w-]*)", help_text))


@pytest.fixture(scope="module")
def locust_flags() -> set[str]:
    """Locust's own flags (from its --help in this venv) and ours (registered on its parser)."""
    done = subprocess.run(
        [sys.executable, "-m", "locust", "--help"],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    return flags_in(done.stdout) | {flag for flag, _ in OPTIONS}


@pytest.fixture(scope="module")
def loadtest_run_flags() -> set[str]:
    return {opt for param in run_command.params for opt in (*param.opts, *param.secondary_opts)}


def command_lines(markdown: str) -> list[str]:
    """Shell commands in the doc's code blocks, continuation lines joined."""
    blocks = re.findall(r"```(?:bash|sh)?\n(.*?)```", markdown, flags=re.S)
    joined = "\n".join(blocks).replace("\\\n", " ")
    return [line.strip() for line in joined.splitlines() if line.strip()]


def flag_tokens(tokens: list[str]) -> list[str]:
    return [token.split("=", 1)[0] for token in tokens if re.match(r"^--?[A-Za-z]", token)]


def test_every_option_in_the_doc_exists(locust_flags: set[str], loadtest_run_flags: set[str]):
    unknown: list[str] = []
    text = DOC.read_text()
    for line in command_lines(text):
        tokens = line.split()
        if tokens[:1] == ["locust"]:
            unknown += [f for f in flag_tokens(tokens[1:]) if f not in locust_flags]
        elif tokens[:2] == ["loadtest", "run"]:
            ours, _, passed_on = " ".join(tokens[2:]).partition(" -- ")
            unknown += [f for f in flag_tokens(ours.split()) if f not in loadtest_run_flags]
            unknown += [f for f in flag_tokens(passed_on.split()) if f not in locust_flags]
    for inline in re.findall(r"`(--?[A-Za-z][\w-]*)[^`]*`", text):
        if not inline.endswith("-") and inline not in locust_flags | loadtest_run_flags:
            unknown.append(inline)
    assert not unknown, f"options in docs/distributed.md that do not exist: {sorted(set(unknown))}"


def locust_arg_lists() -> list[tuple[Path, list[str]]]:
    """Every ``args:`` list in deploy/ (each is given to `locust`, directly or through
    run-master.sh, or follows the Helm chart's own --master / --worker)."""
    return [
        (path, items) for path in yaml_files() for items in lists_under(path.read_text(), "args")
    ]


def test_every_option_in_the_manifests_exists(locust_flags: set[str]):
    lists = locust_arg_lists()
    assert len(lists) >= 5, lists  # master, workers, CI master and workers, Helm master
    unknown = [
        (path.name, flag)
        for path, items in lists
        for flag in flag_tokens(items)
        if flag not in locust_flags
    ]
    assert not unknown


def test_files_the_manifests_name_are_in_the_image():
    """Paths given to -f and --slo are relative to /app, where the image copies scenarios/."""
    named = []
    for _path, items in locust_arg_lists():
        named += [value for flag, value in itertools.pairwise(items)
                  if flag in ("-f", "--slo") and not value.startswith("/")]  # fmt: skip
    assert named and all((ROOT / value).is_file() for value in named), named
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    assert "COPY scenarios ./scenarios" in dockerfile and "WORKDIR /app" in dockerfile


def test_every_repository_path_the_doc_cites_exists():
    text = DOC.read_text()
    cited = set(re.findall(r"`((?:loadtest|scenarios|tests|bench|docs|deploy)/[\w./-]*)`", text))
    cited |= set(re.findall(r"\]\((\w[\w./-]*\.md)\)", text))  # relative links
    missing = sorted(
        path
        for path in cited
        if path not in NOT_YET_IN_REPOSITORY
        and not (ROOT / path).exists()
        and not (DOC.parent / path).exists()
    )
    assert cited and not missing, missing
    for planned in NOT_YET_IN_REPOSITORY:
        assert re.search(rf"{re.escape(planned)}`?[^.]*not in the repository yet", text)


def test_the_doc_quotes_the_collector_s_sealing_delay():
    from loadtest.users.collector import SEAL_AFTER_S

    assert f"SEAL_AFTER_S = {SEAL_AFTER_S}" in DOC.read_text()


def test_bench_figures_come_from_files_that_exist():
    text = DOC.read_text()
    results = re.findall(r"`(bench/results/[\w.]+\.json)`", text)
    assert results and all((ROOT / path).is_file() for path in results)


def test_the_scenarios_page_links_here():
    scenarios = (ROOT / "docs" / "scenarios.md").read_text()
    section = scenarios.split("## Distributed runs", 1)[1].split("\n## ", 1)[0]
    assert "(distributed.md)" in section


# --- YAML ---------------------------------------------------------------------------------


def test_every_manifest_is_yaml():
    files = yaml_files()
    assert files
    for path in files:
        text = path.read_text()
        assert "\t" not in text, f"{path}: a tab"
        if path.parent.name == "kubernetes":
            for document in re.split(r"(?m)^---$", text):
                assert re.search(r"(?m)^apiVersion: \S", document), path
                assert re.search(r"(?m)^kind: \S", document), path
    try:
        import yaml
    except ImportError:
        pytest.skip("PyYAML is not installed (not a dependency): only the minimal check ran")
    for path in files:
        documents = [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]
        assert documents, path


def test_the_kubernetes_resources_fit_together():
    yaml = pytest.importorskip("yaml", reason="PyYAML is not installed (not a dependency)")
    resources = [
        doc
        for path in sorted((DEPLOY / "kubernetes").glob("*.yaml"))
        for doc in yaml.safe_load_all(path.read_text())
    ]
    by_kind: dict[str, list[dict]] = {}
    for resource in resources:
        by_kind.setdefault(resource["kind"], []).append(resource)
    master_service = next(
        s for s in by_kind["Service"] if s["metadata"]["name"] == "loadtest-master"
    )
    assert {p["port"] for p in master_service["spec"]["ports"]} == {5557, 8089}
    secret = by_kind["Secret"][0]
    for workload in by_kind["Deployment"] + by_kind["Job"]:
        container = workload["spec"]["template"]["spec"]["containers"][0]
        refs = {
            e["valueFrom"]["secretKeyRef"]["name"] for e in container["env"] if "valueFrom" in e
        }
        assert refs == {secret["metadata"]["name"]}, workload["metadata"]["name"]
        assert (
            "wss://fitiq.example.internal" in container["args"] or "--worker" in container["args"]
        )
    for job in by_kind["Job"]:
        assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"
        assert job["spec"]["backoffLimit"] == 0
    workers = next(d for d in by_kind["Deployment"] if d["metadata"]["name"] == "loadtest-worker")
    master = next(d for d in by_kind["Deployment"] if d["metadata"]["name"] == "loadtest-master")
    master_args = master["spec"]["template"]["spec"]["containers"][0]["args"]
    expected = master_args[master_args.index("--expect-workers") + 1]
    assert workers["spec"]["replicas"] == int(expected)


# --- Helm ---------------------------------------------------------------------------------


def test_every_helm_value_is_a_key_of_the_chart():
    unknown = []
    for path in key_paths(HELM_VALUES.read_text()):
        parts = path.split(".")
        # below a leaf of the chart the keys are the user's (resources, secret names …)
        if any(".".join(parts[:i]) in CHART_KEYS for i in range(1, len(parts))):
            continue
        if path not in CHART_KEYS and path not in CHART_PREFIXES:
            unknown.append(path)
    assert not unknown, f"not keys of the locust chart 0.35.0: {unknown}"
    try:
        import yaml
    except ImportError:
        return
    values = yaml.safe_load(HELM_VALUES.read_text())
    assert values["loadtest"]["locust_locustfile_configmap"] == ""  # our image's scenarios
    assert "--headless" not in values["master"]["args"]  # the chart's readinessProbe needs 8089
