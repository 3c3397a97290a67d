"""The load script's CPU figures (bench/pages.py ``tree_cpu_seconds``, bench/load_ballots.py
``local_postmaster``): a process tree's time counts its living descendants, and with ``reaped`` also the
children it has already waited for, as a PostgreSQL server's ended backends."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from bench import load_ballots
from bench.pages import tree_cpu_seconds

BURN = (
    "import time\n"
    "end = time.process_time() + 0.4\n"
    "while time.process_time() < end: pass\n"
    "print('done', flush=True)\n"
    "input()"
)


def test_tree_cpu_counts_living_and_reaped_children():
    me = os.getpid()
    before, before_reaped = tree_cpu_seconds(me), tree_cpu_seconds(me, reaped=True)
    child = subprocess.Popen([sys.executable, "-c", BURN], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        assert child.stdout.readline().strip() == b"done"  # burnt its time, still alive
        assert tree_cpu_seconds(child.pid) >= 0.35
        assert tree_cpu_seconds(me) - before >= 0.35  # a living child is part of our tree
    finally:
        child.communicate(b"\n", timeout=10)  # ends and is reaped: its time moves to our cutime
    assert tree_cpu_seconds(me) < tree_cpu_seconds(me, reaped=True)
    assert tree_cpu_seconds(me, reaped=True) - before_reaped >= 0.35


def test_local_postmaster_is_the_servers_parent_process(db):
    if db.backend != "postgresql":
        pytest.skip("PostgreSQL only")
    pid = load_ballots.local_postmaster(db.url)
    assert pid is not None
    with open(f"/proc/{pid}/comm") as comm:
        assert comm.read().startswith("postgres")
    assert tree_cpu_seconds(pid, reaped=True) > 0
    assert load_ballots.local_postmaster(db.url.replace("127.0.0.1", "db.example.org")) is None
