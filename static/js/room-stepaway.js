// Stepping away (docs/protocol.md, "Stepping away").
//
// "Step away for a moment" replaces the room with a grounding screen (a breathing pacer and a
// 5-4-3-2-1 senses exercise, all already on the page, so it works with no connection) and tells
// the room only that this member is taking a break. Nothing is marked read meanwhile (room.js
// checks data-stepped-away). "I'm back" returns to exactly where they were: the same scroll
// position, the draft untouched, focus where it was, and a "New since you stepped away" divider
// before the first message that arrived while they were away.
"use strict";

(() => {
  const room = document.getElementById("room");
  const grounding = document.getElementById("room-grounding");
  const stepButton = document.getElementById("room-step-away");
  if (!room || !room.roomApi || !grounding || !stepButton) return;

  const api = room.roomApi;
  const t = api.t;
  const $ = (id) => document.getElementById(id);
  const scroller = $("room-scroll");
  const list = $("room-messages");
  const jumpButton = $("room-jump");
  let saved = null; // while away: where the reader was

  function newestSeq() {
    const items = list.querySelectorAll(".chat-item");
    return items.length ? Number(items[items.length - 1].dataset.seq) : 0;
  }

  function stepAway() {
    if (saved) return;
    saved = { scrollTop: scroller.scrollTop, focus: document.activeElement, seq: newestSeq() };
    room.dataset.steppedAway = "true";
    grounding.hidden = false;
    api.send({ type: "away", away: true }); // if not connected, sent again after the resume
    $("room-grounding-heading").focus();
  }

  function markNew(afterSeq) {
    const old = $("room-away-divider");
    if (old) old.remove();
    const first = [...list.querySelectorAll(".chat-item")].find(
      (item) => Number(item.dataset.seq) > afterSeq && !item.hidden,
    );
    if (!first) return false;
    const divider = api.el("li", "room-away-divider", t.awayDivider);
    divider.id = "room-away-divider";
    first.before(divider);
    return true;
  }

  function comeBack() {
    if (!saved) return;
    const was = saved;
    saved = null;
    delete room.dataset.steppedAway;
    grounding.hidden = true;
    api.send({ type: "away", away: false });
    const missed = markNew(was.seq);
    scroller.scrollTop = was.scrollTop;
    const below = scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight >= 80;
    if (missed && below) jumpButton.hidden = false; // "New messages below", never a pull
    const focus = was.focus && was.focus !== document.body && document.contains(was.focus) ? was.focus : stepButton;
    focus.focus();
  }

  room.addEventListener("room:frame", (event) => {
    // A new connection starts present; say again that we're away.
    if (saved && event.detail.type === "resumed") api.send({ type: "away", away: true });
  });

  stepButton.addEventListener("click", stepAway);
  $("room-back").addEventListener("click", comeBack);
  stepButton.closest(".room-stepaway").hidden = false;
})();
