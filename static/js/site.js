// Small progressive enhancements; every page works without this file.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  // On signup, preselect the browser's time zone if the member has not chosen one yet.
  const zone = document.querySelector('select[name="time_zone"][data-detect-zone]');
  if (zone && zone.value === "UTC") {
    const detected = Intl.DateTimeFormat().resolvedOptions().timeZone;
    if (detected && [...zone.options].some((o) => o.value === detected)) {
      zone.value = detected;
    }
  }
});
