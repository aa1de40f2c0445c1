"""The labeling page's FastAPI app: routes over :mod:`~.service`, each behind Airflow's auth manager.

Plugin routes are not protected by Airflow itself, so every route here asks the auth manager:
who the user is (no credentials: 401), and for a labeling task whether they may edit that DAG's
task instances (``requires_access_dag(method="PUT", access_entity=TASK_INSTANCE)``; not allowed:
403), before anything is read or written. The DB session is Airflow's own (``SessionDep``).

The routes are module-level routers, as Airflow's own plugin apps have them: :data:`pages_router`
(under the plugin's ``/glue-labeling``: ``/`` and ``/tasks/{dag_id}/{run_id}/{task_id}/{map_index}``)
and :data:`tasks_router`, the JSON API the pages use, under ``/api/tasks``: ``GET /api/tasks``
(:class:`~.models.ListedTask`), ``GET /api/tasks/{...}`` (:class:`~.models.TaskView`),
``PUT /api/tasks/{...}/drafts`` (:class:`~.models.Draft`, answered with a
:class:`~.models.SavedDraft`), ``POST /api/tasks/{...}/claims`` (:class:`~.models.Claim`, a
:class:`~.models.SavedDraft`), ``PUT /api/tasks/{...}/decisions`` (:class:`~.models.Decision`,
a :class:`~.models.SavedDraft`) and ``POST /api/tasks/{...}/submit`` (:class:`~.models.Submitted`).
A route of one task takes it as :data:`LabelingTaskDep`: found from the path, for the user.

Writes also refuse what another site could send (:func:`same_origin_write`: 403), request bodies
over :data:`MAX_BODY_BYTES` are refused before they are parsed (413), and each write is an entry
of Airflow's Audit Log (``glue_labeling_save_draft``, ``glue_labeling_claim``,
``glue_labeling_settle``, ``glue_labeling_submit``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from importlib.resources import files
from typing import Annotated, Any, TypeVar
from urllib.parse import urlsplit

from airflow.api_fastapi.app import get_auth_manager
from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity, DagDetails
from airflow.api_fastapi.common.db.common import SessionDep
from airflow.api_fastapi.common.router import AirflowRouter
from airflow.api_fastapi.core_api.security import GetUserDep, requires_access_dag
from airflow.api_fastapi.logging.decorators import action_logging
from airflow.models.dag import DagModel
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import HTMLResponse, Response

from airflow_provider_glue_labeling import hitl
from airflow_provider_glue_labeling.labels.format import AlreadySubmitted, LabelingError
from airflow_provider_glue_labeling.ui import drafts, service, tasks
from airflow_provider_glue_labeling.ui.models import (
    Claim,
    Decision,
    Draft,
    ListedTask,
    SavedDraft,
    Submitted,
    TaskView,
)
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
T = TypeVar("T")


def _page(request: Request) -> HTMLResponse:
    """The page (``static/labeling.html``), told where the app is served (its root path).

    :param request: the request for it.
    """
    html = files("airflow_provider_glue_labeling.ui").joinpath("static/labeling.html").read_text("utf-8")
    return HTMLResponse(html.replace('"__ROOT__"', json.dumps(request.scope.get("root_path", ""))))


def labeling_task(
    dag_id: str, run_id: str, task_id: str, map_index: str, user: GetUserDep, session: SessionDep
) -> LabelingTask:
    """The labeling task of the route's path, if ``user`` may label it: 404 when there is none,
    403 when its human-in-the-loop request names other users (``assigned_users``).

    :param dag_id: the path's DAG id.
    :param run_id: the path's run id.
    :param task_id: the path's task id.
    :param map_index: the path's map index (``{MAP_INDEX}`` as the UI leaves it for a task that is not mapped).
    :param user: who asks.
    :param session: Airflow's DB session.
    """
    try:
        task = tasks.one_task(session, dag_id, run_id, task_id, map_index)
    except tasks.NotALabelingTask as error:
        raise HTTPException(404, str(error)) from error
    request = hitl.request_of(task.ti, session)
    if not hitl.may_answer(request, user):
        names = ", ".join(str(u.get("name") or u["id"]) for u in request.assigned_users)
        raise HTTPException(403, f"This labeling task is assigned to {names}, not to {user.get_name()}")
    return task


# A route's labeling task, from its path (:data:`TASK_PATH`), for its user.
LabelingTaskDep = Annotated[LabelingTask, Depends(labeling_task)]


def same_origin_write(request: Request) -> None:
    """Refuse a write that another site could have made (403): it must carry :data:`WRITE_HEADER`,
    and when the browser says where it comes from (``Sec-Fetch-Site``, ``Origin``), this site.

    :param request: the write.
    """
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
    """ASGI middleware: a request body over ``limit`` bytes gets 413 before anything parses it.

    :param app: the app it wraps.
    :param limit: the largest body read, in bytes.
    """

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


def _carry_out(task: LabelingTask, work: Callable[[], T], prefix: str = "") -> T:
    """Do ``work`` for ``task``; what the service refuses becomes its HTTP error (:func:`_refused`).

    :param task: the labeling task the work is for.
    :param work: the service's work.
    :param prefix: what the error's message starts with.
    """
    try:
        return work()
    except service.REFUSALS as error:
        raise _refused(task, error, prefix) from error


def _refused(task: LabelingTask, error: Exception, prefix: str = "") -> HTTPException:
    """The HTTP error for what the service refused: 409, 422, or 502 when AWS refused its call.

    :param task: the labeling task the work was for.
    :param error: what the service raised (one of :data:`~.service.REFUSALS`).
    :param prefix: what the message of a 409 or 422 starts with.
    """
    if isinstance(error, drafts.ClaimedByOther):
        return HTTPException(409, str(error))
    if isinstance(error, drafts.StaleDraft):
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


async def refused_page(request: Request, error: HTTPException) -> Response:
    """A person refused a page (not the JSON API) reads a sentence, not ``{"detail": ...}``.

    :param request: the refused request.
    :param error: its refusal.
    """
    if error.status_code in PAGE_REFUSALS and "/api/" not in request.url.path:
        return HTMLResponse(
            f"<!doctype html><meta charset=utf-8><title>Labeling</title><p>{PAGE_REFUSALS[error.status_code]}</p>",
            status_code=error.status_code,
            headers=error.headers,
        )
    return await http_exception_handler(request, error)


# May the user edit the DAG's task instances (the DAG of the path's ``dag_id``)?
MAY_EDIT = Depends(requires_access_dag(method="PUT", access_entity=DagAccessEntity.TASK_INSTANCE))


def writes(event: str) -> list[Any]:
    """A write's dependencies, in this order: the right to edit the DAG's task instances, a request
    from the page (:func:`same_origin_write`), and its entry in Airflow's Audit Log (user, DAG, run,
    task, the draft's body).

    :param event: the Audit Log's event.
    """
    return [MAY_EDIT, Depends(same_origin_write), Depends(action_logging(event))]


pages_router = AirflowRouter(tags=["Labeling pages"])
tasks_router = AirflowRouter(prefix="/api/tasks", tags=["Labeling tasks"])


@pages_router.get("/", response_class=HTMLResponse)
def list_page(request: Request, user: GetUserDep) -> HTMLResponse:
    """The page listing the labeling tasks that wait for the user.

    :param request: the request.
    :param user: who asks (no credentials: 401).
    """
    return _page(request)


@pages_router.get("/tasks" + TASK_PATH, response_class=HTMLResponse, dependencies=[MAY_EDIT])
def task_page(request: Request, task: LabelingTaskDep) -> HTMLResponse:
    """A labeling task's page, once the user may label it.

    :param request: the request.
    :param task: the task of the path (found only if the user may label it).
    """
    return _page(request)


@tasks_router.get("", response_model_exclude_unset=True)
def list_tasks(user: GetUserDep, session: SessionDep) -> list[ListedTask]:
    """The waiting labeling tasks of the DAGs whose task instances the user may edit, which name
    the user among their assigned users if they name some.

    :param user: who asks.
    :param session: Airflow's DB session.
    """
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
            listed.append(
                ListedTask.model_validate(
                    {**task.summary(), **tasks.counts(task), "assigned_users": assigned}
                )
            )
    return listed


@tasks_router.get(TASK_PATH, dependencies=[MAY_EDIT], response_model_exclude_unset=True)
def get_task(task: LabelingTaskDep, user: GetUserDep) -> TaskView:
    """The labeling task as its page shows it: columns, sets and records, drafts, claims, quality,
    and whether the labels were submitted.

    :param task: the task of the path.
    :param user: who asks (the view's ``you``).
    """
    view = _carry_out(task, lambda: task.view(user.get_name()), f"{task.labeling_set_s3_path}: ")
    return TaskView.model_validate({**view, "you": user.get_name()})


@tasks_router.put(
    TASK_PATH + "/drafts", dependencies=writes("glue_labeling_save_draft"), response_model_exclude_unset=True
)
def save_draft(task: LabelingTaskDep, draft: Draft, user: GetUserDep) -> SavedDraft:
    """Keep one set's draft, made from the version ``draft.version`` (409 when a newer one is kept).

    :param task: the task of the path.
    :param draft: the set's draft as the page sends it.
    :param user: who saves it (then holds the set's claim).
    """
    saved = _carry_out(
        task,
        lambda: task.save_draft(
            draft.set_id, draft.groups, draft.done, user.get_name(), draft.version, draft.copy_number
        ),
    )
    return SavedDraft.model_validate(saved)


@tasks_router.post(
    TASK_PATH + "/claims", dependencies=writes("glue_labeling_claim"), response_model_exclude_unset=True
)
def claim(task: LabelingTaskDep, claimed: Claim, user: GetUserDep) -> SavedDraft:
    """Take a set to label (409 when someone else holds it): its draft, now the user's claim.

    :param task: the task of the path.
    :param claimed: the set taken.
    :param user: who takes it.
    """
    return SavedDraft.model_validate(
        _carry_out(task, lambda: task.claim(claimed.set_id, user.get_name(), claimed.copy_number))
    )


@tasks_router.put(
    TASK_PATH + "/decisions", dependencies=writes("glue_labeling_settle"), response_model_exclude_unset=True
)
def settle(task: LabelingTaskDep, decision: Decision, user: GetUserDep) -> SavedDraft:
    """Settle an overlapped set whose two copies are both done (422 before that): the grouping the
    labels file takes for it, made from the version ``decision.version`` (409 when a newer one is kept).

    :param task: the task of the path.
    :param decision: the set's settled grouping.
    :param user: who settles it: either labeler or a third person.
    """
    return SavedDraft.model_validate(
        _carry_out(
            task, lambda: task.settle(decision.set_id, decision.groups, user.get_name(), decision.version)
        )
    )


@tasks_router.post(TASK_PATH + "/submit", dependencies=writes("glue_labeling_submit"))
def submit(task: LabelingTaskDep, user: GetUserDep) -> Submitted:
    """Write the labels file from the drafts at once, and answer the task's request once it has
    stood ``[glue_labeling] answer_settle_seconds`` (:func:`hitl.answer`): the task goes on.

    :param task: the task of the path.
    :param user: who submits (and answers the request).
    """
    labeling = _carry_out(task, lambda: task.submit(user.get_name()), "Not submitted: ")
    try:
        hitl.answer(task.ti, user)
    except HTTPException as error:
        raise HTTPException(
            502,
            f"The labels were written to {task.labels_s3_path}, but the task's request could not be "
            f"answered ({error.detail}): answer {hitl.LABELS_UPLOADED!r} in Required Actions",
        ) from error
    return Submitted(labels_s3_path=task.labels_s3_path, rows=labeling.records(), by=user.get_name())


def create_app() -> FastAPI:
    """The plugin's app (Airflow 3.1+): the routers, the body limit and the pages' refusals."""
    app = FastAPI(
        title="Glue FindMatches labeling",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        exception_handlers={HTTPException: refused_page},
    )
    app.add_middleware(BodyLimit)
    app.include_router(pages_router)
    app.include_router(tasks_router)
    return app
