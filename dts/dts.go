// Package dts writes a package's TypeScript declarations, modrun.d.ts:
// modrun's JS globals, the package's inputs (typed by their declared
// types), its OAuth2 credentials and each module (query modules' run,
// request, data and responseMeta; JS modules' functions), so that an
// editor completes and checks module code (runner types; runner new wires
// it in with a jsconfig.json).
//
// # Place
//
// dts owns the TypeScript declarations of modrun's JS globals for editors
// (runner types).
// It may import engine, binding and internal/..., none of the other parts
// (module kinds, stores, packages, worker, server, appsmith, seal,
// modtest): TestLayering in package engine fails if it does.
package dts

import (
	"bytes"
	"fmt"
	"maps"
	"slices"
	"strconv"

	"github.com/modrun/modrun/engine"
)

// File is the declarations file's name.
const File = "modrun.d.ts"

// JSConfig is a jsconfig.json that has an editor (or tsc -p) check a
// package's JS modules against File.
const JSConfig = `{
  "compilerOptions": {
    "allowJs": true,
    "checkJs": true,
    "noEmit": true,
    "target": "es2022",
    "module": "es2022",
    "lib": ["es2022"],
    "types": []
  },
  "include": ["*.js", "` + File + `"]
}
`

const prelude = `// Declarations of modrun's JS globals and of this package's modules, for
// editors and tsc (runner types writes them: do not edit, run it again).

interface ModrunResponseMeta {
  statusCode: number;
  headers: Record<string, string[]>;
  isExecutionSuccess: boolean;
  durationMs: number;
}

/** A query module: one HTTP request template. */
interface ModrunQuery {
  /** Sends the request; resolves to the response data (JSON parsed, text as a string). */
  run(params?: Record<string, any>): Promise<any>;
  /** Appsmith's callback form. */
  run(onSuccess: (data: any, responseMeta: ModrunResponseMeta) => void, onError?: (error: any) => void, params?: Record<string, any>): Promise<any>;
  /** Sends the request; resolves to this call's data and responseMeta. */
  request(params?: Record<string, any>): Promise<{ data: any; responseMeta: ModrunResponseMeta }>;
  /** The last response's data, shared by concurrent calls. */
  readonly data: any;
  readonly responseMeta: ModrunResponseMeta | undefined;
  /** Forgets the last response (data and responseMeta). */
  clear(): Promise<void>;
}

/** An oauth2: credential of package.yaml. */
interface ModrunCredential {
  /** A fresh access token (refreshed first if it expires within the margin). */
  accessToken(): Promise<string>;
  /** A forced refresh, shared with concurrent callers. */
  refresh(): Promise<string>;
  /** Removes the token set. */
  logout(): Promise<void>;
}

interface ModrunConsole {
  log(...data: any[]): void;
  info(...data: any[]): void;
  debug(...data: any[]): void;
  warn(...data: any[]): void;
  error(...data: any[]): void;
  trace(...data: any[]): void;
}

declare const appsmith: {
  /** The app's store: session values first, then persisted ones. */
  readonly store: Readonly<Record<string, any>>;
};
declare const console: ModrunConsole;
/** Stores value under key: durable (fsync'd) when the promise resolves, unless persist is false. */
declare function storeValue(key: string, value: any, persist?: boolean): Promise<void>;
declare function removeValue(key: string): Promise<void>;
declare function clearStore(): Promise<void>;
/** Sets key to next only if its persisted value is old (undefined: absent). */
declare function compareAndSwapValue(key: string, old: any, next: any): Promise<boolean>;
/** Calls fn unless a call with the same key is in flight; joins it then. */
declare function singleFlight<T>(key: string, fn: () => T | Promise<T>): Promise<T>;
declare function showAlert(message: any, type?: string): void;
declare function setTimeout(fn: (...args: any[]) => void, ms?: number, ...args: any[]): number;
declare function setInterval(fn: (...args: any[]) => void, ms?: number, ...args: any[]): number;
declare function clearTimeout(id?: number): void;
/** Appsmith's form: setInterval(fn, ms, "id") names the interval; clearInterval("id") clears it. */
declare function setInterval(fn: () => void, ms: number, id: string): number;
declare function clearInterval(id?: number | string): void;
`

// Write returns pkg's modrun.d.ts.
func Write(pkg *engine.Package) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "// %s\n", pkg.Ref())
	b.WriteString(prelude)
	for _, name := range engine.HeadlessActions {
		fmt.Fprintf(&b, "/** Appsmith's page action: headless, it logs and does nothing. */\ndeclare function %s(...args: any[]): Promise<void>;\n", name)
	}

	b.WriteString("\n/** The package's inputs. */\ndeclare const inputs: {\n")
	for _, n := range slices.Sorted(maps.Keys(pkg.Manifest.Inputs)) {
		in := pkg.Manifest.Inputs[n]
		if in.Description != "" {
			fmt.Fprintf(&b, "  /** %s */\n", comment(in.Description))
		}
		fmt.Fprintf(&b, "  readonly %s: %s;\n", n, tsType(in.Type))
	}
	b.WriteString("};\n")

	b.WriteString("\n/** The package's oauth2: credentials. */\ndeclare const oauth2: {\n")
	for _, n := range slices.Sorted(maps.Keys(pkg.Manifest.OAuth2)) {
		fmt.Fprintf(&b, "  readonly %s: ModrunCredential;\n", n)
	}
	b.WriteString("};\n")

	for _, m := range pkg.Modules {
		if _, ok := m.(engine.Query); ok {
			fmt.Fprintf(&b, "\n/** The query module %s. */\ndeclare const %s: ModrunQuery;\n", m.File(), m.Name())
			continue
		}
		fmt.Fprintf(&b, "\n/** The JS module %s. */\ndeclare const %s: {\n", m.File(), m.Name())
		if fl, ok := m.(engine.FunctionLister); ok {
			for _, f := range fl.Functions() {
				if !engine.IsIdentifier(f) {
					f = strconv.Quote(f)
				}
				fmt.Fprintf(&b, "  %s(...args: any[]): any;\n", f)
			}
		}
		b.WriteString("  [member: string]: any;\n};\n")
	}
	return b.Bytes()
}

func tsType(t string) string {
	switch t {
	case engine.TypeNumber:
		return "number"
	case engine.TypeBoolean:
		return "boolean"
	case engine.TypeJSON:
		return "any"
	}
	return "string"
}

// comment makes s safe inside /** */.
func comment(s string) string {
	q := strconv.Quote(s)
	q = q[1 : len(q)-1]
	return string(bytes.ReplaceAll([]byte(q), []byte("*/"), []byte("*\\/")))
}
