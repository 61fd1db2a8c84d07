// A queue's page: its counters, its next waiting jobs, its dead jobs with
// their last errors, and the actions: requeue or purge dead jobs, pause or
// resume the queue. An action's answer comes once the change is durable.
"use strict";

(() => {
  const { api, el, preview, duration, count, rates, rate, every } = Quern;
  const RATES = ["pushed", "acked", "failed"];

  // The name as it is in this page's URL: percent-encoded bytes, used as
  // they are in the API's URLs (a name need not be UTF-8).
  const encoded = location.pathname.slice("/queues/".length);
  const base = `/api/queues/${encoded}`;
  let previous = null;
  /// What the dead-jobs table shows, so it is redrawn only when that
  /// changes: a button is not replaced under the pointer every refresh.
  let deadShown = "";

  const $ = (id) => document.getElementById(id);

  function counter(label, value, alert = false) {
    return el("div", { class: `counter${alert ? " alert" : ""}` },
      el("div", { class: "label" }, label),
      el("div", { class: "value" }, value));
  }

  function say(text, isError = false) {
    const node = $("message");
    node.textContent = text;
    node.classList.toggle("error", isError);
    node.hidden = false;
  }

  /// Runs an action; says what it did, or why it failed; refreshes.
  async function act(path, body, done) {
    try {
      const answer = await api(`${base}${path}`, { method: "POST", body });
      say(done(answer));
    } catch (e) {
      say(`Failed: ${e.message}`, true);
    }
    now();
  }

  function plural(n, word) {
    return `${count(n)} ${word}${n === 1 ? "" : "s"}`;
  }

  async function showJob(id) {
    try {
      const job = await api(`${base}/jobs/${id}`);
      const when = (ms) => (ms === null ? "—" : new Date(ms).toISOString());
      const fields = [
        ["state", job.state], ["priority", job.priority], ["attempt", job.attempt],
        ["retries", job.retries], ["backoff", `${job.backoff} ms`], ["lease", `${job.lease} ms`],
        ["created", when(job.created_at)], ["ready at", when(job.ready_at)],
        ["lease until", when(job.lease_until)],
        ["last error", job.last_error ? job.last_error.text : "—"],
        ["payload", Quern.formatBytes(job.payload.bytes) + (job.payload.binary ? ", binary (escaped)" : "")],
      ];
      $("job-id").textContent = String(job.id);
      $("job-fields").replaceChildren(...fields.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, String(v))]));
      $("job-payload").textContent = job.payload.text + (job.payload.truncated ? "\n…" : "");
      $("job").hidden = false;
      $("job").scrollIntoView({ behavior: "smooth", block: "nearest" });
    } catch (e) {
      say(`Job ${id}: ${e.message}`, true);
    }
  }

  function jobLink(id) {
    return el("button", { type: "button", class: "link", title: "Show this job", onclick: () => showJob(id) }, String(id));
  }

  async function refresh() {
    let q;
    try {
      q = await api(base);
    } catch (e) {
      if (e.status === 404 || e.status === 400) {
        $("name").textContent = decodeURIComponentSafe(encoded);
        say(e.message, true);
      }
      throw e;
    }
    const s = q.stats;
    document.title = `${q.name} · Quern`;
    $("name").textContent = q.name;
    $("name").classList.toggle("binary", q.binary);
    $("crumb-name").textContent = q.name;
    const state = $("state");
    state.textContent = s.paused ? "paused" : "running";
    state.className = `badge ${s.paused ? "paused" : "running"}`;
    $("pause").hidden = s.paused;
    $("resume").hidden = !s.paused;

    const reading = { at: q.now_ms, stats: s };
    const r = rates(previous, reading, RATES);
    previous = reading;
    $("counters").replaceChildren(
      counter("waiting", count(s.waiting)),
      counter("delayed", count(s.delayed)),
      counter("active", count(s.active)),
      counter("dead", count(s.dead), s.dead > 0),
      counter("oldest waiting", s.waiting > 0 ? duration(s.oldest_waiting_age_ms) : "–"),
      counter("pushed/s", rate(r && r.pushed)),
      counter("acked/s", rate(r && r.acked)),
      counter("failed/s", rate(r && r.failed)),
      counter("pushed, ever", count(s.pushed)),
      counter("acked, ever", count(s.acked)),
      counter("failed, ever", count(s.failed)),
      counter("retried, ever", count(s.retried)),
      counter("dead, ever", count(s.dead_total)),
      counter("expired leases", count(s.expired_leases)),
    );

    $("waiting").querySelector("tbody").replaceChildren(...q.waiting_jobs.map((j) =>
      el("tr", { "data-job": j.id },
        el("td", { class: "num" }, jobLink(j.id)),
        el("td", { class: "num" }, String(j.priority)),
        el("td", { class: "num" }, String(j.attempt)),
        el("td", { class: "num" }, duration(j.age_ms)),
        el("td", {}, preview(j.payload)))));
    $("waiting-empty").hidden = q.waiting_jobs.length > 0;
    $("waiting").hidden = q.waiting_jobs.length === 0;
    $("waiting-note").textContent = s.waiting > q.waiting_jobs.length
      ? `the next ${count(q.waiting_jobs.length)} of ${count(s.waiting)}, in the order workers get them`
      : "in the order workers get them";

    const dead = JSON.stringify(q.dead_jobs);
    if (dead !== deadShown) {
      deadShown = dead;
      $("dead").querySelector("tbody").replaceChildren(...q.dead_jobs.map((j) =>
        el("tr", { "data-job": j.id },
          el("td", { class: "num" }, jobLink(j.id)),
          el("td", { class: "num" }, String(j.attempt)),
          el("td", {}, preview(j.payload)),
          el("td", {}, preview(j.last_error, "error-text")),
          el("td", { class: "buttons" },
            el("button", {
              type: "button", class: "small requeue",
              onclick: () => act("/dead/requeue", { ids: [j.id] },
                (a) => (a.requeued ? `Requeued job ${j.id}: it is waiting again.` : `Job ${j.id} was no longer dead.`)),
            }, "Requeue"),
            " ",
            el("button", {
              type: "button", class: "small danger purge",
              onclick: () => {
                if (!confirm(`Delete dead job ${j.id} for good?`)) return;
                act("/dead/purge", { ids: [j.id] },
                  (a) => (a.purged ? `Deleted job ${j.id}.` : `Job ${j.id} was no longer dead.`));
              },
            }, "Purge")))));
    }
    $("dead-empty").hidden = q.dead_jobs.length > 0;
    $("dead").hidden = q.dead_jobs.length === 0;
    $("dead-note").textContent = s.dead > q.dead_jobs.length
      ? `the first ${count(q.dead_jobs.length)} of ${count(s.dead)}`
      : "";
    $("requeue-all").disabled = s.dead === 0;
    $("purge-all").disabled = s.dead === 0;
  }

  function decodeURIComponentSafe(text) {
    try {
      return decodeURIComponent(text);
    } catch (_) {
      return text;
    }
  }

  const now = every(refresh);

  $("pause").addEventListener("click", () => act("/pause", undefined, () => "Paused: workers get no job from this queue until it is resumed."));
  $("resume").addEventListener("click", () => act("/resume", undefined, () => "Resumed."));
  $("requeue-all").addEventListener("click", () => {
    if (!confirm("Requeue every dead job of this queue?")) return;
    act("/dead/requeue", { all: true }, (a) => `Requeued ${plural(a.requeued, "job")}.`);
  });
  $("purge-all").addEventListener("click", () => {
    if (!confirm("Delete every dead job of this queue for good?")) return;
    act("/dead/purge", { all: true }, (a) => `Deleted ${plural(a.purged, "dead job")}.`);
  });
  $("job-close").addEventListener("click", () => {
    $("job").hidden = true;
  });
})();
