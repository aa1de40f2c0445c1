"""The labeling task as an Airflow human-in-the-loop task (Airflow 3.1+), on Airflow's own machinery.

The task writes a human-in-the-loop request (``upsert_hitl_detail``, as the standard provider's
``HITLOperator`` does): it is listed in the UI's **Required Actions** and in the REST API's
``hitlDetails``, names the users who may answer (``assigned_users``) and has one option,
:data:`LABELS_UPLOADED`. Then the task waits as ``HITLOperator`` waits: in ``awaiting_input`` on
Airflow 3.3+ (no trigger, no triggerer, no worker), deferred to ``HITLTrigger`` on 3.1 and 3.2.

It is answered by the labeling page's submit (:func:`answer`, which calls the REST API's own
handler, so the same checks, locks and resume apply), or by a person in Required Actions once a
labels file is in place some other way. The answer reaches the task as its ``execute_complete``
event (:func:`answer_in`).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any, NoReturn

from airflow_provider_glue_labeling.versions import HITL_AWAITS_INPUT

if TYPE_CHECKING:
    from airflow.sdk import BaseOperator, Context

# The request's one option: the labels file is in place (the page's submit answers it too).
LABELS_UPLOADED = "Labels uploaded"
# How often HITLTrigger (Airflow 3.1 and 3.2) looks for an answer.
TRIGGER_POKE_SECONDS = 5.0


def settle_seconds() -> float:
    """``[glue_labeling] answer_settle_seconds`` (default 15): how long a request has stood before
    the page answers it.

    A task that parks ends its process; the scheduler learns of that exit from the executor a few
    seconds later (more on a busy machine). An answer that resumes the task before then races with
    that late "success": the scheduler takes the resumed try for a task changed behind its back and
    fails it (apache/airflow#71580, #72716; we measured it on Airflow 3.3.2 with an answer 5 s
    after the task parked). The page keeps the labels at once and answers once the request has
    stood this long.
    """
    from airflow.providers.common.compat.sdk import conf

    return conf.getfloat("glue_labeling", "answer_settle_seconds", fallback=15.0)


def users(value: Any, parameter: str = "assigned_users") -> list[dict[str, str]] | None:
    """Airflow's ``HITLUser`` list from ``value``: a user id, a ``{"id", "name"}`` dict, or a list
    of them (a bare id is also the name). None or empty: anyone who may edit the DAG's tasks.

    :raises GlueMLInputError: anything else.
    """
    from airflow_provider_glue_labeling.exceptions import GlueMLInputError

    if value is None:
        return None
    listed = [value] if isinstance(value, str | dict) else value
    found = []
    for user in listed if isinstance(listed, Sequence) else [listed]:
        if isinstance(user, str) and user.strip():
            found.append({"id": user, "name": user})
        elif isinstance(user, dict) and isinstance(user.get("id"), str) and user["id"].strip():
            found.append({"id": user["id"], "name": str(user.get("name") or user["id"])})
        else:
            raise GlueMLInputError(
                parameter, value, 'expected user ids or {"id": ..., "name": ...} dicts, e.g. ["bea", "carl"]'
            )
    return found or None


def ask(
    task: BaseOperator,
    context: Context,
    *,
    subject: str,
    body: str,
    assigned_users: list[dict[str, str]] | None,
    notifiers: Sequence[Any],
    timeout: float,
) -> NoReturn:
    """Write the request, tell the ``notifiers``, and wait for the answer in ``execute_complete``.

    The answer (or the timeout, as ``{"error_type": "timeout"}``) comes as its ``event``.
    """
    from airflow.sdk.execution_time.hitl import upsert_hitl_detail
    from airflow.sdk.timezone import utcnow

    ti_id = context["task_instance"].id
    upsert_hitl_detail(
        ti_id=ti_id,
        options=[LABELS_UPLOADED],
        subject=subject,
        body=body,
        defaults=None,
        multiple=False,
        params={},
        assigned_users=assigned_users,  # type: ignore[arg-type]  # HITLUser is a TypedDict
    )
    for notifier in notifiers:
        notifier(context)
    if HITL_AWAITS_INPUT:
        from airflow.sdk.exceptions import TaskAwaitingInput

        raise TaskAwaitingInput(method_name="execute_complete", timeout=timedelta(seconds=timeout))
    from airflow.providers.standard.triggers.hitl import HITLTrigger

    trigger = HITLTrigger(
        ti_id=ti_id,
        options=[LABELS_UPLOADED],
        params={},
        defaults=None,
        multiple=False,
        timeout_datetime=utcnow() + timedelta(seconds=timeout),
        poke_interval=TRIGGER_POKE_SECONDS,
    )
    task.defer(trigger=trigger, method_name="execute_complete")


@dataclass(frozen=True)
class Answer:
    """A person's answer to the request, as the task's ``execute_complete`` receives it.

    :param by: who answered: their name, else their user id; None when the event does not say.
    :param chosen: the options they chose (:data:`LABELS_UPLOADED`).
    """

    by: str | None
    chosen: list[str]


def answer_in(event: dict[str, Any]) -> Answer | None:
    """The answer an ``execute_complete`` event carries (Airflow's ``chosen_options`` and
    ``responded_by_user``, a ``HITLUser`` dict or a user id), or None when it carries none: the
    labels file seen by its trigger, or the timeout.

    :param event: the event the task's wait ended with.
    """
    if "chosen_options" not in event:
        return None
    who = event.get("responded_by_user") or {}
    by = (who.get("name") or who.get("id")) if isinstance(who, dict) else who
    return Answer(by=str(by) if by else None, chosen=list(event["chosen_options"] or []))


def request_of(ti: Any, session: Any) -> Any:
    """The task instance's human-in-the-loop request (``HITLDetail``), or None: it waits for a file."""
    from airflow_provider_glue_labeling.versions import HAS_HITL

    if not HAS_HITL:
        return None
    from airflow.models.hitl import HITLDetail

    return session.get(HITLDetail, ti.id)


