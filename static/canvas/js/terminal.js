// The Terminal tab (canvas spec §3.5): an xterm.js terminal on the workspace's shell,
// GET /workspaces/<id>/terminal on this origin (the operator's session cookie is the auth).
//
// Keystrokes go out as binary frames, the shell's output comes back as binary frames, and the
// terminal's size is sent as {"type":"resize","cols","rows"} whenever the fit addon changes it
// (panel resized, window resized). The socket offers the "molecule-terminal" subprotocol, so a
// refusal arrives as a close code 4000+status with the reason ("Docker not available"): a
// browser cannot read a refused handshake's answer. The tab hangs up when it is hidden (another
// tab, the panel closed, another workspace) and connects again when shown.
//
// xterm.js (~350 KB) is imported the first time the tab opens, not with the canvas.

const XTERM = "../vendor/xterm-6.0.0.mjs";
const FIT = "../vendor/addon-fit-0.11.0.mjs";
const XTERM_CSS = new URL("../vendor/xterm-6.0.0.css", import.meta.url).href;
const SUBPROTOCOL = "molecule-terminal";
const REFUSED_FROM = 4000, REFUSED_TO = 4999;
const SEND_CHUNK = 16 * 1024; // the server closes on frames over 64 KiB: a large paste goes in pieces
const FONT = '"DejaVu Sans Mono", "Liberation Mono", "Noto Sans Mono", ui-monospace, Menlo, Consolas, monospace';
const THEME = {
  background: "#09090b", foreground: "#e4e4e7", cursor: "#38bdf8", cursorAccent: "#09090b",
  selectionBackground: "rgba(56, 189, 248, .3)",
  black: "#18181b", red: "#f87171", green: "#34d399", yellow: "#fbbf24", blue: "#60a5fa", magenta: "#c084fc",
  cyan: "#22d3ee", white: "#d4d4d8", brightBlack: "#52525b", brightRed: "#fca5a5", brightGreen: "#6ee7b7",
  brightYellow: "#fde68a", brightBlue: "#93c5fd", brightMagenta: "#d8b4fe", brightCyan: "#67e8f9", brightWhite: "#f4f4f5",
};
const DIM = (text) => `\x1b[2m${text}\x1b[0m`;

let libraries = null;

function loadLibraries() {
  if (!document.querySelector("link[data-xterm-css]")) {
    const link = document.createElement("link");
    link.rel = "stylesheet";
    link.href = XTERM_CSS;
    link.dataset.xtermCss = "";
    document.head.append(link);
  }
  libraries ??= Promise.all([import(XTERM), import(FIT)]).then(([xterm, fit]) => ({ Terminal: xterm.Terminal, FitAddon: fit.FitAddon }));
  return libraries;
}

function socketUrl(path) {
  const url = new URL(path, window.location.href);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  return url.href;
}

class TerminalView {
  constructor(el) {
    this.el = el;
    this.root = el.querySelector("[data-terminal]");
    this.screen = el.querySelector("[data-terminal-screen]");
    this.status = el.querySelector("[data-terminal-status]");
    this.sizeEl = el.querySelector("[data-terminal-size]");
    this.reconnectButton = el.querySelector("[data-terminal-reconnect]");
    this.unavailable = el.querySelector("[data-terminal-unavailable]");
    this.path = this.root.dataset.terminalPath;
    this.ws = null;
    this.term = null;
    this.sent = "";
    this.disposed = false;
    this.encoder = new TextEncoder();
  }

  async start() {
    let lib;
    try {
      lib = await loadLibraries();
    } catch (error) {
      this.setState("failed", "Could not load the terminal");
      return;
    }
    if (this.disposed) return;
    this.term = new lib.Terminal({
      fontFamily: FONT, fontSize: 13, lineHeight: 1.15, cursorBlink: true, scrollback: 5000, theme: THEME,
      allowProposedApi: false, convertEol: false,
    });
    this.fit = new lib.FitAddon();
    this.term.loadAddon(this.fit);
    this.term.open(this.screen);
    this.term.onData((data) => this.sendBytes(this.encoder.encode(data)));
    this.term.onBinary((data) => this.sendBytes(Uint8Array.from(data, (ch) => ch.charCodeAt(0) & 0xff)));
    this.term.onResize(() => this.sendSize());
    this.observer = new ResizeObserver(() => this.refit());
    this.observer.observe(this.screen);
    this.refit();
    this.connect();
  }

