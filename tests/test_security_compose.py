"""Issue 15 case 2: the compose stack's secrets, ports and user, checked without Docker.

Before: `${AIRFLOW_JWT_SECRET:-change-me-in-production}` meant a stack started without the
variable signed its tokens with a published string (a token for admin/ADMIN signed with it was
accepted); no fixed fernet or API key; the API server on every interface; the image ran as root."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
SECRETS = {  # Airflow option -> what compose must require from the environment
    "AIRFLOW__API_AUTH__JWT_SECRET": "AIRFLOW_JWT_SECRET",
    "AIRFLOW__CORE__FERNET_KEY": "AIRFLOW_FERNET_KEY",
    "AIRFLOW__API__SECRET_KEY": "AIRFLOW_API_SECRET_KEY",
}


class Unset(Exception):
    pass


def interpolate(value: str, env: dict) -> str:
    """Compose's variable substitution: ${V}, ${V:-default}, ${V-default}, ${V:?err}, ${V?err}."""
    def one(m):
        name, op, arg = m.group(1), m.group(2) or "", m.group(3) or ""
        val = env.get(name)
        if op in (":?", "?") and (val is None or (op == ":?" and val == "")):
            raise Unset(f"{name}: {arg}")
        if op == ":-" and not val:
            return arg
        if op == "-" and val is None:
            return arg
        return val or ""
    return re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}", one, value)


@pytest.fixture(scope="module")
def compose():
    return yaml.safe_load((REPO / "docker-compose.yaml").read_text())


def test_interpolation_model():
    assert interpolate("${A:-x}", {}) == "x" and interpolate("${A:-x}", {"A": "y"}) == "y"
    with pytest.raises(Unset):
        interpolate("${A:?need A}", {"A": ""})


def test_secrets_are_required_from_the_environment(compose):
    env = compose["x-airflow-common"]["environment"]
    for option, variable in SECRETS.items():
        assert option in env, f"{option} is not set: a recreated container would get a new random one"
        with pytest.raises(Unset):
            interpolate(env[option], {})  # no default: compose refuses to start
        assert interpolate(env[option], {variable: "s3cr3t"}) == "s3cr3t"
    with pytest.raises(Unset):
        interpolate(env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"], {})
    with pytest.raises(Unset):
        interpolate(compose["services"]["postgres"]["environment"]["POSTGRES_PASSWORD"], {})
    text = (REPO / "docker-compose.yaml").read_text()
    assert "change-me" not in text and "airflow:airflow@" not in text


def test_published_default_secret_no_longer_signs_tokens(compose):
    """What the stack does without AIRFLOW_JWT_SECRET: before, the auth manager's key was the
    published default, so this forged admin token verified."""
    import jwt

    env = compose["x-airflow-common"]["environment"]
    try:
        key = interpolate(env["AIRFLOW__API_AUTH__JWT_SECRET"], {})
    except Unset:
        return  # the stack does not start: nothing accepts any token
    forged = jwt.encode({"sub": "admin", "role": "ADMIN"}, "change-me-in-production", algorithm="HS512")
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(forged, key, algorithms=["HS512"])


def test_ports_bound_to_loopback(compose):
    for name, svc in compose["services"].items():
        for port in svc.get("ports") or []:
            spec = port if isinstance(port, str) else f"{port.get('host_ip', '')}:{port['published']}:{port['target']}"
            assert spec.startswith("127.0.0.1:"), f"{name} publishes {spec} on every interface"


def test_image_runs_as_an_unprivileged_user(compose):
    text = (REPO / "Dockerfile").read_text()
    users = re.findall(r"^USER\s+(\S+)", text, re.M)
    assert users and users[-1].split(":")[0] not in ("root", "0"), users
    for name, svc in compose["services"].items():
        if "user" in svc:
            assert str(svc["user"]).split(":")[0] not in ("root", "0"), name
