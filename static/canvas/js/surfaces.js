// Owned by the surfaces part of the canvas (being written).
export function install(canvas) {}
