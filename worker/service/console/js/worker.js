// What the worker said about itself (GET /about): its version, whether writes need the control token,
// which route groups it has, and the grouping algorithms with their own settings.

let about = {};

export function setWorker(answer) { about = answer || {}; }
export function worker() { return about; }
