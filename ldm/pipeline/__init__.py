"""The whole pipeline from one TOML config: reference generation -> training -> evaluation.

Owns nothing itself (`run.py`, `plan.py`, `state.py`, `hooks.py` and the commands do). Sits
last in the import order: it may import every part; no part may import it.
"""
