// Fenlei supervisors' dashboard (docs/dashboard.md). Plain JS, no libraries: everything is served
// by fenlei-server itself and nothing outside the machine is reached. Every text from the server
// goes through textContent (never innerHTML), so names and notes cannot inject markup, and through
// readable(), so they cannot reorder how a line reads either.
"use strict";

const TZ = "Asia/Shanghai";
const SVG_NS = "http://www.w3.org/2000/svg";
let session = null; // {user_id, name, role, csrf_token, expires_ms}

// ---------- small helpers

// Bidirectional controls (U+202A–U+202E, U+2066–U+2069, U+200E, U+200F, U+061C) change the order a
// line is shown in without changing what it holds: a note "满溢<U+202E>gpj.exe" would read
// "满溢exe.jpg". Text from the server is shown without them, as in the bulletins (docs/bulletins.md).
const BIDI_CONTROLS = /[\u061C\u200E\u200F\u202A-\u202E\u2066-\u2069]/g;
const readable = (text) => String(text).replace(BIDI_CONTROLS, "");
// Attributes a person reads (tooltips, alternative text); the others are links and data keys.
const SHOWN_ATTRS = new Set(["title", "alt", "aria-label", "placeholder"]);

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  setAttrs(el, attrs);
  append(el, children);
  return el;
}

function s(tag, attrs, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  setAttrs(el, attrs);
  append(el, children);
  return el;
}

function setAttrs(el, attrs) {
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? "" : SHOWN_ATTRS.has(k) ? readable(v) : String(v));
  }
}

function append(el, children) {
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(readable(c)));
  }
}

const fmtDateTime = (ms) =>
  ms == null ? "—" : new Date(ms).toLocaleString("zh-CN", { timeZone: TZ, hour12: false });
const fmtDate = (ms) =>
  new Date(ms).toLocaleDateString("zh-CN", { timeZone: TZ, month: "2-digit", day: "2-digit" });
const fmtNum = (x, digits = 2) => (x == null || Number.isNaN(x) ? "—" : Number(x).toFixed(digits));

/** Today's date (YYYY-MM-DD) in China Standard Time, where the bulletins are read. */
function todayCST() {
  return new Date(Date.now() + 8 * 3600e3).toISOString().slice(0, 10);
}

const STATUS = { draft: "草稿", submitted: "待审核", approved: "已通过", returned: "已退回" };
const KIND = {
  daily_patrol: "日常巡查", self_check: "属地自查", cross_check: "对调互查", special: "专项检查",
  follow_up: "复查", look_back: "回头看", unannounced: "明察暗访",
};
const BY = { community: "小区", street: "街道", district: "区/县" };
const PERIOD = { week: "周", month: "月" };
const ACTION = {
  create: "创建检查", answer: "记录评分", clear_answer: "清除评分", status: "状态变更", gps: "定位",
  evidence: "添加证据", remove_evidence: "删除证据", end: "结束检查", other: "其他",
};
const RECT_COLUMNS = [
  ["open", "待整改"], ["in_progress", "整改中"], ["submitted", "待销号审核"],
  ["reopened", "重新整改"], ["closed", "已销号"],
];

/** Grade class of a percentage score (the sample standard's bands: 90/80/60). */
function gradeClass(percent, vetoed) {
  if (vetoed) return "veto";
  if (percent == null) return "none";
  if (percent >= 90) return "excellent";
  if (percent >= 80) return "good";
  if (percent >= 60) return "pass";
  return "fail";
}
const GRADE_LABEL = {
  excellent: "优秀 ≥90", good: "良好 80–90", pass: "合格 60–80", fail: "不合格 <60",
  veto: "一票否决", none: "未检查",
};

// ---------- HTTP

class HttpError extends Error {
  constructor(status, body) {
    super((body && body.reason) || `HTTP ${status}`);
    this.status = status;
    this.body = body;
  }
}

/**
 * A JSON request with the session cookie; state-changing requests carry the CSRF token.
 * A 401 means the session ended: back to the sign-in form.
 */
async function api(path, options = {}) {
  const headers = { Accept: "application/json" };
  if (options.body !== undefined) headers["Content-Type"] = "application/json";
  if (options.method && options.method !== "GET" && session) headers["X-CSRF-Token"] = session.csrf_token;
  const resp = await fetch(path, {
    method: options.method || "GET",
    headers,
    body: options.body === undefined ? undefined : JSON.stringify(options.body),
    credentials: "same-origin",
  });
  let body = null;
  const text = await resp.text();
  try { body = text ? JSON.parse(text) : null; } catch { body = null; }
  if (resp.status === 401 && path !== "/v1/session") {
    session = null;
    showSignIn("登录已过期，请重新登录。");
  }
  if (!resp.ok) throw new HttpError(resp.status, body);
  return body;
}

/**
 * Whether an error means "this server has no such route" (a build without the route: axum's
 * plain 404/405 without the API's JSON error body), as opposed to the route's own answers.
 */
function routeMissing(err) {
  return err instanceof HttpError && (err.status === 404 || err.status === 405) &&
    !(err.body && typeof err.body.error === "string");
}

