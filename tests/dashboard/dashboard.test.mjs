// The supervisors' dashboard end to end: Debian's chromium driven by playwright-core against a real
// fenlei-server process prepared by scripts/test-dashboard.sh (sample city, simulated phones).
// Every check compares what the page shows with what the JSON API says for the same session.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import path from "node:path";
import fs from "node:fs";
import os from "node:os";
import { execFileSync } from "node:child_process";
import { chromium } from "playwright-core";

const URL = process.env.FENLEI_URL;
const USER = process.env.FENLEI_SUP_USER;
const PASSWORD = process.env.FENLEI_SUP_PASSWORD;
const SHOTS = process.env.FENLEI_SCREENSHOTS;
// The server binary and its data folder, for the admin commands of the hostile-output test.
const BIN = process.env.FENLEI_BIN;
const DATA = process.env.FENLEI_DATA;
assert.ok(URL && USER && PASSWORD && SHOTS && BIN && DATA, "run through scripts/test-dashboard.sh");

// Every page's Content-Security-Policy violations, as Chromium reports them on the console: the
// last test asserts there were none (a blocked script or style is a broken page).
const cspViolations = [];

let browser;
let page; // the signed-in supervisor's page, shared by the tests that follow sign-in
let sessionCookie;

before(async () => {
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    // Root in a container has no user namespaces for Chromium's sandbox.
    args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
  });
});

after(async () => {
  await browser?.close();
});

async function newPage() {
  const context = await browser.newContext({
    viewport: { width: 1440, height: 900 },
    locale: "zh-CN",
    timezoneId: "Asia/Shanghai",
  });
  const p = await context.newPage();
  p.on("pageerror", (e) => { throw new Error(`page error: ${e.message}`); });
  p.on("console", (m) => {
    if (/Content Security Policy/i.test(m.text())) cspViolations.push(`${p.url()}: ${m.text()}`);
  });
  return p;
}

const shot = (p, name) => p.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });

async function signInForm(p, user, password) {
  await p.goto(`${URL}/dashboard/`);
  await p.waitForSelector("#signin-form", { state: "visible" });
  await p.fill("#signin-user", user);
  await p.fill("#signin-password", password);
  await p.click("#signin-submit");
}

/** Navigates the single-page app and waits until the view for that hash has rendered. */
async function show(p, hash) {
  await p.evaluate((h) => { location.hash = h; }, hash);
  await p.waitForFunction((h) => {
    const v = document.getElementById("view");
    return v.dataset.route === h && v.dataset.ready === "true";
  }, hash);
  assert.equal(await p.locator("[data-testid=view-error]").count(), 0, `error on ${hash}`);
}

/** The JSON API from inside the page: the same session cookie as the page itself. */
function apiJson(p, url, init = {}) {
  return p.evaluate(async ([url, init]) => {
    const r = await fetch(url, { credentials: "same-origin", ...init });
    const text = await r.text();
    let body = null;
    try { body = JSON.parse(text); } catch { /* not JSON */ }
    return { status: r.status, body };
  }, [url, init]);
}

/**
 * Whether this server build has a route: false only for the router's own plain 404/405 (no JSON
 * error body), the same rule the dashboard uses. Routes of other branches (D's review and
 * rectifications, A's media) exist only once those are merged; the checks guarded by this must
 * then run — see docs/dashboard.md "Tests".
 */
async function routePresent(p, method, url) {
  const csrf = await p.evaluate(async () => (await (await fetch("/v1/session")).json()).csrf_token);
  const r = await apiJson(p, url, {
    method,
    headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
    body: method === "GET" ? undefined : "{}",
  });
  return !((r.status === 404 || r.status === 405) && !(r.body && typeof r.body.error === "string"));
}

function todayCST() {
  return new Date(Date.now() + 8 * 3600e3).toISOString().slice(0, 10);
}

test("a wrong password is refused", async () => {
  const p = await newPage();
  await signInForm(p, USER, `${PASSWORD}-wrong`);
  await p.waitForSelector("#signin-error:not([hidden])");
  assert.match(await p.textContent("#signin-error"), /用户名或密码错误/);
  assert.equal(await p.isVisible("#app"), false);
  const cookies = await p.context().cookies();
  assert.equal(cookies.filter((c) => c.name === "fenlei_session").length, 0);
  // An unknown user gets the very same answer (no user enumeration).
  await signInForm(p, "no.such.user", "whatever-password");
  await p.waitForSelector("#signin-error:not([hidden])");
  assert.match(await p.textContent("#signin-error"), /用户名或密码错误/);
  await shot(p, "01-sign-in-refused");
  await p.context().close();
});

