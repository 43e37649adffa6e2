export default {
  // The seed's flow: read the store, call refreshAPI, store two values in
  // the session (persist = false).
  async refresh() {
    const rt = appsmith.store.refreshtoken ?? "rt-0";
    const tok = await refreshAPI.run({ refreshtoken: rt });
    await storeValue("accesstoken", tok.access_token, false);
    await storeValue("refreshtoken", tok.refresh_token, false);
    return tok.expires_in;
  },

  // The same with durable writes (fsync'd, group-committed).
  async refreshDurable() {
    const rt = appsmith.store.refreshtoken ?? "rt-0";
    const tok = await refreshAPI.run({ refreshtoken: rt });
    await storeValue("accesstoken", tok.access_token);
    await storeValue("refreshtoken", tok.refresh_token);
    return tok.expires_in;
  },

  // Durable storeValue alone.
  async store(i) {
    await storeValue("k", i ?? 0);
  },

  // A local function: no network, for cold starts.
  add(a, b) {
    return a + b;
  },
};
