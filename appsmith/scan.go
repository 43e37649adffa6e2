package appsmith

import (
	"sort"
	"strings"
	"sync"

	"github.com/dop251/goja"
	"github.com/dop251/goja/ast"
	"github.com/dop251/goja/parser"

	"github.com/modrun/modrun/engine"
	"github.com/modrun/modrun/internal/jsscan"
)

// globals are the names modrun's JS realm has besides modules and
// JavaScript's built-ins.
var globals = engine.JSGlobals

// pageActions are Appsmith's global functions that act on a page in a
// browser: a headless package has none.
var pageActions = map[string]bool{
	"navigateTo": true, "showModal": true, "closeModal": true, "resetWidget": true, "download": true,
	"copyToClipboard": true, "postWindowMessage": true, "setFrameTimeout": true, "getGeoLocation": true,
	"watchGeoLocation": true, "stopWatchGeoLocation": true, "logoutUser": true, "closeAllModals": true,
}

// headless are the page actions modrun runs as logged no-ops.
var headless = func() map[string]bool {
	m := map[string]bool{}
	for _, n := range engine.HeadlessActions {
		m[n] = true
	}
	return m
}()

// libraries are Appsmith's preloaded libraries; modrun ships some
// (engine.JSLibraries).
var libraries = map[string]string{
	"_": "lodash", "moment": "moment", "xmlParser": "fast-xml-parser", "forge": "node-forge", "XLSX": "xlsx", "axios": "axios",
}

// library notes a use of an Appsmith library.
func (im *importer) library(where, name string) {
	if v, ok := engine.JSLibraries[name]; ok {
		im.note("%s: uses %s (%s), which modrun provides: loaded only for packages that use it", where, name, v)
		return
	}
	im.note("%s: uses %s (%s), which Appsmith preloads and modrun does not ship", where, name, libraries[name])
}

var (
	builtinsOnce sync.Once
	builtinNames map[string]bool
)

// builtins are the names of a goja runtime's global object.
func builtins() map[string]bool {
	builtinsOnce.Do(func() {
		builtinNames = map[string]bool{"undefined": true, "NaN": true, "Infinity": true, "globalThis": true, "arguments": true}
		names, _ := goja.New().RunString(`Object.getOwnPropertyNames(globalThis)`)
		for _, n := range names.Export().([]any) {
			builtinNames[n.(string)] = true
		}
	})
	return builtinNames
}

// edit replaces src[start:end] with text.
type edit struct {
	start, end int
	text       string
}

func apply(src string, edits []edit) string {
	sort.Slice(edits, func(i, j int) bool { return edits[i].start > edits[j].start })
	last := len(src) + 1
	for _, e := range edits {
		if e.end > last || e.start < 0 || e.end > len(src) || e.start > e.end {
			continue // overlapping or out of range: leave as is
		}
		src = src[:e.start] + e.text + src[e.end:]
		last = e.start
	}
	return src
}

// bindings rewrites the {{ }} bindings of a field's text (see rewrite).
func (im *importer) bindings(where, s string) string {
	var out strings.Builder
	for {
		i := strings.Index(s, "{{")
		if i < 0 {
			out.WriteString(s)
			return out.String()
		}
		j := strings.Index(s[i+2:], "}}")
		if j < 0 {
			im.note("%s: a {{ without its }}", where)
			out.WriteString(s)
			return out.String()
		}
		expr := s[i+2 : i+2+j]
		out.WriteString(s[:i])
		out.WriteString("{{" + im.rewrite(where, expr, true) + "}}")
		s = s[i+2+j+2:]
	}
}

// script rewrites a JS object's body (see rewrite).
func (im *importer) script(where, body string) string {
	// Parsed as a declaration of the same length, so offsets stay put.
	i := strings.Index(body, "export default")
	if i < 0 {
		return body
	}
	parsed := body[:i] + "var $$dflt  = " + body[i+len("export default"):]
	out := im.rewriteParsed(where, parsed, 0, false)
	return out[:i] + "export default" + out[i+len("export default"):]
}

