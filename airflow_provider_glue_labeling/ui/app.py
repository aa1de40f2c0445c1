"""The labeling page's FastAPI app: routes over :mod:`~.service`, each behind Airflow's auth manager.

Plugin routes are not protected by Airflow itself, so every route here asks the auth manager:
who the user is (no credentials: 401), and for a labeling task whether they may edit that DAG's
task instances (``requires_access_dag(method="PUT", access_entity=TASK_INSTANCE)``; not allowed:
403), before anything is read or written. The DB session is Airflow's own (``SessionDep``).

Routes (under the plugin's ``/glue-labeling``): ``/`` and ``/tasks/{dag_id}/{run_id}/{task_id}/{map_index}``
are the pages; the JSON API they use is ``GET /api/tasks``, ``GET /api/tasks/{...}``,
``PUT /api/tasks/{...}/drafts`` (:class:`Draft`) and ``POST /api/tasks/{...}/submit``.
"""

from __future__ import annotations

import json
from importlib.resources import files
from typing import Any

from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity, DagDetails
from airflow.api_fastapi.common.db.common import SessionDep
from airflow.api_fastapi.core_api.security import GetUserDep, requires_access_dag
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, StrictBool, StrictInt, StrictStr

from airflow_provider_glue_labeling.labels.format import AlreadySubmitted, LabelingError
from airflow_provider_glue_labeling.ui import service
from airflow_provider_glue_labeling.ui.service import LabelingTask

TASK_PATH = "/{dag_id}/{run_id}/{task_id}/{map_index}"


class Draft(BaseModel):
    """One set's draft as the page sends it: a group number per record, and whether it is done."""

    set_id: StrictStr
    groups: list[StrictInt]
    done: StrictBool


class Submitted(BaseModel):
    """Where the labels file was written, how many records it labels, and by whom."""

    labels_s3_path: str
    rows: int
    by: str


def _page(request: Request) -> HTMLResponse:
    html = files("airflow_provider_glue_labeling.ui").joinpath("static/labeling.html").read_text("utf-8")
    return HTMLResponse(html.replace('"__ROOT__"', json.dumps(request.scope.get("root_path", ""))))


def _task(session: Any, dag_id: str, run_id: str, task_id: str, map_index: str) -> LabelingTask:
    try:
        return service.one_task(session, dag_id, run_id, task_id, map_index)
    except service.NotALabelingTask as error:
        raise HTTPException(404, str(error)) from error


def _refused(task: LabelingTask, error: Exception, prefix: str = "") -> HTTPException:
    """The HTTP error for what the service refused: 409, 422, or 502 when AWS refused its call."""
    if isinstance(error, service.NotWaiting):
        return HTTPException(409, str(error))
    if isinstance(error, AlreadySubmitted):
        return HTTPException(409, f"{prefix}{error}")
    if isinstance(error, LabelingError):
        return HTTPException(422, f"{prefix}{error}")
    return HTTPException(
        502, f"AWS refused the labeling task's call ({error}); labels at {task.labels_s3_path}"
    )


def create_app() -> FastAPI:
    """The plugin's app (Airflow 3.1+)."""
    app = FastAPI(title="Glue FindMatches labeling", docs_url=None, redoc_url=None, openapi_url=None)
    may_edit = Depends(requires_access_dag(method="PUT", access_entity=DagAccessEntity.TASK_INSTANCE))

    @app.get("/", response_class=HTMLResponse)
    def list_page(request: Request, user: GetUserDep) -> HTMLResponse:
        return _page(request)

    @app.get("/tasks" + TASK_PATH, response_class=HTMLResponse, dependencies=[may_edit])
    def task_page(request: Request) -> HTMLResponse:
        return _page(request)

    @app.get("/api/tasks")
    def list_tasks(user: GetUserDep, session: SessionDep) -> list[dict[str, Any]]:
        """The waiting labeling tasks of the DAGs whose task instances the user may edit."""
        from airflow.api_fastapi.app import get_auth_manager

        auth, allowed = get_auth_manager(), {}
        listed = []
        for task in service.labeling_tasks(session, state=service.WAITING_STATES):
            dag_id = task.ti.dag_id
            if dag_id not in allowed:
                allowed[dag_id] = auth.is_authorized_dag(
                    method="PUT",
                    access_entity=DagAccessEntity.TASK_INSTANCE,
                    details=DagDetails(id=dag_id),
                    user=user,
                )
            if allowed[dag_id]:
                listed.append({**task.summary(), **service.counts(task)})
        return listed

    @app.get("/api/tasks" + TASK_PATH, dependencies=[may_edit])
    def get_task(
        dag_id: str, run_id: str, task_id: str, map_index: str, session: SessionDep
    ) -> dict[str, Any]:
        task = _task(session, dag_id, run_id, task_id, map_index)
        try:
            return task.view()
        except service.REFUSALS as error:
            raise _refused(task, error, f"{task.labeling_set_s3_path}: ") from error

    @app.put("/api/tasks" + TASK_PATH + "/drafts", dependencies=[may_edit])
    def save_draft(
        dag_id: str,
        run_id: str,
        task_id: str,
        map_index: str,
        draft: Draft,
        user: GetUserDep,
        session: SessionDep,
    ) -> dict[str, Any]:
        task = _task(session, dag_id, run_id, task_id, map_index)
        try:
            return task.save_draft(draft.set_id, draft.groups, draft.done, user.get_name())
        except service.REFUSALS as error:
            raise _refused(task, error) from error

    @app.post("/api/tasks" + TASK_PATH + "/submit", dependencies=[may_edit])
    def submit(
        dag_id: str, run_id: str, task_id: str, map_index: str, user: GetUserDep, session: SessionDep
    ) -> Submitted:
        task = _task(session, dag_id, run_id, task_id, map_index)
        try:
            labeling = task.submit(user.get_name())
        except service.REFUSALS as error:
            raise _refused(task, error, "Not submitted: ") from error
        return Submitted(labels_s3_path=task.labels_s3_path, rows=labeling.records(), by=user.get_name())

    return app
