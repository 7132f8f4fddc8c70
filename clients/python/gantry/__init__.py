"""Gantry client for Python: enqueue jobs and run workers against a ``gantryd`` broker (JSON-RPC over TCP).

```python
import gantry

client = gantry.Client("127.0.0.1:7440", name="billing")
job_id = client.enqueue("email.send", {"to": "ana@example.com"}, queue="mail")
print(client.job(job_id)["state"])
```

``gantry.Client`` (threads), ``gantry.aio.AsyncClient`` (asyncio), ``gantry.Worker`` (handlers in threads;
a step of an operation may return ``gantry.StepResult``).
``gantrys://TOKEN@host:port`` (or ``token=``, ``ca_file=``...) connects over TLS with a token.
``gantry.Hooks`` (``client.hooks``, ``worker.hooks``) run around enqueues, jobs, a worker's startup and
shutdown; ``gantry.TraceProvider`` (OpenTelemetry when installed) carries W3C trace context in a job's meta.
"""
from . import aio, tracing
from .client import Client
from .errors import (ERRORS, ConnectionLost, GantryError, PermanentError, RPCError, TLSError)
from .hooks import HOOKS, HookError, Hooks, Outcome
from .tracing import TraceProvider
from .worker import Job, StepResult, UnknownJobType, Worker

__version__ = "0.1.0"

__all__ = ["Client", "Worker", "Job", "StepResult", "RPCError", "ConnectionLost", "TLSError", "PermanentError",
           "GantryError", "UnknownJobType", "ERRORS", "aio", "Hooks", "HOOKS", "HookError", "Outcome",
           "TraceProvider", "tracing"]
