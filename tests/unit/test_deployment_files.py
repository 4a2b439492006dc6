"""Dockerfile, compose.yaml and requirements.lock against the code (no image is built here).

Every `main.py` command they run must parse with main's own parser, every environment
variable they set must be a setting (or one of the few documented others), the values
they give must pass the settings' validation, and the image must copy every package and
install every runtime dependency at a version pyproject.toml allows.
"""

from __future__ import annotations

import argparse
import json
import re
import shlex
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement

import main

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "Dockerfile"
COMPOSE = REPO / "compose.yaml"
LOCK = REPO / "requirements.lock"
DOCKERIGNORE = REPO / ".dockerignore"

# Variables they may set that are not Likeview settings, each for a reason.
NOT_SETTINGS = {
    "PATH": "the virtualenv's bin first",
    "PYTHONDONTWRITEBYTECODE": "nothing written at run time (read-only root file system)",
    "PYTHONUNBUFFERED": "log lines leave at once",
    "PIP_NO_CACHE_DIR": "build stage only",
    "PIP_DISABLE_PIP_VERSION_CHECK": "build stage only",
}
SETTINGS = {name.upper() for name in main.Settings.model_fields}


# --- a small Dockerfile reader --------------------------------------------------------


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for raw in DOCKERFILE.read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line = pending + line
        pending = ""
        keyword, _, rest = line.partition(" ")
        instructions.append((keyword.upper(), rest.strip()))
    assert not pending, "a Dockerfile line ends in a continuation"
    return instructions


def final_stage() -> list[tuple[str, str]]:
    instructions = dockerfile_instructions()
    last_from = max(i for i, (k, _) in enumerate(instructions) if k == "FROM")
    return instructions[last_from:]


def exec_form(arguments: str) -> list[str]:
    words = json.loads(arguments)
    assert isinstance(words, list), f"not the exec (JSON) form: {arguments}"
    return words


def dockerfile_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for keyword, rest in dockerfile_instructions():
        if keyword == "ENV":
            for pair in shlex.split(rest):
                name, sep, value = pair.partition("=")
                assert sep, f"ENV without '=': {pair} (use ENV NAME=value)"
                env[name] = value
    return env


def entrypoint_and_cmd() -> tuple[list[str], list[str]]:
    found = {k: exec_form(rest) for k, rest in final_stage() if k in ("ENTRYPOINT", "CMD")}
    return found.get("ENTRYPOINT", []), found.get("CMD", [])


# --- compose --------------------------------------------------------------------------


def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def likeview_services() -> dict[str, dict]:
    """The services that run the image built here."""
    return {name: s for name, s in compose()["services"].items() if "build" in s}


_INTERPOLATION = re.compile(r"\$\{(\w+)(?::?([-?])([^}]*))?\}")


def interpolated(value: str) -> str:
    """compose's ${VAR:-default} as its default; ${VAR:?message} as a stand-in value."""

    def one(match: re.Match[str]) -> str:
        kind, rest = match.group(2), match.group(3)
        if kind == "-":
            return rest
        return f"stand-in-{match.group(1).lower()}-" + "x" * 32

    return _INTERPOLATION.sub(one, value)


