"""Test scenario: steady chat that reports, as the Locust process exits, which heavy analysis
libraries it had imported (none may be: the summary and reports are made in a child)."""

import sys

from locust import events

from loadtest.users import ChatUser


class Chat(ChatUser):
    pass


@events.quit.add_listener
def _report_imports(exit_code: int, **_: object) -> None:
    heavy = sorted(name for name in ("pandas", "matplotlib", "scipy") if name in sys.modules)
    print(f"[loadtest] probe: heavy imports {heavy}", file=sys.stderr, flush=True)