// ---------- sign-in

function showSignIn(message) {
  document.getElementById("app").hidden = true;
  document.getElementById("signin").hidden = false;
  const e = document.getElementById("signin-error");
  e.textContent = readable(message || "");
  e.hidden = !message;
  document.getElementById("signin-password").value = "";
}

function showApp() {
  document.getElementById("signin").hidden = true;
  document.getElementById("app").hidden = false;
  const role = session.role === "admin" ? "管理员" : "督导";
  document.getElementById("who").textContent = readable(`${session.name}（${role}）`);
  route();
}

async function signIn(ev) {
  ev.preventDefault();
  const button = document.getElementById("signin-submit");
  button.disabled = true;
  try {
    session = await api("/v1/session", {
      method: "POST",
      body: {
        user: document.getElementById("signin-user").value,
        password: document.getElementById("signin-password").value,
      },
    });
    if (!location.hash) location.hash = "#/rankings";
    showApp();
  } catch (err) {
    const msg = err.status === 401 ? "用户名或密码错误" :
      err.status === 403 ? "该账号不能登录督导平台（仅限督导和管理员）" :
      err.status === 429 ? (err.body && err.body.reason) || "尝试次数过多，请稍后再试" :
      `登录失败：${err.message}`;
    showSignIn(msg);
  } finally {
    button.disabled = false;
  }
}

async function signOut() {
  try { await api("/v1/session", { method: "DELETE" }); } catch { /* signed out either way */ }
  session = null;
  showSignIn("已退出登录。");
}

// ---------- routing

const VIEWS = {
  rankings: viewRankings,
  trend: viewTrend,
  map: viewMap,
  inspections: viewInspections,
  inspection: viewInspection,
  rectifications: viewRectifications,
};

let routeGeneration = 0;