def may_answer(request: Any, user: Any) -> bool:
    """Whether ``user`` is one of the request's assigned users (Airflow's auth manager decides);
    a request without assigned users may be answered by anyone who may edit the task."""
    if request is None or not request.assigned_users:
        return True
    from airflow.api_fastapi.app import get_auth_manager

    assigned = {str(user["id"]) for user in request.assigned_users}
    return bool(get_auth_manager().is_authorized_hitl_task(assigned_users=assigned, user=user))


def answer(ti: Any, user: Any) -> bool:
    """Answer the task instance's request with :data:`LABELS_UPLOADED` as ``user``, through the
    REST API's handler (``PATCH .../hitlDetails``): the task goes on.

    A request younger than :func:`settle_seconds` is answered once it has stood that long (the
    labels file is written by then; the wait holds no database session). The answer is a
    transaction of its own, committed at once: the request's other writes (the Audit Log) wait
    for nothing of it.

    :return: False when there is no request, or it was answered already (in Required Actions).
    """
    from airflow.api_fastapi.core_api.datamodels.hitl import UpdateHITLDetailPayload
    from airflow.api_fastapi.core_api.routes.public.hitl import update_hitl_detail
    from airflow.providers.common.compat.sdk import timezone
    from airflow.utils.session import create_session
    from fastapi import HTTPException

    with create_session() as session:
        request = request_of(ti, session)
        if request is None:
            return False
        stood = (timezone.utcnow() - request.created_at).total_seconds()
    if stood < settle_seconds():
        time.sleep(settle_seconds() - stood)
    with create_session() as session:
        try:
            update_hitl_detail(
                dag_id=ti.dag_id,
                dag_run_id=ti.run_id,
                task_id=ti.task_id,
                update_hitl_detail_payload=UpdateHITLDetailPayload(
                    chosen_options=[LABELS_UPLOADED], params_input={}
                ),
                user=user,
                session=session,
                map_index=ti.map_index,
            )
        except HTTPException as error:
            if error.status_code == 409:  # answered already
                return False
            raise
    return True
