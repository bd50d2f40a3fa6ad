// The group chat room: a small, dependency-free client for the protocol in docs/protocol.md.
//
// Delivery: we remember the highest seq shown (lastSeq) and the highest change rev applied
// (lastRev), send {"type":"resume","after":lastSeq,"since":lastRev} on every (re)connect, and ask
// to resume whenever a seq skips ahead. The resume brings new messages and the current state of
// older ones that changed (edits, deletions, reactions) while we weren't listening. Sends stay
// in an outbox until acked and are re-sent with the same client_id after a reconnect, so a
// dropped connection costs a moment, never a message. Message text is only ever set with
// textContent.
"use strict";

(() => {
  const configNode = document.getElementById("room-config");
  const room = document.getElementById("room");
  if (!configNode || !room) return;

  const config = JSON.parse(configNode.textContent);
  const t = room.dataset; // translated strings, from data-* attributes
  const $ = (id) => document.getElementById(id);
  const list = $("room-messages");
  const scroller = $("room-scroll");
  const statusNode = $("room-status");
  const announcer = $("room-announcer");
  const form = $("room-form");
  const bodyInput = $("room-body");
  const cwInput = $("room-cw");
  const errorNode = $("room-error");
  const olderButton = $("room-older");
  const jumpButton = $("room-jump");
  const presenceList = $("room-presence");
  const presenceNote = $("room-presence-note");
  const hidePresence = $("room-hide-presence");
  const LINK = /https?:\/\/[^\s<>"']+[^\s<>"'.,;:!?)\]]/gi;

  const shownSeqs = [...list.querySelectorAll(".chat-item")].map((li) => Number(li.dataset.seq));
  let lastSeq = Math.max(config.latestSeq || 0, ...shownSeqs, 0);
  let lastRev = config.latestRev || 0;
  let oldestSeq = config.oldestSeq;
  let hasMore = config.hasMore;
  let socket = null;
  let helpPending = false;
  let attempts = 0;
  let resuming = false;
  let closedForGood = false;
  let readTimer = null;
  const outbox = new Map(); // client_id -> frame, until acked
  // What the room's other scripts may use (static/js/room-*.js): they send through the same
  // socket and outbox, and build nodes the same way.
  room.roomApi = { send: (f) => send(f), queue: (f) => queue(f), pending: (id) => outbox.get(id), unqueue: (id) => outbox.delete(id), newClientId: () => newClientId(), el: (...a) => el(...a), showSupport: (f) => showSupport(f), config, t };
  const openedWarnings = new Set(); // seqs whose content note this reader opened

  // --- Rendering (mirrors groups/templatetags/room_markup.py) --------------------------------

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function bodyNode(text) {
    const p = el("p", "chat-body");
    let last = 0;
    for (const match of text.matchAll(LINK)) {
      p.append(document.createTextNode(text.slice(last, match.index)));
      const a = el("a", "", match[0]);
      a.href = match[0];
      a.rel = "nofollow noopener noreferrer";
      p.append(a);
      last = match.index + match[0].length;
    }
    p.append(document.createTextNode(text.slice(last)));
    return p;
  }

  function timeText(iso) {
    return new Date(iso).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  }

  // A message by someone this reader muted arrives folded, for them alone ("muted_author"):
  // the whole message, its author's name too, opens on a tap.
  function renderMessage(m) {
    const li = renderMessageParts(m);
    if (!m.muted_author) return li;
    const details = el("details", "chat-muted");
    details.id = `msg-${m.seq}-muted`;
    const summary = el("summary", "", `${t.mutedLine} `);
    summary.append(el("span", "chat-cw-hint", t.softHint));
    details.append(summary, ...li.childNodes);
    details.open = openedWarnings.has(m.seq);
    li.classList.add("chat-item-muted");
    li.append(details);
    return li;
  }

  function renderMessageParts(m) {
    const kindClass = { wave: " chat-item-wave", checkin: " chat-item-checkin", companion: " chat-item-companion" }[m.kind] || "";
    const li = el("li", `chat-item${kindClass}`);
    li.id = `msg-${m.seq}`;
    li.dataset.seq = String(m.seq);
    const meta = el("p", "chat-meta");
    meta.append(el("span", "chat-author", m.author.name), " ");
    const time = el("time", "", timeText(m.created));
    time.dateTime = m.created;
    meta.append(time);
    if (m.edited) meta.append(" ", el("span", "chat-edited", t.edited));
    li.append(meta);
    // Held for a moderator: others keep an empty, hidden place (so seq has no gap) until an
    // update approves it; the author sees it with a note.
    if (m.held && !m.own) {
      li.hidden = true;
      return li;
    }
    if (m.deleted) {
      li.append(el("p", "chat-gone", t.deleted));
      return li;
    }
    if (m.hidden) {
      li.append(el("p", "chat-gone", t.hidden));
      return li;
    }
    if (m.kind === "wave") {
      li.append(el("p", "chat-wave", t.wave));
      return li;
    }
    if (m.kind === "companion") {
      // The practice companion (a program): its words only, nothing to react to or report.
      li.append(bodyNode(m.body));
      return li;
    }
    if (m.held) li.append(el("p", "chat-held", t.held));
    const softened = (m.softened || []).length > 0;
    if (softened) li.classList.add("chat-item-softened");
    if (m.kind === "checkin") {
      li.append(checkInCard(m));
    } else if (softened && !m.content_warning) {
      // A topic this reader asked to have softened: folded for them only, opened on a tap.
      const details = el("details", "chat-soft");
      details.id = `msg-${m.seq}-soft`;
      const summary = el("summary", "", `${softenedText(m)} `);
      summary.append(el("span", "chat-cw-hint", t.softHint));
      details.append(summary, bodyNode(m.body));
      details.open = openedWarnings.has(m.seq);
      li.append(details);
    } else if (m.content_warning && !m.folded) {
      // The note names a topic this reader doesn't soften: shown as a label, words open.
      const label = el("p", "chat-cw-label", `${t.cwPrefix} ${m.content_warning}`);
      li.append(label, bodyNode(m.body));
    } else if (m.content_warning) {
      const details = el("details", "chat-cw");
      const summary = el("summary", "", `${t.cwPrefix} ${m.content_warning} `);
      summary.append(el("span", "chat-cw-hint", t.cwHint));
      details.append(summary, bodyNode(m.body));
      details.open = openedWarnings.has(m.seq);
      li.append(details);
    } else {
      li.append(bodyNode(m.body));
    }
    const reactions = el("div", "chat-reactions");
    reactions.setAttribute("role", "group");
    reactions.setAttribute("aria-label", t.reactionsLabel);
    for (const { value, label } of config.reactions) {
      const button = el("button", "chat-reaction", label);
      button.type = "button";
      button.dataset.reaction = value;
      button.setAttribute("aria-pressed", String((m.my_reactions || []).includes(value)));
      const count = (m.reactions || {})[value];
      if (count) button.append(" ", el("span", "chat-count", String(count)));
      reactions.append(button);
    }
    li.append(reactions);
    if (!m.own) li.append(reportControl(m.seq), personControl(m));
    if (m.own) {
      const own = el("div", "chat-own");
      const controls = [["chat-edit", t.edit], ["chat-delete", t.delete]];
      for (const [cls, label] of m.kind === "checkin" ? controls.slice(1) : controls) {
        const button = el("button", `link-button ${cls}`, label);
        button.type = "button";
        own.append(button, " ");
      }
      li.append(own);
    }
    return li;
  }

  // A check-in card (mirrors the server's, groups/templatetags/room_markup.py): "<name> is <presence>",
  // its feeling words, and its note (the message body) if any.
  function checkInLine(m) {
    const label = (m.check_in && m.check_in.presence_label) || "";
    // Replacer functions: a name containing "$&" must stay as typed.
    return t.checkinLine.replace("{name}", () => m.author.name).replace("{label}", () => label.toLocaleLowerCase());
  }

  function checkInCard(m) {
    const card = el("div", "chat-checkin");
    if (m.check_in) {
      const line = el("p", "chat-checkin-presence");
      line.append(el("span", "chat-checkin-tag", t.checkinTag), " ", checkInLine(m));
      card.append(line);
      if (m.check_in.feelings.length) {
        const words = el("ul", "chat-checkin-feelings");
        words.setAttribute("aria-label", t.checkinFeelings);
        for (const word of m.check_in.feelings) words.append(el("li", "", word));
        card.append(words);
      }
    }
    if (m.body) {
      const note = bodyNode(m.body);
      note.classList.add("chat-checkin-note");
      if ((m.softened || []).length) {
        // Its note touches a topic this reader softens: the card shows, the note folds.
        const details = el("details", "chat-soft");
        details.id = `msg-${m.seq}-soft`;
        const summary = el("summary", "", `${softenedText(m)} `);
        summary.append(el("span", "chat-cw-hint", t.softHint));
        details.append(summary, note);
        details.open = openedWarnings.has(m.seq);
        card.append(details);
      } else {
        card.append(note);
      }
    }
    return card;
  }

  // "A message about grief and loss" (groups/views/room.py says the same for the page).
  function softenedText(m) {
    return t.softLine.replace("{topics}", () => m.softened.map((s) => s.phrase).join(", "));
  }

  // The report control: a copy of the server-rendered one (templates/groups/room/report.html,
  // seq 0) with this message's seq in its ids and its address.
  function reportControl(seq) {
    const node = $("room-report-template").content.firstElementChild.cloneNode(true);
    for (const field of node.querySelectorAll("[id]")) field.id = field.id.replace(/-0$/, `-${seq}`);
    for (const label of node.querySelectorAll("label[for]")) {
      label.htmlFor = label.htmlFor.replace(/-0$/, `-${seq}`);
    }
    const form = node.querySelector("form");
    form.setAttribute("action", form.getAttribute("action").replace(/\/0\/report\/$/, `/${seq}/report/`));
    return node;
  }

  // The mute/block menu: a copy of the server-rendered one (templates/groups/room/person_menu.html,
  // seq 0, name "{name}") with this message's seq in its address and its author's name.
  function personControl(m) {
    const node = $("room-person-template").content.firstElementChild.cloneNode(true);
    const form = node.querySelector("form");
    form.setAttribute("action", form.getAttribute("action").replace(/\/0\/person\/$/, `/${m.seq}/person/`));
    const walker = document.createTreeWalker(node, NodeFilter.SHOW_TEXT);
    for (let text = walker.nextNode(); text; text = walker.nextNode()) {
      // A replacer function: a name containing "$&" must stay as typed.
      if (text.data.includes("{name}")) text.data = text.data.replaceAll("{name}", () => m.author.name);
    }
    return node;
  }

  function nearBottom() {
    return scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < 80;
  }

  function scrollToBottom() {
    scroller.scrollTop = scroller.scrollHeight;
    jumpButton.hidden = true;
  }

  function appendLive(m) {
    const stick = nearBottom();
    list.append(renderMessage(m));
    $("room-empty").hidden = true;
    // Never pull a reader who scrolled up back down; offer a way instead.
    if (stick) scrollToBottom();
    else jumpButton.hidden = false;
    if (!m.own) {
      let said = m.body;
      if (m.kind === "wave") said = t.wave;
      else if (m.kind === "checkin") {
        const c = m.check_in || { presence_label: "", feelings: [] };
        const note = (m.softened || []).length ? softenedText(m) : m.body; // never folded words
        said = [t.checkinTag, c.presence_label, ...c.feelings, note].filter(Boolean).join(", ");
      }
      else if (m.content_warning) said = `${t.cwAnnounce} ${m.content_warning}`;
      else if ((m.softened || []).length) said = softenedText(m); // never the folded words
      if (m.muted_author) {
        // Someone this reader muted: neither their name nor their words are read out.
        if (!m.deleted && !m.hidden && !m.held) announcer.textContent = t.mutedLine;
      } else if (!m.deleted && !m.hidden && !m.held) announcer.textContent = `${m.author.name}: ${said}`;
    }
    scheduleRead();
  }

  function replaceMessage(m) {
    const current = $(`msg-${m.seq}`);
    if (current) current.replaceWith(renderMessage(m));
  }

  // --- Connection ------------------------------------------------------------------------------

  function setStatus(text) {
    statusNode.textContent = text;
    room.dataset.state = text === t.connected ? "open" : "waiting";
  }

  function send(frame) {
    if (socket && socket.readyState === WebSocket.OPEN) {
      socket.send(JSON.stringify(frame));
      return true;
    }
    return false;
  }

  function resume() {
    resuming = true;
    send({ type: "resume", after: lastSeq, since: lastRev });
  }

  function connect() {
    setStatus(attempts ? t.reconnecting : t.connecting);
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    socket = new WebSocket(`${scheme}://${location.host}${config.wsPath}`);
    socket.addEventListener("open", () => {
      attempts = 0;
      setStatus(t.connected);
      resume();
      for (const frame of outbox.values()) send(frame);
    });
    socket.addEventListener("message", (event) => handle(JSON.parse(event.data)));
    socket.addEventListener("close", (event) => {
      socket = null;
      if (closedForGood) return;
      if (event.code === 4401 || event.code === 4403) {
        closedForGood = true; // signed out, or no longer a member: reconnecting won't help
        setStatus(t.closed);
        return;
      }
      // Exponential backoff with jitter, so a restarted server isn't stampeded.
      const delay = Math.min(15000, 500 * 2 ** attempts) * (0.5 + Math.random());
      attempts += 1;
      setStatus(t.reconnecting);
      window.setTimeout(connect, delay);
    });
  }

  function handle(frame) {
    // The room's other scripts (check-ins, rounds, stepping away) listen for their frames here.
    // One that fully handles a frame (a round's own error, shown in the round panel) claims it
    // with preventDefault(), and nothing more is done with it here.
    if (!room.dispatchEvent(new CustomEvent("room:frame", { detail: frame, cancelable: true }))) return;
    switch (frame.type) {
      case "message":
        if (frame.seq <= lastSeq) return; // already shown
        if (frame.seq > lastSeq + 1) {
          if (!resuming) resume(); // a gap: fetch what's missing, in order
          return;
        }
        lastSeq = frame.seq;
        appendLive(frame);
        return;
      case "resumed":
        if (helpPending) helpPending = !send({ type: "help" });
        lastSeq = Math.max(lastSeq, frame.latest);
        lastRev = Math.max(lastRev, frame.rev || 0);
        resuming = false;
        scheduleRead();
        return;
      case "ack":
        outbox.delete(frame.client_id);
        if (!outbox.size) errorNode.textContent = "";
        return;
      case "update":
        replaceMessage(frame);
        // Live changes arrive in rev order with none missing, but only once this connection's
        // resume has brought us up to date.
        if (!resuming) lastRev = Math.max(lastRev, frame.rev || 0);
        return;
      case "presence":
        showPresence(frame);
        return;
      case "error":
        showError(frame);
        return;
      case "support":
        showSupport(frame);
        return;
      default:
    }
  }

  function showSupport(frame) {
    const panel = $("room-support");
    $("room-support-message").textContent = frame.message;
    const list = $("room-support-resources");
    list.replaceChildren();
    for (const r of frame.resources || []) {
      const item = el("li", "resource");
      item.append(el("strong", "", r.name));
      if (r.description) item.append(" ", el("span", "", r.description));
      if (r.phone) item.append(" ", el("span", "", r.phone));
      if (r.text) item.append(" ", el("span", "", r.text));
      if (r.url && /^https?:\/\//.test(r.url)) {
        const link = el("a", "", r.url);
        link.href = r.url;
        link.rel = "noopener noreferrer";
        item.append(" ", link);
      }
      list.append(item);
    }
    panel.hidden = false;
  }

  function showError(frame) {
    // A suggestion, not a refusal: the frame stays in the outbox while its sender chooses
    // (static/js/room-content-note.js asks them and sends it again, or gives the words back).
    if (frame.code === "suggest_content_note" && outbox.has(frame.client_id)) return;
    errorNode.textContent = frame.message;
    const pending = frame.client_id && outbox.get(frame.client_id);
    if (!pending) return;
    if (frame.code === "rate_limited" || frame.code === "unavailable") {
      window.setTimeout(() => outbox.has(frame.client_id) && send(pending), frame.retry_after * 1000);
      return;
    }
    // A definite no: give the words back so nothing typed is lost.
    outbox.delete(frame.client_id);
    if (pending.body && bodyInput && !bodyInput.value) bodyInput.value = pending.body;
  }

  function showPresence(frame) {
    presenceList.replaceChildren(
      ...frame.present.map((p) => {
        const li = el("li", "", p.name);
        if (p.listening) li.append(" ", el("span", "room-listening", `(${t.listening})`));
        if (p.away) li.append(" ", el("span", "room-listening room-away-label", `(${t.awayLabel})`));
        return li;
      }),
    );
    presenceNote.textContent = frame.hidden ? t.youHidden : frame.present.length ? "" : t.nobody;
    if (hidePresence) hidePresence.checked = frame.hidden;
  }

  // Nothing is marked read while the reader has stepped away (static/js/room-stepaway.js).
  const away = () => room.dataset.steppedAway === "true";

  function scheduleRead() {
    if (readTimer || document.visibilityState !== "visible" || away()) return;
    readTimer = window.setTimeout(() => {
      readTimer = null;
      if (!away()) send({ type: "read", seq: lastSeq });
    }, 1000);
  }

  // --- Sending ---------------------------------------------------------------------------------

  function newClientId() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    const b = crypto.getRandomValues(new Uint8Array(16));
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    const h = [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
  }

  function queue(frame) {
    outbox.set(frame.client_id, frame);
    if (!send(frame)) errorNode.textContent = t.sending;
  }

  if (form) {
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      queue({
        type: "send",
        client_id: newClientId(),
        body: bodyInput.value,
        content_warning: cwInput.value,
      });
      bodyInput.value = "";
      cwInput.value = "";
      $("room-cw-toggle").open = false;
      scrollToBottom();
    });
    bodyInput.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        form.requestSubmit();
      }
    });
    $("room-wave").addEventListener("click", () => queue({ type: "wave", client_id: newClientId() }));
  }

  list.addEventListener("click", (event) => {
    const button = event.target.closest("button");
    const item = event.target.closest(".chat-item");
    if (!button || !item) return;
    const seq = Number(item.dataset.seq);
    if (button.classList.contains("chat-reaction")) {
      send({ type: "react", seq, reaction: button.dataset.reaction });
    } else if (button.classList.contains("chat-delete")) {
      if (window.confirm(t.confirmDelete)) send({ type: "delete", seq });
    } else if (button.classList.contains("chat-edit")) {
      const current = item.querySelector(".chat-body");
      const body = window.prompt(t.editPrompt, current ? current.textContent : "");
      if (body !== null) send({ type: "edit", seq, body });
    }
  });

  // Reporting a message: sent without leaving the room; the answer is read out (role=status).
  list.addEventListener("submit", async (event) => {
    const form = event.target.closest(".chat-report-form");
    if (!form) return;
    event.preventDefault();
    const status = form.parentElement.querySelector(".chat-report-status");
    try {
      const response = await fetch(form.action, {
        method: "POST",
        body: new FormData(form),
        credentials: "same-origin",
        headers: { Accept: "application/json", "X-CSRFToken": form.elements.csrfmiddlewaretoken.value },
      });
      const answer = await response.json();
      status.textContent = answer.message;
      if (answer.ok) form.hidden = true;
    } catch {
      status.textContent = t.reportFailed;
    }
  });

  // Remember which content notes this reader opened, so updates don't fold them again.
  list.addEventListener(
    "toggle",
    (event) => {
      const item = event.target.closest && event.target.closest(".chat-item");
      if (!item || !event.target.matches(".chat-cw, .chat-soft, .chat-muted")) return;
      const seq = Number(item.dataset.seq);
      if (event.target.open) openedWarnings.add(seq);
      else openedWarnings.delete(seq);
    },
    true,
  );

  if (hidePresence) {
    hidePresence.addEventListener("change", () => send({ type: "presence", hidden: hidePresence.checked }));
  }

  // "I need help now": if the socket is down, the request waits and goes on the next resume.
  $("room-help").addEventListener("click", () => {
    helpPending = !send({ type: "help" });
    if (helpPending) $("room-help-note").textContent = t.helpWaiting;
  });

  jumpButton.addEventListener("click", scrollToBottom);
  scroller.addEventListener("scroll", () => {
    if (nearBottom()) jumpButton.hidden = true;
  });

  // --- History: older pages by seq, never the whole history -------------------------------------

  let loadingOlder = false;
  async function loadOlder() {
    if (!hasMore || loadingOlder || oldestSeq === null) return;
    loadingOlder = true;
    try {
      const response = await fetch(`${config.historyUrl}?before=${oldestSeq}`, {
        credentials: "same-origin",
        headers: { Accept: "application/json" },
      });
      if (!response.ok) throw new Error(String(response.status));
      const page = await response.json();
      const before = scroller.scrollHeight;
      const nodes = page.messages.filter((m) => !$(`msg-${m.seq}`)).map(renderMessage);
      list.prepend(...nodes);
      scroller.scrollTop += scroller.scrollHeight - before; // keep the reader's place
      if (page.messages.length) oldestSeq = page.messages[0].seq;
      hasMore = page.has_more;
      olderButton.hidden = !hasMore;
    } catch {
      errorNode.textContent = t.loadFailed;
    } finally {
      loadingOlder = false;
    }
  }

  olderButton.addEventListener("click", loadOlder);
  if ("IntersectionObserver" in window) {
    new IntersectionObserver((entries) => {
      if (entries.some((e) => e.isIntersecting)) loadOlder();
    }, { root: scroller }).observe(olderButton);
  }

  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible") scheduleRead();
  });

  scrollToBottom();
  connect();
  window.addEventListener("pagehide", () => {
    closedForGood = true;
    if (socket) socket.close();
  });
})();
