// The conformance scenarios through node-redis, with each version's own API:
// `sendCommand([...])` for raw commands, same-tick auto-pipelining and
// `multi().execAsPipeline()` for batches, `ErrorReply`, the `password`
// option and the socket's reconnect strategy. The contract is in
// conformance/README.md; run.sh installs both versions locally and runs
// every variant:
//
//   node suite.js 4          node-redis v4 (RESP2 only; HELLO is never sent)
//   node suite.js latest     the latest node-redis with its defaults (RESP3:
//                            it opens with HELLO 3)
//   node suite.js latest 2   the latest node-redis with `RESP: 2`

"use strict";

const { exec } = require("node:child_process");
const { promisify } = require("node:util");

const [which = "latest", resp] = process.argv.slice(2);
const PACKAGE = which === "4" ? "redis4" : "redis";
const { createClient, ErrorReply } = require(PACKAGE);
const VERSION = require(`${PACKAGE}/package.json`).version;
const V4 = VERSION.startsWith("4.");

const PORT = Number(process.env.QUERN_PORT);
const AUTH_PORT = Number(process.env.QUERN_AUTH_PORT);
const PASSWORD = process.env.QUERN_PASSWORD;
const RESTART = process.env.QUERN_RESTART;
const HOST = "127.0.0.1";
// Queue names of this run's own, so that a rerun against the same server
// starts from empty queues too.
const q = `node-redis:${Date.now().toString(36)}:${V4 ? "v4" : "latest"}:${resp || "default"}`;

// Only the port, the host, and in the RESP2 variant `RESP: 2`: everything
// else, the handshake and the reconnect strategy included, is node-redis's
// default.
function make({ port = PORT, ...options } = {}) {
  const client = createClient({ socket: { port, host: HOST }, ...(resp ? { RESP: Number(resp) } : {}), ...options });
  client.on("error", () => {}); // reported by the commands that fail
  return client;
}

// Closes a client at once: `disconnect()` in v4, `destroy()` from v5 on
// (where `disconnect()` is deprecated).
function shut(client) {
  if (!client.isOpen) return;
  if (V4) return client.disconnect().catch(() => {});
  client.destroy();
}

// node-redis takes the arguments of sendCommand as strings (or Buffers).
const send = (client, ...args) => client.sendCommand(args.map(String));

function check(condition, what) {
  if (!condition) throw new Error(what);
}

const show = (value) =>
  JSON.stringify(value, (_, v) => (v instanceof Map ? Object.fromEntries(v) : Buffer.isBuffer(v) ? v.toString() : v));

// A map reply as an object: a flat [field, value, ...] array in RESP2, a
// plain object (or a Map, with that type mapping) in RESP3.
function fields(reply) {
  if (reply instanceof Map) return Object.fromEntries(reply);
  if (!Array.isArray(reply)) return reply;
  const out = {};
  for (let i = 0; i < reply.length; i += 2) out[String(reply[i])] = reply[i + 1];
  return out;
}

async function blockedClients(client) {
  const info = String(await send(client, "INFO", "clients"));
  const m = /^blocked_clients:(\d+)/m.exec(info);
  check(m, `no blocked_clients in INFO: ${info}`);
  return Number(m[1]);
}

const sleep = (ms) => new Promise((done) => setTimeout(done, ms));

