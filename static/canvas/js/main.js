// Entry point of the canvas page: the core first, then each part on top of it.
import { Canvas } from "./canvas.js";
import * as gestures from "./gestures.js";
import * as live from "./live.js";
import * as panel from "./panel.js";
import * as surfaces from "./surfaces.js";
import * as overlay from "./overlay.js";
import * as fleet from "./fleet.js";

const root = document.getElementById("canvas");
const canvas = new Canvas(root);
window.moleculeCanvas = canvas; // for the browser tests and a curious operator's console
canvas.install();
for (const part of [gestures, panel, surfaces, overlay, fleet, live]) part.install(canvas);
document.body.dataset.canvasReady = "true";
