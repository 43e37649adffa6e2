// Package fixturekind is a module kind defined outside modrun: a file
// NAME.fixture.json is a module that answers its own JSON when run, as a
// query module answers an API's — a stand-in for an API not written yet,
// or for a demo without a network. Importing the package registers the
// kind (engine.RegisterKind), as database/sql drivers register:
//
//	import _ "github.com/modrun/modrun/examples/fixturekind"
//
// Then JS calls users.run() on users.fixture.json, and runner run
// PACKAGE users prints it. Nothing in modrun was edited to add it.
package fixturekind

import (
	"context"
	"encoding/json"
	"fmt"
	"path"
	"strings"
	"time"

	"github.com/modrun/modrun/engine"
)

func init() { engine.RegisterKind(Kind{}) }

// Kind compiles NAME.fixture.json files.
type Kind struct{}

// Match implements engine.Kind.
func (Kind) Match(p string) (string, bool) {
	name, ok := strings.CutSuffix(path.Base(p), ".fixture.json")
	return name, ok && name != ""
}

// Compile implements engine.Kind: the file must be JSON; it is checked
// once, here, and answered as it is.
func (Kind) Compile(src engine.Source) (engine.Module, error) {
	if !json.Valid(src.Data) {
		var v any
		err := json.Unmarshal(src.Data, &v)
		return nil, engine.Errorf(src.Path, 1, 1, "not JSON: %v", err)
	}
	return &module{name: src.Name, file: src.Path, body: src.Data}, nil
}

// module is a compiled fixture: an engine.Query whose request never
// leaves the process.
type module struct {
	name, file string
	body       []byte
}

func (m *module) Name() string { return m.name }
func (m *module) File() string { return m.file }

// Bind implements engine.Query: params are ignored.
func (m *module) Bind(engine.Scope, any) (engine.Request, error) { return m, nil }

// Send implements engine.Request.
func (m *module) Send(ctx context.Context) (*engine.Response, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", m.name, err)
	}
	return &engine.Response{StatusCode: 200, Body: m.body, Kind: engine.BodyJSON, Duration: time.Microsecond}, nil
}
