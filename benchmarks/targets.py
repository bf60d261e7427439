"""What every benchmark does alike: its command line takes ``--no-fail``, each target prints one PASS or FAIL
line, and it exits 1 when a target is missed (0 with ``--no-fail``)."""

from __future__ import annotations

import argparse


def arguments(doc: str | None) -> argparse.ArgumentParser:
    """A benchmark's command line, described by the first line of its module's docstring, with ``--no-fail``."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0] if doc else None)
    parser.add_argument("--no-fail", action="store_true", help="exit 0 even when a target is missed")
    return parser


def check(met: bool, text: str) -> bool:
    print(f"{'PASS' if met else 'FAIL'} {text}")
    return met


def exit_status(met: bool, no_fail: bool) -> int:
    return 0 if met or no_fail else 1


def verdict(checks: list[tuple[bool, str]], no_fail: bool) -> int:
    """Each target's line, then the exit status."""
    met = [check(passed, text) for passed, text in checks]
    return exit_status(all(met), no_fail)
