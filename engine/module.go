package engine

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"net/http"
	"time"
)

// Module is one compiled module of a package.
type Module interface {
	// Name is the module's name: its file's base name, a JS identifier.
	Name() string
	// File is the module's path inside the package, slash-separated.
	File() string
}

// JSGlobals are the names modrun puts in every JS module's realm besides
// the package's modules and JavaScript's built-ins (DESIGN §5).
var JSGlobals = append([]string{
	"appsmith", "inputs", "storeValue", "removeValue", "clearStore",
	"compareAndSwapValue", "singleFlight", "showAlert", "console",
	"setTimeout", "setInterval", "clearTimeout", "clearInterval", "oauth2",
}, HeadlessActions...)

// HeadlessActions are Appsmith's global functions that act on a page in
// a browser: headless, each logs that it was ignored and resolves to
// undefined (DESIGN §19), so that code written for a page still runs.
var HeadlessActions = []string{"navigateTo", "showModal", "closeModal", "resetWidget", "download", "copyToClipboard"}

// JSLibraries are the libraries a JS module may use by their global names
// (Appsmith preloads them), as "npm-name version"; a runtime loads one only
// if a module of its package uses it.
var JSLibraries = map[string]string{
	"_":      "lodash 4.18.1",
	"moment": "moment 2.31.0",
}

// FunctionLister is an optional ability of a Module: the functions it
// exports, known at load (a JS module's default export). Load checks
// onLoad and schedule targets against it; a server lists them.
type FunctionLister interface {
	Functions() []string
}

// Source is one module file handed to a Kind for compilation.
type Source struct {
	Name string       // module name
	Path string       // path inside the package, slash-separated
	Data []byte       // file contents
	Pkg  *PackageInfo // what the module may refer to
}

// PackageInfo is what a module may refer to while it compiles: the
// package's inputs and the names of all its modules.
type PackageInfo struct {
	Name        string
	Version     string
	Inputs      map[string]Input
	Modules     map[string]string     // module name → file
	Credentials map[string]Credential // package.yaml's oauth2:
	// Bindings are the credentials compiled (packages.Load compiles each
	// once); a PackageInfo made by hand may have none, and a kind then
	// compiles the credentials it uses itself.
	Bindings map[string]CredentialBinding
}

// A CredentialBinding is an oauth2: credential of package.yaml compiled:
// its templates, evaluated against a scope when a query binds or JS asks
// for a token (binding.Credential).
type CredentialBinding interface {
	// Bind evaluates the credential into the spec of a token request.
	Bind(scope Scope, params any) (TokenSpec, error)
	// BindLogin evaluates the authorization_code grant's authorizeUrl
	// and redirectUrl.
	BindLogin(scope Scope) (authorizeURL, redirectURL string, err error)
}

// Kind compiles one kind of module file (query modules, JS modules).
type Kind interface {
	// Match reports whether path is a module file of this kind and, if so,
	// the module's name.
	Match(path string) (name string, ok bool)
	// Compile checks and compiles a module. All problems found are returned,
	// joined, as *SourceError values.
	Compile(src Source) (Module, error)
}

// Expr is a binding expression compiled at load time. Its concrete type
// belongs to the package that compiled it; a Scope that can evaluate it
// knows that type.
type Expr interface {
	String() string
}

// Scope is what a module's bindings can see of the instance running them.
// Its methods are called on the instance's loop.
type Scope interface {
	// Lookup resolves the dotted path root.keys[0].keys[1]… natively. ok is
	// false when root cannot be resolved without JavaScript. A missing key
	// under a known root gives (nil, true, nil). Values are nil, bool,
	// float64, string, json.RawMessage, []any or map[string]any.
	Lookup(root string, keys []string, params any) (v any, ok bool, err error)
	// Eval evaluates expr in the instance's JavaScript realm with
	// this.params = params, returning a value as Lookup does.
	Eval(expr Expr, params any) (any, error)
}

