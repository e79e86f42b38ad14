// Fleet actions in the toolbar (canvas spec §1.1): "Stop all" restarts every workspace with a
// task in progress (the original's meaning of stop), "Restart pending (N)" restarts those whose
// config, files or secrets changed since they started (the panel's needs-restart flag).
import { api } from "./api.js";

export function install(canvas) {
  const slot = document.getElementById("toolbar-actions");
  const dialog = document.getElementById("fleet-confirm");
  const stop = toolbarButton("fleet-stop", "btn btn-small fleet-stop");
  const pending = toolbarButton("fleet-pending", "btn btn-small fleet-pending");
  slot.prepend(stop, pending);
  let pendingIds = [];

  const busy = () => canvas.allCards().filter((el) => Number(el.dataset.activeTasks) > 0);
  const render = () => {
    const tasks = busy().reduce((sum, el) => sum + Number(el.dataset.activeTasks), 0);
    stop.hidden = tasks === 0;
    stop.textContent = `Stop all (${tasks} task${tasks === 1 ? "" : "s"} active)`;
    const waiting = pendingIds.filter((id) => canvas.card(id));
    pending.hidden = waiting.length === 0;
    pending.textContent = `Restart pending (${waiting.length})`;
  };
  // Recounting reads every card: once a frame at most, however many events a burst brings.
  let queued = false;
  const renderSoon = () => {
    if (queued) return;
    queued = true;
    requestAnimationFrame(() => { queued = false; render(); });
  };
  for (const name of ["card-state", "cards-changed", "cards-synced"]) canvas.on(name, renderSoon);
  canvas.on("needs-restart", ({ ids }) => { pendingIds = ids; renderSoon(); });
  render();

  stop.addEventListener("click", () => restartAll(canvas, dialog, busy().map((el) => canvas.idOf(el)), {
    heading: "Stop all running tasks",
    text: "Restart every workspace with a task in progress? Their current tasks are abandoned.",
    confirm: "Stop all",
  }));
  pending.addEventListener("click", () => restartAll(canvas, dialog, pendingIds.filter((id) => canvas.card(id)), {
    heading: "Restart pending workspaces",
    text: "Restart every workspace whose configuration changed, so the change applies?",
    confirm: "Restart",
  }));
}

function toolbarButton(id, className) {
  const button = document.createElement("button");
  button.type = "button";
  button.id = id;
  button.className = className;
  button.hidden = true;
  return button;
}

async function restartAll(canvas, dialog, ids, { heading, text, confirm }) {
  if (!ids.length) return;
  dialog.querySelector("[data-fleet-title]").textContent = heading;
  dialog.querySelector("[data-fleet-text]").textContent = text;
  dialog.querySelector("[data-fleet-list]").replaceChildren(
    ...ids.map((id) => Object.assign(document.createElement("li"), { textContent: canvas.card(id)?.dataset.name ?? id })));
  dialog.querySelector("[data-fleet-ok]").textContent = confirm;
  dialog.returnValue = "";
  dialog.showModal();
  const answer = await new Promise((resolve) => dialog.addEventListener("close", () => resolve(dialog.returnValue), { once: true }));
  if (answer !== "confirm") return;
  const results = await Promise.all(ids.map(async (id) => ({ id, answer: await api("POST", `/workspaces/${id}/restart`) })));
  for (const { id, answer: reply } of results) {
    if (reply.ok) canvas.applyState(id, { status: "provisioning", current_task: "", active_tasks: 0 });
  }
  const failed = results.filter((r) => !r.answer.ok).length;
  if (failed) canvas.toast(`${failed}/${ids.length} restarts failed`, "error");
  else canvas.toast(`Restarted ${ids.length} workspace${ids.length === 1 ? "" : "s"}`, "success");
}
