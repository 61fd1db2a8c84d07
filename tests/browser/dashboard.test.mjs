// The dashboard in a real browser: headless Chromium (Debian's `chromium`)
// driven by playwright-core, against a real quern server on free ports
// with its own data directory. Jobs are made with redis-cli, as an operator
// would; what the pages show is checked against them, and what a click
// does is checked through Redis.
//
// Run by ./run, which passes the binary in QUERN_BIN. Writes the queue
// page's screenshot to docs/dashboard.png.

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import readline from "node:readline";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const TOP = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
const BIN = process.env.QUERN_BIN || path.join(TOP, "target", "debug", "quern");
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const SCREENSHOT = path.join(TOP, "docs", "dashboard.png");
/// How long the server may take to print its addresses.
const START_TIMEOUT_MS = 60_000;
/// How long one thing may take to appear on a page (it refreshes every 2 s).
const APPEAR_TIMEOUT_MS = 15_000;

/// Starts quern on free ports; resolves to { child, resp, http, log }.
function startServer(dir) {
  const child = spawn(BIN, ["--port", "0", "--http", "127.0.0.1:0", "--dir", dir], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  const log = [];
  child.stderr.on("data", (chunk) => log.push(chunk.toString()));
  return new Promise((resolve, reject) => {
    let http = null;
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`quern did not start within ${START_TIMEOUT_MS} ms:\n${log.join("")}`));
    }, START_TIMEOUT_MS);
    child.on("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`quern exited (${code}) before it was ready:\n${log.join("")}`));
    });
    readline.createInterface({ input: child.stdout }).on("line", (line) => {
      const httpAt = line.match(/^HTTP on (\S+)$/);
      if (httpAt) http = httpAt[1];
      const ready = line.match(/^Ready to accept connections tcp on \S+:(\d+)$/);
      if (ready) {
        clearTimeout(timer);
        if (!http) reject(new Error("quern is ready but printed no HTTP address"));
        else resolve({ child, resp: Number(ready[1]), http, log });
      }
    });
  });
}

/// Stops the server by its pid: SIGTERM, then SIGKILL if it lingers.
async function stopServer(child) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once("exit", resolve));
  process.kill(child.pid, "SIGTERM");
  const timer = setTimeout(() => process.kill(child.pid, "SIGKILL"), 30_000);
  await exited;
  clearTimeout(timer);
}

