"""DAGs the tests run with dag.test(): every wait mode of the operators and the sensor."""

from __future__ import annotations

import json
import logging
import os
from datetime import timedelta
from pathlib import Path

from airflow.providers.common.compat.sdk import DAG, BaseNotifier, task
from airflow.providers.common.compat.version_compat import AIRFLOW_V_3_0_PLUS

from airflow_provider_glue_labeling.operators import (
    DECISION_KEY,
    GlueMLEvaluationOperator,
    GlueMLImportLabelsOperator,
    GlueMLLabelingOperator,
    GlueMLLabelingSetGenerationOperator,
)
from airflow_provider_glue_labeling.sensors import GlueMLTaskRunSensor
from airflow_provider_glue_labeling.versions import HITL_AWAITS_INPUT

if not AIRFLOW_V_3_0_PLUS:
    # Airflow 2 deletes and re-creates DAG runs here; their notes refer to FAB's ab_user table.
    import airflow.providers.fab.auth_manager.models  # noqa: F401

PARAMS = {
    "transform_id": "tfm-unset",
    "output_s3_path": "s3://bucket/out/",
    "result_file": "/dev/null",
    "labels_a": "s3://bucket/a.csv",
    "labels_b": "s3://bucket/b.csv",
}
TEMPLATED = {"transform_id": "{{ params.transform_id }}"}
RETRY_AT_ONCE = {"retries": 1, "retry_delay": timedelta(0)}
WAIT_IN_WORKER = {"deferrable": False, "waiter_delay": 0.2, "waiter_max_attempts": 500}


@task
def record(result_file: str, **values: object) -> None:
    """Write what reached this downstream task through XCom, for the test to read."""
    Path(result_file).write_text(json.dumps(values, default=str))


DAGS: dict[str, DAG] = {}
for mode in ("poke", "deferrable"):
    # generate (no wait) -> sensor -> downstream: the TaskRunId travels through XCom.
    with DAG(f"generate_then_sensor_{mode}", schedule=None, params=PARAMS) as dag:
        generate = GlueMLLabelingSetGenerationOperator(
            task_id="generate",
            output_s3_path="{{ params.output_s3_path }}",
            wait_for_completion=False,
            **TEMPLATED,
        )
        wait = GlueMLTaskRunSensor(
            task_id="wait",
            task_run_id=generate.output,
            deferrable=mode == "deferrable",
            poke_interval=0.3,
            timeout=60,
            retries=2,  # a run that ended failed is not retried: the tests count the tries
            retry_delay=timedelta(0),
            **TEMPLATED,
        )
        (
            generate
            >> wait
            >> record("{{ params.result_file }}", task_run_id=generate.output, summary=wait.output)
        )
    DAGS[dag.dag_id] = dag

    # a sensor whose timeout (1 s) comes long before the run ends
    with DAG(f"sensor_deadline_{mode}", schedule=None, params=PARAMS) as dag:
        generate = GlueMLLabelingSetGenerationOperator(
            task_id="generate",
            output_s3_path="{{ params.output_s3_path }}",
            wait_for_completion=False,
            **TEMPLATED,
        )
        generate >> GlueMLTaskRunSensor(
            task_id="wait",
            task_run_id=generate.output,
            deferrable=mode == "deferrable",
            poke_interval=0.3,
            timeout=1,
            retries=2,  # a timed-out sensor is not retried: the tests count the tries
            retry_delay=timedelta(0),
            **TEMPLATED,
        )
    DAGS[dag.dag_id] = dag

    # people label the set while the labeling task waits; then the import
    with DAG(f"label_and_import_{mode}", schedule=None, params=PARAMS) as dag:
        generate = GlueMLLabelingSetGenerationOperator(
            task_id="generate", output_s3_path="{{ params.output_s3_path }}", **WAIT_IN_WORKER, **TEMPLATED
        )
        label = GlueMLLabelingOperator(
            task_id="label",
            labeling_set_s3_path="{{ params.output_s3_path }}",
            labels_s3_path="{{ params.labels_a }}",
            human_in_the_loop=False,  # these watch the S3 path for the file
            deferrable=mode == "deferrable",
            poke_interval=0.2,
            timeout=120,
            **TEMPLATED,
        )
        imported = GlueMLImportLabelsOperator(
            task_id="import_labels", input_s3_path=label.output, **WAIT_IN_WORKER, **TEMPLATED
        )
        generate >> label >> imported >> record("{{ params.result_file }}", labels=label.output)
    DAGS[dag.dag_id] = dag

    # the operator waits itself, in the worker or in the triggerer.
    with DAG(f"generate_and_wait_{mode}", schedule=None, params=PARAMS) as dag:
        generate = GlueMLLabelingSetGenerationOperator(
            task_id="generate",
            output_s3_path="{{ params.output_s3_path }}",
            deferrable=mode == "deferrable",
            waiter_delay=0.3,
            waiter_max_attempts=6,  # enough for a 0.6 s run; transient errors must not use them up
            **TEMPLATED,
        )
        generate >> record("{{ params.result_file }}", task_run_id=generate.output)
    DAGS[dag.dag_id] = dag

