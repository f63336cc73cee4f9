'use strict';
// OpenTelemetry set-up. It must run before `http` and `fastify` are required, so that the http
// instrumentation can patch `http`: server.js requires this file on its first line.
//
// Only the http instrumentation: it makes the SERVER span of every request (continuing the
// caller's W3C `traceparent`) and names it `{METHOD} {http.route}` from the route the app puts
// in the request's RPC metadata (app.js, `onRequest`). @fastify/otel is not used: its latest
// release (0.21.2) depends on @opentelemetry/instrumentation ^0.222.0, one release behind this
// SDK's 0.223.0, so it would bring a second copy of the instrumentation package, and it adds
// one INTERNAL span per hook and handler that the contract does not ask for.
//
// Everything standard comes from the environment, read by the SDK itself:
// OTEL_EXPORTER_OTLP_ENDPOINT (gRPC, default http://localhost:4317), OTEL_SERVICE_NAME,
// OTEL_RESOURCE_ATTRIBUTES, OTEL_TRACES_SAMPLER (+ _ARG), OTEL_BSP_* and OTEL_SDK_DISABLED.

const { NodeSDK } = require('@opentelemetry/sdk-node');
const { OTLPTraceExporter } = require('@opentelemetry/exporter-trace-otlp-grpc');
const { HttpInstrumentation } = require('@opentelemetry/instrumentation-http');
const { defaultResource, resourceFromAttributes } = require('@opentelemetry/resources');
const { DEFAULT_SERVICE_NAME, serviceName } = require('./service');

// The contract's default name sits under what the environment says: the SDK merges its
// detectors (OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES) over this resource.
const resource = defaultResource().merge(
  resourceFromAttributes({ 'service.name': DEFAULT_SERVICE_NAME }),
);

const sdk = new NodeSDK({
  resource,
  // OTLP over gRPC, behind the batch processor the SDK builds from OTEL_BSP_* settings.
  traceExporter: new OTLPTraceExporter(),
  // Metrics are prom-client's /metrics and logs are pino's stdout: no OTLP metrics or logs
  // (the SDK would otherwise start both exporters by default).
  metricReaders: [],
  logRecordProcessors: [],
  instrumentations: [new HttpInstrumentation()],
});
sdk.start();

/**
 * Flushes the spans still queued and stops the SDK, waiting at most `timeoutMs`: a collector
 * that is down must not hold the process at exit.
 */
async function shutdown(timeoutMs = 5000) {
  let timer;
  const deadline = new Promise((resolve) => {
    timer = setTimeout(resolve, timeoutMs);
  });
  try {
    await Promise.race([sdk.shutdown(), deadline]);
  } finally {
    clearTimeout(timer);
  }
}

module.exports = { serviceName, shutdown };
