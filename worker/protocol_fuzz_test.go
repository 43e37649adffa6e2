package worker

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"

	"github.com/modrun/modrun/engine"
)

// frame is m as it travels: its length, then its JSON.
func frame(t testing.TB, m *message) []byte {
	var b bytes.Buffer
	if err := newConn(nil, &b, nil).send(m); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// FuzzRecv holds the reader of frames, the server's side of a pipe from an
// untrusted worker (DESIGN §17), to what the server relies on: whatever
// bytes arrive, recv returns a message or an error and never panics; each
// message it returns can be checked (wellFormed) and its error read
// without a panic, and it travels again as the same message. (That recv
// allocates only for what has arrived is TestFrameLengthIsNotTrusted's.)
func FuzzRecv(f *testing.F) {
	for _, m := range []*message{
		{ID: 1, Op: opCall, Inst: 2, Call: &callFrame{Target: "auth.refresh", Args: []json.RawMessage{json.RawMessage(`{"a":[1,"x"]}`)}, Deadline: 1e12}},
		{Re: 1, Op: opCall, Answer: &answer{Result: json.RawMessage(`"ok"`)}},
		{Re: 1, Op: opCall, Answer: &answer{Err: &wireError{Msg: "refreshAPI: HTTP 400: invalid_grant", Kind: "notfound", Module: "refreshAPI", Status: 400}}},
		{ID: 3, Op: opStore, Inst: 2, Store: &storeFrame{Op: "set", App: "default", Key: "refreshtoken", Value: json.RawMessage(`"rt-1"`)}},
		{Op: opLog, Log: &logFrame{Level: 4, Msg: "console.log", Attrs: map[string]string{"run": "r1"}}},
		{Op: opStarted, Started: []uint64{1, 2, 3}},
		{ID: 4, Op: opFlightJoin, Flight: "oauth2.api"},
		{Op: opDying, Answer: &answer{Err: &wireError{Msg: "run exceeded its memory limit", Kind: "memory"}}},
		{Op: opStore}, // breaks the protocol: no payload
	} {
		f.Add(frame(f, m))
	}
	two := append(frame(f, &message{Op: opStarted, Started: []uint64{7}}), frame(f, &message{Op: opQuery, Query: &queryFrame{Module: "q", Status: 200}})...)
	f.Add(two)
	f.Add([]byte{0, 0, 0, 5, '{', '}'})                                    // shorter than it says
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, '{'})                             // over MaxFrame
	f.Add([]byte{0x01, 0x00, 0x00, 0x00, '{'})                             // 16 MiB claimed, one byte sent
	f.Add([]byte{0, 0, 0, 2, '[', ']'})                                    // JSON, not a message
	f.Add([]byte{0, 0, 0, 9, '{', '"', 'o', 'p', '"', ':', '7', '}', ' '}) // a field of the wrong type

	f.Fuzz(func(t *testing.T, data []byte) {
		c := newConn(bytes.NewReader(data), nil, nil)
		for range 16 {
			m, err := c.recv()
			if err != nil {
				return // the server stops a worker whose frame does not read
			}
			m.wellFormed()
			if err := fromWire(m.answered().Err); err != nil {
				_ = err.Error()
				var re *engine.ResponseError
				_ = errors.As(err, &re) && re.Error() != ""
				for _, k := range kinds {
					_ = errors.Is(err, k.err)
				}
			}
			// Round trip: what was read travels again unchanged (raw
			// values compact on the first encoding, so compare encodings).
			first, err := json.Marshal(m)
			if err != nil {
				t.Fatalf("a message read from a frame does not encode: %v", err)
			}
			again, err := newConn(bytes.NewReader(frame(t, m)), nil, nil).recv()
			if err != nil {
				t.Fatalf("a message read from a frame does not read back: %v", err)
			}
			second, err := json.Marshal(again)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(first, second) {
				t.Fatalf("a message changed on its way round:\n%s\n%s", first, second)
			}
			if again.wellFormed() != m.wellFormed() {
				t.Fatal("wellFormed changed on the way round")
			}
		}
	})
}
