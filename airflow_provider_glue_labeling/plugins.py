"""The labeling page: an Airflow UI plugin (Airflow 3.1+) where people label a waiting labeling set.

``GlueLabelingPlugin`` is registered through the provider's ``get_provider_info()["plugins"]``.
It serves a FastAPI app under ``/glue-labeling`` on the api-server and adds it to the UI: an
entry in the navigation (the labeling tasks waiting for people) and a tab on every task instance
(a labeling task's page). Plugin routes are not protected by Airflow itself, so every route here
asks the auth manager: who the user is (no credentials: 401), and for a labeling task whether they
may edit that DAG's task instances (``requires_access_dag(method="PUT",
access_entity=TASK_INSTANCE)``; not allowed: 403), before anything is read or written.

Routes (``/glue-labeling`` + ...): ``/`` and ``/tasks/{dag_id}/{run_id}/{task_id}/{map_index}``
are the pages; the JSON API they use is ``GET /api/tasks``, ``GET /api/tasks/{...}``,
``PUT /api/tasks/{...}/drafts`` (``{"set_id", "groups", "done"}``) and
``POST /api/tasks/{...}/submit``.
"""

import json
import logging
from functools import cache
from importlib.metadata import version
from importlib.resources import files
from typing import Any

from airflow.plugins_manager import AirflowPlugin

URL_PREFIX = "/glue-labeling"
HAS_UI_PLUGINS = tuple(int(part) for part in version("apache-airflow").split(".")[:2]) >= (3, 1)
# A labeling task waits in one of these states: deferred, rescheduled between looks, or in a worker.
WAITING_STATES = ("deferred", "up_for_reschedule", "running")
TASK_PATH = "/{dag_id}/{run_id}/{task_id}/{map_index}"
log = logging.getLogger(__name__)


