"""Development harness: the offline Airflow environment for tests and the demo (not in the wheel)."""