describe("the dashboard in Chromium", () => {
  let dir;
  let server;
  let browser;
  let page;
  const jobs = {};
  /// Errors thrown by the pages' scripts: there must be none.
  const pageErrors = [];

  /// redis-cli against the server; its output, trimmed. An error reply
  /// fails the test.
  function redis(...args) {
    const out = execFileSync("redis-cli", ["-p", String(server.resp), ...args], { encoding: "utf8" }).trim();
    assert.doesNotMatch(out, /^(ERR|WRONGTYPE|NOJOB|LEASELOST)\b/, `redis-cli ${args.join(" ")}`);
    return out;
  }

  /// QGET's fields as an object (redis-cli prints one value a line).
  function qget(queue, id) {
    const lines = redis("QGET", queue, String(id)).split("\n");
    const fields = {};
    for (let i = 0; i + 1 < lines.length; i += 2) fields[lines[i]] = lines[i + 1];
    return fields;
  }

  before(async () => {
    dir = mkdtempSync(path.join(tmpdir(), "quern-browser-"));
    server = await startServer(dir);

    // A job that goes dead at once: no retries, pulled, failed with an error.
    jobs.dead = redis("QPUSH", "emails", '{"to":"nobody@invalid.example"}', "RETRIES", "0");
    assert.equal(redis("QPULL", "emails").split("\n")[1], jobs.dead);
    assert.equal(redis("QFAIL", "emails", jobs.dead, "ERROR", "smtp: 550 mailbox unavailable"), "dead");
    // Waiting jobs, one of them urgent; a job in another queue, leased.
    jobs.ann = redis("QPUSH", "emails", '{"to":"ann@example.com","template":"welcome"}');
    jobs.bob = redis("QPUSH", "emails", '{"to":"bob@example.com","template":"invoice"}', "PRIORITY", "5");
    redis("QPUSH", "thumbnails", "img-1.png");
    redis("QPUSH", "thumbnails", "img-2.png");
    redis("QPULL", "thumbnails");
    redis("QPUSH", "reports", "monthly", "DELAY", "3600000");

    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true });
    page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    page.setDefaultTimeout(APPEAR_TIMEOUT_MS);
    page.on("pageerror", (e) => pageErrors.push(e));
  });

  after(async () => {
    await browser?.close();
    if (server) await stopServer(server.child);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("lists every queue with its jobs by state", async () => {
    await page.goto(`http://${server.http}/`);
    const emails = page.locator('tr[data-queue="emails"] td');
    await emails.first().waitFor();
    // Columns: queue, waiting, delayed, active, dead, state, …
    assert.equal(await emails.nth(0).innerText(), "emails");
    assert.equal(await emails.nth(1).innerText(), "2");
    assert.equal(await emails.nth(4).innerText(), "1");
    assert.equal(await emails.nth(5).innerText(), "running");
    const thumbnails = page.locator('tr[data-queue="thumbnails"] td');
    assert.equal(await thumbnails.nth(1).innerText(), "1");
    assert.equal(await thumbnails.nth(3).innerText(), "1");
    const reports = page.locator('tr[data-queue="reports"] td');
    assert.equal(await reports.nth(2).innerText(), "1");
    assert.match(await page.locator("#count").innerText(), /^1–3 of 3 queues$/);
  });

  it("shows push rates from the counters between two refreshes", async () => {
    for (let i = 0; i < 20; i++) redis("QPUSH", "thumbnails", `img-${i + 3}.png`);
    // Columns: …, pushed/s (the 8th). The rate shows at the first refresh
    // after the pushes, and may fall back to 0 at the next.
    const rate = await page.waitForFunction(
      () => {
        const cell = document.querySelectorAll('tr[data-queue="thumbnails"] td')[7];
        const n = cell ? Number(cell.textContent) : 0;
        return n > 0 ? n : false;
      },
      null,
      { polling: 100 },
    );
    assert.ok((await rate.jsonValue()) > 0);
  });

  it("opens a queue's page with its jobs and their payloads", async () => {
    await page.locator('tr[data-queue="emails"] a').click();
    await page.waitForURL(`http://${server.http}/queues/emails`);
    const ann = page.locator(`#waiting tr[data-job="${jobs.ann}"]`);
    await ann.waitFor();
    assert.match(await ann.innerText(), /\{"to":"ann@example\.com","template":"welcome"\}/);
    // The urgent job first: the order workers get them.
    assert.equal(await page.locator("#waiting tbody tr").first().getAttribute("data-job"), jobs.bob);
    const dead = page.locator(`#dead tr[data-job="${jobs.dead}"]`);
    assert.match(await dead.innerText(), /nobody@invalid\.example/);
    assert.match(await dead.innerText(), /smtp: 550 mailbox unavailable/);
    assert.equal(await page.locator("#name").innerText(), "emails");
    await page.screenshot({ path: SCREENSHOT, fullPage: true });
  });

  it("requeues a dead job, which Redis then sees waiting", async () => {
    assert.equal(qget("emails", jobs.dead).state, "dead");
    await page.locator(`#dead tr[data-job="${jobs.dead}"] button.requeue`).click();
    await page.locator("#message", { hasText: `Requeued job ${jobs.dead}` }).waitFor();
    // The answer came after the commit: Redis sees it at once.
    const job = qget("emails", jobs.dead);
    assert.equal(job.state, "waiting");
    assert.equal(job.attempt, "0");
    assert.equal(redis("QDLQ", "LEN", "emails"), "0");
    // And the page, at its next refresh.
    await page.locator("#dead-empty").waitFor({ state: "visible" });
    await page.locator(`#waiting tr[data-job="${jobs.dead}"]`).waitFor();
    assert.deepEqual(pageErrors, []);
  });
});
