'use strict';
// Entry point for Node's `cluster` module: a primary that forks WORKERS (default 2) worker
// processes, each serving the same Express app on the shared HOST:PORT (server.js), with its
// own OpenTelemetry SDK and exporter and its own prom-client registry.
//
// GET /metrics on the shared port answers the sum of all workers, prom-client's documented
// way: the worker that receives the scrape asks the primary over IPC, the primary calls
// `AggregatorRegistry#clusterMetrics()` (which asks every worker for its registry as JSON and
// aggregates it), and the worker sends that text. The demo users live in the primary too,
// reached over the same IPC channel, so that a user created through one worker can be read
// through another.
//
// The primary serves no HTTP itself and does not start the OpenTelemetry SDK: it only forks,
// aggregates, keeps the users, and stops the workers on SIGTERM / SIGINT.

const cluster = require('cluster');

/** Messages from a worker to the primary, and the primary's replies. */
const ASK = 'obsctl-example:ask';
const REPLY = 'obsctl-example:reply';

/** How long a worker waits for the primary's answer (clusterMetrics itself gives up at 5 s). */
const ASK_TIMEOUT_MS = 6000;

if (cluster.isPrimary) {
  runPrimary();
} else {
  runWorker();
}

function runPrimary() {
  const client = require('prom-client');
  const { serviceName } = require('./service');
  const { createLogger } = require('./logger');
  const { Users } = require('./users');

  const WORKERS = Number(process.env.WORKERS || 2);
  /** How long the workers get to drain and flush their spans (server.js: 5 s + 5 s). */
  const STOP_MS = 15000;

  const logger = createLogger(serviceName);
  const users = new Users();
  // In the primary, the constructor listens for the workers' answers to clusterMetrics().
  const aggregator = new client.AggregatorRegistry();

  // AggregatorRegistry omits process_start_time_seconds (its aggregator is `omit`: workers'
  // start times do not add up). The aggregate is the cluster's, so /metrics gives the
  // primary's start time, computed as prom-client's default collector does.
  const own = new client.Registry();
  const startedAt = Math.round(Date.now() / 1000 - process.uptime());
  new client.Gauge({
    name: 'process_start_time_seconds',
    help: 'Start time of the process since unix epoch in seconds.',
    registers: [own],
    collect() {
      this.set(startedAt);
    },
  });

  let stopping = false;
  /** Workers not yet exited (a dead one can stay in cluster.workers until it disconnects). */
  const alive = new Set();
  /** One promise per worker, settled once it listens (or has exited): it answers IPC then. */
  const ready = [];

  logger.info({ workers: WORKERS }, 'Starting workers');
  for (let i = 0; i < WORKERS; i++) {
    const worker = cluster.fork();
    alive.add(worker);
    ready.push(
      new Promise((resolve) => {
        worker.once('listening', resolve);
        worker.once('exit', resolve);
      }),
    );
  }
  const allReady = Promise.all(ready);

  async function answer({ op, args }) {
    switch (op) {
      case 'metrics': {
        // A worker installs its IPC listener before it listens: asking a worker still
        // starting would wait for clusterMetrics' 5 s timeout instead.
        await allReady;
        const [workers, primary] = await Promise.all([
          aggregator.clusterMetrics(),
          own.metrics(),
        ]);
        return { contentType: aggregator.contentType, body: `${workers}\n${primary}` };
      }
      case 'users.get':
        return users.get(args.id) ?? null;
      case 'users.create':
        return users.create(args.name);
      default:
        throw new Error(`unknown operation ${op}`);
    }
  }

  cluster.on('message', (worker, message) => {
    if (message?.type !== ASK) return;
    answer(message)
      .then(
        (value) => ({ value }),
        (err) => ({ error: String(err?.message ?? err) }),
      )
      .then((reply) => {
        if (worker.isConnected()) worker.send({ type: REPLY, id: message.id, ...reply });
      });
  });

  // No worker is restarted: one that dies says so, and the service goes on with fewer.
  cluster.on('exit', (worker, code, signal) => {
    alive.delete(worker);
    const fields = { worker_pid: worker.process.pid, exit_code: code, signal };
    if (stopping) {
      logger.info(fields, 'Worker stopped');
    } else {
      logger.error(fields, 'Worker died; it is not restarted');
    }
    if (alive.size === 0) {
      logger.info('Stopped');
      process.exit(stopping ? 0 : 1);
    }
  });

  /** Forwards the signal to every worker, and exits once they all have (cluster 'exit'). */
  function stop(signal) {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'Shutting down');
    for (const worker of alive) worker.process.kill(signal);
    setTimeout(() => {
      for (const worker of alive) {
        logger.error({ worker_pid: worker.process.pid }, 'Worker did not stop; killing it');
        worker.process.kill('SIGKILL');
      }
    }, STOP_MS).unref();
  }

  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

function runWorker() {
  // server.js requires tracing.js first: the SDK starts in this worker, with its own exporter.
  const { serve } = require('./server');
  const { AggregatorRegistry } = require('prom-client');

  // In a worker, the constructor installs the listener that answers the primary's
  // clusterMetrics() with this worker's registry (the global one, which metrics.js fills).
  // It must exist before the worker listens: see `allReady` in the primary.
  new AggregatorRegistry();

  let nextId = 0;
  const pending = new Map();

  process.on('message', (message) => {
    if (message?.type !== REPLY) return;
    const call = pending.get(message.id);
    if (!call) return;
    pending.delete(message.id);
    clearTimeout(call.timer);
    if ('error' in message) call.reject(new Error(message.error));
    else call.resolve(message.value);
  });

  /** Asks the primary to run `op`; rejects when it fails or does not answer in time. */
  function ask(op, args = {}) {
    return new Promise((resolve, reject) => {
      const id = nextId++;
      const timer = setTimeout(() => {
        pending.delete(id);
        reject(new Error(`the primary did not answer ${op} within ${ASK_TIMEOUT_MS} ms`));
      }, ASK_TIMEOUT_MS);
      pending.set(id, { resolve, reject, timer });
      process.send({ type: ASK, id, op, args }, (err) => {
        if (!err) return;
        pending.delete(id);
        clearTimeout(timer);
        reject(err);
      });
    });
  }

  serve({
    users: {
      get: async (id) => (await ask('users.get', { id })) ?? undefined,
      create: (name) => ask('users.create', { name }),
    },
    // PER_WORKER_METRICS=1 is the mistake this file exists to avoid, kept to show what obsctl
    // says of it: each worker answers /metrics from its own registry, so a scrape sees
    // whichever worker the connection reached.
    exposition:
      process.env.PER_WORKER_METRICS === '1'
        ? require('./metrics').exposition
        : () => ask('metrics'),
  });
}
