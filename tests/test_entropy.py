"""Random ids and masking keys: fresh bytes every time, in every process."""

from __future__ import annotations

import os
import re

import pytest

from loadtest.entropy import BATCH_BYTES, RandomPool, mask_key, random_id


class TestRandomPool:
    def test_no_byte_is_handed_out_twice_across_batches(self) -> None:
        pool = RandomPool()
        taken = [pool.take(16) for _ in range(3 * BATCH_BYTES // 16 + 5)]
        assert all(len(piece) == 16 for piece in taken)
        assert len(set(taken)) == len(taken)

    def test_a_piece_that_does_not_fit_the_rest_of_a_batch_starts_a_new_one(self) -> None:
        pool = RandomPool()
        pool.take(BATCH_BYTES - 3)
        assert len(pool.take(4)) == 4

    def test_a_piece_larger_than_a_batch_is_whole(self) -> None:
        assert len(RandomPool().take(BATCH_BYTES + 1)) == BATCH_BYTES + 1


class TestIdsAndKeys:
    def test_an_id_is_32_hex_digits_like_a_uuid4_hex(self) -> None:
        ids = {random_id() for _ in range(1000)}
        assert len(ids) == 1000
        assert all(re.fullmatch(r"[0-9a-f]{32}", value) for value in ids)

    def test_a_masking_key_is_four_bytes(self) -> None:
        assert len(mask_key()) == 4

    @pytest.mark.skipif(not hasattr(os, "fork"), reason="fork only")
    def test_a_forked_child_does_not_repeat_its_parents_next_id(self) -> None:
        random_id()  # a batch is open, with bytes left in it
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: report its next id and leave at once
            os.write(write_end, random_id().encode())
            os._exit(0)
        os.close(write_end)
        child_id = os.read(read_end, 64).decode()
        os.close(read_end)
        os.waitpid(pid, 0)
        assert child_id != random_id()
