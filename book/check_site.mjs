// Open every page of a built site in headless Chromium and report what a reader would hit.
//
//   node book/check_site.mjs CHROMIUM BASE_URL SITE_DIR [PAGE ...]      (Node 18 or later)
//
// CHROMIUM is the browser binary; BASE_URL is where SITE_DIR (the built HTML) is served on
// 127.0.0.1 (tests/test_browser.py serves it with python -m http.server); PAGE are paths
// relative to SITE_DIR (default: every .html outside _static, _sources, _images and vendor).
// Every host but 127.0.0.1 is unresolvable. Prints one JSON report on stdout: for each page,
//
//   errors     uncaught exceptions, console.error calls and browser log errors (failed loads)
//   failed     requests the site answered with HTTP >= 400 or could not serve
//   math       .math elements (the TeX Sphinx wrote), how many hold MathJax output, and the TeX
//              of formulas MathJax could not typeset (mjx-merror)
//   images     every <img>, and those that did not load (naturalWidth 0)
//   widgets    embedded widget views, and how many were drawn (a .widget-subarea with a box)
//   links      every same-site <a href>: the ones whose page is not served, or whose #anchor
//              names no id (or <a name>) on that page
//   clipped    content cut or spilling at the window width (1300 px), precisely:
//              (a) an element in the article whose overflow-x is hidden or clip and whose
//                  content is wider than its box (scrollWidth > clientWidth + 1): cut, no
//                  scrollbar;
//              (b) an element whose box reaches past the article column (.bd-article), left
//                  or right, by more than 1 px, with no ancestor inside the article that
//                  scrolls or clips it (overflow-x other than visible): it runs under the
//                  page's table of contents (only the outermost such element is reported);
//   page_scroll  the page's scrollWidth and its visible width (the window less a vertical
//              scrollbar): the page must not scroll sideways
//   search     search fields visible at this width outside the text (the theme's buttons and
//              inputs; the search page's own form is text)
//   ipynb      the same-site links to a .ipynb file (the download button), with the HTTP
//              status and whether the file parses as a notebook (nbformat 4)
//
// The script fails (exit 1) only when Chromium cannot be driven; judging is the test's job.
import { readdirSync, statSync, writeFileSync } from "node:fs";
import { join, relative, sep } from "node:path";
import { launch, sleep } from "./cdp.mjs";

const WIDTH = 1300;
const HEIGHT = 900;
const [binary, base, siteDir, ...given] = process.argv.slice(2);
if (!binary || !base || !siteDir) {
  console.error("usage: check_site.mjs CHROMIUM BASE_URL SITE_DIR [PAGE ...]");
  process.exit(2);
}
const root = base.endsWith("/") ? base : `${base}/`;
const origin = new URL(root).origin;

function sitePages(dir) {
  const skip = new Set(["_static", "_sources", "_images", "vendor", "_sphinx_design_static"]);
  const out = [];
  const walk = (d) => {
    for (const name of readdirSync(d).sort()) {
      const p = join(d, name);
      if (statSync(p).isDirectory()) {
        if (!(d === dir && skip.has(name))) walk(p);
      } else if (name.endsWith(".html")) {
        out.push(relative(dir, p).split(sep).join("/"));
      }
    }
  };
  walk(dir);
  return out;
}

// -- what the page itself reports, once it has settled ---------------------------------------
async function settlePage() {
  const until = async (test, ms) => {
    const end = Date.now() + ms;
    while (Date.now() < end) { if (test()) return true; await new Promise((r) => setTimeout(r, 100)); }
    return test();
  };
  const hasMath = document.querySelector('.math') !== null;
  if (hasMath) {
    await until(() => window.MathJax && MathJax.startup && MathJax.startup.promise, 15000);
    if (window.MathJax && MathJax.startup && MathJax.startup.promise) await MathJax.startup.promise;
  }
  const views = () => Array.from(document.querySelectorAll(
    'script[type="application/vnd.jupyter.widget-view+json"]'));
  if (views().length) {
    await until(() => views().every((s) => {
      const sub = s.previousElementSibling;
      return sub && sub.classList.contains('widget-subarea') && sub.children.length > 0;
    }), 20000);
    // labels typeset by MathJax after the widgets render
    if (window.MathJax && MathJax.startup && MathJax.startup.promise) await MathJax.startup.promise;
  }
  await Promise.all(Array.from(document.images).map((img) => img.complete ? null :
    new Promise((r) => { img.addEventListener('load', r); img.addEventListener('error', r);
                         setTimeout(r, 10000); })));
  await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
  return true;
}

