// Keeps the notification bell current over /ws/me/ and announces new notifications politely.
// No dependencies; the bell works without this file (the count is rendered on every page).
"use strict";

(() => {
  const bell = document.querySelector("[data-bell]");
  if (!bell || !("WebSocket" in window)) return;
  const count = bell.querySelector("[data-bell-count]");
  const live = document.querySelector("[data-bell-live]");
  let delay = 1000;
  const maxDelay = 30000;

  function show(unread) {
    const n = Number(unread) || 0;
    count.textContent = String(n);
    count.hidden = n === 0;
    bell.setAttribute(
      "aria-label",
      n === 0 ? bell.dataset.labelNone : bell.dataset.labelSome.replace("%(n)s", String(n)),
    );
    bell.dataset.unread = String(n);
  }

  function announce(text) {
    if (!live) return;
    live.textContent = "";
    // A fresh text node after a tick makes screen readers read repeated messages too.
    window.setTimeout(() => { live.textContent = text; }, 50);
  }

  function connect() {
    const scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
    const socket = new WebSocket(scheme + window.location.host + "/ws/me/");
    socket.addEventListener("open", () => { delay = 1000; });
    socket.addEventListener("message", (event) => {
      let frame;
      try { frame = JSON.parse(event.data); } catch { return; }
      if (frame.type === "unread") {
        show(frame.count);
      } else if (frame.type === "notification") {
        show(frame.unread);
        announce("New notification: " + frame.title);
      }
    });
    socket.addEventListener("close", (event) => {
      if (event.code === 4401) return; // signed out: nothing to keep current
      const wait = delay + Math.floor(Math.random() * 500);
      delay = Math.min(delay * 2, maxDelay);
      window.setTimeout(connect, wait);
    });
  }

  connect();
})();