def exact(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """No abbreviated flags (`--worker` for `--workers`), in every subcommand either."""
    parser.allow_abbrev = False
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for subparser in action.choices.values():
                exact(subparser)
    return parser


def parse(argv: list[str]) -> argparse.Namespace:
    """main's parser on argv; a flag it does not know fails the test (argparse exits 2)."""
    try:
        return exact(main.build_parser()).parse_args(argv)
    except SystemExit as exc:  # pragma: no cover - the failure path
        pytest.fail(f"main.py does not accept {argv}: exit {exc.code}")


def main_argv(command: list[str]) -> list[str]:
    """The arguments after `main.py` of an exec-form command."""
    assert command[:2] == ["python", "main.py"], command
    return command[2:]


# --- the tests ------------------------------------------------------------------------


def test_the_image_command_parses_and_is_serve():
    entrypoint, cmd = entrypoint_and_cmd()
    args = parse(main_argv(entrypoint + cmd))
    assert args.command == "serve"
    assert args.host == "0.0.0.0"
    exposed = {rest.split("/")[0] for k, rest in final_stage() if k == "EXPOSE"}
    assert str(args.port) in exposed


@pytest.mark.parametrize("service", sorted(likeview_services()))
def test_every_compose_command_parses(service):
    entrypoint, _ = entrypoint_and_cmd()
    command = likeview_services()[service]["command"]
    assert isinstance(command, list), "exec form, so no shell is needed in the image"
    parse(main_argv(entrypoint + command))


def test_compose_runs_two_api_processes_and_one_worker():
    services = likeview_services()
    entrypoint, _ = entrypoint_and_cmd()
    commands = {name: parse(main_argv(entrypoint + s["command"])) for name, s in services.items()}
    api = [a for a in commands.values() if a.command == "serve"]
    workers = [a for a in commands.values() if a.command == "worker"]
    assert sum(a.workers for a in api) == 2
    assert len(workers) == 1
    for name, s in services.items():
        assert s.get("deploy", {}).get("replicas", 1) == 1, name


def test_every_variable_set_is_a_setting_or_documented():
    names = set(dockerfile_env())
    for s in likeview_services().values():
        names |= set(s.get("environment", {}))
    unknown = sorted(n for n in names if n not in SETTINGS and n not in NOT_SETTINGS)
    assert not unknown, f"not a Settings field of main.py: {unknown}"
    settings_used = sorted(n for n in names if n in SETTINGS)
    # A row of a settings table: README's Configuration, or a docs/ page's.
    tables = "".join(p.read_text() for p in [REPO / "README.md", *(REPO / "docs").glob("*.md")])
    undocumented = [n for n in settings_used if f"| `{n}` |" not in tables]
    assert not undocumented, f"in no settings table (README, Configuration): {undocumented}"


@pytest.mark.parametrize("service", sorted(likeview_services()))
def test_the_values_given_pass_the_settings_validation(monkeypatch, service):
    for name in SETTINGS:
        monkeypatch.delenv(name, raising=False)
    env = {
        **{k: v for k, v in dockerfile_env().items() if k in SETTINGS},
        **{
            k: interpolated(str(v))
            for k, v in likeview_services()[service].get("environment", {}).items()
        },
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = main.Settings()
    # Production settings: real backends, a real secret, no development conveniences.
    assert settings.mongodb_url and settings.redis_url
    assert settings.jwt_secret
    assert not settings.graphiql and not settings.introspection
    entrypoint, _ = entrypoint_and_cmd()
    args = parse(main_argv(entrypoint + likeview_services()[service]["command"]))
    if args.command == "serve":
        assert main.workers_refused(settings, args.workers) is None


def test_health_checks_ask_routes_the_app_serves():
    services = compose()["services"]
    for name in ("mongodb", "redis"):
        assert services[name]["healthcheck"]["test"][0] == "CMD", name
    app = main.create_app(main.Settings())
    paths = {getattr(route, "path", None) for route in app.routes}
    for name, s in likeview_services().items():
        test = s.get("healthcheck", {}).get("test")
        if test is None:
            continue
        urls = re.findall(r"http://127\.0\.0\.1:(\d+)(/\w+)", " ".join(test))
        assert urls, f"{name}: its health check asks no local URL"
        args = parse(main_argv(entrypoint_and_cmd()[0] + s["command"]))
        for port, path in urls:
            if args.command == "serve":
                assert int(port) == args.port, name
                assert path in paths, f"{name}: {path} is not a route"
            else:  # a worker answers on METRICS_PORT (prometheus_client's server)
                assert port == s["environment"]["METRICS_PORT"], name
                assert path == "/metrics", name
    assert all("healthcheck" in s for s in likeview_services().values())
    for s in likeview_services().values():
        for dependency in ("mongodb", "redis"):
            assert s["depends_on"][dependency]["condition"] == "service_healthy"


def test_the_image_is_non_root_and_read_only_friendly():
    users = [rest for k, rest in final_stage() if k == "USER"]
    assert users, "the image runs as root"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0")
    assert dockerfile_env()["PYTHONDONTWRITEBYTECODE"] == "1"
    for name, s in likeview_services().items():
        assert s.get("read_only") is True, name


def test_the_image_copies_every_package_and_the_context_allows_it():
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    setuptools = pyproject["tool"]["setuptools"]
    needed = {f"{m}.py" for m in setuptools["py-modules"]} | set(setuptools["packages"])
    copied = set()
    for keyword, rest in final_stage():
        if keyword == "COPY" and not rest.startswith("--from"):
            *sources, _ = rest.split()
            copied |= {src.rstrip("/") for src in sources}
    assert needed <= copied, f"not copied into the image: {sorted(needed - copied)}"
    allowed = {
        line[1:].rstrip("/")
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.startswith("!")
    }
    for keyword, rest in dockerfile_instructions():
        if keyword == "COPY" and not rest.startswith("--from"):
            *sources, _ = rest.split()
            for src in sources:
                assert src.rstrip("/") in allowed, f"{src} is excluded by .dockerignore"
                assert (REPO / src).exists(), src


def locked() -> dict[str, tuple[str, int]]:
    """name -> (version, number of hashes) of requirements.lock."""
    pins: dict[str, tuple[str, int]] = {}
    name = None
    for line in LOCK.read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9._-]+)==([^\s\\;]+)", line)
        if match:
            name = match.group(1).lower().replace("_", "-")
            pins[name] = (match.group(2), 0)
        elif "--hash=sha256:" in line and name is not None:
            version, hashes = pins[name]
            pins[name] = (version, hashes + 1)
    return pins


def test_the_lock_pins_every_runtime_dependency_with_hashes():
    pins = locked()
    assert pins and all(hashes > 0 for _, hashes in pins.values())
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    for spec in pyproject["project"]["dependencies"]:
        requirement = Requirement(spec)
        name = requirement.name.lower().replace("_", "-")
        assert name in pins, f"{name} is not in requirements.lock"
        version = pins[name][0]
        assert requirement.specifier.contains(version, prereleases=True), (
            f"requirements.lock has {name}=={version}, pyproject.toml wants {requirement}"
        )
    # The extras' packages too: uvicorn[standard], redis[hiredis], fakeredis[lua].
    assert {"uvloop", "httptools", "websockets", "hiredis", "lupa"} <= set(pins)
    # Runtime only: the test and lint tools stay out of the image.
    for dev in ("pytest", "ruff", "mypy", "playwright"):
        assert dev not in pins
    install = [rest for k, rest in dockerfile_instructions() if k == "RUN" and "pip" in rest]
    assert any("--require-hashes" in r and "requirements.lock" in r for r in install)