  refit() {
    if (!this.term || this.disposed || this.frame) return;
    // One fit per frame, however many resize notifications a drag of the panel's edge makes.
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      if (this.disposed || !this.screen.clientWidth || !this.screen.clientHeight) return;
      try { this.fit.fit(); } catch { /* not laid out yet */ }
      this.showSize();
    });
  }

  showSize() {
    if (this.term) this.sizeEl.textContent = `${this.term.cols}×${this.term.rows}`;
  }

  setState(state, text, { reconnect = false } = {}) {
    this.root.dataset.state = state;
    this.status.textContent = text;
    this.reconnectButton.hidden = !reconnect;
  }

  connect() {
    if (this.disposed || !this.term) return;
    this.hangUp();
    this.showUnavailable(null);
    this.setState("connecting", "Connecting…");
    this.sent = "";
    this.greeted = false;
    let opened = false;
    // A refusal comes as an accepted socket closed at once (4503…): "Shell active" waits for
    // the shell's first output, or a moment, so it does not flash before "unavailable".
    let settle = 0;
    const active = () => { clearTimeout(settle); if (ws === this.ws && this.root.dataset.state !== "active") this.setState("active", "Shell active"); };
    const ws = new WebSocket(socketUrl(this.path), [SUBPROTOCOL]);
    ws.binaryType = "arraybuffer";
    this.ws = ws;
    ws.addEventListener("open", () => {
      if (ws !== this.ws) return;
      opened = true;
      settle = setTimeout(active, 250);
      this.sendSize();
    });
    ws.addEventListener("message", (event) => {
      if (ws !== this.ws) return;
      if (!this.greeted) { this.greeted = true; active(); this.term.writeln(DIM("Connected to workspace shell")); }
      this.term.write(typeof event.data === "string" ? event.data : new Uint8Array(event.data));
    });
    ws.addEventListener("close", (event) => {
      clearTimeout(settle);
      if (ws !== this.ws) return;
      this.ws = null;
      this.greeted = false;
      if (event.code >= REFUSED_FROM && event.code <= REFUSED_TO) {
        const reason = event.reason || `the platform answered ${event.code - REFUSED_FROM}`;
        this.setState("unavailable", `Terminal unavailable: ${reason}`);
        this.showUnavailable(reason);
      } else if (!opened) {
        this.setState("failed", "Connection failed", { reconnect: true });
      } else {
        this.term.writeln(`\r\n${DIM("Session ended")}`);
        this.setState("ended", "Disconnected", { reconnect: true });
      }
    });
  }

  showUnavailable(reason) {
    this.unavailable.hidden = reason === null;
    this.screen.hidden = reason !== null;
    if (reason !== null) this.unavailable.querySelector("[data-terminal-reason]").textContent = reason;
    else this.refit();
  }

  sendBytes(bytes) {
    if (this.ws?.readyState !== WebSocket.OPEN) return;
    for (let start = 0; start < bytes.length; start += SEND_CHUNK) this.ws.send(bytes.subarray(start, start + SEND_CHUNK));
  }

  sendSize() {
    this.showSize();
    if (!this.term || this.ws?.readyState !== WebSocket.OPEN) return;
    const size = JSON.stringify({ type: "resize", cols: this.term.cols, rows: this.term.rows });
    if (size === this.sent) return;
    this.sent = size;
    this.ws.send(size);
  }

  hangUp() {
    const ws = this.ws;
    this.ws = null;
    if (ws && ws.readyState <= WebSocket.OPEN) ws.close(1000);
  }

  dispose() {
    this.disposed = true;
    this.hangUp();
    cancelAnimationFrame(this.frame);
    this.observer?.disconnect();
    this.term?.dispose();
    this.term = null;
  }
}

export const terminalTab = {
  // Hidden means hung up: the panel unmounts this tab whenever another one is shown.
  unmountWhenHidden: true,
  mount(el) {
    this.view?.dispose();
    this.view = new TerminalView(el);
    this.view.start();
  },
  unmount() {
    this.view?.dispose();
    this.view = null;
  },
  refresh() { this.view?.connect(); },
  click(event) {
    if (event.target.closest("[data-terminal-reconnect], [data-terminal-retry]")) this.view?.connect();
  },
  // Keys typed into the terminal are the shell's: Esc must not close the panel, nor any key
  // reach the canvas's shortcuts.
  keydown(event) {
    if (event.target.closest("[data-terminal-screen]")) event.stopPropagation();
  },
};

// For the browser tests: the live view of the open tab, if any.
export function terminalView() { return terminalTab.view; }