test("an inspector cannot sign in", async () => {
  const p = await newPage();
  // former.sup had a password as a supervisor and is an inspector now: the right password is
  // refused, with the very answer a wrong password gets (no account enumeration).
  await signInForm(p, "former.sup", "former-sup-password");
  await p.waitForSelector("#signin-error:not([hidden])");
  assert.match(await p.textContent("#signin-error"), /用户名或密码错误/);
  assert.equal(await p.isVisible("#app"), false);
  const r = await apiJson(p, "/v1/session", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ user: "former.sup", password: "former-sup-password" }),
  });
  assert.equal(r.status, 401);
  // A simulated inspector (no dashboard password at all) is refused like any wrong credential.
  const i = await apiJson(p, "/v1/session", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ user: "inspector.1", password: "anything-at-all" }),
  });
  assert.equal(i.status, 401);
  await shot(p, "02-inspector-refused");
  await p.context().close();
});

test("repeated wrong passwords lock the account", async () => {
  const p = await newPage();
  await p.goto(`${URL}/dashboard/`);
  const attempt = (password) => apiJson(p, "/v1/session", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ user: "lock.test", password }),
  });
  for (let n = 0; n < 5; n++) assert.equal((await attempt("not-the-password")).status, 401);
  const locked = await attempt("lock-test-password");
  assert.equal(locked.status, 429, "the right password is refused while locked");
  assert.match(locked.body.reason, /锁定/);
  await p.context().close();
});

test("a supervisor signs in through the form; the cookie is HttpOnly and SameSite=Strict", async () => {
  page = await newPage();
  await signInForm(page, USER, PASSWORD);
  await page.waitForSelector("#app:not([hidden])");
  assert.match(await page.textContent("#who"), /王督导/);
  const cookie = (await page.context().cookies()).find((c) => c.name === "fenlei_session");
  assert.ok(cookie, "session cookie set");
  assert.equal(cookie.httpOnly, true);
  assert.equal(cookie.sameSite, "Strict");
  // Secure even on plain http://127.0.0.1: Chromium treats loopback as a secure context.
  assert.equal(cookie.secure, true);
  assert.equal(await page.evaluate(() => document.cookie.includes("fenlei_session")), false);
  sessionCookie = `${cookie.name}=${cookie.value}`;
  // The cookie authenticates the supervisor API; a state change without the CSRF token does not pass.
  assert.equal((await apiJson(page, "/v1/me")).body.user_id, USER);
  assert.equal((await apiJson(page, "/v1/session", { method: "DELETE" })).status, 403);
  assert.equal((await apiJson(page, "/v1/me")).status, 200, "still signed in");
});

test("the rankings table matches the JSON API for every scope and period", async () => {
  const at = todayCST();
  let shown = 0;
  for (const by of ["community", "street", "district"]) {
    for (const period of ["week", "month"]) {
      await show(page, `#/rankings?by=${by}&period=${period}&at=${at}`);
      const api = await apiJson(page, `/v1/rankings?by=${by}&period=${period}&at=${at}`);
      assert.equal(api.status, 200);
      const rows = api.body.rows;
      if (by === "community" && period === "week") assert.ok(rows.length > 0, "the simulated week has scores");
      const table = await page.evaluate(() => {
        const t = document.querySelector("[data-testid=rankings-table]");
        if (!t) return null;
        return {
          head: [...t.tHead.rows[0].cells].map((c) => c.textContent),
          body: [...t.tBodies[0].rows].map((r) => [...r.cells].map((c) => c.textContent)),
        };
      });
      if (rows.length === 0) {
        assert.equal(table, null);
        assert.equal(await page.locator("[data-testid=rankings-empty]").count(), 1);
        continue;
      }
      assert.equal(table.body.length, rows.length, `${by}/${period}: one row per ranking row`);
      rows.forEach((r, n) => {
        const cells = table.body[n];
        assert.deepEqual(cells.slice(0, 6), [
          String(r.rank), r.name || "（未填写）", String(r.inspections),
          r.average.toFixed(2), r.lowest.toFixed(2), String(r.vetoed),
        ], `${by}/${period} row ${n + 1}`);
      });
      // The contract's newer fields (D's branch) appear exactly when the API sends them.
      const withCoverage = rows.some((r) => r.coverage !== undefined);
      assert.equal(table.head.includes("覆盖率"), withCoverage);
      if (withCoverage) {
        const col = table.head.indexOf("覆盖率");
        rows.forEach((r, n) => assert.equal(table.body[n][col], r.coverage == null ? "—" : `${(r.coverage * 100).toFixed(1)}%`));
      }
      for (const [field, label] of [["open_rectifications", "待整改"], ["overdue_rectifications", "逾期整改"]]) {
        const has = rows.some((r) => r[field] !== undefined);
        assert.equal(table.head.includes(label), has, label);
        if (has) {
          const col = table.head.indexOf(label);
          rows.forEach((r, n) => assert.equal(table.body[n][col], String(r[field] ?? "—")));
        }
      }
      assert.equal(table.head.includes("等级分布"), rows.some((r) => r.grades !== undefined));
      if (shown++ < 2) await shot(page, `03-rankings-${by}-${period}`);
    }
  }
});

