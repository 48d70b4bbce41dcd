"""Fixtures of the analysis tests."""
import pytest
import torch


@pytest.fixture
def keep_threads():
    """The benchmark sets torch's thread count; give it back afterwards."""
    threads = torch.get_num_threads()
    yield threads
    torch.set_num_threads(threads)
