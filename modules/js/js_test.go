package js_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/modrun/modrun/engine"
)

const refreshQuery = `method: POST
url: <<inputs.baseUrl>>/token
body:
  json: {refresh_token: "<<this.params.refreshtoken>>"}
`

// The seed's module text, as written in Appsmith's guide (arrow functions,
// .then/.catch), with its key names made consistent.
const seedModule = `export default {
	refreshAccessToken: () => {
		const refreshToken = appsmith.store.refreshtoken;
		if (refreshToken) {
			return refreshAPI.run({ refreshtoken: refreshToken }).then(newTokens => {
				storeValue('accesstoken', newTokens.access_token);
				if (newTokens.refresh_token) {
					storeValue('refreshtoken', newTokens.refresh_token);
				}
			}).catch(error => {
				console.log('Error refreshing token:', error);
			});
		}
	}
}
`

func TestSeedModuleRuns(t *testing.T) {
	srv := newTokenServer(t)
	pkg := load(t, map[string]string{"refreshAPI.query.yaml": refreshQuery, "auth.js": seedModule})
	st := openStore(t)
	inst := newInstance(t, pkg, st, map[string]any{"baseUrl": srv.URL})
	if err := inst.Session().Set(context.Background(), "refreshtoken", []byte(`"rt-old"`), true); err != nil {
		t.Fatal(err)
	}
	if got := call(t, inst, "auth.refreshAccessToken"); got != "null" {
		t.Fatalf("result %s", got)
	}
	at, _ := st.Get(context.Background(), "test", "accesstoken")
	rt, _ := st.Get(context.Background(), "test", "refreshtoken")
	if string(at) != `"at-1"` || string(rt) != `"rt-new"` {
		t.Fatalf("stored accesstoken=%s refreshtoken=%s", at, rt)
	}
}

func TestAsyncAwaitFlow(t *testing.T) {
	srv := newTokenServer(t)
	pkg := load(t, map[string]string{"refreshAPI.query.yaml": refreshQuery, "auth.js": `export default {
	retries: 0,
	async refreshAccessToken() {
		const rt = appsmith.store.refreshtoken;
		if (!rt) throw new Error("not logged in");
		const tok = await refreshAPI.run({ refreshtoken: rt });
		await storeValue("refreshtoken", tok.refresh_token ?? rt);
		await storeValue("accesstoken", tok.access_token);
		this.retries++;
		return {expires: tok.expires_in, sent: tok.echo.refresh_token, retries: this.retries, seen: appsmith.store.accesstoken};
	},
};`})
	st := openStore(t)
	inst := newInstance(t, pkg, st, map[string]any{"baseUrl": srv.URL})
	_, err := inst.Call(context.Background(), "auth.refreshAccessToken")
	if err == nil || !strings.Contains(err.Error(), "not logged in") {
		t.Fatalf("without a token: %v", err)
	}
	inst.Session().Set(context.Background(), "refreshtoken", []byte(`"rt \"quoted\" \\ old"`), true)
	got := call(t, inst, "auth.refreshAccessToken")
	want := `{"expires":60,"sent":"rt \"quoted\" \\ old","retries":1,"seen":"at-1"}`
	if got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
	if got := call(t, inst, "auth.refreshAccessToken"); !strings.Contains(got, `"retries":2`) {
		t.Fatalf("module variables should persist: %s", got)
	}
}

func TestErrorsCarryStackAndCause(t *testing.T) {
	srv := newTokenServer(t)
	pkg := load(t, map[string]string{
		"failing.query.yaml": "url: <<inputs.baseUrl>>/fail\n",
		"auth.js": `export default {
	async go() {
		await failing.run();
	},
	async caught() {
		try { await failing.run(); } catch (e) { return {msg: e.message, status: e.statusCode, data: e.data}; }
	},
	throwsString() { throw "plain"; },
};`})
	inst := newInstance(t, pkg, openStore(t), map[string]any{"baseUrl": srv.URL})
	_, err := inst.Call(context.Background(), "auth.go")
	var re *engine.ResponseError
	if !errors.As(err, &re) || re.Response.StatusCode != 400 {
		t.Fatalf("the query failure should be the cause: %v", err)
	}
	if !strings.Contains(err.Error(), "failing: HTTP 400: invalid_grant") || !strings.Contains(err.Error(), "auth.js:3") {
		t.Fatalf("error should name the cause and the line: %v", err)
	}
	if got := call(t, inst, "auth.caught"); got != `{"msg":"failing: HTTP 400: invalid_grant","status":400,"data":{"error":"invalid_grant"}}` {
		t.Fatalf("caught: %s", got)
	}
	_, err = inst.Call(context.Background(), "auth.throwsString")
	if err == nil || !strings.Contains(err.Error(), "uncaught plain") {
		t.Fatalf("throw of a string: %v", err)
	}
}
