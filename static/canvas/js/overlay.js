// Owned by the overlay part of the canvas (being written).
export function install(canvas) {}
