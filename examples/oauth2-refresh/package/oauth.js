export default {
  async login() {
    const tok = await passwordGrant.run();
    await storeValue("refresh_token", tok.refresh_token);  // first: it cannot be got back
    await this.useAccess(tok);
    return { expiresIn: tok.expires_in };
  },

  async useAccess(tok) {
    await storeValue("access_token", tok.access_token);
    await storeValue("expires_at", Date.now() + tok.expires_in * 1000);
  },

  // One refresh per app at a time; the new refresh token is persisted
  // (compare-and-swap against the one spent) before the access token.
  refresh() {
    return singleFlight("oauth-refresh", async () => {
      const spent = appsmith.store.refresh_token;
      if (!spent) throw new Error("not logged in: run oauth.login first");
      let tok;
      try {
        tok = await refreshGrant.run({ refreshToken: spent });
      } catch (e) {
        if (e.data && e.data.error === "invalid_grant") {
          if (appsmith.store.refresh_token !== spent) return { refreshed: false, by: "peer" };
          throw new Error("the refresh token was rejected (invalid_grant): log in again");
        }
        throw e;
      }
      if (!(await compareAndSwapValue("refresh_token", spent, tok.refresh_token ?? spent))) {
        return { refreshed: false, by: "peer" };
      }
      await this.useAccess(tok);
      return { refreshed: true, expiresIn: tok.expires_in };
    });
  },
};