test("the trend chart has one mark per scored inspection of the community", async () => {
  const { communities } = (await apiJson(page, "/v1/communities")).body;
  const inspected = communities.filter((c) => c.latest);
  assert.ok(inspected.length > 0);
  // The community with the most scores makes the best chart.
  let best = null;
  for (const c of inspected) {
    const rows = (await apiJson(page, `/v1/communities/${encodeURIComponent(c.id)}/scores`)).body;
    if (!best || rows.length > best.rows.length) best = { c, rows };
  }
  assert.ok(best.rows.length >= 2, "the simulated weeks give a community several scores");
  await show(page, `#/trend/${encodeURIComponent(best.c.id)}`);
  const marks = await page.locator("[data-testid=trend-chart] circle.mark").count();
  assert.equal(marks, best.rows.length);
  assert.equal(await page.locator("[data-testid=trend-table] tbody tr").count(), best.rows.length);
  const ids = await page.$$eval("[data-testid=trend-chart] circle.mark", (cs) => cs.map((c) => c.dataset.id).sort());
  assert.deepEqual(ids, best.rows.map((r) => r.id).sort());
  await shot(page, "04-trend");
});

test("the plot has one mark per community in scope, coloured by its latest score", async () => {
  const { communities } = (await apiJson(page, "/v1/communities")).body;
  await show(page, "#/map");
  assert.equal(await page.locator("[data-testid=map-plot] circle.mark").count(), communities.length);
  assert.equal(await page.locator("[data-testid=map-plot] circle.mark[data-grade=none]").count(),
    communities.filter((c) => !c.latest).length);
  assert.equal(await page.locator("[data-testid=map-legend] span").count(), 6);
  // Every mark lies inside the drawing.
  const inside = await page.$$eval("[data-testid=map-plot] circle.mark", (cs) => cs.every((c) => {
    const x = +c.getAttribute("cx"), y = +c.getAttribute("cy");
    return x >= 0 && x <= 900 && y >= 0 && y <= 600;
  }));
  assert.ok(inside);
  await shot(page, "05-plot");
});

