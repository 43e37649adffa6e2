package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Input types (Input.Type).
const (
	TypeString  = "string"
	TypeNumber  = "number"
	TypeBoolean = "boolean"
	TypeJSON    = "json"
)

// Input is a package-level setting the host supplies.
type Input struct {
	Type        string // TypeString, TypeNumber, TypeBoolean or TypeJSON; empty means string
	Default     any    // the value when the host gives none; nil means none
	HasDefault  bool   // whether Default was set (a default may be null)
	Required    bool   // the host must give a value when there is no default
	Secret      bool   // never logged; redacted in output
	Description string // shown by validate and in docs
}

// Manifest is a package's package.yaml.
type Manifest struct {
	Name        string
	Version     string
	Description string
	Inputs      map[string]Input
	OnLoad      []string // "module.function", run in order when an instance starts
	Schedules   []Schedule
	OAuth2      map[string]Credential // credentials by name (DESIGN §12)
}

// OAuth2 grants (Credential.Grant).
const (
	GrantClientCredentials = "client_credentials"
	GrantRefreshToken      = "refresh_token"
	GrantAuthorizationCode = "authorization_code"
	GrantPassword          = "password"
)

// Credential is an oauth2: entry of package.yaml. Its string fields may
// hold bindings (<<inputs.clientId>>), compiled by the modules that use
// the credential.
type Credential struct {
	Grant         string
	TokenURL      string
	AuthorizeURL  string // authorization_code
	RedirectURL   string // authorization_code; loopback only
	ClientID      string
	ClientSecret  string // empty: a public client
	ClientAuth    string // "basic" (default) or "body"
	Username      string // password grant
	Password      string // password grant
	Scopes        []string
	Params        map[string]string // extra token-request fields
	RefreshMargin time.Duration     // refresh this long before expiry
	// ExpiresIn is an access token's lifetime when the token endpoint
	// says none (no expires_in) and the token is no JWT with exp; zero
	// means unknown: refreshed on a 401 (or ExpiryStatus/ExpiryMatch).
	ExpiresIn time.Duration
	// RefreshTokenLifetime is how long a refresh token lives unused (a
	// provider's idle lifetime) when the token endpoint says none
	// (refresh_expires_in); zero: unknown. Using it renews it: runner
	// serve's keep-fresh refreshes within half of it.
	RefreshTokenLifetime time.Duration
	// ExpiryStatus are the statuses that mean "the token expired": the
	// query refreshes once and retries. Empty means [401].
	ExpiryStatus []int
	// ExpiryMatch marks a response of any status as "the token expired"
	// when the gjson Path of its JSON body equals Equals.
	ExpiryMatch *ExpiryMatch
	// Hosts are the origins besides the token URL's where a query may
	// send the credential's token (https://host[:port], https://*.domain;
	// http:// for loopback only). See TokenSpec.CheckDestination.
	Hosts []string
	// NoKeepFresh opts the credential out of runner serve's keep-fresh
	// (keepFresh: false): its token sets are refreshed only by calls.
	NoKeepFresh bool
}

// KeepFreshTarget is the target an Instance answers by refreshing
// credential's token set in its app if the access token expires within
// the milliseconds of its one argument, {"within": MS, "force": BOOL}
// (force: refresh whatever the expiry). It resolves to true and never
// to a token. runner serve's keep-fresh calls it (DESIGN §18).
func KeepFreshTarget(credential string) string { return keepFreshPrefix + credential }

const keepFreshPrefix = "@keepFresh:"

// KeepFreshCredential is the credential of a KeepFreshTarget, if t is one.
func KeepFreshCredential(t string) (string, bool) { return strings.CutPrefix(t, keepFreshPrefix) }

// KeepFresh is the argument of a KeepFreshTarget call.
type KeepFresh struct {
	Within int64 `json:"within"` // milliseconds
	Force  bool  `json:"force,omitempty"`
}

