// Names: Appsmith's action, JS object, package and input names made
// into modrun identifiers, with reserved words and clashes avoided.

package appsmith

import (
	"net/url"
	"strconv"
	"strings"
	"unicode"
)

// collectionName is the collection's name from a collectionId such as
// "Page1_JSObject1" (newer) or the name itself (older).
func collectionName(id string) string {
	if i := strings.LastIndexByte(id, '_'); i >= 0 && i+1 < len(id) && strings.HasPrefix(id, "Page") {
		return id[i+1:]
	}
	return id
}

func orUnknown(s string) string {
	if s == "" {
		return "(unknown)"
	}
	return s
}

// reserved are names a module may not take: modrun's roots and globals,
// and JS words.
var reserved = func() map[string]bool {
	m := map[string]bool{"appsmith": true, "inputs": true, "params": true, "this": true}
	for _, g := range globals {
		m[g] = true
	}
	for _, w := range strings.Fields("break case catch class const continue debugger default delete do else export extends false finally for function if import in instanceof new null return super switch throw true try typeof var void while with yield let static enum await implements package protected interface private public undefined NaN Infinity") {
		m[w] = true
	}
	return m
}()

// moduleName gives an Appsmith name its module name: an identifier, not
// reserved, not taken. Renames are noted.
func (im *importer) moduleName(name string) string {
	if n, ok := im.names[name]; ok {
		return n
	}
	n := identifier(name)
	if reserved[n] || builtins()[n] {
		n += "_"
	}
	base := n
	for i := 2; im.used[n]; i++ {
		n = base + strconv.Itoa(i)
	}
	im.used[n] = true
	im.names[name] = n
	if n != name {
		im.note("%s: renamed to %s (a module's name is a JS identifier, unique, not a modrun or JS name)", name, n)
	}
	return n
}

// identifier makes s a JS identifier: other characters become _, a
// leading digit gets a _ before it.
func identifier(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r == '_' || r == '$' || r < unicode.MaxASCII && (unicode.IsLetter(r) || unicode.IsDigit(r)) {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	out := b.String()
	if out == "" || (out[0] >= '0' && out[0] <= '9') {
		out = "_" + out
	}
	if len(out) > 64 {
		out = out[:64]
	}
	return out
}

// packageName makes a package name of s: [a-z0-9][a-z0-9-]*.
func packageName(s string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(s) {
		if r < unicode.MaxASCII && (unicode.IsLetter(r) || unicode.IsDigit(r)) {
			b.WriteRune(r)
			dash = false
		} else if !dash && b.Len() > 0 {
			b.WriteByte('-')
			dash = true
		}
	}
	out := strings.Trim(b.String(), "-")
	if len(out) > 100 {
		out = strings.Trim(out[:100], "-")
	}
	if out == "" {
		out = "imported"
	}
	return out
}

// camel makes words an identifier in camelCase: "Users API" → usersApi,
// "api.github.com" → apiGithubCom.
func camel(words string) string {
	parts := strings.FieldsFunc(words, func(r rune) bool {
		return !(r < unicode.MaxASCII && (unicode.IsLetter(r) || unicode.IsDigit(r)))
	})
	var b strings.Builder
	for i, p := range parts {
		p = strings.ToLower(p)
		if i > 0 {
			p = strings.ToUpper(p[:1]) + p[1:]
		}
		b.WriteString(p)
	}
	return identifier(b.String())
}

// hostInput names the input of an embedded datasource after its host:
// https://api.github.com → apiGithubComUrl.
func hostInput(u string) string {
	host := ""
	if pu, err := url.Parse(u); err == nil {
		host = pu.Hostname()
	}
	if host == "" {
		return "baseUrl"
	}
	return camel(host) + "Url"
}
