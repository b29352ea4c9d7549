// crmgate dashboard. Every text comes from the server's catalogue
// (cfg.messages); data from the JSON endpoints is put into the page with
// textContent and attributes only, never parsed as markup.
(function () {
  "use strict";

  var cfg = JSON.parse(document.getElementById("dashboard-config").textContent);
  var M = cfg.messages || {};
  var TOKEN_KEY = "crmgate.admin.token";
  var SVG_NS = "http://www.w3.org/2000/svg";
  var SERIES = ["requests", "denials", "step_ups", "rate_limited", "hijacks"];
  var windowMs = cfg.window_minutes * 60 * 1000;

  var samples = []; // {t: ms, v: {series: cumulative count}}
  var timer = null;
  var filters = "";

  // t returns message id, its %s/%d verbs replaced by the arguments in
  // order.
  function t(id) {
    var args = Array.prototype.slice.call(arguments, 1);
    var s = Object.prototype.hasOwnProperty.call(M, id) ? M[id] : id;
    return s.replace(/%[sdv]/g, function () { return args.length ? String(args.shift()) : ""; });
  }

  function $(sel, root) { return (root || document).querySelector(sel); }

  // el makes an element with text (never markup) and attributes.
  function el(tag, text, attrs) {
    var e = document.createElement(tag);
    if (text !== undefined && text !== null) { e.textContent = String(text); }
    if (attrs) { Object.keys(attrs).forEach(function (k) { e.setAttribute(k, attrs[k]); }); }
    return e;
  }

  function svg(tag, attrs) {
    var e = document.createElementNS(SVG_NS, tag);
    Object.keys(attrs || {}).forEach(function (k) { e.setAttribute(k, attrs[k]); });
    return e;
  }

  function clear(e) { while (e.firstChild) { e.removeChild(e.firstChild); } }

  function num(n, digits) {
    return Number(n).toLocaleString(cfg.lang, { maximumFractionDigits: digits === undefined ? 2 : digits });
  }

  function time(iso, withDate) {
    if (!iso) { return ""; }
    var d = new Date(iso);
    if (isNaN(d.getTime())) { return String(iso); }
    return withDate ? d.toLocaleString(cfg.lang) : d.toLocaleTimeString(cfg.lang);
  }

  function setStatus(text, bad) {
    var s = $("#status");
    s.textContent = text;
    s.classList.toggle("bad", !!bad);
  }

  function note(panel, text, bad) {
    var n = $(".panel-note", panel);
    n.textContent = text || "";
    n.classList.toggle("bad", !!bad);
  }

  // ---- token -----------------------------------------------------------

  function token() {
    try { return sessionStorage.getItem(TOKEN_KEY) || ""; } catch (e) { return ""; }
  }

  function setToken(v) {
    try {
      if (v) { sessionStorage.setItem(TOKEN_KEY, v); } else { sessionStorage.removeItem(TOKEN_KEY); }
    } catch (e) { /* storage off: the token lives as long as the page */ }
    memoryToken = v;
  }
  var memoryToken = "";

  function currentToken() { return token() || memoryToken; }

  function showLogin(message) {
    if (timer) { clearInterval(timer); timer = null; }
    $("#main").hidden = true;
    $("#forget").hidden = true;
    $("#login").hidden = false;
    $("#login-error").textContent = message || "";
    $("#updated").textContent = "";
    $("#token").focus();
  }

  // Unauthorized is thrown by api when the token is refused.
  function Unauthorized() {}

  function api(path, method) {
    var headers = { "Accept": "application/json" };
    var tok = currentToken();
    if (tok) { headers["Authorization"] = "Bearer " + tok; }
    return fetch(path, { method: method || "GET", headers: headers, cache: "no-store", credentials: "omit", redirect: "error" })
      .then(function (res) {
        if (res.status === 401) { throw new Unauthorized(); }
        return res.json().catch(function () { return {}; }).then(function (body) {
          return { status: res.status, body: body };
        });
      });
  }

  function start() {
    $("#login").hidden = true;
    $("#main").hidden = false;
    $("#forget").hidden = !cfg.token_required;
    setStatus("");
    poll();
    if (!timer) { timer = setInterval(poll, cfg.poll_seconds * 1000); }
  }

  function failed(err) {
    if (err instanceof Unauthorized) {
      setToken("");
      showLogin(t("dashboard.token.refused"));
      return;
    }
    setStatus(t("dashboard.error.fetch", err && err.message ? err.message : String(err)), true);
  }

  function poll() {
    Promise.all([loadSummary(), loadEvents(), loadSessions()]).then(function () {
      setStatus("");
      $("#updated").textContent = t("dashboard.updated", new Date().toLocaleTimeString(cfg.lang)) + " · " + t("dashboard.polling", cfg.poll_seconds);
    }).catch(failed);
  }

  // ---- summary: charts, counters, policy --------------------------------

  function loadSummary() {
    return api("/dashboard/api/summary").then(function (r) {
      if (r.status !== 200) { setStatus(t("dashboard.error.status", r.status), true); return; }
      var now = Date.now();
      samples.push({ t: now, v: r.body.series || {} });
      while (samples.length > 2 && samples[0].t < now - windowMs - cfg.poll_seconds * 1000) { samples.shift(); }
      drawCharts();
      drawCounters(r.body);
      drawPolicy(r.body.policy);
    });
  }

  // points are the per-second rates between consecutive samples of a
  // series: {t, rate, count}. A counter that went down (a restart) counts
  // from zero.
  function points(series) {
    var out = [];
    for (var i = 1; i < samples.length; i++) {
      var a = samples[i - 1], b = samples[i];
      var d = (b.v[series] || 0) - (a.v[series] || 0);
      if (d < 0) { d = b.v[series] || 0; }
      var dt = Math.max((b.t - a.t) / 1000, 0.001);
      out.push({ t: b.t, rate: d / dt, count: d });
    }
    return out;
  }

  function drawCharts() {
    SERIES.forEach(function (series) {
      var fig = $('.chart[data-series="' + series + '"]');
      if (!fig) { return; }
      var pts = points(series);
      var title = $(".chart-title", fig).textContent;
      var last = pts.length ? pts[pts.length - 1].rate : 0;
      var total = pts.reduce(function (s, p) { return s + p.count; }, 0);
      $(".chart-now", fig).textContent = pts.length ? t("dashboard.chart.now", num(last)) : "";
      $(".chart-total", fig).textContent = pts.length ? t("dashboard.chart.window_total", cfg.window_minutes, num(total, 0)) : t("dashboard.chart.waiting");
      fillTable(fig, pts);
      var plot = $(".chart-plot", fig);
      try {
        drawPlot(plot, pts, t("dashboard.chart.alt", title, cfg.window_minutes, num(last)));
      } catch (e) {
        clear(plot);
        plot.appendChild(el("p", t("dashboard.chart.failed"), { "class": "muted" }));
        $("details", fig).open = true;
      }
    });
  }

  function fillTable(fig, pts) {
    var body = $("tbody", fig);
    clear(body);
    pts.slice(-30).reverse().forEach(function (p) {
      var tr = el("tr");
      tr.appendChild(el("td", time(new Date(p.t).toISOString())));
      tr.appendChild(el("td", num(p.rate), { "class": "num" }));
      tr.appendChild(el("td", num(p.count, 0), { "class": "num" }));
      body.appendChild(tr);
    });
  }

  function drawPlot(plot, pts, label) {
    var W = 300, H = 110, L = 34, B = 14;
    var max = pts.reduce(function (m, p) { return Math.max(m, p.rate); }, 0);
    max = max > 0 ? niceMax(max) : 1;
    // Until the page has watched for the whole window, the x axis spans
    // what it has seen.
    var now = Date.now();
    var from = Math.max(now - windowMs, samples.length ? samples[0].t : now - windowMs);
    var span = Math.max(now - from, 1);
    var s = svg("svg", { viewBox: "0 0 " + W + " " + H, role: "img", "aria-label": label, preserveAspectRatio: "none" });
    s.appendChild(svg("title")).textContent = label;
    [0, 0.5, 1].forEach(function (f) {
      var y = (H - B) - f * (H - B - 6);
      s.appendChild(svg("line", { x1: L, x2: W, y1: y, y2: y, "class": "grid" }));
      var txt = svg("text", { x: L - 4, y: y + 4, "text-anchor": "end", "class": "axis" });
      txt.textContent = num(max * f, 1);
      s.appendChild(txt);
    });
    var minutes = svg("text", { x: L, y: H - 2, "class": "axis" });
    minutes.textContent = t("dashboard.chart.axis_start", Math.max(1, Math.ceil(span / 60000)));
    s.appendChild(minutes);
    if (pts.length) {
      var xy = pts.map(function (p) {
        var x = L + Math.max(0, (p.t - from) / span) * (W - L);
        var y = (H - B) - (p.rate / max) * (H - B - 6);
        return x.toFixed(1) + "," + y.toFixed(1);
      });
      var first = xy[0].split(",")[0], lastX = xy[xy.length - 1].split(",")[0];
      s.appendChild(svg("polygon", { points: first + "," + (H - B) + " " + xy.join(" ") + " " + lastX + "," + (H - B), "class": "area" }));
      s.appendChild(svg("polyline", { points: xy.length === 1 ? xy[0] + " " + xy[0] : xy.join(" "), "class": "line" }));
    }
    clear(plot);
    plot.appendChild(s);
  }

  function niceMax(v) {
    var p = Math.pow(10, Math.floor(Math.log10(v)));
    var steps = [1, 2, 2.5, 5, 10];
    for (var i = 0; i < steps.length; i++) { if (steps[i] * p >= v) { return steps[i] * p; } }
    return 10 * p;
  }

  function drawCounters(sum) {
    var box = $(".counter-tables");
    clear(box);
    [
      ["dashboard.counters.outcome", sum.requests_by_outcome],
      ["dashboard.counters.code", sum.requests_by_code],
      ["dashboard.counters.reason", sum.rejected_by_reason],
      ["dashboard.counters.session_actions", sum.session_actions],
      ["dashboard.counters.fingerprint", sum.fingerprint_checks],
      ["dashboard.counters.audit", sum.audit]
    ].forEach(function (g) {
      var div = el("div");
      div.appendChild(el("h3", t(g[0])));
      var keys = Object.keys(g[1] || {}).sort();
      if (!keys.length) {
        div.appendChild(el("p", t("dashboard.counters.none"), { "class": "muted" }));
      } else {
        var table = el("table");
        var head = el("tr");
        head.appendChild(el("th", t("dashboard.counters.name"), { scope: "col" }));
        head.appendChild(el("th", t("dashboard.counters.value"), { scope: "col" }));
        table.appendChild(el("thead")).appendChild(head);
        var body = table.appendChild(el("tbody"));
        keys.forEach(function (k) {
          var tr = el("tr");
          tr.appendChild(el("td", k || "—", { "class": "mono" }));
          tr.appendChild(el("td", num(g[1][k], 0), { "class": "num" }));
          body.appendChild(tr);
        });
        div.appendChild(table);
      }
      box.appendChild(div);
    });
  }

  function drawPolicy(p) {
    var panel = $("#policy");
    var dl = $("dl", panel);
    if (!p) {
      dl.hidden = true;
      note(panel, t("dashboard.policy.none"));
      return;
    }
    note(panel, "");
    dl.hidden = false;
    $('[data-field="revision"]', dl).textContent = p.revision || "—";
    $('[data-field="last_result"]', dl).textContent = p.last_result || "—";
    $('[data-field="last_reload"]', dl).textContent = p.last_reload ? time(p.last_reload, true) : "—";
    $('[data-field="last_error"]', dl).textContent = p.last_error || "—";
  }

  // ---- events -------------------------------------------------------------

  function loadEvents() {
    return api("/dashboard/api/events" + filters).then(function (r) {
      var panel = $("#events");
      var table = $("table", panel);
      if (r.status === 403) { table.hidden = true; note(panel, t("dashboard.events.needs_token")); return; }
      if (r.status === 400) { table.hidden = true; note(panel, t("dashboard.events.bad_filter"), true); return; }
      if (r.status !== 200) { table.hidden = true; note(panel, t("dashboard.error.status", r.status), true); return; }
      if (!r.body.enabled) { table.hidden = true; note(panel, t("dashboard.events.off")); return; }
      var events = r.body.events || [];
      note(panel, events.length ? t("dashboard.events.count", events.length) : t("dashboard.events.none"));
      table.hidden = !events.length;
      var body = $("tbody", table);
      clear(body);
      events.forEach(function (e) {
        var tr = el("tr");
        tr.appendChild(el("td", time(e.time, true)));
        tr.appendChild(el("td", e.type, { "class": "mono" }));
        var sev = el("td", e.severity);
        if (/^(low|medium|high|critical)$/.test(e.severity || "")) { sev.className = "sev-" + e.severity; }
        tr.appendChild(sev);
        tr.appendChild(el("td", e.subject));
        tr.appendChild(el("td", e.client_ip, { "class": "mono nowrap" }));
        tr.appendChild(el("td", [e.method, e.path].filter(Boolean).join(" ") + (e.route ? " (" + e.route + ")" : ""), { "class": "mono" }));
        var st = el("td", e.status ? e.status : "", { "class": "num" });
        if (e.status >= 400 && e.status < 600) { st.classList.add("st-" + Math.floor(e.status / 100)); }
        tr.appendChild(st);
        tr.appendChild(el("td", e.message));
        body.appendChild(tr);
      });
    });
  }

  function applyFilters(ev) {
    ev.preventDefault();
    var q = new URLSearchParams();
    var type = $("#f-type").value.trim(), subject = $("#f-subject").value.trim();
    if (type) { q.set("type", type); }
    if (subject) { q.set("subject", subject); }
    if ($("#f-status").value) { q.set("status", $("#f-status").value); }
    q.set("limit", $("#f-limit").value);
    filters = "?" + q.toString();
    loadEvents().catch(failed);
  }

  // ---- sessions -----------------------------------------------------------

  function loadSessions() {
    return api("/sessions").then(function (r) {
      var panel = $("#sessions");
      var table = $("table", panel);
      var problem = { 403: "dashboard.sessions.needs_token", 404: "dashboard.sessions.off", 503: "dashboard.sessions.store_down" }[r.status];
      if (problem) { table.hidden = true; note(panel, t(problem), r.status === 503); return; }
      if (r.status !== 200) { table.hidden = true; note(panel, t("dashboard.error.status", r.status), true); return; }
      var list = (r.body.sessions || []).slice().sort(function (a, b) {
        return String(b.last_seen || "").localeCompare(String(a.last_seen || ""));
      });
      note(panel, list.length ? t("dashboard.sessions.count", list.length) : t("dashboard.sessions.none"));
      table.hidden = !list.length;
      var body = $("tbody", table);
      clear(body);
      list.forEach(function (x) {
        var who = x.unreadable ? t("dashboard.sessions.unreadable") : (x.user_id || "—");
        var tr = el("tr", null, { "data-session": x.id_hash });
        tr.appendChild(el("td", who));
        tr.appendChild(el("td", time(x.created, true)));
        tr.appendChild(el("td", time(x.last_seen, true)));
        tr.appendChild(el("td", time(x.expires || x.idle_expires, true)));
        tr.appendChild(el("td", String(x.id_hash || "").slice(0, 12) + "…", { "class": "mono", title: x.id_hash || "" }));
        var td = el("td");
        var btn = el("button", t("dashboard.sessions.revoke"), { type: "button", "class": "danger revoke", "aria-label": t("dashboard.sessions.revoke_label", who) });
        btn.addEventListener("click", function () { revoke(x.id_hash, who, btn); });
        td.appendChild(btn);
        tr.appendChild(td);
        body.appendChild(tr);
      });
    });
  }

  function revoke(hash, who, btn) {
    btn.disabled = true;
    api("/sessions/" + encodeURIComponent(hash), "DELETE").then(function (r) {
      if (r.status === 200) {
        setStatus(t("dashboard.sessions.revoked", who));
      } else {
        setStatus(t("dashboard.sessions.revoke_failed", r.status), true);
        btn.disabled = false;
      }
      return loadSessions();
    }).catch(function (err) { btn.disabled = false; failed(err); });
  }

  // ---- start ----------------------------------------------------------------

  $("#token-form").addEventListener("submit", function (ev) {
    ev.preventDefault();
    var v = $("#token").value.trim();
    if (!v) { return; }
    setToken(v);
    $("#token").value = "";
    start();
  });
  $("#event-filters").addEventListener("submit", applyFilters);
  $("#forget").addEventListener("click", function () {
    setToken("");
    showLogin("");
  });

  if (cfg.token_required && !currentToken()) {
    showLogin("");
  } else {
    start();
  }
})();
