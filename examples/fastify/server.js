'use strict';
// Entry point: tracing first (it must patch `http` before Fastify loads it), then the Fastify
// app on HOST:PORT, one process, stopped cleanly on SIGTERM / SIGINT.

const tracing = require('./tracing');

const { createApp } = require('./app');
const { createLogger } = require('./logger');

const HOST = process.env.HOST || '127.0.0.1';
const PORT = Number(process.env.PORT || 8000);
/** How long in-flight requests may take to finish once a stop was asked for. */
const DRAIN_MS = 5000;

async function main() {
  const logger = createLogger(tracing.serviceName);
  const app = createApp(logger);

  try {
    // Fastify logs `Server listening at http://HOST:PORT` through the same pino instance.
    await app.listen({ host: HOST, port: PORT, backlog: 1024 });
  } catch (err) {
    logger.error({ error_type: err.code ?? err.name }, `cannot listen on ${HOST}:${PORT}`);
    await tracing.shutdown();
    process.exit(1);
  }

  let stopping = false;

  /** Stops accepting, lets in-flight requests finish (bounded), flushes spans, exits 0. */
  async function stop(signal) {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'Shutting down');
    // app.close() stops listening, closes idle keep-alive connections (Fastify's default
    // `forceCloseConnections: 'idle'`) and resolves once in-flight requests are answered.
    const force = setTimeout(() => app.server.closeAllConnections(), DRAIN_MS);
    try {
      await app.close();
    } catch (err) {
      logger.warn({ error: String(err?.message ?? err) }, 'close failed');
    }
    clearTimeout(force);
    await tracing
      .shutdown()
      .catch((err) => logger.warn({ error: String(err?.message ?? err) }, 'span flush failed'));
    logger.info('Stopped');
    process.exit(0);
  }

  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

main();
