"""Test-wide set-up.

Locust monkey-patches the standard library with gevent as soon as it is imported, and our
transport is gevent-native, so the whole test process is patched first, exactly as a Locust
process is. Consequence: servers under test never run in a thread of this process (an asyncio
loop in a patched thread would block every greenlet); they run in subprocesses.
"""

from gevent import monkey

monkey.patch_all()
