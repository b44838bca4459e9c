// The regional board: notice what changed between two refreshes of the tile grid.
// htmx polls /board/tiles/ and swaps the grid (outerHTML). Before the swap we note each
// tile's signature (ED status in force | advised status | surge level) and destroy its
// chart (Chart.js keeps every instance in a registry: on a wall screen left on for days,
// fifty charts every fifteen seconds would otherwise pile up); after it, a tile whose
// signature changed flashes, and the board chimes once unless muted (TwinHub.chime checks).
"use strict";

(function () {
  let before = null;

  function grid() { return document.getElementById("board-tiles"); }

  function signatures(root) {
    const out = new Map();
    if (!root) return out;
    root.querySelectorAll(".tile[data-site]").forEach(function (t) {
      out.set(t.dataset.site, t.dataset.signature);
    });
    return out;
  }

  function destroyCharts(root) {
    if (!window.Chart || !root) return;
    root.querySelectorAll("canvas[data-chart]").forEach(function (canvas) {
      const chart = window.Chart.getChart(canvas);
      if (chart) chart.destroy();
    });
  }

  function setConnection(text) {
    const el = document.getElementById("board-connection");
    if (el) el.textContent = text;
  }

  document.addEventListener("htmx:beforeSwap", function (ev) {
    const target = ev.detail.target;
    if (!target || target.id !== "board-tiles") return;
    if (!ev.detail.xhr || ev.detail.xhr.status !== 200) return;
    // A session that expired answers the poll with the sign-in page (after a redirect):
    // never swap that into the grid; reload, which lands on the sign-in page itself.
    if ((ev.detail.xhr.responseURL || "").indexOf("/login/") !== -1) {
      ev.detail.shouldSwap = false;
      window.location.reload();
      return;
    }
    before = signatures(target);
    destroyCharts(target);
  });

  document.addEventListener("htmx:afterSettle", function () {
    const root = grid();
    if (!root || before === null) return;
    const previous = before;
    before = null;
    let changed = 0;
    root.querySelectorAll(".tile[data-site]").forEach(function (t) {
      const old = previous.get(t.dataset.site);
      if (old !== undefined && old !== t.dataset.signature) {
        t.classList.add("tile-changed");
        changed += 1;
      }
    });
    if (window.TwinHub) window.TwinHub.drawCharts(root);
    if (changed && window.TwinHub) window.TwinHub.chime();
    setConnection("");
  });

  // A failed refresh keeps the last tiles and says how old they are: a wall screen must
  // never show old figures as if they were live.
  function lost(ev) {
    const root = grid();
    const at = root ? root.querySelector(".board-updated time") : null;
    const since = at ? at.textContent : "earlier";
    const status = ev.detail && ev.detail.xhr ? ev.detail.xhr.status : 0;
    setConnection(status === 403 || status === 404
      ? "Your access to the board has changed: reload the page — showing figures from " + since
      : "Connection to the hub lost — showing figures from " + since);
  }
  document.addEventListener("htmx:sendError", lost);
  document.addEventListener("htmx:responseError", lost);
})();
