// Progressive enhancement only: every page works without this file.
// The HTML mail frame grows to its content's height (it is same-origin, without
// scripts of its own), so the page scrolls as one.
(function () {
  "use strict";
  function fit(frame) {
    try {
      var doc = frame.contentDocument;
      if (doc && doc.documentElement) {
        frame.style.height = (doc.documentElement.scrollHeight + 16) + "px";
      }
    } catch (e) { /* keep the fixed height */ }
  }
  document.addEventListener("DOMContentLoaded", function () {
    var frames = document.querySelectorAll("iframe.mailbody");
    for (var i = 0; i < frames.length; i++) {
      var frame = frames[i];
      frame.addEventListener("load", function (event) { fit(event.target); });
      fit(frame);
    }
  });
})();
