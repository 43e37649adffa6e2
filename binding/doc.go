// Package binding parses, checks and evaluates the <<expr>> (or {{expr}})
// bindings of query modules, and substitutes their values according to
// where they stand.
//
// # Parsing and checking
//
// Parse splits a template into literal text and expressions. Every
// expression is parsed as JavaScript when the package loads: a syntax error,
// or a free identifier that is neither a binding root (appsmith, inputs,
// params, this, a module of the package) nor a JavaScript built-in, is an
// error with file:line:col.
//
// # Evaluation
//
// A plain dotted path (appsmith.store.token, this.params.id,
// refreshAPI.data.items[0]) is resolved natively by engine.Scope.Lookup;
// anything else is evaluated as JavaScript by engine.Scope.Eval, from a
// program compiled once here.
//
// # Substitution
//
// Values are substituted by position and can never change the structure
// around them: JSON (a whole value gets its JSON encoding, text inside a
// string is JSON-escaped), URLs (path segments path-escaped, query values
// query-escaped, a leading base URL as is), and plain text (headers).
// undefined and missing keys are null in JSON and empty text elsewhere.
//
// # Caveats
//
// Inside <<…>>, a ">>" at the top level closes the binding; write a right
// shift inside parentheses. Likewise "}}" closes {{…}}.
//
// # Place
//
// binding owns the <<expr>> language: parsing, checking names, evaluating
// against an engine.Scope, substituting by place. It imports engine and
// internal/... only; every part may import it (TestLayering).
package binding
