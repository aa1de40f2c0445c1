"""The labeling page's plugin: registers the :mod:`~.ui` app and its links in the Airflow UI (3.1+).

``GlueLabelingPlugin`` is registered through the provider's ``get_provider_info()["plugins"]``.
It serves the FastAPI app under ``/glue-labeling`` on the api-server and adds it to the UI: an
entry in the navigation (the labeling tasks waiting for people) and a tab on every task instance
(a labeling task's page).
"""

from __future__ import annotations

from functools import cache
from typing import Any

from airflow.plugins_manager import AirflowPlugin

from airflow_provider_glue_labeling.versions import HAS_UI_PLUGINS

URL_PREFIX = "/glue-labeling"


class _Apps:
    """``fastapi_apps``, built when the api-server asks: other processes load plugins too, and need no app."""

    def __get__(self, plugin: Any, owner: type | None = None) -> list[dict[str, Any]]:
        return [{"app": _app(), "url_prefix": URL_PREFIX, "name": "Glue FindMatches labeling"}]


@cache
def _app() -> Any:
    from airflow_provider_glue_labeling.ui.app import create_app  # the api-server's modules: 3.1+ only

    return create_app()


class GlueLabelingPlugin(AirflowPlugin):
    """The labeling page in the Airflow UI (Airflow 3.1+; on older Airflow it adds nothing)."""

    name = "glue_labeling"
    if HAS_UI_PLUGINS:
        fastapi_apps = _Apps()
        external_views = [
            {
                "name": "Labeling",
                "href": URL_PREFIX.lstrip("/") + "/",
                "destination": "nav",
                "url_route": "glue-labeling",
            },
            {
                "name": "Labeling",
                "href": URL_PREFIX.lstrip("/") + "/tasks/{DAG_ID}/{RUN_ID}/{TASK_ID}/{MAP_INDEX}",
                "destination": "task_instance",
                "url_route": "glue-labeling-task",
            },
        ]


def entry_point_plugin() -> type[AirflowPlugin] | None:
    """The plugin for the ``airflow.plugins`` entry point, when Airflow would not load it otherwise.

    Airflow loads the plugins of ``get_provider_info()["plugins"]`` only when
    ``[core] lazy_discover_providers`` is False; by default (True) it loads entry-point plugins
    only. The entry point gives the plugin in that case and nothing otherwise (Airflow skips an
    entry point that is not a plugin class), so the plugin is registered once either way.
    """
    from airflow.configuration import conf

    return GlueLabelingPlugin if conf.getboolean("core", "lazy_discover_providers", fallback=True) else None


ENTRY_POINT_PLUGIN = entry_point_plugin()
