// The repositories page: while a repository is queued or indexing, poll /repos/progress.json every 1.5 s and
// update its state and files done / total; reload the page when one becomes ready or failed (its question box
// or error appears). No dependency; the page works without it (reload by hand).
(function () {
  "use strict";
  var unfinished = function (state) { return state === "queued" || state === "indexing"; };
  var rows = function () { return Array.prototype.slice.call(document.querySelectorAll("#repos tr[data-id]")); };
  if (!rows().some(function (row) { return unfinished(row.dataset.state); })) { return; }
  var timer = setInterval(function () {
    fetch("/repos/progress.json", { credentials: "same-origin", cache: "no-store" })
      .then(function (response) { return response.ok ? response.json() : Promise.reject(response.status); })
      .then(function (data) {
        var finished = false;
        data.repos.forEach(function (repo) {
          var row = document.getElementById("repo-" + repo.id);
          if (!row) { return; }
          if (unfinished(row.dataset.state) && !unfinished(repo.state)) { finished = true; }
          row.dataset.state = repo.state;
          var state = row.querySelector(".state");
          state.textContent = repo.state;
          state.className = "state state-" + repo.state;
          row.querySelector(".progress").textContent =
            repo.files_total === null ? "–" : repo.files_done + " / " + repo.files_total;
        });
        if (finished) { clearInterval(timer); window.location.reload(); }
      })
      .catch(function () { clearInterval(timer); });
  }, 1500);
})();
