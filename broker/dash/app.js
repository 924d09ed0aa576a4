/* sluice dashboard (README "Dashboard"). Dependency-free: plain DOM and <canvas>.
 *
 * Data: polls the HTTP API at the chosen interval (default 2 s): /v1/stats?max=0 every time
 * (no groups array), plus what the open section needs: one page of /v1/groups (sorted,
 * filtered and paged by the broker), /v1/history (the last 10 minutes, per second),
 * /v1/pool (worker-pool's state, while the Workers section is open) or /v1/dead. The Router
 * section also reads /v1/events (Server-Sent Events) with fetch(), since EventSource cannot
 * send the token. Rates are differences between two polls; a group's
 * sparkline is built here from the polls of the rows on screen.
 *
 * window.sluicePerf: performance.now() marks for bench/run (load: the first groups table
 * rendered; updates: each poll's start to DOM updated, ms; fetches: the part of it until the
 * answers were in; bytes: the JSON characters each update read). */
'use strict';
(function () {
  var boot = window.sluiceBoot || {};
  var token = boot.token || '';
  delete window.sluiceBoot;

  var perf = { load: null, updates: [], fetches: [], bytes: [] };
  window.sluicePerf = perf;

  var S = {
    section: 'overview', group: null,
    interval: +(localStorage.getItem('sluice.interval') || 2000),
    stats: null, prev: null, lastOk: 0, failing: false, failSince: 0,
    gsort: 'count', gorder: 'desc', gfilter: '', goffset: 0, gmax: 50,
    gpage: null, gprev: {}, spark: {}, history: null,
    dead: null, deadGroup: '', sel: {}, pool: null,
    events: [], evAbort: null, evState: 'off',
    gseries: { t: [], backlog: [], rate: [] },
    timer: null, busy: false
  };

  /* ---- helpers ---- */
  function $(id) { return document.getElementById(id); }
  function esc(s) {
    return String(s == null ? '' : s).replace(/[&<>"']/g, function (c) {
      return { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c];
    });
  }
  function fmt(n) {
    if (n == null) { return '—'; }
    if (typeof n !== 'number') { return esc(n); }
    if (Math.abs(n) >= 1e6) { return (n / 1e6).toFixed(1) + 'M'; }
    if (Math.abs(n) >= 1e4) { return (n / 1e3).toFixed(1) + 'k'; }
    return Number.isInteger(n) ? String(n) : n.toFixed(1);
  }
  function ms(v) {
    if (v == null) { return '—'; }
    if (v < 1000) { return Math.round(v) + ' ms'; }
    if (v < 60000) { return (v / 1000).toFixed(1) + ' s'; }
    if (v < 3600000) { return (v / 60000).toFixed(1) + ' min'; }
    return (v / 3600000).toFixed(1) + ' h';
  }
  function bytes(v) {
    if (v == null) { return '—'; }
    if (v >= 1 << 30) { return (v / (1 << 30)).toFixed(1) + ' GiB'; }
    if (v >= 1 << 20) { return (v / (1 << 20)).toFixed(1) + ' MiB'; }
    if (v >= 1 << 10) { return (v / (1 << 10)).toFixed(0) + ' KiB'; }
    return v + ' B';
  }
  /* Sets el's markup unless it is the same as last time: an update that changed nothing
   * leaves the elements (focus, hover, a click under way) alone. */
  function setHTML(el, html) {
    if (el && el.sluiceHTML !== html) {
      el.innerHTML = html;
      el.sluiceHTML = html;
    }
  }
  function toast(text) {
    var t = $('toast');
    t.textContent = text;
    t.className = 'show';
    clearTimeout(toast.t);
    toast.t = setTimeout(function () { t.className = ''; }, 4000);
  }
  function qs(o) {
    var a = [];
    Object.keys(o).forEach(function (k) {
      if (o[k] !== '' && o[k] != null) {
        a.push(encodeURIComponent(k) + '=' + encodeURIComponent(o[k]));
      }
    });
    return a.length ? '?' + a.join('&') : '';
  }

  /* One API call: resolves the JSON answer; rejects with {status, err, msg} (status 0: the
   * broker could not be reached). */
  function api(method, path, body) {
    var h = {};
    if (token) { h.Authorization = 'Bearer ' + token; }
    var init = { method: method, headers: h, cache: 'no-store' };
    if (body !== undefined) {
      h['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    return fetch(path, init).then(function (r) {
      return r.text().then(function (t) {
        perf.lastBytes = (perf.lastBytes || 0) + t.length;
        var j = null;
        try { j = t ? JSON.parse(t) : {}; } catch (e) { j = { err: 'bad_json', msg: t }; }
        if (!r.ok) {
          throw { status: r.status, err: j.err, msg: j.msg || r.statusText };
        }
        return j;
      });
    }, function (e) {
      throw { status: 0, err: 'unreachable', msg: String(e && e.message || e) };
    });
  }
  /* An action of a button: runs it, says how it went, refreshes. */
  function act(what, p) {
    return p.then(function () {
      toast(what + ': done');
      tick();
    }, function (e) {
      toast(what + ' failed: ' + (e.msg || e.err || e.status));
    });
  }

  /* ---- charts (canvas) ---- */
  function canvasCtx(c) {
    var r = window.devicePixelRatio || 1;
    var w = c.clientWidth || 300, hh = c.clientHeight || 150;
    if (c.width !== Math.round(w * r) || c.height !== Math.round(hh * r)) {
      c.width = Math.round(w * r);
      c.height = Math.round(hh * r);
    }
    var g = c.getContext('2d');
    g.setTransform(r, 0, 0, r, 0, 0);
    g.clearRect(0, 0, w, hh);
    return { g: g, w: w, h: hh };
  }
  /* The theme's colours, read once per theme: getComputedStyle per sparkline would make the
   * browser recompute styles 50 times an update. */
  var colors = {};
  function cssVar(n) {
    if (!(n in colors)) {
      colors[n] = getComputedStyle(document.documentElement).getPropertyValue(n);
    }
    return colors[n];
  }
  matchMedia('(prefers-color-scheme: dark)').addEventListener('change', function () {
    colors = {};
    render();
  });
  /* Lines of series (arrays of equal length) with colours; axis labels when big (span: what
   * the x axis covers, e.g. '10 min'). */
  function drawLines(c, series, colors, big, span) {
    var x = canvasCtx(c), g = x.g, pad = big ? 34 : 1, top = big ? 8 : 1, n = 0, max = 1;
    series.forEach(function (s) {
      n = Math.max(n, s.length);
      s.forEach(function (v) { if (v > max) { max = v; } });
    });
    var W = x.w - pad - 2, H = x.h - (big ? 18 : 2) - top;
    if (big) {
      g.strokeStyle = cssVar('--line');
      g.fillStyle = cssVar('--muted');
      g.font = '11px system-ui';
      g.lineWidth = 1;
      for (var i = 0; i <= 4; i++) {
        var y = top + H - H * i / 4;
        g.beginPath(); g.moveTo(pad, y); g.lineTo(pad + W, y); g.stroke();
        g.fillText(fmt(max >= 8 ? Math.round(max * i / 4) : max * i / 4), 2, y + 4);
      }
      g.fillText(span ? '-' + span : '', pad, x.h - 3);
      g.fillText('now', pad + W - 22, x.h - 3);
    }
    series.forEach(function (s, k) {
      g.strokeStyle = cssVar(colors[k]);
      g.lineWidth = big ? 1.5 : 1.2;
      g.beginPath();
      s.forEach(function (v, i) {
        var px = pad + (n > 1 ? W * i / (n - 1) : 0), py = top + H - H * v / max;
        if (i === 0) { g.moveTo(px, py); } else { g.lineTo(px, py); }
      });
      g.stroke();
    });
  }
  /* A sparkline as inline SVG markup: 50 rows of canvases cost the browser ~2 ms each per
   * update, a polyline in the row's markup next to nothing. */
  function spark(a) {
    if (!a || a.length < 2) { return ''; }
    var max = Math.max.apply(null, a) || 1, n = a.length - 1;
    var pts = a.map(function (v, i) {
      return (i * 60 / n).toFixed(1) + ',' + (19 - 18 * v / max).toFixed(1);
    }).join(' ');
    return '<svg class="spark" viewBox="0 0 60 20" preserveAspectRatio="none">' +
           '<polyline points="' + pts + '"/></svg>';
  }
  /* Averages of every k points: 598 seconds become ~120 points of 5 s. */
  function smooth(a, k) {
    var out = [];
    for (var i = 0; i + k <= a.length; i += k) {
      var s = 0;
      for (var j = 0; j < k; j++) { s += a[i + j]; }
      out.push(s / k);
    }
    return out;
  }

  /* ---- layout ---- */
  var sections = [['overview', 'Overview'], ['groups', 'Groups'], ['queues', 'Queues'],
                  ['workers', 'Workers'], ['router', 'Router'], ['dead', 'Dead jobs']];
  function shell() {
    var nav = sections.map(function (s) {
      return '<a href="#' + s[0] + '" id="nav-' + s[0] + '">' + s[1] + '</a>';
    }).join('');
    var opts = [[1000, '1 s'], [2000, '2 s'], [5000, '5 s'], [10000, '10 s'], [0, 'paused']]
      .map(function (o) {
        return '<option value="' + o[0] + '"' + (o[0] === S.interval ? ' selected' : '') + '>' +
               o[1] + '</option>';
      }).join('');
    $('app').innerHTML =
      '<div id="banner" role="alert"></div>' +
      '<header><h1>sluice</h1><nav>' + nav + '</nav><div class="tools">' +
      '<span id="updated" class="muted"></span>' +
      '<label>update <select id="interval">' + opts + '</select></label>' +
      '<button id="theme" type="button" title="dark or light">◐</button></div></header>' +
      '<main id="main"></main><div id="toast"></div>';
    $('interval').addEventListener('change', function () {
      S.interval = +this.value;
      localStorage.setItem('sluice.interval', String(S.interval));
      schedule();
    });
    $('theme').addEventListener('click', function () {
      var dark = document.documentElement.getAttribute('data-theme') === 'dark' ||
        (!document.documentElement.getAttribute('data-theme') &&
         matchMedia('(prefers-color-scheme: dark)').matches);
      var t = dark ? 'light' : 'dark';
      document.documentElement.setAttribute('data-theme', t);
      localStorage.setItem('sluice.theme', t);
      colors = {};
      render();
    });
    var th = localStorage.getItem('sluice.theme');
    if (th) { document.documentElement.setAttribute('data-theme', th); }
  }

  function route() {
    var h = decodeURIComponent(location.hash.replace(/^#/, '')) || 'overview';
    var m = /^group\/(.+)$/.exec(h);
    S.group = m ? m[1] : null;
    S.section = m ? 'group' : (sections.some(function (s) { return s[0] === h; }) ? h : 'overview');
    sections.forEach(function (s) {
      var on = s[0] === S.section || (S.section === 'group' && s[0] === 'groups');
      $('nav-' + s[0]).className = on ? 'on' : '';
    });
    if (S.section !== 'router') { stopEvents(); }
    S.gseries = { t: [], backlog: [], rate: [] };
    $('main').innerHTML = '';
    build[S.section]();
    tick();
  }

  /* ---- banner ---- */
  function banner() {
    var b = $('banner'), now = Date.now();
    var stale = S.lastOk > 0 && S.interval > 0 && now - S.lastOk > Math.max(3 * S.interval, 6000);
    if (S.failing || stale) {
      b.textContent = (S.failing ? 'Broker unreachable' : 'Data stale') +
        (S.lastOk ? ': last update ' + Math.round((now - S.lastOk) / 1000) + ' s ago' : '') +
        (S.failMsg ? ' (' + S.failMsg + ')' : '');
      b.className = 'show';
    } else {
      b.className = '';
    }
    $('updated').textContent = S.lastOk ? 'updated ' + new Date(S.lastOk).toLocaleTimeString() : '';
  }

  /* ---- polling ---- */
  function schedule() {
    clearTimeout(S.timer);
    if (S.interval > 0) { S.timer = setTimeout(tick, S.interval); }
  }
  var need = {
    overview: function () { return api('GET', '/v1/history').then(function (h) { S.history = h; }); },
    groups: function () {
      return api('GET', '/v1/groups' + qs({ sort: S.gsort, order: S.gorder, offset: S.goffset,
                                            max: S.gmax, filter: S.gfilter }))
        .then(function (p) { S.gpage = p; });
    },
    group: function () {
      return Promise.all([
        api('GET', '/v1/groups' + qs({ filter: S.group, max: 500, sort: 'name' })),
        api('GET', '/v1/dead' + qs({ group: S.group, max: 20 })).catch(function () {
          return { jobs: [], total: 0 };
        })
      ]).then(function (r) {
        S.gone = null;
        r[0].groups.forEach(function (g) { if (g.name === S.group) { S.gone = g; } });
        S.gdead = r[1];
      });
    },
    workers: function () {
      /* The pool being down is a state the reply says; a failed request is shown the same way. */
      return api('GET', '/v1/pool').then(function (p) { S.pool = p; }, function (e) {
        if (e.status === 401) { throw e; }
        S.pool = { reachable: false, url: null, error: e.msg || e.err || 'no answer' };
      });
    },
    dead: function () {
      return api('GET', '/v1/dead' + qs({ group: S.deadGroup, max: 200 })).then(function (d) {
        S.dead = d;
      }, function (e) {
        if (e.status === 404) { S.dead = { jobs: [], total: 0, missing: true }; return; }
        throw e;
      });
    }
  };
  function tick() {
    if (S.busy) { S.again = true; return; }
    S.busy = true;
    clearTimeout(S.timer);
    var t0 = performance.now();
    perf.lastBytes = 0;
    var extra = need[S.section] ? need[S.section]() : Promise.resolve();
    Promise.all([api('GET', '/v1/stats?max=0'), extra]).then(function (r) {
      var tf = performance.now() - t0;
      S.prev = S.stats;
      S.prevAt = S.at;
      S.stats = r[0];
      S.at = performance.now();
      S.lastOk = Date.now();
      S.failing = false;
      S.failMsg = '';
      render();
      banner();
      var dt = performance.now() - t0;
      perf.updates.push(dt);
      perf.fetches.push(tf);
      perf.bytes.push(perf.lastBytes);
      if (perf.updates.length > 100) { perf.updates.shift(); perf.fetches.shift(); perf.bytes.shift(); }
      if (S.section === 'groups' && perf.load == null) { perf.load = performance.now(); }
    }, function (e) {
      if (e.status === 401) {
        sessionStorage.removeItem('sluice.token');
        location.reload();
        return;
      }
      S.failing = e.status === 0 || e.status >= 500;
      S.failMsg = e.msg || e.err;
      if (!S.failing) { toast('update failed: ' + S.failMsg); }
      banner();
    }).then(function () {
      S.busy = false;
      if (S.again) { S.again = false; tick(); return; }
      schedule();
    });
  }
  setInterval(banner, 1000);

  /* Per-second rate of field f of broker (or an object found by pick) between two polls. */
  function rate(pick, f) {
    if (!S.prev || !S.stats || !S.prevAt) { return null; }
    var a = pick(S.prev), b = pick(S.stats), dt = (S.at - S.prevAt) / 1000;
    if (!a || !b || dt <= 0 || b[f] < a[f]) { return null; }
    return (b[f] - a[f]) / dt;
  }
  function brk(s) { return s.broker; }

  /* ---- sections: build (once) and render (each poll) ---- */
  var build = {}, rend = {};
  function render() { if (S.stats && rend[S.section]) { rend[S.section](); } }

  build.overview = function () {
    $('main').innerHTML =
      '<div class="cards" id="ov-cards"></div>' +
      '<div class="panel"><h2>Jobs per second, last 10 minutes</h2>' +
      '<div class="legend"><span><i class="l-push"></i>pushed</span>' +
      '<span><i class="l-done"></i>done</span><span><i class="l-fail"></i>failed</span></div>' +
      '<canvas class="chart" id="ov-chart"></canvas></div>';
  };
  function card(k, label, v, cls) {
    return '<div class="card"><div class="k">' + esc(label) + '</div><div class="v ' +
           (cls || '') + '" data-k="' + k + '">' + v + '</div></div>';
  }
  rend.overview = function () {
    var s = S.stats, b = s.broker, busy = 0, idle = 0;
    s.workers.forEach(function (w) { if (w.state === 'busy') { busy++; } else { idle++; } });
    var dr = rate(brk, 'dispatched');
    $('ov-cards').innerHTML =
      card('jobs', 'jobs held', fmt(b.jobs)) +
      card('dispatch_rate', 'dispatched / s', dr == null ? '—' : fmt(dr)) +
      card('workers_busy', 'workers busy', fmt(busy)) +
      card('workers_idle', 'workers idle', fmt(idle)) +
      card('reserved', 'in flight', fmt(b.reserved)) +
      card('journal', 'journal', esc(b.journal) + (b.journal_ok ? '' : ' (broken)'),
           b.journal_ok ? '' : 'bad') +
      card('db', 'database', esc(b.db) + (b.db_owed ? ' (' + fmt(b.db_owed) + ' owed)' : ''),
           b.db === 'ok' || b.db === 'off' ? '' : 'warn') +
      card('leader', 'router leader', s.leader ? esc(s.leader.name) : 'none',
           s.leader ? 'ok' : 'warn') +
      card('queues', 'queues', fmt(s.queues.length)) +
      card('pushed', 'pushed (since start)', fmt(b.pushed)) +
      card('done', 'done (since start)', fmt(b.done)) +
      card('failed', 'failed attempts', fmt(b.failed));
    if (S.history) {
      var h = S.history.series;
      drawLines($('ov-chart'), [smooth(h.pushed, 5), smooth(h.done, 5), smooth(h.failed, 5)],
                ['--push', '--done', '--fail'], true, '10 min');
    }
  };

  var gcols = [
    ['name', 'group', ''], ['count', 'backlog', 'n'], ['route', 'route', 'hide-s'],
    ['reserved', 'in flight', 'n'], ['rate', 'rate /s', 'n hide-s', 'share'],
    ['wait_p50_ms', 'p50 wait', 'n hide-s'], ['wait_p99_ms', 'p99 wait', 'n hide-s'],
    ['oldest_ready_ms', 'oldest waiting', 'n'], ['dead', 'dead', 'n hide-s'],
    ['spark', 'last minutes', 'hide-s']
  ];
  build.groups = function () {
    $('main').innerHTML =
      '<div class="panel"><div class="row">' +
      '<input id="g-filter" type="search" placeholder="filter groups" value="' +
      esc(S.gfilter) + '">' +
      '<label>per page <select id="g-max"><option>25</option><option>50</option>' +
      '<option>100</option><option>200</option></select></label>' +
      '<button id="g-prev" type="button">‹ prev</button>' +
      '<span id="g-info" class="muted"></span>' +
      '<button id="g-next" type="button">next ›</button></div>' +
      '<table id="g-table"><thead><tr>' + gcols.map(function (c) {
        var key = c[3] || c[0], sortable = c[0] !== 'route' && c[0] !== 'spark';
        return '<th class="' + c[2] + (sortable ? ' sort' : '') + '" data-sort="' +
               (sortable ? key : '') + '">' + c[1] + '</th>';
      }).join('') + '</tr></thead><tbody></tbody></table></div>';
    $('g-max').value = String(S.gmax);
    var ft;
    $('g-filter').addEventListener('input', function () {
      var v = this.value;
      clearTimeout(ft);
      ft = setTimeout(function () { S.gfilter = v; S.goffset = 0; tick(); }, 250);
    });
    $('g-max').addEventListener('change', function () { S.gmax = +this.value; S.goffset = 0; tick(); });
    $('g-prev').addEventListener('click', function () {
      S.goffset = Math.max(0, S.goffset - S.gmax); tick();
    });
    $('g-next').addEventListener('click', function () {
      if (S.gpage && S.goffset + S.gmax < S.gpage.total) { S.goffset += S.gmax; tick(); }
    });
    document.querySelector('#g-table thead').addEventListener('click', function (ev) {
      var k = ev.target.getAttribute('data-sort');
      if (!k) { return; }
      S.gorder = S.gsort === k && S.gorder === 'desc' ? 'asc' : 'desc';
      if (S.gsort !== k && k === 'name') { S.gorder = 'asc'; }
      S.gsort = k;
      S.goffset = 0;
      tick();
    });
    document.querySelector('#g-table tbody').addEventListener('click', function (ev) {
      var tr = ev.target.closest('tr');
      if (tr && tr.getAttribute('data-name')) {
        location.hash = 'group/' + encodeURIComponent(tr.getAttribute('data-name'));
      }
    });
  };
  /* The group's dispatch rate between the last two polls (and its sparkline's history). */
  function groupRate(g) {
    var p = S.gprev[g.name], now = performance.now(), r = null;
    if (p && now > p.at && g.dispatched >= p.d) { r = (g.dispatched - p.d) * 1000 / (now - p.at); }
    S.gprev[g.name] = { d: g.dispatched, at: now };
    var sp = S.spark[g.name] || (S.spark[g.name] = []);
    sp.push(g.count);
    if (sp.length > 60) { sp.shift(); }
    return r;
  }
  rend.groups = function () {
    var p = S.gpage;
    if (!p) { return; }
    document.querySelectorAll('#g-table th.sort').forEach(function (th) {
      var k = th.getAttribute('data-sort');
      th.classList.toggle('asc', k === S.gsort && S.gorder === 'asc');
      th.classList.toggle('desc', k === S.gsort && S.gorder === 'desc');
    });
    var rows = p.groups.map(function (g) {
      var r = groupRate(g);
      return '<tr class="link" data-name="' + esc(g.name) + '">' +
        '<td>' + esc(g.name) + '</td><td class="n" data-k="count">' + fmt(g.count) + '</td>' +
        '<td class="hide-s">' + esc(g.route || 'default') + '</td>' +
        '<td class="n" data-k="reserved">' + fmt(g.reserved) + '</td>' +
        '<td class="n hide-s">' + (r == null ? '—' : fmt(r)) + '</td>' +
        '<td class="n hide-s">' + ms(g.wait_p50_ms) + '</td>' +
        '<td class="n hide-s">' + ms(g.wait_p99_ms) + '</td>' +
        '<td class="n" data-k="oldest">' + ms(g.oldest_ready_ms) + '</td>' +
        '<td class="n hide-s" data-k="dead">' + fmt(g.dead) + '</td>' +
        '<td class="hide-s">' + spark(S.spark[g.name]) + '</td></tr>';
    });
    document.querySelector('#g-table tbody').innerHTML = rows.join('') ||
      '<tr><td colspan="10" class="muted">no group' + (S.gfilter ? ' matches' : ' yet') +
      '</td></tr>';
    $('g-info').textContent = p.total === 0 ? '0 groups' : (S.goffset + 1) + '–' +
      Math.min(S.goffset + p.groups.length, p.total) + ' of ' + p.total + ' groups';
    $('g-info').setAttribute('data-total', String(p.total));
  };

  build.group = function () {
    $('main').innerHTML =
      '<p><a href="#groups">‹ all groups</a></p><h2 id="gp-name">' + esc(S.group) + '</h2>' +
      '<div class="cards" id="gp-cards"></div>' +
      '<div class="panel"><h2>Backlog and rate while this page is open</h2>' +
      '<div class="legend"><span><i class="l-push"></i>backlog</span>' +
      '<span><i class="l-disp"></i>dispatched / s</span></div>' +
      '<canvas class="chart" id="gp-chart"></canvas></div>' +
      '<div class="panel"><h2>Route history</h2><table id="gp-routes"></table></div>' +
      '<div class="panel"><h2>Dead jobs</h2><table id="gp-dead"></table></div>';
  };
  rend.group = function () {
    var g = S.gone;
    if (!g) {
      setHTML($('gp-cards'), '<p class="muted">No such group (yet).</p>');
      return;
    }
    var r = groupRate(g), gs = S.gseries;
    gs.backlog.push(g.count);
    gs.rate.push(r || 0);
    if (gs.backlog.length > 300) { gs.backlog.shift(); gs.rate.shift(); }
    $('gp-cards').innerHTML =
      card('count', 'backlog', fmt(g.count)) + card('ready', 'ready', fmt(g.ready)) +
      card('reserved', 'in flight', fmt(g.reserved)) + card('delayed', 'delayed', fmt(g.delayed)) +
      card('dead', 'dead', fmt(g.dead)) + card('route', 'route', esc(g.route || 'default')) +
      card('rate', 'dispatched / s', r == null ? '—' : fmt(r)) +
      card('p50', 'p50 wait', ms(g.wait_p50_ms)) + card('p99', 'p99 wait', ms(g.wait_p99_ms)) +
      card('oldest', 'oldest waiting', ms(g.oldest_ready_ms)) +
      card('weight', 'weight', fmt(g.weight)) +
      card('limit', 'start rate', g.rate == null ? 'no limit' : fmt(g.rate) + '/s');
    drawLines($('gp-chart'), [gs.backlog, gs.rate], ['--push', '--disp'], true,
              Math.round(gs.backlog.length * S.interval / 1000) + ' s');
    var ds = (S.stats.decisions || []).filter(function (d) { return d.group === S.group; });
    setHTML($('gp-routes'), '<tr><th>when</th><th>queue</th><th class="n">moved</th>' +
      '<th>reason</th></tr>' + (ds.map(function (d) {
        return '<tr><td>' + new Date(d.ts_ms).toLocaleTimeString() + '</td><td>' +
          esc(d.queue || 'default (unset)') + '</td><td class="n">' + fmt(d.moved) +
          '</td><td>' + esc(d.reason || '') + '</td></tr>';
      }).join('') || '<tr><td colspan="4" class="muted">no route change among the broker\'s ' +
        'last decisions</td></tr>'));
    setHTML($('gp-dead'), deadRows((S.gdead || {}).jobs || [], false));
  };

  build.queues = function () {
    $('main').innerHTML =
      '<div class="panel"><h2>Queues</h2><table id="q-table"></table></div>' +
      '<div class="panel"><h2>New queue</h2><form id="q-new" class="row">' +
      '<input name="name" placeholder="name" required>' +
      '<label>priority <input name="priority" type="number" min="0" value="0"></label>' +
      '<label>weight <input name="weight" type="number" min="1" value="1"></label>' +
      '<label>cap <input name="max_inflight" type="number" min="0" value="0"></label>' +
      '<button class="primary" type="submit">Create</button></form></div>';
    $('q-new').addEventListener('submit', function (ev) {
      ev.preventDefault();
      var f = ev.target, body = { name: f.name.value };
      ['priority', 'weight', 'max_inflight'].forEach(function (k) {
        if (f[k].value !== '') { body[k] = +f[k].value; }
      });
      act('create ' + body.name, api('POST', '/v1/queues', body)).then(function () { f.reset(); });
    });
    $('q-table').addEventListener('click', function (ev) {
      var b = ev.target.closest('button');
      if (!b) { return; }
      var q = b.getAttribute('data-q'), what = b.getAttribute('data-act');
      var path = '/v1/queues/' + encodeURIComponent(q);
      if (what === 'pause' || what === 'resume') {
        act(what + ' ' + q, api('POST', path + '/' + what));
      } else if (what === 'save') {
        var tr = b.closest('tr');
        act('update ' + q, api('PATCH', path, {
          weight: +tr.querySelector('[name=weight]').value,
          max_inflight: +tr.querySelector('[name=max_inflight]').value
        }));
      } else if (what === 'destroy') {
        b.textContent = 'Sure? destroy';
        b.setAttribute('data-act', 'destroy-yes');
      } else if (what === 'destroy-yes') {
        act('destroy ' + q, api('DELETE', path));
      }
    });
  };
  rend.queues = function () {
    var active = document.activeElement;
    if (active && active.closest && active.closest('#q-table') && active.tagName === 'INPUT') {
      return; /* the user is typing a weight or a cap: do not redraw under them */
    }
    var qs0 = S.stats.queues;
    setHTML($('q-table'), '<tr><th>queue</th><th class="n">priority</th><th>weight</th>' +
      '<th>cap</th><th>state</th><th class="n">ready</th><th class="n">reserved</th>' +
      '<th class="n hide-s">delayed</th><th class="n">dead</th><th class="n hide-s">pushed/s</th>' +
      '<th class="n hide-s">done/s</th><th></th></tr>' + qs0.map(function (q) {
        var pick = function (s) {
          return s.queues.filter(function (x) { return x.name === q.name; })[0];
        };
        var pr = rate(pick, 'pushed'), dr = rate(pick, 'done'), n = esc(q.name);
        return '<tr data-q="' + n + '"><td>' + n + '</td><td class="n">' + q.priority + '</td>' +
          '<td><input name="weight" type="number" min="1" value="' + q.weight + '"></td>' +
          '<td><input name="max_inflight" type="number" min="0" value="' + q.max_inflight +
          '" title="0: no cap"></td>' +
          '<td data-k="paused" class="' + (q.paused ? 'warn' : 'ok') + '">' +
          (q.paused ? 'paused' : 'running') + '</td>' +
          '<td class="n" data-k="ready">' + fmt(q.ready) + '</td>' +
          '<td class="n">' + fmt(q.reserved) + '</td><td class="n hide-s">' + fmt(q.delayed) +
          '</td><td class="n">' + fmt(q.dead) + '</td>' +
          '<td class="n hide-s">' + (pr == null ? '—' : fmt(pr)) + '</td>' +
          '<td class="n hide-s">' + (dr == null ? '—' : fmt(dr)) + '</td><td>' +
          '<button type="button" data-q="' + n + '" data-act="' + (q.paused ? 'resume' : 'pause') +
          '">' + (q.paused ? 'Resume' : 'Pause') + '</button> ' +
          '<button type="button" data-q="' + n + '" data-act="save">Save</button> ' +
          (q.name === 'default' ? '' : '<button type="button" class="danger" data-q="' + n +
           '" data-act="destroy">Destroy</button>') + '</td></tr>';
      }).join(''));
  };

  build.workers = function () {
    $('main').innerHTML = '<div class="panel" id="pool"><h2>worker-pool ' +
      '<span id="p-url" class="muted"></span></h2><div class="cards" id="p-cards"></div>' +
      '<p id="p-error" class="bad"></p></div>' +
      '<div class="panel"><h2>Workers</h2><table id="w-table"></table></div>';
  };
  /* worker-pool's own state (GET /v1/pool: its pool.status, asked by the broker). */
  function renderPool() {
    var p = S.pool;
    if (!p) { return; }
    $('p-url').textContent = p.url ? '(' + p.url + ')' : '';
    $('p-error').textContent = p.reachable ? '' : (p.error || '');
    if (!p.reachable) {
      setHTML($('p-cards'), card('reachable', 'control socket reached', 'no', 'bad'));
      return;
    }
    var ws = p.workers || [], states = {}, restarts = 0, serving = 0, running = 0;
    ws.forEach(function (w) {
      if (w.pid > 0) { running++; }
      states[w.state] = (states[w.state] || 0) + 1;
      restarts += w.restarts || 0;
      if (w.state === 'idle' || w.state === 'busy') { serving++; }
    });
    var other = Object.keys(states).sort().filter(function (k) {
      return k !== 'idle' && k !== 'busy';
    }).map(function (k) { return states[k] + ' ' + k; }).join(', ');
    setHTML($('p-cards'), card('reachable', 'control socket reached', 'yes', 'ok') +
      card('wanted', 'workers wanted', fmt(p.n)) +
      card('running', 'workers running', fmt(running)) +
      card('serving', 'serving (idle or busy)', fmt(serving), serving < p.n ? 'warn' : '') +
      card('restarts', 'restarts', fmt(restarts), restarts > 0 ? 'warn' : '') +
      card('other', 'starting, draining, ...', esc(other || 'none'), other ? 'warn' : ''));
  }
  rend.workers = function () {
    renderPool();
    var ws = S.stats.workers;
    setHTML($('w-table'), '<tr><th>worker</th><th class="n">pid</th><th>state</th>' +
      '<th>current job</th><th class="n">running for</th><th class="n">jobs done</th>' +
      '<th class="n hide-s">memory</th><th class="n hide-s">up</th><th class="hide-s">host</th>' +
      '</tr>' + (ws.map(function (w) {
        /* worker-pool names its workers HOST:PID:SLOT: the host is read from there. */
        var m = /^(.+):\d+:\d+$/.exec(w.id), host = m ? m[1] : '—';
        return '<tr data-w="' + esc(w.id) + '"><td>' + esc(w.id) + '</td><td class="n">' +
          (w.pid || '—') + '</td><td class="' + (w.state === 'busy' ? 'ok' : 'muted') + '">' +
          esc(w.state) + '</td><td>' + (w.current ? '#' + w.current +
          (w.current_group ? ' (' + esc(w.current_group) + ')' : '') : '—') + '</td>' +
          '<td class="n">' + ms(w.current_ms) + '</td><td class="n" data-k="jobs">' +
          fmt(w.jobs) + '</td><td class="n hide-s">' + bytes(w.rss_bytes) + '</td>' +
          '<td class="n hide-s">' + ms(w.uptime_s * 1000) + '</td><td class="hide-s">' +
          esc(host) + '</td></tr>';
      }).join('') || '<tr><td colspan="9" class="muted">no worker connected</td></tr>'));
  };

  build.router = function () {
    $('main').innerHTML = '<div class="cards" id="r-cards"></div>' +
      '<div class="panel"><h2>Live route changes <span id="r-live" class="muted"></span></h2>' +
      '<table id="r-events"></table></div>' +
      '<div class="panel"><h2>Last decisions (broker)</h2><table id="r-dec"></table></div>';
    startEvents();
  };
  rend.router = function () {
    var l = S.stats.leader;
    setHTML($('r-cards'), card('leader', 'leader', l ? esc(l.name) : 'none', l ? 'ok' : 'warn') +
      card('lease', 'lease', l ? fmt(l.lease) : '—') +
      card('expires', 'lease ends in', l ? ms(l.expires_ms) : '—'));
    setHTML($('r-dec'), '<tr><th>when</th><th>group</th><th>queue</th><th class="n">moved</th>' +
      '<th>reason</th><th class="n hide-s">lease</th></tr>' +
      ((S.stats.decisions || []).map(function (d) {
        return '<tr><td>' + new Date(d.ts_ms).toLocaleTimeString() + '</td><td>' +
          esc(d.group) + '</td><td>' + esc(d.queue || 'default (unset)') + '</td><td class="n">' +
          fmt(d.moved) + '</td><td>' + esc(d.reason || '') + '</td><td class="n hide-s">' +
          (d.lease == null ? '—' : d.lease) + '</td></tr>';
      }).join('') || '<tr><td colspan="6" class="muted">no route change yet</td></tr>'));
    renderEvents();
  };
  function renderEvents() {
    if (!$('r-events')) { return; }
    $('r-live').textContent = '(' + S.evState + ')';
    setHTML($('r-events'), '<tr><th>when</th><th>event</th><th>group</th><th>queue</th>' +
      '<th>reason</th></tr>' + (S.events.map(function (e) {
        return '<tr><td>' + (e.ts_ms ? new Date(e.ts_ms).toLocaleTimeString() : '') + '</td><td>' +
          esc(e.event) + '</td><td>' + esc(e.group || '') + '</td><td>' + esc(e.queue || '') +
          '</td><td>' + esc(e.reason || '') + '</td></tr>';
      }).join('') || '<tr><td colspan="5" class="muted">waiting for the router\'s next ' +
        'decision…</td></tr>'));
  }
  /* /v1/events through fetch (EventSource cannot send the token); reconnects after 3 s. */
  function startEvents() {
    stopEvents();
    var ctl = new AbortController();
    S.evAbort = ctl;
    S.evState = 'connecting';
    var h = token ? { Authorization: 'Bearer ' + token } : {};
    fetch('/v1/events', { headers: h, signal: ctl.signal, cache: 'no-store' }).then(function (r) {
      if (!r.ok || !r.body) { throw new Error('status ' + r.status); }
      S.evState = 'live';
      renderEvents();
      var rd = r.body.getReader(), dec = new TextDecoder(), buf = '';
      function pump() {
        return rd.read().then(function (x) {
          if (x.done) { throw new Error('closed'); }
          buf += dec.decode(x.value, { stream: true });
          var i;
          while ((i = buf.indexOf('\n\n')) >= 0) {
            var block = buf.slice(0, i);
            buf = buf.slice(i + 2);
            var data = block.split('\n').filter(function (l) { return l.indexOf('data: ') === 0; })
              .map(function (l) { return l.slice(6); }).join('\n');
            if (!data) { continue; }
            try {
              var e = JSON.parse(data);
              if (/^route\.|^routes\.|^lease\./.test(e.event || '')) {
                S.events.unshift(e);
                S.events.length = Math.min(S.events.length, 50);
                renderEvents();
              }
            } catch (err) { /* not JSON: skip */ }
          }
          return pump();
        });
      }
      return pump();
    }).catch(function () {
      if (S.evAbort !== ctl) { return; }
      S.evState = 'reconnecting';
      renderEvents();
      S.evRetry = setTimeout(function () { if (S.evAbort === ctl) { startEvents(); } }, 3000);
    });
  }
  function stopEvents() {
    clearTimeout(S.evRetry);
    if (S.evAbort) { S.evAbort.abort(); S.evAbort = null; }
    S.evState = 'off';
  }

  function deadRows(jobs, pick) {
    return '<tr>' + (pick ? '<th><input type="checkbox" id="d-all" title="all"></th>' : '') +
      '<th class="n">id</th><th>group</th><th>queue</th><th class="n">attempts</th>' +
      '<th>error</th><th>payload</th>' + (pick ? '<th></th>' : '') + '</tr>' +
      (jobs.map(function (j) {
        var p = j.payload != null ? j.payload : (j.payload_b64 != null ? '(base64) ' + j.payload_b64 : '');
        var er = j.error ? j.error.class + ': ' + j.error.text : '';
        return '<tr data-id="' + j.id + '">' + (pick ? '<td><input type="checkbox" data-id="' +
          j.id + '"' + (S.sel[j.id] ? ' checked' : '') + '></td>' : '') +
          '<td class="n">' + j.id + '</td><td>' + esc(j.group) + '</td><td>' + esc(j.queue) +
          '</td><td class="n">' + fmt(j.attempts) + '</td><td class="pre">' + esc(er) +
          '</td><td class="pre">' + esc(String(p).slice(0, 120)) + '</td>' +
          (pick ? '<td><button type="button" data-act="retry" data-id="' + j.id + '">Retry</button> ' +
           '<button type="button" class="danger" data-act="purge" data-id="' + j.id +
           '">Purge</button></td>' : '') + '</tr>';
      }).join('') || '<tr><td colspan="8" class="muted">no dead job</td></tr>');
  }
  build.dead = function () {
    $('main').innerHTML = '<div class="panel"><div class="row">' +
      '<input id="d-group" placeholder="group (all)" value="' + esc(S.deadGroup) + '">' +
      '<button type="button" data-act="retry-sel">Retry selected</button>' +
      '<button type="button" class="danger" data-act="purge-sel">Purge selected</button>' +
      '<button type="button" data-act="retry-group">Retry all of the group</button>' +
      '<button type="button" class="danger" data-act="purge-group">Purge all of the group</button>' +
      '<span id="d-info" class="muted"></span></div><table id="d-table"></table></div>';
    var ft;
    $('d-group').addEventListener('input', function () {
      var v = this.value.trim();
      clearTimeout(ft);
      ft = setTimeout(function () { S.deadGroup = v; S.sel = {}; tick(); }, 300);
    });
    $('main').addEventListener('change', function (ev) {
      var t = ev.target;
      if (t.id === 'd-all') {
        (S.dead.jobs || []).forEach(function (j) { if (t.checked) { S.sel[j.id] = true; } else { delete S.sel[j.id]; } });
        rend.dead();
      } else if (t.getAttribute('data-id')) {
        if (t.checked) { S.sel[t.getAttribute('data-id')] = true; } else { delete S.sel[t.getAttribute('data-id')]; }
      }
    });
    $('main').addEventListener('click', function (ev) {
      var b = ev.target.closest('button');
      if (!b) { return; }
      var a = b.getAttribute('data-act'), id = b.getAttribute('data-id');
      var ids = Object.keys(S.sel).map(Number);
      var run = function (what, op, body) {
        S.sel = {};
        act(what, api('POST', '/v1/dead/' + op, body));
      };
      if (a === 'retry' || a === 'purge') {
        run(a + ' #' + id, a, { ids: [+id] });
      } else if (a === 'retry-sel' || a === 'purge-sel') {
        if (ids.length) { run(a.slice(0, 5) + ' ' + ids.length + ' jobs', a.slice(0, 5), { ids: ids }); }
        else { toast('select jobs first'); }
      } else if (a === 'retry-group' || a === 'purge-group') {
        if (!S.deadGroup) { toast('give a group first'); return; }
        if (a === 'purge-group' && b.getAttribute('data-sure') !== '1') {
          b.setAttribute('data-sure', '1');
          b.textContent = 'Sure? purge all of ' + S.deadGroup;
          return;
        }
        if (a === 'purge-group') {
          b.removeAttribute('data-sure');
          b.textContent = 'Purge all of the group';
        }
        run(a.slice(0, 5) + ' all of ' + S.deadGroup, a.slice(0, 5), { group: S.deadGroup });
      }
    });
  };
  rend.dead = function () {
    var d = S.dead;
    if (!d) { return; }
    setHTML($('d-table'), deadRows(d.jobs || [], true));
    $('d-info').textContent = d.missing ? 'no such group' : (d.total || 0) + ' dead' +
      (d.more ? ' (first ' + d.jobs.length + ' shown)' : '');
    $('d-info').setAttribute('data-total', String(d.total || 0));
    $('d-info').setAttribute('data-group', S.deadGroup);
  };

  shell();
  window.addEventListener('hashchange', route);
  window.addEventListener('resize', function () { render(); });
  route();
})();
