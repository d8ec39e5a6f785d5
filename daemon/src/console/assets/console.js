// linli console: the little script there is, embedded in the binary. Every page works
// without it; with it, check-in forms attach the phone's position and uploads show progress.
"use strict";
(function () {
  // Check in / check out: ask for the position (if the phone allows), then send.
  document.querySelectorAll("form[data-geo]").forEach(function (form) {
    form.addEventListener("submit", function (ev) {
      if (form.dataset.sent || !navigator.geolocation) return;
      ev.preventDefault();
      form.dataset.sent = "1";
      var send = function () { form.submit(); };
      navigator.geolocation.getCurrentPosition(function (p) {
        form.elements.lat.value = p.coords.latitude.toFixed(6);
        form.elements.lon.value = p.coords.longitude.toFixed(6);
        send();
      }, send, { timeout: 8000, maximumAge: 60000 });
    });
  });
  // Uploads (spreadsheets, plugins): a progress bar while the file goes up.
  document.querySelectorAll("form[data-progress]").forEach(function (form) {
    form.addEventListener("submit", function (ev) {
      if (!window.XMLHttpRequest || !window.FormData) return;
      ev.preventDefault();
      var bar = form.querySelector("progress");
      var button = form.querySelector("button[type=submit]");
      if (button) button.disabled = true;
      if (bar) bar.hidden = false;
      var xhr = new XMLHttpRequest();
      xhr.open("POST", form.action);
      xhr.upload.onprogress = function (e) {
        if (bar && e.lengthComputable) bar.value = Math.round((e.loaded / e.total) * 100);
      };
      xhr.upload.onload = function () { if (bar) bar.removeAttribute("value"); };
      xhr.onload = function () {
        document.open();
        document.write(xhr.responseText);
        document.close();
      };
      xhr.onerror = function () {
        if (button) button.disabled = false;
        if (bar) bar.hidden = true;
        form.submit();
      };
      xhr.send(new FormData(form));
    });
  });
})();
