"""Peak memory of the real server (`python -m serve`, a subprocess) for the worst inputs it accepts.

Issue 12's bounds: any one request peaks at most 30 MB above idle, and eight of the worst in parallel
keep the whole server at most 200 MB resident. Peaks are /proc's VmHWM, reset before each request.
"""

import pytest

from bench.large_images import PARALLEL, PARALLEL_RESIDENT_BYTES, PER_REQUEST_BYTES, peak_above_idle, worst_case_inputs
from bench.servers import our_server
from tests.conftest import ARTIFACTS_DIR

INPUTS = worst_case_inputs()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with our_server(tmp_path_factory.mktemp("memory"), ARTIFACTS_DIR) as started:
        started.start(INPUTS[0][1])
        # Each input once before measuring: start-up work (gzipping the page) and first-use allocations are done.
        peak_above_idle(started, [(body, content_type) for _, body, content_type in INPUTS])
        yield started


@pytest.mark.parametrize("name, body, content_type", INPUTS, ids=[name for name, _, _ in INPUTS])
def test_one_worst_case_request_stays_within_30_mb_of_idle(server, name, body, content_type):
    idle, peak = peak_above_idle(server, [(body, content_type)])
    assert peak - idle <= PER_REQUEST_BYTES, f"{name}: {idle / 1e6:.1f} MB idle, peak {peak / 1e6:.1f} MB"


def test_eight_worst_case_requests_at_once_keep_the_server_under_200_mb(server):
    _, body, content_type = INPUTS[0]
    _, peak = peak_above_idle(server, [(body, content_type)], parallel=PARALLEL)
    assert peak <= PARALLEL_RESIDENT_BYTES, f"peak {peak / 1e6:.1f} MB with {PARALLEL} in parallel"
