"""Steady chat: each user holds one consultation and keeps talking.

    loadtest run chat -u 50 -r 50 -t 60s
    locust -f scenarios/chat.py --headless -u 50 -r 50 -t 60s --host ws://127.0.0.1:8765

Secrets come from the environment: LOADTEST_API_KEY and one of LOADTEST_TOKEN,
LOADTEST_TOKENS_FILE, LOADTEST_JWT_SECRET, LOADTEST_LOGIN_FILE.
"""

from loadtest.users import ChatUser


class SteadyChat(ChatUser):
    """Send a health-coach prompt, read the whole streamed reply, think 1–3 s, repeat."""
