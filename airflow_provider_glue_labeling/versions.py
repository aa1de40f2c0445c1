"""What the installed Airflow can do: every version-dependent switch of the provider, in one place.

Features are switched on by what Airflow has, never by a higher floor: the provider installs on
Airflow 2.11 and uses what each later release adds.
"""

from __future__ import annotations

from importlib.metadata import version
from importlib.util import find_spec

from airflow.triggers.base import BaseTrigger

AIRFLOW_VERSION = tuple(int(part) for part in version("apache-airflow").split(".")[:2])
# UI plugins with FastAPI apps and external views: the labeling page (Airflow 3.1+).
HAS_UI_PLUGINS = AIRFLOW_VERSION >= (3, 1)
# Airflow 3.3+ calls BaseTrigger.on_kill when, and only when, a user kills the deferred task.
TRIGGER_HAS_ON_KILL = "on_kill" in vars(BaseTrigger)
# Airflow 3's task SDK: a trigger asks its supervisor for task states; Airflow 2 reads the DB.
try:
    HAS_TASK_SDK = find_spec("airflow.sdk.execution_time") is not None
except ModuleNotFoundError:  # no airflow.sdk at all
    HAS_TASK_SDK = False
# Assets named when a task runs, through an asset alias: Airflow 3 (2.11's dataset aliases fail to
# record an event of a task whose alias its DAG processor has not stored: "None value found in
# collection DatasetModel.aliases").
HAS_ASSET_ALIASES = AIRFLOW_VERSION >= (3, 0)
# Human-in-the-loop tasks (Required Actions, assigned users, notifiers): Airflow 3.1+.
HAS_HITL = AIRFLOW_VERSION >= (3, 1)
# Airflow 3.3+ parks a human-in-the-loop task in ``awaiting_input`` (no trigger, no triggerer); 3.1
# and 3.2 defer it to the standard provider's ``HITLTrigger``.
HITL_AWAITS_INPUT = AIRFLOW_VERSION >= (3, 3)
