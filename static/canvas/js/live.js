// Owned by the live part of the canvas (being written): for now only connects and shows the pill.
export function install(canvas) {
  const pill = document.getElementById("ws-pill");
  const socket = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws`);
  socket.addEventListener("open", () => { pill.className = "ws-pill is-live"; pill.textContent = "Live"; });
  socket.addEventListener("close", () => { pill.className = "ws-pill is-offline"; pill.textContent = "Offline"; });
}