// rewrite makes an Appsmith expression modrun's: renamed modules get their
// new names, a widget's property (Input1.text) becomes an input
// (inputs.Input1_text), and what a headless package lacks is noted.
func (im *importer) rewrite(where, expr string, binding bool) string {
	// "(" + expr + "\n)": offsets in expr are Idx-2.
	out := im.rewriteParsed(where, "("+expr+"\n)", 1, binding)
	return out[1 : len(out)-2]
}

func (im *importer) rewriteParsed(where, src string, _ int, binding bool) string {
	prog, err := parser.ParseFile(nil, "", src, 0)
	if err != nil {
		msg := err.Error()
		if list, ok := err.(parser.ErrorList); ok && len(list) > 0 {
			msg = list[0].Message
		}
		if binding {
			im.note("%s: a binding that is not valid JavaScript (%s)", where, msg)
		} else {
			im.note("%s: not valid JavaScript (%s)", where, msg)
		}
		return src
	}
	scan := jsscan.Node(prog)
	var edits []edit
	handled := map[*ast.Identifier]bool{}
	// Members first: Widget.prop, appsmith.X.
	for _, m := range scan.Members {
		left, ok := m.Left.(*ast.Identifier)
		if !ok || scan.Declared[left.Name.String()] {
			continue
		}
		name, prop := left.Name.String(), m.Identifier.Name.String()
		handled[left] = true
		switch {
		case name == "appsmith":
			switch prop {
			case "store":
			case "user", "URL", "mode":
				// What a page knew of its viewer and address becomes an
				// input with an empty default (DESIGN §19).
				in := "appsmith_" + prop
				if _, ok := im.inputs[in]; !ok {
					im.addInput(in, input{json: prop != "mode", desc: "was appsmith." + prop + " in Appsmith (a page's viewer and address): give it, or it is empty"})
					im.note("%s: appsmith.%s is now the input %s (empty unless given)", where, prop, in)
				}
				end := int(m.Identifier.Idx) - 1 + len(prop)
				edits = append(edits, edit{int(left.Idx) - 1, end, "inputs." + in})
			default:
				im.note("%s: appsmith.%s is not available to a headless package", where, prop)
			}
		case im.known(name):
			if n := im.names[name]; n != "" && n != name {
				edits = append(edits, edit{int(left.Idx) - 1, int(left.Idx) - 1 + len(name), n})
			}
		case libraries[name] != "":
			im.library(where, name)
		case builtins()[name] || pageActions[name] || isGlobal(name):
		default:
			in := identifier(name + "_" + prop)
			if _, ok := im.inputs[in]; !ok {
				im.addInput(in, input{desc: "was the widget property " + name + "." + prop + " in Appsmith"})
				im.note("%s: the widget property %s.%s is now the input %s", where, name, prop, in)
			}
			end := int(m.Identifier.Idx) - 1 + len(prop)
			edits = append(edits, edit{int(left.Idx) - 1, end, "inputs." + in})
		}
	}
	for _, id := range scan.Refs {
		name := id.Name.String()
		if handled[id] || scan.Declared[name] {
			continue
		}
		switch {
		case im.known(name):
			if n := im.names[name]; n != "" && n != name {
				edits = append(edits, edit{int(id.Idx) - 1, int(id.Idx) - 1 + len(name), n})
			}
		case headless[name]:
			im.note("%s: %s() acts on a page in a browser; headless it logs \"headless: %s ignored\" and does nothing", where, name, name)
		case pageActions[name]:
			im.note("%s: %s() acts on a page in a browser; a headless package cannot (the function fails when it gets there)", where, name)
		case libraries[name] != "":
			im.library(where, name)
		case builtins()[name], isGlobal(name), name == "appsmith", name == "this":
		default:
			im.note("%s: %s is neither a module of the package nor a JS or modrun name", where, name)
		}
	}
	return apply(src, edits)
}

// known reports whether name is an action or JS object of the export,
// by its Appsmith name or its module name.
func (im *importer) known(name string) bool {
	_, ok := im.names[name]
	return ok || im.used[name]
}

func isGlobal(name string) bool {
	for _, g := range globals {
		if g == name {
			return true
		}
	}
	return false
}
