// Draws the report's charts in the browser with ECharts (inlined in the page) from the JSON in
// #report-data (src/report/model.ts). Plain ES2020, no modules, no network. A click on an
// ownership bar lists that span's accesses; `#span=DEVICE:INDEX` in the address does the same.
(function () {
  'use strict';
  var data = JSON.parse(document.getElementById('report-data').textContent);
  var guests = data.guests;
  var COLORS = ['#4e79a7', '#f28e2b', '#59a14f', '#b07aa1', '#76b7b2', '#edc948', '#9c755f', '#bab0ac', '#ff9da7', '#e15759'];
  var colorOf = function (g) { return COLORS[g % COLORS.length]; };
  var ms = function (ns) { return ns / 1e6; };
  var human = function (ns) {
    if (ns >= 1e9) return (ns / 1e9).toFixed(2) + ' s';
    if (ns >= 1e6) return (ns / 1e6).toFixed(2) + ' ms';
    if (ns >= 1e3) return (ns / 1e3).toFixed(1) + ' µs';
    return Math.round(ns) + ' ns';
  };
  var esc = function (s) { return String(s).replace(/[&<>"']/g, function (c) { return '&#' + c.charCodeAt(0) + ';'; }); };
  var devices = {};
  data.devices.forEach(function (d) { devices[d.id] = d; });

  // Rows of the timeline, top to bottom: one per guest, the chart's unsafe spans, point events.
  var CHART_ROW = guests.length;
  var EVENT_ROW = guests.length + 1;
  var rows = guests.concat(['chart unsafe', 'events']);

  function bars(heightFraction) {
    return function (params, api) {
      var start = api.coord([api.value(0), api.value(2)]);
      var end = api.coord([api.value(1), api.value(2)]);
      var h = api.size([0, 1])[1] * heightFraction;
      var rect = echarts.graphic.clipRectByRect(
        { x: start[0], y: start[1] - h / 2, width: Math.max(1, end[0] - start[0]), height: h },
        { x: params.coordSys.x, y: params.coordSys.y, width: params.coordSys.width, height: params.coordSys.height }
      );
      return rect && { type: 'rect', transition: [], shape: rect, style: api.style() };
    };
  }

  function showSpan(deviceId, index) {
    var d = devices[deviceId];
    var box = document.querySelector('.span-accesses[data-device="' + CSS.escape(deviceId) + '"]');
    if (!d || !box || !d.spans[index]) return;
    var s = d.spans[index];
    var list = d.spanAccesses[index];
    var html = '<h4 data-span="' + index + '" data-span-accesses="' + list.length + '">' + esc(guests[s[2]] || '?') + ' owned ' + esc(deviceId) +
      ' from ' + human(s[0]) + ' for ' + human(s[1] - s[0]) + ': ' + d.spanTotals[index] + ' accesses' +
      (list.length < d.spanTotals[index] ? ' (the first ' + list.length + ' shown; muxvisor log show lists all)' : '') + '</h4>';
    html += '<table class="span"><tr><th>t</th><th>guest</th><th>register</th><th>dir</th><th>size×count</th><th>value</th><th>took</th><th>waited</th><th>chart after</th></tr>';
    list.forEach(function (a) {
      html += '<tr><td>' + human(a[0]) + '</td><td>' + esc(a[1]) + '</td><td>' + esc(a[2]) + '</td><td>' + a[3] + '</td><td>' + a[4] + '×' + a[5] +
        '</td><td>' + esc(a[6]) + '</td><td>' + human(a[7]) + '</td><td>' + (a[8] ? human(a[8]) : '') + '</td><td>' + esc(a[9]) + '</td></tr>';
    });
    box.innerHTML = html + '</table>';
  }

  function timeline(el, d) {
    var chart = echarts.init(el, null, { renderer: 'canvas' });
    var owned = d.spans.map(function (s, i) { return { value: [ms(s[0]), ms(s[1]), s[2], i], itemStyle: { color: colorOf(s[2]) } }; });
    var waits = d.waits.map(function (w) { return [ms(w[0]), ms(w[1]), w[2]]; });
    var unsafe = d.unsafe.map(function (u) { return [ms(u[0]), ms(u[1]), CHART_ROW]; });
    var point = function (xs) { return xs.map(function (m) { return [ms(m[0]), EVENT_ROW, m[1]]; }); };
    chart.setOption({
      animation: false,
      grid: { left: 110, right: 30, top: 30, bottom: 70 },
      tooltip: {
        formatter: function (p) {
          var v = p.value;
          if (p.seriesName === 'owned') return esc(guests[v[2]]) + ' owned it ' + human((v[1] - v[0]) * 1e6) + ' from ' + human(v[0] * 1e6) + ', ' + d.spanTotals[v[3]] + ' accesses (click to list)';
          if (p.seriesName === 'waiting') return esc(guests[v[2]]) + ' waited ' + human((v[1] - v[0]) * 1e6);
          if (p.seriesName === 'unsafe') return 'chart out of its safe states for ' + human((v[1] - v[0]) * 1e6);
          return p.seriesName + ' at ' + human(v[0] * 1e6) + (v[2] >= 0 ? ' (' + esc(guests[v[2]]) + ')' : '');
        },
      },
      legend: { top: 0, data: ['owned', 'waiting', 'unsafe', 'switch', 'reset', 'fault', 'irq'] },
      dataZoom: [
        { type: 'slider', xAxisIndex: 0, filterMode: 'weakFilter', bottom: 10 },
        { type: 'inside', xAxisIndex: 0, filterMode: 'weakFilter' },
      ],
      xAxis: { type: 'value', name: 'ms', scale: true, axisLabel: { formatter: function (v) { return v.toFixed(1); } } },
      yAxis: { type: 'category', data: rows, inverse: true },
      series: [
        { name: 'owned', type: 'custom', renderItem: bars(0.6), encode: { x: [0, 1], y: 2 }, data: owned },
        { name: 'waiting', type: 'custom', renderItem: bars(0.15), itemStyle: { color: '#999' }, encode: { x: [0, 1], y: 2 }, data: waits },
        { name: 'unsafe', type: 'custom', renderItem: bars(0.6), itemStyle: { color: '#e15759' }, encode: { x: [0, 1], y: 2 }, data: unsafe },
        { name: 'switch', type: 'scatter', symbol: 'triangle', symbolSize: 9, itemStyle: { color: '#333' }, data: point(d.marks.switch) },
        { name: 'reset', type: 'scatter', symbol: 'diamond', symbolSize: 12, itemStyle: { color: '#d00' }, data: point(d.marks.reset) },
        { name: 'fault', type: 'scatter', symbol: 'pin', symbolSize: 14, itemStyle: { color: '#900' }, data: point(d.marks.fault) },
        { name: 'irq', type: 'scatter', symbolSize: 4, large: true, itemStyle: { color: '#59a14f' }, data: point(d.marks.irq) },
      ],
    });
    chart.on('click', { seriesName: 'owned' }, function (p) { showSpan(d.id, p.value[3]); });
    return chart;
  }

  function shares(el, d) {
    var chart = echarts.init(el);
    chart.setOption({
      animation: false,
      grid: { left: 50, right: 20, top: 20, bottom: 30 },
      tooltip: {},
      xAxis: { type: 'category', data: guests },
      yAxis: { type: 'value', name: '%', max: 100 },
      series: [{ type: 'bar', data: d.shares.map(function (s, g) { return { value: +(s.share * 100).toFixed(2), itemStyle: { color: colorOf(g) } }; }) }],
    });
    return chart;
  }

  var BUCKETS = ['< 10 µs', '10-100 µs', '0.1-1 ms', '1-10 ms', '10-100 ms', '≥ 100 ms'];
  function waitChart(el, d) {
    var chart = echarts.init(el);
    chart.setOption({
      animation: false,
      grid: { left: 50, right: 20, top: 30, bottom: 30 },
      tooltip: {},
      legend: { top: 0, data: guests },
      xAxis: { type: 'category', data: BUCKETS },
      yAxis: { type: 'value', name: 'stalled accesses' },
      series: d.waitHistogram.map(function (counts, g) { return { name: guests[g], type: 'bar', data: counts, itemStyle: { color: colorOf(g) } }; }),
    });
    return chart;
  }

  var charts = [];
  document.querySelectorAll('.chart[data-chart]').forEach(function (el) {
    var d = devices[el.getAttribute('data-device')];
    var kind = el.getAttribute('data-chart');
    charts.push(kind === 'timeline' ? timeline(el, d) : kind === 'shares' ? shares(el, d) : waitChart(el, d));
    el.setAttribute('data-rendered', 'yes');
  });
  window.addEventListener('resize', function () { charts.forEach(function (c) { c.resize(); }); });
  var m = /^#span=([^:]+):(\d+)$/.exec(decodeURIComponent(location.hash));
  if (m) showSpan(m[1], Number(m[2]));
  window.muxReport = { showSpan: showSpan, data: data };
})();
