// A manifest's oauth2: credentials and schedules: parsed, checked, their bindings compiled.

package packages

import (
	"encoding/json"
	"fmt"
	"net/url"
	"time"

	"github.com/robfig/cron/v3"
	"go.yaml.in/yaml/v3"

	"github.com/modrun/modrun/binding"
	"github.com/modrun/modrun/engine"
	"github.com/modrun/modrun/internal/cronexpr"
)

type oauth2File struct {
	Grant                string            `yaml:"grant"`
	TokenURL             string            `yaml:"tokenUrl"`
	AuthorizeURL         string            `yaml:"authorizeUrl"`
	RedirectURL          string            `yaml:"redirectUrl"`
	ClientID             string            `yaml:"clientId"`
	ClientSecret         string            `yaml:"clientSecret"`
	ClientAuth           string            `yaml:"clientAuth"`
	Username             string            `yaml:"username"`
	Password             string            `yaml:"password"`
	Scopes               []string          `yaml:"scopes"`
	Params               map[string]string `yaml:"params"`
	RefreshMargin        string            `yaml:"refreshMargin"`
	Hosts                []string          `yaml:"hosts"`
	ExpiresIn            string            `yaml:"expiresIn"`
	RefreshTokenLifetime string            `yaml:"refreshTokenLifetime"`
	ExpiryStatus         []int             `yaml:"expiryStatus"`
	KeepFresh            *bool             `yaml:"keepFresh"`
	ExpiryMatch          *struct {
		Path   string `yaml:"path"`
		Equals string `yaml:"equals"`
	} `yaml:"expiryMatch"`
}

type scheduleFile struct {
	Every string      `yaml:"every"`
	Cron  string      `yaml:"cron"`
	Run   string      `yaml:"run"`
	Args  []yaml.Node `yaml:"args"`
}

// credentialTemplates are the oauth2: fields that may hold bindings.
var credentialTemplates = map[string]bool{"tokenUrl": true, "authorizeUrl": true, "redirectUrl": true, "clientId": true,
	"clientSecret": true, "username": true, "password": true, "scopes": true, "params": true}

// checkCredentialBindings compiles credential name's bindings where they
// stand in package.yaml (DESIGN §17): a syntax error, or inputs.X for an
// input the package does not declare, fails load, validate and publish
// with its line, whether or not a query uses the credential.
func checkCredentialBindings(name string, node *yaml.Node, inputs map[string]engine.Input) []error {
	if node.Kind != yaml.MappingNode {
		return nil
	}
	var errs []error
	check := func(field string, v *yaml.Node) {
		if v.Kind != yaml.ScalarNode {
			return
		}
		pos := binding.Pos{File: ManifestFile, Line: v.Line, Col: v.Column, Quoted: v.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle) != 0}
		t, err := binding.Parse(v.Value, pos, binding.Names{AnyModule: true})
		if err != nil {
			errs = append(errs, fmt.Errorf("oauth2 %s.%s: %w", name, field, err))
			return
		}
		for _, p := range t.Parts {
			if p.Expr == nil {
				continue
			}
			if root, keys, ok := p.Expr.Path(); ok && root == "inputs" && len(keys) > 0 {
				if _, ok := inputs[keys[0]]; !ok {
					errs = append(errs, engine.Errorf(p.Expr.File, p.Expr.Line, p.Expr.Col,
						"oauth2 %s.%s: binding %q: package has no input %q (declare it under inputs:)", name, field, p.Expr.Src, keys[0]))
				}
			}
		}
	}
	for i := 0; i+1 < len(node.Content); i += 2 {
		field, v := node.Content[i].Value, node.Content[i+1]
		if !credentialTemplates[field] {
			continue
		}
		switch v.Kind {
		case yaml.SequenceNode:
			for _, item := range v.Content {
				check(field, item)
			}
		case yaml.MappingNode:
			for j := 0; j+1 < len(v.Content); j += 2 {
				check(field+"."+v.Content[j].Value, v.Content[j+1])
			}
		default:
			check(field, v)
		}
	}
	return errs
}

// DefaultRefreshMargin is how long before expiry a token is refreshed.
const DefaultRefreshMargin = 30 * time.Second

