// The baseline for the gate benchmark: a Worker that forwards every request to ORIGIN_URL as it
// is, with no checks. The difference to the real Worker is what the gate costs.
export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    return fetch(env.ORIGIN_URL + url.pathname + url.search, {
      method: request.method,
      headers: request.headers,
      redirect: "manual",
    });
  },
};
