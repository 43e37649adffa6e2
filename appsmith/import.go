package appsmith

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"unicode"

	"go.yaml.in/yaml/v3"

	"github.com/modrun/modrun/engine"
)

// MaxExport is the largest export Import reads.
const MaxExport = 64 << 20

// Options configure Import. The zero value works.
type Options struct {
	// Name is the package's name; empty means the application's, made a
	// valid package name.
	Name string
	// Page limits the import to the actions and JS objects of one page;
	// empty means every page.
	Page string
}

// Result is an imported package.
type Result struct {
	Name      string            // the package's name
	Dir       string            // ImportPages: the page's subdirectory ("" for the only package)
	Page      string            // ImportPages: the page it holds ("" for the only package)
	Files     map[string][]byte // package.yaml, NAME.query.yaml, NAME.js, README.md
	Notes     []string          // what needs attention: "ACTION.FIELD: reason", sorted
	Queries   int               // query modules written
	JSModules int               // JS modules written
}

// Pages lists the pages that hold the export's live actions and JS
// objects, in the order they first appear.
func Pages(data []byte) ([]string, error) {
	ex, err := decode(data)
	if err != nil {
		return nil, err
	}
	var pages []string
	seen := map[string]bool{}
	add := func(p string) {
		if !seen[p] {
			seen[p] = true
			pages = append(pages, p)
		}
	}
	for i := range ex.ActionList {
		a := &ex.ActionList[i]
		if d := a.dto(); d != nil && d.Name != "" && !a.Deleted && a.DeletedAt == "" && d.DeletedAt == "" {
			add(d.PageID)
		}
	}
	for i := range ex.ActionCollectionList {
		c := &ex.ActionCollectionList[i]
		if d := c.dto(); d != nil && d.Name != "" && !c.Deleted && c.DeletedAt == "" && d.DeletedAt == "" {
			add(d.PageID)
		}
	}
	return pages, nil
}

// ImportPages imports an app as DESIGN §19 says: pages are namespaces, so
// an app whose actions and JS objects are on several pages becomes one
// package per page (Result.Dir is the page's slug, its name NAME-SLUG);
// one page (or opts.Page) gives one package (Dir ""). The same name on
// two pages never collides.
func ImportPages(data []byte, opts Options) ([]*Result, error) {
	pages, err := Pages(data)
	if err != nil {
		return nil, err
	}
	if opts.Page != "" || len(pages) <= 1 {
		res, err := Import(data, opts)
		if err != nil {
			return nil, err
		}
		return []*Result{res}, nil
	}
	base := opts.Name
	if base == "" {
		ex, _ := decode(data) // Pages decoded it
		app := ""
		if ex.ExportedApplication != nil {
			app = ex.ExportedApplication.Name
		}
		base = packageName(app)
	}
	var out []*Result
	slugs := map[string]bool{}
	for _, p := range pages {
		slug := packageName(p)
		for i := 2; slugs[slug]; i++ {
			slug = packageName(p) + "-" + strconv.Itoa(i)
		}
		slugs[slug] = true
		o := opts
		o.Page, o.Name = p, base+"-"+slug
		res, err := Import(data, o)
		if err != nil {
			return nil, err
		}
		res.Dir, res.Page = slug, p
		out = append(out, res)
	}
	return out, nil
}

// ErrNotExport is returned for a file that is not an Appsmith export.
var ErrNotExport = errors.New("not an Appsmith application export")

// Import turns an Appsmith export into a modrun package's files. It
// executes nothing from the export.
func Import(data []byte, opts Options) (*Result, error) {
	ex, err := decode(data)
	if err != nil {
		return nil, err
	}
	im := &importer{ex: ex, opts: opts, res: &Result{Files: map[string][]byte{}},
		inputs: map[string]input{}, names: map[string]string{}, used: map[string]bool{}, datasources: map[string]datasource{}}
	im.run()
	return im.res, nil
}

func decode(data []byte) (*export, error) {
	if len(data) > MaxExport {
		return nil, fmt.Errorf("%w: the file is %d bytes, more than %d", ErrNotExport, len(data), MaxExport)
	}
	var ex export
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&ex); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotExport, err)
	}
	if ex.ExportedApplication == nil && len(ex.ActionList) == 0 && len(ex.ActionCollectionList) == 0 {
		return nil, fmt.Errorf("%w: it has no exportedApplication, actionList or actionCollectionList", ErrNotExport)
	}
	return &ex, nil
}

