"""GET /metrics (serve/metrics.py): Prometheus's text format behind the admin token, and under load on real
worker processes the sums over all of them equal what the clients were answered, a worker restart included."""

import os
import signal

from prometheus_client.parser import text_string_to_metric_families

from tests.feedback_helpers import TOKEN, bearer
from tests.front_fixtures import Load, ServeProcess, drawn_digit_png, wait_until
from tests.server_fixtures import post, request


def blank_png():
    from PIL import Image
    import io

    buffer = io.BytesIO()
    Image.new("L", (280, 280), 0).save(buffer, "PNG")
    return buffer.getvalue()


def scrape(base_url):
    answer = request(base_url, "GET", "/metrics", headers=bearer())
    assert answer.status == 200 and answer.headers["Content-Type"].startswith("text/plain; version=")
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(answer.body.decode()) for sample in family.samples}


def value(samples, name, **labels):
    """The sum of `name` over the samples whose labels include `labels`."""
    return sum(found for (sample_name, sample_labels), found in samples.items()
               if sample_name == name and labels.items() <= dict(sample_labels).items())


def test_metrics_need_the_admin_token(start_server):
    base_url = start_server(ADMIN_TOKEN=TOKEN)
    refused = request(base_url, "GET", "/metrics")
    assert refused.status == 401 and refused.json()["error"]
    assert request(base_url, "GET", "/metrics", headers={"Authorization": "Bearer wrong"}).status == 401
    assert request(start_server(), "GET", "/metrics", headers=bearer()).status == 404  # no token, no operator routes


def test_requests_refusals_and_readers_are_counted(start_server, manifest):
    base_url = start_server(ADMIN_TOKEN=TOKEN)
    before = scrape(base_url)
    assert post(base_url, drawn_digit_png(), "image/png").status == 200
    for _ in range(2):
        assert post(base_url, blank_png(), "image/png").status == 422
    assert request(base_url, "GET", "/no/such/thing").status == 404
    after = scrape(base_url)

    def grew(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    assert grew("serve_requests_total", route="/predict", method="POST", status="200") == 1
    assert grew("serve_requests_total", route="/predict", method="POST", status="422") == 2
    assert grew("serve_decode_refusals_total", route="/predict", reason="no_ink") == 2
    assert grew("serve_request_seconds_count", route="/predict") == 3
    assert grew("serve_requests_total", route="unmatched") + grew("serve_requests_total", route="/<path:name>") == 1
    health = request(base_url, "GET", "/healthz").json()
    assert value(after, "serve_model_info", reader="digits", model=health["model"], variant=health["variant"]) == 1
    assert value(after, "serve_model_info", reader="numbers", model=health["numbers"]["model"]) == 1


def test_a_scrape_during_load_sums_every_worker_and_survives_a_restart(tmp_path):
    server = ServeProcess(tmp_path / "serve.log", "--port", "0", "--workers", "2", "--threads", "2", "--quiet",
                          env={"SERVE_ADMIN_TOKEN": TOKEN})
    base_url = f"http://{server.address}"
    try:
        with Load(server.host, server.port, drawn_digit_png(), clients=4, seconds=60) as load:
            assert wait_until(lambda: load.count() >= 100, 30)
            during = [value(scrape(base_url), "serve_requests_total", route="/predict", status="200") for _ in range(5)]
            assert during == sorted(during) and during[0] >= 100
            pid = server.worker_pids()[0]
            os.kill(pid, signal.SIGTERM)  # drains, exits, and is replaced: its counts must stay in the sums
            assert wait_until(lambda: pid not in server.worker_pids() and len(server.worker_pids()) == 2, 60)
            stopped_at = load.count()
            assert wait_until(lambda: load.count() >= stopped_at + 100, 30)
        assert load.failures == [] and set(load.statuses) == {200}
        samples = scrape(base_url)
        assert value(samples, "serve_requests_total", route="/predict", method="POST", status="200") == load.count()
        assert value(samples, "serve_request_seconds_count", route="/predict") == load.count()
        scrapes = value(samples, "serve_requests_total", route="/metrics", status="200")
        assert scrapes == len(during)  # the last scrape counts itself only once it is answered
    finally:
        server.stop()
    assert "PROMETHEUS_MULTIPROC_DIR" not in os.environ


def test_the_store_state_follows_the_last_feedback_write(start_server, tmp_path):
    from tests.feedback_helpers import feedback_document, post_feedback

    working = start_server(ADMIN_TOKEN=TOKEN, FEEDBACK_DB=str(tmp_path / "feedback.sqlite"))
    assert post_feedback(working, feedback_document()).status == 201
    assert value(scrape(working), "serve_feedback_store_up", store="sqlite") == 1
    (tmp_path / "a-folder").mkdir()  # a folder where the database file should be cannot be opened
    broken = start_server(ADMIN_TOKEN=TOKEN, FEEDBACK_DB=str(tmp_path / "a-folder"))
    assert post_feedback(broken, feedback_document()).status == 503
    assert value(scrape(broken), "serve_feedback_store_up", store="sqlite") == 0
