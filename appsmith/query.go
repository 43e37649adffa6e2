// REST actions become query modules: URL, headers, params, body,
// timeout, and hard-coded credentials turned into secret inputs.

package appsmith

import (
	"encoding/json"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// baseURL returns the input that holds an action's datasource URL, adding
// it on first use.
func (im *importer) baseURL(name string, d *actionDTO) (string, bool) {
	ds := d.Datasource
	if ds == nil {
		im.note("%s.datasource: none; the URL is only the path", name)
		return "", false
	}
	cfg := ds.DatasourceConfiguration
	if shared, ok := im.datasources[ds.Name]; ok && (cfg == nil || cfg.URL == "") {
		cfg = shared.DatasourceConfiguration
		if cfg == nil {
			for _, st := range shared.DatasourceStorages {
				if st.DatasourceConfiguration != nil {
					cfg = st.DatasourceConfiguration
					break
				}
			}
		}
	}
	u := ""
	if cfg != nil {
		u = strings.TrimRight(cfg.URL, "/")
	}
	var in string
	switch {
	case ds.Name != "" && ds.Name != "DEFAULT_REST_DATASOURCE":
		in = camel(ds.Name) + "Url"
	default:
		in = hostInput(u)
	}
	if prev, ok := im.inputs[in]; ok && prev.def != u {
		// Two datasources, one name: keep them apart.
		for i := 2; ; i++ {
			if p, ok := im.inputs[in+strconv.Itoa(i)]; !ok || p.def == u {
				in += strconv.Itoa(i)
				break
			}
		}
	}
	desc := "the URL of the datasource " + orUnknown(ds.Name)
	if u == "" {
		desc += " (empty in the export: set it)"
		im.note("%s.datasource.url: empty in the export; give --input %s=URL", name, in)
	}
	im.addInput(in, input{def: u, desc: desc})
	return in, true
}

// api writes one REST action as NAME.query.yaml.
func (im *importer) api(a *action) {
	d := a.dto()
	name := im.names[d.Name]
	cfg := d.Config
	if cfg == nil {
		cfg = &actionConfig{}
	}
	doc := newMap()
	method := strings.ToUpper(cfg.HTTPMethod)
	if method == "" {
		method = "GET"
	}
	switch method {
	case "GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS":
	default:
		im.note("%s.httpMethod: %s is not supported; GET is used", d.Name, method)
		method = "GET"
	}
	put(doc, "method", scalar(method))
	path := im.bindings(d.Name+".path", cfg.Path)
	u := path
	if in, ok := im.baseURL(d.Name, d); ok {
		if path != "" && !strings.HasPrefix(path, "/") && !strings.HasPrefix(path, "?") {
			path = "/" + path
		}
		u = "{{inputs." + in + "}}" + path
	}
	if u == "" {
		im.note("%s.url: neither a datasource URL nor a path", d.Name)
		u = "http://127.0.0.1/"
	}
	put(doc, "url", scalar(u))
	ctype, headers := im.headers(d.Name, cfg.Headers)
	if headers != nil {
		put(doc, "headers", headers)
	}
	if q := im.fields(d.Name+".queryParameters", cfg.QueryParameters); q != nil {
		put(doc, "query", q)
	}
	if body := im.body(d, cfg, method, ctype); body != nil {
		put(doc, "body", body)
	}
	if t := timeout(cfg.Timeout); t != "" {
		put(doc, "timeout", scalar(t))
	}
	if cfg.EncodeParams != nil && !*cfg.EncodeParams {
		im.note("%s.encodeParamsToggle: off in Appsmith; modrun always encodes query and path values", d.Name)
	}
	for _, t := range cfg.PluginTemplates {
		if b, ok := t.Value.(bool); ok && !b {
			im.note("%s.pluginSpecifiedTemplates: smart JSON substitution is off in Appsmith; modrun always substitutes by position", d.Name)
		}
	}
	if cfg.PaginationType != "" && cfg.PaginationType != "NONE" {
		im.note("%s.paginationType: %s pagination is not carried over; page with request() and its responseMeta", d.Name, cfg.PaginationType)
	}
	if d.onLoad() {
		im.note("%s.executeOnLoad: ran on page load in Appsmith; call it from a JS function listed in onLoad", d.Name)
	}
	im.res.Files[name+".query.yaml"] = marshal(doc)
	im.res.Queries++
}

// timeout converts timeoutInMillisecond (a number or a string).
func timeout(raw json.RawMessage) string {
	s := strings.Trim(string(raw), `"`)
	ms, err := strconv.Atoi(s)
	if err != nil || ms <= 0 {
		return ""
	}
	if ms%1000 == 0 {
		return strconv.Itoa(ms/1000) + "s"
	}
	return strconv.Itoa(ms) + "ms"
}

// headers returns the Content-Type among the rows (lower-cased) and the
// headers mapping, empty rows dropped.
func (im *importer) headers(action string, rows []property) (string, *yaml.Node) {
	ctype := ""
	for _, p := range rows {
		if strings.EqualFold(strings.TrimSpace(p.Key), "Content-Type") {
			ctype = strings.ToLower(text(p.Value))
		}
	}
	return ctype, im.mapping(action+".headers", rows, strings.ToLower)
}

// fields is a mapping of rows (query parameters, form fields).
func (im *importer) fields(where string, rows []property) *yaml.Node {
	return im.mapping(where, rows, func(k string) string { return k })
}

// mapping turns {key, value} rows into a mapping of bound values: empty
// rows dropped, a nameless or repeated one (names compared after fold)
// noted and dropped. nil for none.
func (im *importer) mapping(where string, rows []property, fold func(string) string) *yaml.Node {
	m := newMap()
	seen := map[string]bool{}
	for _, p := range rows {
		k := strings.TrimSpace(p.Key)
		v := text(p.Value)
		switch {
		case k == "" && v == "":
			continue
		case k == "":
			im.note("%s: a row without a name (value dropped)", where)
			continue
		case seen[fold(k)]:
			im.note("%s.%s: given twice; the first is kept", where, k)
			continue
		}
		if p.Type == "FILE" || p.Type == "ARRAY" {
			im.note("%s.%s: a %s field is sent as text", where, k, strings.ToLower(p.Type))
		}
		seen[fold(k)] = true
		if credentialField(k) && !strings.Contains(v, "{{") {
			// A credential typed into the action: the package must not
			// carry it (DESIGN §19). It becomes a secret input with no
			// default, given at run time.
			in := im.addInput(identifier(strings.ReplaceAll(where, ".", "_")+"_"+k), input{secret: true, desc: "was hard-coded in the Appsmith action (" + where + "." + k + ")"})
			im.note("%s.%s: a hard-coded credential; now the secret input %s (give it with --input %s=…); the value is not in the package", where, k, in, in)
			put(m, k, scalar("{{inputs."+in+"}}"))
			continue
		}
		put(m, k, scalar(im.bindings(where+"."+k, v)))
	}
	if len(m.Content) == 0 {
		return nil
	}
	return m
}

// credentialField reports whether a header, query or form field of that
// name carries a credential.
func credentialField(name string) bool {
	n := strings.ToLower(name)
	switch n {
	case "authorization", "proxy-authorization", "cookie":
		return true
	}
	for _, w := range []string{"token", "secret", "password", "passwd", "apikey", "api-key", "api_key", "access-key", "access_key", "client_secret"} {
		if strings.Contains(n, w) {
			return true
		}
	}
	return strings.HasSuffix(n, "-key") || strings.HasSuffix(n, "_key") || n == "key"
}

// body maps an action's body by its content type.
func (im *importer) body(d *actionDTO, cfg *actionConfig, method, headerType string) *yaml.Node {
	ctype := headerType
	if v, ok := cfg.FormData["apiContentType"].(string); ok && v != "" && v != "none" {
		ctype = strings.ToLower(v)
	}
	body := strings.TrimSpace(cfg.Body)
	switch {
	case strings.HasPrefix(ctype, "application/x-www-form-urlencoded"):
		if f := im.fields(d.Name+".bodyFormData", cfg.BodyFormData); f != nil {
			return mapOf("form", f)
		}
	case strings.HasPrefix(ctype, "multipart/form-data"):
		if f := im.fields(d.Name+".bodyFormData", cfg.BodyFormData); f != nil {
			return mapOf("multipart", f)
		}
	case body == "":
	case ctype == "" || strings.HasPrefix(ctype, "application/json") || strings.HasSuffix(ctype, "+json"):
		if method == "GET" && ctype == "" {
			im.note("%s.body: a GET with a body and no content type; the body is dropped", d.Name)
			return nil
		}
		return mapOf("json", scalar(im.bindings(d.Name+".body", cfg.Body)))
	default:
		raw := newMap()
		put(raw, "raw", scalar(im.bindings(d.Name+".body", cfg.Body)))
		if ctype == "raw" || ctype == "text" {
			// Appsmith's "raw" sends the Content-Type header's type.
			ctype = headerType
			if ctype == "" {
				ctype = "text/plain"
			}
		}
		put(raw, "contentType", scalar(ctype))
		return raw
	}
	return nil
}

// text is a row's value as text.
func text(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case bool:
		return strconv.FormatBool(x)
	}
	b, _ := json.Marshal(v)
	return string(b)
}
