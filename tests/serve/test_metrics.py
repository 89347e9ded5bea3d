"""The Prometheus page: well-formed samples, cumulative histograms, bounded labels."""

import httpx

from openk2.engine.outputs import EngineStats
from openk2.serve.metrics import ServerMetrics, parse_metrics
from serve.live import LiveServer


def test_render_is_prometheus_text_with_cumulative_buckets() -> None:
    metrics = ServerMetrics()
    for seconds in (0.02, 0.2, 0.2, 40.0):
        metrics.record_ttft(seconds)
    metrics.record_request("/v1/models", 200)
    stats = EngineStats(num_blocks=10, num_used_blocks=4, sequences_added=4, finished={"stop": 3})
    text = metrics.render(stats, 'model "x"', in_flight=2)
    for line in text.splitlines():
        assert line.startswith("#") or 'model_name="model \\"x\\""' in line
    values = parse_metrics(text)
    assert values['openk2_time_to_first_token_seconds_bucket{le="0.025"}'] == 1
    assert values['openk2_time_to_first_token_seconds_bucket{le="0.25"}'] == 3
    assert values['openk2_time_to_first_token_seconds_bucket{le="+Inf"}'] == 4
    assert values["openk2_cache_pages_free"] == 6 and values["openk2_cache_usage_ratio"] == 0.4
    assert values['openk2_sequences_finished_total{reason="stop"}'] == 3
    assert values["openk2_sequences_added_total"] == 4
    assert values["openk2_requests_in_flight"] == 2


def test_unknown_paths_share_one_label(server: LiveServer) -> None:
    for i in range(3):
        httpx.get(f"{server.url}/v1/made-up-{i}")
    values = parse_metrics(httpx.get(server.url + "/metrics").text)
    assert values['openk2_requests_total{endpoint="other",status="404"}'] >= 3
    assert not [k for k in values if "made-up" in k]