# one labeling set that the operator itself waits for, in the worker: killed and retried by the tests
with DAG("generate_durable", schedule=None, params=PARAMS) as dag:
    GlueMLLabelingSetGenerationOperator(
        task_id="generate",
        output_s3_path="{{ params.output_s3_path }}",
        deferrable=False,
        waiter_delay=0.2,
        waiter_max_attempts=500,
        **TEMPLATED,
    )
DAGS[dag.dag_id] = dag


# Retries that must not adopt another task's run (issue: "only our own runs are adopted").
# Two imports on one transform: "first" starts and moves on, "second" retries. In
# "two_teams_import" the second is another team's, whose labels file is missing; in
# "import_twice" both import the same file and the second's first try fails before it starts.
for dag_id, second_labels in (
    ("two_teams_import", "{{ params.labels_b }}"),
    ("import_twice", "{{ params.labels_a }}"),
):
    with DAG(dag_id, schedule=None, params=PARAMS) as dag:
        first = GlueMLImportLabelsOperator(
            task_id="first", input_s3_path="{{ params.labels_a }}", wait_for_completion=False, **TEMPLATED
        )
        second = GlueMLImportLabelsOperator(
            task_id="second", input_s3_path=second_labels, **RETRY_AT_ONCE, **WAIT_IN_WORKER, **TEMPLATED
        )
        first >> second
    DAGS[dag.dag_id] = dag

with DAG("generate_mapped", schedule=None, params=PARAMS) as dag:
    # four labeling sets on one transform: the fourth meets the three-concurrent-runs quota
    GlueMLLabelingSetGenerationOperator.partial(
        task_id="generate", wait_for_completion=False, **RETRY_AT_ONCE, **TEMPLATED
    ).expand(output_s3_path=[f"s3://labels-bkt/sets/{n}/" for n in range(4)])
DAGS[dag.dag_id] = dag

# The backup export before a replace: waited for like the import, deferred too.
with DAG("import_replace_deferrable", schedule=None, params=PARAMS) as dag:
    GlueMLImportLabelsOperator(
        task_id="import_labels",
        input_s3_path="{{ params.labels_a }}",
        replace_all_labels=True,
        backup_s3_path="s3://labels-bkt/backup/",
        deferrable=True,
        waiter_delay=0.2,
        **TEMPLATED,
    )
DAGS[dag.dag_id] = dag

# Deferred waits on a real deployment: a user marks two failed (one cancels its run, one keeps
# it); a mapped one goes on through a triggerer restart like the others.
DEFERRED = {"deferrable": True, "waiter_delay": 0.5, **TEMPLATED}
with DAG("deferred_kill", schedule=None, params=PARAMS) as dag:
    for task_id, cancel in (("cancel", True), ("keep", False)):
        GlueMLLabelingSetGenerationOperator(
            task_id=task_id, output_s3_path=f"s3://labels-bkt/{task_id}/", cancel_on_kill=cancel, **DEFERRED
        )
    GlueMLLabelingSetGenerationOperator.partial(task_id="mapped", **DEFERRED).expand(
        output_s3_path=["s3://labels-bkt/mapped/"]
    )
DAGS[dag.dag_id] = dag

