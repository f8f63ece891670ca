"""Run pieces of a test at the same time, each like a separate web worker."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from flask import Flask

from storefront.extensions import db


def run_in_app_threads(app: Flask, *targets: Callable[[], Any], timeout: float = 30) -> list:
    """Run each target in its own thread and app context (so its own session and database
    connection); return their results in order. An exception raised in a thread is
    raised here, not lost with the thread."""
    results: list[Any] = [None] * len(targets)
    errors: list[BaseException] = []

    def run(index: int, target: Callable[[], Any]) -> None:
        with app.app_context():
            try:
                results[index] = target()
            except BaseException as err:
                errors.append(err)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=run, args=(i, t)) for i, t in enumerate(targets)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=timeout)
    if errors:
        raise errors[0]
    return results
