/*
 * Loaded on pages with embedded widget state, after vendor/require.js and before
 * vendor/html-manager/embed-amd.js (see nb_ipywidgets_js in _config.yml); book/vendor.sh
 * copies it to book/_extra/vendor/.
 *
 * 1. embed-amd.js loads its icon fonts from the folder RequireJS reports for its module,
 *    "@jupyter-widgets/html-manager/dist/..." relative to the page unless told otherwise:
 *    point that module path at our copy, next to this file.
 * 2. The widget manager typesets labels with the MathJax 2 call MathJax.Hub.Queue; the book
 *    ships MathJax 3. Give MathJax 3 a small Hub.Queue that typesets the element instead.
 * 3. The Play widget looks up its <i> icon, which the theme's Font Awesome script has turned
 *    into an <svg>: without the patch below its exception stops the explorer's slider -> Stack
 *    link (checked in headless Chromium: slider and Play now switch frames, no errors).
 */
(function () {
  "use strict";
  var here = document.currentScript.src.replace(/[^/]*$/, "");
  if (window.require && window.require.config) {
    window.require.config({
      paths: {
        "@jupyter-widgets/html-manager/dist": here + "html-manager",
        // the bundled modules (@jupyter-widgets/base, controls, html-manager, ...) also take
        // their font URLs from their module path: point them at the same folder
        "@jupyter-widgets": here + "html-manager",
      },
    });
  }
  // 3. The theme's Font Awesome JS swaps every <i class="fa ..."> for an <svg>, and the
  //    Play widget's updatePlaying looks its icon up with getElementsByTagName("i"): it throws
  //    on every change of the Play model, which also aborts the jslink chain slider -> Stack.
  document.addEventListener("DOMContentLoaded", function () {
    if (!window.require) {
      return;
    }
    window.require(["@jupyter-widgets/controls"], function (controls) {
      var proto = controls.PlayView && controls.PlayView.prototype;
      if (!proto) {
        return;
      }
      proto.updatePlaying = function () {
        var playing = !!this.model.get("playing");
        var icon = this.playPauseButton.querySelector("i, svg");
        if (icon) {
          icon.classList.toggle("fa-pause", playing);
          icon.classList.toggle("fa-play", !playing);
        }
      };
    });
  });
  document.addEventListener("DOMContentLoaded", function () {
    var mj = window.MathJax;
    if (!mj || mj.Hub || !mj.startup) {
      return; // no MathJax 3 on this page
    }
    mj.Hub = {
      Queue: function (job) {
        var element = job && job[2];
        if (element) {
          mj.startup.promise.then(function () {
            return mj.typesetPromise([element]);
          });
        }
      },
    };
  });
})();
