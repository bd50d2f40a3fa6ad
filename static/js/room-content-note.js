// The gentle content-note prompt (docs/protocol.md, "Content notes and softening").
//
// A message on a sensitive topic sent without a content note comes back as an error frame with
// code "suggest_content_note" instead of an ack: nothing was stored, and the frame stays in the
// room's outbox (static/js/room.js) until its sender chooses. "Add a note and send" sends it
// again with the topics as its note; "Send as it is" sends it again with "topics_ok": true;
// "Keep editing" takes it out of the outbox and gives the words back. Never forced, never lost.
"use strict";

(() => {
  const room = document.getElementById("room");
  const panel = document.getElementById("room-suggest");
  if (!room || !room.roomApi || !panel) return;

  const api = room.roomApi;
  const text = document.getElementById("room-suggest-text");
  const bodyInput = document.getElementById("room-body");
  const waiting = new Map(); // client_id -> {message, topics}, in arrival order
  let shown = null; // the client_id the panel is asking about

  function showNext() {
    shown = null;
    for (const [clientId, suggestion] of waiting) {
      if (!api.pending(clientId)) {
        waiting.delete(clientId); // acked or dropped meanwhile
        continue;
      }
      shown = clientId;
      text.textContent = suggestion.message;
      const wasHidden = panel.hidden;
      panel.hidden = false;
      if (wasHidden) document.getElementById("room-suggest-add").focus();
      return;
    }
    panel.hidden = true;
  }

  function finish(clientId, returnFocus) {
    waiting.delete(clientId);
    panel.hidden = true;
    showNext();
    if (panel.hidden && returnFocus && bodyInput) bodyInput.focus();
  }

  room.addEventListener("room:frame", (event) => {
    const frame = event.detail;
    if (frame.type === "ack" && waiting.has(frame.client_id)) {
      finish(frame.client_id, false);
      return;
    }
    if (frame.type !== "error" || frame.code !== "suggest_content_note") return;
    if (!frame.client_id || !api.pending(frame.client_id)) return;
    waiting.set(frame.client_id, { message: frame.message, topics: frame.topics || [] });
    if (shown === null || shown === frame.client_id) showNext();
  });

  panel.addEventListener("click", (event) => {
    const button = event.target.closest("button");
    if (!button || shown === null) return;
    const clientId = shown;
    const frame = api.pending(clientId);
    const suggestion = waiting.get(clientId);
    if (!frame || !suggestion) {
      finish(clientId, true);
      return;
    }
    if (button.id === "room-suggest-add") {
      const note = suggestion.topics.map((topic) => topic.label).join(", ");
      api.queue({ ...frame, content_warning: note });
    } else if (button.id === "room-suggest-send") {
      api.queue({ ...frame, topics_ok: true });
    } else if (button.id === "room-suggest-edit") {
      api.unqueue(clientId);
      // The words go back into the box, ahead of anything typed since.
      if (bodyInput) bodyInput.value = bodyInput.value ? `${frame.body}\n${bodyInput.value}` : frame.body;
    } else {
      return;
    }
    finish(clientId, true);
  });
})();
