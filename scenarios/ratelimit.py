"""Rate-limit probe: faster and faster on each connection until the server starts refusing.

    loadtest run ratelimit -u 1 -t 40s -- --probe-rates 1,2,4,8,16 --probe-step-time 5
    locust -f scenarios/ratelimit.py --headless -u 1 -t 40s --host ws://… --probe-rates 1,2,4

Each user holds one consultation and climbs a ladder of message rates on its connection:
--probe-rates (1,2,4,8,16) messages per second, --probe-step-time (5) seconds a step, the last
rate held until the run ends. One message at a time, as the protocol has it: a message goes when
the reply before it has ended and 1/rate s have passed since the last send, so a step's reached
rate is at most 1 / reply time (the step records the rate reached beside the one asked for;
add users, -u, to probe a per-account limit at higher rates). A refusal is an `error` frame in
place of the reply or the server closing the connection on a message. Counted in summary.json:
error_frames, streams_failed by error_kind `error_frame`, disconnects by close code; per step
and user, events.jsonl rows of kind `rate_step` (sent, achieved_per_s, refused, refused_by,
first_refusal_s), which loadtest.analysis.ratelimit adds up to name the first refused step.
Try it on the reference target with --target-args "--fault rate_limit=5/1 --profile fixed".
"""

from loadtest.users.ratelimit import RateLimitProbeUser


class RateLimitProbe(RateLimitProbeUser):
    """Send at rising rates; count the server's refusals per rate step."""
