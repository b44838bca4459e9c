// Regional Twin Hub web app: the few behaviours the server cannot render.
// No inline scripts anywhere (the Content-Security-Policy forbids them): pages pass data in
// <script type="application/json"> blocks (Django's json_script) and mark elements with
// data-* attributes that the functions below pick up, also after htmx swaps.
"use strict";

window.TwinHub = (function () {
  const charts = new WeakMap();

  function readJson(id) {
    const el = document.getElementById(id);
    return el ? JSON.parse(el.textContent) : null;
  }

  // <canvas data-chart="json-script-id"> where the JSON is a Chart.js config object.
  function drawCharts(root) {
    if (!window.Chart) return;
    root.querySelectorAll("canvas[data-chart]").forEach(function (canvas) {
      const config = readJson(canvas.dataset.chart);
      if (!config) return;
      const old = charts.get(canvas);
      if (old) old.destroy();
      Chart.defaults.color = "#a3b1bf";
      Chart.defaults.borderColor = "#2c3a48";
      charts.set(canvas, new Chart(canvas, config));
    });
  }

  // A short two-tone chime (Web Audio: no sound file to serve). Silenced per browser.
  function muted() { return localStorage.getItem("twinhub.muted") === "1"; }
  function chime() {
    if (muted()) return;
    try {
      const ctx = new (window.AudioContext || window.webkitAudioContext)();
      [880, 660].forEach(function (freq, i) {
        const osc = ctx.createOscillator(), gain = ctx.createGain();
        osc.frequency.value = freq; osc.connect(gain); gain.connect(ctx.destination);
        gain.gain.setValueAtTime(0.15, ctx.currentTime + i * 0.25);
        gain.gain.exponentialRampToValueAtTime(0.001, ctx.currentTime + i * 0.25 + 0.22);
        osc.start(ctx.currentTime + i * 0.25); osc.stop(ctx.currentTime + i * 0.25 + 0.25);
      });
    } catch (e) { /* no audio device: the visual cue remains */ }
  }
  function syncMuteButtons() {
    document.querySelectorAll("[data-mute-toggle]").forEach(function (b) {
      b.setAttribute("aria-pressed", muted() ? "true" : "false");
      b.textContent = muted() ? "Sound off" : "Sound on";
    });
  }
  document.addEventListener("click", function (ev) {
    const b = ev.target.closest("[data-mute-toggle]");
    if (!b) return;
    localStorage.setItem("twinhub.muted", muted() ? "0" : "1");
    syncMuteButtons();
  });

  function init(root) { drawCharts(root); syncMuteButtons(); }
  document.addEventListener("DOMContentLoaded", function () { init(document); });
  document.addEventListener("htmx:afterSettle", function (ev) { init(ev.target); });
  return { readJson: readJson, drawCharts: drawCharts, chime: chime, muted: muted };
})();
