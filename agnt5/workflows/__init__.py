"""Durable workflows: ``@workflow`` code whose ``ctx`` calls are journaled and replayed.

`WorkflowContext` is the workflow's ``ctx``; `run_workflow` runs it once on its journal through
a `WorkflowHost` (the standalone worker's coordinator session, `LocalHost` under the ASGI
runtime, `WorkflowRun` in tests); `Journal` holds the journaling rules every host applies.
"""

from __future__ import annotations

from agnt5.workflows.context import Group, Operation, WorkflowContext, WorkflowHost
from agnt5.workflows.journal import Entry, Journal
from agnt5.workflows.run import WorkflowSuspended, run_workflow

__all__ = [
    "Entry",
    "Group",
    "Journal",
    "Operation",
    "WorkflowContext",
    "WorkflowHost",
    "WorkflowSuspended",
    "run_workflow",
]
