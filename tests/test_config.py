"""Settings resolve as constructor > environment > default, and bad values name themselves."""

from __future__ import annotations

import pytest

from agnt5 import Worker
from agnt5.client import AsyncClient, Client
from agnt5.config import Endpoint, WorkerConfig, parse_endpoint


def test_defaults() -> None:
    config = WorkerConfig.resolve({}, service_name="svc")
    assert config.service_version == "1.0.0"
    assert config.coordinator_endpoint == "http://localhost:9091"
    assert config.runtime == "standalone"
    assert config.log_level == "INFO"
    assert config.log_format == "text"
    assert config.disable_telemetry is False
    assert config.api_key is None
    assert config.max_concurrency == 100
    assert (config.health_host, config.health_port, config.serves_metrics) == (
        "0.0.0.0",
        8000,
        True,
    )
    assert config.drain_timeout == 30.0
    assert config.max_body_size == 10 * 1024 * 1024
    assert config.worker_id


def test_environment_fills_what_the_constructor_leaves_out() -> None:
    environ = {
        "AGNT5_SERVICE_NAME": "env-service",
        "AGNT5_SERVICE_VERSION": "2.0.0",
        "AGNT5_COORDINATOR_ENDPOINT": "https://coordinator.example:443",
        "AGNT5_RUNTIME": "ASGI",
        "AGNT5_LOG_LEVEL": "debug",
        "AGNT5_LOG_FORMAT": "json",
        "AGNT5_DISABLE_TELEMETRY": "true",
        "AGNT5_API_KEY": "secret",
        "AGNT5_MAX_CONCURRENCY": "8",
        "AGNT5_DRAIN_TIMEOUT": "2.5",
        "AGNT5_WORKER_ID": "w-1",
        "AGNT5_HEALTH_HOST": "127.0.0.1",
        "AGNT5_HEALTH_PORT": "9100",
    }
    config = WorkerConfig.resolve(environ)
    assert (config.service_name, config.service_version, config.runtime) == (
        "env-service",
        "2.0.0",
        "asgi",
    )
    assert config.endpoint == Endpoint("coordinator.example:443", secure=True)
    assert (config.log_level, config.log_format, config.disable_telemetry) == (
        "DEBUG",
        "json",
        True,
    )
    assert (config.api_key, config.max_concurrency, config.drain_timeout) == ("secret", 8, 2.5)
    assert (config.worker_id, config.health_host, config.health_port) == ("w-1", "127.0.0.1", 9100)
    assert not config.serves_metrics  # an ASGI worker has no health server


def test_constructor_wins_over_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGNT5_SERVICE_NAME", "from-env")
    monkeypatch.setenv("AGNT5_COORDINATOR_ENDPOINT", "http://elsewhere:1")
    worker = Worker(service_name="explicit-service", coordinator_endpoint="http://localhost:9091")
    assert worker.service_name == "explicit-service"
    assert worker.coordinator_endpoint == "http://localhost:9091"
    assert Worker().service_name == "from-env"


def test_missing_service_name_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AGNT5_SERVICE_NAME", raising=False)
    with pytest.raises(ValueError, match="service name is required.*AGNT5_SERVICE_NAME"):
        Worker()


@pytest.mark.parametrize(
    ("environ", "given", "message"),
    [
        (
            {"AGNT5_RUNTIME": "lambda"},
            {},
            "invalid AGNT5_RUNTIME: expected one of standalone, asgi",
        ),
        ({}, {"runtime": "lambda"}, "invalid runtime: expected one of standalone, asgi"),
        (
            {"AGNT5_MAX_CONCURRENCY": "many"},
            {},
            "invalid AGNT5_MAX_CONCURRENCY: expected an integer",
        ),
        ({}, {"max_concurrency": 0}, "invalid max_concurrency: expected an integer >= 1"),
        (
            {"AGNT5_DRAIN_TIMEOUT": "-1"},
            {},
            "invalid AGNT5_DRAIN_TIMEOUT: expected a finite number",
        ),
        (
            {"AGNT5_DISABLE_TELEMETRY": "maybe"},
            {},
            "invalid AGNT5_DISABLE_TELEMETRY: expected true or false",
        ),
        ({"AGNT5_LOG_FORMAT": "xml"}, {}, "invalid AGNT5_LOG_FORMAT: expected one of text, json"),
        (
            {"AGNT5_HEALTH_PORT": "70000"},
            {},
            "invalid AGNT5_HEALTH_PORT: expected an integer between",
        ),
        (
            {"AGNT5_HEALTH_HOST": "http://0.0.0.0"},
            {},
            "invalid AGNT5_HEALTH_HOST: expected an IP address or a host name",
        ),
        ({}, {"health_port": -1}, "invalid health_port: expected an integer between 0 and 65535"),
        ({"AGNT5_COORDINATOR_ENDPOINT": "ftp://x"}, {}, "invalid AGNT5_COORDINATOR_ENDPOINT"),
        (
            {},
            {"coordinator_endpoint": "http://host:notaport"},
            "invalid coordinator_endpoint: invalid port",
        ),
    ],
)
def test_malformed_values_name_the_setting(
    environ: dict[str, str], given: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        WorkerConfig.resolve(environ, service_name="svc", **given)


@pytest.mark.parametrize(
    ("given", "level"), [("WARN", "WARNING"), ("warn", "WARNING"), ("fatal", "CRITICAL")]
)
def test_log_level_names_logging_accepts(given: str, level: str) -> None:
    assert WorkerConfig.resolve({"AGNT5_LOG_LEVEL": given}, service_name="s").log_level == level
    with pytest.raises(ValueError, match="invalid log_level: expected one of DEBUG, INFO"):
        WorkerConfig.resolve({}, service_name="s", log_level="LOUD")


@pytest.mark.parametrize(
    ("environ", "given"), [({"AGNT5_HEALTH_PORT": "0"}, {}), ({}, {"health_port": 0})]
)
def test_health_port_zero_turns_the_health_server_off(
    environ: dict[str, str], given: dict[str, object]
) -> None:
    config = WorkerConfig.resolve(environ, service_name="svc", **given)
    assert (config.health_port, config.serves_metrics) == (0, False)


def test_unknown_option_is_refused() -> None:
    with pytest.raises(TypeError, match="unknown Worker option.*max_concurency"):
        Worker("svc", max_concurency=3)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://localhost:9091", Endpoint("localhost:9091", False)),
        ("https://coordinator.agnt5.com", Endpoint("coordinator.agnt5.com:443", True)),
        ("127.0.0.1:7000", Endpoint("127.0.0.1:7000", False)),
        ("http://[::1]:9091", Endpoint("[::1]:9091", False)),
    ],
)
def test_parse_endpoint(url: str, expected: Endpoint) -> None:
    assert parse_endpoint(url) == expected


@pytest.mark.parametrize("key", ["a\nb", "two words", "tab\there", "caf\u00e9"])
def test_an_api_key_that_cannot_travel_in_a_header_is_refused(key: str) -> None:
    """A key with a line break, a space or a non-ASCII character would make every call fail as
    invalid metadata (a worker retried that forever): the Worker and the clients refuse it."""
    with pytest.raises(ValueError, match="invalid api_key: must be visible ASCII"):
        WorkerConfig.resolve({}, service_name="svc", api_key=key)
    with pytest.raises(ValueError, match="invalid AGNT5_API_KEY: must be visible ASCII"):
        WorkerConfig.resolve({"AGNT5_API_KEY": key}, service_name="svc")
    for client in (Client, AsyncClient):
        with pytest.raises(ValueError, match="invalid api_key: must be visible ASCII"):
            client(api_key=key)
