// A Quern worker with ioredis (any Redis client works): pull, handle, ack,
// or fail with the error's message.
//
// Long jobs keep their lease: QTOUCH renews it on a timer while the handler
// runs. On SIGTERM (or Ctrl-C) the worker stops pulling, hands an unfinished
// job back with QFAIL ... SILENT (the attempt is not counted), and exits 0.
//
//   REDIS_URL=redis://localhost:6379 QUEUE=emails node worker.js

"use strict";

const Redis = require("ioredis");

const URL = process.env.REDIS_URL || "redis://localhost:6379";
const QUEUE = process.env.QUEUE || "emails";
const LEASE_MS = Number(process.env.LEASE_MS || 30000);

const commands = new Redis(URL);
// A blocking pull holds up every command behind it on its connection, so
// pulls get a connection of their own and never delay an ack or a touch.
const puller = new Redis(URL);

let stopping = false;
let stop; // resolves when a stop is asked for
const stopped = new Promise((resolve) => (stop = resolve));
for (const signal of ["SIGTERM", "SIGINT"]) {
  process.on(signal, () => {
    stopping = true;
    stop();
  });
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// Your work goes here. Throw to fail the job.
async function handle(payload) {
  const job = JSON.parse(payload);
  if (job.fail) throw new Error(`cannot handle ${payload}`);
  await sleep((job.seconds || 0) * 1000);
}

async function run(queue, id, payload, attempt) {
  // ATTEMPT fences every command: if the lease was lost and the job handed
  // to another worker, the server answers LEASELOST instead of acting.
  const fence = ["ATTEMPT", attempt];
  // The timer runs on the event loop, as the handler does: a handler that
  // keeps the CPU busy should run in a worker thread (or use a longer LEASE).
  const touch = setInterval(() => {
    commands.call("QTOUCH", queue, id, "LEASE", LEASE_MS, ...fence).catch((error) => {
      console.error(`job ${id}: lease not renewed: ${error.message}`);
    });
  }, LEASE_MS / 3);
  const work = handle(payload).then(
    () => ({ ok: true }),
    (error) => ({ ok: false, error }),
  );
  const outcome = await Promise.race([work, stopped.then(() => null)]);
  clearInterval(touch);
  try {
    if (outcome === null) {
      // Stopping before the job is done: back to waiting, unattempted.
      await commands.call("QFAIL", queue, id, "SILENT", ...fence);
      console.log(`job ${id} handed back`);
    } else if (outcome.ok) {
      await commands.call("QACK", queue, id, ...fence);
    } else {
      const message = outcome.error.message || String(outcome.error);
      const state = await commands.call("QFAIL", queue, id, "ERROR", message, ...fence);
      console.log(`job ${id} failed (${message}): now ${state}`);
    }
  } catch (error) {
    // LEASELOST or NOJOB: the job is no longer ours to end.
    console.error(`job ${id}: ${error.message}`);
  }
}

async function main() {
  while (!stopping) {
    // BLOCK 1000: wake up every second to notice a stop even when idle.
    const jobs = await puller.call("QPULL", QUEUE, "BLOCK", 1000, "LEASE", LEASE_MS);
    // A job that arrives after a stop is handed straight back by run().
    for (const [queue, id, payload, attempt] of jobs || []) await run(queue, id, payload, attempt);
  }
  await Promise.all([commands.quit(), puller.quit()]);
  console.log("worker stopped");
  process.exit(0); // a handler cut short may still hold a timer
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
