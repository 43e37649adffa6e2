package packages_test

import (
	"fmt"
	"log"
	"os"
	"testing/fstest"

	"github.com/modrun/modrun/modules/js"
	"github.com/modrun/modrun/packages"
)

func ExampleRegistry() {
	dir, _ := os.MkdirTemp("", "registry-example")
	defer os.RemoveAll(dir)
	reg := &packages.Registry{Dir: dir}
	for _, v := range []string{"1.0.0", "1.4.2", "2.0.0"} {
		files := map[string][]byte{
			"package.yaml": []byte("name: demo\nversion: " + v + "\n"),
			"m.js":         []byte("export default {};"),
		}
		if _, err := reg.Publish("demo", v, files); err != nil {
			log.Fatal(err)
		}
	}
	p, _ := reg.Resolve("demo@^1")
	files, _, err := reg.Open(p) // verifies the digest
	if err != nil {
		log.Fatal(err)
	}
	pkg, err := packages.Load(files, js.Kind{})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(pkg.Ref())
	// Output: demo@1.4.2
}

func ExampleLoad() {
	_, err := packages.Load(map[string][]byte{
		"package.yaml": []byte("name: demo\nversion: 1.0.0\nonLoad: [auth.start]\n"),
		"m.js":         []byte("export default {\n  go() { return 1 + ; },\n};"),
	}, js.Kind{})
	for _, p := range packages.Problems(err) {
		fmt.Println(p)
	}
	// Output:
	// m.js:2:21: Unexpected token ;
	// package.yaml: onLoad "auth.start": no module "auth"
}

// ExampleReadFS loads a package from any fs.FS, such as an embedded one:
// files no kind claims (notes.txt here) are left out.
func ExampleReadFS() {
	fsys := fstest.MapFS{
		"package.yaml":   {Data: []byte("name: demo\nversion: 1.0.0\n")},
		"lib/m.js":       {Data: []byte("export default { f() { return 1; } };")},
		"notes.txt":      {Data: []byte("not part of the package")},
		".git/config.js": {Data: []byte("hidden folders are skipped")},
		"README.md":      {Data: []byte("# demo")},
	}
	files, err := packages.ReadFS(fsys, js.Kind{})
	if err != nil {
		log.Fatal(err)
	}
	pkg, err := packages.Load(files, js.Kind{})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(len(files), "files;", pkg.Ref(), "module", pkg.Modules[0].Name())
	// Output: 3 files; demo@1.0.0 module m
}
