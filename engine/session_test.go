package engine_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/modrun/modrun/engine"
)

func TestSessionWithoutStore(t *testing.T) {
	ctx := context.Background()
	s := engine.NewSession(nil, "app")
	if err := s.Set(ctx, "k", json.RawMessage(`1`), false); err != nil {
		t.Fatal(err)
	}
	if v, err := s.Get(ctx, "k"); err != nil || string(v) != "1" {
		t.Fatalf("session value: %s %v", v, err)
	}
	if err := s.Set(ctx, "p", json.RawMessage(`1`), true); !errors.Is(err, engine.ErrNoStore) {
		t.Fatalf("persisted write without a store: %v", err)
	}
}
