import re
import tomllib

import pytest
from django.conf import settings
from django.core.cache import cache
from django.db import connection

from tracker import health

pytestmark = pytest.mark.django_db


def _raise(*args, **kwargs):
    raise ConnectionError("secret-internal-detail")


def test_health_ok_reports_each_check_and_a_stable_instance_id(client):
    first = client.get("/health")
    second = client.get("/health")
    assert first.status_code == 200
    assert first["Content-Type"] == "application/json"
    body = first.json()
    assert body["status"] == "ok"
    assert body["database"] == "ok"
    assert body["cache"] == "ok"
    with open(settings.BASE_DIR / "pyproject.toml", "rb") as fh:
        assert body["version"] == tomllib.load(fh)["project"]["version"]
    assert re.fullmatch(r"\d+\.\d+\.\d+", body["version"])
    assert body["instance_id"] and body["instance_id"] == second.json()["instance_id"]
    assert "no-cache" in first["Cache-Control"]


def test_health_needs_no_authentication_and_refuses_post(client):
    assert client.get("/health").status_code == 200
    assert client.post("/health").status_code == 405


def test_health_failing_cache_answers_503_without_leaking_the_error(client, monkeypatch):
    monkeypatch.setattr(cache, "set", _raise)
    monkeypatch.setattr(cache, "get", _raise)
    response = client.get("/health")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "error"
    assert body["cache"] == "error"
    assert body["database"] == "ok"
    assert "secret-internal-detail" not in response.content.decode()


def test_health_cache_returning_another_value_is_a_failure(client, monkeypatch):
    monkeypatch.setattr(cache, "get", lambda *args, **kwargs: None)
    response = client.get("/health")
    assert response.status_code == 503
    assert response.json()["cache"] == "error"


def test_health_failing_database_answers_503_without_leaking_the_error(client, monkeypatch):
    monkeypatch.setattr(connection, "cursor", _raise)
    response = client.get("/health")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "error"
    assert body["database"] == "error"
    assert body["cache"] == "ok"
    assert "secret-internal-detail" not in response.content.decode()


def test_instance_id_changes_with_the_process(monkeypatch):
    current = health.instance_id()
    assert health.instance_id() == current
    monkeypatch.setattr(health.os, "getpid", lambda: -1)
    assert health.instance_id() != current
