// linli console: the little script there is, embedded in the binary. Every page works
// without it; with it, check-in forms attach the phone's position and uploads show progress.
"use strict";
(function () {
  // Check in / check out: ask for the position (if the phone allows), then send, once.
  document.querySelectorAll("form[data-geo]").forEach(function (form) {
    form.addEventListener("submit", function (ev) {
      if (form.dataset.ready) return;
      ev.preventDefault();
      if (form.dataset.waiting || !navigator.geolocation) {
        if (!navigator.geolocation && !form.dataset.waiting) send();
        return;
      }
      form.dataset.waiting = "1";
      var button = form.querySelector("button[type=submit]");
      if (button) button.disabled = true;
      function send() {
        form.dataset.ready = "1";
        form.submit();
      }
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
        var type = xhr.getResponseHeader("content-type") || "";
        if (type.indexOf("text/html") === 0) {
          // The answer is the next page (the import's report, the catalog).
          document.open();
          document.write(xhr.responseText);
          document.close();
        } else {
          if (button) button.disabled = false;
          if (bar) bar.hidden = true;
          window.alert((xhr.status || "") + " " + xhr.responseText.slice(0, 300));
        }
      };
      xhr.onerror = function () {
        // Not sent again by itself: it may have arrived. Say so and let the user decide.
        if (button) button.disabled = false;
        if (bar) bar.hidden = true;
        window.alert(document.documentElement.lang === "en"
          ? "The upload was interrupted. Check the list before sending it again."
          : "上传中断。请先查看列表，确认未成功后再重新提交。");
      };
      xhr.send(new FormData(form));
    });
  });
})();
