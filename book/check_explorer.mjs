// Check that the scan-tree explorer of a built page works with no kernel and no network:
// moving its slider, and pressing Play, must change the frame it shows.
//
//   node book/check_explorer.mjs CHROMIUM URL [PNG]
//
// CHROMIUM is the browser binary, URL a page served on
// 127.0.0.1 with an explorer (chapter 2), PNG an optional screenshot of the explorer after the
// slider moved. Drives headless Chromium through the DevTools protocol (book/cdp.mjs), with
// no packages.
// Prints what it saw and exits 1 if the frames do not follow the slider and Play, or if the
// page threw. book/check_offline.sh and tests/test_browser.py run it on chapter 2.
import { writeFileSync } from "node:fs";
import { launch, sleep } from "./cdp.mjs";

const [binary, url, png] = process.argv.slice(2);
if (!binary || !url) {
  console.error("usage: check_explorer.mjs CHROMIUM URL [PNG]");
  process.exit(2);
}
let failed = false;
const exceptions = [];
let browser;
let send;
let evaluate;

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
  browser = await launch(binary, { width: 1280, height: 1000 });
  const tab = await browser.page();
  ({ send, evaluate } = tab);
  tab.on("Runtime.exceptionThrown", (p) => {
    const d = p.exceptionDetails;
    exceptions.push((d.exception && d.exception.description) || d.text);
  });
  await send("Runtime.enable");
  await send("Page.enable");
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
  if (browser) await browser.close();
}
process.exit(failed ? 1 : 0);