type importer struct {
	ex   *export
	opts Options
	res  *Result

	datasources map[string]datasource // shared ones, by name
	inputs      map[string]input      // package inputs by name
	inputOrder  []string
	names       map[string]string // Appsmith name → module name
	used        map[string]bool   // module names taken
	onLoad      []string
	apis        []*action
	colls       []*collection
	jsActions   map[string][]*actionDTO // collection name → its function actions
	stubs       []stub                  // actions of plugins modrun does not run
}

// stub is an action of another plugin (a database, a SaaS): written as a
// module with its name, so that code calling it loads, and failing when run.
type stub struct{ name, plugin string }

// stub writes st's module: run() and request() reject with why.
func (im *importer) stub(st stub) {
	name := im.names[st.name]
	why := strconv.Quote(fmt.Sprintf("%s: a %s action; modrun runs REST and GraphQL only", st.name, st.plugin))
	im.res.Files[name+".js"] = []byte(fmt.Sprintf(`// %s: a %s action in Appsmith. modrun runs REST and GraphQL actions only:
// this stub lets code that calls it load; calling it fails.
export default {
	data: undefined,
	async run() { throw new Error(%s) },
	async request() { throw new Error(%s) },
	clear() {},
};
`, st.name, st.plugin, why, why))
	im.res.JSModules++
	im.note("%s: a %s action: a stub module that fails when run (modrun runs REST and GraphQL only)", st.name, st.plugin)
}

type input struct {
	def, desc string
	secret    bool
	json      bool // type: json, default def as JSON ({} or "")
}

func (im *importer) note(format string, args ...any) {
	im.res.Notes = append(im.res.Notes, fmt.Sprintf(format, args...))
}

func (im *importer) addInput(name string, in input) string {
	if _, ok := im.inputs[name]; !ok {
		im.inputOrder = append(im.inputOrder, name)
	}
	im.inputs[name] = in
	return name
}

func (im *importer) run() {
	ex := im.ex
	for _, ds := range ex.DatasourceList {
		im.datasources[ds.Name] = ds
	}
	pageName := func(id string) string { return id }
	im.jsActions = map[string][]*actionDTO{}
	// Which actions and collections: REST APIs, JS objects; the rest is
	// listed.
	for i := range ex.ActionList {
		a := &ex.ActionList[i]
		d := a.dto()
		if d == nil || d.Name == "" {
			im.note("actionList[%d]: skipped: no name", i)
			continue
		}
		if im.opts.Page != "" && pageName(d.PageID) != im.opts.Page {
			continue
		}
		if a.Deleted || a.DeletedAt != "" || d.DeletedAt != "" {
			im.note("%s: skipped: deleted in the editor", d.Name)
			continue
		}
		switch pt := a.pluginType(); {
		case pt == "JS":
			coll := d.CollectionID
			if fq, _, ok := strings.Cut(d.FullyQualified, "."); ok {
				coll = fq
			}
			im.jsActions[collectionName(coll)] = append(im.jsActions[collectionName(coll)], d)
		case pt == "API" || a.pluginID() == "restapi-plugin":
			im.apis = append(im.apis, a)
		default:
			plugin := a.pluginID()
			if plugin == "" {
				plugin = strings.ToLower(pt)
			}
			im.stubs = append(im.stubs, stub{d.Name, orUnknown(plugin)})
		}
	}
	for i := range ex.ActionCollectionList {
		c := &ex.ActionCollectionList[i]
		d := c.dto()
		if d == nil || d.Name == "" {
			im.note("actionCollectionList[%d]: skipped: no name", i)
			continue
		}
		if im.opts.Page != "" && d.PageID != im.opts.Page {
			continue
		}
		if c.Deleted || c.DeletedAt != "" || d.DeletedAt != "" {
			im.note("%s: skipped: deleted in the editor", d.Name)
			continue
		}
		im.colls = append(im.colls, c)
	}
	// Module names first: bindings and JS refer to them.
	for _, a := range im.apis {
		im.moduleName(a.dto().Name)
	}
	for _, c := range im.colls {
		im.moduleName(c.dto().Name)
	}
	for _, st := range im.stubs {
		im.moduleName(st.name)
	}
	for _, a := range im.apis {
		im.api(a)
	}
	for _, st := range im.stubs {
		im.stub(st)
	}
	for _, c := range im.colls {
		im.collection(c)
	}
	for _, lib := range ex.CustomJSLibList {
		name := lib.Name
		if name == "" && len(lib.Accessor) > 0 {
			name = strings.Join(lib.Accessor, ", ")
		}
		im.note("custom JS library %s (%s): not loaded headless; modrun provides lodash (_) and moment only, so code using it fails where it does", orUnknown(name), orUnknown(lib.URL))
	}
	im.manifest()
	// One note per thing: a name used twice in a body is noted once.
	sort.Strings(im.res.Notes)
	im.res.Notes = slices.Compact(im.res.Notes)
	im.readme()
}

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