test("inspection detail shows answers, history, conflicts and evidence", async () => {
  const returned = (await apiJson(page, "/v1/inspections?status=returned&limit=1")).body;
  assert.equal(returned.length, 1, "the simulation returns some inspections");
  const id = returned[0].id;
  const detail = (await apiJson(page, `/v1/inspections/${id}`)).body;
  await show(page, `#/inspection/${id}`);
  assert.equal(await page.locator("[data-testid=answers-table] tbody tr").count(), detail.inspection.answers.length);
  assert.ok(detail.inspection.answers.length > 0);
  assert.equal(await page.locator("[data-testid=history] li").count(), detail.history.length);
  // The supervisor's comment when returning it is in the history.
  assert.match(await page.textContent("[data-testid=history]"), /状态改为“已退回” — “照片不清晰，请补充”/);
  assert.match(await page.textContent("[data-testid=inspection-status]"), /已退回/);
  // Items are named by the standard's titles.
  const first = detail.inspection.answers.map((a) => a.answer.item_code).sort()[0];
  const title = detail.items.find((i) => i.code === first).title;
  assert.match(await page.textContent(`[data-testid=answers-table] tr[data-item="${first}"]`), new RegExp(title.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")));
  const conflicts = detail.conflicts.length;
  assert.equal(await page.locator("[data-testid=conflict]").count(), conflicts);
  if (conflicts === 0) assert.equal(await page.locator("[data-testid=no-conflicts]").count(), 1);
  assert.equal(await page.locator("[data-testid=photo], [data-testid=voice-note]").count(), detail.evidence.length);
  // Not submitted: no review buttons.
  assert.equal(await page.locator("[data-testid=approve]").count(), 0);
  await shot(page, "06-inspection-detail");
});

test("photos load from the media route", async () => {
  const rows = (await apiJson(page, "/v1/inspections?limit=50")).body;
  let withPhoto = null;
  for (const r of rows) {
    const d = (await apiJson(page, `/v1/inspections/${r.id}`)).body;
    if (d.evidence.some((e) => e.kind === "photo")) { withPhoto = d; break; }
  }
  const photo = withPhoto && withPhoto.evidence.find((e) => e.kind === "photo");
  assert.ok(photo, "the simulated inspectors attach and upload a photo per inspection");
  assert.ok(await routePresent(page, "GET", `/v1/media/${photo.sha256}?rendition=thumb`), "GET /v1/media serves the thumbnail");
  await show(page, `#/inspection/${withPhoto.inspection.id}`);
  await page.waitForFunction(() => [...document.querySelectorAll("[data-testid=photo] img")].every((i) => i.complete));
  const loaded = await page.$$eval("[data-testid=photo] img", (imgs) => imgs.filter((i) => i.naturalWidth > 0).length);
  assert.ok(loaded > 0, "thumbnails load");
  const href = await page.getAttribute("[data-testid=photo] a", "href");
  assert.match(href, /rendition=original$/);
  // Evidence checks computed by the server: the simulated photos carry no EXIF, and their
  // originals were uploaded on "Wi-Fi", so each is checked and flagged 无 EXIF next to it.
  const check = withPhoto.checks.evidence.find((c) => c.sha256 === photo.sha256);
  assert.equal(check.state, "checked");
  assert.ok(check.flags.some((f) => f.code === "NoExif"), JSON.stringify(check));
  const figure = page.locator(`[data-testid=photo]:has(img[data-sha256="${photo.sha256}"])`).first();
  assert.equal(await figure.locator("[data-testid=evidence-flags] [data-flag=NoExif]").count(), 1);
  assert.match(await figure.locator("[data-testid=evidence-flags]").textContent(), /无 EXIF/);
  // Geofence results at the top: the simulated phones' fixes are inside the compound.
  const geo = withPhoto.checks.geofence;
  assert.equal(geo[0].stage, "start");
  assert.equal(geo[0].status, "inside");
  assert.match(await page.textContent("[data-testid=geofence-checks] li[data-stage=start]"), /开始时：在围栏内/);
  assert.equal(await page.locator("[data-testid=geofence-checks] li[data-stage=submit]").count(), geo.filter((g) => g.stage === "submit").length);
  await shot(page, "07-photos");
});

test("approve and return call the review route", async () => {
  const waiting = (await apiJson(page, "/v1/inspections?status=submitted")).body;
  assert.ok(waiting.length >= 2, "the simulation leaves inspections awaiting review");
  await show(page, `#/inspection/${waiting[0].id}`);
  assert.equal(await page.locator("[data-testid=approve]").count(), 1);
  assert.equal(await page.locator("[data-testid=return]").count(), 1);
  await shot(page, "08-review-buttons");
  assert.ok(await routePresent(page, "POST", `/v1/inspections/${waiting[0].id}/review`), "the review route exists");
  await page.click("[data-testid=approve]");
  await page.waitForFunction(() => /已通过/.test(document.querySelector("[data-testid=review-message]").textContent));
  assert.equal((await apiJson(page, `/v1/inspections/${waiting[0].id}`)).body.inspection.status, "approved");
  // Returning needs a comment.
  await show(page, `#/inspection/${waiting[1].id}`);
  await page.click("[data-testid=return]");
  assert.match(await page.textContent("[data-testid=review-message]"), /请填写/);
  await page.fill("#review-comment", "垃圾桶照片缺失，请补拍");
  await page.click("[data-testid=return]");
  await page.waitForFunction(() => /已退回/.test(document.querySelector("[data-testid=review-message]").textContent));
  const after = (await apiJson(page, `/v1/inspections/${waiting[1].id}`)).body;
  assert.equal(after.inspection.status, "returned");
  // The page shows the new state by itself a moment later; wait for it, or that delayed redraw
  // lands on whichever view the next test opened.
  await page.waitForFunction(() => /无需审核/.test(document.querySelector("[data-testid=review]")?.textContent || ""));
});

test("the rectification board shows every task in its status column", async () => {
  await show(page, "#/rectifications");
  assert.ok(await routePresent(page, "GET", "/v1/rectifications"), "the rectification route exists");
  const { tasks } = (await apiJson(page, "/v1/rectifications")).body;
  assert.equal(await page.locator("[data-testid=rect-task]").count(), tasks.length);
  assert.equal(await page.locator("[data-testid=rect-task].overdue").count(), tasks.filter((x) => x.overdue).length);
  for (const status of ["open", "in_progress", "submitted", "reopened", "closed"]) {
    assert.equal(await page.locator(`.column[data-status=${status}] [data-testid=rect-task]`).count(),
      tasks.filter((x) => x.status === status).length, status);
  }
  // The worked task's "after" photo went up with the phone's media sync: its thumbnail loads.
  const worked = tasks.find((x) => (x.closure_evidence || []).length > 0);
  assert.ok(worked, "the simulation works one task to closure with an after photo");
  const sel = `[data-testid=rect-task][data-id="${worked.id}"] .thumbs img[src*="${worked.closure_evidence[0]}"]`;
  await page.locator(sel).scrollIntoViewIfNeeded();
  await page.waitForFunction((q) => { const i = document.querySelector(q); return !i || i.complete; }, sel);
  assert.ok(await page.$eval(sel, (i) => i.naturalWidth > 0), "the closure photo's thumbnail loads");
  await shot(page, "09-rectifications");
});

/** Writes `rows` (objects with the keys of `head`) as a community CSV and imports it. */
function importCommunities(rows) {
  const head = ["id", "name", "district", "street", "lat", "lon"];
  const q = (v) => `"${String(v).replaceAll('"', '""')}"`;
  const csv = [head.join(","), ...rows.map((r) => head.map((k) => q(r[k])).join(","))].join("\n");
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "fenlei-"));
  const file = path.join(dir, "communities.csv");
  fs.writeFileSync(file, csv);
  try {
    execFileSync(BIN, ["--data", DATA, "import-communities", file], { stdio: ["ignore", "ignore", "inherit"] });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

test("a hostile community name and base run no script in the bulletin or the dashboard", async () => {
  // A community ranked this week gets a name made to run script if it were ever markup.
  const ranked = (await apiJson(page, `/v1/rankings?by=community&period=week&at=${todayCST()}`)).body.rows;
  assert.ok(ranked.length > 0, "the simulated week has scores");
  const { communities } = (await apiJson(page, "/v1/communities")).body;
  const original = communities.find((c) => c.id === ranked[0].key);
  const hostile = `<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script>"onmouseover="window.__pwned=3\u202E${original.name}`;
  importCommunities([{ ...original, name: hostile }]);
  try {
    for (const kind of ["weekly", "monthly"]) {
      const resp = await page.goto(`${URL}/v1/reports/${kind}.html?by=community`);
      assert.equal(resp.status(), 200);
      assert.match(resp.headers()["content-security-policy"], /default-src 'none'/);
      assert.equal(await page.evaluate(() => window.__pwned), undefined, `${kind}: no script ran`);
      assert.equal(await page.locator("script, img[src=x], [onerror], [onmouseover]").count(), 0);
      const text = await page.evaluate(() => document.body.innerText);
      assert.ok(text.includes(hostile.replace("\u202E", "")), `${kind}: the name is shown as text`);
      // Thumbnails are the media route of this server, or a note where a hash is not well formed.
      for (const src of await page.$$eval("img", (imgs) => imgs.map((i) => i.getAttribute("src")))) {
        assert.match(src, /^\/v1\/media\/[0-9a-f]{64}\?rendition=thumb$/);
      }
    }
    await shot(page, "11-bulletin-hostile");
    // A reflected value is refused before any page is made.
    const resp = await page.goto(`${URL}/v1/reports/weekly.html?base=${encodeURIComponent('"><script>window.__pwned=4</script>')}`);
    assert.equal(resp.status(), 400);
    assert.equal(await page.evaluate(() => window.__pwned), undefined);
    // The dashboard shows the same name as text, too.
    await page.goto(`${URL}/dashboard/`);
    await page.waitForSelector("#app:not([hidden])");
    await show(page, `#/rankings?by=community&period=week&at=${todayCST()}`);
    assert.equal(await page.evaluate(() => window.__pwned), undefined);
    assert.equal(await page.locator("#view img[src=x], #view script").count(), 0);
    assert.ok((await page.textContent("[data-testid=rankings-table]")).includes(hostile.replace("\u202E", "")));
  } finally {
    importCommunities([original]);
  }
});

test("signing out ends the session on the server", async () => {
  await page.click("#signout");
  await page.waitForSelector("#signin-form", { state: "visible" });
  assert.match(await page.textContent("#signin-error"), /已退出/);
  await shot(page, "10-signed-out");
  // The old cookie, replayed from outside the browser, no longer opens anything.
  const r = await fetch(`${URL}/v1/communities`, { headers: { cookie: sessionCookie } });
  assert.equal(r.status, 401);
  const s = await fetch(`${URL}/v1/session`, { headers: { cookie: sessionCookie } });
  assert.equal(s.status, 401);
  await page.context().close();
});

test("no page broke the Content-Security-Policy", () => {
  assert.deepEqual(cspViolations, []);
});
