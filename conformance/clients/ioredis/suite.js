// The conformance scenarios through ioredis, with its own API: `call` for
// raw commands, `pipeline()`, `ReplyError`, its `password` option and its
// automatic reconnection. The contract is in conformance/README.md; run.sh
// installs ioredis locally and runs this.
//
// Three variants, each printed as its own suite:
//   - ioredis's defaults: it opens with HELLO 3 (ioredis 6 speaks RESP3 by
//     default), CLIENT SETINFO, then INFO as its ready check; maps come back
//     as flat arrays ("legacy" reply mapping);
//   - `protocol: 2`: no HELLO, RESP2 replies;
//   - `replyMapping: "resp3"`: RESP3 maps come back as objects.

"use strict";

const { exec } = require("node:child_process");
const { promisify } = require("node:util");
const Redis = require("ioredis");
const { ReplyError } = require("ioredis");
const VERSION = require("ioredis/package.json").version;

const PORT = Number(process.env.QUERN_PORT);
const AUTH_PORT = Number(process.env.QUERN_AUTH_PORT);
const PASSWORD = process.env.QUERN_PASSWORD;
const RESTART = process.env.QUERN_RESTART;
const HOST = "127.0.0.1";
// Queue names of this run's own, so that a rerun against the same server
// starts from empty queues too.
const RUN = Date.now().toString(36);

function check(condition, what) {
  if (!condition) throw new Error(what);
}

const show = (value) => JSON.stringify(value, (_, v) => (Buffer.isBuffer(v) ? v.toString() : v));

// A map reply as an object: a flat [field, value, ...] array in RESP2 (and
// in RESP3 with ioredis's "legacy" mapping), an object with "resp3" mapping.
function fields(reply) {
  if (!Array.isArray(reply)) return reply;
  const out = {};
  for (let i = 0; i < reply.length; i += 2) out[String(reply[i])] = reply[i + 1];
  return out;
}