# A round that users clear and run again (issue: "a Clear runs again").
with DAG("generate_and_evaluate", schedule=None, params=PARAMS) as dag:
    generate = GlueMLLabelingSetGenerationOperator(
        task_id="generate", output_s3_path="{{ params.output_s3_path }}", **WAIT_IN_WORKER, **TEMPLATED
    )
    evaluate = GlueMLEvaluationOperator(task_id="evaluate", **WAIT_IN_WORKER, **TEMPLATED)
    generate >> evaluate >> record("{{ params.result_file }}", metrics=evaluate.output)
DAGS[dag.dag_id] = dag


def run_in_process(ti, session) -> None:
    """Run one task instance with its triggers inline, as ``dag.test()`` does on this Airflow."""
    if AIRFLOW_V_3_0_PLUS:
        from airflow.sdk.definitions.dag import _run_task

        _run_task(ti=ti, task=ti.task, run_triggerer=True)
    else:
        from airflow.models.dag import _run_task

        try:  # dag.test() on Airflow 2 logs a task's failure (its state says it) and goes on
            _run_task(ti=ti, inline_trigger=True, session=session)
        except Exception:
            logging.getLogger(__name__).exception("Task failed; ti=%s", ti)


def retry_task(dag_id: str, logical_date: str, task_id: str) -> str:
    """Retry a task of an existing DAG run, as the scheduler does after its worker died.

    The task instance is set up for its next try in the same DAG run (so its task_state_store
    is kept) and run by the same in-process runner ``dag.test()`` uses.
    """
    from airflow.models.dagrun import DagRun
    from airflow.providers.common.compat.sdk import TaskInstanceState, timezone
    from airflow.utils.session import create_session
    from sqlalchemy import select

    def task_instance(session):
        date_column = DagRun.logical_date if AIRFLOW_V_3_0_PLUS else DagRun.execution_date
        dag_run = session.scalar(
            select(DagRun).where(DagRun.dag_id == dag_id, date_column == timezone.parse(logical_date))
        )
        return dag_run.get_task_instance(task_id, session=session)

    with create_session() as session:
        ti = task_instance(session)
        ti.try_number += 1
        ti.state = TaskInstanceState.SCHEDULED
        session.commit()
        session.refresh(ti)
        ti.task = DAGS[dag_id].task_dict[task_id]
        run_in_process(ti, session)
    with create_session() as session:
        return task_instance(session).state


def clear_and_run(dag_id: str, run_id: str, task_ids: list[str]) -> dict[str, str]:
    """Clear tasks of a finished DAG run as a user does, then run them again, as the scheduler would.

    Clearing is Airflow's own ``clear_task_instances`` (what the UI's and the API's Clear call);
    each cleared task is then scheduled (``DagRun.schedule_tis``: its next try) and run in order.
    Returns the tasks' states.
    """
    from airflow.models.dagrun import DagRun
    from airflow.models.taskinstance import clear_task_instances
    from airflow.providers.common.compat.sdk import timezone
    from airflow.utils.session import create_session
    from airflow.utils.state import DagRunState
    from sqlalchemy import select

    def dag_run_in(session):
        return session.scalar(select(DagRun).where(DagRun.dag_id == dag_id, DagRun.run_id == run_id))

    with create_session() as session:
        dag_run = dag_run_in(session)
        clear_task_instances([dag_run.get_task_instance(t, session=session) for t in task_ids], session)
    with create_session() as session:  # the scheduler starts the queued run again
        dag_run = dag_run_in(session)
        if dag_run.state == DagRunState.QUEUED:
            dag_run.state, dag_run.start_date = DagRunState.RUNNING, timezone.utcnow()
    states = {}
    for task_id in task_ids:
        with create_session() as session:
            dag_run = dag_run_in(session)
            ti = dag_run.get_task_instance(task_id, session=session)
            ti.task = DAGS[dag_id].task_dict[task_id]
            dag_run.schedule_tis([ti], session=session)
            session.commit()
            session.refresh(ti)
            ti.task = DAGS[dag_id].task_dict[task_id]
            run_in_process(ti, session)
        with create_session() as session:
            states[task_id] = dag_run_in(session).get_task_instance(task_id, session=session).state
    return states


