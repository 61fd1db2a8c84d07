// The queues page: one page of queues at a time (a server may have
// thousands), filtered by name, with their jobs by state and the rates of
// their counters between two refreshes.
"use strict";

(() => {
  const { api, el, duration, count, rates, rate, every } = Quern;
  const PAGE = 50;
  const RATES = ["pushed", "acked", "failed"];

  const params = new URLSearchParams(location.search);
  let filter = params.get("filter") || "";
  let offset = Math.max(0, parseInt(params.get("offset") || "0", 10) || 0);
  /// The last reading of each queue shown, by its encoded name: only the
  /// current page's, so memory stays bounded however many queues exist.
  let readings = new Map();

  const input = document.getElementById("filter");
  const body = document.querySelector("#queues tbody");
  const prev = document.getElementById("prev");
  const next = document.getElementById("next");
  input.value = filter;

  function remember() {
    const p = new URLSearchParams();
    if (filter) p.set("filter", filter);
    if (offset) p.set("offset", String(offset));
    const query = p.toString();
    history.replaceState(null, "", query ? `/?${query}` : "/");
  }

  async function refresh() {
    const query = new URLSearchParams({ offset: String(offset), limit: String(PAGE) });
    if (filter) query.set("filter", filter);
    const page = await api(`/api/queues?${query}`);
    if (page.queues.length === 0 && offset > 0 && page.total > 0) {
      // The page emptied (queues deleted): go back to the last one.
      offset = Math.max(0, Math.floor((page.total - 1) / PAGE) * PAGE);
      remember();
      return refresh();
    }
    const seen = new Map();
    const rows = page.queues.map((q) => {
      const reading = { at: page.now_ms, stats: q.stats };
      const r = rates(readings.get(q.encoded), reading, RATES);
      seen.set(q.encoded, reading);
      const s = q.stats;
      return el("tr", { "data-queue": q.encoded },
        el("td", {}, el("a", { href: `/queues/${q.encoded}`, class: q.binary ? "binary" : "" }, q.name)),
        el("td", { class: "num" }, count(s.waiting)),
        el("td", { class: "num" }, count(s.delayed)),
        el("td", { class: "num" }, count(s.active)),
        el("td", { class: `num dead-count${s.dead > 0 ? " some" : ""}` }, count(s.dead)),
        el("td", {}, el("span", { class: `badge ${s.paused ? "paused" : "running"}` }, s.paused ? "paused" : "running")),
        el("td", { class: "num" }, s.waiting > 0 ? duration(s.oldest_waiting_age_ms) : "–"),
        ...RATES.map((f) => el("td", { class: "num" }, rate(r && r[f]))));
    });
    readings = seen;
    body.replaceChildren(...rows);

    const first = page.total === 0 ? 0 : offset + 1;
    const last = offset + page.queues.length;
    document.getElementById("count").textContent =
      page.total === 0 ? "" : `${count(first)}–${count(last)} of ${count(page.total)} queue${page.total === 1 ? "" : "s"}`;
    const empty = document.getElementById("empty");
    empty.hidden = page.total > 0;
    empty.textContent = filter ? "No queue matches the filter." : "No queue yet: a queue appears with its first push.";
    prev.disabled = offset === 0;
    next.disabled = last >= page.total;
  }

  const now = every(refresh);

  let typing = null;
  input.addEventListener("input", () => {
    clearTimeout(typing);
    typing = setTimeout(() => {
      filter = input.value;
      offset = 0;
      readings = new Map();
      remember();
      now();
    }, 250);
  });
  prev.addEventListener("click", () => {
    offset = Math.max(0, offset - PAGE);
    remember();
    now();
  });
  next.addEventListener("click", () => {
    offset += PAGE;
    remember();
    now();
  });
})();
