"""``kill -USR1 <pid>``: a running process prints what each of its asyncio tasks awaits.

For an operator (or a test) facing a process that does not stop or does not answer:
the stacks show which task waits on what, without stopping it.
"""

from __future__ import annotations

import asyncio
import signal
import sys


def print_tasks() -> None:
    """Every task of the running loop, with its name and stack, on stderr."""
    tasks = asyncio.all_tasks()
    print(f"openticket: {len(tasks)} asyncio tasks", file=sys.stderr)
    for task in sorted(tasks, key=lambda t: t.get_name()):
        print(f"--- task {task.get_name()}", file=sys.stderr)
        task.print_stack(file=sys.stderr)
    sys.stderr.flush()


def dump_tasks_on_sigusr1() -> None:
    """Have SIGUSR1 print the running loop's tasks (``print_tasks``)."""
    asyncio.get_running_loop().add_signal_handler(signal.SIGUSR1, print_tasks)
