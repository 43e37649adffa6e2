package etcdstore

import (
	"strings"
	"testing"
)

func TestParseURL(t *testing.T) {
	t.Setenv("MODRUN_ETCD_PASSWORD", "")
	c, err := ParseURL("etcds://svc:p%40ss@10.0.0.1:2379,10.0.0.2:2379/modrun/prod/")
	if err != nil {
		t.Fatal(err)
	}
	if !c.TLS || c.Username != "svc" || c.Password != "p@ss" || c.Prefix != "/modrun/prod" ||
		strings.Join(c.Endpoints, " ") != "10.0.0.1:2379 10.0.0.2:2379" {
		t.Fatalf("%+v", c)
	}
	if s := c.String(); strings.Contains(s, "p@ss") || s != "etcds://svc@10.0.0.1:2379,10.0.0.2:2379/modrun/prod" {
		t.Fatalf("String = %s", s)
	}
	if c, _ := ParseURL("etcd://h:1"); c.Prefix != "/" {
		t.Fatalf("no prefix: %q", c.Prefix)
	}
	t.Setenv("MODRUN_ETCD_PASSWORD", "fromenv")
	if c, _ := ParseURL("etcd://u@h:1/p"); c.Password != "fromenv" {
		t.Fatal("$MODRUN_ETCD_PASSWORD not read")
	}
}

func FuzzParseURL(f *testing.F) {
	for _, s := range []string{"etcd://h:1/p", "etcds://u:pw@a:1,b:2/x/y", "etcd://", "etcd://@:/", "etcd://[::1]:2379/p"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseURL(s)
		if err != nil {
			// A short password may be a word of the message ("a" of
			// "want"): the same URL with a password no message holds
			// must fail without showing it.
			if marked, ok := withPassword(s, "Zq9xMarkedPassword"); ok {
				if _, err := ParseURL(marked); err != nil && strings.Contains(err.Error(), "Zq9xMarkedPassword") {
					t.Fatalf("error %q shows the password", err)
				}
			}
			return
		}
		if len(c.Endpoints) == 0 || !strings.HasPrefix(c.Prefix, "/") {
			t.Fatalf("%q parsed to %+v", s, c)
		}
		if c.Password != "" && len(c.Password) > 3 && strings.Contains(c.String(), c.Password) && !strings.Contains(strings.Join(c.Endpoints, ",")+c.Prefix+c.Username, c.Password) {
			t.Fatalf("String() %q shows the password", c.String())
		}
	})
}

// withPassword is URL s with its password (as ParseURL reads it: the user
// information ends at the last "@") replaced by pw; false if s has none.
func withPassword(s, pw string) (string, bool) {
	scheme, rest, ok := strings.Cut(s, "://")
	at := strings.LastIndex(rest, "@")
	if !ok || at < 0 {
		return s, false
	}
	user, _, hasPass := strings.Cut(rest[:at], ":")
	if !hasPass {
		return s, false
	}
	return scheme + "://" + user + ":" + pw + "@" + rest[at+1:], true
}
