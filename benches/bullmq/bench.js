// BullMQ on Redis, measured end to end: the job-queue library Quern is put
// beside by benches/compare. Needs a Redis on 127.0.0.1:PORT that it may
// FLUSHALL (benches/compare starts one without persistence for it).
//
//   PORT=7200 N=100000 node bench.js
//
// Prints one JSON object per phase:
//
// - `bullmq-drain`: addBulk N jobs (batches of BATCH), then a Worker with
//   CONCURRENCY (default 50) and removeOnComplete drains them with a no-op
//   processor. `ops_per_s` is end to end, N / (add time + drain time); the
//   object also gives each half's own rate.
// - `bullmq-concurrent`: the shape of quern-bench's cycle workload. The
//   Worker runs while PRODUCERS (default 10) loops each add one job at a
//   time (`await queue.add`) until N are added. `ops_per_s` is N / (first
//   add → last completion); `p50_ms`/`p99_ms`/`max_ms` are each job's
//   added → completed time in milliseconds (BullMQ's own millisecond
//   timestamps), which include the backlog whenever adding outpaces the
//   worker.
//
// SERVER_PID (and CLK_TCK, default 100) adds the Redis process's CPU
// seconds for each phase. Every phase is bounded by PHASE_TIMEOUT_S.

"use strict";

const fs = require("fs");
const { Queue, Worker } = require("bullmq");
const Redis = require("ioredis");

const PORT = Number(process.env.PORT || 7200);
const N = Number(process.env.N || 100000);
const BATCH = Number(process.env.BATCH || 1000);
const CONCURRENCY = Number(process.env.CONCURRENCY || 50);
const PRODUCERS = Number(process.env.PRODUCERS || 10);
const PAYLOAD = Number(process.env.PAYLOAD || 100);
const PHASE_TIMEOUT_S = Number(process.env.PHASE_TIMEOUT_S || 300);
const SERVER_PID = process.env.SERVER_PID || "";
const CLK_TCK = Number(process.env.CLK_TCK || 100);
const QUEUE = "bench";

const connection = { host: "127.0.0.1", port: PORT, maxRetriesPerRequest: null };

// A JSON job of about PAYLOAD bytes once serialised, like the load client's
// 100-byte payloads.
function job(i) {
  const data = { id: i, type: "email.send", to: `user${i}@example.com`, pad: "" };
  data.pad = "x".repeat(Math.max(0, PAYLOAD - JSON.stringify(data).length));
  return { name: "email.send", data };
}

const seconds = () => Number(process.hrtime.bigint()) / 1e9;

// CPU seconds the server has used so far, or null without SERVER_PID.
function serverCpu() {
  if (!SERVER_PID) return null;
  const stat = fs.readFileSync(`/proc/${SERVER_PID}/stat`, "utf8");
  // Fields after the parenthesised command name; utime and stime are the
  // 14th and 15th fields of the whole line.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
}

function benchCpu(start) {
  const used = process.cpuUsage(start);
  return (used.user + used.system) / 1e6;
}

function bounded(promise, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} took over ${PHASE_TIMEOUT_S} s`)), PHASE_TIMEOUT_S * 1000);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

async function addAll(queue) {
  for (let first = 0; first < N; first += BATCH) {
    const jobs = [];
    for (let i = first; i < Math.min(N, first + BATCH); i++) jobs.push(job(i));
    await queue.addBulk(jobs);
  }
}

// PRODUCERS loops adding one job at a time, N in all.
async function addOneByOne(queue) {
  let next = 0;
  const producer = async () => {
    while (next < N) {
      const { name, data } = job(next++);
      await queue.add(name, data);
    }
  };
  await Promise.all(Array.from({ length: PRODUCERS }, producer));
}

// Starts a Worker and resolves once N jobs have completed or failed; calls
// `onCompleted(job)` for each completion.
function drain(onCompleted) {
  const worker = new Worker(QUEUE, async () => {}, {
    connection,
    concurrency: CONCURRENCY,
    removeOnComplete: { count: 0 },
  });
  const counts = { completed: 0, failed: 0 };
  const done = new Promise((resolve) => {
    const check = () => {
      if (counts.completed + counts.failed >= N) resolve();
    };
    worker.on("completed", (j) => {
      counts.completed++;
      onCompleted(j);
      check();
    });
    worker.on("failed", () => {
      counts.failed++;
      check();
    });
  });
  return { worker, counts, done };
}

function quantile(sorted, q) {
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * q))] : null;
}

async function fresh(redis) {
  await redis.flushall();
  const queue = new Queue(QUEUE, { connection });
  await queue.waitUntilReady();
  return queue;
}

async function drainPhase(redis) {
  const queue = await fresh(redis);
  const cpu0 = serverCpu();
  const bench0 = process.cpuUsage();
  const t0 = seconds();
  await bounded(addAll(queue), "addBulk");
  const t1 = seconds();
  const { worker, counts, done } = drain(() => {});
  await bounded(done, "drain");
  const t2 = seconds();
  const cpu1 = serverCpu();
  await worker.close();
  await queue.close();
  const [add, drained] = [t1 - t0, t2 - t1];
  return {
    workload: "bullmq-drain",
    n: N,
    batch: BATCH,
    concurrency: CONCURRENCY,
    payload: PAYLOAD,
    duration_s: add + drained,
    add_s: add,
    drain_s: drained,
    add_jobs_per_s: N / add,
    drain_jobs_per_s: N / drained,
    ops_per_s: N / (add + drained),
    completed: counts.completed,
    failed: counts.failed,
    server_cpu_s: cpu0 === null ? null : cpu1 - cpu0,
    bench_cpu_s: benchCpu(bench0),
    keys_after: await redis.dbsize(),
  };
}

async function concurrentPhase(redis) {
  const queue = await fresh(redis);
  const latencies = [];
  const { worker, counts, done } = drain((j) => latencies.push(Date.now() - j.timestamp));
  await worker.waitUntilReady();
  const cpu0 = serverCpu();
  const bench0 = process.cpuUsage();
  const t0 = seconds();
  await bounded(Promise.all([addOneByOne(queue), done]), "add while draining");
  const elapsed = seconds() - t0;
  const cpu1 = serverCpu();
  await worker.close();
  await queue.close();
  latencies.sort((a, b) => a - b);
  return {
    workload: "bullmq-concurrent",
    n: N,
    producers: PRODUCERS,
    concurrency: CONCURRENCY,
    payload: PAYLOAD,
    duration_s: elapsed,
    ops_per_s: N / elapsed,
    p50_ms: quantile(latencies, 0.5),
    p99_ms: quantile(latencies, 0.99),
    max_ms: latencies.length ? latencies[latencies.length - 1] : null,
    completed: counts.completed,
    failed: counts.failed,
    server_cpu_s: cpu0 === null ? null : cpu1 - cpu0,
    bench_cpu_s: benchCpu(bench0),
    keys_after: await redis.dbsize(),
  };
}

async function main() {
  const redis = new Redis(connection);
  const info = await redis.info("server");
  const version = (info.match(/^redis_version:(\S+)/m) || [])[1];
  const library = require("bullmq/package.json").version;
  for (const phase of [drainPhase, concurrentPhase]) {
    const report = await phase(redis);
    console.log(JSON.stringify({ ...report, redis_version: version, bullmq_version: library }));
  }
  await redis.flushall();
  await redis.quit();
}

main().then(
  () => process.exit(0),
  (error) => {
    console.error(`bullmq bench: ${error.message}`);
    process.exit(1);
  },
);
