// The practice space, offered on arrival in a circle's room when nobody else is present.
//
// The room's first presence frame after the page opens says who is here; if it names nobody
// but this member, the offer (templates/companion/offer.html) appears. It goes away quietly
// once someone else arrives, and is not offered again until the next visit: it's an offer,
// never a nudge.
"use strict";

(() => {
  const room = document.getElementById("room");
  const offer = document.getElementById("room-practice-offer");
  if (!room || !offer) return;

  const me = offer.dataset.me;
  let arrived = false;

  room.addEventListener("room:frame", (event) => {
    const frame = event.detail;
    if (frame.type !== "presence") return;
    const others = frame.present.filter((person) => person.name !== me).length;
    if (!arrived) {
      arrived = true;
      if (!others) offer.hidden = false;
      return;
    }
    if (others) offer.hidden = true;
  });
})();
