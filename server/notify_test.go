package server_test

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/modrun/modrun/engine"
	"github.com/modrun/modrun/server"
	"github.com/modrun/modrun/store"
)

// TestNotifyAnnouncesCredentials: a refresh token that expires within
// WarnBefore and a login that starts failing are each POSTed to Notify
// once, as an Event (DESIGN §18).
func TestNotifyAnnouncesCredentials(t *testing.T) {
	events := make(chan server.Event, 8)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var e server.Event
		json.NewDecoder(r.Body).Decode(&e)
		events <- e
	}))
	defer hook.Close()
	st := store.NewMemory()
	ctx := context.Background()
	soon := time.Now().Add(24 * time.Hour).UnixMilli()
	set := func(failures int) json.RawMessage {
		raw, _ := json.Marshal(map[string]any{"access_token": "at-0123456789", "refresh_token": "rt-0123456789", "expires_at": time.Now().Add(time.Hour).UnixMilli(),
			"refresh_expires_at": soon, "package": "p", "failures": failures, "last_error": "api: token request: HTTP 503: Service Unavailable"})
		return raw
	}
	st.Set(ctx, "tenant", "oauth2.api", set(0))
	srv := server.New(server.Options{Loader: nil, Store: st, Token: token, Notify: hook.URL, WatchEvery: 50 * time.Millisecond,
		NewInstance: func(*engine.Package, string, engine.Observer) (engine.Instance, error) { return nil, nil }})
	if err := srv.Load(ctx); err != nil {
		t.Fatal(err)
	}
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(sctx, l) }()
	defer func() { cancel(); <-done }()
	next := func() server.Event {
		t.Helper()
		select {
		case e := <-events:
			return e
		case <-time.After(30 * time.Second):
			t.Fatal("no event")
		}
		return server.Event{}
	}
	if e := next(); e.Event != "refresh_token_expiring" || e.Credential != "api" || e.App != "tenant" || e.Package != "p" {
		t.Fatalf("first event: %+v", e)
	}
	st.Set(ctx, "tenant", "oauth2.api", set(1))
	if e := next(); e.Event != "refresh_failing" || e.State != "refresh_failing" || e.Message == "" {
		t.Fatalf("second event: %+v", e)
	}
	select {
	case e := <-events:
		t.Fatalf("an event announced twice: %+v", e)
	case <-time.After(300 * time.Millisecond):
	}
}
