// The practice space (templates/companion/panel.html): the replies the companion offers, as
// buttons, and the rehearsed share.
//
// A button sends its words as the member's own message, through the room's socket and outbox
// (static/js/room.js), exactly as if typed. After each companion message the page asks the
// server what to offer next (companion's state, as JSON) and redraws the buttons and the share;
// the conversation itself is the room's. A practice space is read by nobody else, so a message
// on a sensitive topic is sent as it is, without the content-note prompt.
"use strict";

(() => {
  const room = document.getElementById("room");
  const choices = document.getElementById("practice-choices");
  if (!room || !room.roomApi || !choices) return;

  const api = room.roomApi;
  const $ = (id) => document.getElementById(id);
  const list = $("practice-choice-list");
  const share = $("practice-share");
  let asked = 0; // only the newest answer is drawn

  function send(words) {
    api.queue({ type: "send", client_id: api.newClientId(), body: words, topics_ok: true });
  }

  function drawChoices(labels) {
    const hadFocus = choices.contains(document.activeElement);
    list.replaceChildren(
      ...labels.map((label) => {
        const item = api.el("li");
        const button = api.el("button", "secondary practice-choice", label);
        button.type = "button";
        item.append(button);
        return item;
      }),
    );
    choices.hidden = labels.length === 0;
    // Keep a keyboard user in the choices: the companion's words are read out by the room.
    const first = list.querySelector("button");
    if (hadFocus && first) first.focus();
  }

  function drawShare(draft) {
    share.hidden = !draft;
    if (!draft) return;
    $("practice-share-text").textContent = draft.text;
    $("practice-share-posted").hidden = !draft.posted;
    $("practice-share-posted-to").textContent = draft.posted_to;
    $("practice-share-ready").hidden = draft.posted;
  }

  async function refresh() {
    const mine = ++asked;
    try {
      const response = await fetch(choices.dataset.stateUrl, {
        credentials: "same-origin",
        headers: { Accept: "application/json" },
      });
      if (!response.ok) return;
      const state = await response.json();
      if (mine !== asked) return;
      drawChoices(state.choices || []);
      drawShare(state.draft);
      if (state.support && $("room-support").hidden) api.showSupport(state.support);
    } catch {
      // Offline for a moment: the buttons drawn last still work, and the next reply redraws.
    }
  }

  list.addEventListener("click", (event) => {
    const button = event.target.closest("button.practice-choice");
    if (button) send(button.textContent);
  });

  room.addEventListener("room:frame", (event) => {
    const frame = event.detail;
    if ((frame.type === "message" && frame.kind === "companion") || frame.type === "resumed") {
      refresh();
    } else if (frame.type === "error" && frame.code === "suggest_content_note") {
      const pending = api.pending(frame.client_id);
      if (!pending) return;
      event.preventDefault();
      api.queue({ ...pending, topics_ok: true });
    }
  });
})();
