"""The labeling page's API in process, for the tests of its routes."""

from __future__ import annotations

import pytest

# Who signs in (Airflow's simple auth manager): the page's tests' people and their roles.
USERS = {"alice": "admin", "bea": "user", "carl": "user", "victor": "viewer"}


@pytest.fixture(scope="module")
def api(airflow_db):
    """Airflow's api-server app in this process, and a function giving a user's request headers."""
    import os

    os.environ["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS"] = ",".join(f"{u}:{r}" for u, r in USERS.items())
    from airflow.api_fastapi.app import create_app, get_auth_manager
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser
    from fastapi.testclient import TestClient

    app = create_app(apps="core")

    def as_user(name: str) -> dict[str, str]:
        token = get_auth_manager().generate_jwt(SimpleAuthManagerUser(username=name, role=USERS[name]))
        return {"Authorization": f"Bearer {token}"}

    with TestClient(app) as test_client:
        yield test_client, as_user
