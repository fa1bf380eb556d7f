"""A user's own Locust `User` class as the load (`load.user_class`; the contract is in
scenarios/README.md, "Your own Locust class").

The harness keeps the open-loop schedule, so coordinated omission, downtime and recovery work
as for every other load: at each slot's intended instant, one task of the class (drawn by the
class's own task weights, from a seeded stream per sender) is called on that sender's instance
of the class, and that call is one request. Its record: intended = the slot's instant, start =
just before the call, end = when it returns, kind = the task's name; the outcome comes from the
Locust request events the task fired (the last one decides):

    success                                   -> acked
    failure with an HTTP answer (status > 0)  -> rejected
    failure without one, no event, or the task raised -> unknown

Imported in the worker only (after locust has patched the standard library with gevent).
"""

from __future__ import annotations

import importlib.util
import random
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gevent  # type: ignore[import-untyped]
from locust import User
from locust.env import Environment

from harness.load.task_outcome import TaskOutcome, judge_events
from harness.netaddr import url_address
from harness.records import Outcome
from harness.scenario.http_load import UserClassSpec

Task = Callable[[User], object]


class UserClassError(Exception):
    """The file or class cannot serve as the load (said in the load's log, the run fails)."""


def load_user_class(spec: UserClassSpec) -> type[User]:
    """The class `spec.name` from the Python file `spec.file` (an absolute path by now)."""
    path = Path(spec.file)
    module_name = f"hftchaos_user_load_{abs(hash(str(path)))}"
    module_spec = importlib.util.spec_from_file_location(module_name, path)
    if module_spec is None or module_spec.loader is None:
        raise UserClassError(f"{path}: cannot be imported")
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[module_name] = module
    try:
        module_spec.loader.exec_module(module)
    except Exception as error:
        raise UserClassError(
            f"{path}: importing it failed: {type(error).__name__}: {error}"
        ) from None
    found = getattr(module, spec.name, None)
    if not (isinstance(found, type) and issubclass(found, User)):
        raise UserClassError(f"{path}: {spec.name} is not a locust User class")
    tasks = getattr(found, "tasks", [])
    if not tasks or not all(callable(each) and not isinstance(each, type) for each in tasks):
        raise UserClassError(
            f"{path}: {spec.name} needs @task methods (TaskSets are not supported: each task "
            "must be one request)"
        )
    return found


class UserTasks:
    """Each sender's instance of the user's class and its seeded draw of tasks."""

    def __init__(
        self,
        user_class: type[User],
        environment: Environment,
        addresses: tuple[str, ...],
        seed: int,
    ) -> None:
        # Locust's HttpUser builds its client from `host` in __init__: one subclass per
        # address, senders spread over them as over the declarative load's.
        self._classes = [
            type(user_class.__name__, (user_class,), {"host": f"http://{url_address(address)}"})
            for address in addresses
        ]
        # load_user_class refused TaskSets: every task is a function of the user.
        self._tasks: list[Task] = [each for each in user_class.tasks if callable(each)]
        self._environment = environment
        self._seed = seed
        self._senders: dict[int, tuple[User, random.Random]] = {}
        self._fired: dict[object, list[dict[str, Any]]] = {}
        environment.events.request.add_listener(self._on_request)  # type: ignore[no-untyped-call]

    def call(self, sender: int, request_id: str) -> tuple[str, Callable[[], TaskOutcome]]:
        """The next task's name for `sender`, and the call that runs it and judges it. The
        task sees `self.request_id`: the id its record carries (use it as the write's key,
        and a read-back finds it)."""
        if sender not in self._senders:
            self._senders[sender] = (
                self._classes[sender % len(self._classes)](self._environment),
                random.Random(self._seed * 7919 + sender),
            )
        user, draw = self._senders[sender]
        chosen = draw.choice(self._tasks)
        user.request_id = request_id  # type: ignore[attr-defined]  # the contract's one name
        return getattr(chosen, "__name__", "task"), lambda: self._run(chosen, user)

    def _run(self, chosen: Task, user: User) -> TaskOutcome:
        current = gevent.getcurrent()
        fired: list[dict[str, Any]] = []
        self._fired[current] = fired
        try:
            chosen(user)
        except gevent.GreenletExit:
            raise
        except Exception as error:  # the user's code: its failure is this request's outcome
            return TaskOutcome(Outcome.UNKNOWN, None, f"the task raised {type(error).__name__}")
        finally:
            self._fired.pop(current, None)
        return judge_events(fired)

    def _on_request(self, **event: Any) -> None:
        fired = self._fired.get(gevent.getcurrent())
        if fired is not None:
            fired.append(event)
