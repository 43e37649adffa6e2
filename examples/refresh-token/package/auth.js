export default {
  // Store keys: refreshtoken, accesstoken, expiresAt (ms since the epoch).

  async login() {
    const tok = await tokenAuth.run();
    // The refresh token first: it is the one thing we cannot get back.
    await storeValue("refreshtoken", tok.refresh_token);
    await this.useAccessToken(tok);
    return { loggedIn: true, expiresIn: tok.expires_in };
  },

  async useAccessToken(tok) {
    await storeValue("accesstoken", tok.access_token);
    await storeValue("expiresAt", Date.now() + tok.expires_in * 1000);
  },

  // The stored access token does not expire within the margin.
  isFresh() {
    const expiresAt = appsmith.store.expiresAt;
    const margin = Number(inputs.marginSeconds) * 1000;
    return Boolean(appsmith.store.accesstoken && expiresAt && Date.now() < expiresAt - margin);
  },

  // After a refresh: persist the new refresh token before using the new
  // access token (RFC 9700), and only if the stored one is still the one
  // we spent — compare-and-swap, so a peer's newer token is never undone.
  async saveTokens(tok, spent) {
    const next = tok.refresh_token ?? spent; // no new one: keep the old
    const swapped = await compareAndSwapValue("refreshtoken", spent, next);
    if (!swapped) return false; // a peer rotated it meanwhile: its tokens win
    await this.useAccessToken(tok);
    return true;
  },

  // One refresh in flight per app: concurrent callers share it. used is
  // the access token the caller found expiring, or that the API refused:
  // by the time the flight runs, a peer — another call, or another server
  // — may have refreshed, and then its token is the one to use: the store
  // holds another token, or (a peer's new token read with its old expiry)
  // the token is fresh after all, unless the API refused it.
  refreshAccessToken(used, refused) {
    return singleFlight("refresh", async () => {
      if (used !== undefined) {
        const current = appsmith.store.accesstoken;
        if (current && current !== used) return { refreshed: false, by: "peer" };
        if (!refused && this.isFresh()) return { refreshed: false, by: "peer" };
      }
      const rt = appsmith.store.refreshtoken;
      if (!rt) throw new Error("not logged in: run auth.login first");
      let tok;
      try {
        tok = await refreshAPI.run({ refreshtoken: rt });
      } catch (e) {
        if (e.statusCode === 400 && e.data && e.data.error === "invalid_grant") {
          // A peer may already have rotated the token we read: re-read.
          const now = appsmith.store.refreshtoken;
          if (now && now !== rt) return { refreshed: false, by: "peer" };
          await removeValue("accesstoken");
          await removeValue("refreshtoken");
          throw new Error("the refresh token was rejected (invalid_grant): log in again with auth.login");
        }
        throw e;
      }
      const saved = await this.saveTokens(tok, rt);
      return { refreshed: saved, expiresIn: tok.expires_in };
    });
  },

  // Refresh ahead of expiry, with a margin.
  async ensureFresh() {
    if (!this.isFresh()) await this.refreshAccessToken(appsmith.store.accesstoken);
  },

  // An authenticated call: fresh token first; on a 401, refresh once and retry.
  async getProfile() {
    await this.ensureFresh();
    const used = appsmith.store.accesstoken;
    try {
      return await profile.run();
    } catch (e) {
      if (e.statusCode !== 401) throw e;
      // Refresh unless a concurrent call already replaced the token we used.
      if (appsmith.store.accesstoken === used) await this.refreshAccessToken(used, true);
      return await profile.run();
    }
  },

  // onLoad: keep the session fresh when an instance starts.
  async keepFresh() {
    if (appsmith.store.refreshtoken) await this.ensureFresh();
  },
};
