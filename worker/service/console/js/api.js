// The control API, and nothing else: JSON in, JSON out. The control token lives in sessionStorage
// (this tab only) and goes as a bearer header; no cookie is ever sent, so no other site can act for us.

const TOKEN_KEY = 'gorgias-worker.control-token';

/** The worker answered with an error; `errors` are the structured validation items (path, message, suggestion). */
export class ApiError extends Error {
  constructor(status, body) {
    super((body && typeof body.error === 'string') ? body.error : `HTTP ${status}`);
    this.status = status;
    this.body = body;
    this.errors = (body && Array.isArray(body.errors)) ? body.errors : [];
  }
}

/** The worker could not be reached at all. */
export class Unreachable extends Error {}

let tokenPrompt = null;
let reachability = () => {};

/** `prompt(reason)` resolves to a token, or null when the person cancels. */
export function whenTokenNeeded(prompt) { tokenPrompt = prompt; }
/** `listener(ok)` hears whether the worker answers. */
export function onReachability(listener) { reachability = listener; }

export function token() { return sessionStorage.getItem(TOKEN_KEY); }
export function setToken(value) {
  if (value) sessionStorage.setItem(TOKEN_KEY, value);
  else sessionStorage.removeItem(TOKEN_KEY);
}

async function body(response) {
  const text = await response.text();
  if (!text) return null;
  try {
    return JSON.parse(text);
  } catch {
    return { error: text.slice(0, 300) };
  }
}

const PATIENCE_MS = 20000; // an answer slower than this counts as no answer

/** `method path` with an optional JSON body; resolves to the parsed answer, throws ApiError or Unreachable. */
export async function call(method, path, payload, { signal, headers = {} } = {}) {
  for (let asked = 0; ; asked += 1) {
    const sent = { Accept: 'application/json', ...headers };
    const current = token();
    if (current) sent.Authorization = `Bearer ${current}`;
    if (payload !== undefined) sent['Content-Type'] = 'application/json';
    let response;
    const patience = AbortSignal.timeout(PATIENCE_MS);
    try {
      response = await fetch(path, {
        method, headers: sent, credentials: 'omit', cache: 'no-store', redirect: 'error',
        signal: signal ? AbortSignal.any([signal, patience]) : patience,
        body: payload === undefined ? undefined : JSON.stringify(payload),
      });
    } catch (error) {
      if (signal?.aborted) throw error; // the caller gave up on it (a newer request replaces it)
      reachability(false);
      throw new Unreachable(patience.aborted ? 'the worker does not answer in time' : 'the worker does not answer');
    }
    reachability(true);
    const answer = await body(response);
    if ((response.status === 401 || response.status === 403) && tokenPrompt && asked < 3) {
      const given = await tokenPrompt(response.status === 403 ? 'That token is not the control token.' : '');
      if (given) {
        setToken(given);
        continue;
      }
    }
    if (!response.ok) throw new ApiError(response.status, answer);
    return { data: answer, headers: response.headers, status: response.status };
  }
}

export const get = (path, options) => call('GET', path, undefined, options).then((r) => r.data);
export const post = (path, payload, options) => call('POST', path, payload ?? {}, options).then((r) => r.data);
