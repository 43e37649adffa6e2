package appsmith

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"

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
