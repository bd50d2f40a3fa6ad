// The room's check-in dialog ("How present do you feel right now?"): it opens by itself when
// the member hasn't answered the offer today, and from the "Check in" button at any time. It
// posts with fetch to the same views a plain form post uses without JavaScript. A check-in
// shared with the group comes back into the room as a card over the socket, like any message.
// Closing the offered dialog without saving counts as "Not today", so it is never offered
// twice in a day.
"use strict";

(() => {
  const dialog = document.getElementById("checkin-dialog");
  const form = document.getElementById("checkin-form");
  const openButton = document.getElementById("checkin-open");
  if (!dialog || !form || !openButton || typeof dialog.showModal !== "function") return;
  const room = document.getElementById("room");
  const status = document.getElementById("checkin-status");
  const errorNode = document.getElementById("checkin-error");
  const hint = document.getElementById("checkin-feelings-hint");
  const hintText = hint.textContent;
  const clientId = document.getElementById("checkin-client-id");
  const saveButton = document.getElementById("checkin-save");
  const skipButton = document.getElementById("checkin-skip");
  const feelings = [...form.querySelectorAll('input[name="feelings"]')];
  const maxFeelings = Number(dialog.dataset.max) || 3;
  let returnFocus = null;
  let offered = false; // opened by the day's offer
  let answered = false; // saved or skipped since it opened

  // Rendered open for readers without JavaScript; from here on it is a modal dialog.
  dialog.removeAttribute("open");

  function newClientId() {
    if (room && room.roomApi) return room.roomApi.newClientId();
    return window.crypto && crypto.randomUUID ? crypto.randomUUID() : "";
  }

  function freshClientId() {
    const id = newClientId();
    clientId.setAttribute("value", id); // survives form.reset()
    clientId.value = id;
  }

  function open(byOffer) {
    const active = document.activeElement;
    returnFocus = active && active !== document.body ? active : openButton;
    offered = byOffer;
    answered = false;
    errorNode.textContent = "";
    dialog.showModal();
    const first =
      form.querySelector('input[name="presence"]:checked') || form.querySelector('input[name="presence"]');
    first.focus();
  }

  async function post(url) {
    const response = await fetch(url, {
      method: "POST",
      body: new FormData(form),
      credentials: "same-origin",
      headers: { Accept: "application/json", "X-CSRFToken": form.elements.csrfmiddlewaretoken.value },
    });
    return response.json();
  }

  async function skip({ quiet }) {
    try {
      const answer = await post(skipButton.formAction);
      if (!quiet && answer.message) status.textContent = answer.message;
    } catch {
      // Not recorded: the offer may come once more today. Nothing else depends on it.
    }
  }

  // At most three feeling words: once three are chosen the others rest, and the hint says so.
  function limitFeelings() {
    const chosen = feelings.filter((box) => box.checked).length;
    for (const box of feelings) box.disabled = !box.checked && chosen >= maxFeelings;
    hint.textContent = chosen >= maxFeelings ? dialog.dataset.maxReached : hintText;
  }

  form.addEventListener("change", (event) => {
    if (event.target.name === "feelings") limitFeelings();
  });

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (event.submitter === skipButton) {
      answered = true;
      dialog.close();
      skip({ quiet: false });
      return;
    }
    errorNode.textContent = "";
    saveButton.disabled = true;
    try {
      const answer = await post(form.action);
      if (!answer.ok) {
        errorNode.textContent = answer.message; // kind and specific; nothing was saved
        return;
      }
      answered = true;
      status.textContent = answer.message;
      form.reset();
      limitFeelings();
      freshClientId();
      dialog.close();
    } catch {
      errorNode.textContent = dialog.dataset.failed;
    } finally {
      saveButton.disabled = false;
    }
  });

  // Escape (the native cancel), or any other way of closing it.
  dialog.addEventListener("close", () => {
    if (offered && !answered) skip({ quiet: true }); // dismissing the offer: "not today"
    offered = false;
    if (returnFocus && document.contains(returnFocus)) returnFocus.focus();
  });

  openButton.hidden = false;
  openButton.addEventListener("click", () => open(false));
  if (dialog.dataset.offer === "true") open(true);
  else if (new URLSearchParams(window.location.search).get("check-in") === "1") open(false);
})();