// TokenSpec is a credential bound for one request: every binding
// evaluated.
type TokenSpec struct {
	Name         string // the credential's name: the store key is "oauth2." + Name
	Grant        string
	TokenURL     string
	ClientID     string
	ClientSecret string
	ClientAuth   string
	Username     string
	Password     string
	Scopes       []string
	Params       map[string]string
	Margin       time.Duration
	Hosts        []string // origins besides TokenURL's where the token may go
	ExpiresIn    time.Duration
	ExpiryStatus []int
	ExpiryMatch  *ExpiryMatch
	// RefreshTokenLifetime is the credential's refreshTokenLifetime.
	RefreshTokenLifetime time.Duration
}

// ExpiryMatch is a credential's expiryMatch: a response whose JSON body
// has Equals at the gjson Path says the token expired, whatever its status
// (a 200 with {"error": {"code": "TOKEN_EXPIRED"}}).
type ExpiryMatch struct {
	Path   string
	Equals string
}

// Expired reports whether a response with status and body says spec's
// token expired.
func (spec TokenSpec) Expired(status int, match func(path string) (string, bool)) bool {
	if len(spec.ExpiryStatus) == 0 && status == 401 {
		return true
	}
	for _, s := range spec.ExpiryStatus {
		if s == status {
			return true
		}
	}
	if m := spec.ExpiryMatch; m != nil && match != nil {
		if v, ok := match(m.Path); ok && v == m.Equals {
			return true
		}
	}
	return false
}

// TokenSource is an optional ability of a Scope: OAuth2 access tokens for
// a query's auth: {oauth2: NAME}. Token returns a token that does not
// expire within spec.Margin, getting or refreshing it first if needed;
// with stale set (a token a server just refused with 401) it refreshes
// unless a concurrent run has already replaced stale. It runs off the
// loop.
type TokenSource interface {
	Token(ctx context.Context, spec TokenSpec, stale string) (string, error)
}

// Schedule is a function a server runs periodically: every Every, or at
// the times of the cron expression Cron (one of the two is set).
type Schedule struct {
	Every time.Duration
	Cron  string            // five fields, or a descriptor such as @hourly
	Run   string            // "module.function"
	Args  []json.RawMessage // its arguments
}

// String names the schedule as package.yaml writes it: "every 10m: auth.keepFresh".
func (s Schedule) String() string {
	if s.Cron != "" {
		return "cron " + strconv.Quote(s.Cron) + ": " + s.Run
	}
	return "every " + s.Every.String() + ": " + s.Run
}

// Package is a loaded package: its manifest and compiled modules. It is
// immutable and may be shared by any number of instances.
type Package struct {
	Manifest Manifest
	Modules  []Module // sorted by name
	// Bindings are the manifest's oauth2: credentials, compiled once when
	// the package is loaded (packages.Load), by name.
	Bindings map[string]CredentialBinding
	Digest   string // sha256 of the bundle ("sha256:…"), empty for a source directory
	Files    map[string][]byte
}

// Module returns the module called name, or nil.
func (p *Package) Module(name string) Module {
	i := sort.Search(len(p.Modules), func(i int) bool { return p.Modules[i].Name() >= name })
	if i < len(p.Modules) && p.Modules[i].Name() == name {
		return p.Modules[i]
	}
	return nil
}

// Ref returns NAME@VERSION.
func (p *Package) Ref() string { return p.Manifest.Name + "@" + p.Manifest.Version }

