'use strict';
// The pino instance Fastify logs with (`loggerInstance`), shaped as the contract says: one JSON
// object per line on stdout, each with `timestamp` (RFC 3339, UTC, milliseconds, Z), `level`
// (DEBUG | INFO | WARNING | ERROR), `service` and `message`; no pid or hostname.
//
// Fastify's defaults are pino's: `"level":30`, `"msg"`, an epoch `"time"`, pid and hostname.
// Note that `pino.stdTimeFunctions.isoTime` is not enough: it writes the ISO time under the
// key `time`, and the contract's key is `timestamp`.

const pino = require('pino');

// pino's level labels, as the contract names them (fatal is still an ERROR, trace a DEBUG).
const LEVELS = {
  trace: 'DEBUG',
  debug: 'DEBUG',
  info: 'INFO',
  warn: 'WARNING',
  error: 'ERROR',
  fatal: 'ERROR',
};

/**
 * A logger for `service`, writing to stdout. Synchronously: pino's default stdout stream is
 * asynchronous, and a process.exit() with a write still in flight can put the last lines out
 * of order (or lose them when the process is killed).
 */
function createLogger(service) {
  return pino(
    {
      level: process.env.LOG_LEVEL || 'info',
      messageKey: 'message',
      base: { service },
      timestamp: () => `,"timestamp":"${new Date().toISOString()}"`,
      formatters: {
        level: (label) => ({ level: LEVELS[label] || label.toUpperCase() }),
      },
    },
    pino.destination({ dest: 1, sync: true }),
  );
}

module.exports = { createLogger };
