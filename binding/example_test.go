package binding_test

import (
	"fmt"

	"github.com/modrun/modrun/binding"
)

func ExampleParseJSON() {
	jt, err := binding.ParseJSON(`{"refresh_token": <<params.rt>>, "note": "got <<params.rt>>"}`,
		binding.Pos{File: "refreshAPI.query.yaml", Line: 5, Col: 9}, binding.Names{})
	if err != nil {
		fmt.Println(err)
		return
	}
	out, _ := jt.Render(&scope{}, map[string]any{"rt": `a"b\c`})
	fmt.Println(string(out))
	// Output: {"refresh_token": "a\"b\\c", "note": "got a\"b\\c"}
}

func ExampleParse() {
	_, err := binding.Parse("<<inputs.baseUrl>>/users/<<user.id>>", binding.Pos{File: "q.query.yaml", Line: 2, Col: 6}, binding.Names{})
	fmt.Println(err)
	// Output: q.query.yaml:2:33: binding "user.id" refers to unknown name "user"; a binding may use appsmith.store, inputs, this.params (or params), the package's modules and JavaScript built-ins
}

// ExampleJSON shows how a bound value is written where it stands: as a
// whole JSON value, or as text (a URL, a header, inside a string).
func ExampleJSON() {
	j, _ := binding.JSON(map[string]any{"a": `x"y`, "n": 1.5})
	fmt.Println(string(j))
	fmt.Println(string(binding.StringJSON("<tag> & \"quote\"")))
	fmt.Println(string(binding.NumberJSON(1e21)), string(binding.NumberJSON(0.000001)))
	fmt.Printf("%q %q %q\n", binding.Text(nil), binding.Text(3.0), binding.Text(true))
	// Output:
	// {"a":"x\"y","n":1.5}
	// "<tag> & \"quote\""
	// 1e+21 0.000001
	// "" "3" "true"
}
