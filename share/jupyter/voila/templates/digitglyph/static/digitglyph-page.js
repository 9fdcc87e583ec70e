// The page helpers of Voila's lab template (voila_setup.macro.html.j2), served as a file so that the
// page needs no inline script (digitglyph/serve.py's Content-Security-Policy forbids them).
window.voila_heartbeat = function () {
  console.log("Ok, voila is still executing...");
};
window.update_loading_text = function (cell_index, cell_count, text) {
  const spinner = document.getElementById("loading");
  if (spinner && spinner.style.display === "none") {
    spinner.style.display = "flex";
  }
  const element = document.getElementById("loading_text");
  if (element) {
    element.textContent = text ?? `Executing ${cell_index} of ${cell_count}`;
  }
};
window.display_cells = function () {
  if (!window.themeLoaded) {
    window.cellLoaded = true;
    return;
  }
  const loading = document.getElementById("loading");
  if (loading) {
    loading.parentNode.removeChild(loading);
  }
  const cells = document.getElementById("rendered_cells");
  if (cells) {
    cells.style.display = "";
  }
};
window.voila_process = window.update_loading_text;
window.voila_finish = window.display_cells;