// INFO's blocked_clients, as ioredis hands INFO back (a string, or a
// verbatim string in RESP3).
async function blockedClients(r) {
  const info = String(await r.info("clients"));
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

async function scenarios(label, options, tag) {
  console.log(`SUITE ${label}`);
  const q = `ioredis:${RUN}:${tag}`;
  // Only the port, the host and the variant's option: every other option,
  // the ready check (INFO) and the reconnect strategy included, is ioredis's
  // default.
  const make = (extra = {}) => new Redis({ port: PORT, host: HOST, ...options, ...extra });
  const r = make();
  r.on("error", () => {}); // reported by the commands that fail
  let readies = 0;
  r.on("ready", () => readies++);

  const steps = {
    async connect() {
      check((await r.ping()) === "PONG", "PING did not answer PONG");
      check(r.status === "ready", `status ${r.status}`);
      // The handshake took: the protocol it asked for, and CLIENT SETINFO.
      const me = String(await r.call("CLIENT", "INFO"));
      check(me.includes(` resp=${options.protocol || 3} `) && me.includes(" lib-name=ioredis "), `CLIENT INFO: ${me.trim()}`);
    },

    async push_options() {
      const id = await r.call("QPUSH", `${q}:opt`, "payload", "PRIORITY", 5, "RETRIES", 2, "BACKOFF", 100, "LEASE", 5000);
      check(Number.isInteger(id) && id > 0, `QPUSH replied ${show(id)}`);
      const job = fields(await r.call("QGET", `${q}:opt`, id));
      check(job.priority === 5 && job.retries === 2 && job.id === id, `QGET replied ${show(job)}`);
    },

    async mpush() {
      const ids = await r.call("QMPUSH", `${q}:m`, 3, "a", "b", "c");
      check(ids.length === 3 && ids[1] === ids[0] + 1 && ids[2] === ids[0] + 2, `QMPUSH replied ${show(ids)}`);
    },

    async blocking_pull() {
      // A blocking call holds up every command behind it on its connection,
      // so the pull gets a connection of its own.
      const worker = r.duplicate();
      worker.on("error", () => {});
      try {
        const pull = worker.call("QPULL", `${q}:b`, "BLOCK", 5000);
        pull.catch(() => {});
        const deadline = Date.now() + 5000;
        while ((await blockedClients(r)) < 1) {
          check(Date.now() < deadline, "the pull never blocked");
          await sleep(10);
        }
        const id = await r.call("QPUSH", `${q}:b`, "wake");
        const jobs = await pull;
        check(jobs && jobs.length === 1, `QPULL replied ${show(jobs)}`);
        const [queue, jobId, payload, attempt] = jobs[0];
        check(queue === `${q}:b` && jobId === id && payload === "wake" && attempt === 1, `QPULL replied ${show(jobs)}`);
      } finally {
        worker.disconnect();
      }
    },

    async ack() {
      await r.call("QPUSH", `${q}:a`, "x");
      const [[, id]] = await r.call("QPULL", `${q}:a`);
      check((await r.call("QACK", `${q}:a`, id)) === 1, "first QACK did not count 1");
      check((await r.call("QACK", `${q}:a`, id)) === 0, "second QACK did not count 0");
    },

    async fail_dead_requeue() {
      const id = await r.call("QPUSH", `${q}:d`, "x", "RETRIES", 0);
      await r.call("QPULL", `${q}:d`);
      const state = await r.call("QFAIL", `${q}:d`, id, "ERROR", "boom");
      check(state === "dead", `QFAIL replied ${show(state)}`);
      const listed = await r.call("QDLQ", "LIST", `${q}:d`);
      check(listed.length === 1 && listed[0][1] === id && listed[0][4] === "boom", `QDLQ LIST replied ${show(listed)}`);
      check((await r.call("QDLQ", "REQUEUE", `${q}:d`, "ALL")) === 1, "QDLQ REQUEUE ALL did not count 1");
    },

    async stats() {
      await r.call("QPUSH", `${q}:s`, "x");
      const s = fields(await r.call("QSTATS", `${q}:s`));
      check(s.waiting === 1 && s.pushed === 1 && s.active === 0 && s.dead === 0, `QSTATS replied ${show(s)}`);
    },

    async pipeline() {
      const pipe = r.pipeline();
      for (let i = 0; i < 1000; i++) pipe.call("QPUSH", `${q}:p`, `job-${i}`);
      const results = await pipe.exec();
      check(results.length === 1000, `${results.length} results`);
      const failed = results.find(([err]) => err);
      check(!failed, `a QPUSH failed: ${failed && failed[0]}`);
      const ids = results.map(([, id]) => id);
      check(ids.every((id, i) => Number.isInteger(id) && (i === 0 || id > ids[i - 1])), `ids not increasing: ${show(ids.slice(0, 5))}…`);
      check((await r.call("QLEN", `${q}:p`)) === 1000, "QLEN is not 1000");
    },

    async error_type() {
      let error;
      try {
        await r.call("QPUSH", q, "x", "PRIORITY", "high");
      } catch (e) {
        error = e;
      }
      check(error, "QPUSH with PRIORITY high succeeded");
      check(error instanceof ReplyError, `raised ${error.constructor.name}, not ReplyError: ${error.message}`);
      check(error.message === "ERR value is not an integer or out of range", `message: ${error.message}`);
    },

    async auth() {
      const anonymous = make({ port: AUTH_PORT });
      anonymous.on("error", () => {});
      try {
        await anonymous.call("QLEN", q);
        throw new Error("a command without the password succeeded");
      } catch (e) {
        check(e instanceof ReplyError && e.message.startsWith("NOAUTH"), `without the password: ${e.message}`);
      } finally {
        anonymous.disconnect();
      }
      const authed = make({ port: AUTH_PORT, password: PASSWORD });
      try {
        check((await authed.ping()) === "PONG", "PING with the password did not answer PONG");
      } finally {
        authed.disconnect();
      }
    },

    async reconnect() {
      await r.call("QMPUSH", `${q}:r`, 2, "a", "b");
      const before = readies;
      await promisify(exec)(RESTART);
      // The same client object: ioredis notices the closed connection,
      // reconnects by itself (handshake and ready check again) and sends
      // the command there.
      check((await r.call("QLEN", `${q}:r`)) === 2, "QLEN after the restart is not 2");
      check(readies > before, "ioredis did not reconnect");
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
  r.disconnect();
  return failed;
}

async function main() {
  const variants = [
    [`ioredis@${VERSION}`, {}, "default"],
    [`ioredis@${VERSION} (protocol 2)`, { protocol: 2 }, "resp2"],
    [`ioredis@${VERSION} (replyMapping resp3)`, { protocol: 3, replyMapping: "resp3" }, "resp3"],
  ];
  let failed = 0;
  for (const [label, options, tag] of variants) failed += await scenarios(label, options, tag);
  process.exit(failed ? 1 : 0);
}

main().catch((e) => {
  console.log(`FAIL connect ${e.stack}`.replace(/\s*\n\s*/g, " "));
  process.exit(1);
});