if __name__ == "__main__":
    # python glue_ml_test_dags.py run DAG_ID LOGICAL_DATE CONF_JSON: one DAG run, in its own process
    # python glue_ml_test_dags.py retry DAG_ID LOGICAL_DATE TASK_ID: the next try of one task
    import sys

    from airflow.providers.common.compat.sdk import timezone

    print("PID", os.getpid(), flush=True)
    if sys.argv[1] == "retry":
        print("TASK STATE", retry_task(*sys.argv[2:5]), flush=True)
    else:
        date = {"logical_date" if AIRFLOW_V_3_0_PLUS else "execution_date": timezone.parse(sys.argv[3])}
        dag_run = DAGS[sys.argv[2]].test(run_conf=json.loads(sys.argv[4]), **date)
        print("DAG RUN STATE", dag_run.state, flush=True)

# nobody labels: the labeling task's wait ends at its timeout, in each mode, and is not retried
for mode in ("poke", "reschedule", "deferrable", "human_in_the_loop", "soft_fail"):
    with DAG(f"labeling_deadline_{mode}", schedule=None, params=PARAMS) as dag:
        GlueMLLabelingOperator(
            task_id="label",
            labeling_set_s3_path="{{ params.output_s3_path }}",
            labels_s3_path="s3://labels-bkt/people-labels/round-1.csv",
            human_in_the_loop=mode == "human_in_the_loop",
            deferrable=mode in ("deferrable", "soft_fail"),
            soft_fail=mode == "soft_fail",
            mode="reschedule" if mode == "reschedule" else "poke",
            poke_interval=0.1,
            # an awaiting_input task resumed within seconds of parking races with Airflow 3.3
            # noticing its process ended (tests/deployment): a longer wait than that
            timeout=12 if mode == "human_in_the_loop" else 1,
            retries=2,
            retry_delay=timedelta(0),
            **TEMPLATED,
        )
    DAGS[dag.dag_id] = dag


class FailsOnceAfterTaking(GlueMLLabelingOperator):
    """A labeling task whose first try fails after it took the labels file, as a failed asset event,
    XCom push or a killed worker would fail it: its retry must take the same file, not ask again."""

    def post_execute(self, context, result=None):
        super().post_execute(context, result)
        if context["ti"].try_number == 1:
            raise RuntimeError("the first try fails after it took the labels file")


# the labels file is there: the task takes it; its first try then fails, its retry runs
with DAG("label_fails_after_taking", schedule=None, params=PARAMS) as dag:
    FailsOnceAfterTaking(
        task_id="label",
        labeling_set_s3_path="{{ params.output_s3_path }}",
        labels_s3_path="{{ params.labels_a }}",
        human_in_the_loop=False,
        mode="poke",
        poke_interval=0.1,
        timeout=3,
        **RETRY_AT_ONCE,
        **TEMPLATED,
    )
DAGS[dag.dag_id] = dag


# the labeling task reaches S3 through a proxy its botocore_config names, as a DAG file writes it
# (written, not templated: Airflow masks "proxies" in the rendered fields it stores)
with DAG("label_through_a_proxy", schedule=None, params=PARAMS) as dag:
    GlueMLLabelingOperator(
        task_id="label",
        labeling_set_s3_path="{{ params.output_s3_path }}",
        labels_s3_path="{{ params.labels_a }}",
        history_s3_path="s3://labels-bkt/quality-history/",
        human_in_the_loop=False,
        mode="poke",
        poke_interval=0.1,
        timeout=30,
        botocore_config={
            "proxies": {"http": os.environ.get("GLUE_LABELING_TEST_PROXY", "http://127.0.0.1:9")}
        },
        **TEMPLATED,
    )
DAGS[dag.dag_id] = dag


class NoteTheAsk(BaseNotifier):
    """A notifier as Slack or email would be: it writes what it was told beside the result file."""

    template_fields = ("path",)

    def __init__(self, path: str) -> None:
        super().__init__()
        self.path = path

    def notify(self, context) -> None:
        Path(self.path).write_text(f"{context['ti'].task_id} of {context['ti'].dag_id} asks for labels")


