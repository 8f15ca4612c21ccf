"""The one read buffer every connection of the process reads into.

Shared by the handshake read (:mod:`loadtest.transport.opening`) and the open connection's
reads (:mod:`loadtest.transport.connection`), so it lives apart from both.
"""

from __future__ import annotations

READ_BUFFER_BYTES = 16384
#: One read buffer for every connection of the process. Safe because no reader (hub callback
#: or greenlet) yields between ``recv_into`` filling it and ``receive_data`` copying out of it
#: (both are non-blocking once the socket is readable), and cheap: 10,000 idle connections
#: would otherwise hold 10,000 buffers.
SHARED_READ_BUFFER = bytearray(READ_BUFFER_BYTES)
SHARED_READ_VIEW = memoryview(SHARED_READ_BUFFER)
SHARED_READ_BUFFERS = [SHARED_READ_BUFFER]  # as recvmsg_into takes it
