// Polls the submission's API while it is queued or running, updates the bar, reloads when it ends.
(function () {
  const box = document.getElementById("progress-box");
  if (!box) return;
  const bar = document.getElementById("progress");
  const text = document.getElementById("progress-text");
  const status = document.getElementById("status");
  async function poll() {
    try {
      const response = await fetch(box.dataset.url, {headers: {Accept: "application/json"}});
      if (response.ok) {
        const s = await response.json();
        bar.max = Math.max(s.progress.total, 1);
        bar.value = s.progress.done;
        text.textContent = `${s.progress.done} / ${s.progress.total} images` + (s.progress.stage ? ` (${s.progress.stage})` : "");
        status.textContent = s.status;
        if (s.status === "done" || s.status === "failed") { window.location.reload(); return; }
      }
    } catch (e) { /* a missed poll is retried */ }
    setTimeout(poll, 1500);
  }
  setTimeout(poll, 1000);
})();
