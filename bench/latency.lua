-- wrk report: p50/p95/p99 in milliseconds, requests/s and non-2xx count on one line.
done = function(summary, latency, requests)
  io.write(string.format("p50=%.2f p95=%.2f p99=%.2f rps=%.0f non2xx=%d\n",
    latency:percentile(50) / 1000, latency:percentile(95) / 1000, latency:percentile(99) / 1000,
    summary.requests / (summary.duration / 1e6), summary.errors.status))
end