function route() {
  if (!session) return;
  const [name, ...rest] = location.hash.replace(/^#\/?/, "").split("/");
  const view = VIEWS[name] ? name : "rankings";
  for (const a of document.querySelectorAll("[data-nav]")) {
    a.classList.toggle("active", a.dataset.nav === view || (view === "inspection" && a.dataset.nav === "inspections"));
  }
  const main = document.getElementById("view");
  // Each view renders into its own detached element and is shown only if no newer navigation
  // started meanwhile, so a slow answer never paints over the page the user moved on to.
  const generation = ++routeGeneration;
  const target = h("div", { class: "page" });
  main.replaceChildren(h("p", { class: "muted" }, "加载中…"));
  main.dataset.view = view;
  main.dataset.route = location.hash; // what the end-to-end tests wait on, with data-ready
  main.dataset.ready = "false";
  const rendered = (node) => {
    if (generation !== routeGeneration) return;
    main.replaceChildren(node);
    main.dataset.ready = "true";
  };
  VIEWS[view](target, rest.map((p) => decodeURIComponent(p.split("?")[0])))
    .then(() => rendered(target))
    .catch((err) => {
      if (err.status === 401) return;
      rendered(h("p", { class: "error", "data-testid": "view-error" }, `出错了：${err.message}`));
    });
}

// ---------- rankings

function hashParams() {
  const q = location.hash.split("?")[1] || "";
  return new URLSearchParams(q);
}

async function viewRankings(main) {
  const p = hashParams();
  const by = BY[p.get("by")] ? p.get("by") : "community";
  const period = PERIOD[p.get("period")] ? p.get("period") : "week";
  const at = /^\d{4}-\d{2}-\d{2}$/.test(p.get("at") || "") ? p.get("at") : todayCST();
  const data = await api(`/v1/rankings?by=${by}&period=${period}&at=${at}`);

  const go = (k, v) => {
    const q = new URLSearchParams({ by, period, at });
    q.set(k, v);
    location.hash = `#/rankings?${q}`;
  };
  const select = (id, options, value, key) => h("select", { id, onchange: (e) => go(key, e.target.value) },
    Object.entries(options).map(([k, label]) => h("option", { value: k, selected: k === value }, label)));

  const rows = data.rows || [];
  // The contract's newer fields (coverage, rectifications, grade counts) show when the server has them.
  const has = (f) => rows.some((r) => r[f] !== undefined);
  const GRADE_ORDER = ["优秀", "良好", "合格", "不合格"];
  const gradeNames = [...new Set(rows.flatMap((r) => Object.keys(r.grades || {})))]
    .sort((a, b) => ((GRADE_ORDER.indexOf(a) + 1) || 99) - ((GRADE_ORDER.indexOf(b) + 1) || 99));
  const headers = [
    ["排名", "num"], [BY[by], ""], ["检查次数", "num"], ["平均分(%)", "num"], ["最低分(%)", "num"], ["一票否决", "num"],
  ];
  if (has("coverage")) headers.push(["覆盖率", "num"]);
  if (has("open_rectifications")) headers.push(["待整改", "num"]);
  if (has("overdue_rectifications")) headers.push(["逾期整改", "num"]);
  if (has("grades")) headers.push(["等级分布", ""]);

  const table = h("table", { "data-testid": "rankings-table" },
    h("thead", {}, h("tr", {}, headers.map(([t, c]) => h("th", { class: c }, t)))),
    h("tbody", {}, rows.map((r) => {
      const cells = [
        h("td", { class: "num" }, r.rank),
        h("td", { "data-key": r.key }, by === "community" ? h("a", { href: `#/trend/${encodeURIComponent(r.key)}` }, r.name) : r.name || "（未填写）"),
        h("td", { class: "num" }, r.inspections),
        h("td", { class: "num" }, fmtNum(r.average)),
        h("td", { class: "num" }, fmtNum(r.lowest)),
        h("td", { class: "num" }, r.vetoed),
      ];
      if (has("coverage")) {
        cells.push(h("td", { class: "num", title: `${r.communities_inspected ?? "?"} / ${r.communities_in_scope ?? "?"} 个小区` },
          r.coverage == null ? "—" : `${(r.coverage * 100).toFixed(1)}%`));
      }
      if (has("open_rectifications")) cells.push(h("td", { class: "num" }, r.open_rectifications ?? "—"));
      if (has("overdue_rectifications")) cells.push(h("td", { class: "num" }, r.overdue_rectifications ?? "—"));
      if (has("grades")) cells.push(h("td", {}, gradeNames.filter((g) => r.grades && r.grades[g]).map((g) => `${g} ${r.grades[g]}`).join("，")));
      return h("tr", { class: r.vetoed > 0 ? "vetoed" : null, "data-rank": r.rank }, cells);
    })));

  main.replaceChildren(
    h("h1", {}, `${BY[by]}排名 · 按${PERIOD[period]}`),
    h("div", { class: "controls" },
      h("label", {}, "范围", select("rank-by", BY, by, "by")),
      h("label", {}, "周期", select("rank-period", { week: "周排名", month: "月排名" }, period, "period")),
      h("label", {}, "日期", h("input", { id: "rank-at", type: "date", value: at, onchange: (e) => e.target.value && go("at", e.target.value) })),
      h("span", { class: "muted" }, `${fmtDateTime(data.from_ms)} 至 ${fmtDateTime(data.to_ms - 1)}（北京时间）`)),
    rows.length ? table : h("p", { class: "muted", "data-testid": "rankings-empty" }, "本周期没有已提交的检查。"),
    h("p", { class: "muted small" }, "得分为占标准满分的百分比；已提交与已通过的检查计入排名。"));
}

// ---------- trend chart

async function viewTrend(main, [communityId]) {
  const { communities } = await api("/v1/communities");
  const inspected = communities.filter((c) => c.latest);
  const id = communityId || (inspected[0] || communities[0] || {}).id;
  const picker = h("select", { id: "trend-community", onchange: (e) => { location.hash = `#/trend/${encodeURIComponent(e.target.value)}`; } },
    communities.map((c) => h("option", { value: c.id, selected: c.id === id }, `${c.name}（${c.street}）${c.latest ? "" : " · 未检查"}`)));
  if (!id) {
    main.replaceChildren(h("h1", {}, "得分趋势"), h("p", { class: "muted" }, "您的范围内没有小区。"));
    return;
  }
  const rows = (await api(`/v1/communities/${encodeURIComponent(id)}/scores`))
    .filter((r) => r.total != null && r.max_points > 0)
    .sort((a, b) => a.started_at_ms - b.started_at_ms);
  const community = communities.find((c) => c.id === id);
  main.replaceChildren(
    h("h1", {}, `得分趋势 · ${community ? community.name : id}`),
    h("div", { class: "controls" }, h("label", {}, "小区", picker)),
    rows.length ? trendChart(rows) : h("p", { class: "muted", "data-testid": "trend-empty" }, "该小区还没有已提交的检查。"),
    rows.length ? h("table", { "data-testid": "trend-table" },
      h("thead", {}, h("tr", {}, ["检查时间", "得分", "满分", "得分率", "等级", "状态", ""].map((t) => h("th", {}, t)))),
      h("tbody", {}, rows.slice().reverse().map((r) => h("tr", {},
        h("td", {}, fmtDateTime(r.started_at_ms)), h("td", { class: "num" }, fmtNum(r.total)),
        h("td", { class: "num" }, fmtNum(r.max_points, 0)), h("td", { class: "num" }, `${fmtNum((r.total * 100) / r.max_points, 1)}%`),
        h("td", {}, gradeBadge(r)), h("td", {}, statusBadge(r.status)),
        h("td", {}, h("a", { href: `#/inspection/${encodeURIComponent(r.id)}` }, "详情")))))) : null);
}

function gradeBadge(r) {
  const pct = r.max_points > 0 ? (r.total * 100) / r.max_points : null;
  const cls = gradeClass(pct, r.vetoed);
  return h("span", { class: `grade grade-${cls}` }, r.grade || GRADE_LABEL[cls]);
}

function statusBadge(status) {
  return h("span", { class: `status status-${status}` }, STATUS[status] || status);
}

/** An SVG line chart of the score (% of full marks) over time: one mark per inspection. */
function trendChart(rows) {
  const W = 900, H = 320, L = 48, R = 20, T = 16, B = 40;
  const t0 = rows[0].started_at_ms, t1 = rows[rows.length - 1].started_at_ms;
  const span = Math.max(t1 - t0, 1);
  const pts = rows.map((r) => (r.total * 100) / r.max_points);
  const lo = Math.min(0, Math.floor(Math.min(...pts) / 10) * 10);
  const hi = Math.max(100, Math.ceil(Math.max(...pts) / 10) * 10);
  const x = (t) => rows.length === 1 ? (L + W - R) / 2 : L + ((t - t0) / span) * (W - L - R);
  const y = (v) => T + ((hi - v) / (hi - lo)) * (H - T - B);
  const svg = s("svg", { class: "chart", viewBox: `0 0 ${W} ${H}`, width: W, height: H, role: "img", "aria-label": "得分趋势图", "data-testid": "trend-chart" });
  for (let v = lo; v <= hi; v += 20) {
    svg.append(s("line", { class: v === lo ? "axis" : "band", x1: L, x2: W - R, y1: y(v), y2: y(v) }),
      s("text", { x: L - 6, y: y(v) + 4, "text-anchor": "end" }, v));
  }
  for (const [v, label] of [[90, "优秀"], [80, "良好"], [60, "合格"]]) {
    if (v > lo && v < hi) svg.append(s("text", { x: L + 6, y: y(v) - 3 }, label));
  }
  svg.append(s("line", { class: "axis", x1: L, x2: L, y1: T, y2: H - B }));
  const ticks = Math.min(rows.length, 6);
  for (let i = 0; i < ticks; i++) {
    const t = ticks === 1 ? t0 : t0 + (span * i) / (ticks - 1);
    svg.append(s("text", { x: x(t), y: H - B + 18, "text-anchor": "middle" }, fmtDate(t)));
  }
  svg.append(s("text", { x: 12, y: T + 4 }, "%"));
  if (rows.length > 1) {
    svg.append(s("polyline", { class: "line", points: rows.map((r, i) => `${x(r.started_at_ms)},${y(pts[i])}`).join(" ") }));
  }
  rows.forEach((r, i) => {
    const cls = gradeClass(pts[i], r.vetoed);
    svg.append(s("circle", {
      class: `mark fill-${cls}`, cx: x(r.started_at_ms), cy: y(pts[i]), r: 6, "data-id": r.id,
      onclick: () => { location.hash = `#/inspection/${encodeURIComponent(r.id)}`; },
    }, s("title", {}, `${fmtDateTime(r.started_at_ms)}：${pts[i].toFixed(1)}%（${r.grade || ""}）`)));
  });
  return svg;
}

// ---------- plot of communities

async function viewMap(main) {
  const { communities } = await api("/v1/communities");
  const legend = h("div", { class: "legend", "data-testid": "map-legend" },
    Object.entries(GRADE_LABEL).map(([k, label]) => h("span", { class: `l-${k}` }, label)));
  main.replaceChildren(
    h("h1", {}, "小区分布 · 最新得分"),
    h("p", { class: "muted" }, `${communities.length} 个小区，${communities.filter((c) => c.latest).length} 个已检查。点击圆点查看最新检查。`),
    legend,
    communities.length ? communityPlot(communities) : h("p", { class: "muted" }, "您的范围内没有小区。"));
}

/**
 * Communities at their WGS-84 coordinates, equirectangular projection with the longitude scaled by
 * cos(mean latitude) so distances look right at a city's size; no map tiles (nothing outside the
 * machine can be reached). Districts are labelled at the centre of their communities.
 */
function communityPlot(communities) {
  const W = 900, H = 600, PAD = 30;
  const lat0 = communities.reduce((a, c) => a + c.lat, 0) / communities.length;
  const k = Math.cos((lat0 * Math.PI) / 180);
  const px = communities.map((c) => [c.lon * k, c.lat]);
  const minX = Math.min(...px.map((p) => p[0])), maxX = Math.max(...px.map((p) => p[0]));
  const minY = Math.min(...px.map((p) => p[1])), maxY = Math.max(...px.map((p) => p[1]));
  const scale = Math.min((W - 2 * PAD) / Math.max(maxX - minX, 1e-6), (H - 2 * PAD) / Math.max(maxY - minY, 1e-6));
  const ox = (W - (maxX - minX) * scale) / 2, oy = (H - (maxY - minY) * scale) / 2;
  const X = (p) => ox + (p[0] - minX) * scale;
  const Y = (p) => H - (oy + (p[1] - minY) * scale);
  const svg = s("svg", { class: "chart", viewBox: `0 0 ${W} ${H}`, width: W, height: H, role: "img", "aria-label": "小区分布图", "data-testid": "map-plot" });
  // Scale bar: 1 km at this latitude.
  const km = (1 / 111.32) * scale;
  if (km > 10 && km < W / 2) {
    svg.append(s("line", { class: "axis", x1: PAD, x2: PAD + km, y1: H - 12, y2: H - 12 }), s("text", { x: PAD, y: H - 16 }, "1 公里"));
  }
  const districts = new Map();
  communities.forEach((c, i) => {
    const d = districts.get(c.district) || { x: 0, y: 0, n: 0 };
    d.x += X(px[i]); d.y += Y(px[i]); d.n += 1;
    districts.set(c.district, d);
  });
  for (const [name, d] of districts) {
    svg.append(s("text", { class: "district-label", x: d.x / d.n, y: d.y / d.n, "text-anchor": "middle" }, name));
  }
  communities.forEach((c, i) => {
    const l = c.latest;
    const cls = gradeClass(l ? l.percent : null, l && l.vetoed);
    const tip = l ? `${c.name}（${c.street}）：${l.percent.toFixed(1)}% ${l.grade || ""} · ${fmtDateTime(l.started_at_ms)}` : `${c.name}（${c.street}）：未检查`;
    svg.append(s("circle", {
      class: `mark fill-${cls}`, cx: X(px[i]).toFixed(1), cy: Y(px[i]).toFixed(1), r: l ? 7 : 4,
      "data-id": c.id, "data-grade": cls,
      onclick: () => { location.hash = l ? `#/inspection/${encodeURIComponent(l.inspection_id)}` : `#/trend/${encodeURIComponent(c.id)}`; },
    }, s("title", {}, tip)));
  });
  return svg;
}

// ---------- inspections

async function viewInspections(main) {
  const p = hashParams();
  const status = STATUS[p.get("status")] ? p.get("status") : "";
  const rows = await api(`/v1/inspections?limit=200${status ? `&status=${status}` : ""}`);
  const filter = h("select", { id: "insp-status", onchange: (e) => { location.hash = `#/inspections?status=${e.target.value}`; } },
    h("option", { value: "" }, "全部"), Object.entries(STATUS).map(([k, v]) => h("option", { value: k, selected: k === status }, v)));
  main.replaceChildren(
    h("h1", {}, "检查记录"),
    h("div", { class: "controls" }, h("label", {}, "状态", filter), h("span", { class: "muted" }, `${rows.length} 条（最新 200 条）`)),
    h("table", { "data-testid": "inspections-table" },
      h("thead", {}, h("tr", {}, ["开始时间", "小区", "街道", "类型", "检查员", "状态", "得分", "等级", "冲突", ""].map((t) => h("th", {}, t)))),
      h("tbody", {}, rows.map((r) => h("tr", {},
        h("td", {}, fmtDateTime(r.started_at_ms)), h("td", {}, r.community_name || r.community_id), h("td", {}, r.street || ""),
        h("td", {}, KIND[r.kind] || r.kind), h("td", {}, r.created_by), h("td", {}, statusBadge(r.status)),
        h("td", { class: "num" }, r.total == null ? "—" : `${fmtNum(r.total)} / ${fmtNum(r.max_points, 0)}`),
        h("td", {}, r.total == null ? "—" : gradeBadge(r)), h("td", { class: "num" }, r.conflict_count || ""),
        h("td", {}, h("a", { href: `#/inspection/${encodeURIComponent(r.id)}`, "data-testid": "inspection-link" }, "详情")))))));
}

function answerText(a) {
  const v = a.value || {};
  switch (v.kind) {
    case "not_applicable": return "不适用";
    case "compliant": return "符合";
    case "observed": return "发现问题";
    case "occurrences": return (v.counts || []).map((c) => `${c.finding} × ${c.count}`).join("，");
    case "deduction": return `扣 ${v.points} 分`;
    case "rate": return `比率 ${v.percent}%`;
    case "bonus": return `加 ${v.points} 分`;
    default: return JSON.stringify(v);
  }
}

/** Evidence checks the server computed (docs/media.md, "Supervisor view"): flags, never blockers. */
const FLAG = {
  NoExif: "无 EXIF", NoExifTime: "无拍摄时间", NoExifGps: "无照片定位", ExifTimeZoneAssumed: "时区按北京时间",
  ExifTimeOutsideWindow: "拍摄时间不在检查时段", PhotoFarFromCommunity: "照片位置远离小区",
  PhotoFarFromDevice: "照片位置与手机定位不符", ExifGpsLooksGcj02: "EXIF 为火星坐标", ReusedPhoto: "照片重复使用",
  EditedInSoftware: "经软件编辑", NoDeviceFix: "无手机定位", OutsideGeofence: "不在围栏内",
  GeofenceUncertain: "围栏内外不确定", MockLocation: "模拟定位", StaleFix: "定位过时", FixFromFuture: "定位时间异常",
  LowAccuracy: "定位精度低", AccuracyUnknown: "定位精度未知", InvalidFix: "定位无效",
  OriginalNotReceived: "原图未上传", ExifDamaged: "EXIF 损坏", ExifValueIgnored: "EXIF 值异常",
};
// Informational only (not a warning): shown muted.
const FLAG_INFO = new Set(["ExifTimeZoneAssumed", "OriginalNotReceived", "AccuracyUnknown"]);
const GEOFENCE_STATUS = { inside: "在围栏内", outside: "在围栏外", uncertain: "无法确定", no_fix: "无定位" };
const STAGE = { start: "开始时", submit: "提交时" };

function flagList(flags) {
  return h("ul", { class: "flags", "data-testid": "evidence-flags" }, (flags || []).map((f) =>
    h("li", { class: FLAG_INFO.has(f.code) ? "flag info" : "flag", "data-flag": f.code, title: f.detail || "" },
      h("strong", {}, FLAG[f.code] || f.code), f.detail ? h("span", { class: "small" }, ` ${f.detail}`) : null)));
}

function geofenceCard(checks) {
  const rows = (checks && checks.geofence) || [];
  return h("div", { class: "card geofence", "data-testid": "geofence-checks" },
    h("h3", {}, "定位核验（是否在小区围栏内）"),
    rows.length ? h("ul", {}, rows.map((g) => h("li", { "data-stage": g.stage, "data-status": g.status },
      h("span", { class: `geo geo-${g.status}` }, `${STAGE[g.stage] || g.stage}：${GEOFENCE_STATUS[g.status] || g.status}`),
      g.distance_m != null ? ` 距小区 ${fmtNum(g.distance_m, 0)} 米（围栏 ${fmtNum(g.geofence_m, 0)} 米）` : "",
      ` · ${fmtDateTime(g.at_ms)}`,
      g.flags && g.flags.length ? flagList(g.flags) : null)))
      : h("p", { class: "muted" }, "服务器未能核验（小区不在名录中）。"),
    rows.some((g) => g.stage === "submit") ? null : h("p", { class: "muted small" }, "尚未提交：提交时的核验待提交后进行。"));
}

function mediaFigure(ev, itemTitle) {
  const sha = encodeURIComponent(ev.sha256);
  const caption = h("figcaption", {}, `${ev.item_code}${itemTitle ? " " + itemTitle : ""} · ${fmtDateTime(ev.at_ms)}`);
  const flags = ev.check ? flagList(ev.check.flags) : null;
  const state = ev.check ? ev.check.state : "";
  if (ev.kind === "voice_note") {
    return h("figure", { "data-testid": "voice-note", "data-state": state }, h("audio", { controls: true, preload: "none", src: `/v1/media/${sha}?rendition=original` }), caption, flags);
  }
  // The thumbnail this document declares (docs/media-sync.md): never another document's.
  const blob = ev.thumb ? `&blob=${encodeURIComponent(ev.thumb)}` : "";
  const img = h("img", { src: `/v1/media/${sha}?rendition=thumb${blob}`, alt: `证据照片 ${ev.item_code}`, loading: "lazy", "data-sha256": ev.sha256 });
  // Until the photo's bytes have reached the server (or where the media route is absent) the
  // thumbnail cannot load: say so instead of showing a broken image.
  img.addEventListener("error", () => img.replaceWith(h("div", { class: "missing", "data-testid": "photo-missing" }, "照片尚未上传")));
  const x = ev.check && ev.check.exif;
  const exifLine = x ? h("div", { class: "muted small", "data-testid": "photo-exif" },
    "原图 EXIF：", x.taken_at_ms != null ? fmtDateTime(x.taken_at_ms) : "无时间",
    x.lat != null ? ` · ${x.lat.toFixed(5)}, ${x.lon.toFixed(5)}` : " · 无定位",
    x.make || x.model ? ` · ${[x.make, x.model].filter(Boolean).join(" ")}` : "") : null;
  const warned = ev.check && ev.check.flags.some((f) => !FLAG_INFO.has(f.code));
  return h("figure", { "data-testid": "photo", "data-state": state, class: warned ? "flagged" : "" },
    h("a", { href: `/v1/media/${sha}?rendition=original`, target: "_blank", rel: "noopener" }, img), caption, exifLine, flags);
}

async function viewInspection(main, [id]) {
  const d = await api(`/v1/inspections/${encodeURIComponent(id)}`);
  const i = d.inspection, c = d.community || {}, score = d.score;
  const titles = Object.fromEntries((d.items || []).map((it) => [it.code, it]));
  const deduction = Object.fromEntries(((score && score.items) || []).map((it) => [it.code, it]));
  const evidence = d.evidence || (i.evidence || []).map((e) => ({ sha256: e.sha256, kind: e.media, item_code: e.item_code, added_by: e.added_by, at_ms: e.at_ms, thumb: e.thumb }));
  // The server's checks of each piece of evidence, matched by hash and item.
  const checkOf = new Map(((d.checks && d.checks.evidence) || []).map((c) => [`${c.sha256}|${c.item_code}`, c]));
  for (const e of evidence) e.check = checkOf.get(`${e.sha256}|${e.item_code}`);
  const answers = (i.answers || []).slice().sort((a, b) => a.answer.item_code.localeCompare(b.answer.item_code));

  const facts = h("dl", { class: "facts" },
    h("dt", {}, "小区"), h("dd", {}, `${c.name || i.community_id}（${c.district || ""} ${c.street || ""}）`),
    h("dt", {}, "类型"), h("dd", {}, KIND[i.kind] || i.kind),
    h("dt", {}, "状态"), h("dd", { "data-testid": "inspection-status" }, statusBadge(i.status)),
    h("dt", {}, "检查员"), h("dd", {}, (i.inspectors || [i.created_by]).join("、")),
    h("dt", {}, "标准"), h("dd", {}, `${i.standard_id} ${i.standard_version}`),
    h("dt", {}, "开始"), h("dd", {}, fmtDateTime(i.started_at_ms)),
    h("dt", {}, "结束"), h("dd", {}, fmtDateTime(i.ended_at_ms)),
    h("dt", {}, "得分"), h("dd", { "data-testid": "inspection-score" }, score ? [`${fmtNum(score.total)} / ${fmtNum(score.max_points, 0)} `, gradeBadge({ ...score })] : "—"),
    score && score.veto_reasons && score.veto_reasons.length ? [h("dt", {}, "否决原因"), h("dd", { class: "error" }, score.veto_reasons.join("；"))] : null);

  const answerTable = h("table", { "data-testid": "answers-table" },
    h("thead", {}, h("tr", {}, ["编号", "检查项", "结果", "扣分", "说明", "记录人", "时间"].map((t) => h("th", {}, t)))),
    h("tbody", {}, answers.map((a) => {
      const code = a.answer.item_code, sc = deduction[code];
      return h("tr", { "data-item": code },
        h("td", {}, code), h("td", {}, titles[code] ? titles[code].title : ""), h("td", {}, answerText(a.answer)),
        h("td", { class: "num" }, sc ? (sc.bonus ? `+${fmtNum(sc.bonus, 1)}` : sc.deduction ? `−${fmtNum(sc.deduction, 1)}` : "0") : ""),
        h("td", {}, a.answer.note || ""), h("td", {}, a.by), h("td", {}, fmtDateTime(a.at_ms)));
    })));

  const conflicts = (d.conflicts || []).map((cf) => h("div", { class: "conflict", "data-testid": "conflict" },
    h("strong", {}, `${cf.item_code} ${titles[cf.item_code] ? titles[cf.item_code].title : ""}：多台设备的不同记录`),
    h("ul", {}, [cf.current, ...(cf.candidates || [])].map((r, n) => h("li", {},
      `${n === 0 ? "当前值" : "另一值"}：${answerText(r.answer)} — ${r.by}（设备 ${String(r.device_id).slice(0, 8)}）${fmtDateTime(r.at_ms)}`,
      r.location ? ` @ ${r.location.lat.toFixed(5)}, ${r.location.lon.toFixed(5)}` : "")))));

  // A status change's target is in the workflow events (same device and time as the change).
  const statusTo = new Map((i.events || []).filter((e) => e.kind && e.kind.StatusChanged)
    .map((e) => [`${e.device_id}|${e.at_ms}`, e.kind.StatusChanged.to]));
  const actionText = (e) => {
    const to = e.action === "status" && statusTo.get(`${e.device_id}|${e.at_ms}`);
    return to ? `状态改为“${STATUS[to] || to}”` : ACTION[e.action] || e.action;
  };
  const history = h("ol", { class: "history", "data-testid": "history" },
    (d.history || []).slice().sort((a, b) => a.at_ms - b.at_ms).map((e) => h("li", {},
      `${fmtDateTime(e.at_ms)} · ${e.by || "?"} · ${actionText(e)}`,
      e.item_code ? ` ${e.item_code}` : "", e.text ? ` — “${e.text}”` : "",
      h("span", { class: "muted small" }, ` 设备 ${String(e.device_id).slice(0, 8)}`))));

  main.replaceChildren(
    h("h1", {}, `检查详情 · ${c.name || i.community_id}`),
    h("div", { class: "grid2" }, h("div", { class: "card" }, facts), reviewPanel(i)),
    geofenceCard(d.checks),
    h("h2", {}, `照片与录音（${evidence.length}）`),
    evidence.length ? h("div", { class: "photos", "data-testid": "photos" }, evidence.map((e) => mediaFigure(e, titles[e.item_code] && titles[e.item_code].title)))
      : h("p", { class: "muted" }, "没有照片或录音。"),
    h("h2", {}, `评分记录（${answers.length} 项）`), answerTable,
    h("h2", {}, `冲突（${conflicts.length}）`), conflicts.length ? conflicts : h("p", { class: "muted", "data-testid": "no-conflicts" }, "没有冲突。"),
    h("h2", {}, "修改历史（全程留痕）"), history);
}

/** Approve / return, through `POST /v1/inspections/{id}/review` (contract in docs/dashboard.md). */
function reviewPanel(i) {
  const box = h("div", { class: "card review", "data-testid": "review" }, h("h3", {}, "审核"));
  if (i.status !== "submitted") {
    box.append(h("p", { class: "muted" }, `当前状态“${STATUS[i.status] || i.status}”，无需审核。`));
    return box;
  }
  const comment = h("textarea", { id: "review-comment", placeholder: "审核意见（退回时必填）" });
  const msg = h("p", { class: "muted", "data-testid": "review-message", role: "status" });
  const send = async (decision) => {
    if (decision === "return" && !comment.value.trim()) { msg.textContent = "退回时请填写审核意见。"; return; }
    for (const b of box.querySelectorAll("button")) b.disabled = true;
    try {
      const r = await api(`/v1/inspections/${encodeURIComponent(i.id)}/review`, { method: "POST", body: { decision, comment: comment.value } });
      msg.textContent = `已${decision === "approve" ? "通过" : "退回"}，状态：${STATUS[r.status] || r.status}`;
      // Show the new state a moment later, unless the user has moved on to another view.
      const here = location.hash;
      setTimeout(() => { if (location.hash === here) route(); }, 600);
    } catch (err) {
      msg.textContent = routeMissing(err) ? "此服务器尚未提供审核接口。" :
        err.status === 409 ? "该检查的状态已变化，请刷新后再试。" : readable(`审核失败：${err.message}`);
      for (const b of box.querySelectorAll("button")) b.disabled = false;
    }
  };
  box.append(comment, h("div", { class: "buttons" },
    h("button", { type: "button", "data-testid": "approve", onclick: () => send("approve") }, "审核通过"),
    h("button", { type: "button", class: "danger", "data-testid": "return", onclick: () => send("return") }, "退回修改")), msg);
  return box;
}

// ---------- rectification board

async function viewRectifications(main) {
  let data;
  try {
    data = await api("/v1/rectifications");
  } catch (err) {
    if (!routeMissing(err)) throw err;
    main.replaceChildren(h("h1", {}, "整改看板"), h("p", { class: "notice", "data-testid": "rect-unavailable" }, "此服务器尚未提供整改任务接口（/v1/rectifications）。"));
    return;
  }
  const tasks = data.tasks || [];
  const overdue = tasks.filter((t) => t.overdue).length;
  main.replaceChildren(
    h("h1", {}, "整改看板"),
    h("p", { class: "muted" }, `共 ${tasks.length} 项整改任务，`, h("strong", { class: overdue ? "error" : "" }, `${overdue} 项逾期`), "。"),
    h("div", { class: "board", "data-testid": "rect-board" }, RECT_COLUMNS.map(([status, label]) => {
      const mine = tasks.filter((t) => t.status === status)
        .sort((a, b) => (b.overdue - a.overdue) || (a.deadline_ms - b.deadline_ms));
      return h("section", { class: "column", "data-status": status },
        h("h3", {}, `${label}（${mine.length}）`), mine.map(taskCard));
    })));
}

function taskCard(t) {
  const msg = h("div", { class: "small muted", role: "status" });
  const act = async (what) => {
    const comment = window.prompt(what === "approve" ? "批准销号的意见：" : "退回重新整改的原因：", "");
    if (comment === null) return;
    try {
      await api(`/v1/rectifications/${encodeURIComponent(t.id)}/${what}`, { method: "POST", body: { comment } });
      route();
    } catch (err) {
      msg.textContent = routeMissing(err) ? "此服务器尚未提供该操作。" : readable(`操作失败：${err.message}`);
    }
  };
  const thumbs = (list) => (list || []).map((sha) => {
    const img = h("img", { src: `/v1/media/${encodeURIComponent(sha)}?rendition=thumb`, alt: "整改证据", loading: "lazy" });
    img.addEventListener("error", () => img.remove());
    return h("a", { href: `/v1/media/${encodeURIComponent(sha)}?rendition=original`, target: "_blank", rel: "noopener" }, img);
  });
  return h("article", { class: `task${t.overdue ? " overdue" : ""}`, "data-testid": "rect-task", "data-id": t.id, "data-overdue": String(!!t.overdue) },
    h("div", {}, h("strong", {}, t.community_name || t.community_id), t.overdue ? h("span", { class: "badge" }, "已逾期") : null),
    h("div", {}, `${t.item_code} ${t.item_title || ""}`),
    h("div", { class: "muted" }, `责任方：${t.responsible || "—"}`),
    h("div", { class: t.overdue ? "error" : "muted" }, `期限：${fmtDateTime(t.deadline_ms)}`),
    t.deduction != null ? h("div", { class: "muted" }, `扣分：${t.deduction}`) : null,
    h("div", { class: "thumbs" }, thumbs(t.evidence), thumbs(t.closure_evidence)),
    t.inspection_id ? h("a", { href: `#/inspection/${encodeURIComponent(t.inspection_id)}`, class: "small" }, "查看检查") : null,
    t.status === "submitted" ? h("div", { class: "actions" },
      h("button", { type: "button", onclick: () => act("approve") }, "批准销号"),
      h("button", { type: "button", class: "danger", onclick: () => act("reopen") }, "退回重整")) : null,
    msg);
}

// ---------- start

window.addEventListener("hashchange", route);
document.addEventListener("DOMContentLoaded", async () => {
  document.getElementById("signin-form").addEventListener("submit", signIn);
  document.getElementById("signout").addEventListener("click", signOut);
  try {
    session = await api("/v1/session");
    showApp();
  } catch {
    showSignIn();
  }
});