// ResolveInputs merges the host's values over the manifest's defaults. A
// string given for an input of another type is parsed as that type (the
// command line and the environment give text): "5" for a number input is
// 5. Every problem is reported in one error: unknown names (a typo should
// not pass silently), values that do not parse, and every required input
// without a value, each named with the flag that sets it.
func (p *Package) ResolveInputs(given map[string]any) (map[string]any, error) {
	out := make(map[string]any, len(p.Manifest.Inputs))
	var problems, missing []string
	for _, name := range sortedKeys(given) {
		if _, ok := p.Manifest.Inputs[name]; !ok {
			problems = append(problems, fmt.Sprintf("no input %q (inputs: %v)", name, p.InputNames()))
		}
	}
	for _, name := range p.InputNames() {
		in := p.Manifest.Inputs[name]
		if v, ok := given[name]; ok {
			typed, err := in.Parse(v)
			if err != nil {
				problems = append(problems, fmt.Sprintf("input %s: %v", name, err))
				continue
			}
			out[name] = typed
			continue
		}
		if in.HasDefault {
			out[name] = in.Default
			continue
		}
		if in.Required {
			missing = append(missing, name)
		}
		out[name] = nil
	}
	if len(missing) > 0 {
		flags := make([]string, len(missing))
		envs := make([]string, len(missing))
		for i, n := range missing {
			flags[i] = "--input " + n + "=VALUE"
			envs[i] = "$" + InputEnv(n)
		}
		verb := "input %s is"
		if len(missing) > 1 {
			verb = "inputs %s are"
		}
		problems = append(problems, fmt.Sprintf("required "+verb+" not set: give %s (or %s)", quoteAll(missing), strings.Join(flags, " "), strings.Join(envs, ", ")))
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("package %s: %s", p.Manifest.Name, strings.Join(problems, "; "))
	}
	return out, nil
}

// InputEnv is the environment variable that sets input name for the
// runner: MODRUN_INPUT_ and the name upper-cased (apiKey: MODRUN_INPUT_APIKEY).
func InputEnv(name string) string { return "MODRUN_INPUT_" + strings.ToUpper(name) }

// Parse converts v, a value given for the input, to the input's type: a
// string is parsed (a number, true or false, JSON text); other values
// must have the type already.
func (in Input) Parse(v any) (any, error) {
	s, isText := v.(string)
	switch in.Type {
	case "", TypeString:
		if !isText && v != nil {
			return nil, fmt.Errorf("want a string, got %T", v)
		}
		return v, nil
	case TypeNumber:
		if !isText {
			if _, ok := v.(float64); ok {
				return v, nil
			}
			if i, ok := v.(int); ok {
				return float64(i), nil
			}
			return nil, fmt.Errorf("want a number, got %T", v)
		}
		f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
		if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
			return nil, fmt.Errorf("%s is not a number", in.shown(s))
		}
		return f, nil
	case TypeBoolean:
		if !isText {
			if _, ok := v.(bool); ok {
				return v, nil
			}
			return nil, fmt.Errorf("want true or false, got %T", v)
		}
		switch strings.TrimSpace(s) {
		case "true":
			return true, nil
		case "false":
			return false, nil
		}
		return nil, fmt.Errorf("%s is not true or false", in.shown(s))
	case TypeJSON:
		if !isText {
			return v, nil
		}
		var out any
		if err := json.Unmarshal([]byte(s), &out); err != nil {
			if in.Secret { // the decoder's message quotes the text
				return nil, errors.New("not JSON (the value is secret: not shown)")
			}
			return nil, fmt.Errorf("not JSON: %v", err)
		}
		return out, nil
	}
	return nil, fmt.Errorf("unknown type %q", in.Type)
}

// shown is a value given for the input as an error quotes it: shortened,
// or not at all for a secret input.
func (in Input) shown(s string) string {
	if in.Secret {
		return "the value (secret: not shown)"
	}
	return strconv.Quote(truncate(s))
}

// truncate shortens a value quoted in an error: it may be long (a file).
func truncate(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}

func quoteAll(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = strconv.Quote(n)
	}
	return strings.Join(q, ", ")
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// InputNames returns the names of the package's inputs, sorted.
func (p *Package) InputNames() []string {
	names := make([]string, 0, len(p.Manifest.Inputs))
	for n := range p.Manifest.Inputs {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Secrets returns the values of the inputs marked secret, for redaction.
func (p *Package) Secrets(inputs map[string]any) []string {
	var out []string
	for name, in := range p.Manifest.Inputs {
		if !in.Secret {
			continue
		}
		switch v := inputs[name].(type) {
		case string:
			if v != "" {
				out = append(out, v)
			}
		case float64:
			out = append(out, strconv.FormatFloat(v, 'f', -1, 64))
		case nil:
		default:
			if b, err := json.Marshal(v); err == nil {
				out = append(out, string(b))
			}
		}
	}
	return out
}