# people label through the page: on Airflow 3.1+ a human-in-the-loop task that alice and bea may answer
with DAG("label_with_people", schedule=None, params=PARAMS) as dag:
    generate = GlueMLLabelingSetGenerationOperator(
        task_id="generate", output_s3_path="{{ params.output_s3_path }}", **WAIT_IN_WORKER, **TEMPLATED
    )
    label = GlueMLLabelingOperator(
        task_id="label",
        labeling_set_s3_path="{{ params.output_s3_path }}",
        labels_s3_path="{{ params.labels_a }}",
        # dag.test() runs HITLTrigger inline on Airflow 3.1 and 3.2, where it cannot read its
        # request (the in-process supervisor does not answer): there the task watches the file.
        human_in_the_loop=HITL_AWAITS_INPUT,
        assigned_users=["alice", {"id": "bea", "name": "Bea"}] if HITL_AWAITS_INPUT else None,
        notifiers=[NoteTheAsk("{{ params.result_file }}.notified")] if HITL_AWAITS_INPUT else None,
        deferrable=False,
        poke_interval=0.2,
        timeout=300,
        **TEMPLATED,
    )
    imported = GlueMLImportLabelsOperator(
        task_id="import_labels", input_s3_path=label.output, **WAIT_IN_WORKER, **TEMPLATED
    )
    generate >> label >> imported >> record("{{ params.result_file }}", labels=label.output)
DAGS[dag.dag_id] = dag

# half the sets go to two people, blind; a set whose copies agree below 0.3 needs a decision; the
# evaluation's round keeps what the labels agreed on. The second DAG watches for a labels file put
# in place another way (no human-in-the-loop request), which meets the same gate.
for dag_id, ask in (("label_twice", HITL_AWAITS_INPUT), ("label_twice_uploaded", False)):
    with DAG(dag_id, schedule=None, params={**PARAMS, "history": "s3://bucket/history-twice/"}) as dag:
        generate = GlueMLLabelingSetGenerationOperator(
            task_id="generate", output_s3_path="{{ params.output_s3_path }}", **WAIT_IN_WORKER, **TEMPLATED
        )
        label = GlueMLLabelingOperator(
            task_id="label",
            labeling_set_s3_path="{{ params.output_s3_path }}",
            labels_s3_path="{{ params.labels_a }}",
            history_s3_path="{{ params.history }}",
            overlap=0.5,
            min_agreement=0.3,
            human_in_the_loop=ask,
            deferrable=False,
            poke_interval=0.2,
            timeout=300,
            **TEMPLATED,
        )
        imported = GlueMLImportLabelsOperator(
            task_id="import_labels", input_s3_path=label.output, **WAIT_IN_WORKER, **TEMPLATED
        )
        evaluate = GlueMLEvaluationOperator(
            task_id="evaluate", history_s3_path="{{ params.history }}", **WAIT_IN_WORKER, **TEMPLATED
        )
        generate >> label >> imported >> evaluate >> record("{{ params.result_file }}", labels=label.output)
    DAGS[dag.dag_id] = dag

# a labels file put in place another way, taken when a person answers "Labels uploaded" (3.1+);
# and a labeling task answered within a second of asking (Airflow 3.3's race), which retries
for dag_id, retries in (("label_uploaded", {}), ("label_answered_at_once", RETRY_AT_ONCE)):
    with DAG(dag_id, schedule=None, params=PARAMS) as dag:
        GlueMLLabelingOperator(
            task_id="label",
            labeling_set_s3_path="{{ params.output_s3_path }}",
            labels_s3_path="{{ params.labels_a }}",
            human_in_the_loop=True,
            timeout=300,
            **retries,
            **TEMPLATED,
        )
    DAGS[dag.dag_id] = dag

# each evaluation records a round of the quality history and decides whether labels still help
with DAG(
    "evaluate_rounds",
    schedule=None,
    params={
        **PARAMS,
        "history": "s3://bucket/history/",
        "over_rounds": "2",
        "min_f1": "0.999",
        "label_floor": "10",
        "max_labels": None,
    },
) as dag:
    evaluate = GlueMLEvaluationOperator(
        task_id="evaluate",
        history_s3_path="{{ params.history }}",
        min_gain=0.01,
        over_rounds="{{ params.over_rounds }}",  # text: read as a number after the deferral too
        label_floor="{{ params.label_floor }}",
        max_labels="{{ params.max_labels }}",  # None renders as the text "None"
        min_f1="{{ params.min_f1 }}",
        deferrable=True,
        waiter_delay=0.2,
        **TEMPLATED,
    )
    decision = type(evaluate.output)(evaluate, key=DECISION_KEY)  # the XCom "teaching_decision"
    evaluate >> record("{{ params.result_file }}", decision=decision, metrics=evaluate.output)
DAGS[dag.dag_id] = dag
