'use strict';
// Entry point: tracing first (it must patch `http` and `express` before they load), then the
// HTTP server on HOST:PORT, stopped cleanly on SIGTERM / SIGINT. `node server.js` serves one
// process; cluster.js calls `serve()` in each of its workers, with a store and a /metrics
// answer that ask the cluster's primary.

const tracing = require('./tracing');

const http = require('http');
const { trace } = require('@opentelemetry/api');
const { createApp, rememberServerSpan } = require('./app');
const { createLogger } = require('./logger');

const HOST = process.env.HOST || '127.0.0.1';
const PORT = Number(process.env.PORT || 8000);
/** How long in-flight requests may take to finish once a stop was asked for. */
const DRAIN_MS = 5000;

/** Serves the app on HOST:PORT until SIGTERM / SIGINT; `options` go to `createApp`. */
function serve(options = {}) {
  const logger = createLogger(tracing.serviceName);
  const app = createApp(logger, options);

  // The http instrumentation makes the request's SERVER span active around this callback:
  // remember it before Express starts its own (INTERNAL) layer spans.
  const server = http.createServer((req, res) => {
    rememberServerSpan(req, trace.getActiveSpan());
    app(req, res);
  });

  server.on('error', (err) => {
    logger.error({ error_type: err.code ?? err.name }, `cannot listen on ${HOST}:${PORT}`);
    tracing.shutdown().finally(() => process.exit(1));
  });

  server.listen({ host: HOST, port: PORT, backlog: 1024 }, () => {
    logger.info({ host: HOST, port: PORT }, 'Listening');
  });

  let stopping = false;

  /** Stops accepting, lets in-flight requests finish (bounded), flushes spans, exits 0. */
  function stop(signal) {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'Shutting down');
    const force = setTimeout(() => server.closeAllConnections(), DRAIN_MS);
    // Closes the listener and idle keep-alive connections; calls back once all are gone.
    server.close(() => {
      clearTimeout(force);
      tracing
        .shutdown()
        .catch((err) => logger.warn({ error: String(err?.message ?? err) }, 'span flush failed'))
        .finally(() => {
          logger.info('Stopped');
          process.exit(0);
        });
    });
  }

  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

module.exports = { serve };

if (require.main === module) serve();
