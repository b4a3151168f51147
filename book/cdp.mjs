// A minimal Chrome DevTools Protocol client for the site checks: no npm packages, no WebSocket.
//
//   import { launch } from "./cdp.mjs";
//   const browser = await launch(CHROMIUM, { width: 1300, height: 900 });
//   const tab = await browser.page();   // tab.send(method, params), tab.on(event, fn),
//   ...                                 // tab.evaluate(expression) -> value (awaits promises)
//   await browser.close();
//
// Chromium talks the protocol over a pipe (--remote-debugging-pipe: it reads commands on file
// descriptor 3 and writes replies and events on 4, each message JSON ended by a NUL byte), so
// any Node from 18 on works (Debian's nodejs package included) and no port is opened. It runs
// headless with a fresh profile and every host but 127.0.0.1 unresolvable: nothing can come
// from the network even on a machine that has one.
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export async function launch(binary, { width = 1300, height = 900 } = {}) {
  const profile = mkdtempSync(join(tmpdir(), "scanbook-chromium-"));
  let stderr = "";
  const chrome = spawn(
    binary,
    [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-dev-shm-usage",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--disable-extensions",
      "--no-first-run",
      "--no-default-browser-check",
      "--mute-audio",
      `--window-size=${width},${height}`,
      `--user-data-dir=${profile}`,
      "--remote-debugging-pipe",
      "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
      "about:blank",
    ],
    { stdio: ["ignore", "ignore", "pipe", "pipe", "pipe"] },
  );
  chrome.stderr.on("data", (d) => {
    stderr = (stderr + d).slice(-4000);
  });
  let exited = null;
  const pending = new Map();
  const listeners = new Map(); // "sessionId method" -> [fn]
  let nextId = 1;
  const fail = (why) => {
    for (const { reject } of pending.values()) reject(new Error(why));
    pending.clear();
  };
  chrome.on("exit", (code, signal) => {
    exited = code ?? signal;
    fail(`chromium exited (${exited}): ${stderr.slice(-1500)}`);
  });
  chrome.on("error", (err) => {
    exited = err.message;
    fail(`chromium could not start: ${err.message}`);
  });

  let buffer = "";
  chrome.stdio[4].setEncoding("utf8");
  chrome.stdio[4].on("data", (chunk) => {
    buffer += chunk;
    let end;
    while ((end = buffer.indexOf("\0")) >= 0) {
      const m = JSON.parse(buffer.slice(0, end));
      buffer = buffer.slice(end + 1);
      if (m.id && pending.has(m.id)) {
        const { resolve, reject, method } = pending.get(m.id);
        pending.delete(m.id);
        if (m.error) reject(new Error(`${method}: ${m.error.message}`));
        else resolve(m.result);
      } else if (m.method) {
        for (const fn of listeners.get(`${m.sessionId || ""} ${m.method}`) || []) fn(m.params);
      }
    }
  });
  chrome.stdio[3].on("error", () => {});

  const sendOn = (sessionId) => (method, params = {}) => {
    if (exited !== null) return Promise.reject(new Error(`chromium exited (${exited})`));
    const id = nextId++;
    const message = { id, method, params };
    if (sessionId) message.sessionId = sessionId;
    chrome.stdio[3].write(JSON.stringify(message) + "\0");
    return new Promise((resolve, reject) => pending.set(id, { resolve, reject, method }));
  };
  const browserSend = sendOn(null);
  let timer;
  const version = await Promise.race([
    browserSend("Browser.getVersion"),
    new Promise((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`chromium did not answer on its DevTools pipe: ${stderr.slice(-1500)}`)),
        30000,
      );
    }),
  ]).finally(() => clearTimeout(timer));

  async function page() {
    const { targetId } = await browserSend("Target.createTarget", { url: "about:blank" });
    const { sessionId } = await browserSend("Target.attachToTarget", { targetId, flatten: true });
    const send = sendOn(sessionId);
    const on = (method, fn) => {
      const key = `${sessionId} ${method}`;
      if (!listeners.has(key)) listeners.set(key, []);
      listeners.get(key).push(fn);
    };
    const off = (method, fn) => {
      const list = listeners.get(`${sessionId} ${method}`) || [];
      const i = list.indexOf(fn);
      if (i >= 0) list.splice(i, 1);
    };
    // the value of a page expression (a promise is awaited); throws on an exception
    const evaluate = async (expression, timeout = 20000) => {
      const r = await send("Runtime.evaluate", {
        expression,
        returnByValue: true,
        awaitPromise: true,
        timeout,
      });
      if (r.exceptionDetails) {
        const d = r.exceptionDetails;
        throw new Error(((d.exception && d.exception.description) || d.text).slice(0, 500));
      }
      return r.result.value;
    };
    await send("Emulation.setDeviceMetricsOverride", {
      width,
      height,
      deviceScaleFactor: 1,
      mobile: false,
    });
    const close = () => browserSend("Target.closeTarget", { targetId }).catch(() => {});
    return { send, on, off, evaluate, close };
  }

  async function close() {
    if (exited === null) {
      let wait;
      await Promise.race([
        browserSend("Browser.close").catch(() => {}),
        new Promise((r) => {
          wait = setTimeout(r, 3000);
        }),
      ]);
      clearTimeout(wait);
      for (let i = 0; i < 30 && exited === null; i++) await sleep(100);
      if (exited === null) chrome.kill("SIGKILL");
    }
    rmSync(profile, { recursive: true, force: true });
  }

  return { page, close, version: version.product };
}