func parseCredential(f oauth2File) (engine.Credential, error) {
	c := engine.Credential{Grant: f.Grant, TokenURL: f.TokenURL, AuthorizeURL: f.AuthorizeURL, RedirectURL: f.RedirectURL,
		ClientID: f.ClientID, ClientSecret: f.ClientSecret, ClientAuth: f.ClientAuth, Username: f.Username, Password: f.Password,
		Scopes: f.Scopes, Params: f.Params, RefreshMargin: DefaultRefreshMargin, Hosts: f.Hosts,
		NoKeepFresh: f.KeepFresh != nil && !*f.KeepFresh}
	for _, h := range f.Hosts {
		if err := engine.CheckHostPattern(h); err != nil {
			return c, err
		}
	}
	switch f.Grant {
	case engine.GrantClientCredentials, engine.GrantRefreshToken, engine.GrantAuthorizationCode, engine.GrantPassword:
	case "":
		return c, fmt.Errorf("grant is required: client_credentials, refresh_token, authorization_code or password")
	default:
		return c, fmt.Errorf("grant %q: want client_credentials, refresh_token, authorization_code or password", f.Grant)
	}
	if f.TokenURL == "" {
		return c, fmt.Errorf("tokenUrl is required")
	}
	switch f.ClientAuth {
	case "":
		c.ClientAuth = "basic"
	case "basic", "body":
	default:
		return c, fmt.Errorf("clientAuth %q: want basic or body (never both)", f.ClientAuth)
	}
	if f.ExpiresIn != "" {
		d, err := time.ParseDuration(f.ExpiresIn)
		if err != nil || d <= 0 {
			return c, fmt.Errorf("expiresIn %q: want a duration such as 1h", f.ExpiresIn)
		}
		c.ExpiresIn = d
	}
	if f.RefreshTokenLifetime != "" {
		d, err := time.ParseDuration(f.RefreshTokenLifetime)
		if err != nil || d < time.Second {
			return c, fmt.Errorf("refreshTokenLifetime %q: want a duration of at least 1s, such as 720h", f.RefreshTokenLifetime)
		}
		c.RefreshTokenLifetime = d
	}
	for _, st := range f.ExpiryStatus {
		if st < 400 || st > 599 {
			return c, fmt.Errorf("expiryStatus %d: want HTTP error statuses such as 401 or 403", st)
		}
	}
	c.ExpiryStatus = f.ExpiryStatus
	if m := f.ExpiryMatch; m != nil {
		if m.Path == "" || m.Equals == "" {
			return c, fmt.Errorf("expiryMatch needs path (a gjson path into the response body) and equals")
		}
		c.ExpiryMatch = &engine.ExpiryMatch{Path: m.Path, Equals: m.Equals}
	}
	if f.RefreshMargin != "" {
		d, err := time.ParseDuration(f.RefreshMargin)
		if err != nil || d < 0 {
			return c, fmt.Errorf("refreshMargin %q: want a duration such as 30s", f.RefreshMargin)
		}
		c.RefreshMargin = d
	}
	if f.Grant == engine.GrantPassword && (f.Username == "" || f.Password == "") {
		return c, fmt.Errorf("the password grant needs username and password")
	}
	if f.Grant == engine.GrantAuthorizationCode {
		if f.AuthorizeURL == "" || f.RedirectURL == "" {
			return c, fmt.Errorf("the authorization_code grant needs authorizeUrl and redirectUrl")
		}
		if err := checkLoopback(f.RedirectURL); err != nil {
			return c, err
		}
	} else if f.AuthorizeURL != "" || f.RedirectURL != "" {
		return c, fmt.Errorf("authorizeUrl and redirectUrl go with the authorization_code grant")
	}
	return c, nil
}

// checkLoopback accepts only an http redirect URL on a loopback host
// (RFC 8252 §7.3): runner login listens there.
func checkLoopback(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "http" || u.Port() == "" {
		return fmt.Errorf("redirectUrl %q: want http://127.0.0.1:PORT/PATH (a loopback address with a port)", raw)
	}
	switch u.Hostname() {
	case "127.0.0.1", "localhost", "::1":
		return nil
	}
	return fmt.Errorf("redirectUrl %q: only a loopback host (127.0.0.1, localhost, [::1]) may receive the code", raw)
}

// ParseCron checks a schedule's cron expression (internal/cronexpr).
func ParseCron(expr string) (cron.Schedule, error) { return cronexpr.Parse(expr) }

// MinEvery is the shortest interval of an every: schedule.
const MinEvery = time.Second

func parseSchedule(sf scheduleFile) (engine.Schedule, error) {
	sc := engine.Schedule{Cron: sf.Cron, Run: sf.Run}
	switch {
	case sf.Every != "" && sf.Cron != "":
		return sc, fmt.Errorf("give every or cron, not both")
	case sf.Every != "":
		d, err := time.ParseDuration(sf.Every)
		if err != nil || d < MinEvery {
			return sc, fmt.Errorf("every %q: want a duration of at least 1s, such as 10m", sf.Every)
		}
		sc.Every = d
	case sf.Cron != "":
		if _, err := ParseCron(sf.Cron); err != nil {
			return sc, fmt.Errorf("cron %q: %v (five fields: minute hour day month weekday, or @hourly…)", sf.Cron, err)
		}
	default:
		return sc, fmt.Errorf("give every (a duration) or cron (an expression)")
	}
	if tg, err := engine.ParseTarget(sf.Run); err != nil || tg.Function == "" {
		return sc, fmt.Errorf("run %q: want MODULE.FUNCTION", sf.Run)
	}
	for i := range sf.Args {
		var v any
		if err := sf.Args[i].Decode(&v); err != nil {
			return sc, fmt.Errorf("args[%d]: %v", i, err)
		}
		raw, err := json.Marshal(v)
		if err != nil {
			return sc, fmt.Errorf("args[%d]: not JSON: %v", i, err)
		}
		sc.Args = append(sc.Args, raw)
	}
	return sc, nil
}
