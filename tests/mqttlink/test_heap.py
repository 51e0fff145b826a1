"""The start-up heap is frozen once per process, out of every later full collection's walk."""

import subprocess
import sys

from mqttlink.heap import YOUNG_THRESHOLD

PROBE = """
import gc
from mqttlink.heap import freeze_startup_heap
kept = [[n] for n in range(10_000)]  # start-up objects that live on
assert gc.get_freeze_count() == 0
first, second = freeze_startup_heap(), freeze_startup_heap()
print(first, second, gc.get_freeze_count() >= len(kept), gc.get_threshold()[0])
"""


def test_first_call_freezes_the_heap_and_later_calls_do_nothing() -> None:
    # a process of its own: the test process's heap may have been frozen by a service already
    out = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, check=True, timeout=60
    ).stdout.split()

    assert out == ["True", "False", "True", str(YOUNG_THRESHOLD)]