function withTimeout(promise, ms, what) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, fail) => {
      timer = setTimeout(() => fail(new Error(`${what}: no answer within ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

async function main() {
  const label = V4 ? `node-redis@${VERSION}` : `node-redis@${VERSION} (${resp === "2" ? "RESP2" : "RESP3, default"})`;
  console.log(`SUITE ${label}`);
  const expectedResp = V4 || resp === "2" ? 2 : 3;
  const r = make();
  let reconnects = 0;
  r.on("reconnecting", () => reconnects++);

  const steps = {
    async connect() {
      await r.connect();
      check((await send(r, "PING")) === "PONG", "PING did not answer PONG");
      // The handshake took: the protocol it asked for, and CLIENT SETINFO.
      const me = String(await send(r, "CLIENT", "INFO"));
      check(me.includes(` resp=${expectedResp} `) && me.includes(" lib-name=node-redis "), `CLIENT INFO: ${me.trim()}`);
    },

    async push_options() {
      const id = await send(r, "QPUSH", `${q}:opt`, "payload", "PRIORITY", 5, "RETRIES", 2, "BACKOFF", 100, "LEASE", 5000);
      check(Number.isInteger(id) && id > 0, `QPUSH replied ${show(id)}`);
      const job = fields(await send(r, "QGET", `${q}:opt`, id));
      check(job.priority === 5 && job.retries === 2 && job.id === id, `QGET replied ${show(job)}`);
    },

    async mpush() {
      const ids = await send(r, "QMPUSH", `${q}:m`, 3, "a", "b", "c");
      check(ids.length === 3 && ids[1] === ids[0] + 1 && ids[2] === ids[0] + 2, `QMPUSH replied ${show(ids)}`);
    },

    async blocking_pull() {
      // A blocking call holds up every command behind it on its connection,
      // so the pull runs on a connection of its own: v4's isolation pool,
      // or (v5 and later, which dropped it) a duplicate of the client.
      let pull, worker;
      const args = ["QPULL", `${q}:b`, "BLOCK", "5000"];
      if (V4) {
        pull = r.executeIsolated((isolated) => isolated.sendCommand(args));
      } else {
        worker = r.duplicate();
        await worker.connect();
        pull = worker.sendCommand(args);
      }
      pull.catch(() => {});
      try {
        const deadline = Date.now() + 5000;
        while ((await blockedClients(r)) < 1) {
          check(Date.now() < deadline, "the pull never blocked");
          await sleep(10);
        }
        const id = await send(r, "QPUSH", `${q}:b`, "wake");
        const jobs = await pull;
        check(jobs && jobs.length === 1, `QPULL replied ${show(jobs)}`);
        const [queue, jobId, payload, attempt] = jobs[0];
        check(queue === `${q}:b` && jobId === id && payload === "wake" && attempt === 1, `QPULL replied ${show(jobs)}`);
      } finally {
        if (worker) await shut(worker);
      }
    },

    async ack() {
      await send(r, "QPUSH", `${q}:a`, "x");
      const [[, id]] = await send(r, "QPULL", `${q}:a`);
      check((await send(r, "QACK", `${q}:a`, id)) === 1, "first QACK did not count 1");
      check((await send(r, "QACK", `${q}:a`, id)) === 0, "second QACK did not count 0");
    },

    async fail_dead_requeue() {
      const id = await send(r, "QPUSH", `${q}:d`, "x", "RETRIES", 0);
      await send(r, "QPULL", `${q}:d`);
      const state = await send(r, "QFAIL", `${q}:d`, id, "ERROR", "boom");
      check(state === "dead", `QFAIL replied ${show(state)}`);
      const listed = await send(r, "QDLQ", "LIST", `${q}:d`);
      check(listed.length === 1 && listed[0][1] === id && listed[0][4] === "boom", `QDLQ LIST replied ${show(listed)}`);
      check((await send(r, "QDLQ", "REQUEUE", `${q}:d`, "ALL")) === 1, "QDLQ REQUEUE ALL did not count 1");
    },

    async stats() {
      await send(r, "QPUSH", `${q}:s`, "x");
      const reply = await send(r, "QSTATS", `${q}:s`);
      // RESP3 hands the map over as a map, RESP2 as a flat list.
      check(expectedResp === 3 ? !Array.isArray(reply) : Array.isArray(reply), `QSTATS replied ${show(reply)}`);
      const s = fields(reply);
      check(s.waiting === 1 && s.pushed === 1 && s.active === 0 && s.dead === 0, `QSTATS replied ${show(s)}`);
    },

    async pipeline() {
      // Commands issued in the same tick go out together: node-redis's
      // automatic pipelining.
      const ids = await Promise.all(Array.from({ length: 1000 }, (_, i) => send(r, "QPUSH", `${q}:p`, `job-${i}`)));
      check(ids.length === 1000, `${ids.length} replies`);
      check(ids.every((id, i) => Number.isInteger(id) && (i === 0 || id > ids[i - 1])), `ids not increasing: ${show(ids.slice(0, 5))}…`);
      // And its explicit batch without MULTI/EXEC.
      const batch = r.multi();
      for (let i = 0; i < 1000; i++) batch.addCommand(["QPUSH", `${q}:p`, `batch-${i}`]);
      const more = await batch.execAsPipeline();
      check(more.length === 1000 && more.every((id, i) => id === more[0] + i) && more[0] > ids[999], `execAsPipeline replied ${show(more.slice(0, 5))}…`);
      check((await send(r, "QLEN", `${q}:p`)) === 2000, "QLEN is not 2000");
    },

    async error_type() {
      let error;
      try {
        await send(r, "QPUSH", q, "x", "PRIORITY", "high");
      } catch (e) {
        error = e;
      }
      check(error, "QPUSH with PRIORITY high succeeded");
      check(error instanceof ErrorReply, `raised ${error.constructor.name}, not ErrorReply: ${error.message}`);
      check(error.message === "ERR value is not an integer or out of range", `message: ${error.message}`);
    },

    async auth() {
      // Without the password: in RESP2 the connection opens and the command
      // gets NOAUTH; in RESP3 node-redis's HELLO 3 gets NOAUTH already, so
      // connect() fails with it (as against Redis).
      // (No reconnect strategy here: a failed handshake would otherwise be
      // retried, as it would against Redis.)
      const anonymous = make({ socket: { port: AUTH_PORT, host: HOST, reconnectStrategy: false } });
      let error;
      try {
        await anonymous.connect();
        await send(anonymous, "QLEN", q);
      } catch (e) {
        error = e;
      }
      await shut(anonymous);
      check(error, "a command without the password succeeded");
      check(error instanceof ErrorReply && error.message.startsWith("NOAUTH"), `without the password: ${error.constructor.name}: ${error.message}`);

      const authed = make({ port: AUTH_PORT, password: PASSWORD });
      try {
        await authed.connect();
        check((await send(authed, "PING")) === "PONG", "PING with the password did not answer PONG");
      } finally {
        await shut(authed);
      }
    },

    async reconnect() {
      await send(r, "QMPUSH", `${q}:r`, 2, "a", "b");
      const before = reconnects;
      await promisify(exec)(RESTART);
      // The same client object: its socket's reconnect strategy (the
      // default one) opens a new connection, with the handshake again, and
      // the command waits in the offline queue until it is ready.
      check((await send(r, "QLEN", `${q}:r`)) === 2, "QLEN after the restart is not 2");
      check(reconnects > before, "node-redis did not reconnect");
    },
  };

  let failed = 0;
  for (const [name, step] of Object.entries(steps)) {
    try {
      await withTimeout(step(), 20000, name);
      console.log(`PASS ${name}`);
    } catch (e) {
      failed++;
      console.log(`FAIL ${name} ${e.constructor.name}: ${e.message}`.replace(/\s*\n\s*/g, " "));
    }
  }
  await shut(r);
  process.exit(failed ? 1 : 0);
}

main().catch((e) => {
  console.log(`FAIL connect ${e.stack}`.replace(/\s*\n\s*/g, " "));
  process.exit(1);
});