// Learner is an optional ability of a Scope: the values a query sends as
// credentials (a bearer token, a Basic credential, fields named like
// secrets) are told to it, so that they are redacted from all output
// from then on — an error that echoes the request, say.
type Learner interface {
	Learn(secret string)
}

// Logging is an optional ability of a Scope: the logger of the instance
// that binds a query, for what the query does on its own at info level
// (a retry, say). Its handler redacts what the instance knows is secret.
type Logging interface {
	Logger() *slog.Logger
}

// Instance is a package bound to an app, inputs and a store, ready to
// run its targets. Implementations are safe for concurrent use.
type Instance interface {
	// Call runs target ("module.function" or a query module's name) with
	// args and returns its result as JSON.
	Call(ctx context.Context, target string, args ...json.RawMessage) (json.RawMessage, error)
	// Redact hides in s every secret the instance knows.
	Redact(s string) string
	// Close ends the instance; calls in progress fail.
	Close() error
}

// Observer is told what an instance's runs do, for metrics. Its methods
// are called on the instance's loop: they must be quick.
type Observer interface {
	// Query reports a finished request of query module; status is the
	// HTTP status, 0 when no response arrived.
	Query(module string, status int)
}

// Query is a module that sends one HTTP request.
type Query interface {
	Module
	// Bind evaluates the module's bindings in scope and returns the request,
	// ready to send. It is called on the instance's loop; it does no I/O.
	Bind(scope Scope, params any) (Request, error)
}

// Request is a bound query, ready to send from any goroutine.
type Request interface {
	// Send performs the request. A non-2xx response, a timeout or a network
	// error is returned as a *ResponseError (with the Response when one
	// arrived).
	Send(ctx context.Context) (*Response, error)
}

// BodyKind says how a response body is presented as data.
type BodyKind int

const (
	BodyText   BodyKind = iota // a string
	BodyJSON                   // parsed JSON
	BodyBinary                 // a base64 string
)

// Response is a query's result.
type Response struct {
	StatusCode int
	Header     http.Header
	Body       []byte
	Kind       BodyKind
	Duration   time.Duration
}

// Success reports whether the status code is 2xx.
func (r *Response) Success() bool { return r.StatusCode >= 200 && r.StatusCode < 300 }

// DataJSON returns the response data as JSON: the body itself when it is
// JSON, a JSON string for text, a base64 JSON string for binary.
func (r *Response) DataJSON() json.RawMessage {
	switch r.Kind {
	case BodyJSON:
		if len(r.Body) == 0 {
			return json.RawMessage("null")
		}
		return r.Body
	case BodyBinary:
		b, _ := json.Marshal(base64.StdEncoding.EncodeToString(r.Body))
		return b
	default:
		b, _ := json.Marshal(string(r.Body))
		return b
	}
}

// Meta is Appsmith's responseMeta of a response.
type Meta struct {
	StatusCode         int                 `json:"statusCode"`
	Headers            map[string][]string `json:"headers"`
	IsExecutionSuccess bool                `json:"isExecutionSuccess"`
	DurationMs         int64               `json:"durationMs"`
}

// Meta returns the response's responseMeta.
func (r *Response) Meta() Meta {
	return Meta{
		StatusCode:         r.StatusCode,
		Headers:            r.Header,
		IsExecutionSuccess: r.Success(),
		DurationMs:         r.Duration.Milliseconds(),
	}
}

// Undefined is JavaScript's undefined as a binding's value: a missing key
// (appsmith.store.notYetSet, this.params.cursor not given) or an
// expression that evaluated to undefined, as opposed to null. It renders
// as null in JSON and as empty text, but a query parameter, header or form
// field whose whole value it is, is left out (DESIGN §21).
var Undefined any = undefinedValue{}

type undefinedValue struct{}

// IsUndefined reports whether v is Undefined.
func IsUndefined(v any) bool {
	_, ok := v.(undefinedValue)
	return ok
}
