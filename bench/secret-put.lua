-- wrk: PUT one secret again and again (each request is a new version, so the
-- whole provisioning runs: metadata read, KV write, policy, role).
wrk.method = "PUT"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"data": {"DATABASE_URL": "postgres://bench:not-a-real-password@db/bench", "DATABASE_USER": "bench"}}'
done = function(summary, latency, requests)
  io.write(string.format("p50=%.2f p95=%.2f p99=%.2f rps=%.0f non2xx=%d\n",
    latency:percentile(50) / 1000, latency:percentile(95) / 1000, latency:percentile(99) / 1000,
    summary.requests / (summary.duration / 1e6), summary.errors.status))
end
