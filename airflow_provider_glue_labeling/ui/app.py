"""The labeling page's FastAPI app: routes over :mod:`~.service`, each behind Airflow's auth manager.

Plugin routes are not protected by Airflow itself, so every route here asks the auth manager:
who the user is (no credentials: 401), and for a labeling task whether they may edit that DAG's
task instances (``requires_access_dag(method="PUT", access_entity=TASK_INSTANCE)``; not allowed:
403), before anything is read or written. The DB session is Airflow's own (``SessionDep``).

Routes (under the plugin's ``/glue-labeling``): ``/`` and ``/tasks/{dag_id}/{run_id}/{task_id}/{map_index}``
are the pages; the JSON API they use is ``GET /api/tasks``, ``GET /api/tasks/{...}``,
``PUT /api/tasks/{...}/drafts`` (:class:`Draft`), ``POST /api/tasks/{...}/claims``
(:class:`Claim`) and ``POST /api/tasks/{...}/submit``.

Writes also refuse what another site could send (:func:`same_origin_write`: 403), request bodies
over :data:`MAX_BODY_BYTES` are refused before they are parsed (413), and each write is an entry
of Airflow's Audit Log (``glue_labeling_save_draft``, ``glue_labeling_claim``,
``glue_labeling_submit``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from importlib.resources import files
from typing import Any
from urllib.parse import urlsplit

from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity, DagDetails
from airflow.api_fastapi.common.db.common import SessionDep
from airflow.api_fastapi.core_api.security import GetUserDep, requires_access_dag
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, StrictBool, StrictInt, StrictStr

from airflow_provider_glue_labeling import hitl
from airflow_provider_glue_labeling.labels.format import AlreadySubmitted, LabelingError
from airflow_provider_glue_labeling.ui import service, tasks
from airflow_provider_glue_labeling.ui.service import WRITE_HEADER, LabelingTask

TASK_PATH = "/{dag_id}/{run_id}/{task_id}/{map_index}"


# What a person reads when a page is refused them.
PAGE_REFUSALS = {
    401: "Sign in to Airflow first: the labeling page is part of it.",
    403: "You may not label this task: labeling needs the right to edit this DAG's task instances, "
    "and to be one of the task's assigned users if it names some. An Airflow admin can give it to you.",
}
# The largest request body read: a draft of a 50-record set is about 1 KiB.
MAX_BODY_BYTES = 64 * 1024


class Draft(BaseModel):
    """One set's draft as the page sends it: a group number per record, whether it is done, and
    the version of the draft it was made from (0: none yet)."""

    set_id: StrictStr
    groups: list[StrictInt]
    done: StrictBool
    version: StrictInt = 0


class Claim(BaseModel):
    """The set a person takes to label."""

    set_id: StrictStr


class Submitted(BaseModel):
    """Where the labels file was written, how many records it labels, and by whom."""

    labels_s3_path: str
    rows: int
    by: str


def _page(request: Request) -> HTMLResponse:
    html = files("airflow_provider_glue_labeling.ui").joinpath("static/labeling.html").read_text("utf-8")
    return HTMLResponse(html.replace('"__ROOT__"', json.dumps(request.scope.get("root_path", ""))))


def _task(session: Any, user: Any, dag_id: str, run_id: str, task_id: str, map_index: str) -> LabelingTask:
    """The labeling task, if ``user`` may label it: 404 when there is none, 403 when its
    human-in-the-loop request names other users (``assigned_users``)."""
    try:
        task = tasks.one_task(session, dag_id, run_id, task_id, map_index)
    except tasks.NotALabelingTask as error:
        raise HTTPException(404, str(error)) from error
    request = hitl.request_of(task.ti, session)
    if not hitl.may_answer(request, user):
        names = ", ".join(str(u.get("name") or u["id"]) for u in request.assigned_users)
        raise HTTPException(403, f"This labeling task is assigned to {names}, not to {user.get_name()}")
    return task


def same_origin_write(request: Request) -> None:
    """Refuse a write that another site could have made (403): it must carry :data:`WRITE_HEADER`,
    and when the browser says where it comes from (``Sec-Fetch-Site``, ``Origin``), this site."""
    site = request.headers.get("sec-fetch-site")
    origin = request.headers.get("origin")
    # The host only: behind a proxy that ends TLS the app may see http where the browser saw https.
    host = request.headers.get("host", request.url.netloc)
    if site not in (None, "same-origin", "none") or (origin is not None and urlsplit(origin).netloc != host):
        raise HTTPException(
            403, f"A write from another site is refused (Origin {origin}, Sec-Fetch-Site {site})"
        )
    if WRITE_HEADER.lower() not in request.headers:
        raise HTTPException(
            403, f"A write must carry the {WRITE_HEADER} header, as the labeling page sends it"
        )


class BodyLimit:
    """ASGI middleware: a request body over ``limit`` bytes gets 413 before anything parses it."""

    def __init__(self, app: Any, limit: int = MAX_BODY_BYTES) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.limit):
            await self._too_large(send)
            return
        seen = 0

        async def counted() -> Any:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:
                raise HTTPException(413, f"Request body over {self.limit} bytes")
            return message

        await self.app(scope, counted, send)

    async def _too_large(self, send: Any) -> None:
        body = json.dumps({"detail": f"Request body over {self.limit} bytes"}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": body})


def _carry_out(task: LabelingTask, work: Callable[[], Any], prefix: str = "") -> Any:
    """Do ``work`` for ``task``; what the service refuses becomes its HTTP error (:func:`_refused`)."""
    try:
        return work()
    except service.REFUSALS as error:
        raise _refused(task, error, prefix) from error


def _refused(task: LabelingTask, error: Exception, prefix: str = "") -> HTTPException:
    """The HTTP error for what the service refused: 409, 422, or 502 when AWS refused its call."""
    if isinstance(error, service.ClaimedByOther):
        return HTTPException(409, str(error))
    if isinstance(error, service.StaleDraft):
        return HTTPException(409, {"message": str(error), "draft": error.draft})
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
    from airflow.api_fastapi.logging.decorators import action_logging

    app = FastAPI(title="Glue FindMatches labeling", docs_url=None, redoc_url=None, openapi_url=None)
    app.add_middleware(BodyLimit)

    @app.exception_handler(HTTPException)
    async def refused_page(request: Request, error: HTTPException) -> Any:
        """A person refused a page (not the JSON API) reads a sentence, not ``{"detail": ...}``."""
        if error.status_code in PAGE_REFUSALS and "/api/" not in request.url.path:
            return HTMLResponse(
                f"<!doctype html><meta charset=utf-8><title>Labeling</title><p>{PAGE_REFUSALS[error.status_code]}</p>",
                status_code=error.status_code,
                headers=error.headers,
            )
        return await http_exception_handler(request, error)

    may_edit = Depends(requires_access_dag(method="PUT", access_entity=DagAccessEntity.TASK_INSTANCE))
    # Who did what goes to Airflow's Audit Log (user, DAG, run, task, the draft's body).
    writes = [may_edit, Depends(same_origin_write)]

    @app.get("/", response_class=HTMLResponse)
    def list_page(request: Request, user: GetUserDep) -> HTMLResponse:
        return _page(request)

    @app.get("/tasks" + TASK_PATH, response_class=HTMLResponse, dependencies=[may_edit])
    def task_page(
        request: Request,
        dag_id: str,
        run_id: str,
        task_id: str,
        map_index: str,
        user: GetUserDep,
        session: SessionDep,
    ) -> HTMLResponse:
        _task(session, user, dag_id, run_id, task_id, map_index)
        return _page(request)

    @app.get("/api/tasks")
    def list_tasks(user: GetUserDep, session: SessionDep) -> list[dict[str, Any]]:
        """The waiting labeling tasks of the DAGs whose task instances the user may edit."""
        from airflow.api_fastapi.app import get_auth_manager
        from airflow.models.dag import DagModel

        auth, allowed = get_auth_manager(), {}
        listed = []
        for task in tasks.labeling_tasks(session, state=service.WAITING_STATES):
            dag_id = task.ti.dag_id
            if dag_id not in allowed:
                # The DAG's team, as requires_access_dag passes it (multi-team mode): never read
                # another team's labeling set.
                team = DagModel.get_team_name(dag_id, session=session)
                allowed[dag_id] = auth.is_authorized_dag(
                    method="PUT",
                    access_entity=DagAccessEntity.TASK_INSTANCE,
                    details=DagDetails(id=dag_id, team_name=team) if team else DagDetails(id=dag_id),
                    user=user,
                )
            request = hitl.request_of(task.ti, session)
            if allowed[dag_id] and hitl.may_answer(request, user):
                assigned = (
                    [str(u.get("name") or u["id"]) for u in (request.assigned_users or [])] if request else []
                )
                listed.append({**task.summary(), **tasks.counts(task), "assigned_users": assigned})
        return listed

    @app.get("/api/tasks" + TASK_PATH, dependencies=[may_edit])
    def get_task(
        dag_id: str, run_id: str, task_id: str, map_index: str, user: GetUserDep, session: SessionDep
    ) -> dict[str, Any]:
        task = _task(session, user, dag_id, run_id, task_id, map_index)
        return _carry_out(
            task, lambda: {**task.view(), "you": user.get_name()}, f"{task.labeling_set_s3_path}: "
        )

    @app.put(
        "/api/tasks" + TASK_PATH + "/drafts",
        dependencies=[*writes, Depends(action_logging("glue_labeling_save_draft"))],
    )
    def save_draft(
        dag_id: str,
        run_id: str,
        task_id: str,
        map_index: str,
        draft: Draft,
        user: GetUserDep,
        session: SessionDep,
    ) -> dict[str, Any]:
        task = _task(session, user, dag_id, run_id, task_id, map_index)
        return _carry_out(
            task,
            lambda: task.save_draft(draft.set_id, draft.groups, draft.done, user.get_name(), draft.version),
        )

    @app.post(
        "/api/tasks" + TASK_PATH + "/claims",
        dependencies=[*writes, Depends(action_logging("glue_labeling_claim"))],
    )
    def claim(
        dag_id: str,
        run_id: str,
        task_id: str,
        map_index: str,
        claimed: Claim,
        user: GetUserDep,
        session: SessionDep,
    ) -> dict[str, Any]:
        task = _task(session, user, dag_id, run_id, task_id, map_index)
        return _carry_out(task, lambda: task.claim(claimed.set_id, user.get_name()))

    @app.post(
        "/api/tasks" + TASK_PATH + "/submit",
        dependencies=[*writes, Depends(action_logging("glue_labeling_submit"))],
    )
    def submit(
        dag_id: str, run_id: str, task_id: str, map_index: str, user: GetUserDep, session: SessionDep
    ) -> Submitted:
        task = _task(session, user, dag_id, run_id, task_id, map_index)
        labeling = _carry_out(task, lambda: task.submit(user.get_name()), "Not submitted: ")
        try:
            hitl.answer(task.ti, user)  # the task goes on at once
        except HTTPException as error:
            raise HTTPException(
                502,
                f"The labels were written to {task.labels_s3_path}, but the task's request could not be "
                f"answered ({error.detail}): answer {hitl.LABELS_UPLOADED!r} in Required Actions",
            ) from error
        return Submitted(labels_s3_path=task.labels_s3_path, rows=labeling.records(), by=user.get_name())

    return app
