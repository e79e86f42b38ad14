// Owned by the panel part of the canvas (being written).
export function install(canvas) {}
