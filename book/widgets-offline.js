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
 */
(function () {
  "use strict";
  var here = document.currentScript.src.replace(/[^/]*$/, "");
  if (window.require && window.require.config) {
    window.require.config({
      paths: { "@jupyter-widgets/html-manager/dist": here + "html-manager" },
    });
  }
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
