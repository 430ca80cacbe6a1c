// What the worker said about itself (GET /about): its version, whether writes need the control token,
// and which route groups it has.

let about = {};

export function setWorker(answer) { about = answer || {}; }
export function worker() { return about; }
