// What both pages share: calling the API, building elements, formatting.
//
// Everything the server sends (queue names, payloads, errors) is put into
// the page with textContent, never as HTML, so no payload can run script.
"use strict";

const Quern = (() => {
  /// How often the pages refresh, in ms.
  const REFRESH_MS = 2000;

  /// Calls the API. A POST carries the header the server requires of every
  /// action (a cross-site form cannot send it). Throws an Error with the
  /// server's message when the answer is not 2xx.
  async function api(path, { method = "GET", body } = {}) {
    const headers = { Accept: "application/json" };
    if (method !== "GET") {
      headers["X-Quern-Action"] = "1";
      headers["Content-Type"] = "application/json";
    }
    const response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "same-origin",
      cache: "no-store",
    });
    let data = null;
    try {
      data = await response.json();
    } catch (_) {
      // Not JSON: the status alone says what happened.
    }
    if (!response.ok) {
      const why = data && data.error ? data.error : `HTTP ${response.status}`;
      const error = new Error(why);
      error.status = response.status;
      throw error;
    }
    return data;
  }

  /// An element with attributes (`class`, `href`, `title`, `data-*`, event
  /// handlers as `onclick`) and children (strings become text nodes).
  function el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs)) {
      if (value === undefined || value === null || value === false) continue;
      if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else if (key === "class") node.className = value;
      else node.setAttribute(key, value === true ? "" : String(value));
    }
    for (const child of children.flat()) {
      if (child === undefined || child === null) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  /// A payload or error preview from the API: its text, marked when it
  /// is binary (escaped) or cut short.
  function preview(p, extraClass) {
    if (!p) return el("span", { class: "muted" }, "—");
    const classes = ["payload", extraClass, p.binary ? "binary" : ""].filter(Boolean).join(" ");
    const span = el("span", { class: classes, title: `${p.bytes} bytes` }, p.text);
    if (p.truncated) {
      return el("span", {}, span, el("span", { class: "cut" }, `… ${formatBytes(p.bytes)}`));
    }
    return span;
  }

  function formatBytes(n) {
    if (n < 1024) return `${n} B`;
    if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
    return `${(n / 1024 / 1024).toFixed(1)} MiB`;
  }

  /// A duration in ms as a person reads it: "850 ms", "12.5 s", "4 min 2 s".
  function duration(ms) {
    if (ms < 1000) return `${ms} ms`;
    const s = ms / 1000;
    if (s < 60) return `${s.toFixed(1)} s`;
    const m = Math.floor(s / 60);
    if (m < 60) return `${m} min ${Math.floor(s % 60)} s`;
    const h = Math.floor(m / 60);
    if (h < 48) return `${h} h ${m % 60} min`;
    return `${Math.floor(h / 24)} d ${h % 24} h`;
  }

  function count(n) {
    return Number(n).toLocaleString("en-US");
  }

  /// Rates per second of `fields` between two readings of a queue's
  /// counters, each `{ at: server ms, stats }`; null before two readings.
  function rates(previous, current, fields) {
    if (!previous || current.at <= previous.at) return null;
    const seconds = (current.at - previous.at) / 1000;
    const out = {};
    for (const f of fields) {
      // A counter only goes down if the queue was deleted and made anew.
      out[f] = Math.max(0, current.stats[f] - previous.stats[f]) / seconds;
    }
    return out;
  }

  function rate(r) {
    if (r === null || r === undefined) return "–";
    if (r === 0) return "0";
    return r < 10 ? r.toFixed(2) : r.toFixed(0);
  }

  /// Shows the time of the last refresh, or what went wrong.
  function status(text, isError = false) {
    const node = document.getElementById("status");
    node.textContent = text;
    node.classList.toggle("error", isError);
  }

  /// Runs `refresh` now and then every REFRESH_MS after each run ends, so
  /// a slow answer never piles requests up. Returns a function that
  /// refreshes at once (after the run in progress, if any).
  function every(refresh) {
    let timer = null;
    let running = false;
    let again = false;
    async function run() {
      if (running) {
        again = true;
        return;
      }
      running = true;
      clearTimeout(timer);
      try {
        await refresh();
        status(`updated ${new Date().toLocaleTimeString()}`);
      } catch (e) {
        status(`cannot refresh: ${e.message}`, true);
      }
      running = false;
      if (again) {
        again = false;
        run();
      } else {
        timer = setTimeout(run, REFRESH_MS);
      }
    }
    run();
    return run;
  }

  return { api, el, preview, duration, count, rates, rate, status, every, formatBytes };
})();