function inspectPage() {
  const short = (s, n = 90) => (s || '').replace(/\s+/g, ' ').trim().slice(0, n);
  const where = (el) => {
    let sec = el.closest('section[id]');
    const cls = el.classList.length ? '.' + Array.from(el.classList).slice(0, 3).join('.') : '';
    return { element: el.tagName.toLowerCase() + cls, section: sec ? sec.id : '',
             text: short(el.textContent) };
  };
  const math = Array.from(document.querySelectorAll('.math'));
  const untypeset = math.filter((m) => !m.querySelector('mjx-container'));
  const merrors = Array.from(document.querySelectorAll('mjx-merror')).map((e) =>
    short(e.getAttribute('data-mjx-error') || e.textContent, 120));
  const images = Array.from(document.images).map((img) => ({
    src: img.getAttribute('src') || '', ok: img.complete && img.naturalWidth > 0 }));
  const views = Array.from(document.querySelectorAll(
    'script[type="application/vnd.jupyter.widget-view+json"]'));
  const drawn = views.filter((s) => {
    const sub = s.previousElementSibling;
    return sub && sub.classList.contains('widget-subarea') &&
      sub.querySelector('.jupyter-widgets, .widget-box, .widget-html, .widget-inline-hbox') &&
      sub.getBoundingClientRect().height > 0;
  });
  const links = Array.from(document.querySelectorAll('a[href]')).map((a) => ({
    href: a.href, text: short(a.textContent, 50), raw: a.getAttribute('href') }))
    .filter((l) => !l.raw.startsWith('javascript:'));
  const ids = Array.from(document.querySelectorAll('[id]')).map((e) => e.id)
    .concat(Array.from(document.querySelectorAll('a[name]')).map((e) => e.getAttribute('name')));

  // clipping, at this window width
  const article = document.querySelector('.bd-article') || document.querySelector('main') ||
    document.body;
  const ar = article.getBoundingClientRect();
  const clipped = [];
  const spilled = new Set();
  const scrollers = [];
  const scrolls = (o) => o !== 'visible';
  for (const el of article.querySelectorAll('*')) {
    if (el.closest('mjx-assistive-mml, script, style, template')) continue;
    const cs = getComputedStyle(el);
    if (cs.display === 'none' || cs.visibility === 'hidden') continue;
    const hides = (o) => o === 'hidden' || o === 'clip';
    if (((hides(cs.overflowX) && el.scrollWidth > el.clientWidth + 1) ||
         (hides(cs.overflowY) && el.scrollHeight > el.clientHeight + 1)) &&
        el.clientWidth > 1 && el.clientHeight > 1 &&
        !(el.parentElement && el.parentElement.closest('mjx-container'))) {
      // scrollWidth also counts content no one sees (MathJax's assistive MathML is a clipped,
      // absolutely placed copy): measure the visible descendants' boxes against the box
      const box = el.getBoundingClientRect();
      const inner = box.left + el.clientLeft;
      const limit = inner + el.clientWidth;
      const innerTop = box.top + el.clientTop;
      const floor = innerTop + el.clientHeight;
      let right = limit, left = inner, top = innerTop, bottom = floor;
      for (const d of el.querySelectorAll('*')) {
        if (d.closest('mjx-assistive-mml')) continue;
        const dr = d.getBoundingClientRect();
        if (dr.width === 0 || dr.height === 0) continue;
        // folded content (a collapsed solution) is hidden on purpose, not cut
        if (!d.checkVisibility({ visibilityProperty: true, opacityProperty: true })) continue;
        right = Math.max(right, dr.right);
        left = Math.min(left, dr.left);
        top = Math.min(top, dr.top);
        bottom = Math.max(bottom, dr.bottom);
      }
      const byX = hides(cs.overflowX) ? Math.max(right - limit, inner - left) : 0;
      const byY = hides(cs.overflowY) ? Math.max(bottom - floor, innerTop - top) : 0;
      if (byX > 1 || byY > 1) {
        clipped.push({ kind: 'cut', overflow: `${cs.overflowX} ${cs.overflowY}`,
          by: Math.round(Math.max(byX, byY)), axis: byX > 1 ? 'x' : 'y',
          width: el.clientWidth, ...where(el) });
      }
    }
    const r = el.getBoundingClientRect();
    if (r.width === 0 || r.height === 0) continue;
    // a scroll box whose content is wider than it: a reader must scroll sideways
    if ((cs.overflowX === 'auto' || cs.overflowX === 'scroll') &&
        el.scrollWidth > el.clientWidth + 1) {
      scrollers.push({ by: el.scrollWidth - el.clientWidth, width: el.clientWidth,
        output: !!el.closest('.cell_output, .output'), ...where(el) });
    }
    // a box that scrolls vertically though nothing sets its height: a stray scrollbar
    if ((cs.overflowY === 'auto' || cs.overflowY === 'scroll') && cs.maxHeight === 'none' &&
        cs.height === 'auto' && el.scrollHeight > el.clientHeight + 1) {
      clipped.push({ kind: 'vscroll', by: el.scrollHeight - el.clientHeight,
                     height: el.clientHeight, ...where(el) });
    }
    if (r.right > ar.right + 1 || r.left < ar.left - 1) {
      let p = el.parentElement;
      let held = false;
      while (p && p !== article) {
        if (spilled.has(p)) { held = true; break; }
        if (scrolls(getComputedStyle(p).overflowX)) { held = true; break; }
        p = p.parentElement;
      }
      spilled.add(el);
      if (!held) clipped.push({ kind: 'spill', by: Math.round(Math.max(r.right - ar.right,
        ar.left - r.left)), width: Math.round(r.width), column: Math.round(ar.width), ...where(el) });
    }
  }
  // markup that did not render: MyST roles or TeX in the prose, prose inside a formula
  const markup = [];
  const ROLE = /\{(?:ref|numref|eq|cite|doc|term|math|download|prf:ref)(?::[a-z]+)?\}`/;
  const TEX = /\\(?:[a-zA-Z]{2,}|[()[\]])|\$\$/;
  const walker = document.createTreeWalker(article, NodeFilter.SHOW_TEXT);
  for (let t = walker.nextNode(); t; t = walker.nextNode()) {
    const el = t.parentElement;
    if (!el || el.closest('pre, code, .math, mjx-container, script, style, .highlight, ' +
                          '.cell_output, .output, kbd, samp, .widget-subarea')) continue;
    const s = t.textContent;
    const m = s.match(ROLE) || s.match(TEX);
    if (m) markup.push({ kind: 'prose', found: m[0], ...where(el), text: short(s, 120) });
  }
  const docMath = (window.MathJax && MathJax.startup && MathJax.startup.document &&
    MathJax.startup.document.math) ? Array.from(MathJax.startup.document.math) : [];
  for (const item of docMath) {
    // words inside \text{...} and the like are meant as words
    const tex = String(item.math || '').replace(
      /\\(?:text|textrm|textit|textbf|mathrm|mbox|operatorname|hbox)\s*\{[^{}]*\}/g, '');
    const m = tex.match(ROLE) || tex.match(/\*\*[A-Za-z]/) ||
      tex.match(/(?:^|[^\\a-zA-Z])(?:the|and|of|is|by|with)\s+[a-z]+\s+[a-z]+\s+[a-z]+/);
    if (m) markup.push({ kind: 'formula', found: m[0], section: '', element: 'mjx',
                         text: short(tex, 120) });
  }
  const visible = (el) => {
    const r = el.getBoundingClientRect();
    const cs = getComputedStyle(el);
    return r.width > 0 && r.height > 0 && cs.visibility !== 'hidden' && el.offsetParent !== null &&
      r.right > 0 && r.left < innerWidth;
  };
  const search = Array.from(document.querySelectorAll(
    '.search-button-field, .search-button, input[type="search"], #searchbox input, form.bd-search'))
    .filter((el) => visible(el) && !el.closest('dialog:not([open]), .bd-article, .bd-search-container'))
    .filter((el, i, all) => !all.some((o) => o !== el && o.contains(el)))
    .map((el) => where(el).element);
  return {
    url: location.href,
    title: document.title,
    math: { elements: math.length, untypeset: untypeset.length,
            untypeset_examples: untypeset.slice(0, 3).map((m) => short(m.textContent, 80)),
            containers: document.querySelectorAll('mjx-container').length, merrors },
    images,
    widgets: { views: views.length, drawn: drawn.length },
    links, ids,
    clipped,
    scrollers,
    markup,
    page_scroll: { scrollWidth: document.documentElement.scrollWidth,
                   width: document.documentElement.clientWidth, window: innerWidth },
    search,
  };
}

// -- the crawl -------------------------------------------------------------------------------
const pages = given.length ? given : sitePages(siteDir);
const fetched = new Map(); // url without hash -> {status, ids:Set, text}

async function fetchPage(url) {
  if (!fetched.has(url)) {
    const entry = { status: 0, ids: null, text: "" };
    try {
      const res = await fetch(url, { redirect: "follow" });
      entry.status = res.status;
      entry.text = await res.text();
    } catch (err) {
      entry.error = String(err);
    }
    fetched.set(url, entry);
  }
  return fetched.get(url);
}

function staticIds(html) {
  const ids = new Set();
  for (const m of html.matchAll(/\s(?:id|name)\s*=\s*["']([^"']+)["']/g)) ids.add(m[1]);
  return ids;
}

const report = { width: WIDTH, pages: [] };
const browser = await launch(binary, { width: WIDTH, height: HEIGHT });
try {
  const tab = await browser.page();
  let errors = [];
  let failed = [];
  const requests = new Map();
  tab.on("Runtime.exceptionThrown", (p) => {
    const d = p.exceptionDetails;
    errors.push({
      source: "exception",
      text: ((d.exception && d.exception.description) || d.text || "").slice(0, 400),
      url: d.url || "",
    });
  });
  tab.on("Runtime.consoleAPICalled", (p) => {
    if (p.type === "error" || p.type === "assert") {
      const text = p.args.map((a) => a.value ?? a.description ?? "").join(" ");
      errors.push({ source: `console.${p.type}`, text: text.slice(0, 400), url: "" });
    }
  });
  tab.on("Log.entryAdded", (p) => {
    if (p.entry.level === "error") {
      errors.push({ source: `log.${p.entry.source}`, text: p.entry.text.slice(0, 400),
                    url: p.entry.url || "" });
    }
  });
  tab.on("Network.requestWillBeSent", (p) => requests.set(p.requestId, p.request.url));
  tab.on("Network.responseReceived", (p) => {
    if (p.response.status >= 400) failed.push({ url: p.response.url, status: p.response.status });
  });
  tab.on("Network.loadingFailed", (p) => {
    if (!p.canceled) {
      failed.push({ url: requests.get(p.requestId) || "", status: 0, error: p.errorText });
    }
  });
  await tab.send("Runtime.enable");
  await tab.send("Log.enable");
  await tab.send("Network.enable");
  await tab.send("Page.enable");
  await tab.send("Network.setCacheDisabled", { cacheDisabled: false });

  for (const page of pages) {
    const started = Date.now();
    const url0 = new URL(page, root).href;
    const head = await fetchPage(url0);
    const refresh = head.text.match(/<meta[^>]+http-equiv=["']?refresh["']?[^>]*content=["'][^"']*url=([^"']+)["']/i);
    if (refresh) {
      const to = new URL(refresh[1], url0).href.replace(/#.*$/, "");
      const target = await fetchPage(to);
      report.pages.push({ page, redirect: refresh[1], errors: [], failed: [],
        links: { checked: 1, external: 0, broken: target.status === 200 ? [] :
          [{ href: refresh[1], text: "meta refresh", why: `HTTP ${target.status}` }] } });
      continue;
    }
    errors = [];
    failed = [];
    requests.clear();
    const url = new URL(page, root).href;
    let done;
    let timer;
    const loaded = new Promise((resolve) => {
      done = () => resolve(true);
      tab.on("Page.loadEventFired", done);
      timer = setTimeout(() => resolve(false), 30000);
    });
    await tab.send("Page.navigate", { url });
    const ok = await loaded;
    clearTimeout(timer);
    tab.off("Page.loadEventFired", done);
    let seen;
    try {
      await tab.evaluate(`(${settlePage})()`, 40000);
      await sleep(200);
      seen = await tab.evaluate(`(${inspectPage})()`, 30000);
    } catch (err) {
      report.pages.push({ page, error: `could not inspect the page: ${err.message}` });
      continue;
    }
    // links: the target page must be served; a #fragment must name an id on it
    const here = new URL(seen.url);
    const hereIds = new Set(seen.ids);
    const broken = [];
    let checked = 0;
    const ipynb = [];
    for (const link of seen.links) {
      let target;
      try {
        target = new URL(link.href);
      } catch {
        broken.push({ ...link, why: "not a URL" });
        continue;
      }
      if (target.origin !== origin) continue;
      checked++;
      const bare = target.origin + target.pathname + target.search;
      const samePage = bare === here.origin + here.pathname + here.search;
      const entry = samePage ? { status: 200 } : await fetchPage(bare);
      if (entry.status !== 200) {
        broken.push({ href: link.raw, text: link.text, why: `HTTP ${entry.status || entry.error}` });
        continue;
      }
      if (target.pathname.endsWith(".ipynb")) {
        let notebook = false;
        try {
          const nb = JSON.parse(entry.text);
          notebook = nb.nbformat === 4 && Array.isArray(nb.cells) && nb.cells.length > 0;
        } catch {}
        ipynb.push({ href: link.raw, status: entry.status, notebook });
      }
      const frag = decodeURIComponent(target.hash.slice(1));
      if (!frag) continue;
      let ids;
      if (samePage) ids = hereIds;
      else {
        if (!entry.ids) entry.ids = staticIds(entry.text);
        ids = entry.ids;
      }
      if (!ids.has(frag)) broken.push({ href: link.raw, text: link.text, why: `no id "${frag}"` });
    }
    if (process.env.CHECK_SITE_SHOTS) {
      const dims = await tab.evaluate("({w: innerWidth, h: document.documentElement.scrollHeight})");
      const shot = await tab.send("Page.captureScreenshot", { format: "png", captureBeyondViewport: true,
        clip: { x: 0, y: 0, width: dims.w, height: Math.min(dims.h, 16000), scale: 1 } });
      writeFileSync(join(process.env.CHECK_SITE_SHOTS, page.replace(/[\/]/g, "_") + ".png"),
        Buffer.from(shot.data, "base64"));
    }
    delete seen.ids;
    const external = seen.links.filter((l) => {
      try {
        return new URL(l.href).origin !== origin;
      } catch {
        return false;
      }
    }).length;
    seen.links = { checked, external, broken };
    seen.ipynb = ipynb;
    const seenUrls = new Set();
    report.pages.push({
      page,
      loaded: ok,
      seconds: (Date.now() - started) / 1000,
      errors,
      failed: failed.filter((f) => {
        const key = `${f.url} ${f.status}`;
        if (seenUrls.has(key)) return false;
        seenUrls.add(key);
        return true;
      }),
      ...seen,
    });
  }
  await tab.close();
} finally {
  await browser.close();
}
console.log(JSON.stringify(report, null, 1));
