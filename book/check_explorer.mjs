// Check that the scan-tree explorer of a built page works with no kernel and no network:
// moving its slider, and pressing Play, must change the frame it shows.
//
//   node --experimental-websocket book/check_explorer.mjs CHROMIUM URL [PNG]
//
// (Node 22 and later need no flag.) CHROMIUM is the browser binary, URL a page served on
// 127.0.0.1 with an explorer (chapter 2), PNG an optional screenshot of the explorer after the
// slider moved. Drives headless Chromium through the DevTools protocol, with no packages.
// Prints what it saw and exits 1 if the frames do not follow the slider and Play, or if the
// page threw. book/check_offline.sh runs it on chapter 2.
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const [browser, url, png] = process.argv.slice(2);
if (!browser || !url) {
  console.error("usage: check_explorer.mjs CHROMIUM URL [PNG]");
  process.exit(2);
}
if (typeof WebSocket === "undefined") {
  console.error("check_explorer: this Node has no WebSocket; run it with --experimental-websocket");
  process.exit(2);
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const port = 9300 + Math.floor(Math.random() * 500);
const profile = mkdtempSync(join(tmpdir(), "explorer-"));
const chrome = spawn(browser, [
  "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
  "--disable-component-update", "--disable-sync", "--no-first-run",
  `--user-data-dir=${profile}`, `--remote-debugging-port=${port}`,
  "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1", "about:blank",
], { stdio: "ignore" });

let ws;
let failed = false;
const exceptions = [];
const pending = new Map();
let nextId = 1;

function send(method, params = {}) {
  const id = nextId++;
  ws.send(JSON.stringify({ id, method, params }));
  return new Promise((resolve, reject) => pending.set(id, { resolve, reject, method }));
}

async function evaluate(expression) {
  const r = await send("Runtime.evaluate", { expression, returnByValue: true });
  if (r.exceptionDetails) throw new Error(JSON.stringify(r.exceptionDetails).slice(0, 500));
  return r.result.value;
}

// the first explorer: the VBox around the first Play widget; its frames are the Stack's children
const STATE = `(() => {
  const play = document.querySelector('.widget-play');
  let box = play;
  while (box && !(box.classList.contains('widget-vbox') && box.querySelector('.widget-slider')))
    box = box.parentElement;
  if (!box) return null;
  box.id = 'explorer0';
  const slider = box.querySelector('.widget-slider');
  const stack = Array.from(box.children).find((k) => !k.contains(slider));
  const shown = Array.from(stack.children).filter((f) => f.offsetParent !== null);
  const step = shown.map((f) => (f.innerText.match(/step \\d+ of \\d+/) || [''])[0]);
  return { value: Number(slider.querySelector('.noUi-handle').getAttribute('aria-valuenow')),
           shown: shown.length, step: step[0] || '' };
})()`;

function check(ok, what) {
  console.log(`${ok ? "ok  " : "FAIL"} ${what}`);
  if (!ok) failed = true;
}

try {
  let target;
  for (let i = 0; i < 100 && !target; i++) {
    try {
      const res = await fetch(`http://127.0.0.1:${port}/json/new?about:blank`, { method: "PUT" });
      target = await res.json();
    } catch {
      await sleep(100);
    }
  }
  if (!target) throw new Error("chromium did not open its DevTools port");
  ws = new WebSocket(target.webSocketDebuggerUrl);
  await new Promise((resolve, reject) => {
    ws.onopen = resolve;
    ws.onerror = reject;
  });
  ws.onmessage = (event) => {
    const m = JSON.parse(event.data);
    if (m.id && pending.has(m.id)) {
      const { resolve, reject, method } = pending.get(m.id);
      pending.delete(m.id);
      if (m.error) reject(new Error(`${method}: ${m.error.message}`));
      else resolve(m.result);
    } else if (m.method === "Runtime.exceptionThrown") {
      const d = m.params.exceptionDetails;
      exceptions.push((d.exception && d.exception.description) || d.text);
    }
  };
  await send("Runtime.enable");
  await send("Page.enable");
  await send("Emulation.setDeviceMetricsOverride", {
    width: 1280, height: 1000, deviceScaleFactor: 1, mobile: false,
  });
  await send("Page.navigate", { url });
  let s = null;
  for (let i = 0; i < 60 && !s; i++) {
    await sleep(500);
    s = await evaluate(STATE);
  }
  if (!s) throw new Error("no explorer (Play + slider + frames) rendered on the page");
  await sleep(1500);
  s = await evaluate(STATE);
  console.log("rendered:", JSON.stringify(s));
  const last = Number((s.step.match(/of (\d+)/) || [0, 0])[1]);
  check(s.shown === 1 && s.value === 0 && /^step 0 of/.test(s.step) && last > 3,
    "one frame shown, step 0");

  await evaluate("document.querySelector('#explorer0 .noUi-handle').focus()");
  for (let i = 0; i < 3; i++) {
    for (const type of ["keyDown", "keyUp"]) {
      await send("Input.dispatchKeyEvent", {
        type, key: "ArrowRight", code: "ArrowRight", windowsVirtualKeyCode: 39,
      });
    }
    await sleep(200);
  }
  await sleep(800);
  s = await evaluate(STATE);
  console.log("slider moved 3 right:", JSON.stringify(s));
  check(s.value === 3 && /^step 3 of/.test(s.step), "the slider shows frame 3");
  if (png) {
    const r = await evaluate(`(() => { const b = document.getElementById('explorer0');
      b.scrollIntoView({block: 'center'}); const r = b.getBoundingClientRect();
      return {x: r.x + scrollX, y: r.y + scrollY, width: r.width, height: r.height}; })()`);
    await sleep(300);
    const shot = await send("Page.captureScreenshot", { format: "png", clip: { ...r, scale: 1 } });
    writeFileSync(png, Buffer.from(shot.data, "base64"));
    console.log("screenshot:", png);
  }

  const button = await evaluate(`(() => { const b = document.querySelector(
      '#explorer0 .widget-play button'); b.scrollIntoView({block: 'center'});
      const r = b.getBoundingClientRect(); return {x: r.x + r.width / 2, y: r.y + r.height / 2}; })()`);
  for (const type of ["mousePressed", "mouseReleased"]) {
    await send("Input.dispatchMouseEvent", { type, ...button, button: "left", clickCount: 1 });
  }
  await sleep(2500);
  const after = await evaluate(STATE);
  console.log("after Play:", JSON.stringify(after));
  check(after.value > 3 && after.step === `step ${after.value} of ${last}`,
    "Play advances the frames");
  // sphinx-thebe's inline script is included twice by Jupyter Book 1.x and redeclares a
  // constant; it is harmless (thebe is off) and not the widgets' doing
  const ours = exceptions.filter((e) => !/THEBE_JS_URL/.test(e));
  check(ours.length === 0, `no exceptions from the widgets${ours.length ? ": " + ours.join(" | ") : ""}`);
} catch (err) {
  console.error("check_explorer:", err.message);
  failed = true;
} finally {
  if (ws) ws.close();
  chrome.kill();
  await sleep(300);
  rmSync(profile, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
