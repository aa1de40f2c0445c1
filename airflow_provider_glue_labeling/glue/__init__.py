"""Glue's rules: task-run statuses and types, its errors, and how a run is polled until it ends.

Nothing here knows Airflow; the hook, the operators, the trigger and the emulator share it.
"""
