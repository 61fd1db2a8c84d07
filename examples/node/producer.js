// Pushes jobs to a Quern queue with ioredis (any Redis client works): no
// SDK, just QPUSH through `call`.
//
//   REDIS_URL=redis://localhost:6379 node producer.js '{"to": "ada@example.com"}' ...
//
// QUEUE names the queue (default "emails"). RETRIES (default 3) is how many
// failed attempts are retried before the job goes to the dead-letter queue;
// LEASE (ms, default 30000) is how long a worker may hold it before it
// comes back.

"use strict";

const Redis = require("ioredis");

const redis = new Redis(process.env.REDIS_URL || "redis://localhost:6379");
const queue = process.env.QUEUE || "emails";
const retries = process.env.RETRIES || "3";
const lease = process.env.LEASE || "30000";

async function main() {
  for (const payload of process.argv.slice(2)) {
    const id = await redis.call("QPUSH", queue, payload, "RETRIES", retries, "LEASE", lease);
    console.log(`pushed job ${id}`);
  }
  await redis.quit();
}

main().catch((error) => {
  console.error(error.message);
  process.exit(1);
});
