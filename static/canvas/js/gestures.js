// Owned by the gestures part of the canvas (being written).
export function install(canvas) {}
