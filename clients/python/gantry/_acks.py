"""The Worker's acks: jobs that finish while an ack is on the way are acked together, in one ``ack`` with ``ids``."""
import concurrent.futures
import logging
import threading

from . import _api
from .errors import INVALID_PARAMS, LEASE_LOST, RPCError

log = logging.getLogger("gantry.worker")

#: The most ids one ``ack`` takes.
MAX_IDS = 10_000
#: The most bytes of results one ``ack`` with ``ids`` carries. Far below the broker's 1 MiB line limit: a line
#: over it closes the connection, and with it goes every lease the worker holds.
MAX_RESULT_BYTES = 256 * 1024


class _Pending:
    def __init__(self, id, result):
        self.id, self.result = id, result
        self.outcome = concurrent.futures.Future()


class AckBatcher:
    """Acks jobs for a Worker's threads, sending those that finish together in one request.

    A job that finishes while no ack is in flight is acked at once, alone (so an idle worker waits for nothing).
    Jobs that finish while one is in flight wait for it; then one of their threads acks them all in one ``ack``
    with ``ids`` (one request, one commit on the broker). Each caller gets only its own job's outcome, as
    ``Client.ack`` gives it: the answer, or the error it raises (a job answered in ``lost`` raises ``RPCError``
    lease_lost, as a single ack of it would have).
    """

    def __init__(self, client):
        self.client = client
        #: Set once the broker refused ``ids`` (it is older than the ``ids`` form): every ack then goes alone.
        self.one_by_one = False
        self._waiting = []
        self._sending = False
        self._cond = threading.Condition()

    def ack(self, id, result=None):
        """Acks the job; returns ``{"ok": True}`` (with ``"cancel_requested": True`` when an operator asked to
        cancel it) or raises what ``Client.ack`` would: RPCError, OSError, TypeError/ValueError for a result
        that is not JSON."""
        mine = _Pending(id, result)
        with self._cond:
            self._waiting.append(mine)
            while self._sending and not mine.outcome.done():
                self._cond.wait()
            batch = None
            if not mine.outcome.done():  # no ack in flight: this thread sends every waiting one, its own included
                batch, self._waiting, self._sending = self._waiting, [], True
        if batch is not None:
            try:
                self._send(batch)
            except Exception as error:  # a malformed answer, say: no caller may be left waiting
                self._fail(batch, error)
            finally:
                with self._cond:
                    self._sending = False
                    self._cond.notify_all()
        return mine.outcome.result()

    def _send(self, batch):
        for group in self._groups(batch):
            if len(group) > 1 and not self.one_by_one:
                self._send_together(group)
            else:
                for pending in group:
                    self._send_alone(pending)

    def _groups(self, batch):
        """Splits a batch into groups one ``ack`` may carry. A result that is not JSON fails its own job here,
        not the others'."""
        if len(batch) == 1:
            yield batch
            return
        group, size = [], 0
        for pending in batch:
            try:
                result_size = len(_api.encode_line(pending.result))
            except (TypeError, ValueError) as error:
                pending.outcome.set_exception(error)
                continue
            if group and (len(group) == MAX_IDS or size + result_size > MAX_RESULT_BYTES):
                yield group
                group, size = [], 0
            group.append(pending)
            size += result_size
        if group:
            yield group

    def _send_alone(self, pending):
        try:
            pending.outcome.set_result(self.client.ack(pending.id, pending.result))
        except Exception as error:
            pending.outcome.set_exception(error)

    def _send_together(self, group):
        results = {pending.id: pending.result for pending in group if pending.result is not None}
        try:
            answer = self.client.ack_many([pending.id for pending in group], results)
        except RPCError as error:
            if error.code == INVALID_PARAMS and error.field == "ids":
                log.info("gantry: the broker does not know ack with ids; acking jobs one by one from now on")
                self.one_by_one = True
                for pending in group:
                    self._send_alone(pending)
                return
            self._fail(group, error)
            return
        except Exception as error:
            self._fail(group, error)
            return
        lost = {entry["id"]: entry for entry in answer.get("lost", [])}
        cancel_requested = set(answer.get("cancel_requested_ids", []))
        for pending in group:
            if pending.id in lost:
                now = lost[pending.id].get("state", "no such job")
                pending.outcome.set_exception(RPCError(
                    LEASE_LOST, f"This connection does not hold the lease on job {pending.id} ({now}), so it "
                    "was not acked. Do not ack or nack it again.", lost[pending.id]))
            elif pending.id in cancel_requested:
                pending.outcome.set_result({"ok": True, "cancel_requested": True})
            else:
                pending.outcome.set_result({"ok": True})

    @staticmethod
    def _fail(group, error):
        for pending in group:
            if not pending.outcome.done():
                pending.outcome.set_exception(error)
