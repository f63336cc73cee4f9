'use strict';
// prom-client: the two request metrics of the contract and the standard process collector,
// in the default registry of this one process.

const client = require('prom-client');

const register = client.register;

// process_cpu_seconds_total, process_resident_memory_bytes, ... and Node's own gauges.
client.collectDefaultMetrics({ register });

const LABELS = ['method', 'path', 'status_code'];

const requests = new client.Counter({
  name: 'fastapi_requests_total',
  help: 'Total HTTP requests',
  labelNames: LABELS,
  registers: [register],
});

const duration = new client.Histogram({
  name: 'fastapi_request_duration_seconds',
  help: 'HTTP request duration in seconds',
  labelNames: LABELS,
  buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
  registers: [register],
});

/** Counts one finished request and observes its duration (in seconds). */
function record(labels, seconds) {
  requests.inc(labels);
  duration.observe(labels, seconds);
}

/** This process's `/metrics` answer: its content type and body. */
async function exposition() {
  return { contentType: register.contentType, body: await register.metrics() };
}

module.exports = { register, record, exposition };