// collection writes one JS object as NAME.js, and records its functions
// that run on page load.
func (im *importer) collection(c *collection) {
	d := c.dto()
	name := im.names[d.Name]
	body := d.Body
	if !strings.Contains(body, "export default") {
		im.note("%s.body: no export default; an empty module is written", d.Name)
		body = "export default {\n};\n"
	}
	body = im.script(d.Name+".body", body)
	im.res.Files[name+".js"] = []byte(strings.TrimRight(body, "\n") + "\n")
	im.res.JSModules++
	fns := im.jsActions[d.Name]
	sort.Slice(fns, func(i, j int) bool { return fns[i].Name < fns[j].Name })
	for _, fn := range fns {
		if fn.RunBehaviour == "ON_PAGE_UNLOAD" {
			im.note("%s.%s: ran when the page unloaded in Appsmith; headless there is no page: call it yourself if it matters", d.Name, fn.Name)
		}
		if fn.onLoad() {
			if !engine.IsIdentifier(fn.Name) {
				im.note("%s.%s: runs on page load, but its name is no identifier; not in onLoad", d.Name, fn.Name)
				continue
			}
			im.onLoad = append(im.onLoad, name+"."+fn.Name)
		}
	}
}

// manifest writes package.yaml.
func (im *importer) manifest() {
	name := im.opts.Name
	app := ""
	if im.ex.ExportedApplication != nil {
		app = im.ex.ExportedApplication.Name
	}
	if name == "" {
		name = packageName(app)
	}
	im.res.Name = name
	doc := newMap()
	put(doc, "name", scalar(name))
	put(doc, "version", scalar("0.1.0"))
	desc := "Imported from the Appsmith application " + orUnknown(app)
	if im.opts.Page != "" {
		desc += ", page " + im.opts.Page
	}
	put(doc, "description", scalar(desc))
	if len(im.inputOrder) > 0 {
		ins := newMap()
		for _, n := range im.inputOrder {
			in := im.inputs[n]
			m := newMap()
			m.Style = yaml.FlowStyle
			switch {
			case in.secret:
				put(m, "secret", &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!bool", Value: "true"})
			case in.json:
				put(m, "type", scalar("json"))
				put(m, "default", &yaml.Node{Kind: yaml.MappingNode, Style: yaml.FlowStyle})
			default:
				put(m, "default", quoted(in.def))
			}
			put(m, "description", quoted(in.desc))
			put(ins, n, m)
		}
		put(doc, "inputs", ins)
	}
	if len(im.onLoad) > 0 {
		seq := &yaml.Node{Kind: yaml.SequenceNode, Style: yaml.FlowStyle}
		for _, t := range im.onLoad {
			seq.Content = append(seq.Content, scalar(t))
		}
		put(doc, "onLoad", seq)
	}
	im.res.Files["package.yaml"] = marshal(doc)
}

// readme writes README.md: where the package came from and what needs
// attention.
func (im *importer) readme() {
	var b strings.Builder
	fmt.Fprintf(&b, "# %s\n\nImported from an Appsmith export by `runner import appsmith`: %d queries, %d JS modules.\n", im.res.Name, im.res.Queries, im.res.JSModules)
	if len(im.res.Notes) > 0 {
		b.WriteString("\n## Needs attention\n\n")
		for _, n := range im.res.Notes {
			b.WriteString("- " + n + "\n")
		}
	}
	im.res.Files["README.md"] = []byte(b.String())
}

// --- YAML ---

func newMap() *yaml.Node { return &yaml.Node{Kind: yaml.MappingNode} }

func mapOf(k string, v *yaml.Node) *yaml.Node {
	m := newMap()
	put(m, k, v)
	return m
}

func put(m *yaml.Node, k string, v *yaml.Node) {
	m.Content = append(m.Content, scalar(k), v)
}

// scalar is a string scalar; the encoder quotes it where YAML would read
// another type ("true", "123") or a mapping ("{{x}}").
func scalar(s string) *yaml.Node { return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s} }

// quoted is a scalar always written as a string.
func quoted(s string) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Value: s, Style: yaml.DoubleQuotedStyle}
}

func marshal(n *yaml.Node) []byte {
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	enc.Encode(n)
	enc.Close()
	return b.Bytes()
}
