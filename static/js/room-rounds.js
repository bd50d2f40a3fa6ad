// Go-around rounds in the room (docs/protocol.md, "Rounds"): the round panel, its turns, and
// sharing or passing when it's this member's turn; for facilitators, starting a round (with the
// order of the people here), skipping a turn and ending the round.
//
// The server sends a "round" frame after every resume and on every change; it is the whole
// state, so the panel is simply redrawn from the newest one (by round id, then version). Shares
// go through room.js's outbox (re-sent with the same client_id after a reconnect, stored once).
// Text is only ever set with textContent.
"use strict";

(() => {
  const room = document.getElementById("room");
  const panel = document.getElementById("room-round");
  if (!room || !panel || !room.roomApi) return;

  const api = room.roomApi;
  const t = panel.dataset; // translated strings
  const $ = (id) => document.getElementById(id);
  const promptNode = $("room-round-prompt");
  const nowNode = $("room-round-now");
  const turnList = $("room-round-turns");
  const notice = $("room-round-notice");
  const shareForm = $("room-round-share-form");
  const shareBody = $("room-round-share-body");
  const shareCw = $("room-round-cw");
  const passButton = $("room-round-pass");
  const facilitate = $("room-round-facilitate");
  const skipButton = $("room-round-skip");
  const endButton = $("room-round-end");
  const startToggle = $("room-round-start-toggle");
  const startForm = $("room-round-start-form");
  const promptInput = $("room-round-prompt-input");
  const orderList = $("room-round-order");
  const errorNode = $("room-round-error");

  let state = null; // the newest round frame
  let myTurn = false;
  // A share, pass, skip or end is on its way: further clicks wait for the answer (a double tap
  // acts once). Buttons aren't disabled, which would drop the keyboard focus.
  let busy = false;
  let people = []; // the facilitator's start order: [{id: membership id, name}]
  const myShares = new Map(); // client_id -> {body, content_warning}, until acked or refused

  // --- Drawing the round ----------------------------------------------------------------------

  function isNewer(frame) {
    if (!state || frame.id === null || state.id === null) return true;
    return frame.id > state.id || (frame.id === state.id && frame.version >= state.version);
  }

  function statusText(turn, ended) {
    if (turn.status === "current") return turn.own ? t.yourTurnShort : t.current;
    if (turn.status === "waiting") return ended ? t.notReached : t.waiting;
    return { shared: t.shared, passed: t.passed, skipped: t.skipped }[turn.status] || "";
  }

  function drawTurns(frame) {
    const ended = frame.state === "ended";
    turnList.replaceChildren(
      ...frame.turns.map((turn) => {
        const li = api.el("li", `room-round-turn room-round-${turn.status}`);
        li.append(api.el("span", "room-round-name", turn.own ? `${turn.name} (${t.you})` : turn.name));
        li.append(" ", api.el("span", "room-round-status", `— ${statusText(turn, ended)}`));
        if (turn.position === frame.current) li.setAttribute("aria-current", "step");
        return li;
      }),
    );
  }

  function nowText(frame, isNew) {
    if (frame.state === "ended") return t.ended;
    if (frame.state !== "active") return "";
    const turn = frame.turns.find((x) => x.position === frame.current);
    const whose = !turn ? "" : turn.own ? t.nowYou : t.nowName.replace("{name}", () => turn.name);
    return isNew ? `${t.started} ${whose}` : whose;
  }

  function draw(frame) {
    const isNew = frame.state === "active" && (!state || state.id !== frame.id);
    state = frame;
    const active = frame.state === "active";
    panel.hidden = frame.state === "none" && !frame.can_facilitate;
    promptNode.textContent = frame.prompt;
    promptNode.hidden = frame.state === "none";
    const now = nowText(frame, isNew);
    if (nowNode.textContent !== now) nowNode.textContent = now;
    nowNode.hidden = frame.your_turn; // the your-turn notice says it (and is announced once)
    drawTurns(frame);
    turnList.hidden = !frame.turns.length;

    const turnStarts = frame.your_turn && !myTurn;
    myTurn = frame.your_turn;
    // The turn is over while the keyboard is in the share form: keep it in the panel.
    if (!myTurn && shareForm.contains(document.activeElement)) $("room-round-heading").focus();
    shareForm.hidden = !myTurn;
    busy = false;
    if (turnStarts) {
      notice.textContent = t.yourTurn;
      shareBody.focus(); // only as the turn begins, never while the member is elsewhere mid-turn
    } else if (!myTurn) {
      notice.textContent = "";
    }

    facilitate.hidden = !(frame.can_facilitate && active);
    startToggle.hidden = !frame.can_facilitate || active;
    if (!startToggle.hidden && startToggle.open) askWhoIsHere();
  }

  // --- The facilitator's start form -------------------------------------------------------------

  function askWhoIsHere() {
    api.send({ type: "round_candidates" });
  }

  function showPeople(fresh) {
    // Keep the order the facilitator chose for those still here; newcomers join the end.
    const here = new Map(fresh.map((p) => [p.id, p]));
    people = [...people.filter((p) => here.has(p.id)).map((p) => here.get(p.id)), ...fresh.filter((p) => !people.some((q) => q.id === p.id))];
    drawPeople();
  }

  function drawPeople(focusId, focusDir) {
    orderList.replaceChildren(
      ...people.map((p, index) => {
        const li = api.el("li", "room-round-person");
        li.dataset.id = String(p.id);
        li.append(api.el("span", "room-round-name", p.name), " ");
        for (const [dir, label, disabled] of [["up", t.moveUp, index === 0], ["down", t.moveDown, index === people.length - 1]]) {
          const button = api.el("button", "secondary room-round-move", dir === "up" ? "↑" : "↓");
          button.type = "button";
          button.dataset.dir = dir;
          button.setAttribute("aria-label", label.replace("{name}", () => p.name));
          button.disabled = disabled;
          li.append(button, " ");
        }
        return li;
      }),
    );
    if (!people.length) orderList.append(api.el("li", "room-round-nobody", t.nobodyHere));
    if (focusId !== undefined) {
      const li = orderList.querySelector(`li[data-id="${focusId}"]`);
      const button = li && (li.querySelector(`button[data-dir="${focusDir}"]:not(:disabled)`) || li.querySelector("button:not(:disabled)"));
      if (button) button.focus(); // keep the keyboard on the person just moved
    }
  }

  orderList.addEventListener("click", (event) => {
    const button = event.target.closest("button[data-dir]");
    if (!button) return;
    const id = Number(button.closest("li").dataset.id);
    const index = people.findIndex((p) => p.id === id);
    const to = button.dataset.dir === "up" ? index - 1 : index + 1;
    if (index < 0 || to < 0 || to >= people.length) return;
    [people[index], people[to]] = [people[to], people[index]];
    drawPeople(id, button.dataset.dir);
  });

  startToggle.addEventListener("toggle", () => {
    if (startToggle.open) askWhoIsHere();
  });

  startForm.addEventListener("submit", (event) => {
    event.preventDefault();
    errorNode.textContent = "";
    const frame = { type: "round_start", prompt: promptInput.value };
    if (people.length) frame.order = people.map((p) => p.id);
    if (!api.send(frame)) errorNode.textContent = t.offline;
  });

  // --- Taking a turn ----------------------------------------------------------------------------

  shareForm.addEventListener("submit", (event) => {
    event.preventDefault();
    if (!state || busy) return;
    errorNode.textContent = "";
    const frame = {
      type: "round_share",
      round: state.id,
      client_id: api.newClientId(),
      body: shareBody.value,
      content_warning: shareCw.value,
    };
    myShares.set(frame.client_id, { body: frame.body, content_warning: frame.content_warning });
    busy = true;
    api.queue(frame); // re-sent after a reconnect until acked; stored once
    shareBody.value = "";
    shareCw.value = "";
  });

  shareBody.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      shareForm.requestSubmit();
    }
  });

  function act(frame) {
    if (!state || busy) return;
    errorNode.textContent = "";
    busy = api.send({ round: state.id, ...frame });
    if (!busy) errorNode.textContent = t.offline;
  }

  passButton.addEventListener("click", () => act({ type: "round_pass" }));
  skipButton.addEventListener("click", () => act({ type: "round_skip", position: state && state.current }));
  endButton.addEventListener("click", () => act({ type: "round_end" }));

  // --- Frames from the server -------------------------------------------------------------------

  function handleError(event, frame) {
    errorNode.textContent = frame.message;
    busy = false;
    const mine = frame.client_id && myShares.get(frame.client_id);
    // A busy or unreachable server: room.js keeps the share in its outbox and sends it again.
    if (mine && (frame.code === "rate_limited" || frame.code === "unavailable")) return;
    event.preventDefault(); // the round panel has said it; the message box stays as it is
    if (mine) {
      // A definite no: give the words back so nothing typed is lost.
      api.unqueue(frame.client_id);
      myShares.delete(frame.client_id);
      if (!shareBody.value) shareBody.value = mine.body;
      if (!shareCw.value) shareCw.value = mine.content_warning;
    }
    if (frame.code === "order_not_present") askWhoIsHere();
  }

  room.addEventListener("room:frame", (event) => {
    const frame = event.detail;
    switch (frame.type) {
      case "round":
        if (isNewer(frame)) {
          if (frame.state === "active" && (!state || state.id !== frame.id)) promptInput.value = "";
          draw(frame);
        }
        return;
      case "round_candidates":
        showPeople(frame.people);
        return;
      case "presence":
        // Someone came or went: a facilitator choosing the order sees who's here now.
        if (!startToggle.hidden && startToggle.open) askWhoIsHere();
        return;
      case "ack":
        if (myShares.delete(frame.client_id)) errorNode.textContent = "";
        return;
      case "error":
        if (frame.about === "round") handleError(event, frame);
        return;
      default:
    }
  });
})();
