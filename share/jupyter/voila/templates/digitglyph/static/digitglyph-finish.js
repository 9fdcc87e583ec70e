// Every cell has arrived: show them (Voila's lab template does this with an inline script).
window.voila_finish();
