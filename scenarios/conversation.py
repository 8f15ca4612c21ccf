"""Realistic conversations: several turns in a consultation of its own, then a new one.

    loadtest run conversation -u 50 -r 5 -t 10m -- --conversation-turns 3-8 --batch-share 0.2
    locust -f scenarios/conversation.py --headless -u 50 -r 5 -t 10m --host ws://…

Each user creates its consultation (POST /consultations, unless --consultation-id), connects,
holds a conversation of --conversation-turns (3-8) turns, uniform, and leaves (close 1000);
after a pause a new conversation starts with a new consultation. The first message goes right
after connecting; between turns the user thinks for a lognormal time (--think-distribution
lognormal): --think-median (8) s, --think-sigma (0.6), capped at --think-cap (60) s, which gives
a mean of 9.6 s and a 95th percentile of 21.5 s; the pause between conversations is drawn the
same way. --think-distribution uniform uses --think-time (1-3) instead. Prompts come from the
shipped corpus (2 to 150 words; --prompts-file for your own). --batch-share (0) is the share of
turns typed as 2-3 quick messages under 0.3 s apart, which the guide's client joins with spaces
into one user_message sent 0.3 s after the last (loadtest/batching.py); its streams are timed
from that send. What it answers: latency, errors and connection counts under traffic shaped
like the app's: consultations created, opened, talked in and left, at human pace.
"""

from loadtest.users.conversation import ConversationUser


class Conversation(ConversationUser):
    """Create a consultation, talk for a few turns at human pace, leave, start another."""