def create_app() -> Any:
    """The plugin's FastAPI app (Airflow 3.1+: it imports the api-server's auth dependencies)."""
    from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity, DagDetails
    from airflow.api_fastapi.core_api.security import GetUserDep, requires_access_dag
    from airflow.models.renderedtifields import RenderedTaskInstanceFields
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from botocore.exceptions import BotoCoreError, ClientError
    from fastapi import Body, Depends, FastAPI, HTTPException, Request
    from fastapi.responses import HTMLResponse
    from sqlalchemy import and_, select

    from airflow_provider_glue_labeling.labeling import FIELDS, AlreadySubmitted, LabelingError, LabelingTask

    app = FastAPI(title="Glue FindMatches labeling", docs_url=None, redoc_url=None, openapi_url=None)
    may_edit = Depends(requires_access_dag(method="PUT", access_entity=DagAccessEntity.TASK_INSTANCE))

    def labeling_tasks(**where: Any) -> list[tuple[Any, LabelingTask]]:
        """Task instances of labeling tasks, found by their rendered template fields.

        Airflow's task runner stores those fields as it starts the task; no user can edit them, so
        the connection and the S3 paths the page uses are the task's own.
        """
        rtif = RenderedTaskInstanceFields
        join = and_(
            rtif.dag_id == TaskInstance.dag_id,
            rtif.run_id == TaskInstance.run_id,
            rtif.task_id == TaskInstance.task_id,
            rtif.map_index == TaskInstance.map_index,
        )
        query = select(TaskInstance, rtif.rendered_fields).join(rtif, join)
        for name, value in where.items():
            column = getattr(TaskInstance, name)
            query = query.where(column.in_(value) if isinstance(value, tuple) else column == value)
        with create_session() as session:
            rows = session.execute(query.order_by(TaskInstance.start_date)).all()
        found = []
        for ti, fields in rows:
            if isinstance(fields, dict) and all(fields.get(name) for name in FIELDS[:3]):
                try:
                    found.append((ti, LabelingTask(fields)))
                except ValueError as error:  # a labels_s3_path that is not an S3 URI
                    log.warning("Not a labeling task: %s %s %s: %s", ti.dag_id, ti.run_id, ti.task_id, error)
        return found

    def one_task(dag_id: str, run_id: str, task_id: str, map_index: str) -> tuple[Any, LabelingTask]:
        # The UI leaves {MAP_INDEX} as it is in a task-instance tab's link for a task that is not mapped.
        try:
            index = int(map_index)
        except ValueError:
            index = -1
        found = labeling_tasks(dag_id=dag_id, run_id=run_id, task_id=task_id, map_index=index)
        if not found:
            raise HTTPException(404, f"{dag_id} / {run_id} / {task_id}[{index}] is not a labeling task")
        return found[0]

    def waiting(ti: Any) -> None:
        if ti.state not in WAITING_STATES:
            raise HTTPException(409, f"the labeling task is {ti.state}, not waiting for labels")

    def aws(task: LabelingTask, error: Exception) -> HTTPException:
        return HTTPException(
            502, f"AWS refused the labeling task's call ({error}); labels at {task.labels_s3_path}"
        )

    def summary(ti: Any, task: LabelingTask) -> dict[str, Any]:
        return {
            "dag_id": ti.dag_id,
            "run_id": ti.run_id,
            "task_id": ti.task_id,
            "map_index": ti.map_index,
            "state": ti.state,
            "waiting_since": ti.start_date.isoformat() if ti.start_date else None,
            "transform_id": task.transform_id,
            "labeling_set_s3_path": task.labeling_set_s3_path,
            "labels_s3_path": task.labels_s3_path,
        }

    def page(request: Request) -> HTMLResponse:
        html = files("airflow_provider_glue_labeling").joinpath("static/labeling.html").read_text("utf-8")
        return HTMLResponse(html.replace('"__ROOT__"', json.dumps(request.scope.get("root_path", ""))))

    @app.get("/", response_class=HTMLResponse)
    def list_page(request: Request, user: GetUserDep) -> HTMLResponse:
        return page(request)

    @app.get("/tasks" + TASK_PATH, response_class=HTMLResponse, dependencies=[may_edit])
    def task_page(request: Request) -> HTMLResponse:
        return page(request)

    @app.get("/api/tasks")
    def list_tasks(user: GetUserDep) -> list[dict[str, Any]]:
        from airflow.api_fastapi.app import get_auth_manager

        auth, allowed = get_auth_manager(), {}
        listed = []
        for ti, task in labeling_tasks(state=WAITING_STATES):
            if ti.dag_id not in allowed:
                allowed[ti.dag_id] = auth.is_authorized_dag(
                    method="PUT",
                    access_entity=DagAccessEntity.TASK_INSTANCE,
                    details=DagDetails(id=ti.dag_id),
                    user=user,
                )
            if not allowed[ti.dag_id]:
                continue
            try:
                labeling = task.labeling_set()
                counts: dict[str, Any] = {"sets": len(labeling.sets), "records": labeling.records()}
            except (BotoCoreError, ClientError, LabelingError) as error:  # one task's trouble, not the list's
                counts = {"sets": None, "records": None, "problem": str(error)}
            listed.append({**summary(ti, task), **counts})
        return listed

    @app.get("/api/tasks" + TASK_PATH, dependencies=[may_edit])
    def get_task(dag_id: str, run_id: str, task_id: str, map_index: str) -> dict[str, Any]:
        ti, task = one_task(dag_id, run_id, task_id, map_index)
        try:
            labeling = task.labeling_set()
            return {
                **summary(ti, task),
                "columns": labeling.columns,
                "sets": [{"set_id": set_id, "records": rows} for set_id, rows in labeling.sets.items()],
                "drafts": task.drafts(),
                "quality": task.quality(),
            }
        except LabelingError as error:
            raise HTTPException(422, f"{task.labeling_set_s3_path}: {error}") from error
        except (BotoCoreError, ClientError) as error:
            raise aws(task, error) from error

    @app.put("/api/tasks" + TASK_PATH + "/drafts", dependencies=[may_edit])
    def save_draft(
        dag_id: str,
        run_id: str,
        task_id: str,
        map_index: str,
        user: GetUserDep,
        draft: dict[str, Any] = Body(...),  # noqa: B008 (FastAPI's way)
    ) -> dict[str, Any]:
        ti, task = one_task(dag_id, run_id, task_id, map_index)
        waiting(ti)
        try:
            return task.save_draft(
                task.labeling_set(),
                draft.get("set_id"),
                draft.get("groups"),
                draft.get("done"),
                user.get_name(),
            )
        except LabelingError as error:
            raise HTTPException(422, str(error)) from error
        except (BotoCoreError, ClientError) as error:
            raise aws(task, error) from error

    @app.post("/api/tasks" + TASK_PATH + "/submit", dependencies=[may_edit])
    def submit(dag_id: str, run_id: str, task_id: str, map_index: str, user: GetUserDep) -> dict[str, Any]:
        ti, task = one_task(dag_id, run_id, task_id, map_index)
        waiting(ti)
        try:
            labeling = task.submit(user.get_name())
        except AlreadySubmitted as error:
            raise HTTPException(409, f"Not submitted: {error}") from error
        except LabelingError as error:
            raise HTTPException(422, f"Not submitted: {error}") from error
        except (BotoCoreError, ClientError) as error:
            raise aws(task, error) from error
        return {"labels_s3_path": task.labels_s3_path, "rows": labeling.records(), "by": user.get_name()}

    return app


class _Apps:
    """``fastapi_apps``, built when the api-server asks: other processes load plugins too, and need no app."""

    def __get__(self, plugin: Any, owner: type | None = None) -> list[dict[str, Any]]:
        return [{"app": _app(), "url_prefix": URL_PREFIX, "name": "Glue FindMatches labeling"}]


@cache
def _app() -> Any:
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
