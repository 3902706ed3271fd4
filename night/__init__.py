"""The night's use cases: refresh, sync rewards, plan, dispatch, fatigue, report, and the
explanation behind ``why``. The CLI and the Prefect flows only parse and call them."""
