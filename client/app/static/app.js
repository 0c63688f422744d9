// Mist's app: live updates over the event stream. Every page works without this file; it only keeps the
// page current (progress, states, the speed chart) and shows notices as they come.
"use strict";

(function () {
  const human = (n) => {
    const units = ["B", "KB", "MB", "GB", "TB"];
    let i = 0;
    n = Number(n) || 0;
    while (Math.abs(n) >= 1000 && i < units.length - 1) { n /= 1000; i += 1; }
    return i === 0 ? `${Math.round(n)} B` : `${n.toFixed(1)} ${units[i]}`;
  };
  const eta = (s) => {
    if (s === null || s === undefined) return "-";
    s = Math.round(s);
    const two = (x) => String(x).padStart(2, "0");
    return s >= 3600 ? `${Math.floor(s / 3600)}:${two(Math.floor(s / 60) % 60)}:${two(s % 60)}` : `${Math.floor(s / 60)}:${two(s % 60)}`;
  };
  const chart = (speeds) => {
    const width = 300, height = 60;
    if (!speeds.length) return `0,${height} ${width},${height}`;
    const peak = Math.max(1, ...speeds);
    const step = width / Math.max(speeds.length - 1, 1);
    return speeds.map((s, i) => `${(i * step).toFixed(1)},${(height - s / peak * (height - 2)).toFixed(1)}`).join(" ");
  };

  function showProgress(job) {
    const row = document.querySelector(`[data-job="${job.id}"]`);
    document.querySelectorAll(`[data-percent-of="${job.id}"]`).forEach((el) => { el.textContent = job.percent; });
    if (!row) return;
    const set = (field, text) => { const el = row.querySelector(`[data-field="${field}"]`); if (el) el.textContent = text; };
    const bar = row.querySelector('[data-field="bar"]');
    if (bar) bar.value = job.percent;
    set("percent", job.percent);
    set("done", human(job.done));
    set("total", human(job.total));
    set("speed", `${human(job.speed)}/s`);
    set("eta", eta(job.eta));
    set("from_peers", human(job.from_peers));
    set("from_server", human(job.from_server));
    set("state", job.state);
    const message = row.querySelector('[data-field="message"]');
    if (message && job.message) message.textContent = job.message;
    const line = row.querySelector('[data-field="chart"]');
    if (line) line.setAttribute("points", chart(job.speeds));
  }

  // A change of state: fetch this page again and swap its main part (forms and links stay plain HTML).
  let pending = null;
  function reload() {
    if (pending) return;
    pending = setTimeout(async () => {
      pending = null;
      if (document.activeElement && ["INPUT", "TEXTAREA", "SELECT"].includes(document.activeElement.tagName)) return;
      try {
        const answer = await fetch(location.href, { credentials: "same-origin", headers: { "X-Mist-Refresh": "1" } });
        if (!answer.ok || answer.redirected) return;
        const next = new DOMParser().parseFromString(await answer.text(), "text/html");
        const main = next.querySelector("main");
        const nav = next.querySelector(".top-bar nav");
        // The message this page came with ("Signed in ...") is shown once by the daemon: it stays until the
        // person leaves the page, not until the first change of state swaps the page's main part.
        const said = document.querySelector("main > p.flash");
        if (main) document.querySelector("main").replaceChildren(...main.childNodes);
        if (said && !document.querySelector("main > p.flash")) document.querySelector("main").prepend(said);
        if (nav) document.querySelector(".top-bar nav").replaceChildren(...nav.childNodes);
        document.body.dataset.refreshed = String(Number(document.body.dataset.refreshed || 0) + 1);
      } catch (e) { /* the daemon is restarting: the stream reconnects and we try again then */ }
    }, 250);
  }

  // Forms marked data-live post in the background and the page updates in place (without script they post
  // and come back, as every form does).
  document.addEventListener("submit", async (event) => {
    const form = event.target;
    if (!(form instanceof HTMLFormElement) || !form.hasAttribute("data-live") || form.method.toLowerCase() !== "post") return;
    event.preventDefault();
    try {
      const answer = await fetch(form.action, { method: "POST", body: new URLSearchParams(new FormData(form)), credentials: "same-origin" });
      const next = new DOMParser().parseFromString(await answer.text(), "text/html");
      const main = next.querySelector("main");
      if (main) document.querySelector("main").replaceChildren(...main.childNodes);
    } catch (e) { form.submit(); }
  });

  function toast(text) {
    const box = document.getElementById("live-notices");
    if (!box) return;
    const item = document.createElement("p");
    item.className = "toast";
    item.textContent = text;
    box.append(item);
    setTimeout(() => item.remove(), 8000);
  }

  if (!window.EventSource) return;
  const stream = new EventSource("/api/events");
  stream.addEventListener("open", () => { document.body.dataset.live = "yes"; });
  stream.addEventListener("progress", (e) => showProgress(JSON.parse(e.data)));
  // A job event whose state this page already shows changes nothing here: no need to fetch the page again.
  stream.addEventListener("job", (e) => {
    const job = JSON.parse(e.data);
    const shown = document.querySelector(`[data-job="${job.id}"] [data-field="state"]`);
    if (!shown || shown.textContent !== job.state) reload();
  });
  for (const kind of ["finished", "installs", "sized", "account", "playing", "settings", "news"]) {
    stream.addEventListener(kind, reload);
  }
  stream.addEventListener("notice", (e) => toast(JSON.parse(e.data).text));
})();
