/* explain_page.js - the views of the attention explorer page, in plain
 * JavaScript with no library and no network access. The data is the JSON
 * of <script id="attn-data"> (written by explain_page.c; its form is in
 * docs/explain.md): token sequences, attention groups of layers x heads of
 * weights [n_q, n_k] (base64 float32), and derived maps (rollout,
 * relevance) with their attributions.
 *
 * Views: the head view (query tokens left, key tokens right, one line per
 * weight of at least LINE_MIN with that weight as its opacity; all heads
 * in their colours; hovering or focusing a token keeps only its lines),
 * the model view (every layer x head as a small heatmap; a click opens it
 * in the head view) and the matrix view (a heatmap with labels and the
 * exact value under the pointer or the keyboard cursor). The mode switches
 * between the raw weights, attention rollout and relevance. */
(function () {
  'use strict';

  var D = JSON.parse(document.getElementById('attn-data').textContent);
  var LINE_MIN = 0.01; /* lines below this opacity are not drawn */
  var SVG = 'http://www.w3.org/2000/svg';
  /* viridis at k/9, the ramp of the PNG maps (attn/viz.h) */
  var RAMP = [[68, 1, 84], [72, 40, 120], [62, 74, 137], [49, 104, 142], [38, 130, 142],
              [31, 158, 137], [53, 183, 121], [109, 205, 89], [180, 222, 44], [253, 231, 37]];
  var MODES = {
    raw: 'raw attention weights',
    rollout: 'attention rollout',
    relevance: 'gradient-weighted relevance'
  };

  /* ---- data ------------------------------------------------------------------------ */

  function floats(b64) {
    if (b64 === null) return null;
    var bin = atob(b64), view = new DataView(new ArrayBuffer(bin.length));
    for (var i = 0; i < bin.length; i++) view.setUint8(i, bin.charCodeAt(i));
    var out = new Float32Array(bin.length / 4);
    for (var k = 0; k < out.length; k++) out[k] = view.getFloat32(4 * k, true);
    return out;
  }

  D.groups.forEach(function (g) {
    g.nq = D.seqs[g.q].tokens.length;
    g.nk = D.seqs[g.k].tokens.length;
    g.values = floats(g.w);
  });
  D.maps.forEach(function (m) {
    m.values = floats(m.m);
    m.attrs = floats(m.attr);
  });

  /* weights [nq * nk] of one layer and head */
  function plane(gi, layer, head) {
    var g = D.groups[gi], size = g.nq * g.nk, at = (layer * g.heads + head) * size;
    return g.values.subarray(at, at + size);
  }

  function headMean(gi, layer) {
    var g = D.groups[gi], out = new Float32Array(g.nq * g.nk);
    for (var h = 0; h < g.heads; h++) {
      var p = plane(gi, layer, h);
      for (var e = 0; e < out.length; e++) out[e] += p[e] / g.heads;
    }
    return out;
  }

  function findMap(gi, kind, target) {
    for (var i = 0; i < D.maps.length; i++) {
      var m = D.maps[i];
      if (m.group === gi && m.kind === kind && (kind === 'rollout' || m.target === target)) return m;
    }
    return null;
  }

  function targetsOf(gi) {
    return D.maps.filter(function (m) { return m.group === gi && m.kind === 'relevance'; })
      .map(function (m) { return m.target; });
  }

  function maxOf(a) {
    var mx = 0;
    for (var i = 0; i < a.length; i++) if (a[i] > mx) mx = a[i];
    return mx;
  }

  /* ---- state ---------------------------------------------------------------------------- */

  var S = { view: 'head', mode: 'raw', group: D.start.group, layer: D.start.layer,
            head: D.start.head, target: -1 };

  /* What the head and matrix views show: values [nq * nk], the scale that
     maps them to [0, 1], attributions (or null) and a label. */
  function current() {
    var g = D.groups[S.group];
    if (S.mode === 'raw') {
      if (S.head === 'all')
        return { values: headMean(S.group, S.layer), scale: 1, attrs: null,
                 label: 'layer ' + S.layer + ', mean of ' + g.heads + ' heads' };
      return { values: plane(S.group, S.layer, S.head), scale: 1, attrs: null,
               label: 'layer ' + S.layer + ', head ' + S.head };
    }
    var m = findMap(S.group, S.mode, S.target);
    var mx = maxOf(m.values);
    return { values: m.values, scale: mx > 0 ? mx : 1, attrs: m.attrs,
             label: MODES[S.mode] + (m.target >= 0 ? ' of ' + D.targets[m.target] : '') };
  }

  /* ---- elements ------------------------------------------------------------------------- */

  function el(tag, attrs, parent, text) {
    var e = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { e.setAttribute(k, attrs[k]); });
    if (text !== undefined) e.textContent = text;
    if (parent) parent.appendChild(e);
    return e;
  }

  function sv(tag, attrs, parent, text) {
    var e = document.createElementNS(SVG, tag);
    Object.keys(attrs || {}).forEach(function (k) { e.setAttribute(k, attrs[k]); });
    if (text !== undefined) e.textContent = text;
    if (parent) parent.appendChild(e);
    return e;
  }

  function $(id) { return document.getElementById(id); }

  function headColour(h, n) {
    return n === 1 ? '#3b5ba5' : 'hsl(' + Math.round(360 * h / n) + ', 70%, 42%)';
  }

  function ramp(t) {
    t = t < 0 ? 0 : t > 1 ? 1 : t;
    var pos = t * 9, i = pos >= 9 ? 8 : Math.floor(pos), f = pos - i;
    return RAMP[i].map(function (c, k) { return Math.round(c + f * (RAMP[i + 1][k] - c)); });
  }

  function fmt(v) {
    return Number(v.toPrecision(9)).toString();
  }

  /* A token as drawn: one made only of white space shows each character
     as an open box, so that it stays visible. */
  function shown(t) {
    return /^\s*$/.test(t) ? t.replace(/[\s\S]/g, '\u2423') || '\u2423' : t;
  }

  /* ---- the page's frame ------------------------------------------------------------------- */

  function buildFrame() {
    var app = $('app');
    var header = el('header', {}, app);
    el('h1', { id: 'title' }, header, D.title);
    var notes = el('ul', { id: 'notes' }, header);
    D.notes.forEach(function (n) {
      el('li', /truncat|cap/i.test(n) ? { class: 'warn' } : {}, notes, n);
    });

    var bar = el('div', { class: 'controls' }, app);
    var tabs = el('div', { role: 'tablist', 'aria-label': 'View', id: 'views' }, bar);
    [['head', 'Head view'], ['model', 'Model view'], ['matrix', 'Matrix view']].forEach(function (v) {
      var b = el('button', { role: 'tab', id: 'tab-' + v[0], 'aria-controls': 'view-' + v[0],
                             type: 'button' }, tabs, v[1]);
      b.addEventListener('click', function () { setView(v[0]); });
    });
    tabs.addEventListener('keydown', tabKeys);

    var mode = el('fieldset', { id: 'mode' }, bar);
    el('legend', {}, mode, 'Mode');
    Object.keys(MODES).forEach(function (k) {
      var lab = el('label', {}, mode);
      var r = el('input', { type: 'radio', name: 'mode', value: k, id: 'mode-' + k }, lab);
      el('span', {}, lab, ' ' + k);
      r.addEventListener('change', function () { if (r.checked) { S.mode = k; update(); } });
    });

    selector(bar, 'sel-group', 'Attention', function (v) { S.group = v; groupChanged(); });
    selector(bar, 'sel-layer', 'Layer', function (v) { S.layer = v; update(); });
    selector(bar, 'sel-head', 'Head', function (v) { S.head = v; update(); });
    selector(bar, 'sel-target', 'Explained output', function (v) { S.target = v; update(); });
    fill($('sel-group'), D.groups.map(function (g, i) { return [i, g.name]; }));

    el('p', { id: 'caption', 'aria-live': 'polite' }, app);
    el('p', { id: 'explain' }, app);
    var head = el('section', { id: 'view-head', role: 'tabpanel', 'aria-labelledby': 'tab-head' }, app);
    sv('svg', { id: 'head-svg', role: 'img' }, head);
    var model = el('section', { id: 'view-model', role: 'tabpanel', 'aria-labelledby': 'tab-model' }, app);
    el('p', { id: 'model-note' }, model);
    el('div', { id: 'model-grid' }, model);
    var matrix = el('section', { id: 'view-matrix', role: 'tabpanel', 'aria-labelledby': 'tab-matrix' }, app);
    var wrap = el('div', { id: 'matrix-wrap' }, matrix);
    var canvas = el('canvas', { id: 'matrix-canvas', tabindex: '0',
                                'aria-label': 'heatmap: arrow keys move the cursor' }, wrap);
    el('div', { id: 'tooltip', role: 'status', hidden: '' }, wrap);
    el('p', { id: 'matrix-legend' }, matrix);
    canvas.addEventListener('mousemove', matrixHover);
    canvas.addEventListener('mouseleave', function () { $('tooltip').hidden = true; });
    canvas.addEventListener('keydown', matrixKeys);
  }

  function selector(parent, id, text, onChange) {
    var lab = el('label', { for: id }, parent, text);
    var s = el('select', { id: id }, lab);
    s.addEventListener('change', function () {
      onChange(s.value === 'all' ? 'all' : parseInt(s.value, 10));
    });
  }

  /* options: [value, text] pairs */
  function fill(select, options) {
    select.textContent = '';
    options.forEach(function (o) { el('option', { value: String(o[0]) }, select, o[1]); });
  }

  /* WAI-ARIA tabs: arrows, Home and End move to a tab and open it. */
  function tabKeys(ev) {
    var order = ['head', 'model', 'matrix'], i = order.indexOf(S.view);
    var next = { ArrowRight: i + 1, ArrowLeft: i - 1, Home: 0, End: 2 }[ev.key];
    if (next === undefined) return;
    ev.preventDefault();
    setView(order[(next + 3) % 3]);
    $('tab-' + S.view).focus();
  }

  function setView(v) {
    S.view = v;
    update();
  }

  function groupChanged() {
    var g = D.groups[S.group];
    S.layer = Math.min(S.layer, g.layers - 1);
    if (S.head !== 'all') S.head = Math.min(S.head, g.heads - 1);
    update();
  }

  /* Keeps the selectors, modes and tabs in step with S, then draws. */
  function syncControls() {
    var g = D.groups[S.group], targets = targetsOf(S.group);
    var has = { raw: true, rollout: findMap(S.group, 'rollout', -1) !== null,
                relevance: targets.length > 0 };
    if (!has[S.mode]) S.mode = 'raw';
    if (targets.indexOf(S.target) < 0) S.target = targets.length ? targets[0] : -1;
    Object.keys(MODES).forEach(function (k) {
      var r = $('mode-' + k);
      r.disabled = !has[k];
      r.checked = S.mode === k;
      r.parentNode.title = has[k] ? '' : 'not available for ' + g.name;
    });
    $('sel-group').value = String(S.group);
    var layers = [], heads = [['all', 'all heads']];
    for (var l = 0; l < g.layers; l++) layers.push([l, String(l)]);
    for (var h = 0; h < g.heads; h++) heads.push([h, String(h)]);
    fill($('sel-layer'), layers);
    fill($('sel-head'), heads);
    fill($('sel-target'), targets.map(function (t) { return [t, D.targets[t]]; }));
    $('sel-layer').value = String(S.layer);
    $('sel-head').value = String(S.head);
    $('sel-target').value = String(S.target);
    var raw = S.mode === 'raw';
    $('sel-layer').disabled = !raw;
    $('sel-head').disabled = !raw;
    $('sel-target').disabled = S.mode !== 'relevance';
    ['head', 'model', 'matrix'].forEach(function (v) {
      var t = $('tab-' + v);
      t.setAttribute('aria-selected', String(S.view === v));
      t.tabIndex = S.view === v ? 0 : -1;
      $('view-' + v).hidden = S.view !== v;
    });
  }

  function describe() {
    var g = D.groups[S.group], cur = current();
    $('caption').textContent = g.name + ' (' + D.seqs[g.q].name + ' \u2192 ' + D.seqs[g.k].name +
      ') \u00b7 ' + (S.mode === 'raw' ? MODES.raw + ', ' : '') + cur.label;
    var how = {
      head: 'Each line joins a query token (left) to a key token (right); its opacity is the ' +
            (S.mode === 'raw' ? 'attention weight' : 'value over the largest value') +
            '. Lines below ' + LINE_MIN + ' are not drawn. Hover or focus a token to keep only ' +
            'its lines.' + (S.mode === 'raw' && S.head === 'all' ? ' Colours are heads.' : ''),
      model: '',
      matrix: 'Rows are query tokens, columns key tokens; the colour runs from 0 (dark) to the ' +
              'largest value (yellow). Hover a cell, or focus the map and use the arrow keys, ' +
              'for its exact value.'
    }[S.view];
    var what = {
      raw: '',
      rollout: ' Attention rollout (Abnar & Zuidema 2020): the product over layers of ' +
               '0.5 A + 0.5 I (A averaged over heads, rows normalised): how much of each token ' +
               'at the top of the stack comes from each input token.',
      relevance: ' Gradient-weighted relevance (Chefer et al. 2021): per layer the head mean ' +
                 'of the positive part of grad(A) \u00d7 A for the explained output, ' +
                 'accumulated across layers like rollout.'
    }[S.mode];
    var text = how + what + (S.mode !== 'raw' && S.view === 'head'
      ? ' The shading behind the key tokens is their attribution.' : '');
    $('explain').textContent = text;
    $('model-note').textContent = 'Every layer (rows) and head (columns) of ' + g.name +
      ', raw weights, each on its own colour scale from 0 to its largest weight. ' +
      'Click one (or press Enter on it) to open it in the head view.';
  }

  function update() {
    syncControls();
    describe();
    if (S.view === 'head') drawHead();
    else if (S.view === 'model') drawModel();
    else drawMatrix();
  }

  /* ---- the head view ----------------------------------------------------------------------- */

  var ROW = 20, TOP = 34, XQ = 210, XK = 520;

  function drawHead() {
    var svg = $('head-svg'), g = D.groups[S.group];
    var qt = D.seqs[g.q].tokens, kt = D.seqs[g.k].tokens;
    svg.textContent = '';
    var swatches = S.mode === 'raw' && S.head === 'all' ? g.heads : 0;
    var height = TOP + Math.max(qt.length, kt.length, swatches) * ROW + 10;
    svg.setAttribute('width', XK + 300);
    svg.setAttribute('height', height);
    svg.setAttribute('aria-label', 'head view of ' + g.name);
    sv('text', { x: XQ, y: 16, 'text-anchor': 'end', class: 'axis' }, svg, 'query: ' + D.seqs[g.q].name);
    sv('text', { x: XK, y: 16, class: 'axis' }, svg, 'key: ' + D.seqs[g.k].name);
    var edges = sv('g', { id: 'edges' }, svg);
    if (S.mode === 'raw' && S.head === 'all') {
      for (var h = 0; h < g.heads; h++)
        drawEdges(edges, plane(S.group, S.layer, h), 1, g, h, headColour(h, g.heads));
    } else {
      var cur = current();
      drawEdges(edges, cur.values, cur.scale, g, S.mode === 'raw' ? S.head : -1,
                S.mode === 'raw' ? headColour(S.head, g.heads) : '#3b5ba5');
      if (cur.attrs) drawAttributions(svg, cur.attrs, kt.length);
    }
    for (var k = 0; k < swatches; k++) {
      sv('rect', { x: XK + 210, y: TOP + k * ROW - 12, width: 12, height: 12,
                   fill: headColour(k, g.heads) }, svg);
      sv('text', { x: XK + 228, y: TOP + k * ROW - 2, class: 'axis' }, svg, 'head ' + k);
    }
    qt.forEach(function (t, i) { token(svg, 'q', i, XQ, t); });
    kt.forEach(function (t, j) { token(svg, 'k', j, XK, t); });
  }

  function drawEdges(parent, values, scale, g, head, colour) {
    for (var i = 0; i < g.nq; i++)
      for (var j = 0; j < g.nk; j++) {
        var o = values[i * g.nk + j] / scale;
        if (!(o >= LINE_MIN)) continue;
        sv('line', { class: 'edge', x1: XQ + 8, y1: TOP + i * ROW - 4, x2: XK - 8,
                     y2: TOP + j * ROW - 4, stroke: colour, 'stroke-opacity': o.toFixed(4),
                     'data-i': i, 'data-j': j, 'data-h': head }, parent);
      }
  }

  function drawAttributions(svg, attrs, nk) {
    var mx = 0;
    for (var j = 0; j < nk; j++) mx = Math.max(mx, Math.abs(attrs[j]));
    for (var k = 0; k < nk; k++) {
      var r = sv('rect', { class: 'attr', x: XK - 4, y: TOP + k * ROW - 17, width: 200,
                           height: ROW - 2, 'fill-opacity': mx > 0 ? (Math.abs(attrs[k]) / mx).toFixed(4) : 0,
                           'data-j': k }, svg);
      sv('title', {}, r, 'attribution ' + fmt(attrs[k]));
    }
  }

  function token(svg, side, idx, x, text) {
    var t = sv('text', { x: x, y: TOP + idx * ROW, class: 'tok tok-' + side, tabindex: '0',
                         'text-anchor': side === 'q' ? 'end' : 'start' }, svg, shown(text));
    t.setAttribute(side === 'q' ? 'data-i' : 'data-j', idx);
    var on = function () { isolate(side === 'q' ? 'i' : 'j', idx); };
    var off = function () { isolate(null, null); };
    t.addEventListener('mouseenter', on);
    t.addEventListener('focus', on);
    t.addEventListener('mouseleave', off);
    t.addEventListener('blur', off);
  }

  /* Keeps only the lines of token idx on side ('i' query, 'j' key); null: all. */
  function isolate(side, idx) {
    var lines = $('edges').querySelectorAll('line');
    for (var n = 0; n < lines.length; n++) {
      var l = lines[n];
      l.classList.toggle('hidden', side !== null && Number(l.getAttribute('data-' + side)) !== idx);
    }
  }

  /* ---- the model view ------------------------------------------------------------------------ */

  function paint(canvas, values, nq, nk) {
    canvas.width = nk;
    canvas.height = nq;
    var ctx = canvas.getContext('2d'), img = ctx.createImageData(nk, nq), mx = maxOf(values);
    for (var e = 0; e < nq * nk; e++) {
      var c = ramp(mx > 0 ? values[e] / mx : 0);
      img.data[4 * e] = c[0];
      img.data[4 * e + 1] = c[1];
      img.data[4 * e + 2] = c[2];
      img.data[4 * e + 3] = 255;
    }
    ctx.putImageData(img, 0, 0);
  }

  function drawModel() {
    var grid = $('model-grid'), g = D.groups[S.group];
    grid.textContent = '';
    grid.style.gridTemplateColumns = '70px repeat(' + g.heads + ', 76px)';
    el('div', { class: 'axis' }, grid, '');
    for (var h = 0; h < g.heads; h++) el('div', { class: 'axis' }, grid, 'head ' + h);
    for (var l = 0; l < g.layers; l++) {
      el('div', { class: 'axis' }, grid, 'layer ' + l);
      for (var k = 0; k < g.heads; k++) thumb(grid, g, l, k);
    }
  }

  function thumb(grid, g, layer, head) {
    var current = S.mode === 'raw' && S.layer === layer && S.head === head;
    var b = el('button', { type: 'button', class: 'thumb' + (current ? ' current' : ''),
                           'data-layer': layer, 'data-head': head,
                           'aria-label': 'layer ' + layer + ', head ' + head }, grid);
    paint(el('canvas', {}, b), plane(S.group, layer, head), g.nq, g.nk);
    b.addEventListener('click', function () {
      S.layer = layer;
      S.head = head;
      S.mode = 'raw';
      setView('head');
      $('tab-head').focus();
    });
  }

  /* ---- the matrix view ------------------------------------------------------------------------ */

  var M = null; /* the drawn matrix: geometry, values and the keyboard cursor */

  function drawMatrix() {
    var canvas = $('matrix-canvas'), g = D.groups[S.group], cur = current();
    var qt = D.seqs[g.q].tokens, kt = D.seqs[g.k].tokens;
    var cell = Math.max(3, Math.min(28, Math.floor(640 / Math.max(g.nq, g.nk))));
    var ctx = canvas.getContext('2d');
    ctx.font = '12px system-ui, sans-serif';
    var widest = function (ts) {
      return Math.min(180, Math.max.apply(null, ts.map(function (t) { return ctx.measureText(shown(t)).width; })));
    };
    var attrRows = cur.attrs ? 2 : 0;
    var left = Math.max(widest(qt), cur.attrs ? widest(['attribution']) : 0) + 20;
    var top = widest(kt) + 16;
    var w = left + g.nk * cell + 20, h = top + (g.nq + attrRows) * cell + 20;
    var dpr = window.devicePixelRatio || 1;
    canvas.width = Math.round(w * dpr);
    canvas.height = Math.round(h * dpr);
    canvas.style.width = w + 'px';
    canvas.style.height = h + 'px';
    /* the grid's place in CSS pixels, for tools that read the page */
    canvas.setAttribute('data-left', left);
    canvas.setAttribute('data-top', top);
    canvas.setAttribute('data-cell', cell);
    ctx = canvas.getContext('2d');
    ctx.scale(dpr, dpr);
    ctx.font = '12px system-ui, sans-serif';
    ctx.fillStyle = '#fff';
    ctx.fillRect(0, 0, w, h);
    var top_value = maxOf(cur.values) > 0 ? maxOf(cur.values) : 1; /* colours span 0 .. largest */
    for (var i = 0; i < g.nq; i++)
      for (var j = 0; j < g.nk; j++) {
        var c = ramp(cur.values[i * g.nk + j] / top_value);
        ctx.fillStyle = 'rgb(' + c.join(',') + ')';
        ctx.fillRect(left + j * cell, top + i * cell, cell, cell);
      }
    if (cur.attrs) drawAttrRow(ctx, cur.attrs, left, top + (g.nq + 1) * cell, cell);
    labels(ctx, qt, kt, left, top, cell);
    legend(top_value);
    M = { left: left, top: top, cell: cell, nq: g.nq, nk: g.nk, values: cur.values, qt: qt, kt: kt,
          label: cur.label, cursor: M && M.nq === g.nq && M.nk === g.nk ? M.cursor : [0, 0] };
    $('tooltip').hidden = true;
  }

  function drawAttrRow(ctx, attrs, left, y, cell) {
    var mx = 0;
    for (var j = 0; j < attrs.length; j++) mx = Math.max(mx, Math.abs(attrs[j]));
    for (var k = 0; k < attrs.length; k++) {
      var c = ramp(mx > 0 ? Math.abs(attrs[k]) / mx : 0);
      ctx.fillStyle = 'rgb(' + c.join(',') + ')';
      ctx.fillRect(left + k * cell, y, cell, cell);
    }
    ctx.fillStyle = '#202020';
    ctx.textAlign = 'right';
    ctx.textBaseline = 'middle';
    ctx.fillText('attribution', left - 6, y + cell / 2);
  }

  /* The colour bar under the matrix: 0 to the largest value. */
  function legend(topValue) {
    var bar = $('matrix-legend');
    bar.textContent = '';
    el('span', {}, bar, '0 ');
    var c = el('canvas', { width: 160, height: 12 }, bar);
    var ctx = c.getContext('2d');
    for (var x = 0; x < 160; x++) {
      ctx.fillStyle = 'rgb(' + ramp(x / 159).join(',') + ')';
      ctx.fillRect(x, 0, 1, 12);
    }
    el('span', {}, bar, ' ' + fmt(topValue) + ' (the largest value shown)');
  }

  /* Row labels left of the grid, column labels above it reading upwards;
     with small cells only every k-th label, so that none overlap. */
  function labels(ctx, qt, kt, left, top, cell) {
    var every = Math.max(1, Math.ceil(14 / cell));
    ctx.fillStyle = '#202020';
    ctx.textAlign = 'right';
    ctx.textBaseline = 'middle';
    for (var i = 0; i < qt.length; i += every) ctx.fillText(shown(qt[i]), left - 6, top + (i + 0.5) * cell, 174);
    ctx.save();
    ctx.translate(left, top - 6);
    ctx.rotate(-Math.PI / 2);
    ctx.textAlign = 'left';
    for (var j = 0; j < kt.length; j += every) ctx.fillText(shown(kt[j]), 0, (j + 0.5) * cell, 174);
    ctx.restore();
  }

  function showTip(i, j, x, y) {
    var tip = $('tooltip'), v = M.values[i * M.nk + j];
    tip.textContent = 'query ' + i + ' \u201c' + M.qt[i] + '\u201d \u2192 key ' + j + ' \u201c' +
      M.kt[j] + '\u201d\n' + M.label + ': ' + fmt(v);
    tip.setAttribute('data-i', i);
    tip.setAttribute('data-j', j);
    tip.setAttribute('data-value', String(v));
    tip.style.left = (x + 14) + 'px';
    tip.style.top = (y + 14) + 'px';
    tip.hidden = false;
    M.cursor = [i, j];
  }

  function matrixHover(ev) {
    var r = ev.target.getBoundingClientRect();
    var x = ev.clientX - r.left, y = ev.clientY - r.top;
    var i = Math.floor((y - M.top) / M.cell), j = Math.floor((x - M.left) / M.cell);
    if (i < 0 || j < 0 || i >= M.nq || j >= M.nk) {
      $('tooltip').hidden = true;
      return;
    }
    showTip(i, j, x, y);
  }

  function matrixKeys(ev) {
    var d = { ArrowUp: [-1, 0], ArrowDown: [1, 0], ArrowLeft: [0, -1], ArrowRight: [0, 1] }[ev.key];
    if (!d || !M) return;
    ev.preventDefault();
    var i = Math.min(M.nq - 1, Math.max(0, M.cursor[0] + d[0]));
    var j = Math.min(M.nk - 1, Math.max(0, M.cursor[1] + d[1]));
    showTip(i, j, M.left + (j + 0.5) * M.cell, M.top + (i + 0.5) * M.cell);
  }

  buildFrame();
  update();
})();
