// The YAML the importer writes: ordered maps, and scalars quoted so
// that YAML reads back what was meant.

package appsmith

import (
	"bytes"

	"go.yaml.in/yaml/v3"
)

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
